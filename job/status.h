/* status.h: the one error convention of acbill.
 *
 * Every fallible function returns an ac_status.  AC_OK is zero; every other
 * value is a sysexits(3)-style code that main() can return as the process
 * exit status unchanged.  A function that fails also writes one line a
 * person can act on into a caller-supplied buffer of AC_ERR_MAX bytes
 * ("tenant T1, period 2026-10: no USD rate for +263..."), and leaves its
 * outputs in a documented state (usually: untouched, or freed). */
#ifndef AC_STATUS_H
#define AC_STATUS_H

#include <stddef.h>

#define AC_ERR_MAX 512

/* The exit statuses, as documented to operators (README "Exit status",
 * acbill --help, acbill(1)): each says what to do. */
typedef enum {
    AC_OK        = 0,
    AC_EUSAGE    = 64,  /* bad command line: fix the command */
    AC_EDATA     = 65,  /* a tenant's data failed a check: fix the data */
    AC_ENOINPUT  = 66,  /* an input file (import, SQL migrations) is missing */
    AC_EUNAVAIL  = 69,  /* database or upload server unavailable (down,
                         * refused, read-only, out of connections or disk),
                         * or files wait for upload: it passes by itself */
    AC_EINTERNAL = 70,  /* a bug or an unexpected library error: report it */
    AC_EOSERR    = 71,  /* the operating system refused (memory, fork) */
    AC_ECANTCREAT = 73, /* output cannot be written (directory, disk full) */
    AC_EIO       = 74,  /* reading an input file failed */
    AC_ETEMPFAIL = 75,  /* try again later: another run holds the period's
                         * lock, a lock_timeout or statement_timeout expired */
    AC_ECONFIG   = 78   /* configuration: authentication, unknown database
                         * or host, bad URL, unreadable secret, schema not
                         * migrated; it will not pass by itself */
} ac_status;

/* Format a message into err (AC_ERR_MAX bytes) and return code, so that a
 * failure reads `return ac_fail(err, AC_EDATA, "...", ...);`.  err may be
 * NULL, in which case only the code is returned. */
ac_status ac_fail(char *err, ac_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A short name for a status ("data error"), for log lines. */
const char *ac_status_name(ac_status code);

/* Of two statuses, the one an operator must act on first, for a run that
 * met several: configuration (78), internal (70), OS (71), data (65),
 * usage (64), output (73), input (74, 66), unavailable (69), try again
 * (75), ok.  Unknown codes rank with internal. */
ac_status ac_status_worst(ac_status a, ac_status b);

/* A command-line error: print one line "acbill CMD: <reason> (see acbill
 * CMD --help)" to stderr (cmd NULL: "acbill: ...") and return AC_EUSAGE.
 * Never the whole help text: the reason and where to read more. */
ac_status ac_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* For a getopt_long loop run with opterr = 0 and an optstring that starts
 * with ':': c is what getopt_long returned ('?' or ':'), argv the vector
 * it parsed.  Names the unknown option, the option missing its value or
 * the one given a value it does not take, as ac_usage_error() does, and
 * returns AC_EUSAGE. */
ac_status ac_usage_getopt(const char *cmd, int c, char **argv);

#endif
