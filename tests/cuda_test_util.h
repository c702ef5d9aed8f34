// Helpers for the CUDA parity tests: each test compares an op on the GPU with the same op on
// the CPU on random inputs. Without a GPU (or in a build without CUDA) the tests are skipped
// with a message naming why, never failed.
#pragma once
#include <doctest/doctest.h>

#include <string>

#include "test_util.h"
#include "tensor/device.h"

// First statement of every CUDA test case.
#define MINIDL_REQUIRE_GPU()                                                        \
  do {                                                                              \
    if (!::minidl::cuda_available()) {                                              \
      MESSAGE("skipped (no GPU): " << ::minidl::cuda_status());                     \
      return;                                                                       \
    }                                                                               \
  } while (0)

namespace minidl::testing {

// The relative error between a GPU result and its CPU reference (copied back first).
inline double gpu_vs_cpu(const Tensor& gpu, const Tensor& cpu, double floor = 1e-4) {
  REQUIRE(gpu.device() == Device::CUDA);
  REQUIRE(cpu.device() == Device::CPU);
  return max_rel_error(gpu.to(Device::CPU), cpu, floor);
}

}  // namespace minidl::testing
