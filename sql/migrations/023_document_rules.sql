-- acbill schema, version 23: the document rules of SPEC version 3
-- (section 4.2).
--
-- * No document without a complete seller (ref.operator legal_name,
--   address, country, tax_id) and buyer (ref.customers legal_name,
--   address, country, and tax_note where the resolved tax category needs
--   one).  The job refuses to run without a seller
--   (billing.document_seller_missing(), exit 78); a tenant whose buyer is
--   incomplete is held: its statement stands, its documents wait
--   (billing.document_holds) and are issued, without a new revision, by
--   the first run that finds the profile complete.
-- * No invoice for a total of 0; a new total of 0 voids the invoice in
--   force without a replacement.
-- * A credit note gives its reason in words (derived by comparing the
--   voided invoice's revision with the new one), names the invoice that
--   replaces it (replaced_by) and has no due date.
-- * Every document records the tax category it was issued under
--   (tax_category, UNCL 5305, resolved as SPEC 2 says).
-- * Documents are dated when they are really issued (now()), also when a
--   run died between a revision and its documents and the next run
--   issues them.
-- * was_held: the document was issued after its statement's workbook
--   (the statement was held); such an invoice has a workbook of its own,
--   <document_no>.xlsx, and the statement's workbook stays as written.

ALTER TABLE billing.documents
    ADD COLUMN replaced_by  text,
    ADD COLUMN reason       text,
    ADD COLUMN tax_category text
        CHECK (tax_category IN ('S', 'AE', 'K', 'G', 'E', 'O', 'Z')),
    ADD COLUMN was_held     boolean NOT NULL DEFAULT false,
    ALTER COLUMN due_date DROP NOT NULL;
-- From version 23 on: a credit note has a reason and no due date; an
-- invoice has a due date and neither reason nor replacement.  (NOT VALID:
-- the documents issued before keep what they were issued with.)
ALTER TABLE billing.documents ADD CONSTRAINT documents_v3_kinds CHECK (
    CASE kind WHEN 'credit_note'
         THEN due_date IS NULL AND reason IS NOT NULL
         ELSE due_date IS NOT NULL AND replaced_by IS NULL
              AND reason IS NULL END) NOT VALID;
CREATE UNIQUE INDEX documents_replaced_by ON billing.documents (replaced_by)
    WHERE replaced_by IS NOT NULL;

ALTER TABLE billing.run_tenants DROP CONSTRAINT IF EXISTS
    run_tenants_status_check;
ALTER TABLE billing.run_tenants ADD CONSTRAINT run_tenants_status_check
    CHECK (status IN ('issued', 'unchanged', 'failed', 'draft',
                      'no_usage', 'held'));

-- A statement revision whose documents wait for a complete buyer.  The
-- first message is kept (the statement's workbook says it was held);
-- the latest one is in billing.run_tenants of each run.  released_at:
-- when its documents were issued at last.
CREATE TABLE billing.document_holds (
    invoice_no  text PRIMARY KEY REFERENCES billing.invoices (invoice_no),
    tenant_id   text NOT NULL,
    period      date NOT NULL,
    message     text NOT NULL,
    held_at     timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz
);

-- The columns of ref.operator a document needs that are empty, by column
-- name (SPEC 4.2), in the table's order; the whole list when there is no
-- row.  Also a prefix that is not 1 to 16 letters, digits, '-', '_' or
-- '.' (not starting with '.') is named (SPEC 2).
CREATE FUNCTION billing.document_seller_missing() RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN o.one IS NULL
        THEN ARRAY['legal_name', 'address', 'country', 'tax_id']
        ELSE array_remove(ARRAY[
            CASE WHEN nullif(btrim(o.legal_name), '') IS NULL
                 THEN 'legal_name' END,
            CASE WHEN nullif(btrim(o.address), '') IS NULL
                 THEN 'address' END,
            CASE WHEN nullif(btrim(o.country), '') IS NULL
                 THEN 'country' END,
            CASE WHEN nullif(btrim(o.tax_id), '') IS NULL
                 THEN 'tax_id' END,
            CASE WHEN o.invoice_prefix !~ '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,15}$'
                 THEN 'invoice_prefix (at most 16 letters, digits, -, _'
                      ' and ., not starting with .)' END,
            CASE WHEN o.credit_note_prefix
                      !~ '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,15}$'
                 THEN 'credit_note_prefix (at most 16 letters, digits, -,'
                      ' _ and ., not starting with .)' END], NULL) END
    FROM (SELECT 1) AS one LEFT JOIN ref.operator o ON true
$$;

-- The tax category of a tenant's documents (SPEC 2): the profile's, or
-- S when its tax_rate is above 0, else O; O without a profile.
CREATE FUNCTION billing.resolved_tax_category(p_tenant text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT coalesce(c.tax_category,
                         CASE WHEN c.tax_rate > 0 THEN 'S' ELSE 'O' END)
                       FROM ref.customers c WHERE c.tenant_id = p_tenant),
                    'O')
$$;

-- What a tenant's buyer lacks for a document (SPEC 4.2), by column name:
-- legal_name, address, country; tax_note where the resolved category is
-- neither S nor Z; and, since every category but S requires a tax rate
-- of 0 (SPEC 2), a non-zero tax_rate under another category is named as
-- 'tax_rate (must be 0 under tax_category X)'.  Without a profile, all
-- of legal_name, address, country and tax_note (the category is then O).
-- Empty: complete.
CREATE FUNCTION billing.document_buyer_missing(p_tenant text) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN c.tenant_id IS NULL
        THEN ARRAY['legal_name', 'address', 'country', 'tax_note']
        ELSE array_remove(ARRAY[
            CASE WHEN nullif(btrim(c.legal_name), '') IS NULL
                 THEN 'legal_name' END,
            CASE WHEN nullif(btrim(c.address), '') IS NULL
                 THEN 'address' END,
            CASE WHEN nullif(btrim(c.country), '') IS NULL
                 THEN 'country' END,
            CASE WHEN cat NOT IN ('S', 'Z')
                      AND nullif(btrim(c.tax_note), '') IS NULL
                 THEN 'tax_note' END,
            CASE WHEN cat <> 'S' AND c.tax_rate <> 0
                 THEN 'tax_rate (must be 0 under tax_category ' || cat
                      || ')' END], NULL) END
    FROM (SELECT 1) AS one
    LEFT JOIN ref.customers c ON c.tenant_id = p_tenant
    CROSS JOIN LATERAL (SELECT billing.resolved_tax_category(p_tenant)
                        AS cat) r
$$;

-- The reason of a credit note voiding the invoice of revision p_old
-- because of revision p_new, in words, with counts: the calls that
-- arrived late (in p_new, not in p_old), those gone, those re-rated at
-- another rate, those whose usage data changed (start, organizer, number,
-- duration), those re-rated otherwise (licences, pool, rules), the
-- licences (seats, pool), the tax rate and category, and the totals.
CREATE FUNCTION billing.credit_note_reason(p_old text, p_new text,
                                           p_old_category text,
                                           p_new_category text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    o billing.invoices;
    n billing.invoices;
    added bigint;
    removed bigint;
    rerated_rate bigint;
    changed bigint;
    rerated bigint;
    parts text[] := '{}';
BEGIN
    SELECT * INTO STRICT o FROM billing.invoices WHERE invoice_no = p_old;
    SELECT * INTO STRICT n FROM billing.invoices WHERE invoice_no = p_new;
    SELECT count(*) FILTER (WHERE a.usage_id IS NULL),
           count(*) FILTER (WHERE b.usage_id IS NULL),
           count(*) FILTER (WHERE rate_changed),
           count(*) FILTER (WHERE NOT rate_changed AND data_changed),
           count(*) FILTER (WHERE NOT rate_changed AND NOT data_changed
               AND a.usage_id IS NOT NULL AND b.usage_id IS NOT NULL
               AND (a.outcome, a.reason, a.billed_minutes, a.pool_minutes,
                    a.amount)
                   IS DISTINCT FROM (b.outcome, b.reason, b.billed_minutes,
                                     b.pool_minutes, b.amount))
      INTO added, removed, rerated_rate, changed, rerated
      FROM (SELECT * FROM billing.rated_calls WHERE invoice_no = p_old) a
      FULL JOIN (SELECT * FROM billing.rated_calls WHERE invoice_no = p_new) b
        ON a.usage_id = b.usage_id
      CROSS JOIN LATERAL (SELECT coalesce(a.per_minute IS NOT NULL
               AND b.per_minute IS NOT NULL
               AND (a.per_minute, a.connection_fee)
                   IS DISTINCT FROM (b.per_minute, b.connection_fee), false)
               AS rate_changed,
             coalesce(a.usage_id IS NOT NULL AND b.usage_id IS NOT NULL
               AND (a.start_time, a.organizer_id, a.destination_number,
                    a.duration_seconds)
                   IS DISTINCT FROM (b.start_time, b.organizer_id,
                                     b.destination_number,
                                     b.duration_seconds), false)
               AS data_changed) r;
    IF added > 0 THEN
        parts := parts || (added || CASE WHEN added = 1 THEN ' call' ELSE
                           ' calls' END || ' arrived late');
    END IF;
    IF removed > 0 THEN
        parts := parts || (removed || CASE WHEN removed = 1 THEN ' call'
                           ELSE ' calls' END
                           || ' no longer in the usage data');
    END IF;
    IF rerated_rate > 0 THEN
        parts := parts || (rerated_rate || CASE WHEN rerated_rate = 1
                           THEN ' call' ELSE ' calls' END
                           || ' re-rated at a changed rate');
    END IF;
    IF changed > 0 THEN
        parts := parts || (changed || CASE WHEN changed = 1 THEN ' call'
                           ELSE ' calls' END
                           || ' changed in the usage data');
    END IF;
    IF rerated > 0 THEN
        parts := parts || (rerated || CASE WHEN rerated = 1 THEN ' call'
                           ELSE ' calls' END
                           || ' re-rated (licences, pool or rules changed)');
    END IF;
    IF o.seats IS DISTINCT FROM n.seats
       OR o.pool_minutes IS DISTINCT FROM n.pool_minutes THEN
        parts := parts || ('licences changed: ' || o.seats || ' -> '
                           || n.seats || ' seats, pool ' || o.pool_minutes
                           || ' -> ' || n.pool_minutes || ' minutes');
    END IF;
    IF o.tax_rate IS DISTINCT FROM n.tax_rate THEN
        parts := parts || ('tax rate changed: '
                           || trim_scale(o.tax_rate * 100) || ' % -> '
                           || trim_scale(n.tax_rate * 100) || ' %');
    END IF;
    IF p_old_category IS DISTINCT FROM p_new_category
       AND p_old_category IS NOT NULL THEN
        parts := parts || ('tax category changed: ' || p_old_category
                           || ' -> ' || p_new_category);
    END IF;
    IF cardinality(parts) = 0 THEN
        parts := ARRAY['the invoice lines changed'];
    END IF;
    RETURN 'Statement ' || n.invoice_no || ' revises ' || o.invoice_no
        || ': ' || array_to_string(parts, '; ') || '. Total '
        || o.total || ' -> ' || n.total || ' ' || n.currency || '.';
END $$;

DROP FUNCTION billing.issue_documents(text);

-- billing.issue_documents(invoice_no) decides and writes the documents of
-- a statement revision, in its own READ COMMITTED transaction (see
-- migration 012):
-- * a revision already decided, or superseded by a later one: nothing new;
-- * no invoice in force: an invoice for the total, unless it is 0;
-- * an invoice in force of a revision whose subtotal, tax or lines differ:
--   a credit note for the whole of it (negative amounts, voids naming it,
--   its reason, no due date) and, unless the new total is 0, a new
--   invoice that replaces it (the credit note's replaced_by);
-- * otherwise (money unchanged): nothing; the invoice in force stands.
-- Documents are written only with a complete seller (else an exception:
-- the job checks it before billing) and buyer; a revision that needs
-- documents while its buyer is incomplete is held: nothing is written and
-- no number taken, the revision stays undecided, `held` says why, and a
-- later call (the nightly cheap check calls it for every unchanged
-- tenant-period) issues them when the profile is complete.
-- Returns the numbers of the revision's documents, in order (empty:
-- none), held (NULL: not held) and written_now (this call wrote them).
CREATE FUNCTION billing.issue_documents(p_invoice_no text,
                                        OUT documents text[],
                                        OUT held text,
                                        OUT written_now boolean)
LANGUAGE plpgsql AS $$
DECLARE
    s          billing.invoices;
    op         jsonb;
    cust       ref.customers;
    in_force   billing.documents;
    inv_prefix text;
    cn_prefix  text;
    issued     timestamptz := now();
    issue_day  date;
    terms      int;
    yr         int;
    seq        int;
    cn_seq     int;
    inv_no     text;
    cn_no      text;
    differs    boolean;
    need_void  boolean := false;
    need_inv   boolean;
    missing    text[];
    category   text;
    late       boolean;
    why        text;
BEGIN
    documents := '{}';
    written_now := false;
    SELECT * INTO STRICT s FROM billing.invoices
     WHERE invoice_no = p_invoice_no;
    -- One decision per tenant-period at a time.
    PERFORM pg_advisory_xact_lock(hashtextextended(
        'acbill-documents ' || s.tenant_id || ' ' || s.period, 0));
    SELECT d.documents INTO documents FROM billing.document_decisions d
     WHERE d.invoice_no = p_invoice_no;
    IF FOUND THEN
        RETURN;
    END IF;
    documents := '{}';
    -- Earlier revisions still undecided (a run died, or they were held)
    -- were superseded before finance saw documents of them.
    INSERT INTO billing.document_decisions (invoice_no, documents)
    SELECT i.invoice_no, '{}' FROM billing.invoices i
     WHERE i.tenant_id = s.tenant_id AND i.period = s.period
       AND i.revision < s.revision
       AND NOT EXISTS (SELECT 1 FROM billing.document_decisions d
                        WHERE d.invoice_no = i.invoice_no);
    IF EXISTS (SELECT 1 FROM billing.invoices i
                WHERE i.tenant_id = s.tenant_id AND i.period = s.period
                  AND i.revision > s.revision) THEN
        INSERT INTO billing.document_decisions (invoice_no, documents)
        VALUES (p_invoice_no, documents);
        RETURN;
    END IF;

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
        need_void := differs;
    END IF;
    need_inv := s.total <> 0
                AND (in_force.document_no IS NULL OR need_void);
    IF NOT need_void AND NOT need_inv THEN
        -- Money unchanged, or a total of 0 with nothing to void: no
        -- document (a usage statement).
        INSERT INTO billing.document_decisions (invoice_no, documents)
        VALUES (p_invoice_no, documents);
        RETURN;
    END IF;

    missing := billing.document_seller_missing();
    IF cardinality(missing) > 0 THEN
        RAISE EXCEPTION 'the seller (ref.operator) is incomplete: %',
            array_to_string(missing, ', ')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    missing := billing.document_buyer_missing(s.tenant_id);
    IF cardinality(missing) > 0 THEN
        held := 'held: no document until the billing profile is complete;'
            || ' ref.customers lacks ' || array_to_string(missing, ', ');
        INSERT INTO billing.document_holds AS h (invoice_no, tenant_id,
                                                 period, message)
        VALUES (p_invoice_no, s.tenant_id, s.period, held)
        ON CONFLICT (invoice_no) DO NOTHING;
        RETURN;
    END IF;

    SELECT to_jsonb(o) - 'one', o.invoice_prefix, o.credit_note_prefix
      INTO op, inv_prefix, cn_prefix FROM ref.operator o;
    SELECT * INTO cust FROM ref.customers WHERE tenant_id = s.tenant_id;
    category := billing.resolved_tax_category(s.tenant_id);
    terms := coalesce(cust.payment_terms_days, 30);
    issue_day := (issued AT TIME ZONE s.time_zone)::date;
    yr := extract(year FROM issue_day)::int;
    late := EXISTS (SELECT 1 FROM billing.document_holds h
                     WHERE h.invoice_no = p_invoice_no);

    IF need_void THEN
        cn_seq := billing.next_document_no(cn_prefix, yr);
        cn_no := cn_prefix || yr || '-' || lpad(cn_seq::text, 6, '0');
    END IF;
    IF need_inv THEN
        seq := billing.next_document_no(inv_prefix, yr);
        inv_no := inv_prefix || yr || '-' || lpad(seq::text, 6, '0');
        INSERT INTO billing.documents (document_no, kind, series, year, seq,
            tenant_id, period, invoice_no, issued_at, issue_date, due_date,
            currency, minor_unit, subtotal, tax_rate, tax, total, tax_note,
            voids, seller, buyer, purchase_order, entra_tenant_id,
            payment_terms_days, tax_category, was_held)
        VALUES (inv_no, 'invoice', inv_prefix, yr, seq, s.tenant_id,
            s.period, s.invoice_no, issued, issue_day, issue_day + terms,
            s.currency, s.minor_unit, s.subtotal, s.tax_rate, s.tax,
            s.total, cust.tax_note, NULL, op, to_jsonb(cust),
            cust.purchase_order, cust.entra_tenant_id, terms, category,
            late);
    END IF;
    IF need_void THEN
        why := billing.credit_note_reason(in_force.invoice_no, s.invoice_no,
                                          in_force.tax_category, category)
            || CASE WHEN inv_no IS NULL
                    THEN ' Voided without replacement: the new total is 0.'
                    ELSE ' Replaced by invoice ' || inv_no || '.' END;
        INSERT INTO billing.documents (document_no, kind, series, year, seq,
            tenant_id, period, invoice_no, issued_at, issue_date, due_date,
            currency, minor_unit, subtotal, tax_rate, tax, total, tax_note,
            voids, seller, buyer, purchase_order, entra_tenant_id,
            payment_terms_days, tax_category, was_held, replaced_by, reason)
        VALUES (cn_no, 'credit_note', cn_prefix, yr, cn_seq, s.tenant_id,
            s.period,
            s.invoice_no, issued, issue_day, NULL, in_force.currency,
            in_force.minor_unit, -in_force.subtotal, in_force.tax_rate,
            -in_force.tax, -in_force.total, in_force.tax_note,
            in_force.document_no, op, to_jsonb(cust), cust.purchase_order,
            cust.entra_tenant_id, terms,
            coalesce(in_force.tax_category, category), late, inv_no, why);
        documents := documents || cn_no;
    END IF;
    IF inv_no IS NOT NULL THEN
        documents := documents || inv_no;
    END IF;
    written_now := true;
    UPDATE billing.document_holds SET released_at = issued
     WHERE invoice_no = p_invoice_no AND released_at IS NULL;
    INSERT INTO billing.document_decisions (invoice_no, documents)
    VALUES (p_invoice_no, documents);
END $$;
