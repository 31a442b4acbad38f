#!/usr/bin/env bash
# Makes sure a Docker daemon answers: if `docker info` fails, starts
# `dockerd --bridge=none --iptables=false` in the background (our machines and CI have no bridge
# networking to give; gantry's container tests need none) and waits up to 30 s for it.
# Exit 0 when the daemon answers, 1 (with the reason on stderr) when it cannot start.
# The daemon is left running for later builds and tests; its log is $GANTRY_DOCKERD_LOG.
set -euo pipefail

log() { printf 'ensure-dockerd: %s\n' "$*" >&2; }

# `docker info` can fail for a moment on a busy machine (2 cores, many tests): ask a few times
# before deciding the daemon is absent.
answers() {
    local i
    for i in 1 2 3; do
        docker info >/dev/null 2>&1 && return 0
        [[ $i == 3 ]] || sleep 0.5
    done
    return 1
}
if answers; then
    exit 0
fi
command -v dockerd >/dev/null || { log "dockerd is not installed (apt-get install docker.io)"; exit 1; }
[[ "$(id -u)" == 0 ]] || { log "not root: cannot start dockerd"; exit 1; }

logfile=${GANTRY_DOCKERD_LOG:-/var/log/gantry-dockerd.log}
# Another process may be starting it right now (parallel test binaries): serialise on a lock.
exec 9>/run/gantry-dockerd.lock
if ! flock -w 60 9; then
    answers && exit 0
    log "timed out waiting for the dockerd start lock (/run/gantry-dockerd.lock)"
    exit 1
fi
if ! answers; then
    log "starting dockerd --bridge=none --iptables=false (log: $logfile)"
    # 9>&-: the daemon must not inherit the lock, or it would hold it for its whole life and
    # every later caller would wait on it.
    setsid nohup dockerd --bridge=none --iptables=false >>"$logfile" 2>&1 </dev/null 9>&- &
    for _ in $(seq 1 150); do
        docker info >/dev/null 2>&1 && break
        sleep 0.2
    done
fi
if ! docker info >/dev/null 2>&1; then
    log "dockerd did not answer within 30 s; last log lines:"
    tail -n 15 "$logfile" >&2 || true
    exit 1
fi
log "dockerd is up ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
