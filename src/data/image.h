// Images: decode (stb_image), convert channels, resize like Hugging Face's default (PIL bilinear with
// antialiasing, result rounded to uint8), and normalise into the model's CHW float input.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bitlens {

// An 8-bit image, interleaved HWC.
struct Image8 {
    int width = 0, height = 0, channels = 0;
    std::vector<uint8_t> pixels;  // size width*height*channels
};

// How the model wants its input.
struct Preprocess {
    int size_h = 224, size_w = 224;   // target size (the model's input)
    int channels = 3;                 // model's input channels (1 or 3)
    std::vector<float> mean{0.5f, 0.5f, 0.5f}, std{0.5f, 0.5f, 0.5f};  // per channel, after /255
    std::string resample = "bilinear";  // "bilinear" (PIL 2) | "nearest" (PIL 0) | "bicubic" (PIL 3)
    // The resize before an optional centre crop to size_h × size_w:
    //  * shortest_edge > 0: the shorter side to shortest_edge, the longer to int(shortest_edge·long/short)
    //    (Hugging Face {"shortest_edge"}, torchvision Resize(int) as timm uses it for crop_pct);
    //  * else resize_h × resize_w when set (Hugging Face DeiT: 256×256 then crop 224);
    //  * else straight to size_h × size_w.
    int shortest_edge = 0, resize_h = 0, resize_w = 0;
    bool center_crop = false;
    // Crop offsets: (in − out) / 2 floored (Hugging Face) or rounded half to even (torchvision, timm).
    bool crop_round = false;
};

// What an encoded image's header says, without decoding its pixels: format "PNG", "JPEG", "BMP" or "GIF" ("" when the
// bytes are none of the formats decode_image reads, or their header is unreadable), its size, and its channels as the
// model input sees them (1 for grey, with or without alpha; 3 for colour and palettes).
struct ImageInfo {
    std::string format;
    int width = 0, height = 0, channels = 0;
};
ImageInfo probe_image(const uint8_t* bytes, size_t n);

// Decodes PNG, JPEG, BMP, GIF (first frame) from bytes. `what` names the source in errors.
// Throws std::runtime_error("<what>: cannot decode image: <reason>") on failure.
Image8 decode_image(const uint8_t* bytes, size_t n, const std::string& what);
Image8 load_image_file(const std::string& path);

// Converts to `channels` (1 or 3): grey→RGB by replication, RGB→grey by ITU-R 601-2 luma exactly as PIL
// convert("L"): (19595R + 38470G + 7471B + 0x8000) >> 16 (≈ 0.299R + 0.587G + 0.114B, rounded); alpha dropped.
Image8 convert_channels(const Image8& img, int channels);
// Resizes exactly like PIL's Image.resize((out_w, out_h), resample) on "L"/"RGB" images (bit-identical to
// Pillow 9.4, natively and in WASM): separable, horizontal pass then vertical, filter stretched when shrinking
// (antialias), 22-bit fixed-point weights, rounded and clamped to uint8 after each pass; "nearest" as PIL's
// NEAREST. Same size → returned unchanged. 2/4-channel images are filtered per channel (PIL would premultiply
// alpha). Throws std::runtime_error for an unknown `resample` or a non-positive size. See image.cpp.
Image8 resize_image(const Image8& img, int out_w, int out_h, const std::string& resample);
// The size (width, height) `pp` resizes an in_w × in_h image to before cropping.
std::pair<int, int> resized_size(int in_w, int in_h, const Preprocess& pp);
// The centre out_w × out_h region (offsets as pp.crop_round says); throws when the image is smaller.
Image8 center_crop(const Image8& img, int out_w, int out_h, bool round_half_even);
// Full pipeline to a CHW float tensor of size channels*size_h*size_w:
// convert_channels → resize (skipped when already the right size) → centre crop (when configured) →
// x/255 → (x-mean)/std, all in float32:
// v = (float)p / 255.0f; v = (v - mean[c]) / std[c]  (equal to HF's rescale+normalize and to models/train.py).
// mean/std: one value per channel, or one value for all; with more values than channels the first are used.
std::vector<float> preprocess(const Image8& img, const Preprocess& pp);

}  // namespace bitlens
