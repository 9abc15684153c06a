/* publish.c: see publish.h. */
#include "publish.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bill.h"
#include "db.h"
#include "log.h"
#include "report.h"
#include "sha256.h"

#define THREADS_MAX 4           /* workbooks written at the same time */
#define QUEUE_MAX (2 * THREADS_MAX)

typedef struct {
    char invoice_no[128];
    char spool_path[PATH_MAX];      /* "" when none */
} item;

typedef struct publisher publisher_t;

/* One writing thread and its own connection. */
typedef struct {
    publisher_t *p;
    PGconn *conn;
    pthread_t thread;
    int started;
} writer;

struct publisher {
    writer w[THREADS_MAX];
    int nthreads;
    char out_dir[PATH_MAX];
    char period[8];
    long long run_id;
    const upload_options *uopt;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    item queue[QUEUE_MAX];
    int head, count;
    int stopping;
    int failed;
};

/* Where libxlsxwriter's temporary files for a workbook go.  Creating
 * and deleting many small files on a busy ext4 directory costs more
 * kernel time than writing them (inode allocation skips recently deleted
 * inodes), so a workbook whose temporaries fit comfortably goes to
 * /dev/shm: at most 1/8 of its free space, judged from the spool's size
 * (the temporaries are about three times the calls in text).  Large ones
 * stay next to the output, on disk.  NULL means next to the output. */
static const char *fast_tmpdir(const char *spool_path)
{
    struct stat st;
    struct statvfs fs;
    const char *env = getenv("ACBILL_XLSX_TMPDIR");

    if (env != NULL && *env != '\0')
        return env;
    if (stat(spool_path, &st) != 0 || statvfs("/dev/shm", &fs) != 0 ||
        access("/dev/shm", W_OK | X_OK) != 0)
        return NULL;
    unsigned long long free_bytes = (unsigned long long)fs.f_bavail *
                                    fs.f_frsize;
    unsigned long long need = 3ULL * (unsigned long long)st.st_size +
                              (1ULL << 20);
    return need * 8 <= free_bytes && need <= (256ULL << 20) ? "/dev/shm"
                                                          : NULL;
}

/* Write the workbook of a just-issued invoice from its spool, record its
 * file name and SHA-256, put it in place. */
static ac_status write_issued(publisher *p, PGconn *conn, const item *it,
                              char *err)
{
    char file[160], path[PATH_MAX], tmp[PATH_MAX], hex[65];
    ac_status rc;

    snprintf(file, sizeof file, "%s.xlsx", it->invoice_no);
    snprintf(path, sizeof path, "%s/%s", p->out_dir, file);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp-%ld", p->out_dir, file,
             (long)getpid());
    rc = report_invoice_workbook_spool(conn, it->invoice_no,
                                       it->spool_path, tmp,
                                       fast_tmpdir(it->spool_path), err);
    if (rc == AC_OK)
        rc = sha256_file(tmp, hex, err);
    if (rc == AC_OK && rename(tmp, path) != 0)
        rc = ac_fail(err, AC_ECANTCREAT, "cannot write %s: %s", path,
                     strerror(errno));
    if (rc != AC_OK) {
        unlink(tmp);
        return rc;
    }
    /* Recorded once; the immutability trigger refuses a second value. */
    const char *q[] = { it->invoice_no, file, hex };
    return db_exec_params(conn,
        "UPDATE billing.invoices SET file_name = $2, content_sha256 = $3"
        " WHERE invoice_no = $1 AND content_sha256 IS NULL", 3, q, err);
}

static void publish_one(publisher *p, PGconn *conn, const item *it)
{
    char err[AC_ERR_MAX] = "", file[160], path[PATH_MAX];
    ac_status rc;

    if (it->spool_path[0] != '\0') {
        rc = write_issued(p, conn, it, err);
        unlink(it->spool_path);
    } else {
        rc = bill_ensure_workbook(conn, it->invoice_no, p->out_dir, err);
    }
    if (rc == AC_OK && p->uopt != NULL && p->uopt->base_url != NULL) {
        snprintf(file, sizeof file, "%s.xlsx", it->invoice_no);
        snprintf(path, sizeof path, "%s/%s", p->out_dir, file);
        rc = upload_enqueue(conn, p->uopt, p->period, file, path,
                            it->invoice_no, p->run_id, err);
    }
    if (rc != AC_OK) {
        pthread_mutex_lock(&p->lock);
        p->failed++;
        pthread_mutex_unlock(&p->lock);
        ac_error("invoice %s: workbook not published: %s (the invoice "
                 "stands; the next run writes it)", it->invoice_no, err);
    }
}

static void *publisher_main(void *arg)
{
    writer *w = arg;
    publisher *p = w->p;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->count == 0 && !p->stopping)
            pthread_cond_wait(&p->changed, &p->lock);
        if (p->count == 0)
            break;
        item it = p->queue[p->head];
        p->head = (p->head + 1) % QUEUE_MAX;
        p->count--;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        publish_one(p, w->conn, &it);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

ac_status publisher_start(const char *conninfo, const char *out_dir,
                          const char *period, long long run_id,
                          const upload_options *uopt, int threads,
                          publisher **out, char *err)
{
    publisher *p = calloc(1, sizeof *p);
    ac_status rc;

    *out = NULL;
    if (p == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    snprintf(p->out_dir, sizeof p->out_dir, "%s", out_dir);
    snprintf(p->period, sizeof p->period, "%s", period);
    p->run_id = run_id;
    p->uopt = uopt;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    p->nthreads = threads < 1 ? 1 : threads > THREADS_MAX ? THREADS_MAX
                                                          : threads;
    for (int i = 0; i < p->nthreads; i++) {
        p->w[i].p = p;
        rc = db_connect(conninfo, &p->w[i].conn, err);
        if (rc == AC_OK &&
            pthread_create(&p->w[i].thread, NULL, publisher_main,
                           &p->w[i]) != 0)
            rc = ac_fail(err, AC_EOSERR, "cannot start a workbook writer");
        if (rc != AC_OK) {
            int failed;
            PQfinish(p->w[i].conn);
            p->w[i].conn = NULL;
            publisher_finish(p, &failed, NULL);
            return rc;
        }
        p->w[i].started = 1;
    }
    *out = p;
    return AC_OK;
}

ac_status publisher_submit(publisher *p, const char *invoice_no,
                           const char *spool_path, char *err)
{
    (void)err;
    pthread_mutex_lock(&p->lock);
    while (p->count == 2 * p->nthreads)
        pthread_cond_wait(&p->changed, &p->lock);
    item *it = &p->queue[(p->head + p->count) % QUEUE_MAX];
    snprintf(it->invoice_no, sizeof it->invoice_no, "%s", invoice_no);
    snprintf(it->spool_path, sizeof it->spool_path, "%s",
             spool_path ? spool_path : "");
    p->count++;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    return AC_OK;
}

ac_status publisher_finish(publisher *p, int *failed, char *err)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++) {
        if (p->w[i].started)
            pthread_join(p->w[i].thread, NULL);
        PQfinish(p->w[i].conn);
    }
    *failed = p->failed;
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->changed);
    free(p);
    if (*failed > 0)
        return ac_fail(err, AC_ECANTCREAT, "%d workbook(s) could not be "
                       "written", *failed);
    return AC_OK;
}
