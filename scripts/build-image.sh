#!/usr/bin/env bash
# Usage: scripts/build-image.sh [--force] [DOCKER_HOST]
#
# Builds the local test image shoal/busybox:latest without any registry: a rootfs made from the
# host's /bin/busybox (Debian busybox-static) with every applet symlinked to it (`busybox
# --list-full`), plus test/images/busybox/rootfs (/etc/passwd, /etc/group), /tmp (1777) and /www,
# fed to `docker import`.
# Skips when the image already exists, unless --force. DOCKER_HOST (argument or environment;
# e.g. unix:///run/h1/docker.sock) selects another engine.
#
# HTTP test server inside it:
#   sh -c 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www'
# Check it with nc (busybox-static's wget segfaults in containers):
#   printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 HOST 80
set -euo pipefail
SHOAL_LOG_TAG=image
. "$(dirname "$0")/lib/common.sh"

IMAGE=${SHOAL_TEST_IMAGE:-shoal/busybox:latest}
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

if [ "$FORCE" -eq 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  step "$IMAGE already present on ${DOCKER_HOST:-the default engine}"
  exit 0
fi

BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found; install it with: apt-get install busybox-static"
# A dynamically linked busybox would not run inside the image (ldd fails on static binaries).
if command -v ldd >/dev/null && ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "$BUSYBOX is dynamically linked; install the static build with: apt-get install busybox-static"
fi

step "building $IMAGE from $BUSYBOX ($("$BUSYBOX" | head -1 | awk '{print $2}'))"
ROOTFS=$(mktemp -d /tmp/shoal-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
mkdir -p "$ROOTFS"/{bin,sbin,usr/bin,usr/sbin,etc,root,www,var/log,proc,sys,dev}
install -d -m 1777 "$ROOTFS/tmp"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
n=0
while IFS= read -r applet; do
  [ -n "$applet" ] || continue
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$ROOTFS/$(dirname "$applet")"
  ln -sf /bin/busybox "$ROOTFS/$applet"
  n=$((n + 1))
done < <("$BUSYBOX" --list-full)
[ -e "$ROOTFS/bin/sh" ] || die "busybox provides no sh applet"
# /etc/passwd, /etc/group, /etc/nsswitch.conf (see test/images/busybox/README.md).
cp -R "$SHOAL_ROOT/test/images/busybox/rootfs/." "$ROOTFS/"

tar -C "$ROOTFS" --numeric-owner --owner=0 --group=0 -cf - . |
  docker import --change 'CMD ["sh"]' --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
    --message "shoal test image: busybox-static with $n applets" - "$IMAGE" >/dev/null
info "$IMAGE built ($n applets) on ${DOCKER_HOST:-the default engine}"
