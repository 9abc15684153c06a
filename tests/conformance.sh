#!/bin/sh
# conformance.sh VALIDATOR [DIR...]: write the e-invoices of every kind
# acbill produces and check them against the EN 16931 and Peppol BIS
# Billing 3.0 rules with VALIDATOR (a command taking FILE.xml... that exits
# non-zero on a fatal rule).  `make conformance` runs it; see
# docs/customer-documents.md.
#
# In a throwaway PostgreSQL (pgtmp.sh) it loads the tests' fixtures
# (spec_example.sql, northwind.sql, customer_documents.sql: categories S,
# AE, K, G, E, O and Z; USD, EUR, GBP and JPY), bills October 2026, then
# adds a late call to four tenants so that the next run issues credit
# notes and replacing invoices (USD, JPY, GBP, EUR), and validates every
# <document_no>.xml written, plus the *.xml under each DIR given (the
# demo's output, say).  It fails when a kind is missing from what was
# written, so that a fixture change cannot silently shrink the check.
#   ACBILL  path of the acbill binary (default bin/acbill)
#   CONFORMANCE_OUT  where the files go (default build/conformance)
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
[ $# -ge 1 ] || { echo "usage: $0 VALIDATOR [DIR...]" >&2; exit 64; }
validator=$1
shift
case $validator in /*) ;; *) validator=$top/$validator ;; esac
[ -x "$validator" ] || { echo "conformance: no validator at $validator" >&2; exit 69; }
ACBILL=${ACBILL:-$top/bin/acbill}
out=${CONFORMANCE_OUT:-$top/build/conformance}
export ACBILL out

if [ "${ACBILL_IN_PGENV:-}" != 1 ]; then
    rm -rf "$out"
    mkdir -p "$out"
    ACBILL_IN_PGENV=1 PGTMP_FAST=1 "$top/tests/pgtmp.sh" "$0" "$validator" "$@"
    exit $?
fi

"$ACBILL" migrate >/dev/null 2>&1
for f in spec_example northwind customer_documents; do
    psql -X -q -v ON_ERROR_STOP=1 -f "$top/tests/fixtures/$f.sql" >/dev/null
done
"$ACBILL" run --quiet --period 2026-10 --out "$out"
psql -X -q -v ON_ERROR_STOP=1 -c "
INSERT INTO usage.dialout_calls (usage_id, call_id, conference_id, tenant_id,
    organizer_id, destination_number, start_time, duration_seconds) VALUES
 ('00000000-0000-0000-0003-000000000098', 'late', 'late', 'T3',
  'kenji@northwind.example', '+81312349999', '2026-10-20T02:00:00Z', 600),
 ('00000000-0000-0000-0001-000000000098', 'late', 'late', 'T1',
  'bob', '+18765551234', '2026-10-21T02:00:00Z', 600),
 ('00000000-0000-0000-0005-000000000098', 'late', 'late', 'T5',
  'org@t5.example', '+493012345698', '2026-10-22T02:00:00Z', 600),
 ('00000000-0000-0000-0006-000000000098', 'late', 'late', 'T6',
  'org@t6.example', '+33142685398', '2026-10-23T02:00:00Z', 600)"
"$ACBILL" run --quiet --period 2026-10 --out "$out"

files=$(ls "$out"/2026-10/*.xml)
for d in "$@"; do
    files="$files $(find "$d" -name '*.xml' -type f | sort)"
done
# Every kind is there: invoices and credit notes, each category, each
# currency, a Rounding charge.
missing=""
for want in '<Invoice ' '<CreditNote ' \
    '<cbc:ID>S</cbc:ID>' '<cbc:ID>AE</cbc:ID>' '<cbc:ID>K</cbc:ID>' \
    '<cbc:ID>G</cbc:ID>' '<cbc:ID>E</cbc:ID>' '<cbc:ID>O</cbc:ID>' \
    '<cbc:ID>Z</cbc:ID>' 'currencyID="USD"' 'currencyID="EUR"' \
    'currencyID="GBP"' 'currencyID="JPY"' 'Rounding'; do
    # shellcheck disable=SC2086
    grep -qF -- "$want" $files || missing="$missing $want"
done
for cur in USD EUR GBP JPY; do
    # shellcheck disable=SC2086
    grep -lF "currencyID=\"$cur\"" $files | xargs grep -lqF '<CreditNote ' ||
        missing="$missing credit-note-$cur"
done
if [ -n "$missing" ]; then
    echo "conformance: no e-invoice shows:$missing" >&2
    exit 1
fi
n=$(echo "$files" | wc -w)
echo "conformance: validating $n e-invoices"
# shellcheck disable=SC2086
"$validator" $files
