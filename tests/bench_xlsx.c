/* bench_xlsx.c: the workbook part of the benchmark's floor.
 *
 * Writes N rows of the Calls sheet's 15 columns (SPEC section 4) in
 * libxlsxwriter's constant_memory mode, with the same kinds of cells the
 * job writes (strings, a date-time, integers, 4-decimal money), and
 * nothing else: no database, no rating.  usage: bench_xlsx N FILE */
#include <stdio.h>
#include <stdlib.h>
#include <xlsxwriter.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_xlsx ROWS FILE\n");
        return 64;
    }
    long rows = atol(argv[1]);
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
    static const char *const outcomes[] = { "pool", "billed", "exempt",
                                            "split", "zero", "rejected" };
    char uuid[40], org[32], dest[32];
    lxw_row_t row = 0;
    int sheet = 0;

    for (long i = 0; i < rows; i++) {
        if (ws == NULL || row == LXW_ROW_MAX) {
            char name[32];
            snprintf(name, sizeof name, sheet ? "Calls (%d)" : "Calls",
                     sheet + 1);
            ws = workbook_add_worksheet(wb, name);
            sheet++;
            for (int c = 0; c < 15; c++)
                worksheet_write_string(ws, 0, (lxw_col_t)c, "Header", NULL);
            row = 1;
        }
        snprintf(uuid, sizeof uuid, "00000000-0000-4000-8000-%012ld", i);
        snprintf(org, sizeof org, "user%ld", i % 97);
        snprintf(dest, sizeof dest, "+4420%08ld", i % 100000000);
        lxw_datetime dt = { 2026, 10, 1 + (int)(i % 28), 9, 0,
                            (double)(i % 60) };
        worksheet_write_string(ws, row, 0, uuid, NULL);
        worksheet_write_datetime(ws, row, 1, &dt, date);
        worksheet_write_string(ws, row, 2, org, NULL);
        worksheet_write_string(ws, row, 3, dest, NULL);
        worksheet_write_string(ws, row, 4, "GB", NULL);
        worksheet_write_string(ws, row, 5, "geographic", NULL);
        worksheet_write_number(ws, row, 6, (double)(i % 3600), NULL);
        worksheet_write_number(ws, row, 7, (double)(i % 60 + 1), NULL);
        worksheet_write_string(ws, row, 8, outcomes[i % 6], NULL);
        worksheet_write_number(ws, row, 9, 0, NULL);
        worksheet_write_number(ws, row, 10, (double)(i % 60 + 1), NULL);
        worksheet_write_number(ws, row, 11, 0.03, money);
        worksheet_write_number(ws, row, 12, 0, money);
        worksheet_write_number(ws, row, 13, 0.03 * (double)(i % 60 + 1),
                               money);
        worksheet_write_string(ws, row, 14, "", NULL);
        row++;
    }
    return workbook_close(wb) == LXW_NO_ERROR ? 0 : 70;
}
