/* partner_pull.c: `acbill pull partner` (SPEC version 3, section 7): the
 * Partner Center billing export of Microsoft Graph into
 * usage.partner_charges and usage.partner_usage.
 *
 * The documented conversation, for each of the two exports (invoice
 * reconciliation, then daily rated usage):
 *   POST <graph>/reports/partners/billing/reconciliation/billed/export
 *        {"invoiceId": ID, "attributeSet": "full"}
 *     (or .../unbilled/export {"billingPeriod", "currencyCode",
 *     "attributeSet"}; the usage export is .../usage/billed|unbilled/...)
 *   -> 202 Accepted, Location: <graph>/reports/partners/billing/
 *      operations/{id}, Retry-After;
 *   GET the operation until it is no longer running (waiting its
 *   Retry-After each time): an exportSuccessOperation carries the
 *   manifest in resourceLocation (rootDirectory, sasToken, blobs[].name,
 *   dataFormat compressedJSONLines); a failedOperation its error;
 *   GET <rootDirectory>/<blob name>?<sasToken> for each blob, WITHOUT the
 *   bearer token (the storage host is not Graph; the SAS token is the
 *   credential), into a temporary file, imported as partner.h says (one
 *   usage.imports row per blob).
 * A SAS link refused (expired) asks for a new export once.  Throttling
 * (429, 503) is retried as graph.h says.  The SAS token is never logged.
 * Sources: Graph docs partners-billing-billedreconciliation-export,
 * partners-billing-billedusage-export, partners-billing-manifest,
 * partners-billing-exportsuccessoperation (docs/reconciliation.md). */
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "graph.h"
#include "log.h"
#include "partner.h"

#define PERMS "PartnerBilling.Read.All"
/* Polls of one operation at most (at Retry-After intervals). */
#define MAX_POLLS 720

static void pull_partner_usage(FILE *out)
{
    fprintf(out,
        "usage: acbill pull partner --invoice ID [--entra-tenant ID]\n"
        "                           [--db CONNINFO] [--quiet|--verbose]\n"
        "       acbill pull partner --unbilled current|last --currency CODE\n"
        "                           [--entra-tenant ID] [--db CONNINFO]\n"
        "\n"
        "Fetches Partner Center's invoice reconciliation and daily rated\n"
        "usage through the Microsoft Graph billing export (an invoice's\n"
        "billed lines, or the current or last period's unbilled ones in a\n"
        "currency) and loads them as acbill import partner-invoice and\n"
        "partner-usage do.  The token is for the operator's own Entra\n"
        "tenant, ref.operator.entra_tenant_id (or --entra-tenant); the\n"
        "application needs PartnerBilling.Read.All.  Credentials and URLs\n"
        "come from the environment, as for acbill pull.\n"
        "\n"
        "exit status: 0 loaded; 65 lines rejected or a blob refused; 69\n"
        "Graph, the export or the database unavailable (a failed export\n"
        "included); 78 configuration (credentials, permissions, no Entra\n"
        "tenant id); 64 usage.\n");
}

typedef struct {
    const char *what;       /* "reconciliation" or "usage" */
    partner_kind kind;
} export_def;

/* Wait for the operation at url; on success *manifest holds the
 * resourceLocation object (a new reference). */
static ac_status poll(graph_client *g, const graph_options *opt,
                      const char *url, long wait_s, json_t **manifest,
                      char *err)
{
    for (int i = 0; i < MAX_POLLS; i++) {
        long ms = wait_s > 0 ? wait_s * 1000 : opt->backoff_ms;
        if (wait_s > opt->retry_after_max_s)
            ms = opt->retry_after_max_s * 1000;
        graph_sleep_ms(ms);
        graph_reply r;
        ac_status rc = graph_request(g, url, NULL, PERMS, &r, err);
        if (rc != AC_OK)
            return rc;
        json_error_t je;
        json_t *op = json_loadb(r.body, r.len, 0, &je);
        free(r.body);
        const char *status = json_string_value(json_object_get(op,
                                                               "status"));
        const char *type = json_string_value(json_object_get(op,
                                                             "@odata.type"));
        if (op == NULL || !json_is_object(op)) {
            json_decref(op);
            return ac_fail(err, AC_EDATA, "the export operation's reply is "
                           "not a JSON object: %s", je.text);
        }
        if ((status && strcmp(status, "succeeded") == 0) ||
            (type && strstr(type, "exportSuccessOperation"))) {
            json_t *m = json_object_get(op, "resourceLocation");
            if (!json_is_object(m)) {
                json_decref(op);
                return ac_fail(err, AC_EDATA, "the export succeeded without"
                               " a manifest (resourceLocation)");
            }
            *manifest = json_incref(m);
            json_decref(op);
            return AC_OK;
        }
        if ((status && strcmp(status, "failed") == 0) ||
            (type && strstr(type, "failedOperation"))) {
            json_t *e = json_object_get(op, "error");
            rc = ac_fail(err, AC_EUNAVAIL, "Microsoft's export failed: %s: "
                         "%s", json_string_value(json_object_get(e, "code"))
                         ? json_string_value(json_object_get(e, "code"))
                         : "no code",
                         json_string_value(json_object_get(e, "message"))
                         ? json_string_value(json_object_get(e, "message"))
                         : "no message");
            json_decref(op);
            return rc;
        }
        json_decref(op);
        wait_s = r.retry_after_s;
        ac_debug("pull partner: export %s (%s), again in %ld s",
                 status ? status : "running", url, wait_s);
    }
    return ac_fail(err, AC_EUNAVAIL, "the export did not finish after %d "
                   "polls", MAX_POLLS);
}

/* Download and import the blobs of manifest.  *expired is set when a SAS
 * link was refused (nothing more is tried then). */
static ac_status load_blobs(PGconn *conn, graph_client *g, json_t *manifest,
                            partner_kind kind, const char *label,
                            int *expired, ac_status *worst, char *err)
{
    const char *root = json_string_value(json_object_get(manifest,
                                                         "rootDirectory"));
    const char *sas = json_string_value(json_object_get(manifest,
                                                        "sasToken"));
    const char *format = json_string_value(json_object_get(manifest,
                                                           "dataFormat"));
    json_t *blobs = json_object_get(manifest, "blobs");
    if (root == NULL || sas == NULL || !json_is_array(blobs))
        return ac_fail(err, AC_EDATA, "the manifest has no rootDirectory, "
                       "sasToken or blobs");
    if (format != NULL && strcmp(format, "compressedJSONLines") != 0)
        return ac_fail(err, AC_EDATA, "the manifest's dataFormat is %s, not"
                       " compressedJSONLines", format);
    size_t i;
    json_t *b;
    json_array_foreach(blobs, i, b) {
        const char *name = json_string_value(json_object_get(b, "name"));
        if (name == NULL || strstr(name, "..") != NULL)
            return ac_fail(err, AC_EDATA, "blob %zu of the manifest has no "
                           "usable name", i);
        size_t n = strlen(root) + strlen(name) + strlen(sas) + 3;
        char *url = malloc(n);
        char tmp[PATH_MAX];
        const char *dir = getenv("TMPDIR");
        snprintf(tmp, sizeof tmp, "%s/acbill-blob.XXXXXX",
                 dir && *dir ? dir : "/tmp");
        int fd = url ? mkstemp(tmp) : -1;
        FILE *f = fd >= 0 ? fdopen(fd, "w+b") : NULL;
        if (f == NULL) {
            if (fd >= 0) {
                close(fd);
                unlink(tmp);
            }
            free(url);
            return ac_fail(err, AC_ECANTCREAT, "cannot create a temporary "
                           "file for blob %s", name);
        }
        snprintf(url, n, "%s%s%s?%s", root,
                 root[0] && root[strlen(root) - 1] == '/' ? "" : "/", name,
                 sas[0] == '?' ? sas + 1 : sas);
        ac_status rc = graph_download(g, url, f, err);
        explicit_bzero(url, n);
        free(url);
        fclose(f);
        if (rc == AC_ENOINPUT) {
            unlink(tmp);
            *expired = 1;
            return rc;
        }
        if (rc == AC_OK) {
            partner_counts c;
            rc = partner_import_file(conn, kind, tmp, label, name, &c, err);
            if (rc == AC_OK) {
                ac_info("pull partner %s %s: %lld lines read, %lld new, "
                        "%lld unchanged, %lld rejected (import %lld)", label,
                        name, c.read, c.inserted, c.unchanged, c.rejected,
                        c.import_id);
                if (c.rejected > 0)
                    *worst = AC_EDATA;
            } else if (rc == AC_EDATA) {
                ac_error("pull partner %s: %s", label, err);
                *worst = AC_EDATA;      /* refused: go on with the rest */
                rc = AC_OK;
            }
        }
        unlink(tmp);
        if (rc != AC_OK)
            return rc;
    }
    return AC_OK;
}

static ac_status pull_export(PGconn *conn, graph_client *g,
                             const graph_options *opt, const export_def *x,
                             const char *invoice, const char *period,
                             const char *currency, ac_status *worst,
                             char *err)
{
    char url[4096], label[256];
    json_t *body;
    if (invoice != NULL) {
        snprintf(url, sizeof url, "%s/reports/partners/billing/%s/billed/"
                 "export", graph_base(g), x->what);
        body = json_pack("{s:s, s:s}", "invoiceId", invoice,
                         "attributeSet", "full");
        snprintf(label, sizeof label, "graph:%s/billed/%s", x->what,
                 invoice);
    } else {
        snprintf(url, sizeof url, "%s/reports/partners/billing/%s/unbilled/"
                 "export", graph_base(g), x->what);
        body = json_pack("{s:s, s:s, s:s}", "billingPeriod", period,
                         "currencyCode", currency, "attributeSet", "full");
        snprintf(label, sizeof label, "graph:%s/unbilled/%s/%s", x->what,
                 period, currency);
    }
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    ac_status rc = AC_OK;
    for (int attempt = 1; attempt <= 2; attempt++) {
        graph_reply r;
        rc = graph_request(g, url, text, PERMS, &r, err);
        if (rc != AC_OK)
            break;
        free(r.body);
        if (r.http != 202 || r.location[0] == '\0') {
            rc = ac_fail(err, AC_EDATA, "POST %s: HTTP %ld without an "
                         "operation to poll (Location)", url, r.http);
            break;
        }
        ac_info("pull partner: %s export accepted, polling", label);
        json_t *manifest = NULL;
        rc = poll(g, opt, r.location, r.retry_after_s, &manifest, err);
        if (rc != AC_OK)
            break;
        int expired = 0;
        rc = load_blobs(conn, g, manifest, x->kind, label, &expired, worst,
                        err);
        json_decref(manifest);
        if (rc == AC_ENOINPUT && expired && attempt == 1) {
            ac_warn("pull partner %s: %s; asking for a new export", label,
                    err);
            continue;
        }
        if (rc == AC_ENOINPUT)
            rc = AC_EDATA;
        break;
    }
    free(text);
    return rc;
}

int cmd_pull_partner(int argc, char **argv)
{
    static const struct option opts[] = {
        { "invoice", required_argument, NULL, 'i' },
        { "unbilled", required_argument, NULL, 'u' },
        { "currency", required_argument, NULL, 'c' },
        { "entra-tenant", required_argument, NULL, 'e' },
        { "db", required_argument, NULL, 'd' },
        { "quiet", no_argument, NULL, 'q' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *invoice = NULL, *period = NULL, *currency = NULL,
               *entra = NULL, *conninfo = NULL;
    char err[AC_ERR_MAX] = "";
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hqv", opts, NULL)) != -1) {
        switch (c) {
        case 'i': invoice = optarg; break;
        case 'u': period = optarg; break;
        case 'c': currency = optarg; break;
        case 'e': entra = optarg; break;
        case 'd': conninfo = optarg; break;
        case 'q': ac_log_set_level(AC_LOG_WARN); break;
        case 'v': ac_log_set_level(AC_LOG_DEBUG); break;
        case 'h':
            pull_partner_usage(stdout);
            return AC_OK;
        default:
            return ac_usage_getopt("pull", c, argv);
        }
    }
    int ok_cur = currency != NULL && strlen(currency) == 3;
    for (int i = 0; ok_cur && i < 3; i++)
        ok_cur = currency[i] >= 'A' && currency[i] <= 'Z';
    if (optind < argc || (invoice == NULL) == (period == NULL) ||
        (invoice != NULL && (currency != NULL || *invoice == '\0' ||
                             strlen(invoice) > 64)) ||
        (period != NULL && ((strcmp(period, "current") != 0 &&
                             strcmp(period, "last") != 0) || !ok_cur))) {
        return ac_usage_error("pull", "partner: give --invoice ID, or "
                              "--unbilled current|last with --currency CODE "
                              "(ISO 4217, upper case)");
    }
    graph_options gopt;
    ac_status rc = graph_options_from_env(&gopt, err);
    if (rc != AC_OK) {
        ac_error("pull partner: %s", err);
        return rc;
    }
    PGconn *conn;
    rc = db_connect_migrated(conninfo, &conn, err);
    if (rc != AC_OK) {
        ac_error("pull partner: %s", err);
        return rc;
    }
    char entra_id[256] = "";
    if (entra != NULL) {
        snprintf(entra_id, sizeof entra_id, "%s", entra);
    } else {
        PGresult *res;
        rc = db_query(conn, "SELECT entra_tenant_id FROM ref.operator"
                      " WHERE entra_tenant_id IS NOT NULL", 0, NULL, &res,
                      err);
        if (rc == AC_OK && PQntuples(res) == 1)
            snprintf(entra_id, sizeof entra_id, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        if (rc == AC_OK && entra_id[0] == '\0')
            rc = ac_fail(err, AC_ECONFIG, "the operator has no Entra tenant "
                         "id: set ref.operator.entra_tenant_id or pass "
                         "--entra-tenant");
    }
    graph_client *g = NULL;
    if (rc == AC_OK)
        rc = graph_open(&gopt, entra_id, &g, err);
    static const export_def exports[] = {
        { "reconciliation", PARTNER_INVOICE },
        { "usage", PARTNER_USAGE },
    };
    ac_status worst = AC_OK;
    for (int i = 0; rc == AC_OK && i < 2; i++)
        rc = pull_export(conn, g, &gopt, &exports[i], invoice, period,
                         currency, &worst, err);
    if (g != NULL)
        ac_info("pull partner: %ld request(s) to Microsoft",
                graph_requests(g));
    graph_close(g);
    PQfinish(conn);
    if (rc != AC_OK) {
        ac_error("pull partner: %s", err);
        return rc;
    }
    return worst;
}
