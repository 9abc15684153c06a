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

typedef enum {
    AC_OK        = 0,
    AC_EUSAGE    = 64,  /* bad command line */
    AC_EDATA     = 65,  /* input data failed a check (a tenant failed) */
    AC_ENOINPUT  = 66,  /* an input file is missing */
    AC_EUNAVAIL  = 69,  /* database or upload server unavailable */
    AC_EINTERNAL = 70,  /* a bug or an unexpected library error */
    AC_EOSERR    = 71,  /* the operating system refused (memory, fork) */
    AC_ECANTCREAT = 73, /* an output file cannot be created */
    AC_EIO       = 74,  /* reading or writing a file failed */
    AC_ETEMPFAIL = 75,  /* try again later (another run holds the lock) */
    AC_ECONFIG   = 78   /* configuration error (bad URL, unreadable secret) */
} ac_status;

/* Format a message into err (AC_ERR_MAX bytes) and return code, so that a
 * failure reads `return ac_fail(err, AC_EDATA, "...", ...);`.  err may be
 * NULL, in which case only the code is returned. */
ac_status ac_fail(char *err, ac_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A short name for a status ("data error"), for log lines. */
const char *ac_status_name(ac_status code);

#endif
