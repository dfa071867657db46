// Deterministic image corruptions (Gaussian noise, Gaussian blur, brightness, contrast) at severities
// 1–5, on 8-bit HWC images, for calibration-shift and evaluation-shift studies.
//
// Every corruption is computed in integer arithmetic only (no floating point, no libm), so native and
// WASM produce identical bytes. Severities follow Hendrycks & Dietterich's CIFAR-10-C parameters (their
// 32×32 version of ImageNet-C, used as-is on 28×28 images); on a [0, 1] pixel scale:
//
//   severity                    1      2      3      4      5
//   noise: σ of N(0, σ²)       0.04   0.06   0.08   0.09   0.10   x + σ·z, z from the Irwin–Hall sum of
//                                                                 12 uniforms − 6 (mean 0, variance 1)
//   blur: Gaussian σ (px)      0.4    0.6    0.7    0.8    1.0    separable kernel, 12-bit integer weights
//                                                                 (table in corrupt.cpp), borders replicated
//   brightness: + c            0.05   0.10   0.15   0.20   0.30   + round(255·c) = 13, 26, 38, 51, 77
//                                                                 (ImageNet-C adds c to HSV value; for grey
//                                                                 images that is the pixel; here every channel)
//   contrast: factor c         0.75   0.50   0.40   0.30   0.15   mean + c·(x − mean), mean over all pixels
//                                                                 and channels of the image
//
// Results are rounded half up (noise: half away from zero) and clamped to [0, 255].
#pragma once
#include <cstdint>
#include <string>

#include "image.h"

namespace bitlens {

enum class CorruptionType { None, Noise, Blur, Brightness, Contrast };

struct Corruption {
    CorruptionType type = CorruptionType::None;
    int severity = 0;  // 1–5 (0 with None)
    bool active() const { return type != CorruptionType::None; }
    std::string name() const;  // "noise:3", or "none"
};

const char* corruption_type_name(CorruptionType t);  // "none", "noise", "blur", "brightness", "contrast"
// "noise:3", "blur:2", "brightness:1", "contrast:5" (also "gaussian_noise", "gaussian_blur"); "none" or "".
// Throws std::runtime_error naming the accepted types, or the 1–5 range.
Corruption parse_corruption(const std::string& s);

// Returns the corrupted image (same size and channels). `seed` drives the noise (ignored otherwise).
// Throws std::runtime_error for a severity outside 1–5.
Image8 corrupt(const Image8& img, const Corruption& c, uint64_t seed = 0);

}  // namespace bitlens
