/* licences.c: see licences.h. */
#include "licences.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callstage.h"
#include "db.h"
#include "log.h"

struct licsnap {
    PGconn *conn;
    char tenant[256];
    char at[64];
    char skus_id[32], users_id[32];
    char *skus_name, *users_name;
    long long nskus, nusers;    /* elements staged so far */
};

static const char STAGE_DDL[] =
    "CREATE TEMP TABLE IF NOT EXISTS lic_skus (ord bigint, v jsonb);"
    "CREATE TEMP TABLE IF NOT EXISTS lic_users (ord bigint, v jsonb);"
    "TRUNCATE lic_skus, lic_users";

/* Stage the elements of a document's value array (or of a bare array)
 * into table (lic_skus or lic_users), numbered from $2 + 1; the result
 * gives the document's shape, the count and the nextLink. */
#define ADD_SQL(table) \
    "WITH doc AS (SELECT $1::jsonb AS j)," \
    " arr AS (SELECT CASE jsonb_typeof(j) WHEN 'array' THEN j" \
    "  WHEN 'object' THEN CASE jsonb_typeof(j->'value') WHEN 'array'" \
    "  THEN j->'value' END END AS a FROM doc)," \
    " ins AS (INSERT INTO " table " SELECT $2::bigint + e.ord, e.v" \
    "  FROM arr, jsonb_array_elements(arr.a) WITH ORDINALITY e(v, ord)" \
    "  RETURNING 1)" \
    " SELECT (SELECT a IS NOT NULL FROM arr), (SELECT count(*) FROM ins)," \
    " (SELECT value #>> '{}' FROM doc, jsonb_each(CASE jsonb_typeof(j)" \
    "  WHEN 'object' THEN j END) WHERE lower(key) = '@odata.nextlink'" \
    "  LIMIT 1)"

static void free_snap(licsnap *s)
{
    free(s->skus_name);
    free(s->users_name);
    free(s);
}

ac_status licences_begin(PGconn *conn, const char *tenant, const char *at,
                         const char *skus_name, const char *users_name,
                         licsnap **out, char *err)
{
    PGresult *res = NULL;
    ac_status rc;

    *out = NULL;
    if (!callstage_is_timestamp(at))
        return ac_fail(err, AC_EDATA, "--at '%s' is not an ISO 8601 date "
                       "and time (e.g. 2026-11-01T00:00:00Z)", at);
    licsnap *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    s->conn = conn;
    snprintf(s->tenant, sizeof s->tenant, "%s", tenant);
    snprintf(s->at, sizeof s->at, "%s", at);
    s->skus_name = strdup(skus_name);
    s->users_name = strdup(users_name);
    if (s->skus_name == NULL || s->users_name == NULL) {
        free_snap(s);
        return ac_fail(err, AC_EOSERR, "out of memory");
    }
    rc = db_exec(conn, "BEGIN", err);
    if (rc != AC_OK)
        goto fail;
    rc = import_require_tenant(conn, tenant, err);
    if (rc != AC_OK)
        goto fail;
    const char *ip[] = { tenant, skus_name, users_name, at };
    rc = db_query(conn, "INSERT INTO usage.imports (tenant_id, source,"
                  " file_name, snapshot_at, status) VALUES"
                  " ($1, 'licences-skus', $2, $4, 'ok'),"
                  " ($1, 'licences-users', $3, $4, 'ok')"
                  " RETURNING import_id", 4, ip, &res, err);
    if (rc != AC_OK)
        goto fail;
    snprintf(s->skus_id, sizeof s->skus_id, "%s", PQgetvalue(res, 0, 0));
    snprintf(s->users_id, sizeof s->users_id, "%s", PQgetvalue(res, 1, 0));
    PQclear(res);
    res = NULL;
    rc = db_exec(conn, STAGE_DDL, err);
    if (rc != AC_OK)
        goto fail;
    *out = s;
    return AC_OK;
fail:
    db_exec(conn, "ROLLBACK", NULL);
    free_snap(s);
    return rc;
}

static ac_status add(licsnap *s, const char *sql, long long *count,
                     const char *json, size_t len, char **next, char *err)
{
    PGconn *conn = s->conn;
    char base[32];
    ac_status rc;

    if (next != NULL)
        *next = NULL;
    if (!callstage_is_utf8(json, len))
        return ac_fail(err, AC_EDATA, "not UTF-8 text");
    snprintf(base, sizeof base, "%lld", *count);
    rc = db_exec(conn, "SAVEPOINT licences_add", err);
    if (rc != AC_OK)
        return rc;
    const char *p[] = { json, base };
    PGresult *res = PQexecParams(conn, sql, 2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        int data = state != NULL && strncmp(state, "22", 2) == 0;
        rc = data ? AC_EDATA : db_status_of(conn, res);
        ac_fail(err, rc, "not JSON: %s", msg ? msg : PQerrorMessage(conn));
        PQclear(res);
        if (db_exec(conn, "ROLLBACK TO SAVEPOINT licences_add", NULL) != AC_OK)
            return AC_EUNAVAIL;
        return rc;
    }
    int shaped = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    *count += atoll(PQgetvalue(res, 0, 1));
    if (shaped && next != NULL && !PQgetisnull(res, 0, 2))
        *next = strdup(PQgetvalue(res, 0, 2));
    PQclear(res);
    rc = db_exec(conn, "RELEASE SAVEPOINT licences_add", err);
    if (rc == AC_OK && !shaped)
        rc = ac_fail(err, AC_EDATA, "not a Graph list: no \"value\" array");
    return rc;
}

ac_status licences_add_skus(licsnap *s, const char *json, size_t len,
                            char *err)
{
    return add(s, ADD_SQL("lic_skus"), &s->nskus, json, len, NULL, err);
}

ac_status licences_add_users(licsnap *s, const char *json, size_t len,
                             char **next, char *err)
{
    return add(s, ADD_SQL("lic_users"), &s->nusers, json, len, next, err);
}

/* ------------------------------------------------------------ finish */

/* The SKU elements, checked: $1 nothing.  quantity = enabled + warning. */
static const char SKU_ROWS_SQL[] =
    "CREATE TEMP TABLE lic_sku_rows ON COMMIT DROP AS"
    " SELECT ord, v::text AS raw, lower(v->>'skuId') AS sku_id,"
    " v->>'skuPartNumber' AS sku,"
    " CASE WHEN jsonb_typeof(v) <> 'object' THEN 'not a subscribedSku object'"
    "  WHEN coalesce(v->>'skuId', '') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-"
    "[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'"
    "  THEN 'skuId ''' || coalesce(v->>'skuId', '') || ''' is not a GUID'"
    "  WHEN coalesce(v->>'skuPartNumber', '') = '' THEN 'no skuPartNumber'"
    "  WHEN coalesce(v->'prepaidUnits'->>'enabled', '') !~ '^[0-9]{1,8}$'"
    "  THEN 'prepaidUnits.enabled is not a whole number'"
    "  WHEN coalesce(v->'prepaidUnits'->>'warning', '0') !~ '^[0-9]{1,8}$'"
    "  THEN 'prepaidUnits.warning is not a whole number' END AS reason,"
    " NULL::bigint AS quantity, v FROM lic_skus;"
    "UPDATE lic_sku_rows SET quantity = (v->'prepaidUnits'->>'enabled')"
    "::bigint + coalesce((v->'prepaidUnits'->>'warning')::bigint, 0)"
    " WHERE reason IS NULL;"
    "UPDATE lic_sku_rows r SET reason = 'skuId ' || r.sku_id || ' is listed"
    " twice with different skuPartNumbers' WHERE reason IS NULL AND EXISTS"
    " (SELECT 1 FROM lic_sku_rows o WHERE o.reason IS NULL"
    " AND o.sku_id = r.sku_id AND o.sku <> r.sku)";

/* What the snapshot holds per SKU, against the open intervals ($1 tenant)
 * opened by earlier snapshots. */
static const char SKU_DIFF_SQL[] =
    "CREATE TEMP TABLE lic_sku_diff ON COMMIT DROP AS"
    " WITH snap AS (SELECT sku, sum(quantity) AS quantity, min(ord) AS ord"
    "  FROM lic_sku_rows WHERE reason IS NULL GROUP BY sku),"
    " open AS (SELECT sku, sum(quantity) AS quantity"
    "  FROM usage.license_purchases WHERE tenant_id = $1"
    "  AND import_id IS NOT NULL"
    "  AND (valid_to IS NULL OR valid_to = 'infinity') GROUP BY sku)"
    " SELECT coalesce(snap.sku, open.sku) AS sku, snap.ord,"
    " coalesce(snap.quantity, 0) AS quantity, open.quantity AS held"
    " FROM snap FULL JOIN open ON open.sku = snap.sku";

/* Close ($2 = at) the open intervals of the changed SKUs; those that
 * start at or after `at` (a snapshot of the same instant) go. */
static const char SKU_CLOSE_SQL[] =
    "WITH changed AS (SELECT sku FROM lic_sku_diff WHERE held IS NOT NULL"
    "  AND held <> quantity),"
    " gone AS (DELETE FROM usage.license_purchases p USING changed c"
    "  WHERE p.tenant_id = $1 AND p.sku = c.sku AND p.import_id IS NOT NULL"
    "  AND (p.valid_to IS NULL OR p.valid_to = 'infinity')"
    "  AND p.valid_from >= $2::timestamptz RETURNING 1),"
    " shut AS (UPDATE usage.license_purchases p SET valid_to = $2"
    "  FROM changed c WHERE p.tenant_id = $1 AND p.sku = c.sku"
    "  AND p.import_id IS NOT NULL"
    "  AND (p.valid_to IS NULL OR p.valid_to = 'infinity')"
    "  AND p.valid_from < $2::timestamptz RETURNING 1)"
    " SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM shut)";

static const char SKU_OPEN_SQL[] =
    "INSERT INTO usage.license_purchases (tenant_id, sku, quantity,"
    " valid_from, valid_to, import_id) SELECT $1, sku, quantity, $2, NULL,"
    " $3 FROM lic_sku_diff WHERE quantity > 0"
    " AND held IS DISTINCT FROM quantity";

/* Per element of the SKU file: its outcome. */
static const char SKU_COUNTS_SQL[] =
    "SELECT count(*),"
    " count(*) FILTER (WHERE d.ord = r.ord AND d.held IS NULL"
    "  AND d.quantity > 0),"
    " count(*) FILTER (WHERE d.ord = r.ord AND d.held IS NOT NULL"
    "  AND d.held <> d.quantity),"
    " count(*) FILTER (WHERE r.reason IS NOT NULL)"
    " FROM lic_sku_rows r LEFT JOIN lic_sku_diff d ON d.sku = r.sku"
    " AND r.reason IS NULL";

/* Users and their assigned licences, checked. */
static const char USER_ROWS_SQL[] =
    "CREATE TEMP TABLE lic_user_rows ON COMMIT DROP AS"
    " SELECT ord, v::text AS raw, v->>'id' AS user_id,"
    " v->>'userPrincipalName' AS upn, v->>'displayName' AS display_name,"
    " v->'assignedLicenses' AS lic,"
    " CASE WHEN jsonb_typeof(v) <> 'object' THEN 'not a user object'"
    "  WHEN coalesce(v->>'id', '') = '' THEN 'a user without id'"
    "  WHEN jsonb_typeof(v->'assignedLicenses') IS DISTINCT FROM 'array'"
    "  THEN 'user ' || (v->>'id') || ' has no assignedLicenses array'"
    " END AS reason FROM lic_users;"
    "CREATE TEMP TABLE lic_pairs ON COMMIT DROP AS"
    " SELECT u.ord, u.raw, u.user_id, s.sku,"
    " CASE WHEN coalesce(l.v->>'skuId', '') = ''"
    "  THEN 'user ' || u.user_id || ': an assigned licence without skuId'"
    "  WHEN s.sku IS NULL THEN 'user ' || u.user_id || ': skuId '"
    "  || (l.v->>'skuId') || ' is not in the subscribedSkus snapshot' END"
    " AS reason"
    " FROM lic_user_rows u CROSS JOIN LATERAL jsonb_array_elements(u.lic)"
    " AS l(v) LEFT JOIN (SELECT DISTINCT sku_id, sku FROM lic_sku_rows"
    "  WHERE reason IS NULL) s ON s.sku_id = lower(l.v->>'skuId')"
    " WHERE u.reason IS NULL";

static const char USER_DIFF_SQL[] =
    "CREATE TEMP TABLE lic_user_diff ON COMMIT DROP AS"
    " WITH snap AS (SELECT user_id, sku, min(ord) AS ord FROM lic_pairs"
    "  WHERE reason IS NULL GROUP BY user_id, sku),"
    " open AS (SELECT DISTINCT user_id, sku FROM usage.license_assignments"
    "  WHERE tenant_id = $1 AND import_id IS NOT NULL"
    "  AND (valid_to IS NULL OR valid_to = 'infinity'))"
    " SELECT coalesce(snap.user_id, open.user_id) AS user_id,"
    " coalesce(snap.sku, open.sku) AS sku, snap.ord,"
    " open.user_id IS NOT NULL AS held"
    " FROM snap FULL JOIN open ON open.user_id = snap.user_id"
    " AND open.sku = snap.sku";

/* Close the assignments no longer in the snapshot, except those of users
 * whose element could not be read. */
static const char USER_CLOSE_SQL[] =
    "WITH lost AS (SELECT d.user_id, d.sku FROM lic_user_diff d"
    "  WHERE d.held AND d.ord IS NULL AND NOT EXISTS (SELECT 1"
    "  FROM lic_user_rows u WHERE u.user_id = d.user_id"
    "  AND u.reason IS NOT NULL)),"
    " gone AS (DELETE FROM usage.license_assignments a USING lost l"
    "  WHERE a.tenant_id = $1 AND a.user_id = l.user_id AND a.sku = l.sku"
    "  AND a.import_id IS NOT NULL"
    "  AND (a.valid_to IS NULL OR a.valid_to = 'infinity')"
    "  AND a.valid_from >= $2::timestamptz RETURNING 1),"
    " shut AS (UPDATE usage.license_assignments a SET valid_to = $2"
    "  FROM lost l WHERE a.tenant_id = $1 AND a.user_id = l.user_id"
    "  AND a.sku = l.sku AND a.import_id IS NOT NULL"
    "  AND (a.valid_to IS NULL OR a.valid_to = 'infinity')"
    "  AND a.valid_from < $2::timestamptz RETURNING 1)"
    " SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM shut)";

static const char USER_OPEN_SQL[] =
    "INSERT INTO usage.license_assignments (tenant_id, user_id, sku,"
    " valid_from, valid_to, import_id) SELECT $1, user_id, sku, $2, NULL, $3"
    " FROM lic_user_diff WHERE ord IS NOT NULL AND NOT held";

static const char USER_COUNTS_SQL[] =
    "SELECT (SELECT count(*) FROM lic_pairs)"
    " + (SELECT count(*) FROM lic_user_rows WHERE reason IS NOT NULL),"
    " (SELECT count(*) FROM lic_user_diff WHERE ord IS NOT NULL"
    "  AND NOT held),"
    " 0,"
    " (SELECT count(*) FROM lic_pairs WHERE reason IS NOT NULL)"
    " + (SELECT count(*) FROM lic_user_rows WHERE reason IS NOT NULL)";

static const char USERS_DIRECTORY_SQL[] =
    "INSERT INTO usage.users AS u (tenant_id, user_id, upn, display_name)"
    " SELECT DISTINCT ON (user_id) $1, user_id, upn, display_name"
    " FROM lic_user_rows WHERE reason IS NULL"
    " AND (upn IS NOT NULL OR display_name IS NOT NULL)"
    " ORDER BY user_id, ord DESC"
    " ON CONFLICT (tenant_id, user_id) DO UPDATE SET"
    " upn = coalesce(EXCLUDED.upn, u.upn),"
    " display_name = coalesce(EXCLUDED.display_name, u.display_name)"
    " WHERE (u.upn, u.display_name) IS DISTINCT FROM"
    " (coalesce(EXCLUDED.upn, u.upn),"
    " coalesce(EXCLUDED.display_name, u.display_name))";

static const char REJECTS_SQL[] =
    "INSERT INTO usage.import_rejects (import_id, line_no, raw, reason)"
    " SELECT $1::bigint, ord, raw, reason FROM lic_sku_rows WHERE reason IS NOT NULL"
    " UNION ALL SELECT $2::bigint, ord, raw, reason FROM lic_user_rows"
    " WHERE reason IS NOT NULL"
    " UNION ALL SELECT $2::bigint, ord, raw, reason FROM lic_pairs"
    " WHERE reason IS NOT NULL";

static ac_status count_query(PGconn *conn, const char *sql, int n,
                             const char *const *p, long long *out, int k,
                             char *err)
{
    PGresult *res;
    ac_status rc = db_query(conn, sql, n, p, &res, err);
    if (rc != AC_OK)
        return rc;
    for (int i = 0; i < k; i++)
        out[i] = atoll(PQgetvalue(res, 0, i));
    PQclear(res);
    return AC_OK;
}

static ac_status record(PGconn *conn, const char *id, const char *sha,
                        const licence_counts *c, char *err)
{
    char v[7][32];
    long long nums[] = { c->read, c->inserted, c->updated, c->unchanged,
                         c->rejected, c->closed };
    for (int i = 0; i < 6; i++)
        snprintf(v[i], sizeof v[i], "%lld", nums[i]);
    const char *p[] = { id, sha, v[0], v[1], v[2], v[3], v[4], v[5] };
    return db_exec_params(conn, "UPDATE usage.imports SET sha256 = $2,"
                          " rows_read = $3, inserted = $4, updated = $5,"
                          " unchanged = $6, rejected = $7, closed = $8,"
                          " finished_at = now() WHERE import_id = $1", 8, p,
                          err);
}

ac_status licences_finish(licsnap *s, const char *skus_sha256,
                          const char *users_sha256, licence_counts *skus,
                          licence_counts *users, char *err)
{
    PGconn *conn = s->conn;
    PGresult *res = NULL;
    long long v[4];
    ac_status rc;

    memset(skus, 0, sizeof *skus);
    memset(users, 0, sizeof *users);
    /* History is not rewritten: no snapshot older than the latest. */
    const char *lp[] = { s->tenant, s->at, s->skus_id, s->users_id };
    rc = db_query(conn, "SELECT max(snapshot_at) FROM usage.imports"
                  " WHERE tenant_id = $1 AND status = 'ok'"
                  " AND source IN ('licences-skus', 'licences-users')"
                  " AND import_id NOT IN ($3, $4)"
                  " HAVING max(snapshot_at) > $2::timestamptz", 4, lp, &res,
                  err);
    if (rc != AC_OK)
        goto fail;
    if (PQntuples(res) == 1) {
        char why[AC_ERR_MAX];
        snprintf(why, sizeof why, "the snapshot at %s is older than the "
                 "tenant's latest one (%s): licence history is not "
                 "rewritten", s->at, PQgetvalue(res, 0, 0));
        PQclear(res);
        licences_abort(s, skus_sha256, users_sha256, why);
        return ac_fail(err, AC_EDATA, "%s", why);
    }
    PQclear(res);
    res = NULL;

    const char *tp[] = { s->tenant };
    const char *ta[] = { s->tenant, s->at, s->skus_id };
    const char *tu[] = { s->tenant, s->at, s->users_id };
    rc = db_exec(conn, SKU_ROWS_SQL, err);
    if (rc == AC_OK)
        rc = db_exec_params(conn, SKU_DIFF_SQL, 1, tp, err);
    if (rc == AC_OK)
        rc = count_query(conn, SKU_CLOSE_SQL, 2, ta, &skus->closed, 1, err);
    if (rc == AC_OK)
        rc = db_exec_params(conn, SKU_OPEN_SQL, 3, ta, err);
    if (rc == AC_OK)
        rc = count_query(conn, SKU_COUNTS_SQL, 0, NULL, v, 4, err);
    if (rc != AC_OK)
        goto fail;
    skus->read = v[0];
    skus->inserted = v[1];
    skus->updated = v[2];
    skus->rejected = v[3];
    skus->unchanged = v[0] - v[1] - v[2] - v[3];

    rc = db_exec(conn, USER_ROWS_SQL, err);
    if (rc == AC_OK)
        rc = db_exec_params(conn, USER_DIFF_SQL, 1, tp, err);
    if (rc == AC_OK)
        rc = count_query(conn, USER_CLOSE_SQL, 2, tu, &users->closed, 1,
                         err);
    if (rc == AC_OK)
        rc = db_exec_params(conn, USER_OPEN_SQL, 3, tu, err);
    if (rc == AC_OK)
        rc = count_query(conn, USER_COUNTS_SQL, 0, NULL, v, 4, err);
    if (rc != AC_OK)
        goto fail;
    users->read = v[0];
    users->inserted = v[1];
    users->rejected = v[3];
    users->unchanged = v[0] - v[1] - v[3];

    const char *rp[] = { s->skus_id, s->users_id };
    rc = db_exec_params(conn, USERS_DIRECTORY_SQL, 1, tp, err);
    if (rc == AC_OK)
        rc = db_exec_params(conn, REJECTS_SQL, 2, rp, err);
    skus->import_id = atoll(s->skus_id);
    users->import_id = atoll(s->users_id);
    if (rc == AC_OK)
        rc = record(conn, s->skus_id, skus_sha256, skus, err);
    if (rc == AC_OK)
        rc = record(conn, s->users_id, users_sha256, users, err);
    if (rc == AC_OK)
        rc = db_exec(conn, "COMMIT", err);
    if (rc != AC_OK)
        goto fail;
    free_snap(s);
    return AC_OK;
fail:
    PQclear(res);
    db_exec(conn, "ROLLBACK", NULL);
    free_snap(s);
    return rc;
}

void licences_abort(licsnap *s, const char *skus_sha256,
                    const char *users_sha256, const char *reason)
{
    char err[AC_ERR_MAX];
    db_exec(s->conn, "ROLLBACK", NULL);
    if (import_record_refused(s->conn, s->tenant, "licences-skus",
                              s->skus_name, NULL, skus_sha256, reason,
                              err) != AC_OK ||
        import_record_refused(s->conn, s->tenant, "licences-users",
                              s->users_name, NULL, users_sha256, reason,
                              err) != AC_OK)
        ac_error("import: cannot record the refusal: %s", err);
    free_snap(s);
}
