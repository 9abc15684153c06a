#!/bin/sh
# Runs every test program given, the database ones inside a throwaway
# PostgreSQL cluster (pgtmp.sh), and prints one line as each program starts
# and one as it finishes (its name, passed and failed counts, seconds), then
# one closing line with the totals.  A program's own output is shown only
# when it fails (or with TEST_VERBOSE=1).  Exits non-zero when any program
# failed.
#   ACBILL        path of the acbill binary under test
#   TEST_WRAPPER  a command to prefix (valgrind ...), optional
#   TEST_VERBOSE  1: show every program's output as it runs
set -u
total_pass=0
total_fail=0
status=0
export ACBILL_SRC="${ACBILL_SRC:-$(pwd)}"
export LC_ALL=C
# The server's NOTICE lines ("database ... does not exist, skipping") are
# not results: the tests' sessions, and acbill's, see warnings and errors.
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

now() { date +%s.%N; }

run_one() {
    prog=$1
    # build/tests/unit_test is "unit_test", build-san/tests/unit_test
    # keeps its folder, so the two unit runs are told apart.
    name=$(echo "$prog" | sed -E 's|^(.*/)?build/tests/||; s|^tests/||')
    log=$(mktemp)
    start=$(now)
    echo "start  $name"
    if [ "${TEST_VERBOSE:-}" = 1 ]; then
        ( ${TEST_WRAPPER:-} "$prog"; echo $? > "$log.rc" ) 2>&1 | tee "$log"
    else
        ( ${TEST_WRAPPER:-} "$prog"; echo $? > "$log.rc" ) > "$log" 2>&1
    fi
    rc=$(cat "$log.rc" 2>/dev/null || echo 1)
    rm -f "$log.rc"
    secs=$(echo "$start $(now)" | awk '{ printf "%.1f", $2 - $1 }')
    line=$(grep -E '^[a-z_.]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        [ "${TEST_VERBOSE:-}" = 1 ] || sed 's/^/    /' "$log"
        echo "done   $name: printed no summary (crashed? exit $rc), ${secs} s"
        rm -f "$log"
        total_fail=$((total_fail + 1))
        status=1
        return
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
    note=""
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        note=" (exited $rc after passing its tests)"
        f=1
    fi
    if [ "$f" != 0 ] && [ "${TEST_VERBOSE:-}" != 1 ]; then
        sed 's/^/    /' "$log"
    fi
    rm -f "$log"
    echo "done   $name: $p passed, $f failed, ${secs} s$note"
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
echo "all: $total_pass passed, $total_fail failed"
exit $status
