/* graph.h: Microsoft Graph over HTTPS for `acbill pull` (docs/billing-rules.md 6).
 *
 * Authentication is the OAuth 2.0 client credentials grant of the
 * Microsoft identity platform: POST <authority>/<Entra tenant>/oauth2/
 * v2.0/token with client_id, scope <Graph origin>/.default and either
 * client_secret or, with a certificate, a client_assertion (a JWT signed
 * RS256 with the certificate's key, x5t = base64url SHA-1 of the
 * certificate).  The token response is read with jansson; the token lives
 * in memory only, is wiped when done, and is never logged.
 *
 * Settings come from the environment, never the command line:
 *   ACBILL_GRAPH_CLIENT_ID      the application (client) id; required
 *   ACBILL_GRAPH_SECRET_FILE    a file whose first line is the client
 *                               secret, or
 *   ACBILL_GRAPH_CERT_FILE      a PEM file with the certificate and its
 *                               private key; either file must be a regular
 *                               file not accessible by group or others
 *   ACBILL_GRAPH_AUTHORITY      default https://login.microsoftonline.com
 *   ACBILL_GRAPH_URL            default https://graph.microsoft.com/v1.0
 *   ACBILL_CA_FILE              PEM bundle to verify servers with (as for
 *                               uploads); default the system CA store
 *   ACBILL_GRAPH_ATTEMPTS       requests per page, >= 1 (default 6)
 *   ACBILL_GRAPH_BACKOFF_MS     first retry delay without Retry-After,
 *                               doubled each retry (default 2000, capped
 *                               at 60000)
 *   ACBILL_GRAPH_RETRY_AFTER_MAX  cap on an honoured Retry-After, seconds
 *                               (default 300)
 * Both URLs must be https://: TLS is always verified (peer and host name).
 *
 * Requests: HTTP 429 and 503 (and 502, 504, timeouts and refused
 * connections) are retried after the response's Retry-After (seconds or
 * an HTTP date; capped), or with exponential backoff and jitter, at most
 * ACBILL_GRAPH_ATTEMPTS times; a 401 fetches a new token once.  Other
 * errors are not retried.  A page larger than 64 MiB is refused. */
#ifndef AC_GRAPH_H
#define AC_GRAPH_H

#include <stddef.h>
#include <stdio.h>

#include "status.h"

typedef struct {
    const char *client_id;
    const char *secret_file;
    const char *cert_file;
    const char *authority;
    const char *graph_url;
    const char *ca_file;
    int max_attempts;
    long backoff_ms, backoff_max_ms, retry_after_max_s;
    long timeout_s, connect_timeout_s;
} graph_options;

/* Defaults, then the variables above, checked: AC_ECONFIG with the reason
 * (no client id, no or both secret files, a file readable by others, a
 * URL that is not https://, an unreadable CA file, a bad number). */
ac_status graph_options_from_env(graph_options *opt, char *err);

typedef struct graph_client graph_client;

/* A client for the Entra tenant entra_tenant (a GUID or a domain name):
 * gets the first token.  AC_ECONFIG when the credentials are refused
 * (HTTP 400/401), AC_EUNAVAIL when the authority cannot be reached or TLS
 * verification fails, with the reason in err. */
ac_status graph_open(const graph_options *opt, const char *entra_tenant,
                     graph_client **out, char *err);

/* The Graph base URL without a trailing slash ("https://.../v1.0"). */
const char *graph_base(const graph_client *g);

/* GET url (absolute; it must be on the Graph base URL's scheme, host and
 * port, so the token never goes elsewhere: AC_EDATA otherwise) with the
 * bearer token, retrying as described above.  On success *body holds the
 * response body, NUL-terminated, malloc'd, *len its size.  AC_EUNAVAIL
 * when the retries are used up or the server cannot be reached,
 * AC_ECONFIG for 401/403 (permissions), AC_EDATA for other 4xx. */
ac_status graph_get(graph_client *g, const char *url, char **body,
                    size_t *len, char *err);

/* A reply of graph_request(): the body (malloc'd, NUL-terminated), its
 * status (200, 201 or 202), its Retry-After in seconds (0: none) and its
 * Location header ("" when none). */
typedef struct {
    char *body;
    size_t len;
    long http;
    long retry_after_s;
    char location[4096];
} graph_reply;

/* GET (json_body NULL) or POST json_body (Content-Type application/json)
 * to url, on the Graph origin only, with the token and the retries of
 * graph_get().  Success: 200, or for a POST 201 or 202 (an export's
 * "Accepted", with its Location to poll).  perms names the permissions
 * to suggest on 401/403 (e.g. "PartnerBilling.Read.All").  Errors as
 * graph_get(); out->body is NULL on failure. */
ac_status graph_request(graph_client *g, const char *url,
                        const char *json_body, const char *perms,
                        graph_reply *out, char *err);

/* GET url (any https:// host: a storage blob's link carrying its own SAS
 * token) into out, from its start (out is truncated first), WITHOUT the
 * bearer token or any Authorization header, TLS verified as for Graph,
 * retried on 429/503 and the like as graph_get().  The URL's query (the
 * SAS token) is never logged or put in err.  AC_ENOINPUT when the link is
 * refused (401/403: an expired SAS token), AC_EUNAVAIL when the retries
 * are used up, AC_EDATA for other 4xx, AC_ECANTCREAT when out cannot be
 * written. */
ac_status graph_download(graph_client *g, const char *url, FILE *out,
                         char *err);

/* Sleep ms milliseconds (through signals), for polling. */
void graph_sleep_ms(long ms);

/* Requests made so far (token requests included), for the log. */
long graph_requests(const graph_client *g);

/* Wipe the token and free g (NULL is fine). */
void graph_close(graph_client *g);

#endif
