/* log.h: log lines for people.
 *
 * One line per event on stderr: "2026-11-26T05:14:15Z acbill[pid] LEVEL
 * message".  Never log secrets (tokens, passwords, connection strings with
 * a password): callers pass only what a person may read.
 *
 * On a terminal a run may keep a status line (its progress) as the last
 * line of stderr: log lines are then written above it and it is redrawn
 * in place, so the two never run into each other, from any of the
 * processes forked after ac_log_status_open(). */
#ifndef AC_LOG_H
#define AC_LOG_H

#include <stddef.h>

typedef enum { AC_LOG_DEBUG, AC_LOG_INFO, AC_LOG_WARN, AC_LOG_ERROR } ac_log_level;

/* Set the lowest level that is printed (default AC_LOG_INFO). */
void ac_log_set_level(ac_log_level level);

/* The lowest level that is printed. */
ac_log_level ac_log_level_get(void);

/* Print one line at the given level, if it is at or above the set level.
 * The message is made safe whatever the values formatted into it (tenant
 * ids and names, file and zip member names, server answers):
 *   - control characters are escaped (newline as \n, carriage return as
 *     \r, tab as \t, the others and DEL as \xNN, ESC as \x1b), so one
 *     event is one line and no terminal escape reaches a terminal: a
 *     value cannot forge an "ERROR tenant ..." line;
 *   - every secret registered with ac_log_secret() is replaced by "***". */
void ac_log(ac_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ac_info(...)  ac_log(AC_LOG_INFO, __VA_ARGS__)
#define ac_warn(...)  ac_log(AC_LOG_WARN, __VA_ARGS__)
#define ac_error(...) ac_log(AC_LOG_ERROR, __VA_ARGS__)
#define ac_debug(...) ac_log(AC_LOG_DEBUG, __VA_ARGS__)

/* Register a secret (a token, a password, a client secret) that no log
 * line and no ac_fail() message may show, whatever a server echoes back:
 * from now on each occurrence is replaced by "***".  The value is copied
 * (and wiped by ac_log_secrets_forget()); values shorter than 4
 * characters are not registered (they would mask ordinary words).  At
 * most 16 secrets; thread-safe. */
void ac_log_secret(const char *value);

/* Wipe and forget every registered secret. */
void ac_log_secrets_forget(void);

/* Replace every registered secret in buf (a NUL-terminated string of at
 * most size bytes) by "***", in place.  ac_log() and ac_fail() call it;
 * call it for any other text that leaves the process (a row's
 * last_error is an ac_fail() message already). */
void ac_log_scrub(char *buf, size_t size);

/* Start a status line on stderr, shared (memory and a process-shared
 * lock) with the processes forked from now on.  Call it before forking,
 * from one thread.  0 when started, -1 when it cannot be (then ac_log
 * writes plain lines and ac_log_status_set does nothing). */
int ac_log_status_open(void);

/* Replace the status line's text (cut to the terminal's width) and redraw
 * it in place.  Any process and thread may call it. */
void ac_log_status_set(const char *text);

/* Stop keeping a status line: leave its last text as an ordinary line
 * (keep) or erase it.  From the process that opened it, once the others
 * are gone. */
void ac_log_status_close(int keep);

#endif
