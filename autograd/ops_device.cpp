// Tensor::to(Device): the one op that crosses devices. Forward copies the (contiguous)
// values; backward copies the gradient back to where the input lives, so a graph may start
// on the cpu, move to the gpu and still reach its cpu leaves.
#include "autograd/op_util.h"

#ifdef MINIDL_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace minidl {

using namespace detail;

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  // Allocating first gives the clear error when cuda is not built or has no GPU.
  Tensor out = Tensor::empty(shape(), dtype(), target);
#ifdef MINIDL_WITH_CUDA
  const Tensor src = plain(*this);  // contiguous on the source device
  const size_t nbytes = static_cast<size_t>(numel()) * dtype_size(dtype());
  if (target == Device::CUDA) cuda::copy_host_to_device(out.raw_data(), src.raw_data(), nbytes);
  else cuda::copy_device_to_host(out.raw_data(), src.raw_data(), nbytes);
#endif
  const Device back = device();
  return record(out, "to_device", {*this}, [back](const Tensor& g) -> std::vector<Tensor> { return {g.to(back)}; });
}

}  // namespace minidl
