/* rating.h: the rating engine (docs/billing-rules.md 3, version 3), pure: no I/O.
 *
 * Three pieces, built by the caller from the database:
 *   rating_ref       reference data of the run: destinations by prefix,
 *                    Zone A, rates by price plan, currency, prefix and
 *                    validity;
 *   rating_licences  one tenant's licence assignments in the period;
 *   rating_tenant    one tenant's period being rated: calls go in one at a
 *                    time in ascending (start_time, usage_id) order, each
 *                    gets exactly one outcome; the tenant's two pools
 *                    (Zone A, US/CA), invoice lines, organizers and
 *                    totals accumulate here.
 * Memory is bounded by the tenant's organizers and invoice lines, never by
 * its call count.  Times are microseconds since the Unix epoch (UTC);
 * money is in 1/10000 units (money.h). */
#ifndef AC_RATING_H
#define AC_RATING_H

#include <stdint.h>

#include "status.h"

#define RATING_FOREVER INT64_MAX     /* an open-ended valid_to */

/* Destination kinds of ref.destinations (docs/billing-rules.md 2), in the
 * order of that section.  Geographic, mobile and toll-free numbers are "plain": they may
 * draw on the pool (Zone A) and be exempt under the add-on (US, CA). */
typedef enum {
    KIND_GEOGRAPHIC, KIND_MOBILE, KIND_TOLL_FREE, KIND_PREMIUM,
    KIND_SHARED_COST, KIND_PERSONAL, KIND_NON_GEOGRAPHIC, KIND_COUNT
} rating_kind;

/* In the order of the outcome list of docs/billing-rules.md 3.4; also the order of counters. */
typedef enum {
    OUTCOME_REJECTED, OUTCOME_ZERO, OUTCOME_EXEMPT, OUTCOME_POOL,
    OUTCOME_SPLIT, OUTCOME_BILLED, OUTCOME_COUNT
} rating_outcome;

/* What a licence SKU grants (ref.sku_entitlements.grants and pool_scope,
 * docs/billing-rules.md 2 and 3), as bits of a holding.  An audio_conferencing
 * SKU is a subscription of one scope: GRANT_AUDIO_CONFERENCING for the
 * Standard licence (pool_scope zone_a: the Zone A pool), or
 * GRANT_AUDIO_CONFERENCING_USCA for the USA/CAN licence (pool_scope
 * us_ca: the US/CA pool).  Both are "a subscription" and both are Audio
 * Conferencing (the add-on's prerequisite). */
enum {
    GRANT_AUDIO_CONFERENCING = 1,     /* Zone A subscription: pool, prereq. */
    GRANT_AUDIO_CONFERENCING_PPM = 2, /* pay-per-minute: prerequisite only */
    GRANT_DIALOUT_USCA = 4,           /* unlimited dial-out to US/Canada */
    GRANT_AUDIO_CONFERENCING_USCA = 8 /* US/CA subscription: pool, prereq. */
};

/* "Holds a subscription" and "holds Audio Conferencing" (docs/billing-rules.md 3). */
#define GRANT_SUBSCRIPTION \
    (GRANT_AUDIO_CONFERENCING | GRANT_AUDIO_CONFERENCING_USCA)
#define GRANT_ANY_AUDIO_CONFERENCING \
    (GRANT_SUBSCRIPTION | GRANT_AUDIO_CONFERENCING_PPM)

/* The price plan of a tenant without one (ref.customers.price_plan null,
 * or no ref.customers row), and of every rate row without one. */
#define RATING_STANDARD_PLAN "standard"

/* The largest rate or fee the ledger's numeric(12,4) columns hold, in
 * 1/10000 units. */
#define RATING_RATE_MAX INT64_C(999999999999)

/* Longest durations accepted (docs/billing-rules.md 3, step 1: 30 hours, the
 * longest a Teams meeting runs). */
#define RATING_MAX_DURATION 108000

/* "geographic", ... for a kind; "pool", ... for an outcome. */
const char *rating_kind_name(rating_kind kind);
const char *rating_outcome_name(rating_outcome outcome);

/* The kind named by text, or -1 when text is no known kind. */
int rating_kind_parse(const char *text);

/* The grant bit of a ref.sku_entitlements.grants value
 * ("audio_conferencing", "audio_conferencing_ppm", "dialout_usca"), or 0
 * for NULL or any other text.  audio_conferencing gives the Zone A
 * subscription (GRANT_AUDIO_CONFERENCING), as version 2 counted it. */
int rating_grant_parse(const char *grants);

/* The grant bit of a ref.sku_entitlements row with its pool_scope (docs/billing-rules.md 2,
 * version 3): audio_conferencing with pool_scope "us_ca" gives
 * GRANT_AUDIO_CONFERENCING_USCA, with "zone_a" or NULL
 * GRANT_AUDIO_CONFERENCING, with any other scope 0 (grants nothing);
 * other grants as rating_grant_parse() (their scope is ignored). */
int rating_grant_parse_scope(const char *grants, const char *pool_scope);

/* docs/billing-rules.md 3, "Price plan": *out = round4(rate * (1 + adjustment)), rounded
 * half-up (away from zero), with rate and *out in 1/10000 units and
 * adjustment in 1/10000 (1500 is +15 %, -1000 is -10 %; numeric(7,4)).
 * Exact integer arithmetic: 0.0333 x 1.15 = 0.038295 gives 0.0383.
 * Returns 0, or -1 (and *out untouched) when adjustment <= -10000, rate <
 * 0, or the product overflows int64_t or the result exceeds
 * RATING_RATE_MAX (numeric(12,4)). */
int rating_adjust_rate(int64_t rate, int64_t adjustment, int64_t *out);

/* A destination number after normalisation (docs/billing-rules.md 3, "Numbers"). */
typedef struct {
    char text[17];      /* spaces removed: '+' and 6 to 15 digits or '*' */
    char digits[16];    /* the visible digits: those before the first '*' */
    int visible;        /* strlen(digits) */
    int masked;         /* 1 when the last 1 to 4 characters are '*' */
} rating_number;

/* Normalise number: remove spaces; the result must be '+' followed by 6
 * to 15 characters, each a digit, of which the last 1 to 4 may be '*'
 * (masked, as Microsoft exports numbers of tenants in BE, CH, DE, DK, ES,
 * FI, FR, IT, NL, NO, SE) and no '*' is followed by a digit.  Returns 1
 * and fills *out when it is a number, 0 otherwise (NULL included). */
int rating_number_parse(const char *number, rating_number *out);

/* 1 when rating_number_parse() accepts number. */
int rating_number_valid(const char *number);

/* Normalise an identifier (organizer_id, user_id; docs/billing-rules.md 3,
 * "Identifiers"): surrounding white space removed, ASCII letters folded
 * to lower case (Entra object ids and UPNs are case-insensitive).  Writes
 * at most cap - 1 bytes and a NUL into out (cap > 0) and returns the
 * length of the whole normalised id, like snprintf: a result >= cap
 * means out was too small.  id NULL gives "" and 0. */
size_t rating_id_normalise(const char *id, char *out, size_t cap);

/* 1 when id is NULL or only white space (no organizer, docs/billing-rules.md 3 step 3). */
int rating_id_blank(const char *id);

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

/* Add a length row (ref.destination_lengths, the job's addition to docs/billing-rules.md * section 2's reference data): a number of exactly `digits` E.164 digits
 * (country code included, masked positions counted) whose longest
 * destination prefix is `prefix` takes country and kind instead of that
 * destination's.  Where a short valid number of one type begins longer
 * numbers of another (Italian mobiles +39 3xx of 11-12 digits, voicemail
 * of 13-14), only the length tells them apart.  AC_EDATA when prefix is
 * not a destination added before, digits is not from strlen(prefix) to
 * 15, the (prefix, digits) pair is a duplicate, the kind is unknown or
 * the country is not 2 letters; AC_EOSERR when out of memory. */
ac_status rating_ref_add_destination_length(rating_ref *ref,
                                            const char *prefix, int digits,
                                            const char *country,
                                            const char *kind, char *err);

/* Mark country (2 letters) as Zone A. */
ac_status rating_ref_add_zone_a(rating_ref *ref, const char *country,
                                char *err);

/* Add a rate row of price plan `standard`: currency (3 letters), prefix
 * (digits), money in units, valid [from_us, to_us) with to_us =
 * RATING_FOREVER when open.  AC_EDATA for a bad currency or prefix,
 * negative money or an empty validity. */
ac_status rating_ref_add_rate(rating_ref *ref, const char *currency,
                              const char *prefix, int64_t per_minute,
                              int64_t connection_fee, int64_t from_us,
                              int64_t to_us, char *err);

/* rating_ref_add_rate() for the rows of price plan `plan` (ref.rates.plan,
 * docs/billing-rules.md 2 version 3; NULL is `standard`; at most 64 bytes). */
ac_status rating_ref_add_plan_rate(rating_ref *ref, const char *plan,
                                   const char *currency, const char *prefix,
                                   int64_t per_minute,
                                   int64_t connection_fee, int64_t from_us,
                                   int64_t to_us, char *err);

/* Record a rate row that holds at no instant (ref.rates valid_from
 * 'infinity' or valid_to '-infinity'): it prices nothing, but its plan
 * has rows (the tenant check of docs/billing-rules.md 3) and its prefix counts for the
 * masked ambiguity ("whatever its plan or validity").  Same checks as
 * rating_ref_add_plan_rate() for plan, currency and prefix. */
ac_status rating_ref_add_rate_prefix(rating_ref *ref, const char *plan,
                                     const char *currency,
                                     const char *prefix, char *err);

/* 1 when ref holds at least one rate row of plan (NULL: `standard`), in
 * any currency at any validity (docs/billing-rules.md 3, tenant checks). */
int rating_ref_has_plan(const rating_ref *ref, const char *plan);

/* Longest destination prefix of digits (the visible digits of a number
 * of number_digits E.164 digits in all, masked positions counted: the
 * length of rating_number.text minus 1): returns 1 and fills country (3
 * bytes), kind and prefix_len (digits of the prefix), or returns 0 when
 * no prefix matches.  When that prefix has a length row for
 * number_digits, its country and kind are given instead of the
 * prefix's.  Does not allocate. */
int rating_ref_destination(const rating_ref *ref, const char *digits,
                           int number_digits, char country[3],
                           rating_kind *kind, int *prefix_len);

/* 1 when a masked number is ambiguous (docs/billing-rules.md 3, "Numbers"): a
 * destination prefix, or a rate prefix in currency (any plan, any
 * validity), is longer than its visible digits and begins with them, so
 * its kind or rate could depend on the hidden digits.  0 otherwise. */
int rating_ref_masked_ambiguous(const rating_ref *ref, const char *currency,
                                const char *visible_digits);

/* 1 when ref holds at least one rate row in currency (any plan). */
int rating_ref_has_currency(const rating_ref *ref, const char *currency);

/* 1 when country is in Zone A. */
int rating_ref_zone_a(const rating_ref *ref, const char *country);

/* The `standard` rate for a call: among the standard rows in currency in
 * force at t_us, the one with the longest prefix of digits (when two rows
 * of that prefix overlap, the later valid_from wins).  Returns 1 and
 * fills per_minute, connection_fee and prefix_len, or 0 when there is
 * none.  No adjustment is applied. */
int rating_ref_rate(const rating_ref *ref, const char *currency,
                    const char *digits, int64_t t_us, int64_t *per_minute,
                    int64_t *connection_fee, int *prefix_len);

/* The rate of price plan `plan` for a call (docs/billing-rules.md 2, version 3): the
 * lookup of rating_ref_rate() among the rows of plan alone, and only
 * where none of them (in currency, in force at t_us) matches digits,
 * among those of `standard`.  A matching plan row wins even where
 * standard has a longer prefix.  plan NULL or "standard": standard only.
 * Returns 1 and fills the rate (no adjustment applied), its prefix_len
 * and *from_plan (1: a row of plan, 0: of standard), or 0 when neither
 * has a row. */
int rating_ref_plan_rate(const rating_ref *ref, const char *plan,
                         const char *currency, const char *digits,
                         int64_t t_us, int64_t *per_minute,
                         int64_t *connection_fee, int *prefix_len,
                         int *from_plan);

/* ------------------------------------------------------------ licences */

typedef struct rating_licences rating_licences;

/* A new empty licence set, or NULL when out of memory. */
rating_licences *rating_licences_new(void);

/* Free it (NULL is fine). */
void rating_licences_free(rating_licences *lic);

/* Record that user holds the GRANT_ bits grants during [from_us, to_us).
 * user is compared normalised (rating_id_normalise).  Rows may come in any
 * order; an empty interval (to_us <= from_us) holds at no instant and is
 * accepted and ignored.  AC_EOSERR when out of memory. */
ac_status rating_licences_add(rating_licences *lic, const char *user,
                              int grants, int64_t from_us, int64_t to_us,
                              char *err);

/* Sort the holdings by user for fast look-ups; rating_tenant_new() does
 * it.  Adding after sorting is allowed (it unsorts). */
void rating_licences_sort(rating_licences *lic);

/* The GRANT_ bits user (normalised here) holds at t_us: 0 when none or
 * user is NULL or blank. */
int rating_licences_held(const rating_licences *lic, const char *user,
                         int64_t t_us);

/* --------------------------------------------------------- one tenant */

typedef struct {
    const char *usage_id;       /* text UUID */
    int64_t start_us;
    const char *organizer_id;   /* NULL when SQL NULL */
    const char *number;         /* NULL when SQL NULL; as stored */
    int has_duration;           /* 0 when duration_seconds is NULL */
    int32_t duration_seconds;
    const char *call_id;        /* NULL when SQL NULL (no DUPLICATE test) */
    const char *conference_id;  /* NULL when SQL NULL (no DUPLICATE test) */
} rating_call;

typedef struct {
    rating_outcome outcome;
    const char *reason;         /* static code, NULL unless rejected */
    char country[3];            /* "" when no destination matched */
    int kind;                   /* a rating_kind, -1 when unknown */
    int dest_prefix_len;        /* digits of the matched destination */
    int32_t minutes;            /* ceil(duration / 60), 0 when invalid */
    int32_t pool_minutes;       /* drawn from both pools */
    int32_t usca_pool_minutes;  /* of which from the US/CA pool */
    int32_t billed_minutes;
    int has_rate;               /* per_minute/connection_fee valid */
    int64_t per_minute;         /* the plan's rate, adjusted (docs/billing-rules.md 3) */
    int64_t connection_fee;     /* the plan's fee, adjusted */
    int rate_prefix_len;
    int rate_from_plan;         /* 1: the tenant's plan priced it, 0:
                                   standard (valid with has_rate) */
    int64_t amount;             /* billed * per_minute + fee, else 0 */
    rating_number number;       /* valid unless INVALID_DURATION or
                                   INVALID_NUMBER; prefixes are of
                                   number.digits */
    const char *duplicate_of;   /* DUPLICATE: the earlier call's usage_id,
                                   valid until the next call is rated */
} rating_result;

typedef struct {
    char country[3];
    rating_kind kind;
    int64_t per_minute;
    int64_t connection_fee;
    int32_t calls;
    int32_t minutes;            /* billed minutes */
    int64_t exact;              /* exact sum of call amounts */
    int64_t amount;             /* exact rounded half-up to the minor unit */
} rating_line;

typedef struct {
    char *id;                   /* as written on its first call */
    char *key;                  /* normalised (rating_id_normalise) */
    int32_t calls;
    int32_t rejected_calls;
    int32_t minutes;            /* of its calls not rejected */
    int32_t exempt_minutes;
    int32_t pool_minutes;       /* drawn from both pools */
    int32_t usca_pool_minutes;  /* of which from the US/CA pool */
    int32_t billed_minutes;
    int64_t amount;
    int addon_held;             /* held the add-on at one of its calls */
    int addon_without_prereq;   /* ... without Audio Conferencing */
    int64_t first_issue_us;     /* first such call */
    char *first_issue_usage_id; /* and its usage_id */
    int fair_use_review;        /* exempt minutes above the threshold */
} rating_organizer;

typedef struct {
    int32_t calls;
    int32_t outcomes[OUTCOME_COUNT];
    int32_t pool_minutes;       /* the Zone A pool's size */
    int32_t pool_used;          /* drawn from the Zone A pool */
    int32_t usca_pool_minutes;  /* the US/CA pool's size */
    int32_t usca_pool_used;     /* drawn from the US/CA pool */
    int32_t exempt_minutes;
    int32_t billed_minutes;
    int64_t exact_total;        /* sum of call amounts */
    int64_t subtotal;           /* sum of rounded line amounts */
    int64_t tax;                /* subtotal * tax rate, rounded once */
    int64_t total;              /* subtotal + tax */
} rating_totals;

typedef struct rating_tenant rating_tenant;

/* Start rating one tenant's period with a Zone A pool of pool_minutes and
 * the fair-use threshold (exempt minutes per organizer).  Sorts lic
 * (rating_licences_sort).  ref, lic and currency must outlive the tenant.
 * The money defaults to 2 decimals and no tax (rating_tenant_set_money),
 * the US/CA pool to 0 minutes (rating_tenant_set_usca_pool), the price to
 * plan `standard` without adjustment (rating_tenant_set_price).
 * NULL when out of memory. */
rating_tenant *rating_tenant_new(const rating_ref *ref, rating_licences *lic,
                                 const char *currency, int32_t pool_minutes,
                                 int32_t fair_use_minutes);

/* Set the currency's ISO 4217 minor unit (0 to 4 decimals: JPY 0, USD 2,
 * BHD 3) that lines, tax and total are rounded to, and the tax rate in
 * 1/10000 (2000 is 20 %, from 0 to 9999), before the first call (docs/billing-rules.md
 * section 3, "Money" and "Tax").  AC_EDATA when either is out of range. */
ac_status rating_tenant_set_money(rating_tenant *t, int minor_unit,
                                  int64_t tax_rate, char *err);

/* Set the US/CA pool (docs/billing-rules.md 3, version 3: 60 minutes per seat of a
 * us_ca SKU), before the first call.  AC_EDATA when minutes < 0. */
ac_status rating_tenant_set_usca_pool(rating_tenant *t, int32_t minutes,
                                      char *err);

/* Set the tenant's price plan (ref.customers.price_plan; NULL is
 * `standard`) and rate_adjustment (1/10000: 1500 is +15 %), before the
 * first call (docs/billing-rules.md 2 and 3, version 3).  The tenant checks: AC_EDATA,
 * naming the rule, when the plan has no rate row at all in ref (any
 * currency, any validity) or adjustment <= -10000 (-1) or beyond
 * numeric(7,4).  A plan must outlive the tenant. */
ac_status rating_tenant_set_price(rating_tenant *t, const char *plan,
                                  int64_t adjustment, char *err);

/* Free it (NULL is fine). */
void rating_tenant_free(rating_tenant *t);

/* Rate the next call (calls must come in ascending (start_time, usage_id)
 * order) and fill *out with its one outcome (docs/billing-rules.md 3, steps 1 to
 * 12; pool-eligible calls draw on the US/CA pool first, then the Zone A
 * pool; a billed call's rate is its plan's, adjusted).  Fails with AC_EOSERR when out of memory, or AC_EDATA naming the
 * call when a figure would overflow or not fit the ledger's columns
 * (amount numeric(16,4), minutes int); the tenant must then be given up. */
ac_status rating_tenant_rate(rating_tenant *t, const rating_call *call,
                             rating_result *out, char *err);

/* Close the period: round each line half-up to the minor unit, sort them
 * by (country, kind, per_minute, connection_fee), add the subtotal, the
 * tax (rounded once) and the total, flag fair-use reviews, and check
 * conservation (every call one outcome, each pool's use within the pool,
 * lines adding up).  AC_EDATA with the broken rule or the overflowing figure in
 * err when a check fails. */
ac_status rating_tenant_finish(rating_tenant *t, char *err);

/* After finish: the totals, the lines and the organizers (in strcmp order
 * of their normalised key).  The arrays belong to t. */
const rating_totals *rating_tenant_totals(const rating_tenant *t);
int rating_tenant_lines(const rating_tenant *t, const rating_line **lines);
int rating_tenant_organizers(const rating_tenant *t,
                             const rating_organizer **organizers);

#endif
