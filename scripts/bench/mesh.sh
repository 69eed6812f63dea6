#!/usr/bin/env bash
# Mesh dataplane benchmarks (issue 5), JSON lines {"metric","value","unit"} on stdout:
#  1. rule-update latency: S services × B backends loaded into nftables in a throwaway netns
#     (full load, then one-backend-change transactions, median of N)          — mesh/rules.mjs
#  2. throughput in a throwaway netns (traffic stays inside it), the same bounded load
#     (C keep-alive connections for D s per sample, R interleaved rounds, median) direct to the
#     backend, through the nft VIP, through the nft routing mesh (published port on a local
#     address), and through the userspace proxy; ratios against direct        — mesh/load.mjs
#     The load generator is one node process: on 2 cores it, the backend and the proxy share CPU.
# Needs root, /usr/sbin/nft, iproute2. Cleans its netns and processes up on exit.
# Usage: scripts/bench/mesh.sh [services=1000] [backends=10] [runs=15] [sampleS=2] [connections=32] [rounds=5] [clusterCidr]
#
# `--testnet` instead measures the running system on 2 testnet hosts (scripts/testnet, or
# $SHOAL_TESTNET_SCRIPT; brought up and torn down here): one busybox httpd task on node2, loaded
# from node1's namespace direct to the task's overlay IP, through the service VIP and through
# the routing mesh (published port on node1's address), all crossing the VXLAN overlay
# (overlay_* metrics); then the time until a killed task's backend has left node1's nft table.
# Usage: scripts/bench/mesh.sh --testnet [sampleS=2] [connections=16] [rounds=3]
set -euo pipefail
SHOAL_LOG_TAG=bench-mesh
. "$(dirname "$0")/../lib/common.sh"
cd "$SHOAL_ROOT"
need_root "the mesh benchmark (network namespaces, nftables)"

if [ "${1:-}" = --testnet ]; then
  shift
  D=${1:-2} C=${2:-16} R=${3:-3}
  TN=${SHOAL_TESTNET_SCRIPT:-$SHOAL_ROOT/scripts/testnet}
  trap '"$TN" down >/dev/null 2>&1 || true' EXIT
  "$TN" down >/dev/null 2>&1 || true
  "$TN" up --nodes 2 >&2
  ip1=$("$TN" ip node1); ip2=$("$TN" ip node2)
  "$TN" exec node1 -- shoal swarm init --advertise-addr "$ip1" >&2
  tok=$("$TN" exec node1 -- shoal swarm join-token -q worker)
  "$TN" exec node2 -- shoal swarm join --token "$tok" --advertise-addr "$ip2" "$ip1:2377" >&2
  "$TN" exec node1 -- shoal service create --name bench --constraint node.hostname==node2 -p 8080:80 --detach \
    shoal/busybox:latest sh -c 'mkdir -p /www; hostname > /www/index.html; trap "exit 0" TERM; httpd -f -p 80 -h /www & wait' >&2
  cid=""
  for _ in $(seq 1 120); do
    cid=$("$TN" exec node2 -- docker ps -q --filter label=shoal.service.name=bench | head -1)
    [ -n "$cid" ] && break; sleep 0.5
  done
  [ -n "$cid" ] || die "the bench task did not start on node2"
  tip=$("$TN" exec node2 -- docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$cid")
  vip=$("$TN" exec node1 -- shoal service inspect bench | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s);const x=Array.isArray(v)?v[0]:v;console.log(x.endpoint.virtualIps[0].addr.split("/")[0])})')
  for _ in $(seq 1 100); do
    "$TN" exec node1 -- /usr/sbin/nft list table ip shoal 2>/dev/null | grep -q "$tip" && break; sleep 0.2
  done
  info "task $tip on node2, VIP $vip, mesh $ip1:8080" >&2
  "$TN" exec node1 -- node "$SHOAL_ROOT/scripts/bench/mesh/load.mjs" "$D" "$C" "$R" \
    overlay_direct="http://$tip/" overlay_vip="http://$vip/" overlay_mesh="http://$ip1:8080/"
  t0=$(date +%s%N)
  "$TN" exec node2 -- docker kill "$cid" >/dev/null
  for _ in $(seq 1 500); do
    "$TN" exec node1 -- /usr/sbin/nft list table ip shoal | grep -q "$tip" || break
    sleep 0.01
  done
  t1=$(date +%s%N)
  printf '{"metric":"overlay_backend_removal_ms","value":%d,"unit":"ms"}\n' $(( (t1 - t0) / 1000000 ))
  exit 0
fi
S=${1:-1000} B=${2:-10} N=${3:-15} D=${4:-2} C=${5:-32} R=${6:-5}
# 7th argument: a cluster CIDR holding the load generator's address (e.g. 10.99.0.0/24): then, as
# for a task in a cluster, VIP and mesh traffic from it keep their source (DNAT only, no
# masquerade). Default none: every DNATed connection is also masqueraded (the external-client case).
CIDR=${7:-}
npx tsc -b packages/netdp >&2

NS="shoalb-$$"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$NS"
IN=(nsenter "--net=/var/run/netns/$NS")
"${IN[@]}" ip link set lo up

# 1. Rule-update latency.
"${IN[@]}" node scripts/bench/mesh/rules.mjs "$S" "$B" "$N"

# 2. Throughput. A veth pair inside the netns gives two non-loopback addresses.
"${IN[@]}" ip link add v0 type veth peer name v1
"${IN[@]}" ip addr add 10.99.0.1/24 dev v0
"${IN[@]}" ip addr add 10.99.0.2/24 dev v1
"${IN[@]}" ip link set v0 up
"${IN[@]}" ip link set v1 up
"${IN[@]}" ip route add 10.96.0.0/16 dev v0 src 10.99.0.1
start() { # start a child in the netns and wait for its "ready" line
  local fifo; fifo=$(mktemp -u); mkfifo "$fifo"
  "${IN[@]}" node "$@" >"$fifo" & PIDS+=($!)
  read -r _ <"$fifo"; rm -f "$fifo"
}
start scripts/bench/mesh/backend.mjs 10.99.0.2 8080
start scripts/bench/mesh/proxy.mjs 10.99.0.1 9000 10.99.0.2 8080
"${IN[@]}" node -e "
import('@shoal/netdp').then(async ({ NftDataplane }) => {
  await new NftDataplane().sync({ ...('$CIDR' ? { clusterCidr: '$CIDR' } : {}), services: [{ id: 'bench', name: 'bench', vip: '10.96.0.10',
    ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 30080 }],
    backends: [{ ip: '10.99.0.2', port: 8080, taskId: 'b', state: 'active' }] }] });
});"
"${IN[@]}" node scripts/bench/mesh/load.mjs "$D" "$C" "$R" \
  direct=http://10.99.0.2:8080/ nft_vip=http://10.96.0.10/ nft_mesh=http://10.99.0.1:30080/ userspace=http://10.99.0.1:9000/
