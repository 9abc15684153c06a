/* upload_test.c: delivery of files (job/upload.h) against real servers.
 *
 * Suite "upload https": a real nginx WebDAV server on 127.0.0.1 with TLS
 * (a CA and server certificate made with openssl at test time by
 * tests/fixtures/nginx/setup.sh) that only accepts a bearer token.
 * Suite "upload retries": a tiny HTTP server forked by the test, answering
 * a scripted list of statuses (500 then 201, 403, 429, ...) and logging
 * every request with the length of its body.
 * Suite "upload local": file:// delivery.
 *
 * Each test uses its own period so that files and log lines of one test
 * never count for another; billing.uploads is emptied before each test. */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testdb.h"
#include "testmain.h"
#include "deliver/upload.h"

#define TOKEN "t0ken-for-tests"

static PGconn *conn;
static char conninfo[128];
static char dir[PATH_MAX];          /* everything of this test program */
static char ngx[PATH_MAX + 16];     /* nginx prefix */
static char src[PATH_MAX + 16];     /* files to upload */
static char token_file[PATH_MAX + 32];
static char base_https[128];
static char ca_path[PATH_MAX + 32];
static int ngx_port;
static pid_t ngx_pid;

/* ------------------------------------------------------------ helpers */

static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Wait until something listens on port (up) or nothing does (!up). */
static int wait_port(int port, int up)
{
    for (int i = 0; i < 200; i++) {
        struct sockaddr_in a = { .sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok == up)
            return 0;
        struct timespec ts = { 0, 25 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t n = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && n == len) ? 0 : -1;
}

/* Write n pseudo-random bytes (seeded) to src/name; returns the path in
 * out (PATH_MAX). */
static int make_src(const char *name, size_t n, unsigned seed, char *out)
{
    unsigned char *buf = malloc(n ? n : 1);
    unsigned x = seed * 2654435761u + 1;
    if (buf == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    snprintf(out, PATH_MAX, "%s/%s", src, name);
    int rc = write_file(out, buf, n);
    free(buf);
    return rc;
}

/* 1 when both files exist with the same bytes. */
static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa != NULL && fb != NULL;
    while (same) {
        int ca = getc(fa), cb = getc(fb);
        if (ca != cb)
            same = 0;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Number of entries of dir whose name contains needle. */
static int count_entries(const char *path, const char *needle)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, needle) != NULL)
            n++;
    closedir(d);
    return n;
}

/* Number of lines of path that start with prefix; *last receives the
 * 1-based number of the last such line (0 = none). */
static int count_lines(const char *path, const char *prefix, int *last)
{
    char line[4096];
    int n = 0, no = 0;
    FILE *f = fopen(path, "r");
    if (last)
        *last = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL) {
        no++;
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            n++;
            if (last)
                *last = no;
        }
    }
    fclose(f);
    return n;
}

/* A value from the ledger (malloc'd, "" for NULL; NULL = no row). */
static char *ledger(const char *what, const char *file_name)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM billing.uploads WHERE "
             "file_name = '%s' ORDER BY upload_id DESC LIMIT 1", what,
             file_name);
    return testdb_value(conn, sql);
}

static long ledger_long(const char *what, const char *file_name)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM billing.uploads WHERE "
             "file_name = '%s' ORDER BY upload_id DESC LIMIT 1", what,
             file_name);
    return testdb_long(conn, sql);
}

/* Assert that the newest ledger row of file_name has status st. */
#define CHECK_STATUS(file_name, st)                                        \
    do {                                                                   \
        char *v_ = ledger("status", file_name);                            \
        CU_ASSERT_PTR_NOT_NULL(v_);                                        \
        if (v_ != NULL)                                                    \
            CU_ASSERT_STRING_EQUAL(v_, st);                                \
        free(v_);                                                          \
    } while (0)

static void https_options(upload_options *o)
{
    upload_options_defaults(o);
    o->base_url = base_https;
    o->ca_file = ca_path;
    o->token_file = token_file;
    o->max_attempts = 3;
    o->backoff_ms = 10;
    o->backoff_max_ms = 40;
    o->timeout_s = 20;
    o->connect_timeout_s = 3;
}

static ac_status enqueue(const upload_options *o, const char *period,
                         const char *name, const char *path)
{
    char err[AC_ERR_MAX] = "";
    ac_status rc = upload_enqueue(conn, o, period, name, path, NULL, 0, err);
    if (rc != AC_OK)
        fprintf(stderr, "upload_enqueue %s: %s\n", name, err);
    return rc;
}

static ac_status deliver(const upload_options *o, int *d, int *p)
{
    char err[AC_ERR_MAX] = "";
    ac_status rc = upload_deliver_pending(conn, o, d, p, err);
    if (rc != AC_OK)
        fprintf(stderr, "upload_deliver_pending: %s\n", err);
    return rc;
}

/* ------------------------------------------------------------ nginx */

static int nginx_start(void)
{
    char conf[PATH_MAX + 32], elog[PATH_MAX + 32], out[PATH_MAX + 32];
    snprintf(conf, sizeof conf, "%s/nginx.conf", ngx);
    snprintf(elog, sizeof elog, "%s/logs/error.log", ngx);
    snprintf(out, sizeof out, "%s/logs/nginx.out", ngx);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("nginx", "nginx", "-p", ngx, "-c", conf, "-e", elog, "-g",
               "daemon off;", (char *)NULL);
        _exit(127);
    }
    ngx_pid = pid;
    if (wait_port(ngx_port, 1) != 0) {
        fprintf(stderr, "upload_test: nginx did not start (see %s)\n", elog);
        return -1;
    }
    return 0;
}

static void nginx_stop(void)
{
    if (ngx_pid > 0) {
        kill(ngx_pid, SIGTERM);
        waitpid(ngx_pid, NULL, 0);
        ngx_pid = 0;
        wait_port(ngx_port, 0);
    }
}

static void kill_children(void)
{
    if (ngx_pid > 0)
        kill(ngx_pid, SIGTERM);
}

/* ------------------------------------------------------------ suites */

/* Set up once for all suites: 1 done, -1 failed, 0 not yet. */
static int ready;

static int common_init(void)
{
    snprintf(dir, sizeof dir, "/tmp/acbill-upload-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(ngx, sizeof ngx, "%s/nginx", dir);
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(token_file, sizeof token_file, "%s/token", dir);
    snprintf(ca_path, sizeof ca_path, "%s/ca.pem", ngx);
    if (mkdir(ngx, 0700) != 0 || mkdir(src, 0700) != 0)
        return -1;
    conn = testdb_fresh("acbill_upload", conninfo, sizeof conninfo);
    if (conn == NULL)
        return -1;
    if (write_file(token_file, TOKEN "\n", strlen(TOKEN) + 1) != 0 ||
        chmod(token_file, 0600) != 0)
        return -1;
    ngx_port = free_port();
    if (ngx_port <= 0)
        return -1;
    snprintf(base_https, sizeof base_https, "https://127.0.0.1:%d/finance/",
             ngx_port);
    if (test_system("sh '%s/tests/fixtures/nginx/setup.sh' '%s' %d '%s'",
                    test_src_dir(), ngx, ngx_port, TOKEN) != 0) {
        fprintf(stderr, "upload_test: nginx setup failed\n");
        return -1;
    }
    atexit(kill_children);
    return nginx_start();
}

static int suite_init(void)
{
    if (ready == 0)
        ready = common_init() == 0 ? 1 : -1;
    return ready == 1 ? 0 : -1;
}

static int suite_clean(void)
{
    nginx_stop();
    if (conn != NULL)
        PQfinish(conn);
    conn = NULL;
    if (dir[0] != '\0' && getenv("ACBILL_KEEP_TEST_DIR") == NULL)
        test_system("rm -rf '%s'", dir);
    return 0;
}

static void setup(void)
{
    testdb_exec(conn, "TRUNCATE billing.uploads");
}

/* ------------------------------------------------------------ https */

static void test_delivers_byte_identical(void)
{
    const char *names[] = { "SHA256SUMS", "INV-T1-2026-10-R1.xlsx",
                            "finance-summary-2026-10.xlsx", "empty.txt" };
    const size_t sizes[] = { 300, 300000, 5000, 0 };
    char paths[4][PATH_MAX], got[PATH_MAX * 2], log[PATH_MAX + 32];
    upload_options o;
    int d = -1, p = -1;

    https_options(&o);
    /* SHA256SUMS is queued first but must arrive last. */
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_FATAL(make_src(names[i], sizes[i], 10 + i, paths[i]) == 0);
        CU_ASSERT_EQUAL(enqueue(&o, "2026-10", names[i], paths[i]), AC_OK);
    }
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM billing.uploads "
                                "WHERE status = 'pending'"), 4);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 4);
    CU_ASSERT_EQUAL(p, 0);

    for (int i = 0; i < 4; i++) {
        snprintf(got, sizeof got, "%s/www/finance/2026-10/%s", ngx,
                 names[i]);
        CU_ASSERT(same_file(paths[i], got));
        CHECK_STATUS(names[i], "done");
        CU_ASSERT_EQUAL(ledger_long("attempts", names[i]), 1);
        long http = ledger_long("http_status", names[i]);
        CU_ASSERT(http == 201 || http == 204);
    }
    snprintf(got, sizeof got, "%s/www/finance/2026-10", ngx);
    CU_ASSERT_EQUAL(count_entries(got, ".part-"), 0);

    /* One PUT per file, to a temporary name, and SHA256SUMS moved last. */
    snprintf(log, sizeof log, "%s/logs/access.log", ngx);
    int last_sums = 0, last_other = 0, l;
    for (int i = 0; i < 4; i++) {
        char prefix[256];
        snprintf(prefix, sizeof prefix, "PUT /finance/2026-10/.%s.part-",
                 names[i]);
        CU_ASSERT_EQUAL(count_lines(log, prefix, NULL), 1);
        snprintf(prefix, sizeof prefix, "MOVE /finance/2026-10/.%s.part-",
                 names[i]);
        CU_ASSERT_EQUAL(count_lines(log, prefix, &l), 1);
        if (i == 0)
            last_sums = l;
        else if (l > last_other)
            last_other = l;
    }
    CU_ASSERT(last_sums > last_other);
    CU_ASSERT_EQUAL(count_lines(log, "PUT /finance/2026-10/", NULL), 4);

    /* Queuing the same files again changes nothing and sends nothing. */
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(enqueue(&o, "2026-10", names[i], paths[i]), AC_OK);
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM billing.uploads"),
                    4);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(p, 0);
    CU_ASSERT_EQUAL(count_lines(log, "PUT /finance/2026-10/", NULL), 4);
}

static void test_wrong_ca_stays_pending(void)
{
    char path[PATH_MAX], wrong[PATH_MAX + 32], got[PATH_MAX * 2];
    upload_options o;
    int d = -1, p = -1;

    https_options(&o);
    snprintf(wrong, sizeof wrong, "%s/wrong-ca.pem", ngx);
    o.ca_file = wrong;
    CU_ASSERT_FATAL(make_src("INV-T2-2026-09-R1.xlsx", 4000, 3, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-09", "INV-T2-2026-09-R1.xlsx", path),
                    AC_OK);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(p, 1);
    CHECK_STATUS("INV-T2-2026-09-R1.xlsx", "pending");
    char *e = ledger("last_error", "INV-T2-2026-09-R1.xlsx");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "TLS verification failed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "certificate"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "wrong-ca.pem"));
    free(e);
    /* A certificate problem shows on the first request (the HEAD that
     * asks whether the file is there): no PUT is made. */
    CU_ASSERT_EQUAL(ledger_long("attempts", "INV-T2-2026-09-R1.xlsx"), 0);
    snprintf(got, sizeof got, "%s/www/finance/2026-09/INV-T2-2026-09-R1.xlsx",
             ngx);
    CU_ASSERT_FALSE(file_exists(got));

    /* With the right CA the next delivery sends it. */
    https_options(&o);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 1);
    CU_ASSERT_EQUAL(p, 0);
    CU_ASSERT(same_file(path, got));
    CU_ASSERT_EQUAL(ledger_long("attempts", "INV-T2-2026-09-R1.xlsx"), 1);
}

static void test_server_down_then_up(void)
{
    const char *names[] = { "INV-A-2026-08-R1.xlsx", "INV-B-2026-08-R1.xlsx",
                            "SHA256SUMS" };
    char paths[3][PATH_MAX], log[PATH_MAX + 32], got[PATH_MAX * 2];
    upload_options o;
    int d = -1, p = -1;

    https_options(&o);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_FATAL(make_src(names[i], 2000 + 100 * (size_t)i, 20 + i,
                                 paths[i]) == 0);
        CU_ASSERT_EQUAL(enqueue(&o, "2026-08", names[i], paths[i]), AC_OK);
    }
    nginx_stop();
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(p, 3);
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM billing.uploads "
                                "WHERE status = 'pending'"), 3);
    /* The first file's HEAD (is it there already?) was retried (network
     * error) and no PUT was made; the others were left alone rather than
     * each waiting for its own retries. */
    CU_ASSERT_EQUAL(ledger_long("attempts", names[0]), 0);
    char *e = ledger("last_error", names[0]);
    CU_ASSERT(e != NULL && strstr(e, "HEAD https://127.0.0.1") != NULL);
    free(e);
    CU_ASSERT_EQUAL(ledger_long("attempts", names[1]), 0);

    CU_ASSERT_FATAL(nginx_start() == 0);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 3);
    CU_ASSERT_EQUAL(p, 0);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(p, 0);

    snprintf(log, sizeof log, "%s/logs/access.log", ngx);
    for (int i = 0; i < 3; i++) {
        char prefix[256];
        snprintf(prefix, sizeof prefix, "PUT /finance/2026-08/.%s.part-",
                 names[i]);
        CU_ASSERT_EQUAL(count_lines(log, prefix, NULL), 1);
        snprintf(got, sizeof got, "%s/www/finance/2026-08/%s", ngx, names[i]);
        CU_ASSERT(same_file(paths[i], got));
        CHECK_STATUS(names[i], "done");
    }
}

static void test_unauthorized_not_retried(void)
{
    char path[PATH_MAX], log[PATH_MAX + 32];
    upload_options o;
    int d = -1, p = -1;

    https_options(&o);
    o.token_file = NULL;
    CU_ASSERT_FATAL(make_src("INV-C-2026-07-R1.xlsx", 1000, 5, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-07", "INV-C-2026-07-R1.xlsx", path),
                    AC_OK);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(p, 1);
    CU_ASSERT_EQUAL(ledger_long("http_status", "INV-C-2026-07-R1.xlsx"), 401);
    /* Refused at the first request (the HEAD), which is not repeated;
     * nothing is sent. */
    CU_ASSERT_EQUAL(ledger_long("attempts", "INV-C-2026-07-R1.xlsx"), 0);
    snprintf(log, sizeof log, "%s/logs/access.log", ngx);
    CU_ASSERT_EQUAL(count_lines(log, "HEAD /finance/2026-07/", NULL), 1);
    CU_ASSERT_EQUAL(count_lines(log, "PUT /finance/2026-07/", NULL), 0);
}

static void test_token_file_permissions(void)
{
    char loose[PATH_MAX + 32], err[AC_ERR_MAX] = "";
    upload_options o;
    int d = -1, p = -1;

    snprintf(loose, sizeof loose, "%s/token-0644", dir);
    CU_ASSERT_FATAL(write_file(loose, TOKEN "\n", strlen(TOKEN) + 1) == 0);
    CU_ASSERT_FATAL(chmod(loose, 0644) == 0);
    https_options(&o);
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_OK);
    o.token_file = loose;
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "group or others"));
    /* The secret itself never appears in a message. */
    CU_ASSERT_PTR_NULL(strstr(err, TOKEN));
    CU_ASSERT_EQUAL(upload_deliver_pending(conn, &o, &d, &p, err),
                    AC_ECONFIG);
    CU_ASSERT_EQUAL(chmod(loose, 0640), 0);
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_ECONFIG);
    CU_ASSERT_EQUAL(chmod(loose, 0400), 0);
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_OK);

    /* The same through the environment. */
    CU_ASSERT_EQUAL(chmod(loose, 0604), 0);
    setenv("ACBILL_UPLOAD_URL", base_https, 1);
    setenv("ACBILL_UPLOAD_TOKEN_FILE", loose, 1);
    CU_ASSERT_EQUAL(upload_options_from_env(&o, err), AC_ECONFIG);
    setenv("ACBILL_UPLOAD_TOKEN_FILE", token_file, 1);
    CU_ASSERT_EQUAL(upload_options_from_env(&o, err), AC_OK);
    CU_ASSERT_STRING_EQUAL(o.token_file, token_file);
    unsetenv("ACBILL_UPLOAD_URL");
    unsetenv("ACBILL_UPLOAD_TOKEN_FILE");

    char missing[PATH_MAX + 32];
    snprintf(missing, sizeof missing, "%s/no-such-token", dir);
    o.token_file = missing;
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_ECONFIG);
}

static void test_url_policy(void)
{
    char url[256], err[AC_ERR_MAX] = "";
    upload_options o;

    upload_options_defaults(&o);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/finance", ngx_port);
    o.base_url = url;
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ACBILL_ALLOW_HTTP"));
    o.allow_http = 1;
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_OK);

    o.allow_http = 0;
    o.base_url = "https://finance:s3cr3t@files.example.com/x";
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_ECONFIG);
    CU_ASSERT_PTR_NULL(strstr(err, "s3cr3t"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "credentials"));
    o.base_url = "https://files.example.com/x?sig=abc";
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_ECONFIG);
    o.base_url = "ftp://files.example.com/x";
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_ECONFIG);
    o.base_url = "file://otherhost/srv/x";
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_ECONFIG);
    o.base_url = "https://files.example.com/x/";
    CU_ASSERT_EQUAL(upload_options_check(&o, err), AC_OK);

    /* Through the environment. */
    setenv("ACBILL_UPLOAD_URL", url, 1);
    CU_ASSERT_EQUAL(upload_options_from_env(&o, err), AC_ECONFIG);
    setenv("ACBILL_ALLOW_HTTP", "1", 1);
    CU_ASSERT_EQUAL(upload_options_from_env(&o, err), AC_OK);
    CU_ASSERT_EQUAL(o.allow_http, 1);
    setenv("ACBILL_ALLOW_HTTP", "yes", 1);
    CU_ASSERT_EQUAL(upload_options_from_env(&o, err), AC_ECONFIG);
    unsetenv("ACBILL_ALLOW_HTTP");
    setenv("ACBILL_UPLOAD_ATTEMPTS", "0", 1);
    setenv("ACBILL_UPLOAD_URL", base_https, 1);
    CU_ASSERT_EQUAL(upload_options_from_env(&o, err), AC_ECONFIG);
    unsetenv("ACBILL_UPLOAD_ATTEMPTS");
    setenv("ACBILL_UPLOAD_MODE", "put", 1);
    CU_ASSERT_EQUAL(upload_options_from_env(&o, err), AC_OK);
    CU_ASSERT_EQUAL(o.use_move, 0);
    unsetenv("ACBILL_UPLOAD_MODE");
    unsetenv("ACBILL_UPLOAD_URL");
    CU_ASSERT_EQUAL(upload_options_from_env(&o, err), AC_OK);
    CU_ASSERT_PTR_NULL(o.base_url);
}

static void test_changed_file_not_sent(void)
{
    char path[PATH_MAX], log[PATH_MAX + 32];
    upload_options o;
    int d = -1, p = -1;

    https_options(&o);
    CU_ASSERT_FATAL(make_src("INV-D-2026-06-R1.xlsx", 3000, 6, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-06", "INV-D-2026-06-R1.xlsx", path),
                    AC_OK);
    CU_ASSERT_FATAL(make_src("INV-D-2026-06-R1.xlsx", 3000, 7, path) == 0);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(p, 1);
    char *e = ledger("last_error", "INV-D-2026-06-R1.xlsx");
    CU_ASSERT(e != NULL && strstr(e, "changed since it was queued") != NULL);
    free(e);
    snprintf(log, sizeof log, "%s/logs/access.log", ngx);
    CU_ASSERT_EQUAL(count_lines(log, "PUT /finance/2026-06/", NULL), 0);

    /* A missing stored file is reported the same way. */
    CU_ASSERT_EQUAL(unlink(path), 0);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(p, 1);
    e = ledger("last_error", "INV-D-2026-06-R1.xlsx");
    CU_ASSERT(e != NULL && strstr(e, "cannot open the stored file") != NULL);
    free(e);
}

static void test_new_content_supersedes(void)
{
    char path[PATH_MAX], got[PATH_MAX * 2];
    upload_options o;
    int d = -1, p = -1;

    https_options(&o);
    CU_ASSERT_FATAL(make_src("SHA256SUMS", 100, 8, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-05", "SHA256SUMS", path), AC_OK);
    CU_ASSERT_FATAL(make_src("SHA256SUMS", 150, 9, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-05", "SHA256SUMS", path), AC_OK);
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM billing.uploads "
                                "WHERE status = 'superseded'"), 1);
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM billing.uploads "
                                "WHERE status = 'pending'"), 1);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 1);
    CU_ASSERT_EQUAL(p, 0);
    snprintf(got, sizeof got, "%s/www/finance/2026-05/SHA256SUMS", ngx);
    CU_ASSERT(same_file(path, got));

    /* Delivered content queued again: nothing new. */
    CU_ASSERT_EQUAL(enqueue(&o, "2026-05", "SHA256SUMS", path), AC_OK);
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM billing.uploads"),
                    2);
    /* Going back to the first content must deliver it again. */
    CU_ASSERT_FATAL(make_src("SHA256SUMS", 100, 8, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-05", "SHA256SUMS", path), AC_OK);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 1);
    CU_ASSERT(same_file(path, got));

    /* The ledger keeps its history. */
    PGresult *res = PQexec(conn, "DELETE FROM billing.uploads");
    CU_ASSERT_NOT_EQUAL(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    res = PQexec(conn, "UPDATE billing.uploads SET status = 'pending' "
                 "WHERE status = 'done'");
    CU_ASSERT_NOT_EQUAL(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
}

static void test_manifest_waits_for_its_period(void)
{
    char a[PATH_MAX], s[PATH_MAX], log[PATH_MAX + 32];
    upload_options o;
    int d = -1, p = -1;

    /* An invoice whose stored file changed cannot go, so SHA256SUMS of its
     * period must not go either. */
    https_options(&o);
    CU_ASSERT_FATAL(make_src("INV-E-2026-04-R1.xlsx", 500, 11, a) == 0);
    CU_ASSERT_FATAL(make_src("SHA256SUMS", 80, 12, s) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-04", "INV-E-2026-04-R1.xlsx", a),
                    AC_OK);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-04", "SHA256SUMS", s), AC_OK);
    CU_ASSERT_FATAL(make_src("INV-E-2026-04-R1.xlsx", 501, 11, a) == 0);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(p, 2);
    char *e = ledger("last_error", "SHA256SUMS");
    CU_ASSERT(e != NULL && strstr(e, "held back") != NULL);
    free(e);
    snprintf(log, sizeof log, "%s/logs/access.log", ngx);
    CU_ASSERT_EQUAL(count_lines(log, "PUT /finance/2026-04/", NULL), 0);
}

static void test_cmd_upload(void)
{
    char path[PATH_MAX], loose[PATH_MAX + 32], env[PATH_MAX * 3];
    upload_options o;
    const char *acbill = test_acbill_path();

    https_options(&o);
    snprintf(env, sizeof env, "ACBILL_CA_FILE='%s/ca.pem' "
             "ACBILL_UPLOAD_TOKEN_FILE='%s' ACBILL_UPLOAD_BACKOFF_MS=1 "
             "ACBILL_UPLOAD_ATTEMPTS=2 ACBILL_UPLOAD_CONNECT_TIMEOUT=2",
             ngx, token_file);
    CU_ASSERT_FATAL(make_src("INV-F-2026-03-R1.xlsx", 700, 13, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-03", "INV-F-2026-03-R1.xlsx", path),
                    AC_OK);

    CU_ASSERT_EQUAL(test_system("%s %s upload --db '%s' >/dev/null 2>&1",
                                env, acbill, conninfo), 64);
    CU_ASSERT_EQUAL(test_system("%s %s upload --pending --bogus --db '%s' "
                                ">/dev/null 2>&1", env, acbill, conninfo), 64);
    CU_ASSERT_EQUAL(test_system("%s %s upload --pending --db '%s' "
                                ">/dev/null 2>&1", env, acbill, conninfo), 78);
    CU_ASSERT_EQUAL(test_system("%s %s upload --pending --db '%s' "
                                "--upload-url http://127.0.0.1:%d/finance "
                                ">/dev/null 2>&1", env, acbill, conninfo,
                                ngx_port), 78);
    snprintf(loose, sizeof loose, "%s/token-0666", dir);
    CU_ASSERT_FATAL(write_file(loose, TOKEN "\n", strlen(TOKEN) + 1) == 0);
    CU_ASSERT_FATAL(chmod(loose, 0666) == 0);
    CU_ASSERT_EQUAL(test_system("%s ACBILL_UPLOAD_TOKEN_FILE='%s' %s upload "
                                "--pending --db '%s' --upload-url '%s' "
                                ">/dev/null 2>&1", env, loose, acbill,
                                conninfo, base_https), 78);
    CHECK_STATUS("INV-F-2026-03-R1.xlsx", "pending");

    /* Server down: 69, and the file stays pending. */
    nginx_stop();
    CU_ASSERT_EQUAL(test_system("%s %s upload --pending --db '%s' "
                                "--upload-url '%s' >/dev/null 2>&1", env,
                                acbill, conninfo, base_https), 69);
    CHECK_STATUS("INV-F-2026-03-R1.xlsx", "pending");
    CU_ASSERT_FATAL(nginx_start() == 0);

    /* The URL from the environment: delivered, 0. */
    CU_ASSERT_EQUAL(test_system("%s ACBILL_UPLOAD_URL='%s' %s upload "
                                "--pending --db '%s' >/dev/null 2>&1", env,
                                base_https, acbill, conninfo), 0);
    CHECK_STATUS("INV-F-2026-03-R1.xlsx", "done");
    char got[PATH_MAX * 2];
    snprintf(got, sizeof got, "%s/www/finance/2026-03/INV-F-2026-03-R1.xlsx",
             ngx);
    CU_ASSERT(same_file(path, got));
}

/* ------------------------------------------------------------ kills */

/* Lines of nginx's access log ("METHOD URI STATUS LENGTH") that start
 * with prefix and answered 2xx. */
static int count_ok_lines(const char *path, const char *prefix)
{
    char line[4096], method[16], uri[2048];
    int status, n = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, prefix, strlen(prefix)) == 0 &&
            sscanf(line, "%15s %2047s %d", method, uri, &status) == 3 &&
            status >= 200 && status < 300)
            n++;
    fclose(f);
    return n;
}

/* `acbill upload --pending` against nginx; kill_at > 0 sets
 * ACBILL_TEST_KILL_AT.  Returns the exit status, -1 when killed. */
static int acbill_upload(const char *extra_env, long kill_at)
{
    int rc = test_system("ACBILL_CA_FILE='%s' ACBILL_UPLOAD_TOKEN_FILE='%s' "
                       "ACBILL_UPLOAD_BACKOFF_MS=1 ACBILL_UPLOAD_ATTEMPTS=2 "
                       "%s ACBILL_TEST_KILL_AT=%ld %s upload --pending "
                       "--db '%s' --upload-url '%s' >>'%s/kill.log' 2>&1",
                       ca_path, token_file, extra_env, kill_at,
                       test_acbill_path(), conninfo, base_https, dir);
    return rc == 128 + SIGKILL ? -1 : rc;      /* the shell's report */
}

/* Kill the job (SIGKILL) at each point where delivery changes state, one
 * point per round, each round with files of its own period; then run it
 * again.  Every file must arrive exactly once (one 2xx PUT of its content
 * in nginx's access log, one MOVE), whole, with no temporary left on the
 * server, and the ledger must say delivered. */
static void kill_rounds(const char *mode, int first_year, int nfiles,
                        int min_points)
{
    static const char *const stems[] = { "INV-K1-%s-R1.xlsx",
                                         "INV-K2-%s-R1.xlsx",
                                         "finance-summary-%s.xlsx",
                                         "SHA256SUMS" };
    static const size_t sizes[] = { 200000, 3000, 20000, 300 };
    char env[64], log[PATH_MAX + 32];
    int points = 0, gets = 0;
    upload_options o;

    snprintf(env, sizeof env, "ACBILL_UPLOAD_MODE=%s", mode);
    snprintf(log, sizeof log, "%s/logs/access.log", ngx);
    https_options(&o);
    o.use_move = strcmp(mode, "dav") == 0;
    for (long k = 1; k <= 64; k++) {
        char period[8], names[4][64], paths[4][PATH_MAX], prefix[256];
        char wdir[PATH_MAX * 2], got[PATH_MAX * 3];
        snprintf(period, sizeof period, "%04d-%02d",
                 first_year + (int)(k - 1) / 12, (int)(k - 1) % 12 + 1);
        for (int i = 0; i < nfiles; i++) {
            snprintf(names[i], sizeof names[i], stems[4 - nfiles + i],
                     period);
            char local[80];
            snprintf(local, sizeof local, "%s-%s", period, names[i]);
            CU_ASSERT_FATAL(make_src(local, sizes[4 - nfiles + i],
                                     (unsigned)(k * 7 + i), paths[i]) == 0);
            CU_ASSERT_EQUAL_FATAL(enqueue(&o, period, names[i], paths[i]),
                                  AC_OK);
        }
        int rc = acbill_upload(env, k);
        if (rc == 0) {          /* past the last point: nothing killed */
            points = (int)k - 1;
        } else {
            CU_ASSERT_EQUAL(rc, -1);
            CU_ASSERT_EQUAL(acbill_upload(env, 0), 0);
        }
        snprintf(wdir, sizeof wdir, "%s/www/finance/%s", ngx, period);
        for (int i = 0; i < nfiles; i++) {
            snprintf(got, sizeof got, "%s/%s", wdir, names[i]);
            CU_ASSERT(same_file(paths[i], got));
            CHECK_STATUS(names[i], "done");
            if (o.use_move) {
                snprintf(prefix, sizeof prefix, "PUT /finance/%s/.%s.part-",
                         period, names[i]);
                CU_ASSERT_EQUAL(count_ok_lines(log, prefix), 1);
                snprintf(prefix, sizeof prefix, "MOVE /finance/%s/.%s.part-",
                         period, names[i]);
                CU_ASSERT_EQUAL(count_ok_lines(log, prefix), 1);
            } else {
                snprintf(prefix, sizeof prefix, "PUT /finance/%s/%s ",
                         period, names[i]);
                CU_ASSERT_EQUAL(count_ok_lines(log, prefix), 1);
            }
        }
        CU_ASSERT_EQUAL(count_entries(wdir, ".part-"), 0);
        snprintf(prefix, sizeof prefix, "GET /finance/%s/", period);
        gets += count_ok_lines(log, prefix);
        if (points > 0)
            break;
    }
    fprintf(stderr, "\n    %s mode: killed at %d points, %d GET(s) to "
            "check content ", mode, points, gets);
    CU_ASSERT(points >= min_points);
    /* Where the job died before it recorded the ETag, the content was
     * checked by downloading it; where it had, a HEAD was enough. */
    CU_ASSERT(gets >= 1);
    CU_ASSERT(gets < points);
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM billing.uploads "
                                "WHERE status <> 'done' OR part_url IS NOT "
                                "NULL"), 0);
}

static void test_killed_anywhere_dav(void)
{
    kill_rounds("dav", 2031, 4, 20);
}

static void test_killed_anywhere_put(void)
{
    kill_rounds("put", 2041, 2, 6);
}

/* A killed run leaves a whole temporary; its content is then superseded:
 * the next delivery removes the temporary instead of leaving it. */
static void test_superseded_temporary_removed(void)
{
    char path[PATH_MAX], wdir[PATH_MAX * 2], env[] = "";
    upload_options o;

    https_options(&o);
    CU_ASSERT_FATAL(make_src("INV-P-2029-03-R1.xlsx", 5000, 60, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2029-03", "INV-P-2029-03-R1.xlsx", path),
                    AC_OK);
    /* Point 3: after the PUT of the temporary, before its ETag. */
    CU_ASSERT_EQUAL(acbill_upload(env, 3), -1);
    snprintf(wdir, sizeof wdir, "%s/www/finance/2029-03", ngx);
    CU_ASSERT_EQUAL(count_entries(wdir, ".part-"), 1);
    CU_ASSERT_FATAL(make_src("INV-P-2029-03-R1.xlsx", 5000, 61, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2029-03", "INV-P-2029-03-R1.xlsx", path),
                    AC_OK);
    CU_ASSERT_EQUAL(acbill_upload(env, 0), 0);
    CU_ASSERT_EQUAL(count_entries(wdir, ".part-"), 0);
    char got[PATH_MAX * 3];
    snprintf(got, sizeof got, "%s/INV-P-2029-03-R1.xlsx", wdir);
    CU_ASSERT(same_file(path, got));
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM billing.uploads "
                                "WHERE part_url IS NOT NULL"), 0);
}

/* The server already has the file (copied there by hand, or by a run whose
 * ledger was restored from a backup): it is checked, not sent again. */
static void test_file_already_on_server(void)
{
    char path[PATH_MAX], wdir[PATH_MAX * 2], got[PATH_MAX * 3];
    char log[PATH_MAX + 32];
    upload_options o;
    int d = -1, p = -1;

    https_options(&o);
    CU_ASSERT_FATAL(make_src("INV-Q-2029-04-R1.xlsx", 7000, 62, path) == 0);
    snprintf(wdir, sizeof wdir, "%s/www/finance/2029-04", ngx);
    CU_ASSERT_FATAL(mkdir(wdir, 0755) == 0);
    snprintf(got, sizeof got, "%s/INV-Q-2029-04-R1.xlsx", wdir);
    CU_ASSERT_FATAL(test_system("cp '%s' '%s'", path, got) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2029-04", "INV-Q-2029-04-R1.xlsx", path),
                    AC_OK);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 1);
    CU_ASSERT_EQUAL(p, 0);
    CHECK_STATUS("INV-Q-2029-04-R1.xlsx", "done");
    CU_ASSERT_EQUAL(ledger_long("attempts", "INV-Q-2029-04-R1.xlsx"), 0);
    char *note = ledger("note", "INV-Q-2029-04-R1.xlsx");
    CU_ASSERT(note != NULL && strstr(note, "already on the server") != NULL);
    free(note);
    snprintf(log, sizeof log, "%s/logs/access.log", ngx);
    CU_ASSERT_EQUAL(count_lines(log, "PUT /finance/2029-04/", NULL), 0);
    CU_ASSERT_EQUAL(count_lines(log, "GET /finance/2029-04/", NULL), 1);

    /* Same size, other content: sent. */
    CU_ASSERT_FATAL(make_src("INV-Q-2029-04-R1.xlsx", 7000, 63, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2029-04", "INV-Q-2029-04-R1.xlsx", path),
                    AC_OK);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 1);
    CU_ASSERT(same_file(path, got));
    CU_ASSERT_EQUAL(count_ok_lines(log, "PUT /finance/2029-04/"), 1);
}

/* `acbill upload --list`, `--retarget` and `--cancel`: pending rows for a
 * URL that is no longer configured are moved or given up, recorded in the
 * ledger, and a delivered row is never touched. */
static void test_retarget_and_cancel(void)
{
    char a[PATH_MAX], b[PATH_MAX], c[PATH_MAX], old[PATH_MAX + 32];
    char gone[PATH_MAX + 32], env[PATH_MAX * 3], got[PATH_MAX * 2];
    const char *acbill = test_acbill_path();
    upload_options o;

    snprintf(env, sizeof env, "ACBILL_CA_FILE='%s' ACBILL_UPLOAD_TOKEN_FILE="
             "'%s' ACBILL_UPLOAD_BACKOFF_MS=1", ca_path, token_file);
    snprintf(old, sizeof old, "file://%s/old-mount", dir);
    snprintf(gone, sizeof gone, "file://%s/gone-mount", dir);
    upload_options_defaults(&o);
    o.base_url = old;
    CU_ASSERT_FATAL(make_src("INV-RA-2029-05-R1.xlsx", 900, 70, a) == 0);
    CU_ASSERT_FATAL(make_src("INV-RB-2029-05-R1.xlsx", 800, 71, b) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2029-05", "INV-RA-2029-05-R1.xlsx", a),
                    AC_OK);
    CU_ASSERT_EQUAL(enqueue(&o, "2029-05", "INV-RB-2029-05-R1.xlsx", b),
                    AC_OK);
    o.base_url = gone;
    CU_ASSERT_FATAL(make_src("INV-RC-2029-05-R1.xlsx", 700, 72, c) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2029-05", "INV-RC-2029-05-R1.xlsx", c),
                    AC_OK);

    /* Every night would exit 69 for them. */
    CU_ASSERT_EQUAL(test_system("%s %s upload --pending --db '%s' "
                                "--upload-url '%s' >/dev/null 2>&1", env,
                                acbill, conninfo, base_https), 69);
    CU_ASSERT_EQUAL(test_system("%s upload --list --db '%s' 2>/dev/null | "
                                "grep -c 'pending 2029-05/' | grep -qx 3",
                                acbill, conninfo), 0);
    /* Usage errors. */
    CU_ASSERT_EQUAL(test_system("%s upload --cancel --db '%s' >/dev/null "
                                "2>&1", acbill, conninfo), 64);
    CU_ASSERT_EQUAL(test_system("%s upload --cancel ../x --db '%s' "
                                ">/dev/null 2>&1", acbill, conninfo), 64);
    CU_ASSERT_EQUAL(test_system("%s upload --all-for '%s' --db '%s' "
                                ">/dev/null 2>&1", acbill, gone, conninfo),
                    64);

    /* Retarget the old mount's files to the https server, deliver. */
    CU_ASSERT_EQUAL(test_system("%s %s upload --retarget '%s' --from '%s' "
                                "--pending --db '%s' >/dev/null 2>&1", env,
                                acbill, base_https, old, conninfo), 69);
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM billing.uploads"
                                " o JOIN billing.uploads n ON n.upload_id ="
                                " o.replaced_by WHERE o.status ="
                                " 'retargeted' AND n.status = 'done' AND"
                                " n.sha256 = o.sha256 AND n.base_url <>"
                                " o.base_url AND o.note LIKE"
                                " 'retargeted by %%'"), 2);
    snprintf(got, sizeof got, "%s/www/finance/2029-05/INV-RA-2029-05-R1.xlsx",
             ngx);
    CU_ASSERT(same_file(a, got));
    /* Still 69: the gone mount's file.  Cancel it by name. */
    CU_ASSERT_EQUAL(test_system("%s upload --cancel 2029-05/INV-RC-2029-05-"
                                "R1.xlsx --db '%s' >/dev/null 2>&1", acbill,
                                conninfo), 0);
    CHECK_STATUS("INV-RC-2029-05-R1.xlsx", "cancelled");
    CU_ASSERT_EQUAL(test_system("%s %s upload --pending --db '%s' "
                                "--upload-url '%s' >/dev/null 2>&1", env,
                                acbill, conninfo, base_https), 0);

    /* --all-for; a delivered row is not cancelled. */
    o.base_url = gone;
    CU_ASSERT_FATAL(make_src("INV-RD-2029-05-R1.xlsx", 600, 73, c) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2029-05", "INV-RD-2029-05-R1.xlsx", c),
                    AC_OK);
    CU_ASSERT_EQUAL(test_system("%s upload --cancel --all-for '%s/' --db "
                                "'%s' >/dev/null 2>&1", acbill, gone,
                                conninfo), 0);
    CHECK_STATUS("INV-RD-2029-05-R1.xlsx", "cancelled");
    CU_ASSERT_EQUAL(test_system("%s upload --cancel INV-RA-2029-05-R1.xlsx "
                                "--db '%s' >/dev/null 2>&1", acbill,
                                conninfo), 0);
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM billing.uploads"
                                " WHERE file_name = 'INV-RA-2029-05-R1.xlsx'"
                                " AND status = 'done'"), 1);
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM billing.uploads"
                                " WHERE status = 'pending'"), 0);
    /* The ledger refuses to reopen a cancelled row or delete anything. */
    PGresult *res = PQexec(conn, "UPDATE billing.uploads SET status = "
                           "'pending' WHERE status = 'cancelled'");
    CU_ASSERT_NOT_EQUAL(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
}

/* The pending files of a period whose run is in progress elsewhere (its
 * run lock held) are that run's: `acbill upload --pending` does not exit
 * 69 for them. */
static void test_pending_of_a_running_period_not_counted(void)
{
    char a[PATH_MAX], url[PATH_MAX + 32];
    upload_options o;

    /* A server that refuses connections (a file:// folder that does not
     * exist is configuration, 78). */
    snprintf(url, sizeof url, "https://127.0.0.1:9");
    upload_options_defaults(&o);
    o.base_url = url;
    CU_ASSERT_FATAL(make_src("INV-RR-2029-06-R1.xlsx", 10, 74, a) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2029-06", "INV-RR-2029-06-R1.xlsx", a),
                    AC_OK);
    CU_ASSERT_EQUAL(test_system("ACBILL_UPLOAD_ATTEMPTS=1 %s upload --pending"
                                " --db '%s' --upload-url '%s' >/dev/null "
                                "2>&1", test_acbill_path(), conninfo, url),
                    69);
    CU_ASSERT_EQUAL_FATAL(testdb_exec(conn, "SELECT pg_advisory_lock("
                                      UPLOAD_RUN_LOCK_CLASS ", 202906)"), 0);
    CU_ASSERT_EQUAL(test_system("ACBILL_UPLOAD_ATTEMPTS=1 %s upload --pending"
                                " --db '%s' --upload-url '%s' >/dev/null "
                                "2>&1", test_acbill_path(), conninfo, url),
                    0);
    testdb_exec(conn, "SELECT pg_advisory_unlock(" UPLOAD_RUN_LOCK_CLASS
                ", 202906)");
}

/* ------------------------------------------------------------ fake HTTP */

typedef struct {
    pid_t pid;
    int port;
    char log[PATH_MAX + 32];
    char url[128];
} fake_server;

static fake_server fake;

/* Answer one request per connection.  codes: statuses to give the first
 * requests other than HEAD in order ("500,201"); later requests get 201
 * (PUT, MOVE, MKCOL) or 204 (DELETE).  A HEAD answers 200 for a path that
 * a PUT or MOVE created, with Content-Length head_len (or the length
 * stored when head_len < 0), and 404 for any other path.  retry_after > 0
 * adds a Retry-After header to 429 and 503 answers.  Logs "METHOD PATH
 * BODYLEN STATUS" per request. */
static void fake_serve(int lfd, const char *codes, int retry_after,
                       long head_len, const char *log)
{
    static char known[64][512];
    static long known_len[64];
    int nknown = 0;
    const char *next = codes;

    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        char buf[16384];
        size_t used = 0;
        char *end = NULL;
        while (used < sizeof buf - 1) {
            ssize_t n = read(fd, buf + used, sizeof buf - 1 - used);
            if (n <= 0)
                break;
            used += (size_t)n;
            buf[used] = '\0';
            if ((end = strstr(buf, "\r\n\r\n")) != NULL)
                break;
        }
        if (end == NULL) {
            close(fd);
            continue;
        }
        char method[16] = "", path[512] = "", dest[512] = "";
        sscanf(buf, "%15s %511s", method, path);
        long clen = 0;
        int expect = 0;
        for (char *h = strstr(buf, "\r\n"); h != NULL && h < end;
             h = strstr(h + 2, "\r\n")) {
            if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
                clen = atol(h + 17);
            if (strncasecmp(h + 2, "Expect: 100-continue", 20) == 0)
                expect = 1;
            if (strncasecmp(h + 2, "Destination: http://", 20) == 0) {
                char *slash = strchr(h + 22, '/');
                if (slash != NULL)
                    sscanf(slash, "%511s", dest);
            }
        }
        if (expect)
            (void)!write(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        long got = (long)(used - (size_t)(end + 4 - buf));
        while (got < clen) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n <= 0)
                break;
            got += n;
        }
        int status, k = -1;
        for (int i = 0; i < nknown; i++)
            if (strcmp(known[i], path) == 0)
                k = i;
        if (strcmp(method, "HEAD") == 0) {
            status = k >= 0 ? 200 : 404;
        } else if (next != NULL && *next != '\0') {
            status = atoi(next);
            next = strchr(next, ',');
            if (next != NULL)
                next++;
        } else if (strcmp(method, "DELETE") == 0) {
            status = 204;
        } else if (strcmp(method, "GET") == 0) {
            status = 404;
        } else {
            status = 201;
        }
        const char *created = strcmp(method, "PUT") == 0 ? path
                              : strcmp(method, "MOVE") == 0 ? dest : NULL;
        if (created != NULL && status < 300 && nknown < 64) {
            long len = strcmp(method, "PUT") == 0 ? got
                       : k >= 0 ? known_len[k] : 0;
            snprintf(known[nknown], sizeof known[0], "%s", created);
            known_len[nknown++] = len;
        }
        FILE *f = fopen(log, "a");
        if (f != NULL) {
            fprintf(f, "%s %s %ld %d\n", method, path, got, status);
            fclose(f);
        }
        char resp[512];
        const char *body = status >= 400 ? "fake server says no\n" : "";
        long len = strcmp(method, "HEAD") == 0 && k >= 0
                       ? (head_len >= 0 ? head_len : known_len[k])
                       : (long)strlen(body);
        char extra[64] = "";
        if (retry_after > 0 && (status == 429 || status == 503))
            snprintf(extra, sizeof extra, "Retry-After: %d\r\n", retry_after);
        int n = snprintf(resp, sizeof resp, "HTTP/1.1 %d Test\r\n"
                         "Content-Length: %ld\r\nConnection: close\r\n%s\r\n"
                         "%s", status, len, extra,
                         strcmp(method, "HEAD") == 0 ? "" : body);
        (void)!write(fd, resp, (size_t)n);
        shutdown(fd, SHUT_WR);
        while (read(fd, buf, sizeof buf) > 0)
            ;
        close(fd);
    }
}

static int fake_start(const char *codes, int retry_after, long head_len)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    static int serial;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    fake.port = ntohs(a.sin_port);
    snprintf(fake.log, sizeof fake.log, "%s/fake-%d.log", dir, ++serial);
    snprintf(fake.url, sizeof fake.url, "http://127.0.0.1:%d/dav",
             fake.port);
    fflush(NULL);
    fake.pid = fork();
    if (fake.pid < 0)
        return -1;
    if (fake.pid == 0) {
        fake_serve(fd, codes, retry_after, head_len, fake.log);
        _exit(0);
    }
    close(fd);
    return 0;
}

static void fake_stop(void)
{
    if (fake.pid > 0) {
        kill(fake.pid, SIGKILL);
        waitpid(fake.pid, NULL, 0);
        fake.pid = 0;
    }
}

static void fake_options(upload_options *o)
{
    upload_options_defaults(o);
    o->base_url = fake.url;
    o->allow_http = 1;
    o->token_file = token_file;
    o->max_attempts = 3;
    o->backoff_ms = 10;
    o->backoff_max_ms = 40;
    o->timeout_s = 10;
    o->connect_timeout_s = 3;
}

static void retry_teardown(void)
{
    fake_stop();
}

static void test_500_then_201_is_retried(void)
{
    char path[PATH_MAX], expect[256];
    upload_options o;
    int d = -1, p = -1;

    CU_ASSERT_FATAL(fake_start("500,201", 0, -1) == 0);
    fake_options(&o);
    CU_ASSERT_FATAL(make_src("INV-R-2026-10-R1.xlsx", 70000, 30, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-10", "INV-R-2026-10-R1.xlsx", path),
                    AC_OK);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 1);
    CU_ASSERT_EQUAL(p, 0);
    CU_ASSERT_EQUAL(ledger_long("attempts", "INV-R-2026-10-R1.xlsx"), 2);
    CU_ASSERT_EQUAL(ledger_long("http_status", "INV-R-2026-10-R1.xlsx"), 201);
    /* Two PUTs, each with the whole file (rewound before the retry). */
    CU_ASSERT_EQUAL(count_lines(fake.log, "PUT /dav/2026-10/.INV-R-2026-10-"
                                "R1.xlsx.part-", NULL), 2);
    snprintf(expect, sizeof expect, "PUT /dav/2026-10/.INV-R-2026-10-R1.xlsx"
             ".part-");
    char line[512];
    FILE *f = fopen(fake.log, "r");
    int full = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, expect, strlen(expect)) == 0 &&
            strstr(line, " 70000 ") != NULL)
            full++;
    if (f)
        fclose(f);
    CU_ASSERT_EQUAL(full, 2);
    CU_ASSERT_EQUAL(count_lines(fake.log, "MOVE /dav/2026-10/.INV-R-", NULL),
                    1);
}

static void test_403_not_retried(void)
{
    char path[PATH_MAX];
    upload_options o;
    int d = -1, p = -1;

    CU_ASSERT_FATAL(fake_start("403", 0, -1) == 0);
    fake_options(&o);
    CU_ASSERT_FATAL(make_src("INV-S-2026-10-R1.xlsx", 900, 31, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-10", "INV-S-2026-10-R1.xlsx", path),
                    AC_OK);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(p, 1);
    CHECK_STATUS("INV-S-2026-10-R1.xlsx", "pending");
    CU_ASSERT_EQUAL(ledger_long("attempts", "INV-S-2026-10-R1.xlsx"), 1);
    CU_ASSERT_EQUAL(ledger_long("http_status", "INV-S-2026-10-R1.xlsx"), 403);
    char *e = ledger("last_error", "INV-S-2026-10-R1.xlsx");
    CU_ASSERT(e != NULL && strstr(e, "HTTP 403") != NULL &&
              strstr(e, "fake server says no") != NULL);
    free(e);
    /* One HEAD asked whether the server had it, then the one PUT. */
    CU_ASSERT_EQUAL(count_lines(fake.log, "HEAD ", NULL), 1);
    CU_ASSERT_EQUAL(count_lines(fake.log, "PUT ", NULL), 1);
    CU_ASSERT_EQUAL(count_lines(fake.log, "", NULL), 2);
}

static void test_retry_after_is_honoured_and_capped(void)
{
    char path[PATH_MAX];
    upload_options o;
    struct timespec t0, t1;
    int d = -1, p = -1;

    /* The server asks for 30 s; the cap is 1 s; backoff alone is 10 ms. */
    CU_ASSERT_FATAL(fake_start("503,201", 30, -1) == 0);
    fake_options(&o);
    o.retry_after_max_s = 1;
    CU_ASSERT_FATAL(make_src("INV-U-2026-10-R1.xlsx", 100, 32, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-10", "INV-U-2026-10-R1.xlsx", path),
                    AC_OK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CU_ASSERT_EQUAL(d, 1);
    CU_ASSERT_EQUAL(ledger_long("attempts", "INV-U-2026-10-R1.xlsx"), 2);
    CU_ASSERT(s >= 0.95);
    CU_ASSERT(s < 10.0);
}

static void test_retries_used_up_stops_the_pass(void)
{
    char a[PATH_MAX], b[PATH_MAX];
    upload_options o;
    int d = -1, p = -1;

    CU_ASSERT_FATAL(fake_start("429,429,429", 0, -1) == 0);
    fake_options(&o);
    CU_ASSERT_FATAL(make_src("INV-V-2026-10-R1.xlsx", 100, 33, a) == 0);
    CU_ASSERT_FATAL(make_src("INV-W-2026-10-R1.xlsx", 100, 34, b) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-10", "INV-V-2026-10-R1.xlsx", a),
                    AC_OK);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-10", "INV-W-2026-10-R1.xlsx", b),
                    AC_OK);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(p, 2);
    CU_ASSERT_EQUAL(ledger_long("attempts", "INV-V-2026-10-R1.xlsx"), 3);
    CU_ASSERT_EQUAL(ledger_long("http_status", "INV-V-2026-10-R1.xlsx"), 429);
    CU_ASSERT_EQUAL(ledger_long("attempts", "INV-W-2026-10-R1.xlsx"), 0);
    CU_ASSERT_EQUAL(count_lines(fake.log, "PUT ", NULL), 3);
    /* The next run gets through. */
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 2);
    CU_ASSERT_EQUAL(p, 0);
}

static void test_failed_move_deletes_temporary(void)
{
    char path[PATH_MAX], line[512], put_path[512] = "", del_path[512] = "";
    upload_options o;
    int d = -1, p = -1;

    CU_ASSERT_FATAL(fake_start("201,500,500,500", 0, -1) == 0);
    fake_options(&o);
    CU_ASSERT_FATAL(make_src("INV-X-2026-10-R1.xlsx", 100, 35, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-10", "INV-X-2026-10-R1.xlsx", path),
                    AC_OK);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(p, 1);
    CU_ASSERT_EQUAL(count_lines(fake.log, "MOVE ", NULL), 3);
    CU_ASSERT_EQUAL(count_lines(fake.log, "DELETE ", NULL), 1);
    FILE *f = fopen(fake.log, "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "PUT ", 4) == 0)
            sscanf(line + 4, "%511s", put_path);
        if (strncmp(line, "DELETE ", 7) == 0)
            sscanf(line + 7, "%511s", del_path);
    }
    if (f)
        fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(put_path, ".part-"));
    CU_ASSERT_STRING_EQUAL(put_path, del_path);
    char *e = ledger("last_error", "INV-X-2026-10-R1.xlsx");
    CU_ASSERT(e != NULL && strncmp(e, "MOVE ", 5) == 0);
    free(e);
}

static void test_put_mode_and_size_check(void)
{
    char path[PATH_MAX];
    upload_options o;
    int d = -1, p = -1;

    /* put mode: one PUT to the final name, no MOVE. */
    CU_ASSERT_FATAL(fake_start("", 0, -1) == 0);
    fake_options(&o);
    o.use_move = 0;
    CU_ASSERT_FATAL(make_src("INV-Y-2026-10-R1.xlsx", 1234, 36, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-10", "INV-Y-2026-10-R1.xlsx", path),
                    AC_OK);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 1);
    CU_ASSERT_EQUAL(count_lines(fake.log, "PUT /dav/2026-10/INV-Y-2026-10-"
                                "R1.xlsx 1234 201", NULL), 1);
    CU_ASSERT_EQUAL(count_lines(fake.log, "MOVE ", NULL), 0);
    fake_stop();

    /* A server that then reports another size: not delivered. */
    CU_ASSERT_FATAL(fake_start("", 0, 99) == 0);
    fake_options(&o);
    CU_ASSERT_FATAL(make_src("INV-Z-2026-10-R1.xlsx", 1234, 37, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-10", "INV-Z-2026-10-R1.xlsx", path),
                    AC_OK);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(p, 1);
    char *e = ledger("last_error", "INV-Z-2026-10-R1.xlsx");
    CU_ASSERT(e != NULL && strstr(e, "expected 1234") != NULL);
    free(e);
}

static void test_http_refused_by_default(void)
{
    char path[PATH_MAX], err[AC_ERR_MAX] = "";
    upload_options o;
    int d = -1, p = -1;

    CU_ASSERT_FATAL(fake_start("", 0, -1) == 0);
    fake_options(&o);
    CU_ASSERT_FATAL(make_src("INV-H-2026-10-R1.xlsx", 10, 38, path) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-10", "INV-H-2026-10-R1.xlsx", path),
                    AC_OK);
    o.allow_http = 0;
    CU_ASSERT_EQUAL(upload_deliver_pending(conn, &o, &d, &p, err),
                    AC_ECONFIG);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(upload_enqueue(conn, &o, "2026-10", "other", path, NULL,
                                   0, err), AC_ECONFIG);
    CU_ASSERT_EQUAL(count_lines(fake.log, "", NULL), 0);
    CHECK_STATUS("INV-H-2026-10-R1.xlsx", "pending");
}

/* ------------------------------------------------------------ file:// */

static void test_file_delivery(void)
{
    char a[PATH_MAX], b[PATH_MAX], deliv[PATH_MAX + 32], url[PATH_MAX + 64];
    char got[PATH_MAX * 2];
    upload_options o;
    int d = -1, p = -1;

    snprintf(deliv, sizeof deliv, "%s/delivered", dir);
    snprintf(url, sizeof url, "file://%s", deliv);
    upload_options_defaults(&o);
    o.base_url = url;
    CU_ASSERT_FATAL(make_src("INV-L-2026-10-R1.xlsx", 50000, 40, a) == 0);
    CU_ASSERT_FATAL(make_src("SHA256SUMS", 200, 41, b) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-10", "INV-L-2026-10-R1.xlsx", a),
                    AC_OK);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-10", "SHA256SUMS", b), AC_OK);

    /* The delivery directory must exist (a missing mount is an error). */
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(p, 2);
    char *e = ledger("last_error", "INV-L-2026-10-R1.xlsx");
    CU_ASSERT(e != NULL && strstr(e, "does not exist") != NULL);
    free(e);

    CU_ASSERT_FATAL(mkdir(deliv, 0755) == 0);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 2);
    CU_ASSERT_EQUAL(p, 0);
    snprintf(got, sizeof got, "%s/2026-10/INV-L-2026-10-R1.xlsx", deliv);
    CU_ASSERT(same_file(a, got));
    snprintf(got, sizeof got, "%s/2026-10/SHA256SUMS", deliv);
    CU_ASSERT(same_file(b, got));
    snprintf(got, sizeof got, "%s/2026-10", deliv);
    CU_ASSERT_EQUAL(count_entries(got, ".part-"), 0);
    CHECK_STATUS("SHA256SUMS", "done");
    char *target = ledger("target_url", "SHA256SUMS");
    char want[PATH_MAX * 2];
    snprintf(want, sizeof want, "file://%s/2026-10/SHA256SUMS", deliv);
    CU_ASSERT(target != NULL && strcmp(target, want) == 0);
    free(target);

    /* No URL: nothing is queued, and pending rows are only counted. */
    upload_options none;
    upload_options_defaults(&none);
    CU_ASSERT_EQUAL(enqueue(&none, "2026-10", "INV-L-2026-10-R1.xlsx", a),
                    AC_OK);
    CU_ASSERT_EQUAL(testdb_long(conn, "SELECT count(*) FROM billing.uploads"),
                    2);
}

static void test_pending_for_another_url_is_counted(void)
{
    char a[PATH_MAX], deliv[PATH_MAX + 32], url[PATH_MAX + 64];
    upload_options o, none;
    int d = -1, p = -1;

    snprintf(deliv, sizeof deliv, "%s/elsewhere", dir);
    snprintf(url, sizeof url, "file://%s", deliv);
    upload_options_defaults(&o);
    o.base_url = url;
    CU_ASSERT_FATAL(make_src("INV-M-2026-10-R1.xlsx", 10, 42, a) == 0);
    CU_ASSERT_EQUAL(enqueue(&o, "2026-10", "INV-M-2026-10-R1.xlsx", a),
                    AC_OK);
    https_options(&o);
    CU_ASSERT_EQUAL(deliver(&o, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(d, 0);
    CU_ASSERT_EQUAL(p, 1);
    upload_options_defaults(&none);
    CU_ASSERT_EQUAL(deliver(&none, &d, &p), AC_OK);
    CU_ASSERT_EQUAL(p, 1);
}

/* ------------------------------------------------------------ register */

static CU_TestInfo https_tests[] = {
    { "files arrive byte-identical, SHA256SUMS last", test_delivers_byte_identical },
    { "wrong CA: TLS error, stays pending", test_wrong_ca_stays_pending },
    { "server down then up: each file once", test_server_down_then_up },
    { "401 is not retried", test_unauthorized_not_retried },
    { "token file readable by others is refused", test_token_file_permissions },
    { "URL policy: http, credentials, query", test_url_policy },
    { "a changed stored file is not sent", test_changed_file_not_sent },
    { "new content supersedes pending", test_new_content_supersedes },
    { "SHA256SUMS waits for its period", test_manifest_waits_for_its_period },
    { "acbill upload --pending exit codes", test_cmd_upload },
    { "pending for another URL is counted", test_pending_for_another_url_is_counted },
    { "killed at 20+ points (dav): each file once, no temporary", test_killed_anywhere_dav },
    { "killed at every point (put): each file once", test_killed_anywhere_put },
    { "a superseded row's temporary is removed", test_superseded_temporary_removed },
    { "a file the server has is checked, not sent", test_file_already_on_server },
    { "upload --list, --retarget, --cancel", test_retarget_and_cancel },
    { "a running period's files are its run's", test_pending_of_a_running_period_not_counted },
    CU_TEST_INFO_NULL
};

static CU_TestInfo retry_tests[] = {
    { "500 then 201 is retried with the whole file", test_500_then_201_is_retried },
    { "403 is not retried and is reported", test_403_not_retried },
    { "Retry-After is honoured and capped", test_retry_after_is_honoured_and_capped },
    { "retries used up: pending, pass stops", test_retries_used_up_stops_the_pass },
    { "failed MOVE deletes the temporary", test_failed_move_deletes_temporary },
    { "put mode; size mismatch fails", test_put_mode_and_size_check },
    { "http:// refused by default", test_http_refused_by_default },
    CU_TEST_INFO_NULL
};

static CU_TestInfo local_tests[] = {
    { "file:// delivery", test_file_delivery },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "upload https", suite_init, NULL, setup, NULL, https_tests },
    { "upload retries", suite_init, NULL, setup, retry_teardown, retry_tests },
    { "upload local", suite_init, suite_clean, setup, NULL, local_tests },
    CU_SUITE_INFO_NULL
};

CU_ErrorCode tests_register(void)
{
    return CU_register_suites(suites);
}
