/* run.h: one billing run over a period (`acbill run`).
 *
 * A run takes the run lock, loads the reference data once, bills each
 * tenant in its own transaction (bill.h), writes the period's finance
 * summary and SHA256SUMS when asked for workbooks, and records itself in
 * billing.runs.  A tenant that fails is recorded and skipped; the others
 * go on. */
#ifndef AC_RUN_H
#define AC_RUN_H

#include <stdint.h>

#include "status.h"
#include "deliver/upload.h"

#define RUN_MAX_TENANT_ARGS 256
#define RUN_MAX_WORKERS 64

typedef struct {
    const char *conninfo;       /* NULL: libpq defaults */
    char period[8];             /* "YYYY-MM" */
    const char *tenants[RUN_MAX_TENANT_ARGS]; /* --tenant, or none: all */
    int ntenants;
    const char *out_dir;        /* NULL: no workbooks */
    int32_t fair_use_minutes;
    int workers;                /* processes billing tenants in parallel */
    upload_options upload;      /* delivery; upload.base_url NULL: none */
    int join;                   /* help the period's run in progress */
    const char *as_of;          /* bill as if it were this time (a
                                   timestamptz text), NULL: now */
    int progress;               /* print a progress line (a terminal) */
} run_options;

typedef struct {
    long long run_id;
    int tenants;
    int issued;
    int unchanged;
    int drafted;                /* still in their grace period */
    int held;                   /* statement issued, documents held
                                   for an incomplete buyer (docs/billing-rules.md 4.2) */
    int failed;
    ac_status failed_status;    /* what the failed tenants call for: 65
                                 * for data, 75 for a timeout, ... */
    long long calls;
} run_summary;

/* Validate "YYYY-MM" (months 01-12, years 1900-9999). */
int run_period_valid(const char *period);

/* The previous calendar month (UTC) as "YYYY-MM" into out (8 bytes). */
void run_default_period(char out[8]);

/* The periods a nightly run without --period covers (docs/billing-rules.md 4.2): from
 * lookback months before the month of now_s (seconds since the epoch,
 * UTC) up to that month, oldest first, as "YYYY-MM" into out (at most max
 * of them); returns how many. */
int run_open_periods(int64_t now_s, int lookback, char (*out)[8], int max);

/* Run the period.  Returns AC_OK when every tenant was billed (issued,
 * unchanged or held: a held tenant's statement is issued and its
 * documents wait for a complete buyer, docs/billing-rules.md 4.2) and its files delivered;
 * AC_ECONFIG before billing anything when the seller (ref.operator) is
 * incomplete; otherwise the status an operator
 * must act on first (ac_status_worst()): AC_EDATA when a tenant's data
 * failed a check (the others are committed), AC_ETEMPFAIL when another
 * run of the period holds its run lock or a tenant hit lock_timeout or
 * statement_timeout, AC_EUNAVAIL when the database is unreachable or
 * files wait for upload, AC_ECONFIG for configuration, AC_ECANTCREAT when
 * output cannot be written, AC_EUSAGE when --join names another --out
 * than the run it joins.  Runs of different periods run side by side;
 * runs found `running` whose process is gone are marked `killed`.
 * *summary is filled as far as the run got (run_id 0: none started). */
ac_status run_period(const run_options *opt, run_summary *summary,
                     char *err);

#endif
