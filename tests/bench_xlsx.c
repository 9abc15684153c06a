/* bench_xlsx.c: the workbook part of the benchmark's floor.
 *
 * Writes the rows of a billing.rated_calls COPY file (the job's own rated
 * calls) as the Calls sheet's 15 columns (docs/billing-rules.md 4) into one
 * workbook in libxlsxwriter's constant_memory mode: strings as strings,
 * the local start as a date-time, numbers as numbers with a money format,
 * continued on "Calls (2)" past Excel's last row.  Nothing else: no
 * database, no rating, no other sheets.
 *   usage: bench_xlsx RATED_CALLS.copy OUT.xlsx */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xlsxwriter.h>

#define NCOLS 22        /* columns of billing.rated_calls */

/* COPY text: "\N" is NULL; the few escapes are undone in place. */
static char *field(char *f)
{
    if (strcmp(f, "\\N") == 0)
        return NULL;
    char *in = f, *out = f;
    while (*in) {
        if (*in == '\\' && in[1] != '\0') {
            in++;
            *out++ = *in == 't' ? '\t' : *in == 'n' ? '\n' : *in;
            in++;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
    return f;
}

static void str(lxw_worksheet *ws, lxw_row_t r, lxw_col_t c, const char *v)
{
    if (v != NULL)
        worksheet_write_string(ws, r, c, v, NULL);
}

static void num(lxw_worksheet *ws, lxw_row_t r, lxw_col_t c, const char *v,
                lxw_format *f)
{
    if (v != NULL)
        worksheet_write_number(ws, r, c, strtod(v, NULL), f);
}

int main(int argc, char **argv)
{
    static const char *const head[15] = {
        "Usage ID", "Start (local time)", "Organizer", "Destination",
        "Country", "Kind", "Duration (s)", "Minutes", "Outcome",
        "Pool minutes", "Billed minutes", "Rate", "Connection fee", "Amount",
        "Reason"
    };
    if (argc != 3) {
        fprintf(stderr, "usage: bench_xlsx RATED_CALLS.copy OUT.xlsx\n");
        return 64;
    }
    FILE *in = fopen(argv[1], "r");
    if (in == NULL)
        return 66;
    char tmpdir[] = ".";
    lxw_workbook_options opt = { .constant_memory = LXW_TRUE,
                                 .tmpdir = tmpdir };
    lxw_workbook *wb = workbook_new_opt(argv[2], &opt);
    if (wb == NULL)
        return 73;
    lxw_format *date = workbook_add_format(wb);
    format_set_num_format(date, "yyyy-mm-dd hh:mm:ss");
    lxw_format *money = workbook_add_format(wb);
    format_set_num_format(money, "[$$-409]#,##0.0000");
    lxw_worksheet *ws = NULL;
    lxw_row_t row = 0;
    int sheet = 0;
    char *line = NULL, *f[NCOLS];
    size_t cap = 0;
    ssize_t len;

    while ((len = getline(&line, &cap, in)) > 0) {
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        char *p = line;
        for (int i = 0; i < NCOLS; i++) {
            f[i] = p;
            p = p ? strchr(p, '\t') : NULL;
            if (p)
                *p++ = '\0';
        }
        for (int i = 0; i < NCOLS; i++)
            f[i] = f[i] ? field(f[i]) : NULL;
        if (ws == NULL || row == LXW_ROW_MAX) {
            char name[32];
            snprintf(name, sizeof name, sheet ? "Calls (%d)" : "Calls",
                     sheet + 1);
            ws = workbook_add_worksheet(wb, name);
            sheet++;
            for (int c = 0; c < 15; c++)
                worksheet_write_string(ws, 0, (lxw_col_t)c, head[c], NULL);
            row = 1;
        }
        lxw_datetime dt = { 0, 0, 0, 0, 0, 0 };
        if (f[4] != NULL && sscanf(f[4], "%d-%d-%d %d:%d:%lf", &dt.year,
                                   &dt.month, &dt.day, &dt.hour, &dt.min,
                                   &dt.sec) == 6)
            worksheet_write_datetime(ws, row, 1, &dt, date);
        str(ws, row, 0, f[2]);
        str(ws, row, 2, f[5]);
        str(ws, row, 3, f[6]);
        str(ws, row, 4, f[10]);
        str(ws, row, 5, f[11]);
        num(ws, row, 6, f[7], NULL);
        num(ws, row, 7, f[12], NULL);
        str(ws, row, 8, f[8]);
        num(ws, row, 9, f[13], NULL);
        num(ws, row, 10, f[14], NULL);
        num(ws, row, 11, f[15], money);
        num(ws, row, 12, f[16], money);
        num(ws, row, 13, f[17], money);
        str(ws, row, 14, f[9]);
        row++;
    }
    free(line);
    fclose(in);
    return workbook_close(wb) == LXW_NO_ERROR ? 0 : 70;
}
