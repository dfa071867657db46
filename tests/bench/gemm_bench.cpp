// GEMM rate benchmark over the project's own kernels (wasm_kernels/*.cpp), for `npm run bench`.
// Built by tests/bench/bench.mjs with em++ into build/bench/gemm-bench.mjs (and with g++ natively, where
// the kernels run through SIMDe) because the shipped module has no raw kernel entry point yet.
//
// The kernel names are passed in by the build (-DBL_F32_GEMM=... -DBL_QS8_GEMM=...), picked from
// wasm_kernels/kernels.h, so the bench follows a renamed micro-kernel without editing this file.
//
//   double bl_bench_gemm(int kind, int M, int N, int K, int reps)  → seconds for `reps` calls
//     kind 0: f32 GEMM  C[M,N] = A[M,K] · Wᵀ (+ bias), W pre-packed (kernels::f32_gemm_pack)
//     kind 1: int8 GEMM C[M,N] (int32) = A[M,K] (int8) · Wᵀ (int8), W pre-packed, widened to int16 (kernels::qs8_gemm_pack)
//     kind 2: the same with int4 weights packed two per byte (kernels::qs4_gemm_pack), unpacked in registers
//   int bl_bench_check(int kind, int M, int N, int K) → 1 when the SIMD kernel equals its *_ref twin
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "kernels.h"

#ifndef BL_F32_GEMM
#define BL_F32_GEMM f32_gemm_4x8_wasmsimd
#endif
#ifndef BL_QS8_GEMM
#define BL_QS8_GEMM qs8_gemm_2x4c8_wasmsimd
#endif
#ifndef BL_QC4W_GEMM
#define BL_QC4W_GEMM qs8_qc4w_gemm_2x4c8_wasmsimd
#endif
#define BL_STR2(x) #x
#define BL_STR(x) BL_STR2(x)

#ifdef __EMSCRIPTEN__
#include <emscripten.h>
#define BL_EXPORT extern "C" EMSCRIPTEN_KEEPALIVE
static double now_s() { return emscripten_get_now() * 1e-3; }
#else
#define BL_EXPORT extern "C"
static double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
#endif

namespace k = bitlens::kernels;

namespace {

uint32_t rng_state = 12345;
uint32_t next_u32() {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 17, rng_state ^= rng_state << 5;
    return rng_state;
}
float next_f() { return float(int32_t(next_u32() % 2001) - 1000) * 1e-3f; }

struct Problem {
    size_t M, N, K, Kp;
    std::vector<float> a, w, packed, bias, c, c_ref;
    std::vector<int8_t> a8, w8, w4;
    std::vector<int16_t> packed8;
    std::vector<uint8_t> packed4;
    std::vector<int32_t> c32, c32_ref;
};

Problem& problem(int M, int N, int K) {
    static std::map<std::tuple<int, int, int>, std::unique_ptr<Problem>> cache;
    auto& p = cache[{M, N, K}];
    if (!p) {
        p = std::make_unique<Problem>();
        p->M = size_t(M), p->N = size_t(N), p->K = size_t(K), p->Kp = k::qs4_gemm_kp(size_t(K));  // A's row stride, valid for both integer kernels
        p->a.resize(p->M * p->K), p->w.resize(p->N * p->K), p->bias.resize(p->N);
        for (float& v : p->a) v = next_f();
        for (float& v : p->w) v = next_f();
        for (float& v : p->bias) v = next_f();
        p->packed.assign(k::f32_gemm_packed_floats(p->N, p->K), 0.0f);
        k::f32_gemm_pack(p->N, p->K, p->w.data(), p->K, 1, p->packed.data());
        p->c.resize(p->M * p->N), p->c_ref.resize(p->M * p->N);
        p->a8.assign(p->M * p->Kp, 0), p->w8.resize(p->N * p->K), p->packed8.resize(p->N * p->Kp);
        for (size_t m = 0; m < p->M; ++m)
            for (size_t i = 0; i < p->K; ++i) p->a8[m * p->Kp + i] = int8_t(int32_t(next_u32() % 256) - 128);
        for (int8_t& v : p->w8) v = int8_t(int32_t(next_u32() % 255) - 127);
        p->packed8.resize(p->N * k::qs8_gemm_kp(p->K));
        k::qs8_gemm_pack(p->N, p->K, p->w8.data(), p->packed8.data());
        p->w4.resize(p->w8.size()), p->packed4.resize(p->N * p->Kp / 2);
        for (size_t i = 0; i < p->w8.size(); ++i) p->w4[i] = int8_t(p->w8[i] / 16);  // -7..7
        k::qs4_gemm_pack(p->N, p->K, p->w4.data(), p->packed4.data());
        p->c32.resize(p->M * p->N), p->c32_ref.resize(p->M * p->N);
    }
    return *p;
}

void run(int kind, Problem& p) {
    if (kind == 0)
        k::BL_F32_GEMM(p.M, p.N, p.K, p.a.data(), p.K, p.packed.data(), p.bias.data(), p.c.data(), p.N);
    else if (kind == 1)
        k::BL_QS8_GEMM(p.M, p.N, p.K, p.a8.data(), p.Kp, p.packed8.data(), p.c32.data(), p.N);
    else
        k::BL_QC4W_GEMM(p.M, p.N, p.K, p.a8.data(), p.Kp, p.packed4.data(), p.c32.data(), p.N);
}

}  // namespace

BL_EXPORT double bl_bench_gemm(int kind, int M, int N, int K, int reps) {
    Problem& p = problem(M, N, K);
    const double t0 = now_s();
    for (int r = 0; r < reps; ++r) run(kind, p);
    return now_s() - t0;
}

BL_EXPORT int bl_bench_check(int kind, int M, int N, int K) {
    Problem& p = problem(M, N, K);
    run(kind, p);
    if (kind == 0) {
        k::f32_gemm_ref(p.M, p.N, p.K, p.a.data(), p.K, p.packed.data(), p.bias.data(), p.c_ref.data(), p.N);
        return std::memcmp(p.c.data(), p.c_ref.data(), p.c.size() * sizeof(float)) == 0;
    }
    if (kind == 1) k::qs8_gemm_ref(p.M, p.N, p.K, p.a8.data(), p.Kp, p.packed8.data(), p.c32_ref.data(), p.N);
    else k::qs8_qc4w_gemm_ref(p.M, p.N, p.K, p.a8.data(), p.Kp, p.packed4.data(), p.c32_ref.data(), p.N);
    return std::memcmp(p.c32.data(), p.c32_ref.data(), p.c32.size() * sizeof(int32_t)) == 0;
}

BL_EXPORT const char* bl_bench_kernels() { return BL_STR(BL_F32_GEMM) " " BL_STR(BL_QS8_GEMM) " " BL_STR(BL_QC4W_GEMM); }

#ifndef __EMSCRIPTEN__
#if defined(__x86_64__)
// The throughput ceiling of the WASM SIMD instruction pairs the GEMMs are made of, as this CPU runs them
// when V8 lowers them to 128-bit x86 (i32x4.dot_i16x8_s + i32x4.add → vpmaddwd + vpaddd; f32x4.mul +
// f32x4.add → vmulps + vaddps): 8 independent accumulators, operands in registers, no loads, no loop
// overhead worth counting. No kernel built from these pairs can beat it; a WASM one pays for loads and
// V8's code on top. Returns GOP/s (int8: 16 ops per pair, as 2·M·N·K counts them; f32: 8 per pair).
static double ceiling_rate(bool f32) {
    const long iters = 20'000'000;
    const double t0 = now_s();
    long n = iters;
    if (f32) {
        __asm__ volatile(
            "vxorps %%xmm0,%%xmm0,%%xmm0\n vxorps %%xmm1,%%xmm1,%%xmm1\n vxorps %%xmm2,%%xmm2,%%xmm2\n vxorps %%xmm3,%%xmm3,%%xmm3\n"
            "vxorps %%xmm4,%%xmm4,%%xmm4\n vxorps %%xmm5,%%xmm5,%%xmm5\n vxorps %%xmm6,%%xmm6,%%xmm6\n vxorps %%xmm7,%%xmm7,%%xmm7\n"
            "vxorps %%xmm11,%%xmm11,%%xmm11\n vxorps %%xmm12,%%xmm12,%%xmm12\n vxorps %%xmm13,%%xmm13,%%xmm13\n vxorps %%xmm14,%%xmm14,%%xmm14\n"
            "1:\n"
            "vmulps %%xmm14,%%xmm11,%%xmm8\n vaddps %%xmm8,%%xmm0,%%xmm0\n vmulps %%xmm13,%%xmm11,%%xmm9\n vaddps %%xmm9,%%xmm1,%%xmm1\n"
            "vmulps %%xmm12,%%xmm11,%%xmm10\n vaddps %%xmm10,%%xmm2,%%xmm2\n vmulps %%xmm14,%%xmm12,%%xmm8\n vaddps %%xmm8,%%xmm3,%%xmm3\n"
            "vmulps %%xmm13,%%xmm12,%%xmm9\n vaddps %%xmm9,%%xmm4,%%xmm4\n vmulps %%xmm14,%%xmm13,%%xmm10\n vaddps %%xmm10,%%xmm5,%%xmm5\n"
            "vmulps %%xmm11,%%xmm11,%%xmm8\n vaddps %%xmm8,%%xmm6,%%xmm6\n vmulps %%xmm12,%%xmm12,%%xmm9\n vaddps %%xmm9,%%xmm7,%%xmm7\n"
            "dec %0\n jnz 1b\n"
            : "+r"(n)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
              "xmm13", "xmm14");
    } else {
        __asm__ volatile(
            "vpxor %%xmm0,%%xmm0,%%xmm0\n vpxor %%xmm1,%%xmm1,%%xmm1\n vpxor %%xmm2,%%xmm2,%%xmm2\n vpxor %%xmm3,%%xmm3,%%xmm3\n"
            "vpxor %%xmm4,%%xmm4,%%xmm4\n vpxor %%xmm5,%%xmm5,%%xmm5\n vpxor %%xmm6,%%xmm6,%%xmm6\n vpxor %%xmm7,%%xmm7,%%xmm7\n"
            "vpxor %%xmm11,%%xmm11,%%xmm11\n vpxor %%xmm12,%%xmm12,%%xmm12\n vpxor %%xmm13,%%xmm13,%%xmm13\n vpxor %%xmm14,%%xmm14,%%xmm14\n"
            "1:\n"
            "vpmaddwd %%xmm14,%%xmm11,%%xmm8\n vpaddd %%xmm8,%%xmm0,%%xmm0\n vpmaddwd %%xmm13,%%xmm11,%%xmm9\n vpaddd %%xmm9,%%xmm1,%%xmm1\n"
            "vpmaddwd %%xmm12,%%xmm11,%%xmm10\n vpaddd %%xmm10,%%xmm2,%%xmm2\n vpmaddwd %%xmm14,%%xmm12,%%xmm8\n vpaddd %%xmm8,%%xmm3,%%xmm3\n"
            "vpmaddwd %%xmm13,%%xmm12,%%xmm9\n vpaddd %%xmm9,%%xmm4,%%xmm4\n vpmaddwd %%xmm14,%%xmm13,%%xmm10\n vpaddd %%xmm10,%%xmm5,%%xmm5\n"
            "vpmaddwd %%xmm11,%%xmm11,%%xmm8\n vpaddd %%xmm8,%%xmm6,%%xmm6\n vpmaddwd %%xmm12,%%xmm12,%%xmm9\n vpaddd %%xmm9,%%xmm7,%%xmm7\n"
            "dec %0\n jnz 1b\n"
            : "+r"(n)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
              "xmm13", "xmm14");
    }
    return double(iters) * 8 * (f32 ? 8 : 16) / (now_s() - t0) / 1e9;
}
#endif

// Native: bitlens-gemm-bench [reps] → one line per shape and kind, "kind M K N median_seconds", then
// "ceiling f32|int8 best_rate" (x86-64 with AVX: the best of 5 runs of ceiling_rate).
int main(int argc, char** argv) {
    const int reps = argc > 1 ? std::atoi(argv[1]) : 30;
    const int shapes[][3] = {{197, 192, 576}, {197, 192, 768}, {197, 768, 192}};  // M K N
    for (int kind = 0; kind < 3; ++kind)
        for (const auto& s : shapes) {
            if (!bl_bench_check(kind, s[0], s[2], s[1])) std::printf("MISMATCH kind %d\n", kind);
            bl_bench_gemm(kind, s[0], s[2], s[1], 3);
            std::vector<double> t;
            for (int r = 0; r < reps; ++r) t.push_back(bl_bench_gemm(kind, s[0], s[2], s[1], 1));
            std::sort(t.begin(), t.end());
            std::printf("%s %d %d %d %.9f %.9f\n", kind == 2 ? "int4" : kind ? "int8" : "f32", s[0], s[1], s[2], t[t.size() / 2], t[0]);
        }
    std::printf("kernels %s\n", bl_bench_kernels());
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx"))
        for (bool f32 : {true, false}) {
            double best = 0;
            for (int r = 0; r < 5; ++r) best = std::max(best, ceiling_rate(f32));
            std::printf("ceiling %s %.2f\n", f32 ? "f32" : "int8", best);
        }
#endif
    return 0;
}
#endif
