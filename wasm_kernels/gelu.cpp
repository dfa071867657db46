// GELU in place, reference and WASM SIMD, in the exact (erf) and tanh forms:
//   exact: y = (0.5·x) · (1 + bl_erff(x · (1/√2)))
//   tanh : y = (0.5·x) · (1 + bl_tanhf(√(2/π) · (x + 0.044715·((x·x)·x))))
// The SIMD kernels process 4 lanes at a time with the bit-identical *_x4 math functions and
// finish the tail with the scalar formula, so they match the references bit for bit.
#include "kernels.h"
#include "mathfn.h"
#include "simd.h"

namespace bitlens::kernels {
namespace {
constexpr float kRsqrt2 = 0.70710678118654752f;
constexpr float kSqrt2OverPi = 0.79788456080286536f;
constexpr float kGeluC = 0.044715f;

inline float gelu_erf(float x) { return (0.5f * x) * (1.0f + bl_erff(x * kRsqrt2)); }
inline v128_t gelu_erf_x4(v128_t x) {
  const v128_t e = bl_erff_x4(wasm_f32x4_mul(x, wasm_f32x4_splat(kRsqrt2)));
  return wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_splat(0.5f), x), wasm_f32x4_add(wasm_f32x4_splat(1.0f), e));
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

}  // namespace bitlens::kernels
