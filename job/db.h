/* db.h: the job's thin layer over libpq.
 *
 * Every statement with a value in it goes through db_query()/db_exec_params()
 * with $n parameters: no SQL is ever built from data.  Errors come back as
 * ac_status with the server's message in err, mapped from the SQLSTATE by
 * db_status_of_sqlstate(): a lost connection or a server that cannot serve
 * now is AC_EUNAVAIL, a timeout AC_ETEMPFAIL, an authentication or
 * privilege problem AC_ECONFIG, anything else AC_EINTERNAL unless the
 * caller maps it. */
#ifndef AC_DB_H
#define AC_DB_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"

/* Defaults of ACBILL_LOCK_TIMEOUT and ACBILL_STATEMENT_TIMEOUT. */
#define DB_DEFAULT_LOCK_TIMEOUT "60s"
#define DB_DEFAULT_STATEMENT_TIMEOUT "30min"

/* Connect with conninfo (NULL or "" uses the libpq defaults: PGHOST,
 * PGDATABASE, PGSERVICE, ~/.pgpass, ...).  The session is set to UTC, ISO
 * dates and UTF-8 so that text results do not depend on the server's
 * configuration, and its lock_timeout and statement_timeout to
 * $ACBILL_LOCK_TIMEOUT and $ACBILL_STATEMENT_TIMEOUT (PostgreSQL durations;
 * defaults above; "0" waits for ever).  On failure *out is NULL and the
 * status says what to do: AC_ECONFIG when it will not pass by itself (wrong
 * password or none, unknown role, database or host name, a malformed
 * conninfo or timeout), AC_EUNAVAIL when it may (no answer, connection
 * refused, the server starting up or out of connections). */
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

/* Map a failed result to a status: a lost connection, then the result's
 * SQLSTATE as db_status_of_sqlstate(). */
ac_status db_status_of(PGconn *conn, const PGresult *res);

/* A SQLSTATE (5 characters; NULL = none) as a status: AC_ETEMPFAIL for a
 * statement or lock timeout (57014, 55P03), serialization failure or
 * deadlock (40001, 40P01); AC_EUNAVAIL for connection trouble (08),
 * a server shutting down or starting (57P), out of resources (53), a
 * system error (58) or a read-only server (25006); AC_ECONFIG for
 * authentication (28), an unknown database (3D000) or a missing privilege
 * (42501); AC_EINTERNAL otherwise (SQL errors are the job's bugs, and
 * bill.c maps the ones that are the tenant's data). */
ac_status db_status_of_sqlstate(const char *state);

/* A value of row/column of res, or NULL when it is SQL NULL. */
const char *db_value(const PGresult *res, int row, int col);

/* AC_OK when the database holds acbill's schema (billing.schema_migrations,
 * made by `acbill migrate`); otherwise AC_ECONFIG with a message that says
 * to run `acbill migrate` first (a command that reads or writes the
 * schema would fail with an SQL error that reads like an internal one).
 * Database errors as db_query(). */
ac_status db_require_schema(PGconn *conn, char *err);

/* db_connect(), then db_require_schema(): the connection of a command
 * that needs acbill's schema.  On failure *out is NULL (the connection,
 * if made, is closed) and the status is theirs. */
ac_status db_connect_migrated(const char *conninfo, PGconn **out, char *err);

/* ------------------------------------------------------------------
 * COPY lines: one line of PostgreSQL's COPY text format, built in a
 * growing buffer (for the job's spool, the imports' staging and the
 * sample's loads).
 *
 * Appending never fails on its own: when memory runs out the line is
 * marked failed, later appends do nothing, and the caller checks
 * copy_line.failed once the line is complete.  A zeroed copy_line is an
 * empty line; cl_free() releases it. */
typedef struct {
    char *b;            /* the line so far (not NUL-terminated) */
    size_t n, cap;      /* bytes in it, bytes allocated */
    int failed;         /* an append ran out of memory */
} copy_line;

/* Empty the line for the next one (keeping its buffer). */
void cl_reset(copy_line *l);

/* Release the buffer; the line is empty and usable again. */
void cl_free(copy_line *l);

/* Append n bytes as they are. */
void cl_bytes(copy_line *l, const char *s, size_t n);

/* Append text or one character as they are: for values that cannot hold
 * a backslash, tab, newline or carriage return (numbers, codes, uuids,
 * timestamps). */
void cl_str(copy_line *l, const char *s);
void cl_char(copy_line *l, char c);

/* Append SQL NULL (\N). */
void cl_null(copy_line *l);

/* Append text as one field, escaped (backslash, tab, newline, carriage
 * return); NULL appends \N.  db_copy_unescape() (db.h) undoes it. */
void cl_field(copy_line *l, const char *text);

/* Append an integer in decimal. */
void cl_i64(copy_line *l, int64_t v);

/* Append 1/10000 units with four decimals, as money_format4(). */
void cl_money4(copy_line *l, int64_t units);

#endif
