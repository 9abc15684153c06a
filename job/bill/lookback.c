/* lookback.c: see lookback.h. */
#include "lookback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

/* Warning lines at most; the rest are counted. */
#define LOOKBACK_LINES 20

/* walk: for each tenant, its first call, then the first call of each
 * next local month (an index probe each), while the month is before the
 * window; months: those before the window; then the ones without a
 * statement, with their calls counted. */
const char lookback_unbilled_sql[] =
    "WITH RECURSIVE"
    " zones AS MATERIALIZED (SELECT name FROM pg_timezone_names),"
    " t AS MATERIALIZED (SELECT tenant_id, name, time_zone FROM usage.tenants"
    "  WHERE time_zone IN (SELECT name FROM zones)),"
    " walk (tenant_id, time_zone, s) AS ("
    "  SELECT t.tenant_id, t.time_zone, (SELECT min(c.start_time)"
    "   FROM usage.dialout_calls c WHERE c.tenant_id = t.tenant_id) FROM t"
    "  UNION ALL"
    "  SELECT w.tenant_id, w.time_zone, (SELECT min(c.start_time)"
    "   FROM usage.dialout_calls c WHERE c.tenant_id = w.tenant_id"
    "   AND c.start_time >= (date_trunc('month', w.s AT TIME ZONE"
    "    w.time_zone) + interval '1 month') AT TIME ZONE w.time_zone)"
    "  FROM walk w WHERE w.s IS NOT NULL"
    "  AND date_trunc('month', w.s AT TIME ZONE w.time_zone)"
    "   < $1::date::timestamp),"
    " months AS (SELECT tenant_id, time_zone,"
    "  date_trunc('month', s AT TIME ZONE time_zone) AS m FROM walk"
    "  WHERE s IS NOT NULL"
    "  AND date_trunc('month', s AT TIME ZONE time_zone)"
    "   < $1::date::timestamp)"
    " SELECT mo.tenant_id, t.name, to_char(mo.m, 'YYYY-MM'), n.calls,"
    "  to_char(n.first AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
    "  to_char(n.last AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
    " FROM months mo JOIN t USING (tenant_id),"
    " LATERAL (SELECT count(*) AS calls, min(c.start_time) AS first,"
    "  max(c.start_time) AS last FROM usage.dialout_calls c"
    "  WHERE c.tenant_id = mo.tenant_id"
    "  AND c.start_time >= mo.m AT TIME ZONE mo.time_zone"
    "  AND c.start_time < (mo.m + interval '1 month')"
    "   AT TIME ZONE mo.time_zone) n"
    " WHERE NOT EXISTS (SELECT 1 FROM billing.invoices i"
    "  WHERE i.tenant_id = mo.tenant_id AND i.period = mo.m::date)"
    " ORDER BY mo.tenant_id COLLATE \"C\", mo.m";

ac_status lookback_warn(PGconn *conn, const char *window, int lookback,
                        const char *const *tenants, int n, long *found,
                        char *err)
{
    char date[16];
    PGresult *res;

    *found = 0;
    snprintf(date, sizeof date, "%.7s-01", window);
    const char *p[] = { date };
    ac_status rc = db_query(conn, lookback_unbilled_sql, 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    long shown = 0, calls_rest = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *tenant = PQgetvalue(res, i, LB_TENANT);
        int wanted = tenants == NULL;
        for (int k = 0; k < n && !wanted; k++)
            wanted = strcmp(tenants[k], tenant) == 0;
        if (!wanted)
            continue;
        (*found)++;
        if (shown == LOOKBACK_LINES) {
            calls_rest += atol(PQgetvalue(res, i, LB_CALLS));
            continue;
        }
        shown++;
        ac_warn("tenant %s: %s call(s) of period %s (%s to %s UTC) have no "
                "statement, and the period is older than the look-back "
                "window (runs without --period cover %s on: "
                "ref.operator.lookback_months %d): they are not billed; to "
                "bill them: acbill run --period %s --tenant %s", tenant,
                PQgetvalue(res, i, LB_CALLS), PQgetvalue(res, i, LB_PERIOD),
                PQgetvalue(res, i, LB_FIRST), PQgetvalue(res, i, LB_LAST),
                window, lookback, PQgetvalue(res, i, LB_PERIOD), tenant);
    }
    PQclear(res);
    if (*found > shown)
        ac_warn("%ld more tenant-period(s) older than the look-back window "
                "have calls (%ld) and no statement: see the finance "
                "summary's sheet \"Unbilled old usage\"", *found - shown,
                calls_rest);
    return AC_OK;
}
