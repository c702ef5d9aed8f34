// Loading and saving a module's state dict (parameters + buffers by torchvision name).
//
// Strict loading (the default) first compares the whole source with the model: every
// missing key, unexpected key and shape or dtype mismatch is collected, and if there is
// any, one error lists them all and the model is left untouched. The source may live on any
// device: each tensor is copied onto the model tensor's device (a file into a GPU model). Silent partial loads are
// the classic bug of this field. Non-strict loading copies what matches and reports the rest.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "layers/module.h"

namespace minidl {

struct LoadOptions {
  bool strict = true;
  // Keys starting with one of these (e.g. "fc.") are ignored on both sides: the file's are
  // not loaded, the model's keep their current values. Listed in LoadReport::skipped.
  std::vector<std::string> skip_prefixes;
};

struct LoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> missing;      // in the model, not in the source
  std::vector<std::string> unexpected;   // in the source, not in the model
  std::vector<std::string> mismatched;   // "key: model [..] float32, source [..] int64"
  std::vector<std::string> skipped;      // matched a skip prefix
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string summary() const;           // one line per problem, plus counts
};

LoadReport load_state_dict(Module& model, const NamedTensors& source, const LoadOptions& options = {});

// Reads a .safetensors file and loads it; errors name the file. `metadata` (optional)
// receives the file's __metadata__.
LoadReport load_weights_file(Module& model, const std::string& path, const LoadOptions& options = {},
                             std::map<std::string, std::string>* metadata = nullptr);

// Fine-tuning entry point: loads an ImageNet checkpoint into a model whose classifier head
// (`head_prefix`, "fc." for ResNet) may have another number of classes. When the head's
// shapes differ, exactly the head is skipped (strict for everything else) and `notice`
// says so; when they agree, everything loads strictly.
LoadReport load_pretrained(Module& model, const std::string& path, const std::string& head_prefix, std::string* notice,
                           std::map<std::string, std::string>* metadata = nullptr);

// Writes model.state_dict() (atomically: temporary file, then rename).
void save_weights_file(const Module& model, const std::string& path,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace minidl
