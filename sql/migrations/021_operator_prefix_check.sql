-- acbill schema: safe document-number prefixes (SPEC 2, issue 20).
--
-- ref.operator.invoice_prefix and credit_note_prefix begin every document
-- number, and document numbers are file names (<document_no>.xlsx): a
-- prefix such as '/../../x-' wrote a credit note outside the output
-- folder, and '../../' made every run fail with a malformed number kept
-- for good in the immutable ledger.  SPEC 2: at most 16 characters of
-- letters, digits, '-', '_' and '.', not starting with '.'.
--
-- The constraints are added NOT VALID, so that a database whose row
-- already breaks them still migrates (acbill run then refuses it with
-- exit 78, naming the column, before anything is issued: job/bill/run.c);
-- every new or changed row is checked.  When the row there is fine they
-- are validated at once.
ALTER TABLE ref.operator
    ADD CONSTRAINT operator_invoice_prefix_safe
    CHECK (invoice_prefix ~ '^([A-Za-z0-9_-][A-Za-z0-9._-]{0,15})?$')
    NOT VALID;
ALTER TABLE ref.operator
    ADD CONSTRAINT operator_credit_note_prefix_safe
    CHECK (credit_note_prefix ~ '^([A-Za-z0-9_-][A-Za-z0-9._-]{0,15})?$')
    NOT VALID;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ref.operator WHERE invoice_prefix !~
                   '^([A-Za-z0-9_-][A-Za-z0-9._-]{0,15})?$') THEN
        ALTER TABLE ref.operator
            VALIDATE CONSTRAINT operator_invoice_prefix_safe;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ref.operator WHERE credit_note_prefix !~
                   '^([A-Za-z0-9_-][A-Za-z0-9._-]{0,15})?$') THEN
        ALTER TABLE ref.operator
            VALIDATE CONSTRAINT operator_credit_note_prefix_safe;
    END IF;
END $$;
