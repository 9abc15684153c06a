/* reconciliation.h: reconciliation-<YYYY-MM>.xlsx, acbill's billing
 * against Microsoft's Partner Center charges (SPEC version 3, section 7).
 *
 * Sheets: Reconciliation (one row per tenant and currency, then the
 * totals per currency) and Findings.  Read from usage.partner_charges,
 * usage.partner_usage (imported by `acbill import partner-*` or
 * `acbill pull partner`), ref.customers.entra_tenant_id,
 * ref.partner_products + ref.sku_entitlements.pool_scope, the latest
 * billing.invoices revision of each tenant's period (seats, usca_seats
 * where the column exists) and billing.documents.  Every figure is summed
 * by PostgreSQL in exact numeric; the totals are sums of the rows' exact
 * figures.  The rules (docs/reconciliation.md):
 *   - a charge belongs to the period of its ChargeStartDate, a usage row
 *     to that of its UsageDate (UTC);
 *   - a CustomerId is a tenant's when it equals ref.customers.
 *     entra_tenant_id as a GUID (any case);
 *   - seats charged: per pool (the pool_scope of the SKU a Partner Center
 *     product maps to), the net BillableQuantity of the period's lines of
 *     those products: new, renew, cycleCharge, addQuantity add,
 *     removeQuantity subtracts, other charge types carry no seats; seats
 *     counted: the statement's seats (Zone A) and usca_seats (US/CA);
 *   - licence cost: Subtotal of the lines of products in
 *     ref.partner_products (credits included); overage cost:
 *     BillingPreTaxTotal of usage rows of resource group M365; each in the
 *     currency Microsoft billed it in;
 *   - revenue: subtotals of the period's invoices minus its credit notes;
 *     margin = revenue - cost, margin share = margin / revenue (blank when
 *     revenue is 0).
 * Findings: PARTNER_CUSTOMER_UNKNOWN, SEATS_DIFFER (once per tenant with
 * Partner Center lines in the period), COST_WITHOUT_REVENUE (overage cost
 * and no revenue in any currency), NEGATIVE_MARGIN (revenue > 0, margin
 * < 0), CURRENCY_DIFFERS (Microsoft's currency is not the tenant's).
 *
 * Like report.h: never begins or commits (it writes only a session table
 * of its own, pg_temp.recon_usage: the usage summed once), deterministic
 * output (created date: the first day after the period), constant_memory,
 * printable (landscape, one page wide, header row repeated). */
#ifndef AC_RECONCILIATION_H
#define AC_RECONCILIATION_H

#include <libpq-fe.h>

#include "status.h"

/* Counts of what a workbook showed. */
typedef struct {
    long long rows;         /* tenant-and-currency rows */
    long long findings;
} recon_counts;

/* Write the workbook of period ('YYYY-MM') to path (replaced when it
 * exists; its directory holds the temporary files).  *n (may be NULL)
 * receives the counts.  AC_EUSAGE for a bad period, the database's status
 * when a query fails, AC_ECANTCREAT / AC_EINTERNAL as report.h; on
 * failure the partial file is removed. */
ac_status report_reconciliation(PGconn *conn, const char *period,
                                const char *path, recon_counts *n,
                                char *err);

/* 1 when period ('YYYY-MM') has imported Partner Center charges or usage,
 * 0 when not, -1 on a database error (message in err). */
int report_reconciliation_has_data(PGconn *conn, const char *period,
                                   char *err);

#endif
