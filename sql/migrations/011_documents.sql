-- acbill schema, version 11: the financial documents finance books (SPEC
-- section 4.2).
--
-- A statement revision (billing.invoices) is the rated usage.  The
-- documents are what finance books: an invoice for revision 1, and for a
-- later revision whose money differs from the last invoiced one a credit
-- note voiding that invoice (negative amounts) and a new invoice.  Their
-- numbers are gapless per series and calendar year of issue
-- (INV-2026-000001, CN-2026-000001), taken in the transaction that writes
-- the document, so a tenant that fails consumes none.  Seller and buyer
-- are kept as they were at issue.  Like statements, documents never
-- change, but for recording the workbook's file name and SHA-256 once.

CREATE TABLE billing.document_numbers (
    series text NOT NULL,               -- the prefix, e.g. 'INV-'
    year   int NOT NULL,
    last   int NOT NULL CHECK (last >= 1),
    PRIMARY KEY (series, year)
);

CREATE TABLE billing.documents (
    document_no     text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    series          text NOT NULL,
    year            int NOT NULL,
    seq             int NOT NULL CHECK (seq >= 1),
    tenant_id       text NOT NULL,
    period          date NOT NULL,
    invoice_no      text NOT NULL REFERENCES billing.invoices (invoice_no),
                    -- the statement revision it belongs to
    issued_at       timestamptz NOT NULL,
    issue_date      date NOT NULL,      -- in the tenant's time zone
    due_date        date NOT NULL,      -- issue date + payment terms
    currency        char(3) NOT NULL,
    minor_unit      int NOT NULL CHECK (minor_unit BETWEEN 0 AND 4),
    subtotal        numeric NOT NULL,
    tax_rate        numeric(6,4) NOT NULL,
    tax             numeric NOT NULL,
    total           numeric NOT NULL,
    tax_note        text,
    voids           text REFERENCES billing.documents (document_no),
                    -- a credit note: the invoice it cancels
    seller          jsonb NOT NULL,     -- ref.operator at issue
    buyer           jsonb,              -- ref.customers at issue (NULL: none)
    purchase_order  text,
    entra_tenant_id uuid,
    payment_terms_days int NOT NULL,
    file_name       text,
    content_sha256  text,
    UNIQUE (series, year, seq),
    CHECK ((kind = 'credit_note') = (voids IS NOT NULL)),
    CHECK (total = subtotal + tax),
    CHECK (due_date >= issue_date)
);
CREATE INDEX documents_tenant_period ON billing.documents (tenant_id, period);
-- An invoice is voided at most once.
CREATE UNIQUE INDEX documents_voids ON billing.documents (voids)
    WHERE voids IS NOT NULL;

CREATE FUNCTION billing.documents_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'document % cannot be deleted', OLD.document_no;
    END IF;
    IF (to_jsonb(NEW) - 'file_name' - 'content_sha256')
       IS DISTINCT FROM (to_jsonb(OLD) - 'file_name' - 'content_sha256')
       OR (OLD.file_name IS NOT NULL
           AND NEW.file_name IS DISTINCT FROM OLD.file_name)
       OR (OLD.content_sha256 IS NOT NULL
           AND NEW.content_sha256 IS DISTINCT FROM OLD.content_sha256) THEN
        RAISE EXCEPTION 'document % cannot be changed', OLD.document_no;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER documents_immutable BEFORE UPDATE OR DELETE
    ON billing.documents FOR EACH ROW
    EXECUTE FUNCTION billing.documents_immutable();

-- The digest of a tenant-period's inputs (its calls, licences, tenant and
-- billing profile, and the reference data) when it was last rated, so
-- that a night with nothing new costs a cheap check, not a re-rating.
-- The job's own bookkeeping: it changes on every rating.
CREATE TABLE billing.period_inputs (
    tenant_id  text NOT NULL,
    period     date NOT NULL,
    digest     text NOT NULL,
    invoice_no text NOT NULL,           -- the revision those inputs gave
    rated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, period)
);

-- run_tenants: a tenant-period can also be drafted (still in its grace
-- period), or have no usage at all (nothing is issued for it).
ALTER TABLE billing.run_tenants DROP CONSTRAINT IF EXISTS
    run_tenants_status_check;
ALTER TABLE billing.run_tenants ADD CONSTRAINT run_tenants_status_check
    CHECK (status IN ('issued', 'unchanged', 'failed', 'draft',
                      'no_usage'));

-- The Calls sheet shows Microsoft's keys, to reconcile with its export
-- (SPEC 4.3): kept with each rated call.
ALTER TABLE billing.rated_calls
    ADD COLUMN call_id text,
    ADD COLUMN conference_id text,
    ADD COLUMN provider_capability text;
