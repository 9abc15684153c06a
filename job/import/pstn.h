/* pstn.h: the Teams admin center PSTN usage export (docs/billing-rules.md 6).
 *
 * A file is a CSV (RFC 4180, UTF-8, an optional BOM, CRLF or LF) or the
 * exported .zip, recognised by its content, not its name.  In a zip, every
 * member whose name ends in .csv is a Calling Plans export and is imported
 * as a file of its own, except the Direct Routing ones (DirectRouting*);
 * parameters.json and other members are passed over.  Records are split
 * by libcsv (strict RFC 4180 quoting; fields may hold commas, quotes and
 * line breaks); zips are read by libzip.
 *
 * Columns are found by header name (case-insensitive), never by position,
 * so the 20-column layout (2020, "AAD ObjectId") and the 25-column one
 * (2023 on, "Microsoft Entra ObjectId", with Call Direction, External
 * Country, Operator, Source of Call Duration and Administrative Units
 * inserted) both load.  A header line with a TAB is the legacy
 * tab-separated export named .csv, whose "No data" cells are empty.
 * UsageId, Call Type and Start Time are required; a file without them is
 * refused whole.  Mapping (callstage.h): UsageId, Call ID, Conference ID,
 * the object id (organizer), UPN, User Display Name, Call Type,
 * Destination Number (as given), Start Time, End Time, Duration Seconds,
 * Charge + Connection Fee, Currency, Capability, External Country.
 *
 * A record that cannot be split (a field count other than the header's,
 * a quote inside an unquoted field, a quoted field still open after 50
 * lines or 64 KiB, or at the end of the file) is rejected with its first
 * line number and raw text, and reading goes on with the next line. */
/* Bounds (issue 20), so a crafted file cannot exhaust the host or the
 * database:
 *   - a zip member is read only while it unzips to at most
 *     ACBILL_IMPORT_MAX_UNZIPPED_MB MiB (default 4096: about 13 million
 *     rows of the 25-column export at ~320 bytes a row, years of calls
 *     of a large tenant) and at most ACBILL_IMPORT_MAX_RATIO times its
 *     compressed size (default 100: a real export, three or four random
 *     GUIDs a row, deflates about 5:1; a zip bomb of repeated rows about
 *     1000:1).  Past either (declared in the zip's directory, or found
 *     while unzipping) the member is refused whole, with the limit in
 *     usage.imports.message; nothing of it is loaded.  0 disables a limit.
 *   - at most the first CALLSTAGE_REJECTS_KEPT (10,000) rejected rows of a
 *     file are kept with their text; the rest are counted by reason
 *     (callstage.h). */
#ifndef AC_PSTN_H
#define AC_PSTN_H

#define PSTN_MAX_UNZIPPED_MB 4096
#define PSTN_MAX_RATIO 100

#include <libpq-fe.h>

#include "callstage.h"
#include "status.h"

/* Import the export at path for tenant: one usage.imports row (and one
 * transaction) per CSV, a zip's members one after the other.  progress: 1
 * to draw a progress line on stderr (a terminal) for large files.  A
 * one-line summary per file is logged.  *worst receives the worst
 * outcome: AC_OK, AC_EDATA when a row was rejected or a file refused.
 * Returns AC_OK unless the file could not be read at all (AC_ENOINPUT,
 * AC_EIO; recorded as refused) or the database failed (db.h). */
ac_status pstn_import(PGconn *conn, const char *tenant, const char *path,
                      int progress, ac_status *worst, char *err);

#endif
