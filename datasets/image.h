// Image decoding: JPEG, PNG and BMP files (or bytes in memory) to 8-bit RGB, through
// stb_image. Every image the rest of minidl sees is an `Image`: height x width x 3 bytes in
// HWC order (row by row, each pixel R, G, B). Grayscale, grey+alpha and RGBA inputs are
// converted to RGB by stb (grey g -> (g, g, g); alpha is dropped, not composited).
// EXIF orientation is ignored, as PIL and torchvision ignore it unless asked.
//
// Failures never crash: a missing, unreadable or empty file, a format other than the three,
// and corrupt or truncated data all throw minidl::Error naming the path and, for decode
// failures, stb_image's own reason.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace minidl {

struct Image {
  static constexpr int channels = 3;

  int height = 0;
  int width = 0;
  std::vector<uint8_t> pixels;  // height * width * 3; channel c of pixel (y, x) at (y * width + x) * 3 + c

  size_t offset(int y, int x, int c) const { return (size_t(y) * size_t(width) + size_t(x)) * channels + size_t(c); }
  uint8_t at(int y, int x, int c) const { return pixels[offset(y, x, c)]; }
  uint8_t& at(int y, int x, int c) { return pixels[offset(y, x, c)]; }
  bool operator==(const Image&) const = default;
};

// An image of the given size with every byte set to `fill`. Sizes must be positive.
Image make_image(int height, int width, uint8_t fill = 0);

// Throws minidl::Error (prefixed with `where`) unless the image has positive sizes and
// exactly height * width * 3 bytes. The transforms call this on their inputs.
void check_image(const Image& img, const char* where);

// Reads the whole file, then decodes it with decode_image_memory. File problems (missing,
// a directory, unreadable, empty) and decode problems give different messages.
Image decode_image_file(const std::string& path);

// Decodes JPEG, PNG or BMP bytes (recognised by their signature, not by a file name).
// `name_for_errors` is the path or label that error messages name. Truncated JPEG and PNG
// data fail inside stb; an uncompressed BMP shorter than its header promises is refused here,
// since stb would fill the missing rows with zeros instead of failing.
Image decode_image_memory(const uint8_t* data, size_t size, const std::string& name_for_errors);

// True when the file name ends in .jpg, .jpeg, .png or .bmp, in any letter case.
bool is_image_path(const std::string& path);

// A file: itself (whatever its extension; decoding will judge it). A folder: every file
// below it, at any depth, for which is_image_path holds, sorted by path string. Hidden
// entries (names starting with '.', such as macOS "._x.jpg" forks) are skipped, folders
// included. An existing folder without images gives an empty list; a missing path throws.
std::vector<std::string> list_images(const std::string& path_or_dir);

}  // namespace minidl
