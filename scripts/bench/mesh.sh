#!/usr/bin/env bash
# Mesh dataplane benchmarks (issue 5), JSON lines {"metric","value","unit"} on stdout:
#  1. rule-update latency: S services × B backends loaded into nftables in a throwaway netns
#     (full load, then one-backend-change transactions, median of N)          — mesh/rules.mjs
#  2. throughput in a throwaway netns (loopback-only traffic), same bounded load
#     (C keep-alive connections for D s) direct to the backend, through the nft VIP, through the
#     nft routing mesh (published port on a local address), and through the userspace proxy;
#     ratios against direct                                                   — mesh/load.mjs
# Needs root, /usr/sbin/nft, iproute2. Cleans its netns and processes up on exit.
# Usage: scripts/bench/mesh.sh [services=1000] [backends=10] [runs=15] [durationS=5] [connections=32]
set -euo pipefail
SHOAL_LOG_TAG=bench-mesh
. "$(dirname "$0")/../lib/common.sh"
cd "$SHOAL_ROOT"
need_root "the mesh benchmark (network namespaces, nftables)"
S=${1:-1000} B=${2:-10} N=${3:-15} D=${4:-5} C=${5:-32}
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
results=$(mktemp)
for target in "direct http://10.99.0.2:8080/" "nft_vip http://10.96.0.10/" "nft_mesh http://10.99.0.1:30080/" "userspace http://10.99.0.1:9000/"; do
  set -- $target
  "${IN[@]}" node scripts/bench/mesh/load.mjs "$1" "$2" "$D" "$C" | tee -a "$results"
done
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const v = (m) => rows.find((r) => r.metric === m).value;
for (const n of ["nft_vip", "nft_mesh", "userspace"]) console.log(JSON.stringify({ metric: `${n}_vs_direct_rps_ratio`, value: Math.round(v(`${n}_rps`) / v("direct_rps") * 1000) / 1000, unit: "ratio" }));
' "$results"
rm -f "$results"
