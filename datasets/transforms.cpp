#include "datasets/transforms.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#include "tensor/error.h"

namespace minidl {

namespace {

// Round to nearest (halves up) and clamp into a byte.
uint8_t to_u8(float v) {
  if (!(v > 0.0f)) return 0;  // also catches NaN
  if (v >= 255.0f) return 255;
  return uint8_t(v + 0.5f);
}

// One output position along an axis: out = (1 - w1) * in[i0] + w1 * in[i1].
struct Tap {
  int i0, i1;
  float w1;
};

// The half-pixel-centre sample positions s = (d + 0.5) * n_in / n_out - 0.5, clamped to
// the edge pixels. Computed in double so simple ratios (0.25, 0.75, ...) come out exact.
std::vector<Tap> axis_taps(int n_in, int n_out) {
  std::vector<Tap> taps(static_cast<size_t>(n_out));
  const double scale = double(n_in) / double(n_out);
  for (int d = 0; d < n_out; ++d) {
    const double s = std::clamp((d + 0.5) * scale - 0.5, 0.0, double(n_in - 1));
    const int i0 = int(s);  // s >= 0, so truncation is floor
    taps[size_t(d)] = {i0, std::min(i0 + 1, n_in - 1), float(s - i0)};
  }
  return taps;
}

// Grey level of an RGB pixel (ITU-R 601 luma, as PIL's "L" conversion).
float grey(const uint8_t* p) { return 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]; }

}  // namespace

// ---------------------------------------------------------------- geometry

Image resize_bilinear(const Image& img, int out_h, int out_w) {
  check_image(img, "resize_bilinear");
  MINIDL_CHECK(out_h > 0 && out_w > 0, "resize_bilinear: output size must be positive, got ", out_h, "x", out_w);
  if (out_h == img.height && out_w == img.width) return img;  // exact copy, no resampling

  const std::vector<Tap> rows = axis_taps(img.height, out_h);
  const std::vector<Tap> cols = axis_taps(img.width, out_w);
  Image out = make_image(out_h, out_w);
  for (int y = 0; y < out_h; ++y) {
    const Tap& ty = rows[size_t(y)];
    const uint8_t* r0 = &img.pixels[img.offset(ty.i0, 0, 0)];
    const uint8_t* r1 = &img.pixels[img.offset(ty.i1, 0, 0)];
    uint8_t* o = &out.pixels[out.offset(y, 0, 0)];
    for (int x = 0; x < out_w; ++x) {
      const Tap& tx = cols[size_t(x)];
      const int a = tx.i0 * 3, b = tx.i1 * 3;
      for (int c = 0; c < 3; ++c) {
        const float top = (1.0f - tx.w1) * r0[a + c] + tx.w1 * r0[b + c];
        const float bottom = (1.0f - tx.w1) * r1[a + c] + tx.w1 * r1[b + c];
        *o++ = to_u8((1.0f - ty.w1) * top + ty.w1 * bottom);
      }
    }
  }
  return out;
}

Image crop(const Image& img, int top, int left, int height, int width) {
  check_image(img, "crop");
  MINIDL_CHECK(height > 0 && width > 0 && top >= 0 && left >= 0 && top + height <= img.height &&
                   left + width <= img.width,
               "crop: box (top ", top, ", left ", left, ", ", height, "x", width, ") does not fit in a ",
               img.height, "x", img.width, " image");
  Image out = make_image(height, width);
  const size_t row_bytes = size_t(width) * 3;
  for (int y = 0; y < height; ++y)
    std::copy_n(&img.pixels[img.offset(top + y, left, 0)], row_bytes, &out.pixels[out.offset(y, 0, 0)]);
  return out;
}

Image flip_horizontal(const Image& img) {
  check_image(img, "flip_horizontal");
  Image out = make_image(img.height, img.width);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      std::copy_n(&img.pixels[img.offset(y, img.width - 1 - x, 0)], 3, &out.pixels[out.offset(y, x, 0)]);
  return out;
}

Image flip_vertical(const Image& img) {
  check_image(img, "flip_vertical");
  Image out = make_image(img.height, img.width);
  const size_t row_bytes = size_t(img.width) * 3;
  for (int y = 0; y < img.height; ++y)
    std::copy_n(&img.pixels[img.offset(img.height - 1 - y, 0, 0)], row_bytes, &out.pixels[out.offset(y, 0, 0)]);
  return out;
}

Image rotate90(const Image& img, int quarter_turns) {
  check_image(img, "rotate90");
  const int k = ((quarter_turns % 4) + 4) % 4;
  if (k == 0) return img;
  if (k == 2) return flip_vertical(flip_horizontal(img));  // 180 degrees: out(y, x) = in(H-1-y, W-1-x)
  const int H = img.height, W = img.width;
  Image out = make_image(W, H);  // a quarter turn swaps the sizes
  for (int y = 0; y < W; ++y)
    for (int x = 0; x < H; ++x) {
      // counter-clockwise: out(y, x) = in(x, W-1-y); clockwise (k = 3): out(y, x) = in(H-1-x, y)
      const size_t src = k == 1 ? img.offset(x, W - 1 - y, 0) : img.offset(H - 1 - x, y, 0);
      std::copy_n(&img.pixels[src], 3, &out.pixels[out.offset(y, x, 0)]);
    }
  return out;
}

// ---------------------------------------------------------------- to float tensors

void to_normalized_chw(const Image& img, float* dst, const float mean[3], const float stddev[3]) {
  check_image(img, "to_normalized_chw");
  MINIDL_CHECK(dst != nullptr, "to_normalized_chw: null destination");
  for (int c = 0; c < 3; ++c)
    MINIDL_CHECK(stddev[c] > 0.0f, "to_normalized_chw: std of channel ", c, " must be positive, got ", stddev[c]);
  // A byte has only 256 values: tabulate (v / 255 - mean) / std per channel, in float32
  // exactly as the direct formula would compute it.
  float lut[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) lut[c][v] = (float(v) / 255.0f - mean[c]) / stddev[c];
  const size_t plane = size_t(img.height) * size_t(img.width);
  const uint8_t* p = img.pixels.data();
  for (size_t i = 0; i < plane; ++i, p += 3) {
    dst[i] = lut[0][p[0]];
    dst[plane + i] = lut[1][p[1]];
    dst[2 * plane + i] = lut[2][p[2]];
  }
}

Tensor images_to_batch(const std::vector<Image>& images, int size, const float mean[3], const float stddev[3]) {
  MINIDL_CHECK(!images.empty(), "images_to_batch: no images given");
  MINIDL_CHECK(size > 0, "images_to_batch: size must be positive, got ", size);
  const int64_t n = int64_t(images.size());
  Tensor batch = Tensor::empty({n, 3, size, size}, DType::Float32);
  float* out = batch.data<float>();
  const size_t per_image = size_t(3) * size_t(size) * size_t(size);
  for (int64_t i = 0; i < n; ++i) {
    const Image& img = images[size_t(i)];
    check_image(img, "images_to_batch");
    float* dst = out + size_t(i) * per_image;
    if (img.height == size && img.width == size)
      to_normalized_chw(img, dst, mean, stddev);
    else
      to_normalized_chw(resize_bilinear(img, size, size), dst, mean, stddev);
  }
  return batch;
}

// ---------------------------------------------------------------- random augmentations

Image random_horizontal_flip(const Image& img, Generator& gen, double p) {
  return gen.uniform() < p ? flip_horizontal(img) : img;
}

Image random_vertical_flip(const Image& img, Generator& gen, double p) {
  return gen.uniform() < p ? flip_vertical(img) : img;
}

Image random_rotate90(const Image& img, Generator& gen) {
  MINIDL_CHECK(img.height == img.width, "random_rotate90: needs a square image (a quarter turn would change a ",
               img.height, "x", img.width, " image's shape)");
  return rotate90(img, int(gen.randint(4)));
}

CropBox sample_resized_crop_box(int height, int width, Generator& gen, const ResizedCropRanges& r) {
  MINIDL_CHECK(height > 0 && width > 0, "random_resized_crop: image size must be positive, got ", height, "x", width);
  MINIDL_CHECK(r.scale_min >= 0 && r.scale_min <= r.scale_max, "random_resized_crop: bad scale range [",
               r.scale_min, ", ", r.scale_max, "]");
  MINIDL_CHECK(r.ratio_min > 0 && r.ratio_min <= r.ratio_max, "random_resized_crop: bad aspect-ratio range [",
               r.ratio_min, ", ", r.ratio_max, "]");
  const double area = double(height) * double(width);
  const double log_lo = std::log(r.ratio_min), log_hi = std::log(r.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * gen.uniform(r.scale_min, r.scale_max);
    const double ratio = std::exp(gen.uniform(log_lo, log_hi));  // log-uniform: r and 1/r equally likely
    // nearbyint rounds halves to even under the default rounding mode, like Python's round.
    const int w = int(std::nearbyint(std::sqrt(target_area * ratio)));
    const int h = int(std::nearbyint(std::sqrt(target_area / ratio)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const int top = int(gen.randint(uint64_t(height - h + 1)));
      const int left = int(gen.randint(uint64_t(width - w + 1)));
      return {top, left, h, w};
    }
  }
  // Fallback: the largest centred box whose aspect ratio is within range.
  const double in_ratio = double(width) / double(height);
  int w = width, h = height;
  if (in_ratio < r.ratio_min)
    h = std::clamp(int(std::nearbyint(w / r.ratio_min)), 1, height);
  else if (in_ratio > r.ratio_max)
    w = std::clamp(int(std::nearbyint(h * r.ratio_max)), 1, width);
  return {(height - h) / 2, (width - w) / 2, h, w};
}

Image random_resized_crop(const Image& img, Generator& gen, int out_h, int out_w, const ResizedCropRanges& ranges) {
  check_image(img, "random_resized_crop");
  MINIDL_CHECK(out_h > 0 && out_w > 0, "random_resized_crop: output size must be positive, got ", out_h, "x", out_w);
  const CropBox b = sample_resized_crop_box(img.height, img.width, gen, ranges);
  return resize_bilinear(crop(img, b.top, b.left, b.height, b.width), out_h, out_w);
}

Image adjust_brightness(const Image& img, float factor) {
  check_image(img, "adjust_brightness");
  Image out = img;
  for (uint8_t& v : out.pixels) v = to_u8(factor * v);
  return out;
}

Image adjust_contrast(const Image& img, float factor) {
  check_image(img, "adjust_contrast");
  const size_t n = size_t(img.height) * size_t(img.width);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += grey(&img.pixels[3 * i]);
  const float mean_grey = float(sum / double(n));
  Image out = img;
  for (uint8_t& v : out.pixels) v = to_u8(factor * v + (1.0f - factor) * mean_grey);
  return out;
}

Image adjust_saturation(const Image& img, float factor) {
  check_image(img, "adjust_saturation");
  Image out = img;
  const size_t n = size_t(img.height) * size_t(img.width);
  for (size_t i = 0; i < n; ++i) {
    uint8_t* p = &out.pixels[3 * i];
    const float g = grey(p);
    for (int c = 0; c < 3; ++c) p[c] = to_u8(factor * p[c] + (1.0f - factor) * g);
  }
  return out;
}

Image color_jitter(const Image& img, Generator& gen, float brightness, float contrast, float saturation) {
  MINIDL_CHECK(brightness >= 0 && contrast >= 0 && saturation >= 0,
               "color_jitter: strengths must be >= 0, got brightness ", brightness, ", contrast ", contrast,
               ", saturation ", saturation);
  check_image(img, "color_jitter");
  const std::array<float, 3> strength = {brightness, contrast, saturation};
  if (strength[0] == 0 && strength[1] == 0 && strength[2] == 0) return img;

  // Random order first (Fisher-Yates), then one factor per enabled adjustment.
  std::array<int, 3> order = {0, 1, 2};
  for (int i = 2; i > 0; --i) std::swap(order[size_t(i)], order[gen.randint(uint64_t(i + 1))]);
  std::array<float, 3> factor = {1, 1, 1};
  for (size_t k = 0; k < 3; ++k)
    if (strength[k] > 0) factor[k] = float(gen.uniform(std::max(0.0, 1.0 - strength[k]), 1.0 + strength[k]));

  Image out = img;
  for (int k : order) {
    if (strength[size_t(k)] == 0) continue;
    const float f = factor[size_t(k)];
    out = k == 0 ? adjust_brightness(out, f) : k == 1 ? adjust_contrast(out, f) : adjust_saturation(out, f);
  }
  return out;
}

}  // namespace minidl
