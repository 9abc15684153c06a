/* bill.h: bill one tenant's period, from usage.* to billing.*.
 *
 * bill_tenant() is the unit of work of a run: in one REPEATABLE READ
 * transaction it reads the tenant's licences and streams its calls of the
 * period (single-row mode, in (start_time, usage_id) order) through the
 * rating engine into a spool file, then either finds the result identical
 * to the latest issued revision (nothing is written) or issues revision
 * n+1: invoice, lines, rated calls (COPY from the spool), findings, checks
 * conservation again in SQL, and commits; then hands the invoice and its
 * spool to the publisher, which writes the workbook (publish.h).
 * A tenant that fails commits nothing. */
#ifndef AC_BILL_H
#define AC_BILL_H

#include <libpq-fe.h>
#include <stdint.h>

#include "deliver/publish.h"
#include "rate/rating.h"
#include "status.h"

typedef struct {
    const rating_ref *ref;      /* destinations, zones, rates */
    char period[8];             /* "YYYY-MM" */
    char period_date[11];       /* "YYYY-MM-01" */
    int32_t fair_use_minutes;
    long long run_id;
    publisher *pub;             /* writes the workbooks; NULL: none */
    const char *spool_dir;      /* the output directory (NULL: no --out) */
    const char *as_of;          /* "now" for the grace period, as a
                                   timestamptz text; NULL: the clock */
} bill_context;

typedef struct {
    const char *tenant_id;
    const char *name;
    const char *currency;
    const char *time_zone;
} bill_tenant_info;

/* ISSUED: a new statement revision (and its documents) was committed;
 * UNCHANGED: the latest revision stands (its inputs, or its result, are
 * the same); DRAFT: the period is still in its grace period (docs/billing-rules.md 4.2):
 * rated and drafted, nothing kept in the ledger; NO_USAGE: the tenant has
 * no call in the period and no statement of it: nothing to bill, no
 * number taken (a nightly run looks back over months a new tenant did
 * not use). */
typedef enum {
    BILL_ISSUED, BILL_UNCHANGED, BILL_DRAFT, BILL_NO_USAGE
} bill_outcome;

typedef struct {
    bill_outcome outcome;
    char invoice_no[128];       /* issued, or the latest when unchanged */
    int revision;
    int32_t calls;
    char total[32];             /* "5.15" */
    char documents[160];        /* issued document numbers, space
                                   separated ("CN-2026-000001
                                   INV-2026-000002"); "" when none */
    char fresh[160];            /* the documents this call wrote (a
                                   held statement's, issued once its
                                   profile is complete, on the unchanged
                                   path); "" when none */
    char held[512];             /* docs/billing-rules.md 4.2: the statement needs
                                   documents but the buyer's profile is
                                   incomplete: why, naming the missing
                                   ref.customers columns; "" when not
                                   held */
    char draft_path[4096];      /* BILL_DRAFT with --out: the draft
                                   workbook written, else "" */
} bill_result;

/* Bill one tenant's period on conn (no transaction open).  On success the
 * tenant's revision is committed (or nothing changed) and recorded in
 * billing.run_tenants.  On failure nothing of the tenant is committed,
 * err says why ("tenant T1, period 2026-10: ..."), and the status is
 * AC_EDATA for bad data or a failed check, AC_EUNAVAIL when the database
 * went away. */
ac_status bill_tenant(PGconn *conn, const bill_context *ctx,
                      const bill_tenant_info *tenant, bill_result *result,
                      char *err);

/* Load the reference data the run rates with (ref.destinations, the
 * Zone A countries of ref.zones, ref.rates of every price plan) into ref,
 * a new
 * rating_ref_new().  AC_EDATA with the reason in err when a row cannot be
 * used, AC_EUNAVAIL when the database went away. */
ac_status bill_load_reference(PGconn *conn, rating_ref *ref, char *err);

/* The entitlements bill_tenant() rates the tenant's period with, read on
 * conn in the caller's transaction (if any) by the same queries: the
 * licence assignments in force during the period (*licences, the
 * caller's to rating_licences_free()) and the two pools, 60 minutes per
 * seat (*pool_minutes: the Zone A pool; *usca_pool_minutes: the US/CA
 * pool, docs/billing-rules.md 3 version 3).  Uses ctx->period_date and the tenant's id and time
 * zone.  Lets `acbill sample` give its provider charges acbill's own
 * amounts.  On failure nothing is returned, and err says why. */
ac_status bill_entitlements(PGconn *conn, const bill_context *ctx,
                            const bill_tenant_info *tenant,
                            rating_licences **licences,
                            int32_t *pool_minutes,
                            int32_t *usca_pool_minutes, char *err);

/* Write the invoice number of (tenant_id, period "YYYY-MM", revision) into
 * out (len >= 96): "<tenant>-<YYYY-MM>-R<n>", where <tenant> is the tenant
 * id when it is made only of [A-Za-z0-9_.-] (not starting with '.' or
 * '-') and at most 40 characters, else a cleaned, shortened id followed by
 * '_' and 8 hex digits of its SHA-256.  Safe as a file name, and distinct
 * for distinct tenants. */
void bill_invoice_no(const char *tenant_id, const char *period, int revision,
                     char *out, size_t len);

#endif
