/* copyline.c: see copyline.h. */
#include "copyline.h"

#include <stdlib.h>
#include <string.h>

#include "money.h"

void cl_reset(copy_line *l)
{
    l->n = 0;
    l->failed = 0;
}

void cl_free(copy_line *l)
{
    free(l->b);
    l->b = NULL;
    l->n = l->cap = 0;
    l->failed = 0;
}

void cl_bytes(copy_line *l, const char *s, size_t n)
{
    if (l->failed)
        return;
    if (n > l->cap - l->n) {
        size_t cap = l->cap ? l->cap : 512;
        while (cap - l->n < n) {
            if (cap > SIZE_MAX / 2) {
                l->failed = 1;
                return;
            }
            cap *= 2;
        }
        char *b = realloc(l->b, cap);
        if (b == NULL) {
            l->failed = 1;
            return;
        }
        l->b = b;
        l->cap = cap;
    }
    memcpy(l->b + l->n, s, n);
    l->n += n;
}

void cl_str(copy_line *l, const char *s)
{
    cl_bytes(l, s, strlen(s));
}

void cl_char(copy_line *l, char c)
{
    cl_bytes(l, &c, 1);
}

void cl_null(copy_line *l)
{
    cl_bytes(l, "\\N", 2);
}

void cl_field(copy_line *l, const char *text)
{
    if (text == NULL) {
        cl_null(l);
        return;
    }
    /* Runs without special characters go in one piece. */
    for (const char *run = text;; text++) {
        const char *esc = *text == '\\' ? "\\\\" : *text == '\t' ? "\\t"
                        : *text == '\n' ? "\\n" : *text == '\r' ? "\\r"
                        : NULL;
        if (esc == NULL && *text != '\0')
            continue;
        cl_bytes(l, run, (size_t)(text - run));
        if (*text == '\0')
            return;
        cl_bytes(l, esc, 2);
        run = text + 1;
    }
}

void cl_i64(copy_line *l, int64_t v)
{
    char buf[24], *e = buf + sizeof buf, *p = e;
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do
        *--p = (char)('0' + a % 10);
    while ((a /= 10) != 0);
    if (v < 0)
        *--p = '-';
    cl_bytes(l, p, (size_t)(e - p));
}

void cl_money4(copy_line *l, int64_t units)
{
    char buf[32];
    money_format4(units, buf, sizeof buf);
    cl_str(l, buf);
}
