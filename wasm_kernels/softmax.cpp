// Row-wise numerically stable softmax, reference and WASM SIMD.
//
// Reduction order (kept by both implementations, so they are bit-identical). With nb = n & ~3:
//   max: four lane maxima m_l over x[4j + l] (j < nb/4), each starting at -inf and updated with
//        pmax (m = m < v ? v : m, the semantics of wasm f32x4.pmax); combined as
//        pmax(pmax(m_0, m_1), pmax(m_2, m_3)); then the tail x[nb..n) folded in ascending order.
//   sum: four lane sums s_l (starting at +0) of e[4j + l]; combined as (s_0 + s_1) + (s_2 + s_3);
//        then the tail e[nb..n) added in ascending order.
// Element-wise: e_i = bl_expf(x_i - max); x_i = e_i * (1 / sum). (The SIMD form computes the same e_i
// with bl_expf_x4_le88, bit-identical for these inputs, the tail included.)
// Backward (f32_softmax_bwd): dot = Σ_j p_j * dy_j in the sum's order above (each product rounded, then
// added), dx_i = p_i * (dy_i - dot). The dot is complete before any dx_i is written, so dx may alias dy.
#include <algorithm>
#include <limits>

#include "kernels.h"
#include "mathfn.h"
#include "simd.h"

namespace bitlens::kernels {
namespace {
inline float pmax(float a, float b) { return a < b ? b : a; }
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The SIMD forms' exp, sum and normalising passes over one row p of n values (nb = n & ~3), given its max mx and its
// scores through score4(i) (the 4 at i, i < nb) and score1(i) (a tail one), in the order of the comment above. p may
// hold the scores themselves: each is read before its e is written.
template <class Score4, class Score1>
inline void softmax_row_simd(float* p, size_t n, size_t nb, float mx, Score4 score4, Score1 score1) {
  const v128_t vmx = wasm_f32x4_splat(mx);
  v128_t vs = wasm_f32x4_splat(0.0f);
  for (size_t i = 0; i < nb; i += 4) {  // x − max ≤ 0 (or NaN): bl_expf_x4_le88 is bl_expf_x4 there
    const v128_t e = bl_expf_x4_le88(wasm_f32x4_sub(score4(i), vmx));
    wasm_v128_store(p + i, e);
    vs = wasm_f32x4_add(vs, e);
  }
  float sum = (wasm_f32x4_extract_lane(vs, 0) + wasm_f32x4_extract_lane(vs, 1)) +
              (wasm_f32x4_extract_lane(vs, 2) + wasm_f32x4_extract_lane(vs, 3));
  if (nb < n) {  // the 1–3 tail values through one vector exp (lane for lane bl_expf), added in order
    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (size_t i = nb; i < n; ++i) t[i - nb] = score1(i) - mx;
    wasm_v128_store(t, bl_expf_x4_le88(wasm_v128_load(t)));
    for (size_t i = nb; i < n; ++i) {
      p[i] = t[i - nb];
      sum = sum + t[i - nb];
    }
  }
  const float inv = 1.0f / sum;
  const v128_t vinv = wasm_f32x4_splat(inv);
  for (size_t i = 0; i < nb; i += 4) wasm_v128_store(p + i, wasm_f32x4_mul(wasm_v128_load(p + i), vinv));
  for (size_t i = nb; i < n; ++i) p[i] = p[i] * inv;
}
}  // namespace

void f32_softmax_ref(size_t rows, size_t n, float* x, size_t ld) {
  if (n == 0) return;
  const size_t nb = n & ~size_t(3);
  for (size_t r = 0; r < rows; ++r) {
    float* p = x + r * ld;
    float m[4] = {kNegInf, kNegInf, kNegInf, kNegInf};
    for (size_t i = 0; i < nb; i += 4)
      for (size_t l = 0; l < 4; ++l) m[l] = pmax(m[l], p[i + l]);
    float mx = pmax(pmax(m[0], m[1]), pmax(m[2], m[3]));
    for (size_t i = nb; i < n; ++i) mx = pmax(mx, p[i]);

    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (size_t i = 0; i < nb; i += 4)
      for (size_t l = 0; l < 4; ++l) {
        const float e = bl_expf(p[i + l] - mx);
        p[i + l] = e;
        s[l] = s[l] + e;
      }
    float sum = (s[0] + s[1]) + (s[2] + s[3]);
    for (size_t i = nb; i < n; ++i) {
      const float e = bl_expf(p[i] - mx);
      p[i] = e;
      sum = sum + e;
    }
    const float inv = 1.0f / sum;
    for (size_t i = 0; i < n; ++i) p[i] = p[i] * inv;
  }
}

void f32_softmax_wasmsimd(size_t rows, size_t n, float* x, size_t ld) {
  if (n == 0) return;
  const size_t nb = n & ~size_t(3);
  for (size_t r = 0; r < rows; ++r) {
    float* p = x + r * ld;
    v128_t vm = wasm_f32x4_splat(kNegInf);
    for (size_t i = 0; i < nb; i += 4) vm = wasm_f32x4_pmax(vm, wasm_v128_load(p + i));
    float mx = pmax(pmax(wasm_f32x4_extract_lane(vm, 0), wasm_f32x4_extract_lane(vm, 1)),
                    pmax(wasm_f32x4_extract_lane(vm, 2), wasm_f32x4_extract_lane(vm, 3)));
    for (size_t i = nb; i < n; ++i) mx = pmax(mx, p[i]);
    softmax_row_simd(p, n, nb, mx, [&](size_t i) { return wasm_v128_load(p + i); }, [&](size_t i) { return p[i]; });
  }
}

void i32_softmax_rc_f32_ref(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* row_offset,
                            const int32_t* col_offset, float scale, float* y, size_t ldy) {
  i32_dequant_rc_f32_ref(rows, N, acc, ldacc, row_offset, col_offset, scale, y, ldy);
  f32_softmax_ref(rows, N, y, ldy);
}

void i32_softmax_rc_f32_wasmsimd(size_t rows, size_t N, const int32_t* acc, size_t ldacc, const int32_t* row_offset,
                                 const int32_t* col_offset, float scale, float* y, size_t ldy) {
  if (N == 0) return;
  if (!(scale > 0.0f && scale <= std::numeric_limits<float>::max())) {  // the max is not the largest integer's
    i32_dequant_rc_f32_wasmsimd(rows, N, acc, ldacc, row_offset, col_offset, scale, y, ldy);
    return f32_softmax_wasmsimd(rows, N, y, ldy);
  }
  const size_t nb = N & ~size_t(3);
  const v128_t vs = wasm_f32x4_splat(scale);
  for (size_t r = 0; r < rows; ++r) {
    const int32_t* a = acc + r * ldacc;
    float* p = y + r * ldy;
    const int32_t ro = row_offset ? row_offset[r] : 0;
    const v128_t vro = wasm_i32x4_splat(ro);
    auto diff = [&](size_t i) { return wasm_i32x4_sub(wasm_i32x4_sub(wasm_v128_load(a + i), vro), wasm_v128_load(col_offset + i)); };
    v128_t vm = wasm_i32x4_splat(std::numeric_limits<int32_t>::min());
    for (size_t i = 0; i < nb; i += 4) vm = wasm_i32x4_max(vm, diff(i));
    int32_t md = std::max(std::max(wasm_i32x4_extract_lane(vm, 0), wasm_i32x4_extract_lane(vm, 1)),
                          std::max(wasm_i32x4_extract_lane(vm, 2), wasm_i32x4_extract_lane(vm, 3)));
    for (size_t i = nb; i < N; ++i) md = std::max(md, a[i] - ro - col_offset[i]);
    const float mx = scale * float(md);  // i32_dequant_rc_f32's score of the largest difference: the largest score

    // f32_softmax_wasmsimd's passes, each score computed as i32_dequant_rc_f32 computes it.
    softmax_row_simd(p, N, nb, mx, [&](size_t i) { return wasm_f32x4_mul(vs, wasm_f32x4_convert_i32x4(diff(i))); },
                     [&](size_t i) { return scale * float(a[i] - ro - col_offset[i]); });
  }
}

void f32_softmax_bwd_ref(size_t rows, size_t n, const float* p, size_t ldp, const float* dy, size_t lddy, float* dx,
                         size_t lddx) {
  if (n == 0) return;
  const size_t nb = n & ~size_t(3);
  for (size_t r = 0; r < rows; ++r) {
    const float* pp = p + r * ldp;
    const float* pdy = dy + r * lddy;
    float* pdx = dx + r * lddx;
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (size_t i = 0; i < nb; i += 4)
      for (size_t l = 0; l < 4; ++l) s[l] = s[l] + pp[i + l] * pdy[i + l];
    float dot = (s[0] + s[1]) + (s[2] + s[3]);
    for (size_t i = nb; i < n; ++i) dot = dot + pp[i] * pdy[i];
    for (size_t i = 0; i < n; ++i) pdx[i] = pp[i] * (pdy[i] - dot);
  }
}

void f32_softmax_bwd_wasmsimd(size_t rows, size_t n, const float* p, size_t ldp, const float* dy, size_t lddy, float* dx,
                              size_t lddx) {
  if (n == 0) return;
  const size_t nb = n & ~size_t(3);
  for (size_t r = 0; r < rows; ++r) {
    const float* pp = p + r * ldp;
    const float* pdy = dy + r * lddy;
    float* pdx = dx + r * lddx;
    v128_t vs = wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < nb; i += 4)
      vs = wasm_f32x4_add(vs, wasm_f32x4_mul(wasm_v128_load(pp + i), wasm_v128_load(pdy + i)));
    float dot = (wasm_f32x4_extract_lane(vs, 0) + wasm_f32x4_extract_lane(vs, 1)) +
                (wasm_f32x4_extract_lane(vs, 2) + wasm_f32x4_extract_lane(vs, 3));
    for (size_t i = nb; i < n; ++i) dot = dot + pp[i] * pdy[i];
    const v128_t vdot = wasm_f32x4_splat(dot);
    for (size_t i = 0; i < nb; i += 4)
      wasm_v128_store(pdx + i, wasm_f32x4_mul(wasm_v128_load(pp + i), wasm_f32x4_sub(wasm_v128_load(pdy + i), vdot)));
    for (size_t i = nb; i < n; ++i) pdx[i] = pp[i] * (pdy[i] - dot);
  }
}

}  // namespace bitlens::kernels
