/* rating.c: see rating.h.  The outcome rules follow SPEC section 3 step by
 * step; the comments carry the step numbers. */
#include "rating.h"

#include <assert.h>
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

int rating_sku_parse(const char *text)
{
    if (text == NULL)
        return 0;
    if (strcmp(text, "MCOMEETADD") == 0)
        return SKU_MCOMEETADD;
    if (strcmp(text, "MCOMEETACPEA") == 0)
        return SKU_MCOMEETACPEA;
    if (strcmp(text, "DIALOUT_USCA") == 0)
        return SKU_DIALOUT_USCA;
    return 0;
}

int rating_number_valid(const char *number)
{
    if (number == NULL || number[0] != '+')
        return 0;
    size_t digits = strspn(number + 1, "0123456789");
    return digits >= 6 && digits <= 15 && number[1 + digits] == '\0';
}

static int is_country(const char *c)
{
    return c != NULL && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' &&
           c[1] <= 'Z' && c[2] == '\0';
}

/* ------------------------------------------------------ reference data */

typedef struct {
    char country[3];
    rating_kind kind;
} destination;

typedef struct {
    int64_t per_minute, fee, from_us, to_us;
    int32_t next;               /* next version of the same prefix, -1 */
} rate_version;

typedef struct {
    char code[4];
    prefix_trie *trie;          /* value: first rate_version */
} currency_rates;

struct rating_ref {
    prefix_trie *destinations;
    destination *dest;
    int32_t ndest, dest_cap;
    unsigned char zone_a[26 * 26];
    currency_rates *cur;
    int ncur, cur_cap;
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
    free(ref->dest);
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
    ref->ndest++;
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

ac_status rating_ref_add_rate(rating_ref *ref, const char *currency,
                              const char *prefix, int64_t per_minute,
                              int64_t connection_fee, int64_t from_us,
                              int64_t to_us, char *err)
{
    currency_rates *cur;
    int len = 0;

    if (currency == NULL || strlen(currency) != 3)
        return ac_fail(err, AC_EDATA, "rate %s: bad currency",
                       prefix ? prefix : "(null)");
    if (prefix == NULL)
        return ac_fail(err, AC_EDATA, "rate %s: no prefix", currency);
    cur = (currency_rates *)find_currency(ref, currency);
    if (per_minute < 0 || connection_fee < 0 || to_us <= from_us)
        return ac_fail(err, AC_EDATA, "rate %s %s: negative money or empty "
                       "validity", currency, prefix);
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
    if (grow((void **)&ref->rates, &ref->rates_cap, ref->nrates,
             sizeof *ref->rates) != 0)
        return ac_fail(err, AC_EOSERR, "out of memory");
    rate_version *v = &ref->rates[ref->nrates];
    v->per_minute = per_minute;
    v->fee = connection_fee;
    v->from_us = from_us;
    v->to_us = to_us;
    v->next = -1;

    int32_t head = prefix_longest(cur->trie, prefix, &len);
    if (head >= 0 && (size_t)len == strlen(prefix)) {
        /* Another version of the same prefix: chain it in. */
        while (ref->rates[head].next >= 0)
            head = ref->rates[head].next;
        ref->rates[head].next = ref->nrates;
    } else {
        ac_status rc = prefix_add(cur->trie, prefix, ref->nrates, err);
        if (rc != AC_OK)
            return rc;
    }
    ref->nrates++;
    return AC_OK;
}

int rating_ref_destination(const rating_ref *ref, const char *digits,
                           char country[3], rating_kind *kind,
                           int *prefix_len)
{
    int32_t i = prefix_longest(ref->destinations, digits, prefix_len);
    if (i < 0)
        return 0;
    memcpy(country, ref->dest[i].country, 3);
    *kind = ref->dest[i].kind;
    return 1;
}

int rating_ref_rate(const rating_ref *ref, const char *currency,
                    const char *digits, int64_t t_us, int64_t *per_minute,
                    int64_t *connection_fee, int *prefix_len)
{
    const currency_rates *cur = find_currency(ref, currency);
    int32_t heads[PREFIX_MAX_DIGITS];
    int lens[PREFIX_MAX_DIGITS];

    if (cur == NULL)
        return 0;
    int n = prefix_all(cur->trie, digits, heads, lens, PREFIX_MAX_DIGITS);
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

/* ------------------------------------------------------------ licences */

typedef struct {
    char *user;
    int sku;
    int64_t from_us, to_us;
} holding;

struct rating_licences {
    holding *h;
    int32_t n, cap;
};

rating_licences *rating_licences_new(void)
{
    return calloc(1, sizeof(rating_licences));
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

ac_status rating_licences_add(rating_licences *lic, const char *user,
                              int sku_bit, int64_t from_us, int64_t to_us,
                              char *err)
{
    if (lic->n > 0 && strcmp(lic->h[lic->n - 1].user, user) > 0)
        return ac_fail(err, AC_EINTERNAL, "licences not in user order");
    if (grow((void **)&lic->h, &lic->cap, lic->n, sizeof *lic->h) != 0)
        return ac_fail(err, AC_EOSERR, "out of memory");
    holding *h = &lic->h[lic->n];
    h->user = strdup(user);
    if (h->user == NULL)
        return ac_fail(err, AC_EOSERR, "out of memory");
    h->sku = sku_bit;
    h->from_us = from_us;
    h->to_us = to_us;
    lic->n++;
    return AC_OK;
}

int rating_licences_held(const rating_licences *lic, const char *user,
                         int64_t t_us)
{
    int32_t lo = 0, hi = lic->n;
    int held = 0;

    if (user == NULL)
        return 0;
    while (lo < hi) {           /* first holding with h.user >= user */
        int32_t mid = lo + (hi - lo) / 2;
        if (strcmp(lic->h[mid].user, user) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int32_t i = lo; i < lic->n && strcmp(lic->h[i].user, user) == 0;
         i++)
        if (lic->h[i].from_us <= t_us && t_us < lic->h[i].to_us)
            held |= lic->h[i].sku;
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

struct rating_tenant {
    const rating_ref *ref;
    const rating_licences *lic;
    const char *currency;
    int32_t pool_left;
    int32_t fair_use_minutes;
    int64_t last_start_us;
    rating_totals totals;
    rating_line *lines;
    int32_t nlines, lines_cap;
    index_map line_map;
    rating_organizer *orgs;
    int32_t norgs, orgs_cap;
    index_map org_map;
    int finished;
};

static uint64_t line_hash(const char country[3], int64_t pm, int64_t fee)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = hash_bytes(country, 2, h);
    h = hash_bytes(&pm, sizeof pm, h);
    return hash_bytes(&fee, sizeof fee, h);
}

static uint64_t line_hash_at(const void *ctx, int32_t i)
{
    const rating_tenant *t = ctx;
    const rating_line *l = &t->lines[i];
    return line_hash(l->country, l->per_minute, l->connection_fee);
}

static uint64_t org_hash(const char *id)
{
    return hash_bytes(id, strlen(id), 0xcbf29ce484222325ULL);
}

static uint64_t org_hash_at(const void *ctx, int32_t i)
{
    const rating_tenant *t = ctx;
    return org_hash(t->orgs[i].id);
}

rating_tenant *rating_tenant_new(const rating_ref *ref,
                                 const rating_licences *lic,
                                 const char *currency, int32_t pool_minutes,
                                 int32_t fair_use_minutes)
{
    rating_tenant *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->ref = ref;
    t->lic = lic;
    t->currency = currency;
    t->pool_left = pool_minutes;
    t->fair_use_minutes = fair_use_minutes;
    t->totals.pool_minutes = pool_minutes;
    t->last_start_us = INT64_MIN;
    if (map_grow(&t->line_map, line_hash_at, t) != 0 ||
        map_grow(&t->org_map, org_hash_at, t) != 0) {
        rating_tenant_free(t);
        return NULL;
    }
    return t;
}

void rating_tenant_free(rating_tenant *t)
{
    if (t == NULL)
        return;
    for (int32_t i = 0; i < t->norgs; i++)
        free(t->orgs[i].id);
    free(t->orgs);
    free(t->lines);
    free(t->line_map.slot);
    free(t->org_map.slot);
    free(t);
}

/* The organizer record of id, created on first sight; NULL when out of
 * memory. */
static rating_organizer *organizer(rating_tenant *t, const char *id)
{
    uint32_t j = (uint32_t)org_hash(id) & t->org_map.mask;
    for (; t->org_map.slot[j] != 0; j = (j + 1) & t->org_map.mask) {
        rating_organizer *o = &t->orgs[t->org_map.slot[j] - 1];
        if (strcmp(o->id, id) == 0)
            return o;
    }
    if ((uint32_t)(t->norgs + 1) * 2 > t->org_map.mask) {
        if (map_grow(&t->org_map, org_hash_at, t) != 0)
            return NULL;
        return organizer(t, id);    /* find the new free slot */
    }
    if (grow((void **)&t->orgs, &t->orgs_cap, t->norgs, sizeof *t->orgs))
        return NULL;
    rating_organizer *o = &t->orgs[t->norgs];
    memset(o, 0, sizeof *o);
    o->id = strdup(id);
    if (o->id == NULL)
        return NULL;
    t->org_map.slot[j] = ++t->norgs;
    return o;
}

/* The invoice line of (country, per_minute, fee), created on first sight;
 * NULL when out of memory. */
static rating_line *line(rating_tenant *t, const char country[3],
                         int64_t pm, int64_t fee)
{
    uint32_t j = (uint32_t)line_hash(country, pm, fee) & t->line_map.mask;
    for (; t->line_map.slot[j] != 0; j = (j + 1) & t->line_map.mask) {
        rating_line *l = &t->lines[t->line_map.slot[j] - 1];
        if (memcmp(l->country, country, 2) == 0 && l->per_minute == pm &&
            l->connection_fee == fee)
            return l;
    }
    if ((uint32_t)(t->nlines + 1) * 2 > t->line_map.mask) {
        if (map_grow(&t->line_map, line_hash_at, t) != 0)
            return NULL;
        return line(t, country, pm, fee);
    }
    if (grow((void **)&t->lines, &t->lines_cap, t->nlines,
             sizeof *t->lines))
        return NULL;
    rating_line *l = &t->lines[t->nlines];
    memset(l, 0, sizeof *l);
    memcpy(l->country, country, 3);
    l->per_minute = pm;
    l->connection_fee = fee;
    t->line_map.slot[j] = ++t->nlines;
    return l;
}

static void reject(rating_result *out, const char *reason)
{
    out->outcome = OUTCOME_REJECTED;
    out->reason = reason;
    out->pool_minutes = 0;
    out->billed_minutes = 0;
    out->has_rate = 0;
    out->per_minute = 0;
    out->connection_fee = 0;
    out->amount = 0;
}

/* Decide the outcome of one call (SPEC section 3, steps 1-10).  Draws on
 * the pool only when the outcome is final. */
static void decide(rating_tenant *t, const rating_call *c, int held,
                   rating_result *out)
{
    const rating_ref *ref = t->ref;
    rating_kind kind;

    memset(out, 0, sizeof *out);
    out->kind = -1;
    if (c->has_duration && c->duration_seconds >= 0)
        out->minutes = money_minutes(c->duration_seconds);

    if (!c->has_duration || c->duration_seconds < 0) {          /* 1 */
        reject(out, "INVALID_DURATION");
        return;
    }
    if (!rating_number_valid(c->number)) {                      /* 2 */
        reject(out, "INVALID_NUMBER");
        return;
    }
    if (c->organizer_id == NULL) {                              /* 3 */
        reject(out, "NO_ORGANIZER");
        return;
    }
    const char *digits = c->number + 1;
    if (!rating_ref_destination(ref, digits, out->country, &kind,  /* 4 */
                                &out->dest_prefix_len)) {
        reject(out, "UNKNOWN_DESTINATION");
        return;
    }
    out->kind = (int)kind;
    if (!(held & (SKU_MCOMEETADD | SKU_MCOMEETACPEA))) {        /* 5 */
        reject(out, "ORGANIZER_NOT_LICENSED");
        return;
    }
    if (c->duration_seconds == 0) {                             /* 6 */
        out->outcome = OUTCOME_ZERO;
        return;
    }
    int plain = kind == KIND_GEOGRAPHIC || kind == KIND_MOBILE ||
                kind == KIND_TOLL_FREE;
    int us_ca = strcmp(out->country, "US") == 0 ||
                strcmp(out->country, "CA") == 0;
    if ((held & SKU_DIALOUT_USCA) && us_ca && plain) {          /* 7 */
        out->outcome = OUTCOME_EXEMPT;
        return;
    }
    int32_t m = out->minutes, from_pool = 0;
    if ((held & SKU_MCOMEETADD) && plain &&                     /* 8, 9 */
        rating_ref_zone_a(ref, out->country))
        from_pool = t->pool_left >= m ? m : t->pool_left;
    if (from_pool == m) {
        out->outcome = OUTCOME_POOL;
        out->pool_minutes = m;
        t->pool_left -= m;
        return;
    }
    if (!rating_ref_rate(ref, t->currency, digits, c->start_us,  /* 10 */
                         &out->per_minute, &out->connection_fee,
                         &out->rate_prefix_len)) {
        reject(out, "NO_RATE");
        return;
    }
    out->has_rate = 1;
    out->outcome = from_pool > 0 ? OUTCOME_SPLIT : OUTCOME_BILLED;
    out->pool_minutes = from_pool;
    out->billed_minutes = m - from_pool;
    out->amount = (int64_t)out->billed_minutes * out->per_minute +
                  out->connection_fee;
    t->pool_left -= from_pool;
}

ac_status rating_tenant_rate(rating_tenant *t, const rating_call *call,
                             rating_result *out, char *err)
{
    int held = rating_licences_held(t->lic, call->organizer_id,
                                    call->start_us);

    assert(!t->finished);
    assert(call->start_us >= t->last_start_us);
    t->last_start_us = call->start_us;
    decide(t, call, held, out);

    rating_totals *tot = &t->totals;
    tot->calls++;
    tot->outcomes[out->outcome]++;
    tot->pool_used += out->pool_minutes;
    tot->billed_minutes += out->billed_minutes;
    tot->exact_total += out->amount;
    if (out->outcome == OUTCOME_EXEMPT)
        tot->exempt_minutes += out->minutes;

    if (call->organizer_id != NULL) {
        rating_organizer *o = organizer(t, call->organizer_id);
        if (o == NULL)
            return ac_fail(err, AC_EOSERR, "out of memory");
        o->calls++;
        if (out->outcome == OUTCOME_REJECTED)
            o->rejected_calls++;
        else
            o->minutes += out->minutes;
        o->pool_minutes += out->pool_minutes;
        o->billed_minutes += out->billed_minutes;
        o->amount += out->amount;
        if (out->outcome == OUTCOME_EXEMPT)
            o->exempt_minutes += out->minutes;
        if (held & SKU_DIALOUT_USCA) {
            o->addon_held = 1;
            if (!(held & (SKU_MCOMEETADD | SKU_MCOMEETACPEA)) &&
                !o->addon_without_prereq) {
                o->addon_without_prereq = 1;
                o->first_issue_us = call->start_us;
            }
        }
    }
    if (out->outcome == OUTCOME_SPLIT || out->outcome == OUTCOME_BILLED) {
        rating_line *l = line(t, out->country, out->per_minute,
                              out->connection_fee);
        if (l == NULL)
            return ac_fail(err, AC_EOSERR, "out of memory");
        l->calls++;
        l->minutes += out->billed_minutes;
        l->exact += out->amount;
    }
    return AC_OK;
}

static int line_order(const void *a, const void *b)
{
    const rating_line *x = a, *y = b;
    int c = memcmp(x->country, y->country, 2);
    if (c != 0)
        return c;
    if (x->per_minute != y->per_minute)
        return x->per_minute < y->per_minute ? -1 : 1;
    if (x->connection_fee != y->connection_fee)
        return x->connection_fee < y->connection_fee ? -1 : 1;
    return 0;
}

static int org_order(const void *a, const void *b)
{
    const rating_organizer *x = a, *y = b;
    return strcmp(x->id, y->id);
}

ac_status rating_tenant_finish(rating_tenant *t, char *err)
{
    rating_totals *tot = &t->totals;
    int64_t exact = 0, total = 0;
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
        l->amount = money_round_cents(l->exact);
        exact += l->exact;
        total += l->amount;
        billed += l->minutes;
    }
    tot->total = total;
    for (int32_t i = 0; i < t->norgs; i++)
        t->orgs[i].fair_use_review =
            t->orgs[i].exempt_minutes > t->fair_use_minutes;

    for (int o = 0; o < OUTCOME_COUNT; o++)
        sum += tot->outcomes[o];
    if (sum != tot->calls)
        return ac_fail(err, AC_EDATA, "conservation: %d outcomes for %d "
                       "calls", sum, tot->calls);
    if (tot->pool_used < 0 || tot->pool_used > tot->pool_minutes)
        return ac_fail(err, AC_EDATA, "conservation: pool used %d of %d "
                       "minutes", tot->pool_used, tot->pool_minutes);
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
