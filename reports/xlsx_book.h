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
 * formula) cleaned by xb_clean(): valid XML, at most Excel's 32,767
 * characters, a cut marked.  Document properties go through the same
 * cleaner, cut at XB_PROP_MAX. */
#ifndef AC_XLSX_BOOK_H
#define AC_XLSX_BOOK_H

#include <libpq-fe.h>
#include <limits.h>
#include <time.h>
#include <xlsxwriter.h>

#include "status.h"

#define XB_MAX_COLS 32
#define XB_WIDTH_MAX 60         /* the widest column, in characters */
#define XB_MAX_CURRENCIES 64
#define XB_PROPS 5              /* title, subject, category, keywords,
                                   comments */

/* Excel's longest cell text, in characters (UTF-16 units). */
#define XB_STR_MAX 32767

/* What ends a text that xb_clean() cut. */
#define XB_CUT_MARK " [...]"

/* The longest document property (title, subject, ...), in UTF-16 units as
 * xb_clean() counts them: longer ones are cut on a character boundary and
 * end in XB_CUT_MARK.  The Open XML standard sets no limit; 255 keeps a
 * title readable where Office and file managers show it, as long as
 * Excel's longest names (defined names, comments) are. */
#define XB_PROP_MAX 255

/* Paper sizes of xb_print_setup() (Excel's codes). */
#define XB_PAPER_LETTER 1
#define XB_PAPER_A4 9

/* Number formats of one currency: 2 and 4 decimals, and 2 decimals bold
 * (for totals). */
typedef struct {
    char code[4];
    int minor_unit;             /* decimals of m2, m2_bold */
    lxw_format *m2, *m4, *m2_bold;
} xb_money;

/* Document properties; every string must stay valid until xb_open()
 * returns (they are copied, cleaned by xb_clean() and cut to XB_PROP_MAX
 * with XB_CUT_MARK).  Build them whole (xb_printf()): a fixed buffer
 * would cut them without a mark, perhaps inside a character. */
typedef struct {
    const char *title, *subject, *category, *keywords, *comments;
    time_t created;         /* fixed, for byte-identical output */
    const char *tmpdir;     /* temporary files; NULL: the output's dir */
} xb_props;

typedef struct {
    lxw_workbook *wb;
    char path[PATH_MAX];
    char tmpdir[PATH_MAX];
    /* Property strings (cleaned copies), kept until the workbook is
     * closed. */
    char *prop[XB_PROPS];
    char author[16], company[16];
    lxw_error lerr;         /* first libxlsxwriter error, or 0 */
    unsigned long tmp_failures; /* xb_tmp_failures() at xb_open() */
    char where[128];        /* where it happened */
    /* The fixed formats, created in this order by xb_open(). */
    lxw_format *title_f, *section, *header, *bold, *italic, *integer,
               *integer_bold, *datetime, *decimal4, *wrap, *date, *draft;
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
    unsigned num_width[XB_MAX_COLS];    /* widest number so far, as
                                           shown with its format */
} xb_sheet;

/* The text cleaner of every cell and document property: text (NULL is
 * "") as valid XML 1.0 in UTF-8 that Excel accepts.  Invalid UTF-8, the
 * C0 control characters but tab and line feed, DEL and the C1 controls
 * become U+FFFD; CR LF becomes LF and a lone CR LF.  Text longer than
 * max_units UTF-16 units (Excel's count; max_units >= 6) is cut so that
 * it ends in XB_CUT_MARK and is max_units long.  Writes the result and a
 * NUL to out when out is not NULL (it must hold the returned length + 1),
 * and its length in UTF-16 units to *units when units is not NULL.
 * Returns the result's length in bytes. */
size_t xb_clean(const char *text, size_t max_units, char *out,
                size_t *units);

/* xb_clean() into a new malloc'd string; NULL when out of memory. */
char *xb_clean_dup(const char *text, size_t max_units);

/* printf() into a new malloc'd string of whatever length it needs (for
 * document properties, which xb_open() cuts); NULL when out of memory. */
char *xb_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Page set-up of sheet s (docs/billing-rules.md 4.3, "set up for printing").  list: a
 * list sheet (landscape, the row header_row repeated on every page; one
 * page wide when that keeps its text at 7 points or more, else printed at
 * 64 %% (7 points) on several pages wide with the first column repeated
 * on each; the widths are those xb_fit_columns() set); otherwise a summary (portrait, one page wide and at most
 * tall pages tall, 0: as many as needed).  The footer shows doc_label
 * (the document or statement number; NULL or "" for none) on the left,
 * the sheet's name in the centre and "Page n of m" on the right; draft
 * puts "DRAFT" in the header.  paper: XB_PAPER_A4 or XB_PAPER_LETTER.
 * doc_label is cleaned and its '&' escaped; it is shortened to keep the
 * footer within Excel's 255 characters. */
void xb_print_setup(xb_sheet *s, int list, lxw_row_t header_row,
                    unsigned tall, const char *doc_label, int draft,
                    int paper);

/* Key-value rows of a document header: the label in column A, the value
 * in column B, then the next row.  xb_label: text in format f (NULL:
 * plain); xb_label_note: a remark (italic); xb_label_dec: decimal text
 * in format f; xb_label_date: a date 'YYYY-MM-DD' as an Excel date. */
void xb_label(xb_sheet *s, const char *label, const char *value,
              lxw_format *f);
void xb_label_note(xb_sheet *s, const char *label, const char *note);
void xb_label_dec(xb_sheet *s, const char *label, const char *value,
                  lxw_format *f);
void xb_label_date(xb_sheet *s, const char *label, const char *date);

/* A date 'YYYY-MM-DD' (NULL: nothing) as an Excel date in column col. */
void xb_date(xb_sheet *s, lxw_col_t col, const char *date);

/* Multi-line text (an address) under label, one row a line (the label
 * on the first), the first line in format first: at most max_lines rows,
 * the rest joined to the last with ","; empty lines skipped; nothing for
 * NULL. */
void xb_label_lines(xb_sheet *s, const char *label, const char *text,
                    lxw_format *first, int max_lines);

/* "France (FR)", the code alone when it has no name, "" for NULL. */
void xb_country_label(const char *code, char *buf, size_t len);

/* A seller or buyer block: role ("Seller", "Buyer") and the name in
 * bold, the address lines, the country by name and code, "<role>'s tax
 * ID", and extra (payment details, an email) under extra_label; fields
 * NULL are left out.  name NULL: the row "<role>: none" when none is not
 * NULL, else nothing. */
void xb_party(xb_sheet *s, const char *role, const char *name,
              const char *address, const char *country, const char *tax_id,
              const char *extra_label, const char *extra,
              const char *none);

/* The paper of a document whose seller is in country (ISO 3166 alpha-2):
 * US Letter in the US and Canada, A4 elsewhere (and for NULL). */
int xb_paper_of(const char *country);

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

/* Like xb_str(), for a long text in a column of XB_WIDTH_MAX characters:
 * wrapped (the book's wrap format), the row made tall enough for it (at
 * most Excel's 409 points), so that it is read, not clipped.  Call it
 * before any other cell of the row (constant_memory writes a row once). */
void xb_str_wrapped(xb_sheet *s, lxw_col_t col, const char *text);

/* For a sheet whose columns the caller sizes itself: width at least
 * min_width, and wide enough for the widest number written to col, so
 * that no number shows as ###. */
double xb_number_column_width(const xb_sheet *s, lxw_col_t col,
                              double min_width);

/* Like xb_str(), for a title or note that may run over the next columns:
 * it does not count towards the column's width. */
void xb_title(xb_sheet *s, lxw_col_t col, const char *text, lxw_format *f);

/* Move the cursor to the next row (rows are never revisited). */
void xb_next(xb_sheet *s);

/* Write names[0..n-1] as a header row at the current row and move on. */
void xb_header(xb_sheet *s, const char *const *names, int n);

/* xb_header() in a row two lines tall, for headers that wrap in columns
 * narrower than their text (the Summary's tables). */
void xb_header_tall(xb_sheet *s, const char *const *names, int n);

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
