// What a classifier checkpoint says about itself besides its weights: the architecture, the
// classes, and the preprocessing its weights expect. It travels in the safetensors
// "__metadata__" object, whose values must be strings:
//
//   key          value (a string)                     example
//   arch         the architecture name                "resnet50"
//   num_classes  a positive decimal integer           "10"
//   classes      a JSON array of strings, index order "[\"AnnualCrop\",\"Forest\"]"
//   img_size     the square input size, positive      "64"
//   mean, std    JSON arrays of 3 numbers (R, G, B)   "[0.485,0.456,0.406]"
//
// Every key may be absent: a checkpoint converted from torchvision carries "arch" and
// "num_classes" at most, and a foreign file may carry nothing. Absence is an empty
// std::optional, never a sentinel value, so "unknown" cannot be mistaken for a real 0.
// Other keys (the converter's "format", "source") are ignored.
//
// A key that is present but malformed (not a number, a JSON array of the wrong kind, a
// class list whose length disagrees with num_classes, a non-positive std) is an error
// naming the file and the key: a checkpoint that lies about itself should not be guessed at.
//
//   ModelMeta m;  m.arch = "resnet18";  m.num_classes = 10;  m.img_size = 64;
//   save_weights_file(*model, "out.safetensors", to_metadata(m));
//   ...
//   std::map<std::string, std::string> raw;
//   load_weights_file(*model, "out.safetensors", {}, &raw);
//   ModelMeta back = meta_from_metadata(raw, "out.safetensors");
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace minidl {

struct ModelMeta {
  std::optional<std::string> arch;                   // "resnet50", ...
  std::optional<int64_t> num_classes;                // > 0
  std::optional<std::vector<std::string>> classes;   // one name per class, in index order
  std::optional<int> img_size;                       // > 0; the network sees img_size x img_size
  // Per-channel normalisation (x / 255 - mean) / stddev. Stored under the key "std"; the
  // field is not called `std` so that it cannot be confused with the namespace.
  std::optional<std::array<float, 3>> mean;
  std::optional<std::array<float, 3>> stddev;        // every entry > 0
};

// The present fields as metadata strings; absent fields are left out. Throws minidl::Error
// when the fields are inconsistent in the ways meta_from_metadata would refuse, so that
// whatever is written can be read back.
std::map<std::string, std::string> to_metadata(const ModelMeta& meta);

// Parses the keys above out of a file's metadata. `file_for_errors` is the path that
// error messages name.
ModelMeta meta_from_metadata(const std::map<std::string, std::string>& metadata, const std::string& file_for_errors);

}  // namespace minidl
