// safetensors: the weights format of Hugging Face and timm. Layout of a file:
//   [8 bytes: little-endian u64 N][N bytes: JSON header][data section]
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}, the
// offsets being relative to the start of the data section, plus an optional
// "__metadata__" object of string -> string. Data is raw little-endian, row-major.
//
// The reader validates everything before it touches tensor data: header length inside the
// file and under a cap, well-formed JSON, known dtypes, offsets inside the data section,
// contiguous (sorted, no overlap, no hole), byte counts = dtype size x product(shape).
// A bad file is a minidl::Error naming the file and the tensor.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace minidl {

struct SafetensorsEntry {
  std::string name;
  Tensor tensor;            // F32/F16/BF16 -> float32, F64 -> float64, I64 -> int64
  std::string file_dtype;   // the dtype as stored: "F32", "BF16", ...
};

struct SafetensorsContents {
  std::vector<SafetensorsEntry> tensors;  // in data-section order
  std::map<std::string, std::string> metadata;

  // The tensor called `name`, or an undefined Tensor.
  Tensor find(const std::string& name) const;
};

// Largest JSON header accepted (the format's reference implementation uses the same cap).
constexpr uint64_t kSafetensorsMaxHeader = 100u << 20;

SafetensorsContents load_safetensors(const std::string& path);

// Writes float32 / float64 / int64 tensors (any strides, any device: GPU tensors are copied
// to the host) with optional metadata. The file is
// written to "<path>.tmp" and renamed over `path` only when complete, so a crash never
// leaves a half-written checkpoint under the real name. Names must be unique and non-empty.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// IEEE half and bfloat16 to float (exact; subnormals, inf and NaN included).
float half_to_float(uint16_t h);
float bfloat16_to_float(uint16_t b);

}  // namespace minidl
