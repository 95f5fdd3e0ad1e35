#!/usr/bin/env bash
# Installs everything weft's demo and tests need on a fresh Debian machine (run as root):
# Debian packages that are missing, the npm dependencies, and the built bundles.
# (prometheus: only for promtool, which checks /metrics in the tests; its service is not used.)
# (chromium: the dashboard test drives it headless over a pipe; ethtool: weft doctor reads checksum offload.)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for pkg in etcd-server etcd-client iproute2 iptables nftables tcpdump iperf3 containernetworking-plugins kmod procps iputils-ping util-linux binutils prometheus ethtool chromium wireguard-go wireguard-tools strongswan-charon; do
  have "$pkg" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "setup: missing Debian packages (${need[*]}); run as root" >&2; exit 1; fi
  echo "setup: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The vxlan/tun/bridge kernel modules are loaded on demand; try once so a missing one shows early.
modprobe -q vxlan 2>/dev/null || true
modprobe -q tun 2>/dev/null || true

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run -s build
