/* lookback_test.c: usage older than the look-back window (lookback.h).
 *
 * A run without --period covers ref.operator.lookback_months (here 3)
 * before its month: as of 2026-12-07, 2026-09 to 2026-12.  Calls of
 * older periods that no statement covers are never billed by it; the run
 * warns in its log, per tenant and period, and the finance summary lists
 * them on its sheet "Unbilled old usage".  Periods are the tenant's
 * (New York's May ends at 04:00Z on 1 June); a period with a statement,
 * and a tenant whose time zone PostgreSQL does not know, are not listed.
 * Once the period is billed by hand it is no longer reported. */
#include <CUnit/CUnit.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bill/lookback.h"
#include "db.h"
#include "testdb.h"
#include "testmain.h"

#define LOG "/tmp/acbill-lookback-test.log"
#define AS_OF "--as-of 2026-12-07T00:00Z"

static PGconn *db;
static char conninfo[256];
static char dir[PATH_MAX];

static int run(const char *args)
{
    return test_system("%s run --db '%s' %s >" LOG " 2>&1",
                       test_acbill_path(), conninfo, args);
}

/* Lines of the log of the last run that contain text. */
static int log_count(const char *text)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "grep -cF -- '%s' " LOG, text);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p != NULL) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

/* The rows of a sheet as tests/xlsx_read.py prints them (malloc'd). */
static char *sheet_rows(const char *path, const char *name)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/xlsx_read.py'"
             " rows '%s' '%s'", test_src_dir(), path, name);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *out = malloc(cap);
    while (out != NULL && (got = fread(out + n, 1, cap - n - 1, p)) > 0)
        n += got;
    if (pclose(p) != 0 && out != NULL) {
        free(out);
        return NULL;
    }
    if (out != NULL)
        out[n] = '\0';
    return out;
}

#define CALL(id, tenant, start) \
    " ('00000000-0000-4000-8000-0000000000" id "', '" tenant "', 'o'," \
    " '+442071234567', '" start "', 60)"

static int suite_init(void)
{
    db = testdb_fresh("acbill_lookback_t", conninfo, sizeof conninfo);
    snprintf(dir, sizeof dir, "/tmp/acbill-lookback-test.XXXXXX");
    if (db == NULL || mkdtemp(dir) == NULL)
        return 1;
    return testdb_exec(db,
        "INSERT INTO ref.operator (legal_name, address, country, tax_id,"
        " payment_details, lookback_months) VALUES ('Resale Telecom Ltd',"
        " E'1 Exchange Square\\nLondon', 'GB', 'GB123456789', 'IBAN', 3);"
        "INSERT INTO ref.rates (currency, prefix, per_minute, valid_from)"
        " VALUES ('USD', '44', 0.0300, '2026-01-01T00:00Z');"
        "INSERT INTO usage.tenants (tenant_id, name, currency, time_zone)"
        " VALUES ('TA', 'Adatum', 'USD', 'UTC'),"
        " ('TB', 'Bellows', 'USD', 'America/New_York'),"
        " ('TC', 'Coho', 'USD', 'UTC'),"
        " ('TD', 'Dunes', 'USD', 'Mars/Olympus_Mons');"
        "INSERT INTO usage.dialout_calls (usage_id, tenant_id, organizer_id,"
        " destination_number, start_time, duration_seconds) VALUES"
        CALL("01", "TA", "2026-05-03T10:00Z") ","
        CALL("02", "TA", "2026-05-30T10:00Z") ","
        CALL("03", "TA", "2026-10-05T10:00Z") ","   /* in the window */
        CALL("04", "TB", "2026-04-15T10:00Z") ","
        CALL("05", "TB", "2026-06-01T03:59Z") ","   /* NY: 31 May */
        CALL("06", "TB", "2026-08-31T12:00Z") ","
        CALL("07", "TC", "2026-04-10T10:00Z") ","   /* has a statement */
        CALL("08", "TD", "2026-03-10T10:00Z"));
}

static int suite_clean(void)
{
    PQfinish(db);
    test_system("rm -rf '%s'", dir);
    return 0;
}

static void test_query(void)
{
    PGresult *res;
    char err[AC_ERR_MAX];
    const char *p[] = { "2026-09-01" };
    CU_ASSERT_EQUAL_FATAL(test_system("%s run --db '%s' --period 2026-04"
                                      " --tenant TC >" LOG " 2>&1",
                                      test_acbill_path(), conninfo), 0);
    CU_ASSERT_EQUAL_FATAL(db_query(db, lookback_unbilled_sql, 1, p, &res,
                                   err), AC_OK);
    char got[1024] = "";
    for (int i = 0; i < PQntuples(res); i++) {
        char row[160];
        snprintf(row, sizeof row, "%s %s %s %s %s %s;",
                 PQgetvalue(res, i, LB_TENANT), PQgetvalue(res, i, LB_NAME),
                 PQgetvalue(res, i, LB_PERIOD), PQgetvalue(res, i, LB_CALLS),
                 PQgetvalue(res, i, LB_FIRST), PQgetvalue(res, i, LB_LAST));
        strcat(got, row);
    }
    PQclear(res);
    CU_ASSERT_STRING_EQUAL(got,
        "TA Adatum 2026-05 2 2026-05-03 10:00:00 2026-05-30 10:00:00;"
        "TB Bellows 2026-04 1 2026-04-15 10:00:00 2026-04-15 10:00:00;"
        "TB Bellows 2026-05 1 2026-06-01 03:59:00 2026-06-01 03:59:00;"
        "TB Bellows 2026-08 1 2026-08-31 12:00:00 2026-08-31 12:00:00;");
    /* A window of 2026-08 leaves TB's August in it. */
    p[0] = "2026-08-01";
    CU_ASSERT_EQUAL_FATAL(db_query(db, lookback_unbilled_sql, 1, p, &res,
                                   err), AC_OK);
    CU_ASSERT_EQUAL(PQntuples(res), 3);
    PQclear(res);
}

static void test_nightly_run_reports(void)
{
    char path[PATH_MAX + 64];
    CU_ASSERT_EQUAL(test_system("%s run --db '%s' " AS_OF " --tenant TA"
                                " --tenant TB --tenant TC --out '%s' >" LOG
                                " 2>&1", test_acbill_path(), conninfo, dir),
                    0);
    CU_ASSERT_EQUAL(log_count("WARN tenant TA: 2 call(s) of period 2026-05"
                              " (2026-05-03 10:00:00 to 2026-05-30 10:00:00"
                              " UTC) have no statement"), 1);
    CU_ASSERT_EQUAL(log_count("to bill them: acbill run --period 2026-05"
                              " --tenant TA"), 1);
    CU_ASSERT_EQUAL(log_count("WARN tenant TB: 1 call(s) of period"), 3);
    CU_ASSERT_EQUAL(log_count("runs without --period cover 2026-09 on:"
                              " ref.operator.lookback_months 3"), 4);
    CU_ASSERT_EQUAL(log_count("tenant TC:"), 0);
    CU_ASSERT_EQUAL(log_count("tenant TD:"), 0);
    /* TA's October call is billed: it is in the window. */
    CU_ASSERT(testdb_equals(db, "SELECT string_agg(tenant_id || ' ' ||"
                            " to_char(period, 'YYYY-MM'), ', ' ORDER BY"
                            " tenant_id, period) FROM billing.invoices",
                            "TA 2026-10, TC 2026-04", __LINE__));

    /* The finance summary of the run's month lists them. */
    snprintf(path, sizeof path, "%s/2026-12/finance-summary-2026-12.xlsx",
             dir);
    char *rows = sheet_rows(path, "Unbilled old usage");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rows);
    const char *want =
        "Tenant\tName\tPeriod\tCalls\tFirst call (UTC)\tLast call (UTC)\t"
        "To bill the period\n"
        "TA\tAdatum\t2026-05\t2\t2026-05-03 10:00:00\t2026-05-30 10:00:00\t"
        "acbill run --period 2026-05 --tenant TA\n"
        "TB\tBellows\t2026-04\t1\t2026-04-15 10:00:00\t2026-04-15 10:00:00\t"
        "acbill run --period 2026-04 --tenant TB\n"
        "TB\tBellows\t2026-05\t1\t2026-06-01 03:59:00\t2026-06-01 03:59:00\t"
        "acbill run --period 2026-05 --tenant TB\n"
        "TB\tBellows\t2026-08\t1\t2026-08-31 12:00:00\t2026-08-31 12:00:00\t"
        "acbill run --period 2026-08 --tenant TB\n";
    if (strcmp(rows, want) != 0)
        fprintf(stderr, "\n--- got:\n%s--- want:\n%s", rows, want);
    CU_ASSERT_STRING_EQUAL(rows, want);
    free(rows);

    /* Finance bills TA's May by hand: the next night no longer reports
     * it (TB's periods still). */
    CU_ASSERT_EQUAL(run("--period 2026-05 --tenant TA"), 0);
    CU_ASSERT_EQUAL(test_system("%s run --db '%s' " AS_OF " --tenant TA"
                                " --tenant TB --tenant TC >" LOG " 2>&1",
                                test_acbill_path(), conninfo), 0);
    CU_ASSERT_EQUAL(log_count("tenant TA:"), 0);
    CU_ASSERT_EQUAL(log_count("WARN tenant TB: 1 call(s) of period"), 3);
    /* --tenant limits the warnings to the tenants of the run. */
    CU_ASSERT_EQUAL(run(AS_OF " --tenant TC"), 0);
    CU_ASSERT_EQUAL(log_count("tenant TB:"), 0);
}

CU_ErrorCode tests_register(void)
{
    CU_pSuite s = CU_add_suite("lookback", suite_init, suite_clean);
    if (s == NULL)
        return CU_get_error();
    CU_add_test(s, "old periods without a statement, by tenant and period",
                test_query);
    CU_add_test(s, "a nightly run warns, the finance summary lists",
                test_nightly_run_reports);
    return CU_get_error();
}
