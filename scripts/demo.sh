#!/usr/bin/env bash
# Usage: ./scripts/demo.sh [--down]
#
# The main job, on one machine as root: installs what is missing (scripts/setup.sh), starts
# dockerd and shoald, runs `shoal swarm init`, creates the service `web` with 3 replicas serving
# HTTP on the routing mesh port 8080, shows `shoal service ls` and `shoal service ps web`, and
# fetches a page from each replica and through the mesh.
# `--down` removes the service, stops shoald and deletes the demo's state.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=${SHOAL_DEMO_DATA:-/var/lib/shoal}
SOCK=${SHOAL_DEMO_SOCKET:-/run/shoal/shoal.sock}
LOG=${SHOAL_DEMO_LOG:-/var/log/shoald.log}
PIDFILE=/run/shoal/shoald.pid
export SHOAL_HOST=unix://$SOCK
shoal() { node -- "$ROOT/cmd/shoal/bin/shoal.js" "$@"; }
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [ "${1:-}" = "--down" ]; then
  say "cleaning up the demo"
  node_id=$(sed -n 's/.*"nodeId": *"\([a-z0-9]*\)".*/\1/p' "$DATA/node.json" 2>/dev/null | head -1)
  if [ -S "$SOCK" ]; then shoal service rm web 2>/dev/null || true; sleep 2; fi
  # The daemon: from its pid file, or any shoald serving this socket.
  pids=$( { [ -f "$PIDFILE" ] && cat "$PIDFILE"; pgrep -f "shoald.js .*--socket $SOCK" || true; } | sort -u)
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  sleep 1
  # Every container this node ran (Shoal's labels only), whatever the service.
  if [ -n "$node_id" ]; then ids=$(docker ps -aq --filter "label=shoal.node.id=$node_id" 2>/dev/null || true)
  else ids=$(docker ps -aq --filter label=shoal.service.name=web 2>/dev/null || true); fi
  [ -n "$ids" ] && docker rm -f $ids >/dev/null
  rm -rf "$DATA" "$SOCK" "$PIDFILE"
  rmdir "$(dirname "$SOCK")" 2>/dev/null || true
  # The node's network plane (overlay bridge network, VXLAN device, firewall accepts, LB table).
  left=""
  if docker network inspect shoal_overlay >/dev/null 2>&1; then
    docker network rm shoal_overlay >/dev/null 2>&1 || left="docker network shoal_overlay (still has containers: docker network inspect shoal_overlay)"
  fi
  ip link del vxlan0 2>/dev/null || true
  iptables -D DOCKER-USER -i vxlan0 -o ovl0 -j ACCEPT 2>/dev/null || true
  iptables -D DOCKER-USER -m conntrack --ctstate DNAT -j ACCEPT 2>/dev/null || true
  nft delete table ip shoal 2>/dev/null || true
  echo "removed the service and this node's containers, stopped shoald, deleted $DATA and the node's overlay plumbing"
  if [ -n "$left" ]; then echo "could not remove: $left" >&2; exit 1; fi
  exit 0
fi
[ $# -eq 0 ] || { echo "usage: $0 [--down]" >&2; exit 2; }

say "setting up (Debian packages, npm packages, build, dockerd, test image)"
./scripts/setup.sh

# swarm_state: prints the daemon's localNodeState (inactive/active), or fails if no daemon answers.
swarm_state() {
  node -e "require('http').request({socketPath:'$SOCK',method:'POST',path:'/shoal/v1/swarm.info'},r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>{try{console.log(JSON.parse(b).result.localNodeState)}catch{process.exit(1)}})}).on('error',()=>process.exit(1)).end()"
}
if swarm_state >/dev/null 2>&1; then
  say "shoald already answers on $SOCK"
else
  say "starting shoald (log: $LOG)"
  mkdir -p "$(dirname "$SOCK")"
  nohup node "$ROOT/cmd/shoald/bin/shoald.js" --data-dir "$DATA" --socket "$SOCK" >>"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
  [ -S "$SOCK" ] || { echo "shoald did not start; see $LOG"; tail -20 "$LOG"; exit 1; }
fi

if [ "$(swarm_state)" = active ]; then
  say "this node is already in a swarm"
else
  say "shoal swarm init"
  shoal swarm init
fi

if shoal service inspect web >/dev/null 2>&1; then
  say "service web exists already"
else
  say "shoal service create --name web --replicas 3 --publish 8080:80 shoal/busybox:latest (busybox httpd answering with its hostname)"
  shoal service create --name web --replicas 3 --publish 8080:80 shoal/busybox:latest \
    sh -c 'mkdir -p /www; hostname > /www/index.html; trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'
fi

say "shoal service ls"
shoal service ls
say "shoal service ps web"
shoal service ps web

say "fetching a page from each replica (printf 'GET / HTTP/1.0' | nc)"
for id in $(docker ps -q --filter label=shoal.service.name=web); do
  name=$(docker inspect -f '{{.Name}}' "$id" | sed 's#^/##')
  ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$id")
  body=$(printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 2 "$ip" 80 | tail -1)
  printf '  %-45s %-15s -> %s\n' "$name" "$ip" "$body"
done

say "through the routing mesh: 6 requests to 127.0.0.1:8080 (nftables DNAT to the service's tasks)"
for _ in $(seq 1 50); do   # the mesh is programmed on every node within moments of the tasks running
  printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 1 127.0.0.1 8080 2>/dev/null | grep -q . && break; sleep 0.1
done
for i in 1 2 3 4 5 6; do
  body=$(printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 2 127.0.0.1 8080 | tail -1)
  echo "  request $i -> ${body:-no answer}"
done

cat <<EOT

Shoal is running a replicated service. Try:
  export SHOAL_HOST=$SHOAL_HOST
  node cmd/shoal/bin/shoal.js service scale web=5      # or: npx shoal service scale web=5
  docker kill \$(docker ps -q --filter label=shoal.service.name=web | head -1)   # watch it heal
Clean up with: ./scripts/demo.sh --down
EOT
