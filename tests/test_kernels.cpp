// CPU kernels against naive references written here: GEMM, convolution (kernels and the
// autograd op), batch norm, max/average pooling, log-softmax, cross-entropy, dropout, and
// the elementwise maps. Inputs are random, seeded, and of awkward sizes; thread counts 1
// and 2 are compared where the kernels promise determinism.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/gemm.h"
#include "tensor/parallel.h"
#include "test_util.h"

using namespace minidl;
using namespace minidl::testing;

namespace {


Tensor random_tensor(const Shape& s, uint64_t seed, DType dt = DType::Float64, double lo = -1, double hi = 1) {
  Generator g(seed);
  return rand(s, lo, hi, dt, g);
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Checks |got - ref| <= tol * mag elementwise, where mag is the same sum computed with
// absolute values: a rounding-error bound that does not blow up where terms cancel.
template <class T>
void check_within(const std::vector<T>& got, const std::vector<double>& ref, const std::vector<double>& mag,
                  double tol) {
  REQUIRE(got.size() == ref.size());
  REQUIRE(mag.size() == ref.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(double(got[i]) - ref[i]) / (mag[i] + 1e-30);
    if (!(err <= worst)) worst = err, at = i;  // NaN counts as worst
  }
  CAPTURE(at);
  CAPTURE(worst);
  CHECK(worst <= tol);
}

template <class T>
double unit_tol() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-13;
}

// ============================================================== GEMM

// C = alpha * op(A) op(B) + beta * C computed in double by the definition; mag is the same
// expression with absolute values.
template <class T>
void gemm_naive(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const std::vector<T>& A, int64_t lda,
                const std::vector<T>& B, int64_t ldb, double beta, const std::vector<T>& C0, int64_t ldc,
                std::vector<double>& ref, std::vector<double>& mag) {
  ref.assign(M * N, 0);
  mag.assign(M * N, 0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0, m = 0;
      for (int64_t p = 0; p < K; ++p) {
        const double a = ta ? A[p * lda + i] : A[i * lda + p];
        const double b = tb ? B[j * ldb + p] : B[p * ldb + j];
        s += a * b;
        m += std::abs(a * b);
      }
      const double c = beta == 0 ? 0.0 : beta * double(C0[i * ldc + j]);
      ref[i * N + j] = alpha * s + c;
      mag[i * N + j] = std::abs(alpha) * m + std::abs(c) + 1e-30;
    }
}

template <class T>
using GemmFn = void (*)(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*, int64_t);

template <class T>
void check_gemm(GemmFn<T> fn, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, T beta, uint64_t seed) {
  CAPTURE(ta);
  CAPTURE(tb);
  CAPTURE(M);
  CAPTURE(N);
  CAPTURE(K);
  CAPTURE(double(alpha));
  CAPTURE(double(beta));
  // Leading dimensions wider than the rows they hold, so row strides are exercised.
  const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K, lda = a_cols + 3;
  const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N, ldb = b_cols + 2;
  const int64_t ldc = N + 5;
  const std::vector<T> A = random_values<T>(a_rows * lda, seed);
  const std::vector<T> B = random_values<T>(b_rows * ldb, seed + 1);
  std::vector<T> C0 = random_values<T>(M * ldc, seed + 2);
  const T sentinel = T(12345.5);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = N; j < ldc; ++j) C0[i * ldc + j] = sentinel;
  if (beta == T(0))  // beta = 0 means C is write-only: even NaN there must not leak out
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C0[i * ldc + j] = std::numeric_limits<T>::quiet_NaN();

  std::vector<double> ref, mag;
  gemm_naive(ta, tb, M, N, K, double(alpha), A, lda, B, ldb, double(beta), C0, ldc, ref, mag);

  std::vector<T> C1 = C0, C2 = C0;
  {
    ThreadCountGuard one(1);
    fn(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C1.data(), ldc);
  }
  {
    ThreadCountGuard two(2);
    fn(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C2.data(), ldc);
  }
  CHECK(bitwise_equal(C1, C2));  // the thread count must not change a single bit
  std::vector<T> got(M * N);
  bool pad_intact = true;
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) got[i * N + j] = C1[i * ldc + j];
    for (int64_t j = N; j < ldc; ++j) pad_intact = pad_intact && C1[i * ldc + j] == sentinel;
  }
  CHECK(pad_intact);  // nothing written past column N of a row
  check_within(got, ref, mag, (double(K) + 2) * std::numeric_limits<T>::epsilon());
}

struct GemmSize {
  int64_t M, N, K;
};
// Includes one size above the reference kernel's parallel threshold (M*N*K > 2^18).
const GemmSize kGemmSizes[] = {{1, 1, 1}, {7, 13, 5}, {33, 17, 65}, {1, 31, 3}, {17, 1, 13}, {67, 71, 61}};

template <class T>
void run_gemm_suite(GemmFn<T> fn) {
  uint64_t seed = 100;
  for (const GemmSize& s : kGemmSizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        check_gemm<T>(fn, ta, tb, s.M, s.N, s.K, T(0.75), T(-1.25), seed += 3);
        check_gemm<T>(fn, ta, tb, s.M, s.N, s.K, T(1), T(0), seed += 3);
        check_gemm<T>(fn, ta, tb, s.M, s.N, s.K, T(-2), T(1), seed += 3);
      }
}

}  // namespace

TEST_CASE("gemm matches a triple loop: all transposes, alpha/beta, padded leading dims, float") {
  run_gemm_suite<float>(&cpu::gemm<float>);
}
TEST_CASE("gemm matches a triple loop: all transposes, alpha/beta, padded leading dims, double") {
  run_gemm_suite<double>(&cpu::gemm<double>);
}
TEST_CASE("gemm_reference matches a triple loop too") {
  run_gemm_suite<float>(&cpu::gemm_reference<float>);
  run_gemm_suite<double>(&cpu::gemm_reference<double>);
}

TEST_CASE("gemm with alpha = 0 scales C by beta only") {
  const std::vector<double> A = random_values<double>(3 * 4, 1), B = random_values<double>(4 * 5, 2);
  std::vector<double> C = random_values<double>(3 * 5, 3);
  const std::vector<double> C0 = C;
  cpu::gemm<double>(false, false, 3, 5, 4, 0.0, A.data(), 4, B.data(), 5, 0.5, C.data(), 5);
  for (size_t i = 0; i < C.size(); ++i) CHECK(C[i] == 0.5 * C0[i]);
}

// ============================================================== convolution

namespace {

struct ConvCase {
  int64_t N, C, H, W, O, KH, KW, SH, SW, PH, PW;
};

std::string describe(const ConvCase& c) {
  return detail::concat("N=", c.N, " C=", c.C, " H=", c.H, " W=", c.W, " O=", c.O, " k=", c.KH, "x", c.KW, " s=", c.SH,
                        ",", c.SW, " p=", c.PH, ",", c.PW);
}

// The convolution by its definition, in double. With `absolute` every term is replaced by its
// absolute value, which gives the magnitude the rounding error is measured against.
struct NaiveConv {
  ConvCase c;
  int64_t OH, OW;
  explicit NaiveConv(const ConvCase& cc)
      : c(cc), OH((cc.H + 2 * cc.PH - cc.KH) / cc.SH + 1), OW((cc.W + 2 * cc.PW - cc.KW) / cc.SW + 1) {}

  template <class T>
  std::vector<double> forward(const std::vector<T>& x, const std::vector<T>& w, const T* bias, bool absolute) const {
    std::vector<double> y(c.N * c.O * OH * OW);
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t o = 0; o < c.O; ++o)
        for (int64_t i = 0; i < OH; ++i)
          for (int64_t j = 0; j < OW; ++j) {
            double s = bias ? (absolute ? std::abs(double(bias[o])) : double(bias[o])) : 0.0;
            for (int64_t ci = 0; ci < c.C; ++ci)
              for (int64_t p = 0; p < c.KH; ++p)
                for (int64_t q = 0; q < c.KW; ++q) {
                  const int64_t h = i * c.SH - c.PH + p, ww = j * c.SW - c.PW + q;
                  if (h < 0 || h >= c.H || ww < 0 || ww >= c.W) continue;
                  const double t = double(x[((n * c.C + ci) * c.H + h) * c.W + ww]) *
                                   double(w[((o * c.C + ci) * c.KH + p) * c.KW + q]);
                  s += absolute ? std::abs(t) : t;
                }
            y[((n * c.O + o) * OH + i) * OW + j] = s;
          }
    return y;
  }

  // dx gathered per input pixel: which outputs (i, j) and taps (p, q) read x[n, ci, h, w]?
  template <class T>
  std::vector<double> backward_input(const std::vector<T>& dy, const std::vector<T>& w, bool absolute) const {
    std::vector<double> dx(c.N * c.C * c.H * c.W, 0.0);
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t ci = 0; ci < c.C; ++ci)
        for (int64_t h = 0; h < c.H; ++h)
          for (int64_t ww = 0; ww < c.W; ++ww) {
            double s = 0;
            for (int64_t p = 0; p < c.KH; ++p) {
              const int64_t hi = h + c.PH - p;
              if (hi < 0 || hi % c.SH != 0 || hi / c.SH >= OH) continue;
              for (int64_t q = 0; q < c.KW; ++q) {
                const int64_t wj = ww + c.PW - q;
                if (wj < 0 || wj % c.SW != 0 || wj / c.SW >= OW) continue;
                for (int64_t o = 0; o < c.O; ++o) {
                  const double t = double(dy[((n * c.O + o) * OH + hi / c.SH) * OW + wj / c.SW]) *
                                   double(w[((o * c.C + ci) * c.KH + p) * c.KW + q]);
                  s += absolute ? std::abs(t) : t;
                }
              }
            }
            dx[((n * c.C + ci) * c.H + h) * c.W + ww] = s;
          }
    return dx;
  }

  template <class T>
  void backward_weight(const std::vector<T>& dy, const std::vector<T>& x, bool absolute, std::vector<double>& dw,
                       std::vector<double>& db) const {
    dw.assign(c.O * c.C * c.KH * c.KW, 0.0);
    db.assign(c.O, 0.0);
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t o = 0; o < c.O; ++o)
        for (int64_t i = 0; i < OH; ++i)
          for (int64_t j = 0; j < OW; ++j) {
            const double d = dy[((n * c.O + o) * OH + i) * OW + j];
            db[o] += absolute ? std::abs(d) : d;
            for (int64_t ci = 0; ci < c.C; ++ci)
              for (int64_t p = 0; p < c.KH; ++p)
                for (int64_t q = 0; q < c.KW; ++q) {
                  const int64_t h = i * c.SH - c.PH + p, ww = j * c.SW - c.PW + q;
                  if (h < 0 || h >= c.H || ww < 0 || ww >= c.W) continue;
                  const double t = d * double(x[((n * c.C + ci) * c.H + h) * c.W + ww]);
                  dw[((o * c.C + ci) * c.KH + p) * c.KW + q] += absolute ? std::abs(t) : t;
                }
          }
  }
};

const ConvCase kConvCases[] = {
    {3, 5, 7, 5, 4, 1, 1, 1, 1, 0, 0},  // pointwise fast path
    {3, 5, 7, 5, 4, 1, 1, 2, 2, 0, 0},  // 1x1 stride 2 (im2col path)
    {3, 5, 7, 5, 4, 3, 3, 1, 1, 1, 1},
    {3, 5, 7, 5, 4, 3, 3, 2, 2, 1, 1},
    {3, 5, 7, 5, 4, 7, 7, 2, 2, 3, 3},  // the ResNet stem shape, on a tiny image
    {3, 5, 7, 5, 4, 3, 2, 2, 1, 1, 0},  // non-square kernel, stride and padding
    {3, 5, 7, 5, 4, 2, 3, 1, 3, 0, 2},
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
    {2, 3, 1, 1, 5, 3, 3, 1, 1, 1, 1},  // a 1x1 image under a padded 3x3 kernel
    {5, 3, 13, 11, 7, 5, 5, 2, 2, 2, 2},
    {5, 7, 17, 13, 11, 3, 3, 1, 1, 1, 1},  // N*O*K*P above 2^18: the kernels' parallel path
};

// Big enough that the conv kernels open their parallel regions (N*O*C*KH*KW*OH*OW > 2^18).
const ConvCase kParallelConv{5, 7, 17, 13, 11, 3, 3, 1, 1, 1, 1};

cpu::ConvGeom geom(const ConvCase& c) {
  return cpu::make_conv_geom(c.N, c.C, c.H, c.W, c.O, c.KH, c.KW, c.SH, c.SW, c.PH, c.PW);
}

template <class T>
void check_conv_kernels(const ConvCase& cc, bool with_bias, uint64_t seed) {
  CAPTURE(describe(cc));
  CAPTURE(with_bias);
  const cpu::ConvGeom g = geom(cc);
  const NaiveConv ref(cc);
  REQUIRE(g.OH == ref.OH);
  REQUIRE(g.OW == ref.OW);
  const auto x = random_values<T>(cc.N * cc.C * cc.H * cc.W, seed);
  const auto w = random_values<T>(cc.O * cc.C * cc.KH * cc.KW, seed + 1);
  const auto b = random_values<T>(cc.O, seed + 2);
  const auto dy = random_values<T>(cc.N * cc.O * g.OH * g.OW, seed + 3);
  const T* bias = with_bias ? b.data() : nullptr;
  const double tol = unit_tol<T>();
  const T nan = std::numeric_limits<T>::quiet_NaN();

  // Forward: both kernels against the definition. Outputs start as NaN: every element must be written.
  const auto y_ref = ref.forward(x, w, bias, false), y_mag = ref.forward(x, w, bias, true);
  std::vector<T> y(y_ref.size(), nan), y_lib(y_ref.size(), nan);
  cpu::conv2d_forward<T>(g, x.data(), w.data(), bias, y.data());
  cpu::conv2d_reference_forward<T>(g, x.data(), w.data(), bias, y_lib.data());
  check_within(y, y_ref, y_mag, tol);
  check_within(y_lib, y_ref, y_mag, tol);

  // Backward to the input.
  const auto dx_ref = ref.backward_input(dy, w, false), dx_mag = ref.backward_input(dy, w, true);
  std::vector<T> dx(dx_ref.size(), nan), dx_lib(dx_ref.size(), nan);
  cpu::conv2d_backward_input<T>(g, dy.data(), w.data(), dx.data());
  cpu::conv2d_reference_backward_input<T>(g, dy.data(), w.data(), dx_lib.data());
  check_within(dx, dx_ref, dx_mag, tol);
  check_within(dx_lib, dx_ref, dx_mag, tol);

  // Backward to weight and bias (bias gradient optional).
  std::vector<double> dw_ref, db_ref, dw_mag, db_mag;
  ref.backward_weight(dy, x, false, dw_ref, db_ref);
  ref.backward_weight(dy, x, true, dw_mag, db_mag);
  std::vector<T> dw(dw_ref.size(), nan), db(cc.O, nan), dw_lib(dw_ref.size(), nan), db_lib(cc.O, nan);
  cpu::conv2d_backward_weight<T>(g, dy.data(), x.data(), dw.data(), with_bias ? db.data() : nullptr);
  cpu::conv2d_reference_backward_weight<T>(g, dy.data(), x.data(), dw_lib.data(), with_bias ? db_lib.data() : nullptr);
  check_within(dw, dw_ref, dw_mag, tol);
  check_within(dw_lib, dw_ref, dw_mag, tol);
  if (with_bias) {
    check_within(db, db_ref, db_mag, tol);
    check_within(db_lib, db_ref, db_mag, tol);
  } else {
    CHECK(std::isnan(double(db[0])));  // nullptr db: nothing written anywhere else
  }
}

}  // namespace

TEST_CASE("conv2d kernels (im2col + GEMM) and references match a nested-loop convolution") {
  uint64_t seed = 500;
  for (const ConvCase& cc : kConvCases)
    for (bool with_bias : {false, true}) {
      check_conv_kernels<float>(cc, with_bias, seed += 7);
      check_conv_kernels<double>(cc, with_bias, seed += 7);
    }
}

TEST_CASE("im2col lays out patches by definition and col2im is its adjoint") {
  const ConvCase cc{1, 3, 7, 5, 1, 3, 2, 2, 1, 1, 1};
  const cpu::ConvGeom g = geom(cc);
  const auto x = random_values<double>(cc.C * cc.H * cc.W, 601);
  std::vector<double> col(g.col_rows() * g.col_cols(), std::nan(""));
  cpu::im2col<double>(g, x.data(), col.data());
  for (int64_t c = 0; c < cc.C; ++c)
    for (int64_t p = 0; p < cc.KH; ++p)
      for (int64_t q = 0; q < cc.KW; ++q)
        for (int64_t i = 0; i < g.OH; ++i)
          for (int64_t j = 0; j < g.OW; ++j) {
            const int64_t h = i * cc.SH - cc.PH + p, w = j * cc.SW - cc.PW + q;
            const double expect = (h >= 0 && h < cc.H && w >= 0 && w < cc.W) ? x[(c * cc.H + h) * cc.W + w] : 0.0;
            REQUIRE(col[((c * cc.KH + p) * cc.KW + q) * g.col_cols() + i * g.OW + j] == expect);
          }
  // <im2col(x), r> == <x, col2im(r)> for any r.
  const auto r = random_values<double>(col.size(), 602);
  std::vector<double> back(x.size(), 0.0), consumed = r;  // col2im may zero its padding entries
  cpu::col2im<double>(g, consumed.data(), back.data());
  double lhs = 0, rhs = 0;
  for (size_t i = 0; i < col.size(); ++i) lhs += col[i] * r[i];
  for (size_t i = 0; i < x.size(); ++i) rhs += x[i] * back[i];
  CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
}

TEST_CASE("conv2d kernels give identical bits for 1 and 2 threads, the weight gradient included") {
  const ConvCase cc = kParallelConv;
  const cpu::ConvGeom g = geom(cc);
  const auto x = random_values<float>(cc.N * cc.C * cc.H * cc.W, 701);
  const auto w = random_values<float>(cc.O * cc.C * cc.KH * cc.KW, 702);
  const auto b = random_values<float>(cc.O, 703);
  const auto dy = random_values<float>(cc.N * cc.O * g.OH * g.OW, 704);
  auto run = [&](int threads, std::vector<float>& y, std::vector<float>& dx, std::vector<float>& dw,
                 std::vector<float>& db) {
    ThreadCountGuard tc(threads);
    y.assign(cc.N * cc.O * g.OH * g.OW, 0);
    dx.assign(x.size(), 0);
    dw.assign(w.size(), 0);
    db.assign(cc.O, 0);
    cpu::conv2d_forward<float>(g, x.data(), w.data(), b.data(), y.data());
    cpu::conv2d_backward_input<float>(g, dy.data(), w.data(), dx.data());
    cpu::conv2d_backward_weight<float>(g, dy.data(), x.data(), dw.data(), db.data());
  };
  std::vector<float> y1, dx1, dw1, db1, y2, dx2, dw2, db2, y2b, dx2b, dw2b, db2b;
  run(1, y1, dx1, dw1, db1);
  run(2, y2, dx2, dw2, db2);
  run(2, y2b, dx2b, dw2b, db2b);
  CHECK(bitwise_equal(y1, y2));
  CHECK(bitwise_equal(dx1, dx2));
  CHECK(bitwise_equal(db1, db2));
  // The weight gradient sums the samples in lanes fixed by the shape (conv2d.cpp), not in
  // per-thread partials, so its bits do not depend on the thread count either.
  CHECK(bitwise_equal(dw1, dw2));
  CHECK(bitwise_equal(dw2, dw2b));
  CHECK(bitwise_equal(y2, y2b));
  CHECK(bitwise_equal(dx2, dx2b));
}

// conv2d_backward_weight used to split the batch over omp_get_max_threads() blocks; when the
// parallel region is given fewer threads (OMP_THREAD_LIMIT, OMP_DYNAMIC, max-active-levels 0)
// the missing threads' blocks were never computed and dW was silently wrong. It now splits
// by the threads actually started.
TEST_CASE("conv2d_backward_weight is right when the runtime grants fewer threads") {
  const ConvCase cc = kParallelConv;
  const cpu::ConvGeom g = geom(cc);
  const auto x = random_values<float>(cc.N * cc.C * cc.H * cc.W, 711);
  const auto dy = random_values<float>(cc.N * cc.O * g.OH * g.OW, 712);
  std::vector<float> dw(cc.O * cc.C * cc.KH * cc.KW), dw_ref(dw.size());
  cpu::conv2d_reference_backward_weight<float>(g, dy.data(), x.data(), dw_ref.data(), nullptr);
  ThreadCountGuard two(2);
  const int levels = omp_get_max_active_levels();
  omp_set_max_active_levels(0);  // every parallel region now runs with one thread
  cpu::conv2d_backward_weight<float>(g, dy.data(), x.data(), dw.data(), nullptr);
  omp_set_max_active_levels(levels);
  double worst = 0;
  for (size_t i = 0; i < dw.size(); ++i) worst = std::max(worst, double(std::abs(dw[i] - dw_ref[i])));
  CHECK(worst < 1e-4);  // got ~10: the second half of the batch is missing
}

namespace {
// The conv2d op's output and gradients against the reference kernels, through autograd.
template <class T>
void check_conv_op(const ConvCase& cc, bool with_bias, uint64_t seed) {
  CAPTURE(describe(cc));
  CAPTURE(with_bias);
  const DType dt = dtype_of<T>();
  const cpu::ConvGeom g = geom(cc);
  Tensor x = random_tensor({cc.N, cc.C, cc.H, cc.W}, seed, dt).requires_grad_();
  Tensor w = random_tensor({cc.O, cc.C, cc.KH, cc.KW}, seed + 1, dt).requires_grad_();
  Tensor b = with_bias ? random_tensor({cc.O}, seed + 2, dt).requires_grad_() : Tensor();
  Tensor gy = random_tensor({cc.N, cc.O, g.OH, g.OW}, seed + 3, dt);
  Tensor y = conv2d(x, w, b, Conv2dOptions{cc.SH, cc.SW, cc.PH, cc.PW});
  REQUIRE(y.shape() == Shape{cc.N, cc.O, g.OH, g.OW});
  CHECK(y.grad_fn()->name == "conv2d");
  sum(y * gy).backward();

  const auto xv = x.to_vector<T>(), wv = w.to_vector<T>(), gv = gy.to_vector<T>();
  std::vector<T> bv = with_bias ? b.to_vector<T>() : std::vector<T>();
  std::vector<T> y_ref(y.numel()), dx_ref(x.numel()), dw_ref(w.numel()), db_ref(cc.O);
  cpu::conv2d_reference_forward<T>(g, xv.data(), wv.data(), with_bias ? bv.data() : nullptr, y_ref.data());
  cpu::conv2d_reference_backward_input<T>(g, gv.data(), wv.data(), dx_ref.data());
  cpu::conv2d_reference_backward_weight<T>(g, gv.data(), xv.data(), dw_ref.data(), db_ref.data());
  const double tol = std::is_same_v<T, float> ? 1e-4 : 1e-12;
  auto as_double = [](const std::vector<T>& v) { return std::vector<double>(v.begin(), v.end()); };
  // Values are O(1..10); a floor of 1 makes this an absolute check for the small ones.
  CHECK(max_rel_error(y.to_vector<double>(), as_double(y_ref), 1.0) < tol);
  CHECK(max_rel_error(x.grad().to_vector<double>(), as_double(dx_ref), 1.0) < tol);
  CHECK(max_rel_error(w.grad().to_vector<double>(), as_double(dw_ref), 1.0) < tol);
  if (with_bias) CHECK(max_rel_error(b.grad().to_vector<double>(), as_double(db_ref), 1.0) < tol);
}
}  // namespace

TEST_CASE("the conv2d op's output and gradients match the reference kernels") {
  uint64_t seed = 800;
  for (const ConvCase& cc : kConvCases)
    for (bool with_bias : {false, true}) {
      check_conv_op<float>(cc, with_bias, seed += 5);
      check_conv_op<double>(cc, with_bias, seed += 5);
    }
  // Only the input requires grad; a permuted (non-contiguous) input reads the same values.
  Tensor base = random_tensor({3, 7, 5, 5}, 880).requires_grad_();  // [N, H, W, C]
  Tensor x = base.permute({0, 3, 1, 2});                                // [N, C, H, W]
  Tensor w = random_tensor({4, 5, 3, 3}, 881);
  Tensor y = conv2d(x, w, Tensor(), 2, 1);
  Tensor y_ref = conv2d(x.contiguous().detach(), w, Tensor(), 2, 1);
  CHECK(max_rel_error(y, y_ref) < 1e-14);
  sum(y).backward();
  CHECK(base.grad().shape() == base.shape());
  CHECK_FALSE(w.grad().defined());
}

// ============================================================== batch norm

namespace {
// Per-channel mean and biased variance of x [N, C, HW...], in double.
void channel_stats(const Tensor& x, std::vector<double>& mean, std::vector<double>& var) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.numel() / (N * C);
  const std::vector<double> v = x.to_vector<double>();
  mean.assign(C, 0);
  var.assign(C, 0);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) mean[c] += v[(n * C + c) * HW + i];
    mean[c] /= double(N * HW);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) var[c] += std::pow(v[(n * C + c) * HW + i] - mean[c], 2);
    var[c] /= double(N * HW);
  }
}

std::vector<double> bn_expected(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& var,
                                const Tensor& gamma, const Tensor& beta, double eps) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.numel() / (N * C);
  const std::vector<double> v = x.to_vector<double>();
  std::vector<double> y(v.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < HW; ++i) {
        const int64_t k = (n * C + c) * HW + i;
        y[k] = (v[k] - mean[c]) / std::sqrt(var[c] + eps) * gamma.at({c}) + beta.at({c});
      }
  return y;
}

// Channels with different means and scales, so per-channel statistics matter.
Tensor bn_input(const Shape& s, uint64_t seed, DType dt) {
  Tensor x = random_tensor(s, seed, DType::Float64, -1, 1);
  std::vector<double> v = x.to_vector<double>();
  const int64_t C = s[1], HW = shape_numel(s) / (s[0] * C);
  for (size_t k = 0; k < v.size(); ++k) {
    const int64_t c = (int64_t(k) / HW) % C;
    v[k] = v[k] * (0.5 + c) + 3.0 * c - 4.0;
  }
  return from_vector(v, s).to(dt);
}

void check_bn_training(const Shape& shape, DType dt, double momentum, uint64_t seed) {
  CAPTURE(shape_str(shape));
  CAPTURE(dtype_name(dt));
  const double tol = dt == DType::Float32 ? 2e-5 : 1e-12;
  const double eps = 1e-5;
  const int64_t C = shape[1];
  const double M = double(shape_numel(shape) / C);
  Tensor gamma = random_tensor({C}, seed, dt, 0.5, 1.5), beta = random_tensor({C}, seed + 1, dt);
  Tensor rm = random_tensor({C}, seed + 2, dt), rv = random_tensor({C}, seed + 3, dt, 0.5, 2.0);
  std::vector<double> rm_exp = rm.to_vector<double>(), rv_exp = rv.to_vector<double>();

  for (int step = 0; step < 2; ++step) {
    CAPTURE(step);
    Tensor x = bn_input(shape, seed + 10 + step, dt);
    std::vector<double> mean, var;
    channel_stats(x, mean, var);
    Tensor y = batch_norm(x, gamma, beta, rm, rv, /*training=*/true, momentum, eps);
    REQUIRE(y.shape() == shape);
    CHECK(max_rel_error(y.to_vector<double>(), bn_expected(x, mean, var, gamma, beta, eps), 1e-2) < tol * 10);
    for (int64_t c = 0; c < C; ++c) {
      rm_exp[c] = (1 - momentum) * rm_exp[c] + momentum * mean[c];
      rv_exp[c] = (1 - momentum) * rv_exp[c] + momentum * var[c] * M / (M - 1);  // unbiased
    }
    CHECK(max_rel_error(rm.to_vector<double>(), rm_exp, 1e-3) < tol);
    CHECK(max_rel_error(rv.to_vector<double>(), rv_exp, 1e-3) < tol);
  }

  // Eval: the running statistics normalise, and stay as they are.
  Tensor x = bn_input(shape, seed + 20, dt);
  Tensor y = batch_norm(x, gamma, beta, rm, rv, /*training=*/false, momentum, eps);
  CHECK(max_rel_error(y.to_vector<double>(), bn_expected(x, rm_exp, rv_exp, gamma, beta, eps), 1e-2) < tol * 10);
  CHECK(max_rel_error(rm.to_vector<double>(), rm_exp, 1e-3) < tol);
  CHECK(max_rel_error(rv.to_vector<double>(), rv_exp, 1e-3) < tol);
}
}  // namespace

TEST_CASE("batch_norm in training uses batch statistics and updates running stats like PyTorch") {
  check_bn_training({3, 5, 7, 5}, DType::Float64, 0.1, 900);
  check_bn_training({3, 5, 7, 5}, DType::Float32, 0.1, 910);
  check_bn_training({13, 7}, DType::Float64, 0.1, 920);  // [N, C] input
  check_bn_training({13, 7}, DType::Float32, 0.1, 930);
  check_bn_training({2, 3, 1, 1}, DType::Float64, 0.3, 940);  // another momentum, M = 2
}

TEST_CASE("batch_norm with a known small example") {
  // One channel, values 1, 2, 3, 6: mean 3, biased var 3.5, unbiased var 14/3.
  Tensor x = from_vector(std::vector<double>{1, 2, 3, 6}, {4, 1});
  Tensor gamma = full({1}, 2.0, DType::Float64), beta = full({1}, 0.5, DType::Float64);
  Tensor rm = zeros({1}, DType::Float64), rv = ones({1}, DType::Float64);
  Tensor y = batch_norm(x, gamma, beta, rm, rv, true, 0.1, 1e-5);
  const double inv = 1 / std::sqrt(3.5 + 1e-5);
  const std::vector<double> xv{1, 2, 3, 6};
  for (int64_t i = 0; i < 4; ++i) CHECK(y.at({i, 0}) == doctest::Approx((xv[i] - 3) * inv * 2 + 0.5).epsilon(1e-12));
  CHECK(rm.item() == doctest::Approx(0.3).epsilon(1e-14));
  CHECK(rv.item() == doctest::Approx(0.9 + 0.1 * 14.0 / 3.0).epsilon(1e-14));
  // Without running buffers, training mode still normalises with the batch statistics.
  Tensor y2 = batch_norm(x, gamma, beta, Tensor(), Tensor(), true);
  CHECK(max_rel_error(y2, y) < 1e-15);
}

namespace {
// Central differences in float64 of L = sum(batch_norm(x) * G) with respect to one tensor.
double bn_loss(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& rm, const Tensor& rv,
               bool training, const Tensor& G) {
  NoGradGuard ng;
  Tensor r = training ? Tensor() : rm.clone(), v = training ? Tensor() : rv.clone();
  return sum(batch_norm(x, gamma, beta, r, v, training) * G).item();
}

std::vector<double> numeric_grad(Tensor& target, const std::function<double()>& loss) {
  std::vector<double> out(target.numel());
  double* p = target.data<double>();
  const double h = 1e-6;
  for (int64_t i = 0; i < target.numel(); ++i) {
    const double keep = p[i];
    p[i] = keep + h;
    const double up = loss();
    p[i] = keep - h;
    const double down = loss();
    p[i] = keep;
    out[i] = (up - down) / (2 * h);
  }
  return out;
}
}  // namespace

TEST_CASE("batch_norm gradients match central differences, training and eval") {
  for (bool training : {true, false}) {
    CAPTURE(training);
    Tensor x = bn_input({2, 3, 2, 3}, 950, DType::Float64).requires_grad_();
    Tensor gamma = random_tensor({3}, 951, DType::Float64, 0.5, 1.5).requires_grad_();
    Tensor beta = random_tensor({3}, 952, DType::Float64).requires_grad_();
    Tensor rm = random_tensor({3}, 953), rv = random_tensor({3}, 954, DType::Float64, 0.5, 2.0);
    Tensor G = random_tensor({2, 3, 2, 3}, 955);
    Tensor r = rm.clone(), v = rv.clone();
    sum(batch_norm(x, gamma, beta, r, v, training) * G).backward();
    Tensor xd = x.detach(), gd = gamma.detach(), bd = beta.detach();
    auto loss = [&] { return bn_loss(xd, gd, bd, rm, rv, training, G); };
    CHECK(max_rel_error(x.grad().to_vector<double>(), numeric_grad(xd, loss), 1e-3) < 1e-6);
    CHECK(max_rel_error(gamma.grad().to_vector<double>(), numeric_grad(gd, loss), 1e-3) < 1e-6);
    CHECK(max_rel_error(beta.grad().to_vector<double>(), numeric_grad(bd, loss), 1e-3) < 1e-6);
  }
}

// ============================================================== pooling

namespace {
struct PoolCase {
  int64_t N, C, H, W, K, S, P;
};

// Max pool by definition: padding is never a candidate; ties keep the first element in
// row-major window order. Returns the output and the flat plane index of each winner.
void naive_maxpool(const PoolCase& pc, const std::vector<double>& x, std::vector<double>& y,
                   std::vector<int64_t>& arg, int64_t& OH, int64_t& OW) {
  OH = (pc.H + 2 * pc.P - pc.K) / pc.S + 1;
  OW = (pc.W + 2 * pc.P - pc.K) / pc.S + 1;
  y.assign(pc.N * pc.C * OH * OW, 0);
  arg.assign(y.size(), -1);
  for (int64_t nc = 0; nc < pc.N * pc.C; ++nc)
    for (int64_t i = 0; i < OH; ++i)
      for (int64_t j = 0; j < OW; ++j) {
        double best = 0;
        int64_t at = -1;
        for (int64_t p = 0; p < pc.K; ++p)
          for (int64_t q = 0; q < pc.K; ++q) {
            const int64_t h = i * pc.S - pc.P + p, w = j * pc.S - pc.P + q;
            if (h < 0 || h >= pc.H || w < 0 || w >= pc.W) continue;
            const double v = x[nc * pc.H * pc.W + h * pc.W + w];
            if (at < 0 || v > best) best = v, at = h * pc.W + w;
          }
        y[(nc * OH + i) * OW + j] = best;
        arg[(nc * OH + i) * OW + j] = at;
      }
}

void check_maxpool(const PoolCase& pc, const std::vector<double>& x64, DType dt) {
  // The reference sees exactly the values the op sees (rounded to float32 when dt is).
  const std::vector<double> xv = from_vector(x64).to(dt).to_vector<double>();
  CAPTURE(pc.H);
  CAPTURE(pc.W);
  CAPTURE(pc.K);
  CAPTURE(pc.S);
  CAPTURE(pc.P);
  std::vector<double> y_ref;
  std::vector<int64_t> arg;
  int64_t OH, OW;
  naive_maxpool(pc, xv, y_ref, arg, OH, OW);
  Tensor x = from_vector(xv, {pc.N, pc.C, pc.H, pc.W}).to(dt).requires_grad_();
  Tensor y = max_pool2d(x, pc.K, pc.S, pc.P);
  REQUIRE(y.shape() == Shape{pc.N, pc.C, OH, OW});
  CHECK(y.to_vector<double>() == y_ref);  // max is exact: no tolerance
  Tensor G = random_tensor({pc.N, pc.C, OH, OW}, 1000 + pc.H * 7 + pc.K, dt);
  sum(y * G).backward();
  std::vector<double> dx_ref(xv.size(), 0.0);
  const std::vector<double> gv = G.to_vector<double>();
  for (int64_t nc = 0; nc < pc.N * pc.C; ++nc)
    for (int64_t o = 0; o < OH * OW; ++o) dx_ref[nc * pc.H * pc.W + arg[nc * OH * OW + o]] += gv[nc * OH * OW + o];
  CHECK(max_rel_error(x.grad().to_vector<double>(), dx_ref, 1e-3) < (dt == DType::Float32 ? 1e-6 : 1e-15));
}

const PoolCase kPoolCases[] = {
    {2, 3, 7, 9, 3, 2, 1}, {1, 2, 13, 5, 3, 2, 1}, {2, 2, 7, 7, 2, 2, 0}, {1, 3, 5, 6, 3, 1, 0},
    {2, 1, 4, 4, 2, 1, 1}, {1, 1, 1, 1, 1, 1, 0},  {1, 2, 3, 3, 3, 3, 1}, {3, 2, 11, 11, 3, 2, 1},
};
}  // namespace

TEST_CASE("max_pool2d matches a direct loop; its gradient lands on the winners") {
  uint64_t seed = 1100;
  for (const PoolCase& pc : kPoolCases)
    for (DType dt : {DType::Float32, DType::Float64}) {
      const int64_t n = pc.N * pc.C * pc.H * pc.W;
      check_maxpool(pc, random_values<double>(n, seed += 3), dt);
      // All negative: a padded zero would win if padding took part.
      std::vector<double> neg = random_values<double>(n, seed += 3, -10, -1);
      check_maxpool(pc, neg, dt);
      // Few distinct values: many ties, which must go to the first element in the window.
      std::vector<double> ties = random_values<double>(n, seed += 3, 0, 3);
      for (double& v : ties) v = std::floor(v);
      check_maxpool(pc, ties, dt);
    }
}

TEST_CASE("max_pool2d ties and padding on hand-made inputs") {
  // A constant 3x3 plane, 2x2 windows with stride 1: each window's first element wins.
  Tensor x = full({1, 1, 3, 3}, 4.0, DType::Float64).requires_grad_();
  Tensor y = max_pool2d(x, 2, 1);
  REQUIRE(y.shape() == Shape{1, 1, 2, 2});
  for (double v : y.to_vector<double>()) CHECK(v == 4.0);
  sum(y).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 1, 0, 1, 1, 0, 0, 0, 0});

  // All -5 with 3x3/2 padding 1 on a 3x3 plane: output -5, never the padding's zero; each
  // window's winner is its first real element.
  Tensor z = full({1, 1, 3, 3}, -5.0, DType::Float64).requires_grad_();
  Tensor yz = max_pool2d(z, 3, 2, 1);
  REQUIRE(yz.shape() == Shape{1, 1, 2, 2});
  for (double v : yz.to_vector<double>()) CHECK(v == -5.0);
  sum(yz).backward();
  // Windows start at (-1,-1), (-1,1), (1,-1), (1,1): first real elements (0,0), (0,1), (1,0), (1,1).
  CHECK(z.grad().to_vector<double>() == std::vector<double>{1, 1, 0, 1, 1, 0, 0, 0, 0});
}

TEST_CASE("adaptive_avg_pool2d_1x1 averages each plane; gradient spreads evenly") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor x = random_tensor({3, 5, 7, 5}, 1200, dt).requires_grad_();
    Tensor y = adaptive_avg_pool2d_1x1(x);
    REQUIRE(y.shape() == Shape{3, 5, 1, 1});
    const std::vector<double> xv = x.to_vector<double>();
    std::vector<double> ref(15, 0);
    for (int64_t nc = 0; nc < 15; ++nc) {
      for (int64_t k = 0; k < 35; ++k) ref[nc] += xv[nc * 35 + k];
      ref[nc] /= 35;
    }
    CHECK(max_rel_error(y.to_vector<double>(), ref, 1e-3) < (dt == DType::Float32 ? 1e-6 : 1e-14));
    Tensor G = random_tensor({3, 5, 1, 1}, 1201, dt);
    sum(y * G).backward();
    const std::vector<double> gv = G.to_vector<double>(), dx = x.grad().to_vector<double>();
    std::vector<double> dx_ref(dx.size());
    for (size_t k = 0; k < dx.size(); ++k) dx_ref[k] = gv[k / 35] / 35;
    CHECK(max_rel_error(dx, dx_ref, 1e-3) < (dt == DType::Float32 ? 1e-6 : 1e-15));
  }
}

// ============================================================== softmax and losses

TEST_CASE("log_softmax: rows exponentiate to 1, match log-sum-exp, and stay finite for large logits") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    CAPTURE(dtype_name(dt));
    const double tol = dt == DType::Float32 ? 1e-6 : 1e-14;
    Tensor x = random_tensor({7, 13}, 1300, dt, -5, 5).requires_grad_();
    Tensor y = log_softmax(x);
    REQUIRE(y.shape() == Shape{7, 13});
    const std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
    for (int64_t n = 0; n < 7; ++n) {
      double lse = 0, total = 0;
      for (int64_t c = 0; c < 13; ++c) lse += std::exp(xv[n * 13 + c]);
      lse = std::log(lse);
      for (int64_t c = 0; c < 13; ++c) {
        CHECK(yv[n * 13 + c] == doctest::Approx(xv[n * 13 + c] - lse).epsilon(tol * 10));
        total += std::exp(yv[n * 13 + c]);
      }
      CHECK(total == doctest::Approx(1.0).epsilon(tol * 10));
    }
    // Backward: dx = dy - softmax * sum(dy).
    Tensor G = random_tensor({7, 13}, 1301, dt);
    sum(y * G).backward();
    const std::vector<double> gv = G.to_vector<double>();
    std::vector<double> dx_ref(gv.size());
    for (int64_t n = 0; n < 7; ++n) {
      double s = 0;
      for (int64_t c = 0; c < 13; ++c) s += gv[n * 13 + c];
      for (int64_t c = 0; c < 13; ++c) dx_ref[n * 13 + c] = gv[n * 13 + c] - std::exp(yv[n * 13 + c]) * s;
    }
    CHECK(max_rel_error(x.grad().to_vector<double>(), dx_ref, 1e-3) < tol * 100);

    // Large logits: no overflow, and shifts do not change the result. dim = -1 is the same dim.
    Tensor big = from_vector(std::vector<double>{1000, 1001, 999, -1000, -1001, -999}, {2, 3}).to(dt);
    Tensor lb = log_softmax(big, -1);
    const std::vector<double> lv = lb.to_vector<double>();
    const double l0 = -std::log(1 + std::exp(-1.0) + std::exp(-2.0));  // log-prob of the largest
    const std::vector<double> expect{l0 - 1, l0, l0 - 2, l0 - 1, l0 - 2, l0};
    for (size_t i = 0; i < lv.size(); ++i) {
      CHECK(std::isfinite(lv[i]));
      CHECK(lv[i] == doctest::Approx(expect[i]).epsilon(1e-6));
    }
  }
}

TEST_CASE("cross_entropy matches the direct formula with and without label smoothing; gradient (softmax - q)/N") {
  const int64_t N = 7, C = 13;
  const std::vector<int64_t> labels_v{0, 12, 5, 5, 3, 9, 1};
  Tensor labels = from_vector(labels_v);
  for (DType dt : {DType::Float32, DType::Float64})
    for (double eps : {0.0, 0.1}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(eps);
      const double tol = dt == DType::Float32 ? 2e-6 : 1e-13;
      Tensor x = random_tensor({N, C}, 1400, dt, -4, 4).requires_grad_();
      Tensor loss = cross_entropy(x, labels, eps);
      CHECK(loss.dim() == 0);
      CHECK(loss.dtype() == dt);
      const std::vector<double> xv = x.to_vector<double>();
      // PyTorch: loss_n = (1 - eps) * nll_n + eps * mean_c(-log p_c); mean over n.
      double expect = 0;
      std::vector<double> grad_ref(N * C);
      for (int64_t n = 0; n < N; ++n) {
        double m = -1e300, s = 0;
        for (int64_t c = 0; c < C; ++c) m = std::max(m, xv[n * C + c]);
        for (int64_t c = 0; c < C; ++c) s += std::exp(xv[n * C + c] - m);
        const double lse = m + std::log(s);
        double mean_neg_logp = 0;
        for (int64_t c = 0; c < C; ++c) mean_neg_logp += (lse - xv[n * C + c]) / C;
        expect += (1 - eps) * (lse - xv[n * C + labels_v[n]]) + eps * mean_neg_logp;
        for (int64_t c = 0; c < C; ++c) {
          const double q = (c == labels_v[n] ? 1 - eps : 0.0) + eps / C;
          grad_ref[n * C + c] = 3.0 * (std::exp(xv[n * C + c] - lse) - q) / N;
        }
      }
      expect /= N;
      CHECK(loss.item() == doctest::Approx(expect).epsilon(tol));
      (loss * 3.0).backward();  // the incoming gradient scales the result
      CHECK(max_rel_error(x.grad().to_vector<double>(), grad_ref, 1e-3) < tol * 10);
    }

  // Large logits stay finite; a confident right answer has a loss near zero.
  Tensor big = from_vector(std::vector<double>{1000, 1001, 999, 0, 0, 1000}, {2, 3});
  Tensor lb = cross_entropy(big, from_vector(std::vector<int64_t>{1, 2}));
  const double l0 = std::log(1 + std::exp(-1.0) + std::exp(-2.0));
  CHECK(std::isfinite(lb.item()));
  CHECK(lb.item() == doctest::Approx(l0 / 2).epsilon(1e-12));  // the second row contributes ~e^-1000
}

// ============================================================== dropout

TEST_CASE("dropout: seeded mask is reproducible, kept values scale by 1/(1-p), eval is identity") {
  const double p = 0.3;
  Tensor x = random_tensor({100003}, 1500, DType::Float32, 0.5, 1.5);  // no zeros in x
  Generator g1(42), g2(42), g3(43);
  Tensor a = dropout(x, p, true, g1), b = dropout(x, p, true, g2), c = dropout(x, p, true, g3);
  const std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>(), cv = c.to_vector<float>();
  CHECK(bitwise_equal(av, bv));
  CHECK_FALSE(bitwise_equal(av, cv));
  const std::vector<float> xv = x.to_vector<float>();
  const float keep = static_cast<float>(1.0 / (1.0 - p));
  int64_t kept = 0, bad = 0;
  Generator replay(42);  // the mask is drawn in row-major order: kept where uniform() >= p
  for (size_t i = 0; i < xv.size(); ++i) {
    const bool should_keep = !(replay.uniform() < p);
    if (av[i] != 0) {
      ++kept;
      bad += std::abs(av[i] - xv[i] * keep) > 1e-6f * std::abs(xv[i] * keep);
    }
    bad += should_keep != (av[i] != 0);
  }
  CHECK(bad == 0);
  CHECK(double(kept) / double(xv.size()) == doctest::Approx(1 - p).epsilon(0.01));

  // The gradient is the same mask.
  Tensor xg = x.clone().detach().requires_grad_();
  Generator g4(42);
  Tensor d = dropout(xg, p, true, g4);
  Tensor G = random_tensor({100003}, 1501, DType::Float32);
  sum(d * G).backward();
  const std::vector<float> gx = xg.grad().to_vector<float>(), gv = G.to_vector<float>();
  int64_t wrong = 0;
  for (size_t i = 0; i < gx.size(); ++i) {
    const float expect = av[i] != 0 ? gv[i] * keep : 0.0f;
    wrong += std::abs(gx[i] - expect) > 1e-6f * std::abs(expect) + 1e-30f;
  }
  CHECK(wrong == 0);

  // Eval mode and p = 0 return the input untouched and draw nothing.
  Generator ge(7);
  const Generator::State before = ge.state();
  CHECK(dropout(x, p, false, ge).same(x));
  CHECK(dropout(x, 0.0, true, ge).same(x));
  CHECK(ge.state() == before);
}

// ============================================================== elementwise maps

TEST_CASE("unary and broadcast binary maps above the parallel grain match loops and do not depend on threads") {
  // 211 x 199 = 41989 elements, above the 2^15 grain where the maps go parallel.
  Tensor x = random_tensor({211, 199}, 1600, DType::Float32, 0.1, 3.0);
  Tensor row = random_tensor({199}, 1601, DType::Float32, 0.5, 2.0);
  const std::vector<float> xv = x.to_vector<float>(), rv = row.to_vector<float>();
  std::vector<std::vector<float>> by_threads[2];
  for (int t : {1, 2}) {
    ThreadCountGuard tc(t);
    std::vector<std::vector<float>>& out = by_threads[t - 1];
    out.push_back(exp(x).to_vector<float>());
    out.push_back(log(x).to_vector<float>());
    out.push_back(relu(x - 1.0).to_vector<float>());
    out.push_back(neg(x).to_vector<float>());
    out.push_back(div(x, row).to_vector<float>());                      // general broadcast path
    out.push_back(mul(x.transpose(0, 1), x.transpose(0, 1)).to_vector<float>());  // strided operands
    out.push_back(sum(x, {0}).to_vector<float>());
  }
  for (size_t k = 0; k < by_threads[0].size(); ++k) CHECK(bitwise_equal(by_threads[0][k], by_threads[1][k]));
  const auto& r = by_threads[1];
  int64_t bad = 0;
  for (int64_t i = 0; i < 211; ++i)
    for (int64_t j = 0; j < 199; ++j) {
      const size_t k = size_t(i * 199 + j);
      const float v = xv[k];
      bad += r[0][k] != std::exp(v);
      bad += r[1][k] != std::log(v);
      bad += r[2][k] != std::max(v - 1.0f, 0.0f);
      bad += r[3][k] != -v;
      bad += r[4][k] != v / rv[j];
      bad += r[5][size_t(j * 211 + i)] != v * v;
    }
  CHECK(bad == 0);
  std::vector<double> col(199, 0.0);
  for (int64_t i = 0; i < 211; ++i)
    for (int64_t j = 0; j < 199; ++j) col[j] += xv[i * 199 + j];
  CHECK(max_rel_error(std::vector<double>(r[6].begin(), r[6].end()), col) < 1e-6);
}
