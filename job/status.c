/* status.c: see status.h. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

ac_status ac_fail(char *err, ac_status code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, AC_ERR_MAX, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *ac_status_name(ac_status code)
{
    switch (code) {
    case AC_OK:         return "ok";
    case AC_EUSAGE:     return "usage error";
    case AC_EDATA:      return "data error";
    case AC_ENOINPUT:   return "input missing";
    case AC_EUNAVAIL:   return "service unavailable";
    case AC_EINTERNAL:  return "internal error";
    case AC_EOSERR:     return "operating system error";
    case AC_ECANTCREAT: return "cannot create output";
    case AC_EIO:        return "i/o error";
    case AC_ETEMPFAIL:  return "temporary failure";
    case AC_ECONFIG:    return "configuration error";
    }
    return "unknown status";
}
