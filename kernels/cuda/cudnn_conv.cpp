// Every cuDNN call of minidl (cudnn_conv.h): one handle, descriptors, the per-shape algorithm
// choice and the three convolution passes.
//
// Parity with the CPU: the convolution descriptor asks for CUDNN_FMA_MATH (plain FP32
// multiply-adds; CUDNN_DEFAULT_MATH may use TF32 tensor cores on Ampere and later, ~1e-3
// off), and measured candidates that report tensor-op math are never picked.
#include "kernels/cuda/cudnn_conv.h"

#include <cudnn.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/cuda/conv_algo_cache.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/runtime.h"

namespace minidl::cuda {

namespace {

[[noreturn]] void throw_cudnn_error(cudnnStatus_t s, const char* what, const char* file, int line) {
  char last[512] = {};  // cuDNN 9's explanation of its most recent failure, if any
  cudnnGetLastErrorString(last, sizeof(last));
  throw Error(detail::concat("cuDNN error ", cudnnGetErrorString(s), " in ", what, " at ", file, ":", line,
                             last[0] ? ": " : "", last));
}

#define MINIDL_CUDNN_CHECK(call)                                                 \
  do {                                                                           \
    cudnnStatus_t _s = (call);                                                   \
    if (_s != CUDNN_STATUS_SUCCESS) throw_cudnn_error(_s, #call, __FILE__, __LINE__); \
  } while (0)

// The process's handle, bound to cuda::stream() (set again at each use, cheap). Never
// destroyed, like the cuBLAS handle: destruction after the CUDA context is gone would fail.
cudnnHandle_t handle() {
  static std::once_flag once;
  static cudnnHandle_t h = nullptr;
  std::call_once(once, [] {
    cudnnHandle_t made = nullptr;
    MINIDL_CUDNN_CHECK(cudnnCreate(&made));
    h = made;
  });
  MINIDL_CUDNN_CHECK(cudnnSetStream(h, stream()));
  return h;
}

int as_int(int64_t v) {
  MINIDL_CHECK(v >= 0 && v <= INT_MAX, "cudnn conv2d: size ", v, " does not fit cuDNN's int descriptors");
  return static_cast<int>(v);
}

// The descriptors of one shape: x [N,C,H,W], y [N,O,OH,OW], w [O,C,KH,KW], bias [1,O,1,1].
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  explicit Descriptors(const ConvKey& k) {
    try {
      MINIDL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
      MINIDL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
      MINIDL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&bias));
      MINIDL_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
      MINIDL_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
      MINIDL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, as_int(k.N), as_int(k.C),
                                                    as_int(k.H), as_int(k.W)));
      MINIDL_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, as_int(k.O), as_int(k.C),
                                                    as_int(k.KH), as_int(k.KW)));
      // Cross-correlation (what every framework calls convolution), dilation 1.
      MINIDL_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, as_int(k.PH), as_int(k.PW), as_int(k.SH),
                                                         as_int(k.SW), 1, 1, CUDNN_CROSS_CORRELATION,
                                                         CUDNN_DATA_FLOAT));
      MINIDL_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));
      int n = 0, c = 0, oh = 0, ow = 0;
      MINIDL_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &n, &c, &oh, &ow));
      MINIDL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, oh, ow));
      MINIDL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, as_int(k.O), 1, 1));
    } catch (...) {
      destroy();
      throw;
    }
  }
  ~Descriptors() { destroy(); }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;

  // Statuses ignored: this runs in destructors and on the error path.
  void destroy() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (bias) cudnnDestroyTensorDescriptor(bias);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    x = y = bias = nullptr;
    w = nullptr;
    conv = nullptr;
  }
};

// One pass of one shape: its descriptors and the algorithm chosen, with its workspace.
template <class Algo>
struct PassPlan {
  explicit PassPlan(const ConvKey& k) : d(k) {}
  Descriptors d;
  Algo algo{};
  size_t workspace = 0;
};

// Device bytes from the caching allocator for the duration of one call.
class Workspace {
 public:
  explicit Workspace(size_t bytes) : p_(bytes ? device_alloc(bytes) : nullptr) {}
  ~Workspace() {
    if (p_) device_free(p_);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* get() const { return p_; }

 private:
  void* p_;
};

// The most workspace the search may hand the candidates: enough for every algorithm of
// ResNet-sized layers, small next to an H100's memory. Algorithms that want more are
// reported as failed by cudnnFind and skipped.
constexpr size_t kMaxFindWorkspace = size_t{512} << 20;

ConvKey key_of(const cpu::ConvGeom& g) { return {g.N, g.C, g.H, g.W, g.O, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW}; }

// Picks from cudnnFind's results (any of the three perf structs: they share these fields);
// `fallback` (an algorithm needing no search) when none is usable.
template <class Perf, class Algo>
void choose(const std::vector<Perf>& perf, int returned, size_t limit, PassPlan<Algo>& plan, Algo fallback,
            size_t fallback_workspace) {
  std::vector<AlgoCandidate> cands;
  for (int i = 0; i < returned; ++i) {
    const Perf& p = perf[static_cast<size_t>(i)];
    cands.push_back({static_cast<int>(p.algo), p.status == CUDNN_STATUS_SUCCESS, p.time, p.memory,
                     p.determinism == CUDNN_DETERMINISTIC,
                     p.mathType == CUDNN_TENSOR_OP_MATH || p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION});
  }
  const int best = pick_algo(cands, limit);
  if (best >= 0) {
    plan.algo = perf[static_cast<size_t>(best)].algo;
    plan.workspace = perf[static_cast<size_t>(best)].memory;
  } else {
    plan.algo = fallback;
    plan.workspace = fallback_workspace;
  }
}

using FwdPlan = PassPlan<cudnnConvolutionFwdAlgo_t>;
using BwdDataPlan = PassPlan<cudnnConvolutionBwdDataAlgo_t>;
using BwdFilterPlan = PassPlan<cudnnConvolutionBwdFilterAlgo_t>;

ConvPlanCache<FwdPlan>& fwd_cache() {
  static ConvPlanCache<FwdPlan> c;
  return c;
}
ConvPlanCache<BwdDataPlan>& bwd_data_cache() {
  static ConvPlanCache<BwdDataPlan> c;
  return c;
}
ConvPlanCache<BwdFilterPlan>& bwd_filter_cache() {
  static ConvPlanCache<BwdFilterPlan> c;
  return c;
}

// The searches run the candidates on the caller's real buffers: each writes only the
// pass's output, which the pass itself overwrites right after.
const FwdPlan& fwd_plan(cudnnHandle_t h, const cpu::ConvGeom& g, const float* x, const float* w, float* y) {
  return fwd_cache().get(key_of(g), [&](const ConvKey& k) {
    auto plan = std::make_unique<FwdPlan>(k);
    const Descriptors& d = plan->d;
    size_t need = 0;
    for (int a = 0; a < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; ++a) {
      size_t s = 0;  // unsupported algorithms report an error status here: skipped
      if (cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, static_cast<cudnnConvolutionFwdAlgo_t>(a),
                                                  &s) == CUDNN_STATUS_SUCCESS)
        need = std::max(need, s);
    }
    const size_t limit = std::min(need, kMaxFindWorkspace);
    Workspace ws(limit);
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    int returned = 0;
    MINIDL_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, d.x, x, d.w, w, d.conv, d.y, y,
                                                              CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned,
                                                              perf.data(), ws.get(), limit));
    size_t fallback_ws = 0;
    MINIDL_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y,
                                                               CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, &fallback_ws));
    choose(perf, returned, limit, *plan, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, fallback_ws);
    return plan;
  });
}

const BwdDataPlan& bwd_data_plan(cudnnHandle_t h, const cpu::ConvGeom& g, const float* dy, const float* w,
                                 float* dx) {
  return bwd_data_cache().get(key_of(g), [&](const ConvKey& k) {
    auto plan = std::make_unique<BwdDataPlan>(k);
    const Descriptors& d = plan->d;
    size_t need = 0;
    for (int a = 0; a < CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT; ++a) {
      size_t s = 0;
      if (cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x,
                                                       static_cast<cudnnConvolutionBwdDataAlgo_t>(a),
                                                       &s) == CUDNN_STATUS_SUCCESS)
        need = std::max(need, s);
    }
    const size_t limit = std::min(need, kMaxFindWorkspace);
    Workspace ws(limit);
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    int returned = 0;
    MINIDL_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, w, d.y, dy, d.conv, d.x, dx,
                                                                   CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned,
                                                                   perf.data(), ws.get(), limit));
    size_t fallback_ws = 0;
    MINIDL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x,
                                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, &fallback_ws));
    choose(perf, returned, limit, *plan, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, fallback_ws);
    return plan;
  });
}

const BwdFilterPlan& bwd_filter_plan(cudnnHandle_t h, const cpu::ConvGeom& g, const float* x, const float* dy,
                                     float* dw) {
  return bwd_filter_cache().get(key_of(g), [&](const ConvKey& k) {
    auto plan = std::make_unique<BwdFilterPlan>(k);
    const Descriptors& d = plan->d;
    size_t need = 0;
    for (int a = 0; a < CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT; ++a) {
      size_t s = 0;
      if (cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w,
                                                         static_cast<cudnnConvolutionBwdFilterAlgo_t>(a),
                                                         &s) == CUDNN_STATUS_SUCCESS)
        need = std::max(need, s);
    }
    const size_t limit = std::min(need, kMaxFindWorkspace);
    Workspace ws(limit);
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
    int returned = 0;
    MINIDL_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x, x, d.y, dy, d.conv, d.w, dw,
                                                                     CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                                                                     &returned, perf.data(), ws.get(), limit));
    size_t fallback_ws = 0;
    MINIDL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w,
                                                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                                                                      &fallback_ws));
    choose(perf, returned, limit, *plan, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, fallback_ws);
    return plan;
  });
}

}  // namespace

void cudnn_conv_forward(const cpu::ConvGeom& g, const float* x, const float* w, const float* bias, float* y) {
  cudnnHandle_t h = handle();
  const FwdPlan& p = fwd_plan(h, g, x, w, y);
  Workspace ws(p.workspace);
  const float one = 1.f, zero = 0.f;
  MINIDL_CUDNN_CHECK(cudnnConvolutionForward(h, &one, p.d.x, x, p.d.w, w, p.d.conv, p.algo, ws.get(), p.workspace,
                                             &zero, p.d.y, y));
  if (bias) MINIDL_CUDNN_CHECK(cudnnAddTensor(h, &one, p.d.bias, bias, &one, p.d.y, y));
}

void cudnn_conv_backward_data(const cpu::ConvGeom& g, const float* dy, const float* w, float* dx) {
  cudnnHandle_t h = handle();
  const BwdDataPlan& p = bwd_data_plan(h, g, dy, w, dx);
  Workspace ws(p.workspace);
  const float one = 1.f, zero = 0.f;
  MINIDL_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, p.d.w, w, p.d.y, dy, p.d.conv, p.algo, ws.get(),
                                                  p.workspace, &zero, p.d.x, dx));
}

void cudnn_conv_backward_filter(const cpu::ConvGeom& g, const float* dy, const float* x, float* dw, float* db) {
  if (!dw && !db) return;
  cudnnHandle_t h = handle();
  const float one = 1.f, zero = 0.f;
  if (dw) {
    const BwdFilterPlan& p = bwd_filter_plan(h, g, x, dy, dw);
    Workspace ws(p.workspace);
    MINIDL_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, p.d.x, x, p.d.y, dy, p.d.conv, p.algo, ws.get(),
                                                      p.workspace, &zero, p.d.w, dw));
  }
  if (db) {
    // Only the dy and bias descriptors are needed; making them is host-only and cheap.
    const Descriptors d(key_of(g));
    MINIDL_CUDNN_CHECK(cudnnConvolutionBackwardBias(h, &one, d.y, dy, &zero, d.bias, db));
  }
}

size_t cudnn_conv_cached_plans() { return fwd_cache().size() + bwd_data_cache().size() + bwd_filter_cache().size(); }

}  // namespace minidl::cuda
