/* rates.c: see rates.h. */
#include "rates.h"

#include <csv.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "callstage.h"
#include "db.h"
#include "log.h"
#include "sha256.h"

/* Raw text kept for a rejected row, at most (as the other imports). */
#define RAW_MAX (64 * 1024)
/* Columns of a card's header, at most. */
#define MAX_COLUMNS 64
/* COPY data is sent in chunks of about this size. */
#define FLUSH_BYTES (256 * 1024)
/* Rejects shown in the log for a refused card. */
#define REJECTS_SHOWN 10
/* A value quoted in a reason is cut to this many bytes. */
#define QUOTE_MAX 40

/* ------------------------------------------------------------ checks */

int rates_check_plan(const char *plan)
{
    size_t n = plan ? strlen(plan) : 0;
    if (n < 1 || n > 64 || !isalnum((unsigned char)plan[0]))
        return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)plan[i];
        if (!(c < 0x80 && (isalnum(c) || c == '_' || c == '.' || c == '-')))
            return 0;
    }
    return 1;
}

int rates_check_valid_from(const char *t)
{
    if (t == NULL)
        return 0;
    if (strcmp(t, "-infinity") == 0)
        return 1;
    size_t n = strlen(t);
    if (n == 10) {
        /* A date: checked as its midnight. */
        char full[32];
        snprintf(full, sizeof full, "%sT00:00Z", t);
        return callstage_is_timestamp(full);
    }
    if (!callstage_is_timestamp(t))
        return 0;
    /* The offset: Z, or a sign after the time (the date's '-' come
     * before position 10). */
    for (size_t i = 16; i < n; i++)
        if (t[i] == 'Z' || t[i] == 'z' || t[i] == '+' || t[i] == '-')
            return 1;
    return 0;
}

const char *rates_prefix_problem(const char *t)
{
    if (*t == '+')
        t++;
    size_t n = strlen(t);
    if (n == 0)
        return "is empty";
    for (size_t i = 0; i < n; i++)
        if (t[i] < '0' || t[i] > '9')
            return "is not a prefix: digits only (E.164 without '+')";
    if (n > 15)
        return "is longer than 15 digits (E.164 numbers are at most 15)";
    if (t[0] == '0')
        return "starts with 0: no E.164 number does (was the country code "
               "dropped, or a leading zero kept?)";
    return NULL;
}

const char *rates_price_problem(const char *t)
{
    const char *p = t;
    int neg = 0;

    if (*p == '\0')
        return "is empty";
    if (*p == '-') {
        neg = 1;
        p++;
    }
    const char *int_start = p;
    while (*p >= '0' && *p <= '9')
        p++;
    size_t int_digits = (size_t)(p - int_start);
    size_t frac_sig = 0;
    if (*p == '.') {
        const char *f = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == f)
            int_digits = 0;                 /* "5." is not taken */
        for (const char *q = p; q > f; q--)
            if (q[-1] != '0') {
                frac_sig = (size_t)(q - f);
                break;
            }
    }
    if (*p != '\0' || int_digits == 0)
        return "is not a decimal number like 0.0250 (digits, '.' and at "
               "most 4 decimal places; no sign, exponent, currency symbol "
               "or thousands separator)";
    if (neg)
        return "is negative";
    while (int_digits > 1 && *int_start == '0') {
        int_start++;
        int_digits--;
    }
    if (int_digits > 8)
        return "is too large (at most 99999999.9999)";
    if (frac_sig > 4)
        return "has more than 4 decimal places: rates are exact to "
               "0.0001, so round it in the card";
    return NULL;
}

/* ------------------------------------------------------------ text */

/* Append s (len bytes) to l as valid UTF-8 without NUL: invalid bytes
 * become U+FFFD; at most max bytes of s are taken (then " [cut]"). */
static void utf8_clean(copy_line *l, const char *s, size_t len, size_t max)
{
    int cut = 0;
    if (len > max) {
        len = max;
        cut = 1;
    }
    const char *p = s, *end = s + len;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2
                 : (c & 0xf0) == 0xe0 ? 3 : 4;
        if (n <= (size_t)(end - p) && callstage_is_utf8(p, n)) {
            cl_bytes(l, p, n);
            p += n;
        } else {
            cl_bytes(l, "\xef\xbf\xbd", 3);
            p++;
        }
    }
    if (cut)
        cl_str(l, " [cut]");
}

static void trim(char **s)
{
    char *b = *s, *e = b + strlen(b);
    while (*b == ' ' || *b == '\t')
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *e = '\0';
    *s = b;
}

/* ------------------------------------------------------------ reader */

typedef struct {
    PGconn *conn;
    struct csv_parser p;
    /* the header */
    int in_header;
    int ncols, col_prefix, col_per, col_fee;
    char header_err[AC_ERR_MAX];
    /* fields of the current record */
    char *arena;
    size_t arena_len, arena_cap;
    size_t field_at[MAX_COLUMNS];
    int nfields;
    /* the current record's raw text and first line */
    copy_line rec;
    size_t rec_bytes;
    long long rec_line;
    int rows_ended;
    /* COPY into the stage */
    copy_line line, tmp;
    int copying;
    long long read;
    ac_status rc;
    char err[AC_ERR_MAX];
    int oom;
} reader;

static const char STAGE_DDL[] =
    "CREATE TEMP TABLE rates_stage (line_no bigint NOT NULL, prefix text,"
    " per_minute text, connection_fee text, reason text, category text,"
    " raw text) ON COMMIT DROP";

static const char STAGE_COPY[] =
    "COPY rates_stage (line_no, prefix, per_minute, connection_fee, reason,"
    " category, raw) FROM STDIN";

static void fail(reader *r, ac_status rc, const char *msg)
{
    if (r->rc == AC_OK) {
        r->rc = rc;
        snprintf(r->err, sizeof r->err, "%s", msg);
    }
}

static void flush(reader *r, int force)
{
    if (r->line.failed || r->tmp.failed || r->rec.failed)
        fail(r, AC_EOSERR, "out of memory");
    if (r->rc != AC_OK || r->line.n == 0 ||
        (!force && r->line.n < FLUSH_BYTES))
        return;
    char err[AC_ERR_MAX];
    ac_status rc = AC_OK;
    if (!r->copying) {
        rc = db_copy_begin(r->conn, STAGE_COPY, err);
        r->copying = rc == AC_OK;
    }
    if (rc == AC_OK)
        rc = db_copy_put(r->conn, r->line.b, r->line.n, err);
    if (rc != AC_OK)
        fail(r, rc, err);
    cl_reset(&r->line);
}

/* Append text as a cleaned COPY field (NULL: \N). */
static void field(reader *r, const char *text, size_t len, size_t max)
{
    if (text == NULL) {
        cl_null(&r->line);
        return;
    }
    cl_reset(&r->tmp);
    utf8_clean(&r->tmp, text, len, max);
    cl_char(&r->tmp, '\0');
    if (!r->tmp.failed)
        cl_field(&r->line, r->tmp.b);
}

/* The record's raw text without its final line break. */
static size_t raw_len(const reader *r)
{
    size_t n = r->rec.n;
    while (n > 0 && (r->rec.b[n - 1] == '\n' || r->rec.b[n - 1] == '\r'))
        n--;
    return n;
}

/* One staged row: a good one (reason NULL) or a rejected one. */
static void stage(reader *r, const char *prefix, const char *per,
                  const char *fee, const char *reason, const char *category)
{
    r->read++;
    cl_i64(&r->line, r->rec_line);
    cl_char(&r->line, '\t');
    field(r, prefix, prefix ? strlen(prefix) : 0, 64);
    cl_char(&r->line, '\t');
    field(r, per, per ? strlen(per) : 0, 64);
    cl_char(&r->line, '\t');
    field(r, fee, fee ? strlen(fee) : 0, 64);
    cl_char(&r->line, '\t');
    field(r, reason, reason ? strlen(reason) : 0, AC_ERR_MAX);
    cl_char(&r->line, '\t');
    field(r, category, category ? strlen(category) : 0, 64);
    cl_char(&r->line, '\t');
    field(r, r->rec.b ? r->rec.b : "", raw_len(r), RAW_MAX);
    cl_char(&r->line, '\n');
    flush(r, 0);
}

static void on_field(void *data, size_t len, void *arg)
{
    reader *r = arg;
    if (r->nfields < MAX_COLUMNS) {
        size_t need = r->arena_len + len + 1;
        if (need > r->arena_cap) {
            size_t cap = r->arena_cap ? r->arena_cap : 1024;
            while (cap < need)
                cap *= 2;
            char *b = realloc(r->arena, cap);
            if (b == NULL) {
                r->oom = 1;
                r->nfields++;
                return;
            }
            r->arena = b;
            r->arena_cap = cap;
        }
        r->field_at[r->nfields] = r->arena_len;
        if (len > 0)
            memcpy(r->arena + r->arena_len, data, len);
        r->arena[r->arena_len + len] = '\0';
        /* A NUL would cut the field short: make it fail the checks. */
        if (data != NULL && memchr(data, '\0', len) != NULL)
            r->arena[r->arena_len] = '\x01';
        r->arena_len += len + 1;
    }
    r->nfields++;
}

static char *field_text(reader *r, int i)
{
    char *s = r->arena + r->field_at[i];
    trim(&s);
    return s;
}

static void header(reader *r)
{
    r->col_prefix = r->col_per = r->col_fee = -1;
    if (r->nfields > MAX_COLUMNS) {
        snprintf(r->header_err, sizeof r->header_err, "the header has more "
                 "than %d columns", MAX_COLUMNS);
        return;
    }
    r->ncols = r->nfields;
    for (int i = 0; i < r->ncols; i++) {
        char *name = field_text(r, i);
        int *col = strcasecmp(name, "prefix") == 0 ? &r->col_prefix
                 : strcasecmp(name, "per_minute") == 0 ? &r->col_per
                 : strcasecmp(name, "connection_fee") == 0 ? &r->col_fee
                 : NULL;
        if (col != NULL && *col >= 0) {
            snprintf(r->header_err, sizeof r->header_err, "the header names "
                     "the column \"%s\" twice", name);
            return;
        }
        if (col != NULL)
            *col = i;
    }
    if (r->col_prefix < 0 || r->col_per < 0) {
        copy_line seen = { 0 };
        utf8_clean(&seen, r->rec.b ? r->rec.b : "", raw_len(r), 120);
        cl_char(&seen, '\0');
        snprintf(r->header_err, sizeof r->header_err, "the first line must "
                 "name the columns prefix and per_minute (and optionally "
                 "connection_fee), separated by commas; it is \"%s\"",
                 seen.failed ? "?" : seen.b);
        cl_free(&seen);
        return;
    }
    r->in_header = 0;
}

/* "per_minute '0.12345' has more than 4 decimal places" into why. */
static void reason_for(char *why, size_t n, const char *what,
                       const char *value, const char *problem)
{
    copy_line q = { 0 };
    utf8_clean(&q, value, strlen(value), QUOTE_MAX);
    cl_char(&q, '\0');
    snprintf(why, n, "%s '%s' %s", what, q.failed ? "?" : q.b, problem);
    cl_free(&q);
}

static void on_row(int term, void *arg)
{
    reader *r = arg;
    (void)term;

    r->rows_ended++;
    if (r->oom) {
        if (!r->in_header)
            stage(r, NULL, NULL, NULL, "out of memory while reading the row",
                  "memory");
        else
            snprintf(r->header_err, sizeof r->header_err, "out of memory");
    } else if (r->in_header) {
        header(r);
    } else {
        int empty = 1;
        for (int i = 0; i < r->nfields && i < MAX_COLUMNS; i++)
            if (*field_text(r, i) != '\0')
                empty = 0;
        char why[AC_ERR_MAX];
        if (empty) {
            /* a spreadsheet's empty row: passed over */
        } else if (r->nfields != r->ncols) {
            snprintf(why, sizeof why, "the row has %d fields, the header %d",
                     r->nfields, r->ncols);
            stage(r, NULL, NULL, NULL, why, "field count");
        } else {
            const char *prefix = field_text(r, r->col_prefix);
            const char *per = field_text(r, r->col_per);
            const char *fee = r->col_fee >= 0 ? field_text(r, r->col_fee)
                                              : "";
            const char *pp = rates_prefix_problem(prefix);
            const char *mp = rates_price_problem(per);
            const char *fp = *fee ? rates_price_problem(fee) : NULL;
            if (*prefix == '+')
                prefix++;
            if (pp != NULL) {
                reason_for(why, sizeof why, "prefix", prefix, pp);
                stage(r, NULL, NULL, NULL, why, "prefix");
            } else if (mp != NULL) {
                reason_for(why, sizeof why, "per_minute", per, mp);
                stage(r, prefix, NULL, NULL, why, "per_minute");
            } else if (fp != NULL) {
                reason_for(why, sizeof why, "connection_fee", fee, fp);
                stage(r, prefix, NULL, NULL, why, "connection_fee");
            } else {
                stage(r, prefix, per, *fee ? fee : "0", NULL, NULL);
            }
        }
    }
    r->nfields = 0;
    r->arena_len = 0;
    r->oom = 0;
}

static int parser_init(reader *r)
{
    return csv_init(&r->p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL);
}

static void parser_reset(reader *r)
{
    csv_free(&r->p);
    if (parser_init(r) != 0)
        r->oom = 1;
    r->nfields = 0;
    r->arena_len = 0;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* One physical line (with its line break, if any). */
static void feed_line(reader *r, const char *s, size_t n, long long line_no)
{
    if (r->rec.n == 0 && r->rec_bytes == 0) {
        if (blank(s, n))
            return;
        r->rec_line = line_no;
    }
    /* The raw text keeps at most RAW_MAX + 1 bytes (then it is cut). */
    if (r->rec.n <= RAW_MAX)
        cl_bytes(&r->rec, s, n);
    r->rec_bytes += n;
    r->rows_ended = 0;
    size_t used = csv_parse(&r->p, s, n, on_field, on_row, r);
    if (used != n) {
        if (r->in_header) {
            snprintf(r->header_err, sizeof r->header_err, "the header line "
                     "is not valid CSV: %s",
                     csv_strerror(csv_error(&r->p)));
        } else {
            stage(r, NULL, NULL, NULL, "malformed quoting (a quote inside "
                  "an unquoted field, or text after a closing quote)",
                  "quoting");
        }
        parser_reset(r);
        r->rows_ended = 1;
    }
    if (r->rows_ended > 0) {
        cl_reset(&r->rec);
        r->rec_bytes = 0;
    }
}

static void feed_end(reader *r)
{
    r->rows_ended = 0;
    if (csv_fini(&r->p, on_field, on_row, r) != 0) {
        if (r->in_header)
            snprintf(r->header_err, sizeof r->header_err, "the header line "
                     "has a quote that is never closed");
        else
            stage(r, NULL, NULL, NULL, "a quoted field is never closed "
                  "before the end of the file", "quoting");
    }
}

/* ------------------------------------------------------------ SQL */

static const char DUPLICATES_SQL[] =
    "UPDATE rates_stage s SET reason = 'prefix ' || s.prefix"
    " || ' is already on line ' || f.first_line"
    " || ' (a prefix appears once in a card)',"
    " category = 'duplicate prefix'"
    " FROM (SELECT prefix, min(line_no) AS first_line FROM rates_stage"
    " WHERE prefix IS NOT NULL GROUP BY prefix HAVING count(*) > 1) f"
    " WHERE s.prefix = f.prefix AND s.line_no > f.first_line"
    " AND s.reason IS NULL";

static const char COUNTS_SQL[] =
    "SELECT count(*), count(*) FILTER (WHERE reason IS NOT NULL),"
    " (SELECT string_agg(line_no::text, ', ' ORDER BY line_no) FROM"
    " (SELECT line_no FROM rates_stage WHERE reason IS NOT NULL"
    " ORDER BY line_no LIMIT 5) f) FROM rates_stage";

static const char KEEP_REJECTS_SQL[] =
    "INSERT INTO usage.import_rejects (import_id, line_no, raw, reason)"
    " SELECT $1::bigint, line_no, raw, reason FROM rates_stage"
    " WHERE reason IS NOT NULL ORDER BY line_no LIMIT 10000";

static const char NOT_KEPT_SQL[] =
    "SELECT jsonb_object_agg(category, n) FROM (SELECT category,"
    " count(*) AS n FROM (SELECT category FROM rates_stage"
    " WHERE reason IS NOT NULL ORDER BY line_no OFFSET 10000) x"
    " GROUP BY category) y";

static const char LATER_SQL[] =
    "SELECT min(valid_from), count(*) FROM ref.rates WHERE plan = $1"
    " AND currency = $2 AND valid_from > $3::timestamptz"
    " HAVING count(*) > 0";

static const char CLOSE_SQL[] =
    "WITH c AS (UPDATE ref.rates SET valid_to = $3::timestamptz"
    " WHERE plan = $1 AND currency = $2 AND valid_from < $3::timestamptz"
    " AND (valid_to IS NULL OR valid_to > $3::timestamptz) RETURNING 1)"
    " SELECT count(*) FROM c";

static const char REMOVE_SQL[] =
    "WITH d AS (DELETE FROM ref.rates r WHERE r.plan = $1"
    " AND r.currency = $2 AND r.valid_from = $3::timestamptz"
    " AND NOT EXISTS (SELECT 1 FROM rates_stage s"
    " WHERE s.prefix = r.prefix) RETURNING 1) SELECT count(*) FROM d";

static const char UPDATE_SQL[] =
    "WITH u AS (UPDATE ref.rates r SET"
    " per_minute = s.per_minute::numeric(12,4),"
    " connection_fee = s.connection_fee::numeric(12,4), valid_to = NULL"
    " FROM rates_stage s WHERE r.plan = $1 AND r.currency = $2"
    " AND r.valid_from = $3::timestamptz AND r.prefix = s.prefix"
    " AND (r.per_minute, r.connection_fee,"
    " coalesce(r.valid_to, 'infinity')) IS DISTINCT FROM"
    " (s.per_minute::numeric, s.connection_fee::numeric,"
    " 'infinity'::timestamptz) RETURNING 1) SELECT count(*) FROM u";

static const char INSERT_SQL[] =
    "WITH i AS (INSERT INTO ref.rates (plan, currency, prefix, per_minute,"
    " connection_fee, valid_from, valid_to)"
    " SELECT $1, $2, s.prefix, s.per_minute::numeric(12,4),"
    " s.connection_fee::numeric(12,4), $3::timestamptz, NULL"
    " FROM rates_stage s WHERE NOT EXISTS (SELECT 1 FROM ref.rates r"
    " WHERE r.plan = $1 AND r.currency = $2"
    " AND r.valid_from = $3::timestamptz AND r.prefix = s.prefix)"
    " ORDER BY s.line_no RETURNING 1) SELECT count(*) FROM i";

static ac_status count_of(PGconn *conn, const char *sql, int n,
                          const char *const *p, long long *out, char *err)
{
    PGresult *res;
    ac_status rc = db_query(conn, sql, n, p, &res, err);
    if (rc != AC_OK)
        return rc;
    *out = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return AC_OK;
}

/* Record the outcome in the import's row. */
static ac_status record(PGconn *conn, const char *id, const char *sha,
                        const rates_counts *c, const char *status,
                        const char *message, const char *not_kept,
                        char *err)
{
    char v[8][32];
    long long nums[] = { c->read, c->inserted, c->updated, c->unchanged,
                         c->skipped, c->rejected, c->closed };
    for (int i = 0; i < 7; i++)
        snprintf(v[i], sizeof v[i], "%lld", nums[i]);
    const char *p[] = { id, sha, v[0], v[1], v[2], v[3], v[4], v[5], v[6],
                        status, message, not_kept };
    return db_exec_params(conn, "UPDATE usage.imports SET sha256 = $2,"
                          " rows_read = $3, inserted = $4, updated = $5,"
                          " unchanged = $6, skipped = $7, rejected = $8,"
                          " closed = $9, status = $10, message = $11,"
                          " rejects_not_kept = $12::jsonb,"
                          " finished_at = now() WHERE import_id = $1", 12,
                          p, err);
}

/* A file refused before its transaction (it cannot be read). */
static void record_unread(PGconn *conn, const rates_card *card,
                          const char *cur, const char *file,
                          const char *reason)
{
    char err[AC_ERR_MAX];
    const char *p[] = { file, card->plan, cur, card->valid_from, reason };
    if (db_exec_params(conn, "INSERT INTO usage.imports (source, file_name,"
                       " rate_plan, rate_currency, rate_valid_from, status,"
                       " message, finished_at) VALUES ('rates', $1, $2, $3,"
                       " $4::timestamptz, 'refused', $5, now())", 5, p,
                       err) != AC_OK)
        ac_error("import rates: cannot record the refusal: %s", err);
}

/* The first rejects of a refused card, and where the others are. */
static void show_rejects(PGconn *conn, const char *file, const char *id,
                         long long rejected)
{
    PGresult *res;
    char err[AC_ERR_MAX], lim[16];
    snprintf(lim, sizeof lim, "%d", REJECTS_SHOWN);
    const char *p[] = { id, lim };
    if (db_query(conn, "SELECT line_no, reason FROM usage.import_rejects"
                 " WHERE import_id = $1 ORDER BY line_no LIMIT $2::int", 2,
                 p, &res, err) != AC_OK) {
        ac_error("import rates: cannot list the rejects: %s", err);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++)
        ac_warn("import rates %s line %s: %s", file, PQgetvalue(res, i, 0),
                PQgetvalue(res, i, 1));
    long long shown = PQntuples(res);
    PQclear(res);
    if (rejected > shown)
        ac_warn("import rates %s: %lld more rejected row(s): SELECT line_no,"
                " reason, raw FROM usage.import_rejects WHERE import_id = %s"
                " ORDER BY line_no%s", file, rejected - shown, id,
                rejected > RATES_REJECTS_KEPT ? " (the first 10,000 are "
                "kept; usage.imports.rejects_not_kept counts the others)"
                : "");
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* ------------------------------------------------------------ import */

ac_status rates_import(PGconn *conn, const rates_card *card,
                       const char *path, rates_counts *c, char *err)
{
    const char *file = base_name(path);
    char cur[4], id[32] = "", hex[65] = "", why[AC_ERR_MAX] = "";
    char *buf = NULL, *not_kept = NULL;
    size_t cap = 0;
    PGresult *res = NULL;
    FILE *f = NULL;
    reader r;
    ac_status rc;
    int began = 0;

    memset(c, 0, sizeof *c);
    memset(&r, 0, sizeof r);
    if (!rates_check_plan(card->plan) || card->currency == NULL ||
        strlen(card->currency) != 3 ||
        !rates_check_valid_from(card->valid_from))
        return ac_fail(err, AC_EUSAGE, "a plan name, a currency code and "
                       "a first instant are required");
    for (int i = 0; i < 3; i++) {
        unsigned char ch = (unsigned char)card->currency[i];
        if (ch >= 0x80 || !isalpha(ch))
            return ac_fail(err, AC_EUSAGE, "--currency '%s' is not a "
                           "3-letter ISO 4217 code", card->currency);
        cur[i] = (char)toupper(ch);
    }
    cur[3] = '\0';

    /* The file: readable, and not larger than a card can be. */
    f = fopen(path, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        rc = errno == ENOENT ? AC_ENOINPUT : AC_EIO;
        snprintf(why, sizeof why, "cannot open %s: %s", path,
                 strerror(errno));
        if (f != NULL)
            fclose(f);
        record_unread(conn, card, cur, file, why);
        c->refused = 1;
        return ac_fail(err, rc, "%s", why);
    }
    if (!S_ISREG(st.st_mode) || st.st_size > RATES_FILE_MAX) {
        snprintf(why, sizeof why, "%s is %s: refused unread", file,
                 S_ISREG(st.st_mode) ? "larger than 64 MiB"
                 : "not a regular file");
        fclose(f);
        record_unread(conn, card, cur, file, why);
        c->refused = 1;
        return ac_fail(err, AC_EDATA, "%s", why);
    }

    /* One transaction: the import's row, the stage, the card. */
    r.conn = conn;
    r.in_header = 1;
    if (parser_init(&r) != 0) {
        fclose(f);
        return ac_fail(err, AC_EOSERR, "out of memory");
    }
    rc = db_exec(conn, "BEGIN", err);
    if (rc != AC_OK)
        goto fail;
    began = 1;
    rc = db_exec(conn, "LOCK TABLE ref.rates IN SHARE ROW EXCLUSIVE MODE",
                 err);
    const char *ip[] = { file, card->plan, cur, card->valid_from };
    if (rc == AC_OK)
        rc = db_query(conn, "INSERT INTO usage.imports (source, file_name,"
                      " rate_plan, rate_currency, rate_valid_from, status)"
                      " VALUES ('rates', $1, $2, $3, $4::timestamptz, 'ok')"
                      " RETURNING import_id", 4, ip, &res, err);
    if (rc != AC_OK)
        goto fail;
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;
    c->import_id = atoll(id);
    rc = db_exec(conn, STAGE_DDL, err);
    if (rc != AC_OK)
        goto fail;

    /* Read: every physical line through libcsv, rows into the stage. */
    sha256_ctx sha;
    sha256_init(&sha);
    long long line_no = 0;
    ssize_t n;
    errno = 0;
    while ((n = getline(&buf, &cap, f)) > 0) {
        sha256_update(&sha, buf, (size_t)n);
        const char *s = buf;
        size_t len = (size_t)n;
        if (++line_no == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
            s += 3;                                 /* UTF-8 BOM */
            len -= 3;
        }
        if (line_no == 1 && len >= 2 &&
            (((unsigned char)s[0] == 0xff && (unsigned char)s[1] == 0xfe) ||
             ((unsigned char)s[0] == 0xfe && (unsigned char)s[1] == 0xff))) {
            snprintf(r.header_err, sizeof r.header_err, "the file is "
                     "UTF-16: save it as CSV UTF-8");
            break;
        }
        feed_line(&r, s, len, line_no);
        if (r.header_err[0] != '\0' || r.rc != AC_OK)
            break;
    }
    if (ferror(f)) {
        rc = ac_fail(err, AC_EIO, "%s: read error: %s", file,
                     strerror(errno));
        goto fail;
    }
    if (r.header_err[0] == '\0' && r.rc == AC_OK)
        feed_end(&r);
    sha256_final_hex(&sha, hex);
    flush(&r, 1);
    if (r.copying) {
        r.copying = 0;
        char msg[AC_ERR_MAX];
        ac_status crc = db_copy_end(conn, r.rc == AC_OK ? NULL
                                    : "import failed", msg);
        if (crc != AC_OK)
            fail(&r, crc, msg);
    }
    if (r.rc != AC_OK) {
        rc = ac_fail(err, r.rc, "%s", r.err);
        goto fail;
    }
    if (r.in_header && r.header_err[0] == '\0')
        snprintf(r.header_err, sizeof r.header_err, "the file is empty: "
                 "no header line");

    /* The checks: the header, the currency, the rows, the later cards. */
    if (r.header_err[0] != '\0') {
        snprintf(why, sizeof why, "%s", r.header_err);
        goto refuse;
    }
    rc = db_exec(conn, "ANALYZE rates_stage", err);
    if (rc == AC_OK)
        rc = db_exec(conn, DUPLICATES_SQL, err);
    if (rc == AC_OK)
        rc = db_query(conn, COUNTS_SQL, 0, NULL, &res, err);
    if (rc != AC_OK)
        goto fail;
    c->read = atoll(PQgetvalue(res, 0, 0));
    c->rejected = atoll(PQgetvalue(res, 0, 1));
    if (c->rejected > 0) {
        snprintf(why, sizeof why, "the card is refused whole: %lld of its "
                 "%lld row(s) rejected (line%s %s%s); nothing was loaded",
                 c->rejected, c->read, c->rejected > 1 ? "s" : "",
                 PQgetvalue(res, 0, 2), c->rejected > 5 ? ", ..." : "");
        c->skipped = c->read - c->rejected;
        PQclear(res);
        res = NULL;
        goto refuse;
    }
    PQclear(res);
    res = NULL;
    if (c->read == 0) {
        snprintf(why, sizeof why, "the card has no rows: a card replaces "
                 "the plan's rates, so an empty one is refused");
        goto refuse;
    }
    const char *cp[] = { cur };
    rc = db_query(conn, "SELECT 1 FROM ref.currencies WHERE code = $1", 1,
                  cp, &res, err);
    if (rc != AC_OK)
        goto fail;
    if (PQntuples(res) == 0) {
        snprintf(why, sizeof why, "currency %s is not in ref.currencies: "
                 "add it (with its minor unit) before loading its rates",
                 cur);
        c->skipped = c->read;
        PQclear(res);
        res = NULL;
        goto refuse;
    }
    PQclear(res);
    res = NULL;
    const char *kp[] = { card->plan, cur, card->valid_from };
    rc = db_query(conn, LATER_SQL, 3, kp, &res, err);
    if (rc != AC_OK)
        goto fail;
    if (PQntuples(res) > 0) {
        snprintf(why, sizeof why, "plan %s in %s already has %s row(s) "
                 "in force from %s, after --valid-from %s: cards are "
                 "loaded in the order of their dates (rates in force "
                 "earlier are not rewritten); give a --valid-from at or "
                 "after %s", card->plan, cur, PQgetvalue(res, 0, 1),
                 PQgetvalue(res, 0, 0), card->valid_from,
                 PQgetvalue(res, 0, 0));
        c->skipped = c->read;
        PQclear(res);
        res = NULL;
        goto refuse;
    }
    PQclear(res);
    res = NULL;

    /* The card: close the previous one at T, merge the rows from T.  The
     * planner needs ref.rates' statistics for the joins with the stage
     * (without them a 10,000-row card joins by nested loops: seconds
     * instead of a fraction); ANALYZE samples at most 30,000 rows. */
    rc = db_exec(conn, "ANALYZE ref.rates", err);
    if (rc == AC_OK)
        rc = count_of(conn, CLOSE_SQL, 3, kp, &c->closed, err);
    if (rc == AC_OK)
        rc = count_of(conn, REMOVE_SQL, 3, kp, &c->removed, err);
    if (rc == AC_OK)
        rc = count_of(conn, UPDATE_SQL, 3, kp, &c->updated, err);
    if (rc == AC_OK)
        rc = count_of(conn, INSERT_SQL, 3, kp, &c->inserted, err);
    if (rc != AC_OK)
        goto fail;
    c->unchanged = c->read - c->inserted - c->updated;
    int same = c->inserted == 0 && c->updated == 0 && c->removed == 0 &&
               c->closed == 0;
    if (same)
        snprintf(why, sizeof why, "unchanged: this card is already in "
                 "force from %s", card->valid_from);
    else
        snprintf(why, sizeof why, "loaded: %lld row(s) inserted, %lld "
                 "updated, %lld unchanged, %lld removed; %lld row(s) of the "
                 "previous card closed at %s", c->inserted, c->updated,
                 c->unchanged, c->removed, c->closed, card->valid_from);
    rc = record(conn, id, hex, c, "ok", why, NULL, err);
    if (rc == AC_OK)
        rc = db_exec(conn, "COMMIT", err);
    if (rc != AC_OK)
        goto fail;
    ac_info("import rates %s: plan %s, %s, from %s: %lld read; %s "
            "(import %s)", file, card->plan, cur, card->valid_from, c->read,
            why, id);
    goto out;

refuse:
    /* ref.rates is untouched: keep the import's row and its rejects. */
    c->refused = 1;
    if (c->rejected > 0) {
        const char *rp[] = { id };
        rc = db_exec_params(conn, KEEP_REJECTS_SQL, 1, rp, err);
        if (rc == AC_OK && c->rejected > RATES_REJECTS_KEPT) {
            rc = db_query(conn, NOT_KEPT_SQL, 0, NULL, &res, err);
            if (rc == AC_OK && !PQgetisnull(res, 0, 0))
                not_kept = strdup(PQgetvalue(res, 0, 0));
            PQclear(res);
            res = NULL;
        }
        if (rc != AC_OK)
            goto fail;
    }
    rc = record(conn, id, hex[0] ? hex : NULL, c, "refused", why, not_kept,
                err);
    if (rc == AC_OK)
        rc = db_exec(conn, "COMMIT", err);
    if (rc != AC_OK)
        goto fail;
    ac_error("import rates %s: plan %s, %s, from %s: refused: %s (import "
             "%s)", file, card->plan, cur, card->valid_from, why, id);
    if (c->rejected > 0)
        show_rejects(conn, file, id, c->rejected);
    rc = ac_fail(err, AC_EDATA, "%s: %s", file, why);
    goto out;

fail:
    PQclear(res);
    if (r.copying)
        db_copy_end(conn, "import failed", NULL);
    if (began && PQstatus(conn) == CONNECTION_OK)
        db_exec(conn, "ROLLBACK", NULL);
    c->import_id = 0;
out:
    csv_free(&r.p);
    free(r.arena);
    cl_free(&r.rec);
    cl_free(&r.line);
    cl_free(&r.tmp);
    free(buf);
    free(not_kept);
    fclose(f);
    return rc;
}
