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
 * An invoice is committed before its workbook exists.  If the process
 * dies in between, the next run writes the missing workbook from the
 * ledger: byte for byte the same file. */
#ifndef AC_PUBLISH_H
#define AC_PUBLISH_H

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
 * the invoice's rated calls (report.h, REPORT_SPOOL_COLUMNS) that the
 * publisher owns from now on and deletes; NULL makes the publisher check
 * the existing workbook and write it from the ledger only when it is
 * missing or differs.  Waits while a few workbooks are already queued, so
 * the spool files waiting on disk stay few. */
ac_status publisher_submit(publisher *p, const char *invoice_no,
                           const char *spool_path, char *err);

/* Write what is queued, stop the thread and free p.  *failed receives the
 * number of workbooks that could not be written (their invoices stand;
 * the next run writes them).  Returns AC_ECANTCREAT when some failed. */
ac_status publisher_finish(publisher *p, int *failed, char *err);

#endif
