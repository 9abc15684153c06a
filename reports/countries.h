/* countries.h: country names for the workbooks (docs/billing-rules.md 4.3: "each [line]
 * with country name and code"). */
#ifndef AC_COUNTRIES_H
#define AC_COUNTRIES_H

/* The English short name of an ISO 3166-1 alpha-2 code ("FR" -> "France",
 * "KR" -> "South Korea"), including the codes ref.destinations uses that
 * ISO does not assign (AC, TA, XK); NULL for any other text.  Static
 * strings, from Debian's iso-codes (reports/gen-countries.py). */
const char *country_name(const char *code);

#endif
