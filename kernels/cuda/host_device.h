// MINIDL_HD marks small functions (index math, per-element formulas) that both the CUDA
// kernels and the CPU tests call: __host__ __device__ under nvcc, plain inline C++ elsewhere.
#pragma once
#ifdef __CUDACC__
#define MINIDL_HD __host__ __device__
#else
#define MINIDL_HD
#endif
