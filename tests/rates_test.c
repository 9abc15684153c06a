/* rates_test.c: `acbill import rates` against a real PostgreSQL (rate
 * cards from CSV files into ref.rates; docs/rate-cards.md).
 *
 * Suites: the checks of single values (rates_unit); loading, re-loading,
 * a second card closing the first, refused cards and their rejects, the
 * 10,000-row card and the limit on stored rejects (rates_db); and a
 * billing run that prices calls before and after a new card's first
 * instant by the card in force at each call (rates_run). */
#include <CUnit/CUnit.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "import/rates.h"
#include "testdb.h"
#include "testmain.h"

#define LOG "/tmp/acbill-rates-test.log"

static PGconn *db;
static char conninfo[256];
static char dir[PATH_MAX];

/* `acbill import rates ARGS` (in dir) against conn: the exit status. */
static int import_rates(const char *conn, const char *args)
{
    return test_system("cd '%s' && %s import rates %s --db '%s' >>" LOG
                       " 2>&1", dir, test_acbill_path(), args, conn);
}

/* Write text into dir/name. */
static int write_file(const char *name, const char *text)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

#define EQ(conn, sql, want) \
    CU_ASSERT(testdb_equals((conn), (sql), (want), __LINE__))

static char *rates_md5(PGconn *conn)
{
    return testdb_value(conn, "SELECT md5(coalesce(string_agg(r::text, ','"
                        " ORDER BY r::text), '')) FROM ref.rates r");
}

/* The card of plan/currency in force at instant t, "prefix=rate/fee ...". */
#define IN_FORCE(plan, cur, t) \
    "SELECT string_agg(prefix || '=' || per_minute || '/' ||" \
    " connection_fee, ' ' ORDER BY prefix) FROM ref.rates WHERE plan = '" \
    plan "' AND currency = '" cur "' AND valid_from <= '" t "'" \
    " AND coalesce(valid_to, 'infinity') > '" t "'"

/* ------------------------------------------------------------- unit */

static void test_checks(void)
{
    CU_ASSERT_PTR_NULL(rates_price_problem("0.0250"));
    CU_ASSERT_PTR_NULL(rates_price_problem("0"));
    CU_ASSERT_PTR_NULL(rates_price_problem("12"));
    CU_ASSERT_PTR_NULL(rates_price_problem("0.02500"));   /* = 0.0250 */
    CU_ASSERT_PTR_NULL(rates_price_problem("99999999.9999"));
    CU_ASSERT_PTR_NULL(rates_price_problem("00000099999999.9999"));
    CU_ASSERT_PTR_NOT_NULL(rates_price_problem("0.02501"));
    CU_ASSERT_PTR_NOT_NULL(rates_price_problem("100000000"));
    CU_ASSERT_PTR_NOT_NULL(rates_price_problem("-0.01"));
    CU_ASSERT_PTR_NOT_NULL(rates_price_problem("1e-2"));
    CU_ASSERT_PTR_NOT_NULL(rates_price_problem("0,02"));
    CU_ASSERT_PTR_NOT_NULL(rates_price_problem("$0.02"));
    CU_ASSERT_PTR_NOT_NULL(rates_price_problem("1,000.00"));
    CU_ASSERT_PTR_NOT_NULL(rates_price_problem(".5"));
    CU_ASSERT_PTR_NOT_NULL(rates_price_problem("5."));
    CU_ASSERT_PTR_NOT_NULL(rates_price_problem("+1"));
    CU_ASSERT_PTR_NOT_NULL(rates_price_problem(""));
    CU_ASSERT_PTR_NOT_NULL(rates_price_problem("NaN"));
    CU_ASSERT_PTR_NOT_NULL(rates_price_problem("Infinity"));
    CU_ASSERT_STRING_EQUAL(rates_price_problem("-1"), "is negative");

    CU_ASSERT_PTR_NULL(rates_prefix_problem("1"));
    CU_ASSERT_PTR_NULL(rates_prefix_problem("+44"));
    CU_ASSERT_PTR_NULL(rates_prefix_problem("123456789012345"));
    CU_ASSERT_PTR_NOT_NULL(rates_prefix_problem("1234567890123456"));
    CU_ASSERT_PTR_NOT_NULL(rates_prefix_problem(""));
    CU_ASSERT_PTR_NOT_NULL(rates_prefix_problem("+"));
    CU_ASSERT_PTR_NOT_NULL(rates_prefix_problem("0044"));
    CU_ASSERT_PTR_NOT_NULL(rates_prefix_problem("44 20"));
    CU_ASSERT_PTR_NOT_NULL(rates_prefix_problem("4.4E+11"));
    CU_ASSERT_PTR_NOT_NULL(rates_prefix_problem("\xd9\xa4"));  /* Arabic 4 */

    CU_ASSERT(rates_check_valid_from("2026-11-01"));
    CU_ASSERT(rates_check_valid_from("2026-11-01T00:00:00Z"));
    CU_ASSERT(rates_check_valid_from("2026-11-01T00:00+01:00"));
    CU_ASSERT(rates_check_valid_from("2026-11-01 00:00:00-05"));
    CU_ASSERT(rates_check_valid_from("-infinity"));
    CU_ASSERT_FALSE(rates_check_valid_from("2026-11-01T00:00:00"));
    CU_ASSERT_FALSE(rates_check_valid_from("2026-02-30"));
    CU_ASSERT_FALSE(rates_check_valid_from("now"));
    CU_ASSERT_FALSE(rates_check_valid_from("infinity"));
    CU_ASSERT_FALSE(rates_check_valid_from("11/01/2026"));

    CU_ASSERT(rates_check_plan("standard"));
    CU_ASSERT(rates_check_plan("partner-2027.v2_eu"));
    CU_ASSERT_FALSE(rates_check_plan(""));
    CU_ASSERT_FALSE(rates_check_plan("-x"));
    CU_ASSERT_FALSE(rates_check_plan("two words"));
    CU_ASSERT_FALSE(rates_check_plan("pl\xc3\xa4n"));
    CU_ASSERT(rates_check_plan("p234567890123456789012345678901234567890"
                               "123456789012345678901234"));   /* 64 */
    CU_ASSERT_FALSE(rates_check_plan("p234567890123456789012345678901234567"
                                     "8901234567890123456789012345"));
}

/* ------------------------------------------------------------- rates_db */

static int db_init(void)
{
    db = testdb_fresh("acbill_rates_t", conninfo, sizeof conninfo);
    snprintf(dir, sizeof dir, "/tmp/acbill-rates-test.XXXXXX");
    if (db == NULL || mkdtemp(dir) == NULL)
        return 1;
    return write_file("card1.csv",
                      "prefix,per_minute,connection_fee\n"
                      "1,0.0200,0\n"
                      "44,0.0300,\n"
                      "1876,0.2500,0.0500\n"
                      "263,0.4,0\n");
}

static int db_clean(void)
{
    PQfinish(db);
    test_system("rm -rf '%s'", dir);
    return 0;
}

static void test_load(void)
{
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency USD"
                                 " --valid-from 2026-01-01 card1.csv"), 0);
    EQ(db, IN_FORCE("standard", "USD", "2026-06-01T00:00Z"),
       "1=0.0200/0.0000 1876=0.2500/0.0500 263=0.4000/0.0000"
       " 44=0.0300/0.0000");
    EQ(db, "SELECT count(*) FROM ref.rates WHERE valid_from ="
       " '2026-01-01T00:00Z' AND valid_to IS NULL", "4");
    EQ(db, "SELECT concat_ws(' ', tenant_id IS NULL, source, file_name,"
       " rate_plan, rate_currency, rate_valid_from, status, rows_read,"
       " inserted, updated, unchanged, skipped, rejected, closed,"
       " sha256 ~ '^[0-9a-f]{64}$') FROM usage.imports",
       "t rates card1.csv standard USD 2026-01-01 00:00:00+00 ok 4 4 0 0 0"
       " 0 0 t");
}

static void test_reimport_unchanged(void)
{
    char *before = rates_md5(db);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency usd"
                                 " --valid-from 2026-01-01T00:00:00Z"
                                 " card1.csv"), 0);
    EQ(db, "SELECT concat_ws(' ', status, rows_read, inserted, updated,"
       " unchanged, closed, message) FROM usage.imports ORDER BY import_id"
       " DESC LIMIT 1", "ok 4 0 0 4 0 unchanged: this card is already in"
       " force from 2026-01-01T00:00:00Z");
    /* The same card saved otherwise: BOM, CRLF, other column order, an
     * extra column, '+', trailing zeros, rows in another order. */
    CU_ASSERT_EQUAL(write_file("card1-excel.csv",
                               "\xef\xbb\xbf" "Connection_Fee , PREFIX,"
                               "per_minute,country\r\n"
                               "0.05,1876,0.25,JM\r\n"
                               ",,,\r\n"
                               "0,+1,0.02000,US\r\n"
                               "\r\n"
                               "0,44,0.03,GB\r\n"
                               "0,263,0.4000,ZW\r\n"), 0);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency USD"
                                 " --valid-from 2026-01-01"
                                 " card1-excel.csv"), 0);
    EQ(db, "SELECT concat_ws(' ', status, rows_read, unchanged) FROM"
       " usage.imports ORDER BY import_id DESC LIMIT 1", "ok 4 4");
    char *after = rates_md5(db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);
}

static void test_second_card_closes_first(void)
{
    /* A hand-entered row that ended before T stays as it is. */
    CU_ASSERT_EQUAL(testdb_exec(db, "INSERT INTO ref.rates (currency,"
        " prefix, per_minute, valid_from, valid_to) VALUES ('USD', '33',"
        " 0.0350, '2025-01-01T00:00Z', '2025-12-31T00:00Z')"), 0);
    /* Another plan and another currency are not touched. */
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan partner --currency USD"
                                 " --valid-from 2026-01-01 card1.csv"), 0);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency EUR"
                                 " --valid-from 2026-01-01 card1.csv"), 0);
    CU_ASSERT_EQUAL(write_file("card2.csv",
                               "prefix,per_minute,connection_fee\n"
                               "1,0.0180,0\n"
                               "44,0.0300,0\n"
                               "4420,0.0280,0.0100\n"), 0);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency USD"
                                 " --valid-from 2026-11-01T00:00:00+01:00"
                                 " card2.csv"), 0);
    EQ(db, "SELECT concat_ws(' ', status, inserted, closed) FROM"
       " usage.imports ORDER BY import_id DESC LIMIT 1", "ok 3 4");
    /* Before T the first card, from T the second (1876 and 263 gone). */
    EQ(db, IN_FORCE("standard", "USD", "2026-10-31T22:59:59Z"),
       "1=0.0200/0.0000 1876=0.2500/0.0500 263=0.4000/0.0000"
       " 44=0.0300/0.0000");
    EQ(db, IN_FORCE("standard", "USD", "2026-10-31T23:00:00Z"),
       "1=0.0180/0.0000 44=0.0300/0.0000 4420=0.0280/0.0100");
    EQ(db, "SELECT string_agg(DISTINCT valid_to::text, ' ') FROM ref.rates"
       " WHERE plan = 'standard' AND currency = 'USD' AND valid_from ="
       " '2026-01-01T00:00Z'", "2026-10-31 23:00:00+00");
    EQ(db, "SELECT valid_to FROM ref.rates WHERE prefix = '33'",
       "2025-12-31 00:00:00+00");
    EQ(db, IN_FORCE("partner", "USD", "2027-01-01T00:00Z"),
       "1=0.0200/0.0000 1876=0.2500/0.0500 263=0.4000/0.0000"
       " 44=0.0300/0.0000");
    EQ(db, "SELECT count(*) FROM ref.rates WHERE currency = 'EUR'"
       " AND valid_to IS NULL", "4");

    /* A card starting before the card in force is refused (65), and
     * nothing changes. */
    char *before = rates_md5(db);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency USD"
                                 " --valid-from 2026-10-01 card1.csv"), 65);
    EQ(db, "SELECT status || ': ' || message LIKE 'refused: plan standard"
       " in USD already has 3 row(s) in force from 2026-10-31 23:00:00+00,"
       " after --valid-from 2026-10-01: %' FROM usage.imports"
       " ORDER BY import_id DESC LIMIT 1", "t");
    char *after = rates_md5(db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);

    /* A corrected card at the same instant replaces it row by row. */
    CU_ASSERT_EQUAL(write_file("card2b.csv",
                               "prefix,per_minute,connection_fee\n"
                               "1,0.0190,0\n"
                               "44,0.0300,0\n"
                               "49,0.0310,0\n"), 0);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency USD"
                                 " --valid-from 2026-10-31T23:00:00Z"
                                 " card2b.csv"), 0);
    EQ(db, "SELECT concat_ws(' ', status, inserted, updated, unchanged,"
       " closed, message LIKE '% 1 removed;%') FROM usage.imports"
       " ORDER BY import_id DESC LIMIT 1", "ok 1 1 1 0 t");
    EQ(db, IN_FORCE("standard", "USD", "2026-12-01T00:00Z"),
       "1=0.0190/0.0000 44=0.0300/0.0000 49=0.0310/0.0000");
    EQ(db, IN_FORCE("standard", "USD", "2026-10-01T00:00Z"),
       "1=0.0200/0.0000 1876=0.2500/0.0500 263=0.4000/0.0000"
       " 44=0.0300/0.0000");
}

static void test_bad_rows(void)
{
    CU_ASSERT_EQUAL(write_file("bad.csv",
                               "prefix,per_minute,connection_fee\n"
                               "1,0.0200,0\n"                   /* 2 ok */
                               "44,0.12345,0\n"                 /* 3 */
                               "4x,0.1,0\n"                     /* 4 */
                               "1,0.0300,0\n"                   /* 5 dup */
                               "0044,0.1,0\n"                   /* 6 */
                               "33,-0.1,0\n"                    /* 7 */
                               "34,123456789,0\n"               /* 8 */
                               "35,1e-2,0\n"                    /* 9 */
                               "36,0.1,0,9\n"                   /* 10 */
                               "\"37\n\",0.1,0.\n"              /* 11-12 */
                               "38,0.1,x\"y\n"                  /* 13 */
                               "39,0.1,0.00001\n"               /* 14 */
                               "\"40\",\"0.1\",\"0\"\n"),       /* 15 ok */
              0);
    char *before = rates_md5(db);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency USD"
                                 " --valid-from 2027-01-01 bad.csv"), 65);
    char *after = rates_md5(db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);
    EQ(db, "SELECT concat_ws(' ', status, rows_read, inserted, skipped,"
       " rejected) FROM usage.imports ORDER BY import_id DESC LIMIT 1",
       "refused 13 0 2 11");
    EQ(db, "SELECT string_agg(line_no || ' ' || split_part(reason, ' ', 1)"
       " || ' ' || split_part(reason, ' ', 3), '; ' ORDER BY line_no) FROM"
       " usage.import_rejects WHERE import_id = (SELECT max(import_id) FROM"
       " usage.imports)",
       "3 per_minute has; 4 prefix is; 5 prefix is;"
       " 6 prefix starts; 7 per_minute is; 8 per_minute is;"
       " 9 per_minute is; 10 the has; 11 prefix is; 13 malformed (a;"
       " 14 connection_fee has");
    EQ(db, "SELECT reason FROM usage.import_rejects WHERE line_no = 5",
       "prefix 1 is already on line 2 (a prefix appears once in a card)");
    EQ(db, "SELECT raw FROM usage.import_rejects WHERE line_no = 11",
       "\"37\n\",0.1,0.");
    /* The log names the first rejects by line and says where the rest
     * are. */
    CU_ASSERT_EQUAL(test_system("grep -q 'bad.csv line 3: per_minute' "
                                LOG), 0);
    CU_ASSERT_EQUAL(test_system("grep -q 'more rejected row(s): SELECT "
                                "line_no, reason, raw FROM "
                                "usage.import_rejects WHERE import_id' "
                                LOG), 0);

    /* A header that does not name the columns, an empty file, an empty
     * card: refused. */
    CU_ASSERT_EQUAL(write_file("semi.csv", "prefix;per_minute\n44;0,03\n"),
                    0);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency USD"
                                 " --valid-from 2027-01-01 semi.csv"), 65);
    EQ(db, "SELECT message LIKE 'the first line must name the columns"
       " prefix and per_minute %' FROM usage.imports ORDER BY import_id"
       " DESC LIMIT 1", "t");
    CU_ASSERT_EQUAL(write_file("empty.csv", ""), 0);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency USD"
                                 " --valid-from 2027-01-01 empty.csv"), 65);
    CU_ASSERT_EQUAL(write_file("header.csv", "prefix,per_minute\n\n"), 0);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency USD"
                                 " --valid-from 2027-01-01 header.csv"), 65);
    EQ(db, "SELECT left(message, 20) FROM usage.imports ORDER BY import_id"
       " DESC LIMIT 1", "the card has no rows");
}

static void test_bad_arguments(void)
{
    char *before = rates_md5(db);
    long imports = testdb_long(db, "SELECT count(*) FROM usage.imports");
    /* An unknown currency: refused and recorded (65). */
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency XTS"
                                 " --valid-from 2027-01-01 card1.csv"), 65);
    EQ(db, "SELECT concat_ws(' ', status, rate_currency, message) FROM"
       " usage.imports ORDER BY import_id DESC LIMIT 1", "refused XTS"
       " currency XTS is not in ref.currencies: add it (with its minor"
       " unit) before loading its rates");
    /* Usage errors (64): nothing recorded. */
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan 'two words' --currency"
                                 " USD --valid-from 2027-01-01 card1.csv"),
                    64);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency US"
                                 " --valid-from 2027-01-01 card1.csv"), 64);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency USD"
                                 " --valid-from 2027-01-01T00:00:00"
                                 " card1.csv"), 64);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--currency USD"
                                 " --valid-from 2027-01-01 card1.csv"), 64);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency USD"
                                 " --valid-from 2027-01-01"), 64);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency USD"
                                 " --valid-from 2027-01-01 --tenant T1"
                                 " card1.csv"), 64);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM usage.imports"),
                    imports + 1);
    /* A missing file (66), recorded as refused. */
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan standard --currency USD"
                                 " --valid-from 2027-01-01 missing.csv"),
                    66);
    EQ(db, "SELECT status || ' ' || file_name FROM usage.imports ORDER BY"
       " import_id DESC LIMIT 1", "refused missing.csv");
    char *after = rates_md5(db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* n rows: prefixes 2000000 + i (0 <= i < n), per_minute (i % 9973) /
 * 10000 + base, connection fee i % 3 / 100; bad: every row's price has 5
 * decimal places. */
static int write_big(const char *name, int n, int base, int bad)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    fputs("prefix,per_minute,connection_fee\n", f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%d,%d.%04d%s,0.0%d\n", 2000000 + i, base,
                i % 9973, bad ? "1" : "", i % 3);
    return fclose(f);
}

static void test_big_card(void)
{
    CU_ASSERT_EQUAL_FATAL(write_big("big1.csv", 10000, 0, 0), 0);
    CU_ASSERT_EQUAL_FATAL(write_big("big2.csv", 10000, 1, 0), 0);
    double t0 = now_s();
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan wholesale --currency USD"
                                 " --valid-from 2026-01-01 big1.csv"), 0);
    double t1 = now_s();
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan wholesale --currency USD"
                                 " --valid-from 2026-07-01 big2.csv"), 0);
    double t2 = now_s();
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan wholesale --currency USD"
                                 " --valid-from 2026-07-01 big2.csv"), 0);
    double t3 = now_s();
    fprintf(stderr, "\n    10,000-row card: loaded in %.2f s, the second "
            "(closing the first) in %.2f s, again (unchanged) in %.2f s "
            "(acbill process included)\n", t1 - t0, t2 - t1, t3 - t2);
    /* Generous bounds for a shared machine: the load takes well under a
     * second when the machine is idle. */
    CU_ASSERT(t1 - t0 < 10.0);
    CU_ASSERT(t2 - t1 < 10.0);
    CU_ASSERT(t3 - t2 < 10.0);
    EQ(db, "SELECT concat_ws(' ', count(*), sum(per_minute),"
       " sum(connection_fee), min(prefix), max(prefix)) FROM ref.rates"
       " WHERE plan = 'wholesale' AND valid_from = '2026-07-01T00:00Z'"
       " AND valid_to IS NULL", "10000 14972.5729 99.9900 2000000 2009999");
    EQ(db, "SELECT count(*) FROM ref.rates WHERE plan = 'wholesale'"
       " AND valid_to = '2026-07-01T00:00Z'", "10000");
    EQ(db, "SELECT concat_ws(' ', inserted, closed, unchanged) FROM"
       " usage.imports WHERE rate_plan = 'wholesale' ORDER BY import_id",
       "10000 0 0");
}

static void test_rejects_limit(void)
{
    /* 12,000 bad rows: the first 10,000 kept, the others counted. */
    CU_ASSERT_EQUAL_FATAL(write_big("bigbad.csv", 12000, 0, 1), 0);
    CU_ASSERT_EQUAL(import_rates(conninfo, "--plan wholesale --currency USD"
                                 " --valid-from 2027-01-01 bigbad.csv"), 65);
    EQ(db, "SELECT concat_ws(' ', status, rows_read, rejected,"
       " rejects_not_kept) FROM usage.imports ORDER BY import_id DESC"
       " LIMIT 1", "refused 12000 12000 {\"per_minute\": 2000}");
    EQ(db, "SELECT concat_ws(' ', count(*), min(line_no), max(line_no))"
       " FROM usage.import_rejects WHERE import_id = (SELECT max(import_id)"
       " FROM usage.imports)", "10000 2 10001");
}

/* ------------------------------------------------------------- rates_run */

static PGconn *rdb;
static char rconn[256];

static int run_init(void)
{
    rdb = testdb_fresh("acbill_rates_run_t", rconn, sizeof rconn);
    snprintf(dir, sizeof dir, "/tmp/acbill-rates-test.XXXXXX");
    if (rdb == NULL || mkdtemp(dir) == NULL)
        return 1;
    return testdb_exec(rdb,
        "INSERT INTO ref.operator (legal_name, address, country, tax_id,"
        " payment_details) VALUES ('Resale Telecom Ltd', E'1 Exchange"
        " Square\\nLondon', 'GB', 'GB123456789', 'IBAN GB00 TEST');"
        "INSERT INTO usage.tenants (tenant_id, name, currency, time_zone)"
        " VALUES ('TR', 'Tailspin', 'USD', 'UTC');"
        "INSERT INTO usage.license_assignments (tenant_id, user_id, sku,"
        " valid_from) VALUES ('TR', 'pat', 'MCOMEETACPEA',"
        " '2026-01-01T00:00Z');"
        "INSERT INTO usage.dialout_calls (usage_id, tenant_id, organizer_id,"
        " destination_number, start_time, duration_seconds) VALUES"
        " ('00000000-0000-4000-8000-0000000000a1', 'TR', 'pat',"
        " '+442071234567', '2026-10-20T11:59:59Z', 600),"
        " ('00000000-0000-4000-8000-0000000000a2', 'TR', 'pat',"
        " '+442071234567', '2026-10-20T12:00:00Z', 600),"
        " ('00000000-0000-4000-8000-0000000000a3', 'TR', 'pat',"
        " '+12125550100', '2026-10-25T12:00:00Z', 60)");
}

static int run_clean(void)
{
    PQfinish(rdb);
    test_system("rm -rf '%s'", dir);
    return 0;
}

/* Pay-per-minute organizer (no pool): every call billed at the card in
 * force at its start. */
static void test_run_picks_card_in_force(void)
{
    CU_ASSERT_EQUAL(write_file("oct1.csv", "prefix,per_minute,"
                               "connection_fee\n1,0.0200,0\n44,0.0300,0\n"),
                    0);
    CU_ASSERT_EQUAL(write_file("oct2.csv", "prefix,per_minute,"
                               "connection_fee\n1,0.0100,0.0100\n"
                               "44,0.0500,0\n"), 0);
    CU_ASSERT_EQUAL(import_rates(rconn, "--plan standard --currency USD"
                                 " --valid-from 2026-01-01 oct1.csv"), 0);
    CU_ASSERT_EQUAL(import_rates(rconn, "--plan standard --currency USD"
                                 " --valid-from 2026-10-20T12:00:00Z"
                                 " oct2.csv"), 0);
    CU_ASSERT_EQUAL(test_system("%s run --period 2026-10 --db '%s' >>" LOG
                                " 2>&1", test_acbill_path(), rconn), 0);
    EQ(rdb, "SELECT string_agg(right(usage_id::text, 2) || ' ' || outcome"
       " || ' ' || billed_minutes || ' ' || per_minute || ' ' ||"
       " connection_fee || ' ' || amount, '; ' ORDER BY usage_id) FROM"
       " billing.rated_calls", "a1 billed 10 0.0300 0.0000 0.3000;"
       " a2 billed 10 0.0500 0.0000 0.5000; a3 billed 1 0.0100 0.0100"
       " 0.0200");
    EQ(rdb, "SELECT subtotal FROM billing.invoices WHERE tenant_id = 'TR'",
       "0.82");
}

CU_ErrorCode tests_register(void)
{
    CU_pSuite unit = CU_add_suite("rates_unit", NULL, NULL);
    CU_pSuite s = CU_add_suite("rates_db", db_init, db_clean);
    CU_pSuite r = CU_add_suite("rates_run", run_init, run_clean);
    if (unit == NULL || s == NULL || r == NULL)
        return CU_get_error();
    CU_add_test(unit, "prices, prefixes, instants, plans", test_checks);
    CU_add_test(s, "a card loads", test_load);
    CU_add_test(s, "the same card again changes nothing",
                test_reimport_unchanged);
    CU_add_test(s, "a second card closes the first",
                test_second_card_closes_first);
    CU_add_test(s, "bad rows: refused whole, with line numbers",
                test_bad_rows);
    CU_add_test(s, "bad currency, plan, instant, file", test_bad_arguments);
    CU_add_test(s, "a 10,000-row card", test_big_card);
    CU_add_test(s, "at most 10,000 rejects kept", test_rejects_limit);
    CU_add_test(r, "a billing run prices each call by the card in force",
                test_run_picks_card_in_force);
    return CU_get_error();
}
