// DataLoader on the shipped EuroSAT sample: coverage, order, determinism across worker
// counts and resumes, equality with classify's preprocessing, partial batches, shutdown.
// Also the progress bar, and (when ../shared/data/EuroSAT_RGB exists) the full dataset's
// scan, split and cache build, timed.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include "datasets/image_cache.h"
#include "datasets/loader.h"
#include "datasets/progress.h"
#include "datasets/split.h"
#include "test_util.h"

using namespace minidl;

namespace {

const ImageFolder& sample_folder() {
  static const ImageFolder f = scan_image_folder(std::string(MINIDL_SOURCE_DIR) + "/datasets/eurosat_sample");
  return f;
}

const ImageCache& sample_cache() {
  static const ImageCache c(sample_folder(), {}, 2, /*progress=*/false);
  return c;
}

const Split& sample_split() {
  static const Split s = stratified_split(sample_folder(), 0.6, 0.2, 0);
  return s;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), size_t(a.numel()) * dtype_size(a.dtype())) == 0;
}

std::vector<Batch> whole_epoch(DataLoader& loader, int64_t epoch, int64_t first_batch = 0) {
  loader.start_epoch(epoch, first_batch);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

LoaderOptions train_options(int workers) {
  LoaderOptions o;
  o.batch_size = 32;
  o.shuffle = true;
  o.augment = true;
  o.seed = 11;
  o.workers = workers;
  o.prefetch = 2;
  return o;
}

}  // namespace

TEST_CASE("loader: every training sample once per epoch, with its label") {
  DataLoader loader(sample_cache(), sample_folder(), sample_split().train, train_options(2));
  REQUIRE(loader.size() == 180);
  CHECK(loader.batches_per_epoch() == 6);  // 5 x 32 + 20
  const std::vector<Batch> batches = whole_epoch(loader, 0);
  REQUIRE(batches.size() == 6);
  std::vector<int64_t> seen;
  for (size_t b = 0; b < batches.size(); ++b) {
    const Batch& batch = batches[b];
    const int64_t n = b < 5 ? 32 : 20;
    CHECK(batch.images.shape() == Shape{n, 3, 64, 64});
    CHECK(batch.images.dtype() == DType::Float32);
    CHECK(batch.labels.shape() == Shape{n});
    CHECK(batch.labels.dtype() == DType::Int64);
    CHECK(batch.batch == int64_t(b));
    const std::vector<int64_t> labels = batch.labels.to_vector<int64_t>();
    for (int64_t k = 0; k < n; ++k) CHECK(labels[size_t(k)] == sample_folder().samples[size_t(batch.indices[size_t(k)])].label);
    seen.insert(seen.end(), batch.indices.begin(), batch.indices.end());
  }
  CHECK(seen == loader.epoch_order(0));  // in the epoch's order
  std::sort(seen.begin(), seen.end());
  CHECK(seen == sample_split().train);
  CHECK_FALSE(loader.next());  // stays at the end
  CHECK(loader.next_batch() == 6);
}

TEST_CASE("loader: the shuffle depends on epoch and seed, and only on them") {
  const std::vector<int64_t>& train = sample_split().train;
  DataLoader a(sample_cache(), sample_folder(), train, train_options(0));
  DataLoader same(sample_cache(), sample_folder(), train, train_options(3));
  LoaderOptions other_seed = train_options(0);
  other_seed.seed = 12;
  DataLoader b(sample_cache(), sample_folder(), train, other_seed);
  CHECK(a.epoch_order(0) == same.epoch_order(0));
  CHECK(a.epoch_order(0) != a.epoch_order(1));
  CHECK(a.epoch_order(0) != b.epoch_order(0));
  std::vector<int64_t> sorted = a.epoch_order(3);
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == train);

  LoaderOptions plain = train_options(0);
  plain.shuffle = false;
  const std::vector<int64_t> given = {5, 3, 250, 0};
  DataLoader unshuffled(sample_cache(), sample_folder(), given, plain);
  CHECK(unshuffled.epoch_order(0) == given);
  CHECK(unshuffled.epoch_order(9) == given);
}

TEST_CASE("loader: identical batches with 0, 1 and 3 workers; augmentation is per (seed, epoch, position)") {
  const std::vector<int64_t>& train = sample_split().train;
  DataLoader w0(sample_cache(), sample_folder(), train, train_options(0));
  DataLoader w1(sample_cache(), sample_folder(), train, train_options(1));
  DataLoader w3(sample_cache(), sample_folder(), train, train_options(3));
  const std::vector<Batch> a = whole_epoch(w0, 4), b = whole_epoch(w1, 4), c = whole_epoch(w3, 4);
  REQUIRE(a.size() == 6);
  REQUIRE(b.size() == 6);
  REQUIRE(c.size() == 6);
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(same_bits(a[i].images, b[i].images));
    CHECK(same_bits(a[i].images, c[i].images));
    CHECK(same_bits(a[i].labels, c[i].labels));
    CHECK(a[i].indices == c[i].indices);
  }

  // Rebuild one image by hand from the documented recipe.
  const int64_t batch = 2, k = 5, position = batch * 32 + k;
  Generator gen(augment_seed(11, 4, position));
  const Image aug = augment_image(sample_cache().image(w0.epoch_order(4)[size_t(position)]), AugmentOptions{}, 64, gen);
  const Tensor expected = images_to_batch({aug}, 64);
  const std::vector<float> got = a[batch].images.to_vector<float>();
  CHECK(std::equal(got.begin() + k * 3 * 64 * 64, got.begin() + (k + 1) * 3 * 64 * 64, expected.data<float>()));

  // Another epoch augments differently (even for the same sample).
  const std::vector<Batch> next_epoch = whole_epoch(w3, 5);
  CHECK_FALSE(same_bits(a[0].images, next_epoch[0].images));
}

TEST_CASE("loader: resuming at first_batch k gives exactly batches k.. of the epoch") {
  const std::vector<int64_t>& train = sample_split().train;
  DataLoader full(sample_cache(), sample_folder(), train, train_options(2));
  const std::vector<Batch> all = whole_epoch(full, 7);

  DataLoader fresh(sample_cache(), sample_folder(), train, train_options(3));  // e.g. after a restart
  const std::vector<Batch> tail = whole_epoch(fresh, 7, 3);
  REQUIRE(tail.size() == 3);
  for (size_t i = 0; i < tail.size(); ++i) {
    CHECK(tail[i].batch == int64_t(3 + i));
    CHECK(tail[i].indices == all[3 + i].indices);
    CHECK(same_bits(tail[i].images, all[3 + i].images));
    CHECK(same_bits(tail[i].labels, all[3 + i].labels));
  }

  // Mid-epoch on the same loader: read two batches, then jump back into the epoch.
  full.start_epoch(7);
  full.next();
  full.next();
  CHECK(full.next_batch() == 2);
  full.start_epoch(7, full.next_batch() + 2);
  const auto b4 = full.next();
  REQUIRE(b4);
  CHECK(same_bits(b4->images, all[4].images));
  CHECK(whole_epoch(full, 7, 6).empty());  // resuming at the end: nothing left
  CHECK_ERROR_MENTIONS(full.start_epoch(7, 7), "first_batch 7");
}

TEST_CASE("loader: evaluation batches equal images_to_batch (classify's preprocessing)") {
  const std::vector<int64_t>& test = sample_split().test;
  for (const int size : {64, 48}) {  // the cached size, and a resize
    LoaderOptions o;
    o.batch_size = 25;
    o.img_size = size;
    DataLoader loader(sample_cache(), sample_folder(), test, o);
    const std::vector<Batch> batches = whole_epoch(loader, 0);
    REQUIRE(batches.size() == 3);
    size_t pos = 0;
    for (const Batch& b : batches) {
      std::vector<Image> images;
      for (int64_t i : b.indices) {
        CHECK(i == test[pos++]);  // given order
        images.push_back(sample_cache().image(i));
      }
      CHECK(same_bits(b.images, images_to_batch(images, size)));
    }
    CHECK(pos == test.size());
  }
}

TEST_CASE("loader: the last partial batch, and drop_last") {
  LoaderOptions o;
  o.batch_size = 25;
  DataLoader keep(sample_cache(), sample_folder(), sample_split().val, o);  // 60 samples
  const std::vector<Batch> kept = whole_epoch(keep, 0);
  REQUIRE(kept.size() == 3);
  CHECK(kept[2].images.size(0) == 10);
  CHECK(kept[2].indices.size() == 10);

  o.drop_last = true;
  DataLoader drop(sample_cache(), sample_folder(), sample_split().val, o);
  CHECK(drop.batches_per_epoch() == 2);
  const std::vector<Batch> dropped = whole_epoch(drop, 0);
  REQUIRE(dropped.size() == 2);
  CHECK(dropped[1].images.size(0) == 25);

  DataLoader empty(sample_cache(), sample_folder(), {}, o);
  CHECK(empty.batches_per_epoch() == 0);
  CHECK(whole_epoch(empty, 0).empty());
  CHECK_ERROR_MENTIONS(keep.start_epoch(-1), "epoch must be >= 0");
  DataLoader unstarted(sample_cache(), sample_folder(), {1, 2}, o);
  CHECK_ERROR_MENTIONS(unstarted.next(), "start_epoch");
  o.batch_size = 0;
  CHECK_ERROR_MENTIONS(DataLoader(sample_cache(), sample_folder(), {1}, o), "batch_size");
}

TEST_CASE("loader: destroying or restarting mid-epoch does not hang") {
  const auto t0 = std::chrono::steady_clock::now();
  for (int round = 0; round < 5; ++round) {
    LoaderOptions o = train_options(3);
    o.batch_size = 8;
    o.prefetch = 1 + round;
    DataLoader loader(sample_cache(), sample_folder(), sample_split().train, o);
    loader.start_epoch(0);
    if (round % 2) loader.next();
    loader.start_epoch(1, 2);  // abandons epoch 0 with workers blocked on a full queue
    loader.next();
    // The destructor runs here with workers waiting for room.
  }
  {
    DataLoader never_read(sample_cache(), sample_folder(), sample_split().train, train_options(3));
    never_read.start_epoch(0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the queue fill
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(seconds < 5.0);
}

TEST_CASE("progress bar: drawing rules") {
  std::ostringstream log;
  {
    ProgressBar bar("decoding", 10, log, /*interactive=*/false);
    CHECK(bar.render(5, 2.0) == "decoding [############------------] 5/10  50% 2.0s 2/s");
    bar.set_suffix("loss 0.5");
    CHECK(bar.render(0, 0.0) == "decoding [------------------------] 0/10   0% 0.0s  loss 0.5");
    for (int i = 0; i < 10; ++i) bar.add();
    CHECK(log.str().empty());  // not a terminal: silent until the end
    bar.finish();
    bar.finish();  // once only
  }
  const std::string logged = log.str();
  CHECK(logged.rfind("decoding [########################] 10/10 100% ", 0) == 0);
  CHECK(std::count(logged.begin(), logged.end(), '\n') == 1);

  std::ostringstream tty;
  {
    ProgressBar bar("x", 4, tty, /*interactive=*/true);
    bar.update(4);  // reaching the total always draws
  }
  const std::string drawn = tty.str();
  CHECK(drawn.find("\rx [") == 0);
  CHECK(std::count(drawn.begin(), drawn.end(), '\n') == 1);

  std::ostringstream off;
  ProgressBar disabled("x", 4, off, true, /*enabled=*/false);
  disabled.add(4);
  disabled.finish();
  CHECK(off.str().empty());
}

TEST_CASE("full EuroSAT (when present): scan, exact split sizes, cache build time") {
  const std::string root = std::string(MINIDL_SOURCE_DIR) + "/../shared/data/EuroSAT_RGB";
  if (!std::filesystem::is_directory(root)) {
    MESSAGE("skipped: no EuroSAT at " << root);
    return;
  }
  const ImageFolder f = scan_image_folder(root);
  REQUIRE(f.samples.size() == 27000);
  CHECK(f.classes.size() == 10);
  const Split s = stratified_split(f);
  CHECK(s.train.size() == 16200);
  CHECK(s.val.size() == 5400);
  CHECK(s.test.size() == 5400);

  const int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  const ImageCache cache(f, {}, threads, /*progress=*/false);
  CHECK(cache.failures().empty());
  CHECK(cache.size() == 27000);
  CHECK(cache.bytes() == size_t(27000) * 64 * 64 * 3);
  MESSAGE("EuroSAT cache: 27000 images decoded in " << cache.seconds() << " s on " << threads << " threads, "
                                                    << cache.bytes() / 1e6 << " MB of pixels");
}
