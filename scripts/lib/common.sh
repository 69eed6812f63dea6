# shellcheck shell=bash
# Shared helpers for Shoal's shell scripts. Source it: `. "$(dirname "$0")/lib/common.sh"`.
#
# Provides: SHOAL_ROOT (repo root), step/info/warn/die (one-line output), have (command exists),
# need_root, deb_missing (which Debian packages are not installed), docker_answers (engine reachable).

SHOAL_ROOT=${SHOAL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export SHOAL_ROOT

# Prefix for every line a script prints, e.g. "setup" or "dockerd".
SHOAL_LOG_TAG=${SHOAL_LOG_TAG:-shoal}

step() { printf '==> [%s] %s\n' "$SHOAL_LOG_TAG" "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf 'warning: [%s] %s\n' "$SHOAL_LOG_TAG" "$*" >&2; }
die() { printf 'error: [%s] %s\n' "$SHOAL_LOG_TAG" "$*" >&2; exit 1; }

have() { command -v "$1" >/dev/null 2>&1; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "$1 needs root; run it with sudo (or as root)"
}

# Prints the names of the given Debian packages that are not installed (one per line).
deb_missing() {
  local p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
      *" installed") ;;
      *) echo "$p" ;;
    esac
  done
}

# True when a Docker engine answers at DOCKER_HOST (or the default socket when unset).
docker_answers() {
  timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# Prints the comment block at the top of a script (after the shebang) as its help text.
usage_from_header() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"
}
