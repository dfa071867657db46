// Unpacked nn / tn f32 GEMMs of the backward pass, WASM SIMD, register tile 4 rows × 8 columns
// (8 f32x4 accumulators), the micro-kernel of f32-gemm-4x8-wasmsimd.cpp reading B in place:
//   per k: two loads of B[k][n0..n0+8), one load32_splat of A's value per row
//          (nn: A[m][k]; tn: A[k][m]), then for every accumulator a rounded multiply and a rounded add.
// That is f32_gemm_{nn,tn}_ref's order (acc = +0, k ascending, C + acc last), so results are bit-identical.
#include "kernels.h"
#include "simd.h"

namespace bitlens::kernels {
namespace {

constexpr size_t NR = 8;

// Loads the first nr (1..8) floats of p as an 8-wide row (lo, hi), the rest zero.
inline void load_row(const float* p, size_t nr, v128_t& lo, v128_t& hi) {
  float tmp[NR] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  for (size_t j = 0; j < nr; ++j) tmp[j] = p[j];
  lo = wasm_v128_load(tmp);
  hi = wasm_v128_load(tmp + 4);
}

// Stores the first nr (1..8) lanes of the 8-wide row (lo, hi) to c.
inline void store_row(float* c, v128_t lo, v128_t hi, size_t nr) {
  if (nr == NR) {
    wasm_v128_store(c, lo);
    wasm_v128_store(c + 4, hi);
    return;
  }
  float tmp[NR];
  wasm_v128_store(tmp, lo);
  wasm_v128_store(tmp + 4, hi);
  for (size_t j = 0; j < nr; ++j) c[j] = tmp[j];
}

// Cache blocking: C is computed in blocks of MB × NB, K in slices of KC. Within a slice every 8-column
// panel of B (KC rows) is reused by the MB/4 row tiles, and the slice of A (KC × MB, 32 KB) stays in L1/L2
// across the NB/8 panels. Between slices the accumulators of a block wait in `part` (16 KB on the stack):
// stored and reloaded as floats, they are exactly the values one pass over K would hold, so the order is
// unchanged. Without the K slices, tn on 64×192×3200 (dW = dYᵀ·X over a batch of tokens) ran at 28
// GFLOP/s in WASM (43 with them), nn at 38 (43); the other shapes are unaffected. Measured alternatives that did not help: packing each B slice into contiguous
// panels (as the forward's pack; B rows are read in place here), KC 256/512, MB or NB 16–512.
constexpr size_t MB = 64, NB = 64, KC = 128;

// One MR × 8 tile over kn values of k: acc = init ? init (the 8 lanes of part) : +0; then per k, acc +=
// a(i, k) · B[k][0..nr). The A value of row i at step k is a[i][k * astep] (nn: a[i] = &A[m + i][k0],
// astep = 1; tn: a[i] = &A[k0][m + i], astep = lda). FULL: nr == 8, B rows loaded directly; otherwise
// through a zero-padded copy (nothing read past column nr). Output: `last` ? C[0..MR, 0..nr) =
// (accumulate ? C + acc : acc) : part = acc (all 8 lanes).
template <int MR, bool FULL>
inline void tile(size_t kn, const float* const* a, size_t astep, const float* b, size_t ldb, size_t nr, float* part,
                 bool init, bool last, float* C, size_t ldc, bool accumulate) {
  v128_t lo[MR], hi[MR];
  const float* ap[MR];
  for (int i = 0; i < MR; ++i) {
    if (init) {
      lo[i] = wasm_v128_load(part + i * NB);
      hi[i] = wasm_v128_load(part + i * NB + 4);
    } else {
      lo[i] = wasm_f32x4_splat(0.0f);
      hi[i] = wasm_f32x4_splat(0.0f);
    }
    ap[i] = a[i];
  }
  for (size_t k = 0; k < kn; ++k) {
    v128_t b0, b1;
    if (FULL) {
      b0 = wasm_v128_load(b);
      b1 = wasm_v128_load(b + 4);
    } else {
      load_row(b, nr, b0, b1);
    }
    b += ldb;
    for (int i = 0; i < MR; ++i) {
      const v128_t av = wasm_v128_load32_splat(ap[i]);
      ap[i] += astep;
      lo[i] = wasm_f32x4_add(lo[i], wasm_f32x4_mul(av, b0));
      hi[i] = wasm_f32x4_add(hi[i], wasm_f32x4_mul(av, b1));
    }
  }
  if (!last) {
    for (int i = 0; i < MR; ++i) {
      wasm_v128_store(part + i * NB, lo[i]);
      wasm_v128_store(part + i * NB + 4, hi[i]);
    }
    return;
  }
  for (int i = 0; i < MR; ++i) {
    float* c = C + i * ldc;
    if (accumulate) {
      v128_t c0, c1;
      if (FULL) {
        c0 = wasm_v128_load(c);
        c1 = wasm_v128_load(c + 4);
      } else {
        load_row(c, nr, c0, c1);
      }
      lo[i] = wasm_f32x4_add(c0, lo[i]);
      hi[i] = wasm_f32x4_add(c1, hi[i]);
    }
    store_row(c, lo[i], hi[i], nr);
  }
}

template <int MR>
inline void tile_any(size_t kn, const float* const* a, size_t astep, const float* b, size_t ldb, size_t nr, float* part,
                     bool init, bool last, float* C, size_t ldc, bool accumulate) {
  if (nr == NR)
    tile<MR, true>(kn, a, astep, b, ldb, nr, part, init, last, C, ldc, accumulate);
  else
    tile<MR, false>(kn, a, astep, b, ldb, nr, part, init, last, C, ldc, accumulate);
}

// C[M,N] (+)= Σ_k a(m, k) · B[k][n] with a(m, k) = A[m * arow + k * astep] (nn: arow = lda, astep = 1;
// tn: arow = 1, astep = lda).
void gemm(size_t M, size_t N, size_t K, const float* A, size_t arow, size_t astep, const float* B, size_t ldb, float* C,
          size_t ldc, bool accumulate) {
  alignas(16) float part[MB * NB];
  for (size_t mb = 0; mb < M; mb += MB) {
    const size_t me = M - mb < MB ? M : mb + MB;
    for (size_t nb = 0; nb < N; nb += NB) {
      const size_t ne = N - nb < NB ? N : nb + NB;
      for (size_t k0 = 0;; k0 += KC) {  // runs once for K = 0 (C = accumulate ? C + 0 : +0)
        const bool init = k0 != 0, last = K - k0 <= KC;
        const size_t kn = last ? K - k0 : KC;
        for (size_t n0 = nb; n0 < ne; n0 += NR) {
          const size_t nr = ne - n0 < NR ? ne - n0 : NR;
          const float* b = B + k0 * ldb + n0;
          for (size_t m = mb; m < me;) {
            const size_t mr = me - m < 4 ? me - m : 4;
            const float* a[4];
            for (size_t i = 0; i < mr; ++i) a[i] = A + (m + i) * arow + k0 * astep;
            float* part_t = part + (m - mb) * NB + (n0 - nb);
            float* c = C + m * ldc + n0;
            switch (mr) {
              case 4: tile_any<4>(kn, a, astep, b, ldb, nr, part_t, init, last, c, ldc, accumulate); break;
              case 3: tile_any<3>(kn, a, astep, b, ldb, nr, part_t, init, last, c, ldc, accumulate); break;
              case 2: tile_any<2>(kn, a, astep, b, ldb, nr, part_t, init, last, c, ldc, accumulate); break;
              default: tile_any<1>(kn, a, astep, b, ldb, nr, part_t, init, last, c, ldc, accumulate); break;
            }
            m += mr;
          }
        }
        if (last) break;
      }
    }
  }
}

}  // namespace

void f32_gemm_nn_4x8_wasmsimd(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* B, size_t ldb,
                              float* C, size_t ldc, bool accumulate) {
  gemm(M, N, K, A, lda, 1, B, ldb, C, ldc, accumulate);
}

void f32_gemm_tn_4x8_wasmsimd(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* B, size_t ldb,
                              float* C, size_t ldc, bool accumulate) {
  gemm(M, N, K, A, 1, lda, B, ldb, C, ldc, accumulate);
}

}  // namespace bitlens::kernels
