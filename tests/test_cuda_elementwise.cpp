// CUDA elementwise, reduction, copy and cast ops against the CPU: each graph runs on cpu
// leaves and on their gpu twins (same values); outputs and every leaf gradient must agree.
// Without a GPU these tests skip (MINIDL_REQUIRE_GPU); the OffsetMap test runs everywhere.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cpu/strided.h"
#include "kernels/cuda/elementwise.h"

using namespace minidl;
using namespace minidl::testing;

namespace {

using Graph = std::function<Tensor(const std::vector<Tensor>&)>;

// gpu_vs_cpu alone would pass a kernel that wrote NaN: its relative error skips NaN terms
// (std::max(worst, NaN) is worst). So every NaN and infinity must first sit where the cpu
// has the same one; then the finite values must agree within tol.
void check_close(const Tensor& gpu, const Tensor& cpu, double tol) {
  const std::vector<double> g = gpu.to(Device::CPU).to_vector<double>(), c = cpu.to_vector<double>();
  REQUIRE(g.size() == c.size());
  int64_t mismatched = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool finite = std::isfinite(g[i]) && std::isfinite(c[i]);
    const bool same_special = (std::isnan(g[i]) && std::isnan(c[i])) || g[i] == c[i];
    if (!finite && !same_special) ++mismatched;
  }
  CHECK_MESSAGE(mismatched == 0, mismatched, " elements are NaN or infinite on one device only");
  CHECK(gpu_vs_cpu(gpu, cpu) < tol);
}

// Runs f on cpu leaves holding `values` and on gpu leaves holding the same values; checks
// the outputs, then backpropagates one random upstream gradient through both and checks
// every leaf's gradient (relative error below tol, see gpu_vs_cpu).
void check_parity(const Graph& f, const std::vector<Tensor>& values, double tol = 1e-5) {
  std::vector<Tensor> cpu, gpu;
  for (const Tensor& v : values) {
    cpu.push_back(v.detach().clone().requires_grad_());
    gpu.push_back(v.detach().to(Device::CUDA).requires_grad_());
  }
  const Tensor yc = f(cpu), yg = f(gpu);
  REQUIRE(yg.device() == Device::CUDA);
  REQUIRE(yg.shape() == yc.shape());
  check_close(yg, yc, tol);
  const Tensor up = randn(yc.shape());
  yc.backward(up);
  yg.backward(up.to(Device::CUDA));
  for (size_t i = 0; i < values.size(); ++i) {
    INFO("gradient of leaf " << i << " (shape " << shape_str(values[i].shape()) << ")");
    REQUIRE(cpu[i].grad().defined());
    REQUIRE(gpu[i].grad().defined());
    CHECK(gpu[i].grad().device() == Device::CUDA);
    check_close(gpu[i].grad(), cpu[i].grad(), tol);
  }
}

// The forward result only (for ops without autograd, or integer outputs), compared exactly.
void check_same_values(const Tensor& gpu, const Tensor& cpu) {
  REQUIRE(gpu.device() == Device::CUDA);
  REQUIRE(gpu.shape() == cpu.shape());
  REQUIRE(gpu.dtype() == cpu.dtype());
  CHECK(gpu.to(Device::CPU).to_vector<double>() == cpu.to_vector<double>());
}

Tensor positive(const Shape& shape) { return rand(shape, 0.5, 2.0); }

}  // namespace

// ---- runs everywhere: the index mapping the kernels use ----

TEST_CASE("cuda OffsetMap: offsets match a strided walk (broadcast, permuted, sliced, 0-dim)") {
  struct Case {
    Shape sizes;
    std::vector<int64_t> sa, sb;
  };
  const std::vector<Case> cases = {
      {{3, 7, 5}, {5, 0, 1}, {0, 1, 0}},          // [3,1,5] + [7,1]
      {{4, 6}, {1, 4}, {6, 1}},                   // a transposed, b contiguous
      {{2, 3, 4}, {24, 8, 2}, {0, 0, 0}},         // a sliced with step 2; b a broadcast scalar
      {{}, {}, {}},                               // 0-dim
      {{1000003}, {1}, {0}},                      // long, vector plus scalar
      {{2, 1, 3, 1, 2}, {6, 99, 2, 77, 1}, {0, 5, 1, 3, 3}},  // size-1 dims with odd strides
  };
  for (const Case& c : cases) {
    INFO("sizes " << shape_str(c.sizes));
    const auto map = cuda::make_offset_map<2>(c.sizes, {c.sa, c.sb}, "test");
    std::vector<int64_t> want_a, want_b;
    cpu::for_each_offset(c.sizes, c.sa, [&](int64_t, int64_t off) { want_a.push_back(off); });
    cpu::for_each_offset(c.sizes, c.sb, [&](int64_t, int64_t off) { want_b.push_back(off); });
    REQUIRE(map.numel() == int64_t(want_a.size()));
    bool all_equal = true;
    for (int64_t i = 0; i < map.numel(); ++i) {
      int64_t o[2];
      map.offsets(i, o);
      all_equal = all_equal && o[0] == want_a[i] && o[1] == want_b[i];
    }
    CHECK(all_equal);
  }
  // Merging: a contiguous block is one dim, a [N,C,1,1]-style broadcast keeps only real dims.
  CHECK(cuda::make_offset_map<1>({4, 5, 6}, {contiguous_strides({4, 5, 6})}, "test").ndim == 1);
  const std::vector<int64_t> x_strides = {75, 25, 5, 1}, bias_strides = {0, 1, 0, 0}, none;
  CHECK(cuda::make_offset_map<2>({8, 3, 5, 5}, {x_strides, bias_strides}, "test").ndim == 3);
  CHECK(cuda::make_offset_map<1>({}, {none}, "test").numel() == 1);
}

TEST_CASE("cuda OffsetMap: more than 8 unmergeable dims, or a stride count that does not fit, is an error") {
  const Shape sizes(9, 2);
  Shape reversed = contiguous_strides(sizes);
  std::reverse(reversed.begin(), reversed.end());  // a full transpose: no two dims merge
  CHECK_ERROR_MENTIONS(cuda::make_offset_map<1>(sizes, {reversed}, "add"), "add", "at most 8", "[2, 2, 2");
  CHECK(cuda::make_offset_map<1>(sizes, {contiguous_strides(sizes)}, "add").ndim == 1);
  const std::vector<int64_t> one_stride = {1};
  CHECK_ERROR_MENTIONS(cuda::make_offset_map<1>({2, 3}, {one_stride}, "mul"), "mul", "strides");
}

// ---- gpu parity ----

TEST_CASE("cuda binary ops: broadcast [3,1,5] with [7,1], forward and backward") {
  MINIDL_REQUIRE_GPU();
  const Tensor a = randn({3, 1, 5}), b = randn({7, 1}), bp = positive({7, 1});
  check_parity([](const auto& x) { return add(x[0], x[1]); }, {a, b});
  check_parity([](const auto& x) { return sub(x[0], x[1]); }, {a, b});
  check_parity([](const auto& x) { return mul(x[0], x[1]); }, {a, b});
  check_parity([](const auto& x) { return div(x[0], x[1]); }, {a, bp});
  check_parity([](const auto& x) { return div(x[1], x[0]); }, {positive({3, 1, 5}), b});
  // Broadcasting on both sides at once, and a lower-rank operand in front.
  check_parity([](const auto& x) { return x[0] * x[1] - x[1]; }, {randn({4, 1, 6}), randn({5, 1})});
}

TEST_CASE("cuda binary ops: 0-dim tensors and scalar operators stay on the gpu") {
  MINIDL_REQUIRE_GPU();
  const Tensor a = randn({4, 3}), s = randn({});
  check_parity([](const auto& x) { return x[0] * x[1]; }, {a, s});
  check_parity([](const auto& x) { return x[1] - x[0]; }, {a, s});
  check_parity([](const auto& x) { return x[0] / x[1]; }, {a, positive({})});
  check_parity([](const auto& x) { return x[0] + x[1]; }, {s, randn({})});
  check_parity([](const auto& x) { return ((x[0] + 2.0) * 3.0 - 1.5) / 4.0; }, {a});
  check_parity([](const auto& x) { return 2.0 - x[0] * 0.5; }, {a});
  check_parity([](const auto& x) { return 1.5 / x[0] + 2.0 * x[0]; }, {positive({4, 3})});
  check_parity([](const auto& x) { return 1.0 + x[0]; }, {s});
  const Tensor g = a.to(Device::CUDA) * 2.0;
  CHECK(g.device() == Device::CUDA);
}

TEST_CASE("cuda binary ops: permuted and sliced (non-contiguous) inputs") {
  MINIDL_REQUIRE_GPU();
  // a: [5,4,3] permuted to [3,5,4]; b: [3,10,4] sliced with step 2 to [3,5,4].
  check_parity([](const auto& x) { return x[0].permute({2, 0, 1}) * x[1].slice(1, 0, 10, 2); },
               {randn({5, 4, 3}), randn({3, 10, 4})});
  check_parity([](const auto& x) { return x[0].transpose(0, 1) + x[1].slice(0, 1, 7, 3); },
               {randn({6, 2}), randn({8, 6})});
  check_parity([](const auto& x) { return x[0].narrow(1, 2, 3) / x[1].transpose(0, 1); },
               {randn({4, 7}), positive({3, 4})});
  // Broadcast of a permuted operand against a sliced one.
  check_parity([](const auto& x) { return x[0].permute({1, 0}) - x[1].slice(1, 1, 9, 2); },
               {randn({1, 5}), randn({5, 9})});
}

TEST_CASE("cuda unary ops neg, exp, log, relu: forward and backward, contiguous and not") {
  MINIDL_REQUIRE_GPU();
  Tensor z = randn({37, 29});
  for (int64_t i = 0; i < 29; i += 4) z.data<float>()[i] = 0.0f;  // relu at exactly 0
  check_parity([](const auto& x) { return neg(x[0]); }, {z});
  check_parity([](const auto& x) { return exp(x[0]); }, {z});
  check_parity([](const auto& x) { return log(x[0]); }, {positive({37, 29})});
  check_parity([](const auto& x) { return relu(x[0]); }, {z});
  check_parity([](const auto& x) { return -x[0].transpose(0, 1); }, {z});
  check_parity([](const auto& x) { return exp(x[0].slice(0, 1, 37, 3)); }, {z});
  check_parity([](const auto& x) { return log(x[0].permute({1, 0})); }, {positive({37, 29})});
  check_parity([](const auto& x) { return relu(x[0].transpose(0, 1)) * x[0].transpose(0, 1); }, {z});
  check_parity([](const auto& x) { return relu(x[0]); }, {randn({})});
}

TEST_CASE("cuda relu: NaN and infinities map as on the cpu") {
  MINIDL_REQUIRE_GPU();
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor x = from_vector<float>({std::nanf(""), inf, -inf, -0.0f, 2.5f}, {5});
  const std::vector<float> got = relu(x.to(Device::CUDA)).to(Device::CPU).to_vector<float>();
  const std::vector<float> want = relu(x).to_vector<float>();
  CHECK(got == want);
  CHECK(exp(from_vector<float>({-inf, 0.f}, {2}).to(Device::CUDA)).to(Device::CPU).to_vector<float>() ==
        std::vector<float>{0.f, 1.f});
}

TEST_CASE("cuda sum and mean over any set of dims, keepdim or not") {
  MINIDL_REQUIRE_GPU();
  const Tensor x = randn({4, 5, 6});
  const std::vector<std::vector<int64_t>> dim_sets = {{}, {0}, {1}, {2}, {-1}, {0, 2}, {2, 0}, {0, 1, 2}, {1, 2}};
  for (const auto& dims : dim_sets) {
    for (bool keep : {false, true}) {
      INFO("dims of size " << dims.size() << ", keepdim " << keep);
      check_parity([&](const auto& v) { return sum(v[0], dims, keep); }, {x});
      check_parity([&](const auto& v) { return mean(v[0], dims, keep); }, {x});
      check_parity([&](const auto& v) { return sum(v[0].permute({2, 0, 1}), dims, keep); }, {x});
      check_parity([&](const auto& v) { return mean(v[0].slice(1, 0, 5, 2), dims, keep); }, {x});
    }
  }
  check_parity([](const auto& v) { return sum(v[0]); }, {x});
  check_parity([](const auto& v) { return mean(v[0]); }, {randn({})});
}

TEST_CASE("cuda sum: the serial, single-run and multi-run paths, large and awkward sizes") {
  MINIDL_REQUIRE_GPU();
  // 1000003 is prime: no size divides evenly into blocks or runs.
  const Tensor big = randn({1000003});
  check_parity([](const auto& v) { return sum(v[0]); }, {big});
  check_parity([](const auto& v) { return mean(v[0]); }, {big});
  // [3, 333334]: over dim 0 three terms per output (one thread each), over dim 1 runs of terms.
  const Tensor wide = randn({3, 333334});
  check_parity([](const auto& v) { return sum(v[0], {0}); }, {wide});
  check_parity([](const auto& v) { return sum(v[0], {1}, true); }, {wide});
  // 65 and 16385 terms: just past the serial limit and just past one run.
  check_parity([](const auto& v) { return sum(v[0], {1}); }, {randn({7, 65})});
  check_parity([](const auto& v) { return sum(v[0], {0, 2}); }, {randn({5, 3, 3277})});
  // Reduced dims that are not neighbours, on a transposed input ([70, 3, 300] -> 21000 terms).
  check_parity([](const auto& v) { return sum(v[0].transpose(0, 2), {0, 2}); }, {randn({300, 3, 70})});
  // Eight dims, permuted, every other one reduced.
  check_parity([](const auto& v) { return sum(v[0].permute({7, 6, 5, 4, 3, 2, 1, 0}), {0, 2, 4, 6}); },
               {randn({2, 3, 2, 3, 2, 3, 2, 3})});
}

TEST_CASE("cuda sum is deterministic: the same input gives the same bits") {
  MINIDL_REQUIRE_GPU();
  const Tensor x = randn({1000003}).to(Device::CUDA);
  const Tensor y = randn({64, 40000}).to(Device::CUDA);
  CHECK(sum(x).item() == sum(x).item());
  CHECK(sum(y, {0}).to(Device::CPU).to_vector<float>() == sum(y, {0}).to(Device::CPU).to_vector<float>());
  CHECK(sum(y, {1}).to(Device::CPU).to_vector<float>() == sum(y, {1}).to(Device::CPU).to_vector<float>());
}

TEST_CASE("cuda sum_to: the adjoint of broadcasting") {
  MINIDL_REQUIRE_GPU();
  const Tensor x = randn({3, 7, 5});
  for (const Shape& target : std::vector<Shape>{{7, 1}, {1, 5}, {3, 1, 5}, {5}, {}, {1, 1, 1}, {3, 7, 5}}) {
    INFO("target " << shape_str(target));
    check_parity([&](const auto& v) { return sum_to(v[0], target); }, {x});
    check_parity([&](const auto& v) { return sum_to(v[0].permute({0, 1, 2}) * 2.0, target); }, {x});
  }
}

TEST_CASE("cuda add_: dst += alpha * src with a strided source") {
  MINIDL_REQUIRE_GPU();
  const Tensor d = randn({6, 5}), s = randn({5, 6});
  Tensor dc = d.clone(), dg = d.to(Device::CUDA);
  add_(dc, s.transpose(0, 1), -0.5);
  add_(dg, s.to(Device::CUDA).transpose(0, 1), -0.5);
  check_same_values(dg, dc);  // product then sum, as on the cpu: bit for bit
  const Tensor big = randn({1000003}), step = randn({1000003});
  Tensor bc = big.clone(), bg = big.to(Device::CUDA);
  add_(bc, step, 0.125);
  add_(bg, step.to(Device::CUDA), 0.125);
  check_same_values(bg, bc);
}

TEST_CASE("add_ and copy_: a source overlapping the destination in another layout is read before it is updated") {
  // Runs everywhere; the gpu twin below. dst += src^T must use src's values from before.
  const Tensor x0 = randn({33, 33});
  const std::vector<float> want = (x0 + x0.transpose(0, 1) * 0.5).to_vector<float>();
  Tensor x = x0.clone();
  add_(x, x.transpose(0, 1), 0.5);
  CHECK(x.to_vector<float>() == want);
  // A shifted window of the same storage: x[0:n-1] += x[1:n].
  Tensor v = from_vector<float>({1, 2, 3, 4, 5}, {5});
  Tensor head = v.slice(0, 0, 4);
  add_(head, v.slice(0, 1, 5), 1.0);
  CHECK(v.to_vector<float>() == std::vector<float>{3, 5, 7, 9, 5});
  // copy_ between overlapping windows moves the old values, as memmove does.
  Tensor w = from_vector<float>({1, 2, 3, 4, 5}, {5});
  Tensor tail = w.slice(0, 1, 5);
  copy_(tail, w.slice(0, 0, 4));
  CHECK(w.to_vector<float>() == std::vector<float>{1, 1, 2, 3, 4});
}

TEST_CASE("cuda add_ and copy_: a source overlapping the destination in another layout, as on the cpu") {
  MINIDL_REQUIRE_GPU();
  const Tensor x0 = randn({129, 129});
  Tensor xc = x0.clone(), xg = x0.to(Device::CUDA);
  add_(xc, xc.transpose(0, 1), 0.5);
  add_(xg, xg.transpose(0, 1), 0.5);
  check_same_values(xg, xc);
  Tensor v = randn({100003}).to(Device::CUDA), vc = v.to(Device::CPU);
  Tensor head = v.slice(0, 0, 100002), head_c = vc.slice(0, 0, 100002);
  add_(head, v.slice(0, 1, 100003), 1.0);
  add_(head_c, vc.slice(0, 1, 100003), 1.0);
  check_same_values(v, vc);
  Tensor tail = v.slice(0, 1, 100003), tail_c = vc.slice(0, 1, 100003);
  copy_(tail, v.slice(0, 0, 100002));
  copy_(tail_c, vc.slice(0, 0, 100002));
  check_same_values(v, vc);
  Tensor sq = randn({65, 65}).to(Device::CUDA), sq_c = sq.to(Device::CPU);
  Tensor sq_t = sq.transpose(0, 1), sq_c_t = sq_c.transpose(0, 1);
  copy_(sq_t, sq);  // in place transpose
  copy_(sq_c_t, sq_c);
  check_same_values(sq, sq_c);
}

TEST_CASE("cuda copy_: strided copies within the gpu for float32, float64 and int64") {
  MINIDL_REQUIRE_GPU();
  for (DType dt : {DType::Float32, DType::Float64, DType::Int64}) {
    INFO("dtype " << dtype_name(dt));
    const Tensor src = (randn({4, 4}) * 100.0).to(dt);
    Tensor dc = zeros({4, 10}, dt), dg = dc.to(Device::CUDA);
    Tensor wc = dc.slice(1, 1, 9, 2), wg = dg.slice(1, 1, 9, 2);  // [4,4] with stride 2
    copy_(wc, src.transpose(0, 1));
    copy_(wg, src.to(Device::CUDA).transpose(0, 1));
    check_same_values(dg, dc);
    // Contiguous to contiguous (the plain device-to-device path).
    Tensor all = zeros({4, 4}, dt).to(Device::CUDA);
    copy_(all, src.to(Device::CUDA));
    check_same_values(all, src);
  }
}

TEST_CASE("cuda copy_: across devices moves the source first") {
  MINIDL_REQUIRE_GPU();
  const Tensor src = randn({5, 3});
  Tensor dg = zeros({3, 5}, DType::Float32, Device::CUDA);
  Tensor dg_t = dg.transpose(0, 1);
  copy_(dg_t, src);  // cpu -> strided gpu destination
  CHECK(dg.to(Device::CPU).to_vector<float>() == src.transpose(0, 1).contiguous().to_vector<float>());
  Tensor dc = zeros({5, 3});
  copy_(dc, src.to(Device::CUDA));  // gpu -> cpu
  CHECK(dc.to_vector<float>() == src.to_vector<float>());
  Tensor di = zeros({4}, DType::Int64);
  copy_(di, from_vector<int64_t>({0, 1, 2, 3}).to(Device::CUDA));
  CHECK(di.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3});
}

TEST_CASE("cuda clone, contiguous and reshape of strided tensors") {
  MINIDL_REQUIRE_GPU();
  const Tensor x = randn({4, 6, 5});
  const Tensor xg = x.to(Device::CUDA).permute({2, 0, 1});
  const Tensor c = xg.contiguous();
  CHECK(c.device() == Device::CUDA);
  CHECK(c.is_contiguous());
  check_same_values(c, x.permute({2, 0, 1}).contiguous());
  check_parity([](const auto& v) { return v[0].permute({2, 0, 1}).contiguous() * 3.0; }, {x});
  check_parity([](const auto& v) { return v[0].clone() * v[0]; }, {x});
  check_parity([](const auto& v) { return v[0].transpose(0, 2).reshape({-1}) * 2.0; }, {x});
  check_parity([](const auto& v) { return v[0].slice(2, 1, 5, 3).flatten(); }, {x});
}

TEST_CASE("cuda to(dtype): casts between float32, float64 and int64 match the cpu") {
  MINIDL_REQUIRE_GPU();
  const Tensor f = from_vector<float>({-2.7f, 3.9f, 1e10f, -0.5f, 0.f, 123456789.f, -1e18f}, {7});
  const Tensor fg = f.to(Device::CUDA);
  check_same_values(fg.to(DType::Int64), f.to(DType::Int64));
  check_same_values(fg.to(DType::Float64), f.to(DType::Float64));
  check_same_values(fg.to(DType::Float64).to(DType::Int64), f.to(DType::Float64).to(DType::Int64));
  const Tensor i = from_vector<int64_t>({-3, 0, 16777217, (int64_t(1) << 62) + 1}, {4});
  check_same_values(i.to(Device::CUDA).to(DType::Float32), i.to(DType::Float32));
  check_same_values(i.to(Device::CUDA).to(DType::Float64), i.to(DType::Float64));
  // A strided source, and float64 -> float32 rounding.
  const Tensor d = randn({6, 4}, DType::Float64);
  check_same_values(d.to(Device::CUDA).transpose(0, 1).to(DType::Float32), d.transpose(0, 1).to(DType::Float32));
  // The gradient flows back through the casts.
  check_parity([](const auto& v) { return v[0].to(DType::Float64).to(DType::Float32) * v[0]; }, {randn({3, 5})});
}

TEST_CASE("cuda to(int64): NaN, infinity and out-of-range values are an error, as on the cpu") {
  MINIDL_REQUIRE_GPU();
  const float inf = std::numeric_limits<float>::infinity();
  for (float bad : {std::nanf(""), inf, -inf, 1e19f, -1e19f}) {
    const Tensor x = from_vector<float>({1.f, 2.f, bad, 4.f, bad}, {5});
    INFO("bad value " << bad);
    CHECK_ERROR_MENTIONS(x.to(DType::Int64), "to", "flat index 2", "int64");
    CHECK_ERROR_MENTIONS(x.to(Device::CUDA).to(DType::Int64), "to", "flat index 2", "int64");
    CHECK_ERROR_MENTIONS(x.to(DType::Float64).to(Device::CUDA).to(DType::Int64), "to", "flat index 2", "int64");
  }
  // -2^63 fits exactly; the gpu is usable after an error.
  const Tensor edge = from_vector<double>({-9223372036854775808.0}, {1});
  check_same_values(edge.to(Device::CUDA).to(DType::Int64), edge.to(DType::Int64));
}

TEST_CASE("cuda slice backward: zeros on the gradient's device with the window filled") {
  MINIDL_REQUIRE_GPU();
  const Tensor x = randn({6, 4});
  check_parity([](const auto& v) { return v[0].slice(0, 1, 5, 2) * 3.0; }, {x});
  check_parity([](const auto& v) { return v[0].narrow(1, 1, 2) + v[0].slice(1, 0, 4, 2); }, {x});
  check_parity([](const auto& v) { return v[0].transpose(0, 1).slice(1, 2, 6, 1); }, {x});
}

TEST_CASE("cuda: a small graph of every op, cpu vs gpu") {
  MINIDL_REQUIRE_GPU();
  // loss = mean over batch of sum_j (relu(x w + b) - t)^2 / exp(s) + log(p), built elementwise.
  const Graph f = [](const std::vector<Tensor>& v) {
    const Tensor& x = v[0];  // [8, 1, 5]
    const Tensor& w = v[1];  // [3, 5]
    const Tensor& b = v[2];  // [3, 1]
    const Tensor& t = v[3];  // [8, 3, 5]
    const Tensor& p = v[4];  // [] positive
    Tensor h = relu(x * w + b);
    Tensor d = h - t;
    Tensor e = sum(d * d, {2}) / exp(b.transpose(0, 1));
    return mean(e, {0}) + log(p) - neg(sum(sum_to(h, {1, 5}).slice(1, 0, 5, 2)));
  };
  check_parity(f, {randn({8, 1, 5}), randn({3, 5}), randn({3, 1}), randn({8, 3, 5}), positive({})}, 1e-5);
}

TEST_CASE("cuda ops: device and dtype mismatches are clear errors") {
  MINIDL_REQUIRE_GPU();
  const Tensor c = randn({2, 3}), g = c.to(Device::CUDA);
  CHECK_ERROR_MENTIONS(add(g, c), "add", "different devices", "cuda", "cpu");
  CHECK_ERROR_MENTIONS(mul(c, g), "mul", "different devices");
  CHECK_ERROR_MENTIONS(div(g, c), "div", "different devices");
  Tensor gd = g.clone();
  CHECK_ERROR_MENTIONS(add_(gd, c), "add_", "different devices");
  const Tensor g64 = randn({2, 3}, DType::Float64).to(Device::CUDA);
  CHECK_ERROR_MENTIONS(add(g64, g64), "add", "float32");
  CHECK_ERROR_MENTIONS(exp(g64), "exp", "float32");
  CHECK_ERROR_MENTIONS(sum(g64), "sum", "float32");
  // Nine dims that cannot be merged exceed what the compute kernels index; contiguous()
  // (which the message suggests) copies any depth.
  const Tensor deep = randn(Shape(9, 2)).to(Device::CUDA).permute({8, 7, 6, 5, 4, 3, 2, 1, 0});
  CHECK_ERROR_MENTIONS(neg(deep), "neg", "at most 8");
  CHECK(neg(deep.contiguous()).dim() == 9);
}

TEST_CASE("cuda copy_ and contiguous: layouts deeper than the kernels' 8 dims go slab by slab") {
  MINIDL_REQUIRE_GPU();
  const Tensor x = randn(Shape{2, 3, 2, 3, 2, 3, 2, 3, 2, 3});  // 10 dims, none mergeable once reversed
  const std::vector<int64_t> reverse = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
  check_same_values(x.to(Device::CUDA).permute(reverse).contiguous(), x.permute(reverse).contiguous());
  Tensor dc = zeros(Shape{3, 2, 3, 2, 3, 2, 3, 2, 3, 2}), dg = dc.to(Device::CUDA);
  Tensor wc = dc.permute({1, 0, 3, 2, 5, 4, 7, 6, 9, 8}), wg = dg.permute({1, 0, 3, 2, 5, 4, 7, 6, 9, 8});
  copy_(wc, x);  // into a strided destination
  copy_(wg, x.to(Device::CUDA));
  check_same_values(dg, dc);
  check_parity([&](const auto& v) { return v[0].permute(reverse).reshape({-1}) * 2.0; }, {x});
}

TEST_CASE("cuda elementwise and sum: int64 index math past 2^31 elements") {
  MINIDL_REQUIRE_GPU();
  // 2^31 + 7 floats (8.6 GB) twice: any 32-bit index in the kernels wraps and fails here.
  const int64_t n = (int64_t(1) << 31) + 7;
  Tensor a = full({n}, 1.5, DType::Float32, Device::CUDA);
  Tensor c = a + full({1}, 2.0, DType::Float32, Device::CUDA);
  CHECK(c.at({0}) == 3.5);
  CHECK(c.at({n - 1}) == 3.5);
  CHECK(c.at({(int64_t(1) << 31) + 1}) == 3.5);
  a = Tensor();
  CHECK(sum(c).item() == double(float(double(n) * 3.5)));
}
