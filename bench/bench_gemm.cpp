// bench_gemm: our SGEMMs (kernels/cpu/gemm_avx512.cpp and gemm_avx2.cpp, one shared driver)
// side by side with OpenBLAS (cblas_sgemm) and Eigen on square sizes and on the GEMMs of a
// ResNet50 at 64x64, batch 32. Prints a table and one summary line; never asserts on time.
//
//   build/bench/bench_gemm [--threads T] [--reps R] [--filter TEXT] [--json FILE] [--isa ISA]
//                          [--no-check] [--ablation] [--pause-ms P] [--openblas-core NAME]
//
//   --isa ISA     our kernel(s) to time: avx512, avx2, or both (default: every one this CPU
//                 has, side by side, with the avx512/avx2 ratio); the ablation times one,
//                 the first of them. The line above the table names the kernel gemm<float>
//                 itself uses (gemm_isa(), MINIDL_GEMM can force it).
//   --threads T   threads for all three libraries (default: OMP_NUM_THREADS or all cores)
//   --reps R      timed repetitions per case; the table shows medians (default 7)
//   --filter TEXT only the cases whose name contains TEXT (e.g. "rn50 ", "rn50x32", "rn50dx",
//                 "rn50dw", "sq")
//   --json FILE   also write every row, the measured peak and the summary as JSON
//   --no-check    skip the accuracy column (it runs gemm_reference, slow on big cases)
//   --ablation    instead of the peer table: what each optimisation step buys on a few
//                 cases (reference, packed loops, the micro-kernel, each extra path,
//                 threads, B packed once per team), for docs/performance.md
//   --pause-ms P  idle time after ours and after Eigen before the next library runs
//                 (default 10): libgomp's worker threads keep spinning for ~8 ms after a
//                 parallel region and would steal a core from whoever runs next. After
//                 OpenBLAS the pause is at least 150 ms: its (pthread) workers spin for
//                 ~117 ms after each call (measured: 2^28 TSC cycles), and a core taken
//                 by that spin made our 2-thread calls wait a scheduler slice (~7 ms) each.
//   --openblas-core NAME  re-run with OPENBLAS_CORETYPE=NAME (e.g. Haswell, SkylakeX):
//                 OpenBLAS picks its kernels when it loads, so this needs a fresh process.
//
// Cases. "sq N": N x N x N. "rn50 ...": the per-sample GEMMs our conv2d_forward runs for
// each conv layer of ResNet50 at 64x64 input (M = out channels, N = OH*OW, K = C*KH*KW;
// one call per sample, inside conv's parallel-over-samples region). "rn50x32 ...": the
// same layers as one batched GEMM (N x 32), for comparison. "rn50dx ..." / "rn50dw ...":
// the per-sample backward GEMMs of the same layers (dX columns = W^T dY: op(A) transposed;
// dW = dY cols^T: op(B) transposed). Timing: each repetition runs
// ours, OpenBLAS and Eigen one after the other (alternating, so machine noise hits all
// three alike; with idle pauses between them, see --pause-ms), each for enough
// back-to-back calls to last ~10 ms (each of our kernels runs as its own contender in
// the same rotation); the table reports the median per call. Peak: a register-only FMA
// loop, 12 independent chains of 8- or 16-float FMAs, on 1 thread and on T threads.
// "err": max |C - C_ref| / max |C_ref| against gemm_reference (double accumulation), for
// our first kernel and OpenBLAS.
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>
#include <unistd.h>

#include <Eigen/Core>
#include <algorithm>
#include <limits>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_fast.h"
#include "tensor/random.h"

using namespace minidl;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ------------------------------------------------------------------------- FMA peak

// The FMA peak is bench::measure_fma_peak (bench_util.h).

// ------------------------------------------------------------------------ our kernels

using SgemmFn = void (*)(const cpu::SgemmConfig&, bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                         const float*, int64_t, float, float*, int64_t);
struct Ours {
  std::string isa;  // "avx512" or "avx2"
  SgemmFn fn;
  int lanes;  // floats per vector, for the peak
};

// ---------------------------------------------------------------------------- cases

struct Case {
  std::string name;
  int64_t M, N, K;
  std::string group;  // "sq", "rn50" (per sample), "rn50x32" (batched), "rn50dx", "rn50dw"
  bool ta = false, tb = false;  // op(A) = A^T, op(B) = B^T
};

std::vector<Case> make_cases() {
  std::vector<Case> cs;
  for (int n : {256, 512, 1024}) cs.push_back({"sq " + std::to_string(n), n, n, n, "sq"});
  // ResNet50 at 64x64: stem 7x7/2 -> 32x32; maxpool -> 16x16; layer1 16x16, layer2 8x8,
  // layer3 4x4, layer4 2x2 (the first block of layers 2-4 strides in its 3x3 conv and in
  // its downsample). One entry per distinct GEMM shape (M = O, N = OH*OW, K = C*KH*KW).
  struct L {
    const char* name;
    int64_t O, P, K;
  };
  const L layers[] = {
      {"stem 7x7/2 3->64", 64, 1024, 147},
      {"l1 1x1 64->64", 64, 256, 64},
      {"l1 1x1 256->64", 64, 256, 256},
      {"l1 3x3 64->64", 64, 256, 576},
      {"l1 1x1 64->256", 256, 256, 64},
      {"l2.0 1x1 256->128", 128, 256, 256},
      {"l2 3x3 128->128", 128, 64, 1152},
      {"l2 1x1 128->512", 512, 64, 128},
      {"l2.0 ds 1x1/2 256->512", 512, 64, 256},
      {"l2 1x1 512->128", 128, 64, 512},
      {"l3.0 1x1 512->256", 256, 64, 512},
      {"l3 3x3 256->256", 256, 16, 2304},
      {"l3 1x1 256->1024", 1024, 16, 256},
      {"l3.0 ds 1x1/2 512->1024", 1024, 16, 512},
      {"l3 1x1 1024->256", 256, 16, 1024},
      {"l4.0 1x1 1024->512", 512, 16, 1024},
      {"l4 3x3 512->512", 512, 4, 4608},
      {"l4 1x1 512->2048", 2048, 4, 512},
      {"l4.0 ds 1x1/2 1024->2048", 2048, 4, 1024},
      {"l4 1x1 2048->512", 512, 4, 2048},
  };
  for (const L& l : layers) cs.push_back({std::string("rn50 ") + l.name, l.O, l.P, l.K, "rn50"});
  for (const L& l : layers) cs.push_back({std::string("rn50x32 ") + l.name, l.O, l.P * 32, l.K, "rn50x32"});
  // The backward GEMMs conv2d runs per sample: dX columns = W^T dY (K x P = [O x K]^T [O x P])
  // and dW += dY cols^T (O x K = [O x P] [K x P]^T; conv accumulates with beta = 1, here 0).
  for (const L& l : layers) cs.push_back({std::string("rn50dx ") + l.name, l.K, l.P, l.O, "rn50dx", true, false});
  for (const L& l : layers) cs.push_back({std::string("rn50dw ") + l.name, l.O, l.K, l.P, "rn50dw", false, true});
  return cs;
}

std::vector<float> random_floats(size_t n, uint64_t seed) {
  Generator g(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(g.uniform(-1, 1));
  return v;
}

// Times fn: per repetition, enough back-to-back calls to last ~target seconds; returns
// seconds per call for each repetition (the caller alternates libraries between reps).
struct Timer {
  std::function<void()> fn;
  int64_t calls = 1;
  void calibrate(double target) {
    fn();  // warm-up: caches, page faults, thread pools
    const auto t = Clock::now();
    fn();
    const double one = std::max(seconds_since(t), 1e-7);
    calls = std::max<int64_t>(1, int64_t(target / one));
  }
  double run() const {
    const auto t = Clock::now();
    for (int64_t i = 0; i < calls; ++i) fn();
    return seconds_since(t) / double(calls);
  }
};

// Sleeps, so that the worker threads a library left spinning go idle before the next one.
void settle(double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }

double max_rel_diff(const std::vector<float>& got, const std::vector<float>& ref) {
  double d = 0, r = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double e = std::abs(double(got[i]) - double(ref[i]));
    if (e != e) return std::numeric_limits<double>::infinity();  // a NaN on either side is an error, never hidden by max
    d = std::max(d, e);
    r = std::max(r, std::abs(double(ref[i])));
  }
  return d / std::max(r, 1e-30);
}

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// ------------------------------------------------------------------ ablation variants

// "Packed loops": the same packing of op(B) into 16-wide slivers and op(A) into 6-row
// panels as the real kernel, but the tile updated through memory with plain loops (the
// compiler vectorises the inner j loop with AVX2) instead of a register-blocked
// micro-kernel. Row-major, no transposes, beta = 0, one thread: enough to show the step.
__attribute__((target("avx2,fma"))) void packed_loops_gemm(int64_t M, int64_t N, int64_t K, const float* A,
                                                            const float* B, float* C) {
  constexpr int64_t MR = 6, NR = 16, KC = 256, MC = 144;
  std::vector<float> bp(size_t(KC * ((N + NR - 1) / NR) * NR)), ap(size_t(MC * KC));
  std::fill(C, C + M * N, 0.f);
  for (int64_t pc = 0; pc < K; pc += KC) {
    const int64_t kc = std::min(KC, K - pc);
    for (int64_t s = 0; s * NR < N; ++s)
      for (int64_t p = 0; p < kc; ++p)
        for (int64_t c = 0; c < NR; ++c)
          bp[size_t((s * kc + p) * NR + c)] = s * NR + c < N ? B[(pc + p) * N + s * NR + c] : 0.f;
    for (int64_t ic = 0; ic < M; ic += MC) {
      const int64_t mc = std::min(MC, M - ic);
      for (int64_t q = 0; q * MR < mc; ++q)
        for (int64_t p = 0; p < kc; ++p)
          for (int64_t r = 0; r < MR; ++r)
            ap[size_t((q * kc + p) * MR + r)] = q * MR + r < mc ? A[(ic + q * MR + r) * K + pc + p] : 0.f;
      for (int64_t s = 0; s * NR < N; ++s)
        for (int64_t q = 0; q * MR < mc; ++q) {
          float t[MR][NR] = {};
          for (int64_t p = 0; p < kc; ++p) {
            const float* __restrict a = &ap[size_t((q * kc + p) * MR)];
            const float* __restrict b = &bp[size_t((s * kc + p) * NR)];
            for (int r = 0; r < MR; ++r) {
              const float av = a[r];
#pragma omp simd
              for (int c = 0; c < NR; ++c) t[r][c] += av * b[c];
            }
          }
          for (int64_t r = 0; r < MR && ic + q * MR + r < M; ++r)
            for (int64_t c = 0; c < NR && s * NR + c < N; ++c) C[(ic + q * MR + r) * N + s * NR + c] += t[r][c];
        }
    }
  }
}

int run_ablation(const Ours& ours, int threads, int reps, const std::string& filter, double pause) {
  const Case cases[] = {{"sq 512", 512, 512, 512, "sq"},
                        {"rn50 stem 7x7/2 3->64", 64, 1024, 147, "rn50"},
                        {"rn50 l1 3x3 64->64", 64, 256, 576, "rn50"},
                        {"rn50 l2 3x3 128->128", 128, 64, 1152, "rn50"},
                        {"rn50 l3 3x3 256->256", 256, 16, 2304, "rn50"},
                        {"rn50 l4 3x3 512->512", 512, 4, 4608, "rn50"},
                        {"rn50x32 l3 3x3 256->256", 256, 512, 2304, "rn50x32"},
                        {"rn50dx l3 3x3 256->256", 2304, 16, 256, "rn50dx", true, false},
                        {"rn50dx l4 3x3 512->512", 4608, 4, 512, "rn50dx", true, false}};
  struct Step {
    const char* name;
    int nt;
    cpu::SgemmConfig cfg;
    int kind;  // 0 reference, 1 packed loops, 2 ours, 3 OpenBLAS
  };
  const cpu::SgemmConfig all_packed{false, false, false, 1}, plus_in_place{false, false, true, 1},
      plus_swap{false, true, true, 1}, all1{true, true, true, 1}, per_item_b{true, true, true, threads, false},
      allT{true, true, true, threads, true};
  const Step steps[] = {{"reference (double acc.), 1 thr", 1, {}, 0},
                        {"packed, plain loops, 1 thr", 1, {}, 1},
                        {"micro-kernel, all packed", 1, all_packed, 2},
                        {"+ operands read in place", 1, plus_in_place, 2},
                        {"+ swapped product", 1, plus_swap, 2},
                        {"+ dot kernel (a side <= 8)", 1, all1, 2},
                        {"+ threads, B packed per item", threads, per_item_b, 2},
                        {"+ B packed once per team", threads, allT, 2},
                        {"OpenBLAS, 1 thr", 1, {}, 3},
                        {"OpenBLAS, T thr", threads, {}, 3}};
  std::printf(
      "ablation of our %s kernel: GFLOP/s per step (median of %d), T = %d threads; the plain-loop step (AVX2, 6x16 "
      "panels) is NN only\n%-32s",
      ours.isa.c_str(), reps, threads, "step");
  std::vector<const Case*> chosen;
  for (const Case& c : cases)
    if (c.name.find(filter) != std::string::npos) chosen.push_back(&c);
  for (const Case* c : chosen)
    std::printf(" %12s", ((c->ta ? "T" : "") + std::to_string(c->M) + "x" + std::to_string(c->N) + "x" +
                          std::to_string(c->K))
                             .c_str());
  std::printf("\n");
  for (const Step& st : steps) {
    std::printf("%-32s", st.name);
    for (const Case* c : chosen) {
      if (st.kind == 1 && (c->ta || c->tb)) {
        std::printf(" %12s", "-");
        continue;
      }
      const auto A = random_floats(size_t(c->M * c->K), 1), B = random_floats(size_t(c->K * c->N), 2);
      std::vector<float> C(size_t(c->M * c->N));
      const int64_t lda = c->ta ? c->M : c->K, ldb = c->tb ? c->K : c->N;
      Timer t;
      t.fn = [&] {
        switch (st.kind) {
          case 0:
            omp_set_num_threads(1);
            cpu::gemm_reference<float>(c->ta, c->tb, c->M, c->N, c->K, 1.f, A.data(), lda, B.data(), ldb, 0.f,
                                       C.data(), c->N);
            omp_set_num_threads(threads);
            break;
          case 1: packed_loops_gemm(c->M, c->N, c->K, A.data(), B.data(), C.data()); break;
          case 2:
            ours.fn(st.cfg, c->ta, c->tb, c->M, c->N, c->K, 1.f, A.data(), lda, B.data(), ldb, 0.f, C.data(), c->N);
            break;
          default:
            openblas_set_num_threads(st.nt);
            cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans, c->tb ? CblasTrans : CblasNoTrans,
                        int(c->M), int(c->N), int(c->K), 1.f, A.data(), int(lda), B.data(), int(ldb), 0.f, C.data(),
                        int(c->N));
        }
      };
      t.calibrate(0.01);
      settle(st.kind == 3 ? std::max(pause, 0.150) : pause);
      std::vector<double> sec;
      for (int r = 0; r < reps; ++r) {
        sec.push_back(t.run());
        settle(st.kind == 3 ? std::max(pause, 0.150) : pause);
      }
      std::printf(" %12.1f", 2.0 * c->M * c->N * c->K / median(sec) / 1e9);
      std::fflush(stdout);
    }
    std::printf("\n");
  }
  openblas_set_num_threads(threads);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = omp_get_max_threads(), reps = 7;
  double pause_ms = 10;
  std::string filter, json_path, core, isa = "both";
  bool check = true, ablation = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_gemm: %s needs a value (see --help)\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: bench_gemm [--threads T] [--reps R] [--filter TEXT] [--json FILE] [--isa avx512|avx2|both]\n"
          "                  [--no-check] [--ablation] [--pause-ms P] [--openblas-core NAME]\n");
      return 0;
    } else if (a == "--threads") {
      threads = std::atoi(value("--threads").c_str());
    } else if (a == "--reps") {
      reps = std::atoi(value("--reps").c_str());
    } else if (a == "--filter") {
      filter = value("--filter");
    } else if (a == "--json") {
      json_path = value("--json");
    } else if (a == "--isa") {
      isa = value("--isa");
    } else if (a == "--pause-ms") {
      pause_ms = std::atof(value("--pause-ms").c_str());
    } else if (a == "--openblas-core") {
      core = value("--openblas-core");
    } else if (a == "--no-check") {
      check = false;
    } else if (a == "--ablation") {
      ablation = true;
    } else {
      std::fprintf(stderr, "bench_gemm: unknown flag '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  if (threads < 1 || reps < 1 || pause_ms < 0) {
    std::fprintf(stderr, "bench_gemm: --threads and --reps must be >= 1, --pause-ms >= 0\n");
    return 2;
  }
  if (isa != "both" && isa != "avx512" && isa != "avx2") {
    std::fprintf(stderr, "bench_gemm: --isa must be avx512, avx2 or both (got '%s')\n", isa.c_str());
    return 2;
  }
  if (!core.empty()) {
    const char* have = std::getenv("OPENBLAS_CORETYPE");
    if (!have || core != have) {  // OpenBLAS reads it when it loads: start again with it set
      setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
      execv("/proc/self/exe", argv);
      std::fprintf(stderr, "bench_gemm: could not re-run itself with OPENBLAS_CORETYPE=%s\n", core.c_str());
      return 1;
    }
  }
  // Our contenders: the kernels asked for, fastest first; asking for one the CPU lacks is an error.
  std::vector<Ours> ours;
  if (isa != "avx2") {
    if (cpu::cpu_has_avx512()) ours.push_back({"avx512", cpu::sgemm_avx512_config, 16});
    else if (isa == "avx512") {
      std::fprintf(stderr, "bench_gemm: --isa avx512, but this CPU (or its OS) lacks AVX-512 F/VL/BW/DQ\n");
      return 1;
    }
  }
  if (isa != "avx512") {
    if (cpu::cpu_has_avx2_fma()) ours.push_back({"avx2", cpu::sgemm_avx2_config, 8});
    else if (isa == "avx2" || ours.empty()) {
      std::fprintf(stderr, "bench_gemm: this CPU has no AVX2/FMA; our fast SGEMM cannot run here\n");
      return 1;
    }
  }
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  Eigen::setNbThreads(threads);
  const double pause = pause_ms / 1000.0, after_openblas = std::max(pause, 0.150);

  const int lanes = ours.front().lanes;  // the peak of the widest kernel timed
  const double peak1 = bench::measure_fma_peak(lanes, 1), peakT = bench::measure_fma_peak(lanes, threads);
  std::printf("bench_gemm: %d thread(s), median of %d, OpenBLAS %s (core %s), Eigen %d.%d.%d (%s)\n", threads, reps,
              openblas_get_config(), openblas_get_corename(), EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION,
              EIGEN_MINOR_VERSION, Eigen::SimdInstructionSetsInUse());
  std::printf("ours: %s%s; gemm<float> uses %s (MINIDL_GEMM=%s)\n", ours.front().isa.c_str(),
              ours.size() > 1 ? (", " + ours[1].isa).c_str() : "", cpu::gemm_isa(),
              std::getenv("MINIDL_GEMM") ? std::getenv("MINIDL_GEMM") : "");
  std::printf("measured FMA peak (%d-float FMA): %.1f GFLOP/s on 1 thread, %.1f on %d\n", lanes, peak1, peakT,
              threads);
  if (ablation) return run_ablation(ours.front(), threads, reps, filter, pause);

  const size_t nk = ours.size();
  std::printf("%-44s", "case (M x N x K), GFLOP/s:");
  for (const Ours& o : ours) std::printf(" %8s", o.isa.c_str());
  std::printf(" %6s %8s %8s", "%peak", "OpenBLAS", "Eigen");
  for (const Ours& o : ours) std::printf(" %10s", (o.isa + "/OB").c_str());
  if (nk > 1) std::printf(" %10s", "512/avx2");
  std::printf(" %9s %9s\n", "err ours", "err OB");
  nlohmann::json rows = nlohmann::json::array();
  // Per-repetition ratios' medians per group: ratios[kernel][group]; "avx512/avx2" too.
  std::map<std::string, std::map<std::string, std::vector<double>>> ratios;
  for (const Case& c : make_cases()) {
    if (c.name.find(filter) == std::string::npos) continue;
    const auto A = random_floats(size_t(c.M * c.K), 11), B = random_floats(size_t(c.K * c.N), 12);
    std::vector<std::vector<float>> C_ours(nk, std::vector<float>(size_t(c.M * c.N)));
    std::vector<float> C_ob(size_t(c.M * c.N)), C_eig(C_ob.size());
    const int M = int(c.M), N = int(c.N), K = int(c.K);
    const int lda = c.ta ? M : K, ldb = c.tb ? K : N;  // A and B stored densely, row-major
    std::vector<Timer> t_k(nk);
    Timer ob, eig;
    for (size_t k = 0; k < nk; ++k)
      t_k[k].fn = [&, k] {
        ours[k].fn(cpu::SgemmConfig{}, c.ta, c.tb, c.M, c.N, c.K, 1.f, A.data(), lda, B.data(), ldb, 0.f,
                   C_ours[k].data(), c.N);
      };
    ob.fn = [&] {
      cblas_sgemm(CblasRowMajor, c.ta ? CblasTrans : CblasNoTrans, c.tb ? CblasTrans : CblasNoTrans, M, N, K, 1.f,
                  A.data(), lda, B.data(), ldb, 0.f, C_ob.data(), N);
    };
    Eigen::Map<const RowMat> eA(A.data(), c.ta ? K : M, c.ta ? M : K), eB(B.data(), c.tb ? N : K, c.tb ? K : N);
    Eigen::Map<RowMat> eC(C_eig.data(), M, N);
    eig.fn = [&] {
      if (c.ta && c.tb) eC.noalias() = eA.transpose() * eB.transpose();
      else if (c.ta) eC.noalias() = eA.transpose() * eB;
      else if (c.tb) eC.noalias() = eA * eB.transpose();
      else eC.noalias() = eA * eB;
    };
    for (Timer& t : t_k) {
      t.calibrate(0.01);
      settle(pause);
    }
    ob.calibrate(0.01);
    settle(after_openblas);
    eig.calibrate(0.01);
    settle(pause);
    std::vector<std::vector<double>> s_k(nk);
    std::vector<double> s_ob, s_eig;
    for (int r = 0; r < reps; ++r) {  // alternate: noise lands on all contenders alike
      for (size_t k = 0; k < nk; ++k) {
        s_k[k].push_back(t_k[k].run());
        settle(pause);
      }
      s_ob.push_back(ob.run());
      settle(after_openblas);
      s_eig.push_back(eig.run());
      settle(pause);
    }
    const double flop = 2.0 * c.M * c.N * c.K;
    const double g_ob = flop / median(s_ob) / 1e9, g_eig = flop / median(s_eig) / 1e9;
    // Each repetition's ratio (same moment, same noise), then the median of those.
    auto rep_ratio = [&](const std::vector<double>& num, const std::vector<double>& den) {
      std::vector<double> q;
      for (int r = 0; r < reps; ++r) q.push_back(num[size_t(r)] / den[size_t(r)]);
      return median(q);
    };
    std::vector<double> g_k(nk), vs_ob(nk);
    for (size_t k = 0; k < nk; ++k) {
      g_k[k] = flop / median(s_k[k]) / 1e9;
      vs_ob[k] = rep_ratio(s_ob, s_k[k]);
      ratios[ours[k].isa][c.group].push_back(vs_ob[k]);
      ratios[ours[k].isa]["all"].push_back(vs_ob[k]);
    }
    const double wide_vs_narrow = nk > 1 ? rep_ratio(s_k[1], s_k[0]) : 0.0;  // > 1: avx512 faster
    if (nk > 1) {
      ratios["avx512/avx2"][c.group].push_back(wide_vs_narrow);
      ratios["avx512/avx2"]["all"].push_back(wide_vs_narrow);
    }
    double err_ours = -1, err_ob = -1;
    if (check) {
      std::vector<float> C_ref(C_ob.size());
      cpu::gemm_reference<float>(c.ta, c.tb, c.M, c.N, c.K, 1.f, A.data(), lda, B.data(), ldb, 0.f, C_ref.data(),
                                 c.N);
      err_ours = max_rel_diff(C_ours[0], C_ref);
      err_ob = max_rel_diff(C_ob, C_ref);
    }
    const std::string label = c.name + " " + std::to_string(c.M) + "x" + std::to_string(c.N) + "x" +
                              std::to_string(c.K);
    std::printf("%-44s", label.c_str());
    for (double g : g_k) std::printf(" %8.1f", g);
    std::printf(" %5.0f%% %8.1f %8.1f", 100 * g_k[0] / peakT, g_ob, g_eig);
    for (double x : vs_ob) std::printf(" %10.2f", x);
    if (nk > 1) std::printf(" %10.2f", wide_vs_narrow);
    if (check)
      std::printf(" %9.1e %9.1e\n", err_ours, err_ob);
    else
      std::printf(" %9s %9s\n", "-", "-");
    std::fflush(stdout);
    nlohmann::json row = {{"case", c.name},          {"group", c.group},   {"trans_a", c.ta},
                          {"trans_b", c.tb},         {"M", c.M},           {"N", c.N},
                          {"K", c.K},                {"openblas_gflops", g_ob}, {"eigen_gflops", g_eig},
                          {"err_ours", err_ours},    {"err_openblas", err_ob}};
    for (size_t k = 0; k < nk; ++k)
      row["ours"][ours[k].isa] = {{"ms", median(s_k[k]) * 1e3},
                                  {"gflops", g_k[k]},
                                  {"pct_peak", 100 * g_k[k] / peakT},
                                  {"ratio_vs_openblas", vs_ob[k]}};
    if (nk > 1) row["ratio_avx512_vs_avx2"] = wide_vs_narrow;
    rows.push_back(row);
  }
  auto med = [&](const std::string& who, const char* g) {
    return ratios[who].count(g) ? median(ratios[who][g]) : 0.0;
  };
  auto count = [&](const std::string& who, const char* g) {
    return ratios[who].count(g) ? ratios[who][g].size() : size_t(0);
  };
  nlohmann::json summary;
  std::vector<std::string> whos;
  for (const Ours& o : ours) whos.push_back(o.isa);
  if (nk > 1) whos.push_back("avx512/avx2");
  for (const std::string& who : whos) {
    const bool vs_ob = who != "avx512/avx2";
    std::printf(
        "summary: median %s%s = %.2fx on the ResNet50 per-sample forward GEMMs (%zu), %.2fx batched x32 (%zu), "
        "%.2fx dX (%zu), %.2fx dW (%zu), %.2fx over all %zu cases; %d thread(s), OpenBLAS core %s\n",
        who.c_str(), vs_ob ? "/OpenBLAS" : " (time ratio, > 1: avx512 faster)", med(who, "rn50"),
        count(who, "rn50"), med(who, "rn50x32"), count(who, "rn50x32"), med(who, "rn50dx"), count(who, "rn50dx"),
        med(who, "rn50dw"), count(who, "rn50dw"), med(who, "all"), count(who, "all"), threads,
        openblas_get_corename());
    for (const char* g : {"rn50", "rn50x32", "rn50dx", "rn50dw", "sq", "all"}) summary[who][g] = med(who, g);
  }
  if (!json_path.empty()) {
    nlohmann::json out = {{"threads", threads},
                          {"reps", reps},
                          {"openblas_core", openblas_get_corename()},
                          {"gemm_isa", cpu::gemm_isa()},
                          {"peak_lanes", lanes},
                          {"peak_gflops_1thread", peak1},
                          {"peak_gflops_all", peakT},
                          {"rows", rows},
                          {"median_ratios", summary}};
    std::ofstream f(json_path);
    if (!f) {
      std::fprintf(stderr, "bench_gemm: cannot write --json file '%s'\n", json_path.c_str());
      return 1;
    }
    f << out.dump(2) << "\n";
  }
  return 0;
}
