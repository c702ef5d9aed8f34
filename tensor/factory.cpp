#include "tensor/factory.h"

#include <algorithm>
#include <cmath>

#ifdef MINIDL_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace minidl {

namespace {
// Random draws are written by the host: a cuda tensor's pointer is not host memory.
void check_host_writable(const Tensor& t, const char* op) {
  MINIDL_CHECK(t.is_contiguous(), op, ": tensor must be contiguous");
  MINIDL_CHECK(t.device() == Device::CPU, op, ": random numbers are drawn on the cpu; fill a cpu tensor and move it "
               "with .to(Device::CUDA)");
}

// Writes gen-drawn values into a contiguous float tensor in row-major order.
template <class F>
void generate(Tensor& t, const char* op, F&& draw) {
  check_host_writable(t, op);
  dispatch_float(t.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(draw());
  });
}
}  // namespace

void fill_(Tensor& t, double value) {
  MINIDL_CHECK(t.is_contiguous(), "fill_: tensor must be contiguous");
#ifdef MINIDL_WITH_CUDA
  if (t.device() == Device::CUDA) {
    switch (t.dtype()) {
      case DType::Float32: cuda::fill_f32(t.data<float>(), t.numel(), float(value)); return;
      case DType::Float64: cuda::fill_f64(t.data<double>(), t.numel(), value); return;
      case DType::Int64: cuda::fill_i64(t.data<int64_t>(), t.numel(), int64_t(value)); return;
      default:
        throw Error(detail::concat("fill_: dtype ", dtype_name(t.dtype()), " is not supported on cuda"));
    }
  }
#endif
  switch (t.dtype()) {
    case DType::Float32: std::fill(t.data<float>(), t.data<float>() + t.numel(), float(value)); break;
    case DType::Float64: std::fill(t.data<double>(), t.data<double>() + t.numel(), value); break;
    case DType::Int64: std::fill(t.data<int64_t>(), t.data<int64_t>() + t.numel(), int64_t(value)); break;
    default: throw Error(detail::concat("fill_: dtype ", dtype_name(t.dtype()), " is not supported on the cpu"));
  }
}

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  fill_(t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(double start, double end, double step, DType dtype) {
  MINIDL_CHECK(step != 0, "arange: step must not be zero");
  const double span = (end - start) / step;
  MINIDL_CHECK(span > 0, "arange: [", start, ", ", end, ") with step ", step, " holds no element");
  const int64_t n = static_cast<int64_t>(std::ceil(span));
  Tensor t = Tensor::empty({n}, dtype);
  int64_t i = 0;
  generate(t, "arange", [&] { return start + step * double(i++); });
  return t;
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  MINIDL_CHECK(!values.empty(), "from_vector: the vector is empty (minidl has no empty tensors)");
  Shape s = shape.empty() ? Shape{int64_t(values.size())} : shape;
  check_shape(s, "from_vector");
  MINIDL_CHECK(shape_numel(s) == int64_t(values.size()), "from_vector: ", values.size(),
               " values do not fill shape ", shape_str(s), " (", shape_numel(s), " elements)");
  Tensor t = Tensor::empty(s, dtype_of<T>());
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&);

Tensor randn(const Shape& shape, DType dtype, Generator& gen) {
  Tensor t = Tensor::empty(shape, dtype);
  normal_(t, 0.0, 1.0, gen);
  return t;
}

Tensor rand(const Shape& shape, double lo, double hi, DType dtype, Generator& gen) {
  Tensor t = Tensor::empty(shape, dtype);
  uniform_(t, lo, hi, gen);
  return t;
}

void uniform_(Tensor& t, double lo, double hi, Generator& gen) {
  MINIDL_CHECK(lo <= hi, "uniform_: lower bound ", lo, " is above upper bound ", hi);
  // [lo, hi): lo + (hi - lo) * u can round up to hi (in double, or when narrowed to float);
  // such draws become the largest value below hi in the tensor's own precision.
  check_host_writable(t, "uniform_");
  dispatch_float(t.dtype(), "uniform_", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    const T top = lo < hi ? std::nextafter(static_cast<T>(hi), static_cast<T>(lo)) : static_cast<T>(lo);
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = std::min(static_cast<T>(gen.uniform(lo, hi)), top);
  });
}

void normal_(Tensor& t, double mean, double std, Generator& gen) {
  MINIDL_CHECK(std >= 0, "normal_: std must be >= 0, got ", std);
  generate(t, "normal_", [&] { return gen.normal(mean, std); });
}

void kaiming_normal_fan_out_(Tensor& t, Generator& gen) {
  MINIDL_CHECK(t.dim() >= 2, "kaiming_normal_fan_out_: needs a weight with >= 2 dims, got shape ", shape_str(t.shape()));
  const int64_t fan_out = t.numel() / t.size(1);  // size(0) * prod(kernel dims)
  normal_(t, 0.0, std::sqrt(2.0 / double(fan_out)), gen);
}

}  // namespace minidl
