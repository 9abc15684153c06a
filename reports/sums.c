/* sums.c: the SHA256SUMS file of an output directory (see report.h). */
#include "report.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver/outfile.h"
#include "sha256.h"

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* 1 when name ends in one of the delivered extensions: workbooks, the
 * journals' CSV twins (docs/billing-rules.md 4.5) and the customer documents' PDF and
 * e-invoice XML (docs/billing-rules.md 4.4). */
static int delivered_name(const char *name, size_t len)
{
    static const char *const ext[] = { ".xlsx", ".csv", ".pdf", ".xml" };
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t n = strlen(ext[i]);
        if (len > n && strcmp(name + len - n, ext[i]) == 0)
            return 1;
    }
    return 0;
}

/* The regular files of dir that delivered_name() names, not starting
 * with '.', sorted. */
static ac_status list_xlsx(const char *dir, char ***out, size_t *count,
                           char *err)
{
    char path[PATH_MAX];
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    struct stat st;
    ac_status rc = AC_OK;

    DIR *d = opendir(dir);
    if (d == NULL)
        return ac_fail(err, AC_ENOINPUT, "cannot open directory %s: %s",
                       dir, strerror(errno));
    while (rc == AC_OK && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || !delivered_name(e->d_name, len))
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >=
            sizeof path || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (strpbrk(e->d_name, "\n\\") != NULL) {
            rc = ac_fail(err, AC_EDATA, "%s: file name '%s' cannot be "
                         "listed in SHA256SUMS", dir, e->d_name);
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (nn == NULL) {
                rc = ac_fail(err, AC_EOSERR, "out of memory");
                break;
            }
            names = nn;
            cap = ncap;
        }
        names[n] = strdup(e->d_name);
        if (names[n] == NULL) {
            rc = ac_fail(err, AC_EOSERR, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc != AC_OK) {
        free_names(names, n);
        return rc;
    }
    if (n > 0)
        qsort(names, n, sizeof *names, by_name);
    *out = names;
    *count = n;
    return AC_OK;
}

ac_status report_write_sha256sums(const char *dir, char *err)
{
    char **names = NULL;
    size_t n = 0;
    char path[PATH_MAX], hex[65];
    outfile o;
    FILE *f;
    ac_status rc;

    rc = list_xlsx(dir, &names, &n, err);
    if (rc != AC_OK)
        return rc;
    /* A fresh unpredictable temporary, given the documents' mode and
     * renamed over SHA256SUMS (outfile.h). */
    rc = outfile_open(&o, dir, "SHA256SUMS", err);
    if (rc != AC_OK) {
        free_names(names, n);
        return rc;
    }
    f = outfile_stream(&o);
    if (f == NULL)
        rc = ac_fail(err, AC_EOSERR, "fdopen: %s", strerror(errno));
    for (size_t i = 0; rc == AC_OK && i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        rc = sha256_file(path, hex, err);
        if (rc == AC_OK && fprintf(f, "%s  %s\n", hex, names[i]) < 0)
            rc = ac_fail(err, AC_EIO, "cannot write %s: %s", o.temp,
                         strerror(errno));
    }
    free_names(names, n);
    if (rc == AC_OK)
        rc = outfile_commit(&o, err);
    else
        outfile_discard(&o);
    return rc;
}
