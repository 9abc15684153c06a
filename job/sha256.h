/* sha256.h: SHA-256 (FIPS 180-4), for workbook checksums, SHA256SUMS and
 * invoice fingerprints.  OpenSSL's libcrypto does the hashing (with the
 * CPU's SHA extensions where it has them); no allocation. */
#ifndef AC_SHA256_H
#define AC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Room for libcrypto's SHA256_CTX (112 bytes in OpenSSL 3; sha256.c
 * checks that it fits), so that callers need no OpenSSL header. */
typedef struct {
    _Alignas(16) unsigned char state[128];
} sha256_ctx;

/* Start a new hash. */
void sha256_init(sha256_ctx *ctx);

/* Add len bytes of data. */
void sha256_update(sha256_ctx *ctx, const void *data, size_t len);

/* Finish and write the digest as 64 lowercase hex digits and a NUL into
 * hex (65 bytes).  ctx must be initialised again before reuse. */
void sha256_final_hex(sha256_ctx *ctx, char hex[65]);

/* Hash the file at path into hex (65 bytes).  AC_EIO when it cannot be
 * read, with the reason in err. */
ac_status sha256_file(const char *path, char hex[65], char *err);

#endif
