#!/usr/bin/env bash
# Bring up a docker engine for the live tier, with no registry and no systemd.
#
# Why this exists: CI is a fresh Debian bookworm machine where nothing runs
# until we start it (DESIGN §7). The project brings its own engine: Debian's
# docker.io, started in the background. On a machine where `docker info`
# already answers (a laptop with Docker Desktop, a host with systemd), this
# script does nothing, so it is safe to run every time.
#
# Env: BOTTLE_DOCKERD_LOG (default /var/log/bottle-dockerd.log),
#      BOTTLE_ENGINE_TIMEOUT seconds to wait for the engine (default 60),
#      BOTTLE_DOCKER_ADDRESS_POOL the dockerd --default-address-pool it starts with
#      (default base=172.16.0.0/12,size=24),
#      BOTTLE_DOCKERD_PIDFILE where a running dockerd's pid is (default
#      /var/run/docker.pid; tests point it elsewhere).
set -euo pipefail

log_file="${BOTTLE_DOCKERD_LOG:-/var/log/bottle-dockerd.log}"
timeout_s="${BOTTLE_ENGINE_TIMEOUT:-60}"

say() { printf 'engine: %s\n' "$*" >&2; }
die() { printf 'engine: error: %s\n' "$*" >&2; exit 1; }

answers() { command -v docker >/dev/null 2>&1 && timeout 5 docker info >/dev/null 2>&1; }

if answers; then
    say "docker already answers; nothing to do"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "docker does not answer and starting dockerd needs root (run: sudo bash $0)"

# Tools the stack needs: the engine, the rootfs builder, and what dockerd
# uses to wire networks. Install only what is missing (apt is slow).
missing=()
{ command -v dockerd && command -v docker; } >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
if [ "${#missing[@]}" -gt 0 ]; then
    # Quiet, and waits (bounded) for the dpkg lock: see apt-install.sh.
    bash "$(dirname "$0")/apt-install.sh" "${missing[@]}" || die "could not install ${missing[*]}"
    # A package postinst may have started the daemon through an init script.
    if answers; then
        say "docker answers after install"
        exit 0
    fi
fi

# Start dockerd unless one is already starting (never a second daemon on the
# same socket). setsid detaches it from this script's process group so it
# outlives the CI step that ran us.
pid_file="${BOTTLE_DOCKERD_PIDFILE:-/var/run/docker.pid}"
running_pid=""
if [ -s "$pid_file" ]; then
    running_pid="$(cat "$pid_file")"
    [ "$(cat "/proc/$running_pid/comm" 2>/dev/null || true)" = dockerd ] || running_pid=""
fi
if [ -n "$running_pid" ]; then
    say "dockerd already running; waiting for it to answer"
else
    mkdir -p "$(dirname "$log_file")"
    say "starting dockerd (log: $log_file)"
    # Address pools: docker's defaults give about 30 networks (172.17-31 and
    # 192.168 in /16 and /20 blocks); each bottle takes three, and the live
    # tier launches several at once, so a run can exhaust them ("could not
    # find an available, non-overlapping IPv4 address pool"). The same
    # 172.16.0.0/12 range cut into /24s gives 4096.
    setsid -f dockerd --default-address-pool "${BOTTLE_DOCKER_ADDRESS_POOL:-base=172.16.0.0/12,size=24}" \
        </dev/null >>"$log_file" 2>&1
fi

# Bounded poll: readiness is observed, never assumed.
deadline=$(( $(date +%s) + timeout_s ))
until answers; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        say "dockerd did not answer within ${timeout_s}s; last log lines:"
        tail -n 25 "$log_file" >&2 2>/dev/null || true
        die "docker engine not ready"
    fi
    sleep 0.2
done
say "docker answers (server $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
