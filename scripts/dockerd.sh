#!/usr/bin/env bash
# Usage: scripts/dockerd.sh [start|stop|status]
#
# start   If a Docker engine answers on the default socket, do nothing. Otherwise start `dockerd`
#         in the background (log: /var/log/shoal-dockerd.log, pid: /run/shoal-dockerd.pid) and
#         wait up to $SHOAL_DOCKERD_WAIT seconds (default 60) until it answers; fail loudly if not.
# stop    Stop only a dockerd this script started (by the pid it recorded), waiting up to 30 s.
# status  Print "running (<version>)" or "not running"; exit 0 / 1.
#
# Environment: SHOAL_DOCKERD_LOG, SHOAL_DOCKERD_PIDFILE, SHOAL_DOCKERD_WAIT, SHOAL_DOCKERD_ARGS
# (extra dockerd arguments, word-split).
set -euo pipefail
SHOAL_LOG_TAG=dockerd
. "$(dirname "$0")/lib/common.sh"

# Only the default socket: callers that want another engine pass DOCKER_HOST to the other scripts.
unset DOCKER_HOST
LOG=${SHOAL_DOCKERD_LOG:-/var/log/shoal-dockerd.log}
PIDFILE=${SHOAL_DOCKERD_PIDFILE:-/run/shoal-dockerd.pid}
WAIT=${SHOAL_DOCKERD_WAIT:-60}

server_version() { timeout 10 docker version --format '{{.Server.Version}}' 2>/dev/null; }

cmd_status() {
  local v
  if v=$(server_version); then echo "running ($v)"; return 0; fi
  echo "not running"; return 1
}

cmd_start() {
  have docker || die "docker CLI not found; install it with: apt-get install docker.io (or run scripts/setup.sh)"
  if docker_answers; then
    step "dockerd already answering ($(server_version))"
    return 0
  fi
  need_root "starting dockerd"
  have dockerd || die "dockerd not found; install it with: apt-get install docker.io (or run scripts/setup.sh)"
  # A pid file left by a dockerd that was killed makes the next one refuse to start when the pid
  # now belongs to another process; drop it unless it names a live dockerd.
  local stale=/var/run/docker.pid
  if [ -f "$stale" ]; then
    local old
    old=$(cat "$stale" 2>/dev/null || true)
    if [ -z "$old" ] || [ "$(cat "/proc/$old/comm" 2>/dev/null)" != dockerd ]; then
      rm -f "$stale"
    else
      die "a dockerd (pid $old) is running but does not answer on the default socket; stop it or check /var/log/shoal-dockerd.log"
    fi
  fi
  step "starting dockerd (log: $LOG)"
  mkdir -p "$(dirname "$LOG")" "$(dirname "$PIDFILE")"
  # shellcheck disable=SC2086
  setsid nohup dockerd ${SHOAL_DOCKERD_ARGS:-} >>"$LOG" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$PIDFILE"
  local deadline=$((SECONDS + WAIT))
  until docker_answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$LOG" >&2 || true
      die "dockerd (pid $pid) exited during start-up; see $LOG"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$LOG" >&2 || true
      die "dockerd (pid $pid) did not answer within ${WAIT}s; see $LOG"
    fi
    sleep 0.5
  done
  info "dockerd $(server_version) up (pid $pid)"
}

cmd_stop() {
  [ -f "$PIDFILE" ] || { step "no dockerd started by this script ($PIDFILE missing)"; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  if ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$PIDFILE"; step "dockerd (pid $pid) not running"; return 0
  fi
  step "stopping dockerd (pid $pid)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || die "dockerd (pid $pid) still running 30s after SIGTERM"
    sleep 0.5
  done
  rm -f "$PIDFILE"
  info "stopped"
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  -h|--help) usage_from_header "$0" ;;
  *) die "unknown command '$1'; use start, stop or status" ;;
esac
