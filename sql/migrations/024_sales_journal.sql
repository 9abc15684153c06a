-- acbill schema, version 24: the sales journal (SPEC version 3, 4.5).
--
-- Finance books by issue date.  journal-<YYYY-MM>.xlsx and .csv list every
-- invoice and credit note issued in a calendar month (of the documents'
-- issue_date), whatever their usage period, one row each.  A journal is
-- rewritten when a later run issues more documents in the same month, and
-- what was in it never changes: each document gets its line in its
-- month's journal once, when a journal is first written with it, in the
-- order of issue, and keeps it (so a run of another period that commits
-- a document a moment later cannot reorder the rows already published).

CREATE TABLE billing.journal_lines (
    month       date NOT NULL CHECK (extract(day FROM month) = 1),
    line        int NOT NULL CHECK (line >= 1),
    document_no text NOT NULL UNIQUE
                REFERENCES billing.documents (document_no),
    PRIMARY KEY (month, line)
);

CREATE FUNCTION billing.journal_lines_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a line of a published sales journal cannot be changed';
END $$;
CREATE TRIGGER journal_lines_immutable BEFORE UPDATE OR DELETE
    ON billing.journal_lines FOR EACH ROW
    EXECUTE FUNCTION billing.journal_lines_immutable();

-- The months (first days) with documents that no journal lists yet.
CREATE FUNCTION billing.journal_pending_months() RETURNS SETOF date
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT date_trunc('month', d.issue_date)::date
      FROM billing.documents d
     WHERE NOT EXISTS (SELECT 1 FROM billing.journal_lines j
                        WHERE j.document_no = d.document_no)
     ORDER BY 1
$$;

-- Give the documents of month p_month (a first day) that its journal
-- does not list yet the next lines, in the order they were issued
-- (issued_at; a credit note before the invoice issued with it; then by
-- series and number).  The caller holds the month's lock (the job takes
-- pg_advisory_xact_lock on 'acbill-dir YYYY-MM') and writes the files in
-- the same transaction.  Returns how many lines were added.
CREATE FUNCTION billing.journal_append(p_month date) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    added int;
BEGIN
    INSERT INTO billing.journal_lines (month, line, document_no)
    SELECT p_month, coalesce((SELECT max(line) FROM billing.journal_lines
                               WHERE month = p_month), 0)
                    + row_number() OVER (ORDER BY d.issued_at,
                          d.kind = 'invoice', d.series, d.year, d.seq),
           d.document_no
      FROM billing.documents d
     WHERE d.issue_date >= p_month
       AND d.issue_date < p_month + interval '1 month'
       AND NOT EXISTS (SELECT 1 FROM billing.journal_lines j
                        WHERE j.document_no = d.document_no);
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added;
END $$;
CREATE INDEX documents_issue_date ON billing.documents (issue_date);
