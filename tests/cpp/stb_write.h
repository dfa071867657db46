// stb_image_write as a static copy in each test file that includes it (PNG/BMP/JPEG encoders for test
// images, and its deflate compressor for gzip test data).
#pragma once
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
// Test-only encoder, not BitLens code: its JPEG bit writer shifts negative ints left (stb_image_write.h:1263,
// `bitBuf <<= 8`), undefined in C++17, so the sanitizer builds (BITLENS_FUZZ, clang) leave UBSan out of it.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((no_sanitize("undefined"))), apply_to = function)
#endif
#include <stb/stb_image_write.h>
#if defined(__clang__)
#pragma clang attribute pop
#endif
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic pop
#endif
