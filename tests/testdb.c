/* testdb.c: see testdb.h. */
#include "testdb.h"
#include "testmain.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int testdb_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "testdb: %s\n  in: %.200s\n", PQerrorMessage(conn),
                sql);
    PQclear(res);
    return ok ? 0 : -1;
}

PGconn *testdb_fresh(const char *name, char *conninfo, size_t conninfo_len)
{
    char sql[256];
    PGconn *admin = PQconnectdb("dbname=postgres");
    if (PQstatus(admin) != CONNECTION_OK) {
        fprintf(stderr, "testdb: cannot connect: %s", PQerrorMessage(admin));
        PQfinish(admin);
        return NULL;
    }
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)",
             name);
    int rc = testdb_exec(admin, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    if (rc == 0)
        rc = testdb_exec(admin, sql);
    PQfinish(admin);
    if (rc != 0)
        return NULL;

    snprintf(conninfo, conninfo_len, "dbname=%s", name);
    if (test_system("%s migrate --db '%s' >/dev/null 2>&1",
                    test_acbill_path(), conninfo) != 0) {
        fprintf(stderr, "testdb: acbill migrate failed for %s\n", name);
        return NULL;
    }
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "testdb: cannot connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    testdb_exec(conn, "SET TIME ZONE 'UTC'");
    return conn;
}

int testdb_load(const char *conninfo, const char *fixture)
{
    int rc = test_system("psql -X -q -v ON_ERROR_STOP=1 -d '%s' "
                         "-f '%s/tests/fixtures/%s' >/dev/null",
                         conninfo, test_src_dir(), fixture);
    if (rc != 0)
        fprintf(stderr, "testdb: loading %s failed\n", fixture);
    return rc == 0 ? 0 : -1;
}

char *testdb_value(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    char *out = NULL;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "testdb: %s\n  in: %.200s\n", PQerrorMessage(conn),
                sql);
    else if (PQntuples(res) > 0)
        out = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

long testdb_long(PGconn *conn, const char *sql)
{
    char *v = testdb_value(conn, sql);
    long out = LONG_MIN;
    if (v != NULL && *v != '\0') {
        char *end;
        long x = strtol(v, &end, 10);
        if (*end == '\0')
            out = x;
    }
    free(v);
    return out;
}

int testdb_equals(PGconn *conn, const char *sql, const char *want,
                  int line)
{
    char *got = testdb_value(conn, sql);
    int same = got != NULL && strcmp(got, want) == 0;
    if (!same)
        fprintf(stderr, "\n    line %d: %s\n    want '%s'\n    got  '%s'\n",
                line, sql, want, got ? got : "(no row)");
    free(got);
    return same;
}
