/* db.c: see db.h. */
#include "db.h"

#include <string.h>

/* Trim the trailing newline libpq puts on its messages. */
static void copy_message(char *err, const char *what, const char *msg)
{
    if (err == NULL)
        return;
    ac_fail(err, AC_OK, "%s: %s", what, msg ? msg : "(no message)");
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
}

ac_status db_status_of(PGconn *conn, const PGresult *res)
{
    if (PQstatus(conn) != CONNECTION_OK)
        return AC_EUNAVAIL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state == NULL)
        return AC_EINTERNAL;
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
        return AC_EUNAVAIL;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
        strcmp(state, "55P03") == 0)
        return AC_ETEMPFAIL;
    return AC_EINTERNAL;
}

ac_status db_connect(const char *conninfo, PGconn **out, char *err)
{
    const char *keys[] = { "dbname", "application_name",
                           "fallback_application_name", NULL };
    const char *vals[] = { conninfo ? conninfo : "", "acbill", "acbill",
                           NULL };
    PGconn *conn;

    *out = NULL;
    /* expand_dbname lets conninfo be a keyword string or a URI. */
    conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL)
        return ac_fail(err, AC_EOSERR, "database: out of memory");
    if (PQstatus(conn) != CONNECTION_OK) {
        copy_message(err, "cannot connect to PostgreSQL",
                     PQerrorMessage(conn));
        PQfinish(conn);
        return AC_EUNAVAIL;
    }
    ac_status rc = db_exec(conn,
                           "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD';"
                           " SET client_encoding = 'UTF8';"
                           " SET extra_float_digits = 3;", err);
    if (rc != AC_OK) {
        PQfinish(conn);
        return rc;
    }
    *out = conn;
    return AC_OK;
}

ac_status db_exec(PGconn *conn, const char *sql, char *err)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(res);
        return AC_OK;
    }
    ac_status rc = db_status_of(conn, res);
    copy_message(err, "database", PQerrorMessage(conn));
    PQclear(res);
    return rc;
}

ac_status db_query(PGconn *conn, const char *sql, int nparams,
                   const char *const *params, PGresult **out, char *err)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL,
                                 NULL, 0);
    ExecStatusType st = PQresultStatus(res);

    *out = NULL;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        *out = res;
        return AC_OK;
    }
    ac_status rc = db_status_of(conn, res);
    copy_message(err, "database", PQerrorMessage(conn));
    PQclear(res);
    return rc;
}

ac_status db_exec_params(PGconn *conn, const char *sql, int nparams,
                         const char *const *params, char *err)
{
    PGresult *res;
    ac_status rc = db_query(conn, sql, nparams, params, &res, err);
    PQclear(res);
    return rc;
}

ac_status db_copy_begin(PGconn *conn, const char *copy_sql, char *err)
{
    PGresult *res = PQexec(conn, copy_sql);

    if (PQresultStatus(res) == PGRES_COPY_IN) {
        PQclear(res);
        return AC_OK;
    }
    ac_status rc = db_status_of(conn, res);
    copy_message(err, "database COPY", PQerrorMessage(conn));
    PQclear(res);
    return rc;
}

ac_status db_copy_put(PGconn *conn, const char *buf, size_t len, char *err)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        if (PQputCopyData(conn, buf, chunk) != 1) {
            copy_message(err, "database COPY", PQerrorMessage(conn));
            return AC_EUNAVAIL;
        }
        buf += chunk;
        len -= (size_t)chunk;
    }
    return AC_OK;
}

ac_status db_copy_end(PGconn *conn, const char *errmsg, char *err)
{
    ac_status rc = AC_OK;
    PGresult *res;

    if (PQputCopyEnd(conn, errmsg) != 1) {
        copy_message(err, "database COPY", PQerrorMessage(conn));
        return AC_EUNAVAIL;
    }
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == AC_OK) {
            rc = db_status_of(conn, res);
            copy_message(err, "database COPY", PQerrorMessage(conn));
        }
        PQclear(res);
    }
    return rc;
}

const char *db_value(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    return PQgetvalue(res, row, col);
}

void db_copy_field(FILE *f, const char *text)
{
    if (text == NULL) {
        fputs("\\N", f);
        return;
    }
    for (; *text; text++) {
        switch (*text) {
        case '\\': fputs("\\\\", f); break;
        case '\t': fputs("\\t", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        default: putc(*text, f);
        }
    }
}

char *db_copy_unescape(char *field)
{
    char *in = field, *out = field;

    if (strcmp(field, "\\N") == 0)
        return NULL;
    while (*in) {
        if (*in != '\\' || in[1] == '\0') {
            *out++ = *in++;
            continue;
        }
        in++;
        switch (*in++) {
        case 't': *out++ = '\t'; break;
        case 'n': *out++ = '\n'; break;
        case 'r': *out++ = '\r'; break;
        case 'b': *out++ = '\b'; break;
        case 'f': *out++ = '\f'; break;
        case 'v': *out++ = '\v'; break;
        default: *out++ = in[-1]; break;
        }
    }
    *out = '\0';
    return field;
}
