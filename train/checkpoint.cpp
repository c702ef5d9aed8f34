#include "train/checkpoint.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "models/safetensors.h"
#include "models/state_dict.h"
#include "tensor/error.h"

namespace minidl {

namespace {

const char* kStateKey = "minidl_train_state";
const char* kConfigKey = "minidl_train_config";
const std::string kModelPrefix = "model.";
const std::string kOptimizerPrefix = "optimizer.";

nlohmann::json parse_metadata_json(const std::map<std::string, std::string>& meta, const char* key,
                                   const std::string& path) {
  auto it = meta.find(key);
  MINIDL_CHECK(it != meta.end(), path, ": not a training checkpoint (no '", key,
               "' metadata); --resume needs the last.safetensors that train_resnet writes");
  try {
    return nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw Error(detail::concat(path, ": metadata '", key, "' is not valid JSON: ", e.what()));
  }
}

CheckpointInfo info_from_metadata(const std::map<std::string, std::string>& meta, const std::string& path) {
  CheckpointInfo info;
  try {
    info.config = config_from_json(parse_metadata_json(meta, kConfigKey, path));
    info.state = train_state_from_json(parse_metadata_json(meta, kStateKey, path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(detail::concat(path, ": malformed training metadata: ", e.what()));
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.rfind(path, 0) == 0) throw;
    throw Error(path + ": " + what);
  }
  return info;
}

// Only the file's JSON header: --resume reads a checkpoint's settings before it builds
// anything, and a resnet152 checkpoint with AdamW state is most of a gigabyte.
std::map<std::string, std::string> read_metadata_only(const std::string& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  MINIDL_CHECK(!ec, path, ": cannot read: ", ec.message());
  std::ifstream f(path, std::ios::binary);
  MINIDL_CHECK(f.good(), path, ": cannot open: ", std::strerror(errno));
  unsigned char len_bytes[8] = {};
  f.read(reinterpret_cast<char*>(len_bytes), 8);
  MINIDL_CHECK(f.gcount() == 8, path, ": too short to be a safetensors file");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | len_bytes[i];  // little-endian, whatever the host
  MINIDL_CHECK(n <= kSafetensorsMaxHeader && n <= size - 8, path, ": header length ", n,
               " does not fit the file (", size, " bytes)");
  std::string header(size_t(n), '\0');
  f.read(header.data(), std::streamsize(n));
  MINIDL_CHECK(uint64_t(f.gcount()) == n, path, ": truncated header");
  try {
    const nlohmann::json j = nlohmann::json::parse(header);
    if (!j.contains("__metadata__")) return {};
    return j.at("__metadata__").get<std::map<std::string, std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(detail::concat(path, ": malformed safetensors header: ", e.what()));
  }
}

}  // namespace

nlohmann::json train_state_to_json(const TrainState& s) {
  return {{"epoch", s.epoch},
          {"batch", s.batch},
          {"global_step", s.global_step},
          {"best_val_acc", s.best_val_acc},
          {"best_epoch", s.best_epoch},
          {"loss_sum", s.loss_sum},
          {"correct", s.correct},
          {"seen", s.seen},
          {"rng", s.rng}};
}

TrainState train_state_from_json(const nlohmann::json& j) {
  TrainState s;
  j.at("epoch").get_to(s.epoch);
  j.at("batch").get_to(s.batch);
  j.at("global_step").get_to(s.global_step);
  j.at("best_val_acc").get_to(s.best_val_acc);
  j.at("best_epoch").get_to(s.best_epoch);
  j.at("loss_sum").get_to(s.loss_sum);
  j.at("correct").get_to(s.correct);
  j.at("seen").get_to(s.seen);
  j.at("rng").get_to(s.rng);
  return s;
}

void save_training_checkpoint(const std::string& path, const Module& model, const Optimizer& optimizer,
                              const TrainState& state, const TrainConfig& config,
                              const std::map<std::string, std::string>& model_metadata) {
  NamedTensors tensors;
  for (const auto& [name, t] : model.state_dict()) tensors.emplace_back(kModelPrefix + name, t);
  for (const auto& [name, t] : optimizer.state_dict()) tensors.emplace_back(kOptimizerPrefix + name, t);
  std::map<std::string, std::string> meta = model_metadata;
  meta[kStateKey] = train_state_to_json(state).dump();
  meta[kConfigKey] = config_to_json(config).dump();
  save_safetensors(path, tensors, meta);
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  return info_from_metadata(read_metadata_only(path), path);
}

CheckpointInfo load_training_checkpoint(const std::string& path, Module& model, Optimizer& optimizer) {
  SafetensorsContents file = load_safetensors(path);
  CheckpointInfo info = info_from_metadata(file.metadata, path);
  NamedTensors weights, opt_state;
  for (const auto& e : file.tensors) {
    if (e.name.rfind(kModelPrefix, 0) == 0)
      weights.emplace_back(e.name.substr(kModelPrefix.size()), e.tensor);
    else if (e.name.rfind(kOptimizerPrefix, 0) == 0)
      opt_state.emplace_back(e.name.substr(kOptimizerPrefix.size()), e.tensor);
    else
      throw Error(detail::concat(path, ": unexpected tensor '", e.name, "' in a training checkpoint"));
  }
  try {
    load_state_dict(model, weights);  // strict: throws listing every problem, changes nothing
  } catch (const Error& e) {
    throw Error(detail::concat(path, ": the weights do not fit this model: ", e.what()));
  }
  try {
    optimizer.load_state_dict(opt_state);
  } catch (const Error& e) {
    throw Error(detail::concat(path, ": optimizer state does not fit: ", e.what()));
  }
  return info;
}

void save_model_checkpoint(const std::string& path, const Module& model,
                           const std::map<std::string, std::string>& model_metadata) {
  save_safetensors(path, model.state_dict(), model_metadata);
}

}  // namespace minidl
