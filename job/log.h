/* log.h: log lines for people.
 *
 * One line per event on stderr: "2026-11-26T05:14:15Z acbill[pid] LEVEL
 * message".  Never log secrets (tokens, passwords, connection strings with
 * a password): callers pass only what a person may read. */
#ifndef AC_LOG_H
#define AC_LOG_H

typedef enum { AC_LOG_DEBUG, AC_LOG_INFO, AC_LOG_WARN, AC_LOG_ERROR } ac_log_level;

/* Set the lowest level that is printed (default AC_LOG_INFO). */
void ac_log_set_level(ac_log_level level);

/* Print one line at the given level, if it is at or above the set level. */
void ac_log(ac_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ac_info(...)  ac_log(AC_LOG_INFO, __VA_ARGS__)
#define ac_warn(...)  ac_log(AC_LOG_WARN, __VA_ARGS__)
#define ac_error(...) ac_log(AC_LOG_ERROR, __VA_ARGS__)
#define ac_debug(...) ac_log(AC_LOG_DEBUG, __VA_ARGS__)

#endif
