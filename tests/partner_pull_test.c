/* partner_pull_test.c: `acbill pull partner` against a local HTTPS
 * stand-in for the identity platform, the Graph partner billing export
 * and the blob storage (tests/fixtures/partner_server.py, 127.0.0.1 and
 * localhost with a throwaway CA from tests/fixtures/nginx/setup.sh), and a
 * real PostgreSQL.
 *
 * The conversation: a token for the operator's tenant, the export POST
 * throttled (429, Retry-After) then accepted (202, Location), the
 * operation polled (running with Retry-After, a 503, then the manifest),
 * two blobs per export downloaded from another origin WITHOUT the bearer
 * token (one answers 503 first), gunzipped and loaded; then the same
 * lines again (unchanged), an expired SAS link (a new export is asked
 * for), a failed operation (nothing loaded, exit 69), the unbilled
 * export, and the configuration errors. */
#include <CUnit/CUnit.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testdb.h"
#include "testmain.h"

#define OPERATOR "7f3e9b10-4c2d-4e8a-9b61-0d5c3a2e1f40"
#define SECRET "p4rtn3r-S3cret~&="

static PGconn *db;
static char conninfo[256];
static char dir[PATH_MAX];
static int port;
static long server_pid;

#define EXPECT(sql, want) CU_ASSERT(testdb_equals(db, sql, want, __LINE__))

static int pull(const char *env, const char *args)
{
    return test_system(
        "ACBILL_GRAPH_CLIENT_ID=app-2 ACBILL_GRAPH_SECRET_FILE='%s/secret' "
        "ACBILL_CA_FILE='%s/ca.pem' "
        "ACBILL_GRAPH_AUTHORITY=https://127.0.0.1:%d "
        "ACBILL_GRAPH_URL=https://127.0.0.1:%d/v1.0 "
        "ACBILL_GRAPH_BACKOFF_MS=100 %s %s pull partner --db '%s' %s "
        ">>'%s/acbill.log' 2>&1", dir, dir, port, port, env,
        test_acbill_path(), conninfo, args, dir);
}

static int requests(const char *regex)
{
    return test_system("exit $(grep -cE '%s' '%s/requests.log')", regex,
                       dir);
}

static int suite_init(void)
{
    char path[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "/tmp/acbill-partner-pull.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    if (test_system("sh '%s/tests/fixtures/nginx/setup.sh' '%s' 1 x",
                    test_src_dir(), dir) != 0 ||
        test_system("cd '%s' && printf '%%s\\n' '" SECRET "' > secret &&"
                    " chmod 600 secret", dir) != 0 ||
        test_system("python3 '%s/tests/fixtures/partner_files.py' '%s'"
                    " 2026-10 'Contoso Ltd=11111111-1111-1111-1111-"
                    "11111111AAAA,Fabrikam GmbH=22222222-2222-2222-2222-"
                    "222222222222,Tailspin Toys=99999999-9999-9999-9999-"
                    "999999999999'", test_src_dir(), dir) != 0)
        return 1;
    if (test_system("cd '%s' && python3 '%s/tests/fixtures/partner_server.py'"
                    " --dir . --tenant " OPERATOR " --client-id app-2"
                    " --secret-file secret >server.log 2>&1 &"
                    " echo $! > '%s/pid'", dir, test_src_dir(), dir) != 0)
        return 1;
    snprintf(path, sizeof path, "%s/pid", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL || fscanf(f, "%ld", &server_pid) != 1) {
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/port", dir);
    for (int i = 0; i < 100 && port <= 0; i++) {
        f = fopen(path, "r");
        if (f != NULL) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        struct timespec ts = { 0, 100000000 };
        nanosleep(&ts, NULL);
    }
    if (port <= 0)
        return 1;
    db = testdb_fresh("acbill_partner_pull", conninfo, sizeof conninfo);
    return db == NULL;
}

static int suite_clean(void)
{
    if (server_pid > 0)
        kill((pid_t)server_pid, SIGTERM);
    PQfinish(db);
    test_system("rm -rf '%s'", dir);
    return 0;
}

static void test_no_operator_tenant(void)
{
    /* the token is the operator's: without its Entra tenant id, 78 */
    CU_ASSERT_EQUAL(pull("", "--invoice G123456789"), 78);
    CU_ASSERT_EQUAL(testdb_exec(db, "INSERT INTO ref.operator (legal_name,"
                                " entra_tenant_id) VALUES ('Resale Telecom"
                                " Ltd', upper('" OPERATOR "')::uuid)"), 0);
    /* usage */
    CU_ASSERT_EQUAL(pull("", "--invoice G1 --currency USD"), 64);
    CU_ASSERT_EQUAL(pull("", "--unbilled next --currency USD"), 64);
    CU_ASSERT_EQUAL(pull("", ""), 64);
}

static void test_billed_export(void)
{
    CU_ASSERT_EQUAL(pull("", "--invoice G123456789"), 0);
    /* the same lines as the CSV download, to the unit */
    EXPECT("SELECT count(*) || ' ' || sum(subtotal) FROM"
           " usage.partner_charges", "9 1183.05");
    EXPECT("SELECT count(*) || ' ' || sum(billing_pre_tax_total) FROM"
           " usage.partner_usage", "5 5.8845");
    /* one import per blob, named after the export */
    EXPECT("SELECT string_agg(source || ' ' || file_name || ' ' || member ||"
           " ' ' || rows_read || '/' || inserted, '; ' ORDER BY import_id)"
           " FROM usage.imports",
           "partner-invoice graph:reconciliation/billed/G123456789"
           " part-00000.json.gz 4/4; partner-invoice"
           " graph:reconciliation/billed/G123456789 part-00001.json.gz 5/5;"
           " partner-usage graph:usage/billed/G123456789 part-00000.json.gz"
           " 2/2; partner-usage graph:usage/billed/G123456789"
           " part-00001.json.gz 3/3");
    /* throttled, accepted, polled through a 503, downloaded */
    CU_ASSERT_EQUAL(requests("^POST /v1.0/reports/partners/billing/"
                             "reconciliation/billed/export 429 AUTH$"), 1);
    CU_ASSERT_EQUAL(requests("^POST /v1.0/reports/partners/billing/"
                             "reconciliation/billed/export 202 AUTH$"), 1);
    CU_ASSERT_EQUAL(requests("^GET /v1.0/reports/partners/billing/"
                             "operations/op-1 (200|503) AUTH$"), 3);
    CU_ASSERT_EQUAL(requests("^GET /usage/op-2/part-00001.json.gz 503$"), 1);
    CU_ASSERT_EQUAL(requests("^GET /(reconciliation|usage)/op-[12]/"
                             "part-0000[01].json.gz 200$"), 4);
    /* the bearer token never went to the blob host */
    CU_ASSERT_EQUAL(requests("^GET /(reconciliation|usage)/.* AUTH$"), 0);
    /* neither the secret, a token nor a SAS signature in acbill's output */
    CU_ASSERT_EQUAL(test_system("grep -q -e 'p4rtn3r' -e 'tok-' -e 'sig='"
                                " '%s/acbill.log'", dir), 1);
    /* again: nothing new */
    CU_ASSERT_EQUAL(pull("", "--invoice G123456789"), 0);
    EXPECT("SELECT sum(inserted) || ' ' || sum(unchanged) FROM (SELECT *"
           " FROM usage.imports ORDER BY import_id DESC LIMIT 4) i", "0 14");
}

static void test_expired_sas(void)
{
    long before = testdb_long(db, "SELECT count(*) FROM usage.imports");
    CU_ASSERT_EQUAL(pull("", "--invoice G000EXPIRE"), 0);
    /* the first export's link was refused: a second export was made */
    CU_ASSERT_EQUAL(requests("^GET /reconciliation/op-5/part-00000.json.gz"
                             " 403$"), 1);
    CU_ASSERT_EQUAL(requests("^GET /reconciliation/op-6/part-00000.json.gz"
                             " 200$"), 1);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM usage.imports") -
                    before, 4);
    CU_ASSERT_EQUAL(test_system("grep -q \"SAS link was refused\""
                                " '%s/acbill.log'", dir), 0);
}

static void test_failed_operation(void)
{
    long before = testdb_long(db, "SELECT count(*) FROM usage.imports");
    CU_ASSERT_EQUAL(pull("", "--invoice G000FAIL"), 69);
    CU_ASSERT_EQUAL(test_system("grep -q \"Microsoft's export failed:"
                                " InvoiceNotFound: Invoice G000FAIL was not"
                                " found\" '%s/acbill.log'", dir), 0);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM usage.imports"),
                    before);
    EXPECT("SELECT count(*) FROM usage.partner_charges", "9");
}

static void test_unbilled(void)
{
    CU_ASSERT_EQUAL(pull("", "--unbilled current --currency USD"), 0);
    EXPECT("SELECT count(*) || ' ' || sum(inserted) || ' ' || sum(unchanged)"
           " FROM usage.imports WHERE file_name LIKE"
           " 'graph:%/unbilled/current/USD'", "4 0 14");
    /* a wrong secret: configuration, nothing loaded */
    CU_ASSERT_EQUAL(test_system("cd '%s' && printf 'no\\n' > wrong &&"
                                " chmod 600 wrong", dir), 0);
    char env[PATH_MAX + 64];
    snprintf(env, sizeof env, "ACBILL_GRAPH_SECRET_FILE='%s/wrong'", dir);
    CU_ASSERT_EQUAL(pull(env, "--invoice G123456789"), 78);
}

CU_ErrorCode tests_register(void)
{
    static CU_TestInfo tests[] = {
        { "no operator tenant, bad usage", test_no_operator_tenant },
        { "billed export: throttled, polled, blobs without the token",
          test_billed_export },
        { "an expired SAS link: a new export", test_expired_sas },
        { "a failed operation: nothing loaded", test_failed_operation },
        { "unbilled export; a wrong secret", test_unbilled },
        CU_TEST_INFO_NULL
    };
    static CU_SuiteInfo suites[] = {
        { "pull partner", suite_init, suite_clean, NULL, NULL, tests },
        CU_SUITE_INFO_NULL
    };
    return CU_register_suites(suites);
}
