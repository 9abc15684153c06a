/* ubl_document.c: the Peppol BIS Billing 3.0 e-invoice of a document (see
 * customer_doc.h; the mapping is docs/billing-rules.md 4.4's).
 *
 * Elements are written in the order of the UBL 2.1 schema (the Schematron
 * rules assume a schema-valid document), with libxml2's xmlTextWriter.
 * Amounts are exact: the ledger's figures in 1/10000 units, written to
 * the currency's minor unit; no floating point.
 *
 * Lines: a ledger line of m minutes at rate r with c calls at fee f and
 * amount A (rounded once, docs/billing-rules.md 3) becomes a MIN line of m at r whose
 * amount is m x r rounded to the minor unit and, when it has connection
 * fees, a C62 line of c at f with the rest of A, so the two add up to A.
 * Peppol allows a line's amount to differ from quantity x price by 0.02
 * (PEPPOL-EN16931-R120); where it differs by more (a JPY line: 5 minutes
 * at 3.5 is 17.5, the ledger says 18) the line carries a charge (or an
 * allowance) "Rounding" of the difference, to the cent. */
#include "customer_doc.h"

#include <errno.h>
#include <libxml/xmlwriter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "countries.h"
#include "money.h"

#define NS_INVOICE "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
#define NS_CREDIT "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
#define NS_CAC \
    "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
#define NS_CBC \
    "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
#define CUSTOMIZATION "urn:cen.eu:en16931:2017#compliant#" \
                      "urn:fdc:peppol.eu:2017:poacc:billing:3.0"
#define PROFILE "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

/* Peppol's tolerance between a line's amount and quantity x price. */
#define LINE_SLACK_UNITS 200    /* 0.02 */

typedef struct {
    xmlTextWriterPtr w;
    const cd_doc *d;
    int failed;
} ubl;

/* Text as XML 1.0 allows it: C0 controls other than tab, newline and
 * carriage return become spaces (the ledger's text is valid UTF-8). */
static char *clean(const char *s)
{
    char *c = strdup(s);
    if (c == NULL)
        return NULL;
    for (char *p = c; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t' && *p != '\n' &&
            *p != '\r')
            *p = ' ';
    return c;
}

static void start(ubl *u, const char *name)
{
    if (xmlTextWriterStartElement(u->w, BAD_CAST name) < 0)
        u->failed = 1;
}

static void end(ubl *u)
{
    if (xmlTextWriterEndElement(u->w) < 0)
        u->failed = 1;
}

static void attr(ubl *u, const char *name, const char *value)
{
    if (xmlTextWriterWriteAttribute(u->w, BAD_CAST name, BAD_CAST value) < 0)
        u->failed = 1;
}

/* <name>text</name>; nothing for NULL or "" (Peppol refuses empty
 * elements, PEPPOL-EN16931-R008).  attr_name/attr_value: one attribute,
 * or NULL. */
static void elem_attr(ubl *u, const char *name, const char *text,
                      const char *attr_name, const char *attr_value)
{
    if (text == NULL || *text == '\0')
        return;
    char *c = clean(text);
    if (c == NULL) {
        u->failed = 1;
        return;
    }
    start(u, name);
    if (attr_name != NULL)
        attr(u, attr_name, attr_value);
    if (xmlTextWriterWriteString(u->w, BAD_CAST c) < 0)
        u->failed = 1;
    end(u);
    free(c);
}

static void elem(ubl *u, const char *name, const char *text)
{
    elem_attr(u, name, text, NULL, NULL);
}

/* An amount in the document's currency, to its minor unit. */
static void amount(ubl *u, const char *name, int64_t units)
{
    char buf[48];
    money_format_minor(units, u->d->minor_unit, buf, sizeof buf);
    elem_attr(u, name, buf, "currencyID", u->d->currency);
}

/* An amount to the cent, whatever the currency (allowances and charges:
 * EN 16931 allows 2 decimals). */
static void amount2(ubl *u, const char *name, int64_t units)
{
    char buf[48];
    money_format2(units, buf, sizeof buf);
    elem_attr(u, name, buf, "currencyID", u->d->currency);
}

/* 1 when id starts with an ISO 3166 alpha-2 code (or EL, Greece's VAT
 * prefix): a VAT identifier (docs/billing-rules.md 4.4, BT-48). */
static int has_country_prefix(const char *id)
{
    char cc[3];
    if (id == NULL || strlen(id) < 3)
        return 0;
    cc[0] = id[0];
    cc[1] = id[1];
    cc[2] = '\0';
    if (cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z')
        return 0;
    /* countries.c also names codes ISO does not assign (Ascension,
     * Tristan da Cunha, Kosovo: AC, TA, XK), which no VAT identifier
     * carries (EN 16931 BR-CO-09 lists the ISO codes, EL and XI). */
    if (strcmp(cc, "AC") == 0 || strcmp(cc, "TA") == 0 ||
        strcmp(cc, "XK") == 0)
        return 0;
    return strcmp(cc, "EL") == 0 || strcmp(cc, "XI") == 0 ||
           country_name(cc) != NULL;
}

/* The address: its first line the street, its last the city, the lines
 * between the additional street (joined by ", "). */
static void address(ubl *u, const char *text, const char *country)
{
    char *a = clean(text ? text : "");
    char *lines[64];
    int n = 0;

    if (a == NULL) {
        u->failed = 1;
        return;
    }
    for (char *s = a, *nl; s != NULL && n < 64; s = nl) {
        nl = strpbrk(s, "\r\n");
        if (nl != NULL)
            *nl++ = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        size_t len = strlen(s);
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            s[--len] = '\0';
        if (*s != '\0')
            lines[n++] = s;
    }
    start(u, "cac:PostalAddress");
    if (n >= 1)
        elem(u, "cbc:StreetName", lines[0]);
    if (n >= 3) {
        size_t len = 0;
        for (int i = 1; i < n - 1; i++)
            len += strlen(lines[i]) + 2;
        char *mid = malloc(len + 1);
        if (mid == NULL) {
            u->failed = 1;
        } else {
            mid[0] = '\0';
            for (int i = 1; i < n - 1; i++) {
                if (i > 1)
                    strcat(mid, ", ");
                strcat(mid, lines[i]);
            }
            elem(u, "cbc:AdditionalStreetName", mid);
            free(mid);
        }
    }
    if (n >= 2)
        elem(u, "cbc:CityName", lines[n - 1]);
    start(u, "cac:Country");
    elem(u, "cbc:IdentificationCode", country);
    end(u);
    end(u);
    free(a);
}

static void endpoint(ubl *u, const char *peppol)
{
    char scheme[8];
    const char *colon = strchr(peppol, ':');
    size_t n = colon ? (size_t)(colon - peppol) : 0;
    if (colon == NULL || n >= sizeof scheme) {
        u->failed = 1;
        return;
    }
    memcpy(scheme, peppol, n);
    scheme[n] = '\0';
    elem_attr(u, "cbc:EndpointID", colon + 1, "schemeID", scheme);
}

static void tax_scheme(ubl *u)
{
    start(u, "cac:TaxScheme");
    elem(u, "cbc:ID", "VAT");
    end(u);
}

/* seller: 1 for the supplier, 0 for the customer. */
static void party(ubl *u, const cd_party *p, const char *fallback_name,
                  int seller)
{
    const char *cat = u->d->tax_category;
    int outside = strcmp(cat, "O") == 0;
    int vat_id = p->tax_id != NULL && !outside &&
                 (seller || has_country_prefix(p->tax_id));
    const char *name = p->legal_name ? p->legal_name : fallback_name;

    start(u, seller ? "cac:AccountingSupplierParty"
                    : "cac:AccountingCustomerParty");
    start(u, "cac:Party");
    endpoint(u, p->peppol_endpoint);
    start(u, "cac:PartyName");
    elem(u, "cbc:Name", name);
    end(u);
    address(u, p->address, p->country);
    if (vat_id) {
        start(u, "cac:PartyTaxScheme");
        elem(u, "cbc:CompanyID", p->tax_id);
        tax_scheme(u);
        end(u);
    }
    start(u, "cac:PartyLegalEntity");
    elem(u, "cbc:RegistrationName", name);
    if (!vat_id)
        elem(u, "cbc:CompanyID", p->tax_id);
    end(u);
    if (p->phone != NULL || p->email != NULL) {
        start(u, "cac:Contact");
        elem(u, "cbc:Telephone", p->phone);
        elem(u, "cbc:ElectronicMail", p->email);
        end(u);
    }
    end(u);
    end(u);
}

/* The tax category element (cac:TaxCategory or cac:ClassifiedTaxCategory):
 * Percent as docs/billing-rules.md 4.4 says (tax_rate x 100 under S, absent under O, 0
 * otherwise), the exemption reason (the tax note) under AE, E, G, K and
 * O. */
static void tax_category(ubl *u, const char *element, int with_reason)
{
    const char *cat = u->d->tax_category;
    start(u, element);
    elem(u, "cbc:ID", cat);
    if (strcmp(cat, "S") == 0)
        elem(u, "cbc:Percent", u->d->tax_percent);
    else if (strcmp(cat, "O") != 0)
        elem(u, "cbc:Percent", "0");
    if (with_reason && strcmp(cat, "S") != 0 && strcmp(cat, "Z") != 0)
        elem(u, "cbc:TaxExemptionReason", u->d->tax_note);
    tax_scheme(u);
    end(u);
}

static int64_t abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

/* One UBL line: quantity q of unit at price (units, text as written),
 * amount a (units). */
static void line(ubl *u, int *id, const char *unit, int64_t q,
                 int64_t price, const char *price_text, int64_t a,
                 const char *item)
{
    char buf[48];
    int64_t exact;
    int credit = u->d->credit_note;

    if (__builtin_mul_overflow(q, price, &exact)) {
        u->failed = 1;
        return;
    }
    (*id)++;
    start(u, credit ? "cac:CreditNoteLine" : "cac:InvoiceLine");
    snprintf(buf, sizeof buf, "%d", *id);
    elem(u, "cbc:ID", buf);
    snprintf(buf, sizeof buf, "%lld", (long long)q);
    elem_attr(u, credit ? "cbc:CreditedQuantity" : "cbc:InvoicedQuantity",
              buf, "unitCode", unit);
    amount(u, "cbc:LineExtensionAmount", a);
    int64_t diff = a - exact;
    if (abs64(diff) > LINE_SLACK_UNITS) {
        start(u, "cac:AllowanceCharge");
        elem(u, "cbc:ChargeIndicator", diff > 0 ? "true" : "false");
        elem(u, "cbc:AllowanceChargeReason", "Rounding");
        amount2(u, "cbc:Amount", money_round_cents(abs64(diff)));
        end(u);
    }
    start(u, "cac:Item");
    elem(u, "cbc:Name", item);
    tax_category(u, "cac:ClassifiedTaxCategory", 0);
    end(u);
    start(u, "cac:Price");
    elem_attr(u, "cbc:PriceAmount", price_text, "currencyID",
              u->d->currency);
    end(u);
    end(u);
}

static void lines(ubl *u)
{
    const cd_doc *d = u->d;
    char item[160];
    int id = 0;

    for (int i = 0; i < d->nlines && !u->failed; i++) {
        const cd_line *l = &d->lines[i];
        const char *cn = country_name(l->country);
        char where[96];
        int64_t by_minute, a1;

        snprintf(where, sizeof where, "%s (%s)%s%s", cn ? cn : l->country,
                 l->country, *l->kind ? ", " : "", l->kind);
        if (__builtin_mul_overflow(l->minutes, l->rate, &by_minute)) {
            u->failed = 1;
            return;
        }
        int fees = l->fee != 0 && l->calls != 0;
        a1 = fees ? money_round_minor(by_minute, d->minor_unit) : l->amount;
        snprintf(item, sizeof item, "Dial-out minutes to %s", where);
        line(u, &id, "MIN", l->minutes, l->rate, l->rate_text, a1, item);
        if (fees) {
            snprintf(item, sizeof item, "Connection fees, calls to %s",
                     where);
            line(u, &id, "C62", l->calls, l->fee, l->fee_text,
                 l->amount - a1, item);
        }
    }
}

static void credit_note_text(const cd_doc *d, char *buf, size_t len)
{
    int n = snprintf(buf, len, "Credit note for the whole of invoice %s "
                     "of %s.", d->voids, d->voids_date ? d->voids_date : "");
    if (n < 0 || (size_t)n >= len)
        return;
    if (d->reason != NULL)
        n += snprintf(buf + n, len - (size_t)n, " Reason: %s", d->reason);
    if (n < 0 || (size_t)n >= len)
        return;
    /* The recorded reason names the replacing invoice already. */
    if (d->reason != NULL && (strstr(d->reason, "Replaced by") != NULL ||
                              strstr(d->reason, "without replacement") != NULL))
        return;
    if (d->replaced_by != NULL)
        snprintf(buf + n, len - (size_t)n, " Replaced by invoice %s.",
                 d->replaced_by);
    else
        snprintf(buf + n, len - (size_t)n, " No replacing invoice.");
}

static void document(ubl *u)
{
    const cd_doc *d = u->d;
    int credit = d->credit_note;
    char note[2048];
    int64_t sub = abs64(d->subtotal), tax = abs64(d->tax),
            total = abs64(d->total);

    start(u, credit ? "CreditNote" : "Invoice");
    attr(u, "xmlns", credit ? NS_CREDIT : NS_INVOICE);
    attr(u, "xmlns:cac", NS_CAC);
    attr(u, "xmlns:cbc", NS_CBC);
    elem(u, "cbc:CustomizationID", CUSTOMIZATION);
    elem(u, "cbc:ProfileID", PROFILE);
    elem(u, "cbc:ID", d->document_no);
    elem(u, "cbc:IssueDate", d->issue_date);
    if (!credit)
        elem(u, "cbc:DueDate", d->due_date);
    elem(u, credit ? "cbc:CreditNoteTypeCode" : "cbc:InvoiceTypeCode",
         credit ? "381" : "380");
    if (credit) {
        credit_note_text(d, note, sizeof note);
        elem(u, "cbc:Note", note);
    }
    elem(u, "cbc:DocumentCurrencyCode", d->currency);
    elem(u, "cbc:BuyerReference",
         d->purchase_order ? d->purchase_order : d->tenant_id);
    start(u, "cac:InvoicePeriod");
    elem(u, "cbc:StartDate", d->period_start);
    elem(u, "cbc:EndDate", d->period_end);
    end(u);
    if (credit) {
        start(u, "cac:BillingReference");
        start(u, "cac:InvoiceDocumentReference");
        elem(u, "cbc:ID", d->voids);
        elem(u, "cbc:IssueDate", d->voids_date);
        end(u);
        end(u);
    }
    party(u, &d->seller, "(seller)", 1);
    party(u, &d->buyer, d->tenant_name, 0);
    if (strcmp(d->tax_category, "K") == 0) {
        start(u, "cac:Delivery");
        start(u, "cac:DeliveryLocation");
        start(u, "cac:Address");
        start(u, "cac:Country");
        elem(u, "cbc:IdentificationCode", d->buyer.country);
        end(u);
        end(u);
        end(u);
        end(u);
    }
    if (!credit && d->seller.payment_details != NULL) {
        char *acct = clean(d->seller.payment_details);
        if (acct == NULL) {
            u->failed = 1;
            return;
        }
        for (char *p = acct; *p; p++)
            if (*p == '\n' || *p == '\r' || *p == '\t')
                *p = ' ';
        start(u, "cac:PaymentMeans");
        elem(u, "cbc:PaymentMeansCode", "30");
        elem(u, "cbc:PaymentID", d->document_no);
        start(u, "cac:PayeeFinancialAccount");
        elem(u, "cbc:ID", acct);
        end(u);
        end(u);
        free(acct);
    }
    start(u, "cac:PaymentTerms");
    if (credit)
        snprintf(note, sizeof note, "Nothing to pay: this credit note "
                 "cancels invoice %s.", d->voids);
    else
        snprintf(note, sizeof note, "Payment due by %s.", d->due_date);
    elem(u, "cbc:Note", note);
    end(u);
    start(u, "cac:TaxTotal");
    amount(u, "cbc:TaxAmount", tax);
    start(u, "cac:TaxSubtotal");
    amount(u, "cbc:TaxableAmount", sub);
    amount(u, "cbc:TaxAmount", tax);
    tax_category(u, "cac:TaxCategory", 1);
    end(u);
    end(u);
    start(u, "cac:LegalMonetaryTotal");
    amount(u, "cbc:LineExtensionAmount", sub);
    amount(u, "cbc:TaxExclusiveAmount", sub);
    amount(u, "cbc:TaxInclusiveAmount", total);
    amount(u, "cbc:PayableAmount", total);
    end(u);
    lines(u);
    end(u);
}

ac_status report_document_ubl_skip(PGconn *conn, const char *document_no,
                                   int *skip, char *why, size_t len,
                                   char *err)
{
    cd_doc d;
    ac_status rc = cd_load(conn, document_no, &d, err);
    *skip = 0;
    if (rc == AC_OK)
        *skip = cd_ubl_skip_reason(&d, why, len);
    cd_free(&d);
    return rc;
}

ac_status report_document_ubl(PGconn *conn, const char *document_no,
                              const char *path, char *err)
{
    cd_doc d;
    char why[256];
    ac_status rc = cd_load(conn, document_no, &d, err);
    int64_t sum = 0;

    if (rc != AC_OK) {
        cd_free(&d);
        return rc;
    }
    if (cd_ubl_skip_reason(&d, why, sizeof why)) {
        cd_free(&d);
        return ac_fail(err, AC_EDATA, "document %s: %s", document_no, why);
    }
    for (int i = 0; i < d.nlines; i++)
        sum += d.lines[i].amount;
    if (d.nlines == 0 || sum != abs64(d.subtotal) ||
        abs64(d.subtotal) + abs64(d.tax) != abs64(d.total)) {
        cd_free(&d);
        return ac_fail(err, AC_EDATA, "document %s: its lines do not add "
                       "up to its subtotal (or it has none): no e-invoice",
                       document_no);
    }

    ubl u = { .d = &d };
    xmlBufferPtr buf = xmlBufferCreate();
    u.w = buf ? xmlNewTextWriterMemory(buf, 0) : NULL;
    if (u.w == NULL) {
        xmlBufferFree(buf);
        cd_free(&d);
        return ac_fail(err, AC_EOSERR, "out of memory");
    }
    xmlTextWriterSetIndent(u.w, 1);
    xmlTextWriterSetIndentString(u.w, BAD_CAST "  ");
    if (xmlTextWriterStartDocument(u.w, "1.0", "UTF-8", NULL) < 0)
        u.failed = 1;
    document(&u);
    if (xmlTextWriterEndDocument(u.w) < 0)
        u.failed = 1;
    xmlFreeTextWriter(u.w);         /* flushes into buf */
    cd_free(&d);
    if (u.failed) {
        xmlBufferFree(buf);
        return ac_fail(err, AC_EDATA, "document %s: the e-invoice could "
                       "not be composed", document_no);
    }
    FILE *f = fopen(path, "wb");
    size_t len = (size_t)xmlBufferLength(buf);
    if (f == NULL) {
        xmlBufferFree(buf);
        return ac_fail(err, AC_ECANTCREAT, "cannot create %s: %s", path,
                       strerror(errno));
    }
    int bad = fwrite(xmlBufferContent(buf), 1, len, f) != len;
    bad |= fclose(f) != 0;
    xmlBufferFree(buf);
    if (bad) {
        remove(path);
        return ac_fail(err, AC_ECANTCREAT, "cannot write %s: %s", path,
                       strerror(errno));
    }
    return AC_OK;
}
