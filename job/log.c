/* log.c: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static ac_log_level min_level = AC_LOG_INFO;

void ac_log_set_level(ac_log_level level)
{
    min_level = level;
}

void ac_log(ac_log_level level, const char *fmt, ...)
{
    static const char *names[] = { "debug", "info", "WARN", "ERROR" };
    char stamp[32] = "";
    struct tm tm;
    time_t now;
    va_list ap;

    if (level < min_level)
        return;
    now = time(NULL);
    if (gmtime_r(&now, &tm) != NULL)
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    /* One fprintf per part; stderr is unbuffered, so build the line first
     * to keep lines from two workers from interleaving. */
    char line[2048];
    int n = snprintf(line, sizeof line, "%s acbill[%ld] %s ", stamp,
                     (long)getpid(), names[level]);
    if (n < 0)
        return;
    if ((size_t)n < sizeof line) {
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
    }
    fprintf(stderr, "%s\n", line);
}
