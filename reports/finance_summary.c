/* finance_summary.c: finance-summary-<YYYY-MM>.xlsx (see report.h).
 *
 * Sheets, in this order: Tenants (one row per tenant: its latest
 * revision and documents, or why it has no statement), Documents (every
 * invoice and credit note of the period), Totals, Findings,
 * Reconciliation, Unbilled old usage (calls of periods older than the
 * look-back window of a run in this period, without a statement).  "Latest revision" is the highest revision of each
 * tenant's period; every list is ordered by tenant id in byte order, so
 * the output depends only on the ledger (and, for the tenants without a
 * statement, on the usage and the runs). */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bill/lookback.h"
#include "db.h"
#include "reconciliation.h"
#include "xlsx_book.h"

#define AC_STR_(x) #x
#define AC_STR(x) AC_STR_(x)

/* The latest revision of every tenant for period $1 (a date). */
#define LATEST \
    "(SELECT DISTINCT ON (tenant_id) * FROM billing.invoices" \
    " WHERE period = $1::date ORDER BY tenant_id, revision DESC)"

typedef struct {
    xb_book book;
    xb_sheet s;
    char label[64];             /* the footer's */
} fin_ctx;

/* A list sheet's print set-up (docs/billing-rules.md 4.3). */
static void fin_print(fin_ctx *c)
{
    xb_print_setup(&c->s, 1, 0, 0, c->label, 0, XB_PAPER_A4);
}

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

/* Columns of tenants_sql. */
enum {
    T_TENANT, T_NAME, T_STATUS, T_REASON, T_STATEMENT, T_REVISION,
    T_SUPERSEDES, T_CALLS, T_REJECTED, T_BILLED, T_SUBTOTAL, T_TAX, T_TOTAL,
    T_CURRENCY, T_PREV_TOTAL, T_CHANGE, T_MINOR, T_IN_FORCE, T_ISSUE_DATE,
    T_DUE_DATE, T_CREDIT_NOTES, T_COLS
};

/* Every tenant of period $1 (a date): those with a statement (its latest
 * revision, the invoice in force as of it, the credit notes of the
 * period), then, in the same order, those with usage in the period or a
 * failed or drafted run but no statement, with the reason from the
 * tenant's row in the latest run of the period that has one.  A tenant's
 * usage is its calls in its local month; a time zone PostgreSQL does not
 * know (the reason it failed) is taken as UTC with 14 hours either side. */
static const char tenants_sql[] =
    "WITH lr AS (SELECT DISTINCT ON (rt.tenant_id) rt.tenant_id, rt.status,"
    "   rt.message FROM billing.run_tenants rt"
    "   JOIN billing.runs r ON r.run_id = rt.run_id"
    "   WHERE r.period = $1::date ORDER BY rt.tenant_id, rt.run_id DESC),"
    " latest AS " LATEST ","
    " zones AS (SELECT name FROM pg_timezone_names),"
    " unissued AS (SELECT t.tenant_id FROM usage.tenants t"
    "   CROSS JOIN LATERAL (SELECT t.time_zone IN (SELECT name FROM zones)"
    "     AS ok) z"
    "   WHERE EXISTS (SELECT 1 FROM usage.dialout_calls c"
    "     WHERE c.tenant_id = t.tenant_id"
    "       AND c.start_time >= CASE WHEN z.ok"
    "         THEN $1::date::timestamp AT TIME ZONE t.time_zone"
    "         ELSE $1::date::timestamp AT TIME ZONE 'UTC'"
    "              - interval '14 hours' END"
    "       AND c.start_time < CASE WHEN z.ok"
    "         THEN ($1::date + interval '1 month') AT TIME ZONE t.time_zone"
    "         ELSE ($1::date + interval '1 month') AT TIME ZONE 'UTC'"
    "              + interval '14 hours' END)"
    /* A tenant that failed in a period where it has no call is not
     * reported there (its failure is in that run's log). */
    "  UNION SELECT tenant_id FROM lr WHERE status = 'draft'),"
    " rows AS ("
    "  SELECT i.tenant_id, i.tenant_name AS name,"
    /* docs/billing-rules.md 4.2: a held statement has no document yet; the reason names
     * the missing columns of the billing profile. */
    "   CASE WHEN lr.status = 'held' THEN 'held' ELSE 'issued' END"
    "   AS status,"
    "   CASE WHEN lr.status = 'held' THEN lr.message"
    "     WHEN lr.status IN ('failed', 'draft') THEN"
    "     'latest run: ' || lr.status || coalesce(': ' || lr.message, '')"
    "   END AS reason,"
    "   i.invoice_no, i.revision, i.supersedes, i.calls, i.rejected_calls,"
    "   i.billed_minutes, i.subtotal, i.tax, i.total, i.currency,"
    "   p.total AS prev_total, i.total - p.total AS change, i.minor_unit,"
    "   f.document_no, to_char(f.issue_date, 'YYYY-MM-DD') AS issue_date,"
    "   to_char(f.due_date, 'YYYY-MM-DD') AS due_date, cn.list"
    "  FROM latest i"
    "  LEFT JOIN billing.invoices p ON p.invoice_no = i.supersedes"
    "  LEFT JOIN lr ON lr.tenant_id = i.tenant_id"
    "  LEFT JOIN LATERAL (SELECT d.document_no, d.issue_date, d.due_date"
    "    FROM billing.documents d"
    "    JOIN billing.invoices di ON di.invoice_no = d.invoice_no"
    "    WHERE d.tenant_id = i.tenant_id AND d.period = i.period"
    "      AND d.kind = 'invoice' AND di.revision <= i.revision"
    "      AND NOT EXISTS (SELECT 1 FROM billing.documents v"
    "        WHERE v.voids = d.document_no)"
    "    ORDER BY di.revision DESC, d.year DESC, d.seq DESC LIMIT 1) f"
    "   ON true"
    "  LEFT JOIN LATERAL (SELECT string_agg(c.document_no || ' (voids '"
    "     || c.voids || ')', ', ' ORDER BY c.year, c.seq) AS list"
    "    FROM billing.documents c WHERE c.tenant_id = i.tenant_id"
    "      AND c.period = i.period AND c.kind = 'credit_note') cn ON true"
    "  UNION ALL"
    "  SELECT u.tenant_id, t.name,"
    "   CASE lr.status WHEN 'failed' THEN 'failed'"
    "     WHEN 'draft' THEN 'in grace period (draft)'"
    "     ELSE coalesce(lr.status, 'not billed yet') END,"
    "   coalesce(lr.message, CASE WHEN lr.status IS NULL THEN"
    "     'calls in the period; no run has billed it yet' END),"
    "   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, t.currency,"
    "   NULL, NULL, NULL, NULL, NULL, NULL, NULL"
    "  FROM unissued u LEFT JOIN usage.tenants t ON t.tenant_id = u.tenant_id"
    "  LEFT JOIN lr ON lr.tenant_id = u.tenant_id"
    "  WHERE NOT EXISTS (SELECT 1 FROM latest i"
    "    WHERE i.tenant_id = u.tenant_id))"
    " SELECT * FROM rows ORDER BY tenant_id COLLATE \"C\"";

static ac_status tenant_row(void *ctx, const PGresult *r, char *err)
{
    fin_ctx *c = ctx;
    xb_sheet *s = &c->s;
    xb_book *b = &c->book;
    const char *cur = db_value(r, 0, T_CURRENCY);
    const char *minor = db_value(r, 0, T_MINOR);

    for (int col = T_TENANT; col <= T_STATEMENT; col++)
        xb_str(s, (lxw_col_t)col, db_value(r, 0, col),
               col == T_STATUS && strcmp(db_value(r, 0, col), "issued") != 0
               ? b->bold : NULL);
    xb_dec(s, T_REVISION, db_value(r, 0, T_REVISION), b->integer);
    xb_str(s, T_SUPERSEDES, db_value(r, 0, T_SUPERSEDES), NULL);
    for (int col = T_CALLS; col <= T_BILLED; col++)
        xb_dec(s, (lxw_col_t)col, db_value(r, 0, col), b->integer);
    for (int col = T_SUBTOTAL; col <= T_TOTAL; col++)
        xb_dec(s, (lxw_col_t)col, db_value(r, 0, col),
               money(c, cur, minor, MONEY2));
    xb_str(s, T_CURRENCY, cur, NULL);
    xb_dec(s, T_PREV_TOTAL, db_value(r, 0, T_PREV_TOTAL),
           money(c, cur, minor, MONEY2));
    xb_dec(s, T_CHANGE, db_value(r, 0, T_CHANGE),
           money(c, cur, minor, MONEY2));
    /* T_MINOR is not shown: the column holds the invoice in force. */
    xb_str(s, T_MINOR, db_value(r, 0, T_IN_FORCE), NULL);
    xb_date(s, T_MINOR + 1, db_value(r, 0, T_ISSUE_DATE));
    xb_date(s, T_MINOR + 2, db_value(r, 0, T_DUE_DATE));
    xb_str(s, T_MINOR + 3, db_value(r, 0, T_CREDIT_NOTES), NULL);
    xb_next(s);
    return xb_check(b, err);
}

static ac_status write_tenants(fin_ctx *c, PGconn *conn, const char *date,
                               char *err)
{
    static const char *const head[] = {
        "Tenant", "Name", "Status", "Reason", "Statement", "Revision",
        "Supersedes", "Calls", "Rejected calls", "Billed minutes",
        "Subtotal", "Tax", "Total", "Currency", "Previous total", "Change",
        "Invoice in force", "Issue date", "Due date", "Credit notes"
    };
    const char *p[] = { date };

    ac_status rc = xb_sheet_add(&c->book, &c->s, "Tenants", err);
    if (rc != AC_OK)
        return rc;
    xb_header(&c->s, head, 20);
    rc = xb_stream(conn, tenants_sql, 1, p, tenant_row, c, err);
    if (rc != AC_OK)
        return rc;
    xb_width(&c->s, 17, 10);
    xb_width(&c->s, 18, 10);
    xb_list_finish(&c->s, 0, 20);
    fin_print(c);
    return xb_check(&c->book, err);
}

static ac_status document_row(void *ctx, const PGresult *r, char *err)
{
    fin_ctx *c = ctx;
    xb_sheet *s = &c->s;
    const char *cur = db_value(r, 0, 7), *minor = db_value(r, 0, 13);

    /* A credit note's reason wraps (first: it sets the row's height). */
    xb_str_wrapped(s, 14, db_value(r, 0, 15));
    for (int col = 0; col <= 4; col++)
        xb_str(s, (lxw_col_t)col, db_value(r, 0, col), NULL);
    xb_date(s, 5, db_value(r, 0, 5));
    xb_date(s, 6, db_value(r, 0, 6));
    xb_str(s, 7, cur, NULL);
    for (int col = 8; col <= 10; col++)
        xb_dec(s, (lxw_col_t)col, db_value(r, 0, col),
               money(c, cur, minor, col == 10 ? MONEY2_BOLD : MONEY2));
    xb_str(s, 11, db_value(r, 0, 11), NULL);
    xb_str(s, 12, db_value(r, 0, 12), NULL);
    xb_str(s, 13, db_value(r, 0, 14), NULL);
    xb_next(s);
    return xb_check(&c->book, err);
}

static ac_status write_documents(fin_ctx *c, PGconn *conn, const char *date,
                                 char *err)
{
    static const char *const head[] = {
        "Document", "Type", "Tenant", "Name", "Statement", "Issue date",
        "Due date", "Currency", "Subtotal", "Tax", "Total", "Voids",
        "Voided by", "Replaced by", "Reason"
    };
    const char *p[] = { date };

    ac_status rc = xb_sheet_add(&c->book, &c->s, "Documents", err);
    if (rc != AC_OK)
        return rc;
    xb_header(&c->s, head, 15);
    rc = xb_stream(conn,
        "SELECT d.document_no, CASE d.kind WHEN 'invoice' THEN 'invoice'"
        " ELSE 'credit note' END, d.tenant_id, i.tenant_name, d.invoice_no,"
        " to_char(d.issue_date, 'YYYY-MM-DD'),"
        " to_char(d.due_date, 'YYYY-MM-DD'), d.currency, d.subtotal, d.tax,"
        " d.total, d.voids, v.document_no, d.minor_unit, d.replaced_by,"
        " d.reason"
        " FROM billing.documents d"
        " JOIN billing.invoices i ON i.invoice_no = d.invoice_no"
        " LEFT JOIN billing.documents v ON v.voids = d.document_no"
        " WHERE d.period = $1::date"
        " ORDER BY d.tenant_id COLLATE \"C\", d.issued_at,"
        " d.series COLLATE \"C\", d.year, d.seq", 1, p, document_row, c,
        err);
    if (rc != AC_OK)
        return rc;
    xb_width(&c->s, 5, 10);
    xb_width(&c->s, 6, 10);
    xb_list_finish(&c->s, 0, 15);
    fin_print(c);
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
            " GROUP BY i.currency ORDER BY i.currency COLLATE \"C\"", 1, p,
            &res, err);
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
    fin_print(c);
    return xb_check(b, err);
}

static ac_status finding_row(void *ctx, const PGresult *r, char *err)
{
    fin_ctx *c = ctx;
    xb_sheet *s = &c->s;

    /* The detail wraps in its column, its row as tall as it needs. */
    xb_str_wrapped(s, 5, db_value(r, 0, 5));
    xb_str(s, 0, db_value(r, 0, 0), NULL);
    xb_str(s, 1, db_value(r, 0, 1), NULL);
    xb_dec(s, 2, db_value(r, 0, 2), c->book.integer);
    for (int col = 3; col <= 6; col++)
        if (col != 5)
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
        " ORDER BY i.tenant_id COLLATE \"C\", f.seq", 1, p, finding_row, c,
        err);
    if (rc != AC_OK)
        return rc;
    xb_list_finish(&c->s, 0, 7);
    fin_print(c);
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
        " ORDER BY i.tenant_id COLLATE \"C\"", 1, p, recon_row, c, err);
    if (rc != AC_OK)
        return rc;
    xb_list_finish(&c->s, 0, 12);
    fin_print(c);
    return xb_check(&c->book, err);
}

/* ------------------------------------------------ Unbilled old usage */

static ac_status old_usage_row(void *ctx, const PGresult *r, char *err)
{
    fin_ctx *c = ctx;
    xb_sheet *s = &c->s;

    for (int col = LB_TENANT; col <= LB_PERIOD; col++)
        xb_str(s, (lxw_col_t)col, db_value(r, 0, col), NULL);
    xb_dec(s, LB_CALLS, db_value(r, 0, LB_CALLS), c->book.integer);
    xb_ts(s, LB_FIRST, db_value(r, 0, LB_FIRST), c->book.datetime);
    xb_ts(s, LB_LAST, db_value(r, 0, LB_LAST), c->book.datetime);
    char *cmd = xb_printf("acbill run --period %s --tenant %s",
                          db_value(r, 0, LB_PERIOD),
                          db_value(r, 0, LB_TENANT));
    if (cmd == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    xb_str(s, LB_COLS, cmd, NULL);
    free(cmd);
    xb_next(s);
    return xb_check(&c->book, err);
}

/* Calls of periods before the look-back window of a run in period $1
 * (lookback_months of ref.operator, 3 without a row, at most 24, before
 * it) that no statement covers: a run without --period never bills them
 * (lookback.h), so finance decides whether to bill them by hand. */
static ac_status write_old_usage(fin_ctx *c, PGconn *conn, const char *date,
                                 char *err)
{
    static const char *const head[] = {
        "Tenant", "Name", "Period", "Calls", "First call (UTC)",
        "Last call (UTC)", "To bill the period"
    };
    const char *p[] = { date };
    PGresult *res;

    ac_status rc = db_query(conn, "SELECT to_char($1::date - make_interval("
                            "months => least(coalesce((SELECT lookback_months"
                            " FROM ref.operator), 3), 24)), 'YYYY-MM-DD')",
                            1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    char window[16];
    snprintf(window, sizeof window, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    rc = xb_sheet_add(&c->book, &c->s, "Unbilled old usage", err);
    if (rc != AC_OK)
        return rc;
    xb_header(&c->s, head, 7);
    const char *w[] = { window };
    rc = xb_stream(conn, lookback_unbilled_sql, 1, w, old_usage_row, c,
                   err);
    if (rc != AC_OK)
        return rc;
    xb_list_finish(&c->s, 0, 7);
    fin_print(c);
    return xb_check(&c->book, err);
}

/* ------------------------------------------------ import rejects
 * (docs/billing-rules.md 6): the rows of Microsoft's data that did not
 * load and touch the period (usage.import_reject_periods, migration 033):
 * counts by tenant, source and reason, then the first REJECTS_LISTED rows
 * with file and line, and where to find the rest. */

#define REJECTS_LISTED 1000

/* The rejects of period $1 (a date): the imports that ran from the month
 * before it on, the rows the view places in the period. */
#define PERIOD_REJECTS \
    "(SELECT p.import_id, p.line_no, p.tenant_id, p.source" \
    " FROM usage.import_reject_periods p" \
    " WHERE p.started_at >= $1::date - interval '1 month'" \
    "   AND p.period = $1::date)"

static ac_status reason_row(void *ctx, const PGresult *r, char *err)
{
    fin_ctx *c = ctx;
    xb_sheet *s = &c->s;
    for (int col = 0; col <= 2; col++)
        xb_str(s, (lxw_col_t)col, db_value(r, 0, col), NULL);
    xb_dec(s, 3, db_value(r, 0, 3), c->book.integer);
    xb_str(s, 4, db_value(r, 0, 4), NULL);
    xb_next(s);
    return xb_check(&c->book, err);
}

static ac_status reject_row(void *ctx, const PGresult *r, char *err)
{
    fin_ctx *c = ctx;
    xb_sheet *s = &c->s;
    xb_str(s, 0, db_value(r, 0, 0), NULL);
    xb_dec(s, 1, db_value(r, 0, 1), c->book.integer);
    for (int col = 2; col <= 4; col++)
        xb_str(s, (lxw_col_t)col, db_value(r, 0, col), NULL);
    xb_dec(s, 5, db_value(r, 0, 5), c->book.integer);
    xb_str(s, 6, db_value(r, 0, 6), NULL);
    xb_str(s, 7, db_value(r, 0, 7), NULL);
    xb_next(s);
    return xb_check(&c->book, err);
}

static ac_status write_import_rejects(fin_ctx *c, PGconn *conn,
                                      const char *date, char *err)
{
    static const char *const by_reason[] = {
        "Tenant", "Source", "Reason", "Rows", "Imports"
    };
    static const char *const rows[] = {
        "Tenant", "Import", "Source", "File", "Member", "Line", "Reason",
        "Imported at (UTC)"
    };
    const char *p[] = { date };
    PGresult *res;

    ac_status rc = xb_sheet_add(&c->book, &c->s, "Rejects by reason", err);
    if (rc != AC_OK)
        return rc;
    xb_header(&c->s, by_reason, 5);
    /* The reason's quoted values ('not-a-guid') are elided, so that the
     * counts group by kind. */
    rc = xb_stream(conn,
        "SELECT * FROM (SELECT x.tenant_id, x.source,"
        " regexp_replace(r.reason, '''[^'']*''', '...', 'g') AS kind,"
        " count(*) AS n, string_agg(DISTINCT x.import_id::text, ', ')"
        " FROM " PERIOD_REJECTS " x"
        " JOIN usage.import_rejects r"
        "   ON r.import_id = x.import_id AND r.line_no = x.line_no"
        " GROUP BY 1, 2, 3) g ORDER BY tenant_id COLLATE \"C\","
        " source COLLATE \"C\", n DESC, kind COLLATE \"C\"", 1, p,
        reason_row, c, err);
    if (rc != AC_OK)
        return rc;
    xb_list_finish(&c->s, 0, 5);
    fin_print(c);
    rc = xb_check(&c->book, err);

    if (rc == AC_OK)
        rc = xb_sheet_add(&c->book, &c->s, "Import rejects", err);
    if (rc != AC_OK)
        return rc;
    xb_header(&c->s, rows, 8);
    rc = xb_stream(conn,
        "SELECT x.tenant_id, x.import_id, x.source, i.file_name, i.member,"
        " x.line_no, r.reason,"
        " to_char(i.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
        " FROM " PERIOD_REJECTS " x"
        " JOIN usage.imports i ON i.import_id = x.import_id"
        " JOIN usage.import_rejects r"
        "   ON r.import_id = x.import_id AND r.line_no = x.line_no"
        " ORDER BY x.tenant_id COLLATE \"C\", x.import_id, x.line_no"
        " LIMIT " AC_STR(REJECTS_LISTED), 1, p, reject_row, c, err);
    if (rc == AC_OK)
        rc = db_query(conn,
            "SELECT count(*), string_agg(DISTINCT import_id::text, ', ')"
            " FROM " PERIOD_REJECTS " x", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    long long total = atoll(PQgetvalue(res, 0, 0));
    if (total > REJECTS_LISTED) {
        char note[640];
        snprintf(note, sizeof note, "%lld more rows: SELECT * FROM "
                 "usage.import_rejects WHERE import_id IN (%.300s); the "
                 "periods each touches: usage.import_reject_periods",
                 total - REJECTS_LISTED, PQgetvalue(res, 0, 1));
        xb_str(&c->s, 0, note, c->book.bold);
        xb_next(&c->s);
    }
    PQclear(res);
    xb_list_finish(&c->s, 0, 8);
    fin_print(c);
    return xb_check(&c->book, err);
}

ac_status report_period_is_empty(PGconn *conn, const char *period,
                                 int *empty, char *err)
{
    char date[16];
    PGresult *res;
    snprintf(date, sizeof date, "%.7s-01", period);
    const char *p[] = { date };
    ac_status rc = db_query(conn,
        "SELECT NOT (EXISTS (SELECT 1 FROM billing.invoices"
        "                     WHERE period = $1::date)"
        "  OR EXISTS (SELECT 1 FROM billing.documents WHERE period = $1::date)"
        "  OR EXISTS (SELECT 1 FROM usage.tenants t"
        "    CROSS JOIN LATERAL (SELECT usage.zone_or_utc(t.time_zone) AS tz)"
        "      z1"
        "    CROSS JOIN LATERAL (SELECT z1.tz, CASE WHEN z1.tz = t.time_zone"
        "      THEN interval '0' ELSE interval '14 hours' END AS slack) z"
        "    WHERE EXISTS (SELECT 1 FROM usage.dialout_calls c"
        "      WHERE c.tenant_id = t.tenant_id"
        "        AND c.start_time >= ($1::date::timestamp AT TIME ZONE z.tz)"
        "            - z.slack"
        "        AND c.start_time < (($1::date + interval '1 month')"
        "            AT TIME ZONE z.tz) + z.slack))"
        "  OR EXISTS " PERIOD_REJECTS ")", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    *empty = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!*empty)
        return AC_OK;
    /* Usage older than the period's look-back window that no statement
     * covers is shown in its summary (sheet "Unbilled old usage"), so it
     * is something in it (lookback.h). */
    rc = db_query(conn, "SELECT to_char($1::date - make_interval(months =>"
                  " least(coalesce((SELECT lookback_months FROM"
                  " ref.operator), 3), 24)), 'YYYY-MM-DD')", 1, p, &res,
                  err);
    if (rc != AC_OK)
        return rc;
    char window[16];
    snprintf(window, sizeof window, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *w[] = { window };
    char *sql = xb_printf("SELECT EXISTS (%s)", lookback_unbilled_sql);
    if (sql == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    rc = db_query(conn, sql, 1, w, &res, err);
    free(sql);
    if (rc != AC_OK)
        return rc;
    *empty = strcmp(PQgetvalue(res, 0, 0), "t") != 0;
    PQclear(res);
    return AC_OK;
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

/* docs/billing-rules.md 7: a sheet linking the period's reconciliation with Microsoft
 * (reconciliation-<YYYY-MM>.xlsx, beside this file), when the period has
 * Partner Center data. */
static ac_status write_partner_link(fin_ctx *c, PGconn *conn,
                                    const char *period, char *err)
{
    int has = report_reconciliation_has_data(conn, period, err);
    if (has <= 0)
        return has < 0 ? AC_EUNAVAIL : AC_OK;
    ac_status rc = xb_sheet_add(&c->book, &c->s, "Microsoft", err);
    if (rc != AC_OK)
        return rc;
    char name[64], url[80];
    snprintf(name, sizeof name, "reconciliation-%s.xlsx", period);
    snprintf(url, sizeof url, "external:%s", name);
    xb_title(&c->s, 0, "Reconciliation with Microsoft's Partner Center "
             "charges (seats, cost, revenue, margin per tenant)",
             c->book.section);
    xb_next(&c->s);
    worksheet_write_url(c->s.ws, c->s.row, 0, url, NULL);
    xb_width(&c->s, 0, (unsigned)strlen(name));
    xb_next(&c->s);
    xb_fit_columns(&c->s, 1, 10);
    fin_print(c);
    return AC_OK;
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
    /* Created: the date (UTC) of the period's latest issue (a period
     * without any: its first day). */
    PGresult *res;
    const char *p[] = { date };
    ac_status rc = db_query(conn,
        "SELECT to_char(max(t) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        " FROM (SELECT issued_at FROM billing.invoices WHERE period = $1::date"
        "  UNION ALL SELECT issued_at FROM billing.documents"
        "  WHERE period = $1::date) x(t)", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    time_t created = report_time_of(db_value(res, 0, 0));
    PQclear(res);
    snprintf(c.label, sizeof c.label, "Finance summary %s", period);
    xb_props props = {
        .title = title, .subject = subject, .category = "Finance summary",
        .keywords = keywords, .comments = "",
        .created = created ? created : xb_month_start(year, month),
    };
    rc = xb_open(&c.book, path, &props, err);
    if (rc != AC_OK)
        return rc;
    rc = write_tenants(&c, conn, date, err);
    if (rc == AC_OK)
        rc = write_documents(&c, conn, date, err);
    if (rc == AC_OK)
        rc = write_totals(&c, conn, date, err);
    if (rc == AC_OK)
        rc = write_findings(&c, conn, date, err);
    if (rc == AC_OK)
        rc = write_reconciliation(&c, conn, date, err);
    if (rc == AC_OK)
        rc = write_partner_link(&c, conn, period, err);
    if (rc == AC_OK)
        rc = write_old_usage(&c, conn, date, err);
    if (rc == AC_OK)
        rc = write_import_rejects(&c, conn, date, err);
    ac_status crc = xb_close(&c.book, rc != AC_OK, rc == AC_OK ? err : NULL);
    return rc == AC_OK ? crc : rc;
}
