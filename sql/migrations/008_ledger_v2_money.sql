-- acbill schema, version 8: the ledger of SPEC version 2's rating rules.
--
-- * Money is exact to the currency's ISO 4217 minor unit (JPY 0 decimals,
--   BHD 3): the rounded columns become numeric without a fixed scale, and
--   each invoice records the minor unit it was rounded to.
-- * An invoice has a subtotal (the sum of its lines), the tax (subtotal *
--   the customer's tax rate, rounded once) and the total (SPEC 3, "Tax").
-- * Invoice lines group by (country, kind, per_minute, connection_fee).
-- * A DUPLICATE call names the earlier call it repeats; each rated call
--   keeps the provider's destination country (DESTINATION_COUNTRY_MISMATCH).
-- * billing.id_key() is the identifier normalisation of SPEC section 3
--   (rating_id_normalise() in job/rating.c does the same in C): white
--   space trimmed, ASCII letters folded to lower case.
-- Invoices issued before this version keep their money: subtotal = total,
-- tax 0, 2 decimals.

CREATE FUNCTION billing.id_key(id text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT lower(btrim(id, E' \t\n\r\013\f') COLLATE "C") $$;

ALTER TABLE billing.invoices DISABLE TRIGGER invoices_immutable;
ALTER TABLE billing.invoices
    ALTER COLUMN total TYPE numeric,
    ADD COLUMN subtotal   numeric,
    ADD COLUMN tax        numeric,
    ADD COLUMN tax_rate   numeric(6,4),
    ADD COLUMN minor_unit int CHECK (minor_unit BETWEEN 0 AND 4);
UPDATE billing.invoices
   SET subtotal = total, tax = 0, tax_rate = 0, minor_unit = 2;
ALTER TABLE billing.invoices
    ALTER COLUMN subtotal SET NOT NULL,
    ALTER COLUMN tax SET NOT NULL,
    ALTER COLUMN tax_rate SET NOT NULL,
    ALTER COLUMN minor_unit SET NOT NULL,
    ADD CHECK (total = subtotal + tax);
ALTER TABLE billing.invoices ENABLE TRIGGER invoices_immutable;

ALTER TABLE billing.invoice_lines
    ALTER COLUMN amount TYPE numeric,
    ADD COLUMN kind text;

ALTER TABLE billing.rated_calls
    ADD COLUMN duplicate_of uuid,           -- DUPLICATE: the earlier call
    ADD COLUMN provider_country char(2);    -- the provider's country
