/* report.h: the Excel deliverables (docs/billing-rules.md 4, "Workbooks").
 *
 * Every workbook is written from the billing ledger (billing.invoices,
 * invoice_lines, rated_calls, findings) through the caller's connection.
 * The functions only read: they never begin, commit or roll back a
 * transaction, so the caller may call them inside its own open
 * transaction and they see its uncommitted rows.  They do not change the
 * session either (no SET), and they read timestamps with explicit
 * AT TIME ZONE 'UTC', so the session's TimeZone and DateStyle do not
 * matter.
 *
 * Output is deterministic: the same ledger rows give byte-identical files
 * (the document's creation time is its recorded issue time;
 * formats and sheets are created in a fixed order; numbers are written in
 * the C locale, so the process must never call setlocale()).  A statement
 * revision's workbook reads only the documents of revisions up to its
 * own, so documents issued later do not change it.  (The Organizer names
 * come from the directory, usage.users, as it is when the workbook is
 * written.)
 *
 * Every cell and document property goes through one text cleaner (valid
 * XML, Excel's 32,767 characters, a cut marked " [...]"); every sheet is
 * set up for printing (docs/billing-rules.md 4.3): the Summary portrait, one page wide and
 * at most two tall up to about 170 rows (an invoice of 50 lines is about
 * 120), list sheets landscape, one page wide where that keeps the text at
 * 7 pt or more (else at 7 pt over several pages wide, the first column
 * repeated), the header row repeated, the document number and "Page n of
 * m" in the footer.  No number shows as ### at the widths set.
 *
 * Workbooks are written in libxlsxwriter's constant_memory mode, with its
 * temporary files in the output's directory, and the calls are streamed
 * from PostgreSQL in single-row mode: memory does not grow with the
 * number of calls.  While a function runs, conn must not be used by
 * anyone else (it has a query in flight). */
#ifndef AC_REPORT_H
#define AC_REPORT_H

#include <libpq-fe.h>
#include <time.h>

#include "status.h"

/* Excel's last row is 1,048,576; one is the header, so a Calls sheet holds
 * at most this many calls before the next one, `Calls (2)`, begins. */
#define REPORT_CALLS_SHEET_MAX 1048575u

/* Write the workbook of statement revision invoice_no (a billing.invoices
 * row) to path: sheets Summary, Changes (a revision after the first: the
 * calls added, removed or re-rated against the one it supersedes), Calls
 * (continued on `Calls (2)`, ... when needed), Organizers, Findings and
 * Reconciliation.
 *
 * The Summary starts with the document header (docs/billing-rules.md 4.3): when the
 * revision has its own invoice document (billing.documents, kind
 * 'invoice', invoice_no = this revision) it is that invoice, with its
 * number, issue and due dates, seller and buyer as recorded at issue;
 * otherwise it is a usage statement naming the invoice in force (the
 * period's latest invoice document of a revision up to this one that no
 * credit note of such a revision voids).  A credit note is taken to
 * belong to the revision that voids and replaces the invoice (its
 * invoice_no is the new revision).
 *
 * Reads billing.invoices, invoice_lines, rated_calls, findings,
 * invoice_organizers, invoice_reconciliation, documents, the superseded
 * revision and usage.users (display names and UPNs).  Reads only; never
 * begins or commits a transaction.
 *
 * path's directory must exist and be writable (it also holds the
 * temporary files while the workbook is written).  An existing file at
 * path is replaced.  Returns AC_OK, or: AC_EDATA when the invoice does
 * not exist, the database's status (db_status_of) when a query fails,
 * AC_ECANTCREAT when the file cannot be created, AC_EINTERNAL for an
 * unexpected libxlsxwriter error; with a message in err (AC_ERR_MAX
 * bytes).  On failure the partial file is removed. */
ac_status report_invoice_workbook(PGconn *conn, const char *invoice_no,
                                  const char *path, char *err);

/* The columns of a spool line, in order: one billing.rated_calls row in
 * COPY text format, as the job writes it before it COPYs the rows in. */
#define REPORT_SPOOL_COLUMNS \
    "invoice_no, seq, usage_id, start_time, start_local, organizer_id," \
    " destination_number, duration_seconds, outcome, reason, country," \
    " kind, minutes, pool_minutes, billed_minutes, per_minute," \
    " connection_fee, amount, dest_prefix, rate_prefix, provider_charge," \
    " provider_currency, duplicate_of, provider_country, call_id," \
    " conference_id, provider_capability, usca_pool_minutes, rate_plan"

/* Like report_invoice_workbook(), but the Calls sheets come from
 * spool_path, a file of the invoice's rated calls in seq order in COPY
 * text format (columns REPORT_SPOOL_COLUMNS), instead of being read back
 * from billing.rated_calls: the job already has them, and a month of
 * calls need not cross the network twice.  The result is byte-identical
 * to report_invoice_workbook()'s for the same rows.  spool_path NULL is
 * report_invoice_workbook().  tmpdir, when not NULL, holds libxlsxwriter's
 * temporary files instead of path's directory (they are about three
 * times the size of the calls in text). */
ac_status report_invoice_workbook_spool(PGconn *conn, const char *invoice_no,
                                        const char *spool_path,
                                        const char *path, const char *tmpdir,
                                        char *err);

/* Options of report_invoice_workbook_opt(); all zero is the plain
 * workbook from the ledger. */
typedef struct {
    /* A file of the invoice's rated calls in seq order in COPY text
     * format (columns REPORT_SPOOL_COLUMNS) to read the Calls sheets from
     * instead of billing.rated_calls; NULL: from the ledger.  The result
     * is byte-identical either way. */
    const char *spool_path;
    /* Where libxlsxwriter's temporary files go; NULL: path's directory. */
    const char *tmpdir;
    /* Non-zero: a draft (docs/billing-rules.md 4.2, grace period).  Every sheet is marked
     * DRAFT (a red title cell, and "DRAFT" in the printed header; list
     * sheets then have the mark in row 1 and their header in row 2), no
     * statement or document number is shown anywhere (the properties
     * included: the footer names the tenant and period), seller, buyer,
     * payment terms and tax note are today's ref.operator and
     * ref.customers, and the issue and due dates read "when it is
     * issued".  The caller writes the revision's rows in its own open
     * transaction, calls this, and rolls back: the function only reads,
     * so it sees them.  A Calls sheet of a draft holds one call fewer
     * (REPORT_CALLS_SHEET_MAX - 1). */
    int draft;
    /* Not NULL: the workbook of this invoice document of the revision
     * (billing.documents, kind 'invoice', was_held: issued after the
     * statement's own workbook, which stays as it was), named by the
     * caller `<document_no>.xlsx`: its header is that invoice's.  Ignored
     * in a draft. */
    const char *document_no;
} report_invoice_options;

/* report_invoice_workbook() with options (NULL: none). */
ac_status report_invoice_workbook_opt(PGconn *conn, const char *invoice_no,
                                      const char *path,
                                      const report_invoice_options *opt,
                                      char *err);

/* Write the workbook of credit note document_no (billing.documents, kind
 * 'credit_note') to path, named by the caller `<document_no>.xlsx`: one
 * sheet, `Credit note`, with the header (document type, number, issue
 * date, seller and buyer as recorded on the credit note, purchase order,
 * Entra tenant id, currency, period, "voids invoice X of <date>", the
 * replacing invoice or none, and the reason in words), the voided
 * invoice's lines negated, and subtotal, tax and total (negative, the
 * credit note's own figures).  The lines must add up to the credit note's
 * subtotal (AC_EDATA otherwise).  Created date: the credit note's
 * recorded issue time.  Printed portrait, one page wide.  Same contract as
 * report_invoice_workbook(); AC_EDATA when document_no is not a credit
 * note. */
ac_status report_credit_note_workbook(PGconn *conn, const char *document_no,
                                      const char *path, char *err);

/* A UTC time stamp 'YYYY-MM-DD[ HH:MM:SS]' as a time_t (timegm); 0 for
 * NULL or text that is not one. */
time_t report_time_of(const char *ts);

/* Write the finance summary of period ('YYYY-MM') to path: sheets
 * Invoices (one row per tenant's latest revision of the period, with the
 * change against the revision it supersedes), Totals (per currency),
 * Findings (every finding of those revisions), Reconciliation (per
 * tenant: provider total, acbill total, difference) and Unbilled old
 * usage (per tenant and period older than the look-back window of a run
 * in this period, lookback_months of ref.operator: the calls that no
 * statement covers; job/bill/lookback.h).  A period without
 * invoices gives a workbook with the headers only.  Same contract as
 * report_invoice_workbook(); AC_EUSAGE when period is not 'YYYY-MM'. */
ac_status report_finance_summary(PGconn *conn, const char *period,
                                 const char *path, char *err);

/* *empty = 1 when period ('YYYY-MM') has nothing a finance summary would
 * show: no statement or document of the period, no tenant with a call in
 * its local month (within 14 hours of the UTC month where the tenant's
 * time zone is unknown), no import reject that touches the period
 * (usage.import_reject_periods), no unbilled usage older than its
 * look-back window (lookback.h: the summary lists it); else 0.  Database
 * errors as db.h. */
ac_status report_period_is_empty(PGconn *conn, const char *period,
                                 int *empty, char *err);

/* Write the sales journal of month ('YYYY-MM', a calendar month of
 * issue date; docs/billing-rules.md 4.5) to xlsx_path (journal-<YYYY-MM>.xlsx) and
 * csv_path (journal-<YYYY-MM>.csv): one row per line of the month in
 * billing.journal_lines (every invoice and credit note issued that
 * month, whatever its usage period, in the order it was first
 * journalled), with line, issue date, number, kind, tenant, buyer and
 * its tax id (as recorded at issue), usage period, currency, tax
 * category (UNCL 5305) and rate in percent, net, tax and gross (the
 * document's subtotal, tax and total, exact to the minor unit, negative
 * for a credit note), due date, the invoice a credit note voids and the
 * one that replaces it.  The workbook adds a Totals sheet: per currency,
 * and per currency, tax category and rate (documents, credit notes, net,
 * tax, gross), summed exactly in SQL, so the rows of a currency re-add
 * to its total.  The CSV is RFC 4180 (CRLF line ends, one header line of
 * column names, every text field quoted with its quotes doubled, numbers
 * unquoted with '.' decimals, UTF-8 without a byte order mark, no total
 * rows).  Created date: the issue time of the month's latest document.
 * Same ledger, same bytes.  Reads only.  AC_EUSAGE for a bad month;
 * otherwise the contract of report_invoice_workbook() (both files are
 * removed on failure). */
ac_status report_journal(PGconn *conn, const char *month,
                         const char *xlsx_path, const char *csv_path,
                         char *err);

/* Write dir/SHA256SUMS listing the regular files named *.xlsx, *.csv,
 * *.pdf and *.xml in dir
 * (names starting with '.' are skipped, as temporary files), sorted by
 * name in byte order, one "<64 hex digits>  <name>\n" line each: the
 * format `sha256sum -c` reads.  No such file gives an empty file.  The file
 * is written to a fresh temporary name in dir (outfile.h: never a
 * planted symlink), given the documents' mode (ACBILL_FILE_MODE, default
 * 0640), synced and renamed, so readers see the old or the new list,
 * never a partial one.  Returns AC_OK,
 * AC_ENOINPUT when dir cannot be read, AC_EDATA for a name sha256sum
 * cannot represent (containing a newline or backslash), AC_EIO or
 * AC_ECANTCREAT when a file cannot be read or written, with a message
 * in err. */
ac_status report_write_sha256sums(const char *dir, char *err);

/* The zlib level (1 fastest .. 9 smallest) at which workbooks are
 * compressed.  acbill uses REPORT_DEFLATE_DEFAULT, level 1: about three
 * times less compression CPU than libxlsxwriter's own level 6, for files
 * about a third larger (docs/performance.md).  Process-wide; safe to call
 * at any time, applies to the parts compressed after the call.  Values
 * out of 1..9 select the default.  How it is done: reports/xlsx_book.c. */
#define REPORT_DEFLATE_DEFAULT 1
void report_set_deflate_level(int level);

/* The level report_set_deflate_level() set. */
int report_deflate_level(void);

/* For tests: make Calls sheets hold at most rows calls each (0 restores
 * REPORT_CALLS_SHEET_MAX; larger values are capped at it).  Process-wide
 * and not thread-safe; production code never calls it. */
void report_set_calls_sheet_limit(unsigned rows);

#endif
