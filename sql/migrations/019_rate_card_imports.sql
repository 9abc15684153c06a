-- acbill schema: rate cards loaded from files (`acbill import rates`,
-- docs/rate-cards.md) are recorded like the other imports (SPEC section 6).
--
-- * usage.imports gains the source 'rates'.  A rate card belongs to no
--   tenant, so tenant_id is null for it (and only for it); the card's
--   plan, currency and first instant (--valid-from) are kept with it.
--   `closed` counts the rows of the previous card closed at the card's
--   first instant.
-- * rejects_not_kept: of a file with more than 10,000 rejected rows only
--   the first 10,000 go to usage.import_rejects (SPEC 6); the others are
--   counted here by reason ({"reason": count, ...}).

ALTER TABLE usage.imports DROP CONSTRAINT IF EXISTS imports_source_check;
ALTER TABLE usage.imports ADD CONSTRAINT imports_source_check
    CHECK (source IN ('pstn', 'graph-calls', 'graph-pull', 'licences-skus',
                      'licences-users', 'rates'));

ALTER TABLE usage.imports ALTER COLUMN tenant_id DROP NOT NULL;
ALTER TABLE usage.imports ADD CONSTRAINT imports_tenant_check
    CHECK (tenant_id IS NOT NULL OR source = 'rates');

ALTER TABLE usage.imports
    ADD COLUMN IF NOT EXISTS rate_plan text
        CHECK (rate_plan ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    ADD COLUMN IF NOT EXISTS rate_currency char(3),
    ADD COLUMN IF NOT EXISTS rate_valid_from timestamptz,
    ADD COLUMN IF NOT EXISTS rejects_not_kept jsonb;
ALTER TABLE usage.imports ADD CONSTRAINT imports_rates_check
    CHECK ((source = 'rates') = (rate_plan IS NOT NULL
                                 AND rate_currency IS NOT NULL));
