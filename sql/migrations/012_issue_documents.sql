-- acbill schema, version 12: issuing the financial documents of a
-- statement revision (SPEC section 4.2).
--
-- The documents are written in a READ COMMITTED transaction of their own,
-- right after the revision's: the revision's REPEATABLE READ transaction
-- could not take a number from a counter that another worker has just
-- moved on.  billing.document_decisions records, per revision, that its
-- documents were decided, so a run that dies between the two
-- transactions leaves the decision to the next run, which makes it the
-- same way (the function does nothing for a revision already decided).
--
-- billing.issue_documents(invoice_no) decides and writes them:
-- * the tenant-period has no invoice in force (revision 1, or every
--   earlier invoice voided): an invoice for the revision's total;
-- * the invoice in force belongs to a revision whose subtotal, tax or
--   lines differ from this one's: a credit note for the whole of that
--   invoice (negative amounts, voids naming it), then a new invoice;
-- * otherwise (the money is unchanged): no document; the invoice in
--   force stands.
-- Numbers are gapless per series (the operator's prefix) and calendar
-- year of issue: the counter row of billing.document_numbers is locked
-- until the transaction ends, so a rolled-back tenant consumes none.
-- Seller (ref.operator) and buyer (ref.customers) are copied as they are.
-- Issue date: the tenant's local date at issue; due date: issue date +
-- the customer's payment terms (30 days without a profile).
-- Returns the numbers of the documents written, in order (empty: none).

-- The documents of a statement revision, as the workbook writers look
-- them up.
CREATE INDEX documents_invoice ON billing.documents (invoice_no);

CREATE TABLE billing.document_decisions (
    invoice_no text PRIMARY KEY REFERENCES billing.invoices (invoice_no),
    documents  text[] NOT NULL,         -- numbers written; empty: none
    decided_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION billing.next_document_no(p_series text, p_year int)
RETURNS int LANGUAGE sql AS $$
    INSERT INTO billing.document_numbers AS n (series, year, last)
    VALUES (p_series, p_year, 1)
    ON CONFLICT (series, year) DO UPDATE SET last = n.last + 1
    RETURNING last
$$;

CREATE FUNCTION billing.issue_documents(p_invoice_no text)
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
    s          billing.invoices;
    op         jsonb;
    cust       ref.customers;
    in_force   billing.documents;
    inv_prefix text := 'INV-';
    cn_prefix  text := 'CN-';
    issued     timestamptz := now();
    issue_day  date;
    terms      int;
    yr         int;
    seq        int;
    no         text;
    done       text[] := '{}';
    differs    boolean;
BEGIN
    SELECT * INTO STRICT s FROM billing.invoices
     WHERE invoice_no = p_invoice_no;
    -- One decision per tenant-period at a time.
    PERFORM pg_advisory_xact_lock(hashtextextended(
        'acbill-documents ' || s.tenant_id || ' ' || s.period, 0));
    -- Decided already (by this run or an earlier one): nothing to do.
    SELECT documents INTO done FROM billing.document_decisions
     WHERE invoice_no = p_invoice_no;
    IF FOUND THEN
        RETURN done;
    END IF;
    done := '{}';
    -- Earlier revisions still undecided (a run died between a revision
    -- and its documents, and a later revision came first) were
    -- superseded before finance saw them: no documents of their own.
    INSERT INTO billing.document_decisions (invoice_no, documents)
    SELECT i.invoice_no, '{}' FROM billing.invoices i
     WHERE i.tenant_id = s.tenant_id AND i.period = s.period
       AND i.revision < s.revision
       AND NOT EXISTS (SELECT 1 FROM billing.document_decisions d
                        WHERE d.invoice_no = i.invoice_no);
    -- Only the latest revision is invoiced.
    IF EXISTS (SELECT 1 FROM billing.invoices i
                WHERE i.tenant_id = s.tenant_id AND i.period = s.period
                  AND i.revision > s.revision) THEN
        INSERT INTO billing.document_decisions (invoice_no, documents)
        VALUES (p_invoice_no, done);
        RETURN done;
    END IF;
    SELECT to_jsonb(o) - 'one', o.invoice_prefix, o.credit_note_prefix
      INTO op, inv_prefix, cn_prefix FROM ref.operator o;
    IF op IS NULL THEN
        op := '{}'; inv_prefix := 'INV-'; cn_prefix := 'CN-';
    END IF;
    SELECT * INTO cust FROM ref.customers WHERE tenant_id = s.tenant_id;
    terms := coalesce(cust.payment_terms_days, 30);
    issued := s.issued_at;
    issue_day := (issued AT TIME ZONE s.time_zone)::date;
    yr := extract(year FROM issue_day)::int;

    SELECT * INTO in_force FROM billing.documents d
     WHERE d.tenant_id = s.tenant_id AND d.period = s.period
       AND d.kind = 'invoice'
       AND NOT EXISTS (SELECT 1 FROM billing.documents v
                        WHERE v.voids = d.document_no)
     ORDER BY d.issued_at DESC, d.document_no DESC LIMIT 1;

    IF in_force.document_no IS NOT NULL THEN
        SELECT in_force.subtotal <> s.subtotal OR in_force.tax <> s.tax
               OR EXISTS (SELECT country, kind, per_minute, connection_fee,
                                 calls, minutes, amount
                            FROM billing.invoice_lines
                           WHERE invoice_no = in_force.invoice_no
                          EXCEPT
                          SELECT country, kind, per_minute, connection_fee,
                                 calls, minutes, amount
                            FROM billing.invoice_lines
                           WHERE invoice_no = s.invoice_no)
               OR EXISTS (SELECT country, kind, per_minute, connection_fee,
                                 calls, minutes, amount
                            FROM billing.invoice_lines
                           WHERE invoice_no = s.invoice_no
                          EXCEPT
                          SELECT country, kind, per_minute, connection_fee,
                                 calls, minutes, amount
                            FROM billing.invoice_lines
                           WHERE invoice_no = in_force.invoice_no)
          INTO differs;
        IF NOT differs THEN
            -- Money unchanged: the invoice stands, no document.
            INSERT INTO billing.document_decisions (invoice_no, documents)
            VALUES (p_invoice_no, done);
            RETURN done;
        END IF;
        seq := billing.next_document_no(cn_prefix, yr);
        no := cn_prefix || yr || '-' || lpad(seq::text, 6, '0');
        INSERT INTO billing.documents (document_no, kind, series, year, seq,
            tenant_id, period, invoice_no, issued_at, issue_date, due_date,
            currency, minor_unit, subtotal, tax_rate, tax, total, tax_note,
            voids, seller, buyer, purchase_order, entra_tenant_id,
            payment_terms_days)
        VALUES (no, 'credit_note', cn_prefix, yr, seq, s.tenant_id,
            s.period, s.invoice_no, issued, issue_day, issue_day + terms,
            in_force.currency, in_force.minor_unit, -in_force.subtotal,
            in_force.tax_rate, -in_force.tax, -in_force.total,
            in_force.tax_note, in_force.document_no, op,
            CASE WHEN cust.tenant_id IS NULL THEN NULL
                 ELSE to_jsonb(cust) END,
            cust.purchase_order, cust.entra_tenant_id, terms);
        done := done || no;
    END IF;

    seq := billing.next_document_no(inv_prefix, yr);
    no := inv_prefix || yr || '-' || lpad(seq::text, 6, '0');
    INSERT INTO billing.documents (document_no, kind, series, year, seq,
        tenant_id, period, invoice_no, issued_at, issue_date, due_date,
        currency, minor_unit, subtotal, tax_rate, tax, total, tax_note,
        voids, seller, buyer, purchase_order, entra_tenant_id,
        payment_terms_days)
    VALUES (no, 'invoice', inv_prefix, yr, seq, s.tenant_id, s.period,
        s.invoice_no, issued, issue_day, issue_day + terms, s.currency,
        s.minor_unit, s.subtotal, s.tax_rate, s.tax, s.total,
        cust.tax_note, NULL, op,
        CASE WHEN cust.tenant_id IS NULL THEN NULL ELSE to_jsonb(cust) END,
        cust.purchase_order, cust.entra_tenant_id, terms);
    done := done || no;
    INSERT INTO billing.document_decisions (invoice_no, documents)
    VALUES (p_invoice_no, done);
    RETURN done;
END $$;
