// The backward engine: topological sort of the Nodes reachable from the root, then one walk
// in reverse order, summing gradients per node and accumulating (+=) into leaves.
#include <unordered_map>
#include <unordered_set>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "tensor/factory.h"

namespace minidl {

namespace {
thread_local bool g_grad_enabled = true;

// Sums g into a non-leaf's pending gradient. Out of place: backward functions may hand the
// same tensor to several inputs (add passes its gradient through to both operands).
void accumulate(Tensor& slot, const Tensor& g) { slot = slot.defined() ? add(slot, g) : g; }

// Leaves own their .grad buffer (a private copy), so later passes can add into it in place.
// A gradient that nothing else can see: this handle is its only owner, it owns its whole
// storage alone, and it is a plain contiguous tensor. The backward made it for this input
// alone, so it can become .grad as it is instead of being copied (ResNet50: 100 MB a step).
bool owned_outright(const Tensor& g) {
  const TensorImpl& t = g.impl();
  return g.impl_ptr().use_count() == 1 && t.storage && t.storage.use_count() == 1 && g.is_contiguous() &&
         t.offset == 0 && t.storage->nbytes() == size_t(g.numel()) * dtype_size(t.dtype) && !t.requires_grad &&
         !t.grad_fn && !t.grad;
}

// g is taken by value so that a gradient the caller hands over (std::move) can be kept; a
// shared one (the incoming gradient passed straight through, a view of it, the user's seed)
// is copied, so .grad never aliases another tensor.
void accumulate_leaf(const Tensor& leaf, Tensor g) {
  Tensor slot = leaf.grad();
  if (slot.defined()) return add_(slot, g);
  leaf.impl().grad = owned_outright(g) ? g.impl_ptr() : g.clone().impl_ptr();
}

// Post-order DFS without recursion (ResNet152 graphs are thousands of nodes deep). The order
// owns its nodes: releasing a node drops its inputs, which may be the last owners upstream.
std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> seen{root.get()};
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      const std::shared_ptr<Node> child = in.defined() ? in.grad_fn() : nullptr;
      if (child && seen.insert(child.get()).second) stack.push_back({child, 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  return order;  // inputs before consumers; walk it backwards
}
}  // namespace

Node::~Node() {
  // Steal the grad_fn of every input this node is the last owner of; those nodes are then
  // destroyed here, one at a time, after their own inputs have been stolen the same way.
  std::vector<std::shared_ptr<Node>> pending;
  auto unlink = [&pending](std::vector<Tensor>& ins) {
    for (Tensor& t : ins)
      if (t.defined() && t.impl_ptr().use_count() == 1 && t.impl().grad_fn) pending.push_back(std::move(t.impl().grad_fn));
    ins.clear();
  };
  unlink(inputs);
  backward = nullptr;  // saved tensors hold no grad_fn (they are detached), so this is flat
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    if (n.use_count() == 1) unlink(n->inputs);  // n dies at the end of this iteration, childless
  }
}

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

Tensor record(Tensor out, const char* name, std::vector<Tensor> inputs, BackwardFn backward) {
  bool any = false;
  for (const Tensor& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any || !grad_enabled()) return out;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  out.impl().requires_grad = true;
  out.impl().grad_fn = std::move(node);
  return out;
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  MINIDL_CHECK(requires_grad(), "backward: this tensor does not require grad (none of the inputs of the ops "
               "that made it requires grad, or it was computed under NoGradGuard)");
  Tensor seed = gradient;
  if (!seed.defined()) {
    MINIDL_CHECK(numel() == 1, "backward: called on a non-scalar tensor of shape ", shape_str(shape()),
                 " without a gradient; pass a gradient of that shape, or reduce to a scalar first (e.g. mean())");
    seed = ones_like(*this);
  }
  MINIDL_CHECK(seed.shape() == shape() && seed.dtype() == dtype() && seed.device() == device(),
               "backward: gradient of shape ", shape_str(seed.shape()), " ", dtype_name(seed.dtype()), " on ",
               device_name(seed.device()), " does not match the tensor's ", shape_str(shape()), " ",
               dtype_name(dtype()), " on ", device_name(device()));
  NoGradGuard no_grad;  // the backward pass itself records nothing
  if (is_leaf()) {
    accumulate_leaf(*this, seed);
    return;
  }

  std::vector<std::shared_ptr<Node>> order = topological_order(grad_fn());
  std::unordered_map<Node*, Tensor> grads{{grad_fn().get(), seed}};
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = it->get();
    auto found = grads.find(node);
    if (found == grads.end()) continue;  // no gradient flowed here
    Tensor g = std::move(found->second);
    grads.erase(found);
    MINIDL_CHECK(!node->released, "backward: the graph through '", node->name,
                 "' was already freed by an earlier backward(); call backward(grad, /*retain_graph=*/true) "
                 "the first time to run it twice");
    std::vector<Tensor> in_grads = node->backward(g);
    MINIDL_CHECK(in_grads.size() == node->inputs.size(), "internal: backward of ", node->name, " returned ",
                 in_grads.size(), " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < in_grads.size(); ++i) {
      const Tensor& in = node->inputs[i];
      Tensor& gi = in_grads[i];
      if (!in.defined() || !in.requires_grad() || !gi.defined()) continue;
      MINIDL_CHECK(gi.shape() == in.shape(), "internal: backward of ", node->name, " gave input ", i,
                   " a gradient of shape ", shape_str(gi.shape()), ", expected ", shape_str(in.shape()));
      // A leaf's .grad must live where the leaf does (the optimizer updates them together).
      MINIDL_CHECK(gi.device() == in.device(), "internal: backward of ", node->name, " gave input ", i,
                   " a gradient on ", device_name(gi.device()), ", but the input is on ", device_name(in.device()));
      if (in.grad_fn()) accumulate(grads[in.grad_fn().get()], gi);
      else accumulate_leaf(in, std::move(gi));
    }
    if (!retain_graph) node->release();
  }
}

}  // namespace minidl
