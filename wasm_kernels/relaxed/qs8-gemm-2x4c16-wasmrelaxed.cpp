// int8 GEMM with relaxed SIMD's i32x4.relaxed_dot_i8x16_i7x16_add: C[M,N] (int32) = A[M,K] · W[N,K]ᵀ, the
// contract of qs8_gemm_ref / qs8_qc4w_gemm_ref (kernels.h) with one more condition: every A code is in [0, 127].
// Then the instruction is exact (its second operand is 7-bit, so signed and unsigned readings agree, and four
// int8 × 7-bit products cannot saturate), and C is the same integer the SIMD128 kernels give.
//
// Built two ways from this one file:
//  * WASM: by clang-19 into a module of its own, web/lib/bitlens-relaxed.wasm (Emscripten 3.1.6's binaryen
//    cannot read relaxed opcodes), no libc, memory imported: the main module's. It must not use memory of its
//    own — no data, no shadow stack — so everything here stays in locals (tests/node/backends.test.mjs
//    checks the binary: imports env.memory only, no data section).
//  * natively, through SIMDe, with the instruction written out lane by lane (SIMDe has no relaxed dot): the
//    doctests hold the tiling against the scalar reference.
//
// Each 4-column panel of W is first widened or narrowed to int8 rows of Kp = 16·⌈K/16⌉ in `panel` (4·Kp bytes,
// the caller's scratch), zero padded, then every pair of A rows runs a 2×4 tile over it: 16 values of K per
// instruction, 8 accumulators. A rows have stride lda ≥ Kp and are readable to Kp (their values past K meet
// zero weights).
#if defined(__wasm__)
#include <wasm_simd128.h>
#define BL_EXPORT(name) extern "C" __attribute__((export_name(#name), visibility("default")))
static inline v128_t bl_dot_i8_i7_add(v128_t w, v128_t a, v128_t acc) { return wasm_i32x4_relaxed_dot_i8x16_i7x16_add(w, a, acc); }
#else
#include "../simd.h"
#define BL_EXPORT(name) extern "C"
// The instruction's result for a second operand in [0, 127]: lane i += Σ_{j<4} w[4i+j]·a[4i+j].
static inline v128_t bl_dot_i8_i7_add(v128_t w, v128_t a, v128_t acc) {
    int8_t wb[16], ab[16];
    int32_t c[4];
    wasm_v128_store(wb, w), wasm_v128_store(ab, a), wasm_v128_store(c, acc);
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) c[i] += int32_t(wb[4 * i + j]) * int32_t(ab[4 * i + j]);
    return wasm_v128_load(c);
}
#endif
#include <stddef.h>
#include <stdint.h>

namespace {

constexpr size_t KB = 16;  // values of K per instruction

// (Σa0, Σa1, Σa2, Σa3) of four accumulators.
inline v128_t hsum4(v128_t a0, v128_t a1, v128_t a2, v128_t a3) {
    const v128_t s01 = wasm_i32x4_add(wasm_i32x4_shuffle(a0, a1, 0, 2, 4, 6), wasm_i32x4_shuffle(a0, a1, 1, 3, 5, 7));
    const v128_t s23 = wasm_i32x4_add(wasm_i32x4_shuffle(a2, a3, 0, 2, 4, 6), wasm_i32x4_shuffle(a2, a3, 1, 3, 5, 7));
    return wasm_i32x4_add(wasm_i32x4_shuffle(s01, s23, 0, 2, 4, 6), wasm_i32x4_shuffle(s01, s23, 1, 3, 5, 7));
}

// C[i][0..nr) of MR rows from the 4-column int8 panel. Columns nr..3 of the panel are zero; only nr are stored.
template <int MR>
inline void tile(size_t Kp, const int8_t* A, size_t lda, const int8_t* w, int32_t* C, size_t ldc, size_t nr) {
    v128_t acc[MR][4];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = wasm_i32x4_splat(0);
    for (size_t k = 0; k < Kp; k += KB) {
        v128_t va[MR];
        for (int i = 0; i < MR; ++i) va[i] = wasm_v128_load(A + i * lda + k);
        for (int j = 0; j < 4; ++j) {
            const v128_t vw = wasm_v128_load(w + j * Kp + k);
            for (int i = 0; i < MR; ++i) acc[i][j] = bl_dot_i8_i7_add(vw, va[i], acc[i][j]);
        }
    }
    for (int i = 0; i < MR; ++i) {
        const v128_t s = hsum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
        int32_t* c = C + i * ldc;
        if (nr == 4) {
            wasm_v128_store(c, s);
        } else {
            c[0] = wasm_i32x4_extract_lane(s, 0);
            if (nr > 1) c[1] = wasm_i32x4_extract_lane(s, 1);
            if (nr > 2) c[2] = wasm_i32x4_extract_lane(s, 2);
        }
    }
}

// A panel column past N: zero weights, so the tile's extra lanes add nothing.
inline void zero_column(int8_t* o, size_t Kp) {
    for (size_t k = 0; k < Kp; k += KB) wasm_v128_store(o + k, wasm_i32x4_splat(0));
}

inline void run_panel(size_t M, size_t Kp, const int8_t* A, size_t lda, const int8_t* panel, int32_t* C, size_t ldc, size_t nr) {
    size_t m = 0;
    for (; m + 2 <= M; m += 2) tile<2>(Kp, A + m * lda, lda, panel, C + m * ldc, ldc, nr);
    if (m < M) tile<1>(Kp, A + m * lda, lda, panel, C + m * ldc, ldc, nr);
}

}  // namespace

// W as qs8_gemm_pack packs it: rows of Kp8 = 8·⌈K/8⌉ int16 values.
BL_EXPORT(bl_qs8_gemm_2x4c16_wasmrelaxed)
void bl_qs8_gemm_2x4c16_wasmrelaxed(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const int16_t* packed, int32_t* C,
                                 size_t ldc, int8_t* panel) {
    const size_t Kp8 = (K + 7) / 8 * 8, Kp = (K + KB - 1) / KB * KB;
    const v128_t zero = wasm_i32x4_splat(0);
    for (size_t n = 0; n < N; n += 4) {
        const size_t nr = N - n < 4 ? N - n : 4;
        for (size_t j = 0; j < 4; ++j) {
            int8_t* o = panel + j * Kp;
            if (j >= nr) {
                zero_column(o, Kp);
                continue;
            }
            const int16_t* row = packed + (n + j) * Kp8;
            size_t k = 0;
            for (; k + KB <= Kp8; k += KB)
                wasm_v128_store(o + k, wasm_i8x16_narrow_i16x8(wasm_v128_load(row + k), wasm_v128_load(row + k + 8)));
            if (k < Kp8) wasm_v128_store(o + k, wasm_i8x16_narrow_i16x8(wasm_v128_load(row + k), zero));  // the last 8
        }
        run_panel(M, Kp, A, lda, panel, C + n, ldc, nr);
    }
}

// W as qs4_gemm_pack packs it: rows of Kp/2 bytes, in blocks of 16 values whose byte j holds value j (low
// nibble) and value j + 8 (high nibble).
BL_EXPORT(bl_qs8_qc4w_gemm_2x4c16_wasmrelaxed)
void bl_qs8_qc4w_gemm_2x4c16_wasmrelaxed(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const uint8_t* packed,
                                      int32_t* C, size_t ldc, int8_t* panel) {
    const size_t Kp = (K + KB - 1) / KB * KB;
    const v128_t mask = wasm_i8x16_splat(15), eight = wasm_i8x16_splat(8);
    for (size_t n = 0; n < N; n += 4) {
        const size_t nr = N - n < 4 ? N - n : 4;
        for (size_t j = 0; j < 4; ++j) {
            int8_t* o = panel + j * Kp;
            if (j >= nr) {
                zero_column(o, Kp);
                continue;
            }
            const uint8_t* row = packed + (n + j) * (Kp / 2);
            for (size_t k = 0; k < Kp; k += KB) {
                const v128_t v = wasm_v128_load64_zero(row + k / 2);
                const v128_t lo = wasm_v128_and(v, mask), hi = wasm_u8x16_shr(v, 4);
                const v128_t codes = wasm_i64x2_shuffle(lo, hi, 0, 2);  // values k..k+15 as unsigned nibbles
                wasm_v128_store(o + k, wasm_i8x16_sub(wasm_v128_xor(codes, eight), eight));
            }
        }
        run_panel(M, Kp, A, lda, panel, C + n, ldc, nr);
    }
}
