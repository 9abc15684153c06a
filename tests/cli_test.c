/* cli_test.c: the command line as an operator meets it.
 *
 * Suite "usage errors": every command-line error exits 64 with one line
 * (the reason and a pointer to --help, never the help itself), and is
 * found before any setting or the database is looked at (the tests give a
 * database that does not exist and settings that are wrong: were they
 * looked at first, the status would be 69 or 78).
 * Suite "configuration and data": a malformed --db or --upload-url, a
 * missing file:// folder are 78 naming what to fix; an unknown --tenant is
 * named; `upload -q`; a lock timeout while reading reference data is 75;
 * an import with rejects shows the first ones with file and line and the
 * query for the rest; a spool write error gives the real reason.
 * Suite "documents agree": the exit tables of README, `acbill --help` and
 * the man page list the same statuses in the same order, each command's
 * own exit list names only those; every command and every option of each
 * command's --help is in the man page's synopsis. */
#include <CUnit/CUnit.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"
#include "testmain.h"

static PGconn *db;
static char conninfo[128];
static char dir[PATH_MAX];
static char out_path[PATH_MAX + 16];

/* The whole of a file as a malloc'd string (NULL when missing). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap + 1);
    while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *b = realloc(buf, cap * 2 + 1);
            if (b == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf != NULL)
        buf[n] = '\0';
    return buf;
}

/* `acbill ARGS` with ENV before it; stdout and stderr into out_path; its
 * exit status. */
static int acbill(const char *env, const char *args)
{
    return test_system("%s %s %s >'%s' 2>&1", env, test_acbill_path(), args,
                       out_path);
}

/* What the last acbill() printed (malloc'd, "" when nothing). */
static char *output(void)
{
    char *t = slurp(out_path);
    return t != NULL ? t : calloc(1, 1);
}

static int lines_of(const char *t)
{
    int n = 0;
    for (; *t; t++)
        n += *t == '\n';
    return n;
}

/* ------------------------------------------------------------ usage */

static int usage_init(void)
{
    snprintf(dir, sizeof dir, "/tmp/acbill-cli-test.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(out_path, sizeof out_path, "%s/out.txt", dir);
    return 0;
}

/* Each case: 64, exactly one line, which names `want` and points to the
 * command's --help, and no help text.  The environment is hostile: a
 * database that is not there (69 if looked at), an upload URL that is
 * malformed and a timeout setting that is wrong (78 if looked at). */
static void expect_usage(const char *args, const char *want,
                         const char *help)
{
    static const char *env = "PGHOST=/nonexistent PGDATABASE=none "
                             "ACBILL_UPLOAD_URL=ftp://bad.example/ "
                             "ACBILL_LOCK_TIMEOUT=soon";
    int rc = acbill(env, args);
    char *t = output();
    int ok = rc == 64 && lines_of(t) == 1 && strstr(t, want) != NULL &&
             strstr(t, help) != NULL && strstr(t, "usage:") == NULL;
    if (!ok)
        fprintf(stderr, "\n    acbill %s: exit %d, printed: %.400s", args,
                rc, t);
    CU_ASSERT(ok);
    free(t);
}

static void test_usage_errors(void)
{
    expect_usage("", "name a command", "see acbill --help");
    expect_usage("frobnicate", "unknown command 'frobnicate'",
                 "see acbill --help");
    expect_usage("run --bogus", "unknown option --bogus",
                 "see acbill run --help");
    expect_usage("run -x", "unknown option -x", "see acbill run --help");
    expect_usage("run --period", "--period needs a value",
                 "see acbill run --help");
    expect_usage("run --join=yes", "--join takes no value",
                 "see acbill run --help");
    expect_usage("run --period 2026-13", "--period wants YYYY-MM",
                 "see acbill run --help");
    /* --as-of is checked before anything (it was 70 after failing every
     * tenant). */
    expect_usage("run --as-of foo", "--as-of wants a date and time",
                 "see acbill run --help");
    expect_usage("run --as-of 2026-02-30T00:00Z", "got '2026-02-30T00:00Z'",
                 "see acbill run --help");
    expect_usage("run --workers 0", "--workers wants 1 to",
                 "see acbill run --help");
    expect_usage("run --fair-use-minutes lots", "--fair-use-minutes",
                 "see acbill run --help");
    expect_usage("run --upload-url ftp://x.example/", "needs --out",
                 "see acbill run --help");
    expect_usage("run --period 2026-10 stray", "unexpected argument 'stray'",
                 "see acbill run --help");
    /* A usage error comes before a malformed --db (78). */
    expect_usage("run --db 'bogus_option=1' --bogus", "--bogus",
                 "see acbill run --help");
    expect_usage("upload", "say --pending", "see acbill upload --help");
    expect_usage("upload --nope", "unknown option --nope",
                 "see acbill upload --help");
    expect_usage("import", "name what to import",
                 "see acbill import --help");
    expect_usage("import bananas --tenant T1 x.csv", "unknown source",
                 "see acbill import --help");
    expect_usage("import pstn x.csv", "--tenant ID is required",
                 "see acbill import --help");
    expect_usage("import pstn --tenant T1 --bogus x.csv",
                 "unknown option --bogus", "see acbill import --help");
    /* A bad --at is usage (it was 65). */
    expect_usage("import licences --tenant T1 --at yesterday --skus a "
                 "--users b", "--at wants a date and time",
                 "see acbill import --help");
    expect_usage("pull --bogus", "unknown option --bogus",
                 "see acbill pull --help");
    expect_usage("pull --tenant T1 --from 2026-10-01 --to 2026-09-01",
                 "from <= to", "see acbill pull --help");
    expect_usage("pull partner --bogus", "unknown option --bogus",
                 "see acbill pull --help");
    expect_usage("pull partner --invoice X --currency USD",
                 "give --invoice ID, or --unbilled", "see acbill pull --help");
    expect_usage("import rates --plan p --currency USD x.csv",
                 "are required", "see acbill import --help");
    expect_usage("reconcile --bogus", "unknown option --bogus",
                 "see acbill reconcile --help");
    expect_usage("migrate --bogus", "unknown option --bogus",
                 "see acbill migrate --help");
    expect_usage("sample --period 2026-10", "are required",
                 "see acbill sample --help");
}

/* ------------------------------------------------------------ config */

static int config_init(void)
{
    db = testdb_fresh("acbill_cli", conninfo, sizeof conninfo);
    if (db == NULL)
        return -1;
    return test_system("%s sample --db '%s' --period 2026-10 --tenants 3"
                       " --calls 600 --seed 5 >/dev/null 2>&1",
                       test_acbill_path(), conninfo) == 0 ? 0 : -1;
}

static int config_clean(void)
{
    PQfinish(db);
    db = NULL;
    return 0;
}

static void test_configuration_78(void)
{
    char args[PATH_MAX * 2];
    /* A malformed --db. */
    CU_ASSERT_EQUAL(acbill("", "run --db 'dbname=x bogus_option=1' "
                           "--period 2026-10"), 78);
    /* A malformed --upload-url, for run and upload. */
    snprintf(args, sizeof args, "run --db '%s' --period 2026-10 --out "
             "'%s/o' --upload-url 'https://exa mple/'", conninfo, dir);
    CU_ASSERT_EQUAL(acbill("", args), 78);
    snprintf(args, sizeof args, "upload --db '%s' --pending --upload-url "
             "'ftp://files.example/'", conninfo);
    CU_ASSERT_EQUAL(acbill("", args), 78);
    /* A file:// folder that is not there will not appear by itself: 78
     * naming the folder (it was 69, "passes by itself"). */
    snprintf(args, sizeof args, "run --db '%s' --period 2026-10 --out "
             "'%s/o' --upload-url 'file://%s/no-such-mount'", conninfo, dir,
             dir);
    CU_ASSERT_EQUAL(acbill("", args), 78);
    char *t = output();
    CU_ASSERT(strstr(t, "no-such-mount") != NULL &&
              strstr(t, "create it") != NULL);
    free(t);
    snprintf(args, sizeof args, "upload --db '%s' --pending --upload-url "
             "'file://%s/no-such-mount'", conninfo, dir);
    CU_ASSERT_EQUAL(acbill("", args), 78);
    /* The same from the environment. */
    snprintf(args, sizeof args, "ACBILL_UPLOAD_URL='file://%s/none'", dir);
    CU_ASSERT_EQUAL(acbill(args, "upload --list"), 78);
}

static void test_unknown_tenant_named(void)
{
    char args[256];
    snprintf(args, sizeof args, "run --db '%s' --period 2026-10 --tenant "
             "S00001 --tenant T9", conninfo);
    CU_ASSERT_EQUAL(acbill("", args), 64);
    char *t = output();
    CU_ASSERT(strstr(t, "--tenant T9: no such tenant") != NULL);
    CU_ASSERT(strstr(t, "S00001,") == NULL);
    free(t);
}

/* An import or reconcile on a database `acbill migrate` never touched:
 * 78 and "run `acbill migrate` first", not 70 and an SQL error. */
static void test_unmigrated_78(void)
{
    char args[PATH_MAX * 2];
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "DROP DATABASE IF EXISTS"
                                      " acbill_cli_empty"), 0);
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "CREATE DATABASE"
                                      " acbill_cli_empty"), 0);
    CU_ASSERT_EQUAL_FATAL(test_system("echo x > '%s/x.csv'", dir), 0);
    snprintf(args, sizeof args, "import pstn --db dbname=acbill_cli_empty"
             " --tenant T1 '%s/x.csv'", dir);
    CU_ASSERT_EQUAL(acbill("", args), 78);
    char *t = output();
    CU_ASSERT(strstr(t, "run `acbill migrate` first") != NULL);
    free(t);
    snprintf(args, sizeof args, "import rates --db dbname=acbill_cli_empty"
             " --plan standard --currency USD --valid-from 2026-01-01"
             " '%s/x.csv'", dir);
    CU_ASSERT_EQUAL(acbill("", args), 78);
    snprintf(args, sizeof args, "reconcile --db dbname=acbill_cli_empty"
             " --period 2026-10 --out '%s'", dir);
    CU_ASSERT_EQUAL(acbill("", args), 78);
    testdb_exec(db, "DROP DATABASE acbill_cli_empty");
}

static void test_upload_quiet(void)
{
    char args[256];
    snprintf(args, sizeof args, "upload --db '%s' -q --list", conninfo);
    CU_ASSERT_EQUAL(acbill("", args), 0);
    snprintf(args, sizeof args, "upload --db '%s' --quiet --list",
             conninfo);
    CU_ASSERT_EQUAL(acbill("", args), 0);
}

/* A lock held on reference data: the run waits lock_timeout and exits 75
 * (try again), not 65 (fix the data). */
static void test_reference_timeout_75(void)
{
    static const char *tables[] = { "ref.destinations", "ref.rates",
                                    "ref.sku_entitlements", "ref.customers",
                                    "ref.currencies", "ref.operator",
                                    "ref.zones" };
    char args[256], sql[128];
    snprintf(args, sizeof args, "run --db '%s' --period 2026-10", conninfo);
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        PGconn *holder = PQconnectdb(conninfo);
        CU_ASSERT_FATAL(PQstatus(holder) == CONNECTION_OK);
        snprintf(sql, sizeof sql, "BEGIN; LOCK TABLE %s IN ACCESS "
                 "EXCLUSIVE MODE", tables[i]);
        CU_ASSERT_EQUAL_FATAL(testdb_exec(holder, sql), 0);
        int rc = acbill("ACBILL_LOCK_TIMEOUT=300ms", args);
        CU_ASSERT_EQUAL(rc, 75);
        if (rc != 75) {
            char *t = output();
            fprintf(stderr, "\n    %s locked: exit %d: %.800s", tables[i],
                    rc, t);
            free(t);
        }
        testdb_exec(holder, "ROLLBACK");
        PQfinish(holder);
    }
}

/* A spool that cannot be written (a file-size limit, as a full disk)
 * names the real reason, never "Success".  (The errno is now kept from
 * the failed write itself; the case where a later call had reset errno
 * before the final flush is not reproduced here, only guarded.) */
static void test_spool_error_reason(void)
{
    char args[PATH_MAX + 256];
    snprintf(args, sizeof args, "sh -c \"trap '' XFSZ; ulimit -f 2; "
             "ASAN_OPTIONS=detect_leaks=0 exec %s run --db '%s' --period "
             "2026-10 --out '%s/spool'\"", test_acbill_path(), conninfo, dir);
    int rc = test_system("%s >'%s' 2>&1", args, out_path);
    char *t = output();
    CU_ASSERT_EQUAL(rc, 73);
    CU_ASSERT(strstr(t, "Success") == NULL);
    CU_ASSERT(strstr(t, "cannot write the spool file: File too large") !=
              NULL);
    if (rc != 73 || strstr(t, "Success") != NULL)
        fprintf(stderr, "\n    spool: exit %d: %.600s", rc, t);
    free(t);
}

/* An import that rejects rows shows the first few with file and line,
 * and the query for the rest. */
static void test_import_shows_rejects(void)
{
    char args[PATH_MAX + 256];
    CU_ASSERT_EQUAL_FATAL(test_system("mkdir -p '%s/fx' && python3 "
        "'%s/tests/fixtures/ms_export.py' basic '%s/fx'", dir,
        test_src_dir(), dir), 0);
    testdb_exec(db, "INSERT INTO usage.tenants (tenant_id, name, currency)"
                " VALUES ('T1', 'Contoso', 'USD')");
    snprintf(args, sizeof args, "import pstn --db '%s' --tenant T1 "
             "'%s/fx/Calls.Export.a.zip'", conninfo, dir);
    CU_ASSERT_EQUAL(acbill("", args), 65);
    char *t = output();
    CU_ASSERT(strstr(t, "rejected: Calls.Export.a.zip:PSTN.calls."
                        "2026-10-31.csv line 8: UsageId 'not-a-guid' is "
                        "not a GUID") != NULL);
    CU_ASSERT(strstr(t, "line 12: malformed quoting") != NULL);
    CU_ASSERT(strstr(t, "line 14:") == NULL);       /* five shown */
    CU_ASSERT(strstr(t, "6 row(s) rejected in all") != NULL &&
              strstr(t, "usage.import_rejects WHERE import_id IN (") !=
              NULL);
    if (strstr(t, "6 row(s) rejected in all") == NULL)
        fprintf(stderr, "\n    import printed: %.1500s", t);
    free(t);
}

/* ------------------------------------------------------------ documents */

/* The exit statuses of a table, in order, into codes (at most 32). */
static int readme_codes(const char *t, int *codes)
{
    int n = 0;
    const char *p = strstr(t, "## Exit status");
    for (p = p ? strstr(p, "\n| ") : NULL; p && n < 32;
         p = strstr(p + 1, "\n| ")) {
        if (!isdigit((unsigned char)p[3]))
            continue;
        codes[n++] = atoi(p + 3);
        const char *next = strstr(p + 1, "\n");
        if (next == NULL || strncmp(next, "\n|", 2) != 0)
            break;
    }
    return n;
}

static int man_codes(const char *t, int *codes)
{
    int n = 0;
    const char *p = strstr(t, ".SH EXIT STATUS");
    const char *end = p ? strstr(p + 1, "\n.SH ") : NULL;
    for (p = p ? strstr(p, "\n.B ") : NULL; p && (!end || p < end) &&
         n < 32; p = strstr(p + 1, "\n.B "))
        if (isdigit((unsigned char)p[4]))
            codes[n++] = atoi(p + 4);
    return n;
}

static int help_codes(const char *t, int *codes)
{
    int n = 0;
    const char *p = strstr(t, "exit status");
    for (p = p ? strstr(p, "\n  ") : NULL; p && n < 32;
         p = strstr(p + 1, "\n  "))
        if (isdigit((unsigned char)p[3]))
            codes[n++] = atoi(p + 3);
    return n;
}

static void test_exit_tables_agree(void)
{
    char path[PATH_MAX + 32];
    int r[32], m[32], h[32];
    snprintf(path, sizeof path, "%s/README.md", test_src_dir());
    char *readme = slurp(path);
    snprintf(path, sizeof path, "%s/docs/acbill.1", test_src_dir());
    char *man = slurp(path);
    CU_ASSERT_EQUAL(acbill("", "--help"), 0);
    char *help = output();
    CU_ASSERT_PTR_NOT_NULL_FATAL(readme);
    CU_ASSERT_PTR_NOT_NULL_FATAL(man);
    int nr = readme_codes(readme, r), nm = man_codes(man, m),
        nh = help_codes(help, h);
    CU_ASSERT(nr >= 11);
    CU_ASSERT(nr == nm && nr == nh);
    int same = nr == nm && nr == nh;
    for (int i = 0; same && i < nr; i++)
        same = r[i] == m[i] && r[i] == h[i];
    if (!same) {
        fprintf(stderr, "\n    README:");
        for (int i = 0; i < nr; i++)
            fprintf(stderr, " %d", r[i]);
        fprintf(stderr, "\n    man:   ");
        for (int i = 0; i < nm; i++)
            fprintf(stderr, " %d", m[i]);
        fprintf(stderr, "\n    --help:");
        for (int i = 0; i < nh; i++)
            fprintf(stderr, " %d", h[i]);
    }
    CU_ASSERT(same);
    /* Each command's own list names only statuses of the table. */
    static const char *cmds[] = { "run", "upload", "import", "migrate",
                                  "pull", "sample", "reconcile" };
    for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
        char args[64];
        snprintf(args, sizeof args, "%s --help", cmds[c]);
        CU_ASSERT_EQUAL(acbill("", args), 0);
        char *t = output();
        const char *p = strstr(t, "exit status");
        for (p = p ? p + 11 : NULL; p && *p; p++) {
            if (!isdigit((unsigned char)*p) ||
                isdigit((unsigned char)p[-1]) || p[-1] == '-' ||
                p[-1] == '(')
                continue;
            int code = atoi(p), known = 0;
            for (int i = 0; i < nr; i++)
                known |= r[i] == code;
            if (code < 10)          /* "0 ok" is in the table too */
                known |= code == 0;
            if (!known)
                fprintf(stderr, "\n    %s --help: exit %d is not in the "
                        "table", cmds[c], code);
            CU_ASSERT(known);
            while (isdigit((unsigned char)p[1]))
                p++;
        }
        free(t);
    }
    free(readme);
    free(man);
    free(help);
}

/* Every command, and every --option of each command's --help, is in the
 * man page's SYNOPSIS. */
static void test_man_synopsis_complete(void)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/docs/acbill.1", test_src_dir());
    char *man = slurp(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(man);
    char *syn = strstr(man, ".SH SYNOPSIS");
    CU_ASSERT_PTR_NOT_NULL_FATAL(syn);
    char *end = strstr(syn + 1, "\n.SH ");
    if (end != NULL)
        *end = '\0';
    /* groff escapes the hyphens of options: compare without them. */
    for (char *s = syn, *d = syn; ; s++) {
        if (s[0] == '\\' && s[1] == '-')
            continue;
        *d++ = *s;
        if (*s == '\0')
            break;
    }
    static const char *cmds[] = { "run", "upload", "import", "migrate",
                                  "pull", "sample", "reconcile" };
    for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
        char args[64], word[64];
        snprintf(word, sizeof word, "acbill %s", cmds[c]);
        if (strstr(syn, cmds[c]) == NULL)
            fprintf(stderr, "\n    synopsis lacks %s", word);
        CU_ASSERT_PTR_NOT_NULL(strstr(syn, cmds[c]));
        snprintf(args, sizeof args, "%s --help", cmds[c]);
        CU_ASSERT_EQUAL(acbill("", args), 0);
        char *t = output();
        for (char *p = strstr(t, "--"); p; p = strstr(p + 2, "--")) {
            char opt[64];
            size_t n = 2;
            while (n < sizeof opt - 1 && (islower((unsigned char)p[n]) ||
                                          p[n] == '-'))
                n++;
            if (n <= 3 || (p > t && isalnum((unsigned char)p[-1])))
                continue;
            snprintf(opt, sizeof opt, "%.*s", (int)n, p);
            /* Not an option: "--" inside prose. */
            if (opt[n - 1] == '-')
                continue;
            int found = 0;
            for (char *q = strstr(syn, opt); q && !found;
                 q = strstr(q + 1, opt))
                found = !(islower((unsigned char)q[n]) || q[n] == '-');
            if (!found)
                fprintf(stderr, "\n    synopsis lacks %s %s", cmds[c], opt);
            CU_ASSERT(found);
        }
        free(t);
    }
    free(man);
}

static int last_clean(void)
{
    if (dir[0] != '\0' && getenv("ACBILL_KEEP_TEST_DIR") == NULL)
        test_system("rm -rf '%s'", dir);
    return 0;
}

CU_ErrorCode tests_register(void)
{
    static CU_TestInfo usage[] = {
        { "64, one line, before settings and database",
          test_usage_errors },
        CU_TEST_INFO_NULL
    };
    static CU_TestInfo config[] = {
        { "78: --db, --upload-url, missing file:// folder",
          test_configuration_78 },
        { "--tenant T9 is named", test_unknown_tenant_named },
        { "upload -q", test_upload_quiet },
        { "78: a database never migrated", test_unmigrated_78 },
        { "75: a lock on reference data", test_reference_timeout_75 },
        { "73: a spool write error says why", test_spool_error_reason },
        { "65: an import shows its first rejects", test_import_shows_rejects },
        CU_TEST_INFO_NULL
    };
    static CU_TestInfo docs[] = {
        { "exit tables agree: README, --help, man page",
          test_exit_tables_agree },
        { "man synopsis: every command and option",
          test_man_synopsis_complete },
        CU_TEST_INFO_NULL
    };
    static CU_SuiteInfo suites[] = {
        { "usage errors", usage_init, NULL, NULL, NULL, usage },
        { "configuration and data", config_init, config_clean, NULL, NULL,
          config },
        { "documents agree", NULL, last_clean, NULL, NULL, docs },
        CU_SUITE_INFO_NULL
    };
    return CU_register_suites(suites);
}
