-- acbill schema, version 1.
--
-- usage.* and ref.* are the job's inputs (SPEC section 2): the job creates
-- them when they are missing, so a fresh database works, but never writes
-- to them while billing.  billing.* is the job's own ledger (SPEC section 4).
-- Issued invoices are immutable: a trigger refuses deletes and any update
-- other than recording the workbook's file name and SHA-256 once.

CREATE SCHEMA IF NOT EXISTS usage;
CREATE SCHEMA IF NOT EXISTS ref;
CREATE SCHEMA IF NOT EXISTS billing;

-- ---------------------------------------------------------------- inputs

CREATE TABLE IF NOT EXISTS usage.tenants (
    tenant_id  text PRIMARY KEY,
    name       text NOT NULL,
    currency   char(3) NOT NULL,
    time_zone  text NOT NULL DEFAULT 'UTC'
);

CREATE TABLE IF NOT EXISTS usage.license_purchases (
    tenant_id  text NOT NULL REFERENCES usage.tenants (tenant_id),
    sku        text,
    quantity   int CHECK (quantity >= 0),
    valid_from timestamptz NOT NULL,
    valid_to   timestamptz
);
CREATE INDEX IF NOT EXISTS license_purchases_tenant
    ON usage.license_purchases (tenant_id);

CREATE TABLE IF NOT EXISTS usage.license_assignments (
    tenant_id  text NOT NULL REFERENCES usage.tenants (tenant_id),
    user_id    text,
    sku        text,
    valid_from timestamptz NOT NULL,
    valid_to   timestamptz
);
CREATE INDEX IF NOT EXISTS license_assignments_tenant
    ON usage.license_assignments (tenant_id);

CREATE TABLE IF NOT EXISTS usage.dialout_calls (
    usage_id           uuid PRIMARY KEY,
    call_id            text,
    conference_id      text,
    tenant_id          text NOT NULL REFERENCES usage.tenants (tenant_id),
    organizer_id       text,
    initiator_id       text,
    destination_number text,
    start_time         timestamptz NOT NULL,
    duration_seconds   int,
    provider_charge    numeric(16,4),
    provider_currency  char(3)
);
-- The calls query reads one tenant's period in (start_time, usage_id) order.
CREATE INDEX IF NOT EXISTS dialout_calls_tenant_start
    ON usage.dialout_calls (tenant_id, start_time, usage_id);

CREATE TABLE IF NOT EXISTS ref.destinations (
    prefix  text PRIMARY KEY CHECK (prefix ~ '^[0-9]{1,15}$'),
    country char(2),
    kind    text NOT NULL CHECK (kind IN ('geographic', 'toll_free',
                                 'premium', 'personal', 'non_geographic'))
);

CREATE TABLE IF NOT EXISTS ref.zones (
    country char(2) PRIMARY KEY,
    zone    text NOT NULL
);

CREATE TABLE IF NOT EXISTS ref.rates (
    currency       char(3) NOT NULL,
    prefix         text NOT NULL CHECK (prefix ~ '^[0-9]{1,15}$'),
    per_minute     numeric(12,4) NOT NULL CHECK (per_minute >= 0),
    connection_fee numeric(12,4) NOT NULL DEFAULT 0
                   CHECK (connection_fee >= 0),
    valid_from     timestamptz NOT NULL,
    valid_to       timestamptz,
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX IF NOT EXISTS rates_currency_prefix
    ON ref.rates (currency, prefix, valid_from);

-- ---------------------------------------------------------------- ledger

CREATE TABLE billing.runs (
    run_id          bigserial PRIMARY KEY,
    period          date NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    status          text NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'ok', 'failed')),
    tenants         int NOT NULL DEFAULT 0,
    tenants_failed  int NOT NULL DEFAULT 0,
    invoices_issued int NOT NULL DEFAULT 0,
    calls           bigint NOT NULL DEFAULT 0,
    policy          jsonb NOT NULL,
    job_version     text NOT NULL,
    host            text,
    message         text
);

CREATE TABLE billing.invoices (
    invoice_no        text PRIMARY KEY,
    tenant_id         text NOT NULL,
    tenant_name       text NOT NULL,
    period            date NOT NULL CHECK (extract(day FROM period) = 1),
    revision          int NOT NULL CHECK (revision >= 1),
    supersedes        text REFERENCES billing.invoices (invoice_no),
    currency          char(3) NOT NULL,
    time_zone         text NOT NULL,
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL,
    seats             int NOT NULL,
    seats_basis       text NOT NULL CHECK (seats_basis IN ('purchased',
                                                            'assigned')),
    pool_minutes      int NOT NULL,
    pool_used_minutes int NOT NULL,
    exempt_minutes    int NOT NULL,
    billed_minutes    int NOT NULL,
    calls             int NOT NULL,
    rejected_calls    int NOT NULL,
    zero_calls        int NOT NULL,
    exempt_calls      int NOT NULL,
    pool_calls        int NOT NULL,
    split_calls       int NOT NULL,
    billed_calls      int NOT NULL,
    total             numeric(14,2) NOT NULL,
    fingerprint       text NOT NULL,
    run_id            bigint REFERENCES billing.runs (run_id),
    file_name         text,
    content_sha256    text,
    issued_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, period, revision),
    CHECK (pool_used_minutes BETWEEN 0 AND pool_minutes),
    CHECK (calls = rejected_calls + zero_calls + exempt_calls + pool_calls
                   + split_calls + billed_calls),
    CHECK ((revision = 1) = (supersedes IS NULL))
);

-- The invoice's children (lines, rated calls, findings, organizers) carry
-- no foreign key: they are written by COPY in the same transaction as
-- their invoice, a per-row RI check costs more than the write itself, and
-- the job checks the counts and sums before it commits.
CREATE TABLE billing.invoice_lines (
    invoice_no     text NOT NULL,
    line_no        int NOT NULL,
    country        char(2) NOT NULL,
    per_minute     numeric(12,4) NOT NULL,
    connection_fee numeric(12,4) NOT NULL,
    calls          int NOT NULL,
    minutes        int NOT NULL,
    exact_amount   numeric(16,4) NOT NULL,
    amount         numeric(14,2) NOT NULL,
    PRIMARY KEY (invoice_no, line_no)
);

CREATE TABLE billing.rated_calls (
    invoice_no         text NOT NULL,
    seq                int NOT NULL,
    usage_id           uuid NOT NULL,
    start_time         timestamptz NOT NULL,
    start_local        timestamp NOT NULL,
    organizer_id       text,
    destination_number text,
    duration_seconds   int,
    outcome            text NOT NULL CHECK (outcome IN ('rejected', 'zero',
                                 'exempt', 'pool', 'split', 'billed')),
    reason             text,
    country            char(2),
    kind               text,
    minutes            int NOT NULL,
    pool_minutes       int NOT NULL,
    billed_minutes     int NOT NULL,
    per_minute         numeric(12,4),
    connection_fee     numeric(12,4),
    amount             numeric(16,4) NOT NULL,
    dest_prefix        text,
    rate_prefix        text,
    provider_charge    numeric(16,4),
    provider_currency  char(3),
    PRIMARY KEY (invoice_no, usage_id),
    UNIQUE (invoice_no, seq),
    CHECK ((outcome = 'rejected') = (reason IS NOT NULL)),
    CHECK (pool_minutes + billed_minutes <= minutes)
);

CREATE TABLE billing.findings (
    invoice_no text NOT NULL,
    seq        int NOT NULL,
    code       text NOT NULL,
    subject    text NOT NULL,
    detail     text NOT NULL,
    usage_id   uuid,
    PRIMARY KEY (invoice_no, seq)
);

-- One row per meeting organizer with calls in the invoice (organizer_id
-- NULL for the calls without one): the Organizers sheet, and the
-- fair-use figures, straight from the rating.
CREATE TABLE billing.invoice_organizers (
    invoice_no      text NOT NULL,
    organizer_id    text,
    calls           int NOT NULL,
    rejected_calls  int NOT NULL,
    minutes         int NOT NULL,       -- of the calls not rejected
    exempt_minutes  int NOT NULL,
    pool_minutes    int NOT NULL,
    billed_minutes  int NOT NULL,
    amount          numeric(16,4) NOT NULL,
    addon_held      boolean NOT NULL,   -- DIALOUT_USCA held at a call
    fair_use_review boolean NOT NULL
);
CREATE INDEX invoice_organizers_invoice
    ON billing.invoice_organizers (invoice_no);

-- What each run did with each tenant, including the ones that failed.
CREATE TABLE billing.run_tenants (
    run_id      bigint NOT NULL REFERENCES billing.runs (run_id),
    tenant_id   text NOT NULL,
    status      text NOT NULL CHECK (status IN ('issued', 'unchanged',
                                                 'failed')),
    invoice_no  text,
    calls       int,
    message     text,
    finished_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, tenant_id)
);

CREATE FUNCTION billing.invoices_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'issued invoice % cannot be deleted', OLD.invoice_no;
    END IF;
    IF (to_jsonb(NEW) - 'file_name' - 'content_sha256')
       IS DISTINCT FROM (to_jsonb(OLD) - 'file_name' - 'content_sha256')
       OR (OLD.file_name IS NOT NULL
           AND NEW.file_name IS DISTINCT FROM OLD.file_name)
       OR (OLD.content_sha256 IS NOT NULL
           AND NEW.content_sha256 IS DISTINCT FROM OLD.content_sha256) THEN
        RAISE EXCEPTION 'issued invoice % cannot be changed', OLD.invoice_no;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON billing.invoices
    FOR EACH ROW EXECUTE FUNCTION billing.invoices_immutable();

CREATE FUNCTION billing.children_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of an issued invoice cannot be changed', TG_TABLE_NAME;
END $$;

CREATE TRIGGER invoice_lines_immutable BEFORE UPDATE OR DELETE
    ON billing.invoice_lines FOR EACH ROW
    EXECUTE FUNCTION billing.children_immutable();
CREATE TRIGGER rated_calls_immutable BEFORE UPDATE OR DELETE
    ON billing.rated_calls FOR EACH ROW
    EXECUTE FUNCTION billing.children_immutable();
CREATE TRIGGER findings_immutable BEFORE UPDATE OR DELETE
    ON billing.findings FOR EACH ROW
    EXECUTE FUNCTION billing.children_immutable();
CREATE TRIGGER invoice_organizers_immutable BEFORE UPDATE OR DELETE
    ON billing.invoice_organizers FOR EACH ROW
    EXECUTE FUNCTION billing.children_immutable();
