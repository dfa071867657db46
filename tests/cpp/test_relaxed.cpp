// The relaxed-SIMD integer GEMMs (wasm_kernels/relaxed/), natively: through SIMDe, with
// i32x4.relaxed_dot_i8x16_i7x16_add written out lane by lane as the instruction computes it for a second operand
// in [0, 127]. This holds the tiling, the panels and the tails against the scalar references; the real instruction
// runs in Chromium (tests/e2e/relaxed.test.mjs), never in Node (whose relaxed dot is wrong).
#include <doctest/doctest.h>

#include <random>
#include <tuple>
#include <vector>

#include "kernels.h"

using namespace bitlens::kernels;

namespace {
// C of the relaxed kernel == C of the reference == C of the SIMD128 kernel, with the padding columns of C untouched.
template <class Ref, class Simd, class Relaxed>
void check_three(size_t M, size_t N, Ref&& ref_gemm, Simd&& simd_gemm, Relaxed&& relaxed_gemm) {
    const size_t ldc = N + 3;
    const int32_t sentinel = 0x5A5A5A5A;
    std::vector<int32_t> ref(M * ldc, sentinel), simd(M * ldc, sentinel), relaxed(M * ldc, sentinel);
    ref_gemm(ref.data(), ldc);
    simd_gemm(simd.data(), ldc);
    relaxed_gemm(relaxed.data(), ldc);
    REQUIRE(simd == ref);
    REQUIRE(relaxed == ref);
}
// Activation codes in [0, 127]: random, all 127 (with weights −128 / −8: the largest products), random with extremes.
int8_t code(int fill, size_t i, std::mt19937& g) {
    if (fill == 1) return 127;
    if (fill == 2 && i % 5 == 0) return i % 10 == 0 ? 0 : 127;
    return int8_t(g() % 128);
}
}  // namespace

TEST_CASE("relaxed qs8 GEMM: 2x4c16 (int16-packed weights narrowed to an int8 panel) equals qs8_gemm_ref and the SIMD128 kernel for codes in [0, 127], over M/N/K tails (K = 8 mod 16 too) and strided A") {
    std::mt19937 g(21);
    for (size_t M : {1, 2, 3, 5})
        for (size_t N : {1, 3, 4, 5, 8, 13})
            for (size_t K : {1, 7, 8, 9, 16, 24, 33, 64})
                for (int fill = 0; fill < 3; ++fill) {
                    CAPTURE(M);
                    CAPTURE(N);
                    CAPTURE(K);
                    CAPTURE(fill);
                    // The stride the model uses (a multiple of 16), or more; A's values past K are junk the
                    // panel's zero weights must cancel.
                    const size_t lda = qs4_gemm_kp(K) + (M % 2 ? 16 : 0);
                    std::vector<int8_t> A(M * lda, 99), W(N * K);
                    for (size_t m = 0; m < M; ++m)
                        for (size_t k = 0; k < K; ++k) A[m * lda + k] = code(fill, m * K + k, g);
                    for (size_t i = 0; i < W.size(); ++i) W[i] = int8_t(fill == 1 ? -128 : fill == 2 && i % 3 == 0 ? 127 : int(g() % 256) - 128);
                    std::vector<int16_t> packed(N * qs8_gemm_kp(K));
                    qs8_gemm_pack(N, K, W.data(), packed.data());
                    // The reference and the SIMD128 kernel want A zero past K (their contract): a copy.
                    std::vector<int8_t> A0 = A;
                    for (size_t m = 0; m < M; ++m)
                        for (size_t k = K; k < lda; ++k) A0[m * lda + k] = 0;
                    check_three(M, N,
                                [&](int32_t* C, size_t ldc) { qs8_gemm_ref(M, N, K, A0.data(), lda, packed.data(), C, ldc); },
                                [&](int32_t* C, size_t ldc) { qs8_gemm_2x4c8_wasmsimd(M, N, K, A0.data(), lda, packed.data(), C, ldc); },
                                [&](int32_t* C, size_t ldc) { qs8_gemm_2x4c16_wasmrelaxed(M, N, K, A.data(), lda, packed.data(), C, ldc); });
                }
}

TEST_CASE("relaxed qs8×qc4w GEMM: 2x4c16 (nibbles unpacked to an int8 panel) equals qs8_qc4w_gemm_ref and the SIMD128 kernel for codes in [0, 127], over M/N/K tails and strided A") {
    std::mt19937 g(22);
    for (size_t M : {1, 2, 3, 5})
        for (size_t N : {1, 3, 4, 5, 8, 13})
            for (size_t K : {1, 7, 8, 15, 16, 17, 33, 64})
                for (int fill = 0; fill < 3; ++fill) {
                    CAPTURE(M);
                    CAPTURE(N);
                    CAPTURE(K);
                    CAPTURE(fill);
                    const size_t Kp = qs4_gemm_kp(K), lda = Kp + (M % 2 ? 16 : 0);
                    std::vector<int8_t> A(M * lda, 0), W(N * K);
                    for (size_t m = 0; m < M; ++m)
                        for (size_t k = 0; k < K; ++k) A[m * lda + k] = code(fill, m * K + k, g);
                    for (size_t i = 0; i < W.size(); ++i) W[i] = int8_t(fill == 1 ? -8 : fill == 2 && i % 4 == 0 ? 7 : int(g() % 16) - 8);
                    std::vector<uint8_t> packed(N * Kp / 2, 0xEE);
                    qs4_gemm_pack(N, K, W.data(), packed.data());
                    check_three(M, N,
                                [&](int32_t* C, size_t ldc) { qs8_qc4w_gemm_ref(M, N, K, A.data(), lda, packed.data(), C, ldc); },
                                [&](int32_t* C, size_t ldc) { qs8_qc4w_gemm_2x4c8_wasmsimd(M, N, K, A.data(), lda, packed.data(), C, ldc); },
                                [&](int32_t* C, size_t ldc) { qs8_qc4w_gemm_2x4c16_wasmrelaxed(M, N, K, A.data(), lda, packed.data(), C, ldc); });
                }
}

TEST_CASE("relaxed integer GEMMs: DeiT-tiny shapes (197×576×192, 197×192×768) equal the references, int8 and int4 weights") {
    std::mt19937 g(23);
    for (const std::tuple<size_t, size_t, size_t>& shape : {std::tuple<size_t, size_t, size_t>{197, 576, 192}, {197, 192, 768}}) {
        // Plain variables, not a structured binding: clang 14 cannot use one inside doctest's assertion lambdas.
        const size_t M = std::get<0>(shape), N = std::get<1>(shape), K = std::get<2>(shape);
        CAPTURE(N);
        const size_t lda = qs4_gemm_kp(K);
        std::vector<int8_t> A(M * lda, 0), W8(N * K), W4(N * K);
        for (size_t m = 0; m < M; ++m)
            for (size_t k = 0; k < K; ++k) A[m * lda + k] = int8_t(g() % 128);
        for (size_t i = 0; i < W8.size(); ++i) W8[i] = int8_t(int(g() % 256) - 128), W4[i] = int8_t(int(g() % 16) - 8);
        std::vector<int16_t> p8(N * qs8_gemm_kp(K));
        std::vector<uint8_t> p4(N * lda / 2);
        qs8_gemm_pack(N, K, W8.data(), p8.data());
        qs4_gemm_pack(N, K, W4.data(), p4.data());
        check_three(M, N, [&](int32_t* C, size_t ldc) { qs8_gemm_ref(M, N, K, A.data(), lda, p8.data(), C, ldc); },
                    [&](int32_t* C, size_t ldc) { qs8_gemm_2x4c8_wasmsimd(M, N, K, A.data(), lda, p8.data(), C, ldc); },
                    [&](int32_t* C, size_t ldc) { qs8_gemm_2x4c16_wasmrelaxed(M, N, K, A.data(), lda, p8.data(), C, ldc); });
        check_three(M, N, [&](int32_t* C, size_t ldc) { qs8_qc4w_gemm_ref(M, N, K, A.data(), lda, p4.data(), C, ldc); },
                    [&](int32_t* C, size_t ldc) { qs8_qc4w_gemm_2x4c8_wasmsimd(M, N, K, A.data(), lda, p4.data(), C, ldc); },
                    [&](int32_t* C, size_t ldc) { qs8_qc4w_gemm_2x4c16_wasmrelaxed(M, N, K, A.data(), lda, p4.data(), C, ldc); });
    }
}
