// ImageFolder: a dataset laid out as one sub-folder per class (torchvision's ImageFolder,
// and the layout of EuroSAT's 2750/ folder):
//
//     root/AnnualCrop/AnnualCrop_1.jpg
//     root/Forest/Forest_1.jpg ...
//
// Rules of the scan:
// - classes are the non-hidden sub-folders of root, sorted by byte-wise name; a class's label
//   is its position in that list;
// - a class's images are the files below its folder, at any depth, for which is_image_path
//   holds (.jpg .jpeg .png .bmp, any case); they are sorted by their path inside the class
//   folder, byte-wise (so "x_10.jpg" comes before "x_2.jpg");
// - other files (in class folders or directly in root) are not samples; each is listed in
//   `skipped` as "path: reason" so the caller can report them;
// - hidden entries (names starting with '.', such as macOS "._x.jpg" forks) are ignored
//   silently, folders included;
// - a class folder without a single image is an error naming it: a class with no examples
//   cannot be learned, and silently dropping it would shift every later label.
// The scan only lists files; decoding (and so detecting corrupt images) is ImageCache's job.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace minidl {

struct Sample {
  std::string path;  // root joined with the class folder and the file: "<root>/<Class>/<file>"
                     // (absolute exactly when root was given absolute)
  int64_t label;     // index into ImageFolder::classes
};

struct ImageFolder {
  std::string root;                   // as given to scan_image_folder
  std::vector<std::string> classes;   // sub-folder names, sorted
  std::vector<Sample> samples;        // sorted by (label, path inside the class folder)
  std::vector<std::string> skipped;   // "path: reason" for each non-image file found

  // The sample's path relative to root, always with '/' separators: "<Class>/<file>".
  // This is the form split files store, so they survive moving the dataset.
  std::string relative_path(int64_t sample_index) const;
  // Number of samples of each class (size == classes.size()).
  std::vector<int64_t> class_counts() const;
};

// Scans root as described above. Throws minidl::Error naming the path when root is missing,
// not a folder or unreadable, when it has no class folders, and when a class folder has no
// images.
ImageFolder scan_image_folder(const std::string& root);

}  // namespace minidl
