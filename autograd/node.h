// Node: one recorded op in the define-by-run graph. It knows its inputs (the edges backward
// follows) and a backward function that maps the gradient of its single output to one
// gradient per input. The lambda's captures are the tensors the op saved; release() drops
// them after a backward pass so memory is returned, and marks the node as freed.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace minidl {

// Given dL/d(output), returns dL/d(input_i) for each input (undefined Tensor = no gradient).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string name;
  std::vector<Tensor> inputs;
  BackwardFn backward;
  bool released = false;

  void release() {
    backward = nullptr;
    inputs.clear();
    released = true;
  }

  // Destroying a graph recursively (node -> input tensor -> its node -> ...) overflows the
  // stack on very deep chains, so the destructor unlinks the chain with an explicit stack.
  ~Node();
};

// Wraps an op's freshly computed `out`: when grad mode is on and any input requires grad,
// attaches a Node so backward() can reach the inputs. Otherwise returns `out` untouched.
// Saved tensors must not hold `out` itself (that would be a reference cycle): capture
// out.detach() instead.
Tensor record(Tensor out, const char* name, std::vector<Tensor> inputs, BackwardFn backward);

// True when at least one input requires grad and grad mode is on: ops can skip saving
// tensors for backward when this is false.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

}  // namespace minidl
