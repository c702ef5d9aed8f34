// ImageFolder scanning on the shipped EuroSAT sample and on hand-made folders: class order,
// labels, skipped files, and the errors for missing roots and empty classes. Also the cache
// and loader's handling of a corrupt JPEG.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "datasets/image_cache.h"
#include "datasets/image_folder.h"
#include "datasets/loader.h"
#include "test_util.h"

using namespace minidl;
namespace fs = std::filesystem;

namespace {

const std::string kSample = std::string(MINIDL_SOURCE_DIR) + "/datasets/eurosat_sample";

// A fresh folder under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path = fs::temp_directory_path() / ("minidl_" + tag + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

void copy_sample(const std::string& rel, const fs::path& to) {
  fs::create_directories(to.parent_path());
  fs::copy_file(kSample + "/" + rel, to, fs::copy_options::overwrite_existing);
}

}  // namespace

TEST_CASE("scan_image_folder: the shipped EuroSAT sample") {
  const ImageFolder f = scan_image_folder(kSample);
  const std::vector<std::string> expected = {"AnnualCrop", "Forest",        "HerbaceousVegetation", "Highway", "Industrial",
                                             "Pasture",    "PermanentCrop", "Residential",          "River",   "SeaLake"};
  CHECK(f.root == kSample);
  CHECK(f.classes == expected);
  REQUIRE(f.samples.size() == 300);
  CHECK(f.class_counts() == std::vector<int64_t>(10, 30));
  for (size_t i = 0; i < f.samples.size(); ++i) CHECK(f.samples[i].label == int64_t(i / 30));
  // Sorted by file name, byte-wise: _1, _10, _11, ...
  CHECK(f.samples[0].path == kSample + "/AnnualCrop/AnnualCrop_1.jpg");
  CHECK(f.relative_path(1) == "AnnualCrop/AnnualCrop_10.jpg");
  CHECK(f.relative_path(299) == "SeaLake/SeaLake_9.jpg");
  // The README beside the class folders is reported, not taken as a sample.
  REQUIRE(f.skipped.size() == 1);
  CHECK(f.skipped[0] == kSample + "/README.md: not inside a class folder");
  // A trailing slash on root changes nothing about the relative paths.
  CHECK(scan_image_folder(kSample + "/").relative_path(31) == "Forest/Forest_10.jpg");
}

TEST_CASE("scan_image_folder: skipped files, hidden entries, nested images") {
  TempDir t("scan");
  copy_sample("Forest/Forest_1.jpg", t.path / "b_class" / "x.jpg");
  copy_sample("Forest/Forest_2.jpg", t.path / "b_class" / "deeper" / "y.JPG");
  write_file(t.path / "b_class" / "notes.txt", "not an image");
  write_file(t.path / "b_class" / ".hidden.jpg", "ignored");
  write_file(t.path / ".cache" / "z.jpg", "ignored: hidden folders are not classes");
  copy_sample("River/River_1.jpg", t.path / "a_class" / "r.jpg");
  copy_sample("River/River_2.jpg", t.path / "a_class" / ".hidden_dir" / "s.jpg");

  const ImageFolder f = scan_image_folder(t.path.string());
  CHECK(f.classes == std::vector<std::string>{"a_class", "b_class"});
  REQUIRE(f.samples.size() == 3);
  CHECK(f.relative_path(0) == "a_class/r.jpg");
  CHECK(f.relative_path(1) == "b_class/deeper/y.JPG");  // "deeper/..." sorts before "x.jpg"
  CHECK(f.relative_path(2) == "b_class/x.jpg");
  CHECK(f.samples[0].label == 0);
  CHECK(f.samples[2].label == 1);
  REQUIRE(f.skipped.size() == 1);
  CHECK(f.skipped[0].find("notes.txt: not an image") != std::string::npos);
}

TEST_CASE("scan_image_folder: errors name the folder at fault") {
  TempDir t("errors");
  CHECK_ERROR_MENTIONS(scan_image_folder((t.path / "nowhere").string()), "nowhere", "does not exist");

  write_file(t.path / "file.jpg", "x");
  CHECK_ERROR_MENTIONS(scan_image_folder((t.path / "file.jpg").string()), "file.jpg", "not a folder");
  const std::string root = t.path.string();
  CHECK_ERROR_MENTIONS(scan_image_folder(root), root.c_str(), "no class folders");

  copy_sample("Forest/Forest_1.jpg", t.path / "Forest" / "f.jpg");
  fs::create_directories(t.path / "EmptyClass");
  CHECK_ERROR_MENTIONS(scan_image_folder(t.path.string()), "EmptyClass", "has no images");
  // Only non-images (or only hidden files) is still no images.
  write_file(t.path / "EmptyClass" / "readme.txt", "x");
  write_file(t.path / "EmptyClass" / ".x.jpg", "x");
  CHECK_ERROR_MENTIONS(scan_image_folder(t.path.string()), "EmptyClass", "has no images");
}

TEST_CASE("a corrupt JPEG: the cache records it, the loader drops it") {
  TempDir t("corrupt");
  for (int i = 1; i <= 3; ++i) copy_sample("Pasture/Pasture_" + std::to_string(i) + ".jpg", t.path / "P" / ("p" + std::to_string(i) + ".jpg"));
  copy_sample("Highway/Highway_1.jpg", t.path / "H" / "h1.jpg");
  // A JPEG signature followed by garbage, and a real JPEG cut in half.
  write_file(t.path / "H" / "h2_corrupt.jpg", std::string("\xFF\xD8\xFF\xE0", 4) + std::string(200, '\x42'));
  {
    std::ifstream in(kSample + "/Highway/Highway_2.jpg", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    write_file(t.path / "H" / "h3_truncated.jpg", bytes.substr(0, bytes.size() / 2));
  }

  const ImageFolder f = scan_image_folder(t.path.string());
  REQUIRE(f.samples.size() == 6);  // the scan only lists; decoding judges
  const ImageCache cache(f, {}, 2, /*progress=*/false);
  REQUIRE(cache.failures().size() == 2);
  CHECK(cache.failures()[0].rfind(f.samples[1].path + ": ", 0) == 0);  // "path: reason"
  CHECK(cache.failures()[1].rfind(f.samples[2].path + ": ", 0) == 0);
  CHECK_FALSE(cache.has(1));
  CHECK(cache.failed(1));
  CHECK(cache.has(0));
  CHECK_FALSE(cache.failed(0));
  CHECK(cache.size() == 4);
  CHECK(cache.bytes() == 4u * 64 * 64 * 3);
  CHECK_ERROR_MENTIONS(cache.image(1), "not cached");

  LoaderOptions opt;
  opt.batch_size = 4;
  DataLoader loader(cache, f, {0, 1, 2, 3, 4, 5}, opt);
  CHECK(loader.size() == 4);
  CHECK(loader.dropped() == 2);
  CHECK(loader.indices() == std::vector<int64_t>{0, 3, 4, 5});
  loader.start_epoch(0);
  const auto b = loader.next();
  REQUIRE(b);
  CHECK(b->indices == std::vector<int64_t>{0, 3, 4, 5});
  CHECK(b->labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 1, 1});
  CHECK_FALSE(loader.next());

  // An index the cache was never asked for is a caller's mistake, not a decode failure.
  const ImageCache partial(f, {0, 3}, 1, false);
  CHECK_ERROR_MENTIONS(DataLoader(partial, f, {0, 4}, opt), "sample 4", "never given to the ImageCache");
  CHECK_ERROR_MENTIONS(ImageCache(f, {7}, 1, false), "sample index 7");
}
