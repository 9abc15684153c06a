-- acbill schema, version 4: each invoice's reconciliation against the
-- provider, recorded when the invoice is issued.
--
-- The provider's charge per call is in billing.rated_calls; these are its
-- totals per invoice, as the invoice workbook's Reconciliation sheet shows
-- them, so that the finance summary need not add up every call of the
-- period again.  Only calls charged in the invoice's currency are compared.
-- Like the other children of an invoice, the row never changes.

CREATE TABLE billing.invoice_reconciliation (
    invoice_no      text PRIMARY KEY,
    charged_calls   int NOT NULL CHECK (charged_calls >= 0),
                    -- calls with a provider charge, in any currency
    compared_calls  int NOT NULL CHECK (compared_calls BETWEEN 0
                                        AND charged_calls),
                    -- of those, charged in the invoice's currency
    provider_total  numeric(16,4) NOT NULL,     -- their provider charges
    acbill_total    numeric(16,4) NOT NULL,     -- acbill's amounts for them
    differing_calls int NOT NULL CHECK (differing_calls BETWEEN 0
                                        AND compared_calls)
                    -- compared calls differing by 0.01 or more
);

CREATE TRIGGER invoice_reconciliation_immutable BEFORE UPDATE OR DELETE
    ON billing.invoice_reconciliation FOR EACH ROW
    EXECUTE FUNCTION billing.children_immutable();

-- Invoices issued before this version: the same totals from their calls.
INSERT INTO billing.invoice_reconciliation
SELECT i.invoice_no,
       count(r.provider_charge),
       count(*) FILTER (WHERE r.provider_charge IS NOT NULL
                          AND r.provider_currency = i.currency),
       coalesce(sum(r.provider_charge)
                FILTER (WHERE r.provider_currency = i.currency), 0),
       coalesce(sum(r.amount) FILTER (WHERE r.provider_charge IS NOT NULL
                                        AND r.provider_currency = i.currency),
                0),
       count(*) FILTER (WHERE r.provider_currency = i.currency
                          AND abs(r.provider_charge - r.amount) >= 0.01)
FROM billing.invoices i
LEFT JOIN billing.rated_calls r ON r.invoice_no = i.invoice_no
GROUP BY i.invoice_no;
