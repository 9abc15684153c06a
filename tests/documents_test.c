/* documents_test.c: the financial documents, the grace period and the
 * nightly run's periods (docs/billing-rules.md 4.2) end to end against a real
 * PostgreSQL, with the real bin/acbill.
 *
 * Invoices and credit notes with gapless numbers per series and year,
 * void and replace when money changes, nothing when it does not, drafts
 * in the grace period, the periods a run without --period covers, and the
 * cheap check of a tenant-period whose inputs did not change. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bill/run.h"
#include "testdb.h"
#include "testmain.h"

static PGconn *db;
static char conninfo[256];
static char out_dir[256];

static int acbill_run(const char *args)
{
    return test_system("%s run --db '%s' --quiet %s "
                       "2>>/tmp/acbill-documents-test.log",
                       test_acbill_path(), conninfo, args);
}

#define EXPECT(sql, want) CU_ASSERT(testdb_equals(db, sql, want, __LINE__))

static int suite_clean(void)
{
    PQfinish(db);
    db = NULL;
    return 0;
}

static int documents_init(void)
{
    db = testdb_fresh("acbill_documents", conninfo, sizeof conninfo);
    snprintf(out_dir, sizeof out_dir, "/tmp/acbill-documents-test.%d",
             (int)getpid());
    if (db == NULL || testdb_load(conninfo, "spec_example.sql") != 0 ||
        testdb_load(conninfo, "northwind.sql") != 0 ||
        testdb_exec(db, "INSERT INTO ref.operator (legal_name, address,"
                    " country, tax_id, payment_details) VALUES"
                    " ('Resale Telecom Ltd', E'1 Exchange Square\\nLondon',"
                    " 'GB', 'GB123456789', 'IBAN GB00 TEST 0000 0000')") != 0 ||
        acbill_run("--period 2026-10") != 0) {
        suite_clean();
        return 1;
    }
    return 0;
}

/* Revision 1 of each tenant-period: one invoice for its total, numbered
 * without gaps in the year of issue, dated in the tenant's time zone and
 * due after its payment terms. */
static void test_first_invoices(void)
{
    EXPECT("SELECT string_agg(concat_ws(' ', tenant_id, kind, total,"
           " currency, seq, voids IS NULL), '; ' ORDER BY seq)"
           " FROM billing.documents",
           "T1 invoice 5.15 USD 1 t; T2 invoice 0.00 EUR 2 t; "
           "T3 invoice 42 JPY 3 t");
    /* INV-<year>-000001, ...: the year of issue, six digits. */
    EXPECT("SELECT bool_and(document_no = 'INV-' || year || '-' ||"
           " lpad(seq::text, 6, '0') AND year = extract(year FROM"
           " issue_date)) FROM billing.documents", "t");
    EXPECT("SELECT bool_and(d.issue_date = (d.issued_at AT TIME ZONE"
           " i.time_zone)::date) FROM billing.documents d JOIN"
           " billing.invoices i USING (invoice_no)", "t");
    /* Northwind has a profile: 30 days, tax 10 %; Contoso has none: 30
     * days by default and no buyer. */
    EXPECT("SELECT string_agg(concat_ws(' ', tenant_id, due_date -"
           " issue_date, tax_rate, tax, buyer IS NULL), '; ' ORDER BY seq)"
           " FROM billing.documents",
           "T1 30 0.0000 0.00 t; T2 30 0.0000 0.00 t; T3 30 0.1000 4 f");
    EXPECT("SELECT seller->>'legal_name' || ' / ' || (buyer->>'legal_name')"
           " FROM billing.documents WHERE tenant_id = 'T3'",
           "Resale Telecom Ltd / Northwind KK");
    EXPECT("SELECT string_agg(status || ':' || coalesce(message, ''), ' '"
           " ORDER BY tenant_id) FROM billing.run_tenants",
           "issued:INV-2026-000001 issued:INV-2026-000002 "
           "issued:INV-2026-000003");
}

/* A late call that changes money: revision 2, a credit note voiding the
 * whole first invoice and a new invoice; the numbers go on without gaps
 * in each series. */
static void test_void_and_replace(void)
{
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "INSERT INTO usage.dialout_calls (usage_id, call_id, conference_id,"
        " tenant_id, organizer_id, destination_number, start_time,"
        " duration_seconds) VALUES ('00000000-0000-0000-0003-000000000008',"
        " 'n8', 'nconf8', 'T3', 'kenji@northwind.example', '+81312349999',"
        " '2026-10-20T02:00:00Z', 600)"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    /* 10 more minutes at 3.5 JPY: 17.5 + 35 = 52.5 -> 53; 20 + 53 = 73,
     * tax 7.3 -> 7, total 80. */
    EXPECT("SELECT concat_ws(' ', revision, supersedes, subtotal, tax,"
           " total) FROM billing.invoices WHERE tenant_id = 'T3'"
           " ORDER BY revision DESC LIMIT 1",
           "2 T3-2026-10-R1 73 7 80");
    EXPECT("SELECT string_agg(concat_ws(' ', document_no, kind, subtotal,"
           " tax, total, coalesce(voids, '-'), invoice_no), '; ' ORDER BY"
           " issued_at, kind, seq) FROM billing.documents"
           " WHERE tenant_id = 'T3'",
           "INV-2026-000003 invoice 38 4 42 - T3-2026-10-R1; "
           "CN-2026-000001 credit_note -38 -4 -42 INV-2026-000003 "
           "T3-2026-10-R2; "
           "INV-2026-000004 invoice 73 7 80 - T3-2026-10-R2");
    /* The other tenants are unchanged: no document. */
    EXPECT("SELECT count(*) FROM billing.documents WHERE tenant_id <> 'T3'",
           "2");
}

/* A revision whose money is unchanged (a late call rejected, so the
 * statement changes) issues no document: the invoice in force stands. */
static void test_zero_money_change(void)
{
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "INSERT INTO usage.dialout_calls (usage_id, call_id, conference_id,"
        " tenant_id, organizer_id, destination_number, start_time,"
        " duration_seconds) VALUES ('00000000-0000-0000-0003-000000000009',"
        " 'n9', 'nconf9', 'T3', 'kenji@northwind.example', '+999123',"
        " '2026-10-21T02:00:00Z', 60)"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10 --tenant T3"), 0);
    EXPECT("SELECT max(revision) FROM billing.invoices"
           " WHERE tenant_id = 'T3'", "3");
    EXPECT("SELECT count(*) FROM billing.documents WHERE tenant_id = 'T3'",
           "3");
    EXPECT("SELECT documents = '{}' FROM billing.document_decisions"
           " WHERE invoice_no = 'T3-2026-10-R3'", "t");
    /* Deciding again writes nothing and takes no number. */
    EXPECT("SELECT cardinality(billing.issue_documents('T3-2026-10-R3'))"
           " || ' ' || cardinality(billing.issue_documents('T3-2026-10-R2'))"
           " || ' ' || (SELECT sum(last) FROM billing.document_numbers)",
           "0 2 5");
}

/* Documents never change. */
static void test_documents_immutable(void)
{
    PGresult *res = PQexec(db, "UPDATE billing.documents SET total = 0"
                           " WHERE document_no = 'INV-2026-000001'");
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
    res = PQexec(db, "DELETE FROM billing.documents"
                 " WHERE document_no = 'CN-2026-000001'");
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
}

/* A night with nothing new: each tenant-period is a cheap check (its
 * inputs' digest), not a re-rating. */
static void test_unchanged_is_a_cheap_check(void)
{
    char *before = testdb_value(db, "SELECT string_agg(rated_at::text, ','"
                                " ORDER BY tenant_id) FROM"
                                " billing.period_inputs");
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    char *after = testdb_value(db, "SELECT string_agg(rated_at::text, ','"
                               " ORDER BY tenant_id) FROM"
                               " billing.period_inputs");
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_STRING_EQUAL(before, after);  /* nothing was rated */
    free(before);
    free(after);
    EXPECT("SELECT string_agg(status, ' ' ORDER BY tenant_id) FROM"
           " billing.run_tenants WHERE run_id = (SELECT max(run_id) FROM"
           " billing.runs)", "unchanged unchanged unchanged");
    /* A change that gives the same result (a call outside the period, a
     * licence for nobody) is rated, found unchanged, and remembered. */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "INSERT INTO usage.license_purchases (tenant_id, sku, quantity,"
        " valid_from) VALUES ('T2', 'FOO', 0, '2020-01-01T00:00Z')"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10 --tenant T2"), 0);
    EXPECT("SELECT count(*) FROM billing.invoices WHERE tenant_id = 'T2'"
           " AND period = '2026-10-01'", "2");
}

/* docs/billing-rules.md 4.2: before its local end + 48 h a period is drafted: no number,
 * nothing in the ledger but the run's record, the workbook under
 * drafts/, left out of SHA256SUMS. */
static void test_grace_period_draft(void)
{
    char path[512], cmd[600];
    long docs_before = testdb_long(db, "SELECT count(*) FROM"
                                   " billing.documents");
    /* T1 (UTC): November ends 2026-12-01T00:00Z; at 2026-12-02T23:00Z
     * it is in its grace period. */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "INSERT INTO usage.dialout_calls (usage_id, call_id, conference_id,"
        " tenant_id, organizer_id, destination_number, start_time,"
        " duration_seconds) VALUES ('00000000-0000-0000-0001-000000000001',"
        " 'd1', 'dconf1', 'T1', 'bob', '+19005550100',"
        " '2026-11-10T09:00:00Z', 120)"), 0);
    snprintf(cmd, sizeof cmd, "--period 2026-11 --tenant T1 --out %s"
             " --as-of 2026-12-02T23:00Z", out_dir);
    CU_ASSERT_EQUAL(acbill_run(cmd), 0);
    EXPECT("SELECT count(*) FROM billing.invoices WHERE period ="
           " '2026-11-01'", "0");
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM"
                                " billing.documents"), docs_before);
    EXPECT("SELECT status || ': ' || message FROM billing.run_tenants"
           " WHERE run_id = (SELECT max(run_id) FROM billing.runs)",
           "draft: in its grace period until 2026-12-03 00:00 UTC: "
           "drafted, not issued");
    snprintf(path, sizeof path, "%s/2026-11/drafts/T1-2026-11-DRAFT.xlsx",
             out_dir);
    struct stat st;
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT(st.st_size > 0);
    /* Drafts are not listed in SHA256SUMS. */
    CU_ASSERT_EQUAL(test_system("! grep -q DRAFT %s/2026-11/SHA256SUMS",
                                out_dir), 0);
    /* Past the grace period, the same period is issued. */
    snprintf(cmd, sizeof cmd, "--period 2026-11 --tenant T1 --out %s"
             " --as-of 2026-12-03T00:00Z", out_dir);
    CU_ASSERT_EQUAL(acbill_run(cmd), 0);
    EXPECT("SELECT invoice_no || ' ' || total FROM billing.invoices"
           " WHERE period = '2026-11-01'", "T1-2026-11-R1 2.00");
    test_system("rm -rf %s", out_dir);
}

/* Without --period, a run covers lookback_months before this month up to
 * this month: the ended ones past grace are issued, the rest drafted. */
static void test_nightly_periods(void)
{
    char p[8][8];
    /* 2026-12-05: September to December. */
    CU_ASSERT_EQUAL(run_open_periods(1796428800, 3, p, 8), 4);
    CU_ASSERT_STRING_EQUAL(p[0], "2026-09");
    CU_ASSERT_STRING_EQUAL(p[3], "2026-12");
    /* January looks back into the year before. */
    CU_ASSERT_EQUAL(run_open_periods(1799107200, 1, p, 8), 2);
    CU_ASSERT_STRING_EQUAL(p[0], "2026-12");
    CU_ASSERT_STRING_EQUAL(p[1], "2027-01");

    CU_ASSERT_EQUAL(testdb_exec(db, "UPDATE ref.operator SET"
                                " lookback_months = 2"), 0);
    CU_ASSERT_EQUAL(acbill_run("--tenant T2 --as-of 2026-12-05T12:00Z"), 0);
    EXPECT("SELECT string_agg(to_char(r.period, 'YYYY-MM') || ':' ||"
           " t.status, ' ' ORDER BY r.period) FROM billing.runs r JOIN"
           " billing.run_tenants t USING (run_id) WHERE t.tenant_id = 'T2'"
           " AND r.run_id > (SELECT max(run_id) - 3 FROM billing.runs)",
           "2026-10:unchanged 2026-11:issued 2026-12:no_usage");
    /* A month the tenant did not use takes no number and keeps nothing. */
    EXPECT("SELECT count(*) FROM billing.invoices WHERE tenant_id = 'T2'"
           " AND period = '2026-12-01'", "0");
}

CU_ErrorCode tests_register(void)
{
    static CU_TestInfo docs[] = {
        { "revision 1: one invoice each, gapless", test_first_invoices },
        { "money changes: credit note and new invoice",
          test_void_and_replace },
        { "money unchanged: no document", test_zero_money_change },
        { "documents are immutable", test_documents_immutable },
        { "nothing new: a cheap check", test_unchanged_is_a_cheap_check },
        { "grace period: a draft, then the invoice",
          test_grace_period_draft },
        { "without --period: the open periods", test_nightly_periods },
        CU_TEST_INFO_NULL
    };
    static CU_SuiteInfo suites[] = {
        { "financial documents", documents_init, suite_clean, NULL, NULL,
          docs },
        CU_SUITE_INFO_NULL
    };
    return CU_register_suites(suites);
}
