/* db.c: see db.h. */
#include "db.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "log.h"
#include "money.h"

/* ------------------------------------------------------ prepared statements
 *
 * The job runs the same few dozen statements for every tenant; parsing
 * and planning them again each time cost the server more than a tenant's
 * small queries themselves.  So each connection prepares a statement the
 * first time it runs it and executes it by name from then on.  The cache
 * is keyed by the connection and its server process (a new connection at
 * a recycled address is a different backend), names are never reused in a
 * process, and anything unusual (no room, a failed prepare) falls back to
 * the plain unnamed statement.  A statement the server no longer knows
 * (DEALLOCATE; the job never does that) is forgotten and, outside a
 * transaction block, run unnamed instead. */
#define CACHE_CONNS 32
#define CACHE_STATEMENTS 64

typedef struct {
    PGconn *conn;
    int pid;
    int n;
    char *sql[CACHE_STATEMENTS];
    unsigned long id[CACHE_STATEMENTS];
} stmt_cache;

static stmt_cache caches[CACHE_CONNS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_ulong next_id;

/* The cache of conn (reset when its slot held another backend); NULL when
 * there is no room.  Called with cache_lock held. */
static stmt_cache *cache_of(PGconn *conn)
{
    int pid = PQbackendPID(conn), free_slot = -1;

    for (int i = 0; i < CACHE_CONNS; i++) {
        if (caches[i].conn == conn && caches[i].pid == pid)
            return &caches[i];
        if (caches[i].conn == NULL && free_slot < 0)
            free_slot = i;
        if (caches[i].conn == conn)         /* a closed connection's */
            free_slot = i;
    }
    if (free_slot < 0)
        return NULL;
    stmt_cache *c = &caches[free_slot];
    for (int k = 0; k < c->n; k++)
        free(c->sql[k]);
    memset(c, 0, sizeof *c);
    c->conn = conn;
    c->pid = pid;
    return c;
}

/* Forget conn's statements (the server said it does not know one). */
static void cache_forget(PGconn *conn)
{
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < CACHE_CONNS; i++) {
        if (caches[i].conn != conn)
            continue;
        for (int k = 0; k < caches[i].n; k++)
            free(caches[i].sql[k]);
        memset(&caches[i], 0, sizeof caches[i]);
    }
    pthread_mutex_unlock(&cache_lock);
}

/* The name under which sql is prepared on conn, written into name; 0 when
 * it is not (then run it unnamed). */
static int prepared(PGconn *conn, const char *sql, int nparams,
                    char name[32])
{
    stmt_cache *c;
    int found = 0;

    if (PQstatus(conn) != CONNECTION_OK ||
        PQtransactionStatus(conn) == PQTRANS_INERROR)
        return 0;
    pthread_mutex_lock(&cache_lock);
    c = cache_of(conn);
    for (int k = 0; c != NULL && k < c->n && !found; k++) {
        if (strcmp(c->sql[k], sql) == 0) {
            snprintf(name, 32, "acbill_%lu", c->id[k]);
            found = 1;
        }
    }
    int room = c != NULL && c->n < CACHE_STATEMENTS;
    pthread_mutex_unlock(&cache_lock);
    if (found || !room)
        return found;

    /* Not yet: prepare it (outside the lock: a connection belongs to one
     * thread at a time, so nobody else adds to this cache meanwhile). */
    unsigned long id = atomic_fetch_add(&next_id, 1);
    char *copy = strdup(sql);
    if (copy == NULL)
        return 0;
    snprintf(name, 32, "acbill_%lu", id);
    /* Inside a transaction a failed prepare (a lock_timeout or
     * statement_timeout while it waits for a table's lock) would abort the
     * transaction and hide its error behind "current transaction is
     * aborted": prepare in a savepoint, so that the statement then runs
     * unnamed and fails (or not) with its own SQLSTATE. */
    int in_txn = PQtransactionStatus(conn) == PQTRANS_INTRANS;
    if (in_txn) {
        PGresult *sp = PQexec(conn, "SAVEPOINT acbill_prepare");
        int sp_ok = PQresultStatus(sp) == PGRES_COMMAND_OK;
        PQclear(sp);
        if (!sp_ok) {
            free(copy);
            return 0;
        }
    }
    PGresult *res = PQprepare(conn, name, sql, nparams, NULL);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (in_txn)
        PQclear(PQexec(conn, ok ? "RELEASE SAVEPOINT acbill_prepare"
                                : "ROLLBACK TO SAVEPOINT acbill_prepare; "
                                  "RELEASE SAVEPOINT acbill_prepare"));
    if (ok) {
        pthread_mutex_lock(&cache_lock);
        c = cache_of(conn);
        if (c != NULL && c->n < CACHE_STATEMENTS) {
            c->sql[c->n] = copy;
            c->id[c->n++] = id;
            copy = NULL;
        }
        pthread_mutex_unlock(&cache_lock);
    }
    free(copy);
    return ok;
}

/* Did res fail because the server does not know the prepared statement? */
static int unknown_statement(const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return state != NULL && strcmp(state, "26000") == 0;
}

int db_send_query(PGconn *conn, const char *sql, int nparams,
                  const char *const *params)
{
    char name[32];
    if (prepared(conn, sql, nparams, name))
        return PQsendQueryPrepared(conn, name, nparams, params, NULL, NULL,
                                   0);
    return PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL,
                             0);
}

/* ------------------------------------------------------------------ */

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

ac_status db_status_of_sqlstate(const char *state)
{
    if (state == NULL || strlen(state) != 5)
        return AC_EINTERNAL;
    /* Try again later: a timeout, a lock held too long, a serialization
     * failure or deadlock. */
    if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0 ||
        strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
        return AC_ETEMPFAIL;
    /* The server cannot serve now: connection trouble, shutting down or
     * starting up, out of resources (disk, memory, connections), a
     * read-only server (a standby, or default_transaction_read_only). */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
        strncmp(state, "53", 2) == 0 || strncmp(state, "58", 2) == 0 ||
        strcmp(state, "25006") == 0)
        return AC_EUNAVAIL;
    /* Configuration: authentication, an unknown database, no privilege. */
    if (strncmp(state, "28", 2) == 0 || strcmp(state, "3D000") == 0 ||
        strcmp(state, "42501") == 0)
        return AC_ECONFIG;
    return AC_EINTERNAL;
}

ac_status db_status_of(PGconn *conn, const PGresult *res)
{
    if (PQstatus(conn) != CONNECTION_OK)
        return AC_EUNAVAIL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return db_status_of_sqlstate(state);
}

/* The status a failed connection attempt deserves, from libpq's message
 * (written with PQERRORS_VERBOSE, so a server's refusal carries its
 * SQLSTATE: "FATAL:  3D000: database ... does not exist"). */
static ac_status connect_failure_status(PGconn *conn, const char *msg)
{
    const char *fatal = strstr(msg, "FATAL:  ");

    if (PQconnectionNeedsPassword(conn))
        return AC_ECONFIG;
    if (fatal != NULL) {
        char state[6];
        fatal += 8;
        if (strlen(fatal) > 6 && fatal[5] == ':') {
            memcpy(state, fatal, 5);
            state[5] = '\0';
            return db_status_of_sqlstate(state);
        }
        return AC_EUNAVAIL;
    }
    /* libpq's own messages (the C locale: main() never calls setlocale):
     * a host name the resolver says does not exist, a malformed conninfo,
     * TLS set up wrongly are configuration; a refused or timed out
     * connection, a missing socket, a resolver that failed for now are
     * transient. */
    static const char *const config[] = {
        "Name or service not known", "No address associated with hostname",
        "invalid connection option", "invalid URI", "missing \"=\" after",
        "invalid integer value", "invalid sslmode value", "invalid port number",
        "unterminated quoted string", "invalid value for parameter",
        "definition of service", "service file", "SSL was required",
        "certificate verify failed", "root certificate file", "SCRAM",
        "password authentication failed", "authentication method"
    };
    for (size_t i = 0; i < sizeof config / sizeof config[0]; i++)
        if (strstr(msg, config[i]) != NULL)
            return AC_ECONFIG;
    return AC_EUNAVAIL;
}

/* "FATAL:  3D000: database "x" does not exist\nLOCATION: ..." as
 * "FATAL: database "x" does not exist (SQLSTATE 3D000)", on one line. */
static void connect_message(const char *msg, char *err)
{
    char buf[AC_ERR_MAX], state[6] = "";
    size_t n = 0;

    for (const char *p = msg; *p && n < sizeof buf - 1;) {
        if (strncmp(p, "FATAL:  ", 8) == 0 && strlen(p) > 14 && p[13] == ':') {
            memcpy(state, p + 8, 5);
            state[5] = '\0';
            n += (size_t)snprintf(buf + n, sizeof buf - n, "FATAL: ");
            p += 15;
            continue;
        }
        if (strncmp(p, "LOCATION:", 9) == 0) {     /* the server's source */
            while (*p && *p != '\n')
                p++;
            continue;
        }
        if (*p == '\n' || *p == '\t') {
            if (n > 0 && buf[n - 1] != ' ')
                buf[n++] = ' ';
            p++;
            continue;
        }
        buf[n++] = *p++;
    }
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n < sizeof buf ? n : sizeof buf - 1] = '\0';
    if (state[0] != '\0')
        ac_fail(err, AC_OK, "cannot connect to PostgreSQL: %s (SQLSTATE %s)",
                buf, state);
    else
        ac_fail(err, AC_OK, "cannot connect to PostgreSQL: %s", buf);
}

/* Seconds to wait for the server at each step of connecting: the
 * conninfo's (or PGCONNECT_TIMEOUT's) connect_timeout, else 30. */
static int connect_timeout_s(PGconn *conn)
{
    PQconninfoOption *opts = PQconninfo(conn);
    int t = 30;
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val != NULL &&
            atoi(o->val) > 0)
            t = atoi(o->val) < 2 ? 2 : atoi(o->val);
    PQconninfoFree(opts);
    return t;
}

/* Set the session's lock_timeout and statement_timeout from
 * ACBILL_LOCK_TIMEOUT and ACBILL_STATEMENT_TIMEOUT (PostgreSQL durations
 * such as "60s", "30min"; "0" = none). */
static ac_status set_timeouts(PGconn *conn, char *err)
{
    const char *lock = env_str("ACBILL_LOCK_TIMEOUT");
    const char *stmt = env_str("ACBILL_STATEMENT_TIMEOUT");
    const char *p[] = { lock ? lock : DB_DEFAULT_LOCK_TIMEOUT,
                        stmt ? stmt : DB_DEFAULT_STATEMENT_TIMEOUT };
    PGresult *res = PQexecParams(conn,
        "SELECT set_config('lock_timeout', $1, false),"
        " set_config('statement_timeout', $2, false)", 2, NULL, p, NULL,
        NULL, 0);
    ac_status rc = AC_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        rc = db_status_of(conn, res);
        if (state != NULL && strncmp(state, "22", 2) == 0)
            rc = AC_ECONFIG;
        copy_message(err, "ACBILL_LOCK_TIMEOUT/ACBILL_STATEMENT_TIMEOUT",
                     PQerrorMessage(conn));
    }
    PQclear(res);
    return rc;
}

/* Does a postgres:// or postgresql:// URI have an '@' after the end of
 * its authority (in the path, before any '?')?  Then a password held a
 * '/' (or an '@') that was not %-encoded. */
static int uri_misplaced_at(const char *s)
{
    const char *p;
    if (strncmp(s, "postgresql://", 13) == 0)
        p = s + 13;
    else if (strncmp(s, "postgres://", 11) == 0)
        p = s + 11;
    else
        return 0;
    p += strcspn(p, "/?");
    if (*p != '/')
        return 0;
    size_t n = strcspn(p, "?");
    return memchr(p, '@', n) != NULL;
}

ac_status db_connect(const char *conninfo, PGconn **out, char *err)
{
    const char *keys[] = { "dbname", "application_name",
                           "fallback_application_name", NULL };
    const char *vals[] = { conninfo ? conninfo : "", "acbill", "acbill",
                           NULL };
    PGconn *conn;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;

    *out = NULL;
    /* A malformed string is a configuration error (78), told without the
     * string or libpq's parse message, which quotes pieces of it (a
     * password among them).  A password it holds is never shown. */
    if (conninfo != NULL && *conninfo != '\0') {
        char *perr = NULL;
        PQconninfoOption *o = PQconninfoParse(conninfo, &perr);
        /* libpq's URI parser ends the user:password@host part at the
         * first '/': a password holding '/' or '@' that is not
         * %-encoded becomes a host, port or database name, which later
         * messages would quote.  Such a URI, and any port that is not a
         * number, is malformed here. */
        int bad = o == NULL || uri_misplaced_at(conninfo);
        for (PQconninfoOption *p = o; !bad && p->keyword != NULL; p++)
            if (strcmp(p->keyword, "port") == 0 && p->val != NULL)
                bad = p->val[strspn(p->val, "0123456789,")] != '\0';
        if (bad && o != NULL) {
            PQconninfoFree(o);
            o = NULL;
        }
        if (o == NULL) {
            if (perr != NULL)
                PQfreemem(perr);
            return ac_fail(err, AC_ECONFIG, "database: the connection "
                           "string (--db) is malformed: libpq cannot parse "
                           "it (not shown, as it may hold a password); "
                           "check its quoting, or %%-encoding in a URI");
        }
        for (PQconninfoOption *p = o; p->keyword != NULL; p++)
            if (strcmp(p->keyword, "password") == 0 && p->val != NULL)
                ac_log_secret(p->val);
        PQconninfoFree(o);
    }
    /* expand_dbname lets conninfo be a keyword string or a URI.  Started
     * by hand rather than with PQconnectdbParams() so that the messages
     * are verbose from the start: a server's refusal then carries its
     * SQLSTATE, which tells a wrong password (configuration) from a server
     * starting up (try later). */
    conn = PQconnectStartParams(keys, vals, 1);
    if (conn == NULL)
        return ac_fail(err, AC_EOSERR, "database: out of memory");
    PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
    int timeout_ms = connect_timeout_s(conn) * 1000;
    while (PQstatus(conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
           st != PGRES_POLLING_FAILED) {
        struct pollfd p = { PQsocket(conn), st == PGRES_POLLING_READING
                                            ? POLLIN : POLLOUT, 0 };
        if (p.fd >= 0) {
            int n = poll(&p, 1, timeout_ms);
            if (n == 0) {
                char what[AC_ERR_MAX];
                snprintf(what, sizeof what, "no answer from the server in "
                         "%d s", timeout_ms / 1000);
                connect_message(what, err);
                PQfinish(conn);
                return AC_EUNAVAIL;
            }
            if (n < 0 && errno == EINTR)
                continue;
        }
        st = PQconnectPoll(conn);
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(conn);
        ac_status rc = connect_failure_status(conn, msg);
        connect_message(msg, err);
        if (rc == AC_ECONFIG && err != NULL) {
            size_t n = strlen(err);
            snprintf(err + n, AC_ERR_MAX - n, "; check --db, the PG* "
                     "variables and ~/.pgpass (this will not pass by "
                     "itself)");
        }
        PQfinish(conn);
        return rc;
    }
    PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
    ac_status rc = db_exec(conn,
                           "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD';"
                           " SET client_encoding = 'UTF8';"
                           " SET extra_float_digits = 3;", err);
    if (rc == AC_OK)
        rc = set_timeouts(conn, err);
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
    char name[32];
    PGresult *res = NULL;

    if (prepared(conn, sql, nparams, name)) {
        res = PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
        if (unknown_statement(res)) {
            cache_forget(conn);
            PQclear(res);
            res = NULL;
        }
    }
    if (res == NULL)
        res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
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

ac_status db_require_schema(PGconn *conn, char *err)
{
    PGresult *res;
    ac_status rc = db_query(conn, "SELECT to_regclass("
                            "'billing.schema_migrations') IS NOT NULL", 0,
                            NULL, &res, err);
    if (rc != AC_OK)
        return rc;
    int ok = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!ok)
        return ac_fail(err, AC_ECONFIG, "the database %s has no acbill "
                       "schema: run `acbill migrate` first",
                       PQdb(conn) ? PQdb(conn) : "");
    return AC_OK;
}

ac_status db_connect_migrated(const char *conninfo, PGconn **out, char *err)
{
    ac_status rc = db_connect(conninfo, out, err);
    if (rc == AC_OK) {
        rc = db_require_schema(*out, err);
        if (rc != AC_OK) {
            PQfinish(*out);
            *out = NULL;
        }
    }
    return rc;
}

/* ---------------------------------------------------------- COPY lines */

void cl_reset(copy_line *l)
{
    l->n = 0;
    l->failed = 0;
}

void cl_free(copy_line *l)
{
    free(l->b);
    l->b = NULL;
    l->n = l->cap = 0;
    l->failed = 0;
}

void cl_bytes(copy_line *l, const char *s, size_t n)
{
    if (l->failed)
        return;
    if (n > l->cap - l->n) {
        size_t cap = l->cap ? l->cap : 512;
        while (cap - l->n < n) {
            if (cap > SIZE_MAX / 2) {
                l->failed = 1;
                return;
            }
            cap *= 2;
        }
        char *b = realloc(l->b, cap);
        if (b == NULL) {
            l->failed = 1;
            return;
        }
        l->b = b;
        l->cap = cap;
    }
    memcpy(l->b + l->n, s, n);
    l->n += n;
}

void cl_str(copy_line *l, const char *s)
{
    cl_bytes(l, s, strlen(s));
}

void cl_char(copy_line *l, char c)
{
    cl_bytes(l, &c, 1);
}

void cl_null(copy_line *l)
{
    cl_bytes(l, "\\N", 2);
}

void cl_field(copy_line *l, const char *text)
{
    if (text == NULL) {
        cl_null(l);
        return;
    }
    /* Runs without special characters go in one piece. */
    for (const char *run = text;; text++) {
        const char *esc = *text == '\\' ? "\\\\" : *text == '\t' ? "\\t"
                        : *text == '\n' ? "\\n" : *text == '\r' ? "\\r"
                        : NULL;
        if (esc == NULL && *text != '\0')
            continue;
        cl_bytes(l, run, (size_t)(text - run));
        if (*text == '\0')
            return;
        cl_bytes(l, esc, 2);
        run = text + 1;
    }
}

void cl_i64(copy_line *l, int64_t v)
{
    char buf[24], *e = buf + sizeof buf, *p = e;
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do
        *--p = (char)('0' + a % 10);
    while ((a /= 10) != 0);
    if (v < 0)
        *--p = '-';
    cl_bytes(l, p, (size_t)(e - p));
}

void cl_money4(copy_line *l, int64_t units)
{
    char buf[32];
    money_format4(units, buf, sizeof buf);
    cl_str(l, buf);
}
