/* partner_test.c: Partner Center imports and the reconciliation with
 * Microsoft (SPEC version 3, sections 6 and 7), end to end against a real
 * PostgreSQL with the real bin/acbill.
 *
 * Files come from tests/fixtures/partner_files.py (Microsoft's documented
 * layouts, made-up customers): the invoice reconciliation and daily rated
 * usage files as PascalCase CSV, camelCase CSV and the export's gzip JSON
 * lines.  The worked example of docs/billing-rules.md 5.1 is billed first (Contoso 5.15
 * USD, Fabrikam 0.00 EUR), so every reconciliation figure can be checked
 * against the ledger and the imported lines. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "import/partner.h"
#include "testdb.h"
#include "testmain.h"

static PGconn *db;
static char conninfo[256];
static char dir[256];

#define CONTOSO "11111111-1111-1111-1111-11111111AAAA"
#define FABRIKAM "22222222-2222-2222-2222-222222222222"
#define TAILSPIN "99999999-9999-9999-9999-999999999999"

#define EXPECT(sql, want) CU_ASSERT(testdb_equals(db, sql, want, __LINE__))

static int acbill(const char *args)
{
    return test_system("%s %s --db '%s' --quiet 2>>%s/log",
                       test_acbill_path(), args, conninfo, dir);
}

/* The stdout of a shell command, malloc'd ("" on failure). */
static char *capture(const char *fmt, const char *a, const char *b)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    FILE *p = popen(cmd, "r");
    char *buf = calloc(1, 1 << 20);
    if (p == NULL || buf == NULL)
        return buf ? buf : strdup("");
    size_t n = fread(buf, 1, (1 << 20) - 1, p);
    buf[n] = '\0';
    pclose(p);
    return buf;
}

static int suite_clean(void)
{
    PQfinish(db);
    db = NULL;
    if (dir[0])
        test_system("rm -rf %s", dir);
    return 0;
}

static int partner_init(void)
{
    snprintf(dir, sizeof dir, "/tmp/acbill-partner-test.%d", (int)getpid());
    db = testdb_fresh("acbill_partner", conninfo, sizeof conninfo);
    if (db == NULL || test_system("mkdir -p %s/out", dir) != 0 ||
        test_system("python3 %s/tests/fixtures/partner_files.py %s 2026-10 "
                    "'Contoso Ltd=" CONTOSO ",Fabrikam GmbH=" FABRIKAM
                    ",Tailspin Toys=" TAILSPIN "'", test_src_dir(), dir) != 0 ||
        testdb_load(conninfo, "spec_example.sql") != 0 ||
        testdb_exec(db, "INSERT INTO ref.operator (legal_name, address,"
                    " country, tax_id, payment_details) VALUES"
                    " ('Resale Telecom Ltd', E'1 Exchange Square\\nLondon',"
                    " 'GB', 'GB123456789', 'IBAN GB00 TEST 0000 0000')"
                    " ON CONFLICT (one) DO NOTHING") != 0 ||
        /* the Entra tenant ids in lower case: Microsoft writes upper */
        testdb_exec(db, "INSERT INTO ref.customers (tenant_id, legal_name,"
                    " address, country, tax_note, entra_tenant_id) VALUES"
                    " ('T1', 'Contoso Ltd', '1 Main St', 'US',"
                    "  'Outside the scope of EU VAT',"
                    "  lower('" CONTOSO "')::uuid),"
                    " ('T2', 'Fabrikam GmbH', 'Hauptstr. 1', 'DE',"
                    "  'Outside the scope of VAT', '" FABRIKAM "')") != 0) {
        suite_clean();
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------- normalisers */

static void test_normalisers(void)
{
    char out[64], why[128];
    static const struct { const char *in; int pct; const char *want; }
    ok[] = {
        { "1,234.56", 0, "1234.56" }, { "1234.5600", 0, "1234.56" },
        { "-0.50", 0, "-0.5" }, { "5.00", 0, "5" }, { "0", 0, "0" },
        { "-0.00", 0, "0" }, { "15", 1, "0.15" }, { "100", 1, "1" },
        { "0.15", 0, "0.15" }, { "7.5", 1, "0.075" }, { " 12 ", 0, "12" },
        { "1,000,000.001", 0, "1000000.001" }, { ".5", 0, "0.5" },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        CU_ASSERT_EQUAL(partner_norm_number(ok[i].in, ok[i].pct, out,
                                            sizeof out, why), 0);
        CU_ASSERT_STRING_EQUAL(out, ok[i].want);
    }
    static const char *const bad[] = { "1.234,56", "1,23", "12,34.5",
        "1,2345", "", "-", "1e5", "1.2.3", "$5", "1 234", ",123" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(partner_norm_number(bad[i], 0, out, sizeof out,
                                            why), -1);
    CU_ASSERT_EQUAL(partner_norm_number("1.234,56", 0, out, sizeof out,
                                        why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "en-US"));

    static const struct { const char *in, *want; } dates[] = {
        { "10/1/2026", "2026-10-01" }, { "2026-10-01T00:00:00Z", "2026-10-01" },
        { "2026-10-01", "2026-10-01" }, { "2/29/2024", "2024-02-29" },
        { "10/1/2026 12:00:00 AM", "2026-10-01" },
        { "10/1/2026 1:05:09 PM", "2026-10-01T13:05:09Z" },
        { "2026-10-01T02:00:00+02:00", "2026-10-01" },
        { "2026-10-31T23:30:00-01:00", "2026-11-01T00:30:00Z" },
        { "2026-10-01T00:00:00.000Z", "2026-10-01" },
    };
    for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
        CU_ASSERT_EQUAL(partner_norm_date(dates[i].in, out, sizeof out,
                                          why), 0);
        CU_ASSERT_STRING_EQUAL(out, dates[i].want);
    }
    static const char *const bad_dates[] = { "31/10/2026", "2/29/2026",
        "10/1/26", "2026-13-01", "yesterday", "10.1.2026", "" };
    for (size_t i = 0; i < sizeof bad_dates / sizeof bad_dates[0]; i++)
        CU_ASSERT_EQUAL(partner_norm_date(bad_dates[i], out, sizeof out,
                                          why), -1);
    CU_ASSERT_EQUAL(partner_norm_guid("{" CONTOSO "}", out, sizeof out, why),
                    0);
    CU_ASSERT_STRING_EQUAL(out, "11111111-1111-1111-1111-11111111aaaa");
    CU_ASSERT_EQUAL(partner_norm_guid("contoso.example", out, sizeof out,
                                      why), -1);
}

/* ------------------------------------------------------------ imports */

static void test_both_spellings_and_forms(void)
{
    char args[512];
    snprintf(args, sizeof args, "import partner-invoice %s/invoice-pascal.csv",
             dir);
    CU_ASSERT_EQUAL(acbill(args), 0);
    EXPECT("SELECT count(*) FROM usage.partner_charges", "9");
    /* exact: the en-US 1,150.00 is 1150, every line's subtotal re-adds */
    EXPECT("SELECT sum(subtotal) FROM usage.partner_charges", "1183.05");
    EXPECT("SELECT subtotal FROM usage.partner_charges WHERE product_id ="
           " 'CFQ7TTC0LF8Q'", "1150");
    EXPECT("SELECT string_agg(charge_type || ':' || billable_quantity || ':'"
           " || subtotal || ':' || charge_start_date, ' ' ORDER BY"
           " charge_start_date, charge_type) FROM usage.partner_charges"
           " WHERE product_id = 'CFQ7TTC0LHSL' AND customer_id = '" CONTOSO
           "'", "renew:7:17.5:2026-09-01 new:2:5:2026-10-01"
           " addQuantity:1:2.5:2026-10-15 removeQuantity:1:-1.25:2026-10-20"
           " customerCredit:0:-0.5:2026-10-21");
    /* Total is totalForCustomer, kept in total */
    EXPECT("SELECT sum(total) FROM usage.partner_charges", "1183.05");

    /* the same lines in camelCase (other column order), then the JSON
     * lines, then the first file again: all unchanged, stored once */
    snprintf(args, sizeof args, "import partner-invoice %s/invoice-camel.csv"
             " %s/invoice.json.gz %s/invoice-pascal.csv", dir, dir, dir);
    CU_ASSERT_EQUAL(acbill(args), 0);
    EXPECT("SELECT count(*) FROM usage.partner_charges", "9");
    EXPECT("SELECT string_agg(file_name || ':' || rows_read || '/' ||"
           " inserted || '/' || unchanged || '/' || rejected, ' ' ORDER BY"
           " import_id) FROM usage.imports WHERE source = 'partner-invoice'",
           "invoice-pascal.csv:9/9/0/0 invoice-camel.csv:9/0/9/0"
           " invoice.json.gz:9/0/9/0 invoice-pascal.csv:9/0/9/0");

    /* daily rated usage: camelCase first this time (rates 0.15), then
     * PascalCase (PartnerEarnedCreditPercentage 15), then JSON lines */
    snprintf(args, sizeof args, "import partner-usage %s/usage-camel.csv"
             " %s/usage-pascal.csv %s/usage.json.gz", dir, dir, dir);
    CU_ASSERT_EQUAL(acbill(args), 0);
    EXPECT("SELECT count(*) || ':' || sum(billing_pre_tax_total)"
           " FROM usage.partner_usage", "5:5.8845");
    EXPECT("SELECT string_agg(DISTINCT fields ->> 'rateOfPartnerEarnedCredit',"
           " ',') FROM usage.partner_usage", "0.15");
    EXPECT("SELECT string_agg(DISTINCT unit, ',') FROM usage.partner_usage",
           "1 Minute");
    EXPECT("SELECT string_agg(inserted || '/' || unchanged, ' ' ORDER BY"
           " import_id) FROM usage.imports WHERE source = 'partner-usage'",
           "5/0 0/5 0/5");
    EXPECT("SELECT billing_pre_tax_total FROM usage.partner_usage WHERE"
           " usage_date = '2026-10-05'", "1.2345");
}

static void test_bad_lines(void)
{
    char args[512];
    long before = testdb_long(db, "SELECT count(*) FROM"
                              " usage.partner_charges");
    snprintf(args, sizeof args, "import partner-invoice %s/invoice-bad.csv",
             dir);
    CU_ASSERT_EQUAL(acbill(args), 65);
    EXPECT("SELECT rows_read || '/' || inserted || '/' || unchanged || '/'"
           " || rejected FROM usage.imports WHERE file_name ="
           " 'invoice-bad.csv'", "5/0/1/4");
    EXPECT("SELECT string_agg(line_no || ' ' || reason, ' | ' ORDER BY"
           " line_no) FROM usage.import_rejects JOIN usage.imports"
           " USING (import_id) WHERE file_name = 'invoice-bad.csv'",
           "3 customerId is not a GUID: 'contoso.example'"
           " | 4 subtotal is not an en-US number (a decimal comma? Partner"
           " Center writes 1,234.56): '1.234,56'"
           " | 5 chargeStartDate is not a date (m/d/yyyy or yyyy-mm-dd):"
           " '31/10/2026'"
           " | 6 the row has 3 fields, the header 46");
    EXPECT("SELECT raw LIKE '%\"1.234,56\"%' FROM usage.import_rejects"
           " WHERE line_no = 4 AND reason LIKE 'subtotal%'", "t");
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM"
                                " usage.partner_charges"), before);
}

static void test_refused_files(void)
{
    char args[512];
    long charges = testdb_long(db, "SELECT count(*) FROM"
                               " usage.partner_charges");
    long usage = testdb_long(db, "SELECT count(*) FROM usage.partner_usage");
    /* a PSTN usage export given to partner-invoice */
    CU_ASSERT_EQUAL(test_system("printf 'UsageId,Call ID,Conference ID,"
        "User Location,AAD ObjectId,UPN,User Display Name,Caller ID,"
        "Call Type,Number Type,Domestic/International,Destination Dialed,"
        "Destination Number,Start Time,End Time,Duration Seconds,"
        "Connection Fee,Charge,Currency,Capability\\r\\n' > %s/pstn.csv",
        dir), 0);
    snprintf(args, sizeof args, "import partner-invoice %s/pstn.csv", dir);
    CU_ASSERT_EQUAL(acbill(args), 65);
    EXPECT("SELECT status || ': ' || message FROM usage.imports WHERE"
           " file_name = 'pstn.csv'", "refused: this is a Teams PSTN usage"
           " export, not a Partner Center invoice reconciliation file (use"
           " acbill import pstn)");
    /* the other Partner Center file, both ways */
    snprintf(args, sizeof args, "import partner-invoice %s/usage-camel.csv",
             dir);
    CU_ASSERT_EQUAL(acbill(args), 65);
    snprintf(args, sizeof args, "import partner-usage %s/invoice.json.gz",
             dir);
    CU_ASSERT_EQUAL(acbill(args), 65);
    EXPECT("SELECT string_agg(file_name || ': ' || message, ' | ' ORDER BY"
           " import_id) FROM usage.imports WHERE status = 'refused' AND"
           " file_name <> 'pstn.csv'",
           "usage-camel.csv: this is a Partner Center daily rated usage"
           " file, not an invoice reconciliation file (use acbill import"
           " partner-usage) | invoice.json.gz: this is a Partner Center"
           " invoice reconciliation file, not a daily rated usage file (use"
           " acbill import partner-invoice)");
    /* an unknown header layout */
    CU_ASSERT_EQUAL(test_system("printf 'Customer,Amount\\nx,1\\n' >"
                                " %s/other.csv", dir), 0);
    snprintf(args, sizeof args, "import partner-usage %s/other.csv", dir);
    CU_ASSERT_EQUAL(acbill(args), 65);
    EXPECT("SELECT message FROM usage.imports WHERE file_name ="
           " 'other.csv'", "unknown layout: not a Partner Center daily rated"
           " usage file (no column customerId, usageDate, resourceGroup,"
           " billingPreTaxTotal, billingCurrency, in PascalCase or"
           " camelCase)");
    /* a truncated gzip blob: refused whole, nothing of it kept */
    CU_ASSERT_EQUAL(test_system("python3 -c \"import gzip,sys;"
        " d=open('%s/usage.json.gz','rb').read();"
        " open('%s/trunc.json.gz','wb').write(d[:len(d)-40])\"", dir, dir),
        0);
    snprintf(args, sizeof args, "import partner-usage %s/trunc.json.gz",
             dir);
    CU_ASSERT_EQUAL(acbill(args), 65);
    EXPECT("SELECT status || ' ' || (message LIKE '%truncated or damaged"
           " gzip%') FROM usage.imports WHERE file_name = 'trunc.json.gz'",
           "refused true");
    /* a missing file */
    snprintf(args, sizeof args, "import partner-usage %s/none.csv", dir);
    CU_ASSERT_EQUAL(acbill(args), 66);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM"
                                " usage.partner_charges"), charges);
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM"
                                " usage.partner_usage"), usage);
    /* usage: no --tenant for a file of every customer */
    CU_ASSERT_EQUAL(test_system("%s import partner-usage --tenant T1 x.csv"
                                " 2>/dev/null", test_acbill_path()), 64);
}

/* A new file with a line twice: the straight COPY meets the key twice,
 * the file is staged instead, the second copy counts as unchanged. */
static void test_line_twice(void)
{
    char args[512];
    CU_ASSERT_EQUAL(test_system("python3 -c \"import csv;"
        " r=list(csv.reader(open('%s/invoice-pascal.csv')));"
        " i=r[0].index('AlternateId'); r[1][i]='twice';"
        " w=csv.writer(open('%s/twice.csv','w'));"
        " w.writerow(r[0]); w.writerow(r[1]); w.writerow(r[1])\"", dir, dir),
        0);
    snprintf(args, sizeof args, "import partner-invoice %s/twice.csv", dir);
    CU_ASSERT_EQUAL(acbill(args), 0);
    EXPECT("SELECT rows_read || '/' || inserted || '/' || unchanged || '/'"
           " || rejected FROM usage.imports WHERE file_name = 'twice.csv'",
           "2/1/1/0");
    EXPECT("SELECT count(*) FROM usage.partner_charges WHERE fields ->>"
           " 'alternateId' = 'twice'", "1");
    /* keep the reconciliation's figures: drop the extra line again */
    CU_ASSERT_EQUAL(testdb_exec(db, "DELETE FROM usage.partner_charges"
                                " WHERE fields ->> 'alternateId' = 'twice'"),
                    0);
}

/* A hostile file: 10,000 rejects are kept, the rest counted by reason. */
static void test_reject_cap(void)
{
    char args[512];
    CU_ASSERT_EQUAL(test_system("python3 -c \"import csv,sys;"
        " r=list(csv.reader(open('%s/invoice-pascal.csv')));"
        " w=csv.writer(open('%s/many.csv','w'));"
        " w.writerow(r[0]);"
        " [w.writerow(['x' if i==1 else v for i,v in enumerate(r[1])])"
        "  for _ in range(10003)];"
        " [w.writerow([v.replace('2.50','2,50') for v in r[1]])"
        "  for _ in range(2)]\"", dir, dir), 0);
    snprintf(args, sizeof args, "import partner-invoice %s/many.csv", dir);
    CU_ASSERT_EQUAL(acbill(args), 65);
    EXPECT("SELECT rows_read || '/' || rejected || ' ' || rejects_not_kept"
           " FROM usage.imports WHERE file_name = 'many.csv'",
           "10005/10005 {\"customerId is not a GUID\": 3,"
           " \"unitPrice is not an en-US number (',' groups thousands in"
           " threes; a decimal comma?)\": 2}");
    EXPECT("SELECT count(*) || ' ' || max(line_no) FROM"
           " usage.import_rejects JOIN usage.imports USING (import_id)"
           " WHERE file_name = 'many.csv'", "10000 10001");
}

/* ----------------------------------------------------- reconciliation */

static const char T1_ROW[] =
    "T1\tContoso\t11111111-1111-1111-1111-11111111aaaa\tUSD\t2\t2\t10\t0"
    "\t5.75\t1.7345\t7.4845\t5.15\t-2.3345\t-0.453301"
    "\tSEATS_DIFFER, NEGATIVE_MARGIN\tContoso Ltd\n";

static void test_reconcile(void)
{
    char args[512], path[512];
    CU_ASSERT_EQUAL(acbill("run --period 2026-10"), 0);
    /* the ledger behind the revenue column */
    EXPECT("SELECT string_agg(tenant_id || ' ' || kind || ' ' || subtotal ||"
           " ' ' || currency, ', ' ORDER BY tenant_id) FROM"
           " billing.documents WHERE period = '2026-10-01'",
           "T1 invoice 5.15 USD");
    snprintf(args, sizeof args, "reconcile --period 2026-10 --out %s/out",
             dir);
    CU_ASSERT_EQUAL(acbill(args), 0);
    snprintf(path, sizeof path, "%s/out/2026-10/reconciliation-2026-10.xlsx",
             dir);
    char *rows = capture("/usr/bin/python3 %s/tests/xlsx_read.py rows %s"
                         " Reconciliation", test_src_dir(), path);
    /* Contoso: 2 + 1 - 1 Zone A seats charged (the credit and the
     * September renewal carry none), 10 US/CA seats against 0 counted;
     * licences 5.00 + 2.50 - 1.25 - 0.50 + 0.00 = 5.75 (Office 365 E3
     * left out), overage 1.2345 + 0.50 = 1.7345 (the VM row left out);
     * revenue 5.15; margin 5.15 - 7.4845 = -2.3345, -45.33 % */
    CU_ASSERT_PTR_NOT_NULL(strstr(rows, T1_ROW));
    CU_ASSERT_PTR_NOT_NULL(strstr(rows,
        "T2\tFabrikam\t22222222-2222-2222-2222-222222222222\tUSD\t1\t1\t0\t0"
        "\t2.3\t0.75\t3.05\t0\t-3.05\t\tCOST_WITHOUT_REVENUE,"
        " CURRENCY_DIFFERS\tFabrikam GmbH\n"));
    /* Fabrikam's EUR month totals 0: no invoice (docs/billing-rules.md 4.2, version 3),
     * no revenue and no charge in EUR, so no EUR row and no EUR total. */
    CU_ASSERT_PTR_NULL(strstr(rows, "\tEUR\t"));
    CU_ASSERT_PTR_NOT_NULL(strstr(rows,
        "(unknown)\tTailspin Toys\t99999999-9999-9999-9999-999999999999"
        "\tUSD\t3\t\t0\t\t7.5\t0.4\t7.9\t0\t-7.9\t\t"
        "PARTNER_CUSTOMER_UNKNOWN\tTailspin Toys\n"));
    /* totals per currency re-add the rows exactly */
    CU_ASSERT_PTR_NOT_NULL(strstr(rows, "Total USD\t\t\tUSD\t\t\t\t\t15.55"
                                  "\t2.8845\t18.4345\t5.15\t-13.2845\n"));
    free(rows);
    /* the cost column equals the imported lines, summed independently */
    EXPECT("SELECT sum(subtotal) FROM usage.partner_charges c JOIN"
           " ref.partner_products p USING (product_id) WHERE"
           " charge_start_date >= '2026-10-01' AND charge_start_date <"
           " '2026-11-01'", "15.55");
    EXPECT("SELECT sum(billing_pre_tax_total) FROM usage.partner_usage"
           " WHERE resource_group = 'M365' AND usage_date BETWEEN"
           " '2026-10-01' AND '2026-10-31'", "2.8845");

    char *f = capture("/usr/bin/python3 %s/tests/xlsx_read.py rows %s"
                      " Findings", test_src_dir(), path);
    CU_ASSERT_PTR_NOT_NULL(strstr(f, "SEATS_DIFFER\tT1\tUSD\tMicrosoft "
        "charged 10 US/CA seat(s) (CFQ7TTC0JXCZ) in 2026-10, acbill's US/CA "
        "pool counted 0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(f, "NEGATIVE_MARGIN\tT1\tUSD\tRevenue "
        "5.15 USD is below Microsoft's cost 7.4845 USD (licences 5.75, "
        "overage 1.7345): margin -2.3345 USD (-45.33 %)."));
    CU_ASSERT_PTR_NOT_NULL(strstr(f, "COST_WITHOUT_REVENUE\tT2\tUSD\t"
        "Microsoft charged 0.75 USD of overage usage"));
    CU_ASSERT_PTR_NOT_NULL(strstr(f, "CURRENCY_DIFFERS\tT2\tUSD\tMicrosoft "
        "bills this tenant's charges in USD (3.05 USD this period) but "
        "acbill invoices it in EUR"));
    CU_ASSERT_PTR_NOT_NULL(strstr(f, "PARTNER_CUSTOMER_UNKNOWN\tcustomer "
        "99999999-9999-9999-9999-999999999999\tUSD\tMicrosoft charged 7.90 "
        "USD for customer 99999999-9999-9999-9999-999999999999 (Tailspin "
        "Toys) in 2026-10 (licences 7.50, overage 0.40)"));
    /* exactly one Zone A SEATS_DIFFER would be wrong: Contoso's Zone A
     * seats match (2 = 2) */
    CU_ASSERT_PTR_NULL(strstr(f, "Zone A seat(s)"));
    free(f);
    CU_ASSERT_EQUAL(test_system("grep -q ' reconciliation-2026-10.xlsx$'"
                                " %s/out/2026-10/SHA256SUMS", dir), 0);
    /* no temporary file is left behind */
    CU_ASSERT_EQUAL(test_system("! ls -a %s/out/2026-10 | grep -q tmp",
                                dir), 0);
    /* printable: landscape, fit to one page wide, header row repeated */
    CU_ASSERT_EQUAL(test_system("/usr/bin/python3 %s/tests/xlsx_read.py part"
        " %s xl/worksheets/sheet1.xml | grep -q 'orientation=\"landscape\"'",
        test_src_dir(), path), 0);
    CU_ASSERT_EQUAL(test_system("/usr/bin/python3 %s/tests/xlsx_read.py part"
        " %s xl/workbook.xml | grep -q '_xlnm.Print_Titles'",
        test_src_dir(), path), 0);
    /* the same inputs give the same workbook, byte for byte */
    CU_ASSERT_EQUAL(test_system("cp %s %s/first.xlsx", path, dir), 0);
    CU_ASSERT_EQUAL(acbill(args), 0);
    CU_ASSERT_EQUAL(test_system("cmp -s %s %s/first.xlsx", path, dir), 0);
}

/* A late credit note: revenue is invoices minus credit notes. */
static void test_reconcile_credit_note(void)
{
    char args[512], path[512];
    /* a late call for Contoso: revision 2, a credit note of 5.15 and a
     * new invoice */
    CU_ASSERT_EQUAL(testdb_exec(db, "INSERT INTO usage.dialout_calls"
        " (usage_id, call_id, conference_id, tenant_id, organizer_id,"
        " destination_number, start_time, duration_seconds) VALUES"
        " ('00000000-0000-0000-0000-000000000099', 'c99', 'conf99', 'T1',"
        " 'bob', '+263771234567', '2026-10-25T09:00:00Z', 60)"), 0);
    CU_ASSERT_EQUAL(acbill("run --period 2026-10"), 0);
    EXPECT("SELECT sum(CASE WHEN kind = 'credit_note' THEN -abs(subtotal)"
           " ELSE subtotal END) FROM billing.documents WHERE tenant_id ="
           " 'T1' AND period = '2026-10-01'", "5.55");
    snprintf(args, sizeof args, "reconcile --period 2026-10 --out %s/out",
             dir);
    CU_ASSERT_EQUAL(acbill(args), 0);
    snprintf(path, sizeof path, "%s/out/2026-10/reconciliation-2026-10.xlsx",
             dir);
    char *rows = capture("/usr/bin/python3 %s/tests/xlsx_read.py rows %s"
                         " Reconciliation", test_src_dir(), path);
    CU_ASSERT_PTR_NOT_NULL(strstr(rows, "\t5.75\t1.7345\t7.4845\t5.55\t"
                                  "-1.9345\t-0.348559\t"));
    free(rows);
}

/* acbill run writes it beside the others and the summary links it. */
static void test_run_writes_it(void)
{
    char args[512], path[512];
    snprintf(args, sizeof args, "run --period 2026-10 --out %s/run", dir);
    CU_ASSERT_EQUAL(acbill(args), 0);
    CU_ASSERT_EQUAL(test_system("grep -q ' reconciliation-2026-10.xlsx$'"
                                " %s/run/2026-10/SHA256SUMS", dir), 0);
    snprintf(path, sizeof path, "%s/run/2026-10/finance-summary-2026-10.xlsx",
             dir);
    char *rows = capture("/usr/bin/python3 %s/tests/xlsx_read.py rows %s"
                         " Microsoft", test_src_dir(), path);
    CU_ASSERT_PTR_NOT_NULL(strstr(rows, "reconciliation-2026-10.xlsx"));
    free(rows);
    /* a period without Partner Center data has none */
    EXPECT("SELECT count(*) FROM usage.partner_charges WHERE"
           " charge_start_date >= '2026-11-01'", "0");
    CU_ASSERT_EQUAL(test_system("%s reconcile --period 2026-13 2>/dev/null",
                                test_acbill_path()), 64);
}

CU_ErrorCode tests_register(void)
{
    static CU_TestInfo tests[] = {
        { "normalisers: en-US numbers, dates, GUIDs", test_normalisers },
        { "both spellings, CSV and JSON lines, stored once",
          test_both_spellings_and_forms },
        { "bad lines: rejected with their reasons", test_bad_lines },
        { "refused files: wrong kind, layout, truncated gzip",
          test_refused_files },
        { "a line twice in a new file", test_line_twice },
        { "10,000 rejects kept, the rest counted", test_reject_cap },
        { "reconciliation: every figure and finding", test_reconcile },
        { "reconciliation: credit notes deducted",
          test_reconcile_credit_note },
        { "acbill run writes and links it", test_run_writes_it },
        CU_TEST_INFO_NULL
    };
    static CU_SuiteInfo suites[] = {
        { "partner center", partner_init, suite_clean, NULL, NULL, tests },
        CU_SUITE_INFO_NULL
    };
    return CU_register_suites(suites);
}
