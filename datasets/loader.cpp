#include "datasets/loader.h"

#include <algorithm>

#include "tensor/error.h"
#include "tensor/random.h"

namespace minidl {

namespace {


// mix64 (splitmix64's mixer) is a bijection, so for a fixed h distinct v give distinct results.
uint64_t combine(uint64_t h, uint64_t v) { return mix64(h ^ mix64(v)); }

// Separate domains keep the order stream and the augmentation streams unrelated.
constexpr uint64_t kOrderDomain = 0x4f52444552ull;   // "ORDER"
constexpr uint64_t kAugmentDomain = 0x4155474dull;   // "AUGM"

}  // namespace

uint64_t epoch_seed(uint64_t seed, int64_t epoch) {
  return combine(combine(mix64(seed), kOrderDomain), uint64_t(epoch));
}

uint64_t augment_seed(uint64_t seed, int64_t epoch, int64_t position) {
  return combine(combine(combine(mix64(seed), kAugmentDomain), uint64_t(epoch)), uint64_t(position));
}

Image augment_image(const Image& img, const AugmentOptions& aug, int img_size, Generator& gen) {
  Image out;
  if (aug.resized_crop) {
    ResizedCropRanges ranges;
    ranges.scale_min = aug.crop_scale_min;
    out = random_resized_crop(img, gen, img_size, img_size, ranges);
  } else {
    out = resize_bilinear(img, img_size, img_size);
  }
  if (aug.flips) {
    out = random_horizontal_flip(out, gen);
    out = random_vertical_flip(out, gen);
  }
  if (aug.rot90) out = random_rotate90(out, gen);  // square by now
  if (aug.brightness > 0 || aug.contrast > 0 || aug.saturation > 0)
    out = color_jitter(out, gen, aug.brightness, aug.contrast, aug.saturation);
  return out;
}

DataLoader::DataLoader(const ImageCache& cache, const ImageFolder& folder, std::vector<int64_t> indices,
                       LoaderOptions opt)
    : cache_(cache), opt_(opt) {
  MINIDL_CHECK(opt.batch_size > 0, "DataLoader: batch_size must be positive, got ", opt.batch_size);
  MINIDL_CHECK(opt.img_size > 0, "DataLoader: img_size must be positive, got ", opt.img_size);
  MINIDL_CHECK(opt.workers >= 0, "DataLoader: workers must be >= 0, got ", opt.workers);
  MINIDL_CHECK(opt.prefetch >= 1, "DataLoader: prefetch must be >= 1, got ", opt.prefetch);
  MINIDL_CHECK(!opt.augment || (opt.aug.crop_scale_min > 0 && opt.aug.crop_scale_min <= 1),
               "DataLoader: crop_scale_min must be in (0, 1], got ", opt.aug.crop_scale_min);
  MINIDL_CHECK(!opt.augment || (opt.aug.brightness >= 0 && opt.aug.contrast >= 0 && opt.aug.saturation >= 0),
               "DataLoader: colour-jitter strengths must be >= 0");

  labels_.reserve(folder.samples.size());
  for (const Sample& s : folder.samples) labels_.push_back(s.label);
  indices_.reserve(indices.size());
  for (const int64_t i : indices) {
    MINIDL_CHECK(i >= 0 && i < int64_t(folder.samples.size()), "DataLoader: sample index ", i,
                 " is outside the folder's ", folder.samples.size(), " samples");
    if (cache.has(i))
      indices_.push_back(i);
    else if (cache.failed(i))
      ++dropped_;  // undecodable: the cache already recorded why
    else
      throw Error(detail::concat("DataLoader: sample ", i, " ('", folder.samples[size_t(i)].path,
                                 "') was never given to the ImageCache; build the cache over these indices"));
  }
}

DataLoader::~DataLoader() { stop_workers(); }

int64_t DataLoader::batches_per_epoch() const {
  const int64_t n = size(), b = opt_.batch_size;
  return opt_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order = indices_;
  if (opt_.shuffle) {
    Generator gen(epoch_seed(opt_.seed, epoch));
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[gen.randint(i)]);
  }
  return order;
}

Batch DataLoader::build_batch(int64_t b) const {
  const int64_t bs = opt_.batch_size, s = opt_.img_size;
  const int64_t first = b * bs, count = std::min(bs, size() - first);
  Batch batch;
  batch.epoch = epoch_;
  batch.batch = b;
  batch.images = Tensor::empty({count, 3, s, s}, DType::Float32);
  batch.labels = Tensor::empty({count}, DType::Int64);
  float* dst = batch.images.data<float>();
  int64_t* labels = batch.labels.data<int64_t>();
  const size_t per_image = size_t(3 * s * s);
  for (int64_t k = 0; k < count; ++k) {
    const int64_t position = first + k, sample = order_[size_t(position)];
    const Image& img = cache_.image(sample);
    float* out = dst + size_t(k) * per_image;
    if (opt_.augment) {
      Generator gen(augment_seed(opt_.seed, epoch_, position));
      to_normalized_chw(augment_image(img, opt_.aug, opt_.img_size, gen), out);
    } else if (img.height == s && img.width == s) {
      to_normalized_chw(img, out);
    } else {
      to_normalized_chw(resize_bilinear(img, opt_.img_size, opt_.img_size), out);
    }
    labels[k] = labels_[size_t(sample)];
    batch.indices.push_back(sample);
  }
  return batch;
}

void DataLoader::worker_loop() {
  for (;;) {
    int64_t b;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Claim the next batch once it is within `prefetch` of the consumer.
      space_cv_.wait(lock, [&] { return stop_ || claimed_ >= end_batch_ || claimed_ < consumed_ + opt_.prefetch; });
      if (stop_ || claimed_ >= end_batch_) return;
      b = claimed_++;
    }
    Batch batch;
    std::exception_ptr error;
    try {
      batch = build_batch(b);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (error)
        errors_[b] = error;
      else
        ready_.emplace(b, std::move(batch));
    }
    ready_cv_.notify_all();
  }
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  space_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void DataLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  MINIDL_CHECK(epoch >= 0, "DataLoader::start_epoch: epoch must be >= 0, got ", epoch);
  MINIDL_CHECK(first_batch >= 0 && first_batch <= batches_per_epoch(), "DataLoader::start_epoch: first_batch ",
               first_batch, " outside [0, ", batches_per_epoch(), "]");
  stop_workers();  // the workers read order_ and epoch_ without locks: they must be gone
  epoch_ = epoch;
  order_ = epoch_order(epoch);
  end_batch_ = batches_per_epoch();
  consumed_ = claimed_ = first_batch;
  ready_.clear();
  errors_.clear();
  stop_ = false;
  started_ = true;
  const int64_t threads = std::min<int64_t>(opt_.workers, end_batch_ - first_batch);
  for (int64_t t = 0; t < threads; ++t) threads_.emplace_back([this] { worker_loop(); });
}

std::optional<Batch> DataLoader::next() {
  MINIDL_CHECK(started_, "DataLoader::next: call start_epoch(epoch) first");
  if (consumed_ >= end_batch_) return std::nullopt;
  if (opt_.workers == 0) return build_batch(consumed_++);

  const int64_t b = consumed_;
  Batch batch;
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mu_);
    ready_cv_.wait(lock, [&] { return ready_.count(b) > 0 || errors_.count(b) > 0; });
    if (const auto e = errors_.find(b); e != errors_.end()) {
      error = e->second;
      errors_.erase(e);
    } else {
      const auto r = ready_.find(b);
      batch = std::move(r->second);
      ready_.erase(r);
    }
    ++consumed_;  // a failed batch is skipped, not retried
  }
  space_cv_.notify_all();
  if (error) std::rethrow_exception(error);
  return batch;
}

}  // namespace minidl
