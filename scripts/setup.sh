#!/usr/bin/env bash
# Installs every Debian package minidl's build, tests and benchmarks need.
# Idempotent: packages already present are skipped by apt-get.
# Usage: sudo bash scripts/setup.sh   (or as root; CI runs it as root)
set -euo pipefail

PACKAGES=(
  g++ cmake make pkg-config
  libeigen3-dev      # peer in the kernel benchmarks
  doctest-dev        # unit tests
  libstb-dev         # image decoding (stb_image)
  nlohmann-json3-dev # safetensors headers, metrics
  libcli11-dev       # app command lines
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
