/* civil.h: calendar arithmetic on the proleptic Gregorian calendar
 * (Howard Hinnant's days-from-civil algorithms), for UTC instants kept as
 * integers.  Pure code, no time zones, no libc time functions. */
#ifndef AC_CIVIL_H
#define AC_CIVIL_H

#include <stdint.h>

/* Days from 1970-01-01 to year-month-day (month 1-12, day 1-31; negative
 * before 1970). */
int64_t civil_days(int64_t year, int month, int day);

/* The date of a day count from 1970-01-01: the inverse of civil_days(). */
void civil_from_days(int64_t days, int *year, int *month, int *day);

/* 1 when s is an ISO 8601 date or date and time that acbill accepts on
 * its command line (--as-of, --at): YYYY-MM-DD, optionally followed by
 * 'T' or a space, HH:MM, optionally :SS and .fraction (1-6 digits), and
 * optionally 'Z' or an offset +HH, +HHMM or +HH:MM (without one the
 * database session's time zone applies, as in PostgreSQL).  The date
 * must exist (2026-02-30 does not).  0 otherwise. */
int civil_timestamp_valid(const char *s);

#endif
