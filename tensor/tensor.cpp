#include "tensor/tensor.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <sstream>

#include "autograd/node.h"
#include "kernels/cpu/strided.h"

namespace minidl {

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape(shape, "Tensor::empty");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "Tensor::size")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape().size(); i-- > 0;) {
    if (shape()[i] != 1 && strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data()) + impl().offset * dtype_size(dtype());
}

namespace {
double load_as_double(const Tensor& t, int64_t off) {
  const char* base = static_cast<const char*>(t.storage()->data());
  switch (t.dtype()) {
    case DType::Float32: return reinterpret_cast<const float*>(base)[off];
    case DType::Float64: return reinterpret_cast<const double*>(base)[off];
    case DType::Int64: return static_cast<double>(reinterpret_cast<const int64_t*>(base)[off]);
    default: break;
  }
  throw Error(detail::concat("reading elements of a ", dtype_name(t.dtype()), " tensor is not supported on the cpu"));
}
}  // namespace

// The host-side readers below work on cpu memory; a cuda tensor is read through a copy.
static Tensor host_copy(const Tensor& t) { return t.detach().to(Device::CPU); }

double Tensor::at(const std::vector<int64_t>& index) const {
  MINIDL_CHECK(static_cast<int64_t>(index.size()) == dim(), "Tensor::at: index has ", index.size(),
               " entries for a tensor of shape ", shape_str(shape()));
  int64_t off = offset();
  for (size_t d = 0; d < index.size(); ++d) {
    MINIDL_CHECK(index[d] >= 0 && index[d] < shape()[d], "Tensor::at: index ", index[d],
                 " out of range for dim ", d, " of shape ", shape_str(shape()));
    off += index[d] * strides()[d];
  }
  // On the device only the one element comes back (a 0-dim view of it), not the tensor.
  if (device() != Device::CPU) return host_copy(make_view(*this, {}, {}, off)).item();
  return load_as_double(*this, off);
}

double Tensor::item() const {
  MINIDL_CHECK(numel() == 1, "Tensor::item: tensor of shape ", shape_str(shape()),
               " has ", numel(), " elements; item() needs exactly one");
  if (device() != Device::CPU) return host_copy(*this).item();
  return load_as_double(*this, offset());
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  if (device() != Device::CPU) return host_copy(*this).to_vector<T>();
  std::vector<T> out(numel());
  if (dtype() == DType::Int64) {  // direct, so values above 2^53 keep every bit
    const int64_t* base = static_cast<const int64_t*>(storage()->data()) + offset();
    cpu::for_each_offset(shape(), strides(), [&](int64_t i, int64_t off) { out[i] = static_cast<T>(base[off]); });
    return out;
  }
  cpu::for_each_offset(shape(), strides(), [&](int64_t i, int64_t off) {
    out[i] = static_cast<T>(load_as_double(*this, offset() + off));
  });
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

Tensor& Tensor::requires_grad_(bool on) {
  MINIDL_CHECK(!on || is_floating_compute(dtype()), "requires_grad_: only float tensors can require grad, this one is ",
               dtype_name(dtype()));
  MINIDL_CHECK(is_leaf(), "requires_grad_: can only be set on a leaf tensor (this one was made by ",
               grad_fn()->name, "); use detach() first");
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return Tensor(impl().grad); }

void Tensor::set_grad(const Tensor& g) {
  if (g.defined())
    MINIDL_CHECK(g.shape() == shape() && g.dtype() == dtype() && g.device() == device(), "set_grad: gradient ",
                 shape_str(g.shape()), " ", dtype_name(g.dtype()), " on ", device_name(g.device()),
                 " does not match tensor ", shape_str(shape()), " ", dtype_name(dtype()), " on ",
                 device_name(device()));
  impl().grad = g.impl_ptr();
}

void Tensor::zero_grad() { impl().grad.reset(); }

Tensor Tensor::detach() const { return make_view(*this, shape(), strides(), offset()); }

std::string Tensor::to_string(int max_per_dim) const {
  std::ostringstream os;
  os << "Tensor(shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype())
     << ", device=" << device_name(device());
  if (requires_grad()) os << ", requires_grad";
  if (grad_fn()) os << ", grad_fn=" << grad_fn()->name;
  os << ")\n";
  if (dtype() == DType::BFloat16 || dtype() == DType::Float16) return os.str();
  const Tensor host = device() == Device::CPU ? *this : host_copy(*this);  // one copy, not one per element
  // Print nested brackets, eliding the middle of long dims with "...".
  const int64_t nd = dim();
  std::vector<int64_t> idx;
  auto rec = [&](auto&& self, int64_t d) -> void {
    if (d == nd) {
      double v = host.at(idx);
      char buf[32];
      if (dtype() == DType::Int64) std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
      else std::snprintf(buf, sizeof buf, "%.4g", v);
      os << buf;
      return;
    }
    os << "[";
    int64_t n = shape()[d];
    int64_t half = max_per_dim / 2;
    for (int64_t i = 0; i < n; ++i) {
      if (n > max_per_dim && i == half) {
        os << "...";
        i = n - half - 1;
        if (d + 1 < nd) os << ",\n" << std::string(d + 1, ' ');
        else os << ", ";
        continue;
      }
      idx.push_back(i);
      self(self, d + 1);
      idx.pop_back();
      if (i + 1 < n) {
        if (d + 1 < nd) os << ",\n" << std::string(d + 1, ' ');
        else os << ", ";
      }
    }
    os << "]";
  };
  rec(rec, 0);
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

}  // namespace minidl
