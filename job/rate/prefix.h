/* prefix.h: longest-prefix matching of E.164 digit strings.
 *
 * A digit trie built once per run (destinations, rates) and searched per
 * call without allocation.  Each stored prefix carries an int32 value
 * (an index into the caller's table). */
#ifndef AC_PREFIX_H
#define AC_PREFIX_H

#include <stdint.h>

#include "status.h"

#define PREFIX_MAX_DIGITS 15

typedef struct prefix_trie prefix_trie;

/* A new empty trie, or NULL when out of memory. */
prefix_trie *prefix_new(void);

/* Free the trie (NULL is fine). */
void prefix_free(prefix_trie *t);

/* Store value (>= 0) under digits (1 to 15 of '0'-'9').  AC_EDATA for a
 * malformed prefix or one already stored, AC_EOSERR when out of memory;
 * the trie is unchanged on failure. */
ac_status prefix_add(prefix_trie *t, const char *digits, int32_t value,
                     char *err);

/* The value of the longest stored prefix of digits (stopping at the first
 * non-digit), or -1 when none matches.  *len receives the matched prefix
 * length (0 when none); len may be NULL. */
int32_t prefix_longest(const prefix_trie *t, const char *digits, int *len);

/* 1 when a stored prefix is longer than digits (up to the first
 * non-digit) and begins with them, 0 otherwise: whether the digits that
 * follow could change the longest match. */
int prefix_extends(const prefix_trie *t, const char *digits);

/* Every stored prefix of digits, longest first: writes up to max values
 * into out (and their lengths into lens, may be NULL) and returns how
 * many. */
int prefix_all(const prefix_trie *t, const char *digits, int32_t *out,
               int *lens, int max);

#endif
