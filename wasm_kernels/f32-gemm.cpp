// f32 GEMM: packing of the right-hand side and the portable scalar reference.
// See kernels.h for the packed layout and the operation order every implementation keeps.
#include <cstring>

#include "kernels.h"

namespace bitlens::kernels {

size_t f32_gemm_packed_floats(size_t N, size_t K) {
  const size_t panels = (N + F32_GEMM_NR - 1) / F32_GEMM_NR;
  return panels * K * F32_GEMM_NR;
}

void f32_gemm_pack(size_t N, size_t K, const float* src, size_t stride_n, size_t stride_k, float* packed) {
  constexpr size_t NR = F32_GEMM_NR;
  for (size_t n0 = 0; n0 < N; n0 += NR) {
    const size_t nr = N - n0 < NR ? N - n0 : NR;
    float* dst = packed + (n0 / NR) * K * NR;
    if (stride_n == 1) {
      // Transposed source (e.g. V in P·V): the 8 columns of one k are contiguous.
      for (size_t k = 0; k < K; ++k) {
        const float* s = src + n0 + k * stride_k;
        float* d = dst + k * NR;
        std::memcpy(d, s, nr * sizeof(float));
        for (size_t j = nr; j < NR; ++j) d[j] = 0.0f;
      }
    } else {
      // Row-major weight (out × in) or any other strides: walk each source row along k.
      for (size_t j = 0; j < NR; ++j) {
        float* d = dst + j;
        if (j < nr) {
          const float* s = src + (n0 + j) * stride_n;
          for (size_t k = 0; k < K; ++k) d[k * NR] = s[k * stride_k];
        } else {
          for (size_t k = 0; k < K; ++k) d[k * NR] = 0.0f;
        }
      }
    }
  }
}

void f32_gemm_ref(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* packed,
                  const float* bias, float* C, size_t ldc) {
  constexpr size_t NR = F32_GEMM_NR;
  for (size_t m = 0; m < M; ++m) {
    const float* a = A + m * lda;
    for (size_t n = 0; n < N; ++n) {
      const float* w = packed + (n / NR) * K * NR + n % NR;
      float acc = 0.0f;
      for (size_t k = 0; k < K; ++k) {
        const float prod = a[k] * w[k * NR];  // rounded multiply ...
        acc = acc + prod;                     // ... then rounded add (never fused: -ffp-contract=off)
      }
      C[m * ldc + n] = bias ? acc + bias[n] : acc;
    }
  }
}

}  // namespace bitlens::kernels
