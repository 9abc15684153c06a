/* pstn.c: see pstn.h. */
#include "pstn.h"

#include <csv.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zip.h>

#include "db.h"
#include "env.h"
#include "log.h"
#include "sha256.h"

#define CHUNK (1024 * 1024)
/* A physical line longer than this is rejected unread. */
#define LINE_MAX_BYTES (1024 * 1024)
/* A record (quoted fields with line breaks) spans at most this much. */
#define REC_MAX_LINES 50
#define REC_MAX_BYTES (64 * 1024)
#define MAX_COLUMNS 128
/* Files at least this large get a progress line on a terminal. */
#define PROGRESS_BYTES (8 * 1024 * 1024)

/* ------------------------------------------------------------ sources */

/* Limits on a zip member (issue 20: a zip bomb is refused whole), from
 * ACBILL_IMPORT_MAX_UNZIPPED_MB and ACBILL_IMPORT_MAX_RATIO (pstn.h). */
static long long max_unzipped = (long long)PSTN_MAX_UNZIPPED_MB << 20;
static long long max_ratio = PSTN_MAX_RATIO;

/* A plain file or one member of a zip, read from the start. */
typedef struct {
    FILE *f;
    zip_t *za;
    zip_file_t *zf;
    zip_uint64_t index;
    long long size;             /* -1 when unknown */
    long long pos;
    long long limit;            /* a zip member: bytes it may unzip to */
    int over;                   /* the member went past limit */
} source;

static void src_close(source *s)
{
    if (s->zf != NULL)
        zip_fclose(s->zf);
    if (s->f != NULL)
        fclose(s->f);
    s->zf = NULL;
    s->f = NULL;
    s->pos = 0;
}

/* The limit of s in words, for messages (a static buffer). */
static const char *limit_text(const source *s)
{
    static _Thread_local char text[160];
    if (s->limit == max_unzipped)
        snprintf(text, sizeof text, "ACBILL_IMPORT_MAX_UNZIPPED_MB=%lld MiB",
                 max_unzipped >> 20);
    else
        snprintf(text, sizeof text, "%lld bytes (ACBILL_IMPORT_MAX_RATIO=%lld "
                 "times its compressed size)", s->limit, max_ratio);
    return text;
}

/* Open path (za NULL) or member index of za, from its start. */
static ac_status src_open(source *s, const char *path, zip_t *za,
                          zip_uint64_t index, char *err)
{
    memset(s, 0, sizeof *s);
    s->size = -1;
    s->za = za;
    s->index = index;
    if (za == NULL) {
        s->f = fopen(path, "rb");
        if (s->f == NULL)
            return ac_fail(err, errno == ENOENT ? AC_ENOINPUT : AC_EIO,
                           "cannot open %s: %s", path, strerror(errno));
        if (fseeko(s->f, 0, SEEK_END) == 0) {
            s->size = ftello(s->f);
            rewind(s->f);
        }
        return AC_OK;
    }
    zip_stat_t st;
    if (zip_stat_index(za, index, 0, &st) == 0 && (st.valid & ZIP_STAT_SIZE))
        s->size = (long long)st.size;
    /* The member may unzip to at most max_unzipped bytes and max_ratio
     * times its compressed size: what its directory entry declares is
     * checked first, and what it really unzips to as it is read (a
     * directory may lie). */
    s->limit = max_unzipped;
    if (max_ratio > 0 && (st.valid & ZIP_STAT_COMP_SIZE)) {
        long long by_ratio = (long long)st.comp_size > LLONG_MAX / max_ratio
                                 ? LLONG_MAX
                                 : (long long)st.comp_size * max_ratio;
        if (by_ratio < 4096)
            by_ratio = 4096;            /* a tiny member may be all header */
        if (s->limit == 0 || by_ratio < s->limit)
            s->limit = by_ratio;
    }
    if (s->limit > 0 && s->size > s->limit)
        return ac_fail(err, AC_EDATA, "refused: the member unzips to %lld "
                       "bytes, more than %s (a zip bomb?); nothing of it "
                       "was loaded", s->size, limit_text(s));
    s->zf = zip_fopen_index(za, index, 0);
    if (s->zf == NULL)
        return ac_fail(err, AC_EIO, "%s: cannot open member %llu: %s", path,
                       (unsigned long long)index, zip_strerror(za));
    return AC_OK;
}

/* Up to n bytes; 0 at the end, -1 on error (message in err). */
static long src_read(source *s, char *buf, size_t n, char *err)
{
    if (s->f != NULL) {
        size_t got = fread(buf, 1, n, s->f);
        if (got == 0 && ferror(s->f)) {
            ac_fail(err, AC_EIO, "read error: %s", strerror(errno));
            return -1;
        }
        s->pos += (long long)got;
        return (long)got;
    }
    zip_int64_t got = zip_fread(s->zf, buf, n);
    if (got < 0) {
        ac_fail(err, AC_EIO, "cannot decompress: %s",
                zip_file_strerror(s->zf));
        return -1;
    }
    s->pos += got;
    if (s->limit > 0 && s->pos > s->limit) {
        s->over = 1;
        ac_fail(err, AC_EDATA, "refused: the member unzips to more than %s "
                "(a zip bomb?); nothing of it was loaded", limit_text(s));
        return -1;
    }
    return (long)got;
}

/* ------------------------------------------------------------ columns */

typedef struct {
    const char *name;
    call_field field;
} column_name;

/* Header names of the export (both layouts, and the legacy ones). */
static const column_name COLUMNS[] = {
    { "UsageId", CF_USAGE_ID },
    { "Call ID", CF_CALL_ID },
    { "Conference ID", CF_CONFERENCE_ID },
    { "ConfID", CF_CONFERENCE_ID },
    { "Microsoft Entra ObjectId", CF_ORGANIZER_ID },
    { "AAD ObjectId", CF_ORGANIZER_ID },
    { "UPN", CF_UPN },
    { "User Display Name", CF_DISPLAY_NAME },
    { "Call Type", CF_CALL_TYPE },
    { "Destination Number", CF_DESTINATION },
    { "Start Time", CF_START },
    { "Start Time (UTC)", CF_START },
    { "End Time", CF_END },
    { "Duration Seconds", CF_DURATION },
    { "Charge", CF_CHARGE },
    { "Connection Fee", CF_CONNECTION_FEE },
    { "Currency", CF_CURRENCY },
    { "Capability", CF_CAPABILITY },
    { "External Country", CF_COUNTRY },
};

/* ------------------------------------------------------------ reader */

typedef struct {
    /* set up once */
    callstage *stage;
    int legacy_tab;
    unsigned char delim;
    int ncols;                  /* header fields */
    int col_field[MAX_COLUMNS]; /* call_field of each column, or -1 */
    /* the header, while it is being read */
    int in_header;
    char header_err[AC_ERR_MAX];
    /* the record being read */
    struct csv_parser p;
    char *rec;                  /* its raw lines */
    size_t rec_len, rec_cap;
    size_t rec_line_at[REC_MAX_LINES + 1];
    int rec_lines;
    long long rec_first_line, rec_off;
    /* fields of the current row */
    char *arena;
    size_t arena_len, arena_cap;
    size_t field_at[MAX_COLUMNS];
    int nfields;
    int rows_ended;             /* rows completed while feeding a line */
    int oom;
} reader;

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *b = realloc(*buf, n);
    if (b == NULL)
        return -1;
    *buf = b;
    *cap = n;
    return 0;
}

static void on_field(void *data, size_t len, void *arg)
{
    reader *r = arg;
    if (r->nfields < MAX_COLUMNS) {
        if (grow(&r->arena, &r->arena_cap, r->arena_len + len + 1) != 0) {
            r->oom = 1;
        } else {
            r->field_at[r->nfields] = r->arena_len;
            if (len > 0)
                memcpy(r->arena + r->arena_len, data, len);
            r->arena[r->arena_len + len] = '\0';
            /* A NUL inside the field would cut it short: make the field
             * fail the UTF-8 check instead (the row is rejected). */
            if (data != NULL && memchr(data, '\0', len) != NULL)
                r->arena[r->arena_len] = '\xff';
            r->arena_len += len + 1;
        }
    }
    r->nfields++;
}

/* The raw text of the current record, without its final line break. */
static size_t rec_text_len(const reader *r)
{
    size_t n = r->rec_len;
    while (n > 0 && (r->rec[n - 1] == '\n' || r->rec[n - 1] == '\r'))
        n--;
    return n;
}

static int match_header(reader *r)
{
    int have[CF_COUNT] = { 0 };

    r->ncols = r->nfields > MAX_COLUMNS ? MAX_COLUMNS : r->nfields;
    for (int i = 0; i < r->ncols; i++) {
        char *name = r->arena + r->field_at[i];
        r->col_field[i] = -1;
        for (size_t k = 0; k < sizeof COLUMNS / sizeof COLUMNS[0]; k++) {
            if (strcasecmp(name, COLUMNS[k].name) == 0 &&
                !have[COLUMNS[k].field]) {
                r->col_field[i] = (int)COLUMNS[k].field;
                have[COLUMNS[k].field] = 1;
            }
        }
    }
    const char *missing = !have[CF_USAGE_ID] ? "UsageId"
                        : !have[CF_CALL_TYPE] ? "Call Type"
                        : !have[CF_START] ? "Start Time" : NULL;
    if (missing != NULL) {
        snprintf(r->header_err, sizeof r->header_err, "the header has no "
                 "\"%s\" column (is this a PSTN usage export?)", missing);
        return -1;
    }
    return 0;
}

static void on_row(int term, void *arg)
{
    reader *r = arg;
    (void)term;

    r->rows_ended++;
    if (r->in_header) {
        if (!r->oom && match_header(r) == 0)
            r->in_header = 0;
        else if (r->header_err[0] == '\0')
            snprintf(r->header_err, sizeof r->header_err, "out of memory");
        r->nfields = 0;
        r->arena_len = 0;
        return;
    }
    const char *raw = r->rec;
    size_t raw_len = rec_text_len(r);
    if (r->oom) {
        callstage_reject(r->stage, r->rec_first_line, raw, raw_len,
                         "out of memory while reading the row");
    } else if (r->nfields != r->ncols) {
        char why[128];
        snprintf(why, sizeof why, "the row has %d fields, the header %d",
                 r->nfields, r->ncols);
        callstage_reject(r->stage, r->rec_first_line, raw, raw_len, why);
    } else {
        const char *f[CF_COUNT] = { NULL };
        for (int i = 0; i < r->ncols; i++) {
            if (r->col_field[i] < 0)
                continue;
            const char *v = r->arena + r->field_at[i];
            if (r->legacy_tab && strcasecmp(v, "no data") == 0)
                v = NULL;
            f[r->col_field[i]] = v;
        }
        callstage_row(r->stage, r->rec_first_line, f, raw, raw_len,
                      r->rec_off, r->rec_len);
    }
    r->nfields = 0;
    r->arena_len = 0;
    r->oom = 0;
}

static int parser_init(reader *r)
{
    if (csv_init(&r->p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
        return -1;
    csv_set_delim(&r->p, r->delim);
    return 0;
}

static void parser_reset(reader *r)
{
    csv_free(&r->p);
    parser_init(r);
    r->nfields = 0;
    r->arena_len = 0;
    r->oom = 0;
}

static void rec_clear(reader *r)
{
    r->rec_len = 0;
    r->rec_lines = 0;
}

static void feed_line(reader *r, const char *line, size_t len,
                      long long line_no, long long off);

/* The record has run away (a quote never closed): reject its first line
 * and read the others again as new records. */
static void rec_runaway(reader *r, const char *reason)
{
    size_t first_end = r->rec_lines > 1 ? r->rec_line_at[1] : r->rec_len;
    size_t n = first_end;
    while (n > 0 && (r->rec[n - 1] == '\n' || r->rec[n - 1] == '\r'))
        n--;
    callstage_reject(r->stage, r->rec_first_line, r->rec, n, reason);

    /* The other lines, copied: feeding them refills r->rec. */
    size_t total = r->rec_len, rest = total - first_end;
    int lines = r->rec_lines;
    size_t at[REC_MAX_LINES + 1];
    memcpy(at, r->rec_line_at, sizeof at);
    long long first_line = r->rec_first_line, off = r->rec_off;
    char *copy = rest ? malloc(rest) : NULL;
    if (rest && copy == NULL)
        r->oom = 1;
    else if (rest)
        memcpy(copy, r->rec + first_end, rest);
    rec_clear(r);
    parser_reset(r);
    for (int i = 1; copy != NULL && i < lines; i++) {
        size_t b = at[i], e = i + 1 < lines ? at[i + 1] : total;
        feed_line(r, copy + (b - first_end), e - b, first_line + i,
                  off + (long long)b);
    }
    free(copy);
}

static int blank(const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (line[i] != '\r' && line[i] != '\n')
            return 0;
    return 1;
}

/* One physical line (with its line break, if any). */
static void feed_line(reader *r, const char *line, size_t len,
                      long long line_no, long long off)
{
    if (r->rec_lines == 0) {
        if (blank(line, len))
            return;
        r->rec_first_line = line_no;
        r->rec_off = off;
    }
    if (grow(&r->rec, &r->rec_cap, r->rec_len + len + 1) != 0) {
        r->oom = 1;
        return;
    }
    r->rec_line_at[r->rec_lines++] = r->rec_len;
    memcpy(r->rec + r->rec_len, line, len);
    r->rec_len += len;
    r->rec[r->rec_len] = '\0';

    r->rows_ended = 0;
    size_t used = csv_parse(&r->p, line, len, on_field, on_row, r);
    if (used != len) {
        if (r->in_header) {
            snprintf(r->header_err, sizeof r->header_err,
                     "the header line is not valid CSV: %s",
                     csv_strerror(csv_error(&r->p)));
            return;
        }
        callstage_reject(r->stage, r->rec_first_line, r->rec,
                         rec_text_len(r), "malformed quoting (a quote "
                         "inside an unquoted field, or text after a closing "
                         "quote)");
        rec_clear(r);
        parser_reset(r);
        return;
    }
    if (r->rows_ended > 0) {
        rec_clear(r);
        return;
    }
    if (r->rec_lines >= REC_MAX_LINES || r->rec_len >= REC_MAX_BYTES)
        rec_runaway(r, "a quoted field is never closed (50 lines or 64 KiB "
                    "without its closing quote)");
}

/* End of input: finish the last record; a quote still open rejects the
 * record's first line and reads the rest again. */
static void feed_end(reader *r)
{
    for (int guard = 0; guard <= REC_MAX_LINES; guard++) {
        r->rows_ended = 0;
        if (csv_fini(&r->p, on_field, on_row, r) == 0)
            return;
        if (r->rec_lines == 0)
            return;
        rec_runaway(r, "a quoted field is never closed before the end of "
                    "the file");
    }
}

/* ------------------------------------------------------------ one file */

typedef struct {
    const char *path;
    zip_t *za;
    zip_uint64_t index;
    source src;
    int open;
} raw_reader;

/* callstage_raw_fn: the bytes [off, off + len) of the source, read again
 * (forwards; reopened when asked for an earlier offset). */
static int raw_at(void *ctx, long long off, size_t len, char *buf)
{
    raw_reader *rr = ctx;
    char skip[65536], err[AC_ERR_MAX];

    if (rr->open && rr->src.pos > off) {
        src_close(&rr->src);
        rr->open = 0;
    }
    if (!rr->open) {
        if (src_open(&rr->src, rr->path, rr->za, rr->index, err) != AC_OK)
            return -1;
        rr->open = 1;
    }
    while (rr->src.pos < off) {
        long long want = off - rr->src.pos;
        long n = src_read(&rr->src, skip, want < (long long)sizeof skip
                          ? (size_t)want : sizeof skip, err);
        if (n <= 0)
            return -1;
    }
    size_t got = 0;
    while (got < len) {
        long n = src_read(&rr->src, buf + got, len - got, err);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    buf[len] = '\0';
    return 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void log_summary(const char *file, const char *member,
                        const import_counts *c)
{
    ac_info("import pstn %s%s%s: %lld read, %lld inserted, %lld updated, "
            "%lld unchanged, %lld skipped (other call types), %lld rejected "
            "(import %lld)", file, member ? ":" : "", member ? member : "",
            c->read, c->inserted, c->updated, c->unchanged, c->skipped,
            c->rejected, c->import_id);
    if (c->rejects_not_kept > 0)
        ac_warn("import pstn %s%s%s: only the first %d rejected rows are "
                "kept in usage.import_rejects; the other %lld are counted by "
                "reason in usage.imports.rejects_not_kept (import %lld)",
                file, member ? ":" : "", member ? member : "",
                CALLSTAGE_REJECTS_KEPT, c->rejects_not_kept, c->import_id);
}

/* Import one CSV (a file, or member index of za). */
static ac_status import_csv(PGconn *conn, const char *tenant,
                            const char *path, zip_t *za, zip_uint64_t index,
                            const char *member, int progress,
                            ac_status *worst, char *err)
{
    const char *file = base_name(path);
    reader r;
    source src;
    callstage *stage = NULL;
    char *buf = NULL, *line = NULL, hex[65] = "";
    size_t line_len = 0, line_cap = 0;
    long long line_no = 0, line_off = 0, consumed = 0;
    int skipping_long = 0, first = 1, show = 0;
    sha256_ctx sha;
    ac_status rc;
    char why[AC_ERR_MAX] = "";

    memset(&r, 0, sizeof r);
    r.in_header = 1;
    r.delim = CSV_COMMA;
    rc = src_open(&src, path, za, index, err);
    if (rc != AC_OK) {
        char rerr[AC_ERR_MAX];
        if (import_record_refused(conn, tenant, "pstn", file, member, NULL,
                                  err, rerr) != AC_OK)
            ac_error("import: cannot record the refusal: %s", rerr);
        *worst = AC_EDATA;
        if (rc == AC_EDATA) {       /* refused and recorded; go on */
            ac_warn("import pstn %s:%s: %s", file, member ? member : "",
                    err);
            return AC_OK;
        }
        return rc;
    }
    rc = callstage_begin(conn, tenant, "pstn", file, member, &stage, err);
    if (rc != AC_OK) {
        src_close(&src);
        return rc;
    }
    buf = malloc(CHUNK);
    if (buf == NULL || parser_init(&r) != 0) {
        rc = ac_fail(err, AC_EOSERR, "out of memory");
        goto abandon;
    }
    r.stage = stage;
    sha256_init(&sha);
    show = progress && src.size >= PROGRESS_BYTES;
    double t_last = now_s();

    for (;;) {
        long n = src_read(&src, buf, CHUNK, why);
        if (n < 0) {
            rc = src.over ? AC_EDATA : AC_EIO;
            goto abandon;
        }
        if (n > 0)
            sha256_update(&sha, buf, (size_t)n);
        size_t at = 0;
        if (first && n > 0) {
            first = 0;
            if (n >= 2 && ((unsigned char)buf[0] == 0xff ||
                           (unsigned char)buf[0] == 0xfe) &&
                ((unsigned char)buf[1] == 0xfe ||
                 (unsigned char)buf[1] == 0xff)) {
                snprintf(why, sizeof why, "the file is UTF-16: save it as "
                         "UTF-8 (CSV)");
                rc = AC_EDATA;
                goto abandon;
            }
            if (n >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
                at = 3;                             /* UTF-8 BOM */
                consumed = line_off = 3;
            }
        }
        /* Split into physical lines; the last piece waits for more. */
        while ((long)at < n || (n == 0 && line_len > 0)) {
            const char *start = buf + at;
            size_t left = (size_t)n - at;
            const char *nl = n > 0 ? memchr(start, '\n', left) : NULL;
            size_t take = nl ? (size_t)(nl - start) + 1 : left;
            if (skipping_long) {
                consumed += (long long)take;
                at += take;
                if (nl != NULL) {
                    skipping_long = 0;
                    line_off = consumed;
                }
                if (n == 0)
                    break;
                continue;
            }
            if (line_len + take > LINE_MAX_BYTES) {
                line_no++;
                if (r.in_header) {
                    snprintf(why, sizeof why, "the first line is longer "
                             "than 1 MiB: not a PSTN usage export");
                    rc = AC_EDATA;
                    goto abandon;
                }
                callstage_reject(stage, line_no, line, line_len > 200 ? 200
                                 : line_len, "the line is longer than 1 MiB");
                line_len = 0;
                consumed += (long long)take;
                at += take;
                skipping_long = nl == NULL;
                if (!skipping_long)
                    line_off = consumed;
                continue;
            }
            if (grow(&line, &line_cap, line_len + take + 1) != 0) {
                rc = ac_fail(why, AC_EOSERR, "out of memory");
                goto abandon;
            }
            memcpy(line + line_len, start, take);
            line_len += take;
            at += take;
            consumed += (long long)take;
            if (nl == NULL && n > 0)
                break;                      /* the rest comes next read */
            line_no++;
            if (r.in_header && line_no == 1 && memchr(line, '\t', line_len)) {
                r.legacy_tab = 1;
                r.delim = CSV_TAB;
                csv_set_delim(&r.p, CSV_TAB);
            }
            feed_line(&r, line, line_len, line_no, line_off);
            line_off = consumed;
            line_len = 0;
            if (r.header_err[0] != '\0') {
                snprintf(why, sizeof why, "%s", r.header_err);
                rc = AC_EDATA;
                goto abandon;
            }
            if (n == 0)
                break;
        }
        if (show && now_s() - t_last >= 0.5) {
            t_last = now_s();
            fprintf(stderr, "\r  %s%s%s: %lld rows, %.0f%%   ", file,
                    member ? ":" : "", member ? member : "",
                    callstage_rows(stage),
                    src.size > 0 ? 100.0 * (double)src.pos /
                                   (double)src.size : 0.0);
        }
        if (n == 0)
            break;
    }
    feed_end(&r);
    if (r.in_header) {
        snprintf(why, sizeof why, "%s", r.header_err[0] ? r.header_err
                 : "the file is empty: no header line");
        rc = AC_EDATA;
        goto abandon;
    }
    if (r.oom) {
        rc = ac_fail(why, AC_EOSERR, "out of memory");
        goto abandon;
    }
    if (show)
        fprintf(stderr, "\r  %s%s%s: %lld rows, merging...   ", file,
                member ? ":" : "", member ? member : "",
                callstage_rows(stage));
    sha256_final_hex(&sha, hex);
    src_close(&src);

    raw_reader rr = { path, za, index, { 0 }, 0 };
    import_counts c;
    rc = callstage_finish(stage, hex, raw_at, &rr, &c, err);
    stage = NULL;
    if (rr.open)
        src_close(&rr.src);
    if (show)
        fputc('\n', stderr);
    if (rc == AC_OK) {
        log_summary(file, member, &c);
        if (c.rejected > 0)
            *worst = AC_EDATA;
    }
    goto out;

abandon:
    if (show)
        fputc('\n', stderr);
    src_close(&src);
    if (why[0] == '\0')
        snprintf(why, sizeof why, "%s", err);
    callstage_abort(stage, hex[0] ? hex : NULL, why);
    stage = NULL;
    *worst = AC_EDATA;
    if (rc == AC_EDATA) {
        rc = AC_OK;                 /* refused and recorded; go on */
    } else {
        snprintf(err, AC_ERR_MAX, "%s%s%s: %s", file, member ? ":" : "",
                 member ? member : "", why);
    }
out:
    csv_free(&r.p);
    free(r.rec);
    free(r.arena);
    free(line);
    free(buf);
    return rc;
}

static int is_zip(const char *path)
{
    unsigned char magic[4] = { 0 };
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    size_t n = fread(magic, 1, 4, f);
    fclose(f);
    return n == 4 && memcmp(magic, "PK\x03\x04", 4) == 0;
}

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

ac_status pstn_import(PGconn *conn, const char *tenant, const char *path,
                      int progress, ac_status *worst, char *err)
{
    long mb = PSTN_MAX_UNZIPPED_MB, ratio = PSTN_MAX_RATIO;
    ac_status lrc = env_long("ACBILL_IMPORT_MAX_UNZIPPED_MB", 0, 1L << 30,
                             &mb, err);
    if (lrc == AC_OK)
        lrc = env_long("ACBILL_IMPORT_MAX_RATIO", 0, 1000000, &ratio, err);
    if (lrc != AC_OK)
        return lrc;
    max_unzipped = (long long)mb << 20;
    max_ratio = ratio;
    if (!is_zip(path))
        return import_csv(conn, tenant, path, NULL, 0, NULL, progress,
                          worst, err);

    int code = 0;
    zip_t *za = zip_open(path, ZIP_RDONLY, &code);
    if (za == NULL) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, code);
        char why[AC_ERR_MAX];
        snprintf(why, sizeof why, "not a readable zip: %s",
                 zip_error_strerror(&ze));
        zip_error_fini(&ze);
        *worst = AC_EDATA;
        return import_record_refused(conn, tenant, "pstn", base_name(path),
                                     NULL, NULL, why, err);
    }
    ac_status rc = AC_OK;
    int found = 0;
    zip_int64_t n = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < n && rc == AC_OK; i++) {
        const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
        if (name == NULL || ends_with_ci(name, "/"))
            continue;
        const char *bn = base_name(name);
        if (!ends_with_ci(bn, ".csv") ||
            strncasecmp(bn, "DirectRouting", 13) == 0) {
            ac_info("import pstn %s: passing over %s (not a Calling Plans "
                    "CSV)", base_name(path), name);
            continue;
        }
        found++;
        rc = import_csv(conn, tenant, path, za, (zip_uint64_t)i, name,
                        progress, worst, err);
    }
    zip_close(za);
    if (rc == AC_OK && found == 0) {
        *worst = AC_EDATA;
        rc = import_record_refused(conn, tenant, "pstn", base_name(path),
                                   NULL, NULL, "the zip holds no Calling "
                                   "Plans CSV (PSTN.calls.*.csv)", err);
    }
    return rc;
}
