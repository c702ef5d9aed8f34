// The slab layout of the fast batch-norm kernels (batchnorm_slabs.cpp), for short rows; the
// entry points of batchnorm.h call these when bn_use_slabs() says so. Same contracts.
#pragma once
#include <cstdint>

namespace minidl::cpu {

template <class T>
void batchnorm_forward_train_slabs(const T* x, const T* gamma, const T* beta, int64_t N, int64_t C, int64_t HW,
                                   double eps, double momentum, T* y, T* save_mean, T* save_invstd, T* running_mean,
                                   T* running_var, const T* residual, bool relu);

template <class T>
void batchnorm_forward_eval_slabs(const T* x, const T* gamma, const T* beta, const T* running_mean,
                                  const T* running_var, int64_t N, int64_t C, int64_t HW, double eps, T* y,
                                  const T* residual, bool relu);

template <class T>
void batchnorm_backward_slabs(const T* dy, const T* x, const T* gamma, const T* mean, const T* invstd, int64_t N,
                              int64_t C, int64_t HW, bool training, T* dx, T* dgamma, T* dbeta, const T* relu_out,
                              T* d_residual);

// The element-wise loops over one slab of w values (batchnorm_slab_loops.inc has what each
// computes), one copy per ISA. Index [m]: m = 1 applies relu's mask dy' = out > 0 ? dy : 0.
template <class T>
struct SlabLoops {
  void (*add_values)(const T* p, T* a, int64_t w);                                  // a += p
  void (*add_deviations)(const T* p, const T* m, T* a, T* b, int64_t w);            // a += p-m, b += (p-m)^2
  void (*add_grad_terms[2])(const T* d, const T* o, const T* p, const T* mu, T* a, T* b, int64_t w);  // dy', dy'(p-mu)
  void (*normalise[2][2])(const T* p, const T* r, T* q, int64_t w, const T* sc, const T* sh);  // [residual][relu]
  void (*masked_copy[2])(const T* d, const T* o, T* r, int64_t w);                  // r = dy'
  void (*dx_train[2])(const T* d, const T* o, const T* p, const T* mu, const T* g, const T* k, const T* e, T* q,
                      int64_t w);                                                   // q = g dy' - k (p-mu) - e
  void (*dx_eval[2])(const T* d, const T* o, const T* g, T* q, int64_t w);          // q = g dy'
};
SlabLoops<float> slab_loops_avx512_f32();  // batchnorm_slabs_avx512.cpp: call only if cpu_has_avx512()
SlabLoops<double> slab_loops_avx512_f64();

// Which copy runs: automatic = AVX-512 when the CPU (and OS) has it, else the baseline. Both
// round alike (no FMA contraction), so results are identical; tests force each to check.
enum class BnSlabIsa { automatic, baseline, avx512 };
void set_bn_slab_isa(BnSlabIsa isa);  // avx512 on a CPU without it throws
const char* bn_slab_isa_name();      // the copy that runs now: "avx512" or "baseline"

}  // namespace minidl::cpu
