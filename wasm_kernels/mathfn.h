// BitLens' own float math functions, so the native build and the WASM build (two different libms)
// give the same bits. Each function exists as a scalar `bl_*f(float)` and a 4-lane
// `bl_*f_x4(v128_t)` that perform EXACTLY the same IEEE-754 binary32 operations in the same order
// on every lane: only +, -, *, /, comparisons, selects, bit casts and 32-bit integer ops. There is no
// rounding-mode dependence beyond the default round-to-nearest-even, no FMA (we compile with
// -ffp-contract=off; WASM has no fused ops without relaxed SIMD), and no call into a libm. Integer
// rounding uses the magic-number trick (x + 1.5·2^23 rounds to an integer under
// round-half-even), which is one float add in both forms, so no float->int conversion is needed.
//
// Accuracy (checked in tests/cpp/test_kernels.cpp against double-precision std:: functions):
//   bl_expf : relative error ≤ 2e-7 on [-87, 88]; 0 for x < -87.33654 (= ln FLT_MIN, no subnormal
//             results); +inf for x > 88.7228 (= ln FLT_MAX); NaN -> NaN.
//   bl_tanhf: absolute error ≤ 1e-6 (measured ~1e-7) on all of R; NaN -> NaN.
// (erf for GELU is a rational approximation inside wasm_kernels/gelu.cpp.)
#pragma once

#include <cstdint>

#include "simd.h"

namespace bitlens {

namespace mathfn_detail {
// --- expf: Cody-Waite reduction x = n·ln2 + r, |r| ≤ ln2/2, e^x = 2^n · e^r.
constexpr float kExpHi = 88.8f;         // clamp: e^88.8 > FLT_MAX, so the result still overflows to +inf
constexpr float kExpLo = -87.33654f;    // ln(FLT_MIN); below this the result is flushed to +0
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kMagic = 12582912.0f;   // 1.5·2^23: t = y + kMagic rounds y to an integer (half-even)
constexpr uint32_t kMagicBits = 0x4B400000u;
constexpr float kLn2Hi = 0.693359375f;  // split ln2 (Cephes): n·kLn2Hi is exact for |n| < 2^9
constexpr float kLn2Lo = -2.12194440e-4f;
// e^r ≈ 1 + r + r²·P(r), P of degree 5 (Cephes expf minimax), relative error ~1e-7 on |r| ≤ ln2/2.
constexpr float kExpP0 = 1.9875691500e-4f;
constexpr float kExpP1 = 1.3981999507e-3f;
constexpr float kExpP2 = 8.3334519073e-3f;
constexpr float kExpP3 = 4.1665795894e-2f;
constexpr float kExpP4 = 1.6666665459e-1f;
constexpr float kExpP5 = 5.0000001201e-1f;

// --- tanhf. |x| < 0.625: x + x³·P(x²), P of degree 4 (Cephes tanhf minimax, relative error
// ~1e-7). |x| ≥ 0.625: tanh(|x|) = 1 - 2/(e^{2|x|} + 1) with |x| clamped to 10 (tanh(10) rounds to 1),
// sign copied from x.
constexpr float kTanhSplit = 0.625f;
constexpr float kTanhClamp = 10.0f;
constexpr float kTanhP0 = -5.70498872745e-3f;
constexpr float kTanhP1 = 2.06390887954e-2f;
constexpr float kTanhP2 = -5.37397155531e-2f;
constexpr float kTanhP3 = 1.33314422036e-1f;
constexpr float kTanhP4 = -3.33332819422e-1f;

constexpr uint32_t kSignMask = 0x80000000u;
constexpr uint32_t kAbsMask = 0x7FFFFFFFu;
}  // namespace mathfn_detail

// ---------------------------------------------------------------------------------------------
// e^x
inline float bl_expf(float x) {
  using namespace mathfn_detail;
  float xc = x > kExpHi ? kExpHi : x;  // NaN compares false and passes through
  xc = xc < kExpLo ? kExpLo : xc;
  const float t = xc * kLog2e + kMagic;
  const int32_t n = static_cast<int32_t>(bl_f2u(t) - kMagicBits);  // round-half-even(x·log2e)
  const float fn = t - kMagic;
  float r = xc - fn * kLn2Hi;
  r = r - fn * kLn2Lo;
  const float z = r * r;
  float p = kExpP0 * r + kExpP1;
  p = p * r + kExpP2;
  p = p * r + kExpP3;
  p = p * r + kExpP4;
  p = p * r + kExpP5;
  p = p * z + r + 1.0f;
  // 2^n = 2^n1 · 2^n2 with both factors normal for n in [-126, 128]; p·2^n1 is exact.
  const int32_t n1 = n >> 1;  // arithmetic shift, as wasm i32x4.shr_s
  const int32_t n2 = n - n1;
  const float s1 = bl_u2f(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = bl_u2f(static_cast<uint32_t>(n2 + 127) << 23);
  const float y = (p * s1) * s2;
  return x < kExpLo ? 0.0f : y;
}

namespace mathfn_detail {
// e^xc = p · 2^n for xc already clamped to [kExpLo, kExpHi]: the range reduction and polynomial shared
// by the two vector forms below (the same operations as bl_expf's).
struct ExpParts {
  v128_t p, n;
};
inline ExpParts expf_parts_x4(v128_t xc) {
  const v128_t magic = wasm_f32x4_splat(kMagic);
  const v128_t t = wasm_f32x4_add(wasm_f32x4_mul(xc, wasm_f32x4_splat(kLog2e)), magic);
  const v128_t n = wasm_i32x4_sub(t, wasm_i32x4_splat(static_cast<int32_t>(kMagicBits)));
  const v128_t fn = wasm_f32x4_sub(t, magic);
  v128_t r = wasm_f32x4_sub(xc, wasm_f32x4_mul(fn, wasm_f32x4_splat(kLn2Hi)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(fn, wasm_f32x4_splat(kLn2Lo)));
  const v128_t z = wasm_f32x4_mul(r, r);
  v128_t p = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_splat(kExpP0), r), wasm_f32x4_splat(kExpP1));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(kExpP2));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(kExpP3));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(kExpP4));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(kExpP5));
  p = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(p, z), r), wasm_f32x4_splat(1.0f));
  return {p, n};
}
}  // namespace mathfn_detail

inline v128_t bl_expf_x4(v128_t x) {
  using namespace mathfn_detail;
  const v128_t hi = wasm_f32x4_splat(kExpHi);
  const v128_t lo = wasm_f32x4_splat(kExpLo);
  // The clamps as pmin/pmax (pmin(a, b) = b < a ? b : a, pmax(a, b) = a < b ? b : a): one instruction each where a
  // compare and a select took two or more, the same values, NaN passing through as in bl_expf.
  const v128_t xc = wasm_f32x4_pmax(wasm_f32x4_pmin(x, hi), lo);
  const ExpParts e = expf_parts_x4(xc);
  const v128_t n1 = wasm_i32x4_shr(e.n, 1);
  const v128_t n2 = wasm_i32x4_sub(e.n, n1);
  const v128_t bias = wasm_i32x4_splat(127);
  const v128_t s1 = wasm_i32x4_shl(wasm_i32x4_add(n1, bias), 23);
  const v128_t s2 = wasm_i32x4_shl(wasm_i32x4_add(n2, bias), 23);
  const v128_t y = wasm_f32x4_mul(wasm_f32x4_mul(e.p, s1), s2);
  return wasm_v128_andnot(y, wasm_f32x4_lt(x, lo));  // x < kExpLo ? 0 : y
}

// bl_expf_x4 for inputs known to be ≤ 88 (or NaN), as softmax's x − max ≤ 0: bit-identical there
// (tested). The upper clamp is a no-op for them, and n ≤ 127 makes 2^n a normal float, so p·2^n is one
// rounding of the same exact product that (p·2^n1)·2^n2 rounds once (p·2^n1 is exact). 6 operations
// fewer than bl_expf_x4.
inline v128_t bl_expf_x4_le88(v128_t x) {
  using namespace mathfn_detail;
  const v128_t lo = wasm_f32x4_splat(kExpLo);
  const ExpParts e = expf_parts_x4(wasm_f32x4_pmax(x, lo));  // x < lo ? lo : x (NaN passes)
  const v128_t s = wasm_i32x4_shl(wasm_i32x4_add(e.n, wasm_i32x4_splat(127)), 23);
  return wasm_v128_andnot(wasm_f32x4_mul(e.p, s), wasm_f32x4_lt(x, lo));  // x < kExpLo ? 0 : p·2^n
}

// ---------------------------------------------------------------------------------------------
// tanh(x)
inline float bl_tanhf(float x) {
  using namespace mathfn_detail;
  const float a = bl_u2f(bl_f2u(x) & kAbsMask);
  // small branch: x + ((P(z)·z)·x)
  const float z = x * x;
  float p = kTanhP0 * z + kTanhP1;
  p = p * z + kTanhP2;
  p = p * z + kTanhP3;
  p = p * z + kTanhP4;
  const float small = p * z * x + x;
  // large branch: 1 - 2/(e^{2a} + 1), sign of x
  const float ac = a > kTanhClamp ? kTanhClamp : a;
  const float e = bl_expf(ac + ac);
  const float big = 1.0f - 2.0f / (e + 1.0f);
  const float big_signed = bl_u2f(bl_f2u(big) | (bl_f2u(x) & kSignMask));
  return a < kTanhSplit ? small : big_signed;
}

inline v128_t bl_tanhf_x4(v128_t x) {
  using namespace mathfn_detail;
  const v128_t a = wasm_v128_and(x, wasm_i32x4_splat(static_cast<int32_t>(kAbsMask)));
  const v128_t z = wasm_f32x4_mul(x, x);
  v128_t p = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_splat(kTanhP0), z), wasm_f32x4_splat(kTanhP1));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, z), wasm_f32x4_splat(kTanhP2));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, z), wasm_f32x4_splat(kTanhP3));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, z), wasm_f32x4_splat(kTanhP4));
  const v128_t small = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(p, z), x), x);
  const v128_t clamp = wasm_f32x4_splat(kTanhClamp);
  const v128_t ac = wasm_v128_bitselect(clamp, a, wasm_f32x4_gt(a, clamp));
  const v128_t e = bl_expf_x4(wasm_f32x4_add(ac, ac));
  const v128_t one = wasm_f32x4_splat(1.0f);
  const v128_t big = wasm_f32x4_sub(one, wasm_f32x4_div(wasm_f32x4_splat(2.0f), wasm_f32x4_add(e, one)));
  const v128_t big_signed =
      wasm_v128_or(big, wasm_v128_and(x, wasm_i32x4_splat(static_cast<int32_t>(kSignMask))));
  return wasm_v128_bitselect(small, big_signed, wasm_f32x4_lt(a, wasm_f32x4_splat(kTanhSplit)));
}

}  // namespace bitlens
