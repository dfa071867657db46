// Labeled image sets: IDX files (MNIST / Fashion-MNIST, gzipped or raw), an image folder with one
// subfolder per class, or encoded images given as bytes (the WASM module's path).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "image.h"
#include "size_limits.h"

namespace bitlens {

struct Dataset {
    std::vector<Image8> images;      // decoded, original size and channels
    std::vector<int> labels;         // class index into class_names
    std::vector<std::string> class_names;  // names as found (folder names, or "0".."9" for IDX)
    size_t size() const { return images.size(); }
};

// Gunzips when the bytes start with the gzip magic (1f 8b); otherwise returns them unchanged.
std::vector<uint8_t> maybe_gunzip(const std::vector<uint8_t>& bytes, const std::string& what);
std::vector<uint8_t> read_file_bytes(const std::string& path);

// IDX: images (magic 0x00000803, u8, dims N×H×W) + labels (magic 0x00000801, N), each raw or gzipped.
// Errors name the file and the field (magic, count mismatch, truncated data). Images are 1-channel W×H;
// class_names are "0".."9" (more if a label exceeds 9).
Dataset load_idx(const std::vector<uint8_t>& images_bytes, const std::vector<uint8_t>& labels_bytes,
                 const std::string& images_name, const std::string& labels_name);
Dataset load_idx_files(const std::string& images_path, const std::string& labels_path);

// A folder with one subfolder per class, classes sorted by name; files with image extensions
// (png, jpg, jpeg, bmp, gif; case-insensitive) sorted by name. Errors: not a directory, no class
// folders, no images, an image that does not decode (names the file).
Dataset load_image_folder(const std::string& dir);

// The file extensions an image folder's images have (lower case, with the dot: ".png", ".jpg", ".jpeg", ".bmp",
// ".gif"); load_image_folder reads these and nothing else, and the page and the package take the list from here.
const std::vector<std::string>& image_extensions();
// Whether `name` ends in one of image_extensions(), case-insensitive ("a/B.PNG": yes, "a.png.txt": no).
bool has_image_extension_name(const std::string& name);

// Encoded images with their class names (e.g. from a zip or a browser folder picker). Their decoded bytes
// together may not pass max_decoded_bytes (an error naming the file where they do; tests pass a smaller one).
Dataset load_encoded(const std::vector<std::vector<uint8_t>>& files, const std::vector<std::string>& file_names,
                     const std::vector<std::string>& class_of_file,
                     int64_t max_decoded_bytes = limits::kDatasetBytes);

// Loads a dataset from a path: a directory containing *-images-idx3-ubyte[.gz] + *-labels-idx1-ubyte[.gz]
// pair → IDX; an IDX images file (labels from `labels_path`, or the sibling file with "images-idx3"
// replaced by "labels-idx1") → IDX; any other directory → image folder. A directory holding several IDX sets
// (e.g. train-* and t10k-*) uses the test set (name starting "t10k" or containing "test") if exactly one is
// named so, otherwise it is an error. Not available in the WASM build (no filesystem): path-based functions
// (read_file_bytes, load_idx_files, load_image_folder, load_dataset, load_image_file) throw there.
Dataset load_dataset(const std::string& path, const std::string& labels_path = "");

}  // namespace bitlens
