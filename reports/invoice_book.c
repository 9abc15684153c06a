/* invoice_book.c: the workbook of one statement revision (see report.h).
 *
 * Sheets, in this order: Summary, Changes (a revision: the calls added,
 * removed or re-rated), Calls (and Calls (2), ... past the row limit),
 * Organizers, Findings, Reconciliation.  constant_memory mode
 * means each sheet is written top to bottom, but sheets need not be
 * written in their order.  So the calls are read once (from the job's
 * spool, or from billing.rated_calls), and that one pass writes the Calls
 * rows, adds up what the Summary reports about the calls (outcomes,
 * reject reasons, minutes per country) in exact 1/10000 units, and sets
 * the calls that differ from the provider's charge aside in a temporary
 * file.  The Summary, added first, is written after the pass; the
 * Reconciliation last, its totals from the ledger
 * (billing.invoice_reconciliation, recorded at issue), which must agree
 * with the calls set aside.  Small tables (invoice lines, organizers,
 * findings) are queried.
 * Sums, orders and causes are computed here in C, never by the
 * database's collation, so the bytes do not depend on the server. */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "countries.h"
#include "db.h"
#include "money.h"
#include "rate/rating.h"
#include "xlsx_book.h"

static unsigned calls_limit = REPORT_CALLS_SHEET_MAX;

void report_set_calls_sheet_limit(unsigned rows)
{
    calls_limit = (rows == 0 || rows > REPORT_CALLS_SHEET_MAX) ?
                  REPORT_CALLS_SHEET_MAX : rows;
}

/* Columns of the invoice query. */
enum {
    I_NO, I_TENANT, I_NAME, I_PERIOD, I_REVISION, I_SUPERSEDES, I_CURRENCY,
    I_TZ, I_START, I_END, I_SEATS, I_BASIS, I_POOL, I_POOL_USED, I_EXEMPT,
    I_BILLED, I_CALLS, I_REJECTED, I_TOTAL, I_ISSUED, I_POOL_LEFT,
    /* billing.invoice_reconciliation, recorded when it was issued */
    I_R_CHARGED, I_R_COMPARED, I_R_OTHER, I_R_PROVIDER, I_R_ACBILL,
    I_R_DIFFERENCE, I_R_DIFFERING,
    /* the version 2 rules: money to the minor unit, tax */
    I_SUBTOTAL, I_TAX, I_TAX_RATE, I_MINOR,
    /* the statement's issue date in the tenant's zone, the period's last
     * day */
    I_ISSUE_DATE, I_LAST_DAY,
    /* SPEC version 3: the US/CA pool */
    I_USCA_SEATS, I_USCA_POOL, I_USCA_USED, I_USCA_LEFT
};

static const char invoice_sql[] =
    "SELECT invoice_no, tenant_id, tenant_name, to_char(period, 'YYYY-MM'),"
    " revision, supersedes, currency, time_zone,"
    " to_char(period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
    " to_char(period_end AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
    " seats, seats_basis, pool_minutes, pool_used_minutes, exempt_minutes,"
    " billed_minutes, calls, rejected_calls, total,"
    " to_char(issued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
    " pool_minutes - pool_used_minutes,"
    " r.charged_calls, r.compared_calls, r.charged_calls - r.compared_calls,"
    " r.provider_total, r.acbill_total, r.provider_total - r.acbill_total,"
    " r.differing_calls, i.subtotal, i.tax,"
    " trim_scale(i.tax_rate * 100) || ' %', i.minor_unit,"
    " to_char(issued_at AT TIME ZONE time_zone, 'YYYY-MM-DD'),"
    " to_char(period + interval '1 month' - interval '1 day', 'YYYY-MM-DD'),"
    " usca_seats, usca_pool_minutes, usca_pool_used_minutes,"
    " usca_pool_minutes - usca_pool_used_minutes"
    " FROM billing.invoices i"
    " LEFT JOIN billing.invoice_reconciliation r USING (invoice_no)"
    " WHERE invoice_no = $1";

/* Calls: the columns of docs/billing-rules.md 4.3, in its order. */
static const char *const calls_header[] = {
    "Usage ID", "Start (local time)", "Organizer", "Destination", "Country",
    "Kind", "Duration (s)", "Minutes", "Outcome", "Pool minutes",
    "Billed minutes", "Rate", "Connection fee", "Amount", "Reason",
    /* then (docs/billing-rules.md 4.3) */
    "Line", "Call ID", "Conference ID", "Organizer name", "Provider charge",
    "Provider currency", "Provider capability"
};
#define CALLS_COLS 22

/* docs/billing-rules.md 4.3, version 3: for a tenant with a US/CA pool in the period, a
 * column "US/CA pool minutes" follows "Pool minutes" (column 9); the
 * other tenants keep the columns above. */
static const char *const calls_header_usca[] = {
    "Usage ID", "Start (local time)", "Organizer", "Destination", "Country",
    "Kind", "Duration (s)", "Minutes", "Outcome", "Pool minutes",
    "US/CA pool minutes",
    "Billed minutes", "Rate", "Connection fee", "Amount", "Reason",
    "Line", "Call ID", "Conference ID", "Organizer name", "Provider charge",
    "Provider currency", "Provider capability"
};

/* A rated call as the pass sees it: the first 15 Calls columns, then the
 * provider's charge and currency, the call and conference ids and the
 * provider's capability (NULL for SQL NULL). */
enum {
    V_USAGE, V_START, V_ORGANIZER, V_DEST, V_COUNTRY, V_KIND, V_DURATION,
    V_MINUTES, V_OUTCOME, V_POOL, V_BILLED, V_RATE, V_FEE, V_AMOUNT,
    V_REASON, V_PCHARGE, V_PCUR, V_CALL_ID, V_CONF_ID, V_CAPABILITY,
    V_USCA,                     /* the part of V_POOL from the US/CA pool */
    V_COUNT
};

static const char calls_sql[] =
    "SELECT usage_id, to_char(start_local, 'YYYY-MM-DD HH24:MI:SS.US'),"
    " organizer_id, destination_number, country, kind, duration_seconds,"
    " minutes, outcome, pool_minutes, billed_minutes, per_minute,"
    " connection_fee, amount, reason, provider_charge, provider_currency,"
    " call_id, conference_id, provider_capability, usca_pool_minutes"
    " FROM billing.rated_calls WHERE invoice_no = $1 ORDER BY seq";

/* Outcomes in the order of the rules. */
static const char *const outcome_name[] = {
    "rejected", "zero", "exempt", "pool", "split", "billed"
};
#define OUTCOMES 6

typedef struct {
    int64_t calls, minutes, pool, billed, amount;   /* amount in units */
} outcome_sum;

typedef struct {
    char *reason;
    int64_t calls;
} reason_count;


/* Recon rows set aside during the pass: 13 COPY-text fields a line. */
#define RECON_COLS 13

#define SPOOL_READ_BUFFER (256 * 1024)


/* A country's minutes. */
typedef struct {
    int64_t minutes;
    int code;                   /* the code's two bytes */
} country_total;

/* Countries a workbook can list: every pair of letters A-Z, and a few
 * codes of other characters. */
#define MAX_COUNTRIES (26 * 26 + 64)

/* An invoice line's key, for the Calls sheet's Line column. */
typedef struct {
    char country[3];
    char *kind;                 /* "" for lines without a kind */
    int64_t rate, fee;          /* units */
    int line_no;
} line_key;

/* An organizer's directory entry (usage.users), by normalised id. */
typedef struct {
    char *key;                  /* billing.id_key(user_id) */
    char *display_name, *upn;   /* NULL when unknown */
} org_name;

/* The changed calls a revision's Summary shows; the rest are on the
 * Changes sheet. */
#define SUMMARY_CHANGED_CALLS 20
#define CHANGE_COLS 13

/* At most this many Summary rows are made to fit two pages tall; a longer
 * Summary prints one page wide on as many pages as it needs. */
#define SUMMARY_TWO_PAGE_ROWS 170

/* Columns of the document query (doc_sql, draft_party_sql). */
enum {
    D_NO, D_STATEMENT, D_ISSUE_DATE, D_DUE_DATE, D_TERMS, D_ISSUED_AT,
    D_S_NAME, D_S_ADDR, D_S_COUNTRY, D_S_TAX_ID, D_S_PAYMENT,
    D_B_NAME, D_B_ADDR, D_B_COUNTRY, D_B_TAX_ID, D_B_EMAIL,
    D_PO, D_ENTRA, D_TAX_NOTE, D_TOTAL, D_HAS_BUYER, D_MINOR
};

/* The columns of a document row (enum D_...). */
#define DOC_COLUMNS \
    "SELECT d.document_no, d.invoice_no, to_char(d.issue_date, 'YYYY-MM-DD'),"\
    " to_char(d.due_date, 'YYYY-MM-DD'), d.payment_terms_days,"\
    " to_char(d.issued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"\
    " d.seller->>'legal_name', d.seller->>'address', d.seller->>'country',"\
    " d.seller->>'tax_id', d.seller->>'payment_details',"\
    " d.buyer->>'legal_name', d.buyer->>'address', d.buyer->>'country',"\
    " d.buyer->>'tax_id', d.buyer->>'email', d.purchase_order,"\
    " d.entra_tenant_id, d.tax_note, d.total, d.buyer IS NOT NULL,"\
    " d.minor_unit"

/* The invoice document in force for the tenant's period as of revision
 * $3: the latest invoice document of a revision <= $3 that no credit note
 * of a revision <= $3 voids.  Documents of later revisions are ignored,
 * so the workbook of a revision written again later is the same.  $4:
 * for a revision that was held (docs/billing-rules.md 4.2), the time it was first held;
 * the documents issued since, its own included, came after its workbook
 * and are left out too (they have workbooks of their own); else
 * 'infinity'. */
static const char doc_sql[] =
    DOC_COLUMNS
    " FROM billing.documents d"
    " JOIN billing.invoices i ON i.invoice_no = d.invoice_no"
    " WHERE d.tenant_id = $1 AND d.period = $2::date AND d.kind = 'invoice'"
    "   AND i.revision <= $3::int AND d.issued_at < $4::timestamptz"
    "   AND NOT EXISTS (SELECT 1 FROM billing.documents v"
    "     JOIN billing.invoices vi ON vi.invoice_no = v.invoice_no"
    "     WHERE v.voids = d.document_no AND vi.revision <= $3::int"
    "       AND v.issued_at < $4::timestamptz)"
    " ORDER BY i.revision DESC, d.year DESC, d.seq DESC LIMIT 1";

/* One invoice document by number: the workbook of an invoice issued after
 * its statement's (report_invoice_options.document_no). */
static const char doc_by_no_sql[] =
    DOC_COLUMNS
    " FROM billing.documents d WHERE d.document_no = $1"
    "   AND d.kind = 'invoice' AND d.invoice_no = $2";

/* Whether the revision was held (docs/billing-rules.md 4.2): since when, and why. */
static const char hold_sql[] =
    "SELECT held_at, message FROM billing.document_holds"
    " WHERE invoice_no = $1";

/* A draft's seller and buyer: the reference data as it is now, in the
 * columns of doc_sql. */
static const char draft_party_sql[] =
    "SELECT NULL, NULL, NULL, NULL, coalesce(c.payment_terms_days, 30),"
    " NULL, o.legal_name, o.address, o.country, o.tax_id,"
    " o.payment_details, c.legal_name, c.address, c.country, c.tax_id,"
    " c.email, c.purchase_order, c.entra_tenant_id, c.tax_note, NULL,"
    " c.tenant_id IS NOT NULL, NULL"
    " FROM (SELECT 1) x LEFT JOIN ref.operator o ON true"
    " LEFT JOIN ref.customers c ON c.tenant_id = $1";

/* The credit note issued with revision $3 or before that voids an
 * invoice of an earlier revision of the period, the latest first: what
 * the revision's own invoice replaces. */
static const char replaced_sql[] =
    "SELECT p.document_no, to_char(p.issue_date, 'YYYY-MM-DD'),"
    " c.document_no, to_char(c.issue_date, 'YYYY-MM-DD')"
    " FROM billing.documents c"
    " JOIN billing.invoices ci ON ci.invoice_no = c.invoice_no"
    " JOIN billing.documents p ON p.document_no = c.voids"
    " JOIN billing.invoices pi ON pi.invoice_no = p.invoice_no"
    " WHERE c.tenant_id = $1 AND c.period = $2::date"
    "   AND c.kind = 'credit_note' AND ci.revision <= $3::int"
    "   AND pi.revision < $3::int"
    " ORDER BY c.issued_at DESC, c.year DESC, c.seq DESC LIMIT 1";

typedef struct {
    PGconn *conn;
    const char *invoice_no;
    int draft;                  /* a draft: no numbers, DRAFT marks */
    int usca;                   /* the tenant has a US/CA pool (docs/billing-rules.md 4.3
                                   v3): both pools, the extra column */
    xb_book book;
    PGresult *inv;              /* the invoice row, alive throughout */
    PGresult *doc;              /* doc_sql or draft_party_sql, one row or
                                   none */
    int own_doc;                /* doc is this revision's own invoice */
    const char *document_no;    /* the workbook of this invoice document
                                   (issued after the statement's) */
    PGresult *hold;             /* hold_sql: one row when it was held */
    char label[160];            /* the footer's document label */
    int paper;                  /* XB_PAPER_... */
    lxw_row_t header_row;       /* of the list sheets: 1 in a draft */
    lxw_format *m2, *m4, *m2b;  /* the invoice currency's formats */
    xb_sheet summary;           /* added first, written after the pass */
    xb_sheet changes;           /* a revision's changed calls */
    int has_changes;
    xb_sheet calls;             /* the Calls sheet being written */
    unsigned calls_sheets, calls_per_sheet;
    xb_sheet list;              /* Organizers/Findings/Reconciliation */
    line_key *lines;            /* the invoice lines, sorted */
    int nlines;
    org_name *names;            /* the organizers' names, sorted by key */
    int nnames;
    char *idbuf;                /* scratch for a normalised id */
    size_t idcap;
    /* Added up by the pass over the calls. */
    outcome_sum outcomes[OUTCOMES + 1];     /* the last: all calls */
    reason_count *reasons;
    int nreasons, reasons_cap;
    country_total countries[MAX_COUNTRIES]; /* with minutes, first order */
    int ncountries;
    int16_t country_slot[26 * 26];  /* A-Z pairs: index in countries + 1 */
    FILE *recon_rows;           /* the differing calls, set aside */
    copy_line recon_line;       /* one of them being written */
    long recon_listed;          /* how many */
} inv_ctx;

static const char *iv(const inv_ctx *c, int col)
{
    return db_value(c->inv, 0, col);
}

/* A column of the document row, NULL when there is none. */
static const char *dv(const inv_ctx *c, int col)
{
    return c->doc != NULL && PQntuples(c->doc) == 1 ?
           db_value(c->doc, 0, col) : NULL;
}

#define label_str(s, l, v) xb_label(s, l, v, NULL)
#define label_note xb_label_note
#define label_dec xb_label_dec
#define label_date xb_label_date
#define label_lines xb_label_lines
#define date_cell xb_date
#define country_label xb_country_label

/* An integer or a sum in units, as decimal text, like the database's. */
static void int_cell(xb_sheet *s, lxw_col_t col, int64_t v, lxw_format *f)
{
    char n[32];
    snprintf(n, sizeof n, "%" PRId64, v);
    xb_dec(s, col, n, f);
}

static void units_cell(xb_sheet *s, lxw_col_t col, int64_t v, lxw_format *f)
{
    char n[32];
    money_format4(v, n, sizeof n);
    xb_dec(s, col, n, f);
}

static void section(xb_sheet *s, const char *title)
{
    xb_next(s);                 /* one blank row before */
    xb_title(s, 0, title, s->book->section);
    xb_next(s);
}

/* A list sheet's first rows: in a draft the DRAFT title (row 0) above
 * the header (row c->header_row). */
static void list_begin(inv_ctx *c, xb_sheet *s, const char *const *head,
                       int n)
{
    if (c->draft) {
        xb_title(s, 0, "DRAFT - not an invoice, not for booking",
                 c->book.draft);
        xb_next(s);
    }
    xb_header(s, head, n);
}

/* A list sheet's last touches: freeze, filter, widths, print set-up. */
static void list_end(inv_ctx *c, xb_sheet *s, int ncols)
{
    xb_list_finish(s, c->header_row, ncols);
    xb_print_setup(s, 1, c->header_row, 0, c->label, c->draft, c->paper);
}

/* ------------------------------------------------------------- Summary */

/* The document header (docs/billing-rules.md 4.3): what the document is, its number and
 * dates, seller and buyer, purchase order, Entra tenant id, currency,
 * period, statement revision and what it supersedes. */
static ac_status summary_header(inv_ctx *c, xb_sheet *s, char *err)
{
    xb_book *b = &c->book;
    char t[512];

    if (c->draft)
        snprintf(t, sizeof t, "DRAFT usage statement, period %s (not an "
                 "invoice, not for booking)", iv(c, I_PERIOD));
    else if (c->own_doc)
        snprintf(t, sizeof t, "Invoice %s", dv(c, D_NO));
    else
        snprintf(t, sizeof t, "Usage statement %s", c->invoice_no);
    xb_title(s, 0, t, c->draft ? b->draft : b->title_f);
    xb_next(s);
    xb_title(s, 0, "Microsoft Teams Audio Conferencing dial-out minutes",
             b->italic);
    xb_next(s);
    xb_next(s);

    if (c->draft) {
        label_str(s, "Document type", "Draft usage statement");
        label_note(s, "Document number", "(none: numbers are given when "
                   "it is issued)");
        label_note(s, "Issue date", "(when it is issued)");
        label_note(s, "Due date", "(when it is issued)");
    } else if (c->own_doc) {
        label_str(s, "Document type", "Invoice");
        label_str(s, "Document number", dv(c, D_NO));
        label_date(s, "Issue date", dv(c, D_ISSUE_DATE));
        label_date(s, "Due date", dv(c, D_DUE_DATE));
    } else {
        label_str(s, "Document type", "Usage statement (not an invoice)");
        label_note(s, "Document number", "(none: its money is the "
                   "invoice's in force)");
        label_date(s, "Issue date", iv(c, I_ISSUE_DATE));
        if (dv(c, D_NO) != NULL) {
            snprintf(t, sizeof t, "%s of %s, due %s", dv(c, D_NO),
                     dv(c, D_ISSUE_DATE), dv(c, D_DUE_DATE));
            label_str(s, "Invoice in force", t);
        } else {
            label_note(s, "Invoice in force", "(none)");
        }
        if (c->hold != NULL && PQntuples(c->hold) == 1)
            /* docs/billing-rules.md 4.2: its documents wait for a complete buyer. */
            label_str(s, "Documents", db_value(c->hold, 0, 1));
        else if (dv(c, D_NO) == NULL &&
                 strspn(iv(c, I_TOTAL), "0.") == strlen(iv(c, I_TOTAL)))
            /* docs/billing-rules.md 4.2: no 0.00 invoice. */
            label_str(s, "Documents", "Nothing to pay: the total is 0, "
                      "so no invoice is issued");
    }
    if (dv(c, D_TERMS) != NULL) {
        snprintf(t, sizeof t, "%s days", dv(c, D_TERMS));
        label_str(s, "Payment terms", t);
    }
    if (c->own_doc) {
        const char *p[] = { iv(c, I_TENANT), iv(c, I_PERIOD),
                            iv(c, I_REVISION) };
        char date[16];
        PGresult *res;
        snprintf(date, sizeof date, "%s-01", iv(c, I_PERIOD));
        p[1] = date;
        ac_status rc = db_query(c->conn, replaced_sql, 3, p, &res, err);
        if (rc != AC_OK)
            return rc;
        if (PQntuples(res) == 1) {
            snprintf(t, sizeof t, "invoice %s of %s, voided by credit "
                     "note %s of %s", db_value(res, 0, 0),
                     db_value(res, 0, 1), db_value(res, 0, 2),
                     db_value(res, 0, 3));
            label_str(s, "Replaces", t);
        }
        PQclear(res);
    }
    xb_str(s, 0, "Total due", b->bold);
    xb_dec(s, 1, iv(c, I_TOTAL), c->m2b);
    xb_next(s);

    /* Seller and buyer, as they were at issue (a draft: as they are). */
    xb_next(s);
    xb_party(s, "Seller", dv(c, D_S_NAME), dv(c, D_S_ADDR),
             dv(c, D_S_COUNTRY), dv(c, D_S_TAX_ID), "Payment details",
             dv(c, D_S_PAYMENT), "(no seller recorded)");
    xb_next(s);
    int buyer = dv(c, D_HAS_BUYER) != NULL &&
                strcmp(dv(c, D_HAS_BUYER), "t") == 0;
    xb_party(s, "Buyer", buyer ? dv(c, D_B_NAME) : iv(c, I_NAME),
             buyer ? dv(c, D_B_ADDR) : NULL,
             buyer ? dv(c, D_B_COUNTRY) : NULL,
             buyer ? dv(c, D_B_TAX_ID) : NULL, "Buyer's email",
             buyer ? dv(c, D_B_EMAIL) : NULL, NULL);
    if (!buyer)
        label_note(s, "", "(no billing profile: no buyer details, no tax)");
    if (dv(c, D_PO) != NULL)
        label_str(s, "Purchase order", dv(c, D_PO));
    if (dv(c, D_ENTRA) != NULL)
        label_str(s, "Entra tenant ID", dv(c, D_ENTRA));
    xb_next(s);

    label_str(s, "Tenant", iv(c, I_NAME));
    label_str(s, "Tenant ID", iv(c, I_TENANT));
    label_str(s, "Currency", iv(c, I_CURRENCY));
    label_str(s, "Period", iv(c, I_PERIOD));
    snprintf(t, sizeof t, "%s-01 to %s, %s", iv(c, I_PERIOD),
             iv(c, I_LAST_DAY), iv(c, I_TZ));
    label_str(s, "Period dates (time zone)", t);
    if (c->draft)
        label_note(s, "Statement number", "(none: a draft)");
    else
        label_str(s, "Statement number", c->invoice_no);
    label_dec(s, "Revision", iv(c, I_REVISION), b->integer);
    if (iv(c, I_SUPERSEDES) != NULL)
        label_str(s, "Supersedes", iv(c, I_SUPERSEDES));
    else
        label_note(s, "Supersedes", "(none: first revision)");
    return AC_OK;
}

/* Summary columns: the lines' layout (Country, Code, Kind, Rate, Fee,
 * Calls, Minutes, Exact amount, Amount, Line); other blocks use the same
 * columns, money in H to J. */
enum { C_NAME, C_CODE, C_KIND, C_RATE, C_FEE, C_CALLS, C_MINUTES, C_EXACT,
       C_AMOUNT, C_LINE, C_LAST };

static ac_status summary_lines(inv_ctx *c, xb_sheet *s, char *err)
{
    static const char *const head[] = {
        "Country", "Code", "Kind", "Rate per minute", "Connection fee",
        "Calls", "Minutes", "Exact amount", "Amount", "Line"
    };
    const char *p[] = { c->invoice_no };
    PGresult *res;
    xb_book *b = &c->book;

    ac_status rc = db_query(c->conn,
        "SELECT line_no, country, kind, per_minute, connection_fee, calls,"
        " minutes, exact_amount, amount FROM billing.invoice_lines"
        " WHERE invoice_no = $1 ORDER BY line_no", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    section(s, "Invoice lines");
    xb_header_tall(s, head, 10);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *code = db_value(res, i, 1);
        const char *name = country_name(code);
        xb_str(s, C_NAME, name ? name : "(unknown)", name ? NULL : b->italic);
        xb_str(s, C_CODE, code, NULL);
        xb_str(s, C_KIND, db_value(res, i, 2), NULL);
        xb_dec(s, C_RATE, db_value(res, i, 3), c->m4);
        xb_dec(s, C_FEE, db_value(res, i, 4), c->m4);
        xb_dec(s, C_CALLS, db_value(res, i, 5), b->integer);
        xb_dec(s, C_MINUTES, db_value(res, i, 6), b->integer);
        xb_dec(s, C_EXACT, db_value(res, i, 7), c->m4);
        xb_dec(s, C_AMOUNT, db_value(res, i, 8), c->m2);
        xb_dec(s, C_LINE, db_value(res, i, 0), b->integer);
        xb_next(s);
    }
    if (PQntuples(res) == 0) {
        xb_str(s, 0, "No billed calls in this period.", b->italic);
        xb_next(s);
    }
    PQclear(res);

    /* The lines re-add to the subtotal: exact sums, then the rounding;
     * then the tax, rounded once, and the total. */
    rc = db_query(c->conn,
        "SELECT coalesce(sum(l.calls), 0), coalesce(sum(l.minutes), 0),"
        " coalesce(sum(l.exact_amount), 0), i.subtotal,"
        " i.subtotal - coalesce(sum(l.exact_amount), 0)"
        " FROM billing.invoices i LEFT JOIN billing.invoice_lines l"
        "   ON l.invoice_no = i.invoice_no"
        " WHERE i.invoice_no = $1 GROUP BY i.subtotal", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    xb_str(s, 0, "Subtotal", b->bold);
    xb_dec(s, C_CALLS, db_value(res, 0, 0), b->integer_bold);
    xb_dec(s, C_MINUTES, db_value(res, 0, 1), b->integer_bold);
    xb_dec(s, C_EXACT, db_value(res, 0, 2), c->m4);
    xb_dec(s, C_AMOUNT, db_value(res, 0, 3), c->m2b);
    xb_next(s);
    xb_str(s, 0, "Rounding (each line to the currency's minor unit, "
           "half-up)", NULL);
    xb_dec(s, C_AMOUNT, db_value(res, 0, 4), c->m4);
    xb_next(s);
    PQclear(res);
    char tax[64];
    snprintf(tax, sizeof tax, "Tax (%s)", iv(c, I_TAX_RATE));
    xb_str(s, 0, tax, NULL);
    xb_dec(s, C_AMOUNT, iv(c, I_TAX), c->m2);
    xb_next(s);
    if (dv(c, D_TAX_NOTE) != NULL && dv(c, D_TAX_NOTE)[0] != '\0')
        label_lines(s, "Tax note", dv(c, D_TAX_NOTE), b->italic, 4);
    xb_str(s, 0, "Total due", b->bold);
    xb_dec(s, C_AMOUNT, iv(c, I_TOTAL), c->m2b);
    xb_next(s);
    return AC_OK;
}

static void summary_outcomes(inv_ctx *c, xb_sheet *s)
{
    static const char *const head[] = {
        "Outcome", "Calls", "Minutes", "Pool minutes", "Billed minutes",
        "", "", "Amount"
    };
    xb_book *b = &c->book;

    /* Every outcome, in the order of the rules, then the total. */
    section(s, "Calls by outcome (control totals)");
    xb_header_tall(s, head, 8);
    for (int o = 0; o <= OUTCOMES; o++) {
        const outcome_sum *t = &c->outcomes[o];
        int total = o == OUTCOMES;
        lxw_format *f = total ? b->integer_bold : b->integer;
        xb_str(s, 0, total ? "All calls" : outcome_name[o],
               total ? b->bold : NULL);
        int_cell(s, 1, t->calls, f);
        int_cell(s, 2, t->minutes, f);
        int_cell(s, 3, t->pool, f);
        int_cell(s, 4, t->billed, f);
        units_cell(s, C_EXACT, t->amount, c->m4);
        xb_next(s);
    }

    if (c->nreasons > 0) {
        static const char *const rhead[] = { "Rejected: reason", "Calls" };
        xb_next(s);
        xb_header(s, rhead, 2);
        for (int i = 0; i < c->nreasons; i++) {
            xb_str(s, 0, c->reasons[i].reason, NULL);
            int_cell(s, 1, c->reasons[i].calls, b->integer);
            xb_next(s);
        }
    }
}

/* One changed call: a row of change_sql. */
enum {
    X_CHANGE, X_USAGE, X_START, X_ORGANIZER, X_DEST, X_OUT_PREV, X_OUT_CUR,
    X_BILLED_PREV, X_BILLED_CUR, X_AMOUNT_PREV, X_AMOUNT_CUR, X_DIFF,
    X_REASON
};

/* The calls of revision $1 that were added, removed or re-rated against
 * revision $2 (matched by usage_id; re-rated: any figure, input or
 * outcome differs), in usage_id order.  A merge of the two revisions'
 * calls: only the differences come back, one row at a time. */
static const char change_sql[] =
    "SELECT CASE WHEN o.usage_id IS NULL THEN 'added'"
    "            WHEN n.usage_id IS NULL THEN 'removed'"
    "            ELSE 're-rated' END,"
    " coalesce(n.usage_id, o.usage_id),"
    " to_char(coalesce(n.start_local, o.start_local),"
    "         'YYYY-MM-DD HH24:MI:SS.US'),"
    " coalesce(n.organizer_id, o.organizer_id),"
    " coalesce(n.destination_number, o.destination_number),"
    " o.outcome, n.outcome, o.billed_minutes, n.billed_minutes,"
    " o.amount, n.amount, coalesce(n.amount, 0) - coalesce(o.amount, 0),"
    " coalesce(n.reason, o.reason)"
    " FROM (SELECT * FROM billing.rated_calls WHERE invoice_no = $1) n"
    " FULL JOIN (SELECT * FROM billing.rated_calls WHERE invoice_no = $2) o"
    "   ON o.usage_id = n.usage_id"
    " WHERE o.usage_id IS NULL OR n.usage_id IS NULL"
    "   OR (o.start_time, o.organizer_id, o.destination_number,"
    "       o.duration_seconds, o.outcome, o.reason, o.country, o.kind,"
    "       o.minutes, o.pool_minutes, o.billed_minutes, o.per_minute,"
    "       o.connection_fee, o.amount)"
    "      IS DISTINCT FROM"
    "      (n.start_time, n.organizer_id, n.destination_number,"
    "       n.duration_seconds, n.outcome, n.reason, n.country, n.kind,"
    "       n.minutes, n.pool_minutes, n.billed_minutes, n.per_minute,"
    "       n.connection_fee, n.amount)"
    " ORDER BY 2";

typedef struct {
    inv_ctx *c;
    long added, removed, rerated;
    int kept;                                   /* rows in first[] */
    char *first[SUMMARY_CHANGED_CALLS][CHANGE_COLS];
} change_pass;

static ac_status change_row(void *ctx, const PGresult *r, char *err)
{
    change_pass *x = ctx;
    inv_ctx *c = x->c;
    xb_sheet *s = &c->changes;
    xb_book *b = &c->book;
    const char *kind = db_value(r, 0, X_CHANGE);

    if (strcmp(kind, "added") == 0)
        x->added++;
    else if (strcmp(kind, "removed") == 0)
        x->removed++;
    else
        x->rerated++;
    if (x->kept < SUMMARY_CHANGED_CALLS) {
        for (int i = 0; i < CHANGE_COLS; i++) {
            const char *v = db_value(r, 0, i);
            if (v != NULL && (x->first[x->kept][i] = strdup(v)) == NULL)
                return ac_fail(err, AC_EOSERR, "out of memory");
        }
        x->kept++;
    }
    xb_str(s, 0, kind, NULL);
    xb_str(s, 1, db_value(r, 0, X_USAGE), NULL);
    xb_ts(s, 2, db_value(r, 0, X_START), b->datetime);
    xb_str(s, 3, db_value(r, 0, X_ORGANIZER), NULL);
    xb_str(s, 4, db_value(r, 0, X_DEST), NULL);
    xb_str(s, 5, db_value(r, 0, X_OUT_PREV), NULL);
    xb_str(s, 6, db_value(r, 0, X_OUT_CUR), NULL);
    xb_dec(s, 7, db_value(r, 0, X_BILLED_PREV), b->integer);
    xb_dec(s, 8, db_value(r, 0, X_BILLED_CUR), b->integer);
    xb_dec(s, 9, db_value(r, 0, X_AMOUNT_PREV), c->m4);
    xb_dec(s, 10, db_value(r, 0, X_AMOUNT_CUR), c->m4);
    xb_dec(s, 11, db_value(r, 0, X_DIFF), c->m4);
    xb_str(s, 12, db_value(r, 0, X_REASON), NULL);
    xb_next(s);
    return xb_check(b, err);
}

/* The Changes sheet (every changed call) and the Summary's part of it:
 * the counts and the first SUMMARY_CHANGED_CALLS calls. */
static ac_status summary_changed_calls(inv_ctx *c, xb_sheet *s,
                                       const char *prev_rev, char *err)
{
    char h1[64], h2[64], h3[64], h4[64], h5[64], h6[64], t[256];
    const char *cur_rev = iv(c, I_REVISION);
    snprintf(h1, sizeof h1, "Outcome (rev %s)", prev_rev);
    snprintf(h2, sizeof h2, "Outcome (rev %s)", cur_rev);
    snprintf(h3, sizeof h3, "Billed minutes (rev %s)", prev_rev);
    snprintf(h4, sizeof h4, "Billed minutes (rev %s)", cur_rev);
    snprintf(h5, sizeof h5, "Amount (rev %s)", prev_rev);
    snprintf(h6, sizeof h6, "Amount (rev %s)", cur_rev);
    const char *head[CHANGE_COLS] = {
        "Change", "Usage ID", "Start (local time)", "Organizer",
        "Destination", h1, h2, h3, h4, h5, h6, "Difference", "Reason"
    };
    const char *p[] = { c->invoice_no, iv(c, I_SUPERSEDES) };
    change_pass *x = calloc(1, sizeof *x);
    xb_book *b = &c->book;

    if (x == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    x->c = c;
    list_begin(c, &c->changes, head, CHANGE_COLS);
    ac_status rc = xb_stream(c->conn, change_sql, 2, p, change_row, x, err);
    if (rc == AC_OK) {
        xb_width(&c->changes, 1, 36);
        list_end(c, &c->changes, CHANGE_COLS);
        rc = xb_check(b, err);
    }
    if (rc == AC_OK) {
        snprintf(t, sizeof t, "Calls added, removed or re-rated against "
                 "revision %s", prev_rev);
        section(s, t);
        static const char *const khead[] = { "Change", "Calls" };
        xb_header(s, khead, 2);
        static const char *const kinds[] = { "added", "removed",
                                             "re-rated" };
        long n[] = { x->added, x->removed, x->rerated };
        for (int i = 0; i < 3; i++) {
            xb_str(s, 0, kinds[i], NULL);
            int_cell(s, 1, n[i], b->integer);
            xb_next(s);
        }
        long all = x->added + x->removed + x->rerated;
        if (x->kept > 0) {
            xb_next(s);
            const char *shead[] = {
                "Usage ID", "Change", "Outcome (before)", "Outcome (now)",
                "", "", "", h5, h6, "Difference"
            };
            xb_header_tall(s, shead, 10);
            for (int i = 0; i < x->kept; i++) {
                char **v = x->first[i];
                xb_str(s, 0, v[X_USAGE], NULL);
                xb_str(s, 1, v[X_CHANGE], NULL);
                xb_str(s, 2, v[X_OUT_PREV], NULL);
                xb_str(s, 3, v[X_OUT_CUR], NULL);
                xb_dec(s, C_EXACT, v[X_AMOUNT_PREV], c->m4);
                xb_dec(s, C_AMOUNT, v[X_AMOUNT_CUR], c->m4);
                xb_dec(s, C_LINE, v[X_DIFF], c->m4);
                xb_next(s);
            }
        }
        if (all > x->kept) {
            snprintf(t, sizeof t, "The first %d of %ld changed calls; all "
                     "are on the sheet Changes.", x->kept, all);
            xb_title(s, 0, t, b->italic);
            xb_next(s);
        } else if (all == 0) {
            xb_title(s, 0, "No call was added, removed or re-rated.",
                     b->italic);
            xb_next(s);
        }
        rc = xb_check(b, err);
    }
    for (int i = 0; i < x->kept; i++)
        for (int k = 0; k < CHANGE_COLS; k++)
            free(x->first[i][k]);
    free(x);
    return rc;
}

/* Revision n+1: what changed against revision n: the figures, the lines
 * and the calls (docs/billing-rules.md 4.3: "only the lines and figures that changed"). */
static ac_status summary_change(inv_ctx *c, xb_sheet *s, char *err)
{
    const char *p[] = { c->invoice_no };
    PGresult *res;
    xb_book *b = &c->book;
    char title[256], prev_h[64], cur_h[64];

    ac_status rc = db_query(c->conn,
        "SELECT v.item, v.prev, v.cur, v.cur - v.prev, v.money,"
        " p.invoice_no, p.revision"
        " FROM billing.invoices n"
        " JOIN billing.invoices p ON p.invoice_no = n.supersedes,"
        " LATERAL (VALUES"
        "  (1, 'Calls', p.calls::numeric, n.calls::numeric, false),"
        "  (2, 'Rejected calls', p.rejected_calls, n.rejected_calls, false),"
        "  (3, 'Seats', p.seats, n.seats, false),"
        "  (4, 'Pool minutes', p.pool_minutes, n.pool_minutes, false),"
        "  (5, 'Pool used (minutes)', p.pool_used_minutes,"
        "      n.pool_used_minutes, false),"
        "  (6, 'US/CA pool seats', p.usca_seats, n.usca_seats, false),"
        "  (7, 'US/CA pool minutes', p.usca_pool_minutes,"
        "      n.usca_pool_minutes, false),"
        "  (8, 'US/CA pool used (minutes)', p.usca_pool_used_minutes,"
        "      n.usca_pool_used_minutes, false),"
        "  (9, 'Exempt minutes', p.exempt_minutes, n.exempt_minutes, false),"
        "  (10, 'Billed minutes', p.billed_minutes, n.billed_minutes, false),"
        "  (11, 'Subtotal', p.subtotal, n.subtotal, true),"
        "  (12, 'Tax', p.tax, n.tax, true),"
        "  (13, 'Total', p.total, n.total, true))"
        "  AS v(ord, item, prev, cur, money)"
        " WHERE n.invoice_no = $1 ORDER BY v.ord", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return ac_fail(err, AC_EDATA, "invoice %s: superseded revision %s "
                       "not found", c->invoice_no, iv(c, I_SUPERSEDES));
    }
    const char *cur_rev = iv(c, I_REVISION);
    char prev_rev[16];
    snprintf(prev_rev, sizeof prev_rev, "%s", db_value(res, 0, 6));
    snprintf(title, sizeof title, "Change against revision %s (%s)",
             prev_rev, db_value(res, 0, 5));
    snprintf(prev_h, sizeof prev_h, "Revision %s", prev_rev);
    snprintf(cur_h, sizeof cur_h, "Revision %s", cur_rev);
    const char *head[] = {
        "Figure", "", "", "", "", "", "", prev_h, cur_h, "Change"
    };
    section(s, title);
    xb_header_tall(s, head, 10);
    int changed = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        if (xb_number(db_value(res, i, 3)) == 0)
            continue;               /* only what changed */
        int money = strcmp(db_value(res, i, 4), "t") == 0;
        xb_str(s, 0, db_value(res, i, 0), money ? b->bold : NULL);
        for (int col = 1; col <= 3; col++)
            xb_dec(s, (lxw_col_t)(C_EXACT + col - 1), db_value(res, i, col),
                   money ? c->m2b : b->integer);
        xb_next(s);
        changed++;
    }
    PQclear(res);
    if (changed == 0) {
        xb_title(s, 0, "No figure changed.", b->italic);
        xb_next(s);
    }

    /* Lines matched on (country, kind, rate, fee): the new revision's
     * order, then the lines that disappeared; the unchanged ones left
     * out. */
    const char *lp[] = { c->invoice_no, iv(c, I_SUPERSEDES) };
    rc = db_query(c->conn,
        "SELECT coalesce(n.country, o.country), coalesce(n.kind, o.kind),"
        " coalesce(n.per_minute, o.per_minute),"
        " coalesce(n.connection_fee, o.connection_fee),"
        " o.calls, n.calls, o.amount, n.amount,"
        " coalesce(n.amount, 0) - coalesce(o.amount, 0),"
        " CASE WHEN o.line_no IS NULL THEN 'new'"
        "      WHEN n.line_no IS NULL THEN 'removed'"
        "      WHEN (o.calls, o.minutes, o.amount)"
        "           = (n.calls, n.minutes, n.amount) THEN 'unchanged'"
        "      ELSE 'changed' END"
        " FROM (SELECT * FROM billing.invoice_lines WHERE invoice_no = $1) n"
        " FULL JOIN (SELECT * FROM billing.invoice_lines"
        "            WHERE invoice_no = $2) o"
        "   ON o.country = n.country"
        "  AND o.kind IS NOT DISTINCT FROM n.kind"
        "  AND o.per_minute = n.per_minute"
        "  AND o.connection_fee = n.connection_fee"
        " ORDER BY n.line_no NULLS LAST, o.line_no", 2, lp, &res, err);
    if (rc != AC_OK)
        return rc;
    char pc[64], nc[64], pa[64], na[64];
    snprintf(pc, sizeof pc, "Calls (rev %s)", prev_rev);
    snprintf(nc, sizeof nc, "Calls (rev %s)", cur_rev);
    snprintf(pa, sizeof pa, "Amount (rev %s)", prev_rev);
    snprintf(na, sizeof na, "Amount (rev %s)", cur_rev);
    const char *lhead[] = {
        "Country", "Code", "Kind", "Rate per minute", "Connection fee",
        pc, nc, pa, na, "Change", "Line is"
    };
    xb_next(s);
    xb_header_tall(s, lhead, 11);
    int unchanged = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        if (strcmp(db_value(res, i, 9), "unchanged") == 0) {
            unchanged++;
            continue;
        }
        const char *code = db_value(res, i, 0);
        const char *name = country_name(code);
        xb_str(s, C_NAME, name ? name : "(unknown)", NULL);
        xb_str(s, C_CODE, code, NULL);
        xb_str(s, C_KIND, db_value(res, i, 1), NULL);
        xb_dec(s, C_RATE, db_value(res, i, 2), c->m4);
        xb_dec(s, C_FEE, db_value(res, i, 3), c->m4);
        xb_dec(s, C_CALLS, db_value(res, i, 4), b->integer);
        xb_dec(s, C_MINUTES, db_value(res, i, 5), b->integer);
        xb_dec(s, C_EXACT, db_value(res, i, 6), c->m2);
        xb_dec(s, C_AMOUNT, db_value(res, i, 7), c->m2);
        xb_dec(s, C_LINE, db_value(res, i, 8), c->m2);
        xb_str(s, C_LAST, db_value(res, i, 9), NULL);
        xb_next(s);
    }
    int nlines = PQntuples(res);
    PQclear(res);
    if (unchanged > 0 || nlines == 0) {
        if (unchanged == nlines)
            snprintf(title, sizeof title, "No invoice line changed.");
        else
            snprintf(title, sizeof title, "%d other line%s unchanged.",
                     unchanged, unchanged == 1 ? "" : "s");
        xb_title(s, 0, title, b->italic);
        xb_next(s);
    }
    return summary_changed_calls(c, s, prev_rev, err);
}

/* Countries by minutes, largest first, then by code. */
static int by_minutes(const void *x, const void *y)
{
    const country_total *a = x, *b = y;
    if (a->minutes != b->minutes)
        return a->minutes > b->minutes ? -1 : 1;
    return (a->code > b->code) - (a->code < b->code);
}

/* Chart source data (constant_memory charts carry no cached values, so
 * the data lives on this sheet) and the charts beside the tables. */
static ac_status summary_charts(inv_ctx *c, xb_sheet *s, char *err)
{
    static const char *const phead[] = { "Pool", "Minutes" };
    static const char *const chead[] = {
        "Destination country", "Minutes"
    };
    xb_book *b = &c->book;

    /* Minutes of the rated (not rejected) calls per country: the ten
     * largest (ties by code), then the rest together as "Other". */
    int n = c->ncountries;      /* the countries with minutes */
    country_total *order = malloc(((size_t)n + 1) * sizeof *order);
    if (order == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    memcpy(order, c->countries, (size_t)n * sizeof *order);
    qsort(order, (size_t)n, sizeof *order, by_minutes);
    int64_t other = 0;
    for (int i = 10; i < n; i++)
        other += order[i].minutes;
    section(s, "Chart data");
    xb_header(s, phead, 2);
    lxw_row_t pool_row = s->row;
    xb_str(s, 0, "Used", NULL);
    xb_dec(s, 1, iv(c, I_POOL_USED), b->integer);
    xb_next(s);
    xb_str(s, 0, "Remaining", NULL);
    xb_dec(s, 1, iv(c, I_POOL_LEFT), b->integer);
    xb_next(s);

    xb_next(s);
    xb_header(s, chead, 2);
    lxw_row_t country_row = s->row;
    int countries = n > 10 ? 11 : n;
    for (int i = 0; i < n && i < 10; i++) {
        char code[3] = { (char)(order[i].code >> 8),
                         (char)(order[i].code & 0xff),
                         '\0' };
        xb_str(s, 0, code, NULL);
        int_cell(s, 1, order[i].minutes, b->integer);
        xb_next(s);
    }
    if (n > 10) {
        xb_str(s, 0, "Other", NULL);
        int_cell(s, 1, other, b->integer);
        xb_next(s);
    }
    free(order);

    lxw_chart_options where = { .x_scale = 1.0, .y_scale = 1.0 };
    if (xb_number(iv(c, I_POOL)) > 0) {
        lxw_chart *ch = workbook_add_chart(b->wb, LXW_CHART_PIE);
        lxw_chart_series *ser = ch ? chart_add_series(ch, NULL, NULL) : NULL;
        if (ser == NULL)
            return ac_fail(err, AC_EOSERR, "out of memory (chart)");
        chart_series_set_categories(ser, s->name, pool_row, 0,
                                    pool_row + 1, 0);
        chart_series_set_values(ser, s->name, pool_row, 1, pool_row + 1, 1);
        chart_series_set_name(ser, "Pool minutes");
        chart_series_set_labels(ser);
        chart_title_set_name(ch, "Pool minutes: used vs remaining");
        chart_legend_set_position(ch, LXW_CHART_LEGEND_BOTTOM);
        if (worksheet_insert_chart_opt(s->ws, 2, 12, ch, &where))
            return ac_fail(err, AC_EINTERNAL, "cannot insert pool chart");
    }
    if (countries > 0) {
        lxw_chart *ch = workbook_add_chart(b->wb, LXW_CHART_BAR);
        lxw_chart_series *ser = ch ? chart_add_series(ch, NULL, NULL) : NULL;
        if (ser == NULL)
            return ac_fail(err, AC_EOSERR, "out of memory (chart)");
        lxw_row_t last = country_row + (lxw_row_t)countries - 1;
        chart_series_set_categories(ser, s->name, country_row, 0, last, 0);
        chart_series_set_values(ser, s->name, country_row, 1, last, 1);
        chart_series_set_name(ser, "Minutes");
        chart_title_set_name(ch, "Minutes by destination country");
        chart_legend_set_position(ch, LXW_CHART_LEGEND_NONE);
        chart_axis_set_reverse(ch->y_axis);     /* largest on top */
        if (worksheet_insert_chart_opt(s->ws, 19, 12, ch, &where))
            return ac_fail(err, AC_EINTERNAL, "cannot insert country "
                           "chart");
    }
    return AC_OK;
}

/* The Summary sheet, added before the Calls sheets and written after the
 * pass over the calls. */
static ac_status write_summary(inv_ctx *c, char *err)
{
    xb_book *b = &c->book;
    xb_sheet s = c->summary;

    ac_status rc = summary_header(c, &s, err);
    if (rc != AC_OK)
        return rc;

    section(&s, "Entitlement");
    if (c->usca) {              /* docs/billing-rules.md 4.3 v3: both pools, by name */
        xb_title(&s, 0, "Zone A pool", b->bold);
        xb_next(&s);
    }
    label_dec(&s, "Seats", iv(c, I_SEATS), b->integer);
    label_str(&s, "Seats basis", iv(c, I_BASIS));
    label_dec(&s, "Pool minutes", iv(c, I_POOL), b->integer);
    label_dec(&s, "Pool used (minutes)", iv(c, I_POOL_USED), b->integer);
    label_dec(&s, "Pool remaining (minutes)", iv(c, I_POOL_LEFT),
              b->integer);
    if (c->usca) {
        xb_title(&s, 0, "US/CA pool", b->bold);
        xb_next(&s);
        label_dec(&s, "Seats", iv(c, I_USCA_SEATS), b->integer);
        label_str(&s, "Seats basis", "assigned");
        label_dec(&s, "Pool minutes", iv(c, I_USCA_POOL), b->integer);
        label_dec(&s, "Pool used (minutes)", iv(c, I_USCA_USED),
                  b->integer);
        label_dec(&s, "Pool remaining (minutes)", iv(c, I_USCA_LEFT),
                  b->integer);
        xb_title(&s, 0, "Minutes and calls", b->bold);
        xb_next(&s);
    }
    label_dec(&s, "Exempt minutes (US/CA add-on)", iv(c, I_EXEMPT),
              b->integer);
    label_dec(&s, "Billed minutes", iv(c, I_BILLED), b->integer);
    label_dec(&s, "Calls", iv(c, I_CALLS), b->integer);
    label_dec(&s, "Rejected calls", iv(c, I_REJECTED), b->integer);

    rc = summary_lines(c, &s, err);
    if (rc == AC_OK)
        summary_outcomes(c, &s);
    if (rc == AC_OK && iv(c, I_SUPERSEDES) != NULL)
        rc = summary_change(c, &s, err);
    lxw_row_t last_printed = s.row;     /* the chart data is not printed */
    if (rc == AC_OK)
        rc = summary_charts(c, &s, err);
    if (rc != AC_OK)
        return rc;

    static const double widths[] = {
        36, 13, 11, 12, 12, 8, 9, 13, 13, 13, 9
    };
    /* Wide enough for every number (a JPY amount of six digits and four
     * decimals, say): never ### (docs/billing-rules.md 4.3). */
    for (lxw_col_t col = 0; col < sizeof widths / sizeof *widths; col++)
        worksheet_set_column(s.ws, col, col,
                             xb_number_column_width(&s, col, widths[col]),
                             NULL);
    worksheet_print_area(s.ws, 0, 0, last_printed, C_LAST);
    xb_print_setup(&s, 0, 0, last_printed <= SUMMARY_TWO_PAGE_ROWS ? 2 : 0,
                   c->label, c->draft, c->paper);
    return xb_check(b, err);
}

/* --------------------------------------------------------------- Calls */

static ac_status calls_sheet_begin(inv_ctx *c, char *err)
{
    char name[32];

    c->calls_sheets++;
    if (c->calls_sheets == 1)
        snprintf(name, sizeof name, "Calls");
    else
        snprintf(name, sizeof name, "Calls (%u)", c->calls_sheets);
    ac_status rc = xb_sheet_add(&c->book, &c->calls, name, err);
    if (rc != AC_OK)
        return rc;
    if (c->usca)
        list_begin(c, &c->calls, calls_header_usca, CALLS_COLS + 1);
    else
        list_begin(c, &c->calls, calls_header, CALLS_COLS);
    return AC_OK;
}

static void calls_sheet_end(inv_ctx *c)
{
    xb_sheet *s = &c->calls;
    xb_width(s, 0, 36);         /* a uuid */
    list_end(c, s, CALLS_COLS + (c->usca ? 1 : 0));
}

/* Parse money text into *out: 1, or 0 for NULL (or text that is not a
 * decimal with at most 4 places, which the ledger's types rule out). */
static int money_parse_opt(const char *text, int64_t *out)
{
    return text != NULL && money_parse(text, out) == AC_OK;
}

static int line_cmp(const line_key *a, const line_key *b)
{
    int d = strcmp(a->country, b->country);
    if (d == 0)
        d = strcmp(a->kind, b->kind);
    if (d == 0)
        d = (a->rate > b->rate) - (a->rate < b->rate);
    if (d == 0)
        d = (a->fee > b->fee) - (a->fee < b->fee);
    return d;
}

static int line_order(const void *x, const void *y)
{
    return line_cmp(x, y);
}

/* The invoice lines' keys, sorted, for the Calls sheet's Line column:
 * bounded by the number of lines, never by the calls. */
static ac_status load_lines(inv_ctx *c, char *err)
{
    const char *p[] = { c->invoice_no };
    PGresult *res;
    ac_status rc = db_query(c->conn,
        "SELECT line_no, country, coalesce(kind, ''), per_minute,"
        " connection_fee FROM billing.invoice_lines WHERE invoice_no = $1"
        " ORDER BY line_no", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    int n = PQntuples(res);
    c->lines = calloc((size_t)n + 1, sizeof *c->lines);
    if (c->lines == NULL) {
        PQclear(res);
        return ac_fail(err, AC_EOSERR, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        line_key *k = &c->lines[i];
        k->line_no = atoi(db_value(res, i, 0));
        snprintf(k->country, sizeof k->country, "%s", db_value(res, i, 1));
        k->kind = strdup(db_value(res, i, 2));
        c->nlines = i + 1;
        if (k->kind == NULL ||
            money_parse(db_value(res, i, 3), &k->rate) != AC_OK ||
            money_parse(db_value(res, i, 4), &k->fee) != AC_OK) {
            PQclear(res);
            return ac_fail(err, AC_EINTERNAL, "invoice %s: line %d: bad "
                           "key", c->invoice_no, k->line_no);
        }
    }
    PQclear(res);
    qsort(c->lines, (size_t)n, sizeof *c->lines, line_order);
    return AC_OK;
}

/* The invoice line a billed or split call adds to, or 0. */
static int line_of(const inv_ctx *c, const char *const v[V_COUNT])
{
    line_key k;
    const line_key *hit;

    if (v[V_COUNTRY] == NULL || v[V_BILLED] == NULL ||
        strcmp(v[V_BILLED], "0") == 0 ||
        money_parse(v[V_RATE] ? v[V_RATE] : "", &k.rate) != AC_OK ||
        money_parse(v[V_FEE] ? v[V_FEE] : "", &k.fee) != AC_OK)
        return 0;
    snprintf(k.country, sizeof k.country, "%s", v[V_COUNTRY]);
    k.kind = (char *)(v[V_KIND] ? v[V_KIND] : "");
    hit = bsearch(&k, c->lines, (size_t)c->nlines, sizeof k, line_order);
    return hit ? hit->line_no : 0;
}

static int name_order(const void *x, const void *y)
{
    return strcmp(((const org_name *)x)->key, ((const org_name *)y)->key);
}

/* The organizers' display names and UPNs from the directory
 * (usage.users), matched by billing.id_key(): only this invoice's
 * organizers, so memory is bounded by them. */
static ac_status load_names(inv_ctx *c, char *err)
{
    const char *p[] = { iv(c, I_TENANT), c->invoice_no };
    PGresult *res;
    ac_status rc = db_query(c->conn,
        "SELECT DISTINCT ON (k) k, display_name, upn FROM"
        " (SELECT billing.id_key(u.user_id) AS k, u.user_id,"
        "   u.display_name, u.upn FROM usage.users u"
        "  WHERE u.tenant_id = $1 AND billing.id_key(u.user_id) IN"
        "   (SELECT billing.id_key(organizer_id)"
        "    FROM billing.invoice_organizers WHERE invoice_no = $2)) x"
        " ORDER BY k, user_id COLLATE \"C\"", 2, p, &res, err);
    if (rc != AC_OK)
        return rc;
    int n = PQntuples(res);
    c->names = calloc((size_t)n + 1, sizeof *c->names);
    if (c->names == NULL) {
        PQclear(res);
        return ac_fail(err, AC_EOSERR, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        org_name *o = &c->names[i];
        c->nnames = i + 1;
        o->key = strdup(db_value(res, i, 0));
        if (!PQgetisnull(res, i, 1))
            o->display_name = strdup(db_value(res, i, 1));
        if (!PQgetisnull(res, i, 2))
            o->upn = strdup(db_value(res, i, 2));
        if (o->key == NULL ||
            (!PQgetisnull(res, i, 1) && o->display_name == NULL) ||
            (!PQgetisnull(res, i, 2) && o->upn == NULL)) {
            PQclear(res);
            return ac_fail(err, AC_EOSERR, "out of memory");
        }
    }
    PQclear(res);
    qsort(c->names, (size_t)n, sizeof *c->names, name_order);
    return AC_OK;
}

/* The directory entry of organizer id, or NULL. */
static const org_name *name_of(inv_ctx *c, const char *id)
{
    if (id == NULL || c->nnames == 0)
        return NULL;
    if (c->idbuf == NULL) {
        if ((c->idbuf = malloc(64)) == NULL)
            return NULL;
        c->idcap = 64;
    }
    size_t need = rating_id_normalise(id, c->idbuf, c->idcap) + 1;
    if (need > c->idcap) {
        char *nb = realloc(c->idbuf, need);
        if (nb == NULL)
            return NULL;
        c->idbuf = nb;
        c->idcap = need;
        rating_id_normalise(id, c->idbuf, c->idcap);
    }
    org_name k = { .key = c->idbuf };
    return bsearch(&k, c->names, (size_t)c->nnames, sizeof k, name_order);
}

/* The likely cause of a difference between the provider's charge
 * (pc, same currency as the invoice) and ours, for a call v. */
static const char *likely_cause(const char *const v[V_COUNT], int64_t pc)
{
    const char *o = v[V_OUTCOME];
    int64_t pm, fee;
    int has_pm = money_parse_opt(v[V_RATE], &pm);
    int has_fee = money_parse_opt(v[V_FEE], &fee);
    int64_t minutes = strtoll(v[V_MINUTES], NULL, 10);
    int64_t billed = strtoll(v[V_BILLED], NULL, 10);

    if (pc > 0 && strcmp(o, "exempt") == 0)
        return "add-on exempt but provider charged";
    if (pc > 0 && strcmp(o, "pool") == 0)
        return "pool minutes charged";
    if (pc > 0 && strcmp(o, "rejected") == 0)
        return "rejected call charged";
    if (pc > 0 && strcmp(o, "zero") == 0)
        return "zero-length call charged";
    if (strcmp(o, "split") == 0 && has_pm && has_fee &&
        !money_cent_apart(pc, minutes * pm + fee))
        return "pool minutes charged";
    if (pc == 0)
        return "provider charged nothing";
    if (has_pm && has_fee && v[V_DURATION] != NULL) {
        /* pc against duration * pm / 60 + fee, exactly: times 60. */
        int64_t d = strtoll(v[V_DURATION], NULL, 10);
        if (d > 0 && llabs(60 * pc - (d * pm + 60 * fee)) < 6000)
            return "provider rounds per second";
    }
    if (has_pm && !money_cent_apart(pc, billed * pm))
        return "connection fee differs";
    return "rate differs";
}

/* Set a differing call aside for the Reconciliation list. */
static ac_status recon_keep(inv_ctx *c, const char *const v[V_COUNT],
                            int64_t diff, const char *cause, char *err)
{
    if (c->recon_rows == NULL &&
        (c->recon_rows = xb_tmpfile(c->book.tmpdir)) == NULL)
        return ac_fail(err, AC_ECANTCREAT, "cannot create a temporary "
                       "file in %s: %s", c->book.tmpdir, strerror(errno));
    static const int col[] = {
        V_USAGE, V_START, V_ORGANIZER, V_DEST, V_OUTCOME, V_MINUTES, V_POOL,
        V_BILLED, V_AMOUNT, V_PCHARGE, V_PCUR
    };
    copy_line *l = &c->recon_line;
    cl_reset(l);
    for (size_t i = 0; i < sizeof col / sizeof *col; i++) {
        cl_field(l, v[col[i]]);
        cl_char(l, '\t');
    }
    cl_money4(l, diff);
    cl_char(l, '\t');
    cl_field(l, cause);
    cl_char(l, '\n');
    if (l->failed)
        return ac_fail(err, AC_EOSERR, "out of memory");
    if (fwrite(l->b, 1, l->n, c->recon_rows) != l->n)
        return ac_fail(err, AC_EIO, "cannot write a temporary file: %s",
                       strerror(errno));
    return AC_OK;
}

/* The entry of country code key (its two bytes), added in first-seen
 * order; NULL when MAX_COUNTRIES are listed already. */
static country_total *country_of(inv_ctx *c, int key)
{
    int a = (key >> 8) - 'A', b = (key & 0xff) - 'A';
    int16_t *slot = NULL;

    if (a >= 0 && a < 26 && b >= 0 && b < 26) {
        slot = &c->country_slot[a * 26 + b];
        if (*slot > 0)
            return &c->countries[*slot - 1];
    } else {
        for (int i = 0; i < c->ncountries; i++)
            if (c->countries[i].code == key)
                return &c->countries[i];
    }
    if (c->ncountries == MAX_COUNTRIES)
        return NULL;
    country_total *t = &c->countries[c->ncountries++];
    t->code = key;
    t->minutes = 0;
    if (slot != NULL)
        *slot = (int16_t)c->ncountries;
    return t;
}

/* Add call v to the Summary's and the Reconciliation's totals. */
static ac_status tally(inv_ctx *c, const char *const v[V_COUNT], char *err)
{
    int64_t amount, pc;
    int o = 0;

    while (o < OUTCOMES && strcmp(v[V_OUTCOME], outcome_name[o]) != 0)
        o++;
    if (o == OUTCOMES || !money_parse_opt(v[V_AMOUNT], &amount))
        return ac_fail(err, AC_EINTERNAL, "call %s: outcome %s, amount %s",
                       v[V_USAGE], v[V_OUTCOME],
                       v[V_AMOUNT] ? v[V_AMOUNT] : "NULL");
    int64_t minutes = strtoll(v[V_MINUTES], NULL, 10);
    int64_t pool = strtoll(v[V_POOL], NULL, 10);
    int64_t billed = strtoll(v[V_BILLED], NULL, 10);
    for (int k = 0; k < 2; k++) {       /* the outcome's, then all calls' */
        outcome_sum *t = &c->outcomes[k == 0 ? o : OUTCOMES];
        t->calls++;
        t->minutes += minutes;
        t->pool += pool;
        t->billed += billed;
        t->amount += amount;
    }

    if (o == 0 && v[V_REASON] != NULL) {            /* rejected */
        int i = 0;
        while (i < c->nreasons && strcmp(c->reasons[i].reason,
                                         v[V_REASON]) != 0)
            i++;
        if (i == c->nreasons) {
            if (c->nreasons == c->reasons_cap) {
                int cap = c->reasons_cap ? c->reasons_cap * 2 : 8;
                reason_count *r = realloc(c->reasons,
                                          (size_t)cap * sizeof *r);
                if (r == NULL)
                    return ac_fail(err, AC_EOSERR, "out of memory");
                c->reasons = r;
                c->reasons_cap = cap;
            }
            c->reasons[i].reason = strdup(v[V_REASON]);
            c->reasons[i].calls = 0;
            if (c->reasons[i].reason == NULL)
                return ac_fail(err, AC_EOSERR, "out of memory");
            c->nreasons++;
            /* Kept in byte order: insert, like a sorted list. */
            while (i > 0 && strcmp(c->reasons[i - 1].reason,
                                   c->reasons[i].reason) > 0) {
                reason_count t = c->reasons[i - 1];
                c->reasons[i - 1] = c->reasons[i];
                c->reasons[i] = t;
                i--;
            }
        }
        c->reasons[i].calls++;
    } else if (o != 0 && v[V_COUNTRY] != NULL && v[V_COUNTRY][0] != '\0' &&
               v[V_COUNTRY][1] != '\0') {
        int key = (unsigned char)v[V_COUNTRY][0] << 8 |
                  (unsigned char)v[V_COUNTRY][1];
        country_total *t = minutes > 0 ? country_of(c, key) : NULL;
        if (t != NULL)
            t->minutes += minutes;
        else if (minutes > 0)
            return ac_fail(err, AC_EDATA, "invoice %s: more than %d "
                           "destination countries", c->invoice_no,
                           MAX_COUNTRIES);
    }

    /* The Reconciliation's totals were recorded with the invoice; the
     * pass only sets aside the calls to list: charged in the invoice's
     * currency, a cent or more apart. */
    if (!money_parse_opt(v[V_PCHARGE], &pc) || v[V_PCUR] == NULL ||
        strcmp(v[V_PCUR], iv(c, I_CURRENCY)) != 0 ||
        !money_cent_apart(pc, amount))
        return AC_OK;
    c->recon_listed++;
    return recon_keep(c, v, pc - amount, likely_cause(v, pc), err);
}

/* One Calls row from a call's values, then its share of the totals. */
static ac_status calls_write(inv_ctx *c, const char *const v[V_COUNT],
                             char *err)
{
    xb_sheet *s = &c->calls;
    xb_book *b = &c->book;

    if (s->row > c->header_row + c->calls_per_sheet) {  /* sheet full */
        calls_sheet_end(c);
        ac_status rc = calls_sheet_begin(c, err);
        if (rc != AC_OK)
            return rc;
    }
    xb_str(s, 0, v[0], NULL);           /* Usage ID */
    xb_ts(s, 1, v[1], b->datetime);     /* Start (local) */
    xb_str(s, 2, v[2], NULL);           /* Organizer */
    xb_str(s, 3, v[3], NULL);           /* Destination */
    xb_str(s, 4, v[4], NULL);           /* Country */
    xb_str(s, 5, v[5], NULL);           /* Kind */
    xb_dec(s, 6, v[6], b->integer);     /* Duration (s) */
    xb_dec(s, 7, v[7], b->integer);     /* Minutes */
    xb_str(s, 8, v[8], NULL);           /* Outcome */
    xb_dec(s, 9, v[9], b->integer);     /* Pool minutes */
    lxw_col_t k = 0;                    /* the columns after it move on */
    if (c->usca) {
        xb_dec(s, 10, v[V_USCA], b->integer);   /* US/CA pool minutes */
        k = 1;
    }
    xb_dec(s, k + 10, v[10], b->integer);   /* Billed minutes */
    xb_dec(s, k + 11, v[11], c->m4);        /* Rate */
    xb_dec(s, k + 12, v[12], c->m4);        /* Connection fee */
    xb_dec(s, k + 13, v[13], c->m4);        /* Amount */
    xb_str(s, k + 14, v[14], NULL);         /* Reason */
    int line = line_of(c, v);
    if (line > 0)
        xb_num(s, k + 15, line, b->integer);        /* Line */
    xb_str(s, k + 16, v[V_CALL_ID], NULL);
    xb_str(s, k + 17, v[V_CONF_ID], NULL);
    const org_name *o = name_of(c, v[V_ORGANIZER]);
    if (o != NULL)
        xb_str(s, k + 18, o->display_name, NULL);   /* Organizer name */
    if (v[V_PCHARGE] != NULL) {
        const xb_money *pm = v[V_PCUR] ? xb_money_of(b, v[V_PCUR], 2)
                                       : NULL;
        xb_dec(s, k + 19, v[V_PCHARGE], pm ? pm->m4 : b->decimal4);
    }
    xb_str(s, k + 20, v[V_PCUR], NULL);
    xb_str(s, k + 21, v[V_CAPABILITY], NULL);
    xb_next(s);
    ac_status rc = xb_check(b, err);
    return rc == AC_OK ? tally(c, v, err) : rc;
}

static ac_status calls_row(void *ctx, const PGresult *r, char *err)
{
    const char *v[V_COUNT];
    for (int i = 0; i < V_COUNT; i++)
        v[i] = db_value(r, 0, i);
    return calls_write(ctx, v, err);
}

/* The Calls rows from a spool of billing.rated_calls COPY text lines (the
 * columns of REPORT_SPOOL_COLUMNS), in file order. */
static ac_status calls_from_spool(inv_ctx *c, const char *spool_path,
                                  char *err)
{
    /* Spool column of each value (V_...). */
    static const int from[V_COUNT] = {
        2, 4, 5, 6, 10, 11, 7, 12, 8, 13, 14, 15, 16, 17, 9, 20, 21, 24, 25,
        26, 27
    };
    enum { SPOOL_COLS = 29 };
    FILE *f = fopen(spool_path, "r");
    char *line = NULL, *field[SPOOL_COLS];
    size_t cap = 0;
    ssize_t len;
    ac_status rc = AC_OK;

    if (f == NULL)
        return ac_fail(err, AC_EIO, "cannot read the spool %s",
                       spool_path);
    /* Fewer read(2)s; glibc needs the buffer given to use its size. */
    char *buf = malloc(SPOOL_READ_BUFFER);
    if (buf != NULL)
        setvbuf(f, buf, _IOFBF, SPOOL_READ_BUFFER);
    while (rc == AC_OK && (len = getline(&line, &cap, f)) > 0) {
        int n = 0;
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        for (char *p = line; n < SPOOL_COLS; n++) {
            field[n] = p;
            p = strchr(p, '\t');
            if (p == NULL) {
                n++;
                break;
            }
            *p++ = '\0';
        }
        if (n != SPOOL_COLS) {
            rc = ac_fail(err, AC_EINTERNAL, "spool line with %d fields",
                         n);
            break;
        }
        const char *v[V_COUNT];
        for (int i = 0; i < V_COUNT; i++)
            v[i] = db_copy_unescape(field[from[i]]);
        rc = calls_write(c, v, err);
    }
    if (rc == AC_OK && ferror(f))
        rc = ac_fail(err, AC_EIO, "error reading the spool %s", spool_path);
    free(line);
    fclose(f);
    free(buf);
    return rc;
}

static ac_status write_calls(inv_ctx *c, const char *spool_path, char *err)
{
    const char *p[] = { c->invoice_no };

    ac_status rc = calls_sheet_begin(c, err);
    if (rc == AC_OK && spool_path != NULL)
        rc = calls_from_spool(c, spool_path, err);
    else if (rc == AC_OK)
        rc = xb_stream(c->conn, calls_sql, 1, p, calls_row, c, err);
    if (rc == AC_OK) {
        calls_sheet_end(c);
        rc = xb_check(&c->book, err);
    }
    return rc;
}

/* ---------------------------------------------------------- Organizers */

static ac_status organizer_row(void *ctx, const PGresult *r, char *err)
{
    inv_ctx *c = ctx;
    xb_sheet *s = &c->list;
    xb_book *b = &c->book;

    if (PQgetisnull(r, 0, 0)) {
        xb_str(s, 0, "(no organizer)", b->italic);
    } else {
        const org_name *o = name_of(c, db_value(r, 0, 0));
        xb_str(s, 0, db_value(r, 0, 0), NULL);
        if (o != NULL) {
            xb_str(s, 1, o->display_name, NULL);
            xb_str(s, 2, o->upn, NULL);
        }
    }
    for (int col = 1; col <= 6; col++)
        xb_dec(s, (lxw_col_t)(col + 2), db_value(r, 0, col), b->integer);
    xb_dec(s, 9, db_value(r, 0, 7), c->m4);
    xb_str(s, 10, strcmp(db_value(r, 0, 8), "t") == 0 ? "yes" : "no", NULL);
    xb_str(s, 11, strcmp(db_value(r, 0, 9), "t") == 0 ? "yes" : "no", NULL);
    xb_next(s);
    return xb_check(b, err);
}

static ac_status write_organizers(inv_ctx *c, char *err)
{
    static const char *const head[] = {
        "Organizer", "Display name", "UPN", "Calls", "Rejected calls",
        "Minutes (not rejected)", "Exempt minutes", "Pool minutes",
        "Billed minutes", "Amount", "Add-on held (US/CA)", "Fair-use review"
    };
    const char *p[] = { c->invoice_no };

    ac_status rc = xb_sheet_add(&c->book, &c->list, "Organizers", err);
    if (rc != AC_OK)
        return rc;
    list_begin(c, &c->list, head, 12);
    /* From the rating (billing.invoice_organizers): "add-on held" means
     * DIALOUT_USCA held at one of the organizer's calls. */
    rc = xb_stream(c->conn,
        "SELECT organizer_id, calls, rejected_calls, minutes,"
        " exempt_minutes, pool_minutes, billed_minutes, amount,"
        " addon_held, fair_use_review"
        " FROM billing.invoice_organizers WHERE invoice_no = $1"
        " ORDER BY organizer_id COLLATE \"C\" NULLS LAST", 1, p,
        organizer_row, c, err);
    if (rc != AC_OK)
        return rc;
    xb_width(&c->list, 0, 12);
    list_end(c, &c->list, 12);
    return xb_check(&c->book, err);
}

/* ------------------------------------------------------------ Findings */

static ac_status finding_row(void *ctx, const PGresult *r, char *err)
{
    inv_ctx *c = ctx;
    xb_sheet *s = &c->list;

    /* The detail wraps in its column, its row as tall as it needs. */
    xb_str_wrapped(s, 3, db_value(r, 0, 3));
    xb_dec(s, 0, db_value(r, 0, 0), c->book.integer);
    for (int col = 1; col <= 4; col++)
        if (col != 3)
            xb_str(s, (lxw_col_t)col, db_value(r, 0, col), NULL);
    xb_next(s);
    return xb_check(&c->book, err);
}

static ac_status write_findings(inv_ctx *c, char *err)
{
    static const char *const head[] = {
        "#", "Code", "Subject", "Detail", "Usage ID"
    };
    const char *p[] = { c->invoice_no };

    ac_status rc = xb_sheet_add(&c->book, &c->list, "Findings", err);
    if (rc != AC_OK)
        return rc;
    list_begin(c, &c->list, head, 5);
    rc = xb_stream(c->conn,
        "SELECT seq, code, subject, detail, usage_id FROM billing.findings"
        " WHERE invoice_no = $1 ORDER BY seq", 1, p, finding_row, c, err);
    if (rc != AC_OK)
        return rc;
    list_end(c, &c->list, 5);
    return xb_check(&c->book, err);
}

/* ------------------------------------------------------ Reconciliation */

/* One Reconciliation row from the RECON_COLS values recon_keep() wrote. */
static void recon_write(inv_ctx *c, char *const v[RECON_COLS])
{
    xb_sheet *s = &c->list;
    xb_book *b = &c->book;

    xb_str(s, 0, v[0], NULL);           /* Usage ID */
    xb_ts(s, 1, v[1], b->datetime);     /* Start (local time) */
    xb_str(s, 2, v[2], NULL);           /* Organizer */
    xb_str(s, 3, v[3], NULL);           /* Destination */
    xb_str(s, 4, v[4], NULL);           /* Outcome */
    for (int col = 5; col <= 7; col++)  /* Minutes, pool, billed */
        xb_dec(s, (lxw_col_t)col, v[col], b->integer);
    xb_dec(s, 8, v[8], c->m4);          /* acbill amount */
    /* The provider's charge in the provider's currency (the invoice's:
     * other currencies are not compared). */
    const xb_money *pm = xb_money_of(b, v[10], 2);
    xb_dec(s, 9, v[9], pm ? pm->m4 : b->decimal4);
    xb_str(s, 10, v[10], NULL);
    xb_dec(s, 11, v[11], c->m4);        /* Difference */
    xb_str(s, 12, v[12], NULL);         /* Likely cause */
    xb_next(s);
}

static ac_status write_reconciliation(inv_ctx *c, char *err)
{
    static const char *const head[] = {
        "Usage ID", "Start (local time)", "Organizer", "Destination",
        "Outcome", "Minutes", "Pool minutes", "Billed minutes",
        "acbill amount", "Provider charge", "Provider currency",
        "Difference", "Likely cause"
    };
    static const char *const thead[] = {
        "Invoice currency", "Calls with a provider charge",
        "Compared (same currency)", "Not compared (other currency)",
        "Provider total", "acbill total (same calls)",
        "Difference (provider - acbill)", "Calls differing by 0.01 or more"
    };
    xb_sheet *s = &c->list;
    xb_book *b = &c->book;

    /* The ledger's totals and the pass's list must tell one story. */
    if (iv(c, I_R_CHARGED) == NULL)
        return ac_fail(err, AC_EDATA, "invoice %s: no reconciliation with "
                       "the provider recorded", c->invoice_no);
    if (c->recon_listed != atol(iv(c, I_R_DIFFERING)))
        return ac_fail(err, AC_EDATA, "invoice %s: %ld calls differ from "
                       "the provider's charge, the ledger says %s",
                       c->invoice_no, c->recon_listed, iv(c, I_R_DIFFERING));
    ac_status rc = xb_sheet_add(b, s, "Reconciliation", err);
    if (rc != AC_OK)
        return rc;
    if (c->draft) {
        xb_title(s, 0, "DRAFT - not an invoice, not for booking", b->draft);
        xb_next(s);
    }
    xb_title(s, 0, "Provider reconciliation: the upstream provider's charge "
           "per call against acbill's amount", b->section);
    xb_next(s);
    xb_header(s, thead, 8);
    xb_str(s, 0, iv(c, I_CURRENCY), NULL);
    for (int col = 1; col <= 7; col++)
        xb_dec(s, (lxw_col_t)col, iv(c, I_R_CHARGED + col - 1),
               col >= 4 && col <= 6 ? c->m4 : b->integer);
    xb_next(s);
    xb_title(s, 0, strcmp(iv(c, I_R_CHARGED), "0") == 0 ?
             "No provider charges are recorded for these calls." :
             "Calls that differ by 0.01 or more (calls charged in another "
             "currency are counted above, not compared):", b->italic);
    xb_next(s);
    xb_next(s);
    lxw_row_t header_row = s->row;
    xb_header(s, head, RECON_COLS);

    /* The calls set aside by the pass, in its (seq) order. */
    FILE *f = c->recon_rows;
    char *line = NULL, *v[RECON_COLS];
    size_t cap = 0;
    ssize_t len;
    if (f != NULL && fflush(f) == 0 && fseek(f, 0, SEEK_SET) == 0) {
        while (rc == AC_OK && (len = getline(&line, &cap, f)) > 0) {
            int n = 0;
            if (line[len - 1] == '\n')
                line[len - 1] = '\0';
            for (char *p = line; n < RECON_COLS; ) {
                v[n++] = p;
                p = strchr(p, '\t');
                if (p == NULL)
                    break;
                *p++ = '\0';
            }
            if (n != RECON_COLS) {
                rc = ac_fail(err, AC_EINTERNAL, "reconciliation line with "
                             "%d fields", n);
                break;
            }
            for (int i = 0; i < RECON_COLS; i++)
                v[i] = db_copy_unescape(v[i]);
            recon_write(c, v);
            rc = xb_check(b, err);
        }
        if (rc == AC_OK && ferror(f))
            rc = ac_fail(err, AC_EIO, "cannot read a temporary file");
    } else if (f != NULL) {
        rc = ac_fail(err, AC_EIO, "cannot read a temporary file: %s",
                     strerror(errno));
    }
    free(line);
    if (rc != AC_OK)
        return rc;
    xb_width(s, 0, 36);
    xb_list_finish(s, header_row, RECON_COLS);
    xb_print_setup(s, 1, header_row, 0, c->label, c->draft, c->paper);
    return xb_check(b, err);
}

/* ---------------------------------------------------------------- main */

ac_status report_invoice_workbook(PGconn *conn, const char *invoice_no,
                                  const char *path, char *err)
{
    return report_invoice_workbook_opt(conn, invoice_no, path, NULL, err);
}

ac_status report_invoice_workbook_spool(PGconn *conn, const char *invoice_no,
                                        const char *spool_path,
                                        const char *path, const char *tmpdir,
                                        char *err)
{
    report_invoice_options o = {
        .spool_path = spool_path, .tmpdir = tmpdir, .draft = 0
    };
    return report_invoice_workbook_opt(conn, invoice_no, path, &o, err);
}

time_t report_time_of(const char *ts)
{
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (ts == NULL || sscanf(ts, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi,
                             &sec) < 3)
        return 0;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return timegm(&tm);
}

/* The document row: the invoice in force as of this revision, or for a
 * draft the reference data as it is now. */
static ac_status load_document(inv_ctx *c, char *err)
{
    char date[16], rev[16];
    snprintf(date, sizeof date, "%s-01", iv(c, I_PERIOD));
    if (c->draft) {
        const char *p[] = { iv(c, I_TENANT) };
        return db_query(c->conn, draft_party_sql, 1, p, &c->doc, err);
    }
    snprintf(rev, sizeof rev, "%s", iv(c, I_REVISION));
    const char *hp[] = { c->invoice_no };
    ac_status rc = db_query(c->conn, hold_sql, 1, hp, &c->hold, err);
    if (rc != AC_OK)
        return rc;
    if (c->document_no != NULL) {
        const char *np[] = { c->document_no, c->invoice_no };
        rc = db_query(c->conn, doc_by_no_sql, 2, np, &c->doc, err);
        if (rc == AC_OK && PQntuples(c->doc) != 1)
            return ac_fail(err, AC_EDATA, "%s is not an invoice of "
                           "statement %s", c->document_no, c->invoice_no);
        if (rc == AC_OK)
            c->own_doc = 1;
        return rc;
    }
    const char *p[] = { iv(c, I_TENANT), date, rev,
                        PQntuples(c->hold) == 1 ? PQgetvalue(c->hold, 0, 0)
                                                : "infinity" };
    rc = db_query(c->conn, doc_sql, 4, p, &c->doc, err);
    if (rc == AC_OK && PQntuples(c->doc) == 1)
        c->own_doc = strcmp(dv(c, D_STATEMENT), c->invoice_no) == 0;
    return rc;
}

static void free_ctx(inv_ctx *c)
{
    if (c->recon_rows != NULL)
        fclose(c->recon_rows);
    cl_free(&c->recon_line);
    for (int i = 0; i < c->nreasons; i++)
        free(c->reasons[i].reason);
    free(c->reasons);
    for (int i = 0; i < c->nlines; i++)
        free(c->lines[i].kind);
    free(c->lines);
    for (int i = 0; i < c->nnames; i++) {
        free(c->names[i].key);
        free(c->names[i].display_name);
        free(c->names[i].upn);
    }
    free(c->names);
    free(c->idbuf);
    PQclear(c->doc);
    PQclear(c->hold);
    PQclear(c->inv);
    free(c);
}

ac_status report_invoice_workbook_opt(PGconn *conn, const char *invoice_no,
                                      const char *path,
                                      const report_invoice_options *opt,
                                      char *err)
{
    static const report_invoice_options none;
    inv_ctx *c = calloc(1, sizeof *c);
    char *title = NULL, *subject = NULL, *keywords = NULL,
         *comments = NULL;    /* whole: xb_open() cuts them */
    int year, month;
    ac_status rc;

    if (opt == NULL)
        opt = &none;
    if (c == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    c->conn = conn;
    c->invoice_no = invoice_no;
    c->draft = opt->draft != 0;
    c->document_no = c->draft ? NULL : opt->document_no;
    c->header_row = c->draft ? 1 : 0;
    c->calls_per_sheet = calls_limit;
    if (c->calls_per_sheet > REPORT_CALLS_SHEET_MAX - c->header_row)
        c->calls_per_sheet = REPORT_CALLS_SHEET_MAX - c->header_row;
    const char *p[] = { invoice_no };
    rc = db_query(conn, invoice_sql, 1, p, &c->inv, err);
    if (rc == AC_OK && PQntuples(c->inv) != 1)
        rc = ac_fail(err, AC_EDATA, "invoice %s not found", invoice_no);
    if (rc == AC_OK && sscanf(iv(c, I_PERIOD), "%4d-%2d", &year, &month) != 2)
        rc = ac_fail(err, AC_EINTERNAL, "invoice %s: bad period %s",
                     invoice_no, iv(c, I_PERIOD));
    if (rc == AC_OK)
        c->usca = xb_number(iv(c, I_USCA_POOL)) > 0;
    if (rc == AC_OK)
        rc = load_document(c, err);
    if (rc == AC_OK)
        rc = load_lines(c, err);
    if (rc == AC_OK)
        rc = load_names(c, err);
    if (rc != AC_OK) {
        free_ctx(c);
        return rc;
    }
    c->paper = xb_paper_of(dv(c, D_S_COUNTRY));

    /* What the document is, for the properties and the footers; a draft
     * names no number. */
    if (c->draft) {
        snprintf(c->label, sizeof c->label, "DRAFT %s %s", iv(c, I_TENANT),
                 iv(c, I_PERIOD));
        title = xb_printf("DRAFT usage statement, %s, %s",
                          iv(c, I_NAME), iv(c, I_PERIOD));
        comments = xb_printf("Draft of revision %s; not an "
                             "invoice: numbers are given when it is issued.",
                             iv(c, I_REVISION));
        keywords = xb_printf("acbill, draft, %s, %s",
                             iv(c, I_TENANT), iv(c, I_PERIOD));
    } else {
        if (c->own_doc) {
            snprintf(c->label, sizeof c->label, "Invoice %s (statement %s)",
                     dv(c, D_NO), invoice_no);
            title = xb_printf("Invoice %s, %s", dv(c, D_NO),
                              iv(c, I_NAME));
        } else {
            snprintf(c->label, sizeof c->label, "Usage statement %s",
                     invoice_no);
            title = xb_printf("Usage statement %s, %s",
                              invoice_no, iv(c, I_NAME));
        }
        if (iv(c, I_SUPERSEDES) != NULL)
            comments = xb_printf("Statement %s, revision %s; "
                                 "supersedes %s.", invoice_no,
                                 iv(c, I_REVISION), iv(c, I_SUPERSEDES));
        else
            comments = xb_printf("Statement %s, revision %s.",
                                 invoice_no, iv(c, I_REVISION));
        keywords = xb_printf("acbill, %s, %s, %s, %s",
                             c->own_doc ? "invoice" : "usage statement",
                             c->own_doc ? dv(c, D_NO) : invoice_no,
                             iv(c, I_TENANT), iv(c, I_PERIOD));
    }
    subject = xb_printf("Teams Audio Conferencing dial-out "
                        "usage of %s (%s), period %s, revision %s",
                        iv(c, I_NAME), iv(c, I_TENANT), iv(c, I_PERIOD),
                        iv(c, I_REVISION));
    /* Created: the recorded issue time (docs/billing-rules.md 4.3), the invoice
     * document's, else the statement's: written again, the same bytes. */
    time_t created = report_time_of(c->own_doc ? dv(c, D_ISSUED_AT)
                                               : iv(c, I_ISSUED));
    xb_props props = {
        .title = title, .subject = subject,
        .category = c->draft ? "Draft" : c->own_doc ? "Invoice"
                                                    : "Usage statement",
        .keywords = keywords, .comments = comments,
        .created = created ? created : xb_month_start(year, month),
        .tmpdir = opt->tmpdir,
    };
    rc = title && subject && keywords && comments
       ? xb_open(&c->book, path, &props, err)
       : ac_fail(err, AC_EOSERR, "out of memory");
    free(title);
    free(subject);
    free(keywords);
    free(comments);
    if (rc != AC_OK) {
        free_ctx(c);
        return rc;
    }

    const xb_money *m = xb_money_of(&c->book, iv(c, I_CURRENCY),
                                    atoi(iv(c, I_MINOR)));
    c->m2 = m->m2;      /* the first currency of a book: never NULL */
    c->m4 = m->m4;
    c->m2b = m->m2_bold;

    /* The Summary comes first in the book and is written once the pass
     * over the calls has added up its figures; a revision's Changes
     * next. */
    rc = xb_sheet_add(&c->book, &c->summary, "Summary", err);
    if (rc == AC_OK && iv(c, I_SUPERSEDES) != NULL) {
        rc = xb_sheet_add(&c->book, &c->changes, "Changes", err);
        c->has_changes = 1;
    }
    if (rc == AC_OK)
        rc = write_calls(c, opt->spool_path, err);
    if (rc == AC_OK)
        rc = write_summary(c, err);
    if (rc == AC_OK)
        rc = write_organizers(c, err);
    if (rc == AC_OK)
        rc = write_findings(c, err);
    if (rc == AC_OK)
        rc = write_reconciliation(c, err);

    ac_status crc = xb_close(&c->book, rc != AC_OK, rc == AC_OK ? err : NULL);
    if (rc == AC_OK)
        rc = crc;
    free_ctx(c);
    return rc;
}
