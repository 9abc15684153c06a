#!/bin/sh
# tracked_files_check.sh: the project stands on its own.  No tracked file
# but .ci/run and the Makefile names the shared folder the contract and
# research notes came from (a user's clone has none): the rules are in
# docs/billing-rules.md.  (This file names the patterns, so it is not
# searched.)  Run by `make test` (tests/run.sh counts the
# closing line).
set -u
cd "${ACBILL_SRC:-$(dirname "$0")/..}" || exit 1
pass=0
fail=0
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files | grep -v -x -e '.ci/run' -e 'Makefile' \
            -e 'tests/tracked_files_check.sh')
else
    files=$(find . -type f ! -path './.git/*' ! -path './build*' \
            ! -path './bin/*' ! -path './.ci/run' ! -path './Makefile' \
            ! -path './tests/tracked_files_check.sh' \
            | sed 's|^\./||')
fi
check() {                       # check NAME PATTERN
    hits=$(echo "$files" | tr '\n' '\0' |
           xargs -0 grep -n -I -e "$2" -- 2>/dev/null | head -n 20)
    if [ -z "$hits" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "tracked_files_check: $1:"
        echo "$hits" | sed 's/^/    /'
    fi
}
check "'../shared' named outside .ci/run and the Makefile" '\.\./shared'
check "SPEC.md named as a file to read" 'SPEC\.md'
check "the shared notes, data or tools named" 'shared/\(notes\|data\|tools\)/'
echo "tracked_files_check: $pass passed, $fail failed"
[ "$fail" = 0 ]
