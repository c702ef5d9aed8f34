// gradcheck: analytic gradients (backward) against central differences (see gradcheck.h).
//
// Kinks. ReLU at 0 and max-pool at a tie have no derivative: if an input lands within h of
// such a point, the central difference averages the two one-sided slopes while backward
// picks one, and a correct op looks wrong. With the one-sided slopes
//     right = (L(x+h) - L(x)) / h,   left = (L(x) - L(x-h)) / h,   gap(h) = right - left,
// a smooth f has gap(h) = h f'' + O(h^3): it doubles when the step doubles, while the
// central slope moves only by O(h^2). A kink at distance d < h with slope jump J gives
// gap(h) = J (1 - d/h) and puts the central slope off by exactly gap(h)/2; at step 2h the
// gap and the central slope shift by fixed fractions of J, never in the smooth pattern
// (|gap(2h) - 2 gap(h)| + |central(2h) - central(h)| >= gap(h)/2 for every d).
// So an element that fails the tolerance gets a second look. It is called a kink when
//   1. its second difference L(x+h) - 2 L(x) + L(x-h) is above the rounding noise of L,
//   2. half its gap accounts for the error (|a - central| = |gap|/2 within 50%), and
//   3. at step 2h the mismatch above is more than gap(h)/4;
// then the inputs are drawn again with the next seed instead of reporting a failure.
// Passing elements never need the extra two passes.
#include "autograd/gradcheck.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tensor/factory.h"

namespace minidl {

namespace {

// f with grad mode off, as a row-major copy (f may return a view of an input we perturb).
std::vector<double> evaluate(const GradcheckFn& f, const std::vector<Tensor>& inputs) {
  NoGradGuard no_grad;
  Tensor y = f(inputs);
  MINIDL_CHECK(y.defined() && y.dtype() == DType::Float64, "gradcheck: f must return a float64 tensor");
  return y.to_vector<double>();
}

// The change in L between outputs y and y0, summed as differences so that outputs the
// perturbed element does not reach cancel exactly instead of adding rounding noise.
double delta_loss(const std::vector<double>& y, const std::vector<double>& y0, const std::vector<double>& r) {
  double s = 0;
  for (size_t j = 0; j < y.size(); ++j) s += r[j] * (y[j] - y0[j]);
  return s;
}

// The element at row-major position i of a (possibly strided) float64 tensor.
double* element(const Tensor& t, int64_t i) {
  int64_t off = 0;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    off += (i % t.shape()[d]) * t.strides()[d];
    i /= t.shape()[d];
  }
  return t.data<double>() + off;
}

std::string index_str(const Shape& shape, int64_t i) {
  Shape idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = i % shape[d];
    i /= shape[d];
  }
  return shape_str(idx);
}

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3e", v);
  return buf;
}

// One draw of the inputs, checked. `kink` is set when a failure was traced to a kink.
struct Attempt {
  GradcheckResult result;
  bool kink = false;
  std::string kink_where;
};

Attempt check_once(const GradcheckFn& f, std::vector<Tensor> inputs, const GradcheckOptions& opt) {
  const double h = opt.step;
  bool any = false;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    MINIDL_CHECK(x.defined(), "gradcheck: input ", k, " is undefined");
    if (!x.requires_grad()) continue;
    any = true;
    MINIDL_CHECK(x.dtype() == DType::Float64, "gradcheck: input ", k, " requires grad but is ", dtype_name(x.dtype()),
                 "; central differences need float64");
    MINIDL_CHECK(x.is_leaf(), "gradcheck: input ", k, " requires grad but is not a leaf (make_inputs must return leaves)");
  }
  MINIDL_CHECK(any, "gradcheck: no input requires grad, nothing to check");

  // Analytic: L = sum(f(x) * R), R of fixed seed with |R| in [0.5, 1.5] and random signs.
  Tensor y = f(inputs);
  MINIDL_CHECK(y.defined() && y.dtype() == DType::Float64, "gradcheck: f must return a float64 tensor");
  MINIDL_CHECK(y.requires_grad(), "gradcheck: f's output does not require grad (is it connected to the inputs?)");
  Generator rgen(opt.seed ^ 0x9e3779b97f4a7c15ULL);
  std::vector<double> r(y.numel());
  for (double& v : r) v = (rgen.uniform() < 0.5 ? -1.0 : 1.0) * rgen.uniform(0.5, 1.5);
  Tensor rt = y.dim() == 0 ? scalar(r[0], DType::Float64) : from_vector(r, y.shape());
  y.backward(rt);  // the gradient of sum(y * R), without relying on the mul and sum under test

  // Numeric: f must be a function of its inputs alone.
  const std::vector<double> y0 = evaluate(f, inputs);
  MINIDL_CHECK(evaluate(f, inputs) == y0, "gradcheck: f gave different outputs for the same inputs; "
               "re-seed any Generator it uses inside f");
  Attempt at;
  GradcheckResult& res = at.result;
  const std::vector<double> yg = y.to_vector<double>();
  for (size_t j = 0; j < yg.size(); ++j) {
    if (std::abs(yg[j] - y0[j]) > 1e-12 * std::max(1.0, std::abs(y0[j]))) {
      res.message = "forward differs with grad mode on and off at output " + index_str(y.shape(), int64_t(j)) +
                    ": " + sci(yg[j]) + " vs " + sci(y0[j]);
      res.max_error = INFINITY;
      res.input_errors.assign(inputs.size(), -1);
      return at;
    }
  }
  // L(x + t e_i) - L(x) for element i of input x.
  auto change = [&](const Tensor& x, int64_t i, double t) {
    double* p = element(x, i);
    const double x0 = *p;
    *p = x0 + t;
    const double d = delta_loss(evaluate(f, inputs), y0, r);
    *p = x0;  // restores the exact bits
    return d;
  };
  // Rounding noise of one evaluation of L, generously: below it a second difference means nothing.
  double noise = 0;
  for (size_t j = 0; j < y0.size(); ++j) noise += std::abs(r[j] * y0[j]);
  noise *= 1e3 * DBL_EPSILON;

  res.input_errors.assign(inputs.size(), -1.0);
  std::string worst_msg;
  int64_t failing = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    const int64_t n = x.numel();
    std::vector<double> analytic = x.grad().defined() ? x.grad().to_vector<double>() : std::vector<double>(n, 0.0);
    std::vector<double> central(n), second(n);  // slope, and L(x+h) - 2 L(x) + L(x-h)
    double scale = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double up = change(x, i, h), down = change(x, i, -h);
      central[i] = (up - down) / (2 * h);
      second[i] = up + down;
      scale = std::max(scale, std::abs(central[i]));
    }
    const double floor = std::max(opt.floor_rel * scale, opt.floor_abs);
    double worst = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double a = analytic[i], c = central[i];
      const double err = std::abs(a - c) / std::max({std::abs(a), std::abs(c), floor});
      if (err > opt.tolerance) {
        // Second look: is this element within h of a kink? Its gap must rise above the
        // rounding noise, account for the error (a kink puts c off by gap/2), and not
        // behave like curvature when the step doubles.
        const double gap = second[i] / h;
        if (std::abs(second[i]) > noise && std::abs(2 * std::abs(a - c) - std::abs(gap)) <= 0.5 * std::abs(gap)) {
          const double up2 = change(x, i, 2 * h), down2 = change(x, i, -2 * h);
          const double central2 = (up2 - down2) / (4 * h), gap2 = (up2 + down2) / (2 * h);
          if (std::abs(gap2 - 2 * gap) + std::abs(central2 - c) > 0.25 * std::abs(gap)) {
            at.kink = true;
            at.kink_where = "input " + std::to_string(k) + " element " + index_str(x.shape(), i);
            return at;
          }
        }
        ++failing;
      }
      if (err >= worst) {
        worst = err;
        if (err >= res.max_error) {
          res.max_error = err;
          worst_msg = "input " + std::to_string(k) + " element " + index_str(x.shape(), i) + ": analytic " +
                      sci(a) + ", numeric " + sci(c);
        }
      }
    }
    res.input_errors[k] = worst;
  }
  res.passed = failing == 0;
  res.message = res.passed ? "ok (worst: " + worst_msg + ")"
                           : std::to_string(failing) + " element(s) over tolerance " + sci(opt.tolerance) +
                                 "; worst " + worst_msg;
  return at;
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const GradcheckInputs& make_inputs, const GradcheckOptions& options) {
  MINIDL_CHECK(options.step > 0 && options.tolerance > 0 && options.max_redraws >= 0,
               "gradcheck: step and tolerance must be > 0 and max_redraws >= 0");
  std::string last_kink;
  for (int draw = 0; draw <= options.max_redraws; ++draw) {
    Generator gen(options.seed + uint64_t(draw));
    Attempt at = check_once(f, make_inputs(gen), options);
    if (!at.kink) {
      at.result.redraws = draw;
      return at.result;
    }
    last_kink = at.kink_where;
  }
  GradcheckResult res;
  res.redraws = options.max_redraws;
  res.max_error = INFINITY;
  res.message = "a kink (non-differentiable point) within the step on every one of " +
                std::to_string(options.max_redraws + 1) + " draws, last at " + last_kink;
  return res;
}

}  // namespace minidl
