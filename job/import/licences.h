/* licences.h: licence snapshots into intervals (docs/billing-rules.md 6).
 *
 * Graph keeps no licence history: `subscribedSkus` and the users'
 * `assignedLicenses` say what a tenant holds now.  A snapshot taken at an
 * instant `at` becomes intervals in usage.license_purchases (per
 * skuPartNumber, quantity = prepaidUnits.enabled + prepaidUnits.warning)
 * and usage.license_assignments (per user id and skuPartNumber; a user's
 * skuId is named through the SKU snapshot):
 *
 *   - a SKU or assignment not held before opens an interval [at, open);
 *   - a SKU whose quantity changed closes its open interval at `at` and
 *     opens one with the new quantity (none when it dropped to 0);
 *   - a SKU or assignment held before and missing now is closed at `at`;
 *   - an unchanged snapshot changes nothing (the import is idempotent).
 *
 * Only intervals opened by earlier snapshots (import_id not null) are
 * compared and closed: rows the operator entered by hand stay as they
 * are.  A snapshot older than the tenant's latest one is refused (history
 * is not rewritten); one at the same instant replaces that snapshot's
 * intervals.  The users' UPN and display name go into usage.users.
 *
 * Row counts: for the SKU file a row is one element of its `value` array
 * (elements with the same skuPartNumber add up; the first one carries the
 * outcome), for the users file one assigned licence of one user (a user
 * element that cannot be read counts as one rejected row).  `closed`
 * counts the intervals closed. */
#ifndef AC_LICENCES_H
#define AC_LICENCES_H

#include <libpq-fe.h>
#include <stddef.h>

#include "status.h"

typedef struct licsnap licsnap;

typedef struct {
    long long import_id;
    long long read, inserted, updated, unchanged, rejected, closed;
} licence_counts;

/* Start a snapshot for tenant at `at` (an ISO 8601 timestamp): BEGIN, two
 * usage.imports rows (sources licences-skus and licences-users, with the
 * given file names) and empty staging tables.  conn must be idle.
 * AC_EDATA for an unknown tenant or a bad `at`; database errors as db.h.
 * On failure nothing is left open. */
ac_status licences_begin(PGconn *conn, const char *tenant, const char *at,
                         const char *skus_name, const char *users_name,
                         licsnap **out, char *err);

/* Add a subscribedSkus response (JSON text, len bytes; the object with
 * its `value` array, or the bare array) or one page of users
 * (`id`, `userPrincipalName`, `displayName`, `assignedLicenses`).  *next
 * (may be NULL) receives the page's @odata.nextLink, malloc'd, or NULL.
 * The JSON is parsed by PostgreSQL in a savepoint: AC_EDATA with the
 * reason when it is not such a document (the snapshot can still be
 * aborted). */
ac_status licences_add_skus(licsnap *s, const char *json, size_t len,
                            char *err);
ac_status licences_add_users(licsnap *s, const char *json, size_t len,
                             char **next, char *err);

/* Compare with the intervals in force, write the changes, record the
 * counts and the SHA-256 of each input (64 hex digits) and COMMIT.
 * *skus and *users receive the counts.  AC_EDATA (nothing written, the
 * refusal recorded) when `at` is older than the tenant's latest snapshot.
 * Frees s in every case. */
ac_status licences_finish(licsnap *s, const char *skus_sha256,
                          const char *users_sha256, licence_counts *skus,
                          licence_counts *users, char *err);

/* Give up: roll back, record both files as refused with reason, free s. */
void licences_abort(licsnap *s, const char *skus_sha256,
                    const char *users_sha256, const char *reason);

#endif
