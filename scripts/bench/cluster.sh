#!/usr/bin/env bash
# Usage: scripts/bench/cluster.sh [FAILOVER_TRIALS]   (as root; after scripts/setup.sh)
#
# Cluster figures on scripts/testnet (3 managers + 2 workers, each host its own dockerd and shoald),
# one JSON line each {"metric","value","unit"}:
#   swarm_init_s, swarm_join_manager_s, swarm_join_worker_s   wall time of the CLI commands
#   converge_30_replicas_s    `service create --replicas 30` until 30 containers run (Docker API of each host)
#   scale_30_to_60_s          `service scale =60` until 60 run
#   host_death_to_rescheduled_s   SIGKILL of a worker host until all 60 replicas run on the others
#   leader_failover_p50_s / _max_s   SIGKILL of the leader host until a write (service scale) is accepted
# Builds nothing; tears the testnet down at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
TRIALS=${1:-5}
TN=scripts/testnet
now() { date +%s.%N; }
since() { awk "BEGIN{printf \"%.3f\", $(now) - $1}"; }
emit() { printf '{"metric":"%s","value":%s,"unit":"%s"}\n' "$1" "$2" "$3"; }
sh_() { $TN exec "$1" -- shoal "${@:2}"; }
running() { local t=0; for n in "$@"; do t=$((t + $($TN exec "$n" -- docker ps -q --filter label=shoal.service.name=bench | wc -l))); done; echo $t; }
leader() { for n in node1 node2 node3; do if sh_ "$n" node ls 2>/dev/null | grep -E '^\S+ \*' | grep -q Leader; then echo "$n"; return; fi; done; }
trap '$TN down >/dev/null 2>&1 || true' EXIT

$TN down >/dev/null 2>&1 || true
$TN up --nodes 5 >/dev/null
t=$(now); sh_ node1 swarm init --advertise-addr "$($TN ip node1)" >/dev/null; emit swarm_init_s "$(since "$t")" s
MT=$(sh_ node1 swarm join-token -q manager); WT=$(sh_ node1 swarm join-token -q worker)
t=$(now); sh_ node2 swarm join --token "$MT" --advertise-addr "$($TN ip node2)" 10.99.0.11:2377 >/dev/null; emit swarm_join_manager_s "$(since "$t")" s
sh_ node3 swarm join --token "$MT" --advertise-addr "$($TN ip node3)" 10.99.0.11:2377 >/dev/null
t=$(now); sh_ node4 swarm join --token "$WT" --advertise-addr "$($TN ip node4)" 10.99.0.11:2377 >/dev/null; emit swarm_join_worker_s "$(since "$t")" s
sh_ node5 swarm join --token "$WT" --advertise-addr "$($TN ip node5)" 10.99.0.11:2377 >/dev/null
until [ "$(sh_ node1 node ls | grep -c Ready)" -eq 5 ]; do sleep 0.1; done

ALL="node1 node2 node3 node4 node5"
t=$(now); sh_ node1 service create --detach --name bench --replicas 30 shoal/busybox:latest sleep 1000000 >/dev/null
until [ "$(running $ALL)" -ge 30 ]; do sleep 0.1; done; emit converge_30_replicas_s "$(since "$t")" s
t=$(now); sh_ node1 service scale bench=60 --detach >/dev/null
until [ "$(running $ALL)" -ge 60 ]; do sleep 0.1; done; emit scale_30_to_60_s "$(since "$t")" s

t=$(now); $TN kill node5 >/dev/null
until [ "$(running node1 node2 node3 node4)" -ge 60 ]; do sleep 0.1; done; emit host_death_to_rescheduled_s "$(since "$t")" s

times=()
for i in $(seq 1 "$TRIALS"); do
  L=$(leader); other=node2; [ "$L" = node2 ] && other=node3
  t=$(now); $TN kill "$L" >/dev/null
  until sh_ "$other" service scale "bench=$((60 + i))" --detach >/dev/null 2>&1; do sleep 0.05; done
  times+=("$(since "$t")")
  $TN start "$L" >/dev/null
  until sh_ "$other" node ls 2>/dev/null | grep -E "\s$L\s" | grep -q 'Ready.*Reachable'; do sleep 0.2; done
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
emit leader_failover_p50_s "$(echo "$sorted" | sed -n "$(( (TRIALS + 1) / 2 ))p")" s
emit leader_failover_max_s "$(echo "$sorted" | tail -1)" s
