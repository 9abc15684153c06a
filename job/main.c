/* main.c: bin/acbill, the nightly Teams Audio Conferencing billing job.
 *
 * Dispatches to a subcommand (commands.h).  The numeric locale stays "C"
 * (never setlocale(LC_ALL, "")): numbers in SQL text and in workbooks must
 * use '.' as the decimal point. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "commands.h"
#include "status.h"
#include "deliver/upload.h"

static void usage(FILE *out)
{
    fprintf(out,
        "usage: acbill COMMAND [OPTIONS]\n"
        "       acbill -V|--version\n"
        "\n"
        "Rates Microsoft Teams Audio Conferencing dial-out calls per tenant\n"
        "and month, issues invoices (with revisions) into the billing schema,\n"
        "writes Excel workbooks and delivers them.\n"
        "\n"
        "commands (each has --help):\n"
        "  migrate   create or upgrade the usage, ref and billing schemas\n"
        "  run       rate a period and issue invoices\n"
        "  sample    load reproducible sample data\n"
        "  upload    deliver, list, retarget or cancel pending uploads\n"
        "  import    load Microsoft's exports and snapshots, and rate cards\n"
        "  pull      load call logs and licences from Microsoft Graph\n"
        "  reconcile compare the billing with Microsoft's Partner Center charges\n"
        "\n"
        "The database comes from --db CONNINFO or the libpq environment\n"
        "(PGHOST, PGDATABASE, PGSERVICE, ...); passwords from ~/.pgpass.\n"
        "\n"
        "exit status (the first that applies when several do):\n"
        "  0   ok\n"
        "  78  configuration: wrong password, unknown role, database or\n"
        "      host, malformed --db or --upload-url, missing file://\n"
        "      folder, bad setting, incomplete seller, schema not\n"
        "      migrated (fix what it names; it will not pass by itself)\n"
        "  70  internal error (report it)\n"
        "  71  the operating system refused (memory, processes)\n"
        "  65  a tenant's data failed a check; the others are committed\n"
        "      (fix the data: billing.run_tenants says why)\n"
        "  64  usage: bad command line, unknown --tenant (one line says\n"
        "      what; found before anything else is done)\n"
        "  73  output cannot be written (directory, disk full)\n"
        "  74  an input file cannot be read\n"
        "  66  an input file is missing (SQL migrations, import file)\n"
        "  69  database or upload server unavailable (down, refused,\n"
        "      read-only, out of connections), or files wait for upload\n"
        "      (passes by itself; the next run continues)\n"
        "  75  try again later: another run of the period holds its lock,\n"
        "      or a lock_timeout or statement_timeout expired\n"
        "\n"
        "See acbill(1) for the environment variables and files.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return ac_usage_error(NULL, "name a command: migrate, run, sample, "
                              "upload, import, pull or reconcile");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(stdout);
        return AC_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0 ||
        strcmp(cmd, "version") == 0) {
        printf("acbill %s\n", ACBILL_VERSION);
        return AC_OK;
    }
    int (*fn)(int, char **) = NULL;
    if (strcmp(cmd, "migrate") == 0)
        fn = cmd_migrate;
    else if (strcmp(cmd, "run") == 0)
        fn = cmd_run;
    else if (strcmp(cmd, "sample") == 0)
        fn = cmd_sample;
    else if (strcmp(cmd, "upload") == 0)
        fn = cmd_upload;
    else if (strcmp(cmd, "import") == 0)
        fn = cmd_import;
    else if (strcmp(cmd, "pull") == 0)
        fn = cmd_pull;
    else if (strcmp(cmd, "reconcile") == 0)
        fn = cmd_reconcile;
    if (fn == NULL)
        return ac_usage_error(NULL, "unknown command '%s'", cmd);
    /* Tokens, client secrets and database passwords will be in memory:
     * no core dump may write them to disk, and no other process of this
     * user may read them with ptrace or /proc/PID/mem (issue 20). */
    struct rlimit no_core = { 0, 0 };
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 ||
        setrlimit(RLIMIT_CORE, &no_core) != 0) {
        fprintf(stderr, "acbill: cannot disable core dumps: %s\n",
                strerror(errno));
        return AC_EOSERR;
    }
    /* curl's global state, once, before any thread starts. */
    char err[AC_ERR_MAX];
    if (upload_global_init(err) != AC_OK) {
        fprintf(stderr, "acbill: %s\n", err);
        return AC_EOSERR;
    }
    int rc = fn(argc - 1, argv + 1);
    upload_global_cleanup();
    return rc;
}
