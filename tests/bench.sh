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
#   ACBILL  the acbill binary (an optimised build)
set -eu
: "${ACBILL:?set ACBILL to the acbill binary}"
SRC=$(cd "$(dirname "$0")/.." && pwd)
export ACBILL SRC LC_ALL=C
SIZES=${BENCH_SIZES:-"100000:100 1000000:1000"}
export SIZES

if [ "${ACBILL_IN_PGENV:-}" != 1 ]; then
    export ACBILL_IN_PGENV=1
    PGTMP_OPTS="-c shared_buffers=512MB -c max_wal_size=4GB" \
        exec "$(dirname "$0")/pgtmp.sh" "$0" "$@"
fi

work=$(mktemp -d /var/tmp/acbill-bench.XXXXXX)
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
printf '%-26s %9s %9s %9s %11s %9s\n' part wall_s cpu_s calls/s peak_rss_MiB ratio

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

    # The job, 1 worker then 2, each on an empty ledger and output.
    for w in 1 2; do
        psql -Xqc "TRUNCATE billing.invoices, billing.invoice_lines,
            billing.invoice_organizers, billing.invoice_reconciliation,
            billing.rated_calls,
            billing.findings, billing.run_tenants, billing.runs,
            billing.uploads CASCADE" >/dev/null
        rm -rf "$work/out-$w"
        measure "job_workers_$w" "$ACBILL" run --period 2026-10 --quiet \
            --workers "$w" --out "$work/out-$w"
    done
    rated=$(psql -XAtqc "SELECT count(*) FROM billing.rated_calls")

    # Floor 1: the calls query (what the job reads), COPY to a file.
    measure floor_copy_out psql -Xqc "\\copy (SELECT c.usage_id,
        c.start_time, c.start_time AT TIME ZONE t.time_zone, c.organizer_id,
        c.destination_number, c.duration_seconds, c.provider_charge,
        c.provider_currency FROM usage.tenants t JOIN usage.dialout_calls c
        USING (tenant_id) WHERE c.start_time >= (date '2026-10-01')::timestamp
        AT TIME ZONE t.time_zone AND c.start_time < (date '2026-11-01')::timestamp
        AT TIME ZONE t.time_zone ORDER BY c.tenant_id, c.start_time,
        c.usage_id) TO '$work/calls.copy'"
    # Floor 2: COPY the same number of rated-call rows into a table shaped
    # like billing.rated_calls (the rows come from the job's own output).
    psql -Xqc "\\copy billing.rated_calls TO '$work/rated.copy'" >/dev/null
    psql -Xqc "DROP TABLE IF EXISTS bench_rated" \
        -c "CREATE TABLE bench_rated (LIKE billing.rated_calls INCLUDING ALL)" \
        >/dev/null
    measure floor_copy_in psql -Xqc "\\copy bench_rated FROM '$work/rated.copy'"
    # Floor 3: the Calls sheet rows, nothing else.
    (cd "$work" && measure floor_xlsx "$work/bench_xlsx" "$work/rated.copy" "$work/floor.xlsx")

    echo "--- $n calls, $tenants tenants ($rated rated calls)"
    awk -v n="$n" '
        { wall[$1] = $2; cpu[$1] = $3; rss[$1] = $4; order[NR] = $1 }
        END {
            floor = wall["floor_copy_out"] + wall["floor_copy_in"] + wall["floor_xlsx"]
            for (i = 1; i <= NR; i++) {
                k = order[i]
                r = (k ~ /^job/) ? sprintf("%.2f", wall[k] / floor) : ""
                printf "%-26s %9.2f %9.2f %9.0f %11.1f %9s\n", k, wall[k], cpu[k],
                       n / (wall[k] > 0 ? wall[k] : 1), rss[k] / 1024, r
            }
            printf "%-26s %9.2f\n", "floor_total", floor
        }' "$work/results"
    psql -Xqc "DROP TABLE bench_rated" >/dev/null
    unset PGDATABASE
    psql -Xqc "DROP DATABASE $db" >/dev/null
done
