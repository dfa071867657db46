// Uniform quantization of floats, non-uniform (level table) fake quantization, and dequantization of
// int32 GEMM results: references and WASM SIMD, bit-identical (see kernels.h for the formulas). The SIMD
// versions round with the reference's 1.5·2^23 trick too (exact round-half-even for |v| ≤ 2^22, which the
// clamp guarantees), and finish each row with the reference's scalar code.
#include <algorithm>
#include <limits>

#include "kernels.h"
#include "simd.h"

namespace bitlens::kernels {
namespace {

constexpr float kLimit = 4194304.0f;  // 2^22: beyond it codes are clamped anyway

inline float round_even(float v) {
  const float magic = 12582912.0f;  // 1.5·2^23
  volatile float t = v + magic;     // volatile: keep the two roundings as written
  return t - magic;
}

inline int32_t code_of(float x, float scale, int32_t zero, int32_t qmin, int32_t qmax) {
  float v = x / scale;
  if (!(v > -kLimit)) v = -kLimit;  // also maps NaN to the lowest code
  if (v > kLimit) v = kLimit;
  const int32_t c = int32_t(round_even(v)) + zero;
  return c < qmin ? qmin : c > qmax ? qmax : c;
}

// `zero_m` is zero − bits(1.5·2^23): after the clamp |v| ≤ 2^22, so v + 1.5·2^23 lies in [2^23, 2^24],
// where the float's low bits are round_half_even(v) + 2^22 — the reference's magic-number rounding, read
// off as an integer instead of subtracted back (2 operations where f32x4.nearest + trunc_sat cost ~8
// in V8's x64 code). pmax/pmin are single instructions; pmax(lo, v) is lo for NaN, as the reference.
inline v128_t code_x4(v128_t x, v128_t scale, v128_t zero_m, v128_t qmin, v128_t qmax) {
  const v128_t lo = wasm_f32x4_splat(-kLimit), hi = wasm_f32x4_splat(kLimit);
  v128_t v = wasm_f32x4_div(x, scale);
  v = wasm_f32x4_pmin(hi, wasm_f32x4_pmax(lo, v));  // lo < v ? v : lo (NaN → lo), then v < hi ? v : hi
  const v128_t c = wasm_i32x4_add(wasm_f32x4_add(v, wasm_f32x4_splat(12582912.0f)), zero_m);
  return wasm_i32x4_min(wasm_i32x4_max(c, qmin), qmax);
}
inline v128_t zero_minus_magic(int32_t zero) { return wasm_i32x4_splat(int32_t(uint32_t(zero) - 0x4B400000u)); }


}  // namespace

uint32_t f32_table_code(float x, const ThresholdIndex& ix) {
  const uint32_t k = x != x ? 0u : order_key(bl_f2u(x + 0.0f));  // NaN: key 0, never past the sentinel
  uint32_t b = k >> ix.shift;
  b = b < ix.lo ? ix.lo : b > ix.hi ? ix.hi : b;
  uint32_t c = ix.first[b - ix.lo];
  for (int s = 0; s < ix.steps; ++s) c += ix.key[c] <= k;
  return x != x ? ix.nan_code : c;
}

void f32_vtablequant_ref(size_t n, float* x, const ThresholdIndex& ix) {
  for (size_t i = 0; i < n; ++i) x[i] = ix.table[f32_table_code(x[i], ix)];
}

namespace {
// code = the number of thresholds ≤ x (NaN: nan_code), 4 values a call. The compares give −1 per threshold
// passed, so each is subtracted. The main loop below takes 16 values a step, each splatted threshold serving 4
// vectors.
inline v128_t small_codes_x4(const v128_t* t, uint32_t count, v128_t v) {
  v128_t c = wasm_i32x4_splat(0);
  for (uint32_t j = 0; j < count; ++j) c = wasm_i32x4_sub(c, wasm_f32x4_le(t[j], v));
  return c;
}
// The levels of 4 codes, lane by lane (WASM SIMD has no gather); both SIMD paths end with it.
inline v128_t levels_x4(const float* table, v128_t c) {
  v128_t out = wasm_f32x4_splat(0.0f);
  out = wasm_v128_load32_lane(table + uint32_t(wasm_i32x4_extract_lane(c, 0)), out, 0);
  out = wasm_v128_load32_lane(table + uint32_t(wasm_i32x4_extract_lane(c, 1)), out, 1);
  out = wasm_v128_load32_lane(table + uint32_t(wasm_i32x4_extract_lane(c, 2)), out, 2);
  return wasm_v128_load32_lane(table + uint32_t(wasm_i32x4_extract_lane(c, 3)), out, 3);
}

void vtablequant_small(size_t n, float* x, const ThresholdIndex& ix) {
  const uint32_t count = ix.nan_code;
  v128_t t[kSmallThresholds];
  for (uint32_t j = 0; j < count; ++j) t[j] = wasm_f32x4_splat(ix.thresholds[j]);
  const v128_t nan_code = wasm_i32x4_splat(int32_t(count));
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    v128_t v[4], c[4];
    for (int q = 0; q < 4; ++q) v[q] = wasm_v128_load(x + i + 4 * q), c[q] = wasm_i32x4_splat(0);
    for (uint32_t j = 0; j < count; ++j)
      for (int q = 0; q < 4; ++q) c[q] = wasm_i32x4_sub(c[q], wasm_f32x4_le(t[j], v[q]));
    for (int q = 0; q < 4; ++q)
      wasm_v128_store(x + i + 4 * q, levels_x4(ix.table, wasm_v128_bitselect(nan_code, c[q], wasm_f32x4_ne(v[q], v[q]))));
  }
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    wasm_v128_store(x + i, levels_x4(ix.table, wasm_v128_bitselect(nan_code, small_codes_x4(t, count, v), wasm_f32x4_ne(v, v))));
  }
  for (; i < n; ++i) x[i] = ix.table[f32_table_code(x[i], ix)];
}
}  // namespace

void f32_vtablequant_wasmsimd(size_t n, float* x, const ThresholdIndex& ix) {
  if (ix.thresholds && ix.nan_code <= kSmallThresholds) return vtablequant_small(n, x, ix);
  const uint32_t* key = ix.key;
  const uint16_t* first = ix.first;
  const float* table = ix.table;
  const int shift = ix.shift, steps = ix.steps;
  const v128_t lo = wasm_i32x4_splat(int32_t(ix.lo)), hi = wasm_i32x4_splat(int32_t(ix.hi));
  const v128_t zero = wasm_f32x4_splat(0.0f), sign = wasm_i32x4_splat(int32_t(0x80000000u));
  const v128_t nan_code = wasm_i32x4_splat(int32_t(ix.nan_code));
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    const v128_t u = wasm_f32x4_add(v, zero);                                  // −0 → +0
    const v128_t isnan = wasm_f32x4_ne(v, v);
    const v128_t k = wasm_v128_andnot(wasm_v128_xor(u, wasm_v128_or(wasm_i32x4_shr(u, 31), sign)), isnan);
    const v128_t b = wasm_i32x4_sub(wasm_u32x4_min(wasm_u32x4_max(wasm_u32x4_shr(k, shift), lo), hi), lo);
    uint32_t c0 = first[uint32_t(wasm_i32x4_extract_lane(b, 0))], c1 = first[uint32_t(wasm_i32x4_extract_lane(b, 1))],
             c2 = first[uint32_t(wasm_i32x4_extract_lane(b, 2))], c3 = first[uint32_t(wasm_i32x4_extract_lane(b, 3))];
    const uint32_t k0 = uint32_t(wasm_i32x4_extract_lane(k, 0)), k1 = uint32_t(wasm_i32x4_extract_lane(k, 1)),
                   k2 = uint32_t(wasm_i32x4_extract_lane(k, 2)), k3 = uint32_t(wasm_i32x4_extract_lane(k, 3));
    for (int s = 0; s < steps; ++s) c0 += key[c0] <= k0, c1 += key[c1] <= k1, c2 += key[c2] <= k2, c3 += key[c3] <= k3;
    const v128_t c = wasm_v128_bitselect(nan_code, wasm_i32x4_make(int32_t(c0), int32_t(c1), int32_t(c2), int32_t(c3)), isnan);
    wasm_v128_store(x + i, levels_x4(table, c));
  }
  for (; i < n; ++i) x[i] = table[f32_table_code(x[i], ix)];
}

void f32_vfakequant_ref(size_t n, float* x, float scale, int32_t zero, int32_t qmin, int32_t qmax) {
  for (size_t i = 0; i < n; ++i) x[i] = float(code_of(x[i], scale, zero, qmin, qmax) - zero) * scale;
}

void f32_vfakequant_wasmsimd(size_t n, float* x, float scale, int32_t zero, int32_t qmin, int32_t qmax) {
  const v128_t vs = wasm_f32x4_splat(scale), vz = wasm_i32x4_splat(zero), vzm = zero_minus_magic(zero);
  const v128_t vmin = wasm_i32x4_splat(qmin), vmax = wasm_i32x4_splat(qmax);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t c = code_x4(wasm_v128_load(x + i), vs, vzm, vmin, vmax);
    wasm_v128_store(x + i, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_sub(c, vz)), vs));
  }
  f32_vfakequant_ref(n - i, x + i, scale, zero, qmin, qmax);
}

void f32_qs8_vcvt_ref(size_t n, const float* x, float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t shift,
                      int8_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = int8_t(code_of(x[i], scale, zero, qmin, qmax) - shift);
}

void f32_qs8_vcvt_wasmsimd(size_t n, const float* x, float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t shift,
                           int8_t* out) {
  const v128_t vs = wasm_f32x4_splat(scale), vzm = zero_minus_magic(zero), vsh = wasm_i32x4_splat(shift);
  const v128_t vmin = wasm_i32x4_splat(qmin), vmax = wasm_i32x4_splat(qmax);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const v128_t c0 = wasm_i32x4_sub(code_x4(wasm_v128_load(x + i), vs, vzm, vmin, vmax), vsh);
    const v128_t c1 = wasm_i32x4_sub(code_x4(wasm_v128_load(x + i + 4), vs, vzm, vmin, vmax), vsh);
    const v128_t c16 = wasm_i16x8_narrow_i32x4(c0, c1);  // the codes fit int8: the narrows are exact
    wasm_v128_store64_lane(out + i, wasm_i8x16_narrow_i16x8(c16, c16), 0);
  }
  f32_qs8_vcvt_ref(n - i, x + i, scale, zero, qmin, qmax, shift, out + i);
}

void i32_dequant_f32_ref(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* offset, const float* scale,
                         const float* bias, float* y, size_t ldy) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t n = 0; n < N; ++n) {
      const float v = scale[n] * float(acc[r * ldacc + n] - offset[n]);
      y[r * ldy + n] = bias ? v + bias[n] : v;
    }
}

void i32_dequant_f32_wasmsimd(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* offset,
                              const float* scale, const float* bias, float* y, size_t ldy) {
  for (size_t r = 0; r < rows; ++r) {
    const int32_t* a = acc + r * ldacc;
    float* o = y + r * ldy;
    size_t n = 0;
    for (; n + 4 <= N; n += 4) {
      const v128_t d = wasm_i32x4_sub(wasm_v128_load(a + n), wasm_v128_load(offset + n));
      v128_t v = wasm_f32x4_mul(wasm_v128_load(scale + n), wasm_f32x4_convert_i32x4(d));
      if (bias) v = wasm_f32x4_add(v, wasm_v128_load(bias + n));
      wasm_v128_store(o + n, v);
    }
    i32_dequant_f32_ref(1, N - n, a + n, ldacc, offset + n, scale + n, bias ? bias + n : nullptr, o + n, ldy);
  }
}

int32_t f32_threshold_code(float v, const ThresholdCodes& tc) {
  for (uint32_t j = 0; j < tc.n_zones; ++j)
    if (tc.zone_lo[j] <= v && v <= tc.zone_hi[j]) return tc.exact(v, tc.ctx);
  if (!(v > -std::numeric_limits<float>::infinity())) return tc.special;
  int32_t c = tc.base;
  for (uint32_t j = 0; j < tc.n_up; ++j) c += tc.up[j] <= v;
  for (uint32_t j = 0; j < tc.n_down; ++j) c += v <= tc.down[j];
  return c;
}

void i32_dequant_tcodes_qs8_ref(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* offset,
                                const float* scale, const float* bias, const ThresholdCodes& tc, int8_t* out, size_t ldo) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t n = 0; n < N; ++n) {
      const float v = scale[n] * float(acc[r * ldacc + n] - offset[n]);
      out[r * ldo + n] = int8_t(f32_threshold_code(bias ? v + bias[n] : v, tc));
    }
}

void i32_dequant_tcodes_qs8_wasmsimd(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* offset,
                                     const float* scale, const float* bias, const ThresholdCodes& tc, int8_t* out,
                                     size_t ldo) {
  v128_t up[kThresholdCodesMax], down[kThresholdCodesMax];
  const uint32_t nu = tc.n_up, nd = tc.n_down, nz = tc.n_zones;
  if (nu > kThresholdCodesMax || nd > kThresholdCodesMax - nu || nz > kThresholdCodesMax)  // the reference's loop
    return i32_dequant_tcodes_qs8_ref(rows, N, acc, ldacc, offset, scale, bias, tc, out, ldo);
  v128_t zlo[kThresholdCodesMax], zhi[kThresholdCodesMax];
  for (uint32_t j = 0; j < nu; ++j) up[j] = wasm_f32x4_splat(tc.up[j]);
  for (uint32_t j = 0; j < nd; ++j) down[j] = wasm_f32x4_splat(tc.down[j]);
  for (uint32_t j = 0; j < nz; ++j) zlo[j] = wasm_f32x4_splat(tc.zone_lo[j]), zhi[j] = wasm_f32x4_splat(tc.zone_hi[j]);
  const v128_t base = wasm_i32x4_splat(tc.base), special = wasm_i32x4_splat(tc.special);
  const v128_t ninf = wasm_f32x4_splat(-std::numeric_limits<float>::infinity());
  for (size_t r = 0; r < rows; ++r) {
    const int32_t* a = acc + r * ldacc;
    int8_t* o = out + r * ldo;
    size_t n = 0;
    for (; n + 16 <= N; n += 16) {
      v128_t v[4], c[4];
      for (int q = 0; q < 4; ++q) {
        const size_t m = n + 4 * size_t(q);
        const v128_t d = wasm_i32x4_sub(wasm_v128_load(a + m), wasm_v128_load(offset + m));
        v[q] = wasm_f32x4_mul(wasm_v128_load(scale + m), wasm_f32x4_convert_i32x4(d));
        if (bias) v[q] = wasm_f32x4_add(v[q], wasm_v128_load(bias + m));
        c[q] = base;
      }
      for (uint32_t j = 0; j < nu; ++j)
        for (int q = 0; q < 4; ++q) c[q] = wasm_i32x4_sub(c[q], wasm_f32x4_le(up[j], v[q]));
      for (uint32_t j = 0; j < nd; ++j)
        for (int q = 0; q < 4; ++q) c[q] = wasm_i32x4_sub(c[q], wasm_f32x4_ge(down[j], v[q]));
      for (int q = 0; q < 4; ++q) c[q] = wasm_v128_bitselect(c[q], special, wasm_f32x4_gt(v[q], ninf));
      // codes − shift fit int8 (the builder's), so both narrows are exact
      const v128_t lo = wasm_i16x8_narrow_i32x4(c[0], c[1]), hi = wasm_i16x8_narrow_i32x4(c[2], c[3]);
      wasm_v128_store(o + n, wasm_i8x16_narrow_i16x8(lo, hi));
      if (nz != 0) {  // a value in a zone: these 16 again through the reference (rare: zones are a few ulps wide)
        v128_t in = wasm_i32x4_splat(0);
        for (uint32_t j = 0; j < nz; ++j)
          for (int q = 0; q < 4; ++q)
            in = wasm_v128_or(in, wasm_v128_and(wasm_f32x4_le(zlo[j], v[q]), wasm_f32x4_le(v[q], zhi[j])));
        if (wasm_v128_any_true(in))
          i32_dequant_tcodes_qs8_ref(1, 16, a + n, ldacc, offset + n, scale + n, bias ? bias + n : nullptr, tc, o + n, ldo);
      }
    }
    i32_dequant_tcodes_qs8_ref(1, N - n, a + n, ldacc, offset + n, scale + n, bias ? bias + n : nullptr, tc, o + n, ldo);
  }
}

namespace {
// Channels [n0, N) of `rows` rows by the reference formula (the SIMD form's tail).
void tcodes_ref_from(size_t n0, size_t rows, size_t N, const int32_t* acc, size_t ldacc, const SumThresholdCodes& tc, int8_t* out,
                     size_t ldo) {
  for (size_t r = 0; r < rows; ++r)
    for (size_t n = n0; n < N; ++n) {
      const int32_t a = std::min(std::max(acc[r * ldacc + n], int32_t(-32768)), int32_t(32767));
      int32_t c = tc.base;
      for (uint32_t j = 0; j < tc.n_up; ++j) c += a > tc.up[sum_threshold_index(n, j, tc.n_up)];
      for (uint32_t j = 0; j < tc.n_down; ++j) c += a < tc.down[sum_threshold_index(n, j, tc.n_down)];
      out[r * ldo + n] = int8_t(c);
    }
}

// 16 sums of one row as two int16 vectors (the narrows saturate, as the reference clamps).
inline void load_sums16(const int32_t* a, v128_t& lo, v128_t& hi) {
  lo = wasm_i16x8_narrow_i32x4(wasm_v128_load(a), wasm_v128_load(a + 4));
  hi = wasm_i16x8_narrow_i32x4(wasm_v128_load(a + 8), wasm_v128_load(a + 12));
}
}  // namespace

void i32_tcodes_qs8_ref(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const SumThresholdCodes& tc, int8_t* out,
                        size_t ldo) {
  tcodes_ref_from(0, rows, N, acc, ldacc, tc, out, ldo);
}

void i32_tcodes_qs8_wasmsimd(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const SumThresholdCodes& tc, int8_t* out,
                             size_t ldo) {
  const v128_t base = wasm_i16x8_splat(int16_t(tc.base));
  const size_t N16 = N & ~size_t(15);
  for (size_t r = 0; r < rows; r += 2) {  // two rows a pass: each threshold vector loaded once for both
    const bool pair = r + 1 < rows;            // a last row alone is counted as its own pair (stored twice, the same)
    const int32_t *a = acc + r * ldacc, *b = pair ? a + ldacc : a;
    int8_t *oa = out + r * ldo, *ob = pair ? oa + ldo : oa;
    for (size_t n = 0; n < N16; n += 16) {
      v128_t a0, a1, b0, b1;
      load_sums16(a + n, a0, a1);
      load_sums16(b + n, b0, b1);
      v128_t ca0 = base, ca1 = base, cb0 = base, cb1 = base;
      const int16_t* t = tc.up + n * tc.n_up;  // sum_threshold_index(n, 0, n_up), then 16 further per j
      for (uint32_t j = 0; j < tc.n_up; ++j, t += 16) {  // a compare is all ones (−1) where it holds
        const v128_t t0 = wasm_v128_load(t), t1 = wasm_v128_load(t + 8);
        ca0 = wasm_i16x8_sub(ca0, wasm_i16x8_gt(a0, t0)), ca1 = wasm_i16x8_sub(ca1, wasm_i16x8_gt(a1, t1));
        cb0 = wasm_i16x8_sub(cb0, wasm_i16x8_gt(b0, t0)), cb1 = wasm_i16x8_sub(cb1, wasm_i16x8_gt(b1, t1));
      }
      t = tc.down + n * tc.n_down;
      for (uint32_t j = 0; j < tc.n_down; ++j, t += 16) {
        const v128_t t0 = wasm_v128_load(t), t1 = wasm_v128_load(t + 8);
        ca0 = wasm_i16x8_sub(ca0, wasm_i16x8_gt(t0, a0)), ca1 = wasm_i16x8_sub(ca1, wasm_i16x8_gt(t1, a1));
        cb0 = wasm_i16x8_sub(cb0, wasm_i16x8_gt(t0, b0)), cb1 = wasm_i16x8_sub(cb1, wasm_i16x8_gt(t1, b1));
      }
      wasm_v128_store(oa + n, wasm_i8x16_narrow_i16x8(ca0, ca1));  // codes − shift fit int8 (the builder's): exact
      wasm_v128_store(ob + n, wasm_i8x16_narrow_i16x8(cb0, cb1));
    }
  }
  tcodes_ref_from(N16, rows, N, acc, ldacc, tc, out, ldo);
}

void i32_dequant_rc_f32_ref(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* row_offset,
                            const int32_t* col_offset, float scale, float* y, size_t ldy) {
  for (size_t r = 0; r < rows; ++r) {
    const int32_t ro = row_offset ? row_offset[r] : 0;
    for (size_t n = 0; n < N; ++n) y[r * ldy + n] = scale * float(acc[r * ldacc + n] - ro - col_offset[n]);
  }
}

void i32_dequant_rc_f32_wasmsimd(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* row_offset,
                                 const int32_t* col_offset, float scale, float* y, size_t ldy) {
  const v128_t vs = wasm_f32x4_splat(scale);
  for (size_t r = 0; r < rows; ++r) {
    const int32_t* a = acc + r * ldacc;
    float* o = y + r * ldy;
    const int32_t ro = row_offset ? row_offset[r] : 0;
    const v128_t vro = wasm_i32x4_splat(ro);
    size_t n = 0;
    for (; n + 4 <= N; n += 4) {
      const v128_t d = wasm_i32x4_sub(wasm_i32x4_sub(wasm_v128_load(a + n), vro), wasm_v128_load(col_offset + n));
      wasm_v128_store(o + n, wasm_f32x4_mul(vs, wasm_f32x4_convert_i32x4(d)));
    }
    for (; n < N; ++n) o[n] = scale * float(a[n] - ro - col_offset[n]);
  }
}

}  // namespace bitlens::kernels
