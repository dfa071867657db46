// Limits on sizes read from files and callers we do not control (issue 17, "limits before allocation").
// Every size below is checked before anything is allocated, multiplied or converted to int; exceeding one
// is an error naming the file, the field, its value and the limit. Each is generous for real models and
// datasets (the largest named beside it) and small enough that one input cannot ask for gigabytes.
// (Named size_limits.h, not limits.h: src/base is an include directory, and <climits> includes <limits.h>.)
#pragma once
#include <cstdint>

namespace bitlens::limits {

// Images (PNG, JPEG, BMP, GIF headers; IDX dimensions), checked before decoding.
constexpr int64_t kImageSide = 16384;             // either side (photos of 50 MP are ~8700 wide)
constexpr int64_t kImagePixels = 8192LL * 8192;   // width × height: 64 MP, ≤ 256 MB decoded at 4 channels
// Resize targets (preprocessor size / shortest_edge, timm's size / crop_pct, a shortest-edge resize's long side).
constexpr int64_t kResizeSide = 4096;             // models read ≤ 1024 (SAM), DeiT/ViT 224-518 → 256-592
// Config dimensions (config.json, model_args, or inferred from tensors).
constexpr int64_t kModelImageSide = 4096;         // image_size / img_size / input_size
constexpr int64_t kPatches = 65536;               // patch positions (a 4096² image of 16² patches)
constexpr int64_t kHidden = 16384;                // hidden_size / embed_dim (ViT-Huge 1280, ViT-22B 6144)
constexpr int64_t kDepth = 256;                   // layers (ViT-Huge 32, ViT-22B 48)
constexpr int64_t kHeads = 256;                   // attention heads (ViT-Huge 16, ViT-22B 48)
constexpr int64_t kPatch = 1024;                  // patch size (ViTs use 8-32)
constexpr int64_t kChannels = 16;                 // input channels (1 grey, 3 RGB, 4 RGBA)
constexpr int64_t kMlp = 65536;                   // MLP width (ViT-Huge 5120, ViT-22B 24576)
constexpr int64_t kClasses = 1 << 20;             // classes (ImageNet-21k: 21,843)
// Datasets.
constexpr int64_t kDatasetImages = 2000000;       // images in one IDX file or folder (ImageNet-1k train: 1.28M)
constexpr int64_t kDecompressedBytes = 1LL << 30; // a gzip member's decompressed size (Fashion-MNIST train: 47 MB)
constexpr int64_t kDatasetBytes = 1LL << 32;      // decoded pixels of a folder's or a list's images together: the
                                                  // WebAssembly heap's maximum (10,000 ImageNet photos: ~4 GB)

}  // namespace bitlens::limits
