// The one translation unit that compiles stb_image's implementation (Debian libstb-dev header
// <stb/stb_image.h>). Everything else includes the header for declarations only.
//
// Only the formats BitLens accepts are compiled in: PNG, JPEG, BMP, GIF. PNG support also pulls in
// stb's zlib/inflate code (STBI_NO_ZLIB must stay undefined), which dataset.cpp reuses for gzip
// (stbi_zlib_decode_noheader_malloc). No HDR / linear-float paths (stbi_loadf is not used).
// The WASM module runs without a filesystem (-sFILESYSTEM=0), so stdio is compiled out there;
// natively stdio stays available (load_image_file reads the bytes itself anyway).
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#ifdef __EMSCRIPTEN__
#define STBI_NO_STDIO
#endif
#define STBI_SUPPORT_ZLIB  // keep the inflate code even if PNG were ever dropped

#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic pop
#endif

#ifdef STBI_NO_ZLIB
#error "dataset.cpp needs stb_image's zlib decoder (maybe_gunzip)"
#endif
