#!/usr/bin/env bash
# bench/gpu_session.sh: issue 6's checks on a GPU machine in one device call (~9 minutes):
# build Release with CUDA, ctest (CPU suite + GPU parity tests), compute-sanitizer memcheck
# on the CUDA test files, bench_kernels --device cuda --json, bench_train --device cuda for
# ResNet50 at 64x64 batch 256 and 224x224 batch 64.
#
#   here, once:   bash bench/gpu_deps.sh     (packs the Debian build deps the image lacks)
#   device tool:  run(carry=["build-gpu-deps"], timeout_s=600, command="bash bench/gpu_session.sh")
#   some steps:   bash bench/gpu_session.sh kernels train    (steps: build ctest memcheck kernels train;
#                 the build folder stays on a warm machine, so a second call right after the
#                 first rebuilds nothing; on a cold one the build runs first anyway)
# A first call usually fits build, ctest and memcheck; the steps that did not fit say
# "skipped" in summary.txt: run them in a second call straight after (the machine stays warm
# for 30 s).
#
# Everything goes under $OUT (the device tool's output folder; ./gpu_out when unset), at
# most 8 files as the tool returns them: summary.txt (environment, each step's exit code and
# seconds, the tables' tails), build.log, ctest.log, memcheck.log, kernels.txt,
# kernels.json, train.txt, train.json. Each step runs under `timeout` with its own budget,
# clipped to what is left of GPU_SESSION_BUDGET (default 540 s) for all of them; a failed or
# timed-out step never stops the next one, a step with under 20 s left is skipped and says so.
# The script's own exit code is 0; the verdicts are in summary.txt.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/gpu_out}
BUILD=${MINIDL_GPU_BUILD:-$ROOT/build-gpu}
DEPS=$ROOT/build-gpu-deps
TOTAL=${GPU_SESSION_BUDGET:-540}
STEPS=${*:-build ctest memcheck kernels train}
START=$SECONDS
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
export PATH=/usr/local/cuda/bin:$PATH
NPROC=$(nproc 2>/dev/null || echo 8)

say() { echo "$*" | tee -a "$SUMMARY"; }
wants() { [[ " $STEPS " == *" $1 "* ]]; }

# step NAME BUDGET LOG CMD...: CMD under timeout (BUDGET clipped to the time left), output
# appended to LOG, one line in the summary.
step() {
  local name=$1 budget=$2 log=$3
  shift 3
  local left=$((TOTAL - (SECONDS - START)))
  if ((left < 20)); then
    say "$(printf '%-30s skipped: %ds left of the %ds budget' "$name" "$left" "$TOTAL")"
    return 1
  fi
  ((budget > left)) && budget=$left
  echo "=== $name: $* (limit ${budget}s)" >>"$log"
  local t0=$SECONDS
  timeout --kill-after=10 "$budget" "$@" >>"$log" 2>&1
  local rc=$?
  local note=""
  ((rc == 124 || rc == 137)) && note="  TIMED OUT at ${budget}s"
  say "$(printf '%-30s rc=%-3d %4ds%s' "$name" "$rc" $((SECONDS - t0)) "$note")"
  return $rc
}

# ---- environment (cheap, always)
{
  echo "gpu_session: $(date -u +%FT%TZ), steps: $STEPS, budget ${TOTAL}s, $NPROC cores"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') $(git -C "$ROOT" status --short 2>/dev/null | wc -l) changed file(s)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader 2>&1 | head -4
  nvcc --version 2>&1 | tail -1
  cmake --version 2>&1 | head -1
  c++ --version 2>&1 | head -1
} | tee -a "$SUMMARY"

# ---- dependencies: the bundle from bench/gpu_deps.sh, if carried
PREFIX_PATH=""
# Unpacked outside the tree (a carried folder is replaced on every call); a fixed path, so a
# build folder configured by an earlier call still finds it.
UNPACK=${TMPDIR:-/tmp}/minidl-gpu-deps
if [[ -f $DEPS/deps.tar.gz ]]; then
  rm -rf "$UNPACK" && mkdir -p "$UNPACK" && tar -C "$UNPACK" -xzf "$DEPS/deps.tar.gz" && PREFIX_PATH=$UNPACK/prefix
  export LD_LIBRARY_PATH=$UNPACK/prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  say "deps: bundle unpacked into $PREFIX_PATH"
else
  say "deps: no build-gpu-deps/deps.tar.gz carried; relying on the system's packages"
fi

# cuDNN: beside the toolkit, in the system, or in the Python wheels (nvidia-cudnn-cu13).
CUDNN_ARGS=()
cudnn_inc="" cudnn_lib=""
for d in ${CUDNN_ROOT:-} /usr/local/cuda /usr $(python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null); do
  [[ -z $cudnn_inc && -f $d/include/cudnn.h ]] && cudnn_inc=$d/include
  if [[ -z $cudnn_lib ]]; then
    for l in "$d"/lib64/libcudnn.so "$d"/lib/libcudnn.so "$d"/lib/x86_64-linux-gnu/libcudnn.so "$d"/lib/libcudnn.so.9 "$d"/lib64/libcudnn.so.9; do
      [[ -e $l ]] && cudnn_lib=$l && break
    done
  fi
done
if [[ -z $cudnn_inc || -z $cudnn_lib ]]; then  # wheels laid out otherwise (nvidia/cu13/...): search
  cudnn_inc=$(find /usr/local /opt /usr/lib/python3* -name cudnn.h -path '*include*' 2>/dev/null | head -1)
  cudnn_inc=${cudnn_inc%/*}
  cudnn_lib=$(find /usr/local /opt /usr/lib -name 'libcudnn.so*' ! -name '*_*' 2>/dev/null | sort | head -1)
fi
if [[ -n $cudnn_inc && -n $cudnn_lib ]]; then
  CUDNN_ARGS=(-DCUDNN_INCLUDE_DIR="$cudnn_inc" -DCUDNN_LIBRARY="$cudnn_lib")
  LD_LIBRARY_PATH=${cudnn_lib%/*}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LD_LIBRARY_PATH
fi
say "cudnn: include ${cudnn_inc:-not found}, library ${cudnn_lib:-not found}"
libs=""
for l in /usr/local/cuda/lib64/lib{cudart,cublas,cudnn}.so; do [[ -e $l ]] && libs+="${l##*/} "; done
say "toolkit libraries: ${libs:-none of cudart/cublas/cudnn in /usr/local/cuda/lib64}"

# ---- build (also when a later step's programs are missing: a cold machine starts bare)
if wants build || [[ ! -x $BUILD/bench/bench_kernels || ! -x $BUILD/tests/minidl_tests ]]; then
  GEN=()
  command -v ninja >/dev/null && GEN=(-G Ninja)
  [[ -f $BUILD/CMakeCache.txt ]] && GEN=()  # keep the generator of an existing build folder
  step configure 60 "$OUT/build.log" cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DMINIDL_CUDA=ON ${PREFIX_PATH:+-DCMAKE_PREFIX_PATH="$PREFIX_PATH"} "${CUDNN_ARGS[@]}" &&
    step build 270 "$OUT/build.log" cmake --build "$BUILD" -j "$NPROC"
  grep -E "error|Error" "$OUT/build.log" | head -20 >>"$SUMMARY"
fi

# ---- tests: the whole ctest suite (GPU parity tests run, not skip, when the GPU answers)
if wants ctest; then
  step ctest 150 "$OUT/ctest.log" env OMP_NUM_THREADS=2 ctest --test-dir "$BUILD" -V -j 8 --timeout 300
  grep -E "tests passed|tests failed|\*\*\*Failed|\(Failed\)|Timeout" "$OUT/ctest.log" | head -20 >>"$SUMMARY"
  # A GPU test without a usable GPU skips with this message instead of failing: count them.
  say "GPU test cases that skipped (no GPU): $(grep -c "skipped (no GPU)" "$OUT/ctest.log")"
fi

# ---- memcheck on the CUDA test files, one file at a time (a slow file cannot starve the
# others), with MINIDL_CUDA_ALLOC=direct: a cudaMalloc per tensor instead of the caching
# allocator, so an overrun past a tensor's end is outside its allocation and memcheck sees it.
if wants memcheck; then
  SANITIZER=$(command -v compute-sanitizer ||
    find /usr/local/cuda*/ /opt/nvidia/ -maxdepth 3 -type f -name compute-sanitizer 2>/dev/null | head -1)
  say "compute-sanitizer: ${SANITIZER:-not found}"
  for src in "$ROOT"/tests/test_cuda_*.cpp; do
    name=${src##*/}
    step "memcheck ${name%.cpp}" 45 "$OUT/memcheck.log" env MINIDL_CUDA_ALLOC=direct "${SANITIZER:-compute-sanitizer}" --tool memcheck --error-exitcode 99 \
      --print-limit 100 "$BUILD/tests/minidl_tests" "--source-file=*$name" --no-intro --no-version
  done
  grep -E "ERROR SUMMARY|^\[doctest\] (test cases|assertions)" "$OUT/memcheck.log" >>"$SUMMARY"
fi

# ---- the kernel tables
if wants kernels; then
  step "bench_kernels --device cuda" 180 "$OUT/kernels.txt" "$BUILD/bench/bench_kernels" --device cuda \
    --json "$OUT/kernels.json"
  grep -E "^bench_kernels|^all layers|WARNING|FAILED|\^" "$OUT/kernels.txt" >>"$SUMMARY"
fi

# ---- training and inference throughput at the two race sizes
if wants train; then
  rm -f "$BUILD"/train_*.json
  for size in 64:256 224:64; do
    img=${size%:*} batch=${size#*:}
    step "bench_train ${img}x${img} b$batch" 75 "$OUT/train.txt" "$BUILD/bench/bench_train" --device cuda \
      --arch resnet50 --img-size "$img" --batch "$batch" --infer-batch "$batch" --warmup 2 --steps 10 \
      --json "$BUILD/train_$img.json"
  done
  grep -E "^bench_train|^train|^infer|^peak" "$OUT/train.txt" >>"$SUMMARY"
  # Both runs' JSON in one file (the tool returns at most 8).
  python3 - "$BUILD" "$OUT/train.json" <<'PY' 2>>"$OUT/train.txt" || true
import json, os, sys
build, out = sys.argv[1], sys.argv[2]
runs = {}
for img in ("64", "224"):
    p = os.path.join(build, "train_%s.json" % img)
    if os.path.exists(p):
        with open(p) as f:
            runs[img + "x" + img] = json.load(f)
with open(out, "w") as f:
    json.dump(runs, f, indent=2)
PY
fi

# Keep every file under the tool's 16 MiB limit: a runaway log keeps its head and tail.
for f in "$OUT"/*; do
  if [[ -f $f && $(stat -c %s "$f") -gt 15000000 ]]; then
    { head -c 2000000 "$f"; printf '\n... [cut by gpu_session.sh] ...\n'; tail -c 12000000 "$f"; } >"$f.cut" && mv "$f.cut" "$f"
  fi
done
say "gpu_session: done in $((SECONDS - START))s; files: $(find "$OUT" -maxdepth 1 -type f -printf '%f ' | sort)"
exit 0
