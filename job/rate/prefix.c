/* prefix.c: see prefix.h.  Nodes live in one growing array; children are
 * indexes, 0 meaning "none" (node 0 is the root, never a child). */
#include "prefix.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t child[10];
    int32_t value;          /* -1: no prefix ends here */
} node;

struct prefix_trie {
    node *nodes;
    int32_t count, cap;
};

static int32_t new_node(prefix_trie *t)
{
    if (t->count == t->cap) {
        int32_t cap = t->cap ? t->cap * 2 : 256;
        node *n = realloc(t->nodes, (size_t)cap * sizeof *n);
        if (n == NULL)
            return -1;
        t->nodes = n;
        t->cap = cap;
    }
    memset(&t->nodes[t->count], 0, sizeof(node));
    t->nodes[t->count].value = -1;
    return t->count++;
}

prefix_trie *prefix_new(void)
{
    prefix_trie *t = calloc(1, sizeof *t);
    if (t != NULL && new_node(t) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

void prefix_free(prefix_trie *t)
{
    if (t == NULL)
        return;
    free(t->nodes);
    free(t);
}

ac_status prefix_add(prefix_trie *t, const char *digits, int32_t value,
                     char *err)
{
    size_t len = strlen(digits);
    int32_t at = 0, saved = t->count;

    if (len == 0 || len > PREFIX_MAX_DIGITS ||
        strspn(digits, "0123456789") != len || value < 0)
        return ac_fail(err, AC_EDATA, "malformed prefix '%s'", digits);
    for (size_t i = 0; i < len; i++) {
        int d = digits[i] - '0';
        int32_t next = t->nodes[at].child[d];
        if (next == 0) {
            next = new_node(t);
            if (next < 0) {
                t->count = saved;   /* drop the half-built path */
                for (int32_t n = 0; n < saved; n++)
                    for (int c = 0; c < 10; c++)
                        if (t->nodes[n].child[c] >= saved)
                            t->nodes[n].child[c] = 0;
                return ac_fail(err, AC_EOSERR, "out of memory");
            }
            t->nodes[at].child[d] = next;
        }
        at = next;
    }
    if (t->nodes[at].value >= 0)
        return ac_fail(err, AC_EDATA, "prefix '%s' given twice", digits);
    t->nodes[at].value = value;
    return AC_OK;
}

int32_t prefix_longest(const prefix_trie *t, const char *digits, int *len)
{
    int32_t best = -1, at = 0;
    int best_len = 0;

    for (int i = 0; digits[i] >= '0' && digits[i] <= '9'; i++) {
        at = t->nodes[at].child[digits[i] - '0'];
        if (at == 0)
            break;
        if (t->nodes[at].value >= 0) {
            best = t->nodes[at].value;
            best_len = i + 1;
        }
    }
    if (len != NULL)
        *len = best_len;
    return best;
}

int prefix_extends(const prefix_trie *t, const char *digits)
{
    int32_t at = 0;

    for (int i = 0; digits[i] >= '0' && digits[i] <= '9'; i++) {
        at = t->nodes[at].child[digits[i] - '0'];
        if (at == 0)
            return 0;
    }
    /* Nodes exist only on the path of a stored prefix: a child means a
     * longer one. */
    for (int c = 0; c < 10; c++)
        if (t->nodes[at].child[c] != 0)
            return 1;
    return 0;
}

int prefix_all(const prefix_trie *t, const char *digits, int32_t *out,
               int *lens, int max)
{
    int32_t found[PREFIX_MAX_DIGITS + 1];
    int found_len[PREFIX_MAX_DIGITS + 1], n = 0, at = 0;

    for (int i = 0; i < PREFIX_MAX_DIGITS &&
                    digits[i] >= '0' && digits[i] <= '9'; i++) {
        at = t->nodes[at].child[digits[i] - '0'];
        if (at == 0)
            break;
        if (t->nodes[at].value >= 0) {
            found[n] = t->nodes[at].value;
            found_len[n++] = i + 1;
        }
    }
    int k = 0;
    for (int i = n - 1; i >= 0 && k < max; i--, k++) {
        out[k] = found[i];
        if (lens != NULL)
            lens[k] = found_len[i];
    }
    return k;
}
