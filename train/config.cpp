#include "train/config.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <set>
#include <sstream>

#include "models/resnet.h"
#include "tensor/error.h"

namespace minidl {

namespace {

// One list of (key, field) drives serialisation, parsing and the resume comparison, so a
// new setting cannot be saved but forgotten by --resume (or the reverse).
template <class Config, class F>
void for_each_field(Config& c, F&& f) {
  f("data", c.data);
  f("split_file", c.split_file);
  f("split_seed", c.split_seed);
  f("img_size", c.img_size);
  f("augment", c.augment);
  f("workers", c.workers);
  f("arch", c.arch);
  f("weights", c.weights);
  f("epochs", c.epochs);
  f("batch_size", c.batch_size);
  f("lr", c.lr);
  f("optimizer", c.optimizer);
  f("momentum", c.momentum);
  f("schedule", c.schedule);
  f("warmup_epochs", c.warmup_epochs);
  f("weight_decay", c.weight_decay);
  f("label_smoothing", c.label_smoothing);
  f("freeze_epochs", c.freeze_epochs);
  f("backbone_lr_mult", c.backbone_lr_mult);
  f("seed", c.seed);
  f("threads", c.threads);
  f("out", c.out);
  f("resume", c.resume);
  f("max_batches", c.max_batches);
  f("checkpoint_every", c.checkpoint_every);
  f("stop_after_batches", c.stop_after_batches);
  f("device", c.device);
  f("top_losses", c.top_losses);
  f("progress", c.progress);
  f("lr_find", c.lr_find);
  f("lr_find_start", c.lr_find_start);
  f("lr_find_end", c.lr_find_end);
  f("lr_find_iters", c.lr_find_iters);
}

// Settings a resumed run may change freely: they steer the machinery, not the numbers.
// (threads and device do change the rounding; the trainer warns about those.)
// The split settings are here because a resumed run always rereads OUT/split.json.
const std::set<std::string> kFreeOnResume = {
    "threads",    "out",         "resume",      "workers",       "checkpoint_every", "stop_after_batches",
    "top_losses", "progress",    "lr_find",     "lr_find_start", "lr_find_end",      "lr_find_iters",
    "split_file", "split_seed", "device"};

template <class T>
std::string show(const T& v) {
  std::ostringstream os;
  os << std::setprecision(17);  // doubles must compare exactly, not to 6 digits
  if constexpr (std::is_same_v<T, std::string>)
    os << '"' << v << '"';
  else if constexpr (std::is_same_v<T, bool>)
    os << (v ? "true" : "false");
  else
    os << v;
  return os.str();
}

}  // namespace

nlohmann::json config_to_json(const TrainConfig& c) {
  nlohmann::json j = nlohmann::json::object();
  for_each_field(c, [&](const char* key, const auto& v) { j[key] = v; });
  return j;
}

TrainConfig config_from_json(const nlohmann::json& j) {
  MINIDL_CHECK(j.is_object(), "training config: expected a JSON object, got ", j.dump());
  TrainConfig c;
  std::set<std::string> known;
  for_each_field(c, [&](const char* key, auto& v) {
    known.insert(key);
    if (!j.contains(key)) return;
    try {
      j.at(key).get_to(v);
    } catch (const nlohmann::json::exception& e) {
      throw Error(detail::concat("training config: key '", key, "' has the wrong type (", j.at(key).dump(), "): ",
                                 e.what()));
    }
  });
  for (const auto& [key, _] : j.items())
    MINIDL_CHECK(known.count(key), "training config: unknown key '", key, "' (written by another version?)");
  return c;
}

void validate_config(const TrainConfig& c) {
  const auto archs = resnet_arch_names();
  MINIDL_CHECK(std::find(archs.begin(), archs.end(), c.arch) != archs.end(), "--arch: unknown architecture '",
               c.arch, "'; expected one of resnet18, resnet34, resnet50, resnet101, resnet152");
  MINIDL_CHECK(c.img_size >= 32 && c.img_size <= 224, "--img-size must be in 32..224, got ", c.img_size);
  MINIDL_CHECK(c.epochs >= 1, "--epochs must be >= 1, got ", c.epochs);
  MINIDL_CHECK(c.batch_size >= 2, "--batch-size must be >= 2 (batch norm needs two samples), got ", c.batch_size);
  MINIDL_CHECK(std::isfinite(c.lr) && c.lr > 0, "--lr must be > 0, got ", c.lr);
  MINIDL_CHECK(c.optimizer == "sgd" || c.optimizer == "adamw", "--optimizer must be sgd or adamw, got '",
               c.optimizer, "'");
  MINIDL_CHECK(c.schedule == "onecycle" || c.schedule == "cosine" || c.schedule == "step",
               "--schedule must be onecycle, cosine or step, got '", c.schedule, "'");
  MINIDL_CHECK(c.momentum >= 0 && c.momentum < 1, "--momentum must be in [0, 1), got ", c.momentum);
  MINIDL_CHECK(c.warmup_epochs >= 0, "--warmup-epochs must be >= 0, got ", c.warmup_epochs);
  MINIDL_CHECK(c.weight_decay >= 0, "--weight-decay must be >= 0, got ", c.weight_decay);
  MINIDL_CHECK(c.label_smoothing >= 0 && c.label_smoothing < 1, "--label-smoothing must be in [0, 1), got ",
               c.label_smoothing);
  MINIDL_CHECK(c.freeze_epochs >= 0 && c.freeze_epochs < c.epochs, "--freeze-epochs must be in [0, --epochs), got ",
               c.freeze_epochs, " with --epochs ", c.epochs);
  MINIDL_CHECK(c.backbone_lr_mult > 0, "--backbone-lr-mult must be > 0, got ", c.backbone_lr_mult);
  MINIDL_CHECK(c.threads >= 0, "--threads must be >= 0, got ", c.threads);
  MINIDL_CHECK(c.workers >= 1, "--workers must be >= 1, got ", c.workers);
  MINIDL_CHECK(c.max_batches >= 0, "--max-batches must be >= 0, got ", c.max_batches);
  MINIDL_CHECK(c.checkpoint_every >= 0, "--checkpoint-every must be >= 0, got ", c.checkpoint_every);
  MINIDL_CHECK(c.stop_after_batches >= 0, "--stop-after-batches must be >= 0, got ", c.stop_after_batches);
  MINIDL_CHECK(c.top_losses >= 0, "--top-losses must be >= 0, got ", c.top_losses);
  MINIDL_CHECK(c.device == "cpu" || c.device == "cuda", "--device must be cpu or cuda, got '", c.device, "'");
  MINIDL_CHECK(c.lr_find_start > 0 && c.lr_find_end > c.lr_find_start,
               "--lr-find-start/--lr-find-end: need 0 < start < end, got ", c.lr_find_start, " and ", c.lr_find_end);
  MINIDL_CHECK(c.lr_find_iters >= 5, "--lr-find-iters must be >= 5, got ", c.lr_find_iters);
  MINIDL_CHECK(!c.out.empty(), "--out: the run folder is empty");
}

std::vector<std::string> resume_conflicts(const TrainConfig& saved, const TrainConfig& now) {
  std::vector<std::string> out;
  std::vector<std::pair<std::string, std::string>> a, b;
  for_each_field(saved, [&](const char* key, const auto& v) { a.emplace_back(key, show(v)); });
  for_each_field(now, [&](const char* key, const auto& v) { b.emplace_back(key, show(v)); });
  for (size_t i = 0; i < a.size(); ++i)
    if (!kFreeOnResume.count(a[i].first) && a[i].second != b[i].second)
      out.push_back(a[i].first + ": checkpoint " + a[i].second + ", now " + b[i].second);
  return out;
}

}  // namespace minidl
