/* run.c: see run.h; also the `acbill run` command. */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bill.h"
#include "commands.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "money.h"
#include "publish.h"
#include "rating.h"
#include "report.h"

/* An arbitrary constant identifying the billing run lock. */
#define RUN_LOCK_KEY "7254106202"
#define DEFAULT_FAIR_USE_MINUTES 3000
#define RUN_MAX_PERIODS 25         /* lookback up to two years */

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

static ac_status start_run(PGconn *conn, const run_options *opt,
                           long long *run_id, char *err)
{
    char policy[512], host[256] = "", date[16];
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
    const char *p[] = { date, policy, ACBILL_VERSION, host };
    ac_status rc = db_query(conn,
        "INSERT INTO billing.runs (period, policy, job_version, host)"
        " VALUES ($1, $2::jsonb, $3, $4) RETURNING run_id", 4, p, &res,
        err);
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
    for (int i = 0; i < PQntuples(*out); i++)
        if (PQgetisnull(*out, i, 0))
            return ac_fail(err, AC_EUSAGE, "a tenant named with --tenant "
                           "does not exist");
    return AC_OK;
}

static ac_status write_period_files(PGconn *conn, const run_options *opt,
                                    const char *dir, long long run_id,
                                    char *err)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    snprintf(path, sizeof path, "%s/finance-summary-%s.xlsx", dir,
             opt->period);
    snprintf(tmp, sizeof tmp, "%s/.finance-summary-%s.xlsx.tmp-%ld", dir,
             opt->period, (long)getpid());
    ac_status rc = report_finance_summary(conn, opt->period, tmp, err);
    if (rc == AC_OK && rename(tmp, path) != 0)
        rc = ac_fail(err, AC_ECANTCREAT, "cannot write %s: %s", path,
                     strerror(errno));
    if (rc != AC_OK) {
        unlink(tmp);
        return rc;
    }
    rc = report_write_sha256sums(dir, err);
    if (rc != AC_OK || opt->upload.base_url == NULL)
        return rc;
    /* The summary, then SHA256SUMS, which is delivered last. */
    char name[64], sums[PATH_MAX];
    snprintf(name, sizeof name, "finance-summary-%s.xlsx", opt->period);
    snprintf(sums, sizeof sums, "%s/%s", dir, UPLOAD_MANIFEST_NAME);
    rc = upload_enqueue(conn, &opt->upload, opt->period, name, path, NULL,
                        run_id, err);
    if (rc == AC_OK)
        rc = upload_enqueue(conn, &opt->upload, opt->period,
                            UPLOAD_MANIFEST_NAME, sums, NULL, run_id, err);
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

/* The run's outcome counts, from billing.run_tenants (all workers). */
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
        "       count(*) FILTER (WHERE status = 'draft')"
        " FROM billing.run_tenants WHERE run_id = $1", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    s->issued = atoi(PQgetvalue(res, 0, 0));
    s->unchanged = atoi(PQgetvalue(res, 0, 1));
    s->failed = atoi(PQgetvalue(res, 0, 2));
    s->calls = atoll(PQgetvalue(res, 0, 3));
    s->drafted = atoi(PQgetvalue(res, 0, 4));
    PQclear(res);
    return AC_OK;
}

/* A progress line on a terminal: tenants done, calls per second (when
 * known) and time left. */
static void progress(const run_options *opt, int done, int total,
                     long long calls, struct timespec *t0)
{
    struct timespec now;
    if (!opt->progress)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double secs = (double)(now.tv_sec - t0->tv_sec) +
                  (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
    double left = done > 0 ? secs / done * (total - done) : 0;
    if (calls >= 0)
        fprintf(stderr, "\r  %d/%d tenants  %.0f calls/s  %.0f s left   ",
                done, total, secs > 0 ? (double)calls / secs : 0.0, left);
    else
        fprintf(stderr, "\r  %d/%d tenants  %.0f s left   ", done, total,
                left);
    if (done == total)
        fputc('\n', stderr);
}

/* The run in progress (its process holds the run lock) when it is for
 * period; *run_id is 0 otherwise. */
static ac_status find_live_run(PGconn *conn, const char *period,
                               long long *run_id, char *err)
{
    char date[16];
    PGresult *res;
    snprintf(date, sizeof date, "%s-01", period);
    const char *p[] = { date };
    ac_status rc = db_query(conn,
        "SELECT run_id FROM billing.runs WHERE status = 'running'"
        " AND run_id = (SELECT max(run_id) FROM billing.runs)"
        " AND period = $1::date", 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    *run_id = PQntuples(res) ? atoll(PQgetvalue(res, 0, 0)) : 0;
    PQclear(res);
    return AC_OK;
}

/* Remove what a killed run left in dir: temporary workbooks and spools.
 * Only called under the run lock. */
static void remove_stale(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' || (strstr(e->d_name, ".tmp-") == NULL &&
            strncmp(e->d_name, ".acbill-spool-", 14) != 0))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0)
            ac_info("removed %s, left by an earlier run", path);
    }
    closedir(d);
}

/* ------------------------------------------------------------- workers */

/* Claim (tenant, period) for billing: a session advisory lock keyed by a
 * 64-bit hash of both, so that workers of one run, and runs on other
 * hosts, never bill one tenant's period at the same time.  *got is 0 when
 * someone else holds it (only when !blocking). */
static ac_status claim(PGconn *conn, const char *period, const char *tenant,
                       int blocking, int *got, char *err)
{
    const char *p[] = { period, tenant };
    PGresult *res;
    ac_status rc = db_query(conn, blocking
        ? "SELECT pg_advisory_lock(('x' || substr(md5('acbill/' || $1 ||"
          " '/' || $2), 1, 16))::bit(64)::bigint), true"
        : "SELECT true, pg_try_advisory_lock(('x' || substr(md5('acbill/' ||"
          " $1 || '/' || $2), 1, 16))::bit(64)::bigint)", 2, p, &res, err);
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

/* Bill tenant row i if nobody else is billing it and this run has not
 * yet; *skipped is set when another session holds its claim. */
static ac_status work_tenant(PGconn *conn, const bill_context *ctx,
                             PGresult *tenants, int i, int blocking,
                             int *skipped, long long *calls, char *err)
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
        *calls += r.calls;
        if (trc == AC_OK && r.outcome == BILL_ISSUED)
            ac_info("tenant %s: issued %s (%d calls, total %s %s)%s%s",
                    t.tenant_id, r.invoice_no, (int)r.calls, r.total,
                    t.currency, r.documents[0] ? "; documents " : "",
                    r.documents);
        else if (trc == AC_OK && r.outcome == BILL_DRAFT)
            ac_info("tenant %s: in its grace period, drafted (%d calls, "
                    "total %s %s)%s%s", t.tenant_id, (int)r.calls, r.total,
                    t.currency, r.draft_path[0] ? ": " : "", r.draft_path);
        else if (trc == AC_OK)
            ac_debug("tenant %s: unchanged, %s stands", t.tenant_id,
                     r.invoice_no);
        else
            ac_error("%s", msg);
        if (trc != AC_OK && PQstatus(conn) != CONNECTION_OK)
            rc = ac_fail(err, AC_EUNAVAIL, "lost the database: %s", msg);
    }
    if (PQstatus(conn) == CONNECTION_OK)
        release(conn, ctx->period, t.tenant_id);
    return rc;
}

/* One worker's share: every tenant, starting at this worker's slice so
 * that workers rarely meet; tenants claimed by someone else are tried
 * again at the end, waiting for the claim, so that when the loop ends
 * every tenant has an outcome in this run. */
static ac_status work_loop(PGconn *conn, const run_options *opt,
                           const bill_context *ctx, PGresult *tenants,
                           int worker, int nworkers, struct timespec *t0,
                           char *err)
{
    int n = PQntuples(tenants), nskipped = 0, skipped;
    int *later = calloc((size_t)n + 1, sizeof *later);
    int first = (int)((long long)n * worker / nworkers);
    long long calls = 0;
    bill_context mine = *ctx;
    ac_status rc = AC_OK;

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
    for (int k = 0; rc == AC_OK && k < n; k++) {
        int i = (first + k) % n;
        rc = work_tenant(conn, ctx, tenants, i, 0, &skipped, &calls, err);
        if (skipped)
            later[nskipped++] = i;
        if (nworkers == 1)
            progress(opt, k + 1, n, calls, t0);
    }
    /* A joiner leaves claimed tenants to the run it helps, which waits for
     * them; the run's own workers wait, so the run ends complete. */
    for (int k = 0; rc == AC_OK && !opt->join && k < nskipped; k++)
        rc = work_tenant(conn, ctx, tenants, later[k], 1, &skipped, &calls,
                         err);
    free(later);
    if (mine.pub != NULL) {
        int failed;
        char why[AC_ERR_MAX];
        ac_status prc = publisher_finish(mine.pub, &failed, why);
        if (prc != AC_OK && rc == AC_OK)
            rc = ac_fail(err, prc, "%s", why);
    }
    return rc;
}

/* Fork nworkers processes, each with its own connection, and wait for
 * them.  The parent's connection stays idle (a child must never use it). */
static ac_status run_workers(PGconn *conn, const run_options *opt,
                             const bill_context *ctx, PGresult *tenants,
                             struct timespec *t0, char *err)
{
    int started = 0, worst = AC_OK;

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
            ac_status rc = db_connect(opt->conninfo, &mine, why);
            if (rc == AC_OK) {
                rc = work_loop(mine, opt, ctx, tenants, w, opt->workers, t0,
                               why);
                PQfinish(mine);
            }
            if (rc != AC_OK)
                ac_error("worker %d: %s", w + 1, why);
            fflush(NULL);
            _exit(rc);
        }
        started++;
    }
    int live = started;
    while (live > 0) {
        int st;
        pid_t pid = waitpid(-1, &st, opt->progress ? WNOHANG : 0);
        if (pid < 0 && errno != EINTR)
            break;
        if (pid > 0) {
            live--;
            int code = WIFEXITED(st) ? WEXITSTATUS(st) : AC_EINTERNAL;
            if (code != AC_OK && worst == AC_OK) {
                worst = code;
                ac_fail(err, code, "a worker ended with status %d (%s)",
                        code, ac_status_name(code));
            }
            continue;
        }
        if (pid == 0) {         /* progress while the workers work */
            run_summary now;
            if (count_results(conn, &now, NULL) == AC_OK)
                progress(opt, now.issued + now.unchanged + now.failed,
                         PQntuples(tenants), now.calls, t0);
            struct timespec nap = { 0, 500 * 1000 * 1000 };
            nanosleep(&nap, NULL);
        }
    }
    return worst;
}

ac_status run_period(const run_options *opt, run_summary *summary,
                     char *err)
{
    char sql_dir[PATH_MAX], out_dir[PATH_MAX], msg[AC_ERR_MAX];
    PGconn *conn = NULL;
    PGresult *lock = NULL, *tenants = NULL;
    rating_ref *ref = NULL;
    struct timespec t0;
    ac_status rc;

    memset(summary, 0, sizeof *summary);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (opt->out_dir != NULL) {
        snprintf(out_dir, sizeof out_dir, "%s/%s", opt->out_dir,
                 opt->period);
        if (make_dirs(out_dir) != 0)
            return ac_fail(err, AC_ECANTCREAT, "cannot create %s: %s",
                           out_dir, strerror(errno));
    }
    rc = migrate_find_sql_dir(sql_dir, sizeof sql_dir, err);
    if (rc == AC_OK)
        rc = db_connect(opt->conninfo, &conn, err);
    if (rc == AC_OK)
        rc = migrate_check(conn, sql_dir, err);
    if (rc == AC_OK)
        rc = db_query(conn, "SELECT pg_try_advisory_lock(" RUN_LOCK_KEY ")",
                      0, NULL, &lock, err);
    int locked = rc == AC_OK && strcmp(PQgetvalue(lock, 0, 0), "t") == 0;
    PQclear(lock);
    if (rc == AC_OK && opt->join) {
        if (locked) {       /* nobody is running: nothing to help with */
            db_exec(conn, "SELECT pg_advisory_unlock(" RUN_LOCK_KEY ")",
                    NULL);
            ac_info("join: no run is in progress; nothing to do");
            PQfinish(conn);
            return AC_OK;
        }
        rc = find_live_run(conn, opt->period, &summary->run_id, err);
        if (rc == AC_OK && summary->run_id == 0) {
            ac_info("join: the run in progress is not for %s; nothing to "
                    "do", opt->period);
            PQfinish(conn);
            return AC_OK;
        }
    } else if (rc == AC_OK && !locked) {
        rc = ac_fail(err, AC_ETEMPFAIL, "another acbill run holds the run "
                     "lock; try again later (or help it with --join)");
    }
    if (rc == AC_OK && (ref = rating_ref_new()) == NULL)
        rc = ac_fail(err, AC_EOSERR, "out of memory");
    if (rc == AC_OK)
        rc = bill_load_reference(conn, ref, err);
    if (rc == AC_OK)
        rc = list_tenants(conn, opt, &tenants, err);
    if (rc == AC_OK && !opt->join)
        rc = start_run(conn, opt, &summary->run_id, err);
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

    if (opt->workers > 1)
        rc = run_workers(conn, opt, &ctx, tenants, &t0, err);
    else
        rc = work_loop(conn, opt, &ctx, tenants, 0, 1, &t0, err);
    if (rc == AC_OK)
        rc = count_results(conn, summary, err);
    if (opt->join) {
        /* The run's own process writes the period's files and closes
         * the run once every tenant has an outcome. */
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
    if (rc == AC_OK && summary->failed > 0)
        rc = ac_fail(err, AC_EDATA, "%d of %d tenant(s) failed; see "
                     "billing.run_tenants for run %lld", summary->failed,
                     summary->tenants, summary->run_id);
    if (PQstatus(conn) == CONNECTION_OK && opt->upload.base_url != NULL) {
        ac_status urc = deliver(conn, opt, &pending, msg);
        if (urc != AC_OK)
            ac_error("upload: %s", msg);
        if (rc == AC_OK && (urc != AC_OK || pending > 0))
            rc = ac_fail(err, AC_EUNAVAIL, "billing is done, but %d "
                         "file(s) wait for upload; the next run or `acbill "
                         "upload --pending` delivers them", pending);
    }
    if (PQstatus(conn) == CONNECTION_OK)
        finish_run(conn, summary, rc, rc == AC_OK ? NULL : err);
    PQclear(tenants);
    rating_ref_free(ref);
    PQfinish(conn);
    return rc;
}

/* The periods of a run without --period: lookback_months from
 * ref.operator (3 without a row) before the month of --as-of (or now). */
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
    }
    PQfinish(conn);
    return rc;
}

static void run_usage(FILE *out)
{
    fprintf(out,
        "usage: acbill run [--period YYYY-MM] [--tenant ID]... [--out DIR]\n"
        "                  [--db CONNINFO] [--workers N] [--upload-url URL]\n"
        "                  [--fair-use-minutes N] [--join] [--as-of TIME]\n"
        "                  [--quiet|--verbose]\n"
        "\n"
        "Rates every tenant's calls of the period and issues statements\n"
        "into billing.*: revision 1, or revision n+1 when the inputs\n"
        "changed; nothing when they did not; and the invoices and credit\n"
        "notes finance books.  Without --period, every period from\n"
        "ref.operator.lookback_months (default 3) before this month up to\n"
        "this month.  A period still in its grace period (its local end +\n"
        "ref.operator.grace_hours, default 48) is drafted, not issued:\n"
        "DIR/YYYY-MM/drafts/.  --as-of TIME bills as if it were TIME (a\n"
        "PostgreSQL timestamptz, e.g. 2026-12-03T00:00Z).  With --out, writes\n"
        "DIR/YYYY-MM/<invoice>.xlsx, the finance summary and SHA256SUMS,\n"
        "and with --upload-url (or ACBILL_UPLOAD_URL) delivers them to\n"
        "URL/YYYY-MM/ (https://, or file:// for a local folder).\n"
        "--join helps the run in progress for the period (another host\n"
        "sharing the database and the --out directory): it bills tenants\n"
        "nobody has claimed yet and leaves the rest to that run.\n");
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
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (!run_period_valid(optarg)) {
                fprintf(stderr, "acbill run: --period wants YYYY-MM, got "
                        "'%s'\n", optarg);
                return AC_EUSAGE;
            }
            snprintf(opt.period, sizeof opt.period, "%s", optarg);
            period_given = 1;
            break;
        case 'a':
            opt.as_of = optarg;
            break;
        case 't':
            if (opt.ntenants == RUN_MAX_TENANT_ARGS) {
                fprintf(stderr, "acbill run: at most %d --tenant\n",
                        RUN_MAX_TENANT_ARGS);
                return AC_EUSAGE;
            }
            opt.tenants[opt.ntenants++] = optarg;
            break;
        case 'o':
            if (strlen(optarg) > PATH_MAX / 2) {
                fprintf(stderr, "acbill run: --out path too long\n");
                return AC_EUSAGE;
            }
            opt.out_dir = optarg;
            break;
        case 'd':
            opt.conninfo = optarg;
            break;
        case 'f': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < 0 || v > INT32_MAX) {
                fprintf(stderr, "acbill run: bad --fair-use-minutes\n");
                return AC_EUSAGE;
            }
            opt.fair_use_minutes = (int32_t)v;
            break;
        }
        case 'w': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < 1 || v > RUN_MAX_WORKERS) {
                fprintf(stderr, "acbill run: --workers wants 1 to %d\n",
                        RUN_MAX_WORKERS);
                return AC_EUSAGE;
            }
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
            run_usage(stderr);
            return AC_EUSAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "acbill run: unexpected argument '%s'\n",
                argv[optind]);
        return AC_EUSAGE;
    }
    opt.progress = isatty(STDERR_FILENO);
    ac_status urc = upload_options_from_env(&opt.upload, err);
    if (urc == AC_OK && upload_url != NULL) {
        opt.upload.base_url = upload_url;
        urc = upload_options_check(&opt.upload, err);
    }
    if (urc != AC_OK) {
        ac_error("run: %s", err);
        return urc;
    }
    if (opt.upload.base_url != NULL && opt.out_dir == NULL) {
        fprintf(stderr, "acbill run: uploading needs --out DIR\n");
        return AC_EUSAGE;
    }

    char periods[RUN_MAX_PERIODS][8];
    int nperiods = 1;
    snprintf(periods[0], sizeof periods[0], "%s", opt.period);
    if (!period_given) {
        ac_status prc = open_periods(&opt, periods, &nperiods, err);
        if (prc != AC_OK) {
            ac_error("run: %s", err);
            return prc;
        }
    }
    /* Each period is a run of its own; the worst outcome is the exit
     * status, a data error only when nothing worse happened. */
    ac_status worst = AC_OK;
    for (int i = 0; i < nperiods; i++) {
        run_summary s;
        snprintf(opt.period, sizeof opt.period, "%s", periods[i]);
        ac_status rc = run_period(&opt, &s, err);
        if (rc != AC_OK && rc != AC_EDATA) {
            ac_error("run: period %s: %s", opt.period, err);
            if (worst == AC_OK || worst == AC_EDATA)
                worst = rc;
            if (rc == AC_EUNAVAIL || rc == AC_ETEMPFAIL)
                break;
            continue;
        }
        ac_info("run %lld: period %s done: %d tenant(s), %d issued, %d "
                "unchanged, %d drafted, %d failed, %lld calls", s.run_id,
                opt.period, s.tenants, s.issued, s.unchanged, s.drafted,
                s.failed, s.calls);
        if (rc != AC_OK) {
            ac_error("run: %s", err);
            if (worst == AC_OK)
                worst = rc;
        }
    }
    return worst;
}
