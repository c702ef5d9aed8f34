// Image decoding (datasets/image.h) and preprocessing / augmentation (datasets/transforms.h).
// Fixtures are written at test time into a temporary folder: PNG, JPEG and BMP through
// stb_image_write (libstb ships its implementation), plus one BMP built byte by byte so the
// decoder is also checked against a file stb did not write.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "datasets/image.h"
#include "datasets/transforms.h"
#include "stb_image_write.h"  // declarations only; the implementation is in libstb
#include "test_util.h"

using namespace minidl;
using namespace minidl::testing;
namespace fs = std::filesystem;

namespace {

// A fresh, empty temporary folder per test case.
fs::path temp_dir(const std::string& name) {
  fs::path d = minidl::testing::unique_temp("test_image_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_bytes(const fs::path& p, const std::vector<uint8_t>& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// Pixel (y, x, c) of a deterministic test pattern with every byte value well spread.
uint8_t pattern(int y, int x, int c) { return uint8_t((y * 53 + x * 29 + c * 97 + 11) % 256); }

Image pattern_image(int h, int w) {
  Image img = make_image(h, w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) img.at(y, x, c) = pattern(y, x, c);
  return img;
}

// A smooth image (JPEG's easy case) for lossy round trips.
Image smooth_image(int h, int w) {
  Image img = make_image(h, w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      img.at(y, x, 0) = uint8_t(40 + 6 * x);
      img.at(y, x, 1) = uint8_t(30 + 5 * y);
      img.at(y, x, 2) = uint8_t(120 + 2 * (x + y));
    }
  return img;
}

void write_png(const fs::path& p, int h, int w, int comp, const std::vector<uint8_t>& px) {
  REQUIRE(stbi_write_png(p.string().c_str(), w, h, comp, px.data(), w * comp) != 0);
}

void write_jpg(const fs::path& p, const Image& img, int quality) {
  REQUIRE(stbi_write_jpg(p.string().c_str(), img.width, img.height, 3, img.pixels.data(), quality) != 0);
}

void put_le(std::vector<uint8_t>& b, size_t at, uint32_t v, int n) {
  for (int i = 0; i < n; ++i) b[at + size_t(i)] = uint8_t(v >> (8 * i));
}

// A 24-bit uncompressed BMP written by hand: 54-byte header, rows bottom-up, each pixel
// stored B, G, R, rows padded to a multiple of 4 bytes.
std::vector<uint8_t> hand_bmp(const Image& img) {
  const size_t row = (size_t(img.width) * 3 + 3) / 4 * 4;
  std::vector<uint8_t> b(54 + row * size_t(img.height), 0);
  b[0] = 'B';
  b[1] = 'M';
  put_le(b, 2, uint32_t(b.size()), 4);
  put_le(b, 10, 54, 4);   // pixel data offset
  put_le(b, 14, 40, 4);   // BITMAPINFOHEADER
  put_le(b, 18, uint32_t(img.width), 4);
  put_le(b, 22, uint32_t(img.height), 4);
  put_le(b, 26, 1, 2);    // planes
  put_le(b, 28, 24, 2);   // bits per pixel
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      for (int c = 0; c < 3; ++c)
        b[54 + size_t(img.height - 1 - y) * row + size_t(x) * 3 + size_t(2 - c)] = img.at(y, x, c);
  return b;
}

Image constant_image(int h, int w, uint8_t r, uint8_t g, uint8_t b) {
  Image img = make_image(h, w);
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    img.pixels[i] = r;
    img.pixels[i + 1] = g;
    img.pixels[i + 2] = b;
  }
  return img;
}

// Single-channel image from rows of grey values (all three channels equal).
Image grey_image(const std::vector<std::vector<int>>& rows) {
  Image img = make_image(int(rows.size()), int(rows[0].size()));
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      for (int c = 0; c < 3; ++c) img.at(y, x, c) = uint8_t(rows[size_t(y)][size_t(x)]);
  return img;
}

std::vector<int> channel(const Image& img, int c) {
  std::vector<int> v;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) v.push_back(img.at(y, x, c));
  return v;
}

}  // namespace

// ============================================================== decoding

TEST_CASE("decode: a hand-written BMP gives its exact pixels, top row first, in RGB order") {
  const fs::path dir = temp_dir("bmp");
  const Image src = pattern_image(3, 5);  // width 5: rows need 1 byte of padding
  write_bytes(dir / "hand.bmp", hand_bmp(src));
  const Image img = decode_image_file((dir / "hand.bmp").string());
  CHECK(img.height == 3);
  CHECK(img.width == 5);
  CHECK(img == src);
  CHECK(img.at(0, 0, 0) == pattern(0, 0, 0));
  CHECK(img.at(2, 4, 2) == pattern(2, 4, 2));

  // stb's own BMP writer agrees too.
  REQUIRE(stbi_write_bmp((dir / "stb.bmp").string().c_str(), src.width, src.height, 3, src.pixels.data()) != 0);
  CHECK(decode_image_file((dir / "stb.bmp").string()) == src);
}

TEST_CASE("decode: an RGB PNG round-trips bit-exactly, from a file and from memory") {
  const fs::path dir = temp_dir("png");
  const Image src = pattern_image(7, 6);
  write_png(dir / "rgb.png", 7, 6, 3, src.pixels);
  const Image img = decode_image_file((dir / "rgb.png").string());
  CHECK(img.height == 7);
  CHECK(img.width == 6);
  CHECK(img.pixels.size() == size_t(7 * 6 * 3));
  CHECK(img == src);
  const std::vector<uint8_t> bytes = read_bytes(dir / "rgb.png");
  CHECK(decode_image_memory(bytes.data(), bytes.size(), "in-memory") == src);
}

TEST_CASE("decode: grayscale, grey+alpha and RGBA PNGs become RGB") {
  const fs::path dir = temp_dir("channels");
  const int h = 2, w = 3;
  std::vector<uint8_t> grey = {0, 17, 128, 200, 254, 255};
  write_png(dir / "g.png", h, w, 1, grey);
  const Image g = decode_image_file((dir / "g.png").string());
  REQUIRE(g.pixels.size() == size_t(h * w * 3));
  for (int i = 0; i < h * w; ++i)
    for (int c = 0; c < 3; ++c) CHECK(g.pixels[size_t(3 * i + c)] == grey[size_t(i)]);

  std::vector<uint8_t> grey_alpha;
  for (uint8_t v : grey) grey_alpha.insert(grey_alpha.end(), {v, uint8_t(255 - v)});
  write_png(dir / "ga.png", h, w, 2, grey_alpha);
  CHECK(decode_image_file((dir / "ga.png").string()) == g);  // alpha dropped

  const Image rgb = pattern_image(h, w);
  std::vector<uint8_t> rgba;
  for (size_t i = 0; i < rgb.pixels.size(); i += 3)
    rgba.insert(rgba.end(), {rgb.pixels[i], rgb.pixels[i + 1], rgb.pixels[i + 2], uint8_t(i * 40)});
  write_png(dir / "rgba.png", h, w, 4, rgba);
  CHECK(decode_image_file((dir / "rgba.png").string()) == rgb);  // alpha dropped, colours untouched
}

TEST_CASE("decode: a JPEG decodes to its size with pixels close to the source") {
  const fs::path dir = temp_dir("jpeg");
  const Image src = smooth_image(24, 32);
  write_jpg(dir / "smooth.jpg", src, 95);
  const Image img = decode_image_file((dir / "smooth.jpg").string());
  REQUIRE(img.height == 24);
  REQUIRE(img.width == 32);
  int worst = 0;
  double total = 0;
  for (size_t i = 0; i < src.pixels.size(); ++i) {
    const int d = std::abs(int(img.pixels[i]) - int(src.pixels[i]));
    worst = std::max(worst, d);
    total += d;
  }
  CHECK(worst <= 12);
  CHECK(total / double(src.pixels.size()) < 3.0);
}

TEST_CASE("decode: bad inputs give errors that name the path and the reason") {
  const fs::path dir = temp_dir("errors");
  const std::string missing = (dir / "missing.jpg").string();
  CHECK_ERROR_MENTIONS(decode_image_file(missing), missing.c_str(), "no such file");
  const std::string folder = dir.string();  // named: the macro keeps only the c_str() pointers
  CHECK_ERROR_MENTIONS(decode_image_file(folder), folder.c_str(), "directory");

  write_bytes(dir / "empty.png", {});
  const std::string empty = (dir / "empty.png").string();
  CHECK_ERROR_MENTIONS(decode_image_file(empty), empty.c_str(), "empty");

  write_bytes(dir / "junk.jpg", {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'});
  const std::string junk = (dir / "junk.jpg").string();
  CHECK_ERROR_MENTIONS(decode_image_file(junk), junk.c_str(), "not a JPEG, PNG or BMP", "68 65 6c");

  // A JPEG signature followed by garbage: stb's decoder fails and says why.
  std::vector<uint8_t> bad_jpeg = {0xFF, 0xD8, 0xFF, 0xE0};
  for (int i = 0; i < 200; ++i) bad_jpeg.push_back(uint8_t(i * 7));
  write_bytes(dir / "corrupt.jpg", bad_jpeg);
  const std::string corrupt = (dir / "corrupt.jpg").string();
  CHECK_ERROR_MENTIONS(decode_image_file(corrupt), corrupt.c_str(), "cannot decode JPEG", "stb_image says");

  // A real JPEG cut at several points, including just before its end-of-image marker.
  write_jpg(dir / "whole.jpg", smooth_image(32, 32), 90);
  const std::vector<uint8_t> whole = read_bytes(dir / "whole.jpg");
  for (size_t keep : {whole.size() / 4, whole.size() / 2, whole.size() - 2}) {
    CAPTURE(keep);
    write_bytes(dir / "truncated.jpg", std::vector<uint8_t>(whole.begin(), whole.begin() + long(keep)));
    const std::string truncated = (dir / "truncated.jpg").string();
    CHECK_ERROR_MENTIONS(decode_image_file(truncated), truncated.c_str(), "cannot decode JPEG", "stb_image");
    std::string msg;
    try {
      decode_image_file(truncated);
    } catch (const Error& err) {
      msg = err.what();
    }
    CHECK(msg.find("png") == std::string::npos);  // no stale reason from stb's probing of other formats
  }

  // A PNG cut inside its image data.
  write_png(dir / "whole.png", 16, 16, 3, pattern_image(16, 16).pixels);
  const std::vector<uint8_t> png = read_bytes(dir / "whole.png");
  write_bytes(dir / "truncated.png", std::vector<uint8_t>(png.begin(), png.begin() + long(png.size() / 2)));
  const std::string truncated_png = (dir / "truncated.png").string();
  CHECK_ERROR_MENTIONS(decode_image_file(truncated_png), truncated_png.c_str(), "cannot decode PNG");

  // A BMP cut short: stb alone would fill the missing rows with zeros.
  const std::vector<uint8_t> bmp = hand_bmp(pattern_image(4, 4));
  write_bytes(dir / "truncated.bmp", std::vector<uint8_t>(bmp.begin(), bmp.end() - 5));
  const std::string truncated_bmp = (dir / "truncated.bmp").string();
  CHECK_ERROR_MENTIONS(decode_image_file(truncated_bmp), truncated_bmp.c_str(), "truncated BMP");

  // From memory the error names the caller's label.
  CHECK_ERROR_MENTIONS(decode_image_memory(bad_jpeg.data(), bad_jpeg.size(), "label-42"), "label-42");
  CHECK_ERROR_MENTIONS(decode_image_memory(nullptr, 0, "label-43"), "label-43", "no data");
}

TEST_CASE("decode: every prefix and many byte-mutated copies of valid files fail cleanly or decode sanely") {
  const fs::path dir = temp_dir("fuzz");
  write_jpg(dir / "a.jpg", smooth_image(16, 24), 80);
  write_png(dir / "a.png", 9, 7, 3, pattern_image(9, 7).pixels);
  const std::vector<uint8_t> jpg = read_bytes(dir / "a.jpg");
  const std::vector<uint8_t> png = read_bytes(dir / "a.png");
  const std::vector<uint8_t> bmp = hand_bmp(pattern_image(5, 3));

  // Every strict prefix of the JPEG lacks its end-of-image marker: all must be refused.
  int refused = 0;
  for (size_t n = 1; n < jpg.size(); ++n) {
    try {
      decode_image_memory(jpg.data(), n, "prefix");
    } catch (const Error&) {
      ++refused;
    }
  }
  CHECK(refused == int(jpg.size()) - 1);
  // Prefixes of the BMP too; a PNG missing only its final (empty) IEND chunk still decodes.
  refused = 0;
  for (size_t n = 1; n < bmp.size(); ++n) {
    try {
      decode_image_memory(bmp.data(), n, "prefix");
    } catch (const Error&) {
      ++refused;
    }
  }
  CHECK(refused == int(bmp.size()) - 1);

  // Random byte changes: a decode may succeed (JPEG has no checksums) but must give a
  // consistent image; otherwise it must throw minidl::Error. Either way, no crash.
  Generator g(99);
  int decoded = 0, errors = 0;
  for (const std::vector<uint8_t>* file : {&jpg, &png, &bmp}) {
    for (int trial = 0; trial < 150; ++trial) {
      std::vector<uint8_t> m = *file;
      const int changes = 1 + int(g.randint(4));
      for (int k = 0; k < changes; ++k) m[g.randint(m.size())] = uint8_t(g.randint(256));
      try {
        const Image img = decode_image_memory(m.data(), m.size(), "mutated");
        CHECK(img.pixels.size() == size_t(img.height) * size_t(img.width) * 3);
        ++decoded;
      } catch (const Error& e) {
        CHECK(std::string(e.what()).find("mutated") != std::string::npos);
        ++errors;
      }
    }
  }
  CHECK(decoded + errors == 450);
  CHECK(errors > 0);
}

TEST_CASE("decode: a EuroSAT image from the shared data, when present, is 64x64 RGB") {
  const fs::path root = fs::path(__FILE__).parent_path().parent_path().parent_path() / "shared" / "data" /
                        "EuroSAT_RGB";
  const fs::path sample = root / "Forest" / "Forest_1.jpg";
  if (!fs::exists(sample)) {
    MESSAGE("skipped: EuroSAT not found at " << root.string());
    return;
  }
  const Image img = decode_image_file(sample.string());
  CHECK(img.height == 64);
  CHECK(img.width == 64);
  CHECK(img.pixels.size() == size_t(64 * 64 * 3));
  // A forest patch is mostly dark: not a blank or white decode.
  double mean = 0;
  for (uint8_t v : img.pixels) mean += v;
  mean /= double(img.pixels.size());
  CHECK(mean > 5);
  CHECK(mean < 200);
  // The same real-world JPEG cut in half is refused.
  const std::vector<uint8_t> bytes = read_bytes(sample);
  CHECK_ERROR_MENTIONS(decode_image_memory(bytes.data(), bytes.size() / 2, "half of Forest_1.jpg"),
                       "half of Forest_1.jpg", "cannot decode JPEG");
}

TEST_CASE("is_image_path and list_images: recursion, filtering, sorting, hidden entries") {
  CHECK(is_image_path("a/b/c.jpg"));
  CHECK(is_image_path("C.JPEG"));
  CHECK(is_image_path("x.Png"));
  CHECK(is_image_path("x.bmp"));
  CHECK_FALSE(is_image_path("x.gif"));
  CHECK_FALSE(is_image_path("x.jpg.txt"));
  CHECK_FALSE(is_image_path("jpg"));
  CHECK_FALSE(is_image_path("folder.jpg/readme"));

  const fs::path dir = temp_dir("list");
  for (const char* f : {"b/x.PNG", "a/y.jpg", "a/deep/er/z.jpeg", "c.bmp", "notes.txt", "a/noext", ".hidden.jpg",
                        ".git/w.jpg", "a/._y.jpg"})
    write_bytes(dir / f, {1});
  fs::create_directories(dir / "empty_sub");
  const std::string d = dir.string();
  const std::vector<std::string> expected = {d + "/a/deep/er/z.jpeg", d + "/a/y.jpg", d + "/b/x.PNG", d + "/c.bmp"};
  CHECK(list_images(d) == expected);
  CHECK(list_images(d + "/notes.txt") == std::vector<std::string>{d + "/notes.txt"});  // a file: itself
  CHECK(list_images(d + "/empty_sub").empty());
  const std::string nope = d + "/nope";
  CHECK_ERROR_MENTIONS(list_images(nope), nope.c_str(), "no such file");
}

// ============================================================== resize and crop

TEST_CASE("resize_bilinear: same size is an exact copy; constants stay constant") {
  const Image src = pattern_image(5, 7);
  const Image same = resize_bilinear(src, 5, 7);
  CHECK(same == src);
  CHECK(same.pixels.data() != src.pixels.data());

  const Image flat = constant_image(5, 7, 13, 200, 255);
  for (auto [h, w] : {std::pair{1, 1}, {3, 2}, {10, 14}, {13, 3}, {64, 64}}) {
    CAPTURE(h);
    CAPTURE(w);
    const Image r = resize_bilinear(flat, h, w);
    CHECK(r.height == h);
    CHECK(r.width == w);
    CHECK(r == constant_image(h, w, 13, 200, 255));
  }
  CHECK_ERROR_MENTIONS(resize_bilinear(src, 0, 3), "resize_bilinear", "positive");
  Image broken = src;
  broken.pixels.pop_back();
  CHECK_ERROR_MENTIONS(resize_bilinear(broken, 2, 2), "resize_bilinear", "bytes");
}

TEST_CASE("resize_bilinear: 2x2 -> 4x4 upscale matches the half-pixel formula worked by hand") {
  // Along each axis 2 -> 4: s = (d + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped to
  // 0, 0.25, 0.75, 1: weights on (first, second) = (1,0), (3/4,1/4), (1/4,3/4), (0,1).
  // With p = [[a, b], [c, e]] each output is the product of a row and a column weight pair.
  const int a = 0, b = 160, c = 80, e = 240;
  const Image src = grey_image({{a, b}, {c, e}});
  const Image up = resize_bilinear(src, 4, 4);
  const double wts[4][2] = {{1, 0}, {0.75, 0.25}, {0.25, 0.75}, {0, 1}};
  std::vector<int> expected;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) {
      const double v = wts[y][0] * (wts[x][0] * a + wts[x][1] * b) + wts[y][1] * (wts[x][0] * c + wts[x][1] * e);
      expected.push_back(int(v));  // multiples of 16 times sixteenths: exact integers
    }
  CHECK(expected == std::vector<int>{0, 40, 120, 160, 20, 60, 140, 180, 60, 100, 180, 220, 80, 120, 200, 240});
  for (int ch = 0; ch < 3; ++ch) CHECK(channel(up, ch) == expected);
}

TEST_CASE("resize_bilinear: 4x4 -> 2x2 averages 2x2 blocks; other shapes") {
  // 4 -> 2: s = (d + 0.5) * 2 - 0.5 = 0.5, 2.5: halfway between pixels 0,1 and 2,3.
  const Image src = grey_image({{0, 10, 100, 104}, {20, 30, 110, 114}, {200, 202, 9, 9}, {204, 206, 1, 1}});
  const Image down = resize_bilinear(src, 2, 2);
  CHECK(channel(down, 1) == std::vector<int>{15, 107, 203, 5});

  // 1x2 -> 1x3 (rows unchanged): s = (d + 0.5) * 2/3 - 0.5 = -1/6, 1/2, 7/6 -> 0, 0.5, 1.
  const Image row = resize_bilinear(grey_image({{10, 30}}), 1, 3);
  CHECK(channel(row, 0) == std::vector<int>{10, 20, 30});
  // 3x1 -> 1x1: s = 0.5 * 3 - 0.5 = 1, the middle pixel.
  CHECK(channel(resize_bilinear(grey_image({{5}, {77}, {250}}), 1, 1), 2) == std::vector<int>{77});
}

TEST_CASE("crop takes the requested rectangle and refuses boxes outside the image") {
  const Image src = pattern_image(6, 5);
  const Image c = crop(src, 2, 1, 3, 4);
  REQUIRE(c.height == 3);
  REQUIRE(c.width == 4);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x)
      for (int ch = 0; ch < 3; ++ch) CHECK(c.at(y, x, ch) == pattern(y + 2, x + 1, ch));
  CHECK(crop(src, 0, 0, 6, 5) == src);
  CHECK_ERROR_MENTIONS(crop(src, 4, 0, 3, 1), "crop", "does not fit", "6x5");
}

// ============================================================== normalisation

TEST_CASE("to_normalized_chw writes (x/255 - mean)/std per channel in CHW order") {
  Image img = make_image(1, 2);
  const uint8_t px[6] = {0, 128, 255, 51, 102, 204};
  std::copy(px, px + 6, img.pixels.begin());
  std::vector<float> out(6, -99.f);
  to_normalized_chw(img, out.data());
  std::vector<double> expected(6);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 2; ++i)
      expected[size_t(c * 2 + i)] = (px[i * 3 + c] / 255.0 - kImageNetMean[c]) / kImageNetStd[c];
  CHECK(max_rel_error(std::vector<double>(out.begin(), out.end()), expected) < 1e-5);
  CHECK(out[0] == doctest::Approx(-0.485 / 0.229).epsilon(1e-6));      // R of pixel 0 = 0
  CHECK(out[5] == doctest::Approx((0.8 - 0.406) / 0.225).epsilon(1e-6));  // B of pixel 1 = 204 = 0.8 * 255

  const float mean[3] = {0.5f, 0.5f, 0.5f}, stddev[3] = {0.5f, 0.25f, 1.0f};
  to_normalized_chw(img, out.data(), mean, stddev);
  CHECK(out[0] == doctest::Approx(-1.0));            // (0 - 0.5) / 0.5
  CHECK(out[3] == doctest::Approx((0.4 - 0.5) / 0.25));  // G of pixel 1 = 102 = 0.4 * 255
  CHECK(out[4] == doctest::Approx(0.5));             // (1 - 0.5) / 1
  const float zero_std[3] = {1, 0, 1};
  CHECK_ERROR_MENTIONS(to_normalized_chw(img, out.data(), mean, zero_std), "std", "positive");
}

TEST_CASE("images_to_batch: shape, per-image values, resizing when needed") {
  const Image a = pattern_image(4, 4);
  const Image b = pattern_image(2, 3);
  const Tensor batch = images_to_batch({a, b}, 4);
  REQUIRE(batch.shape() == Shape{2, 3, 4, 4});
  CHECK(batch.dtype() == DType::Float32);
  const std::vector<float> v = batch.to_vector<float>();

  std::vector<float> first(48), second(48);
  to_normalized_chw(a, first.data());
  to_normalized_chw(resize_bilinear(b, 4, 4), second.data());
  CHECK(std::equal(first.begin(), first.end(), v.begin()));
  CHECK(std::equal(second.begin(), second.end(), v.begin() + 48));
  // One element by hand: image 0, channel 2 (blue), row 3, column 1.
  CHECK(batch.at({0, 2, 3, 1}) == doctest::Approx((pattern(3, 1, 2) / 255.0 - 0.406) / 0.225).epsilon(1e-5));

  CHECK_ERROR_MENTIONS(images_to_batch({}, 4), "images_to_batch", "no images");
  CHECK_ERROR_MENTIONS(images_to_batch({a}, 0), "images_to_batch", "positive");
}

// ============================================================== augmentations

TEST_CASE("flips and quarter turns are exact permutations") {
  const Image src = pattern_image(2, 3);
  const Image h = flip_horizontal(src);
  const Image v = flip_vertical(src);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      for (int c = 0; c < 3; ++c) {
        CHECK(h.at(y, x, c) == src.at(y, 2 - x, c));
        CHECK(v.at(y, x, c) == src.at(1 - y, x, c));
      }
  CHECK(flip_horizontal(h) == src);
  CHECK(flip_vertical(v) == src);

  // One counter-clockwise turn of [[a b c], [d e f]] is [[c f], [b e], [a d]].
  const Image g = grey_image({{1, 2, 3}, {4, 5, 6}});
  const Image r1 = rotate90(g, 1);
  REQUIRE(r1.height == 3);
  REQUIRE(r1.width == 2);
  CHECK(channel(r1, 0) == std::vector<int>{3, 6, 2, 5, 1, 4});
  CHECK(channel(rotate90(g, 3), 0) == std::vector<int>{4, 1, 5, 2, 6, 3});  // clockwise
  CHECK(channel(rotate90(g, 2), 0) == std::vector<int>{6, 5, 4, 3, 2, 1});
  CHECK(rotate90(src, -1) == rotate90(src, 3));
  CHECK(rotate90(src, 2) == flip_vertical(flip_horizontal(src)));
  CHECK(rotate90(rotate90(rotate90(rotate90(src, 1), 1), 1), 1) == src);
  CHECK(rotate90(src, 4) == src);
}

TEST_CASE("random flips and rotations: probabilities, seeds, square-only rotation") {
  const Image sq = pattern_image(5, 5);
  Generator g0(1);
  CHECK(random_horizontal_flip(sq, g0, 0.0) == sq);
  CHECK(random_horizontal_flip(sq, g0, 1.0) == flip_horizontal(sq));
  CHECK(random_vertical_flip(sq, g0, 0.0) == sq);
  CHECK(random_vertical_flip(sq, g0, 1.0) == flip_vertical(sq));

  // Same seed, same sequence; over many draws every outcome appears.
  Generator a(7), b(7);
  std::set<int> seen_turns;
  int flips = 0;
  for (int i = 0; i < 64; ++i) {
    const Image ra = random_rotate90(sq, a);
    CHECK(ra == random_rotate90(sq, b));
    for (int k = 0; k < 4; ++k)
      if (ra == rotate90(sq, k)) seen_turns.insert(k);
    const Image fa = random_horizontal_flip(sq, a);
    CHECK(fa == random_horizontal_flip(sq, b));
    flips += fa == flip_horizontal(sq);
  }
  CHECK(seen_turns.size() == 4);
  CHECK(flips > 10);
  CHECK(flips < 54);
  CHECK_ERROR_MENTIONS(random_rotate90(pattern_image(2, 3), a), "random_rotate90", "square", "2x3");
}

TEST_CASE("random resized crop: box sampling, sizes, determinism and the fallback") {
  Generator g(3);
  for (int i = 0; i < 200; ++i) {
    const CropBox box = sample_resized_crop_box(40, 60, g);
    CAPTURE(i);
    REQUIRE(box.height > 0);
    REQUIRE(box.width > 0);
    CHECK(box.top >= 0);
    CHECK(box.left >= 0);
    CHECK(box.top + box.height <= 40);
    CHECK(box.left + box.width <= 60);
    // Rounding each side moves area and ratio a little off the sampled values.
    const double area = double(box.height) * box.width / (40.0 * 60.0);
    CHECK(area >= 0.08 * 0.8);
    CHECK(area <= 1.0);
  }

  // Impossible boxes (larger than the image) force the centre-crop fallback: first to the
  // nearest allowed aspect ratio, or the whole image when its own ratio is allowed.
  CHECK(sample_resized_crop_box(20, 20, g, {0.5, 1.0, 10.0, 10.0}) == CropBox{9, 0, 2, 20});    // h = 20 / 10
  CHECK(sample_resized_crop_box(30, 10, g, {2.0, 3.0, 0.75, 1.333}) == CropBox{8, 0, 13, 10});  // h = round(10 / 0.75)
  CHECK(sample_resized_crop_box(10, 40, g, {2.0, 3.0, 0.75, 2.0}) == CropBox{0, 10, 10, 20});   // w = 10 * 2
  CHECK(sample_resized_crop_box(12, 14, g, {2.0, 3.0, 0.75, 4.0 / 3.0}) == CropBox{0, 0, 12, 14});

  const Image src = pattern_image(20, 24);
  Generator a(11), b(11);
  for (int i = 0; i < 10; ++i) {
    const Image ca = random_resized_crop(src, a, 16, 16);
    CHECK(ca.height == 16);
    CHECK(ca.width == 16);
    CHECK(ca == random_resized_crop(src, b, 16, 16));
  }
  // Scale and ratio pinned to 1 on a square image: the whole image, just resized.
  const Image sq = pattern_image(8, 8);
  CHECK(random_resized_crop(sq, a, 8, 8, {1.0, 1.0, 1.0, 1.0}) == sq);
  CHECK(random_resized_crop(sq, a, 4, 4, {1.0, 1.0, 1.0, 1.0}) == resize_bilinear(sq, 4, 4));
  CHECK_ERROR_MENTIONS(sample_resized_crop_box(8, 8, a, {0.5, 0.2, 1.0, 1.0}), "scale");
}

TEST_CASE("colour adjustments: known values, identities and clamping") {
  const Image src = grey_image({{0, 100}, {200, 255}});
  CHECK(adjust_brightness(src, 1.0f) == src);
  CHECK(adjust_contrast(src, 1.0f) == src);
  CHECK(adjust_saturation(src, 1.0f) == src);
  CHECK(channel(adjust_brightness(src, 2.0f), 0) == std::vector<int>{0, 200, 255, 255});  // clamped
  CHECK(channel(adjust_brightness(src, 0.5f), 1) == std::vector<int>{0, 50, 100, 128});   // 127.5 rounds up

  // Contrast 0: every pixel becomes the mean grey (0 + 100 + 200 + 255) / 4 = 138.75 -> 139.
  CHECK(adjust_contrast(src, 0.0f) == constant_image(2, 2, 139, 139, 139));
  // Contrast 2: 2x - 138.75 -> -138.75, 61.25, 261.25, 371.25 -> 0, 61, 255, 255.
  CHECK(channel(adjust_contrast(src, 2.0f), 2) == std::vector<int>{0, 61, 255, 255});

  // Saturation 0: each pixel becomes its grey level 0.299 R + 0.587 G + 0.114 B.
  const Image red = constant_image(1, 1, 200, 100, 50);  // grey = 59.8 + 58.7 + 5.7 = 124.2
  CHECK(adjust_saturation(red, 0.0f) == constant_image(1, 1, 124, 124, 124));
  // Saturation 2: 2x - 124.2 -> 275.8, 75.8, -24.2 -> 255, 76, 0.
  CHECK(adjust_saturation(red, 2.0f) == constant_image(1, 1, 255, 76, 0));
  CHECK(adjust_saturation(src, 0.3f) == src);  // grey pixels have nothing to desaturate
}

TEST_CASE("color_jitter: zero strength is the identity; draws stay in range and follow the seed") {
  const Image src = pattern_image(9, 11);
  Generator g(5);
  const Generator::State before = g.state();
  CHECK(color_jitter(src, g, 0, 0, 0) == src);
  CHECK(g.state() == before);  // nothing drawn

  Generator a(21), b(21);
  int changed = 0;
  for (int i = 0; i < 20; ++i) {
    const Image ja = color_jitter(src, a, 0.4f, 0.4f, 0.4f);
    CHECK(ja == color_jitter(src, b, 0.4f, 0.4f, 0.4f));
    CHECK(ja.height == 9);
    CHECK(ja.width == 11);
    changed += ja != src;
  }
  CHECK(changed >= 18);

  // Brightness alone scales every pixel by one factor in [0.7, 1.3].
  const Image mid = constant_image(3, 3, 100, 50, 180);
  for (int i = 0; i < 20; ++i) {
    const Image j = color_jitter(mid, a, 0.3f, 0, 0);
    CHECK(j.at(0, 0, 0) >= 70);
    CHECK(j.at(0, 0, 0) <= 130);
    CHECK(j.at(0, 0, 1) >= 35);
    CHECK(j.at(0, 0, 1) <= 65);
    CHECK(std::abs(j.at(0, 0, 0) - 2.0 * j.at(0, 0, 1)) <= 1.0);  // one factor for every channel
    CHECK(j == constant_image(3, 3, j.at(0, 0, 0), j.at(0, 0, 1), j.at(0, 0, 2)));
  }
  // A strong jitter still yields valid images of the same size; a negative strength is refused.
  const Image wild = color_jitter(src, a, 3.0f, 3.0f, 3.0f);
  CHECK(wild.pixels.size() == src.pixels.size());
  CHECK_ERROR_MENTIONS(color_jitter(src, a, -0.1f, 0, 0), "color_jitter", ">= 0");
}
