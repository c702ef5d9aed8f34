#include "datasets/image_folder.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "datasets/image.h"
#include "tensor/error.h"

namespace minidl {

namespace fs = std::filesystem;

namespace {

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// The images below one class folder, as paths relative to it ('/'-separated), sorted;
// non-image files go to `skipped`.
std::vector<std::string> class_files(const fs::path& dir, std::vector<std::string>& skipped) {
  std::vector<std::string> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec);
  MINIDL_CHECK(!ec, "scan_image_folder: cannot read class folder '", dir.string(), "': ", ec.message());
  for (const fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
    MINIDL_CHECK(!ec, "scan_image_folder: error while reading '", dir.string(), "': ", ec.message());
    const fs::path& p = it->path();
    if (hidden(p)) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory(ec)) continue;
    if (!it->is_regular_file(ec))
      skipped.push_back(p.string() + ": not a regular file");
    else if (!is_image_path(p.string()))
      skipped.push_back(p.string() + ": not an image (extension is not .jpg, .jpeg, .png or .bmp)");
    else
      files.push_back(p.lexically_relative(dir).generic_string());
  }
  MINIDL_CHECK(!ec, "scan_image_folder: error while reading '", dir.string(), "': ", ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

std::string ImageFolder::relative_path(int64_t i) const {
  MINIDL_CHECK(i >= 0 && i < int64_t(samples.size()), "ImageFolder::relative_path: sample ", i,
               " out of range [0, ", samples.size(), ")");
  // Samples are built as root / class / file, so the relative form is the part after root.
  const Sample& s = samples[size_t(i)];
  if (s.label >= 0 && s.label < int64_t(classes.size())) {
    const std::string class_dir = (fs::path(root) / classes[size_t(s.label)]).string();
    if (s.path.size() > class_dir.size() + 1 && s.path.compare(0, class_dir.size(), class_dir) == 0)
      return classes[size_t(s.label)] + "/" + fs::path(s.path.substr(class_dir.size() + 1)).generic_string();
  }
  return fs::path(s.path).lexically_relative(root).generic_string();  // hand-made folders
}

std::vector<int64_t> ImageFolder::class_counts() const {
  std::vector<int64_t> counts(classes.size(), 0);
  for (const Sample& s : samples) {
    MINIDL_CHECK(s.label >= 0 && s.label < int64_t(classes.size()), "ImageFolder: sample '", s.path,
                 "' has label ", s.label, " but there are ", classes.size(), " classes");
    ++counts[size_t(s.label)];
  }
  return counts;
}

ImageFolder scan_image_folder(const std::string& root) {
  std::error_code ec;
  const fs::file_status st = fs::status(root, ec);
  MINIDL_CHECK(fs::exists(st), "scan_image_folder: dataset folder '", root, "' does not exist");
  MINIDL_CHECK(fs::is_directory(st), "scan_image_folder: '", root, "' is not a folder");

  ImageFolder folder;
  folder.root = root;
  fs::directory_iterator it(root, ec);
  MINIDL_CHECK(!ec, "scan_image_folder: cannot read dataset folder '", root, "': ", ec.message());
  for (const fs::directory_iterator end; it != end; it.increment(ec)) {
    MINIDL_CHECK(!ec, "scan_image_folder: error while reading '", root, "': ", ec.message());
    if (hidden(it->path())) continue;
    if (it->is_directory(ec))
      folder.classes.push_back(it->path().filename().string());
    else
      folder.skipped.push_back(it->path().string() + ": not inside a class folder");
  }
  MINIDL_CHECK(!folder.classes.empty(), "scan_image_folder: '", root,
               "' has no class folders (expected one sub-folder of images per class)");
  std::sort(folder.classes.begin(), folder.classes.end());

  for (size_t label = 0; label < folder.classes.size(); ++label) {
    const fs::path dir = fs::path(root) / folder.classes[label];
    const std::vector<std::string> files = class_files(dir, folder.skipped);
    MINIDL_CHECK(!files.empty(), "scan_image_folder: class folder '", dir.string(),
                 "' has no images (a class without examples cannot be learned; remove the folder or add images)");
    for (const std::string& f : files) folder.samples.push_back({(dir / f).string(), int64_t(label)});
  }
  std::sort(folder.skipped.begin(), folder.skipped.end());
  return folder;
}

}  // namespace minidl
