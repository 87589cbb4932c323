#!/usr/bin/env bash
# Install Debian packages quietly, waiting (bounded) for the dpkg lock.
#
#   bash scripts/apt-install.sh PKG...
#
# Why: on a fresh machine unattended-upgrades (or a cloud-init apt run) often
# holds the dpkg/apt locks for a minute or two after boot; apt-get then fails
# at once with "Could not get lock". We retry while the failure is a lock
# failure, up to BOTTLE_APT_LOCK_TIMEOUT seconds (default 300), and pass
# DPkg::Lock::Timeout so apt itself also waits for the dpkg frontend lock.
# Between retries it sleeps BOTTLE_APT_RETRY_INTERVAL seconds (default 2).
# apt's output goes to a log file (BOTTLE_APT_LOG, default a temp file); on
# failure its last lines are shown, on success one line per step.
set -euo pipefail

say() { printf 'apt: %s\n' "$*" >&2; }
die() { printf 'apt: error: %s\n' "$*" >&2; exit 1; }

[ "$#" -gt 0 ] || die "usage: bash $0 PKG..."
command -v apt-get >/dev/null 2>&1 || die "no apt-get to install $*"
[ "$(id -u)" -eq 0 ] || die "installing $* needs root (run: sudo bash $0 $*)"

lock_timeout="${BOTTLE_APT_LOCK_TIMEOUT:-300}"
retry_interval="${BOTTLE_APT_RETRY_INTERVAL:-2}"
log="${BOTTLE_APT_LOG:-$(mktemp "${TMPDIR:-/tmp}/bottle-apt.XXXXXX")}"
export DEBIAN_FRONTEND=noninteractive

is_lock_failure() {
    grep -qE 'Could not get lock|Unable to lock|Unable to acquire the dpkg frontend lock|is another process using it|dpkg frontend lock' "$log"
}

# apt_step WHAT ARGS...: run apt-get ARGS, retrying on lock failures.
apt_step() {
    local what="$1"; shift
    local start deadline waited=0
    start=$(date +%s)
    deadline=$(( start + lock_timeout ))
    while :; do
        if apt-get -o DPkg::Lock::Timeout=60 "$@" >"$log" 2>&1; then
            say "$what: done in $(( $(date +%s) - start ))s"
            return 0
        fi
        if ! is_lock_failure; then
            tail -n 15 "$log" >&2 || true
            die "apt-get $* failed (full log: $log)"
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            tail -n 5 "$log" >&2 || true
            die "the dpkg/apt lock is still held after ${lock_timeout}s (unattended-upgrades?); try again later"
        fi
        if [ "$waited" -eq 0 ]; then
            say "waiting for the dpkg/apt lock (held by another apt or unattended-upgrades; up to ${lock_timeout}s)"
            waited=1
        fi
        sleep "$retry_interval"
    done
}

say "installing $*"
apt_step "apt-get update" update -qq
apt_step "apt-get install $*" install -y -qq --no-install-recommends "$@"
