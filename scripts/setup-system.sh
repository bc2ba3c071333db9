#!/usr/bin/env bash
# Installs the Debian packages the kit needs (OpenCV's runtime libraries; chromium for the
# browser tests) when they are missing. Runs as root or through sudo; does nothing when all are present.
set -euo pipefail
need=()
dpkg -s libgl1 >/dev/null 2>&1 || need+=(libgl1)
dpkg -s libglib2.0-0 >/dev/null 2>&1 || need+=(libglib2.0-0)
if [ "${WSOL_NO_BROWSER:-0}" != "1" ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  dpkg -s fonts-dejavu-core >/dev/null 2>&1 || need+=(fonts-dejavu-core)
fi
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "Installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
