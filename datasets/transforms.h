// Preprocessing on decoded images, shared by `classify` and the training pipeline.
//
// Evaluation / inference: resize_bilinear to the network's input size, then
// to_normalized_chw (x / 255 - mean) / std into a float NCHW batch; images_to_batch does
// both for a list of images.
//
// Training augmentations work on uint8 HWC images and are pure functions (image in, new
// image out). The random ones take a minidl::Generator, so one seed reproduces a whole
// augmentation sequence; the deterministic pieces (flip_horizontal, rotate90, crop,
// adjust_*) are public so tests and callers can use them directly.
#pragma once
#include <vector>

#include "datasets/image.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace minidl {

// ImageNet channel statistics (R, G, B) that torchvision's pretrained ResNets expect.
inline constexpr float kImageNetMean[3] = {0.485f, 0.456f, 0.406f};
inline constexpr float kImageNetStd[3] = {0.229f, 0.224f, 0.225f};

// ---------------------------------------------------------------- geometry

// Bilinear resampling with the half-pixel-centre convention (PyTorch's interpolate with
// align_corners=False and antialias=False; PIL's bilinear agrees when upscaling). Output
// pixel d along an axis of n_in -> n_out pixels samples the input at
//     s = (d + 0.5) * n_in / n_out - 0.5,   clamped to [0, n_in - 1],
// and mixes its two neighbours floor(s) and floor(s) + 1 with weights 1 - frac(s) and
// frac(s); the 2-D weight is the product of the row and column weights. The result is
// rounded to nearest (halves up). No antialiasing: a 2x downscale averages 2x2 blocks, a
// larger one skips pixels. When the size already matches, the result is an exact copy.
Image resize_bilinear(const Image& img, int out_h, int out_w);

// The rectangle rows [top, top + height) x columns [left, left + width), which must lie
// inside the image.
Image crop(const Image& img, int top, int left, int height, int width);

Image flip_horizontal(const Image& img);  // mirror left-right: out(y, x) = in(y, W-1-x)
Image flip_vertical(const Image& img);    // mirror top-bottom: out(y, x) = in(H-1-y, x)
// Rotates counter-clockwise by quarter_turns * 90 degrees (any integer; 4 is the identity).
// One turn maps a HxW image to WxH with out(y, x) = in(x, W-1-y), as numpy's rot90.
Image rotate90(const Image& img, int quarter_turns);

// ---------------------------------------------------------------- to float tensors

// Writes 3 * H * W floats in CHW order: dst[c][y][x] = (pixel / 255 - mean[c]) / stddev[c].
// Computed in float32 in that order, which is what torchvision's ToTensor + Normalize do.
void to_normalized_chw(const Image& img, float* dst, const float mean[3] = kImageNetMean,
                       const float stddev[3] = kImageNetStd);

// A float32 [N, 3, size, size] batch: each image resized to size x size with
// resize_bilinear when it is not already that size (non-square images are squashed, like
// torchvision's Resize((size, size))), then normalised. Needs at least one image.
Tensor images_to_batch(const std::vector<Image>& images, int size, const float mean[3] = kImageNetMean,
                       const float stddev[3] = kImageNetStd);

// ---------------------------------------------------------------- random augmentations

// Each applies its flip with probability p (one gen.uniform() draw, flip when < p).
Image random_horizontal_flip(const Image& img, Generator& gen, double p = 0.5);
Image random_vertical_flip(const Image& img, Generator& gen, double p = 0.5);
// rotate90 by 0, 1, 2 or 3 quarter turns, equally likely. Square images only (so the
// output keeps its shape); anything else throws.
Image random_rotate90(const Image& img, Generator& gen);

struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
  bool operator==(const CropBox&) const = default;
};

// RandomResizedCrop's ranges; the defaults are torchvision's.
struct ResizedCropRanges {
  double scale_min = 0.08, scale_max = 1.0;            // fraction of the image's area
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  // width / height
};

// torchvision's RandomResizedCrop.get_params: up to 10 tries of area = H*W*U(scale) and
// log(ratio) ~ U(log ratio_min, log ratio_max), giving w = round(sqrt(area * ratio)),
// h = round(sqrt(area / ratio)) (round half to even, as Python's round); the first box that
// fits is placed uniformly at random. If none fits, a centre crop of the whole image, first
// narrowed to the nearest allowed aspect ratio when the image's own lies outside the range.
CropBox sample_resized_crop_box(int height, int width, Generator& gen, const ResizedCropRanges& ranges = {});

// crop(sample_resized_crop_box(...)) then resize_bilinear to out_h x out_w.
Image random_resized_crop(const Image& img, Generator& gen, int out_h, int out_w,
                          const ResizedCropRanges& ranges = {});

// Colour adjustments, each rounding to nearest and clamping to [0, 255]; factor 1 is the
// identity, and each is a blend out = f * pixel + (1 - f) * reference:
//   brightness: reference black, out = f * pixel
//   contrast:   reference the image's mean grey level (mean over pixels of 0.299R + 0.587G + 0.114B)
//   saturation: reference the pixel's own grey level 0.299R + 0.587G + 0.114B
Image adjust_brightness(const Image& img, float factor);
Image adjust_contrast(const Image& img, float factor);
Image adjust_saturation(const Image& img, float factor);

// torchvision's ColorJitter without hue: for each strength s > 0 a factor is drawn
// uniformly from [max(0, 1 - s), 1 + s]; the adjustments are applied in a random order, as
// torchvision does. A strength of 0 leaves that property alone; all zeros is a plain copy.
// Strengths must be >= 0.
Image color_jitter(const Image& img, Generator& gen, float brightness, float contrast, float saturation);

}  // namespace minidl
