/* publish.c: see publish.h. */
#include "publish.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "db.h"
#include "outfile.h"
#include "log.h"
#include "customer_doc.h"
#include "report.h"
#include "sha256.h"

#define THREADS_MAX 4           /* workbooks written at the same time */
#define QUEUE_MAX (2 * THREADS_MAX)
/* Spool files in use at most: queued, being read, being written. */
#define SPOOLS_MAX (QUEUE_MAX + THREADS_MAX + 2)

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
    const char *conninfo;       /* for a writer that must reconnect */
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
    ac_status worst;            /* what the failures call for */
    /* Spool files kept for the next tenants instead of deleted: a new
     * file per tenant costs ext4 more kernel time than its contents. */
    char spool[SPOOLS_MAX][PATH_MAX];
    int spool_busy[SPOOLS_MAX];
    int nspools;
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

/* Put invoice_no's workbook in out_dir and make sure its file name and
 * SHA-256 are recorded on the invoice (once: the immutability trigger
 * refuses a second value).  The Calls rows come from spool_path when
 * given (an invoice just issued), else from the ledger; without a spool,
 * a file already there with the recorded SHA-256 is left alone (the
 * invoice was published before).  The workbook is written to a temporary
 * name and renamed, so a failure leaves no partial file. */
static ac_status publish_workbook(PGconn *conn, const char *out_dir,
                                  const char *invoice_no,
                                  const char *spool_path, char *err)
{
    const char *p[] = { invoice_no };
    char path[PATH_MAX], hex[65], file[160], want[65] = "";
    outfile o;
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT content_sha256 FROM billing.invoices WHERE invoice_no = $1",
        1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return ac_fail(err, AC_EINTERNAL, "invoice %s not found",
                       invoice_no);
    }
    if (!PQgetisnull(res, 0, 0))
        snprintf(want, sizeof want, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    snprintf(file, sizeof file, "%s.xlsx", invoice_no);
    snprintf(path, sizeof path, "%s/%s", out_dir, file);
    if (spool_path == NULL && want[0] != '\0' &&
        sha256_file(path, hex, NULL) == AC_OK && strcmp(hex, want) == 0)
        return AC_OK;

    rc = outfile_open_path(&o, out_dir, file, err);
    if (rc != AC_OK)
        return rc;
    rc = report_invoice_workbook_spool(conn, invoice_no, spool_path, o.temp,
                                       spool_path ? fast_tmpdir(spool_path)
                                                  : NULL, err);
    if (rc == AC_OK)
        rc = sha256_file(o.temp, hex, err);
    if (rc == AC_OK && want[0] == '\0') {
        const char *u[] = { invoice_no, file, hex };
        rc = db_exec_params(conn,
            "UPDATE billing.invoices SET file_name = $2, content_sha256 = $3"
            " WHERE invoice_no = $1 AND content_sha256 IS NULL", 3, u, err);
    } else if (rc == AC_OK && strcmp(hex, want) != 0) {
        ac_warn("invoice %s: the workbook written again differs from the "
                "SHA-256 recorded when it was issued (%.12s..., now "
                "%.12s...); a different acbill version?", invoice_no, want,
                hex);
    }
    if (rc == AC_OK)
        rc = outfile_commit(&o, err);
    else
        outfile_discard(&o);
    if (rc == AC_OK && spool_path == NULL)
        ac_info("invoice %s: workbook %s written again", invoice_no, path);
    return rc;
}

/* A writer's connection, named "acbill-writer" in pg_stat_activity. */
static ac_status writer_connect(const char *conninfo, PGconn **conn,
                                char *err)
{
    ac_status rc = db_connect(conninfo, conn, err);
    if (rc == AC_OK &&
        (rc = db_exec(*conn, "SET application_name = 'acbill-writer'",
                      err)) != AC_OK) {
        PQfinish(*conn);
        *conn = NULL;
    }
    return rc;
}

/* Writes one file of a document to path (report_document_pdf() and the
 * like). */
typedef ac_status (*document_writer)(PGconn *conn, const char *document_no,
                                     const char *path, char *err);

/* The one place a customer document's file is created (docs/billing-rules.md 4.4): unless
 * out_dir/file is there with the SHA-256 want (recorded earlier), write
 * it with write_file() to a temporary name in out_dir, record its name and
 * SHA-256 with record_sql ($1 document_no, $2 file name, $3 SHA-256; it
 * must change nothing when they are recorded already) and rename it into
 * place.  A failure leaves no partial file; a run killed before the
 * rename leaves the record, and the next run writes the file again, byte
 * for byte the same (a different result is logged, not recorded). */
static ac_status write_document_file(PGconn *conn, const char *out_dir,
                                     const char *document_no,
                                     const char *file, const char *want,
                                     document_writer write_file,
                                     const char *record_sql, char *err)
{
    char path[PATH_MAX], hex[65];
    outfile o;
    ac_status rc;

    snprintf(path, sizeof path, "%s/%s", out_dir, file);
    if (want != NULL && sha256_file(path, hex, NULL) == AC_OK &&
        strcmp(hex, want) == 0)
        return AC_OK;
    rc = outfile_open_path(&o, out_dir, file, err);
    if (rc != AC_OK)
        return rc;
    rc = write_file(conn, document_no, o.temp, err);
    if (rc == AC_OK)
        rc = sha256_file(o.temp, hex, err);
    if (rc == AC_OK && want == NULL) {
        const char *u[] = { document_no, file, hex };
        rc = db_exec_params(conn, record_sql, 3, u, err);
    } else if (rc == AC_OK && strcmp(hex, want) != 0) {
        ac_warn("document %s: %s written again differs from the SHA-256 "
                "recorded when it was first written (%.12s..., now "
                "%.12s...); a different acbill version or fonts?",
                document_no, file, want, hex);
    }
    if (rc == AC_OK)
        rc = outfile_commit(&o, err);
    else
        outfile_discard(&o);
    return rc;
}

/* The customer's files of document_no (docs/billing-rules.md 4.4): <document_no>.pdf
 * always, <document_no>.xml when the document gets an e-invoice (else
 * the reason is logged and recorded once in xml_skipped), each written
 * by write_document_file(), recorded with its SHA-256 and queued for
 * upload (upload_enqueue() queues a file once).  quick: a document of
 * an earlier revision, whose recorded files are left alone when they
 * exist (not read again). */
static ac_status publish_customer_files(publisher *p, PGconn *conn,
                                        const char *document_no,
                                        const char *invoice_no, int quick,
                                        char *err)
{
    const char *q[] = { document_no };
    char pdf[160], xml[160], path[PATH_MAX], why[256];
    char want_pdf[65] = "", want_xml[65] = "";
    int skipped, skip = 0;
    PGresult *res;
    ac_status rc = db_query(conn,
        "SELECT pdf_sha256, xml_sha256, xml_skipped IS NOT NULL"
        " FROM billing.documents WHERE document_no = $1", 1, q, &res, err);
    if (rc != AC_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return ac_fail(err, AC_EINTERNAL, "document %s not found",
                       document_no);
    }
    if (!PQgetisnull(res, 0, 0))
        snprintf(want_pdf, sizeof want_pdf, "%s", PQgetvalue(res, 0, 0));
    if (!PQgetisnull(res, 0, 1))
        snprintf(want_xml, sizeof want_xml, "%s", PQgetvalue(res, 0, 1));
    skipped = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    PQclear(res);
    snprintf(pdf, sizeof pdf, "%s.pdf", document_no);
    snprintf(xml, sizeof xml, "%s.xml", document_no);
    if (quick && want_pdf[0] != '\0' && (skipped || want_xml[0] != '\0')) {
        snprintf(path, sizeof path, "%s/%s", p->out_dir, pdf);
        int have = access(path, F_OK) == 0;
        snprintf(path, sizeof path, "%s/%s", p->out_dir, xml);
        if (have && (skipped || access(path, F_OK) == 0))
            return AC_OK;
    }

    rc = write_document_file(conn, p->out_dir, document_no, pdf,
        want_pdf[0] ? want_pdf : NULL, report_document_pdf,
        "UPDATE billing.documents SET pdf_file = $2, pdf_sha256 = $3"
        " WHERE document_no = $1 AND pdf_sha256 IS NULL", err);
    if (rc == AC_OK && p->uopt != NULL && p->uopt->base_url != NULL) {
        snprintf(path, sizeof path, "%s/%s", p->out_dir, pdf);
        rc = upload_enqueue(conn, p->uopt, p->period, pdf, path, invoice_no,
                            p->run_id, err);
    }
    if (rc != AC_OK || skipped)
        return rc;
    if (want_xml[0] == '\0')
        rc = report_document_ubl_skip(conn, document_no, &skip, why,
                                      sizeof why, err);
    if (rc == AC_OK && skip) {
        const char *u[] = { document_no, why };
        ac_info("document %s: %s", document_no, why);
        return db_exec_params(conn,
            "UPDATE billing.documents SET xml_skipped = $2"
            " WHERE document_no = $1 AND xml_skipped IS NULL"
            " AND xml_sha256 IS NULL", 2, u, err);
    }
    if (rc == AC_OK)
        rc = write_document_file(conn, p->out_dir, document_no, xml,
            want_xml[0] ? want_xml : NULL, report_document_ubl,
            "UPDATE billing.documents SET xml_file = $2, xml_sha256 = $3"
            " WHERE document_no = $1 AND xml_sha256 IS NULL", err);
    if (rc == AC_OK && p->uopt != NULL && p->uopt->base_url != NULL) {
        snprintf(path, sizeof path, "%s/%s", p->out_dir, xml);
        rc = upload_enqueue(conn, p->uopt, p->period, xml, path, invoice_no,
                            p->run_id, err);
    }
    return rc;
}

/* The financial documents of revision invoice_no (docs/billing-rules.md 4.3): its invoice
 * document is the statement's workbook (invoice_no.xlsx, already
 * written), whose file name and SHA-256 it records too, unless it was
 * issued after that workbook (a held statement, docs/billing-rules.md 4.2); such an
 * invoice and each credit note get a workbook of their own, <document_no>.xlsx, written to a temporary
 * name and renamed, recorded once and queued for upload.  A credit note
 * whose file is there with the recorded SHA-256 is left alone. */
static ac_status publish_documents(publisher *p, PGconn *conn,
                                   const char *invoice_no, char *err)
{
    const char *q[] = { invoice_no };
    char path[PATH_MAX], file[160], hex[65];
    outfile o;
    PGresult *res;
    ac_status rc;

    /* The statement's workbook, as publish_workbook() recorded it: no
     * need to read the file again. */
    rc = db_exec_params(conn,
        "UPDATE billing.documents d SET file_name = i.file_name,"
        " content_sha256 = i.content_sha256 FROM billing.invoices i"
        " WHERE d.invoice_no = $1 AND i.invoice_no = $1"
        " AND d.kind = 'invoice' AND NOT d.was_held"
        " AND d.content_sha256 IS NULL"
        " AND i.content_sha256 IS NOT NULL", 1, q, err);
    /* Credit notes, and an invoice issued after its statement's workbook
     * (the statement was held, docs/billing-rules.md 4.2): workbooks of their own. */
    if (rc == AC_OK)
        rc = db_query(conn,
            "SELECT document_no, content_sha256, kind FROM billing.documents"
            " WHERE invoice_no = $1 AND (kind = 'credit_note' OR was_held)"
            " ORDER BY document_no", 1, q, &res, err);
    if (rc != AC_OK)
        return rc;
    for (int i = 0; rc == AC_OK && i < PQntuples(res); i++) {
        const char *no = PQgetvalue(res, i, 0);
        const char *want = db_value(res, i, 1);
        snprintf(file, sizeof file, "%s.xlsx", no);
        snprintf(path, sizeof path, "%s/%s", p->out_dir, file);
        if (want != NULL && sha256_file(path, hex, NULL) == AC_OK &&
            strcmp(hex, want) == 0)
            continue;
        rc = outfile_open_path(&o, p->out_dir, file, err);
        if (rc != AC_OK)
            break;
        if (strcmp(PQgetvalue(res, i, 2), "invoice") == 0) {
            report_invoice_options io = { .document_no = no };
            rc = report_invoice_workbook_opt(conn, invoice_no, o.temp, &io,
                                             err);
        } else {
            rc = report_credit_note_workbook(conn, no, o.temp, err);
        }
        if (rc == AC_OK)
            rc = sha256_file(o.temp, hex, err);
        if (rc == AC_OK && want == NULL) {
            const char *u[] = { no, file, hex };
            rc = db_exec_params(conn,
                "UPDATE billing.documents SET file_name = $2,"
                " content_sha256 = $3 WHERE document_no = $1"
                " AND content_sha256 IS NULL", 3, u, err);
        }
        if (rc == AC_OK)
            rc = outfile_commit(&o, err);
        else
            outfile_discard(&o);
        if (rc == AC_OK && p->uopt != NULL && p->uopt->base_url != NULL)
            rc = upload_enqueue(conn, p->uopt, p->period, file, path,
                                invoice_no, p->run_id, err);
    }
    PQclear(res);
    if (rc != AC_OK)
        return rc;
    /* The customer's PDF and e-invoice of each of the revision's
     * documents (docs/billing-rules.md 4.4). */
    /* Those of the revision's documents, and of the period's earlier
     * revisions (a run killed before it wrote them: only a missing file
     * is written there, without reading the others again). */
    rc = db_query(conn, "SELECT d.document_no, d.invoice_no = $1"
                  " FROM billing.documents d"
                  " JOIN billing.invoices s ON s.invoice_no = $1"
                  " WHERE d.tenant_id = s.tenant_id AND d.period = s.period"
                  " AND d.invoice_no IN (SELECT e.invoice_no"
                  "   FROM billing.invoices e WHERE e.tenant_id = s.tenant_id"
                  "   AND e.period = s.period AND e.revision <= s.revision)"
                  " ORDER BY d.document_no", 1, q, &res, err);
    if (rc != AC_OK)
        return rc;
    for (int i = 0; rc == AC_OK && i < PQntuples(res); i++)
        rc = publish_customer_files(p, conn, PQgetvalue(res, i, 0),
                                    invoice_no,
                                    strcmp(PQgetvalue(res, i, 1), "t") != 0,
                                    err);
    PQclear(res);
    return rc;
}

/* Write the workbook and queue it for upload, then the workbooks of the
 * revision's documents. */
static ac_status publish_and_queue(publisher *p, PGconn *conn, const item *it,
                                   const char *spool, char *err)
{
    char file[160], path[PATH_MAX];
    ac_status rc = publish_workbook(conn, p->out_dir, it->invoice_no, spool,
                                    err);
    if (rc == AC_OK && p->uopt != NULL && p->uopt->base_url != NULL) {
        snprintf(file, sizeof file, "%s.xlsx", it->invoice_no);
        snprintf(path, sizeof path, "%s/%s", p->out_dir, file);
        rc = upload_enqueue(conn, p->uopt, p->period, file, path,
                            it->invoice_no, p->run_id, err);
    }
    if (rc == AC_OK)
        rc = publish_documents(p, conn, it->invoice_no, err);
    return rc;
}

static void publish_one(publisher *p, writer *w, const item *it)
{
    char err[AC_ERR_MAX] = "";
    ac_status rc;

    const char *spool = it->spool_path[0] != '\0' ? it->spool_path : NULL;
    rc = publish_and_queue(p, w->conn, it, spool, err);
    if (rc != AC_OK && PQstatus(w->conn) != CONNECTION_OK) {
        /* The connection was lost (a restarted server, a killed backend):
         * reconnect once and write this workbook again, then go on. */
        PGconn *fresh;
        char why[AC_ERR_MAX];
        ac_warn("invoice %s: the workbook writer lost its database "
                "connection (%s); reconnecting", it->invoice_no, err);
        if (writer_connect(p->conninfo, &fresh, why) == AC_OK) {
            PQfinish(w->conn);
            w->conn = fresh;
            rc = publish_and_queue(p, w->conn, it, spool, err);
        } else {
            rc = ac_fail(err, AC_EUNAVAIL, "%s; reconnecting failed: %s",
                         err, why);
        }
    }
    if (spool != NULL)
        publisher_spool_release(p, spool);
    if (rc != AC_OK) {
        if (rc == AC_EIO)       /* writing our own output: 73 */
            rc = AC_ECANTCREAT;
        if (PQstatus(w->conn) != CONNECTION_OK)
            rc = AC_EUNAVAIL;
        pthread_mutex_lock(&p->lock);
        p->failed++;
        p->worst = ac_status_worst(p->worst, rc);
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
        publish_one(p, w, &it);
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
    p->conninfo = conninfo;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    p->nthreads = threads < 1 ? 1 : threads > THREADS_MAX ? THREADS_MAX
                                                          : threads;
    report_documents_init();    /* before the writer threads start */
    for (int i = 0; i < p->nthreads; i++) {
        p->w[i].p = p;
        rc = writer_connect(conninfo, &p->w[i].conn, err);
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

ac_status publisher_spool(publisher *p, FILE **f, char path[PATH_MAX],
                          char *err)
{
    int fd = -1, slot = -1;

    *f = NULL;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->nspools && slot < 0; i++)
        if (!p->spool_busy[i])
            slot = i;
    if (slot >= 0) {
        p->spool_busy[slot] = 1;
        snprintf(path, PATH_MAX, "%s", p->spool[slot]);
    }
    pthread_mutex_unlock(&p->lock);
    if (slot >= 0)          /* the same file again, emptied */
        fd = open(path, O_RDWR | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (slot >= 0) {    /* gone (someone cleaned up): forget it */
            pthread_mutex_lock(&p->lock);
            p->spool[slot][0] = '\0';
            pthread_mutex_unlock(&p->lock);
        }
        snprintf(path, PATH_MAX, "%s/.acbill-spool-XXXXXX", p->out_dir);
        fd = mkstemp(path);
        if (fd < 0)
            return ac_fail(err, AC_ECANTCREAT, "cannot create a spool file "
                           "in %s: %s", p->out_dir, strerror(errno));
        pthread_mutex_lock(&p->lock);
        if (slot < 0 && p->nspools < SPOOLS_MAX)
            slot = p->nspools++;
        if (slot >= 0) {
            snprintf(p->spool[slot], PATH_MAX, "%s", path);
            p->spool_busy[slot] = 1;
        }
        pthread_mutex_unlock(&p->lock);
    }
    *f = fdopen(fd, "w+");
    if (*f == NULL) {
        close(fd);
        publisher_spool_release(p, path);
        return ac_fail(err, AC_EOSERR, "fdopen: %s", strerror(errno));
    }
    return AC_OK;
}

void publisher_spool_release(publisher *p, const char *path)
{
    int kept = 0;

    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->nspools && !kept; i++) {
        if (p->spool_busy[i] && strcmp(p->spool[i], path) == 0) {
            p->spool_busy[i] = 0;
            kept = 1;
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (!kept)
        unlink(path);
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
    ac_status worst = p->worst;
    for (int i = 0; i < p->nspools; i++)
        if (p->spool[i][0] != '\0')
            unlink(p->spool[i]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->changed);
    free(p);
    if (*failed > 0)
        return ac_fail(err, worst != AC_OK ? worst : AC_ECANTCREAT,
                       "%d workbook(s) could not be written", *failed);
    return AC_OK;
}

/* ------------------------------------------------------------ journals */

/* One month's journal, in the caller's open transaction holding the
 * month's directory lock: lines for its new documents, both files, the
 * directory's SHA256SUMS, the uploads.  *added: how many documents were
 * new (0: nothing was written). */
static ac_status journal_month(PGconn *conn, const char *out_root,
                               const char *month, const upload_options *uopt,
                               long long run_id, int *added, char *err)
{
    char dir[PATH_MAX], xlsx[PATH_MAX], csv[PATH_MAX], name_x[32],
         name_c[32], sums[PATH_MAX], date[16];
    outfile ox, oc;
    PGresult *res;
    const char *p[] = { month };
    ac_status rc = db_query(conn, "SELECT pg_advisory_xact_lock("
                            "hashtextextended('acbill-dir ' || $1, 0))", 1,
                            p, &res, err);
    if (rc != AC_OK)
        return rc;
    PQclear(res);
    snprintf(date, sizeof date, "%s-01", month);
    const char *dp[] = { date };
    rc = db_query(conn, "SELECT billing.journal_append($1::date)", 1, dp,
                  &res, err);
    if (rc != AC_OK)
        return rc;
    *added = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (*added == 0)
        return AC_OK;           /* another run wrote it meanwhile */

    rc = outfile_mkdir(out_root, month, dir, err);
    if (rc != AC_OK)
        return rc;
    snprintf(name_x, sizeof name_x, "journal-%s.xlsx", month);
    snprintf(name_c, sizeof name_c, "journal-%s.csv", month);
    snprintf(xlsx, sizeof xlsx, "%s/%s", dir, name_x);
    snprintf(csv, sizeof csv, "%s/%s", dir, name_c);
    rc = outfile_open_path(&ox, dir, name_x, err);
    if (rc != AC_OK)
        return rc;
    rc = outfile_open_path(&oc, dir, name_c, err);
    if (rc != AC_OK) {
        outfile_discard(&ox);
        return rc;
    }
    rc = report_journal(conn, month, ox.temp, oc.temp, err);
    if (rc == AC_EIO)
        rc = AC_ECANTCREAT;     /* our own output */
    if (rc == AC_OK)
        rc = outfile_commit(&ox, err);
    if (rc == AC_OK)
        rc = outfile_commit(&oc, err);
    outfile_discard(&ox);       /* after a commit: nothing left to do */
    outfile_discard(&oc);
    if (rc == AC_OK)
        rc = report_write_sha256sums(dir, err);
    if (rc == AC_EIO)
        rc = AC_ECANTCREAT;
    if (rc != AC_OK || uopt == NULL || uopt->base_url == NULL)
        return rc;
    snprintf(sums, sizeof sums, "%s/%s", dir, UPLOAD_MANIFEST_NAME);
    rc = upload_enqueue(conn, uopt, month, name_x, xlsx, NULL, run_id, err);
    if (rc == AC_OK)
        rc = upload_enqueue(conn, uopt, month, name_c, csv, NULL, run_id,
                            err);
    if (rc == AC_OK)
        rc = upload_enqueue(conn, uopt, month, UPLOAD_MANIFEST_NAME, sums,
                            NULL, run_id, err);
    return rc;
}

ac_status publish_journals(PGconn *conn, const char *out_root,
                           const upload_options *uopt, long long run_id,
                           int *written, char *err)
{
    PGresult *months;
    ac_status rc = db_query(conn, "SELECT to_char(m, 'YYYY-MM') FROM"
                            " billing.journal_pending_months() m", 0, NULL,
                            &months, err);
    *written = 0;
    if (rc != AC_OK)
        return rc;
    for (int i = 0; rc == AC_OK && i < PQntuples(months); i++) {
        const char *month = PQgetvalue(months, i, 0);
        int added = 0;
        rc = db_exec(conn, "BEGIN", err);
        if (rc == AC_OK)
            rc = journal_month(conn, out_root, month, uopt, run_id, &added,
                               err);
        if (rc == AC_OK)
            rc = db_exec(conn, "COMMIT", err);
        else
            db_exec(conn, "ROLLBACK", NULL);
        if (rc == AC_OK && added > 0) {
            (*written)++;
            ac_info("sales journal %s: %d document(s) added, written to "
                    "%s/%s/journal-%s.xlsx and .csv", month, added, out_root,
                    month, month);
        }
    }
    PQclear(months);
    return rc;
}
