#!/usr/bin/env bash
# Installs every Debian package minidl's build, tests and benchmarks need.
# Idempotent: packages already present are skipped by apt-get.
# Usage: bash scripts/setup.sh [--with-torch]   (uses sudo when not root; CI runs it as root)
#   --with-torch  also installs Debian's python3-torch and python3-torchvision: the oracle for
#                 scripts/make_golden.py, scripts/convert_torchvision.py and the opt-in
#                 full-ResNet50 parity test (large; the committed goldens need none of it).
set -euo pipefail

PACKAGES=(
  g++ cmake make pkg-config
  libeigen3-dev      # peer in the kernel benchmarks
  doctest-dev        # unit tests
  libstb-dev         # image decoding (stb_image)
  nlohmann-json3-dev # safetensors headers, metrics
  libcli11-dev       # app command lines
  libopenblas-dev    # GEMM peer in the kernel benchmarks (bench only)
)

for arg in "$@"; do
  case "$arg" in
    --with-torch) PACKAGES+=(python3-torch python3-torchvision python3-numpy python3-pil) ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "setup: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

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
