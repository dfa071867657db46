// Unpacked nn / tn f32 GEMMs, WASM SIMD. (Temporarily the references; the SIMD tiles follow.)
#include "kernels.h"
#include "simd.h"

namespace bitlens::kernels {

void f32_gemm_nn_4x8_wasmsimd(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* B, size_t ldb,
                              float* C, size_t ldc, bool accumulate) {
  f32_gemm_nn_ref(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

void f32_gemm_tn_4x8_wasmsimd(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* B, size_t ldb,
                              float* C, size_t ldc, bool accumulate) {
  f32_gemm_tn_ref(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

}  // namespace bitlens::kernels
