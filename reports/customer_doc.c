/* customer_doc.c: reading a document for its PDF and e-invoice (see
 * customer_doc.h). */
#include "customer_doc.h"

#include <fontconfig/fontconfig.h>
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "money.h"

enum {
    H_NO, H_KIND, H_ISSUE, H_DUE, H_ISSUED_AT, H_CURRENCY, H_MINOR,
    H_SUBTOTAL, H_TAX, H_TOTAL, H_PERCENT, H_CATEGORY, H_TAX_NOTE,
    H_P_START, H_P_END, H_TENANT, H_TENANT_NAME, H_TZ, H_STATEMENT,
    H_LINES_OF, H_VOIDS, H_VOIDS_DATE, H_REASON, H_REPLACED_BY, H_PO,
    H_HAS_BUYER, H_CALL_DETAIL,
    H_SELLER,                   /* 8 columns each, cd_party's order */
    H_BUYER = H_SELLER + 8,
    H_ANNEX = H_BUYER + 8
};

#define PARTY_COLS(p) \
    " " p "->>'legal_name', " p "->>'address', " p "->>'country'," \
    " " p "->>'tax_id', " p "->>'email', " p "->>'phone'," \
    " " p "->>'payment_details', " p "->>'peppol_endpoint',"

/* reason and replaced_by are read through to_jsonb() so that the query
 * works whether or not the ledger has those columns yet (docs/billing-rules.md 4.2,
 * version 3); without replaced_by, a credit note's replacing invoice is
 * the invoice of the same revision (void and replace), if any.  A credit
 * note's tax category is the voided invoice's. */
static const char head_sql[] =
    "SELECT d.document_no, d.kind, to_char(d.issue_date, 'YYYY-MM-DD'),"
    " CASE WHEN d.kind = 'invoice'"
    "  THEN to_char(d.due_date, 'YYYY-MM-DD') END,"
    " to_char(d.issued_at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " d.currency, d.minor_unit, d.subtotal, d.tax, d.total,"
    " trim_scale(d.tax_rate * 100)::text,"
    " coalesce(nullif(coalesce(v.buyer, d.buyer)->>'tax_category', ''),"
    "  CASE WHEN d.tax_rate > 0 THEN 'S' ELSE 'O' END),"
    " nullif(d.tax_note, ''),"
    " to_char(d.period, 'YYYY-MM-DD'),"
    " to_char(d.period + interval '1 month' - interval '1 day',"
    "  'YYYY-MM-DD'),"
    " d.tenant_id, i.tenant_name, i.time_zone, d.invoice_no,"
    " coalesce(v.invoice_no, d.invoice_no), d.voids,"
    " to_char(v.issue_date, 'YYYY-MM-DD'),"
    " nullif(to_jsonb(d) ->> 'reason', ''),"
    " CASE WHEN d.kind = 'credit_note' THEN coalesce("
    "  nullif(to_jsonb(d) ->> 'replaced_by', ''),"
    "  (SELECT r.document_no FROM billing.documents r"
    "    WHERE r.invoice_no = d.invoice_no AND r.kind = 'invoice'"
    "    ORDER BY r.document_no LIMIT 1)) END,"
    " nullif(d.purchase_order, ''), d.buyer IS NOT NULL,"
    " coalesce((d.buyer ->> 'call_detail')::boolean, true),"
    PARTY_COLS("d.seller")
    PARTY_COLS("d.buyer")
    " (SELECT count(*) FROM billing.rated_calls r"
    "   WHERE r.invoice_no = coalesce(v.invoice_no, d.invoice_no)"
    "     AND r.outcome IN ('billed', 'split'))"
    " FROM billing.documents d"
    " JOIN billing.invoices i ON i.invoice_no = d.invoice_no"
    " LEFT JOIN billing.documents v ON v.document_no = d.voids"
    " WHERE d.document_no = $1";

static const char lines_sql[] =
    "SELECT country, coalesce(kind, ''), per_minute, connection_fee, calls,"
    " minutes, amount, trim_scale(per_minute)::text,"
    " trim_scale(connection_fee)::text"
    " FROM billing.invoice_lines WHERE invoice_no = $1 ORDER BY line_no";

/* A value of the head row, NULL for SQL NULL or an empty string. */
static const char *hv(const PGresult *r, int col)
{
    const char *v = db_value(r, 0, col);
    return v != NULL && *v != '\0' ? v : NULL;
}

static ac_status parse(const char *what, const char *text, int64_t *out,
                       char *err)
{
    if (text == NULL || money_parse(text, out) != AC_OK)
        return ac_fail(err, AC_EDATA, "%s '%s' is not an exact decimal "
                       "of at most 4 places", what, text ? text : "(null)");
    return AC_OK;
}

static void party(const PGresult *r, int col, cd_party *p)
{
    p->legal_name = hv(r, col);
    p->address = hv(r, col + 1);
    p->country = hv(r, col + 2);
    p->tax_id = hv(r, col + 3);
    p->email = hv(r, col + 4);
    p->phone = hv(r, col + 5);
    p->payment_details = hv(r, col + 6);
    p->peppol_endpoint = hv(r, col + 7);
}

void report_documents_init(void)
{
    xmlInitParser();
    FcInit();
}

ac_status cd_load(PGconn *conn, const char *document_no, cd_doc *doc,
                  char *err)
{
    const char *p[] = { document_no };
    PGresult *r;
    ac_status rc;

    memset(doc, 0, sizeof *doc);
    rc = db_query(conn, head_sql, 1, p, &r, err);
    if (rc != AC_OK)
        return rc;
    doc->head_res = r;
    if (PQntuples(r) != 1)
        return ac_fail(err, AC_EDATA, "document %s not found", document_no);
    doc->document_no = hv(r, H_NO);
    doc->credit_note = strcmp(hv(r, H_KIND), "credit_note") == 0;
    doc->issue_date = hv(r, H_ISSUE);
    doc->due_date = hv(r, H_DUE);
    doc->issued_at = hv(r, H_ISSUED_AT);
    doc->currency = hv(r, H_CURRENCY);
    doc->minor_unit = atoi(hv(r, H_MINOR));
    doc->tax_percent = hv(r, H_PERCENT);
    doc->tax_category = hv(r, H_CATEGORY);
    doc->tax_note = hv(r, H_TAX_NOTE);
    doc->period_start = hv(r, H_P_START);
    doc->period_end = hv(r, H_P_END);
    doc->tenant_id = hv(r, H_TENANT);
    doc->tenant_name = hv(r, H_TENANT_NAME);
    doc->time_zone = hv(r, H_TZ);
    doc->statement_no = hv(r, H_STATEMENT);
    doc->lines_of = hv(r, H_LINES_OF);
    doc->voids = hv(r, H_VOIDS);
    doc->voids_date = hv(r, H_VOIDS_DATE);
    doc->reason = hv(r, H_REASON);
    doc->replaced_by = hv(r, H_REPLACED_BY);
    doc->purchase_order = hv(r, H_PO);
    doc->has_buyer = strcmp(hv(r, H_HAS_BUYER), "t") == 0;
    doc->call_detail = strcmp(hv(r, H_CALL_DETAIL), "t") == 0;
    party(r, H_SELLER, &doc->seller);
    party(r, H_BUYER, &doc->buyer);
    doc->annex_calls = atoll(hv(r, H_ANNEX));
    if ((rc = parse("subtotal", hv(r, H_SUBTOTAL), &doc->subtotal, err)) !=
        AC_OK ||
        (rc = parse("tax", hv(r, H_TAX), &doc->tax, err)) != AC_OK ||
        (rc = parse("total", hv(r, H_TOTAL), &doc->total, err)) != AC_OK)
        return rc;
    if (doc->minor_unit < 0 || doc->minor_unit > 4)
        return ac_fail(err, AC_EDATA, "document %s: minor unit %d",
                       document_no, doc->minor_unit);

    const char *q[] = { doc->lines_of };
    rc = db_query(conn, lines_sql, 1, q, &r, err);
    if (rc != AC_OK)
        return rc;
    doc->lines_res = r;
    doc->nlines = PQntuples(r);
    if (doc->nlines > 0) {
        doc->lines = calloc((size_t)doc->nlines, sizeof *doc->lines);
        if (doc->lines == NULL)
            return ac_fail(err, AC_EOSERR, "out of memory");
    }
    for (int i = 0; i < doc->nlines; i++) {
        cd_line *l = &doc->lines[i];
        int64_t calls, minutes;
        l->country = db_value(r, i, 0);
        l->kind = db_value(r, i, 1);
        l->rate_text = db_value(r, i, 7);
        l->fee_text = db_value(r, i, 8);
        if ((rc = parse("rate", db_value(r, i, 2), &l->rate, err)) !=
            AC_OK ||
            (rc = parse("fee", db_value(r, i, 3), &l->fee, err)) != AC_OK ||
            (rc = parse("amount", db_value(r, i, 6), &l->amount, err)) !=
            AC_OK)
            return rc;
        calls = atoll(db_value(r, i, 4));
        minutes = atoll(db_value(r, i, 5));
        l->calls = calls;
        l->minutes = minutes;
    }
    return AC_OK;
}

void cd_free(cd_doc *doc)
{
    PQclear(doc->head_res);
    PQclear(doc->lines_res);
    free(doc->lines);
    memset(doc, 0, sizeof *doc);
}

int cd_ubl_skip_reason(const cd_doc *doc, char *why, size_t len)
{
    why[0] = '\0';
    if (!doc->has_buyer || doc->buyer.peppol_endpoint == NULL)
        snprintf(why, len, "no e-invoice: the buyer has no Peppol address "
                 "(ref.customers.peppol_endpoint)");
    else if (doc->seller.peppol_endpoint == NULL)
        snprintf(why, len, "no e-invoice: the seller has no Peppol address "
                 "(ref.operator.peppol_endpoint), and Peppol needs both");
    else if (doc->minor_unit > 2)
        snprintf(why, len, "no e-invoice: %s has %d decimals and EN 16931 "
                 "allows at most 2", doc->currency, doc->minor_unit);
    else if (doc->nlines == 0)
        snprintf(why, len, "no e-invoice: the document has no lines "
                 "(EN 16931 needs at least one)");
    return why[0] != '\0';
}
