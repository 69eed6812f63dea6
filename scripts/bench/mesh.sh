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
# Usage: scripts/bench/mesh.sh [services=1000] [backends=10] [runs=15] [sampleS=2] [connections=32] [rounds=5]
set -euo pipefail
SHOAL_LOG_TAG=bench-mesh
. "$(dirname "$0")/../lib/common.sh"
cd "$SHOAL_ROOT"
need_root "the mesh benchmark (network namespaces, nftables)"
S=${1:-1000} B=${2:-10} N=${3:-15} D=${4:-2} C=${5:-32} R=${6:-5}
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
  await new NftDataplane().sync({ services: [{ id: 'bench', name: 'bench', vip: '10.96.0.10',
    ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 30080 }],
    backends: [{ ip: '10.99.0.2', port: 8080, taskId: 'b', state: 'active' }] }] });
});"
"${IN[@]}" node scripts/bench/mesh/load.mjs "$D" "$C" "$R" \
  direct=http://10.99.0.2:8080/ nft_vip=http://10.96.0.10/ nft_mesh=http://10.99.0.1:30080/ userspace=http://10.99.0.1:9000/
