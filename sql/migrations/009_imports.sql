-- acbill schema: imports of Microsoft's data into usage.* (SPEC section 6).
--
-- * usage.imports records every file (or Graph window, or zip member)
--   that `acbill import` or `acbill pull` loaded or refused, with its
--   SHA-256 and what became of its rows: read = inserted + updated +
--   unchanged + skipped (another call type) + rejected.
-- * usage.import_rejects keeps each row that could not be loaded, with
--   its line number (the record's first physical line in a CSV file, the
--   element's position, from 1, in a JSON `value` array), its raw text
--   and the reason.
-- * The licence tables gain import_id: the licence snapshot import
--   manages the intervals it opened itself (import_id not null) and never
--   touches rows the operator entered by hand.

CREATE TABLE usage.imports (
    import_id   bigserial PRIMARY KEY,
    tenant_id   text NOT NULL,
    source      text NOT NULL CHECK (source IN ('pstn', 'graph-calls',
                    'graph-pull', 'licences-skus', 'licences-users')),
    file_name   text NOT NULL,
    member      text,               -- the file inside a .zip
    sha256      text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    snapshot_at timestamptz,        -- licences: the snapshot's instant
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status      text NOT NULL CHECK (status IN ('ok', 'refused')),
    message     text,
    rows_read   bigint NOT NULL DEFAULT 0,
    inserted    bigint NOT NULL DEFAULT 0,
    updated     bigint NOT NULL DEFAULT 0,
    unchanged   bigint NOT NULL DEFAULT 0,
    skipped     bigint NOT NULL DEFAULT 0,
    rejected    bigint NOT NULL DEFAULT 0,
    closed      bigint NOT NULL DEFAULT 0,  -- licences: intervals closed
    CHECK (rows_read = inserted + updated + unchanged + skipped + rejected)
);
CREATE INDEX imports_tenant ON usage.imports (tenant_id, source, import_id);

CREATE TABLE usage.import_rejects (
    import_id bigint NOT NULL REFERENCES usage.imports (import_id)
              ON DELETE CASCADE,
    line_no   bigint NOT NULL,
    raw       text,
    reason    text NOT NULL
);
CREATE INDEX import_rejects_import ON usage.import_rejects (import_id, line_no);

ALTER TABLE usage.license_purchases ADD COLUMN IF NOT EXISTS import_id bigint;
ALTER TABLE usage.license_assignments ADD COLUMN IF NOT EXISTS import_id bigint;
CREATE INDEX IF NOT EXISTS license_purchases_import
    ON usage.license_purchases (tenant_id, sku) WHERE import_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS license_assignments_import
    ON usage.license_assignments (tenant_id, user_id)
    WHERE import_id IS NOT NULL;
