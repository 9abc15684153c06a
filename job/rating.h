/* rating.h: the rating engine (SPEC section 3), pure: no I/O.
 *
 * Three pieces, built by the caller from the database:
 *   rating_ref       reference data of the run: destinations by prefix,
 *                    Zone A, rates by currency, prefix and validity;
 *   rating_licences  one tenant's licence assignments in the period;
 *   rating_tenant    one tenant's period being rated: calls go in one at a
 *                    time in ascending (start_time, usage_id) order, each
 *                    gets exactly one outcome; the tenant's pool, invoice
 *                    lines, organizers and totals accumulate here.
 * Memory is bounded by the tenant's organizers and invoice lines, never by
 * its call count.  Times are microseconds since the Unix epoch (UTC);
 * money is in 1/10000 units (money.h). */
#ifndef AC_RATING_H
#define AC_RATING_H

#include <stdint.h>

#include "status.h"

#define RATING_FOREVER INT64_MAX     /* an open-ended valid_to */

/* Destination kinds of ref.destinations (SPEC section 2), in the SPEC's
 * order.  Geographic, mobile and toll-free numbers are "plain": they may
 * draw on the pool (Zone A) and be exempt under the add-on (US, CA). */
typedef enum {
    KIND_GEOGRAPHIC, KIND_MOBILE, KIND_TOLL_FREE, KIND_PREMIUM,
    KIND_SHARED_COST, KIND_PERSONAL, KIND_NON_GEOGRAPHIC, KIND_COUNT
} rating_kind;

/* In the order of the SPEC's outcome list; also the order of counters. */
typedef enum {
    OUTCOME_REJECTED, OUTCOME_ZERO, OUTCOME_EXEMPT, OUTCOME_POOL,
    OUTCOME_SPLIT, OUTCOME_BILLED, OUTCOME_COUNT
} rating_outcome;

/* Licence SKUs that matter to rating, as bits. */
enum {
    SKU_MCOMEETADD = 1,     /* subscription: 60 pool minutes per seat */
    SKU_MCOMEETACPEA = 2,   /* pay-per-minute Audio Conferencing */
    SKU_DIALOUT_USCA = 4    /* unlimited dial-out to US/Canada add-on */
};

/* "geographic", ... for a kind; "pool", ... for an outcome. */
const char *rating_kind_name(rating_kind kind);
const char *rating_outcome_name(rating_outcome outcome);

/* The kind named by text, or -1 when text is no known kind. */
int rating_kind_parse(const char *text);

/* The SKU bit of an SKU name, or 0 for SKUs rating ignores. */
int rating_sku_parse(const char *text);

/* 1 when number is '+' followed by 6 to 15 digits and nothing else. */
int rating_number_valid(const char *number);

/* ------------------------------------------------------ reference data */

typedef struct rating_ref rating_ref;

/* A new empty reference set, or NULL when out of memory. */
rating_ref *rating_ref_new(void);

/* Free it (NULL is fine). */
void rating_ref_free(rating_ref *ref);

/* Add a destination prefix (digits only).  AC_EDATA for a malformed or
 * duplicate prefix, an unknown kind or a country that is not 2 letters. */
ac_status rating_ref_add_destination(rating_ref *ref, const char *prefix,
                                     const char *country, const char *kind,
                                     char *err);

/* Mark country (2 letters) as Zone A. */
ac_status rating_ref_add_zone_a(rating_ref *ref, const char *country,
                                char *err);

/* Add a rate row: currency (3 letters), prefix (digits), money in units,
 * valid [from_us, to_us) with to_us = RATING_FOREVER when open. */
ac_status rating_ref_add_rate(rating_ref *ref, const char *currency,
                              const char *prefix, int64_t per_minute,
                              int64_t connection_fee, int64_t from_us,
                              int64_t to_us, char *err);

/* Longest destination prefix of digits: returns 1 and fills country (3
 * bytes), kind and prefix_len, or returns 0 when no prefix matches. */
int rating_ref_destination(const rating_ref *ref, const char *digits,
                           char country[3], rating_kind *kind,
                           int *prefix_len);

/* 1 when country is in Zone A. */
int rating_ref_zone_a(const rating_ref *ref, const char *country);

/* The rate for a call: among the rows in currency in force at t_us, the
 * one with the longest prefix of digits (when two rows of that prefix
 * overlap, the later valid_from wins).  Returns 1 and fills per_minute,
 * connection_fee and prefix_len, or 0 when there is none. */
int rating_ref_rate(const rating_ref *ref, const char *currency,
                    const char *digits, int64_t t_us, int64_t *per_minute,
                    int64_t *connection_fee, int *prefix_len);

/* ------------------------------------------------------------ licences */

typedef struct rating_licences rating_licences;

/* A new empty licence set, or NULL when out of memory. */
rating_licences *rating_licences_new(void);

/* Free it (NULL is fine). */
void rating_licences_free(rating_licences *lic);

/* Record that user holds sku_bit during [from_us, to_us).  Users must be
 * added in strcmp order of user (ties in any order). */
ac_status rating_licences_add(rating_licences *lic, const char *user,
                              int sku_bit, int64_t from_us, int64_t to_us,
                              char *err);

/* The SKU bits user holds at t_us (0 when none or user is NULL). */
int rating_licences_held(const rating_licences *lic, const char *user,
                         int64_t t_us);

/* --------------------------------------------------------- one tenant */

typedef struct {
    const char *usage_id;       /* text UUID */
    int64_t start_us;
    const char *organizer_id;   /* NULL when SQL NULL */
    const char *number;         /* NULL when SQL NULL */
    int has_duration;           /* 0 when duration_seconds is NULL */
    int32_t duration_seconds;
} rating_call;

typedef struct {
    rating_outcome outcome;
    const char *reason;         /* static code, NULL unless rejected */
    char country[3];            /* "" when no destination matched */
    int kind;                   /* a rating_kind, -1 when unknown */
    int dest_prefix_len;        /* digits of the matched destination */
    int32_t minutes;            /* ceil(duration / 60), 0 when invalid */
    int32_t pool_minutes;
    int32_t billed_minutes;
    int has_rate;               /* per_minute/connection_fee valid */
    int64_t per_minute;
    int64_t connection_fee;
    int rate_prefix_len;
    int64_t amount;             /* billed * per_minute + fee, else 0 */
} rating_result;

typedef struct {
    char country[3];
    int64_t per_minute;
    int64_t connection_fee;
    int32_t calls;
    int32_t minutes;            /* billed minutes */
    int64_t exact;              /* exact sum of call amounts */
    int64_t amount;             /* exact rounded half-up to cents */
} rating_line;

typedef struct {
    char *id;
    int32_t calls;
    int32_t rejected_calls;
    int32_t minutes;            /* of its calls not rejected */
    int32_t exempt_minutes;
    int32_t pool_minutes;
    int32_t billed_minutes;
    int64_t amount;
    int addon_held;             /* held DIALOUT_USCA at one of its calls */
    int addon_without_prereq;   /* ... without Audio Conferencing */
    int64_t first_issue_us;     /* first such call */
    int fair_use_review;        /* exempt minutes above the threshold */
} rating_organizer;

typedef struct {
    int32_t calls;
    int32_t outcomes[OUTCOME_COUNT];
    int32_t pool_minutes;       /* the pool's size */
    int32_t pool_used;
    int32_t exempt_minutes;
    int32_t billed_minutes;
    int64_t exact_total;        /* sum of call amounts */
    int64_t total;              /* sum of rounded line amounts */
} rating_totals;

typedef struct rating_tenant rating_tenant;

/* Start rating one tenant's period.  ref, lic and currency must outlive
 * the tenant.  NULL when out of memory. */
rating_tenant *rating_tenant_new(const rating_ref *ref,
                                 const rating_licences *lic,
                                 const char *currency, int32_t pool_minutes,
                                 int32_t fair_use_minutes);

/* Free it (NULL is fine). */
void rating_tenant_free(rating_tenant *t);

/* Rate the next call (calls must come in ascending (start_time, usage_id)
 * order) and fill *out.  Fails only when out of memory (AC_EOSERR). */
ac_status rating_tenant_rate(rating_tenant *t, const rating_call *call,
                             rating_result *out, char *err);

/* Close the period: round the lines, sort them by (country, per_minute,
 * connection_fee), flag fair-use reviews, and check conservation (every
 * call one outcome, pool used within the pool, lines adding up).
 * AC_EDATA with the broken rule in err when a check fails. */
ac_status rating_tenant_finish(rating_tenant *t, char *err);

/* After finish: the totals, the lines and the organizers (in strcmp order
 * of their id).  The arrays belong to t. */
const rating_totals *rating_tenant_totals(const rating_tenant *t);
int rating_tenant_lines(const rating_tenant *t, const rating_line **lines);
int rating_tenant_organizers(const rating_tenant *t,
                             const rating_organizer **organizers);

#endif
