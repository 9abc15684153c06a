/* sample.h: reproducible sample data for the demo, the tests and the
 * benchmarks (`acbill sample`).
 *
 * sample_load() fills an already migrated database with N sample tenants
 * (ids S00001, S00002, ...), their licence purchases and assignments, the
 * ref.rates their currencies need, and M dial-out calls in one period.
 * Everything comes from a small seeded PRNG (splitmix64 + xoshiro256**),
 * never from rand() or the clock, so the same (period, tenants, calls,
 * seed) gives byte-identical rows every time, on any machine (the local
 * month's bounds come from the server's time zone data).
 *
 * The data is meant to exercise the rating rules: uneven tenant sizes,
 * several time zones and currencies, mid-month licence changes and
 * assignments, calls to Zone A, +1 Caribbean (Jamaica), Puerto Rico,
 * toll-free, premium and non-Zone-A numbers, a few calls just outside the
 * local month, and about 0.5% bad rows (null or negative duration,
 * malformed numbers, null organizer, unknown prefixes, unlicensed
 * organizers).  Tenant names include hostile ones (a spreadsheet formula,
 * a path, non-ASCII UTF-8, quotes, a tab and a backslash).
 *
 * Each call's provider_charge is what acbill bills for it (rated with
 * acbill's own engine, pool and add-on included), apart from a seeded 1%
 * to 2% of deliberate differences that the invoice's Reconciliation
 * sheet lists (SAMPLE_DIFF_*).
 *
 * Rows are streamed with COPY through a fixed 64 KiB buffer inside one
 * transaction, so a failure leaves the database as it was.  One tenant's
 * calls are held in memory while they are rated (72 bytes a call: some
 * 47 MB for the 650,000-call tenant of a 5,000,000-call sample); memory
 * does not otherwise grow with the number of calls or tenants. */
#ifndef AC_SAMPLE_H
#define AC_SAMPLE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "status.h"

/* Limits checked by sample_load() (and by `acbill sample` as usage
 * errors). */
#define SAMPLE_MAX_TENANTS 99999L          /* ids stay S + 5 digits */
#define SAMPLE_MAX_CALLS   1000000000LL
#define SAMPLE_MIN_YEAR    2001            /* rates are valid from 2000 */
#define SAMPLE_MAX_YEAR    9998

/* Every sample rate is valid from this instant (open-ended), well before
 * any period sample accepts, so loads for different periods share them. */
#define SAMPLE_RATES_FROM  "2000-01-01 00:00:00+00"

typedef struct {
    int year;            /* the period, SAMPLE_MIN_YEAR..SAMPLE_MAX_YEAR */
    int month;           /* 1..12 */
    long tenants;        /* N, 1..SAMPLE_MAX_TENANTS */
    long long calls;     /* M in total, 0..SAMPLE_MAX_CALLS */
    uint64_t seed;       /* any value; the default of the command is 1 */
    int replace;         /* non-zero: delete earlier sample tenants first */
    long slice_calls;    /* a tenant with more calls is generated in time
                            slices of about this many (memory); 0: 65,536.
                            The data does not depend on it. */
} sample_options;

/* The deliberate differences between a call's provider_charge and the
 * amount acbill bills for it (see sample.c), by the cause finance would
 * name. */
enum {
    SAMPLE_DIFF_POOL,       /* a pool (or split) call charged in full */
    SAMPLE_DIFF_EXEMPT,     /* an add-on exempt US/Canada call charged */
    SAMPLE_DIFF_OFF,        /* a billed call a little off (1% to 3%) */
    SAMPLE_DIFF_WRONG,      /* deliberately wrong: amount x 3 + 1.00 */
    SAMPLE_DIFF_KINDS
};

typedef struct {
    long tenants;            /* tenants inserted */
    long purchases;          /* usage.license_purchases rows inserted */
    long assignments;        /* usage.license_assignments rows inserted */
    long rates_added;        /* ref.rates rows inserted (0 when present) */
    long replaced_tenants;   /* earlier sample tenants deleted */
    long long calls;         /* usage.dialout_calls rows inserted */
    long long bad_calls;     /* of which deliberately bad rows */
    long long outside_calls; /* of which start outside the local month */
    long long charged_calls; /* of which carry a provider_charge */
    long long duplicate_calls; /* exported twice (docs/billing-rules.md 3, DUPLICATE) */
    long long compared_calls;/* of which the Reconciliation sheet
                                compares: in the period, not rejected,
                                charged in the invoice currency */
    long long differing[SAMPLE_DIFF_KINDS]; /* of which differ on purpose,
                                by cause */
    double seconds;          /* wall time of the load */
} sample_stats;

/* Parse a period "YYYY-MM" (exactly that form, month 01..12, year
 * SAMPLE_MIN_YEAR..SAMPLE_MAX_YEAR) into *year and *month.  On failure
 * returns AC_EUSAGE with the reason in err and leaves the outputs
 * untouched. */
ac_status sample_parse_period(const char *text, int *year, int *month,
                              char *err);

/* Load the sample described by opt into the database of conn, which must
 * be migrated (`acbill migrate`; otherwise AC_ECONFIG) and not inside a
 * transaction.  Sample tenants are those whose id is "S" followed by five
 * or more digits.  When some already exist the load fails with AC_EDATA,
 * unless opt->replace is set: then their calls, assignments, purchases
 * and tenant rows are deleted first (their billing.* history is kept).
 * ref.rates rows are added per (currency, prefix, SAMPLE_RATES_FROM) only
 * where none exists, so earlier and operator rates are never changed.
 * Everything happens in one transaction: on any failure nothing is
 * changed and the reason is in err (AC_EUSAGE for options out of range,
 * AC_EUNAVAIL for a lost connection, AC_EINTERNAL for other server
 * errors).  After the commit the loaded tables are ANALYZEd (a failure
 * there is only a warning).  stats may be NULL; when given it is filled
 * on success. */
ac_status sample_load(PGconn *conn, const sample_options *opt,
                      sample_stats *stats, char *err);

#endif
