// cuBLAS behind cublas_sgemm (cublas_gemm.h): one handle per process, made on first use and
// bound to cuda::stream(); every status checked into an Error naming the call.
//
// cuBLAS is column-major, minidl row-major. A row-major matrix read column-major is its
// transpose, so instead of C = op(A) op(B) we ask cuBLAS for C^T = op(B)^T op(A)^T: pass B
// before A, swap M and N, and keep each op flag (a row-major B with tb = false reads as B^T,
// which is exactly op(B)^T). C^T column-major is C row-major: nothing is copied.
#include "kernels/cuda/cublas_gemm.h"

#include <cublas_v2.h>

#include <algorithm>
#include <climits>
#include <mutex>

#include "kernels/cuda/cuda_check.h"

namespace minidl::cuda {

namespace {

[[noreturn]] void throw_cublas_error(cublasStatus_t s, const char* what, const char* file, int line) {
  throw Error(detail::concat("cuBLAS error ", cublasGetStatusName(s), " (", cublasGetStatusString(s), ") in ", what,
                             " at ", file, ":", line));
}

#define MINIDL_CUBLAS_CHECK(call)                                                  \
  do {                                                                             \
    cublasStatus_t _s = (call);                                                    \
    if (_s != CUBLAS_STATUS_SUCCESS) throw_cublas_error(_s, #call, __FILE__, __LINE__); \
  } while (0)

// The process's handle. Plain FP32 math (no TF32 tensor cores), so results match the CPU's
// within float rounding. Never destroyed: a handle outliving static destruction is harmless,
// destroying it after the CUDA context is torn down at exit is not.
cublasHandle_t handle() {
  static std::once_flag once;
  static cublasHandle_t h = nullptr;
  std::call_once(once, [] {
    cublasHandle_t made = nullptr;
    MINIDL_CUBLAS_CHECK(cublasCreate(&made));
    MINIDL_CUBLAS_CHECK(cublasSetMathMode(made, CUBLAS_DEFAULT_MATH));
    MINIDL_CUBLAS_CHECK(cublasSetStream(made, stream()));
    h = made;
  });
  return h;
}

int as_int(int64_t v, const char* what) {
  MINIDL_CHECK(v >= 0 && v <= INT_MAX, "cublas_sgemm: ", what, " = ", v, " does not fit cuBLAS's int argument");
  return static_cast<int>(v);
}

}  // namespace

void cublas_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  // Column-major view: C^T (N x M) = op(B)^T (N x K) * op(A)^T (K x M).
  const cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  // cuBLAS rejects a leading dimension below the stored rows even when K == 0.
  const int64_t ldb_min = tb ? K : N, lda_min = ta ? M : K;
  MINIDL_CHECK(ldb >= ldb_min && lda >= lda_min && ldc >= N, "cublas_sgemm: leading dimensions lda=", lda,
               " ldb=", ldb, " ldc=", ldc, " too small for M=", M, " N=", N, " K=", K);
  cublasHandle_t h = handle();
  MINIDL_CUBLAS_CHECK(cublasSetStream(h, stream()));
  MINIDL_CUBLAS_CHECK(cublasSgemm(h, opb, opa, as_int(N, "N"), as_int(M, "M"), as_int(K, "K"), &alpha, B,
                                  as_int(std::max<int64_t>(ldb, 1), "ldb"), A,
                                  as_int(std::max<int64_t>(lda, 1), "lda"), &beta, C, as_int(ldc, "ldc")));
}

}  // namespace minidl::cuda
