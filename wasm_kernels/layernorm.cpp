// LayerNorm over the last dimension, reference and WASM SIMD. gamma and beta must be non-null.
//
//   mean = Σx / n;  var = Σ(x - mean)² / n  (two passes, biased, as PyTorch);
//   rstd = 1 / sqrt(var + eps);  y = ((x - mean) * rstd) * gamma + beta.
// Reduction order (kept by both implementations, so they are bit-identical). With nb = n & ~3:
//   four lane sums s_l (starting at +0) over i = 4j + l (j < nb/4), combined as
//   (s_0 + s_1) + (s_2 + s_3), then the tail i in [nb, n) added in ascending order.
// Both Σx and Σ(x - mean)² use this order. sqrt is IEEE correctly rounded on both targets.
// f32_layernorm_fwd also stores mean[r] and rstd[r] (when non-null); f32_layernorm is it with null stats.
//
// Backward, per row, with mu = mean[r], rs = rstd[r]:
//   xh_i = (x_i - mu) * rs;  g_i = dy_i * gamma_i           (xh_i is the forward's (x - mean) * rstd)
//   sg = Σ g_i,  sgx = Σ g_i * xh_i                         (both in the lane-blocked order above)
//   mg = sg / n;  mgx = sgx / n
//   dx_i += rs * ((g_i - mg) - xh_i * mgx);  dgamma_i += dy_i * xh_i;  dbeta_i += dy_i
// rows in ascending order, so dgamma / dbeta sum the rows in that order. The SIMD form recomputes xh and g
// in its second pass (the same operations, so the same values). dx must not alias dy or x.
#include <cmath>

#include "kernels.h"
#include "simd.h"

namespace bitlens::kernels {

void f32_layernorm_ref(size_t rows, size_t n, const float* x, size_t ldx, const float* gamma,
                       const float* beta, float eps, float* y, size_t ldy) {
  f32_layernorm_fwd_ref(rows, n, x, ldx, gamma, beta, eps, y, ldy, nullptr, nullptr);
}

void f32_layernorm_fwd_ref(size_t rows, size_t n, const float* x, size_t ldx, const float* gamma, const float* beta,
                           float eps, float* y, size_t ldy, float* mean_out, float* rstd_out) {
  if (n == 0) return;
  const size_t nb = n & ~size_t(3);
  const float fn = static_cast<float>(n);
  for (size_t r = 0; r < rows; ++r) {
    const float* px = x + r * ldx;
    float* py = y + r * ldy;
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (size_t i = 0; i < nb; i += 4)
      for (size_t l = 0; l < 4; ++l) s[l] = s[l] + px[i + l];
    float sum = (s[0] + s[1]) + (s[2] + s[3]);
    for (size_t i = nb; i < n; ++i) sum = sum + px[i];
    const float mean = sum / fn;

    float q[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (size_t i = 0; i < nb; i += 4)
      for (size_t l = 0; l < 4; ++l) {
        const float d = px[i + l] - mean;
        q[l] = q[l] + d * d;
      }
    float sq = (q[0] + q[1]) + (q[2] + q[3]);
    for (size_t i = nb; i < n; ++i) {
      const float d = px[i] - mean;
      sq = sq + d * d;
    }
    const float var = sq / fn;
    const float rstd = 1.0f / std::sqrt(var + eps);
    for (size_t i = 0; i < n; ++i) py[i] = ((px[i] - mean) * rstd) * gamma[i] + beta[i];
    if (mean_out) mean_out[r] = mean;
    if (rstd_out) rstd_out[r] = rstd;
  }
}

void f32_layernorm_bwd_ref(size_t rows, size_t n, const float* dy, size_t lddy, const float* x, size_t ldx,
                           const float* gamma, const float* mean, const float* rstd, float* dx, size_t lddx, float* dgamma,
                           float* dbeta) {
  if (n == 0) return;
  const size_t nb = n & ~size_t(3);
  const float fn = static_cast<float>(n);
  for (size_t r = 0; r < rows; ++r) {
    const float* pdy = dy + r * lddy;
    const float* px = x + r * ldx;
    float* pdx = dx + r * lddx;
    const float mu = mean[r], rs = rstd[r];
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f}, q[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (size_t i = 0; i < nb; i += 4)
      for (size_t l = 0; l < 4; ++l) {
        const float xh = (px[i + l] - mu) * rs;
        const float g = pdy[i + l] * gamma[i + l];
        s[l] = s[l] + g;
        q[l] = q[l] + g * xh;
      }
    float sg = (s[0] + s[1]) + (s[2] + s[3]);
    float sgx = (q[0] + q[1]) + (q[2] + q[3]);
    for (size_t i = nb; i < n; ++i) {
      const float xh = (px[i] - mu) * rs;
      const float g = pdy[i] * gamma[i];
      sg = sg + g;
      sgx = sgx + g * xh;
    }
    const float mg = sg / fn, mgx = sgx / fn;
    for (size_t i = 0; i < n; ++i) {
      const float xh = (px[i] - mu) * rs;
      const float g = pdy[i] * gamma[i];
      pdx[i] = pdx[i] + rs * ((g - mg) - xh * mgx);
      dgamma[i] = dgamma[i] + pdy[i] * xh;
      dbeta[i] = dbeta[i] + pdy[i];
    }
  }
}

void f32_layernorm_wasmsimd(size_t rows, size_t n, const float* x, size_t ldx, const float* gamma,
                            const float* beta, float eps, float* y, size_t ldy) {
  f32_layernorm_fwd_wasmsimd(rows, n, x, ldx, gamma, beta, eps, y, ldy, nullptr, nullptr);
}

void f32_layernorm_fwd_wasmsimd(size_t rows, size_t n, const float* x, size_t ldx, const float* gamma, const float* beta,
                                float eps, float* y, size_t ldy, float* mean_out, float* rstd_out) {
  if (n == 0) return;
  const size_t nb = n & ~size_t(3);
  const float fn = static_cast<float>(n);
  for (size_t r = 0; r < rows; ++r) {
    const float* px = x + r * ldx;
    float* py = y + r * ldy;
    v128_t vs = wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < nb; i += 4) vs = wasm_f32x4_add(vs, wasm_v128_load(px + i));
    float sum = (wasm_f32x4_extract_lane(vs, 0) + wasm_f32x4_extract_lane(vs, 1)) +
                (wasm_f32x4_extract_lane(vs, 2) + wasm_f32x4_extract_lane(vs, 3));
    for (size_t i = nb; i < n; ++i) sum = sum + px[i];
    const float mean = sum / fn;

    const v128_t vmean = wasm_f32x4_splat(mean);
    v128_t vq = wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < nb; i += 4) {
      const v128_t d = wasm_f32x4_sub(wasm_v128_load(px + i), vmean);
      vq = wasm_f32x4_add(vq, wasm_f32x4_mul(d, d));
    }
    float sq = (wasm_f32x4_extract_lane(vq, 0) + wasm_f32x4_extract_lane(vq, 1)) +
               (wasm_f32x4_extract_lane(vq, 2) + wasm_f32x4_extract_lane(vq, 3));
    for (size_t i = nb; i < n; ++i) {
      const float d = px[i] - mean;
      sq = sq + d * d;
    }
    const float var = sq / fn;
    const float rstd = 1.0f / std::sqrt(var + eps);

    const v128_t vrstd = wasm_f32x4_splat(rstd);
    for (size_t i = 0; i < nb; i += 4) {
      const v128_t t = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(px + i), vmean), vrstd);
      wasm_v128_store(py + i,
                      wasm_f32x4_add(wasm_f32x4_mul(t, wasm_v128_load(gamma + i)), wasm_v128_load(beta + i)));
    }
    for (size_t i = nb; i < n; ++i) py[i] = ((px[i] - mean) * rstd) * gamma[i] + beta[i];
    if (mean_out) mean_out[r] = mean;
    if (rstd_out) rstd_out[r] = rstd;
  }
}


void f32_layernorm_bwd_wasmsimd(size_t rows, size_t n, const float* dy, size_t lddy, const float* x, size_t ldx,
                                const float* gamma, const float* mean, const float* rstd, float* dx, size_t lddx,
                                float* dgamma, float* dbeta) {
  if (n == 0) return;
  const size_t nb = n & ~size_t(3);
  const float fn = static_cast<float>(n);
  for (size_t r = 0; r < rows; ++r) {
    const float* pdy = dy + r * lddy;
    const float* px = x + r * ldx;
    float* pdx = dx + r * lddx;
    const float mu = mean[r], rs = rstd[r];
    const v128_t vmu = wasm_f32x4_splat(mu), vrs = wasm_f32x4_splat(rs);
    v128_t vs = wasm_f32x4_splat(0.0f), vq = wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < nb; i += 4) {
      const v128_t xh = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(px + i), vmu), vrs);
      const v128_t g = wasm_f32x4_mul(wasm_v128_load(pdy + i), wasm_v128_load(gamma + i));
      vs = wasm_f32x4_add(vs, g);
      vq = wasm_f32x4_add(vq, wasm_f32x4_mul(g, xh));
    }
    float sg = (wasm_f32x4_extract_lane(vs, 0) + wasm_f32x4_extract_lane(vs, 1)) +
               (wasm_f32x4_extract_lane(vs, 2) + wasm_f32x4_extract_lane(vs, 3));
    float sgx = (wasm_f32x4_extract_lane(vq, 0) + wasm_f32x4_extract_lane(vq, 1)) +
                (wasm_f32x4_extract_lane(vq, 2) + wasm_f32x4_extract_lane(vq, 3));
    for (size_t i = nb; i < n; ++i) {
      const float xh = (px[i] - mu) * rs;
      const float g = pdy[i] * gamma[i];
      sg = sg + g;
      sgx = sgx + g * xh;
    }
    const float mg = sg / fn, mgx = sgx / fn;
    const v128_t vmg = wasm_f32x4_splat(mg), vmgx = wasm_f32x4_splat(mgx);
    for (size_t i = 0; i < nb; i += 4) {
      const v128_t d = wasm_v128_load(pdy + i);
      const v128_t xh = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(px + i), vmu), vrs);
      const v128_t g = wasm_f32x4_mul(d, wasm_v128_load(gamma + i));
      const v128_t t = wasm_f32x4_sub(wasm_f32x4_sub(g, vmg), wasm_f32x4_mul(xh, vmgx));
      wasm_v128_store(pdx + i, wasm_f32x4_add(wasm_v128_load(pdx + i), wasm_f32x4_mul(vrs, t)));
      wasm_v128_store(dgamma + i, wasm_f32x4_add(wasm_v128_load(dgamma + i), wasm_f32x4_mul(d, xh)));
      wasm_v128_store(dbeta + i, wasm_f32x4_add(wasm_v128_load(dbeta + i), d));
    }
    for (size_t i = nb; i < n; ++i) {
      const float xh = (px[i] - mu) * rs;
      const float g = pdy[i] * gamma[i];
      pdx[i] = pdx[i] + rs * ((g - mg) - xh * mgx);
      dgamma[i] = dgamma[i] + pdy[i] * xh;
      dbeta[i] = dbeta[i] + pdy[i];
    }
  }
}

}  // namespace bitlens::kernels
