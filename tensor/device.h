// Where a tensor's storage lives. Every op dispatches on this in one visible switch; the
// CUDA backend fills in the kCUDA cases (kernels/cuda), the CPU cases call kernels/cpu.
#pragma once
#include <cstdint>
#include <string>

namespace minidl {

enum class Device : uint8_t { CPU, CUDA };

inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

// True when this build has CUDA compiled in (MINIDL_CUDA=ON) and a GPU answers at run time.
bool cuda_available();
// A line describing the CUDA situation: "not built", "built, no GPU: <reason>", or the GPU name.
std::string cuda_status();

// The device to run on when `requested` is asked for: CUDA when available; otherwise CPU,
// after printing once per process to stderr why ("minidl: cuda requested, but ...; running
// on the cpu"). Apps call this with their --device flag.
Device resolve_device(Device requested);
// Parses "cpu" / "cuda" (the --device flag); anything else is an Error naming the value.
Device parse_device(const std::string& name);

}  // namespace minidl
