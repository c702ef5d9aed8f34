// CUDA batch norm, pooling, dropout, log-softmax and cross-entropy against the CPU ops on
// random inputs: outputs, every input's gradient, running statistics; training and eval;
// awkward sizes (C = 3, HW = 7x5, N = 1 with HW > 1, [N, C] inputs, pool padding and edges,
// channels split over several blocks). Without a GPU these cases skip with a message.
// The index math the kernels share with the host (window ranges, the channel walk, the
// split plan) is plain C++ and tested here on the CPU in every build.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <set>
#include <vector>

#include "autograd/ops.h"
#include "cuda_test_util.h"
#include "kernels/cuda/batchnorm.h"
#include "kernels/cuda/pool.h"
#include "tensor/factory.h"

using namespace minidl;
using namespace minidl::testing;

namespace {

// ---------------- CPU tests of the shared index math ----------------

TEST_CASE("cuda pool index math: covering_windows lists exactly the windows that contain an input") {
  for (int64_t K = 1; K <= 5; ++K)
    for (int64_t S = 1; S <= 4; ++S)
      for (int64_t P = 0; 2 * P <= K; ++P)
        for (int64_t H = std::max<int64_t>(1, K - 2 * P); H <= 12; ++H) {
          const int64_t O = (H + 2 * P - K) / S + 1;
          for (int64_t h = 0; h < H; ++h) {
            std::set<int64_t> want;
            for (int64_t o = 0; o < O; ++o)
              if (o * S - P <= h && h <= o * S - P + K - 1) want.insert(o);
            const cuda::IndexRange r = cuda::covering_windows(h, K, S, P, O);
            std::set<int64_t> got;
            for (int64_t o = r.lo; o <= r.hi; ++o) got.insert(o);
            INFO("K=" << K << " S=" << S << " P=" << P << " H=" << H << " h=" << h);
            CHECK(got == want);
          }
        }
}

TEST_CASE("cuda batchnorm index math: the channel walk visits the offsets of [N, C, HW]") {
  for (int64_t N : {1, 2, 5})
    for (int64_t C : {1, 3})
      for (int64_t HW : {1, 3, 7, 35})
        for (int64_t step : {1, 4, 7, 256})
          for (int64_t c = 0; c < C; ++c)
            for (int64_t j0 : {int64_t(0), int64_t(1), N * HW / 2, N * HW - 1}) {
              INFO("N=" << N << " C=" << C << " HW=" << HW << " step=" << step << " c=" << c << " j0=" << j0);
              cuda::ChannelWalk it(c, C, HW, j0, step);
              for (int64_t j = j0; j < N * HW; j += step, it.next()) {
                REQUIRE(it.off == ((j / HW) * C + c) * HW + j % HW);
                REQUIRE(it.i == j % HW);
              }
            }
}

TEST_CASE("cuda batchnorm split plan: chunks cover each channel, none empty, the grid stays bounded") {
  for (int64_t C : {1, 3, 64, 2048, 100000})
    for (int64_t M : {1, 2, 35, 4095, 4096, 4097, 100352, 401408, 12845056}) {
      const cuda::ChannelSplit sp = cuda::plan_channel_split(C, M);
      INFO("C=" << C << " M=" << M << " splits=" << sp.splits << " chunk=" << sp.chunk);
      CHECK(sp.splits >= 1);
      CHECK(sp.chunk >= 1);
      CHECK(sp.splits * sp.chunk >= M);
      CHECK((sp.splits - 1) * sp.chunk < M);  // the last chunk is not empty
      CHECK(C * sp.splits <= std::max<int64_t>(C, 1024 + C));
      if (M >= 2 * 4096 && C < 512) CHECK(sp.splits > 1);  // small C, long channels: shared
    }
}

// ---------------- GPU vs CPU parity ----------------

// max |a - b| / max |b| over the tensor, a (gpu) copied back first: gradients have entries
// near zero whose own relative error means nothing. A NaN on one side only is an infinite
// error (std::max would silently skip it), NaN on both sides none.
double scaled_vs_cpu(const Tensor& gpu, const Tensor& cpu) {
  REQUIRE(gpu.device() == Device::CUDA);
  REQUIRE(cpu.device() == Device::CPU);
  const std::vector<double> a = gpu.cpu().to_vector<double>(), b = cpu.to_vector<double>();
  REQUIRE(a.size() == b.size());
  double worst = 0, scale = 1e-30;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i])) return INFINITY;
    if (std::isnan(b[i])) continue;
    scale = std::max(scale, std::abs(b[i]));
    if (a[i] != b[i]) worst = std::max(worst, std::abs(a[i] - b[i]));  // (equal infinities differ by NaN)
  }
  return worst / scale;
}

// Bit-for-bit equality (NaN included), gpu copied back first.
bool same_bits(const Tensor& gpu, const Tensor& cpu) {
  const std::vector<float> a = gpu.cpu().to_vector<float>(), b = cpu.to_vector<float>();
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

Tensor random(const Shape& shape, uint64_t seed, double offset = 0.0, double scale = 1.0) {
  Generator g(seed);
  Tensor t = randn(shape, DType::Float32, g);
  std::vector<float> v = t.to_vector<float>();
  for (float& x : v) x = static_cast<float>(offset + scale * x);
  return from_vector<float>(v, shape);
}

// A copy of t on dev, a leaf of its own (requiring grad when asked).
Tensor leaf(const Tensor& t, Device dev, bool grad) {
  Tensor l = dev == Device::CPU ? t.clone() : t.to(dev).detach();
  if (grad) l.requires_grad_();
  return l;
}

struct Outcome {
  Tensor out;
  std::vector<Tensor> grads;  // per input; undefined where not requested
};

// Runs f on leaf copies of inputs on dev and backpropagates a random upstream gradient
// drawn from seed (the same values on both devices).
Outcome run_on(Device dev, const std::vector<Tensor>& inputs, const std::vector<bool>& grad,
               const std::function<Tensor(const std::vector<Tensor>&)>& f, uint64_t seed) {
  std::vector<Tensor> in;
  for (size_t i = 0; i < inputs.size(); ++i) in.push_back(leaf(inputs[i], dev, grad[i]));
  Outcome r{f(in), {}};
  CHECK(r.out.device() == dev);
  r.out.backward(random(r.out.shape(), seed).to(dev));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (grad[i]) REQUIRE(in[i].grad().defined());
    r.grads.push_back(grad[i] ? in[i].grad() : Tensor());
  }
  return r;
}

// f on the GPU against f on the CPU: the output within out_tol, each gradient within grad_tol
// (both scaled errors; 0 = exactly equal); exact = bit-identical instead.
void check_parity(const std::vector<Tensor>& inputs, const std::vector<bool>& grad,
                  const std::function<Tensor(const std::vector<Tensor>&)>& f, double out_tol, double grad_tol,
                  uint64_t seed = 99, bool exact = false) {
  const Outcome c = run_on(Device::CPU, inputs, grad, f, seed);
  const Outcome g = run_on(Device::CUDA, inputs, grad, f, seed);
  if (exact) CHECK(same_bits(g.out, c.out));
  else CHECK(scaled_vs_cpu(g.out, c.out) <= out_tol);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!grad[i]) continue;
    INFO("gradient of input " << i);
    if (exact) CHECK(same_bits(g.grads[i], c.grads[i]));
    else CHECK(scaled_vs_cpu(g.grads[i], c.grads[i]) <= grad_tol);
  }
}

enum class Bn { Plain, Relu, AddRelu };

struct BnCase {
  Shape shape;
  double offset = 0.0;  // a large offset tests the statistics' cancellation
};

// Which of x, weight, bias require grad (the identity of add-relu always does): a frozen
// input takes the kernels' nullptr paths (no dx, or no reduction at all).
struct BnGrads {
  bool x = true, weight = true, bias = true;
};

// One batch-norm variant on one shape: values, the requested gradients and (training) the
// running stats.
void check_batch_norm(const BnCase& bc, Bn kind, bool training, bool with_running = true, BnGrads want = {}) {
  const int64_t C = bc.shape[1];
  INFO("shape " << shape_str(bc.shape) << " kind " << int(kind) << " training " << training << " offset "
                << bc.offset << " grads x/w/b " << want.x << want.weight << want.bias);
  const Tensor x = random(bc.shape, 1, bc.offset, 2.0), identity = random(bc.shape, 2);
  const Tensor w = random({C}, 3, 1.0, 0.5), b = random({C}, 4);
  const Tensor rm0 = random({C}, 5, bc.offset), rv0 = random({C}, 6, 3.0, 0.5);  // rv0 > 0
  Tensor rm_cpu = rm0.clone(), rv_cpu = rv0.clone(), rm_gpu = rm0.cuda(), rv_gpu = rv0.cuda();
  auto op = [&](const std::vector<Tensor>& in) {
    const bool gpu = in[0].device() == Device::CUDA;
    Tensor rm = with_running ? (gpu ? rm_gpu : rm_cpu) : Tensor(), rv = with_running ? (gpu ? rv_gpu : rv_cpu) : Tensor();
    if (kind == Bn::Plain) return batch_norm(in[0], in[1], in[2], rm, rv, training, 0.1, 1e-5);
    if (kind == Bn::Relu) return batch_norm_relu(in[0], in[1], in[2], rm, rv, training, 0.1, 1e-5);
    return batch_norm_add_relu(in[0], in[3], in[1], in[2], rm, rv, training, 0.1, 1e-5);
  };
  check_parity({x, w, b, identity}, {want.x, want.weight, want.bias, kind == Bn::AddRelu}, op, 1e-5, 1e-4);
  if (!training || !with_running) return;
  // check_parity ran one training step on each device: the running statistics moved once.
  CHECK(scaled_vs_cpu(rm_gpu, rm_cpu) < 1e-5);
  CHECK(scaled_vs_cpu(rv_gpu, rv_cpu) < 1e-5);
}

const std::vector<BnCase> kBnCases = {
    {{4, 3, 7, 5}},          // C = 3, HW = 7x5
    {{1, 3, 7, 5}},          // N = 1, HW > 1
    {{16, 5}},               // [N, C]
    {{2, 64, 9, 9}},         //
    {{3, 2, 100, 70}},       // several blocks per channel, chunks crossing rows
    {{8, 4, 33, 31}, 50.0},  // |mean| >> std
    {{2, 1, 1, 3}},          // M = 6: one tiny block
};

TEST_CASE("cuda batch_norm: training forward, backward and running statistics match the cpu") {
  MINIDL_REQUIRE_GPU();
  for (const BnCase& bc : kBnCases)
    for (Bn kind : {Bn::Plain, Bn::Relu, Bn::AddRelu}) check_batch_norm(bc, kind, true);
  check_batch_norm(kBnCases[0], Bn::Plain, true, /*with_running=*/false);
}

TEST_CASE("cuda batch_norm: eval forward and backward (running statistics as constants) match the cpu") {
  MINIDL_REQUIRE_GPU();
  for (const BnCase& bc : kBnCases)
    for (Bn kind : {Bn::Plain, Bn::Relu, Bn::AddRelu}) check_batch_norm(bc, kind, false);
}

TEST_CASE("cuda batch_norm: only some inputs require grad (frozen x, frozen affine, only the identity)") {
  MINIDL_REQUIRE_GPU();
  for (bool training : {true, false}) {
    for (Bn kind : {Bn::Plain, Bn::Relu, Bn::AddRelu}) {
      check_batch_norm(kBnCases[4], kind, training, true, {true, false, false});  // dx only
      check_batch_norm(kBnCases[4], kind, training, true, {false, true, true});   // dgamma, dbeta only
    }
    // Only the residual's gradient: no per-channel sums are needed at all.
    check_batch_norm(kBnCases[4], Bn::AddRelu, training, true, {false, false, false});
  }
}

TEST_CASE("cuda batch_norm: tensors on different devices are a clear error") {
  MINIDL_REQUIRE_GPU();
  const Tensor x = random({2, 3, 4, 4}, 1).cuda(), w = ones({3}), b = zeros({3});
  CHECK_ERROR_MENTIONS(batch_norm(x, w, b, Tensor(), Tensor(), true, 0.1, 1e-5), "batch_norm", "different devices");
}

TEST_CASE("cuda max_pool2d: values, argmax and the gradient are bit-identical to the cpu") {
  MINIDL_REQUIRE_GPU();
  struct PoolCase {
    Shape shape;
    int64_t k, s, p;
  };
  const std::vector<PoolCase> cases = {
      {{2, 3, 8, 8}, 2, 2, 0}, {{2, 3, 7, 5}, 2, 2, 0}, {{2, 3, 7, 5}, 3, 2, 1}, {{1, 2, 9, 9}, 3, 2, 1},
      {{2, 3, 7, 5}, 3, 1, 1}, {{1, 3, 6, 7}, 2, 1, 1}, {{2, 2, 7, 5}, 3, 3, 0}, {{1, 1, 1, 1}, 1, 1, 0},
      {{2, 4, 3, 3}, 3, 2, 1}, {{4, 64, 16, 16}, 3, 2, 1}};
  for (const PoolCase& pc : cases) {
    INFO("shape " << shape_str(pc.shape) << " kernel " << pc.k << " stride " << pc.s << " padding " << pc.p);
    auto op = [&](const std::vector<Tensor>& in) { return max_pool2d(in[0], pc.k, pc.s, pc.p); };
    check_parity({random(pc.shape, 7)}, {true}, op, 0, 0, 99, /*exact=*/true);
    // Many ties (small integers, relu zeros): the first in window order must win on both.
    std::vector<float> v = random(pc.shape, 8, 0.0, 2.0).to_vector<float>();
    for (float& e : v) e = std::max(0.0f, std::round(e));
    check_parity({from_vector<float>(v, pc.shape)}, {true}, op, 0, 0, 98, /*exact=*/true);
  }
  // NaN propagates (the first NaN in a window wins, and takes the gradient), as on the cpu:
  // 3x3/2/1 is the cpu's fast path (its NaN fallback), 2x2/1/0 the reference loop.
  std::vector<float> v = random({1, 2, 6, 6}, 9).to_vector<float>();
  v[7] = v[20] = v[21] = std::nanf("");
  const Tensor x = from_vector<float>(v, {1, 2, 6, 6});
  for (int64_t k : {3, 2}) {
    INFO("NaN input, kernel " << k);
    auto op = [k](const std::vector<Tensor>& in) { return max_pool2d(in[0], k, k == 3 ? 2 : 1, k == 3 ? 1 : 0); };
    check_parity({x}, {true}, op, 0, 0, 97, /*exact=*/true);
  }
}

TEST_CASE("cuda adaptive_avg_pool2d_1x1: forward and backward match the cpu") {
  MINIDL_REQUIRE_GPU();
  for (const Shape& s : std::vector<Shape>{{2, 3, 7, 5}, {4, 8, 1, 1}, {1, 5, 56, 56}, {3, 2048, 7, 7}}) {
    INFO("shape " << shape_str(s));
    auto op = [](const std::vector<Tensor>& in) { return adaptive_avg_pool2d_1x1(in[0]); };
    check_parity({random(s, 10, 3.0)}, {true}, op, 1e-6, 0);  // backward is dy / HW, exact
  }
}

TEST_CASE("cuda dropout: a seed drops the same elements as on the cpu; forward and backward bit-identical") {
  MINIDL_REQUIRE_GPU();
  for (double p : {0.3, 0.5, 0.9}) {
    INFO("p " << p);
    const Tensor x = random({64, 1001}, 11);  // several blocks
    Generator gc(123), gg(123);
    auto op = [&](const std::vector<Tensor>& in) {
      return dropout(in[0], p, true, in[0].device() == Device::CUDA ? gg : gc);
    };
    check_parity({x}, {true}, op, 0, 0, 99, /*exact=*/true);
  }
  const Tensor y = random({4, 5}, 12).cuda();
  CHECK(dropout(y, 0.5, false).same(y));  // eval: the identity
  CHECK(dropout(y, 0.0, true).same(y));
}

TEST_CASE("cuda log_softmax: forward and backward match the cpu") {
  MINIDL_REQUIRE_GPU();
  for (const Shape& s : std::vector<Shape>{{5, 10}, {3, 1000}, {1, 1}, {37, 33}, {2, 64}}) {
    for (double offset : {0.0, 500.0}) {
      INFO("shape " << shape_str(s) << " offset " << offset);
      auto op = [](const std::vector<Tensor>& in) { return log_softmax(in[0], 1); };
      check_parity({random(s, 13, offset, 30.0)}, {true}, op, 1e-5, 1e-5);
    }
  }
}

Tensor random_labels(int64_t N, int64_t C, uint64_t seed) {
  Generator g(seed);
  std::vector<int64_t> v(static_cast<size_t>(N));
  for (auto& l : v) l = static_cast<int64_t>(g.randint(static_cast<uint64_t>(C)));
  return from_vector<int64_t>(v, {N});
}

TEST_CASE("cuda cross_entropy: loss and gradient match the cpu, with and without label smoothing") {
  MINIDL_REQUIRE_GPU();
  for (const Shape& s : std::vector<Shape>{{8, 10}, {33, 1000}, {1, 3}, {300, 7}})
    for (double smoothing : {0.0, 0.1}) {
      INFO("shape " << shape_str(s) << " smoothing " << smoothing);
      const Tensor labels = random_labels(s[0], s[1], 14);
      auto op = [&](const std::vector<Tensor>& in) {
        return cross_entropy(in[0], in[0].device() == Device::CUDA ? labels.cuda() : labels, smoothing);
      };
      // The upstream gradient of the scalar loss is random (not 1), so the kernel's scale is tested.
      check_parity({random(s, 15, 0.0, 3.0)}, {true}, op, 1e-5, 1e-5);
    }
}

TEST_CASE("cuda cross_entropy: a label out of range is a clear error and the device stays usable") {
  MINIDL_REQUIRE_GPU();
  const Tensor x = random({6, 10}, 16).cuda();
  const Tensor high = from_vector<int64_t>({1, 2, 3, 10, 4, 11}, {6}).cuda();
  CHECK_ERROR_MENTIONS(cross_entropy(x, high), "cross_entropy", "label 10", "position 3", "outside [0, 10)");
  const Tensor negative = from_vector<int64_t>({0, -1, 3, 4, 5, 6}, {6}).cuda();
  CHECK_ERROR_MENTIONS(cross_entropy(x, negative), "label -1", "position 1");
  const Tensor ok = from_vector<int64_t>({0, 1, 2, 3, 4, 9}, {6});
  CHECK(std::abs(cross_entropy(x, ok.cuda()).item() - cross_entropy(x.cpu(), ok).item()) < 1e-5);
}

}  // namespace
