// The trainer end to end on the shipped EuroSAT sample (resnet18, 32x32, batches of 8, three
// batches an epoch): every run file written and sane, best.safetensors usable by classify
// with no flags, kill-and-resume bit-identical to an uninterrupted run, fine-tuning from
// weights with a head-only phase that leaves the backbone alone, an interrupt, a non-finite
// loss stopping cleanly, the lr finder, and bad
// data (missing folder, empty class folder, corrupt JPEG, non-image file) reported clearly.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "datasets/split.h"
#include "models/classifier.h"
#include "models/safetensors.h"
#include "models/state_dict.h"
#include "train/lr_finder.h"
#include "train/run_log.h"
#include "train/run_setup.h"
#include "train/text_io.h"
#include "train/trainer.h"
#include "test_util.h"

using namespace minidl;
namespace fs = std::filesystem;

namespace {

const std::string kSample = std::string(MINIDL_SOURCE_DIR) + "/datasets/eurosat_sample";

fs::path scratch() {
  static const fs::path dir = [] {
    fs::path d = minidl::testing::unique_temp("test_train_smoke");
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

TrainConfig smoke_config(const std::string& out_name) {
  TrainConfig c;
  c.data = kSample;
  c.arch = "resnet18";
  c.img_size = 32;
  c.batch_size = 8;
  c.epochs = 2;
  c.max_batches = 3;
  c.threads = 2;
  c.workers = 1;
  c.seed = 3;
  c.progress = false;
  c.top_losses = 4;
  c.out = (scratch() / out_name).string();
  return c;
}

// The uninterrupted reference run, shared by the tests below (training takes seconds).
struct ReferenceRun {
  TrainConfig config;
  TrainOutcome outcome;
  std::string log;
};
const ReferenceRun& reference() {
  static const ReferenceRun r = [] {
    ReferenceRun run;
    run.config = smoke_config("reference");
    std::ostringstream log;
    run.outcome = train_model(run.config, log);
    run.log = log.str();
    return run;
  }();
  return r;
}

std::string in(const TrainConfig& c, const char* name) { return (fs::path(c.out) / name).string(); }

// Every tensor of two safetensors files, compared bit for bit (float32 -> double is exact).
void check_same_tensors(const std::string& a, const std::string& b) {
  const SafetensorsContents x = load_safetensors(a), y = load_safetensors(b);
  REQUIRE(x.tensors.size() == y.tensors.size());
  for (size_t i = 0; i < x.tensors.size(); ++i) {
    CAPTURE(x.tensors[i].name);
    REQUIRE(x.tensors[i].name == y.tensors[i].name);
    REQUIRE(x.tensors[i].tensor.shape() == y.tensors[i].tensor.shape());
    CHECK(x.tensors[i].tensor.to_vector<double>() == y.tensors[i].tensor.to_vector<double>());
  }
}

void copy_class(const fs::path& dst_root, const std::string& cls, int count) {
  fs::create_directories(dst_root / cls);
  for (int i = 1; i <= count; ++i) {
    const std::string name = cls + "_" + std::to_string(i) + ".jpg";
    fs::copy_file(fs::path(kSample) / cls / name, dst_root / cls / name, fs::copy_options::overwrite_existing);
  }
}

}  // namespace

TEST_CASE("smoke run: metrics, checkpoints, split, results and report are written and sane") {
  const ReferenceRun& r = reference();
  const TrainConfig& c = r.config;
  CHECK(r.outcome.status == TrainOutcome::Status::Completed);
  CHECK(r.outcome.state.epoch == 2);
  CHECK(r.outcome.state.global_step == 6);
  CHECK(r.log.find("from scratch") != std::string::npos);  // no --weights: said so

  const auto epochs = read_epoch_records(c.out);
  REQUIRE(epochs.size() == 2);
  for (const EpochRecord& e : epochs) {
    CHECK(std::isfinite(e.train_loss));
    CHECK(e.train_loss > 0);
    CHECK(e.train_acc >= 0);
    CHECK(e.train_acc <= 1);
    CHECK(e.val_images == 24);  // --max-batches 3 x 8
    CHECK(e.train_images == 24);
    CHECK(e.lr > 0);
  }
  CHECK(epochs[1].epoch == 2);
  const std::string csv = read_text_file(in(c, "metrics.csv"));
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);

  // The split covers the sample 60/20/20 and reads back against a fresh scan.
  const ImageFolder folder = scan_image_folder(kSample);
  const Split split = read_split_file(in(c, "split.json"), folder);
  CHECK(split.train.size() == 180);
  CHECK(split.val.size() == 60);
  CHECK(split.test.size() == 60);

  const nlohmann::json res = nlohmann::json::parse(read_text_file(in(c, "results.json")));
  CHECK(res.at("test_images") == 24);
  CHECK(res.at("test_images_total") == 60);
  CHECK(res.at("confusion").size() == 10);
  CHECK(res.at("test_accuracy").get<double>() == doctest::Approx(r.outcome.test_accuracy));
  CHECK(read_text_file(in(c, "confusion.csv")).rfind("true\\predicted,AnnualCrop,Forest", 0) == 0);
  CHECK(fs::exists(in(c, "top_losses.csv")));

  const std::string html = read_text_file(in(c, "report.html"));
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(html.find("</html>") != std::string::npos);
  CHECK(std::count(html.begin(), html.end(), '<') > 100);
  CHECK(html.find("<svg") != std::string::npos);              // curves inline
  CHECK(html.find("data:image/png;base64,") != std::string::npos);  // mistakes embedded
  CHECK(html.find("SeaLake") != std::string::npos);
  CHECK(html.find("<script") == std::string::npos);           // self-contained, nothing to fetch
  CHECK(html.find("src=\"http") == std::string::npos);
  CHECK(html.find("href=\"http") == std::string::npos);
}

TEST_CASE("smoke run: best.safetensors is a classify model with no extra flags") {
  const TrainConfig& c = reference().config;
  const Classifier cls(in(c, "best.safetensors"));
  CHECK(cls.arch() == "resnet18");
  CHECK(cls.num_classes() == 10);
  CHECK(cls.img_size() == 32);
  REQUIRE(cls.has_class_names());
  CHECK(cls.class_name(0) == "AnnualCrop");
  CHECK(cls.class_name(9) == "SeaLake");
  const auto probs = cls.predict({decode_image_file(kSample + "/Forest/Forest_1.jpg")});
  REQUIRE(probs.size() == 1);
  CHECK(probs[0].size() == 10);
}

TEST_CASE("kill and resume: bit-identical weights and optimizer state to the uninterrupted run") {
  const ReferenceRun& ref = reference();
  TrainConfig c = smoke_config("killed");
  // Checkpoints after steps 2, 3 (epoch end) and 4; killed after step 5, so step 5 is lost
  // and redone from the step-4 checkpoint (epoch 2, batch 1), as after a real kill.
  c.checkpoint_every = 2;
  c.stop_after_batches = 5;
  std::ostringstream log1;
  const TrainOutcome first = train_model(c, log1);
  REQUIRE(first.status == TrainOutcome::Status::Stopped);
  const CheckpointInfo mid = read_checkpoint_info(last_checkpoint_path(c.out));
  CHECK(mid.state.epoch == 1);
  CHECK(mid.state.batch == 1);
  CHECK(mid.state.global_step == 4);

  // A fresh start into the same folder is refused; a resume with a changed seed too.
  CHECK_ERROR_MENTIONS(train_model(c, log1), "already holds a training run", "--resume");
  TrainConfig wrong = c;
  wrong.resume = true;
  wrong.seed = 4;
  CHECK_ERROR_MENTIONS(train_model(wrong, log1), "--resume", "seed: checkpoint 3, now 4");

  c.resume = true;
  c.stop_after_batches = 0;
  std::ostringstream log2;
  const TrainOutcome second = train_model(c, log2);
  REQUIRE(second.status == TrainOutcome::Status::Completed);
  CHECK(log2.str().find("resuming") != std::string::npos);
  CHECK(second.state.global_step == 6);
  check_same_tensors(last_checkpoint_path(ref.config.out), last_checkpoint_path(c.out));
  check_same_tensors(best_checkpoint_path(ref.config.out), best_checkpoint_path(c.out));
  // The resumed epoch reports what the uninterrupted one did (its running sums were saved).
  const auto a = read_epoch_records(ref.config.out), b = read_epoch_records(c.out);
  REQUIRE(a.size() == 2);
  REQUIRE(b.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(a[i].train_loss == b[i].train_loss);
    CHECK(a[i].train_acc == b[i].train_acc);
    CHECK(a[i].val_loss == b[i].val_loss);
    CHECK(a[i].val_acc == b[i].val_acc);
  }
  CHECK(second.test_accuracy == ref.outcome.test_accuracy);
}

TEST_CASE("fine-tuning: --weights with another head size, head-only phase leaves the backbone alone") {
  // Stand-in for converted ImageNet weights: a resnet18 with a 1000-class head.
  Generator wgen(77);
  const auto imagenet = make_resnet("resnet18", 1000, wgen);
  const std::string weights = (scratch() / "imagenet_like.safetensors").string();
  save_weights_file(*imagenet, weights);

  TrainConfig c = smoke_config("frozen");
  c.weights = weights;
  c.freeze_epochs = 1;
  c.max_batches = 2;
  c.checkpoint_every = 1;
  c.stop_after_batches = 1;
  std::ostringstream log;
  REQUIRE(train_model(c, log).status == TrainOutcome::Status::Stopped);
  CHECK(log.str().find("fc.") != std::string::npos);  // load_pretrained's notice: the head was replaced
  CHECK(log.str().find("from scratch") == std::string::npos);
  const SafetensorsContents ck = load_safetensors(last_checkpoint_path(c.out));
  int moved = 0, still = 0, opt_entries = 0;
  for (const auto& [name, t] : imagenet->named_parameters()) {
    const Tensor saved = ck.find("model." + name);
    REQUIRE(saved.defined());
    if (name.rfind("fc.", 0) == 0) {
      CHECK(saved.size(0) == 10);  // the new head, sized for the sample's classes
      ++moved;
    } else {
      still += saved.to_vector<double>() == t.to_vector<double>();
    }
  }
  CHECK(moved == 2);
  CHECK(still == int(imagenet->named_parameters().size()) - 2);  // the backbone is the file's, untouched
  for (const auto& e : ck.tensors) opt_entries += e.name.rfind("optimizer.", 0) == 0;
  CHECK(opt_entries == 2 * 3);  // AdamW state (step, exp_avg, exp_avg_sq) for the head only
}

TEST_CASE("an interrupt (Ctrl-C in the app) checkpoints after the current batch, and the run resumes") {
  TrainConfig c = smoke_config("interrupted");
  c.epochs = 1;
  c.max_batches = 2;
  std::atomic<bool> stop{true};  // raised before the first batch: exactly one batch runs
  std::ostringstream log;
  const TrainOutcome r = train_model(c, log, &stop);
  REQUIRE(r.status == TrainOutcome::Status::Stopped);
  CHECK(r.message.find("interrupted") != std::string::npos);
  CHECK(read_checkpoint_info(last_checkpoint_path(c.out)).state.global_step == 1);
  c.resume = true;
  stop = false;
  CHECK(train_model(c, log, &stop).status == TrainOutcome::Status::Completed);
}

TEST_CASE("a non-finite loss stops training and keeps the last good checkpoint") {
  TrainConfig c = smoke_config("diverged");
  c.lr = 1e30;  // the first updates wreck the weights: they, or the next loss, stop being finite
  c.checkpoint_every = 1;
  std::ostringstream log;
  const TrainOutcome r = train_model(c, log);
  REQUIRE(r.status == TrainOutcome::Status::Diverged);
  INFO(r.message);
  CHECK(r.message.find("epoch 1, batch") != std::string::npos);
  CHECK(r.message.find("--lr") != std::string::npos);
  CHECK(r.message.find("kept unchanged") != std::string::npos);
  const CheckpointInfo info = read_checkpoint_info(last_checkpoint_path(c.out));
  CHECK(info.state.global_step >= 1);
  CHECK(info.state.global_step < r.state.global_step + 1);
  int64_t bad = 0;
  for (const auto& e : load_safetensors(last_checkpoint_path(c.out)).tensors)
    for (double v : e.tensor.to_vector<double>()) bad += !std::isfinite(v);
  CHECK(bad == 0);

  // Without mid-epoch checkpoints the next batch's loss is what gives it away.
  TrainConfig d = smoke_config("diverged_loss");
  d.lr = 1e30;
  const TrainOutcome r2 = train_model(d, log);
  REQUIRE(r2.status == TrainOutcome::Status::Diverged);
  INFO(r2.message);
  CHECK(r2.message.find("the loss became") != std::string::npos);
  CHECK(r2.message.find("No checkpoint had been written yet") != std::string::npos);
  CHECK_FALSE(fs::exists(last_checkpoint_path(d.out)));
}

TEST_CASE("lr finder: the rule on a made-up curve, and a short real sweep") {
  // Loss falls until lr = 1e-2, then explodes: the sweep stops early and suggests ~1e-3.
  LrFindOptions o;
  o.start_lr = 1e-6;
  o.end_lr = 1e2;
  o.iters = 81;  // ten points a decade
  o.beta = 0.0;  // no smoothing, so the minimum is exact
  const LrFindResult r = lr_range_test(
      [](double lr) {
        const double x = std::log10(lr);
        return x <= -2 ? 3.0 - 0.5 * (x + 6) : 1.0 + 10 * (x + 2);
      },
      o);
  CHECK(r.diverged);
  CHECK(r.points.size() < 81);
  CHECK(r.min_loss_lr == doctest::Approx(1e-2).epsilon(1e-6));
  CHECK(r.suggested_lr == doctest::Approx(1e-3).epsilon(1e-6));
  CHECK(r.steepest_lr <= r.min_loss_lr);
  CHECK_ERROR_MENTIONS(lr_range_test([](double) { return NAN; }, o), "not finite");

  TrainConfig c = smoke_config("lr_find");
  c.lr_find = true;
  c.lr_find_iters = 5;
  std::ostringstream log;
  const LrFindResult real = run_lr_finder(c, log);
  CHECK(real.points.size() >= 1);
  CHECK(real.suggested_lr > 0);
  CHECK(log.str().find("suggested --lr") != std::string::npos);
  CHECK(read_text_file(in(c, "lr_find.csv")).rfind("iter,lr,loss,smoothed_loss\n", 0) == 0);
  CHECK(read_text_file(in(c, "lr_find.svg")).find("</svg>") != std::string::npos);
}

TEST_CASE("bad data: clear errors, and unreadable files listed and left out") {
  TrainConfig c = smoke_config("bad_data");
  c.data = (scratch() / "no_such_folder").string();
  std::ostringstream log;
  CHECK_ERROR_MENTIONS(train_model(c, log), "no_such_folder");

  // Three small classes, then damage: an empty class folder is an error naming it.
  const fs::path root = scratch() / "tiny";
  for (const char* cls : {"Forest", "River", "SeaLake"}) copy_class(root, cls, 10);
  fs::create_directories(root / "Empty");
  c.data = root.string();
  CHECK_ERROR_MENTIONS(train_model(c, log), "Empty");
  fs::remove(root / "Empty");

  // A corrupt JPEG and a stray text file: listed, left out, training data still usable.
  write_text_atomic((root / "River" / "River_99.jpg").string(), "\xff\xd8\xff\xe0 this is not really a jpeg");
  write_text_atomic((root / "Forest" / "notes.txt").string(), "not an image");
  std::ostringstream log2;
  c.max_batches = 0;
  const RunData d = prepare_data(c, "", "", log2);
  const std::string text = log2.str();
  CHECK(text.find("River_99.jpg") != std::string::npos);
  CHECK(text.find("could not be decoded") != std::string::npos);
  CHECK(text.find("notes.txt") != std::string::npos);
  CHECK(text.find("not images") != std::string::npos);
  CHECK(d.folder.samples.size() == 31);  // the corrupt JPEG is a sample until decoding fails
  CHECK(d.train->size() + d.val->size() + d.test->size() == 30);

  // Too few images for one batch is refused with the numbers.
  c.batch_size = 64;
  CHECK_ERROR_MENTIONS(prepare_data(c, "", "", log2), "fewer than one batch of 64", "--batch-size");
}
