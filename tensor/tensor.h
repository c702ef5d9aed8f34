// Tensor: a handle to a TensorImpl, which is a view (shape, strides, offset, dtype) over a
// shared Storage, plus the autograd fields: requires_grad, the accumulated grad of a leaf,
// and grad_fn, the Node that produced a non-leaf. Copying a Tensor copies the handle.
#pragma once
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/shape.h"
#include "tensor/storage.h"

namespace minidl {

struct Node;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;    // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::Float32;

  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // leaves only: accumulated by backward()
  std::shared_ptr<Node> grad_fn;     // non-leaves only: the op that made this tensor
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // A new contiguous tensor with uninitialised contents (the factories build on this).
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::CPU);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  // Pointer to the first element (storage start + offset). T must match the dtype.
  template <class T> T* data() const {
    MINIDL_CHECK(dtype_of<T>() == dtype(), "Tensor::data: requested ", dtype_name(dtype_of<T>()),
                 " from a ", dtype_name(dtype()), " tensor");
    return static_cast<T*>(impl().storage->data()) + impl().offset;
  }
  void* raw_data() const;

  // Element at a full index, as double (for printing and tests). On cuda these read
  // through a copy to the host (slow; meant for tests, printing and metrics).
  double at(const std::vector<int64_t>& index) const;
  // The value of a one-element tensor.
  double item() const;
  // All elements in row-major order, converted to T.
  template <class T> std::vector<T> to_vector() const;

  // --- autograd ---
  bool requires_grad() const { return impl().requires_grad; }
  // Marks a leaf as a parameter/input whose gradient backward() should accumulate.
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  Tensor grad() const;  // undefined Tensor until backward() reaches this leaf
  void set_grad(const Tensor& g);
  void zero_grad();     // drops the accumulated gradient
  // Same storage, cut from the graph: no grad_fn, requires_grad false.
  Tensor detach() const;
  // Runs reverse-mode autodiff from this tensor. A scalar needs no gradient; anything else
  // needs one of its own shape. retain_graph keeps saved tensors for a second backward.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;

  // --- views and copies (autograd-aware; defined in autograd/ops_view.cpp) ---
  Tensor reshape(const Shape& shape) const;  // view when the layout allows, else copy
  Tensor view(const Shape& shape) const;     // view only: error if it would need a copy
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  // The same values on another device (autograd-aware: the gradient flows back to this
  // device). Returns *this when already there. Defined in autograd/ops_device.cpp.
  Tensor to(Device device) const;
  Tensor cpu() const { return to(Device::CPU); }
  Tensor cuda() const { return to(Device::CUDA); }

  std::string to_string(int max_per_dim = 6) const;

  TensorImpl& impl() const {
    MINIDL_CHECK(impl_ != nullptr, "use of an undefined Tensor (default-constructed, never assigned)");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// A view of `base`'s storage with the given geometry; no autograd bookkeeping.
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

}  // namespace minidl
