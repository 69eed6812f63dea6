#!/usr/bin/env bash
# Usage: ./scripts/test.sh [--unit-only|--e2e-only] [ava file globs…]
#
# Installs every prerequisite (scripts/setup.sh: Debian packages, npm ci, build, dockerd, the test
# image), then runs the whole suite with ava:
#   1. unit and component tests (parallel workers): raft/, packages/*, cmd/*, scripts/ (check-deps on fixtures)
#   2. end-to-end tests against real dockerd, LevelDB, gRPC and network namespaces (serial)
# and ends with one plain line: `N passed, N failed`. Exit status is non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=all
FILES=()
for a in "$@"; do
  case "$a" in
    --unit-only) MODE=unit ;;
    --e2e-only) MODE=e2e ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) FILES+=("$a") ;;
  esac
done

./scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

LOGDIR=${SHOAL_TEST_LOGS:-/tmp/shoal-test-logs}
mkdir -p "$LOGDIR"
PASS=0 FAIL=0

# run_ava NAME ARGS… : runs ava with the TAP reporter, shows its output, adds up pass/fail.
run_ava() {
  local name=$1; shift
  local out="$LOGDIR/$name.tap"
  echo "== $name: npx ava $*"
  npx ava --tap "$@" 2>&1 | tee "$out"
  local rc=${PIPESTATUS[0]}
  local p f
  p=$(grep -E '^# pass [0-9]+' "$out" | tail -1 | awk '{print $3}')
  f=$(grep -E '^# fail [0-9]+' "$out" | tail -1 | awk '{print $3}')
  p=${p:-0}; f=${f:-0}
  # A crash that reports no failures (e.g. an uncaught exception in a worker) still counts as one.
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  PASS=$((PASS + p)); FAIL=$((FAIL + f))
}

if [ ${#FILES[@]} -gt 0 ]; then
  run_ava selected "${FILES[@]}"
else
  if [ "$MODE" != e2e ]; then
    run_ava unit 'raft/dist/test/**/*.test.js' 'packages/*/dist/test/**/*.test.js' 'cmd/*/dist/test/**/*.test.js' 'scripts/test/**/*.test.mjs'
  fi
  if [ "$MODE" != unit ]; then
    run_ava e2e --serial --concurrency=1 'test/dist/e2e/**/*.test.js'
  fi
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
