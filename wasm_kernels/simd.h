// One source of SIMD code for both targets: the `*_wasmsimd` kernels are written against the
// WebAssembly SIMD128 intrinsics (wasm_simd128.h). Under Emscripten (`-msimd128`) they compile to
// real WASM SIMD; natively they compile through SIMDe's portable implementation of the same
// intrinsics (we build with -msse4.2 -ffp-contract=off, so every f32x4 add/mul/div/sqrt is one IEEE
// operation per lane, exactly as in WASM).
//
// Rules for code including this header, so results are bit-identical across targets:
//  * Only lane-wise IEEE ops (add, sub, mul, div, sqrt), comparisons, bit selects, bit casts and
//    integer ops. No relaxed SIMD (not available in Emscripten 3.1.6 / clang 14 anyway), no FMA.
//  * SIMDe does not provide the `wasm_*_const*` helpers: use wasm_f32x4_splat / wasm_i32x4_splat.
//  * Avoid wasm_f32x4_min/max on values that may be NaN or signed zeros unless the scalar reference
//    mirrors the exact WASM semantics; prefer compare + wasm_v128_bitselect (or pmin/pmax, whose
//    scalar twins are `b < a ? b : a` / `a < b ? b : a`).
#pragma once

// (Emscripten without -msimd128 — bitlens-core-scalar.wasm, for engines without SIMD — takes SIMDe's portable code.)
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#else
#ifndef SIMDE_ENABLE_NATIVE_ALIASES
#define SIMDE_ENABLE_NATIVE_ALIASES
#endif
#include <simde/wasm/simd128.h>
#endif

#include <cstdint>
#include <cstring>

namespace bitlens {

// Scalar bit casts used by the scalar twins of the vector math (mirror wasm_*x4 reinterpretation).
inline uint32_t bl_f2u(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bl_u2f(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace bitlens
