// End to end: a small conv net learns a synthetic image problem. Four classes of 12x12
// one-channel images, each a bright line on Gaussian noise: horizontal, vertical, diagonal
// or anti-diagonal, at a random offset. Everything is seeded, so the run is the same every
// time; it takes well under a second in a Release build.
#include <algorithm>
#include <numeric>

#include "layers/layers.h"
#include "tensor/parallel.h"
#include "test_util.h"

using namespace minidl;
using namespace minidl::testing;

namespace {

constexpr int64_t kSize = 12, kClasses = 4;

struct Dataset {
  std::vector<float> pixels;  // n * kSize * kSize, row-major images
  std::vector<int64_t> labels;
  int64_t n = 0;
};

Dataset make_lines(int64_t per_class, Generator& gen) {
  Dataset d;
  d.n = per_class * kClasses;
  d.pixels.resize(size_t(d.n * kSize * kSize));
  for (int64_t i = 0; i < d.n; ++i) {
    const int64_t cls = i % kClasses;
    float* img = d.pixels.data() + i * kSize * kSize;
    for (int64_t k = 0; k < kSize * kSize; ++k) img[k] = float(gen.normal(0.0, 0.35));
    // Offset of the line from its centred position, within [-3, 3].
    const int64_t off = int64_t(gen.randint(7)) - 3;
    for (int64_t k = 0; k < kSize; ++k) {
      int64_t r = 0, c = 0;
      switch (cls) {
        case 0: r = kSize / 2 + off, c = k; break;                       // horizontal
        case 1: r = k, c = kSize / 2 + off; break;                       // vertical
        case 2: r = k, c = k + off; break;                               // diagonal
        default: r = k, c = kSize - 1 - k + off; break;                  // anti-diagonal
      }
      if (c >= 0 && c < kSize) img[r * kSize + c] += 1.0f;
    }
    d.labels.push_back(cls);
  }
  return d;
}

// Images idx[b0 .. b0+bs) as [bs, 1, kSize, kSize] and their labels.
std::pair<Tensor, Tensor> batch(const Dataset& d, const std::vector<int64_t>& idx, size_t b0, size_t bs) {
  std::vector<float> x;
  std::vector<int64_t> y;
  for (size_t j = b0; j < b0 + bs; ++j) {
    const float* img = d.pixels.data() + idx[j] * kSize * kSize;
    x.insert(x.end(), img, img + kSize * kSize);
    y.push_back(d.labels[size_t(idx[j])]);
  }
  return {from_vector(x, {int64_t(bs), 1, kSize, kSize}), from_vector(y)};
}

double accuracy(Module& net, const Dataset& d) {
  std::vector<int64_t> all(size_t(d.n));
  std::iota(all.begin(), all.end(), 0);
  auto [x, y] = batch(d, all, 0, all.size());
  NoGradGuard no_grad;
  Tensor logits = net(x);
  const auto v = logits.to_vector<double>();
  int64_t right = 0;
  for (int64_t i = 0; i < d.n; ++i) {
    const auto row = v.begin() + i * kClasses;
    if (std::max_element(row, row + kClasses) - row == d.labels[size_t(i)]) ++right;
  }
  return double(right) / double(d.n);
}

}  // namespace

TEST_CASE("a conv net learns to tell line orientations apart (>= 95% training accuracy)") {
  // One OpenMP thread: the batches here are tiny, so a kernel's fork/join costs more than its
  // work; on a loaded two-core CI machine the hand-offs alone took seconds. The parallel
  // kernels are tested elsewhere.
  ThreadCountGuard one_thread(1);
  Generator data_gen(2024), init_gen(7), shuffle_gen(99);
  const Dataset train = make_lines(48, data_gen);  // 192 images
  const Dataset held_out = make_lines(32, data_gen);

  Sequential net{std::make_shared<Conv2d>(1, 12, 3, 1, 1, false, init_gen),
                 std::make_shared<BatchNorm2d>(12),
                 std::make_shared<ReLU>(),
                 std::make_shared<MaxPool2d>(2),
                 std::make_shared<AdaptiveAvgPool2d>(),
                 std::make_shared<Flatten>(),
                 std::make_shared<Linear>(12, kClasses, true, init_gen)};
  net.eval();  // so that measuring the untrained net does not count as a training batch
  const double chance_acc = accuracy(net, train);

  const int64_t epochs = 20, bs = 32, steps_per_epoch = train.n / bs;
  SGD opt(weight_decay_groups(net, 5e-4), {.lr = 0.2, .momentum = 0.9, .nesterov = true});
  OneCycleLR schedule(opt, epochs * steps_per_epoch);
  CrossEntropyLoss criterion;

  std::vector<int64_t> order(size_t(train.n));
  std::iota(order.begin(), order.end(), 0);
  double first_epoch_loss = 0, last_epoch_loss = 0;
  net.train();
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    // Fisher-Yates shuffle from the seeded generator.
    for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[shuffle_gen.randint(i + 1)]);
    double epoch_loss = 0;
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      auto [x, y] = batch(train, order, size_t(s * bs), size_t(bs));
      Tensor loss = criterion(net(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      schedule.step();
      epoch_loss += loss.item() / double(steps_per_epoch);
    }
    if (epoch == 0) first_epoch_loss = epoch_loss;
    last_epoch_loss = epoch_loss;
  }
  MESSAGE("loss ", first_epoch_loss, " -> ", last_epoch_loss);

  net.eval();  // accuracy with batch norm's running statistics
  const double train_acc = accuracy(net, train), held_out_acc = accuracy(net, held_out);
  MESSAGE("accuracy: before ", chance_acc, ", train ", train_acc, ", held out ", held_out_acc);
  CHECK(chance_acc < 0.5);
  CHECK(last_epoch_loss < 0.25 * first_epoch_loss);
  CHECK(train_acc >= 0.95);
  CHECK(held_out_acc >= 0.9);
  auto bn = std::dynamic_pointer_cast<BatchNorm2d>(net[1]);
  CHECK(bn->num_batches_tracked.item() == epochs * steps_per_epoch);
}
