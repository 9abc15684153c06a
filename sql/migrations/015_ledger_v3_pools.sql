-- acbill schema, version 15: the ledger of SPEC version 3's rating
-- (sections 3 and 4.1).
--
-- * A statement records both pools: seats, pool_minutes and
--   pool_used_minutes stay the Zone A pool's; usca_seats,
--   usca_pool_minutes and usca_pool_used_minutes are the US/CA pool's
--   (the $0 "Audio Conferencing with dial-out to USA/CAN" licence, 60
--   minutes per assigned seat, US and Canadian numbers only).
-- * It records the price it was rated at: the customer's price_plan as
--   resolved ('standard' when none) and its rate_adjustment.
-- * A rated call records usca_pool_minutes, the part of its pool_minutes
--   drawn from the US/CA pool, and rate_plan, the plan whose rate row
--   priced it (the tenant's plan, or 'standard' where the plan has no
--   matching row; null when the call has no rate).
-- Statements issued before this version had one pool and the standard
-- card: their new columns read 0, 'standard', 0 and null, which is what
-- they were.  ADD COLUMN with a default rewrites nothing and fires no
-- trigger, so the immutable rows stay as they were.

ALTER TABLE billing.invoices
    ADD COLUMN usca_seats int NOT NULL DEFAULT 0,
    ADD COLUMN usca_pool_minutes int NOT NULL DEFAULT 0,
    ADD COLUMN usca_pool_used_minutes int NOT NULL DEFAULT 0,
    ADD COLUMN price_plan text NOT NULL DEFAULT 'standard',
    ADD COLUMN rate_adjustment numeric(7,4) NOT NULL DEFAULT 0,
    ADD CONSTRAINT invoices_usca_pool_check
        CHECK (usca_seats >= 0
               AND usca_pool_minutes = 60 * usca_seats
               AND usca_pool_used_minutes BETWEEN 0 AND usca_pool_minutes);

ALTER TABLE billing.rated_calls
    ADD COLUMN usca_pool_minutes int NOT NULL DEFAULT 0,
    ADD COLUMN rate_plan text,
    ADD CONSTRAINT rated_calls_usca_pool_check
        CHECK (usca_pool_minutes BETWEEN 0 AND pool_minutes);
