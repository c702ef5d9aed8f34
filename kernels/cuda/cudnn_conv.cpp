// Every cuDNN call of minidl (cudnn_conv.h): one handle, descriptors, the per-shape algorithm
// choice and the three convolution passes.
//
// Parity with the CPU: the convolution descriptor asks for CUDNN_FMA_MATH (plain FP32
// multiply-adds; CUDNN_DEFAULT_MATH may use TF32 tensor cores on Ampere and later, ~1e-3
// off), and measured candidates that report tensor-op math are never picked. The bias and
// its gradient use our kernels (bias.h), as the own conv does: one fixed-order,
// double-accumulated db on the GPU instead of cuDNN's deprecated cudnnConvolutionBackwardBias.
#include "kernels/cuda/cudnn_conv.h"

#include <cudnn.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels/cuda/bias.h"
#include "kernels/cuda/conv_algo_cache.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/runtime.h"

namespace minidl::cuda {

namespace {

// Throws an Error naming the call (`what`) and cuDNN's explanation unless s is success.
void check_cudnn(cudnnStatus_t s, const char* what, const char* file, int line) {
  if (s == CUDNN_STATUS_SUCCESS) return;
  char last[512] = {};  // cuDNN 9's explanation of its most recent failure, if any
  cudnnGetLastErrorString(last, sizeof(last));
  throw Error(detail::concat("cuDNN error ", cudnnGetErrorString(s), " in ", what, " at ", file, ":", line,
                             last[0] ? ": " : "", last));
}

#define MINIDL_CUDNN_CHECK(call) check_cudnn((call), #call, __FILE__, __LINE__)

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

// The descriptors of one shape: x [N,C,H,W], y [N,O,OH,OW], w [O,C,KH,KW].
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  explicit Descriptors(const ConvKey& k) {
    try {
      MINIDL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
      MINIDL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
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
      // cuDNN must agree with minidl's geometry (cpu::make_conv_geom) on the output size.
      const int64_t want_oh = (k.H + 2 * k.PH - k.KH) / k.SH + 1, want_ow = (k.W + 2 * k.PW - k.KW) / k.SW + 1;
      MINIDL_CHECK(n == k.N && c == k.O && oh == want_oh && ow == want_ow, "cudnn conv2d: cuDNN computes output [",
                   n, ",", c, ",", oh, ",", ow, "] but minidl expects [", k.N, ",", k.O, ",", want_oh, ",", want_ow,
                   "]");
      MINIDL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, oh, ow));
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
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    x = y = nullptr;
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

// The most workspace the search may hand the candidates: enough for every algorithm of
// ResNet-sized layers, small next to an H100's memory. Algorithms that want more are
// reported as failed by cudnnFind and skipped.
constexpr size_t kMaxFindWorkspace = size_t{512} << 20;

// The key of a pass of g run on the buffers a, b (inputs) and out.
ConvKey key_of(const cpu::ConvGeom& g, const void* a = nullptr, const void* b = nullptr, const void* out = nullptr) {
  return {g.N, g.C, g.H, g.W, g.O, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, aligned16({a, b, out})};
}

// What differs between the three passes: cuDNN's enum and result types and the calls that
// size and measure them. find() runs every candidate on the caller's real buffers, `a` and
// `b` the pass's inputs and `out` its output (which the pass overwrites right after).
struct FwdPass {  // y from x and w
  using Algo = cudnnConvolutionFwdAlgo_t;
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  static cudnnStatus_t max_results(cudnnHandle_t h, int* n) { return cudnnGetConvolutionForwardAlgorithmMaxCount(h, n); }
  static constexpr Algo kFallback = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;  // needs no workspace
  static constexpr const char* kSizeCall = "cudnnGetConvolutionForwardWorkspaceSize";
  static constexpr const char* kFindCall = "cudnnFindConvolutionForwardAlgorithmEx";
  static cudnnStatus_t size(cudnnHandle_t h, const Descriptors& d, Algo algo, size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, algo, bytes);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const Descriptors& d, const float* x, const float* w, float* y,
                            int requested, int* returned, Perf* perf, void* ws, size_t ws_bytes) {
    return cudnnFindConvolutionForwardAlgorithmEx(h, d.x, x, d.w, w, d.conv, d.y, y, requested, returned, perf, ws,
                                                  ws_bytes);
  }
};

struct BwdDataPass {  // dx from dy and w
  using Algo = cudnnConvolutionBwdDataAlgo_t;
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  static cudnnStatus_t max_results(cudnnHandle_t h, int* n) {
    return cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, n);
  }
  static constexpr Algo kFallback = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  static constexpr const char* kSizeCall = "cudnnGetConvolutionBackwardDataWorkspaceSize";
  static constexpr const char* kFindCall = "cudnnFindConvolutionBackwardDataAlgorithmEx";
  static cudnnStatus_t size(cudnnHandle_t h, const Descriptors& d, Algo algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, algo, bytes);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const Descriptors& d, const float* dy, const float* w, float* dx,
                            int requested, int* returned, Perf* perf, void* ws, size_t ws_bytes) {
    return cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, w, d.y, dy, d.conv, d.x, dx, requested, returned,
                                                       perf, ws, ws_bytes);
  }
};

struct BwdFilterPass {  // dw from dy and x
  using Algo = cudnnConvolutionBwdFilterAlgo_t;
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  static constexpr int kCount = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  static cudnnStatus_t max_results(cudnnHandle_t h, int* n) {
    return cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, n);
  }
  static constexpr Algo kFallback = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
  static constexpr const char* kSizeCall = "cudnnGetConvolutionBackwardFilterWorkspaceSize";
  static constexpr const char* kFindCall = "cudnnFindConvolutionBackwardFilterAlgorithmEx";
  static cudnnStatus_t size(cudnnHandle_t h, const Descriptors& d, Algo algo, size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, algo, bytes);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const Descriptors& d, const float* dy, const float* x, float* dw,
                            int requested, int* returned, Perf* perf, void* ws, size_t ws_bytes) {
    return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x, x, d.y, dy, d.conv, d.w, dw, requested, returned,
                                                         perf, ws, ws_bytes);
  }
};

template <class Pass>
ConvPlanCache<PassPlan<typename Pass::Algo>>& cache_of() {
  static ConvPlanCache<PassPlan<typename Pass::Algo>> cache;
  return cache;
}

// The pass's plan for g: cached, or made now by measuring every algorithm (with as much
// workspace as the hungriest asks for, up to kMaxFindWorkspace) and picking per pick_algo;
// the fallback algorithm when no candidate is usable.
template <class Pass>
const PassPlan<typename Pass::Algo>& plan_for(cudnnHandle_t h, const cpu::ConvGeom& g, const float* a,
                                              const float* b, float* out) {
  using Algo = typename Pass::Algo;
  return cache_of<Pass>().get(key_of(g, a, b, out), [&](const ConvKey& k) {
    auto plan = std::make_unique<PassPlan<Algo>>(k);
    const Descriptors& d = plan->d;
    size_t need = 0;
    for (int i = 0; i < Pass::kCount; ++i) {
      size_t bytes = 0;  // an algorithm that does not support this shape says so here: skipped
      if (Pass::size(h, d, static_cast<Algo>(i), &bytes) == CUDNN_STATUS_SUCCESS) need = std::max(need, bytes);
    }
    const size_t limit = std::min(need, kMaxFindWorkspace);
    DeviceBuffer ws(limit);
    // Ask for every result cuDNN can report: it may list an algorithm more than once (one per
    // math type), so the enum's count could cut off usable FP32 entries behind tensor-op ones.
    int requested = 0;
    check_cudnn(Pass::max_results(h, &requested), "cudnnGet*AlgorithmMaxCount", __FILE__, __LINE__);
    requested = std::max(requested, Pass::kCount);
    std::vector<typename Pass::Perf> perf(static_cast<size_t>(requested));
    int returned = 0;
    check_cudnn(Pass::find(h, d, a, b, out, requested, &returned, perf.data(), ws.get(), limit), Pass::kFindCall,
                __FILE__, __LINE__);
    returned = std::clamp(returned, 0, requested);
    std::vector<AlgoCandidate> cands;
    for (int i = 0; i < returned; ++i) {
      const auto& p = perf[static_cast<size_t>(i)];
      cands.push_back({static_cast<int>(p.algo), p.status == CUDNN_STATUS_SUCCESS, p.time, p.memory,
                       p.determinism == CUDNN_DETERMINISTIC,
                       p.mathType == CUDNN_TENSOR_OP_MATH || p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION});
    }
    const int best = pick_algo(cands, limit);
    if (best >= 0) {
      plan->algo = perf[static_cast<size_t>(best)].algo;
      // What the algorithm asks for now, if more than Find reported: a workspace that is too
      // small fails the call (or, worse, lets the kernel write past it).
      size_t asked = 0;
      check_cudnn(Pass::size(h, d, plan->algo, &asked), Pass::kSizeCall, __FILE__, __LINE__);
      plan->workspace = std::max(perf[static_cast<size_t>(best)].memory, asked);
    } else {
      plan->algo = Pass::kFallback;
      check_cudnn(Pass::size(h, d, Pass::kFallback, &plan->workspace), Pass::kSizeCall, __FILE__, __LINE__);
    }
    return plan;
  });
}

}  // namespace

void cudnn_conv_forward(const cpu::ConvGeom& g, const float* x, const float* w, const float* bias, float* y) {
  cudnnHandle_t h = handle();
  const auto& p = plan_for<FwdPass>(h, g, x, w, y);
  DeviceBuffer ws(p.workspace);
  const float one = 1.f, zero = 0.f;
  MINIDL_CUDNN_CHECK(cudnnConvolutionForward(h, &one, p.d.x, x, p.d.w, w, p.d.conv, p.algo, ws.get(), p.workspace,
                                             &zero, p.d.y, y));
  if (bias) bias_add(y, bias, g.N, g.O, g.col_cols());
}

void cudnn_conv_backward_data(const cpu::ConvGeom& g, const float* dy, const float* w, float* dx) {
  cudnnHandle_t h = handle();
  const auto& p = plan_for<BwdDataPass>(h, g, dy, w, dx);
  DeviceBuffer ws(p.workspace);
  const float one = 1.f, zero = 0.f;
  MINIDL_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, p.d.w, w, p.d.y, dy, p.d.conv, p.algo, ws.get(),
                                                  p.workspace, &zero, p.d.x, dx));
}

void cudnn_conv_backward_filter(const cpu::ConvGeom& g, const float* dy, const float* x, float* dw, float* db) {
  if (dw) {
    cudnnHandle_t h = handle();
    const auto& p = plan_for<BwdFilterPass>(h, g, dy, x, dw);
    DeviceBuffer ws(p.workspace);
    const float one = 1.f, zero = 0.f;
    MINIDL_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, p.d.x, x, p.d.y, dy, p.d.conv, p.algo, ws.get(),
                                                      p.workspace, &zero, p.d.w, dw));
  }
  if (db) bias_grad(dy, db, g.N, g.O, g.col_cols());
}

size_t cudnn_conv_cached_plans() {
  return cache_of<FwdPass>().size() + cache_of<BwdDataPass>().size() + cache_of<BwdFilterPass>().size();
}

}  // namespace minidl::cuda
