/* upload.c: see upload.h. */
#include "upload.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "db.h"
#include "env.h"
#include "log.h"
#include "outfile.h"
#include "sha256.h"

/* Advisory lock keys (two-int form, apart from migrate's bigint key):
 * (LOCK_CLASS, 0) is held by the one process delivering; (LOCK_CLASS,
 * hashtext(target_url)) serialises enqueues of one target. */
#define LOCK_CLASS "72541"
#define TOKEN_MAX 4096
#define URL_MAX 4096
#define SNIPPET_MAX 160

/* ------------------------------------------------------------ global */

static int curl_ready;

ac_status upload_global_init(char *err)
{
    if (curl_ready)
        return AC_OK;
    CURLcode cc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (cc != CURLE_OK)
        return ac_fail(err, AC_EINTERNAL, "cannot initialise libcurl: %s",
                       curl_easy_strerror(cc));
    curl_ready = 1;
    return AC_OK;
}

void upload_global_cleanup(void)
{
    if (curl_ready) {
        curl_global_cleanup();
        curl_ready = 0;
    }
}

/* ------------------------------------------------------------ options */

void upload_options_defaults(upload_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->use_move = 1;
    opt->max_attempts = 4;
    opt->timeout_s = 300;
    opt->connect_timeout_s = 15;
    opt->backoff_ms = 1000;
    opt->backoff_max_ms = 30000;
    opt->retry_after_max_s = 60;
}

ac_status upload_options_from_env(upload_options *opt, char *err)
{
    const char *v;
    long attempts = 4;
    ac_status rc;

    upload_options_defaults(opt);
    opt->base_url = env_str("ACBILL_UPLOAD_URL");
    opt->ca_file = env_str("ACBILL_CA_FILE");
    opt->token_file = env_str("ACBILL_UPLOAD_TOKEN_FILE");
    v = env_str("ACBILL_ALLOW_HTTP");
    if (v != NULL) {
        if (strcmp(v, "1") != 0 && strcmp(v, "0") != 0)
            return ac_fail(err, AC_ECONFIG,
                           "ACBILL_ALLOW_HTTP=%s: expected 0 or 1", v);
        opt->allow_http = strcmp(v, "1") == 0;
    }
    v = env_str("ACBILL_UPLOAD_MODE");
    if (v != NULL) {
        if (strcmp(v, "dav") == 0)
            opt->use_move = 1;
        else if (strcmp(v, "put") == 0)
            opt->use_move = 0;
        else
            return ac_fail(err, AC_ECONFIG, "ACBILL_UPLOAD_MODE=%s: expected "
                           "dav (PUT then MOVE) or put (one PUT)", v);
    }
    rc = env_long("ACBILL_UPLOAD_ATTEMPTS", 1, 100, &attempts, err);
    if (rc == AC_OK)
        opt->max_attempts = (int)attempts;
    if (rc == AC_OK)
        rc = env_long("ACBILL_UPLOAD_TIMEOUT", 1, 86400, &opt->timeout_s,
                      err);
    if (rc == AC_OK)
        rc = env_long("ACBILL_UPLOAD_CONNECT_TIMEOUT", 1, 3600,
                      &opt->connect_timeout_s, err);
    if (rc == AC_OK)
        rc = env_long("ACBILL_UPLOAD_BACKOFF_MS", 0, 3600000,
                      &opt->backoff_ms, err);
    if (rc == AC_OK)
        rc = env_long("ACBILL_UPLOAD_BACKOFF_MAX_MS", 0, 3600000,
                      &opt->backoff_max_ms, err);
    if (rc == AC_OK)
        rc = env_long("ACBILL_UPLOAD_RETRY_AFTER_MAX", 0, 3600,
                      &opt->retry_after_max_s, err);
    if (rc != AC_OK)
        return rc;
    return upload_options_check(opt, err);
}

typedef enum { SCHEME_HTTPS, SCHEME_HTTP, SCHEME_FILE } url_scheme;

/* Write url into out (len bytes) as it may be shown in a message about a
 * URL that may not have been checked yet: parsed with libcurl's URL API
 * and rebuilt from its scheme, host, port and path only, so a
 * "user:password@" never shows, whatever characters the password holds
 * ('/', '@', ':' or '%'-escapes).  A string libcurl cannot parse is not
 * shown at all (a password with '/' makes an unparsable URL). */
static void redact_url(const char *url, char *out, size_t len)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    char *user = NULL, *pass = NULL;

    if (u != NULL &&
        curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) ==
            CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
        int creds = curl_url_get(u, CURLUPART_USER, &user, 0) ==
                        CURLUE_OK ||
                    curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) ==
                        CURLUE_OK;
        if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
            host = NULL;
        curl_url_get(u, CURLUPART_PORT, &port, 0);
        snprintf(out, len, "%s://%s%s%s%s%s", scheme, creds ? "***@" : "",
                 host ? host : "", port ? ":" : "", port ? port : "", path);
    } else {
        snprintf(out, len, "(a URL that cannot be parsed; not shown, as it "
                 "may hold a password)");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(user);
    curl_free(pass);
    curl_url_cleanup(u);
}

/* Copy base into out without trailing slashes. */
static ac_status normalize_base(const char *base, char *out, size_t len,
                                char *err)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    if (n == 0 || n >= len)
        return ac_fail(err, AC_ECONFIG, "upload URL is empty or too long");
    memcpy(out, base, n);
    out[n] = '\0';
    return AC_OK;
}

/* Parse and vet a base URL.  For file:// URLs, path (len bytes, may be
 * NULL) receives the decoded directory. */
static ac_status parse_base(const upload_options *opt, url_scheme *scheme,
                            char *path, size_t len, char *err)
{
    char base[URL_MAX], shown[URL_MAX];
    char *part = NULL;
    CURLU *u;
    CURLUcode uc;
    ac_status rc = AC_OK;

    redact_url(opt->base_url, shown, sizeof shown);
    if (normalize_base(opt->base_url, base, sizeof base, err) != AC_OK)
        return AC_ECONFIG;
    u = curl_url();
    if (u == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    uc = curl_url_set(u, CURLUPART_URL, base, 0);
    if (uc != CURLUE_OK) {
        rc = ac_fail(err, AC_ECONFIG, "upload URL %s is not valid: %s",
                     shown, curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK) {
        rc = ac_fail(err, AC_ECONFIG, "upload URL %s carries credentials: "
                     "use ACBILL_UPLOAD_TOKEN_FILE or ~/.netrc instead",
                     shown);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK ||
        strchr(base, '?') != NULL || strchr(base, '#') != NULL) {
        rc = ac_fail(err, AC_ECONFIG, "upload URL %s must not have a "
                     "?query or #fragment", shown);
        goto out;
    }
    curl_free(part);
    part = NULL;
    if (curl_url_get(u, CURLUPART_SCHEME, &part, 0) != CURLUE_OK) {
        rc = ac_fail(err, AC_ECONFIG, "upload URL %s has no scheme", shown);
        goto out;
    }
    if (strcmp(part, "https") == 0) {
        *scheme = SCHEME_HTTPS;
    } else if (strcmp(part, "http") == 0) {
        if (!opt->allow_http) {
            rc = ac_fail(err, AC_ECONFIG, "upload URL %s is plain http: "
                         "refused (use https://, or set ACBILL_ALLOW_HTTP=1 "
                         "for a trusted network)", shown);
            goto out;
        }
        *scheme = SCHEME_HTTP;
    } else if (strcmp(part, "file") == 0) {
        *scheme = SCHEME_FILE;
        curl_free(part);
        part = NULL;
        if (curl_url_get(u, CURLUPART_HOST, &part, 0) == CURLUE_OK &&
            *part != '\0' && strcmp(part, "localhost") != 0) {
            rc = ac_fail(err, AC_ECONFIG, "upload URL %s names a remote "
                         "host: file:// delivers only locally", shown);
            goto out;
        }
        curl_free(part);
        part = NULL;
        if (curl_url_get(u, CURLUPART_PATH, &part, CURLU_URLDECODE) !=
                CURLUE_OK || part[0] != '/' || part[1] == '\0') {
            rc = ac_fail(err, AC_ECONFIG, "upload URL %s has no directory",
                         shown);
            goto out;
        }
        if (path != NULL && (size_t)snprintf(path, len, "%s", part) >= len)
            rc = ac_fail(err, AC_ECONFIG, "upload URL %s is too long", shown);
    } else {
        rc = ac_fail(err, AC_ECONFIG, "upload URL %s: scheme %s is not "
                     "supported (https://, http://, file://)", shown, part);
    }
out:
    curl_free(part);
    curl_url_cleanup(u);
    return rc;
}

/* Check the token file and, when token is not NULL, read the token into it
 * (TOKEN_MAX bytes). */
static ac_status read_token(const char *path, char *token, char *err)
{
    char buf[TOKEN_MAX];
    struct stat st;
    ssize_t n;
    size_t len = 0;
    ac_status rc = AC_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return ac_fail(err, AC_ECONFIG, "cannot read the upload token file "
                       "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ac_fail(err, AC_ECONFIG, "upload token file %s is not a "
                       "regular file", path);
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        return ac_fail(err, AC_ECONFIG, "upload token file %s is accessible "
                       "by group or others (mode %04o): refused, chmod 600 "
                       "it", path, (unsigned)(st.st_mode & 07777));
    }
    while (len < sizeof buf - 1 &&
           (n = read(fd, buf + len, sizeof buf - 1 - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = ac_fail(err, AC_ECONFIG, "cannot read the upload token "
                         "file %s: %s", path, strerror(errno));
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    len = strlen(buf);
    while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        buf[--len] = '\0';
    if (rc == AC_OK && len == 0)
        rc = ac_fail(err, AC_ECONFIG, "upload token file %s is empty", path);
    for (size_t i = 0; rc == AC_OK && i < len; i++)
        if (buf[i] < 0x21 || buf[i] > 0x7e)
            rc = ac_fail(err, AC_ECONFIG, "upload token in %s has a "
                         "character that cannot go in an HTTP header", path);
    if (rc == AC_OK && token != NULL)
        memcpy(token, buf, len + 1);
    explicit_bzero(buf, sizeof buf);
    return rc;
}

/* The ~/.netrc libcurl would read ($HOME/.netrc, else the password
 * database's home) into out (PATH_MAX bytes); -1 when there is no home. */
static int netrc_path(char *out)
{
    const char *home = getenv("HOME");
    struct passwd *pw;

    if (home == NULL || *home == '\0') {
        pw = getpwuid(geteuid());
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    if (home == NULL || *home == '\0')
        return -1;
    return (size_t)snprintf(out, PATH_MAX, "%s/.netrc", home) < PATH_MAX
               ? 0 : -1;
}

/* ~/.netrc holds passwords: it is used only when it is a regular file (not
 * a symlink) owned by this user and not accessible by group or others.
 * AC_OK when it is so, or when there is none. */
static ac_status check_netrc(char *err)
{
    char path[PATH_MAX];
    struct stat st;

    if (netrc_path(path) != 0 || lstat(path, &st) != 0)
        return AC_OK;
    if (!S_ISREG(st.st_mode))
        return ac_fail(err, AC_ECONFIG, "%s is not a regular file: refused",
                       path);
    if (st.st_uid != geteuid())
        return ac_fail(err, AC_ECONFIG, "%s is not owned by this user (uid "
                       "%ld): refused", path, (long)geteuid());
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return ac_fail(err, AC_ECONFIG, "%s is accessible by group or "
                       "others (mode %04o): refused, chmod 600 it", path,
                       (unsigned)(st.st_mode & 07777));
    return AC_OK;
}

ac_status upload_options_check(const upload_options *opt, char *err)
{
    url_scheme scheme = SCHEME_HTTPS;
    ac_status rc;

    if (opt->max_attempts < 1 || opt->timeout_s < 1 ||
        opt->connect_timeout_s < 1 || opt->backoff_ms < 0 ||
        opt->backoff_max_ms < 0 || opt->retry_after_max_s < 0)
        return ac_fail(err, AC_ECONFIG, "upload options out of range");
    if (opt->base_url != NULL) {
        rc = parse_base(opt, &scheme, NULL, 0, err);
        if (rc != AC_OK)
            return rc;
    }
    if (opt->ca_file != NULL && access(opt->ca_file, R_OK) != 0)
        return ac_fail(err, AC_ECONFIG, "cannot read the CA file %s: %s",
                       opt->ca_file, strerror(errno));
    if (opt->token_file != NULL)
        return read_token(opt->token_file, NULL, err);
    if (opt->base_url != NULL && scheme != SCHEME_FILE)
        return check_netrc(err);
    return AC_OK;
}

ac_status upload_options_check_folder(const upload_options *opt,
                                     char *err)
{
    char dir[PATH_MAX], shown[URL_MAX];
    url_scheme scheme;
    struct stat st;

    if (opt->base_url == NULL)
        return AC_OK;
    ac_status rc = parse_base(opt, &scheme, dir, sizeof dir, err);
    if (rc != AC_OK || scheme != SCHEME_FILE)
        return rc;
    redact_url(opt->base_url, shown, sizeof shown);
    int e = stat(dir, &st) != 0 ? errno : !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
    if (e != 0)
        return ac_fail(err, AC_ECONFIG, "upload URL %s: the folder %s: %s: "
                       "create it (or mount it), or fix the URL", shown, dir,
                       strerror(e));
    return AC_OK;
}

/* ------------------------------------------------------------ helpers */

static int valid_period(const char *p)
{
    for (int i = 0; i < 7; i++) {
        if (i == 4 ? p[i] != '-' : (p[i] < '0' || p[i] > '9'))
            return 0;
    }
    int month = (p[5] - '0') * 10 + (p[6] - '0');
    return p[7] == '\0' && month >= 1 && month <= 12;
}

static int valid_file_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 200 || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (name[i] == '/' || (unsigned char)name[i] < 0x20 ||
            name[i] == 0x7f)
            return 0;
    return 1;
}

/* SHA-256 and size of an open stream, read from its start. */
static ac_status hash_stream(FILE *f, const char *path, char hex[65],
                             long long *bytes, char *err)
{
    unsigned char buf[65536];
    sha256_ctx ctx;
    size_t n;
    long long total = 0;

    if (fseeko(f, 0, SEEK_SET) != 0)
        return ac_fail(err, AC_EIO, "cannot read %s: %s", path,
                       strerror(errno));
    sha256_init(&ctx);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        sha256_update(&ctx, buf, n);
        total += (long long)n;
    }
    if (ferror(f))
        return ac_fail(err, AC_EIO, "cannot read %s: %s", path,
                       strerror(errno));
    sha256_final_hex(&ctx, hex);
    *bytes = total;
    return AC_OK;
}

static long random_below(long n)
{
    unsigned int r = 0;
    if (n <= 0)
        return 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (unsigned int)clock();
    return (long)(r % (unsigned long)n);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* "<base>/<period>/<escaped name>" into out. */
static ac_status join_url(const char *base, const char *period,
                          const char *name, char *out, size_t len, char *err)
{
    char *esc = curl_easy_escape(NULL, name, 0);
    if (esc == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    int n = snprintf(out, len, "%s/%s/%s", base, period, esc);
    curl_free(esc);
    if (n < 0 || (size_t)n >= len)
        return ac_fail(err, AC_ECONFIG, "upload URL too long for %s", name);
    return AC_OK;
}

/* Begin a unit of work: a transaction when conn is idle, a savepoint when
 * the caller has one open.  *nested tells txn_end() which. */
static ac_status txn_begin(PGconn *conn, int *nested, char *err)
{
    switch (PQtransactionStatus(conn)) {
    case PQTRANS_IDLE:
        *nested = 0;
        return db_exec(conn, "BEGIN", err);
    case PQTRANS_INTRANS:
        *nested = 1;
        return db_exec(conn, "SAVEPOINT acbill_upload", err);
    default:
        return ac_fail(err, AC_EINTERNAL, "upload: the database connection "
                       "is busy or in a failed transaction");
    }
}

static ac_status txn_end(PGconn *conn, int nested, ac_status rc, char *err)
{
    if (rc == AC_OK)
        return db_exec(conn, nested ? "RELEASE SAVEPOINT acbill_upload"
                                    : "COMMIT", err);
    db_exec(conn, nested ? "ROLLBACK TO SAVEPOINT acbill_upload; "
                           "RELEASE SAVEPOINT acbill_upload"
                         : "ROLLBACK", NULL);
    return rc;
}

/* ------------------------------------------------------------ enqueue */

ac_status upload_enqueue(PGconn *conn, const upload_options *opt,
                         const char *period, const char *file_name,
                         const char *local_path, const char *invoice_no,
                         long long run_id, char *err)
{
    char base[URL_MAX], target[URL_MAX], abs_path[PATH_MAX], hex[65];
    char bytes_s[32], period_s[16], run_s[32];
    long long bytes = 0;
    PGresult *res = NULL;
    int nested = 0;
    ac_status rc;

    if (opt->base_url == NULL) {
        ac_debug("upload: no upload URL; %s is not queued", file_name);
        return AC_OK;
    }
    rc = upload_options_check(opt, err);
    if (rc != AC_OK)
        return rc;
    if (period == NULL || !valid_period(period))
        return ac_fail(err, AC_EINTERNAL, "upload: bad period '%s'",
                       period ? period : "(null)");
    if (file_name == NULL || !valid_file_name(file_name))
        return ac_fail(err, AC_EINTERNAL, "upload: bad file name '%s'",
                       file_name ? file_name : "(null)");
    if (realpath(local_path, abs_path) == NULL)
        return ac_fail(err, AC_EIO, "cannot queue %s for upload: %s",
                       local_path, strerror(errno));
    FILE *f = fopen(abs_path, "rb");
    if (f == NULL)
        return ac_fail(err, AC_EIO, "cannot queue %s for upload: %s",
                       abs_path, strerror(errno));
    rc = hash_stream(f, abs_path, hex, &bytes, err);
    fclose(f);
    if (rc != AC_OK)
        return rc;
    rc = normalize_base(opt->base_url, base, sizeof base, err);
    if (rc == AC_OK)
        rc = join_url(base, period, file_name, target, sizeof target, err);
    if (rc != AC_OK)
        return rc;

    snprintf(bytes_s, sizeof bytes_s, "%lld", bytes);
    snprintf(period_s, sizeof period_s, "%s-01", period);
    snprintf(run_s, sizeof run_s, "%lld", run_id);

    rc = txn_begin(conn, &nested, err);
    if (rc != AC_OK)
        return rc;
    const char *lock_params[] = { target };
    rc = db_exec_params(conn, "SELECT pg_advisory_xact_lock(" LOCK_CLASS
                        ", hashtext($1))", 1, lock_params, err);
    if (rc == AC_OK)
        rc = db_query(conn, "SELECT upload_id, sha256, status FROM "
                      "billing.uploads WHERE target_url = $1 AND status <> "
                      "'superseded' ORDER BY upload_id DESC LIMIT 1",
                      1, lock_params, &res, err);
    if (rc == AC_OK && PQntuples(res) == 1 &&
        strcmp(PQgetvalue(res, 0, 1), hex) == 0) {
        ac_debug("upload: %s/%s is already %s (upload %s)", period,
                 file_name, PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 0));
        PQclear(res);
        return txn_end(conn, nested, AC_OK, err);
    }
    PQclear(res);
    if (rc == AC_OK)
        rc = db_exec_params(conn, "UPDATE billing.uploads SET status = "
                            "'superseded', last_error = 'superseded by "
                            "newer content' WHERE target_url = $1 AND "
                            "status = 'pending'", 1, lock_params, err);
    if (rc == AC_OK) {
        const char *params[] = {
            period_s, file_name, abs_path, hex, bytes_s, base, target,
            invoice_no, run_id > 0 ? run_s : NULL
        };
        rc = db_exec_params(conn, "INSERT INTO billing.uploads (period, "
                            "file_name, local_path, sha256, bytes, base_url, "
                            "target_url, invoice_no, run_id) VALUES ($1, $2, "
                            "$3, $4, $5, $6, $7, $8, $9)", 9, params, err);
    }
    rc = txn_end(conn, nested, rc, err);
    if (rc == AC_OK)
        ac_info("upload: queued %s/%s (%s bytes, sha256 %.12s...)", period,
                file_name, bytes_s, hex);
    return rc;
}

/* ------------------------------------------------------------ kill points
 *
 * ACBILL_TEST_KILL_AT=N makes the process kill itself (SIGKILL, as the
 * OOM killer or a reboot would) at the N-th point where delivery changes
 * state on the server or in the ledger.  Only the crash tests set it
 * (tests/upload_test.c): they kill the job at every such point in turn
 * and check that no file arrives twice and no temporary is left. */
static void kill_point(const char *where)
{
    static long at = -1, seen;

    if (at < 0) {
        const char *v = getenv("ACBILL_TEST_KILL_AT");
        at = v != NULL ? atol(v) : 0;
    }
    if (at > 0 && ++seen == at) {
        fprintf(stderr, "acbill: ACBILL_TEST_KILL_AT=%ld: killed %s\n", at,
                where);
        raise(SIGKILL);
    }
}

/* ------------------------------------------------------------ HTTP */

typedef struct {
    CURL *h;
    const upload_options *opt;
    const char *token;          /* NULL: none (then ~/.netrc) */
    const char *protocols;      /* "https" or "http,https" */
    char errbuf[CURL_ERROR_SIZE];
    char body[SNIPPET_MAX];     /* start of the response body */
    size_t body_len;
    sha256_ctx *hash;           /* GET: hash the body here (not kept) */
    long long hashed;           /* bytes hashed */
} transfer;

typedef struct {
    CURLcode cc;
    long http;                  /* 0 when no response */
    curl_off_t retry_after;     /* seconds; 0 = none */
    curl_off_t length;          /* Content-Length, -1 = unknown */
    curl_off_t sent;            /* bytes uploaded */
    char etag[128];             /* the ETag header, "" = none */
    char detail[CURL_ERROR_SIZE + SNIPPET_MAX];
} response;

/* The body of a PUT: the stored file, with a kill point half-way. */
typedef struct {
    FILE *f;
    curl_off_t size, read;
} put_body;

static size_t read_body(char *buf, size_t size, size_t n, void *arg)
{
    put_body *b = arg;
    size_t got = fread(buf, size, n, b->f);

    if (got == 0 && ferror(b->f))
        return CURL_READFUNC_ABORT;
    if (b->read < b->size / 2 && b->read + (curl_off_t)got >= b->size / 2 &&
        b->size > 0)
        kill_point("half-way through a PUT");
    b->read += (curl_off_t)got;
    return got;
}

static size_t collect_body(char *data, size_t size, size_t n, void *arg)
{
    transfer *x = arg;
    size_t len = size * n;

    if (x->hash != NULL) {
        sha256_update(x->hash, data, len);
        x->hashed += (long long)len;
        return len;
    }
    size_t room = sizeof x->body - 1 - x->body_len;
    size_t take = len < room ? len : room;
    memcpy(x->body + x->body_len, data, take);
    x->body_len += take;
    x->body[x->body_len] = '\0';
    return len;
}

static void wipe_slist(struct curl_slist *list)
{
    for (struct curl_slist *p = list; p != NULL; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(list);
}

static int is_success(const response *r)
{
    return r->cc == CURLE_OK && r->http >= 200 && r->http < 300;
}

static int is_tls_failure(const response *r)
{
    switch (r->cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return 1;
    default:
        return 0;
    }
}

/* Worth trying again soon: network trouble, 408, 429, 5xx but 501/505. */
static int is_transient(const response *r)
{
    switch (r->cc) {
    case CURLE_OK:
        return r->http == 408 || r->http == 429 ||
               (r->http >= 500 && r->http <= 599 && r->http != 501 &&
                r->http != 505);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

/* One request.  method is PUT (body from f, size bytes), HEAD, GET (the
 * body hashed into x->hash when set), or any other method without a
 * body; dest adds the MOVE headers. */
static void perform(transfer *x, const char *method, const char *url,
                    FILE *f, curl_off_t size, const char *dest, response *r)
{
    const upload_options *opt = x->opt;
    struct curl_slist *headers = NULL;
    char line[URL_MAX + 32];
    CURL *h = x->h;
    long low_time = opt->timeout_s < 60 ? opt->timeout_s : 60;
    put_body body = { f, size, 0 };

    memset(r, 0, sizeof *r);
    r->length = -1;
    x->errbuf[0] = '\0';
    x->body[0] = '\0';
    x->body_len = 0;

    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, x->protocols);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "acbill/" ACBILL_VERSION);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (opt->ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, opt->ca_file);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, opt->connect_timeout_s);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, opt->timeout_s);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, low_time);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);

    if (x->token != NULL) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", x->token);
        headers = curl_slist_append(headers, line);
        explicit_bzero(line, sizeof line);
    } else {
        char netrc[PATH_MAX];
        char ignored[AC_ERR_MAX];
        /* Only the file check_netrc() vetted, checked again now. */
        if (netrc_path(netrc) == 0 && check_netrc(ignored) == AC_OK) {
            curl_easy_setopt(h, CURLOPT_NETRC_FILE, netrc);
            curl_easy_setopt(h, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
        }
    }
    if (dest != NULL) {
        snprintf(line, sizeof line, "Destination: %s", dest);
        headers = curl_slist_append(headers, line);
        headers = curl_slist_append(headers, "Overwrite: T");
    }
    if (headers != NULL)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

    if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_body);
        curl_easy_setopt(h, CURLOPT_READDATA, &body);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, size);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }

    r->cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->http);
    curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &r->retry_after);
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &r->length);
    curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &r->sent);
    struct curl_header *etag;
    if (r->cc == CURLE_OK &&
        curl_easy_header(h, "ETag", 0, CURLH_HEADER, -1, &etag) ==
            CURLHE_OK &&
        strlen(etag->value) < sizeof r->etag)
        snprintf(r->etag, sizeof r->etag, "%s", etag->value);
    wipe_slist(headers);

    if (r->cc != CURLE_OK) {
        snprintf(r->detail, sizeof r->detail, "%s",
                 x->errbuf[0] ? x->errbuf : curl_easy_strerror(r->cc));
    } else {
        /* The body as one line of printable text, without HTML/XML tags
         * (nginx's error pages, S3's <Code>...</Code>). */
        char snippet[SNIPPET_MAX];
        size_t j = 0;
        int in_tag = 0;
        for (size_t i = 0; i < x->body_len && j < sizeof snippet - 1; i++) {
            unsigned char c = (unsigned char)x->body[i];
            if (c == '<')
                in_tag = 1;
            if (in_tag || c < 0x20 || c >= 0x7f || c == ' ') {
                if (j > 0 && snippet[j - 1] != ' ')
                    snippet[j++] = ' ';
            } else {
                snippet[j++] = (char)c;
            }
            if (c == '>')
                in_tag = 0;
        }
        while (j > 0 && snippet[j - 1] == ' ')
            j--;
        snippet[j] = '\0';
        snprintf(r->detail, sizeof r->detail, "HTTP %ld%s%s", r->http,
                 j ? ": " : "", snippet);
    }
}

/* A message for a failed request, into msg (AC_ERR_MAX bytes). */
static void describe(const transfer *x, const char *method, const char *url,
                     const response *r, char *msg)
{
    if (is_tls_failure(r))
        snprintf(msg, AC_ERR_MAX, "%s %s: TLS %s failed: %s (trusting %s)",
                 method, url,
                 r->cc == CURLE_SSL_CONNECT_ERROR ? "handshake"
                                                  : "verification",
                 r->detail,
                 x->opt->ca_file ? x->opt->ca_file : "the system CA store");
    else
        snprintf(msg, AC_ERR_MAX, "%s %s: %s", method, url, r->detail);
}

/* Make the request, repeating it while it fails transiently, up to
 * max_attempts times.  *puts counts the requests that carried the file. */
static void perform_retrying(transfer *x, const char *method,
                             const char *url, FILE *f, curl_off_t size,
                             const char *dest, response *r, int *puts)
{
    const upload_options *opt = x->opt;
    char msg[AC_ERR_MAX];

    for (int attempt = 1;; attempt++) {
        if (f != NULL && fseeko(f, 0, SEEK_SET) != 0) {
            memset(r, 0, sizeof *r);
            r->cc = CURLE_READ_ERROR;
            snprintf(r->detail, sizeof r->detail, "cannot rewind the file: "
                     "%s", strerror(errno));
            return;
        }
        perform(x, method, url, f, size, dest, r);
        if (f != NULL)
            (*puts)++;
        if (is_success(r) || !is_transient(r) ||
            attempt >= opt->max_attempts)
            return;

        long delay = opt->backoff_ms;
        for (int i = 1; i < attempt && delay < opt->backoff_max_ms; i++)
            delay *= 2;
        if (delay > opt->backoff_max_ms)
            delay = opt->backoff_max_ms;
        delay = delay / 2 + random_below(delay / 2 + 1);   /* jitter */
        if (r->retry_after > 0) {
            curl_off_t ra = r->retry_after < opt->retry_after_max_s
                                ? r->retry_after : opt->retry_after_max_s;
            if (ra * 1000 > delay)
                delay = (long)ra * 1000;
        }
        describe(x, method, url, r, msg);
        ac_warn("upload: %s; retry %d of %d in %.1f s", msg, attempt,
                opt->max_attempts - 1, (double)delay / 1000.0);
        sleep_ms(delay);
    }
}

typedef struct {
    int attempts;              /* requests that carried the file */
    long http;                 /* the last HTTP status, 0 = none */
    int stop;                  /* the other rows would fail the same way */
    int found;                 /* already on the server: not sent again */
    int part_gone;             /* the temporary is known not to exist */
    char etag[128];            /* the delivered file's ETag, "" = none */
    char msg[AC_ERR_MAX];      /* why it failed, or how it was found */
} outcome;

static void fail_from(outcome *out, const transfer *x, const char *method,
                      const char *url, const response *r)
{
    describe(x, method, url, r, out->msg);
    out->http = r->http;
    out->stop = is_tls_failure(r) || is_transient(r) || r->http == 401 ||
                r->http == 407;
}

/* ------------------------------------------------------------ ledger */

typedef struct {
    const char *id, *period, *name, *path, *sha256, *target;
    const char *part_url;       /* an earlier attempt's temporary, or NULL */
    const char *etag;           /* the ETag recorded at upload, or NULL */
    long long bytes;
} pending_row;

/* One delivery pass: what every row needs. */
typedef struct {
    PGconn *conn;
    transfer x;
    url_scheme scheme;
    const char *base;           /* normalized base URL */
    const char *dir;            /* file:// directory */
    char swept[8];              /* file://: the period directory swept */
} pass;

/* Record on the row, before anything is sent, the temporary name it is
 * sent to (NULL: none, put mode), so that a run killed from here on
 * leaves something the next run can find. */
static ac_status mark_attempt(PGconn *conn, const pending_row *row,
                              const char *part_url, char *err)
{
    const char *p[] = { row->id, part_url };
    return db_exec_params(conn, "UPDATE billing.uploads SET part_url = $2,"
                          " last_attempt_at = now() WHERE upload_id = $1"
                          " AND status = 'pending'", 2, p, err);
}

/* Record that the whole content reached the server (its ETag there, if
 * any), before it is moved into place. */
static ac_status mark_sent(PGconn *conn, const pending_row *row,
                           const char *etag, char *err)
{
    const char *p[] = { row->id, etag && *etag ? etag : NULL };
    return db_exec_params(conn, "UPDATE billing.uploads SET sent_at = now(),"
                          " etag = $2 WHERE upload_id = $1"
                          " AND status = 'pending'", 2, p, err);
}

static ac_status record(PGconn *conn, const pending_row *row, int ok,
                        const outcome *out, char *err)
{
    char attempts[16], http[16];
    snprintf(attempts, sizeof attempts, "%d", out->attempts);
    snprintf(http, sizeof http, "%ld", out->http);
    const char *etag = out->etag[0] ? out->etag : NULL;
    if (ok) {
        const char *params[] = { row->id, attempts, out->http ? http : NULL,
                                 etag, out->found ? out->msg : NULL };
        return db_exec_params(conn, "UPDATE billing.uploads SET status = "
                              "'done', attempts = attempts + $2, "
                              "http_status = $3, last_error = NULL, "
                              "etag = coalesce($4, etag), note = $5, "
                              "part_url = NULL, "
                              "last_attempt_at = now(), delivered_at = now() "
                              "WHERE upload_id = $1 AND status = 'pending'",
                              5, params, err);
    }
    const char *params[] = { row->id, attempts, out->http ? http : NULL,
                             out->msg, etag, out->part_gone ? "t" : "f" };
    return db_exec_params(conn, "UPDATE billing.uploads SET attempts = "
                          "attempts + $2, http_status = coalesce($3::int, "
                          "http_status), last_error = $4, last_attempt_at = "
                          "now(), etag = coalesce($5, etag), "
                          "part_url = CASE WHEN $6::bool THEN NULL ELSE "
                          "part_url END "
                          "WHERE upload_id = $1 AND status = 'pending'",
                          6, params, err);
}

/* ------------------------------------------------------------ HTTP delivery */

/* Does the file at url (whose HEAD answered r with the row's size) hold
 * the row's content?  The ETag recorded when the row was sent settles it
 * without a download; otherwise the file is fetched and hashed as it
 * streams (nothing is stored).  -1 when the GET failed (out says why). */
static int same_content(transfer *x, const pending_row *row, const char *url,
                        const response *head, outcome *out)
{
    sha256_ctx ctx;
    response r;
    char hex[65];

    if (row->etag != NULL && head->etag[0] != '\0' &&
        strcmp(row->etag, head->etag) == 0) {
        snprintf(out->msg, sizeof out->msg, "already on the server: %lld "
                 "bytes with the ETag %s recorded when it was sent",
                 row->bytes, head->etag);
        return 1;
    }
    sha256_init(&ctx);
    x->hash = &ctx;
    x->hashed = 0;
    perform(x, "GET", url, NULL, 0, NULL, &r);
    x->hash = NULL;
    sha256_final_hex(&ctx, hex);
    if (!is_success(&r)) {
        fail_from(out, x, "GET", url, &r);
        return -1;
    }
    if (x->hashed == row->bytes && strcmp(hex, row->sha256) == 0) {
        snprintf(out->msg, sizeof out->msg, "already on the server: %lld "
                 "bytes with the recorded SHA-256 %.12s... (downloaded to "
                 "check)", row->bytes, hex);
        return 1;
    }
    return 0;
}

/* Remove a temporary an earlier attempt left on the server; 1 when it is
 * gone (deleted, or not there). */
static int delete_part(transfer *x, const char *part_url)
{
    response del;
    perform(x, "DELETE", part_url, NULL, 0, NULL, &del);
    if (is_success(&del) || del.http == 404)
        return 1;
    ac_warn("upload: could not delete the temporary %s (%s)", part_url,
            del.detail);
    return 0;
}

static int deliver_http(pass *ps, const pending_row *row, FILE *f,
                        outcome *out)
{
    transfer *x = &ps->x;
    char part_url[URL_MAX], part_name[NAME_MAX + 1], err[AC_ERR_MAX];
    char dir_url[URL_MAX];
    const char *final_url = row->target, *put_url = final_url;
    int reuse = 0, same;
    response r;

    /* 1. Does the server already have it?  A run killed after the file
     * arrived, but before the ledger said so, must not send it again. */
    int none = 0;
    perform_retrying(x, "HEAD", final_url, NULL, 0, NULL, &r, &none);
    if (is_success(&r) && r.length == (curl_off_t)row->bytes) {
        same = same_content(x, row, final_url, &r, out);
        if (same < 0)
            return 0;
        if (same) {
            out->found = 1;
            out->http = r.http;
            snprintf(out->etag, sizeof out->etag, "%s", r.etag);
            if (row->part_url != NULL && delete_part(x, row->part_url))
                out->part_gone = 1;
            else if (row->part_url == NULL)
                out->part_gone = 1;
            return 1;
        }
    } else if (!is_success(&r) && r.http != 404 &&
               (is_transient(&r) || is_tls_failure(&r) || r.http == 401 ||
                r.http == 407)) {
        fail_from(out, x, "HEAD", final_url, &r);
        return 0;
    } else if (!is_success(&r) && r.http != 404) {
        ac_debug("upload: HEAD %s: %s (cannot tell whether it is there)",
                 final_url, r.detail);
    }

    if (x->opt->use_move) {
        /* 2. The temporary's name depends only on the content, so an
         * earlier attempt's is found again: reused when it is whole,
         * overwritten otherwise. */
        snprintf(part_name, sizeof part_name, ".%.200s.part-%.16s",
                 row->name, row->sha256);
        if (join_url(ps->base, row->period, part_name, part_url,
                     sizeof part_url, err) != AC_OK) {
            snprintf(out->msg, sizeof out->msg, "%s", err);
            return 0;
        }
        put_url = part_url;
        if (row->part_url != NULL && strcmp(row->part_url, part_url) == 0) {
            perform(x, "HEAD", part_url, NULL, 0, NULL, &r);
            if (is_success(&r) && r.length == (curl_off_t)row->bytes) {
                same = same_content(x, row, part_url, &r, out);
                if (same < 0)
                    return 0;
                reuse = same;
                if (reuse)
                    ac_info("upload: %s/%s: the temporary an earlier run "
                            "sent is whole; moving it into place",
                            row->period, row->name);
            }
        } else if (row->part_url != NULL) {
            delete_part(x, row->part_url);
        }
    }

    if (!reuse) {
        if (mark_attempt(ps->conn, row, x->opt->use_move ? part_url : NULL,
                         err) != AC_OK) {
            snprintf(out->msg, sizeof out->msg, "%s", err);
            out->stop = 1;
            return 0;
        }
        kill_point("after recording the attempt");
        perform_retrying(x, "PUT", put_url, f, (curl_off_t)row->bytes, NULL,
                         &r, &out->attempts);
        if (r.cc == CURLE_OK && r.http == 409) {
            /* A WebDAV server that does not create parent collections. */
            response mk;
            snprintf(dir_url, sizeof dir_url, "%s/%s/", ps->base,
                     row->period);
            perform(x, "MKCOL", dir_url, NULL, 0, NULL, &mk);
            if (is_success(&mk))
                perform_retrying(x, "PUT", put_url, f,
                                 (curl_off_t)row->bytes, NULL, &r,
                                 &out->attempts);
        }
        if (!is_success(&r)) {
            fail_from(out, x, "PUT", put_url, &r);
            return 0;
        }
        kill_point("after the PUT");
        out->http = r.http;
        if (r.sent != (curl_off_t)row->bytes) {
            snprintf(out->msg, sizeof out->msg, "PUT %s sent %lld of %lld "
                     "bytes", put_url, (long long)r.sent, row->bytes);
            if (x->opt->use_move && delete_part(x, put_url))
                out->part_gone = 1;
            return 0;
        }
        if (x->opt->use_move) {
            /* The temporary's ETag; a WebDAV MOVE keeps it, so a run killed
             * after the MOVE knows the file for its own without a GET. */
            response h;
            perform(x, "HEAD", part_url, NULL, 0, NULL, &h);
            if (mark_sent(ps->conn, row, is_success(&h) ? h.etag : NULL,
                          err) != AC_OK) {
                snprintf(out->msg, sizeof out->msg, "%s", err);
                out->stop = 1;
                return 0;
            }
            if (is_success(&h) && h.etag[0] != '\0')
                snprintf(out->etag, sizeof out->etag, "%s", h.etag);
            kill_point("after recording the temporary's ETag");
        }
    }

    if (x->opt->use_move) {
        perform_retrying(x, "MOVE", part_url, NULL, 0, final_url, &r, &none);
        if (!is_success(&r)) {
            fail_from(out, x, "MOVE", part_url, &r);
            if (delete_part(x, part_url))
                out->part_gone = 1;
            return 0;
        }
        out->part_gone = 1;
        out->http = r.http;
        kill_point("after the MOVE");
    }

    /* Cheap check that the server holds the whole file: HEAD and compare
     * Content-Length.  A server that refuses HEAD is not an error. */
    long status = out->http;
    perform(x, "HEAD", final_url, NULL, 0, NULL, &r);
    if (is_success(&r) && r.length >= 0 &&
        r.length != (curl_off_t)row->bytes) {
        snprintf(out->msg, sizeof out->msg, "after upload the server has "
                 "%lld bytes at %s, expected %lld", (long long)r.length,
                 final_url, row->bytes);
        return 0;
    }
    if (!is_success(&r))
        ac_debug("upload: HEAD %s: %s (size not verified)", final_url,
                 r.detail);
    else if (r.etag[0] != '\0')
        snprintf(out->etag, sizeof out->etag, "%s", r.etag);
    if (!x->opt->use_move)
        kill_point("after the PUT and its check");
    out->http = status;
    return 1;
}

/* ------------------------------------------------------------ file:// */

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Remove the temporaries (".NAME.part-...") that killed deliveries left in
 * a period's directory; only the process holding the delivery lock writes
 * them, so none is in use. */
static void sweep_parts(const char *pdir)
{
    DIR *d = opendir(pdir);
    struct dirent *e;
    char path[PATH_MAX];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' || (strstr(e->d_name, ".part-") == NULL &&
                                    strstr(e->d_name, ".tmp-") == NULL))
            continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", pdir, e->d_name) <
                sizeof path && unlink(path) == 0)
            ac_info("upload: removed %s, left by an earlier delivery",
                    path);
    }
    closedir(d);
}

static int deliver_file(pass *ps, const pending_row *row, FILE *f,
                        outcome *out)
{
    const char *dir = ps->dir, *period = row->period, *name = row->name;
    char pdir[PATH_MAX], final[PATH_MAX], hex[65];
    char buf[65536], err[AC_ERR_MAX];
    const char *why = NULL;
    struct stat st;
    long long copied = 0, bytes = row->bytes;
    outfile o;
    size_t n;

    out->attempts = 1;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(out->msg, sizeof out->msg, "delivery directory %s does not "
                 "exist", dir);
        out->stop = 1;
        return 0;
    }
    if ((size_t)snprintf(pdir, sizeof pdir, "%s/%s", dir, period) >=
            sizeof pdir ||
        (size_t)snprintf(final, sizeof final, "%s/%s", pdir, name) >=
            sizeof final) {
        snprintf(out->msg, sizeof out->msg, "delivery path too long for %s",
                 name);
        return 0;
    }
    if (strcmp(ps->swept, period) != 0) {
        sweep_parts(pdir);
        snprintf(ps->swept, sizeof ps->swept, "%s", period);
    }
    /* Already there (a run killed after the rename)?  Only a regular
     * file counts: a symlink planted at the name is replaced. */
    if (lstat(final, &st) == 0 && S_ISREG(st.st_mode) &&
        (long long)st.st_size == bytes &&
        sha256_file(final, hex, err) == AC_OK &&
        strcmp(hex, row->sha256) == 0) {
        out->attempts = 0;
        out->found = 1;
        snprintf(out->msg, sizeof out->msg, "already delivered: %s has the "
                 "recorded SHA-256", final);
        return 1;
    }
    if (outfile_mkdir(dir, period, pdir, err) != AC_OK ||
        outfile_open(&o, pdir, name, err) != AC_OK) {
        snprintf(out->msg, sizeof out->msg, "%s", err);
        return 0;
    }
    /* Copy to a fresh temporary (outfile.h), flush it to disk, then rename
     * it over the final name: a reader sees the old file or the whole new
     * one, and nothing planted in the folder is followed. */
    if (fseeko(f, 0, SEEK_SET) != 0)
        why = strerror(errno);
    while (why == NULL && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (write_all(o.fd, buf, n) != 0)
            why = strerror(errno);
        copied += (long long)n;
    }
    if (why == NULL && (ferror(f) || copied != bytes))
        why = "the stored file could not be read completely";
    if (why != NULL) {
        snprintf(out->msg, sizeof out->msg, "cannot write %s: %s", final,
                 why);
        outfile_discard(&o);
        return 0;
    }
    kill_point("after writing the temporary");
    if (outfile_commit(&o, err) != AC_OK) {
        snprintf(out->msg, sizeof out->msg, "%s", err);
        return 0;
    }
    kill_point("after the rename");
    if (lstat(final, &st) != 0 || (long long)st.st_size != bytes) {
        snprintf(out->msg, sizeof out->msg, "after delivery %s does not "
                 "have %lld bytes", final, bytes);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ deliver */

/* The origin (scheme://host:port, lower case, the default port made
 * explicit) of url into out (URL_MAX bytes), parsed with libcurl's URL
 * API; -1 when url is not a URL with a host. */
static int url_origin(const char *url, char *out)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;

    if (u != NULL &&
        curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) ==
            CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
        snprintf(out, URL_MAX, "%s://%s:%s", scheme, host,
                 port != NULL ? port : "");
        for (char *p = out; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        rc = 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* The temporary a row is sent to before its MOVE (dav mode), as a URL
 * (http) or a local path (file://), into out (len bytes). */
static ac_status part_location(const pass *ps, const char *period,
                               const char *name, const char *sha256,
                               char *out, size_t len, char *err)
{
    char part_name[NAME_MAX + 1];

    snprintf(part_name, sizeof part_name, ".%.200s.part-%.16s", name,
             sha256);
    if (ps->scheme != SCHEME_FILE)
        return join_url(ps->base, period, part_name, out, len, err);
    if ((size_t)snprintf(out, len, "%s/%s/%s", ps->dir, period, part_name) >=
        len)
        return ac_fail(err, AC_ECONFIG, "delivery path too long for %s",
                       name);
    return AC_OK;
}

/* Is the row one this process may deliver with its credentials?  Its
 * target must be exactly <configured base>/<period>/<file name> and its
 * temporary (when recorded) exactly the one delivery itself would use:
 * a row anyone else wrote into billing.uploads pointing elsewhere (another
 * host, port or scheme, or another path) is refused, so the token, the
 * file and a file:// clean-up never go anywhere but the configured
 * upload URL, whatever the database says.  0 when it may; 1 with the
 * reason in why (AC_ERR_MAX bytes) when it is refused. */
static int row_refused(const pass *ps, const pending_row *row, char *why)
{
    char want[URL_MAX], got_origin[URL_MAX], base_origin[URL_MAX];
    char err[AC_ERR_MAX];

    if (!valid_period(row->period) || !valid_file_name(row->name)) {
        snprintf(why, AC_ERR_MAX, "refused: upload %s has an unsafe file "
                 "name; not sent (an operator must cancel it: acbill "
                 "upload --cancel)", row->id);
        return 1;
    }
    if (join_url(ps->base, row->period, row->name, want, sizeof want,
                 err) != AC_OK || strcmp(row->target, want) != 0) {
        const char *where = "another path";
        if (ps->scheme != SCHEME_FILE &&
            (url_origin(row->target, got_origin) != 0 ||
             url_origin(ps->base, base_origin) != 0 ||
             strcmp(got_origin, base_origin) != 0))
            where = "another origin";
        snprintf(why, AC_ERR_MAX, "refused: target_url is on %s than the "
                 "configured upload URL (expected %s): not sent, no "
                 "credential used; an operator must check the row and "
                 "cancel it (acbill upload --cancel)", where, want);
        return 1;
    }
    if (row->part_url != NULL) {
        if (part_location(ps, row->period, row->name, row->sha256, want,
                          sizeof want, err) != AC_OK ||
            ps->scheme == SCHEME_FILE || strcmp(row->part_url, want) != 0) {
            snprintf(why, AC_ERR_MAX, "refused: part_url is not this "
                     "file's temporary on the configured upload URL "
                     "(expected %s): not sent, no credential used; an "
                     "operator must check the row and cancel it (acbill "
                     "upload --cancel)", want);
            return 1;
        }
    }
    return 0;
}

/* Deliver one row; 1 on success.  out says why not. */
static int deliver_row(pass *ps, const pending_row *row, outcome *out)
{
    char hex[65], err[AC_ERR_MAX];
    long long bytes = 0;
    int ok;
    FILE *f = fopen(row->path, "rb");

    if (f == NULL) {
        snprintf(out->msg, sizeof out->msg, "cannot open the stored file "
                 "%s: %s", row->path, strerror(errno));
        return 0;
    }
    if (hash_stream(f, row->path, hex, &bytes, err) != AC_OK) {
        snprintf(out->msg, sizeof out->msg, "%s", err);
        fclose(f);
        return 0;
    }
    if (bytes != row->bytes || strcmp(hex, row->sha256) != 0) {
        snprintf(out->msg, sizeof out->msg, "the stored file %s changed "
                 "since it was queued (now %lld bytes, sha256 %.12s..., "
                 "queued %lld bytes, %.12s...): not sent", row->path, bytes,
                 hex, row->bytes, row->sha256);
        fclose(f);
        return 0;
    }
    if (ps->scheme == SCHEME_FILE)
        ok = deliver_file(ps, row, f, out);
    else
        ok = deliver_http(ps, row, f, out);
    fclose(f);
    return ok;
}

/* Remove from the server the temporaries of rows that will not be sent
 * any more (superseded, cancelled, retargeted, or delivered while their
 * temporary could not be deleted), and forget them in the ledger. */
static ac_status sweep_final_parts(pass *ps, char *err)
{
    PGresult *res;
    const char *p[] = { ps->base };
    char want[URL_MAX], why[AC_ERR_MAX];
    ac_status rc = db_query(ps->conn, "SELECT upload_id, part_url, "
                            "to_char(period, 'YYYY-MM'), file_name, sha256 "
                            "FROM billing.uploads WHERE base_url = $1 AND "
                            "part_url IS NOT NULL AND status <> 'pending' "
                            "ORDER BY upload_id", 1, p, &res, err);
    for (int i = 0; rc == AC_OK && i < PQntuples(res); i++) {
        const char *url = PQgetvalue(res, i, 1);
        const char *period = PQgetvalue(res, i, 2);
        const char *name = PQgetvalue(res, i, 3);
        int gone = 0, ours;

        /* Only the temporary delivery itself would have made, on the
         * configured upload URL: never a URL or path the database names
         * otherwise (no credential sent, nothing outside the folder
         * deleted); such a record is forgotten with a warning. */
        ours = valid_period(period) && valid_file_name(name) &&
               part_location(ps, period, name, PQgetvalue(res, i, 4), want,
                             sizeof want, why) == AC_OK;
        if (ours && ps->scheme != SCHEME_FILE) {
            ours = strcmp(url, want) == 0;
        } else if (ours) {
            char *path = strncmp(url, "file://", 7) == 0
                             ? curl_unescape(url + 7, 0) : NULL;
            ours = path != NULL && strcmp(path, want) == 0;
            curl_free(path);
        }
        if (!ours) {
            ac_warn("upload: refused to remove the temporary recorded on "
                    "upload %s: it is not that file's temporary on the "
                    "configured upload URL (expected %s); the record is "
                    "dropped, nothing was sent or deleted",
                    PQgetvalue(res, i, 0), want);
            gone = 1;
        } else if (ps->scheme != SCHEME_FILE) {
            gone = delete_part(&ps->x, url);
        } else {
            gone = unlink(want) == 0 || errno == ENOENT;
        }
        if (!gone)
            continue;
        kill_point("after deleting a stale temporary");
        const char *q[] = { PQgetvalue(res, i, 0) };
        rc = db_exec_params(ps->conn, "UPDATE billing.uploads SET part_url ="
                            " NULL WHERE upload_id = $1", 1, q, err);
        if (rc == AC_OK && ours)
            ac_info("upload: removed the temporary %s of upload %s", url,
                    q[0]);
    }
    PQclear(res);
    return rc;
}

/* Pending rows (for base, or all with base NULL) that this process must
 * answer for: a row of a period whose run is in progress in another
 * session (its run lock, run.c, is held) is that run's to deliver. */
static ac_status count_pending(PGconn *conn, const char *base, int *n,
                               char *err)
{
    PGresult *res;
    const char *params[] = { base };
    ac_status rc = db_query(conn,
        "SELECT count(*) FROM billing.uploads u WHERE status = 'pending'"
        " AND ($1::text IS NULL OR base_url = $1) AND NOT EXISTS ("
        "  SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory'"
        "   AND l.granted AND l.pid <> pg_backend_pid()"
        "   AND l.classid = " UPLOAD_RUN_LOCK_CLASS " AND l.objsubid = 2"
        "   AND l.objid = to_char(u.period, 'YYYYMM')::int::oid)",
        1, params, &res, err);
    if (rc == AC_OK) {
        *n = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    return rc;
}

/* Take the delivery lock, waiting for another process that delivers
 * (each request it makes is bounded by the upload timeouts), without the
 * session's lock_timeout. */
static ac_status take_delivery_lock(PGconn *conn, char *err)
{
    PGresult *res;
    ac_status rc = db_query(conn, "SELECT pg_try_advisory_lock(" LOCK_CLASS
                            ", 0)", 0, NULL, &res, err);
    if (rc != AC_OK)
        return rc;
    int locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (locked)
        return AC_OK;
    ac_info("upload: another acbill is delivering; waiting for it");
    rc = db_exec(conn, "BEGIN; SET LOCAL lock_timeout = 0;"
                 " SET LOCAL statement_timeout = 0;"
                 " SELECT pg_advisory_lock(" LOCK_CLASS ", 0); COMMIT", err);
    if (rc != AC_OK)
        db_exec(conn, "ROLLBACK", NULL);
    return rc;
}

ac_status upload_deliver_pending(PGconn *conn, const upload_options *opt,
                                 int *delivered, int *still_pending,
                                 char *err)
{
    char base[URL_MAX], dir[PATH_MAX], token[TOKEN_MAX];
    pass ps;
    PGresult *rows = NULL, *res;
    int all = 0, here = 0, stopped = 0, skipped = 0;
    char stop_reason[AC_ERR_MAX] = "";
    ac_status rc;

    *delivered = 0;
    *still_pending = 0;
    memset(&ps, 0, sizeof ps);
    ps.conn = conn;
    ps.x.opt = opt;
    ps.base = base;
    ps.dir = dir;
    token[0] = '\0';
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        return ac_fail(err, AC_EINTERNAL, "upload: deliver called inside a "
                       "transaction");
    if (opt->base_url == NULL) {
        rc = count_pending(conn, NULL, still_pending, err);
        if (rc == AC_OK && *still_pending > 0)
            ac_warn("upload: %d file(s) pending, but no upload URL is "
                    "configured", *still_pending);
        return rc;
    }
    rc = upload_options_check(opt, err);
    if (rc == AC_OK)
        rc = parse_base(opt, &ps.scheme, dir, sizeof dir, err);
    if (rc == AC_OK)
        rc = normalize_base(opt->base_url, base, sizeof base, err);
    if (rc == AC_OK)
        rc = take_delivery_lock(conn, err);
    if (rc != AC_OK)
        return rc;

    if (opt->token_file != NULL)
        rc = read_token(opt->token_file, token, err);
    if (rc == AC_OK && token[0] != '\0')
        ac_log_secret(token);           /* never in a message (log.h) */
    if (rc == AC_OK && ps.scheme != SCHEME_FILE) {
        rc = upload_global_init(err);
        if (rc == AC_OK) {
            ps.x.h = curl_easy_init();
            if (ps.x.h == NULL)
                rc = ac_fail(err, AC_EINTERNAL, "cannot start libcurl");
        }
        ps.x.token = opt->token_file != NULL ? token : NULL;
        ps.x.protocols = ps.scheme == SCHEME_HTTP ? "http,https" : "https";
    }
    if (rc == AC_OK)
        rc = sweep_final_parts(&ps, err);
    const char *base_param[] = { base };
    if (rc == AC_OK)
        rc = db_query(conn, "SELECT upload_id, to_char(period, 'YYYY-MM'), "
                      "file_name, local_path, sha256, bytes, target_url, "
                      "part_url, etag "
                      "FROM billing.uploads WHERE status = 'pending' AND "
                      "base_url = $1 ORDER BY (file_name = '"
                      UPLOAD_MANIFEST_NAME "'), upload_id",
                      1, base_param, &rows, err);

    for (int i = 0; rc == AC_OK && i < PQntuples(rows); i++) {
        pending_row row = {
            PQgetvalue(rows, i, 0), PQgetvalue(rows, i, 1),
            PQgetvalue(rows, i, 2), PQgetvalue(rows, i, 3),
            PQgetvalue(rows, i, 4), PQgetvalue(rows, i, 6),
            db_value(rows, i, 7), db_value(rows, i, 8),
            atoll(PQgetvalue(rows, i, 5))
        };
        outcome out;
        memset(&out, 0, sizeof out);
        if (stopped) {
            skipped++;
            continue;
        }
        if (strcmp(row.name, UPLOAD_MANIFEST_NAME) == 0) {
            /* Finance checks the files against SHA256SUMS: it goes last,
             * and only once every other file of its period is there. */
            const char *params[] = { base, row.period };
            rc = db_query(conn, "SELECT count(*) FROM billing.uploads WHERE "
                          "status = 'pending' AND base_url = $1 AND "
                          "to_char(period, 'YYYY-MM') = $2 AND file_name <> '"
                          UPLOAD_MANIFEST_NAME "'", 2, params, &res, err);
            if (rc != AC_OK)
                break;
            int others = atoi(PQgetvalue(res, 0, 0));
            PQclear(res);
            if (others > 0) {
                snprintf(out.msg, sizeof out.msg, "held back until the %d "
                         "other pending file(s) of %s are delivered", others,
                         row.period);
                ac_warn("upload: %s/%s %s", row.period, row.name, out.msg);
                const char *held[] = { row.id, out.msg };
                rc = db_exec_params(conn, "UPDATE billing.uploads SET "
                                    "last_error = $2 WHERE upload_id = $1 "
                                    "AND status = 'pending'", 2, held, err);
                continue;
            }
        }
        if (row_refused(&ps, &row, out.msg)) {
            ac_error("upload: %s/%s (upload %s, target %s) %s", row.period,
                     row.name, row.id, row.target, out.msg);
            const char *held[] = { row.id, out.msg };
            rc = db_exec_params(conn, "UPDATE billing.uploads SET "
                                "last_error = $2, last_attempt_at = now() "
                                "WHERE upload_id = $1 AND status = "
                                "'pending'", 2, held, err);
            continue;
        }
        int ok = deliver_row(&ps, &row, &out);
        rc = record(conn, &row, ok, &out, err);
        if (rc == AC_OK && ok)
            kill_point("after recording the delivery");
        if (ok) {
            char how[32] = "";
            if (out.http != 0)
                snprintf(how, sizeof how, ", HTTP %ld", out.http);
            (*delivered)++;
            if (out.found)
                ac_info("upload: %s/%s at %s: %s; marked delivered, not "
                        "sent again", row.period, row.name, row.target,
                        out.msg);
            else
                ac_info("upload: delivered %s/%s to %s (%lld bytes, sha256 "
                        "%.12s...%s)", row.period, row.name, row.target,
                        row.bytes, row.sha256, how);
        } else {
            ac_warn("upload: %s/%s not delivered: %s", row.period, row.name,
                    out.msg);
            if (out.stop) {
                stopped = 1;
                snprintf(stop_reason, sizeof stop_reason, "%s", out.msg);
            }
        }
    }
    if (skipped > 0)
        ac_warn("upload: %d more file(s) left for the next run (the last "
                "failure would repeat: %.200s)", skipped, stop_reason);

    if (ps.x.h != NULL)
        curl_easy_cleanup(ps.x.h);
    explicit_bzero(token, sizeof token);
    PQclear(rows);
    char unlock_err[AC_ERR_MAX];
    if (db_exec(conn, "SELECT pg_advisory_unlock(" LOCK_CLASS ", 0)",
                unlock_err) != AC_OK && rc == AC_OK)
        rc = ac_fail(err, AC_EUNAVAIL, "%s", unlock_err);
    if (rc == AC_OK)
        rc = count_pending(conn, NULL, &all, err);
    if (rc == AC_OK)
        rc = count_pending(conn, base, &here, err);
    if (rc == AC_OK && all > here)
        ac_warn("upload: %d file(s) are pending for another upload URL; "
                "send them here with `acbill upload --retarget %s`, or "
                "give them up with `acbill upload --cancel --all-for "
                "<that URL>` (`acbill upload --list` shows them)",
                all - here, base);
    *still_pending = all;
    return rc;
}

/* ------------------------------------------------------------ operator */

/* Who asked, for the ledger's note: "user@host". */
static void operator_name(char *out, size_t len)
{
    char host[128] = "?";
    const char *user = getenv("SUDO_USER");
    struct passwd *pw = getpwuid(geteuid());

    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    if (user == NULL || *user == '\0')
        user = pw != NULL ? pw->pw_name : "?";
    snprintf(out, len, "%s@%s", user, host);
}

ac_status upload_retarget(PGconn *conn, const upload_options *opt,
                          const char *from_url, int *moved, char *err)
{
    char base[URL_MAX], from[URL_MAX], target[URL_MAX], who[256];
    char note[URL_MAX + 512];
    PGresult *rows = NULL, *res = NULL;
    int nested;
    ac_status rc;

    *moved = 0;
    if (opt->base_url == NULL)
        return ac_fail(err, AC_EUSAGE, "retarget: no new upload URL");
    rc = upload_options_check(opt, err);
    if (rc == AC_OK)
        rc = normalize_base(opt->base_url, base, sizeof base, err);
    if (rc == AC_OK && from_url != NULL)
        rc = normalize_base(from_url, from, sizeof from, err);
    if (rc != AC_OK)
        return rc;
    operator_name(who, sizeof who);
    rc = txn_begin(conn, &nested, err);
    if (rc != AC_OK)
        return rc;
    const char *sel[] = { base, from_url != NULL ? from : NULL };
    rc = db_query(conn, "SELECT upload_id, to_char(period, 'YYYY-MM'),"
                  " file_name, sha256, base_url FROM billing.uploads"
                  " WHERE status = 'pending' AND base_url <> $1"
                  " AND ($2::text IS NULL OR base_url = $2)"
                  " ORDER BY upload_id FOR UPDATE", 2, sel, &rows, err);
    for (int i = 0; rc == AC_OK && i < PQntuples(rows); i++) {
        const char *id = PQgetvalue(rows, i, 0);
        const char *period = PQgetvalue(rows, i, 1);
        const char *name = PQgetvalue(rows, i, 2);
        const char *sha = PQgetvalue(rows, i, 3);
        rc = join_url(base, period, name, target, sizeof target, err);
        const char *t[] = { target };
        if (rc == AC_OK)
            rc = db_exec_params(conn, "SELECT pg_advisory_xact_lock("
                                LOCK_CLASS ", hashtext($1))", 1, t, err);
        /* What the new target already has: the same content (pending or
         * delivered) is not queued twice; newer content wins. */
        if (rc == AC_OK)
            rc = db_query(conn, "SELECT upload_id, sha256, status FROM"
                          " billing.uploads WHERE target_url = $1 AND status"
                          " IN ('pending', 'done') ORDER BY upload_id DESC"
                          " LIMIT 1", 1, t, &res, err);
        if (rc != AC_OK)
            break;
        char into[32] = "";
        if (PQntuples(res) == 1 && (strcmp(PQgetvalue(res, 0, 1), sha) == 0 ||
                                    atoll(PQgetvalue(res, 0, 0)) >
                                        atoll(id))) {
            snprintf(into, sizeof into, "%s", PQgetvalue(res, 0, 0));
            snprintf(note, sizeof note, "retargeted by %s from %s: %s is "
                     "already %s there as upload %s", who,
                     PQgetvalue(rows, i, 4), name,
                     strcmp(PQgetvalue(res, 0, 2), "done") == 0
                         ? "delivered" : "queued",
                     into);
        } else {
            if (PQntuples(res) == 1)    /* older content pending there */
                rc = db_exec_params(conn, "UPDATE billing.uploads SET status"
                                    " = 'superseded', last_error ="
                                    " 'superseded by newer content' WHERE"
                                    " target_url = $1 AND status ="
                                    " 'pending'", 1, t, err);
            PQclear(res);
            res = NULL;
            const char *ins[] = { id, base, target };
            if (rc == AC_OK)
                rc = db_query(conn, "INSERT INTO billing.uploads (period,"
                              " file_name, local_path, sha256, bytes,"
                              " base_url, target_url, invoice_no, run_id)"
                              " SELECT period, file_name, local_path, sha256,"
                              " bytes, $2, $3, invoice_no, run_id FROM"
                              " billing.uploads WHERE upload_id = $1"
                              " RETURNING upload_id", 3, ins, &res, err);
            if (rc != AC_OK)
                break;
            snprintf(into, sizeof into, "%s", PQgetvalue(res, 0, 0));
            snprintf(note, sizeof note, "retargeted by %s from %s to %s as "
                     "upload %s", who, PQgetvalue(rows, i, 4), base, into);
        }
        PQclear(res);
        res = NULL;
        const char *upd[] = { id, into, note };
        rc = db_exec_params(conn, "UPDATE billing.uploads SET status ="
                            " 'retargeted', replaced_by = $2, note = $3"
                            " WHERE upload_id = $1 AND status = 'pending'",
                            3, upd, err);
        if (rc == AC_OK) {
            (*moved)++;
            ac_info("upload: %s/%s: %s", period, name, note);
        }
    }
    PQclear(res);
    PQclear(rows);
    return txn_end(conn, nested, rc, err);
}

ac_status upload_cancel(PGconn *conn, const char *file, const char *base_url,
                        int *cancelled, char *err)
{
    char base[URL_MAX], who[256], note[512], period[8] = "";
    const char *name = file;
    PGresult *res;
    ac_status rc = AC_OK;

    *cancelled = 0;
    if (file == NULL && base_url == NULL)
        return ac_fail(err, AC_EUSAGE, "cancel: name a file or an URL");
    if (file != NULL) {
        const char *slash = strchr(file, '/');
        if (slash != NULL) {
            snprintf(period, sizeof period, "%.*s",
                     (int)(slash - file < 7 ? slash - file : 7), file);
            name = slash + 1;
            if (slash - file != 7 || !valid_period(period))
                return ac_fail(err, AC_EUSAGE, "cancel: '%s' is not "
                               "YYYY-MM/FILE or FILE", file);
        }
        if (!valid_file_name(name))
            return ac_fail(err, AC_EUSAGE, "cancel: '%s' is not a file "
                           "name acbill delivers", name);
    }
    if (base_url != NULL &&
        normalize_base(base_url, base, sizeof base, err) != AC_OK)
        return AC_EUSAGE;
    operator_name(who, sizeof who);
    snprintf(note, sizeof note, "cancelled by %s with acbill upload "
             "--cancel", who);
    const char *p[] = { period[0] ? period : NULL, file ? name : NULL,
                        base_url ? base : NULL, note };
    rc = db_query(conn, "UPDATE billing.uploads SET status = 'cancelled',"
                  " note = $4 WHERE status = 'pending'"
                  " AND ($1::text IS NULL OR to_char(period, 'YYYY-MM') = $1)"
                  " AND ($2::text IS NULL OR file_name = $2)"
                  " AND ($3::text IS NULL OR base_url = $3)"
                  " RETURNING to_char(period, 'YYYY-MM') || '/' || file_name,"
                  " base_url", 4, p, &res, err);
    if (rc != AC_OK)
        return rc;
    *cancelled = PQntuples(res);
    for (int i = 0; i < PQntuples(res); i++)
        ac_info("upload: %s for %s cancelled (%s)", PQgetvalue(res, i, 0),
                PQgetvalue(res, i, 1), note);
    PQclear(res);
    return AC_OK;
}

/* ------------------------------------------------------------ command */

static void print_pending(PGconn *conn, FILE *out)
{
    PGresult *res;
    if (db_query(conn, "SELECT to_char(period, 'YYYY-MM') || '/' || "
                 "file_name, attempts, coalesce(last_error, 'not tried "
                 "yet'), base_url FROM billing.uploads WHERE status = "
                 "'pending' ORDER BY upload_id", 0, NULL, &res, NULL) !=
        AC_OK)
        return;
    for (int i = 0; i < PQntuples(res); i++)
        fprintf(out, "  pending %s (to %s, %s attempt(s)): %s\n",
                PQgetvalue(res, i, 0), PQgetvalue(res, i, 3),
                PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
    PQclear(res);
}

static void upload_usage(FILE *out)
{
    fprintf(out,
        "usage: acbill upload --pending [--upload-url URL] [--db CONNINFO]\n"
        "       acbill upload --list [--db CONNINFO]\n"
        "       acbill upload --retarget NEW_URL [--from OLD_URL] [--pending]\n"
        "       acbill upload --cancel [YYYY-MM/]FILE... [--from URL]\n"
        "       acbill upload --cancel --all-for URL\n"
        "\n"
        "Delivers, lists, moves or gives up the files recorded in\n"
        "billing.uploads.  Rows are never deleted, and a delivered row is\n"
        "never changed.\n"
        "\n"
        "  --pending          deliver every pending file for the upload URL,\n"
        "                     oldest first, each period's SHA256SUMS last;\n"
        "                     a file the server already has (a run killed\n"
        "                     after sending it) is marked delivered, not\n"
        "                     sent again\n"
        "  --upload-url URL   where to deliver (default: $ACBILL_UPLOAD_URL)\n"
        "  --list             print the pending files and why they wait\n"
        "  --retarget NEW_URL send the files pending for another URL to\n"
        "                     NEW_URL instead: each old row becomes\n"
        "                     'retargeted' and names its new row; with\n"
        "                     --pending they are delivered at once\n"
        "  --from URL         only the rows pending for URL (--retarget,\n"
        "                     --cancel FILE)\n"
        "  --cancel FILE...   give up pending files, named YYYY-MM/FILE or\n"
        "                     FILE (every period); their rows become\n"
        "                     'cancelled' with who did it\n"
        "  --all-for URL      with --cancel: every file pending for URL\n"
        "  --db CONNINFO      the database (default: the libpq environment)\n"
        "  -q, --quiet        warnings and errors only\n"
        "  -v, --verbose      debug lines too\n"
        "  -h, --help         this text\n"
        "\n"
        "Environment: ACBILL_UPLOAD_URL, ACBILL_CA_FILE,\n"
        "ACBILL_UPLOAD_TOKEN_FILE, ACBILL_ALLOW_HTTP (default 0),\n"
        "ACBILL_UPLOAD_MODE (dav|put, default dav), ACBILL_UPLOAD_ATTEMPTS\n"
        "(default 4), ACBILL_UPLOAD_TIMEOUT (s, default 300),\n"
        "ACBILL_UPLOAD_CONNECT_TIMEOUT (s, default 15),\n"
        "ACBILL_UPLOAD_BACKOFF_MS (default 1000), ACBILL_UPLOAD_BACKOFF_MAX_MS\n"
        "(default 30000), ACBILL_UPLOAD_RETRY_AFTER_MAX (s, default 60).\n"
        "\n"
        "exit status: 0 done (nothing left pending), 64 usage, 69 files\n"
        "remain pending (the server is unavailable; see --list), 75 the\n"
        "database timed out, 78 configuration (bad URL, missing file://\n"
        "folder, token file, database login).  See acbill(1).\n");
}

int cmd_upload(int argc, char **argv)
{
    static const struct option opts[] = {
        { "pending", no_argument, NULL, 'p' },
        { "upload-url", required_argument, NULL, 'u' },
        { "db", required_argument, NULL, 'd' },
        { "list", no_argument, NULL, 'l' },
        { "retarget", required_argument, NULL, 'r' },
        { "from", required_argument, NULL, 'f' },
        { "cancel", no_argument, NULL, 'c' },
        { "all-for", required_argument, NULL, 'a' },
        { "quiet", no_argument, NULL, 'q' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *conninfo = NULL, *url = NULL, *retarget = NULL;
    const char *from = NULL, *all_for = NULL;
    char err[AC_ERR_MAX] = "";
    upload_options opt;
    PGconn *conn = NULL;
    PGresult *res;
    int c, pending = 0, list = 0, cancel = 0, delivered = 0, still = 0;
    ac_status rc;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hqv", opts, NULL)) != -1) {
        switch (c) {
        case 'q': ac_log_set_level(AC_LOG_WARN); break;
        case 'v': ac_log_set_level(AC_LOG_DEBUG); break;
        case 'p': pending = 1; break;
        case 'u': url = optarg; break;
        case 'd': conninfo = optarg; break;
        case 'l': list = 1; break;
        case 'r': retarget = optarg; break;
        case 'f': from = optarg; break;
        case 'c': cancel = 1; break;
        case 'a': all_for = optarg; break;
        case 'h':
            upload_usage(stdout);
            return AC_OK;
        default:
            return ac_usage_getopt("upload", c, argv);
        }
    }
    const char *why = NULL;
    if (!pending && !list && !retarget && !cancel)
        why = "say --pending, --list, --retarget or --cancel";
    else if (cancel && (retarget != NULL || pending))
        why = "--cancel goes alone";
    else if (cancel && (optind < argc) == (all_for != NULL))
        why = "--cancel wants FILE... or --all-for URL";
    else if (!cancel && optind < argc)
        why = "unexpected argument";
    else if (all_for != NULL && !cancel)
        why = "--all-for goes with --cancel";
    else if (retarget != NULL && url != NULL)
        why = "--retarget names the URL; leave out --upload-url";
    else if (from != NULL && retarget == NULL && !cancel)
        why = "--from goes with --retarget or --cancel";
    if (why != NULL)
        return ac_usage_error("upload", "%s", why);

    rc = upload_options_from_env(&opt, err);
    if (rc == AC_OK && (url != NULL || retarget != NULL)) {
        const char *u = retarget != NULL ? retarget : url;
        opt.base_url = *u ? u : NULL;
        rc = upload_options_check(&opt, err);
    }
    if (rc == AC_OK && pending)
        rc = upload_options_check_folder(&opt, err);
    if (rc == AC_OK && pending && opt.base_url == NULL)
        rc = ac_fail(err, AC_ECONFIG, "no upload URL: give --upload-url or "
                     "set ACBILL_UPLOAD_URL");
    if (rc == AC_OK)
        rc = db_connect(conninfo, &conn, err);
    if (rc == AC_OK) {
        rc = db_query(conn, "SELECT to_regclass('billing.uploads') IS NOT "
                      "NULL", 0, NULL, &res, err);
        if (rc == AC_OK) {
            if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
                rc = ac_fail(err, AC_ECONFIG, "the database has no "
                             "billing.uploads: run `acbill migrate` first");
            PQclear(res);
        }
    }
    if (rc == AC_OK && retarget != NULL) {
        int moved = 0;
        rc = upload_retarget(conn, &opt, from, &moved, err);
        if (rc == AC_OK)
            printf("upload: %d file(s) retargeted to %s\n", moved,
                   opt.base_url);
    }
    if (rc == AC_OK && cancel) {
        int n = 0, total = 0;
        for (int i = optind; rc == AC_OK && i < argc; i++) {
            rc = upload_cancel(conn, argv[i], from, &n, err);
            if (rc == AC_OK && n == 0)
                fprintf(stderr, "acbill upload: nothing pending matches "
                        "'%s'\n", argv[i]);
            total += n;
        }
        if (rc == AC_OK && all_for != NULL)
            rc = upload_cancel(conn, NULL, all_for, &total, err);
        if (rc == AC_OK)
            printf("upload: %d file(s) cancelled\n", total);
    }
    if (rc == AC_OK && pending) {
        rc = upload_deliver_pending(conn, &opt, &delivered, &still, err);
        if (rc == AC_OK)
            printf("upload: %d file(s) delivered, %d still pending\n",
                   delivered, still);
    }
    if (rc != AC_OK) {
        ac_error("upload: %s", err);
        PQfinish(conn);
        return rc;
    }
    if (list || (pending && still > 0))
        print_pending(conn, stdout);
    PQfinish(conn);
    return pending && still > 0 ? AC_EUNAVAIL : AC_OK;
}
