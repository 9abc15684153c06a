/* sample.c: see sample.h.
 *
 * Shape of the data (all drawn from per-tenant PRNG streams, so a tenant's
 * name, zone, currency and licences do not depend on the other tenants):
 *
 * - Tenant i (0-based) gets a share of the M calls proportional to
 *   1/(i+1): S00001 is the biggest, most are small.  The first seven
 *   tenants cover UTC, Berlin, London, New York, Los Angeles, Tokyo and
 *   Sydney (USD, EUR, GBP, AUD); the rest draw a zone and mostly its
 *   currency.  Some indices get hostile names (nasty_names).
 * - Users user0000@s00001.example ...: the first n_add hold MCOMEETADD,
 *   the next n_pea MCOMEETACPEA, the rest no Audio Conferencing; the first
 *   n_usca add-on holders also hold DIALOUT_USCA.  Some tenants change
 *   their MCOMEETADD purchase mid-month (the old purchase ends, a larger
 *   one starts; the extra users are assigned from then), have a user
 *   assigned mid-month or leaving mid-month, an expired older purchase, a
 *   zero-quantity row, fewer seats bought than assigned, or an add-on
 *   without its prerequisite.
 * - Calls: organizers skewed to the first users, start times uniform in
 *   the tenant's local month (kept inside the organizer's licence window),
 *   about 0.1% on or just outside the month's edges, destinations from
 *   `targets` (mostly Zone A), durations mostly 30 s to 1 h, about 0.5%
 *   deliberately bad rows.  Tenant S00001's first calls are a fixed
 *   showcase of every case, so even a small sample has one of each.
 * - Rates: one per (country, kind) minimal prefix of ref.destinations,
 *   with "1" for US and Canada geographic, in every currency used, valid
 *   from SAMPLE_RATES_FROM.  The price plan `partner` covers only the
 *   Zone A countries outside +1, with their geographic, premium and
 *   shared-cost prefixes at 80 % of the standard rates (a complete card:
 *   its geographic row also prices the country's mobiles; US, Canada and
 *   the other countries fall back to standard, docs/billing-rules.md 2 version 3).
 * - SPEC version 3, by tenant index (no draw changes, so the other
 *   tenants stay as they were): index 7 mod 10 (S00008, S00018, ...)
 *   holds only the $0 USA/CAN licence (its US/CA pool, no Zone A pool);
 *   index 8 mod 10 (S00009, ...) holds both, the first half of its
 *   subscription users the USA/CAN licence too (two pools, TWO_POOLS);
 *   index 3 mod 10 (S00004, ...) is on plan `partner` at +15 %, index 5
 *   mod 10 (S00006, ...) on `partner` at -10 %.
 * - Provider charges: the upstream provider applies the same pool and the
 *   same add-on exemption as acbill, so its charge is, call for call, the
 *   amount acbill bills.  That amount comes from acbill's own rating
 *   engine (rating.h), not from a second implementation: once the rates
 *   and the licences are in (same transaction), the load reads ref.*
 *   (bill_load_reference) and each tenant's licences and pool
 *   (bill_entitlements) with acbill's own queries, and rates the tenant's
 *   calls of its local month in acbill's order, (start_time, usage_id),
 *   since the pool is drawn in that order.  So a tenant's calls are
 *   generated into a buffer first (72 bytes a call; the largest tenant
 *   sets the peak), sorted, rated, then copied in (one COPY per tenant)
 *   in that order.  On that:
 *     - about 8% of the calls carry no charge, and bad rows never do; nor
 *       do calls acbill rejects;
 *     - about 15% of a non-USD tenant's charged calls are charged in USD:
 *       the minutes acbill bills at the USD rate (not compared by the
 *       Reconciliation sheet);
 *     - calls outside the tenant's local month (not on this period's
 *       invoice) are charged at the plain rate, minutes x rate + fee;
 *     - of the compared calls (in the period, in the invoice currency)
 *       about 1.2% differ on purpose, each by 0.01 or more: 0.25% are
 *       deliberately wrong (amount x 3 + 1.00), and 2% of the pool, split
 *       and exempt calls and of the billed calls of 1.00 or more are
 *       charged as if there were no pool ("pool minutes charged"), no
 *       add-on ("add-on exempt but provider charged"), or a little off
 *       (1% to 3% either way).  The draws for all this are made with the
 *       call's other draws, so the data stays a function of the seed.
 *
 * Money is kept in integer 1/10000 units; no floating point touches it. */
#include "sample.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bill/bill.h"
#include "civil.h"
#include "commands.h"
#include "db.h"
#include "log.h"
#include "money.h"
#include "rate/rating.h"

/* An arbitrary constant identifying acbill sample's advisory lock. */
#define SAMPLE_LOCK_KEY "7254106202"
#define COPY_BUF_SIZE   (64 * 1024)
#define MAX_USERS       20000
#define SHOWCASE_MIN    200     /* S00001 needs this many calls for it */
#define OPEN_END        INT64_MAX
#define DAY             86400
/* acbill run's default fair-use threshold (it changes no amount). */
#define FAIR_USE_MINUTES 3000
/* Deliberate differences between the provider's charge and acbill's
 * amount, per 10,000 compared calls: "wrong" on any outcome; "slip" on
 * a pool, split or exempt call (the provider ignored the entitlement) or
 * on a billed call of 1.00 or more (a little off). */
#define DIFF_WRONG_PER_10K 25
#define DIFF_SLIP_PER_10K  200

/* ------------------------------------------------------------------ PRNG */

typedef struct {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* An independent xoshiro256** stream for (seed, what, index). */
static void rng_stream(rng *r, uint64_t seed, uint64_t what, uint64_t index)
{
    uint64_t x = seed;
    x = splitmix64(&x) ^ what;
    x = splitmix64(&x) ^ index;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n) (the modulo bias is far below anything visible). */
static uint64_t rng_below(rng *r, uint64_t n)
{
    return n == 0 ? 0 : rng_next(r) % n;
}

/* Uniform in [lo, hi]. */
static int64_t rng_range(rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)rng_below(r, (uint64_t)(hi - lo) + 1);
}

static int rng_pct(rng *r, unsigned pct)
{
    return rng_below(r, 100) < pct;
}

/* Stream names. */
enum { STREAM_TENANT = 1, STREAM_CALLS = 2 };

/* ------------------------------------------------------------ calendar */

/* 00:00 UTC on the first of the month `back` months before year-month. */
static int64_t month_start_utc(int year, int month, int back)
{
    int64_t total = (int64_t)year * 12 + (month - 1) - back;
    return civil_days(total / 12, (int)(total % 12) + 1, 1) * DAY;
}

/* ------------------------------------------------------- static tables */

enum { CUR_USD, CUR_EUR, CUR_GBP, CUR_AUD, CUR_JPY, CUR_COUNT };
static const char *const currency_code[CUR_COUNT] = {
    "USD", "EUR", "GBP", "AUD", "JPY"
};
/* Sample exchange rates against USD, in percent. */
static const int64_t currency_pct[CUR_COUNT] = { 100, 92, 79, 152, 15000 };

/* Where tenants are located.  mask: how many trailing digits Microsoft
 * masks with '*' in the numbers of tenants located there (docs/billing-rules.md 1: 3 in
 * DE, 4 in FR). */
static const struct {
    const char *name;
    int currency;
    const char *suffix;
    const char *country;
    int mask;
} zones[] = {
    { "UTC", CUR_USD, "Ltd", "US", 0 },
    { "Europe/Berlin", CUR_EUR, "GmbH", "DE", 3 },
    { "Europe/London", CUR_GBP, "Ltd", "GB", 0 },
    { "America/New_York", CUR_USD, "Inc.", "US", 0 },
    { "America/Los_Angeles", CUR_USD, "Inc.", "US", 0 },
    { "Asia/Tokyo", CUR_JPY, "K.K.", "JP", 0 },
    { "Australia/Sydney", CUR_AUD, "Pty Ltd", "AU", 0 },
    { "Europe/Paris", CUR_EUR, "SAS", "FR", 4 },
    { "America/Chicago", CUR_USD, "LLC", "US", 0 },
    { "Asia/Kolkata", CUR_USD, "Pvt Ltd", "IN", 0 },
    { "Pacific/Auckland", CUR_USD, "Ltd", "NZ", 0 },
    { "America/Sao_Paulo", CUR_USD, "Ltda", "BR", 0 },
};

/* The SKU a tenant's Audio Conferencing subscription comes as: Graph's
 * SKU part numbers (the standalone licence, Microsoft 365 E5, Office 365
 * E5) or the PSTN report's capability name; each grants
 * audio_conferencing in ref.sku_entitlements. */
static const char *const subscription_skus[] = {
    "MCOMEETADD", "SPE_E5", "MCOMEETADV", "ENTERPRISEPREMIUM"
};
#define ZONE_COUNT ((int)(sizeof zones / sizeof zones[0]))
#define FIXED_ZONES 7   /* tenants 0..6 take zones 0..6 in order */

/* Hostile tenant names, by 0-based tenant index. */
static const struct {
    long index;
    const char *name;
} nasty_names[] = {
    { 2, "=HYPERLINK(\"http://x\",\"Sample Tenant\")" },
    { 4, "../../etc/passwd" },
    { 6, "Z\xc3\xbcrich \xc3\x85kersberga GmbH" },
    { 8, "O'Brien & Sons; DROP TABLE usage.tenants;--" },
    { 10, "\xe6\x9d\xb1\xe4\xba\xac\xe3\x82\xb5\xe3\x83\xb3\xe3\x83\x97"
          "\xe3\x83\xab\xe6\xa0\xaa\xe5\xbc\x8f\xe4\xbc\x9a\xe7\xa4\xbe "
          "\xf0\x9f\x8e\xa7" },
    { 12, "Tab\there \\ back\\slash \"quoted\" Ltd" },
    { 14, "+SUM(1+1)*cmd|' /C calc'!A0" },
    { 16, "  Leading and trailing spaces  " },
    { 18, "CON" },
    { 20, "Sample Tenant 00021 With A Very Long Name That Goes On And On "
          "Through Several Divisions, Subsidiaries, Holdings, Regional "
          "Offices, Branches And Affiliates Of The Group Worldwide, "
          "Including Its Audio Conferencing Shared Services Centre And "
          "Its Many Dial-Out Users Limited" },
};

/* Destinations calls go to: prefix (digits), random digits after it, and
 * a weight (per 10,000 good calls).  The prefixes avoid longer prefixes
 * of other countries in ref.destinations so that the country is as
 * intended (447797 is Jersey on purpose). */
static const struct {
    const char *prefix;
    int digits;
    int weight;
} targets[] = {
    /* US geographic */
    { "1212", 7, 200 }, { "1202", 7, 190 }, { "1415", 7, 190 },
    { "1312", 7, 190 }, { "1617", 7, 190 }, { "1305", 7, 190 },
    { "1206", 7, 190 }, { "1512", 7, 190 }, { "1713", 7, 190 },
    { "1404", 7, 190 }, { "1303", 7, 190 }, { "1602", 7, 190 },
    { "1704", 7, 190 }, { "1214", 7, 190 }, { "1310", 7, 190 },
    { "1646", 7, 190 }, { "1718", 7, 190 }, { "1972", 7, 190 },
    /* Canada */
    { "1416", 7, 60 }, { "1514", 7, 60 }, { "1604", 7, 60 },
    { "1613", 7, 60 }, { "1403", 7, 60 }, { "1647", 7, 60 },
    { "1780", 7, 60 }, { "1902", 7, 60 },
    /* US toll-free, premium, personal, non-geographic */
    { "1800", 7, 120 }, { "1833", 7, 30 }, { "1844", 7, 30 },
    { "1855", 7, 30 }, { "1866", 7, 30 }, { "1877", 7, 30 },
    { "1888", 7, 30 }, { "1900", 7, 100 }, { "1500", 7, 20 },
    { "1700", 7, 10 },
    /* Puerto Rico, Jamaica, other Caribbean */
    { "1787", 7, 150 }, { "1939", 7, 50 }, { "1876", 7, 150 },
    { "1658", 7, 30 }, { "1242", 7, 30 }, { "1246", 7, 30 },
    { "1809", 7, 40 }, { "1868", 7, 30 }, { "1441", 7, 20 },
    /* Zone A */
    { "4420", 8, 450 }, { "44161", 7, 100 }, { "447700900", 3, 150 },
    { "4930", 8, 250 }, { "4989", 8, 100 }, { "49151", 8, 150 },
    { "331", 8, 250 }, { "336", 8, 150 }, { "3120", 7, 100 },
    { "3491", 7, 100 }, { "3902", 8, 100 }, { "3531", 7, 80 },
    { "468", 7, 60 }, { "4144", 7, 80 }, { "813", 8, 150 },
    { "612", 8, 120 }, { "9122", 8, 100 }, { "656", 7, 60 },
    { "8522", 7, 40 }, { "5255", 8, 60 }, { "5511", 9, 60 },
    { "2721", 7, 40 }, { "4822", 7, 40 }, { "649", 7, 30 },
    /* Crown dependency (not Zone A) and other non-Zone-A countries */
    { "447797", 6, 10 },
    { "26377", 7, 80 }, { "234803", 7, 80 }, { "2010", 8, 40 },
    { "97150", 7, 60 }, { "63917", 7, 40 }, { "254722", 6, 30 },
    { "92300", 7, 30 }, { "90532", 7, 40 }, { "54911", 8, 30 },
    { "9725", 8, 30 },
};
#define TARGET_COUNT ((int)(sizeof targets / sizeof targets[0]))

/* Kinds of deliberately bad rows. */
enum {
    BAD_NULL_DURATION, BAD_NEGATIVE_DURATION, BAD_NUMBER, BAD_NO_ORGANIZER,
    BAD_UNKNOWN_PREFIX, BAD_UNLICENSED, BAD_KINDS
};

/* Start-time variants of the showcase and the edge calls. */
enum {
    AT_RANDOM = -1, AT_START, AT_LAST_SECOND, AT_END, AT_BEFORE_START,
    AT_AFTER_END
};

/* Tenant S00001's first calls, one of each case. */
static const struct {
    const char *prefix;
    int bad;          /* BAD_* or -1 */
    int duration;     /* seconds or -1 for a random one */
    int at;           /* AT_* */
    int first_user;   /* organizer is user 0 (an add-on holder if any) */
} showcase[] = {
    { "1876", -1, 600, AT_RANDOM, 0 },
    { "1787", -1, 60, AT_RANDOM, 0 },
    { "1939", -1, 125, AT_RANDOM, 0 },
    { "1800", -1, 300, AT_RANDOM, 0 },
    { "1900", -1, 120, AT_RANDOM, 0 },
    { "26377", -1, 45, AT_RANDOM, 0 },
    { "234803", -1, 300, AT_RANDOM, 0 },
    { "447797", -1, 200, AT_RANDOM, 0 },
    { "1809", -1, 90, AT_RANDOM, 0 },
    { "1212", -1, 0, AT_RANDOM, 0 },
    { "1212", -1, 3600, AT_RANDOM, 1 },
    { "1416", -1, 1830, AT_RANDOM, 1 },
    { "4420", -1, 61, AT_RANDOM, 0 },
    { "331", -1, 5400, AT_RANDOM, 0 },
    { "1212", BAD_NULL_DURATION, -1, AT_RANDOM, 0 },
    { "1212", BAD_NEGATIVE_DURATION, -1, AT_RANDOM, 0 },
    { "1212", BAD_NUMBER, -1, AT_RANDOM, 0 },
    { "1212", BAD_NO_ORGANIZER, -1, AT_RANDOM, 0 },
    { "1212", BAD_UNKNOWN_PREFIX, -1, AT_RANDOM, 0 },
    { "1212", BAD_UNLICENSED, -1, AT_RANDOM, 0 },
    { "1212", -1, 60, AT_START, 0 },
    { "1212", -1, 60, AT_LAST_SECOND, 0 },
    { "1212", -1, 60, AT_END, 0 },
    { "1212", -1, 60, AT_BEFORE_START, 0 },
};
#define SHOWCASE_COUNT ((int)(sizeof showcase / sizeof showcase[0]))

/* ------------------------------------------------------------ COPY text */

/* Seconds since the epoch as "YYYY-MM-DD HH:MM:SS+00". */
static void ln_time(copy_line *l, int64_t t)
{
    char tmp[40];
    int64_t days = t >= 0 ? t / DAY : -((-t + DAY - 1) / DAY);
    int64_t sec = t - days * DAY;
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(tmp, sizeof tmp, "%04d-%02d-%02d %02d:%02d:%02d+00", y,
                     m, d, (int)(sec / 3600), (int)(sec / 60 % 60),
                     (int)(sec % 60));
    cl_bytes(l, tmp, (size_t)n);
}

/* A random version 4 UUID from the stream, as 16 bytes. */
static void uuid_draw(rng *r, unsigned char u[16])
{
    uint64_t a = rng_next(r), b = rng_next(r);

    for (int i = 0; i < 8; i++) {
        u[i] = (unsigned char)(a >> (8 * i));
        u[8 + i] = (unsigned char)(b >> (8 * i));
    }
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
}

/* The UUID's text form (36 characters and a NUL). */
static void uuid_text(const unsigned char u[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    int k = 0;

    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[k++] = '-';
        out[k++] = hex[u[i] >> 4];
        out[k++] = hex[u[i] & 15];
    }
    out[k] = '\0';
}

static void ln_uuid_bytes(copy_line *l, const unsigned char u[16])
{
    char tmp[37];
    uuid_text(u, tmp);
    cl_bytes(l, tmp, 36);
}


typedef struct {
    PGconn *conn;
    char *err;
    ac_status rc;
    size_t len;
    char buf[COPY_BUF_SIZE];
} copy_out;

static void co_flush(copy_out *co)
{
    if (co->rc == AC_OK && co->len > 0)
        co->rc = db_copy_put(co->conn, co->buf, co->len, co->err);
    co->len = 0;
}

static ac_status co_begin(copy_out *co, const char *copy_sql)
{
    co->len = 0;
    co->rc = db_copy_begin(co->conn, copy_sql, co->err);
    return co->rc;
}

/* Append a finished line (it gets its newline here) and reset it. */
static void co_row(copy_out *co, copy_line *l)
{
    cl_char(l, '\n');
    if (co->rc == AC_OK && l->failed)
        co->rc = ac_fail(co->err, AC_EOSERR, "out of memory");
    if (co->rc == AC_OK) {
        if (co->len + l->n > sizeof co->buf)
            co_flush(co);
        if (l->n > sizeof co->buf)      /* a row longer than the buffer */
            co->rc = db_copy_put(co->conn, l->b, l->n, co->err);
        else {
            memcpy(co->buf + co->len, l->b, l->n);
            co->len += l->n;
        }
    }
    cl_reset(l);
}

/* Finish the COPY: commit it to the statement when everything went well,
 * abort it otherwise (keeping the first error). */
static ac_status co_end(copy_out *co)
{
    co_flush(co);
    if (co->rc != AC_OK) {
        db_copy_end(co->conn, "acbill sample failed", NULL);
        return co->rc;
    }
    co->rc = db_copy_end(co->conn, NULL, co->err);
    return co->rc;
}

/* ---------------------------------------------------------------- rates */

typedef struct {
    char prefix[16];
    int64_t per_minute;       /* USD, 1/10000 */
    int64_t connection_fee;   /* USD, 1/10000 */
} rate_row;

static uint32_t fnv1a(const char *a, const char *b)
{
    uint32_t h = 2166136261u;
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 16777619u;
    h = (h ^ '/') * 16777619u;
    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 16777619u;
    return h;
}

/* The sample's USD tariff for a (country, kind) group. */
static void tariff(const char *country, const char *kind, int zone_a,
                   int nanp, int64_t *per_minute, int64_t *fee)
{
    uint32_t h = fnv1a(country, kind);

    *fee = 0;
    if (strcmp(kind, "premium") == 0) {
        *per_minute = 10000 + (int64_t)(h % 5) * 2500;
    } else if (strcmp(kind, "toll_free") == 0) {
        *per_minute = 100 + (int64_t)(h % 50);
    } else if (strcmp(kind, "personal") == 0) {
        *per_minute = 400 + (int64_t)(h % 400);
    } else if (strcmp(kind, "non_geographic") == 0) {
        *per_minute = 300 + (int64_t)(h % 700);
    } else if (strcmp(country, "US") == 0 || strcmp(country, "CA") == 0) {
        *per_minute = 120;
    } else if (zone_a) {
        *per_minute = 100 + (int64_t)(h % 400);
    } else if (nanp) {
        *per_minute = 1500 + (int64_t)(h % 1500);
        *fee = 500;
    } else {
        *per_minute = 800 + (int64_t)(h % 4200);
        *fee = (h >> 16) % 3 == 0 ? 500 : (h >> 16) % 3 == 1 ? 1000 : 0;
    }
}

static int64_t in_currency(int64_t usd, int cur)
{
    return (usd * currency_pct[cur] + 50) / 100;
}

/* ------------------------------------------------------------- the load */

typedef struct {
    const sample_options *opt;
    char *err;
    int64_t zone_start[ZONE_COUNT], zone_end[ZONE_COUNT];
    uint64_t weight_sum;
    long long remainder;
    rate_row *rates;
    int nrates;
    /* ref.destinations, ref.zones and ref.rates once the sample's rates
     * are in, as acbill run loads them: what the calls are rated with. */
    rating_ref *ref;
    int showcase_target[SHOWCASE_COUNT];
    int us_target;
    uint64_t target_weight_sum;
    sample_stats st;
} load_ctx;

typedef struct {
    long idx;
    char id[24];
    char domain[40];
    char name[600];
    int zone, cur;
    long long calls;
    int users, n_add, n_pea, n_usca;
    int pea_usca, orphan_usca;
    int qty_add, qty_pea, qty_usca;
    int64_t ps, pe;             /* the local month, UTC seconds */
    int64_t base_from;          /* when the licences were bought */
    int64_t change_at;          /* mid-month purchase change, 0: none */
    int change_extra;
    int late_user;              /* assigned mid-month, -1: none */
    int64_t late_at;
    int leaver;                 /* assignment ends mid-month, -1: none */
    int64_t leave_at;
    int expired_qty;            /* an older purchase that ended, 0: none */
    int64_t expired_from;
    int zero_row;               /* a zero-quantity purchase row */
    const char *sub_sku;        /* the subscription's SKU name */
    int upper_ids;              /* assignments name users in upper case */
    int n_both;                 /* the first n_both subscription users
                                   also hold the USA/CAN licence */
    const char *price_plan;     /* NULL: standard */
    int64_t adjustment;         /* rate_adjustment, 1/10000 */
} tenant_plan;

/* SPEC version 3's USA/CAN licence ($0, 60 minutes per assigned seat to
 * US and Canadian numbers). */
#define USCA_SKU "Microsoft_Teams_Audio_Conferencing_select_dial_out"
/* The sample's price plan, and the adjustments of its tenants. */
#define SAMPLE_PLAN "partner"

static uint64_t tenant_weight(long i)
{
    return (UINT64_C(1) << 20) / (uint64_t)(i + 1);
}

static long long tenant_calls(const load_ctx *c, long i)
{
    return (long long)((uint64_t)c->opt->calls * tenant_weight(i) /
                       c->weight_sum) + (i < c->remainder ? 1 : 0);
}

static void make_plan(const load_ctx *c, long i, tenant_plan *p)
{
    const sample_options *o = c->opt;
    rng r;

    memset(p, 0, sizeof *p);
    rng_stream(&r, o->seed, STREAM_TENANT, (uint64_t)i);
    p->idx = i;
    snprintf(p->id, sizeof p->id, "S%05ld", i + 1);
    snprintf(p->domain, sizeof p->domain, "s%05ld.example", i + 1);
    p->calls = tenant_calls(c, i);

    /* Every draw happens whatever the outcome, so that a tenant's shape
     * only changes where its call count enters the formulas. */
    int zone = (int)rng_below(&r, ZONE_COUNT);
    int cur_other = rng_pct(&r, 15);
    int cur_pick = (int)rng_below(&r, CUR_COUNT);
    /* Calls per user and month: light users stay inside the pool (60
     * minutes a seat, about 18 minutes a call), heavy ones exhaust it. */
    int band = (int)rng_below(&r, 10);
    int light = (int)rng_range(&r, 1, 2);
    int medium = (int)rng_range(&r, 3, 8);
    int heavy = (int)rng_range(&r, 9, 40);
    int per_user = band < 3 ? light : band < 7 ? medium : heavy;
    int extra_users = (int)rng_below(&r, 4);
    int pct_add = (int)rng_range(&r, 45, 90);
    int payg_only = rng_pct(&r, 8);
    int has_pea = rng_pct(&r, 40);
    int pct_pea = (int)rng_range(&r, 5, 25);
    int has_usca = rng_pct(&r, 45);
    int pct_usca = (int)rng_range(&r, 10, 40);
    int pea_usca = rng_pct(&r, 50);
    int orphan = rng_pct(&r, 15);
    int has_spare = rng_pct(&r, 25);
    int spare_seats = (int)rng_range(&r, 1, 3);
    int under = rng_pct(&r, 12);
    int months_back = (int)rng_range(&r, 1, 30);
    int change = rng_pct(&r, 35);
    int change_extra = (int)rng_below(&r, 1000);
    int64_t change_off = rng_range(&r, 8 * DAY, 21 * DAY);
    int late = rng_pct(&r, 25);
    int64_t late_off = rng_range(&r, 3 * DAY, 22 * DAY);
    int leave = rng_pct(&r, 20);
    int64_t leave_off = rng_range(&r, 5 * DAY, 24 * DAY);
    int expired = rng_pct(&r, 20);
    int expired_qty = (int)rng_range(&r, 1, 5);
    int zero_row = rng_pct(&r, 5);

    if (i < FIXED_ZONES) {
        p->zone = (int)i;
        p->cur = zones[i].currency;
    } else {
        p->zone = zone;
        p->cur = cur_other ? cur_pick : zones[zone].currency;
    }
    const char *nasty = NULL;
    for (size_t k = 0; k < sizeof nasty_names / sizeof nasty_names[0]; k++)
        if (nasty_names[k].index == i)
            nasty = nasty_names[k].name;
    if (nasty != NULL)
        snprintf(p->name, sizeof p->name, "%s", nasty);
    else
        snprintf(p->name, sizeof p->name, "Sample Tenant %05ld %s", i + 1,
                 zones[p->zone].suffix);
    p->ps = c->zone_start[p->zone];
    p->pe = c->zone_end[p->zone];

    long long users = p->calls / per_user + extra_users;
    p->users = (int)(users < 3 ? 3 : users > MAX_USERS ? MAX_USERS : users);
    if (payg_only) {
        p->n_add = 0;
        p->n_pea = p->users / 2 > 0 ? p->users / 2 : 1;
    } else {
        p->n_add = p->users * pct_add / 100 > 0 ? p->users * pct_add / 100
                                                : 1;
        p->n_pea = has_pea ? (p->users * pct_pea / 100 > 0
                              ? p->users * pct_pea / 100 : 1) : 0;
        if (p->n_add + p->n_pea > p->users)
            p->n_pea = p->users - p->n_add;
    }
    if (has_usca && p->n_add > 0)
        p->n_usca = p->n_add * pct_usca / 100 > 0 ? p->n_add * pct_usca / 100
                                                  : 1;
    p->pea_usca = has_usca && p->n_pea > 0 && pea_usca;
    p->orphan_usca = has_usca && orphan && p->n_add + p->n_pea < p->users;

    p->qty_add = p->n_add + (has_spare ? spare_seats : 0);
    if (under && p->n_add > 1)
        p->qty_add = p->n_add - 1;
    p->qty_pea = p->n_pea;
    p->qty_usca = p->n_usca + p->pea_usca;
    p->base_from = month_start_utc(o->year, o->month, months_back);

    if (change && p->n_add >= 2) {
        p->change_extra = 1 + change_extra % (p->n_add / 4 > 0 ? p->n_add / 4
                                                               : 1);
        if (p->change_extra > p->qty_add)
            p->change_extra = p->qty_add;
        p->change_at = p->ps + change_off;
    }
    int steady = p->n_add - p->change_extra;   /* ADD users all month */
    p->late_user = -1;
    p->leaver = -1;
    if (late && steady > 2) {
        p->late_user = steady / 2;
        p->late_at = p->ps + late_off;
    }
    if (leave && steady > 3) {
        p->leaver = steady / 3;
        if (p->leaver == p->late_user)
            p->leaver++;
        p->leave_at = p->ps + leave_off;
    }
    if (expired && p->n_add > 0) {
        p->expired_qty = expired_qty;
        p->expired_from = month_start_utc(o->year, o->month,
                                          months_back + 12);
    }
    p->zero_row = zero_row;
    /* By index, so that the draws above stay as they were. */
    p->sub_sku = subscription_skus[i % 4];
    p->upper_ids = i % 5 == 3;
    /* SPEC version 3, by index too. */
    if (i % 10 == 7)
        p->sub_sku = USCA_SKU;
    if (i % 10 == 8 && p->n_add > 0)
        p->n_both = (p->n_add + 1) / 2;
    if (i % 10 == 3) {
        p->price_plan = SAMPLE_PLAN;
        p->adjustment = 1500;
    } else if (i % 10 == 5) {
        p->price_plan = SAMPLE_PLAN;
        p->adjustment = -1000;
    }
}

/* The licence window of user j (the same for all of the user's SKUs). */
static void user_window(const tenant_plan *p, int j, int64_t *from,
                        int64_t *to)
{
    *from = p->base_from;
    *to = OPEN_END;
    if (p->change_at != 0 && j >= p->n_add - p->change_extra && j < p->n_add)
        *from = p->change_at;
    if (j == p->late_user)
        *from = p->late_at;
    if (j == p->leaver)
        *to = p->leave_at;
}

static void user_id(char *out, size_t len, const tenant_plan *p, int j)
{
    snprintf(out, len, "user%04d@%s", j, p->domain);
}

/* A usage.license_purchases row of a plan. */
typedef struct {
    const char *sku;
    int qty;
    int64_t from, to;           /* to: OPEN_END when open */
} purchase;

#define MAX_PURCHASES 7

/* The purchase rows of tenant p, in the order they are written; returns
 * how many (at most MAX_PURCHASES). */
static int plan_purchases(const tenant_plan *p, purchase out[MAX_PURCHASES])
{
    int n = 0;
#define PURCHASE(s, q, f, t) \
    (out[n].sku = (s), out[n].qty = (q), out[n].from = (f), \
     out[n].to = (t), n++)
    if (p->expired_qty > 0)
        PURCHASE(p->sub_sku, p->expired_qty, p->expired_from,
                 p->base_from);
    if (p->change_at != 0) {
        PURCHASE(p->sub_sku, p->qty_add - p->change_extra, p->base_from,
                 p->change_at);
        PURCHASE(p->sub_sku, p->qty_add, p->change_at, OPEN_END);
    } else if (p->qty_add > 0) {
        PURCHASE(p->sub_sku, p->qty_add, p->base_from, OPEN_END);
    }
    if (p->qty_pea > 0)
        PURCHASE("MCOMEETACPEA", p->qty_pea, p->base_from, OPEN_END);
    if (p->zero_row)
        PURCHASE("MCOMEETACPEA", 0, p->base_from, OPEN_END);
    if (p->qty_usca > 0)
        PURCHASE("DIALOUT_USCA", p->qty_usca, p->base_from, OPEN_END);
    if (p->n_both > 0)
        PURCHASE(USCA_SKU, p->n_both, p->base_from, OPEN_END);
#undef PURCHASE
    return n;
}

/* The SKUs assigned to user j of tenant p (each over user_window());
 * returns how many (0 to 3). */
static int user_skus(const tenant_plan *p, int j, const char *sku[3])
{
    int n = 0;
    if (j < p->n_add)
        sku[n++] = p->sub_sku;
    if (j < p->n_both)
        sku[n++] = USCA_SKU;
    else if (j < p->n_add + p->n_pea)
        sku[n++] = "MCOMEETACPEA";
    if (j < p->n_usca || (p->pea_usca && j == p->n_add) ||
        (p->orphan_usca && j == p->n_add + p->n_pea))
        sku[n++] = "DIALOUT_USCA";
    return n;
}

/* ------------------------------------------------------------- phases */

static ac_status check_schema(PGconn *conn, char *err)
{
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT to_regclass('usage.dialout_calls') IS NOT NULL"
        "   AND to_regclass('usage.license_assignments') IS NOT NULL"
        "   AND to_regclass('usage.license_purchases') IS NOT NULL"
        "   AND to_regclass('usage.tenants') IS NOT NULL"
        "   AND to_regclass('ref.rates') IS NOT NULL"
        "   AND to_regclass('ref.zones') IS NOT NULL"
        "   AND to_regclass('ref.destinations') IS NOT NULL",
        0, NULL, &res, err);
    if (rc != AC_OK)
        return rc;
    int ok = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!ok)
        return ac_fail(err, AC_ECONFIG, "the database has no acbill schema: "
                       "run `acbill migrate` first");
    return AC_OK;
}

/* Refuse, or with replace delete, the sample tenants already there. */
static ac_status handle_existing(load_ctx *c, PGconn *conn)
{
    static const char *const deletes[] = {
        "DELETE FROM usage.dialout_calls WHERE tenant_id ~ '^S[0-9]{5,}$'",
        "DELETE FROM usage.license_assignments "
        "WHERE tenant_id ~ '^S[0-9]{5,}$'",
        "DELETE FROM usage.license_purchases "
        "WHERE tenant_id ~ '^S[0-9]{5,}$'",
        "DELETE FROM usage.tenants WHERE tenant_id ~ '^S[0-9]{5,}$'",
    };
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT count(*), min(tenant_id), max(tenant_id) FROM usage.tenants "
        "WHERE tenant_id ~ '^S[0-9]{5,}$'", 0, NULL, &res, c->err);
    if (rc != AC_OK)
        return rc;
    long n = atol(PQgetvalue(res, 0, 0));
    if (n > 0 && !c->opt->replace) {
        rc = ac_fail(c->err, AC_EDATA, "%ld sample tenant(s) already exist "
                     "(%s .. %s): use --replace to delete them, with their "
                     "calls and licences, first", n, PQgetvalue(res, 0, 1),
                     PQgetvalue(res, 0, 2));
    }
    PQclear(res);
    if (rc != AC_OK || n == 0)
        return rc;
    for (size_t k = 0; rc == AC_OK && k < sizeof deletes / sizeof *deletes;
         k++)
        rc = db_exec(conn, deletes[k], c->err);
    if (rc == AC_OK) {
        c->st.replaced_tenants = n;
        ac_info("sample: deleted %ld earlier sample tenant(s)", n);
    }
    return rc;
}

/* The local month of every zone, in UTC seconds. */
static ac_status zone_bounds(load_ctx *c, PGconn *conn)
{
    char start[32];
    snprintf(start, sizeof start, "%04d-%02d-01 00:00:00", c->opt->year,
             c->opt->month);
    for (int z = 0; z < ZONE_COUNT; z++) {
        const char *params[] = { start, zones[z].name };
        PGresult *res;
        ac_status rc = db_query(conn,
            "SELECT extract(epoch FROM $1::timestamp AT TIME ZONE $2)"
            "::bigint, extract(epoch FROM ($1::timestamp + interval "
            "'1 month') AT TIME ZONE $2)::bigint", 2, params, &res, c->err);
        if (rc != AC_OK)
            return rc;
        c->zone_start[z] = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        c->zone_end[z] = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        PQclear(res);
    }
    return AC_OK;
}

/* Derive the rate table from ref.destinations: the minimal prefixes of
 * every (country, kind) group, "1" standing for US and Canada. */
static ac_status build_rates(load_ctx *c, PGconn *conn)
{
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT d.prefix, coalesce(d.country, ''), d.kind, "
        "       coalesce(z.zone = 'A', false) "
        "FROM ref.destinations d "
        "LEFT JOIN ref.zones z ON z.country = d.country "
        "WHERE NOT EXISTS (SELECT 1 FROM ref.destinations p "
        "                  WHERE p.kind = d.kind "
        "                    AND p.country IS NOT DISTINCT FROM d.country "
        "                    AND length(p.prefix) < length(d.prefix) "
        "                    AND left(d.prefix, length(p.prefix)) = p.prefix)"
        "ORDER BY d.prefix", 0, NULL, &res, c->err);
    if (rc != AC_OK)
        return rc;
    int n = PQntuples(res);
    if (n == 0) {
        PQclear(res);
        return ac_fail(c->err, AC_ECONFIG, "ref.destinations is empty: run "
                       "`acbill migrate` to load the reference seed");
    }
    c->rates = calloc((size_t)n + 1, sizeof *c->rates);
    if (c->rates == NULL) {
        PQclear(res);
        return ac_fail(c->err, AC_EOSERR, "out of memory");
    }
    rate_row *r = &c->rates[c->nrates++];
    strcpy(r->prefix, "1");
    tariff("US", "geographic", 1, 1, &r->per_minute, &r->connection_fee);
    for (int i = 0; i < n; i++) {
        const char *prefix = PQgetvalue(res, i, 0);
        const char *country = PQgetvalue(res, i, 1);
        const char *kind = PQgetvalue(res, i, 2);
        int nanp = prefix[0] == '1';
        if (strcmp(prefix, "1") == 0 || strlen(prefix) >= sizeof r->prefix)
            continue;
        if (nanp && strcmp(kind, "geographic") == 0 &&
            (strcmp(country, "US") == 0 || strcmp(country, "CA") == 0))
            continue;
        r = &c->rates[c->nrates++];
        strcpy(r->prefix, prefix);
        tariff(country, kind, strcmp(PQgetvalue(res, i, 3), "t") == 0, nanp,
               &r->per_minute, &r->connection_fee);
    }
    PQclear(res);
    return AC_OK;
}

static ac_status insert_rates(load_ctx *c, PGconn *conn, copy_out *co)
{
    int used[CUR_COUNT] = { 0 };
    tenant_plan *p = malloc(sizeof *p);
    copy_line *l = calloc(1, sizeof *l);
    ac_status rc = AC_OK;

    if (p == NULL || l == NULL) {
        free(p);
        free(l);
        return ac_fail(c->err, AC_EOSERR, "out of memory");
    }
    for (long i = 0; i < c->opt->tenants; i++) {
        make_plan(c, i, p);
        used[p->cur] = 1;
    }
    rc = db_exec(conn, "CREATE TEMP TABLE sample_rates ("
                 " currency char(3), prefix text, per_minute numeric(12,4),"
                 " connection_fee numeric(12,4)) ON COMMIT DROP", c->err);
    if (rc == AC_OK)
        rc = co_begin(co, "COPY sample_rates (currency, prefix, per_minute, "
                      "connection_fee) FROM STDIN");
    if (rc == AC_OK) {
        for (int cur = 0; cur < CUR_COUNT; cur++) {
            if (!used[cur])
                continue;
            for (int k = 0; k < c->nrates; k++) {
                cl_str(l, currency_code[cur]);
                cl_char(l, '\t');
                cl_str(l, c->rates[k].prefix);
                cl_char(l, '\t');
                cl_money4(l, in_currency(c->rates[k].per_minute, cur));
                cl_char(l, '\t');
                cl_money4(l, in_currency(c->rates[k].connection_fee, cur));
                co_row(co, l);
            }
        }
        rc = co_end(co);
    }
    if (rc == AC_OK) {
        const char *params[] = { SAMPLE_RATES_FROM };
        PGresult *res;
        rc = db_query(conn,
            "INSERT INTO ref.rates (currency, prefix, per_minute, "
            "                       connection_fee, valid_from) "
            "SELECT s.currency, s.prefix, s.per_minute, s.connection_fee, "
            "       $1::timestamptz "
            "FROM sample_rates s "
            "WHERE NOT EXISTS (SELECT 1 FROM ref.rates r "
            "                  WHERE r.plan = 'standard' "
            "                    AND r.currency = s.currency "
            "                    AND r.prefix = s.prefix "
            "                    AND r.valid_from = $1::timestamptz) "
            "ORDER BY s.currency, s.prefix", 1, params, &res, c->err);
        if (rc == AC_OK) {
            c->st.rates_added = atol(PQcmdTuples(res));
            PQclear(res);
        }
    }
    if (rc == AC_OK) {
        /* The plan `partner`: 80 % of standard on the geographic,
         * premium and shared-cost prefixes of the Zone A countries
         * outside +1 (its geographic rows price their mobiles too: a
         * plan is a complete card), nothing else (docs/billing-rules.md 2 v3: the other
         * calls are priced by standard).  A few hundred rows a currency,
         * not the thousands of mobile ranges. */
        const char *params[] = { SAMPLE_RATES_FROM };
        PGresult *res;
        rc = db_query(conn,
            "INSERT INTO ref.rates (plan, currency, prefix, per_minute, "
            "                       connection_fee, valid_from) "
            "SELECT '" SAMPLE_PLAN "', s.currency, s.prefix, "
            "       round(s.per_minute * 0.8, 4), s.connection_fee, "
            "       $1::timestamptz "
            "FROM sample_rates s "
            "JOIN ref.destinations d ON d.prefix = s.prefix "
            "JOIN ref.zones z ON z.country = d.country AND z.zone = 'A' "
            "WHERE d.kind IN ('geographic', 'premium', 'shared_cost') "
            "  AND s.prefix NOT LIKE '1%' "
            "  AND NOT EXISTS (SELECT 1 FROM ref.rates r "
            "                  WHERE r.plan = '" SAMPLE_PLAN "' "
            "                    AND r.currency = s.currency "
            "                    AND r.prefix = s.prefix "
            "                    AND r.valid_from = $1::timestamptz) "
            "ORDER BY s.currency, s.prefix", 1, params, &res, c->err);
        if (rc == AC_OK) {
            c->st.rates_added += atol(PQcmdTuples(res));
            PQclear(res);
        }
    }
    free(p);
    cl_free(l);
    free(l);
    return rc;
}

/* The reference data acbill run rates with, loaded as it loads it. */
static ac_status load_reference(load_ctx *c, PGconn *conn)
{
    c->ref = rating_ref_new();
    if (c->ref == NULL)
        return ac_fail(c->err, AC_EOSERR, "out of memory");
    return bill_load_reference(conn, c->ref, c->err);
}

static void purchase_row(copy_out *co, copy_line *l, const tenant_plan *p,
                         const char *sku, int qty, int64_t from, int64_t to,
                         long *count)
{
    cl_str(l, p->id);
    cl_char(l, '\t');
    cl_str(l, sku);
    cl_char(l, '\t');
    cl_i64(l, qty);
    cl_char(l, '\t');
    ln_time(l, from);
    cl_char(l, '\t');
    if (to == OPEN_END)
        cl_null(l);
    else
        ln_time(l, to);
    co_row(co, l);
    (*count)++;
}

static void assignment_row(copy_out *co, copy_line *l, const tenant_plan *p,
                           int j, const char *sku, long *count)
{
    char user[64];
    int64_t from, to;

    user_window(p, j, &from, &to);
    user_id(user, sizeof user, p, j);
    if (p->upper_ids)           /* Entra ids are case-insensitive */
        for (char *u = user; *u != '\0'; u++)
            if (*u >= 'a' && *u <= 'z')
                *u = (char)(*u - 'a' + 'A');
    cl_str(l, p->id);
    cl_char(l, '\t');
    cl_str(l, user);
    cl_char(l, '\t');
    cl_str(l, sku);
    cl_char(l, '\t');
    ln_time(l, from);
    cl_char(l, '\t');
    if (to == OPEN_END)
        cl_null(l);
    else
        ln_time(l, to);
    co_row(co, l);
    (*count)++;
}

/* A buyer without tax has the reason in its tax_note (docs/billing-rules.md 2: category
 * O needs one). */
#define US_NOTE "'Outside the scope of VAT: services to a business" \
    " established outside the EU and the UK.'"

/* Billing profiles (ref.customers, docs/billing-rules.md 2) for the sample tenants, with
 * the tax of their country; tenants whose id ends in 7 have none (they
 * get BILLING_PROFILE_MISSING, and their documents are held, docs/billing-rules.md 4.2).
 * Ids ending in 4 are on plan `partner` at +15 %, in 6 at -10 %
 * (make_plan() rates their charges so).  A profile already there is
 * kept: it is the operator's.  So is the seller (ref.operator): a demo
 * seller only where there is none. */
static ac_status insert_customers(load_ctx *c, PGconn *conn)
{
    ac_status rc = db_exec(conn,
        "INSERT INTO ref.operator (legal_name, address, country, tax_id,"
        " payment_details) VALUES ('Sample Telecom Resale Ltd',"
        " E'1 Sample Square\\nLondon EC2A 2BQ', 'GB', 'GB000000000',"
        " 'IBAN GB00 SAMP 0000 0000 00') ON CONFLICT (one) DO NOTHING",
        c->err);
    if (rc != AC_OK)
        return rc;
    return db_exec(conn,
        "INSERT INTO ref.customers (tenant_id, legal_name, address, country,"
        " tax_id, tax_rate, tax_note, payment_terms_days, purchase_order,"
        " email, price_plan, rate_adjustment)"
        " SELECT tenant_id, name, 'Sample Street ' || right(tenant_id, 3)"
        "   || E'\\n' || split_part(time_zone, '/', 2) || E'\\n' || z.country,"
        "   z.country, 'TAX-' || tenant_id, z.tax, z.note, 30,"
        "   'PO-' || right(tenant_id, 4), lower(tenant_id) || '@billing.example',"
        "   CASE WHEN right(tenant_id, 1) IN ('4', '6') THEN '" SAMPLE_PLAN "'"
        "   END, CASE right(tenant_id, 1) WHEN '4' THEN 0.1500"
        "   WHEN '6' THEN -0.1000 ELSE 0 END"
        " FROM usage.tenants t JOIN (VALUES"
        "   ('UTC', 'US', 0, " US_NOTE "),"
        "   ('America/New_York', 'US', 0, " US_NOTE "),"
        "   ('America/Los_Angeles', 'US', 0, " US_NOTE "),"
        "   ('America/Chicago', 'US', 0, " US_NOTE "),"
        "   ('Europe/Berlin', 'DE', 0.19, NULL),"
        "   ('Europe/Paris', 'FR', 0.20, NULL),"
        "   ('Europe/London', 'GB', 0.20, NULL),"
        "   ('Asia/Tokyo', 'JP', 0.10, NULL),"
        "   ('Australia/Sydney', 'AU', 0.10, NULL),"
        "   ('Asia/Kolkata', 'IN', 0, 'Reverse charge: the recipient"
        " accounts for the tax.'),"
        "   ('Pacific/Auckland', 'NZ', 0, 'Zero-rated export of services.'),"
        "   ('America/Sao_Paulo', 'BR', 0, 'Reverse charge: the recipient"
        " accounts for the tax.'))"
        "   AS z(zone, country, tax, note) ON z.zone = t.time_zone"
        " WHERE tenant_id ~ '^S[0-9]{5,}$' AND right(tenant_id, 1) <> '7'"
        " ON CONFLICT (tenant_id) DO NOTHING", c->err);
}

/* Tenants, purchases and assignments: three COPYs over the plans. */
static ac_status insert_tenants(load_ctx *c, copy_out *co)
{
    tenant_plan *p = malloc(sizeof *p);
    copy_line *l = calloc(1, sizeof *l);
    ac_status rc;

    if (p == NULL || l == NULL) {
        free(p);
        free(l);
        return ac_fail(c->err, AC_EOSERR, "out of memory");
    }
    rc = co_begin(co, "COPY usage.tenants (tenant_id, name, currency, "
                  "time_zone) FROM STDIN");
    if (rc == AC_OK) {
        for (long i = 0; i < c->opt->tenants; i++) {
            make_plan(c, i, p);
            cl_str(l, p->id);
            cl_char(l, '\t');
            cl_field(l, p->name);
            cl_char(l, '\t');
            cl_str(l, currency_code[p->cur]);
            cl_char(l, '\t');
            cl_str(l, zones[p->zone].name);
            co_row(co, l);
        }
        rc = co_end(co);
    }
    if (rc == AC_OK)
        rc = co_begin(co, "COPY usage.license_purchases (tenant_id, sku, "
                      "quantity, valid_from, valid_to) FROM STDIN");
    if (rc == AC_OK) {
        long *n = &c->st.purchases;
        for (long i = 0; i < c->opt->tenants; i++) {
            purchase pur[MAX_PURCHASES];
            make_plan(c, i, p);
            int np = plan_purchases(p, pur);
            for (int k = 0; k < np; k++)
                purchase_row(co, l, p, pur[k].sku, pur[k].qty, pur[k].from,
                             pur[k].to, n);
        }
        rc = co_end(co);
    }
    if (rc == AC_OK)
        rc = co_begin(co, "COPY usage.license_assignments (tenant_id, "
                      "user_id, sku, valid_from, valid_to) FROM STDIN");
    if (rc == AC_OK) {
        long *n = &c->st.assignments;
        for (long i = 0; i < c->opt->tenants; i++) {
            make_plan(c, i, p);
            for (int j = 0; j < p->users; j++) {
                const char *sku[3];
                int ns = user_skus(p, j, sku);
                for (int k = 0; k < ns; k++)
                    assignment_row(co, l, p, j, sku[k], n);
            }
        }
        rc = co_end(co);
    }
    c->st.tenants = rc == AC_OK ? c->opt->tenants : 0;
    free(p);
    cl_free(l);
    free(l);
    return rc;
}

/* ---------------------------------------------------------------- calls */

static int pick_target(const load_ctx *c, rng *r)
{
    uint64_t x = rng_below(r, c->target_weight_sum);
    for (int t = 0; t < TARGET_COUNT; t++) {
        if (x < (uint64_t)targets[t].weight)
            return t;
        x -= (uint64_t)targets[t].weight;
    }
    return TARGET_COUNT - 1;
}

/* "+" prefix and random digits (the first one 2-9, as NANP wants). */
static void make_number(char *out, size_t len, int t, rng *r)
{
    size_t n = (size_t)snprintf(out, len, "+%s", targets[t].prefix);
    for (int k = 0; k < targets[t].digits && n + 1 < len; k++)
        out[n++] = (char)(k == 0 ? '2' + rng_below(r, 8)
                                 : '0' + rng_below(r, 10));
    out[n] = '\0';
}

static void malformed_number(char *out, size_t len, const char *good,
                             rng *r)
{
    size_t n = strlen(good);
    switch (rng_below(r, 8)) {
    case 0:     /* no '+' */
        snprintf(out, len, "%s", good + 1);
        break;
    case 1:     /* too short */
        snprintf(out, len, "%.5s", good);
        break;
    case 2:     /* spaces */
        snprintf(out, len, "%.3s %.4s %s", good, good + 3, good + 7);
        break;
    case 3:     /* letters */
        snprintf(out, len, "%.*sABC", (int)(n - 3), good);
        break;
    case 4:     /* empty */
        out[0] = '\0';
        break;
    case 5:     /* too long: 16 digits */
        snprintf(out, len, "%s%.*s", good, (int)(17 - n), "0123456789");
        break;
    case 6:
        snprintf(out, len, "tel:%s", good);
        break;
    default:    /* international prefix instead of '+' */
        snprintf(out, len, "00%s", good + 1);
        break;
    }
}

static int draw_duration(rng *r)
{
    uint64_t k = rng_below(r, 1000);
    if (k < 20)
        return 0;
    if (k < 120)
        return 60 * (int)rng_range(r, 1, 60);
    if (k < 150)
        return (int)rng_range(r, 1, 29);
    if (k < 170)
        return (int)rng_range(r, 3601, 10800);
    /* 30 s .. 1 h, most calls short: the product of two uniforms. */
    int64_t a = rng_range(r, 0, 3570), b = rng_range(r, 0, 3570);
    return (int)(30 + a * b / 3570);
}

static int64_t start_at(const tenant_plan *p, int at, rng *r)
{
    switch (at) {
    case AT_START: return p->ps;
    case AT_LAST_SECOND: return p->pe - 1;
    case AT_END: return p->pe;
    case AT_BEFORE_START: return p->ps - 1 - (int64_t)rng_below(r, 6 * 3600);
    case AT_AFTER_END: return p->pe + (int64_t)rng_below(r, 6 * 3600);
    default: return p->ps + (int64_t)rng_below(r, (uint64_t)(p->pe - p->ps));
    }
}

/* ------------------------------------------------------ one tenant's calls
 *
 * A tenant's calls are generated into a buffer (call_rec, 72 bytes a
 * call), sorted in place into acbill's order, rated by the billing engine
 * to give each call its provider charge, and written in that order (by
 * tenant, then by time, as a usage export lists them).  A tenant with
 * more than opt->slice_calls calls (SLICE_CALLS by default) is done in
 * time slices: its call stream is generated again for each slice and
 * only the slice's calls are kept, so the buffer holds about that many
 * calls (4.6 MB by default) whatever the tenant's size, and the calls
 * come out the same as in one piece. */

#define SLICE_CALLS 65536

/* The initiator of a call, when it is not another user. */
enum { INIT_ORGANIZER = -1, INIT_NULL = -2 };

/* call_rec.flags */
enum {
    CALL_CHARGED = 1,   /* the provider reported a charge */
    CALL_IN_USD = 2,    /* ... in USD, not the invoice currency */
    CALL_PRICED = 4     /* provider_charge below is set */
};

typedef struct {
    unsigned char uid[16];      /* usage_id */
    int64_t start;              /* UTC seconds */
    int64_t charge;             /* provider_charge, with CALL_PRICED */
    int32_t duration;           /* seconds (ignored for BAD_NULL_DURATION) */
    int32_t org;                /* user index, or -1..-3: a former user */
    int32_t initiator;          /* user index, INIT_ORGANIZER, INIT_NULL */
    int16_t how;                /* 0..9999: a deliberate difference? */
    int8_t off;                 /* per mille for "a little off" */
    int8_t bad;                 /* BAD_* or -1 */
    uint8_t charge_cur;         /* CUR_* of the charge */
    uint8_t flags;              /* CALL_* */
    char number[22];            /* destination_number as written */
} call_rec;

_Static_assert(sizeof(call_rec) <= 72, "a buffered call stays small");

/* Buffers reused from one tenant to the next. */
typedef struct {
    call_rec *calls;
    size_t calls_cap;
} tenant_bufs;

/* Make room for n elements of size in *buf (capacity *cap). */
static int reserve(void **buf, size_t *cap, size_t n, size_t size)
{
    if (n <= *cap)
        return 0;
    if (n > SIZE_MAX / size)
        return -1;
    void *p = realloc(*buf, n * size);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

/* The organizer text of user index org (negative: a former employee). */
static void organizer_text(char *out, size_t len, const tenant_plan *p,
                           int org)
{
    if (org >= 0)
        user_id(out, len, p, org);
    else
        snprintf(out, len, "former%03d@%s", -org, p->domain);
}

/* Mask the last n digits of number with '*', as Microsoft exports the
 * numbers of tenants located in DE (3) or FR (4) (docs/billing-rules.md 1); with spaced,
 * a space after the first two digits, as its documented example has.
 * number has room for the space. */
static void mask_number(char *number, int n, int spaced)
{
    size_t len = strlen(number);
    for (size_t i = len; n > 0 && i > 1; n--)
        number[--i] = '*';
    if (spaced && len > 4) {
        memmove(number + 4, number + 3, len - 2);
        number[3] = ' ';
    }
}

/* One call of tenant p into *k; show is a showcase index or -1.  The
 * provider charge is decided later (set_charge), from the draws kept
 * here. */
static void make_call(const load_ctx *c, const tenant_plan *p, int show,
                      rng *r, call_rec *k)
{
    char number[64], good[32];
    int bad = -1, at = AT_RANDOM, t, duration;
    int licensed = p->n_add + p->n_pea;
    int org;
    int64_t start;

    /* Organizer: skewed towards the first (heaviest) users. */
    uint64_t a = rng_below(r, (uint64_t)licensed);
    uint64_t b = rng_below(r, (uint64_t)licensed);
    org = (int)(a * b / (uint64_t)licensed);

    if (show >= 0) {
        bad = showcase[show].bad;
        at = showcase[show].at;
        t = c->showcase_target[show];
        if (showcase[show].first_user)
            org = 0;
    } else {
        uint64_t x = rng_below(r, 1000);
        if (x < 5)
            bad = (int)rng_below(r, BAD_KINDS);
        else if (x == 5)
            at = (int)rng_below(r, 5);
        t = pick_target(c, r);
    }
    if (t < 0)
        t = c->us_target;

    if (at != AT_RANDOM)
        org = 0;                     /* licensed all month */
    start = start_at(p, at, r);
    if (at == AT_RANDOM) {
        /* Keep the call inside the organizer's licence window. */
        int64_t from, to;
        user_window(p, org, &from, &to);
        int64_t lo = from > p->ps ? from : p->ps;
        int64_t hi = to < p->pe ? to : p->pe;
        if ((start < lo || start >= hi) && hi > lo)
            start = lo + (int64_t)rng_below(r, (uint64_t)(hi - lo));
    }
    if (bad == BAD_UNLICENSED) {
        if (p->late_user >= 0 && rng_below(r, 2) == 0) {
            org = p->late_user;      /* a call before the assignment */
            start = p->ps + (int64_t)rng_below(r, (uint64_t)(p->late_at -
                                                             p->ps));
        } else if (p->users > licensed) {
            org = licensed + (int)rng_below(r, (uint64_t)(p->users -
                                                          licensed));
        } else {
            org = -1 - (int)rng_below(r, 3);   /* a former employee */
        }
    }

    make_number(good, sizeof good, t, r);
    if (bad == BAD_NUMBER) {
        malformed_number(number, sizeof number, good, r);
    } else if (bad == BAD_UNKNOWN_PREFIX) {
        if (rng_below(r, 2) == 0)
            snprintf(number, sizeof number, "+999%08" PRIu64,
                     rng_below(r, 100000000));
        else
            snprintf(number, sizeof number, "+0%010" PRIu64,
                     rng_below(r, 10000000000ULL));
    } else {
        strcpy(number, good);
        if (zones[p->zone].mask > 0)
            mask_number(number, zones[p->zone].mask, rng_below(r, 2));
    }

    duration = draw_duration(r);
    if (show >= 0 && showcase[show].duration >= 0)
        duration = showcase[show].duration;
    if (bad == BAD_NEGATIVE_DURATION)
        duration = -(int)rng_range(r, 1, 3600);

    uint64_t who = rng_below(r, 100);
    int other = (int)rng_below(r, (uint64_t)p->users);

    /* What the provider reports: a charge on about 92% of the calls, some
     * of a non-USD tenant's in USD, and a draw for the deliberate
     * differences (set_charge). */
    int charged = rng_below(r, 100) >= 8;
    int in_usd = rng_below(r, 100) < 15;
    int how = (int)rng_below(r, 10000);
    int off = (int)rng_range(r, 10, 30);
    if (rng_below(r, 2) == 0)
        off = -off;

    uuid_draw(r, k->uid);
    k->start = start;
    k->charge = 0;
    k->duration = duration;
    k->org = org;
    k->initiator = who < 85 ? INIT_ORGANIZER : who < 95 ? other : INIT_NULL;
    k->how = (int16_t)how;
    k->off = (int8_t)off;
    k->bad = (int8_t)bad;
    k->charge_cur = (uint8_t)(in_usd ? CUR_USD : p->cur);
    k->flags = (uint8_t)(charged && bad < 0 ? CALL_CHARGED : 0);
    if (k->charge_cur != p->cur)
        k->flags |= CALL_IN_USD;
    snprintf(k->number, sizeof k->number, "%s", number);
}

/* Licences and pool of tenant p for the period, read by bill.c's own
 * queries from the purchases and assignments insert_tenants() wrote (in
 * this transaction). */
static ac_status tenant_entitlements(load_ctx *c, PGconn *conn,
                                     const tenant_plan *p,
                                     rating_licences **lic, int32_t *pool,
                                     int32_t *usca_pool)
{
    bill_context ctx = { .ref = c->ref };
    bill_tenant_info t = {
        .tenant_id = p->id, .name = p->name,
        .currency = currency_code[p->cur], .time_zone = zones[p->zone].name
    };
    snprintf(ctx.period, sizeof ctx.period, "%04d-%02d", c->opt->year,
             c->opt->month);
    snprintf(ctx.period_date, sizeof ctx.period_date, "%s-01", ctx.period);
    return bill_entitlements(conn, &ctx, &t, lic, pool, usca_pool, c->err);
}

/* (start_time, usage_id): the order acbill rates a tenant's calls in
 * (memcmp of a uuid's bytes orders it as PostgreSQL does). */
static int call_order(const void *a, const void *b)
{
    const call_rec *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return memcmp(x->uid, y->uid, sizeof x->uid);
}

/* The charge at the plain rate in currency cur for minutes minutes (the
 * rate of the call's number at its start, as the engine picks it): 1
 * with *charge set, or 0 when there is no such rate. */
static int plain_charge(const load_ctx *c, const tenant_plan *p,
                        const call_rec *k, int cur, int32_t minutes,
                        int64_t *charge)
{
    int64_t pm, fee;
    int len, from_plan;
    rating_number n;
    /* The tenant's price: its plan, then standard, adjusted (docs/billing-rules.md 3). */
    if (!rating_number_parse(k->number, &n) ||
        !rating_ref_plan_rate(c->ref, p->price_plan, currency_code[cur],
                              n.digits, k->start * 1000000, &pm, &fee, &len,
                              &from_plan) ||
        rating_adjust_rate(pm, p->adjustment, &pm) != 0 ||
        rating_adjust_rate(fee, p->adjustment, &fee) != 0)
        return 0;
    *charge = minutes > 0 ? minutes * pm + fee : 0;
    return 1;
}

/* The provider's charge of call k given acbill's result r (NULL for a
 * call outside the period, which acbill does not bill now). */
static void set_charge(load_ctx *c, const tenant_plan *p, call_rec *k,
                       const rating_result *r)
{
    int64_t charge = 0;
    int priced = 0;

    if (!(k->flags & CALL_CHARGED))
        return;
    if (r == NULL) {
        /* Not on this period's invoice: the plain rate. */
        priced = plain_charge(c, p, k, k->charge_cur,
                              money_minutes(k->duration), &charge);
    } else if (r->outcome == OUTCOME_REJECTED) {
        priced = 0;
    } else if (k->flags & CALL_IN_USD) {
        /* The same minutes, at the USD rate (not compared). */
        priced = r->billed_minutes == 0 ||
                 plain_charge(c, p, k, CUR_USD, r->billed_minutes, &charge);
    } else {
        priced = 1;
        charge = r->amount;
        int cause = -1;
        if (k->how < DIFF_WRONG_PER_10K) {
            charge = r->amount * 3 + 10000;
            cause = SAMPLE_DIFF_WRONG;
        } else if (k->how < DIFF_WRONG_PER_10K + DIFF_SLIP_PER_10K) {
            switch (r->outcome) {
            case OUTCOME_POOL:
                if (plain_charge(c, p, k, p->cur, r->minutes, &charge))
                    cause = SAMPLE_DIFF_POOL;
                break;
            case OUTCOME_SPLIT:
                /* Every minute charged, as if there were no pool. */
                charge = r->minutes * r->per_minute + r->connection_fee;
                cause = SAMPLE_DIFF_POOL;
                break;
            case OUTCOME_EXEMPT:
                if (plain_charge(c, p, k, p->cur, r->minutes, &charge))
                    cause = SAMPLE_DIFF_EXEMPT;
                break;
            case OUTCOME_BILLED:
                /* Only where 1% to 3% is at least 0.01. */
                if (r->amount >= 10000) {
                    /* Truncated toward 0: within 3% exactly. */
                    charge = r->amount + r->amount * k->off / 1000;
                    cause = SAMPLE_DIFF_OFF;
                }
                break;
            default:
                break;
            }
        }
        /* A difference below 0.01 (a one-minute pool call at a cheap
         * rate) is no difference to finance: then the charge matches. */
        if (cause >= 0 && money_cent_apart(charge, r->amount))
            c->st.differing[cause]++;
        else
            charge = r->amount;
        c->st.compared_calls++;
    }
    if (priced) {
        k->flags |= CALL_PRICED;
        k->charge = charge;
    }
}

/* 64 bits of FNV-1a over n bytes, continuing from h. */
static uint64_t fnv64(const void *b, size_t n, uint64_t h)
{
    const unsigned char *p = b;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* The call_id and conference_id of call k (UUID text, 37 bytes each),
 * derived from what the call is: tenant, start, organizer, number and
 * duration for the call, tenant, organizer and hour for the conference.
 * A call exported twice under two usage ids (a duplicate) so carries the
 * same ids, as in Microsoft's data. */
static void call_ids(const tenant_plan *p, const call_rec *k,
                     char call_id[37], char conf_id[37])
{
    unsigned char u[16];
    int64_t hour = k->start / 3600;
    for (int half = 0; half < 2; half++) {
        uint64_t h = fnv64(p->id, strlen(p->id),
                           0xcbf29ce484222325ULL + (uint64_t)half);
        h = fnv64(&k->start, sizeof k->start, h);
        h = fnv64(&k->org, sizeof k->org, h);
        h = fnv64(k->number, strlen(k->number), h);
        h = fnv64(&k->duration, sizeof k->duration, h);
        memcpy(u + 8 * half, &h, 8);
    }
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);   /* version 4 */
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    uuid_text(u, call_id);
    for (int half = 0; half < 2; half++) {
        uint64_t h = fnv64(p->id, strlen(p->id),
                           0x84222325cbf29ce4ULL + (uint64_t)half);
        h = fnv64(&k->org, sizeof k->org, h);
        h = fnv64(&hour, sizeof hour, h);
        memcpy(u + 8 * half, &h, 8);
    }
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    uuid_text(u, conf_id);
}

/* Rate tenant p's calls of the period with the billing engine, in
 * (start_time, usage_id) order, and set every call's provider charge. */
/* Rate the n calls in tb (one time slice of tenant p, sorted here into
 * acbill's order) with rt and set their provider charges. */
static ac_status rate_slice(load_ctx *c, const tenant_plan *p,
                            rating_tenant *rt, tenant_bufs *tb, size_t n)
{
    ac_status rc = AC_OK;

    /* In place: the calls are then also written in this order, as a
     * usage export lists them. */
    if (n > 1)
        qsort(tb->calls, n, sizeof *tb->calls, call_order);
    for (size_t i = 0; rc == AC_OK && i < n; i++) {
        call_rec *k = &tb->calls[i];
        if (k->start < p->ps || k->start >= p->pe) {
            set_charge(c, p, k, NULL);      /* not on this invoice */
            continue;
        }
        char uid[37], organizer[96], call_id[37], conf_id[37];
        rating_call call;
        rating_result r;

        uuid_text(k->uid, uid);
        call_ids(p, k, call_id, conf_id);
        call.call_id = call_id;
        call.conference_id = conf_id;
        organizer_text(organizer, sizeof organizer, p, k->org);
        call.usage_id = uid;
        call.start_us = k->start * 1000000;
        call.organizer_id = k->bad == BAD_NO_ORGANIZER ? NULL : organizer;
        call.number = k->number;
        call.has_duration = k->bad != BAD_NULL_DURATION;
        call.duration_seconds = k->duration;
        rc = rating_tenant_rate(rt, &call, &r, c->err);
        if (rc == AC_OK)
            set_charge(c, p, k, &r);
    }
    return rc;
}

/* Write call k of tenant p. */
static void write_call(load_ctx *c, const tenant_plan *p, const call_rec *k,
                       copy_out *co, copy_line *l)
{
    char organizer[96], initiator[96], call_id[37], conf_id[37];

    organizer_text(organizer, sizeof organizer, p, k->org);
    call_ids(p, k, call_id, conf_id);
    ln_uuid_bytes(l, k->uid);                   /* usage_id */
    cl_char(l, '\t');
    cl_bytes(l, call_id, 36);
    cl_char(l, '\t');
    cl_bytes(l, conf_id, 36);
    cl_char(l, '\t');
    cl_str(l, p->id);
    cl_char(l, '\t');
    if (k->bad == BAD_NO_ORGANIZER)
        cl_null(l);
    else
        cl_field(l, organizer);
    cl_char(l, '\t');
    if (k->initiator == INIT_NULL) {
        cl_null(l);
    } else if (k->initiator == INIT_ORGANIZER) {
        cl_field(l, organizer);
    } else {
        user_id(initiator, sizeof initiator, p, k->initiator);
        cl_field(l, initiator);
    }
    cl_char(l, '\t');
    cl_field(l, k->number);
    cl_char(l, '\t');
    ln_time(l, k->start);
    cl_char(l, '\t');
    if (k->bad == BAD_NULL_DURATION)
        cl_null(l);
    else
        cl_i64(l, k->duration);
    cl_char(l, '\t');
    if (k->flags & CALL_PRICED) {
        cl_money4(l, k->charge);
        cl_char(l, '\t');
        cl_str(l, currency_code[k->charge_cur]);
        c->st.charged_calls++;
    } else {
        cl_null(l);
        cl_char(l, '\t');
        cl_null(l);
    }
    co_row(co, l);

    c->st.calls++;
    if (k->bad >= 0)
        c->st.bad_calls++;
    if (k->start < p->ps || k->start >= p->pe)
        c->st.outside_calls++;
}

/* Every tenant in turn: generate its calls into the buffer, rate them,
 * write them (in the order generated) into one COPY. */
/* The calls, tenant by tenant: generated into tb, rated with acbill's
 * entitlements (queried between two COPYs), then copied in. */
static ac_status insert_calls(load_ctx *c, PGconn *conn, copy_out *co)
{
    tenant_plan *p = malloc(sizeof *p);
    copy_line *l = calloc(1, sizeof *l);
    tenant_bufs tb = { 0 };
    ac_status rc = AC_OK;
    uint64_t period = (uint64_t)c->opt->year * 12 + (uint64_t)c->opt->month;

    if (p == NULL || l == NULL) {
        free(p);
        free(l);
        return ac_fail(c->err, AC_EOSERR, "out of memory");
    }
    for (long i = 0; rc == AC_OK && i < c->opt->tenants; i++) {
        rng r;
        rating_licences *lic = NULL;
        rating_tenant *rt = NULL;
        int32_t pool = 0, usca_pool = 0;

        make_plan(c, i, p);
        size_t n = (size_t)p->calls;
        if (n == 0)
            continue;
        /* Slices of equal time, whole hours from 6 hours before the
         * period: the calls' starts are spread evenly over the period, and
         * a few lie up to 6 hours either side.  The first and the last
         * slice are open-ended, so every call is in exactly one. */
        size_t per = c->opt->slice_calls > 0 ? (size_t)c->opt->slice_calls
                                              : SLICE_CALLS;
        size_t slices = n / per + 1;
        int64_t lo = p->ps - 6 * 3600, span = p->pe + 6 * 3600 - lo;
        int64_t width = (span + (int64_t)slices - 1) / (int64_t)slices;
        width = (width + 3599) / 3600 * 3600;
        slices = (size_t)((span + width - 1) / width);
        size_t want = slices == 1 ? n : 2 * per;
        if (p->calls > (long long)UINT32_MAX ||
            reserve((void **)&tb.calls, &tb.calls_cap, want,
                    sizeof *tb.calls) != 0) {
            rc = ac_fail(c->err, AC_EOSERR, "out of memory for tenant %s's "
                         "%lld calls (%zu bytes a call)", p->id, p->calls,
                         sizeof *tb.calls);
            break;
        }
        rc = tenant_entitlements(c, conn, p, &lic, &pool, &usca_pool);
        if (rc == AC_OK) {
            rt = rating_tenant_new(c->ref, lic, currency_code[p->cur], pool,
                                   FAIR_USE_MINUTES);
            if (rt == NULL)
                rc = ac_fail(c->err, AC_EOSERR, "out of memory");
        }
        if (rc == AC_OK)
            rc = rating_tenant_set_usca_pool(rt, usca_pool, c->err);
        if (rc == AC_OK)
            rc = rating_tenant_set_price(rt, p->price_plan, p->adjustment,
                                         c->err);
        if (rc == AC_OK)
            rc = co_begin(co, "COPY usage.dialout_calls (usage_id, call_id, "
                          "conference_id, tenant_id, organizer_id, "
                          "initiator_id, destination_number, start_time, "
                          "duration_seconds, provider_charge, "
                          "provider_currency) FROM STDIN");
        if (rc == AC_OK) {
            int show = i == 0 && p->calls >= SHOWCASE_MIN
                       ? SHOWCASE_COUNT : 0;
            for (size_t sl = 0; sl < slices && co->rc == AC_OK; sl++) {
                int64_t from = sl == 0 ? INT64_MIN
                               : lo + (int64_t)sl * width;
                int64_t to = sl + 1 == slices ? INT64_MAX
                             : lo + (int64_t)(sl + 1) * width;
                size_t kept = 0;
                call_rec one, prev;
                int have_prev = 0;
                /* The same stream each time: the same calls. */
                rng_stream(&r, c->opt->seed, STREAM_CALLS | (period << 8),
                           (uint64_t)i);
                for (size_t k = 0; k < n; k++) {
                    make_call(c, p, k < (size_t)show ? (int)k : -1, &r,
                              &one);
                    /* About 1 call in 512 is exported twice: the same
                     * call under a new usage id (docs/billing-rules.md 3, DUPLICATE). */
                    int dup = have_prev && k >= (size_t)show &&
                              one.uid[0] == 0 && one.uid[1] < 0x80;
                    if (dup) {
                        unsigned char u[16];
                        memcpy(u, one.uid, sizeof u);
                        one = prev;
                        memcpy(one.uid, u, sizeof u);
                    }
                    prev = one;
                    have_prev = 1;
                    if (slices > 1 && (one.start < from || one.start >= to))
                        continue;
                    c->st.duplicate_calls += dup && one.start >= p->ps &&
                                             one.start < p->pe;
                    if (kept == tb.calls_cap &&
                        reserve((void **)&tb.calls, &tb.calls_cap,
                                2 * kept + 1024, sizeof *tb.calls) != 0) {
                        co->rc = ac_fail(c->err, AC_EOSERR,
                                         "out of memory");
                        break;
                    }
                    tb.calls[kept++] = one;
                }
                if (co->rc == AC_OK)
                    co->rc = rate_slice(c, p, rt, &tb, kept);
                for (size_t k = 0; k < kept && co->rc == AC_OK; k++)
                    write_call(c, p, &tb.calls[k], co, l);
            }
            if (co->rc == AC_OK) {
                char why[AC_ERR_MAX];
                if (rating_tenant_finish(rt, why) != AC_OK)
                    co->rc = ac_fail(c->err, AC_EINTERNAL, "sample: tenant "
                                     "%s does not rate: %s", p->id, why);
            }
            rc = co_end(co);    /* keeps the first error of the COPY */
        }
        rating_tenant_free(rt);
        rating_licences_free(lic);
    }
    free(tb.calls);
    free(p);
    cl_free(l);
    free(l);
    return rc;
}

/* ---------------------------------------------------------------- API */

ac_status sample_parse_period(const char *text, int *year, int *month,
                              char *err)
{
    if (text == NULL || strlen(text) != 7 || text[4] != '-')
        return ac_fail(err, AC_EUSAGE, "period must be YYYY-MM (got '%s')",
                       text ? text : "");
    for (int i = 0; i < 7; i++)
        if (i != 4 && (text[i] < '0' || text[i] > '9'))
            return ac_fail(err, AC_EUSAGE, "period must be YYYY-MM (got "
                           "'%s')", text);
    int y = atoi(text), m = atoi(text + 5);
    if (m < 1 || m > 12)
        return ac_fail(err, AC_EUSAGE, "period '%s': month must be 01 to 12",
                       text);
    if (y < SAMPLE_MIN_YEAR || y > SAMPLE_MAX_YEAR)
        return ac_fail(err, AC_EUSAGE, "period '%s': year must be %d to %d",
                       text, SAMPLE_MIN_YEAR, SAMPLE_MAX_YEAR);
    *year = y;
    *month = m;
    return AC_OK;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

ac_status sample_load(PGconn *conn, const sample_options *opt,
                      sample_stats *stats, char *err)
{
    load_ctx *c;
    copy_out *co;
    ac_status rc;
    double t0 = now_seconds();

    if (opt->year < SAMPLE_MIN_YEAR || opt->year > SAMPLE_MAX_YEAR ||
        opt->month < 1 || opt->month > 12)
        return ac_fail(err, AC_EUSAGE, "period %04d-%02d is out of range",
                       opt->year, opt->month);
    if (opt->tenants < 1 || opt->tenants > SAMPLE_MAX_TENANTS)
        return ac_fail(err, AC_EUSAGE, "tenants must be 1 to %ld (got %ld)",
                       SAMPLE_MAX_TENANTS, opt->tenants);
    if (opt->calls < 0 || opt->calls > SAMPLE_MAX_CALLS)
        return ac_fail(err, AC_EUSAGE, "calls must be 0 to %lld (got %lld)",
                       SAMPLE_MAX_CALLS, opt->calls);
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        return ac_fail(err, AC_EINTERNAL, "sample_load needs a connection "
                       "outside any transaction");

    c = calloc(1, sizeof *c);
    co = malloc(sizeof *co);
    if (c == NULL || co == NULL) {
        free(c);
        free(co);
        return ac_fail(err, AC_EOSERR, "out of memory");
    }
    c->opt = opt;
    c->err = err;
    co->conn = conn;
    co->err = err;
    co->rc = AC_OK;
    co->len = 0;

    /* Call shares: floor(M * w_i / W), the remainder one each to the
     * first tenants. */
    for (long i = 0; i < opt->tenants; i++)
        c->weight_sum += tenant_weight(i);
    long long given = 0;
    for (long i = 0; i < opt->tenants; i++)
        given += (long long)((uint64_t)opt->calls * tenant_weight(i) /
                             c->weight_sum);
    c->remainder = opt->calls - given;

    for (int t = 0; t < TARGET_COUNT; t++) {
        c->target_weight_sum += (uint64_t)targets[t].weight;
        if (strcmp(targets[t].prefix, "1212") == 0)
            c->us_target = t;
    }
    for (int s = 0; s < SHOWCASE_COUNT; s++) {
        c->showcase_target[s] = -1;
        for (int t = 0; t < TARGET_COUNT; t++)
            if (strcmp(targets[t].prefix, showcase[s].prefix) == 0)
                c->showcase_target[s] = t;
    }

    rc = check_schema(conn, err);
    if (rc == AC_OK)
        rc = db_exec(conn, "BEGIN; SET LOCAL synchronous_commit = off;"
                     " SELECT pg_advisory_xact_lock(" SAMPLE_LOCK_KEY ")",
                     err);
    if (rc == AC_OK)
        rc = handle_existing(c, conn);
    if (rc == AC_OK)
        rc = zone_bounds(c, conn);
    if (rc == AC_OK)
        rc = build_rates(c, conn);
    if (rc == AC_OK)
        rc = insert_rates(c, conn, co);
    if (rc == AC_OK)
        rc = load_reference(c, conn);
    if (rc == AC_OK)
        rc = insert_tenants(c, co);
    if (rc == AC_OK)
        rc = insert_customers(c, conn);
    if (rc == AC_OK)
        rc = insert_calls(c, conn, co);
    if (rc == AC_OK)
        rc = db_exec(conn, "COMMIT", err);
    if (rc != AC_OK) {
        if (PQtransactionStatus(conn) != PQTRANS_IDLE)
            db_exec(conn, "ROLLBACK", NULL);
    } else {
        char aerr[AC_ERR_MAX];
        if (db_exec(conn, "ANALYZE usage.tenants, usage.license_purchases, "
                    "usage.license_assignments, usage.dialout_calls, "
                    "ref.rates", aerr) != AC_OK)
            ac_warn("sample: ANALYZE failed: %s", aerr);
        c->st.seconds = now_seconds() - t0;
        if (stats != NULL)
            *stats = c->st;
    }
    free(c->rates);
    rating_ref_free(c->ref);
    free(c);
    free(co);
    return rc;
}

/* ------------------------------------------------------------ command */

/* Parse a whole decimal number in [lo, hi]. */
static int parse_count(const char *s, long long lo, long long hi,
                       long long *out)
{
    char *end;
    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_seed(const char *s, uint64_t *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static void sample_usage(FILE *out)
{
    fprintf(out,
        "usage: acbill sample --period YYYY-MM --tenants N --calls M\n"
        "                     [--seed S] [--replace] [--db CONNINFO]\n"
        "\n"
        "Loads reproducible sample data into a migrated database: N tenants\n"
        "(S00001 ...) with licences, the ref.rates their currencies need, and\n"
        "M dial-out calls in the period, about 0.5%% of them deliberately\n"
        "bad.  Provider charges are what acbill bills for each call, except\n"
        "for a deliberate 1%% to 2%% that the Reconciliation sheet lists.\n"
        "The same period, N, M and seed give byte-identical data.\n"
        "\n"
        "  --period YYYY-MM  the month the calls fall in (tenant local time)\n"
        "  --tenants N       number of tenants, 1 to %ld\n"
        "  --calls M         number of calls in total, 0 to %lld\n"
        "  --seed S          PRNG seed, a whole number (default 1)\n"
        "  --replace         delete earlier sample tenants (ids S + digits)\n"
        "                    with their calls and licences first; without\n"
        "                    it, existing sample tenants are an error (65)\n"
        "  --db CONNINFO     database (default: the libpq environment)\n",
        SAMPLE_MAX_TENANTS, SAMPLE_MAX_CALLS);
}

int cmd_sample(int argc, char **argv)
{
    static const struct option opts[] = {
        { "period", required_argument, NULL, 'p' },
        { "tenants", required_argument, NULL, 't' },
        { "calls", required_argument, NULL, 'c' },
        { "seed", required_argument, NULL, 's' },
        { "replace", no_argument, NULL, 'r' },
        { "db", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    sample_options opt = { .seed = 1 };
    const char *conninfo = NULL, *period = NULL;
    const char *tenants = NULL, *calls = NULL;
    char err[AC_ERR_MAX] = "";
    long long v;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': period = optarg; break;
        case 't': tenants = optarg; break;
        case 'c': calls = optarg; break;
        case 's':
            if (parse_seed(optarg, &opt.seed) != 0)
                return ac_usage_error("sample", "--seed must be a whole "
                                      "number from 0 to %" PRIu64 " (got "
                                      "'%s')", UINT64_MAX, optarg);
            break;
        case 'r': opt.replace = 1; break;
        case 'd': conninfo = optarg; break;
        case 'h':
            sample_usage(stdout);
            return AC_OK;
        default:
            return ac_usage_getopt("sample", c, argv);
        }
    }
    if (optind < argc)
        return ac_usage_error("sample", "unexpected argument '%s'",
                              argv[optind]);
    if (period == NULL || tenants == NULL || calls == NULL)
        return ac_usage_error("sample", "--period, --tenants and --calls "
                              "are required");
    if (sample_parse_period(period, &opt.year, &opt.month, err) != AC_OK)
        return ac_usage_error("sample", "%s", err);
    if (parse_count(tenants, 1, SAMPLE_MAX_TENANTS, &v) != 0)
        return ac_usage_error("sample", "--tenants must be a whole number "
                              "from 1 to %ld (got '%s')",
                              SAMPLE_MAX_TENANTS, tenants);
    opt.tenants = (long)v;
    if (parse_count(calls, 0, SAMPLE_MAX_CALLS, &v) != 0)
        return ac_usage_error("sample", "--calls must be a whole number "
                              "from 0 to %lld (got '%s')",
                              SAMPLE_MAX_CALLS, calls);
    opt.calls = v;

    PGconn *conn;
    sample_stats st;
    ac_status rc = db_connect(conninfo, &conn, err);
    if (rc != AC_OK) {
        ac_error("sample: %s", err);
        return rc;
    }
    rc = sample_load(conn, &opt, &st, err);
    PQfinish(conn);
    if (rc != AC_OK) {
        ac_error("sample: %s", err);
        return rc;
    }
    ac_info("sample: period %04d-%02d seed %" PRIu64 ": %ld tenants, "
            "%lld calls (%lld bad, %lld exported twice, %lld outside the "
            "local month), %ld purchases, %ld assignments, %ld rates added, "
            "%.1f s",
            opt.year, opt.month, opt.seed, st.tenants, st.calls,
            st.bad_calls, st.duplicate_calls, st.outside_calls,
            st.purchases, st.assignments,
            st.rates_added, st.seconds);
    ac_info("sample: %lld calls carry a provider charge; of the %lld "
            "compared with acbill's amount, %lld differ on purpose (pool "
            "%lld, add-on exempt %lld, a little off %lld, wrong %lld)",
            st.charged_calls, st.compared_calls,
            st.differing[SAMPLE_DIFF_POOL] + st.differing[SAMPLE_DIFF_EXEMPT] +
            st.differing[SAMPLE_DIFF_OFF] + st.differing[SAMPLE_DIFF_WRONG],
            st.differing[SAMPLE_DIFF_POOL], st.differing[SAMPLE_DIFF_EXEMPT],
            st.differing[SAMPLE_DIFF_OFF], st.differing[SAMPLE_DIFF_WRONG]);
    return AC_OK;
}
