/* upload.h: delivery of issued files to finance (docs/billing-rules.md 4, Upload).
 *
 * Every file to deliver is first recorded in the ledger billing.uploads
 * (migration 003) with its SHA-256 and size, then delivered to
 * <base URL>/<YYYY-MM>/<file name>:
 *
 *   https://  HTTP PUT with TLS always verified (system CA store, or
 *             ACBILL_CA_FILE).  In "dav" mode (the default) the file is PUT
 *             to a hidden temporary name `.<file>.part-<16 hex of its
 *             SHA-256>` in the same collection and then MOVEd over the
 *             final name (Overwrite: T), so finance never sees a
 *             half-written file; the temporary is DELETEd when the MOVE
 *             fails.  In "put" mode (S3-style targets whose PUT is
 *             all-or-nothing) it is one PUT to the final name.
 *   http://   the same, refused unless ACBILL_ALLOW_HTTP=1.
 *   file://   local delivery: copied to a fresh unpredictable temporary
 *             in <dir>/<YYYY-MM>/ (outfile.h; the period folder is created
 *             when missing and refused when it is a symlink; <dir> itself
 *             must exist), given the documents' mode, flushed to disk,
 *             then renamed over the final name.
 *
 * Credentials go only to the configured base URL: a pending row whose
 * target_url is not exactly <base URL>/<YYYY-MM>/<file name>, or whose
 * recorded temporary (part_url) is not the one delivery itself would use
 * there, is refused before any request (it stays pending, last_error says
 * why, `acbill upload --list` shows it): someone who can write
 * billing.uploads cannot send the token, or a file, elsewhere.  The same
 * holds for the temporaries of final rows that delivery removes, and a
 * file:// clean-up removes nothing outside the configured folder.
 *
 * Credentials: a bearer token read from ACBILL_UPLOAD_TOKEN_FILE (which must
 * not be accessible by group or others), otherwise the login for the host in
 * ~/.netrc, if any (used only when it is a regular file owned by this user
 * and not accessible by group or others: AC_ECONFIG otherwise).  URLs with user:password@ are refused, so no secret is
 * ever in argv, the database or a log line.
 *
 * Exactly once, even when the job is killed at any instant (SIGKILL, power
 * loss): before a file is sent, a HEAD of its final name asks whether the
 * server already has it; when the size matches and the ETag is the one
 * recorded when this row's content was sent (or, without one, a GET of
 * the file hashes to the recorded SHA-256), the row is marked `done`
 * without sending.  The temporary's name is recorded on the row before
 * its first byte is sent: a whole temporary left by a killed run is moved
 * into place rather than sent again, a partial one is overwritten, and
 * the temporaries of rows that will not be sent any more are deleted by
 * the next delivery pass.  file:// delivery does the same with local
 * files (a period directory's `.*.part-*` are removed).
 *
 * A file that cannot be delivered stays `pending` with the error, and is
 * retried by the next upload_deliver_pending() from the stored file: nothing
 * is recomputed, and the stored file is checked against the recorded
 * SHA-256 before it is sent.  Within one delivery, 5xx (but 501/505), 408,
 * 429 and network errors are retried with capped exponential backoff and
 * jitter (a Retry-After is honoured, capped); other 4xx and TLS
 * verification failures are not retried. */
#ifndef AC_UPLOAD_H
#define AC_UPLOAD_H

#include <libpq-fe.h>

#include "status.h"

/* The file name that is delivered after every other file of its period. */
#define UPLOAD_MANIFEST_NAME "SHA256SUMS"

/* The first key of run.c's per-period run lock,
 * pg_advisory_lock(UPLOAD_RUN_LOCK_CLASS, YYYYMM): pending files of a
 * period whose run holds it are that run's to deliver and count. */
#define UPLOAD_RUN_LOCK_CLASS "72542"

typedef struct {
    /* From --upload-url or ACBILL_UPLOAD_URL; NULL = no upload.  https://,
     * http:// (with allow_http) or file:///; no user:password@, no ?query
     * or #fragment.  Trailing slashes are ignored. */
    const char *base_url;
    /* ACBILL_CA_FILE: PEM bundle to verify the server with; NULL = the
     * system CA store. */
    const char *ca_file;
    /* ACBILL_UPLOAD_TOKEN_FILE: file whose first line is a bearer token;
     * NULL = no token (~/.netrc is still consulted). */
    const char *token_file;
    int allow_http;          /* ACBILL_ALLOW_HTTP=1 */
    int use_move;            /* ACBILL_UPLOAD_MODE: dav (1, default) | put (0) */
    int max_attempts;        /* ACBILL_UPLOAD_ATTEMPTS: requests per file and
                              * delivery, >= 1 (default 4) */
    long timeout_s;          /* ACBILL_UPLOAD_TIMEOUT: cap on one request
                              * (default 300) */
    long connect_timeout_s;  /* ACBILL_UPLOAD_CONNECT_TIMEOUT (default 15) */
    long backoff_ms;         /* ACBILL_UPLOAD_BACKOFF_MS: first retry delay,
                              * doubled each retry (default 1000) */
    long backoff_max_ms;     /* cap on one retry delay (default 30000) */
    long retry_after_max_s;  /* cap on an honoured Retry-After (default 60) */
} upload_options;

/* Call once from main() before any thread starts (curl_global_init), and
 * upload_global_cleanup() at exit.  Idempotent; the other functions call
 * upload_global_init() themselves when main() has not. */
ac_status upload_global_init(char *err);
void upload_global_cleanup(void);

/* Set the defaults above, with no URL, CA file or token. */
void upload_options_defaults(upload_options *opt);

/* Defaults, then the ACBILL_* variables above (an empty variable counts as
 * unset), then upload_options_check().  The strings point into the
 * environment and stay valid while it is not changed.  AC_ECONFIG with the
 * reason for a malformed value, an unsafe token file, and so on.  To apply
 * --upload-url, set base_url afterwards and call upload_options_check()
 * again. */
ac_status upload_options_from_env(upload_options *opt, char *err);

/* AC_OK when opt is usable: the URL (when set) has an accepted scheme and
 * no credentials, query or fragment; http:// only with allow_http; the CA
 * file is readable; the token file is readable, not accessible by group or
 * others, and holds a token of printable characters.  AC_ECONFIG otherwise. */
ac_status upload_options_check(const upload_options *opt, char *err);

/* For a command about to deliver (run, upload --pending): AC_ECONFIG,
 * naming the folder, when opt->base_url is a file:// URL whose folder does
 * not exist or is not a directory (it will not appear by itself: unlike a
 * server that is down, 69, this is the operator's to fix); AC_OK otherwise
 * (no URL, another scheme).  A folder that goes away later leaves the files
 * pending, as a server that is down does. */
ac_status upload_options_check_folder(const upload_options *opt,
                                      char *err);

/* Record that local_path is to be delivered as
 * <base_url>/<period>/<file_name>: computes the file's SHA-256 and size and
 * inserts a `pending` row.  period is "YYYY-MM"; file_name a plain name
 * (no '/', not starting with '.'); local_path is stored made absolute;
 * invoice_no (may be NULL) must exist in billing.invoices and run_id (0 =
 * none) in billing.runs.  Idempotent: when the newest row for that target
 * already has the same SHA-256 (pending or delivered) nothing changes; when
 * it differs, an older pending row for the target is marked `superseded`
 * and the new content is queued.  With opt->base_url NULL nothing is
 * recorded and AC_OK is returned.  Runs in its own transaction when conn is
 * idle, in a savepoint of the caller's otherwise.  AC_EIO when the file
 * cannot be read, AC_ECONFIG for bad options, database errors as db.h. */
ac_status upload_enqueue(PGconn *conn, const upload_options *opt,
                         const char *period, const char *file_name,
                         const char *local_path, const char *invoice_no,
                         long long run_id, char *err);

/* Deliver every pending row whose base URL is opt->base_url, oldest first,
 * each period's SHA256SUMS after that period's other files (and held back
 * while any of them is still pending).  Each row ends `done` (with the HTTP
 * status; 0 for file://) or stays `pending` with the error; attempts counts
 * the PUT requests made over all runs.  After a file fails for a reason that
 * would fail the others too (server unreachable, retries used up, TLS
 * verification), the remaining rows are left for the next run.
 * *delivered receives the rows delivered now (or found already delivered),
 * *still_pending every row still pending afterwards (including rows
 * queued for another base URL, which are reported with a warning naming
 * `acbill upload --retarget` and `--cancel`, and all rows when base_url is
 * NULL), except rows of a period whose run is in progress in another
 * session (they are that run's).  Failed deliveries are not an error: the
 * return is AC_OK unless the options are bad (AC_ECONFIG), the database
 * fails, or curl cannot start.  Only one process delivers at a time (an
 * advisory lock): another caller waits for it, without lock_timeout (each
 * request is bounded by the upload timeouts).  conn must not be inside a
 * transaction. */
ac_status upload_deliver_pending(PGconn *conn, const upload_options *opt,
                                 int *delivered, int *still_pending,
                                 char *err);

/* Send the rows pending for another base URL (only from_url's, when not
 * NULL) to opt->base_url instead, in one transaction: each becomes
 * `retargeted`, with replaced_by naming a new pending row for the new
 * target (or the row already there with the same or newer content) and a
 * note of who did it.  Delivered rows are never touched.  *moved receives
 * the rows retargeted.  AC_EUSAGE without a URL, AC_ECONFIG for a bad
 * one, database errors as db.h. */
ac_status upload_retarget(PGconn *conn, const upload_options *opt,
                          const char *from_url, int *moved, char *err);

/* Give up pending rows: those of file ("YYYY-MM/NAME", or "NAME" for every
 * period; NULL = any file) and of base_url (NULL = any).  They become
 * `cancelled` with a note of who did it; delivered rows are never touched.
 * *cancelled receives how many.  AC_EUSAGE for a malformed name. */
ac_status upload_cancel(PGconn *conn, const char *file, const char *base_url,
                        int *cancelled, char *err);

#endif
