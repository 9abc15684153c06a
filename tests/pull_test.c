/* pull_test.c: `acbill pull` against a local HTTPS stand-in for the
 * Microsoft identity platform and Graph (tests/fixtures/graph_server.py,
 * on 127.0.0.1 with a throwaway CA made by openssl through
 * tests/fixtures/nginx/setup.sh), and a real PostgreSQL.
 *
 * The conversation: a client credentials token (secret, then a
 * certificate's signed assertion), two 90-day windows whose shared
 * boundary instant is served twice, pages of 4 rows chained by
 * @odata.nextLink in Graph's other form, a 429 with Retry-After and a 503
 * without on one page, a token revoked mid-way (401, new token), licences
 * in pages; then what must be refused: a secret file others can read, no
 * client id, plain http, an unknown CA, a wrong secret, a nextLink to
 * another host, and throttling that never ends (bounded). */
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

#define LOG "/tmp/acbill-pull-test.log"
#define ENTRA "11111111-2222-4333-8444-555555555555"
#define SECRET "s3cr3t-Value~!&=+"

static PGconn *db;
static char conninfo[256];
static char dir[PATH_MAX];
static int port;
static long server_pid;

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

/* `acbill pull ARGS` with the test's Graph settings, then env overrides
 * (e.g. "ACBILL_CA_FILE=/x"); returns the exit status. */
static int pull(const char *env, const char *args)
{
    return test_system(
        "ACBILL_GRAPH_CLIENT_ID=app-1 ACBILL_GRAPH_SECRET_FILE='%s/secret' "
        "ACBILL_CA_FILE='%s/ca.pem' "
        "ACBILL_GRAPH_AUTHORITY=https://127.0.0.1:%d "
        "ACBILL_GRAPH_URL=https://127.0.0.1:%d/v1.0 "
        "ACBILL_GRAPH_BACKOFF_MS=100 %s %s pull --db '%s' %s >>" LOG " 2>&1",
        dir, dir, port, port, env, test_acbill_path(), conninfo, args);
}

/* Lines of the server's request log matching an extended regex. */
static int requests(const char *regex)
{
    return test_system("exit $(grep -cE '%s' '%s/requests.log')", regex,
                       dir);
}

static int suite_init(void)
{
    char path[PATH_MAX + 32];

    snprintf(dir, sizeof dir, "/tmp/acbill-pull-test.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    unlink(LOG);
    /* Server certificate signed by a throwaway CA, and a client
     * certificate for the assertion. */
    if (test_system("sh '%s/tests/fixtures/nginx/setup.sh' '%s' 1 x",
                    test_src_dir(), dir) != 0 ||
        test_system("cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes "
                    "-keyout client.key -out client.pem -days 2 "
                    "-subj /CN=acbill-test 2>/dev/null && cat client.pem "
                    "client.key > client-bundle.pem && chmod 600 "
                    "client-bundle.pem && printf '%%s\\n' '" SECRET
                    "' > secret && chmod 600 secret && cp secret "
                    "secret-open && chmod 644 secret-open && printf "
                    "'wrong\\n' > wrong && chmod 600 wrong", dir) != 0)
        return 1;
    if (test_system("cd '%s' && python3 '%s/tests/fixtures/graph_server.py'"
                    " --dir . --tenant " ENTRA " --client-id app-1"
                    " --secret-file secret --client-cert client.pem"
                    " --revoke-after 5 >server.log 2>&1 & echo $! > '%s/pid'",
                    dir, test_src_dir(), dir) != 0)
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
    for (int i = 0; i < 100; i++) {
        f = fopen(path, "r");
        if (f != NULL) {
            int ok = fscanf(f, "%d", &port) == 1;
            fclose(f);
            if (ok)
                break;
        }
        struct timespec ts = { 0, 100000000 };
        nanosleep(&ts, NULL);
    }
    if (port <= 0)
        return 1;
    db = testdb_fresh("acbill_pull_t", conninfo, sizeof conninfo);
    if (db == NULL)
        return 1;
    return testdb_exec(db, "INSERT INTO usage.tenants (tenant_id, name,"
                       " currency) VALUES ('T1', 'Fabrikam', 'USD'),"
                       " ('T2', 'No Entra', 'USD');"
                       "INSERT INTO ref.customers (tenant_id,"
                       " entra_tenant_id) VALUES ('T1', '" ENTRA "')");
}

static int suite_clean(void)
{
    if (server_pid > 0)
        kill((pid_t)server_pid, SIGTERM);
    PQfinish(db);
    test_system("rm -rf '%s'", dir);
    return 0;
}

static char *calls_md5(void)
{
    return testdb_value(db, "SELECT md5(coalesce(string_agg(c::text, ','"
                        " ORDER BY usage_id), '')) FROM usage.dialout_calls c");
}

static void test_paged_throttled(void)
{
    CU_ASSERT_EQUAL(pull("", "--tenant T1 --from 2026-07-01 --to "
                         "2026-10-31"), 0);
    /* Two windows of at most 90 days, inclusive bounds: the call at
     * 2026-09-29T00:00Z is in both and stored once. */
    assert_value(db, "SELECT string_agg(concat_ws(' ', file_name, rows_read,"
                 " inserted, updated, unchanged, skipped, rejected), '; '"
                 " ORDER BY import_id) FROM usage.imports",
                 "getPstnCalls(fromDateTime=2026-07-01T00:00:00Z,toDateTime="
                 "2026-09-29T00:00:00Z) 19 15 0 0 4 0; getPstnCalls("
                 "fromDateTime=2026-09-29T00:00:00Z,toDateTime=2026-11-01T"
                 "00:00:00Z) 7 4 0 1 2 0");
    assert_value(db, "SELECT count(*) || ' ' || sum(provider_charge) FROM"
                 " usage.dialout_calls", "19 8.2200");
    /* 1E-2 in the JSON is 0.01; seven-digit seconds; the organizer's
     * name with quotes and a comma. */
    assert_value(db, "SELECT concat_ws('|', provider_charge, start_time,"
                 " organizer_id) FROM usage.dialout_calls WHERE usage_id ="
                 " '9a110000-0000-4000-8000-000000000002'",
                 "0.0100|2026-07-11 09:00:00.123457+00|"
                 "9a0b5e00-0000-4000-8000-000000000002");
    assert_value(db, "SELECT display_name FROM usage.users WHERE user_id ="
                 " '9a0b5e00-0000-4000-8000-000000000001'",
                 "User 1, \"Fabrikam\"");
    /* The nextLink chain as given, the 429 and 503 retried, the revoked
     * token replaced. */
    CU_ASSERT_EQUAL(requests("getPstnCalls\\(from=2026-07-01T00:00:00Z,"
                             "to=2026-09-29T00:00:00Z\\)\\?\\$skip=4 429"), 1);
    CU_ASSERT_EQUAL(requests("getPstnCalls\\(from=2026-07-01T00:00:00Z,"
                             "to=2026-09-29T00:00:00Z\\)\\?\\$skip=4 503"), 1);
    CU_ASSERT_EQUAL(requests("getPstnCalls\\(from=2026-07-01T00:00:00Z,"
                             "to=2026-09-29T00:00:00Z\\)\\?\\$skip=4 200"), 1);
    CU_ASSERT_EQUAL(requests("\\$skip=16 200"), 1);
    CU_ASSERT_EQUAL(requests(" 401$"), 1);
    CU_ASSERT_EQUAL(requests("^POST /" ENTRA "/oauth2/v2.0/token 200"), 2);
    /* Neither the secret nor a token is ever in acbill's output. */
    CU_ASSERT_EQUAL(test_system("grep -q -e 's3cr3t' -e 'tok-' " LOG), 1);
}

static void test_repull_changes_nothing(void)
{
    char *before = calls_md5();
    CU_ASSERT_EQUAL(pull("", "--tenant T1 --from 2026-07-01 --to "
                         "2026-10-31"), 0);
    char *after = calls_md5();
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);
    assert_value(db, "SELECT sum(inserted) || ' ' || sum(updated) || ' ' ||"
                 " sum(unchanged) FROM (SELECT * FROM usage.imports ORDER BY"
                 " import_id DESC LIMIT 2) i", "0 0 20");
}

static void test_licences(void)
{
    CU_ASSERT_EQUAL(pull("", "--tenant T1 --from 2026-10-01 --to 2026-10-01"
                         " --licences"), 0);
    assert_value(db, "SELECT sku || ' ' || quantity || ' ' || (valid_to IS"
                 " NULL) FROM usage.license_purchases", "MCOMEETADV 4 true");
    assert_value(db, "SELECT string_agg(right(user_id, 1) || ' ' || sku,"
                 " '; ' ORDER BY user_id) FROM usage.license_assignments",
                 "0 MCOMEETADV; 1 MCOMEETADV");
    CU_ASSERT_EQUAL(requests("skiptoken=2 200"), 1);
}

static void test_certificate(void)
{
    char env[PATH_MAX + 64];
    snprintf(env, sizeof env, "ACBILL_GRAPH_SECRET_FILE= "
             "ACBILL_GRAPH_CERT_FILE='%s/client-bundle.pem'", dir);
    int before = requests("token 200");
    CU_ASSERT_EQUAL(pull(env, "--tenant T1 --from 2026-10-01 --to "
                         "2026-10-01"), 0);
    CU_ASSERT_EQUAL(requests("token 200"), before + 1);
    /* The same key, but a certificate the server does not know. */
    snprintf(env, sizeof env, "ACBILL_GRAPH_SECRET_FILE= "
             "ACBILL_GRAPH_CERT_FILE='%s/wrong'", dir);
    CU_ASSERT_EQUAL(pull(env, "--tenant T1 --from 2026-10-01 --to "
                         "2026-10-01"), 78);
}

static void test_refusals(void)
{
    char env[PATH_MAX + 64];
    char *before = calls_md5();
    long imports = testdb_long(db, "SELECT count(*) FROM usage.imports");

    snprintf(env, sizeof env, "ACBILL_GRAPH_SECRET_FILE='%s/secret-open'",
             dir);
    CU_ASSERT_EQUAL(pull(env, "--tenant T1 --from 2026-10-01 --to "
                         "2026-10-02"), 78);
    CU_ASSERT_EQUAL(pull("ACBILL_GRAPH_CLIENT_ID=", "--tenant T1 --from "
                         "2026-10-01 --to 2026-10-02"), 78);
    snprintf(env, sizeof env, "ACBILL_GRAPH_CERT_FILE='%s/client-bundle.pem'",
             dir);
    CU_ASSERT_EQUAL(pull(env, "--tenant T1 --from 2026-10-01 --to "
                         "2026-10-02"), 78);
    snprintf(env, sizeof env, "ACBILL_GRAPH_URL=http://127.0.0.1:%d/v1.0",
             port);
    CU_ASSERT_EQUAL(pull(env, "--tenant T1 --from 2026-10-01 --to "
                         "2026-10-02"), 78);
    snprintf(env, sizeof env, "ACBILL_CA_FILE='%s/wrong-ca.pem'", dir);
    CU_ASSERT_EQUAL(pull(env, "--tenant T1 --from 2026-10-01 --to "
                         "2026-10-02"), 69);
    snprintf(env, sizeof env, "ACBILL_GRAPH_SECRET_FILE='%s/wrong'", dir);
    CU_ASSERT_EQUAL(pull(env, "--tenant T1 --from 2026-10-01 --to "
                         "2026-10-02"), 78);
    CU_ASSERT_EQUAL(pull("", "--tenant T2 --from 2026-10-01 --to "
                         "2026-10-02"), 78);
    CU_ASSERT_EQUAL(pull("", "--tenant T1 --from 2026-10-02 --to "
                         "2026-10-01"), 64);
    CU_ASSERT_EQUAL(pull("", "--tenant T1 --from 2026-02-30 --to "
                         "2026-03-01"), 64);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM usage.imports"),
                    imports);
    /* A nextLink to another host: not followed, the window refused. */
    CU_ASSERT_EQUAL(pull("", "--tenant T1 --from 2025-01-01 --to "
                         "2025-01-02"), 65);
    assert_value(db, "SELECT status || ' ' || left(message, 36) FROM"
                 " usage.imports ORDER BY import_id DESC LIMIT 1",
                 "refused refused to follow https://127.0.0.2:");
    CU_ASSERT_EQUAL(requests("^GET .*127.0.0.2"), 0);
    /* Throttled for an hour: Retry-After capped at 1 s, 3 attempts. */
    time_t t0 = time(NULL);
    CU_ASSERT_EQUAL(pull("ACBILL_GRAPH_ATTEMPTS=3 "
                         "ACBILL_GRAPH_RETRY_AFTER_MAX=1",
                         "--tenant T1 --from 2024-01-01 --to 2024-01-02"),
                    69);
    CU_ASSERT(time(NULL) - t0 < 15);
    CU_ASSERT_EQUAL(requests("fromDateTime=2024-01-01.* 429"), 3);
    char *after = calls_md5();
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);
    CU_ASSERT_EQUAL(test_system("grep -q -e 's3cr3t' -e 'tok-' " LOG), 1);
}

CU_ErrorCode tests_register(void)
{
    CU_pSuite s = CU_add_suite("pull", suite_init, suite_clean);
    if (s == NULL)
        return CU_get_error();
    CU_add_test(s, "paged, throttled, two windows", test_paged_throttled);
    CU_add_test(s, "pulling again changes nothing",
                test_repull_changes_nothing);
    CU_add_test(s, "licences from Graph", test_licences);
    CU_add_test(s, "certificate credentials", test_certificate);
    CU_add_test(s, "what must be refused", test_refusals);
    return CU_get_error();
}
