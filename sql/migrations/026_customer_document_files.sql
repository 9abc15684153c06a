-- acbill schema, version 26: the customer documents of SPEC 4.4.
--
-- Every invoice and credit note is also written as <document_no>.pdf (what
-- the customer receives) and, for a buyer with a Peppol address when the
-- seller has one too and the currency has at most 2 decimals, as
-- <document_no>.xml (a Peppol BIS Billing 3.0 UBL e-invoice).  Each file's
-- name and SHA-256 is recorded once, like the workbook's (file_name,
-- content_sha256); xml_skipped says in words why a document has no
-- e-invoice (recorded once too), for the log and the finance summary.
-- Nothing else of a document may change.

ALTER TABLE billing.documents
    ADD COLUMN pdf_file    text,
    ADD COLUMN pdf_sha256  text CHECK (pdf_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN xml_file    text,
    ADD COLUMN xml_sha256  text CHECK (xml_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN xml_skipped text,
    ADD CHECK (xml_file IS NULL OR xml_skipped IS NULL);

-- The columns that are written once after the document (NULL until then,
-- never changed afterwards).  Every other column is fixed at issue.
CREATE OR REPLACE FUNCTION billing.documents_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    once constant text[] := ARRAY['file_name', 'content_sha256',
        'pdf_file', 'pdf_sha256', 'xml_file', 'xml_sha256', 'xml_skipped'];
    o jsonb;
    n jsonb;
    c text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'document % cannot be deleted', OLD.document_no;
    END IF;
    o := to_jsonb(OLD);
    n := to_jsonb(NEW);
    IF (n - once) IS DISTINCT FROM (o - once) THEN
        RAISE EXCEPTION 'document % cannot be changed', OLD.document_no;
    END IF;
    FOREACH c IN ARRAY once LOOP
        IF o ->> c IS NOT NULL AND (n ->> c) IS DISTINCT FROM (o ->> c) THEN
            RAISE EXCEPTION 'document % cannot be changed (% is set)',
                OLD.document_no, c;
        END IF;
    END LOOP;
    RETURN NEW;
END $$;
