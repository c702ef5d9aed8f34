// gradcheck: compares the gradients backward() computes with central differences.
//
// The function under test maps a list of inputs to one tensor. To check every output
// element at once it is projected to a scalar with fixed random weights,
//     L(x) = sum(f(x) * R),
// so dL/dx is a vector-Jacobian product that involves every output. The analytic side runs
// L.backward(); the numeric side nudges each element of each input that requires grad by
// +-h and takes (L(x+h) - L(x-h)) / 2h, in float64, with grad mode off.
//
// Usage:
//   GradcheckResult r = gradcheck(
//       [](const std::vector<Tensor>& x) { return mul(x[0], x[1]); },
//       [](Generator& g) {
//         return std::vector<Tensor>{randn({3, 4}, DType::Float64, g).requires_grad_(),
//                                    randn({4}, DType::Float64, g).requires_grad_()};
//       });
//   if (!r.passed) std::cerr << r.message << "\n";
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace minidl {

// The function under test. It must be deterministic: anything random in it (dropout) must
// come from a Generator it creates and seeds itself on every call.
using GradcheckFn = std::function<Tensor(const std::vector<Tensor>& inputs)>;
// Draws fresh inputs: float64 leaves; those marked requires_grad are checked, the others
// (labels, running statistics) are constants. Called again with a new seed after a kink.
using GradcheckInputs = std::function<std::vector<Tensor>(Generator& gen)>;

struct GradcheckOptions {
  double step = 1e-6;       // h of the central difference
  double tolerance = 1e-6;  // pass when every relative error is <= this
  int max_redraws = 5;      // fresh inputs drawn after kinks before giving up
  uint64_t seed = 0;        // seeds the inputs (seed, seed+1, ... per redraw) and R
  // Relative error |a - n| / max(|a|, |n|, s), s = max(floor_rel * max|n| over the input,
  // floor_abs). The floor keeps elements whose true gradient is ~0 (where any rounding
  // noise would be a 100% error) from dominating: elements under 1% of the input's largest
  // gradient are judged on absolute error against that 1%. Why 1% and not 0.1%: at h = 1e-6
  // a central difference carries ~1e-10..1e-9 of absolute rounding noise per unit of output,
  // so 1e-6 of 0.1% of the scale is right at the noise (conv, batch-norm and cross-entropy
  // cases reached 7e-7 over 30 seeds), while with 1% they stay below 5e-7; a real bug (a
  // wrong factor, a missing term) is off by far more than 1e-8 of the scale.
  // floor_abs only matters when all of an input's gradient is below 1e-6; it sits above the
  // rounding noise of a central difference, where 0 and "tiny" are the same.
  double floor_rel = 1e-2;
  double floor_abs = 1e-8;
};

struct GradcheckResult {
  std::vector<double> input_errors;  // max relative error per input; -1 if it needs no grad
  double max_error = 0;              // over all checked inputs
  bool passed = false;
  int redraws = 0;                   // inputs re-drawn because a kink sat within the step
  std::string message;               // "ok", or where the worst (or failing) element is
};

// Runs the check. Throws minidl::Error on misuse (no input requires grad, non-float64
// inputs or output, a non-deterministic f); errors thrown by f propagate.
GradcheckResult gradcheck(const GradcheckFn& f, const GradcheckInputs& make_inputs,
                          const GradcheckOptions& options = {});

}  // namespace minidl
