// The relaxed-SIMD GEMMs the main module imports (wasm_kernels/relaxed.cpp). web/bitlens.js replaces these
// stand-ins by bitlens-relaxed.wasm's exports when it loads that module (browsers with relaxed SIMD); otherwise
// they stay, and C++ never calls them (kernels::relaxed_simd_enabled() is false).
mergeInto(LibraryManager.library, {
  bl_qs8_gemm_2x4c16_wasmrelaxed: function () { abort('bitlens-relaxed.wasm is not loaded'); },
  bl_qs8_qc4w_gemm_2x4c16_wasmrelaxed: function () { abort('bitlens-relaxed.wasm is not loaded'); },
});
