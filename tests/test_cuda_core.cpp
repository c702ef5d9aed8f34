// The CUDA core: storage through the caching allocator, copies between host and device,
// fill, host reads of device tensors, and autograd across .to(Device). The first case runs
// everywhere (no GPU: a clear error); the rest need a GPU and are skipped without one.
#include <doctest/doctest.h>

#include "cuda_test_util.h"
#include "tensor/factory.h"

#ifdef MINIDL_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

using namespace minidl;
using namespace minidl::testing;

TEST_CASE("cuda core: without a usable GPU a cuda tensor is a clear error naming the reason") {
  if (cuda_available()) return;  // covered by the GPU cases below
  Tensor x = ones({2, 3});
  CHECK_ERROR_MENTIONS(x.to(Device::CUDA), "cuda");
  CHECK_ERROR_MENTIONS(zeros({4}, DType::Float32, Device::CUDA), "cannot allocate", "cuda");
  CHECK(x.to(Device::CPU).same(x));  // already there: the same tensor
}

TEST_CASE("cuda core: values survive a round trip for every storable dtype and a strided source") {
  MINIDL_REQUIRE_GPU();
  Tensor f = randn({5, 7, 3});
  CHECK(f.to(Device::CUDA).to(Device::CPU).to_vector<float>() == f.to_vector<float>());
  Tensor d = randn({9}, DType::Float64);
  CHECK(d.cuda().cpu().to_vector<double>() == d.to_vector<double>());
  Tensor i = from_vector<int64_t>({1, -2, int64_t(1) << 60, 7});
  CHECK(i.cuda().cpu().to_vector<int64_t>() == i.to_vector<int64_t>());
  Tensor t = f.permute({2, 0, 1}).slice(1, 1, 5, 2);  // not contiguous
  Tensor g = t.cuda();
  CHECK(g.device() == Device::CUDA);
  CHECK(g.is_contiguous());
  CHECK(g.cpu().to_vector<float>() == t.to_vector<float>());
}

TEST_CASE("cuda core: host reads, fill and the *_like factories keep the device") {
  MINIDL_REQUIRE_GPU();
  Tensor x = full({3, 4}, 2.5, DType::Float32, Device::CUDA);
  CHECK(x.device() == Device::CUDA);
  CHECK(x.at({2, 3}) == 2.5);
  CHECK(x.to_vector<float>() == std::vector<float>(12, 2.5f));
  CHECK(zeros_like(x).to_vector<float>() == std::vector<float>(12, 0.0f));
  Tensor o = ones_like(x);
  CHECK(o.device() == Device::CUDA);
  CHECK(o.at({1, 1}) == 1.0);
  CHECK(scalar(4.0, DType::Float32, Device::CUDA).item() == 4.0);
  CHECK(full({5}, -3, DType::Int64, Device::CUDA).to_vector<int64_t>() == std::vector<int64_t>(5, -3));
  CHECK(x.to_string().find("device=cuda") != std::string::npos);
  CHECK(x.to_string().find("2.5") != std::string::npos);
}

TEST_CASE("cuda core: the gradient of .to(cuda) flows back to the cpu leaf") {
  MINIDL_REQUIRE_GPU();
  Tensor x = randn({4, 3});
  x.requires_grad_();
  Tensor y = x.to(Device::CUDA).to(Device::CPU);
  y.backward(full({4, 3}, 3.0));
  REQUIRE(x.grad().defined());
  CHECK(x.grad().device() == Device::CPU);
  CHECK(x.grad().to_vector<float>() == std::vector<float>(12, 3.0f));
}

#ifdef MINIDL_WITH_CUDA
TEST_CASE("cuda core: the allocator reuses freed blocks and reports out of memory clearly") {
  MINIDL_REQUIRE_GPU();
  { Tensor warm = Tensor::empty({1 << 20}, DType::Float32, Device::CUDA); }
  const cuda::MemoryStats before = cuda::memory_stats();
  for (int i = 0; i < 10; ++i) Tensor t = Tensor::empty({1 << 20}, DType::Float32, Device::CUDA);
  const cuda::MemoryStats after = cuda::memory_stats();
  CHECK(after.driver_mallocs == before.driver_mallocs);  // every one a cache hit
  CHECK(after.cache_hits >= before.cache_hits + 10);
  CHECK(after.bytes_in_use == before.bytes_in_use);
  // A petabyte: no GPU has it; the error must say so and suggest a smaller batch.
  CHECK_ERROR_MENTIONS(Tensor::empty({int64_t(1) << 48}, DType::Float32, Device::CUDA), "out of GPU memory",
                       "batch-size");
  Tensor still = full({8}, 1.0, DType::Float32, Device::CUDA);  // the device is still usable
  CHECK(still.to_vector<float>() == std::vector<float>(8, 1.0f));
}
#endif

TEST_CASE("cuda core: fill works for every storable dtype on the device") {
  MINIDL_REQUIRE_GPU();
  CHECK(zeros({3}, DType::Float64, Device::CUDA).to_vector<double>() == std::vector<double>(3, 0.0));
  CHECK(full({3}, 0.25, DType::Float64, Device::CUDA).to_vector<double>() == std::vector<double>(3, 0.25));
  CHECK(zeros({1000003}, DType::Float32, Device::CUDA).to_vector<float>() == std::vector<float>(1000003, 0.0f));
}

TEST_CASE("cuda core: at() on a strided device view reads the right element") {
  MINIDL_REQUIRE_GPU();
  const Tensor x = randn({4, 6, 5});
  const Tensor xc = x.permute({2, 0, 1}).slice(2, 1, 6, 2), xg = x.cuda().permute({2, 0, 1}).slice(2, 1, 6, 2);
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 4; ++j)
      for (int64_t k = 0; k < 3; ++k) CHECK(xg.at({i, j, k}) == xc.at({i, j, k}));
  CHECK_ERROR_MENTIONS(xg.at({5, 0, 0}), "out of range");
}

TEST_CASE("cuda core: host-side writers and gradients on the wrong device are clear errors") {
  MINIDL_REQUIRE_GPU();
  Generator gen(3);
  Tensor g = zeros({4}, DType::Float32, Device::CUDA);
  // Random draws are written by the host: into a device pointer they would crash.
  CHECK_ERROR_MENTIONS(uniform_(g, -1.0, 1.0, gen), "uniform_", "cpu");
  CHECK_ERROR_MENTIONS(normal_(g, 0.0, 1.0, gen), "normal_", "cpu");
  Tensor w = randn({3}).cuda().requires_grad_();
  Tensor y = w * 2.0;
  CHECK_ERROR_MENTIONS(y.backward(ones({3})), "backward", "cpu", "cuda");
  CHECK_ERROR_MENTIONS(w.set_grad(ones({3})), "set_grad", "cpu", "cuda");
  y.backward(ones({3}).cuda());
  CHECK(w.grad().device() == Device::CUDA);
  CHECK(w.grad().to_vector<float>() == std::vector<float>(3, 2.0f));
}
