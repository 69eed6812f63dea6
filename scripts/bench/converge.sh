#!/usr/bin/env bash
# Usage: scripts/bench/converge.sh [REPLICAS]   (as root; needs dockerd and the test image: scripts/setup.sh)
#
# One-node convergence figures, one JSON line each {"metric","value","unit"}:
#   converge_<N>_replicas_s   `service create --replicas N` until N containers run (Docker API)
#   replace_killed_task_s     `docker kill` of one replica until its replacement runs (restart delay 0)
#   service_ls_wall_ms        wall time of one `shoal service ls` process (median of 11)
# A private shoald (temp data dir and socket) is started and removed again.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
N=${1:-30}
TMP=$(mktemp -d /tmp/shoal-bench.XXXXXX)
SOCK=$TMP/shoal.sock
shoal() { node -- "$ROOT/cmd/shoal/bin/shoal.js" --host "unix://$SOCK" "$@"; }
now() { date +%s.%N; }
count() { docker ps -q --filter "label=shoal.service.name=$1" --filter "label=shoal.node.id=$NODE" | wc -l; }
# Runs under set -e: every step must not fail, or the rest of the clean-up would be skipped.
cleanup() {
  shoal service rm bench >/dev/null 2>&1 || true
  # Leaving removes the node's containers and the overlay plumbing it added (vxlan0, ovl0, rules).
  shoal swarm leave --force >/dev/null 2>&1 || true
  if [ -n "${PID:-}" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  if [ -n "${NODE:-}" ]; then docker ps -aq --filter "label=shoal.node.id=$NODE" | xargs -r docker rm -f >/dev/null 2>&1 || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

node "$ROOT/cmd/shoald/bin/shoald.js" --data-dir "$TMP/data" --socket "$SOCK" --hostname bench --log-level warn >"$TMP/shoald.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
shoal swarm init >/dev/null
NODE=$(node -e "require('http').request({socketPath:'$SOCK',method:'POST',path:'/shoal/v1/swarm.info'},r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>console.log(JSON.parse(b).result.nodeId))}).end()")

t0=$(now)
shoal service create --detach --name bench --replicas "$N" --restart-delay 0s shoal/busybox:latest sleep 100000 >/dev/null
until [ "$(count bench)" -ge "$N" ]; do sleep 0.05; done
t1=$(now)
printf '{"metric":"converge_%s_replicas_s","value":%.3f,"unit":"s"}\n' "$N" "$(awk "BEGIN{print $t1 - $t0}")"

victim=$(docker ps -q --filter label=shoal.service.name=bench --filter "label=shoal.node.id=$NODE" | head -1)
t0=$(now)
docker kill "$victim" >/dev/null
while docker ps -q --no-trunc --filter label=shoal.service.name=bench | grep -q "^$victim"; do sleep 0.02; done
until [ "$(count bench)" -ge "$N" ]; do sleep 0.02; done
t1=$(now)
printf '{"metric":"replace_killed_task_s","value":%.3f,"unit":"s"}\n' "$(awk "BEGIN{print $t1 - $t0}")"

times=()
for _ in $(seq 1 11); do
  a=$(now); shoal service ls >/dev/null; b=$(now)
  times+=("$(awk "BEGIN{print ($b - $a) * 1000}")")
done
med=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 6p)
printf '{"metric":"service_ls_wall_ms","value":%.1f,"unit":"ms"}\n' "$med"
