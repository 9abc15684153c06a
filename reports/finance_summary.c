/* finance_summary.c: finance-summary-<YYYY-MM>.xlsx (see report.h).
 *
 * Sheets, in this order: Invoices, Totals, Findings, Reconciliation.
 * "Latest revision" is the highest revision of each tenant's period;
 * every list is ordered by tenant id, so the output depends only on the
 * ledger. */
#include "report.h"

#include <stdio.h>
#include <string.h>

#include "db.h"
#include "xlsx_book.h"

/* The latest revision of every tenant for period $1 (a date). */
#define LATEST \
    "(SELECT DISTINCT ON (tenant_id) * FROM billing.invoices" \
    " WHERE period = $1::date ORDER BY tenant_id, revision DESC)"

typedef struct {
    xb_book book;
    xb_sheet s;
} fin_ctx;

enum { MONEY2, MONEY4, MONEY2_BOLD };

/* A money format of currency with minor decimals (text, NULL: 2; kind:
 * MONEY2 (the minor unit), MONEY4 or MONEY2_BOLD), or
 * plain decimals when the workbook has used up its currency formats. */
static lxw_format *money(fin_ctx *c, const char *currency, const char *minor,
                         int kind)
{
    const xb_money *m = xb_money_of(&c->book, currency,
                                    minor ? atoi(minor) : 2);
    if (m == NULL)
        return c->book.decimal4;
    return kind == MONEY4 ? m->m4 : kind == MONEY2_BOLD ? m->m2_bold : m->m2;
}

static ac_status invoice_row(void *ctx, const PGresult *r, char *err)
{
    fin_ctx *c = ctx;
    xb_sheet *s = &c->s;
    xb_book *b = &c->book;
    const char *cur = db_value(r, 0, 13), *minor = db_value(r, 0, 16);

    for (int col = 0; col <= 2; col++)
        xb_str(s, (lxw_col_t)col, db_value(r, 0, col), NULL);
    xb_dec(s, 3, db_value(r, 0, 3), b->integer);
    xb_str(s, 4, db_value(r, 0, 4), NULL);
    for (int col = 5; col <= 11; col++)
        xb_dec(s, (lxw_col_t)col, db_value(r, 0, col), b->integer);
    xb_dec(s, 12, db_value(r, 0, 12), money(c, cur, minor, MONEY2));
    xb_str(s, 13, cur, NULL);
    xb_dec(s, 14, db_value(r, 0, 14), money(c, cur, minor, MONEY2));
    xb_dec(s, 15, db_value(r, 0, 15), money(c, cur, minor, MONEY2));
    xb_next(s);
    return xb_check(b, err);
}

static ac_status write_invoices(fin_ctx *c, PGconn *conn, const char *date,
                                char *err)
{
    static const char *const head[] = {
        "Tenant", "Name", "Invoice", "Revision", "Supersedes", "Seats",
        "Pool minutes", "Pool used", "Exempt minutes", "Billed minutes",
        "Calls", "Rejected calls", "Total", "Currency", "Previous total",
        "Change"
    };
    const char *p[] = { date };

    ac_status rc = xb_sheet_add(&c->book, &c->s, "Invoices", err);
    if (rc != AC_OK)
        return rc;
    xb_header(&c->s, head, 16);
    rc = xb_stream(conn,
        "SELECT i.tenant_id, i.tenant_name, i.invoice_no, i.revision,"
        " i.supersedes, i.seats, i.pool_minutes, i.pool_used_minutes,"
        " i.exempt_minutes, i.billed_minutes, i.calls, i.rejected_calls,"
        " i.total, i.currency, p.total, i.total - p.total, i.minor_unit"
        " FROM " LATEST " i"
        " LEFT JOIN billing.invoices p ON p.invoice_no = i.supersedes"
        " ORDER BY i.tenant_id", 1, p, invoice_row, c, err);
    if (rc != AC_OK)
        return rc;
    xb_list_finish(&c->s, 0, 16);
    return xb_check(&c->book, err);
}

static ac_status write_totals(fin_ctx *c, PGconn *conn, const char *date,
                              char *err)
{
    static const char *const head[] = {
        "Currency", "Tenants", "Calls", "Rejected calls", "Billed minutes",
        "Total", "Revised invoices", "Change against previous revisions"
    };
    const char *p[] = { date };
    xb_sheet *s = &c->s;
    xb_book *b = &c->book;
    PGresult *res;

    ac_status rc = xb_sheet_add(b, s, "Totals", err);
    if (rc == AC_OK)
        rc = db_query(conn,
            "SELECT i.currency, count(*), sum(i.calls),"
            " sum(i.rejected_calls), sum(i.billed_minutes), sum(i.total),"
            " count(p.invoice_no), coalesce(sum(i.total - p.total), 0),"
            " max(i.minor_unit)"
            " FROM " LATEST " i"
            " LEFT JOIN billing.invoices p ON p.invoice_no = i.supersedes"
            " GROUP BY i.currency ORDER BY i.currency", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    xb_header(s, head, 8);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *cur = db_value(res, i, 0);
        const char *minor = db_value(res, i, 8);
        xb_str(s, 0, cur, NULL);
        for (int col = 1; col <= 4; col++)
            xb_dec(s, (lxw_col_t)col, db_value(res, i, col), b->integer);
        xb_dec(s, 5, db_value(res, i, 5), money(c, cur, minor, MONEY2_BOLD));
        xb_dec(s, 6, db_value(res, i, 6), b->integer);
        xb_dec(s, 7, db_value(res, i, 7), money(c, cur, minor, MONEY2));
        xb_next(s);
    }
    PQclear(res);
    xb_list_finish(s, 0, 8);
    return xb_check(b, err);
}

static ac_status finding_row(void *ctx, const PGresult *r, char *err)
{
    fin_ctx *c = ctx;
    xb_sheet *s = &c->s;

    xb_str(s, 0, db_value(r, 0, 0), NULL);
    xb_str(s, 1, db_value(r, 0, 1), NULL);
    xb_dec(s, 2, db_value(r, 0, 2), c->book.integer);
    for (int col = 3; col <= 6; col++)
        xb_str(s, (lxw_col_t)col, db_value(r, 0, col), NULL);
    xb_next(s);
    return xb_check(&c->book, err);
}

static ac_status write_findings(fin_ctx *c, PGconn *conn, const char *date,
                                char *err)
{
    static const char *const head[] = {
        "Tenant", "Invoice", "#", "Code", "Subject", "Detail", "Usage ID"
    };
    const char *p[] = { date };

    ac_status rc = xb_sheet_add(&c->book, &c->s, "Findings", err);
    if (rc != AC_OK)
        return rc;
    xb_header(&c->s, head, 7);
    rc = xb_stream(conn,
        "SELECT i.tenant_id, f.invoice_no, f.seq, f.code, f.subject,"
        " f.detail, f.usage_id"
        " FROM " LATEST " i JOIN billing.findings f"
        "   ON f.invoice_no = i.invoice_no"
        " ORDER BY i.tenant_id, f.seq", 1, p, finding_row, c, err);
    if (rc != AC_OK)
        return rc;
    xb_list_finish(&c->s, 0, 7);
    return xb_check(&c->book, err);
}

static ac_status recon_row(void *ctx, const PGresult *r, char *err)
{
    fin_ctx *c = ctx;
    xb_sheet *s = &c->s;
    xb_book *b = &c->book;
    const char *cur = db_value(r, 0, 3), *minor = db_value(r, 0, 12);

    for (int col = 0; col <= 3; col++)
        xb_str(s, (lxw_col_t)col, db_value(r, 0, col), NULL);
    xb_dec(s, 4, db_value(r, 0, 4), money(c, cur, minor, MONEY2));
    for (int col = 5; col <= 7; col++)
        xb_dec(s, (lxw_col_t)col, db_value(r, 0, col), b->integer);
    for (int col = 8; col <= 10; col++)
        xb_dec(s, (lxw_col_t)col, db_value(r, 0, col),
               money(c, cur, minor, MONEY4));
    xb_dec(s, 11, db_value(r, 0, 11), b->integer);
    xb_next(s);
    return xb_check(b, err);
}

static ac_status write_reconciliation(fin_ctx *c, PGconn *conn,
                                      const char *date, char *err)
{
    static const char *const head[] = {
        "Tenant", "Name", "Invoice", "Currency", "Invoice total",
        "Calls with a provider charge", "Compared (same currency)",
        "Not compared (other currency)", "Provider total",
        "acbill total (same calls)", "Difference (provider - acbill)",
        "Calls differing by 0.01 or more"
    };
    const char *p[] = { date };

    ac_status rc = xb_sheet_add(&c->book, &c->s, "Reconciliation", err);
    if (rc != AC_OK)
        return rc;
    xb_header(&c->s, head, 12);
    rc = xb_stream(conn,
        "SELECT i.tenant_id, i.tenant_name, i.invoice_no, i.currency,"
        " i.total, r.charged_calls, r.compared_calls,"
        " r.charged_calls - r.compared_calls, r.provider_total,"
        " r.acbill_total, r.provider_total - r.acbill_total,"
        " r.differing_calls, i.minor_unit"
        " FROM " LATEST " i LEFT JOIN billing.invoice_reconciliation r"
        "   ON r.invoice_no = i.invoice_no"
        " ORDER BY i.tenant_id", 1, p, recon_row, c, err);
    if (rc != AC_OK)
        return rc;
    xb_list_finish(&c->s, 0, 12);
    return xb_check(&c->book, err);
}

static int valid_period(const char *p, int *year, int *month)
{
    for (int i = 0; i < 7; i++) {
        if (i == 4 ? p[i] != '-' : (p[i] < '0' || p[i] > '9'))
            return 0;
    }
    if (p[7] != '\0')
        return 0;
    *year = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 +
            (p[3] - '0');
    *month = (p[5] - '0') * 10 + (p[6] - '0');
    return *year >= 1900 && *month >= 1 && *month <= 12;
}

ac_status report_finance_summary(PGconn *conn, const char *period,
                                 const char *path, char *err)
{
    fin_ctx c;
    char date[16], title[64], subject[128], keywords[64];
    int year, month;

    if (period == NULL || strlen(period) != 7 ||
        !valid_period(period, &year, &month))
        return ac_fail(err, AC_EUSAGE, "bad period '%s' (want YYYY-MM)",
                       period ? period : "(null)");
    snprintf(date, sizeof date, "%s-01", period);
    snprintf(title, sizeof title, "Finance summary %s", period);
    snprintf(subject, sizeof subject, "Teams Audio Conferencing dial-out "
             "invoices of period %s, latest revisions", period);
    snprintf(keywords, sizeof keywords, "acbill, finance summary, %s",
             period);
    xb_props props = {
        .title = title, .subject = subject, .category = "Finance summary",
        .keywords = keywords, .comments = "",
        .created = xb_month_start(year, month),
    };
    ac_status rc = xb_open(&c.book, path, &props, err);
    if (rc != AC_OK)
        return rc;
    rc = write_invoices(&c, conn, date, err);
    if (rc == AC_OK)
        rc = write_totals(&c, conn, date, err);
    if (rc == AC_OK)
        rc = write_findings(&c, conn, date, err);
    if (rc == AC_OK)
        rc = write_reconciliation(&c, conn, date, err);
    ac_status crc = xb_close(&c.book, rc != AC_OK, rc == AC_OK ? err : NULL);
    return rc == AC_OK ? crc : rc;
}
