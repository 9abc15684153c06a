/* journal.c: the sales journal of a month of issue (see report.h).
 *
 * One pass over the month's journal lines (billing.journal_lines, in line
 * order) writes both the Journal sheet and the CSV twin; the Totals sheet
 * sums in SQL (exact numeric), per currency and per currency, tax
 * category and rate.  Everything comes from the ledger, so the same
 * ledger gives the same bytes. */
#include "report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "xlsx_book.h"

/* Columns of rows_sql, in the order of the journal's columns. */
enum {
    J_LINE, J_DATE, J_NO, J_KIND, J_TENANT, J_BUYER, J_BUYER_TAX_ID,
    J_PERIOD, J_CURRENCY, J_CATEGORY, J_RATE, J_NET, J_TAX, J_GROSS, J_DUE,
    J_VOIDS, J_REPLACED_BY, J_COLS, J_MINOR = J_COLS
};

static const char rows_sql[] =
    "SELECT j.line, to_char(d.issue_date, 'YYYY-MM-DD'), d.document_no,"
    " d.kind, d.tenant_id, d.buyer->>'legal_name', d.buyer->>'tax_id',"
    " to_char(d.period, 'YYYY-MM'), d.currency,"
    /* Documents issued before version 3 did not record their category:
     * resolved as docs/billing-rules.md 2 says. */
    " coalesce(d.tax_category,"
    "   CASE WHEN d.tax_rate > 0 THEN 'S' ELSE 'O' END),"
    " trim_scale(d.tax_rate * 100), d.subtotal, d.tax, d.total,"
    " to_char(d.due_date, 'YYYY-MM-DD'), d.voids, d.replaced_by,"
    " d.minor_unit"
    " FROM billing.journal_lines j"
    " JOIN billing.documents d ON d.document_no = j.document_no"
    " WHERE j.month = $1::date ORDER BY j.line";

/* The workbook's headers, and the CSV's (one header line). */
static const char *const head[J_COLS] = {
    "Line", "Issue date", "Document", "Kind", "Tenant", "Buyer",
    "Buyer tax ID", "Period", "Currency", "Tax category", "Tax rate (%)",
    "Net", "Tax", "Gross", "Due date", "Voids", "Replaced by"
};
static const char *const csv_head[J_COLS] = {
    "line", "issue_date", "document_no", "kind", "tenant_id", "buyer",
    "buyer_tax_id", "period", "currency", "tax_category", "tax_rate_percent",
    "net", "tax", "gross", "due_date", "voids", "replaced_by"
};
/* Which columns are numbers (written unquoted in the CSV). */
static const int numeric[J_COLS] = {
    [J_LINE] = 1, [J_RATE] = 1, [J_NET] = 1, [J_TAX] = 1, [J_GROSS] = 1
};

typedef struct {
    xb_book book;
    xb_sheet s;
    FILE *csv;
    int csv_failed;             /* a write to the CSV failed */
    char label[64];
} jr_ctx;

/* One CSV field (RFC 4180): a number as it is; text always quoted, its
 * quotes doubled (line breaks stay inside the quotes); NULL empty. */
static void csv_field(jr_ctx *c, const char *v, int number, int last)
{
    FILE *f = c->csv;
    if (v != NULL && number) {
        if (fputs(v, f) == EOF)
            c->csv_failed = 1;
    } else if (v != NULL) {
        if (putc('"', f) == EOF)
            c->csv_failed = 1;
        for (const char *p = v; *p; p++)
            if ((*p == '"' && putc('"', f) == EOF) || putc(*p, f) == EOF)
                c->csv_failed = 1;
        if (putc('"', f) == EOF)
            c->csv_failed = 1;
    }
    if (fputs(last ? "\r\n" : ",", f) == EOF)
        c->csv_failed = 1;
}

static lxw_format *money(jr_ctx *c, const char *currency, const char *minor,
                         int bold)
{
    const xb_money *m = xb_money_of(&c->book, currency,
                                    minor ? atoi(minor) : 2);
    if (m == NULL)
        return c->book.decimal4;
    return bold ? m->m2_bold : m->m2;
}

static ac_status journal_row(void *ctx, const PGresult *r, char *err)
{
    jr_ctx *c = ctx;
    xb_sheet *s = &c->s;
    xb_book *b = &c->book;
    const char *cur = db_value(r, 0, J_CURRENCY);
    const char *minor = db_value(r, 0, J_MINOR);

    for (int col = 0; col < J_COLS; col++)
        csv_field(c, db_value(r, 0, col), numeric[col], col == J_COLS - 1);
    xb_dec(s, J_LINE, db_value(r, 0, J_LINE), b->integer);
    xb_date(s, J_DATE, db_value(r, 0, J_DATE));
    for (int col = J_NO; col <= J_CATEGORY; col++)
        xb_str(s, (lxw_col_t)col, db_value(r, 0, col), NULL);
    xb_dec(s, J_RATE, db_value(r, 0, J_RATE), NULL);
    for (int col = J_NET; col <= J_GROSS; col++)
        xb_dec(s, (lxw_col_t)col, db_value(r, 0, col),
               money(c, cur, minor, col == J_GROSS));
    xb_date(s, J_DUE, db_value(r, 0, J_DUE));
    xb_str(s, J_VOIDS, db_value(r, 0, J_VOIDS), NULL);
    xb_str(s, J_REPLACED_BY, db_value(r, 0, J_REPLACED_BY), NULL);
    xb_next(s);
    return c->csv_failed ? ac_fail(err, AC_EIO, "cannot write the CSV: %s",
                                   strerror(errno))
                         : xb_check(b, err);
}

static ac_status total_row(void *ctx, const PGresult *r, char *err)
{
    jr_ctx *c = ctx;
    xb_sheet *s = &c->s;
    xb_book *b = &c->book;
    const char *cur = db_value(r, 0, 0), *minor = db_value(r, 0, 8);
    int all = db_value(r, 0, 1) == NULL;    /* the currency's total */

    xb_str(s, 0, cur, all ? b->bold : NULL);
    xb_str(s, 1, all ? "all" : db_value(r, 0, 1), all ? b->bold : NULL);
    xb_dec(s, 2, db_value(r, 0, 2), NULL);
    xb_dec(s, 3, db_value(r, 0, 3), all ? b->integer_bold : b->integer);
    xb_dec(s, 4, db_value(r, 0, 4), b->integer);
    for (int col = 5; col <= 7; col++)
        xb_dec(s, (lxw_col_t)col, db_value(r, 0, col),
               money(c, cur, minor, all));
    xb_next(s);
    return xb_check(b, err);
}

/* Totals per currency (all categories) and, under each, per tax category
 * and rate: documents, invoices, net, tax, gross; the rows of a currency
 * re-add to its total exactly (one SUM over the same rows). */
static ac_status write_totals(jr_ctx *c, PGconn *conn, const char *date,
                              char *err)
{
    static const char *const th[] = {
        "Currency", "Tax category", "Tax rate (%)", "Documents",
        "Credit notes", "Net", "Tax", "Gross"
    };
    const char *p[] = { date };
    ac_status rc = xb_sheet_add(&c->book, &c->s, "Totals", err);
    if (rc != AC_OK)
        return rc;
    xb_header(&c->s, th, 8);
    rc = xb_stream(conn,
        "SELECT d.currency, g.cat, trim_scale(d.tax_rate * 100),"
        " count(*), count(*) FILTER (WHERE d.kind = 'credit_note'),"
        " sum(d.subtotal), sum(d.tax), sum(d.total), max(d.minor_unit)"
        " FROM billing.journal_lines j"
        " JOIN billing.documents d ON d.document_no = j.document_no"
        " CROSS JOIN LATERAL (SELECT coalesce(d.tax_category, CASE WHEN"
        "   d.tax_rate > 0 THEN 'S' ELSE 'O' END) AS cat) g"
        " WHERE j.month = $1::date"
        " GROUP BY GROUPING SETS ((d.currency),"
        "   (d.currency, g.cat, d.tax_rate))"
        " ORDER BY d.currency, g.cat NULLS FIRST, d.tax_rate",
        1, p, total_row, c, err);
    if (rc != AC_OK)
        return rc;
    xb_list_finish(&c->s, 0, 8);
    xb_print_setup(&c->s, 1, 0, 0, c->label, 0, XB_PAPER_A4);
    return xb_check(&c->book, err);
}

ac_status report_journal(PGconn *conn, const char *month,
                         const char *xlsx_path, const char *csv_path,
                         char *err)
{
    jr_ctx c;
    char date[16], title[64], subject[160], keywords[64];
    int year, month_no;
    PGresult *res;

    memset(&c, 0, sizeof c);
    if (month == NULL || strlen(month) != 7 || month[4] != '-' ||
        sscanf(month, "%4d-%2d", &year, &month_no) != 2 || year < 1900 ||
        month_no < 1 || month_no > 12)
        return ac_fail(err, AC_EUSAGE, "bad month '%s' (want YYYY-MM)",
                       month ? month : "(null)");
    snprintf(date, sizeof date, "%s-01", month);
    const char *p[] = { date };
    /* Created: the issue time of the month's latest document. */
    ac_status rc = db_query(conn,
        "SELECT to_char(max(d.issued_at) AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD HH24:MI:SS') FROM billing.journal_lines j"
        " JOIN billing.documents d ON d.document_no = j.document_no"
        " WHERE j.month = $1::date", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    time_t created = report_time_of(db_value(res, 0, 0));
    PQclear(res);

    snprintf(title, sizeof title, "Sales journal %s", month);
    snprintf(subject, sizeof subject, "Invoices and credit notes issued in "
             "%s (by issue date), Teams Audio Conferencing dial-out", month);
    snprintf(keywords, sizeof keywords, "acbill, sales journal, %s", month);
    snprintf(c.label, sizeof c.label, "Sales journal %s", month);
    xb_props props = {
        .title = title, .subject = subject, .category = "Sales journal",
        .keywords = keywords, .comments = "",
        .created = created ? created : xb_month_start(year, month_no),
    };
    c.csv = fopen(csv_path, "wb");
    if (c.csv == NULL)
        return ac_fail(err, AC_ECANTCREAT, "cannot create %s: %s", csv_path,
                       strerror(errno));
    rc = xb_open(&c.book, xlsx_path, &props, err);
    if (rc != AC_OK) {
        fclose(c.csv);
        remove(csv_path);
        return rc;
    }
    for (int col = 0; col < J_COLS; col++)
        csv_field(&c, csv_head[col], 0, col == J_COLS - 1);
    rc = xb_sheet_add(&c.book, &c.s, "Journal", err);
    if (rc == AC_OK) {
        xb_header(&c.s, head, J_COLS);
        rc = xb_stream(conn, rows_sql, 1, p, journal_row, &c, err);
    }
    if (rc == AC_OK) {
        xb_list_finish(&c.s, 0, J_COLS);
        xb_print_setup(&c.s, 1, 0, 0, c.label, 0, XB_PAPER_A4);
        rc = xb_check(&c.book, err);
    }
    if (rc == AC_OK)
        rc = write_totals(&c, conn, date, err);
    ac_status crc = xb_close(&c.book, rc != AC_OK, rc == AC_OK ? err : NULL);
    if (rc == AC_OK)
        rc = crc;
    if ((fflush(c.csv) != 0 || ferror(c.csv) || c.csv_failed) &&
        rc == AC_OK)
        rc = ac_fail(err, AC_EIO, "cannot write %s: %s", csv_path,
                     strerror(errno));
    if (fclose(c.csv) != 0 && rc == AC_OK)
        rc = ac_fail(err, AC_EIO, "cannot write %s: %s", csv_path,
                     strerror(errno));
    if (rc != AC_OK)
        remove(csv_path);
    return rc;
}
