/* outfile.h: creating output files safely in a folder others may write.
 *
 * Every file acbill writes into the output folder (--out/YYYY-MM, its
 * drafts/) or a file:// delivery folder goes through this module, so that
 * a local user who can write to that folder cannot make the job write
 * anywhere else (issue 20):
 *
 *   - the content is written under a fresh, unpredictable name created
 *     with O_CREAT|O_EXCL|O_NOFOLLOW (mkostemp), or inside a private
 *     directory made by mkdtemp (mode 0700) for libraries that open a
 *     path themselves (libxlsxwriter's fopen): nothing follows a symlink
 *     planted at a temporary name, because no name is reused;
 *   - it is then given its mode (ACBILL_FILE_MODE, default 0640, whatever
 *     the umask), flushed to disk and renamed over the final name: rename
 *     replaces a symlink planted at the final name instead of following
 *     it, and a reader sees the old file or the whole new one;
 *   - the temporaries a killed run leaves (".NAME.tmp-XXXXXX" files and
 *     ".acbill-xlsx-XXXXXX" directories) are removed by outfile_sweep().
 *
 * Usage, for a writer that writes a stream or a file descriptor:
 *
 *     outfile o;
 *     FILE *f;
 *     if (outfile_open(&o, dir, "journal-2026-10.csv", err) != AC_OK)
 *         return AC_ECANTCREAT;
 *     f = outfile_stream(&o);            (or write(o.fd, ...))
 *     ... fprintf(f, ...) ...
 *     rc = ok ? outfile_commit(&o, err) : (outfile_discard(&o), rc);
 *
 * (outfile_commit() flushes and closes the stream and o.fd: never fclose
 * or close them yourself), and for one that opens a path itself
 * (libxlsxwriter):
 *
 *     outfile o;
 *     rc = outfile_open_path(&o, dir, "INV-2026-000001.xlsx", err);
 *     if (rc == AC_OK) rc = write_workbook(o.temp, ...);
 *     rc = rc == AC_OK ? outfile_commit(&o, err) : (outfile_discard(&o), rc);
 *
 * outfile_discard() is safe to call after a failed open or commit and
 * more than once.  All errors are AC_ECANTCREAT (the output cannot be
 * written: 73) unless said otherwise, with the path and reason in err. */
#ifndef AC_OUTFILE_H
#define AC_OUTFILE_H

#include <limits.h>
#include <stdio.h>
#include <sys/types.h>

#include "status.h"

/* The prefix of outfile_open_path()'s private directories. */
#define OUTFILE_PRIVATE_PREFIX ".acbill-xlsx-"

typedef struct {
    char final[PATH_MAX];    /* dir/name: where the file ends up */
    char temp[PATH_MAX];     /* where to write it now */
    char privdir[PATH_MAX];  /* outfile_open_path(): the private
                              * directory holding temp; "" otherwise */
    int fd;                  /* outfile_open(): temp, open for reading and
                              * writing; -1 otherwise */
    FILE *f;                 /* outfile_stream(): a stream on fd, or NULL */
} outfile;

/* Start writing dir/name: creates dir/.<name>.tmp-XXXXXX (random suffix,
 * O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, mode 0600) open read-write in
 * o->fd.  name is a plain file name (no '/' or control character, not
 * starting with '.': AC_EINTERNAL otherwise); dir must exist.  *o is set even on failure (then fd is -1). */
ac_status outfile_open(outfile *o, const char *dir, const char *name,
                       char *err);

/* A stdio stream ("w+") on o->fd, made once and kept in o->f; NULL when
 * o has no fd or out of memory.  outfile_commit()/outfile_discard() close
 * it. */
FILE *outfile_stream(outfile *o);

/* Start writing dir/name with a library that opens a path itself: makes a
 * private directory dir/.acbill-xlsx-XXXXXX (mkdtemp, 0700) and sets
 * o->temp to <that directory>/<name>, which nobody else can create or
 * replace.  o->fd is -1. */
ac_status outfile_open_path(outfile *o, const char *dir, const char *name,
                            char *err);

/* Finish: flush o->f (when made), give the temporary the configured mode
 * (outfile_mode()), flush it to disk, close o->f and o->fd, rename it over o->final, remove
 * the private directory and flush the folder.  On failure the temporary
 * is removed (o is discarded).  AC_ECONFIG for a bad ACBILL_FILE_MODE. */
ac_status outfile_commit(outfile *o, char *err);

/* Give up: close o->f and o->fd, remove the temporary and the private directory. */
void outfile_discard(outfile *o);

/* The mode of every file acbill writes (documents, SHA256SUMS, drafts,
 * file:// deliveries): ACBILL_FILE_MODE as octal digits (0600, 0640 or
 * 0644 and the like: owner read-write required, no execute bits, nothing
 * beyond 0666), default 0640.  AC_ECONFIG with the reason otherwise. */
ac_status outfile_mode(mode_t *mode, char *err);

/* Create the folder parent/name (mode 0750 before the umask) when it is
 * missing, and check that it is a directory, not a symlink (an existing
 * symlink is refused: a planted link would send the files elsewhere).
 * path (PATH_MAX bytes) receives parent/name. */
ac_status outfile_mkdir(const char *parent, const char *name, char *path,
                        char *err);

/* Remove what killed writers left in dir: ".*.tmp-*" files and
 * ".acbill-xlsx-*" private directories with their content (never
 * following a symlink).  Call it only when no other writer of dir is at
 * work (run.c: under the period's run lock).  Returns how many were
 * removed; each is logged. */
int outfile_sweep(const char *dir);

#endif
