#!/bin/sh
# Scheduler benchmarks, JSON lines:
#  - scheduler/bench.mjs: 1,000 fake nodes × 10,000 pending tasks → time until all are assigned;
#  - scheduler/pipeline.mjs: allocator → scheduler → dispatcher with 100 fake agents × 3,000 tasks.
# Usage: scripts/bench/scheduler.sh [nodes] [tasks] [services]
set -eu
cd "$(dirname "$0")/../.."
npx tsc -b packages/scheduler packages/allocator packages/dispatcher >&2
node scripts/bench/scheduler/bench.mjs "$@"
node scripts/bench/scheduler/pipeline.mjs
