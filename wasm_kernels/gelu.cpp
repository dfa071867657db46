// GELU in place, reference and WASM SIMD, in the exact (erf) and tanh forms:
//   exact: y = (0.5·x) · (1 + E(x)),  E(x) = erf(x/√2) ≈ x·P(x²)/Q(x²) on |x| ≤ 5.5, then clamped to ±1
//   tanh : y = (0.5·x) · (1 + bl_tanhf(√(2/π) · (x + 0.044715·((x·x)·x))))
// E is a rational approximation of degree 11/10 fitted for this kernel (Loeb/Lawson iteration in double
// over [0, 5.5], coefficients rounded to float: wasm_kernels/tools/fit_gelu_erf.py prints them; the form
// XNNPACK's f32-vgelu "rational_12_10" uses):
// |E − erf(x/√2)| ≤ 4e-7 evaluated in float in this order, and GELU stays within 1e-6 of the double
// formula (tested, as for the tanh form), at ~35 operations and one division a vector where the erf it
// replaces (Cephes polynomial below 1, a Numerical Recipes erfc fit with an exp above) cost ~70 and a
// division: GELU was 10% of DeiT-tiny's forward pass (6.8 → 2.0 ms).
// Backward (f32_gelu_bwd, f32_gelu_tanh_bwd): dx = dy · d, d the derivative of the forward's own formula
// (dx is written after dy and x are read, so it may alias dy):
//   exact: e = E(x) as above (same clamps); k = (x · (1/√(2π))) · bl_expf((x·x) · −0.5);
//          k = |x| ≥ 5.5 ? 0 : k  (beyond the clamp the forward is exactly x or −0: d = 1 or 0, also at ±inf);
//          d = 0.5 · (1 + e) + k
//   tanh : x2 = x·x; u = √(2/π) · (x + 0.044715·(x2·x)) (the forward's u); t = bl_tanhf(u);
//          xc = clamp(x, ±100) (pmin/pmax); du = √(2/π) · (1 + (3·0.044715) · (xc·xc)); s = 1 − t·t;
//          d = 0.5 · (1 + t) + ((0.5 · xc) · s) · du
//          (for |x| ≥ 100, t = ±1 exactly so s = 0: the clamp changes no finite result, it only keeps
//          du finite so that d is 1 or 0 up to ±inf instead of 0·inf = NaN)
// 3·0.044715 is the float product 3.0f · 0.044715f. The vector exp is bl_expf_x4_le88 (its argument is
// ≤ 0), bit-identical to bl_expf there. Measured against central differences of the formulas in double
// with these coefficients: worst 1.6e-6 relative to max(1, d) (tested at 5e-6, kGeluBwdTol).
// The SIMD kernels process 4 lanes at a time with the same operations in the same order and finish the
// tail with the scalar formula, so they match the references bit for bit. Clamps are written as
// "c < x ? c : x" in both forms (wasm f32x4.pmin/pmax), so a NaN input passes through to a NaN output.
#include "kernels.h"
#include "mathfn.h"
#include "simd.h"

namespace bitlens::kernels {
namespace {
constexpr float kSqrt2OverPi = 0.79788456080286536f;
constexpr float kGeluC = 0.044715f;

// |x| ≥ 5.5: E = ±1 exactly (erf(5.5/√2) = 1 − 6e-8 rounds to 1), so that GELU of a large negative x is
// −0, not x times the approximation's last-bit error.
constexpr float kGeluClamp = 5.5f;
constexpr uint32_t kSign = 0x80000000u, kOneBits = 0x3F800000u;
constexpr float kP0 = 7.9788446426e-01f, kP1 = 6.7376807332e-02f, kP2 = 9.3333953992e-03f, kP3 = 3.3427093877e-04f,
                kP4 = 1.2677490304e-05f, kP5 = 4.5719410480e-08f;
constexpr float kQ1 = 2.5111031532e-01f, kQ2 = 2.8550649062e-02f, kQ3 = 1.8747417489e-03f, kQ4 = 7.3100985901e-05f,
                kQ5 = 1.1997843785e-06f;

// E(x), the erf(x/√2) of the exact form.
inline float gelu_e(float x) {
  float xc = kGeluClamp < x ? kGeluClamp : x;   // pmin(x, c)
  xc = xc < -kGeluClamp ? -kGeluClamp : xc;    // pmax(x, -c)
  const float t = xc * xc;
  float p = kP5 * t + kP4;
  p = p * t + kP3;
  p = p * t + kP2;
  p = p * t + kP1;
  p = p * t + kP0;
  float q = kQ5 * t + kQ4;
  q = q * t + kQ3;
  q = q * t + kQ2;
  q = q * t + kQ1;
  q = q * t + 1.0f;
  float e = (xc * p) / q;
  e = 1.0f < e ? 1.0f : e;
  e = e < -1.0f ? -1.0f : e;
  const uint32_t xb = bl_f2u(x);
  const float one = bl_u2f((xb & kSign) | kOneBits);  // ±1 with the sign of x
  e = bl_u2f(xb & ~kSign) >= kGeluClamp ? one : e;    // exactly ±1 beyond the clamp (NaN: false)
  return e;
}
inline float gelu_erf(float x) { return (0.5f * x) * (1.0f + gelu_e(x)); }
inline v128_t gelu_e_x4(v128_t x) {
  const v128_t c = wasm_f32x4_splat(kGeluClamp), nc = wasm_f32x4_splat(-kGeluClamp);
  const v128_t xc = wasm_f32x4_pmax(wasm_f32x4_pmin(x, c), nc);
  const v128_t t = wasm_f32x4_mul(xc, xc);
  v128_t p = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_splat(kP5), t), wasm_f32x4_splat(kP4));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, t), wasm_f32x4_splat(kP3));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, t), wasm_f32x4_splat(kP2));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, t), wasm_f32x4_splat(kP1));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, t), wasm_f32x4_splat(kP0));
  v128_t q = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_splat(kQ5), t), wasm_f32x4_splat(kQ4));
  q = wasm_f32x4_add(wasm_f32x4_mul(q, t), wasm_f32x4_splat(kQ3));
  q = wasm_f32x4_add(wasm_f32x4_mul(q, t), wasm_f32x4_splat(kQ2));
  q = wasm_f32x4_add(wasm_f32x4_mul(q, t), wasm_f32x4_splat(kQ1));
  q = wasm_f32x4_add(wasm_f32x4_mul(q, t), wasm_f32x4_splat(1.0f));
  v128_t e = wasm_f32x4_div(wasm_f32x4_mul(xc, p), q);
  e = wasm_f32x4_pmax(wasm_f32x4_pmin(e, wasm_f32x4_splat(1.0f)), wasm_f32x4_splat(-1.0f));
  const v128_t sign = wasm_i32x4_splat(int32_t(kSign));
  const v128_t one = wasm_v128_or(wasm_v128_and(x, sign), wasm_i32x4_splat(int32_t(kOneBits)));
  return wasm_v128_bitselect(one, e, wasm_f32x4_ge(wasm_v128_andnot(x, sign), c));
}
inline v128_t gelu_erf_x4(v128_t x) {
  return wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_splat(0.5f), x), wasm_f32x4_add(wasm_f32x4_splat(1.0f), gelu_e_x4(x)));
}

inline float gelu_tanh(float x) {
  const float x3 = (x * x) * x;
  const float u = kSqrt2OverPi * (x + kGeluC * x3);
  return (0.5f * x) * (1.0f + bl_tanhf(u));
}
inline v128_t gelu_tanh_x4(v128_t x) {
  const v128_t x3 = wasm_f32x4_mul(wasm_f32x4_mul(x, x), x);
  const v128_t u = wasm_f32x4_mul(wasm_f32x4_splat(kSqrt2OverPi),
                                  wasm_f32x4_add(x, wasm_f32x4_mul(wasm_f32x4_splat(kGeluC), x3)));
  return wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_splat(0.5f), x),
                        wasm_f32x4_add(wasm_f32x4_splat(1.0f), bl_tanhf_x4(u)));
}

// Derivatives (operation order at the top of the file).
constexpr float kInvSqrt2Pi = 0.39894228040143268f;  // 1/√(2π)
constexpr float kGeluC3 = 3.0f * kGeluC;             // d/dx of 0.044715·x³ is (3·0.044715)·x²
constexpr float kGeluTanhXMax = 100.0f;              // x bound in the tanh form's second term (see the top)

inline float gelu_erf_d(float x) {
  const float e = gelu_e(x);
  float k = (x * kInvSqrt2Pi) * bl_expf((x * x) * -0.5f);
  k = bl_u2f(bl_f2u(x) & ~kSign) >= kGeluClamp ? 0.0f : k;  // beyond the clamp the forward is x or −0
  return 0.5f * (1.0f + e) + k;
}
inline float gelu_tanh_d(float x) {
  const float x2 = x * x;
  const float u = kSqrt2OverPi * (x + kGeluC * (x2 * x));
  const float t = bl_tanhf(u);
  float xc = kGeluTanhXMax < x ? kGeluTanhXMax : x;  // pmin(x, c)
  xc = xc < -kGeluTanhXMax ? -kGeluTanhXMax : xc;    // pmax(x, -c)
  const float du = kSqrt2OverPi * (1.0f + kGeluC3 * (xc * xc));
  const float s = 1.0f - t * t;
  return 0.5f * (1.0f + t) + ((0.5f * xc) * s) * du;
}
inline v128_t gelu_erf_d_x4(v128_t x) {
  const v128_t e = gelu_e_x4(x);
  // (x·x)·(−0.5) ≤ 0 or NaN: bl_expf_x4_le88 is bl_expf there, bit for bit.
  v128_t k = wasm_f32x4_mul(wasm_f32x4_mul(x, wasm_f32x4_splat(kInvSqrt2Pi)),
                            bl_expf_x4_le88(wasm_f32x4_mul(wasm_f32x4_mul(x, x), wasm_f32x4_splat(-0.5f))));
  const v128_t beyond = wasm_f32x4_ge(wasm_v128_andnot(x, wasm_i32x4_splat(int32_t(kSign))), wasm_f32x4_splat(kGeluClamp));
  k = wasm_v128_andnot(k, beyond);
  return wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_splat(0.5f), wasm_f32x4_add(wasm_f32x4_splat(1.0f), e)), k);
}
inline v128_t gelu_tanh_d_x4(v128_t x) {
  const v128_t x2 = wasm_f32x4_mul(x, x);
  const v128_t u = wasm_f32x4_mul(wasm_f32x4_splat(kSqrt2OverPi),
                                  wasm_f32x4_add(x, wasm_f32x4_mul(wasm_f32x4_splat(kGeluC), wasm_f32x4_mul(x2, x))));
  const v128_t t = bl_tanhf_x4(u);
  const v128_t xc = wasm_f32x4_pmax(wasm_f32x4_pmin(x, wasm_f32x4_splat(kGeluTanhXMax)), wasm_f32x4_splat(-kGeluTanhXMax));
  const v128_t one = wasm_f32x4_splat(1.0f), half = wasm_f32x4_splat(0.5f);
  const v128_t du = wasm_f32x4_mul(wasm_f32x4_splat(kSqrt2OverPi),
                                   wasm_f32x4_add(one, wasm_f32x4_mul(wasm_f32x4_splat(kGeluC3), wasm_f32x4_mul(xc, xc))));
  const v128_t s = wasm_f32x4_sub(one, wasm_f32x4_mul(t, t));
  return wasm_f32x4_add(wasm_f32x4_mul(half, wasm_f32x4_add(one, t)),
                        wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_mul(half, xc), s), du));
}
}  // namespace

void f32_gelu_ref(size_t n, float* x) {
  for (size_t i = 0; i < n; ++i) x[i] = gelu_erf(x[i]);
}

void f32_gelu_wasmsimd(size_t n, float* x) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(x + i, gelu_erf_x4(wasm_v128_load(x + i)));
  for (; i < n; ++i) x[i] = gelu_erf(x[i]);
}

void f32_gelu_tanh_ref(size_t n, float* x) {
  for (size_t i = 0; i < n; ++i) x[i] = gelu_tanh(x[i]);
}

void f32_gelu_tanh_wasmsimd(size_t n, float* x) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(x + i, gelu_tanh_x4(wasm_v128_load(x + i)));
  for (; i < n; ++i) x[i] = gelu_tanh(x[i]);
}

void f32_gelu_bwd_ref(size_t n, const float* x, const float* dy, float* dx) {
  for (size_t i = 0; i < n; ++i) dx[i] = dy[i] * gelu_erf_d(x[i]);
}

void f32_gelu_bwd_wasmsimd(size_t n, const float* x, const float* dy, float* dx) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    wasm_v128_store(dx + i, wasm_f32x4_mul(wasm_v128_load(dy + i), gelu_erf_d_x4(wasm_v128_load(x + i))));
  for (; i < n; ++i) dx[i] = dy[i] * gelu_erf_d(x[i]);
}

void f32_gelu_tanh_bwd_ref(size_t n, const float* x, const float* dy, float* dx) {
  for (size_t i = 0; i < n; ++i) dx[i] = dy[i] * gelu_tanh_d(x[i]);
}

void f32_gelu_tanh_bwd_wasmsimd(size_t n, const float* x, const float* dy, float* dx) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    wasm_v128_store(dx + i, wasm_f32x4_mul(wasm_v128_load(dy + i), gelu_tanh_d_x4(wasm_v128_load(x + i))));
  for (; i < n; ++i) dx[i] = dy[i] * gelu_tanh_d(x[i]);
}

}  // namespace bitlens::kernels
