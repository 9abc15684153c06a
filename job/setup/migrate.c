/* migrate.c: see migrate.h. */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "db.h"
#include "log.h"
#include "sha256.h"

#define MAX_MIGRATIONS 256
/* An arbitrary constant identifying acbill's migration lock. */
#define MIGRATE_LOCK_KEY "7254106201"

typedef struct {
    int version;
    char name[NAME_MAX + 1];
} migration;

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

ac_status migrate_find_sql_dir(char *dir, size_t len, char *err)
{
    const char *env = getenv("ACBILL_SQL_DIR");
    char exe[PATH_MAX], probe[PATH_MAX + 64];

    if (env != NULL && *env != '\0') {
        snprintf(dir, len, "%s", env);
        return AC_OK;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL)
            *slash = '\0';
        snprintf(probe, sizeof probe, "%s/../share/acbill/sql/migrations",
                 exe);
        if (is_dir(probe)) {
            snprintf(dir, len, "%s/../share/acbill/sql", exe);
            return AC_OK;
        }
        snprintf(probe, sizeof probe, "%s/../sql/migrations", exe);
        if (is_dir(probe)) {
            snprintf(dir, len, "%s/../sql", exe);
            return AC_OK;
        }
    }
    snprintf(probe, sizeof probe, "%s/migrations", ACBILL_SQL_DIR);
    if (is_dir(probe)) {
        snprintf(dir, len, "%s", ACBILL_SQL_DIR);
        return AC_OK;
    }
    return ac_fail(err, AC_ENOINPUT, "cannot find the SQL migrations "
                   "(set ACBILL_SQL_DIR to the directory holding "
                   "migrations/)");
}

static int by_version(const void *a, const void *b)
{
    const migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* List NNN_*.sql in dir/migrations, sorted; duplicates are an error. */
static ac_status list_migrations(const char *sql_dir, migration *out,
                                 int *count, char *err)
{
    char path[PATH_MAX];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(path, sizeof path, "%s/migrations", sql_dir);
    d = opendir(path);
    if (d == NULL)
        return ac_fail(err, AC_ENOINPUT, "cannot open %s: %s", path,
                       strerror(errno));
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 9 || strcmp(e->d_name + len - 4, ".sql") != 0)
            continue;
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (end != e->d_name + 3 || *end != '_' || v <= 0)
            continue;
        if (n == MAX_MIGRATIONS) {
            closedir(d);
            return ac_fail(err, AC_EINTERNAL, "too many migrations");
        }
        out[n].version = (int)v;
        snprintf(out[n].name, sizeof out[n].name, "%s", e->d_name);
        n++;
    }
    closedir(d);
    qsort(out, (size_t)n, sizeof *out, by_version);
    for (int i = 1; i < n; i++)
        if (out[i].version == out[i - 1].version)
            return ac_fail(err, AC_EINTERNAL, "two migrations numbered %03d",
                           out[i].version);
    *count = n;
    return AC_OK;
}

static char *read_file(const char *path, char *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;

    if (f == NULL) {
        ac_fail(err, AC_ENOINPUT, "cannot read %s: %s", path,
                strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)size + 1);
        if (buf != NULL && fread(buf, 1, (size_t)size, f) == (size_t)size) {
            buf[size] = '\0';
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    if (buf == NULL)
        ac_fail(err, AC_EIO, "cannot read %s", path);
    return buf;
}

static ac_status apply_one(PGconn *conn, const char *sql_dir,
                           const migration *m, PGresult *done, char *err)
{
    char path[PATH_MAX + NAME_MAX + 16], hex[65], version[16];
    sha256_ctx ctx;
    ac_status rc;

    snprintf(path, sizeof path, "%s/migrations/%s", sql_dir, m->name);
    char *sql = read_file(path, err);
    if (sql == NULL)
        return AC_ENOINPUT;
    sha256_init(&ctx);
    sha256_update(&ctx, sql, strlen(sql));
    sha256_final_hex(&ctx, hex);

    for (int i = 0; i < PQntuples(done); i++) {
        if (atoi(PQgetvalue(done, i, 0)) != m->version)
            continue;
        if (strcmp(PQgetvalue(done, i, 1), hex) != 0)
            ac_warn("migration %s was applied from a different file; the "
                    "database keeps the applied version", m->name);
        free(sql);
        return AC_OK;
    }
    ac_info("applying migration %s", m->name);
    rc = db_exec(conn, sql, err);
    free(sql);
    if (rc != AC_OK) {
        size_t used = strlen(err);
        snprintf(err + used, AC_ERR_MAX - used, " (in migration %s)",
                 m->name);
        return rc;
    }
    snprintf(version, sizeof version, "%d", m->version);
    const char *params[] = { version, m->name, hex };
    return db_exec_params(conn,
                          "INSERT INTO billing.schema_migrations "
                          "(version, name, sha256) VALUES ($1, $2, $3)",
                          3, params, err);
}

ac_status migrate_apply(PGconn *conn, const char *sql_dir, int *applied,
                        char *err)
{
    migration *list = calloc(MAX_MIGRATIONS, sizeof *list);
    PGresult *done = NULL;
    int n = 0, before;
    ac_status rc;

    *applied = 0;
    if (list == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    rc = list_migrations(sql_dir, list, &n, err);
    if (rc == AC_OK)
        rc = db_exec(conn,
            "SET client_min_messages = warning;"
            "BEGIN;"
            "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ");"
            "CREATE SCHEMA IF NOT EXISTS billing;"
            "CREATE TABLE IF NOT EXISTS billing.schema_migrations ("
            "  version int PRIMARY KEY, name text NOT NULL,"
            "  sha256 text NOT NULL,"
            "  applied_at timestamptz NOT NULL DEFAULT now())", err);
    if (rc == AC_OK)
        rc = db_query(conn, "SELECT version, sha256 FROM "
                      "billing.schema_migrations", 0, NULL, &done, err);
    before = done ? PQntuples(done) : 0;
    for (int i = 0; rc == AC_OK && i < n; i++)
        rc = apply_one(conn, sql_dir, &list[i], done, err);
    if (rc == AC_OK) {
        PGresult *after;
        rc = db_query(conn, "SELECT count(*) FROM billing.schema_migrations",
                      0, NULL, &after, err);
        if (rc == AC_OK) {
            *applied = atoi(PQgetvalue(after, 0, 0)) - before;
            PQclear(after);
            rc = db_exec(conn, "COMMIT", err);
        }
    }
    if (rc != AC_OK) {
        db_exec(conn, "ROLLBACK", NULL);
        *applied = 0;
    }
    PQclear(done);
    free(list);
    return rc;
}

ac_status migrate_check(PGconn *conn, const char *sql_dir, char *err)
{
    migration *list = calloc(MAX_MIGRATIONS, sizeof *list);
    PGresult *res = NULL;
    int n = 0;
    ac_status rc;

    if (list == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    rc = list_migrations(sql_dir, list, &n, err);
    if (rc != AC_OK) {          /* the installation's, not the database's */
        free(list);
        return rc;
    }
    rc = db_query(conn, "SELECT coalesce(max(version), 0) FROM "
                  "billing.schema_migrations", 0, NULL, &res, err);
    if (rc == AC_EINTERNAL) {   /* no such table (42P01) */
        rc = ac_fail(err, AC_ECONFIG, "the database has no acbill schema: "
                     "run `acbill migrate` first");
    } else if (rc != AC_OK) {
        /* unavailable, a timeout, no privilege: as the server said */
    } else if (n > 0 && atoi(PQgetvalue(res, 0, 0)) < list[n - 1].version) {
        rc = ac_fail(err, AC_ECONFIG, "the database schema is at version "
                     "%s, this acbill needs %d: run `acbill migrate`",
                     PQgetvalue(res, 0, 0), list[n - 1].version);
    }
    PQclear(res);
    free(list);
    return rc;
}

int cmd_migrate(int argc, char **argv)
{
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *conninfo = NULL;
    char err[AC_ERR_MAX] = "", sql_dir[PATH_MAX];
    PGconn *conn;
    int c, applied;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            conninfo = optarg;
            break;
        case 'h':
            printf("usage: acbill migrate [--db CONNINFO]\n\n"
                   "Creates or upgrades the usage, ref and billing schemas "
                   "and loads\nthe reference seed data: every "
                   "migrations/NNN_*.sql not yet applied,\nin order, in one "
                   "transaction.  Safe to re-run.\n\n"
                   "  --db CONNINFO  the database (default: the libpq "
                   "environment, PGHOST,\n"
                   "                 PGDATABASE, ...)\n"
                   "  -h, --help     this text\n\n"
                   "Environment: ACBILL_SQL_DIR (default: "
                   "<bin>/../share/acbill/sql, else\n<bin>/../sql, else the "
                   "build's sql/), ACBILL_LOCK_TIMEOUT,\n"
                   "ACBILL_STATEMENT_TIMEOUT.\n\n"
                   "exit status: 0 ok, 64 usage, 66 migrations not found, "
                   "69 database\nunavailable, 75 a timeout, 78 "
                   "configuration.  See acbill(1).\n");
            return AC_OK;
        default:
            return ac_usage_getopt("migrate", c, argv);
        }
    }
    if (optind < argc)
        return ac_usage_error("migrate", "unexpected argument '%s'",
                              argv[optind]);
    ac_status rc = migrate_find_sql_dir(sql_dir, sizeof sql_dir, err);
    if (rc == AC_OK)
        rc = db_connect(conninfo, &conn, err);
    if (rc != AC_OK) {
        ac_error("migrate: %s", err);
        return rc;
    }
    rc = migrate_apply(conn, sql_dir, &applied, err);
    PQfinish(conn);
    if (rc != AC_OK) {
        ac_error("migrate: %s", err);
        return rc;
    }
    if (applied == 0)
        ac_info("migrate: schema is up to date");
    else
        ac_info("migrate: applied %d migration(s)", applied);
    return AC_OK;
}
