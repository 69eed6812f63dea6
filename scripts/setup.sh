#!/usr/bin/env bash
# Usage: scripts/setup.sh [--no-build] [--no-docker] [--no-image]
#
# Idempotent machine set-up for Shoal on Debian 12, run as root:
#   1. installs the missing Debian packages (docker.io nftables iproute2 busybox-static conntrack
#      chromium — the web view's browser test drives it headless; redis-server — the demo app's
#      Redis image is built from it), running `apt-get update` once, only when something is missing;
#   2. `npm ci` when node_modules is missing or older than package-lock.json (stamp:
#      node_modules/.shoal-lock.sha256 holds the lock file's sha256);
#   3. `npm run build` (tsc -b + CLI bundle) — skipped with --no-build;
#   4. starts dockerd (scripts/dockerd.sh)   — skipped with --no-docker (implies --no-image);
#   5. builds shoal/busybox:latest (scripts/build-image.sh) — skipped with --no-image.
# Running it again on a set-up machine changes nothing and takes a few seconds.
set -euo pipefail
SHOAL_LOG_TAG=setup
. "$(dirname "$0")/lib/common.sh"

BUILD=1 DOCKER=1 IMAGE=1
for a in "$@"; do
  case "$a" in
    --no-build) BUILD=0 ;;
    --no-docker) DOCKER=0; IMAGE=0 ;;
    --no-image) IMAGE=0 ;;
    -h|--help) usage_from_header "$0"; exit 0 ;;
    *) die "unknown option '$a'; use --no-build, --no-docker or --no-image" ;;
  esac
done
cd "$SHOAL_ROOT"

# 1. Debian packages.
DEB_PACKAGES=(docker.io nftables iproute2 busybox-static conntrack chromium redis-server)
mapfile -t missing < <(deb_missing "${DEB_PACKAGES[@]}")
if [ "${#missing[@]}" -gt 0 ]; then
  need_root "installing ${missing[*]}"
  step "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  step "Debian packages present (${DEB_PACKAGES[*]})"
fi

# 2. npm dependencies.
have node || die "node not found; install Node.js >= 20.19"
have npm || die "npm not found; install Node.js >= 20.19 with npm"
STAMP=node_modules/.shoal-lock.sha256
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$lock_sum" ]; then
  step "npm dependencies up to date"
elif [ -f node_modules/.package-lock.json ] && [ ! node_modules/.package-lock.json -ot package-lock.json ] && [ -z "${SHOAL_FORCE_NPM_CI:-}" ]; then
  # Installed by npm after the last lock change (npm's hidden lock file is newer): trust it.
  echo "$lock_sum" >"$STAMP"
  step "npm dependencies up to date (stamped)"
else
  step "npm ci"
  # /tmp/npm.lock serializes npm runs of concurrent sessions on one machine.
  if have flock; then flock /tmp/npm.lock npm ci --no-audit --no-fund --loglevel=error >/dev/null
  else npm ci --no-audit --no-fund --loglevel=error >/dev/null; fi
  echo "$lock_sum" >"$STAMP"
fi

# 3. Build.
if [ "$BUILD" -eq 1 ]; then
  step "building (npm run build: tsc -b + CLI bundle)"
  npm run -s build || die "build failed; fix the errors above and run scripts/setup.sh again"
fi

# 4–5. Docker engine and the test image.
if [ "$DOCKER" -eq 1 ]; then
  "$SHOAL_ROOT/scripts/dockerd.sh" start
fi
if [ "$IMAGE" -eq 1 ]; then
  "$SHOAL_ROOT/scripts/build-image.sh"
fi
step "ready"
