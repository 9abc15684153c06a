/* xlsx_book.c: see xlsx_book.h. */
#define _GNU_SOURCE             /* dlsym(RTLD_NEXT) */
#include "xlsx_book.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "countries.h"
#include "db.h"
#include "report.h"


/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is invalid,
 * overlong, a surrogate, beyond U+10FFFF, or U+FFFE/U+FFFF (not allowed
 * in XML). */
static int utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0;               /* overlong */
        if (c == 0xED && s[1] >= 0xA0)
            return 0;               /* surrogate */
        if (c == 0xEF && s[1] == 0xBF && (s[2] == 0xBE || s[2] == 0xBF))
            return 0;               /* U+FFFE, U+FFFF */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
            (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0;
        if (c == 0xF4 && s[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

/* What the cleaner does with the character of len bytes at p: 0 keep,
 * 1 replace with U+FFFD (invalid UTF-8; C0 controls but tab and line feed,
 * DEL and the C1 controls, which XML forbids or Excel shows as boxes),
 * 2 drop (a carriage return before a line feed), 3 a line feed (a lone
 * carriage return, which XML readers would turn into one anyway). */
static int clean_action(const unsigned char *p, int len)
{
    if (len == 0)
        return 1;
    if (len == 1) {
        if (*p == '\r')
            return p[1] == '\n' ? 2 : 3;
        if ((*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7F)
            return 1;
        return 0;
    }
    if (len == 2 && p[0] == 0xC2 && p[1] < 0xA0)     /* U+0080-U+009F */
        return 1;
    return 0;
}

size_t xb_clean(const char *text, size_t max_units, char *out,
                size_t *units)
{
    static const char mark[] = XB_CUT_MARK;
    const unsigned char *p = (const unsigned char *)(text ? text : "");
    size_t n = 0, u = 0, total = 0;

    /* The text's length in UTF-16 units (what Excel counts), as cleaned. */
    for (const unsigned char *q = p; *q != '\0'; ) {
        int len = utf8_len(q);
        int act = clean_action(q, len);
        total += act == 2 ? 0 : len == 4 ? 2 : 1;
        q += len ? len : 1;
    }
    size_t keep = total <= max_units ? total
                : max_units > sizeof mark - 1 ? max_units - (sizeof mark - 1)
                : 0;
    while (*p != '\0') {
        int len = utf8_len(p);
        int act = clean_action(p, len);
        size_t w = act == 2 ? 0 : len == 4 ? 2 : 1;
        if (u + w > keep)
            break;
        u += w;
        if (act == 1) {
            if (out)
                memcpy(out + n, "\xEF\xBF\xBD", 3);      /* U+FFFD */
            n += 3;
        } else if (act == 3) {
            if (out)
                out[n] = '\n';
            n++;
        } else if (act == 0) {
            if (out)
                memcpy(out + n, p, (size_t)len);
            n += (size_t)len;
        }
        p += len ? len : 1;
    }
    if (total > keep) {
        if (out)
            memcpy(out + n, mark, sizeof mark - 1);
        n += sizeof mark - 1;
        u += sizeof mark - 1;
    }
    if (out)
        out[n] = '\0';
    if (units)
        *units = u;
    return n;
}

char *xb_clean_dup(const char *text, size_t max_units)
{
    size_t n = xb_clean(text, max_units, NULL, NULL);
    char *out = malloc(n + 1);
    if (out != NULL)
        xb_clean(text, max_units, out, NULL);
    return out;
}

char *xb_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *out = malloc((size_t)n + 1);
    if (out == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

/* Return text cleaned (xb_clean, Excel's XB_STR_MAX): text itself when it
 * needs nothing, else a copy in b->buf.  *chars receives its length in
 * UTF-16 units.  NULL when memory runs out. */
static const char *clean_text(xb_book *b, const char *text, unsigned *chars)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t units = 0;

    while (*p != '\0') {
        int len = utf8_len(p);
        if (clean_action(p, len) != 0)
            break;
        units += len == 4 ? 2 : 1;
        p += len;
    }
    if (*p == '\0' && units <= XB_STR_MAX) {
        *chars = (unsigned)units;
        return text;
    }
    size_t n = xb_clean(text, XB_STR_MAX, NULL, NULL);
    if (n + 1 > b->bufcap) {
        char *nb = realloc(b->buf, n + 1);
        if (nb == NULL)
            return NULL;
        b->buf = nb;
        b->bufcap = n + 1;
    }
    xb_clean(text, XB_STR_MAX, b->buf, &units);
    *chars = (unsigned)units;
    return b->buf;
}

/* Copy src into dst (cap bytes), cutting at a character boundary. */
static void copy_prop(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Free the property strings and the scratch buffer. */
static void xb_free_props(xb_book *b)
{
    for (int i = 0; i < XB_PROPS; i++) {
        free(b->prop[i]);
        b->prop[i] = NULL;
    }
    free(b->buf);
    b->buf = NULL;
    b->bufcap = 0;
}

static void note(xb_sheet *s, lxw_error e, lxw_col_t col)
{
    xb_book *b = s->book;
    if (e == LXW_NO_ERROR || b->lerr != LXW_NO_ERROR)
        return;
    b->lerr = e;
    snprintf(b->where, sizeof b->where, "sheet '%s', row %lu, column %u",
             s->name, (unsigned long)s->row + 1, (unsigned)col + 1);
}

ac_status xb_open(xb_book *b, const char *path, const xb_props *p,
                  char *err)
{
    memset(b, 0, sizeof *b);
    b->tmp_failures = xb_tmp_failures();
    if (strlen(path) >= sizeof b->path)
        return ac_fail(err, AC_ECANTCREAT, "output path too long: %.100s",
                       path);
    snprintf(b->path, sizeof b->path, "%s", path);

    /* Temporary files go next to the output (not to a tmpfs /tmp), or to
     * $ACBILL_XLSX_TMPDIR when set. */
    const char *slash = strrchr(path, '/');
    const char *env = getenv("ACBILL_XLSX_TMPDIR");
    if (p->tmpdir != NULL)
        snprintf(b->tmpdir, sizeof b->tmpdir, "%s", p->tmpdir);
    else if (env != NULL && *env != '\0')
        snprintf(b->tmpdir, sizeof b->tmpdir, "%s", env);
    else if (slash == NULL)
        snprintf(b->tmpdir, sizeof b->tmpdir, ".");
    else if (slash == path)
        snprintf(b->tmpdir, sizeof b->tmpdir, "/");
    else
        snprintf(b->tmpdir, sizeof b->tmpdir, "%.*s", (int)(slash - path),
                 path);

    if (access(b->tmpdir, W_OK | X_OK) != 0)
        return ac_fail(err, AC_ECANTCREAT, "cannot write workbook %s: "
                       "directory %s: %s", path, b->tmpdir, strerror(errno));

    /* The property strings may come from tenant data: the cells' cleaner
     * keeps them valid XML (docProps/core.xml). */
    const char *src[XB_PROPS] = {
        p->title, p->subject, p->category, p->keywords, p->comments
    };
    for (int i = 0; i < XB_PROPS; i++) {
        b->prop[i] = xb_clean_dup(src[i] ? src[i] : "", XB_PROP_MAX);
        if (b->prop[i] == NULL) {
            xb_free_props(b);
            return ac_fail(err, AC_EOSERR, "out of memory");
        }
    }
    copy_prop(b->author, sizeof b->author, "acbill");
    copy_prop(b->company, sizeof b->company, "acbill");

    lxw_workbook_options opt = {
        .constant_memory = LXW_TRUE,
        .tmpdir = b->tmpdir,
        .use_zip64 = LXW_FALSE,
    };
    b->wb = workbook_new_opt(path, &opt);
    if (b->wb == NULL) {
        xb_free_props(b);
        return ac_fail(err, AC_ECANTCREAT, "cannot create workbook %s",
                       path);
    }

    lxw_doc_properties props_ = {
        .title = b->prop[0],
        .subject = b->prop[1],
        .author = b->author,
        .company = b->company,
        .category = b->prop[2],
        .keywords = b->prop[3],
        .comments = b->prop[4],
        .created = p->created,
    };
    lxw_error e = workbook_set_properties(b->wb, &props_);
    if (e != LXW_NO_ERROR) {
        b->lerr = e;
        snprintf(b->where, sizeof b->where, "document properties");
    }

    /* The fixed formats, always in this order (their style index is
     * part of the file). */
    b->title_f = workbook_add_format(b->wb);
    format_set_bold(b->title_f);
    format_set_font_size(b->title_f, 14);
    b->section = workbook_add_format(b->wb);
    format_set_bold(b->section);
    format_set_font_size(b->section, 12);
    b->header = workbook_add_format(b->wb);
    format_set_bold(b->header);
    format_set_bg_color(b->header, 0xDDEBF7);
    format_set_bottom(b->header, LXW_BORDER_THIN);
    format_set_text_wrap(b->header);
    format_set_align(b->header, LXW_ALIGN_VERTICAL_TOP);
    b->bold = workbook_add_format(b->wb);
    format_set_bold(b->bold);
    b->italic = workbook_add_format(b->wb);
    format_set_italic(b->italic);
    b->integer = workbook_add_format(b->wb);
    format_set_num_format(b->integer, "#,##0");
    b->integer_bold = workbook_add_format(b->wb);
    format_set_num_format(b->integer_bold, "#,##0");
    format_set_bold(b->integer_bold);
    b->datetime = workbook_add_format(b->wb);
    format_set_num_format(b->datetime, "yyyy-mm-dd hh:mm:ss");
    b->decimal4 = workbook_add_format(b->wb);
    format_set_num_format(b->decimal4, "#,##0.0000");
    b->wrap = workbook_add_format(b->wb);
    format_set_text_wrap(b->wrap);
    format_set_align(b->wrap, LXW_ALIGN_VERTICAL_TOP);
    b->date = workbook_add_format(b->wb);
    format_set_num_format(b->date, "yyyy-mm-dd");
    format_set_align(b->date, LXW_ALIGN_LEFT);
    b->draft = workbook_add_format(b->wb);
    format_set_bold(b->draft);
    format_set_font_size(b->draft, 14);
    format_set_font_color(b->draft, 0xC00000);
    return AC_OK;
}

ac_status xb_close(xb_book *b, int failed, char *err)
{
    ac_status rc = AC_OK;

    if (b->wb != NULL) {
        /* workbook_close() also frees; there is no way to discard. */
        lxw_error e = workbook_close(b->wb);
        b->wb = NULL;
        if (!failed && e != LXW_NO_ERROR)
            rc = ac_fail(err, e == LXW_ERROR_CREATING_XLSX_FILE ?
                         AC_ECANTCREAT : AC_EIO, "cannot write %s: %s",
                         b->path, lxw_strerror(e));
        else if (!failed && xb_tmp_failures() != b->tmp_failures)
            rc = ac_fail(err, AC_EIO, "cannot write %s: a temporary file "
                         "in %s could not be written", b->path, b->tmpdir);
    }
    if (failed || rc != AC_OK) {
        if (unlink(b->path) != 0 && errno != ENOENT && !failed)
            rc = ac_fail(err, AC_EIO, "cannot remove partial %s: %s",
                         b->path, strerror(errno));
    }
    xb_free_props(b);
    return rc;
}

ac_status xb_check(xb_book *b, char *err)
{
    if (b->lerr == LXW_NO_ERROR)
        return AC_OK;
    return ac_fail(err, AC_EINTERNAL, "writing %s: %s (%s)", b->path,
                   lxw_strerror(b->lerr), b->where);
}

const xb_money *xb_money_of(xb_book *b, const char *currency,
                            int minor_unit)
{
    char code[4] = "";
    int letters = 1;

    if (minor_unit < 0 || minor_unit > 4)
        minor_unit = 2;
    copy_prop(code, sizeof code, currency ? currency : "");
    for (int i = 0; i < 3; i++)
        if (code[i] < 'A' || code[i] > 'Z')
            letters = 0;
    for (int i = 0; i < b->nmoney; i++)
        if (strcmp(b->money[i].code, code) == 0 &&
            b->money[i].minor_unit == minor_unit)
            return &b->money[i];
    if (b->nmoney == XB_MAX_CURRENCIES)
        return NULL;

    /* "#,##0" and the minor unit's decimals (ISO 4217: JPY none, USD 2,
     * BHD 3), and always four for rates and exact amounts. */
    char num[16], num4[16] = "#,##0.0000", f2[64], f4[64];
    snprintf(num, sizeof num, "#,##0%s%.*s", minor_unit > 0 ? "." : "",
             minor_unit, "0000");
    if (strcmp(code, "USD") == 0) {
        snprintf(f2, sizeof f2, "[$$-409]%s", num);
        snprintf(f4, sizeof f4, "[$$-409]%s", num4);
    } else if (strcmp(code, "EUR") == 0) {
        snprintf(f2, sizeof f2, "[$\xE2\x82\xAC-2] %s", num);
        snprintf(f4, sizeof f4, "[$\xE2\x82\xAC-2] %s", num4);
    } else if (strcmp(code, "GBP") == 0) {
        snprintf(f2, sizeof f2, "[$\xC2\xA3-809]%s", num);
        snprintf(f4, sizeof f4, "[$\xC2\xA3-809]%s", num4);
    } else if (letters) {
        snprintf(f2, sizeof f2, "%s \"%s\"", num, code);
        snprintf(f4, sizeof f4, "%s \"%s\"", num4, code);
    } else {
        snprintf(f2, sizeof f2, "%s", num);
        snprintf(f4, sizeof f4, "%s", num4);
    }
    xb_money *m = &b->money[b->nmoney++];
    memcpy(m->code, code, sizeof m->code);
    m->minor_unit = minor_unit;
    m->m2 = workbook_add_format(b->wb);
    format_set_num_format(m->m2, f2);
    m->m4 = workbook_add_format(b->wb);
    format_set_num_format(m->m4, f4);
    m->m2_bold = workbook_add_format(b->wb);
    format_set_num_format(m->m2_bold, f2);
    format_set_bold(m->m2_bold);
    return m;
}

ac_status xb_sheet_add(xb_book *b, xb_sheet *s, const char *name,
                       char *err)
{
    memset(s, 0, sizeof *s);
    s->book = b;
    copy_prop(s->name, sizeof s->name, name);
    lxw_error e = workbook_validate_sheet_name(b->wb, name);
    if (e == LXW_NO_ERROR) {
        s->ws = workbook_add_worksheet(b->wb, name);
        if (s->ws == NULL)
            e = LXW_ERROR_MEMORY_MALLOC_FAILED;
    }
    if (e != LXW_NO_ERROR)
        return ac_fail(err, AC_EINTERNAL, "cannot add sheet '%s' to %s: %s",
                       name, b->path, lxw_strerror(e));
    return AC_OK;
}

void xb_width(xb_sheet *s, lxw_col_t col, unsigned width)
{
    if (col < XB_MAX_COLS && width > s->width[col])
        s->width[col] = width;
}

void xb_str(xb_sheet *s, lxw_col_t col, const char *text, lxw_format *f)
{
    unsigned chars = 0;

    if (text == NULL || s->book->lerr != LXW_NO_ERROR)
        return;
    const char *c = clean_text(s->book, text, &chars);
    if (c == NULL) {
        note(s, LXW_ERROR_MEMORY_MALLOC_FAILED, col);
        return;
    }
    /* worksheet_write_string(): never a formula, whatever the text. */
    note(s, worksheet_write_string(s->ws, s->row, col, c, f), col);
    xb_width(s, col, chars);
}

void xb_title(xb_sheet *s, lxw_col_t col, const char *text, lxw_format *f)
{
    unsigned keep = col < XB_MAX_COLS ? s->width[col] : 0;
    xb_str(s, col, text, f);
    if (col < XB_MAX_COLS)
        s->width[col] = keep;
}

/* The widest number of column col: its text of n characters shown with
 * thousands separators, four decimals and a currency code or symbol. */
static void num_width(xb_sheet *s, lxw_col_t col, unsigned n)
{
    unsigned w = n + n / 3 + 5;
    if (col < XB_MAX_COLS && w > s->num_width[col])
        s->num_width[col] = w;
}

double xb_number_column_width(const xb_sheet *s, lxw_col_t col,
                              double min_width)
{
    double w = col < XB_MAX_COLS ? (double)s->num_width[col] + 1 : 0;
    return w > min_width ? w : min_width;
}

void xb_str_wrapped(xb_sheet *s, lxw_col_t col, const char *text)
{
    if (text == NULL || s->book->lerr != LXW_NO_ERROR)
        return;
    /* Lines of XB_WIDTH_MAX characters (bytes: a little more for
     * accented text), 15 points each; the explicit breaks too. */
    size_t lines = 1, run = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '\n' || ++run > XB_WIDTH_MAX) {
            lines++;
            run = 0;
        }
    }
    double h = 15.0 * (double)lines;
    if (lines > 1)
        note(s, worksheet_set_row(s->ws, s->row, h > 409 ? 409 : h, NULL),
             col);
    unsigned keep = col < XB_MAX_COLS ? s->width[col] : 0;
    xb_str(s, col, text, s->book->wrap);
    if (col < XB_MAX_COLS)
        s->width[col] = keep > XB_WIDTH_MAX ? keep : XB_WIDTH_MAX;
}

void xb_num(xb_sheet *s, lxw_col_t col, double v, lxw_format *f)
{
    char tmp[64];

    if (s->book->lerr != LXW_NO_ERROR)
        return;
    note(s, worksheet_write_number(s->ws, s->row, col, v, f), col);
    int n = snprintf(tmp, sizeof tmp, "%.2f", v);
    /* Room for thousands separators and a currency symbol. */
    xb_width(s, col, (unsigned)n + (unsigned)n / 3 + 2);
    num_width(s, col, (unsigned)n);
}

void xb_dec(xb_sheet *s, lxw_col_t col, const char *text, lxw_format *f)
{
    if (text == NULL || *text == '\0' || s->book->lerr != LXW_NO_ERROR)
        return;
    note(s, worksheet_write_number(s->ws, s->row, col, xb_number(text), f),
         col);
    size_t n = strlen(text);
    xb_width(s, col, (unsigned)(n + n / 3 + 2));
    num_width(s, col, (unsigned)n);
}

/* Parse exactly `digits` decimal digits at *p into *out. */
static int take(const char **p, int digits, int *out)
{
    int v = 0;
    for (int i = 0; i < digits; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += digits;
    *out = v;
    return 0;
}

void xb_ts(xb_sheet *s, lxw_col_t col, const char *text, lxw_format *f)
{
    lxw_datetime dt;
    const char *p = text;
    int sec = 0;

    if (text == NULL || *text == '\0' || s->book->lerr != LXW_NO_ERROR)
        return;
    if (take(&p, 4, &dt.year) || *p++ != '-' ||
        take(&p, 2, &dt.month) || *p++ != '-' ||
        take(&p, 2, &dt.day) || *p++ != ' ' ||
        take(&p, 2, &dt.hour) || *p++ != ':' ||
        take(&p, 2, &dt.min) || *p++ != ':' || take(&p, 2, &sec)) {
        /* Not a timestamp we wrote: show it as text rather than lose it. */
        xb_str(s, col, text, NULL);
        return;
    }
    dt.sec = sec;
    if (*p == '.') {
        double scale = 0.1;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            dt.sec += (*p - '0') * scale;
    }
    note(s, worksheet_write_datetime(s->ws, s->row, col, &dt, f), col);
    xb_width(s, col, 19);
}

void xb_next(xb_sheet *s)
{
    s->row++;
}

void xb_header(xb_sheet *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        xb_str(s, (lxw_col_t)i, names[i], s->book->header);
    xb_next(s);
}

void xb_header_tall(xb_sheet *s, const char *const *names, int n)
{
    /* Set before the row's cells: constant_memory writes a row once. */
    note(s, worksheet_set_row(s->ws, s->row, 30, NULL), 0);
    xb_header(s, names, n);
}

void xb_fit_columns(xb_sheet *s, int ncols, unsigned min_width)
{
    for (int i = 0; i < ncols && i < XB_MAX_COLS; i++) {
        unsigned w = s->width[i] < min_width ? min_width : s->width[i];
        if (w > XB_WIDTH_MAX)
            w = XB_WIDTH_MAX;
        note(s, worksheet_set_column(s->ws, (lxw_col_t)i, (lxw_col_t)i,
                                     w + 2, NULL), (lxw_col_t)i);
    }
}

void xb_list_finish(xb_sheet *s, lxw_row_t header_row, int ncols)
{
    lxw_row_t last = s->row > header_row ? s->row - 1 : header_row;

    if (s->book->lerr != LXW_NO_ERROR)
        return;
    worksheet_freeze_panes(s->ws, header_row + 1, 0);
    note(s, worksheet_autofilter(s->ws, header_row, 0, last,
                                 (lxw_col_t)(ncols - 1)), 0);
    xb_fit_columns(s, ncols, 6);
}

void xb_label(xb_sheet *s, const char *label, const char *value,
              lxw_format *f)
{
    xb_str(s, 0, label, NULL);
    xb_str(s, 1, value, f);
    xb_next(s);
}

void xb_label_note(xb_sheet *s, const char *label, const char *note)
{
    xb_label(s, label, note, s->book->italic);
}

void xb_label_dec(xb_sheet *s, const char *label, const char *value,
                  lxw_format *f)
{
    xb_str(s, 0, label, NULL);
    xb_dec(s, 1, value, f);
    xb_next(s);
}

void xb_date(xb_sheet *s, lxw_col_t col, const char *date)
{
    char ts[32];
    if (date == NULL)
        return;
    snprintf(ts, sizeof ts, "%.10s 00:00:00", date);
    xb_ts(s, col, ts, s->book->date);
}

void xb_label_date(xb_sheet *s, const char *label, const char *date)
{
    xb_str(s, 0, label, NULL);
    xb_date(s, 1, date);
    xb_next(s);
}

void xb_label_lines(xb_sheet *s, const char *label, const char *text,
                    lxw_format *first, int max_lines)
{
    char *copy = text ? strdup(text) : NULL;
    int n = 0;

    if (copy == NULL)
        return;
    for (char *line = copy, *next; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL && n < max_lines - 1) {
            *next++ = '\0';
        } else if (next != NULL) {
            /* The last row: the rest, its line breaks as ", ". */
            for (char *q = next; (q = strchr(q, '\n')) != NULL; )
                *q = ',';
            next = NULL;
        }
        size_t len = strlen(line);
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = '\0';
        if (len == 0)
            continue;
        xb_str(s, 0, n == 0 ? label : NULL, NULL);
        xb_str(s, 1, line, n == 0 ? first : NULL);
        xb_next(s);
        n++;
    }
    free(copy);
}

void xb_country_label(const char *code, char *buf, size_t len)
{
    const char *name = country_name(code);
    if (code == NULL)
        snprintf(buf, len, "%s", "");
    else if (name != NULL)
        snprintf(buf, len, "%s (%s)", name, code);
    else
        snprintf(buf, len, "%s", code);
}

void xb_party(xb_sheet *s, const char *role, const char *name,
              const char *address, const char *country, const char *tax_id,
              const char *extra_label, const char *extra,
              const char *none)
{
    char t[160], label[64];

    if (name == NULL) {
        if (none != NULL)
            xb_label_note(s, role, none);
        return;
    }
    xb_label_lines(s, role, name, s->book->bold, 2);
    xb_label_lines(s, "", address, NULL, 8);
    if (country != NULL) {
        xb_country_label(country, t, sizeof t);
        xb_label(s, "", t, NULL);
    }
    if (tax_id != NULL) {
        snprintf(label, sizeof label, "%s's tax ID", role);
        xb_label(s, label, tax_id, NULL);
    }
    if (extra != NULL)
        xb_label_lines(s, extra_label, extra, NULL, 6);
}

int xb_paper_of(const char *country)
{
    if (country != NULL && (strcmp(country, "US") == 0 ||
                            strcmp(country, "CA") == 0))
        return XB_PAPER_LETTER;
    return XB_PAPER_A4;
}

void xb_print_setup(xb_sheet *s, int list, lxw_row_t header_row,
                    unsigned tall, const char *doc_label, int draft,
                    int paper)
{
    /* "&L<label>&C&A&RPage &P of &N": the label gets what is left of
     * Excel's 255 characters, each '&' doubled. */
    static const char tail[] = "&C&A&RPage &P of &N";
    char footer[LXW_HEADER_FOOTER_MAX + 1], label[LXW_HEADER_FOOTER_MAX];
    size_t room = LXW_HEADER_FOOTER_MAX - (sizeof tail - 1) - 2, n = 0;
    char *clean = xb_clean_dup(doc_label ? doc_label : "", 120);

    if (clean == NULL) {
        note(s, LXW_ERROR_MEMORY_MALLOC_FAILED, 0);
        return;
    }
    /* Line breaks would end the footer's line: spaces instead. */
    for (const char *p = clean; *p != '\0'; p++) {
        size_t need = *p == '&' ? 2 : 1;
        if (n + need > room)
            break;
        label[n++] = *p == '\n' || *p == '\t' ? ' ' : *p;
        if (*p == '&')
            label[n++] = '&';
    }
    /* Never cut inside a UTF-8 sequence. */
    while (n > 0 && ((unsigned char)label[n - 1] & 0xC0) == 0x80)
        n--;
    if (n > 0 && ((unsigned char)label[n - 1] & 0xC0) == 0xC0)
        n--;
    label[n] = '\0';
    free(clean);
    snprintf(footer, sizeof footer, "&L%s%s", label, tail);

    worksheet_set_paper(s->ws, (uint8_t)paper);
    if (list) {
        /* The columns' printed width at 100 %: Calibri 11 draws a column
         * of w characters in 7 w + 5 pixels at 96 dpi (0.2646 mm each),
         * the widths xb_fit_columns() set. */
        double mm = 0;
        for (int i = 0; i < XB_MAX_COLS; i++) {
            if (s->width[i] == 0)
                continue;
            unsigned w = s->width[i] < 6 ? 6 : s->width[i];
            w = (w > XB_WIDTH_MAX ? XB_WIDTH_MAX : w) + 2;
            mm += (7.0 * w + 5) * 0.2646;
        }
        /* Landscape, margins of 0.5 inch left and right. */
        double page = (paper == XB_PAPER_LETTER ? 279.4 : 297.0) - 25.4;
        worksheet_set_landscape(s->ws);
        if (mm * 7.0 <= page * 11.0) {
            /* One page wide keeps 11 pt text at 7 pt or more. */
            worksheet_fit_to_pages(s->ws, 1, 0);
        } else {
            /* Too wide for that: 7 pt, several pages wide, the first
             * column (the call's or the row's key) on each. */
            worksheet_set_print_scale(s->ws, 64);
            note(s, worksheet_repeat_columns(s->ws, 0, 0), 0);
        }
        note(s, worksheet_repeat_rows(s->ws, header_row, header_row), 0);
    } else {
        worksheet_set_portrait(s->ws);
        worksheet_fit_to_pages(s->ws, 1, (uint16_t)tall);
    }
    worksheet_set_margins(s->ws, 0.5, 0.5, 0.75, 0.75);
    note(s, worksheet_set_footer(s->ws, footer), 0);
    if (draft)
        note(s, worksheet_set_header(s->ws, "&C&\"-,Bold\"&14DRAFT "
                                     "- not an invoice, not for booking"), 0);
}

double xb_number(const char *text)
{
    static const double pow10[] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
    };
    const char *p = text;
    uint64_t m = 0;
    int neg = 0, dot = 0, scale = 0, digits = 0;

    if (text == NULL || *text == '\0')
        return 0;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (*p == '\0')
        return 0;
    for (; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9') {
            if (m != 0 || *p != '0')
                digits++;
            if (digits > 15 || scale == 22)
                break;                  /* beyond the exact path */
            m = m * 10 + (uint64_t)(*p - '0');
            scale += dot;
        } else if (*p == '.' && !dot) {
            dot = 1;
        } else {
            break;
        }
    }
    if (*p != '\0') {
        /* Too many digits, or an exponent: let strtod round (C locale). */
        char *end;
        double v = strtod(text, &end);
        return *end == '\0' ? v : 0;
    }
    /* m < 10^15 is exact, and so is 10^scale: the quotient is the double
     * nearest to the decimal value, as strtod would give. */
    double v = (double)m / pow10[scale];
    return neg ? -v : v;
}

ac_status xb_stream(PGconn *conn, const char *sql, int nparams,
                    const char *const *params, xb_row_fn fn, void *ctx,
                    char *err)
{
    ac_status rc = AC_OK;
    PGresult *res;

    if (!db_send_query(conn, sql, nparams, params))
        return ac_fail(err, PQstatus(conn) == CONNECTION_OK ?
                       AC_EINTERNAL : AC_EUNAVAIL, "database: %s",
                       PQerrorMessage(conn));
    if (!PQsetSingleRowMode(conn))
        rc = ac_fail(err, AC_EINTERNAL, "database: cannot use single-row "
                     "mode");
    /* Always read to the end: the connection must be idle afterwards. */
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE) {
            if (rc == AC_OK)
                rc = fn(ctx, res, err);
        } else if (st != PGRES_TUPLES_OK && rc == AC_OK) {
            rc = db_status_of(conn, res);
            ac_fail(err, rc, "database: %s", PQresultErrorMessage(res));
            size_t n = err ? strlen(err) : 0;
            while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
                err[--n] = '\0';
        }
        PQclear(res);
    }
    return rc;
}

time_t xb_month_start(int year, int month)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = 1;
    return timegm(&tm);
}

/* -------------------------------------------------------- deflate level
 *
 * libxlsxwriter 1.1.4 compresses every part of a workbook with zlib's
 * default level (6) and has no option for another one.  It adds each part
 * through minizip's zipOpenNewFileInZip4_64(), which it calls from its
 * shared library through the dynamic linker.  This file defines a function
 * of that name in acbill itself: the dynamic linker resolves
 * libxlsxwriter's call to it (the executable comes first in the lookup
 * order), and it calls minizip's own function (dlsym RTLD_NEXT) with the
 * level chosen here.  Nothing else of the call changes.
 *
 * Level 1 deflates the workbooks' XML about three times faster than
 * level 6 and makes the files about a third larger (docs/performance.md).
 * The output stays byte-for-byte reproducible: the level is one more
 * fixed input.  If libxlsxwriter were built with its own bundled minizip
 * instead of the system's, its calls would not come here and the files
 * would simply keep level 6; tests/reports_test.c checks the level in the
 * written zip headers, so such a build shows up as a failing test rather
 * than as a silent slowdown.
 *
 * It lives in this file so that every program that writes a workbook
 * links it. */

#define ZIP_PARAMERROR (-102)   /* minizip's "bad parameter" */

static atomic_int deflate_level = REPORT_DEFLATE_DEFAULT;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static void *real_open;         /* minizip's function, from dlsym */

static void resolve(void)
{
    real_open = dlsym(RTLD_NEXT, "zipOpenNewFileInZip4_64");
}

void report_set_deflate_level(int level)
{
    if (level < 1 || level > 9)
        level = REPORT_DEFLATE_DEFAULT;
    atomic_store(&deflate_level, level);
}

int report_deflate_level(void)
{
    return atomic_load(&deflate_level);
}

/* minizip's prototype (zip.h), with its opaque types spelled out:
 * zipFile and zip_fileinfo * are pointers, uInt is unsigned int, uLong is
 * unsigned long.  There is no header for it here: only the dynamic linker
 * calls it, on libxlsxwriter's behalf. */
int zipOpenNewFileInZip4_64(void *file, const char *filename,
                            const void *zipfi, const void *extrafield_local,
                            unsigned size_extrafield_local,
                            const void *extrafield_global,
                            unsigned size_extrafield_global,
                            const char *comment, int method, int level,
                            int raw, int window_bits, int mem_level,
                            int strategy, const char *password,
                            unsigned long crc_for_crypting,
                            unsigned long version_made_by,
                            unsigned long flag_base, int zip64)
{
    __typeof__(&zipOpenNewFileInZip4_64) real;

    pthread_once(&resolve_once, resolve);
    if (real_open == NULL)
        return ZIP_PARAMERROR;
    /* A function pointer from dlsym's void *: POSIX guarantees the
     * conversion; the memcpy keeps ISO C's warning about it quiet. */
    _Static_assert(sizeof real == sizeof real_open, "pointer sizes");
    memcpy(&real, &real_open, sizeof real);
    if (method != 0)            /* 0 is "stored": leave it uncompressed */
        level = atomic_load(&deflate_level);
    return real(file, filename, zipfi, extrafield_local,
                size_extrafield_local, extrafield_global,
                size_extrafield_global, comment, method, level, raw,
                window_bits, mem_level, strategy, password, crc_for_crypting,
                version_made_by, flag_base, zip64);
}

/* ------------------------------------------------------ temporary files
 *
 * libxlsxwriter writes every part of a workbook (each sheet's rows in
 * constant_memory mode, then each part's XML) into a temporary file from
 * lxw_tmpfile(), reads it back to compress it, and closes it: about 25
 * files per workbook, nearly all of a few kilobytes.  Creating and
 * unlinking them was most of the kernel time of a run of many small
 * invoices (docs/performance.md), and the big ones went through stdio's
 * 4 KiB buffer, one system call per 4 KiB.
 *
 * lxw_tmpfile() is called through the dynamic linker like the function
 * above, so acbill defines it too.  Its file is a stdio stream
 * (fopencookie) that holds its content in memory up to tmp_limit bytes
 * and moves it to an unlinked file in the directory libxlsxwriter gives
 * (the workbook's tmpdir) when it outgrows that, with a 64 KiB stdio
 * buffer either way.  It reads, writes and seeks like the file it
 * replaces, so the workbook's bytes do not change (tests/reports_test.c
 * writes a workbook both ways and compares them).  Memory stays bounded:
 * a file holds at most tmp_limit bytes and its buffer, and a workbook
 * keeps one file per sheet open (five for an invoice; more only when its
 * calls continue on further Calls sheets, which are large and so moved
 * to disk) plus the part being compressed. */

#define TMP_LIMIT_DEFAULT (512 * 1024)
#define TMP_IOBUF (64 * 1024)

typedef struct {
    char *mem;          /* the content while it is in memory */
    size_t len, cap;    /* bytes of content, bytes allocated */
    int fd;             /* the file it moved to, or -1 */
    off_t pos;          /* where the next read or write goes */
    off_t size;         /* the content's length once in the file */
    char *iobuf;        /* the stream's buffer, freed at close */
    char dir[];         /* where to move it */
} tmp_file;

static atomic_ulong tmp_opened, tmp_spilled;
static atomic_size_t tmp_limit = TMP_LIMIT_DEFAULT;

void xb_tmp_stats(unsigned long *opened, unsigned long *spilled)
{
    *opened = atomic_load(&tmp_opened);
    *spilled = atomic_load(&tmp_spilled);
}

void xb_tmp_set_limit(size_t bytes)
{
    atomic_store(&tmp_limit, bytes ? bytes : (size_t)TMP_LIMIT_DEFAULT);
}

/* Write n bytes at offset off of fd: 0, or -1 with errno. */
static int tmp_pwrite_all(int fd, const char *buf, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, buf, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

/* Move the content to an unlinked file in t->dir. */
static int tmp_spill(tmp_file *t)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/.acbill-xlsx-XXXXXX", t->dir) >=
        (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    if (tmp_pwrite_all(fd, t->mem, t->len, 0) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    free(t->mem);
    t->mem = NULL;
    t->cap = 0;
    t->size = (off_t)t->len;
    t->fd = fd;
    atomic_fetch_add(&tmp_spilled, 1);
    return 0;
}

/* Write failures of this thread's temporary files.  libxlsxwriter does
 * not check its writes to them; xb_close() compares this count with the
 * one at xb_open() and refuses the workbook if a write failed (a
 * workbook is written by one thread from open to close). */
static _Thread_local unsigned long tmp_failures;

/* Write n bytes of buf at t->pos: n, or 0 on failure. */
static ssize_t tmp_put(tmp_file *t, const char *buf, size_t n)
{
    size_t end = (size_t)t->pos + n;

    if (t->fd < 0 && end > atomic_load(&tmp_limit) && tmp_spill(t) != 0)
        return 0;
    if (t->fd >= 0) {
        if (tmp_pwrite_all(t->fd, buf, n, t->pos) != 0)
            return 0;
        t->pos += (off_t)n;
        if (t->pos > t->size)
            t->size = t->pos;
        return (ssize_t)n;
    }
    if (end > t->cap) {
        size_t cap = t->cap ? t->cap : 16384;
        while (cap < end)
            cap *= 2;
        char *mem = realloc(t->mem, cap);
        if (mem == NULL)
            return 0;
        t->mem = mem;
        t->cap = cap;
    }
    if ((size_t)t->pos > t->len)    /* a hole after a seek: zeros */
        memset(t->mem + t->len, 0, (size_t)t->pos - t->len);
    memcpy(t->mem + t->pos, buf, n);
    t->pos = (off_t)end;
    if (end > t->len)
        t->len = end;
    return (ssize_t)n;
}

/* fopencookie's write: the bytes written, 0 on error (counted). */
static ssize_t tmp_write(void *cookie, const char *buf, size_t n)
{
    ssize_t w = tmp_put(cookie, buf, n);
    if (w == 0 && n > 0)
        tmp_failures++;
    return w;
}

unsigned long xb_tmp_failures(void)
{
    return tmp_failures;
}

/* fopencookie's read: the bytes read, 0 at the end, -1 on error. */
static ssize_t tmp_read(void *cookie, char *buf, size_t n)
{
    tmp_file *t = cookie;

    if (t->fd >= 0) {
        ssize_t r;
        do
            r = pread(t->fd, buf, n, t->pos);
        while (r < 0 && errno == EINTR);
        if (r > 0)
            t->pos += r;
        return r;
    }
    if ((size_t)t->pos >= t->len)
        return 0;
    if (n > t->len - (size_t)t->pos)
        n = t->len - (size_t)t->pos;
    memcpy(buf, t->mem + t->pos, n);
    t->pos += (off_t)n;
    return (ssize_t)n;
}

/* fopencookie's seek: 0 with the new position in *off, or -1. */
static int tmp_seek(void *cookie, off64_t *off, int whence)
{
    tmp_file *t = cookie;
    off_t base = whence == SEEK_SET ? 0
               : whence == SEEK_CUR ? t->pos
               : whence == SEEK_END ? (t->fd >= 0 ? t->size : (off_t)t->len)
               : -1;
    if (base < 0 || base + *off < 0) {
        errno = EINVAL;
        return -1;
    }
    t->pos = base + *off;
    *off = t->pos;
    return 0;
}

static int tmp_close(void *cookie)
{
    tmp_file *t = cookie;
    int rc = t->fd >= 0 ? close(t->fd) : 0;
    free(t->mem);
    free(t->iobuf);     /* stdio is done with it: close comes last */
    free(t);
    return rc;
}

FILE *xb_tmpfile(const char *tmpdir)
{
    static const cookie_io_functions_t io = {
        .read = tmp_read, .write = tmp_write, .seek = tmp_seek,
        .close = tmp_close,
    };
    const char *dir = tmpdir && *tmpdir ? tmpdir : P_tmpdir;
    size_t dlen = strlen(dir);
    tmp_file *t = calloc(1, sizeof *t + dlen + 1);
    char *iobuf = malloc(TMP_IOBUF);
    FILE *f = NULL;

    if (t != NULL && iobuf != NULL) {
        t->fd = -1;
        t->iobuf = iobuf;
        memcpy(t->dir, dir, dlen + 1);
        f = fopencookie(t, "w+", io);
    }
    if (f == NULL) {
        free(iobuf);
        free(t);
        return NULL;
    }
    setvbuf(f, iobuf, _IOFBF, TMP_IOBUF);
    atomic_fetch_add(&tmp_opened, 1);
    return f;
}

/* libxlsxwriter's prototype (xlsxwriter/utility.h): every temporary file
 * of a workbook comes here. */
FILE *lxw_tmpfile(char *tmpdir)
{
    return xb_tmpfile(tmpdir);
}
