/* money.c: see money.h. */
#include "money.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define MONEY_MAX_UNITS 1000000000000000000LL /* 10^14 currency units */

ac_status money_parse(const char *text, int64_t *out)
{
    const char *p = text;
    int negative = 0, digits = 0, decimals = 0;
    int64_t v = 0;

    if (p == NULL)
        return AC_EDATA;
    if (*p == '-' || *p == '+')
        negative = *p++ == '-';
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        v = v * 10 + (*p - '0');
        if (v >= MONEY_MAX_UNITS / MONEY_SCALE)   /* whole units only */
            return AC_EDATA;
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, decimals++) {
            if (decimals >= 4) {
                if (*p != '0')      /* "0.12300" is fine, "0.12345" not */
                    return AC_EDATA;
                continue;
            }
            v = v * 10 + (*p - '0');
        }
        if (decimals == 0 && digits == 0)
            return AC_EDATA;
    }
    if (*p != '\0' || (digits == 0 && decimals == 0))
        return AC_EDATA;
    for (int i = decimals < 4 ? decimals : 4; i < 4; i++)
        v *= 10;
    if (v >= MONEY_MAX_UNITS)
        return AC_EDATA;
    *out = negative ? -v : v;
    return AC_OK;
}

/* Digits by hand: the rating formats three amounts per call, and
 * snprintf's format parsing was most of the cost.  Output as
 * snprintf(buf, len, "%s%llu.%04llu", ...) would give it, truncation
 * included. */
void money_format4(int64_t units, char *buf, size_t len)
{
    char tmp[32], *e = tmp + sizeof tmp, *p = e;
    uint64_t a = units < 0 ? (uint64_t)0 - (uint64_t)units : (uint64_t)units;
    uint64_t whole = a / MONEY_SCALE, frac = a % MONEY_SCALE;

    for (int i = 0; i < 4; i++, frac /= 10)
        *--p = (char)('0' + frac % 10);
    *--p = '.';
    do
        *--p = (char)('0' + whole % 10);
    while ((whole /= 10) != 0);
    if (units < 0)
        *--p = '-';
    if (len == 0)
        return;
    size_t n = (size_t)(e - p);
    if (n > len - 1)
        n = len - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
}

int64_t money_round_cents(int64_t units)
{
    int64_t rest = units % 100;     /* same sign as units in C99+ */
    int64_t down = units - rest;

    if (rest >= 50)
        return down + 100;
    if (rest <= -50)
        return down - 100;
    return down;
}

static const int64_t minor_quantum[5] = { 10000, 1000, 100, 10, 1 };

int64_t money_round_minor(int64_t units, int minor_unit)
{
    assert(minor_unit >= 0 && minor_unit <= 4);
    int64_t q = minor_quantum[minor_unit];
    int64_t rest = units % q;       /* same sign as units in C99+ */
    int64_t down = units - rest;

    if (2 * rest >= q)
        return down + q;
    if (2 * rest <= -q)
        return down - q;
    return down;
}

void money_format_minor(int64_t units, int minor_unit, char *buf,
                        size_t len)
{
    int64_t r = money_round_minor(units, minor_unit);
    uint64_t a = r < 0 ? (uint64_t)0 - (uint64_t)r : (uint64_t)r;
    uint64_t whole = a / MONEY_SCALE, frac = a % MONEY_SCALE;

    if (minor_unit == 0) {
        snprintf(buf, len, "%s%llu", r < 0 ? "-" : "",
                 (unsigned long long)whole);
        return;
    }
    frac /= (uint64_t)minor_quantum[minor_unit];
    snprintf(buf, len, "%s%llu.%0*llu", r < 0 ? "-" : "",
             (unsigned long long)whole, minor_unit,
             (unsigned long long)frac);
}

int money_tax(int64_t subtotal, int64_t rate, int minor_unit, int64_t *tax)
{
    int64_t product;

    assert(minor_unit >= 0 && minor_unit <= 4);
    /* subtotal (1e-4) * rate (1e-4) is in 1e-8: the tax in units is
     * product / 10^4, rounded half-up at the minor unit, i.e. product
     * rounded at 10^4 * quantum. */
    if (__builtin_mul_overflow(subtotal, rate, &product))
        return -1;
    int64_t q = MONEY_SCALE * minor_quantum[minor_unit];
    int64_t rest = product % q, down = product - rest;
    if (2 * rest >= q)
        down += q;
    else if (2 * rest <= -q)
        down -= q;
    *tax = down / MONEY_SCALE;
    return 0;
}

void money_format2(int64_t units, char *buf, size_t len)
{
    int64_t c = money_round_cents(units) / 100;
    uint64_t a = c < 0 ? (uint64_t)0 - (uint64_t)c : (uint64_t)c;
    snprintf(buf, len, "%s%llu.%02llu", c < 0 ? "-" : "",
             (unsigned long long)(a / 100), (unsigned long long)(a % 100));
}

int32_t money_minutes(int32_t seconds)
{
    assert(seconds >= 0);
    return seconds / 60 + (seconds % 60 != 0);
}

int money_cent_apart(int64_t a, int64_t b)
{
    return a - b >= 100 || b - a >= 100;
}
