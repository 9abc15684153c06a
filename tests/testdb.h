/* testdb.h: fresh databases for the integration tests.
 *
 * The tests run inside a throwaway cluster (tests/run.sh starts one with
 * pg_virtualenv), so the PG* environment variables point at a server the
 * tests own.  Each suite makes its own database, migrated by the real
 * `acbill migrate`. */
#ifndef AC_TESTDB_H
#define AC_TESTDB_H

#include <libpq-fe.h>
#include <stddef.h>

/* Drop and create database `name`, migrate it with `acbill migrate`, and
 * return a connection to it (NULL on failure, with the reason printed).
 * conninfo receives "dbname=<name>" for passing to `acbill --db`. */
PGconn *testdb_fresh(const char *name, char *conninfo, size_t conninfo_len);

/* Run SQL (no parameters) that must succeed; returns 0 or -1 (printed). */
int testdb_exec(PGconn *conn, const char *sql);

/* Load an SQL fixture file from tests/fixtures/ with psql; 0 or -1. */
int testdb_load(const char *conninfo, const char *fixture);

/* Run one query and return the single value of its first row as a
 * malloc'd string ("" for NULL, NULL when there is no row or it failed). */
char *testdb_value(PGconn *conn, const char *sql);

/* 1 when the single value of sql's first row on conn is the text want;
 * otherwise 0, after printing the query, want and what came instead,
 * with the test's source line. */
int testdb_equals(PGconn *conn, const char *sql, const char *want,
                  int line);

/* testdb_value() parsed as a long (LONG_MIN on failure). */
long testdb_long(PGconn *conn, const char *sql);

#endif
