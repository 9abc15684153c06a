/* cron_test.c: the cron wrapper (cron/acbill-cron.sh) and crontab entry.
 *
 * The wrapper runs a fake acbill (a shell script written by the test, so
 * that it can fail or take its time on demand); these are the wrapper's
 * own tests, the real binary is tested elsewhere.  The fake records each
 * call in calls.txt, and for `run` the upload URL it saw. */
#include <CUnit/CUnit.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testmain.h"

static char dir[PATH_MAX];
static char wrapper[PATH_MAX + 32];
static char env_file[PATH_MAX + 32];
static char log_file[PATH_MAX + 32];

static const char fake_acbill[] =
    "#!/bin/sh\n"
    "# fake acbill for the wrapper tests\n"
    "d=$(dirname \"$0\")\n"
    "echo \"$*\" >> \"$d/calls.txt\"\n"
    "echo \"fake acbill $1 says hello\"\n"
    "echo \"2026-01-01T00:00:00Z acbill[1] info fake $1 on stderr\" >&2\n"
    "case $1 in\n"
    "migrate) exit \"${FAKE_MIGRATE_RC:-0}\" ;;\n"
    "run) touch \"$d/run-started\"\n"
    "     echo \"${ACBILL_UPLOAD_URL:-unset}\" > \"$d/upload-url.txt\"\n"
    "     for t in 1 2 3 4 5; do [ \"${FAKE_ERRORS:-0}\" -ge $t ] &&\n"
    "       echo \"2026-01-01T00:00:00Z acbill[1] ERROR tenant S0000$t, period"
    " 2026-10: time zone 'Mars/Base' is not a known IANA time zone\" >&2;"
    " done\n"
    "     [ \"${FAKE_ERRORS:-0}\" -gt 0 ] && echo \"2026-01-01T00:00:00Z"
    " acbill[1] ERROR run: $FAKE_ERRORS of 12 tenant(s) failed: S00001 (data"
    " error: time zone) (exit 65, data error)\" >&2\n"
    "     sleep \"${FAKE_SLEEP:-0}\"\n"
    "     exit \"${FAKE_RUN_RC:-0}\" ;;\n"
    "esac\n"
    "exit 70\n";

static int write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    if (fclose(f) != 0)
        return -1;
    return chmod(path, mode);
}

/* The whole file as a malloc'd string ("" when missing). */
static char *slurp(const char *name)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 65536);
    if (f != NULL && buf != NULL) {
        size_t n = fread(buf, 1, 65535, f);
        buf[n] = '\0';
    }
    if (f != NULL)
        fclose(f);
    return buf;
}

/* Number of lines of text matching the extended regex re. */
static int matching_lines(const char *text, const char *re)
{
    regex_t rx;
    int n = 0;
    if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) != 0)
        return -1;
    char *copy = strdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save))
        if (regexec(&rx, line, 0, NULL, 0) == 0)
            n++;
    free(copy);
    regfree(&rx);
    return n;
}

#define STAMP "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z "

static int suite_init(void)
{
    char fake[PATH_MAX + 32], text[4 * PATH_MAX];

    snprintf(dir, sizeof dir, "/tmp/acbill-cron-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(wrapper, sizeof wrapper, "%s/cron/acbill-cron.sh",
             test_src_dir());
    snprintf(env_file, sizeof env_file, "%s/acbill.env", dir);
    snprintf(log_file, sizeof log_file, "%s/acbill.log", dir);
    snprintf(fake, sizeof fake, "%s/fake-acbill", dir);
    if (write_text(fake, fake_acbill, 0755) != 0)
        return -1;
    snprintf(text, sizeof text,
             "# test environment\n"
             "ACBILL=%s\n"
             "ACBILL_LOG_FILE=%s\n"
             "ACBILL_LOCK_FILE=%s/acbill.lock\n"
             "ACBILL_UPLOAD_URL=https://files.example.invalid/acbill\n",
             fake, log_file, dir);
    return write_text(env_file, text, 0600);
}

static int suite_clean(void)
{
    if (dir[0] != '\0' && getenv("ACBILL_KEEP_TEST_DIR") == NULL)
        test_system("rm -rf '%s'", dir);
    return 0;
}

/* Each test starts with no log, no calls, no markers. */
static void setup(void)
{
    test_system("cd '%s' && rm -f acbill.log calls.txt run-started "
                "upload-url.txt out*.txt err*.txt rc*.txt", dir);
}

/* Run the wrapper with extra environment env_vars and arguments args;
 * stdout/stderr go to out.txt/err.txt.  Returns its exit status. */
static int wrap(const char *env_vars, const char *args)
{
    return test_system("cd '%s' && env %s bash '%s' %s >out.txt 2>err.txt",
                       dir, env_vars, wrapper, args);
}

static void test_success(void)
{
    char args[PATH_MAX * 2];
    snprintf(args, sizeof args, "-e '%s' -- --period 2026-10", env_file);
    CU_ASSERT_EQUAL(wrap("FAKE_RUN_RC=0", args), 0);

    char *calls = slurp("calls.txt");
    CU_ASSERT_STRING_EQUAL(calls, "migrate\nrun --period 2026-10\n");
    free(calls);
    char *url = slurp("upload-url.txt");
    CU_ASSERT_STRING_EQUAL(url, "https://files.example.invalid/acbill\n");
    free(url);

    char *log = slurp("acbill.log");
    CU_ASSERT_EQUAL(matching_lines(log, STAMP "acbill-cron\\[[0-9]+\\] "
                                   "start: "), 1);
    CU_ASSERT_EQUAL(matching_lines(log, STAMP "acbill-cron\\[[0-9]+\\] "
                                   "done: acbill run succeeded"), 1);
    /* The job's output is in the log, every line with a timestamp. */
    CU_ASSERT_EQUAL(matching_lines(log, STAMP "fake acbill run says hello$"),
                    1);
    CU_ASSERT_EQUAL(matching_lines(log, "^2026-01-01T00:00:00Z acbill\\[1\\] "
                                   "info fake run on stderr$"), 1);
    CU_ASSERT_EQUAL(matching_lines(log, "."), matching_lines(log, STAMP));
    free(log);
    /* Nothing for cron to mail. */
    char *err = slurp("err.txt"), *out = slurp("out.txt");
    CU_ASSERT_STRING_EQUAL(err, "");
    CU_ASSERT_STRING_EQUAL(out, "");
    free(err);
    free(out);
}

static void test_failing_run(void)
{
    char args[PATH_MAX * 2];
    snprintf(args, sizeof args, "-e '%s'", env_file);
    CU_ASSERT_EQUAL(wrap("FAKE_RUN_RC=65", args), 65);
    char *log = slurp("acbill.log");
    CU_ASSERT_EQUAL(matching_lines(log, STAMP "acbill-cron\\[[0-9]+\\] "
                                   "acbill run failed with exit 65"), 1);
    CU_ASSERT_EQUAL(matching_lines(log, "done:"), 0);
    free(log);
    /* One line on stderr, which cron mails. */
    char *err = slurp("err.txt");
    CU_ASSERT_EQUAL(matching_lines(err, "acbill run failed with exit 65"), 1);
    free(err);
}

/* The mail (stderr) names the failing tenants and why, in a few lines. */
static void test_failure_mail_names_tenants(void)
{
    char args[PATH_MAX * 2];
    snprintf(args, sizeof args, "-e '%s'", env_file);
    CU_ASSERT_EQUAL(wrap("FAKE_RUN_RC=65 FAKE_ERRORS=5", args), 65);
    char *err = slurp("err.txt");
    CU_ASSERT_EQUAL(matching_lines(err, "^acbill-cron: acbill run failed "
                                   "with exit 65 \\(a tenant's data failed a "
                                   "check: fix the data"), 1);
    CU_ASSERT_EQUAL(matching_lines(err, "^acbill-cron:   tenant S0000[1-3], "
                                   "period 2026-10: time zone 'Mars/Base' is "
                                   "not a known IANA time zone$"), 3);
    CU_ASSERT_EQUAL(matching_lines(err, "^acbill-cron:   run: 5 of 12 "
                                   "tenant\\(s\\) failed: S00001"), 1);
    CU_ASSERT(matching_lines(err, ".") <= 5);
    free(err);
    /* The whole story stays in the log. */
    char *log = slurp("acbill.log");
    CU_ASSERT_EQUAL(matching_lines(log, "ERROR tenant S0000"), 5);
    free(log);
}

/* Without a log file and without syslog: a good night prints nothing, a
 * bad one the summary. */
static void test_no_log_no_syslog(void)
{
    char env[PATH_MAX * 2], text[4 * PATH_MAX], args[PATH_MAX * 2];
    snprintf(env, sizeof env, "%s/nolog.env", dir);
    snprintf(text, sizeof text, "ACBILL=%s/fake-acbill\n"
             "ACBILL_LOCK_FILE=%s/acbill.lock\nACBILL_SYSLOG=0\n", dir, dir);
    CU_ASSERT_FATAL(write_text(env, text, 0600) == 0);
    snprintf(args, sizeof args, "-e '%s'", env);
    CU_ASSERT_EQUAL(wrap("FAKE_RUN_RC=0", args), 0);
    char *err = slurp("err.txt"), *out = slurp("out.txt");
    CU_ASSERT_STRING_EQUAL(err, "");
    CU_ASSERT_STRING_EQUAL(out, "");
    free(err);
    free(out);
    CU_ASSERT_EQUAL(wrap("FAKE_RUN_RC=69 FAKE_ERRORS=1", args), 69);
    err = slurp("err.txt");
    CU_ASSERT_EQUAL(matching_lines(err, "exit 69 \\(database or upload "
                                   "server unavailable"), 1);
    CU_ASSERT_EQUAL(matching_lines(err, "tenant S00001"), 1);
    CU_ASSERT_EQUAL(matching_lines(err, "info fake"), 0);
    free(err);
    /* The settings example logs to a file, so nothing depends on syslog. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/cron/acbill.default", test_src_dir());
    CU_ASSERT_EQUAL(test_system("grep -q '^ACBILL_LOG_FILE=/' '%s'", path),
                    0);
}

static void test_failing_migrate(void)
{
    char args[PATH_MAX * 2];
    snprintf(args, sizeof args, "-e '%s'", env_file);
    CU_ASSERT_EQUAL(wrap("FAKE_MIGRATE_RC=69", args), 69);
    char *calls = slurp("calls.txt");
    CU_ASSERT_STRING_EQUAL(calls, "migrate\n");
    free(calls);
    char *log = slurp("acbill.log");
    CU_ASSERT_EQUAL(matching_lines(log, STAMP ".*acbill migrate failed with "
                                   "exit 69"), 1);
    free(log);
}

static void test_overlapping_starts_run_once(void)
{
    /* The first start holds the lock while its run sleeps; the second
     * starts once the first run is under way. */
    int rc = test_system(
        "cd '%s' && "
        "FAKE_SLEEP=2 bash '%s' -e '%s' >out1.txt 2>err1.txt & first=$!; "
        "cd '%s' && i=0; while [ ! -e run-started ] && [ $i -lt 200 ]; do "
        "sleep 0.05; i=$((i+1)); done; "
        "bash '%s' -e '%s' >out2.txt 2>err2.txt; echo $? > rc2.txt; "
        "wait $first; echo $? > rc1.txt",
        dir, wrapper, env_file, dir, wrapper, env_file);
    CU_ASSERT_EQUAL(rc, 0);
    char *rc1 = slurp("rc1.txt"), *rc2 = slurp("rc2.txt");
    CU_ASSERT_STRING_EQUAL(rc1, "0\n");
    CU_ASSERT_STRING_EQUAL(rc2, "75\n");
    free(rc1);
    free(rc2);
    char *calls = slurp("calls.txt");
    CU_ASSERT_EQUAL(matching_lines(calls, "^run"), 1);
    CU_ASSERT_EQUAL(matching_lines(calls, "^migrate"), 1);
    free(calls);
    char *log = slurp("acbill.log");
    CU_ASSERT_EQUAL(matching_lines(log, STAMP "acbill-cron\\[[0-9]+\\] "
                                   "already running"), 1);
    free(log);
    char *err = slurp("err2.txt");
    CU_ASSERT_EQUAL(matching_lines(err, "already running"), 1);
    free(err);

    /* Once the first is done, the lock is free again. */
    char args[PATH_MAX * 2];
    snprintf(args, sizeof args, "-e '%s'", env_file);
    CU_ASSERT_EQUAL(wrap("FAKE_RUN_RC=0", args), 0);
}

static void test_environment_file(void)
{
    char args[PATH_MAX * 2], env[PATH_MAX * 2];

    /* A named file that is missing is an error, not a silent default. */
    snprintf(args, sizeof args, "-e '%s/missing.env'", dir);
    CU_ASSERT_EQUAL(wrap("FAKE_RUN_RC=0", args), 78);
    char *calls = slurp("calls.txt");
    CU_ASSERT_STRING_EQUAL(calls, "");
    free(calls);

    /* ACBILL_ENV_FILE works like -e. */
    snprintf(env, sizeof env, "ACBILL_ENV_FILE='%s'", env_file);
    CU_ASSERT_EQUAL(wrap(env, ""), 0);
    calls = slurp("calls.txt");
    CU_ASSERT_STRING_EQUAL(calls, "migrate\nrun\n");
    free(calls);

    /* A file others could write is refused: it is sourced as shell. */
    CU_ASSERT_FATAL(chmod(env_file, 0666) == 0);
    snprintf(args, sizeof args, "-e '%s'", env_file);
    int rc = wrap("FAKE_RUN_RC=0", args);
    CU_ASSERT_FATAL(chmod(env_file, 0600) == 0);
    CU_ASSERT_EQUAL(rc, 78);
    char *err = slurp("err.txt");
    CU_ASSERT_EQUAL(matching_lines(err, "writable by group or others"), 1);
    free(err);

    /* A missing binary is reported, not mistaken for success. */
    snprintf(env, sizeof env, "%s/nobinary.env", dir);
    snprintf(args, sizeof args, "ACBILL=%s/no-such-acbill\n"
             "ACBILL_LOCK_FILE=%s/acbill.lock\n", dir, dir);
    CU_ASSERT_FATAL(write_text(env, args, 0600) == 0);
    snprintf(args, sizeof args, "-e '%s'", env);
    CU_ASSERT_EQUAL(wrap("FAKE_RUN_RC=0", args), 78);
    err = slurp("err.txt");
    CU_ASSERT_EQUAL(matching_lines(err, "no-such-acbill is missing"), 1);
    free(err);
}

static void test_crontab_entry(void)
{
    char path[PATH_MAX + 32], line[1024];
    int entries = 0;
    snprintf(path, sizeof path, "%s/cron/acbill.cron", test_src_dir());
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    while (fgets(line, sizeof line, f) != NULL) {
        char min[32], hour[32], dom[32], mon[32], dow[32], user[64];
        char cmd[512];
        if (line[0] == '#' || line[0] == '\n' ||
            strchr(line, '=') != NULL)
            continue;
        /* /etc/cron.d format: five time fields, the user, the command. */
        int n = sscanf(line, "%31s %31s %31s %31s %31s %63s %511s", min, hour,
                       dom, mon, dow, user, cmd);
        CU_ASSERT_EQUAL(n, 7);
        if (n != 7)
            continue;
        entries++;
        char *end;
        long m = strtol(min, &end, 10);
        CU_ASSERT(*end == '\0' && m > 0 && m < 60 && m != 30);
        long h = strtol(hour, &end, 10);
        CU_ASSERT(*end == '\0' && h >= 0 && h < 24);
        CU_ASSERT_STRING_EQUAL(dom, "*");
        CU_ASSERT_STRING_EQUAL(mon, "*");
        CU_ASSERT_STRING_EQUAL(dow, "*");
        CU_ASSERT_STRING_NOT_EQUAL(user, "root");
        CU_ASSERT_PTR_NOT_NULL(strstr(cmd, "acbill-cron.sh"));
    }
    fclose(f);
    CU_ASSERT_EQUAL(entries, 1);
    /* The wrapper and the example environment parse as shell. */
    CU_ASSERT_EQUAL(test_system("bash -n '%s'", wrapper), 0);
    CU_ASSERT_EQUAL(test_system("sh -n '%s/cron/acbill.default'",
                                test_src_dir()), 0);
}

static CU_TestInfo cron_tests[] = {
    { "success: migrate, run, timestamped log, silent", test_success },
    { "failing run: exit code passed through, logged", test_failing_run },
    { "failing migrate: run not started", test_failing_migrate },
    { "the mail names the failing tenants, in a few lines",
      test_failure_mail_names_tenants },
    { "no log file, no syslog: silent good night", test_no_log_no_syslog },
    { "two overlapping starts run once (flock)", test_overlapping_starts_run_once },
    { "environment file: -e, ACBILL_ENV_FILE, unsafe", test_environment_file },
    { "crontab entry", test_crontab_entry },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "cron wrapper", suite_init, suite_clean, setup, NULL, cron_tests },
    CU_SUITE_INFO_NULL
};

CU_ErrorCode tests_register(void)
{
    return CU_register_suites(suites);
}
