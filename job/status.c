/* status.c: see status.h. */
#include "status.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

ac_status ac_fail(char *err, ac_status code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, AC_ERR_MAX, fmt, ap);
        va_end(ap);
        ac_log_scrub(err, AC_ERR_MAX);
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

static int rank(ac_status code)
{
    switch (code) {
    case AC_OK:         return 0;
    case AC_ETEMPFAIL:  return 1;
    case AC_EUNAVAIL:   return 2;
    case AC_ENOINPUT:   return 3;
    case AC_EIO:        return 4;
    case AC_ECANTCREAT: return 5;
    case AC_EUSAGE:     return 6;
    case AC_EDATA:      return 7;
    case AC_EOSERR:     return 8;
    case AC_EINTERNAL:  return 9;
    case AC_ECONFIG:    return 10;
    }
    return 9;
}

ac_status ac_status_worst(ac_status a, ac_status b)
{
    return rank(b) > rank(a) ? b : a;
}

ac_status ac_usage_error(const char *cmd, const char *fmt, ...)
{
    char why[AC_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    fprintf(stderr, "acbill%s%s: %s (see acbill%s%s --help)\n",
            cmd ? " " : "", cmd ? cmd : "", why, cmd ? " " : "",
            cmd ? cmd : "");
    return AC_EUSAGE;
}

ac_status ac_usage_getopt(const char *cmd, int c, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    if (c == ':' && strncmp(arg, "--", 2) == 0)
        return ac_usage_error(cmd, "%s needs a value", arg);
    if (c == ':')
        return ac_usage_error(cmd, "-%c needs a value", optopt);
    if (strncmp(arg, "--", 2) == 0 && strchr(arg, '=') != NULL &&
        optopt != 0)
        return ac_usage_error(cmd, "%.*s takes no value",
                              (int)(strchr(arg, '=') - arg), arg);
    if (strncmp(arg, "--", 2) == 0)
        return ac_usage_error(cmd, "unknown option %s", arg);
    return ac_usage_error(cmd, "unknown option -%c", optopt);
}
