// Unpacked f32 GEMMs of the backward pass, portable scalar references (see kernels.h for the contract):
//   nn: C[M,N] = A[M,K] · B[K,N];   tn: C[M,N] = A[K,M]ᵀ · B[K,N]
// acc = +0; for k ascending: acc = acc + a·b (rounded multiply, then rounded add: -ffp-contract=off);
// C[m][n] = accumulate ? C[m][n] + acc : acc.
#include "kernels.h"

namespace bitlens::kernels {

void f32_gemm_nn_ref(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* B, size_t ldb, float* C,
                     size_t ldc, bool accumulate) {
  for (size_t m = 0; m < M; ++m) {
    const float* a = A + m * lda;
    for (size_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (size_t k = 0; k < K; ++k) {
        const float prod = a[k] * B[k * ldb + n];
        acc = acc + prod;
      }
      float* c = C + m * ldc + n;
      *c = accumulate ? *c + acc : acc;
    }
  }
}

void f32_gemm_tn_ref(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* B, size_t ldb, float* C,
                     size_t ldc, bool accumulate) {
  for (size_t m = 0; m < M; ++m) {
    for (size_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (size_t k = 0; k < K; ++k) {
        const float prod = A[k * lda + m] * B[k * ldb + n];
        acc = acc + prod;
      }
      float* c = C + m * ldc + n;
      *c = accumulate ? *c + acc : acc;
    }
  }
}

}  // namespace bitlens::kernels
