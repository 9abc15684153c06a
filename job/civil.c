/* civil.c: see civil.h. */
#include "civil.h"

#include <stddef.h>

int64_t civil_days(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void civil_from_days(int64_t z, int *y, int *m, int *d)
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

/* n ASCII digits at s as a number, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int civil_timestamp_valid(const char *s)
{
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
                                 30, 31 };
    if (s == NULL)
        return 0;
    int y = digits(s, 4), m, d;
    if (y < 1 || s[4] != '-' || (m = digits(s + 5, 2)) < 1 || m > 12 ||
        s[7] != '-' || (d = digits(s + 8, 2)) < 1 || d > mdays[m - 1])
        return 0;
    if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return 0;
    s += 10;
    if (*s == '\0')
        return 1;
    if (*s != 'T' && *s != ' ')
        return 0;
    s++;
    int hh = digits(s, 2), mm;
    if (hh < 0 || hh > 23 || s[2] != ':' || (mm = digits(s + 3, 2)) < 0 ||
        mm > 59)
        return 0;
    s += 5;
    if (*s == ':') {
        int ss = digits(s + 1, 2);
        if (ss < 0 || ss > 60)
            return 0;
        s += 3;
        if (*s == '.') {
            int n = 0;
            for (s++; *s >= '0' && *s <= '9'; s++)
                n++;
            if (n < 1 || n > 6)
                return 0;
        }
    }
    if (*s == 'Z' || *s == 'z')
        return s[1] == '\0';
    if (*s == '\0')
        return 1;
    if (*s != '+' && *s != '-')
        return 0;
    s++;
    int oh = digits(s, 2);
    if (oh < 0 || oh > 15)
        return 0;
    s += 2;
    if (*s == ':')
        s++;
    if (*s == '\0')
        return 1;
    int om = digits(s, 2);
    return om >= 0 && om <= 59 && s[2] == '\0';
}
