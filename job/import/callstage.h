/* callstage.h: loading call rows into usage.dialout_calls (docs/billing-rules.md 6).
 *
 * The import stage shared by the PSTN export (CSV), saved Graph pages and
 * `acbill pull`.  A source hands over one row at a time as text fields
 * (callstage_row); the stage checks each field, streams the rows by COPY
 * into a temporary table, and at the end merges them into
 * usage.dialout_calls in one statement keyed on usage_id, all in one
 * transaction per file:
 *
 *   - a row whose Call Type is not conf_out is counted as skipped and not
 *     kept;
 *   - a row that cannot be stored (no or malformed UsageId, a start time
 *     that is not an ISO 8601 timestamp, a duration that is not a whole
 *     number, a charge that is not a decimal, text that is not UTF-8, ...)
 *     is kept in usage.import_rejects with its line number, raw text and
 *     reason, and never stops the import;
 *   - a new usage_id is inserted; an existing one of the same tenant is
 *     updated when its content differs and left alone when it does not;
 *     one that belongs to another tenant is rejected;
 *   - a UsageId twice in one file: the last row wins, an earlier identical
 *     row counts as unchanged, an earlier different one is rejected as
 *     superseded;
 *   - UPN and display name of the organizer go into usage.users.
 *
 * Values are never converted in C: PostgreSQL casts the text (timestamps,
 * integers, numeric money), so charges stay exact.  Should the server
 * still refuse a row the checks let through, the merge is retried on
 * halves of the file until the row is found, and that row is rejected
 * with the server's message.
 *
 * Memory: one row and a 256 KiB COPY buffer, whatever the file's size. */
#ifndef AC_CALLSTAGE_H
#define AC_CALLSTAGE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "status.h"

/* The fields of a call row, by their meaning (docs/billing-rules.md 6 mapping). */
typedef enum {
    CF_USAGE_ID,        /* UsageId / id */
    CF_CALL_ID,         /* Call ID / callId */
    CF_CONFERENCE_ID,   /* Conference ID / conferenceId */
    CF_ORGANIZER_ID,    /* AAD / Microsoft Entra ObjectId / userId */
    CF_UPN,             /* UPN / userPrincipalName */
    CF_DISPLAY_NAME,    /* User Display Name / userDisplayName */
    CF_CALL_TYPE,       /* Call Type / callType */
    CF_DESTINATION,     /* Destination Number / calleeNumber */
    CF_START,           /* Start Time / startDateTime */
    CF_END,             /* End Time / endDateTime */
    CF_DURATION,        /* Duration Seconds / duration */
    CF_CHARGE,          /* Charge / charge */
    CF_CONNECTION_FEE,  /* Connection Fee / connectionCharge */
    CF_CURRENCY,        /* Currency / currency */
    CF_CAPABILITY,      /* Capability / licenseCapability */
    CF_COUNTRY,         /* External Country / otherPartyCountryCode */
    CF_COUNT
} call_field;

/* What became of a file's rows: read = inserted + updated + unchanged +
 * skipped + rejected. */
typedef struct {
    long long import_id;
    long long read, inserted, updated, unchanged, skipped, rejected;
    long long rejects_not_kept;  /* of rejected: past the kept ones */
} import_counts;

/* At most this many rejected rows of a file are kept in
 * usage.import_rejects with their text (docs/billing-rules.md 6), the first ones met; the
 * others are counted by reason (the reason with its quoted values
 * replaced by '...') in usage.imports.rejects_not_kept (migrations 019 and 022),
 * so a hostile file cannot fill the database. */
#define CALLSTAGE_REJECTS_KEPT 10000

typedef struct callstage callstage;

/* Reads len bytes at byte offset off of the source into buf (len + 1
 * bytes, NUL-terminated by the callee); 0 on success.  Used for the raw
 * text of rows that only the merge rejects. */
typedef int (*callstage_raw_fn)(void *ctx, long long off, size_t len,
                                char *buf);

/* Start importing one file for tenant (which must be in usage.tenants):
 * BEGIN, a usage.imports row (source "pstn", "graph-calls" or
 * "graph-pull"; member is the file inside a zip, or NULL) and an empty
 * staging table (rows then go in by COPY).  conn must be idle.  On failure
 * nothing is left open and *out is NULL: AC_EDATA for an unknown tenant,
 * database errors as db.h. */
ac_status callstage_begin(PGconn *conn, const char *tenant,
                          const char *source, const char *file_name,
                          const char *member, callstage **out, char *err);

/* One data row.  f[CF_*] are NUL-terminated fields, NULL or "" when
 * absent; raw (raw_len bytes, may be NULL) is the row's text, kept only
 * when the row is rejected here; off/len locate the row in the source for
 * callstage_finish's raw_fn (-1 when unknown).  line_no is the row's first
 * line (CSV) or position in the page (JSON).  Errors are remembered and
 * reported by callstage_finish. */
void callstage_row(callstage *s, long long line_no, const char *const *f,
                   const char *raw, size_t raw_len, long long off,
                   size_t len);

/* A row that could not even be split into fields (wrong field count,
 * broken quoting): counted as read and rejected with reason. */
void callstage_reject(callstage *s, long long line_no, const char *raw,
                      size_t raw_len, const char *reason);

/* Send what is buffered and close the COPY into the stage, so that the
 * connection can run other statements inside the file's transaction (a
 * Graph page's rows are extracted by a query); the next row opens a new
 * COPY.  Returns the first error of the rows so far. */
ac_status callstage_pause(callstage *s, char *err);

/* The connection of s (in the file's transaction). */
PGconn *callstage_conn(const callstage *s);

/* Rows handed over so far (read), for progress lines. */
long long callstage_rows(const callstage *s);

/* Finish: end the COPY, merge, fill usage.users and usage.import_rejects
 * (raw text of rows rejected by the merge comes from raw_fn, which may be
 * NULL), record sha256 (64 hex digits) and the counts in usage.imports,
 * and COMMIT.  *counts receives them.  Frees s in every case; on failure
 * the transaction is rolled back and nothing of the file is kept. */
ac_status callstage_finish(callstage *s, const char *sha256,
                           callstage_raw_fn raw_fn, void *raw_ctx,
                           import_counts *counts, char *err);

/* Give up on the file: roll back, free s, and record the refusal (status
 * "refused", reason) in usage.imports in a transaction of its own, with
 * sha256 when known (may be NULL). */
void callstage_abort(callstage *s, const char *sha256, const char *reason);

/* Record a file refused before any row was read (unreadable, no header,
 * a required column missing, not JSON) in usage.imports: status
 * "refused" with reason.  conn must be idle.  Database errors as db.h. */
ac_status import_record_refused(PGconn *conn, const char *tenant,
                                const char *source, const char *file_name,
                                const char *member, const char *sha256,
                                const char *reason, char *err);

/* Check a value as the stage does: 1 when text is an ISO 8601 timestamp
 * (YYYY-MM-DD, 'T' or ' ', hh:mm[:ss[.fraction]], optional Z or +hh[:mm],
 * calendar-valid), a GUID (8-4-4-4-12 hex digits), a whole number that
 * fits int32, or a decimal of at most 12 integer digits.  Exposed for the
 * unit tests. */
int callstage_is_timestamp(const char *text);
int callstage_is_guid(const char *text);
int callstage_is_int32(const char *text);
int callstage_is_decimal(const char *text);

/* 1 when the len bytes at s are valid UTF-8 without NUL bytes. */
int callstage_is_utf8(const char *s, size_t len);

/* For every import: AC_OK when tenant is in usage.tenants, AC_EDATA
 * saying it must be added first otherwise, the database's status (with
 * its message) when the query fails.  Run inside the import's
 * transaction. */
ac_status import_require_tenant(PGconn *conn, const char *tenant,
                                char *err);

#endif
