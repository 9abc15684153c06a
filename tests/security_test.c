/* security_test.c: the attacks of issue 20 (security hardening), each of
 * which must fail.
 *
 * Suite "origin": credentials and clean-ups go only where the settings
 * say.  Two HTTPS stand-ins on 127.0.0.1 (tests/fixtures/record_server.py)
 * record every request with its Authorization header: A is the configured
 * upload URL, B (another port, so another origin) the attacker's.  Rows
 * written into billing.uploads by someone who can write the database
 * point at B; nothing may reach B, and the rows are refused, left pending
 * with the reason for an operator.
 *
 * Every test uses its own directory under one mkdtemp() directory. */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testdb.h"
#include "testmain.h"
#include "deliver/upload.h"

#define TOKEN "s3cret-upload-token"
#define assert_value(db, sql, want) \
    CU_ASSERT(testdb_equals((db), (sql), (want), __LINE__))

static char dir[PATH_MAX];          /* everything of this program */
static char conninfo[128];
static PGconn *db;
static char token_file[PATH_MAX + 16];
static char ca_file[PATH_MAX + 16];

/* ------------------------------------------------------------ helpers */

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int rc = fputs(text, f) < 0 ? -1 : 0;
    return fclose(f) != 0 ? -1 : rc;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Lines of a file matching an extended regex (0 when it does not exist). */
static int count_matching(const char *path, const char *regex)
{
    if (!exists(path))
        return 0;
    return test_system("exit $(grep -cE '%s' '%s')", regex, path);
}

/* ------------------------------------------------------------ servers */

typedef struct {
    char dir[PATH_MAX + 8];
    pid_t pid;
    int port;
    char base[96];                  /* https://127.0.0.1:PORT/finance */
    char log[PATH_MAX + 32];        /* its requests.log */
} server;

static server srv_a, srv_b;

static int server_start(server *s, const char *name)
{
    char path[PATH_MAX + 32];

    snprintf(s->dir, sizeof s->dir, "%s/%s", dir, name);
    snprintf(s->log, sizeof s->log, "%s/requests.log", s->dir);
    if (mkdir(s->dir, 0700) != 0)
        return -1;
    fflush(NULL);
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        char script[PATH_MAX + 64], cert[PATH_MAX + 32], key[PATH_MAX + 32];
        snprintf(script, sizeof script, "%s/tests/fixtures/record_server.py",
                 test_src_dir());
        snprintf(cert, sizeof cert, "%s/server.pem", dir);
        snprintf(key, sizeof key, "%s/server.key", dir);
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("python3", "python3", script, "--dir", s->dir, "--cert", cert,
               "--key", key, (char *)NULL);
        _exit(127);
    }
    snprintf(path, sizeof path, "%s/port", s->dir);
    for (int i = 0; i < 200 && s->port <= 0; i++) {
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            if (fscanf(f, "%d", &s->port) != 1)
                s->port = 0;
            fclose(f);
        }
        if (s->port <= 0) {
            struct timespec ts = { 0, 50000000 };
            nanosleep(&ts, NULL);
        }
    }
    snprintf(s->base, sizeof s->base, "https://127.0.0.1:%d/finance",
             s->port);
    return s->port > 0 ? 0 : -1;
}

static void server_stop(server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static void kill_servers(void)
{
    if (srv_a.pid > 0)
        kill(srv_a.pid, SIGTERM);
    if (srv_b.pid > 0)
        kill(srv_b.pid, SIGTERM);
}

/* ------------------------------------------------------------ suite */

static int origin_init(void)
{
    snprintf(dir, sizeof dir, "/tmp/acbill-security-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(token_file, sizeof token_file, "%s/token", dir);
    snprintf(ca_file, sizeof ca_file, "%s/ca.pem", dir);
    if (write_file(token_file, TOKEN "\n") != 0 || chmod(token_file, 0600))
        return -1;
    if (test_system("sh '%s/tests/fixtures/nginx/setup.sh' '%s' 1 x",
                    test_src_dir(), dir) != 0)
        return -1;
    atexit(kill_servers);
    if (server_start(&srv_a, "a") != 0 || server_start(&srv_b, "b") != 0)
        return -1;
    db = testdb_fresh("acbill_security", conninfo, sizeof conninfo);
    return db != NULL ? 0 : -1;
}

static int origin_clean(void)
{
    server_stop(&srv_a);
    server_stop(&srv_b);
    PQfinish(db);
    db = NULL;
    if (dir[0] != '\0' && getenv("ACBILL_KEEP_TEST_DIR") == NULL)
        test_system("rm -rf '%s'", dir);
    return 0;
}

static void origin_setup(void)
{
    testdb_exec(db, "TRUNCATE billing.uploads");
    unlink(srv_a.log);
    unlink(srv_b.log);
}

static void options_for(upload_options *o, const char *base)
{
    upload_options_defaults(o);
    o->base_url = base;
    o->ca_file = ca_file;
    o->token_file = token_file;
    o->max_attempts = 1;
    o->timeout_s = 10;
    o->connect_timeout_s = 3;
}

/* A file to deliver, and its SHA-256 and size as the ledger keeps them. */
static void make_file(const char *name, const char *text, char *path,
                      char sha[65])
{
    snprintf(path, PATH_MAX, "%s/%s", dir, name);
    CU_ASSERT_FATAL(write_file(path, text) == 0);
    FILE *p;
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    p = popen(cmd, "r");
    CU_ASSERT_FATAL(p != NULL && fscanf(p, "%64s", sha) == 1);
    pclose(p);
}

/* A row as someone with write access to billing.uploads would add it:
 * the configured base_url, but a target (and temporary) of their own. */
static void plant_row(const char *period, const char *name,
                      const char *path, const char *sha, long bytes,
                      const char *base, const char *target,
                      const char *part_url, const char *status)
{
    char b[32];
    snprintf(b, sizeof b, "%ld", bytes);
    const char *p[] = { period, name, path, sha, b, base, target, part_url,
                        status };
    PGresult *r = PQexecParams(db, "INSERT INTO billing.uploads (period,"
                               " file_name, local_path, sha256, bytes,"
                               " base_url, target_url, part_url, status,"
                               " delivered_at) VALUES ($1, $2, $3, $4, $5,"
                               " $6, $7, $8, $9, CASE WHEN $9 = 'done' THEN"
                               " now() END)", 9, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fprintf(stderr, "plant_row: %s", PQerrorMessage(db));
    CU_ASSERT(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
}

static void deliver(const upload_options *o, int *done, int *pending)
{
    char err[AC_ERR_MAX] = "";
    ac_status rc = upload_deliver_pending(db, o, done, pending, err);
    if (rc != AC_OK)
        fprintf(stderr, "upload_deliver_pending: %s\n", err);
    CU_ASSERT_EQUAL(rc, AC_OK);
}

/* ------------------------------------------------------------ tests */

/* A pending row whose target is on another origin: the token never goes
 * there; the row stays pending with the reason, which --list shows; the
 * configured server still gets the honest file, with the token. */
static void test_target_on_another_origin(void)
{
    char path[PATH_MAX], sha[65], target[256], list[PATH_MAX + 16];
    upload_options o;
    int done = 0, pending = 0;

    options_for(&o, srv_a.base);
    make_file("honest.xlsx", "honest\n", path, sha);
    char err[AC_ERR_MAX] = "";
    CU_ASSERT_EQUAL_FATAL(upload_enqueue(db, &o, "2026-01", "honest.xlsx",
                                         path, NULL, 0, err), AC_OK);
    snprintf(target, sizeof target, "%s/2026-01/evil.xlsx", srv_b.base);
    plant_row("2026-01-01", "evil.xlsx", path, sha, 7, srv_a.base, target,
              NULL, "pending");
    /* Same host and scheme, another port spelled with the default's
     * absence, and userinfo tricks: all elsewhere. */
    snprintf(target, sizeof target, "https://127.0.0.1:%d@127.0.0.1:%d/"
             "finance/2026-01/evil2.xlsx", srv_a.port, srv_b.port);
    plant_row("2026-01-01", "evil2.xlsx", path, sha, 7, srv_a.base, target,
              NULL, "pending");

    deliver(&o, &done, &pending);
    CU_ASSERT_EQUAL(done, 1);
    CU_ASSERT_EQUAL(pending, 2);
    CU_ASSERT_EQUAL(count_matching(srv_b.log, "."), 0);
    CU_ASSERT(count_matching(srv_a.log, "^PUT .* Bearer " TOKEN "$") >= 1);
    CU_ASSERT_EQUAL(count_matching(srv_a.log, "evil"), 0);
    assert_value(db, "SELECT count(*) FROM billing.uploads WHERE status ="
                 " 'pending' AND last_error LIKE 'refused: target_url is on"
                 " another origin%'", "2");
    assert_value(db, "SELECT attempts FROM billing.uploads WHERE file_name"
                 " = 'evil.xlsx'", "0");

    /* acbill upload --list says why. */
    snprintf(list, sizeof list, "%s/list.out", dir);
    CU_ASSERT_EQUAL(test_system("ACBILL_UPLOAD_URL='%s' %s upload --list"
                                " --db '%s' > '%s' 2>&1", srv_a.base,
                                test_acbill_path(), conninfo, list), 0);
    CU_ASSERT_EQUAL(count_matching(list, "evil.xlsx.*refused: target_url"
                                   " is on another origin"), 1);
}

/* A pending row whose recorded temporary is on another origin (or
 * another path of the same server): refused before any request. */
static void test_part_url_elsewhere(void)
{
    char path[PATH_MAX], sha[65], target[256], part[256];
    upload_options o;
    int done = 0, pending = 0;

    options_for(&o, srv_a.base);
    make_file("part.xlsx", "part\n", path, sha);
    snprintf(target, sizeof target, "%s/2026-02/part.xlsx", srv_a.base);
    snprintf(part, sizeof part, "%s/2026-02/.part.xlsx.part-x", srv_b.base);
    plant_row("2026-02-01", "part.xlsx", path, sha, 5, srv_a.base, target,
              part, "pending");
    snprintf(target, sizeof target, "%s/2026-03/part.xlsx", srv_a.base);
    snprintf(part, sizeof part, "%s/../etc/passwd", srv_a.base);
    plant_row("2026-03-01", "part.xlsx", path, sha, 5, srv_a.base, target,
              part, "pending");

    deliver(&o, &done, &pending);
    CU_ASSERT_EQUAL(done, 0);
    CU_ASSERT_EQUAL(pending, 2);
    CU_ASSERT_EQUAL(count_matching(srv_b.log, "."), 0);
    CU_ASSERT_EQUAL(count_matching(srv_a.log, "."), 0);
    assert_value(db, "SELECT count(*) FROM billing.uploads WHERE last_error"
                 " LIKE 'refused: part_url is not this file''s temporary%'",
                 "2");
}

/* A delivered row's part_url cannot be set any more (migration 020), and
 * one already there (planted before the migration) is never requested. */
static void test_final_part_url(void)
{
    char path[PATH_MAX], sha[65], target[256], sql[512];
    upload_options o;
    int done = 0, pending = 0;

    options_for(&o, srv_a.base);
    make_file("final.xlsx", "final\n", path, sha);
    snprintf(target, sizeof target, "%s/2026-04/final.xlsx", srv_a.base);
    plant_row("2026-04-01", "final.xlsx", path, sha, 6, srv_a.base, target,
              NULL, "done");
    snprintf(sql, sizeof sql, "UPDATE billing.uploads SET part_url ="
             " '%s/x' WHERE file_name = 'final.xlsx'", srv_b.base);
    PGresult *r = PQexec(db, sql);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_FATAL_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(PQerrorMessage(db), "cannot be changed"));
    PQclear(r);
    /* Nor by the update that makes a pending row final. */
    snprintf(target, sizeof target, "%s/2026-04/other.xlsx", srv_a.base);
    plant_row("2026-04-01", "other.xlsx", path, sha, 6, srv_a.base, target,
              NULL, "pending");
    snprintf(sql, sizeof sql, "UPDATE billing.uploads SET status = 'done',"
             " delivered_at = now(), part_url = '%s/x' WHERE file_name ="
             " 'other.xlsx'", srv_b.base);
    r = PQexec(db, sql);
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    testdb_exec(db, "UPDATE billing.uploads SET status = 'cancelled',"
                " note = 'test' WHERE file_name = 'other.xlsx'");

    /* Planted with the guard off (as before the migration). */
    snprintf(sql, sizeof sql, "ALTER TABLE billing.uploads DISABLE TRIGGER"
             " uploads_guard; UPDATE billing.uploads SET part_url = '%s/x'"
             " WHERE file_name = 'final.xlsx'; ALTER TABLE billing.uploads"
             " ENABLE TRIGGER uploads_guard", srv_b.base);
    CU_ASSERT_EQUAL(testdb_exec(db, sql), 0);
    deliver(&o, &done, &pending);
    CU_ASSERT_EQUAL(count_matching(srv_b.log, "."), 0);
    CU_ASSERT_EQUAL(count_matching(srv_a.log, "."), 0);
    assert_value(db, "SELECT count(*) FROM billing.uploads WHERE part_url IS"
                 " NOT NULL", "0");
}

/* file:// delivery: a recorded temporary outside the configured folder
 * is never deleted; the folder's own is. */
static void test_file_cleanup_stays_inside(void)
{
    char path[PATH_MAX], sha[65], target[PATH_MAX + 64], part[PATH_MAX + 64];
    char victim[PATH_MAX], folder[PATH_MAX], base[PATH_MAX + 16];
    char sql[3 * PATH_MAX];
    upload_options o;
    int done = 0, pending = 0;

    snprintf(folder, sizeof folder, "%s/delivered", dir);
    snprintf(victim, sizeof victim, "%s/victim.txt", dir);
    CU_ASSERT_FATAL(mkdir(folder, 0700) == 0);
    CU_ASSERT_FATAL(write_file(victim, "keep me\n") == 0);
    snprintf(base, sizeof base, "file://%s", folder);
    options_for(&o, base);
    o.token_file = NULL;
    make_file("local.xlsx", "local\n", path, sha);
    snprintf(target, sizeof target, "%s/2026-05/local.xlsx", base);
    snprintf(part, sizeof part, "file://%s", victim);
    plant_row("2026-05-01", "local.xlsx", path, sha, 6, base, target, NULL,
              "done");
    snprintf(sql, sizeof sql, "ALTER TABLE billing.uploads DISABLE TRIGGER"
             " uploads_guard; UPDATE billing.uploads SET part_url = '%s'"
             " WHERE file_name = 'local.xlsx'; ALTER TABLE billing.uploads"
             " ENABLE TRIGGER uploads_guard", part);
    CU_ASSERT_EQUAL(testdb_exec(db, sql), 0);
    /* And a pending row that names the victim as its temporary. */
    snprintf(target, sizeof target, "%s/2026-05/l2.xlsx", base);
    plant_row("2026-05-01", "l2.xlsx", path, sha, 6, base, target, part,
              "pending");
    /* A pending row whose target leaves the folder. */
    snprintf(target, sizeof target, "%s/2026-05/../../escaped.xlsx", base);
    plant_row("2026-05-01", "escaped.xlsx", path, sha, 6, base, target,
              NULL, "pending");

    deliver(&o, &done, &pending);
    CU_ASSERT_EQUAL(done, 0);
    CU_ASSERT_EQUAL(pending, 2);
    CU_ASSERT(exists(victim));
    snprintf(path, sizeof path, "%s/escaped.xlsx", dir);
    CU_ASSERT(!exists(path));
    assert_value(db, "SELECT count(*) FROM billing.uploads WHERE status ="
                 " 'pending' AND last_error LIKE 'refused:%'", "2");
}

static CU_TestInfo origin_tests[] = {
    { "a target on another origin is refused", test_target_on_another_origin },
    { "a temporary elsewhere is refused", test_part_url_elsewhere },
    { "a final row's temporary is fixed", test_final_part_url },
    { "file:// clean-up stays in the folder", test_file_cleanup_stays_inside },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "origin", origin_init, origin_clean, origin_setup, NULL, origin_tests },
    CU_SUITE_INFO_NULL,
};

CU_ErrorCode tests_register(void)
{
    return CU_register_suites(suites);
}
