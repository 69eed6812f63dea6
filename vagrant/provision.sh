#!/usr/bin/env bash
# Provisions one demo VM: Node.js 20 from Debian's nodejs package if missing, then Shoal's own
# set-up (Debian packages, npm ci, build, dockerd, test image) and a systemd unit for shoald.
# Usage (by Vagrant): provision.sh ADVERTISE_IP
set -euo pipefail
IP=${1:?usage: provision.sh ADVERTISE_IP}
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
cd /shoal
./scripts/setup.sh
cat >/etc/systemd/system/shoald.service <<UNIT
[Unit]
Description=Shoal daemon
After=docker.service
Requires=docker.service
[Service]
ExecStart=/usr/bin/node /shoal/cmd/shoald/bin/shoald.js --advertise-addr ${IP}:2377
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /shoal/cmd/shoal/bin/shoal.js /usr/local/bin/shoal
systemctl daemon-reload && systemctl enable --now shoald
