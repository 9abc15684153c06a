/* db_test.c: the billing run end to end against a real PostgreSQL.
 *
 * Each suite makes its own database (testdb_fresh), loads fixtures with
 * psql and drives the real bin/acbill; assertions read billing.* back. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "testdb.h"
#include "testmain.h"

static PGconn *db;
static char conninfo[256];

/* Run `acbill run` with extra arguments; returns its exit status. */
static int acbill_run(const char *args)
{
    return test_system("%s run --db '%s' --quiet %s 2>>/tmp/acbill-db-test.log",
                       test_acbill_path(), conninfo, args);
}

static void assert_value(const char *sql, const char *want)
{
    char *got = testdb_value(db, sql);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "\n    %s\n    want '%s', got '%s'\n", sql, want, got);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
}

/* ------------------------------------------------ docs/billing-rules.md 5 suite */

static int suite_clean(void)
{
    PQfinish(db);
    db = NULL;
    return 0;
}

/* A suite whose set-up failed is not cleaned up by CUnit. */
static int init_failed(void)
{
    suite_clean();
    return 1;
}

static int spec_init(void)
{
    db = testdb_fresh("acbill_db_spec", conninfo, sizeof conninfo);
    if (db == NULL || testdb_load(conninfo, "spec_example.sql") != 0 ||
        acbill_run("--period 2026-10") != 0)
        return init_failed();
    return 0;
}

static void test_spec_invoice(void)
{
    assert_value("SELECT concat_ws(' ', revision, currency, seats,"
                 " pool_minutes, pool_used_minutes, exempt_minutes,"
                 " billed_minutes, calls, rejected_calls, total, supersedes"
                 " IS NULL) FROM billing.invoices WHERE tenant_id = 'T1'"
                 " AND period = '2026-10-01'",
                 "1 USD 2 120 120 61 20 17 5 5.15 t");
    /* docs/billing-rules.md 5.1: no billing profile, so no tax: subtotal 5.15, total 5.15 */
    assert_value("SELECT concat_ws(' ', subtotal, tax, total, tax_rate,"
                 " minor_unit) FROM billing.invoices WHERE tenant_id = 'T1'",
                 "5.15 0.00 5.15 0.0000 2");
    assert_value("SELECT concat_ws(' ', zero_calls, exempt_calls, pool_calls,"
                 " split_calls, billed_calls) FROM billing.invoices"
                 " WHERE tenant_id = 'T1'", "1 2 2 1 6");
}

static void test_spec_invoice_number(void)
{
    char *no = testdb_value(db, "SELECT invoice_no FROM billing.invoices"
                            " WHERE tenant_id = 'T1'");
    CU_ASSERT_PTR_NOT_NULL_FATAL(no);
    CU_ASSERT_PTR_NOT_NULL(strstr(no, "2026-10"));
    CU_ASSERT_PTR_NOT_NULL(strstr(no, "R1"));
    free(no);
}

static void test_spec_lines(void)
{
    assert_value("SELECT string_agg(country || ' ' || kind || ' ' ||"
                 " per_minute || ' ' || connection_fee || ' ' || amount, '; '"
                 " ORDER BY line_no) FROM billing.invoice_lines l JOIN"
                 " billing.invoices i USING (invoice_no) WHERE tenant_id = 'T1'",
                 "FR geographic 0.0350 0.0000 0.11; "
                 "GB geographic 0.0300 0.0000 0.03; "
                 "JM mobile 0.2500 0.0500 2.55; "
                 "PR geographic 0.0200 0.0000 0.02; "
                 "US geographic 0.0200 0.0000 0.04; "
                 "US premium 1.0000 0.0000 2.00; "
                 "ZW mobile 0.4000 0.0000 0.40");
    assert_value("SELECT sum(l.amount) = i.total FROM billing.invoice_lines l"
                 " JOIN billing.invoices i USING (invoice_no)"
                 " WHERE tenant_id = 'T1' GROUP BY i.total", "t");
}

/* Every call of the worked example's table: outcome, reason, pool, billed, amount. */
static void test_spec_calls(void)
{
    static const char *want[] = {
        "1 exempt  0 0 0.0000", "2 pool  31 0 0.0000",
        "3 pool  2 0 0.0000", "4 billed  0 10 2.5500",
        "5 billed  0 2 0.0400",
        "6 rejected ORGANIZER_NOT_LICENSED 0 0 0.0000",
        "7 split  87 3 0.1050", "8 billed  0 1 0.0300",
        "9 billed  0 1 0.0200",
        "10 rejected ORGANIZER_NOT_LICENSED 0 0 0.0000",
        "11 billed  0 2 2.0000", "12 billed  0 1 0.4000",
        "13 rejected UNKNOWN_DESTINATION 0 0 0.0000",
        "14 rejected INVALID_NUMBER 0 0 0.0000",
        "15 rejected INVALID_DURATION 0 0 0.0000",
        "16 zero  0 0 0.0000", "17 exempt  0 0 0.0000"
    };
    PGresult *res = PQexec(db,
        "SELECT right(usage_id::text, 2)::int || ' ' || outcome || ' ' ||"
        " coalesce(reason, '') || ' ' || r.pool_minutes || ' ' ||"
        " r.billed_minutes || ' ' || amount FROM billing.rated_calls r"
        " JOIN billing.invoices i USING (invoice_no) WHERE tenant_id = 'T1'"
        " ORDER BY seq");
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(res), PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL(PQntuples(res), 17);
    for (int i = 0; i < PQntuples(res) && i < 17; i++) {
        if (strcmp(PQgetvalue(res, i, 0), want[i]) != 0)
            fprintf(stderr, "\n    call %d: want '%s', got '%s'\n", i + 1,
                    want[i], PQgetvalue(res, i, 0));
        CU_ASSERT_STRING_EQUAL(PQgetvalue(res, i, 0), want[i]);
    }
    PQclear(res);
}

static void test_spec_outside_period(void)
{
    /* The calls of 2026-09-30 23:59:59 and 2026-11-01 00:00 UTC are not
     * October's. */
    assert_value("SELECT count(*) FROM billing.rated_calls WHERE usage_id IN"
                 " ('00000000-0000-0000-0000-000000000101',"
                 "  '00000000-0000-0000-0000-000000000102')", "0");
}

static void test_spec_findings(void)
{
    assert_value("SELECT string_agg(code || ':' || subject, ' ' ORDER BY"
                 " code, subject) FROM billing.findings f JOIN"
                 " billing.invoices i USING (invoice_no) WHERE tenant_id = 'T1'"
                 " AND usage_id IS NULL",
                 "BILLING_PROFILE_MISSING:T1 "
                 "LICENSE_OVER_ASSIGNED:DIALOUT_USCA "
                 "LICENSE_OVER_ASSIGNED:MCOMEETADD");
    /* ADDON_WITHOUT_PREREQUISITE names dave's call (docs/billing-rules.md 3: "the
     * usage_id where there is one"). */
    assert_value("SELECT string_agg(right(usage_id::text, 2) || ':' || code,"
                 " ' ' ORDER BY usage_id, code) FROM billing.findings f JOIN"
                 " billing.invoices i USING (invoice_no) WHERE tenant_id = 'T1'"
                 " AND usage_id IS NOT NULL",
                 "06:ADDON_WITHOUT_PREREQUISITE 06:ORGANIZER_NOT_LICENSED "
                 "10:ORGANIZER_NOT_LICENSED "
                 "13:UNKNOWN_DESTINATION 14:INVALID_NUMBER "
                 "15:INVALID_DURATION");
}

static void test_spec_organizers(void)
{
    assert_value("SELECT string_agg(concat_ws(' ', organizer_id, o.calls,"
                 " o.rejected_calls, o.exempt_minutes, o.pool_minutes,"
                 " o.billed_minutes, o.amount, addon_held), '; '"
                 " ORDER BY organizer_id) FROM billing.invoice_organizers o"
                 " JOIN billing.invoices i USING (invoice_no)"
                 " WHERE tenant_id = 'T1'",
                 "alice 4 0 61 2 1 0.0200 t; bob 9 3 0 118 16 4.6850 f; "
                 "carol 1 0 0 0 2 0.0400 f; dave 1 1 0 0 0 0.0000 t; "
                 "erin 2 1 0 0 1 0.4000 f");
}

static void test_spec_t2_time_zone(void)
{
    assert_value("SELECT concat_ws(' ', seats, pool_minutes,"
                 " pool_used_minutes, calls, total, currency)"
                 " FROM billing.invoices WHERE tenant_id = 'T2'",
                 "1 60 2 1 0.00 EUR");
    assert_value("SELECT right(usage_id::text, 3) || ' ' || outcome || ' ' ||"
                 " minutes || ' ' || r.pool_minutes || ' ' || start_local"
                 " FROM billing.rated_calls r JOIN billing.invoices i"
                 " USING (invoice_no) WHERE tenant_id = 'T2'",
                 "202 pool 2 2 2026-10-31 23:30:00");
    /* September holds the call at 03:59:59Z on 1 October (23:59:59 EDT),
     * November the one at 04:30Z on 1 November. */
    CU_ASSERT_EQUAL(acbill_run("--period 2026-09 --tenant T2"), 0);
    /* November (New York) ends 2026-12-01 05:00Z; issued 48 hours on. */
    CU_ASSERT_EQUAL(acbill_run("--period 2026-11 --tenant T2"
                               " --as-of 2026-12-03T05:00Z"), 0);
    assert_value("SELECT string_agg(to_char(period, 'YYYY-MM') || ':' ||"
                 " right(usage_id::text, 3), ' ' ORDER BY period)"
                 " FROM billing.rated_calls r JOIN billing.invoices i"
                 " USING (invoice_no) WHERE tenant_id = 'T2'",
                 "2026-09:201 2026-10:202 2026-11:203");
}

static void test_rerun_issues_nothing(void)
{
    long before = testdb_long(db, "SELECT count(*) FROM billing.invoices");
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM billing.invoices"),
                    before);
    assert_value("SELECT string_agg(tenant_id || ':' || status, ' ' ORDER BY"
                 " tenant_id) FROM billing.run_tenants WHERE run_id ="
                 " (SELECT max(run_id) FROM billing.runs)",
                 "T1:held T2:unchanged");
    assert_value("SELECT status || ' ' || tenants || ' ' || invoices_issued"
                 " FROM billing.runs ORDER BY run_id DESC LIMIT 1", "ok 2 0");
}

static void test_late_call_revision_2(void)
{
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "INSERT INTO usage.dialout_calls (usage_id, tenant_id, organizer_id,"
        " destination_number, start_time, duration_seconds) VALUES"
        " ('00000000-0000-0000-0000-000000000018', 'T1', 'bob',"
        "  '+442071234567', '2026-10-30T12:00:00Z', 125)"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    /* Revision 2 supersedes revision 1; the pool was used up, so the late
     * call to GB bills 3 minutes at 0.03. */
    assert_value("SELECT concat_ws(' ', revision, supersedes, calls, total)"
                 " FROM billing.invoices WHERE tenant_id = 'T1'"
                 " AND period = '2026-10-01' ORDER BY revision DESC LIMIT 1",
                 "2 T1-2026-10-R1 18 5.24");
    /* Revision 1 is intact. */
    assert_value("SELECT concat_ws(' ', calls, total, (SELECT count(*) FROM"
                 " billing.rated_calls r WHERE r.invoice_no = i.invoice_no))"
                 " FROM billing.invoices i WHERE invoice_no = 'T1-2026-10-R1'",
                 "17 5.15 17");
    /* T2 did not change: still one revision. */
    assert_value("SELECT max(revision) FROM billing.invoices"
                 " WHERE tenant_id = 'T2' AND period = '2026-10-01'", "1");
}

static void test_issued_rows_are_immutable(void)
{
    PGresult *res = PQexec(db, "UPDATE billing.invoices SET total = 0"
                           " WHERE invoice_no = 'T1-2026-10-R1'");
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
    res = PQexec(db, "DELETE FROM billing.rated_calls"
                 " WHERE invoice_no = 'T1-2026-10-R1'");
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
    assert_value("SELECT total FROM billing.invoices"
                 " WHERE invoice_no = 'T1-2026-10-R1'", "5.15");
}

static void test_second_run_exits_75(void)
{
    /* This session holds the run lock, as a running acbill would. */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "SELECT pg_advisory_lock(72542, 202610)"), 0);
    long runs = testdb_long(db, "SELECT count(*) FROM billing.runs");
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 75);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM billing.runs"),
                    runs);
    testdb_exec(db, "SELECT pg_advisory_unlock(72542, 202610)");
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
}

static void test_usage_and_unavailable(void)
{
    CU_ASSERT_EQUAL(acbill_run("--period 2026-13"), 64);
    CU_ASSERT_EQUAL(acbill_run("--period 202610"), 64);
    CU_ASSERT_EQUAL(acbill_run("--bogus"), 64);
    CU_ASSERT_EQUAL(acbill_run("--tenant NOPE --period 2026-10"), 64);
    CU_ASSERT_EQUAL(test_system("%s run --db 'host=/nonexistent' --quiet"
                                " 2>/dev/null", test_acbill_path()), 69);
    CU_ASSERT_EQUAL(test_system("%s --version >/dev/null",
                                test_acbill_path()), 0);
    CU_ASSERT_EQUAL(test_system("%s run --help >/dev/null",
                                test_acbill_path()), 0);
}


/* db_query() prepares a statement once per connection and runs it by
 * name after that; when the server has forgotten it (DEALLOCATE), the
 * query still runs, and is prepared again. */
static void test_statements_prepared_once(void)
{
    static const char sql[] = "SELECT $1::int + 1";
    const char *p[] = { "41" };
    char err[AC_ERR_MAX];
    PGresult *res;

    for (int round = 0; round < 4; round++) {
        if (round == 2)
            CU_ASSERT_EQUAL(db_exec(db, "DEALLOCATE ALL", err), AC_OK);
        CU_ASSERT_EQUAL_FATAL(db_query(db, sql, 1, p, &res, err), AC_OK);
        CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 0), "42");
        PQclear(res);
        CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM"
                                    " pg_prepared_statements WHERE"
                                    " statement = 'SELECT $1::int + 1'"),
                        round == 2 ? 0 : 1);
    }
}

/* ------------------------------------------------- bad data suite */

static int bad_init(void)
{
    db = testdb_fresh("acbill_db_bad", conninfo, sizeof conninfo);
    if (db == NULL || testdb_load(conninfo, "spec_example.sql") != 0 ||
        testdb_load(conninfo, "bad_data.sql") != 0)
        return init_failed();
    return 0;
}

static void test_bad_rows_never_abort(void)
{
    /* T3's time zone is unknown: T3 fails, the others are billed. */
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 65);
    assert_value("SELECT string_agg(tenant_id || ':' || status, ' ' ORDER BY"
                 " tenant_id) FROM billing.run_tenants",
                 "T1:held T2:issued T3:failed T4:issued");
    char *why = testdb_value(db, "SELECT message FROM billing.run_tenants"
                             " WHERE tenant_id = 'T3'");
    CU_ASSERT_PTR_NOT_NULL_FATAL(why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "Mars/Olympus"));
    free(why);
    assert_value("SELECT count(*) FROM billing.invoices WHERE tenant_id = 'T3'",
                 "0");
    assert_value("SELECT status || ' ' || tenants_failed FROM billing.runs",
                 "failed 1");
    assert_value("SELECT total FROM billing.invoices WHERE tenant_id = 'T1'",
                 "5.15");
}

static void test_bad_rows_each_get_a_reason(void)
{
    /* Every T4 input call of October is rated once, with its reason. */
    assert_value("SELECT count(*) FROM usage.dialout_calls c WHERE tenant_id"
                 " = 'T4' AND start_time >= '2026-10-01'"
                 " AND start_time < '2026-11-01'", "9");
    assert_value("SELECT string_agg(right(usage_id::text, 3) || ':' ||"
                 " outcome || ':' || coalesce(reason, '-'), ' '"
                 " ORDER BY seq) FROM billing.rated_calls r JOIN"
                 " billing.invoices i USING (invoice_no)"
                 " WHERE tenant_id = 'T4'",
                 "401:rejected:INVALID_DURATION 402:rejected:INVALID_NUMBER "
                 "403:rejected:INVALID_NUMBER 404:rejected:NO_ORGANIZER "
                 "405:rejected:NO_RATE 406:pool:- 407:rejected:NO_RATE "
                 "408:rejected:INVALID_NUMBER 409:rejected:UNKNOWN_DESTINATION");
    /* A number with a tab and a backslash survives COPY unchanged. */
    assert_value("SELECT destination_number = E'ab\\\\c\\td' FROM"
                 " billing.rated_calls WHERE usage_id ="
                 " '00000000-0000-0000-0000-000000000402'", "t");
    /* NO_RATE draws nothing: the pool's 60 minutes go to call 406. */
    assert_value("SELECT pool_used_minutes || ' ' || total FROM"
                 " billing.invoices WHERE tenant_id = 'T4'", "60 0.00");
    assert_value("SELECT count(*) FROM billing.findings f JOIN"
                 " billing.invoices i USING (invoice_no)"
                 " WHERE tenant_id = 'T4' AND usage_id IS NOT NULL", "8");
}

static void test_fixed_time_zone_next_run(void)
{
    /* The operator fixes T3's zone: the next run bills it, and only it. */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "UPDATE usage.tenants SET"
                          " time_zone = 'Europe/Paris' WHERE tenant_id = 'T3'"),
                          0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    assert_value("SELECT string_agg(tenant_id || ':' || status, ' ' ORDER BY"
                 " tenant_id) FROM billing.run_tenants WHERE run_id ="
                 " (SELECT max(run_id) FROM billing.runs)",
                 "T1:held T2:unchanged T3:issued T4:unchanged");
    /* Europe/Paris: 2026-09-30T22:30Z is 1 October 00:30 local. */
    assert_value("SELECT calls FROM billing.invoices WHERE tenant_id = 'T3'",
                 "1");
}

/* ------------------------------------------------- licence rules suite */

static int rules_init(void)
{
    db = testdb_fresh("acbill_db_rules", conninfo, sizeof conninfo);
    if (db == NULL || testdb_load(conninfo, "rules.sql") != 0 ||
        acbill_run("--period 2026-10") != 0 ||
        acbill_run("--period 2020-09") != 0)
        return init_failed();
    return 0;
}

static void test_seats_greatest_purchased(void)
{
    /* 2 seats until 10-15, then 5 (3 + 2 overlapping): the greatest is 5;
     * a purchase ending before the period does not count. */
    assert_value("SELECT seats || ' ' || pool_minutes || ' ' || seats_basis"
                 " FROM billing.invoices WHERE tenant_id = 'R1'"
                 " AND period = '2026-10-01'", "5 300 purchased");
}

static void test_seats_historic_assigned(void)
{
    /* Before 2020-10-01 the pool follows assigned users (3), not the 10
     * purchased. */
    assert_value("SELECT seats || ' ' || seats_basis FROM billing.invoices"
                 " WHERE tenant_id = 'R1' AND period = '2020-09-01'",
                 "3 assigned");
}

static void test_rate_change_mid_month(void)
{
    /* JM rate 0.2500 until 10-15, 0.3000 after; two 1-minute calls. */
    assert_value("SELECT string_agg(per_minute::text, ' ' ORDER BY seq)"
                 " FROM billing.rated_calls r JOIN billing.invoices i"
                 " USING (invoice_no) WHERE tenant_id = 'R1'"
                 " AND period = '2026-10-01' AND country = 'JM'",
                 "0.2500 0.3000");
}

static void test_fair_use_review(void)
{
    assert_value("SELECT string_agg(subject, ' ') FROM billing.findings f"
                 " JOIN billing.invoices i USING (invoice_no)"
                 " WHERE tenant_id = 'R1' AND code = 'FAIR_USE_REVIEW'",
                 "heavy");
    assert_value("SELECT exempt_minutes FROM billing.invoices"
                 " WHERE tenant_id = 'R1' AND period = '2026-10-01'", "3001");
}

/* ------------------------------------------------- workers suite */

static PGconn *db4;
static char conninfo4[256];
static char outdir[64] = "/tmp/acbill-workers-XXXXXX";

static int load_sample(const char *ci)
{
    return test_system("%s sample --db '%s' --period 2026-10 --tenants 12"
                       " --calls 4000 --seed 7 >/dev/null 2>&1",
                       test_acbill_path(), ci);
}

static int workers_init(void)
{
    if (mkdtemp(outdir) == NULL)
        return 1;
    db = testdb_fresh("acbill_db_w1", conninfo, sizeof conninfo);
    db4 = testdb_fresh("acbill_db_w4", conninfo4, sizeof conninfo4);
    if (db == NULL || db4 == NULL || load_sample(conninfo) != 0 ||
        load_sample(conninfo4) != 0)
        return init_failed();
    int r1 = test_system("%s run --db '%s' --quiet --period 2026-10"
                         " --workers 1 --out %s/w1 2>>/tmp/acbill-db-test.log",
                         test_acbill_path(), conninfo, outdir);
    int r4 = test_system("%s run --db '%s' --quiet --period 2026-10"
                         " --workers 4 --out %s/w4 2>>/tmp/acbill-db-test.log",
                         test_acbill_path(), conninfo4, outdir);
    /* Bad sample rows are rejected calls, never failed tenants. */
    if (r1 != 0 || r4 != 0)
        return init_failed();
    return 0;
}

static int workers_clean(void)
{
    PQfinish(db4);
    db4 = NULL;
    test_system("rm -rf %s", outdir);
    return suite_clean();
}

static void assert_same(const char *sql)
{
    char *a = testdb_value(db, sql), *b = testdb_value(db4, sql);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_EQUAL(a, b);
    free(a);
    free(b);
}

static void test_workers_same_ledger(void)
{
    CU_ASSERT(testdb_long(db, "SELECT count(*) FROM billing.rated_calls")
              > 3000);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM billing.invoices"),
                    12);
    assert_same("SELECT md5(string_agg(concat_ws('|', invoice_no, seq,"
                " usage_id, outcome, reason, country, kind, minutes,"
                " pool_minutes, billed_minutes, per_minute, connection_fee,"
                " amount), ',' ORDER BY invoice_no, seq))"
                " FROM billing.rated_calls");
    /* The workbooks' bytes (content_sha256) name the invoice documents,
     * whose numbers follow the order the workers finished in: compared
     * below, with the numbers set aside. */
    assert_same("SELECT md5(string_agg(concat_ws('|', invoice_no, revision,"
                " seats, pool_used_minutes, subtotal, tax, total,"
                " fingerprint, file_name), ',' ORDER BY invoice_no))"
                " FROM billing.invoices");
    assert_same("SELECT string_agg(concat_ws('|', tenant_id, kind, total,"
                " due_date - issue_date), ',' ORDER BY tenant_id, kind)"
                " FROM billing.documents");
    /* Gapless either way: 1 to 12 in the year's invoice series. */
    assert_same("SELECT string_agg(seq::text, ',' ORDER BY seq)"
                " FROM billing.documents");
    assert_same("SELECT md5(string_agg(concat_ws('|', invoice_no, line_no,"
                " country, amount), ',' ORDER BY invoice_no, line_no))"
                " FROM billing.invoice_lines");
    assert_same("SELECT md5(string_agg(concat_ws('|', invoice_no, seq, code,"
                " subject, detail), ',' ORDER BY invoice_no, seq))"
                " FROM billing.findings");
    assert_same("SELECT md5(string_agg(concat_ws('|', r.*), ','"
                " ORDER BY invoice_no)) FROM billing.invoice_reconciliation r");
}

/* Each invoice's reconciliation, recorded while billing, is what its
 * rated calls add up to (the sample's provider charges differ from
 * acbill's amounts on purpose on a few calls). */
static void test_reconciliation_recorded(void)
{
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM billing.invoices i"
                                " JOIN billing.invoice_reconciliation"
                                " USING (invoice_no)"), 12);
    CU_ASSERT(testdb_long(db, "SELECT sum(differing_calls)"
                          " FROM billing.invoice_reconciliation") > 0);
    CU_ASSERT(testdb_long(db, "SELECT sum(charged_calls - compared_calls)"
                          " FROM billing.invoice_reconciliation") > 0);
    assert_value("SELECT count(*) FROM billing.invoice_reconciliation x"
                 " JOIN billing.invoices i USING (invoice_no),"
                 " LATERAL (SELECT count(r.provider_charge) AS charged,"
                 "  count(*) FILTER (WHERE r.provider_charge IS NOT NULL"
                 "   AND r.provider_currency = i.currency) AS compared,"
                 "  coalesce(sum(r.provider_charge) FILTER (WHERE"
                 "   r.provider_currency = i.currency), 0) AS provider,"
                 "  coalesce(sum(r.amount) FILTER (WHERE r.provider_charge"
                 "   IS NOT NULL AND r.provider_currency = i.currency), 0)"
                 "   AS acbill,"
                 "  count(*) FILTER (WHERE r.provider_currency = i.currency"
                 "   AND abs(r.provider_charge - r.amount) >= 0.01) AS diff"
                 "  FROM billing.rated_calls r"
                 "  WHERE r.invoice_no = i.invoice_no) c"
                 " WHERE (x.charged_calls, x.compared_calls, x.provider_total,"
                 "  x.acbill_total, x.differing_calls)"
                 "  = (c.charged, c.compared, c.provider, c.acbill, c.diff)",
                 "12");
}

static void test_workers_same_workbooks(void)
{
    /* Byte-identical workbooks and finance summary, but for the numbers
     * of the invoice documents (gapless in the order the workers finished
     * in, so 1 and 4 workers number the tenants differently): every part
     * of every workbook compared with those numbers set aside. */
    CU_ASSERT_EQUAL(test_system("python3 %s/tests/xlsx_same.py"
                                " %s/w1/2026-10 %s/w4/2026-10",
                                test_src_dir(), outdir, outdir), 0);
    CU_ASSERT_EQUAL(test_system("cd %s/w4/2026-10 && sha256sum --quiet"
                                " --strict -c SHA256SUMS", outdir), 0);
    CU_ASSERT_EQUAL(test_system("test $(ls %s/w1/2026-10/*.xlsx | wc -l)"
                                " = 13", outdir), 0);
    /* The reused spool files and the temporaries are all gone. */
    CU_ASSERT_EQUAL(test_system("test -z \"$(ls -A %s/w1/2026-10"
                                " %s/w4/2026-10 | grep '^[.]')\"", outdir,
                                outdir), 0);
}

static void test_lost_workbook_written_again(void)
{
    /* As after a crash between commit and workbook: the file is gone and
     * a temporary and a spool were left behind.  The next run writes the
     * same bytes again and clears the leftovers. */
    CU_ASSERT_EQUAL_FATAL(test_system("mv %s/w1/2026-10/S00002-2026-10-R1.xlsx"
                                      " %s/S00002.before"
                                      " && touch %s/w1/2026-10/.x.xlsx.tmp-1"
                                      " %s/w1/2026-10/.acbill-spool-abc",
                                      outdir, outdir, outdir, outdir), 0);
    CU_ASSERT_EQUAL(test_system("%s run --db '%s' --quiet --period 2026-10"
                                " --out %s/w1 2>>/tmp/acbill-db-test.log",
                                test_acbill_path(), conninfo, outdir), 0);
    CU_ASSERT_EQUAL(test_system("cmp -s %s/w1/2026-10/S00002-2026-10-R1.xlsx"
                                " %s/S00002.before", outdir, outdir), 0);
    CU_ASSERT_EQUAL(test_system("ls -A %s/w1/2026-10 | grep -q '^\\.'",
                                outdir), 1);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM billing.invoices"),
                    12);
}

static void test_two_runs_together(void)
{
    char ci[256];
    PGconn *c = testdb_fresh("acbill_db_two", ci, sizeof ci);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL_FATAL(load_sample(ci), 0);
    int rc = test_system(
        "A='%s run --db %s --quiet --period 2026-10 --workers 2';"
        " $A 2>/dev/null & a=$!; $A 2>/dev/null & b=$!;"
        " wait $a; ea=$?; wait $b; eb=$?;"
        " case \"$ea $eb\" in '0 0'|'0 75'|'75 0') exit 0;; esac;"
        " echo \"exit codes $ea $eb\" >&2; exit 1",
        test_acbill_path(), ci);
    CU_ASSERT_EQUAL(rc, 0);
    /* Every tenant billed exactly once: one revision each. */
    char *v = testdb_value(c, "SELECT count(*) || ' ' || count(DISTINCT"
                           " tenant_id) || ' ' || max(revision)"
                           " FROM billing.invoices");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v, "12 12 1");
    free(v);
    PQfinish(c);
}

/* Poll sql until it returns want (at most ~60 s); 0 when it did. */
static int wait_for(PGconn *c, const char *sql, const char *want)
{
    for (int i = 0; i < 600; i++) {
        char *v = testdb_value(c, sql);
        int same = v != NULL && strcmp(v, want) == 0;
        free(v);
        if (same)
            return 0;
        test_system("sleep 0.1");
    }
    return -1;
}

static void test_join_shares_a_run(void)
{
    char ci[256];
    PGconn *c = testdb_fresh("acbill_db_join", ci, sizeof ci);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL_FATAL(load_sample(ci), 0);
    /* This session holds tenant S00003's claim: the run bills the other
     * eleven, then waits for it. */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(c, "SELECT pg_advisory_lock(('x' ||"
        " substr(md5('acbill/2026-10/S00003'), 1, 16))::bit(64)::bigint)"),
        0);
    CU_ASSERT_EQUAL_FATAL(test_system("rm -f %s/run.rc; (%s run --db %s"
        " --quiet --period 2026-10 2>/dev/null; echo $? > %s/run.rc) &",
        outdir, test_acbill_path(), ci, outdir), 0);
    CU_ASSERT_EQUAL_FATAL(wait_for(c, "SELECT count(*) FROM"
                                   " billing.run_tenants", "11"), 0);
    /* A joiner finds S00003 claimed and the rest done: it bills nothing
     * and exits 0. */
    CU_ASSERT_EQUAL(test_system("%s run --db %s --quiet --period 2026-10"
                                " --join 2>/dev/null", test_acbill_path(),
                                ci), 0);
    CU_ASSERT_EQUAL(testdb_long(c, "SELECT count(*) FROM billing.invoices"),
                    11);
    /* The claim released, the run bills S00003 and closes. */
    testdb_exec(c, "SELECT pg_advisory_unlock_all()");
    CU_ASSERT_EQUAL(wait_for(c, "SELECT status FROM billing.runs", "ok"), 0);
    char *v = testdb_value(c, "SELECT count(*) || ' ' || count(DISTINCT"
                           " tenant_id) FROM billing.invoices");
    CU_ASSERT_STRING_EQUAL(v ? v : "", "12 12");
    free(v);
    CU_ASSERT_EQUAL(test_system("sleep 0.3; test \"$(cat %s/run.rc)\" = 0",
                                outdir), 0);
    /* With no run in progress, --join has nothing to do. */
    CU_ASSERT_EQUAL(test_system("%s run --db %s --quiet --period 2026-10"
                                " --join 2>/dev/null", test_acbill_path(),
                                ci), 0);
    CU_ASSERT_EQUAL(testdb_long(c, "SELECT count(*) FROM billing.runs"), 1);
    PQfinish(c);
}

CU_ErrorCode tests_register(void)
{
    static CU_TestInfo spec[] = {
        { "docs/billing-rules.md 5: T1 invoice figures", test_spec_invoice },
        { "docs/billing-rules.md 5: invoice number", test_spec_invoice_number },
        { "docs/billing-rules.md 5: T1 invoice lines", test_spec_lines },
        { "docs/billing-rules.md 5: every call's outcome", test_spec_calls },
        { "docs/billing-rules.md 5: calls outside the period", test_spec_outside_period },
        { "docs/billing-rules.md 5: findings", test_spec_findings },
        { "docs/billing-rules.md 5: organizers", test_spec_organizers },
        { "docs/billing-rules.md 5: T2 time-zone boundaries", test_spec_t2_time_zone },
        { "re-run issues nothing", test_rerun_issues_nothing },
        { "late call issues revision 2", test_late_call_revision_2 },
        { "issued rows are immutable", test_issued_rows_are_immutable },
        { "second concurrent run exits 75", test_second_run_exits_75 },
        { "usage errors 64, no database 69", test_usage_and_unavailable },
        { "statements prepared once per connection",
          test_statements_prepared_once },
        CU_TEST_INFO_NULL
    };
    static CU_TestInfo bad[] = {
        { "a failing tenant does not stop the others",
          test_bad_rows_never_abort },
        { "every bad row gets one outcome and a reason",
          test_bad_rows_each_get_a_reason },
        { "the next run picks up the fixed tenant",
          test_fixed_time_zone_next_run },
        CU_TEST_INFO_NULL
    };
    static CU_TestInfo rules[] = {
        { "seats: greatest purchased in force", test_seats_greatest_purchased },
        { "seats: assigned before 2020-10", test_seats_historic_assigned },
        { "rate change mid-month", test_rate_change_mid_month },
        { "fair-use review", test_fair_use_review },
        CU_TEST_INFO_NULL
    };
    static CU_TestInfo workers[] = {
        { "1 and 4 workers: identical ledgers", test_workers_same_ledger },
        { "reconciliation recorded per invoice",
          test_reconciliation_recorded },
        { "1 and 4 workers: byte-identical workbooks",
          test_workers_same_workbooks },
        { "a lost workbook is written again, byte for byte",
          test_lost_workbook_written_again },
        { "two runs started together bill each tenant once",
          test_two_runs_together },
        { "--join helps the run in progress", test_join_shares_a_run },
        CU_TEST_INFO_NULL
    };
    static CU_SuiteInfo suites[] = {
        { "spec example", spec_init, suite_clean, NULL, NULL, spec },
        { "bad data", bad_init, suite_clean, NULL, NULL, bad },
        { "licence and rate rules", rules_init, suite_clean, NULL, NULL,
          rules },
        { "workers", workers_init, workers_clean, NULL, NULL, workers },
        CU_SUITE_INFO_NULL
    };
    return CU_register_suites(suites);
}
