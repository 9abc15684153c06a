/* graphcalls.c: see graphcalls.h. */
#include "graphcalls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db.h"
#include "log.h"
#include "sha256.h"

/* A saved page is at most 1,000 rows; anything far larger is not one. */
#define PAGE_FILE_MAX (256u * 1024 * 1024)

/* The page's shape, its nextLink, and each row's fields as text (jsonb
 * ->> gives numbers in numeric's exact text). */
static const char PAGE_SQL[] =
    "WITH doc AS (SELECT $1::jsonb AS j)"
    " SELECT jsonb_typeof(j), jsonb_typeof(j->'value'),"
    " (SELECT value #>> '{}' FROM jsonb_each(CASE jsonb_typeof(j)"
    "  WHEN 'object' THEN j END) WHERE lower(key) = '@odata.nextlink'"
    "  LIMIT 1),"
    " e.ord, e.v::text, e.v->>'id', e.v->>'callId', e.v->>'conferenceId',"
    " e.v->>'userId', e.v->>'userPrincipalName', e.v->>'userDisplayName',"
    " e.v->>'callType', e.v->>'calleeNumber', e.v->>'startDateTime',"
    " e.v->>'endDateTime', e.v->>'duration', e.v->>'charge',"
    " e.v->>'connectionCharge', e.v->>'currency', e.v->>'licenseCapability',"
    " e.v->>'otherPartyCountryCode'"
    " FROM doc LEFT JOIN LATERAL jsonb_array_elements(CASE"
    "  jsonb_typeof(j->'value') WHEN 'array' THEN j->'value' END)"
    "  WITH ORDINALITY AS e(v, ord) ON true"
    " ORDER BY e.ord";

/* The call_field of result columns 5.. of PAGE_SQL. */
static const call_field PAGE_FIELDS[] = {
    CF_USAGE_ID, CF_CALL_ID, CF_CONFERENCE_ID, CF_ORGANIZER_ID, CF_UPN,
    CF_DISPLAY_NAME, CF_CALL_TYPE, CF_DESTINATION, CF_START, CF_END,
    CF_DURATION, CF_CHARGE, CF_CONNECTION_FEE, CF_CURRENCY, CF_CAPABILITY,
    CF_COUNTRY
};

ac_status graphcalls_page(callstage *s, const char *json, size_t len,
                          long long base, long long *rows, char **next,
                          char *err)
{
    PGconn *conn = callstage_conn(s);
    PGresult *res;
    ac_status rc;

    *rows = 0;
    *next = NULL;
    if (!callstage_is_utf8(json, len))
        return ac_fail(err, AC_EDATA, "the page is not UTF-8 text");
    rc = callstage_pause(s, err);
    if (rc != AC_OK)
        return rc;
    rc = db_exec(conn, "SAVEPOINT import_page", err);
    if (rc != AC_OK)
        return rc;
    const char *p[] = { json };
    res = PQexecParams(conn, PAGE_SQL, 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        rc = db_status_of(conn, res);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        int data = state != NULL && strncmp(state, "22", 2) == 0;
        ac_fail(err, data ? AC_EDATA : rc, "not a Graph page: %s",
                msg ? msg : PQerrorMessage(conn));
        PQclear(res);
        if (db_exec(conn, "ROLLBACK TO SAVEPOINT import_page", NULL) != AC_OK)
            return AC_EUNAVAIL;
        return data ? AC_EDATA : rc;
    }
    rc = db_exec(conn, "RELEASE SAVEPOINT import_page", err);
    if (rc != AC_OK) {
        PQclear(res);
        return rc;
    }
    const char *doc = PQgetvalue(res, 0, 0);
    const char *value = db_value(res, 0, 1);
    if (strcmp(doc, "object") != 0 || value == NULL ||
        strcmp(value, "array") != 0) {
        int object = strcmp(doc, "object") == 0;
        PQclear(res);
        return ac_fail(err, AC_EDATA, "not a Graph page: %s", object
                       ? "it has no \"value\" array"
                       : "the JSON is not an object");
    }
    if (!PQgetisnull(res, 0, 2)) {
        *next = strdup(PQgetvalue(res, 0, 2));
        if (*next == NULL) {
            PQclear(res);
            return ac_fail(err, AC_EOSERR, "out of memory");
        }
    }
    for (int i = 0; i < PQntuples(res); i++) {
        if (PQgetisnull(res, i, 3))
            continue;                       /* an empty page */
        const char *f[CF_COUNT] = { NULL };
        for (size_t k = 0; k < sizeof PAGE_FIELDS / sizeof PAGE_FIELDS[0];
             k++)
            f[PAGE_FIELDS[k]] = db_value(res, i, 5 + (int)k);
        long long ord = atoll(PQgetvalue(res, i, 3));
        const char *raw = PQgetvalue(res, i, 4);
        callstage_row(s, base + ord, f, raw, strlen(raw), -1, 0);
        (*rows)++;
    }
    PQclear(res);
    return AC_OK;
}

ac_status import_read_file(const char *path, size_t max, char **out,
                           size_t *len, char *err)
{
    struct stat st;
    FILE *f = fopen(path, "rb");

    *out = NULL;
    *len = 0;
    if (f == NULL)
        return ac_fail(err, errno == ENOENT ? AC_ENOINPUT : AC_EIO,
                       "cannot open %s: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return ac_fail(err, AC_EIO, "%s is not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max) {
        fclose(f);
        return ac_fail(err, AC_EDATA, "%s is larger than %zu MiB", path,
                       max >> 20);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        fclose(f);
        return ac_fail(err, AC_EOSERR, "out of memory");
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n != (size_t)st.st_size) {
        free(buf);
        return ac_fail(err, AC_EIO, "cannot read %s", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return AC_OK;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

ac_status graphcalls_import_file(PGconn *conn, const char *tenant,
                                 const char *path, ac_status *worst,
                                 char *err)
{
    const char *file = base_name(path);
    char *json = NULL, hex[65], why[AC_ERR_MAX];
    size_t len = 0;
    callstage *s = NULL;
    ac_status rc;

    rc = import_read_file(path, PAGE_FILE_MAX, &json, &len, why);
    if (rc != AC_OK) {
        *worst = AC_EDATA;
        ac_status r2 = import_record_refused(conn, tenant, "graph-calls",
                                             file, NULL, NULL, why, err);
        if (r2 != AC_OK)
            return r2;
        if (rc == AC_EDATA)
            return AC_OK;
        return ac_fail(err, rc, "%s", why);
    }
    sha256_ctx sha;
    sha256_init(&sha);
    sha256_update(&sha, json, len);
    sha256_final_hex(&sha, hex);

    rc = callstage_begin(conn, tenant, "graph-calls", file, NULL, &s, err);
    if (rc != AC_OK) {
        free(json);
        return rc;
    }
    long long rows = 0;
    char *next = NULL;
    rc = graphcalls_page(s, json, len, 0, &rows, &next, why);
    free(json);
    free(next);
    if (rc != AC_OK) {
        callstage_abort(s, hex, why);
        *worst = AC_EDATA;
        if (rc == AC_EDATA)
            return AC_OK;
        return ac_fail(err, rc, "%s: %s", file, why);
    }
    import_counts c;
    rc = callstage_finish(s, hex, NULL, NULL, &c, err);
    if (rc != AC_OK)
        return rc;
    ac_info("import graph-calls %s: %lld read, %lld inserted, %lld updated, "
            "%lld unchanged, %lld skipped (other call types), %lld rejected "
            "(import %lld)", file, c.read, c.inserted, c.updated,
            c.unchanged, c.skipped, c.rejected, c.import_id);
    if (c.rejected > 0)
        *worst = AC_EDATA;
    return AC_OK;
}
