// Which SGEMM kernel gemm<float> runs: the CPU checks and the MINIDL_GEMM override
// (declared in gemm_fast.h and gemm.h). Compiled without ISA flags: this must run on any
// x86-64, before anything knows what the CPU has.
#include <cpuid.h>

#include <cstdlib>
#include <cstring>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_fast.h"
#include "tensor/error.h"

namespace minidl::cpu {

namespace {

// True when the OS has enabled saving every state component in `bits` of XCR0 on context
// switches (bit 1 SSE, 2 AVX/ymm, 5 opmask, 6 upper halves of zmm0-15, 7 zmm16-31): a CPU
// can have AVX-512 that the OS does not let programs use.
bool os_saves(uint64_t bits) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return false;  // no xgetbv
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t(hi) << 32 | lo) & bits) == bits;
}

constexpr uint64_t kXcr0Avx = 0x6, kXcr0Avx512 = 0xE6;

}  // namespace

bool cpu_has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && os_saves(kXcr0Avx);
  return yes;
}

bool cpu_has_avx512() {
  static const bool yes = cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512dq") && os_saves(kXcr0Avx512);
  return yes;
}

const char* sgemm_isa_name(SgemmIsa isa) {
  switch (isa) {
    case SgemmIsa::avx512: return "avx512";
    case SgemmIsa::avx2: return "avx2";
    default: return "reference";
  }
}

SgemmIsa sgemm_isa_for(const char* v) {
  if (!v || !*v) return cpu_has_avx512() ? SgemmIsa::avx512 : cpu_has_avx2_fma() ? SgemmIsa::avx2 : SgemmIsa::reference;
  if (!std::strcmp(v, "reference")) return SgemmIsa::reference;
  if (!std::strcmp(v, "avx2")) {
    MINIDL_CHECK(cpu_has_avx2_fma(), "MINIDL_GEMM=avx2, but this CPU (or its OS) has no AVX2/FMA; allowed here: ",
                 cpu_has_avx512() ? "avx512, " : "", "reference");
    return SgemmIsa::avx2;
  }
  if (!std::strcmp(v, "avx512")) {
    MINIDL_CHECK(cpu_has_avx512(),
                 "MINIDL_GEMM=avx512, but this CPU (or its OS) lacks AVX-512 F/VL/BW/DQ; allowed here: ",
                 cpu_has_avx2_fma() ? "avx2, " : "", "reference");
    return SgemmIsa::avx512;
  }
  throw Error(detail::concat("MINIDL_GEMM='", v,
                             "' is not a GEMM kernel; allowed values: avx512, avx2, reference (or unset: the fastest "
                             "this CPU supports)"));
}

// Read once. A bad value throws here on every call (a static whose initialiser throws is
// initialised again next time), so the error cannot be missed.
SgemmIsa sgemm_selected() {
  static const SgemmIsa isa = sgemm_isa_for(std::getenv("MINIDL_GEMM"));
  return isa;
}

const char* gemm_isa() { return sgemm_isa_name(sgemm_selected()); }

}  // namespace minidl::cpu
