// bench_gemm: our SGEMM (kernels/cpu/gemm_avx2.cpp) side by side with OpenBLAS
// (cblas_sgemm) and Eigen on square sizes and on the GEMMs of a ResNet50 at 64x64, batch 32.
// Prints a table and one summary line; never asserts on time.
//
//   build/bench/bench_gemm [--threads T] [--reps R] [--filter TEXT] [--json FILE]
//                          [--no-check] [--ablation] [--pause-ms P] [--openblas-core NAME]
//
//   --threads T   threads for all three libraries (default: OMP_NUM_THREADS or all cores)
//   --reps R      timed repetitions per case; the table shows medians (default 7)
//   --filter TEXT only the cases whose name contains TEXT (e.g. "rn50 ", "rn50x32", "rn50dx",
//                 "rn50dw", "sq")
//   --json FILE   also write every row, the measured peak and the summary as JSON
//   --no-check    skip the accuracy column (it runs gemm_reference, slow on big cases)
//   --ablation    instead of the peer table: what each optimisation step buys on a few
//                 cases (reference, packed loops, the micro-kernel, each extra path,
//                 threads), for docs/performance.md
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
// back-to-back calls to last ~10 ms; the table reports the
// median per call. Peak: a register-only FMA loop, 12 independent chains of 8-float FMAs,
// on 1 thread and on T threads. "err": max |C - C_ref| / max |C_ref| against
// gemm_reference (double accumulation), for ours and OpenBLAS.
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>
#include <unistd.h>

#include <Eigen/Core>
#include <algorithm>
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

__attribute__((target("avx2,fma"))) float fma_chains(int64_t iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(float(i));
  const __m256 m = _mm256_set1_ps(0.9999999f), a = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}

// GFLOP/s of `threads` threads each running the FMA loop (best of 3 runs of ~0.2 s).
double fma_peak(int threads) {
  const int64_t iters = 20'000'000;
  double best = 0;
  volatile float sink = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t = Clock::now();
    float s = 0;
#pragma omp parallel num_threads(threads) reduction(+ : s)
    s += fma_chains(iters);
    const double sec = seconds_since(t);
    sink = sink + s;
    best = std::max(best, double(threads) * iters * 12 * 16 / sec / 1e9);
  }
  return best;
}

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
    d = std::max(d, std::abs(double(got[i]) - double(ref[i])));
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

int run_ablation(int threads, int reps, const std::string& filter, double pause) {
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
      plus_swap{false, true, true, 1}, all1{true, true, true, 1}, allT{true, true, true, threads};
  const Step steps[] = {{"reference (double acc.), 1 thr", 1, {}, 0},
                        {"packed, plain loops, 1 thr", 1, {}, 1},
                        {"6x16 micro-kernel, all packed", 1, all_packed, 2},
                        {"+ operands read in place", 1, plus_in_place, 2},
                        {"+ swapped product", 1, plus_swap, 2},
                        {"+ dot kernel (a side <= 8)", 1, all1, 2},
                        {"+ threads", threads, allT, 2},
                        {"OpenBLAS, 1 thr", 1, {}, 3},
                        {"OpenBLAS, T thr", threads, {}, 3}};
  std::printf("ablation: GFLOP/s per step (median of %d), T = %d threads; the plain-loop step is NN only\n%-32s",
              reps, threads, "step");
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
            cpu::sgemm_avx2_config(st.cfg, c->ta, c->tb, c->M, c->N, c->K, 1.f, A.data(), lda, B.data(), ldb, 0.f,
                                   C.data(), c->N);
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
  std::string filter, json_path, core;
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
          "usage: bench_gemm [--threads T] [--reps R] [--filter TEXT] [--json FILE] [--no-check] [--ablation]\n"
          "                  [--pause-ms P] [--openblas-core NAME]\n");
      return 0;
    } else if (a == "--threads") {
      threads = std::atoi(value("--threads").c_str());
    } else if (a == "--reps") {
      reps = std::atoi(value("--reps").c_str());
    } else if (a == "--filter") {
      filter = value("--filter");
    } else if (a == "--json") {
      json_path = value("--json");
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
  if (!core.empty()) {
    const char* have = std::getenv("OPENBLAS_CORETYPE");
    if (!have || core != have) {  // OpenBLAS reads it when it loads: start again with it set
      setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
      execv("/proc/self/exe", argv);
      std::fprintf(stderr, "bench_gemm: could not re-run itself with OPENBLAS_CORETYPE=%s\n", core.c_str());
      return 1;
    }
  }
  if (!cpu::cpu_has_avx2_fma()) {
    std::fprintf(stderr, "bench_gemm: this CPU has no AVX2/FMA; our fast SGEMM cannot run here\n");
    return 1;
  }
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  Eigen::setNbThreads(threads);
  const double pause = pause_ms / 1000.0, after_openblas = std::max(pause, 0.150);

  const double peak1 = fma_peak(1), peakT = fma_peak(threads);
  std::printf("bench_gemm: %d thread(s), median of %d, OpenBLAS %s (core %s), Eigen %d.%d.%d (%s)\n", threads, reps,
              openblas_get_config(), openblas_get_corename(), EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION,
              EIGEN_MINOR_VERSION, Eigen::SimdInstructionSetsInUse());
  std::printf("measured FMA peak (AVX2, 8-float FMA): %.1f GFLOP/s on 1 thread, %.1f on %d\n", peak1, peakT,
              threads);
  if (ablation) return run_ablation(threads, reps, filter, pause);

  std::printf("%-44s %9s %8s %6s %9s %9s %7s %9s %9s\n", "case (M x N x K)", "ours ms", "GFLOP/s", "%peak",
              "OpenBLAS", "Eigen", "ours/OB", "err ours", "err OB");
  nlohmann::json rows = nlohmann::json::array();
  std::map<std::string, std::vector<double>> ratios;  // per group
  for (const Case& c : make_cases()) {
    if (c.name.find(filter) == std::string::npos) continue;
    const auto A = random_floats(size_t(c.M * c.K), 11), B = random_floats(size_t(c.K * c.N), 12);
    std::vector<float> C_ours(size_t(c.M * c.N)), C_ob(C_ours.size()), C_eig(C_ours.size());
    const int M = int(c.M), N = int(c.N), K = int(c.K);
    const int lda = c.ta ? M : K, ldb = c.tb ? K : N;  // A and B stored densely, row-major
    Timer ours, ob, eig;
    ours.fn = [&] {
      cpu::sgemm_avx2(c.ta, c.tb, c.M, c.N, c.K, 1.f, A.data(), lda, B.data(), ldb, 0.f, C_ours.data(), c.N);
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
    ours.calibrate(0.01);
    settle(pause);
    ob.calibrate(0.01);
    settle(after_openblas);
    eig.calibrate(0.01);
    settle(pause);
    std::vector<double> t_ours, t_ob, t_eig;
    for (int r = 0; r < reps; ++r) {  // alternate: noise lands on all three alike
      t_ours.push_back(ours.run());
      settle(pause);
      t_ob.push_back(ob.run());
      settle(after_openblas);
      t_eig.push_back(eig.run());
      settle(pause);
    }
    const double flop = 2.0 * c.M * c.N * c.K;
    const double s_ours = median(t_ours), s_ob = median(t_ob), s_eig = median(t_eig);
    const double g_ours = flop / s_ours / 1e9, g_ob = flop / s_ob / 1e9, g_eig = flop / s_eig / 1e9;
    // Each repetition's ratio (same moment, same noise), then the median of those.
    std::vector<double> per_rep;
    for (int r = 0; r < reps; ++r) per_rep.push_back(t_ob[size_t(r)] / t_ours[size_t(r)]);
    const double ratio = median(per_rep);
    double err_ours = -1, err_ob = -1;
    if (check) {
      std::vector<float> C_ref(C_ours.size());
      cpu::gemm_reference<float>(c.ta, c.tb, c.M, c.N, c.K, 1.f, A.data(), lda, B.data(), ldb, 0.f, C_ref.data(),
                                 c.N);
      err_ours = max_rel_diff(C_ours, C_ref);
      err_ob = max_rel_diff(C_ob, C_ref);
    }
    const std::string label = c.name + " " + std::to_string(c.M) + "x" + std::to_string(c.N) + "x" +
                              std::to_string(c.K);
    std::printf("%-44s %9.3f %8.1f %5.0f%% %9.1f %9.1f %7.2f", label.c_str(), s_ours * 1e3, g_ours,
                100 * g_ours / peakT, g_ob, g_eig, ratio);
    if (check)
      std::printf(" %9.1e %9.1e\n", err_ours, err_ob);
    else
      std::printf(" %9s %9s\n", "-", "-");
    std::fflush(stdout);
    ratios[c.group].push_back(ratio);
    ratios["all"].push_back(ratio);
    rows.push_back({{"case", c.name},
                    {"group", c.group},
                    {"trans_a", c.ta},
                    {"trans_b", c.tb},
                    {"M", c.M},
                    {"N", c.N},
                    {"K", c.K},
                    {"ours_ms", s_ours * 1e3},
                    {"ours_gflops", g_ours},
                    {"ours_pct_peak", 100 * g_ours / peakT},
                    {"openblas_gflops", g_ob},
                    {"eigen_gflops", g_eig},
                    {"ratio_vs_openblas", ratio},
                    {"err_ours", err_ours},
                    {"err_openblas", err_ob}});
  }
  auto med = [&](const char* g) { return ratios.count(g) ? median(ratios[g]) : 0.0; };
  auto count = [&](const char* g) { return ratios.count(g) ? ratios[g].size() : size_t(0); };
  std::printf(
      "summary: median ours/OpenBLAS = %.2fx on the ResNet50 per-sample forward GEMMs (%zu), %.2fx batched x32 (%zu), "
      "%.2fx dX (%zu), %.2fx dW (%zu), %.2fx over all %zu cases; %d thread(s), OpenBLAS core %s\n",
      med("rn50"), count("rn50"), med("rn50x32"), count("rn50x32"), med("rn50dx"), count("rn50dx"), med("rn50dw"),
      count("rn50dw"), med("all"), count("all"), threads, openblas_get_corename());
  if (!json_path.empty()) {
    nlohmann::json out = {{"threads", threads},
                          {"reps", reps},
                          {"openblas_core", openblas_get_corename()},
                          {"peak_gflops_1thread", peak1},
                          {"peak_gflops_all", peakT},
                          {"rows", rows},
                          {"median_ratio_rn50", med("rn50")},
                          {"median_ratio_rn50x32", med("rn50x32")},
                          {"median_ratio_rn50dx", med("rn50dx")},
                          {"median_ratio_rn50dw", med("rn50dw")},
                          {"median_ratio_all", med("all")}};
    std::ofstream f(json_path);
    if (!f) {
      std::fprintf(stderr, "bench_gemm: cannot write --json file '%s'\n", json_path.c_str());
      return 1;
    }
    f << out.dump(2) << "\n";
  }
  return 0;
}
