// int8 × int8 → int32 GEMM: reference and WASM SIMD (i32x4.dot_i16x8_s). See kernels.h.
#include <cstring>
#include <vector>

#include "kernels.h"
#include "simd.h"

namespace bitlens::kernels {

void qs8_gemm_pack(size_t N, size_t K, const int8_t* W, int16_t* packed) {
    const size_t Kp = qs8_gemm_kp(K);
    for (size_t n = 0; n < N; ++n)
        for (size_t k = 0; k < Kp; ++k) packed[n * Kp + k] = k < K ? int16_t(W[n * K + k]) : int16_t(0);
}

void qs8_gemm_pack_strided(size_t N, size_t K, const int8_t* src, size_t stride_n, size_t stride_k, int16_t* packed,
                           int32_t* sums) {
    const size_t Kp = qs8_gemm_kp(K);
    for (size_t n = 0; n < N; ++n) {
        int16_t* row = packed + n * Kp;
        const int8_t* w = src + n * stride_n;
        if (stride_k == 1)  // contiguous rows (a head's k codes): a loop the compiler vectorizes
            for (size_t k = 0; k < K; ++k) row[k] = int16_t(w[k]);
        else
            for (size_t k = 0; k < K; ++k) row[k] = int16_t(w[k * stride_k]);
        for (size_t k = K; k < Kp; ++k) row[k] = 0;
        if (sums) {
            int32_t s = 0;
            for (size_t k = 0; k < K; ++k) s += row[k];
            sums[n] = s;
        }
    }
}

void qs8_gemm_ref(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const int16_t* packed, int32_t* C, size_t ldc) {
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
// The four sums of a0..a3 as one vector: (Σa0, Σa1, Σa2, Σa3). Integer adds, so any order is exact.
inline v128_t hsum4(v128_t a0, v128_t a1, v128_t a2, v128_t a3) {
    const v128_t s01 = wasm_i32x4_add(wasm_i32x4_shuffle(a0, a1, 0, 2, 4, 6), wasm_i32x4_shuffle(a0, a1, 1, 3, 5, 7));
    const v128_t s23 = wasm_i32x4_add(wasm_i32x4_shuffle(a2, a3, 0, 2, 4, 6), wasm_i32x4_shuffle(a2, a3, 1, 3, 5, 7));
    return wasm_i32x4_add(wasm_i32x4_shuffle(s01, s23, 0, 2, 4, 6), wasm_i32x4_shuffle(s01, s23, 1, 3, 5, 7));
}

// MR rows × NR columns (MR·NR accumulators): each 8-value slice of a weight row (int16) is loaded once
// per MR rows, each slice of an A row (int8, widened by the load) once per NR columns. (Measured in WASM
// on the DeiT-tiny shapes with int8 weights: 2×4 runs at 55–60 GOP/s, 1×4 (the first kernel) at 41–46,
// 3×4 and 4×4 spill accumulators, unrolling K does not help; int16 weights lift 2×4 to 63–75, while
// int16 activations too, or blocking M for L1, add at most 3% more.)
template <int MR, int NR>
inline void tile_c8(size_t Kp, const int8_t* A, size_t lda, const int16_t* w, int32_t* C, size_t ldc) {
    v128_t acc[MR][NR];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) acc[i][j] = wasm_i32x4_splat(0);
    for (size_t k = 0; k < Kp; k += 8) {
        v128_t va[MR];
        for (int i = 0; i < MR; ++i) va[i] = wasm_i16x8_load8x8(A + i * lda + k);
        for (int j = 0; j < NR; ++j) {
            const v128_t vw = wasm_v128_load(w + j * Kp + k);
            for (int i = 0; i < MR; ++i) acc[i][j] = wasm_i32x4_add(acc[i][j], wasm_i32x4_dot_i16x8(va[i], vw));
        }
    }
    if constexpr (NR % 4 == 0) {
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; j += 4) wasm_v128_store(C + i * ldc + j, hsum4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]));
    } else {
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) C[i * ldc + j] = hsum(acc[i][j]);
    }
}

template <int MR, int NR>
void gemm_c8(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const int16_t* packed, int32_t* C, size_t ldc) {
    const size_t Kp = qs8_gemm_kp(K);
    const size_t Nb = N / NR * NR;
    size_t m = 0;
    for (; m + MR <= M; m += MR)
        for (size_t n = 0; n < Nb; n += NR) tile_c8<MR, NR>(Kp, A + m * lda, lda, packed + n * Kp, C + m * ldc + n, ldc);
    for (; m < M; ++m)
        for (size_t n = 0; n < Nb; n += NR) tile_c8<1, NR>(Kp, A + m * lda, lda, packed + n * Kp, C + m * ldc + n, ldc);
    // Columns beyond the last multiple of NR: one at a time.
    for (size_t n = Nb; n < N; ++n) {
        const int16_t* w = packed + n * Kp;
        for (size_t r = 0; r < M; ++r) {
            v128_t acc = wasm_i32x4_splat(0);
            for (size_t k = 0; k < Kp; k += 8)
                acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(A + r * lda + k), wasm_v128_load(w + k)));
            C[r * ldc + n] = hsum(acc);
        }
    }
}

}  // namespace

void qs8_gemm_2x4c8_wasmsimd(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const int16_t* packed, int32_t* C,
                             size_t ldc) {
    gemm_c8<2, 4>(M, N, K, A, lda, packed, C, ldc);
}

// ---------------------------------------------------------------------------------------------
// int8 activations × int4 weights.

void qs4_gemm_pack(size_t N, size_t K, const int8_t* W, uint8_t* packed) {
    const size_t Kp = qs4_gemm_kp(K);
    for (size_t n = 0; n < N; ++n) {
        uint8_t* row = packed + n * Kp / 2;
        for (size_t b = 0; b < Kp; b += QS4_GEMM_KB)
            for (size_t j = 0; j < QS4_GEMM_KB / 2; ++j) {
                const size_t k0 = b + j, k1 = b + j + QS4_GEMM_KB / 2;
                const int lo = k0 < K ? W[n * K + k0] : 0, hi = k1 < K ? W[n * K + k1] : 0;
                row[(b + 2 * j) / 2] = uint8_t((lo & 15) | ((hi & 15) << 4));
            }
    }
}

namespace {
// Weight k of a packed int4 row, sign-extended.
inline int32_t qs4_at(const uint8_t* row, size_t k) {
    const size_t b = k / QS4_GEMM_KB * QS4_GEMM_KB, j = k - b;
    const uint8_t byte = row[(b + 2 * (j % (QS4_GEMM_KB / 2))) / 2];
    const int nib = j < QS4_GEMM_KB / 2 ? (byte & 15) : (byte >> 4);
    return (nib ^ 8) - 8;
}
}  // namespace

void qs8_qc4w_gemm_ref(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const uint8_t* packed, int32_t* C, size_t ldc) {
    const size_t Kp = qs4_gemm_kp(K);
    for (size_t m = 0; m < M; ++m)
        for (size_t n = 0; n < N; ++n) {
            int32_t acc = 0;
            for (size_t k = 0; k < K; ++k) acc += int32_t(A[m * lda + k]) * qs4_at(packed + n * Kp / 2, k);
            C[m * ldc + n] = acc;
        }
}

namespace {

// Unpacks rows [n, n + nr) of packed int4 weights into int16 rows of Kp (the qs8 layout).
inline void unpack_rows(const uint8_t* packed, size_t Kp, size_t n, size_t nr, int16_t* out) {
    for (size_t j = 0; j < nr; ++j) {
        const uint8_t* row = packed + (n + j) * (Kp / 2);
        int16_t* o = out + j * Kp;
        for (size_t k = 0; k < Kp; k += QS4_GEMM_KB) {
            const v128_t v = wasm_v128_load64_zero(row + k / 2);
            const v128_t mask = wasm_i8x16_splat(15), eight = wasm_i8x16_splat(8);
            const v128_t lo = wasm_i8x16_sub(wasm_v128_xor(wasm_v128_and(v, mask), eight), eight);
            const v128_t hi = wasm_i8x16_sub(wasm_v128_xor(wasm_u8x16_shr(v, 4), eight), eight);
            wasm_v128_store(o + k, wasm_i16x8_extend_low_i8x16(lo));
            wasm_v128_store(o + k + 8, wasm_i16x8_extend_low_i8x16(hi));
        }
    }
}

}  // namespace

void qs8_qc4w_gemm_2x4c8_wasmsimd(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const uint8_t* packed, int32_t* C,
                                  size_t ldc) {
    // Each 4-column panel is unpacked once into an int16 buffer that stays in L1, then every pair of
    // rows runs the int8 2×4 tile over it: the unpacking is paid once per panel, not once per row pair.
    const size_t Kp = qs4_gemm_kp(K), Nb = N / 4 * 4;
    thread_local std::vector<int16_t> panel;
    panel.resize(4 * Kp);
    for (size_t n = 0; n < Nb; n += 4) {
        unpack_rows(packed, Kp, n, 4, panel.data());
        size_t m = 0;
        for (; m + 2 <= M; m += 2) tile_c8<2, 4>(Kp, A + m * lda, lda, panel.data(), C + m * ldc + n, ldc);
        for (; m < M; ++m) tile_c8<1, 4>(Kp, A + m * lda, lda, panel.data(), C + m * ldc + n, ldc);
    }
    // Columns beyond the last multiple of 4: one at a time.
    for (size_t n = Nb; n < N; ++n) {
        unpack_rows(packed, Kp, n, 1, panel.data());
        for (size_t r = 0; r < M; ++r) {
            v128_t acc = wasm_i32x4_splat(0);
            for (size_t k = 0; k < Kp; k += 8)
                acc = wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(A + r * lda + k), wasm_v128_load(panel.data() + k)));
            C[r * ldc + n] = hsum(acc);
        }
    }
}

}  // namespace bitlens::kernels
