/* run.c: see run.h; also the `acbill run` command. */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bill.h"
#include "civil.h"
#include "commands.h"
#include "db.h"
#include "deliver/outfile.h"
#include "log.h"
#include "lookback.h"
#include "setup/migrate.h"
#include "money.h"
#include "deliver/publish.h"
#include "rate/rating.h"
#include "report.h"
#include "reconciliation.h"
#include "reconcile/reconcile.h"

/* The run lock of a period is pg_advisory_lock(UPLOAD_RUN_LOCK_CLASS,
 * YYYYMM) (upload.h): runs of different periods go on side by side. */
#define RUN_LOCK_SQL(fn) "SELECT " fn "(" UPLOAD_RUN_LOCK_CLASS ", $1::int)"
#define DEFAULT_FAIR_USE_MINUTES 3000
#define RUN_MAX_PERIODS 25         /* lookback up to two years */
/* A worker stops after this many tenants in a row failed for a reason
 * that is not theirs (a timeout, the database unavailable): the next ones
 * would wait and fail the same way. */
#define TRANSIENT_FAILURES_MAX 2

int run_period_valid(const char *p)
{
    if (p == NULL || strlen(p) != 7 || p[4] != '-')
        return 0;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (p[i] < '0' || p[i] > '9'))
            return 0;
    int year = atoi(p), month = atoi(p + 5);
    return year >= 1900 && month >= 1 && month <= 12;
}

void run_default_period(char out[8])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int year = tm.tm_year + 1900, month = tm.tm_mon;   /* previous: 0-11 */
    if (month == 0) {
        month = 12;
        year--;
    }
    snprintf(out, 8, "%04d-%02d", year % 10000, month);
}

int run_open_periods(int64_t now_s, int lookback, char (*out)[8], int max)
{
    time_t now = (time_t)now_s;
    struct tm tm;
    int n = 0;

    gmtime_r(&now, &tm);
    long current = (long)(tm.tm_year + 1900) * 12 + tm.tm_mon;
    for (long m = current - lookback; m <= current && n < max; m++, n++)
        snprintf(out[n], 8, "%04ld-%02ld", (m / 12) % 10000, m % 12 + 1);
    return n;
}

/* Create dir and its parents (mode 0755); existing is fine. */
static int make_dirs(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* "YYYYMM" of a "YYYY-MM" period, the second key of its run lock. */
static void period_key(const char *period, char out[8])
{
    snprintf(out, 8, "%.4s%.2s", period, period + 5);
}

static ac_status start_run(PGconn *conn, const run_options *opt,
                           const char *out_dir, long long *run_id, char *err)
{
    char policy[512], host[256] = "", date[16], pid[16];
    PGresult *res;

    gethostname(host, sizeof host - 1);
    snprintf(date, sizeof date, "%s-01", opt->period);
    snprintf(policy, sizeof policy,
             "{\"minute_rounding\": \"ceil per call\","
             " \"money\": \"exact 1/10000, lines rounded half-up to 2 "
             "decimals\","
             " \"seats\": \"max purchased MCOMEETADD in period; assigned "
             "users before 2020-10-01\","
             " \"pool_order\": \"start_time, usage_id\","
             " \"fair_use_minutes\": %d}", (int)opt->fair_use_minutes);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    const char *p[] = { date, policy, ACBILL_VERSION, host, pid, out_dir };
    ac_status rc = db_query(conn,
        "INSERT INTO billing.runs (period, policy, job_version, host, pid,"
        " out_dir) VALUES ($1, $2::jsonb, $3, $4, $5, $6) RETURNING run_id",
        6, p, &res, err);
    if (rc != AC_OK)
        return rc;
    *run_id = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return AC_OK;
}

static void finish_run(PGconn *conn, const run_summary *s, ac_status rc,
                       const char *message)
{
    char id[32], t[16], f[16], i[16], c[32];
    snprintf(id, sizeof id, "%lld", s->run_id);
    snprintf(t, sizeof t, "%d", s->tenants);
    snprintf(f, sizeof f, "%d", s->failed);
    snprintf(i, sizeof i, "%d", s->issued);
    snprintf(c, sizeof c, "%lld", s->calls);
    const char *p[] = { id, rc == AC_OK ? "ok" : "failed", t, f, i, c,
                        message && *message ? message : NULL };
    char err[AC_ERR_MAX];
    if (db_exec_params(conn,
            "UPDATE billing.runs SET finished_at = now(), status = $2,"
            " tenants = $3, tenants_failed = $4, invoices_issued = $5,"
            " calls = $6, message = $7 WHERE run_id = $1", 7, p, err) !=
        AC_OK)
        ac_warn("could not record the end of run %s: %s", id, err);
}

/* The tenants to bill: those named, or all, in tenant_id order. */
static ac_status list_tenants(PGconn *conn, const run_options *opt,
                              PGresult **out, char *err)
{
    if (opt->ntenants == 0)
        return db_query(conn,
            "SELECT tenant_id, name, currency, time_zone FROM usage.tenants"
            " ORDER BY tenant_id COLLATE \"C\"", 0, NULL, out, err);
    /* Named tenants: one parameter holding a text[] literal would need
     * quoting; unnest of a VARIADIC call keeps every id a parameter. */
    char sql[RUN_MAX_TENANT_ARGS * 8 + 256];
    size_t n = (size_t)snprintf(sql, sizeof sql,
        "SELECT t.tenant_id, t.name, t.currency, t.time_zone"
        " FROM unnest(ARRAY[");
    for (int i = 0; i < opt->ntenants; i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s$%d::text",
                              i ? ", " : "", i + 1);
    snprintf(sql + n, sizeof sql - n,
             "]) AS w(id) LEFT JOIN usage.tenants t ON t.tenant_id = w.id"
             " ORDER BY w.id COLLATE \"C\"");
    ac_status rc = db_query(conn, sql, opt->ntenants, opt->tenants, out,
                            err);
    if (rc != AC_OK)
        return rc;
    /* Name every unknown one: a named id no row of the join found. */
    char unknown[AC_ERR_MAX / 2] = "";
    size_t u = 0;
    for (int k = 0; k < opt->ntenants; k++) {
        int found = 0;
        for (int i = 0; i < PQntuples(*out) && !found; i++)
            found = !PQgetisnull(*out, i, 0) &&
                    strcmp(PQgetvalue(*out, i, 0), opt->tenants[k]) == 0;
        if (!found && u < sizeof unknown - 1)
            u += (size_t)snprintf(unknown + u, sizeof unknown - u, "%s%s",
                                  u ? ", " : "", opt->tenants[k]);
    }
    if (u > 0) {
        PQclear(*out);
        *out = NULL;
        return ac_fail(err, AC_EUSAGE, "--tenant %s: no such tenant in "
                       "usage.tenants (ids are case-sensitive; `SELECT "
                       "tenant_id FROM usage.tenants` lists them)", unknown);
    }
    return AC_OK;
}

static ac_status write_period_files(PGconn *conn, const run_options *opt,
                                    const char *dir, long long run_id,
                                    char *err)
{
    char file[64], recon[64] = "";
    int empty = 0;
    /* docs/billing-rules.md 7: the reconciliation with Microsoft, for a period with
     * Partner Center data (written before the summary that links it). */
    int partner = report_reconciliation_has_data(conn, opt->period, err);
    if (partner < 0)
        return AC_EUNAVAIL;
    /* A period with nothing in it gets no finance summary, and nothing is
     * delivered for it (a nightly look-back covers months nobody used). */
    ac_status erc = report_period_is_empty(conn, opt->period, &empty, err);
    if (erc != AC_OK)
        return erc;
    if (empty && partner == 0) {
        ac_debug("period %s: no statement, usage, import reject or Partner "
                 "Center charge: no finance summary", opt->period);
        rmdir(dir);             /* only when nothing else is in it */
        return AC_OK;
    }
    if (partner > 0) {
        ac_status r = reconcile_write(conn, opt->period, dir, recon, NULL,
                                      err);
        if (r != AC_OK)
            return r;
    }
    outfile o;
    snprintf(file, sizeof file, "finance-summary-%s.xlsx", opt->period);
    ac_status rc = outfile_open_path(&o, dir, file, err);
    if (rc == AC_OK)
        rc = report_finance_summary(conn, opt->period, o.temp, err);
    if (rc == AC_OK)
        rc = outfile_commit(&o, err);
    else
        outfile_discard(&o);
    if (rc != AC_OK) {
        /* Writing our own output failed (disk full included): 73. */
        return rc == AC_EIO ? AC_ECANTCREAT : rc;
    }
    /* The directory's SHA256SUMS under its lock: a run of another period
     * may be writing this month's sales journal here (publish.h). */
    const char *lp[] = { opt->period };
    rc = db_exec_params(conn, "SELECT pg_advisory_lock(hashtextextended("
                        "'acbill-dir ' || $1, 0))", 1, lp, err);
    if (rc != AC_OK)
        return rc;
    rc = report_write_sha256sums(dir, err);
    db_exec_params(conn, "SELECT pg_advisory_unlock(hashtextextended("
                   "'acbill-dir ' || $1, 0))", 1, lp, NULL);
    if (rc == AC_EIO)
        rc = AC_ECANTCREAT;
    if (rc != AC_OK || opt->upload.base_url == NULL)
        return rc;
    /* The summary, then SHA256SUMS, which is delivered last. */
    char name[64], sums[PATH_MAX];
    snprintf(name, sizeof name, "finance-summary-%s.xlsx", opt->period);
    snprintf(sums, sizeof sums, "%s/%s", dir, UPLOAD_MANIFEST_NAME);
    rc = upload_enqueue(conn, &opt->upload, opt->period, name, o.final, NULL,
                        run_id, err);
    if (rc == AC_OK && recon[0] != '\0') {
        char rpath[PATH_MAX];
        snprintf(rpath, sizeof rpath, "%s/%s", dir, recon);
        rc = upload_enqueue(conn, &opt->upload, opt->period, recon, rpath,
                            NULL, run_id, err);
    }
    if (rc == AC_OK)
        rc = upload_enqueue(conn, &opt->upload, opt->period,
                            UPLOAD_MANIFEST_NAME, sums, NULL, run_id, err);
    return rc;
}

/* docs/billing-rules.md 4.2: no document without a complete seller.  Before billing any
 * tenant: AC_ECONFIG naming the empty ref.operator columns (and a number
 * prefix that is not safe, docs/billing-rules.md 2), so that nothing is issued. */
static ac_status check_seller(PGconn *conn, char *err)
{
    PGresult *res;
    ac_status rc = db_query(conn, "SELECT array_to_string("
                            "billing.document_seller_missing(), ', ')", 0,
                            NULL, &res, err);
    if (rc != AC_OK)
        return rc;
    if (PQgetvalue(res, 0, 0)[0] != '\0')
        rc = ac_fail(err, AC_ECONFIG, "the seller on every document, "
                     "ref.operator, is incomplete: %s missing or not "
                     "valid; nothing was billed (set them, then run "
                     "again)", PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

/* A document-number prefix docs/billing-rules.md 2 allows: at most 16 characters of
 * ASCII letters, digits, '-', '_' and '.', not starting with '.'.  The
 * prefix becomes part of file names (<document_no>.xlsx), so anything
 * else could name a path outside the output folder. */
static int safe_prefix(const char *p)
{
    size_t n = strlen(p);
    if (n > 16 || p[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* The document-number prefixes of ref.operator (docs/billing-rules.md 2), checked before
 * anything is issued: AC_ECONFIG naming the column when one is not safe
 * (migration 021 checks them in the database too, but a row older than
 * the constraint, or a database without it, must not reach a file
 * name), or when both are the same (the two series would take the same
 * numbers). */
static ac_status check_prefixes(PGconn *conn, char *err)
{
    PGresult *res;
    ac_status rc = db_query(conn, "SELECT invoice_prefix, credit_note_prefix"
                            " FROM ref.operator", 0, NULL, &res, err);
    if (rc != AC_OK)
        return rc;
    for (int i = 0; rc == AC_OK && i < PQntuples(res); i++) {
        static const char *const cols[] = { "invoice_prefix",
                                            "credit_note_prefix" };
        for (int c = 0; rc == AC_OK && c < 2; c++) {
            const char *v = PQgetisnull(res, i, c) ? "" :
                            PQgetvalue(res, i, c);
            if (!safe_prefix(v))
                rc = ac_fail(err, AC_ECONFIG, "ref.operator.%s '%s' is not "
                             "a safe document-number prefix: at most 16 "
                             "letters, digits, '-', '_' and '.', not "
                             "starting with '.' (docs/billing-rules.md 2); nothing issued",
                             cols[c], v);
        }
        if (rc == AC_OK && strcmp(PQgetvalue(res, i, 0),
                                  PQgetvalue(res, i, 1)) == 0)
            rc = ac_fail(err, AC_ECONFIG, "ref.operator.invoice_prefix and "
                         "ref.operator.credit_note_prefix are both '%s': "
                         "invoices and credit notes would take the same "
                         "numbers; nothing issued", PQgetvalue(res, i, 0));
    }
    PQclear(res);
    return rc;
}

/* Deliver what is pending (earlier runs' failures first, then this
 * run's files).  Failed deliveries stay pending for the next run. */
static ac_status deliver(PGconn *conn, const run_options *opt,
                         int *pending, char *err)
{
    int delivered = 0;
    *pending = 0;
    if (opt->upload.base_url == NULL)
        return AC_OK;
    ac_status rc = upload_deliver_pending(conn, &opt->upload, &delivered,
                                          pending, err);
    if (rc == AC_OK && (delivered > 0 || *pending > 0))
        ac_info("upload: %d file(s) delivered, %d pending", delivered,
                *pending);
    return rc;
}

/* The run's outcome counts, from billing.run_tenants (all workers and
 * joiners), and the status its failed tenants call for. */
static ac_status count_results(PGconn *conn, run_summary *s, char *err)
{
    char id[32];
    PGresult *res;
    snprintf(id, sizeof id, "%lld", s->run_id);
    const char *p[] = { id };
    ac_status rc = db_query(conn,
        "SELECT count(*) FILTER (WHERE status = 'issued'),"
        "       count(*) FILTER (WHERE status = 'unchanged'),"
        "       count(*) FILTER (WHERE status = 'failed'),"
        "       coalesce(sum(calls), 0),"
        "       coalesce(string_agg(DISTINCT coalesce(exit_status, 65)::text,"
        "                ',') FILTER (WHERE status = 'failed'), ''),"
        "       count(*) FILTER (WHERE status = 'draft'),"
        "       count(*) FILTER (WHERE status = 'held')"
        " FROM billing.run_tenants WHERE run_id = $1", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    s->issued = atoi(PQgetvalue(res, 0, 0));
    s->unchanged = atoi(PQgetvalue(res, 0, 1));
    s->failed = atoi(PQgetvalue(res, 0, 2));
    s->calls = atoll(PQgetvalue(res, 0, 3));
    s->failed_status = AC_OK;
    for (const char *c = PQgetvalue(res, 0, 4); *c; c++)
        if (c == PQgetvalue(res, 0, 4) || c[-1] == ',')
            s->failed_status = ac_status_worst(s->failed_status,
                                               (ac_status)atoi(c));
    s->drafted = atoi(PQgetvalue(res, 0, 5));
    s->held = atoi(PQgetvalue(res, 0, 6));
    PQclear(res);
    return AC_OK;
}

/* "2 of 12 tenant(s) failed: T3 (data error: ...), T7 (...)" into err,
 * naming at most three, for the log's last line and cron's mail. */
static void describe_failures(PGconn *conn, const run_summary *s, char *err)
{
    char id[32], list[AC_ERR_MAX] = "";
    size_t n = 0;
    PGresult *res;
    snprintf(id, sizeof id, "%lld", s->run_id);
    const char *p[] = { id };
    if (db_query(conn, "SELECT tenant_id, coalesce(exit_status, 65),"
                 " coalesce(message, '')"
                 " FROM billing.run_tenants WHERE run_id = $1 AND status ="
                 " 'failed' ORDER BY tenant_id COLLATE \"C\" LIMIT 3", 1, p,
                 &res, NULL) == AC_OK) {
        for (int i = 0; i < PQntuples(res) && n < sizeof list - 1; i++) {
            int w = snprintf(list + n, sizeof list - n, "%s%s (%s: %.90s)",
                             i ? ", " : ": ", PQgetvalue(res, i, 0),
                             ac_status_name((ac_status)atoi(
                                 PQgetvalue(res, i, 1))),
                             PQgetvalue(res, i, 2));
            n += w > 0 ? (size_t)w : 0;
        }
        PQclear(res);
    }
    ac_fail(err, AC_OK, "%d of %d tenant(s) failed%s%s; see "
            "billing.run_tenants for run %lld", s->failed, s->tenants, list,
            s->failed > 3 ? ", ..." : "", s->run_id);
}

/* ------------------------------------------------------------ progress
 *
 * On a terminal (and not --quiet) a status line shows tenants and calls
 * done by every worker, the rate and the time left, estimated from the
 * calls still to rate.  The counters live in memory shared with the
 * forked workers; a thread of the run's own process redraws the line
 * (log.h keeps log lines above it). */

typedef struct {
    _Atomic long long calls;
    _Atomic int tenants;
} run_counters;

typedef struct {
    run_counters *c;            /* shared; NULL: no progress */
    int tenants;                /* to bill */
    long long calls;            /* to rate, estimated; 0: unknown */
    struct timespec t0;
    pthread_t thread;
    int started;
    atomic_int stop;
} progress_view;

/* Draw the line; the final one shows what was done, without estimate. */
static void progress_draw(progress_view *v, int final)
{
    struct timespec now;
    char text[160], left[48] = "";
    clock_gettime(CLOCK_MONOTONIC, &now);
    double secs = (double)(now.tv_sec - v->t0.tv_sec) +
                  (double)(now.tv_nsec - v->t0.tv_nsec) / 1e9;
    long long calls = atomic_load(&v->c->calls);
    int tenants = atomic_load(&v->c->tenants);
    double rate = secs > 0 ? (double)calls / secs : 0;

    if (v->calls > 0 && calls > 0 && calls < v->calls)
        snprintf(left, sizeof left, "  %.0f s left",
                 secs * (double)(v->calls - calls) / (double)calls);
    else if (v->calls <= 0 && tenants > 0 && tenants < v->tenants)
        snprintf(left, sizeof left, "  %.0f s left",
                 secs * (v->tenants - tenants) / tenants);
    if (final)
        snprintf(text, sizeof text, "  %d/%d tenants  %lld calls  "
                 "%.0f calls/s  %.0f s", tenants, v->tenants, calls, rate,
                 secs);
    else if (v->calls > 0)
        snprintf(text, sizeof text, "  %d/%d tenants  %lld/%lld calls  "
                 "%.0f calls/s  %.0f s%s", tenants, v->tenants, calls,
                 calls > v->calls ? calls : v->calls, rate, secs, left);
    else
        snprintf(text, sizeof text, "  %d/%d tenants  %lld calls  "
                 "%.0f calls/s  %.0f s%s", tenants, v->tenants, calls, rate,
                 secs, left);
    ac_log_status_set(text);
}

static void *progress_main(void *arg)
{
    progress_view *v = arg;
    while (!atomic_load(&v->stop)) {
        progress_draw(v, 0);
        struct timespec nap = { 0, 250 * 1000 * 1000 };
        nanosleep(&nap, NULL);
    }
    return NULL;
}

/* The calls of the period (at most 14 hours either side of the UTC month,
 * the widest time-zone offsets), for the estimate; 0 when not known. */
static long long estimate_calls(PGconn *conn, const run_options *opt)
{
    char date[16];
    PGresult *res;
    long long n = 0;
    if (opt->ntenants > 0)
        return 0;
    snprintf(date, sizeof date, "%s-01", opt->period);
    const char *p[] = { date };
    if (db_query(conn, "SELECT count(*) FROM usage.dialout_calls WHERE"
                 " start_time >= $1::date - interval '14 hours' AND"
                 " start_time < $1::date + interval '1 month 14 hours'", 1,
                 p, &res, NULL) == AC_OK) {
        n = atoll(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    return n;
}

/* Set up the counters (before any fork); v->c stays NULL without a
 * terminal or when the memory cannot be had. */
static void progress_init(progress_view *v, const run_options *opt,
                          PGconn *conn, int tenants)
{
    memset(v, 0, sizeof *v);
    clock_gettime(CLOCK_MONOTONIC, &v->t0);
    if (!opt->progress)
        return;
    void *m = mmap(NULL, sizeof *v->c, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return;
    if (ac_log_status_open() != 0) {
        munmap(m, sizeof *v->c);
        return;
    }
    v->c = m;
    atomic_init(&v->c->calls, 0);
    atomic_init(&v->c->tenants, 0);
    v->tenants = tenants;
    v->calls = estimate_calls(conn, opt);
    progress_draw(v, 0);
}

/* Start redrawing (after the workers are forked). */
static void progress_start(progress_view *v)
{
    if (v->c != NULL && pthread_create(&v->thread, NULL, progress_main, v)
            == 0)
        v->started = 1;
}

/* Stop redrawing; the last state stays on the terminal as a line. */
static void progress_end(progress_view *v)
{
    if (v->c == NULL)
        return;
    if (v->started) {
        atomic_store(&v->stop, 1);
        pthread_join(v->thread, NULL);
        v->started = 0;
    }
    progress_draw(v, 1);
    ac_log_status_close(1);
    munmap(v->c, sizeof *v->c);
    v->c = NULL;
}

/* ------------------------------------------------------------ lifecycle */

/* Mark `killed` the runs still `running` whose process is gone: their
 * period's run lock is free (a live run holds it; this process holds the
 * lock of period_self).  Called with that lock held. */
static void mark_killed_runs(PGconn *conn, const char *self_key)
{
    PGresult *res, *lock;
    char err[AC_ERR_MAX];
    if (db_query(conn, "SELECT run_id, to_char(period, 'YYYYMM'),"
                 " coalesce(host, '?'), coalesce(pid::text, '?')"
                 " FROM billing.runs WHERE status = 'running'"
                 " ORDER BY run_id", 0, NULL, &res, err) != AC_OK) {
        ac_warn("cannot look for killed runs: %s", err);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *key = PQgetvalue(res, i, 1);
        const char *kp[] = { key };
        int dead = strcmp(key, self_key) == 0;
        if (!dead && db_query(conn, RUN_LOCK_SQL("pg_try_advisory_lock"), 1,
                              kp, &lock, NULL) == AC_OK) {
            dead = strcmp(PQgetvalue(lock, 0, 0), "t") == 0;
            PQclear(lock);
            if (dead)
                db_exec_params(conn, RUN_LOCK_SQL("pg_advisory_unlock"), 1,
                               kp, NULL);
        }
        if (!dead)
            continue;
        const char *p[] = { PQgetvalue(res, i, 0) };
        if (db_exec_params(conn, "UPDATE billing.runs SET status = 'killed',"
                " finished_at = now(), message = 'the process ended without"
                " closing the run (killed, or its host lost); marked by a"
                " later run' WHERE run_id = $1 AND status = 'running'", 1, p,
                err) == AC_OK)
            ac_warn("run %s (period %.4s-%.2s, host %s, pid %s) ended "
                    "without closing: marked killed; this run bills what it "
                    "left", p[0], key, key + 4, PQgetvalue(res, i, 2),
                    PQgetvalue(res, i, 3));
    }
    PQclear(res);
}

/* The run in progress for period (a process holds its run lock): its id
 * into *run_id (0 when there is none) and its output directory into
 * out_dir (PATH_MAX; "" when it writes none). */
static ac_status find_live_run(PGconn *conn, const char *period,
                               long long *run_id, char *out_dir, char *err)
{
    char date[16];
    PGresult *res;
    snprintf(date, sizeof date, "%s-01", period);
    const char *p[] = { date };
    ac_status rc = db_query(conn,
        "SELECT run_id, coalesce(out_dir, '') FROM billing.runs"
        " WHERE status = 'running' AND period = $1::date"
        " ORDER BY run_id DESC LIMIT 1", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    *run_id = PQntuples(res) ? atoll(PQgetvalue(res, 0, 0)) : 0;
    snprintf(out_dir, PATH_MAX, "%s", PQntuples(res) ? PQgetvalue(res, 0, 1)
                                                     : "");
    PQclear(res);
    return AC_OK;
}

/* Remove what a killed run left in dir and its drafts/: temporary
 * workbooks, finance summaries and SHA256SUMS, spools, libxlsxwriter's
 * private directories (outfile.h).  Only called under the period's run
 * lock. */
static void remove_stale(const char *dir)
{
    static const char *const prefixes[] = { ".acbill-spool-",
        "." UPLOAD_MANIFEST_NAME "." };
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX];
    struct stat st;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        int stale = 0;
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
            if (strncmp(e->d_name, prefixes[i], strlen(prefixes[i])) == 0)
                stale = 1;
        if (!stale)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0)
            ac_info("removed %s, left by an earlier run", path);
    }
    closedir(d);
    outfile_sweep(dir);
    snprintf(path, sizeof path, "%s/drafts", dir);
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
        outfile_sweep(path);
}

/* ------------------------------------------------------------- workers */

/* Claim (tenant, period) for billing: a session advisory lock keyed by a
 * 64-bit hash of both, so that workers of one run, and runs on other
 * hosts, never bill one tenant's period at the same time.  *got is 0 when
 * someone else holds it (only when !blocking).  A blocking claim waits as
 * long as the other holder bills the tenant, so lock_timeout and
 * statement_timeout are lifted for it. */
static ac_status claim(PGconn *conn, const char *period, const char *tenant,
                       int blocking, int *got, char *err)
{
    const char *p[] = { period, tenant };
    PGresult *res;
    ac_status rc = AC_OK;
    if (blocking)
        rc = db_exec(conn, "BEGIN; SET LOCAL lock_timeout = 0;"
                     " SET LOCAL statement_timeout = 0", err);
    if (rc == AC_OK)
        rc = db_query(conn, blocking
            ? "SELECT pg_advisory_lock(('x' || substr(md5('acbill/' || $1 ||"
              " '/' || $2), 1, 16))::bit(64)::bigint), true"
            : "SELECT true, pg_try_advisory_lock(('x' || substr(md5('acbill/'"
              " || $1 || '/' || $2), 1, 16))::bit(64)::bigint)", 2, p, &res,
            err);
    if (blocking)
        db_exec(conn, rc == AC_OK ? "COMMIT" : "ROLLBACK", NULL);
    if (rc != AC_OK)
        return rc;
    *got = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    PQclear(res);
    return AC_OK;
}

static void release(PGconn *conn, const char *period, const char *tenant)
{
    const char *p[] = { period, tenant };
    db_exec_params(conn, "SELECT pg_advisory_unlock(('x' ||"
                   " substr(md5('acbill/' || $1 || '/' || $2), 1, 16))"
                   "::bit(64)::bigint)", 2, p, NULL);
}

/* 1 when this run already has an outcome for the tenant. */
static ac_status done_in_run(PGconn *conn, long long run_id,
                             const char *tenant, int *done, char *err)
{
    char id[32];
    PGresult *res;
    snprintf(id, sizeof id, "%lld", run_id);
    const char *p[] = { id, tenant };
    ac_status rc = db_query(conn, "SELECT 1 FROM billing.run_tenants"
                            " WHERE run_id = $1 AND tenant_id = $2", 2, p,
                            &res, err);
    if (rc != AC_OK)
        return rc;
    *done = PQntuples(res) > 0;
    PQclear(res);
    return AC_OK;
}

/* Record the status a failed tenant failed with, so that the run's exit
 * status says what to do (65 only for the tenant's data). */
static void record_failure_status(PGconn *conn, long long run_id,
                                  const char *tenant, ac_status code)
{
    char id[32], st[16];
    snprintf(id, sizeof id, "%lld", run_id);
    snprintf(st, sizeof st, "%d", (int)code);
    const char *p[] = { id, tenant, st };
    db_exec_params(conn, "UPDATE billing.run_tenants SET exit_status = $3"
                   " WHERE run_id = $1 AND tenant_id = $2 AND status ="
                   " 'failed'", 3, p, NULL);
}

/* Bill tenant row i if nobody else is billing it and this run has not
 * yet; *skipped is set when another session holds its claim, *failed to
 * the status a failure of the tenant calls for (AC_OK: none). */
static ac_status work_tenant(PGconn *conn, const bill_context *ctx,
                             PGresult *tenants, int i, int blocking,
                             int *skipped, ac_status *failed,
                             run_counters *counters, char *err)
{
    char msg[AC_ERR_MAX];
    bill_tenant_info t = {
        .tenant_id = PQgetvalue(tenants, i, 0),
        .name = PQgetvalue(tenants, i, 1),
        .currency = PQgetvalue(tenants, i, 2),
        .time_zone = PQgetvalue(tenants, i, 3)
    };
    int got = 0, done = 0;
    ac_status rc = claim(conn, ctx->period, t.tenant_id, blocking, &got, err);

    *skipped = 0;
    *failed = AC_OK;
    if (rc != AC_OK)
        return rc;
    if (!got) {
        *skipped = 1;
        return AC_OK;
    }
    rc = done_in_run(conn, ctx->run_id, t.tenant_id, &done, err);
    if (rc == AC_OK && !done) {
        bill_result r;
        ac_status trc = bill_tenant(conn, ctx, &t, &r, msg);
        if (counters != NULL) {
            atomic_fetch_add(&counters->calls, (long long)r.calls);
            atomic_fetch_add(&counters->tenants, 1);
        }
        if (trc == AC_OK && r.held[0] != '\0')
            /* docs/billing-rules.md 4.2: the statement stands, its documents wait (an
             * information, like the finance summary's row: held tenants
             * do not change the exit status, and --quiet stays quiet). */
            ac_info("tenant %s: %s %s (%d calls, total %s %s) %s",
                    t.tenant_id, r.outcome == BILL_ISSUED ? "issued"
                    : "statement", r.invoice_no, (int)r.calls, r.total,
                    t.currency, r.held);
        else if (trc == AC_OK && r.outcome == BILL_UNCHANGED &&
                 r.documents[0] != '\0')
            ac_info("tenant %s: %s stands; documents issued now: %s",
                    t.tenant_id, r.invoice_no, r.documents);
        else if (trc == AC_OK && r.outcome == BILL_ISSUED)
            ac_info("tenant %s: issued %s (%d calls, total %s %s)%s%s",
                    t.tenant_id, r.invoice_no, (int)r.calls, r.total,
                    t.currency, r.documents[0] ? "; documents " : "",
                    r.documents);
        else if (trc == AC_OK && r.outcome == BILL_DRAFT)
            ac_info("tenant %s: in its grace period, drafted (%d calls, "
                    "total %s %s)%s%s", t.tenant_id, (int)r.calls, r.total,
                    t.currency, r.draft_path[0] ? ": " : "", r.draft_path);
        else if (trc == AC_OK && r.outcome == BILL_NO_USAGE)
            ac_debug("tenant %s: no call in the period, nothing to bill",
                     t.tenant_id);
        else if (trc == AC_OK)
            ac_debug("tenant %s: unchanged, %s stands", t.tenant_id,
                     r.invoice_no);
        else
            ac_error("%s", msg);
        if (trc != AC_OK) {
            /* A spool that could not be written is our output (73). */
            *failed = trc == AC_EIO ? AC_ECANTCREAT : trc;
            if (PQstatus(conn) == CONNECTION_OK)
                record_failure_status(conn, ctx->run_id, t.tenant_id,
                                      *failed);
            else
                rc = ac_fail(err, AC_EUNAVAIL, "lost the database: %s",
                             msg);
        }
    }
    if (PQstatus(conn) == CONNECTION_OK)
        release(conn, ctx->period, t.tenant_id);
    return rc;
}

/* One worker's share: every tenant, starting at this worker's slice so
 * that workers rarely meet; tenants claimed by someone else are tried
 * again at the end, waiting for the claim, so that when the loop ends
 * every tenant has an outcome in this run.  A worker whose tenants fail
 * TRANSIENT_FAILURES_MAX times in a row for the database's sake (a
 * timeout, a held lock) stops with that status and leaves the rest for
 * the next run. */
static ac_status work_loop(PGconn *conn, const run_options *opt,
                           const bill_context *ctx, PGresult *tenants,
                           int worker, int nworkers, run_counters *counters,
                           char *err)
{
    int n = PQntuples(tenants), nskipped = 0, skipped, transient = 0;
    int *later = calloc((size_t)n + 1, sizeof *later);
    int first = (int)((long long)n * worker / nworkers);
    bill_context mine = *ctx;
    ac_status rc = AC_OK, failed;

    if (later == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    if (opt->out_dir != NULL) {
        /* Workbook writers: the machine's cores shared among workers
         * (the billing itself mostly waits on the database). */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int threads = (int)((cores > 0 ? cores : 2) / nworkers);
        rc = publisher_start(opt->conninfo, ctx->spool_dir, ctx->period,
                             ctx->run_id, &opt->upload, threads, &mine.pub,
                             err);
        if (rc != AC_OK) {
            free(later);
            return rc;
        }
    }
    ctx = &mine;
    for (int pass = 0; pass < 2 && rc == AC_OK; pass++) {
        /* A joiner leaves claimed tenants to the run it helps, which waits
         * for them; the run's own workers wait, so the run ends complete. */
        int count = pass == 0 ? n : opt->join ? 0 : nskipped;
        for (int k = 0; rc == AC_OK && k < count; k++) {
            int i = pass == 0 ? (first + k) % n : later[k];
            rc = work_tenant(conn, ctx, tenants, i, pass == 1, &skipped,
                             &failed, counters, err);
            if (pass == 0 && skipped)
                later[nskipped++] = i;
            transient = failed == AC_ETEMPFAIL || failed == AC_EUNAVAIL
                            ? transient + 1 : 0;
            if (rc == AC_OK && transient >= TRANSIENT_FAILURES_MAX)
                rc = ac_fail(err, failed, "%d tenants in a row failed with "
                             "\"%s\": the database is not serving now; the "
                             "tenants left are billed by the next run",
                             transient, ac_status_name(failed));
        }
    }
    free(later);
    if (mine.pub != NULL) {
        int nfailed;
        char why[AC_ERR_MAX];
        ac_status prc = publisher_finish(mine.pub, &nfailed, why);
        if (prc != AC_OK && rc == AC_OK)
            rc = ac_fail(err, prc, "%s", why);
    }
    return rc;
}

/* Fork nworkers processes, each with its own connection, and wait for
 * them.  The parent's connection stays idle (a child must never use it).
 * A worker dies with its parent (PR_SET_PDEATHSIG), so a killed run
 * leaves no orphan holding tenant claims. */
static ac_status run_workers(const run_options *opt, const bill_context *ctx,
                             PGresult *tenants, progress_view *pv, char *err)
{
    int started = 0;
    ac_status worst = AC_OK;
    pid_t parent = getpid();

    fflush(NULL);
    for (int w = 0; w < opt->workers; w++) {
        pid_t pid = fork();
        if (pid < 0) {
            worst = ac_fail(err, AC_EOSERR, "cannot start worker: %s",
                            strerror(errno));
            break;
        }
        if (pid == 0) {
            PGconn *mine;
            char why[AC_ERR_MAX];
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
                getppid() != parent)        /* the parent died already */
                _exit(AC_ETEMPFAIL);
            ac_status rc = db_connect(opt->conninfo, &mine, why);
            if (rc == AC_OK) {
                rc = work_loop(mine, opt, ctx, tenants, w, opt->workers,
                               pv->c, why);
                PQfinish(mine);
            }
            if (rc != AC_OK)
                ac_error("worker %d: %s", w + 1, why);
            fflush(NULL);
            _exit(rc);
        }
        started++;
    }
    progress_start(pv);
    for (int live = started; live > 0;) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid < 0)
            break;
        live--;
        ac_status code = WIFEXITED(st) ? (ac_status)WEXITSTATUS(st)
                                       : AC_EINTERNAL;
        if (code != AC_OK && ac_status_worst(worst, code) != worst) {
            worst = code;
            ac_fail(err, code, "a worker ended with status %d (%s)", code,
                    ac_status_name(code));
        }
    }
    return worst;
}

ac_status run_period(const run_options *opt, run_summary *summary,
                     char *err)
{
    char sql_dir[PATH_MAX], out_dir[PATH_MAX], msg[AC_ERR_MAX];
    char real_out[PATH_MAX] = "", key[8];
    PGconn *conn = NULL;
    PGresult *lock = NULL, *tenants = NULL;
    rating_ref *ref = NULL;
    progress_view pv;
    ac_status rc;

    memset(summary, 0, sizeof *summary);
    memset(&pv, 0, sizeof pv);
    period_key(opt->period, key);
    if (opt->out_dir != NULL) {
        mode_t mode;
        if (make_dirs(opt->out_dir) != 0)
            return ac_fail(err, AC_ECANTCREAT, "cannot create %s: %s",
                           opt->out_dir, strerror(errno));
        rc = outfile_mkdir(opt->out_dir, opt->period, out_dir, err);
        if (rc == AC_OK)
            rc = outfile_mode(&mode, err);
        if (rc != AC_OK)
            return rc;
        if (realpath(opt->out_dir, real_out) == NULL)
            return ac_fail(err, AC_ECANTCREAT, "cannot resolve %s: %s",
                           opt->out_dir, strerror(errno));
    }
    rc = migrate_find_sql_dir(sql_dir, sizeof sql_dir, err);
    if (rc == AC_OK)
        rc = db_connect(opt->conninfo, &conn, err);
    if (rc == AC_OK)
        rc = migrate_check(conn, sql_dir, err);
    if (rc == AC_OK)
        rc = check_seller(conn, err);
    if (rc == AC_OK)
        rc = check_prefixes(conn, err);
    const char *kp[] = { key };
    if (rc == AC_OK)
        rc = db_query(conn, RUN_LOCK_SQL("pg_try_advisory_lock"), 1, kp,
                      &lock, err);
    int locked = rc == AC_OK && strcmp(PQgetvalue(lock, 0, 0), "t") == 0;
    PQclear(lock);
    if (rc == AC_OK && opt->join) {
        char run_out[PATH_MAX];
        if (locked) {       /* nobody is running: nothing to help with */
            db_exec_params(conn, RUN_LOCK_SQL("pg_advisory_unlock"), 1, kp,
                           NULL);
            ac_info("join: no run is in progress for %s; nothing to do",
                    opt->period);
            PQfinish(conn);
            return AC_OK;
        }
        rc = find_live_run(conn, opt->period, &summary->run_id, run_out,
                           err);
        if (rc == AC_OK && summary->run_id == 0) {
            ac_info("join: the run of %s has not started yet; nothing to "
                    "do", opt->period);
            PQfinish(conn);
            return AC_OK;
        }
        if (rc == AC_OK && strcmp(run_out, real_out) != 0)
            rc = ac_fail(err, AC_EUSAGE, "join: run %lld writes its "
                         "workbooks to %s, this one would write to %s: give "
                         "the same --out (a directory both hosts share)",
                         summary->run_id, run_out[0] ? run_out : "(none)",
                         real_out[0] ? real_out : "(none)");
    } else if (rc == AC_OK && !locked) {
        rc = ac_fail(err, AC_ETEMPFAIL, "another acbill run of %s holds its "
                     "run lock; try again later (or help it with --join)",
                     opt->period);
    }
    if (rc == AC_OK && !opt->join)
        mark_killed_runs(conn, key);
    if (rc == AC_OK && (ref = rating_ref_new()) == NULL)
        rc = ac_fail(err, AC_EOSERR, "out of memory");
    if (rc == AC_OK)
        rc = bill_load_reference(conn, ref, err);
    if (rc == AC_OK)
        rc = list_tenants(conn, opt, &tenants, err);
    if (rc == AC_OK && !opt->join)
        rc = start_run(conn, opt, real_out[0] ? real_out : NULL,
                       &summary->run_id, err);
    int pending = 0;
    if (rc == AC_OK && !opt->join &&
        deliver(conn, opt, &pending, msg) != AC_OK)
        ac_warn("upload: %s", msg);
    if (rc == AC_OK && !opt->join && opt->out_dir != NULL)
        remove_stale(out_dir);
    if (rc != AC_OK) {
        PQclear(tenants);
        rating_ref_free(ref);
        PQfinish(conn);
        return rc;
    }

    bill_context ctx = { .ref = ref, .fair_use_minutes =
                         opt->fair_use_minutes, .run_id = summary->run_id,
                         .spool_dir = opt->out_dir ? out_dir : NULL,
                         .as_of = opt->as_of };
    snprintf(ctx.period, sizeof ctx.period, "%s", opt->period);
    snprintf(ctx.period_date, sizeof ctx.period_date, "%s-01", opt->period);
    summary->tenants = PQntuples(tenants);
    ac_info("run %lld: period %s, %d tenant(s)", summary->run_id,
            opt->period, summary->tenants);

    progress_init(&pv, opt, conn, summary->tenants);
    if (opt->workers > 1) {
        rc = run_workers(opt, &ctx, tenants, &pv, err);
    } else {
        progress_start(&pv);
        rc = work_loop(conn, opt, &ctx, tenants, 0, 1, pv.c, err);
    }
    progress_end(&pv);
    if (PQstatus(conn) == CONNECTION_OK) {
        ac_status crc = count_results(conn, summary, msg);
        if (rc == AC_OK && crc != AC_OK)
            rc = ac_fail(err, crc, "%s", msg);
    }
    if (opt->join) {
        /* The run's own process writes the period's files, closes the
         * run once every tenant has an outcome, and answers for them. */
        PQclear(tenants);
        rating_ref_free(ref);
        PQfinish(conn);
        return rc;
    }

    if (rc == AC_OK && opt->out_dir != NULL) {
        rc = write_period_files(conn, opt, out_dir, summary->run_id, msg);
        if (rc != AC_OK) {
            ac_error("period %s: %s", opt->period, msg);
            ac_fail(err, rc, "%s", msg);
        }
    }
    if (rc == AC_OK && opt->out_dir != NULL) {
        /* docs/billing-rules.md 4.5: the sales journals of the months of issue. */
        int months;
        rc = publish_journals(conn, real_out, &opt->upload,
                              summary->run_id, &months, msg);
        if (rc != AC_OK) {
            ac_error("sales journal: %s", msg);
            ac_fail(err, rc, "%s", msg);
        }
    }
    if (summary->failed > 0 &&
        ac_status_worst(rc, summary->failed_status) != rc) {
        rc = summary->failed_status;
        describe_failures(conn, summary, err);
    }
    if (PQstatus(conn) == CONNECTION_OK && opt->upload.base_url != NULL) {
        ac_status urc = deliver(conn, opt, &pending, msg);
        if (urc != AC_OK)
            ac_error("upload: %s", msg);
        if (rc == AC_OK && (urc != AC_OK || pending > 0))
            rc = ac_fail(err, AC_EUNAVAIL, "billing is done, but %d "
                         "file(s) wait for upload; the next run or `acbill "
                         "upload --pending` delivers them (`acbill upload "
                         "--list` says why they wait)", pending);
    }
    if (PQstatus(conn) == CONNECTION_OK)
        finish_run(conn, summary, rc, rc == AC_OK ? NULL : err);
    PQclear(tenants);
    rating_ref_free(ref);
    PQfinish(conn);
    return rc;
}

/* The periods of a run without --period: lookback_months from
 * ref.operator (3 without a row) before the month of --as-of (or now).
 * Calls of older periods without a statement are not billed by such a
 * run: each tenant-period of them is a warning (lookback.h). */
static ac_status open_periods(const run_options *opt,
                              char (*periods)[8], int *n, char *err)
{
    PGconn *conn = NULL;
    PGresult *res;
    const char *p[] = { opt->as_of };
    ac_status rc = db_connect(opt->conninfo, &conn, err);
    if (rc == AC_OK)
        rc = db_query(conn,
            "SELECT extract(epoch FROM coalesce($1::timestamptz, now()))"
            "::int8, coalesce((SELECT lookback_months FROM ref.operator), 3)",
            1, p, &res, err);
    if (rc == AC_OK) {
        int64_t now_s = atoll(PQgetvalue(res, 0, 0));
        int lookback = atoi(PQgetvalue(res, 0, 1));
        PQclear(res);
        if (lookback > RUN_MAX_PERIODS - 1)
            lookback = RUN_MAX_PERIODS - 1;
        *n = run_open_periods(now_s, lookback, periods, RUN_MAX_PERIODS);
        long found;
        char why[AC_ERR_MAX];
        if (*n > 0 &&
            lookback_warn(conn, periods[0], lookback,
                          opt->ntenants ? opt->tenants : NULL,
                          opt->ntenants, &found, why) != AC_OK)
            ac_warn("run: cannot look for usage older than the look-back "
                    "window: %s", why);
    }
    PQfinish(conn);
    return rc;
}

static void run_usage(FILE *out)
{
    fprintf(out,
        "usage: acbill run [OPTIONS]\n"
        "\n"
        "Rates every tenant's calls of the period and issues statements\n"
        "into billing.*: revision 1, or revision n+1 when the inputs\n"
        "changed; nothing when they did not; and the invoices and credit\n"
        "notes finance books.  A period still in its grace period (its\n"
        "local end + ref.operator.grace_hours, default 48) is drafted, not\n"
        "issued: DIR/YYYY-MM/drafts/.  With --out, writes into\n"
        "DIR/YYYY-MM/ each statement's workbook (<statement>.xlsx), each\n"
        "document's PDF (<document>.pdf) and, for Peppol buyers, its\n"
        "e-invoice (<document>.xml), the finance summary, the\n"
        "reconciliation with Partner Center (where its files were\n"
        "imported) and SHA256SUMS; the sales journal of the month of\n"
        "issue (journal-YYYY-MM.xlsx and .csv) goes to that month's\n"
        "folder.  With an upload URL it delivers them to URL/YYYY-MM/.\n"
        "\n"
        "  --period YYYY-MM        the month to bill (default: every open\n"
        "                          period, from ref.operator.lookback_months\n"
        "                          (default 3) before this month (UTC) up\n"
        "                          to this month, each a run of its own)\n"
        "  --as-of TIME            decide the grace period and the open\n"
        "                          periods as if it were TIME, an ISO 8601\n"
        "                          date and time such as 2026-12-03T00:00Z\n"
        "                          (default: now); documents are still\n"
        "                          dated when really issued\n"
        "  --tenant ID             bill only this tenant; repeat for more\n"
        "                          (default: every tenant in usage.tenants)\n"
        "  --out DIR               write workbooks under DIR/YYYY-MM/\n"
        "                          (default: none, the ledger only)\n"
        "  --upload-url URL        deliver the files there: https://,\n"
        "                          file:///dir, or http:// with\n"
        "                          ACBILL_ALLOW_HTTP=1 (default:\n"
        "                          $ACBILL_UPLOAD_URL, else no delivery);\n"
        "                          needs --out\n"
        "  --workers N             processes billing tenants in parallel,\n"
        "                          1 to %d (default 1)\n"
        "  --fair-use-minutes N    an organizer's exempt minutes above which\n"
        "                          FAIR_USE_REVIEW is raised (default %d)\n"
        "  --join                  help the run of the period in progress\n"
        "                          (another host, same database, same --out):\n"
        "                          bill tenants nobody has claimed yet\n"
        "  --db CONNINFO           the database (default: the libpq\n"
        "                          environment, PGHOST, PGDATABASE, ...)\n"
        "  -q, --quiet             warnings and errors only, no progress line\n"
        "  -v, --verbose           debug lines too\n"
        "  -h, --help              this text\n"
        "\n"
        "A progress line (tenants and calls of all workers, time left) is\n"
        "drawn when stderr is a terminal.  One run per period at a time:\n"
        "a second run of the same period exits 75, runs of different\n"
        "periods go on side by side.\n"
        "\n"
        "Environment: ACBILL_LOCK_TIMEOUT (default %s) and\n"
        "ACBILL_STATEMENT_TIMEOUT (default %s), PostgreSQL durations, \"0\"\n"
        "= none; the upload variables of `acbill upload --help`;\n"
        "ACBILL_SQL_DIR; ACBILL_XLSX_TMPDIR.\n"
        "\n"
        "exit status: 0 ok; 64 usage; 65 a tenant's data failed a check;\n"
        "69 database or upload server unavailable, or files wait for\n"
        "upload; 70 internal; 73 output cannot be written (disk full);\n"
        "75 try again later (the period's run lock is held, a timeout);\n"
        "78 configuration (also: the seller, ref.operator, incomplete).\n"
        "Tenants held for an incomplete buyer (ref.customers) do not change\n"
        "it.  See acbill(1).\n",
        RUN_MAX_WORKERS, DEFAULT_FAIR_USE_MINUTES, DB_DEFAULT_LOCK_TIMEOUT,
        DB_DEFAULT_STATEMENT_TIMEOUT);
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "period", required_argument, NULL, 'p' },
        { "tenant", required_argument, NULL, 't' },
        { "out", required_argument, NULL, 'o' },
        { "db", required_argument, NULL, 'd' },
        { "fair-use-minutes", required_argument, NULL, 'f' },
        { "workers", required_argument, NULL, 'w' },
        { "upload-url", required_argument, NULL, 'u' },
        { "join", no_argument, NULL, 'j' },
        { "as-of", required_argument, NULL, 'a' },
        { "quiet", no_argument, NULL, 'q' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    run_options opt = { .fair_use_minutes = DEFAULT_FAIR_USE_MINUTES,
                        .workers = 1 };
    char err[AC_ERR_MAX] = "";
    const char *upload_url = NULL;
    int c, period_given = 0;

    run_default_period(opt.period);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hqv", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (!run_period_valid(optarg))
                return ac_usage_error("run", "--period wants YYYY-MM, got "
                                      "'%s'", optarg);
            snprintf(opt.period, sizeof opt.period, "%s", optarg);
            period_given = 1;
            break;
        case 'a':
            if (!civil_timestamp_valid(optarg))
                return ac_usage_error("run", "--as-of wants a date and "
                                      "time such as 2026-12-03T00:00Z, got "
                                      "'%s'", optarg);
            opt.as_of = optarg;
            break;
        case 't':
            if (opt.ntenants == RUN_MAX_TENANT_ARGS)
                return ac_usage_error("run", "at most %d --tenant",
                                      RUN_MAX_TENANT_ARGS);
            if (*optarg == '\0')
                return ac_usage_error("run", "--tenant wants a tenant id");
            opt.tenants[opt.ntenants++] = optarg;
            break;
        case 'o':
            if (strlen(optarg) > PATH_MAX / 2 || *optarg == '\0')
                return ac_usage_error("run", "--out wants a directory of at "
                                      "most %d bytes", PATH_MAX / 2);
            opt.out_dir = optarg;
            break;
        case 'd':
            opt.conninfo = optarg;
            break;
        case 'f': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || end == optarg || v < 0 || v > INT32_MAX)
                return ac_usage_error("run", "--fair-use-minutes wants a "
                                      "whole number of minutes, got '%s'",
                                      optarg);
            opt.fair_use_minutes = (int32_t)v;
            break;
        }
        case 'w': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || end == optarg || v < 1 ||
                v > RUN_MAX_WORKERS)
                return ac_usage_error("run", "--workers wants 1 to %d, got "
                                      "'%s'", RUN_MAX_WORKERS, optarg);
            opt.workers = (int)v;
            break;
        }
        case 'u':
            upload_url = optarg;
            break;
        case 'j':
            opt.join = 1;
            break;
        case 'q':
            ac_log_set_level(AC_LOG_WARN);
            break;
        case 'v':
            ac_log_set_level(AC_LOG_DEBUG);
            break;
        case 'h':
            run_usage(stdout);
            return AC_OK;
        default:
            return ac_usage_getopt("run", c, argv);
        }
    }
    /* Every command-line error before any setting or the database. */
    if (optind < argc)
        return ac_usage_error("run", "unexpected argument '%s'",
                              argv[optind]);
    if (upload_url != NULL && opt.out_dir == NULL)
        return ac_usage_error("run", "--upload-url needs --out DIR (the "
                              "files to deliver are written there)");
    opt.progress = isatty(STDERR_FILENO) &&
                   ac_log_level_get() <= AC_LOG_INFO;
    ac_status urc = upload_options_from_env(&opt.upload, err);
    if (urc == AC_OK && upload_url != NULL) {
        opt.upload.base_url = upload_url;
        urc = upload_options_check(&opt.upload, err);
    }
    if (urc == AC_OK)
        urc = upload_options_check_folder(&opt.upload, err);
    if (urc != AC_OK) {
        ac_error("run: %s (exit %d, %s)", err, urc, ac_status_name(urc));
        return urc;
    }
    if (opt.upload.base_url != NULL && opt.out_dir == NULL) {
        ac_error("run: ACBILL_UPLOAD_URL is set: give --out DIR for the "
                 "files to deliver, or unset it (exit 78, configuration "
                 "error)");
        return AC_ECONFIG;
    }

    char periods[RUN_MAX_PERIODS][8];
    int nperiods = 1;
    snprintf(periods[0], sizeof periods[0], "%s", opt.period);
    if (!period_given) {
        ac_status prc = open_periods(&opt, periods, &nperiods, err);
        if (prc != AC_OK) {
            ac_error("run: %s (exit %d, %s)", err, prc, ac_status_name(prc));
            return prc;
        }
    }
    /* Each period is a run of its own; the exit status is the one to act
     * on first (ac_status_worst). */
    ac_status worst = AC_OK;
    for (int i = 0; i < nperiods; i++) {
        run_summary s;
        snprintf(opt.period, sizeof opt.period, "%s", periods[i]);
        ac_status rc = run_period(&opt, &s, err);
        if (s.run_id != 0)
            ac_info("run %lld: period %s done: %d tenant(s), %d issued, %d "
                    "unchanged, %d held, %d drafted, %d failed, %lld calls",
                    s.run_id, opt.period, s.tenants, s.issued, s.unchanged,
                    s.held, s.drafted, s.failed, s.calls);
        if (rc != AC_OK && nperiods > 1)
            ac_error("run: period %s: %s (exit %d, %s)", opt.period, err, rc,
                     ac_status_name(rc));
        else if (rc != AC_OK)
            ac_error("run: %s (exit %d, %s)", err, rc, ac_status_name(rc));
        worst = ac_status_worst(worst, rc);
        if (rc == AC_EUNAVAIL || rc == AC_ECONFIG)
            break;              /* the next periods would fail the same */
    }
    return worst;
}
