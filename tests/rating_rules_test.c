/* rating_rules_test.c: the version 2 and 3 rating rules (docs/billing-rules.md 3)
 * end to end against a real PostgreSQL: the worked examples of SPEC
 * sections 5.2 (Northwind, JPY) and 5.3 (Litware, two pools and a price
 * plan), one tenant per fault of the version 2 rules
 * (tests/fixtures/v2_faults.sql) and one per rule of version 3
 * (tests/fixtures/v3_faults.sql), each with the value the SPEC gives.
 *
 * Each suite makes its own database, migrated by the real `acbill
 * migrate`, loads its fixture with psql, runs the real bin/acbill and
 * reads billing.* back. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
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
           /* F07-F10 and F12 have no complete billing profile: their
            * statements are issued, their documents held (docs/billing-rules.md 4.2). */
           "F06:issued F07:held F08:held F09:held F10:held "
           "F11:issued F12:held F13:issued F14:failed F15:held");
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
    /* Microsoft: 100 bought, 20 assigned: 1,200 minutes.  Version 3: the
     * USA/CAN licence's pool is the US/CA pool, not the Zone A pool. */
    EXPECT("SELECT concat_ws(' ', seats, pool_minutes, usca_seats,"
           " usca_pool_minutes) FROM billing.invoices"
           " WHERE tenant_id = 'F15'", "0 0 20 1200");
}

/* --------------------------------------------------- docs/billing-rules.md 5.3 Litware */

static int litware_init(void)
{
    db = testdb_fresh("acbill_v3_litware", conninfo, sizeof conninfo);
    if (db == NULL || testdb_load(conninfo, "litware.sql") != 0) {
        suite_clean();
        return 1;
    }
    run_status = acbill_run("--period 2026-10");
    return 0;
}

/* Each call of a tenant as "n outcome[ reason] pool (usca) billed amount
 * rate", in seq order. */
#define CALLS_OF(t)                                                       \
    "SELECT string_agg(right(usage_id::text, 1) || ' ' || outcome"        \
    " || coalesce(' ' || reason, '') || ' ' || r.pool_minutes || ' ('"    \
    " || r.usca_pool_minutes || ') ' || r.billed_minutes || ' ' || amount" \
    " || coalesce(' ' || r.per_minute || '/' || r.rate_plan, ''), '; '"   \
    " ORDER BY seq) FROM billing.rated_calls r JOIN billing.invoices i"   \
    " USING (invoice_no) WHERE tenant_id = '" t "'"

static void test_litware_calls(void)
{
    CU_ASSERT_EQUAL(run_status, 0);
    EXPECT(CALLS_OF("T4"),
           "1 pool 100 (100) 0 0.0000; "
           "2 billed 0 (0) 10 0.2750 0.0275/partner; "
           "3 pool 20 (0) 0 0.0000; "
           "4 pool 100 (80) 0 0.0000; "
           "5 billed 0 (0) 5 0.1100 0.0220/standard; "
           "6 split 80 (0) 20 0.5500 0.0275/partner");
}

static void test_litware_invoice(void)
{
    /* Zone A pool: 2 seats, 120 minutes, used 120; US/CA pool: 3 seats,
     * 180 minutes, used 180; exempt 0, billed 35, calls 6, rejected 0;
     * 0.94 USD. */
    EXPECT("SELECT concat_ws(' ', seats, pool_minutes, pool_used_minutes,"
           " usca_seats, usca_pool_minutes, usca_pool_used_minutes,"
           " exempt_minutes, billed_minutes, calls, rejected_calls,"
           " subtotal, tax, total, price_plan, rate_adjustment)"
           " FROM billing.invoices WHERE tenant_id = 'T4'",
           "2 120 120 3 180 180 0 35 6 0 0.94 0.00 0.94 partner 0.1000");
    EXPECT("SELECT string_agg(concat_ws(' ', country, kind, per_minute,"
           " connection_fee, l.calls, minutes, exact_amount, amount), '; '"
           " ORDER BY line_no) FROM billing.invoice_lines l"
           " JOIN billing.invoices i USING (invoice_no)"
           " WHERE tenant_id = 'T4'",
           "GB geographic 0.0275 0.0000 2 30 0.8250 0.83; "
           "US geographic 0.0220 0.0000 1 5 0.1100 0.11");
    /* The statement's pool figures are its calls'. */
    EXPECT("SELECT sum(r.pool_minutes - r.usca_pool_minutes) || ' '"
           " || sum(r.usca_pool_minutes) FROM billing.rated_calls r"
           " JOIN billing.invoices i USING (invoice_no)"
           " WHERE tenant_id = 'T4'", "120 180");
    /* One invoice is issued. */
    EXPECT("SELECT count(*) || ' ' || min(total) FROM billing.documents"
           " WHERE tenant_id = 'T4' AND kind = 'invoice'", "1 0.94");
}

static void test_litware_findings(void)
{
    EXPECT("SELECT string_agg(code, ' ' ORDER BY seq) FROM billing.findings"
           " f JOIN billing.invoices i USING (invoice_no)"
           " WHERE tenant_id = 'T4'", "TWO_POOLS");
    EXPECT("SELECT detail LIKE '%Zone A pool of 2 seats (120 minutes%'"
           " AND detail LIKE '%US/CA pool of 3 seats (180 minutes%'"
           " AND detail LIKE '%US/CA pool first%' AND usage_id IS NULL"
           " FROM billing.findings WHERE code = 'TWO_POOLS'", "t");
}

/* The rows of sheet in the workbook at path, as tests/xlsx_read.py
 * prints them (at most len - 1 bytes into out); 0, or -1 when it failed. */
static int xlsx_rows(const char *path, const char *sheet, char *out,
                     size_t len)
{
    char tmp[] = "/tmp/acbill-rating-xlsx-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -1;
    close(fd);
    int rc = test_system("/usr/bin/python3 '%s/tests/xlsx_read.py' rows"
                         " '%s' '%s' > '%s'", test_src_dir(), path, sheet,
                         tmp);
    FILE *f = fopen(tmp, "r");
    size_t n = f ? fread(out, 1, len - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    unlink(tmp);
    return rc == 0 && f != NULL ? 0 : -1;
}

/* docs/billing-rules.md 4.3 version 3: the Summary shows both pools, the Calls sheet has
 * "US/CA pool minutes" after "Pool minutes" (a tenant with a US/CA pool
 * only). */
static void test_litware_workbook(void)
{
    char path[] = "/tmp/acbill-rating-book-XXXXXX", file[128], err[512];
    static char out[65536];
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(path));
    snprintf(file, sizeof file, "%s/T4.xlsx", path);
    CU_ASSERT_EQUAL_FATAL(report_invoice_workbook(db, "T4-2026-10-R1", file,
                                                  err), AC_OK);
    CU_ASSERT_EQUAL(xlsx_rows(file, "Calls", out, sizeof out), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out,
        "Usage ID\tStart (local time)\tOrganizer\tDestination\tCountry\t"
        "Kind\tDuration (s)\tMinutes\tOutcome\tPool minutes\t"
        "US/CA pool minutes\tBilled minutes\tRate\tConnection fee\tAmount\t"
        "Reason\tLine\tCall ID\tConference ID\tOrganizer name\t"
        "Provider charge\tProvider currency\tProvider capability\n"));
    /* Call 4: 100 pool minutes, 80 of them US/CA; call 6: split. */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\tdan\t+15145550100\tCA\tgeographic"
                                       "\t6000\t100\tpool\t100\t80\t0\t\t\t0"
                                       "\t\t\tl4\tlconf4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\tcat\t+442071234568\tGB\tgeographic"
                                       "\t6000\t100\tsplit\t80\t0\t20\t0.0275"
                                       "\t0\t0.55\t\t1\tl6\tlconf6\n"));
    CU_ASSERT_EQUAL(xlsx_rows(file, "Summary", out, sizeof out), 0);
    const char *zone = strstr(out, "\nZone A pool\n");
    const char *usca = zone ? strstr(zone, "\nUS/CA pool\n") : NULL;
    CU_ASSERT_PTR_NOT_NULL(zone);
    CU_ASSERT_PTR_NOT_NULL_FATAL(usca);
    CU_ASSERT_PTR_NOT_NULL(strstr(zone, "\nSeats\t2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(zone, "\nPool minutes\t120\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(usca, "\nSeats\t3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(usca, "\nPool minutes\t180\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(usca, "\nPool used (minutes)\t180\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(usca, "\nPool remaining (minutes)\t0\n"));
    test_system("rm -rf '%s'", path);
}

static void test_litware_rerun(void)
{
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    EXPECT("SELECT count(*) FROM billing.invoices WHERE tenant_id = 'T4'",
           "1");
}

/* Inputs of version 3 that make a new revision (docs/billing-rules.md 4.1) and those that
 * do not, run after run on the Litware database. */
static void test_litware_revisions(void)
{
#define REVISIONS "SELECT count(*) FROM billing.invoices WHERE tenant_id = 'T4'"
#define LATEST(col) "SELECT " col " FROM billing.invoices WHERE tenant_id" \
    " = 'T4' ORDER BY revision DESC LIMIT 1"
    /* Buyer details alone: no new revision. */
    CU_ASSERT_EQUAL(testdb_exec(db, "UPDATE ref.customers SET address ="
                                " 'Elsewhere' WHERE tenant_id = 'T4'"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    EXPECT(REVISIONS, "1");
    /* A changed adjustment: 0.0250 x 1.2 = 0.0300, 0.0200 x 1.2 = 0.0240:
     * 0.90 + 0.12 = 1.02. */
    CU_ASSERT_EQUAL(testdb_exec(db, "UPDATE ref.customers SET"
                                " rate_adjustment = 0.2000"
                                " WHERE tenant_id = 'T4'"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    EXPECT(REVISIONS, "2");
    EXPECT(LATEST("total || ' ' || rate_adjustment"), "1.02 0.2000");
    /* A changed plan: standard, +20 %: 0.0360 x 30 = 1.08, + 0.12. */
    CU_ASSERT_EQUAL(testdb_exec(db, "UPDATE ref.customers SET price_plan ="
                                " NULL WHERE tenant_id = 'T4'"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    EXPECT(REVISIONS, "3");
    EXPECT(LATEST("total || ' ' || price_plan"), "1.20 standard");
    /* A new rate row of the plan the tenant is not on changes nothing
     * of its money: rated again (the cheap check sees ref.rates), no new
     * revision. */
    CU_ASSERT_EQUAL(testdb_exec(db, "INSERT INTO ref.rates (plan, currency,"
                                " prefix, per_minute, valid_from) VALUES"
                                " ('partner', 'USD', '1', 0.0010,"
                                " '2026-01-01')"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    EXPECT(REVISIONS, "3");
    /* Back on the plan: its new row prices the US call, 0.0012 x 5. */
    CU_ASSERT_EQUAL(testdb_exec(db, "UPDATE ref.customers SET price_plan ="
                                " 'partner' WHERE tenant_id = 'T4'"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    EXPECT(REVISIONS, "4");
    EXPECT(LATEST("total"), "0.91");
    /* A tax category the tax rate does not imply (E at rate 0) is an
     * input (4.1): a new revision, though no amount changes. */
    CU_ASSERT_EQUAL(testdb_exec(db, "UPDATE ref.customers SET tax_category"
                                " = 'E' WHERE tenant_id = 'T4'"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    EXPECT(REVISIONS, "5");
    /* The US/CA pool's scope: MCOMEETADV counted as US/CA makes the
     * figures change (a new revision). */
    CU_ASSERT_EQUAL(testdb_exec(db, "UPDATE ref.sku_entitlements SET"
                                " pool_scope = 'us_ca', pool_basis ="
                                " 'assigned' WHERE sku = 'MCOMEETADV'"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    EXPECT(REVISIONS, "6");
    EXPECT(LATEST("concat_ws(' ', seats, usca_seats)"), "0 4");
#undef REVISIONS
#undef LATEST
}

/* ------------------------------------------------ the version 3 rules */

static int v3_init(void)
{
    db = testdb_fresh("acbill_v3_faults", conninfo, sizeof conninfo);
    if (db == NULL || testdb_load(conninfo, "v3_faults.sql") != 0) {
        suite_clean();
        return 1;
    }
    run_status = acbill_run("--period 2026-10");
    return 0;
}

static void test_v3_statuses(void)
{
    CU_ASSERT_EQUAL(run_status, 65);
    EXPECT("SELECT string_agg(tenant_id || ':' || status, ' ' ORDER BY"
           " tenant_id) FROM billing.run_tenants",
           "G01:failed G02:failed G03:issued G04:issued G05:issued "
           "G06:issued G07:issued G08:issued G09:issued G10:held");
}

static void test_v3_tenant_checks(void)
{
    /* A plan with no ref.rates row at all fails the tenant; so does an
     * adjustment of -1 (a discount of 100 %). */
    EXPECT("SELECT message LIKE '%price_plan ''nosuchplan'' has no rate in"
           " ref.rates at all%' FROM billing.run_tenants"
           " WHERE tenant_id = 'G01'", "t");
    EXPECT("SELECT message LIKE '%rate_adjustment -1.0000 is not above -1%'"
           " FROM billing.run_tenants WHERE tenant_id = 'G02'", "t");
    EXPECT("SELECT count(*) FROM billing.invoices"
           " WHERE tenant_id IN ('G01', 'G02')", "0");
}

static void test_v3_plan_fallback(void)
{
    /* Rows in another currency, or none in force: standard, call by
     * call. */
    EXPECT(CALLS_OF("G03"), "1 billed 0 (0) 1 0.0300 0.0300/standard");
    EXPECT(CALLS_OF("G04"), "1 billed 0 (0) 1 0.0300 0.0300/standard");
}

static void test_v3_partial_plan(void)
{
    /* The plan's `1` prices Jamaica although standard has 1876; +44 has
     * no plan row: standard.  Both 10 % off. */
    EXPECT(CALLS_OF("G05"),
           "1 billed 0 (0) 10 0.0900 0.0090/cheap1; "
           "2 billed 0 (0) 1 0.0270 0.0270/standard");
    EXPECT("SELECT total FROM billing.invoices WHERE tenant_id = 'G05'",
           "0.12");
}

static void test_v3_adjustment_rounding(void)
{
    EXPECT(CALLS_OF("G06"), "1 billed 0 (0) 1 0.0766 0.0383/markup");
    EXPECT("SELECT connection_fee || ' ' || total FROM billing.invoices i"
           " JOIN billing.invoice_lines USING (invoice_no)"
           " WHERE tenant_id = 'G06'", "0.0383 0.08");
}

static void test_v3_addon_finding_names_the_call(void)
{
    EXPECT(CALLS_OF("G07"),
           "1 rejected ORGANIZER_NOT_LICENSED 0 (0) 0 0.0000; "
           "2 rejected ORGANIZER_NOT_LICENSED 0 (0) 0 0.0000; "
           "3 exempt 0 (0) 0 0.0000");
    EXPECT("SELECT subject || ' ' || usage_id FROM billing.findings f"
           " JOIN billing.invoices i USING (invoice_no)"
           " WHERE tenant_id = 'G07' AND code = 'ADDON_WITHOUT_PREREQUISITE'",
           "solo 0000000a-0007-0000-0000-000000000001");
    EXPECT("SELECT concat_ws(' ', seats, usca_seats, usca_pool_minutes)"
           " FROM billing.invoices WHERE tenant_id = 'G07'", "0 1 60");
}

static void test_v3_masked_any_plan(void)
{
    EXPECT(CALLS_OF("G08"),
           "1 rejected MASKED_AMBIGUOUS 0 (0) 0 0.0000; "
           "2 billed 0 (0) 1 0.0400 0.0400/standard");
}

static void test_v3_pools_after_2020_10(void)
{
    /* 5 purchased Standard seats; the USA/CAN licence: 1 assigned. */
    EXPECT("SELECT concat_ws(' ', seats, seats_basis, pool_minutes,"
           " usca_seats, usca_pool_minutes) FROM billing.invoices"
           " WHERE tenant_id = 'G09' AND period = '2026-10-01'",
           "5 purchased 300 1 60");
    EXPECT("SELECT string_agg(code, ' ' ORDER BY seq) FROM billing.findings"
           " f JOIN billing.invoices i USING (invoice_no)"
           " WHERE tenant_id = 'G09'",
           "BILLING_PROFILE_MISSING TWO_POOLS");
}

static void test_v3_pools_before_2020_10(void)
{
    /* September 2020: both pools count the users assigned. */
    CU_ASSERT_EQUAL(acbill_run("--period 2020-09"), 0);
    EXPECT("SELECT concat_ws(' ', seats, seats_basis, pool_minutes,"
           " usca_seats, usca_pool_minutes, pool_used_minutes)"
           " FROM billing.invoices WHERE tenant_id = 'G09'"
           " AND period = '2020-09-01'", "2 assigned 120 1 60 1");
}

static void test_v3_organizer_scopes(void)
{
    /* una (US/CA only): GB billed, CA from the US/CA pool; zed (Zone A
     * only): US from the Zone A pool; bo (both): US/CA pool first, its
     * last 20 minutes, then 10 from the Zone A pool; FR from the Zone A
     * pool's last 40, 10 billed; nell (neither): billed; Jamaica is in
     * neither pool. */
    EXPECT(CALLS_OF("G10"),
           "1 billed 0 (0) 1 0.0300 0.0300/standard; "
           "2 pool 10 (0) 0 0.0000; "
           "3 pool 100 (100) 0 0.0000; "
           "4 pool 30 (20) 0 0.0000; "
           "5 split 40 (0) 10 0.3500 0.0350/standard; "
           "6 billed 0 (0) 1 0.0200 0.0200/standard; "
           "7 billed 0 (0) 1 0.3000 0.2500/standard");
    EXPECT("SELECT concat_ws(' ', seats, pool_minutes, pool_used_minutes,"
           " usca_seats, usca_pool_minutes, usca_pool_used_minutes,"
           " billed_minutes, total) FROM billing.invoices"
           " WHERE tenant_id = 'G10'", "1 60 60 2 120 120 13 0.70");
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
    static CU_TestInfo litware[] = {
        { "docs/billing-rules.md 5.3: every call's outcome and pools", test_litware_calls },
        { "docs/billing-rules.md 5.3: 0.94 USD, both pools", test_litware_invoice },
        { "docs/billing-rules.md 5.3: TWO_POOLS", test_litware_findings },
        { "docs/billing-rules.md 4.3 v3: both pools in the workbook", test_litware_workbook },
        { "docs/billing-rules.md 5.3: re-run issues nothing", test_litware_rerun },
        { "version 3 inputs and revisions", test_litware_revisions },
        CU_TEST_INFO_NULL
    };
    static CU_TestInfo v3[] = {
        { "failing tenants exit 65", test_v3_statuses },
        { "plan without rates, adjustment -1", test_v3_tenant_checks },
        { "plan rows elsewhere: standard per call", test_v3_plan_fallback },
        { "a plan covering some prefixes", test_v3_partial_plan },
        { "0.0333 x 1.15 = 0.0383", test_v3_adjustment_rounding },
        { "ADDON_WITHOUT_PREREQUISITE names its call",
          test_v3_addon_finding_names_the_call },
        { "masked: any plan's prefixes", test_v3_masked_any_plan },
        { "pools from 2020-10", test_v3_pools_after_2020_10 },
        { "pools before 2020-10", test_v3_pools_before_2020_10 },
        { "organizers of one, the other, both, no scope",
          test_v3_organizer_scopes },
        CU_TEST_INFO_NULL
    };
    static CU_SuiteInfo suites[] = {
        { "docs/billing-rules.md 5.2 Northwind", northwind_init, suite_clean, NULL, NULL,
          northwind },
        { "version 2 faults", faults_init, suite_clean, NULL, NULL, faults },
        { "docs/billing-rules.md 5.3 Litware", litware_init, suite_clean, NULL, NULL,
          litware },
        { "version 3 rules", v3_init, suite_clean, NULL, NULL, v3 },
        CU_SUITE_INFO_NULL
    };
    return CU_register_suites(suites);
}
