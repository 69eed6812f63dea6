#!/usr/bin/env bash
# Provisions one demo VM: Shoal's own set-up (Debian packages, npm ci, build, dockerd, test image)
# and a systemd unit for shoald. Needs Node.js >= 20.19 in the box (Debian 12's own nodejs is 18).
# Usage (by Vagrant): provision.sh ADVERTISE_IP
set -euo pipefail
IP=${1:?usage: provision.sh ADVERTISE_IP}
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "provision.sh: Node.js >= 20.19 is needed in the VM; install it (e.g. from a box that has it) and run 'vagrant provision' again" >&2
  exit 1
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
