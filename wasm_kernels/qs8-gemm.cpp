// int8 × int8 → int32 GEMM: reference and WASM SIMD (i32x4.dot_i16x8_s). See kernels.h.
#include <cstring>

#include "kernels.h"
#include "simd.h"

namespace bitlens::kernels {

void qs8_gemm_pack(size_t N, size_t K, const int8_t* W, int8_t* packed) {
    const size_t Kp = qs8_gemm_kp(K);
    for (size_t n = 0; n < N; ++n) {
        std::memcpy(packed + n * Kp, W + n * K, K);
        std::memset(packed + n * Kp + K, 0, Kp - K);
    }
}

void qs8_gemm_ref(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const int8_t* packed, int32_t* C, size_t ldc) {
    const size_t Kp = qs8_gemm_kp(K);
    for (size_t m = 0; m < M; ++m)
        for (size_t n = 0; n < N; ++n) {
            int32_t acc = 0;
            for (size_t k = 0; k < K; ++k) acc += int32_t(A[m * lda + k]) * int32_t(packed[n * Kp + k]);
            C[m * ldc + n] = acc;
        }
}

namespace {
inline int32_t hsum(v128_t v) {
    return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) + wasm_i32x4_extract_lane(v, 2) +
           wasm_i32x4_extract_lane(v, 3);
}
}  // namespace

void qs8_gemm_1x4c8_wasmsimd(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const int8_t* packed, int32_t* C,
                             size_t ldc) {
    const size_t Kp = qs8_gemm_kp(K);
    for (size_t m = 0; m < M; ++m) {
        const int8_t* a = A + m * lda;
        size_t n = 0;
        for (; n + 4 <= N; n += 4) {
            const int8_t* w0 = packed + n * Kp;
            const int8_t *w1 = w0 + Kp, *w2 = w1 + Kp, *w3 = w2 + Kp;
            v128_t acc0 = wasm_i32x4_splat(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
            for (size_t k = 0; k < Kp; k += 8) {
                const v128_t va = wasm_i16x8_load8x8(a + k);
                acc0 = wasm_i32x4_add(acc0, wasm_i32x4_dot_i16x8(va, wasm_i16x8_load8x8(w0 + k)));
                acc1 = wasm_i32x4_add(acc1, wasm_i32x4_dot_i16x8(va, wasm_i16x8_load8x8(w1 + k)));
                acc2 = wasm_i32x4_add(acc2, wasm_i32x4_dot_i16x8(va, wasm_i16x8_load8x8(w2 + k)));
                acc3 = wasm_i32x4_add(acc3, wasm_i32x4_dot_i16x8(va, wasm_i16x8_load8x8(w3 + k)));
            }
            C[m * ldc + n] = hsum(acc0), C[m * ldc + n + 1] = hsum(acc1);
            C[m * ldc + n + 2] = hsum(acc2), C[m * ldc + n + 3] = hsum(acc3);
        }
        for (; n < N; ++n) {
            const int8_t* w = packed + n * Kp;
            v128_t acc = wasm_i32x4_splat(0);
            for (size_t k = 0; k < Kp; k += 8) acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(a + k), wasm_i16x8_load8x8(w + k)));
            C[m * ldc + n] = hsum(acc);
        }
    }
}

}  // namespace bitlens::kernels
