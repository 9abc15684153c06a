/* customer_doc.h: what the customer receives for an invoice or credit
 * note (docs/billing-rules.md 4.4): the PDF (pdf_document.c) and the Peppol BIS Billing 3.0
 * UBL e-invoice (ubl_document.c), both drawn from the ledger's
 * billing.documents row, the statement's billing.invoice_lines and (the
 * PDF's call annex) billing.rated_calls.
 *
 * Like the workbook writers (report.h) these functions only read: they
 * never begin, commit or roll back, so a caller may use them inside its
 * own transaction.  Output is deterministic: the same ledger rows give
 * byte-identical files (the PDF's creation date is the document's
 * issued_at; nothing depends on the clock, the locale or the session's
 * time zone; the process must never call setlocale()).
 *
 * A credit note's lines are those of the invoice it voids (it credits the
 * whole invoice, docs/billing-rules.md 4.2); its tax category is the voided invoice's. */
#ifndef AC_CUSTOMER_DOC_H
#define AC_CUSTOMER_DOC_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* The smallest text on any page of a customer PDF, in points (docs/billing-rules.md 4.4:
 * nothing smaller than 7 pt).  Every size pdf_document.c uses is one of
 * the PDF_PT_* sizes below, all at least this. */
#define PDF_PT_MIN 7.0

/* A party as recorded on the document at issue (NULL: not recorded). */
typedef struct {
    const char *legal_name, *address, *country, *tax_id, *email, *phone,
               *payment_details, *peppol_endpoint;
} cd_party;

/* One invoice line of docs/billing-rules.md 3, positive as on the invoice. */
typedef struct {
    const char *country;        /* ISO 3166 alpha-2 */
    const char *kind;           /* "" when none */
    const char *rate_text;      /* per_minute, trailing zeros trimmed */
    const char *fee_text;       /* connection_fee, likewise */
    int64_t rate, fee;          /* 1/10000 units */
    int64_t calls, minutes;
    int64_t amount;             /* the ledger's line amount, units */
} cd_line;

/* A document as the writers see it.  Strings point into the query
 * results kept in the struct; cd_free() releases them. */
typedef struct {
    const char *document_no;
    int credit_note;            /* 1: a credit note, 0: an invoice */
    const char *issue_date;     /* YYYY-MM-DD */
    const char *due_date;       /* YYYY-MM-DD; NULL for a credit note */
    const char *issued_at;      /* YYYY-MM-DDTHH:MM:SSZ (UTC) */
    const char *currency;
    int minor_unit;
    int64_t subtotal, tax, total;   /* units, as in the ledger (a credit
                                     * note's are negative) */
    const char *tax_percent;    /* tax_rate x 100, e.g. "20", "0" */
    const char *tax_category;   /* S, AE, K, G, E, O or Z, as resolved */
    const char *tax_note;       /* NULL when none */
    const char *period_start, *period_end;  /* YYYY-MM-DD, the month */
    const char *tenant_id, *tenant_name, *time_zone;
    const char *statement_no;   /* the revision the document belongs to */
    const char *lines_of;       /* the revision whose lines it carries */
    const char *voids, *voids_date; /* a credit note's voided invoice */
    const char *reason, *replaced_by;  /* a credit note's (NULL: none) */
    const char *purchase_order;
    int has_buyer;
    int call_detail;            /* ref.customers.call_detail at issue */
    cd_party seller, buyer;
    cd_line *lines;
    int nlines;
    int64_t annex_calls;        /* billed and split calls of lines_of */
    /* private */
    PGresult *head_res, *lines_res;
} cd_doc;

/* Initialise the libraries the writers use (libxml2's parser state,
 * fontconfig) once, from the main thread, before threads call the
 * writers: libxml2 asks for it, and the first use from several threads
 * at once would race.  Idempotent. */
void report_documents_init(void);

/* Read document_no (billing.documents) and its lines into *doc.  AC_EDATA
 * when there is no such document or a figure cannot be read exactly (a
 * line amount with more than 4 decimals), the database's status when a
 * query fails; message in err.  On success call cd_free(). */
ac_status cd_load(PGconn *conn, const char *document_no, cd_doc *doc,
                  char *err);

/* Release what cd_load() allocated (safe on a zeroed struct). */
void cd_free(cd_doc *doc);

/* Why document doc gets no e-invoice, in words for the log and the
 * finance summary, written to why (len bytes): the buyer has no
 * peppol_endpoint, the seller has none (Peppol needs both electronic
 * addresses), or the currency has more than 2 decimals (EN 16931 allows
 * at most 2).  Returns 1 when there is such a reason, 0 when the document
 * gets one (why is then ""). */
int cd_ubl_skip_reason(const cd_doc *doc, char *why, size_t len);

/* Whether document_no gets an e-invoice: *skip 1 with the reason in why
 * (cd_ubl_skip_reason(), len bytes), or 0.  Errors as cd_load(). */
ac_status report_document_ubl_skip(PGconn *conn, const char *document_no,
                                   int *skip, char *why, size_t len,
                                   char *err);

/* Write the PDF of document_no to path (docs/billing-rules.md 4.4): A4 portrait, text
 * drawn with pango on a cairo PDF surface, fonts embedded (subsets), the
 * creation date the document's issued_at.  Page 1: the document header
 * (type, number, issue date, due date, period of supply, seller and
 * buyer with addresses and tax ids, the buyer's reference), a credit
 * note's voided invoice, reason and replacing invoice, the lines
 * (country, kind, calls, minutes, rate, connection fee, amount), the
 * taxable amount per category and rate, the tax, the tax note, the total
 * due, the payment details and the seller's contact; amounts to the
 * currency's minor unit and dates ISO 8601.  Then, when the buyer's
 * call_detail is set, the annex: one line per billed or split call of
 * the revision, in its seq order, read in libpq single-row mode and drawn
 * page by page, so memory does not grow with the number of calls.  Every
 * page shows the document number and "Page n of m".  An existing file at
 * path is replaced; on failure it is removed.  AC_EDATA as cd_load(), the
 * database's status, AC_ECANTCREAT when the file cannot be written; while
 * it runs conn has a query in flight. */
ac_status report_document_pdf(PGconn *conn, const char *document_no,
                              const char *path, char *err);

/* Write the e-invoice of document_no to path: a UBL 2.1 Invoice (a
 * credit note: CreditNote) following Peppol BIS Billing 3.0, mapped as
 * docs/billing-rules.md 4.4 lists, with libxml2's xmlTextWriter, UTF-8, indented.  Its
 * totals equal the document's to the minor unit (a credit note's as
 * positive amounts).  AC_EDATA when the document gets no e-invoice
 * (cd_ubl_skip_reason(), the reason in err) or its lines do not add up to
 * its subtotal; otherwise as report_document_pdf(). */
ac_status report_document_ubl(PGconn *conn, const char *document_no,
                              const char *path, char *err);

#endif
