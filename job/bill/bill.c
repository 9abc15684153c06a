/* bill.c: see bill.h. */
#include "bill.h"

#include <errno.h>
#include <stdarg.h>
#include <time.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "civil.h"
#include "db.h"
#include "deliver/outfile.h"
#include "log.h"
#include "money.h"
#include "report.h"
#include "sha256.h"

/* Historic rule: periods starting before this date size the pool by
 * assigned licences (docs/billing-rules.md 3). */
#define PURCHASED_BASIS_FROM "2020-10-01"

typedef struct {
    char code[40];
    char subject[160];
    char detail[600];
    char usage_id[40];                  /* "" when there is no call */
} finding;

#define SPOOL_BUFFER (256 * 1024)

/* Everything one tenant's billing needs, freed in one place. */
typedef struct {
    const bill_context *ctx;
    const bill_tenant_info *tenant;
    char start[40], end[40];            /* period bounds, timestamptz text */
    int latest_revision;
    char latest_invoice[128];
    char latest_fp[65];
    int historic;                       /* period before 2020-10 */
    int seats;                          /* the Zone A pool's */
    const char *seats_basis;
    int usca_seats;                     /* the US/CA pool's (docs/billing-rules.md 3 v3) */
    char price_plan[80];                /* resolved: "standard" when none */
    int64_t rate_adjustment;            /* 1/10000 */
    char rate_adjustment_text[16];      /* as in ref.customers */
    char tax_category[4];               /* resolved (docs/billing-rules.md 4.1) */
    int tax_category_explicit;          /* differs from the default the
                                           tax rate alone gives */
    int minor_unit;                     /* of the tenant's currency */
    int has_customer;                   /* a ref.customers row */
    int64_t tax_rate;                   /* 1/10000 */
    char tax_rate_text[16];             /* as in ref.customers */
    int32_t no_rate;                    /* calls rejected NO_RATE */
    rating_licences *lic;
    rating_tenant *rt;
    FILE *spool;
    char *spool_buf;                    /* its stdio buffer */
    int spool_errno;                    /* errno of its first failed write */
    sha256_ctx fp;
    finding *findings;                  /* grown on demand */
    int nfindings, findings_cap;
    int findings_oom;                   /* one could not be held */
    int32_t no_organizer;               /* calls without an organizer */
    /* Against the provider (billing.invoice_reconciliation). */
    int32_t charged, compared, differing;
    int64_t provider_total, acbill_total;   /* units, compared calls */
    int bad_charge;                     /* a provider charge unreadable */
    char invoice_no[128];
    char fingerprint[65];
    char latest_total[32];              /* of the latest revision */
    char latest_calls[16];
    int draft;                          /* still in the grace period */
    char grace_ends[40];                /* when it ends, UTC text */
    char digest[33];                    /* of the period's inputs */
    char spool_path[PATH_MAX];          /* named spool, "" if anonymous */
    copy_line line;                     /* one spool line being built */
} job;

/* ------------------------------------------------------------ helpers */

void bill_invoice_no(const char *tenant_id, const char *period, int revision,
                     char *out, size_t len)
{
    char clean[48];
    size_t n = strlen(tenant_id), i;
    int changed = n == 0 || n > 40 || tenant_id[0] == '.' ||
                  tenant_id[0] == '-';

    for (i = 0; i < n && i < 40; i++) {
        char c = tenant_id[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                 (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
        clean[i] = ok ? c : '_';
        changed |= !ok;
    }
    clean[i] = '\0';
    if (changed && (clean[0] == '.' || clean[0] == '-'))
        clean[0] = '_';
    if (!changed) {
        snprintf(out, len, "%s-%s-R%d", clean, period, revision);
        return;
    }
    char hex[65];
    sha256_ctx h;
    sha256_init(&h);
    sha256_update(&h, tenant_id, n);
    sha256_final_hex(&h, hex);
    if (strlen(clean) > 30)
        clean[30] = '\0';
    snprintf(out, len, "%s_%.8s-%s-R%d", clean, hex, period, revision);
}

/* Parse "YYYY-MM-DD HH:MM:SS[.ffffff]+00" (a timestamptz printed in a UTC
 * session) into microseconds since the epoch.  Returns 0 on success. */
static int parse_utc(const char *s, int64_t *out)
{
    int v[6], frac = 0;
    /* Fixed positions: YYYY-MM-DD HH:MM:SS; no sscanf in the hot loop. */
    static const int at[6] = { 0, 5, 8, 11, 14, 17 };
    static const int width[6] = { 4, 2, 2, 2, 2, 2 };

    if (strnlen(s, 19) < 19)
        return -1;
    for (int i = 0; i < 6; i++) {
        v[i] = 0;
        for (int k = 0; k < width[i]; k++) {
            char c = s[at[i] + k];
            if (c < '0' || c > '9')
                return -1;
            v[i] = v[i] * 10 + (c - '0');
        }
    }
    if (s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' ||
        s[16] != ':')
        return -1;
    s += 19;
    if (*s == '.') {
        int digits = 0;
        for (s++; *s >= '0' && *s <= '9'; s++, digits++)
            if (digits < 6)
                frac = frac * 10 + (*s - '0');
        for (; digits < 6; digits++)
            frac *= 10;
    }
    if (strcmp(s, "+00") != 0)
        return -1;
    int64_t days = civil_days(v[0], v[1], v[2]);
    *out = (days * 86400 + v[3] * 3600 + v[4] * 60 + v[5]) * 1000000 + frac;
    return 0;
}

static void add_finding(job *j, const char *code, const char *subject,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_call_finding(job *j, const char *code, const char *subject,
                             const char *usage_id, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Findings kept in memory are the tenant's (licences, profile) and its
 * organizers' (one each at most per code): bounded by the tenant's state.
 * The findings of single calls are written by SQL from the rated calls
 * (insert_findings), never held here.  None is ever dropped. */
static finding *new_finding(job *j, const char *code, const char *subject,
                            const char *usage_id, const char *fmt,
                            va_list ap)
    __attribute__((format(printf, 5, 0)));
static finding *new_finding(job *j, const char *code, const char *subject,
                            const char *usage_id, const char *fmt,
                            va_list ap)
{
    if (j->findings_oom)
        return NULL;
    if (j->nfindings == j->findings_cap) {
        /* Most tenants have none or a few: the array grows. */
        if (j->findings_cap > INT_MAX / 2) {
            j->findings_oom = 1;
            return NULL;
        }
        int cap = j->findings_cap ? 2 * j->findings_cap : 16;
        finding *more = realloc(j->findings, (size_t)cap * sizeof *more);
        if (more == NULL) {
            j->findings_oom = 1;
            return NULL;
        }
        j->findings = more;
        j->findings_cap = cap;
    }
    finding *f = &j->findings[j->nfindings++];
    snprintf(f->code, sizeof f->code, "%s", code);
    snprintf(f->subject, sizeof f->subject, "%s", subject);
    vsnprintf(f->detail, sizeof f->detail, fmt, ap);
    snprintf(f->usage_id, sizeof f->usage_id, "%s",
             usage_id ? usage_id : "");
    return f;
}

static void add_finding(job *j, const char *code, const char *subject,
                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    new_finding(j, code, subject, NULL, fmt, ap);
    va_end(ap);
}

/* A finding about a call (docs/billing-rules.md 3: "the usage_id where there is one"). */
static void add_call_finding(job *j, const char *code, const char *subject,
                             const char *usage_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    new_finding(j, code, subject, usage_id, fmt, ap);
    va_end(ap);
}

static void fp_text(job *j, const char *s)
{
    sha256_update(&j->fp, s ? s : "\\N", strlen(s ? s : "\\N"));
    sha256_update(&j->fp, "\t", 1);
}

static void fp_long(job *j, long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    fp_text(j, buf);
}

/* Format a microsecond timestamp as UTC text for messages. */
static void utc_text(int64_t us, char *buf, size_t len)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        snprintf(buf, len, "?");
    else
        strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* ------------------------------------------------------------ reading */

static ac_status read_bounds(PGconn *conn, job *j, char *err)
{
    const char *p[] = { j->tenant->time_zone, j->ctx->period_date };
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT (($2::date)::timestamp AT TIME ZONE $1)::text,"
        "       (($2::date + interval '1 month')::timestamp"
        "        AT TIME ZONE $1)::text", 2, p, &res, err);
    if (rc != AC_OK) {
        if (rc == AC_EINTERNAL)
            return ac_fail(err, AC_EDATA, "time zone '%s' is not a known "
                           "IANA time zone", j->tenant->time_zone);
        return rc;
    }
    snprintf(j->start, sizeof j->start, "%s", PQgetvalue(res, 0, 0));
    snprintf(j->end, sizeof j->end, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    return AC_OK;
}

static ac_status read_latest(PGconn *conn, job *j, char *err)
{
    const char *p[] = { j->tenant->tenant_id, j->ctx->period_date };
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT invoice_no, revision, fingerprint, total, calls"
        " FROM billing.invoices"
        " WHERE tenant_id = $1 AND period = $2::date"
        " ORDER BY revision DESC LIMIT 1", 2, p, &res, err);
    if (rc != AC_OK)
        return rc;
    if (PQntuples(res) == 1) {
        snprintf(j->latest_invoice, sizeof j->latest_invoice, "%s",
                 PQgetvalue(res, 0, 0));
        j->latest_revision = atoi(PQgetvalue(res, 0, 1));
        snprintf(j->latest_fp, sizeof j->latest_fp, "%s",
                 PQgetvalue(res, 0, 2));
        snprintf(j->latest_total, sizeof j->latest_total, "%s",
                 PQgetvalue(res, 0, 3));
        snprintf(j->latest_calls, sizeof j->latest_calls, "%s",
                 PQgetvalue(res, 0, 4));
    }
    PQclear(res);
    return AC_OK;
}

/* docs/billing-rules.md 4.2, grace period: the period is issued only when now (ctx->as_of,
 * or the clock) is at least its local end plus ref.operator.grace_hours
 * (48 without an operator row); before that it is drafted. */
static ac_status read_grace(PGconn *conn, job *j, char *err)
{
    const char *p[] = { j->ctx->as_of, j->end };
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT coalesce($1::timestamptz, now()) < g.ends,"
        "       to_char(g.ends AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
        " FROM (SELECT $2::timestamptz + coalesce((SELECT grace_hours"
        "        FROM ref.operator), 48) * interval '1 hour' AS ends) g",
        2, p, &res, err);
    if (rc != AC_OK)
        return rc;
    j->draft = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    snprintf(j->grace_ends, sizeof j->grace_ends, "%s",
             PQgetvalue(res, 0, 1));
    PQclear(res);
    return AC_OK;
}

/* The digest of the reference data every tenant is rated with, read once
 * per process (a run reads the reference data once too). */
static char ref_digest[33];

/* docs/billing-rules.md 4.2: "a tenant-period whose inputs did not change since its last
 * revision must cost no more than a cheap check".  The digest covers the
 * tenant's calls of the period (their row versions), its licences, tenant
 * row and billing profile (row hashes), the reference data and the
 * rules' own settings; no call crosses the network and nothing is rated.
 * A dump and restore gives every row a new version: the next run then
 * rates once more and finds the result unchanged. */
static ac_status read_digest(PGconn *conn, job *j, char *err)
{
    PGresult *res;
    ac_status rc;

    if (ref_digest[0] == '\0') {
        rc = db_query(conn,
            "SELECT md5(concat_ws('|',"
            " (SELECT count(*) || ':' || coalesce(sum(hashtextextended("
            "   d::text, 0)), 0) FROM ref.destinations d),"
            " (SELECT count(*) || ':' || coalesce(sum(hashtextextended("
            "   l::text, 0)), 0) FROM ref.destination_lengths l),"
            " (SELECT count(*) || ':' || coalesce(sum(hashtextextended("
            "   z::text, 0)), 0) FROM ref.zones z),"
            " (SELECT count(*) || ':' || coalesce(sum(hashtextextended("
            "   r::text, 0)), 0) FROM ref.rates r),"
            " (SELECT count(*) || ':' || coalesce(sum(hashtextextended("
            "   e::text, 0)), 0) FROM ref.sku_entitlements e),"
            " (SELECT count(*) || ':' || coalesce(sum(hashtextextended("
            "   c::text, 0)), 0) FROM ref.currencies c),"
            " (SELECT string_agg(o::text, ',') FROM ref.operator o)))",
            0, NULL, &res, err);
        if (rc != AC_OK)
            return rc;
        snprintf(ref_digest, sizeof ref_digest, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    char fair[16];
    snprintf(fair, sizeof fair, "%d", (int)j->ctx->fair_use_minutes);
    const char *p[] = { j->tenant->tenant_id, j->start, j->end, ref_digest,
                        fair, ACBILL_VERSION };
    rc = db_query(conn,
        "SELECT md5(concat_ws('|', $4::text, $5::text, $6::text,"
        /* The calls: their count and the sum of their row versions'
         * transaction ids.  An insert, an update (a new row version) or
         * a delete changes it; no row is turned into text, so the check
         * costs a read of the tenant's rows and nothing more. */
        " (SELECT count(*) || ':' || coalesce(sum(c.xmin::text::int8), 0)"
        "   FROM usage.dialout_calls c WHERE tenant_id = $1"
        "   AND start_time >= $2::timestamptz"
        "   AND start_time < $3::timestamptz),"
        " (SELECT count(*) || ':' || coalesce(sum(hashtextextended(p::text,"
        "   0)), 0) FROM usage.license_purchases p WHERE tenant_id = $1),"
        " (SELECT count(*) || ':' || coalesce(sum(hashtextextended(a::text,"
        "   0)), 0) FROM usage.license_assignments a WHERE tenant_id = $1),"
        " (SELECT t::text FROM usage.tenants t WHERE tenant_id = $1),"
        " (SELECT c::text FROM ref.customers c WHERE tenant_id = $1)))",
        6, p, &res, err);
    if (rc != AC_OK)
        return rc;
    snprintf(j->digest, sizeof j->digest, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return AC_OK;
}

/* *any = 1 when the tenant has a call in the period. */
static ac_status has_calls(PGconn *conn, job *j, int *any, char *err)
{
    const char *p[] = { j->tenant->tenant_id, j->start, j->end };
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT EXISTS (SELECT 1 FROM usage.dialout_calls"
        " WHERE tenant_id = $1 AND start_time >= $2::timestamptz"
        "   AND start_time < $3::timestamptz)", 3, p, &res, err);
    if (rc != AC_OK)
        return rc;
    *any = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return AC_OK;
}

/* 1 when the latest revision was rated from inputs with j->digest. */
static ac_status inputs_unchanged(PGconn *conn, job *j, int *same,
                                  char *err)
{
    const char *p[] = { j->tenant->tenant_id, j->ctx->period_date,
                        j->latest_invoice, j->digest };
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT EXISTS (SELECT 1 FROM billing.period_inputs"
        " WHERE tenant_id = $1 AND period = $2::date AND invoice_no = $3"
        "   AND digest = $4)", 4, p, &res, err);
    if (rc != AC_OK)
        return rc;
    *same = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return AC_OK;
}

/* Remember that the inputs with j->digest give invoice_no. */
static ac_status record_inputs(PGconn *conn, job *j, const char *invoice_no,
                               char *err)
{
    const char *p[] = { j->tenant->tenant_id, j->ctx->period_date,
                        j->digest, invoice_no };
    return db_exec_params(conn,
        "INSERT INTO billing.period_inputs (tenant_id, period, digest,"
        " invoice_no) VALUES ($1, $2::date, $3, $4)"
        " ON CONFLICT (tenant_id, period) DO UPDATE SET digest = $3,"
        " invoice_no = $4, rated_at = now()", 4, p, err);
}

/* docs/billing-rules.md 4.2: the financial documents of revision invoice_no, committed
 * (an invoice; a credit note and an invoice; a credit note alone; or
 * none), numbered in their own READ COMMITTED transaction (one statement,
 * autocommit) so that workers share the gapless counters; a revision
 * already decided gives its documents again and writes nothing.  Their
 * numbers go into result->documents, and into result->fresh only when
 * this call wrote them.  A revision that needs documents while the
 * buyer's profile is incomplete is held: nothing is written, and
 * result->held says which ref.customers columns are missing. */
static ac_status issue_documents(PGconn *conn, const char *invoice_no,
                                 bill_result *result, char *err)
{
    const char *p[] = { invoice_no };
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT array_to_string(d.documents, ' '), d.held, d.written_now"
        " FROM billing.issue_documents($1) d", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    snprintf(result->documents, sizeof result->documents, "%s",
             PQgetvalue(res, 0, 0));
    snprintf(result->held, sizeof result->held, "%s", PQgetvalue(res, 0, 1));
    snprintf(result->fresh, sizeof result->fresh, "%s",
             strcmp(PQgetvalue(res, 0, 2), "t") == 0 ? result->documents
                                                     : "");
    PQclear(res);
    return AC_OK;
}

/* The time zone names PostgreSQL lists in pg_timezone_names, sorted:
 * read once per process (the view reads the tz database from disk, about
 * 60 ms a query), since a run checks every tenant's zone.  Workers are
 * processes and bill in one thread each. */
static char **tz_names;
static int ntz_names;

static int str_order(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* docs/billing-rules.md 3, tenant checks: time_zone must be a name PostgreSQL
 * lists in pg_timezone_names (not an abbreviation such as PST nor a POSIX
 * string such as UTC+3: those are fixed offsets). */
static ac_status check_time_zone(PGconn *conn, job *j, char *err)
{
    if (tz_names == NULL) {
        PGresult *res;
        ac_status rc = db_query(conn, "SELECT name FROM pg_timezone_names",
                                0, NULL, &res, err);
        if (rc != AC_OK)
            return rc;
        int n = PQntuples(res);
        char **names = calloc((size_t)n + 1, sizeof *names);
        for (int i = 0; names != NULL && i < n; i++)
            if ((names[i] = strdup(PQgetvalue(res, i, 0))) == NULL) {
                while (i-- > 0)
                    free(names[i]);
                free(names);
                names = NULL;
            }
        PQclear(res);
        if (names == NULL)
            return ac_fail(err, AC_EOSERR, "out of memory");
        qsort(names, (size_t)n, sizeof *names, str_order);
        tz_names = names;
        ntz_names = n;
    }
    const char *key = j->tenant->time_zone;
    if (bsearch(&key, tz_names, (size_t)ntz_names, sizeof *tz_names,
                str_order) == NULL)
        return ac_fail(err, AC_EDATA, "time zone '%s' is not an IANA time "
                       "zone name PostgreSQL knows (pg_timezone_names); "
                       "abbreviations and fixed offsets such as 'PST' or "
                       "'UTC+3' are refused", key);
    return AC_OK;
}

/* docs/billing-rules.md 3, tenant checks and "Money", "Tax", "Price plan": the
 * currency's minor unit (the currency must be in ref.currencies), the
 * customer's tax rate and category as resolved (no ref.customers row: tax
 * 0, category O and BILLING_PROFILE_MISSING; a null category: S when the
 * rate is above 0, else O), its price plan (null: standard) and
 * rate_adjustment (no row: 0).  The plan and adjustment are checked when
 * the rating engine takes them (rating_tenant_set_price). */
static ac_status read_money_profile(PGconn *conn, job *j, char *err)
{
    const char *p[] = { j->tenant->tenant_id, j->tenant->currency };
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT (SELECT minor_unit FROM ref.currencies WHERE code = $2),"
        "       c.tax_rate::text, c.tenant_id IS NOT NULL,"
        "       coalesce(c.price_plan, 'standard'),"
        "       coalesce(c.rate_adjustment, 0)::text,"
        "       coalesce(c.tax_category, d.category),"
        "       c.tax_category IS NOT NULL AND c.tax_category <> d.category"
        " FROM (SELECT 1) AS one"
        " LEFT JOIN ref.customers c ON c.tenant_id = $1"
        " CROSS JOIN LATERAL (SELECT CASE WHEN coalesce(c.tax_rate, 0) > 0"
        "     THEN 'S' ELSE 'O' END AS category) d", 2, p, &res, err);
    if (rc != AC_OK)
        return rc;
    const char *minor = db_value(res, 0, 0), *rate = db_value(res, 0, 1);
    j->has_customer = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    snprintf(j->price_plan, sizeof j->price_plan, "%s",
             PQgetvalue(res, 0, 3));
    snprintf(j->rate_adjustment_text, sizeof j->rate_adjustment_text, "%s",
             PQgetvalue(res, 0, 4));
    snprintf(j->tax_category, sizeof j->tax_category, "%s",
             PQgetvalue(res, 0, 5));
    j->tax_category_explicit = strcmp(PQgetvalue(res, 0, 6), "t") == 0;
    if (money_parse(j->rate_adjustment_text, &j->rate_adjustment) != AC_OK) {
        PQclear(res);
        return ac_fail(err, AC_EDATA, "ref.customers: unusable "
                       "rate_adjustment '%s'", j->rate_adjustment_text);
    }
    if (minor == NULL) {
        PQclear(res);
        return ac_fail(err, AC_EDATA, "currency '%s' is not an ISO 4217 "
                       "code in ref.currencies (codes are upper case, "
                       "such as USD)", j->tenant->currency);
    }
    j->minor_unit = atoi(minor);
    snprintf(j->tax_rate_text, sizeof j->tax_rate_text, "%s",
             rate ? rate : "0.0000");
    j->tax_rate = 0;
    if (rate != NULL && money_parse(rate, &j->tax_rate) != AC_OK) {
        PQclear(res);
        return ac_fail(err, AC_EDATA, "ref.customers: unusable tax rate "
                       "'%s'", rate);
    }
    PQclear(res);
    if (!j->has_customer)
        add_finding(j, "BILLING_PROFILE_MISSING", j->tenant->tenant_id,
                    "The customer has no billing profile (no row in "
                    "ref.customers): the invoice carries no buyer details "
                    "and no tax.");
    return AC_OK;
}

/* INVALID_INTERVAL (docs/billing-rules.md 3): each licence row whose valid_to is
 * not after its valid_from, and whose reversed interval touches the
 * period, named in the finding. */
static ac_status read_invalid_intervals(PGconn *conn, job *j, char *err)
{
    const char *p[] = { j->tenant->tenant_id, j->start, j->end };
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT 'purchase', sku, quantity::text, NULL,"
        "       to_char(valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),"
        "       to_char(valid_to AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
        " FROM usage.license_purchases"
        " WHERE tenant_id = $1 AND valid_to <= valid_from"
        "   AND valid_to < $3::timestamptz AND valid_from >= $2::timestamptz"
        " UNION ALL"
        " SELECT 'assignment', sku, NULL, user_id,"
        "       to_char(valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),"
        "       to_char(valid_to AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
        " FROM usage.license_assignments"
        " WHERE tenant_id = $1 AND valid_to <= valid_from"
        "   AND valid_to < $3::timestamptz AND valid_from >= $2::timestamptz"
        " ORDER BY 1, 2, 4, 5", 3, p, &res, err);
    if (rc != AC_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *sku = db_value(res, i, 1);
        char subject[160];
        if (sku == NULL)
            sku = "(no SKU)";
        if (strcmp(PQgetvalue(res, i, 0), "purchase") == 0) {
            snprintf(subject, sizeof subject, "purchase of %s", sku);
            add_finding(j, "INVALID_INTERVAL", subject,
                        "A purchase of %s (quantity %s) ends (%s UTC) "
                        "before or when it starts (%s UTC): it counts for "
                        "nothing.", sku,
                        db_value(res, i, 2) ? PQgetvalue(res, i, 2) : "?",
                        PQgetvalue(res, i, 5), PQgetvalue(res, i, 4));
        } else {
            const char *user = db_value(res, i, 3);
            snprintf(subject, sizeof subject, "assignment of %s to %s",
                     sku, user ? user : "(no user)");
            add_finding(j, "INVALID_INTERVAL", subject,
                        "The assignment of %s to %s ends (%s UTC) before "
                        "or when it starts (%s UTC): it counts for "
                        "nothing.", sku, user ? user : "(no user)",
                        PQgetvalue(res, i, 5), PQgetvalue(res, i, 4));
        }
    }
    PQclear(res);
    return AC_OK;
}

/* The seats of the pool of SKUs with pool_scope `scope` (docs/billing-rules.md 3,
 * "Seats", version 3): *bought, the greatest total quantity at any
 * instant of the period of the purchases of such SKUs on the purchased
 * basis (0 before 2020-10), and *assigned, the distinct users assigned
 * such a SKU on the assigned basis (before 2020-10: on any basis) during
 * the period.  *bad (may be NULL): the tenant's inverted licence rows
 * that touch the period. */
static ac_status count_seats(PGconn *conn, job *j, const char *scope,
                             long long *bought, long long *assigned,
                             long long *bad, char *err)
{
    const char *q[] = { j->tenant->tenant_id, j->start, j->end,
                        j->historic ? "t" : "f", scope,
                        bad != NULL ? "t" : "f" };
    PGresult *res;
    ac_status rc = db_query(conn,
        "WITH p AS ("
        "  SELECT quantity::bigint AS quantity, valid_from, valid_to"
        "  FROM usage.license_purchases"
        "  JOIN ref.sku_entitlements e USING (sku)"
        "  WHERE tenant_id = $1 AND quantity IS NOT NULL"
        "    AND e.grants = 'audio_conferencing'"
        "    AND e.pool_basis = 'purchased' AND e.pool_scope = $5"
        "    AND valid_from < $3::timestamptz"
        "    AND (valid_to IS NULL OR valid_to > $2::timestamptz)"
        "    AND (valid_to IS NULL OR valid_to > valid_from)),"
        " t AS (SELECT $2::timestamptz AS at"
        "  UNION SELECT valid_from FROM p WHERE valid_from > $2::timestamptz)"
        " SELECT CASE WHEN $4::bool THEN 0 ELSE coalesce((SELECT max((SELECT"
        "          sum(p.quantity) FROM p WHERE p.valid_from <= t.at"
        "          AND (p.valid_to IS NULL OR t.at < p.valid_to))) FROM t),"
        "          0) END::text,"
        "   (SELECT count(DISTINCT billing.id_key(user_id))"
        "     FROM usage.license_assignments"
        "     JOIN ref.sku_entitlements e USING (sku)"
        "     WHERE tenant_id = $1 AND e.grants = 'audio_conferencing'"
        "       AND e.pool_scope = $5"
        "       AND ($4::bool OR e.pool_basis = 'assigned')"
        "       AND billing.id_key(user_id) <> ''"
        "       AND valid_from < $3::timestamptz"
        "       AND (valid_to IS NULL OR valid_to > $2::timestamptz)"
        "       AND (valid_to IS NULL OR valid_to > valid_from))::text,"
        "   CASE WHEN $6::bool THEN"
        "   (SELECT count(*) FROM usage.license_purchases"
        "     WHERE tenant_id = $1 AND valid_to <= valid_from"
        "       AND valid_to < $3::timestamptz"
        "       AND valid_from >= $2::timestamptz)"
        "   + (SELECT count(*) FROM usage.license_assignments"
        "     WHERE tenant_id = $1 AND valid_to <= valid_from"
        "       AND valid_to < $3::timestamptz"
        "       AND valid_from >= $2::timestamptz) ELSE 0 END::text",
        6, q, &res, err);
    if (rc != AC_OK)
        return rc;
    *bought = atoll(PQgetvalue(res, 0, 0));
    *assigned = atoll(PQgetvalue(res, 0, 1));
    if (bad != NULL)
        *bad = atoll(PQgetvalue(res, 0, 2));
    PQclear(res);
    return AC_OK;
}

/* Seats (docs/billing-rules.md 3, "Seats") and the licence findings.
 *
 * From 2020-10-01: the greatest total quantity, at any instant of the
 * period, of the purchases whose SKU grants audio_conferencing on a
 * purchased basis (the total changes only at a valid_from or valid_to, so
 * the period start and every valid_from inside the period are the
 * instants to look at), plus the distinct users assigned a SKU that
 * grants audio_conferencing on an assigned basis during the period.
 * Before: the distinct users assigned any SKU granting
 * audio_conferencing.  Intervals with valid_to <= valid_from hold at no
 * instant and are left out everywhere.
 *
 * Findings: LICENSE_OVER_ASSIGNED per SKU (more distinct users than the
 * greatest purchased quantity), UNKNOWN_SKU per SKU not in
 * ref.sku_entitlements, INVALID_INTERVAL per inverted row whose reversed
 * interval touches the period.  Users are compared by billing.id_key().
 * A seat count whose pool exceeds 2,147,483,647 minutes fails the tenant.
 *
 * Version 3: the rule counts the zone_a SKUs for the Zone A pool (seats)
 * and the us_ca SKUs for the US/CA pool (usca_seats); a tenant with both
 * gets the TWO_POOLS finding. */
static ac_status read_seats(PGconn *conn, job *j, char *err)
{
    const char *p[] = { j->tenant->tenant_id, j->start, j->end };
    PGresult *res;

    j->historic = strcmp(j->ctx->period_date, PURCHASED_BASIS_FROM) < 0;
    ac_status rc = db_query(conn,
        "WITH p AS ("
        "  SELECT sku, quantity::bigint AS quantity, valid_from, valid_to"
        "  FROM usage.license_purchases"
        "  WHERE tenant_id = $1 AND sku IS NOT NULL AND quantity IS NOT NULL"
        "    AND valid_from < $3::timestamptz"
        "    AND (valid_to IS NULL OR valid_to > $2::timestamptz)"
        "    AND (valid_to IS NULL OR valid_to > valid_from)),"
        " a AS ("
        "  SELECT sku, count(DISTINCT billing.id_key(user_id)) AS users"
        "  FROM usage.license_assignments"
        "  WHERE tenant_id = $1 AND sku IS NOT NULL"
        "    AND billing.id_key(user_id) <> ''"
        "    AND valid_from < $3::timestamptz"
        "    AND (valid_to IS NULL OR valid_to > $2::timestamptz)"
        "    AND (valid_to IS NULL OR valid_to > valid_from)"
        "  GROUP BY sku),"
        " t AS ("
        "  SELECT DISTINCT sku, $2::timestamptz AS at FROM p"
        "  UNION SELECT sku, valid_from FROM p"
        "  WHERE valid_from > $2::timestamptz),"
        " m AS ("
        "  SELECT t.sku, max((SELECT sum(p.quantity) FROM p"
        "     WHERE p.sku = t.sku AND p.valid_from <= t.at"
        "       AND (p.valid_to IS NULL OR t.at < p.valid_to))) AS bought"
        "  FROM t GROUP BY t.sku)"
        " SELECT coalesce(m.sku, a.sku), coalesce(m.bought, 0)::text,"
        "        coalesce(a.users, 0)::text, e.grants, e.pool_basis"
        " FROM m FULL JOIN a ON a.sku = m.sku"
        " LEFT JOIN ref.sku_entitlements e ON e.sku = coalesce(m.sku, a.sku)"
        " ORDER BY coalesce(m.sku, a.sku) COLLATE \"C\"", 3, p, &res, err);
    if (rc != AC_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *sku = PQgetvalue(res, i, 0);
        long long bought = atoll(PQgetvalue(res, i, 1));
        long long users = atoll(PQgetvalue(res, i, 2));
        if (users > bought)
            add_finding(j, "LICENSE_OVER_ASSIGNED", sku,
                        "%lld users were assigned %s in the period, but "
                        "at most %lld %s bought at any time.", users, sku,
                        bought, bought == 1 ? "was" : "were");
        if (PQgetisnull(res, i, 3))
            add_finding(j, "UNKNOWN_SKU", sku,
                        "The licence SKU %s is not in ref.sku_entitlements, "
                        "so it grants nothing: no pool minutes, no Audio "
                        "Conferencing, no add-on. Add it there if it "
                        "should.", sku);
    }
    PQclear(res);

    /* The seats of each pool: the Zone A pool's from the zone_a SKUs, the
     * US/CA pool's from the us_ca SKUs, by the same rule. */
    long long bought = 0, assigned = 0, bad = 0;
    rc = count_seats(conn, j, "zone_a", &bought, &assigned, &bad, err);
    if (rc != AC_OK)
        return rc;
    long long seats = bought + assigned;    /* each < 2^62: no overflow */
    if (seats > INT32_MAX / 60)
        return ac_fail(err, AC_EDATA, "%lld seats (%lld purchased, %lld "
                       "assigned) would give a pool of more than "
                       "2,147,483,647 minutes: check "
                       "usage.license_purchases.quantity", seats, bought,
                       assigned);
    j->seats = (int)seats;
    j->seats_basis = j->historic || (bought == 0 && assigned > 0)
                     ? "assigned" : "purchased";
    long long usca_bought = 0, usca_assigned = 0;
    rc = count_seats(conn, j, "us_ca", &usca_bought, &usca_assigned, NULL,
                     err);
    if (rc != AC_OK)
        return rc;
    long long usca = usca_bought + usca_assigned;
    if (usca > INT32_MAX / 60)
        return ac_fail(err, AC_EDATA, "%lld US/CA seats (%lld purchased, "
                       "%lld assigned) would give a pool of more than "
                       "2,147,483,647 minutes: check "
                       "usage.license_purchases.quantity", usca, usca_bought,
                       usca_assigned);
    j->usca_seats = (int)usca;
    if (j->seats > 0 && j->usca_seats > 0)
        add_finding(j, "TWO_POOLS", j->tenant->tenant_id,
                    "The tenant has two Audio Conferencing pools this "
                    "month: the Zone A pool of %d seats (%d minutes, from "
                    "the Standard licences, %s) and the US/CA pool of %d "
                    "seats (%d minutes, from the USA/CAN licences, "
                    "assigned). Microsoft does not say how they combine; "
                    "acbill's rule (docs/billing-rules.md 3): a call to a US or "
                    "Canadian number by an organizer holding the USA/CAN "
                    "licence draws on the US/CA pool first, then on the "
                    "Zone A pool if the organizer also holds a Standard "
                    "licence; other Zone A calls draw on the Zone A pool "
                    "only.", j->seats, 60 * j->seats, j->seats_basis,
                    j->usca_seats, 60 * j->usca_seats);
    if (bad > 0)
        return read_invalid_intervals(conn, j, err);
    return AC_OK;
}

/* The assignments in force during the period of SKUs that grant
 * something (ref.sku_entitlements), as holdings of their grant and, for a
 * subscription, its pool_scope (docs/billing-rules.md 3, "Holdings").  Open bounds (NULL, +-infinity) stay open;
 * inverted intervals hold nowhere and are left out. */
static ac_status read_licences(PGconn *conn, job *j, char *err)
{
    const char *p[] = { j->tenant->tenant_id, j->start, j->end };
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT a.user_id, e.grants,"
        "       CASE WHEN isfinite(a.valid_from) THEN a.valid_from::text END,"
        "       CASE WHEN isfinite(a.valid_to) THEN a.valid_to::text END,"
        "       e.pool_scope"
        " FROM usage.license_assignments a"
        " JOIN ref.sku_entitlements e ON e.sku = a.sku"
        " WHERE a.tenant_id = $1 AND a.user_id IS NOT NULL"
        "   AND a.valid_from < $3::timestamptz"
        "   AND (a.valid_to IS NULL OR a.valid_to > $2::timestamptz)"
        "   AND (a.valid_to IS NULL OR a.valid_to > a.valid_from)",
        3, p, &res, err);
    if (rc != AC_OK)
        return rc;
    for (int i = 0; rc == AC_OK && i < PQntuples(res); i++) {
        int64_t from = INT64_MIN, to = RATING_FOREVER;
        const char *vf = db_value(res, i, 2), *vt = db_value(res, i, 3);
        if ((vf != NULL && parse_utc(vf, &from) != 0) ||
            (vt != NULL && parse_utc(vt, &to) != 0)) {
            rc = ac_fail(err, AC_EDATA, "licence assignment of %s has an "
                         "unusable validity (%s to %s)",
                         PQgetvalue(res, i, 0), vf ? vf : "open",
                         vt ? vt : "open");
            break;
        }
        rc = rating_licences_add(j->lic, PQgetvalue(res, i, 0),
                                 rating_grant_parse_scope(
                                     PQgetvalue(res, i, 1),
                                     db_value(res, i, 4)),
                                 from, to, err);
    }
    PQclear(res);
    return rc;
}

/* Write one rated call as a COPY line into the spool and the
 * fingerprint.  0, or -1 when out of memory. */
static int spool_call(job *j, int32_t seq, PGresult *row,
                      const rating_call *c, const rating_result *r)
{
    copy_line *l = &j->line;

    /* The row after its invoice number, formatted once into a reused
     * buffer: it goes to the spool and, being everything the invoice shows
     * of the call, into the fingerprint. */
    cl_reset(l);
    cl_i64(l, seq);
    cl_char(l, '\t');
    cl_str(l, c->usage_id);
    cl_char(l, '\t');
    cl_str(l, PQgetvalue(row, 0, 1));
    cl_char(l, '\t');
    cl_str(l, PQgetvalue(row, 0, 2));
    cl_char(l, '\t');
    cl_field(l, c->organizer_id);
    cl_char(l, '\t');
    cl_field(l, c->number);
    cl_char(l, '\t');
    if (c->has_duration)
        cl_i64(l, c->duration_seconds);
    else
        cl_null(l);
    cl_char(l, '\t');
    cl_str(l, rating_outcome_name(r->outcome));
    cl_char(l, '\t');
    if (r->reason)
        cl_str(l, r->reason);
    else
        cl_null(l);
    cl_char(l, '\t');
    if (r->country[0])
        cl_str(l, r->country);
    else
        cl_null(l);
    cl_char(l, '\t');
    if (r->kind >= 0)
        cl_str(l, rating_kind_name(r->kind));
    else
        cl_null(l);
    cl_char(l, '\t');
    cl_i64(l, r->minutes);
    cl_char(l, '\t');
    cl_i64(l, r->pool_minutes);
    cl_char(l, '\t');
    cl_i64(l, r->billed_minutes);
    cl_char(l, '\t');
    if (r->has_rate) {
        cl_money4(l, r->per_minute);
        cl_char(l, '\t');
        cl_money4(l, r->connection_fee);
    } else {
        cl_null(l);
        cl_char(l, '\t');
        cl_null(l);
    }
    cl_char(l, '\t');
    cl_money4(l, r->amount);
    cl_char(l, '\t');
    if (r->dest_prefix_len > 0)
        cl_bytes(l, r->number.digits, (size_t)r->dest_prefix_len);
    else
        cl_null(l);
    cl_char(l, '\t');
    if (r->has_rate)
        cl_bytes(l, r->number.digits, (size_t)r->rate_prefix_len);
    else
        cl_null(l);
    cl_char(l, '\t');
    cl_field(l, db_value(row, 0, 6));
    cl_char(l, '\t');
    cl_field(l, db_value(row, 0, 7));
    cl_char(l, '\t');
    cl_field(l, r->duplicate_of);
    cl_char(l, '\t');
    cl_field(l, db_value(row, 0, 10));
    cl_char(l, '\t');
    cl_field(l, c->call_id);
    cl_char(l, '\t');
    cl_field(l, c->conference_id);
    cl_char(l, '\t');
    cl_field(l, db_value(row, 0, 11));
    /* Version 3's columns.  The fingerprint covers them only where they
     * say something (a US/CA pool draw, a plan's rate), so a statement of
     * version 2 rated again under version 3 keeps its fingerprint and
     * makes no new revision. */
    size_t v2_len = l->n;
    int v3 = r->usca_pool_minutes != 0 || (r->has_rate && r->rate_from_plan);
    cl_char(l, '\t');
    cl_i64(l, r->usca_pool_minutes);
    cl_char(l, '\t');
    if (r->has_rate)
        cl_str(l, r->rate_from_plan ? j->price_plan : RATING_STANDARD_PLAN);
    else
        cl_null(l);
    cl_char(l, '\n');
    if (l->failed)
        return -1;

    sha256_update(&j->fp, l->b, v3 ? l->n : v2_len);
    if (!v3)
        sha256_update(&j->fp, "\n", 1);
    errno = 0;
    if ((fputs(j->invoice_no, j->spool) == EOF ||
         putc('\t', j->spool) == EOF ||
         fwrite(l->b, 1, l->n, j->spool) != l->n) && j->spool_errno == 0)
        j->spool_errno = errno != 0 ? errno : EIO;
    return 0;
}

/* Add a rated call to the invoice's reconciliation with the provider's
 * charge (columns 6 and 7 of the calls query): compared when charged in
 * the invoice's currency, differing from 0.01 on. */
static void reconcile(job *j, const PGresult *row, const rating_result *r)
{
    const char *charge = db_value(row, 0, 6), *cur = db_value(row, 0, 7);
    int64_t pc;

    if (charge == NULL)
        return;
    j->charged++;
    if (cur == NULL || strcmp(cur, j->tenant->currency) != 0)
        return;
    if (money_parse(charge, &pc) != AC_OK) {
        j->bad_charge = 1;      /* numeric(16,4) always parses */
        return;
    }
    j->compared++;
    j->provider_total += pc;
    j->acbill_total += r->amount;
    j->differing += money_cent_apart(pc, r->amount);
}

/* Stream the tenant's calls of the period in (start_time, usage_id) order
 * through the rating engine into the spool.  The ORDER BY names the
 * table's columns (c.): unqualified, it would mean the text columns of the
 * same names in the select list, and the server would sort the month as
 * text instead of reading it in the order of dialout_calls_tenant_start. */
static ac_status stream_calls(PGconn *conn, job *j, char *err)
{
    const char *p[] = { j->tenant->tenant_id, j->start, j->end,
                        j->tenant->time_zone };
    ac_status rc = AC_OK;
    PGresult *res;
    int32_t seq = 0;

    if (!db_send_query(conn,
            "SELECT usage_id::text, start_time::text,"
            "       (start_time AT TIME ZONE $4)::text,"
            "       organizer_id, destination_number, duration_seconds,"
            "       provider_charge::text, provider_currency,"
            "       call_id, conference_id, upper(destination_country),"
            "       provider_capability"
            " FROM usage.dialout_calls c"
            " WHERE tenant_id = $1 AND start_time >= $2::timestamptz"
            "   AND start_time < $3::timestamptz"
            " ORDER BY c.start_time, c.usage_id", 4, p) ||
        !PQsetSingleRowMode(conn))
        return ac_fail(err, AC_EUNAVAIL, "database: %s",
                       PQerrorMessage(conn));

    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE && rc == AC_OK) {
            rating_call c;
            rating_result r;
            const char *dur = db_value(res, 0, 5);
            c.usage_id = PQgetvalue(res, 0, 0);
            c.organizer_id = db_value(res, 0, 3);
            c.number = db_value(res, 0, 4);
            c.has_duration = dur != NULL;
            c.duration_seconds = dur ? (int32_t)strtol(dur, NULL, 10) : 0;
            c.call_id = db_value(res, 0, 8);
            c.conference_id = db_value(res, 0, 9);
            if (parse_utc(PQgetvalue(res, 0, 1), &c.start_us) != 0) {
                rc = ac_fail(err, AC_EDATA, "call %s: unusable start time "
                             "%s", c.usage_id, PQgetvalue(res, 0, 1));
            } else {
                rc = rating_tenant_rate(j->rt, &c, &r, err);
                if (rc == AC_OK && spool_call(j, ++seq, res, &c, &r) != 0)
                    rc = ac_fail(err, AC_EOSERR, "out of memory");
                if (rc == AC_OK)
                    reconcile(j, res, &r);
                j->no_organizer += rating_id_blank(c.organizer_id);
                j->no_rate += r.reason != NULL &&
                              strcmp(r.reason, "NO_RATE") == 0;
            }
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK &&
                   rc == AC_OK) {
            /* Rows may have come before the error: the spool is
             * discarded with the transaction. */
            rc = db_status_of(conn, res);
            ac_fail(err, rc, "database: %s", PQresultErrorMessage(res));
        }
        PQclear(res);
    }
    if (rc == AC_OK) {
        /* The errno of the failure itself: by now errno may read 0. */
        errno = 0;
        if (fflush(j->spool) != 0 && j->spool_errno == 0)
            j->spool_errno = errno != 0 ? errno : EIO;
        if (ferror(j->spool) && j->spool_errno == 0)
            j->spool_errno = EIO;
        if (j->spool_errno != 0)
            rc = ac_fail(err, AC_EIO, "cannot write the spool file: %s",
                         strerror(j->spool_errno));
    }
    return rc;
}

/* ------------------------------------------------------------ writing */

static void collect_findings(job *j)
{
    const rating_organizer *orgs;
    int n = rating_tenant_organizers(j->rt, &orgs);
    char when[40];

    for (int i = 0; i < n; i++) {
        if (!orgs[i].addon_without_prereq)
            continue;
        utc_text(orgs[i].first_issue_us, when, sizeof when);
        add_call_finding(j, "ADDON_WITHOUT_PREREQUISITE", orgs[i].id,
                    orgs[i].first_issue_usage_id,
                    "%s holds the unlimited US/Canada dial-out add-on "
                    "without an Audio Conferencing licence (its "
                    "prerequisite), first at a call on %s; those calls "
                    "are rejected as not licensed.", orgs[i].id, when);
    }
    for (int i = 0; i < n; i++) {
        if (!orgs[i].fair_use_review)
            continue;
        add_finding(j, "FAIR_USE_REVIEW", orgs[i].id,
                    "%s made %" PRId32 " free US/Canada minutes under the "
                    "unlimited add-on this month, more than the fair-use "
                    "threshold of %" PRId32 ": worth a review.",
                    orgs[i].id, orgs[i].exempt_minutes,
                    j->ctx->fair_use_minutes);
    }
}

static void fingerprint_summary(job *j)
{
    const rating_totals *t = rating_tenant_totals(j->rt);
    const rating_line *lines;
    int n = rating_tenant_lines(j->rt, &lines);

    sha256_update(&j->fp, "\nsummary\t", 9);
    fp_text(j, j->tenant->name);
    fp_text(j, j->tenant->currency);
    fp_text(j, j->tenant->time_zone);
    fp_long(j, j->seats);
    fp_text(j, j->seats_basis);
    fp_long(j, t->pool_minutes);
    fp_long(j, j->minor_unit);
    fp_text(j, j->tax_rate_text);
    /* Version 3's figures, where they differ from what version 2 implied
     * (so that version 2's statements keep their fingerprints): a US/CA
     * pool, a price plan or adjustment, a tax category the rate alone
     * does not give.  A change of any of them is a new revision (4.1). */
    if (j->usca_seats != 0 || t->usca_pool_used != 0) {
        sha256_update(&j->fp, "usca\t", 5);
        fp_long(j, j->usca_seats);
        fp_long(j, t->usca_pool_minutes);
        fp_long(j, t->usca_pool_used);
        fp_long(j, t->pool_used);
    }
    if (strcmp(j->price_plan, RATING_STANDARD_PLAN) != 0 ||
        j->rate_adjustment != 0) {
        sha256_update(&j->fp, "price\t", 6);
        fp_text(j, j->price_plan);
        fp_long(j, j->rate_adjustment);
    }
    if (j->tax_category_explicit) {
        sha256_update(&j->fp, "category\t", 9);
        fp_text(j, j->tax_category);
    }
    fp_long(j, t->subtotal);
    fp_long(j, t->tax);
    fp_long(j, t->total);
    for (int i = 0; i < n; i++) {
        fp_text(j, lines[i].country);
        fp_text(j, rating_kind_name(lines[i].kind));
        fp_long(j, lines[i].per_minute);
        fp_long(j, lines[i].connection_fee);
        fp_long(j, lines[i].exact);
    }
    for (int i = 0; i < j->nfindings; i++) {
        /* A profile added later with the same resolved tax is no new
         * revision (docs/billing-rules.md 4.1: buyer details alone make none): its
         * absence is reported, not an input. */
        if (strcmp(j->findings[i].code, "BILLING_PROFILE_MISSING") == 0)
            continue;
        fp_text(j, j->findings[i].code);
        fp_text(j, j->findings[i].subject);
        fp_text(j, j->findings[i].detail);
    }
    sha256_final_hex(&j->fp, j->fingerprint);
}

/* COPY len bytes of COPY text into the table named by copy_sql. */
static ac_status copy_text(PGconn *conn, const char *copy_sql,
                           const copy_line *text, char *err)
{
    if (text->failed)
        return ac_fail(err, AC_EOSERR, "out of memory");
    ac_status rc = db_copy_begin(conn, copy_sql, err);
    if (rc != AC_OK)
        return rc;
    if (text->n > 0)
        rc = db_copy_put(conn, text->b, text->n, err);
    ac_status end = db_copy_end(conn, rc == AC_OK ? NULL : "aborted",
                                rc == AC_OK ? err : NULL);
    return rc != AC_OK ? rc : end;
}

/* The organizers of the invoice, from the rating, in one COPY. */
static ac_status copy_organizers(PGconn *conn, job *j, char *err)
{
    const rating_organizer *o;
    int n = rating_tenant_organizers(j->rt, &o);
    copy_line t = { 0 };

    for (int i = 0; i < n; i++) {
        const int32_t v[] = { o[i].calls, o[i].rejected_calls, o[i].minutes,
                              o[i].exempt_minutes, o[i].pool_minutes,
                              o[i].billed_minutes };
        cl_str(&t, j->invoice_no);
        cl_char(&t, '\t');
        cl_field(&t, o[i].id);
        for (size_t k = 0; k < sizeof v / sizeof *v; k++) {
            cl_char(&t, '\t');
            cl_i64(&t, v[k]);
        }
        cl_char(&t, '\t');
        cl_money4(&t, o[i].amount);
        cl_str(&t, o[i].addon_held ? "\tt" : "\tf");
        cl_str(&t, o[i].fair_use_review ? "\tt\n" : "\tf\n");
    }
    /* Calls without an organizer are all rejected (NO_ORGANIZER or an
     * earlier rule). */
    if (j->no_organizer > 0) {
        cl_str(&t, j->invoice_no);
        cl_str(&t, "\t\\N\t");
        cl_i64(&t, j->no_organizer);
        cl_char(&t, '\t');
        cl_i64(&t, j->no_organizer);
        cl_str(&t, "\t0\t0\t0\t0\t0.0000\tf\tf\n");
    }
    ac_status rc = copy_text(conn, "COPY billing.invoice_organizers"
                             " (invoice_no, organizer_id, calls,"
                             " rejected_calls, minutes, exempt_minutes,"
                             " pool_minutes, billed_minutes, amount,"
                             " addon_held, fair_use_review) FROM STDIN",
                             &t, err);
    cl_free(&t);
    return rc;
}

static ac_status insert_invoice(PGconn *conn, job *j, char *err)
{
    const rating_totals *t = rating_tenant_totals(j->rt);
    char rev[16], seats[16], pool[16], used[16], exempt[16], billed[16],
         calls[16], oc[OUTCOME_COUNT][16], total[32], run[32],
         subtotal[32], tax[32], minor[8];

    snprintf(rev, sizeof rev, "%d", j->latest_revision + 1);
    snprintf(seats, sizeof seats, "%d", j->seats);
    snprintf(pool, sizeof pool, "%" PRId32, t->pool_minutes);
    snprintf(used, sizeof used, "%" PRId32, t->pool_used);
    snprintf(exempt, sizeof exempt, "%" PRId32, t->exempt_minutes);
    snprintf(billed, sizeof billed, "%" PRId32, t->billed_minutes);
    snprintf(calls, sizeof calls, "%" PRId32, t->calls);
    for (int o = 0; o < OUTCOME_COUNT; o++)
        snprintf(oc[o], sizeof oc[o], "%" PRId32, t->outcomes[o]);
    money_format_minor(t->total, j->minor_unit, total, sizeof total);
    money_format_minor(t->subtotal, j->minor_unit, subtotal, sizeof subtotal);
    money_format_minor(t->tax, j->minor_unit, tax, sizeof tax);
    snprintf(minor, sizeof minor, "%d", j->minor_unit);
    snprintf(run, sizeof run, "%lld", j->ctx->run_id);
    char useats[16], upool[16], uused[16];
    snprintf(useats, sizeof useats, "%d", j->usca_seats);
    snprintf(upool, sizeof upool, "%" PRId32, t->usca_pool_minutes);
    snprintf(uused, sizeof uused, "%" PRId32, t->usca_pool_used);

    const char *p[] = {
        j->invoice_no, j->tenant->tenant_id, j->tenant->name,
        j->ctx->period_date, rev,
        j->latest_revision > 0 ? j->latest_invoice : NULL,
        j->tenant->currency, j->tenant->time_zone, j->start, j->end,
        seats, j->seats_basis, pool, used, exempt, billed, calls,
        oc[OUTCOME_REJECTED], oc[OUTCOME_ZERO], oc[OUTCOME_EXEMPT],
        oc[OUTCOME_POOL], oc[OUTCOME_SPLIT], oc[OUTCOME_BILLED], total,
        j->fingerprint, j->ctx->run_id > 0 ? run : NULL, subtotal, tax,
        j->tax_rate_text, minor, useats, upool, uused, j->price_plan,
        j->rate_adjustment_text
    };
    ac_status rc = db_exec_params(conn,
        "INSERT INTO billing.invoices (invoice_no, tenant_id, tenant_name,"
        " period, revision, supersedes, currency, time_zone, period_start,"
        " period_end, seats, seats_basis, pool_minutes, pool_used_minutes,"
        " exempt_minutes, billed_minutes, calls, rejected_calls, zero_calls,"
        " exempt_calls, pool_calls, split_calls, billed_calls, total,"
        " fingerprint, run_id, subtotal, tax, tax_rate, minor_unit,"
        " usca_seats, usca_pool_minutes, usca_pool_used_minutes,"
        " price_plan, rate_adjustment)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
        " $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,"
        " $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35)",
        35, p, err);
    if (rc != AC_OK)
        return rc;

    char charged[16], compared[16], differing[16], prov[32], ours[32];
    snprintf(charged, sizeof charged, "%" PRId32, j->charged);
    snprintf(compared, sizeof compared, "%" PRId32, j->compared);
    snprintf(differing, sizeof differing, "%" PRId32, j->differing);
    money_format4(j->provider_total, prov, sizeof prov);
    money_format4(j->acbill_total, ours, sizeof ours);
    const char *rp[] = { j->invoice_no, charged, compared, prov, ours,
                         differing };
    rc = db_exec_params(conn,
        "INSERT INTO billing.invoice_reconciliation (invoice_no,"
        " charged_calls, compared_calls, provider_total, acbill_total,"
        " differing_calls) VALUES ($1, $2, $3, $4, $5, $6)", 6, rp, err);
    if (rc != AC_OK)
        return rc;

    /* The lines in one COPY: a tenant can have hundreds. */
    const rating_line *lines;
    int n = rating_tenant_lines(j->rt, &lines);
    copy_line text = { 0 };
    for (int i = 0; i < n; i++) {
        char am[32];
        money_format_minor(lines[i].amount, j->minor_unit, am, sizeof am);
        cl_str(&text, j->invoice_no);
        cl_char(&text, '\t');
        cl_i64(&text, i + 1);
        cl_char(&text, '\t');
        cl_str(&text, lines[i].country);
        cl_char(&text, '\t');
        cl_str(&text, rating_kind_name(lines[i].kind));
        cl_char(&text, '\t');
        cl_money4(&text, lines[i].per_minute);
        cl_char(&text, '\t');
        cl_money4(&text, lines[i].connection_fee);
        cl_char(&text, '\t');
        cl_i64(&text, lines[i].calls);
        cl_char(&text, '\t');
        cl_i64(&text, lines[i].minutes);
        cl_char(&text, '\t');
        cl_money4(&text, lines[i].exact);
        cl_char(&text, '\t');
        cl_str(&text, am);
        cl_char(&text, '\n');
    }
    rc = copy_text(conn, "COPY billing.invoice_lines (invoice_no, line_no,"
                   " country, kind, per_minute, connection_fee, calls, minutes,"
                   " exact_amount, amount) FROM STDIN", &text, err);
    cl_free(&text);
    if (rc == AC_OK)
        rc = copy_organizers(conn, j, err);
    return rc;
}

static ac_status copy_rated_calls(PGconn *conn, job *j, char *err)
{
    char buf[65536];
    size_t n;
    ac_status rc = db_copy_begin(conn,
        /* The spool's columns are the workbook writer's too (report.h). */
        "COPY billing.rated_calls (" REPORT_SPOOL_COLUMNS ") FROM STDIN",
        err);
    if (rc != AC_OK)
        return rc;
    rewind(j->spool);
    while (rc == AC_OK && (n = fread(buf, 1, sizeof buf, j->spool)) > 0)
        rc = db_copy_put(conn, buf, n, err);
    if (rc == AC_OK && ferror(j->spool))
        rc = ac_fail(err, AC_EIO, "cannot read the spool file");
    ac_status end = db_copy_end(conn, rc == AC_OK ? NULL : "spool failed",
                                rc == AC_OK ? err : NULL);
    return rc != AC_OK ? rc : end;
}

static ac_status insert_findings(PGconn *conn, job *j, char *err)
{
    char seq[16];
    copy_line t = { 0 };
    for (int i = 0; i < j->nfindings; i++) {
        cl_str(&t, j->invoice_no);
        cl_char(&t, '\t');
        cl_i64(&t, i + 1);
        cl_char(&t, '\t');
        cl_field(&t, j->findings[i].code);
        cl_char(&t, '\t');
        cl_field(&t, j->findings[i].subject);
        cl_char(&t, '\t');
        cl_field(&t, j->findings[i].detail);
        cl_char(&t, '\t');
        cl_field(&t, j->findings[i].usage_id[0] ? j->findings[i].usage_id
                                                : NULL);
        cl_char(&t, '\n');
    }
    ac_status rc = copy_text(conn, "COPY billing.findings (invoice_no, seq,"
                             " code, subject, detail, usage_id) FROM STDIN",
                             &t, err);
    cl_free(&t);
    if (rc != AC_OK)
        return rc;
    /* Every rejected call is a finding with its reason, and every call
     * whose provider names another destination country than acbill's is
     * one too: built from the rated calls just copied, so no call is held
     * in memory.  The details are sentences for finance (docs/billing-rules.md 3). */
    snprintf(seq, sizeof seq, "%d", j->nfindings);
    const char *p[] = { j->invoice_no, seq, j->tenant->currency };
    return db_exec_params(conn,
        "INSERT INTO billing.findings (invoice_no, seq, code, subject,"
        " detail, usage_id)"
        " SELECT invoice_no, $2::int + row_number() OVER (ORDER BY seq, o),"
        "  code, 'call ' || usage_id, detail, usage_id FROM ("
        " SELECT invoice_no, seq, 1 AS o, reason AS code, usage_id,"
        "  CASE reason"
        "   WHEN 'INVALID_DURATION' THEN 'The call''s duration ('"
        "        || coalesce(duration_seconds || ' s', 'none given')"
        "        || ') is missing, negative or longer than 30 hours, the"
        " longest a Teams meeting runs: the call is not billed.'"
        "   WHEN 'INVALID_NUMBER' THEN 'The dialled number '"
        "        || coalesce('''' || destination_number || '''', '(none)')"
        "        || ' is not an international number (+ and 6 to 15 digits,"
        " of which the last 1 to 4 may be masked with *): the call is not"
        " billed.'"
        "   WHEN 'NO_ORGANIZER' THEN 'The call names no meeting organizer,"
        " so no licence can cover it: the call is not billed.'"
        "   WHEN 'DUPLICATE' THEN 'The call repeats call ' || duplicate_of"
        "        || ' (same call id, conference, organizer, number, start"
        " and duration): it is counted once.'"
        "   WHEN 'UNKNOWN_DESTINATION' THEN 'No destination is known for '"
        "        || destination_number || ': the call is not billed.'"
        "   WHEN 'MASKED_AMBIGUOUS' THEN 'The number ' || destination_number"
        "        || ' is masked, and its hidden digits decide its kind or"
        " rate: the call is not billed.'"
        "   WHEN 'ORGANIZER_NOT_LICENSED' THEN 'The organizer '"
        "        || organizer_id || ' held no Audio Conferencing licence at"
        " the call (' || to_char(start_time AT TIME ZONE 'UTC',"
        "                   'YYYY-MM-DD HH24:MI:SS') || ' UTC): the call is"
        " not billed.'"
        "   WHEN 'NO_RATE' THEN 'There is no ' || $3 || ' rate for '"
        "        || destination_number || ' (' || country || ', ' || kind"
        "        || ') at ' || to_char(start_time AT TIME ZONE 'UTC',"
        "                   'YYYY-MM-DD HH24:MI:SS') || ' UTC: the call is"
        " not billed until a rate is added.'"
        "   ELSE reason END AS detail"
        " FROM billing.rated_calls WHERE invoice_no = $1"
        "  AND outcome = 'rejected'"
        " UNION ALL"
        " SELECT invoice_no, seq, 2, 'DESTINATION_COUNTRY_MISMATCH',"
        "  usage_id, 'The provider says the call to ' || destination_number"
        "        || ' went to ' || provider_country || ', acbill rates it as '"
        "        || country || ' (' || kind || ').'"
        " FROM billing.rated_calls WHERE invoice_no = $1"
        "  AND provider_country IS NOT NULL AND country IS NOT NULL"
        "  AND provider_country <> country) AS f", 3, p, err);
}

/* Conservation once more, in SQL, against what was written: as many rated
 * calls as input calls of the period in this snapshot (the primary key
 * (invoice_no, usage_id) makes them distinct, and they came from that
 * input), and the money adds up. */
static ac_status verify_ledger(PGconn *conn, job *j, char *err)
{
    const rating_totals *t = rating_tenant_totals(j->rt);
    const char *p[] = { j->invoice_no, j->tenant->tenant_id, j->start,
                        j->end, j->tenant->currency };
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT r.n, (SELECT count(*) FROM usage.dialout_calls"
        "         WHERE tenant_id = $2 AND start_time >= $3::timestamptz"
        "           AND start_time < $4::timestamptz),"
        "       r.amount::text, l.exact::text, l.amount::text,"
        "       (SELECT total FROM billing.invoices"
        "         WHERE invoice_no = $1)::text,"
        "       r.charged, r.compared, r.provider::text, r.ours::text,"
        "       r.differing, r.zone_used, r.usca_used"
        " FROM (SELECT count(*) AS n, coalesce(sum(amount), 0) AS amount,"
        "         count(provider_charge) AS charged,"
        "         count(*) FILTER (WHERE provider_charge IS NOT NULL"
        "           AND provider_currency = $5) AS compared,"
        "         coalesce(sum(provider_charge)"
        "                  FILTER (WHERE provider_currency = $5), 0)"
        "           AS provider,"
        "         coalesce(sum(amount) FILTER (WHERE provider_currency = $5"
        "           AND provider_charge IS NOT NULL), 0) AS ours,"
        "         count(*) FILTER (WHERE provider_currency = $5"
        "           AND abs(provider_charge - amount) >= 0.01) AS differing,"
        "         coalesce(sum(pool_minutes - usca_pool_minutes), 0)"
        "           AS zone_used,"
        "         coalesce(sum(usca_pool_minutes), 0) AS usca_used"
        "         FROM billing.rated_calls WHERE invoice_no = $1) r,"
        "      (SELECT coalesce(sum(exact_amount), 0) AS exact,"
        "              coalesce(sum(amount), 0) AS amount"
        "         FROM billing.invoice_lines WHERE invoice_no = $1) l",
        5, p, &res, err);
    if (rc != AC_OK)
        return rc;
    long rated = atol(PQgetvalue(res, 0, 0));
    long input = atol(PQgetvalue(res, 0, 1));
    int64_t calls_sum = 0, lines_exact = 0, lines_sum = 0, total = 0;
    int64_t provider = 0, ours = 0;
    int bad = money_parse(PQgetvalue(res, 0, 2), &calls_sum) != AC_OK ||
              money_parse(PQgetvalue(res, 0, 3), &lines_exact) != AC_OK ||
              money_parse(PQgetvalue(res, 0, 4), &lines_sum) != AC_OK ||
              money_parse(PQgetvalue(res, 0, 5), &total) != AC_OK ||
              money_parse(PQgetvalue(res, 0, 8), &provider) != AC_OK ||
              money_parse(PQgetvalue(res, 0, 9), &ours) != AC_OK;
    long charged = atol(PQgetvalue(res, 0, 6));
    long compared = atol(PQgetvalue(res, 0, 7));
    long differing = atol(PQgetvalue(res, 0, 10));
    long zone_used = atol(PQgetvalue(res, 0, 11));
    long usca_used = atol(PQgetvalue(res, 0, 12));
    PQclear(res);
    if (bad)
        return ac_fail(err, AC_EINTERNAL, "conservation: unreadable sums");
    if (rated != t->calls || input != t->calls)
        return ac_fail(err, AC_EDATA, "conservation: %ld input calls, %ld "
                       "rated, %" PRId32 " streamed", input, rated, t->calls);
    if (zone_used != t->pool_used || usca_used != t->usca_pool_used ||
        t->pool_used > t->pool_minutes ||
        t->usca_pool_used > t->usca_pool_minutes)
        return ac_fail(err, AC_EDATA, "conservation: the calls drew %ld "
                       "Zone A and %ld US/CA pool minutes, the statement "
                       "says %" PRId32 " of %" PRId32 " and %" PRId32 " of %"
                       PRId32, zone_used, usca_used, t->pool_used,
                       t->pool_minutes, t->usca_pool_used,
                       t->usca_pool_minutes);
    if (calls_sum != lines_exact || lines_sum != t->subtotal ||
        total != t->total || t->subtotal + t->tax != t->total)
        return ac_fail(err, AC_EDATA, "conservation: calls, lines, "
                       "subtotal, tax and total disagree");
    if (j->bad_charge || charged != j->charged || compared != j->compared ||
        differing != j->differing || provider != j->provider_total ||
        ours != j->acbill_total)
        return ac_fail(err, AC_EDATA, "conservation: the reconciliation "
                       "with the provider does not add up");
    return AC_OK;
}

static ac_status record_tenant(PGconn *conn, const bill_context *ctx,
                               const char *tenant_id, const char *status,
                               const char *invoice_no, long calls,
                               const char *message, char *err)
{
    char run[32], ncalls[32];
    if (ctx->run_id <= 0)
        return AC_OK;
    snprintf(run, sizeof run, "%lld", ctx->run_id);
    snprintf(ncalls, sizeof ncalls, "%ld", calls);
    const char *p[] = { run, tenant_id, status, invoice_no,
                        calls >= 0 ? ncalls : NULL, message };
    return db_exec_params(conn,
        "INSERT INTO billing.run_tenants (run_id, tenant_id, status,"
        " invoice_no, calls, message) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (run_id, tenant_id) DO UPDATE SET status = $3,"
        " invoice_no = $4, calls = $5, message = $6, finished_at = now()",
        6, p, err);
}

/* ------------------------------------------------------------- public */

static void job_free(job *j)
{
    rating_tenant_free(j->rt);
    rating_licences_free(j->lic);
    if (j->spool != NULL)
        fclose(j->spool);
    free(j->spool_buf);
    if (j->spool_path[0] != '\0')      /* not handed to the publisher */
        publisher_spool_release(j->ctx->pub, j->spool_path);
    cl_free(&j->line);
    free(j->findings);
}

/* The spool file of the tenant's rated calls.  With a publisher, one of
 * its reusable spools (j->spool_path), which it reads after commit;
 * otherwise an anonymous file in TMPDIR that goes with the process. */
static FILE *open_spool(job *j)
{
    publisher *pub = j->ctx->pub;
    FILE *f = NULL;

    if (pub != NULL) {
        char why[AC_ERR_MAX];
        if (publisher_spool(pub, &f, j->spool_path, why) != AC_OK) {
            ac_error("%s", why);
            j->spool_path[0] = '\0';
            return NULL;
        }
    } else {
        char path[PATH_MAX];
        const char *tmp = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/.acbill-spool-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        int fd = mkstemp(path);
        if (fd < 0)
            return NULL;
        unlink(path);
        f = fdopen(fd, "w+");
        if (f == NULL) {
            close(fd);
            return NULL;
        }
    }
    if ((j->spool_buf = malloc(SPOOL_BUFFER)) != NULL)
        /* A call is ~250 bytes: not one write(2) per 16 calls.  (glibc
         * ignores the size unless it is given the buffer.) */
        setvbuf(f, j->spool_buf, _IOFBF, SPOOL_BUFFER);
    return f;
}

/* The draft workbook of a period in its grace period (docs/billing-rules.md 4.2), from
 * the revision's rows in this open transaction: <out>/<YYYY-MM>/drafts/
 * <tenant>-<YYYY-MM>-DRAFT.xlsx, written under a temporary name and
 * renamed, so each run replaces it whole. */
static ac_status write_draft(PGconn *conn, job *j, bill_result *result,
                             char *err)
{
    char dir[PATH_MAX], name[160], file[200];
    outfile o;
    size_t n;

    ac_status rc = outfile_mkdir(j->ctx->spool_dir, "drafts", dir, err);
    if (rc != AC_OK)
        return rc;
    bill_invoice_no(j->tenant->tenant_id, j->ctx->period, 1, name,
                    sizeof name);
    n = strlen(name);
    if (n > 3 && strcmp(name + n - 3, "-R1") == 0)
        name[n - 3] = '\0';
    snprintf(file, sizeof file, "%s-DRAFT.xlsx", name);
    snprintf(result->draft_path, sizeof result->draft_path, "%s/%s", dir,
             file);
    fflush(j->spool);
    /* A fresh private directory for libxlsxwriter (it opens a path with
     * fopen), then a rename: nothing planted in drafts/ is followed. */
    rc = outfile_open_path(&o, dir, file, err);
    report_invoice_options opt = {
        .spool_path = j->spool_path[0] ? j->spool_path : NULL,
        .tmpdir = o.privdir, .draft = 1
    };
    if (rc == AC_OK)
        rc = report_invoice_workbook_opt(conn, j->invoice_no, o.temp, &opt,
                                         err);
    if (rc == AC_OK)
        rc = outfile_commit(&o, err);
    else
        outfile_discard(&o);
    if (rc != AC_OK)
        result->draft_path[0] = '\0';
    return rc;
}

/* 1 when the tenant has a call within 14 hours of the period's UTC
 * month, or a statement of the period (or when that cannot be told). */
static int has_usage_near(PGconn *conn, job *j)
{
    PGresult *res;
    const char *p[] = { j->tenant->tenant_id, j->ctx->period_date };
    if (db_query(conn,
            "SELECT EXISTS (SELECT 1 FROM usage.dialout_calls"
            "  WHERE tenant_id = $1"
            "    AND start_time >= ($2::date::timestamp AT TIME ZONE 'UTC')"
            "        - interval '14 hours'"
            "    AND start_time < (($2::date + interval '1 month')"
            "        AT TIME ZONE 'UTC') + interval '14 hours')"
            " OR EXISTS (SELECT 1 FROM billing.invoices"
            "  WHERE tenant_id = $1 AND period = $2::date)", 2, p, &res,
            NULL) != AC_OK)
        return 1;
    int any = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return any;
}

static ac_status bill_in_transaction(PGconn *conn, job *j,
                                     bill_result *result, char *err)
{
    const bill_context *ctx = j->ctx;
    ac_status rc;

    rc = check_time_zone(conn, j, err);
    if (rc == AC_EDATA && !has_usage_near(conn, j)) {
        /* A tenant that fails its checks is reported only where it has
         * usage: with no call within 14 hours of the UTC month (its own
         * month cannot be known) and no statement, nothing to bill. */
        result->outcome = BILL_NO_USAGE;
        return AC_OK;
    }
    if (rc == AC_OK)
        rc = read_bounds(conn, j, err);
    if (rc == AC_OK)
        rc = read_grace(conn, j, err);
    if (rc == AC_OK)
        rc = read_latest(conn, j, err);
    if (rc == AC_OK && j->latest_revision == 0) {
        /* Nothing ever billed and no call: nothing to bill. */
        int any = 0;
        rc = has_calls(conn, j, &any, err);
        if (rc == AC_OK && !any) {
            result->outcome = BILL_NO_USAGE;
            return AC_OK;
        }
    }
    if (rc == AC_OK && !j->draft)
        rc = read_digest(conn, j, err);
    if (rc == AC_OK && !j->draft && j->latest_revision > 0) {
        int same = 0;
        rc = inputs_unchanged(conn, j, &same, err);
        if (rc == AC_OK && same) {
            /* The cheap check: nothing to rate. */
            result->outcome = BILL_UNCHANGED;
            result->revision = j->latest_revision;
            result->calls = (int32_t)atol(j->latest_calls);
            snprintf(result->total, sizeof result->total, "%s",
                     j->latest_total);
            snprintf(result->invoice_no, sizeof result->invoice_no, "%s",
                     j->latest_invoice);
            return AC_OK;
        }
    }
    if (rc == AC_OK)
        rc = read_money_profile(conn, j, err);
    if (rc == AC_OK)
        rc = read_seats(conn, j, err);
    if (rc == AC_OK)
        rc = read_licences(conn, j, err);
    if (rc != AC_OK)
        return rc;

    bill_invoice_no(j->tenant->tenant_id, ctx->period,
                    j->latest_revision + 1, j->invoice_no,
                    sizeof j->invoice_no);
    j->rt = rating_tenant_new(ctx->ref, j->lic, j->tenant->currency,
                              60 * j->seats, ctx->fair_use_minutes);
    j->spool = open_spool(j);
    if (j->rt == NULL || j->spool == NULL)
        return ac_fail(err, AC_EOSERR, "cannot set up rating: %s",
                       strerror(errno));
    rc = rating_tenant_set_money(j->rt, j->minor_unit, j->tax_rate, err);
    if (rc == AC_OK)
        rc = rating_tenant_set_usca_pool(j->rt, 60 * j->usca_seats, err);
    if (rc == AC_OK)        /* docs/billing-rules.md 3, tenant checks of version 3 */
        rc = rating_tenant_set_price(j->rt, j->price_plan,
                                     j->rate_adjustment, err);
    if (rc != AC_OK)
        return rc;
    sha256_init(&j->fp);
    sha256_update(&j->fp, "acbill-fingerprint-2\n", 21);

    rc = stream_calls(conn, j, err);
    if (rc == AC_OK && j->no_rate > 0 &&
        !rating_ref_has_currency(ctx->ref, j->tenant->currency))
        /* docs/billing-rules.md 3, tenant checks: calls need a rate, and the currency has
         * none at all: a setup error, not thousands of NO_RATE calls. */
        rc = ac_fail(err, AC_EDATA, "%" PRId32 " calls need a rate, and "
                     "ref.rates has no rate at all in %s", j->no_rate,
                     j->tenant->currency);
    if (rc == AC_OK)
        rc = rating_tenant_finish(j->rt, err);
    if (rc != AC_OK)
        return rc;
    collect_findings(j);
    if (j->findings_oom)
        return ac_fail(err, AC_EOSERR, "out of memory for the findings");
    fingerprint_summary(j);

    const rating_totals *t = rating_tenant_totals(j->rt);
    result->calls = t->calls;
    money_format_minor(t->total, j->minor_unit, result->total,
                       sizeof result->total);
    if (!j->draft && j->latest_revision > 0 &&
        strcmp(j->fingerprint, j->latest_fp) == 0) {
        result->outcome = BILL_UNCHANGED;
        result->revision = j->latest_revision;
        snprintf(result->invoice_no, sizeof result->invoice_no, "%s",
                 j->latest_invoice);
        return AC_OK;
    }

    result->outcome = j->draft ? BILL_DRAFT : BILL_ISSUED;
    result->revision = j->latest_revision + 1;
    snprintf(result->invoice_no, sizeof result->invoice_no, "%s",
             j->invoice_no);
    rc = insert_invoice(conn, j, err);
    if (rc == AC_OK)
        rc = copy_rated_calls(conn, j, err);
    if (rc == AC_OK)
        rc = insert_findings(conn, j, err);
    if (rc == AC_OK)
        rc = verify_ledger(conn, j, err);
    if (rc != AC_OK || j->draft)
        return rc;              /* a draft is rolled back by the caller */
    rc = record_inputs(conn, j, j->invoice_no, err);
    if (rc == AC_OK)
        rc = record_tenant(conn, ctx, j->tenant->tenant_id, "issued",
                           j->invoice_no, t->calls, NULL, err);
    return rc;
}

ac_status bill_load_reference(PGconn *conn, rating_ref *ref, char *err)
{
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT prefix, country, kind FROM ref.destinations", 0, NULL,
        &res, err);
    for (int i = 0; rc == AC_OK && i < PQntuples(res); i++)
        rc = rating_ref_add_destination(ref, PQgetvalue(res, i, 0),
                                        db_value(res, i, 1),
                                        db_value(res, i, 2), err);
    PQclear(res);
    if (rc != AC_OK)
        return rc;
    /* The job's length rows (migration 013), after their prefixes. */
    rc = db_query(conn,
        "SELECT prefix, digits, country, kind FROM ref.destination_lengths",
        0, NULL, &res, err);
    for (int i = 0; rc == AC_OK && i < PQntuples(res); i++)
        rc = rating_ref_add_destination_length(ref, PQgetvalue(res, i, 0),
                                               atoi(PQgetvalue(res, i, 1)),
                                               db_value(res, i, 2),
                                               db_value(res, i, 3), err);
    PQclear(res);
    if (rc != AC_OK)
        return rc;
    rc = db_query(conn, "SELECT country FROM ref.zones WHERE zone = 'A'",
                  0, NULL, &res, err);
    for (int i = 0; rc == AC_OK && i < PQntuples(res); i++)
        rc = rating_ref_add_zone_a(ref, PQgetvalue(res, i, 0), err);
    PQclear(res);
    if (rc != AC_OK)
        return rc;
    rc = db_query(conn,
        /* docs/billing-rules.md 2: valid_to NULL or infinity is open, valid_from
         * -infinity is always; both become the engine's open bounds.  A
         * row that holds at no instant (valid_from infinity, valid_to
         * -infinity) prices nothing, but counts for its plan's existence
         * and the masked ambiguity (docs/billing-rules.md 3: "whatever its plan or
         * validity"). */
        "SELECT currency, prefix, per_minute::text,"
        "       coalesce(connection_fee, 0)::text,"
        "       CASE WHEN isfinite(valid_from)"
        "            THEN (extract(epoch FROM valid_from) * 1000000)::int8"
        "       END,"
        "       CASE WHEN isfinite(valid_to)"
        "            THEN (extract(epoch FROM valid_to) * 1000000)::int8"
        "       END, plan,"
        "       valid_from IS NOT NULL AND valid_from < 'infinity'"
        "       AND (valid_to IS NULL OR valid_to > '-infinity')"
        " FROM ref.rates"
        " ORDER BY plan, currency, prefix, valid_from", 0, NULL, &res, err);
    for (int i = 0; rc == AC_OK && i < PQntuples(res); i++) {
        int64_t pm, fee;
        const char *to = db_value(res, i, 5);
        if (strcmp(PQgetvalue(res, i, 7), "t") != 0) {
            rc = rating_ref_add_rate_prefix(ref, PQgetvalue(res, i, 6),
                                            PQgetvalue(res, i, 0),
                                            PQgetvalue(res, i, 1), err);
            continue;
        }
        if (money_parse(PQgetvalue(res, i, 2), &pm) != AC_OK ||
            money_parse(PQgetvalue(res, i, 3), &fee) != AC_OK) {
            rc = ac_fail(err, AC_EDATA, "ref.rates %s %s: unusable amount",
                         PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
            break;
        }
        const char *from = db_value(res, i, 4);
        rc = rating_ref_add_plan_rate(ref, PQgetvalue(res, i, 6),
                                      PQgetvalue(res, i, 0),
                                      PQgetvalue(res, i, 1), pm, fee,
                                      from ? strtoll(from, NULL, 10)
                                           : INT64_MIN,
                                      to ? strtoll(to, NULL, 10)
                                         : RATING_FOREVER, err);
    }
    PQclear(res);
    if (rc != AC_OK) {
        /* A timeout or a server that went away passes by itself (75,
         * 69); only the data itself is the operator's to fix (65). */
        char why[AC_ERR_MAX];
        snprintf(why, sizeof why, "%s", err);
        return ac_fail(err, rc == AC_EUNAVAIL || rc == AC_ETEMPFAIL ||
                            rc == AC_EOSERR ? rc : AC_EDATA,
                       "reference data: %s", why);
    }
    return AC_OK;
}

ac_status bill_entitlements(PGconn *conn, const bill_context *ctx,
                            const bill_tenant_info *tenant,
                            rating_licences **licences,
                            int32_t *pool_minutes,
                            int32_t *usca_pool_minutes, char *err)
{
    job j;
    ac_status rc;

    memset(&j, 0, sizeof j);
    j.ctx = ctx;
    j.tenant = tenant;
    j.lic = rating_licences_new();
    if (j.lic == NULL)
        rc = ac_fail(err, AC_EOSERR, "out of memory");
    else
        rc = read_bounds(conn, &j, err);
    if (rc == AC_OK)
        rc = read_seats(conn, &j, err);
    if (rc == AC_OK)
        rc = read_licences(conn, &j, err);
    if (rc == AC_OK) {
        *licences = j.lic;
        *pool_minutes = 60 * j.seats;
        *usca_pool_minutes = 60 * j.usca_seats;
        j.lic = NULL;
    }
    job_free(&j);
    return rc;
}

ac_status bill_tenant(PGconn *conn, const bill_context *ctx,
                      const bill_tenant_info *tenant, bill_result *result,
                      char *err)
{
    char why[AC_ERR_MAX] = "";
    job j;
    ac_status rc;

    memset(&j, 0, sizeof j);
    memset(result, 0, sizeof *result);
    j.ctx = ctx;
    j.tenant = tenant;
    j.lic = rating_licences_new();
    if (j.lic == NULL) {
        job_free(&j);
        return ac_fail(err, AC_EOSERR, "tenant %s, period %s: out of memory",
                       tenant->tenant_id, ctx->period);
    }

    rc = db_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ", why);
    if (rc == AC_OK)
        rc = bill_in_transaction(conn, &j, result, why);
    if (rc == AC_OK && result->outcome == BILL_NO_USAGE) {
        db_exec(conn, "ROLLBACK", NULL);
        rc = record_tenant(conn, ctx, tenant->tenant_id, "no_usage", NULL, 0,
                           "no call in the period: nothing to bill", why);
    } else if (rc == AC_OK && result->outcome == BILL_DRAFT) {
        /* docs/billing-rules.md 4.2: the draft workbook is written from the rows of this
         * transaction, which is then rolled back: no number is taken and
         * nothing stays in the ledger but the run's record. */
        if (ctx->spool_dir != NULL)
            rc = write_draft(conn, &j, result, why);
        db_exec(conn, "ROLLBACK", NULL);
        if (rc == AC_OK) {
            char msg[160];
            snprintf(msg, sizeof msg, "in its grace period until %s UTC: "
                     "drafted, not issued", j.grace_ends);
            rc = record_tenant(conn, ctx, tenant->tenant_id, "draft", NULL,
                               result->calls, msg, why);
        }
    } else if (rc == AC_OK && result->outcome == BILL_UNCHANGED) {
        db_exec(conn, "ROLLBACK", NULL);
        rc = j.digest[0] && j.rt != NULL
             ? record_inputs(conn, &j, result->invoice_no, why) : AC_OK;
        /* Documents a run that died after the revision did not write;
         * nothing when they were decided (the usual case). */
        if (rc == AC_OK)
            rc = issue_documents(conn, result->invoice_no, result, why);
        /* Documents of a held statement whose profile is now complete
         * (or of a run that died before them) are issued here. */
        snprintf(result->documents, sizeof result->documents, "%s",
                 result->fresh);
        if (rc == AC_OK)
            rc = record_tenant(conn, ctx, tenant->tenant_id,
                               result->held[0] ? "held" : "unchanged",
                               result->invoice_no, result->calls,
                               result->held[0] ? result->held
                               : result->documents[0] ? result->documents
                               : NULL, why);
        if (rc == AC_OK && ctx->pub != NULL)
            rc = publisher_submit(ctx->pub, result->invoice_no, NULL, why);
    } else if (rc == AC_OK) {
        rc = db_exec(conn, "COMMIT", why);
        if (rc == AC_OK)
            rc = issue_documents(conn, j.invoice_no, result, why);
        if (rc == AC_OK && (result->documents[0] != '\0' ||
                            result->held[0] != '\0'))
            rc = record_tenant(conn, ctx, tenant->tenant_id,
                               result->held[0] ? "held" : "issued",
                               j.invoice_no, result->calls,
                               result->held[0] ? result->held
                                               : result->documents, why);
        if (rc == AC_OK && ctx->pub != NULL) {
            /* The spool is the publisher's from here on. */
            fflush(j.spool);
            rc = publisher_submit(ctx->pub, j.invoice_no, j.spool_path, why);
            j.spool_path[0] = '\0';
        }
    } else {
        db_exec(conn, "ROLLBACK", NULL);
    }
    job_free(&j);
    if (rc != AC_OK) {
        ac_fail(err, rc, "tenant %s, period %s: %s", tenant->tenant_id,
                ctx->period, why);
        if (PQstatus(conn) == CONNECTION_OK)
            record_tenant(conn, ctx, tenant->tenant_id, "failed", NULL, -1,
                          why, NULL);
    }
    return rc;
}
