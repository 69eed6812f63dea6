#!/bin/sh
# Scheduler benchmark: 1,000 fake nodes × 10,000 tasks (see scripts/bench/scheduler/bench.mjs).
# Usage: scripts/bench/scheduler.sh [nodes] [tasks] [services]   — prints JSON lines.
set -eu
cd "$(dirname "$0")/../.."
npx tsc -b packages/scheduler >&2
exec node scripts/bench/scheduler/bench.mjs "$@"
