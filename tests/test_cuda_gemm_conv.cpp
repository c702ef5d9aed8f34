// GPU vs CPU parity for the GEMMs and convolutions (skipped, with a message, without a GPU):
//  - cublas_sgemm and our gemm_tiled (plus its batched form) against a float64 host product,
//    every transpose combination, awkward sizes, padded leading dimensions, alpha/beta, and
//    beta = 0 over a C full of NaN (C must not be read);
//  - matmul and linear forward and backward on CUDA against the same ops on the CPU;
//  - im2col / col2im on the GPU against the CPU references;
//  - conv2d forward, dX, dW and db on ResNet's shapes (7x7/2 stem, 3x3/1 and /2, 1x1/1 and /2)
//    and odd ones, under MINIDL_CONV=cudnn and =own; our conv with chunks that leave a
//    remainder; operands that are misaligned views; the cuDNN plan cache filled once per
//    shape; a bad MINIDL_CONV an Error;
//  - gemm_tiled on grids past the hardware limits; the bias kernels against the host.
#include <doctest/doctest.h>

#ifdef MINIDL_WITH_CUDA

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cuda/bias.h"
#include "kernels/cuda/conv_own.h"
#include "kernels/cuda/cublas_gemm.h"
#include "kernels/cuda/cudnn_conv.h"
#include "kernels/cuda/gemm_tiled.h"
#include "tensor/random.h"

using namespace minidl;

namespace {

Tensor host_random(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return randn(shape, DType::Float32, gen);
}

std::vector<float> to_host(const Tensor& t) { return t.to(Device::CPU).contiguous().to_vector<float>(); }

// max |got - ref| / max |ref|: rounding error relative to the result's scale (NaN fails).
double scaled_error(const std::vector<float>& got, const std::vector<double>& ref) {
  REQUIRE(got.size() == ref.size());
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(double(got[i]) - ref[i]);
    if (!(d <= diff)) diff = d;
    scale = std::max(scale, std::abs(ref[i]));
  }
  return diff / scale;
}
double scaled_error(const Tensor& gpu, const Tensor& cpu) {
  REQUIRE(gpu.device() == Device::CUDA);
  REQUIRE(gpu.shape() == cpu.shape());
  return scaled_error(to_host(gpu), cpu.contiguous().to_vector<double>());
}

// Sets MINIDL_CONV for one scope and puts back what was there.
class ConvEnv {
 public:
  explicit ConvEnv(const char* value) {
    if (const char* old = std::getenv("MINIDL_CONV")) old_ = old, had_ = true;
    setenv("MINIDL_CONV", value, 1);
  }
  ~ConvEnv() {
    if (had_)
      setenv("MINIDL_CONV", old_.c_str(), 1);
    else
      unsetenv("MINIDL_CONV");
  }

 private:
  std::string old_;
  bool had_ = false;
};

// ---- GEMM ----

struct GemmCase {
  int64_t M, N, K;
};
const GemmCase kGemmSizes[] = {{1, 1, 1},    {17, 33, 129}, {129, 17, 33}, {33, 129, 17}, {64, 64, 16},
                               {65, 63, 17}, {1, 129, 300}, {300, 1, 7},   {128, 256, 64}, {7, 5, 0}};

using GemmFn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                        float, float*, int64_t);

// C = alpha op(A) op(B) + beta C on the GPU against the same in float64 on the host, with
// leading dimensions padded by `pad`; beta == 0 starts from a C of NaNs.
void check_gemm(GemmFn fn, const char* name, bool ta, bool tb, GemmCase s, float alpha, float beta, int64_t pad) {
  const int64_t ar = ta ? s.K : s.M, ac = ta ? s.M : s.K, br = tb ? s.N : s.K, bc = tb ? s.K : s.N;
  // At least one column, so no operand is an empty tensor (K = 0 reads nothing anyway).
  const int64_t lda = std::max<int64_t>(ac, 1) + pad, ldb = std::max<int64_t>(bc, 1) + pad, ldc = s.N + pad;
  Tensor a = host_random({std::max<int64_t>(ar, 1), lda}, 1), b = host_random({std::max<int64_t>(br, 1), ldb}, 2);
  Tensor c = beta == 0.f ? full({s.M, ldc}, std::numeric_limits<double>::quiet_NaN()) : host_random({s.M, ldc}, 3);
  const std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>(), cv = c.to_vector<float>();
  std::vector<double> ref(static_cast<size_t>(s.M * s.N));
  for (int64_t m = 0; m < s.M; ++m)
    for (int64_t n = 0; n < s.N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < s.K; ++k)
        acc += double(av[static_cast<size_t>(ta ? k * lda + m : m * lda + k)]) *
               double(bv[static_cast<size_t>(tb ? n * ldb + k : k * ldb + n)]);
      const double old = beta == 0.f ? 0.0 : double(cv[static_cast<size_t>(m * ldc + n)]);
      ref[static_cast<size_t>(m * s.N + n)] = alpha * acc + beta * old;
    }
  Tensor da = a.to(Device::CUDA), db = b.to(Device::CUDA), dc = c.to(Device::CUDA);
  fn(ta, tb, s.M, s.N, s.K, alpha, da.data<float>(), lda, db.data<float>(), ldb, beta, dc.data<float>(), ldc);
  const std::vector<float> got_full = to_host(dc);
  std::vector<float> got(static_cast<size_t>(s.M * s.N));
  for (int64_t m = 0; m < s.M; ++m)
    for (int64_t n = 0; n < s.N; ++n) {
      got[static_cast<size_t>(m * s.N + n)] = got_full[static_cast<size_t>(m * ldc + n)];
      // The padding past column N is never written.
      for (int64_t p = s.N; p < ldc && n == 0; ++p) {
        const float was = cv[static_cast<size_t>(m * ldc + p)], now = got_full[static_cast<size_t>(m * ldc + p)];
        CHECK_MESSAGE((std::isnan(was) ? std::isnan(now) : was == now), name, " wrote into C's padding");
      }
    }
  INFO(name, " ta=", ta, " tb=", tb, " M=", s.M, " N=", s.N, " K=", s.K, " alpha=", alpha, " beta=", beta,
       " pad=", pad);
  CHECK(scaled_error(got, ref) < 1e-5);
}

void check_gemm_all(GemmFn fn, const char* name) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (const GemmCase& s : kGemmSizes) {
        check_gemm(fn, name, ta, tb, s, 1.f, 0.f, 0);
        check_gemm(fn, name, ta, tb, s, 0.5f, 2.f, 3);
      }
}

}  // namespace

TEST_CASE("cuda gemm: cublas_sgemm, every transpose combination, awkward sizes, alpha/beta, padded rows") {
  MINIDL_REQUIRE_GPU();
  check_gemm_all(cuda::cublas_sgemm, "cublas_sgemm");
}

TEST_CASE("cuda gemm: our gemm_tiled, every transpose combination, awkward sizes, alpha/beta, padded rows") {
  MINIDL_REQUIRE_GPU();
  check_gemm_all(cuda::gemm_tiled, "gemm_tiled");
}

namespace {
// gemm_tiled_batched with one A [M, K] for every entry and B [batch, K, N] (or [batch, N, K]
// when tb) against a float64 host product per entry.
void check_batched_shared_a(int64_t M, int64_t N, int64_t K, int64_t batch, bool tb) {
  Tensor a = host_random({M, K}, 4), b = host_random({batch, tb ? N : K, tb ? K : N}, 5);
  const std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>();
  std::vector<double> ref(static_cast<size_t>(batch * M * N));
  for (int64_t i = 0; i < batch; ++i)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += double(av[static_cast<size_t>(m * K + k)]) *
                 double(bv[static_cast<size_t>(i * N * K + (tb ? n * K + k : k * N + n))]);
        ref[static_cast<size_t>((i * M + m) * N + n)] = acc;
      }
  Tensor da = a.to(Device::CUDA), dbt = b.to(Device::CUDA);
  Tensor dc = Tensor::empty({batch, M, N}, DType::Float32, Device::CUDA);
  cuda::gemm_tiled_batched(false, tb, M, N, K, 1.f, da.data<float>(), K, 0, dbt.data<float>(), tb ? K : N, N * K,
                           0.f, dc.data<float>(), N, M * N, batch);
  INFO("M=", M, " N=", N, " K=", K, " batch=", batch, " tb=", tb);
  CHECK(scaled_error(to_host(dc), ref) < 1e-5);
}
}  // namespace

TEST_CASE("cuda gemm: gemm_tiled_batched with a shared A equals one product per batch entry") {
  MINIDL_REQUIRE_GPU();
  for (bool tb : {false, true}) check_batched_shared_a(19, 70, 37, 5, tb);
}

TEST_CASE("cuda gemm: gemm_tiled past the grid limits (batch and row tiles > 65535) covers everything") {
  MINIDL_REQUIRE_GPU();
  SUBCASE("batch 65544: grid z is capped at 65535, the kernel loops over the rest") {
    check_batched_shared_a(3, 5, 2, 65535 + 9, false);
  }
  SUBCASE("65535 * 64 + 70 rows: grid y is capped, the last row tiles come from the loop") {
    const int64_t M = 65535 * 64 + 70, N = 1, K = 1;
    Tensor a = host_random({M, K}, 52), b = host_random({K, N}, 53);
    const std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>();
    std::vector<double> ref(static_cast<size_t>(M));
    for (int64_t m = 0; m < M; ++m) ref[static_cast<size_t>(m)] = double(av[static_cast<size_t>(m)]) * double(bv[0]);
    Tensor da = a.to(Device::CUDA), dbt = b.to(Device::CUDA);
    Tensor dc = Tensor::empty({M, N}, DType::Float32, Device::CUDA);
    cuda::gemm_tiled(false, false, M, N, K, 1.f, da.data<float>(), K, dbt.data<float>(), N, 0.f, dc.data<float>(), N);
    CHECK(scaled_error(to_host(dc), ref) < 1e-6);
  }
}

TEST_CASE("cuda bias kernels: bias_add and bias_grad against the host, more channels than one grid row") {
  MINIDL_REQUIRE_GPU();
  // (N, C, S): linear's rows x features (S = 1); conv's [N, O, OH*OW]; C past 65535 blocks.
  for (auto [N, C, S] : {std::tuple<int64_t, int64_t, int64_t>{5, 7, 1}, {3, 4, 300}, {2, 65535 + 4, 3}}) {
    Tensor y = host_random({N, C, S}, 60), b = host_random({C}, 61);
    const std::vector<float> yv = y.to_vector<float>(), bv = b.to_vector<float>();
    std::vector<double> added(yv.size()), db(static_cast<size_t>(C), 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t s = 0; s < S; ++s) {
          const size_t i = static_cast<size_t>((n * C + c) * S + s);
          added[i] = double(yv[i]) + double(bv[static_cast<size_t>(c)]);
          db[static_cast<size_t>(c)] += double(yv[i]);
        }
    Tensor gy = y.to(Device::CUDA), gb = b.to(Device::CUDA);
    Tensor gdb = full({C}, std::numeric_limits<double>::quiet_NaN(), DType::Float32, Device::CUDA);
    cuda::bias_grad(gy.data<float>(), gdb.data<float>(), N, C, S);  // before gy is changed below
    cuda::bias_add(gy.data<float>(), gb.data<float>(), N, C, S);
    INFO("N=", N, " C=", C, " S=", S);
    CHECK(scaled_error(to_host(gdb), db) < 1e-6);
    CHECK(scaled_error(to_host(gy), added) < 1e-6);
  }
}

TEST_CASE("cuda matmul: forward and both gradients match the cpu") {
  MINIDL_REQUIRE_GPU();
  for (auto [M, K, N] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {17, 33, 129}, {129, 1, 17}, {64, 300, 10}}) {
    Tensor a = host_random({M, K}, 6).requires_grad_(), b = host_random({K, N}, 7).requires_grad_();
    Tensor ga = a.to(Device::CUDA).detach().requires_grad_(), gb = b.to(Device::CUDA).detach().requires_grad_();
    Tensor g = host_random({M, N}, 8);
    Tensor y = matmul(a, b), gy = matmul(ga, gb);
    REQUIRE(gy.device() == Device::CUDA);
    y.backward(g);
    gy.backward(g.to(Device::CUDA));
    INFO("M=", M, " K=", K, " N=", N);
    CHECK(scaled_error(gy, y) < 1e-5);
    CHECK(scaled_error(ga.grad(), a.grad()) < 1e-5);
    CHECK(scaled_error(gb.grad(), b.grad()) < 1e-5);
  }
}

TEST_CASE("cuda linear: forward, dx, dW and db match the cpu, with and without bias") {
  MINIDL_REQUIRE_GPU();
  for (bool with_bias : {true, false})
    for (auto [N, F, O] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {33, 2048, 10}, {17, 129, 33}}) {
      Tensor x = host_random({N, F}, 9).requires_grad_(), w = host_random({O, F}, 10).requires_grad_();
      Tensor b = with_bias ? host_random({O}, 11).requires_grad_() : Tensor();
      Tensor gx = x.to(Device::CUDA).detach().requires_grad_(), gw = w.to(Device::CUDA).detach().requires_grad_();
      Tensor gbias = with_bias ? b.to(Device::CUDA).detach().requires_grad_() : Tensor();
      Tensor g = host_random({N, O}, 12);
      Tensor y = linear(x, w, b), gy = linear(gx, gw, gbias);
      y.backward(g);
      gy.backward(g.to(Device::CUDA));
      INFO("bias=", with_bias, " N=", N, " F=", F, " O=", O);
      CHECK(scaled_error(gy, y) < 1e-5);
      CHECK(scaled_error(gx.grad(), x.grad()) < 1e-5);
      CHECK(scaled_error(gw.grad(), w.grad()) < 1e-5);
      if (with_bias) CHECK(scaled_error(gbias.grad(), b.grad()) < 1e-5);
    }
}

TEST_CASE("cuda linear/matmul: a cpu and a cuda tensor together are an error naming the op") {
  MINIDL_REQUIRE_GPU();
  Tensor a = host_random({3, 4}, 1), b = host_random({4, 5}, 2).to(Device::CUDA);
  CHECK_ERROR_MENTIONS(matmul(a, b), "matmul", "different devices");
  CHECK_ERROR_MENTIONS(linear(a, host_random({5, 4}, 3).to(Device::CUDA)), "linear", "different devices");
  Tensor a64 = a.to(DType::Float64).to(Device::CUDA), b64 = host_random({4, 5}, 2).to(DType::Float64).to(Device::CUDA);
  CHECK_ERROR_MENTIONS(matmul(a64, b64), "matmul", "float32");
}

// ---- convolution ----

namespace {

struct ConvCase {
  int64_t N, C, H, W, O, KH, KW;
  Conv2dOptions opt;
  const char* what;
};
const ConvCase kConvCases[] = {
    {2, 3, 64, 64, 16, 7, 7, {2, 2, 3, 3}, "ResNet stem 7x7/2 pad 3"},
    {2, 3, 33, 31, 8, 7, 7, {2, 2, 3, 3}, "stem, odd input"},
    {2, 64, 16, 16, 64, 3, 3, {1, 1, 1, 1}, "3x3/1 pad 1"},
    {3, 32, 15, 15, 48, 3, 3, {2, 2, 1, 1}, "3x3/2 pad 1, odd input"},
    {2, 128, 8, 8, 128, 3, 3, {2, 2, 1, 1}, "3x3/2 pad 1"},
    {2, 64, 14, 14, 256, 1, 1, {1, 1, 0, 0}, "1x1/1 (pointwise)"},
    {2, 256, 14, 14, 512, 1, 1, {2, 2, 0, 0}, "1x1/2 downsample"},
    {2, 512, 7, 7, 2048, 1, 1, {1, 1, 0, 0}, "1x1/1 late layer"},
    {1, 5, 9, 7, 7, 3, 3, {1, 1, 1, 1}, "odd channels"},
    {3, 3, 11, 13, 5, 5, 3, {2, 3, 2, 1}, "5x3 kernel, strides 2,3, pads 2,1"},
    {1, 1, 1, 1, 1, 1, 1, {1, 1, 0, 0}, "1x1x1x1"},
    {4, 2, 5, 5, 3, 5, 5, {1, 1, 0, 0}, "kernel covers the input"},
};

// One conv's forward and gradients on the cpu and on the gpu (under MINIDL_CONV as set).
void check_conv(const ConvCase& c, double tol, bool with_bias = true, bool grad_x = true, bool grad_w = true) {
  Tensor x = host_random({c.N, c.C, c.H, c.W}, 20), w = host_random({c.O, c.C, c.KH, c.KW}, 21);
  Tensor b = with_bias ? host_random({c.O}, 22) : Tensor();
  Tensor gx = x.to(Device::CUDA), gw = w.to(Device::CUDA), gbias = with_bias ? b.to(Device::CUDA) : Tensor();
  x.requires_grad_(grad_x), gx.requires_grad_(grad_x);
  w.requires_grad_(grad_w), gw.requires_grad_(grad_w);
  if (with_bias) b.requires_grad_(), gbias.requires_grad_();
  Tensor y = conv2d(x, w, b, c.opt), gy = conv2d(gx, gw, gbias, c.opt);
  REQUIRE(gy.device() == Device::CUDA);
  INFO(c.what, ": x [", c.N, ",", c.C, ",", c.H, ",", c.W, "] w [", c.O, ",", c.C, ",", c.KH, ",", c.KW,
       "] MINIDL_CONV=", (std::getenv("MINIDL_CONV") ? std::getenv("MINIDL_CONV") : "(unset)"), " bias=", with_bias);
  CHECK(scaled_error(gy, y) < tol);
  Tensor g = host_random(y.shape(), 23);
  y.backward(g);
  gy.backward(g.to(Device::CUDA));
  if (grad_x) CHECK(scaled_error(gx.grad(), x.grad()) < tol);
  if (grad_w) CHECK(scaled_error(gw.grad(), w.grad()) < tol);
  if (with_bias) CHECK(scaled_error(gbias.grad(), b.grad()) < tol);
}

// Every case with all gradients, then the variants that skip some: no bias, only db wanted
// (no dW: the bias-only path), dx and db without dW.
void check_conv_all(double tol) {
  for (const ConvCase& c : kConvCases) check_conv(c, tol);
  check_conv(kConvCases[3], tol, false);
  check_conv(kConvCases[3], tol, true, false, false);
  check_conv(kConvCases[5], tol, true, true, false);
}

// cuDNN's algorithms (FFT, Winograd) round differently from a direct sum: ~1e-4 of scale.
constexpr double kCudnnTol = 2e-4, kOwnTol = 2e-5;

}  // namespace

TEST_CASE("cuda conv2d (cudnn): forward, dX, dW, db match the cpu on ResNet's and odd shapes") {
  MINIDL_REQUIRE_GPU();
  ConvEnv env("cudnn");
  check_conv_all(kCudnnTol);
}

TEST_CASE("cuda conv2d (own): forward, dX, dW, db match the cpu on ResNet's and odd shapes") {
  MINIDL_REQUIRE_GPU();
  ConvEnv env("own");
  check_conv_all(kOwnTol);
}

TEST_CASE("cuda conv2d (own): chunks of 1, 2 and 3 samples of 5 (a remainder) give the same result") {
  MINIDL_REQUIRE_GPU();
  for (bool pointwise : {false, true}) {
    const cpu::ConvGeom g = pointwise ? cpu::make_conv_geom(5, 6, 9, 8, 7, 1, 1, 1, 1, 0, 0)
                                      : cpu::make_conv_geom(5, 6, 9, 8, 7, 3, 3, 2, 1, 1, 0);
    Tensor x = host_random({g.N, g.C, g.H, g.W}, 30), w = host_random({g.O, g.C, g.KH, g.KW}, 31);
    Tensor b = host_random({g.O}, 32), dy = host_random({g.N, g.O, g.OH, g.OW}, 33);
    std::vector<float> y_ref(static_cast<size_t>(dy.numel())), dx_ref(static_cast<size_t>(x.numel())),
        dw_ref(static_cast<size_t>(w.numel())), db_ref(static_cast<size_t>(g.O));
    cpu::conv2d_reference_forward<float>(g, x.data<float>(), w.data<float>(), b.data<float>(), y_ref.data());
    cpu::conv2d_reference_backward_input<float>(g, dy.data<float>(), w.data<float>(), dx_ref.data());
    cpu::conv2d_reference_backward_weight<float>(g, dy.data<float>(), x.data<float>(), dw_ref.data(), db_ref.data());
    auto as_double = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
    Tensor gx = x.to(Device::CUDA), gw = w.to(Device::CUDA), gb = b.to(Device::CUDA), gdy = dy.to(Device::CUDA);
    const int64_t per_sample = g.col_rows() * g.col_cols() * 4;
    for (int64_t chunk : {1, 2, 3}) {
      Tensor y = Tensor::empty(dy.shape(), DType::Float32, Device::CUDA);
      Tensor dx = Tensor::empty(x.shape(), DType::Float32, Device::CUDA);
      Tensor dw = Tensor::empty(w.shape(), DType::Float32, Device::CUDA);
      Tensor db = Tensor::empty({g.O}, DType::Float32, Device::CUDA);
      cuda::conv_own_forward(g, gx.data<float>(), gw.data<float>(), gb.data<float>(), y.data<float>(),
                             chunk * per_sample);
      cuda::conv_own_backward_input(g, gdy.data<float>(), gw.data<float>(), dx.data<float>(), chunk * per_sample);
      cuda::conv_own_backward_weight(g, gdy.data<float>(), gx.data<float>(), dw.data<float>(), db.data<float>(),
                                     chunk * per_sample);
      INFO("pointwise=", pointwise, " chunk=", chunk);
      CHECK(scaled_error(to_host(y), as_double(y_ref)) < kOwnTol);
      CHECK(scaled_error(to_host(dx), as_double(dx_ref)) < kOwnTol);
      CHECK(scaled_error(to_host(dw), as_double(dw_ref)) < kOwnTol);
      CHECK(scaled_error(to_host(db), as_double(db_ref)) < kOwnTol);
    }
  }
}

TEST_CASE("cuda im2col/col2im: the gpu kernels equal the cpu references on awkward geometries") {
  MINIDL_REQUIRE_GPU();
  const cpu::ConvGeom geoms[] = {cpu::make_conv_geom(2, 3, 9, 7, 1, 3, 3, 1, 1, 1, 1),
                                 cpu::make_conv_geom(2, 2, 11, 13, 1, 5, 3, 2, 3, 2, 1),
                                 cpu::make_conv_geom(2, 4, 8, 8, 1, 7, 7, 2, 2, 3, 3),
                                 cpu::make_conv_geom(2, 3, 6, 6, 1, 2, 2, 3, 3, 0, 0)};  // stride > kernel
  for (const cpu::ConvGeom& g : geoms) {
    const int64_t xs = g.C * g.H * g.W, cs = g.col_rows() * g.col_cols();
    Tensor x = host_random({g.N, g.C, g.H, g.W}, 40), col = host_random({g.N, g.col_rows(), g.col_cols()}, 41);
    std::vector<double> col_ref, x_ref;
    for (int64_t n = 0; n < g.N; ++n) {
      std::vector<float> c(static_cast<size_t>(cs)), xi(static_cast<size_t>(xs), 0.f);
      cpu::im2col_reference<float>(g, x.data<float>() + n * xs, c.data());
      cpu::col2im_reference<float>(g, col.data<float>() + n * cs, xi.data());
      col_ref.insert(col_ref.end(), c.begin(), c.end());
      x_ref.insert(x_ref.end(), xi.begin(), xi.end());
    }
    Tensor gx = x.to(Device::CUDA), gcol = col.to(Device::CUDA);
    Tensor col_out = Tensor::empty(col.shape(), DType::Float32, Device::CUDA);
    Tensor x_out = Tensor::empty(x.shape(), DType::Float32, Device::CUDA);
    cuda::im2col_gpu(g, gx.data<float>(), g.N, col_out.data<float>());
    cuda::col2im_gpu(g, gcol.data<float>(), g.N, x_out.data<float>());
    INFO("k=", g.KH, "x", g.KW, " s=", g.SH, ",", g.SW, " p=", g.PH, ",", g.PW);
    CHECK(scaled_error(to_host(col_out), col_ref) == 0.0);  // a copy: exact
    CHECK(scaled_error(to_host(x_out), x_ref) < 1e-6);
  }
}

TEST_CASE("cuda conv2d (cudnn): the algorithm search runs once per shape") {
  MINIDL_REQUIRE_GPU();
  ConvEnv env("cudnn");
  // A shape no other test uses, so the counts below are this test's own.
  const ConvCase c{3, 7, 10, 9, 6, 3, 3, {1, 2, 1, 0}, "cache probe"};
  const size_t before = cuda::cudnn_conv_cached_plans();
  check_conv(c, kCudnnTol);
  const size_t after_first = cuda::cudnn_conv_cached_plans();
  CHECK(after_first == before + 3);  // forward, backward data, backward filter
  check_conv(c, kCudnnTol);
  CHECK(cuda::cudnn_conv_cached_plans() == after_first);
}

TEST_CASE("cuda conv2d: input, weight and gradient views that start mid-vector (4-byte aligned only)") {
  MINIDL_REQUIRE_GPU();
  // Each operand is a view one float into a larger device buffer, so its pointer is not
  // 16-byte aligned: cuDNN's search and plan must hold for such buffers too (they get their
  // own plan), and our kernels must not assume alignment.
  auto offset_view = [](const Tensor& host) {
    Tensor flat = Tensor::empty({host.numel() + 1}, DType::Float32, Device::CUDA);
    Tensor v = flat.narrow(0, 1, host.numel()).view(host.shape());
    copy_(v, host.to(Device::CUDA));
    return v;
  };
  for (const char* impl : {"cudnn", "own"}) {
    ConvEnv env(impl);
    for (const ConvCase& c : {kConvCases[2], kConvCases[3], kConvCases[5]}) {
      Tensor x = host_random({c.N, c.C, c.H, c.W}, 70).requires_grad_();
      Tensor w = host_random({c.O, c.C, c.KH, c.KW}, 71).requires_grad_();
      Tensor b = host_random({c.O}, 72).requires_grad_();
      Tensor gx = offset_view(x).requires_grad_(), gw = offset_view(w).requires_grad_();
      Tensor gb = offset_view(b).requires_grad_();
      REQUIRE(reinterpret_cast<uintptr_t>(gx.data<float>()) % 16 != 0);
      Tensor y = conv2d(x, w, b, c.opt), gy = conv2d(gx, gw, gb, c.opt);
      Tensor g = host_random(y.shape(), 73);
      y.backward(g);
      gy.backward(offset_view(g));
      INFO(c.what, " MINIDL_CONV=", impl);
      const double tol = std::string(impl) == "own" ? kOwnTol : kCudnnTol;
      CHECK(scaled_error(gy, y) < tol);
      CHECK(scaled_error(gx.grad(), x.grad()) < tol);
      CHECK(scaled_error(gw.grad(), w.grad()) < tol);
      CHECK(scaled_error(gb.grad(), b.grad()) < tol);
    }
  }
}

TEST_CASE("cuda conv2d: a bad MINIDL_CONV is an Error naming the variable") {
  MINIDL_REQUIRE_GPU();
  ConvEnv env("fastest");
  Tensor x = host_random({1, 2, 5, 5}, 1).to(Device::CUDA), w = host_random({3, 2, 3, 3}, 2).to(Device::CUDA);
  CHECK_ERROR_MENTIONS(conv2d(x, w), "MINIDL_CONV='fastest'", "cudnn", "own");
}

#else

TEST_CASE("cuda gemm/conv parity: skipped (built without CUDA)") { MESSAGE("skipped: built with MINIDL_CUDA=OFF"); }

#endif
