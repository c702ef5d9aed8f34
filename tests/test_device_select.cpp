// Choosing the device, on any machine: --device parsing and validation, the one-time
// fallback from cuda to the cpu (a CUDA build without a GPU, or a build without CUDA),
// Module::to(Device::CPU) as a no-op, batch upload to the cpu as a pass-through, resume
// across devices, and a training run asked for cuda on a machine without a GPU, which must
// train on the cpu and give exactly the numbers of a cpu run.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "datasets/device_upload.h"
#include "layers/batchnorm2d.h"
#include "layers/linear.h"
#include "layers/sgd.h"
#include "models/resnet.h"
#include "models/safetensors.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/trainer.h"
#include "test_util.h"

using namespace minidl;
using namespace minidl::testing;
namespace fs = std::filesystem;

namespace {

// Runs f with stderr redirected into a temporary file; returns what was written.
template <class F>
std::string capture_stderr(F&& f) {
  const fs::path path = fs::temp_directory_path() / ("minidl_stderr_" + std::to_string(getpid()));
  std::fflush(stderr);
  const int saved = dup(fileno(stderr));
  REQUIRE(saved >= 0);
  FILE* sink = std::fopen(path.c_str(), "w");
  REQUIRE(sink != nullptr);
  dup2(fileno(sink), fileno(stderr));
  try {
    f();
  } catch (...) {
    std::fflush(stderr);
    dup2(saved, fileno(stderr));
    close(saved);
    std::fclose(sink);
    throw;
  }
  std::fflush(stderr);
  dup2(saved, fileno(stderr));
  close(saved);
  std::fclose(sink);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  fs::remove(path);
  return text.str();
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TrainConfig valid_config() {
  TrainConfig c;
  c.data = "somewhere";
  c.out = "runs/x";
  return c;
}

}  // namespace

// First in this file, so (run alone, as ctest does) it sees the process's first request.
TEST_CASE("resolve_device: cuda without a GPU falls back to the cpu and says so once") {
  CHECK(resolve_device(Device::CPU) == Device::CPU);
  Device got[3];
  const std::string said = capture_stderr([&] {
    for (Device& d : got) d = resolve_device(Device::CUDA);
  });
  if (cuda_available()) {
    for (Device d : got) CHECK(d == Device::CUDA);
    CHECK(said.empty());
    return;
  }
  for (Device d : got) CHECK(d == Device::CPU);
  // At most once per process (an earlier test in the same process may have had the line).
  CHECK(count_of(said, "running on the cpu") <= 1);
  if (!said.empty()) {
    CHECK(count_of(said, "cuda requested") == 1);
    CHECK(said.find(cuda_status()) != std::string::npos);  // it says why
  }
  // Later requests stay quiet.
  const std::string again = capture_stderr([] { (void)resolve_device(Device::CUDA); });
  CHECK(again.empty());
}

TEST_CASE("parse_device: cpu and cuda, anything else is an error naming the value") {
  CHECK(parse_device("cpu") == Device::CPU);
  CHECK(parse_device("cuda") == Device::CUDA);
  CHECK_ERROR_MENTIONS(parse_device("gpu"), "gpu", "cpu", "cuda");
  CHECK_ERROR_MENTIONS(parse_device("CUDA"), "CUDA");
  CHECK_ERROR_MENTIONS(parse_device(""), "''");
  CHECK_ERROR_MENTIONS(parse_device("cuda:0"), "cuda:0");
}

TEST_CASE("validate_config: --device cpu and cuda pass, others are refused naming the flag") {
  TrainConfig c = valid_config();
  CHECK_NOTHROW(validate_config(c));
  c.device = "cuda";  // accepted in every build: without a GPU the trainer falls back
  CHECK_NOTHROW(validate_config(c));
  c.device = "gpu";
  CHECK_ERROR_MENTIONS(validate_config(c), "--device", "gpu");
  c.device = "";
  CHECK_ERROR_MENTIONS(validate_config(c), "--device");
}

TEST_CASE("resume_conflicts: a change of device is allowed (the trainer warns), not refused") {
  TrainConfig saved = valid_config(), now = valid_config();
  saved.device = "cuda";
  now.device = "cpu";
  CHECK(resume_conflicts(saved, now).empty());
  now.batch_size = saved.batch_size + 1;
  CHECK(resume_conflicts(saved, now).size() == 1);
}

TEST_CASE("Module::to(Device::CPU) on a cpu model is a no-op: same storages, values, grads") {
  Generator gen(5);
  auto model = make_resnet("resnet18", 3, gen);
  const NamedTensors before = model->state_dict();
  std::vector<const void*> data;
  for (const auto& [name, t] : before) data.push_back(t.raw_data());
  model->parameters().front().set_grad(ones_like(model->parameters().front()));
  const void* grad_data = model->parameters().front().grad().raw_data();
  model->to(Device::CPU);
  const NamedTensors after = model->state_dict();
  REQUIRE(after.size() == before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].second.same(before[i].second));
    CHECK(after[i].second.raw_data() == data[i]);
  }
  CHECK(model->parameters().front().grad().raw_data() == grad_data);
  CHECK(model->device() == Device::CPU);
}

TEST_CASE("Module::device: cpu for a module without tensors and for a cpu module") {
  Module empty;
  CHECK(empty.device() == Device::CPU);
  BatchNorm2d bn(4);
  CHECK(bn.device() == Device::CPU);
  bn.to(Device::CPU);
  CHECK(bn.num_batches_tracked.device() == Device::CPU);
}

TEST_CASE("an optimizer keeps working on a module moved to its own device") {
  Generator gen(2);
  Linear lin(4, 3, true, gen);
  SGDOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  SGD opt(lin.parameters(), o);
  lin.to(Device::CPU);
  for (Tensor& p : lin.parameters()) p.set_grad(ones_like(p));
  const double w0 = lin.weight.at({0, 0});
  opt.step();
  CHECK(lin.weight.at({0, 0}) == doctest::Approx(w0 - 0.1));
  CHECK(opt.state(0).at("momentum_buffer").device() == Device::CPU);
}

TEST_CASE("DeviceUploader: to the cpu a batch passes through untouched") {
  DeviceUploader up(Device::CPU);
  CHECK(up.device() == Device::CPU);
  Batch b;
  b.images = randn({2, 3, 4, 4});
  b.labels = from_vector<int64_t>({1, 0}, {2});
  b.indices = {7, 9};
  const Batch out = up.upload(b);
  CHECK(out.images.same(b.images));
  CHECK(out.labels.same(b.labels));
  CHECK(out.indices == b.indices);
#ifndef MINIDL_WITH_CUDA
  CHECK_ERROR_MENTIONS(DeviceUploader(Device::CUDA), "cuda", "CUDA backend");
#endif
}

TEST_CASE("save_safetensors of a moved-to-cpu model writes the same file as before the move") {
  Generator gen(1);
  auto model = make_resnet("resnet18", 4, gen);
  const fs::path dir = fs::temp_directory_path() / ("minidl_test_device_select_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string a = (dir / "a.safetensors").string(), b = (dir / "b.safetensors").string();
  save_safetensors(a, model->state_dict());
  model->to(Device::CPU);
  save_safetensors(b, model->state_dict());
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  std::stringstream sa, sb;
  sa << fa.rdbuf();
  sb << fb.rdbuf();
  CHECK(sa.str() == sb.str());
  fs::remove_all(dir);
}

// The acceptance check for a machine without a GPU: asked for cuda, the trainer runs on the
// cpu, records "cpu" as the device it used, and gets bit-identical numbers to a cpu run.
TEST_CASE("train_model --device cuda without a GPU trains on the cpu, identical to --device cpu") {
  if (cuda_available()) {
    MESSAGE("skipped: this machine has a GPU (tests/test_cuda_train.cpp covers the cuda run)");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("minidl_test_device_run_" + std::to_string(getpid()));
  fs::remove_all(dir);
  auto config = [&](const std::string& device) {
    TrainConfig c;
    c.data = std::string(MINIDL_SOURCE_DIR) + "/datasets/eurosat_sample";
    c.arch = "resnet18";
    c.img_size = 32;
    c.batch_size = 8;
    c.epochs = 1;
    c.max_batches = 2;
    c.threads = 2;
    c.workers = 1;
    c.seed = 4;
    c.progress = false;
    c.top_losses = 2;
    c.device = device;
    c.out = (dir / device).string();
    return c;
  };
  std::ostringstream log_cpu, log_cuda;
  const TrainOutcome on_cpu = train_model(config("cpu"), log_cpu);
  const TrainOutcome asked_cuda = train_model(config("cuda"), log_cuda);
  REQUIRE(on_cpu.status == TrainOutcome::Status::Completed);
  REQUIRE(asked_cuda.status == TrainOutcome::Status::Completed);
  CHECK(asked_cuda.test_accuracy == on_cpu.test_accuracy);
  CHECK(asked_cuda.state.best_val_acc == on_cpu.state.best_val_acc);
  const CheckpointInfo info = read_checkpoint_info(last_checkpoint_path((dir / "cuda").string()));
  CHECK(info.config.device == "cpu");  // the device actually used
  const SafetensorsContents a = load_safetensors(last_checkpoint_path((dir / "cpu").string()));
  const SafetensorsContents b = load_safetensors(last_checkpoint_path((dir / "cuda").string()));
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    CHECK(a.tensors[i].name == b.tensors[i].name);
    CHECK(a.tensors[i].tensor.to_vector<double>() == b.tensors[i].tensor.to_vector<double>());
  }
  fs::remove_all(dir);
}
