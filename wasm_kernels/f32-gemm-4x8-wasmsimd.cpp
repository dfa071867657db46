// f32 GEMM micro-kernel, register tile 4 rows × 8 columns (8 f32x4 accumulators).
// Per k: one load32_splat of A[m][k] per row, two loads of the packed panel row, then for every
// accumulator a rounded multiply followed by a rounded add — exactly the operation order of
// f32_gemm_ref (acc starts at +0, k ascending, bias added last), so the results are bit-identical.
#include "kernels.h"
#include "simd.h"

namespace bitlens::kernels {
namespace {

constexpr size_t NR = F32_GEMM_NR;

// Stores the first nr (1..8) lanes of the 8-wide row (lo, hi) to c.
inline void store_row(float* c, v128_t lo, v128_t hi, size_t nr) {
  if (nr == 8) {
    wasm_v128_store(c, lo);
    wasm_v128_store(c + 4, hi);
    return;
  }
  v128_t v = lo;
  if (nr >= 4) {
    wasm_v128_store(c, lo);
    v = hi;
    c += 4;
    nr -= 4;
  }
  if (nr >= 2) {
    wasm_v128_store64_lane(c, v, 0);
    v = wasm_i32x4_shuffle(v, v, 2, 3, 2, 3);
    c += 2;
    nr -= 2;
  }
  if (nr != 0) wasm_v128_store32_lane(c, v, 0);
}

// One MR × 8 tile: C[0..MR, 0..nr) = A[0..MR, :] · panel (+ bias[0..nr)).
template <int MR>
inline void tile(size_t K, const float* A, size_t lda, const float* w, const float* bias, float* C,
                 size_t ldc, size_t nr) {
  v128_t lo[MR], hi[MR];
  const float* a[MR];
  for (int i = 0; i < MR; ++i) {
    lo[i] = wasm_f32x4_splat(0.0f);
    hi[i] = wasm_f32x4_splat(0.0f);
    a[i] = A + i * lda;
  }
  for (size_t k = 0; k < K; ++k) {
    const v128_t w0 = wasm_v128_load(w);
    const v128_t w1 = wasm_v128_load(w + 4);
    w += NR;
    for (int i = 0; i < MR; ++i) {
      const v128_t av = wasm_v128_load32_splat(a[i] + k);
      lo[i] = wasm_f32x4_add(lo[i], wasm_f32x4_mul(av, w0));
      hi[i] = wasm_f32x4_add(hi[i], wasm_f32x4_mul(av, w1));
    }
  }
  if (bias) {
    v128_t b0, b1;
    if (nr == NR) {
      b0 = wasm_v128_load(bias);
      b1 = wasm_v128_load(bias + 4);
    } else {
      float tmp[NR] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
      for (size_t j = 0; j < nr; ++j) tmp[j] = bias[j];
      b0 = wasm_v128_load(tmp);
      b1 = wasm_v128_load(tmp + 4);
    }
    for (int i = 0; i < MR; ++i) {
      lo[i] = wasm_f32x4_add(lo[i], b0);
      hi[i] = wasm_f32x4_add(hi[i], b1);
    }
  }
  for (int i = 0; i < MR; ++i) store_row(C + i * ldc, lo[i], hi[i], nr);
}

}  // namespace

void f32_gemm_4x8_wasmsimd(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* packed,
                           const float* bias, float* C, size_t ldc) {
  for (size_t n0 = 0; n0 < N; n0 += NR) {
    const size_t nr = N - n0 < NR ? N - n0 : NR;
    const float* w = packed + (n0 / NR) * K * NR;
    const float* b = bias ? bias + n0 : nullptr;
    size_t m = 0;
    for (; m + 4 <= M; m += 4) tile<4>(K, A + m * lda, lda, w, b, C + m * ldc + n0, ldc, nr);
    switch (M - m) {
      case 3: tile<3>(K, A + m * lda, lda, w, b, C + m * ldc + n0, ldc, nr); break;
      case 2: tile<2>(K, A + m * lda, lda, w, b, C + m * ldc + n0, ldc, nr); break;
      case 1: tile<1>(K, A + m * lda, lda, w, b, C + m * ldc + n0, ldc, nr); break;
      default: break;
    }
  }
}

}  // namespace bitlens::kernels
