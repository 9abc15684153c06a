#!/bin/bash
# acbill-cron.sh: the nightly entry point that cron calls (cron/acbill.cron).
#
#   acbill-cron.sh [-e ENV_FILE] [-- RUN_ARGS...]
#
# 1. Loads the environment file given by -e, else $ACBILL_ENV_FILE, else
#    /etc/default/acbill (that default may be missing; a named file may not).
#    It is sourced as shell, so it must be owned by root or by the user
#    the wrapper runs as, and not writable by group or others.
# 2. Takes an exclusive lock, `flock -n` on $ACBILL_LOCK_FILE (default
#    /var/lib/acbill/acbill.lock), so runs never overlap.  The lock's
#    directory must be owned by root or this user and not writable by
#    group or others (`make install` creates /var/lib/acbill so), and the
#    lock file, when it exists, a regular file of this user: in a folder
#    anyone can write (/run/lock) any local user could take the lock
#    first and stop every nightly run.  A start that finds the
#    lock held logs "already running" and exits 75 (EX_TEMPFAIL) without
#    doing anything: cron mails that line, because a run still going when
#    the next one is due needs a person to look at it.
# 3. Runs `acbill migrate`, then `acbill run $ACBILL_RUN_ARGS RUN_ARGS...`
#    (acbill itself reads ACBILL_UPLOAD_URL, ACBILL_CA_FILE, ... and the
#    libpq PG* variables from the environment).  Every line they print goes,
#    timestamped, to $ACBILL_LOG_FILE when set (the settings example sets
#    it), else to syslog (`logger -t acbill`) when /dev/log exists and
#    ACBILL_SYSLOG is not 0, else nowhere: a good night prints nothing.
# 4. Exits with acbill's own status (0 ok, 65 a tenant failed, 69 database
#    or upload server unavailable, ...; see `acbill --help`).  On failure
#    it prints a few lines on stderr, which cron mails: the status and what
#    to do, the first failing tenants with their reasons, and acbill's last
#    error (at most 5 lines).
#
# Its own statuses: 75 another run holds the lock, 78 the environment file
# or $ACBILL is missing or unsafe, 71 the lock or log file cannot be opened.
set -u
umask 027

me="acbill-cron[$$]"

stamp() { date -u +%Y-%m-%dT%H:%M:%SZ; }

syslog_ok() {
    [ "${ACBILL_SYSLOG:-}" != 0 ] && [ -S /dev/log ] &&
        command -v logger >/dev/null 2>&1
}

# log MESSAGE: one line about the wrapper itself.
log() {
    if [ -n "${ACBILL_LOG_FILE:-}" ]; then
        printf '%s %s %s\n' "$(stamp)" "$me" "$*" >> "$ACBILL_LOG_FILE"
    elif syslog_ok; then
        logger -t acbill -- "$me $*"
    fi
}

# meaning STATUS: what an exit status means and what to do (README).
meaning() {
    case $1 in
    64) echo "usage: the command line (ACBILL_RUN_ARGS) is wrong" ;;
    65) echo "a tenant's data failed a check: fix the data; the next run bills it" ;;
    66) echo "an input file is missing: check the installation" ;;
    69) echo "database or upload server unavailable, or files wait for upload: it passes by itself" ;;
    70) echo "internal error: report it with the log" ;;
    71) echo "the operating system refused (memory, processes, files)" ;;
    73) echo "output cannot be written (disk full?)" ;;
    74) echo "an input file cannot be read" ;;
    75) echo "try again later: a lock is held or a timeout expired" ;;
    78) echo "configuration: fix the settings; it will not pass by itself" ;;
    *)  if [ "$1" -gt 128 ] 2>/dev/null; then
            echo "killed by signal $(( $1 - 128 ))"
        else
            echo "unexpected status"
        fi ;;
    esac
}

errors=""       # acbill's ERROR lines of this start (a temporary file)

# fail STATUS MESSAGE: log, tell cron (stderr) in a few lines, exit.
fail() {
    local status=$1
    shift
    log "$*"
    printf 'acbill-cron: %s\n' "$*" >&2
    if [ -n "$errors" ] && [ -s "$errors" ]; then
        # The first failing tenants, then acbill's last other error.
        { grep -m 3 ' ERROR tenant ' "$errors"
          grep -v ' ERROR tenant ' "$errors" | tail -n 1
        } | sed -E 's/^[^ ]+ acbill\[[0-9]+\] ERROR //' | cut -c 1-300 |
            sed 's/^/acbill-cron:   /' >&2
    fi
    exit "$status"
}

# Copy the job's output lines to the log; acbill's own lines already start
# with a UTC timestamp, anything else gets one.  Its ERROR lines are also
# kept for the failure summary.
log_stream() {
    local line
    while IFS= read -r line || [ -n "$line" ]; do
        if [[ ! $line =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z ]]; then
            line="$(stamp) $line"
        fi
        if [[ $line == *" ERROR "* ]] && [ -n "$errors" ]; then
            printf '%s\n' "$line" >> "$errors"
        fi
        if [ -n "${ACBILL_LOG_FILE:-}" ]; then
            printf '%s\n' "$line" >> "$ACBILL_LOG_FILE"
        elif syslog_ok; then
            printf '%s\n' "${line#* }" | logger -t acbill
        fi
    done
}

# step NAME ARGS...: run acbill NAME ARGS..., logging its output; returns
# its exit status.
step() {
    "$ACBILL" "$@" 2>&1 | log_stream
    return "${PIPESTATUS[0]}"
}

env_file=${ACBILL_ENV_FILE:-}
while getopts 'e:h' opt; do
    case $opt in
    e) env_file=$OPTARG ;;
    h) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "usage: acbill-cron.sh [-e ENV_FILE] [-- RUN_ARGS...]" >&2
       exit 64 ;;
    esac
done
shift $((OPTIND - 1))

if [ -z "$env_file" ]; then
    env_file=/etc/default/acbill
    [ -e "$env_file" ] || env_file=""
fi
if [ -n "$env_file" ]; then
    if [ ! -f "$env_file" ] || [ ! -r "$env_file" ]; then
        fail 78 "cannot read the environment file $env_file"
    fi
    owner=$(stat -L -c %u "$env_file")
    [ "$owner" = 0 ] || [ "$owner" = "$(id -u)" ] ||
        fail 78 "environment file $env_file is owned by uid $owner, not by root or this user (uid $(id -u)): refused"
    mode=$(stat -L -c %a "$env_file")
    (( (8#$mode & 8#022) == 0 )) ||
        fail 78 "environment file $env_file is writable by group or others (mode $mode): refused"
    set -a
    # shellcheck disable=SC1090
    . "$env_file" || fail 78 "environment file $env_file failed to load"
    set +a
fi

ACBILL=${ACBILL:-/usr/local/bin/acbill}
lock=${ACBILL_LOCK_FILE:-/var/lib/acbill/acbill.lock}

if [ -n "${ACBILL_LOG_FILE:-}" ]; then
    : >> "$ACBILL_LOG_FILE" 2>/dev/null || {
        log_file=$ACBILL_LOG_FILE
        ACBILL_LOG_FILE=""
        fail 71 "cannot write the log file $log_file"
    }
fi
[ -x "$ACBILL" ] || fail 78 "acbill binary $ACBILL is missing or not executable (set ACBILL)"

# The lock must be where only this user (or root) can create it.
lock_dir=$(dirname -- "$lock")
if [ ! -d "$lock_dir" ] || [ -L "$lock_dir" ]; then
    fail 78 "lock directory $lock_dir is missing or a symlink: create it owned by this user, mode 0750 (make install does), or set ACBILL_LOCK_FILE"
fi
owner=$(stat -c %u "$lock_dir")
mode=$(stat -c %a "$lock_dir")
if { [ "$owner" != 0 ] && [ "$owner" != "$(id -u)" ]; } ||
   (( (8#$mode & 8#022) != 0 )); then
    fail 78 "lock directory $lock_dir (uid $owner, mode $mode) must be owned by root or this user and not writable by group or others: anyone could hold the lock there"
fi
if [ -e "$lock" ] || [ -L "$lock" ]; then
    if [ -L "$lock" ] || [ ! -f "$lock" ] ||
       [ "$(stat -c %u "$lock")" != "$(id -u)" ]; then
        fail 78 "lock file $lock is not a regular file of this user: refused (remove it)"
    fi
fi
exec 9>>"$lock" || fail 71 "cannot open the lock file $lock"
if ! flock -n 9; then
    fail 75 "already running (lock $lock is held by another run); this start is skipped"
fi

errors=$(mktemp "${TMPDIR:-/tmp}/acbill-cron.XXXXXX") ||
    fail 71 "cannot create a temporary file"
trap 'rm -f "$errors"' EXIT

start=$(date +%s)
log "start: $ACBILL run ${ACBILL_RUN_ARGS:-} $*"

step migrate
status=$?
if [ "$status" != 0 ]; then
    fail "$status" "acbill migrate failed with exit $status ($(meaning "$status")); the run was not started"
fi

# ACBILL_RUN_ARGS is split on spaces on purpose (e.g. "--out /srv/acbill").
# shellcheck disable=SC2086
step run ${ACBILL_RUN_ARGS:-} "$@"
status=$?
elapsed=$(( $(date +%s) - start ))
if [ "$status" != 0 ]; then
    fail "$status" "acbill run failed with exit $status ($(meaning "$status")) after ${elapsed}s"
fi
log "done: acbill run succeeded in ${elapsed}s"
exit 0
