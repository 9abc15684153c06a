#!/bin/sh
# Runs every test program given, the database ones inside a throwaway
# PostgreSQL cluster (pg_virtualenv), and prints one closing line with the
# totals.  Exits non-zero when any program failed.
#   ACBILL        path of the acbill binary under test
#   TEST_WRAPPER  a command to prefix (valgrind ...), optional
set -u
total_pass=0
total_fail=0
status=0
export ACBILL_SRC="${ACBILL_SRC:-$(pwd)}"
export LC_ALL=C

run_one() {
    prog=$1
    log=$(mktemp)
    ( ${TEST_WRAPPER:-} "$prog"; echo $? > "$log.rc" ) 2>&1 | tee "$log"
    rc=$(cat "$log.rc" 2>/dev/null || echo 1)
    rm -f "$log.rc"
    line=$(grep -E '^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    rm -f "$log"
    if [ -z "$line" ]; then
        echo "run.sh: $prog printed no summary (crashed?)" >&2
        total_fail=$((total_fail + 1))
        status=1
        return
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        echo "run.sh: $prog exited $rc after passing its tests" >&2
        f=1
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    [ "$f" = 0 ] || status=1
}

# Inside pgtmp.sh the PG* variables point at a fresh cluster.
if [ "${ACBILL_IN_PGENV:-}" != 1 ] && [ -z "${ACBILL_TEST_DB:-}" ]; then
    export ACBILL_IN_PGENV=1
    PGTMP_FAST=1 exec "$(dirname "$0")/pgtmp.sh" "$0" "$@"
fi

for prog in "$@"; do
    run_one "$prog"
done
echo
echo "all: $total_pass passed, $total_fail failed"
exit $status
