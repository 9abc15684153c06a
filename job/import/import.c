/* import.c: `acbill import` (docs/billing-rules.md 6), the command line over
 * pstn.h, graphcalls.h, licences.h and rates.h. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "civil.h"
#include "commands.h"
#include "db.h"
#include "graphcalls.h"
#include "licences.h"
#include "log.h"
#include "partner.h"
#include "pstn.h"
#include "rates.h"
#include "sha256.h"

/* A licence snapshot file (subscribedSkus, users) is at most this big. */
#define LICENCE_FILE_MAX (512u * 1024 * 1024)

static void import_usage(FILE *out)
{
    fprintf(out,
        "usage: acbill import pstn --tenant ID [--db CONNINFO] FILE...\n"
        "       acbill import graph-calls --tenant ID [--db CONNINFO] FILE...\n"
        "       acbill import licences --tenant ID --at TIMESTAMP\n"
        "                              --skus FILE --users FILE [--db CONNINFO]\n"
        "       acbill import partner-invoice [--db CONNINFO] FILE...\n"
        "       acbill import partner-usage [--db CONNINFO] FILE...\n"
        "       acbill import rates --plan PLAN --currency CUR --valid-from T\n"
        "                           [--db CONNINFO] FILE.csv\n"
        "\n"
        "Loads Microsoft's data for one tenant into usage.*, and the\n"
        "operator's rate cards into ref.rates:\n"
        "  pstn         the Teams admin center PSTN usage export (.csv or\n"
        "               the exported .zip); conf_out rows become calls\n"
        "  graph-calls  pages saved from Graph getPstnCalls (JSON)\n"
        "  licences     a snapshot of Graph subscribedSkus and users with\n"
        "               assignedLicenses, taken at TIMESTAMP (ISO 8601)\n"
        "  partner-invoice  Partner Center's invoice reconciliation file\n"
        "  partner-usage    Partner Center's daily rated usage file\n"
        "               (the CSV download in either header spelling, or the\n"
        "               export's .json.gz blobs; all customers at once, no\n"
        "               --tenant; docs/reconciliation.md)\n"
        "  rates        a rate card into ref.rates: a CSV with the header\n"
        "               prefix,per_minute,connection_fee (exact decimals,\n"
        "               at most 4 places) for price plan PLAN ('standard'\n"
        "               unless customers have their own) in currency CUR,\n"
        "               in force from T (YYYY-MM-DD = 00:00 UTC, or a time\n"
        "               with its offset, e.g. 2026-11-01T00:00:00Z). The\n"
        "               previous card of PLAN and CUR is closed at T. A card\n"
        "               with any bad row is refused whole (nothing loaded);\n"
        "               so is one starting before a card already loaded.\n"
        "               See docs/rate-cards.md.\n"
        "Every file is recorded in usage.imports; rows that cannot be\n"
        "loaded are kept in usage.import_rejects with their line number\n"
        "and reason (the first few are printed, with the query for the\n"
        "rest).  Importing the same file again changes nothing.\n"
        "\n"
        "  --tenant ID         the tenant (a tenant_id of usage.tenants)\n"
        "  --at TIMESTAMP      licences: when the snapshot was taken, e.g.\n"
        "                      2026-10-01T00:00Z\n"
        "  --skus FILE         licences: the subscribedSkus JSON\n"
        "  --users FILE        licences: the users JSON (assignedLicenses)\n"
        "  --db CONNINFO       the database (default: the libpq environment)\n"
        "  -q, --quiet         warnings and errors only\n"
        "  -v, --verbose       debug lines too\n"
        "  -h, --help          this text\n"
        "\n"
        "  --plan P            rates: the price plan of the card\n"
        "  --currency C        rates: the card's currency (ISO 4217)\n"
        "  --valid-from T      rates: the card is in force from T\n"
        "\n"
        "exit status: 0 all loaded; 64 usage; 65 a row was rejected or a\n"
        "file refused (the rest is loaded; a rate card is refused whole);\n"
        "66 a file is missing; 69\n"
        "database unavailable; 74 a file cannot be read; 75 the database\n"
        "timed out; 78 configuration (authentication, unknown database).\n");
}

/* The more serious of two outcomes (files go on after data problems). */
static ac_status worse(ac_status a, ac_status b)
{
    static const ac_status order[] = { AC_OK, AC_EDATA, AC_ENOINPUT,
                                       AC_EIO, AC_EOSERR, AC_EINTERNAL,
                                       AC_EUNAVAIL };
    int ia = 7, ib = 7;
    for (int i = 0; i < 7; i++) {
        if (order[i] == a)
            ia = i;
        if (order[i] == b)
            ib = i;
    }
    return ia >= ib ? a : b;
}

/* The greatest import_id so far (0: none; -1 when it cannot be read). */
static long long last_import_id(PGconn *conn)
{
    PGresult *res;
    char err[AC_ERR_MAX];
    if (db_query(conn, "SELECT coalesce(max(import_id), 0)::text FROM "
                 "usage.imports", 0, NULL, &res, err) != AC_OK)
        return -1;
    long long id = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return id;
}

/* How many rejected rows to show on the terminal. */
#define REJECTS_SHOWN 5

/* After an import with rejects: the first REJECTS_SHOWN rows that this
 * command's imports (import_id above since, for tenant) rejected, with
 * file, line and reason, the files refused whole, and the query that lists
 * the rest.  Raw row text is not printed (it is data from outside; it
 * stays in usage.import_rejects). */
static void show_rejects(PGconn *conn, const char *tenant, long long since)
{
    char s[32], err[AC_ERR_MAX];
    PGresult *res;
    snprintf(s, sizeof s, "%lld", since);
    const char *p[] = { s, tenant };
    if (db_query(conn,
            "SELECT i.file_name || coalesce(':' || i.member, ''),"
            "       r.line_no::text, r.reason"
            " FROM usage.imports i"
            " JOIN usage.import_rejects r USING (import_id)"
            " WHERE i.import_id > $1::int8 AND i.tenant_id = $2"
            " ORDER BY i.import_id, r.line_no LIMIT 5",
            2, p, &res, err) == AC_OK) {
        for (int i = 0; i < PQntuples(res); i++)
            ac_warn("rejected: %s line %s: %s", PQgetvalue(res, i, 0),
                    PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
        PQclear(res);
    }
    if (db_query(conn,
            "SELECT i.file_name || coalesce(':' || i.member, ''),"
            "       coalesce(i.message, 'refused')"
            " FROM usage.imports i WHERE i.import_id > $1::int8"
            "   AND i.tenant_id = $2 AND i.status = 'refused'"
            " ORDER BY i.import_id LIMIT 5", 2, p, &res, err) == AC_OK) {
        for (int i = 0; i < PQntuples(res); i++)
            ac_warn("refused: %s: %s", PQgetvalue(res, i, 0),
                    PQgetvalue(res, i, 1));
        PQclear(res);
    }
    if (db_query(conn,
            "SELECT coalesce(sum(rejected), 0)::text,"
            "       coalesce(string_agg(import_id::text, ', ' ORDER BY"
            "                import_id) FILTER (WHERE rejected > 0), '')"
            " FROM usage.imports WHERE import_id > $1::int8"
            "   AND tenant_id = $2", 2, p, &res, err) == AC_OK) {
        long long n = atoll(PQgetvalue(res, 0, 0));
        if (n > REJECTS_SHOWN)
            ac_warn("%lld row(s) rejected in all; every one, with its raw "
                    "text: SELECT * FROM usage.import_rejects WHERE "
                    "import_id IN (%s) ORDER BY import_id, line_no", n,
                    PQgetvalue(res, 0, 1));
        else if (n > 0)
            ac_warn("the raw text of each: SELECT * FROM "
                    "usage.import_rejects WHERE import_id IN (%s)",
                    PQgetvalue(res, 0, 1));
        PQclear(res);
    }
}

static ac_status import_licences(PGconn *conn, const char *tenant,
                                 const char *at, const char *skus_path,
                                 const char *users_path, char *err)
{
    char *skus = NULL, *users = NULL, hs[65] = "", hu[65] = "";
    size_t ls = 0, lu = 0;
    licsnap *snap = NULL;
    ac_status rc;
    char why[AC_ERR_MAX];

    rc = import_read_file(skus_path, LICENCE_FILE_MAX, &skus, &ls, err);
    if (rc == AC_OK)
        rc = import_read_file(users_path, LICENCE_FILE_MAX, &users, &lu,
                              err);
    if (rc != AC_OK)
        goto out;
    sha256_ctx sha;
    sha256_init(&sha);
    sha256_update(&sha, skus, ls);
    sha256_final_hex(&sha, hs);
    sha256_init(&sha);
    sha256_update(&sha, users, lu);
    sha256_final_hex(&sha, hu);

    const char *sn = strrchr(skus_path, '/') ? strrchr(skus_path, '/') + 1
                                             : skus_path;
    const char *un = strrchr(users_path, '/') ? strrchr(users_path, '/') + 1
                                              : users_path;
    rc = licences_begin(conn, tenant, at, sn, un, &snap, err);
    if (rc != AC_OK)
        goto out;
    rc = licences_add_skus(snap, skus, ls, why);
    if (rc != AC_OK) {
        char reason[AC_ERR_MAX + 32];
        snprintf(reason, sizeof reason, "%s: %s", sn, why);
        licences_abort(snap, hs, hu, reason);
        rc = ac_fail(err, rc, "%s", reason);
        goto out;
    }
    char *next = NULL;
    rc = licences_add_users(snap, users, lu, &next, why);
    free(next);
    if (rc != AC_OK) {
        char reason[AC_ERR_MAX + 32];
        snprintf(reason, sizeof reason, "%s: %s", un, why);
        licences_abort(snap, hs, hu, reason);
        rc = ac_fail(err, rc, "%s", reason);
        goto out;
    }
    licence_counts cs, cu;
    rc = licences_finish(snap, hs, hu, &cs, &cu, err);
    if (rc != AC_OK)
        goto out;
    ac_info("import licences %s at %s: %lld SKUs read, %lld opened, %lld "
            "changed, %lld unchanged, %lld rejected, %lld intervals closed "
            "(import %lld)", sn, at, cs.read, cs.inserted, cs.updated,
            cs.unchanged, cs.rejected, cs.closed, cs.import_id);
    ac_info("import licences %s at %s: %lld assignments read, %lld opened, "
            "%lld unchanged, %lld rejected, %lld intervals closed "
            "(import %lld)", un, at, cu.read, cu.inserted, cu.unchanged,
            cu.rejected, cu.closed, cu.import_id);
    if (cs.rejected > 0 || cu.rejected > 0)
        rc = ac_fail(err, AC_EDATA, "%lld row(s) rejected: see "
                     "usage.import_rejects (imports %lld and %lld)",
                     cs.rejected + cu.rejected, cs.import_id, cu.import_id);
out:
    free(skus);
    free(users);
    return rc;
}

/* acbill import rates: the checks of the command line, then rates.h. */
static int import_rates(const char *conninfo, const char *plan,
                        const char *currency, const char *valid_from,
                        const char *tenant, const char *at, const char *skus,
                        const char *users, int nfiles, char **files)
{
    char err[AC_ERR_MAX] = "";

    if (tenant || at || skus || users || nfiles != 1 || plan == NULL ||
        currency == NULL || valid_from == NULL) {
        return ac_usage_error("import", "rates: --plan PLAN, --currency CUR, "
                "--valid-from T and one FILE are required (and no --tenant, "
                "--at, --skus or --users)");
    }
    if (!rates_check_plan(plan)) {
        return ac_usage_error("import", "rates: --plan '%s' is not a plan "
                "name (a letter or digit, then up to 63 letters, digits, "
                "'_', '.' or '-')", plan);
    }
    if (strlen(currency) != 3 || strspn(currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "abcdefghijklmnopqrstuvwxyz") != 3) {
        return ac_usage_error("import", "rates: --currency '%s' is not a "
                "3-letter ISO 4217 code", currency);
    }
    if (!rates_check_valid_from(valid_from)) {
        return ac_usage_error("import", "rates: --valid-from '%s' is not a "
                "date (YYYY-MM-DD, 00:00 UTC), a date and time with its "
                "offset (2026-11-01T00:00:00Z, 2026-11-01T00:00+01:00) or "
                "-infinity", valid_from);
    }
    PGconn *conn;
    ac_status rc = db_connect_migrated(conninfo, &conn, err);
    if (rc != AC_OK) {
        ac_error("import: %s", err);
        return rc;
    }
    rates_card card = { plan, currency, valid_from };
    rates_counts counts;
    rc = rates_import(conn, &card, files[0], &counts, err);
    if (rc != AC_OK && !(counts.refused && counts.import_id != 0))
        ac_error("import rates: %s", err);      /* not logged yet */
    PQfinish(conn);
    return rc;
}

int cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {
        { "tenant", required_argument, NULL, 't' },
        { "db", required_argument, NULL, 'd' },
        { "at", required_argument, NULL, 'a' },
        { "skus", required_argument, NULL, 's' },
        { "users", required_argument, NULL, 'u' },
        { "plan", required_argument, NULL, 'P' },
        { "currency", required_argument, NULL, 'C' },
        { "valid-from", required_argument, NULL, 'F' },
        { "quiet", no_argument, NULL, 'q' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *tenant = NULL, *conninfo = NULL, *at = NULL, *skus = NULL,
               *users = NULL, *plan = NULL, *currency = NULL,
               *valid_from = NULL;
    char err[AC_ERR_MAX] = "";
    int c;

    if (argc < 2)
        return ac_usage_error("import", "name what to import: pstn, "
                              "graph-calls, licences, partner-invoice, "
                              "partner-usage or rates");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        import_usage(stdout);
        return AC_OK;
    }
    const char *what = argv[1];
    int kind = strcmp(what, "pstn") == 0 ? 1
             : strcmp(what, "graph-calls") == 0 ? 2
             : strcmp(what, "licences") == 0 ? 3
             : strcmp(what, "partner-invoice") == 0 ? 4
             : strcmp(what, "partner-usage") == 0 ? 5
             : strcmp(what, "rates") == 0 ? 6 : 0;
    if (kind == 0)
        return ac_usage_error("import", "unknown source '%s' (pstn, "
                              "graph-calls, licences, partner-invoice, "
                              "partner-usage or rates)", what);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc - 1, argv + 1, ":hqv", opts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'd': conninfo = optarg; break;
        case 'a': at = optarg; break;
        case 's': skus = optarg; break;
        case 'u': users = optarg; break;
        case 'P': plan = optarg; break;
        case 'C': currency = optarg; break;
        case 'F': valid_from = optarg; break;
        case 'q': ac_log_set_level(AC_LOG_WARN); break;
        case 'v': ac_log_set_level(AC_LOG_DEBUG); break;
        case 'h':
            import_usage(stdout);
            return AC_OK;
        default:
            return ac_usage_getopt("import", c, argv + 1);
        }
    }
    int nfiles = argc - 1 - optind;
    char **files = argv + 1 + optind;
    if (kind == 6)
        return import_rates(conninfo, plan, currency, valid_from, tenant, at,
                            skus, users, nfiles, files);
    if (plan || currency || valid_from)
        return ac_usage_error("import", "%s: --plan, --currency and "
                              "--valid-from are for rates", what);
    if (kind >= 4 && (tenant || at || skus || users || nfiles == 0))
        return ac_usage_error("import", "%s: give one or more FILEs (and no "
                              "--tenant, --at, --skus or --users: the file "
                              "covers every customer)", what);
    if (kind < 4 && (tenant == NULL || *tenant == '\0'))
        return ac_usage_error("import", "%s: --tenant ID is required", what);
    if (kind == 3 && (at == NULL || skus == NULL || users == NULL ||
                      nfiles > 0))
        return ac_usage_error("import", "licences: --at TIMESTAMP, --skus "
                              "FILE and --users FILE are required, and "
                              "nothing else");
    if (kind == 3 && !civil_timestamp_valid(at))
        return ac_usage_error("import", "licences: --at wants a date and "
                              "time such as 2026-10-01T00:00Z, got '%s'",
                              at);
    if (kind < 3 && (nfiles == 0 || at || skus || users))
        return ac_usage_error("import", "%s: give one or more FILEs (and "
                              "no --at, --skus or --users)", what);

    PGconn *conn;
    ac_status rc = db_connect_migrated(conninfo, &conn, err);
    if (rc != AC_OK) {
        ac_error("import: %s", err);
        return rc;
    }
    ac_status worst = AC_OK;
    long long since = last_import_id(conn);
    if (kind == 3) {
        rc = import_licences(conn, tenant, at, skus, users, err);
        if (rc != AC_OK)
            ac_error("import licences: %s", err);
        worst = rc;
    }
    int progress = isatty(STDERR_FILENO);
    for (int i = 0; kind != 3 && i < nfiles; i++) {
        ac_status data = AC_OK;
        if (kind >= 4) {
            partner_counts pc;
            rc = partner_import_file(conn, kind == 4 ? PARTNER_INVOICE
                                                     : PARTNER_USAGE,
                                     files[i], NULL, NULL, &pc, err);
            if (rc == AC_OK) {
                ac_info("import %s %s: %lld lines read, %lld new, %lld "
                        "unchanged, %lld rejected (import %lld)", what,
                        files[i], pc.read, pc.inserted, pc.unchanged,
                        pc.rejected, pc.import_id);
                if (pc.rejected > 0)
                    ac_warn("import %s %s: %lld line(s) rejected: see "
                            "usage.import_rejects (import %lld)", what,
                            files[i], pc.rejected, pc.import_id);
                data = pc.rejected > 0 ? AC_EDATA : AC_OK;
            } else {
                ac_error("import %s: %s", what, err);
            }
            worst = worse(worse(worst, rc), data);
            if (rc == AC_EUNAVAIL || PQstatus(conn) != CONNECTION_OK)
                break;
            continue;
        }
        rc = kind == 1
           ? pstn_import(conn, tenant, files[i], progress, &data, err)
           : graphcalls_import_file(conn, tenant, files[i], &data, err);
        if (rc != AC_OK)
            ac_error("import %s: %s", what, err);
        worst = worse(worse(worst, rc), data);
        if (rc == AC_EUNAVAIL || PQstatus(conn) != CONNECTION_OK)
            break;              /* the database is gone: stop here */
        if (rc == AC_EDATA && strstr(err, "usage.tenants") != NULL)
            break;              /* unknown tenant: every file would fail */
    }
    if (worst == AC_EDATA && since >= 0 && PQstatus(conn) == CONNECTION_OK)
        show_rejects(conn, tenant, since);
    PQfinish(conn);
    return worst;
}
