/* finance_rejects_test.c: finance sees what did not load.
 *
 * Suite "reject periods": which periods a rejected import row touches
 * (usage.import_reject_periods, migration 033): the start time in its raw
 * text in the tenant's time zone (a CSV row's first date and time, a Graph
 * row's startDateTime, a time without an offset as UTC), else the import's
 * month and the month before; a licence snapshot's rows from the snapshot's
 * month to the import's.
 * Suite "finance summary": the summary of a period lists the rejects that
 * touch it (counts by tenant, source and reason; the first 1,000 rows with
 * file and line, then where the rest are); a tenant that fails its checks
 * is reported only in periods where it has calls; a period with nothing in
 * it gets no finance summary, no SHA256SUMS and no upload. */
#include <CUnit/CUnit.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testdb.h"
#include "testmain.h"

static PGconn *db;
static char conninfo[128];
static char dir[PATH_MAX];

#define EQUALS(sql, want) CU_ASSERT(testdb_equals(db, (sql), (want), \
                                                  __LINE__))

/* tests/xlsx_read.py ARGS: its stdout (malloc'd), or NULL. */
static char *reader(const char *args)
{
    char cmd[PATH_MAX * 3];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/xlsx_read.py' %s",
             test_src_dir(), args);
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *out = malloc(cap);
    while (out != NULL && (got = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 2) {
            char *b = realloc(out, cap * 2);
            if (b == NULL) {
                free(out);
                out = NULL;
                break;
            }
            out = b;
            cap *= 2;
        }
    }
    int st = pclose(p);
    if (out != NULL)
        out[n] = '\0';
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "\n    xlsx_read %s failed", args);
        free(out);
        return NULL;
    }
    return out;
}

static void check_text(const char *got, const char *want, int line)
{
    int same = got != NULL && strcmp(got, want) == 0;
    if (!same)
        fprintf(stderr, "\n    line %d: want\n%s\n    got\n%s", line, want,
                got ? got : "(null)");
    CU_ASSERT(same);
}

static int acbill_run(const char *args)
{
    return test_system("%s run --db '%s' --as-of 2026-12-07T00:00Z %s "
                       ">>'%s/run.log' 2>&1", test_acbill_path(), conninfo,
                       args, dir);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ------------------------------------------------------------ setup */

static int suite_init(void)
{
    snprintf(dir, sizeof dir, "/tmp/acbill-finrej-test.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    db = testdb_fresh("acbill_finrej", conninfo, sizeof conninfo);
    if (db == NULL)
        return -1;
    if (testdb_exec(db,
            "INSERT INTO ref.operator (legal_name, address, country, tax_id,"
            " payment_details) VALUES ('Resale Telecom Ltd',"
            " E'1 Exchange Square\\nLondon', 'GB', 'GB123456789',"
            " 'IBAN GB00 TEST 0000 0000');"
            "INSERT INTO usage.tenants (tenant_id, name, currency, time_zone)"
            " VALUES ('T1', 'Contoso', 'USD', 'UTC'),"
            " ('T2', 'Northwind KK', 'JPY', 'Asia/Tokyo'),"
            " ('T3', 'Mars Base', 'USD', 'Mars/Olympus_Mons')") != 0)
        return -1;
    /* T1: Microsoft's export with six broken rows (tests/fixtures). */
    if (test_system("mkdir -p '%s/fx' && python3 "
                    "'%s/tests/fixtures/ms_export.py' basic '%s/fx'", dir,
                    test_src_dir(), dir) != 0 ||
        test_system("%s import pstn --db '%s' --tenant T1 "
                    "'%s/fx/Calls.Export.a.zip' >'%s/import.log' 2>&1",
                    test_acbill_path(), conninfo, dir, dir) != 65)
        return -1;
    /* T2: rows written as the importers write them, to place exactly. */
    return testdb_exec(db,
        "UPDATE usage.imports SET started_at = '2026-11-02T10:00Z';"
        "INSERT INTO usage.imports (import_id, tenant_id, source, file_name,"
        " member, snapshot_at, started_at, finished_at, status, rows_read,"
        " rejected) VALUES"
        " (2, 'T2', 'pstn', 'nw.csv', NULL, NULL, '2026-11-02T10:00Z',"
        "  '2026-11-02T10:00Z', 'ok', 2, 2),"
        " (3, 'T2', 'graph-calls', 'page1.json', NULL, NULL,"
        "  '2026-11-02T10:00Z', '2026-11-02T10:00Z', 'ok', 1, 1),"
        " (4, 'T2', 'licences-skus', 'skus.json', NULL, '2026-09-15T00:00Z',"
        "  '2026-11-02T10:00Z', '2026-11-02T10:00Z', 'ok', 1, 1),"
        " (5, 'T2', 'pstn', 'august.csv', NULL, NULL, '2026-08-20T10:00Z',"
        "  '2026-08-20T10:00Z', 'ok', 1005, 1005);"
        "SELECT setval('usage.imports_import_id_seq', 5);"
        "INSERT INTO usage.import_rejects (import_id, line_no, raw, reason)"
        " VALUES"
        /* 05:00 on 1 October in Tokyo. */
        " (2, 2, 'u2,c2,2026-09-30T20:00:00Z,x',"
        "  'Duration Seconds ''-'' is not a whole number of seconds'),"
        /* No offset: UTC, 23:59:59 on 30 September in Tokyo. */
        " (2, 3, 'u3,c3,2026-09-30 14:59:59,x',"
        "  'Duration Seconds ''?'' is not a whole number of seconds'),"
        /* 00:30 on 1 November in Tokyo. */
        " (3, 1, '{\"id\": \"x\", \"startDateTime\": "
        "\"2026-10-31T15:30:00Z\"}', 'id ''x'' is not a GUID'),"
        " (4, 1, '{}', 'skuPartNumber is missing');"
        "INSERT INTO usage.import_rejects (import_id, line_no, raw, reason)"
        " SELECT 5, n, 'u,2026-08-10T00:00:00Z,' || n, 'bad row ' || n"
        " FROM generate_series(1, 1005) n;"
        /* T3's time zone fails its check; it has one call, in October. */
        "INSERT INTO usage.dialout_calls (usage_id, tenant_id, organizer_id,"
        " destination_number, start_time, duration_seconds) VALUES"
        " ('00000000-0000-4000-8000-0000000000f3', 'T3', 'x',"
        "  '+12125550100', '2026-10-10T10:00Z', 60)");
}

static int suite_clean(void)
{
    PQfinish(db);
    db = NULL;
    if (dir[0] != '\0' && getenv("ACBILL_KEEP_TEST_DIR") == NULL)
        test_system("rm -rf '%s'", dir);
    return 0;
}

/* ------------------------------------------------------------ periods */

static void test_reject_periods(void)
{
    /* T1, UTC, imported on 2 November: rows with a start time in October
     * touch October; rows without one that PostgreSQL reads (line 9's is
     * month 13) touch October and November. */
    EQUALS("SELECT string_agg(line_no::text, ' ' ORDER BY line_no) FROM"
           " usage.import_reject_periods WHERE import_id = 1 AND"
           " period = '2026-10-01'", "8 9 10 11 12 14");
    EQUALS("SELECT string_agg(line_no::text, ' ' ORDER BY line_no) FROM"
           " usage.import_reject_periods WHERE import_id = 1 AND"
           " period = '2026-11-01'", "9 11 12 14");
    EQUALS("SELECT count(*) FROM usage.import_reject_periods WHERE"
           " import_id = 1 AND period NOT IN ('2026-10-01', '2026-11-01')",
           "0");
    /* T2, Asia/Tokyo: the local month of the start time. */
    EQUALS("SELECT string_agg(import_id || ':' || line_no || ' ' ||"
           " to_char(period, 'YYYY-MM'), ', ' ORDER BY import_id, line_no,"
           " period) FROM usage.import_reject_periods WHERE import_id"
           " BETWEEN 2 AND 4",
           "2:2 2026-10, 2:3 2026-09, 3:1 2026-11, "
           "4:1 2026-09, 4:1 2026-10, 4:1 2026-11");
    EQUALS("SELECT usage.raw_start_time('pstn', 'a,2026-02-30T00:00Z') IS"
           " NULL", "t");
    EQUALS("SELECT usage.raw_start_time('pstn', 'a,2026-10-03 08:00:00.0000000"
           " +00:00,b') = '2026-10-03T08:00Z'", "t");
}

/* ------------------------------------------------------------ summary */

static void test_summary_lists_rejects(void)
{
    char args[PATH_MAX * 2], path[PATH_MAX * 2];
    snprintf(args, sizeof args, "--period 2026-10 --out '%s/out'", dir);
    int rc = acbill_run(args);
    CU_ASSERT(rc == 65);                /* T3 fails, the others stand */
    snprintf(path, sizeof path, "'%s/out/2026-10/finance-summary-2026-10"
             ".xlsx' 'Rejects by reason'", dir);
    char args2[PATH_MAX * 3];
    snprintf(args2, sizeof args2, "rows %s", path);
    char *t = reader(args2);
    check_text(t,
        "Tenant\tSource\tReason\tRows\tImports\n"
        "T1\tpstn\tDuration Seconds ... is not a whole number of seconds"
        "\t1\t1\n"
        "T1\tpstn\tStart Time ... is not an ISO 8601 date and time\t1\t1\n"
        "T1\tpstn\tUsageId ... is not a GUID\t1\t1\n"
        "T1\tpstn\ta quoted field is never closed (50 lines or 64 KiB "
        "without its closing quote)\t1\t1\n"
        "T1\tpstn\tmalformed quoting (a quote inside an unquoted field, or "
        "text after a closing quote)\t1\t1\n"
        "T1\tpstn\tthe row has 5 fields, the header 25\t1\t1\n"
        "T2\tlicences-skus\tskuPartNumber is missing\t1\t4\n"
        "T2\tpstn\tDuration Seconds ... is not a whole number of seconds"
        "\t1\t2\n", __LINE__);
    free(t);
    snprintf(args2, sizeof args2, "rows '%s/out/2026-10/finance-summary-"
             "2026-10.xlsx' 'Import rejects'", dir);
    t = reader(args2);
    check_text(t,
        "Tenant\tImport\tSource\tFile\tMember\tLine\tReason\t"
        "Imported at (UTC)\n"
        "T1\t1\tpstn\tCalls.Export.a.zip\tPSTN.calls.2026-10-31.csv\t8\t"
        "UsageId 'not-a-guid' is not a GUID\t2026-11-02 10:00:00\n"
        "T1\t1\tpstn\tCalls.Export.a.zip\tPSTN.calls.2026-10-31.csv\t9\t"
        "Start Time '2026-13-01T00:00:00Z' is not an ISO 8601 date and "
        "time\t2026-11-02 10:00:00\n"
        "T1\t1\tpstn\tCalls.Export.a.zip\tPSTN.calls.2026-10-31.csv\t10\t"
        "Duration Seconds 'abc' is not a whole number of seconds\t"
        "2026-11-02 10:00:00\n"
        "T1\t1\tpstn\tCalls.Export.a.zip\tPSTN.calls.2026-10-31.csv\t11\t"
        "the row has 5 fields, the header 25\t2026-11-02 10:00:00\n"
        "T1\t1\tpstn\tCalls.Export.a.zip\tPSTN.calls.2026-10-31.csv\t12\t"
        "malformed quoting (a quote inside an unquoted field, or text after"
        " a closing quote)\t2026-11-02 10:00:00\n"
        "T1\t1\tpstn\tCalls.Export.a.zip\tPSTN.calls.2026-10-31.csv\t14\t"
        "a quoted field is never closed (50 lines or 64 KiB without its "
        "closing quote)\t2026-11-02 10:00:00\n"
        "T2\t2\tpstn\tnw.csv\t\t2\tDuration Seconds '-' is not a whole "
        "number of seconds\t2026-11-02 10:00:00\n"
        "T2\t4\tlicences-skus\tskus.json\t\t1\tskuPartNumber is missing\t"
        "2026-11-02 10:00:00\n", __LINE__);
    free(t);
    /* The failing tenant has calls in October: it is reported. */
    snprintf(args2, sizeof args2, "rows '%s/out/2026-10/finance-summary-"
             "2026-10.xlsx' Tenants | grep -c '^T3\tMars Base\tfailed'",
             dir);
    t = reader(args2);
    check_text(t, "1\n", __LINE__);
    free(t);
}

/* More than 1,000 rejects: the first 1,000, then where the rest are. */
static void test_summary_caps_rows(void)
{
    char args[PATH_MAX * 2];
    snprintf(args, sizeof args, "--period 2026-08 --out '%s/out'", dir);
    CU_ASSERT_EQUAL(acbill_run(args), 0);
    snprintf(args, sizeof args, "rows '%s/out/2026-08/finance-summary-"
             "2026-08.xlsx' 'Rejects by reason' 'Import rejects'", dir);
    char *t = reader(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    int lines = 0;
    for (const char *p = t; *p; p++)
        lines += *p == '\n';
    /* Two headers, 1,005 reasons (each row its own: 'bad row n'), 1,000
     * rows and the note. */
    CU_ASSERT_EQUAL(lines, 2 + 1005 + 1000 + 1);
    CU_ASSERT(strstr(t, "\nT2\t5\tpstn\taugust.csv\t\t1000\tbad row 1000\t"
                        "2026-08-20 10:00:00\n") != NULL);
    CU_ASSERT(strstr(t, "bad row 1001\t2026-08-20") == NULL);
    CU_ASSERT(strstr(t, "\n5 more rows: SELECT * FROM usage.import_rejects"
                        " WHERE import_id IN (5)") != NULL);
    free(t);
}

/* A failing tenant is reported only where it has calls; a period with
 * nothing in it gets no summary, no SHA256SUMS, no upload. */
static void test_empty_period(void)
{
    char args[PATH_MAX * 3], path[PATH_MAX * 2];
    CU_ASSERT_EQUAL_FATAL(test_system("mkdir -p '%s/delivered'", dir), 0);
    snprintf(args, sizeof args, "--period 2026-06 --out '%s/out' "
             "--upload-url 'file://%s/delivered'", dir, dir);
    CU_ASSERT_EQUAL(acbill_run(args), 0);
    EQUALS("SELECT string_agg(tenant_id || ' ' || status, ', ' ORDER BY"
           " tenant_id) FROM billing.run_tenants WHERE run_id = (SELECT"
           " max(run_id) FROM billing.runs)",
           "T1 no_usage, T2 no_usage, T3 no_usage");
    snprintf(path, sizeof path, "%s/out/2026-06/finance-summary-2026-06.xlsx",
             dir);
    CU_ASSERT_FALSE(exists(path));
    snprintf(path, sizeof path, "%s/out/2026-06/SHA256SUMS", dir);
    CU_ASSERT_FALSE(exists(path));
    snprintf(path, sizeof path, "%s/delivered/2026-06", dir);
    CU_ASSERT_FALSE(exists(path));
    EQUALS("SELECT count(*) FROM billing.uploads WHERE period ="
           " '2026-06-01'", "0");
    /* September: T2's rejects touch it, so it has a summary; T3 has no
     * call in September and is not in it. */
    snprintf(args, sizeof args, "--period 2026-09 --out '%s/out'", dir);
    CU_ASSERT_EQUAL(acbill_run(args), 0);
    snprintf(args, sizeof args, "rows '%s/out/2026-09/finance-summary-"
             "2026-09.xlsx' Tenants 'Rejects by reason'", dir);
    char *t = reader(args);
    CU_ASSERT(t != NULL && strstr(t, "\nT3\t") == NULL);
    CU_ASSERT(t != NULL && strstr(t, "\nT2\tpstn\tDuration Seconds ... is "
                                     "not a whole number of seconds\t1\t2"
                                     "\n") != NULL);
    free(t);
}

CU_ErrorCode tests_register(void)
{
    static CU_TestInfo tests[] = {
        { "the periods a reject touches", test_reject_periods },
        { "the summary lists the rejects of its period",
          test_summary_lists_rejects },
        { "1,000 rows, then where the rest are", test_summary_caps_rows },
        { "an empty period: no summary; failures only where calls are",
          test_empty_period },
        CU_TEST_INFO_NULL
    };
    static CU_SuiteInfo suites[] = {
        { "finance sees what did not load", suite_init, suite_clean, NULL,
          NULL, tests },
        CU_SUITE_INFO_NULL
    };
    return CU_register_suites(suites);
}
