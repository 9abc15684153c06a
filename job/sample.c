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
 *   from SAMPLE_RATES_FROM.  provider_charge is what those rates give,
 *   usually exactly, sometimes a little off or deliberately wrong, and
 *   null on some calls.
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

#include "commands.h"
#include "db.h"
#include "log.h"

/* An arbitrary constant identifying acbill sample's advisory lock. */
#define SAMPLE_LOCK_KEY "7254106202"
#define COPY_BUF_SIZE   (64 * 1024)
#define LINE_SIZE       4096
#define MAX_USERS       20000
#define SHOWCASE_MIN    200     /* S00001 needs this many calls for it */
#define OPEN_END        INT64_MAX
#define DAY             86400

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

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* 00:00 UTC on the first of the month `back` months before year-month. */
static int64_t month_start_utc(int year, int month, int back)
{
    int64_t total = (int64_t)year * 12 + (month - 1) - back;
    return days_from_civil(total / 12, (int)(total % 12) + 1, 1) * DAY;
}

/* ------------------------------------------------------- static tables */

enum { CUR_USD, CUR_EUR, CUR_GBP, CUR_AUD, CUR_COUNT };
static const char *const currency_code[CUR_COUNT] = {
    "USD", "EUR", "GBP", "AUD"
};
/* Sample exchange rates against USD, in percent. */
static const int64_t currency_pct[CUR_COUNT] = { 100, 92, 79, 152 };

static const struct {
    const char *name;
    int currency;
    const char *suffix;
} zones[] = {
    { "UTC", CUR_USD, "Ltd" },
    { "Europe/Berlin", CUR_EUR, "GmbH" },
    { "Europe/London", CUR_GBP, "Ltd" },
    { "America/New_York", CUR_USD, "Inc." },
    { "America/Los_Angeles", CUR_USD, "Inc." },
    { "Asia/Tokyo", CUR_USD, "K.K." },
    { "Australia/Sydney", CUR_AUD, "Pty Ltd" },
    { "Europe/Paris", CUR_EUR, "SAS" },
    { "America/Chicago", CUR_USD, "LLC" },
    { "Asia/Kolkata", CUR_USD, "Pvt Ltd" },
    { "Pacific/Auckland", CUR_USD, "Ltd" },
    { "America/Sao_Paulo", CUR_USD, "Ltda" },
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

typedef struct {
    char b[LINE_SIZE];
    size_t n;
    int overflow;
} line;

static void ln_bytes(line *l, const char *s, size_t k)
{
    if (l->n + k >= sizeof l->b) {
        l->overflow = 1;
        return;
    }
    memcpy(l->b + l->n, s, k);
    l->n += k;
}

static void ln_raw(line *l, const char *s)
{
    ln_bytes(l, s, strlen(s));
}

static void ln_char(line *l, char c)
{
    ln_bytes(l, &c, 1);
}

/* A text value, escaped for COPY's text format. */
static void ln_text(line *l, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\': ln_bytes(l, "\\\\", 2); break;
        case '\t': ln_bytes(l, "\\t", 2); break;
        case '\n': ln_bytes(l, "\\n", 2); break;
        case '\r': ln_bytes(l, "\\r", 2); break;
        default: ln_char(l, *s);
        }
    }
}

static void ln_null(line *l)
{
    ln_bytes(l, "\\N", 2);
}

static void ln_i64(line *l, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    ln_bytes(l, tmp, (size_t)n);
}

/* 1/10000 units as a decimal with four places. */
static void ln_money(line *l, int64_t v)
{
    char tmp[32];
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int n = snprintf(tmp, sizeof tmp, "%s%" PRIu64 ".%04" PRIu64,
                     v < 0 ? "-" : "", a / 10000, a % 10000);
    ln_bytes(l, tmp, (size_t)n);
}

/* Seconds since the epoch as "YYYY-MM-DD HH:MM:SS+00". */
static void ln_time(line *l, int64_t t)
{
    char tmp[40];
    int64_t days = t >= 0 ? t / DAY : -((-t + DAY - 1) / DAY);
    int64_t sec = t - days * DAY;
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(tmp, sizeof tmp, "%04d-%02d-%02d %02d:%02d:%02d+00", y,
                     m, d, (int)(sec / 3600), (int)(sec / 60 % 60),
                     (int)(sec % 60));
    ln_bytes(l, tmp, (size_t)n);
}

/* A random version 4 UUID from the stream. */
static void ln_uuid(line *l, rng *r)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char u[16];
    uint64_t a = rng_next(r), b = rng_next(r);
    char tmp[36];
    int k = 0;

    for (int i = 0; i < 8; i++) {
        u[i] = (unsigned char)(a >> (8 * i));
        u[8 + i] = (unsigned char)(b >> (8 * i));
    }
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            tmp[k++] = '-';
        tmp[k++] = hex[u[i] >> 4];
        tmp[k++] = hex[u[i] & 15];
    }
    ln_bytes(l, tmp, 36);
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
static void co_row(copy_out *co, line *l)
{
    ln_char(l, '\n');
    if (co->rc == AC_OK && l->overflow)
        co->rc = ac_fail(co->err, AC_EINTERNAL,
                         "sample: a generated row is longer than %d bytes",
                         LINE_SIZE);
    if (co->rc == AC_OK) {
        if (co->len + l->n > sizeof co->buf)
            co_flush(co);
        memcpy(co->buf + co->len, l->b, l->n);
        co->len += l->n;
    }
    l->n = 0;
    l->overflow = 0;
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
    /* USD tariff of each target, from the rate with the longest prefix of
     * the target's prefix (has_rate 0 when there is none). */
    int64_t target_pm[TARGET_COUNT], target_fee[TARGET_COUNT];
    int target_has_rate[TARGET_COUNT];
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
} tenant_plan;

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

    /* The tariff each target is rated at. */
    for (int t = 0; t < TARGET_COUNT; t++) {
        size_t best = 0;
        for (int k = 0; k < c->nrates; k++) {
            size_t len = strlen(c->rates[k].prefix);
            if (len > best &&
                strncmp(targets[t].prefix, c->rates[k].prefix, len) == 0) {
                best = len;
                c->target_pm[t] = c->rates[k].per_minute;
                c->target_fee[t] = c->rates[k].connection_fee;
            }
        }
        c->target_has_rate[t] = best > 0;
    }
    return AC_OK;
}

static ac_status insert_rates(load_ctx *c, PGconn *conn, copy_out *co)
{
    int used[CUR_COUNT] = { 0 };
    tenant_plan *p = malloc(sizeof *p);
    line *l = malloc(sizeof *l);
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
        l->n = 0;
        l->overflow = 0;
        for (int cur = 0; cur < CUR_COUNT; cur++) {
            if (!used[cur])
                continue;
            for (int k = 0; k < c->nrates; k++) {
                ln_raw(l, currency_code[cur]);
                ln_char(l, '\t');
                ln_raw(l, c->rates[k].prefix);
                ln_char(l, '\t');
                ln_money(l, in_currency(c->rates[k].per_minute, cur));
                ln_char(l, '\t');
                ln_money(l, in_currency(c->rates[k].connection_fee, cur));
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
            "                  WHERE r.currency = s.currency "
            "                    AND r.prefix = s.prefix "
            "                    AND r.valid_from = $1::timestamptz) "
            "ORDER BY s.currency, s.prefix", 1, params, &res, c->err);
        if (rc == AC_OK) {
            c->st.rates_added = atol(PQcmdTuples(res));
            PQclear(res);
        }
    }
    free(p);
    free(l);
    return rc;
}

static void purchase_row(copy_out *co, line *l, const tenant_plan *p,
                         const char *sku, int qty, int64_t from, int64_t to,
                         long *count)
{
    ln_raw(l, p->id);
    ln_char(l, '\t');
    ln_raw(l, sku);
    ln_char(l, '\t');
    ln_i64(l, qty);
    ln_char(l, '\t');
    ln_time(l, from);
    ln_char(l, '\t');
    if (to == OPEN_END)
        ln_null(l);
    else
        ln_time(l, to);
    co_row(co, l);
    (*count)++;
}

static void assignment_row(copy_out *co, line *l, const tenant_plan *p,
                           int j, const char *sku, long *count)
{
    char user[64];
    int64_t from, to;

    user_window(p, j, &from, &to);
    user_id(user, sizeof user, p, j);
    ln_raw(l, p->id);
    ln_char(l, '\t');
    ln_raw(l, user);
    ln_char(l, '\t');
    ln_raw(l, sku);
    ln_char(l, '\t');
    ln_time(l, from);
    ln_char(l, '\t');
    if (to == OPEN_END)
        ln_null(l);
    else
        ln_time(l, to);
    co_row(co, l);
    (*count)++;
}

/* Tenants, purchases and assignments: three COPYs over the plans. */
static ac_status insert_tenants(load_ctx *c, copy_out *co)
{
    tenant_plan *p = malloc(sizeof *p);
    line *l = malloc(sizeof *l);
    ac_status rc;

    if (p == NULL || l == NULL) {
        free(p);
        free(l);
        return ac_fail(c->err, AC_EOSERR, "out of memory");
    }
    l->n = 0;
    l->overflow = 0;
    rc = co_begin(co, "COPY usage.tenants (tenant_id, name, currency, "
                  "time_zone) FROM STDIN");
    if (rc == AC_OK) {
        for (long i = 0; i < c->opt->tenants; i++) {
            make_plan(c, i, p);
            ln_raw(l, p->id);
            ln_char(l, '\t');
            ln_text(l, p->name);
            ln_char(l, '\t');
            ln_raw(l, currency_code[p->cur]);
            ln_char(l, '\t');
            ln_raw(l, zones[p->zone].name);
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
            make_plan(c, i, p);
            if (p->expired_qty > 0)
                purchase_row(co, l, p, "MCOMEETADD", p->expired_qty,
                             p->expired_from, p->base_from, n);
            if (p->change_at != 0) {
                purchase_row(co, l, p, "MCOMEETADD",
                             p->qty_add - p->change_extra, p->base_from,
                             p->change_at, n);
                purchase_row(co, l, p, "MCOMEETADD", p->qty_add,
                             p->change_at, OPEN_END, n);
            } else if (p->qty_add > 0) {
                purchase_row(co, l, p, "MCOMEETADD", p->qty_add,
                             p->base_from, OPEN_END, n);
            }
            if (p->qty_pea > 0)
                purchase_row(co, l, p, "MCOMEETACPEA", p->qty_pea,
                             p->base_from, OPEN_END, n);
            if (p->zero_row)
                purchase_row(co, l, p, "MCOMEETACPEA", 0, p->base_from,
                             OPEN_END, n);
            if (p->qty_usca > 0)
                purchase_row(co, l, p, "DIALOUT_USCA", p->qty_usca,
                             p->base_from, OPEN_END, n);
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
                if (j < p->n_add)
                    assignment_row(co, l, p, j, "MCOMEETADD", n);
                else if (j < p->n_add + p->n_pea)
                    assignment_row(co, l, p, j, "MCOMEETACPEA", n);
                if (j < p->n_usca || (p->pea_usca && j == p->n_add) ||
                    (p->orphan_usca && j == p->n_add + p->n_pea))
                    assignment_row(co, l, p, j, "DIALOUT_USCA", n);
            }
        }
        rc = co_end(co);
    }
    c->st.tenants = rc == AC_OK ? c->opt->tenants : 0;
    free(p);
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

/* One call of tenant p; show is a showcase index or -1. */
static void make_call(load_ctx *c, const tenant_plan *p, int show, rng *r,
                      copy_out *co, line *l)
{
    char organizer[96], initiator[96], number[64], good[32];
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
        uint64_t k = rng_below(r, 1000);
        if (k < 5)
            bad = (int)rng_below(r, BAD_KINDS);
        else if (k == 5)
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
    if (org >= 0)
        user_id(organizer, sizeof organizer, p, org);
    else
        snprintf(organizer, sizeof organizer, "former%03d@%s", -org,
                 p->domain);

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
    }

    duration = draw_duration(r);
    if (show >= 0 && showcase[show].duration >= 0)
        duration = showcase[show].duration;
    if (bad == BAD_NEGATIVE_DURATION)
        duration = -(int)rng_range(r, 1, 3600);

    uint64_t who = rng_below(r, 100);
    if (who < 85)
        strcpy(initiator, organizer);
    else
        user_id(initiator, sizeof initiator, p,
                (int)rng_below(r, (uint64_t)p->users));

    /* The provider's charge, as the sample rates would give it. */
    int has_charge = bad < 0 && c->target_has_rate[t] &&
                     rng_below(r, 100) >= 8;
    int charge_cur = p->cur;
    int64_t charge = 0;
    if (has_charge) {
        if (p->cur != CUR_USD && rng_below(r, 100) < 15)
            charge_cur = CUR_USD;
        int64_t minutes = (duration + 59) / 60;
        if (minutes > 0)
            charge = minutes * in_currency(c->target_pm[t], charge_cur) +
                     in_currency(c->target_fee[t], charge_cur);
        uint64_t how = rng_below(r, 100);
        if (how >= 95)          /* deliberately different */
            charge = charge * 3 + 10000;
        else if (how >= 80)     /* a little off, within 3% */
            charge = charge * (970 + (int64_t)rng_below(r, 61)) / 1000;
    }

    ln_uuid(l, r);                              /* usage_id */
    ln_char(l, '\t');
    ln_uuid(l, r);                              /* call_id */
    ln_char(l, '\t');
    ln_uuid(l, r);                              /* conference_id */
    ln_char(l, '\t');
    ln_raw(l, p->id);
    ln_char(l, '\t');
    if (bad == BAD_NO_ORGANIZER)
        ln_null(l);
    else
        ln_text(l, organizer);
    ln_char(l, '\t');
    if (who >= 95)
        ln_null(l);
    else
        ln_text(l, initiator);
    ln_char(l, '\t');
    ln_text(l, number);
    ln_char(l, '\t');
    ln_time(l, start);
    ln_char(l, '\t');
    if (bad == BAD_NULL_DURATION)
        ln_null(l);
    else
        ln_i64(l, duration);
    ln_char(l, '\t');
    if (has_charge) {
        ln_money(l, charge);
        ln_char(l, '\t');
        ln_raw(l, currency_code[charge_cur]);
    } else {
        ln_null(l);
        ln_char(l, '\t');
        ln_null(l);
    }
    co_row(co, l);

    c->st.calls++;
    if (bad >= 0)
        c->st.bad_calls++;
    if (start < p->ps || start >= p->pe)
        c->st.outside_calls++;
}

static ac_status insert_calls(load_ctx *c, copy_out *co)
{
    tenant_plan *p = malloc(sizeof *p);
    line *l = malloc(sizeof *l);
    ac_status rc;
    uint64_t period = (uint64_t)c->opt->year * 12 + (uint64_t)c->opt->month;

    if (p == NULL || l == NULL) {
        free(p);
        free(l);
        return ac_fail(c->err, AC_EOSERR, "out of memory");
    }
    l->n = 0;
    l->overflow = 0;
    rc = co_begin(co, "COPY usage.dialout_calls (usage_id, call_id, "
                  "conference_id, tenant_id, organizer_id, initiator_id, "
                  "destination_number, start_time, duration_seconds, "
                  "provider_charge, provider_currency) FROM STDIN");
    for (long i = 0; rc == AC_OK && co->rc == AC_OK && i < c->opt->tenants;
         i++) {
        rng r;
        make_plan(c, i, p);
        rng_stream(&r, c->opt->seed, STREAM_CALLS | (period << 8),
                   (uint64_t)i);
        int show = i == 0 && p->calls >= SHOWCASE_MIN ? SHOWCASE_COUNT : 0;
        for (long long k = 0; k < p->calls && co->rc == AC_OK; k++)
            make_call(c, p, k < show ? (int)k : -1, &r, co, l);
    }
    if (rc == AC_OK)
        rc = co_end(co);
    free(p);
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
        rc = insert_tenants(c, co);
    if (rc == AC_OK)
        rc = insert_calls(c, co);
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
        "bad.  The same period, N, M and seed give byte-identical data.\n"
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
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': period = optarg; break;
        case 't': tenants = optarg; break;
        case 'c': calls = optarg; break;
        case 's':
            if (parse_seed(optarg, &opt.seed) != 0) {
                fprintf(stderr, "acbill sample: --seed must be a whole "
                        "number from 0 to %" PRIu64 " (got '%s')\n",
                        UINT64_MAX, optarg);
                return AC_EUSAGE;
            }
            break;
        case 'r': opt.replace = 1; break;
        case 'd': conninfo = optarg; break;
        case 'h':
            sample_usage(stdout);
            return AC_OK;
        default:
            fprintf(stderr, "acbill sample: try acbill sample --help\n");
            return AC_EUSAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "acbill sample: unexpected argument '%s'\n",
                argv[optind]);
        return AC_EUSAGE;
    }
    if (period == NULL || tenants == NULL || calls == NULL) {
        fprintf(stderr, "acbill sample: --period, --tenants and --calls are "
                "required (try acbill sample --help)\n");
        return AC_EUSAGE;
    }
    if (sample_parse_period(period, &opt.year, &opt.month, err) != AC_OK) {
        fprintf(stderr, "acbill sample: %s\n", err);
        return AC_EUSAGE;
    }
    if (parse_count(tenants, 1, SAMPLE_MAX_TENANTS, &v) != 0) {
        fprintf(stderr, "acbill sample: --tenants must be a whole number "
                "from 1 to %ld (got '%s')\n", SAMPLE_MAX_TENANTS, tenants);
        return AC_EUSAGE;
    }
    opt.tenants = (long)v;
    if (parse_count(calls, 0, SAMPLE_MAX_CALLS, &v) != 0) {
        fprintf(stderr, "acbill sample: --calls must be a whole number from "
                "0 to %lld (got '%s')\n", SAMPLE_MAX_CALLS, calls);
        return AC_EUSAGE;
    }
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
            "%lld calls (%lld bad, %lld outside the local month), "
            "%ld purchases, %ld assignments, %ld rates added, %.1f s",
            opt.year, opt.month, opt.seed, st.tenants, st.calls,
            st.bad_calls, st.outside_calls, st.purchases, st.assignments,
            st.rates_added, st.seconds);
    return AC_OK;
}
