#!/usr/bin/env bash
# The README's main command: installs what is missing and builds (scripts/setup.sh), then runs the
# demo: a 3-host testbed on this machine with weftd on every host. Needs root.
# Usage: bash scripts/demo.sh [--backend=vxlan|host-gw|udp|alloc] [--once] [--hosts=N] [--ipv6] [--v=N] [--logs]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then echo "demo: needs root (it creates network namespaces); run: sudo bash scripts/demo.sh" >&2; exit 1; fi
bash scripts/setup.sh
# The pod-to-pod checks use ping, which setup.sh does not install on every image.
if ! command -v ping >/dev/null; then
  echo "demo: installing iputils-ping" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iputils-ping >/dev/null
fi
exec node --import tsx demo/demo.ts "$@"
