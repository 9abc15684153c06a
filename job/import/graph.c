/* graph.c: see graph.h. */
#include "graph.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "env.h"
#include "log.h"
#include "deliver/upload.h"

#define URL_MAX 4096
#define SECRET_MAX (64 * 1024)
#define BODY_MAX (64u * 1024 * 1024)
#define SNIPPET_MAX 200

struct graph_client {
    const graph_options *opt;
    CURL *h;
    char tenant[256];
    char base[URL_MAX];         /* Graph URL, no trailing slash */
    char origin[URL_MAX];       /* scheme://host[:port] of base */
    char token_url[URL_MAX];
    char *token;                /* the access token (wiped on close) */
    time_t token_expires;
    char *secret;               /* client secret or PEM text (wiped) */
    long requests;
    char errbuf[CURL_ERROR_SIZE];
};

/* ------------------------------------------------------------ options */

/* The scheme://host[:port] of an https:// URL into origin (URL_MAX). */
static ac_status https_origin(const char *what, const char *url,
                              char *origin, char *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
    ac_status rc = AC_OK;

    if (u == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = ac_fail(err, AC_ECONFIG, "%s %s is not a URL", what, url);
    } else if (strcmp(scheme, "https") != 0) {
        rc = ac_fail(err, AC_ECONFIG, "%s %s: only https:// is allowed",
                     what, url);
    } else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        rc = ac_fail(err, AC_ECONFIG, "%s %s must not carry credentials",
                     what, url);
    } else if (origin != NULL) {
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
        snprintf(origin, URL_MAX, "https://%s:%s", host, port ? port : "443");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

ac_status graph_options_from_env(graph_options *opt, char *err)
{
    long attempts = 6;
    ac_status rc;

    memset(opt, 0, sizeof *opt);
    opt->client_id = env_str("ACBILL_GRAPH_CLIENT_ID");
    opt->secret_file = env_str("ACBILL_GRAPH_SECRET_FILE");
    opt->cert_file = env_str("ACBILL_GRAPH_CERT_FILE");
    opt->authority = env_str("ACBILL_GRAPH_AUTHORITY");
    opt->graph_url = env_str("ACBILL_GRAPH_URL");
    opt->ca_file = env_str("ACBILL_CA_FILE");
    if (opt->authority == NULL)
        opt->authority = "https://login.microsoftonline.com";
    if (opt->graph_url == NULL)
        opt->graph_url = "https://graph.microsoft.com/v1.0";
    opt->backoff_ms = 2000;
    opt->backoff_max_ms = 60000;
    opt->retry_after_max_s = 300;
    opt->timeout_s = 300;
    opt->connect_timeout_s = 15;

    rc = env_long("ACBILL_GRAPH_ATTEMPTS", 1, 100, &attempts, err);
    if (rc == AC_OK)
        rc = env_long("ACBILL_GRAPH_BACKOFF_MS", 0, 3600000,
                      &opt->backoff_ms, err);
    if (rc == AC_OK)
        rc = env_long("ACBILL_GRAPH_RETRY_AFTER_MAX", 0, 3600,
                      &opt->retry_after_max_s, err);
    if (rc != AC_OK)
        return rc;
    opt->max_attempts = (int)attempts;
    if (opt->client_id == NULL)
        return ac_fail(err, AC_ECONFIG, "ACBILL_GRAPH_CLIENT_ID is not set "
                       "(the application id registered in Entra)");
    for (const char *p = opt->client_id; *p; p++)
        if (*p <= ' ' || *p > '~')
            return ac_fail(err, AC_ECONFIG, "ACBILL_GRAPH_CLIENT_ID holds "
                           "a character that is not printable ASCII");
    if ((opt->secret_file == NULL) == (opt->cert_file == NULL))
        return ac_fail(err, AC_ECONFIG, "set one of ACBILL_GRAPH_SECRET_FILE"
                       " (client secret) or ACBILL_GRAPH_CERT_FILE"
                       " (certificate and key, PEM)");
    rc = https_origin("ACBILL_GRAPH_AUTHORITY", opt->authority, NULL, err);
    if (rc == AC_OK)
        rc = https_origin("ACBILL_GRAPH_URL", opt->graph_url, NULL, err);
    if (rc == AC_OK && opt->ca_file != NULL && access(opt->ca_file, R_OK))
        rc = ac_fail(err, AC_ECONFIG, "cannot read the CA file %s: %s",
                     opt->ca_file, strerror(errno));
    return rc;
}

/* Read an owner-only file (a secret) whole, into a malloc'd string. */
static ac_status read_secret(const char *what, const char *path, char **out,
                             char *err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *out = NULL;
    if (fd < 0)
        return ac_fail(err, AC_ECONFIG, "cannot read %s %s: %s", what, path,
                       strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ac_fail(err, AC_ECONFIG, "%s %s is not a regular file", what,
                       path);
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        return ac_fail(err, AC_ECONFIG, "%s %s is accessible by group or "
                       "others (mode %04o): refused, chmod 600 it", what,
                       path, (unsigned)(st.st_mode & 07777));
    }
    char *buf = malloc(SECRET_MAX + 1);
    size_t len = 0;
    ssize_t n;
    if (buf == NULL) {
        close(fd);
        return ac_fail(err, AC_EOSERR, "out of memory");
    }
    while (len < SECRET_MAX && (n = read(fd, buf + len, SECRET_MAX - len))) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            explicit_bzero(buf, SECRET_MAX + 1);
            free(buf);
            return ac_fail(err, AC_ECONFIG, "cannot read %s %s: %s", what,
                           path, strerror(errno));
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    *out = buf;
    return AC_OK;
}

/* ------------------------------------------------------------ HTTP */

typedef struct {
    char *b;
    size_t n, cap;
    int too_big;
} buffer;

static size_t collect(char *data, size_t size, size_t count, void *arg)
{
    buffer *x = arg;
    size_t len = size * count;
    if (x->too_big || x->n + len > BODY_MAX) {
        x->too_big = 1;
        return 0;                       /* curl stops with a write error */
    }
    if (x->n + len + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 65536;
        while (cap < x->n + len + 1)
            cap *= 2;
        char *b = realloc(x->b, cap);
        if (b == NULL) {
            x->too_big = 1;
            return 0;
        }
        x->b = b;
        x->cap = cap;
    }
    memcpy(x->b + x->n, data, len);
    x->n += len;
    x->b[x->n] = '\0';
    return len;
}

typedef struct {
    CURLcode cc;
    long http;
    curl_off_t retry_after;
    buffer body;
    char detail[CURL_ERROR_SIZE + SNIPPET_MAX];
    char location[URL_MAX];     /* the Location header, "" when none */
} response;

/* Keeps the Location header (an export's operation to poll). */
static size_t on_header(char *data, size_t size, size_t count, void *arg)
{
    response *r = arg;
    size_t len = size * count;
    if (len > 9 && strncasecmp(data, "location:", 9) == 0) {
        size_t i = 9, e = len;
        while (i < e && (data[i] == ' ' || data[i] == '\t'))
            i++;
        while (e > i && (data[e - 1] == '\r' || data[e - 1] == '\n' ||
                         data[e - 1] == ' '))
            e--;
        if (e - i < sizeof r->location) {
            memcpy(r->location, data + i, e - i);
            r->location[e - i] = '\0';
        }
    }
    return len;
}

static void response_free(response *r)
{
    if (r->body.b != NULL)
        explicit_bzero(r->body.b, r->body.cap);
    free(r->body.b);
    memset(r, 0, sizeof *r);
}

/* One request: GET (post NULL) or POST of a body of type ctype (NULL: a
 * form). */
static void perform(graph_client *g, const char *url, const char *post,
                    const char *ctype, int with_token, response *r)
{
    const graph_options *opt = g->opt;
    struct curl_slist *headers = NULL;
    CURL *h = g->h;

    memset(r, 0, sizeof *r);
    g->errbuf[0] = '\0';
    g->requests++;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, g->errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "acbill/" ACBILL_VERSION);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (opt->ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, opt->ca_file);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, opt->connect_timeout_s);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, opt->timeout_s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    headers = curl_slist_append(headers, "Accept: application/json");
    if (with_token && g->token != NULL) {
        size_t n = strlen(g->token) + 32;
        char *line = malloc(n);
        if (line != NULL) {
            snprintf(line, n, "Authorization: Bearer %s", g->token);
            headers = curl_slist_append(headers, line);
            explicit_bzero(line, n);
            free(line);
        }
    }
    if (post != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
        headers = curl_slist_append(headers, ctype != NULL ? ctype :
                                    "Content-Type: "
                                    "application/x-www-form-urlencoded");
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

    r->cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->http);
    curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &r->retry_after);
    for (struct curl_slist *p = headers; p != NULL; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(headers);
    if (post != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);

    if (r->body.too_big) {
        snprintf(r->detail, sizeof r->detail, "the response is larger than "
                 "%u MiB", BODY_MAX >> 20);
    } else if (r->cc != CURLE_OK) {
        snprintf(r->detail, sizeof r->detail, "%s", g->errbuf[0]
                 ? g->errbuf : curl_easy_strerror(r->cc));
    } else {
        /* The start of the body as one printable line (Graph's error
         * object says what was wrong); never a token response's. */
        char snip[SNIPPET_MAX];
        size_t j = 0;
        for (size_t i = 0; r->body.b && i < r->body.n && j < sizeof snip - 1;
             i++) {
            unsigned char c = (unsigned char)r->body.b[i];
            snip[j++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
        }
        snip[j] = '\0';
        snprintf(r->detail, sizeof r->detail, "HTTP %ld%s%s", r->http,
                 j && (r->http < 200 || r->http > 299) ? ": " : "",
                 r->http < 200 || r->http > 299 ? snip : "");
    }
}

static int tls_failure(CURLcode cc)
{
    return cc == CURLE_PEER_FAILED_VERIFICATION ||
           cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_SSL_CACERT_BADFILE ||
           cc == CURLE_SSL_CERTPROBLEM;
}

static int transient(const response *r)
{
    if (r->body.too_big)
        return 0;
    switch (r->cc) {
    case CURLE_OK:
        return r->http == 429 || r->http == 503 || r->http == 502 ||
               r->http == 504;
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return 1;
    default:
        return 0;
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The wait before retry number `attempt` (1, 2, ...) after r. */
static long retry_delay(const graph_options *opt, const response *r,
                        int attempt)
{
    if (r->retry_after > 0) {
        curl_off_t s = r->retry_after < opt->retry_after_max_s
                           ? r->retry_after : opt->retry_after_max_s;
        return (long)s * 1000;
    }
    long delay = opt->backoff_ms;
    for (int i = 1; i < attempt && delay < opt->backoff_max_ms; i++)
        delay *= 2;
    if (delay > opt->backoff_max_ms)
        delay = opt->backoff_max_ms;
    unsigned int rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        rnd = (unsigned int)clock();
    return delay / 2 + (long)(rnd % (unsigned long)(delay / 2 + 1));
}

/* ------------------------------------------------------------ tokens */

static char *b64url(const unsigned char *in, size_t n)
{
    size_t cap = 4 * ((n + 2) / 3) + 1;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (int i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return out;
}

static char *b64url_json(json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    if (text == NULL)
        return NULL;
    char *out = b64url((const unsigned char *)text, strlen(text));
    free(text);
    return out;
}

/* A client assertion (RFC 7523 JWT, RS256) from the PEM certificate and
 * key in g->secret, for the token endpoint. */
static ac_status client_assertion(graph_client *g, char **out, char *err)
{
    BIO *bio = BIO_new_mem_buf(g->secret, -1);
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *der = NULL, thumb[SHA_DIGEST_LENGTH], *sig = NULL;
    char *head = NULL, *claims = NULL, *x5t = NULL, *sig64 = NULL;
    char *input = NULL;
    ac_status rc = AC_OK;
    json_t *jh = NULL, *jc = NULL;

    *out = NULL;
    if (bio == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    bio = BIO_new_mem_buf(g->secret, -1);
    if (bio != NULL)
        key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (cert == NULL || key == NULL) {
        rc = ac_fail(err, AC_ECONFIG, "ACBILL_GRAPH_CERT_FILE %s must hold "
                     "the certificate and its unencrypted private key (PEM)",
                     g->opt->cert_file);
        goto out;
    }
    int dlen = i2d_X509(cert, &der);
    if (dlen <= 0) {
        rc = ac_fail(err, AC_ECONFIG, "cannot encode the certificate");
        goto out;
    }
    SHA1(der, (size_t)dlen, thumb);
    x5t = b64url(thumb, sizeof thumb);

    unsigned char id[16];
    char jti[40];
    if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id)
        memset(id, 0x5a, sizeof id);
    for (int i = 0; i < 16; i++)
        snprintf(jti + 2 * i, 3, "%02x", id[i]);
    time_t now = time(NULL);
    jh = json_pack("{s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT",
                   "x5t", x5t ? x5t : "");
    jc = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud",
                   g->token_url, "iss", g->opt->client_id, "sub",
                   g->opt->client_id, "jti", jti, "nbf", (json_int_t)now,
                   "iat", (json_int_t)now, "exp", (json_int_t)(now + 600));
    head = jh ? b64url_json(jh) : NULL;
    claims = jc ? b64url_json(jc) : NULL;
    if (head == NULL || claims == NULL || x5t == NULL) {
        rc = ac_fail(err, AC_EOSERR, "out of memory");
        goto out;
    }
    size_t ilen = strlen(head) + strlen(claims) + 2;
    input = malloc(ilen);
    md = EVP_MD_CTX_new();
    size_t slen = 0;
    if (input == NULL || md == NULL) {
        rc = ac_fail(err, AC_EOSERR, "out of memory");
        goto out;
    }
    snprintf(input, ilen, "%s.%s", head, claims);
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &slen, (unsigned char *)input,
                       strlen(input)) != 1 ||
        (sig = malloc(slen)) == NULL ||
        EVP_DigestSign(md, sig, &slen, (unsigned char *)input,
                       strlen(input)) != 1) {
        rc = ac_fail(err, AC_ECONFIG, "cannot sign the client assertion "
                     "with the key in %s (an RSA key is needed)",
                     g->opt->cert_file);
        goto out;
    }
    sig64 = b64url(sig, slen);
    size_t olen = strlen(input) + (sig64 ? strlen(sig64) : 0) + 2;
    char *jwt = sig64 ? malloc(olen) : NULL;
    if (jwt == NULL) {
        rc = ac_fail(err, AC_EOSERR, "out of memory");
        goto out;
    }
    snprintf(jwt, olen, "%s.%s", input, sig64);
    *out = jwt;
out:
    json_decref(jh);
    json_decref(jc);
    X509_free(cert);
    EVP_PKEY_free(key);
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    free(sig);
    free(head);
    free(claims);
    free(x5t);
    free(sig64);
    free(input);
    return rc;
}

/* Append "&name=<escaped value>" to a growing form body. */
static int form_add(char **form, size_t *len, const char *name,
                    const char *value)
{
    char *esc = curl_easy_escape(NULL, value, 0);
    if (esc == NULL)
        return -1;
    size_t add = strlen(name) + strlen(esc) + 2;
    char *f = realloc(*form, *len + add + 1);
    if (f == NULL) {
        explicit_bzero(esc, strlen(esc));
        curl_free(esc);
        return -1;
    }
    *form = f;
    *len += (size_t)snprintf(f + *len, add + 1, "%s%s=%s", *len ? "&" : "",
                             name, esc);
    explicit_bzero(esc, strlen(esc));
    curl_free(esc);
    return 0;
}

/* What a failed token request says, for messages (AC_ERR_MAX bytes):
 * the transport error or HTTP status and only the OAuth `error` code of
 * the answer (RFC 6749 5.2: a short ASCII code), never the body or its
 * error_description: a server that quotes the request would put the
 * client secret in the log. */
static void token_failure(const response *r, char *out)
{
    if (r->cc != CURLE_OK || r->body.too_big) {
        snprintf(out, AC_ERR_MAX, "%s", r->detail);
        return;
    }
    json_error_t je;
    json_t *doc = r->body.b != NULL ? json_loadb(r->body.b, r->body.n, 0,
                                                 &je) : NULL;
    const char *code = json_string_value(json_object_get(doc, "error"));
    int ok = code != NULL && *code != '\0' && strlen(code) <= 64;
    for (const char *p = code; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
             (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.';
    snprintf(out, AC_ERR_MAX, "HTTP %ld%s%s", r->http,
             ok ? ", OAuth error " : "", ok ? code : "");
    json_decref(doc);
}

/* Get a new access token. */
static ac_status fetch_token(graph_client *g, char *err)
{
    const graph_options *opt = g->opt;
    char scope[URL_MAX + 16], *form = NULL, *assertion = NULL;
    size_t flen = 0;
    response r;
    ac_status rc = AC_OK;

    snprintf(scope, sizeof scope, "%s/.default", g->origin);
    /* The scope names the resource without the default :443. */
    size_t sl = strlen(g->origin);
    if (sl > 4 && strcmp(g->origin + sl - 4, ":443") == 0)
        snprintf(scope, sizeof scope, "%.*s/.default", (int)(sl - 4),
                 g->origin);
    if (opt->cert_file != NULL) {
        rc = client_assertion(g, &assertion, err);
        if (rc != AC_OK)
            return rc;
    }
    int bad = form_add(&form, &flen, "grant_type", "client_credentials") ||
              form_add(&form, &flen, "client_id", opt->client_id) ||
              form_add(&form, &flen, "scope", scope);
    if (!bad && assertion != NULL)
        bad = form_add(&form, &flen, "client_assertion_type",
                       "urn:ietf:params:oauth:client-assertion-type:"
                       "jwt-bearer") ||
              form_add(&form, &flen, "client_assertion", assertion);
    else if (!bad)
        bad = form_add(&form, &flen, "client_secret", g->secret);
    if (assertion != NULL) {
        explicit_bzero(assertion, strlen(assertion));
        free(assertion);
    }
    if (bad) {
        if (form != NULL)
            explicit_bzero(form, flen);
        free(form);
        return ac_fail(err, AC_EOSERR, "out of memory");
    }

    for (int attempt = 1;; attempt++) {
        char why[AC_ERR_MAX];
        perform(g, g->token_url, form, NULL, 0, &r);
        if (r.cc == CURLE_OK && r.http == 200)
            break;
        token_failure(&r, why);
        if (!transient(&r) || attempt >= opt->max_attempts) {
            if (tls_failure(r.cc))
                rc = ac_fail(err, AC_EUNAVAIL, "token request to %s: TLS "
                             "verification failed: %s (trusting %s)",
                             g->token_url, r.detail, opt->ca_file
                             ? opt->ca_file : "the system CA store");
            else
                rc = ac_fail(err, r.cc == CURLE_OK && r.http >= 400 &&
                             r.http < 500 ? AC_ECONFIG : AC_EUNAVAIL,
                             "token request to %s: %s", g->token_url,
                             why);
            break;
        }
        long delay = retry_delay(opt, &r, attempt);
        ac_warn("pull: token request: %s; retry %d of %d in %.1f s",
                why, attempt, opt->max_attempts - 1,
                (double)delay / 1000.0);
        response_free(&r);
        sleep_ms(delay);
    }
    explicit_bzero(form, flen);
    free(form);
    if (rc != AC_OK) {
        response_free(&r);
        return rc;
    }
    json_error_t je;
    json_t *doc = json_loadb(r.body.b ? r.body.b : "", r.body.n, 0, &je);
    response_free(&r);
    json_t *tok = json_object_get(doc, "access_token");
    json_t *exp = json_object_get(doc, "expires_in");
    if (!json_is_string(tok) || json_string_length(tok) == 0) {
        json_decref(doc);
        return ac_fail(err, AC_EUNAVAIL, "token request to %s: the answer "
                       "has no access_token", g->token_url);
    }
    const char *t = json_string_value(tok);
    for (const char *p = t; *p; p++) {
        if (*p <= ' ' || *p > '~') {
            json_decref(doc);
            return ac_fail(err, AC_EUNAVAIL, "token request to %s: the "
                           "access token is not printable ASCII",
                           g->token_url);
        }
    }
    long long secs = 3600;
    if (json_is_integer(exp))
        secs = json_integer_value(exp);
    else if (json_is_string(exp))
        secs = atoll(json_string_value(exp));
    if (g->token != NULL) {
        explicit_bzero(g->token, strlen(g->token));
        free(g->token);
    }
    g->token = strdup(t);
    ac_log_secret(t);
    /* json_decref frees the text; wipe it first. */
    explicit_bzero((char *)t, strlen(t));
    json_decref(doc);
    if (g->token == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    g->token_expires = time(NULL) + (secs > 120 ? secs - 60 : secs / 2);
    ac_debug("pull: got an access token from %s", g->token_url);
    return AC_OK;
}

/* ------------------------------------------------------------ client */

ac_status graph_open(const graph_options *opt, const char *entra_tenant,
                     graph_client **out, char *err)
{
    ac_status rc;

    *out = NULL;
    for (const char *p = entra_tenant; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            return ac_fail(err, AC_ECONFIG, "the Entra tenant '%s' is "
                           "neither a GUID nor a domain name", entra_tenant);
    if (*entra_tenant == '\0')
        return ac_fail(err, AC_ECONFIG, "no Entra tenant id");
    rc = upload_global_init(err);
    if (rc != AC_OK)
        return rc;
    graph_client *g = calloc(1, sizeof *g);
    if (g == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    g->opt = opt;
    snprintf(g->tenant, sizeof g->tenant, "%s", entra_tenant);
    snprintf(g->base, sizeof g->base, "%s", opt->graph_url);
    size_t n = strlen(g->base);
    while (n > 0 && g->base[n - 1] == '/')
        g->base[--n] = '\0';
    char auth[URL_MAX];
    snprintf(auth, sizeof auth, "%s", opt->authority);
    n = strlen(auth);
    while (n > 0 && auth[n - 1] == '/')
        auth[--n] = '\0';
    snprintf(g->token_url, sizeof g->token_url, "%s/%s/oauth2/v2.0/token",
             auth, entra_tenant);
    rc = https_origin("ACBILL_GRAPH_URL", g->base, g->origin, err);
    if (rc == AC_OK)
        rc = read_secret(opt->cert_file ? "ACBILL_GRAPH_CERT_FILE"
                         : "ACBILL_GRAPH_SECRET_FILE",
                         opt->cert_file ? opt->cert_file : opt->secret_file,
                         &g->secret, err);
    if (rc == AC_OK && opt->cert_file == NULL) {
        g->secret[strcspn(g->secret, "\r\n")] = '\0';
        if (g->secret[0] == '\0')
            rc = ac_fail(err, AC_ECONFIG, "ACBILL_GRAPH_SECRET_FILE %s is "
                         "empty", opt->secret_file);
        else
            ac_log_secret(g->secret);   /* never in a message (log.h) */
    }
    if (rc == AC_OK) {
        g->h = curl_easy_init();
        if (g->h == NULL)
            rc = ac_fail(err, AC_EOSERR, "cannot start libcurl");
    }
    if (rc == AC_OK)
        rc = fetch_token(g, err);
    if (rc != AC_OK) {
        graph_close(g);
        return rc;
    }
    *out = g;
    return AC_OK;
}

const char *graph_base(const graph_client *g)
{
    return g->base;
}

long graph_requests(const graph_client *g)
{
    return g->requests;
}

/* GET (post NULL) or POST of JSON post to url on the Graph origin, with
 * the token and the retries of graph.h.  Success: HTTP 200, or 201/202
 * for a POST. */
static ac_status call(graph_client *g, const char *url, const char *post,
                      const char *perms, graph_reply *out, char *err)
{
    const graph_options *opt = g->opt;
    const char *method = post ? "POST" : "GET";
    char origin[URL_MAX], msg[AC_ERR_MAX];
    response r;
    int refreshed = 0;

    memset(out, 0, sizeof *out);
    if (https_origin("a Graph link", url, origin, msg) != AC_OK ||
        strcmp(origin, g->origin) != 0)
        return ac_fail(err, AC_EDATA, "refused to follow %.300s: not on the "
                       "Graph URL %s", url, g->base);
    for (int attempt = 1;; attempt++) {
        if (time(NULL) >= g->token_expires) {
            ac_status rc = fetch_token(g, err);
            if (rc != AC_OK)
                return rc;
        }
        perform(g, url, post, post ? "Content-Type: application/json" : NULL,
                1, &r);
        if (r.cc == CURLE_OK && (r.http == 200 ||
                                 (post && (r.http == 201 || r.http == 202)))) {
            out->body = r.body.b ? r.body.b : strdup("");
            out->len = r.body.n;
            out->http = r.http;
            out->retry_after_s = (long)r.retry_after;
            snprintf(out->location, sizeof out->location, "%s", r.location);
            return out->body ? AC_OK : ac_fail(err, AC_EOSERR,
                                               "out of memory");
        }
        if (r.cc == CURLE_OK && r.http == 401 && !refreshed) {
            refreshed = 1;
            response_free(&r);
            ac_status rc = fetch_token(g, err);
            if (rc != AC_OK)
                return rc;
            continue;
        }
        if (!transient(&r) || attempt >= opt->max_attempts) {
            ac_status rc;
            if (tls_failure(r.cc))
                rc = ac_fail(err, AC_EUNAVAIL, "%s %.300s: TLS verification"
                             " failed: %s (trusting %s)", method, url,
                             r.detail, opt->ca_file ? opt->ca_file
                                                    : "the system CA store");
            else if (r.cc == CURLE_OK && (r.http == 401 || r.http == 403))
                rc = ac_fail(err, AC_ECONFIG, "%s %.300s: %s (does the "
                             "application have %s?)", method, url, r.detail,
                             perms);
            else if (r.cc == CURLE_OK && r.http >= 400 && r.http < 500 &&
                     r.http != 429)
                rc = ac_fail(err, AC_EDATA, "%s %.300s: %s", method, url,
                             r.detail);
            else
                rc = ac_fail(err, AC_EUNAVAIL, "%s %.300s: %s%s", method,
                             url, r.detail, transient(&r)
                                 ? " (retries used up)" : "");
            response_free(&r);
            return rc;
        }
        long delay = retry_delay(opt, &r, attempt);
        ac_warn("pull: %s %.200s: %s; retry %d of %d in %.1f s", method, url,
                r.detail, attempt, opt->max_attempts - 1,
                (double)delay / 1000.0);
        response_free(&r);
        sleep_ms(delay);
    }
}

ac_status graph_get(graph_client *g, const char *url, char **body,
                    size_t *len, char *err)
{
    graph_reply r;
    ac_status rc = call(g, url, NULL, "CallRecords.Read.All and "
                        "Directory.Read.All", &r, err);
    *body = r.body;
    *len = r.len;
    return rc;
}

ac_status graph_request(graph_client *g, const char *url,
                        const char *json_body, const char *perms,
                        graph_reply *out, char *err)
{
    return call(g, url, json_body, perms, out, err);
}

static size_t to_file(char *data, size_t size, size_t count, void *arg)
{
    return fwrite(data, size, count, (FILE *)arg) * size;
}

ac_status graph_download(graph_client *g, const char *url, FILE *out,
                         char *err)
{
    const graph_options *opt = g->opt;
    char origin[URL_MAX], msg[AC_ERR_MAX], shown[128];
    /* the URL carries a SAS token: log the part before '?' only */
    snprintf(shown, sizeof shown, "%.*s", (int)strcspn(url, "?"), url);
    if (https_origin("a blob link", url, origin, msg) != AC_OK)
        return ac_fail(err, AC_EDATA, "refused to download %s: not an "
                       "https:// URL", shown);
    for (int attempt = 1;; attempt++) {
        CURL *h = g->h;
        response r;
        memset(&r, 0, sizeof r);
        g->errbuf[0] = '\0';
        g->requests++;
        if (fflush(out) != 0 || ftruncate(fileno(out), 0) != 0 ||
            fseek(out, 0, SEEK_SET) != 0)
            return ac_fail(err, AC_ECANTCREAT, "cannot write the download "
                           "of %s: %s", shown, strerror(errno));
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, g->errbuf);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "acbill/" ACBILL_VERSION);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        if (opt->ca_file != NULL)
            curl_easy_setopt(h, CURLOPT_CAINFO, opt->ca_file);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, opt->connect_timeout_s);
        curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_file);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
        /* no Authorization header: the blob host is not Graph, the SAS
         * token in the URL is the credential */
        r.cc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.http);
        curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &r.retry_after);
        if (r.cc == CURLE_OK && r.http == 200) {
            if (fflush(out) != 0)
                return ac_fail(err, AC_ECANTCREAT, "cannot write the "
                               "download of %s: %s", shown, strerror(errno));
            return AC_OK;
        }
        if (r.cc == CURLE_HTTP_RETURNED_ERROR)
            r.cc = CURLE_OK;            /* judged by the status below */
        snprintf(r.detail, sizeof r.detail, "%s", r.cc != CURLE_OK
                 ? (g->errbuf[0] ? g->errbuf : curl_easy_strerror(r.cc))
                 : "");
        if (r.cc == CURLE_OK)
            snprintf(r.detail, sizeof r.detail, "HTTP %ld", r.http);
        if (r.cc == CURLE_OK && (r.http == 403 || r.http == 401))
            return ac_fail(err, AC_ENOINPUT, "GET %s: %s: the blob's SAS "
                           "link was refused (expired?)", shown, r.detail);
        if (!transient(&r) || attempt >= opt->max_attempts)
            return ac_fail(err, tls_failure(r.cc) || transient(&r) ||
                           r.cc != CURLE_OK ? AC_EUNAVAIL : AC_EDATA,
                           "GET %s: %s%s", shown, r.detail,
                           transient(&r) ? " (retries used up)" : "");
        long delay = retry_delay(opt, &r, attempt);
        ac_warn("pull: GET %s: %s; retry %d of %d in %.1f s", shown,
                r.detail, attempt, opt->max_attempts - 1,
                (double)delay / 1000.0);
        sleep_ms(delay);
    }
}

void graph_sleep_ms(long ms)
{
    sleep_ms(ms);
}

void graph_close(graph_client *g)
{
    if (g == NULL)
        return;
    if (g->token != NULL) {
        explicit_bzero(g->token, strlen(g->token));
        free(g->token);
    }
    if (g->secret != NULL) {
        explicit_bzero(g->secret, SECRET_MAX + 1);
        free(g->secret);
    }
    if (g->h != NULL)
        curl_easy_cleanup(g->h);
    free(g);
}
