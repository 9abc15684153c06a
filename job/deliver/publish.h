/* publish.h: writing issued invoices' workbooks beside the billing.
 *
 * A publisher is one or more threads, each with its own database
 * connection.  The billing
 * side (bill.c) commits a tenant's revision and hands the publisher the
 * invoice number and the spool file of its rated calls; the publisher
 * writes OUT/<invoice_no>.xlsx from the spool (the Calls sheets) and the
 * ledger (the rest), records the file name and SHA-256 on the invoice,
 * and queues the file for upload.  So the workbook of one tenant is being
 * written while the next tenant is read, rated and copied in: the client's
 * CPU (workbooks) and the server's (reading and writing rows) overlap.
 *
 * A writer whose connection is lost reconnects once, writes that workbook
 * again and goes on with the next.
 *
 * An invoice is committed before its workbook exists.  If the process
 * dies in between, the next run writes the missing workbook from the
 * ledger: byte for byte the same file. */
#ifndef AC_PUBLISH_H
#define AC_PUBLISH_H

#include <limits.h>
#include <stdio.h>

#include "status.h"
#include "upload.h"

typedef struct publisher publisher;

/* Start a publisher of threads (1 to 4) writer threads writing into
 * out_dir (OUT/YYYY-MM), connected with conninfo (NULL: libpq defaults),
 * recording uploads for period/run_id with uopt when uopt->base_url is
 * set.  *out is NULL on failure. */
ac_status publisher_start(const char *conninfo, const char *out_dir,
                          const char *period, long long run_id,
                          const upload_options *uopt, int threads,
                          publisher **out, char *err);

/* Queue invoice_no's workbook.  spool_path, when not NULL, is a file of
 * the invoice's rated calls (report.h, REPORT_SPOOL_COLUMNS), from
 * publisher_spool(), that the publisher owns from now on and reuses; NULL makes the publisher check
 * the existing workbook and write it from the ledger only when it is
 * missing or differs.  Waits while a few workbooks are already queued, so
 * the spool files waiting on disk stay few. */
ac_status publisher_submit(publisher *p, const char *invoice_no,
                           const char *spool_path, char *err);

/* A spool file for the next tenant's rated calls, open for writing and
 * reading in *f, its path in path: one of p's earlier spools, emptied,
 * or a new file in p's directory.  Spools are kept and reused rather
 * than deleted, because creating and deleting a file per tenant costs
 * ext4 more kernel time than writing it.  The file is the caller's until
 * it hands it to publisher_submit() or back with
 * publisher_spool_release().  AC_ECANTCREAT or AC_EOSERR on failure. */
ac_status publisher_spool(publisher *p, FILE **f, char path[PATH_MAX],
                          char *err);

/* Give back a spool from publisher_spool() that will not be submitted
 * (its content is of no further use). */
void publisher_spool_release(publisher *p, const char *path);

/* Write what is queued, stop the thread, delete the spools and free p.
 * *failed receives the number of workbooks that could not be written
 * (their invoices stand; the next run writes them).  Returns
 * AC_EUNAVAIL when some failed for the database's sake (a writer that
 * loses its connection reconnects once and writes the workbook again,
 * and stays with the new connection), AC_ECANTCREAT when they could not
 * be written (disk full included). */
ac_status publisher_finish(publisher *p, int *failed, char *err);

/* docs/billing-rules.md 4.5: write the sales journal of every month of issue that has
 * documents no journal lists yet: out_root/<YYYY-MM>/journal-<YYYY-MM>.xlsx
 * and .csv (report_journal()), rewritten whole with the new documents
 * added after the rows already published (billing.journal_lines, which
 * never change), then that directory's SHA256SUMS; with uopt->base_url
 * set, the three are queued for upload to <base>/<YYYY-MM>/ (once per
 * content, upload_enqueue()).  Each month is one transaction on conn
 * (idle on entry) holding the advisory lock 'acbill-dir <YYYY-MM>'
 * (hashtextextended), also taken by whoever writes that directory's
 * SHA256SUMS: the journal's lines are committed only once its files are
 * in place and queued, so a failure or a kill leaves the month pending
 * for the next run.  *written: the months written.  AC_ECANTCREAT when
 * a file cannot be written, the database's status otherwise. */
ac_status publish_journals(PGconn *conn, const char *out_root,
                           const upload_options *uopt, long long run_id,
                           int *written, char *err);

#endif
