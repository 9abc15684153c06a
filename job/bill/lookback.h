/* lookback.h: usage older than the look-back window that no statement
 * covers (docs/billing-rules.md 4.2, "Which periods a run covers").
 *
 * A run without --period bills the periods from
 * ref.operator.lookback_months before the current month up to it.  Calls
 * of an older period (a late import, a tenant added with its history)
 * are never billed by those runs: unless the period already has a
 * statement, they would stay unbilled and unseen.  This module finds
 * them, per tenant and period, so that the nightly run can warn in its
 * log and the finance summary can list them (sheet "Unbilled old usage"),
 * for finance to bill the period by hand (`acbill run --period P
 * --tenant T`).
 *
 * A period here is the tenant's (docs/billing-rules.md 3: the calendar month in its time
 * zone); tenants whose time zone PostgreSQL does not know are passed over
 * (every run fails them with that reason).  The search is a walk over the
 * index on usage.dialout_calls (tenant_id, start_time): one probe per
 * tenant and month with calls before the window, and a count only for the
 * months without a statement, so its cost does not grow with the number
 * of old calls. */
#ifndef AC_LOOKBACK_H
#define AC_LOOKBACK_H

#include <libpq-fe.h>

#include "status.h"

/* The query: $1 the first day of the window's first period
 * ('YYYY-MM-01'); one row per tenant and period before it with calls and
 * no statement (billing.invoices), ordered by tenant id (byte order) and
 * period, with the columns below.  Times are UTC text. */
extern const char lookback_unbilled_sql[];
enum {
    LB_TENANT, LB_NAME, LB_PERIOD, LB_CALLS, LB_FIRST, LB_LAST, LB_COLS
};

/* Log a warning per tenant and period that lookback_unbilled_sql finds
 * before window ('YYYY-MM', the first period a run without --period
 * covers; lookback is ref.operator.lookback_months, for the message), at
 * most 20 lines and then one line with the rest's count.  When tenants
 * (n of them) is not NULL, only those tenants.  *found receives the
 * number of tenant-periods.  conn must be idle; database errors as db.h
 * (nothing logged). */
ac_status lookback_warn(PGconn *conn, const char *window, int lookback,
                        const char *const *tenants, int n, long *found,
                        char *err);

#endif
