#include "datasets/image.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include "stb_image.h"  // declarations only: the implementation is Debian's libstb
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace minidl {

Image make_image(int height, int width, uint8_t fill) {
  MINIDL_CHECK(height > 0 && width > 0, "make_image: sizes must be positive, got ", height, "x", width);
  Image img;
  img.height = height;
  img.width = width;
  img.pixels.assign(size_t(height) * size_t(width) * Image::channels, fill);
  return img;
}

void check_image(const Image& img, const char* where) {
  MINIDL_CHECK(img.height > 0 && img.width > 0, where, ": image has non-positive size ", img.height, "x",
               img.width);
  const size_t expected = size_t(img.height) * size_t(img.width) * Image::channels;
  MINIDL_CHECK(img.pixels.size() == expected, where, ": a ", img.height, "x", img.width, " RGB image needs ",
               expected, " bytes, but its pixel buffer holds ", img.pixels.size());
}

namespace {

enum class Format { Jpeg, Png, Bmp, Unknown };

const char* format_name(Format f) {
  switch (f) {
    case Format::Jpeg: return "JPEG";
    case Format::Png: return "PNG";
    case Format::Bmp: return "BMP";
    default: return "unknown";
  }
}

// Recognise the three formats by their leading bytes. stb_image can also read GIF, TGA,
// PSD, ... but TGA has no signature, so stb would happily "decode" many corrupt files as
// TGA garbage; accepting only signed formats turns those into errors.
Format sniff_format(const uint8_t* d, size_t n) {
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return Format::Jpeg;  // SOI, then a marker
  if (n >= 8 && std::memcmp(d, png_sig, 8) == 0) return Format::Png;
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return Format::Bmp;
  return Format::Unknown;
}

uint32_t le16(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8; }
uint32_t le32(const uint8_t* p) { return le16(p) | le16(p + 2) << 16; }

// stb_image reads past the end of a BMP as zeros, so a cut-off file decodes "fine" with its
// top rows black (BMP rows are stored bottom-up). For the uncompressed layouts the size is
// fully determined by the header: pixel data starts at offset bfOffBits and holds |height|
// rows of ceil(width * bits_per_pixel / 32) * 4 bytes (rows are padded to 4 bytes).
void check_bmp_complete(const uint8_t* d, size_t n, const std::string& name) {
  MINIDL_CHECK(n >= 26, "decode_image: '", name, "': BMP header truncated (", n, " bytes)");
  const uint64_t data_offset = le32(d + 10);
  const uint32_t dib_size = le32(d + 14);
  int64_t width, height;
  uint32_t bpp, compression = 0;
  if (dib_size == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit sizes, never compressed
    width = le16(d + 18);
    height = le16(d + 20);
    bpp = le16(d + 24);
  } else {
    MINIDL_CHECK(n >= 34, "decode_image: '", name, "': BMP header truncated (", n, " bytes)");
    width = int32_t(le32(d + 18));
    height = int32_t(le32(d + 22));  // negative: rows stored top-down
    bpp = le16(d + 28);
    compression = le32(d + 30);
  }
  // 0 = BI_RGB, 3 = BI_BITFIELDS, 6 = BI_ALPHABITFIELDS: raw rows. RLE kinds are left to stb.
  if (compression != 0 && compression != 3 && compression != 6) return;
  if (width <= 0 || height == 0 || bpp == 0) return;  // stb reports malformed headers itself
  const uint64_t row_bytes = (uint64_t(width) * bpp + 31) / 32 * 4;
  const uint64_t needed = data_offset + row_bytes * uint64_t(height < 0 ? -height : height);
  MINIDL_CHECK(n >= needed, "decode_image: '", name, "': truncated BMP: ", n, " bytes, but its header (",
               width, "x", (height < 0 ? -height : height), ", ", bpp, " bits per pixel) needs ", needed);
}

// stb_image keeps one failure reason per thread and overwrites it only when a check fails
// with a message; some of its header checks fail silently. A silent failure would then
// report a stale reason: one from an earlier image, or "bad png sig", which stb sets while
// probing for PNG before it tries BMP or JPEG. So before decoding we plant a known reason
// (probing one zero byte, which no format accepts), and afterwards treat that reason, or
// "bad png sig" for data that is not PNG, as no reason at all.
const char* plant_stb_reason() {
  static const stbi_uc zero = 0;
  int w, h, c;
  stbi_info_from_memory(&zero, 1, &w, &h, &c);
  return stbi_failure_reason();
}

struct StbFree {
  void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

}  // namespace

Image decode_image_memory(const uint8_t* data, size_t size, const std::string& name) {
  MINIDL_CHECK(data != nullptr && size > 0, "decode_image: '", name, "': no data (empty file?)");
  MINIDL_CHECK(size <= size_t(INT_MAX), "decode_image: '", name, "': ", size,
               " bytes is more than stb_image can read (2 GiB)");
  const Format format = sniff_format(data, size);
  if (format == Format::Unknown) {
    char head[3 * 8 + 1] = {0};
    for (size_t i = 0; i < std::min<size_t>(size, 8); ++i) std::snprintf(head + 3 * i, 4, "%02x ", data[i]);
    throw Error(detail::concat("decode_image: '", name, "': not a JPEG, PNG or BMP image (", size,
                               " bytes, starting ", head, ")"));
  }
  if (format == Format::Bmp) check_bmp_complete(data, size, name);

  const char* planted = plant_stb_reason();
  int w = 0, h = 0, channels_in_file = 0;
  // Ask for 3 channels: stb converts grey, grey+alpha and RGBA to RGB while decoding.
  std::unique_ptr<stbi_uc, StbFree> decoded(
      stbi_load_from_memory(data, int(size), &w, &h, &channels_in_file, Image::channels));
  if (!decoded) {
    // The failure reason is thread-local in stb_image, so loader threads do not mix them up.
    const char* reason = stbi_failure_reason();
    const bool has_reason = reason != nullptr && *reason != 0 && reason != planted &&
                            !(format != Format::Png && std::strcmp(reason, "bad png sig") == 0);
    throw Error(detail::concat("decode_image: '", name, "': cannot decode ", format_name(format), " data (",
                               size, " bytes; corrupt or truncated?): ",
                               has_reason ? "stb_image says '" : "stb_image gave no specific reason",
                               has_reason ? reason : " (data cut short or a malformed header?)",
                               has_reason ? "'" : ""));
  }
  MINIDL_CHECK(w > 0 && h > 0, "decode_image: '", name, "': decoded to an empty ", w, "x", h, " image");
  Image img;
  img.height = h;
  img.width = w;
  img.pixels.assign(decoded.get(), decoded.get() + size_t(w) * size_t(h) * Image::channels);
  return img;
}

Image decode_image_file(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  MINIDL_CHECK(fs::exists(st), "decode_image_file: '", path, "': no such file");
  MINIDL_CHECK(!fs::is_directory(st), "decode_image_file: '", path, "': is a directory, not an image file");

  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  MINIDL_CHECK(f != nullptr, "decode_image_file: '", path, "': cannot open: ", std::strerror(errno));
  // Read in chunks until EOF rather than trusting a size query, so pipes and files that
  // change underneath still give exactly the bytes read.
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof chunk, f.get())) > 0) bytes.insert(bytes.end(), chunk, chunk + got);
  MINIDL_CHECK(!std::ferror(f.get()), "decode_image_file: '", path, "': read error: ", std::strerror(errno));
  MINIDL_CHECK(!bytes.empty(), "decode_image_file: '", path, "': file is empty (0 bytes)");
  return decode_image_memory(bytes.data(), bytes.size(), path);
}

bool is_image_path(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

std::vector<std::string> list_images(const std::string& path_or_dir) {
  std::error_code ec;
  const fs::file_status st = fs::status(path_or_dir, ec);
  MINIDL_CHECK(fs::exists(st), "list_images: '", path_or_dir, "': no such file or folder");
  if (!fs::is_directory(st)) return {path_or_dir};

  std::vector<std::string> found;
  fs::recursive_directory_iterator it(path_or_dir, fs::directory_options::follow_directory_symlink, ec);
  MINIDL_CHECK(!ec, "list_images: cannot read folder '", path_or_dir, "': ", ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    MINIDL_CHECK(!ec, "list_images: error while walking '", path_or_dir, "': ", ec.message());
    const fs::path& p = it->path();
    if (p.filename().string().starts_with(".")) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && is_image_path(p.string())) found.push_back(p.string());
  }
  MINIDL_CHECK(!ec, "list_images: error while walking '", path_or_dir, "': ", ec.message());
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace minidl
