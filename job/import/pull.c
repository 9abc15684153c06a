/* pull.c: `acbill pull` (docs/billing-rules.md 6): call logs and, with --licences,
 * a licence snapshot, live from Microsoft Graph into usage.*.
 *
 * The dates --from and --to (inclusive) are split into windows of at most
 * 90 days, [from, from + 90 d], [from + 90 d, from + 180 d], ..., the last
 * ending at the start of the day after --to.  Graph's bounds are
 * inclusive, so a call starting exactly on a boundary comes twice; the
 * second copy is the same usage_id and changes nothing.  Each window is
 * one import (usage.imports, source graph-pull) in one transaction: its
 * pages are followed through @odata.nextLink exactly as given, each parsed
 * by PostgreSQL (graphcalls.h).  With --licences, GET /subscribedSkus and
 * the users (GET /users?$select=...) become a licence snapshot at the
 * time of the pull (licences.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "callstage.h"
#include "civil.h"
#include "commands.h"
#include "db.h"
#include "graph.h"
#include "graphcalls.h"
#include "licences.h"
#include "log.h"
#include "partner.h"
#include "sha256.h"

#define WINDOW_DAYS 90
/* Pages of one window at most (1,000 rows each: 100 million rows). */
#define MAX_PAGES 100000

static void pull_usage(FILE *out)
{
    fprintf(out,
        "usage: acbill pull --tenant ID --from YYYY-MM-DD --to YYYY-MM-DD\n"
        "                   [--licences] [--entra-tenant ID] [--db CONNINFO]\n"
        "                   [--quiet|--verbose]\n"
        "       acbill pull partner --invoice ID | --unbilled current|last\n"
        "                   --currency C   (Partner Center; see its --help)\n"
        "\n"
        "Loads the tenant's PSTN call logs (Graph getPstnCalls) of the\n"
        "dates from..to (inclusive) into usage.dialout_calls, in windows of\n"
        "at most 90 days, and with --licences a snapshot of its licences\n"
        "(subscribedSkus, users' assignedLicenses) taken now.  The Entra\n"
        "tenant is ref.customers.entra_tenant_id unless --entra-tenant.\n"
        "Credentials and URLs come from the environment:\n"
        "ACBILL_GRAPH_CLIENT_ID, ACBILL_GRAPH_SECRET_FILE or\n"
        "ACBILL_GRAPH_CERT_FILE (owner-only files), ACBILL_GRAPH_AUTHORITY,\n"
        "ACBILL_GRAPH_URL, ACBILL_CA_FILE.\n"
        "\n"
        "exit status: 0 all loaded; 65 rows rejected; 69 Graph or the\n"
        "database unavailable; 78 configuration (credentials, URLs).\n");
}

/* YYYY-MM-DD into a day count; -1 when malformed. */
static long long parse_date(const char *s)
{
    int y, m, d;
    char tail;
    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3
        || s[4] != '-' || s[7] != '-' || y < 2000 || y > 2100 || m < 1 ||
        m > 12 || d < 1 || d > 31)
        return -1;
    long long days = civil_days(y, m, d);
    int y2, m2, d2;
    civil_from_days(days, &y2, &m2, &d2);
    return y2 == y && m2 == m && d2 == d ? days : -1;
}

static void day_text(long long days, char out[32])
{
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, 32, "%04d-%02d-%02dT00:00:00Z", y, m, d);
}

/* One window of call logs: one import. */
static ac_status pull_window(PGconn *conn, graph_client *g,
                             const char *tenant, long long from,
                             long long to, ac_status *worst, char *err)
{
    char f[32], t[32], url[8192], name[128], hex[65], why[AC_ERR_MAX];
    callstage *s = NULL;
    sha256_ctx sha;
    long long rows_so_far = 0;
    char *next = NULL;
    ac_status rc;

    day_text(from, f);
    day_text(to, t);
    snprintf(name, sizeof name, "getPstnCalls(fromDateTime=%s,toDateTime=%s)",
             f, t);
    snprintf(url, sizeof url, "%s/communications/callRecords/%s",
             graph_base(g), name);
    rc = callstage_begin(conn, tenant, "graph-pull", name, NULL, &s, err);
    if (rc != AC_OK)
        return rc;
    sha256_init(&sha);
    for (int page = 0;; page++) {
        char *body = NULL;
        size_t len = 0;
        long long rows = 0;
        if (page == MAX_PAGES) {
            rc = ac_fail(why, AC_EDATA, "more than %d pages: stopped",
                         MAX_PAGES);
            break;
        }
        rc = graph_get(g, url, &body, &len, why);
        if (rc != AC_OK)
            break;
        sha256_update(&sha, body, len);
        free(next);
        next = NULL;
        rc = graphcalls_page(s, body, len, rows_so_far, &rows, &next, why);
        free(body);
        if (rc != AC_OK)
            break;
        rows_so_far += rows;
        ac_debug("pull: %s page %d: %lld rows", name, page + 1, rows);
        if (next == NULL)
            break;
        if (strcmp(next, url) == 0) {
            rc = ac_fail(why, AC_EDATA, "the nextLink points at the same "
                         "page again: stopped");
            break;
        }
        snprintf(url, sizeof url, "%s", next);
        if (strlen(next) >= sizeof url) {
            rc = ac_fail(why, AC_EDATA, "a nextLink longer than %zu bytes",
                         sizeof url);
            break;
        }
    }
    free(next);
    sha256_final_hex(&sha, hex);
    if (rc != AC_OK) {
        callstage_abort(s, NULL, why);
        *worst = AC_EDATA;
        return ac_fail(err, rc, "%s: %s", name, why);
    }
    import_counts c;
    rc = callstage_finish(s, hex, NULL, NULL, &c, err);
    if (rc != AC_OK)
        return rc;
    ac_info("pull %s: %lld read, %lld inserted, %lld updated, %lld "
            "unchanged, %lld skipped (other call types), %lld rejected "
            "(import %lld)", name, c.read, c.inserted, c.updated,
            c.unchanged, c.skipped, c.rejected, c.import_id);
    if (c.rejected > 0)
        *worst = AC_EDATA;
    return AC_OK;
}

/* A licence snapshot now: subscribedSkus and every page of users. */
static ac_status pull_licences(PGconn *conn, graph_client *g,
                               const char *tenant, char *err)
{
    char at[32], url[8192], why[AC_ERR_MAX], hs[65], hu[65];
    time_t now = time(NULL);
    struct tm tm;
    licsnap *snap = NULL;
    char *body = NULL, *next = NULL;
    size_t len = 0;
    sha256_ctx ss, su;
    ac_status rc;

    gmtime_r(&now, &tm);
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    rc = licences_begin(conn, tenant, at, "GET /subscribedSkus",
                        "GET /users", &snap, err);
    if (rc != AC_OK)
        return rc;
    sha256_init(&ss);
    sha256_init(&su);
    snprintf(url, sizeof url, "%s/subscribedSkus", graph_base(g));
    rc = graph_get(g, url, &body, &len, why);
    if (rc == AC_OK) {
        sha256_update(&ss, body, len);
        rc = licences_add_skus(snap, body, len, why);
        free(body);
        body = NULL;
    }
    snprintf(url, sizeof url, "%s/users?$select=id,userPrincipalName,"
             "displayName,assignedLicenses&$top=999", graph_base(g));
    for (int page = 0; rc == AC_OK; page++) {
        if (page == MAX_PAGES) {
            rc = ac_fail(why, AC_EDATA, "more than %d pages of users",
                         MAX_PAGES);
            break;
        }
        rc = graph_get(g, url, &body, &len, why);
        if (rc != AC_OK)
            break;
        sha256_update(&su, body, len);
        free(next);
        next = NULL;
        rc = licences_add_users(snap, body, len, &next, why);
        free(body);
        body = NULL;
        if (rc != AC_OK || next == NULL)
            break;
        if (strlen(next) >= sizeof url || strcmp(next, url) == 0) {
            rc = ac_fail(why, AC_EDATA, "a bad nextLink for users");
            break;
        }
        snprintf(url, sizeof url, "%s", next);
    }
    free(next);
    sha256_final_hex(&ss, hs);
    sha256_final_hex(&su, hu);
    if (rc != AC_OK) {
        licences_abort(snap, NULL, NULL, why);
        return ac_fail(err, rc, "licences: %s", why);
    }
    licence_counts cs, cu;
    rc = licences_finish(snap, hs, hu, &cs, &cu, err);
    if (rc != AC_OK)
        return rc;
    ac_info("pull licences at %s: %lld SKUs (%lld opened, %lld changed, "
            "%lld rejected), %lld assignments (%lld opened, %lld rejected), "
            "%lld intervals closed", at, cs.read, cs.inserted, cs.updated,
            cs.rejected, cu.read, cu.inserted, cu.rejected,
            cs.closed + cu.closed);
    if (cs.rejected > 0 || cu.rejected > 0)
        return ac_fail(err, AC_EDATA, "licences: rows rejected (imports "
                       "%lld, %lld)", cs.import_id, cu.import_id);
    return AC_OK;
}

int cmd_pull(int argc, char **argv)
{
    static const struct option opts[] = {
        { "tenant", required_argument, NULL, 't' },
        { "from", required_argument, NULL, 'f' },
        { "to", required_argument, NULL, 'T' },
        { "licences", no_argument, NULL, 'l' },
        { "entra-tenant", required_argument, NULL, 'e' },
        { "db", required_argument, NULL, 'd' },
        { "quiet", no_argument, NULL, 'q' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *tenant = NULL, *from_s = NULL, *to_s = NULL, *entra = NULL,
               *conninfo = NULL;
    int licences = 0, c;
    char err[AC_ERR_MAX] = "";

    if (argc > 1 && strcmp(argv[1], "partner") == 0)
        return cmd_pull_partner(argc - 1, argv + 1);   /* docs/billing-rules.md 7 */
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hqv", opts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'f': from_s = optarg; break;
        case 'T': to_s = optarg; break;
        case 'l': licences = 1; break;
        case 'e': entra = optarg; break;
        case 'd': conninfo = optarg; break;
        case 'q': ac_log_set_level(AC_LOG_WARN); break;
        case 'v': ac_log_set_level(AC_LOG_DEBUG); break;
        case 'h':
            pull_usage(stdout);
            return AC_OK;
        default:
            return ac_usage_getopt("pull", c, argv);
        }
    }
    if (optind < argc)
        return ac_usage_error("pull", "unexpected argument '%s'",
                              argv[optind]);
    if (tenant == NULL || from_s == NULL || to_s == NULL)
        return ac_usage_error("pull", "--tenant, --from and --to are "
                              "required");
    long long from = parse_date(from_s), to = parse_date(to_s);
    if (from < 0 || to < 0 || to < from)
        return ac_usage_error("pull", "--from and --to want dates "
                              "YYYY-MM-DD, from <= to");
    graph_options gopt;
    ac_status rc = graph_options_from_env(&gopt, err);
    if (rc != AC_OK) {
        ac_error("pull: %s", err);
        return rc;
    }
    PGconn *conn;
    rc = db_connect_migrated(conninfo, &conn, err);
    if (rc != AC_OK) {
        ac_error("pull: %s", err);
        return rc;
    }
    char entra_id[256] = "";
    if (entra != NULL) {
        snprintf(entra_id, sizeof entra_id, "%s", entra);
    } else {
        PGresult *res;
        const char *p[] = { tenant };
        rc = db_query(conn, "SELECT entra_tenant_id FROM ref.customers"
                      " WHERE tenant_id = $1 AND entra_tenant_id IS NOT NULL",
                      1, p, &res, err);
        if (rc == AC_OK && PQntuples(res) == 1)
            snprintf(entra_id, sizeof entra_id, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        if (rc == AC_OK && entra_id[0] == '\0')
            rc = ac_fail(err, AC_ECONFIG, "tenant %s has no Entra tenant id:"
                         " set ref.customers.entra_tenant_id or pass "
                         "--entra-tenant", tenant);
    }
    graph_client *g = NULL;
    if (rc == AC_OK)
        rc = graph_open(&gopt, entra_id, &g, err);
    ac_status worst = AC_OK;
    int windows = 0;
    for (long long s = from; rc == AC_OK && s <= to; s += WINDOW_DAYS) {
        long long e = s + WINDOW_DAYS < to + 1 ? s + WINDOW_DAYS : to + 1;
        rc = pull_window(conn, g, tenant, s, e, &worst, err);
        windows++;
    }
    if (rc == AC_OK && licences)
        rc = pull_licences(conn, g, tenant, err);
    if (g != NULL)
        ac_info("pull: %d window(s), %ld request(s) to Microsoft", windows,
                graph_requests(g));
    graph_close(g);
    PQfinish(conn);
    if (rc != AC_OK) {
        ac_error("pull: %s", err);
        return rc;
    }
    return worst;
}
