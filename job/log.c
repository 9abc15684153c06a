/* log.c: see log.h. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static ac_log_level min_level = AC_LOG_INFO;

#define STATUS_MAX 256

/* The status line, in memory shared by the processes of a run. */
typedef struct {
    pthread_mutex_t lock;       /* process-shared, robust */
    int active;
    char text[STATUS_MAX];
} status_line;

static status_line *sl;

void ac_log_set_level(ac_log_level level)
{
    min_level = level;
}

ac_log_level ac_log_level_get(void)
{
    return min_level;
}

/* Write all of buf to stderr with write(2): one call, so that lines of
 * several processes do not interleave. */
static void put(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

static void status_lock(void)
{
    if (pthread_mutex_lock(&sl->lock) == EOWNERDEAD)   /* a killed holder */
        pthread_mutex_consistent(&sl->lock);
}

/* ------------------------------------------------------------ secrets */

#define SECRETS_MAX 16

static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char *secrets[SECRETS_MAX];
static atomic_int secrets_n;            /* registered so far */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A process forked while another thread scrubs must not inherit the lock
 * held (its next log line would wait for ever). */
static void secrets_prepare(void) { pthread_mutex_lock(&secrets_lock); }
static void secrets_release(void) { pthread_mutex_unlock(&secrets_lock); }
static void secrets_atfork(void)
{
    pthread_atfork(secrets_prepare, secrets_release, secrets_release);
}

void ac_log_secret(const char *value)
{
    if (value == NULL || strlen(value) < 4)
        return;
    pthread_once(&atfork_once, secrets_atfork);
    pthread_mutex_lock(&secrets_lock);
    int i, free_slot = -1;
    for (i = 0; i < SECRETS_MAX; i++) {
        if (secrets[i] != NULL && strcmp(secrets[i], value) == 0)
            break;
        if (secrets[i] == NULL && free_slot < 0)
            free_slot = i;
    }
    if (i == SECRETS_MAX && free_slot >= 0) {
        secrets[free_slot] = strdup(value);
        atomic_fetch_add(&secrets_n, 1);
    }
    pthread_mutex_unlock(&secrets_lock);
}

void ac_log_secrets_forget(void)
{
    pthread_mutex_lock(&secrets_lock);
    for (int i = 0; i < SECRETS_MAX; i++) {
        if (secrets[i] != NULL) {
            explicit_bzero(secrets[i], strlen(secrets[i]));
            free(secrets[i]);
            secrets[i] = NULL;
        }
    }
    pthread_mutex_unlock(&secrets_lock);
}

void ac_log_scrub(char *buf, size_t size)
{
    if (buf == NULL || size == 0 || atomic_load(&secrets_n) == 0)
        return;
    pthread_mutex_lock(&secrets_lock);
    for (int i = 0; i < SECRETS_MAX; i++) {
        const char *s = secrets[i];
        if (s == NULL)
            continue;
        size_t n = strlen(s);
        char *hit;
        while ((hit = strstr(buf, s)) != NULL) {
            /* "***" is never longer than a secret (>= 4 characters). */
            memcpy(hit, "***", 3);
            memmove(hit + 3, hit + n, strlen(hit + n) + 1);
        }
    }
    pthread_mutex_unlock(&secrets_lock);
}

/* Copy in to out (len bytes) with control characters escaped. */
static void escape(const char *in, char *out, size_t len)
{
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)in;
         *p && j + 5 < len; p++) {
        if (*p >= 0x20 && *p != 0x7f) {
            out[j++] = (char)*p;
        } else if (*p == '\n' || *p == '\r' || *p == '\t') {
            out[j++] = '\\';
            out[j++] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
        } else {
            j += (size_t)snprintf(out + j, len - j, "\\x%02x", *p);
        }
    }
    out[j] = '\0';
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
    /* Build the whole line first, to keep lines from two workers from
     * interleaving. */
    char line[2048 + STATUS_MAX + 16];
    int n = snprintf(line, 2048, "%s%s acbill[%ld] %s ",
                     sl != NULL ? "\r\033[K" : "", stamp, (long)getpid(),
                     names[level]);
    if (n < 0)
        return;
    if (n < 2048) {
        char msg[2048];
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        ac_log_scrub(msg, sizeof msg);
        escape(msg, line + n, 2048 - (size_t)n);
    }
    size_t len = strlen(line);
    line[len++] = '\n';
    if (sl == NULL) {
        put(line, len);
        return;
    }
    status_lock();
    if (sl->active) {       /* the line above, the status line redrawn */
        size_t t = strlen(sl->text);
        memcpy(line + len, sl->text, t);
        len += t;
    }
    put(line, len);
    pthread_mutex_unlock(&sl->lock);
}

int ac_log_status_open(void)
{
    pthread_mutexattr_t attr;
    void *m;

    if (sl != NULL)
        return 0;
    m = mmap(NULL, sizeof *sl, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    status_line *s = m;
    memset(s, 0, sizeof *s);
    if (pthread_mutexattr_init(&attr) != 0 ||
        pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0 ||
        pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) != 0 ||
        pthread_mutex_init(&s->lock, &attr) != 0) {
        munmap(m, sizeof *sl);
        return -1;
    }
    pthread_mutexattr_destroy(&attr);
    s->active = 1;
    sl = s;
    return 0;
}

void ac_log_status_set(const char *text)
{
    char buf[STATUS_MAX + 8];
    struct winsize ws;
    size_t width = STATUS_MAX - 1;

    if (sl == NULL)
        return;
    /* A line longer than the terminal would wrap, and "\r" would then
     * redraw only its last part. */
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 &&
        (size_t)ws.ws_col - 1 < width)
        width = (size_t)ws.ws_col - 1;
    status_lock();
    snprintf(sl->text, sizeof sl->text, "%.*s", (int)width, text);
    int n = snprintf(buf, sizeof buf, "\r\033[K%s", sl->text);
    if (sl->active && n > 0)
        put(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    pthread_mutex_unlock(&sl->lock);
}

void ac_log_status_close(int keep)
{
    if (sl == NULL)
        return;
    status_lock();
    if (sl->active && keep)
        put("\n", 1);
    else if (sl->active)
        put("\r\033[K", 4);
    sl->active = 0;
    pthread_mutex_unlock(&sl->lock);
    pthread_mutex_destroy(&sl->lock);
    munmap(sl, sizeof *sl);
    sl = NULL;
}
