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

#endif
