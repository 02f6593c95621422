#!/usr/bin/env bash
# A Docker engine for the smoke test, the testcontainers tests and CI: use the running one, or
# (as root) install Debian's docker.io when the client or the daemon is missing and start
# dockerd in the background.
#
#   scripts/docker-engine.sh start [--log FILE]   prints the pid of a dockerd started here (an
#                                                 empty line when one was already answering)
#   scripts/docker-engine.sh stop PID             stops that dockerd (SIGTERM, then SIGKILL)
#
# `start` exits 1 with one line on stderr saying why no engine answers (not root, no apt-get,
# dockerd died or was silent for 60 s: its last log lines follow), so a caller can say what it
# could not prove instead of failing blind.
set -euo pipefail

log() { printf '[docker-engine] %s\n' "$*" >&2; }
no() { printf '[docker-engine] no engine: %s\n' "$*" >&2; exit 1; }

start() {
  local logfile="${1:-/tmp/allmysms-dockerd.log}"
  if docker info >/dev/null 2>&1; then
    log "using the running engine ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
    echo
    return 0
  fi
  if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || no "docker is not installed and installing it needs root"
    command -v apt-get >/dev/null 2>&1 || no "docker is not installed and there is no apt-get"
    log "installing docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends docker.io >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker.io >/dev/null; } \
      || no "apt-get could not install docker.io"
  fi
  [ "$(id -u)" -eq 0 ] || no "no engine answers and starting dockerd needs root"
  log "starting dockerd (log: $logfile)"
  # Its output goes to the log, never to our stdout: a caller reading the pid with $(...) would
  # otherwise wait for dockerd to end.
  dockerd >"$logfile" 2>&1 </dev/null &
  local pid=$!
  local deadline=$(($(date +%s) + 60))
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 5 "$logfile" | sed 's/^/    /' >&2
      no "dockerd exited at start (log above)"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -n 5 "$logfile" | sed 's/^/    /' >&2
      stop "$pid"
      no "dockerd did not answer within 60 s (log above)"
    fi
    sleep 0.5
  done
  log "engine $(docker version --format '{{.Server.Version}}') started, pid $pid"
  echo "$pid"
}

stop() {
  local pid="${1:?stop needs the pid start printed}"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
}

case "${1:-}" in
  start)
    shift
    logfile=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --log) logfile="${2:?--log needs a file}"; shift ;;
        *) echo "docker-engine: unknown argument: $1" >&2; exit 2 ;;
      esac
      shift
    done
    start "$logfile"
    ;;
  stop) stop "${2:-}" ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
