#!/usr/bin/env bash
# bench/gpu_deps.sh: packs the build dependencies the GPU machine's image lacks into
# build-gpu-deps/deps.tar.gz, for bench/gpu_session.sh to unpack there.
#
#   bash bench/gpu_deps.sh        # here (Debian, with the packages scripts/setup.sh installs)
#   then, with the device tool:   run(carry=["build-gpu-deps"], command="bash bench/gpu_session.sh")
#
# The device machine's image has CUDA, cuDNN (through PyTorch's wheels), CMake and a compiler,
# but not the Debian packages the build finds: nlohmann_json (library), stb (library), doctest
# (tests), Eigen and OpenBLAS (bench peers). The bundle is a prefix tree, found through
# CMAKE_PREFIX_PATH: include/, lib/ (OpenBLAS with its Fortran runtime, so it loads on any
# x86-64 glibc >= Debian 12's), share/ (the CMake package files, which locate their headers
# relative to themselves). build-*/ is git-ignored, so the bundle never enters a commit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=$ROOT/build-gpu-deps
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
P=$TMP/prefix
mkdir -p "$P/include/openblas" "$P/lib" "$P/share/cmake" "$P/share/eigen3"
ARCH_LIB=/usr/lib/x86_64-linux-gnu

cp -rL /usr/include/nlohmann /usr/include/doctest /usr/include/stb /usr/include/eigen3 "$P/include/"
cp -rL /usr/share/cmake/nlohmann_json "$P/share/cmake/"
cp -rL /usr/share/eigen3/cmake "$P/share/eigen3/"
# OpenBLAS's pthread build: cblas.h and the headers it includes, the library, its runtime.
cp -L /usr/include/x86_64-linux-gnu/openblas-pthread/*.h "$P/include/openblas/"
cp -L "$ARCH_LIB/openblas-pthread/libopenblas.so.0" "$P/lib/"
ln -s libopenblas.so.0 "$P/lib/libopenblas.so"
cp -L "$ARCH_LIB/libgfortran.so.5" "$ARCH_LIB/libquadmath.so.0" "$P/lib/"
cp -L "$ARCH_LIB/libstb.so.0" "$P/lib/"
ln -s libstb.so.0 "$P/lib/libstb.so"

mkdir -p "$DEST"
tar -C "$TMP" -czf "$DEST/deps.tar.gz" prefix
echo "gpu_deps: $(du -h "$DEST/deps.tar.gz" | cut -f1) in $DEST/deps.tar.gz"
