#include "datasets/image_cache.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "datasets/progress.h"
#include "tensor/error.h"

namespace minidl {

namespace {

// "path: reason", dropping the "decode_image: 'path': " prefix the decoder's messages have.
std::string failure_line(const std::string& path, const std::string& what) {
  const std::string quoted = "'" + path + "': ";
  const size_t at = what.find(quoted);
  return path + ": " + (at == std::string::npos ? what : what.substr(at + quoted.size()));
}

}  // namespace

ImageCache::ImageCache(const ImageFolder& folder, const std::vector<int64_t>& indices, int threads, bool progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n_samples = int64_t(folder.samples.size());
  std::vector<int64_t> wanted;
  if (indices.empty()) {
    wanted.resize(size_t(n_samples));
    for (int64_t i = 0; i < n_samples; ++i) wanted[size_t(i)] = i;
  } else {
    for (const int64_t i : indices)
      MINIDL_CHECK(i >= 0 && i < n_samples, "ImageCache: sample index ", i, " is outside the folder's ", n_samples,
                   " samples");
    wanted = indices;
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  }
  MINIDL_CHECK(wanted.size() < size_t(INT32_MAX), "ImageCache: too many images (", wanted.size(), ")");

  // Each wanted image gets its own slot, written by whichever thread decodes it; no locks
  // are needed because no two threads touch the same slot.
  std::vector<Image> decoded(wanted.size());
  std::vector<std::string> errors(wanted.size());
  std::atomic<size_t> next{0};
  ProgressBar bar("decoding " + folder.root, int64_t(wanted.size()), progress);
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < wanted.size();) {
      const std::string& path = folder.samples[size_t(wanted[k])].path;
      try {
        decoded[k] = decode_image_file(path);
      } catch (const std::exception& e) {
        errors[k] = failure_line(path, e.what());
      }
      bar.add(1);
    }
  };
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  threads = int(std::min<size_t>(size_t(threads), std::max<size_t>(wanted.size(), 1)));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();  // the calling thread decodes too
  for (std::thread& t : pool) t.join();
  bar.finish();

  slot_.assign(size_t(n_samples), kNotRequested);
  for (size_t k = 0; k < wanted.size(); ++k) {
    if (!errors[k].empty()) {
      failures_.push_back(std::move(errors[k]));
      slot_[size_t(wanted[k])] = kFailed;
      continue;
    }
    slot_[size_t(wanted[k])] = int32_t(images_.size());
    bytes_ += decoded[k].pixels.size();
    images_.push_back(std::move(decoded[k]));
  }
  seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool ImageCache::has(int64_t sample_index) const {
  return sample_index >= 0 && sample_index < int64_t(slot_.size()) && slot_[size_t(sample_index)] >= 0;
}

bool ImageCache::failed(int64_t sample_index) const {
  return sample_index >= 0 && sample_index < int64_t(slot_.size()) && slot_[size_t(sample_index)] == kFailed;
}

const Image& ImageCache::image(int64_t sample_index) const {
  MINIDL_CHECK(has(sample_index), "ImageCache::image: sample ", sample_index,
               " is not cached (not requested, or its decoding failed: see failures())");
  return images_[size_t(slot_[size_t(sample_index)])];
}

}  // namespace minidl
