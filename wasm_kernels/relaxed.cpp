// The relaxed-SIMD GEMMs' C++ entry points (kernels.h): each hands the kernel a scratch panel of 4·Kp int8
// (the relaxed module has no allocator) and calls it — in the WASM build an import bound by web/bitlens.js to
// bitlens-relaxed.wasm, natively the SIMDe build of the same source.
#include <atomic>
#include <vector>

#include "kernels.h"

extern "C" {
void bl_qs8_gemm_2x4c16_wasmrelaxed(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const int16_t* packed, int32_t* C,
                                    size_t ldc, int8_t* panel);
void bl_qs8_qc4w_gemm_2x4c16_wasmrelaxed(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const uint8_t* packed,
                                         int32_t* C, size_t ldc, int8_t* panel);
}

namespace bitlens::kernels {

namespace {
std::atomic<bool> relaxed_on{false};
int8_t* panel_for(size_t K) {
    thread_local std::vector<int8_t> panel;
    panel.resize(4 * qs4_gemm_kp(K));
    return panel.data();
}
}  // namespace

bool relaxed_simd_enabled() { return relaxed_on.load(std::memory_order_relaxed); }
void set_relaxed_simd(bool on) { relaxed_on.store(on, std::memory_order_relaxed); }

void qs8_gemm_2x4c16_wasmrelaxed(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const int16_t* packed, int32_t* C,
                                 size_t ldc) {
    bl_qs8_gemm_2x4c16_wasmrelaxed(M, N, K, A, lda, packed, C, ldc, panel_for(K));
}

void qs8_qc4w_gemm_2x4c16_wasmrelaxed(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, const uint8_t* packed,
                                      int32_t* C, size_t ldc) {
    bl_qs8_qc4w_gemm_2x4c16_wasmrelaxed(M, N, K, A, lda, packed, C, ldc, panel_for(K));
}

}  // namespace bitlens::kernels
