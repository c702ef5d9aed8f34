// Training checkpoints (train/checkpoint.h), the run config they carry (train/config.h) and
// the per-epoch log (train/run_log.h): exact round trips, and clear refusals.
#include <doctest/doctest.h>

#include <filesystem>

#include "layers/adamw.h"
#include "layers/batchnorm2d.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/sequential.h"
#include "layers/sgd.h"
#include "models/checkpoint_meta.h"
#include "models/safetensors.h"
#include "models/state_dict.h"
#include "train/checkpoint.h"
#include "train/run_log.h"
#include "train/text_io.h"
#include "test_util.h"

using namespace minidl;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) : path(minidl::testing::unique_temp(name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::shared_ptr<Sequential> tiny_model(uint64_t seed) {
  Generator g(seed);
  return std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
      std::make_shared<Conv2d>(3, 4, 3, 1, 1, false, g), std::make_shared<BatchNorm2d>(4),
      std::make_shared<Linear>(4, 2, true, g)});
}

// Gives every parameter a gradient and takes `n` optimizer steps, so state exists.
void take_steps(Module& m, Optimizer& opt, int n) {
  Generator g(7);
  for (int i = 0; i < n; ++i) {
    for (Tensor& p : m.parameters()) p.set_grad(randn(p.shape(), p.dtype(), g));
    opt.step();
  }
}

void check_identical(const NamedTensors& a, const NamedTensors& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    REQUIRE(a[i].second.shape() == b[i].second.shape());
    REQUIRE(a[i].second.dtype() == b[i].second.dtype());
    CHECK_MESSAGE(a[i].second.to_vector<double>() == b[i].second.to_vector<double>(), a[i].first);
  }
}

TrainConfig some_config() {
  TrainConfig c;
  c.data = "/data/EuroSAT_RGB";
  c.arch = "resnet18";
  c.epochs = 7;
  c.batch_size = 16;
  c.lr = 3e-4;
  c.optimizer = "sgd";
  c.schedule = "cosine";
  c.warmup_epochs = 0.5;
  c.freeze_epochs = 2;
  c.seed = 123;
  c.split_seed = 9;
  c.threads = 2;
  c.out = "runs/x";
  c.max_batches = 5;
  return c;
}

}  // namespace

TEST_CASE("TrainConfig: JSON round trip keeps every field; unknown keys and wrong types are refused") {
  const TrainConfig c = some_config();
  const nlohmann::json j = config_to_json(c);
  CHECK(j.at("batch_size") == 16);  // keys are the flag names with '_'
  CHECK(j.at("warmup_epochs") == 0.5);
  const TrainConfig back = config_from_json(j);
  CHECK(config_to_json(back) == j);
  CHECK(resume_conflicts(c, back).empty());

  nlohmann::json extra = j;
  extra["batch_sise"] = 3;
  CHECK_ERROR_MENTIONS(config_from_json(extra), "unknown key 'batch_sise'");
  nlohmann::json wrong = j;
  wrong["epochs"] = "many";
  CHECK_ERROR_MENTIONS(config_from_json(wrong), "'epochs'", "wrong type");
  // Missing keys keep their defaults (a config from an older version).
  CHECK(config_from_json(nlohmann::json::object()).arch == "resnet50");
}

TEST_CASE("validate_config names the flag at fault") {
  TrainConfig c = some_config();
  CHECK_NOTHROW(validate_config(c));
  auto with = [&](auto change) {
    TrainConfig d = c;
    change(d);
    return d;
  };
  CHECK_ERROR_MENTIONS(validate_config(with([](TrainConfig& d) { d.arch = "resnet19"; })), "--arch", "resnet19");
  CHECK_ERROR_MENTIONS(validate_config(with([](TrainConfig& d) { d.img_size = 16; })), "--img-size", "32..224");
  CHECK_ERROR_MENTIONS(validate_config(with([](TrainConfig& d) { d.batch_size = 1; })), "--batch-size");
  CHECK_ERROR_MENTIONS(validate_config(with([](TrainConfig& d) { d.optimizer = "adam"; })), "--optimizer");
  CHECK_ERROR_MENTIONS(validate_config(with([](TrainConfig& d) { d.schedule = "linear"; })), "--schedule");
  CHECK_ERROR_MENTIONS(validate_config(with([](TrainConfig& d) { d.freeze_epochs = 7; })), "--freeze-epochs");
  CHECK_ERROR_MENTIONS(validate_config(with([](TrainConfig& d) { d.lr = 0; })), "--lr");
  CHECK_ERROR_MENTIONS(validate_config(with([](TrainConfig& d) { d.device = "gpu"; })), "--device", "gpu");
}

TEST_CASE("resume_conflicts lists the settings that change the numbers, and only those") {
  const TrainConfig saved = some_config();
  TrainConfig now = saved;
  now.threads = 8;  // machinery: allowed (the trainer warns)
  now.out = "elsewhere";
  now.workers = 5;
  now.checkpoint_every = 3;
  now.stop_after_batches = 2;
  now.progress = false;
  now.split_file = "x.json";  // a resume always rereads OUT/split.json
  CHECK(resume_conflicts(saved, now).empty());
  now.batch_size = 32;
  now.seed = 124;
  now.lr = 3.0000000001e-4;  // compared to the last digit, not to 6 digits
  const auto lines = resume_conflicts(saved, now);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "batch_size: checkpoint 16, now 32");
  CHECK(lines[1].rfind("lr: checkpoint ", 0) == 0);
  CHECK(lines[2] == "seed: checkpoint 123, now 124");
}

TEST_CASE("TrainState: JSON round trip is exact, RNG words included") {
  TrainState s;
  s.epoch = 3;
  s.batch = 17;
  s.global_step = 1234567;
  s.best_val_acc = 0.9876543210123;
  s.best_epoch = 2;
  s.loss_sum = 1.0 / 3.0;
  s.correct = 99;
  s.seen = 128;
  s.rng = {0xffffffffffffffffull, 1, 0x8000000000000000ull, 42};
  const TrainState b = train_state_from_json(nlohmann::json::parse(train_state_to_json(s).dump()));
  CHECK(b.epoch == 3);
  CHECK(b.batch == 17);
  CHECK(b.global_step == 1234567);
  CHECK(b.best_val_acc == s.best_val_acc);  // exactly: doubles survive the text form
  CHECK(b.loss_sum == s.loss_sum);
  CHECK(b.correct == 99);
  CHECK(b.seen == 128);
  CHECK(b.rng == s.rng);
}

TEST_CASE("training checkpoint: weights, buffers and optimizer state come back bit for bit") {
  TempDir dir("minidl_test_checkpoint");
  for (const std::string opt_name : {"adamw", "sgd"}) {
    CAPTURE(opt_name);
    auto model = tiny_model(1);
    std::unique_ptr<Optimizer> opt;
    if (opt_name == "adamw")
      opt = std::make_unique<AdamW>(weight_decay_groups(*model, 0.01, 1e-2), AdamWOptions{});
    else
      opt = std::make_unique<SGD>(weight_decay_groups(*model, 0.01, 1e-2), SGDOptions{.lr = 0.1, .momentum = 0.9});
    take_steps(*model, *opt, 3);
    Generator bg(11);  // non-trivial buffers too (running statistics)
    for (auto& [name, t] : model->named_buffers())
      if (is_floating_compute(t.dtype())) uniform_(t, 0.5, 1.5, bg);
    TrainState st;
    st.epoch = 1;
    st.batch = 4;
    st.rng = Generator(5).state();
    TrainConfig cfg = some_config();
    const std::string path = dir.file("last.safetensors");
    save_training_checkpoint(path, *model, *opt, st, cfg, {{"arch", "tiny"}});
    CHECK_FALSE(fs::exists(path + ".tmp"));

    auto fresh = tiny_model(2);  // different init: everything must be overwritten
    std::unique_ptr<Optimizer> fresh_opt;
    if (opt_name == "adamw")
      fresh_opt = std::make_unique<AdamW>(weight_decay_groups(*fresh, 0.01, 1e-2), AdamWOptions{});
    else
      fresh_opt =
          std::make_unique<SGD>(weight_decay_groups(*fresh, 0.01, 1e-2), SGDOptions{.lr = 0.1, .momentum = 0.9});
    const CheckpointInfo info = load_training_checkpoint(path, *fresh, *fresh_opt);
    check_identical(model->state_dict(), fresh->state_dict());
    check_identical(opt->state_dict(), fresh_opt->state_dict());
    CHECK(info.state.epoch == 1);
    CHECK(info.state.batch == 4);
    CHECK(info.state.rng == Generator(5).state());
    CHECK(resume_conflicts(cfg, info.config).empty());
    CHECK(read_checkpoint_info(path).state.batch == 4);
    // One more identical step on both keeps them identical: the state is complete.
    take_steps(*model, *opt, 1);
    take_steps(*fresh, *fresh_opt, 1);
    check_identical(model->state_dict(), fresh->state_dict());
  }
}

TEST_CASE("training checkpoint: refusals name the file") {
  TempDir dir("minidl_test_checkpoint_bad");
  auto model = tiny_model(1);
  AdamW opt(weight_decay_groups(*model, 0.01), AdamWOptions{});
  take_steps(*model, opt, 1);
  const std::string plain = dir.file("weights.safetensors");
  save_weights_file(*model, plain);
  CHECK_ERROR_MENTIONS(read_checkpoint_info(plain), plain.c_str(), "not a training checkpoint");

  const std::string path = dir.file("last.safetensors");
  save_training_checkpoint(path, *model, opt, TrainState{}, some_config(), {});
  Generator g(3);
  auto other = std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
      std::make_shared<Conv2d>(3, 8, 3, 1, 1, false, g), std::make_shared<BatchNorm2d>(8),
      std::make_shared<Linear>(8, 2, true, g)});
  AdamW other_opt(weight_decay_groups(*other, 0.01), AdamWOptions{});
  const auto before = other->state_dict()[0].second.to_vector<double>();
  CHECK_ERROR_MENTIONS(load_training_checkpoint(path, *other, other_opt), path.c_str(), "do not fit");
  CHECK(other->state_dict()[0].second.to_vector<double>() == before);  // strict: nothing changed

  CHECK_ERROR_MENTIONS(read_checkpoint_info(dir.file("missing.safetensors")), "missing.safetensors");
  write_text_atomic(dir.file("short.safetensors"), "abc");
  CHECK_ERROR_MENTIONS(read_checkpoint_info(dir.file("short.safetensors")), "short.safetensors", "too short");
  write_text_atomic(dir.file("huge.safetensors"), std::string("\xff\xff\xff\x00\x00\x00\x00\x00{}", 10));
  CHECK_ERROR_MENTIONS(read_checkpoint_info(dir.file("huge.safetensors")), "huge.safetensors", "does not fit");
  write_text_atomic(dir.file("garbled.safetensors"), std::string("\x04\x00\x00\x00\x00\x00\x00\x00{{{{", 12));
  CHECK_ERROR_MENTIONS(read_checkpoint_info(dir.file("garbled.safetensors")), "garbled.safetensors", "malformed");
}

TEST_CASE("model checkpoint: plain torchvision names and classify's metadata") {
  TempDir dir("minidl_test_checkpoint_best");
  auto model = tiny_model(4);
  ModelMeta m;
  m.arch = "resnet18";
  m.num_classes = 2;
  m.classes = std::vector<std::string>{"Forest", "River"};
  m.img_size = 32;
  const std::string path = dir.file("best.safetensors");
  save_model_checkpoint(path, *model, to_metadata(m));
  auto back = tiny_model(5);
  std::map<std::string, std::string> raw;
  load_weights_file(*back, path, {}, &raw);  // strict, no prefixes
  check_identical(model->state_dict(), back->state_dict());
  const ModelMeta bm = meta_from_metadata(raw, path);
  CHECK(bm.arch == "resnet18");
  CHECK(bm.img_size == 32);
  CHECK(*bm.classes == std::vector<std::string>{"Forest", "River"});
}

TEST_CASE("run log: append, read back, truncate for a resumed epoch") {
  TempDir dir("minidl_test_run_log");
  const std::string out = dir.path.string();
  CHECK(read_epoch_records(out).empty());
  for (int e = 1; e <= 3; ++e) {
    EpochRecord r;
    r.epoch = e;
    r.phase = e == 1 ? "head" : "full";
    r.train_loss = 1.0 / e;
    r.val_acc = 0.25 * e;
    r.train_images = 100;
    append_epoch_record(out, r);
  }
  auto recs = read_epoch_records(out);
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].phase == "head");
  CHECK(recs[2].train_loss == 1.0 / 3);
  CHECK(recs[1].val_acc == 0.5);
  std::string csv = read_text_file(dir.file("metrics.csv"));
  CHECK(csv.rfind("epoch,phase,train_loss", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 4);  // header once, three rows

  truncate_epoch_records(out, 3);  // epoch 3 will be redone
  recs = read_epoch_records(out);
  REQUIRE(recs.size() == 2);
  CHECK(recs.back().epoch == 2);
  csv = read_text_file(dir.file("metrics.csv"));
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);
  truncate_epoch_records(out, 1);
  CHECK(read_epoch_records(out).empty());
  EpochRecord r;
  r.epoch = 1;
  append_epoch_record(out, r);  // the header comes back with the first row
  CHECK(read_text_file(dir.file("metrics.csv")).rfind("epoch,phase", 0) == 0);

  append_text(dir.file("metrics.jsonl"), "{not json\n");
  CHECK_ERROR_MENTIONS(read_epoch_records(out), "metrics.jsonl", "line 2");
}
