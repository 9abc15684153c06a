/* main.c: bin/acbill, the nightly Teams Audio Conferencing billing job.
 *
 * Dispatches to a subcommand (commands.h).  The numeric locale stays "C"
 * (never setlocale(LC_ALL, "")): numbers in SQL text and in workbooks must
 * use '.' as the decimal point. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "status.h"
#include "upload.h"

static void usage(FILE *out)
{
    fprintf(out,
        "usage: acbill COMMAND [OPTIONS]\n"
        "\n"
        "Rates Microsoft Teams Audio Conferencing dial-out calls per tenant\n"
        "and month, issues invoices (with revisions) into the billing schema,\n"
        "writes Excel workbooks and delivers them.\n"
        "\n"
        "commands:\n"
        "  migrate   create or upgrade the usage, ref and billing schemas\n"
        "  run       rate a period and issue invoices (acbill run --help)\n"
        "  sample    load reproducible sample data (acbill sample --help)\n"
        "  upload    deliver pending uploads (acbill upload --help)\n"
        "  import    load Microsoft's exports and snapshots (acbill import --help)\n"
        "  pull      load call logs and licences from Microsoft Graph\n"
        "\n"
        "The database comes from --db CONNINFO or the libpq environment\n"
        "(PGHOST, PGDATABASE, PGSERVICE, ...).\n"
        "\n"
        "exit status: 0 ok, 64 usage, 65 data (a tenant failed a check),\n"
        "69 database or server unavailable, 70 internal, 73 cannot create\n"
        "output, 75 another run holds the lock (try again later).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return AC_EUSAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(stdout);
        return AC_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
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
    if (fn == NULL) {
        fprintf(stderr, "acbill: unknown command '%s' (try acbill --help)\n",
                cmd);
        return AC_EUSAGE;
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
