#!/usr/bin/env bash
# Raft benchmark (issue 3): 3 voters as separate processes on loopback, real LevelDB with fsync,
# 128-byte values. Prints JSON lines {"metric","value","unit"}.
# Options (passed through): --count=N (64-proposer run, default 20000) --seq-count=N (500)
#   --trials=N (failover trials, 20) --snapshot-mb=N (50) --only=fsync,throughput,sequential,failover,snapshot
#   --dir=PATH (where data directories go; default $TMPDIR — put it on the disk you want measured)
#   --snapEvery=N (snapshot every N applied entries in the throughput cluster; default the node's 10,000)
set -euo pipefail
cd "$(dirname "$0")/../.."
npx tsc -b packages/replication >&2
exec node scripts/bench/raft/bench.mjs "$@"
