/* money.h: exact money and minutes.
 *
 * Money is an int64_t count of 1/10000 of the currency unit ("units"), the
 * precision of the ledger's numeric(12,4) rates and numeric(16,4) amounts.
 * Nothing here uses floating point. */
#ifndef AC_MONEY_H
#define AC_MONEY_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define MONEY_SCALE 10000

/* Parse a decimal such as "0.0200", "12", "-1.5" into units.  At most 4
 * decimals, an optional sign, no exponent, no spaces, |value| < 10^14.
 * On failure *out is untouched and AC_EDATA is returned. */
ac_status money_parse(const char *text, int64_t *out);

/* Format units with exactly 4 decimals ("0.0200", "-1.5000") into buf. */
void money_format4(int64_t units, char *buf, size_t len);

/* Round units half-up (half away from zero) to whole cents; the result is
 * still in units and a multiple of 100 (1.0500 stays, 0.1050 -> 0.1100). */
int64_t money_round_cents(int64_t units);

/* Round units half-up (half away from zero) to minor_unit decimals (0 to
 * 4, the currency's ISO 4217 minor unit: JPY 0, USD 2, BHD 3); the result
 * is still in units (17.5000 JPY -> 18.0000).  A result that would not fit
 * an int64_t is not produced: the caller keeps |units| below 10^18. */
int64_t money_round_minor(int64_t units, int minor_unit);

/* Format units rounded to minor_unit decimals (0 to 4) with exactly that
 * many decimals: "42" (JPY), "5.15" (USD), "1.235" (BHD). */
void money_format_minor(int64_t units, int minor_unit, char *buf,
                        size_t len);

/* Tax on subtotal (units) at rate (1/10000: 1000 is 10 %), rounded
 * half-up once to minor_unit decimals (docs/billing-rules.md 3, "Tax").  Returns 0
 * and sets *tax, or -1 when the product would overflow. */
int money_tax(int64_t subtotal, int64_t rate, int minor_unit, int64_t *tax);

/* Format units rounded to cents with exactly 2 decimals ("5.15"). */
void money_format2(int64_t units, char *buf, size_t len);

/* Non-zero when a and b are a cent (100 units) or more apart: how a
 * provider's charge is said to differ from acbill's amount. */
int money_cent_apart(int64_t a, int64_t b);

/* Billable minutes of a call: ceil(seconds / 60), 0 for 0 s; seconds must
 * be >= 0 (61 s is 2 minutes, 60 s is 1). */
int32_t money_minutes(int32_t seconds);

#endif
