/* partner.h: Microsoft Partner Center files into usage.partner_charges
 * and usage.partner_usage (SPEC version 3, sections 6 and 7).
 *
 * Two kinds of file, each in two forms:
 *   - the new-commerce invoice reconciliation file (PARTNER_INVOICE) and
 *     the daily rated usage file (PARTNER_USAGE);
 *   - the CSV download (RFC 4180, parsed by libcsv; headers found by name
 *     in Microsoft's PascalCase or the 2023 camelCase spelling, compared
 *     case-insensitively without punctuation; en-US numbers `1,234.56`
 *     and dates `m/d/yyyy`) or the Graph export's JSON-lines blobs,
 *     gzip-compressed (`.json.gz`; zlib) or not, each line one object
 *     (checked with jansson, its values read through PostgreSQL jsonb so
 *     that numbers stay exact).  The form is found from the content, not
 *     the name: a gzip stream is uncompressed first, and a first
 *     character `{` means JSON lines.
 *
 * Every line is mapped to one set of fields named as Microsoft's API
 * names them (camelCase; `Total` is `totalForCustomer`, `Unit`
 * `unitOfMeasure`, `Tier2MpnId` `resellerMpnId`) and normalised:
 * surrounding spaces trimmed, empty values absent, numbers as the shortest
 * exact decimal (`1,234.50` is 1234.5; `PartnerEarnedCreditPercentage`
 * 15 and `CreditPercentage` 100 become the rates 0.15 and 1, as
 * `rateOfPartnerEarnedCredit` and `rateOfCredit`), dates and times in UTC
 * as `YYYY-MM-DD` (midnight) or `YYYY-MM-DDThh:mm:ss[.f]Z`, GUIDs and
 * currency codes in one case.  The line's key is the SHA-256 of those
 * fields (docs/billing-rules.md 7: the same line from another file, spelling or form is the
 * same line, stored once and counted as unchanged).
 *
 * A line is rejected, with its line number, raw text and reason, when its
 * CustomerId is not a GUID, a number is not an en-US number (`1.234,56`
 * is refused, not guessed), a date is not a date, the currency is not
 * three letters, a required field is missing, the text is not UTF-8, or
 * the CSV record or JSON line is malformed.  At most the first 10,000
 * rejects of a file are kept in usage.import_rejects; the rest are
 * counted by reason in usage.imports.rejects_not_kept.  A file is refused
 * as a whole (nothing of it stored, a usage.imports row with the reason)
 * when it is not of the kind asked for (a PSTN export, the other Partner
 * Center file, an unknown header layout) or cannot be read to its end (a
 * truncated gzip stream).  Lines already loaded from other files are
 * never touched.
 *
 * Memory: one line and the COPY buffer, whatever the file's size. */
#ifndef AC_PARTNER_H
#define AC_PARTNER_H

#include <libpq-fe.h>

#include "status.h"

typedef enum { PARTNER_INVOICE, PARTNER_USAGE } partner_kind;

/* What became of a file's lines: read = inserted + unchanged + rejected. */
typedef struct {
    long long import_id;
    long long read, inserted, unchanged, rejected;
} partner_counts;

/* Import the file at path as kind, in one transaction, recorded in
 * usage.imports (source "partner-invoice" or "partner-usage", file_name
 * name, which is path's last component when NULL; member may name a blob
 * of an export, or be NULL).  conn must be idle.  *c receives the counts
 * (zero for a refused file).  Returns AC_OK when the file was loaded,
 * rejected lines included (*c says how many); AC_EDATA when the file was
 * refused (reason in err, and recorded); AC_ENOINPUT / AC_EIO when it
 * cannot be opened or read; the database's status when a statement
 * fails (nothing of the file is kept). */
ac_status partner_import_file(PGconn *conn, partner_kind kind,
                              const char *path, const char *name,
                              const char *member, partner_counts *c,
                              char *err);

/* acbill pull partner --invoice ID | --unbilled current|last --currency C
 * [--entra-tenant ID] [--db CONNINFO]: the Graph partner billing export
 * (partner_pull.c), loaded with partner_import_file().  Exit status as
 * status.h. */
int cmd_pull_partner(int argc, char **argv);

/* The normalisers, exposed for the unit tests.  Each writes the
 * normalised text into out (cap bytes) and returns 0, or returns -1 with
 * a short reason in why (128 bytes).
 * partner_norm_number: an en-US decimal (optional '-', digits with or
 *   without ',' thousands groups of three, optional '.' and decimals) as
 *   the shortest exact decimal; percent != 0 divides it by 100.
 * partner_norm_date: m/d/yyyy or yyyy-mm-dd, optionally with a time
 *   (h:mm[:ss] [AM|PM] after the former, Thh:mm[:ss[.f]][Z|+hh:mm] after
 *   the latter), as UTC: `YYYY-MM-DD` at midnight, else
 *   `YYYY-MM-DDThh:mm:ss[.f]Z`.
 * partner_norm_guid: 8-4-4-4-12 hex digits (braces allowed) in lower
 *   case. */
int partner_norm_number(const char *in, int percent, char *out, size_t cap,
                        char *why);
int partner_norm_date(const char *in, char *out, size_t cap, char *why);
int partner_norm_guid(const char *in, char *out, size_t cap, char *why);

#endif
