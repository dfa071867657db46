// BitLens hot kernels. Each optimised kernel sits beside a portable scalar reference with the
// same signature (`*_ref`). The `*_wasmsimd` kernels are written with wasm_simd128.h; natively
// they compile through SIMDe, so the native CLI and the WASM module run the same operations in
// the same order and give bit-identical results.
//
// Letters used in shapes: M rows of activations (tokens), N output features, K input features.
// All matrices are row-major; `ld*` is the row stride in elements.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bitlens::kernels {

// ---------------------------------------------------------------------------------------------
// f32 GEMM against a pre-packed right-hand side: C[M,N] = A[M,K] · W[N,K]ᵀ (+ bias[N]).
// W is what PyTorch stores for a Linear (out × in). It is packed once into panels of
// F32_GEMM_NR columns: packed[(n / NR) * K * NR + k * NR + n % NR] = W[n][k], zero padded.
// Operation order (the contract every implementation keeps, so results are bit-identical):
//   acc = 0; for k in 0..K-1: acc = acc + A[m][k] * W[n][k]  (a rounded multiply, then a rounded add)
//   C[m][n] = bias ? acc + bias[n] : acc
constexpr size_t F32_GEMM_NR = 8;
size_t f32_gemm_packed_floats(size_t N, size_t K);
// Packs W given element strides: W[n][k] = src[n * stride_n + k * stride_k]. With stride_n = K,
// stride_k = 1 it packs a Linear weight; with stride_n = 1, stride_k = ld it packs a transposed
// matrix (e.g. V in P·V), so attention uses the same kernel.
void f32_gemm_pack(size_t N, size_t K, const float* src, size_t stride_n, size_t stride_k, float* packed);
void f32_gemm_ref(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* packed,
                  const float* bias, float* C, size_t ldc);
void f32_gemm_4x8_wasmsimd(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* packed,
                           const float* bias, float* C, size_t ldc);

// ---------------------------------------------------------------------------------------------
// Row-wise numerically-stable softmax in place over `rows` rows of length n (row stride ld):
// m = max(x); e_i = bl_expf(x_i - m); s = Σ e_i (lane-blocked order defined in softmax.cpp); x_i = e_i * (1/s).
void f32_softmax_ref(size_t rows, size_t n, float* x, size_t ld);
void f32_softmax_wasmsimd(size_t rows, size_t n, float* x, size_t ld);

// LayerNorm over the last dimension: y = (x - mean) * rstd * gamma + beta, rstd = 1/sqrt(var + eps),
// biased variance (as PyTorch), two passes; lane-blocked sum order defined in layernorm.cpp.
// gamma and beta must be non-null.
void f32_layernorm_ref(size_t rows, size_t n, const float* x, size_t ldx, const float* gamma,
                       const float* beta, float eps, float* y, size_t ldy);
void f32_layernorm_wasmsimd(size_t rows, size_t n, const float* x, size_t ldx, const float* gamma,
                            const float* beta, float eps, float* y, size_t ldy);

// ---------------------------------------------------------------------------------------------
// Training (backward pass). Unpacked GEMMs, since weights change every step:
//   nn: C[M,N] = A[M,K] · B[K,N]        (dX = dY·W; attention's ctx = P·V and dQ = dS·K)
//   tn: C[M,N] = A[K,M]ᵀ · B[K,N]       (dW = dYᵀ·X; attention's dV = Pᵀ·dCtx and dK = dSᵀ·Q)
// Operation order: acc = +0; for k in 0..K-1: acc = acc + A·B (rounded multiply, rounded add);
// C[m][n] = accumulate ? C[m][n] + acc : acc. (The existing packed f32_gemm covers C = A·Bᵀ.)
// K = 0 gives +0, or C + 0. The 4x8 kernels block C and K for the caches (f32-gemm-nn-tn-4x8-wasmsimd.cpp)
// without changing this order; C must not overlap A or B. Measured on 3200×64×192, 3200×192×64 and
// 64×192×3200 (M×N×K), one thread: WASM (Node 20) nn 42–45, tn 40–43 GFLOP/s (f32_gemm_4x8_wasmsimd on a
// pre-packed W: 49–50); native through SIMDe nn 28–30, tn 35–36 (packed forward 29).
void f32_gemm_nn_ref(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* B, size_t ldb, float* C,
                     size_t ldc, bool accumulate);
void f32_gemm_nn_4x8_wasmsimd(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* B, size_t ldb, float* C,
                              size_t ldc, bool accumulate);
void f32_gemm_tn_ref(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* B, size_t ldb, float* C,
                     size_t ldc, bool accumulate);
void f32_gemm_tn_4x8_wasmsimd(size_t M, size_t N, size_t K, const float* A, size_t lda, const float* B, size_t ldb, float* C,
                              size_t ldc, bool accumulate);

// LayerNorm forward that also saves what the backward needs: exactly f32_layernorm's y, plus mean[r] and
// rstd[r] as that kernel computes them (mean / rstd may be null: then it is f32_layernorm).
void f32_layernorm_fwd_ref(size_t rows, size_t n, const float* x, size_t ldx, const float* gamma, const float* beta,
                           float eps, float* y, size_t ldy, float* mean, float* rstd);
void f32_layernorm_fwd_wasmsimd(size_t rows, size_t n, const float* x, size_t ldx, const float* gamma, const float* beta,
                                float eps, float* y, size_t ldy, float* mean, float* rstd);
// LayerNorm backward: with x̂ = (x − mean)·rstd and g = dy ⊙ gamma, per row
//   dx += rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂))      (the two row means in the forward's lane-blocked order)
//   dgamma += dy ⊙ x̂,  dbeta += dy                    (rows in ascending order)
// All outputs accumulate (+=), as every gradient in the training engine does. Exact order, per element:
//   x̂ = (x − mean)·rstd; g = dy·gamma; mean(g) = Σg / n, mean(g⊙x̂) = Σ(g·x̂) / n (sums lane-blocked);
//   dx = dx + rstd·((g − mean(g)) − x̂·mean(g⊙x̂)); dgamma = dgamma + dy·x̂; dbeta = dbeta + dy.
// dx must not alias dy or x.
void f32_layernorm_bwd_ref(size_t rows, size_t n, const float* dy, size_t lddy, const float* x, size_t ldx,
                           const float* gamma, const float* mean, const float* rstd, float* dx, size_t lddx, float* dgamma,
                           float* dbeta);
void f32_layernorm_bwd_wasmsimd(size_t rows, size_t n, const float* dy, size_t lddy, const float* x, size_t ldx,
                                const float* gamma, const float* mean, const float* rstd, float* dx, size_t lddx,
                                float* dgamma, float* dbeta);
// GELU backward over n values: dx[i] = dy[i] · GELU'(x[i]) (x: GELU's input), the derivative of the
// forward kernels' own formulas (exact form: 0.5·(1 + E(x)) + x·exp(−x²/2)/√(2π), with the forward's E and
// bl_expf, the second term 0 where the forward clamps (|x| ≥ 5.5); tanh form: 0.5·(1+t) +
// 0.5·x·(1−t²)·√(2/π)·(1 + 3·0.044715·x²) with the forward's t = bl_tanhf(u)). Exact operation order in
// gelu.cpp. GELU' is 1 at +inf and 0 at −inf in both forms. dx is written (=), may alias dy.
void f32_gelu_bwd_ref(size_t n, const float* x, const float* dy, float* dx);
void f32_gelu_bwd_wasmsimd(size_t n, const float* x, const float* dy, float* dx);
void f32_gelu_tanh_bwd_ref(size_t n, const float* x, const float* dy, float* dx);
void f32_gelu_tanh_bwd_wasmsimd(size_t n, const float* x, const float* dy, float* dx);
// Softmax backward, rows of length n: with p the forward's output, dx = p ⊙ (dy − Σ_j p_j·dy_j), the sum in
// softmax's lane-blocked order. dx is written (=), may alias dy.
void f32_softmax_bwd_ref(size_t rows, size_t n, const float* p, size_t ldp, const float* dy, size_t lddy, float* dx,
                         size_t lddx);
void f32_softmax_bwd_wasmsimd(size_t rows, size_t n, const float* p, size_t ldp, const float* dy, size_t lddy, float* dx,
                              size_t lddx);

// GELU in place over n values: exact form 0.5·x·(1 + erf(x/√2)), or the tanh form
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
void f32_gelu_ref(size_t n, float* x);
void f32_gelu_wasmsimd(size_t n, float* x);
void f32_gelu_tanh_ref(size_t n, float* x);
void f32_gelu_tanh_wasmsimd(size_t n, float* x);

}  // namespace bitlens::kernels

namespace bitlens::kernels {

// ---------------------------------------------------------------------------------------------
// int8 GEMM: C[M,N] (int32) = A[M,K] (int8) · W[N,K]ᵀ (int8), exact integer arithmetic (so every
// implementation gives the same result in any order). Both operands are zero padded to
// Kp = qs8_gemm_kp(K) columns: A rows have stride lda ≥ Kp with A[m][K..Kp) = 0; W is packed as
// rows of Kp by qs8_gemm_pack, each code sign-extended to int16 once, at pack time, so that the inner
// loop loads weight slices with a plain v128.load instead of i16x8.load8x8_s (which costs a shuffle uop
// per load). Measured in WASM on the DeiT-tiny shapes: 55–62 → 63–75 GOP/s; the price is 2 bytes per
// weight in memory (the exported file still stores the codes at their bit width).
constexpr size_t QS8_GEMM_KB = 8;
inline size_t qs8_gemm_kp(size_t K) { return (K + QS8_GEMM_KB - 1) / QS8_GEMM_KB * QS8_GEMM_KB; }
void qs8_gemm_pack(size_t N, size_t K, const int8_t* W, int16_t* packed);  // packed: N × Kp
// The same layout from a strided source, W[n][k] = src[n·stride_n + k·stride_k] (attention: a head's k codes with
// stride_k = 1, or its v codes transposed with stride_n = 1), and each row's sum sums[n] = Σ_k W[n][k] (the
// zero-point correction's term; sums may be null). A plain loop: it is its own reference.
void qs8_gemm_pack_strided(size_t N, size_t K, const int8_t* src, size_t stride_n, size_t stride_k, int16_t* packed,
                           int32_t* sums);
void qs8_gemm_ref(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const int16_t* packed, int32_t* C, size_t ldc);
// 2 rows × 4 columns per step (8 accumulators), A by i16x8.load8x8_s, i32x4.dot_i16x8_s, 8 values of K
// per instruction pair: each weight slice serves two rows.
void qs8_gemm_2x4c8_wasmsimd(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const int16_t* packed, int32_t* C,
                             size_t ldc);

// int8 activations × int4 weights (codes −8..7), C as above. Weights are packed two per byte in blocks
// of 16 values of K (Kp = qs4_gemm_kp(K), a multiple of 16): within a block, byte j holds value j in its
// low nibble and value j + 8 in its high nibble (the layout ggml's q4_0 uses), so that unpacking is two
// masks and a shift, no shuffle. A rows have stride lda ≥ Kp and are zero from K to Kp.
constexpr size_t QS4_GEMM_KB = 16;
inline size_t qs4_gemm_kp(size_t K) { return (K + QS4_GEMM_KB - 1) / QS4_GEMM_KB * QS4_GEMM_KB; }
void qs4_gemm_pack(size_t N, size_t K, const int8_t* W, uint8_t* packed);  // packed: N × Kp/2 bytes
void qs8_qc4w_gemm_ref(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const uint8_t* packed, int32_t* C, size_t ldc);
// Each 4-column panel unpacked once (in registers, to int16 in an L1 buffer), then the int8 2×4c8 tile.
void qs8_qc4w_gemm_2x4c8_wasmsimd(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const uint8_t* packed, int32_t* C,
                                  size_t ldc);

// The same two GEMMs with relaxed SIMD (i32x4.relaxed_dot_i8x16_i7x16_add: 16 values of K per instruction), for
// activation codes in [0, 127] only — then the instruction is exact and C is the integer the kernels above give.
// Their signatures are the kernels above's, with A rows of stride lda ≥ qs4_gemm_kp(K) readable to that length.
// The vector code is wasm_kernels/relaxed/qs8-gemm-2x4c16-wasmrelaxed.cpp, which Emscripten 3.1.6 cannot
// compile: in the WASM build it is a module of its own (bitlens-relaxed.wasm, built by clang-19) sharing the
// main module's memory, its two functions imported under `env`; natively it runs through SIMDe with the
// instruction emulated (for the tests). relaxed_simd_enabled() says whether the JS loader bound the real module
// (web/bitlens.js, browsers only: Node 20's relaxed dot is wrong); the model calls these only then.
void qs8_gemm_2x4c16_wasmrelaxed(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const int16_t* packed, int32_t* C,
                                 size_t ldc);
void qs8_qc4w_gemm_2x4c16_wasmrelaxed(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const uint8_t* packed,
                                      int32_t* C, size_t ldc);
bool relaxed_simd_enabled();
void set_relaxed_simd(bool on);

}  // namespace bitlens::kernels

namespace bitlens::kernels {

// ---------------------------------------------------------------------------------------------
// Uniform quantization (Quantizer::code of src/quant/quant.h, for the hot paths):
//   v = x / scale; v = (v > -2^22) ? v : -2^22 (so NaN → -2^22); v = (v > 2^22) ? 2^22 : v
//   c = clamp(round_half_even(v) + zero, qmin, qmax)
// vfakequant: x = float(c − zero) · scale in place. qs8_vcvt: out = int8(c − shift) (codes and shift
// such that c − shift fits int8, e.g. unsigned 8-bit codes with shift 128).
void f32_vfakequant_ref(size_t n, float* x, float scale, int32_t zero, int32_t qmin, int32_t qmax);
void f32_vfakequant_wasmsimd(size_t n, float* x, float scale, int32_t zero, int32_t qmin, int32_t qmax);
void f32_qs8_vcvt_ref(size_t n, const float* x, float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t shift, int8_t* out);
void f32_qs8_vcvt_wasmsimd(size_t n, const float* x, float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t shift,
                           int8_t* out);

// Non-uniform quantization (log2, SULQ, power-of-two levels: Quantizer's level table and its ascending
// decision thresholds) by a bucketed threshold index, x[i] = table[code(x[i])] in place:
//   k    = order key of x: its float bits (of x + 0, so −0 is +0) mapped so that unsigned order is
//          value order (negative: ~bits; otherwise bits | 2^31); 0 for NaN
//   b    = clamp(k >> shift, lo, hi) − lo          (buckets of keys spanning the thresholds)
//   c    = first[b]                                 (thresholds whose key is below bucket b)
//   c   += key[c] ≤ k, `steps` times                (the thresholds inside bucket b; key[] ends with
//          a sentinel 0xFFFFFFFF, so the fixed-length scan never runs past the table)
//   code = x is NaN ? nan_code : c
// Exactly std::upper_bound over the thresholds when `first`, `steps` and the sentinel are built as
// FastFake (src/quant/quant.cpp) builds them.
struct ThresholdIndex {
    const uint32_t* key = nullptr;    // threshold keys, ascending, then the sentinel
    const uint16_t* first = nullptr;  // per bucket in [lo, hi]
    const float* table = nullptr;     // level of each code
    uint32_t lo = 0, hi = 0;          // bucket range (k >> shift) of the first and last threshold
    int shift = 0, steps = 0;         // bucket width 2^shift; most thresholds in one bucket
    uint32_t nan_code = 0;
    // When set: the thresholds themselves, nan_code ≤ 15 of them (every quantizer of ≤ 4 bits), ascending and
    // none NaN. The SIMD kernel then counts the thresholds ≤ x with one float compare each, 16 values at a
    // time, instead of the bucket lookups (lane by lane: WASM SIMD has no gather) — the same code, since
    // t ≤ x as floats exactly when key(t) ≤ key(x) for non-NaN t and x. The reference ignores it.
    const float* thresholds = nullptr;
};
constexpr uint32_t kSmallThresholds = 15;
inline uint32_t order_key(uint32_t bits_of_x_plus_0) {
    const uint32_t u = bits_of_x_plus_0;
    return u ^ ((0u - (u >> 31)) | 0x80000000u);
}
uint32_t f32_table_code(float x, const ThresholdIndex& ix);  // the code above, of one value
void f32_vtablequant_ref(size_t n, float* x, const ThresholdIndex& ix);
// 4 values a step: keys, buckets and the NaN mask in SIMD, the table lookups lane by lane (WASM SIMD has
// no gather). Measured on DeiT-tiny's post-softmax SULQ point: 2.9 ns a value, 5.5–7.4 for the scalar code
// over a 4096-bucket index scanning up to 3 thresholds. With ix.thresholds set, 16 values a step counted
// against the thresholds (see ThresholdIndex) and only the level lookups lane by lane: 4-bit SULQ there went
// from 2.6 to 1.2 ms per image (1.4 M values; tests/bench/profile.cpp, Node).
void f32_vtablequant_wasmsimd(size_t n, float* x, const ThresholdIndex& ix);

// The int8 GEMM's float output: y[r][n] = scale[n] · float(acc[r][n] − offset[n]) (+ bias[n]).
void i32_dequant_f32_ref(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* offset, const float* scale,
                         const float* bias, float* y, size_t ldy);
void i32_dequant_f32_wasmsimd(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* offset,
                              const float* scale, const float* bias, float* y, size_t ldy);
// The int8 GEMM's output straight to the next integer Linear's input codes, through a function of the dequantized
// value given by its thresholds (ThresholdCodes: e.g. GELU followed by a uniform quantizer, src/quant/ptq.cpp
// integer_gelu). With v = i32_dequant_f32's value (the same operations, bit for bit):
//   out[r][n] = int8(exact(v))  when zone_lo[i] ≤ v ≤ zone_hi[i] for some i (where the function, computed in float,
//                               is not monotone: the count below could be off by one there);
//             = int8(special)   when !(v > −inf) (NaN, −inf);
//             = int8(base + #{j : up[j] ≤ v} + #{j : v ≤ down[j]}) otherwise.
// The SIMD form counts 16 values a step, one float compare per threshold (as vtablequant_small), narrows the codes
// to int8 in registers, and sends a step with a value in a zone to the reference. At most kThresholdCodesMax
// thresholds together (more: the reference throughout).
struct ThresholdCodes {
    const float* up = nullptr;    // ascending thresholds where the code steps up as v grows
    uint32_t n_up = 0;
    const float* down = nullptr;  // thresholds below which (inclusive) the code steps up as v falls
    uint32_t n_down = 0;
    int32_t base = 0, special = 0;  // the code between the two sets; the code of NaN and −inf
    const float* zone_lo = nullptr;
    const float* zone_hi = nullptr;
    uint32_t n_zones = 0;
    int32_t (*exact)(float v, const void* ctx) = nullptr;  // the code computed, for the zones
    const void* ctx = nullptr;
};
constexpr uint32_t kThresholdCodesMax = 24;
int32_t f32_threshold_code(float v, const ThresholdCodes& tc);  // the code above, of one value
void i32_dequant_tcodes_qs8_ref(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* offset,
                                const float* scale, const float* bias, const ThresholdCodes& tc, int8_t* out, size_t ldo);
void i32_dequant_tcodes_qs8_wasmsimd(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* offset,
                                     const float* scale, const float* bias, const ThresholdCodes& tc, int8_t* out, size_t ldo);
// The same codes from the int32 sums themselves, when every sum a GEMM can give fits int16 (src/quant/ptq.cpp
// integer_gelu_sums checks the range per channel from the weights and the input codes, and translates each threshold
// through i32_dequant_f32's value, which grows with the sum). Per channel n, with a = acc clamped to int16:
//   out[r][n] = int8(base + #{j : a > up[ix(n, j, n_up)]} + #{j : a < down[ix(n, j, n_down)]})
// (32767 in up and −32768 in down: never counted). The thresholds of 16 channels lie together, one row of 16 per j
// (sum_threshold_index), so that the SIMD form walks them in order: 8 sums a compare instead of 4 floats, two rows of
// sums a pass, no conversion.
struct SumThresholdCodes {
    const int16_t* up = nullptr;    // sum_threshold_index(n, j, n_up): counted where a > it
    uint32_t n_up = 0;
    const int16_t* down = nullptr;  // sum_threshold_index(n, j, n_down): counted where a < it
    uint32_t n_down = 0;
    int32_t base = 0;
};
// Where channel n's threshold j lies among `count` per channel; arrays hold sum_threshold_size(N, count) values
// (N rounded up to 16; the channels past N are never read).
inline size_t sum_threshold_index(size_t n, size_t j, size_t count) { return (n / 16) * 16 * count + j * 16 + n % 16; }
inline size_t sum_threshold_size(size_t N, size_t count) { return (N + 15) / 16 * 16 * count; }
void i32_tcodes_qs8_ref(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const SumThresholdCodes& tc, int8_t* out,
                        size_t ldo);
void i32_tcodes_qs8_wasmsimd(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const SumThresholdCodes& tc, int8_t* out,
                             size_t ldo);
// The integer attention matmuls' float output, one scale for the whole matrix and an offset per row and per column
// (the two zero-point corrections): y[r][n] = scale · float(acc[r][n] − row_offset[r] − col_offset[n]), the
// subtractions in int32 (exact), then one rounding to float and one rounded multiply. row_offset may be null (0).
void i32_dequant_rc_f32_ref(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* row_offset,
                            const int32_t* col_offset, float scale, float* y, size_t ldy);
void i32_dequant_rc_f32_wasmsimd(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* row_offset,
                                 const int32_t* col_offset, float scale, float* y, size_t ldy);
// The integer attention's scores straight into softmax: y = f32_softmax(i32_dequant_rc_f32(acc)), row by row and bit
// for bit, without the scores in memory (the reference: the two in turn). For a finite scale > 0 the largest score
// is scale · float(the largest int32 difference) — the product never falls as the integer grows — so the SIMD form
// takes the max on the integers, then recomputes each score for its exp; any other scale: the two kernels in turn.
void i32_softmax_rc_f32_ref(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* row_offset,
                            const int32_t* col_offset, float scale, float* y, size_t ldy);
void i32_softmax_rc_f32_wasmsimd(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* row_offset,
                                 const int32_t* col_offset, float scale, float* y, size_t ldy);

}  // namespace bitlens::kernels
