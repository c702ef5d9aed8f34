#include "models/state_dict.h"

#include <map>
#include <sstream>

#include "autograd/ops.h"
#include "models/safetensors.h"

namespace minidl {

namespace {

bool has_prefix(const std::string& key, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (key.compare(0, p.size(), p) == 0) return true;
  return false;
}

// Floats load into floats of any precision; int64 only into int64.
bool dtype_compatible(DType model, DType source) {
  if (model == DType::Int64 || source == DType::Int64) return model == source;
  return is_floating_compute(model) && is_floating_compute(source);
}

// Converts to the model's dtype (a float32 file into a float64 model, say) and device (a
// file read on the host into a model on the GPU), then copies in place, so every handle to
// the model's tensor sees the new values. The dtype changes on the host side of the move.
void copy_into(Tensor& dst, const Tensor& src) {
  NoGradGuard no_grad;
  Tensor s = src.detach();
  if (s.device() == Device::CPU) s = s.to(dst.dtype()).to(dst.device());
  else s = s.to(dst.device()).to(dst.dtype());
  copy_(dst, s);
}

}  // namespace

std::string LoadReport::summary() const {
  std::ostringstream os;
  os << loaded.size() << " loaded, " << missing.size() << " missing, " << unexpected.size() << " unexpected, "
     << mismatched.size() << " mismatched, " << skipped.size() << " skipped";
  for (const auto& k : missing) os << "\n  missing from source: " << k;
  for (const auto& k : unexpected) os << "\n  unexpected in source: " << k;
  for (const auto& k : mismatched) os << "\n  mismatch: " << k;
  for (const auto& k : skipped) os << "\n  skipped: " << k;
  return os.str();
}

LoadReport load_state_dict(Module& model, const NamedTensors& source, const LoadOptions& options) {
  LoadReport report;
  NamedTensors target = model.state_dict();
  std::map<std::string, Tensor> src;
  for (const auto& [k, t] : source) {
    MINIDL_CHECK(src.emplace(k, t).second, "load_state_dict: key '", k, "' appears twice in the source");
  }
  std::map<std::string, bool> used;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (model tensor, source tensor), applied after checks
  for (auto& [key, dst] : target) {
    if (has_prefix(key, options.skip_prefixes)) {
      report.skipped.push_back(key + " (kept the model's own value)");
      continue;
    }
    auto it = src.find(key);
    if (it == src.end()) {
      report.missing.push_back(key + " " + shape_str(dst.shape()));
      continue;
    }
    used[key] = true;
    const Tensor& s = it->second;
    if (s.shape() != dst.shape() || !dtype_compatible(dst.dtype(), s.dtype())) {
      report.mismatched.push_back(key + ": model " + shape_str(dst.shape()) + " " + dtype_name(dst.dtype()) +
                                  ", source " + shape_str(s.shape()) + " " + dtype_name(s.dtype()));
      continue;
    }
    copies.emplace_back(dst, s);
    report.loaded.push_back(key);
  }
  for (const auto& [key, s] : src) {
    if (used.count(key)) continue;
    if (has_prefix(key, options.skip_prefixes)) report.skipped.push_back(key + " " + shape_str(s.shape()) + " (source, not loaded)");
    else report.unexpected.push_back(key + " " + shape_str(s.shape()));
  }
  if (options.strict && !report.complete()) {
    report.loaded.clear();
    throw Error("load_state_dict (strict): the source does not match the model; nothing was loaded. " +
                report.summary());
  }
  for (auto& [dst, s] : copies) copy_into(dst, s);
  return report;
}

LoadReport load_weights_file(Module& model, const std::string& path, const LoadOptions& options,
                             std::map<std::string, std::string>* metadata) {
  SafetensorsContents contents = load_safetensors(path);
  NamedTensors source;
  for (auto& e : contents.tensors) source.emplace_back(e.name, e.tensor);
  if (metadata) *metadata = contents.metadata;
  try {
    return load_state_dict(model, source, options);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

LoadReport load_pretrained(Module& model, const std::string& path, const std::string& head_prefix, std::string* notice,
                           std::map<std::string, std::string>* metadata) {
  SafetensorsContents contents = load_safetensors(path);
  NamedTensors source;
  for (auto& e : contents.tensors) source.emplace_back(e.name, e.tensor);
  if (metadata) *metadata = contents.metadata;
  // Does the head in the file fit the model's head? If every head tensor matches in shape,
  // load everything; otherwise skip exactly the head.
  bool head_differs = false;
  std::ostringstream shapes;
  for (const auto& [key, dst] : model.state_dict()) {
    if (key.compare(0, head_prefix.size(), head_prefix) != 0) continue;
    Tensor s = contents.find(key);
    if (!s.defined() || s.shape() != dst.shape()) {
      head_differs = true;
      shapes << " " << key << ": file " << (s.defined() ? shape_str(s.shape()) : "absent") << ", model "
             << shape_str(dst.shape()) << ";";
    }
  }
  LoadOptions options;
  if (head_differs) options.skip_prefixes = {head_prefix};
  LoadReport report;
  try {
    report = load_state_dict(model, source, options);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  if (notice) {
    *notice = head_differs ? "loaded " + std::to_string(report.loaded.size()) + " tensors from " + path +
                                 "; replaced the classifier head '" + head_prefix + "*' (" + shapes.str() +
                                 " it keeps its fresh initialisation)"
                           : "loaded all " + std::to_string(report.loaded.size()) + " tensors from " + path;
  }
  return report;
}

void save_weights_file(const Module& model, const std::string& path, const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, model.state_dict(), metadata);
}

}  // namespace minidl
