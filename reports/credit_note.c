/* credit_note.c: the workbook of one credit note (see report.h).
 *
 * One sheet, `Credit note`: the header (what it is, its number and issue
 * date, the invoice it voids, seller and buyer as recorded on the credit
 * note, its reason and the invoice that replaces it), then the voided
 * invoice's lines negated, and the credit note's
 * own subtotal, tax and total (negative).  The lines must add up to the
 * subtotal: a credit note voids the whole invoice (docs/billing-rules.md 4.2). */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "countries.h"
#include "db.h"
#include "money.h"
#include "xlsx_book.h"

enum {
    K_NO, K_ISSUE_DATE, K_ISSUED_AT, K_CURRENCY, K_MINOR, K_SUBTOTAL, K_TAX,
    K_TOTAL, K_TAX_RATE, K_TAX_NOTE, K_S_NAME, K_S_ADDR, K_S_COUNTRY,
    K_S_TAX_ID, K_S_PAYMENT, K_B_NAME, K_B_ADDR, K_B_COUNTRY, K_B_TAX_ID,
    K_B_EMAIL, K_HAS_BUYER, K_PO, K_ENTRA, K_PERIOD, K_TENANT, K_VOIDS,
    K_VOIDS_DATE, K_VOIDS_STATEMENT, K_VOIDS_TOTAL, K_TENANT_NAME,
    K_STATEMENT, K_LINES_SUM, K_REASON, K_REPLACED_BY
};

static const char cn_sql[] =
    "SELECT c.document_no, to_char(c.issue_date, 'YYYY-MM-DD'),"
    " to_char(c.issued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
    " c.currency, c.minor_unit, c.subtotal, c.tax, c.total,"
    " trim_scale(c.tax_rate * 100) || ' %', c.tax_note,"
    " c.seller->>'legal_name', c.seller->>'address', c.seller->>'country',"
    " c.seller->>'tax_id', c.seller->>'payment_details',"
    " c.buyer->>'legal_name', c.buyer->>'address', c.buyer->>'country',"
    " c.buyer->>'tax_id', c.buyer->>'email', c.buyer IS NOT NULL,"
    " c.purchase_order, c.entra_tenant_id, to_char(c.period, 'YYYY-MM'),"
    " c.tenant_id, v.document_no, to_char(v.issue_date, 'YYYY-MM-DD'),"
    " v.invoice_no, v.total, i.tenant_name, c.invoice_no,"
    " (SELECT coalesce(-sum(amount), 0) FROM billing.invoice_lines l"
    "   WHERE l.invoice_no = v.invoice_no),"
    " c.reason, c.replaced_by"
    " FROM billing.documents c"
    " JOIN billing.documents v ON v.document_no = c.voids"
    " JOIN billing.invoices i ON i.invoice_no = v.invoice_no"
    " WHERE c.document_no = $1 AND c.kind = 'credit_note'";

static const char *kv(const PGresult *r, int col)
{
    return db_value(r, 0, col);
}

static ac_status write_credit_note(xb_book *b, PGconn *conn,
                                   const PGresult *r, char *err)
{
    static const char *const head[] = {
        "Country", "Code", "Kind", "Rate per minute", "Connection fee",
        "Calls", "Minutes", "Amount", "Invoice line"
    };
    xb_sheet sh, *s = &sh;
    char t[512];
    PGresult *res;
    const xb_money *m = xb_money_of(b, kv(r, K_CURRENCY),
                                    atoi(kv(r, K_MINOR)));

    ac_status rc = xb_sheet_add(b, s, "Credit note", err);
    if (rc != AC_OK)
        return rc;
    snprintf(t, sizeof t, "Credit note %s", kv(r, K_NO));
    xb_title(s, 0, t, b->title_f);
    xb_next(s);
    snprintf(t, sizeof t, "Voids invoice %s of %s in full",
             kv(r, K_VOIDS), kv(r, K_VOIDS_DATE));
    xb_title(s, 0, t, b->italic);
    xb_next(s);
    xb_next(s);
    xb_label(s, "Document type", "Credit note", NULL);
    xb_label(s, "Document number", kv(r, K_NO), NULL);
    xb_label_date(s, "Issue date", kv(r, K_ISSUE_DATE));
    snprintf(t, sizeof t, "invoice %s of %s (statement %s)", kv(r, K_VOIDS),
             kv(r, K_VOIDS_DATE), kv(r, K_VOIDS_STATEMENT));
    xb_label(s, "Voids", t, NULL);
    /* docs/billing-rules.md 4.2, version 3: the replacing invoice, or none. */
    if (kv(r, K_REPLACED_BY) != NULL)
        xb_label(s, "Replaced by", kv(r, K_REPLACED_BY), NULL);
    else if (kv(r, K_REASON) != NULL)
        xb_label_note(s, "Replaced by", "(none: voided without "
                      "replacement; the new total is 0)");
    xb_str(s, 0, "Voided invoice's total", NULL);
    xb_dec(s, 1, kv(r, K_VOIDS_TOTAL), m->m2);
    xb_next(s);
    xb_str(s, 0, "Total credited", b->bold);
    xb_dec(s, 1, kv(r, K_TOTAL), m->m2_bold);
    xb_next(s);
    if (kv(r, K_REASON) != NULL) {
        /* The reason in words, across the printed width, wrapped. */
        char *why = xb_clean_dup(kv(r, K_REASON), XB_STR_MAX);
        xb_str(s, 0, "Reason", b->bold);
        xb_next(s);
        if (why == NULL)
            return ac_fail(err, AC_EOSERR, "out of memory");
        worksheet_set_row(s->ws, s->row,
                          15.0 * (double)(strlen(why) / 110 + 1), NULL);
        worksheet_merge_range(s->ws, s->row, 0, s->row, 8, why, b->wrap);
        free(why);
        xb_next(s);
    }
    xb_next(s);
    xb_party(s, "Seller", kv(r, K_S_NAME), kv(r, K_S_ADDR),
             kv(r, K_S_COUNTRY), kv(r, K_S_TAX_ID), "Payment details",
             kv(r, K_S_PAYMENT), "(no seller recorded)");
    xb_next(s);
    int buyer = strcmp(kv(r, K_HAS_BUYER), "t") == 0;
    xb_party(s, "Buyer", buyer ? kv(r, K_B_NAME) : kv(r, K_TENANT_NAME),
             buyer ? kv(r, K_B_ADDR) : NULL,
             buyer ? kv(r, K_B_COUNTRY) : NULL,
             buyer ? kv(r, K_B_TAX_ID) : NULL, "Buyer's email",
             buyer ? kv(r, K_B_EMAIL) : NULL, NULL);
    if (!buyer)
        xb_label_note(s, "", "(no billing profile: no buyer details)");
    if (kv(r, K_PO) != NULL)
        xb_label(s, "Purchase order", kv(r, K_PO), NULL);
    if (kv(r, K_ENTRA) != NULL)
        xb_label(s, "Entra tenant ID", kv(r, K_ENTRA), NULL);
    xb_next(s);
    xb_label(s, "Tenant", kv(r, K_TENANT_NAME), NULL);
    xb_label(s, "Tenant ID", kv(r, K_TENANT), NULL);
    xb_label(s, "Currency", kv(r, K_CURRENCY), NULL);
    xb_label(s, "Period", kv(r, K_PERIOD), NULL);
    xb_label(s, "Statement number", kv(r, K_STATEMENT), NULL);

    /* The voided invoice's lines, negated. */
    const char *p[] = { kv(r, K_VOIDS_STATEMENT) };
    rc = db_query(conn,
        "SELECT country, kind, per_minute, connection_fee, -calls, -minutes,"
        " -amount, line_no FROM billing.invoice_lines WHERE invoice_no = $1"
        " ORDER BY line_no", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    xb_next(s);
    xb_title(s, 0, "Lines credited (the voided invoice's lines, negated)",
             b->section);
    xb_next(s);
    xb_header_tall(s, head, 9);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *code = db_value(res, i, 0);
        const char *name = country_name(code);
        xb_str(s, 0, name ? name : "(unknown)", name ? NULL : b->italic);
        xb_str(s, 1, code, NULL);
        xb_str(s, 2, db_value(res, i, 1), NULL);
        xb_dec(s, 3, db_value(res, i, 2), m->m4);
        xb_dec(s, 4, db_value(res, i, 3), m->m4);
        xb_dec(s, 5, db_value(res, i, 4), b->integer);
        xb_dec(s, 6, db_value(res, i, 5), b->integer);
        xb_dec(s, 7, db_value(res, i, 6), m->m2);
        xb_dec(s, 8, db_value(res, i, 7), b->integer);
        xb_next(s);
    }
    if (PQntuples(res) == 0) {
        xb_title(s, 0, "The voided invoice had no lines.", b->italic);
        xb_next(s);
    }
    PQclear(res);
    xb_str(s, 0, "Subtotal", b->bold);
    xb_dec(s, 7, kv(r, K_SUBTOTAL), m->m2_bold);
    xb_next(s);
    snprintf(t, sizeof t, "Tax (%s)", kv(r, K_TAX_RATE));
    xb_str(s, 0, t, NULL);
    xb_dec(s, 7, kv(r, K_TAX), m->m2);
    xb_next(s);
    if (kv(r, K_TAX_NOTE) != NULL && kv(r, K_TAX_NOTE)[0] != '\0')
        xb_label_lines(s, "Tax note", kv(r, K_TAX_NOTE), b->italic, 4);
    xb_str(s, 0, "Total credited", b->bold);
    xb_dec(s, 7, kv(r, K_TOTAL), m->m2_bold);
    xb_next(s);

    static const double widths[] = { 36, 13, 11, 12, 12, 8, 9, 13, 9 };
    for (lxw_col_t col = 0; col < sizeof widths / sizeof *widths; col++)
        worksheet_set_column(s->ws, col, col,
                             xb_number_column_width(s, col, widths[col]),
                             NULL);
    snprintf(t, sizeof t, "Credit note %s", kv(r, K_NO));
    worksheet_print_area(s->ws, 0, 0, s->row, 8);
    xb_print_setup(s, 0, 0, 0, t, 0, xb_paper_of(kv(r, K_S_COUNTRY)));
    return xb_check(b, err);
}

ac_status report_credit_note_workbook(PGconn *conn, const char *document_no,
                                      const char *path, char *err)
{
    const char *p[] = { document_no };
    PGresult *r;
    xb_book book;
    char *title = NULL, *subject = NULL, *keywords = NULL,
         *comments = NULL;    /* whole: xb_open() cuts them */

    ac_status rc = db_query(conn, cn_sql, 1, p, &r, err);
    if (rc != AC_OK)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return ac_fail(err, AC_EDATA, "credit note %s not found",
                       document_no);
    }
    /* A credit note voids the whole invoice: its lines, negated, are its
     * subtotal. */
    int64_t sub, lines;
    if (money_parse(kv(r, K_SUBTOTAL), &sub) != AC_OK ||
        money_parse(kv(r, K_LINES_SUM), &lines) != AC_OK || sub != lines) {
        rc = ac_fail(err, AC_EDATA, "credit note %s: subtotal %s, but the "
                     "voided invoice %s's lines negated add up to %s",
                     document_no, kv(r, K_SUBTOTAL), kv(r, K_VOIDS),
                     kv(r, K_LINES_SUM));
        PQclear(r);
        return rc;
    }
    title = xb_printf("Credit note %s, %s", document_no,
                      kv(r, K_TENANT_NAME));
    subject = xb_printf("Credit note voiding invoice %s of "
                        "%s (%s), period %s", kv(r, K_VOIDS),
                        kv(r, K_TENANT_NAME), kv(r, K_TENANT),
                        kv(r, K_PERIOD));
    keywords = xb_printf("acbill, credit note, %s, %s, %s",
                         document_no, kv(r, K_TENANT), kv(r, K_PERIOD));
    comments = xb_printf("Voids invoice %s (statement %s).",
                         kv(r, K_VOIDS), kv(r, K_VOIDS_STATEMENT));
    xb_props props = {
        .title = title, .subject = subject, .category = "Credit note",
        .keywords = keywords, .comments = comments,
        /* Its recorded issue time (docs/billing-rules.md 4.3): the same bytes when it is
         * written again. */
        .created = report_time_of(kv(r, K_ISSUED_AT)),
    };
    rc = title && subject && keywords && comments
       ? xb_open(&book, path, &props, err)
       : ac_fail(err, AC_EOSERR, "out of memory");
    free(title);
    free(subject);
    free(keywords);
    free(comments);
    if (rc == AC_OK) {
        rc = write_credit_note(&book, conn, r, err);
        ac_status crc = xb_close(&book, rc != AC_OK,
                                 rc == AC_OK ? err : NULL);
        if (rc == AC_OK)
            rc = crc;
    }
    PQclear(r);
    return rc;
}
