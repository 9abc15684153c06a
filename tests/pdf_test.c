/* pdf_test.c: the customer documents of docs/billing-rules.md 4.4 (the PDF and the Peppol
 * BIS 3 e-invoice) end to end, with the real bin/acbill against a real
 * PostgreSQL (fixtures spec_example.sql, northwind.sql and
 * customer_documents.sql).
 *
 * The PDFs are read back with poppler's pdftotext, pdffonts and pdfinfo
 * (Debian poppler-utils): the items of EU VAT Directive art. 226 on page
 * 1, ISO dates, no internal control figure, fonts embedded, no text below
 * 7 pt, Arabic and CJK names, the annex of 1,000 calls paginated.  The
 * e-invoices are parsed with libxml2 (XPath): totals equal the ledger's
 * (USD, and JPY with its Rounding charge), a credit note's positive
 * amounts and BillingReference.  (The official EN 16931 and Peppol rules
 * are run by `make conformance`, not here.)  Rewritten files are byte for
 * byte the recorded ones. */
#include <CUnit/CUnit.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <regex.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "customer_doc.h"
#include "sha256.h"
#include "testdb.h"
#include "testmain.h"

static PGconn *db;
static char conninfo[256];
static char out_root[256];
static char out_dir[300];

#define EXPECT(sql, want) CU_ASSERT(testdb_equals(db, sql, want, __LINE__))

static int acbill_run(void)
{
    return test_system("%s run --db '%s' --quiet --period 2026-10 --out %s"
                       " 2>>/tmp/acbill-pdf-test.log", test_acbill_path(),
                       conninfo, out_root);
}

/* The document number of tenant's kind ('invoice', 'credit_note'), the
 * latest; a static buffer. */
static const char *doc_of(const char *tenant, const char *kind)
{
    static char no[64];
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT document_no FROM billing.documents"
             " WHERE tenant_id = '%s' AND kind = '%s'"
             " ORDER BY seq DESC LIMIT 1", tenant, kind);
    char *v = testdb_value(db, sql);
    snprintf(no, sizeof no, "%s", v ? v : "(none)");
    free(v);
    return no;
}

/* The whole output of a shell command, malloc'd ("" on failure). */
static char *output_of(const char *fmt, const char *arg)
{
    char cmd[1024];
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    snprintf(cmd, sizeof cmd, fmt, arg);
    FILE *f = popen(cmd, "r");
    if (buf == NULL || f == NULL) {
        if (f)
            pclose(f);
        free(buf);
        return strdup("");
    }
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL)
                break;
            buf = nb;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    pclose(f);
    return buf;
}

static char *pdf_text(const char *document_no)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.pdf", out_dir, document_no);
    return output_of("pdftotext -enc UTF-8 '%s' - 2>&1", path);
}

static int contains(const char *hay, const char *needle, int line)
{
    if (strstr(hay, needle) != NULL)
        return 1;
    printf("\n    line %d: the PDF text lacks \"%s\"\n", line, needle);
    return 0;
}
#define HAS(text, s) CU_ASSERT(contains(text, s, __LINE__))
#define LACKS(text, s) CU_ASSERT_PTR_NULL(strstr(text, s))

static int matches(const char *text, const char *re)
{
    regex_t r;
    if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
        return -1;
    int m = regexec(&r, text, 0, NULL, 0) == 0;
    regfree(&r);
    return m;
}

static int suite_clean(void)
{
    PQfinish(db);
    db = NULL;
    if (out_root[0] != '\0')
        test_system("rm -rf %s", out_root);
    return 0;
}

static int pdf_init(void)
{
    db = testdb_fresh("acbill_pdf", conninfo, sizeof conninfo);
    snprintf(out_root, sizeof out_root, "/tmp/acbill-pdf-test.%d",
             (int)getpid());
    snprintf(out_dir, sizeof out_dir, "%s/2026-10", out_root);
    if (db == NULL || testdb_load(conninfo, "spec_example.sql") != 0 ||
        testdb_load(conninfo, "northwind.sql") != 0 ||
        testdb_load(conninfo, "customer_documents.sql") != 0 ||
        acbill_run() != 0) {
        suite_clean();
        return 1;
    }
    return 0;
}

/* Every document has its PDF, recorded with the SHA-256 of the file
 * beside the workbooks; an e-invoice exactly where docs/billing-rules.md 4.4 says, and
 * the reason where not; all listed in SHA256SUMS. */
static void test_files_recorded(void)
{
    EXPECT("SELECT count(*) FILTER (WHERE pdf_file = document_no || '.pdf'"
           " AND pdf_sha256 ~ '^[0-9a-f]{64}$') = count(*) AND count(*) = 11"
           " FROM billing.documents", "t");
    EXPECT("SELECT string_agg(tenant_id || ':' || coalesce((xml_file ="
           " document_no || '.xml' AND xml_sha256 ~ '^[0-9a-f]{64}$')::text,"
           " '-'), ' ' ORDER BY tenant_id) FROM billing.documents",
           "T1:true T10:- T11:true T12:true T13:true T3:true T5:true "
           "T6:true "
           "T7:true T8:true T9:-");
    EXPECT("SELECT string_agg(tenant_id || ': ' || xml_skipped, '; '"
           " ORDER BY tenant_id) FROM billing.documents"
           " WHERE xml_skipped IS NOT NULL",
           "T10: no e-invoice: the buyer has no Peppol address "
           "(ref.customers.peppol_endpoint); "
           "T9: no e-invoice: BHD has 3 decimals and EN 16931 allows at "
           "most 2");
    PGresult *r = PQexec(db, "SELECT pdf_file, pdf_sha256 FROM"
                         " billing.documents UNION ALL SELECT xml_file,"
                         " xml_sha256 FROM billing.documents"
                         " WHERE xml_file IS NOT NULL");
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL(PQntuples(r), 11 + 9);
    char path[512], hex[65], err[AC_ERR_MAX];
    char *sums;
    snprintf(path, sizeof path, "%s/SHA256SUMS", out_dir);
    sums = output_of("cat '%s'", path);
    for (int i = 0; i < PQntuples(r); i++) {
        char line[256];
        snprintf(path, sizeof path, "%s/%s", out_dir, PQgetvalue(r, i, 0));
        CU_ASSERT_EQUAL(sha256_file(path, hex, err), AC_OK);
        CU_ASSERT_STRING_EQUAL(hex, PQgetvalue(r, i, 1));
        snprintf(line, sizeof line, "%s  %s\n", PQgetvalue(r, i, 1),
                 PQgetvalue(r, i, 0));
        CU_ASSERT_PTR_NOT_NULL(strstr(sums, line));
    }
    PQclear(r);
    free(sums);
    /* No temporary file is left behind. */
    char *tmp = output_of("ls -A '%s' | grep -c '^\\.' || true", out_dir);
    CU_ASSERT_STRING_EQUAL(tmp, "0\n");
    free(tmp);
}

/* Page 1 of Contoso's invoice (docs/billing-rules.md 5.1, 5.15 USD) carries every item of
 * art. 226, dates in ISO 8601, and no internal control figure. */
static void test_pdf_invoice_items(void)
{
    const char *no = doc_of("T1", "invoice");
    char *t = pdf_text(no);
    char *page1 = strdup(t);
    char *ff = strchr(page1, '\f');     /* pdftotext ends pages with FF */
    if (ff)
        *ff = '\0';
    char *issue = testdb_value(db, "SELECT issue_date::text || ' ' ||"
                               " due_date::text FROM billing.documents"
                               " WHERE tenant_id = 'T1'");
    char *due = issue ? strchr(issue, ' ') : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(due);
    *due++ = '\0';

    HAS(page1, "INVOICE");
    HAS(page1, no);                                 /* number */
    HAS(page1, issue);                              /* issue date */
    HAS(page1, due);                                /* due date */
    HAS(page1, "2026-10-01 - 2026-10-31");          /* period of supply */
    HAS(page1, "Resale Telecom Ltd");               /* seller */
    HAS(page1, "1 Exchange Square");
    HAS(page1, "GB123456789");
    HAS(page1, "Contoso Inc");                      /* buyer */
    HAS(page1, "1 Microsoft Way");
    HAS(page1, "91-1144442");
    /* (poppler reads "(JM)" back as "( JM)") */
    HAS(page1, "Jamaica (");                        /* lines */
    HAS(page1, "0.25");
    HAS(page1, "0.05");
    HAS(page1, "2.55");
    HAS(page1, "France (FR)");
    HAS(page1, "0.11");
    HAS(page1, "premium");
    HAS(page1, "Taxable amount, VAT category G");   /* per category */
    HAS(page1, "5.15");
    HAS(page1, "VAT 0 %");                          /* rate and tax */
    HAS(page1, "0.00");
    HAS(page1, "Export of services: outside the scope of UK VAT");
    HAS(page1, "Total due");
    HAS(page1, "5.15 USD");
    HAS(page1, "IBAN GB33 BUKB 2020 1555 5555 55"); /* payment details */
    HAS(page1, "billing@resale.example");           /* seller's contact */
    HAS(page1, "+44 20 7946 0000");
    HAS(page1, "Page 1 of 2");
    /* Dates only as YYYY-MM-DD; no exact amounts (the FR line's 0.105,
     * 2.5500), no rounding row, no outcome codes. */
    CU_ASSERT_EQUAL(matches(t, "[0-9]{1,2}/[0-9]{1,2}/[0-9]{2,4}"), 0);
    CU_ASSERT_EQUAL(matches(t, "[0-9]\\.[0-9]{4}"), 0);
    LACKS(t, "0.105");
    CU_ASSERT_EQUAL(matches(t, "[Rr]ounding|ORGANIZER_NOT_LICENSED|"
                            "[Rr]ejected|split|exempt"), 0);
    /* The annex: the billed and split calls, numbers as E.164 digits. */
    HAS(t, "Annex");
    HAS(t, "+18765551234");
    HAS(t, "+33142685300");
    LACKS(t, "+12125550100");           /* exempt, pool and zero calls */
    free(issue);
    free(page1);
    free(t);
}

/* Fonts are embedded; no text below 7 pt (pdftotext's word boxes are
 * the font's ascent to descent, at least the font size). */
static void test_pdf_fonts_and_sizes(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.pdf", out_dir, doc_of("T6",
                                                               "invoice"));
    char *n = output_of("pdffonts '%s' | tail -n +3 | wc -l", path);
    char *bad = output_of("pdffonts '%s' | tail -n +3 |"
                          " awk '$(NF-4) != \"yes\"' | wc -l", path);
    CU_ASSERT(atoi(n) >= 2);
    CU_ASSERT_STRING_EQUAL(bad, "0\n");
    free(n);
    free(bad);
    CU_ASSERT(PDF_PT_MIN >= 7.0);
    snprintf(path, sizeof path, "%s/%s.pdf", out_dir, doc_of("T10",
                                                               "invoice"));
    char *min = output_of("pdftotext -bbox '%s' - | grep '<word' |"
                          " awk -F'\"' '{print $8 - $4}' | sort -n |"
                          " head -1", path);
    CU_ASSERT(atof(min) >= 7.0);
    free(min);
}

/* Names in Arabic (40 characters, right to left) and Japanese render as
 * text, in fonts that have them. */
static void test_pdf_scripts(void)
{
    char *t = pdf_text(doc_of("T6", "invoice"));
    /* (poppler reads the lam-alef ligature back as alef-lam: the words
     * without one are compared) */
    HAS(t, "شركة");
    HAS(t, "المتقدمة");
    HAS(t, "للخدمات");
    HAS(t, "السحابية");
    HAS(t, "VAT 21 %");
    free(t);
    t = pdf_text(doc_of("T7", "invoice"));
    HAS(t, "株式会社東京会議システム");
    HAS(t, "Intra-community supply");
    LACKS(t, "Annex");                  /* call_detail false */
    HAS(t, "Page 1 of 1");
    free(t);
    t = pdf_text(doc_of("T5", "invoice"));
    HAS(t, "Müller & Söhne Fernmelde GmbH");
    HAS(t, "Königstraße 12");
    free(t);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.pdf", out_dir, doc_of("T7",
                                                               "invoice"));
    char *fonts = output_of("pdffonts '%s'", path);
    CU_ASSERT_PTR_NOT_NULL(strstr(fonts, "CJK"));
    free(fonts);
}

/* 1,000 calls: the annex runs over pages of a fixed number of rows, each
 * with the columns' header and "Page n of m". */
static void test_pdf_annex_paginates(void)
{
    char path[512];
    const char *no = doc_of("T10", "invoice");
    snprintf(path, sizeof path, "%s/%s.pdf", out_dir, no);
    char *pages = output_of("pdfinfo '%s' | awk '/^Pages:/ {print $2}'",
                            path);
    int n = atoi(pages);
    free(pages);
    CU_ASSERT(n >= 1 + 1000 / 80 && n <= 1 + 1000 / 40);
    char *t = pdf_text(no);
    char want[64];
    snprintf(want, sizeof want, "Page %d of %d", n, n);
    HAS(t, want);
    HAS(t, "+12125550001");
    HAS(t, "+12125551000");
    HAS(t, "The 1000 calls charged are listed in the annex.");
    /* every annex page repeats the header */
    int headers = 0;
    for (const char *s = t; (s = strstr(s, "Per minute")) != NULL; s++)
        headers++;
    CU_ASSERT_EQUAL(headers, n);        /* page 1's table + n - 1 annex */
    /* each call once */
    int calls = 0;
    for (const char *s = t; (s = strstr(s, "+1212555")) != NULL; s++)
        calls++;
    CU_ASSERT_EQUAL(calls, 1000);
    free(t);
}

/* 60 lines: the first part runs over two pages (the lines' header
 * repeated), the annex follows, and every footer counts them all. */
static void test_pdf_long_first_part(void)
{
    char path[512];
    const char *no = doc_of("T13", "invoice");
    snprintf(path, sizeof path, "%s/%s.pdf", out_dir, no);
    char *pages = output_of("pdfinfo '%s' | awk '/^Pages:/ {print $2}'",
                            path);
    CU_ASSERT_EQUAL(atoi(pages), 3);
    free(pages);
    char *t = pdf_text(no);
    HAS(t, "Page 1 of 3");
    HAS(t, "Page 2 of 3");
    HAS(t, "Page 3 of 3");
    HAS(t, "Total due");
    int headers = 0;
    for (const char *s = t; (s = strstr(s, "Kind of number")) != NULL; s++)
        headers++;
    CU_ASSERT_EQUAL(headers, 2);
    free(t);
}

/* ------------------------------------------------------------- UBL */

static xmlDocPtr ubl_doc;
static xmlXPathContextPtr ubl_ctx;

static int ubl_open(const char *document_no)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.xml", out_dir, document_no);
    ubl_doc = xmlReadFile(path, NULL, XML_PARSE_NONET);
    if (ubl_doc == NULL)
        return 0;
    ubl_ctx = xmlXPathNewContext(ubl_doc);
    xmlXPathRegisterNs(ubl_ctx, BAD_CAST "cac", BAD_CAST
        "urn:oasis:names:specification:ubl:schema:xsd:"
        "CommonAggregateComponents-2");
    xmlXPathRegisterNs(ubl_ctx, BAD_CAST "cbc", BAD_CAST
        "urn:oasis:names:specification:ubl:schema:xsd:"
        "CommonBasicComponents-2");
    xmlXPathRegisterNs(ubl_ctx, BAD_CAST "inv", BAD_CAST
        "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2");
    xmlXPathRegisterNs(ubl_ctx, BAD_CAST "cn", BAD_CAST
        "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2");
    return 1;
}

static void ubl_close(void)
{
    xmlXPathFreeContext(ubl_ctx);
    xmlFreeDoc(ubl_doc);
    ubl_ctx = NULL;
    ubl_doc = NULL;
}

/* The string value of an XPath expression on the open document. */
static int xp_is(const char *expr, const char *want, int line)
{
    xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST expr, ubl_ctx);
    xmlChar *s = o ? xmlXPathCastToString(o) : NULL;
    int ok = s != NULL && strcmp((const char *)s, want) == 0;
    if (!ok)
        printf("\n    line %d: %s is \"%s\", expected \"%s\"\n", line, expr,
               s ? (const char *)s : "(error)", want);
    xmlFree(s);
    xmlXPathFreeObject(o);
    return ok;
}
#define XP(expr, want) CU_ASSERT(xp_is(expr, want, __LINE__))

/* Contoso (USD, category G): totals equal the ledger's; the Jamaica line
 * becomes minutes (2.50) and connection fees (0.05). */
static void test_ubl_usd(void)
{
    CU_ASSERT_FATAL(ubl_open(doc_of("T1", "invoice")));
    XP("name(/*)", "Invoice");
    XP("/inv:Invoice/cbc:CustomizationID", "urn:cen.eu:en16931:2017#"
       "compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0");
    XP("/inv:Invoice/cbc:ProfileID",
       "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0");
    XP("//cac:LegalMonetaryTotal/cbc:LineExtensionAmount", "5.15");
    XP("//cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount", "5.15");
    XP("//cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount", "5.15");
    XP("//cac:LegalMonetaryTotal/cbc:PayableAmount", "5.15");
    XP("/inv:Invoice/cac:TaxTotal/cbc:TaxAmount", "0.00");
    XP("string(sum(//cac:InvoiceLine/cbc:LineExtensionAmount) = 5.15)",
       "true");
    XP("//cac:TaxSubtotal/cac:TaxCategory/cbc:ID", "G");
    XP("//cac:TaxSubtotal/cac:TaxCategory/cbc:Percent", "0");
    XP("//cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReason",
       "Export of services: outside the scope of UK VAT");
    XP("//cac:AccountingSupplierParty//cbc:EndpointID/@schemeID", "0088");
    XP("//cac:AccountingSupplierParty//cac:PartyTaxScheme/cbc:CompanyID",
       "GB123456789");
    /* the buyer's id has no country prefix: legal registration (BT-47) */
    XP("count(//cac:AccountingCustomerParty//cac:PartyTaxScheme)", "0");
    XP("//cac:AccountingCustomerParty//cac:PartyLegalEntity/cbc:CompanyID",
       "91-1144442");
    XP("/inv:Invoice/cbc:BuyerReference", "T1");
    XP("concat((//cac:InvoiceLine[contains(cac:Item/cbc:Name, '(JM)')])[1]"
       "/cbc:InvoicedQuantity/@unitCode, ' ', (//cac:InvoiceLine[contains("
       "cac:Item/cbc:Name, '(JM)')])[1]/cbc:LineExtensionAmount, ' ',"
       " (//cac:InvoiceLine[contains(cac:Item/cbc:Name, '(JM)')])[2]"
       "/cbc:InvoicedQuantity/@unitCode, ' ', (//cac:InvoiceLine[contains("
       "cac:Item/cbc:Name, '(JM)')])[2]/cbc:LineExtensionAmount)",
       "MIN 2.50 C62 0.05");
    XP("(//cac:InvoiceLine[contains(cac:Item/cbc:Name, '(JM)')])[2]"
       "/cac:Price/cbc:PriceAmount", "0.05");
    XP("count(//cac:AllowanceCharge)", "0");
    ubl_close();
}

/* Northwind (JPY, S 10 %): 38 + 4 = 42 yen; the Japanese line (5 minutes
 * at 3.5 = 17.5, the ledger says 18) carries a Rounding charge of 0.50. */
static void test_ubl_jpy_rounding(void)
{
    CU_ASSERT_FATAL(ubl_open(doc_of("T3", "invoice")));
    XP("//cac:LegalMonetaryTotal/cbc:LineExtensionAmount", "38");
    XP("//cac:LegalMonetaryTotal/cbc:PayableAmount", "42");
    XP("/inv:Invoice/cac:TaxTotal/cbc:TaxAmount", "4");
    XP("//cac:TaxSubtotal/cac:TaxCategory/cbc:Percent", "10");
    XP("count(//cac:TaxCategory/cbc:TaxExemptionReason)", "0");
    XP("/inv:Invoice/cbc:BuyerReference", "PO-4711");
    XP("count(//cac:AllowanceCharge)", "1");
    XP("concat(//cac:InvoiceLine[cac:AllowanceCharge]/cbc:InvoicedQuantity,"
       " ' x ', //cac:InvoiceLine[cac:AllowanceCharge]/cac:Price/"
       "cbc:PriceAmount, ' = ', //cac:InvoiceLine[cac:AllowanceCharge]/"
       "cbc:LineExtensionAmount, ' ', //cac:AllowanceCharge/"
       "cbc:ChargeIndicator, ' ', //cac:AllowanceCharge/"
       "cbc:AllowanceChargeReason, ' ', //cac:AllowanceCharge/cbc:Amount)",
       "5 x 3.5 = 18 true Rounding 0.50");
    XP("//cbc:PayableAmount/@currencyID", "JPY");
    ubl_close();
}

/* The other categories: AE (reverse charge, buyer VAT id), K (delivery
 * country), E, S with 21 %; O has no Percent and the seller's id as its
 * legal registration. */
static void test_ubl_categories(void)
{
    CU_ASSERT_FATAL(ubl_open(doc_of("T5", "invoice")));
    XP("//cac:TaxSubtotal/cac:TaxCategory/cbc:ID", "AE");
    XP("//cac:AccountingCustomerParty//cac:PartyTaxScheme/cbc:CompanyID",
       "DE811569869");
    XP("//cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReason",
       "Reverse charge: the customer accounts for the VAT (art. 196 "
       "Directive 2006/112/EC)");
    XP("count(//cac:InvoiceLine[cbc:InvoicedQuantity/@unitCode = 'C62'])",
       "1");
    XP("string(sum(//cac:InvoiceLine/cbc:LineExtensionAmount) = "
       "//cac:LegalMonetaryTotal/cbc:LineExtensionAmount)", "true");
    ubl_close();
    CU_ASSERT_FATAL(ubl_open(doc_of("T7", "invoice")));
    XP("//cac:TaxSubtotal/cac:TaxCategory/cbc:ID", "K");
    XP("//cac:Delivery/cac:DeliveryLocation/cac:Address/cac:Country/"
       "cbc:IdentificationCode", "FR");
    ubl_close();
    CU_ASSERT_FATAL(ubl_open(doc_of("T6", "invoice")));
    XP("//cac:TaxSubtotal/cac:TaxCategory/cbc:Percent", "21");
    XP("/inv:Invoice/cac:TaxTotal/cbc:TaxAmount", "0.07");
    XP("//cac:AccountingCustomerParty//cac:PartyName/cbc:Name",
       "شركة الاتصالات المتقدمة للخدمات السحابية");
    ubl_close();
    /* O: no Percent, no VAT ids: the seller's and buyer's tax ids are
     * their legal registrations (BT-30, BT-47) */
    CU_ASSERT_FATAL(ubl_open(doc_of("T11", "invoice")));
    XP("//cac:TaxSubtotal/cac:TaxCategory/cbc:ID", "O");
    XP("count(//cbc:Percent)", "0");
    XP("count(//cac:PartyTaxScheme)", "0");
    XP("//cac:AccountingSupplierParty//cac:PartyLegalEntity/cbc:CompanyID",
       "GB123456789");
    XP("//cac:AccountingCustomerParty//cac:PartyLegalEntity/cbc:CompanyID",
       "12-3456789");
    XP("//cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReason",
       "Not subject to EU VAT: customer established outside the EU");
    ubl_close();
    /* Z: Percent 0 and no exemption reason */
    CU_ASSERT_FATAL(ubl_open(doc_of("T12", "invoice")));
    XP("//cac:TaxSubtotal/cac:TaxCategory/cbc:ID", "Z");
    XP("//cac:TaxSubtotal/cac:TaxCategory/cbc:Percent", "0");
    XP("count(//cbc:TaxExemptionReason)", "0");
    ubl_close();
}

/* A late call: void and replace.  The credit notes' e-invoices are
 * CreditNotes with positive amounts, the voided invoice's lines, a
 * BillingReference to it and one Note; their PDFs name the voided and
 * the replacing invoice and have no due date. */
static void test_credit_notes(void)
{
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "INSERT INTO usage.dialout_calls (usage_id, call_id, conference_id,"
        " tenant_id, organizer_id, destination_number, start_time,"
        " duration_seconds) VALUES ('00000000-0000-0000-0003-000000000008',"
        " 'n8', 'nconf8', 'T3', 'kenji@northwind.example', '+81312349999',"
        " '2026-10-20T02:00:00Z', 600)"), 0);
    CU_ASSERT_EQUAL_FATAL(acbill_run(), 0);
    char voided[64], cn[64], replacing[64];
    snprintf(cn, sizeof cn, "%s", doc_of("T3", "credit_note"));
    snprintf(replacing, sizeof replacing, "%s", doc_of("T3", "invoice"));
    char *v = testdb_value(db, "SELECT voids FROM billing.documents WHERE"
                           " tenant_id = 'T3' AND kind = 'credit_note'");
    snprintf(voided, sizeof voided, "%s", v ? v : "");
    free(v);
    EXPECT("SELECT count(*) FROM billing.documents WHERE tenant_id = 'T3'"
           " AND pdf_sha256 IS NOT NULL AND xml_sha256 IS NOT NULL", "3");

    CU_ASSERT_FATAL(ubl_open(cn));
    XP("name(/*)", "CreditNote");
    XP("/cn:CreditNote/cbc:CreditNoteTypeCode", "381");
    XP("//cac:LegalMonetaryTotal/cbc:LineExtensionAmount", "38");
    XP("//cac:LegalMonetaryTotal/cbc:PayableAmount", "42");
    XP("/cn:CreditNote/cac:TaxTotal/cbc:TaxAmount", "4");
    XP("count(//*[starts-with(normalize-space(.), '-')])", "0");
    XP("count(//cac:CreditNoteLine)", "2");
    XP("string(sum(//cac:CreditNoteLine/cbc:CreditedQuantity) = 7)",
       "true");
    XP("/cn:CreditNote/cac:BillingReference/cac:InvoiceDocumentReference/"
       "cbc:ID", voided);
    XP("count(/cn:CreditNote/cbc:Note)", "1");
    XP("string(contains(/cn:CreditNote/cbc:Note, 'INV-'))", "true");
    XP("count(/cn:CreditNote/cbc:DueDate)", "0");
    ubl_close();
    /* the new invoice: 73 + 7 = 80 yen */
    CU_ASSERT_FATAL(ubl_open(replacing));
    XP("//cac:LegalMonetaryTotal/cbc:PayableAmount", "80");
    ubl_close();

    char *t = pdf_text(cn);
    HAS(t, "CREDIT NOTE");
    HAS(t, cn);
    HAS(t, voided);
    char want[128];
    snprintf(want, sizeof want, "Replaced by invoice %s.", replacing);
    /* The reason is a paragraph pdftotext breaks into lines: compare with
     * every run of white space made one space. */
    for (char *r = t, *w = t; ; r++) {
        if (isspace((unsigned char)*r)) {
            if (w == t || w[-1] != ' ')
                *w++ = ' ';
            continue;
        }
        *w++ = *r;
        if (*r == '\0')
            break;
    }
    HAS(t, want);
    /* once: the recorded reason names it, no second line repeats it */
    const char *first = strstr(t, want);
    CU_ASSERT(first != NULL && strstr(first + 1, want) == NULL);
    HAS(t, "Total credited");
    HAS(t, "-42 JPY");
    LACKS(t, "Due date");
    free(t);
}

/* Written again from the ledger (files deleted, as after a crash before
 * the rename, a second later): byte for byte the recorded files. */
static void test_rewrite_identical(void)
{
    sleep(1);
    CU_ASSERT_EQUAL(test_system("rm -f %s/*.pdf %s/*.xml", out_dir,
                                out_dir), 0);
    CU_ASSERT_EQUAL_FATAL(acbill_run(), 0);
    PGresult *r = PQexec(db, "SELECT pdf_file, pdf_sha256 FROM"
                         " billing.documents UNION ALL SELECT xml_file,"
                         " xml_sha256 FROM billing.documents"
                         " WHERE xml_file IS NOT NULL");
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
    CU_ASSERT_EQUAL(PQntuples(r), 13 + 11);
    for (int i = 0; i < PQntuples(r); i++) {
        char path[512], hex[65], err[AC_ERR_MAX];
        snprintf(path, sizeof path, "%s/%s", out_dir, PQgetvalue(r, i, 0));
        CU_ASSERT_EQUAL(sha256_file(path, hex, err), AC_OK);
        CU_ASSERT_STRING_EQUAL(hex, PQgetvalue(r, i, 1));
    }
    PQclear(r);
    /* The PDF's creation date is the document's issue time. */
    char path[512];
    snprintf(path, sizeof path, "%s/%s.pdf", out_dir, doc_of("T1",
                                                               "invoice"));
    char *date = output_of("pdfinfo -isodates '%s' |"
                           " awk '/^CreationDate:/ {print $2}'", path);
    char *want = testdb_value(db, "SELECT to_char(issued_at AT TIME ZONE"
                              " 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') FROM"
                              " billing.documents WHERE tenant_id = 'T1'");
    CU_ASSERT_PTR_NOT_NULL(strstr(date, want ? want : "(none)"));
    free(date);
    free(want);
}

/* The recorded names and hashes are set once, like the workbook's. */
static void test_recorded_once(void)
{
    PGresult *r = PQexec(db, "UPDATE billing.documents SET pdf_sha256 ="
                         " repeat('0', 64) WHERE tenant_id = 'T1'");
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    r = PQexec(db, "UPDATE billing.documents SET xml_file = NULL"
               " WHERE tenant_id = 'T1'");
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    r = PQexec(db, "UPDATE billing.documents SET xml_skipped = 'x'"
               " WHERE tenant_id = 'T10'");
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    r = PQexec(db, "UPDATE billing.documents SET total = total"
               " WHERE tenant_id = 'T1'");
    CU_ASSERT_EQUAL(PQresultStatus(r), PGRES_COMMAND_OK);   /* no change */
    PQclear(r);
}

CU_ErrorCode tests_register(void)
{
    static CU_TestInfo tests[] = {
        { "files written, recorded, in SHA256SUMS", test_files_recorded },
        { "PDF page 1: art. 226 items, ISO dates, no control figures",
          test_pdf_invoice_items },
        { "PDF fonts embedded, nothing below 7 pt",
          test_pdf_fonts_and_sizes },
        { "PDF Arabic, CJK and accented names", test_pdf_scripts },
        { "PDF annex of 1,000 calls paginates", test_pdf_annex_paginates },
        { "PDF first part over two pages", test_pdf_long_first_part },
        { "UBL USD totals and lines", test_ubl_usd },
        { "UBL JPY Rounding charge", test_ubl_jpy_rounding },
        { "UBL tax categories", test_ubl_categories },
        { "credit notes: UBL and PDF", test_credit_notes },
        { "rewritten byte-identical", test_rewrite_identical },
        { "file records are set once", test_recorded_once },
        CU_TEST_INFO_NULL
    };
    static CU_SuiteInfo suites[] = {
        { "customer documents", pdf_init, suite_clean, NULL, NULL, tests },
        CU_SUITE_INFO_NULL
    };
    return CU_register_suites(suites);
}
