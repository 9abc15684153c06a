/* rating_rules_test.c: the version 2 rating rules (docs/billing-rules.md 3) end to end
 * against a real PostgreSQL: the worked example of docs/billing-rules.md 5.2
 * (Northwind, JPY) and one tenant per fault of the version 2 rules
 * (tests/fixtures/v2_faults.sql), each with the value docs/billing-rules.md gives.
 *
 * Each suite makes its own database, migrated by the real `acbill
 * migrate`, loads its fixture with psql, runs the real bin/acbill and
 * reads billing.* back. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "testmain.h"

static PGconn *db;
static char conninfo[256];
static int run_status = -1;

static int acbill_run(const char *args)
{
    return test_system("%s run --db '%s' --quiet %s "
                       "2>>/tmp/acbill-rating-rules-test.log",
                       test_acbill_path(), conninfo, args);
}

#define EXPECT(sql, want) CU_ASSERT(testdb_equals(db, sql, want, __LINE__))

static int suite_clean(void)
{
    PQfinish(db);
    db = NULL;
    return 0;
}

/* ------------------------------------------------- docs/billing-rules.md 5.2 Northwind */

static int northwind_init(void)
{
    db = testdb_fresh("acbill_v2_northwind", conninfo, sizeof conninfo);
    if (db == NULL || testdb_load(conninfo, "northwind.sql") != 0 ||
        acbill_run("--period 2026-10") != 0) {
        suite_clean();
        return 1;
    }
    return 0;
}

static void test_northwind_calls(void)
{
    EXPECT("SELECT string_agg(right(usage_id::text, 1) || ' ' || outcome"
           " || coalesce(' ' || reason, '') || ' ' || r.pool_minutes || ' '"
           " || r.billed_minutes || ' ' || amount, '; ' ORDER BY seq)"
           " FROM billing.rated_calls r JOIN billing.invoices i"
           " USING (invoice_no) WHERE tenant_id = 'T3'",
           "1 pool 3 0 0.0000; 4 rejected DUPLICATE 0 0 0.0000; "
           "2 pool 1 0 0.0000; 3 pool 2 0 0.0000; "
           "5 billed 0 2 20.0000; 6 rejected INVALID_DURATION 0 0 0.0000; "
           "7 split 54 5 17.5000");
    /* The duplicate names the call it repeats. */
    EXPECT("SELECT duplicate_of FROM billing.rated_calls"
           " WHERE usage_id = '00000000-0000-0000-0003-000000000004'",
           "00000000-0000-0000-0003-000000000001");
    EXPECT("SELECT country || ' ' || kind FROM billing.rated_calls"
           " WHERE usage_id = '00000000-0000-0000-0003-000000000005'",
           "GB premium");
}

static void test_northwind_invoice(void)
{
    /* Seats 1 (E5 grants Audio Conferencing), pool 60, used 60, billed 7,
     * calls 7, rejected 2; subtotal 38, tax 10 % of 38 = 3.8 -> 4,
     * total 42 JPY. */
    EXPECT("SELECT concat_ws(' ', seats, pool_minutes, pool_used_minutes,"
           " billed_minutes, calls, rejected_calls, currency, minor_unit,"
           " subtotal, tax_rate, tax, total) FROM billing.invoices"
           " WHERE tenant_id = 'T3'",
           "1 60 60 7 7 2 JPY 0 38 0.1000 4 42");
    EXPECT("SELECT string_agg(concat_ws(' ', country, kind, per_minute,"
           " l.calls, minutes, exact_amount, amount), '; ' ORDER BY line_no)"
           " FROM billing.invoice_lines l JOIN billing.invoices i"
           " USING (invoice_no) WHERE tenant_id = 'T3'",
           "GB premium 10.0000 1 2 20.0000 20; "
           "JP geographic 3.5000 1 5 17.5000 18");
    /* The organizer, written two ways, is one organizer, shown as on
     * its first call. */
    EXPECT("SELECT string_agg(concat_ws(' ', organizer_id, o.calls,"
           " o.rejected_calls, o.pool_minutes, o.billed_minutes, o.amount),"
           " '; ') FROM billing.invoice_organizers o JOIN billing.invoices i"
           " USING (invoice_no) WHERE tenant_id = 'T3'",
           "kenji@northwind.example 7 2 60 7 37.5000");
}

static void test_northwind_findings(void)
{
    EXPECT("SELECT string_agg(code || coalesce(':' || right(usage_id::text,"
           " 1), ''), ' ' ORDER BY seq) FROM billing.findings f"
           " JOIN billing.invoices i USING (invoice_no)"
           " WHERE tenant_id = 'T3'",
           "DUPLICATE:4 INVALID_DURATION:6");
    EXPECT("SELECT detail FROM billing.findings WHERE code = 'DUPLICATE'",
           "The call repeats call 00000000-0000-0000-0003-000000000001 "
           "(same call id, conference, organizer, number, start and "
           "duration): it is counted once.");
}

static void test_northwind_rerun(void)
{
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    EXPECT("SELECT count(*) FROM billing.invoices WHERE tenant_id = 'T3'",
           "1");
}

/* ------------------------------------------------ the version 2 faults */

static int faults_init(void)
{
    db = testdb_fresh("acbill_v2_faults", conninfo, sizeof conninfo);
    if (db == NULL || testdb_load(conninfo, "v2_faults.sql") != 0) {
        suite_clean();
        return 1;
    }
    run_status = acbill_run("--period 2026-10");
    return 0;
}

/* The status of a tenant in the run, and its message when it failed. */
#define TENANT_STATUS(t)                                                  \
    "SELECT status || coalesce(': ' || message, '') FROM"                 \
    " billing.run_tenants WHERE tenant_id = '" t "'"

static void test_run_exits_65(void)
{
    /* Some tenants fail their checks: the run says so, the others are
     * billed. */
    CU_ASSERT_EQUAL(run_status, 65);
    EXPECT("SELECT string_agg(tenant_id || ':' || status, ' ' ORDER BY"
           " tenant_id) FROM billing.run_tenants",
           "F01:failed F02:failed F03:failed F04:failed F05:failed "
           "F06:issued F07:issued F08:issued F09:issued F10:issued "
           "F11:issued F12:issued F13:issued F14:failed F15:issued");
}

static void test_time_zone_abbreviation_refused(void)
{
    EXPECT("SELECT message LIKE '%time zone ''PST'' is not an IANA time zone"
           " name%' FROM billing.run_tenants WHERE tenant_id = 'F01'", "t");
    EXPECT("SELECT message LIKE '%time zone ''UTC+3'' is not an IANA%'"
           " FROM billing.run_tenants WHERE tenant_id = 'F02'", "t");
}

static void test_currency_checked(void)
{
    EXPECT("SELECT message LIKE '%currency ''eur'' is not an ISO 4217 code"
           "%' FROM billing.run_tenants WHERE tenant_id = 'F03'", "t");
    EXPECT("SELECT message LIKE '%1 calls need a rate, and ref.rates has no"
           " rate at all in CHF%' FROM billing.run_tenants"
           " WHERE tenant_id = 'F04'", "t");
    EXPECT("SELECT count(*) FROM billing.invoices WHERE tenant_id IN"
           " ('F01', 'F02', 'F03', 'F04', 'F05', 'F14')", "0");
}

static void test_huge_quantity_fails_clearly(void)
{
    EXPECT("SELECT message LIKE '%2147483647 seats (2147483647 purchased, 0"
           " assigned) would give a pool of more than 2,147,483,647"
           " minutes%' FROM billing.run_tenants WHERE tenant_id = 'F05'",
           "t");
}

static void test_bundle_and_case(void)
{
    /* SPE_E5 x3 grants Audio Conferencing: 3 seats, 180 minutes; the
     * organizer matches the licence whatever the case and spaces. */
    EXPECT("SELECT concat_ws(' ', seats, pool_minutes, pool_used_minutes,"
           " rejected_calls, total) FROM billing.invoices"
           " WHERE tenant_id = 'F06'", "3 180 11 0 0.00");
    EXPECT("SELECT string_agg(organizer_id || ' ' || o.calls, '; ')"
           " FROM billing.invoice_organizers o JOIN billing.invoices i"
           " USING (invoice_no) WHERE tenant_id = 'F06'",
           " kenji@example.com 2");
    EXPECT("SELECT string_agg(code || ' ' || subject, '; ' ORDER BY seq)"
           " FROM billing.findings f JOIN billing.invoices i"
           " USING (invoice_no) WHERE tenant_id = 'F06'",
           "BILLING_PROFILE_MISSING F06; UNKNOWN_SKU FOO_UNKNOWN_SKU; "
           "DESTINATION_COUNTRY_MISMATCH call "
           "0000000f-0006-0000-0000-000000000002");
    EXPECT("SELECT detail FROM billing.findings"
           " WHERE code = 'DESTINATION_COUNTRY_MISMATCH'",
           "The provider says the call to +33142685301 went to DE, acbill "
           "rates it as FR (geographic).");
}

static void test_inverted_intervals(void)
{
    /* The inverted purchase of 5 and olaf's inverted assignment count
     * for nothing: 1 seat, olaf unlicensed, no false over-assignment. */
    EXPECT("SELECT concat_ws(' ', seats, pool_minutes, pool_used_minutes,"
           " billed_minutes, rejected_calls, total) FROM billing.invoices"
           " WHERE tenant_id = 'F07' AND period = '2026-10-01'",
           "1 60 60 1 1 0.02");
    EXPECT("SELECT string_agg(code || ' ' || subject, '; ' ORDER BY seq)"
           " FROM billing.findings f JOIN billing.invoices i"
           " USING (invoice_no) WHERE tenant_id = 'F07'"
           " AND usage_id IS NULL",
           "BILLING_PROFILE_MISSING F07; "
           "INVALID_INTERVAL assignment of MCOMEETADV to olaf; "
           "INVALID_INTERVAL purchase of MCOMEETADV");
    /* Historic rule (assigned licences) in 2020-09: olaf's inverted
     * assignment adds no seat. */
    CU_ASSERT_EQUAL(acbill_run("--period 2020-09 --tenant F07"), 0);
    EXPECT("SELECT seats || ' ' || seats_basis FROM billing.invoices"
           " WHERE tenant_id = 'F07' AND period = '2020-09-01'",
           "0 assigned");
    EXPECT("SELECT count(*) FROM billing.findings f JOIN billing.invoices i"
           " USING (invoice_no) WHERE tenant_id = 'F07'"
           " AND period = '2020-09-01' AND code = 'LICENSE_OVER_ASSIGNED'",
           "0");
}

static void test_infinite_rate_bounds(void)
{
    EXPECT("SELECT string_agg(per_minute || ' ' || amount, '; ' ORDER BY"
           " seq) FROM billing.rated_calls r JOIN billing.invoices i"
           " USING (invoice_no) WHERE tenant_id = 'F08'",
           "0.0100 0.0200; 0.0200 0.0400");
    EXPECT("SELECT total FROM billing.invoices WHERE tenant_id = 'F08'",
           "0.06");
}

static void test_duplicates_billed_once(void)
{
    EXPECT("SELECT string_agg(right(usage_id::text, 1) || ' ' || outcome ||"
           " coalesce(' ' || right(duplicate_of::text, 1), '') || ' ' ||"
           " amount, '; ' ORDER BY seq) FROM billing.rated_calls r"
           " JOIN billing.invoices i USING (invoice_no)"
           " WHERE tenant_id = 'F09'",
           "1 split 0.1000; 2 rejected 1 0.0000; 3 rejected 1 0.0000; "
           "4 billed 0.7100; 5 billed 0.7000");
    EXPECT("SELECT total FROM billing.invoices WHERE tenant_id = 'F09'",
           "1.51");
}

static void test_three_decimal_currency(void)
{
    EXPECT("SELECT concat_ws(' ', minor_unit, subtotal, tax, total)"
           " FROM billing.invoices WHERE tenant_id = 'F10'",
           "3 0.185 0.019 0.204");
    EXPECT("SELECT exact_amount || ' ' || amount FROM billing.invoice_lines"
           " l JOIN billing.invoices i USING (invoice_no)"
           " WHERE tenant_id = 'F10'", "0.1845 0.185");
}

static void test_masked_numbers(void)
{
    EXPECT("SELECT string_agg(right(usage_id::text, 1) || ' ' || outcome ||"
           " coalesce(' ' || reason, '') || coalesce(' ' || dest_prefix, ''),"
           " '; ' ORDER BY seq) FROM billing.rated_calls r"
           " JOIN billing.invoices i USING (invoice_no)"
           " WHERE tenant_id = 'F11' AND outcome = 'rejected'",
           "2 rejected MASKED_AMBIGUOUS 49; 4 rejected INVALID_NUMBER");
    EXPECT("SELECT string_agg(right(usage_id::text, 1) || ' ' || outcome ||"
           " ' ' || minutes, '; ' ORDER BY seq) FROM billing.rated_calls r"
           " JOIN billing.invoices i USING (invoice_no)"
           " WHERE tenant_id = 'F11' AND outcome <> 'rejected'",
           "1 pool 1; 3 pool 1");
}

static void test_hostile_durations_and_rates(void)
{
    EXPECT("SELECT string_agg(right(usage_id::text, 1) || ' ' || outcome ||"
           " coalesce(' ' || reason, '') || ' ' || minutes || ' ' || amount,"
           " '; ' ORDER BY seq) FROM billing.rated_calls r"
           " JOIN billing.invoices i USING (invoice_no)"
           " WHERE tenant_id = 'F12'",
           "1 rejected INVALID_DURATION 0 0.0000; "
           "2 rejected INVALID_DURATION 0 0.0000; "
           "3 rejected INVALID_DURATION 0 0.0000; "
           "4 billed 1800 179999999999.8200");
    /* ISK has no minor unit: the total is whole kronur. */
    EXPECT("SELECT concat_ws(' ', minor_unit, subtotal, total)"
           " FROM billing.invoices WHERE tenant_id = 'F12'",
           "0 180000000000 180000000000");
}

static void test_findings_never_capped(void)
{
    EXPECT("SELECT count(*) FILTER (WHERE code = 'ADDON_WITHOUT_PREREQUISITE')"
           " || ' ' || count(*) FILTER (WHERE code = 'ORGANIZER_NOT_LICENSED')"
           " || ' ' || count(*) FROM billing.findings f"
           " JOIN billing.invoices i USING (invoice_no)"
           " WHERE tenant_id = 'F13'", "5000 5000 10002");
    EXPECT("SELECT detail FROM billing.findings f JOIN billing.invoices i"
           " USING (invoice_no) WHERE tenant_id = 'F13'"
           " AND code = 'ORGANIZER_NOT_LICENSED' ORDER BY seq LIMIT 1",
           "The organizer user00001 held no Audio Conferencing licence at "
           "the call (2026-10-01 00:01:00 UTC): the call is not billed.");
}

static void test_ledger_overflow_fails(void)
{
    EXPECT("SELECT message LIKE '%no longer fit the ledger''s columns%'"
           " FROM billing.run_tenants WHERE tenant_id = 'F14'", "t");
}

static void test_assigned_basis(void)
{
    /* Microsoft: 100 bought, 20 assigned: 1,200 minutes. */
    EXPECT("SELECT seats || ' ' || pool_minutes FROM billing.invoices"
           " WHERE tenant_id = 'F15'", "20 1200");
}

CU_ErrorCode tests_register(void)
{
    static CU_TestInfo northwind[] = {
        { "docs/billing-rules.md 5.2: every call's outcome", test_northwind_calls },
        { "docs/billing-rules.md 5.2: 38 + 4 = 42 JPY", test_northwind_invoice },
        { "docs/billing-rules.md 5.2: findings", test_northwind_findings },
        { "docs/billing-rules.md 5.2: re-run issues nothing", test_northwind_rerun },
        CU_TEST_INFO_NULL
    };
    static CU_TestInfo faults[] = {
        { "failing tenants exit 65, the rest billed", test_run_exits_65 },
        { "PST and UTC+3 refused", test_time_zone_abbreviation_refused },
        { "currency 'eur', no rates in CHF", test_currency_checked },
        { "2^31-1 licences fail with the reason",
          test_huge_quantity_fails_clearly },
        { "E5 bundle seats, identifiers in any case",
          test_bundle_and_case },
        { "inverted intervals hold nowhere", test_inverted_intervals },
        { "infinite rate bounds", test_infinite_rate_bounds },
        { "a call stored twice is billed once",
          test_duplicates_billed_once },
        { "BHD: three decimals", test_three_decimal_currency },
        { "masked numbers", test_masked_numbers },
        { "hostile durations and the highest rate",
          test_hostile_durations_and_rates },
        { "findings are never capped", test_findings_never_capped },
        { "a sum beyond the ledger fails the tenant",
          test_ledger_overflow_fails },
        { "assigned-basis SKU", test_assigned_basis },
        CU_TEST_INFO_NULL
    };
    static CU_SuiteInfo suites[] = {
        { "docs/billing-rules.md 5.2 Northwind", northwind_init, suite_clean, NULL, NULL,
          northwind },
        { "version 2 faults", faults_init, suite_clean, NULL, NULL, faults },
        CU_SUITE_INFO_NULL
    };
    return CU_register_suites(suites);
}
