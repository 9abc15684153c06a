/* import_test.c: `acbill import` against a real PostgreSQL (docs/billing-rules.md 6).
 *
 * The fixtures are written by tests/fixtures/ms_export.py from Microsoft's
 * documented formats with made-up people and numbers: a zipped export in
 * the 2023 layout (display names with commas, quotes and line breaks,
 * masked numbers, 7-digit fractional seconds, other call types, broken
 * rows, a quote never closed), an overlapping export, the 2020 layout,
 * the legacy TAB-separated file, Graph pages and licence snapshots.
 *
 * Suites: the checks of single values (unit); the imports, their counts,
 * values, rejects and idempotence (import_db); licence snapshots as
 * intervals (licences); and docs/billing-rules.md 5.1's tenant T1 imported from an export
 * and licence snapshots, then billed by `acbill run` (import_run). */
#include <CUnit/CUnit.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import/callstage.h"
#include "testdb.h"
#include "testmain.h"

#define LOG "/tmp/acbill-import-test.log"

static PGconn *db;
static char conninfo[256];
static char dir[PATH_MAX];

/* `acbill import ARGS` on conn; returns the exit status. */
static int acbill_import(const char *conn, const char *args)
{
    return test_system("cd '%s' && %s import %s --db '%s' >>" LOG " 2>&1",
                       dir, test_acbill_path(), args, conn);
}

static void assert_value(PGconn *conn, const char *sql, const char *want)
{
    char *got = testdb_value(conn, sql);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "\n    %s\n    want '%s', got '%s'\n", sql, want,
                got);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
}

static char *calls_md5(PGconn *conn)
{
    return testdb_value(conn, "SELECT md5(coalesce(string_agg(c::text, ','"
                        " ORDER BY usage_id), '')) FROM usage.dialout_calls c");
}

static char *licences_md5(PGconn *conn)
{
    return testdb_value(conn,
        "SELECT md5(coalesce((SELECT string_agg(p::text, ',' ORDER BY"
        " p::text) FROM usage.license_purchases p), '') || coalesce((SELECT"
        " string_agg(a::text, ',' ORDER BY a::text) FROM"
        " usage.license_assignments a), ''))");
}

static int make_fixtures(const char *what)
{
    snprintf(dir, sizeof dir, "/tmp/acbill-import-test.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    return test_system("python3 '%s/tests/fixtures/ms_export.py' %s '%s'",
                       test_src_dir(), what, dir);
}

/* ------------------------------------------------------------- unit */

static void test_checks(void)
{
    CU_ASSERT(callstage_is_timestamp("2026-10-05T01:00:08.2589935Z"));
    CU_ASSERT(callstage_is_timestamp("2026-10-03 08:00:00.0000000 +00:00"));
    CU_ASSERT(callstage_is_timestamp("2026-10-03T08:00:00+0530"));
    CU_ASSERT(callstage_is_timestamp("2024-02-29T00:00Z"));
    CU_ASSERT(callstage_is_timestamp("2026-10-03T08:00:00"));
    CU_ASSERT_FALSE(callstage_is_timestamp("2026-13-01T00:00:00Z"));
    CU_ASSERT_FALSE(callstage_is_timestamp("2026-02-29T00:00:00Z"));
    CU_ASSERT_FALSE(callstage_is_timestamp("2026-10-03T24:00:00Z"));
    CU_ASSERT_FALSE(callstage_is_timestamp("10/3/2026 8:00:00 AM"));
    CU_ASSERT_FALSE(callstage_is_timestamp("2026-10-03"));
    CU_ASSERT_FALSE(callstage_is_timestamp("2026-10-03T08:00:00Zjunk"));
    CU_ASSERT(callstage_is_guid("0C266DFF-15dd-4b49-8397-2bb16070ed52"));
    CU_ASSERT_FALSE(callstage_is_guid("0c266dff15dd4b4983972bb16070ed52"));
    CU_ASSERT_FALSE(callstage_is_guid("0c266dff-15dd-4b49-8397-2bb16070ed5"));
    CU_ASSERT(callstage_is_int32("-5"));
    CU_ASSERT(callstage_is_int32("2147483647"));
    CU_ASSERT_FALSE(callstage_is_int32("2147483648"));
    CU_ASSERT_FALSE(callstage_is_int32("1.5"));
    CU_ASSERT_FALSE(callstage_is_int32(""));
    CU_ASSERT(callstage_is_decimal("0.1"));
    CU_ASSERT(callstage_is_decimal("-12.3456789"));
    CU_ASSERT(callstage_is_decimal("999999999999.99"));
    CU_ASSERT_FALSE(callstage_is_decimal("1000000000000"));
    CU_ASSERT_FALSE(callstage_is_decimal("1e-2"));
    CU_ASSERT_FALSE(callstage_is_decimal("1,5"));
    CU_ASSERT_FALSE(callstage_is_decimal("."));
    CU_ASSERT(callstage_is_utf8("M\xc3\xbcller", 7));
    CU_ASSERT_FALSE(callstage_is_utf8("M\xfcller", 6));
    CU_ASSERT_FALSE(callstage_is_utf8("a\0b", 3));
    CU_ASSERT_FALSE(callstage_is_utf8("\xed\xa0\x80", 3));  /* surrogate */
    CU_ASSERT_FALSE(callstage_is_utf8("\xc0\xaf", 2));      /* overlong */
}

/* ------------------------------------------------------------- import_db */

static int suite_init(void)
{
    db = testdb_fresh("acbill_import_t", conninfo, sizeof conninfo);
    if (db == NULL || make_fixtures("basic") != 0)
        return 1;
    return testdb_exec(db, "INSERT INTO usage.tenants (tenant_id, name,"
                       " currency) VALUES ('T1', 'Contoso', 'USD'),"
                       " ('T9', 'Other', 'USD')");
}

static int suite_clean(void)
{
    PQfinish(db);
    test_system("rm -rf '%s'", dir);
    return 0;
}

static void test_zip_2023_layout(void)
{
    CU_ASSERT_EQUAL(acbill_import(conninfo, "pstn --tenant T1 "
                                  "Calls.Export.a.zip"), 65);
    /* One import for the Calling Plans member; DR and JSON passed over. */
    assert_value(db, "SELECT string_agg(concat_ws(' ', source, file_name,"
                 " member, status, rows_read, inserted, updated, unchanged,"
                 " skipped, rejected), ';') FROM usage.imports",
                 "pstn Calls.Export.a.zip PSTN.calls.2026-10-31.csv ok 72 64"
                 " 0 0 2 6");
    assert_value(db, "SELECT count(*) FROM usage.imports"
                 " WHERE sha256 ~ '^[0-9a-f]{64}$'", "1");
    /* Exact values: 7-digit seconds, masked number as given, money. */
    assert_value(db, "SELECT concat_ws('|', start_time, organizer_id,"
                 " destination_number, duration_seconds, provider_charge,"
                 " provider_currency, provider_capability,"
                 " destination_country, end_time, call_id, conference_id)"
                 " FROM usage.dialout_calls"
                 " WHERE usage_id = '00000000-0000-4000-8000-000000000001'",
                 "2026-10-01 09:00:00.123457+00|"
                 "0b5e0000-0000-4000-8000-000000000004|+12125550100|3600|"
                 "0.1000|USD|MCOMEETADD|US|2026-10-01 09:01:00+00|call-1|"
                 "conf-1");
    assert_value(db, "SELECT concat_ws('|', destination_number,"
                 " provider_charge, provider_currency, destination_country)"
                 " FROM usage.dialout_calls"
                 " WHERE usage_id = '00000000-0000-4000-8000-000000000002'",
                 "+49 30 1234 5***|0.0600|EUR|DE");
    /* No charge at all is NULL, not 0; SQL Server's datetimeoffset text. */
    assert_value(db, "SELECT concat_ws('|', start_time, provider_charge IS"
                 " NULL, provider_currency IS NULL, end_time IS NULL)"
                 " FROM usage.dialout_calls"
                 " WHERE usage_id = '00000000-0000-4000-8000-000000000005'",
                 "2026-10-03 08:00:00+00|t|t|t");
    /* Display names with commas, quotes and a line break, and UPNs. */
    assert_value(db, "SELECT display_name || '/' || upn FROM usage.users"
                 " WHERE user_id = '0b5e0000-0000-4000-8000-000000000004'",
                 "Smith, Ann \"The Boss\"/ann.smith@contoso.example");
    assert_value(db, "SELECT display_name FROM usage.users"
                 " WHERE user_id = '0b5e0000-0000-4000-8000-000000000002'",
                 "Bob\nSecond line, too");
    /* Other call types are not calls. */
    assert_value(db, "SELECT count(*) FROM usage.dialout_calls WHERE"
                 " usage_id IN ('00000000-0000-4000-8000-000000000003',"
                 " '00000000-0000-4000-8000-000000000004')", "0");
    /* The 60 rows after the unclosed quote all loaded. */
    assert_value(db, "SELECT count(*) FROM usage.dialout_calls"
                 " WHERE start_time >= '2026-10-06' AND start_time"
                 " < '2026-10-07'", "60");
}

static void test_rejects_kept(void)
{
    /* Each broken row with its first line, raw text and reason. */
    assert_value(db, "SELECT string_agg(line_no || ' ' || reason, E'\\n'"
                 " ORDER BY line_no) FROM usage.import_rejects",
                 "8 UsageId 'not-a-guid' is not a GUID\n"
                 "9 Start Time '2026-13-01T00:00:00Z' is not an ISO 8601"
                 " date and time\n"
                 "10 Duration Seconds 'abc' is not a whole number of"
                 " seconds\n"
                 "11 the row has 5 fields, the header 25\n"
                 "12 malformed quoting (a quote inside an unquoted field, or"
                 " text after a closing quote)\n"
                 "14 a quoted field is never closed (50 lines or 64 KiB"
                 " without its closing quote)");
    assert_value(db, "SELECT raw FROM usage.import_rejects WHERE line_no"
                 " = 11", "x,x,x,x,x");
    assert_value(db, "SELECT raw LIKE '00000000-0000-4000-8000-00000000000"
                 "9,\"abc\"def,%' FROM usage.import_rejects WHERE line_no"
                 " = 12", "t");
    assert_value(db, "SELECT raw LIKE 'not-a-guid,call-6,%' FROM"
                 " usage.import_rejects WHERE line_no = 8", "t");
}

static void test_reimport_changes_nothing(void)
{
    char *before = calls_md5(db);
    CU_ASSERT_EQUAL(acbill_import(conninfo, "pstn --tenant T1 "
                                  "Calls.Export.a.zip"), 65);
    char *after = calls_md5(db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);
    assert_value(db, "SELECT concat_ws(' ', rows_read, inserted, updated,"
                 " unchanged, skipped, rejected) FROM usage.imports"
                 " ORDER BY import_id DESC LIMIT 1", "72 0 0 64 2 6");
}

static void test_overlapping_export(void)
{
    CU_ASSERT_EQUAL(acbill_import(conninfo, "pstn --tenant T1 "
                                  "PSTN.calls.b.csv"), 0);
    assert_value(db, "SELECT concat_ws(' ', member IS NULL, rows_read,"
                 " inserted, updated, unchanged, skipped, rejected)"
                 " FROM usage.imports ORDER BY import_id DESC LIMIT 1",
                 "t 5 1 1 2 1 0");
    assert_value(db, "SELECT duration_seconds FROM usage.dialout_calls"
                 " WHERE usage_id = '00000000-0000-4000-8000-000000000005'",
                 "75");
    assert_value(db, "SELECT provider_charge FROM usage.dialout_calls"
                 " WHERE usage_id = '00000000-0000-4000-8000-000000000012'",
                 "1.2625");
}

static void test_layouts(void)
{
    CU_ASSERT_EQUAL(acbill_import(conninfo, "pstn --tenant T1 "
                                  "PSTN.calls.2020.csv PSTN.calls.legacy.csv"),
                    0);
    /* 2020: AAD ObjectId; no External Country column. */
    assert_value(db, "SELECT concat_ws('|', organizer_id,"
                 " destination_country IS NULL, provider_charge)"
                 " FROM usage.dialout_calls"
                 " WHERE usage_id = '00000000-0000-4000-8000-000000000030'",
                 "0b5e0000-0000-4000-8000-000000000003|t|0.1000");
    /* Legacy TAB-separated: "No data" is empty. */
    assert_value(db, "SELECT concat_ws('|', conference_id IS NULL,"
                 " provider_charge IS NULL, provider_currency IS NULL,"
                 " destination_number, duration_seconds)"
                 " FROM usage.dialout_calls"
                 " WHERE usage_id = '00000000-0000-4000-8000-000000000020'",
                 "t|t|t|+12125550100|60");
    assert_value(db, "SELECT provider_charge FROM usage.dialout_calls"
                 " WHERE usage_id = '00000000-0000-4000-8000-000000000021'",
                 "0.1000");
}

static void test_duplicates_in_file(void)
{
    CU_ASSERT_EQUAL(acbill_import(conninfo, "pstn --tenant T1 dups.csv"),
                    65);
    assert_value(db, "SELECT concat_ws(' ', rows_read, inserted, updated,"
                 " unchanged, rejected) FROM usage.imports"
                 " ORDER BY import_id DESC LIMIT 1", "4 2 0 1 1");
    assert_value(db, "SELECT duration_seconds FROM usage.dialout_calls"
                 " WHERE usage_id = '00000000-0000-4000-8000-000000000051'",
                 "99");
    assert_value(db, "SELECT line_no || ' ' || reason FROM"
                 " usage.import_rejects WHERE import_id = (SELECT"
                 " max(import_id) FROM usage.imports)",
                 "3 superseded by line 5 of the same file (same UsageId,"
                 " different content)");
}

/* A row the checks let through but the server refuses is found by
 * halving and rejected with the server's reason and its raw text. */
static void test_server_refuses_a_row(void)
{
    CU_ASSERT_EQUAL(acbill_import(conninfo, "pstn --tenant T1 overflow.csv"),
                    65);
    assert_value(db, "SELECT concat_ws(' ', rows_read, inserted, rejected)"
                 " FROM usage.imports ORDER BY import_id DESC LIMIT 1",
                 "6 5 1");
    assert_value(db, "SELECT line_no || ' ' || reason || ' ' || (raw LIKE"
                 " '00000000-0000-4000-8000-000000000063,call-63,%')"
                 " FROM usage.import_rejects WHERE import_id ="
                 " (SELECT max(import_id) FROM usage.imports)",
                 "5 the database refused the row: numeric field overflow"
                 " true");
    assert_value(db, "SELECT count(*) FROM usage.dialout_calls WHERE"
                 " call_id IN ('call-60', 'call-61', 'call-62', 'call-64',"
                 " 'call-65')", "5");
}

static void test_refused_files(void)
{
    char *before = calls_md5(db);
    CU_ASSERT_EQUAL(acbill_import(conninfo, "pstn --tenant T1 "
                                  "not-an-export.csv"), 65);
    assert_value(db, "SELECT status || ': ' || message FROM usage.imports"
                 " ORDER BY import_id DESC LIMIT 1",
                 "refused: the header has no \"UsageId\" column (is this a"
                 " PSTN usage export?)");
    CU_ASSERT_EQUAL(acbill_import(conninfo, "pstn --tenant T1 missing.csv"),
                    66);
    CU_ASSERT_EQUAL(acbill_import(conninfo, "pstn --tenant NOPE "
                                  "PSTN.calls.b.csv"), 65);
    CU_ASSERT_EQUAL(acbill_import(conninfo, "pstn PSTN.calls.b.csv"), 64);
    CU_ASSERT_EQUAL(acbill_import(conninfo, "pstn --tenant T1"), 64);
    CU_ASSERT_EQUAL(acbill_import(conninfo, "bogus --tenant T1 x"), 64);
    char *after = calls_md5(db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);
}

static void test_graph_pages(void)
{
    CU_ASSERT_EQUAL(acbill_import(conninfo, "graph-calls --tenant T1 "
                                  "page1.json page2.json"), 65);
    assert_value(db, "SELECT string_agg(concat_ws(' ', file_name, rows_read,"
                 " inserted, skipped, rejected), ';' ORDER BY import_id)"
                 " FROM usage.imports WHERE source = 'graph-calls'",
                 "page1.json 4 2 1 1;page2.json 1 1 0 0");
    /* JSON numbers stay exact: 0.1 + 0.01, 1E-2 + 0, and a long one
     * rounded half-up to the column's 4 decimals. */
    assert_value(db, "SELECT string_agg(provider_charge::text, ' ' ORDER BY"
                 " usage_id) FROM usage.dialout_calls WHERE usage_id IN"
                 " ('00000000-0000-4000-8000-000000000040',"
                 " '00000000-0000-4000-8000-000000000041',"
                 " '00000000-0000-4000-8000-000000000044')",
                 "0.1100 0.0100 12345678.1335");
    assert_value(db, "SELECT concat_ws('|', start_time, destination_number,"
                 " destination_country, organizer_id) FROM"
                 " usage.dialout_calls WHERE usage_id ="
                 " '00000000-0000-4000-8000-000000000041'",
                 "2026-10-05 01:00:08.258994+00|+33 1 42 68 53 **|GB|"
                 "0b5e0000-0000-4000-8000-000000000002");
    assert_value(db, "SELECT line_no || ' ' || reason || ' ' || (raw LIKE"
                 " '{%\"duration\": \"abc\"%') FROM usage.import_rejects r"
                 " JOIN usage.imports i USING (import_id)"
                 " WHERE i.file_name = 'page1.json'",
                 "4 Duration Seconds 'abc' is not a whole number of seconds"
                 " true");
    assert_value(db, "SELECT display_name FROM usage.users WHERE user_id ="
                 " '0b5e0000-0000-4000-8000-000000000002'",
                 "Bob \xc3\x96stberg");
    /* Not a page: refused, recorded, the others still load. */
    CU_ASSERT_EQUAL(acbill_import(conninfo, "graph-calls --tenant T1 "
                                  "broken.json wrong-shape.json page2.json"),
                    65);
    assert_value(db, "SELECT string_agg(file_name || ' ' || status || ' '"
                 " || coalesce(message, ''), ';' ORDER BY import_id) FROM"
                 " usage.imports WHERE source = 'graph-calls' AND"
                 " import_id > (SELECT min(import_id) FROM usage.imports"
                 " WHERE file_name = 'page2.json')",
                 "broken.json refused not a Graph page: invalid input syntax"
                 " for type json;wrong-shape.json refused not a Graph page:"
                 " it has no \"value\" array;page2.json ok ");
}

static void test_other_tenant(void)
{
    char *before = calls_md5(db);
    CU_ASSERT_EQUAL(acbill_import(conninfo, "graph-calls --tenant T9 "
                                  "page2.json"), 65);
    assert_value(db, "SELECT reason FROM usage.import_rejects WHERE"
                 " import_id = (SELECT max(import_id) FROM usage.imports)",
                 "UsageId 00000000-0000-4000-8000-000000000044 already"
                 " belongs to tenant T1");
    assert_value(db, "SELECT raw LIKE '{%' FROM usage.import_rejects WHERE"
                 " import_id = (SELECT max(import_id) FROM usage.imports)",
                 "t");
    char *after = calls_md5(db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);
    /* A CSV row of another tenant gets its raw text from the file. */
    CU_ASSERT_EQUAL(acbill_import(conninfo, "pstn --tenant T9 "
                                  "PSTN.calls.2020.csv"), 65);
    assert_value(db, "SELECT raw LIKE '00000000-0000-4000-8000-000000000030,"
                 "call-30,%' FROM usage.import_rejects WHERE import_id ="
                 " (SELECT max(import_id) FROM usage.imports)", "t");
}

/* ------------------------------------------------------------- licences */

static void test_licence_snapshots(void)
{
    /* A row the operator entered by hand is never touched. */
    CU_ASSERT_EQUAL(testdb_exec(db, "INSERT INTO usage.license_purchases"
                                " (tenant_id, sku, quantity, valid_from)"
                                " VALUES ('T1', 'DIALOUT_USCA', 1,"
                                " '2026-01-01T00:00Z')"), 0);
    CU_ASSERT_EQUAL(acbill_import(conninfo, "licences --tenant T1 --at "
                                  "2026-10-01T00:00:00Z --skus skus1.json "
                                  "--users users1.json"), 65);
    assert_value(db, "SELECT string_agg(concat_ws(' ', sku, quantity,"
                 " valid_from::date, coalesce(valid_to::date::text, 'open')),"
                 " '; ' ORDER BY sku, valid_from) FROM"
                 " usage.license_purchases",
                 "DIALOUT_USCA 1 2026-01-01 open; MCOMEETADV 12 2026-10-01"
                 " open; SPE_E5 5 2026-10-01 open");
    assert_value(db, "SELECT string_agg(concat_ws(' ', right(user_id, 1),"
                 " sku, valid_from::date, coalesce(valid_to::date::text,"
                 " 'open')), '; ' ORDER BY user_id, sku) FROM"
                 " usage.license_assignments",
                 "1 MCOMEETADV 2026-10-01 open; 2 SPE_E5 2026-10-01 open");
    assert_value(db, "SELECT string_agg(reason, '; ' ORDER BY reason) FROM"
                 " usage.import_rejects r JOIN usage.imports i"
                 " USING (import_id) WHERE i.source LIKE 'licences%'",
                 "skuId 'not-a-guid' is not a GUID; user"
                 " 0b5e0000-0000-4000-8000-000000000002: skuId"
                 " ffffffff-0000-0000-0000-000000000000 is not in the"
                 " subscribedSkus snapshot");

    /* 15 days later: 12 -> 15 MCOMEETADV, SPE_E5 gone, Ann's and Bob's
     * licences removed, Cy's added (its skuId in capitals). */
    CU_ASSERT_EQUAL(acbill_import(conninfo, "licences --tenant T1 --at "
                                  "2026-10-15T00:00:00Z --skus skus2.json "
                                  "--users users2.json"), 65);
    assert_value(db, "SELECT string_agg(concat_ws(' ', sku, quantity,"
                 " valid_from::date, coalesce(valid_to::date::text, 'open')),"
                 " '; ' ORDER BY sku, valid_from) FROM"
                 " usage.license_purchases",
                 "DIALOUT_USCA 1 2026-01-01 open; MCOMEETADV 12 2026-10-01"
                 " 2026-10-15; MCOMEETADV 15 2026-10-15 open; SPE_E5 5"
                 " 2026-10-01 2026-10-15");
    assert_value(db, "SELECT string_agg(concat_ws(' ', right(user_id, 1),"
                 " sku, valid_from::date, coalesce(valid_to::date::text,"
                 " 'open')), '; ' ORDER BY user_id, sku) FROM"
                 " usage.license_assignments",
                 "1 MCOMEETADV 2026-10-01 2026-10-15; 2 SPE_E5 2026-10-01"
                 " 2026-10-15; 3 MCOMEETADV 2026-10-15 open");
    assert_value(db, "SELECT string_agg(concat_ws(' ', source, rows_read,"
                 " inserted, updated, unchanged, rejected, closed), '; '"
                 " ORDER BY import_id) FROM usage.imports WHERE import_id >"
                 " (SELECT max(import_id) - 2 FROM usage.imports)",
                 "licences-skus 2 0 1 0 1 2; licences-users 1 1 0 0 0 2");

    /* The same snapshot again changes nothing; an older one is refused. */
    char *before = licences_md5(db);
    CU_ASSERT_EQUAL(acbill_import(conninfo, "licences --tenant T1 --at "
                                  "2026-10-15T00:00:00Z --skus skus2.json "
                                  "--users users2.json"), 65);
    CU_ASSERT_EQUAL(acbill_import(conninfo, "licences --tenant T1 --at "
                                  "2026-10-14T00:00:00Z --skus skus2.json "
                                  "--users users2.json"), 65);
    assert_value(db, "SELECT status || ' ' || left(message, 35) FROM"
                 " usage.imports ORDER BY import_id DESC LIMIT 1",
                 "refused the snapshot at 2026-10-14T00:00:00");
    CU_ASSERT_EQUAL(acbill_import(conninfo, "licences --tenant T1 --at "
                                  "yesterday --skus skus2.json "
                                  "--users users2.json"), 64);
    CU_ASSERT_EQUAL(acbill_import(conninfo, "licences --tenant T1 "
                                  "--skus skus2.json --users users2.json"),
                    64);
    char *after = licences_md5(db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);
    assert_value(db, "SELECT display_name FROM usage.users WHERE user_id ="
                 " '0b5e0000-0000-4000-8000-000000000003'", "Cy");
}

/* ------------------------------------------------------------- import_run */

static PGconn *rdb;
static char rconn[256];

static int run_init(void)
{
    rdb = testdb_fresh("acbill_import_run_t", rconn, sizeof rconn);
    if (rdb == NULL || make_fixtures("spec") != 0)
        return 1;
    return testdb_exec(rdb,
        "INSERT INTO usage.tenants (tenant_id, name, currency, time_zone)"
        " VALUES ('T1', 'Contoso', 'USD', 'UTC');"
        /* The seller on every document (docs/billing-rules.md 4.2). */
        "INSERT INTO ref.operator (legal_name, address, country, tax_id)"
        " VALUES ('Resale Telecom Ltd', 'London', 'GB', 'GB123456789');"
        "INSERT INTO ref.rates (currency, prefix, per_minute,"
        " connection_fee, valid_from) VALUES"
        " ('USD', '1', 0.0200, 0, '2026-01-01T00:00Z'),"
        " ('USD', '1787', 0.0200, 0, '2026-01-01T00:00Z'),"
        " ('USD', '1876', 0.2500, 0.0500, '2026-01-01T00:00Z'),"
        " ('USD', '1900', 1.0000, 0, '2026-01-01T00:00Z'),"
        " ('USD', '44', 0.0300, 0, '2026-01-01T00:00Z'),"
        " ('USD', '33', 0.0350, 0, '2026-01-01T00:00Z'),"
        " ('USD', '263', 0.4000, 0, '2026-01-01T00:00Z')");
}

static int run_clean(void)
{
    PQfinish(rdb);
    test_system("rm -rf '%s'", dir);
    return 0;
}

/* docs/billing-rules.md 5.1's tenant T1, from Microsoft's formats to the invoice. */
static void test_imported_month_bills(void)
{
    CU_ASSERT_EQUAL(acbill_import(rconn, "licences --tenant T1 --at "
                                  "2026-01-01T00:00:00Z --skus spec-skus.json"
                                  " --users spec-users-jan.json"), 0);
    CU_ASSERT_EQUAL(acbill_import(rconn, "licences --tenant T1 --at "
                                  "2026-10-15T00:00:00Z --skus spec-skus.json"
                                  " --users spec-users-oct15.json"), 0);
    CU_ASSERT_EQUAL(acbill_import(rconn, "pstn --tenant T1 "
                                  "Calls.Export.spec.zip"), 0);
    assert_value(rdb, "SELECT concat_ws(' ', rows_read, inserted, skipped,"
                 " rejected) FROM usage.imports WHERE source = 'pstn'",
                 "21 19 2 0");
    CU_ASSERT_EQUAL(test_system("%s run --period 2026-10 --db '%s' >>" LOG
                                " 2>&1", test_acbill_path(), rconn), 0);
    assert_value(rdb, "SELECT concat_ws(' ', seats, pool_minutes,"
                 " pool_used_minutes, exempt_minutes, billed_minutes, calls,"
                 " rejected_calls, total) FROM billing.invoices"
                 " WHERE tenant_id = 'T1' AND period = '2026-10-01'",
                 "2 120 120 61 20 17 5 5.15");
    /* erin is licensed from the second snapshot on: call 10 is before. */
    assert_value(rdb, "SELECT outcome || ' ' || coalesce(reason, '') FROM"
                 " billing.rated_calls WHERE usage_id ="
                 " '00000000-0000-4000-8000-000000000010'",
                 "rejected ORGANIZER_NOT_LICENSED");
    assert_value(rdb, "SELECT outcome FROM billing.rated_calls WHERE"
                 " usage_id = '00000000-0000-4000-8000-000000000012'",
                 "billed");
    /* Importing again changes nothing, so the next run issues nothing. */
    CU_ASSERT_EQUAL(acbill_import(rconn, "pstn --tenant T1 "
                                  "Calls.Export.spec.zip"), 0);
    CU_ASSERT_EQUAL(test_system("%s run --period 2026-10 --db '%s' >>" LOG
                                " 2>&1", test_acbill_path(), rconn), 0);
    assert_value(rdb, "SELECT count(*) FROM billing.invoices", "1");
}

CU_ErrorCode tests_register(void)
{
    CU_pSuite unit = CU_add_suite("import_unit", NULL, NULL);
    CU_pSuite s = CU_add_suite("import_db", suite_init, suite_clean);
    CU_pSuite r = CU_add_suite("import_run", run_init, run_clean);
    if (unit == NULL || s == NULL || r == NULL)
        return CU_get_error();
    CU_add_test(unit, "timestamps, GUIDs, numbers, UTF-8", test_checks);
    CU_add_test(s, "zipped export, 2023 layout", test_zip_2023_layout);
    CU_add_test(s, "broken rows kept with reasons", test_rejects_kept);
    CU_add_test(s, "re-import changes nothing",
                test_reimport_changes_nothing);
    CU_add_test(s, "overlapping export updates and inserts",
                test_overlapping_export);
    CU_add_test(s, "2020 layout and legacy TAB file", test_layouts);
    CU_add_test(s, "a UsageId twice in a file", test_duplicates_in_file);
    CU_add_test(s, "a row the database refuses", test_server_refuses_a_row);
    CU_add_test(s, "refused files and bad arguments", test_refused_files);
    CU_add_test(s, "Graph pages, exact JSON numbers", test_graph_pages);
    CU_add_test(s, "a call of another tenant", test_other_tenant);
    CU_add_test(s, "licence snapshots become intervals",
                test_licence_snapshots);
    CU_add_test(r, "an imported month bills (docs/billing-rules.md 5.1)",
                test_imported_month_bills);
    return CU_get_error();
}
