-- acbill schema: Microsoft Partner Center charges (SPEC version 3, section 7).
--
-- * usage.partner_charges: the lines of the new-commerce invoice
--   reconciliation file (licences and other charges the operator pays
--   Microsoft for its customers).
-- * usage.partner_usage: the rows of the daily rated usage file (Azure
--   plan consumption; telephony overage has resource group M365).
--
-- A Partner Center line has no id of its own: it is identified by its
-- content.  line_key is the SHA-256 (64 hex digits) of every mapped field
-- after normalising (headers in either spelling mapped to one name, the
-- 2023 percentages rescaled to rates, numbers and dates in one form, GUIDs
-- in lower case), so that the same line read from another file, the other
-- spelling, CSV or JSON lines is stored once.  fields holds those
-- normalised fields (all of them, as text); the typed columns repeat what
-- the reconciliation reads.  Money and quantities are exact numerics.
--
-- usage.imports: these imports belong to no tenant (a Partner Center file
-- covers all of the operator's customers), so tenant_id may be null; two
-- new sources; rejects_not_kept counts, by reason, the rejected rows
-- beyond the first 10,000 of a file that usage.import_rejects keeps
-- (SPEC 6).

ALTER TABLE usage.imports ALTER COLUMN tenant_id DROP NOT NULL;
ALTER TABLE usage.imports DROP CONSTRAINT IF EXISTS imports_source_check;
ALTER TABLE usage.imports ADD CONSTRAINT imports_source_check
    CHECK (source IN ('pstn', 'graph-calls', 'graph-pull', 'licences-skus',
                      'licences-users', 'rates', 'partner-invoice',
                      'partner-usage'));
ALTER TABLE usage.imports DROP CONSTRAINT IF EXISTS imports_tenant_check;
ALTER TABLE usage.imports ADD CONSTRAINT imports_tenant_check
    CHECK (tenant_id IS NOT NULL
           OR source IN ('rates', 'partner-invoice', 'partner-usage'));
ALTER TABLE usage.imports ADD COLUMN IF NOT EXISTS rejects_not_kept jsonb;

CREATE TABLE usage.partner_charges (
    line_key          text PRIMARY KEY CHECK (line_key ~ '^[0-9a-f]{64}$'),
    import_id         bigint NOT NULL,     -- the import that stored it first
    customer_id       uuid NOT NULL,       -- CustomerId: the Entra tenant
    customer_name     text,
    invoice_number    text,
    product_id        text,
    sku_id            text,
    sku_name          text,
    charge_type       text,
    unit_price        numeric,
    quantity          numeric,
    billable_quantity numeric,
    subtotal          numeric NOT NULL,    -- before tax, in currency
    tax_total         numeric,
    total             numeric,             -- Total / totalForCustomer
    currency          char(3) NOT NULL,
    charge_start_date date NOT NULL,       -- UTC
    charge_end_date   date,
    subscription_id   text,
    fields            jsonb NOT NULL
);
CREATE INDEX partner_charges_period
    ON usage.partner_charges (charge_start_date, customer_id);

CREATE TABLE usage.partner_usage (
    line_key              text PRIMARY KEY CHECK (line_key ~ '^[0-9a-f]{64}$'),
    import_id             bigint NOT NULL,
    customer_id           uuid NOT NULL,
    customer_name         text,
    invoice_number        text,
    product_id            text,
    sku_id                text,
    subscription_id       text,
    usage_date            date NOT NULL,   -- UTC
    meter_category        text,
    meter_sub_category    text,
    meter_name            text,
    meter_id              text,
    resource_group        text,
    quantity              numeric,
    unit                  text,            -- Unit / unitOfMeasure
    unit_price            numeric,
    billing_pre_tax_total numeric NOT NULL,
    billing_currency      char(3) NOT NULL,
    fields                jsonb NOT NULL
);
CREATE INDEX partner_usage_period
    ON usage.partner_usage (usage_date, customer_id);
