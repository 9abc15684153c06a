/* rating.c: see rating.h.  The outcome rules follow docs/billing-rules.md 3 step by
 * step; the comments carry the step numbers. */
#include "rating.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "money.h"
#include "prefix.h"

static const char *const kind_names[KIND_COUNT] = {
    "geographic", "mobile", "toll_free", "premium", "shared_cost",
    "personal", "non_geographic"
};
static const char *const outcome_names[OUTCOME_COUNT] = {
    "rejected", "zero", "exempt", "pool", "split", "billed"
};

const char *rating_kind_name(rating_kind kind)
{
    return (unsigned)kind < KIND_COUNT ? kind_names[kind] : "?";
}

const char *rating_outcome_name(rating_outcome outcome)
{
    return (unsigned)outcome < OUTCOME_COUNT ? outcome_names[outcome] : "?";
}

int rating_kind_parse(const char *text)
{
    for (int k = 0; text != NULL && k < KIND_COUNT; k++)
        if (strcmp(text, kind_names[k]) == 0)
            return k;
    return -1;
}

int rating_grant_parse(const char *grants)
{
    if (grants == NULL)
        return 0;
    if (strcmp(grants, "audio_conferencing") == 0)
        return GRANT_AUDIO_CONFERENCING;
    if (strcmp(grants, "audio_conferencing_ppm") == 0)
        return GRANT_AUDIO_CONFERENCING_PPM;
    if (strcmp(grants, "dialout_usca") == 0)
        return GRANT_DIALOUT_USCA;
    return 0;
}

int rating_grant_parse_scope(const char *grants, const char *pool_scope)
{
    int g = rating_grant_parse(grants);

    if (g != GRANT_AUDIO_CONFERENCING || pool_scope == NULL ||
        strcmp(pool_scope, "zone_a") == 0)
        return g;
    if (strcmp(pool_scope, "us_ca") == 0)
        return GRANT_AUDIO_CONFERENCING_USCA;
    return 0;
}

int rating_adjust_rate(int64_t rate, int64_t adjustment, int64_t *out)
{
    int64_t product;

    if (adjustment <= -MONEY_SCALE || rate < 0 ||
        __builtin_mul_overflow(rate, (int64_t)MONEY_SCALE + adjustment,
                               &product))
        return -1;
    /* product >= 0 (rate >= 0, 1 + adjustment > 0): half-up is a
     * remainder of at least one half. */
    int64_t r = product / MONEY_SCALE;
    if (product % MONEY_SCALE >= MONEY_SCALE / 2)
        r++;
    if (r > RATING_RATE_MAX)
        return -1;
    *out = r;
    return 0;
}

int rating_number_parse(const char *number, rating_number *out)
{
    size_t n = 0, stars = 0;

    if (number == NULL)
        return 0;
    while (*number == ' ')
        number++;
    if (number[0] != '+')
        return 0;
    for (const char *p = number + 1; *p != '\0'; p++) {
        if (*p == ' ')
            continue;
        if (*p == '*')
            stars++;
        else if (*p < '0' || *p > '9' || stars > 0)
            return 0;           /* not a digit, or a digit after a '*' */
        if (n == 15)
            return 0;
        out->text[1 + n++] = *p;
    }
    if (n < 6 || stars > 4)
        return 0;
    out->text[0] = '+';
    out->text[1 + n] = '\0';
    out->visible = (int)(n - stars);
    memcpy(out->digits, out->text + 1, (size_t)out->visible);
    out->digits[out->visible] = '\0';
    out->masked = stars > 0;
    return 1;
}

int rating_number_valid(const char *number)
{
    rating_number n;
    return rating_number_parse(number, &n);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

size_t rating_id_normalise(const char *id, char *out, size_t cap)
{
    size_t n = 0;

    if (id != NULL) {
        const char *end = id + strlen(id);
        while (id < end && is_space(*id))
            id++;
        while (end > id && is_space(end[-1]))
            end--;
        for (; id < end; id++, n++) {
            char c = *id;
            if (n + 1 < cap)
                out[n] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        }
    }
    out[n < cap ? n : cap - 1] = '\0';
    return n;
}

static int is_country(const char *c)
{
    return c != NULL && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' &&
           c[1] <= 'Z' && c[2] == '\0';
}

int rating_id_blank(const char *id)
{
    if (id != NULL)
        for (; *id != '\0'; id++)
            if (!is_space(*id))
                return 0;
    return 1;
}

/* ------------------------------------------------------ reference data */

typedef struct {
    char country[3];
    rating_kind kind;
    int32_t lengths;            /* first destination_length, -1: none */
} destination;

/* A length row of ref.destination_lengths: numbers of exactly `digits`
 * E.164 digits whose longest destination prefix is its destination. */
typedef struct {
    int digits;
    char country[3];
    rating_kind kind;
    int32_t next;               /* next length row of the prefix, -1 */
} destination_length;

typedef struct {
    int64_t per_minute, fee, from_us, to_us;
    int32_t next;               /* next version of the same prefix, -1 */
} rate_version;

/* Every rate prefix of a currency, whatever its plan or validity: the
 * masked ambiguity of docs/billing-rules.md 3 ("Numbers"); the values mean nothing. */
typedef struct {
    char code[4];
    prefix_trie *trie;
} currency_rates;

/* The rows of one price plan in one currency (docs/billing-rules.md 2, version 3). */
typedef struct {
    char *plan;
    char code[4];
    prefix_trie *trie;          /* value: first rate_version */
} rate_card;

#define PLAN_MAX 64

struct rating_ref {
    prefix_trie *destinations;
    destination *dest;
    int32_t ndest, dest_cap;
    destination_length *lens;
    int32_t nlens, lens_cap;
    unsigned char zone_a[26 * 26];
    currency_rates *cur;
    int ncur, cur_cap;
    rate_card *cards;
    int32_t ncards, cards_cap;
    rate_version *rates;
    int32_t nrates, rates_cap;
};

rating_ref *rating_ref_new(void)
{
    rating_ref *ref = calloc(1, sizeof *ref);
    if (ref == NULL)
        return NULL;
    ref->destinations = prefix_new();
    if (ref->destinations == NULL) {
        free(ref);
        return NULL;
    }
    return ref;
}

void rating_ref_free(rating_ref *ref)
{
    if (ref == NULL)
        return;
    prefix_free(ref->destinations);
    for (int i = 0; i < ref->ncur; i++)
        prefix_free(ref->cur[i].trie);
    free(ref->cur);
    for (int32_t i = 0; i < ref->ncards; i++) {
        prefix_free(ref->cards[i].trie);
        free(ref->cards[i].plan);
    }
    free(ref->cards);
    free(ref->dest);
    free(ref->lens);
    free(ref->rates);
    free(ref);
}

/* Grow *array (of *cap elements of size) to hold one more than count. */
static int grow(void **array, int32_t *cap, int32_t count, size_t size)
{
    if (count < *cap)
        return 0;
    int32_t ncap = *cap ? *cap * 2 : 64;
    void *p = realloc(*array, (size_t)ncap * size);
    if (p == NULL)
        return -1;
    *array = p;
    *cap = ncap;
    return 0;
}

ac_status rating_ref_add_destination(rating_ref *ref, const char *prefix,
                                     const char *country, const char *kind,
                                     char *err)
{
    int k = rating_kind_parse(kind);
    ac_status rc;

    if (k < 0)
        return ac_fail(err, AC_EDATA, "destination %s: unknown kind '%s'",
                       prefix, kind ? kind : "(null)");
    if (!is_country(country))
        return ac_fail(err, AC_EDATA, "destination %s: bad country '%s'",
                       prefix, country ? country : "(null)");
    if (grow((void **)&ref->dest, &ref->dest_cap, ref->ndest,
             sizeof *ref->dest) != 0)
        return ac_fail(err, AC_EOSERR, "out of memory");
    rc = prefix_add(ref->destinations, prefix, ref->ndest, err);
    if (rc != AC_OK)
        return rc;
    memcpy(ref->dest[ref->ndest].country, country, 3);
    ref->dest[ref->ndest].kind = (rating_kind)k;
    ref->dest[ref->ndest].lengths = -1;
    ref->ndest++;
    return AC_OK;
}

ac_status rating_ref_add_destination_length(rating_ref *ref,
                                            const char *prefix, int digits,
                                            const char *country,
                                            const char *kind, char *err)
{
    int k = rating_kind_parse(kind), len = 0;
    size_t plen = prefix ? strlen(prefix) : 0;
    int32_t d = -1;

    if (plen > 0 && strspn(prefix, "0123456789") == plen)
        d = prefix_longest(ref->destinations, prefix, &len);
    if (d < 0 || (size_t)len != plen)
        return ac_fail(err, AC_EDATA, "destination length %s/%d: no "
                       "destination %s", prefix ? prefix : "(null)", digits,
                       prefix ? prefix : "(null)");
    if (digits < (int)plen || digits > 15)
        return ac_fail(err, AC_EDATA, "destination length %s/%d: digits "
                       "must be from the prefix's %zu to 15", prefix, digits,
                       plen);
    if (k < 0)
        return ac_fail(err, AC_EDATA, "destination length %s/%d: unknown "
                       "kind '%s'", prefix, digits, kind ? kind : "(null)");
    if (!is_country(country))
        return ac_fail(err, AC_EDATA, "destination length %s/%d: bad "
                       "country '%s'", prefix, digits,
                       country ? country : "(null)");
    for (int32_t i = ref->dest[d].lengths; i >= 0; i = ref->lens[i].next)
        if (ref->lens[i].digits == digits)
            return ac_fail(err, AC_EDATA, "destination length %s/%d: "
                           "duplicate", prefix, digits);
    if (grow((void **)&ref->lens, &ref->lens_cap, ref->nlens,
             sizeof *ref->lens) != 0)
        return ac_fail(err, AC_EOSERR, "out of memory");
    destination_length *l = &ref->lens[ref->nlens];
    l->digits = digits;
    memcpy(l->country, country, 3);
    l->kind = (rating_kind)k;
    l->next = ref->dest[d].lengths;
    ref->dest[d].lengths = ref->nlens++;
    return AC_OK;
}

ac_status rating_ref_add_zone_a(rating_ref *ref, const char *country,
                                char *err)
{
    if (!is_country(country))
        return ac_fail(err, AC_EDATA, "zone: bad country '%s'",
                       country ? country : "(null)");
    ref->zone_a[(country[0] - 'A') * 26 + (country[1] - 'A')] = 1;
    return AC_OK;
}

int rating_ref_zone_a(const rating_ref *ref, const char *country)
{
    if (!is_country(country))
        return 0;
    return ref->zone_a[(country[0] - 'A') * 26 + (country[1] - 'A')];
}

static const currency_rates *find_currency(const rating_ref *ref,
                                           const char *code)
{
    for (int i = 0; i < ref->ncur; i++)
        if (strcmp(ref->cur[i].code, code) == 0)
            return &ref->cur[i];
    return NULL;
}

/* The card of (plan, currency), or -1. */
static int32_t find_card(const rating_ref *ref, const char *plan,
                         const char *currency)
{
    for (int32_t i = ref->ncards - 1; i >= 0; i--)
        if (strcmp(ref->cards[i].code, currency) == 0 &&
            strcmp(ref->cards[i].plan, plan) == 0)
            return i;
    return -1;
}

/* 1 when prefix is 1 to 15 digits. */
static int is_prefix(const char *prefix)
{
    size_t n = prefix ? strlen(prefix) : 0;
    return n >= 1 && n <= PREFIX_MAX_DIGITS &&
           strspn(prefix, "0123456789") == n;
}

/* Add a rate row of plan; never: it holds at no instant (from/to
 * ignored). */
static ac_status add_rate(rating_ref *ref, const char *plan,
                          const char *currency, const char *prefix,
                          int64_t per_minute, int64_t connection_fee,
                          int64_t from_us, int64_t to_us, int never,
                          char *err)
{
    currency_rates *cur;
    int len = 0;

    if (plan == NULL)
        plan = RATING_STANDARD_PLAN;
    if (currency == NULL || strlen(currency) != 3)
        return ac_fail(err, AC_EDATA, "rate %s: bad currency",
                       prefix ? prefix : "(null)");
    if (prefix == NULL)
        return ac_fail(err, AC_EDATA, "rate %s: no prefix", currency);
    if (plan[0] == '\0' || strlen(plan) > PLAN_MAX)
        return ac_fail(err, AC_EDATA, "rate %s %s: the plan name is empty "
                       "or longer than %d bytes", currency, prefix,
                       PLAN_MAX);
    if (!is_prefix(prefix))
        return ac_fail(err, AC_EDATA, "rate %s %s: the prefix is not 1 to "
                       "15 digits", currency, prefix);
    if (!never && (per_minute < 0 || connection_fee < 0 || to_us <= from_us))
        return ac_fail(err, AC_EDATA, "rate %s %s: negative money or empty "
                       "validity", currency, prefix);
    cur = (currency_rates *)find_currency(ref, currency);
    if (cur == NULL) {
        int32_t cap = ref->cur_cap;
        if (grow((void **)&ref->cur, &cap, ref->ncur, sizeof *ref->cur) != 0)
            return ac_fail(err, AC_EOSERR, "out of memory");
        ref->cur_cap = cap;
        cur = &ref->cur[ref->ncur];
        memcpy(cur->code, currency, 4);
        cur->trie = prefix_new();
        if (cur->trie == NULL)
            return ac_fail(err, AC_EOSERR, "out of memory");
        ref->ncur++;
    }
    if (prefix_longest(cur->trie, prefix, &len) < 0 ||
        (size_t)len != strlen(prefix)) {
        ac_status rc = prefix_add(cur->trie, prefix, 0, err);
        if (rc != AC_OK)
            return rc;
    }

    int32_t c = find_card(ref, plan, currency);
    if (c < 0) {
        if (grow((void **)&ref->cards, &ref->cards_cap, ref->ncards,
                 sizeof *ref->cards) != 0)
            return ac_fail(err, AC_EOSERR, "out of memory");
        rate_card *card = &ref->cards[ref->ncards];
        memcpy(card->code, currency, 4);
        card->plan = strdup(plan);
        card->trie = prefix_new();
        if (card->plan == NULL || card->trie == NULL) {
            free(card->plan);
            prefix_free(card->trie);
            return ac_fail(err, AC_EOSERR, "out of memory");
        }
        c = ref->ncards++;
    }
    rate_card *card = &ref->cards[c];
    if (grow((void **)&ref->rates, &ref->rates_cap, ref->nrates,
             sizeof *ref->rates) != 0)
        return ac_fail(err, AC_EOSERR, "out of memory");
    rate_version *v = &ref->rates[ref->nrates];
    v->per_minute = never ? 0 : per_minute;
    v->fee = never ? 0 : connection_fee;
    v->from_us = never ? INT64_MIN : from_us;     /* [x, x) holds nowhere */
    v->to_us = never ? INT64_MIN : to_us;
    v->next = -1;

    int32_t head = prefix_longest(card->trie, prefix, &len);
    if (head >= 0 && (size_t)len == strlen(prefix)) {
        /* Another version of the same prefix: chain it in. */
        while (ref->rates[head].next >= 0)
            head = ref->rates[head].next;
        ref->rates[head].next = ref->nrates;
    } else {
        ac_status rc = prefix_add(card->trie, prefix, ref->nrates, err);
        if (rc != AC_OK)
            return rc;
    }
    ref->nrates++;
    return AC_OK;
}

ac_status rating_ref_add_rate(rating_ref *ref, const char *currency,
                              const char *prefix, int64_t per_minute,
                              int64_t connection_fee, int64_t from_us,
                              int64_t to_us, char *err)
{
    return add_rate(ref, NULL, currency, prefix, per_minute, connection_fee,
                    from_us, to_us, 0, err);
}

ac_status rating_ref_add_plan_rate(rating_ref *ref, const char *plan,
                                   const char *currency, const char *prefix,
                                   int64_t per_minute,
                                   int64_t connection_fee, int64_t from_us,
                                   int64_t to_us, char *err)
{
    return add_rate(ref, plan, currency, prefix, per_minute, connection_fee,
                    from_us, to_us, 0, err);
}

ac_status rating_ref_add_rate_prefix(rating_ref *ref, const char *plan,
                                     const char *currency,
                                     const char *prefix, char *err)
{
    return add_rate(ref, plan, currency, prefix, 0, 0, 0, 0, 1, err);
}

int rating_ref_has_plan(const rating_ref *ref, const char *plan)
{
    if (plan == NULL)
        plan = RATING_STANDARD_PLAN;
    for (int32_t i = 0; i < ref->ncards; i++)
        if (strcmp(ref->cards[i].plan, plan) == 0)
            return 1;
    return 0;
}

int rating_ref_destination(const rating_ref *ref, const char *digits,
                           int number_digits, char country[3],
                           rating_kind *kind, int *prefix_len)
{
    int32_t i = prefix_longest(ref->destinations, digits, prefix_len);
    if (i < 0)
        return 0;
    memcpy(country, ref->dest[i].country, 3);
    *kind = ref->dest[i].kind;
    for (int32_t l = ref->dest[i].lengths; l >= 0; l = ref->lens[l].next)
        if (ref->lens[l].digits == number_digits) {
            memcpy(country, ref->lens[l].country, 3);
            *kind = ref->lens[l].kind;
            break;
        }
    return 1;
}

int rating_ref_masked_ambiguous(const rating_ref *ref, const char *currency,
                                const char *visible_digits)
{
    const currency_rates *cur = find_currency(ref, currency);

    return prefix_extends(ref->destinations, visible_digits) ||
           (cur != NULL && prefix_extends(cur->trie, visible_digits));
}

int rating_ref_has_currency(const rating_ref *ref, const char *currency)
{
    return currency != NULL && find_currency(ref, currency) != NULL;
}

/* The rate of card (an index, -1: none) for digits at t_us. */
static int card_rate(const rating_ref *ref, int32_t card, const char *digits,
                     int64_t t_us, int64_t *per_minute,
                     int64_t *connection_fee, int *prefix_len)
{
    int32_t heads[PREFIX_MAX_DIGITS];
    int lens[PREFIX_MAX_DIGITS];

    if (card < 0)
        return 0;
    int n = prefix_all(ref->cards[card].trie, digits, heads, lens,
                       PREFIX_MAX_DIGITS);
    for (int i = 0; i < n; i++) {
        const rate_version *best = NULL;
        for (int32_t v = heads[i]; v >= 0; v = ref->rates[v].next) {
            const rate_version *r = &ref->rates[v];
            if (r->from_us <= t_us && t_us < r->to_us &&
                (best == NULL || r->from_us > best->from_us))
                best = r;
        }
        if (best != NULL) {
            *per_minute = best->per_minute;
            *connection_fee = best->fee;
            *prefix_len = lens[i];
            return 1;
        }
    }
    return 0;
}

int rating_ref_rate(const rating_ref *ref, const char *currency,
                    const char *digits, int64_t t_us, int64_t *per_minute,
                    int64_t *connection_fee, int *prefix_len)
{
    if (currency == NULL)
        return 0;
    return card_rate(ref, find_card(ref, RATING_STANDARD_PLAN, currency),
                     digits, t_us, per_minute, connection_fee, prefix_len);
}

int rating_ref_plan_rate(const rating_ref *ref, const char *plan,
                         const char *currency, const char *digits,
                         int64_t t_us, int64_t *per_minute,
                         int64_t *connection_fee, int *prefix_len,
                         int *from_plan)
{
    if (currency == NULL)
        return 0;
    if (plan != NULL && strcmp(plan, RATING_STANDARD_PLAN) != 0 &&
        card_rate(ref, find_card(ref, plan, currency), digits, t_us,
                  per_minute, connection_fee, prefix_len)) {
        *from_plan = 1;
        return 1;
    }
    *from_plan = 0;
    return rating_ref_rate(ref, currency, digits, t_us, per_minute,
                           connection_fee, prefix_len);
}

/* ------------------------------------------------------------ licences */

typedef struct {
    char *user;                 /* normalised */
    int grants;
    int64_t from_us, to_us;
} holding;

struct rating_licences {
    holding *h;
    int32_t n, cap;
    int sorted;                 /* h in strcmp order of user */
};

rating_licences *rating_licences_new(void)
{
    rating_licences *lic = calloc(1, sizeof(rating_licences));
    if (lic != NULL)
        lic->sorted = 1;
    return lic;
}

void rating_licences_free(rating_licences *lic)
{
    if (lic == NULL)
        return;
    for (int32_t i = 0; i < lic->n; i++)
        free(lic->h[i].user);
    free(lic->h);
    free(lic);
}

/* A normalised copy of id, or NULL when out of memory. */
static char *id_dup(const char *id)
{
    char small[1];
    size_t n = rating_id_normalise(id, small, sizeof small);
    char *out = malloc(n + 1);
    if (out != NULL)
        rating_id_normalise(id, out, n + 1);
    return out;
}

ac_status rating_licences_add(rating_licences *lic, const char *user,
                              int grants, int64_t from_us, int64_t to_us,
                              char *err)
{
    if (to_us <= from_us || user == NULL)
        return AC_OK;       /* holds at no instant (docs/billing-rules.md 3) */
    if (grow((void **)&lic->h, &lic->cap, lic->n, sizeof *lic->h) != 0)
        return ac_fail(err, AC_EOSERR, "out of memory");
    holding *h = &lic->h[lic->n];
    h->user = id_dup(user);
    if (h->user == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    if (h->user[0] == '\0') {
        free(h->user);      /* a blank user holds nothing */
        return AC_OK;
    }
    h->grants = grants;
    h->from_us = from_us;
    h->to_us = to_us;
    if (lic->n > 0 && strcmp(lic->h[lic->n - 1].user, h->user) > 0)
        lic->sorted = 0;
    lic->n++;
    return AC_OK;
}

static int holding_order(const void *a, const void *b)
{
    const holding *x = a, *y = b;
    int c = strcmp(x->user, y->user);
    if (c != 0)
        return c;
    return x->from_us < y->from_us ? -1 : x->from_us > y->from_us;
}

void rating_licences_sort(rating_licences *lic)
{
    if (!lic->sorted && lic->n > 1)
        qsort(lic->h, (size_t)lic->n, sizeof *lic->h, holding_order);
    lic->sorted = 1;
}

/* The grants user_key (normalised) holds at t_us. */
static int held_key(const rating_licences *lic, const char *key,
                    int64_t t_us)
{
    int32_t lo = 0, hi = lic->n;
    int held = 0;

    if (!lic->sorted) {         /* correct, slower: before sorting */
        for (int32_t i = 0; i < lic->n; i++)
            if (strcmp(lic->h[i].user, key) == 0 &&
                lic->h[i].from_us <= t_us && t_us < lic->h[i].to_us)
                held |= lic->h[i].grants;
        return held;
    }
    while (lo < hi) {           /* first holding with h.user >= key */
        int32_t mid = lo + (hi - lo) / 2;
        if (strcmp(lic->h[mid].user, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int32_t i = lo; i < lic->n && strcmp(lic->h[i].user, key) == 0;
         i++)
        if (lic->h[i].from_us <= t_us && t_us < lic->h[i].to_us)
            held |= lic->h[i].grants;
    return held;
}

int rating_licences_held(const rating_licences *lic, const char *user,
                         int64_t t_us)
{
    char small[256];
    int held;

    if (user == NULL)
        return 0;
    size_t n = rating_id_normalise(user, small, sizeof small);
    if (n == 0)
        return 0;
    if (n < sizeof small)
        return held_key(lic, small, t_us);
    char *key = id_dup(user);
    if (key == NULL)
        return 0;
    held = held_key(lic, key, t_us);
    free(key);
    return held;
}

/* --------------------------------------------------------- one tenant */

/* An open-addressing hash of int32 indexes; slots hold index + 1. */
typedef struct {
    int32_t *slot;
    uint32_t mask;              /* size - 1, size a power of two */
    int32_t used;
} index_map;

static uint64_t hash_bytes(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;      /* FNV-1a */
    return h;
}

static int map_grow(index_map *m, uint64_t (*hash_of)(const void *, int32_t),
                    const void *ctx)
{
    uint32_t size = m->mask ? (m->mask + 1) * 2 : 64;
    int32_t *slot = calloc(size, sizeof *slot);
    if (slot == NULL)
        return -1;
    for (uint32_t i = 0; m->mask && i <= m->mask; i++) {
        if (m->slot[i] == 0)
            continue;
        uint32_t j = (uint32_t)hash_of(ctx, m->slot[i] - 1) & (size - 1);
        while (slot[j] != 0)
            j = (j + 1) & (size - 1);
        slot[j] = m->slot[i];
    }
    free(m->slot);
    m->slot = slot;
    m->mask = size - 1;
    return 0;
}

/* The calls seen at the current start time, for the DUPLICATE rule (docs/billing-rules.md
 * section 3, step 4): a duplicate has the same start_time as the call it
 * repeats, and calls come in start_time order, so only the calls of one
 * instant are kept. */
typedef struct {
    uint64_t hash;
    size_t key, key_len;        /* offsets into the arena */
    size_t usage_id;
} seen_call;

typedef struct {
    int64_t start_us;
    seen_call *calls;
    int32_t n, cap;
    index_map map;
    char *arena;
    size_t arena_len, arena_cap;
} seen_set;

struct rating_tenant {
    const rating_ref *ref;
    const rating_licences *lic;
    const char *currency;
    int minor_unit;
    int64_t tax_rate;
    const char *plan;           /* NULL: standard only */
    int64_t adjustment;         /* rate_adjustment, 1/10000 */
    int32_t plan_card;          /* the plan's card in currency, -1 none */
    int32_t std_card;           /* standard's card in currency, -1 none */
    const prefix_trie *rate_prefixes;   /* the currency's, any plan */
    int32_t pool_left;          /* the Zone A pool */
    int32_t usca_left;          /* the US/CA pool */
    int32_t fair_use_minutes;
    int64_t last_start_us;
    rating_totals totals;
    rating_line *lines;
    int32_t nlines, lines_cap;
    index_map line_map;
    rating_organizer *orgs;
    int32_t norgs, orgs_cap;
    index_map org_map;
    seen_set seen;
    char *key;                  /* the current call's organizer, normalised */
    size_t key_cap;
    char *dup_key;              /* the current call's DUPLICATE key */
    size_t dup_key_cap;
    int finished;
};

static uint64_t line_hash(const char country[3], int kind, int64_t pm,
                          int64_t fee)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = hash_bytes(country, 2, h);
    h = hash_bytes(&kind, sizeof kind, h);
    h = hash_bytes(&pm, sizeof pm, h);
    return hash_bytes(&fee, sizeof fee, h);
}

static uint64_t line_hash_at(const void *ctx, int32_t i)
{
    const rating_tenant *t = ctx;
    const rating_line *l = &t->lines[i];
    return line_hash(l->country, (int)l->kind, l->per_minute,
                     l->connection_fee);
}

static uint64_t org_hash(const char *key)
{
    return hash_bytes(key, strlen(key), 0xcbf29ce484222325ULL);
}

static uint64_t org_hash_at(const void *ctx, int32_t i)
{
    const rating_tenant *t = ctx;
    return org_hash(t->orgs[i].key);
}

static uint64_t seen_hash_at(const void *ctx, int32_t i)
{
    const seen_set *s = ctx;
    return s->calls[i].hash;
}

rating_tenant *rating_tenant_new(const rating_ref *ref, rating_licences *lic,
                                 const char *currency, int32_t pool_minutes,
                                 int32_t fair_use_minutes)
{
    rating_tenant *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    rating_licences_sort(lic);
    t->ref = ref;
    t->lic = lic;
    t->currency = currency;
    t->minor_unit = 2;
    t->plan_card = -1;
    t->std_card = currency ? find_card(ref, RATING_STANDARD_PLAN, currency)
                           : -1;
    const currency_rates *cur = currency ? find_currency(ref, currency)
                                         : NULL;
    t->rate_prefixes = cur ? cur->trie : NULL;
    t->pool_left = pool_minutes;
    t->fair_use_minutes = fair_use_minutes;
    t->totals.pool_minutes = pool_minutes;
    t->last_start_us = INT64_MIN;
    t->seen.start_us = INT64_MIN;
    if (map_grow(&t->line_map, line_hash_at, t) != 0 ||
        map_grow(&t->org_map, org_hash_at, t) != 0 ||
        map_grow(&t->seen.map, seen_hash_at, &t->seen) != 0) {
        rating_tenant_free(t);
        return NULL;
    }
    return t;
}

ac_status rating_tenant_set_money(rating_tenant *t, int minor_unit,
                                  int64_t tax_rate, char *err)
{
    if (minor_unit < 0 || minor_unit > 4)
        return ac_fail(err, AC_EDATA, "currency %s: minor unit %d is not "
                       "0 to 4 decimals", t->currency, minor_unit);
    if (tax_rate < 0 || tax_rate >= MONEY_SCALE)
        return ac_fail(err, AC_EDATA, "tax rate %lld/10000 is not from 0 "
                       "to 99.99 %%", (long long)tax_rate);
    t->minor_unit = minor_unit;
    t->tax_rate = tax_rate;
    return AC_OK;
}

ac_status rating_tenant_set_usca_pool(rating_tenant *t, int32_t minutes,
                                      char *err)
{
    if (minutes < 0)
        return ac_fail(err, AC_EDATA, "a US/CA pool of %" PRId32 " minutes",
                       minutes);
    t->usca_left = minutes;
    t->totals.usca_pool_minutes = minutes;
    return AC_OK;
}

ac_status rating_tenant_set_price(rating_tenant *t, const char *plan,
                                  int64_t adjustment, char *err)
{
    /* numeric(7,4): |adjustment| <= 999.9999. */
    if (adjustment <= -MONEY_SCALE || adjustment > INT64_C(9999999))
        return ac_fail(err, AC_EDATA, "rate_adjustment %s%lld.%04lld is "
                       "not above -1 (a discount of 100 %% or more) or not "
                       "a numeric(7,4)", adjustment < 0 ? "-" : "",
                       (long long)(adjustment < 0 ? -adjustment : adjustment)
                           / MONEY_SCALE,
                       (long long)(adjustment < 0 ? -adjustment : adjustment)
                           % MONEY_SCALE);
    if (plan != NULL && strcmp(plan, RATING_STANDARD_PLAN) == 0)
        plan = NULL;
    if (plan != NULL && !rating_ref_has_plan(t->ref, plan))
        return ac_fail(err, AC_EDATA, "price_plan '%s' has no rate in "
                       "ref.rates at all (in any currency, at any "
                       "validity)", plan);
    t->plan = plan;
    t->plan_card = plan != NULL && t->currency != NULL
                   ? find_card(t->ref, plan, t->currency) : -1;
    t->adjustment = adjustment;
    return AC_OK;
}

void rating_tenant_free(rating_tenant *t)
{
    if (t == NULL)
        return;
    for (int32_t i = 0; i < t->norgs; i++) {
        free(t->orgs[i].id);
        free(t->orgs[i].key);
        free(t->orgs[i].first_issue_usage_id);
    }
    free(t->orgs);
    free(t->lines);
    free(t->line_map.slot);
    free(t->org_map.slot);
    free(t->seen.calls);
    free(t->seen.map.slot);
    free(t->seen.arena);
    free(t->key);
    free(t->dup_key);
    free(t);
}

/* Make *buf (of *cap bytes) hold at least need bytes; -1 when out of
 * memory. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 128;
    while (ncap < need)
        ncap *= 2;
    char *p = realloc(*buf, ncap);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = ncap;
    return 0;
}

/* Normalise id into t->key; -1 when out of memory. */
static int organizer_key(rating_tenant *t, const char *id)
{
    if (reserve(&t->key, &t->key_cap, 128) != 0)
        return -1;
    size_t n = rating_id_normalise(id, t->key, t->key_cap);
    if (n < t->key_cap)
        return 0;
    if (reserve(&t->key, &t->key_cap, n + 1) != 0)
        return -1;
    rating_id_normalise(id, t->key, t->key_cap);
    return 0;
}

/* The organizer record of key (first seen written as id), created on
 * first sight; NULL when out of memory. */
static rating_organizer *organizer(rating_tenant *t, const char *key,
                                   const char *id)
{
    uint32_t j = (uint32_t)org_hash(key) & t->org_map.mask;
    for (; t->org_map.slot[j] != 0; j = (j + 1) & t->org_map.mask) {
        rating_organizer *o = &t->orgs[t->org_map.slot[j] - 1];
        if (strcmp(o->key, key) == 0)
            return o;
    }
    if ((uint32_t)(t->norgs + 1) * 2 > t->org_map.mask) {
        if (map_grow(&t->org_map, org_hash_at, t) != 0)
            return NULL;
        return organizer(t, key, id);   /* find the new free slot */
    }
    if (grow((void **)&t->orgs, &t->orgs_cap, t->norgs, sizeof *t->orgs))
        return NULL;
    rating_organizer *o = &t->orgs[t->norgs];
    memset(o, 0, sizeof *o);
    o->id = strdup(id);
    o->key = strdup(key);
    if (o->id == NULL || o->key == NULL) {
        free(o->id);
        free(o->key);
        return NULL;
    }
    t->org_map.slot[j] = ++t->norgs;
    return o;
}

/* The invoice line of (country, kind, per_minute, fee), created on first
 * sight; NULL when out of memory. */
static rating_line *line(rating_tenant *t, const char country[3], int kind,
                         int64_t pm, int64_t fee)
{
    uint32_t j = (uint32_t)line_hash(country, kind, pm, fee) &
                 t->line_map.mask;
    for (; t->line_map.slot[j] != 0; j = (j + 1) & t->line_map.mask) {
        rating_line *l = &t->lines[t->line_map.slot[j] - 1];
        if (memcmp(l->country, country, 2) == 0 && (int)l->kind == kind &&
            l->per_minute == pm && l->connection_fee == fee)
            return l;
    }
    if ((uint32_t)(t->nlines + 1) * 2 > t->line_map.mask) {
        if (map_grow(&t->line_map, line_hash_at, t) != 0)
            return NULL;
        return line(t, country, kind, pm, fee);
    }
    if (grow((void **)&t->lines, &t->lines_cap, t->nlines,
             sizeof *t->lines))
        return NULL;
    rating_line *l = &t->lines[t->nlines];
    memset(l, 0, sizeof *l);
    memcpy(l->country, country, 3);
    l->kind = (rating_kind)kind;
    l->per_minute = pm;
    l->connection_fee = fee;
    t->line_map.slot[j] = ++t->nlines;
    return l;
}

/* Forget the calls of the previous instant. */
static void seen_reset(seen_set *s, int64_t start_us)
{
    s->start_us = start_us;
    if (s->n == 0)
        return;
    if (s->map.mask > 1023) {   /* a burst: give the memory back */
        free(s->map.slot);
        s->map.slot = NULL;
        s->map.mask = 0;
        free(s->calls);
        s->calls = NULL;
        s->cap = 0;
        free(s->arena);
        s->arena = NULL;
        s->arena_cap = 0;
    } else {
        memset(s->map.slot, 0, (s->map.mask + 1) * sizeof *s->map.slot);
    }
    s->n = 0;
    s->arena_len = 0;
}

/* Append len bytes to the arena; its offset, or (size_t)-1 when out of
 * memory. */
static size_t arena_put(seen_set *s, const char *b, size_t len)
{
    if (reserve(&s->arena, &s->arena_cap, s->arena_len + len + 1) != 0)
        return (size_t)-1;
    size_t at = s->arena_len;
    memcpy(s->arena + at, b, len);
    s->arena[at + len] = '\0';
    s->arena_len += len + 1;
    return at;
}

/* Build the DUPLICATE key of call c (organizer key in t->key, number n)
 * into t->dup_key: call_id, conference_id, organizer, number and
 * duration, separated by a byte that none of them holds here (0x1f).
 * Returns its length, or (size_t)-1 when out of memory. */
static size_t duplicate_key(rating_tenant *t, const rating_call *c,
                            const rating_number *n)
{
    char dur[16];
    const char *part[5] = { c->call_id, c->conference_id, t->key, n->text,
                            dur };
    size_t need = 0;

    snprintf(dur, sizeof dur, "%" PRId32, c->duration_seconds);
    for (int i = 0; i < 5; i++)
        need += strlen(part[i]) + 1;
    if (reserve(&t->dup_key, &t->dup_key_cap, need) != 0)
        return (size_t)-1;
    size_t len = 0;
    for (int i = 0; i < 5; i++) {
        size_t k = strlen(part[i]);
        memcpy(t->dup_key + len, part[i], k);
        len += k;
        t->dup_key[len++] = i < 4 ? '\x1f' : '\0';
    }
    return len - 1;
}

/* docs/billing-rules.md 3, step 4: the usage_id of an earlier call of this instant
 * with the same key, or NULL after recording this call as the first of
 * its key.  -1 in *oom when out of memory. */
static const char *duplicate_of(rating_tenant *t, const rating_call *c,
                                size_t key_len, int *oom)
{
    seen_set *s = &t->seen;
    uint64_t h = hash_bytes(t->dup_key, key_len, 0xcbf29ce484222325ULL);

    if (s->map.slot == NULL && map_grow(&s->map, seen_hash_at, s) != 0) {
        *oom = 1;
        return NULL;
    }
    uint32_t j = (uint32_t)h & s->map.mask;
    for (; s->map.slot[j] != 0; j = (j + 1) & s->map.mask) {
        const seen_call *e = &s->calls[s->map.slot[j] - 1];
        if (e->hash == h && e->key_len == key_len &&
            memcmp(s->arena + e->key, t->dup_key, key_len) == 0)
            return s->arena + e->usage_id;
    }
    if ((uint32_t)(s->n + 1) * 2 > s->map.mask) {
        if (map_grow(&s->map, seen_hash_at, s) != 0) {
            *oom = 1;
            return NULL;
        }
        return duplicate_of(t, c, key_len, oom);
    }
    if (grow((void **)&s->calls, &s->cap, s->n, sizeof *s->calls) != 0) {
        *oom = 1;
        return NULL;
    }
    seen_call *e = &s->calls[s->n];
    e->hash = h;
    e->key_len = key_len;
    e->key = arena_put(s, t->dup_key, key_len);
    e->usage_id = e->key == (size_t)-1 ? (size_t)-1
                  : arena_put(s, c->usage_id, strlen(c->usage_id));
    if (e->usage_id == (size_t)-1) {
        *oom = 1;
        return NULL;
    }
    s->map.slot[j] = ++s->n;
    return NULL;
}

static void reject(rating_result *out, const char *reason)
{
    out->outcome = OUTCOME_REJECTED;
    out->reason = reason;
    out->pool_minutes = 0;
    out->usca_pool_minutes = 0;
    out->billed_minutes = 0;
    out->has_rate = 0;
    out->per_minute = 0;
    out->connection_fee = 0;
    out->amount = 0;
}

/* The largest amount the ledger's numeric(16,4) columns hold, in units. */
#define LEDGER_MONEY_MAX INT64_C(9999999999999999)

/* Decide the outcome of one call (docs/billing-rules.md 3, steps 1-12); held is
 * what its organizer holds at the call, the organizer's normalised id is
 * in t->key.  Draws on the pool only when the outcome is final.  AC_OK,
 * AC_EOSERR when out of memory, AC_EDATA when the amount overflows. */
static ac_status decide(rating_tenant *t, const rating_call *c, int held,
                        rating_result *out, char *err)
{
    const rating_ref *ref = t->ref;
    rating_kind kind;

    memset(out, 0, sizeof *out);
    out->kind = -1;
    if (!c->has_duration || c->duration_seconds < 0 ||            /* 1 */
        c->duration_seconds > RATING_MAX_DURATION) {
        reject(out, "INVALID_DURATION");
        return AC_OK;
    }
    out->minutes = money_minutes(c->duration_seconds);
    if (!rating_number_parse(c->number, &out->number)) {          /* 2 */
        reject(out, "INVALID_NUMBER");
        return AC_OK;
    }
    if (t->key[0] == '\0') {                                      /* 3 */
        reject(out, "NO_ORGANIZER");
        return AC_OK;
    }
    if (c->call_id != NULL && c->conference_id != NULL) {         /* 4 */
        int oom = 0;
        size_t len = duplicate_key(t, c, &out->number);
        const char *first = len == (size_t)-1 ? NULL
                            : duplicate_of(t, c, len, &oom);
        if (len == (size_t)-1 || oom)
            return ac_fail(err, AC_EOSERR, "out of memory");
        if (first != NULL) {
            reject(out, "DUPLICATE");
            out->duplicate_of = first;
            return AC_OK;
        }
    }
    const char *digits = out->number.digits;
    if (!rating_ref_destination(ref, digits,                       /* 5 */
                                (int)strlen(out->number.text) - 1,
                                out->country, &kind,
                                &out->dest_prefix_len)) {
        reject(out, "UNKNOWN_DESTINATION");
        return AC_OK;
    }
    out->kind = (int)kind;
    if (out->number.masked &&                                     /* 6 */
        (prefix_extends(ref->destinations, digits) ||
         (t->rate_prefixes != NULL &&
          prefix_extends(t->rate_prefixes, digits)))) {
        reject(out, "MASKED_AMBIGUOUS");
        return AC_OK;
    }
    if (!(held & GRANT_ANY_AUDIO_CONFERENCING)) {                 /* 7 */
        reject(out, "ORGANIZER_NOT_LICENSED");
        return AC_OK;
    }
    if (c->duration_seconds == 0) {                               /* 8 */
        out->outcome = OUTCOME_ZERO;
        return AC_OK;
    }
    int plain = kind == KIND_GEOGRAPHIC || kind == KIND_MOBILE ||
                kind == KIND_TOLL_FREE;
    int us_ca = strcmp(out->country, "US") == 0 ||
                strcmp(out->country, "CA") == 0;
    if ((held & GRANT_DIALOUT_USCA) && us_ca && plain) {          /* 9 */
        out->outcome = OUTCOME_EXEMPT;
        return AC_OK;
    }
    /* 10: pool-eligible when a pool open to the call covers it: the
     * US/CA pool (a US/CA subscription, a US or CA number), the Zone A
     * pool (a Zone A subscription, a Zone A number). */
    int usca_open = plain && (held & GRANT_AUDIO_CONFERENCING_USCA) && us_ca;
    int zone_open = plain && (held & GRANT_AUDIO_CONFERENCING) &&
                    rating_ref_zone_a(ref, out->country);
    int32_t m = out->minutes, from_usca = 0, from_zone = 0;
    if (usca_open)                                                /* 11 */
        from_usca = t->usca_left >= m ? m : t->usca_left;
    if (zone_open)              /* then the Zone A pool, for the rest */
        from_zone = t->pool_left >= m - from_usca ? m - from_usca
                                                  : t->pool_left;
    int32_t from_pool = from_usca + from_zone;
    if (from_pool == m) {
        out->outcome = OUTCOME_POOL;
        out->pool_minutes = m;
        out->usca_pool_minutes = from_usca;
        t->usca_left -= from_usca;
        t->pool_left -= from_zone;
        return AC_OK;
    }
    int from_plan = 0;
    if (!card_rate(ref, t->plan_card, digits, c->start_us,         /* 12 */
                   &out->per_minute, &out->connection_fee,
                   &out->rate_prefix_len)) {
        if (!card_rate(ref, t->std_card, digits, c->start_us,
                       &out->per_minute, &out->connection_fee,
                       &out->rate_prefix_len)) {
            reject(out, "NO_RATE");
            return AC_OK;
        }
    } else {
        from_plan = 1;
    }
    if (t->adjustment != 0 &&   /* docs/billing-rules.md 3, "Price plan" */
        (rating_adjust_rate(out->per_minute, t->adjustment,
                            &out->per_minute) != 0 ||
         rating_adjust_rate(out->connection_fee, t->adjustment,
                            &out->connection_fee) != 0))
        return ac_fail(err, AC_EDATA, "call %s: its rate with the "
                       "rate_adjustment does not fit the ledger's "
                       "numeric(12,4)", c->usage_id);
    out->has_rate = 1;
    out->rate_from_plan = from_plan;
    out->outcome = from_pool > 0 ? OUTCOME_SPLIT : OUTCOME_BILLED;
    out->pool_minutes = from_pool;
    out->usca_pool_minutes = from_usca;
    out->billed_minutes = m - from_pool;
    if (__builtin_mul_overflow((int64_t)out->billed_minutes,
                               out->per_minute, &out->amount) ||
        __builtin_add_overflow(out->amount, out->connection_fee,
                               &out->amount) ||
        out->amount > LEDGER_MONEY_MAX)
        return ac_fail(err, AC_EDATA, "call %s: %" PRId32 " minutes at "
                       "a rate of %lld/10000 does not fit the ledger's "
                       "amounts", c->usage_id, out->billed_minutes,
                       (long long)out->per_minute);
    t->usca_left -= from_usca;
    t->pool_left -= from_zone;
    return AC_OK;
}

/* *sum += v, or -1 when the int32 sum would overflow. */
static int add32(int32_t *sum, int32_t v)
{
    return __builtin_add_overflow(*sum, v, sum) ? -1 : 0;
}

/* *sum += v, or -1 when the sum would leave the ledger's money range. */
static int add_money(int64_t *sum, int64_t v)
{
    return __builtin_add_overflow(*sum, v, sum) ||
           *sum > LEDGER_MONEY_MAX || *sum < -LEDGER_MONEY_MAX ? -1 : 0;
}

ac_status rating_tenant_rate(rating_tenant *t, const rating_call *call,
                             rating_result *out, char *err)
{
    assert(!t->finished);
    assert(call->start_us >= t->last_start_us);
    t->last_start_us = call->start_us;
    if (call->start_us != t->seen.start_us)
        seen_reset(&t->seen, call->start_us);
    if (organizer_key(t, call->organizer_id) != 0)
        return ac_fail(err, AC_EOSERR, "out of memory");
    int held = t->key[0] ? held_key(t->lic, t->key, call->start_us) : 0;
    ac_status rc = decide(t, call, held, out, err);
    if (rc != AC_OK)
        return rc;

    rating_totals *tot = &t->totals;
    int bad = 0;
    bad |= add32(&tot->calls, 1);
    bad |= add32(&tot->outcomes[out->outcome], 1);
    bad |= add32(&tot->pool_used,
                 out->pool_minutes - out->usca_pool_minutes);
    bad |= add32(&tot->usca_pool_used, out->usca_pool_minutes);
    bad |= add32(&tot->billed_minutes, out->billed_minutes);
    bad |= add_money(&tot->exact_total, out->amount);
    if (out->outcome == OUTCOME_EXEMPT)
        bad |= add32(&tot->exempt_minutes, out->minutes);

    if (t->key[0] != '\0') {
        rating_organizer *o = organizer(t, t->key, call->organizer_id);
        if (o == NULL)
            return ac_fail(err, AC_EOSERR, "out of memory");
        bad |= add32(&o->calls, 1);
        if (out->outcome == OUTCOME_REJECTED)
            bad |= add32(&o->rejected_calls, 1);
        else
            bad |= add32(&o->minutes, out->minutes);
        bad |= add32(&o->pool_minutes, out->pool_minutes);
        bad |= add32(&o->usca_pool_minutes, out->usca_pool_minutes);
        bad |= add32(&o->billed_minutes, out->billed_minutes);
        bad |= add_money(&o->amount, out->amount);
        if (out->outcome == OUTCOME_EXEMPT)
            bad |= add32(&o->exempt_minutes, out->minutes);
        if (held & GRANT_DIALOUT_USCA) {
            o->addon_held = 1;
            if (!(held & GRANT_ANY_AUDIO_CONFERENCING) &&
                !o->addon_without_prereq) {
                o->addon_without_prereq = 1;
                o->first_issue_us = call->start_us;
                o->first_issue_usage_id = strdup(call->usage_id);
                if (o->first_issue_usage_id == NULL)
                    return ac_fail(err, AC_EOSERR, "out of memory");
            }
        }
    }
    if (out->outcome == OUTCOME_SPLIT || out->outcome == OUTCOME_BILLED) {
        rating_line *l = line(t, out->country, out->kind, out->per_minute,
                              out->connection_fee);
        if (l == NULL)
            return ac_fail(err, AC_EOSERR, "out of memory");
        bad |= add32(&l->calls, 1);
        bad |= add32(&l->minutes, out->billed_minutes);
        bad |= add_money(&l->exact, out->amount);
    }
    if (bad)
        return ac_fail(err, AC_EDATA, "call %s: the period's minutes, "
                       "calls or amounts no longer fit the ledger's "
                       "columns", call->usage_id);
    return AC_OK;
}

static int line_order(const void *a, const void *b)
{
    const rating_line *x = a, *y = b;
    int c = memcmp(x->country, y->country, 2);
    if (c != 0)
        return c;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->per_minute != y->per_minute)
        return x->per_minute < y->per_minute ? -1 : 1;
    if (x->connection_fee != y->connection_fee)
        return x->connection_fee < y->connection_fee ? -1 : 1;
    return 0;
}

static int org_order(const void *a, const void *b)
{
    const rating_organizer *x = a, *y = b;
    return strcmp(x->key, y->key);
}

ac_status rating_tenant_finish(rating_tenant *t, char *err)
{
    rating_totals *tot = &t->totals;
    int64_t exact = 0, subtotal = 0;
    int32_t sum = 0, billed = 0;

    assert(!t->finished);
    t->finished = 1;
    if (t->nlines > 1)
        qsort(t->lines, (size_t)t->nlines, sizeof *t->lines, line_order);
    if (t->norgs > 1)
        qsort(t->orgs, (size_t)t->norgs, sizeof *t->orgs, org_order);
    /* The maps index the old order: they are of no use from here on. */
    free(t->line_map.slot);
    free(t->org_map.slot);
    t->line_map.slot = t->org_map.slot = NULL;

    for (int32_t i = 0; i < t->nlines; i++) {
        rating_line *l = &t->lines[i];
        l->amount = money_round_minor(l->exact, t->minor_unit);
        if (add_money(&exact, l->exact) || add_money(&subtotal, l->amount) ||
            add32(&billed, l->minutes))
            return ac_fail(err, AC_EDATA, "the invoice's subtotal does "
                           "not fit the ledger's columns");
    }
    tot->subtotal = subtotal;
    if (money_tax(subtotal, t->tax_rate, t->minor_unit, &tot->tax) != 0 ||
        __builtin_add_overflow(subtotal, tot->tax, &tot->total) ||
        tot->total > LEDGER_MONEY_MAX)
        return ac_fail(err, AC_EDATA, "the invoice's total does not fit "
                       "the ledger's columns");
    for (int32_t i = 0; i < t->norgs; i++)
        t->orgs[i].fair_use_review =
            t->orgs[i].exempt_minutes > t->fair_use_minutes;

    for (int o = 0; o < OUTCOME_COUNT; o++)
        sum += tot->outcomes[o];
    if (sum != tot->calls)
        return ac_fail(err, AC_EDATA, "conservation: %d outcomes for %d "
                       "calls", sum, tot->calls);
    if (tot->pool_used < 0 || tot->pool_used > tot->pool_minutes)
        return ac_fail(err, AC_EDATA, "conservation: Zone A pool used %d "
                       "of %d minutes", tot->pool_used, tot->pool_minutes);
    if (tot->usca_pool_used < 0 ||
        tot->usca_pool_used > tot->usca_pool_minutes)
        return ac_fail(err, AC_EDATA, "conservation: US/CA pool used %d "
                       "of %d minutes", tot->usca_pool_used,
                       tot->usca_pool_minutes);
    if (exact != tot->exact_total || billed != tot->billed_minutes)
        return ac_fail(err, AC_EDATA, "conservation: invoice lines do not "
                       "add up to the rated calls");
    return AC_OK;
}

const rating_totals *rating_tenant_totals(const rating_tenant *t)
{
    return &t->totals;
}

int rating_tenant_lines(const rating_tenant *t, const rating_line **lines)
{
    *lines = t->lines;
    return t->nlines;
}

int rating_tenant_organizers(const rating_tenant *t,
                             const rating_organizer **organizers)
{
    *organizers = t->orgs;
    return t->norgs;
}
