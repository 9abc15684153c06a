/* documents_test.c: the financial documents, the grace period and the
 * nightly run's periods (docs/billing-rules.md 4.2) end to end against a real
 * PostgreSQL, with the real bin/acbill.
 *
 * Invoices and credit notes with gapless numbers per series and year,
 * void and replace when money changes, nothing when it does not, drafts
 * in the grace period, the periods a run without --period covers, and the
 * cheap check of a tenant-period whose inputs did not change. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bill/run.h"
#include "report.h"
#include "testdb.h"
#include "testmain.h"

static PGconn *db;
static char conninfo[256];
static char out_dir[256];

static int acbill_run(const char *args)
{
    return test_system("%s run --db '%s' --quiet %s "
                       "2>>/tmp/acbill-documents-test.log",
                       test_acbill_path(), conninfo, args);
}

static char *command_output(const char *cmd);

#define EXPECT(sql, want) CU_ASSERT(testdb_equals(db, sql, want, __LINE__))

static int suite_clean(void)
{
    PQfinish(db);
    db = NULL;
    return 0;
}

static int documents_init(void)
{
    db = testdb_fresh("acbill_documents", conninfo, sizeof conninfo);
    snprintf(out_dir, sizeof out_dir, "/tmp/acbill-documents-test.%d",
             (int)getpid());
    /* The fixtures set the seller (ref.operator). */
    if (db == NULL || testdb_load(conninfo, "spec_example.sql") != 0 ||
        testdb_load(conninfo, "northwind.sql") != 0 ||
        acbill_run("--period 2026-10") != 0) {
        suite_clean();
        return 1;
    }
    return 0;
}

/* `acbill run ARGS` with its log in path; the exit status. */
static int acbill_run_log(const char *args, const char *path)
{
    return test_system("%s run --db '%s' %s >'%s' 2>&1", test_acbill_path(),
                       conninfo, args, path);
}

/* Revision 1 of each tenant-period (docs/billing-rules.md 4.2, version 3): Northwind
 * (a complete profile) gets one invoice for its total, numbered without
 * gaps in the year of issue, dated in its time zone and due after its
 * payment terms; Contoso has no billing profile: its statement is issued
 * and its invoice held; Fabrikam's total is 0: no invoice. */
static void test_first_invoices(void)
{
    EXPECT("SELECT string_agg(concat_ws(' ', tenant_id, kind, total,"
           " currency, seq, voids IS NULL, tax_category), '; ' ORDER BY seq)"
           " FROM billing.documents",
           "T3 invoice 42 JPY 1 t S");
    /* INV-<year>-000001, ...: the year of issue, six digits. */
    EXPECT("SELECT bool_and(document_no = 'INV-' || year || '-' ||"
           " lpad(seq::text, 6, '0') AND year = extract(year FROM"
           " issue_date)) FROM billing.documents", "t");
    EXPECT("SELECT bool_and(d.issue_date = (d.issued_at AT TIME ZONE"
           " i.time_zone)::date) FROM billing.documents d JOIN"
           " billing.invoices i USING (invoice_no)", "t");
    EXPECT("SELECT string_agg(concat_ws(' ', tenant_id, due_date -"
           " issue_date, tax_rate, tax, buyer IS NULL), '; ' ORDER BY seq)"
           " FROM billing.documents", "T3 30 0.1000 4 f");
    EXPECT("SELECT seller->>'legal_name' || ' / ' || (buyer->>'legal_name')"
           " FROM billing.documents WHERE tenant_id = 'T3'",
           "Resale Telecom Ltd / Northwind KK");
    /* The statements are all issued (5.15 USD, 0.00 EUR, 42 JPY). */
    EXPECT("SELECT string_agg(invoice_no || ' ' || total, ', ' ORDER BY"
           " tenant_id) FROM billing.invoices",
           "T1-2026-10-R1 5.15, T2-2026-10-R1 0.00, T3-2026-10-R1 42");
    EXPECT("SELECT string_agg(status || ':' || coalesce(message, ''), ' | '"
           " ORDER BY tenant_id) FROM billing.run_tenants",
           "held:held: no document until the billing profile is complete; "
           "ref.customers lacks legal_name, address, country, tax_note | "
           "issued: | issued:INV-2026-000001");
    /* Held: no number taken, the revision undecided; zero: decided,
     * nothing. */
    EXPECT("SELECT string_agg(invoice_no || '=' || documents::text, ' '"
           " ORDER BY invoice_no) FROM billing.document_decisions",
           "T2-2026-10-R1={} T3-2026-10-R1={INV-2026-000001}");
    EXPECT("SELECT string_agg(invoice_no || ' ' || (released_at IS NULL),"
           " ' ') FROM billing.document_holds", "T1-2026-10-R1 true");
    EXPECT("SELECT sum(last) FROM billing.document_numbers", "1");
    /* The finance summary shows the held tenant and why. */
    char path[600], cmd[1200], err[AC_ERR_MAX];
    snprintf(path, sizeof path, "%s-summary.xlsx", out_dir);
    CU_ASSERT_EQUAL_FATAL(report_finance_summary(db, "2026-10", path, err),
                          AC_OK);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/xlsx_read.py' rows"
             " %s Tenants | grep '^T1' | cut -f 1,3,4,5", test_src_dir(),
             path);
    char *row = command_output(cmd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(row);
    CU_ASSERT_STRING_EQUAL(row, "T1\theld\theld: no "
                           "document until the billing profile is complete;"
                           " ref.customers lacks legal_name, address, "
                           "country, tax_note\tT1-2026-10-R1");
    free(row);
    unlink(path);
}

/* docs/billing-rules.md 4.2: without a complete seller the run issues nothing and exits
 * 78 before billing any tenant, naming the missing columns; a number
 * prefix that is not safe is refused the same way. */
static void test_no_seller(void)
{
    const char *log = "/tmp/acbill-documents-seller.log";
    long runs = testdb_long(db, "SELECT count(*) FROM billing.runs");
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "UPDATE ref.operator SET tax_id = ' ', address = NULL"), 0);
    CU_ASSERT_EQUAL(acbill_run_log("--period 2026-10", log), 78);
    CU_ASSERT_EQUAL(test_system("grep -q 'ref.operator, is incomplete: "
                                "address, tax_id missing' %s", log), 0);
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "CREATE TABLE o_keep AS SELECT *"
                                      " FROM ref.operator;"
                                      " DELETE FROM ref.operator"), 0);
    CU_ASSERT_EQUAL(acbill_run_log("", log), 78);
    CU_ASSERT_EQUAL(test_system("grep -q 'legal_name, address, country, "
                                "tax_id missing' %s", log), 0);
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "INSERT INTO ref.operator SELECT"
                                      " * FROM o_keep; DROP TABLE o_keep;"
                                      " UPDATE ref.operator SET tax_id ="
                                      " 'GB123456789', address ="
                                      " E'1 Exchange Square\\nLondon'"), 0);
    /* The database refuses an unsafe prefix (migration 021)... */
    CU_ASSERT_NOT_EQUAL(testdb_exec(db, "UPDATE ref.operator SET"
                                    " credit_note_prefix = 'CN/'"), 0);
    /* ...and the run refuses one a database without that constraint holds
     * (one older than it, say). */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "ALTER TABLE ref.operator DROP"
                                      " CONSTRAINT"
                                      " operator_credit_note_prefix_safe;"
                                      " UPDATE ref.operator SET"
                                      " credit_note_prefix = 'CN/'"), 0);
    CU_ASSERT_EQUAL(acbill_run_log("--period 2026-10", log), 78);
    CU_ASSERT_EQUAL(test_system("grep -q 'credit_note_prefix' %s", log), 0);
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db, "UPDATE ref.operator SET"
                                      " credit_note_prefix = 'CN-';"
                                      " ALTER TABLE ref.operator ADD"
                                      " CONSTRAINT"
                                      " operator_credit_note_prefix_safe"
                                      " CHECK (credit_note_prefix ~"
                                      " '^([A-Za-z0-9_-][A-Za-z0-9._-]"
                                      "{0,15})?$')"), 0);
    /* Nothing was billed: no run, no revision, no document. */
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM billing.runs"),
                    runs);
    EXPECT("SELECT count(*) FROM billing.invoices", "3");
    EXPECT("SELECT count(*) FROM billing.documents", "1");
    unlink(log);
}

/* A late call that changes money: revision 2, a credit note voiding the
 * whole first invoice, with its reason in words, the replacing invoice
 * and no due date, and a new invoice; the numbers go on without gaps in
 * each series. */
static void test_void_and_replace(void)
{
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "INSERT INTO usage.dialout_calls (usage_id, call_id, conference_id,"
        " tenant_id, organizer_id, destination_number, start_time,"
        " duration_seconds) VALUES ('00000000-0000-0000-0003-000000000008',"
        " 'n8', 'nconf8', 'T3', 'kenji@northwind.example', '+81312349999',"
        " '2026-10-20T02:00:00Z', 600)"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    /* 10 more minutes at 3.5 JPY: 17.5 + 35 = 52.5 -> 53; 20 + 53 = 73,
     * tax 7.3 -> 7, total 80. */
    EXPECT("SELECT concat_ws(' ', revision, supersedes, subtotal, tax,"
           " total) FROM billing.invoices WHERE tenant_id = 'T3'"
           " ORDER BY revision DESC LIMIT 1",
           "2 T3-2026-10-R1 73 7 80");
    EXPECT("SELECT string_agg(concat_ws(' ', document_no, kind, subtotal,"
           " tax, total, coalesce(voids, '-'), coalesce(replaced_by, '-'),"
           " coalesce((due_date - issue_date)::text, 'no-due-date'),"
           " invoice_no), '; ' ORDER BY issued_at, kind, seq)"
           " FROM billing.documents WHERE tenant_id = 'T3'",
           "INV-2026-000001 invoice 38 4 42 - - 30 T3-2026-10-R1; "
           "CN-2026-000001 credit_note -38 -4 -42 INV-2026-000001 "
           "INV-2026-000002 no-due-date T3-2026-10-R2; "
           "INV-2026-000002 invoice 73 7 80 - - 30 T3-2026-10-R2");
    EXPECT("SELECT reason FROM billing.documents"
           " WHERE document_no = 'CN-2026-000001'",
           "Statement T3-2026-10-R2 revises T3-2026-10-R1: 1 call arrived "
           "late. Total 42 -> 80 JPY. Replaced by invoice INV-2026-000002.");
    /* The other tenants are unchanged: no document. */
    EXPECT("SELECT count(*) FROM billing.documents WHERE tenant_id <> 'T3'",
           "0");
}

/* A revision whose money is unchanged (a late call rejected, so the
 * statement changes) issues no document: the invoice in force stands. */
static void test_zero_money_change(void)
{
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "INSERT INTO usage.dialout_calls (usage_id, call_id, conference_id,"
        " tenant_id, organizer_id, destination_number, start_time,"
        " duration_seconds) VALUES ('00000000-0000-0000-0003-000000000009',"
        " 'n9', 'nconf9', 'T3', 'kenji@northwind.example', '+999123',"
        " '2026-10-21T02:00:00Z', 60)"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10 --tenant T3"), 0);
    EXPECT("SELECT max(revision) FROM billing.invoices"
           " WHERE tenant_id = 'T3'", "3");
    EXPECT("SELECT count(*) FROM billing.documents WHERE tenant_id = 'T3'",
           "3");
    EXPECT("SELECT documents = '{}' FROM billing.document_decisions"
           " WHERE invoice_no = 'T3-2026-10-R3'", "t");
    /* Deciding again writes nothing and takes no number. */
    EXPECT("SELECT cardinality((billing.issue_documents('T3-2026-10-R3'))"
           ".documents) || ' ' || cardinality((billing.issue_documents("
           "'T3-2026-10-R2')).documents) || ' ' || (SELECT sum(last) FROM"
           " billing.document_numbers)", "0 2 3");
}

/* docs/billing-rules.md 4.2: a held tenant stays held, run after run (the cheap check),
 * while its profile is incomplete, the message naming every missing
 * column; a tax rate under a category other than S holds it too; once
 * complete, the next run issues the documents of the statement in force,
 * without a new revision, with the next numbers. */
static void test_held_then_completed(void)
{
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "INSERT INTO ref.customers (tenant_id, legal_name, country,"
        " tax_category, tax_rate) VALUES ('T1', 'Contoso Ltd', 'US', 'AE',"
        " 0.2000)"), 0);
    /* A tax rate changes money: revision 2, still held. */
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10 --tenant T1"), 0);
    EXPECT("SELECT status || ':' || message FROM billing.run_tenants WHERE"
           " run_id = (SELECT max(run_id) FROM billing.runs)",
           "held:held: no document until the billing profile is complete; "
           "ref.customers lacks address, tax_note, tax_rate (must be 0 "
           "under tax_category AE)");
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "UPDATE ref.customers SET tax_rate = 0, address = E'1 Main St\\n"
        "Seattle WA', tax_note = 'Reverse charge' WHERE tenant_id = 'T1'"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    /* Back to the money of revision 1 (tax 0): revision 3, and its
     * invoice; the numbers go on without a gap. */
    EXPECT("SELECT string_agg(concat_ws(' ', document_no, invoice_no, total,"
           " tax_category, was_held), '; ' ORDER BY seq) FROM"
           " billing.documents WHERE tenant_id = 'T1'",
           "INV-2026-000003 T1-2026-10-R3 5.15 AE f");

    /* Held without a money change of the profile: the profile is
     * emptied and a late call changes money (revision 4, held: no credit
     * note, no invoice, no number, run after run); then the profile is
     * completed (buyer details alone): no revision 5, and the credit note
     * and the new invoice are issued. */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "UPDATE ref.customers SET legal_name = ' ', country = NULL"
        " WHERE tenant_id = 'T1';"
        "INSERT INTO usage.dialout_calls (usage_id, call_id, conference_id,"
        " tenant_id, organizer_id, destination_number, start_time,"
        " duration_seconds) VALUES ('00000000-0000-0000-0001-000000000099',"
        " 'h99', 'hconf99', 'T1', 'bob', '+19005550100',"
        " '2026-10-25T09:00:00Z', 60)"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10 --tenant T1"), 0);
    EXPECT("SELECT status || ':' || message FROM billing.run_tenants WHERE"
           " run_id = (SELECT max(run_id) FROM billing.runs)",
           "held:held: no document until the billing profile is complete; "
           "ref.customers lacks legal_name, country");
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10 --tenant T1"), 0);
    EXPECT("SELECT status FROM billing.run_tenants WHERE run_id ="
           " (SELECT max(run_id) FROM billing.runs)", "held");
    EXPECT("SELECT count(*) || ' ' || (SELECT sum(last) FROM"
           " billing.document_numbers) FROM billing.documents WHERE"
           " tenant_id = 'T1'", "1 4");
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "UPDATE ref.customers SET legal_name = 'Contoso Ltd',"
        " country = 'US' WHERE tenant_id = 'T1'"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10 --tenant T1"), 0);
    EXPECT("SELECT max(revision) FROM billing.invoices WHERE tenant_id ="
           " 'T1'", "4");
    EXPECT("SELECT status || ':' || message FROM billing.run_tenants WHERE"
           " run_id = (SELECT max(run_id) FROM billing.runs)",
           "unchanged:CN-2026-000002 INV-2026-000004");
    EXPECT("SELECT string_agg(concat_ws(' ', document_no, total,"
           " coalesce(voids, '-'), coalesce(replaced_by, '-'),"
           " coalesce((due_date - issue_date)::text, 'no-due-date'),"
           " was_held), '; ' ORDER BY kind, seq) FROM billing.documents"
           " WHERE tenant_id = 'T1' AND invoice_no = 'T1-2026-10-R4'",
           "CN-2026-000002 -5.15 INV-2026-000003 INV-2026-000004 "
           "no-due-date t; INV-2026-000004 6.15 - - 30 t");
    EXPECT("SELECT reason FROM billing.documents"
           " WHERE document_no = 'CN-2026-000002'",
           "Statement T1-2026-10-R4 revises T1-2026-10-R3: 1 call arrived "
           "late. Total 5.15 -> 6.15 USD. Replaced by invoice "
           "INV-2026-000004.");
    EXPECT("SELECT released_at IS NOT NULL FROM billing.document_holds"
           " WHERE invoice_no = 'T1-2026-10-R4'", "t");
    /* Numbers without a gap in each series. */
    EXPECT("SELECT string_agg(series || ' ' || n || ' ' || mx, ', ' ORDER BY"
           " series) FROM (SELECT series, count(*) n, max(seq) mx FROM"
           " billing.documents GROUP BY series) s", "CN- 2 2, INV- 4 4");
}

/* docs/billing-rules.md 4.2: a new total of 0 voids the invoice in force without a
 * replacement (no invoice of 0.00); the reason says why. */
static void test_void_only(void)
{
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "UPDATE usage.dialout_calls SET duration_seconds = -1"
        " WHERE tenant_id = 'T3' AND call_id IN ('n5', 'n7', 'n8')"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10 --tenant T3"), 0);
    EXPECT("SELECT string_agg(concat_ws(' ', document_no, total, voids,"
           " coalesce(replaced_by, '-'), coalesce(due_date::text, '-'),"
           " invoice_no), '; ') FROM billing.documents WHERE tenant_id ="
           " 'T3' AND issued_at > (SELECT max(issued_at) FROM"
           " billing.documents WHERE tenant_id = 'T3' AND kind = 'invoice')",
           "CN-2026-000003 -80 INV-2026-000002 - - T3-2026-10-R4");
    EXPECT("SELECT reason FROM billing.documents"
           " WHERE document_no = 'CN-2026-000003'",
           "Statement T3-2026-10-R4 revises T3-2026-10-R2: 1 call arrived "
           "late; 3 calls changed in the usage data. Total 80 -> 0 JPY. "
           "Voided without replacement: the new total is 0.");
    EXPECT("SELECT total FROM billing.invoices WHERE invoice_no ="
           " 'T3-2026-10-R4'", "0");
}

/* A run that dies between a revision and its documents: the next run
 * issues them, dated when they are really issued, not with the
 * statement's time. */
static void test_killed_between_revision_and_documents(void)
{
    /* The documents' function fails (as if the process died after the
     * revision's commit). */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "ALTER FUNCTION billing.issue_documents(text)"
        " RENAME TO issue_documents_gone;"
        "UPDATE usage.dialout_calls SET duration_seconds = 90"
        " WHERE tenant_id = 'T3' AND call_id = 'n5'"), 0);
    CU_ASSERT_NOT_EQUAL(acbill_run("--period 2026-10 --tenant T3"), 0);
    EXPECT("SELECT count(*) FROM billing.document_decisions WHERE"
           " invoice_no = 'T3-2026-10-R5'", "0");
    /* The statement was issued three days ago, say. */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "ALTER FUNCTION billing.issue_documents_gone(text)"
        " RENAME TO issue_documents;"
        "SET session_replication_role = replica;"
        "UPDATE billing.invoices SET issued_at = issued_at - interval"
        " '3 days' WHERE invoice_no = 'T3-2026-10-R5';"
        "SET session_replication_role = origin"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10 --tenant T3"), 0);
    EXPECT("SELECT concat_ws(' ', d.document_no, d.total,"
           " d.issued_at > i.issued_at + interval '2 days',"
           " d.issue_date = (now() AT TIME ZONE 'Asia/Tokyo')::date,"
           " d.issued_at > now() - interval '1 hour')"
           " FROM billing.documents d JOIN billing.invoices i USING"
           " (invoice_no) WHERE d.invoice_no = 'T3-2026-10-R5'",
           "INV-2026-000005 22 t t t");
}

/* Documents never change. */
static void test_documents_immutable(void)
{
    PGresult *res = PQexec(db, "UPDATE billing.documents SET total = 0"
                           " WHERE document_no = 'INV-2026-000001'");
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
    res = PQexec(db, "DELETE FROM billing.documents"
                 " WHERE document_no = 'CN-2026-000001'");
    CU_ASSERT_EQUAL(PQresultStatus(res), PGRES_FATAL_ERROR);
    PQclear(res);
}

/* A night with nothing new: each tenant-period is a cheap check (its
 * inputs' digest), not a re-rating. */
static void test_unchanged_is_a_cheap_check(void)
{
    char *before = testdb_value(db, "SELECT string_agg(rated_at::text, ','"
                                " ORDER BY tenant_id) FROM"
                                " billing.period_inputs");
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10"), 0);
    char *after = testdb_value(db, "SELECT string_agg(rated_at::text, ','"
                               " ORDER BY tenant_id) FROM"
                               " billing.period_inputs");
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    CU_ASSERT_PTR_NOT_NULL_FATAL(after);
    CU_ASSERT_STRING_EQUAL(before, after);  /* nothing was rated */
    free(before);
    free(after);
    EXPECT("SELECT string_agg(status, ' ' ORDER BY tenant_id) FROM"
           " billing.run_tenants WHERE run_id = (SELECT max(run_id) FROM"
           " billing.runs)", "unchanged unchanged unchanged");
    /* A change that gives the same result (a call outside the period, a
     * licence for nobody) is rated, found unchanged, and remembered. */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "INSERT INTO usage.license_purchases (tenant_id, sku, quantity,"
        " valid_from) VALUES ('T2', 'FOO', 0, '2020-01-01T00:00Z')"), 0);
    CU_ASSERT_EQUAL(acbill_run("--period 2026-10 --tenant T2"), 0);
    EXPECT("SELECT count(*) FROM billing.invoices WHERE tenant_id = 'T2'"
           " AND period = '2026-10-01'", "2");
}

/* docs/billing-rules.md 4.2: before its local end + 48 h a period is drafted: no number,
 * nothing in the ledger but the run's record, the workbook under
 * drafts/, left out of SHA256SUMS. */
static void test_grace_period_draft(void)
{
    char path[512], cmd[600];
    long docs_before = testdb_long(db, "SELECT count(*) FROM"
                                   " billing.documents");
    /* T1 (UTC): November ends 2026-12-01T00:00Z; at 2026-12-02T23:00Z
     * it is in its grace period. */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "INSERT INTO usage.dialout_calls (usage_id, call_id, conference_id,"
        " tenant_id, organizer_id, destination_number, start_time,"
        " duration_seconds) VALUES ('00000000-0000-0000-0001-000000000001',"
        " 'd1', 'dconf1', 'T1', 'bob', '+19005550100',"
        " '2026-11-10T09:00:00Z', 120)"), 0);
    snprintf(cmd, sizeof cmd, "--period 2026-11 --tenant T1 --out %s"
             " --as-of 2026-12-02T23:00Z", out_dir);
    CU_ASSERT_EQUAL(acbill_run(cmd), 0);
    EXPECT("SELECT count(*) FROM billing.invoices WHERE period ="
           " '2026-11-01'", "0");
    CU_ASSERT_EQUAL(testdb_long(db, "SELECT count(*) FROM"
                                " billing.documents"), docs_before);
    EXPECT("SELECT status || ': ' || message FROM billing.run_tenants"
           " WHERE run_id = (SELECT max(run_id) FROM billing.runs)",
           "draft: in its grace period until 2026-12-03 00:00 UTC: "
           "drafted, not issued");
    snprintf(path, sizeof path, "%s/2026-11/drafts/T1-2026-11-DRAFT.xlsx",
             out_dir);
    struct stat st;
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT(st.st_size > 0);
    /* Drafts are not listed in SHA256SUMS. */
    CU_ASSERT_EQUAL(test_system("! grep -q DRAFT %s/2026-11/SHA256SUMS",
                                out_dir), 0);
    /* Past the grace period, the same period is issued. */
    snprintf(cmd, sizeof cmd, "--period 2026-11 --tenant T1 --out %s"
             " --as-of 2026-12-03T00:00Z", out_dir);
    CU_ASSERT_EQUAL(acbill_run(cmd), 0);
    EXPECT("SELECT invoice_no || ' ' || total FROM billing.invoices"
           " WHERE period = '2026-11-01'", "T1-2026-11-R1 2.00");
    test_system("rm -rf %s", out_dir);
}

/* Without --period, a run covers lookback_months before this month up to
 * this month: the ended ones past grace are issued, the rest drafted. */
static void test_nightly_periods(void)
{
    char p[8][8];
    /* 2026-12-05: September to December. */
    CU_ASSERT_EQUAL(run_open_periods(1796428800, 3, p, 8), 4);
    CU_ASSERT_STRING_EQUAL(p[0], "2026-09");
    CU_ASSERT_STRING_EQUAL(p[3], "2026-12");
    /* January looks back into the year before. */
    CU_ASSERT_EQUAL(run_open_periods(1799107200, 1, p, 8), 2);
    CU_ASSERT_STRING_EQUAL(p[0], "2026-12");
    CU_ASSERT_STRING_EQUAL(p[1], "2027-01");

    CU_ASSERT_EQUAL(testdb_exec(db, "UPDATE ref.operator SET"
                                " lookback_months = 2"), 0);
    CU_ASSERT_EQUAL(acbill_run("--tenant T2 --as-of 2026-12-05T12:00Z"), 0);
    EXPECT("SELECT string_agg(to_char(r.period, 'YYYY-MM') || ':' ||"
           " t.status, ' ' ORDER BY r.period) FROM billing.runs r JOIN"
           " billing.run_tenants t USING (run_id) WHERE t.tenant_id = 'T2'"
           " AND r.run_id > (SELECT max(run_id) - 3 FROM billing.runs)",
           "2026-10:unchanged 2026-11:issued 2026-12:no_usage");
    /* A month the tenant did not use takes no number and keeps nothing. */
    EXPECT("SELECT count(*) FROM billing.invoices WHERE tenant_id = 'T2'"
           " AND period = '2026-12-01'", "0");
}

/* The stdout of a shell command (malloc'd, trailing newline cut), or
 * NULL. */
static char *command_output(const char *cmd)
{
    char *out = malloc(65536);
    size_t n = 0, got;
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    if (p == NULL || out == NULL) {
        if (p != NULL)
            pclose(p);
        free(out);
        return NULL;
    }
    while (n < 65535 && (got = fread(out + n, 1, 65535 - n, p)) > 0)
        n += got;
    out[n] = '\0';
    if (pclose(p) != 0) {
        free(out);
        return NULL;
    }
    while (n > 0 && out[n - 1] == '\n')
        out[--n] = '\0';
    return out;
}

/* docs/billing-rules.md 4.5: the sales journal of the month of issue, as a workbook and
 * an RFC 4180 CSV: every document issued that month, one row each; totals
 * that re-add; rewritten with more rows when more documents are issued,
 * the earlier rows unchanged; byte-identical from the same ledger; in
 * SHA256SUMS; queued for upload once per content. */
static void test_sales_journal(void)
{
    char month[8], dir[512], args[1024], cmd[2048], path[600], csv[600];
    char *m = testdb_value(db, "SELECT to_char(now(), 'YYYY-MM')");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    snprintf(month, sizeof month, "%s", m);
    free(m);
    snprintf(dir, sizeof dir, "%s/%s", out_dir, month);
    snprintf(path, sizeof path, "%s/journal-%s.xlsx", dir, month);
    snprintf(csv, sizeof csv, "%s/journal-%s.csv", dir, month);
    snprintf(args, sizeof args, "--period 2026-10 --out %s --upload-url"
             " file://%s-up", out_dir, out_dir);
    test_system("mkdir -p %s-up", out_dir);

    /* A buyer name with quotes and a comma, on new documents of T3. */
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "UPDATE ref.customers SET legal_name = 'Northwind \"KK\", Tokyo'"
        " WHERE tenant_id = 'T3';"
        "INSERT INTO usage.dialout_calls (usage_id, call_id, conference_id,"
        " tenant_id, organizer_id, destination_number, start_time,"
        " duration_seconds) VALUES ('00000000-0000-0000-0003-000000000010',"
        " 'n10', 'nconf10', 'T3', 'kenji@northwind.example',"
        " '+449091234567', '2026-10-22T02:00:00Z', 600)"), 0);
    CU_ASSERT_EQUAL(acbill_run(args), 0);
    long docs = testdb_long(db, "SELECT count(*) FROM billing.documents"
                            " WHERE to_char(issue_date, 'YYYY-MM') ="
                            " to_char(now(), 'YYYY-MM')");
    CU_ASSERT(docs >= 10);
    /* One header line, one row per document, CRLF line ends. */
    snprintf(cmd, sizeof cmd, "python3 -c \"import sys; d = open('%s',"
             " 'rb').read(); print(d.count(b'\\n'), d.count(b'\\r\\n'),"
             " d.endswith(b'\\r\\n'))\"", csv);
    char *lines = command_output(cmd);
    char want[64];
    snprintf(want, sizeof want, "%ld %ld True", docs + 1, docs + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lines);
    CU_ASSERT_STRING_EQUAL(lines, want);
    free(lines);
    CU_ASSERT_EQUAL(test_system("head -n 1 %s | grep -qx '\"line\",\"issue_date"
        "\",\"document_no\",\"kind\",\"tenant_id\",\"buyer\",\"buyer_tax_id\","
        "\"period\",\"currency\",\"tax_category\",\"tax_rate_percent\","
        "\"net\",\"tax\",\"gross\",\"due_date\",\"voids\",\"replaced_by\""
        "'\"$(printf '\\r')\"", csv), 0);
    /* Text quoted, quotes doubled; numbers plain; no due date on a
     * credit note: 20 JPY + 10 %% voided, 120 + 12 issued (10 more
     * minutes to a GB premium number at 10 JPY). */
    CU_ASSERT_EQUAL(test_system("grep -Eq '^[0-9]+,\"[0-9-]{10}\","
        "\"CN-2026-[0-9]{6}\",\"credit_note\",\"T3\",\"Northwind \"\"KK\"\","
        " Tokyo\",,\"2026-10\",\"JPY\",\"S\",10,-20,-2,-22,,"
        "\"INV-2026-[0-9]{6}\",\"INV-2026-[0-9]{6}\"' %s", csv), 0);
    CU_ASSERT_EQUAL(test_system("grep -Eq ',\"invoice\",\"T3\",\"Northwind "
        "\"\"KK\"\", Tokyo\",,\"2026-10\",\"JPY\",\"S\",10,120,12,132,"
        "\"[0-9-]{10}\",,' %s", csv), 0);
    /* The workbook's totals: per currency and per category and rate,
     * exactly the ledger's sums (the category rows re-add to the
     * currency's). */
    char *want_totals = testdb_value(db,
        "SELECT string_agg(concat_ws(E'\\t', currency, coalesce(cat, 'all'),"
        " coalesce(trim_scale(rate * 100)::text, ''), n, ncn,"
        " trim_scale(net), trim_scale(tax), trim_scale(gross)), E'\\n'"
        " ORDER BY currency, cat NULLS FIRST, rate) FROM (SELECT currency,"
        " tax_category AS cat, tax_rate AS rate, count(*) AS n,"
        " count(*) FILTER (WHERE kind = 'credit_note') AS ncn,"
        " sum(subtotal) AS net, sum(tax) AS tax, sum(total) AS gross"
        " FROM billing.documents WHERE to_char(issue_date, 'YYYY-MM') ="
        " to_char(now(), 'YYYY-MM') GROUP BY GROUPING SETS ((currency),"
        " (currency, tax_category, tax_rate))) t");
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/xlsx_read.py' rows"
             " %s Totals | tail -n +2", test_src_dir(), path);
    char *totals = command_output(cmd);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want_totals);
    CU_ASSERT_PTR_NOT_NULL_FATAL(totals);
    CU_ASSERT_STRING_EQUAL(totals, want_totals);
    EXPECT("SELECT bool_and(a.net = c.net AND a.tax = c.tax) FROM"
           " (SELECT currency, sum(subtotal) net, sum(tax) tax FROM"
           " billing.documents GROUP BY currency) a JOIN (SELECT currency,"
           " sum(net) net, sum(tax) tax FROM (SELECT currency, tax_category,"
           " tax_rate, sum(subtotal) net, sum(tax) tax FROM billing.documents"
           " GROUP BY 1, 2, 3) x GROUP BY currency) c USING (currency)", "t");
    free(want_totals);
    free(totals);
    /* Listed in SHA256SUMS; queued for upload once. */
    CU_ASSERT_EQUAL(test_system("cd %s && grep -q ' journal-%s.csv$'"
                                " SHA256SUMS && grep -q ' journal-%s.xlsx$'"
                                " SHA256SUMS && sha256sum --quiet -c"
                                " SHA256SUMS", dir, month, month), 0);
    EXPECT("SELECT count(*) FROM billing.uploads WHERE file_name LIKE"
           " 'journal-%'", "2");

    /* The same ledger gives the same bytes. */
    snprintf(cmd, sizeof cmd, "%s/again.xlsx", out_dir);
    char again_csv[600];
    snprintf(again_csv, sizeof again_csv, "%s/again.csv", out_dir);
    char err[AC_ERR_MAX];
    CU_ASSERT_EQUAL(report_journal(db, month, cmd, again_csv, err), AC_OK);
    CU_ASSERT_EQUAL(test_system("cmp -s %s %s && cmp -s %s %s", cmd, path,
                                again_csv, csv), 0);
    test_system("rm -f %s %s", cmd, again_csv);

    /* Nothing new: nothing written, nothing queued. */
    CU_ASSERT_EQUAL(acbill_run(args), 0);
    EXPECT("SELECT count(*) FROM billing.uploads WHERE file_name LIKE"
           " 'journal-%'", "2");
    /* More documents in the month: the journal is rewritten, its earlier
     * rows unchanged and first, queued again. */
    test_system("cp %s %s/before.csv", csv, out_dir);
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "INSERT INTO usage.dialout_calls (usage_id, call_id, conference_id,"
        " tenant_id, organizer_id, destination_number, start_time,"
        " duration_seconds) VALUES ('00000000-0000-0000-0001-000000000098',"
        " 'j98', 'jconf98', 'T1', 'bob', '+19005550100',"
        " '2026-10-26T09:00:00Z', 60)"), 0);
    CU_ASSERT_EQUAL(acbill_run(args), 0);
    CU_ASSERT_EQUAL(test_system("cmp -s -n $(stat -c %%s %s/before.csv)"
                                " %s/before.csv %s", out_dir, out_dir, csv),
                    0);
    CU_ASSERT_EQUAL(test_system("test $(wc -l < %s) -eq $(($(wc -l < "
                                "%s/before.csv) + 2))", csv, out_dir), 0);
    EXPECT("SELECT count(*) FROM billing.uploads WHERE file_name LIKE"
           " 'journal-%'", "4");
    test_system("rm -rf %s %s-up", out_dir, out_dir);
}

/* docs/billing-rules.md 4.3: no number shows as ### at the default column widths: a JPY
 * invoice whose line's exact amount has six digits (133,360.0000 JPY),
 * in every sheet of its workbook and of the finance summary. */
static void test_no_hashes_jpy(void)
{
    char args[600], cmd[1200];
    CU_ASSERT_EQUAL_FATAL(testdb_exec(db,
        "INSERT INTO usage.tenants (tenant_id, name, currency, time_zone)"
        " VALUES ('T9', 'Kyoto Trading KK', 'JPY', 'Asia/Tokyo');"
        "INSERT INTO usage.license_purchases (tenant_id, sku, quantity,"
        " valid_from) VALUES ('T9', 'MCOMEETADV', 1, '2026-01-01T00:00Z');"
        "INSERT INTO usage.license_assignments (tenant_id, user_id, sku,"
        " valid_from) VALUES ('T9', 'aiko', 'MCOMEETADV',"
        " '2026-01-01T00:00Z');"
        "INSERT INTO ref.customers (tenant_id, legal_name, address, country,"
        " tax_rate) VALUES ('T9', 'Kyoto Trading KK', E'1 Karasuma\\nKyoto',"
        " 'JP', 0.1000);"
        "INSERT INTO usage.dialout_calls (usage_id, call_id, conference_id,"
        " tenant_id, organizer_id, destination_number, start_time,"
        " duration_seconds) SELECT ('00000000-0000-0000-0009-00000000000'"
        " || i)::uuid, 'k' || i, 'kc' || i, 'T9', 'aiko', '+449091234567',"
        " '2026-10-10T00:00:00Z'::timestamptz + i * interval '1 day', 100000"
        " FROM generate_series(1, 8) AS i"), 0);
    snprintf(args, sizeof args, "--period 2026-10 --tenant T9 --out %s",
             out_dir);
    CU_ASSERT_EQUAL(acbill_run(args), 0);
    /* 8 calls of 1,667 minutes at 10 JPY: 133,360 JPY, tax 13,336. */
    EXPECT("SELECT concat_ws(' ', l.exact_amount, i.subtotal, i.tax,"
           " i.total) FROM billing.invoices i JOIN billing.invoice_lines l"
           " USING (invoice_no) WHERE i.tenant_id = 'T9'",
           "133360.0000 133360 13336 146696");
    static const char *const sheets[][2] = {
        { "T9-2026-10-R1.xlsx", "Summary" },
        { "T9-2026-10-R1.xlsx", "Calls" },
        { "T9-2026-10-R1.xlsx", "Organizers" },
        { "finance-summary-2026-10.xlsx", "Tenants" },
        { "finance-summary-2026-10.xlsx", "Documents" },
        { "finance-summary-2026-10.xlsx", "Totals" },
    };
    for (size_t k = 0; k < sizeof sheets / sizeof *sheets; k++) {
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/xlsx_read.py'"
                 " overflow %s/2026-10/%s %s", test_src_dir(), out_dir,
                 sheets[k][0], sheets[k][1]);
        char *out = command_output(cmd);
        CU_ASSERT_PTR_NOT_NULL(out);
        if (out != NULL && *out != '\0')
            fprintf(stderr, "\n%s %s: ### in %s\n", sheets[k][0],
                    sheets[k][1], out);
        CU_ASSERT(out != NULL && *out == '\0');
        free(out);
    }
    test_system("rm -rf %s", out_dir);
}

/* The label's value on the Summary of workbook path (xlsx_read.py). */
static char *summary_label(const char *path, const char *label)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/xlsx_read.py'"
             " label '%s' Summary '%s' | cut -f 3", test_src_dir(), path,
             label);
    return command_output(cmd);
}

/* The workbooks of the document rules: a held statement says why it has
 * no invoice (and says so again when written after its invoice was
 * issued: byte for byte the same); the invoice issued later has a
 * workbook of its own with its header; a zero total says there is
 * nothing to pay. */
static void test_document_workbooks(void)
{
    char path[600], again[600], inv[600], err[AC_ERR_MAX];
    snprintf(path, sizeof path, "%s-held.xlsx", out_dir);
    snprintf(again, sizeof again, "%s-again.xlsx", out_dir);
    snprintf(inv, sizeof inv, "%s-inv.xlsx", out_dir);
    CU_ASSERT_EQUAL(report_invoice_workbook(db, "T1-2026-10-R4", path, err),
                    AC_OK);
    char *v = summary_label(path, "Documents");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v, "held: no document until the billing profile "
                           "is complete; ref.customers lacks legal_name, "
                           "country");
    free(v);
    v = summary_label(path, "Document type");
    CU_ASSERT_STRING_EQUAL(v ? v : "", "Usage statement (not an invoice)");
    free(v);
    CU_ASSERT_EQUAL(report_invoice_workbook(db, "T1-2026-10-R4", again, err),
                    AC_OK);
    CU_ASSERT_EQUAL(test_system("cmp -s %s %s", path, again), 0);
    /* The invoice issued once the profile was complete. */
    report_invoice_options o = { .document_no = "INV-2026-000004" };
    CU_ASSERT_EQUAL(report_invoice_workbook_opt(db, "T1-2026-10-R4", inv, &o,
                                                err), AC_OK);
    v = summary_label(inv, "Document number");
    CU_ASSERT_STRING_EQUAL(v ? v : "", "INV-2026-000004");
    free(v);
    v = summary_label(inv, "Replaces");
    CU_ASSERT(v != NULL && strstr(v, "INV-2026-000003") != NULL &&
              strstr(v, "CN-2026-000002") != NULL);
    free(v);
    /* Fabrikam: 0.00 EUR, no invoice. */
    CU_ASSERT_EQUAL(report_invoice_workbook(db, "T2-2026-10-R1", path, err),
                    AC_OK);
    v = summary_label(path, "Documents");
    CU_ASSERT_STRING_EQUAL(v ? v : "", "Nothing to pay: the total is 0, so "
                           "no invoice is issued");
    free(v);
    test_system("rm -f %s %s %s", path, again, inv);
}

CU_ErrorCode tests_register(void)
{
    static CU_TestInfo docs[] = {
        { "revision 1: invoice, held, zero; gapless", test_first_invoices },
        { "no complete seller: 78, nothing issued", test_no_seller },
        { "money changes: credit note and new invoice",
          test_void_and_replace },
        { "money unchanged: no document", test_zero_money_change },
        { "held, then completed: documents without a new revision",
          test_held_then_completed },
        { "a new total of 0: void without replacement", test_void_only },
        { "workbooks: held, issued later, nothing to pay",
          test_document_workbooks },
        { "killed between revision and documents: dated when issued",
          test_killed_between_revision_and_documents },
        { "documents are immutable", test_documents_immutable },
        { "nothing new: a cheap check", test_unchanged_is_a_cheap_check },
        { "grace period: a draft, then the invoice",
          test_grace_period_draft },
        { "without --period: the open periods", test_nightly_periods },
        { "sales journal: rows, CSV, totals, rewrites",
          test_sales_journal },
        { "no ### at default widths: a six-digit JPY amount",
          test_no_hashes_jpy },
        CU_TEST_INFO_NULL
    };
    static CU_SuiteInfo suites[] = {
        { "financial documents", documents_init, suite_clean, NULL, NULL,
          docs },
        CU_SUITE_INFO_NULL
    };
    return CU_register_suites(suites);
}
