/* reconciliation.c: reconciliation-<YYYY-MM>.xlsx (see reconciliation.h). */
#include "reconciliation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "xlsx_book.h"

/* The rows, one per tenant (or unknown customer) and currency; $1 is the
 * period's first day. */
#define RECON_CTE \
    "WITH p AS (SELECT $1::date AS d0, ($1::date + interval '1 month')::date" \
    "   AS d1)," \
    " cust AS (SELECT DISTINCT ON (entra_tenant_id) entra_tenant_id AS cid," \
    "   tenant_id FROM ref.customers WHERE entra_tenant_id IS NOT NULL" \
    "   ORDER BY entra_tenant_id, tenant_id)," \
    " prod AS (SELECT upper(pp.product_id) AS product_id, e.pool_scope" \
    "   FROM ref.partner_products pp" \
    "   LEFT JOIN ref.sku_entitlements e ON e.sku = pp.sku)," \
    " ch AS (SELECT c.customer_id, c.customer_name, c.currency," \
    "   c.charge_type, c.billable_quantity, c.subtotal, pr.pool_scope," \
    "   pr.product_id IS NOT NULL AS ac FROM usage.partner_charges c" \
    "   JOIN p ON c.charge_start_date >= p.d0 AND c.charge_start_date < p.d1" \
    "   LEFT JOIN prod pr ON pr.product_id = upper(c.product_id))," \
    " us AS (SELECT * FROM pg_temp.recon_usage)," \
    " pc AS (SELECT customer_id FROM ch UNION SELECT customer_id FROM us)," \
    " names AS (SELECT customer_id, max(customer_name) AS customer_name" \
    "   FROM (SELECT customer_id, customer_name FROM ch UNION ALL" \
    "   SELECT customer_id, customer_name FROM us) x GROUP BY 1)," \
    " seats AS (SELECT customer_id," \
    "   sum(q) FILTER (WHERE pool_scope = 'zone_a') AS za," \
    "   sum(q) FILTER (WHERE pool_scope = 'us_ca') AS us" \
    "   FROM (SELECT customer_id, pool_scope, CASE WHEN lower(charge_type)" \
    "   IN ('new', 'renew', 'cyclecharge', 'addquantity')" \
    "   THEN coalesce(billable_quantity, 0)" \
    "   WHEN lower(charge_type) = 'removequantity'" \
    "   THEN -coalesce(billable_quantity, 0) ELSE 0 END AS q" \
    "   FROM ch WHERE ac) s GROUP BY 1)," \
    " cost AS (SELECT customer_id, currency, sum(lic) AS lic," \
    "   sum(ovr) AS ovr FROM (" \
    "   SELECT customer_id, currency, CASE WHEN ac THEN subtotal ELSE 0 END" \
    "   AS lic, 0::numeric AS ovr FROM ch UNION ALL" \
    "   SELECT customer_id, billing_currency, 0, ovr FROM us) x" \
    "   GROUP BY 1, 2)," \
    " ms AS (SELECT cu.tenant_id, c.customer_id, c.currency, c.lic, c.ovr" \
    "   FROM cost c LEFT JOIN cust cu ON cu.cid = c.customer_id)," \
    " rev AS (SELECT tenant_id, currency, sum(CASE WHEN kind = 'credit_note'" \
    "   THEN -abs(subtotal) ELSE subtotal END) AS rev" \
    "   FROM billing.documents, p WHERE period = p.d0 GROUP BY 1, 2)," \
    " r AS (SELECT coalesce(m.tenant_id, v.tenant_id) AS tenant_id," \
    "   NULL::uuid AS ms_cid, coalesce(m.currency, v.currency) AS currency," \
    "   coalesce(m.lic, 0) AS lic, coalesce(m.ovr, 0) AS ovr," \
    "   coalesce(v.rev, 0) AS rev" \
    "   FROM (SELECT * FROM ms WHERE tenant_id IS NOT NULL) m" \
    "   FULL JOIN rev v ON v.tenant_id = m.tenant_id" \
    "   AND v.currency = m.currency" \
    "   UNION ALL SELECT NULL, customer_id, currency, lic, ovr, 0" \
    "   FROM ms WHERE tenant_id IS NULL)," \
    " st AS (SELECT DISTINCT ON (tenant_id) tenant_id, seats," \
    "   coalesce((to_jsonb(i) ->> 'usca_seats')::int, 0) AS usca" \
    "   FROM billing.invoices i," \
    "   p WHERE period = p.d0 ORDER BY tenant_id, revision DESC)," \
    " fin AS (SELECT r.tenant_id, t.name, coalesce(r.ms_cid," \
    "   rc.entra_tenant_id) AS cid, r.currency, t.currency AS tenant_cur," \
    "   r.lic, r.ovr, r.lic + r.ovr AS cost, r.rev," \
    "   r.rev - (r.lic + r.ovr) AS margin, st.seats, st.usca," \
    "   coalesce(cur.minor_unit, 2) AS mu," \
    "   sum(r.rev) OVER (PARTITION BY r.tenant_id) AS tenant_rev" \
    "   FROM r LEFT JOIN usage.tenants t ON t.tenant_id = r.tenant_id" \
    "   LEFT JOIN ref.customers rc ON rc.tenant_id = r.tenant_id" \
    "   LEFT JOIN st ON st.tenant_id = r.tenant_id" \
    "   LEFT JOIN ref.currencies cur ON cur.code = r.currency)"

/* Money as text with at least the currency's decimals (exact). */
#define FMT(x) "round(" x ", greatest(mu, scale(" x ")))::text"

static const char ROWS_SQL[] = RECON_CTE
    " SELECT f.tenant_id, f.name, f.cid::text, n.customer_name, f.currency,"
    " f.tenant_cur, s.za, f.seats, s.us, f.usca, f.lic, f.ovr, f.cost,"
    " f.rev, f.margin, CASE WHEN f.rev <> 0 THEN round(f.margin / f.rev, 6)"
    " END,"
    " " FMT("f.lic") ", " FMT("f.ovr") ", " FMT("f.cost") ", "
    FMT("f.rev") ", " FMT("f.margin") ","
    " CASE WHEN f.rev <> 0 THEN round(100 * f.margin / f.rev, 2)::text END,"
    " coalesce(f.cid IN (SELECT customer_id FROM pc), false),"
    " coalesce(f.tenant_rev, 0) <> 0,"
    " row_number() OVER (PARTITION BY coalesce(f.tenant_id, f.cid::text)"
    "   ORDER BY f.currency = f.tenant_cur DESC, f.currency),"
    " f.mu,"
    " (SELECT string_agg(product_id, ', ' ORDER BY product_id) FROM prod"
    "   WHERE pool_scope = 'zone_a'),"
    " (SELECT string_agg(product_id, ', ' ORDER BY product_id) FROM prod"
    "   WHERE pool_scope = 'us_ca')"
    " FROM fin f LEFT JOIN names n ON n.customer_id = f.cid"
    " LEFT JOIN seats s ON s.customer_id = f.cid"
    " ORDER BY f.tenant_id NULLS LAST, f.cid, f.currency";

enum {
    R_TENANT, R_NAME, R_CID, R_CNAME, R_CUR, R_TCUR, R_ZA_CH, R_ZA_CO,
    R_US_CH, R_US_CO, R_LIC, R_OVR, R_COST, R_REV, R_MARGIN, R_SHARE,
    R_LIC_T, R_OVR_T, R_COST_T, R_REV_T, R_MARGIN_T, R_PCT_T, R_HAS_PC,
    R_ANY_REV, R_RN, R_MU, R_ZA_PROD, R_US_PROD
};

static const char TOTALS_SQL[] = RECON_CTE
    " SELECT currency, count(*), sum(lic), sum(ovr), sum(cost), sum(rev),"
    " sum(margin), max(mu) FROM fin GROUP BY currency ORDER BY currency";

#define NCOLS 16

typedef struct {
    xb_book book;
    xb_sheet main, find;
    lxw_format *pct;
    recon_counts n;
    char period[8];
    /* findings of the current row, kept until the Findings sheet is
     * written: a temporary file (one tenant's worth at a time is in
     * memory) */
    FILE *findings;
    char codes[160];
} rctx;

static int is_zero(const char *v)
{
    return v == NULL || xb_number(v) == 0.0;
}

static const char *or0(const char *v)
{
    return v ? v : "0";
}

/* Seats as text: a charged quantity (numeric) in its shortest form. */
static void seats_text(const char *v, char *out, size_t cap)
{
    snprintf(out, cap, "%s", v ? v : "0");
    char *dot = strchr(out, '.');
    if (dot != NULL) {
        char *e = out + strlen(out) - 1;
        while (e > dot && *e == '0')
            *e-- = '\0';
        if (e == dot)
            *e = '\0';
    }
}

static int seats_equal(const char *charged, const char *counted)
{
    char a[64], b[64];
    seats_text(charged, a, sizeof a);
    seats_text(counted, b, sizeof b);
    return strcmp(a, b) == 0;
}

static void finding(rctx *c, const PGresult *row, const char *code,
                    const char *detail)
{
    const char *subject = db_value(row, 0, R_TENANT);
    char who[128];
    if (subject == NULL) {
        snprintf(who, sizeof who, "customer %s", db_value(row, 0, R_CID));
        subject = who;
    }
    /* code \t subject \t currency \t detail \n, detail without tabs or
     * newlines (it is built here from figures and names) */
    fprintf(c->findings, "%s\t%s\t%s\t", code, subject,
            db_value(row, 0, R_CUR));
    for (const char *d = detail; *d; d++)
        fputc(*d == '\t' || *d == '\n' ? ' ' : *d, c->findings);
    fputc('\n', c->findings);
    size_t l = strlen(c->codes);
    snprintf(c->codes + l, sizeof c->codes - l, "%s%s", l ? ", " : "", code);
    c->n.findings++;
}

/* A value as text, "" for NULL (for comparisons). */
static const char *txt(const PGresult *row, int col)
{
    const char *v = db_value(row, 0, col);
    return v ? v : "";
}

static ac_status on_row(void *ctx, const PGresult *row, char *err)
{
    rctx *c = ctx;
    xb_sheet *s = &c->main;
    (void)err;
    const char *cur = db_value(row, 0, R_CUR);
    const xb_money *m = xb_money_of(&c->book, cur, atoi(txt(row, R_MU)));
    lxw_format *mf = m ? m->m4 : c->book.decimal4;
    const char *tenant = db_value(row, 0, R_TENANT);
    const char *cname = db_value(row, 0, R_CNAME);
    const char *tname = db_value(row, 0, R_NAME);
    int first = strcmp(txt(row, R_RN), "1") == 0;
    int has_pc = strcmp(txt(row, R_HAS_PC), "t") == 0;
    int any_rev = strcmp(txt(row, R_ANY_REV), "t") == 0;
    const char *tcur = db_value(row, 0, R_TCUR);
    char d[1024], a[64], b[64];

    c->codes[0] = '\0';
    if (tenant == NULL) {
        snprintf(d, sizeof d, "Microsoft charged %s %s for customer %s (%s)"
                 " in %s (licences %s, overage %s), but no tenant has this "
                 "Entra tenant id in ref.customers.entra_tenant_id: acbill "
                 "bills nobody for it.", db_value(row, 0, R_COST_T), cur,
                 db_value(row, 0, R_CID), cname ? cname : "no name",
                 c->period, db_value(row, 0, R_LIC_T),
                 db_value(row, 0, R_OVR_T));
        finding(c, row, "PARTNER_CUSTOMER_UNKNOWN", d);
    } else {
        if (first && has_pc) {
            const char *pools[2][4] = {
                { "Zone A", db_value(row, 0, R_ZA_CH),
                  db_value(row, 0, R_ZA_CO), db_value(row, 0, R_ZA_PROD) },
                { "US/CA", db_value(row, 0, R_US_CH),
                  db_value(row, 0, R_US_CO), db_value(row, 0, R_US_PROD) },
            };
            for (int i = 0; i < 2; i++) {
                if (seats_equal(pools[i][1], pools[i][2]))
                    continue;
                seats_text(pools[i][1], a, sizeof a);
                if (pools[i][2] != NULL)
                    seats_text(pools[i][2], b, sizeof b);
                else
                    snprintf(b, sizeof b, "none (acbill has no statement "
                             "for the period)");
                snprintf(d, sizeof d, "Microsoft charged %s %s seat(s) "
                         "(%s) in %s, acbill's %s pool counted %s: acbill "
                         "may be giving away minutes nobody pays for, or "
                         "its licence data is stale.", a, pools[i][0],
                         pools[i][3] ? pools[i][3] : "no product",
                         c->period, pools[i][0], b);
                finding(c, row, "SEATS_DIFFER", d);
            }
        }
        if (!is_zero(db_value(row, 0, R_OVR)) && !any_rev) {
            snprintf(d, sizeof d, "Microsoft charged %s %s of overage "
                     "usage (resource group M365) in %s, and acbill billed "
                     "this tenant nothing for the period.",
                     db_value(row, 0, R_OVR_T), cur, c->period);
            finding(c, row, "COST_WITHOUT_REVENUE", d);
        }
        if (xb_number(db_value(row, 0, R_REV)) > 0 &&
            txt(row, R_MARGIN)[0] == '-') {
            snprintf(d, sizeof d, "Revenue %s %s is below Microsoft's cost "
                     "%s %s (licences %s, overage %s): margin %s %s "
                     "(%s %%).", db_value(row, 0, R_REV_T), cur,
                     db_value(row, 0, R_COST_T), cur,
                     db_value(row, 0, R_LIC_T), db_value(row, 0, R_OVR_T),
                     db_value(row, 0, R_MARGIN_T), cur,
                     db_value(row, 0, R_PCT_T));
            finding(c, row, "NEGATIVE_MARGIN", d);
        }
        if (tcur != NULL && strcmp(tcur, cur) != 0 &&
            (!is_zero(db_value(row, 0, R_COST)) || has_pc)) {
            snprintf(d, sizeof d, "Microsoft bills this tenant's charges in "
                     "%s (%s %s this period) but acbill invoices it in %s: "
                     "the figures are shown side by side, not converted.",
                     cur, db_value(row, 0, R_COST_T), cur, tcur);
            finding(c, row, "CURRENCY_DIFFERS", d);
        }
    }

    xb_str(s, 0, tenant ? tenant : "(unknown)", NULL);
    xb_str(s, 1, tname ? tname : cname, NULL);
    xb_str(s, 2, db_value(row, 0, R_CID), NULL);
    xb_str(s, 3, cur, NULL);
    xb_dec(s, 4, or0(db_value(row, 0, R_ZA_CH)), c->book.integer);
    xb_dec(s, 5, db_value(row, 0, R_ZA_CO), c->book.integer);
    xb_dec(s, 6, or0(db_value(row, 0, R_US_CH)), c->book.integer);
    xb_dec(s, 7, db_value(row, 0, R_US_CO), c->book.integer);
    xb_dec(s, 8, db_value(row, 0, R_LIC), mf);
    xb_dec(s, 9, db_value(row, 0, R_OVR), mf);
    xb_dec(s, 10, db_value(row, 0, R_COST), mf);
    xb_dec(s, 11, db_value(row, 0, R_REV), mf);
    xb_dec(s, 12, db_value(row, 0, R_MARGIN), mf);
    xb_dec(s, 13, db_value(row, 0, R_SHARE), c->pct);
    xb_str(s, 14, c->codes, NULL);
    xb_str(s, 15, cname, NULL);
    xb_next(s);
    c->n.rows++;
    return AC_OK;
}

static int valid_period(const char *p, int *year, int *month)
{
    if (p == NULL || strlen(p) != 7)
        return 0;
    for (int i = 0; i < 7; i++)
        if (i == 4 ? p[i] != '-' : (p[i] < '0' || p[i] > '9'))
            return 0;
    *year = atoi(p);
    *month = atoi(p + 5);
    return *year >= 1900 && *month >= 1 && *month <= 12;
}

static ac_status write_totals(rctx *c, PGconn *conn, const char *date,
                              char *err)
{
    xb_sheet *s = &c->main;
    const char *p[] = { date };
    PGresult *res;
    ac_status rc = db_query(conn, TOTALS_SQL, 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    xb_next(s);
    xb_title(s, 0, "Totals per currency (the rows above re-added)",
             c->book.section);
    xb_next(s);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *cur = db_value(res, i, 0);
        const xb_money *m = xb_money_of(&c->book, cur,
                                        atoi(db_value(res, i, 7)));
        lxw_format *mf = m ? m->m4 : c->book.decimal4;
        char label[32];
        snprintf(label, sizeof label, "Total %s", cur);
        xb_str(s, 0, label, c->book.bold);
        xb_str(s, 3, cur, c->book.bold);
        for (int k = 0; k < 5; k++)
            xb_dec(s, (lxw_col_t)(8 + k), db_value(res, i, 2 + k), mf);
        xb_next(s);
    }
    PQclear(res);
    return AC_OK;
}

static ac_status write_findings(rctx *c, char *err)
{
    static const char *const head[] = { "Code", "Tenant or customer",
                                        "Currency", "Detail" };
    xb_sheet *s = &c->find;
    ac_status rc = xb_sheet_add(&c->book, s, "Findings", err);
    if (rc != AC_OK)
        return rc;
    xb_header(s, head, 4);
    rewind(c->findings);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, c->findings)) > 0) {
        if (line[n - 1] == '\n')
            line[n - 1] = '\0';
        char *f[4] = { line, NULL, NULL, NULL };
        for (int i = 1; i < 4 && f[i - 1]; i++) {
            char *t = strchr(f[i - 1], '\t');
            if (t) {
                *t = '\0';
                f[i] = t + 1;
            }
        }
        for (int i = 0; i < 4; i++)
            xb_str(s, (lxw_col_t)i, f[i], i == 3 ? c->book.wrap : NULL);
        xb_next(s);
    }
    free(line);
    xb_list_finish(s, 0, 3);
    worksheet_set_column(s->ws, 3, 3, 100, NULL);
    char label[48];
    snprintf(label, sizeof label, "Reconciliation %s", c->period);
    xb_print_setup(s, 1, 0, 0, label, 0, XB_PAPER_A4);
    return AC_OK;
}

/* The period's usage, summed per customer and currency once into a
 * session table (the rows and the totals both read it: a month of daily
 * usage is scanned once). */
static ac_status sum_usage(PGconn *conn, const char *date, char *err)
{
    ac_status rc = db_exec(conn, "CREATE TEMP TABLE IF NOT EXISTS"
                           " recon_usage (customer_id uuid, customer_name"
                           " text, billing_currency char(3), ovr numeric);"
                           " TRUNCATE pg_temp.recon_usage", err);
    const char *p[] = { date };
    if (rc == AC_OK)
        rc = db_exec_params(conn,
            "INSERT INTO pg_temp.recon_usage SELECT customer_id,"
            " max(customer_name), billing_currency, sum(CASE WHEN"
            " upper(resource_group) = 'M365' THEN billing_pre_tax_total"
            " ELSE 0 END) FROM usage.partner_usage WHERE usage_date >="
            " $1::date AND usage_date < ($1::date + interval '1 month')"
            " GROUP BY customer_id, billing_currency", 1, p, err);
    return rc;
}

int report_reconciliation_has_data(PGconn *conn, const char *period,
                                   char *err)
{
    int y, m;
    if (!valid_period(period, &y, &m))
        return 0;
    char date[16];
    snprintf(date, sizeof date, "%s-01", period);
    const char *p[] = { date };
    PGresult *res;
    if (db_query(conn, "SELECT EXISTS (SELECT 1 FROM usage.partner_charges"
                 " WHERE charge_start_date >= $1::date AND charge_start_date"
                 " < ($1::date + interval '1 month')) OR EXISTS (SELECT 1"
                 " FROM usage.partner_usage WHERE usage_date >= $1::date"
                 " AND usage_date < ($1::date + interval '1 month'))", 1, p,
                 &res, err) != AC_OK)
        return -1;
    int has = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return has;
}

ac_status report_reconciliation(PGconn *conn, const char *period,
                                const char *path, recon_counts *n,
                                char *err)
{
    int year, month;
    if (!valid_period(period, &year, &month))
        return ac_fail(err, AC_EUSAGE, "bad period '%s' (want YYYY-MM)",
                       period ? period : "(null)");
    rctx c;
    memset(&c, 0, sizeof c);
    snprintf(c.period, sizeof c.period, "%s", period);
    char date[16], title[64], label[48];
    snprintf(date, sizeof date, "%s-01", period);
    snprintf(title, sizeof title, "Reconciliation with Microsoft %s",
             period);
    snprintf(label, sizeof label, "Reconciliation %s", period);
    xb_props props = {
        .title = title,
        .subject = "acbill's billing against Microsoft Partner Center "
                   "charges",
        .category = "Reconciliation", .keywords = "acbill, reconciliation",
        .comments = "",
        .created = xb_month_start(month == 12 ? year + 1 : year,
                                  month == 12 ? 1 : month + 1),
    };
    c.findings = tmpfile();
    if (c.findings == NULL)
        return ac_fail(err, AC_ECANTCREAT, "cannot create a temporary "
                       "file");
    ac_status rc = xb_open(&c.book, path, &props, err);
    if (rc != AC_OK) {
        fclose(c.findings);
        return rc;
    }
    c.pct = workbook_add_format(c.book.wb);
    format_set_num_format(c.pct, "0.00%");
    rc = xb_sheet_add(&c.book, &c.main, "Reconciliation", err);
    if (rc == AC_OK) {
        xb_title(&c.main, 0, title, c.book.title_f);
        xb_next(&c.main);
        xb_title(&c.main, 0, "Microsoft's charges (Partner Center invoice "
                 "reconciliation and daily rated usage) against acbill's "
                 "invoices, per tenant and currency; not converted between "
                 "currencies.", c.book.italic);
        xb_next(&c.main);
        static const char *const head[NCOLS] = {
            "Tenant", "Name", "Entra tenant id (CustomerId)", "Currency",
            "Zone A seats charged by Microsoft", "Zone A seats counted by "
            "acbill", "US/CA seats charged by Microsoft", "US/CA seats "
            "counted by acbill", "Licence cost", "Overage cost",
            "Microsoft cost", "acbill revenue", "Margin", "Margin share",
            "Findings", "Microsoft's customer name" };
        xb_header_tall(&c.main, head, NCOLS);
        const char *p[] = { date };
        rc = sum_usage(conn, date, err);
        if (rc == AC_OK)
            rc = xb_stream(conn, ROWS_SQL, 1, p, on_row, &c, err);
    }
    if (rc == AC_OK) {
        lxw_row_t last = c.main.row;
        (void)last;
        xb_list_finish(&c.main, 2, NCOLS);
        xb_print_setup(&c.main, 1, 2, 0, label, 0, XB_PAPER_A4);
        rc = write_totals(&c, conn, date, err);
    }
    if (rc == AC_OK)
        rc = write_findings(&c, err);
    if (rc == AC_OK)
        rc = xb_check(&c.book, err);
    ac_status crc = xb_close(&c.book, rc != AC_OK, rc == AC_OK ? err : NULL);
    fclose(c.findings);
    if (rc == AC_OK)
        rc = crc;
    if (rc == AC_OK && n != NULL)
        *n = c.n;
    return rc;
}
