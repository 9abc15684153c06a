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
#include "import/graph.h"
#include "log.h"

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

static void remove_dir(void)
{
    if (dir[0] != '\0' && getenv("ACBILL_KEEP_TEST_DIR") == NULL)
        test_system("rm -rf '%s'", dir);
}

/* The program's directory, made once, removed at exit. */
static int common_dir(void)
{
    if (dir[0] != '\0')
        return 0;
    snprintf(dir, sizeof dir, "/tmp/acbill-security-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    atexit(remove_dir);
    return 0;
}

static int origin_init(void)
{
    if (common_dir() != 0)
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


/* ------------------------------------------------------------ files
 *
 * Suite "files": a local user who can write the output folder plants
 * symlinks at every name the job writes, temporary or final, pointing at
 * a file of the job's account (the victim).  The victim must stay as it
 * was, every output must be a regular file of mode 0640 whatever the
 * umask, and the temporaries of killed runs must go. */

static char fdb_conninfo[128];
static PGconn *fdb;
static char victim[PATH_MAX];

static int files_init(void)
{
    if (common_dir() != 0)
        return -1;
    snprintf(victim, sizeof victim, "%s/victim.conf", dir);
    fdb = testdb_fresh("acbill_security_files", fdb_conninfo,
                       sizeof fdb_conninfo);
    if (fdb == NULL || testdb_load(fdb_conninfo, "spec_example.sql") != 0)
        return -1;
    return testdb_exec(fdb, "INSERT INTO ref.operator (legal_name, address,"
                       " country, tax_id, payment_details) VALUES"
                       " ('Resale Telecom Ltd', E'1 Exchange Square\\nLondon',"
                       " 'GB', 'GB123456789', 'IBAN GB00 TEST')"
                       " ON CONFLICT (one) DO NOTHING");
}

static int files_clean(void)
{
    PQfinish(fdb);
    fdb = NULL;
    return 0;
}

static void files_setup(void)
{
    write_file(victim, "keep me\n");
}

static int victim_intact(void)
{
    char buf[64] = "";
    FILE *f = fopen(victim, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strcmp(buf, "keep me\n") == 0;
}

static void plant(const char *folder, const char *name)
{
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    unlink(path);
    CU_ASSERT(symlink(victim, path) == 0);
}

/* A regular file (not a link) with exactly this mode. */
static int regular_with_mode(const char *folder, const char *name,
                             mode_t mode)
{
    char path[PATH_MAX + 256];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", folder, name);
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s: not a regular file\n", path);
        return 0;
    }
    if ((st.st_mode & 07777) != mode) {
        fprintf(stderr, "%s: mode %04o\n", path,
                (unsigned)(st.st_mode & 07777));
        return 0;
    }
    return 1;
}

/* `acbill run ARGS` with umask 0, started so that the test knows its
 * process id before it runs: the earlier temporary names were
 * ".<file>.tmp-<pid>", which the attacker can plant for a guessed pid.
 * plant_pid(pid), when not NULL, is called again and again while it
 * runs.  Returns the exit status. */
static int run_planted(const char *args, void (*plant_pid)(long))
{
    int pfd[2];
    char cmd[1024];

    snprintf(cmd, sizeof cmd, "exec %s run --db '%s' --quiet %s "
             "2>>'%s/run.log'", test_acbill_path(), fdb_conninfo, args, dir);
    if (pipe(pfd) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(pfd[1]);
        if (read(pfd[0], &c, 1) != 1)
            _exit(126);
        umask(0);
        /* sh execs acbill in place: the same pid. */
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(pfd[0]);
    CU_ASSERT(write(pfd[1], "x", 1) == 1);
    close(pfd[1]);
    /* The attacker keeps planting while the job runs (a run removes old
     * temporaries when it starts). */
    int st = 0;
    while (waitpid(pid, &st, plant_pid != NULL ? WNOHANG : 0) == 0) {
        plant_pid((long)pid);
        struct timespec ts = { 0, 200000 };
        nanosleep(&ts, NULL);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char period_dir[PATH_MAX];

static void plant_issue_temporaries(long pid)
{
    static const char *const files[] = { "finance-summary-2026-10.xlsx",
        "T1-2026-10-R1.xlsx", "T2-2026-10-R1.xlsx" };
    char path[PATH_MAX + 256];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/.%s.tmp-%ld", period_dir, files[i],
                 pid);
        if (symlink(victim, path) != 0 && errno != EEXIST &&
            errno != ENOENT)
            perror(path);
    }
}

/* A draft (2026-10 in its grace period): the draft's old fixed temporary
 * ".T1-2026-10-DRAFT.xlsx.tmp" and its final name planted. */
static void test_draft_planted(void)
{
    char out[PATH_MAX], drafts[PATH_MAX + 16], args[PATH_MAX + 128];

    snprintf(out, sizeof out, "%s/out-draft", dir);
    snprintf(drafts, sizeof drafts, "%s/2026-10/drafts", out);
    CU_ASSERT_FATAL(test_system("mkdir -p '%s'", drafts) == 0);
    plant(drafts, ".T1-2026-10-DRAFT.xlsx.tmp");
    plant(drafts, "T1-2026-10-DRAFT.xlsx");
    snprintf(args, sizeof args, "--period 2026-10 --tenant T1 --out '%s'"
             " --as-of 2026-11-02T00:00Z", out);
    CU_ASSERT_EQUAL(run_planted(args, NULL), 0);
    CU_ASSERT(victim_intact());
    CU_ASSERT(regular_with_mode(drafts, "T1-2026-10-DRAFT.xlsx", 0640));
    /* The stale temporary is gone; no other temporary is left. */
    CU_ASSERT_EQUAL(test_system("exit $(ls -A '%s' | grep -c '^\\.')",
                                drafts), 0);
}

/* drafts/ itself a symlink to another folder: refused, nothing written
 * there. */
static void test_drafts_folder_link(void)
{
    char out[PATH_MAX], elsewhere[PATH_MAX + 16], link[PATH_MAX + 32];
    char args[PATH_MAX + 128];

    snprintf(out, sizeof out, "%s/out-draftlink", dir);
    snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere", dir);
    snprintf(link, sizeof link, "%s/2026-10/drafts", out);
    CU_ASSERT_FATAL(test_system("mkdir -p '%s/2026-10' '%s'", out,
                                elsewhere) == 0);
    CU_ASSERT_FATAL(symlink(elsewhere, link) == 0);
    snprintf(args, sizeof args, "--period 2026-10 --tenant T1 --out '%s'"
             " --as-of 2026-11-02T00:00Z", out);
    CU_ASSERT_NOT_EQUAL(run_planted(args, NULL), 0);
    CU_ASSERT_EQUAL(test_system("exit $(ls -A '%s' | wc -l)", elsewhere),
                    0);
}

/* Issued documents, the finance summary and SHA256SUMS: symlinks at the
 * final names and at the temporaries the process id predicts. */
static void test_issue_planted(void)
{
    char out[PATH_MAX], args[PATH_MAX + 128];

    snprintf(out, sizeof out, "%s/out-issue", dir);
    snprintf(period_dir, sizeof period_dir, "%s/2026-10", out);
    CU_ASSERT_FATAL(test_system("mkdir -p '%s'", period_dir) == 0);
    plant(period_dir, "T1-2026-10-R1.xlsx");
    plant(period_dir, "finance-summary-2026-10.xlsx");
    plant(period_dir, "SHA256SUMS");
    plant(period_dir, ".SHA256SUMS.tmp");
    snprintf(args, sizeof args, "--period 2026-10 --out '%s'", out);
    CU_ASSERT_EQUAL(run_planted(args, plant_issue_temporaries), 0);
    CU_ASSERT(victim_intact());
    CU_ASSERT(regular_with_mode(period_dir, "T1-2026-10-R1.xlsx", 0640));
    CU_ASSERT(regular_with_mode(period_dir, "T2-2026-10-R1.xlsx", 0640));
    CU_ASSERT(regular_with_mode(period_dir, "finance-summary-2026-10.xlsx",
                                0640));
    CU_ASSERT(regular_with_mode(period_dir, "SHA256SUMS", 0640));
    CU_ASSERT_EQUAL(test_system("cd '%s' && sha256sum -c --quiet"
                                " SHA256SUMS", period_dir), 0);
    /* A killed run's temporaries (and the planted ones) are removed by
     * the next run of the period. */
    CU_ASSERT_EQUAL(test_system("mkdir '%s/.acbill-xlsx-KILLED' && touch"
                                " '%s/.acbill-xlsx-KILLED/x.xlsx'"
                                " '%s/.T1-2026-10-R1.xlsx.tmp-AbC123'",
                                period_dir, period_dir, period_dir), 0);
    CU_ASSERT_EQUAL(run_planted(args, NULL), 0);
    CU_ASSERT_EQUAL(test_system("exit $(ls -A '%s' | grep -c '^\\.')",
                                period_dir), 0);
    CU_ASSERT(victim_intact());

    /* ACBILL_FILE_MODE chooses another mode; a bad one is refused (78). */
    snprintf(args, sizeof args, "--period 2026-10 --out '%s'", out);
    CU_ASSERT_EQUAL(test_system("rm -f '%s/SHA256SUMS' &&"
                                " ACBILL_FILE_MODE=0644 %s run --db '%s'"
                                " --quiet %s 2>/dev/null", period_dir,
                                test_acbill_path(), fdb_conninfo, args), 0);
    CU_ASSERT(regular_with_mode(period_dir, "SHA256SUMS", 0644));
    CU_ASSERT_EQUAL(test_system("ACBILL_FILE_MODE=0666x %s run --db '%s'"
                                " --quiet %s 2>/dev/null",
                                test_acbill_path(), fdb_conninfo, args), 78);
}

static CU_TestInfo files_tests[] = {
    { "a draft's planted temporaries", test_draft_planted },
    { "a drafts/ folder that is a symlink", test_drafts_folder_link },
    { "issued files' planted names", test_issue_planted },
    CU_TEST_INFO_NULL,
};

/* ------------------------------------------------------------ prefixes
 *
 * Suite "prefixes": ref.operator's document-number prefixes become file
 * names.  The database refuses an unsafe one (migration 021); a row that
 * was there before the constraint makes `acbill run` exit 78 naming the
 * column, before anything is issued. */

static char pdb_conninfo[128];
static PGconn *pdb;

static int prefixes_init(void)
{
    if (common_dir() != 0)
        return -1;
    pdb = testdb_fresh("acbill_security_prefix", pdb_conninfo,
                       sizeof pdb_conninfo);
    if (pdb == NULL || testdb_load(pdb_conninfo, "spec_example.sql") != 0)
        return -1;
    return testdb_exec(pdb, "INSERT INTO ref.operator (legal_name, address,"
                       " country, tax_id, payment_details) VALUES"
                       " ('Resale Telecom Ltd', E'1 Exchange Square\\nLondon',"
                       " 'GB', 'GB123456789', 'IBAN GB00 TEST')"
                       " ON CONFLICT (one) DO NOTHING");
}

static int prefixes_clean(void)
{
    PQfinish(pdb);
    pdb = NULL;
    return 0;
}

static const char *const hostile[] = { "/../../x-", "../../", "CN/", ".x-",
                                       "INV\n-", "ABCDEFGHIJKLMNOPQ" };

static void test_database_refuses_prefixes(void)
{
    char sql[256];
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        for (int col = 0; col < 2; col++) {
            const char *p[] = { hostile[i] };
            snprintf(sql, sizeof sql, "UPDATE ref.operator SET %s = $1",
                     col ? "credit_note_prefix" : "invoice_prefix");
            PGresult *r = PQexecParams(pdb, sql, 1, NULL, p, NULL, NULL, 0);
            CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_FATAL_ERROR);
            CU_ASSERT_PTR_NOT_NULL(strstr(PQerrorMessage(pdb),
                                          "prefix_safe"));
            PQclear(r);
        }
    }
    CU_ASSERT_EQUAL(testdb_exec(pdb, "UPDATE ref.operator SET"
                                " invoice_prefix = 'RT_INV.2-',"
                                " credit_note_prefix = 'CN-'"), 0);
    CU_ASSERT_EQUAL(testdb_exec(pdb, "UPDATE ref.operator SET"
                                " invoice_prefix = 'INV-'"), 0);
}

/* A hostile prefix already in the row (the constraint is dropped, as in a
 * database that held it before migration 021): exit 78 naming the column,
 * nothing issued, nothing written above --out. */
static void test_run_refuses_prefixes(void)
{
    char out[PATH_MAX], log[PATH_MAX + 16];
    snprintf(out, sizeof out, "%s/pfx/a/out", dir);
    snprintf(log, sizeof log, "%s/prefix.log", dir);
    CU_ASSERT_FATAL(test_system("mkdir -p '%s'", out) == 0);
    CU_ASSERT_EQUAL(testdb_exec(pdb, "ALTER TABLE ref.operator DROP"
                                " CONSTRAINT operator_invoice_prefix_safe,"
                                " DROP CONSTRAINT"
                                " operator_credit_note_prefix_safe"), 0);
    for (size_t i = 0; i < 3; i++) {
        for (int col = 0; col < 2; col++) {
            char sql[256];
            const char *name = col ? "credit_note_prefix" : "invoice_prefix";
            const char *p[] = { hostile[i] };
            testdb_exec(pdb, "UPDATE ref.operator SET invoice_prefix ="
                        " 'INV-', credit_note_prefix = 'CN-'");
            snprintf(sql, sizeof sql, "UPDATE ref.operator SET %s = $1",
                     name);
            PGresult *r = PQexecParams(pdb, sql, 1, NULL, p, NULL, NULL, 0);
            CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);
            PQclear(r);
            CU_ASSERT_EQUAL(test_system("%s run --db '%s' --quiet --period"
                                        " 2026-10 --out '%s' 2>'%s'",
                                        test_acbill_path(), pdb_conninfo,
                                        out, log), 78);
            CU_ASSERT_EQUAL(count_matching(log, name), 1);
            assert_value(pdb, "SELECT count(*) FROM billing.documents",
                         "0");
            assert_value(pdb, "SELECT count(*) FROM billing.invoices", "0");
        }
    }
    /* Nothing outside out/. */
    CU_ASSERT_EQUAL(test_system("exit $(find '%s/pfx' -type f | wc -l)",
                                dir), 0);
    /* Equal prefixes would collide. */
    testdb_exec(pdb, "UPDATE ref.operator SET invoice_prefix = 'X-',"
                " credit_note_prefix = 'X-'");
    CU_ASSERT_EQUAL(test_system("%s run --db '%s' --quiet --period 2026-10"
                                " 2>/dev/null", test_acbill_path(),
                                pdb_conninfo), 78);
    testdb_exec(pdb, "UPDATE ref.operator SET invoice_prefix = 'INV-',"
                " credit_note_prefix = 'CN-'");
    CU_ASSERT_EQUAL(test_system("%s run --db '%s' --quiet --period 2026-10"
                                " --out '%s' 2>/dev/null",
                                test_acbill_path(), pdb_conninfo, out), 0);
    /* Billed: the statements are there (T1 has no buyer profile, so it is
     * held, and T2's 0.00 takes no invoice: no document yet). */
    assert_value(pdb, "SELECT count(*) FROM billing.invoices", "2");
    assert_value(pdb, "SELECT string_agg(tenant_id || ':' || status, ' '"
                 " ORDER BY tenant_id) FROM billing.run_tenants WHERE run_id"
                 " = (SELECT max(run_id) FROM billing.runs)",
                 "T1:held T2:issued");
}

static CU_TestInfo prefixes_tests[] = {
    { "the database refuses unsafe prefixes", test_database_refuses_prefixes },
    { "a run refuses unsafe prefixes (78)", test_run_refuses_prefixes },
    CU_TEST_INFO_NULL,
};

/* Graph: a token endpoint's error shows its OAuth `error` code only,
 * never the body (which quotes the secret here) nor its description; the
 * secret is scrubbed from every message. */
static void test_token_error_is_clean(void)
{
    char secret_file[PATH_MAX + 16], url[128], auth[128];
    char err[AC_ERR_MAX] = "";
    graph_options go;
    graph_client *g = NULL;

    snprintf(secret_file, sizeof secret_file, "%s/graph-secret", dir);
    CU_ASSERT_FATAL(write_file(secret_file, "S3cr3t/with@chars\n") == 0);
    chmod(secret_file, 0600);
    snprintf(auth, sizeof auth, "https://127.0.0.1:%d", srv_a.port);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/v1.0", srv_a.port);
    setenv("ACBILL_GRAPH_CLIENT_ID", "app-1", 1);
    setenv("ACBILL_GRAPH_SECRET_FILE", secret_file, 1);
    setenv("ACBILL_GRAPH_AUTHORITY", auth, 1);
    setenv("ACBILL_GRAPH_URL", url, 1);
    setenv("ACBILL_CA_FILE", ca_file, 1);
    setenv("ACBILL_GRAPH_ATTEMPTS", "1", 1);
    CU_ASSERT_EQUAL_FATAL(graph_options_from_env(&go, err), AC_OK);
    CU_ASSERT_EQUAL(graph_open(&go, "contoso.example", &g, err),
                    AC_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "OAuth error invalid_client"));
    CU_ASSERT_PTR_NULL(strstr(err, "S3cr3t"));
    CU_ASSERT_PTR_NULL(strstr(err, "AADSTS"));
    CU_ASSERT_PTR_NULL(strchr(err, '\n'));
    /* The server got the secret (so it could echo it). */
    CU_ASSERT(count_matching(srv_a.log, "^POST /contoso.example/oauth2") ==
              1);
    /* Whatever else quotes it, the secret is scrubbed. */
    char msg[AC_ERR_MAX];
    ac_fail(msg, AC_EDATA, "server said: 'S3cr3t/with@chars'");
    CU_ASSERT_STRING_EQUAL(msg, "server said: '***'");
    graph_close(g);
    unsetenv("ACBILL_GRAPH_ATTEMPTS");
}

/* Graph paging links: followed only on the configured Graph origin, so
 * the token goes nowhere else. */
static void test_graph_links_stay_on_origin(void)
{
    char secret_file[PATH_MAX + 16], link[256], err[AC_ERR_MAX] = "";
    graph_options go;
    graph_client *g = NULL;
    char *body = NULL;
    size_t len = 0;

    snprintf(secret_file, sizeof secret_file, "%s/graph-good", dir);
    CU_ASSERT_FATAL(write_file(secret_file, "good-secret\n") == 0);
    chmod(secret_file, 0600);
    setenv("ACBILL_GRAPH_SECRET_FILE", secret_file, 1);
    setenv("ACBILL_GRAPH_ATTEMPTS", "1", 1);
    CU_ASSERT_EQUAL_FATAL(graph_options_from_env(&go, err), AC_OK);
    CU_ASSERT_EQUAL_FATAL(graph_open(&go, "contoso.example", &g, err),
                          AC_OK);
    const char *elsewhere[] = {
        "https://127.0.0.1:%d/v1.0/users?$skip=2",
        "https://127.0.0.1:%d@127.0.0.1:%d/v1.0/users",
        "http://127.0.0.1:%d/v1.0/users",
    };
    for (size_t i = 0; i < 3; i++) {
        if (i == 1)
            snprintf(link, sizeof link, elsewhere[i], srv_a.port,
                     srv_b.port);
        else
            snprintf(link, sizeof link, elsewhere[i],
                     i == 0 ? srv_b.port : srv_a.port);
        CU_ASSERT_NOT_EQUAL(graph_get(g, link, &body, &len, err), AC_OK);
        free(body);
        body = NULL;
    }
    CU_ASSERT_EQUAL(count_matching(srv_b.log, "."), 0);
    CU_ASSERT_EQUAL(count_matching(srv_a.log, "^GET "), 0);
    /* On the configured origin the token is sent. */
    snprintf(link, sizeof link, "https://127.0.0.1:%d/v1.0/users",
             srv_a.port);
    graph_get(g, link, &body, &len, err);
    free(body);
    CU_ASSERT_EQUAL(count_matching(srv_a.log, "^GET /v1.0/users Bearer"
                                   " graph-token-0123456789$"), 1);
    graph_close(g);
    unsetenv("ACBILL_GRAPH_ATTEMPTS");
}

/* ------------------------------------------------------------ messages
 *
 * Suite "messages": no secret in any message, whatever its characters;
 * one event is one line whatever the data says. */

/* ac_log's output for one call, captured from stderr into buf. */
static void capture_log(char *buf, size_t len, const char *fmt,
                        const char *arg)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/log.capture", dir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    ac_log(AC_LOG_ERROR, fmt, arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, len - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

static void test_log_lines_escaped(void)
{
    char got[4096];
    capture_log(got, sizeof got, "tenant %s, period 2026-10: failed",
                "T9\n2026-12-07T03:17:00Z acbill[1] ERROR tenant S00001,"
                " period 2026-10: forged\r\x1b[2J\tx\x7f");
    CU_ASSERT_EQUAL(count_char(got, '\n'), 1);
    CU_ASSERT_PTR_NULL(strchr(got, '\r'));
    CU_ASSERT_PTR_NULL(strchr(got, '\x1b'));
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "T9\\n2026-12-07T03:17:00Z"));
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "forged\\r\\x1b[2J\\tx\\x7f, period"));
    /* UTF-8 text is kept as it is. */
    capture_log(got, sizeof got, "tenant %s", "Zürich 東京");
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "tenant Zürich 東京\n"));
}

/* Upload URLs with credentials are refused without showing the
 * password, whatever characters it holds. */
static void test_url_passwords_never_shown(void)
{
    static const char *const urls[] = {
        "https://finance:pa/ss@files.example/dav",
        "https://finance:p@ss@files.example/dav",
        "https://finance:p%40s%2Fs@files.example/dav",
        "https://finance:p:ss@files.example:8443/dav",
        "https://fi@nance:s3cr@files.example/",
    };
    static const char *const secrets_shown[] = { "pa/ss", "p@ss",
        "p%40s", "p:ss", "s3cr" };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        upload_options o;
        char err[AC_ERR_MAX] = "";
        upload_options_defaults(&o);
        o.base_url = urls[i];
        CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_ECONFIG);
        if (strstr(err, secrets_shown[i]) != NULL)
            fprintf(stderr, "shown: %s\n", err);
        CU_ASSERT_PTR_NULL(strstr(err, secrets_shown[i]));
    }
}

/* A malformed --db string exits 78 (configuration), not 69, and is never
 * shown. */
static void test_malformed_conninfo(void)
{
    static const char *const bad[] = {
        "postgresql://acbill:se/cr@t@[::1/billing",
        "postgresql://acbill:secr@t/x@localhost/billing",
        "postgresql://acbill:secr%zzet@localhost/billing",
        "host=localhost password='secret-unterminated",
        "host=localhost secret-no-equals",
    };
    char log[PATH_MAX + 16];
    snprintf(log, sizeof log, "%s/conninfo.log", dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(test_system("%s upload --list --db \"%s\" 2>'%s'"
                                    " >&2", test_acbill_path(), bad[i],
                                    log), 78);
        CU_ASSERT_EQUAL(count_matching(log, "secr|se/cr"), 0);
        CU_ASSERT_EQUAL(count_matching(log, "malformed"), 1);
    }
}

/* ~/.netrc holds passwords: used only when it is the user's own and
 * 0600. */
static void test_netrc_permissions(void)
{
    char home[PATH_MAX + 16], netrc[PATH_MAX + 32], err[AC_ERR_MAX] = "";
    const char *old = getenv("HOME");
    char *saved = old ? strdup(old) : NULL;
    upload_options o;

    snprintf(home, sizeof home, "%s/home", dir);
    snprintf(netrc, sizeof netrc, "%s/.netrc", home);
    mkdir(home, 0700);
    CU_ASSERT_FATAL(write_file(netrc, "machine files.example login f "
                               "password p\n") == 0);
    setenv("HOME", home, 1);
    upload_options_defaults(&o);
    o.base_url = "https://files.example/dav";
    chmod(netrc, 0644);
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ".netrc is accessible by group"));
    chmod(netrc, 0600);
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_OK);
    unlink(netrc);
    CU_ASSERT_EQUAL(symlink("/etc/hostname", netrc), 0);
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_ECONFIG);
    unlink(netrc);
    if (saved != NULL)
        setenv("HOME", saved, 1);
    free(saved);
}

static int messages_init(void)
{
    return common_dir();
}

static CU_TestInfo messages_tests[] = {
    { "log lines escape control characters", test_log_lines_escaped },
    { "URL passwords are never shown", test_url_passwords_never_shown },
    { "a malformed --db is 78 and not shown", test_malformed_conninfo },
    { "~/.netrc must be the user's own, 0600", test_netrc_permissions },
    CU_TEST_INFO_NULL,
};

/* ------------------------------------------------------------ imports
 *
 * Suite "imports": files made to exhaust the database or the host.  A
 * zip bomb (2,000,000 identical bad rows, 386 MB deflated to 1.5 MB) is
 * refused whole by the compression-ratio limit; with the limits off, the
 * 2,000,000 rejects cost at most 10,000 stored rows, the others counted
 * by reason, and the database grows by less than 64 MB. */

static char idb_conninfo[128];
static PGconn *idb;

static int imports_init(void)
{
    if (common_dir() != 0)
        return -1;
    idb = testdb_fresh("acbill_security_imports", idb_conninfo,
                       sizeof idb_conninfo);
    if (idb == NULL || testdb_exec(idb, "INSERT INTO usage.tenants"
                                   " (tenant_id, name, currency) VALUES"
                                   " ('T1', 'Contoso', 'USD')") != 0)
        return -1;
    return test_system("cd '%s' && python3 '%s/tests/fixtures/zip_bomb.py'"
                       " bomb bomb.zip 2000000 && python3"
                       " '%s/tests/fixtures/zip_bomb.py' lying lying.zip"
                       " 20000 && python3 '%s/tests/fixtures/zip_bomb.py'"
                       " mixed mixed.csv", dir, test_src_dir(),
                       test_src_dir(), test_src_dir()) == 0 ? 0 : -1;
}

static int imports_clean(void)
{
    PQfinish(idb);
    idb = NULL;
    return 0;
}

static void imports_setup(void)
{
    testdb_exec(idb, "TRUNCATE usage.imports, usage.import_rejects,"
                " usage.dialout_calls, usage.users");
}

static int import_file(const char *env, const char *file)
{
    return test_system("cd '%s' && %s %s import pstn --tenant T1 --db '%s'"
                       " %s 2>>'%s/import.log'", dir, env,
                       test_acbill_path(), idb_conninfo, file, dir);
}

static void test_zip_bomb_refused(void)
{
    CU_ASSERT_EQUAL(import_file("", "bomb.zip"), 65);
    assert_value(idb, "SELECT status || ' ' || (message LIKE '%more than"
                 " % bytes (ACBILL_IMPORT_MAX_RATIO=100 times its compressed"
                 " size)%') FROM usage.imports", "refused true");
    assert_value(idb, "SELECT count(*) FROM usage.import_rejects", "0");
    assert_value(idb, "SELECT count(*) FROM usage.dialout_calls", "0");
    /* A size limit refuses it too. */
    CU_ASSERT_EQUAL(import_file("ACBILL_IMPORT_MAX_RATIO=0"
                                " ACBILL_IMPORT_MAX_UNZIPPED_MB=100",
                                "bomb.zip"), 65);
    assert_value(idb, "SELECT count(*) FROM usage.imports WHERE message LIKE"
                 " '%ACBILL_IMPORT_MAX_UNZIPPED_MB=100 MiB%'", "1");
    /* A bad setting is a configuration error. */
    CU_ASSERT_EQUAL(import_file("ACBILL_IMPORT_MAX_RATIO=lots", "bomb.zip"),
                    78);
}

/* A zip whose headers claim 1000 bytes: caught while it unzips. */
static void test_lying_zip_refused(void)
{
    CU_ASSERT_EQUAL(import_file("", "lying.zip"), 65);
    assert_value(idb, "SELECT status || ' ' || (message LIKE '%unzips to more"
                 " than%') FROM usage.imports", "refused true");
    assert_value(idb, "SELECT count(*) FROM usage.import_rejects", "0");
}

static void test_rejects_bounded(void)
{
    long long before = testdb_long(idb, "SELECT pg_database_size("
                                   "current_database())");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(import_file("ACBILL_IMPORT_MAX_RATIO=0", "bomb.zip"),
                    65);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    testdb_exec(idb, "CHECKPOINT");
    long long after = testdb_long(idb, "SELECT pg_database_size("
                                  "current_database())");
    fprintf(stderr, "\n    bomb (2,000,000 rejected rows, 1.5 MB zip, 386 MB"
            " CSV): %.1f s, database grew by %.1f MB\n",
            (double)(t1.tv_sec - t0.tv_sec) +
                (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
            (double)(after - before) / 1048576.0);
    CU_ASSERT(after - before < 64LL * 1048576);
    assert_value(idb, "SELECT concat_ws(' ', status, rows_read, rejected,"
                 " rejects_not_kept) FROM usage.imports",
                 "ok 2000000 2000000 {\"UsageId '...' is not a GUID\":"
                 " 1990000}");
    assert_value(idb, "SELECT count(*) || ' ' || min(line_no) || ' ' ||"
                 " max(line_no) FROM usage.import_rejects", "10000 2 10001");
}

/* Two kinds of rejects past the first 10,000: the kept ones are the
 * first by line; the rest are counted by reason; the good row loads. */
static void test_rejects_counted_by_reason(void)
{
    CU_ASSERT_EQUAL(import_file("", "mixed.csv"), 65);
    assert_value(idb, "SELECT concat_ws(' ', rows_read, inserted, rejected)"
                 " FROM usage.imports", "12001 1 12000");
    assert_value(idb, "SELECT count(*) FROM usage.import_rejects", "10000");
    assert_value(idb, "SELECT (SELECT sum(value::bigint) FROM"
                 " jsonb_each_text(rejects_not_kept)) || ' ' ||"
                 " (SELECT count(*) FROM jsonb_object_keys(rejects_not_kept))"
                 " FROM usage.imports", "2000 1");
    assert_value(idb, "SELECT count(*) FROM usage.import_rejects WHERE"
                 " reason LIKE 'UsageId%'", "6000");
}

static CU_TestInfo imports_tests[] = {
    { "a zip bomb is refused whole", test_zip_bomb_refused },
    { "a zip that lies about its size", test_lying_zip_refused },
    { "2,000,000 rejects: 10,000 kept, < 64 MB", test_rejects_bounded },
    { "rejects past 10,000 counted by reason", test_rejects_counted_by_reason },
    CU_TEST_INFO_NULL,
};

/* ------------------------------------------------------------ wrapper
 *
 * Suite "wrapper": the cron wrapper (cron/acbill-cron.sh) and the process.
 * acbill itself is a stub here (ACBILL=a script that exits 0). */

static char wdir[PATH_MAX + 16];

static int wrapper_init(void)
{
    if (common_dir() != 0)
        return -1;
    snprintf(wdir, sizeof wdir, "%s/wrapper", dir);
    return test_system("mkdir -m 0700 '%s' && printf '#!/bin/sh\\nexit 0\\n'"
                       " > '%s/stub' && chmod 755 '%s/stub'", wdir, wdir,
                       wdir) == 0 ? 0 : -1;
}

/* Run the wrapper with a settings file holding text; its exit status,
 * stderr in wdir/err. */
static int wrapper(const char *settings_mode, const char *text)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/settings", wdir);
    unlink(path);
    if (write_file(path, text) != 0)
        return -1;
    test_system("chmod %s '%s'", settings_mode, path);
    return test_system("ACBILL='%s/stub' ACBILL_SYSLOG=0 bash"
                       " '%s/cron/acbill-cron.sh' -e '%s' 2>'%s/err'", wdir,
                       test_src_dir(), path, wdir);
}

static void test_wrapper_settings_file(void)
{
    char text[PATH_MAX * 2], err[PATH_MAX + 16];
    snprintf(err, sizeof err, "%s/err", wdir);
    snprintf(text, sizeof text, "ACBILL_LOCK_FILE=%s/acbill.lock\n", wdir);
    CU_ASSERT_EQUAL(wrapper("0600", text), 0);
    CU_ASSERT_EQUAL(wrapper("0640", text), 0);
    CU_ASSERT_EQUAL(wrapper("0602", text), 78);
    CU_ASSERT_EQUAL(wrapper("0620", text), 78);
    CU_ASSERT_EQUAL(count_matching(err, "writable by group or others"), 1);
    if (geteuid() == 0) {
        /* Owned by another account: refused even when not writable. */
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/settings", wdir);
        CU_ASSERT_EQUAL(wrapper("0644", text), 0);
        CU_ASSERT_EQUAL(test_system("chown nobody '%s' && ACBILL='%s/stub'"
                                    " ACBILL_SYSLOG=0 bash"
                                    " '%s/cron/acbill-cron.sh' -e '%s'"
                                    " 2>'%s'", path, wdir, test_src_dir(),
                                    path, err), 78);
        CU_ASSERT_EQUAL(count_matching(err, "is owned by uid"), 1);
    }
}

static void test_wrapper_lock(void)
{
    char text[PATH_MAX * 2], err[PATH_MAX + 16], open_dir[PATH_MAX + 32];
    snprintf(err, sizeof err, "%s/err", wdir);
    snprintf(open_dir, sizeof open_dir, "%s/open", wdir);
    /* A world-writable folder such as /run/lock: refused. */
    CU_ASSERT_FATAL(test_system("mkdir -p -m 1777 '%s' && chmod 1777 '%s'",
                                open_dir, open_dir) == 0);
    snprintf(text, sizeof text, "ACBILL_LOCK_FILE=%s/acbill.lock\n",
             open_dir);
    CU_ASSERT_EQUAL(wrapper("0600", text), 78);
    CU_ASSERT_EQUAL(count_matching(err, "anyone could hold the lock"), 1);
    /* The default is no longer /run/lock. */
    CU_ASSERT_EQUAL(test_system("grep -q 'ACBILL_LOCK_FILE:-/var/lib/acbill/"
                                "acbill.lock' '%s/cron/acbill-cron.sh'",
                                test_src_dir()), 0);
    /* A symlink (or another user's file) at the lock's name: refused. */
    snprintf(text, sizeof text, "ACBILL_LOCK_FILE=%s/link.lock\n", wdir);
    char link[PATH_MAX + 32];
    snprintf(link, sizeof link, "%s/link.lock", wdir);
    CU_ASSERT(symlink(victim[0] ? victim : "/etc/hostname", link) == 0);
    CU_ASSERT_EQUAL(wrapper("0600", text), 78);
    CU_ASSERT_EQUAL(count_matching(err, "not a regular file of this user"),
                    1);
}

/* No core dumps while secrets are held: a running acbill has a core
 * limit of 0 (and is not dumpable, so not ptrace-able either). */
static void test_no_core_dumps(void)
{
    CU_ASSERT_EQUAL(test_system("(sleep 3 | %s import pstn --tenant T1 --db"
                                " '%s' /dev/stdin >/dev/null 2>&1) &"
                                " sleep 1; p=$(pgrep -P $! -f 'import pstn"
                                " --tenant T1' | head -n 1); grep -Eq"
                                " '^Max core file size +0 +0 ' /proc/$p/limits;"
                                " rc=$?; wait; exit $rc", test_acbill_path(),
                                idb_conninfo), 0);
}

static CU_TestInfo wrapper_tests[] = {
    { "the settings file: owner and mode", test_wrapper_settings_file },
    { "the lock: only this user can create it", test_wrapper_lock },
    { "no core dumps while secrets are held", test_no_core_dumps },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo origin_tests[] = {
    { "a target on another origin is refused", test_target_on_another_origin },
    { "a temporary elsewhere is refused", test_part_url_elsewhere },
    { "a final row's temporary is fixed", test_final_part_url },
    { "file:// clean-up stays in the folder", test_file_cleanup_stays_inside },
    { "a token error shows the OAuth code only", test_token_error_is_clean },
    { "Graph links stay on the Graph origin", test_graph_links_stay_on_origin },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "messages", messages_init, NULL, NULL, NULL, messages_tests },
    { "origin", origin_init, origin_clean, origin_setup, NULL, origin_tests },
    { "files", files_init, files_clean, files_setup, NULL, files_tests },
    { "prefixes", prefixes_init, prefixes_clean, NULL, NULL, prefixes_tests },
    { "imports", imports_init, imports_clean, imports_setup, NULL,
      imports_tests },
    { "wrapper", wrapper_init, NULL, NULL, NULL, wrapper_tests },
    CU_SUITE_INFO_NULL,
};

CU_ErrorCode tests_register(void)
{
    return CU_register_suites(suites);
}
