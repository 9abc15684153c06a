#!/bin/sh
# pgtmp.sh CMD [ARGS...]: run CMD against a new throwaway PostgreSQL.
#
# The cluster lives in its own temporary directory, listens only on a Unix
# socket there (no TCP port, so several can run side by side), and is
# removed when CMD ends.  CMD sees PGHOST, PGUSER and PGDATABASE pointing
# at it.  As root the server runs as the postgres user.
#   PGTMP_OPTS   extra server options, e.g. "-c shared_buffers=512MB"
#   PGTMP_FAST=1 fsync off (tests; never for measurements)
set -eu
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/initdb" ] || { echo "pgtmp: no PostgreSQL server installed" >&2; exit 69; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/acbill-pg.XXXXXX")
chmod 755 "$dir"
as=""
if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir"
    as="runuser -u postgres --"
fi
opts="-k $dir -c listen_addresses= -c max_connections=100"
[ "${PGTMP_FAST:-}" = 1 ] && opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
opts="$opts ${PGTMP_OPTS:-}"

stop() {
    $as "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT TERM

$as "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C \
    --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 69; }
$as "$bindir/pg_ctl" -D "$dir/data" -o "$opts" -l "$dir/server.log" -w -t 60 \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 69; }

export PGHOST="$dir" PGUSER=postgres PGDATABASE=postgres
unset PGPORT PGSERVICE PGPASSWORD PGHOSTADDR PGSSLMODE 2>/dev/null || true
set +e
"$@"
rc=$?
exit $rc
