/* sha256.c: see sha256.h. */
/* SHA256_Init() and friends are deprecated in OpenSSL 3 in favour of EVP,
 * which allocates a context per hash.  They are kept for compatibility,
 * run the same assembly, and need no allocation: ask for the 1.1.1 API. */
#define OPENSSL_API_COMPAT 10101
#include "sha256.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((sha256_ctx *)0)->state),
               "sha256_ctx too small for SHA256_CTX");

static SHA256_CTX *ossl(sha256_ctx *ctx)
{
    return (SHA256_CTX *)(void *)ctx->state;
}

void sha256_init(sha256_ctx *ctx)
{
    SHA256_Init(ossl(ctx));
}

void sha256_update(sha256_ctx *ctx, const void *data, size_t len)
{
    SHA256_Update(ossl(ctx), data, len);
}

void sha256_final_hex(sha256_ctx *ctx, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];

    SHA256_Final(md, ossl(ctx));
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

ac_status sha256_file(const char *path, char hex[65], char *err)
{
    unsigned char buf[65536];
    sha256_ctx ctx;
    size_t n;
    FILE *f = fopen(path, "rb");

    if (f == NULL)
        return ac_fail(err, AC_EIO, "cannot read %s: %s", path,
                       strerror(errno));
    sha256_init(&ctx);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sha256_update(&ctx, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return ac_fail(err, AC_EIO, "error reading %s", path);
    sha256_final_hex(&ctx, hex);
    return AC_OK;
}
