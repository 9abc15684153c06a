/* partner.c: Partner Center files into usage.partner_* (see partner.h). */
#include "partner.h"

#include <csv.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "callstage.h"
#include "db.h"
#include "log.h"
#include "sha256.h"

/* ------------------------------------------------------------ fields */

typedef enum { K_TEXT, K_NUM, K_DATE, K_GUID, K_CUR } fkind;

typedef struct {
    const char *name;       /* Microsoft's API name (camelCase) */
    fkind kind;
} pfield;

/* Invoice reconciliation (new commerce), in Microsoft's documented order;
 * `Total` is `totalForCustomer` (the 2023 name). */
static const pfield INV_FIELDS[] = {
    { "partnerId", K_GUID }, { "customerId", K_GUID },
    { "customerName", K_TEXT }, { "customerDomainName", K_TEXT },
    { "customerCountry", K_TEXT }, { "invoiceNumber", K_TEXT },
    { "mpnId", K_TEXT }, { "resellerMpnId", K_TEXT }, { "orderId", K_TEXT },
    { "orderDate", K_DATE }, { "productId", K_TEXT }, { "skuId", K_TEXT },
    { "availabilityId", K_TEXT }, { "skuName", K_TEXT },
    { "productName", K_TEXT }, { "chargeType", K_TEXT },
    { "unitPrice", K_NUM }, { "quantity", K_NUM }, { "subtotal", K_NUM },
    { "taxTotal", K_NUM }, { "totalForCustomer", K_NUM },
    { "currency", K_CUR }, { "priceAdjustmentDescription", K_TEXT },
    { "publisherName", K_TEXT }, { "publisherId", K_TEXT },
    { "subscriptionDescription", K_TEXT }, { "subscriptionId", K_GUID },
    { "chargeStartDate", K_DATE }, { "chargeEndDate", K_DATE },
    { "termAndBillingCycle", K_TEXT }, { "effectiveUnitPrice", K_NUM },
    { "unitType", K_TEXT }, { "alternateId", K_TEXT },
    { "billableQuantity", K_NUM }, { "billingFrequency", K_TEXT },
    { "pricingCurrency", K_CUR }, { "pcToBCExchangeRate", K_NUM },
    { "pcToBCExchangeRateDate", K_DATE }, { "meterDescription", K_TEXT },
    { "reservationOrderId", K_TEXT }, { "creditReasonCode", K_TEXT },
    { "subscriptionStartDate", K_DATE }, { "subscriptionEndDate", K_DATE },
    { "referenceId", K_TEXT }, { "productQualifiers", K_TEXT },
    { "promotionId", K_TEXT },
};

/* Daily rated usage; `Unit` is `unitOfMeasure`, the percentages are the
 * 2023 rates. */
static const pfield USE_FIELDS[] = {
    { "partnerId", K_GUID }, { "partnerName", K_TEXT },
    { "customerId", K_GUID }, { "customerName", K_TEXT },
    { "customerDomainName", K_TEXT }, { "customerCountry", K_TEXT },
    { "mpnId", K_TEXT }, { "resellerMpnId", K_TEXT },
    { "invoiceNumber", K_TEXT }, { "productId", K_TEXT },
    { "skuId", K_TEXT }, { "availabilityId", K_TEXT },
    { "skuName", K_TEXT }, { "productName", K_TEXT },
    { "publisherName", K_TEXT }, { "publisherId", K_TEXT },
    { "subscriptionDescription", K_TEXT }, { "subscriptionId", K_GUID },
    { "chargeStartDate", K_DATE }, { "chargeEndDate", K_DATE },
    { "usageDate", K_DATE }, { "meterType", K_TEXT },
    { "meterCategory", K_TEXT }, { "meterId", K_GUID },
    { "meterSubCategory", K_TEXT }, { "meterName", K_TEXT },
    { "meterRegion", K_TEXT }, { "unitOfMeasure", K_TEXT },
    { "resourceLocation", K_TEXT }, { "consumedService", K_TEXT },
    { "resourceGroup", K_TEXT }, { "resourceUri", K_TEXT },
    { "chargeType", K_TEXT }, { "unitPrice", K_NUM }, { "quantity", K_NUM },
    { "unitType", K_TEXT }, { "billingPreTaxTotal", K_NUM },
    { "billingCurrency", K_CUR }, { "pricingPreTaxTotal", K_NUM },
    { "pricingCurrency", K_CUR }, { "serviceInfo1", K_TEXT },
    { "serviceInfo2", K_TEXT }, { "tags", K_TEXT },
    { "additionalInfo", K_TEXT }, { "effectiveUnitPrice", K_NUM },
    { "pcToBCExchangeRate", K_NUM }, { "pcToBCExchangeRateDate", K_DATE },
    { "entitlementId", K_GUID }, { "entitlementDescription", K_TEXT },
    { "rateOfPartnerEarnedCredit", K_NUM }, { "rateOfCredit", K_NUM },
    { "creditType", K_TEXT }, { "benefitOrderId", K_TEXT },
    { "benefitId", K_TEXT }, { "benefitType", K_TEXT },
};

#define MAX_FIELDS 64

/* Old names that are not the new name in another case (2023-08
 * announcement); percent: the old column is a percentage of the new
 * rate. */
static const struct {
    const char *old_key, *name;
    int percent;
} ALIASES[] = {
    { "total", "totalForCustomer", 0 },
    { "unit", "unitOfMeasure", 0 },
    { "tier2mpnid", "resellerMpnId", 0 },
    { "partnerearnedcreditpercentage", "rateOfPartnerEarnedCredit", 1 },
    { "creditpercentage", "rateOfCredit", 1 },
};

/* The typed columns of each table: column name, field name. */
typedef struct {
    const char *column, *field, *cast;
} tcol;

static const tcol INV_COLS[] = {
    { "customer_id", "customerId", "uuid" },
    { "customer_name", "customerName", "text" },
    { "invoice_number", "invoiceNumber", "text" },
    { "product_id", "productId", "text" },
    { "sku_id", "skuId", "text" },
    { "sku_name", "skuName", "text" },
    { "charge_type", "chargeType", "text" },
    { "unit_price", "unitPrice", "numeric" },
    { "quantity", "quantity", "numeric" },
    { "billable_quantity", "billableQuantity", "numeric" },
    { "subtotal", "subtotal", "numeric" },
    { "tax_total", "taxTotal", "numeric" },
    { "total", "totalForCustomer", "numeric" },
    { "currency", "currency", "text" },
    { "charge_start_date", "chargeStartDate", "date" },
    { "charge_end_date", "chargeEndDate", "date" },
    { "subscription_id", "subscriptionId", "text" },
};

static const tcol USE_COLS[] = {
    { "customer_id", "customerId", "uuid" },
    { "customer_name", "customerName", "text" },
    { "invoice_number", "invoiceNumber", "text" },
    { "product_id", "productId", "text" },
    { "sku_id", "skuId", "text" },
    { "subscription_id", "subscriptionId", "text" },
    { "usage_date", "usageDate", "date" },
    { "meter_category", "meterCategory", "text" },
    { "meter_sub_category", "meterSubCategory", "text" },
    { "meter_name", "meterName", "text" },
    { "meter_id", "meterId", "text" },
    { "resource_group", "resourceGroup", "text" },
    { "quantity", "quantity", "numeric" },
    { "unit", "unitOfMeasure", "text" },
    { "unit_price", "unitPrice", "numeric" },
    { "billing_pre_tax_total", "billingPreTaxTotal", "numeric" },
    { "billing_currency", "billingCurrency", "text" },
};

/* Columns a file must have (by field name), and fields a line must. */
static const char *const INV_HEADER_REQ[] = {
    "customerId", "productId", "chargeType", "billableQuantity",
    "subtotal", "currency", "chargeStartDate", NULL };
static const char *const INV_ROW_REQ[] = {
    "customerId", "subtotal", "currency", "chargeStartDate", NULL };
static const char *const USE_HEADER_REQ[] = {
    "customerId", "usageDate", "resourceGroup", "billingPreTaxTotal",
    "billingCurrency", NULL };
static const char *const USE_ROW_REQ[] = {
    "customerId", "usageDate", "billingPreTaxTotal", "billingCurrency",
    NULL };

typedef struct {
    const char *source, *table, *what;
    const pfield *fields;
    int nfields;
    const tcol *cols;
    int ncols;
    const char *const *header_req, *const *row_req;
} kind_def;

static const kind_def KINDS[2] = {
    { "partner-invoice", "usage.partner_charges",
      "invoice reconciliation file", INV_FIELDS,
      (int)(sizeof INV_FIELDS / sizeof INV_FIELDS[0]), INV_COLS,
      (int)(sizeof INV_COLS / sizeof INV_COLS[0]), INV_HEADER_REQ,
      INV_ROW_REQ },
    { "partner-usage", "usage.partner_usage", "daily rated usage file",
      USE_FIELDS, (int)(sizeof USE_FIELDS / sizeof USE_FIELDS[0]),
      USE_COLS, (int)(sizeof USE_COLS / sizeof USE_COLS[0]),
      USE_HEADER_REQ, USE_ROW_REQ },
};

/* A header or key as compared: ASCII letters and digits, lower case. */
static void squash(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in && n + 1 < cap; in++) {
        unsigned char ch = (unsigned char)*in;
        if (isalnum(ch) && ch < 0x80)
            out[n++] = (char)tolower(ch);
    }
    out[n] = '\0';
}

static int field_index(const kind_def *k, const char *name)
{
    for (int i = 0; i < k->nfields; i++)
        if (strcmp(k->fields[i].name, name) == 0)
            return i;
    return -1;
}

/* The field a header or key names, or -1; *percent set for an old
 * percentage column. */
static int map_name(const kind_def *k, const char *header, int *percent)
{
    char key[96], f[96];
    squash(header, key, sizeof key);
    *percent = 0;
    for (size_t a = 0; a < sizeof ALIASES / sizeof ALIASES[0]; a++)
        if (strcmp(key, ALIASES[a].old_key) == 0) {
            int i = field_index(k, ALIASES[a].name);
            if (i >= 0)
                *percent = ALIASES[a].percent;
            return i;
        }
    for (int i = 0; i < k->nfields; i++) {
        squash(k->fields[i].name, f, sizeof f);
        if (strcmp(key, f) == 0)
            return i;
    }
    return -1;
}

/* ------------------------------------------------------- normalisers */

static const char *trim(const char *s, size_t *len)
{
    size_t n = strlen(s);
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
                     s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    *len = n;
    return s;
}

int partner_norm_number(const char *in, int percent, char *out, size_t cap,
                        char *why)
{
    size_t n;
    const char *s = trim(in, &n);
    char ip[64], fp[64];
    size_t ni = 0, nf = 0, i = 0;
    int neg = 0;

    if (n > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    /* integer part: plain digits, or 1-3 digits then ",ddd" groups */
    size_t start = i;
    int grouped = 0, group = 0;
    for (; i < n && (isdigit((unsigned char)s[i]) || s[i] == ','); i++) {
        if (s[i] == ',') {
            if ((!grouped && (i - start < 1 || i - start > 3)) ||
                (grouped && group != 3))
                goto bad;
            grouped = 1;
            group = 0;
            continue;
        }
        if (ni + 1 >= sizeof ip)
            goto big;
        ip[ni++] = s[i];
        group++;
    }
    if (grouped && group != 3)
        goto bad;
    if (i < n && s[i] == '.') {
        i++;
        for (; i < n && isdigit((unsigned char)s[i]); i++) {
            if (nf + 1 >= sizeof fp)
                goto big;
            fp[nf++] = s[i];
        }
        if (nf == 0 && ni == 0)
            goto bad;
    }
    if (i != n || (ni == 0 && nf == 0))
        goto bad;
    if (percent) {
        /* divide by 100: two digits move from the integer part */
        char t[64];
        size_t nt = 0;
        size_t take = ni >= 2 ? 2 : ni;
        for (size_t z = take; z < 2; z++)
            t[nt++] = '0';
        memcpy(t + nt, ip + ni - take, take);
        nt += take;
        if (nt + nf >= sizeof fp)
            goto big;
        memcpy(t + nt, fp, nf);
        nt += nf;
        memcpy(fp, t, nt);
        nf = nt;
        ni -= take;
    }
    /* shortest form */
    size_t lead = 0;
    while (lead < ni && ip[lead] == '0')
        lead++;
    while (nf > 0 && fp[nf - 1] == '0')
        nf--;
    size_t keep = ni - lead;
    if (keep == 0 && nf == 0)
        neg = 0;
    if (keep > 28 || (size_t)neg + keep + 2 + nf + 1 > cap)
        goto big;
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (keep == 0)
        out[o++] = '0';
    memcpy(out + o, ip + lead, keep);
    o += keep;
    if (nf > 0) {
        out[o++] = '.';
        memcpy(out + o, fp, nf);
        o += nf;
    }
    out[o] = '\0';
    return 0;
bad:
    if (memchr(s, ',', n) != NULL && memchr(s, '.', n) != NULL &&
        (const char *)memchr(s, ',', n) > (const char *)memchr(s, '.', n))
        snprintf(why, 128, "is not an en-US number (a decimal comma?"
                 " Partner Center writes 1,234.56)");
    else if (memchr(s, ',', n) != NULL && memchr(s, '.', n) == NULL &&
             n > 0)
        snprintf(why, 128, "is not an en-US number (',' groups thousands"
                 " in threes; a decimal comma?)");
    else
        snprintf(why, 128, "is not a number");
    return -1;
big:
    snprintf(why, 128, "is too long a number");
    return -1;
}

static int digits(const char *s, size_t n, int *v)
{
    if (n == 0 || n > 9)
        return -1;
    int x = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return d[m - 1];
}

/* Read "h:mm[:ss[.f]]" at s (n bytes): 0 and the rest of the text. */
static int parse_clock(const char *s, size_t n, int *h, int *mi, int *se,
                       char frac[16], size_t *used)
{
    size_t i = 0, j;
    for (j = i; j < n && isdigit((unsigned char)s[j]); j++)
        ;
    if (j - i < 1 || j - i > 2 || digits(s + i, j - i, h) != 0 ||
        j >= n || s[j] != ':')
        return -1;
    i = j + 1;
    if (i + 2 > n || digits(s + i, 2, mi) != 0)
        return -1;
    i += 2;
    *se = 0;
    frac[0] = '\0';
    if (i < n && s[i] == ':') {
        if (i + 3 > n || digits(s + i + 1, 2, se) != 0)
            return -1;
        i += 3;
        if (i < n && s[i] == '.') {
            size_t f = 0;
            i++;
            while (i < n && isdigit((unsigned char)s[i])) {
                if (f < 15)
                    frac[f++] = s[i];
                i++;
            }
            while (f > 0 && frac[f - 1] == '0')
                f--;
            frac[f] = '\0';
        }
    }
    *used = i;
    return 0;
}

int partner_norm_date(const char *in, char *out, size_t cap, char *why)
{
    size_t n;
    const char *s = trim(in, &n);
    int y = 0, m = 0, d = 0, h = 0, mi = 0, se = 0, off = 0;
    char frac[16] = "";
    size_t i = 0, j;

    for (j = 0; j < n && isdigit((unsigned char)s[j]); j++)
        ;
    if (j == 4 && j < n && s[j] == '-') {
        /* yyyy-mm-dd[Thh:mm[:ss[.f]][Z|+hh:mm]] */
        if (n < 10 || digits(s, 4, &y) || s[4] != '-' ||
            digits(s + 5, 2, &m) || s[7] != '-' || digits(s + 8, 2, &d))
            goto bad;
        i = 10;
        if (i < n && (s[i] == 'T' || s[i] == ' ')) {
            size_t used;
            if (parse_clock(s + i + 1, n - i - 1, &h, &mi, &se, frac,
                            &used) != 0)
                goto bad;
            i += 1 + used;
            if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
                i++;
            } else if (i < n && (s[i] == '+' || s[i] == '-')) {
                int oh, om;
                if (i + 6 != n || digits(s + i + 1, 2, &oh) ||
                    s[i + 3] != ':' || digits(s + i + 4, 2, &om) ||
                    oh > 23 || om > 59)
                    goto bad;
                off = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
                i = n;
            }
        }
    } else if (j >= 1 && j <= 2 && j < n && s[j] == '/') {
        /* m/d/yyyy[ h:mm[:ss] [AM|PM]] */
        digits(s, j, &m);
        i = j + 1;
        for (j = i; j < n && isdigit((unsigned char)s[j]); j++)
            ;
        if (j - i < 1 || j - i > 2 || j >= n || s[j] != '/')
            goto bad;
        digits(s + i, j - i, &d);
        i = j + 1;
        if (i + 4 > n || digits(s + i, 4, &y) ||
            (i + 4 < n && isdigit((unsigned char)s[i + 4])))
            goto bad;
        i += 4;
        if (i < n && s[i] == ' ') {
            size_t used;
            if (parse_clock(s + i + 1, n - i - 1, &h, &mi, &se, frac,
                            &used) != 0)
                goto bad;
            i += 1 + used;
            if (i + 3 == n && s[i] == ' ' &&
                (strncasecmp(s + i + 1, "AM", 2) == 0 ||
                 strncasecmp(s + i + 1, "PM", 2) == 0)) {
                if (h < 1 || h > 12)
                    goto bad;
                int pm = toupper((unsigned char)s[i + 1]) == 'P';
                h = h % 12 + (pm ? 12 : 0);
                i = n;
            }
        }
    } else {
        goto bad;
    }
    if (i != n || m < 1 || m > 12 || y < 1900 || y > 9999 || d < 1 ||
        d > days_in_month(y, m) || h > 23 || mi > 59 || se > 59)
        goto bad;
    if (off != 0) {
        struct tm t = { 0 };
        t.tm_year = y - 1900;
        t.tm_mon = m - 1;
        t.tm_mday = d;
        t.tm_hour = h;
        t.tm_min = mi;
        t.tm_sec = se;
        time_t tt = timegm(&t) - (time_t)off * 60;
        gmtime_r(&tt, &t);
        y = t.tm_year + 1900;
        m = t.tm_mon + 1;
        d = t.tm_mday;
        h = t.tm_hour;
        mi = t.tm_min;
        se = t.tm_sec;
    }
    if (h == 0 && mi == 0 && se == 0 && frac[0] == '\0')
        snprintf(out, cap, "%04d-%02d-%02d", y, m, d);
    else
        snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%s%sZ", y, m, d,
                 h, mi, se, frac[0] ? "." : "", frac);
    return 0;
bad:
    snprintf(why, 128, "is not a date (m/d/yyyy or yyyy-mm-dd)");
    return -1;
}

int partner_norm_guid(const char *in, char *out, size_t cap, char *why)
{
    size_t n;
    const char *s = trim(in, &n);
    if (n == 38 && s[0] == '{' && s[37] == '}') {
        s++;
        n -= 2;
    }
    if (n != 36 || cap < 37)
        goto bad;
    for (size_t i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            goto bad;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[36] = '\0';
    return 0;
bad:
    snprintf(why, 128, "is not a GUID");
    return -1;
}

/* ----------------------------------------------------------- importer */

#define COPY_BUF (256u * 1024)
#define RAW_MAX (64u * 1024)
#define LINE_MAX_BYTES (1u << 20)
#define REC_MAX_LINES 50
#define REJECTS_KEPT 10000

typedef struct {
    PGconn *conn;
    const kind_def *k;
    char import_id[32];
    partner_counts c;
    char *cbuf;             /* COPY data waiting to be sent */
    size_t clen;
    ac_status rc;           /* first database error */
    char err[AC_ERR_MAX];
    copy_line line;         /* the row being built */
    char *json;             /* fields as JSON text */
    size_t jlen, jcap;
    char *norm;             /* normalised values */
    size_t norm_cap;
    int norm_at[MAX_FIELDS];
    int oom;
    /* direct: valid lines go straight into the table (a new file), the
     * rejected ones into rejf, loaded into the stage afterwards */
    int direct;
    FILE *rejf;
} imp;

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *b = realloc(*buf, n);
    if (b == NULL)
        return -1;
    *buf = b;
    *cap = n;
    return 0;
}

static void flush_copy(imp *m)
{
    if (m->clen > 0 && m->rc == AC_OK)
        m->rc = db_copy_put(m->conn, m->cbuf, m->clen, m->err);
    m->clen = 0;
}

static void put_line(imp *m)
{
    if (m->line.failed) {
        m->oom = 1;
        return;
    }
    if (m->clen + m->line.n + 1 > COPY_BUF)
        flush_copy(m);
    if (m->line.n + 1 > COPY_BUF) {
        if (m->rc == AC_OK)
            m->rc = db_copy_put(m->conn, m->line.b, m->line.n, m->err);
        if (m->rc == AC_OK)
            m->rc = db_copy_put(m->conn, "\n", 1, m->err);
        return;
    }
    memcpy(m->cbuf + m->clen, m->line.b, m->line.n);
    m->clen += m->line.n;
    m->cbuf[m->clen++] = '\n';
}

/* A stage row for a rejected line: raw text (cut, made valid UTF-8). */
static void reject(imp *m, long long line_no, const char *raw,
                   size_t raw_len, const char *reason)
{
    m->c.read++;
    m->c.rejected++;
    if (raw_len > RAW_MAX)
        raw_len = RAW_MAX;
    char *text = malloc(raw_len * 4 + 1);
    if (text == NULL) {
        m->oom = 1;
        return;
    }
    size_t o = 0;
    if (raw != NULL && callstage_is_utf8(raw, raw_len)) {
        memcpy(text, raw, raw_len);
        o = raw_len;
    } else {
        for (size_t i = 0; raw != NULL && i < raw_len; i++) {
            unsigned char ch = (unsigned char)raw[i];
            if (ch >= 0x20 && ch < 0x7f)
                text[o++] = (char)ch;
            else
                o += (size_t)sprintf(text + o, "\\x%02x", ch);
        }
    }
    text[o] = '\0';
    cl_reset(&m->line);
    cl_i64(&m->line, line_no);
    cl_char(&m->line, '\t');
    cl_field(&m->line, text);
    cl_char(&m->line, '\t');
    cl_field(&m->line, reason);
    for (int i = 0; i < 2 + m->k->ncols; i++) {
        cl_char(&m->line, '\t');
        cl_null(&m->line);
    }
    free(text);
    if (m->direct) {
        if (m->line.failed ||
            fwrite(m->line.b, 1, m->line.n, m->rejf) != m->line.n ||
            fputc('\n', m->rejf) == EOF)
            m->oom = 1;
        return;
    }
    put_line(m);
}

static void json_str(imp *m, const char *s)
{
    size_t n = strlen(s);
    if (grow(&m->json, &m->jcap, m->jlen + n * 6 + 3) != 0) {
        m->oom = 1;
        return;
    }
    char *o = m->json + m->jlen;
    *o++ = '"';
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            *o++ = '\\';
            *o++ = (char)ch;
        } else if (ch < 0x20) {
            o += sprintf(o, "\\u%04x", ch);
        } else {
            *o++ = (char)ch;
        }
    }
    *o++ = '"';
    m->jlen = (size_t)(o - m->json);
}

/* One line's values by field (NULL: absent), percent flags by field. */
static void process_row(imp *m, long long line_no, const char *const *vals,
                        const unsigned char *percent, const char *raw,
                        size_t raw_len)
{
    const kind_def *k = m->k;
    char why[128], reason[320];
    size_t at = 0;

    for (int i = 0; i < k->nfields; i++) {
        m->norm_at[i] = -1;
        if (vals[i] == NULL)
            continue;
        size_t n;
        const char *v = trim(vals[i], &n);
        if (n == 0)
            continue;
        if (!callstage_is_utf8(v, n)) {
            snprintf(reason, sizeof reason, "%s is not UTF-8 text",
                     k->fields[i].name);
            reject(m, line_no, raw, raw_len, reason);
            return;
        }
        if (grow(&m->norm, &m->norm_cap, at + n + 80) != 0) {
            m->oom = 1;
            return;
        }
        char *out = m->norm + at;
        int bad = 0;
        switch (k->fields[i].kind) {
        case K_NUM:
            bad = partner_norm_number(vals[i], percent[i], out, n + 80, why);
            break;
        case K_DATE:
            bad = partner_norm_date(vals[i], out, n + 80, why);
            break;
        case K_GUID:
            if (strcmp(k->fields[i].name, "customerId") == 0) {
                bad = partner_norm_guid(vals[i], out, n + 80, why);
            } else if (partner_norm_guid(vals[i], out, n + 80, why) != 0) {
                memcpy(out, v, n);      /* not a GUID: kept as given */
                out[n] = '\0';
            }
            break;
        case K_CUR:
            if (n != 3 || !isalpha((unsigned char)v[0]) ||
                !isalpha((unsigned char)v[1]) ||
                !isalpha((unsigned char)v[2])) {
                snprintf(why, sizeof why, "is not a currency code "
                         "(three letters)");
                bad = 1;
            } else {
                for (int z = 0; z < 3; z++)
                    out[z] = (char)toupper((unsigned char)v[z]);
                out[3] = '\0';
            }
            break;
        default:
            memcpy(out, v, n);
            out[n] = '\0';
        }
        if (bad) {
            snprintf(reason, sizeof reason, "%s %s: '%.*s'",
                     k->fields[i].name, why, n > 60 ? 60 : (int)n, v);
            reject(m, line_no, raw, raw_len, reason);
            return;
        }
        m->norm_at[i] = (int)at;
        at += strlen(out) + 1;
    }
    for (const char *const *r = k->row_req; *r; r++) {
        int i = field_index(k, *r);
        if (m->norm_at[i] < 0) {
            snprintf(reason, sizeof reason, "%s is missing", *r);
            reject(m, line_no, raw, raw_len, reason);
            return;
        }
    }
    /* the fields as JSON, in table order: the key is its SHA-256 */
    m->jlen = 0;
    if (grow(&m->json, &m->jcap, 2) != 0) {
        m->oom = 1;
        return;
    }
    m->json[m->jlen++] = '{';
    int first = 1;
    for (int i = 0; i < k->nfields; i++) {
        if (m->norm_at[i] < 0)
            continue;
        if (!first) {
            if (grow(&m->json, &m->jcap, m->jlen + 1) != 0) {
                m->oom = 1;
                return;
            }
            m->json[m->jlen++] = ',';
        }
        first = 0;
        json_str(m, k->fields[i].name);
        if (grow(&m->json, &m->jcap, m->jlen + 1) != 0) {
            m->oom = 1;
            return;
        }
        m->json[m->jlen++] = ':';
        json_str(m, m->norm + m->norm_at[i]);
    }
    if (grow(&m->json, &m->jcap, m->jlen + 2) != 0) {
        m->oom = 1;
        return;
    }
    m->json[m->jlen++] = '}';
    m->json[m->jlen] = '\0';
    if (m->oom)
        return;
    char hex[65];
    sha256_ctx sha;
    sha256_init(&sha);
    sha256_update(&sha, m->json, m->jlen);
    sha256_final_hex(&sha, hex);

    m->c.read++;
    cl_reset(&m->line);
    if (m->direct) {
        /* the table's columns: line_key, import_id, fields, typed... */
        cl_str(&m->line, hex);
        cl_char(&m->line, '\t');
        cl_str(&m->line, m->import_id);
    } else {
        cl_i64(&m->line, line_no);
        cl_str(&m->line, "\t\\N\t\\N\t");
        cl_str(&m->line, hex);
    }
    cl_char(&m->line, '\t');
    cl_field(&m->line, m->json);
    for (int c = 0; c < k->ncols; c++) {
        int i = field_index(k, k->cols[c].field);
        cl_char(&m->line, '\t');
        if (m->norm_at[i] < 0) {
            cl_null(&m->line);
            continue;
        }
        const char *v = m->norm + m->norm_at[i];
        if (k->fields[i].kind == K_DATE)
            cl_bytes(&m->line, v, 10);      /* the UTC date */
        else
            cl_field(&m->line, v);
    }
    put_line(m);
}

/* Refuse the layout (a header, or the first JSON line's keys) unless it
 * has the kind's required fields.  have[i]: field i present; names: the
 * squashed names seen.  0, or -1 with the reason in why. */
static int check_layout(const kind_def *k, const int *have,
                        const char *seen, char *why, size_t cap)
{
    int pstn = strstr(seen, "|usageid|") && strstr(seen, "|calltype|");
    int usage = strstr(seen, "|usagedate|") && strstr(seen, "|metercategory|");
    int invoice = strstr(seen, "|billablequantity|") && !usage;
    if (pstn) {
        snprintf(why, cap, "this is a Teams PSTN usage export, not a "
                 "Partner Center %s (use acbill import pstn)", k->what);
        return -1;
    }
    if (k == &KINDS[PARTNER_INVOICE] && usage) {
        snprintf(why, cap, "this is a Partner Center daily rated usage file, "
                 "not an invoice reconciliation file (use acbill import "
                 "partner-usage)");
        return -1;
    }
    if (k == &KINDS[PARTNER_USAGE] && invoice) {
        snprintf(why, cap, "this is a Partner Center invoice reconciliation "
                 "file, not a daily rated usage file (use acbill import "
                 "partner-invoice)");
        return -1;
    }
    char missing[256] = "";
    for (const char *const *r = k->header_req; *r; r++)
        if (!have[field_index(k, *r)]) {
            size_t l = strlen(missing);
            snprintf(missing + l, sizeof missing - l, "%s%s", l ? ", " : "",
                     *r);
        }
    if (missing[0]) {
        snprintf(why, cap, "unknown layout: not a Partner Center %s "
                 "(no column %s, in PascalCase or camelCase)", k->what,
                 missing);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ reading */

typedef struct {
    gzFile gz;
    char *buf;
    size_t cap;
    long long line_no;
    int eof;
} lines;

/* The next physical line (with its '\n', if any) into l->buf: 1, or 0 at
 * the end, or -1 when the stream is broken (gzip error; why set).  Lines
 * over LINE_MAX_BYTES are returned cut, with *cut set. */
static int next_line(lines *l, size_t *len, int *cut, char *why)
{
    size_t n = 0;
    *cut = 0;
    if (l->eof)
        return 0;
    for (;;) {
        if (l->cap - n < 2 && n < LINE_MAX_BYTES + 2) {
            if (grow(&l->buf, &l->cap, n + 65536) != 0) {
                snprintf(why, AC_ERR_MAX, "out of memory");
                return -1;
            }
        }
        char *at = l->buf + n;
        int room = (int)(l->cap - n);
        if (n >= LINE_MAX_BYTES) {
            /* keep the start, drop the rest of an overlong line */
            *cut = 1;
            at = l->buf + LINE_MAX_BYTES;
            room = (int)(l->cap - LINE_MAX_BYTES);
            n = LINE_MAX_BYTES;
        }
        if (gzgets(l->gz, at, room) == NULL) {
            int e;
            const char *msg = gzerror(l->gz, &e);
            if (e != Z_OK && e != Z_STREAM_END) {
                snprintf(why, AC_ERR_MAX, "the file cannot be read to its "
                         "end: %s (a truncated or damaged gzip file?)",
                         e == Z_ERRNO ? strerror(errno) : msg);
                return -1;
            }
            l->eof = 1;
            if (n == 0)
                return 0;
            break;
        }
        size_t got = strlen(at);
        n = (size_t)(at - l->buf) + got;
        if (got > 0 && at[got - 1] == '\n')
            break;
        if (gzeof(l->gz)) {
            int e;
            const char *msg = gzerror(l->gz, &e);
            if (e != Z_OK && e != Z_STREAM_END) {
                snprintf(why, AC_ERR_MAX, "the file cannot be read to its "
                         "end: %s (a truncated or damaged gzip file?)", msg);
                return -1;
            }
            l->eof = 1;
            break;
        }
    }
    l->line_no++;
    *len = n;
    return 1;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* ----- CSV */

typedef struct {
    imp *m;
    struct csv_parser p;
    int in_header;
    int ncols;
    int col_field[256];
    unsigned char col_pct[256];
    unsigned char pct[MAX_FIELDS];
    char *arena;
    size_t arena_len, arena_cap;
    size_t field_at[256];
    int nfields;
    int rows_ended;
    char *rec;
    size_t rec_len, rec_cap;
    int rec_lines;
    long long rec_first;
    char refuse[AC_ERR_MAX];
} csvr;

static void on_field(void *data, size_t len, void *arg)
{
    csvr *r = arg;
    if (r->nfields < 256) {
        if (grow(&r->arena, &r->arena_cap, r->arena_len + len + 1) != 0) {
            r->m->oom = 1;
        } else {
            r->field_at[r->nfields] = r->arena_len;
            if (len > 0)
                memcpy(r->arena + r->arena_len, data, len);
            r->arena[r->arena_len + len] = '\0';
            if (data != NULL && memchr(data, '\0', len) != NULL)
                r->arena[r->arena_len] = '\xff';   /* fails UTF-8 */
            r->arena_len += len + 1;
        }
    }
    r->nfields++;
}

static size_t rec_text_len(const csvr *r)
{
    size_t n = r->rec_len;
    while (n > 0 && (r->rec[n - 1] == '\n' || r->rec[n - 1] == '\r'))
        n--;
    return n;
}

static void on_row(int term, void *arg)
{
    csvr *r = arg;
    const kind_def *k = r->m->k;
    (void)term;
    r->rows_ended++;
    if (r->in_header) {
        int have[MAX_FIELDS] = { 0 };
        char seen[4096] = "|";
        r->ncols = r->nfields > 256 ? 256 : r->nfields;
        for (int i = 0; i < r->ncols && !r->m->oom; i++) {
            const char *h = r->arena + r->field_at[i];
            char sq[96];
            int pct;
            squash(h, sq, sizeof sq);
            size_t l = strlen(seen);
            snprintf(seen + l, sizeof seen - l, "%s|", sq);
            int f = map_name(k, h, &pct);
            r->col_field[i] = f;
            r->col_pct[i] = (unsigned char)pct;
            if (f >= 0) {
                if (have[f]) {
                    snprintf(r->refuse, sizeof r->refuse, "two columns "
                             "give %s (\"%s\" and another)",
                             k->fields[f].name, h);
                    break;
                }
                have[f] = 1;
                r->pct[f] = (unsigned char)pct;
            }
        }
        if (r->refuse[0] == '\0')
            check_layout(k, have, seen, r->refuse, sizeof r->refuse);
        r->in_header = 0;
    } else if (r->refuse[0] == '\0') {
        const char *raw = r->rec;
        size_t raw_len = rec_text_len(r);
        if (r->nfields != r->ncols) {
            char why[128];
            snprintf(why, sizeof why, "the row has %d fields, the header %d",
                     r->nfields, r->ncols);
            reject(r->m, r->rec_first, raw, raw_len, why);
        } else {
            const char *vals[MAX_FIELDS] = { NULL };
            for (int i = 0; i < r->ncols; i++)
                if (r->col_field[i] >= 0)
                    vals[r->col_field[i]] = r->arena + r->field_at[i];
            process_row(r->m, r->rec_first, vals, r->pct, raw, raw_len);
        }
    }
    r->nfields = 0;
    r->arena_len = 0;
}

static void csv_reset(csvr *r)
{
    csv_free(&r->p);
    csv_init(&r->p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL);
    r->nfields = 0;
    r->arena_len = 0;
    r->rec_len = 0;
    r->rec_lines = 0;
}

static void csv_feed(csvr *r, const char *line, size_t len,
                     long long line_no)
{
    if (r->rec_lines == 0) {
        if (blank(line, len))
            return;
        r->rec_first = line_no;
        r->rec_len = 0;
    }
    if (grow(&r->rec, &r->rec_cap, r->rec_len + len + 1) != 0) {
        r->m->oom = 1;
        return;
    }
    memcpy(r->rec + r->rec_len, line, len);
    r->rec_len += len;
    r->rec[r->rec_len] = '\0';
    r->rec_lines++;
    r->rows_ended = 0;
    if (csv_parse(&r->p, line, len, on_field, on_row, r) != len) {
        if (r->in_header)
            snprintf(r->refuse, sizeof r->refuse, "the header line is not "
                     "valid CSV: %s", csv_strerror(csv_error(&r->p)));
        else
            reject(r->m, r->rec_first, r->rec, rec_text_len(r),
                   "malformed CSV quoting (a quote inside an unquoted "
                   "field, or text after a closing quote)");
        csv_reset(r);
        return;
    }
    if (r->rows_ended > 0) {
        r->rec_lines = 0;
        r->rec_len = 0;
        return;
    }
    if (r->rec_lines >= REC_MAX_LINES || r->rec_len >= RAW_MAX) {
        reject(r->m, r->rec_first, r->rec, rec_text_len(r),
               "a quoted field is never closed (50 lines or 64 KiB without "
               "its closing quote)");
        csv_reset(r);
    }
}

static ac_status read_csv(imp *m, lines *l, const char *first,
                          size_t first_len, char *refuse)
{
    csvr r;
    memset(&r, 0, sizeof r);
    r.m = m;
    r.in_header = 1;
    if (csv_init(&r.p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
        return ac_fail(refuse, AC_EOSERR, "out of memory");
    size_t len = first_len;
    const char *line = first;
    int cut = 0, got = 1;
    char why[AC_ERR_MAX];
    ac_status rc = AC_OK;
    while (got == 1) {
        if (cut)
            reject(m, l->line_no, line, len, "the line is longer than "
                   "1 MiB");
        else
            csv_feed(&r, line, len, l->line_no);
        if (r.refuse[0] || m->oom || m->rc != AC_OK)
            break;
        got = next_line(l, &len, &cut, why);
        line = l->buf;
        if (got < 0) {
            rc = ac_fail(refuse, AC_EDATA, "%s", why);
            break;
        }
    }
    if (rc == AC_OK && r.refuse[0] == '\0' && !m->oom && m->rc == AC_OK) {
        r.rows_ended = 0;
        if (csv_fini(&r.p, on_field, on_row, &r) != 0 && r.rec_lines > 0)
            reject(m, r.rec_first, r.rec, rec_text_len(&r), "a quoted "
                   "field is never closed before the end of the file");
        if (r.in_header && r.refuse[0] == '\0')
            snprintf(r.refuse, sizeof r.refuse, "the file is empty");
    }
    if (rc == AC_OK && r.refuse[0])
        rc = ac_fail(refuse, AC_EDATA, "%s", r.refuse);
    csv_free(&r.p);
    free(r.arena);
    free(r.rec);
    return rc;
}

/* ----- JSON lines: each line checked with jansson and kept as text; then
 * PostgreSQL (jsonb, exact numbers) hands back each object with its
 * values as text, which jansson reads (strings only: nothing lost). */

static ac_status read_json(imp *m, lines *l, const char *first,
                           size_t first_len, char *refuse)
{
    ac_status rc = db_exec(m->conn, "CREATE TEMP TABLE pc_json (line_no "
                           "bigint, raw text, reason text) ON COMMIT DROP",
                           m->err);
    if (rc == AC_OK)
        rc = db_copy_begin(m->conn, "COPY pc_json FROM STDIN", m->err);
    if (rc != AC_OK)
        return rc;
    size_t len = first_len;
    const char *line = first;
    int cut = 0, got = 1;
    char why[AC_ERR_MAX];
    long long nlines = 0;
    while (got == 1 && m->rc == AC_OK && !m->oom) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (!blank(line, len)) {
            const char *reason = NULL;
            char jwhy[256];
            if (cut) {
                reason = "the line is longer than 1 MiB";
            } else if (!callstage_is_utf8(line, len)) {
                reason = "the line is not UTF-8 text";
            } else {
                json_error_t je;
                json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES |
                                       JSON_DECODE_INT_AS_REAL, &je);
                if (j == NULL) {
                    snprintf(jwhy, sizeof jwhy, "not JSON: %s (column %d)",
                             je.text, je.column);
                    reason = jwhy;
                } else if (!json_is_object(j)) {
                    reason = "the line is not a JSON object";
                }
                json_decref(j);
            }
            nlines++;
            cl_reset(&m->line);
            cl_i64(&m->line, l->line_no);
            cl_char(&m->line, '\t');
            if (reason != NULL && !callstage_is_utf8(line, len)) {
                cl_field(&m->line, "(not UTF-8)");
            } else {
                char *t = strndup(line, len > RAW_MAX && reason ? RAW_MAX
                                                                : len);
                if (t == NULL) {
                    m->oom = 1;
                    break;
                }
                cl_field(&m->line, t);
                free(t);
            }
            cl_char(&m->line, '\t');
            cl_field(&m->line, reason);
            put_line(m);
        }
        got = next_line(l, &len, &cut, why);
        line = l->buf;
        if (got < 0) {
            flush_copy(m);
            db_copy_end(m->conn, "refused", m->err);
            return ac_fail(refuse, AC_EDATA, "%s", why);
        }
    }
    flush_copy(m);
    if (m->rc != AC_OK || m->oom) {
        db_copy_end(m->conn, "failed", m->err);
        return m->oom ? ac_fail(m->err, AC_EOSERR, "out of memory")
                      : m->rc;
    }
    rc = db_copy_end(m->conn, NULL, m->err);
    if (rc != AC_OK)
        return rc;
    if (nlines == 0)
        return ac_fail(refuse, AC_EDATA, "the file is empty");
    rc = db_exec(m->conn, "DECLARE pc_cur NO SCROLL CURSOR FOR"
                 " SELECT line_no, raw, reason, CASE WHEN reason IS NULL"
                 " THEN (SELECT jsonb_object_agg(key, value #>> '{}')"
                 " FROM jsonb_each(raw::jsonb))::text END"
                 " FROM pc_json ORDER BY line_no", m->err);
    int checked = 0;
    while (rc == AC_OK) {
        PGresult *res = PQexec(m->conn, "FETCH 2000 FROM pc_cur");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            rc = db_status_of(m->conn, res);
            snprintf(m->err, AC_ERR_MAX, "%s", PQerrorMessage(m->conn));
            PQclear(res);
            break;
        }
        int nt = PQntuples(res);
        if (nt == 0) {
            PQclear(res);
            break;
        }
        rc = db_copy_begin(m->conn, "COPY pc_stage FROM STDIN", m->err);
        for (int t = 0; rc == AC_OK && t < nt; t++) {
            long long ln = atoll(PQgetvalue(res, t, 0));
            const char *raw = PQgetvalue(res, t, 1);
            size_t raw_len = (size_t)PQgetlength(res, t, 1);
            if (!PQgetisnull(res, t, 2)) {
                reject(m, ln, raw, raw_len, PQgetvalue(res, t, 2));
                continue;
            }
            json_error_t je;
            json_t *o = json_loads(PQgetvalue(res, t, 3), 0, &je);
            const char *vals[MAX_FIELDS] = { NULL };
            unsigned char pct[MAX_FIELDS] = { 0 };
            int have[MAX_FIELDS] = { 0 };
            char seen[4096] = "|";
            const char *key;
            json_t *v;
            int dup = 0;
            json_object_foreach(o, key, v) {
                int p, f = map_name(m->k, key, &p);
                if (!checked) {
                    char sq[96];
                    size_t sl = strlen(seen);
                    squash(key, sq, sizeof sq);
                    snprintf(seen + sl, sizeof seen - sl, "%s|", sq);
                }
                if (f < 0)
                    continue;
                if (have[f])
                    dup = 1;
                have[f] = 1;
                pct[f] = (unsigned char)p;
                if (json_is_string(v))
                    vals[f] = json_string_value(v);
            }
            if (!checked) {
                char lw[AC_ERR_MAX];
                checked = 1;
                if (check_layout(m->k, have, seen, lw, sizeof lw) != 0) {
                    json_decref(o);
                    PQclear(res);
                    db_copy_end(m->conn, "refused", m->err);
                    return ac_fail(refuse, AC_EDATA, "%s", lw);
                }
            }
            if (dup)
                reject(m, ln, raw, raw_len, "two keys of the line give the "
                       "same field");
            else
                process_row(m, ln, vals, pct, raw, raw_len);
            json_decref(o);
        }
        PQclear(res);
        flush_copy(m);
        if (rc == AC_OK && (m->rc != AC_OK || m->oom)) {
            rc = m->oom ? ac_fail(m->err, AC_EOSERR, "out of memory")
                        : m->rc;
            db_copy_end(m->conn, "failed", m->err);
            break;
        }
        if (rc == AC_OK)
            rc = db_copy_end(m->conn, NULL, m->err);
    }
    if (rc == AC_OK)
        rc = db_exec(m->conn, "CLOSE pc_cur", m->err);
    return rc;
}

/* --------------------------------------------------------------- file */

static ac_status file_sha256(const char *path, char hex[65], char *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return ac_fail(err, errno == ENOENT ? AC_ENOINPUT : AC_EIO,
                       "cannot open %s: %s", path, strerror(errno));
    sha256_ctx sha;
    sha256_init(&sha);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sha256_update(&sha, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return ac_fail(err, AC_EIO, "cannot read %s", path);
    sha256_final_hex(&sha, hex);
    return AC_OK;
}

static ac_status finish(imp *m, const char *sha, char *err)
{
    const kind_def *k = m->k;
    char sql[4096];
    ac_status rc;
    PGresult *res;
    if (m->direct) {
        /* the lines are in the table already: the rejects into the stage */
        rc = db_copy_begin(m->conn, "COPY pc_stage FROM STDIN", err);
        char buf[65536];
        size_t n;
        rewind(m->rejf);
        while (rc == AC_OK && (n = fread(buf, 1, sizeof buf, m->rejf)) > 0)
            rc = db_copy_put(m->conn, buf, n, err);
        if (rc == AC_OK && ferror(m->rejf))
            rc = ac_fail(err, AC_EIO, "cannot read back the rejected lines");
        ac_status e = db_copy_end(m->conn, rc == AC_OK ? NULL : "failed",
                                  rc == AC_OK ? err : m->err);
        if (rc == AC_OK)
            rc = e;
        if (rc != AC_OK)
            return rc;
        m->c.inserted = m->c.read - m->c.rejected;
        goto counted;
    }
    int o = snprintf(sql, sizeof sql, "INSERT INTO %s (line_key, import_id,"
                     " fields", k->table);
    for (int c = 0; c < k->ncols; c++)
        o += snprintf(sql + o, sizeof sql - (size_t)o, ", %s",
                      k->cols[c].column);
    o += snprintf(sql + o, sizeof sql - (size_t)o, ") SELECT line_key, $1,"
                  " fields::jsonb");
    for (int c = 0; c < k->ncols; c++)
        o += snprintf(sql + o, sizeof sql - (size_t)o, ", c%d::%s", c,
                      k->cols[c].cast);
    snprintf(sql + o, sizeof sql - (size_t)o, " FROM pc_stage WHERE reason"
             " IS NULL ON CONFLICT (line_key) DO NOTHING");
    const char *p[] = { m->import_id };
    rc = db_query(m->conn, sql, 1, p, &res, err);
    if (rc != AC_OK)
        return rc;
    m->c.inserted = atoll(PQcmdTuples(res));
    PQclear(res);
counted:
    m->c.unchanged = m->c.read - m->c.rejected - m->c.inserted;
    char kept[16];
    snprintf(kept, sizeof kept, "%d", REJECTS_KEPT);
    const char *rp[] = { m->import_id, kept };
    rc = db_exec_params(m->conn,
        "INSERT INTO usage.import_rejects (import_id, line_no, raw, reason)"
        " SELECT $1, line_no, raw, reason FROM pc_stage"
        " WHERE reason IS NOT NULL ORDER BY line_no LIMIT $2::int", 2, rp,
        err);
    if (rc != AC_OK)
        return rc;
    char n[6][24];
    snprintf(n[0], sizeof n[0], "%lld", m->c.read);
    snprintf(n[1], sizeof n[1], "%lld", m->c.inserted);
    snprintf(n[2], sizeof n[2], "%lld", m->c.unchanged);
    snprintf(n[3], sizeof n[3], "%lld", m->c.rejected);
    const char *up[] = { m->import_id, sha, n[0], n[1], n[2], n[3], kept };
    rc = db_exec_params(m->conn,
        "UPDATE usage.imports SET sha256 = $2, rows_read = $3,"
        " inserted = $4, unchanged = $5, rejected = $6, finished_at = now(),"
        " rejects_not_kept = CASE WHEN $6::bigint > $7::int THEN"
        " (SELECT jsonb_object_agg(r, n) FROM (SELECT split_part(reason,"
        " ':', 1) AS r, count(*) AS n FROM (SELECT reason FROM pc_stage"
        " WHERE reason IS NOT NULL ORDER BY line_no OFFSET $7::int) x"
        " GROUP BY 1) y) END"
        " WHERE import_id = $1", 7, up, err);
    if (rc == AC_OK)
        rc = db_exec(m->conn, "COMMIT", err);
    return rc;
}

/* A CSV file not imported before (no import of this source with its
 * SHA-256): COPY its lines straight into the table, in a savepoint, so
 * that they are written once (docs/billing-rules.md 7 keys make a line that is there
 * already, or twice in the file, fail the COPY).  Returns 1 when the
 * lines are in (the rejects wait in m->rejf for finish()); 0 when the
 * caller must take the staged way: not tried (l untouched), or the COPY
 * failed (rolled back to the savepoint, counts reset, l->gz closed and
 * NULL: read the file again), or the layout was refused (refuse set). */
static int try_direct(imp *m, const char *sha, lines *l, const char *first,
                      size_t len, char *refuse, char *err)
{
    const char *p[] = { m->k->source, sha };
    PGresult *res;
    if (db_query(m->conn, "SELECT EXISTS (SELECT 1 FROM usage.imports"
                 " WHERE source = $1 AND sha256 = $2 AND status = 'ok')", 2,
                 p, &res, err) != AC_OK)
        return 0;
    int seen = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (seen)
        return 0;
    m->rejf = tmpfile();
    if (m->rejf == NULL || db_exec(m->conn, "SAVEPOINT pc_direct", err) !=
        AC_OK)
        return 0;
    char sql[1024];
    int o = snprintf(sql, sizeof sql, "COPY %s (line_key, import_id, fields",
                     m->k->table);
    for (int c = 0; c < m->k->ncols; c++)
        o += snprintf(sql + o, sizeof sql - (size_t)o, ", %s",
                      m->k->cols[c].column);
    snprintf(sql + o, sizeof sql - (size_t)o, ") FROM STDIN");
    m->direct = 1;
    ac_status rc = db_copy_begin(m->conn, sql, err);
    if (rc == AC_OK) {
        rc = read_csv(m, l, first, len, refuse);
        flush_copy(m);
        if (rc == AC_OK && (m->rc != AC_OK || m->oom))
            rc = AC_EINTERNAL;
        ac_status e = db_copy_end(m->conn, rc == AC_OK ? NULL : "stopped",
                                  m->err);
        if (rc == AC_OK)
            rc = e;
    }
    if (rc == AC_OK)
        return 1;
    m->direct = 0;
    if (refuse[0] != '\0')
        return 0;               /* refused: the caller rolls back */
    ac_debug("import %s: straight COPY failed (%s): staging instead",
             m->k->source, m->err);
    if (db_exec(m->conn, "ROLLBACK TO SAVEPOINT pc_direct", err) != AC_OK)
        return 0;
    m->rc = AC_OK;
    m->oom = 0;
    m->clen = 0;
    memset(&m->c, 0, sizeof m->c);
    gzclose(l->gz);
    l->gz = NULL;
    return 0;
}

ac_status partner_import_file(PGconn *conn, partner_kind kind,
                              const char *path, const char *name,
                              const char *member, partner_counts *c,
                              char *err)
{
    imp m;
    memset(&m, 0, sizeof m);
    memset(c, 0, sizeof *c);
    m.conn = conn;
    m.k = &KINDS[kind];
    if (name == NULL)
        name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char sha[65];
    ac_status rc = file_sha256(path, sha, err);
    if (rc != AC_OK)
        return rc;
    lines l = { 0 };
    l.gz = gzopen(path, "rb");
    if (l.gz == NULL)
        return ac_fail(err, AC_EIO, "cannot open %s: %s", path,
                       strerror(errno));
    gzbuffer(l.gz, 256 * 1024);
    m.cbuf = malloc(COPY_BUF);
    if (m.cbuf == NULL) {
        gzclose(l.gz);
        return ac_fail(err, AC_EOSERR, "out of memory");
    }

    char refuse[AC_ERR_MAX] = "";
    size_t len = 0;
    int cut = 0, got;
    /* the first line that is not blank decides: '{' is JSON lines */
    do {
        got = next_line(&l, &len, &cut, refuse);
    } while (got == 1 && blank(l.buf, len));
    if (got < 0) {
        rc = AC_EDATA;
    } else if (got == 0) {
        snprintf(refuse, sizeof refuse, "the file is empty");
        rc = AC_EDATA;
    }
    const char *first = l.buf;
    if (got == 1 && len >= 3 && memcmp(first, "\xEF\xBB\xBF", 3) == 0) {
        first += 3;             /* UTF-8 BOM */
        len -= 3;
    }
    size_t skip = 0;
    while (got == 1 && skip < len && (first[skip] == ' ' ||
                                      first[skip] == '\t'))
        skip++;
    int is_json = got == 1 && skip < len && first[skip] == '{';

    if (rc == AC_OK)
        rc = db_exec(conn, "BEGIN", err);
    PGresult *res = NULL;
    if (rc == AC_OK) {
        const char *ip[] = { m.k->source, name, member };
        rc = db_query(conn, "INSERT INTO usage.imports (source, file_name,"
                      " member, status) VALUES ($1, $2, $3, 'ok')"
                      " RETURNING import_id", 3, ip, &res, err);
        if (rc == AC_OK) {
            snprintf(m.import_id, sizeof m.import_id, "%s",
                     PQgetvalue(res, 0, 0));
            c->import_id = atoll(m.import_id);
            PQclear(res);
        }
    }
    if (rc == AC_OK) {
        char sql[2048];
        int o = snprintf(sql, sizeof sql, "CREATE TEMP TABLE pc_stage"
                         " (line_no bigint, raw text, reason text,"
                         " line_key text, fields text");
        for (int i = 0; i < m.k->ncols; i++)
            o += snprintf(sql + o, sizeof sql - (size_t)o, ", c%d text", i);
        snprintf(sql + o, sizeof sql - (size_t)o, ") ON COMMIT DROP");
        rc = db_exec(conn, sql, err);
    }
    if (rc == AC_OK && is_json) {
        rc = read_json(&m, &l, first, len, refuse);
        if (rc != AC_OK && refuse[0] == '\0')
            snprintf(err, AC_ERR_MAX, "%s", m.err);
    } else if (rc == AC_OK && try_direct(&m, sha, &l, first, len, refuse,
                                         err) == 1) {
        /* loaded straight into the table */
    } else if (rc == AC_OK && refuse[0] == '\0') {
        if (l.gz == NULL) {
            /* the direct attempt failed: read the file again */
            l.gz = gzopen(path, "rb");
            if (l.gz == NULL) {
                rc = ac_fail(err, AC_EIO, "cannot open %s: %s", path,
                             strerror(errno));
                goto done;
            }
            gzbuffer(l.gz, 256 * 1024);
            l.eof = 0;
            l.line_no = 0;
            do {
                got = next_line(&l, &len, &cut, refuse);
            } while (got == 1 && blank(l.buf, len));
            first = l.buf;
            if (got == 1 && len >= 3 &&
                memcmp(first, "\xEF\xBB\xBF", 3) == 0) {
                first += 3;
                len -= 3;
            }
            if (got != 1) {
                rc = ac_fail(err, AC_EIO, "%s: cannot read it again", path);
                goto done;
            }
        }
        rc = db_copy_begin(conn, "COPY pc_stage FROM STDIN", err);
        if (rc == AC_OK) {
            rc = read_csv(&m, &l, first, len, refuse);
            flush_copy(&m);
            if (rc == AC_OK && (m.rc != AC_OK || m.oom)) {
                rc = m.oom ? ac_fail(err, AC_EOSERR, "out of memory") : m.rc;
                if (!m.oom)
                    snprintf(err, AC_ERR_MAX, "%s", m.err);
            }
            ac_status e = db_copy_end(conn, rc == AC_OK ? NULL : "refused",
                                      m.err);
            if (rc == AC_OK && e != AC_OK) {
                rc = e;
                snprintf(err, AC_ERR_MAX, "%s", m.err);
            }
        }
    }
done:
    if (l.gz != NULL)
        gzclose(l.gz);
    if (rc == AC_OK && refuse[0] != '\0')
        rc = AC_EDATA;
    if (rc == AC_OK)
        rc = finish(&m, sha, err);
    if (rc == AC_OK) {
        *c = m.c;
        c->import_id = atoll(m.import_id);
    } else {
        PQclear(PQexec(conn, "ROLLBACK"));
        memset(c, 0, sizeof *c);
        if (refuse[0] != '\0') {
            char why[AC_ERR_MAX];
            snprintf(err, AC_ERR_MAX, "%s: %s", name, refuse);
            if (import_record_refused(conn, NULL, m.k->source, name, member,
                                      sha, refuse, why) != AC_OK)
                ac_error("import %s: cannot record the refusal: %s",
                         m.k->source, why);
            rc = AC_EDATA;
        }
    }
    if (m.rejf != NULL)
        fclose(m.rejf);
    free(m.cbuf);
    free(m.json);
    free(m.norm);
    free(l.buf);
    cl_free(&m.line);
    return rc;
}
