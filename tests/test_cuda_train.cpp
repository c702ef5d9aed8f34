// GPU training against the CPU, from identical weights and batches: a full ResNet18 and
// ResNet50 training step (loss, logits, every gradient, batch norm's running statistics and
// counter, the weights after SGD and AdamW steps); the optimizer kernels alone on awkward
// sizes (expected to agree to the last bit, see kernels/cuda/optim.h); Module::to round
// trips; state dicts, safetensors and training checkpoints written from and read into a
// CUDA model; out-of-memory as a clear error; and train_resnet's run (train, resume across
// devices, classify) with --device cuda. Every case starts with MINIDL_REQUIRE_GPU(): on a
// machine without a GPU they are skipped with a message.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "cuda_test_util.h"
#include "datasets/device_upload.h"
#include "datasets/image_folder.h"
#include "layers/adamw.h"
#include "layers/linear.h"
#include "layers/sgd.h"
#include "models/classifier.h"
#include "models/resnet.h"
#include "models/safetensors.h"
#include "models/state_dict.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/run_setup.h"
#include "train/trainer.h"

using namespace minidl;
using namespace minidl::testing;
namespace fs = std::filesystem;

namespace {

// max |gpu - cpu| / max |cpu|: a whole tensor's error relative to its scale. Elementwise
// relative error is meaningless for gradients, many of which are near zero. A NaN or an
// infinity on one side that the other lacks is an infinite error (std::max would skip a NaN).
double normwise(const Tensor& gpu, const Tensor& cpu) {
  REQUIRE(gpu.device() == Device::CUDA);
  REQUIRE(cpu.device() == Device::CPU);
  REQUIRE(gpu.shape() == cpu.shape());
  const std::vector<double> a = gpu.to(Device::CPU).to_vector<double>(), b = cpu.to_vector<double>();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) {
      if (a[i] == b[i]) continue;  // the same infinity on both sides
      return std::numeric_limits<double>::infinity();
    }
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return diff / std::max(scale, 1e-30);
}

bool identical(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         a.to(Device::CPU).to_vector<double>() == b.to(Device::CPU).to_vector<double>();
}

std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A folder of this process's own (several builds run their test suites at the same time),
// removed when the test case ends, passed or not.
struct Scratch {
  fs::path path;
  explicit Scratch(const std::string& name)
      : path(fs::temp_directory_path() / ("minidl_test_cuda_train_" + std::to_string(getpid()) + "_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

// The same randomly initialised model twice, the second moved to the GPU.
struct Twins {
  std::shared_ptr<ResNet> cpu, gpu;
};
Twins twins(const std::string& arch, int64_t classes, uint64_t seed) {
  Generator a(seed), b(seed);
  Twins t{make_resnet(arch, classes, a), make_resnet(arch, classes, b)};
  t.gpu->to(Device::CUDA);
  return t;
}

struct StepBatch {
  Tensor x, y;  // on the cpu
};
StepBatch make_batch(int64_t n, int64_t size, int64_t classes, uint64_t seed) {
  Generator g(seed);
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back((i * 7 + 3) % classes);
  return {randn({n, 3, size, size}, DType::Float32, g), from_vector<int64_t>(labels, {n})};
}

// One forward (training mode, label smoothing 0.1) and backward; returns the loss and logits.
std::pair<Tensor, Tensor> forward_backward(ResNet& m, const StepBatch& b, Device d) {
  m.train();
  const Tensor logits = m.forward(b.x.to(d));
  const Tensor loss = cross_entropy(logits, b.y.to(d), 0.1);
  loss.backward();
  return {loss, logits};
}

// Tolerances. The forward pass and loss: 1e-4 of their scale. Gradients: 5e-4, since they
// run back through up to 50 layers of batch norm with 16 samples per channel at the last
// stage, and cuDNN's algorithms sum in other orders. Weights after a step: 1e-4 (they move
// by lr x gradient, so the gradients' error shrinks in them).
constexpr double kForwardTol = 1e-4, kGradTol = 5e-4, kWeightTol = 1e-4;

void compare_gradients(const Twins& t, const char* when) {
  const NamedTensors a = t.gpu->named_parameters(), b = t.cpu->named_parameters();
  REQUIRE(a.size() == b.size());
  double worst = 0;
  std::string worst_name;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].second.grad().defined());
    CHECK(a[i].second.grad().device() == Device::CUDA);
    const double e = normwise(a[i].second.grad(), b[i].second.grad());
    if (e > worst) worst = e, worst_name = a[i].first;
    CHECK_MESSAGE(e < kGradTol, when, ": gradient of ", a[i].first, " differs by ", e);
  }
  MESSAGE(when, ": worst gradient error ", worst, " (", worst_name, ")");
}

// Parameters and buffers (running statistics, num_batches_tracked) of the twins.
void compare_state(const Twins& t, double tol, const char* when) {
  const NamedTensors a = t.gpu->state_dict(), b = t.cpu->state_dict();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].first == b[i].first);
    CHECK(a[i].second.device() == Device::CUDA);
    if (a[i].second.dtype() == DType::Int64) {
      CHECK_MESSAGE(identical(a[i].second, b[i].second), when, ": ", a[i].first);
      continue;
    }
    const double e = normwise(a[i].second, b[i].second);
    CHECK_MESSAGE(e < tol, when, ": ", a[i].first, " differs by ", e);
  }
}

// A full training step on both devices, the optimizers made by `make_opt` (after the move).
template <class MakeOpt>
void training_parity(const std::string& arch, MakeOpt make_opt, int steps) {
  const int64_t classes = 10;
  Twins t = twins(arch, classes, 21);
  auto opt_cpu = make_opt(t.cpu->parameters());
  auto opt_gpu = make_opt(t.gpu->parameters());
  for (int s = 0; s < steps; ++s) {
    const StepBatch b = make_batch(4, 64, classes, 100 + uint64_t(s));
    opt_cpu->zero_grad();
    opt_gpu->zero_grad();
    const auto [loss_c, logits_c] = forward_backward(*t.cpu, b, Device::CPU);
    const auto [loss_g, logits_g] = forward_backward(*t.gpu, b, Device::CUDA);
    CHECK(loss_g.device() == Device::CUDA);
    CHECK(std::abs(loss_g.item() - loss_c.item()) <= kForwardTol * std::abs(loss_c.item()));
    CHECK(normwise(logits_g, logits_c) < kForwardTol);
    const std::string when = arch + " step " + std::to_string(s + 1);
    compare_gradients(t, when.c_str());
    opt_cpu->step();
    opt_gpu->step();
    compare_state(t, kWeightTol, when.c_str());
  }
  CHECK(t.gpu->bn1->num_batches_tracked.item() == double(steps));
}

std::unique_ptr<Optimizer> sgd_for(std::vector<Tensor> params) {
  SGDOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  o.weight_decay = 5e-4;
  o.nesterov = true;
  return std::make_unique<SGD>(std::move(params), o);
}

// eps 1e-2: AdamW's first step moves each weight by about lr * sign(g), so a gradient near
// zero whose sign differs between the devices would flip a step; a larger eps keeps the
// update a smooth function of g (the kernel's math is checked exactly further down).
std::unique_ptr<Optimizer> adamw_for(std::vector<Tensor> params) {
  AdamWOptions o;
  o.lr = 1e-3;
  o.eps = 1e-2;
  o.weight_decay = 0.05;
  return std::make_unique<AdamW>(std::move(params), o);
}

}  // namespace

TEST_CASE("cuda training step: resnet18, SGD (momentum, nesterov, weight decay), two steps, vs cpu") {
  MINIDL_REQUIRE_GPU();
  training_parity("resnet18", sgd_for, 2);
}

TEST_CASE("cuda training step: resnet50, SGD, two steps, vs cpu") {
  MINIDL_REQUIRE_GPU();
  training_parity("resnet50", sgd_for, 2);
}

TEST_CASE("cuda training step: resnet18 and resnet50, AdamW, one step, vs cpu") {
  MINIDL_REQUIRE_GPU();
  training_parity("resnet18", adamw_for, 1);
  training_parity("resnet50", adamw_for, 1);
}

TEST_CASE("cuda training step: eval-mode forward after training uses the running statistics on both devices") {
  MINIDL_REQUIRE_GPU();
  Twins t = twins("resnet18", 5, 3);
  const StepBatch b = make_batch(4, 32, 5, 9);
  forward_backward(*t.cpu, b, Device::CPU);
  forward_backward(*t.gpu, b, Device::CUDA);
  t.cpu->eval();
  t.gpu->eval();
  NoGradGuard no_grad;
  CHECK(normwise(t.gpu->forward(b.x.to(Device::CUDA)), t.cpu->forward(b.x)) < kForwardTol);
  CHECK(t.gpu->bn1->num_batches_tracked.item() == 1);  // eval does not count
}

// ---- the optimizer kernels alone ----

namespace {

const int64_t kAwkwardSizes[] = {1, 3, 31, 255, 256, 257, 4099, (1 << 16) + 1, (1 << 20) + 7};

// A parameter of n elements on each device, same values; gradients drawn per step.
struct ParamTwins {
  Tensor cpu, gpu;
};
ParamTwins param_twins(int64_t n, uint64_t seed) {
  Generator g(seed);
  Tensor w = randn({n}, DType::Float32, g);
  ParamTwins p{w.clone(), w.to(Device::CUDA)};
  p.cpu.requires_grad_(true);
  p.gpu.requires_grad_(true);
  return p;
}

// `steps` updates of both with the same gradients; the weights and every state tensor must
// agree bit for bit: both devices round each product and sum separately, and sqrt and
// division are correctly rounded on both (kernels/cuda/optim.h). A contracted FMA or an
// approximate division would show up here as a difference of an ulp.
template <class Make>
void kernel_parity(Make make, int steps, const char* what) {
  for (int64_t n : kAwkwardSizes) {
    ParamTwins p = param_twins(n, uint64_t(n));
    auto opt_c = make(std::vector<Tensor>{p.cpu});
    auto opt_g = make(std::vector<Tensor>{p.gpu});
    Generator g(uint64_t(n) + 1);
    for (int s = 0; s < steps; ++s) {
      const Tensor grad = randn({n}, DType::Float32, g);
      p.cpu.set_grad(grad);
      p.gpu.set_grad(grad.to(Device::CUDA));
      opt_c->step();
      opt_g->step();
      CHECK_MESSAGE(identical(p.gpu, p.cpu), what, " n=", n, " step ", s + 1,
                    ": weights differ, by up to ", gpu_vs_cpu(p.gpu, p.cpu, 1e-3), " relative");
    }
    const NamedTensors sc = opt_c->state_dict(), sg = opt_g->state_dict();
    REQUIRE(sc.size() == sg.size());
    for (size_t i = 0; i < sc.size(); ++i) {
      CHECK(sc[i].first == sg[i].first);
      if (sc[i].first.find("step") != std::string::npos) {
        CHECK(sg[i].second.device() == Device::CPU);  // the step counter stays on the host
        CHECK(identical(sg[i].second, sc[i].second));
      } else {
        CHECK(sg[i].second.device() == Device::CUDA);
        CHECK_MESSAGE(identical(sg[i].second, sc[i].second), what, " n=", n, ": state ", sc[i].first,
                      " differs, by up to ", gpu_vs_cpu(sg[i].second, sc[i].second, 1e-3), " relative");
      }
    }
  }
}

template <class Options>
auto sgd_maker(Options o) {
  return [o](std::vector<Tensor> ps) { return std::make_unique<SGD>(std::move(ps), o); };
}

}  // namespace

TEST_CASE("cuda SGD kernel vs cpu on awkward sizes: plain, weight decay, momentum, dampening, nesterov") {
  MINIDL_REQUIRE_GPU();
  SGDOptions plain;
  plain.lr = 0.1;
  kernel_parity(sgd_maker(plain), 2, "sgd plain");
  SGDOptions decay = plain;
  decay.weight_decay = 0.01;
  kernel_parity(sgd_maker(decay), 2, "sgd decay");
  SGDOptions mom = decay;
  mom.momentum = 0.9;
  kernel_parity(sgd_maker(mom), 3, "sgd momentum");  // step 1 sets the buffer, 2 and 3 blend
  SGDOptions damp = mom;
  damp.dampening = 0.3;
  kernel_parity(sgd_maker(damp), 3, "sgd dampening");
  SGDOptions nest = mom;
  nest.nesterov = true;
  kernel_parity(sgd_maker(nest), 3, "sgd nesterov");
}

TEST_CASE("cuda AdamW kernel vs cpu on awkward sizes: three steps, decay, default eps") {
  MINIDL_REQUIRE_GPU();
  AdamWOptions o;
  o.lr = 1e-2;
  o.weight_decay = 0.05;
  kernel_parity([o](std::vector<Tensor> ps) { return std::make_unique<AdamW>(std::move(ps), o); }, 3, "adamw");
  AdamWOptions no_decay = o;
  no_decay.weight_decay = 0;
  no_decay.beta1 = 0.5;
  no_decay.beta2 = 0.9;
  kernel_parity([no_decay](std::vector<Tensor> ps) { return std::make_unique<AdamW>(std::move(ps), no_decay); }, 2,
                "adamw betas");
}

TEST_CASE("cuda optimizers: state made on the cpu follows a parameter moved to the gpu") {
  MINIDL_REQUIRE_GPU();
  Generator g(4);
  Linear cpu_lin(5, 3, true, g);
  Generator g2(4);
  Linear ref(5, 3, true, g2);
  SGDOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  SGD opt(cpu_lin.parameters(), o), ref_opt(ref.parameters(), o);
  for (int s = 0; s < 2; ++s) {
    if (s == 1) cpu_lin.to(Device::CUDA);  // after one step: the momentum buffer exists on the cpu
    for (size_t i = 0; i < 2; ++i) {
      const Tensor grad = full(ref.parameters()[i].shape(), 0.5 + double(s));
      ref.parameters()[i].set_grad(grad);
      cpu_lin.parameters()[i].set_grad(grad.to(cpu_lin.parameters()[i].device()));
    }
    opt.step();
    ref_opt.step();
  }
  CHECK(cpu_lin.weight.device() == Device::CUDA);
  CHECK(opt.state(0).at("momentum_buffer").device() == Device::CUDA);
  CHECK(identical(cpu_lin.weight, ref.weight));  // the kernels are bit-identical (see kernel_parity)
  CHECK(identical(opt.state(0).at("momentum_buffer"), ref_opt.state(0).at("momentum_buffer")));
}

TEST_CASE("cuda optimizers: a gradient on another device than its parameter is a clear error") {
  MINIDL_REQUIRE_GPU();
  Tensor w = zeros({3}, DType::Float32, Device::CUDA);
  w.requires_grad_(true);
  SGDOptions o;
  SGD opt(std::vector<Tensor>{w}, o);
  // (set_grad may itself refuse the mismatch one day; either way it must be a clear error.)
  CHECK_ERROR_MENTIONS(([&] {
                         w.set_grad(ones({3}));
                         opt.step();
                       }()),
                       "cuda", "cpu");
}

// ---- moving modules ----

TEST_CASE("cuda Module::to: a round trip keeps every handle, value and gradient") {
  MINIDL_REQUIRE_GPU();
  Generator gen(8);
  auto model = make_resnet("resnet18", 4, gen);
  const NamedTensors before = model->state_dict();
  std::vector<std::vector<double>> values;
  for (const auto& [name, t] : before) values.push_back(t.to_vector<double>());
  Tensor fc_w = model->fc->weight;  // a handle held elsewhere must follow the move
  fc_w.set_grad(full(fc_w.shape(), 0.25));
  model->to(Device::CUDA);
  CHECK(model->device() == Device::CUDA);
  CHECK(fc_w.device() == Device::CUDA);
  CHECK(fc_w.grad().device() == Device::CUDA);
  CHECK(fc_w.requires_grad());
  CHECK(model->bn1->num_batches_tracked.device() == Device::CUDA);
  CHECK(model->bn1->running_var.device() == Device::CUDA);
  const NamedTensors moved = model->state_dict();
  for (size_t i = 0; i < moved.size(); ++i) {
    CHECK(moved[i].second.same(before[i].second));  // the same TensorImpl
    CHECK(moved[i].second.device() == Device::CUDA);
  }
  model->to(Device::CUDA);  // already there: nothing happens
  model->to(Device::CPU);
  CHECK(model->device() == Device::CPU);
  const NamedTensors back = model->state_dict();
  for (size_t i = 0; i < back.size(); ++i) {
    CHECK(back[i].second.same(before[i].second));
    CHECK(back[i].second.to_vector<double>() == values[i]);
  }
  CHECK(fc_w.grad().to_vector<double>() == std::vector<double>(size_t(fc_w.numel()), 0.25));
}

TEST_CASE("cuda Module::device: a module spread over two devices is an error naming both") {
  MINIDL_REQUIRE_GPU();
  Module parent("Parent");
  auto a = parent.register_module("a", std::make_shared<Linear>(2, 2));
  auto b = parent.register_module("b", std::make_shared<Linear>(2, 2));
  b->to(Device::CUDA);
  CHECK(a->device() == Device::CPU);
  CHECK(b->device() == Device::CUDA);
  CHECK_ERROR_MENTIONS(parent.device(), "Parent", "a.weight", "b.weight", "cpu", "cuda");
}

// ---- batches onto the device ----

TEST_CASE("cuda DeviceUploader: batches of growing and shrinking sizes arrive intact, earlier ones untouched") {
  MINIDL_REQUIRE_GPU();
  DeviceUploader up(Device::CUDA);
  Generator g(31);
  // Every upload goes through the one pinned buffer, which grows and is reused; none of the
  // device tensors handed out before may change when it is refilled.
  std::vector<std::pair<Tensor, Tensor>> kept;  // (host, device)
  for (int64_t n : {2, 9, 1, 16, 3, 16}) {
    Batch b;
    b.images = randn({n, 3, 5, 7}, DType::Float32, g);
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < n; ++i) labels.push_back(i * 5 % 11);
    b.labels = from_vector<int64_t>(labels, {n});
    b.indices = std::vector<int64_t>(size_t(n), n);
    const Batch d = up.upload(b);
    CHECK(d.images.device() == Device::CUDA);
    CHECK(d.labels.device() == Device::CUDA);
    CHECK(d.indices == b.indices);
    CHECK(identical(d.images, b.images));
    CHECK(identical(d.labels, b.labels));
    kept.emplace_back(b.images, d.images);
    kept.emplace_back(b.labels, d.labels);
  }
  for (const auto& [host, dev] : kept) CHECK(identical(dev, host));
  // A strided host view goes up as its values, contiguous on the device.
  const Tensor t = randn({4, 6}, DType::Float32, g).transpose(0, 1);
  const Tensor dt = up.upload(t);
  CHECK(dt.is_contiguous());
  CHECK(identical(dt, t));
  // Empty tensors, and tensors already on the device (returned as they are).
  const Tensor e = up.upload(zeros({0, 3}));
  CHECK(e.device() == Device::CUDA);
  CHECK(e.numel() == 0);
  CHECK(up.upload(dt).same(dt));
}

// ---- files ----

TEST_CASE("cuda state dicts: saving a CUDA model writes the CPU model's file; loading copies onto the GPU") {
  MINIDL_REQUIRE_GPU();
  const Scratch scratch("state_dict");
  const fs::path& dir = scratch.path;
  Twins t = twins("resnet18", 6, 12);
  const std::string a = (dir / "cpu.safetensors").string(), b = (dir / "gpu.safetensors").string();
  save_weights_file(*t.cpu, a, {{"arch", "resnet18"}});
  save_weights_file(*t.gpu, b, {{"arch", "resnet18"}});
  CHECK(file_bytes(a) == file_bytes(b));
  CHECK(t.gpu->device() == Device::CUDA);  // saving moved nothing

  Generator other(99);
  auto target = make_resnet("resnet18", 6, other);
  target->to(Device::CUDA);
  load_weights_file(*target, a);
  CHECK(target->device() == Device::CUDA);
  const NamedTensors got = target->state_dict(), want = t.cpu->state_dict();
  for (size_t i = 0; i < got.size(); ++i) CHECK_MESSAGE(identical(got[i].second, want[i].second), got[i].first);
  // A strict mismatch still leaves the GPU model untouched and says why.
  auto wrong = make_resnet("resnet18", 7, other);
  wrong->to(Device::CUDA);
  CHECK_ERROR_MENTIONS(load_weights_file(*wrong, a), "fc.weight");
}

TEST_CASE("cuda training checkpoint: optimizer state saved from the GPU and resumed onto it") {
  MINIDL_REQUIRE_GPU();
  const Scratch scratch("checkpoint");
  const fs::path& dir = scratch.path;
  Twins t = twins("resnet18", 4, 5);
  AdamWOptions o;
  o.lr = 1e-2;
  AdamW opt(t.gpu->parameters(), o);
  const StepBatch b = make_batch(4, 32, 4, 1);
  forward_backward(*t.gpu, b, Device::CUDA);
  opt.step();
  TrainConfig config;
  config.device = "cuda";
  config.out = dir.string();
  const std::string path = (dir / "last.safetensors").string();
  save_training_checkpoint(path, *t.gpu, opt, TrainState{}, config, {});

  Generator g(77);
  auto resumed = make_resnet("resnet18", 4, g);
  resumed->to(Device::CUDA);
  AdamW opt2(resumed->parameters(), o);
  const CheckpointInfo info = load_training_checkpoint(path, *resumed, opt2);
  CHECK(info.config.device == "cuda");
  const NamedTensors s1 = opt.state_dict(), s2 = opt2.state_dict();
  REQUIRE(s1.size() == s2.size());
  for (size_t i = 0; i < s1.size(); ++i) {
    CHECK(s2[i].second.device() == s1[i].second.device());
    CHECK_MESSAGE(identical(s1[i].second, s2[i].second), s1[i].first);
  }
  // The same gradients from here on give the same weights: the resume is exact.
  for (auto* m : {&t.gpu, &resumed})
    for (Tensor& p : (*m)->parameters()) p.set_grad(full(p.shape(), 0.01, DType::Float32, Device::CUDA));
  opt.step();
  opt2.step();
  const NamedTensors w1 = t.gpu->state_dict(), w2 = resumed->state_dict();
  for (size_t i = 0; i < w1.size(); ++i) CHECK_MESSAGE(identical(w1[i].second, w2[i].second), w1[i].first);
}

TEST_CASE("cuda out of memory is a clear Error suggesting a smaller batch, and the device stays usable") {
  MINIDL_REQUIRE_GPU();
  CHECK_ERROR_MENTIONS(Tensor::empty({int64_t(1) << 45}, DType::Float32, Device::CUDA), "out of GPU memory",
                       "--batch-size");
  const Tensor ok = full({1000}, 2.0, DType::Float32, Device::CUDA);
  CHECK(sum(ok).item() == 2000.0);
}

// ---- the apps' library calls ----

namespace {
TrainConfig sample_run(const fs::path& out, const std::string& device) {
  TrainConfig c;
  c.data = std::string(MINIDL_SOURCE_DIR) + "/datasets/eurosat_sample";
  c.arch = "resnet18";
  c.img_size = 32;
  c.batch_size = 8;
  c.epochs = 2;
  c.max_batches = 3;
  c.workers = 1;
  c.seed = 6;
  c.progress = false;
  c.top_losses = 2;
  // SGD: its update is linear in the gradient, so the devices' rounding differences stay as
  // small in the weights. (AdamW's first steps move a weight by ~lr * sign(g), which flips
  // for a near-zero gradient; its kernel is compared exactly above.)
  c.optimizer = "sgd";
  c.lr = 0.01;
  c.device = device;
  c.out = out.string();
  return c;
}
}  // namespace

TEST_CASE("cuda evaluate: a model on the GPU scores a loader as its CPU twin does, and stays in its mode") {
  MINIDL_REQUIRE_GPU();
  std::ostringstream log;
  const TrainConfig c = sample_run("unused", "cpu");
  RunData data = prepare_data(c, "", "", log);  // no split file written
  const int64_t k = int64_t(data.folder.classes.size());
  Twins t = twins("resnet18", k, 17);
  // One training step first, so eval mode uses running statistics that are not the defaults.
  const StepBatch b = make_batch(8, 32, k, 5);
  forward_backward(*t.cpu, b, Device::CPU);
  forward_backward(*t.gpu, b, Device::CUDA);
  const EvalResult rc = evaluate(*t.cpu, *data.val, k, c.max_batches);
  const EvalResult rg = evaluate(*t.gpu, *data.val, k, c.max_batches);
  CHECK(t.gpu->is_training());  // the mode it had before
  CHECK(t.gpu->device() == Device::CUDA);
  REQUIRE(rg.count == rc.count);
  REQUIRE(rc.count > 0);
  int64_t flips = 0;  // a near-tie between two classes may go either way
  for (size_t i = 0; i < rc.records.size(); ++i) {
    const EvalRecord &g = rg.records[i], &r = rc.records[i];
    CHECK(g.index == r.index);
    CHECK(g.label == r.label);
    CHECK(std::isfinite(g.score.loss));
    CHECK(std::abs(g.score.loss - r.score.loss) <= 1e-4 * std::max(1.0, r.score.loss));
    flips += g.score.predicted != r.score.predicted;
  }
  CHECK(flips <= 1);
  CHECK(std::abs(rg.loss - rc.loss) <= 1e-4 * std::max(1.0, rc.loss));
}

TEST_CASE("cuda train_model: a run on the GPU, one resumed there from a CPU checkpoint, classify on the GPU") {
  MINIDL_REQUIRE_GPU();
  const Scratch scratch("runs");
  const fs::path& dir = scratch.path;
  std::ostringstream log;
  const TrainOutcome gpu = train_model(sample_run(dir / "gpu", "cuda"), log);
  REQUIRE(gpu.status == TrainOutcome::Status::Completed);
  CHECK(log.str().find("on cuda") != std::string::npos);
  CHECK(read_checkpoint_info(last_checkpoint_path((dir / "gpu").string())).config.device == "cuda");
  const TrainOutcome cpu = train_model(sample_run(dir / "cpu", "cpu"), log);
  REQUIRE(cpu.status == TrainOutcome::Status::Completed);
  // Two epochs of three batches from the same seed: the devices agree to rounding, so the
  // weights end close (not identical: the loss and gradients differ in the last bits).
  const SafetensorsContents wg = load_safetensors(last_checkpoint_path((dir / "gpu").string()));
  const SafetensorsContents wc = load_safetensors(last_checkpoint_path((dir / "cpu").string()));
  REQUIRE(wg.tensors.size() == wc.tensors.size());
  for (size_t i = 0; i < wg.tensors.size(); ++i) {
    if (wg.tensors[i].tensor.dtype() != DType::Float32) continue;
    CHECK_MESSAGE(normwise(wg.tensors[i].tensor.to(Device::CUDA), wc.tensors[i].tensor) < 1e-2, wg.tensors[i].name);
  }

  // Stopped on the cpu mid-run, resumed on the gpu: the trainer warns and finishes.
  TrainConfig first = sample_run(dir / "cross", "cpu");
  first.checkpoint_every = 1;
  first.stop_after_batches = 4;
  REQUIRE(train_model(first, log).status == TrainOutcome::Status::Stopped);
  TrainConfig second = first;
  second.stop_after_batches = 0;
  second.resume = true;
  second.device = "cuda";
  std::ostringstream resume_log;
  const TrainOutcome resumed = train_model(second, resume_log);
  CHECK(resumed.status == TrainOutcome::Status::Completed);
  CHECK(resume_log.str().find("the checkpoint ran on cpu, this run on cuda") != std::string::npos);

  // classify with the GPU run's best model, on both devices.
  ClassifierOptions on_gpu;
  on_gpu.device = Device::CUDA;
  const Classifier cg(best_checkpoint_path((dir / "gpu").string()), on_gpu);
  const Classifier cc(best_checkpoint_path((dir / "gpu").string()));
  CHECK(cg.device() == Device::CUDA);
  CHECK(cg.model().device() == Device::CUDA);
  const ImageFolder folder = scan_image_folder(std::string(MINIDL_SOURCE_DIR) + "/datasets/eurosat_sample");
  std::vector<Image> images;
  for (size_t i = 0; i < folder.samples.size(); i += 37) images.push_back(decode_image_file(folder.samples[i].path));
  const auto pg = cg.predict(images), pc = cc.predict(images);
  REQUIRE(pg.size() == pc.size());
  for (size_t i = 0; i < pg.size(); ++i)
    for (size_t k = 0; k < pg[i].size(); ++k) CHECK(std::abs(pg[i][k] - pc[i][k]) < 1e-4);
}
