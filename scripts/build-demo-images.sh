#!/usr/bin/env bash
# Usage: scripts/build-demo-images.sh [--force] [DOCKER_HOST]
#
# Builds the demo app's images without any registry, from this host's own binaries and the
# libraries they link (ldd), fed to `docker import`:
#   shoal/counter:latest  Node.js (the host's /usr/bin/node) + the bundled counter
#                         (packages/demo-counter/dist/counter.mjs, `npm run build`) + busybox;
#                         CMD node /app/counter.mjs; /app/healthz.mjs exits 0 when /healthz answers 200
#   shoal/redis:latest    Debian's redis-server and redis-cli + busybox;
#                         CMD redis-server --protected-mode no --dir /data (pass --requirepass … to
#                         protect it; the demo stack takes it from a secret)
# Skips an image that already exists, unless --force. DOCKER_HOST (argument or environment)
# selects another engine (e.g. a testnet host's: unix:///run/shoal-testnet/node1/docker.sock).
set -euo pipefail
SHOAL_LOG_TAG=demo-images
. "$(dirname "$0")/lib/common.sh"

FORCE=0
for a in "$@"; do
  case "$a" in
    --force|-f) FORCE=1 ;;
    -h|--help) usage_from_header "$0"; exit 0 ;;
    -*) die "unknown option '$a'; use --force or a DOCKER_HOST argument" ;;
    *) export DOCKER_HOST="$a" ;;
  esac
done
have docker || die "docker CLI not found; run scripts/setup.sh first"
docker_answers || die "no Docker engine answers at ${DOCKER_HOST:-the default socket}; start one with scripts/dockerd.sh start"

# add_binary ROOTFS PATH: copies PATH and every library it links (with the loader) into ROOTFS.
add_binary() {
  local root=$1 bin=$2 lib
  install -D -m 0755 "$bin" "$root$bin"
  for lib in $(ldd "$bin" | awk '/=>/ { print $3 } /^\s*\/lib/ { print $1 }'); do
    [ -e "$lib" ] || continue
    [ -e "$root$lib" ] || install -D -m 0644 "$lib" "$root$lib"
  done
}

# base_rootfs ROOTFS: busybox (sh, nc, …), /etc files, /tmp.
base_rootfs() {
  local root=$1 applet
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,proc,sys,dev,data,app}
  install -d -m 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  while IFS= read -r applet; do
    [ -n "$applet" ] && [ "$applet" != bin/busybox ] || continue
    mkdir -p "$root/$(dirname "$applet")"
    [ -e "$root/$applet" ] || ln -sf /bin/busybox "$root/$applet"
  done < <(/bin/busybox --list-full)
  cp -R "$SHOAL_ROOT/test/images/busybox/rootfs/." "$root/"
  grep -q '^redis:' "$root/etc/passwd" || echo 'redis:x:999:999:redis:/data:/bin/sh' >>"$root/etc/passwd"
  grep -q '^redis:' "$root/etc/group" || echo 'redis:x:999:' >>"$root/etc/group"
}

import_rootfs() {
  local root=$1 image=$2; shift 2
  tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . | docker import "$@" - "$image" >/dev/null
}

build_counter() {
  local image=shoal/counter:latest bundle="$SHOAL_ROOT/packages/demo-counter/dist/counter.mjs"
  if [ "$FORCE" -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then step "$image already present"; return; fi
  [ -f "$bundle" ] || die "$bundle is missing; run npm run build first"
  local node; node=$(readlink -f "$(command -v node)")
  step "building $image (node $(node -v) from $node)"
  local root; root=$(mktemp -d /tmp/shoal-counter.XXXXXX)
  base_rootfs "$root"
  add_binary "$root" "$node"
  [ "$node" = /usr/bin/node ] || ln -sf "$node" "$root/usr/bin/node"
  cp "$bundle" "$root/app/counter.mjs"
  cat >"$root/app/healthz.mjs" <<'EOF'
// Exits 0 when the counter's /healthz answers 200 (a health check: CMD node /app/healthz.mjs).
import http from 'node:http';
http.get({ host: '127.0.0.1', port: process.env.PORT || 8080, path: '/healthz', timeout: 2000 }, (r) => process.exit(r.statusCode === 200 ? 0 : 1))
  .on('error', () => process.exit(1)).on('timeout', () => process.exit(1));
EOF
  import_rootfs "$root" "$image" --change 'CMD ["node", "/app/counter.mjs"]' --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PORT=8080' --change 'EXPOSE 8080' --change 'WORKDIR /app' --message "shoal demo: the counter on node $(node -v)"
  rm -rf "$root"
  info "$image built ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
}

build_redis() {
  local image=shoal/redis:latest
  if [ "$FORCE" -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then step "$image already present"; return; fi
  have redis-server || die "redis-server not found; install it with: apt-get install redis-server"
  step "building $image ($(redis-server --version | awk '{print $3}'))"
  local root; root=$(mktemp -d /tmp/shoal-redis.XXXXXX)
  base_rootfs "$root"
  add_binary "$root" "$(readlink -f "$(command -v redis-server)")"
  add_binary "$root" "$(readlink -f "$(command -v redis-cli)")"
  [ -e "$root/usr/bin/redis-server" ] || ln -sf "$(readlink -f "$(command -v redis-server)")" "$root/usr/bin/redis-server"
  import_rootfs "$root" "$image" --change 'CMD ["redis-server", "--protected-mode", "no", "--dir", "/data"]' \
    --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' --change 'EXPOSE 6379' --change 'VOLUME /data' --change 'WORKDIR /data' \
    --message "shoal demo: Debian's redis-server"
  rm -rf "$root"
  info "$image built ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
}

build_counter
build_redis
