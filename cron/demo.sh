#!/bin/sh
# shellcheck disable=SC2012  # ls is only for showing file names
# demo.sh: `make demo`, an end-to-end run on a throwaway PostgreSQL.
#
#   ACBILL=/path/to/bin/acbill cron/demo.sh
#
# Starts a private PostgreSQL cluster (pg_virtualenv; without it, initdb in
# a temporary directory), loads reproducible sample data for last month,
# imports a generated Teams admin center PSTN usage export (a zip, made by
# tests/fixtures/ms_export.py with made-up people) and a licence snapshot
# for one tenant as an operator would (acbill import), rates it all, writes the workbooks to ./demo/out and delivers them with
# file:// to ./demo/delivered/<YYYY-MM>/, then prints where they are.  The
# database is thrown away at the end; ./demo stays for you to look at.
# It ends by reconciling Partner Center files made for the month.
#   DEMO_PERIOD=YYYY-MM  another period than last month
set -eu

cd "$(dirname "$0")/.."
top=$(pwd)
ACBILL=${ACBILL:-$top/bin/acbill}
case $ACBILL in /*) ;; *) ACBILL=$top/$ACBILL ;; esac
export ACBILL
if [ ! -x "$ACBILL" ]; then
    echo "demo: $ACBILL is not built (run make)" >&2
    exit 69
fi

inside() {
    period=$DEMO_PERIOD
    out=./demo/out
    delivered=$top/demo/delivered
    rm -rf ./demo
    mkdir -p "$out" "$delivered"

    echo "demo: creating the schema"
    "$ACBILL" migrate
    echo "demo: the seller on the invoices (ref.operator)"
    psql -X -q -c "
        INSERT INTO ref.operator (legal_name, address, country, tax_id,
                                  payment_details, email, phone,
                                  peppol_endpoint)
        VALUES ('Demo Telecom Resale Ltd',
                E'1 Exchange Square\\nLondon EC2A 2BQ', 'GB', 'GB123456789',
                'IBAN GB00 DEMO 0000 0000 00, BIC DEMOGB2L',
                'billing@demo-telecom.example', '+44 20 7946 0000',
                '0208:0123456749')"
    echo "demo: loading sample data for $period (20 tenants, 20000 calls)"
    "$ACBILL" sample --period "$period" --tenants 20 --calls 20000 --seed 1
    echo "demo: every buyer takes e-invoices (Peppol addresses, scheme 0208)"
    psql -X -q -c "
        UPDATE ref.customers c
           SET peppol_endpoint = '0208:' || lpad(x.n::text, 8, '0')
                                 || lpad((97 - x.n % 97)::text, 2, '0')
          FROM (SELECT tenant_id,
                       20000000 + row_number() OVER (ORDER BY tenant_id) AS n
                  FROM ref.customers) x
         WHERE x.tenant_id = c.tenant_id"
    echo "demo: importing a PSTN usage export and a licence snapshot for S00001"
    python3 "$top/tests/fixtures/ms_export.py" demo ./demo S00001 "$period"
    "$ACBILL" import licences --tenant S00001 --at "$period-01T00:00:00Z" \
        --skus ./demo/demo-skus.json --users ./demo/demo-users.json
    "$ACBILL" import pstn --tenant S00001 ./demo/Calls.Export.demo.zip
    psql -X -q -P pager=off -c "
        SELECT import_id, source, file_name, member, rows_read AS read,
               inserted, skipped, rejected
          FROM usage.imports ORDER BY import_id"
    # Bill as of 3 days after the month (past its 48-hour grace period),
    # whatever today's date: the demo always issues.
    asof=$(date -u -d "$period-01 +1 month +3 days" +%Y-%m-%dT00:00:00Z)
    echo "demo: billing $period (as of $asof)"
    status=0
    "$ACBILL" run --period "$period" --out "$out" --as-of "$asof" \
        --upload-url "file://$delivered" || status=$?

    echo "demo: held (no complete billing profile: statement, no invoice);"
    echo "      no invoice for a total of 0"
    psql -X -q -P pager=off -c "
        SELECT tenant_id, status, coalesce(message, '') AS why
          FROM billing.run_tenants
         WHERE run_id = (SELECT max(run_id) FROM billing.runs)
           AND (status = 'held' OR invoice_no IN (SELECT invoice_no
                FROM billing.invoices WHERE total = 0))
         ORDER BY tenant_id" || true

    echo "demo: S00007's billing profile is completed: its invoice is"
    echo "      issued without a new revision"
    psql -X -q -c "
        INSERT INTO ref.customers (tenant_id, legal_name, address, country,
                                   tax_note)
        SELECT tenant_id, name, E'7 Demo Road\\nSpringfield', 'US',
               'Outside the scope of VAT: business customer outside the EU'
          FROM usage.tenants WHERE tenant_id = 'S00007'
        ON CONFLICT (tenant_id) DO NOTHING"
    voided=$(psql -X -q -At -c "
        SELECT min(tenant_id) FROM billing.documents
         WHERE kind = 'invoice' AND tenant_id NOT IN ('S00001', 'S00002')")
    echo "demo: $voided's calls turn out to be invalid: its new total is 0,"
    echo "      a credit note voids its invoice without a replacement"
    psql -X -q -c "
        UPDATE usage.dialout_calls SET duration_seconds = -1
         WHERE tenant_id = '$voided'"
    echo "demo: a late call for S00002 arrives: revision 2, a credit note"
    echo "      voiding its first invoice, and a new invoice"
    psql -X -q -c "
        INSERT INTO usage.dialout_calls (usage_id, call_id, conference_id,
            tenant_id, organizer_id, destination_number, start_time,
            duration_seconds)
        SELECT gen_random_uuid(), 'late-call', 'late-conf', tenant_id,
               organizer_id, '+19005550123', start_time + interval '1 hour',
               1800
          FROM usage.dialout_calls
         WHERE tenant_id = 'S00002' AND organizer_id IS NOT NULL
           AND start_time >= '$period-01'::date
           AND start_time < '$period-01'::date + interval '25 days'
         ORDER BY start_time, usage_id LIMIT 1"
    "$ACBILL" run --period "$period" --out "$out" --as-of "$asof" \
        --upload-url "file://$delivered" || status=$?

    next=$(date -u -d "$period-01 +1 month" +%Y-%m)
    echo "demo: calls of $next so far for S00001: $next is still open, so"
    echo "      it is drafted (DRAFT on every sheet, no number taken)"
    psql -X -q -c "
        INSERT INTO usage.dialout_calls (usage_id, call_id, conference_id,
            tenant_id, organizer_id, destination_number, start_time,
            duration_seconds, provider_charge, provider_currency)
        SELECT gen_random_uuid(), call_id || '-next', conference_id,
               tenant_id, organizer_id, destination_number,
               start_time + interval '1 month', duration_seconds,
               provider_charge, provider_currency
          FROM usage.dialout_calls
         WHERE tenant_id = 'S00001' AND start_time >= '$period-01'::date
           AND start_time < '$period-01'::date + interval '10 days'"
    "$ACBILL" run --period "$next" --tenant S00001 --out "$out" \
        --as-of "$(date -u -d "$next-01 +12 days" +%Y-%m-%dT00:00:00Z)" \
        || status=$?

    echo "demo: Microsoft's Partner Center files for $period (made-up"
    echo "      customers, tests/fixtures/partner_files.py), imported, then"
    echo "      acbill reconcile (docs/reconciliation.md)"
    loss=$(psql -X -At -c "SELECT tenant_id FROM billing.documents
        WHERE period = '$period-01' AND currency = 'USD' GROUP BY tenant_id
        HAVING sum(subtotal) > 0 ORDER BY sum(subtotal), tenant_id LIMIT 1")
    loss=${loss:-S00001}
    extra=$(psql -X -At -c "SELECT coalesce(sum(subtotal), 0) + 10
        FROM billing.documents WHERE period = '$period-01'
        AND tenant_id = '$loss'")
    psql -X -q -c "
        INSERT INTO usage.tenants (tenant_id, name, currency)
        VALUES ('DEMO-FAB', 'Fabrikam GmbH', 'EUR');
        INSERT INTO ref.customers (tenant_id, entra_tenant_id) VALUES
            ('$loss', 'c0e1a5e0-0000-4000-8000-000000000001'),
            ('DEMO-FAB', 'c0e1a5e0-0000-4000-8000-000000000002')
        ON CONFLICT (tenant_id) DO UPDATE
            SET entra_tenant_id = EXCLUDED.entra_tenant_id"
    python3 "$top/tests/fixtures/partner_files.py" ./demo "$period" \
        "Contoso ($loss)=C0E1A5E0-0000-4000-8000-000000000001,Fabrikam GmbH=C0E1A5E0-0000-4000-8000-000000000002,Tailspin Toys=C0E1A5E0-0000-4000-8000-0000000000ff" \
        "$extra"
    "$ACBILL" import partner-invoice ./demo/invoice-pascal.csv \
        ./demo/invoice.json.gz
    "$ACBILL" import partner-usage ./demo/usage-camel.csv
    "$ACBILL" reconcile --period "$period" --out "$out" || status=$?
    echo "demo: the reconciliation's findings"
    /usr/bin/python3 "$top/tests/xlsx_read.py" rows \
        "$out/$period/reconciliation-$period.xlsx" Findings |
        cut -f 1,2,4 | sed 's/\t/  /g; s/^/    /' || true

    echo
    echo "demo: statements issued for $period"
    psql -X -q -P pager=off -c "
        SELECT invoice_no, tenant_id, currency, calls, billed_minutes,
               subtotal, tax, total
          FROM billing.invoices
         WHERE period = to_date('$period', 'YYYY-MM')
         ORDER BY invoice_no" || true
    echo "demo: tenants with the US/CA pool of the \$0 USA/CAN licence"
    echo "      (S00008 holds only it; S00009 both, and two pools)"
    psql -X -q -P pager=off -c "
        SELECT invoice_no, seats, pool_minutes, pool_used_minutes,
               usca_seats, usca_pool_minutes, usca_pool_used_minutes
          FROM billing.invoices
         WHERE period = to_date('$period', 'YYYY-MM') AND usca_seats > 0
         ORDER BY invoice_no" || true
    echo "demo: tenants on a price plan (partner: +15 % for S00004, -10 %"
    echo "      for S00006); calls without a plan rate are priced by standard"
    psql -X -q -P pager=off -c "
        SELECT i.invoice_no, i.price_plan, i.rate_adjustment,
               r.rate_plan AS priced_by, count(*) AS calls,
               sum(r.billed_minutes) AS minutes, sum(r.amount) AS amount
          FROM billing.invoices i JOIN billing.rated_calls r USING (invoice_no)
         WHERE i.period = to_date('$period', 'YYYY-MM')
           AND i.price_plan <> 'standard' AND r.rate_plan IS NOT NULL
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 4" || true
    echo "demo: the documents finance books"
    psql -X -q -P pager=off -c "
        SELECT document_no, kind, tenant_id, issue_date, due_date, currency,
               total, voids, replaced_by, invoice_no AS statement
          FROM billing.documents ORDER BY kind DESC, document_no" || true
    psql -X -q -P pager=off -c "
        SELECT document_no, reason FROM billing.documents
         WHERE kind = 'credit_note' ORDER BY document_no" || true
    psql -X -q -P pager=off -c "
        SELECT status, count(*) AS files, sum(bytes) AS bytes
          FROM billing.uploads GROUP BY status ORDER BY status" || true
    echo "demo: workbooks written to   $top/demo/out/"
    (cd "$out" && find . -type f | sed 's|^\./|    |' | sort)
    echo "demo: and delivered to       $delivered/$period/"
    ls "$delivered/$period" 2>/dev/null | sed 's/^/    /'
    if [ -f "$delivered/$period/SHA256SUMS" ]; then
        echo "demo: checking the delivered files against SHA256SUMS"
        (cd "$delivered/$period" && sha256sum --quiet -c SHA256SUMS) &&
            echo "    all files match"
    fi
    echo "demo: acbill run exited $status"
    return "$status"
}

# A private cluster with initdb, for machines without pg_virtualenv.
with_initdb() {
    initdb=$(command -v initdb ||
             ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -n 1)
    [ -n "$initdb" ] || { echo "demo: no PostgreSQL server found" >&2; exit 69; }
    bindir=$(dirname "$initdb")
    tmp=$(mktemp -d)
    as=""
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$tmp"
        as="runuser -u postgres --"
    fi
    trap '$as "$bindir/pg_ctl" -D "$tmp/data" -m fast stop >/dev/null 2>&1; rm -rf "$tmp"' EXIT
    $as "$bindir/initdb" -D "$tmp/data" -A trust -U postgres >/dev/null
    $as "$bindir/pg_ctl" -D "$tmp/data" -w -l "$tmp/log" \
        -o "-k $tmp -c listen_addresses= -p 54329" start >/dev/null
    export PGHOST="$tmp" PGPORT=54329 PGUSER=postgres PGDATABASE=postgres
    inside
}

if [ "${ACBILL_DEMO_INSIDE:-}" = 1 ]; then
    inside
    exit $?
fi
DEMO_PERIOD=${DEMO_PERIOD:-$(date -u -d "$(date -u +%Y-%m-01) -1 month" +%Y-%m)}
export DEMO_PERIOD
if command -v pg_virtualenv >/dev/null 2>&1; then
    # -t: the cluster lives in a temporary directory even as root, so the
    # demo never collides with another cluster (make test) on this machine.
    ACBILL_DEMO_INSIDE=1 exec pg_virtualenv -t -- "$0" "$@"
fi
with_initdb
