-- acbill schema, version 5: the inputs of SPEC version 2 (section 2).
--
-- * ref.destinations gains the kinds `mobile` and `shared_cost`
--   (libphonenumber's number types, SPEC section 2);
-- * ref.sku_entitlements says what each licence SKU grants, so bundles
--   such as Microsoft 365 E5 count (SPEC sections 1 and 2);
-- * ref.currencies gives each ISO 4217 currency its minor unit;
-- * ref.customers (the buyer) and ref.operator (the seller, one row);
-- * usage.dialout_calls gains the export's optional columns, and
--   usage.users is the directory the imports fill.
-- The seed rows of the new reference tables come in the next migration,
-- generated from sql/seed/ by `make seed`.

ALTER TABLE ref.destinations DROP CONSTRAINT IF EXISTS destinations_kind_check;
ALTER TABLE ref.destinations ADD CONSTRAINT destinations_kind_check
    CHECK (kind IN ('geographic', 'mobile', 'toll_free', 'premium',
                    'shared_cost', 'personal', 'non_geographic'));

CREATE TABLE IF NOT EXISTS ref.sku_entitlements (
    sku        text PRIMARY KEY,
    grants     text NOT NULL CHECK (grants IN ('audio_conferencing',
                                     'audio_conferencing_ppm',
                                     'dialout_usca')),
    pool_basis text CHECK (pool_basis IN ('purchased', 'assigned')),
    product    text,
    CHECK ((grants = 'audio_conferencing') = (pool_basis IS NOT NULL))
);

CREATE TABLE IF NOT EXISTS ref.currencies (
    code       char(3) PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
    minor_unit int NOT NULL CHECK (minor_unit BETWEEN 0 AND 4),
    name       text
);

CREATE TABLE IF NOT EXISTS ref.customers (
    tenant_id          text PRIMARY KEY,
    legal_name         text,
    address            text,
    country            char(2),
    tax_id             text,
    tax_rate           numeric(6,4) NOT NULL DEFAULT 0
                       CHECK (tax_rate >= 0 AND tax_rate < 1),
    tax_note           text,
    payment_terms_days int NOT NULL DEFAULT 30
                       CHECK (payment_terms_days BETWEEN 0 AND 3650),
    purchase_order     text,
    entra_tenant_id    uuid,
    email              text
);

CREATE TABLE IF NOT EXISTS ref.operator (
    one                boolean PRIMARY KEY DEFAULT true CHECK (one),
    legal_name         text NOT NULL,
    address            text,
    country            char(2),
    tax_id             text,
    payment_details    text,
    invoice_prefix     text NOT NULL DEFAULT 'INV-',
    credit_note_prefix text NOT NULL DEFAULT 'CN-',
    grace_hours        int NOT NULL DEFAULT 48 CHECK (grace_hours >= 0),
    lookback_months    int NOT NULL DEFAULT 3 CHECK (lookback_months >= 0)
);

ALTER TABLE usage.dialout_calls
    ADD COLUMN IF NOT EXISTS provider_capability text,
    ADD COLUMN IF NOT EXISTS destination_country char(2),
    ADD COLUMN IF NOT EXISTS end_time timestamptz;

CREATE TABLE IF NOT EXISTS usage.users (
    tenant_id    text NOT NULL,
    user_id      text NOT NULL,
    upn          text,
    display_name text,
    PRIMARY KEY (tenant_id, user_id)
);
