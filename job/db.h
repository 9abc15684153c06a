/* db.h: the job's thin layer over libpq.
 *
 * Every statement with a value in it goes through db_query()/db_exec_params()
 * with $n parameters: no SQL is ever built from data.  Errors come back as
 * ac_status with the server's message in err; a lost connection is
 * AC_EUNAVAIL, anything else the server refuses is AC_EINTERNAL unless the
 * caller maps it. */
#ifndef AC_DB_H
#define AC_DB_H

#include <libpq-fe.h>
#include <stdio.h>

#include "status.h"

/* Connect with conninfo (NULL or "" uses the libpq defaults: PGHOST,
 * PGDATABASE, PGSERVICE, ~/.pgpass, ...).  The session is set to UTC, ISO
 * dates and UTF-8 so that text results do not depend on the server's
 * configuration.  On failure *out is NULL and AC_EUNAVAIL is returned. */
ac_status db_connect(const char *conninfo, PGconn **out, char *err);

/* Run one or more SQL commands without parameters (DDL, BEGIN, ...).
 * Results are discarded; the first failing command stops the batch. */
ac_status db_exec(PGconn *conn, const char *sql, char *err);

/* Run one parameterised command whose result is not needed. */
ac_status db_exec_params(PGconn *conn, const char *sql, int nparams,
                         const char *const *params, char *err);

/* Run one parameterised query (text results), prepared on conn the first
 * time it runs there and executed by name after that.  On success *out
 * holds the result (PGRES_TUPLES_OK or PGRES_COMMAND_OK), to be
 * PQclear()ed by the caller; on failure *out is NULL. */
ac_status db_query(PGconn *conn, const char *sql, int nparams,
                   const char *const *params, PGresult **out, char *err);

/* Send one parameterised query without waiting (PQsendQueryParams(), for
 * single-row mode): 1 when sent, 0 with the reason in
 * PQerrorMessage(conn).  Like db_query() and db_exec_params(), it runs
 * the statement prepared on conn the first time and by name after that
 * (parse and plan once per connection, not once per tenant). */
int db_send_query(PGconn *conn, const char *sql, int nparams,
                  const char *const *params);

/* Start `COPY ... FROM STDIN`, given the whole COPY command. */
ac_status db_copy_begin(PGconn *conn, const char *copy_sql, char *err);

/* Send len bytes of COPY text data. */
ac_status db_copy_put(PGconn *conn, const char *buf, size_t len, char *err);

/* Finish a COPY: with errmsg NULL it is committed to the statement,
 * otherwise the server aborts the COPY with errmsg.  Returns the COPY's
 * final status. */
ac_status db_copy_end(PGconn *conn, const char *errmsg, char *err);

/* Undo COPY text-format escapes of one field in place and return it, or
 * NULL when the field is "\N" (SQL NULL).  The inverse of
 * cl_field() (copyline.h). */
char *db_copy_unescape(char *field);

/* Map a failed result to a status: connection trouble is AC_EUNAVAIL,
 * serialization/lock failures AC_ETEMPFAIL, the rest AC_EINTERNAL. */
ac_status db_status_of(PGconn *conn, const PGresult *res);

/* A value of row/column of res, or NULL when it is SQL NULL. */
const char *db_value(const PGresult *res, int row, int col);

#endif
