/* graphcalls.h: Graph call-log pages into usage.dialout_calls (docs/billing-rules.md
 * section 6).
 *
 * A page is the JSON body of GET /communications/callRecords/
 * getPstnCalls(fromDateTime=..,toDateTime=..): an object whose `value`
 * array holds pstnCallLogRow objects, and `@odata.nextLink` (matched
 * without regard to case) when more pages follow.  PostgreSQL parses it
 * (jsonb, so numbers stay exact numerics: a charge of 0.1 is 0.1), and
 * each row goes through the import stage (callstage.h) with the mapping
 * id, callId, conferenceId, userId (organizer), userPrincipalName,
 * userDisplayName, callType, calleeNumber (as given), startDateTime,
 * endDateTime, duration, charge + connectionCharge, currency,
 * licenseCapability, otherPartyCountryCode.  A row's line number is its
 * position in `value`, from 1 (plus the rows of earlier pages of the same
 * Graph window). */
#ifndef AC_GRAPHCALLS_H
#define AC_GRAPHCALLS_H

#include <libpq-fe.h>
#include <stddef.h>

#include "callstage.h"
#include "status.h"

/* Hand the rows of one page (json, len bytes) to s, numbered base + 1,
 * base + 2, ...; *rows receives how many `value` held, *next the
 * page's @odata.nextLink (malloc'd; NULL on the last page).  The page is
 * parsed in a savepoint of s's transaction: AC_EDATA with the reason when
 * it is not JSON, not an object, or has no `value` array (s is then still
 * usable, for callstage_abort). */
ac_status graphcalls_page(callstage *s, const char *json, size_t len,
                          long long base, long long *rows, char **next,
                          char *err);

/* acbill import graph-calls: import one saved page file for tenant, as
 * one usage.imports row (source "graph-calls").  A file that is not a
 * page is recorded as refused.  *worst becomes AC_EDATA when a row was
 * rejected or the file refused.  Returns AC_OK unless the file cannot be
 * read (AC_ENOINPUT, AC_EIO) or the database failed. */
ac_status graphcalls_import_file(PGconn *conn, const char *tenant,
                                 const char *path, ac_status *worst,
                                 char *err);

/* Read a whole file of at most max bytes into a malloc'd buffer (NUL
 * terminated); *len receives its size.  AC_ENOINPUT when it is missing,
 * AC_EIO when unreadable, AC_EDATA when larger than max. */
ac_status import_read_file(const char *path, size_t max, char **out,
                           size_t *len, char *err);

#endif
