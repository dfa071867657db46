#include "optim.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace bitlens::train {

namespace {

// b^e for e ≥ 0 by squaring: deterministic, within a few ulps of pow for the t of a training run.
double pow_int(double b, long e) {
    double r = 1.0, x = b;
    for (; e > 0; e >>= 1) {
        if (e & 1) r = r * x;
        x = x * x;
    }
    return r;
}

// fdlibm (FreeBSD msun): π/2 in 33-bit parts, so n·part is exact for n < 2^20, and 2/π.
constexpr double kPio2_1 = 1.57079632673412561417e+00;   // 0x3FF921FB 54400000: first 33 bits of π/2
constexpr double kPio2_2 = 6.07710050630396597660e-11;   // 0x3DD0B461 1A600000: next 33 bits
constexpr double kPio2_2t = 2.02226624879595063154e-21;  // π/2 − (kPio2_1 + kPio2_2)
constexpr double kPio2_3 = 2.02226624871116645580e-21;   // 0x3BA3198A 2E000000: next 33 bits
constexpr double kPio2_3t = 8.47842766036889956997e-32;  // π/2 − (kPio2_1 + kPio2_2 + kPio2_3)
constexpr double kInvPio2 = 6.36619772367581382433e-01;  // 0x3FE45F30 6DC9C883
constexpr double kPio4 = 7.85398163397448278999e-01;
constexpr double kMaxCosArg = 823549.6;                   // 2^19·π/2, fdlibm's "medium" reduction limit

// cos(x + y) for |x| ≤ ~π/4, |y| ≪ ulp(x) (fdlibm k_cos.c, FreeBSD version): 1 − x²/2 + x⁴·C(x²).
double kernel_cos(double x, double y) {
    constexpr double C1 = 4.16666666666666019037e-02, C2 = -1.38888888888741095749e-03,
                     C3 = 2.48015872894767294178e-05, C4 = -2.75573143513906633035e-07,
                     C5 = 2.08757232129817482790e-09, C6 = -1.13596475577881948265e-11;
    const double z = x * x, w = z * z;
    const double r = z * (C1 + z * (C2 + z * C3)) + w * w * (C4 + z * (C5 + z * C6));
    const double hz = 0.5 * z, v = 1.0 - hz;
    return v + (((1.0 - v) - hz) + (z * r - x * y));
}

// sin(x + y) for |x| ≤ ~π/4 (fdlibm k_sin.c, with the tail y).
double kernel_sin(double x, double y) {
    constexpr double S1 = -1.66666666666666324348e-01, S2 = 8.33333333332248946124e-03,
                     S3 = -1.98412698298579493134e-04, S4 = 2.75573137070700676789e-06,
                     S5 = -2.50507602534068634195e-08, S6 = 1.58969099521155010221e-10;
    const double z = x * x, w = z * z;
    const double r = S2 + z * (S3 + z * S4) + z * w * (S5 + z * S6);
    const double v = z * x;
    return x - ((z * (0.5 * y - v * r) - y) - v * S1);
}

}  // namespace

double bl_cosd(double x) {
    if (!(std::fabs(x) <= std::numeric_limits<double>::max())) return std::numeric_limits<double>::quiet_NaN();
    const double t = std::fabs(x);  // cos is even
    if (t <= kPio4) return kernel_cos(t, 0.0);
    if (t > kMaxCosArg)
        throw std::runtime_error("bl_cosd: argument " + std::to_string(x) + " is beyond the reduction's range ±823549");
    // t = n·π/2 + (y0 + y1): fdlibm's e_rem_pio2 medium case, all three stages (good to ~150 bits,
    // which covers the arguments closest to a multiple of π/2).
    const long n = long(t * kInvPio2 + 0.5);
    const double fn = double(n);
    double r = t - fn * kPio2_1;  // exact: fn·kPio2_1 has ≤ 53 bits (fdlibm's 1st stage would subtract fn·kPio2_1t)
    double u = r, w = fn * kPio2_2;
    r = u - w;
    w = fn * kPio2_2t - ((u - r) - w);
    u = r;
    w = fn * kPio2_3;
    r = u - w;
    w = fn * kPio2_3t - ((u - r) - w);
    const double y0 = r - w, y1 = (r - y0) - w;
    switch (n & 3) {
        case 0: return kernel_cos(y0, y1);
        case 1: return -kernel_sin(y0, y1);
        case 2: return -kernel_cos(y0, y1);
        default: return kernel_sin(y0, y1);
    }
}

void adamw_step(const AdamW& h, float lr, float* p, const float* g, size_t n, AdamWState& s, bool decay) {
    if (!(h.beta1 >= 0.0f && h.beta1 < 1.0f) || !(h.beta2 >= 0.0f && h.beta2 < 1.0f))
        throw std::runtime_error("adamw: betas (" + std::to_string(h.beta1) + ", " + std::to_string(h.beta2) +
                                 ") must lie in [0, 1)");
    if (!(h.eps >= 0.0f) || !(lr >= 0.0f) || !(h.weight_decay >= 0.0f))
        throw std::runtime_error("adamw: lr " + std::to_string(lr) + ", eps " + std::to_string(h.eps) +
                                 " and weight decay " + std::to_string(h.weight_decay) + " must be ≥ 0");
    if (s.t == 0 && s.m.empty() && s.v.empty()) s.m.assign(n, 0.0f), s.v.assign(n, 0.0f);
    if (s.m.size() != n || s.v.size() != n)
        throw std::runtime_error("adamw: state holds " + std::to_string(s.m.size()) + "/" + std::to_string(s.v.size()) +
                                 " moments for " + std::to_string(n) + " parameters");
    s.t += 1;
    const double b1 = h.beta1, b2 = h.beta2, eps = h.eps;
    const double step_size = double(lr) / (1.0 - pow_int(b1, s.t));
    const double bc2_sqrt = std::sqrt(1.0 - pow_int(b2, s.t));
    const double keep = 1.0 - double(lr) * double(h.weight_decay);
    for (size_t i = 0; i < n; ++i) {
        double pi = p[i];
        if (decay) pi = pi * keep;
        const double gi = g[i];
        const float m = float(b1 * double(s.m[i]) + (1.0 - b1) * gi);
        const float v = float(b2 * double(s.v[i]) + (1.0 - b2) * gi * gi);
        s.m[i] = m, s.v[i] = v;
        const double denom = std::sqrt(double(v)) / bc2_sqrt + eps;
        p[i] = float(pi - step_size * double(m) / denom);
    }
}

float lr_at(long step, long total, long warmup, float base, float min_lr) {
    if (total <= 0 || warmup < 0 || step < 0 || step >= total)
        throw std::runtime_error("lr_at: step " + std::to_string(step) + " is outside [0, " + std::to_string(total) +
                                 ") (warm-up " + std::to_string(warmup) + ")");
    if (step < warmup) return float(double(base) * double(step + 1) / double(warmup));
    constexpr double kPi = 3.14159265358979323846;
    const double ratio = double(step - warmup) / double(total - warmup);  // in [0, 1)
    const double coeff = 0.5 * (1.0 + bl_cosd(kPi * ratio));
    return float(double(min_lr) + coeff * (double(base) - double(min_lr)));
}

double clip_grad_norm(const std::vector<std::pair<float*, size_t>>& grads, double max_norm) {
    double ss = 0;
    for (const auto& [g, n] : grads)
        for (size_t i = 0; i < n; ++i) ss += double(g[i]) * double(g[i]);
    const double norm = std::sqrt(ss);
    if (max_norm > 0 && norm > max_norm && norm <= std::numeric_limits<double>::max()) {
        const double c = max_norm / (norm + 1e-6);
        for (const auto& [g, n] : grads)
            for (size_t i = 0; i < n; ++i) g[i] = float(double(g[i]) * c);
    }
    return norm;
}

}  // namespace bitlens::train
