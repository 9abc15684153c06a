/* copyline.h: one line of PostgreSQL's COPY text format, built in a
 * growing buffer (for the job's spool and the sample's loads).
 *
 * Appending never fails on its own: when memory runs out the line is
 * marked failed, later appends do nothing, and the caller checks
 * copy_line.failed once the line is complete.  A zeroed copy_line is an
 * empty line; cl_free() releases it. */
#ifndef AC_COPYLINE_H
#define AC_COPYLINE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *b;            /* the line so far (not NUL-terminated) */
    size_t n, cap;      /* bytes in it, bytes allocated */
    int failed;         /* an append ran out of memory */
} copy_line;

/* Empty the line for the next one (keeping its buffer). */
void cl_reset(copy_line *l);

/* Release the buffer; the line is empty and usable again. */
void cl_free(copy_line *l);

/* Append n bytes as they are. */
void cl_bytes(copy_line *l, const char *s, size_t n);

/* Append text or one character as they are: for values that cannot hold
 * a backslash, tab, newline or carriage return (numbers, codes, uuids,
 * timestamps). */
void cl_str(copy_line *l, const char *s);
void cl_char(copy_line *l, char c);

/* Append SQL NULL (\N). */
void cl_null(copy_line *l);

/* Append text as one field, escaped (backslash, tab, newline, carriage
 * return); NULL appends \N.  db_copy_unescape() (db.h) undoes it. */
void cl_field(copy_line *l, const char *text);

/* Append an integer in decimal. */
void cl_i64(copy_line *l, int64_t v);

/* Append 1/10000 units with four decimals, as money_format4(). */
void cl_money4(copy_line *l, int64_t units);

#endif
