/* reports_test.c: the Excel deliverables (reports/report.h), read back
 * with a real reader (openpyxl, via tests/xlsx_read.py).
 *
 * The ledger is tests/fixtures/spec_ledger.sql (docs/billing-rules.md 5 as the
 * core run records it) plus, below, a revision 2 of T1 with a late call
 * and provider charges, a GBP tenant whose name is a formula, and an
 * empty CHF invoice.  Expected values are built by PostgreSQL from the
 * same rows, so every comparison is workbook against ledger. */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "countries.h"
#include "report.h"
#include "xlsx_book.h"
#include "sha256.h"
#include "testdb.h"
#include "testmain.h"

static PGconn *conn;
static char conninfo[256];
static char dir[64];                /* this run's output directory */

/* ------------------------------------------------------------- helpers */

/* Run tests/xlsx_read.py with the given arguments (already quoted) and
 * return its stdout (malloc'd), or NULL when it failed. */
static char *reader(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static char *reader(const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/xlsx_read.py' %s",
             test_src_dir(), args);
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *out = malloc(cap);
    size_t got;
    while (out != NULL && (got = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 2) {
            char *bigger = realloc(out, cap * 2);
            if (bigger == NULL) {
                free(out);
                out = NULL;
                break;
            }
            out = bigger;
            cap *= 2;
        }
    }
    int st = pclose(p);
    if (out == NULL)
        return NULL;
    out[n] = '\0';
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "xlsx_read %s: failed\n", args);
        free(out);
        return NULL;
    }
    return out;
}

/* Assert got equals want; print both when not. */
#define CHECK_TEXT(got, want) check_text((got), (want), #got, __FILE__, \
                                         __LINE__)
static void check_text(const char *got, const char *want, const char *what,
                       const char *file, int line)
{
    int ok = got != NULL && want != NULL && strcmp(got, want) == 0;
    if (!ok)
        fprintf(stderr, "\n%s:%d: %s\n--- got:\n%s\n--- want:\n%s\n", file,
                line, what, got ? got : "(null)", want ? want : "(null)");
    CU_ASSERT_TRUE(ok);
}

/* Assert that haystack contains needle; print both when not. */
#define CHECK_HAS(hay, needle) check_has((hay), (needle), __FILE__, __LINE__)
static void check_has(const char *hay, const char *needle, const char *file,
                      int line)
{
    int ok = hay != NULL && needle != NULL && strstr(hay, needle) != NULL;
    if (!ok)
        fprintf(stderr, "\n%s:%d: missing:\n%s\n--- in:\n%s\n", file, line,
                needle ? needle : "(null)", hay ? hay : "(null)");
    CU_ASSERT_TRUE(ok);
}

static void out_path(char *buf, size_t len, const char *sub,
                     const char *name)
{
    snprintf(buf, len, "%s/%s", dir, sub);
    mkdir(buf, 0755);
    snprintf(buf, len, "%s/%s/%s", dir, sub, name);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Write invoice no into dir/sub/<no>.xlsx; returns the status. */
static ac_status write_invoice(const char *no, const char *sub, char *path,
                               size_t len)
{
    char name[128], err[AC_ERR_MAX] = "";
    snprintf(name, sizeof name, "%s.xlsx", no);
    out_path(path, len, sub, name);
    ac_status rc = report_invoice_workbook(conn, no, path, err);
    if (rc != AC_OK)
        fprintf(stderr, "report_invoice_workbook(%s): %s\n", no, err);
    return rc;
}

/* The Calls sheet as the ledger says it should read: header and one line
 * per rated call in seq order, formatted like xlsx_read.py. */
static const char calls_header[] =
    "Usage ID\tStart (local time)\tOrganizer\tDestination\tCountry\tKind\t"
    "Duration (s)\tMinutes\tOutcome\tPool minutes\tBilled minutes\tRate\t"
    "Connection fee\tAmount\tReason\tLine\tCall ID\tConference ID\t"
    "Organizer name\tProvider charge\tProvider currency\tProvider capability";

static char *expected_calls(const char *no)
{
    char sql[4096];
    snprintf(sql, sizeof sql,
        "SELECT coalesce(string_agg(rtrim(concat_ws(E'\\t', r.usage_id::text,"
        " to_char(r.start_local, 'YYYY-MM-DD HH24:MI:SS'),"
        " coalesce(r.organizer_id, ''), coalesce(r.destination_number, ''),"
        " coalesce(r.country, ''), coalesce(r.kind, ''),"
        " coalesce(r.duration_seconds::text, ''), r.minutes::text, r.outcome,"
        " r.pool_minutes::text, r.billed_minutes::text,"
        " coalesce(trim_scale(r.per_minute)::text, ''),"
        " coalesce(trim_scale(r.connection_fee)::text, ''),"
        " trim_scale(r.amount)::text, coalesce(r.reason, ''),"
        " coalesce(l.line_no::text, ''), coalesce(r.call_id, ''),"
        " coalesce(r.conference_id, ''), coalesce(u.display_name, ''),"
        " coalesce(trim_scale(r.provider_charge)::text, ''),"
        " coalesce(r.provider_currency, ''),"
        " coalesce(r.provider_capability, '')), E'\\t'),"
        " E'\\n' ORDER BY r.seq) || E'\\n', '')"
        " FROM billing.rated_calls r"
        " LEFT JOIN billing.invoice_lines l ON l.invoice_no = r.invoice_no"
        "  AND r.billed_minutes > 0 AND l.country = r.country"
        "  AND l.kind IS NOT DISTINCT FROM r.kind"
        "  AND l.per_minute = r.per_minute"
        "  AND l.connection_fee = r.connection_fee"
        " LEFT JOIN billing.invoices i ON i.invoice_no = r.invoice_no"
        " LEFT JOIN usage.users u ON u.tenant_id = i.tenant_id"
        "  AND billing.id_key(u.user_id) = billing.id_key(r.organizer_id)"
        " WHERE r.invoice_no = '%s'", no);
    return testdb_value(conn, sql);
}

static char *sha_of(const char *path)
{
    static char hex[4][65];
    static int next;
    char *h = hex[next++ % 4];
    if (sha256_file(path, h, NULL) != AC_OK)
        return NULL;
    return h;
}

/* ------------------------------------------------------------ fixtures */

static const char more_ledger[] =
    "BEGIN;"
    /* T1 revision 2: one late call (GB, 2 billed minutes, 0.06) and the
     * provider's charges on nine calls. */
    "INSERT INTO billing.invoices (invoice_no, tenant_id, tenant_name,"
    " period, revision, supersedes, currency, time_zone, period_start,"
    " period_end, seats, seats_basis, pool_minutes, pool_used_minutes,"
    " exempt_minutes, billed_minutes, calls, rejected_calls, zero_calls,"
    " exempt_calls, pool_calls, split_calls, billed_calls, total,"
    " fingerprint, run_id, issued_at, subtotal, tax, tax_rate, minor_unit)"
    " SELECT 'T1-2026-10-R2', tenant_id, tenant_name, period, 2, invoice_no,"
    " currency, time_zone, period_start, period_end, seats, seats_basis,"
    " pool_minutes, pool_used_minutes, exempt_minutes, billed_minutes + 2,"
    " calls + 1, rejected_calls, zero_calls, exempt_calls, pool_calls,"
    " split_calls, billed_calls + 1, 5.21, 'r2', run_id,"
    " '2026-11-02T02:00:00Z', 5.21, 0, 0, 2"
    " FROM billing.invoices WHERE invoice_no = 'T1-2026-10-R1';"
    "INSERT INTO billing.invoice_lines SELECT 'T1-2026-10-R2', line_no,"
    " country, per_minute, connection_fee,"
    " calls + (country = 'GB')::int, minutes + 2 * (country = 'GB')::int,"
    " exact_amount + 0.06 * (country = 'GB')::int,"
    " amount + 0.06 * (country = 'GB')::int, kind"
    " FROM billing.invoice_lines WHERE invoice_no = 'T1-2026-10-R1';"
    "INSERT INTO billing.rated_calls (invoice_no, seq, usage_id, start_time,"
    " start_local, organizer_id, destination_number, duration_seconds,"
    " outcome, reason, country, kind, minutes, pool_minutes, billed_minutes,"
    " per_minute, connection_fee, amount, dest_prefix, rate_prefix,"
    " provider_charge, provider_currency)"
    " SELECT 'T1-2026-10-R2', CASE WHEN seq = 17 THEN 18 ELSE seq END,"
    " usage_id, start_time, start_local, organizer_id, destination_number,"
    " duration_seconds, outcome, reason, country, kind, minutes,"
    " pool_minutes, billed_minutes, per_minute, connection_fee, amount,"
    " dest_prefix, rate_prefix,"
    " CASE seq WHEN 1 THEN 1.2 WHEN 2 THEN 0.62 WHEN 4 THEN 2.55"
    "  WHEN 5 THEN 0.04 WHEN 6 THEN 0.10 WHEN 7 THEN 3.15 WHEN 8 THEN 0.035"
    "  WHEN 11 THEN 2.50 WHEN 12 THEN 0.38 END,"
    " CASE WHEN seq = 12 THEN 'EUR'"
    "  WHEN seq IN (1, 2, 4, 5, 6, 7, 8, 11) THEN 'USD' END"
    " FROM billing.rated_calls WHERE invoice_no = 'T1-2026-10-R1';"
    "INSERT INTO billing.rated_calls (invoice_no, seq, usage_id, start_time,"
    " start_local, organizer_id, destination_number, duration_seconds,"
    " outcome, country, kind, minutes, pool_minutes, billed_minutes,"
    " per_minute, connection_fee, amount, dest_prefix, rate_prefix)"
    " VALUES ('T1-2026-10-R2', 17, '00000000-0000-0000-0000-000000000018',"
    " '2026-10-25T09:00:00Z', '2026-10-25 09:00:00', 'bob',"
    " '+441632960001', 120, 'billed', 'GB', 'geographic', 2, 0, 2, 0.03, 0,"
    " 0.06, '44', '44');"
    "INSERT INTO billing.findings SELECT 'T1-2026-10-R2', seq, code,"
    " subject, detail, usage_id FROM billing.findings"
    " WHERE invoice_no = 'T1-2026-10-R1';"
    "INSERT INTO billing.findings (invoice_no, seq, code, subject, detail)"
    " VALUES ('T1-2026-10-R2', 9, 'FAIR_USE_REVIEW', 'alice',"
    " 'test data: alice flagged for fair-use review');"
    /* A GBP tenant whose texts look like formulas. */
    "INSERT INTO billing.invoices (invoice_no, tenant_id, tenant_name,"
    " period, revision, currency, time_zone, period_start, period_end,"
    " seats, seats_basis, pool_minutes, pool_used_minutes, exempt_minutes,"
    " billed_minutes, calls, rejected_calls, zero_calls, exempt_calls,"
    " pool_calls, split_calls, billed_calls, total, fingerprint, issued_at,"
    " subtotal, tax, tax_rate, minor_unit)"
    " VALUES ('TX-2026-10-R1', 'TX', '=HYPERLINK(\"http://x\")',"
    " '2026-10-01', 1, 'GBP', 'Europe/London', '2026-09-30T23:00:00Z',"
    " '2026-11-01T00:00:00Z', 0, 'purchased', 0, 0, 0, 1, 1, 0, 0, 0, 0, 0,"
    " 1, 0.03, 'tx', '2026-11-01T02:00:00Z', 0.03, 0, 0, 2);"
    "INSERT INTO billing.invoice_lines VALUES ('TX-2026-10-R1', 1, 'GB',"
    " 0.03, 0, 1, 1, 0.03, 0.03);"
    "INSERT INTO billing.rated_calls (invoice_no, seq, usage_id, start_time,"
    " start_local, organizer_id, destination_number, duration_seconds,"
    " outcome, country, kind, minutes, pool_minutes, billed_minutes,"
    " per_minute, connection_fee, amount)"
    " VALUES ('TX-2026-10-R1', 1, '00000000-0000-0000-0000-000000000901',"
    " '2026-10-10T12:00:00Z', '2026-10-10 13:00:00', '=1+1', '@SUM(A1)',"
    " 30, 'billed', 'GB', 'geographic', 1, 0, 1, 0.03, 0, 0.03);"
    "INSERT INTO billing.findings (invoice_no, seq, code, subject, detail)"
    " VALUES ('TX-2026-10-R1', 1, 'TEST', '=cmd|'' /C calc''!A0',"
    " '+SUM(1,2)');"
    /* A CHF invoice without calls. */
    "INSERT INTO billing.invoices (invoice_no, tenant_id, tenant_name,"
    " period, revision, currency, time_zone, period_start, period_end,"
    " seats, seats_basis, pool_minutes, pool_used_minutes, exempt_minutes,"
    " billed_minutes, calls, rejected_calls, zero_calls, exempt_calls,"
    " pool_calls, split_calls, billed_calls, total, fingerprint, issued_at,"
    " subtotal, tax, tax_rate, minor_unit)"
    " VALUES ('TC-2026-10-R1', 'TC', 'Chocolatier', '2026-10-01', 1, 'CHF',"
    " 'Europe/Zurich', '2026-09-30T22:00:00Z', '2026-10-31T23:00:00Z', 0,"
    " 'purchased', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.00, 'tc',"
    " '2026-11-01T02:00:00Z', 0.00, 0, 0, 2);"
    /* The organizers of every invoice, as the rating records them: the
     * the worked example's add-on holders are alice and dave. */
    "INSERT INTO billing.invoice_organizers SELECT r.invoice_no,"
    " r.organizer_id, count(*), count(*) FILTER (WHERE outcome = 'rejected'),"
    " coalesce(sum(minutes) FILTER (WHERE outcome <> 'rejected'), 0),"
    " coalesce(sum(minutes) FILTER (WHERE outcome = 'exempt'), 0),"
    " sum(pool_minutes), sum(billed_minutes), sum(amount),"
    " coalesce(r.organizer_id IN ('alice', 'dave'), false),"
    " EXISTS (SELECT 1 FROM billing.findings f WHERE f.invoice_no ="
    "  r.invoice_no AND f.code = 'FAIR_USE_REVIEW'"
    "  AND f.subject = r.organizer_id)"
    " FROM billing.rated_calls r GROUP BY r.invoice_no, r.organizer_id;"
    /* Every invoice's reconciliation with the provider, as bill.c
     * records it when the invoice is issued. */
    "INSERT INTO billing.invoice_reconciliation SELECT i.invoice_no,"
    " count(r.provider_charge), count(*) FILTER (WHERE r.provider_charge"
    "  IS NOT NULL AND r.provider_currency = i.currency),"
    " coalesce(sum(r.provider_charge) FILTER (WHERE r.provider_currency"
    "  = i.currency), 0),"
    " coalesce(sum(r.amount) FILTER (WHERE r.provider_charge IS NOT NULL"
    "  AND r.provider_currency = i.currency), 0),"
    " count(*) FILTER (WHERE r.provider_currency = i.currency"
    "  AND abs(r.provider_charge - r.amount) >= 0.01)"
    " FROM billing.invoices i LEFT JOIN billing.rated_calls r"
    "  ON r.invoice_no = i.invoice_no GROUP BY i.invoice_no;"
    "COMMIT;";

static int suite_init(void)
{
    snprintf(dir, sizeof dir, "/tmp/acbill-reports-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    conn = testdb_fresh("acbill_reports", conninfo, sizeof conninfo);
    if (conn == NULL)
        return -1;
    if (testdb_load(conninfo, "spec_example.sql") != 0 ||
        testdb_load(conninfo, "spec_ledger.sql") != 0 ||
        testdb_exec(conn, more_ledger) != 0 ||
        testdb_load(conninfo, "documents_ledger.sql") != 0)
        return -1;
    return 0;
}

static int suite_clean(void)
{
    report_set_calls_sheet_limit(0);
    if (conn != NULL)
        PQfinish(conn);
    conn = NULL;
    if (dir[0] != '\0' && getenv("ACBILL_KEEP_TEST_FILES") == NULL)
        test_system("rm -rf '%s'", dir);
    return 0;
}

/* ------------------------------------------------------------- fixture */

/* The fixture itself holds docs/billing-rules.md 5 (a wrong fixture would make
 * every workbook test vacuous). */
static void test_fixture_is_the_spec_example(void)
{
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM "
        "billing.rated_calls WHERE invoice_no = 'T1-2026-10-R1'"), 17);
    char *v = testdb_value(conn, "SELECT total::text || ' ' || seats || ' '"
        " || pool_minutes || ' ' || pool_used_minutes || ' ' ||"
        " exempt_minutes || ' ' || billed_minutes || ' ' || calls || ' ' ||"
        " rejected_calls FROM billing.invoices"
        " WHERE invoice_no = 'T1-2026-10-R1'");
    CHECK_TEXT(v, "5.15 2 120 120 61 20 17 5");
    free(v);
    v = testdb_value(conn, "SELECT string_agg(country || ' ' || per_minute"
        " || ' ' || amount, ', ' ORDER BY line_no) FROM billing.invoice_lines"
        " WHERE invoice_no = 'T1-2026-10-R1'");
    CHECK_TEXT(v, "FR 0.0350 0.11, GB 0.0300 0.03, JM 0.2500 2.55, "
               "PR 0.0200 0.02, US 0.0200 0.04, US 1.0000 2.00, "
               "ZW 0.4000 0.40");
    free(v);
    v = testdb_value(conn, "SELECT string_agg(outcome || ':' || pool_minutes"
        " || ':' || billed_minutes || ':' || amount, ' ' ORDER BY seq)"
        " FROM billing.rated_calls WHERE invoice_no = 'T1-2026-10-R1'");
    CHECK_TEXT(v, "exempt:0:0:0.0000 pool:31:0:0.0000 pool:2:0:0.0000 "
               "billed:0:10:2.5500 billed:0:2:0.0400 rejected:0:0:0.0000 "
               "split:87:3:0.1050 billed:0:1:0.0300 billed:0:1:0.0200 "
               "rejected:0:0:0.0000 billed:0:2:2.0000 billed:0:1:0.4000 "
               "rejected:0:0:0.0000 rejected:0:0:0.0000 "
               "rejected:0:0:0.0000 zero:0:0:0.0000 exempt:0:0:0.0000");
    free(v);
    v = testdb_value(conn, "SELECT string_agg(code || '/' || subject, ' '"
        " ORDER BY seq) FROM billing.findings"
        " WHERE invoice_no = 'T1-2026-10-R1' AND usage_id IS NULL");
    CHECK_TEXT(v, "LICENSE_OVER_ASSIGNED/DIALOUT_USCA "
               "LICENSE_OVER_ASSIGNED/MCOMEETADD "
               "ADDON_WITHOUT_PREREQUISITE/dave");
    free(v);
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM billing.findings"
        " f JOIN billing.rated_calls r USING (invoice_no, usage_id)"
        " WHERE invoice_no = 'T1-2026-10-R1' AND r.outcome = 'rejected'"
        " AND f.code = r.reason"), 5);
}

/* ------------------------------------------------------ invoice workbook */

static void test_invoice_sheets_and_calls(void)
{
    char path[512];
    CU_ASSERT_EQUAL_FATAL(write_invoice("T1-2026-10-R1", "a", path,
                                        sizeof path), AC_OK);
    char *sheets = reader("sheets '%s'", path);
    CHECK_TEXT(sheets, "Summary\nCalls\nOrganizers\nFindings\n"
               "Reconciliation\n");
    free(sheets);

    char *got = reader("rows '%s' Calls", path);
    char *rows = expected_calls("T1-2026-10-R1");
    char want[16384];
    snprintf(want, sizeof want, "%s\n%s", calls_header, rows ? rows : "?");
    CHECK_TEXT(got, want);
    /* Spot checks against the worked example's table itself, not only the ledger. */
    CHECK_HAS(got, "00000000-0000-0000-0000-000000000007\t"
              "2026-10-06 09:00:00\tbob\t+33142685300\tFR\tgeographic\t5400\t"
              "90\tsplit\t87\t3\t0.035\t0\t0.105\t\t1\t\t\tBob Bauer\n");
    CHECK_HAS(got, "\t-5\t0\trejected\t0\t0\t\t\t0\tINVALID_DURATION\t\t\t\t"
              "Bob Bauer\n");
    free(got);
    free(rows);

    /* Numbers are numbers, money is in dollars, starts are dates. */
    char *cell = reader("cell '%s' Calls N5", path);
    CHECK_TEXT(cell, "n\t[$$-409]#,##0.0000\t2.55\n");
    free(cell);
    cell = reader("cell '%s' Calls B2", path);
    CHECK_TEXT(cell, "d\tyyyy-mm-dd hh:mm:ss\t2026-10-01 09:00:00\n");
    free(cell);
    cell = reader("cell '%s' Calls G16", path);
    CHECK_TEXT(cell, "n\t#,##0\t-5\n");
    free(cell);
    char *view = reader("view '%s' Calls", path);
    CHECK_TEXT(view, "freeze\tA2\nfilter\tA1:V18\n");
    free(view);
    view = reader("view '%s' Findings", path);
    CHECK_TEXT(view, "freeze\tA2\nfilter\tA1:E9\n");
    free(view);

    char *props = reader("props '%s'", path);
    CHECK_HAS(props, "title\tInvoice INV-2026-000001, Contoso\n");
    CHECK_HAS(props, "creator\tacbill\n");
    /* Created: the invoice document's issue date. */
    /* Created: the invoice's recorded issue time (docs/billing-rules.md 4.3). */
    CHECK_HAS(props, "created\t2026-11-01 02:00:00\n");
    free(props);
}

static void test_invoice_summary(void)
{
    static const struct { const char *label, *value; } want[] = {
        { "Tenant", "Contoso" }, { "Period", "2026-10" },
        { "Statement number", "T1-2026-10-R1" }, { "Revision", "1" },
        { "Document type", "Invoice" },
        { "Document number", "INV-2026-000001" },
        { "Issue date", "2026-11-01 00:00:00" },
        { "Due date", "2026-12-01 00:00:00" },
        { "Supersedes", "(none: first revision)" }, { "Currency", "USD" },
        { "Seats", "2" }, { "Pool minutes", "120" },
        { "Pool used (minutes)", "120" }, { "Pool remaining (minutes)", "0" },
        { "Exempt minutes (US/CA add-on)", "61" }, { "Billed minutes", "20" },
        { "Calls", "17" }, { "Rejected calls", "5" }, { "Total due", "5.15" },
    };
    char path[512];
    CU_ASSERT_EQUAL_FATAL(write_invoice("T1-2026-10-R1", "b", path,
                                        sizeof path), AC_OK);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char *v = reader("find '%s' Summary '%s'", path, want[i].label);
        char w[128];
        snprintf(w, sizeof w, "%s\n", want[i].value);
        CHECK_TEXT(v, w);
        free(v);
    }
    char *fmt = reader("label '%s' Summary 'Total due'", path);
    CHECK_TEXT(fmt, "n\t[$$-409]#,##0.00\t5.15\n");
    free(fmt);

    /* The invoice lines, as the ledger has them, then the totals. */
    char *summary = reader("rows '%s' Summary", path);
    char *lines = testdb_value(conn,
        "SELECT string_agg(concat_ws(E'\\t', country, kind,"
        " trim_scale(per_minute), trim_scale(connection_fee), calls,"
        " minutes, trim_scale(exact_amount), trim_scale(amount), line_no),"
        " E'\\n' ORDER BY line_no) FROM billing.invoice_lines"
        " WHERE invoice_no = 'T1-2026-10-R1'");
    char block[4096];
    snprintf(block, sizeof block, "Country\tCode\tKind\tRate per minute\t"
             "Connection fee\tCalls\tMinutes\tExact amount\tAmount\tLine\n");
    CHECK_HAS(summary, block);
    /* Each line with its country's name, in the ledger's order. */
    static const char *const names[] = {
        "France\t", "United Kingdom\t", "Jamaica\t", "Puerto Rico\t",
        "United States\t", "United States\t", "Zimbabwe\t"
    };
    const char *at = strstr(summary ? summary : "", block);
    char *row = lines ? lines : "";
    for (int i = 0; i < 7 && at != NULL; i++) {
        at = strchr(at, '\n') + 1;
        char *end = strchr(row, '\n');
        char want_row[256];
        snprintf(want_row, sizeof want_row, "%s%.*s\n", names[i],
                 end ? (int)(end - row) : (int)strlen(row), row);
        CU_ASSERT_TRUE(strncmp(at, want_row, strlen(want_row)) == 0);
        if (strncmp(at, want_row, strlen(want_row)) != 0)
            fprintf(stderr, "line %d: want %s", i + 1, want_row);
        row = end ? end + 1 : row;
    }
    CHECK_HAS(summary, "\nSubtotal\t\t\t\t\t7\t20\t5.145\t5.15\n"
             "Rounding (each line to the currency's minor unit, half-up)"
             "\t\t\t\t\t\t\t\t0.005\n"
             "Tax (0 %)\t\t\t\t\t\t\t\t0\n"
             "Total due\t\t\t\t\t\t\t\t5.15\n");
    CHECK_HAS(summary, "\nJamaica\tJM\tgeographic\t0.25\t0.05\t1\t10\t2.55\t"
              "2.55\t3\n");
    CHECK_HAS(summary, "\nFrance\tFR\tgeographic\t0.035\t0\t1\t3\t0.105\t"
              "0.11\t1\n");
    free(lines);

    /* Calls by outcome: the control totals of rated_calls. */
    char *outcomes = testdb_value(conn,
        "SELECT string_agg(line, E'\\n' ORDER BY n) FROM"
        " (SELECT n, concat_ws(E'\\t', o, count(r.outcome),"
        "   coalesce(sum(r.minutes), 0), coalesce(sum(r.pool_minutes), 0),"
        "   coalesce(sum(r.billed_minutes), 0), '', '',"
        "   trim_scale(coalesce(sum(r.amount), 0))) AS line"
        "  FROM unnest(ARRAY['rejected','zero','exempt','pool','split',"
        "   'billed']) WITH ORDINALITY AS x(o, n)"
        "  LEFT JOIN billing.rated_calls r"
        "   ON r.invoice_no = 'T1-2026-10-R1' AND r.outcome = x.o"
        "  GROUP BY o, n) s");
    snprintf(block, sizeof block, "Outcome\tCalls\tMinutes\tPool minutes\t"
             "Billed minutes\t\t\tAmount\n%s\nAll calls\t17\t208\t120\t20\t"
             "\t\t5.145\n", outcomes ? outcomes : "?");
    CHECK_HAS(summary, block);
    CHECK_HAS(summary, "\nrejected\t5\t");
    CHECK_HAS(summary, "\nsplit\t1\t90\t87\t3\t\t\t0.105\n");
    CHECK_HAS(summary, "\nUsed\t120\nRemaining\t0\n");
    free(outcomes);
    free(summary);

    char *orgs = reader("rows '%s' Organizers", path);
    CHECK_HAS(orgs, "\nalice\tAlice Andersen\talice@contoso.example\t4\t0\t64\t"
              "61\t2\t1\t0.02\tyes\tno\n");
    CHECK_HAS(orgs, "\ndave\t\t\t1\t1\t0\t0\t0\t0\t0\tyes\tno\n");
    CHECK_HAS(orgs, "\nbob\tBob Bauer\tbob@contoso.example\t9\t3\t134\t0\t"
              "118\t16\t4.685\tno\tno\n");
    CHECK_HAS(orgs, "\ncarol\tCarol Chen\t\t1\t0\t2\t");
    free(orgs);
}

static void test_invoice_findings(void)
{
    char path[512];
    CU_ASSERT_EQUAL_FATAL(write_invoice("T1-2026-10-R1", "c", path,
                                        sizeof path), AC_OK);
    char *got = reader("rows '%s' Findings", path);
    char *rows = testdb_value(conn,
        "SELECT string_agg(rtrim(concat_ws(E'\\t', seq, code, subject,"
        " detail, coalesce(usage_id::text, '')), E'\\t'), E'\\n'"
        " ORDER BY seq) FROM billing.findings"
        " WHERE invoice_no = 'T1-2026-10-R1'");
    char want[8192];
    snprintf(want, sizeof want, "#\tCode\tSubject\tDetail\tUsage ID\n%s\n",
             rows ? rows : "?");
    CHECK_TEXT(got, want);
    CHECK_HAS(got, "\tADDON_WITHOUT_PREREQUISITE\tdave\t");
    CHECK_HAS(got, "\tLICENSE_OVER_ASSIGNED\tMCOMEETADD\t");
    CHECK_HAS(got, "\tLICENSE_OVER_ASSIGNED\tDIALOUT_USCA\t");
    free(got);
    free(rows);
    /* The detail wraps in a column of 60 characters, its row as tall as
     * it needs (not clipped): the longest detail here is 2 to 4 lines. */
    char *x = reader("part '%s' xl/worksheets/sheet4.xml", path);
    CHECK_HAS(x, "<col min=\"4\" max=\"4\" width=\"62.7109375\" "
              "customWidth=\"1\"/>");
    CU_ASSERT_PTR_NOT_NULL(strstr(x ? x : "", " customHeight=\"1\""));
    free(x);
    char *cell = reader("cell '%s' Findings D2", path);
    CU_ASSERT_PTR_NOT_NULL(cell);
    free(cell);
    x = reader("part '%s' xl/styles.xml", path);
    CHECK_HAS(x, "<alignment vertical=\"top\" wrapText=\"1\"/>");
    free(x);
}

/* Calls past the sheet limit continue on Calls (2), ... with the header
 * repeated, no call lost and the order kept. */
static void check_split(unsigned limit, const char *want_sheets,
                        const unsigned *sizes, int nsheets)
{
    char path[512], sub[32], args[512];
    size_t n = 0;

    snprintf(sub, sizeof sub, "limit%u", limit);
    report_set_calls_sheet_limit(limit);
    ac_status rc = write_invoice("T1-2026-10-R1", sub, path, sizeof path);
    report_set_calls_sheet_limit(0);
    CU_ASSERT_EQUAL_FATAL(rc, AC_OK);

    char *sheets = reader("sheets '%s'", path);
    CHECK_TEXT(sheets, want_sheets);
    free(sheets);

    n += (size_t)snprintf(args + n, sizeof args - n, "rows '%s'", path);
    for (int i = 0; i < nsheets; i++) {
        if (i == 0)
            n += (size_t)snprintf(args + n, sizeof args - n, " Calls");
        else
            n += (size_t)snprintf(args + n, sizeof args - n,
                                  " 'Calls (%d)'", i + 1);
    }
    char *got = reader("%s", args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);

    /* Take the headers out, checking where they are. */
    char *data = calloc(strlen(got) + 1, 1), *line = got, *next;
    int in_sheet = -1, sheet = -1, ok_layout = 1;
    for (; *line != '\0'; line = next + 1) {
        next = strchr(line, '\n');
        if (next == NULL)
            break;
        *next = '\0';
        if (strcmp(line, calls_header) == 0) {
            if (sheet >= 0 && (unsigned)in_sheet != sizes[sheet])
                ok_layout = 0;
            sheet++;
            in_sheet = 0;
            continue;
        }
        in_sheet++;
        strcat(data, line);
        strcat(data, "\n");
    }
    if (sheet != nsheets - 1 || (unsigned)in_sheet != sizes[sheet])
        ok_layout = 0;
    if (!ok_layout)
        fprintf(stderr, "limit %u: sheets or rows per sheet differ\n", limit);
    CU_ASSERT_TRUE(ok_layout);
    char *want = expected_calls("T1-2026-10-R1");
    CHECK_TEXT(data, want);
    free(want);
    free(data);
    free(got);

    if (nsheets > 1) {
        char w[64];
        char *view = reader("view '%s' 'Calls (%d)'", path, nsheets);
        snprintf(w, sizeof w, "freeze\tA2\nfilter\tA1:V%u\n",
                 sizes[nsheets - 1] + 1);
        CHECK_TEXT(view, w);
        free(view);
    }
}

static void test_calls_continuation(void)
{
    static const unsigned five[] = { 5, 5, 5, 2 };
    check_split(5, "Summary\nCalls\nCalls (2)\nCalls (3)\nCalls (4)\n"
                "Organizers\nFindings\nReconciliation\n", five, 4);
    /* Exactly at the limit: no empty continuation sheet. */
    static const unsigned all[] = { 17 };
    check_split(17, "Summary\nCalls\nOrganizers\nFindings\n"
                "Reconciliation\n", all, 1);
    /* One over: the last call alone on Calls (2). */
    static const unsigned one_over[] = { 16, 1 };
    check_split(16, "Summary\nCalls\nCalls (2)\nOrganizers\nFindings\n"
                "Reconciliation\n", one_over, 2);
}

static void test_deterministic(void)
{
    char p1[512], p2[512], p3[512], err[AC_ERR_MAX];

    CU_ASSERT_EQUAL_FATAL(write_invoice("T1-2026-10-R2", "det1", p1,
                                        sizeof p1), AC_OK);
    sleep(1);       /* a different second: the clock must not leak in */
    /* Nor the session's time zone or date style. */
    testdb_exec(conn, "SET TIME ZONE 'Pacific/Kiritimati';"
                      " SET DateStyle = 'SQL, DMY'");
    ac_status rc = write_invoice("T1-2026-10-R2", "det2", p2, sizeof p2);
    testdb_exec(conn, "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'");
    CU_ASSERT_EQUAL_FATAL(rc, AC_OK);
    char *h1 = sha_of(p1), *h2 = sha_of(p2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h2);
    CHECK_TEXT(h1, h2);
    /* A different invoice is a different file (the check can fail). */
    CU_ASSERT_EQUAL_FATAL(write_invoice("T1-2026-10-R1", "det1", p3,
                                        sizeof p3), AC_OK);
    char *h3 = sha_of(p3);
    CU_ASSERT_TRUE(h3 != NULL && strcmp(h1, h3) != 0);

    out_path(p1, sizeof p1, "det1", "finance-summary-2026-10.xlsx");
    out_path(p2, sizeof p2, "det2", "finance-summary-2026-10.xlsx");
    CU_ASSERT_EQUAL(report_finance_summary(conn, "2026-10", p1, err), AC_OK);
    sleep(1);
    CU_ASSERT_EQUAL(report_finance_summary(conn, "2026-10", p2, err), AC_OK);
    h1 = sha_of(p1);
    h2 = sha_of(p2);
    CU_ASSERT_TRUE(h1 != NULL && h2 != NULL && strcmp(h1, h2) == 0);
}

/* The deflate option bits (general purpose flag bits 1-2) of every member
 * of the zip at path, OR-ed together in *or_bits and AND-ed in *and_bits;
 * the number of deflated members, or -1 when the file cannot be read.
 * APPNOTE 4.4.4: for method 8, bits 1-2 are 0 for normal (levels 3-7),
 * 1 for maximum (8, 9), 2 for fast (2) and 3 for super fast (1). */
static int deflate_bits(const char *path, unsigned *or_bits,
                        unsigned *and_bits)
{
    FILE *f = fopen(path, "rb");
    unsigned char h[30];
    int n = 0;

    if (f == NULL)
        return -1;
    *or_bits = 0;
    *and_bits = 3;
    while (fread(h, 1, sizeof h, f) == sizeof h && h[0] == 'P' &&
           h[1] == 'K' && h[2] == 3 && h[3] == 4) {
        unsigned flags = h[6] | (unsigned)h[7] << 8;
        unsigned method = h[8] | (unsigned)h[9] << 8;
        long size = (long)(h[18] | (unsigned long)h[19] << 8 |
                           (unsigned long)h[20] << 16 |
                           (unsigned long)h[21] << 24);
        long skip = (h[26] | h[27] << 8) + (h[28] | h[29] << 8) + size;
        if (method == 8) {
            *or_bits |= (flags >> 1) & 3;
            *and_bits &= (flags >> 1) & 3;
            n++;
        }
        /* libxlsxwriter's members carry their sizes in the local header
         * (no data descriptor), so the next header follows directly. */
        if ((flags & 8) != 0 || fseek(f, skip, SEEK_CUR) != 0)
            break;
    }
    fclose(f);
    return n;
}

static void test_deflate_level(void)
{
    char fast[512], dflt[512];
    unsigned o, a;
    struct stat s1, s6;

    /* acbill's level: 1, "super fast", on every member. */
    CU_ASSERT_EQUAL(report_deflate_level(), 1);
    CU_ASSERT_EQUAL_FATAL(write_invoice("T1-2026-10-R1", "deflate1", fast,
                                        sizeof fast), AC_OK);
    CU_ASSERT_TRUE(deflate_bits(fast, &o, &a) > 10);
    CU_ASSERT_EQUAL(o, 3);
    CU_ASSERT_EQUAL(a, 3);
    /* zlib's default, 6: "normal"; the same workbook, only smaller. */
    report_set_deflate_level(6);
    ac_status rc = write_invoice("T1-2026-10-R1", "deflate6", dflt,
                                 sizeof dflt);
    report_set_deflate_level(0);            /* back to the default */
    CU_ASSERT_EQUAL_FATAL(rc, AC_OK);
    CU_ASSERT_EQUAL(report_deflate_level(), 1);
    CU_ASSERT_TRUE(deflate_bits(dflt, &o, &a) > 10);
    CU_ASSERT_EQUAL(o, 0);
    CU_ASSERT_TRUE(stat(fast, &s1) == 0 && stat(dflt, &s6) == 0 &&
                   s6.st_size < s1.st_size);
    const char *sheets[] = { "Summary", "Calls", "Reconciliation" };
    for (int i = 0; i < 3; i++) {
        char *x1 = reader("rows '%s' '%s'", fast, sheets[i]);
        char *x6 = reader("rows '%s' '%s'", dflt, sheets[i]);
        CU_ASSERT_TRUE(x1 != NULL && x6 != NULL && strlen(x1) > 100 &&
                       strcmp(x1, x6) == 0);
        free(x1);
        free(x6);
    }
}

/* The number of entries in directory path other than . and .., or -1. */
static int entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* xb_tmpfile(), where libxlsxwriter gets its temporary files: it reads,
 * writes and seeks like a file, in memory or moved to an unlinked file. */
static void check_tmpfile(size_t limit, int moves)
{
    char tdir[512];
    unsigned long o0, s0, o1, s1;
    static char big[200000], back[200000];

    out_path(tdir, sizeof tdir, "tmpfile", "");
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + (i * 7919) % 26);
    xb_tmp_set_limit(limit);
    xb_tmp_stats(&o0, &s0);
    FILE *f = xb_tmpfile(tdir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    /* Two writes with a flush between: the second one reaches the stream
     * with the first already held, so the move carries content. */
    CU_ASSERT_EQUAL(fwrite(big, 1, 1000, f), 1000);
    CU_ASSERT_EQUAL(fflush(f), 0);
    CU_ASSERT_EQUAL(fwrite(big + 1000, 1, sizeof big - 1000, f),
                    sizeof big - 1000);
    CU_ASSERT_EQUAL(fprintf(f, "%s", "tail"), 4);
    CU_ASSERT_EQUAL(entries(tdir), 0);      /* never a name left behind */
    CU_ASSERT_EQUAL(fseek(f, 0, SEEK_END), 0);
    CU_ASSERT_EQUAL(ftell(f), (long)sizeof big + 4);
    rewind(f);
    CU_ASSERT_EQUAL(fread(back, 1, sizeof back, f), sizeof back);
    CU_ASSERT_EQUAL(memcmp(back, big, sizeof big), 0);
    char tail[8] = "";
    CU_ASSERT_EQUAL(fread(tail, 1, sizeof tail, f), 4);
    CU_ASSERT_TRUE(feof(f));
    CU_ASSERT_EQUAL(memcmp(tail, "tail", 4), 0);
    /* Overwrite in the middle, read it back from there. */
    CU_ASSERT_EQUAL(fseek(f, 5000, SEEK_SET), 0);
    CU_ASSERT_TRUE(fputs("XYZ", f) >= 0);
    CU_ASSERT_EQUAL(fseek(f, -3, SEEK_CUR), 0);
    CU_ASSERT_EQUAL(fread(tail, 1, 3, f), 3);
    CU_ASSERT_EQUAL(memcmp(tail, "XYZ", 3), 0);
    CU_ASSERT_EQUAL(fseek(f, -1, SEEK_SET), -1);
    CU_ASSERT_EQUAL(fclose(f), 0);
    xb_tmp_stats(&o1, &s1);
    CU_ASSERT_EQUAL(o1 - o0, 1);
    CU_ASSERT_EQUAL(s1 - s0, (unsigned long)moves);
    CU_ASSERT_EQUAL(entries(tdir), 0);
    xb_tmp_set_limit(0);
}

static void test_temporary_files(void)
{
    char p1[512], p2[512];
    unsigned long o0, s0, o1, s1, o2, s2;

    check_tmpfile(0, 0);            /* 200 KB: held in memory */
    check_tmpfile(4096, 1);         /* moved to a file after 1000 bytes */

    /* A workbook's parts all come here, and none needs a file. */
    xb_tmp_stats(&o0, &s0);
    CU_ASSERT_EQUAL_FATAL(write_invoice("T1-2026-10-R1", "tmpmem", p1,
                                        sizeof p1), AC_OK);
    xb_tmp_stats(&o1, &s1);
    CU_ASSERT_TRUE(o1 - o0 > 10);
    CU_ASSERT_EQUAL(s1, s0);
    /* Every part moved to a file: the same bytes. */
    xb_tmp_set_limit(1);
    ac_status rc = write_invoice("T1-2026-10-R1", "tmpfile", p2, sizeof p2);
    xb_tmp_set_limit(0);
    CU_ASSERT_EQUAL_FATAL(rc, AC_OK);
    xb_tmp_stats(&o2, &s2);
    CU_ASSERT_EQUAL(s2 - s1, o2 - o1);
    CU_ASSERT_EQUAL(o2 - o1, o1 - o0);
    char *h1 = sha_of(p1), *h2 = sha_of(p2);
    CU_ASSERT_TRUE(h1 != NULL && h2 != NULL && strcmp(h1, h2) == 0);
    out_path(p2, sizeof p2, "tmpfile", "");
    CU_ASSERT_EQUAL(entries(p2), 1);        /* the workbook alone */
}

/* Write a one-sheet workbook to out with every temporary file moved to
 * tdir at once; with gone, tdir is removed after the workbook is opened
 * (so moving fails).  Returns xb_close()'s status, err its message. */
static ac_status tmp_book(const char *tdir, const char *out, int gone,
                          char *err)
{
    xb_book b;
    xb_sheet s;
    xb_props p = { .title = "t", .tmpdir = tdir };
    ac_status rc = xb_open(&b, out, &p, err);
    if (rc == AC_OK)
        rc = xb_sheet_add(&b, &s, "Calls", err);
    if (rc != AC_OK)
        return rc;
    if (gone)
        CU_ASSERT_EQUAL(rmdir(tdir), 0);
    xb_tmp_set_limit(1);
    for (int i = 0; i < 100; i++) {
        xb_str(&s, 0, "x", NULL);
        xb_next(&s);
    }
    rc = xb_close(&b, 0, err);
    xb_tmp_set_limit(0);
    return rc;
}

/* libxlsxwriter does not check its writes to temporary files: a workbook
 * during which one failed is refused, not written truncated. */
static void test_temporary_file_failure(void)
{
    char tdir[512], out[512], err[AC_ERR_MAX] = "";

    out_path(tdir, sizeof tdir, "tmpkept", "");
    out_path(out, sizeof out, "tmpout", "kept.xlsx");
    CU_ASSERT_EQUAL(tmp_book(tdir, out, 0, err), AC_OK);
    CU_ASSERT_TRUE(exists(out));

    out_path(tdir, sizeof tdir, "tmpgone", "");
    out_path(out, sizeof out, "tmpout", "gone.xlsx");
    CU_ASSERT_EQUAL(tmp_book(tdir, out, 1, err), AC_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "temporary file"));
    CU_ASSERT_FALSE(exists(out));
}

static void test_tenant_text_is_never_a_formula(void)
{
    char path[512];
    CU_ASSERT_EQUAL_FATAL(write_invoice("TX-2026-10-R1", "x", path,
                                        sizeof path), AC_OK);
    char *cell = reader("label '%s' Summary Tenant", path);
    CHECK_TEXT(cell, "s\tGeneral\t=HYPERLINK(\"http://x\")\n");
    free(cell);
    cell = reader("cell '%s' Calls C2", path);          /* organizer */
    CHECK_TEXT(cell, "s\tGeneral\t=1+1\n");
    free(cell);
    cell = reader("cell '%s' Calls D2", path);          /* destination */
    CHECK_TEXT(cell, "s\tGeneral\t@SUM(A1)\n");
    free(cell);
    cell = reader("cell '%s' Findings C2", path);
    CHECK_TEXT(cell, "s\tGeneral\t=cmd|' /C calc'!A0\n");
    free(cell);
    cell = reader("cell '%s' Findings D2", path);
    CHECK_TEXT(cell, "s\tGeneral\t+SUM(1,2)\n");
    free(cell);
    /* Not even as the workbook's title. */
    char *props = reader("props '%s'", path);
    CHECK_HAS(props, "title\tUsage statement TX-2026-10-R1, "
              "=HYPERLINK(\"http://x\")\n");
    free(props);

    char err[AC_ERR_MAX];
    out_path(path, 512, "x", "finance-summary-2026-10.xlsx");
    CU_ASSERT_EQUAL_FATAL(report_finance_summary(conn, "2026-10", path, err),
                          AC_OK);
    cell = reader("cell '%s' Tenants B10", path);
    CHECK_TEXT(cell, "s\tGeneral\t=HYPERLINK(\"http://x\")\n");
    free(cell);
}

static void test_currency_formats(void)
{
    static const struct { const char *no, *m2, *total; } want[] = {
        { "T1-2026-10-R1", "[$$-409]#,##0.00", "5.15" },
        { "T2-2026-10-R1", "[$\xE2\x82\xAC-2] #,##0.00", "0" },
        { "TX-2026-10-R1", "[$\xC2\xA3-809]#,##0.00", "0.03" },
        { "TC-2026-10-R1", "#,##0.00 \"CHF\"", "0" },
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char path[512], w[128];
        CU_ASSERT_EQUAL_FATAL(write_invoice(want[i].no, "cur", path,
                                            sizeof path), AC_OK);
        char *cell = reader("label '%s' Summary 'Total due'", path);
        snprintf(w, sizeof w, "n\t%s\t%s\n", want[i].m2, want[i].total);
        CHECK_TEXT(cell, w);
        free(cell);
    }
    /* The empty CHF invoice: a Calls sheet with the header only. */
    char path[512];
    CU_ASSERT_EQUAL_FATAL(write_invoice("TC-2026-10-R1", "cur", path,
                                        sizeof path), AC_OK);
    char *rows = reader("rows '%s' Calls", path);
    char w[512];
    snprintf(w, sizeof w, "%s\n", calls_header);
    CHECK_TEXT(rows, w);
    free(rows);
    rows = reader("rows '%s' Summary", path);
    CHECK_HAS(rows, "\nNo billed calls in this period.\nSubtotal\t\t\t\t\t0\t0"
              "\t0\t0\n");
    free(rows);
}

static void test_revision_change_and_reconciliation(void)
{
    char path[512];
    CU_ASSERT_EQUAL_FATAL(write_invoice("T1-2026-10-R2", "r2", path,
                                        sizeof path), AC_OK);
    char *s = reader("rows '%s' Summary", path);
    CHECK_HAS(s, "\nSupersedes\tT1-2026-10-R1\n");
    /* Only what changed: figures, the one line, the one call added. */
    CHECK_HAS(s, "\nChange against revision 1 (T1-2026-10-R1)\n"
              "Figure\t\t\t\t\t\t\tRevision 1\tRevision 2\tChange\n"
              "Calls\t\t\t\t\t\t\t17\t18\t1\n"
              "Billed minutes\t\t\t\t\t\t\t20\t22\t2\n"
              "Subtotal\t\t\t\t\t\t\t5.15\t5.21\t0.06\n"
              "Total\t\t\t\t\t\t\t5.15\t5.21\t0.06\n\n"
              "Country\tCode\tKind\tRate per minute\tConnection fee\t"
              "Calls (rev 1)\tCalls (rev 2)\tAmount (rev 1)\tAmount (rev 2)\t"
              "Change\tLine is\n"
              "United Kingdom\tGB\tgeographic\t0.03\t0\t1\t2\t0.03\t0.09\t"
              "0.06\tchanged\n"
              "6 other lines unchanged.\n\n"
              "Calls added, removed or re-rated against revision 1\n"
              "Change\tCalls\nadded\t1\nremoved\t0\nre-rated\t0\n\n");
    CHECK_HAS(s, "\n00000000-0000-0000-0000-000000000018\tadded\t\tbilled\t"
              "\t\t\t\t0.06\t0.06\n");
    CU_ASSERT_PTR_NULL(strstr(s ? s : "", "\tunchanged\n"));
    CU_ASSERT_PTR_NULL(strstr(s ? s : "", "\nRejected calls\t\t"));
    char *ch = reader("rows '%s' Changes", path);
    CHECK_TEXT(ch, "Change\tUsage ID\tStart (local time)\tOrganizer\t"
               "Destination\tOutcome (rev 1)\tOutcome (rev 2)\t"
               "Billed minutes (rev 1)\tBilled minutes (rev 2)\t"
               "Amount (rev 1)\tAmount (rev 2)\tDifference\tReason\n"
               "added\t00000000-0000-0000-0000-000000000018\t"
               "2026-10-25 09:00:00\tbob\t+441632960001\t\tbilled\t\t2\t\t"
               "0.06\t0.06\n");
    free(ch);
    char *sheets = reader("sheets '%s'", path);
    CHECK_TEXT(sheets, "Summary\nChanges\nCalls\nOrganizers\nFindings\n"
               "Reconciliation\n");
    free(sheets);
    free(s);

    char *r = reader("rows '%s' Reconciliation", path);
    CHECK_HAS(r, "\nUSD\t9\t8\t1\t10.195\t4.725\t5.47\t5\n");
    static const char *const listed[] = {
        "00000000-0000-0000-0000-000000000001\t2026-10-01 09:00:00\talice\t"
        "+12125550100\texempt\t60\t0\t0\t0\t1.2\tUSD\t1.2\t"
        "add-on exempt but provider charged\n",
        "00000000-0000-0000-0000-000000000002\t2026-10-01 10:00:00\tbob\t"
        "+12125550101\tpool\t31\t31\t0\t0\t0.62\tUSD\t0.62\t"
        "pool minutes charged\n",
        "\tdave\t+14165550100\trejected\t5\t0\t0\t0\t0.1\tUSD\t0.1\t"
        "rejected call charged\n",
        "\tbob\t+33142685300\tsplit\t90\t87\t3\t0.105\t3.15\tUSD\t3.045\t"
        "pool minutes charged\n",
        "\tbob\t+19005550100\tbilled\t2\t0\t2\t2\t2.5\tUSD\t0.5\t"
        "rate differs\n",
    };
    for (size_t i = 0; i < sizeof listed / sizeof *listed; i++)
        CHECK_HAS(r, listed[i]);
    /* Within a cent, or equal: not listed. */
    CU_ASSERT_PTR_NULL(strstr(r ? r : "", "000000000004\t"));
    CU_ASSERT_PTR_NULL(strstr(r ? r : "", "000000000008\t"));
    CU_ASSERT_PTR_NULL(strstr(r ? r : "", "000000000005\t"));
    /* Charged in EUR on a USD invoice: counted, not compared or listed. */
    CU_ASSERT_PTR_NULL(strstr(r ? r : "", "000000000012\t"));
    /* The provider charge of the first listed call is USD money. */
    const char *at = r ? strstr(r, "00000000-0000-0000-0000-000000000001\t")
                       : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    int line = 1;
    for (const char *q = r; q < at; q++)
        line += *q == '\n';
    free(r);
    char *cell = reader("cell '%s' Reconciliation J%d", path, line);
    CHECK_TEXT(cell, "n\t[$$-409]#,##0.0000\t1.2\n");
    free(cell);

    char *orgs = reader("rows '%s' Organizers", path);
    CHECK_HAS(orgs, "\nalice\tAlice Andersen\talice@contoso.example\t4\t0\t64\t"
              "61\t2\t1\t0.02\tyes\tyes\n");
    free(orgs);
    char *calls = reader("rows '%s' Calls", path);
    char *want = expected_calls("T1-2026-10-R2");
    char all[16384];
    snprintf(all, sizeof all, "%s\n%s", calls_header, want ? want : "?");
    CHECK_TEXT(calls, all);
    free(want);
    free(calls);
}

static void test_finance_summary(void)
{
    char path[512], err[AC_ERR_MAX];
    out_path(path, sizeof path, "fin", "finance-summary-2026-10.xlsx");
    CU_ASSERT_EQUAL_FATAL(report_finance_summary(conn, "2026-10", path, err),
                          AC_OK);
    char *sheets = reader("sheets '%s'", path);
    CHECK_TEXT(sheets, "Tenants\nDocuments\nTotals\nFindings\n"
               "Reconciliation\nUnbilled old usage\nRejects by reason\n"
               "Import rejects\n");
    free(sheets);

    /* Every tenant: the latest revision and its documents, and those
     * with usage but no statement, with the reason. */
    char *inv = reader("rows '%s' Tenants", path);
    CHECK_HAS(inv,
        "Tenant\tName\tStatus\tReason\tStatement\tRevision\tSupersedes\t"
        "Calls\tRejected calls\tBilled minutes\tSubtotal\tTax\tTotal\t"
        "Currency\tPrevious total\tChange\tInvoice in force\tIssue date\t"
        "Due date\tCredit notes\n"
        "T1\tContoso\tissued\t\tT1-2026-10-R3\t3\tT1-2026-10-R2\t19\t6\t22\t"
        "5.21\t0\t5.21\tUSD\t5.21\t0\tINV-2026-000003\t2026-11-02 00:00:00\t"
        "2026-12-02 00:00:00\tCN-2026-000001 (voids INV-2026-000001)\n"
        "T2\tFabrikam\tissued\t\tT2-2026-10-R1\t1\t\t1\t0\t0\t0\t0\t0\tEUR\t"
        "\t\tINV-2026-000002\t2026-11-01 00:00:00\t2026-12-01 00:00:00\n"
        "T5\tVorwerk & S\xC3\xB6hne\tissued\t\tT5-2026-10-R1\t1\t\t50\t0\t2550\t"
        "1275\t242.25\t1517.25\tEUR\t\t\tINV-2026-000004\t"
        "2026-11-02 00:00:00\t2026-11-16 00:00:00\n");
    CHECK_HAS(inv, "\nTC\tChocolatier\tissued\t\tTC-2026-10-R1\t1\t\t0\t0\t0\t"
              "0\t0\t0\tCHF\n");
    CHECK_HAS(inv, "\nTF\tFailing Tenant\tfailed\ttime zone Mars/Olympus_Mons"
              " is not a name in pg_timezone_names\t\t\t\t\t\t\t\t\t\tUSD\n"
              "TG\tGrace Tenant\tin grace period (draft)\tin grace until "
              "2026-11-02 23:00 UTC\t\t\t\t\t\t\t\t\t\tEUR\n"
              "TN\tNew Tenant\tnot billed yet\tcalls in the period; no run "
              "has billed it yet\t\t\t\t\t\t\t\t\t\tUSD\n"
              "TX\t=HYPERLINK(\"http://x\")\tissued\t\tTX-2026-10-R1\t1\t\t1\t"
              "0\t1\t0.03\t0\t0.03\tGBP\n");
    /* Calls in November only: not a tenant of October. */
    CU_ASSERT_PTR_NULL(strstr(inv ? inv : "", "\nTZ\t"));
    free(inv);
    char *cell = reader("cell '%s' Tenants M3", path);
    CHECK_TEXT(cell, "n\t[$\xE2\x82\xAC-2] #,##0.00\t0\n");
    free(cell);
    cell = reader("cell '%s' Tenants R2", path);
    CHECK_TEXT(cell, "d\tyyyy-mm-dd\t2026-11-02 00:00:00\n");
    free(cell);

    char *docs = reader("rows '%s' Documents", path);
    CHECK_TEXT(docs,
        "Document\tType\tTenant\tName\tStatement\tIssue date\tDue date\t"
        "Currency\tSubtotal\tTax\tTotal\tVoids\tVoided by\t"
        "Replaced by\tReason\n"
        "INV-2026-000001\tinvoice\tT1\tContoso\tT1-2026-10-R1\t"
        "2026-11-01 00:00:00\t2026-12-01 00:00:00\tUSD\t5.15\t0\t5.15\t\t"
        "CN-2026-000001\n"
        /* A credit note has no due date (docs/billing-rules.md 4.2, version 3). */
        "CN-2026-000001\tcredit note\tT1\tContoso\tT1-2026-10-R2\t"
        "2026-11-02 00:00:00\t\tUSD\t-5.15\t0\t-5.15\t"
        "INV-2026-000001\t\tINV-2026-000003\tStatement T1-2026-10-R2 "
        "revises T1-2026-10-R1: 1 call arrived late. Total 5.15 -> 5.21 "
        "USD. Replaced by invoice INV-2026-000003.\n"
        "INV-2026-000003\tinvoice\tT1\tContoso\tT1-2026-10-R2\t"
        "2026-11-02 00:00:00\t2026-12-02 00:00:00\tUSD\t5.21\t0\t5.21\n"
        "INV-2026-000002\tinvoice\tT2\tFabrikam\tT2-2026-10-R1\t"
        "2026-11-01 00:00:00\t2026-12-01 00:00:00\tEUR\t0\t0\t0\n"
        "INV-2026-000004\tinvoice\tT5\tVorwerk & S\xC3\xB6hne\tT5-2026-10-R1\t"
        "2026-11-02 00:00:00\t2026-11-16 00:00:00\tEUR\t1275\t242.25\t"
        "1517.25\n"
        "INV-2026-000005\tinvoice\tTB\tBad\xEF\xBF\xBDName\xEF\xBF\xBD[31m"
        "\xEF\xBF\xBD\xEF\xBF\xBD Tab\\there\tTB-2026-10-R1\t"
        "2026-11-01 00:00:00\t2026-12-01 00:00:00\tUSD\t0\t0\t0\n");
    free(docs);

    char *tot = reader("rows '%s' Totals", path);
    CHECK_TEXT(tot,
        "Currency\tTenants\tCalls\tRejected calls\tBilled minutes\tTotal\t"
        "Revised invoices\tChange against previous revisions\n"
        "CHF\t1\t0\t0\t0\t0\t0\t0\n"
        "EUR\t2\t51\t0\t2550\t1517.25\t0\t0\n"
        "GBP\t1\t1\t0\t1\t0.03\t0\t0\n"
        "USD\t2\t19\t6\t22\t5.21\t1\t0\n");
    free(tot);

    /* Every finding of the latest revisions, and only those. */
    char *f = reader("rows '%s' Findings", path);
    char *want = testdb_value(conn,
        "SELECT string_agg(rtrim(concat_ws(E'\\t', i.tenant_id,"
        " f.invoice_no, f.seq, f.code, f.subject, f.detail,"
        " coalesce(f.usage_id::text, '')), E'\\t'), E'\\n'"
        " ORDER BY i.tenant_id, f.seq)"
        " FROM billing.findings f JOIN billing.invoices i USING (invoice_no)"
        " WHERE f.invoice_no IN ('T1-2026-10-R3', 'T5-2026-10-R1')");
    char w[16384];
    snprintf(w, sizeof w, "Tenant\tInvoice\t#\tCode\tSubject\tDetail\t"
             "Usage ID\n%s\n", want ? want : "?");
    CHECK_HAS(f, w);
    CU_ASSERT_PTR_NULL(strstr(f ? f : "", "T1-2026-10-R1\t"));
    CU_ASSERT_PTR_NULL(strstr(f ? f : "", "T1-2026-10-R2\t"));
    CHECK_HAS(f, "T1\tT1-2026-10-R3\t9\tFAIR_USE_REVIEW\talice\t");
    CHECK_HAS(f, "\nTB\tTB-2026-10-R1\t1\tLONG\tctl\xEF\xBF\xBDsubject\txxxx");
    CHECK_HAS(f, "\nTX\tTX-2026-10-R1\t1\tTEST\t");
    free(want);
    free(f);

    char *r = reader("rows '%s' Reconciliation", path);
    CHECK_HAS(r, "\nT1\tContoso\tT1-2026-10-R3\tUSD\t5.21\t9\t8\t1\t10.195\t"
              "4.725\t5.47\t5\n");
    CHECK_HAS(r, "\nT2\tFabrikam\tT2-2026-10-R1\tEUR\t0\t0\t0\t0\t0\t0\t0\t"
              "0\n");
    free(r);
    /* Created: the period's latest issue. */
    char *pr = reader("props '%s'", path);
    CHECK_HAS(pr, "created\t2026-11-03 00:00:00\n");
    free(pr);

    /* A period without invoices: the headers only. */
    out_path(path, sizeof path, "fin", "finance-summary-2026-09.xlsx");
    CU_ASSERT_EQUAL_FATAL(report_finance_summary(conn, "2026-09", path, err),
                          AC_OK);
    char *empty = reader("rows '%s' Totals", path);
    CHECK_TEXT(empty, "Currency\tTenants\tCalls\tRejected calls\t"
               "Billed minutes\tTotal\tRevised invoices\t"
               "Change against previous revisions\n");
    free(empty);
    char *props = reader("props '%s'", path);
    CHECK_HAS(props, "created\t2026-09-01 00:00:00\n");
    CHECK_HAS(props, "title\tFinance summary 2026-09\n");
    free(props);

    out_path(path, sizeof path, "fin", "finance-summary-bad.xlsx");
    CU_ASSERT_EQUAL(report_finance_summary(conn, "2026-13", path, err),
                    AC_EUSAGE);
    CU_ASSERT_EQUAL(report_finance_summary(conn, "2026-1", path, err),
                    AC_EUSAGE);
    CU_ASSERT_FALSE(exists(path));
}

static void test_sha256sums(void)
{
    char d[512], path[512], err[AC_ERR_MAX] = "";
    snprintf(d, sizeof d, "%s/sums", dir);
    mkdir(d, 0755);
    CU_ASSERT_EQUAL_FATAL(write_invoice("T2-2026-10-R1", "sums", path,
                                        sizeof path), AC_OK);
    CU_ASSERT_EQUAL_FATAL(write_invoice("T1-2026-10-R1", "sums", path,
                                        sizeof path), AC_OK);
    /* Not listed: other files, hidden temporaries, directories. */
    test_system("echo notes > '%s/notes.txt'; echo tmp > '%s/.T3.xlsx';"
                " mkdir -p '%s/dir.xlsx'", d, d, d);
    CU_ASSERT_EQUAL_FATAL(report_write_sha256sums(d, err), AC_OK);

    char want[1024], sums[512];
    snprintf(sums, sizeof sums, "%s/SHA256SUMS", d);
    snprintf(path, sizeof path, "%s/T1-2026-10-R1.xlsx", d);
    char *h1 = sha_of(path);
    snprintf(path, sizeof path, "%s/T2-2026-10-R1.xlsx", d);
    char *h2 = sha_of(path);
    snprintf(want, sizeof want, "%s  T1-2026-10-R1.xlsx\n"
             "%s  T2-2026-10-R1.xlsx\n", h1 ? h1 : "?", h2 ? h2 : "?");
    char *got = NULL;
    FILE *f = fopen(sums, "r");
    if (f != NULL) {
        got = calloc(4096, 1);
        if (got != NULL && fread(got, 1, 4095, f) == 0)
            got[0] = '\0';
        fclose(f);
    }
    CHECK_TEXT(got, want);
    free(got);
    struct stat st;
    /* The documents' mode (ACBILL_FILE_MODE, default 0640; issue 20). */
    CU_ASSERT_TRUE(stat(sums, &st) == 0 && (st.st_mode & 07777) == 0640);
    CU_ASSERT_EQUAL(test_system("cd '%s' && sha256sum --strict --quiet -c "
                                "SHA256SUMS", d), 0);
    CU_ASSERT_EQUAL(test_system("ls -A '%s' | grep -q '^.SHA256SUMS'", d), 1);

    /* A changed workbook no longer verifies. */
    test_system("printf x >> '%s/T2-2026-10-R1.xlsx'", d);
    CU_ASSERT_NOT_EQUAL(test_system("cd '%s' && sha256sum --quiet -c "
                                    "SHA256SUMS >/dev/null 2>&1", d), 0);
    /* Written again, it does. */
    CU_ASSERT_EQUAL(report_write_sha256sums(d, err), AC_OK);
    CU_ASSERT_EQUAL(test_system("cd '%s' && sha256sum --strict --quiet -c "
                                "SHA256SUMS", d), 0);

    snprintf(path, sizeof path, "%s/no-such-dir", dir);
    CU_ASSERT_EQUAL(report_write_sha256sums(path, err), AC_ENOINPUT);
}

static void test_failures(void)
{
    char path[512], err[AC_ERR_MAX] = "";

    /* No such invoice: nothing is written. */
    out_path(path, sizeof path, "fail", "nope.xlsx");
    CU_ASSERT_EQUAL(report_invoice_workbook(conn, "T9-2026-10-R1", path,
                                            err), AC_EDATA);
    CU_ASSERT_FALSE(exists(path));

    /* A directory that does not exist. */
    snprintf(path, sizeof path, "%s/missing/T1.xlsx", dir);
    CU_ASSERT_EQUAL(report_invoice_workbook(conn, "T1-2026-10-R1", path,
                                            err), AC_ECANTCREAT);
    CU_ASSERT_FALSE(exists(path));

    /* Failing half-way (the Organizers sheet reads billing.findings):
     * the partial file is removed, and the caller's transaction is left
     * to the caller. */
    out_path(path, sizeof path, "fail", "T1-2026-10-R1.xlsx");
    CU_ASSERT_EQUAL_FATAL(testdb_exec(conn, "BEGIN; ALTER TABLE "
        "billing.findings RENAME TO findings_hidden"), 0);
    ac_status rc = report_invoice_workbook(conn, "T1-2026-10-R1", path, err);
    CU_ASSERT_NOT_EQUAL(rc, AC_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "findings"));
    CU_ASSERT_FALSE(exists(path));
    CU_ASSERT_EQUAL(PQtransactionStatus(conn), PQTRANS_INERROR);
    testdb_exec(conn, "ROLLBACK");
    CU_ASSERT_EQUAL(test_system("ls -A '%s/fail' | grep -q .", dir), 1);
}

static void test_inside_callers_transaction(void)
{
    char path[512], err[AC_ERR_MAX] = "";

    CU_ASSERT_EQUAL_FATAL(testdb_exec(conn, "BEGIN;"
        "INSERT INTO billing.invoices (invoice_no, tenant_id, tenant_name,"
        " period, revision, currency, time_zone, period_start, period_end,"
        " seats, seats_basis, pool_minutes, pool_used_minutes,"
        " exempt_minutes, billed_minutes, calls, rejected_calls, zero_calls,"
        " exempt_calls, pool_calls, split_calls, billed_calls, total,"
        " fingerprint, subtotal, tax, tax_rate, minor_unit)"
        " VALUES ('TU-2026-10-R1', 'TU', 'Uncommitted',"
        " '2026-10-01', 1, 'USD', 'UTC', '2026-10-01T00:00Z',"
        " '2026-11-01T00:00Z', 0, 'purchased', 0, 0, 0, 0, 0, 0, 0, 0, 0,"
        " 0, 0, 0, 'tu', 0, 0, 0, 2);"
        "INSERT INTO billing.invoice_reconciliation"
        " VALUES ('TU-2026-10-R1', 0, 0, 0, 0, 0)"), 0);
    out_path(path, sizeof path, "tx", "TU-2026-10-R1.xlsx");
    ac_status rc = report_invoice_workbook(conn, "TU-2026-10-R1", path, err);
    CU_ASSERT_EQUAL(rc, AC_OK);
    /* Still inside the caller's transaction: nothing committed. */
    CU_ASSERT_EQUAL(PQtransactionStatus(conn), PQTRANS_INTRANS);
    testdb_exec(conn, "ROLLBACK");
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM billing.invoices"
                                " WHERE invoice_no = 'TU-2026-10-R1'"), 0);
    char *v = reader("find '%s' Summary Tenant", path);
    CHECK_TEXT(v, "Uncommitted\n");
    free(v);
}

/* The Reconciliation's totals come from the ledger; the calls the pass
 * lists must agree with them, or no workbook is written. */
static void test_reconciliation_must_match_ledger(void)
{
    char path[512], err[AC_ERR_MAX] = "";
    CU_ASSERT_EQUAL_FATAL(testdb_exec(conn, "BEGIN;"
        "ALTER TABLE billing.invoice_reconciliation"
        " DISABLE TRIGGER invoice_reconciliation_immutable;"
        "UPDATE billing.invoice_reconciliation"
        " SET differing_calls = differing_calls + 1"
        " WHERE invoice_no = 'T1-2026-10-R2'"), 0);
    out_path(path, sizeof path, "mismatch", "T1-2026-10-R2.xlsx");
    ac_status rc = report_invoice_workbook(conn, "T1-2026-10-R2", path, err);
    testdb_exec(conn, "ROLLBACK");
    CU_ASSERT_EQUAL(rc, AC_EDATA);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "the ledger says"));
    CU_ASSERT_FALSE(exists(path));
}

/* ------------------------------------------------------ issue 13 tests */

/* Assert that the label's value on sheet is want (via `find`). */
static void check_label(const char *path, const char *sheet,
                        const char *label, const char *want)
{
    char *v = reader("find '%s' '%s' '%s'", path, sheet, label);
    char w[512];
    snprintf(w, sizeof w, "%s\n", want);
    CHECK_TEXT(v, w);
    free(v);
}

/* The document header: an invoice of its own, a usage statement naming
 * the invoice in force, and a statement without documents. */
static void test_document_header(void)
{
    char path[512];
    CU_ASSERT_EQUAL_FATAL(write_invoice("T1-2026-10-R2", "hdr", path,
                                        sizeof path), AC_OK);
    char *s = reader("rows '%s' Summary", path);
    CU_ASSERT_TRUE(s != NULL && strncmp(s, "Invoice INV-2026-000003\n", 24)
                   == 0);
    check_label(path, "Summary", "Document type", "Invoice");
    check_label(path, "Summary", "Document number", "INV-2026-000003");
    check_label(path, "Summary", "Issue date", "2026-11-02 00:00:00");
    check_label(path, "Summary", "Due date", "2026-12-02 00:00:00");
    check_label(path, "Summary", "Payment terms", "30 days");
    check_label(path, "Summary", "Replaces", "invoice INV-2026-000001 of "
                "2026-11-01, voided by credit note CN-2026-000001 of "
                "2026-11-02");
    check_label(path, "Summary", "Statement number", "T1-2026-10-R2");
    check_label(path, "Summary", "Supersedes", "T1-2026-10-R1");
    CHECK_HAS(s, "\nSeller\tNorthwind Telecom Ltd\n\t1 Harbour Street\n"
              "\tLondon EC1A 1AA\n\tUnited Kingdom (GB)\n"
              "Seller's tax ID\tGB123456789\n"
              "Payment details\tBarclays Bank\n"
              "\tIBAN GB33 BUKB 2020 1555 5555 55\n\tBIC BUKBGB22\n");
    CHECK_HAS(s, "\nBuyer\tContoso\n\t(no billing profile: no buyer "
              "details, no tax)\n");
    free(s);
    char *cell = reader("label '%s' Summary 'Issue date'", path);
    CHECK_TEXT(cell, "d\tyyyy-mm-dd\t2026-11-02 00:00:00\n");
    free(cell);
    char *props = reader("props '%s'", path);
    CHECK_HAS(props, "title\tInvoice INV-2026-000003, Contoso\n");
    CHECK_HAS(props, "created\t2026-11-02 02:00:00\n");
    free(props);

    /* R3: the money did not change, no document: a usage statement. */
    CU_ASSERT_EQUAL_FATAL(write_invoice("T1-2026-10-R3", "hdr", path,
                                        sizeof path), AC_OK);
    s = reader("rows '%s' Summary", path);
    CU_ASSERT_TRUE(s != NULL &&
                   strncmp(s, "Usage statement T1-2026-10-R3\n", 30) == 0);
    free(s);
    check_label(path, "Summary", "Document type",
                "Usage statement (not an invoice)");
    check_label(path, "Summary", "Invoice in force",
                "INV-2026-000003 of 2026-11-02, due 2026-12-02");
    check_label(path, "Summary", "Issue date", "2026-11-03 00:00:00");
    props = reader("props '%s'", path);
    CHECK_HAS(props, "title\tUsage statement T1-2026-10-R3, Contoso\n");
    CHECK_HAS(props, "created\t2026-11-03 02:00:00\n");
    free(props);

    /* R1 written again after R2 voided its invoice: still that invoice,
     * byte for byte (documents of later revisions are not read). */
    char p1[512];
    CU_ASSERT_EQUAL_FATAL(write_invoice("T1-2026-10-R1", "hdr", p1,
                                        sizeof p1), AC_OK);
    check_label(p1, "Summary", "Document number", "INV-2026-000001");
    char *r1 = reader("rows '%s' Summary", p1);
    CU_ASSERT_PTR_NOT_NULL(r1);
    CU_ASSERT_PTR_NULL(strstr(r1 ? r1 : "", "CN-2026"));
    free(r1);

    /* T5: a buyer with a multi-line address, purchase order, Entra
     * tenant id, 19 % tax with its note, the lines' country names. */
    CU_ASSERT_EQUAL_FATAL(write_invoice("T5-2026-10-R1", "hdr", path,
                                        sizeof path), AC_OK);
    s = reader("rows '%s' Summary", path);
    CHECK_HAS(s, "\nBuyer\tVorwerk & S\xC3\xB6hne GmbH\n\tM\xC3\xBChlenweg 17\n"
              "\tHaus B, 3. OG\n\t42275 Wuppertal\n\tGermany (DE)\n"
              "Buyer's tax ID\tDE811907980\n"
              "Buyer's email\trechnung@vorwerk.example\n"
              "Purchase order\tPO-4711/2026\n"
              "Entra tenant ID\t6f1d2a55-3c8e-4d1b-9a0e-2b7f4c9d8e11\n");
    CHECK_HAS(s, "\nTax (19 %)\t\t\t\t\t\t\t\t242.25\n"
              "Tax note\tUmsatzsteuer 19 %\n"
              "\tUSt-IdNr. des Leistungsempf\xC3\xA4ngers: DE811907980\n"
              "Total due\t\t\t\t\t\t\t\t1517.25\n");
    CHECK_HAS(s, "\nSouth Korea\tKR\tgeographic\t1\t0\t1\t34\t34\t34\t34\n");
    CHECK_HAS(s, "\nUnited Arab Emirates\tAE\tgeographic\t");
    free(s);
    check_label(path, "Summary", "Due date", "2026-11-16 00:00:00");
    check_label(path, "Summary", "Payment terms", "14 days");

    /* TX: a statement issued before documents existed. */
    CU_ASSERT_EQUAL_FATAL(write_invoice("TX-2026-10-R1", "hdr", path,
                                        sizeof path), AC_OK);
    check_label(path, "Summary", "Invoice in force", "(none)");
}

/* Every country code of the destination table has a name. */
static void test_country_names(void)
{
    PGresult *res = PQexec(conn, "SELECT DISTINCT country FROM"
                           " ref.destinations WHERE country IS NOT NULL"
                           " ORDER BY 1");
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(res), PGRES_TUPLES_OK);
    CU_ASSERT_TRUE(PQntuples(res) > 200);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *code = PQgetvalue(res, i, 0);
        if (country_name(code) == NULL) {
            fprintf(stderr, "no name for country %s\n", code);
            CU_FAIL("a destination country without a name");
        }
    }
    PQclear(res);
    CHECK_TEXT(country_name("FR"), "France");
    CHECK_TEXT(country_name("XK"), "Kosovo");
    CU_ASSERT_PTR_NULL(country_name("ZZ"));
    CU_ASSERT_PTR_NULL(country_name("FRA"));
    CU_ASSERT_PTR_NULL(country_name(NULL));
}

/* The Calls sheet's columns after Reason (docs/billing-rules.md 4.3). */
static void test_calls_extra_columns(void)
{
    char path[512];
    CU_ASSERT_EQUAL_FATAL(write_invoice("T1-2026-10-R3", "extra", path,
                                        sizeof path), AC_OK);
    char *got = reader("rows '%s' Calls", path);
    char *rows = expected_calls("T1-2026-10-R3");
    char want[16384];
    snprintf(want, sizeof want, "%s\n%s", calls_header, rows ? rows : "?");
    CHECK_TEXT(got, want);
    /* Line 3 (JM), call and conference ids, Bob by his directory name
     * (stored as "Bob "), the provider's charge, currency, capability. */
    CHECK_HAS(got, "\n00000000-0000-0000-0000-000000000004\t2026-10-03 "
              "09:00:00\tbob\t+18765551234\tJM\tgeographic\t600\t10\tbilled\t"
              "0\t10\t0.25\t0.05\t2.55\t\t3\tcall-4\tconf-1\tBob Bauer\t2.55\t"
              "USD\tMCOMEETADD\n");
    /* Charged in EUR on a USD invoice: EUR money, line 7. */
    CHECK_HAS(got, "\t0.4\t\t7\tcall-12\tconf-0\t\t0.38\tEUR\tMCOMEETADD\n");
    free(got);
    free(rows);
    char *cell = reader("cell '%s' Calls T13", path);
    CHECK_TEXT(cell, "n\t[$\xE2\x82\xAC-2] #,##0.0000\t0.38\n");
    free(cell);
    cell = reader("cell '%s' Calls P5", path);
    CHECK_TEXT(cell, "n\t#,##0\t3\n");
    free(cell);
    /* T2's directory has an "alice" too: not Contoso's. */
    CU_ASSERT_EQUAL_FATAL(write_invoice("T2-2026-10-R1", "extra", path,
                                        sizeof path), AC_OK);
    got = reader("rows '%s' Calls Organizers", path);
    CU_ASSERT_PTR_NULL(strstr(got ? got : "", "Alice Andersen"));
    free(got);
}

/* A credit note: its header and the voided invoice's lines negated. */
static void test_credit_note(void)
{
    char path[512], err[AC_ERR_MAX] = "";
    out_path(path, sizeof path, "cn", "CN-2026-000001.xlsx");
    CU_ASSERT_EQUAL_FATAL(report_credit_note_workbook(conn, "CN-2026-000001",
                                                      path, err), AC_OK);
    char *sheets = reader("sheets '%s'", path);
    CHECK_TEXT(sheets, "Credit note\n");
    free(sheets);
    char *s = reader("rows '%s' 'Credit note'", path);
    CU_ASSERT_TRUE(s != NULL && strncmp(s, "Credit note CN-2026-000001\n"
                   "Voids invoice INV-2026-000001 of 2026-11-01 in full\n",
                   77) == 0);
    CHECK_HAS(s, "\nDocument type\tCredit note\nDocument number\t"
              "CN-2026-000001\nIssue date\t2026-11-02 00:00:00\n"
              "Voids\tinvoice INV-2026-000001 of 2026-11-01 (statement "
              "T1-2026-10-R1)\nReplaced by\tINV-2026-000003\n"
              "Voided invoice's total\t5.15\n"
              "Total credited\t-5.15\n"
              /* docs/billing-rules.md 4.2, version 3: the reason in words. */
              "Reason\nStatement T1-2026-10-R2 revises T1-2026-10-R1: 1 "
              "call arrived late. Total 5.15 -> 5.21 USD. Replaced by "
              "invoice INV-2026-000003.\n");
    CHECK_HAS(s, "\nSeller\tNorthwind Telecom Ltd\n");
    CHECK_HAS(s, "\nFrance\tFR\tgeographic\t0.035\t0\t-1\t-3\t-0.11\t1\n");
    CHECK_HAS(s, "\nJamaica\tJM\tgeographic\t0.25\t0.05\t-1\t-10\t-2.55\t3\n");
    CHECK_HAS(s, "\nSubtotal\t\t\t\t\t\t\t-5.15\nTax (0 %)\t\t\t\t\t\t\t0\n"
              "Total credited\t\t\t\t\t\t\t-5.15\n");
    free(s);
    char *cell = reader("label '%s' 'Credit note' 'Total credited'", path);
    CHECK_TEXT(cell, "n\t[$$-409]#,##0.00\t-5.15\n");
    free(cell);
    char *props = reader("props '%s'", path);
    CHECK_HAS(props, "title\tCredit note CN-2026-000001, Contoso\n");
    CHECK_HAS(props, "created\t2026-11-02 02:00:00\n");
    free(props);
    char *xml = reader("part '%s' xl/worksheets/sheet1.xml", path);
    CHECK_HAS(xml, "<oddFooter>&amp;LCredit note CN-2026-000001&amp;C&amp;A"
              "&amp;RPage &amp;P of &amp;N</oddFooter>");
    free(xml);

    /* An invoice is not a credit note; nothing is written. */
    out_path(path, sizeof path, "cn", "INV-2026-000001.xlsx");
    CU_ASSERT_EQUAL(report_credit_note_workbook(conn, "INV-2026-000001",
                                                path, err), AC_EDATA);
    CU_ASSERT_FALSE(exists(path));
}

/* A draft: DRAFT on every sheet, no statement or document number. */
static void test_draft(void)
{
    char path[512], err[AC_ERR_MAX] = "";
    report_invoice_options o = { .draft = 1 };

    /* As the job does: the revision's rows in an open transaction. */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(conn, "BEGIN;"
        "INSERT INTO billing.invoices SELECT (jsonb_populate_record("
        " NULL::billing.invoices, to_json(i)::jsonb || jsonb_build_object("
        " 'invoice_no', 'T1-2026-10-R4', 'revision', 4, 'supersedes',"
        " 'T1-2026-10-R3', 'issued_at', '2026-11-04T02:00:00Z'))).*"
        " FROM billing.invoices i WHERE invoice_no = 'T1-2026-10-R3';"
        "INSERT INTO billing.invoice_lines SELECT (jsonb_populate_record("
        " NULL::billing.invoice_lines, to_json(l)::jsonb"
        " || '{\"invoice_no\": \"T1-2026-10-R4\"}')).*"
        " FROM billing.invoice_lines l WHERE invoice_no = 'T1-2026-10-R3';"
        "INSERT INTO billing.rated_calls SELECT (jsonb_populate_record("
        " NULL::billing.rated_calls, to_json(r)::jsonb"
        " || '{\"invoice_no\": \"T1-2026-10-R4\"}')).*"
        " FROM billing.rated_calls r WHERE invoice_no = 'T1-2026-10-R3';"
        "INSERT INTO billing.invoice_organizers SELECT (jsonb_populate_record("
        " NULL::billing.invoice_organizers, to_json(r)::jsonb"
        " || '{\"invoice_no\": \"T1-2026-10-R4\"}')).*"
        " FROM billing.invoice_organizers r"
        " WHERE invoice_no = 'T1-2026-10-R3';"
        "INSERT INTO billing.invoice_reconciliation SELECT"
        " (jsonb_populate_record(NULL::billing.invoice_reconciliation,"
        " to_json(r)::jsonb || '{\"invoice_no\": \"T1-2026-10-R4\"}')).*"
        " FROM billing.invoice_reconciliation r"
        " WHERE invoice_no = 'T1-2026-10-R3'"), 0);
    out_path(path, sizeof path, "draft", "T1-2026-10.xlsx");
    ac_status rc = report_invoice_workbook_opt(conn, "T1-2026-10-R4", path,
                                               &o, err);
    testdb_exec(conn, "ROLLBACK");
    if (rc != AC_OK)
        fprintf(stderr, "draft: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, AC_OK);
    char *sheets = reader("sheets '%s'", path);
    CHECK_TEXT(sheets, "Summary\nChanges\nCalls\nOrganizers\nFindings\n"
               "Reconciliation\n");
    free(sheets);
    static const char *const names[] = {
        "Summary", "Changes", "Calls", "Organizers", "Findings",
        "Reconciliation"
    };
    for (int i = 0; i < 6; i++) {
        /* The title cell, and DRAFT in the printed header. */
        char *cell = reader("cell '%s' '%s' A1", path, names[i]);
        CU_ASSERT_TRUE(cell != NULL && strstr(cell, "\tDRAFT") != NULL);
        if (cell == NULL || strstr(cell, "\tDRAFT") == NULL)
            fprintf(stderr, "%s A1: %s", names[i], cell ? cell : "?");
        free(cell);
        char *xml = reader("part '%s' xl/worksheets/sheet%d.xml", path,
                           i + 1);
        CHECK_HAS(xml, "<oddHeader>&amp;C&amp;\"-,Bold\"&amp;14DRAFT - not an "
                  "invoice, not for booking</oddHeader>");
        CHECK_HAS(xml, "<oddFooter>&amp;LDRAFT T1 2026-10&amp;C");
        /* No number of the draft, nor of the invoice in force. */
        CU_ASSERT_PTR_NULL(strstr(xml ? xml : "", "T1-2026-10-R4"));
        free(xml);
    }
    /* The list sheets: the mark in row 1, the header in row 2. */
    char *view = reader("view '%s' Calls", path);
    CHECK_TEXT(view, "freeze\tA3\nfilter\tA2:V21\n");
    free(view);
    char *s = reader("rows '%s' Summary", path);
    CHECK_HAS(s, "\nDocument type\tDraft usage statement\n"
              "Document number\t(none: numbers are given when it is "
              "issued)\n");
    CHECK_HAS(s, "\nStatement number\t(none: a draft)\nRevision\t4\n"
              "Supersedes\tT1-2026-10-R3\n");
    /* Seller from the reference data as it is now. */
    CHECK_HAS(s, "\nSeller\tNorthwind Telecom Ltd\n");
    free(s);
    char *core = reader("part '%s' docProps/core.xml", path);
    CU_ASSERT_PTR_NULL(strstr(core ? core : "", "T1-2026-10-R4"));
    CU_ASSERT_PTR_NULL(strstr(core ? core : "", "INV-2026"));
    CHECK_HAS(core, "DRAFT usage statement, Contoso, 2026-10");
    free(core);
    /* No statement number in any cell either. */
    char *rows = reader("rows '%s' Summary Changes Calls Organizers Findings "
                        "Reconciliation", path);
    CU_ASSERT_PTR_NOT_NULL(rows);
    CU_ASSERT_PTR_NULL(strstr(rows ? rows : "", "T1-2026-10-R4"));
    free(rows);
}

/* Print set-up (docs/billing-rules.md 4.3), read from the sheets' XML. */
static void test_print_setup(void)
{
    char path[512];
    CU_ASSERT_EQUAL_FATAL(write_invoice("T5-2026-10-R1", "print", path,
                                        sizeof path), AC_OK);
    /* Summary: portrait, one page wide, at most two tall (50 lines). */
    char *x = reader("part '%s' xl/worksheets/sheet1.xml", path);
    CHECK_HAS(x, "<pageSetUpPr fitToPage=\"1\"/>");
    CHECK_HAS(x, "<pageSetup paperSize=\"9\" ");
    CHECK_HAS(x, " orientation=\"portrait\"");
    CHECK_HAS(x, " fitToHeight=\"2\"");
    CU_ASSERT_PTR_NULL(strstr(x ? x : "", "fitToWidth"));  /* 1: default */
    CHECK_HAS(x, "<oddFooter>&amp;LInvoice INV-2026-000004 (statement "
              "T5-2026-10-R1)&amp;C&amp;A&amp;RPage &amp;P of &amp;N"
              "</oddFooter>");
    free(x);
    /* List sheets (2-5): landscape, any number tall; one page wide where
     * that keeps the text at 7 pt or more (Organizers, Findings), else
     * at 64 %% (7 pt) over several pages wide, the first column repeated
     * (Calls, 22 columns; Reconciliation, 13 wide ones). */
    for (int i = 2; i <= 5; i++) {
        int wide = i == 2 || i == 5;
        x = reader("part '%s' xl/worksheets/sheet%d.xml", path, i);
        if (wide) {
            CHECK_HAS(x, "<pageSetup paperSize=\"9\" scale=\"64\" "
                      "orientation=\"landscape\"/>");
            CU_ASSERT_PTR_NULL(strstr(x ? x : "", "fitToPage"));
        } else {
            CHECK_HAS(x, "<pageSetUpPr fitToPage=\"1\"/>");
            CHECK_HAS(x, "<pageSetup paperSize=\"9\" fitToHeight=\"0\" "
                      "orientation=\"landscape\"/>");
        }
        CHECK_HAS(x, "&amp;LInvoice INV-2026-000004 (statement "
                  "T5-2026-10-R1)&amp;C&amp;A&amp;RPage &amp;P of &amp;N");
        free(x);
    }
    /* The header rows repeat (and the first column where the sheet is
     * several pages wide); the Summary prints without its chart data. */
    x = reader("part '%s' xl/workbook.xml", path);
    CHECK_HAS(x, "<definedName name=\"_xlnm.Print_Titles\" localSheetId=\"1\">"
              "Calls!$A:$A,Calls!$1:$1</definedName>");
    CHECK_HAS(x, "<definedName name=\"_xlnm.Print_Titles\" localSheetId=\"3\">"
              "Findings!$1:$1</definedName>");
    CHECK_HAS(x, "<definedName name=\"_xlnm.Print_Titles\" localSheetId=\"4\">"
              "Reconciliation!$A:$A,Reconciliation!$6:$6</definedName>");
    CHECK_HAS(x, "<definedName name=\"_xlnm.Print_Area\" localSheetId=\"0\">"
              "Summary!$A$1:$K$");
    free(x);
    /* A US seller prints on Letter. */
    CU_ASSERT_EQUAL(xb_paper_of("US"), XB_PAPER_LETTER);
    CU_ASSERT_EQUAL(xb_paper_of("GB"), XB_PAPER_A4);
    CU_ASSERT_EQUAL(xb_paper_of(NULL), XB_PAPER_A4);

    /* Rendered by LibreOffice, where it is installed: the Summary of 50
     * lines takes at most two pages (the footers name each page's
     * sheet). */
    if (test_system("command -v soffice >/dev/null && command -v pdftotext"
                    " >/dev/null") != 0) {
        fprintf(stderr, "\n  (LibreOffice or poppler-utils not installed: "
                "the Summary's page count was not rendered)\n");
        return;
    }
    char d[512];
    snprintf(d, sizeof d, "%s/print", dir);
    CU_ASSERT_EQUAL_FATAL(test_system("cd '%s' && HOME='%s' timeout 120 "
        "soffice --headless --convert-to pdf T5-2026-10-R1.xlsx >/dev/null"
        " 2>&1", d, d), 0);
    char *pages = NULL;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "pdftotext -layout '%s/T5-2026-10-R1.pdf' - |"
             " grep -c 'Summary *Page'", d);
    FILE *p = popen(cmd, "r");
    char buf[32] = "";
    if (p != NULL) {
        if (fgets(buf, sizeof buf, p) != NULL)
            pages = buf;
        pclose(p);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(pages);
    int n = atoi(pages);
    if (n < 1 || n > 2)
        fprintf(stderr, "Summary of 50 lines: %d pages\n", n);
    CU_ASSERT_TRUE(n >= 1 && n <= 2);
}

/* One text cleaner for cells and properties. */
static void test_text_cleaner(void)
{
    char out[128];
    size_t units;

    /* Controls become U+FFFD; tab and line feed stay; CR LF -> LF. */
    CU_ASSERT_EQUAL(xb_clean("a\001b\tc\r\nd\re\x7f" "f\xC2\x85g", 100, out,
                             &units), 19);
    CHECK_TEXT(out, "a\xEF\xBF\xBD" "b\tc\nd\ne\xEF\xBF\xBD" "f\xEF\xBF\xBDg");
    CU_ASSERT_EQUAL(units, 13);
    /* Invalid UTF-8 too. */
    xb_clean("x\xFF\xC3(", 100, out, NULL);
    CHECK_TEXT(out, "x\xEF\xBF\xBD\xEF\xBF\xBD(");
    /* Cut with a visible mark, counted in UTF-16 units (an emoji is 2). */
    CU_ASSERT_EQUAL(xb_clean("abcdefghijkl", 10, out, &units), 10);
    CHECK_TEXT(out, "abcd [...]");
    CU_ASSERT_EQUAL(units, 10);
    xb_clean("abcdefghij", 10, out, &units);
    CHECK_TEXT(out, "abcdefghij");
    xb_clean("ab\xF0\x9F\x98\x80" "cdefgh", 10, out, &units);
    CHECK_TEXT(out, "ab\xF0\x9F\x98\x80" "cdefgh");
    xb_clean("ab\xF0\x9F\x98\x80" "cdefghi", 10, out, &units);
    CHECK_TEXT(out, "ab\xF0\x9F\x98\x80 [...]");

    char path[512];
    CU_ASSERT_EQUAL_FATAL(write_invoice("TB-2026-10-R1", "clean", path,
                                        sizeof path), AC_OK);
    /* Every part is well-formed XML. */
    char *parts = reader("parts '%s'", path);
    CHECK_HAS(parts, "ok docProps/core.xml\n");
    CHECK_HAS(parts, "ok xl/worksheets/sheet1.xml\n");
    free(parts);
    char *v = reader("find '%s' Summary Tenant", path);
    CHECK_TEXT(v, "Bad\xEF\xBF\xBDName\xEF\xBF\xBD[31m\xEF\xBF\xBD\xEF\xBF\xBD"
               " Tab\\there\n");
    free(v);
    char *s = reader("rows '%s' Summary", path);
    CHECK_HAS(s, "\nBuyer\tBad\xEF\xBF\xBD" "Buyer\xEF\xBF\xBD Ltd\n");
    CHECK_HAS(s, "\nPurchase order\tPO\xEF\xBF\xBD\n");
    free(s);
    char *props = reader("props '%s'", path);
    CHECK_HAS(props, "title\tInvoice INV-2026-000005, Bad\xEF\xBF\xBDName"
              "\xEF\xBF\xBD[31m\xEF\xBF\xBD\xEF\xBF\xBD Tab\\there\n");
    free(props);
    /* The finding of 40,000 characters: cut to 32,767 with the mark. */
    char *cell = reader("cell '%s' Findings D2", path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cell);
    size_t len = strlen(cell);
    CU_ASSERT_EQUAL(len, strlen("s\tGeneral\t") + 32767 + 1);
    CU_ASSERT_TRUE(len > 8 && strcmp(cell + len - 8, "x [...]\n") == 0);
    free(cell);
}

/* Document properties: a 300-emoji tenant name (1,200 bytes) is cut by
 * the cleaner on a character boundary, with the mark, to XB_PROP_MAX
 * UTF-16 units; before, a 512-byte buffer cut the title and subject
 * inside the 128th emoji, without a mark. */
static void test_long_properties(void)
{
    static const char emoji[] = "\xF0\x9F\x98\x80";   /* U+1F600 */
    char path[512], want[2048];

    CU_ASSERT_EQUAL_FATAL(testdb_exec(conn,
        "INSERT INTO billing.invoices (invoice_no, tenant_id, tenant_name,"
        " period, revision, currency, time_zone, period_start, period_end,"
        " seats, seats_basis, pool_minutes, pool_used_minutes,"
        " exempt_minutes, billed_minutes, calls, rejected_calls,"
        " zero_calls, exempt_calls, pool_calls, split_calls, billed_calls,"
        " total, fingerprint, issued_at, subtotal, tax, tax_rate,"
        " minor_unit) VALUES ('TE-2026-10-R1', 'TE',"
        " repeat(E'\\U0001F600', 300), '2026-10-01', 1, 'USD', 'UTC',"
        " '2026-10-01T00:00:00Z', '2026-11-01T00:00:00Z', 0, 'purchased',"
        " 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'te',"
        " '2026-11-01T02:00:00Z', 0, 0, 0, 2);"
        "INSERT INTO billing.invoice_reconciliation VALUES"
        " ('TE-2026-10-R1', 0, 0, 0, 0, 0)"), 0);
    CU_ASSERT_EQUAL_FATAL(write_invoice("TE-2026-10-R1", "props", path,
                                        sizeof path), AC_OK);
    char *parts = reader("parts '%s'", path);
    CHECK_HAS(parts, "ok docProps/core.xml\n");
    free(parts);
    char *props = reader("props '%s'", path);
    /* "Usage statement TE-2026-10-R1, " is 31 units: 109 emoji (218)
     * fill the 249 before the 6 of the mark. */
    strcpy(want, "title\tUsage statement TE-2026-10-R1, ");
    for (int i = 0; i < 109; i++)
        strcat(want, emoji);
    strcat(want, XB_CUT_MARK "\n");
    CHECK_HAS(props, want);
    /* "Teams Audio Conferencing dial-out usage of " is 43: 103 emoji. */
    strcpy(want, "subject\tTeams Audio Conferencing dial-out usage of ");
    for (int i = 0; i < 103; i++)
        strcat(want, emoji);
    strcat(want, XB_CUT_MARK "\n");
    CHECK_HAS(props, want);
    free(props);
    /* The cleaner's own count: at most XB_PROP_MAX units, odd or even. */
    char in[1300] = "xx", out[1300];
    size_t units;
    for (int i = 0; i < 300; i++)
        strcat(in, emoji);
    xb_clean(in, XB_PROP_MAX, out, &units);
    CU_ASSERT_TRUE(units <= XB_PROP_MAX);
    CU_ASSERT_EQUAL(units, XB_PROP_MAX - 1);    /* 2 + 123 x 2 + 6 */
    size_t n = strlen(out);
    CU_ASSERT_TRUE(n > 10 && strcmp(out + n - 10, "\xF0\x9F\x98\x80"
                                    XB_CUT_MARK) == 0);
}

static CU_TestInfo tests[] = {
    { "fixture holds the worked example", test_fixture_is_the_spec_example },
    { "invoice: sheets, Calls rows, types", test_invoice_sheets_and_calls },
    { "invoice: Summary lines, total, outcomes", test_invoice_summary },
    { "invoice: Findings", test_invoice_findings },
    { "invoice: Calls continue on Calls (2)", test_calls_continuation },
    { "byte-identical when written again", test_deterministic },
    { "deflate level 1 on every zip member", test_deflate_level },
    { "temporary files in memory, or moved to a file",
      test_temporary_files },
    { "a temporary file that fails refuses the workbook",
      test_temporary_file_failure },
    { "tenant text is never a formula", test_tenant_text_is_never_a_formula },
    { "currency formats USD EUR GBP CHF", test_currency_formats },
    { "revision 2: change block, reconciliation",
      test_revision_change_and_reconciliation },
    { "finance summary", test_finance_summary },
    { "SHA256SUMS verifies with sha256sum -c", test_sha256sums },
    { "failure removes the partial file", test_failures },
    { "reconciliation must match the ledger",
      test_reconciliation_must_match_ledger },
    { "reads inside the caller's transaction",
      test_inside_callers_transaction },
    { "document header: invoice, usage statement",
      test_document_header },
    { "every destination country has a name", test_country_names },
    { "Calls: Line, ids, names, provider columns",
      test_calls_extra_columns },
    { "credit note workbook", test_credit_note },
    { "draft: marked, no numbers", test_draft },
    { "print set-up on every sheet", test_print_setup },
    { "text cleaner: controls, cut mark, properties",
      test_text_cleaner },
    { "properties cut on a character, with the mark",
      test_long_properties },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "reports", suite_init, suite_clean, NULL, NULL, tests },
    CU_SUITE_INFO_NULL
};

CU_ErrorCode tests_register(void)
{
    return CU_register_suites(suites);
}
