/* unit_test.c: fast unit tests of the pure parts of acbill (no database):
 * money and minutes, number validation, the prefix trie, destinations
 * with the real reference data (sql/seed/ CSV files), rates, licences, the
 * outcome rules and pool of docs/billing-rules.md 3, the worked example of
 * docs/billing-rules.md 5.1 (tenant T1) call by call, and SHA-256.
 *
 * Every expected value is written out here; nothing is computed with the
 * code under test.  Failures of table-driven checks carry a message with
 * the row and the expected and actual values. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testmain.h"

#include "bill/bill.h"
#include "civil.h"
#include "db.h"
#include "money.h"
#include "rate/prefix.h"
#include "rate/rating.h"
#include "sha256.h"

/* ------------------------------------------------------------ helpers */

/* An assertion with a formatted message (CUnit copies the text). */
static void check(int ok, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void check(int ok, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (ok) {
        CU_assertImplementation(CU_TRUE, (unsigned)line, "", __FILE__, "",
                                CU_FALSE);
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    CU_assertImplementation(CU_FALSE, (unsigned)line, msg, __FILE__, "",
                            CU_FALSE);
}
#define CHECK(cond, ...) check((cond) != 0, __LINE__, __VA_ARGS__)
#define CHECK_I64(got, want, what)                                         \
    do {                                                                  \
        long long got_ = (long long)(got), want_ = (long long)(want);     \
        CHECK(got_ == want_, "%s: expected %lld, got %lld", (what),       \
              want_, got_);                                               \
    } while (0)
#define CHECK_STR(got, want, what)                                         \
    do {                                                                  \
        const char *got_ = (got), *want_ = (want);                        \
        CHECK((got_ == NULL && want_ == NULL) ||                          \
                  (got_ != NULL && want_ != NULL &&                       \
                   strcmp(got_, want_) == 0),                             \
              "%s: expected '%s', got '%s'", (what),                      \
              want_ ? want_ : "(null)", got_ ? got_ : "(null)");          \
    } while (0)

/* Microseconds since the epoch of a UTC date and time (civil_days() is
 * checked against known dates in the "calendar" suite). */
static int64_t US(int y, int mo, int d, int h, int mi, int s)
{
    return ((civil_days(y, mo, d) * 86400) + h * 3600 + mi * 60 + s) *
           INT64_C(1000000);
}

/* ------------------------------------------------- reference data */

static char path_buf[4096];

static const char *src_path(const char *rel)
{
    snprintf(path_buf, sizeof path_buf, "%s/%s", test_src_dir(), rel);
    return path_buf;
}

/* Load sql/seed/destinations.csv into ref; returns the rows loaded or -1. */
static int load_destinations(rating_ref *ref)
{
    char line[256], err[AC_ERR_MAX];
    int n = 0, first = 1;
    FILE *f = fopen(src_path("sql/seed/destinations.csv"), "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (first) {            /* header: prefix,country,kind */
            first = 0;
            if (strcmp(line, "prefix,country,kind") != 0)
                break;
            continue;
        }
        if (line[0] == '\0')
            continue;
        char *c1 = strchr(line, ',');
        char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (c2 == NULL) {
            n = -1;
            break;
        }
        *c1 = *c2 = '\0';
        if (rating_ref_add_destination(ref, line, c1 + 1, c2 + 1, err) !=
            AC_OK) {
            fprintf(stderr, "unit_test: destinations.csv: %s\n", err);
            n = -1;
            break;
        }
        n++;
    }
    fclose(f);
    return first ? -1 : n;
}

/* Load sql/seed/destination_lengths.csv (prefix,digits,country,kind) into
 * ref, after its destinations; returns the rows loaded or -1. */
static int load_destination_lengths(rating_ref *ref)
{
    char line[256], err[AC_ERR_MAX];
    int n = 0, first = 1;
    FILE *f = fopen(src_path("sql/seed/destination_lengths.csv"), "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (first) {
            first = 0;
            if (strcmp(line, "prefix,digits,country,kind") != 0)
                break;
            continue;
        }
        if (line[0] == '\0')
            continue;
        char *c1 = strchr(line, ',');
        char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        char *c3 = c2 ? strchr(c2 + 1, ',') : NULL;
        if (c3 == NULL) {
            n = -1;
            break;
        }
        *c1 = *c2 = *c3 = '\0';
        if (rating_ref_add_destination_length(ref, line, atoi(c1 + 1),
                                              c2 + 1, c3 + 1, err) != AC_OK) {
            fprintf(stderr, "unit_test: destination_lengths.csv: %s\n",
                    err);
            n = -1;
            break;
        }
        n++;
    }
    fclose(f);
    return first ? -1 : n;
}

/* Load sql/seed/zone_a.csv into ref; returns the rows loaded or -1. */
static int load_zone_a(rating_ref *ref)
{
    char line[64], err[AC_ERR_MAX];
    int n = 0, first = 1;
    FILE *f = fopen(src_path("sql/seed/zone_a.csv"), "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (first) {
            first = 0;
            if (strcmp(line, "country") != 0)
                break;
            continue;
        }
        if (line[0] == '\0')
            continue;
        if (rating_ref_add_zone_a(ref, line, err) != AC_OK) {
            n = -1;
            break;
        }
        n++;
    }
    fclose(f);
    return first ? -1 : n;
}

/* The USD rates of docs/billing-rules.md 5, in force from 2026-01-01. */
static int add_spec_rates(rating_ref *ref)
{
    static const struct {
        const char *prefix;
        int64_t pm, fee;
    } r[] = {
        {"1", 200, 0}, {"1787", 200, 0}, {"1876", 2500, 500},
        {"1900", 10000, 0}, {"44", 300, 0}, {"33", 350, 0},
        {"263", 4000, 0},
    };
    char err[AC_ERR_MAX];
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (rating_ref_add_rate(ref, "USD", r[i].prefix, r[i].pm, r[i].fee,
                                US(2026, 1, 1, 0, 0, 0), RATING_FOREVER,
                                err) != AC_OK)
            return -1;
    return 0;
}

/* Reference data of the suites: the real destinations and Zone A, plus
 * the worked example's USD rates (g_ref), and the same without any rate but USD "1"
 * (g_ref_sparse, for NO_RATE). */
static rating_ref *g_ref, *g_ref_sparse;
static int g_ndest, g_nlen, g_nzone;

static int ref_init(void)
{
    char err[AC_ERR_MAX];

    g_ref = rating_ref_new();
    g_ref_sparse = rating_ref_new();
    if (g_ref == NULL || g_ref_sparse == NULL)
        return 1;
    g_ndest = load_destinations(g_ref);
    g_nlen = load_destination_lengths(g_ref);
    g_nzone = load_zone_a(g_ref);
    if (g_ndest <= 0 || g_nlen <= 0 || g_nzone <= 0 ||
        add_spec_rates(g_ref) != 0)
        return 1;
    if (load_destinations(g_ref_sparse) != g_ndest ||
        load_destination_lengths(g_ref_sparse) != g_nlen ||
        load_zone_a(g_ref_sparse) != g_nzone ||
        rating_ref_add_rate(g_ref_sparse, "USD", "1", 200, 0,
                            US(2026, 1, 1, 0, 0, 0), RATING_FOREVER,
                            err) != AC_OK)
        return 1;
    return 0;
}

static int ref_clean(void)
{
    rating_ref_free(g_ref);
    rating_ref_free(g_ref_sparse);
    g_ref = g_ref_sparse = NULL;
    return 0;
}

/* =============================================================== money */

static void test_minutes(void)
{
    static const struct { int32_t s, m; } v[] = {
        {0, 0}, {1, 1}, {59, 1}, {60, 1}, {61, 2}, {119, 2}, {120, 2},
        {121, 3}, {1830, 31}, {3600, 60}, {5400, 90},
        {2147483647, 35791395},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        CHECK(money_minutes(v[i].s) == v[i].m,
              "money_minutes(%d): expected %d, got %d", v[i].s, v[i].m,
              money_minutes(v[i].s));
}

static void test_money_parse_ok(void)
{
    static const struct { const char *text; int64_t units; } v[] = {
        {"0.0200", 200}, {"12", 120000}, {"-1.5", -15000},
        {"0.12300", 1230}, {"0", 0}, {"-0", 0}, {"0.0000", 0},
        {"+1.5", 15000}, {"0.0001", 1}, {"-0.0001", -1},
        {"1.0000000", 10000}, {"0.123000", 1230}, {"0.2500", 2500},
        {"2.550000000000", 25500}, {"1.0000", 10000},
        {"007.5", 75000}, {"123.4567", 1234567},
        {"99999999999999.9999", INT64_C(999999999999999999)},
        {"-99999999999999.9999", -INT64_C(999999999999999999)},
        {"99999999999999", INT64_C(999999999999990000)},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int64_t out = 7;
        ac_status rc = money_parse(v[i].text, &out);
        CHECK(rc == AC_OK && out == v[i].units,
              "money_parse(\"%s\"): expected OK %lld, got rc %d, %lld",
              v[i].text, (long long)v[i].units, (int)rc, (long long)out);
    }
}

static void test_money_parse_rejects(void)
{
    static const char *const bad[] = {
        "0.12345", "", ".", "1e3", "abc", " 1", "1 ", "-", "+", "--1",
        "1,5", "1.2.3", "0x10", "1.00001", "12a", "-.", "0.000001",
        "0.12340001",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t out = 42;
        ac_status rc = money_parse(bad[i], &out);
        CHECK(rc == AC_EDATA && out == 42,
              "money_parse(\"%s\"): expected AC_EDATA and *out untouched, "
              "got rc %d, *out %lld", bad[i], (int)rc, (long long)out);
    }
    int64_t out = 42;
    CU_ASSERT_EQUAL(money_parse(NULL, &out), AC_EDATA);
    CU_ASSERT_EQUAL(out, 42);
}

/* money_parse in a child process: an overflow inside it is undefined
 * behaviour, which the sanitizer build turns into an abort; the child
 * keeps that from ending the whole run.  Returns 0 and fills *rc and *out
 * when the child finished, else -1 with the signal or status in *how. */
static int parse_in_child(const char *text, ac_status *rc, int64_t *out,
                          int *how)
{
    int fd[2], st = 0;
    struct { ac_status rc; int64_t out; } res;

    memset(&res, 0, sizeof res);        /* padding too: it goes to write */
    res.out = 42;
    if (pipe(fd) != 0)
        return *how = -1, -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return *how = -1, -1;
    }
    if (pid == 0) {
        close(fd[0]);
        res.rc = money_parse(text, &res.out);
        _exit(write(fd[1], &res, sizeof res) == (ssize_t)sizeof res ? 0 : 1);
    }
    close(fd[1]);
    ssize_t n = read(fd[0], &res, sizeof res);
    close(fd[0]);
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || n != (ssize_t)sizeof res) {
        *how = WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st);
        return -1;
    }
    *rc = res.rc;
    *out = res.out;
    return 0;
}

/* |value| must stay below 10^14 currency units (10^18 units). */
static void test_money_parse_overflow(void)
{
    static const char *const bad[] = {
        "100000000000000", "-100000000000000", "100000000000000.0",
        "1000000000000000", "1000000000000000.5", "99999999999999999",
        "999999999999999999", "10000000000000000000",
        "99999999999999999999999", "99999999999999999.9999",
        "1.0000000000000000009",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ac_status rc = AC_OK;
        int64_t out = 0;
        int how = 0;
        if (parse_in_child(bad[i], &rc, &out, &how) != 0) {
            CHECK(0, "money_parse(\"%s\"): the child process died (signal "
                  "or status %d: undefined behaviour?)", bad[i], how);
            continue;
        }
        CHECK(rc == AC_EDATA && out == 42,
              "money_parse(\"%s\"): expected AC_EDATA and *out untouched, "
              "got rc %d, *out %lld", bad[i], (int)rc, (long long)out);
    }
}

static void test_money_format4(void)
{
    static const struct { int64_t units; const char *text; } v[] = {
        {0, "0.0000"}, {200, "0.0200"}, {-15000, "-1.5000"},
        {120000, "12.0000"}, {1, "0.0001"}, {-1, "-0.0001"},
        {1050, "0.1050"}, {51450, "5.1450"},
        {INT64_C(999999999999999999), "99999999999999.9999"},
        {INT64_MIN, "-922337203685477.5808"},
    };
    char buf[64];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        money_format4(v[i].units, buf, sizeof buf);
        CHECK_STR(buf, v[i].text, "money_format4");
    }
    /* A short buffer keeps the start, as snprintf would. */
    char small[4] = "xxx";
    money_format4(-15000, small, sizeof small);
    CHECK_STR(small, "-1.", "money_format4 truncated");
    money_format4(-15000, small, 0);
    CHECK_STR(small, "-1.", "money_format4 into nothing");
    /* Round trip through money_parse. */
    int64_t back = 0;
    money_format4(-1234567, buf, sizeof buf);
    CU_ASSERT_EQUAL(money_parse(buf, &back), AC_OK);
    CU_ASSERT_EQUAL(back, -1234567);
}

static void test_money_round(void)
{
    static const struct { int64_t in, out; const char *two; } v[] = {
        {0, 0, "0.00"}, {1050, 1100, "0.11"}, {1049, 1000, "0.10"},
        {25500, 25500, "2.55"}, {-1050, -1100, "-0.11"},
        {-1049, -1000, "-0.10"}, {49, 0, "0.00"}, {50, 100, "0.01"},
        {-49, 0, "0.00"}, {-50, -100, "-0.01"}, {150, 200, "0.02"},
        {10500, 10500, "1.05"}, {51450, 51500, "5.15"},
        {51500, 51500, "5.15"}, {1099, 1100, "0.11"}, {9950, 10000, "1.00"},
        {-9950, -10000, "-1.00"}, {12345678, 12345700, "1234.57"},
        {400, 400, "0.04"}, {4000, 4000, "0.40"},
    };
    char buf[64];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int64_t r = money_round_cents(v[i].in);
        CHECK(r == v[i].out, "money_round_cents(%lld): expected %lld, "
              "got %lld", (long long)v[i].in, (long long)v[i].out,
              (long long)r);
        money_format2(v[i].in, buf, sizeof buf);
        CHECK(strcmp(buf, v[i].two) == 0, "money_format2(%lld): expected "
              "'%s', got '%s'", (long long)v[i].in, v[i].two, buf);
    }
}

/* =================================================== number validation */

static void test_number_valid(void)
{
    /* docs/billing-rules.md 3, "Numbers": spaces removed, '+' and 6 to 15 characters, the
     * last 1 to 4 of which may be '*' (masked). */
    static const struct { const char *n; int ok; } v[] = {
        {"+999123", 1}, {"+12345", 0}, {"+123456789012345", 1},
        {"+1234567890123456", 0}, {"12125550100", 0},
        {"+1212555010a", 0}, {"+", 0}, {"", 0}, {"+12125550100", 1},
        {"+1 2125550100", 1}, {"++12125550100", 0}, {"+12125550100 ", 1},
        {" +12125550100", 1}, {"+-12125550100", 0}, {"+442071234567", 1},
        {"+49 30 1234 5***", 1}, {"+33 1 42 68 ****", 1},
        {"+3314268*****", 0}, {"+4930123*4***", 0}, {"+12*", 0},
        {"+123***", 1}, {"+49 30 1234 5 * * *", 1}, {"+49\t301234", 0},
        {"+1234567890123***", 0}, {"+123456789012***", 1}, {"+*******", 0},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        CHECK(rating_number_valid(v[i].n) == v[i].ok,
              "rating_number_valid(\"%s\"): expected %d", v[i].n, v[i].ok);
    CU_ASSERT_EQUAL(rating_number_valid(NULL), 0);

    rating_number n;
    CU_ASSERT_FATAL(rating_number_parse("+49 30 1234 5***", &n));
    CU_ASSERT_STRING_EQUAL(n.text, "+493012345***");
    CU_ASSERT_STRING_EQUAL(n.digits, "493012345");
    CU_ASSERT_EQUAL(n.visible, 9);
    CU_ASSERT_EQUAL(n.masked, 1);
    CU_ASSERT_FATAL(rating_number_parse("+81312345678", &n));
    CU_ASSERT_STRING_EQUAL(n.digits, "81312345678");
    CU_ASSERT_EQUAL(n.masked, 0);
}

static void test_id_normalise(void)
{
    char out[64], tiny[4];
    CU_ASSERT_EQUAL(rating_id_normalise(" KENJI@Northwind.example\t\n", out,
                                        sizeof out), 23);
    CU_ASSERT_STRING_EQUAL(out, "kenji@northwind.example");
    /* only ASCII letters fold; other bytes are kept as they are */
    CU_ASSERT_EQUAL(rating_id_normalise("\xc3\x89MILE", out, sizeof out),
                    6);
    CU_ASSERT_STRING_EQUAL(out, "\xc3\x89mile");
    CU_ASSERT_EQUAL(rating_id_normalise("  ", out, sizeof out), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(rating_id_normalise(NULL, out, sizeof out), 0);
    CU_ASSERT_EQUAL(rating_id_normalise("ABCDEF", tiny, sizeof tiny), 6);
    CU_ASSERT_STRING_EQUAL(tiny, "abc");
    CU_ASSERT_EQUAL(rating_id_blank(" \t"), 1);
    CU_ASSERT_EQUAL(rating_id_blank(NULL), 1);
    CU_ASSERT_EQUAL(rating_id_blank(" x"), 0);
}

/* ========================================================== prefix trie */

static void test_prefix_trie(void)
{
    char err[AC_ERR_MAX];
    int32_t out[PREFIX_MAX_DIGITS];
    int lens[PREFIX_MAX_DIGITS], len = -1;
    prefix_trie *t = prefix_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(prefix_longest(t, "12345", &len), -1);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_EQUAL(prefix_add(t, "1", 10, err), AC_OK);
    CU_ASSERT_EQUAL(prefix_add(t, "1876", 11, err), AC_OK);
    CU_ASSERT_EQUAL(prefix_add(t, "187", 12, err), AC_OK);
    CU_ASSERT_EQUAL(prefix_add(t, "44", 0, err), AC_OK);
    CU_ASSERT_EQUAL(prefix_add(t, "123456789012345", 13, err), AC_OK);
    /* malformed, duplicate, negative value */
    CU_ASSERT_EQUAL(prefix_add(t, "", 1, err), AC_EDATA);
    CU_ASSERT_EQUAL(prefix_add(t, "12a", 1, err), AC_EDATA);
    CU_ASSERT_EQUAL(prefix_add(t, "+1", 1, err), AC_EDATA);
    CU_ASSERT_EQUAL(prefix_add(t, "1234567890123456", 1, err), AC_EDATA);
    CU_ASSERT_EQUAL(prefix_add(t, "1876", 99, err), AC_EDATA);
    CU_ASSERT_EQUAL(prefix_add(t, "55", -1, err), AC_EDATA);
    /* the failed adds changed nothing */
    CU_ASSERT_EQUAL(prefix_longest(t, "18765551234", &len), 11);
    CU_ASSERT_EQUAL(len, 4);
    CU_ASSERT_EQUAL(prefix_longest(t, "55", NULL), -1);
    CU_ASSERT_EQUAL(prefix_longest(t, "12", NULL), 10);

    CU_ASSERT_EQUAL(prefix_longest(t, "18775551234", &len), 12);
    CU_ASSERT_EQUAL(len, 3);
    CU_ASSERT_EQUAL(prefix_longest(t, "12125550100", &len), 10);
    CU_ASSERT_EQUAL(len, 1);
    CU_ASSERT_EQUAL(prefix_longest(t, "1", &len), 10);
    CU_ASSERT_EQUAL(len, 1);
    CU_ASSERT_EQUAL(prefix_longest(t, "442071234567", &len), 0);
    CU_ASSERT_EQUAL(len, 2);
    CU_ASSERT_EQUAL(prefix_longest(t, "4", &len), -1);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_EQUAL(prefix_longest(t, "", &len), -1);
    /* stops at the first non-digit */
    CU_ASSERT_EQUAL(prefix_longest(t, "18x76", &len), 10);
    CU_ASSERT_EQUAL(len, 1);
    CU_ASSERT_EQUAL(prefix_longest(t, "123456789012345", &len), 13);
    CU_ASSERT_EQUAL(len, 15);
    CU_ASSERT_EQUAL(prefix_longest(t, "1234567890123456789", &len), 13);
    CU_ASSERT_EQUAL(len, 15);

    int n = prefix_all(t, "18765551234", out, lens, PREFIX_MAX_DIGITS);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_EQUAL(out[0], 11);
    CU_ASSERT_EQUAL(lens[0], 4);
    CU_ASSERT_EQUAL(out[1], 12);
    CU_ASSERT_EQUAL(lens[1], 3);
    CU_ASSERT_EQUAL(out[2], 10);
    CU_ASSERT_EQUAL(lens[2], 1);
    CU_ASSERT_EQUAL(prefix_all(t, "18765551234", out, NULL, 2), 2);
    CU_ASSERT_EQUAL(out[0], 11);
    CU_ASSERT_EQUAL(out[1], 12);
    CU_ASSERT_EQUAL(prefix_all(t, "999", out, lens, PREFIX_MAX_DIGITS), 0);
    prefix_free(t);
    prefix_free(NULL);
}

/* Many prefixes: the node array grows several times. */
static void test_prefix_trie_many(void)
{
    char err[AC_ERR_MAX], digits[16];
    prefix_trie *t = prefix_new();
    int ok = 1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    for (int i = 0; i < 2000; i++) {
        snprintf(digits, sizeof digits, "9%05d", i * 7);
        ok &= prefix_add(t, digits, i, err) == AC_OK;
    }
    CU_ASSERT(ok);
    for (int i = 0; i < 2000; i++) {
        int len = 0;
        snprintf(digits, sizeof digits, "9%05d123", i * 7);
        int32_t v = prefix_longest(t, digits, &len);
        if (v != i || len != 6) {
            CHECK(0, "prefix_longest(%s): expected %d/6, got %d/%d", digits,
                  i, (int)v, len);
            break;
        }
    }
    CU_ASSERT_EQUAL(prefix_longest(t, "900001", NULL), -1);
    prefix_free(t);
}

/* ===================================== destinations (real reference) */

static void test_reference_loaded(void)
{
    /* sql/seed/destinations.csv, generated from libphonenumber's metadata
     * by sql/seed/gen-destinations.py (make seed). */
    CU_ASSERT_EQUAL(g_ndest, 9806);
    CU_ASSERT_EQUAL(g_nzone, 44);          /* "the 44 Zone A countries" */
}

static void expect_dest(int line, const char *number, const char *country,
                        int kind, int plen)
{
    char c[3] = "?";
    rating_kind k = KIND_COUNT;
    int len = -1;
    int found = rating_ref_destination(g_ref, number + 1,
                                       (int)strlen(number) - 1, c, &k, &len);

    if (country == NULL) {
        check(!found, line, "%s: expected no destination, got %s %s/%d",
              number, c, rating_kind_name(k), len);
        return;
    }
    check(found && strcmp(c, country) == 0 && (int)k == kind &&
              len == plen, line,
          "%s: expected %s %s prefix %d, got found=%d %s %s prefix %d",
          number, country, rating_kind_name((rating_kind)kind), plen,
          found, found ? c : "-", found ? rating_kind_name(k) : "-", len);
}
#define EXPECT_DEST(n, c, k, l) expect_dest(__LINE__, n, c, k, l)

static void test_destinations(void)
{
    /* docs/billing-rules.md 5.1: libphonenumber types +1 876 555 as a Jamaican mobile range
     * and +263 7 as Zimbabwe's mobile prefix. */
    EXPECT_DEST("+18765551234", "JM", KIND_MOBILE, 5);
    EXPECT_DEST("+17875550100", "PR", KIND_GEOGRAPHIC, 4);
    EXPECT_DEST("+19005550100", "US", KIND_PREMIUM, 4);
    EXPECT_DEST("+15145550100", "CA", KIND_GEOGRAPHIC, 4);
    EXPECT_DEST("+14165550100", "CA", KIND_GEOGRAPHIC, 4);
    EXPECT_DEST("+18005550100", "US", KIND_TOLL_FREE, 4);
    EXPECT_DEST("+12125550100", "US", KIND_GEOGRAPHIC, 4);
    EXPECT_DEST("+12025550100", "US", KIND_GEOGRAPHIC, 4);
    EXPECT_DEST("+441481256789", "GG", KIND_GEOGRAPHIC, 6);
    EXPECT_DEST("+442071234567", "GB", KIND_GEOGRAPHIC, 2);
    /* docs/billing-rules.md 5.1 call 8: a range libphonenumber does not type falls back to
     * the base row of its calling code. */
    EXPECT_DEST("+441632960000", "GB", KIND_GEOGRAPHIC, 2);
    EXPECT_DEST("+33142685300", "FR", KIND_GEOGRAPHIC, 2);
    EXPECT_DEST("+26377123456", "ZW", KIND_MOBILE, 4);
    EXPECT_DEST("+4915123456789", "DE", KIND_MOBILE, 3);
    EXPECT_DEST("+999123", NULL, 0, 0);
    EXPECT_DEST("+19995550100", NULL, 0, 0);   /* +1 999: no area code */
    EXPECT_DEST("+10005550100", NULL, 0, 0);
    /* Premium-rate and shared-cost ranges of Zone A countries (docs/billing-rules.md 1). */
    EXPECT_DEST("+449091234567", "GB", KIND_PREMIUM, 3);  /* docs/billing-rules.md 5.2 #5 */
    EXPECT_DEST("+448712345678", "GB", KIND_PREMIUM, 3);
    EXPECT_DEST("+33892123456", "FR", KIND_PREMIUM, 3);
    EXPECT_DEST("+499001123456", "DE", KIND_PREMIUM, 5);
    EXPECT_DEST("+39899123456", "IT", KIND_PREMIUM, 4);
    EXPECT_DEST("+41900123456", "CH", KIND_PREMIUM, 4);
    EXPECT_DEST("+31900123456", "NL", KIND_PREMIUM, 4);
    EXPECT_DEST("+3290123456", "BE", KIND_PREMIUM, 4);
    EXPECT_DEST("+34902123456", "ES", KIND_SHARED_COST, 4);
    EXPECT_DEST("+41848123456", "CH", KIND_SHARED_COST, 4);
    /* Toll free, personal, UAN and VoIP. */
    EXPECT_DEST("+448001234567", "GB", KIND_TOLL_FREE, 4);
    EXPECT_DEST("+498001234567", "DE", KIND_TOLL_FREE, 5);
    EXPECT_DEST("+447012345678", "GB", KIND_PERSONAL, 4);
    EXPECT_DEST("+443001234567", "GB", KIND_NON_GEOGRAPHIC, 3);
    EXPECT_DEST("+445612345678", "GB", KIND_NON_GEOGRAPHIC, 3);
    /* Mobile ranges, and territories sharing a calling code. */
    EXPECT_DEST("+33612345678", "FR", KIND_MOBILE, 3);
    EXPECT_DEST("+393123456789", "IT", KIND_MOBILE, 4);
    EXPECT_DEST("+447624123456", "IM", KIND_MOBILE, 6);
    EXPECT_DEST("+447797123456", "JE", KIND_MOBILE, 6);
    EXPECT_DEST("+441534123456", "JE", KIND_GEOGRAPHIC, 6);
    EXPECT_DEST("+77012345678", "KZ", KIND_MOBILE, 3);
    EXPECT_DEST("+77172123456", "KZ", KIND_GEOGRAPHIC, 2);
    EXPECT_DEST("+74951234567", "RU", KIND_GEOGRAPHIC, 1);
    EXPECT_DEST("+3906698123", "VA", KIND_GEOGRAPHIC, 7);
    EXPECT_DEST("+390612345678", "IT", KIND_GEOGRAPHIC, 2);
    /* +1 800 14X XXXX is the Dominican Republic's toll-free range, not the
     * US's; +1 829 261 a Dominican mobile exchange. */
    EXPECT_DEST("+18001400000", "DO", KIND_TOLL_FREE, 5);
    EXPECT_DEST("+18001412345", "DO", KIND_TOLL_FREE, 5);
    EXPECT_DEST("+18095551234", "DO", KIND_GEOGRAPHIC, 4);
    EXPECT_DEST("+18292612345", "DO", KIND_MOBILE, 7);
    EXPECT_DEST("+16586001234", "JM", KIND_GEOGRAPHIC, 4);
    /* Length rows (ref.destination_lengths): Italian mobiles +39 3[2-8]
     * have 9 or 10 national digits, 11 and 12 are voicemail. */
    EXPECT_DEST("+393331234567", "IT", KIND_MOBILE, 3);
    EXPECT_DEST("+39333123456", "IT", KIND_MOBILE, 3);
    EXPECT_DEST("+3933312345678", "IT", KIND_NON_GEOGRAPHIC, 3);
    EXPECT_DEST("+39333123456789", "IT", KIND_NON_GEOGRAPHIC, 3);
}

static void test_zone_a(void)
{
    static const char *const yes[] = {"US", "CA", "PR", "GB", "FR", "DE",
                                      "AT", "ZA"};
    static const char *const no[] = {"JM", "ZW", "GG", "JE", "IM", "EG",
                                     "XX", "", "us", "USA", "U"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        CHECK(rating_ref_zone_a(g_ref, yes[i]) == 1,
              "%s should be Zone A", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECK(rating_ref_zone_a(g_ref, no[i]) == 0,
              "%s should not be Zone A", no[i]);
    CU_ASSERT_EQUAL(rating_ref_zone_a(g_ref, NULL), 0);
}

static void test_ref_add_destination_checks(void)
{
    char err[AC_ERR_MAX], c[3];
    rating_kind k;
    int len;
    rating_ref *ref = rating_ref_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "44", "GB", "geographic",
                                               err), AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "44", "GG", "geographic",
                                               err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "33", "FR", "cellular",
                                               err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "33", "fr", "geographic",
                                               err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "33", "FRA",
                                               "geographic", err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "33", NULL, "geographic",
                                               err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "3x", "FR", "geographic",
                                               err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "4420", "GB", "personal",
                                               err), AC_OK);
    /* the rejected rows left nothing behind */
    CU_ASSERT_EQUAL(rating_ref_destination(ref, "33142685300", 11, c, &k,
                                           &len), 0);
    CU_ASSERT_EQUAL(rating_ref_destination(ref, "441632960000", 12, c, &k,
                                           &len), 1);
    CU_ASSERT_STRING_EQUAL(c, "GB");
    CU_ASSERT_EQUAL(k, KIND_GEOGRAPHIC);
    CU_ASSERT_EQUAL(rating_ref_destination(ref, "442071234567", 12, c, &k,
                                           &len), 1);
    CU_ASSERT_EQUAL(k, KIND_PERSONAL);
    CU_ASSERT_EQUAL(len, 4);
    CU_ASSERT_EQUAL(rating_ref_add_zone_a(ref, "gb", err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_zone_a(ref, "GBR", err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_zone_a(ref, "GB"), 0);
    CU_ASSERT_EQUAL(rating_ref_add_zone_a(ref, "GB", err), AC_OK);
    CU_ASSERT_EQUAL(rating_ref_zone_a(ref, "GB"), 1);
    CU_ASSERT_EQUAL(rating_ref_zone_a(ref, "ZZ"), 0);
    rating_ref_free(ref);
    rating_ref_free(NULL);
}

static void test_names(void)
{
    CU_ASSERT_STRING_EQUAL(rating_kind_name(KIND_GEOGRAPHIC), "geographic");
    CU_ASSERT_STRING_EQUAL(rating_kind_name(KIND_TOLL_FREE), "toll_free");
    CU_ASSERT_STRING_EQUAL(rating_kind_name(KIND_NON_GEOGRAPHIC),
                           "non_geographic");
    CU_ASSERT_EQUAL(rating_kind_parse("premium"), KIND_PREMIUM);
    CU_ASSERT_EQUAL(rating_kind_parse("personal"), KIND_PERSONAL);
    CU_ASSERT_EQUAL(rating_kind_parse("Premium"), -1);
    CU_ASSERT_EQUAL(rating_kind_parse(""), -1);
    CU_ASSERT_EQUAL(rating_kind_parse(NULL), -1);
    CU_ASSERT_STRING_EQUAL(rating_outcome_name(OUTCOME_REJECTED), "rejected");
    CU_ASSERT_STRING_EQUAL(rating_outcome_name(OUTCOME_ZERO), "zero");
    CU_ASSERT_STRING_EQUAL(rating_outcome_name(OUTCOME_EXEMPT), "exempt");
    CU_ASSERT_STRING_EQUAL(rating_outcome_name(OUTCOME_POOL), "pool");
    CU_ASSERT_STRING_EQUAL(rating_outcome_name(OUTCOME_SPLIT), "split");
    CU_ASSERT_STRING_EQUAL(rating_outcome_name(OUTCOME_BILLED), "billed");
    CU_ASSERT_EQUAL(rating_grant_parse("audio_conferencing"),
                    GRANT_AUDIO_CONFERENCING);
    CU_ASSERT_EQUAL(rating_grant_parse("audio_conferencing_ppm"),
                    GRANT_AUDIO_CONFERENCING_PPM);
    CU_ASSERT_EQUAL(rating_grant_parse("dialout_usca"), GRANT_DIALOUT_USCA);
    CU_ASSERT_EQUAL(rating_grant_parse("MCOMEETADD"), 0);
    CU_ASSERT_EQUAL(rating_grant_parse("Audio_Conferencing"), 0);
    CU_ASSERT_EQUAL(rating_grant_parse(NULL), 0);
    CU_ASSERT_STRING_EQUAL(rating_kind_name(KIND_MOBILE), "mobile");
    CU_ASSERT_EQUAL(rating_kind_parse("shared_cost"), KIND_SHARED_COST);
}

/* ================================================================ rates */

static void expect_rate(int line, const rating_ref *ref, const char *cur,
                        const char *digits, int64_t t, int found_want,
                        int64_t pm_want, int64_t fee_want, int len_want)
{
    int64_t pm = -1, fee = -1;
    int len = -1;
    int found = rating_ref_rate(ref, cur, digits, t, &pm, &fee, &len);

    if (!found_want) {
        check(!found, line, "rate %s %s: expected none, got %lld/%lld "
              "prefix %d", cur, digits, (long long)pm, (long long)fee, len);
        return;
    }
    check(found && pm == pm_want && fee == fee_want && len == len_want, line,
          "rate %s %s: expected %lld/%lld prefix %d, got found=%d "
          "%lld/%lld prefix %d", cur, digits, (long long)pm_want,
          (long long)fee_want, len_want, found, (long long)pm,
          (long long)fee, len);
}
#define EXPECT_RATE(ref, c, d, t, pm, fee, len) \
    expect_rate(__LINE__, ref, c, d, t, 1, pm, fee, len)
#define EXPECT_NO_RATE(ref, c, d, t) \
    expect_rate(__LINE__, ref, c, d, t, 0, 0, 0, 0)

static void test_rates(void)
{
    char err[AC_ERR_MAX];
    const int64_t T0 = US(2026, 1, 1, 0, 0, 0), T1 = US(2026, 6, 1, 0, 0, 0),
                  T2 = US(2026, 9, 1, 0, 0, 0), F = RATING_FOREVER;
    rating_ref *r = rating_ref_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    /* nothing at all */
    EXPECT_NO_RATE(r, "USD", "12125550100", T1);

    /* longest prefix wins */
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "1", 200, 0, T0, F, err),
                    AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "1876", 2500, 500, T0, F,
                                        err), AC_OK);
    EXPECT_RATE(r, "USD", "18765551234", T1, 2500, 500, 4);
    EXPECT_RATE(r, "USD", "12125550100", T1, 200, 0, 1);
    EXPECT_RATE(r, "USD", "1877", T1, 200, 0, 1);
    EXPECT_NO_RATE(r, "USD", "442071234567", T1);
    EXPECT_NO_RATE(r, "USD", "12125550100", T0 - 1);

    /* validity [from, to) */
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "44", 300, 0, T1, T2, err),
                    AC_OK);
    EXPECT_NO_RATE(r, "USD", "442071234567", T1 - 1);
    EXPECT_RATE(r, "USD", "442071234567", T1, 300, 0, 2);
    EXPECT_RATE(r, "USD", "442071234567", T2 - 1, 300, 0, 2);
    EXPECT_NO_RATE(r, "USD", "442071234567", T2);

    /* currencies are separate */
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "EUR", "33", 100, 0, T0, F, err),
                    AC_OK);
    EXPECT_NO_RATE(r, "USD", "33142685300", T1);
    EXPECT_RATE(r, "EUR", "33142685300", T1, 100, 0, 2);
    EXPECT_NO_RATE(r, "EUR", "12125550100", T1);
    EXPECT_NO_RATE(r, "GBP", "33142685300", T1);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "33", 350, 0, T0, F, err),
                    AC_OK);
    EXPECT_RATE(r, "USD", "33142685300", T1, 350, 0, 2);
    EXPECT_RATE(r, "EUR", "33142685300", T1, 100, 0, 2);

    /* two overlapping versions: the later valid_from wins, whatever the
     * order they were added in */
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "49", 1000, 0, T0, F, err),
                    AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "49", 2000, 0, T1, F, err),
                    AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "48", 2000, 0, T1, F, err),
                    AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "48", 1000, 0, T0, F, err),
                    AC_OK);
    EXPECT_RATE(r, "USD", "4915123456789", T1 - 1, 1000, 0, 2);
    EXPECT_RATE(r, "USD", "4915123456789", T1, 2000, 0, 2);
    EXPECT_RATE(r, "USD", "4915123456789", T2, 2000, 0, 2);
    EXPECT_RATE(r, "USD", "48221234567", T1 - 1, 1000, 0, 2);
    EXPECT_RATE(r, "USD", "48221234567", T1, 2000, 0, 2);

    /* consecutive versions: the one in force */
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "39", 300, 0, T2, F, err),
                    AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "39", 100, 0, T0, T1, err),
                    AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "39", 200, 5, T1, T2, err),
                    AC_OK);
    EXPECT_NO_RATE(r, "USD", "390612345678", T0 - 1);
    EXPECT_RATE(r, "USD", "390612345678", T0, 100, 0, 2);
    EXPECT_RATE(r, "USD", "390612345678", T1 - 1, 100, 0, 2);
    EXPECT_RATE(r, "USD", "390612345678", T1, 200, 5, 2);
    EXPECT_RATE(r, "USD", "390612345678", T2 - 1, 200, 5, 2);
    EXPECT_RATE(r, "USD", "390612345678", T2, 300, 0, 2);

    /* a longer prefix not in force falls back to the shorter one */
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "1787", 150, 0, T1, T2,
                                        err), AC_OK);
    EXPECT_RATE(r, "USD", "17875550100", T1 - 1, 200, 0, 1);
    EXPECT_RATE(r, "USD", "17875550100", T1, 150, 0, 4);
    EXPECT_RATE(r, "USD", "17875550100", T2, 200, 0, 1);
    /* ... and a third level in between */
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "178", 170, 0, T0, F, err),
                    AC_OK);
    EXPECT_RATE(r, "USD", "17875550100", T2, 170, 0, 3);
    EXPECT_RATE(r, "USD", "17875550100", T1, 150, 0, 4);

    rating_ref_free(r);
}

static void test_rate_add_checks(void)
{
    char err[AC_ERR_MAX];
    const int64_t T0 = US(2026, 1, 1, 0, 0, 0);
    rating_ref *r = rating_ref_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, NULL, "1", 1, 0, T0,
                                        RATING_FOREVER, err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "US", "1", 1, 0, T0,
                                        RATING_FOREVER, err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USDX", "1", 1, 0, T0,
                                        RATING_FOREVER, err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "1", -1, 0, T0,
                                        RATING_FOREVER, err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "1", 1, -1, T0,
                                        RATING_FOREVER, err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "1", 1, 0, T0, T0, err),
                    AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "1", 1, 0, T0, T0 - 1,
                                        err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "1x", 1, 0, T0,
                                        RATING_FOREVER, err), AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "", 1, 0, T0,
                                        RATING_FOREVER, err), AC_EDATA);
    EXPECT_NO_RATE(r, "USD", "12125550100", T0);
    /* a zero rate is a rate */
    CU_ASSERT_EQUAL(rating_ref_add_rate(r, "USD", "1", 0, 0, T0,
                                        RATING_FOREVER, err), AC_OK);
    EXPECT_RATE(r, "USD", "12125550100", T0, 0, 0, 1);
    /* the malformed prefix left nothing behind: "1x" is no version of "1" */
    EXPECT_RATE(r, "USD", "12125550100", INT64_MAX - 1, 0, 0, 1);
    rating_ref_free(r);
}

/* rating_ref_add_rate checks currency == NULL, but only after it has been
 * looked up with strcmp: with one currency already present a NULL currency
 * must still give AC_EDATA (run in a child, as the bug is a crash). */
static void test_rate_add_null_currency(void)
{
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        char err[AC_ERR_MAX];
        rating_ref *r = rating_ref_new();
        int ok = r != NULL &&
                 rating_ref_add_rate(r, "USD", "1", 1, 0, 0, RATING_FOREVER,
                                     err) == AC_OK;
        ok = ok && rating_ref_add_rate(r, NULL, "1", 1, 0, 0, RATING_FOREVER,
                                       err) == AC_EDATA;
        rating_ref_free(r);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    CU_ASSERT_FATAL(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "rating_ref_add_rate(ref, NULL, ...) with a currency present: "
          "expected AC_EDATA, the child %s %d",
          WIFEXITED(st) ? "exited" : "died of signal",
          WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* ============================================================= licences */

static void test_licences(void)
{
    char err[AC_ERR_MAX];
    const int64_t J = US(2026, 1, 1, 0, 0, 0), M = US(2026, 3, 1, 0, 0, 0),
                  O = US(2026, 10, 15, 0, 0, 0), F = RATING_FOREVER;
    rating_licences *l = rating_licences_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_EQUAL(rating_licences_held(l, "alice", J), 0);
    CU_ASSERT_EQUAL(rating_licences_add(l, "alice", GRANT_AUDIO_CONFERENCING, J, M,
                                        err), AC_OK);
    CU_ASSERT_EQUAL(rating_licences_add(l, "alice", GRANT_DIALOUT_USCA, J, F,
                                        err), AC_OK);
    CU_ASSERT_EQUAL(rating_licences_add(l, "alice", GRANT_AUDIO_CONFERENCING, O, F,
                                        err), AC_OK);
    CU_ASSERT_EQUAL(rating_licences_add(l, "bob", GRANT_AUDIO_CONFERENCING_PPM, J, F,
                                        err), AC_OK);
    CU_ASSERT_EQUAL(rating_licences_add(l, "bobby", GRANT_AUDIO_CONFERENCING, J, F,
                                        err), AC_OK);
    CU_ASSERT_EQUAL(rating_licences_add(l, "carol", GRANT_AUDIO_CONFERENCING, M, O,
                                        err), AC_OK);
    CU_ASSERT_EQUAL(rating_licences_add(l, "carol", GRANT_AUDIO_CONFERENCING, J, M,
                                        err), AC_OK);
    /* out of user order, and written another way (docs/billing-rules.md 3, identifiers);
     * an inverted interval holds at no instant (docs/billing-rules.md 3) */
    CU_ASSERT_EQUAL(rating_licences_add(l, " KENJI@Northwind.example\t",
                                        GRANT_AUDIO_CONFERENCING, J, F, err),
                    AC_OK);
    CU_ASSERT_EQUAL(rating_licences_add(l, "dave", GRANT_AUDIO_CONFERENCING,
                                        O, J, err), AC_OK);
    CU_ASSERT_EQUAL(rating_licences_add(l, "dave", GRANT_AUDIO_CONFERENCING,
                                        O, O, err), AC_OK);
    CU_ASSERT_EQUAL(rating_licences_add(l, "   ", GRANT_AUDIO_CONFERENCING,
                                        J, F, err), AC_OK);
    /* before sorting (linear) and after, the same answers */
    CU_ASSERT_EQUAL(rating_licences_held(l, "kenji@northwind.example", O),
                    GRANT_AUDIO_CONFERENCING);
    rating_licences_sort(l);
    CU_ASSERT_EQUAL(rating_licences_held(l, "kenji@northwind.example", O),
                    GRANT_AUDIO_CONFERENCING);
    CU_ASSERT_EQUAL(rating_licences_held(l, "Kenji@NORTHWIND.example ", O),
                    GRANT_AUDIO_CONFERENCING);
    for (int64_t t = J - 1; t <= O + 1; t += (O - J) / 4)
        CHECK(rating_licences_held(l, "dave", t) == 0,
              "inverted interval held at %lld", (long long)t);
    CU_ASSERT_EQUAL(rating_licences_held(l, "dave", O), 0);

    CU_ASSERT_EQUAL(rating_licences_held(l, "alice", J - 1), 0);
    CU_ASSERT_EQUAL(rating_licences_held(l, "alice", J),
                    GRANT_AUDIO_CONFERENCING | GRANT_DIALOUT_USCA);
    CU_ASSERT_EQUAL(rating_licences_held(l, "alice", M - 1),
                    GRANT_AUDIO_CONFERENCING | GRANT_DIALOUT_USCA);
    CU_ASSERT_EQUAL(rating_licences_held(l, "alice", M), GRANT_DIALOUT_USCA);
    CU_ASSERT_EQUAL(rating_licences_held(l, "alice", O - 1),
                    GRANT_DIALOUT_USCA);
    CU_ASSERT_EQUAL(rating_licences_held(l, "alice", O),
                    GRANT_AUDIO_CONFERENCING | GRANT_DIALOUT_USCA);
    CU_ASSERT_EQUAL(rating_licences_held(l, "alice", INT64_MAX - 1),
                    GRANT_AUDIO_CONFERENCING | GRANT_DIALOUT_USCA);
    CU_ASSERT_EQUAL(rating_licences_held(l, "bob", J), GRANT_AUDIO_CONFERENCING_PPM);
    CU_ASSERT_EQUAL(rating_licences_held(l, "bobby", J), GRANT_AUDIO_CONFERENCING);
    /* consecutive intervals join with no gap */
    CU_ASSERT_EQUAL(rating_licences_held(l, "carol", M - 1), GRANT_AUDIO_CONFERENCING);
    CU_ASSERT_EQUAL(rating_licences_held(l, "carol", M), GRANT_AUDIO_CONFERENCING);
    CU_ASSERT_EQUAL(rating_licences_held(l, "carol", O - 1), GRANT_AUDIO_CONFERENCING);
    CU_ASSERT_EQUAL(rating_licences_held(l, "carol", O), 0);
    /* unknown users, near names, NULL */
    CU_ASSERT_EQUAL(rating_licences_held(l, "al", J), 0);
    CU_ASSERT_EQUAL(rating_licences_held(l, "alicia", J), 0);
    CU_ASSERT_EQUAL(rating_licences_held(l, "bo", J), 0);
    CU_ASSERT_EQUAL(rating_licences_held(l, "zed", J), 0);
    CU_ASSERT_EQUAL(rating_licences_held(l, "", J), 0);
    CU_ASSERT_EQUAL(rating_licences_held(l, "   ", J), 0);
    CU_ASSERT_EQUAL(rating_licences_held(l, "Alice", J),
                    GRANT_AUDIO_CONFERENCING | GRANT_DIALOUT_USCA);
    CU_ASSERT_EQUAL(rating_licences_held(l, NULL, J), 0);
    rating_licences_free(l);
    rating_licences_free(NULL);
}

/* Many users: the binary search must find each of them. */
static void test_licences_many(void)
{
    char err[AC_ERR_MAX], user[16];
    const int64_t J = US(2026, 1, 1, 0, 0, 0);
    rating_licences *l = rating_licences_new();
    int ok = 1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    for (int i = 0; i < 500; i++) {
        snprintf(user, sizeof user, "u%04d", i * 2);
        ok &= rating_licences_add(l, user, 1 << (i % 3), J, J + i + 1,
                                  err) == AC_OK;
    }
    CU_ASSERT(ok);
    for (int i = 0; i < 500 && ok; i++) {
        snprintf(user, sizeof user, "u%04d", i * 2);
        ok &= rating_licences_held(l, user, J + i) == 1 << (i % 3);
        ok &= rating_licences_held(l, user, J + i + 1) == 0;
        snprintf(user, sizeof user, "u%04d", i * 2 + 1);
        ok &= rating_licences_held(l, user, J) == 0;
    }
    CU_ASSERT(ok);
    rating_licences_free(l);
}

/* ====================================================== tenant rating */

typedef struct {
    const char *org;
    int64_t t;
    const char *number;
    int has_dur;
    int32_t secs;
} call_in;

/* Rate one call, checking only that rating itself worked. */
static rating_result rate_one(rating_tenant *t, const char *usage_id,
                              const call_in *c)
{
    char err[AC_ERR_MAX];
    rating_result r;
    rating_call call = {
        .usage_id = usage_id, .start_us = c->t, .organizer_id = c->org,
        .number = c->number, .has_duration = c->has_dur,
        .duration_seconds = c->secs,
    };
    memset(&r, 0x5a, sizeof r);
    CU_ASSERT_EQUAL(rating_tenant_rate(t, &call, &r, err), AC_OK);
    return r;
}

/* Check a result: outcome, reason, minutes, pool, billed, amount. */
static void expect(int line, const char *what, const rating_result *r,
                   rating_outcome outcome, const char *reason,
                   int32_t minutes, int32_t pool, int32_t billed,
                   int64_t amount)
{
    int ok = r->outcome == outcome && r->pool_minutes == pool &&
             r->billed_minutes == billed && r->amount == amount &&
             ((reason == NULL && r->reason == NULL) ||
              (reason != NULL && r->reason != NULL &&
               strcmp(reason, r->reason) == 0)) &&
             (minutes < 0 || r->minutes == minutes);
    check(ok, line, "%s: expected %s %s m=%d pool=%d billed=%d "
          "amount=%lld, got %s %s m=%d pool=%d billed=%d amount=%lld", what,
          rating_outcome_name(outcome), reason ? reason : "-", minutes, pool,
          billed, (long long)amount, rating_outcome_name(r->outcome),
          r->reason ? r->reason : "-", r->minutes, r->pool_minutes,
          r->billed_minutes, (long long)r->amount);
}
#define EXPECT(what, r, o, reason, m, p, b, a) \
    expect(__LINE__, what, &(r), o, reason, m, p, b, a)

static const char *uid(int i)
{
    static char buf[8][40];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, 40, "00000000-0000-0000-0000-%012d", i);
    return b;
}

/* ---------------------------------------- the worked example, T1 */

#define OCT(d, h, mi, s) US(2026, 10, d, h, mi, s)

static rating_licences *t1_licences(void)
{
    char err[AC_ERR_MAX];
    const int64_t J = US(2026, 1, 1, 0, 0, 0), F = RATING_FOREVER;
    rating_licences *l = rating_licences_new();
    int ok = l != NULL;

    ok = ok && rating_licences_add(l, "alice", GRANT_AUDIO_CONFERENCING, J, F, err)
                   == AC_OK;
    ok = ok && rating_licences_add(l, "alice", GRANT_DIALOUT_USCA, J, F, err)
                   == AC_OK;
    ok = ok && rating_licences_add(l, "bob", GRANT_AUDIO_CONFERENCING, J, F, err)
                   == AC_OK;
    ok = ok && rating_licences_add(l, "carol", GRANT_AUDIO_CONFERENCING_PPM, J, F, err)
                   == AC_OK;
    ok = ok && rating_licences_add(l, "dave", GRANT_DIALOUT_USCA, J, F, err)
                   == AC_OK;
    ok = ok && rating_licences_add(l, "erin", GRANT_AUDIO_CONFERENCING,
                                   OCT(15, 0, 0, 0), F, err) == AC_OK;
    if (!ok) {
        rating_licences_free(l);
        return NULL;
    }
    return l;
}

static void test_spec_example_t1(void)
{
    static const struct {
        call_in in;
        rating_outcome outcome;
        const char *reason, *country;
        int32_t minutes, pool, billed;
        int64_t pm, fee, amount;
    } calls[17] = {
        /*  1 */ {{"alice", 0, "+12125550100", 1, 3600}, OUTCOME_EXEMPT,
                  NULL, "US", 60, 0, 0, 0, 0, 0},
        /*  2 */ {{"bob", 0, "+12125550101", 1, 1830}, OUTCOME_POOL,
                  NULL, "US", 31, 31, 0, 0, 0, 0},
        /*  3 */ {{"alice", 0, "+442071234567", 1, 61}, OUTCOME_POOL,
                  NULL, "GB", 2, 2, 0, 0, 0, 0},
        /*  4 */ {{"bob", 0, "+18765551234", 1, 600}, OUTCOME_BILLED,
                  NULL, "JM", 10, 0, 10, 2500, 500, 25500},
        /*  5 */ {{"carol", 0, "+12125550102", 1, 120}, OUTCOME_BILLED,
                  NULL, "US", 2, 0, 2, 200, 0, 400},
        /*  6 */ {{"dave", 0, "+14165550100", 1, 300}, OUTCOME_REJECTED,
                  "ORGANIZER_NOT_LICENSED", "CA", -1, 0, 0, 0, 0, 0},
        /*  7 */ {{"bob", 0, "+33142685300", 1, 5400}, OUTCOME_SPLIT,
                  NULL, "FR", 90, 87, 3, 350, 0, 1050},
        /*  8 */ {{"bob", 0, "+441632960000", 1, 59}, OUTCOME_BILLED,
                  NULL, "GB", 1, 0, 1, 300, 0, 300},
        /*  9 */ {{"alice", 0, "+17875550100", 1, 60}, OUTCOME_BILLED,
                  NULL, "PR", 1, 0, 1, 200, 0, 200},
        /* 10 */ {{"erin", 0, "+12025550100", 1, 0}, OUTCOME_REJECTED,
                  "ORGANIZER_NOT_LICENSED", "US", -1, 0, 0, 0, 0, 0},
        /* 11 */ {{"bob", 0, "+19005550100", 1, 120}, OUTCOME_BILLED,
                  NULL, "US", 2, 0, 2, 10000, 0, 20000},
        /* 12 */ {{"erin", 0, "+26377123456", 1, 45}, OUTCOME_BILLED,
                  NULL, "ZW", 1, 0, 1, 4000, 0, 4000},
        /* 13 */ {{"bob", 0, "+999123", 1, 60}, OUTCOME_REJECTED,
                  "UNKNOWN_DESTINATION", "", -1, 0, 0, 0, 0, 0},
        /* 14 */ {{"bob", 0, "12125550100", 1, 60}, OUTCOME_REJECTED,
                  "INVALID_NUMBER", "", -1, 0, 0, 0, 0, 0},
        /* 15 */ {{"bob", 0, "+12125550100", 1, -5}, OUTCOME_REJECTED,
                  "INVALID_DURATION", "", 0, 0, 0, 0, 0, 0},
        /* 16 */ {{"bob", 0, "+12125550100", 1, 0}, OUTCOME_ZERO,
                  NULL, "US", 0, 0, 0, 0, 0, 0},
        /* 17 */ {{"alice", 0, "+15145550100", 1, 1}, OUTCOME_EXEMPT,
                  NULL, "CA", 1, 0, 0, 0, 0, 0},
    };
    const int64_t start[17] = {
        OCT(1, 9, 0, 0), OCT(1, 10, 0, 0), OCT(2, 9, 0, 0), OCT(3, 9, 0, 0),
        OCT(4, 9, 0, 0), OCT(5, 9, 0, 0), OCT(6, 9, 0, 0), OCT(7, 9, 0, 0),
        OCT(8, 9, 0, 0), OCT(9, 9, 0, 0), OCT(10, 9, 0, 0),
        OCT(16, 9, 0, 0), OCT(17, 9, 0, 0), OCT(18, 9, 0, 0),
        OCT(19, 9, 0, 0), OCT(20, 9, 0, 0), OCT(31, 23, 59, 59),
    };
    char err[AC_ERR_MAX], what[32];
    rating_licences *lic = t1_licences();
    CU_ASSERT_PTR_NOT_NULL_FATAL(lic);
    rating_tenant *t = rating_tenant_new(g_ref, lic, "USD", 120, 3000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);

    for (int i = 0; i < 17; i++) {
        call_in in = calls[i].in;
        in.t = start[i];
        rating_result r = rate_one(t, uid(i + 1), &in);
        snprintf(what, sizeof what, "T1 call %d", i + 1);
        expect(__LINE__, what, &r, calls[i].outcome, calls[i].reason,
               calls[i].minutes, calls[i].pool, calls[i].billed,
               calls[i].amount);
        CHECK(strcmp(r.country, calls[i].country) == 0,
              "%s: expected country '%s', got '%.2s'", what,
              calls[i].country, r.country);
        int billed = calls[i].outcome == OUTCOME_BILLED ||
                     calls[i].outcome == OUTCOME_SPLIT;
        CHECK(r.has_rate == billed &&
                  (!billed || (r.per_minute == calls[i].pm &&
                               r.connection_fee == calls[i].fee)),
              "%s: expected rate %d %lld/%lld, got %d %lld/%lld", what,
              billed, (long long)calls[i].pm, (long long)calls[i].fee,
              r.has_rate, (long long)r.per_minute,
              (long long)r.connection_fee);
        if (calls[i].outcome == OUTCOME_REJECTED)
            CHECK(r.has_rate == 0, "%s: rejected with a rate", what);
    }
    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(t, err), AC_OK);

    const rating_totals *tot = rating_tenant_totals(t);
    CHECK_I64(tot->calls, 17, "calls");
    CHECK_I64(tot->outcomes[OUTCOME_REJECTED], 5, "rejected");
    CHECK_I64(tot->outcomes[OUTCOME_ZERO], 1, "zero");
    CHECK_I64(tot->outcomes[OUTCOME_EXEMPT], 2, "exempt calls");
    CHECK_I64(tot->outcomes[OUTCOME_POOL], 2, "pool calls");
    CHECK_I64(tot->outcomes[OUTCOME_SPLIT], 1, "split calls");
    CHECK_I64(tot->outcomes[OUTCOME_BILLED], 6, "billed calls");
    CHECK_I64(tot->pool_minutes, 120, "pool minutes");
    CHECK_I64(tot->pool_used, 120, "pool used");
    CHECK_I64(tot->exempt_minutes, 61, "exempt minutes");
    CHECK_I64(tot->billed_minutes, 20, "billed minutes");
    CHECK_I64(tot->exact_total, 51450, "exact total");
    CHECK_I64(tot->subtotal, 51500, "subtotal");
    CHECK_I64(tot->tax, 0, "tax");
    CHECK_I64(tot->total, 51500, "total");
    char two[32];
    money_format2(tot->total, two, sizeof two);
    CU_ASSERT_STRING_EQUAL(two, "5.15");

    static const rating_line want[7] = {
        {"FR", KIND_GEOGRAPHIC, 350, 0, 1, 3, 1050, 1100},
        {"GB", KIND_GEOGRAPHIC, 300, 0, 1, 1, 300, 300},
        {"JM", KIND_MOBILE, 2500, 500, 1, 10, 25500, 25500},
        {"PR", KIND_GEOGRAPHIC, 200, 0, 1, 1, 200, 200},
        {"US", KIND_GEOGRAPHIC, 200, 0, 1, 2, 400, 400},
        {"US", KIND_PREMIUM, 10000, 0, 1, 2, 20000, 20000},
        {"ZW", KIND_MOBILE, 4000, 0, 1, 1, 4000, 4000},
    };
    const rating_line *lines = NULL;
    int n = rating_tenant_lines(t, &lines);
    CU_ASSERT_EQUAL(n, 7);
    for (int i = 0; i < n && i < 7; i++) {
        const rating_line *l = &lines[i], *w = &want[i];
        CHECK(strcmp(l->country, w->country) == 0 && l->kind == w->kind &&
                  l->per_minute == w->per_minute &&
                  l->connection_fee == w->connection_fee &&
                  l->calls == w->calls && l->minutes == w->minutes &&
                  l->exact == w->exact && l->amount == w->amount,
              "line %d: expected %s %lld/%lld calls %d min %d exact %lld "
              "amount %lld, got %.2s %lld/%lld calls %d min %d exact %lld "
              "amount %lld", i, w->country, (long long)w->per_minute,
              (long long)w->connection_fee, w->calls, w->minutes,
              (long long)w->exact, (long long)w->amount, l->country,
              (long long)l->per_minute, (long long)l->connection_fee,
              l->calls, l->minutes, (long long)l->exact,
              (long long)l->amount);
    }

    static const struct {
        const char *id;
        int32_t calls, exempt, pool, billed;
        int64_t amount;
        int addon, noprereq;
    } worg[5] = {
        {"alice", 4, 61, 2, 1, 200, 1, 0},
        {"bob", 9, 0, 118, 16, 46850, 0, 0},
        {"carol", 1, 0, 0, 2, 400, 0, 0},
        {"dave", 1, 0, 0, 0, 0, 1, 1},
        {"erin", 2, 0, 0, 1, 4000, 0, 0},
    };
    const rating_organizer *orgs = NULL;
    n = rating_tenant_organizers(t, &orgs);
    CU_ASSERT_EQUAL(n, 5);
    for (int i = 0; i < n && i < 5; i++) {
        const rating_organizer *o = &orgs[i];
        CHECK(strcmp(o->id, worg[i].id) == 0 && o->calls == worg[i].calls &&
                  o->exempt_minutes == worg[i].exempt &&
                  o->pool_minutes == worg[i].pool &&
                  o->billed_minutes == worg[i].billed &&
                  o->amount == worg[i].amount &&
                  o->addon_held == worg[i].addon &&
                  o->addon_without_prereq == worg[i].noprereq &&
                  o->fair_use_review == 0,
              "organizer %d: expected %s calls %d exempt %d pool %d billed "
              "%d amount %lld addon %d noprereq %d, got %s %d %d %d %d %lld "
              "%d %d fair %d", i, worg[i].id, worg[i].calls, worg[i].exempt,
              worg[i].pool, worg[i].billed, (long long)worg[i].amount,
              worg[i].addon, worg[i].noprereq, o->id, o->calls,
              o->exempt_minutes, o->pool_minutes, o->billed_minutes,
              (long long)o->amount, o->addon_held, o->addon_without_prereq,
              o->fair_use_review);
    }
    if (n >= 4)
        CHECK_I64(orgs[3].first_issue_us, OCT(5, 9, 0, 0),
                  "dave's first add-on-without-prerequisite call");

    rating_tenant_free(t);
    rating_licences_free(lic);
}

/* ------------------------------------------- the rules one at a time */

/* A licence set from a list of (user, sku bits), all open from 2026-01-01,
 * users given in strcmp order. */
static rating_licences *licences(const char *const *users, const int *skus,
                                 int n)
{
    char err[AC_ERR_MAX];
    rating_licences *l = rating_licences_new();
    for (int i = 0; l != NULL && i < n; i++)
        for (int bit = 1; bit <= 4; bit <<= 1)
            if ((skus[i] & bit) &&
                rating_licences_add(l, users[i], bit,
                                    US(2026, 1, 1, 0, 0, 0), RATING_FOREVER,
                                    err) != AC_OK) {
                rating_licences_free(l);
                return NULL;
            }
    return l;
}

/* The cast of the rule tests. */
static const char *const cast[] = {
    "acpea", "acpea_usca", "add", "add_usca", "usca", "zed_none",
};
static const int cast_skus[] = {
    GRANT_AUDIO_CONFERENCING_PPM, GRANT_AUDIO_CONFERENCING_PPM | GRANT_DIALOUT_USCA, GRANT_AUDIO_CONFERENCING,
    GRANT_AUDIO_CONFERENCING | GRANT_DIALOUT_USCA, GRANT_DIALOUT_USCA, 0,
};
/* cast[] must be in strcmp order */

typedef struct {
    rating_licences *lic;
    rating_tenant *t;
    int64_t now;
    int n;
} bench;

static int bench_open(bench *b, const rating_ref *ref, const char *currency,
                      int32_t pool, int32_t fair_use)
{
    memset(b, 0, sizeof *b);
    b->lic = licences(cast, cast_skus, (int)(sizeof cast / sizeof cast[0]));
    b->t = b->lic ? rating_tenant_new(ref, b->lic, currency, pool, fair_use)
                  : NULL;
    b->now = OCT(1, 0, 0, 0);
    return b->t != NULL;
}

static rating_result bench_call(bench *b, const char *org,
                                const char *number, int has_dur,
                                int32_t secs)
{
    call_in c = {org, b->now, number, has_dur, secs};
    b->now += INT64_C(60000000);
    return rate_one(b->t, uid(++b->n), &c);
}

static void bench_close(bench *b)
{
    rating_tenant_free(b->t);
    rating_licences_free(b->lic);
}

static void test_rule_order_rejects(void)
{
    bench b;
    rating_result r;
    CU_ASSERT_FATAL(bench_open(&b, g_ref, "USD", 60, 3000));

    /* 1: null or negative duration, before everything else */
    r = bench_call(&b, "add", "+12125550100", 0, 0);
    EXPECT("null duration", r, OUTCOME_REJECTED, "INVALID_DURATION", 0, 0,
           0, 0);
    r = bench_call(&b, "add", "+12125550100", 0, 600);
    EXPECT("null duration, junk seconds", r, OUTCOME_REJECTED,
           "INVALID_DURATION", 0, 0, 0, 0);
    r = bench_call(&b, NULL, "bad", 1, -1);
    EXPECT("negative duration before bad number", r, OUTCOME_REJECTED,
           "INVALID_DURATION", 0, 0, 0, 0);
    r = bench_call(&b, "add", NULL, 1, -60);
    EXPECT("negative duration before NULL number", r, OUTCOME_REJECTED,
           "INVALID_DURATION", 0, 0, 0, 0);
    /* 2: number */
    r = bench_call(&b, NULL, "12125550100", 1, 60);
    EXPECT("bad number before no organizer", r, OUTCOME_REJECTED,
           "INVALID_NUMBER", -1, 0, 0, 0);
    r = bench_call(&b, "add", NULL, 1, 60);
    EXPECT("NULL number", r, OUTCOME_REJECTED, "INVALID_NUMBER", -1, 0, 0,
           0);
    r = bench_call(&b, "add", "+12345", 1, 0);
    EXPECT("5 digits, zero duration", r, OUTCOME_REJECTED, "INVALID_NUMBER",
           -1, 0, 0, 0);
    r = bench_call(&b, "add", "+1234567890123456", 1, 60);
    EXPECT("16 digits", r, OUTCOME_REJECTED, "INVALID_NUMBER", -1, 0, 0, 0);
    /* 3: organizer */
    r = bench_call(&b, NULL, "+999123", 1, 60);
    EXPECT("no organizer before unknown destination", r, OUTCOME_REJECTED,
           "NO_ORGANIZER", -1, 0, 0, 0);
    r = bench_call(&b, NULL, "+12125550100", 1, 0);
    EXPECT("no organizer, zero duration", r, OUTCOME_REJECTED,
           "NO_ORGANIZER", -1, 0, 0, 0);
    /* 4: destination, before the licence */
    r = bench_call(&b, "zed_none", "+999123", 1, 60);
    EXPECT("unknown destination before not licensed", r, OUTCOME_REJECTED,
           "UNKNOWN_DESTINATION", -1, 0, 0, 0);
    CU_ASSERT_EQUAL(r.kind, -1);
    r = bench_call(&b, "add", "+19995550100", 1, 60);
    EXPECT("+1 999 unknown area code", r, OUTCOME_REJECTED,
           "UNKNOWN_DESTINATION", -1, 0, 0, 0);
    /* 5: licence, before zero */
    r = bench_call(&b, "zed_none", "+12125550100", 1, 0);
    EXPECT("not licensed before zero", r, OUTCOME_REJECTED,
           "ORGANIZER_NOT_LICENSED", -1, 0, 0, 0);
    r = bench_call(&b, "nobody", "+12125550100", 1, 60);
    EXPECT("unknown organizer", r, OUTCOME_REJECTED,
           "ORGANIZER_NOT_LICENSED", -1, 0, 0, 0);
    r = bench_call(&b, "usca", "+12125550100", 1, 60);
    EXPECT("add-on alone is no licence", r, OUTCOME_REJECTED,
           "ORGANIZER_NOT_LICENSED", -1, 0, 0, 0);
    CU_ASSERT_STRING_EQUAL(r.country, "US");
    CU_ASSERT_EQUAL(r.kind, KIND_GEOGRAPHIC);
    /* 6: zero, for every licensed organizer and any destination */
    r = bench_call(&b, "add", "+12125550100", 1, 0);
    EXPECT("zero", r, OUTCOME_ZERO, NULL, 0, 0, 0, 0);
    r = bench_call(&b, "acpea", "+26377123456", 1, 0);
    EXPECT("zero, billed destination", r, OUTCOME_ZERO, NULL, 0, 0, 0, 0);
    r = bench_call(&b, "add_usca", "+12125550100", 1, 0);
    EXPECT("zero, exempt destination", r, OUTCOME_ZERO, NULL, 0, 0, 0, 0);
    /* one billed call, so that finish has a line to sort (see
     * test_tenant_empty for none) */
    r = bench_call(&b, "acpea", "+26377123456", 1, 60);
    EXPECT("billed", r, OUTCOME_BILLED, NULL, 1, 0, 1, 4000);

    char err[AC_ERR_MAX];
    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(b.t, err), AC_OK);
    const rating_totals *tot = rating_tenant_totals(b.t);
    CU_ASSERT_EQUAL(tot->calls, 19);
    CU_ASSERT_EQUAL(tot->outcomes[OUTCOME_REJECTED], 15);
    CU_ASSERT_EQUAL(tot->outcomes[OUTCOME_ZERO], 3);
    CU_ASSERT_EQUAL(tot->outcomes[OUTCOME_BILLED], 1);
    CU_ASSERT_EQUAL(tot->pool_used, 0);
    CU_ASSERT_EQUAL(tot->billed_minutes, 1);
    CU_ASSERT_EQUAL(tot->total, 4000);
    const rating_line *lines;
    CU_ASSERT_EQUAL(rating_tenant_lines(b.t, &lines), 1);
    /* calls without an organizer make no organizer record */
    const rating_organizer *orgs;
    int n = rating_tenant_organizers(b.t, &orgs);
    CU_ASSERT_EQUAL(n, 6);
    for (int i = 0; i < n; i++)
        CU_ASSERT_PTR_NOT_NULL(orgs[i].id);
    bench_close(&b);
}

/* A zero-second call needs no rate. */
static void test_rule_zero_needs_no_rate(void)
{
    bench b;
    rating_result r;
    CU_ASSERT_FATAL(bench_open(&b, g_ref, "EUR", 60, 3000));
    r = bench_call(&b, "acpea", "+26377123456", 1, 0);
    EXPECT("zero without a rate", r, OUTCOME_ZERO, NULL, 0, 0, 0, 0);
    r = bench_call(&b, "acpea", "+26377123456", 1, 1);
    EXPECT("1 s without a rate", r, OUTCOME_REJECTED, "NO_RATE", 1, 0, 0, 0);
    bench_close(&b);
}

static void test_rule_exempt(void)
{
    bench b;
    rating_result r;
    char err[AC_ERR_MAX];
    CU_ASSERT_FATAL(bench_open(&b, g_ref, "USD", 60, 3000));

    r = bench_call(&b, "add_usca", "+12125550100", 1, 61);
    EXPECT("US geographic", r, OUTCOME_EXEMPT, NULL, 2, 0, 0, 0);
    r = bench_call(&b, "add_usca", "+18005550100", 1, 60);
    EXPECT("US toll free", r, OUTCOME_EXEMPT, NULL, 1, 0, 0, 0);
    r = bench_call(&b, "add_usca", "+15145550100", 1, 60);
    EXPECT("CA", r, OUTCOME_EXEMPT, NULL, 1, 0, 0, 0);
    r = bench_call(&b, "acpea_usca", "+14165550100", 1, 120);
    EXPECT("CA, pay-per-minute + add-on", r, OUTCOME_EXEMPT, NULL, 2, 0, 0,
           0);
    r = bench_call(&b, "add_usca", "+19005550100", 1, 60);
    EXPECT("US premium is no add-on territory", r, OUTCOME_BILLED, NULL, 1,
           0, 1, 10000);
    r = bench_call(&b, "add_usca", "+18765551234", 1, 60);
    EXPECT("JM is +1 but not US", r, OUTCOME_BILLED, NULL, 1, 0, 1, 3000);
    r = bench_call(&b, "acpea_usca", "+17875550100", 1, 60);
    EXPECT("PR is not US (no pool for pay-per-minute)", r, OUTCOME_BILLED,
           NULL, 1, 0, 1, 200);
    r = bench_call(&b, "add_usca", "+17875550100", 1, 60);
    EXPECT("PR is Zone A, not add-on territory", r, OUTCOME_POOL, NULL, 1,
           1, 0, 0);
    r = bench_call(&b, "add", "+12125550100", 1, 60);
    EXPECT("US without the add-on draws on the pool", r, OUTCOME_POOL,
           NULL, 1, 1, 0, 0);
    r = bench_call(&b, "acpea", "+12125550100", 1, 60);
    EXPECT("US, pay-per-minute without add-on", r, OUTCOME_BILLED, NULL, 1,
           0, 1, 200);
    r = bench_call(&b, "add_usca", "+442071234567", 1, 60);
    EXPECT("GB with the add-on is plain pool", r, OUTCOME_POOL, NULL, 1, 1,
           0, 0);

    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(b.t, err), AC_OK);
    const rating_totals *tot = rating_tenant_totals(b.t);
    CU_ASSERT_EQUAL(tot->exempt_minutes, 6);
    CU_ASSERT_EQUAL(tot->outcomes[OUTCOME_EXEMPT], 4);
    CU_ASSERT_EQUAL(tot->pool_used, 3);
    CU_ASSERT_EQUAL(tot->billed_minutes, 4);
    CU_ASSERT_EQUAL(tot->exact_total, 10000 + 3000 + 200 + 200);
    const rating_organizer *o;
    CU_ASSERT_EQUAL_FATAL(rating_tenant_organizers(b.t, &o), 4);
    CU_ASSERT_STRING_EQUAL(o[0].id, "acpea");
    CU_ASSERT_EQUAL(o[0].addon_held, 0);
    CU_ASSERT_STRING_EQUAL(o[1].id, "acpea_usca");
    CU_ASSERT_EQUAL(o[1].exempt_minutes, 2);
    CU_ASSERT_EQUAL(o[1].billed_minutes, 1);
    CU_ASSERT_EQUAL(o[1].addon_held, 1);
    CU_ASSERT_EQUAL(o[1].addon_without_prereq, 0);
    CU_ASSERT_STRING_EQUAL(o[2].id, "add");
    CU_ASSERT_EQUAL(o[2].exempt_minutes, 0);
    CU_ASSERT_EQUAL(o[2].pool_minutes, 1);
    CU_ASSERT_EQUAL(o[2].addon_held, 0);
    CU_ASSERT_STRING_EQUAL(o[3].id, "add_usca");
    CU_ASSERT_EQUAL(o[3].exempt_minutes, 4);
    CU_ASSERT_EQUAL(o[3].pool_minutes, 2);
    CU_ASSERT_EQUAL(o[3].billed_minutes, 2);
    CU_ASSERT_EQUAL(o[3].amount, 13000);
    CU_ASSERT_EQUAL(o[3].addon_held, 1);
    bench_close(&b);
}

/* ref.destination_lengths: a number of exactly `digits` E.164 digits whose
 * longest destination prefix has a length row takes the row's kind. */
static void test_destination_lengths(void)
{
    char err[AC_ERR_MAX], c[3];
    rating_kind k;
    int len;
    bench b;
    rating_result r;
    rating_ref *ref = rating_ref_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "39", "IT", "geographic",
                                               err), AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "393", "IT",
                                               "non_geographic", err), AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_destination_length(ref, "393", 11, "IT",
                                                      "mobile", err), AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_destination_length(ref, "393", 12, "IT",
                                                      "mobile", err), AC_OK);
    /* bad rows change nothing */
    CU_ASSERT_EQUAL(rating_ref_add_destination_length(ref, "393", 12, "IT",
                                                      "geographic", err),
                    AC_EDATA);                          /* duplicate */
    CU_ASSERT_EQUAL(rating_ref_add_destination_length(ref, "394", 12, "IT",
                                                      "mobile", err),
                    AC_EDATA);                          /* no destination */
    CU_ASSERT_EQUAL(rating_ref_add_destination_length(ref, "3", 12, "IT",
                                                      "mobile", err),
                    AC_EDATA);                          /* no destination */
    CU_ASSERT_EQUAL(rating_ref_add_destination_length(ref, "3933", 12, "IT",
                                                      "mobile", err),
                    AC_EDATA);                          /* no destination */
    CU_ASSERT_EQUAL(rating_ref_add_destination_length(ref, "39x", 12, "IT",
                                                      "mobile", err),
                    AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_destination_length(ref, NULL, 12, "IT",
                                                      "mobile", err),
                    AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_destination_length(ref, "393", 2, "IT",
                                                      "mobile", err),
                    AC_EDATA);                          /* < the prefix */
    CU_ASSERT_EQUAL(rating_ref_add_destination_length(ref, "393", 16, "IT",
                                                      "mobile", err),
                    AC_EDATA);                          /* > E.164 */
    CU_ASSERT_EQUAL(rating_ref_add_destination_length(ref, "393", 13, "IT",
                                                      "cellular", err),
                    AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_destination_length(ref, "393", 13, "it",
                                                      "mobile", err),
                    AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_destination_length(ref, "393", 13, NULL,
                                                      "mobile", err),
                    AC_EDATA);
    CU_ASSERT_EQUAL(rating_ref_add_zone_a(ref, "IT", err), AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_rate(ref, "EUR", "39", 100, 0,
                                        INT64_MIN, RATING_FOREVER, err),
                    AC_OK);

    /* +39 333 1234567: 12 digits, mobile; 13 digits: the prefix's kind */
    CU_ASSERT_EQUAL(rating_ref_destination(ref, "393331234567", 12, c, &k,
                                           &len), 1);
    CU_ASSERT_STRING_EQUAL(c, "IT");
    CU_ASSERT_EQUAL(k, KIND_MOBILE);
    CU_ASSERT_EQUAL(len, 3);
    CU_ASSERT_EQUAL(rating_ref_destination(ref, "39333123456", 11, c, &k,
                                           &len), 1);
    CU_ASSERT_EQUAL(k, KIND_MOBILE);
    CU_ASSERT_EQUAL(rating_ref_destination(ref, "3933312345678", 13, c, &k,
                                           &len), 1);
    CU_ASSERT_EQUAL(k, KIND_NON_GEOGRAPHIC);
    CU_ASSERT_EQUAL(len, 3);
    /* a length row belongs to its prefix only, not to a shorter one */
    CU_ASSERT_EQUAL(rating_ref_destination(ref, "390612345678", 12, c, &k,
                                           &len), 1);
    CU_ASSERT_EQUAL(k, KIND_GEOGRAPHIC);
    CU_ASSERT_EQUAL(len, 2);

    /* Rated: the 12-digit mobile draws on the pool, the 13-digit number
     * is billed, and a masked number's hidden digits count. */
    CU_ASSERT_FATAL(bench_open(&b, ref, "EUR", 10, 3000));
    r = bench_call(&b, "add", "+39 333 1234567", 1, 60);
    EXPECT("IT mobile, 12 digits", r, OUTCOME_POOL, NULL, 1, 1, 0, 0);
    CU_ASSERT_EQUAL(r.kind, KIND_MOBILE);
    r = bench_call(&b, "add", "+39 333 123456", 1, 60);
    EXPECT("IT mobile, 11 digits", r, OUTCOME_POOL, NULL, 1, 1, 0, 0);
    r = bench_call(&b, "add", "+39 333 12345678", 1, 60);
    EXPECT("13 digits: voicemail", r, OUTCOME_BILLED, NULL, 1, 0, 1, 100);
    CU_ASSERT_EQUAL(r.kind, KIND_NON_GEOGRAPHIC);
    r = bench_call(&b, "add", "+39 333 123 4***", 1, 60);
    EXPECT("masked, 12 digits", r, OUTCOME_POOL, NULL, 1, 1, 0, 0);
    CU_ASSERT_EQUAL(r.kind, KIND_MOBILE);
    r = bench_call(&b, "add", "+39 333 123 45***", 1, 60);
    EXPECT("masked, 13 digits", r, OUTCOME_BILLED, NULL, 1, 0, 1, 100);
    bench_close(&b);
    rating_ref_free(ref);
}

static void test_rule_pool(void)
{
    bench b;
    rating_result r;
    char err[AC_ERR_MAX];
    CU_ASSERT_FATAL(bench_open(&b, g_ref, "USD", 10, 3000));

    r = bench_call(&b, "add", "+442071234567", 1, 240);
    EXPECT("r > m", r, OUTCOME_POOL, NULL, 4, 4, 0, 0);
    r = bench_call(&b, "add", "+12125550100", 1, 301);
    EXPECT("r == m after a draw", r, OUTCOME_POOL, NULL, 6, 6, 0, 0);
    r = bench_call(&b, "add", "+12125550100", 1, 1);
    EXPECT("r == 0", r, OUTCOME_BILLED, NULL, 1, 0, 1, 200);
    bench_close(&b);

    /* r == m exactly: pool; then r == 0: billed */
    CU_ASSERT_FATAL(bench_open(&b, g_ref, "USD", 10, 3000));
    r = bench_call(&b, "add", "+12125550100", 1, 600);
    EXPECT("r == m", r, OUTCOME_POOL, NULL, 10, 10, 0, 0);
    r = bench_call(&b, "add", "+12125550100", 1, 1);
    EXPECT("r == 0", r, OUTCOME_BILLED, NULL, 1, 0, 1, 200);
    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(b.t, err), AC_OK);
    CU_ASSERT_EQUAL(rating_tenant_totals(b.t)->pool_used, 10);
    bench_close(&b);

    /* split: 0 < r < m, billed part at the rate, fee once */
    CU_ASSERT_FATAL(bench_open(&b, g_ref, "USD", 10, 3000));
    r = bench_call(&b, "add", "+12125550100", 1, 540);
    EXPECT("pool 9 of 10", r, OUTCOME_POOL, NULL, 9, 9, 0, 0);
    r = bench_call(&b, "add", "+442071234567", 1, 121);
    EXPECT("split 1 + 2", r, OUTCOME_SPLIT, NULL, 3, 1, 2, 600);
    CU_ASSERT_EQUAL(r.per_minute, 300);
    CU_ASSERT_EQUAL(r.has_rate, 1);
    r = bench_call(&b, "add", "+442071234567", 1, 60);
    EXPECT("then billed", r, OUTCOME_BILLED, NULL, 1, 0, 1, 300);
    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(b.t, err), AC_OK);
    const rating_totals *tot = rating_tenant_totals(b.t);
    CU_ASSERT_EQUAL(tot->pool_used, 10);
    CU_ASSERT_EQUAL(tot->billed_minutes, 3);
    CU_ASSERT_EQUAL(tot->outcomes[OUTCOME_SPLIT], 1);
    const rating_line *lines;
    CU_ASSERT_EQUAL_FATAL(rating_tenant_lines(b.t, &lines), 1);
    CU_ASSERT_STRING_EQUAL(lines[0].country, "GB");
    CU_ASSERT_EQUAL(lines[0].calls, 2);
    CU_ASSERT_EQUAL(lines[0].minutes, 3);
    CU_ASSERT_EQUAL(lines[0].exact, 900);
    CU_ASSERT_EQUAL(lines[0].amount, 900);
    bench_close(&b);

    /* split with a connection fee: JM is no Zone A, so use a fee on a Zone
     * A prefix of our own */
    rating_ref *ref = rating_ref_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "44", "GB", "geographic",
                                               err), AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "4480", "GB",
                                               "toll_free", err), AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "4470", "GB",
                                               "personal", err), AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_zone_a(ref, "GB", err), AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_rate(ref, "GBP", "44", 125, 75,
                                        US(2026, 1, 1, 0, 0, 0),
                                        RATING_FOREVER, err), AC_OK);
    CU_ASSERT_FATAL(bench_open(&b, ref, "GBP", 2, 3000));
    r = bench_call(&b, "add", "+447012345678", 1, 60);
    EXPECT("personal is not pool-eligible", r, OUTCOME_BILLED, NULL, 1, 0,
           1, 200);
    r = bench_call(&b, "add", "+448001234567", 1, 300);
    EXPECT("toll free split with fee", r, OUTCOME_SPLIT, NULL, 5, 2, 3,
           3 * 125 + 75);
    CU_ASSERT_EQUAL(r.connection_fee, 75);
    bench_close(&b);
    rating_ref_free(ref);
}

/* NO_RATE: rejected, and nothing drawn from the pool. */
static void test_rule_no_rate(void)
{
    bench b;
    rating_result r;
    char err[AC_ERR_MAX];
    CU_ASSERT_FATAL(bench_open(&b, g_ref_sparse, "USD", 1, 3000));

    r = bench_call(&b, "add", "+442071234567", 1, 120);
    EXPECT("split without a rate", r, OUTCOME_REJECTED, "NO_RATE", 2, 0, 0,
           0);
    CU_ASSERT_EQUAL(r.has_rate, 0);
    CU_ASSERT_STRING_EQUAL(r.country, "GB");
    r = bench_call(&b, "add", "+26377123456", 1, 60);
    EXPECT("billed without a rate", r, OUTCOME_REJECTED, "NO_RATE", 1, 0, 0,
           0);
    r = bench_call(&b, "add", "+442071234567", 1, 60);
    EXPECT("the pool is still there", r, OUTCOME_POOL, NULL, 1, 1, 0, 0);
    r = bench_call(&b, "add", "+442071234567", 1, 60);
    EXPECT("r == 0 without a rate", r, OUTCOME_REJECTED, "NO_RATE", 1, 0, 0,
           0);
    r = bench_call(&b, "add", "+12125550100", 1, 60);
    EXPECT("US after the pool", r, OUTCOME_BILLED, NULL, 1, 0, 1, 200);
    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(b.t, err), AC_OK);
    const rating_totals *tot = rating_tenant_totals(b.t);
    CU_ASSERT_EQUAL(tot->outcomes[OUTCOME_REJECTED], 3);
    CU_ASSERT_EQUAL(tot->pool_used, 1);
    CU_ASSERT_EQUAL(tot->billed_minutes, 1);
    CU_ASSERT_EQUAL(tot->total, 200);
    const rating_organizer *o;
    CU_ASSERT_EQUAL_FATAL(rating_tenant_organizers(b.t, &o), 1);
    CU_ASSERT_EQUAL(o[0].calls, 5);
    CU_ASSERT_EQUAL(o[0].pool_minutes, 1);
    CU_ASSERT_EQUAL(o[0].billed_minutes, 1);
    bench_close(&b);

    /* a currency without any rate */
    CU_ASSERT_FATAL(bench_open(&b, g_ref, "CHF", 60, 3000));
    r = bench_call(&b, "add", "+12125550100", 1, 60);
    EXPECT("pool needs no rate", r, OUTCOME_POOL, NULL, 1, 1, 0, 0);
    r = bench_call(&b, "add", "+18765551234", 1, 60);
    EXPECT("no CHF rate", r, OUTCOME_REJECTED, "NO_RATE", 1, 0, 0, 0);
    bench_close(&b);
}

static void test_rule_pay_per_minute(void)
{
    bench b;
    rating_result r;
    char err[AC_ERR_MAX];
    CU_ASSERT_FATAL(bench_open(&b, g_ref, "USD", 60, 3000));

    r = bench_call(&b, "acpea", "+12125550100", 1, 120);
    EXPECT("pay-per-minute US", r, OUTCOME_BILLED, NULL, 2, 0, 2, 400);
    r = bench_call(&b, "acpea", "+442071234567", 1, 3600);
    EXPECT("pay-per-minute GB", r, OUTCOME_BILLED, NULL, 60, 0, 60, 18000);
    r = bench_call(&b, "acpea_usca", "+33142685300", 1, 60);
    EXPECT("pay-per-minute FR", r, OUTCOME_BILLED, NULL, 1, 0, 1, 350);
    r = bench_call(&b, "add", "+442071234567", 1, 3600);
    EXPECT("the whole pool is left", r, OUTCOME_POOL, NULL, 60, 60, 0, 0);
    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(b.t, err), AC_OK);
    const rating_totals *tot = rating_tenant_totals(b.t);
    CU_ASSERT_EQUAL(tot->pool_used, 60);
    CU_ASSERT_EQUAL(tot->billed_minutes, 63);
    CU_ASSERT_EQUAL(tot->total, 400 + 18000 + 400);
    bench_close(&b);
}

/* Licences are looked up at each call's start. */
static void test_rule_licence_at_call(void)
{
    char err[AC_ERR_MAX];
    const int64_t from = OCT(15, 0, 0, 0), to = OCT(20, 0, 0, 0);
    rating_licences *l = rating_licences_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_EQUAL(rating_licences_add(l, "frank", GRANT_AUDIO_CONFERENCING, from, to,
                                        err), AC_OK);
    CU_ASSERT_EQUAL(rating_licences_add(l, "frank", GRANT_AUDIO_CONFERENCING_PPM, to,
                                        RATING_FOREVER, err), AC_OK);
    rating_tenant *t = rating_tenant_new(g_ref, l, "USD", 60, 3000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    call_in c = {"frank", from - 1, "+442071234567", 1, 60};
    rating_result r = rate_one(t, uid(1), &c);
    EXPECT("before", r, OUTCOME_REJECTED, "ORGANIZER_NOT_LICENSED", -1, 0, 0,
           0);
    c.t = from;
    r = rate_one(t, uid(2), &c);
    EXPECT("at valid_from", r, OUTCOME_POOL, NULL, 1, 1, 0, 0);
    c.t = to - 1;
    r = rate_one(t, uid(3), &c);
    EXPECT("just before valid_to", r, OUTCOME_POOL, NULL, 1, 1, 0, 0);
    c.t = to;
    r = rate_one(t, uid(4), &c);
    EXPECT("at valid_to: pay-per-minute", r, OUTCOME_BILLED, NULL, 1, 0, 1,
           300);
    rating_tenant_free(t);
    rating_licences_free(l);
}

static void test_rule_fair_use(void)
{
    bench b;
    rating_result r;
    char err[AC_ERR_MAX];
    CU_ASSERT_FATAL(bench_open(&b, g_ref, "USD", 60, 5));

    r = bench_call(&b, "acpea_usca", "+12125550100", 1, 300);
    EXPECT("exactly the threshold", r, OUTCOME_EXEMPT, NULL, 5, 0, 0, 0);
    r = bench_call(&b, "add_usca", "+12125550100", 1, 180);
    EXPECT("3 minutes", r, OUTCOME_EXEMPT, NULL, 3, 0, 0, 0);
    r = bench_call(&b, "add_usca", "+15145550100", 1, 121);
    EXPECT("3 more", r, OUTCOME_EXEMPT, NULL, 3, 0, 0, 0);
    /* non-exempt minutes do not count */
    r = bench_call(&b, "acpea_usca", "+442071234567", 1, 600);
    EXPECT("billed", r, OUTCOME_BILLED, NULL, 10, 0, 10, 3000);
    r = bench_call(&b, "add", "+12125550100", 1, 600);
    EXPECT("pool", r, OUTCOME_POOL, NULL, 10, 10, 0, 0);
    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(b.t, err), AC_OK);
    const rating_organizer *o;
    CU_ASSERT_EQUAL_FATAL(rating_tenant_organizers(b.t, &o), 3);
    CU_ASSERT_STRING_EQUAL(o[0].id, "acpea_usca");
    CU_ASSERT_EQUAL(o[0].exempt_minutes, 5);
    CU_ASSERT_EQUAL(o[0].fair_use_review, 0);
    CU_ASSERT_STRING_EQUAL(o[1].id, "add");
    CU_ASSERT_EQUAL(o[1].fair_use_review, 0);
    CU_ASSERT_STRING_EQUAL(o[2].id, "add_usca");
    CU_ASSERT_EQUAL(o[2].exempt_minutes, 6);
    CU_ASSERT_EQUAL(o[2].fair_use_review, 1);
    CU_ASSERT_EQUAL(rating_tenant_totals(b.t)->exempt_minutes, 11);
    bench_close(&b);
}

static void test_rule_addon_without_prereq(void)
{
    bench b;
    char err[AC_ERR_MAX];
    CU_ASSERT_FATAL(bench_open(&b, g_ref, "USD", 60, 3000));
    int64_t first = b.now;
    bench_call(&b, "usca", "+12125550100", 1, 60);
    bench_call(&b, "usca", "+442071234567", 1, 60);
    bench_call(&b, "add_usca", "+442071234567", 1, 60);
    bench_call(&b, "add_usca", "+26377123456", 1, 60);     /* a line */
    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(b.t, err), AC_OK);
    const rating_organizer *o;
    CU_ASSERT_EQUAL_FATAL(rating_tenant_organizers(b.t, &o), 2);
    CU_ASSERT_STRING_EQUAL(o[0].id, "add_usca");
    CU_ASSERT_EQUAL(o[0].addon_held, 1);
    CU_ASSERT_EQUAL(o[0].addon_without_prereq, 0);
    CU_ASSERT_STRING_EQUAL(o[1].id, "usca");
    CU_ASSERT_EQUAL(o[1].calls, 2);
    CU_ASSERT_EQUAL(o[1].addon_held, 1);
    CU_ASSERT_EQUAL(o[1].addon_without_prereq, 1);
    CU_ASSERT_EQUAL(o[1].first_issue_us, first);
    CU_ASSERT_EQUAL(rating_tenant_totals(b.t)->outcomes[OUTCOME_REJECTED],
                    2);
    bench_close(&b);
}

/* Many organizers and invoice lines: both hash maps grow, the results
 * come back sorted and nothing is lost. */
static void test_tenant_many(void)
{
    enum { N = 150 };
    char err[AC_ERR_MAX], prefix[16], country[3], user[24], number[32];
    const int64_t J = US(2026, 1, 1, 0, 0, 0);
    rating_ref *ref = rating_ref_new();
    rating_licences *l = rating_licences_new();
    int ok = ref != NULL && l != NULL;

    CU_ASSERT_FATAL(ok);
    for (int i = 0; i < N && ok; i++) {
        snprintf(prefix, sizeof prefix, "5%03d", i);
        country[0] = (char)('A' + i / 26);
        country[1] = (char)('A' + i % 26);
        country[2] = '\0';
        ok &= rating_ref_add_destination(ref, prefix, country, "geographic",
                                         err) == AC_OK;
        ok &= rating_ref_add_rate(ref, "USD", prefix, 100 + i, i % 3, J,
                                  RATING_FOREVER, err) == AC_OK;
        snprintf(user, sizeof user, "u%03d", i);
        ok &= rating_licences_add(l, user, GRANT_AUDIO_CONFERENCING_PPM, J,
                                  RATING_FOREVER, err) == AC_OK;
    }
    CU_ASSERT_FATAL(ok);
    rating_tenant *t = rating_tenant_new(ref, l, "USD", 0, 3000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    int64_t now = OCT(1, 0, 0, 0), exact = 0, total = 0;
    /* two rounds: organizers and lines seen again after the maps grew */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < N; i++) {
            int d = (i * 37) % N;               /* a scrambled order */
            snprintf(user, sizeof user, "u%03d", N - 1 - d);
            snprintf(number, sizeof number, "+5%03d1234567", d);
            call_in c = {user, now++, number, 1, 60};
            rating_result r = rate_one(t, uid(round * N + i), &c);
            ok &= r.outcome == OUTCOME_BILLED &&
                  r.amount == 100 + d + d % 3;
        }
    CU_ASSERT(ok);
    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(t, err), AC_OK);
    const rating_line *lines;
    const rating_organizer *orgs;
    CU_ASSERT_EQUAL_FATAL(rating_tenant_lines(t, &lines), N);
    CU_ASSERT_EQUAL_FATAL(rating_tenant_organizers(t, &orgs), N);
    ok = 1;
    for (int i = 0; i < N; i++) {
        int64_t e = 2 * (100 + i + i % 3);
        ok &= lines[i].country[0] == 'A' + i / 26 &&
              lines[i].country[1] == 'A' + i % 26 &&
              lines[i].per_minute == 100 + i && lines[i].calls == 2 &&
              lines[i].minutes == 2 && lines[i].exact == e;
        exact += e;
        total += money_round_cents(e);
        snprintf(user, sizeof user, "u%03d", i);
        ok &= strcmp(orgs[i].id, user) == 0 && orgs[i].calls == 2 &&
              orgs[i].billed_minutes == 2 &&
              orgs[i].amount == 2 * (100 + (N - 1 - i) + (N - 1 - i) % 3);
    }
    CU_ASSERT(ok);
    const rating_totals *tot = rating_tenant_totals(t);
    CU_ASSERT_EQUAL(tot->calls, 2 * N);
    CU_ASSERT_EQUAL(tot->billed_minutes, 2 * N);
    CU_ASSERT_EQUAL(tot->exact_total, exact);
    CU_ASSERT_EQUAL(tot->total, total);
    rating_tenant_free(t);
    rating_licences_free(l);
    rating_ref_free(ref);
}

/* An empty period finishes cleanly.  Run in a child process: with no
 * lines and no organizers finish sorts empty arrays, and qsort(NULL, 0)
 * is undefined behaviour, which the sanitizer build turns into an abort. */
static int empty_period_child(void)
{
    char err[AC_ERR_MAX];
    const rating_line *lines;
    const rating_organizer *orgs;
    rating_licences *l = rating_licences_new();
    rating_tenant *t = l ? rating_tenant_new(g_ref, l, "USD", 120, 3000)
                         : NULL;
    int code = 0;

    if (t == NULL)
        code = 10;
    else if (rating_tenant_finish(t, err) != AC_OK)
        code = 11;
    else {
        const rating_totals *tot = rating_tenant_totals(t);
        if (tot->calls != 0 || tot->pool_minutes != 120 ||
            tot->pool_used != 0 || tot->total != 0 ||
            tot->exact_total != 0)
            code = 12;
        else if (rating_tenant_lines(t, &lines) != 0 ||
                 rating_tenant_organizers(t, &orgs) != 0)
            code = 13;
    }
    rating_tenant_free(t);
    rating_tenant_free(NULL);
    rating_licences_free(l);
    return code;
}

/* A tenant of the cast in currency, rating calls with call ids. */
static ac_status rate_ids(rating_tenant *t, const char *usage_id, int64_t at,
                          const char *org, const char *number, int32_t secs,
                          const char *call_id, const char *conf_id,
                          rating_result *r, char *err)
{
    rating_call call = {
        .usage_id = usage_id, .start_us = at, .organizer_id = org,
        .number = number, .has_duration = 1, .duration_seconds = secs,
        .call_id = call_id, .conference_id = conf_id,
    };
    return rating_tenant_rate(t, &call, r, err);
}

/* docs/billing-rules.md 3, step 4: a call repeating an earlier one of the same instant is
 * DUPLICATE and names it; the comparison normalises the organizer and
 * the number's spaces; a NULL id turns the test off; another instant
 * forgets the earlier calls. */
static void test_rule_duplicate(void)
{
    bench b;
    rating_result r;
    char err[AC_ERR_MAX];
    const int64_t t0 = OCT(5, 1, 0, 0);

    CU_ASSERT_FATAL(bench_open(&b, g_ref, "USD", 1000, 3000));
    CU_ASSERT_EQUAL(rate_ids(b.t, uid(1), t0, "add", "+442071234567", 130,
                             "c1", "k1", &r, err), AC_OK);
    CU_ASSERT_EQUAL(r.outcome, OUTCOME_POOL);
    CU_ASSERT_PTR_NULL(r.duplicate_of);
    CU_ASSERT_EQUAL(rate_ids(b.t, uid(2), t0, " ADD", "+44 20 7123 4567",
                             130, "c1", "k1", &r, err), AC_OK);
    CU_ASSERT_EQUAL(r.outcome, OUTCOME_REJECTED);
    CHECK_STR(r.reason, "DUPLICATE", "reason");
    CHECK_STR(r.duplicate_of, uid(1), "duplicate of");
    CU_ASSERT_EQUAL(r.minutes, 3);
    CU_ASSERT_EQUAL(r.pool_minutes + r.billed_minutes, 0);
    /* different duration, conference, missing call id: not duplicates */
    CU_ASSERT_EQUAL(rate_ids(b.t, uid(3), t0, "add", "+442071234567", 131,
                             "c1", "k1", &r, err), AC_OK);
    CU_ASSERT_EQUAL(r.outcome, OUTCOME_POOL);
    CU_ASSERT_EQUAL(rate_ids(b.t, uid(4), t0, "add", "+442071234567", 130,
                             "c1", "k2", &r, err), AC_OK);
    CU_ASSERT_EQUAL(r.outcome, OUTCOME_POOL);
    CU_ASSERT_EQUAL(rate_ids(b.t, uid(5), t0, "add", "+442071234567", 130,
                             NULL, "k1", &r, err), AC_OK);
    CU_ASSERT_EQUAL(r.outcome, OUTCOME_POOL);
    CU_ASSERT_EQUAL(rate_ids(b.t, uid(6), t0, "add", "+442071234567", 130,
                             NULL, "k1", &r, err), AC_OK);
    CU_ASSERT_EQUAL(r.outcome, OUTCOME_POOL);
    /* a duplicate of a duplicate names the first call */
    CU_ASSERT_EQUAL(rate_ids(b.t, uid(7), t0, "add", "+442071234567", 130,
                             "c1", "k1", &r, err), AC_OK);
    CHECK_STR(r.duplicate_of, uid(1), "duplicate of");
    /* the next instant starts afresh */
    CU_ASSERT_EQUAL(rate_ids(b.t, uid(8), t0 + 1, "add", "+442071234567",
                             130, "c1", "k1", &r, err), AC_OK);
    CU_ASSERT_EQUAL(r.outcome, OUTCOME_POOL);
    /* an invalid duration is rejected before the duplicate test */
    CU_ASSERT_EQUAL(rate_ids(b.t, uid(9), t0 + 1, "add", "+442071234567",
                             -1, "c1", "k1", &r, err), AC_OK);
    CHECK_STR(r.reason, "INVALID_DURATION", "reason");
    /* a burst of 5,000 calls at one instant, each twice */
    int dups = 0;
    for (int i = 0; i < 10000; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "b%d", i % 5000);
        CU_ASSERT_EQUAL_FATAL(rate_ids(b.t, uid(100 + i), t0 + 2, "add",
                                       "+442071234567", 60, cid, "k", &r,
                                       err), AC_OK);
        dups += r.reason != NULL && strcmp(r.reason, "DUPLICATE") == 0;
    }
    CU_ASSERT_EQUAL(dups, 5000);
    bench_close(&b);
}

/* docs/billing-rules.md 3, "Numbers" and step 6: masked numbers rate on their visible
 * digits unless a longer destination or rate prefix makes them
 * ambiguous. */
static void test_rule_masked(void)
{
    char err[AC_ERR_MAX];
    rating_result r;
    rating_ref *ref = rating_ref_new();
    rating_licences *l = rating_licences_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "49", "DE", "geographic",
                                               err), AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "49900", "DE",
                                               "premium", err), AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_zone_a(ref, "DE", err), AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_rate(ref, "EUR", "49", 100, 0,
                                        INT64_MIN, RATING_FOREVER, err),
                    AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_rate(ref, "EUR", "4930123", 900, 0,
                                        INT64_MIN, RATING_FOREVER, err),
                    AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_rate(ref, "USD", "4940", 900, 0,
                                        INT64_MIN, RATING_FOREVER, err),
                    AC_OK);
    CU_ASSERT_EQUAL(rating_licences_add(l, "greta",
                                        GRANT_AUDIO_CONFERENCING_PPM,
                                        INT64_MIN, RATING_FOREVER, err),
                    AC_OK);
    rating_tenant *t = rating_tenant_new(ref, l, "EUR", 0, 3000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);

    static const struct {
        const char *number, *reason;
        int64_t per_minute;
        int dest_len;
    } v[] = {
        {"+49 30 1234 5***", NULL, 900, 2},     /* rate 4930123 visible */
        {"+49 40 1234 5***", NULL, 100, 2},     /* USD 4940: not EUR's */
        {"+49 30 12** **", "MASKED_AMBIGUOUS", 0, 2},   /* rate 4930123 */
        {"+49 90 0123 ****", NULL, 100, 5},     /* visible 49900123 */
        {"+49 9 ****", "MASKED_AMBIGUOUS", 0, 2},       /* premium 49900 */
        {"+49 9*****", "INVALID_NUMBER", 0, 0},         /* 5 masked */
        {"+4990012 3***", NULL, 100, 5},        /* premium, visible */
        {"+49 30 1234 5*6*", "INVALID_NUMBER", 0, 0},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        CU_ASSERT_EQUAL_FATAL(rate_ids(t, uid((int)i + 1), OCT(1, 0, 0, 0) +
                                       (int64_t)i, "greta", v[i].number, 60,
                                       NULL, NULL, &r, err), AC_OK);
        CHECK((v[i].reason == NULL && r.reason == NULL) ||
                  (v[i].reason != NULL && r.reason != NULL &&
                   strcmp(v[i].reason, r.reason) == 0),
              "%s: reason %s, expected %s", v[i].number,
              r.reason ? r.reason : "-", v[i].reason ? v[i].reason : "-");
        CHECK(r.per_minute == v[i].per_minute &&
                  r.dest_prefix_len == v[i].dest_len,
              "%s: rate %lld prefix %d, expected %lld prefix %d",
              v[i].number, (long long)r.per_minute, r.dest_prefix_len,
              (long long)v[i].per_minute, v[i].dest_len);
    }
    CU_ASSERT_EQUAL(rating_ref_has_currency(ref, "EUR"), 1);
    CU_ASSERT_EQUAL(rating_ref_has_currency(ref, "CHF"), 0);
    rating_tenant_free(t);
    rating_licences_free(l);
    rating_ref_free(ref);
}

/* docs/billing-rules.md 3, "Money": no product or sum wraps; a figure the ledger cannot
 * hold fails with the call named. */
static void test_rule_overflow(void)
{
    char err[AC_ERR_MAX];
    rating_result r;
    rating_ref *ref = rating_ref_new();
    rating_licences *l = rating_licences_new();
    const int64_t top = INT64_C(999999999999);      /* 99,999,999.9999 */

    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_EQUAL(rating_ref_add_destination(ref, "33", "FR", "geographic",
                                               err), AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_rate(ref, "EUR", "33", top, top,
                                        INT64_MIN, RATING_FOREVER, err),
                    AC_OK);
    CU_ASSERT_EQUAL(rating_ref_add_rate(ref, "EUR", "3399", INT64_MAX / 2,
                                        0, INT64_MIN, RATING_FOREVER, err),
                    AC_OK);
    CU_ASSERT_EQUAL(rating_licences_add(l, "omar",
                                        GRANT_AUDIO_CONFERENCING_PPM,
                                        INT64_MIN, RATING_FOREVER, err),
                    AC_OK);

    /* Durations that once wrapped are rejected; the longest is billed. */
    rating_tenant *t = rating_tenant_new(ref, l, "EUR", 0, 3000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    const int32_t hostile[] = { INT32_MAX, 2013265920, 108001, -1,
                                INT32_MIN };
    for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
        CU_ASSERT_EQUAL(rate_ids(t, uid((int)i + 1), OCT(1, 0, 0, (int)i),
                                 "omar", "+33142685300", hostile[i], NULL,
                                 NULL, &r, err), AC_OK);
        CHECK_STR(r.reason, "INVALID_DURATION", "hostile duration");
        CU_ASSERT_EQUAL(r.amount, 0);
    }
    CU_ASSERT_EQUAL(rate_ids(t, uid(10), OCT(2, 0, 0, 0), "omar",
                             "+33142685300", RATING_MAX_DURATION, NULL, NULL,
                             &r, err), AC_OK);
    CU_ASSERT_EQUAL(r.minutes, 1800);
    CHECK_I64(r.amount, 1800 * top + top, "longest call at the top rate");
    /* Six more of them do not fit numeric(16,4). */
    ac_status rc = AC_OK;
    for (int i = 0; i < 6 && rc == AC_OK; i++)
        rc = rate_ids(t, uid(11 + i), OCT(3 + i, 0, 0, 0), "omar",
                      "+33142685300", RATING_MAX_DURATION, NULL, NULL, &r,
                      err);
    CU_ASSERT_EQUAL(rc, AC_EDATA);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no longer fit the ledger"));
    rating_tenant_free(t);

    /* A rate whose product overflows int64 fails, naming the call. */
    t = rating_tenant_new(ref, l, "EUR", 0, 3000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(rate_ids(t, uid(20), OCT(1, 0, 0, 0), "omar",
                             "+339912345678", 120, NULL, NULL, &r, err),
                    AC_EDATA);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, uid(20)));
    rating_tenant_free(t);
    rating_licences_free(l);
    rating_ref_free(ref);
}

/* docs/billing-rules.md 3, "Money" and "Tax": lines rounded to the minor unit, tax on the
 * subtotal rounded once. */
static void test_money_minor_units(void)
{
    char buf[32];
    CHECK_I64(money_round_minor(175000, 0), 180000, "17.5 JPY");
    CHECK_I64(money_round_minor(174999, 0), 170000, "17.4999 JPY");
    CHECK_I64(money_round_minor(-175000, 0), -180000, "-17.5 JPY");
    CHECK_I64(money_round_minor(1845, 3), 1850, "0.1845 BHD");
    CHECK_I64(money_round_minor(1844, 3), 1840, "0.1844 BHD");
    CHECK_I64(money_round_minor(1050, 2), 1100, "0.105 USD");
    CHECK_I64(money_round_minor(12345, 4), 12345, "4 decimals");
    money_format_minor(420000, 0, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "42");
    money_format_minor(1850, 3, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "0.185");
    money_format_minor(-51500, 2, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "-5.15");
    money_format_minor(12345, 4, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "1.2345");

    int64_t tax = -1;
    CU_ASSERT_EQUAL(money_tax(380000, 1000, 0, &tax), 0);   /* 38 JPY */
    CHECK_I64(tax, 40000, "10 % of 38 JPY");
    CU_ASSERT_EQUAL(money_tax(1850, 1000, 3, &tax), 0);     /* 0.185 BHD */
    CHECK_I64(tax, 190, "10 % of 0.185 BHD");
    CU_ASSERT_EQUAL(money_tax(51500, 2000, 2, &tax), 0);    /* 5.15 USD */
    CHECK_I64(tax, 10300, "20 % of 5.15");
    CU_ASSERT_EQUAL(money_tax(51500, 0, 2, &tax), 0);
    CHECK_I64(tax, 0, "no tax");
    CU_ASSERT_EQUAL(money_tax(2500, 2000, 2, &tax), 0);     /* 0.25 */
    CHECK_I64(tax, 500, "20 % of 0.25");
    CU_ASSERT_EQUAL(money_tax(INT64_MAX / 2, 9999, 2, &tax), -1);
}

static void test_tenant_empty(void)
{
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        _exit(empty_period_child());
    int st = 0;
    CU_ASSERT_FATAL(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "empty period: the child %s %d (10 no tenant, 11 finish failed, "
          "12 totals, 13 lines/organizers; a sanitizer abort is 1 or a "
          "signal)", WIFEXITED(st) ? "exited" : "died of signal",
          WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* =============================================================== sha256 */

static void hash_str(const void *data, size_t len, char hex[65])
{
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, data, len);
    sha256_final_hex(&c, hex);
}

static void test_sha256_vectors(void)
{
    char hex[65];

    hash_str("", 0, hex);
    CU_ASSERT_STRING_EQUAL(hex, "e3b0c44298fc1c149afbf4c8996fb924"
                                "27ae41e4649b934ca495991b7852b855");
    hash_str("abc", 3, hex);
    CU_ASSERT_STRING_EQUAL(hex, "ba7816bf8f01cfea414140de5dae2223"
                                "b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hash_str(m448, strlen(m448), hex);
    CU_ASSERT_STRING_EQUAL(hex, "248d6a61d20638b8e5c026930c3e6039"
                                "a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklm"
                       "ghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                       "mnopqrstnopqrstu";
    hash_str(m896, strlen(m896), hex);
    CU_ASSERT_STRING_EQUAL(hex, "cf5b16a778af8380036ce59e7b049237"
                                "0b249b11e8f07a51afac45037afee9d1");

    /* 1,000,000 x 'a', in 1000-byte pieces */
    char block[1000];
    sha256_ctx c;
    memset(block, 'a', sizeof block);
    sha256_init(&c);
    for (int i = 0; i < 1000; i++)
        sha256_update(&c, block, sizeof block);
    sha256_final_hex(&c, hex);
    CU_ASSERT_STRING_EQUAL(hex, "cdc76e5c9914fb9281a1c7e284d73e67"
                                "f1809a48a497200e046d39ccc7112cd0");
}

/* Lengths around the padding boundaries (55/56 and 63/64 bytes), checked
 * against sha256sum(1). */
static void test_sha256_padding(void)
{
    static const struct { size_t n; const char *hex; } v[] = {
        {55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"},
        {56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"},
        {63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"},
        {64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"},
        {65, "9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633ad565aed7e9"},
        {119, "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c"},
        {120, "13f05a0b594787f5ecd315edc96141bd3243203d1b7d4f0836f37308b276ba98"},
    };
    char buf[128], hex[65];
    memset(buf, 'x', sizeof buf);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        hash_str(buf, v[i].n, hex);
        CHECK(strcmp(hex, v[i].hex) == 0, "sha256 of %zu x 'x': expected "
              "%s, got %s", v[i].n, v[i].hex, hex);
    }
}

/* Incremental updates of odd sizes give the one-shot digest. */
static void test_sha256_incremental(void)
{
    enum { LEN = 5000 };
    static const size_t chunks[] = {1, 3, 7, 13, 55, 63, 64, 65, 127, 1000};
    unsigned char *data = malloc(LEN);
    char one[65], inc[65];
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    for (int i = 0; i < LEN; i++)
        data[i] = (unsigned char)(i * 131 + 7);
    hash_str(data, LEN, one);
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        sha256_ctx c;
        sha256_init(&c);
        for (size_t at = 0; at < LEN; at += chunks[k]) {
            size_t n = LEN - at < chunks[k] ? LEN - at : chunks[k];
            sha256_update(&c, data + at, n);
        }
        sha256_final_hex(&c, inc);
        CHECK(strcmp(one, inc) == 0, "chunks of %zu: %s != %s", chunks[k],
              inc, one);
    }
    /* varying sizes, with empty updates */
    sha256_ctx c;
    sha256_init(&c);
    size_t at = 0;
    for (size_t step = 0; at < LEN; step++) {
        size_t n = (step * 17) % 97;
        if (n > LEN - at)
            n = LEN - at;
        sha256_update(&c, data + at, n);
        at += n;
    }
    sha256_final_hex(&c, inc);
    CU_ASSERT_STRING_EQUAL(inc, one);
    /* "abc" in three updates */
    sha256_init(&c);
    sha256_update(&c, "a", 1);
    sha256_update(&c, "", 0);
    sha256_update(&c, "bc", 2);
    sha256_final_hex(&c, inc);
    CU_ASSERT_STRING_EQUAL(inc, "ba7816bf8f01cfea414140de5dae2223"
                                "b00361a396177a9cb410ff61f20015ad");
    free(data);
}

static void test_sha256_file(void)
{
    char path[] = "/tmp/acbill-unit-XXXXXX", hex[65], err[AC_ERR_MAX];
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, "abc", 3), 3);
    close(fd);
    CU_ASSERT_EQUAL(sha256_file(path, hex, err), AC_OK);
    CU_ASSERT_STRING_EQUAL(hex, "ba7816bf8f01cfea414140de5dae2223"
                                "b00361a396177a9cb410ff61f20015ad");
    unlink(path);
    CU_ASSERT_EQUAL(sha256_file(path, hex, err), AC_EIO);
}

/* ========================================================= registration */

typedef struct {
    const char *name;
    CU_TestFunc fn;
} test_def;

static CU_ErrorCode add_suite(const char *name, CU_InitializeFunc init,
                              CU_CleanupFunc clean, const test_def *tests)
{
    CU_pSuite s = CU_add_suite(name, init, clean);
    if (s == NULL)
        return CU_get_error();
    for (; tests->name != NULL; tests++)
        if (CU_add_test(s, tests->name, tests->fn) == NULL)
            return CU_get_error();
    return CUE_SUCCESS;
}

/* Invoice numbers double as file names: safe, readable, distinct. */
static void test_invoice_no(void)
{
    char a[128], b[128];

    bill_invoice_no("T1", "2026-10", 1, a, sizeof a);
    CU_ASSERT_STRING_EQUAL(a, "T1-2026-10-R1");
    bill_invoice_no("contoso.eu_2", "2026-10", 12, a, sizeof a);
    CU_ASSERT_STRING_EQUAL(a, "contoso.eu_2-2026-10-R12");

    /* Anything outside [A-Za-z0-9_.-], a leading dot or dash, or more
     * than 40 characters: cleaned, plus 8 hex digits of the id. */
    static const char *const hostile[] = {
        "../../etc/passwd", "=HYPERLINK(\"http://x\")", ".hidden", "-rf",
        "a/b", "a b", "Z\xC3\xBCrich", "",
        "0123456789012345678901234567890123456789X"
    };
    for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
        bill_invoice_no(hostile[i], "2026-10", 1, a, sizeof a);
        CU_ASSERT_EQUAL(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
                               "opqrstuvwxyz0123456789_.-"), strlen(a));
        CU_ASSERT(a[0] != '.' && a[0] != '-');
        CU_ASSERT_PTR_NULL(strchr(a, '/'));
        CU_ASSERT_PTR_NOT_NULL(strstr(a, "-2026-10-R1"));
        CU_ASSERT(strlen(a) <= 60);
    }
    /* Two ids that clean to the same text stay distinct. */
    bill_invoice_no("a/b", "2026-10", 1, a, sizeof a);
    bill_invoice_no("a b", "2026-10", 1, b, sizeof b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    bill_invoice_no("a_b", "2026-10", 1, b, sizeof b);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

/* Calendar days: known dates, the leap rules, and the round trip. */
static void test_civil_days(void)
{
    CU_ASSERT_EQUAL(civil_days(1970, 1, 1), 0);
    CU_ASSERT_EQUAL(civil_days(1969, 12, 31), -1);
    CU_ASSERT_EQUAL(civil_days(2000, 3, 1), 11017);       /* 2000 leaps */
    CU_ASSERT_EQUAL(civil_days(2100, 3, 1) - civil_days(2100, 2, 28), 1);
    CU_ASSERT_EQUAL(civil_days(2026, 11, 1) - civil_days(2026, 10, 1), 31);
    int bad = 0;
    for (int64_t z = -800000; z <= 800000; z += 7) {
        int y, m, d;
        civil_from_days(z, &y, &m, &d);
        bad += civil_days(y, m, d) != z || m < 1 || m > 12 || d < 1 ||
               d > 31;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_money_cent_apart(void)
{
    CU_ASSERT_FALSE(money_cent_apart(51500, 51401));
    CU_ASSERT_TRUE(money_cent_apart(51500, 51400));
    CU_ASSERT_TRUE(money_cent_apart(51400, 51500));
    CU_ASSERT_FALSE(money_cent_apart(-50, 49));
    CU_ASSERT_TRUE(money_cent_apart(-50, 50));
}

/* ------------------------------------------------------ COPY lines */

static void test_copy_line(void)
{
    copy_line l = { 0 };
    static const char tricky[] = "a\\b\tc\nd\re\\";

    cl_field(&l, tricky);
    cl_char(&l, '\t');
    cl_field(&l, NULL);
    cl_char(&l, '\t');
    cl_null(&l);
    cl_char(&l, '\t');
    cl_field(&l, "");
    cl_char(&l, '\t');
    cl_i64(&l, 0);
    cl_char(&l, '\t');
    cl_i64(&l, INT64_MIN);
    cl_char(&l, '\t');
    cl_i64(&l, 42);
    cl_char(&l, '\t');
    cl_money4(&l, -15000);
    cl_str(&l, "|raw\\");
    CU_ASSERT_FALSE(l.failed);
    static const char want[] = "a\\\\b\\tc\\nd\\re\\\\\t\\N\t\\N\t\t0\t"
                               "-9223372036854775808\t42\t-1.5000|raw\\";
    CU_ASSERT_EQUAL(l.n, strlen(want));
    CU_ASSERT_TRUE(l.n == strlen(want) && memcmp(l.b, want, l.n) == 0);

    /* db_copy_unescape() gives the text back, and \N back as NULL. */
    char *field = strndup(l.b, strlen("a\\\\b\\tc\\nd\\re\\\\"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(field);
    CU_ASSERT_STRING_EQUAL(db_copy_unescape(field), tricky);
    free(field);
    char null_field[] = "\\N";
    CU_ASSERT_PTR_NULL(db_copy_unescape(null_field));

    /* Reset keeps the buffer; long lines grow it. */
    char *kept = l.b;
    cl_reset(&l);
    CU_ASSERT_EQUAL(l.n, 0);
    CU_ASSERT_PTR_EQUAL(l.b, kept);
    for (int i = 0; i < 10000; i++)
        cl_str(&l, "0123456789");
    CU_ASSERT_FALSE(l.failed);
    CU_ASSERT_EQUAL(l.n, 100000);
    CU_ASSERT_TRUE(l.cap >= l.n);
    CU_ASSERT_EQUAL(memcmp(l.b + 99990, "0123456789", 10), 0);
    cl_free(&l);
    CU_ASSERT_PTR_NULL(l.b);
    CU_ASSERT_EQUAL(l.n, 0);
}

/* ------------------------------------ version 3: pools, plans, prices */

/* A reference of our own: US, CA, GB, FR, DE in Zone A, Jamaica not;
 * USD `standard` 1: 0.0200, 1876: 0.2500 (0.0500), 44: 0.0300, 33:
 * 0.0350; plans: partner 44: 0.0250; cheap1 1: 0.0100; markup 33: 0.0333
 * (0.0333); eurplan only in EUR; old only until 2026-01-01; ghost only a
 * row that holds nowhere (4930123456). */
static rating_ref *v3_ref(void)
{
    char err[AC_ERR_MAX];
    const int64_t J = US(2020, 1, 1, 0, 0, 0), F = RATING_FOREVER;
    static const struct {
        const char *prefix, *country, *kind;
    } d[] = {
        {"1", "US", "geographic"}, {"1416", "CA", "geographic"},
        {"1514", "CA", "geographic"}, {"1876", "JM", "mobile"},
        {"44", "GB", "geographic"}, {"33", "FR", "geographic"},
        {"49", "DE", "geographic"},
    };
    static const char *const zone[] = {"US", "CA", "GB", "FR", "DE"};
    static const struct {
        const char *plan, *cur, *prefix;
        int64_t pm, fee;
    } r[] = {
        {"standard", "USD", "1", 200, 0},
        {"standard", "USD", "1876", 2500, 500},
        {"standard", "USD", "44", 300, 0},
        {"standard", "USD", "33", 350, 0},
        {"partner", "USD", "44", 250, 0},
        {"cheap1", "USD", "1", 100, 0},
        {"markup", "USD", "33", 333, 333},
        {"eurplan", "EUR", "44", 100, 0},
    };
    rating_ref *ref = rating_ref_new();
    int ok = ref != NULL;
    for (size_t i = 0; ok && i < sizeof d / sizeof d[0]; i++)
        ok = rating_ref_add_destination(ref, d[i].prefix, d[i].country,
                                        d[i].kind, err) == AC_OK;
    for (size_t i = 0; ok && i < sizeof zone / sizeof zone[0]; i++)
        ok = rating_ref_add_zone_a(ref, zone[i], err) == AC_OK;
    for (size_t i = 0; ok && i < sizeof r / sizeof r[0]; i++)
        ok = rating_ref_add_plan_rate(ref, r[i].plan, r[i].cur, r[i].prefix,
                                      r[i].pm, r[i].fee, J, F, err) == AC_OK;
    ok = ok && rating_ref_add_plan_rate(ref, "old", "USD", "44", 100, 0, J,
                                        US(2026, 1, 1, 0, 0, 0), err)
                   == AC_OK;
    ok = ok && rating_ref_add_rate_prefix(ref, "ghost", "USD", "4930123456",
                                          err) == AC_OK;
    if (!ok) {
        rating_ref_free(ref);
        return NULL;
    }
    return ref;
}

/* una holds the USA/CAN licence, zed the Standard one, bo both, nell
 * pay-per-minute only, none nothing; pat the add-on and the USA/CAN
 * licence; solo the add-on alone.  In strcmp order. */
static const char *const v3_cast[] = {
    "bo", "nell", "none", "pat", "solo", "una", "zed",
};
static const int v3_cast_skus[] = {
    GRANT_AUDIO_CONFERENCING | GRANT_AUDIO_CONFERENCING_USCA,
    GRANT_AUDIO_CONFERENCING_PPM, 0,
    GRANT_AUDIO_CONFERENCING_USCA | GRANT_DIALOUT_USCA,
    GRANT_DIALOUT_USCA, GRANT_AUDIO_CONFERENCING_USCA,
    GRANT_AUDIO_CONFERENCING,
};

static int v3_open(bench *b, const rating_ref *ref, const char *currency,
                   int32_t zone_pool, int32_t usca_pool)
{
    char err[AC_ERR_MAX];
    memset(b, 0, sizeof *b);
    b->lic = rating_licences_new();
    for (size_t i = 0; b->lic != NULL &&
                       i < sizeof v3_cast / sizeof v3_cast[0]; i++)
        for (int bit = 1; bit <= 8; bit <<= 1)
            if ((v3_cast_skus[i] & bit) &&
                rating_licences_add(b->lic, v3_cast[i], bit,
                                    US(2020, 1, 1, 0, 0, 0), RATING_FOREVER,
                                    err) != AC_OK)
                return 0;
    b->t = b->lic ? rating_tenant_new(ref, b->lic, currency, zone_pool, 3000)
                  : NULL;
    b->now = OCT(1, 0, 0, 0);
    return b->t != NULL &&
           rating_tenant_set_usca_pool(b->t, usca_pool, err) == AC_OK;
}

static void test_v3_adjust_rate(void)
{
    int64_t out = -7;
    /* docs/billing-rules.md 3: 0.0333 x 1.15 = 0.038295 -> 0.0383. */
    CU_ASSERT_EQUAL(rating_adjust_rate(333, 1500, &out), 0);
    CU_ASSERT_EQUAL(out, 383);
    /* docs/billing-rules.md 5.3: 0.0250 and 0.0200 + 10 %. */
    CU_ASSERT_EQUAL(rating_adjust_rate(250, 1000, &out), 0);
    CU_ASSERT_EQUAL(out, 275);
    CU_ASSERT_EQUAL(rating_adjust_rate(200, 1000, &out), 0);
    CU_ASSERT_EQUAL(out, 220);
    /* Negative: 0.0333 x 0.9 = 0.02997 -> 0.0300; 0.0001 x 0.5 = 0.00005
     * -> 0.0001 (half up); 0.0003 x 0.5 = 0.00015 -> 0.0002. */
    CU_ASSERT_EQUAL(rating_adjust_rate(333, -1000, &out), 0);
    CU_ASSERT_EQUAL(out, 300);
    CU_ASSERT_EQUAL(rating_adjust_rate(1, -5000, &out), 0);
    CU_ASSERT_EQUAL(out, 1);
    CU_ASSERT_EQUAL(rating_adjust_rate(3, -5000, &out), 0);
    CU_ASSERT_EQUAL(out, 2);
    /* Just under the half: 0.0001 x 0.4999 = 0.00004999 -> 0.0000. */
    CU_ASSERT_EQUAL(rating_adjust_rate(1, -5001, &out), 0);
    CU_ASSERT_EQUAL(out, 0);
    CU_ASSERT_EQUAL(rating_adjust_rate(0, 1500, &out), 0);
    CU_ASSERT_EQUAL(out, 0);
    CU_ASSERT_EQUAL(rating_adjust_rate(12345, 0, &out), 0);
    CU_ASSERT_EQUAL(out, 12345);
    /* -99.99 %: 1.0000 -> 0.0001. */
    CU_ASSERT_EQUAL(rating_adjust_rate(10000, -9999, &out), 0);
    CU_ASSERT_EQUAL(out, 1);
    /* The largest rate, doubled, does not fit numeric(12,4). */
    CU_ASSERT_EQUAL(rating_adjust_rate(RATING_RATE_MAX, 0, &out), 0);
    CU_ASSERT_EQUAL(out, RATING_RATE_MAX);
    out = -7;
    CU_ASSERT_EQUAL(rating_adjust_rate(RATING_RATE_MAX, 1, &out), -1);
    CU_ASSERT_EQUAL(rating_adjust_rate(INT64_MAX / 2, 1500, &out), -1);
    CU_ASSERT_EQUAL(rating_adjust_rate(100, -10000, &out), -1);
    CU_ASSERT_EQUAL(rating_adjust_rate(100, -10001, &out), -1);
    CU_ASSERT_EQUAL(rating_adjust_rate(-1, 0, &out), -1);
    CU_ASSERT_EQUAL(out, -7);
}

static void test_v3_grant_scope(void)
{
    CU_ASSERT_EQUAL(rating_grant_parse_scope("audio_conferencing", "zone_a"),
                    GRANT_AUDIO_CONFERENCING);
    CU_ASSERT_EQUAL(rating_grant_parse_scope("audio_conferencing", NULL),
                    GRANT_AUDIO_CONFERENCING);
    CU_ASSERT_EQUAL(rating_grant_parse_scope("audio_conferencing", "us_ca"),
                    GRANT_AUDIO_CONFERENCING_USCA);
    CU_ASSERT_EQUAL(rating_grant_parse_scope("audio_conferencing", "mars"),
                    0);
    CU_ASSERT_EQUAL(rating_grant_parse_scope("dialout_usca", NULL),
                    GRANT_DIALOUT_USCA);
    CU_ASSERT_EQUAL(rating_grant_parse_scope("audio_conferencing_ppm",
                                             "us_ca"),
                    GRANT_AUDIO_CONFERENCING_PPM);
    CU_ASSERT_EQUAL(rating_grant_parse_scope(NULL, "us_ca"), 0);
}

/* plan lookup: "n:from_plan" or "none" */
static void expect_plan_rate(int line, const rating_ref *ref,
                             const char *plan, const char *cur,
                             const char *digits, int64_t t, int64_t pm,
                             int64_t fee, int from_plan)
{
    int64_t p = -1, f = -1;
    int len = -1, fp = -1;
    int found = rating_ref_plan_rate(ref, plan, cur, digits, t, &p, &f, &len,
                                     &fp);
    check(pm < 0 ? !found : found && p == pm && f == fee && fp == from_plan,
          line, "plan %s %s %s: expected %lld/%lld plan=%d, got found=%d "
          "%lld/%lld plan=%d", plan ? plan : "(null)", cur, digits,
          (long long)pm, (long long)fee, from_plan, found, (long long)p,
          (long long)f, fp);
}

static void test_v3_plan_lookup(void)
{
    rating_ref *ref = v3_ref();
    const int64_t T = OCT(10, 9, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    /* The plan's row where it has one; standard where it has none. */
    expect_plan_rate(__LINE__, ref, "partner", "USD", "442071234567", T,
                     250, 0, 1);
    expect_plan_rate(__LINE__, ref, "partner", "USD", "12125550100", T,
                     200, 0, 0);
    /* A matching plan row wins over standard's longer prefix. */
    expect_plan_rate(__LINE__, ref, "cheap1", "USD", "18765551234", T,
                     100, 0, 1);
    expect_plan_rate(__LINE__, ref, NULL, "USD", "18765551234", T,
                     2500, 500, 0);
    expect_plan_rate(__LINE__, ref, "standard", "USD", "18765551234", T,
                     2500, 500, 0);
    /* Rows only in another currency, or none in force: standard. */
    expect_plan_rate(__LINE__, ref, "eurplan", "USD", "442071234567", T,
                     300, 0, 0);
    expect_plan_rate(__LINE__, ref, "old", "USD", "442071234567", T,
                     300, 0, 0);
    expect_plan_rate(__LINE__, ref, "old", "USD", "442071234567",
                     US(2025, 6, 1, 0, 0, 0), 100, 0, 1);
    /* Neither: no rate. */
    expect_plan_rate(__LINE__, ref, "partner", "USD", "4930123456", T,
                     -1, 0, 0);
    expect_plan_rate(__LINE__, ref, "eurplan", "EUR", "12125550100", T,
                     -1, 0, 0);
    /* Plans exist by any row; masked ambiguity sees every plan's
     * prefixes in the currency, whatever their validity. */
    CU_ASSERT_TRUE(rating_ref_has_plan(ref, "ghost"));
    CU_ASSERT_TRUE(rating_ref_has_plan(ref, "eurplan"));
    CU_ASSERT_TRUE(rating_ref_has_plan(ref, NULL));
    CU_ASSERT_FALSE(rating_ref_has_plan(ref, "nosuchplan"));
    CU_ASSERT_TRUE(rating_ref_masked_ambiguous(ref, "USD", "493012345"));
    CU_ASSERT_FALSE(rating_ref_masked_ambiguous(ref, "EUR", "493012345"));
    CU_ASSERT_TRUE(rating_ref_has_currency(ref, "EUR"));
    rating_ref_free(ref);
}

static void test_v3_tenant_checks(void)
{
    char err[AC_ERR_MAX];
    rating_ref *ref = v3_ref();
    bench b;
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_FATAL(v3_open(&b, ref, "USD", 0, 0));
    CU_ASSERT_EQUAL(rating_tenant_set_price(b.t, "nosuchplan", 0, err),
                    AC_EDATA);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nosuchplan"));
    CU_ASSERT_EQUAL(rating_tenant_set_price(b.t, NULL, -10000, err),
                    AC_EDATA);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "-1.0000"));
    CU_ASSERT_EQUAL(rating_tenant_set_price(b.t, NULL, -12500, err),
                    AC_EDATA);
    CU_ASSERT_EQUAL(rating_tenant_set_price(b.t, NULL, 10000000, err),
                    AC_EDATA);
    /* A plan with rows, none usable: fine (standard per call). */
    CU_ASSERT_EQUAL(rating_tenant_set_price(b.t, "ghost", -9999, err),
                    AC_OK);
    CU_ASSERT_EQUAL(rating_tenant_set_price(b.t, "eurplan", 0, err), AC_OK);
    CU_ASSERT_EQUAL(rating_tenant_set_usca_pool(b.t, -1, err), AC_EDATA);
    bench_close(&b);
    rating_ref_free(ref);
}

/* Check the US/CA part of a result. */
#define EXPECT_USCA(r, n)                                                 \
    check((r).usca_pool_minutes == (n), __LINE__,                         \
          "usca_pool_minutes: expected %d, got %d", (n),                  \
          (r).usca_pool_minutes)

static void test_v3_pool_order(void)
{
    char err[AC_ERR_MAX];
    rating_ref *ref = v3_ref();
    rating_result r;
    bench b;
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    /* Zone A pool 60, US/CA pool 120. */
    CU_ASSERT_FATAL(v3_open(&b, ref, "USD", 60, 120));

    r = bench_call(&b, "bo", "+12125550100", 1, 1800);
    EXPECT("both scopes: US/CA pool first", r, OUTCOME_POOL, NULL, 30, 30,
           0, 0);
    EXPECT_USCA(r, 30);                         /* US/CA 90, Zone A 60 */
    r = bench_call(&b, "zed", "+12125550100", 1, 600);
    EXPECT("Zone A only: a US call from the Zone A pool", r, OUTCOME_POOL,
           NULL, 10, 10, 0, 0);
    EXPECT_USCA(r, 0);                          /* US/CA 90, Zone A 50 */
    r = bench_call(&b, "una", "+442071234567", 1, 60);
    EXPECT("US/CA only: GB is billed", r, OUTCOME_BILLED, NULL, 1, 0, 1,
           300);
    EXPECT_USCA(r, 0);
    r = bench_call(&b, "una", "+14165550100", 1, 6000);
    EXPECT("US/CA only: the US/CA pool runs out, the rest billed", r,
           OUTCOME_SPLIT, NULL, 100, 90, 10, 2000);
    EXPECT_USCA(r, 90);                         /* US/CA 0, Zone A 50 */
    r = bench_call(&b, "una", "+14165550100", 1, 60);
    EXPECT("US/CA only, pool used up: billed", r, OUTCOME_BILLED, NULL, 1,
           0, 1, 200);
    r = bench_call(&b, "bo", "+15145550100", 1, 1200);
    EXPECT("both, US/CA empty: the Zone A pool", r, OUTCOME_POOL, NULL, 20,
           20, 0, 0);
    EXPECT_USCA(r, 0);                          /* Zone A 30 */
    r = bench_call(&b, "nell", "+12125550100", 1, 60);
    EXPECT("neither scope: billed", r, OUTCOME_BILLED, NULL, 1, 0, 1, 200);
    r = bench_call(&b, "none", "+12125550100", 1, 60);
    EXPECT("no licence: rejected", r, OUTCOME_REJECTED,
           "ORGANIZER_NOT_LICENSED", 1, 0, 0, 0);
    EXPECT_USCA(r, 0);
    r = bench_call(&b, "bo", "+18765551234", 1, 60);
    EXPECT("Jamaica: in neither pool", r, OUTCOME_BILLED, NULL, 1, 0, 1,
           3000);
    r = bench_call(&b, "bo", "+33142685300", 1, 2400);
    EXPECT("both, FR: the Zone A pool's last 30, 10 billed", r,
           OUTCOME_SPLIT, NULL, 40, 30, 10, 3500);
    EXPECT_USCA(r, 0);
    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(b.t, err), AC_OK);
    const rating_totals *tot = rating_tenant_totals(b.t);
    CU_ASSERT_EQUAL(tot->pool_minutes, 60);
    CU_ASSERT_EQUAL(tot->pool_used, 60);
    CU_ASSERT_EQUAL(tot->usca_pool_minutes, 120);
    CU_ASSERT_EQUAL(tot->usca_pool_used, 120);
    const rating_organizer *o;
    int n = rating_tenant_organizers(b.t, &o);
    CU_ASSERT_EQUAL_FATAL(n, 5);
    CU_ASSERT_STRING_EQUAL(o[0].key, "bo");
    CU_ASSERT_EQUAL(o[0].pool_minutes, 30 + 20 + 30);
    CU_ASSERT_EQUAL(o[0].usca_pool_minutes, 30);
    bench_close(&b);

    /* A call that ends the US/CA pool and goes on in the Zone A pool. */
    CU_ASSERT_FATAL(v3_open(&b, ref, "USD", 60, 60));
    r = bench_call(&b, "bo", "+12125550100", 1, 3300);
    EXPECT("55 of 60", r, OUTCOME_POOL, NULL, 55, 55, 0, 0);
    EXPECT_USCA(r, 55);
    r = bench_call(&b, "bo", "+14165550100", 1, 1200);
    EXPECT("5 from US/CA, 15 from Zone A", r, OUTCOME_POOL, NULL, 20, 20, 0,
           0);
    EXPECT_USCA(r, 5);
    r = bench_call(&b, "bo", "+14165550100", 1, 3000);
    EXPECT("the Zone A pool's last 45, 5 billed", r, OUTCOME_SPLIT, NULL,
           50, 45, 5, 1000);
    EXPECT_USCA(r, 0);
    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(b.t, err), AC_OK);
    CU_ASSERT_EQUAL(rating_tenant_totals(b.t)->pool_used, 60);
    CU_ASSERT_EQUAL(rating_tenant_totals(b.t)->usca_pool_used, 60);
    bench_close(&b);

    /* One call split over both pools and billed. */
    CU_ASSERT_FATAL(v3_open(&b, ref, "USD", 10, 10));
    r = bench_call(&b, "bo", "+12125550100", 1, 1800);
    EXPECT("10 + 10 from the pools, 10 billed", r, OUTCOME_SPLIT, NULL, 30,
           20, 10, 2000);
    EXPECT_USCA(r, 10);
    bench_close(&b);

    /* The add-on with the USA/CAN licence: exempt, not drawn; without a
     * prerequisite: rejected, and the organizer records the call. */
    CU_ASSERT_FATAL(v3_open(&b, ref, "USD", 0, 60));
    r = bench_call(&b, "pat", "+12125550100", 1, 600);
    EXPECT("add-on + USA/CAN: exempt", r, OUTCOME_EXEMPT, NULL, 10, 0, 0, 0);
    r = bench_call(&b, "pat", "+442071234567", 1, 60);
    EXPECT("add-on + USA/CAN, GB: billed", r, OUTCOME_BILLED, NULL, 1, 0, 1,
           300);
    r = bench_call(&b, "solo", "+12125550100", 1, 60);
    EXPECT("add-on alone", r, OUTCOME_REJECTED, "ORGANIZER_NOT_LICENSED", 1,
           0, 0, 0);
    r = bench_call(&b, "solo", "+12125550100", 1, 60);
    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(b.t, err), AC_OK);
    n = rating_tenant_organizers(b.t, &o);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(o[1].key, "solo");
    CU_ASSERT_TRUE(o[1].addon_without_prereq);
    CU_ASSERT_STRING_EQUAL(o[1].first_issue_usage_id, uid(3));
    CU_ASSERT_FALSE(o[0].addon_without_prereq);
    CU_ASSERT_EQUAL(rating_tenant_totals(b.t)->usca_pool_used, 0);
    bench_close(&b);
    rating_ref_free(ref);
}

/* NO_RATE draws on neither pool; a rejected call carries no minutes of
 * either. */
static void test_v3_no_rate_draws_nothing(void)
{
    char err[AC_ERR_MAX];
    rating_ref *ref = v3_ref();
    rating_result r;
    bench b;
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_FATAL(v3_open(&b, ref, "EUR", 60, 60));
    r = bench_call(&b, "bo", "+12125550100", 1, 7800);
    EXPECT("130 minutes, 120 in the pools, no EUR rate", r, OUTCOME_REJECTED,
           "NO_RATE", 130, 0, 0, 0);
    EXPECT_USCA(r, 0);
    r = bench_call(&b, "bo", "+12125550100", 1, 7200);
    EXPECT("both pools still whole", r, OUTCOME_POOL, NULL, 120, 120, 0, 0);
    EXPECT_USCA(r, 60);
    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(b.t, err), AC_OK);
    CU_ASSERT_EQUAL(rating_tenant_totals(b.t)->pool_used, 60);
    CU_ASSERT_EQUAL(rating_tenant_totals(b.t)->usca_pool_used, 60);
    bench_close(&b);
    rating_ref_free(ref);
}

static void test_v3_prices(void)
{
    char err[AC_ERR_MAX];
    rating_ref *ref = v3_ref();
    rating_result r;
    bench b;
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);

    /* docs/billing-rules.md 5.3's plan: partner + 10 %. */
    CU_ASSERT_FATAL(v3_open(&b, ref, "USD", 0, 0));
    CU_ASSERT_EQUAL(rating_tenant_set_price(b.t, "partner", 1000, err),
                    AC_OK);
    r = bench_call(&b, "nell", "+442071234567", 1, 600);
    EXPECT("GB at the plan's 0.0250 + 10 %", r, OUTCOME_BILLED, NULL, 10, 0,
           10, 2750);
    CU_ASSERT_EQUAL(r.per_minute, 275);
    CU_ASSERT_TRUE(r.rate_from_plan);
    r = bench_call(&b, "nell", "+12125550102", 1, 300);
    EXPECT("US at standard's 0.0200 + 10 %", r, OUTCOME_BILLED, NULL, 5, 0,
           5, 1100);
    CU_ASSERT_EQUAL(r.per_minute, 220);
    CU_ASSERT_FALSE(r.rate_from_plan);
    CU_ASSERT_EQUAL_FATAL(rating_tenant_finish(b.t, err), AC_OK);
    const rating_line *lines;
    CU_ASSERT_EQUAL_FATAL(rating_tenant_lines(b.t, &lines), 2);
    CU_ASSERT_EQUAL(lines[0].per_minute, 275);
    CU_ASSERT_EQUAL(lines[1].per_minute, 220);
    bench_close(&b);

    /* Rate and fee both rounded: 0.0333 x 1.15 -> 0.0383. */
    CU_ASSERT_FATAL(v3_open(&b, ref, "USD", 0, 0));
    CU_ASSERT_EQUAL(rating_tenant_set_price(b.t, "markup", 1500, err),
                    AC_OK);
    r = bench_call(&b, "nell", "+33142685300", 1, 60);
    EXPECT("0.0383 + 0.0383", r, OUTCOME_BILLED, NULL, 1, 0, 1, 766);
    CU_ASSERT_EQUAL(r.connection_fee, 383);
    bench_close(&b);

    /* Partial coverage, a discount: Jamaica at the plan's `1`, 0.0090 and
     * no fee; GB (no plan row) at standard's 0.0300 - 10 %; the fee of
     * 1876 applies only where standard prices. */
    CU_ASSERT_FATAL(v3_open(&b, ref, "USD", 0, 0));
    CU_ASSERT_EQUAL(rating_tenant_set_price(b.t, "cheap1", -1000, err),
                    AC_OK);
    r = bench_call(&b, "nell", "+18765551234", 1, 600);
    EXPECT("JM at 0.0090", r, OUTCOME_BILLED, NULL, 10, 0, 10, 900);
    CU_ASSERT_EQUAL(r.connection_fee, 0);
    r = bench_call(&b, "nell", "+442071234567", 1, 60);
    EXPECT("GB at 0.0270", r, OUTCOME_BILLED, NULL, 1, 0, 1, 270);
    bench_close(&b);
    CU_ASSERT_FATAL(v3_open(&b, ref, "USD", 0, 0));
    CU_ASSERT_EQUAL(rating_tenant_set_price(b.t, "eurplan", -1000, err),
                    AC_OK);
    r = bench_call(&b, "nell", "+18765551234", 1, 600);
    EXPECT("JM at standard, fee too, 10 % off", r, OUTCOME_BILLED, NULL, 10,
           0, 10, 10 * 2250 + 450);
    bench_close(&b);

    /* Masked: another plan's longer prefix makes it ambiguous, whatever
     * the tenant's plan. */
    CU_ASSERT_FATAL(v3_open(&b, ref, "USD", 0, 0));
    r = bench_call(&b, "nell", "+49 30 1234 5***", 1, 60);
    EXPECT("masked, a ghost row", r, OUTCOME_REJECTED, "MASKED_AMBIGUOUS",
           1, 0, 0, 0);
    bench_close(&b);
    rating_ref_free(ref);
}

CU_ErrorCode tests_register(void)
{
    static const test_def money[] = {
        {"minutes", test_minutes},
        {"parse ok", test_money_parse_ok},
        {"parse rejects", test_money_parse_rejects},
        {"parse rejects overflow", test_money_parse_overflow},
        {"format4", test_money_format4},
        {"round half-up to cents, format2", test_money_round},
        {"cent apart", test_money_cent_apart},
        {"COPY line", test_copy_line},
        {NULL, NULL},
    };
    static const test_def calendar[] = {
        {"civil days", test_civil_days},
        {NULL, NULL},
    };
    static const test_def prefix[] = {
        {"number validation", test_number_valid},
        {"identifier normalisation", test_id_normalise},
        {"trie", test_prefix_trie},
        {"trie with many prefixes", test_prefix_trie_many},
        {NULL, NULL},
    };
    static const test_def ref[] = {
        {"reference data loaded", test_reference_loaded},
        {"destinations", test_destinations},
        {"zone A", test_zone_a},
        {"add destination checks", test_ref_add_destination_checks},
        {"destination lengths (IT mobile)", test_destination_lengths},
        {"names", test_names},
        {"rates", test_rates},
        {"rate add checks", test_rate_add_checks},
        {"rate add with NULL currency", test_rate_add_null_currency},
        {NULL, NULL},
    };
    static const test_def lic[] = {
        {"held", test_licences},
        {"many users", test_licences_many},
        {NULL, NULL},
    };
    static const test_def tenant[] = {
        {"docs/billing-rules.md 5 worked example T1", test_spec_example_t1},
        {"rule order and rejects", test_rule_order_rejects},
        {"zero needs no rate", test_rule_zero_needs_no_rate},
        {"exempt", test_rule_exempt},
        {"pool, split, billed", test_rule_pool},
        {"NO_RATE draws nothing", test_rule_no_rate},
        {"DUPLICATE within an instant", test_rule_duplicate},
        {"masked numbers, MASKED_AMBIGUOUS", test_rule_masked},
        {"hostile durations and sums", test_rule_overflow},
        {"minor units and tax", test_money_minor_units},
        {"pay-per-minute never draws", test_rule_pay_per_minute},
        {"licence at the call", test_rule_licence_at_call},
        {"fair use", test_rule_fair_use},
        {"add-on without prerequisite", test_rule_addon_without_prereq},
        {"many organizers and lines", test_tenant_many},
        {"empty period", test_tenant_empty},
        {NULL, NULL},
    };
    static const test_def v3[] = {
        {"round4 of rate x (1 + adjustment)", test_v3_adjust_rate},
        {"grants by pool scope", test_v3_grant_scope},
        {"price plan lookup, fallback to standard", test_v3_plan_lookup},
        {"tenant checks: plan, adjustment", test_v3_tenant_checks},
        {"pool order, calls across pools, scopes", test_v3_pool_order},
        {"NO_RATE draws on neither pool", test_v3_no_rate_draws_nothing},
        {"plans and adjustments on calls", test_v3_prices},
        {NULL, NULL},
    };
    static const test_def sha[] = {
        {"vectors", test_sha256_vectors},
        {"padding boundaries", test_sha256_padding},
        {"incremental", test_sha256_incremental},
        {"file", test_sha256_file},
        {NULL, NULL},
    };
    static const test_def names[] = {
        {"invoice numbers are safe file names", test_invoice_no},
        {NULL, NULL},
    };
    CU_ErrorCode rc;

    if ((rc = add_suite("money", NULL, NULL, money)) != CUE_SUCCESS ||
        (rc = add_suite("calendar", NULL, NULL, calendar)) != CUE_SUCCESS ||
        (rc = add_suite("prefix", NULL, NULL, prefix)) != CUE_SUCCESS ||
        (rc = add_suite("reference", ref_init, ref_clean, ref)) !=
            CUE_SUCCESS ||
        (rc = add_suite("licences", NULL, NULL, lic)) != CUE_SUCCESS ||
        (rc = add_suite("rating", ref_init, ref_clean, tenant)) !=
            CUE_SUCCESS ||
        (rc = add_suite("rating version 3", NULL, NULL, v3)) !=
            CUE_SUCCESS ||
        (rc = add_suite("sha256", NULL, NULL, sha)) != CUE_SUCCESS ||
        (rc = add_suite("invoice numbers", NULL, NULL, names)) !=
            CUE_SUCCESS)
        return rc;
    return CUE_SUCCESS;
}
