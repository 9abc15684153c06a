/* callstage.c: see callstage.h. */
#include "callstage.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

/* COPY data is sent in chunks of about this size. */
#define FLUSH_BYTES (256 * 1024)
/* Raw text kept for a rejected row, at most. */
#define RAW_MAX (64 * 1024)
/* Distinct reasons counted past the kept rejects; more go to "other". */
#define OVER_KEYS 64
#define REASON_KEY_MAX 200
/* Users whose UPN and name were staged recently (a direct-mapped cache, so
 * that a million rows of the same few organizers stage each one once). */
#define USER_CACHE 16384
#define USER_ID_MAX 128

typedef struct {
    char id[USER_ID_MAX];
    uint64_t info;              /* hash of upn and display name */
} user_slot;

struct callstage {
    PGconn *conn;
    char tenant[256];
    char import_id[32];
    char source[32];
    char *file_name, *member;   /* for a refusal after a rollback */
    copy_line line;             /* the COPY data not yet sent */
    copy_line tmp;              /* one sanitised text */
    long long read, skipped;
    int copying;                /* a COPY into the stage is open */
    ac_status rc;               /* the first failure */
    char err[AC_ERR_MAX];
    user_slot *users;           /* USER_CACHE slots, or NULL */
    long long staged_rejects;   /* rows rejected here and staged */
    /* Rows rejected here past CALLSTAGE_REJECTS_KEPT: counted by reason
     * (reason_key()), not staged, so a hostile file costs no storage. */
    char *over_key[OVER_KEYS];
    long long over_count[OVER_KEYS];
    long long over_total;
};

/* ------------------------------------------------------------ checks */

int callstage_is_utf8(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    while (p < end) {
        unsigned c = *p;
        size_t n;
        uint32_t cp;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if ((size_t)(end - p) <= n)
            return 0;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* Overlong forms, surrogates and beyond U+10FFFF. */
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return 0;
        p += n + 1;
    }
    return 1;
}

static int digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

static int num(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

int callstage_is_timestamp(const char *t)
{
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
                                 30, 31 };
    size_t len = strlen(t);

    /* YYYY-MM-DD */
    if (len < 16 || !digits(t, 4) || t[4] != '-' || !digits(t + 5, 2) ||
        t[7] != '-' || !digits(t + 8, 2))
        return 0;
    int y = num(t, 4), mo = num(t + 5, 2), d = num(t + 8, 2);
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return 0;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return 0;
    /* 'T' or ' ', hh:mm */
    if ((t[10] != 'T' && t[10] != ' ') || !digits(t + 11, 2) ||
        t[13] != ':' || !digits(t + 14, 2))
        return 0;
    if (num(t + 11, 2) > 23 || num(t + 14, 2) > 59)
        return 0;
    const char *p = t + 16;
    if (*p == ':') {                            /* :ss[.fraction] */
        if (!digits(p + 1, 2) || num(p + 1, 2) > 59)
            return 0;
        p += 3;
        if (*p == '.') {
            int n = 0;
            for (p++; isdigit((unsigned char)*p); p++)
                n++;
            if (n < 1 || n > 9)
                return 0;
        }
    }
    if (*p == ' ')                              /* "... +00:00" */
        p++;
    if (*p == 'Z' || *p == 'z')
        return p[1] == '\0';
    if (*p == '+' || *p == '-') {
        if (!digits(p + 1, 2) || num(p + 1, 2) > 15)
            return 0;
        p += 3;
        if (*p == ':')
            p++;
        if (*p == '\0')
            return 1;
        return digits(p, 2) && num(p, 2) <= 59 && p[2] == '\0';
    }
    return *p == '\0';
}

int callstage_is_guid(const char *t)
{
    static const int groups[] = { 8, 4, 4, 4, 12 };
    const char *p = t;

    for (int g = 0; g < 5; g++) {
        for (int i = 0; i < groups[g]; i++, p++)
            if (!isxdigit((unsigned char)*p))
                return 0;
        if (g < 4 && *p++ != '-')
            return 0;
    }
    return *p == '\0';
}

int callstage_is_int32(const char *t)
{
    char *end;
    if (*t == '\0' || isspace((unsigned char)*t))
        return 0;
    errno = 0;
    long long v = strtoll(t, &end, 10);
    return errno == 0 && *end == '\0' && v >= INT32_MIN && v <= INT32_MAX;
}

int callstage_is_decimal(const char *t)
{
    const char *p = t;
    int n = 0;

    if (*p == '-' || *p == '+')
        p++;
    while (*p == '0' && isdigit((unsigned char)p[1]))
        p++;                                    /* leading zeros */
    for (; isdigit((unsigned char)*p); p++)
        n++;
    if (n < 1 || n > 12)
        return 0;
    if (*p == '.') {
        int f = 0;
        for (p++; isdigit((unsigned char)*p); p++)
            f++;
        if (f < 1 || f > 30)
            return 0;
    }
    return *p == '\0';
}

/* ------------------------------------------------------------ staging */

/* The staging table: the file's conf_out rows as text, or a row's reason
 * and raw text when it was rejected before the merge. */
static const char STAGE_DDL[] =
    "CREATE TEMP TABLE import_stage ("
    " line_no bigint NOT NULL, rec_off bigint, rec_len int,"
    " reason text, raw text,"
    " usage_id text, call_id text, conference_id text, organizer_id text,"
    " upn text, display_name text, destination text, start_time text,"
    " end_time text, duration text, charge text, connection_fee text,"
    " currency text, capability text, country text)";

static const char STAGE_COPY[] =
    "COPY import_stage (line_no, rec_off, rec_len, reason, raw, usage_id,"
    " call_id, conference_id, organizer_id, upn, display_name, destination,"
    " start_time, end_time, duration, charge, connection_fee, currency,"
    " capability, country) FROM STDIN";

static void fail(callstage *s, ac_status rc, const char *msg)
{
    if (s->rc == AC_OK) {
        s->rc = rc;
        snprintf(s->err, sizeof s->err, "%s", msg);
    }
}

static void flush(callstage *s, int force)
{
    if (s->line.failed)
        fail(s, AC_EOSERR, "out of memory");
    if (s->rc != AC_OK || (!force && s->line.n < FLUSH_BYTES) ||
        s->line.n == 0)
        return;
    char err[AC_ERR_MAX];
    ac_status rc = AC_OK;
    if (!s->copying) {
        rc = db_copy_begin(s->conn, STAGE_COPY, err);
        s->copying = rc == AC_OK;
    }
    if (rc == AC_OK)
        rc = db_copy_put(s->conn, s->line.b, s->line.n, err);
    if (rc != AC_OK)
        fail(s, rc, err);
    cl_reset(&s->line);
}

ac_status callstage_pause(callstage *s, char *err)
{
    flush(s, 1);
    if (s->rc == AC_OK && s->copying) {
        s->copying = 0;
        char msg[AC_ERR_MAX];
        ac_status rc = db_copy_end(s->conn, NULL, msg);
        if (rc != AC_OK)
            fail(s, rc, msg);
    }
    if (s->rc != AC_OK)
        return ac_fail(err, s->rc, "%s", s->err);
    return AC_OK;
}

PGconn *callstage_conn(const callstage *s)
{
    return s->conn;
}

/* Append text as a COPY field, made valid: invalid UTF-8 bytes and NULs
 * become U+FFFD, and at most RAW_MAX bytes are kept (with a mark). */
static void field_clean(callstage *s, const char *text, size_t len)
{
    copy_line *t = &s->tmp;
    const char *p = text, *end;
    int cut = 0;

    if (text == NULL) {
        cl_null(&s->line);
        return;
    }
    if (len > RAW_MAX) {
        len = RAW_MAX;
        cut = 1;
    }
    end = text + len;
    cl_reset(t);
    while (p < end) {
        /* The longest valid run, then one replaced byte. */
        const char *q = p;
        while (q < end) {
            size_t n = (unsigned char)*q < 0x80 ? 1
                     : ((unsigned char)*q & 0xe0) == 0xc0 ? 2
                     : ((unsigned char)*q & 0xf0) == 0xe0 ? 3 : 4;
            if (n > (size_t)(end - q) || !callstage_is_utf8(q, n))
                break;
            q += n;
        }
        cl_bytes(t, p, (size_t)(q - p));
        if (q < end) {
            cl_bytes(t, "\xef\xbf\xbd", 3);
            q++;
        }
        p = q;
    }
    if (cut)
        cl_str(t, " [cut]");
    cl_char(t, '\0');
    if (t->failed) {
        fail(s, AC_EOSERR, "out of memory");
        return;
    }
    cl_field(&s->line, t->b);
}

/* A reason without the values it quotes ('...'), so that rejects can be
 * counted by kind: "UsageId 'x' is not a GUID" -> "UsageId '...' is not
 * a GUID".  The same as REASON_KEY_SQL below. */
static void reason_key(const char *reason, char *out, size_t len)
{
    size_t j = 0;
    for (const char *p = reason; *p && j + 6 < len; p++) {
        const char *close = *p == '\'' ? strchr(p + 1, '\'') : NULL;
        if (close != NULL) {
            memcpy(out + j, "'...'", 5);
            j += 5;
            p = close;
        } else {
            out[j++] = *p;
        }
    }
    out[j] = '\0';
}

/* The same key in SQL, for rows the merge rejected. */
#define REASON_KEY_SQL(col) \
    "left(regexp_replace(" col ", '''[^'']*''', '''...''', 'g'), 193)"

/* Count a reject not kept, by its reason's key. */
static void count_over(callstage *s, const char *reason, long long n)
{
    char key[REASON_KEY_MAX];
    int i;

    reason_key(reason, key, sizeof key);
    s->over_total += n;
    for (i = 0; i < OVER_KEYS && s->over_key[i] != NULL; i++)
        if (strcmp(s->over_key[i], key) == 0)
            break;
    if (i == OVER_KEYS) {
        i = OVER_KEYS - 1;              /* the last slot takes the rest */
        if (strcmp(s->over_key[i], "other reasons") != 0) {
            free(s->over_key[i]);
            s->over_key[i] = strdup("other reasons");
        }
    } else if (s->over_key[i] == NULL) {
        s->over_key[i] = strdup(key);
    }
    if (s->over_key[i] == NULL)
        fail(s, AC_EOSERR, "out of memory");
    else
        s->over_count[i] += n;
}

/* A rejected row into the stage: line, offsets, reason and raw text;
 * past CALLSTAGE_REJECTS_KEPT rows only counted (count_over). */
static void stage_reject(callstage *s, long long line_no, const char *raw,
                         size_t raw_len, long long off, size_t len,
                         const char *reason)
{
    if (s->staged_rejects >= CALLSTAGE_REJECTS_KEPT) {
        count_over(s, reason, 1);
        return;
    }
    s->staged_rejects++;
    cl_i64(&s->line, line_no);
    cl_char(&s->line, '\t');
    if (off >= 0) {
        cl_i64(&s->line, off);
        cl_char(&s->line, '\t');
        cl_i64(&s->line, (int64_t)len);
    } else {
        cl_null(&s->line);
        cl_char(&s->line, '\t');
        cl_null(&s->line);
    }
    cl_char(&s->line, '\t');
    field_clean(s, reason, strlen(reason));
    cl_char(&s->line, '\t');
    field_clean(s, raw, raw ? raw_len : 0);
    for (int i = 0; i < 15; i++)
        cl_str(&s->line, "\t\\N");
    cl_char(&s->line, '\n');
    flush(s, 0);
}

void callstage_reject(callstage *s, long long line_no, const char *raw,
                      size_t raw_len, const char *reason)
{
    s->read++;
    stage_reject(s, line_no, raw, raw_len, -1, 0, reason);
}

long long callstage_rows(const callstage *s)
{
    return s->read;
}

static const char *const FIELD_NAMES[CF_COUNT] = {
    "UsageId", "Call ID", "Conference ID", "organizer object id", "UPN",
    "User Display Name", "Call Type", "Destination Number", "Start Time",
    "End Time", "Duration Seconds", "Charge", "Connection Fee", "Currency",
    "Capability", "External Country"
};

static int is_alpha_n(const char *t, size_t n)
{
    if (strlen(t) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalpha((unsigned char)t[i]))
            return 0;
    return 1;
}

/* Why f cannot be stored, into why (AC_ERR_MAX bytes); 0 when it can. */
static int row_problem(const char *const *f, char *why)
{
    for (int i = 0; i < CF_COUNT; i++) {
        if (f[i] != NULL && !callstage_is_utf8(f[i], strlen(f[i]))) {
            snprintf(why, AC_ERR_MAX, "%s is not valid UTF-8 text",
                     FIELD_NAMES[i]);
            return 1;
        }
    }
#define SHOW(i) (int)(strlen(f[i]) > 60 ? 60 : strlen(f[i])), f[i]
    if (f[CF_USAGE_ID] == NULL) {
        snprintf(why, AC_ERR_MAX, "no UsageId: the row cannot be kept "
                 "apart from others");
        return 1;
    }
    if (!callstage_is_guid(f[CF_USAGE_ID])) {
        snprintf(why, AC_ERR_MAX, "UsageId '%.*s' is not a GUID",
                 SHOW(CF_USAGE_ID));
        return 1;
    }
    if (f[CF_START] == NULL) {
        snprintf(why, AC_ERR_MAX, "no Start Time");
        return 1;
    }
    if (!callstage_is_timestamp(f[CF_START])) {
        snprintf(why, AC_ERR_MAX, "Start Time '%.*s' is not an ISO 8601 "
                 "date and time", SHOW(CF_START));
        return 1;
    }
    if (f[CF_END] != NULL && !callstage_is_timestamp(f[CF_END])) {
        snprintf(why, AC_ERR_MAX, "End Time '%.*s' is not an ISO 8601 "
                 "date and time", SHOW(CF_END));
        return 1;
    }
    if (f[CF_DURATION] != NULL && !callstage_is_int32(f[CF_DURATION])) {
        snprintf(why, AC_ERR_MAX, "Duration Seconds '%.*s' is not a whole "
                 "number of seconds", SHOW(CF_DURATION));
        return 1;
    }
    if (f[CF_CHARGE] != NULL && !callstage_is_decimal(f[CF_CHARGE])) {
        snprintf(why, AC_ERR_MAX, "Charge '%.*s' is not a decimal amount",
                 SHOW(CF_CHARGE));
        return 1;
    }
    if (f[CF_CONNECTION_FEE] != NULL &&
        !callstage_is_decimal(f[CF_CONNECTION_FEE])) {
        snprintf(why, AC_ERR_MAX, "Connection Fee '%.*s' is not a decimal "
                 "amount", SHOW(CF_CONNECTION_FEE));
        return 1;
    }
    if (f[CF_CURRENCY] != NULL && !is_alpha_n(f[CF_CURRENCY], 3)) {
        snprintf(why, AC_ERR_MAX, "Currency '%.*s' is not an ISO 4217 code",
                 SHOW(CF_CURRENCY));
        return 1;
    }
    if (f[CF_COUNTRY] != NULL && !is_alpha_n(f[CF_COUNTRY], 2)) {
        snprintf(why, AC_ERR_MAX, "External Country '%.*s' is not an ISO "
                 "3166 alpha-2 code", SHOW(CF_COUNTRY));
        return 1;
    }
#undef SHOW
    return 0;
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; s != NULL && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull;
}

/* 1 when this organizer's UPN and name must be staged: not the same as
 * the last ones staged for it. */
static int user_news(callstage *s, const char *id, const char *upn,
                     const char *name)
{
    if (s->users == NULL || strlen(id) >= USER_ID_MAX)
        return 1;
    uint64_t info = fnv(fnv(14695981039346656037ull, upn), name);
    user_slot *u = &s->users[fnv(14695981039346656037ull, id) % USER_CACHE];
    if (strcmp(u->id, id) == 0 && u->info == info)
        return 0;
    snprintf(u->id, sizeof u->id, "%s", id);
    u->info = info;
    return 1;
}

void callstage_row(callstage *s, long long line_no, const char *const *in,
                   const char *raw, size_t raw_len, long long off,
                   size_t len)
{
    const char *f[CF_COUNT];
    char why[AC_ERR_MAX];

    s->read++;
    for (int i = 0; i < CF_COUNT; i++)
        f[i] = in[i] != NULL && in[i][0] != '\0' ? in[i] : NULL;
    /* Only conference dial-outs are calls (docs/billing-rules.md 6). */
    if (f[CF_CALL_TYPE] == NULL) {
        stage_reject(s, line_no, raw, raw_len, off, len, "no Call Type");
        return;
    }
    if (strcmp(f[CF_CALL_TYPE], "conf_out") != 0) {
        s->skipped++;
        return;
    }
    if (row_problem(f, why)) {
        stage_reject(s, line_no, raw, raw_len, off, len, why);
        return;
    }
    if (f[CF_ORGANIZER_ID] == NULL ||
        !user_news(s, f[CF_ORGANIZER_ID], f[CF_UPN], f[CF_DISPLAY_NAME])) {
        f[CF_UPN] = NULL;
        f[CF_DISPLAY_NAME] = NULL;
    }

    copy_line *l = &s->line;
    cl_i64(l, line_no);
    cl_char(l, '\t');
    if (off >= 0) {
        cl_i64(l, off);
        cl_char(l, '\t');
        cl_i64(l, (int64_t)len);
    } else {
        cl_null(l);
        cl_char(l, '\t');
        cl_null(l);
    }
    cl_str(l, "\t\\N\t");               /* reason */
    /* raw: kept only where the source cannot give it back (JSON). */
    if (off < 0 && raw != NULL)
        field_clean(s, raw, raw_len);
    else
        cl_null(l);
    static const call_field order[] = {
        CF_USAGE_ID, CF_CALL_ID, CF_CONFERENCE_ID, CF_ORGANIZER_ID, CF_UPN,
        CF_DISPLAY_NAME, CF_DESTINATION, CF_START, CF_END, CF_DURATION,
        CF_CHARGE, CF_CONNECTION_FEE, CF_CURRENCY, CF_CAPABILITY, CF_COUNTRY
    };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        cl_char(l, '\t');
        cl_field(l, f[order[i]]);
    }
    cl_char(l, '\n');
    flush(s, 0);
}

/* ------------------------------------------------------------ begin */

ac_status import_record_refused(PGconn *conn, const char *tenant,
                                const char *source, const char *file_name,
                                const char *member, const char *sha256,
                                const char *reason, char *err)
{
    const char *p[] = { tenant, source, file_name, member, sha256, reason };
    ac_status rc = db_exec_params(conn,
        "INSERT INTO usage.imports (tenant_id, source, file_name, member,"
        " sha256, status, message, finished_at)"
        " VALUES ($1, $2, $3, $4, $5, 'refused', $6, now())", 6, p, err);
    if (rc == AC_OK)
        ac_warn("import %s %s%s%s: refused: %s", source, file_name,
                member ? ":" : "", member ? member : "", reason);
    return rc;
}

ac_status callstage_begin(PGconn *conn, const char *tenant,
                          const char *source, const char *file_name,
                          const char *member, callstage **out, char *err)
{
    PGresult *res = NULL;
    ac_status rc;

    *out = NULL;
    callstage *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    s->conn = conn;
    snprintf(s->tenant, sizeof s->tenant, "%s", tenant);
    snprintf(s->source, sizeof s->source, "%s", source);
    s->users = calloc(USER_CACHE, sizeof *s->users);
    s->file_name = strdup(file_name);
    s->member = member ? strdup(member) : NULL;
    if (s->file_name == NULL || (member != NULL && s->member == NULL)) {
        free(s->users);
        free(s->file_name);
        free(s->member);
        free(s);
        return ac_fail(err, AC_EOSERR, "out of memory");
    }

    rc = db_query(conn, "SELECT to_regclass('pg_temp.import_stage') IS NULL",
                  0, NULL, &res, err);
    if (rc != AC_OK)
        goto fail;
    int missing = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    res = NULL;
    /* The stage lives in the session's temporary buffers: give them room
     * before the first temporary table is touched (server memory, per
     * importing session; the default 8 MB sends a large file's stage
     * through the kernel page by page).  Outside the transaction: the
     * server refuses the change once temporary tables were used, which
     * only costs speed. */
    if (missing)
        db_exec(conn, "SET temp_buffers = '256MB'", NULL);
    rc = db_exec(conn, "BEGIN", err);
    if (rc != AC_OK)
        goto fail;
    rc = import_require_tenant(conn, tenant, err);
    if (rc != AC_OK)
        goto fail;
    const char *ip[] = { tenant, source, file_name, member };
    rc = db_query(conn, "INSERT INTO usage.imports (tenant_id, source,"
                  " file_name, member, status) VALUES ($1, $2, $3, $4,"
                  " 'ok') RETURNING import_id", 4, ip, &res, err);
    if (rc != AC_OK)
        goto fail;
    snprintf(s->import_id, sizeof s->import_id, "%s",
             PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;
    rc = db_exec(conn, missing ? STAGE_DDL : "TRUNCATE import_stage", err);
    if (rc != AC_OK)
        goto fail;
    *out = s;
    return AC_OK;
fail:
    db_exec(conn, "ROLLBACK", NULL);
    free(s->users);
    free(s->file_name);
    free(s->member);
    free(s);
    return rc;
}

/* ------------------------------------------------------------ merge */

/* The typed values of the staged rows, in usage.dialout_calls' order:
 * PostgreSQL does every conversion (numeric money stays exact; the sum of
 * charge and connection fee is rounded half away from zero to the
 * column's 4 decimals). */
#define TYPED_COLUMNS \
    "usage_id::uuid, $1::text, call_id, conference_id, organizer_id," \
    " destination, start_time::timestamptz, duration::int," \
    " CASE WHEN charge IS NULL AND connection_fee IS NULL THEN NULL" \
    " ELSE (coalesce(charge::numeric, 0)" \
    " + coalesce(connection_fee::numeric, 0))::numeric(16,4) END," \
    " upper(currency)::char(3), capability, upper(country)::char(2)," \
    " end_time::timestamptz"

#define TARGET_COLUMNS \
    "usage_id, tenant_id, call_id, conference_id, organizer_id," \
    " destination_number, start_time, duration_seconds, provider_charge," \
    " provider_currency, provider_capability, destination_country, end_time"

/* For a row of another tenant the "update" writes back the old values
 * (so RETURNING shows it); for our own it writes the new ones. */
#define KEEP_OR_NEW(c) \
    #c " = CASE WHEN d.tenant_id = EXCLUDED.tenant_id THEN EXCLUDED." #c \
    " ELSE d." #c " END"

#define CONTENT(t) \
    "(" t ".call_id, " t ".conference_id, " t ".organizer_id, " \
    t ".destination_number, " t ".start_time, " t ".duration_seconds, " \
    t ".provider_charge, " t ".provider_currency, " \
    t ".provider_capability, " t ".destination_country, " t ".end_time)"

#define MERGE_TAIL \
    " ON CONFLICT (usage_id) DO UPDATE SET " \
    KEEP_OR_NEW(call_id) ", " KEEP_OR_NEW(conference_id) ", " \
    KEEP_OR_NEW(organizer_id) ", " KEEP_OR_NEW(destination_number) ", " \
    KEEP_OR_NEW(start_time) ", " KEEP_OR_NEW(duration_seconds) ", " \
    KEEP_OR_NEW(provider_charge) ", " KEEP_OR_NEW(provider_currency) ", " \
    KEEP_OR_NEW(provider_capability) ", " \
    KEEP_OR_NEW(destination_country) ", " KEEP_OR_NEW(end_time) \
    " WHERE d.tenant_id <> EXCLUDED.tenant_id OR " CONTENT("d") \
    " IS DISTINCT FROM " CONTENT("EXCLUDED") \
    " RETURNING d.tenant_id = $1 AS ours, d.xmax = 0 AS fresh)" \
    " SELECT count(*) FILTER (WHERE ours AND fresh)," \
    " count(*) FILTER (WHERE ours AND NOT fresh)," \
    " count(*) FILTER (WHERE NOT ours) FROM up"

/* Every row of the range, in file order. */
static const char MERGE_SQL[] =
    "WITH up AS (INSERT INTO usage.dialout_calls AS d (" TARGET_COLUMNS ")"
    " SELECT " TYPED_COLUMNS " FROM import_stage"
    " WHERE reason IS NULL AND line_no BETWEEN $2 AND $3"
    MERGE_TAIL;

/* The last row of each UsageId of the range (a UsageId twice in a file). */
static const char MERGE_LAST_SQL[] =
    "WITH up AS (INSERT INTO usage.dialout_calls AS d (" TARGET_COLUMNS ")"
    " SELECT " TYPED_COLUMNS " FROM (SELECT DISTINCT ON (usage_id) *"
    " FROM import_stage WHERE reason IS NULL AND line_no BETWEEN $2 AND $3"
    " ORDER BY usage_id, line_no DESC) last"
    MERGE_TAIL;

/* Earlier rows of a UsageId whose last row differs: rejected. */
static const char SUPERSEDED_SQL[] =
    "UPDATE import_stage e SET reason = 'superseded by line ' || l.line_no"
    " || ' of the same file (same UsageId, different content)'"
    " FROM (SELECT DISTINCT ON (usage_id) * FROM import_stage"
    " WHERE reason IS NULL AND line_no BETWEEN $1 AND $2"
    " ORDER BY usage_id, line_no DESC) l"
    " WHERE e.usage_id = l.usage_id AND e.line_no < l.line_no"
    " AND e.reason IS NULL AND e.line_no BETWEEN $1 AND $2"
    " AND (e.call_id, e.conference_id, e.organizer_id, e.destination,"
    " e.start_time, e.end_time, e.duration, e.charge, e.connection_fee,"
    " e.currency, e.capability, e.country) IS DISTINCT FROM"
    " (l.call_id, l.conference_id, l.organizer_id, l.destination,"
    " l.start_time, l.end_time, l.duration, l.charge, l.connection_fee,"
    " l.currency, l.capability, l.country)";

/* Rows whose UsageId belongs to another tenant: rejected. */
static const char FOREIGN_SQL[] =
    "UPDATE import_stage s SET reason = 'UsageId ' || s.usage_id"
    " || ' already belongs to tenant ' || d.tenant_id"
    " FROM usage.dialout_calls d WHERE s.reason IS NULL"
    " AND s.line_no BETWEEN $2 AND $3 AND d.usage_id = s.usage_id::uuid"
    " AND d.tenant_id <> $1";

typedef struct {
    long long inserted, updated;
} merge_counts;

/* Run sql in a savepoint; on failure roll back to it and copy the
 * SQLSTATE into state (6 bytes).  *res receives the result on success. */
static ac_status in_savepoint(PGconn *conn, const char *sql, int n,
                              const char *const *p, PGresult **res,
                              char state[6], char *err)
{
    ac_status rc = db_exec(conn, "SAVEPOINT import_merge", err);
    if (rc != AC_OK)
        return rc;
    state[0] = '\0';
    PGresult *r = PQexecParams(conn, sql, n, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        *res = r;
        return db_exec(conn, "RELEASE SAVEPOINT import_merge", err);
    }
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, 6, "%s", code ? code : "");
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    ac_fail(err, db_status_of(conn, r), "%s",
            msg ? msg : PQerrorMessage(conn));
    rc = db_status_of(conn, r);
    PQclear(r);
    *res = NULL;
    if (PQstatus(conn) != CONNECTION_OK)
        return AC_EUNAVAIL;
    ac_status rb = db_exec(conn, "ROLLBACK TO SAVEPOINT import_merge; "
                           "RELEASE SAVEPOINT import_merge", NULL);
    return rb != AC_OK ? AC_EUNAVAIL : rc;
}

/* Merge the staged rows with line_no in [lo, hi]; a row the server
 * refuses is found by halving the range, and marked rejected with the
 * server's reason. */
static ac_status merge_range(callstage *s, long long lo, long long hi,
                             merge_counts *mc, char *err)
{
    char los[32], his[32], state[6], msg[AC_ERR_MAX];
    PGresult *res = NULL;
    ac_status rc;

    snprintf(los, sizeof los, "%lld", lo);
    snprintf(his, sizeof his, "%lld", hi);
    const char *p[] = { s->tenant, los, his };

    rc = in_savepoint(s->conn, MERGE_SQL, 3, p, &res, state, msg);
    if (rc != AC_OK && strcmp(state, "21000") == 0) {
        /* A UsageId twice in the range: the last row wins. */
        const char *q[] = { los, his };
        rc = in_savepoint(s->conn, SUPERSEDED_SQL, 2, q, &res, state, msg);
        PQclear(res);
        res = NULL;
        if (rc == AC_OK)
            rc = in_savepoint(s->conn, MERGE_LAST_SQL, 3, p, &res, state,
                              msg);
    }
    if (rc == AC_OK) {
        mc->inserted += atoll(PQgetvalue(res, 0, 0));
        mc->updated += atoll(PQgetvalue(res, 0, 1));
        long long foreign = atoll(PQgetvalue(res, 0, 2));
        PQclear(res);
        if (foreign > 0)
            rc = db_exec_params(s->conn, FOREIGN_SQL, 3, p, err);
        return rc;
    }
    /* Only data the server refused is worth halving for. */
    if (state[0] == '\0' ||
        (strncmp(state, "22", 2) != 0 && strncmp(state, "23", 2) != 0)) {
        return ac_fail(err, rc, "%s", msg);
    }
    PGresult *rows;
    rc = db_query(s->conn, "SELECT min(line_no), max(line_no), count(*)"
                  " FROM import_stage WHERE reason IS NULL"
                  " AND line_no BETWEEN $1 AND $2", 2, p + 1, &rows, err);
    if (rc != AC_OK)
        return rc;
    long long n = atoll(PQgetvalue(rows, 0, 2));
    long long first = atoll(PQgetvalue(rows, 0, 0));
    long long last = atoll(PQgetvalue(rows, 0, 1));
    PQclear(rows);
    if (n == 0)
        return AC_OK;
    if (first == last) {
        char reason[AC_ERR_MAX + 64], ls[32];
        snprintf(reason, sizeof reason, "the database refused the row: %s",
                 msg);
        snprintf(ls, sizeof ls, "%lld", first);
        const char *u[] = { reason, ls };
        return db_exec_params(s->conn, "UPDATE import_stage SET reason = $1"
                              " WHERE line_no = $2 AND reason IS NULL", 2,
                              u, err);
    }
    long long mid = first + (last - first) / 2;
    rc = merge_range(s, first, mid, mc, err);
    if (rc == AC_OK)
        rc = merge_range(s, mid + 1, last, mc, err);
    return rc;
}

/* Raw text for rows rejected by the merge, read back from the source. */
static ac_status fill_raw(callstage *s, callstage_raw_fn fn, void *ctx,
                          char *err)
{
    PGresult *res;
    ac_status rc = db_query(s->conn, "SELECT line_no, rec_off, rec_len"
                            " FROM import_stage WHERE reason IS NOT NULL"
                            " AND raw IS NULL AND rec_off IS NOT NULL"
                            " ORDER BY rec_off", 0, NULL, &res, err);
    if (rc != AC_OK)
        return rc;
    for (int i = 0; i < PQntuples(res) && rc == AC_OK; i++) {
        long long off = atoll(PQgetvalue(res, i, 1));
        size_t len = (size_t)atoll(PQgetvalue(res, i, 2));
        if (len > RAW_MAX)
            len = RAW_MAX;
        char *buf = malloc(len + 1);
        if (buf == NULL) {
            rc = ac_fail(err, AC_EOSERR, "out of memory");
            break;
        }
        if (fn(ctx, off, len, buf) != 0) {
            free(buf);
            continue;               /* the reason stays; raw unknown */
        }
        cl_reset(&s->line);
        field_clean(s, buf, len);
        free(buf);
        cl_char(&s->line, '\0');
        /* field_clean escaped it for COPY: undo for a parameter. */
        char *text = db_copy_unescape(s->line.b);
        const char *p[] = { text, PQgetvalue(res, i, 0) };
        rc = db_exec_params(s->conn, "UPDATE import_stage SET raw = $1"
                            " WHERE line_no = $2", 2, p, err);
    }
    cl_reset(&s->line);
    PQclear(res);
    return rc;
}

static void free_stage(callstage *s)
{
    for (int i = 0; i < OVER_KEYS; i++)
        free(s->over_key[i]);
    cl_free(&s->line);
    cl_free(&s->tmp);
    free(s->users);
    free(s->file_name);
    free(s->member);
    free(s);
}

ac_status callstage_finish(callstage *s, const char *sha256,
                           callstage_raw_fn raw_fn, void *raw_ctx,
                           import_counts *counts, char *err)
{
    PGconn *conn = s->conn;
    merge_counts mc = { 0, 0 };
    PGresult *res = NULL;
    ac_status rc;

    memset(counts, 0, sizeof *counts);
    rc = callstage_pause(s, err);
    if (rc != AC_OK) {
        if (s->copying)
            db_copy_end(conn, "import failed", NULL);
        goto fail;
    }
    rc = db_query(conn, "SELECT min(line_no), max(line_no) FROM import_stage"
                  " WHERE reason IS NULL", 0, NULL, &res, err);
    if (rc != AC_OK)
        goto fail;
    int any = !PQgetisnull(res, 0, 0);
    long long lo = any ? atoll(PQgetvalue(res, 0, 0)) : 0;
    long long hi = any ? atoll(PQgetvalue(res, 0, 1)) : 0;
    PQclear(res);
    res = NULL;
    if (any)
        rc = merge_range(s, lo, hi, &mc, err);
    /* The organizers' UPN and display name (the last one of the file). */
    const char *tp[] = { s->tenant };
    if (rc == AC_OK)
        rc = db_exec_params(conn,
            "INSERT INTO usage.users AS u (tenant_id, user_id, upn,"
            " display_name) SELECT DISTINCT ON (organizer_id) $1,"
            " organizer_id, upn, display_name FROM import_stage"
            " WHERE reason IS NULL AND organizer_id IS NOT NULL"
            " AND (upn IS NOT NULL OR display_name IS NOT NULL)"
            " ORDER BY organizer_id, line_no DESC"
            " ON CONFLICT (tenant_id, user_id) DO UPDATE SET"
            " upn = coalesce(EXCLUDED.upn, u.upn),"
            " display_name = coalesce(EXCLUDED.display_name, u.display_name)"
            " WHERE (u.upn, u.display_name) IS DISTINCT FROM"
            " (coalesce(EXCLUDED.upn, u.upn),"
            " coalesce(EXCLUDED.display_name, u.display_name))",
            1, tp, err);
    if (rc == AC_OK && raw_fn != NULL)
        rc = fill_raw(s, raw_fn, raw_ctx, err);
    /* The first CALLSTAGE_REJECTS_KEPT rejected rows (by line) are kept
     * with their text; the others (the merge's beyond them, and those
     * counted while reading) are counted by reason (docs/billing-rules.md 6). */
    char kept_s[32];
    snprintf(kept_s, sizeof kept_s, "%d", CALLSTAGE_REJECTS_KEPT);
    const char *ip[] = { s->import_id, kept_s };
    if (rc == AC_OK)
        rc = db_query(conn, "WITH r AS (INSERT INTO usage.import_rejects"
                      " (import_id, line_no, raw, reason) SELECT $1, line_no,"
                      " raw, reason FROM import_stage WHERE reason IS NOT NULL"
                      " ORDER BY line_no LIMIT $2 RETURNING 1)"
                      " SELECT count(*) FROM r", 2, ip, &res, err);
    if (rc != AC_OK)
        goto fail;
    long long kept = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;
    rc = db_query(conn, "SELECT " REASON_KEY_SQL("reason") ", count(*)"
                  " FROM (SELECT reason FROM import_stage WHERE reason IS"
                  " NOT NULL ORDER BY line_no OFFSET $1) o GROUP BY 1",
                  1, ip + 1, &res, err);
    if (rc != AC_OK)
        goto fail;
    for (int i = 0; i < PQntuples(res); i++)
        count_over(s, PQgetvalue(res, i, 0), atoll(PQgetvalue(res, i, 1)));
    PQclear(res);
    res = NULL;
    if (s->rc != AC_OK) {
        rc = ac_fail(err, s->rc, "%s", s->err);
        goto fail;
    }
    counts->import_id = atoll(s->import_id);
    counts->read = s->read;
    counts->skipped = s->skipped;
    counts->rejected = kept + s->over_total;
    counts->rejects_not_kept = s->over_total;
    if (s->over_total > 0) {
        /* {"reason": count, ...} built by PostgreSQL from two arrays. */
        copy_line k = { 0 }, v = { 0 };
        cl_str(&k, "{");
        cl_str(&v, "{");
        for (int i = 0; i < OVER_KEYS && s->over_key[i] != NULL; i++) {
            char num[32];
            if (i > 0) {
                cl_char(&k, ',');
                cl_char(&v, ',');
            }
            cl_char(&k, '"');
            for (const char *p = s->over_key[i]; *p; p++) {
                if (*p == '"' || *p == '\\')
                    cl_char(&k, '\\');
                cl_char(&k, *p);
            }
            cl_char(&k, '"');
            snprintf(num, sizeof num, "%lld", s->over_count[i]);
            cl_str(&v, num);
        }
        cl_str(&k, "}");
        cl_str(&v, "}");
        cl_char(&k, '\0');
        cl_char(&v, '\0');
        const char *jp[] = { s->import_id, k.b, v.b };
        rc = k.failed || v.failed
                 ? ac_fail(err, AC_EOSERR, "out of memory")
                 : db_exec_params(conn, "UPDATE usage.imports SET"
                                  " rejects_not_kept = (SELECT"
                                  " jsonb_object_agg(r, n) FROM unnest("
                                  "$2::text[], $3::bigint[]) AS u(r, n))"
                                  " WHERE import_id = $1", 3, jp, err);
        cl_free(&k);
        cl_free(&v);
        if (rc != AC_OK)
            goto fail;
    }
    counts->inserted = mc.inserted;
    counts->updated = mc.updated;
    counts->unchanged = counts->read - counts->skipped - counts->rejected -
                        counts->inserted - counts->updated;
    char v[7][32];
    long long nums[] = { counts->read, counts->inserted, counts->updated,
                         counts->unchanged, counts->skipped,
                         counts->rejected };
    for (int i = 0; i < 6; i++)
        snprintf(v[i], sizeof v[i], "%lld", nums[i]);
    const char *up[] = { s->import_id, sha256, v[0], v[1], v[2], v[3], v[4],
                         v[5] };
    rc = db_exec_params(conn, "UPDATE usage.imports SET sha256 = $2,"
                        " rows_read = $3, inserted = $4, updated = $5,"
                        " unchanged = $6, skipped = $7, rejected = $8,"
                        " finished_at = now() WHERE import_id = $1", 8, up,
                        err);
    if (rc == AC_OK)
        rc = db_exec(conn, "TRUNCATE import_stage", err);
    if (rc == AC_OK)
        rc = db_exec(conn, "COMMIT", err);
    if (rc != AC_OK)
        goto fail;
    free_stage(s);
    return AC_OK;
fail:
    PQclear(res);
    if (PQstatus(conn) == CONNECTION_OK)
        db_exec(conn, "ROLLBACK", NULL);
    free_stage(s);
    return rc;
}

void callstage_abort(callstage *s, const char *sha256, const char *reason)
{
    PGconn *conn = s->conn;
    char err[AC_ERR_MAX];

    if (s->copying)
        db_copy_end(conn, "import abandoned", NULL);
    db_exec(conn, "ROLLBACK", NULL);
    if (PQstatus(conn) == CONNECTION_OK &&
        import_record_refused(conn, s->tenant, s->source, s->file_name,
                              s->member, sha256, reason, err) != AC_OK)
        ac_error("import: cannot record the refusal: %s", err);
    free_stage(s);
}

ac_status import_require_tenant(PGconn *conn, const char *tenant, char *err)
{
    const char *p[] = { tenant };
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT 1 FROM usage.tenants WHERE tenant_id = $1", 1, p, &res,
        err);
    if (rc != AC_OK)
        return rc;
    if (PQntuples(res) != 1)
        rc = ac_fail(err, AC_EDATA, "tenant %s is not in usage.tenants: "
                     "add it before importing its data", tenant);
    PQclear(res);
    return rc;
}
