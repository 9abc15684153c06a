/* publish.c: see publish.h. */
#include "publish.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bill.h"
#include "db.h"
#include "log.h"
#include "report.h"
#include "sha256.h"

#define QUEUE_MAX 2

typedef struct {
    char invoice_no[128];
    char spool_path[PATH_MAX];      /* "" when none */
} item;

struct publisher {
    PGconn *conn;
    char out_dir[PATH_MAX];
    char period[8];
    long long run_id;
    const upload_options *uopt;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    item queue[QUEUE_MAX];
    int head, count;
    int stopping;
    int failed;
};

/* Write the workbook of a just-issued invoice from its spool, record its
 * file name and SHA-256, put it in place. */
static ac_status write_issued(publisher *p, const item *it, char *err)
{
    char file[160], path[PATH_MAX], tmp[PATH_MAX], hex[65];
    ac_status rc;

    snprintf(file, sizeof file, "%s.xlsx", it->invoice_no);
    snprintf(path, sizeof path, "%s/%s", p->out_dir, file);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp-%ld", p->out_dir, file,
             (long)getpid());
    rc = report_invoice_workbook_spool(p->conn, it->invoice_no,
                                       it->spool_path, tmp, err);
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
    return db_exec_params(p->conn,
        "UPDATE billing.invoices SET file_name = $2, content_sha256 = $3"
        " WHERE invoice_no = $1 AND content_sha256 IS NULL", 3, q, err);
}

static void publish_one(publisher *p, const item *it)
{
    char err[AC_ERR_MAX] = "", file[160], path[PATH_MAX];
    ac_status rc;

    if (it->spool_path[0] != '\0') {
        rc = write_issued(p, it, err);
        unlink(it->spool_path);
    } else {
        rc = bill_ensure_workbook(p->conn, it->invoice_no, p->out_dir, err);
    }
    if (rc == AC_OK && p->uopt != NULL && p->uopt->base_url != NULL) {
        snprintf(file, sizeof file, "%s.xlsx", it->invoice_no);
        snprintf(path, sizeof path, "%s/%s", p->out_dir, file);
        rc = upload_enqueue(p->conn, p->uopt, p->period, file, path,
                            it->invoice_no, p->run_id, err);
    }
    if (rc != AC_OK) {
        p->failed++;
        ac_error("invoice %s: workbook not published: %s (the invoice "
                 "stands; the next run writes it)", it->invoice_no, err);
    }
}

static void *publisher_main(void *arg)
{
    publisher *p = arg;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->count == 0 && !p->stopping)
            pthread_cond_wait(&p->changed, &p->lock);
        if (p->count == 0)
            break;
        item it = p->queue[p->head];
        pthread_mutex_unlock(&p->lock);
        publish_one(p, &it);
        pthread_mutex_lock(&p->lock);
        p->head = (p->head + 1) % QUEUE_MAX;
        p->count--;
        pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

ac_status publisher_start(const char *conninfo, const char *out_dir,
                          const char *period, long long run_id,
                          const upload_options *uopt, publisher **out,
                          char *err)
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
    rc = db_connect(conninfo, &p->conn, err);
    if (rc != AC_OK) {
        free(p);
        return rc;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    if (pthread_create(&p->thread, NULL, publisher_main, p) != 0) {
        PQfinish(p->conn);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->changed);
        free(p);
        return ac_fail(err, AC_EOSERR, "cannot start the workbook writer");
    }
    *out = p;
    return AC_OK;
}

ac_status publisher_submit(publisher *p, const char *invoice_no,
                           const char *spool_path, char *err)
{
    (void)err;
    pthread_mutex_lock(&p->lock);
    while (p->count == QUEUE_MAX)
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
    pthread_join(p->thread, NULL);
    *failed = p->failed;
    PQfinish(p->conn);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->changed);
    free(p);
    if (*failed > 0)
        return ac_fail(err, AC_ECANTCREAT, "%d workbook(s) could not be "
                       "written", *failed);
    return AC_OK;
}
