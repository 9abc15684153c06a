/* ops_test.c: acbill as an operator meets it, under faults.
 *
 * Suite "exit codes": the table of README "Exit status" (job/status.h),
 * case by case, each produced by the real fault: a tenant's bad data, a
 * missing SQL directory, a server that is down or read-only, files that
 * wait for upload, an output directory that is a file, a full disk (a
 * file-size limit), a held run lock, a held table lock (lock_timeout), a
 * statement timeout, a wrong or missing password, an unknown database or
 * host, a bad URL, a schema not migrated, a bad timeout setting.
 * Suite "faults": a run killed with SIGKILL while its workers work (the
 * workers die with it, the next run starts at once and marks it killed,
 * the temporary files are removed), two periods at once, --join with
 * another --out, a workbook writer whose connection is killed.
 * Suite "operator": the progress line on a terminal (script(1)), -V, the
 * help texts, the man page (man -l), the exit table in README, man page
 * and --help. */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testdb.h"
#include "testmain.h"

static PGconn *db;
static char conninfo[128];
static char dir[PATH_MAX];          /* this program's files */
static char log_path[PATH_MAX + 16];

/* ------------------------------------------------------------ helpers */

/* `acbill run --db <conninfo> ARGS` with ENV before it, output appended
 * to the log; its exit status. */
static int run_with(const char *env, const char *ci, const char *args)
{
    return test_system("%s %s run --db '%s' %s >>'%s' 2>&1", env,
                       test_acbill_path(), ci, args, log_path);
}

static int run_acbill(const char *env, const char *args)
{
    return run_with(env, conninfo, args);
}

static int load_sample(const char *ci)
{
    return test_system("%s sample --db '%s' --period 2026-10 --tenants 12"
                       " --calls 4000 --seed 7 >/dev/null 2>&1",
                       test_acbill_path(), ci);
}

/* Poll sql until it returns want (at most ~60 s); 0 when it did. */
static int wait_for(PGconn *c, const char *sql, const char *want)
{
    for (int i = 0; i < 600; i++) {
        char *v = testdb_value(c, sql);
        int same = v != NULL && strcmp(v, want) == 0;
        free(v);
        if (same)
            return 0;
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* The whole of a file as a malloc'd string ("" when missing). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL)
        return NULL;
    while (f != NULL) {
        if (n == cap) {
            char *more = realloc(buf, 2 * cap + 1);
            if (more == NULL)
                break;
            buf = more;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0)
            break;
        n += got;
    }
    if (f != NULL)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The log written since offset (a malloc'd string). */
static char *log_since(long offset)
{
    char *all = slurp(log_path);
    if (all == NULL)
        return NULL;
    size_t len = strlen(all);
    if ((size_t)offset > len)
        offset = (long)len;
    memmove(all, all + offset, len - (size_t)offset + 1);
    return all;
}

static long log_size(void)
{
    struct stat st;
    return stat(log_path, &st) == 0 ? (long)st.st_size : 0;
}

/* Hold tenant's claim for period in c, as a worker billing it would. */
static int hold_claim(PGconn *c, const char *period, const char *tenant,
                      int hold)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_%slock(('x' || substr("
             "md5('acbill/%s/%s'), 1, 16))::bit(64)::bigint)",
             hold ? "" : "un", period, tenant);
    return testdb_exec(c, sql);
}

/* Is process pid gone (or a zombie nobody reaps)? */
static int process_gone(pid_t pid)
{
    char path[64], stat_line[256];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 1;
    int zombie = fgets(stat_line, sizeof stat_line, f) != NULL &&
                 strstr(stat_line, ") Z ") != NULL;
    fclose(f);
    return zombie;
}

/* Number of entries of path whose name starts with '.' (temporaries). */
static int hidden_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") != 0 &&
            strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int count_files(const char *path, const char *suffix)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        if (e->d_name[0] != '.' && l > s &&
            strcmp(e->d_name + l - s, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* ------------------------------------------------------------ suites */

static int common_init(void)
{
    if (dir[0] != '\0')
        return 0;
    snprintf(dir, sizeof dir, "/tmp/acbill-ops-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(log_path, sizeof log_path, "%s/acbill.log", dir);
    return 0;
}

static int exit_init(void)
{
    if (common_init() != 0)
        return -1;
    db = testdb_fresh("acbill_ops_exit", conninfo, sizeof conninfo);
    if (db == NULL || load_sample(conninfo) != 0)
        return -1;
    return 0;
}

static int suite_clean(void)
{
    PQfinish(db);
    db = NULL;
    return 0;
}

/* ------------------------------------------------------------ exit codes */

static void test_exit_0_and_64(void)
{
    CU_ASSERT_EQUAL(run_acbill("", "--period 2026-10"), 0);
    CU_ASSERT_EQUAL(run_acbill("", "--period 2026-13"), 64);
    CU_ASSERT_EQUAL(run_acbill("", "--bogus"), 64);
    CU_ASSERT_EQUAL(run_acbill("", "--workers 0"), 64);
    CU_ASSERT_EQUAL(test_system("%s frobnicate 2>/dev/null",
                                test_acbill_path()), 64);
}

/* 65 only for a tenant whose data fails a check, and the log's last line
 * (cron's mail) names it and says why. */
static void test_exit_65_names_the_tenant(void)
{
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "UPDATE usage.tenants SET "
        "time_zone = 'Mars/Olympus_Mons' WHERE tenant_id = 'S00004'"), 0);
    long at = log_size();
    CU_ASSERT_EQUAL(run_acbill("", "--period 2026-10"), 65);
    char *out = log_since(at);
    const char *last = out ? strstr(out, "ERROR run: 1 of 12 tenant(s) "
                                    "failed: S00004 (data error: ") : NULL;
    CU_ASSERT_PTR_NOT_NULL(last);
    CU_ASSERT(last != NULL && strstr(last, "Mars/Olympus_Mons") != NULL);
    CU_ASSERT(last != NULL && strstr(last, "(exit 65, data error)") != NULL);
    free(out);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT exit_status FROM "
        "billing.run_tenants WHERE tenant_id = 'S00004' AND run_id = "
        "(SELECT max(run_id) FROM billing.runs)"), 65);
    testdb_exec(db, "UPDATE usage.tenants SET time_zone = 'UTC' WHERE "
                "tenant_id = 'S00004'");
    CU_ASSERT_EQUAL(run_acbill("", "--period 2026-10"), 0);
}

static void test_exit_66_no_migrations(void)
{
    char env[PATH_MAX + 32];
    snprintf(env, sizeof env, "ACBILL_SQL_DIR='%s/none'", dir);
    CU_ASSERT_EQUAL(run_acbill(env, "--period 2026-10"), 66);
}

static void test_exit_69_unavailable(void)
{
    char args[PATH_MAX * 2];
    /* No server at the socket. */
    CU_ASSERT_EQUAL(run_with("", "host=/nonexistent dbname=x",
                             "--period 2026-10"), 69);
    /* A read-only database (a standby, or read-only for maintenance). */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "ALTER DATABASE acbill_ops_exit "
        "SET default_transaction_read_only = on"), 0);
    CU_ASSERT_EQUAL(run_acbill("", "--period 2026-10"), 69);
    testdb_exec(db, "ALTER DATABASE acbill_ops_exit RESET "
                "default_transaction_read_only");
    /* Billed, but the files wait for upload. */
    /* (A file:// folder that does not exist is configuration, 78: see
     * cli_test.c.  Here a server that refuses connections.) */
    snprintf(args, sizeof args, "--period 2026-10 --out %s/out69 "
             "--upload-url https://127.0.0.1:9/", dir);
    CU_ASSERT_EQUAL(run_acbill("ACBILL_UPLOAD_ATTEMPTS=1", args), 69);
    CU_ASSERT_EQUAL(test_system("%s upload --db '%s' --cancel --all-for "
                                "https://127.0.0.1:9/ >/dev/null 2>&1",
                                test_acbill_path(), conninfo), 0);
}

static void test_exit_73_output(void)
{
    char path[PATH_MAX + 32], args[PATH_MAX * 2];
    /* --out names a file. */
    snprintf(path, sizeof path, "%s/a-file", dir);
    CU_ASSERT_FATAL(test_system("touch '%s'", path) == 0);
    snprintf(args, sizeof args, "--period 2026-10 --out '%s'", path);
    CU_ASSERT_EQUAL(run_acbill("", args), 73);
    /* A full disk while the finance summary is written: the workbooks
     * stand from the first run, the second must write the summary and
     * cannot (a file-size limit: writes fail with EFBIG as with ENOSPC). */
    snprintf(args, sizeof args, "--period 2026-10 --out '%s/out73'", dir);
    CU_ASSERT_EQUAL(run_acbill("", args), 0);
    snprintf(path, sizeof path, "%s/out73/2026-10/finance-summary-2026-10"
             ".xlsx", dir);
    CU_ASSERT_FATAL(unlink(path) == 0);
    char full[PATH_MAX + 16];
    snprintf(full, sizeof full, "%s/disk-full.log", dir);
    /* Leak detection off for this one run (make asan): when its zip
     * cannot be written, libxlsxwriter 1.1.4 leaves one worksheet
     * temporary (93 bytes) unclosed, a leak of the library's error path,
     * not of acbill's. */
    CU_ASSERT_EQUAL(test_system("ASAN_OPTIONS=detect_leaks=0 "
                                "sh -c \"trap '' XFSZ; ulimit -f 8; exec %s"
                                " run --db '%s' --quiet %s\" >'%s' 2>&1",
                                test_acbill_path(), conninfo, args, full),
                    73);
    char *out = slurp(full);
    CU_ASSERT(out != NULL && strstr(out, "File too large") != NULL);
    free(out);
    CU_ASSERT_EQUAL(run_acbill("", args), 0);
}

static void test_exit_75_try_later(void)
{
    struct timespec t0, t1;
    /* The period's run lock is held: 75; another period is not held up. */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "SELECT pg_advisory_lock(72542, "
                                      "202610)"), 0);
    CU_ASSERT_EQUAL(run_acbill("", "--period 2026-10"), 75);
    CU_ASSERT_EQUAL(run_acbill("", "--period 2026-09"), 0);
    testdb_exec(db, "SELECT pg_advisory_unlock(72542, 202610)");

    /* A table lock held by someone else: lock_timeout, 75, soon. */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "BEGIN; LOCK TABLE "
        "usage.dialout_calls IN ACCESS EXCLUSIVE MODE"), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(run_acbill("ACBILL_LOCK_TIMEOUT=300ms",
                               "--period 2026-10"), 75);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CU_ASSERT(t1.tv_sec - t0.tv_sec < 20);
    testdb_exec(db, "ROLLBACK");
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM billing.run_tenants"
        " WHERE run_id = (SELECT max(run_id) FROM billing.runs) AND"
        " status = 'failed' AND exit_status = 75"), 2);

    /* A statement that runs too long (here: waiting on a lock, with no
     * lock_timeout): statement_timeout, 75. */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "BEGIN; LOCK TABLE "
        "usage.license_purchases IN ACCESS EXCLUSIVE MODE"), 0);
    CU_ASSERT_EQUAL(run_acbill("ACBILL_LOCK_TIMEOUT=0 "
                               "ACBILL_STATEMENT_TIMEOUT=300ms",
                               "--period 2026-10"), 75);
    testdb_exec(db, "ROLLBACK");
    char *msg = testdb_value(db, "SELECT message FROM billing.run_tenants"
        " WHERE run_id = (SELECT max(run_id) FROM billing.runs) LIMIT 1");
    CU_ASSERT(msg != NULL && strstr(msg, "statement timeout") != NULL);
    free(msg);
    /* The next run bills the tenants left. */
    CU_ASSERT_EQUAL(run_acbill("", "--period 2026-10"), 0);
}

static void test_exit_78_configuration(void)
{
    char ci[256], args[PATH_MAX + 64];
    /* A role that must give a password: the hba file gets a line for it. */
    char *hba = testdb_value(db, "SHOW hba_file");
    CU_ASSERT_PTR_NOT_NULL_FATAL(hba);
    testdb_exec(db, "DROP ROLE IF EXISTS acbill_pw");
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "CREATE ROLE acbill_pw LOGIN "
                                      "PASSWORD 'right-one'"), 0);
    CU_ASSERT_EQUAL_FATAL(test_system("grep -q acbill_pw '%s' || sed -i "
        "'1i local all acbill_pw scram-sha-256' '%s'", hba, hba), 0);
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "SELECT pg_reload_conf()"), 0);
    test_system("sleep 0.5");
    free(hba);
    snprintf(ci, sizeof ci, "dbname=acbill_ops_exit user=acbill_pw");
    long at = log_size();
    CU_ASSERT_EQUAL(run_with("PGPASSFILE=/nonexistent PGPASSWORD=wrong", ci,
                             "--period 2026-10"), 78);
    char *out = log_since(at);
    CU_ASSERT(out != NULL && strstr(out, "password authentication failed")
              != NULL && strstr(out, "28P01") != NULL);
    free(out);
    CU_ASSERT_EQUAL(run_with("PGPASSFILE=/nonexistent", ci,
                             "--period 2026-10"), 78);
    /* Unknown database, role, host. */
    CU_ASSERT_EQUAL(run_with("", "dbname=acbill_no_such_db",
                             "--period 2026-10"), 78);
    CU_ASSERT_EQUAL(run_with("", "dbname=acbill_ops_exit user=nobody_here",
                             "--period 2026-10"), 78);
    /* A name the resolver says does not exist is configuration; when no
     * resolver answers at all, nobody can tell, and it is 69. */
    int nxdomain = test_system("python3 -c \"import socket, sys\n"
        "try: socket.getaddrinfo('acbill-no-such-host.invalid', 5432)\n"
        "except socket.gaierror as e: sys.exit(0 if e.errno == "
        "socket.EAI_NONAME else 1)\nsys.exit(1)\"") == 0;
    CU_ASSERT_EQUAL(run_with("", "host=acbill-no-such-host.invalid "
                             "connect_timeout=5", "--period 2026-10"),
                    nxdomain ? 78 : 69);
    /* A malformed conninfo, a bad URL, a bad timeout setting. */
    CU_ASSERT_EQUAL(run_with("", "dbname=x bogus_option=1",
                             "--period 2026-10"), 78);
    snprintf(args, sizeof args, "--period 2026-10 --out %s/o78 --upload-url "
             "ftp://files.example/", dir);
    CU_ASSERT_EQUAL(run_acbill("", args), 78);
    CU_ASSERT_EQUAL(run_acbill("ACBILL_LOCK_TIMEOUT=soon",
                               "--period 2026-10"), 78);
    /* A database nobody migrated. */
    PGconn *admin = PQconnectdb("dbname=postgres");
    testdb_exec(admin, "DROP DATABASE IF EXISTS acbill_ops_bare");
    CU_ASSERT_EQUAL(testdb_exec(admin, "CREATE DATABASE acbill_ops_bare"),
                    0);
    PQfinish(admin);
    CU_ASSERT_EQUAL(run_with("", "dbname=acbill_ops_bare",
                             "--period 2026-10"), 78);
}

/* ------------------------------------------------------------ faults */

static int kill_init(void)
{
    if (common_init() != 0)
        return -1;
    db = testdb_fresh("acbill_ops_kill", conninfo, sizeof conninfo);
    if (db == NULL || load_sample(conninfo) != 0)
        return -1;
    return 0;
}

/* SIGKILL the run while its workers work: they die with it (no orphan
 * holds a claim), the next run starts at once (not 75), marks the killed
 * run `killed`, removes its temporary files, and bills what it left. */
static void test_killed_run_and_orphans(void)
{
    char out[PATH_MAX + 16], pdir[PATH_MAX + 32], pidfile[PATH_MAX + 16];
    snprintf(out, sizeof out, "%s/killed", dir);
    snprintf(pdir, sizeof pdir, "%s/2026-10", out);
    snprintf(pidfile, sizeof pidfile, "%s/run.pid", dir);

    CU_ASSERT_EQUAL_FATAL(hold_claim(db, "2026-10", "S00003", 1), 0);
    CU_ASSERT_EQUAL_FATAL(test_system("%s run --db '%s' --period 2026-10 "
        "--workers 2 --out '%s' >>'%s' 2>&1 & echo $! > '%s'",
        test_acbill_path(), conninfo, out, log_path, pidfile), 0);
    CU_ASSERT_EQUAL_FATAL(wait_for(db, "SELECT count(*) FROM "
                                   "billing.run_tenants", "11"), 0);
    char *text = slurp(pidfile);
    pid_t parent = text ? (pid_t)atol(text) : 0;
    free(text);
    CU_ASSERT_FATAL(parent > 0);
    /* Its workers: the children of the run's process. */
    pid_t kids[8];
    int nkids = 0;
    char list[PATH_MAX + 32];
    snprintf(list, sizeof list, "%s/kids", dir);
    test_system("pgrep -P %ld > '%s'", (long)parent, list);
    text = slurp(list);
    for (char *p = text; p != NULL && *p && nkids < 8;) {
        kids[nkids++] = (pid_t)strtol(p, &p, 10);
        while (*p == '\n')
            p++;
    }
    free(text);
    CU_ASSERT_EQUAL(nkids, 2);

    CU_ASSERT_EQUAL(kill(parent, SIGKILL), 0);
    int gone = 0;
    for (int i = 0; i < 100 && gone < nkids; i++) {
        gone = 0;
        for (int k = 0; k < nkids; k++)
            gone += process_gone(kids[k]);
        test_system("sleep 0.05");
    }
    CU_ASSERT_EQUAL(gone, nkids);
    CU_ASSERT_EQUAL(hold_claim(db, "2026-10", "S00003", 0), 0);

    /* What a killed run may leave behind. */
    const char *litter[] = { ".SHA256SUMS.Qx81Zk", ".S00001-2026-10-R1.xlsx"
                             ".tmp-4242", ".finance-summary-2026-10.xlsx"
                             ".tmp-4242", ".acbill-spool-a1B2c3",
                             ".acbill-xlsx-d4E5f6" };
    for (size_t i = 0; i < sizeof litter / sizeof litter[0]; i++)
        test_system("touch '%s/%s'", pdir, litter[i]);

    CU_ASSERT_EQUAL(test_system("%s run --db '%s' --period 2026-10 "
                                "--workers 2 --out '%s' >>'%s' 2>&1",
                                test_acbill_path(), conninfo, out, log_path),
                    0);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM billing.runs "
                                "WHERE status = 'killed'"), 1);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM billing.runs "
                                "WHERE status = 'running'"), 0);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(DISTINCT tenant_id) FROM "
                                "billing.invoices"), 12);
    CU_ASSERT_EQUAL(hidden_entries(pdir), 0);
    CU_ASSERT_EQUAL(count_files(pdir, ".xlsx"), 13);
}

static int two_init(void)
{
    if (common_init() != 0)
        return -1;
    db = testdb_fresh("acbill_ops_two", conninfo, sizeof conninfo);
    if (db == NULL || load_sample(conninfo) != 0)
        return -1;
    /* The same calls a month earlier: September to bill too. */
    return testdb_exec(db, "CREATE TEMP TABLE sep AS SELECT * FROM "
        "usage.dialout_calls; UPDATE sep SET usage_id = gen_random_uuid(), "
        "start_time = start_time - interval '1 month', end_time = end_time - "
        "interval '1 month'; INSERT INTO usage.dialout_calls SELECT * FROM "
        "sep; DROP TABLE sep");
}

/* Two periods run at once; a period runs once at a time; --join must
 * write where the run it joins writes. */
static void test_two_periods_at_once(void)
{
    char a_out[PATH_MAX + 16], b_out[PATH_MAX + 16], rcfile[PATH_MAX + 16];
    char args[PATH_MAX * 2];
    snprintf(a_out, sizeof a_out, "%s/two-a", dir);
    snprintf(b_out, sizeof b_out, "%s/two-b", dir);
    snprintf(rcfile, sizeof rcfile, "%s/two.rc", dir);

    CU_ASSERT_EQUAL_FATAL(hold_claim(db, "2026-10", "S00003", 1), 0);
    CU_ASSERT_EQUAL_FATAL(test_system("(%s run --db '%s' --period 2026-10 "
        "--workers 2 --out '%s' >>'%s' 2>&1; echo $? > '%s') &",
        test_acbill_path(), conninfo, a_out, log_path, rcfile), 0);
    CU_ASSERT_EQUAL_FATAL(wait_for(db, "SELECT count(*) FROM "
        "billing.run_tenants r JOIN billing.runs USING (run_id) WHERE "
        "period = '2026-10-01'", "11"), 0);

    /* October is running (waiting for S00003): September runs whole. */
    snprintf(args, sizeof args, "--period 2026-09 --workers 2 --out '%s'",
             a_out);
    CU_ASSERT_EQUAL(run_acbill("", args), 0);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM billing.runs "
        "WHERE period = '2026-09-01' AND status = 'ok'"), 1);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM billing.runs "
        "WHERE period = '2026-10-01' AND status = 'running'"), 1);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM billing.invoices "
        "WHERE period = '2026-09-01'"), 12);
    /* A second October run: 75. */
    CU_ASSERT_EQUAL(run_acbill("", "--period 2026-10"), 75);
    /* --join with another --out (or none): refused, 64; with the same: 0. */
    snprintf(args, sizeof args, "--period 2026-10 --join --out '%s'", b_out);
    CU_ASSERT_EQUAL(run_acbill("", args), 64);
    CU_ASSERT_EQUAL(run_acbill("", "--period 2026-10 --join"), 64);
    snprintf(args, sizeof args, "--period 2026-10 --join --out '%s/'",
             a_out);
    CU_ASSERT_EQUAL(run_acbill("", args), 0);

    CU_ASSERT_EQUAL(hold_claim(db, "2026-10", "S00003", 0), 0);
    CU_ASSERT_EQUAL(wait_for(db, "SELECT status FROM billing.runs WHERE "
                             "period = '2026-10-01'", "ok"), 0);
    test_system("sleep 0.3");
    char *rc = slurp(rcfile);
    CU_ASSERT(rc != NULL && atoi(rc) == 0);
    free(rc);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM billing.invoices "
        "WHERE period = '2026-10-01'"), 12);
}

/* A workbook writer's connection is killed between two workbooks: it
 * reconnects once and writes the next, and the run ends 0. */
static void test_writer_reconnects(void)
{
    char out[PATH_MAX + 16], pdir[PATH_MAX + 32], rcfile[PATH_MAX + 16];
    PGconn *c;
    char ci[128];

    c = testdb_fresh("acbill_ops_writer", ci, sizeof ci);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL_FATAL(load_sample(ci), 0);
    snprintf(out, sizeof out, "%s/writer", dir);
    snprintf(pdir, sizeof pdir, "%s/2026-10", out);
    snprintf(rcfile, sizeof rcfile, "%s/writer.rc", dir);
    CU_ASSERT_EQUAL_FATAL(hold_claim(c, "2026-10", "S00003", 1), 0);
    long at = log_size();
    CU_ASSERT_EQUAL_FATAL(test_system("(%s run --db '%s' --period 2026-10 "
        "--out '%s' >>'%s' 2>&1; echo $? > '%s') &", test_acbill_path(), ci,
        out, log_path, rcfile), 0);
    CU_ASSERT_EQUAL_FATAL(wait_for(c, "SELECT count(*) FROM billing.invoices"
                                   " WHERE content_sha256 IS NOT NULL",
                                   "11"), 0);
    long killed = testdb_long(c, "SELECT count(pg_terminate_backend(pid)) "
                              "FROM pg_stat_activity WHERE application_name "
                              "= 'acbill-writer'");
    CU_ASSERT(killed >= 1);
    CU_ASSERT_EQUAL(hold_claim(c, "2026-10", "S00003", 0), 0);
    CU_ASSERT_EQUAL(wait_for(c, "SELECT status FROM billing.runs", "ok"), 0);
    test_system("sleep 0.3");
    char *rc = slurp(rcfile);
    CU_ASSERT(rc != NULL && atoi(rc) == 0);
    free(rc);
    CU_ASSERT_EQUAL(count_files(pdir, ".xlsx"), 13);
    char *text = log_since(at);
    CU_ASSERT(text != NULL && strstr(text, "lost its database connection") !=
              NULL);
    free(text);
    PQfinish(c);
}

/* ------------------------------------------------------------ operator */

static int tty_init(void)
{
    if (common_init() != 0)
        return -1;
    db = testdb_fresh("acbill_ops_tty", conninfo, sizeof conninfo);
    if (db == NULL || load_sample(conninfo) != 0)
        return -1;
    return 0;
}

/* Run acbill ARGS under script(1), so that stderr is a terminal; the
 * transcript into path.  Returns acbill's exit status. */
static int on_terminal(const char *args, const char *path)
{
    return test_system("script -qefc \"%s %s\" /dev/null > '%s' 2>&1",
                       test_acbill_path(), args, path);
}

/* The transcript's lines as a terminal shows them: what follows the last
 * "erase line" of each.  1 when no line holds both the progress text and
 * a log line (glued), and the last progress line says tenants/tenants. */
static int progress_clean(const char *text, const char *final)
{
    char *copy = strdup(text), *save = NULL;
    int clean = 1, saw_final = 0;
    for (char *line = strtok_r(copy, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *shown = line, *e;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')     /* the terminal's CR LF */
            line[len - 1] = '\0';
        while ((e = strstr(shown, "\033[K")) != NULL)
            shown = e + 3;
        for (char *cr; (cr = strchr(shown, '\r')) != NULL;)
            shown = cr + 1;
        if (strstr(shown, " tenants") != NULL &&
            strstr(shown, "acbill[") != NULL)
            clean = 0;
        if (strstr(shown, final) != NULL)
            saw_final = 1;
    }
    free(copy);
    return clean && saw_final;
}

static void test_progress_on_a_terminal(void)
{
    char path[PATH_MAX + 16], args[512];
    snprintf(path, sizeof path, "%s/tty.txt", dir);
    snprintf(args, sizeof args, "run --db %s --period 2026-10 --workers 2",
             conninfo);
    CU_ASSERT_EQUAL(on_terminal(args, path), 0);
    char *t = slurp(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    /* Both workers' tenants counted, to the end; log lines above it. */
    CU_ASSERT(strstr(t, "\033[K") != NULL);
    CU_ASSERT(progress_clean(t, "12/12 tenants"));
    CU_ASSERT(strstr(t, "info run ") != NULL);
    /* Calls counted and estimated from calls (not tenants). */
    CU_ASSERT(strstr(t, "calls/s") != NULL);
    CU_ASSERT(strstr(t, "/4000 calls") != NULL || strstr(t, "/40") != NULL);
    free(t);

    /* --quiet: no progress, no log lines on a good run. */
    snprintf(path, sizeof path, "%s/tty-quiet.txt", dir);
    snprintf(args, sizeof args, "run --db %s --period 2026-10 --workers 2 "
             "--quiet", conninfo);
    CU_ASSERT_EQUAL(on_terminal(args, path), 0);
    t = slurp(path);
    CU_ASSERT(t != NULL && strstr(t, "tenants") == NULL &&
              strstr(t, "\033[K") == NULL && strlen(t) == 0);
    free(t);

    /* Not a terminal: no progress line, no escape codes. */
    snprintf(path, sizeof path, "%s/no-tty.txt", dir);
    CU_ASSERT_EQUAL(test_system("%s run --db %s --period 2026-10 --workers 2"
                                " > '%s' 2>&1", test_acbill_path(), conninfo,
                                path), 0);
    t = slurp(path);
    CU_ASSERT(t != NULL && strstr(t, "\033[K") == NULL &&
              strstr(t, "tenants  ") == NULL &&
              strstr(t, "info run ") != NULL);
    free(t);
}

static void test_version_and_help(void)
{
    char path[PATH_MAX + 16];
    const char *acbill = test_acbill_path();
    snprintf(path, sizeof path, "%s/help.txt", dir);

    CU_ASSERT_EQUAL(test_system("%s -V | grep -qx 'acbill [0-9.]*'", acbill),
                    0);
    CU_ASSERT_EQUAL(test_system("%s --version >/dev/null", acbill), 0);
    CU_ASSERT_EQUAL(test_system("%s run --help > '%s'", acbill, path), 0);
    char *t = slurp(path);
    const char *run_opts[] = { "--period", "--tenant", "--out",
                               "--upload-url", "--workers",
                               "--fair-use-minutes", "--join", "--db",
                               "--quiet", "--verbose", "--help",
                               "ACBILL_LOCK_TIMEOUT",
                               "ACBILL_STATEMENT_TIMEOUT", "(default 1)",
                               "(default 3000)", "(default 60s)" };
    for (size_t i = 0; i < sizeof run_opts / sizeof run_opts[0]; i++) {
        if (t == NULL || strstr(t, run_opts[i]) == NULL)
            fprintf(stderr, "\n    run --help lacks %s ", run_opts[i]);
        CU_ASSERT(t != NULL && strstr(t, run_opts[i]) != NULL);
    }
    free(t);
    CU_ASSERT_EQUAL(test_system("%s upload --help > '%s'", acbill, path), 0);
    t = slurp(path);
    const char *up_opts[] = { "--pending", "--upload-url", "--list",
                              "--retarget", "--from", "--cancel",
                              "--all-for", "--db", "(default 4)" };
    for (size_t i = 0; i < sizeof up_opts / sizeof up_opts[0]; i++)
        CU_ASSERT(t != NULL && strstr(t, up_opts[i]) != NULL);
    free(t);
    CU_ASSERT_EQUAL(test_system("%s migrate --help | grep -q -- --db",
                                acbill), 0);
    CU_ASSERT_EQUAL(test_system("%s sample --help | grep -q -- --seed",
                                acbill), 0);
}

static void test_man_page_renders(void)
{
    char page[PATH_MAX + 32], out[PATH_MAX + 16], warn[PATH_MAX + 16];
    snprintf(page, sizeof page, "%s/docs/acbill.1", test_src_dir());
    snprintf(out, sizeof out, "%s/man.txt", dir);
    snprintf(warn, sizeof warn, "%s/man.warn", dir);
    CU_ASSERT_EQUAL_FATAL(test_system("MANWIDTH=80 man --warnings -l '%s' "
                                      "> '%s' 2> '%s'", page, out, warn), 0);
    char *t = slurp(out), *w = slurp(warn);
    CU_ASSERT(w != NULL && strlen(w) == 0);
    if (w != NULL && *w)
        fprintf(stderr, "\n    man warnings: %.300s ", w);
    const char *want[] = { "NAME", "SYNOPSIS", "EXIT STATUS", "ENVIRONMENT",
                           "FILES", "acbill run", "acbill upload",
                           "--retarget", "ACBILL_LOCK_TIMEOUT",
                           "ACBILL_UPLOAD_TOKEN_FILE", "ACBILL_SQL_DIR",
                           "ACBILL_XLSX_TMPDIR", "ACBILL_LOG_FILE" };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (t == NULL || strstr(t, want[i]) == NULL)
            fprintf(stderr, "\n    the man page lacks %s ", want[i]);
        CU_ASSERT(t != NULL && strstr(t, want[i]) != NULL);
    }
    free(t);
    free(w);
}

/* One exit table: every status of job/status.h is in README's table, the
 * man page's EXIT STATUS and `acbill --help`. */
static void test_exit_table_everywhere(void)
{
    static const int codes[] = { 0, 64, 65, 66, 69, 70, 71, 73, 74, 75, 78 };
    char path[PATH_MAX + 32], help[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/README.md", test_src_dir());
    char *readme = slurp(path);
    snprintf(path, sizeof path, "%s/docs/acbill.1", test_src_dir());
    char *man = slurp(path);
    snprintf(help, sizeof help, "%s/usage.txt", dir);
    test_system("%s --help > '%s'", test_acbill_path(), help);
    char *usage = slurp(help);
    CU_ASSERT_PTR_NOT_NULL_FATAL(readme);
    CU_ASSERT_PTR_NOT_NULL_FATAL(man);
    CU_ASSERT_PTR_NOT_NULL_FATAL(usage);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char row[32], item[32], line[32];
        snprintf(row, sizeof row, "\n| %d |", codes[i]);
        snprintf(item, sizeof item, "\n.B %d\n", codes[i]);
        snprintf(line, sizeof line, "\n  %d ", codes[i]);
        if (!strstr(readme, row) || !strstr(man, item) ||
            !strstr(usage, line))
            fprintf(stderr, "\n    exit %d missing: README %d man %d "
                    "--help %d ", codes[i], !!strstr(readme, row),
                    !!strstr(man, item), !!strstr(usage, line));
        CU_ASSERT_PTR_NOT_NULL(strstr(readme, row));
        CU_ASSERT_PTR_NOT_NULL(strstr(man, item));
        CU_ASSERT_PTR_NOT_NULL(strstr(usage, line));
    }
    free(readme);
    free(man);
    free(usage);
}

static int last_clean(void)
{
    suite_clean();
    if (dir[0] != '\0' && getenv("ACBILL_KEEP_TEST_DIR") == NULL)
        test_system("rm -rf '%s'", dir);
    return 0;
}

CU_ErrorCode tests_register(void)
{
    static CU_TestInfo exits[] = {
        { "0 ok, 64 usage", test_exit_0_and_64 },
        { "65 names the tenant and why", test_exit_65_names_the_tenant },
        { "66 migrations missing", test_exit_66_no_migrations },
        { "69 down, read-only, files waiting", test_exit_69_unavailable },
        { "73 output: not a directory, disk full", test_exit_73_output },
        { "75 lock held, lock_timeout, statement_timeout",
          test_exit_75_try_later },
        { "78 password, database, role, host, URL, setting, schema",
          test_exit_78_configuration },
        CU_TEST_INFO_NULL
    };
    static CU_TestInfo kills[] = {
        { "killed run: no orphans, marked killed, clean-up",
          test_killed_run_and_orphans },
        CU_TEST_INFO_NULL
    };
    static CU_TestInfo two[] = {
        { "two periods at once; --join must share --out",
          test_two_periods_at_once },
        { "a workbook writer reconnects", test_writer_reconnects },
        CU_TEST_INFO_NULL
    };
    static CU_TestInfo operator[] = {
        { "progress on a terminal, --quiet, not a terminal",
          test_progress_on_a_terminal },
        { "-V and every command's --help", test_version_and_help },
        { "man -l renders acbill.1", test_man_page_renders },
        { "one exit table in README, man page, --help",
          test_exit_table_everywhere },
        CU_TEST_INFO_NULL
    };
    static CU_SuiteInfo suites[] = {
        { "exit codes", exit_init, suite_clean, NULL, NULL, exits },
        { "killed runs", kill_init, suite_clean, NULL, NULL, kills },
        { "concurrency", two_init, suite_clean, NULL, NULL, two },
        { "operator", tty_init, last_clean, NULL, NULL, operator },
        CU_SUITE_INFO_NULL
    };
    return CU_register_suites(suites);
}
