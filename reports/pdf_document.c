/* pdf_document.c: the PDF a customer receives for an invoice or credit
 * note (see customer_doc.h; docs/billing-rules.md 4.4).
 *
 * A4 portrait, drawn with pango on a cairo PDF surface: text stays text,
 * cairo embeds the subsets of the fonts used (fontconfig picks them from
 * FONT_FAMILIES, which covers Latin, Greek, Cyrillic, Arabic and CJK;
 * pango shapes Arabic and lays right-to-left runs out).  Sizes are in
 * points; no text is smaller than PDF_PT_MIN.
 *
 * The first part (header, parties, lines, tax, totals, payment) is drawn
 * as if it fitted on page 1; only when it does not is it laid out once
 * more to count its pages and drawn again, so that every footer can say
 * "Page n of m".  The annex has rows of one fixed height,
 * so its page count follows from the number of calls; its rows are read
 * in libpq single-row mode and each page is handed to cairo as soon as
 * it is full, so memory does not depend on the number of calls. */
#include "customer_doc.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <pango/pangocairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "countries.h"
#include "db.h"
#include "money.h"

/* A4 in points. */
#define PAGE_W 595.276
#define PAGE_H 841.890
#define MARGIN_X 42.0
#define MARGIN_TOP 40.0
#define BODY_BOTTOM (PAGE_H - 56.0)     /* the footer is below this */
#define FOOTER_Y (PAGE_H - 40.0)
#define CONTENT_W (PAGE_W - 2 * MARGIN_X)

/* Text sizes, in points. */
#define PDF_PT_TITLE 16.0
#define PDF_PT_NAME 11.0
#define PDF_PT_BODY 9.0
#define PDF_PT_SMALL 8.0
#define PDF_PT_ANNEX 7.5
#define PDF_PT_FOOTER 7.5
_Static_assert(PDF_PT_ANNEX >= PDF_PT_MIN && PDF_PT_FOOTER >= PDF_PT_MIN &&
               PDF_PT_SMALL >= PDF_PT_MIN && PDF_PT_BODY >= PDF_PT_MIN &&
               PDF_PT_NAME >= PDF_PT_MIN && PDF_PT_TITLE >= PDF_PT_MIN,
               "no text below PDF_PT_MIN (docs/billing-rules.md 4.4)");

/* Annex rows: one line each at PDF_PT_ANNEX, a fixed pitch. */
#define ANNEX_ROW_H 10.0
#define ANNEX_TOP (MARGIN_TOP + 42.0)   /* title and column header above */
#define ANNEX_ROWS_PER_PAGE ((int)((BODY_BOTTOM - ANNEX_TOP) / ANNEX_ROW_H))
/* The organizer column holds at most this many characters. */
#define ANNEX_ORGANIZER_CHARS 30

#define FONT_FAMILIES "Noto Sans, Noto Sans Arabic, Noto Naskh Arabic, " \
                      "Noto Sans CJK JP, DejaVu Sans"

enum { F_BODY, F_BOLD, F_SMALL, F_NAME, F_TITLE, F_ANNEX, F_ANNEX_BOLD,
       F_FOOTER, F_COUNT };

typedef enum { A_LEFT, A_RIGHT, A_CENTER } align;

typedef struct {
    const cd_doc *d;
    cairo_surface_t *surface;
    cairo_t *cr;
    PangoLayout *layout;
    PangoFontDescription *font[F_COUNT];
    int measure;                /* 1: lay out only, count pages */
    int optimistic;             /* drawing as if the first part took one
                                 * page; overflow: it did not */
    int overflow;
    int page, pages;
    double y;
    int in_lines;               /* a page break repeats the lines' header */
    /* The annex's rows of printable ASCII are drawn from glyphs looked
     * up once (a page at a time, with their text for extraction), not
     * laid out by pango row by row: a million rows must stay cheap. */
    PangoFont *annex_font;
    cairo_scaled_font_t *annex_sf;
    unsigned long glyph_index[95];
    double glyph_advance[95];
    double annex_ascent;
    int fast;                   /* glyphs of every printable ASCII found */
    cairo_glyph_t *glyphs;      /* the page's glyphs so far */
    char *chars;                /* their text, one byte each */
    cairo_text_cluster_t *clusters;
    int nglyphs;
} pdf;

static PangoFontDescription *font(double pt, int bold)
{
    PangoFontDescription *f = pango_font_description_from_string(
        FONT_FAMILIES);
    pango_font_description_set_absolute_size(f, pt * PANGO_SCALE);
    pango_font_description_set_weight(f, bold ? PANGO_WEIGHT_BOLD
                                              : PANGO_WEIGHT_NORMAL);
    return f;
}

/* Lay text out in [x, x + w) (w <= 0: unbounded, one line) and draw it
 * with its top at y unless measuring; returns its height. */
static double text(pdf *p, double x, double y, double w, const char *s,
                   int f, align a)
{
    int width, height;
    PangoLayout *l = p->layout;

    pango_layout_set_font_description(l, p->font[f]);
    pango_layout_set_width(l, w > 0 ? (int)(w * PANGO_SCALE) : -1);
    pango_layout_set_alignment(l, a == A_RIGHT ? PANGO_ALIGN_RIGHT :
                               a == A_CENTER ? PANGO_ALIGN_CENTER :
                               PANGO_ALIGN_LEFT);
    pango_layout_set_text(l, s ? s : "", -1);
    pango_layout_get_size(l, &width, &height);
    if (!p->measure) {
        double dx = 0;
        if (w <= 0 && a == A_RIGHT)     /* x is the right edge */
            dx = -(double)width / PANGO_SCALE;
        cairo_move_to(p->cr, x + dx, y);
        pango_cairo_show_layout(p->cr, l);
    }
    return (double)height / PANGO_SCALE;
}

static void rule(pdf *p, double x0, double x1, double y, double width)
{
    if (p->measure)
        return;
    cairo_set_line_width(p->cr, width);
    cairo_move_to(p->cr, x0, y);
    cairo_line_to(p->cr, x1, y);
    cairo_stroke(p->cr);
}

static void footer(pdf *p)
{
    const cd_doc *d = p->d;
    char left[512], right[160];

    snprintf(left, sizeof left, "%s%s%s%s%s",
             d->seller.legal_name ? d->seller.legal_name : "",
             d->seller.email ? "  \xc2\xb7  " : "",
             d->seller.email ? d->seller.email : "",
             d->seller.phone ? "  \xc2\xb7  " : "",
             d->seller.phone ? d->seller.phone : "");
    snprintf(right, sizeof right, "%s  \xc2\xb7  Page %d of %d",
             d->document_no, p->page, p->pages);
    rule(p, MARGIN_X, PAGE_W - MARGIN_X, FOOTER_Y - 4, 0.4);
    text(p, MARGIN_X, FOOTER_Y, CONTENT_W * 0.62, left, F_FOOTER, A_LEFT);
    text(p, MARGIN_X + CONTENT_W * 0.62, FOOTER_Y, CONTENT_W * 0.38, right,
         F_FOOTER, A_RIGHT);
}

static void new_page(pdf *p)
{
    footer(p);
    if (!p->measure)
        cairo_show_page(p->cr);
    p->page++;
    p->y = MARGIN_TOP;
}

/* The lines table's columns: left edge of the first two, right edges of
 * the numbers. */
#define COL_DEST MARGIN_X
#define COL_KIND (MARGIN_X + 160)
#define COL_CALLS (MARGIN_X + 268)
#define COL_MINUTES (MARGIN_X + 318)
#define COL_RATE (MARGIN_X + 375)
#define COL_FEE (MARGIN_X + 428)
#define COL_AMOUNT (PAGE_W - MARGIN_X)

static void lines_header(pdf *p)
{
    char amount_head[32];
    double y = p->y, h;
    snprintf(amount_head, sizeof amount_head, "Amount (%s)",
             p->d->currency);
    h = text(p, COL_DEST, y, 0, "Destination", F_BOLD, A_LEFT);
    text(p, COL_KIND, y, 0, "Kind of number", F_BOLD, A_LEFT);
    text(p, COL_CALLS, y, 0, "Calls", F_BOLD, A_RIGHT);
    text(p, COL_MINUTES, y, 0, "Minutes", F_BOLD, A_RIGHT);
    text(p, COL_RATE, y, 0, "Per minute", F_BOLD, A_RIGHT);
    text(p, COL_FEE, y, 0, "Per call", F_BOLD, A_RIGHT);
    text(p, COL_AMOUNT, y, 0, amount_head, F_BOLD, A_RIGHT);
    p->y += h + 2;
    rule(p, MARGIN_X, PAGE_W - MARGIN_X, p->y, 0.6);
    p->y += 3;
}

/* Room for h more points on this page, else a new one (with the lines'
 * header again while the lines are being drawn). */
static void need(pdf *p, double h)
{
    if (p->y + h <= BODY_BOTTOM)
        return;
    if (p->optimistic)
        p->overflow = 1;
    new_page(p);
    if (p->in_lines)
        lines_header(p);
}

static void money_text(const pdf *p, int64_t units, char *buf, size_t len)
{
    money_format_minor(units, p->d->minor_unit, buf, len);
}

/* A rate or fee as the ledger has it, without trailing zeros but with at
 * least the currency's decimals ("0.035", "0.02", "1.00", "3.5"). */
static void rate_text(const pdf *p, const char *trimmed, char *buf,
                      size_t len)
{
    const char *dot = strchr(trimmed, '.');
    int have = dot ? (int)strlen(dot + 1) : 0;
    int want = p->d->minor_unit;
    snprintf(buf, len, "%s%s", trimmed, (!dot && want > 0) ? "." : "");
    for (int i = have; i < want && strlen(buf) + 1 < len; i++)
        strcat(buf, "0");
}

static const char *category_words(const char *cat)
{
    static const struct { const char *code, *words; } cats[] = {
        { "S", "standard rate" }, { "AE", "reverse charge" },
        { "K", "intra-community supply" }, { "G", "export outside the EU" },
        { "E", "exempt" }, { "O", "outside the scope of VAT" },
        { "Z", "zero rated" }
    };
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++)
        if (strcmp(cats[i].code, cat) == 0)
            return cats[i].words;
    return cat;
}

/* A party block in [x, x + w): label, name, address, country, tax id, and
 * the extra lines given; returns the height. */
static double party_block(pdf *p, double x, double y, double w,
                          const char *label, const cd_party *c,
                          const char *fallback, const char *extra1,
                          const char *extra2)
{
    char t[512];
    double y0 = y;
    const char *cn = c->country ? country_name(c->country) : NULL;

    if (label != NULL)
        y += text(p, x, y, w, label, F_SMALL, A_LEFT) + 1;
    y += text(p, x, y, w, c->legal_name ? c->legal_name : fallback, F_NAME,
              A_LEFT) + 1;
    if (c->address != NULL)
        y += text(p, x, y, w, c->address, F_BODY, A_LEFT);
    if (c->country != NULL) {
        snprintf(t, sizeof t, "%s (%s)", cn ? cn : c->country, c->country);
        y += text(p, x, y, w, t, F_BODY, A_LEFT);
    }
    if (c->tax_id != NULL) {
        snprintf(t, sizeof t, "Tax ID: %s", c->tax_id);
        y += text(p, x, y, w, t, F_BODY, A_LEFT);
    }
    if (extra1 != NULL)
        y += text(p, x, y, w, extra1, F_BODY, A_LEFT);
    if (extra2 != NULL)
        y += text(p, x, y, w, extra2, F_BODY, A_LEFT);
    return y - y0;
}

/* A label and value pair of the header's right column. */
static double field(pdf *p, double y, const char *label, const char *value)
{
    double xl = MARGIN_X + CONTENT_W * 0.56, w = CONTENT_W * 0.44;
    double h = text(p, xl, y, w * 0.42, label, F_SMALL, A_LEFT);
    double h2 = text(p, xl + w * 0.42, y, w * 0.58, value, F_BODY,
                     A_RIGHT);
    return (h > h2 ? h : h2) + 1;
}

static void first_part(pdf *p)
{
    const cd_doc *d = p->d;
    char t[1024], a[64], b[64];
    double y, yl, yr;

    p->page = 1;
    p->y = MARGIN_TOP;
    p->in_lines = 0;

    /* Seller (left) and the document (right). */
    char mail[320], phone[160];
    snprintf(mail, sizeof mail, "Email: %s", d->seller.email);
    snprintf(phone, sizeof phone, "Phone: %s", d->seller.phone);
    yl = p->y + party_block(p, MARGIN_X, p->y, CONTENT_W * 0.52, NULL,
                            &d->seller, "(seller)",
                            d->seller.email ? mail : NULL,
                            d->seller.phone ? phone : NULL);
    yr = p->y;
    yr += text(p, PAGE_W - MARGIN_X, yr, 0,
               d->credit_note ? "CREDIT NOTE" : "INVOICE", F_TITLE,
               A_RIGHT) + 4;
    yr += field(p, yr, d->credit_note ? "Credit note number"
                                      : "Invoice number", d->document_no);
    yr += field(p, yr, "Issue date", d->issue_date);
    if (!d->credit_note)
        yr += field(p, yr, "Due date", d->due_date);
    snprintf(t, sizeof t, "%s - %s", d->period_start, d->period_end);
    yr += field(p, yr, "Period of supply", t);
    yr += field(p, yr, "Currency", d->currency);
    yr += field(p, yr, "Your reference",
                d->purchase_order ? d->purchase_order : d->tenant_id);
    if (d->purchase_order != NULL)
        yr += field(p, yr, "Customer ID", d->tenant_id);
    p->y = (yl > yr ? yl : yr) + 16;

    /* Buyer. */
    p->y += party_block(p, MARGIN_X, p->y, CONTENT_W * 0.6,
                        d->credit_note ? "Credited to" : "Bill to",
                        &d->buyer, d->tenant_name, NULL, NULL) + 14;

    /* A credit note: what it voids, why, and what replaces it. */
    if (d->credit_note) {
        snprintf(t, sizeof t, "This credit note cancels invoice %s of %s "
                 "in full.", d->voids, d->voids_date ? d->voids_date : "");
        p->y += text(p, MARGIN_X, p->y, CONTENT_W, t, F_BOLD, A_LEFT) + 2;
        if (d->reason != NULL) {
            snprintf(t, sizeof t, "Reason: %s", d->reason);
            p->y += text(p, MARGIN_X, p->y, CONTENT_W, t, F_BODY,
                         A_LEFT) + 2;
        }
        /* The reason the ledger records already names the replacing
         * invoice (or says there is none): say it once. */
        if (d->reason == NULL || (strstr(d->reason, "Replaced by") == NULL &&
                                  strstr(d->reason, "without replacement")
                                  == NULL)) {
            if (d->replaced_by != NULL)
                snprintf(t, sizeof t, "Replaced by invoice %s.",
                         d->replaced_by);
            else
                snprintf(t, sizeof t, "No invoice replaces it.");
            p->y += text(p, MARGIN_X, p->y, CONTENT_W, t, F_BODY, A_LEFT);
        }
        p->y += 12;
    }

    /* The lines. */
    lines_header(p);
    p->in_lines = 1;
    for (int i = 0; i < d->nlines; i++) {
        const cd_line *l = &d->lines[i];
        const char *cn = country_name(l->country);
        char dest[96], calls[32], minutes[32], rate[48], fee[48], amt[48];
        double h;
        snprintf(dest, sizeof dest, "%s (%s)", cn ? cn : l->country,
                 l->country);
        snprintf(calls, sizeof calls, "%lld", (long long)l->calls);
        snprintf(minutes, sizeof minutes, "%lld", (long long)l->minutes);
        rate_text(p, l->rate_text, rate, sizeof rate);
        if (l->fee != 0)
            rate_text(p, l->fee_text, fee, sizeof fee);
        else
            snprintf(fee, sizeof fee, "-");
        money_text(p, d->credit_note ? -l->amount : l->amount, amt,
                   sizeof amt);
        /* measure the destination (it may wrap), then draw the row */
        int m = p->measure;
        p->measure = 1;
        h = text(p, COL_DEST, 0, COL_KIND - COL_DEST - 6, dest, F_BODY,
                 A_LEFT);
        p->measure = m;
        need(p, h + 2);
        text(p, COL_DEST, p->y, COL_KIND - COL_DEST - 6, dest, F_BODY,
             A_LEFT);
        text(p, COL_KIND, p->y, COL_CALLS - COL_KIND - 30,
             *l->kind ? l->kind : "-", F_BODY, A_LEFT);
        text(p, COL_CALLS, p->y, 0, calls, F_BODY, A_RIGHT);
        text(p, COL_MINUTES, p->y, 0, minutes, F_BODY, A_RIGHT);
        text(p, COL_RATE, p->y, 0, rate, F_BODY, A_RIGHT);
        text(p, COL_FEE, p->y, 0, fee, F_BODY, A_RIGHT);
        text(p, COL_AMOUNT, p->y, 0, amt, F_BODY, A_RIGHT);
        p->y += h + 2;
    }
    if (d->nlines == 0) {
        need(p, 14);
        p->y += text(p, COL_DEST, p->y, CONTENT_W, "No charges.", F_BODY,
                     A_LEFT) + 2;
    }
    p->in_lines = 0;
    need(p, 80);
    rule(p, MARGIN_X, PAGE_W - MARGIN_X, p->y + 1, 0.6);
    p->y += 6;

    /* Tax and totals, right-aligned under the amounts. */
    double xl = MARGIN_X + CONTENT_W * 0.30, wl = CONTENT_W * 0.56;
    const char *cat = d->tax_category;
    money_text(p, d->subtotal, a, sizeof a);
    snprintf(t, sizeof t, "Taxable amount, VAT category %s (%s), %s %%",
             cat, category_words(cat), d->tax_percent);
    y = p->y;
    double h = text(p, xl, y, wl, t, F_BODY, A_LEFT);
    text(p, COL_AMOUNT, y, 0, a, F_BODY, A_RIGHT);
    p->y += h + 2;
    money_text(p, d->tax, b, sizeof b);
    snprintf(t, sizeof t, "VAT %s %%", d->tax_percent);
    need(p, 14);
    h = text(p, xl, p->y, wl, t, F_BODY, A_LEFT);
    text(p, COL_AMOUNT, p->y, 0, b, F_BODY, A_RIGHT);
    p->y += h + 3;
    rule(p, xl, PAGE_W - MARGIN_X, p->y, 0.6);
    p->y += 3;
    money_text(p, d->total, a, sizeof a);
    snprintf(t, sizeof t, "%s %s", a, d->currency);
    need(p, 16);
    h = text(p, xl, p->y, wl, d->credit_note ? "Total credited"
                                             : "Total due", F_NAME, A_LEFT);
    text(p, COL_AMOUNT, p->y, 0, t, F_NAME, A_RIGHT);
    p->y += h + 12;

    if (d->tax_note != NULL) {
        snprintf(t, sizeof t, "Tax note: %s", d->tax_note);
        need(p, 24);
        p->y += text(p, MARGIN_X, p->y, CONTENT_W, t, F_BODY, A_LEFT) + 8;
    }

    /* Payment. */
    if (!d->credit_note) {
        snprintf(t, sizeof t, "Please pay %s %s by %s, quoting %s.",
                 a, d->currency, d->due_date, d->document_no);
        need(p, 40);
        p->y += text(p, MARGIN_X, p->y, CONTENT_W, t, F_BOLD, A_LEFT) + 2;
        if (d->seller.payment_details != NULL) {
            p->y += text(p, MARGIN_X, p->y, CONTENT_W, "Payment details:",
                         F_BODY, A_LEFT);
            p->y += text(p, MARGIN_X + 12, p->y, CONTENT_W - 12,
                         d->seller.payment_details, F_BODY, A_LEFT) + 8;
        }
    } else {
        need(p, 20);
        p->y += text(p, MARGIN_X, p->y, CONTENT_W, "Nothing to pay: the "
                     "amount credited settles the invoice it cancels.",
                     F_BODY, A_LEFT) + 8;
    }

    if (d->call_detail && d->annex_calls > 0) {
        snprintf(t, sizeof t, "The %lld call%s %s %s listed in the "
                 "annex.", (long long)d->annex_calls,
                 d->annex_calls == 1 ? "" : "s",
                 d->credit_note ? "credited" : "charged",
                 d->annex_calls == 1 ? "is" : "are");
        need(p, 14);
        p->y += text(p, MARGIN_X, p->y, CONTENT_W, t, F_SMALL, A_LEFT);
    }
}

/* ---------------------------------------------------------------- annex */

/* Annex columns: the text of a row is laid out once, with tab stops. */
#define ANNEX_X 36.0
#define ANNEX_W (PAGE_W - 2 * ANNEX_X)

static PangoTabArray *annex_tabs(void)
{
    /* left: number, country, kind, organizer; right: duration, billed
     * minutes, rate, fee (positions from ANNEX_X, points) */
    static const struct { double x; PangoTabAlign a; } t[] = {
        { 68, PANGO_TAB_LEFT }, { 140, PANGO_TAB_LEFT },
        { 178, PANGO_TAB_LEFT }, { 242, PANGO_TAB_LEFT },
        { 400, PANGO_TAB_RIGHT }, { 438, PANGO_TAB_RIGHT },
        { 485, PANGO_TAB_RIGHT }, { ANNEX_W, PANGO_TAB_RIGHT }
    };
    int n = (int)(sizeof t / sizeof t[0]);
    PangoTabArray *a = pango_tab_array_new(n, TRUE);
    for (int i = 0; i < n; i++)
        pango_tab_array_set_tab(a, i, t[i].a, (int)t[i].x);
    return a;
}

static void annex_row(pdf *p, const char *s, int f)
{
    if (!p->measure) {
        pango_layout_set_font_description(p->layout, p->font[f]);
        pango_layout_set_text(p->layout, s, -1);
        cairo_move_to(p->cr, ANNEX_X, p->y);
        pango_cairo_show_layout(p->cr, p->layout);
    }
    p->y += ANNEX_ROW_H;
}

/* The annex's columns: left edges, or right edges (right 1), from
 * ANNEX_X; the same stops as annex_tabs(). */
#define ANNEX_COLS 9
static const struct { double x; int right; } annex_col[ANNEX_COLS] = {
    { 0, 0 }, { 68, 0 }, { 140, 0 }, { 178, 0 }, { 242, 0 },
    { 400, 1 }, { 438, 1 }, { 485, 1 }, { ANNEX_W, 1 }
};
#define ANNEX_ROW_GLYPHS 160    /* a row's fields are cut to fit */

/* Look the annex font's glyphs of printable ASCII up once. */
static void annex_fast_init(pdf *p)
{
    PangoContext *ctx = pango_layout_get_context(p->layout);
    PangoFontMap *fm = pango_context_get_font_map(ctx);
    cairo_font_extents_t fe;

    p->fast = 0;
    p->annex_font = pango_font_map_load_font(fm, ctx, p->font[F_ANNEX]);
    if (p->annex_font == NULL)
        return;
    p->annex_sf = pango_cairo_font_get_scaled_font(
        PANGO_CAIRO_FONT(p->annex_font));
    if (p->annex_sf == NULL ||
        cairo_scaled_font_status(p->annex_sf) != CAIRO_STATUS_SUCCESS)
        return;
    for (int c = 32; c < 127; c++) {
        char ch = (char)c;
        cairo_glyph_t *g = NULL;
        int n = 0;
        cairo_text_extents_t te;
        if (cairo_scaled_font_text_to_glyphs(p->annex_sf, 0, 0, &ch, 1, &g,
                &n, NULL, NULL, NULL) != CAIRO_STATUS_SUCCESS || n != 1 ||
            (c != ' ' && g[0].index == 0)) {
            cairo_glyph_free(g);
            return;
        }
        p->glyph_index[c - 32] = g[0].index;
        cairo_scaled_font_glyph_extents(p->annex_sf, g, 1, &te);
        p->glyph_advance[c - 32] = te.x_advance;
        cairo_glyph_free(g);
    }
    cairo_scaled_font_extents(p->annex_sf, &fe);
    p->annex_ascent = fe.ascent;
    size_t max = (size_t)ANNEX_ROWS_PER_PAGE * ANNEX_ROW_GLYPHS;
    p->glyphs = malloc(max * sizeof *p->glyphs);
    p->chars = malloc(max + 1);
    p->clusters = malloc(max * sizeof *p->clusters);
    p->fast = p->glyphs != NULL && p->chars != NULL && p->clusters != NULL;
    for (size_t i = 0; p->fast && i < max; i++) {
        p->clusters[i].num_bytes = 1;
        p->clusters[i].num_glyphs = 1;
    }
}

static void annex_fast_free(pdf *p)
{
    free(p->glyphs);
    free(p->chars);
    free(p->clusters);
    p->glyphs = NULL;
    p->chars = NULL;
    p->clusters = NULL;
    if (p->annex_font != NULL)
        g_object_unref(p->annex_font);
    p->annex_font = NULL;
    p->annex_sf = NULL;
}

/* Draw the glyphs gathered for this page. */
static void annex_flush(pdf *p)
{
    if (p->nglyphs == 0 || p->measure)
        return;
    cairo_set_scaled_font(p->cr, p->annex_sf);
    cairo_show_text_glyphs(p->cr, p->chars, p->nglyphs, p->glyphs,
                           p->nglyphs, p->clusters, p->nglyphs, 0);
    p->nglyphs = 0;
}

/* 1 when every field is printable ASCII (the fast path can draw it). */
static int fields_ascii(const char *const f[ANNEX_COLS])
{
    for (int i = 0; i < ANNEX_COLS; i++)
        for (const char *c = f[i]; *c; c++)
            if ((unsigned char)*c < 32 || (unsigned char)*c > 126)
                return 0;
    return 1;
}

/* One annex row of fields: gathered as glyphs when they are printable
 * ASCII, else laid out by pango with tab stops (names in other scripts,
 * which pango shapes and falls back for). */
static void annex_fields(pdf *p, const char *const f[ANNEX_COLS])
{
    if (!p->fast || !fields_ascii(f)) {
        char row[1024];
        size_t o = 0;
        for (int i = 0; i < ANNEX_COLS && o < sizeof row; i++)
            o += (size_t)snprintf(row + o, sizeof row - o, "%s%s",
                                  i ? "\t" : "", f[i]);
        annex_row(p, row, F_ANNEX);
        return;
    }
    double baseline = p->y + p->annex_ascent;
    int room = ANNEX_ROW_GLYPHS;
    for (int i = 0; i < ANNEX_COLS; i++) {
        size_t n = strlen(f[i]);
        double w = 0;
        if ((int)n > room)
            n = (size_t)room;
        room -= (int)n;
        for (size_t k = 0; k < n; k++)
            w += p->glyph_advance[(unsigned char)f[i][k] - 32];
        double x = ANNEX_X + annex_col[i].x - (annex_col[i].right ? w : 0);
        for (size_t k = 0; k < n; k++) {
            int c = (unsigned char)f[i][k] - 32;
            p->glyphs[p->nglyphs].index = p->glyph_index[c];
            p->glyphs[p->nglyphs].x = x;
            p->glyphs[p->nglyphs].y = baseline;
            p->chars[p->nglyphs] = f[i][k];
            p->nglyphs++;
            x += p->glyph_advance[c];
        }
    }
    p->y += ANNEX_ROW_H;
}

/* A new annex page: the previous page's footer, the title and the
 * columns' header. */
static void annex_page_start(pdf *p)
{
    char t[256];
    const cd_doc *d = p->d;

    annex_flush(p);
    new_page(p);
    pango_layout_set_tabs(p->layout, NULL);
    if (d->credit_note)
        snprintf(t, sizeof t, "Annex: the calls of invoice %s, credited by "
                 "%s, %s - %s (times are local, %s)", d->voids,
                 d->document_no, d->period_start, d->period_end,
                 d->time_zone);
    else
        snprintf(t, sizeof t, "Annex: the calls charged on invoice %s, "
                 "%s - %s (times are local, %s)", d->document_no,
                 d->period_start, d->period_end, d->time_zone);
    text(p, ANNEX_X, p->y, ANNEX_W, t, F_BOLD, A_LEFT);
    PangoTabArray *tabs = annex_tabs();
    pango_layout_set_tabs(p->layout, tabs);
    pango_tab_array_free(tabs);
    pango_layout_set_width(p->layout, -1);
    pango_layout_set_alignment(p->layout, PANGO_ALIGN_LEFT);
    p->y = ANNEX_TOP - ANNEX_ROW_H - 4;
    annex_row(p, "Start\tNumber\tCountry\tKind\tOrganizer\tSeconds\t"
              "Minutes\tPer minute\tPer call", F_ANNEX_BOLD);
    rule(p, ANNEX_X, ANNEX_X + ANNEX_W, ANNEX_TOP - 3, 0.5);
    p->y = ANNEX_TOP;
}

/* Copy at most max characters of UTF-8 s into buf, marking a cut with an
 * ellipsis; tabs and line breaks become spaces. */
static void cut(const char *s, int max, char *buf, size_t len)
{
    size_t o = 0;
    int chars = 0;
    const char *end = s + strlen(s);
    while (*s && o + 8 < len) {
        const char *next = g_utf8_find_next_char(s, end);
        if (next == NULL)
            next = end;
        if (chars == max) {
            memcpy(buf + o, "\xe2\x80\xa6", 3);     /* ... */
            o += 3;
            break;
        }
        if (*s == '\t' || *s == '\n' || *s == '\r')
            buf[o++] = ' ';
        else {
            memcpy(buf + o, s, (size_t)(next - s));
            o += (size_t)(next - s);
        }
        chars++;
        s = next;
    }
    buf[o] = '\0';
}

/* A number as E.164 digits: '+' and the digits (a masked number keeps
 * its '*'), spaces removed. */
static void e164(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    for (; s && *s && o + 1 < len; s++)
        if (*s != ' ')
            buf[o++] = *s;
    buf[o] = '\0';
}

static const char annex_sql[] =
    "SELECT to_char(start_local, 'YYYY-MM-DD HH24:MI'), destination_number,"
    " country, kind, organizer_id, duration_seconds, billed_minutes,"
    " trim_scale(per_minute)::text, connection_fee,"
    " trim_scale(connection_fee)::text"
    " FROM billing.rated_calls WHERE invoice_no = $1"
    " AND outcome IN ('billed', 'split') ORDER BY seq";

static ac_status annex(pdf *p, PGconn *conn, char *err)
{
    const char *params[] = { p->d->lines_of };
    ac_status rc = AC_OK;
    PGresult *res;
    int64_t rows = 0;
    char org[160], num[64], rate[48], fee[48];

    if (db_send_query(conn, annex_sql, 1, params) != 1 ||
        !PQsetSingleRowMode(conn))
        return ac_fail(err, db_status_of(conn, NULL), "annex query: %s",
                       PQerrorMessage(conn));
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE && rc == AC_OK) {
            if (rows % ANNEX_ROWS_PER_PAGE == 0)
                annex_page_start(p);
            cut(db_value(res, 0, 4) ? db_value(res, 0, 4) : "",
                ANNEX_ORGANIZER_CHARS, org, sizeof org);
            e164(db_value(res, 0, 1), num, sizeof num);
            rate_text(p, db_value(res, 0, 7), rate, sizeof rate);
            int64_t feev = 0;
            money_parse(db_value(res, 0, 8), &feev);
            if (feev != 0)
                rate_text(p, db_value(res, 0, 9), fee, sizeof fee);
            else
                snprintf(fee, sizeof fee, "-");
            const char *f[ANNEX_COLS] = {
                db_value(res, 0, 0), num,
                db_value(res, 0, 2) ? db_value(res, 0, 2) : "",
                db_value(res, 0, 3) ? db_value(res, 0, 3) : "", org,
                db_value(res, 0, 5) ? db_value(res, 0, 5) : "",
                db_value(res, 0, 6), rate, fee
            };
            annex_fields(p, f);
            rows++;
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK &&
                   rc == AC_OK) {
            rc = ac_fail(err, db_status_of(conn, res), "annex query: %s",
                         PQresultErrorMessage(res));
        }
        PQclear(res);
    }
    annex_flush(p);
    pango_layout_set_tabs(p->layout, NULL);
    if (rc == AC_OK && rows != p->d->annex_calls)
        rc = ac_fail(err, AC_EINTERNAL, "annex of %s: %lld calls, %lld "
                     "counted", p->d->document_no, (long long)rows,
                     (long long)p->d->annex_calls);
    return rc;
}

static cairo_status_t no_write(void *closure, const unsigned char *data,
                               unsigned int length)
{
    (void)closure;
    (void)data;
    (void)length;
    return CAIRO_STATUS_SUCCESS;
}

ac_status report_document_pdf(PGconn *conn, const char *document_no,
                              const char *path, char *err)
{
    cd_doc d;
    pdf p;
    ac_status rc;
    cairo_font_options_t *fo;

    memset(&p, 0, sizeof p);
    rc = cd_load(conn, document_no, &d, err);
    if (rc != AC_OK) {
        cd_free(&d);
        return rc;
    }
    p.d = &d;
    for (int i = 0; i < F_COUNT; i++) {
        static const struct { double pt; int bold; } f[F_COUNT] = {
            [F_BODY] = { PDF_PT_BODY, 0 }, [F_BOLD] = { PDF_PT_BODY, 1 },
            [F_SMALL] = { PDF_PT_SMALL, 0 }, [F_NAME] = { PDF_PT_NAME, 1 },
            [F_TITLE] = { PDF_PT_TITLE, 1 },
            [F_ANNEX] = { PDF_PT_ANNEX, 0 },
            [F_ANNEX_BOLD] = { PDF_PT_ANNEX, 1 },
            [F_FOOTER] = { PDF_PT_FOOTER, 0 }
        };
        p.font[i] = font(f[i].pt, f[i].bold);
    }

    /* Step 0 draws as if the first part took one page (it nearly always
     * does).  When it took more, step 1 lays it out on a surface that
     * writes nothing, to count its pages, and step 2 draws it again with
     * the right "Page n of m".  Either way the same ledger gives the same
     * file. */
    int annex_pages = 0;
    if (d.call_detail && d.annex_calls > 0)
        annex_pages = (int)((d.annex_calls + ANNEX_ROWS_PER_PAGE - 1) /
                            ANNEX_ROWS_PER_PAGE);
    int overflowed = 0;
    for (int step = 0; step < 3 && rc == AC_OK; step++) {
        if (step == 1 && !overflowed)
            break;
        int measure = step == 1;
        p.measure = measure;
        p.optimistic = step == 0;
        p.overflow = 0;
        if (step == 0)
            p.pages = 1 + annex_pages;
        p.surface = measure
            ? cairo_pdf_surface_create_for_stream(no_write, NULL, PAGE_W,
                                                  PAGE_H)
            : cairo_pdf_surface_create(path, PAGE_W, PAGE_H);
        if (!measure) {
            cairo_pdf_surface_set_metadata(p.surface,
                CAIRO_PDF_METADATA_CREATE_DATE, d.issued_at);
            cairo_pdf_surface_set_metadata(p.surface,
                CAIRO_PDF_METADATA_MOD_DATE, d.issued_at);
            cairo_pdf_surface_set_metadata(p.surface,
                CAIRO_PDF_METADATA_TITLE, d.document_no);
            if (d.seller.legal_name != NULL)
                cairo_pdf_surface_set_metadata(p.surface,
                    CAIRO_PDF_METADATA_AUTHOR, d.seller.legal_name);
            cairo_pdf_surface_set_metadata(p.surface,
                CAIRO_PDF_METADATA_CREATOR, "acbill");
        }
        p.cr = cairo_create(p.surface);
        p.layout = pango_cairo_create_layout(p.cr);
        fo = cairo_font_options_create();
        cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
        cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
        pango_cairo_context_set_font_options(
            pango_layout_get_context(p.layout), fo);
        pango_layout_context_changed(p.layout);
        cairo_font_options_destroy(fo);
        pango_layout_set_wrap(p.layout, PANGO_WRAP_WORD_CHAR);
        pango_layout_set_auto_dir(p.layout, FALSE);
        cairo_set_source_rgb(p.cr, 0, 0, 0);

        first_part(&p);
        overflowed = step == 0 && p.overflow;
        if (measure) {
            p.pages = p.page + annex_pages;
        } else if (!overflowed && annex_pages > 0) {
            annex_fast_init(&p);
            rc = annex(&p, conn, err);
            annex_fast_free(&p);
        }
        if (rc == AC_OK)
            new_page(&p);       /* the footer of the last page */
        g_object_unref(p.layout);
        cairo_destroy(p.cr);
        cairo_surface_finish(p.surface);
        cairo_status_t cs = cairo_surface_status(p.surface);
        cairo_surface_destroy(p.surface);
        if (rc == AC_OK && cs != CAIRO_STATUS_SUCCESS)
            rc = ac_fail(err, AC_ECANTCREAT, "cannot write %s: %s", path,
                         cairo_status_to_string(cs));
        if (rc == AC_OK && !measure && !overflowed &&
            p.page - 1 != p.pages)
            rc = ac_fail(err, AC_EINTERNAL, "%s: %d pages drawn, %d "
                         "counted", path, p.page - 1, p.pages);
    }
    for (int i = 0; i < F_COUNT; i++)
        pango_font_description_free(p.font[i]);
    cd_free(&d);
    if (rc != AC_OK)
        remove(path);
    return rc;
}
