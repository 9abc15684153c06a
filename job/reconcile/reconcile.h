/* reconcile.h: `acbill reconcile` (SPEC version 3, section 7): acbill's
 * billing against Microsoft's Partner Center charges, per tenant and
 * currency, as reconciliation-<YYYY-MM>.xlsx (reports/reconciliation.h
 * has the rules; docs/reconciliation.md explains them to finance). */
#ifndef AC_RECONCILE_H
#define AC_RECONCILE_H

#include <libpq-fe.h>

#include "status.h"

/* The workbook's file name for period 'YYYY-MM'. */
#define RECONCILE_NAME_FMT "reconciliation-%s.xlsx"

/* Write dir/reconciliation-<period>.xlsx safely: to a temporary name in
 * dir (starting with '.', so SHA256SUMS never lists it), then renamed over
 * the old file, so readers see the old or the new workbook, never a part.
 * dir must exist.  name (64 bytes, may be NULL) receives the file name.
 * *findings (may be NULL) receives the number of findings.  Returns
 * AC_OK; AC_EUSAGE for a bad period; AC_ECANTCREAT when the file cannot
 * be written (the temporary file is removed); the database's status. */
ac_status reconcile_write(PGconn *conn, const char *period, const char *dir,
                          char name[64], long long *findings, char *err);

/* acbill reconcile --period YYYY-MM [--out DIR] [--db CONNINFO]: write
 * DIR/YYYY-MM/reconciliation-YYYY-MM.xlsx (DIR defaults to ".") and
 * DIR/YYYY-MM/SHA256SUMS.  Exit status as status.h. */
int cmd_reconcile(int argc, char **argv);

#endif
