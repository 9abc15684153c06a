#!/bin/sh
# The benchmark behind docs/performance.md (`make bench`).
#
# For each data shape (quick: 100,000 calls over 100 tenants; full:
# 1,000,000 calls over 1,000 tenants; BENCH_SIZES overrides, e.g.
# "5000000:1000"), in a throwaway PostgreSQL:
#   - the job: `acbill run --out` with 1 worker, then with 2 (fresh ledger);
#   - the floor on the same data: COPY of the calls query to a file, COPY
#     of the same rated-call rows into a table shaped like
#     billing.rated_calls, and a minimal libxlsxwriter program writing the
#     same rows as the Calls sheet's 15 columns into one workbook in
#     constant_memory mode (tests/bench_xlsx.c);
# and prints wall time, CPU time, calls per second, peak RSS, and the ratio
# of the job's wall time to the floor's total.
#
# The machine is a shared virtual machine whose speed drifts by a quarter
# within minutes, so every part is measured BENCH_REPEAT times (default
# 3), the job and the floor taking turns, and the table shows each
# part's median wall and CPU time (peak RSS: the largest) and the range
# of its wall times.  The ratio is the job's median over the sum of the
# floor parts' medians.  Autovacuum is off; after the job and after the
# floor's COPY the bench runs VACUUM ANALYZE on the tables written and
# shows its time on lines of its own (vacuum_after_*), outside the ratio:
# left on, autovacuum woke up during some measurements and not others
# and cost the part it met about 2 s of server CPU at 1,000,000 rows.
#
# The import part (`acbill import pstn`, docs/billing-rules.md 6): for each size of
# BENCH_IMPORT_ROWS (default "100000 1000000"), an export in the 2023
# layout (25 columns, every row conf_out, random UsageIds, 5,000
# organizers) written by tests/fixtures/ms_export.py, imported into an
# empty usage.dialout_calls (import_first) and again (import_again: every
# row unchanged), against two floors: a plain COPY of the same file into
# a staging table of 25 text columns (floor_copy_text, the issue's
# yardstick) and a COPY of the same rows, typed, into a table shaped like
# usage.dialout_calls with its primary key, index and foreign key
# (floor_copy_calls: what storing the calls costs by itself).  Peak RSS
# is the client's, at both sizes, to show it stays flat.
#
# The reconciliation part (docs/billing-rules.md 7, docs/reconciliation.md): for each size
# of BENCH_RECON_ROWS (default "100000 1000000"), a Partner Center daily
# rated usage CSV (55 PascalCase columns, 1,000 customers) written by
# tests/fixtures/partner_files.py, imported by `acbill import
# partner-usage` into an empty usage.partner_usage (recon_import_first)
# and again (recon_import_again: every line unchanged), against a COPY of
# the same rows, typed, into a table shaped like usage.partner_usage with
# its primary key and index (recon_floor_copy; the issue's yardstick is
# recon_import_first <= 1.5 x it); client peak RSS at both sizes.  Then
# `acbill reconcile` over 1,000 tenants (sample data billed by acbill run,
# their Entra tenant ids set, the largest usage file and two seat lines a
# tenant imported): recon_workbook.
#   ACBILL        the acbill binary (an optimised build)
#   BENCH_BASE    optional: another acbill binary (say, main's, built in
#                 another directory) measured side by side on the same
#                 data and ledger, taking turns with ACBILL: parts
#                 rate_ledger_1 and base_rate_ledger_1 are `acbill run`
#                 with 1 worker and no --out (rating and ledger, no
#                 workbooks), and a line gives ACBILL's change against it
#   BENCH_REPEAT  measurements of each part (default 3)
#   BENCH_PARTS   "job rates import reconcile" (default), or any of them
#   BENCH_IMPORT_ROWS  export sizes for the import part
#   BENCH_RECON_ROWS   usage file sizes for the reconciliation part
#
# The rates part (`acbill import rates`, docs/rate-cards.md): a card of
# 10,000 prefixes (7 digits, prices with 4 decimals and a fee) loaded into
# an empty ref.rates (rates_first), a second card of the same prefixes
# from a later instant that closes the first (rates_next), and the second
# again (rates_again: unchanged).
set -eu
: "${ACBILL:?set ACBILL to the acbill binary}"
SRC=$(cd "$(dirname "$0")/.." && pwd)
export ACBILL SRC LC_ALL=C
SIZES=${BENCH_SIZES:-"100000:100 1000000:1000"}
REPEAT=${BENCH_REPEAT:-3}
PARTS=${BENCH_PARTS:-"job rates import reconcile"}
IMPORT_ROWS=${BENCH_IMPORT_ROWS:-"100000 1000000"}
RECON_ROWS=${BENCH_RECON_ROWS:-"100000 1000000"}
export SIZES REPEAT PARTS IMPORT_ROWS RECON_ROWS

if [ "${ACBILL_IN_PGENV:-}" != 1 ]; then
    export ACBILL_IN_PGENV=1
    # autovacuum off: the bench vacuums after each part itself and shows
    # the time (see below), instead of letting the launcher land at random
    # on whichever part is running when it wakes up.
    PGTMP_OPTS="-c shared_buffers=512MB -c max_wal_size=4GB -c autovacuum=off" \
        exec "$(dirname "$0")/pgtmp.sh" "$0" "$@"
fi

work=$(mktemp -d /var/tmp/acbill-bench.XXXXXX)
runs=0
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/bench_xlsx" "$SRC/tests/bench_xlsx.c" -lxlsxwriter

# measure NAME CMD...: run CMD, append "NAME wall cpu rss_kib" to results.
measure() {
    name=$1
    shift
    /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >"$work/out" 2>&1 || {
        echo "bench: $name failed:" >&2
        tail -20 "$work/out" >&2
        exit 1
    }
    read -r wall user sys rss <"$work/time"
    cpu=$(echo "$user $sys" | awk '{printf "%.2f", $1 + $2}')
    echo "$name $wall $cpu $rss" >>"$work/results"
}

# The server's CPU is not the client's: for the COPY floor parts, the
# server process does the work, so report the server's CPU too.
server_cpu() {
    psql -XAtqc "SELECT 1" >/dev/null
    ps -o cputime= -C postgres | awk -F: '{s += $1*3600 + $2*60 + $3} END {print s}'
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), PostgreSQL $(psql -XAtqc 'SHOW server_version')"
echo "each part measured $REPEAT times: medians, and the range of wall times"
printf '%-26s %9s %9s %9s %11s %9s   %s\n' part wall_s cpu_s calls/s peak_rss_MiB ratio wall_range

case " $PARTS " in *" job "*) ;; *) SIZES="" ;; esac
for size in $SIZES; do
    calls=${size%:*}
    tenants=${size#*:}
    db="bench_${calls}"
    psql -Xqc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    export PGDATABASE=$db
    "$ACBILL" migrate >/dev/null 2>&1
    "$ACBILL" sample --period 2026-10 --tenants "$tenants" --calls "$calls" \
        --seed 42 >/dev/null 2>&1
    psql -Xqc "VACUUM ANALYZE" >/dev/null
    n=$(psql -XAtqc "SELECT count(*) FROM usage.dialout_calls")
    : >"$work/results"

    # The floor's rated-call rows are the job's own: bill once first.
    job_run() {
        psql -Xqc "TRUNCATE billing.invoices, billing.invoice_lines,
            billing.invoice_organizers, billing.invoice_reconciliation,
            billing.rated_calls, billing.findings, billing.run_tenants,
            billing.runs, billing.uploads, billing.documents,
            billing.document_decisions, billing.document_numbers,
            billing.period_inputs CASCADE" >/dev/null
        psql -Xqc "CHECKPOINT" >/dev/null
        # A new output directory each time; all are removed at the end.
        # Removing the last one here would put its thousand deletions
        # just before the run: on a file system without a journal (this
        # machine's) ext4 then checks every recently deleted inode while
        # it allocates the new files, which a nightly run never meets.
        runs=$((runs + 1))
        measure "job_workers_$1" "$ACBILL" run --period 2026-10 --quiet \
            --workers "$1" --out "$work/out-$runs"
        # What autovacuum would do after the job's million inserts, at a
        # time of its choosing: measured on its own, not in the ratio.
        measure "vacuum_after_job_$1" psql -Xqc "VACUUM ANALYZE
            billing.invoices, billing.invoice_lines,
            billing.invoice_organizers, billing.invoice_reconciliation,
            billing.rated_calls, billing.findings, billing.run_tenants,
            billing.runs, billing.uploads"
    }
    # Rating and ledger alone (no --out) with binary $2 as part $1, on an
    # empty ledger, vacuumed after (outside the measurement).
    ledger_run() {
        psql -Xqc "TRUNCATE billing.invoices, billing.invoice_lines,
            billing.invoice_organizers, billing.invoice_reconciliation,
            billing.rated_calls, billing.findings, billing.run_tenants,
            billing.runs, billing.uploads, billing.documents,
            billing.document_decisions, billing.document_numbers,
            billing.period_inputs CASCADE" -c "CHECKPOINT" >/dev/null
        measure "$1" "$2" run --period 2026-10 --quiet --workers 1
        psql -Xqc "VACUUM ANALYZE billing.rated_calls" >/dev/null
    }
    job_run 1
    : >"$work/results"
    rated=$(psql -XAtqc "SELECT count(*) FROM billing.rated_calls")
    psql -Xqc "\\copy billing.rated_calls TO '$work/rated.copy'" >/dev/null

    r=0
    while [ "$r" -lt "$REPEAT" ]; do
        r=$((r + 1))
        # The job, 1 worker then 2, each on an empty ledger and output.
        job_run 1
        job_run 2
        # A night with nothing new over the month just billed, into the
        # same output (docs/billing-rules.md 4.2: a cheap check per tenant-period, not a
        # re-rating; the workbooks are there already).
        measure job_unchanged_2 "$ACBILL" run --period 2026-10 --quiet \
            --workers 2 --out "$work/out-$runs"
        if [ -n "${BENCH_BASE:-}" ]; then
            ledger_run base_rate_ledger_1 "$BENCH_BASE"
            ledger_run rate_ledger_1 "$ACBILL"
        fi
        # Floor 1: the calls query (what the job reads), COPY to a file.
        measure floor_copy_out psql -Xqc "\\copy (SELECT c.usage_id,
            c.start_time, c.start_time AT TIME ZONE t.time_zone,
            c.organizer_id, c.destination_number, c.duration_seconds,
            c.provider_charge, c.provider_currency FROM usage.tenants t
            JOIN usage.dialout_calls c USING (tenant_id)
            WHERE c.start_time >= (date '2026-10-01')::timestamp
            AT TIME ZONE t.time_zone AND c.start_time <
            (date '2026-11-01')::timestamp AT TIME ZONE t.time_zone
            ORDER BY c.tenant_id, c.start_time, c.usage_id)
            TO '$work/calls.copy'"
        # Floor 2: COPY the same number of rated-call rows into a table
        # shaped like billing.rated_calls (the job's own rows).
        psql -Xqc "DROP TABLE IF EXISTS bench_rated" \
            -c "CREATE TABLE bench_rated (LIKE billing.rated_calls
                INCLUDING ALL)" -c "CHECKPOINT" >/dev/null
        measure floor_copy_in psql -Xqc \
            "\\copy bench_rated FROM '$work/rated.copy'"
        measure vacuum_after_floor psql -Xqc "VACUUM ANALYZE bench_rated"
        # Floor 3: the Calls sheet rows, nothing else.
        (cd "$work" && measure floor_xlsx "$work/bench_xlsx" \
            "$work/rated.copy" "$work/floor.xlsx")
    done

    echo "--- $n calls, $tenants tenants ($rated rated calls)"
    sort -k1,1 -k2,2n "$work/results" | awk -v n="$n" '
        # Median of a[1..k], k values in the order of the wall times
        # (the input is sorted by part, then wall time).
        function median(a, k) {
            return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        {
            k = ++cnt[$1]; w[$1, k] = $2; c[$1, k] = $3
            if ($4 > rss[$1]) rss[$1] = $4
            if (!($1 in seen)) { seen[$1] = 1; order[++parts] = $1 }
        }
        END {
            for (i = 1; i <= parts; i++) {
                p = order[i]; k = cnt[p]
                for (j = 1; j <= k; j++) { ws[j] = w[p, j]; cs[j] = c[p, j] }
                # The CPU times in their own order (insertion sort).
                for (j = 2; j <= k; j++)
                    for (m = j; m > 1 && cs[m - 1] > cs[m]; m--) {
                        t = cs[m]; cs[m] = cs[m - 1]; cs[m - 1] = t
                    }
                mw[p] = median(ws, k); mc[p] = median(cs, k)
                lo[p] = ws[1]; hi[p] = ws[k]
            }
            floor = mw["floor_copy_out"] + mw["floor_copy_in"] + mw["floor_xlsx"]
            split("job_workers_1 job_workers_2 floor_copy_out floor_copy_in floor_xlsx", show)
            for (i = 1; i <= 5; i++) {
                p = show[i]
                r = (p ~ /^job/) ? sprintf("%.2f", mw[p] / floor) : ""
                printf "%-26s %9.2f %9.2f %9.0f %11.1f %9s   %.2f-%.2f\n", p,
                       mw[p], mc[p], n / (mw[p] > 0 ? mw[p] : 1),
                       rss[p] / 1024, r, lo[p], hi[p]
            }
            printf "%-26s %9.2f\n", "floor_total", floor
            split("base_rate_ledger_1 rate_ledger_1", led)
            for (i = 1; i <= 2; i++) {
                p = led[i]
                if (!(p in mw)) continue
                printf "%-26s %9.2f %9.2f %9.0f %11.1f %9s   %.2f-%.2f\n", p,
                       mw[p], mc[p], n / (mw[p] > 0 ? mw[p] : 1),
                       rss[p] / 1024, "", lo[p], hi[p]
            }
            if (("base_rate_ledger_1" in mw) && mw["base_rate_ledger_1"] > 0)
                printf "%-26s %+8.1f %% wall, %+.1f %% cpu\n",
                       "rate_ledger_vs_base",
                       100 * (mw["rate_ledger_1"] / mw["base_rate_ledger_1"] - 1),
                       100 * (mc["rate_ledger_1"] / mc["base_rate_ledger_1"] - 1)
            p = "job_unchanged_2"
            if (p in mw)
                printf "%-26s %9.2f %9.2f %9s %11.1f %9s   %.2f-%.2f  (%.1f %% of job_workers_2)\n",
                       p, mw[p], mc[p], "", rss[p] / 1024, "", lo[p], hi[p],
                       100 * mw[p] / mw["job_workers_2"]
            split("vacuum_after_job_1 vacuum_after_job_2 vacuum_after_floor", vac)
            for (i = 1; i <= 3; i++) {
                p = vac[i]
                if (!(p in mw)) continue
                printf "%-26s %9.2f %9s %9s %11s %9s   %.2f-%.2f\n", p,
                       mw[p], "", "", "", "", lo[p], hi[p]
            }
        }'
    psql -Xqc "DROP TABLE bench_rated" >/dev/null
    unset PGDATABASE
    psql -Xqc "DROP DATABASE $db" >/dev/null
done

# --------------------------------------------------------------- reconcile
# Medians of the parts in $work/results: "part wall cpu rss" lines.
recon_table() {
    sort -k1,1 -k2,2n "$work/results" | awk -v n="$1" '
        function median(a, k) {
            return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        {
            k = ++cnt[$1]; w[$1, k] = $2; c[$1, k] = $3
            if ($4 > rss[$1]) rss[$1] = $4
            if (!($1 in seen)) { seen[$1] = 1; order[++parts] = $1 }
        }
        END {
            printf "%-20s %8s %8s %9s %8s %8s   %s\n", "part", "wall_s",
                   "cpu_s", "rows/s", "rss_MiB", "x_copy", "wall_range"
            for (i = 1; i <= parts; i++) {
                p = order[i]; k = cnt[p]; t = 0
                for (j = 1; j <= k; j++) { ws[j] = w[p, j]; cs[j] = c[p, j] }
                for (j = 2; j <= k; j++)
                    for (m = j; m > 1 && cs[m - 1] > cs[m]; m--) {
                        t = cs[m]; cs[m] = cs[m - 1]; cs[m - 1] = t
                    }
                mw[p] = median(ws, k); mc[p] = median(cs, k)
                lo[p] = ws[1]; hi[p] = ws[k]
            }
            for (i = 1; i <= parts; i++) {
                p = order[i]
                x = ""
                if (("recon_floor_copy" in mw) && p != "recon_workbook")
                    x = sprintf("%.2f", mw[p] / mw["recon_floor_copy"])
                printf "%-20s %8.2f %8.2f %9.0f %8.1f %8s   %.2f-%.2f\n",
                       p, mw[p], mc[p], n / (mw[p] > 0 ? mw[p] : 1),
                       rss[p] / 1024, x, lo[p], hi[p]
            }
        }'
}

case " $PARTS " in *" reconcile "*) ;; *) RECON_ROWS="" ;; esac
export PGOPTIONS="-c client_min_messages=warning"
last_db=""
for rows in $RECON_ROWS; do
    db="bench_recon_${rows}"
    psql -Xqc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    export PGDATABASE=$db
    "$ACBILL" migrate >/dev/null 2>&1
    python3 "$SRC/tests/fixtures/partner_files.py" bench "$work" "$rows" 1000
    bytes=$(stat -c %s "$work/usage-bench.csv")
    : >"$work/results"
    r=0
    while [ "$r" -lt "$REPEAT" ]; do
        r=$((r + 1))
        psql -Xqc "TRUNCATE usage.partner_usage, usage.imports CASCADE" \
            -c "CHECKPOINT" >/dev/null
        measure recon_import_first "$ACBILL" import partner-usage --quiet \
            "$work/usage-bench.csv"
        psql -Xqc "CHECKPOINT" >/dev/null
        measure recon_import_again "$ACBILL" import partner-usage --quiet \
            "$work/usage-bench.csv"
        psql -Xqc "\\copy usage.partner_usage TO '$work/usage.copy'" >/dev/null
        psql -Xqc "DROP TABLE IF EXISTS floor_usage" \
            -c "CREATE TABLE floor_usage (LIKE usage.partner_usage
                INCLUDING ALL)" -c "CHECKPOINT" >/dev/null
        measure recon_floor_copy psql -Xqc \
            "\\copy floor_usage FROM '$work/usage.copy'"
        psql -Xqc "DROP TABLE floor_usage" -c "CHECKPOINT" >/dev/null
        rm -f "$work/usage.copy"
    done
    echo "--- reconcile: import of $rows daily rated usage rows, $((bytes / 1048576)) MiB CSV (55 columns)"
    recon_table "$rows"
    [ -n "$last_db" ] && psql -Xqc "DROP DATABASE $last_db" >/dev/null
    last_db=$db
    unset PGDATABASE
done
if [ -n "$last_db" ]; then
    export PGDATABASE=$last_db
    # 1,000 tenants billed by acbill, matched to the usage file's customers
    psql -Xqc "INSERT INTO ref.operator (legal_name, address, country,
        tax_id, payment_details) SELECT 'Bench Ltd', 'Street 1', 'GB',
        'GB1', 'IBAN' WHERE NOT EXISTS (SELECT 1 FROM ref.operator)" >/dev/null
    "$ACBILL" sample --period 2026-10 --tenants 1000 --calls 100000 \
        --seed 42 >/dev/null 2>&1
    "$ACBILL" run --period 2026-10 --quiet >/dev/null 2>&1 || true
    psql -Xqc "INSERT INTO ref.customers (tenant_id, entra_tenant_id)
        SELECT tenant_id, md5(tenant_id)::uuid FROM usage.tenants
        ON CONFLICT (tenant_id) DO UPDATE
        SET entra_tenant_id = EXCLUDED.entra_tenant_id" >/dev/null
    "$ACBILL" import partner-invoice --quiet "$work/invoice-bench.csv"
    : >"$work/results"
    r=0
    while [ "$r" -lt "$REPEAT" ]; do
        r=$((r + 1))
        measure recon_workbook "$ACBILL" reconcile --period 2026-10 \
            --quiet --out "$work/recon"
    done
    tenants=$(psql -XAtqc "SELECT count(DISTINCT tenant_id) FROM
        billing.documents WHERE period = '2026-10-01'")
    echo "--- reconcile: acbill reconcile, 1000 tenants ($tenants with invoices), $(psql -XAtqc 'SELECT count(*) FROM usage.partner_usage') usage rows"
    recon_table 1000
    unset PGDATABASE
    psql -Xqc "DROP DATABASE $last_db" >/dev/null
fi
rm -f "$work/usage-bench.csv" "$work/invoice-bench.csv"

# ------------------------------------------------------------------ rates
case " $PARTS " in *" rates "*)
    export PGOPTIONS="-c client_min_messages=warning"
    db=bench_rates
    psql -Xqc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    export PGDATABASE=$db
    "$ACBILL" migrate >/dev/null 2>&1
    for k in 1 2; do
        awk -v base="$((k - 1))" 'BEGIN {
            print "prefix,per_minute,connection_fee"
            for (i = 0; i < 10000; i++)
                printf "%d,%d.%04d,0.%02d\n", 2000000 + i, base, i % 9973, i % 3
        }' >"$work/card$k.csv"
    done
    : >"$work/results"
    r=0
    while [ "$r" -lt "$REPEAT" ]; do
        r=$((r + 1))
        psql -Xqc "TRUNCATE ref.rates, usage.imports CASCADE" \
            -c "CHECKPOINT" >/dev/null
        measure rates_first "$ACBILL" import rates --plan bench \
            --currency USD --valid-from 2026-01-01 "$work/card1.csv"
        measure rates_next "$ACBILL" import rates --plan bench \
            --currency USD --valid-from 2026-07-01 "$work/card2.csv"
        measure rates_again "$ACBILL" import rates --plan bench \
            --currency USD --valid-from 2026-07-01 "$work/card2.csv"
    done
    echo "--- rates: a card of 10,000 prefixes"
    sort -k1,1 -k2,2n "$work/results" | awk '
        { k = ++cnt[$1]; w[$1, k] = $2; c[$1, k] = $3
          if ($4 > rss[$1]) rss[$1] = $4 }
        END {
            printf "%-18s %8s %8s %9s %8s   %s\n", "part", "wall_s", "cpu_s",
                   "rows/s", "rss_MiB", "wall_range"
            split("rates_first rates_next rates_again", show)
            for (i = 1; i <= 3; i++) {
                p = show[i]; k = cnt[p]
                m = k % 2 ? w[p, (k + 1) / 2] : (w[p, k / 2] + w[p, k / 2 + 1]) / 2
                printf "%-18s %8.2f %8.2f %9.0f %8.1f   %.2f-%.2f\n", p, m,
                       c[p, (k + 1) / 2], 10000 / (m > 0 ? m : 1),
                       rss[p] / 1024, w[p, 1], w[p, k]
            }
        }'
    unset PGDATABASE
    psql -Xqc "DROP DATABASE $db" >/dev/null
    ;;
esac

# ------------------------------------------------------------------ import
case " $PARTS " in *" import "*) ;; *) exit 0 ;; esac
export PGOPTIONS="-c client_min_messages=warning"
for rows in $IMPORT_ROWS; do
    db="bench_import_${rows}"
    psql -Xqc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    export PGDATABASE=$db
    "$ACBILL" migrate >/dev/null 2>&1
    psql -Xqc "INSERT INTO usage.tenants (tenant_id, name, currency)
        VALUES ('B1', 'Bench', 'USD')" >/dev/null
    python3 "$SRC/tests/fixtures/ms_export.py" bench "$work/export.csv" "$rows"
    bytes=$(stat -c %s "$work/export.csv")
    cols=$(head -n 1 "$work/export.csv" | tr -d '\r' |
        awk -F, '{for (i = 1; i <= NF; i++) printf "%s\"%s\" text", (i > 1 ? ", " : ""), $i}')
    : >"$work/results"
    r=0
    while [ "$r" -lt "$REPEAT" ]; do
        r=$((r + 1))
        # Floor 1: the file into a staging table of text columns.
        psql -Xqc "DROP TABLE IF EXISTS floor_stage" \
            -c "CREATE TABLE floor_stage ($cols)" -c "CHECKPOINT" >/dev/null
        measure floor_copy_text psql -Xqc \
            "\\copy floor_stage FROM '$work/export.csv' (FORMAT csv, HEADER)"
        psql -Xqc "DROP TABLE floor_stage" >/dev/null
        # The import into an empty table, then again (all unchanged).
        psql -Xqc "TRUNCATE usage.dialout_calls, usage.users,
            usage.imports CASCADE" -c "CHECKPOINT" >/dev/null
        measure import_first "$ACBILL" import pstn --tenant B1 --quiet \
            "$work/export.csv"
        psql -Xqc "CHECKPOINT" >/dev/null
        measure import_again "$ACBILL" import pstn --tenant B1 --quiet \
            "$work/export.csv"
        # Floor 2: the imported rows, typed, into a table like
        # usage.dialout_calls (primary key, index, foreign key).
        psql -Xqc "\\copy usage.dialout_calls TO '$work/calls.copy'" >/dev/null
        psql -Xqc "DROP TABLE IF EXISTS floor_calls" \
            -c "CREATE TABLE floor_calls (LIKE usage.dialout_calls
                INCLUDING ALL, FOREIGN KEY (tenant_id)
                REFERENCES usage.tenants)" -c "CHECKPOINT" >/dev/null
        measure floor_copy_calls psql -Xqc \
            "\\copy floor_calls FROM '$work/calls.copy'"
        psql -Xqc "DROP TABLE floor_calls" -c "CHECKPOINT" >/dev/null
        rm -f "$work/calls.copy"
    done
    echo "--- import: $rows rows, $((bytes / 1048576)) MiB export (25 columns)"
    sort -k1,1 -k2,2n "$work/results" | awk -v n="$rows" '
        function median(a, k) {
            return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        {
            k = ++cnt[$1]; w[$1, k] = $2; c[$1, k] = $3
            if ($4 > rss[$1]) rss[$1] = $4
            if (!($1 in seen)) { seen[$1] = 1; order[++parts] = $1 }
        }
        END {
            for (i = 1; i <= parts; i++) {
                p = order[i]; k = cnt[p]
                for (j = 1; j <= k; j++) { ws[j] = w[p, j]; cs[j] = c[p, j] }
                for (j = 2; j <= k; j++)
                    for (m = j; m > 1 && cs[m - 1] > cs[m]; m--) {
                        t = cs[m]; cs[m] = cs[m - 1]; cs[m - 1] = t
                    }
                mw[p] = median(ws, k); mc[p] = median(cs, k)
                lo[p] = ws[1]; hi[p] = ws[k]
            }
            printf "%-18s %8s %8s %9s %8s %10s %10s   %s\n", "part", "wall_s",
                   "cpu_s", "rows/s", "rss_MiB", "x_copy", "x_calls",
                   "wall_range"
            split("floor_copy_text floor_copy_calls import_first import_again", show)
            for (i = 1; i <= 4; i++) {
                p = show[i]
                printf "%-18s %8.2f %8.2f %9.0f %8.1f %10.2f %10.2f   %.2f-%.2f\n",
                       p, mw[p], mc[p], n / (mw[p] > 0 ? mw[p] : 1),
                       rss[p] / 1024, mw[p] / mw["floor_copy_text"],
                       mw[p] / mw["floor_copy_calls"], lo[p], hi[p]
            }
        }'
    rm -f "$work/export.csv"
    unset PGDATABASE
    psql -Xqc "DROP DATABASE $db" >/dev/null
done
