/* xlsx_book.h: helpers shared by the reports/ workbooks (internal to
 * reports/, not part of the public API in report.h).
 *
 * An xb_book wraps one libxlsxwriter workbook in constant_memory mode with
 * a fixed set of formats; an xb_sheet is a worksheet with a row cursor
 * that only moves forward (constant_memory flushes a row once the next
 * one is written).  Writes never fail individually: the first
 * libxlsxwriter error is remembered in the book (later writes are then
 * skipped) and xb_check() turns it into an ac_status.  Tenant-supplied
 * text always goes through xb_str(), which writes a string cell (never a
 * formula), replaces invalid UTF-8 with U+FFFD and truncates to Excel's
 * 32,767 characters. */
#ifndef AC_XLSX_BOOK_H
#define AC_XLSX_BOOK_H

#include <libpq-fe.h>
#include <limits.h>
#include <time.h>
#include <xlsxwriter.h>

#include "status.h"

#define XB_MAX_COLS 32
#define XB_MAX_CURRENCIES 64

/* Number formats of one currency: 2 and 4 decimals, and 2 decimals bold
 * (for totals). */
typedef struct {
    char code[4];
    int minor_unit;             /* decimals of m2, m2_bold */
    lxw_format *m2, *m4, *m2_bold;
} xb_money;

/* Document properties; every string must stay valid until xb_open()
 * returns (they are copied). */
typedef struct {
    const char *title, *subject, *category, *keywords, *comments;
    time_t created;         /* fixed, for byte-identical output */
    const char *tmpdir;     /* temporary files; NULL: the output's dir */
} xb_props;

typedef struct {
    lxw_workbook *wb;
    char path[PATH_MAX];
    char tmpdir[PATH_MAX];
    /* Property strings, kept alive until the workbook is closed. */
    char title[512], subject[512], category[64], keywords[256],
         comments[512], author[16], company[16];
    lxw_error lerr;         /* first libxlsxwriter error, or 0 */
    unsigned long tmp_failures; /* xb_tmp_failures() at xb_open() */
    char where[128];        /* where it happened */
    /* The fixed formats, created in this order by xb_open(). */
    lxw_format *title_f, *section, *header, *bold, *italic, *integer,
               *integer_bold, *datetime, *decimal4, *wrap;
    xb_money money[XB_MAX_CURRENCIES];
    int nmoney;
    char *buf;              /* scratch for sanitised strings */
    size_t bufcap;
} xb_book;

typedef struct {
    xb_book *book;
    lxw_worksheet *ws;
    char name[32];
    lxw_row_t row;          /* the row being written */
    unsigned width[XB_MAX_COLS];    /* widest content so far, in chars */
} xb_sheet;

/* Create the workbook at path (constant_memory, temporary files in path's
 * directory) with the fixed formats and the properties p.  On failure the
 * book is unusable and AC_ECANTCREAT or AC_EOSERR is returned. */
ac_status xb_open(xb_book *b, const char *path, const xb_props *p,
                  char *err);

/* Close the workbook, writing the file unless failed is non-zero.  When
 * failed is set, or writing fails (a temporary file included), the file
 * at b->path is removed.
 * Returns AC_OK when the file was written, otherwise the first error
 * (failed's own code is the caller's to keep; this returns AC_OK for it
 * when the close itself went well). */
ac_status xb_close(xb_book *b, int failed, char *err);

/* AC_OK, or AC_EINTERNAL with the first libxlsxwriter error in err. */
ac_status xb_check(xb_book *b, char *err);

/* The money formats of currency (ISO 4217 code) with minor_unit decimals
 * (0 to 4, the currency's ISO 4217 minor unit; anything else is 2): m2
 * and m2_bold show money rounded to the minor unit, m4 four decimals.
 * USD, EUR and GBP get Excel's own currency formats; another code of three
 * letters A-Z is shown as `#,##0.00 "XXX"` (with its decimals); anything
 * else as plain `#,##0.00`.  Formats are
 * created on first use, so call order decides their index: callers must
 * use currencies in an order that depends only on the ledger.  NULL when
 * XB_MAX_CURRENCIES are in use (the caller falls back to plain numbers). */
const xb_money *xb_money_of(xb_book *b, const char *currency,
                            int minor_unit);

/* Add worksheet name (a valid, unique sheet name) with its cursor at
 * row 0.  AC_EINTERNAL when libxlsxwriter refuses it. */
ac_status xb_sheet_add(xb_book *b, xb_sheet *s, const char *name,
                       char *err);

/* Write to column col of the current row.  xb_str: text as a string cell
 * (NULL writes nothing); xb_num: a number; xb_dec: decimal text from
 * PostgreSQL (numeric or int) as a number, NULL or "" writes nothing;
 * xb_ts: timestamp text "YYYY-MM-DD HH:MM:SS[.ffffff]" as an Excel
 * date-time, NULL writes nothing. */
void xb_str(xb_sheet *s, lxw_col_t col, const char *text, lxw_format *f);
void xb_num(xb_sheet *s, lxw_col_t col, double v, lxw_format *f);
void xb_dec(xb_sheet *s, lxw_col_t col, const char *text, lxw_format *f);
void xb_ts(xb_sheet *s, lxw_col_t col, const char *text, lxw_format *f);

/* Like xb_str(), for a title or note that may run over the next columns:
 * it does not count towards the column's width. */
void xb_title(xb_sheet *s, lxw_col_t col, const char *text, lxw_format *f);

/* Move the cursor to the next row (rows are never revisited). */
void xb_next(xb_sheet *s);

/* Write names[0..n-1] as a header row at the current row and move on. */
void xb_header(xb_sheet *s, const char *const *names, int n);

/* Finish a list whose header is at header_row and whose data ends at the
 * row before the cursor: freeze the rows up to the header, put an
 * autofilter on the header and data, and size columns 0..ncols-1. */
void xb_list_finish(xb_sheet *s, lxw_row_t header_row, int ncols);

/* Size columns 0..ncols-1 to their widest content, between min_width and
 * 60 characters. */
void xb_fit_columns(xb_sheet *s, int ncols, unsigned min_width);

/* Remember that column col needs at least width characters. */
void xb_width(xb_sheet *s, lxw_col_t col, unsigned width);

/* A value of a decimal text as a double (exact to the nearest double;
 * locale-independent).  0 for NULL or text that is not a number. */
double xb_number(const char *text);

/* Called for each row of xb_stream(); a non-AC_OK return stops the
 * writing (the rest of the result is still read and discarded). */
typedef ac_status (*xb_row_fn)(void *ctx, const PGresult *row, char *err);

/* Run a parameterised query (text results) in single-row mode and call
 * fn for each row, so that only one row is in memory at a time.  Returns
 * AC_OK, fn's first error, or the database's status (with its message in
 * err) when the query fails, even after some rows were delivered. */
ac_status xb_stream(PGconn *conn, const char *sql, int nparams,
                    const char *const *params, xb_row_fn fn, void *ctx,
                    char *err);

/* The first instant of month (1-12) of year, UTC, as a time_t. */
time_t xb_month_start(int year, int month);

/* A temporary file for reading and writing (mode "w+"), held in memory
 * up to a limit (512 KiB) and moved to an unlinked file in tmpdir (NULL:
 * P_tmpdir) when it outgrows it; it leaves no name behind.  NULL on
 * failure (errno set).  libxlsxwriter gets all its temporary files from
 * it (xlsx_book.c defines lxw_tmpfile()). */
FILE *xb_tmpfile(const char *tmpdir);

/* How many xb_tmpfile()s were opened, and how many moved to a file, since
 * the process started (for tests and measurements). */
void xb_tmp_stats(unsigned long *opened, unsigned long *spilled);

/* How many writes to the calling thread's xb_tmpfile()s have failed
 * (a file that could not be created or grown).  xb_close() refuses a
 * workbook during which this grew: libxlsxwriter does not check. */
unsigned long xb_tmp_failures(void);

/* For tests: the memory limit of one temporary file, in bytes (0 restores
 * the default).  Process-wide; applies to writes after the call. */
void xb_tmp_set_limit(size_t bytes);

#endif
