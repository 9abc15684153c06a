/* rates.h: rate cards from CSV files into ref.rates (SPEC sections 2 and
 * 6; docs/rate-cards.md).
 *
 * A card is the rates of one price plan in one currency from one instant
 * on.  The file is a CSV (RFC 4180, UTF-8, an optional BOM, CRLF or LF,
 * split by libcsv) whose first line names the columns, found by name
 * (case-insensitive, surrounding spaces ignored), in any order:
 *
 *   prefix          E.164 digits without '+' (a leading '+' is dropped),
 *                   1 to 15 digits, not starting with 0, once per card;
 *   per_minute      the price of a minute in the card's currency;
 *   connection_fee  optional (a missing column or an empty cell is 0).
 *
 * Other columns (a country name, a note) are passed over; empty lines and
 * lines whose cells are all empty too.  Prices are exact decimals: digits
 * with an optional '.' and fraction, at most 4 decimal places (trailing
 * zeros aside: 0.02500 is 0.0250), at most 8 integer digits
 * (numeric(12,4)), never negative; no exponent, sign, currency symbol or
 * thousands separator.  Values are never converted in C: PostgreSQL casts
 * the checked text to numeric.
 *
 * One card, one transaction, all or nothing:
 *
 *   - a card with any rejected row (a bad prefix or price, a prefix twice,
 *     a row with another field count than the header, broken quoting) is
 *     refused whole: ref.rates does not change, and the import is recorded
 *     as refused with every reject (line number, raw text, reason) in
 *     usage.import_rejects (the first 10,000; the others counted by reason
 *     in usage.imports.rejects_not_kept);
 *   - a card whose currency is not in ref.currencies, or with no row, is
 *     refused; so is a card starting before a row of the same plan and
 *     currency already starts (cards are loaded in the order of their
 *     dates: history is not rewritten);
 *   - otherwise every row of the plan and currency in force at or after
 *     the card's first instant T and starting before it is closed at T
 *     (valid_to = T; rows that ended before T stay as they are), and the
 *     card's rows are in force from T, open-ended.  A card at the same T
 *     as the card already loaded there replaces it row by row (new
 *     prefixes inserted, changed ones updated, missing ones removed), so
 *     the same card again changes nothing.
 *
 * ref.rates is locked (SHARE ROW EXCLUSIVE) for the transaction, so two
 * imports do not interleave; billing runs still read it. */
#ifndef AC_RATES_H
#define AC_RATES_H

#include <libpq-fe.h>

#include "status.h"

/* At most this many rejected rows of a file are stored (docs/billing-rules.md 6). */
#define RATES_REJECTS_KEPT 10000
/* A card file larger than this is refused unread (about 2 million rows). */
#define RATES_FILE_MAX (64L * 1024 * 1024)

/* Which card a file is. */
typedef struct {
    const char *plan;        /* ref.rates.plan, as rates_check_plan() */
    const char *currency;    /* ISO 4217 code, 3 letters (either case) */
    const char *valid_from;  /* as rates_check_valid_from() */
} rates_card;

/* What became of a card: read = inserted + updated + unchanged +
 * rejected + skipped (the good rows of a refused card); removed: rows of
 * an earlier card at the same instant that the new one no longer has;
 * closed: rows of the previous card closed at the card's first instant.
 * import_id is 0 when nothing could be recorded. */
typedef struct {
    long long import_id;
    long long read, inserted, updated, unchanged, skipped, rejected;
    long long removed, closed;
    int refused;             /* 1 when ref.rates was left unchanged for a
                              * reason in err */
} rates_counts;

/* 1 when plan is a plan name as ref.rates.plan's CHECK (migration 014): a
 * letter or digit, then up to 63 letters, digits, '_', '.' or '-'. */
int rates_check_plan(const char *plan);

/* 1 when text is a first instant this import takes: "-infinity" (always),
 * a date YYYY-MM-DD (00:00 UTC that day), or an ISO 8601 date and time
 * with its offset (Z or +hh[:mm]/-hh[:mm]); a time without an offset is
 * not taken (it would depend on the server's time zone). */
int rates_check_valid_from(const char *text);

/* Import the card in the file at path: the checks and outcomes above.
 * conn must be idle.  card's fields must have passed the checks above
 * (else AC_EUSAGE, nothing recorded).  A summary line is logged, and for
 * a refused card its first rejects with their line numbers and the query
 * that lists them all.  Returns AC_OK when the card was loaded or was
 * already loaded (*counts says which); AC_EDATA when it was refused
 * (recorded in usage.imports with the reason, also in err); AC_ENOINPUT or
 * AC_EIO when the file cannot be read (recorded as refused); database
 * errors as db.h (nothing kept). */
ac_status rates_import(PGconn *conn, const rates_card *card,
                       const char *path, rates_counts *counts, char *err);

/* Why text cannot be a price of a card (e.g. "has more than 4 decimal
 * places"), or NULL when it can: the rule above.  Exposed for the unit
 * tests. */
const char *rates_price_problem(const char *text);

/* Why text cannot be a prefix of a card, or NULL when it can (after
 * dropping a leading '+').  Exposed for the unit tests. */
const char *rates_prefix_problem(const char *text);

#endif
