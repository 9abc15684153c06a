/* reconcile.c: `acbill reconcile` (see reconcile.h). */
#include "reconcile.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "deliver/outfile.h"
#include "log.h"
#include "report.h"
#include "reconciliation.h"

ac_status reconcile_write(PGconn *conn, const char *period, const char *dir,
                          char name[64], long long *findings, char *err)
{
    char fname[64];
    outfile o;
    snprintf(fname, sizeof fname, RECONCILE_NAME_FMT, period);
    ac_status rc = outfile_open_path(&o, dir, fname, err);
    if (rc != AC_OK)
        return rc;
    recon_counts n = { 0, 0 };
    rc = report_reconciliation(conn, period, o.temp, &n, err);
    if (rc == AC_OK)
        rc = outfile_commit(&o, err);
    else
        outfile_discard(&o);
    if (rc != AC_OK)
        return rc == AC_EIO ? AC_ECANTCREAT : rc;
    if (name != NULL)
        snprintf(name, 64, "%s", fname);
    if (findings != NULL)
        *findings = n.findings;
    ac_info("reconcile %s: %s, %lld row(s), %lld finding(s)", period, o.final,
            n.rows, n.findings);
    return AC_OK;
}

static void reconcile_usage(FILE *out)
{
    fprintf(out,
        "usage: acbill reconcile --period YYYY-MM [--out DIR] [--db CONNINFO]\n"
        "\n"
        "Compares what acbill billed for the period with what Microsoft\n"
        "charged the operator (the Partner Center files loaded by acbill\n"
        "import partner-invoice / partner-usage, or acbill pull partner), per\n"
        "tenant and currency: seats charged against seats counted, licence\n"
        "and overage cost, revenue, margin, and the findings\n"
        "PARTNER_CUSTOMER_UNKNOWN, SEATS_DIFFER, COST_WITHOUT_REVENUE,\n"
        "NEGATIVE_MARGIN and CURRENCY_DIFFERS (docs/reconciliation.md).\n"
        "Writes DIR/YYYY-MM/reconciliation-YYYY-MM.xlsx (DIR: . by default)\n"
        "and updates DIR/YYYY-MM/SHA256SUMS.  acbill run writes it too for\n"
        "periods with Partner Center data.\n"
        "\n"
        "exit status: 0 written (findings included); 64 usage; 69 database\n"
        "unavailable; 73 the output cannot be written; 78 configuration.\n");
}

int cmd_reconcile(int argc, char **argv)
{
    static const struct option opts[] = {
        { "period", required_argument, NULL, 'p' },
        { "out", required_argument, NULL, 'o' },
        { "db", required_argument, NULL, 'd' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *period = NULL, *out = ".", *conninfo = NULL;
    char err[AC_ERR_MAX] = "";
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hq", opts, NULL)) != -1) {
        switch (c) {
        case 'p': period = optarg; break;
        case 'o': out = optarg; break;
        case 'd': conninfo = optarg; break;
        case 'q': ac_log_set_level(AC_LOG_WARN); break;
        case 'h':
            reconcile_usage(stdout);
            return AC_OK;
        default:
            return ac_usage_getopt("reconcile", c, argv);
        }
    }
    if (period == NULL || optind != argc)
        return ac_usage_error("reconcile", "--period YYYY-MM is required, "
                              "and nothing else");
    int ok = strlen(period) == 7 && period[4] == '-';
    for (int i = 0; ok && i < 7; i++)
        ok = i == 4 || (period[i] >= '0' && period[i] <= '9');
    if (!ok || period[5] > '1' || (period[5] == '1' && period[6] > '2') ||
        (period[5] == '0' && period[6] == '0')) {
        return ac_usage_error("reconcile", "--period wants YYYY-MM, got "
                              "'%s'", period);
    }
    char dir[PATH_MAX];
    if ((size_t)snprintf(dir, sizeof dir, "%s/%s", out, period) >=
        sizeof dir) {
        return ac_usage_error("reconcile", "--out is too long");
    }
    if ((mkdir(out, 0755) != 0 && errno != EEXIST) ||
        (mkdir(dir, 0755) != 0 && errno != EEXIST)) {
        ac_error("reconcile: cannot create %s: %s", dir, strerror(errno));
        return AC_ECANTCREAT;
    }
    PGconn *conn;
    ac_status rc = db_connect_migrated(conninfo, &conn, err);
    if (rc != AC_OK) {
        ac_error("reconcile: %s", err);
        return rc;
    }
    rc = reconcile_write(conn, period, dir, NULL, NULL, err);
    if (rc == AC_OK) {
        rc = report_write_sha256sums(dir, err);
        if (rc == AC_EIO)
            rc = AC_ECANTCREAT;
    }
    if (rc != AC_OK)
        ac_error("reconcile %s: %s", period, err);
    PQfinish(conn);
    return rc;
}
