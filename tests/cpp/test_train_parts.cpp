// Training-engine parts: losses and their gradients (against double-precision formulas and central
// finite differences), AdamW / learning-rate schedule / gradient clipping (against hand-computed
// arithmetic), bl_cosd (against std::cos), and quantizers in training (forward bit-identical to
// Quantizer::fake, STE/LSQ backward against the formulas, LSQ descent on mis-scaled quantizers).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "loss.h"
#include "optim.h"
#include "qtrain.h"
#include "quant.h"

using namespace bitlens;
using namespace bitlens::train;

namespace {

// ---- losses: double-precision references (libm is fine here: these are the yardstick) ----------
double ref_lse(const double* z, size_t C) {
    double m = z[0];
    for (size_t c = 1; c < C; ++c) m = std::max(m, z[c]);
    double s = 0;
    for (size_t c = 0; c < C; ++c) s += std::exp(z[c] - m);
    return m + std::log(s);
}
// Mean over rows of −Σ_c t_c log softmax(z)_c, t = (1−eps)·onehot + eps/C.
double ref_cross_entropy(const std::vector<double>& z, const std::vector<int>& y, size_t C, double eps) {
    const size_t rows = y.size();
    double total = 0;
    for (size_t r = 0; r < rows; ++r) {
        const double lse = ref_lse(&z[r * C], C);
        for (size_t c = 0; c < C; ++c) {
            const double t = (int(c) == y[r] ? 1 - eps : 0.0) + eps / double(C);
            total += t * (lse - z[r * C + c]);
        }
    }
    return total / double(rows);
}
// T² · mean over rows of KL(softmax(t/T) || softmax(s/T)).
double ref_kl(const std::vector<double>& s, const std::vector<double>& t, size_t C, double T) {
    const size_t rows = s.size() / C;
    double total = 0;
    for (size_t r = 0; r < rows; ++r) {
        std::vector<double> a(C), b(C);
        for (size_t c = 0; c < C; ++c) a[c] = s[r * C + c] / T, b[c] = t[r * C + c] / T;
        const double la = ref_lse(a.data(), C), lb = ref_lse(b.data(), C);
        for (size_t c = 0; c < C; ++c) total += std::exp(b[c] - lb) * ((b[c] - lb) - (a[c] - la));
    }
    return T * T * total / double(rows);
}
double ref_mse(const std::vector<double>& x, const std::vector<double>& y) {
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += (x[i] - y[i]) * (x[i] - y[i]);
    return s / double(x.size());
}
std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }
// Central finite difference of f at every coordinate of x (double throughout).
template <class F>
std::vector<double> central_diff(F f, std::vector<double> x, double h) {
    std::vector<double> g(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
        const double x0 = x[i];
        x[i] = x0 + h;
        const double fp = f(x);
        x[i] = x0 - h;
        const double fm = f(x);
        x[i] = x0;
        g[i] = (fp - fm) / (2 * h);
    }
    return g;
}

// bl_expf's relative error is ≤ 2e-7; the loss is double after the exponentials.
constexpr double kLossTol = 1e-6;      // |loss − ref| ≤ kLossTol · max(1, |ref|)
// Float rounding of the written gradient (~6e-8 relative) plus bl_expf's error in p, plus the
// O(h²) ≈ 1e-10 truncation of the finite difference.
constexpr double kGradTol = 1e-6;      // absolute, per element
constexpr double kFdStep = 1e-4;

void check_close(double got, double want, double tol) {
    CAPTURE(got);
    CAPTURE(want);
    CHECK(std::fabs(got - want) <= tol * std::max(1.0, std::fabs(want)));
}
void check_grad(const std::vector<float>& got, const std::vector<double>& want, double tol) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        CAPTURE(got[i]);
        CAPTURE(want[i]);
        CHECK(std::fabs(double(got[i]) - want[i]) <= tol);
    }
}

// 4 rows × 5 classes: ordinary logits, a row of equal logits, a confident row, and a row with large
// magnitudes that overflows a naive exp.
const size_t kRows = 4, kC = 5;
const std::vector<float> kLogits = {0.5f, -1.25f, 2.0f, 0.0f, 0.75f,   //
                                    1.0f, 1.0f, 1.0f, 1.0f, 1.0f,      //
                                    -3.0f, 8.5f, 0.25f, -0.5f, 1.5f,   //
                                    95.0f, 120.0f, -80.0f, 118.5f, 60.0f};
const std::vector<int> kLabels = {2, 4, 1, 3};
const std::vector<float> kTeacher = {0.25f, -1.0f, 2.5f, 0.5f, 0.0f,   //
                                     3.0f, -2.0f, 0.0f, 1.0f, -1.0f,    //
                                     -2.0f, 7.0f, 1.25f, 0.5f, 1.0f,    //
                                     100.0f, 110.0f, -60.0f, 121.0f, 70.0f};

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Losses

TEST_CASE("loss: cross-entropy and its gradient equal the double formula and its central differences") {
    for (float eps : {0.0f, 0.1f, 0.3f}) {
        CAPTURE(eps);
        std::vector<float> d(kLogits.size(), std::numeric_limits<float>::quiet_NaN());  // written with =, not +=
        const double loss = cross_entropy(kLogits.data(), kLabels.data(), kRows, kC, eps, d.data());
        check_close(loss, ref_cross_entropy(to_double(kLogits), kLabels, kC, eps), kLossTol);
        const auto f = [&](const std::vector<double>& z) { return ref_cross_entropy(z, kLabels, kC, eps); };
        check_grad(d, central_diff(f, to_double(kLogits), kFdStep), kGradTol);
    }
}

TEST_CASE("loss: cross-entropy with smoothing 0 is plain cross-entropy, −mean log p_label") {
    std::vector<float> d(kLogits.size());
    const double loss = cross_entropy(kLogits.data(), kLabels.data(), kRows, kC, 0.0f, d.data());
    const std::vector<double> z = to_double(kLogits);
    double plain = 0;
    for (size_t r = 0; r < kRows; ++r) plain += ref_lse(&z[r * kC], kC) - z[r * kC + size_t(kLabels[r])];
    check_close(loss, plain / kRows, kLossTol);
    // The gradient is softmax − onehot over rows; a row sums to 0.
    for (size_t r = 0; r < kRows; ++r) {
        double s = 0;
        for (size_t c = 0; c < kC; ++c) s += d[r * kC + c];
        CHECK(std::fabs(s) <= 1e-7);
        CHECK(d[r * kC + size_t(kLabels[r])] < 0.0f);
    }
    // A −inf logit of another class costs nothing without smoothing (no 0·∞).
    const float z2[3] = {1.0f, -std::numeric_limits<float>::infinity(), 0.0f};
    const int y2[1] = {0};
    float d2[3];
    check_close(cross_entropy(z2, y2, 1, 3, 0.0f, d2), std::log(1 + std::exp(-1.0)), kLossTol);
    CHECK(d2[1] == 0.0f);
}

TEST_CASE("loss: the scale argument multiplies every gradient, and outputs may alias inputs") {
    std::vector<float> d1(kLogits.size()), d2(kLogits.size());
    const double l1 = cross_entropy(kLogits.data(), kLabels.data(), kRows, kC, 0.1f, d1.data());
    const double l2 = cross_entropy(kLogits.data(), kLabels.data(), kRows, kC, 0.1f, d2.data(), 0.5f);
    CHECK(l1 == l2);  // the loss is not scaled
    for (size_t i = 0; i < d1.size(); ++i) CHECK(d2[i] == doctest::Approx(0.5 * d1[i]).epsilon(1e-6));
    std::vector<float> z = kLogits;  // dlogits = logits
    const double l3 = cross_entropy(z.data(), kLabels.data(), kRows, kC, 0.1f, z.data());
    CHECK(l3 == l1);
    CHECK(z == d1);
    std::vector<float> s = kLogits, ds(kLogits.size());
    kl_distill(kLogits.data(), kTeacher.data(), kRows, kC, 2.0f, ds.data());
    kl_distill(s.data(), kTeacher.data(), kRows, kC, 2.0f, s.data());
    CHECK(s == ds);
}

TEST_CASE("loss: a label outside [0, C) throws naming the row and the label, before writing anything") {
    const std::vector<int> bad = {2, 4, 5, 0};
    std::vector<float> d(kLogits.size(), 7.0f);
    CHECK_THROWS_WITH_AS(cross_entropy(kLogits.data(), bad.data(), kRows, kC, 0.0f, d.data()),
                         doctest::Contains("label 5 of row 2 is outside [0, 5)"), std::runtime_error);
    const std::vector<int> neg = {-1, 0, 0, 0};
    CHECK_THROWS_WITH_AS(cross_entropy(kLogits.data(), neg.data(), kRows, kC, 0.0f, d.data()),
                         doctest::Contains("label -1 of row 0"), std::runtime_error);
    CHECK(std::all_of(d.begin(), d.end(), [](float v) { return v == 7.0f; }));
    CHECK_THROWS_AS(cross_entropy(kLogits.data(), kLabels.data(), kRows, kC, 1.5f, d.data()), std::runtime_error);
    CHECK_THROWS_AS(cross_entropy(kLogits.data(), kLabels.data(), 0, kC, 0.0f, d.data()), std::runtime_error);
    CHECK_THROWS_AS(kl_distill(kLogits.data(), kTeacher.data(), kRows, kC, 0.0f, d.data()), std::runtime_error);
    CHECK_THROWS_AS(mse(kLogits.data(), kTeacher.data(), 0, d.data()), std::runtime_error);
}

TEST_CASE("loss: distillation KL equals T²·KL in double and its gradient equals central differences") {
    for (float T : {1.0f, 2.0f, 4.0f}) {
        CAPTURE(T);
        std::vector<float> d(kLogits.size(), std::numeric_limits<float>::quiet_NaN());
        const double loss = kl_distill(kLogits.data(), kTeacher.data(), kRows, kC, T, d.data());
        const std::vector<double> t = to_double(kTeacher);
        check_close(loss, ref_kl(to_double(kLogits), t, kC, T), kLossTol);
        CHECK(loss > 0);
        const auto f = [&](const std::vector<double>& s) { return ref_kl(s, t, kC, T); };
        check_grad(d, central_diff(f, to_double(kLogits), kFdStep), kGradTol);
    }
}

TEST_CASE("loss: distillation KL of equal logits is exactly 0 with a zero gradient") {
    for (float T : {1.0f, 3.0f}) {
        std::vector<float> d(kLogits.size(), 1.0f);
        CHECK(kl_distill(kLogits.data(), kLogits.data(), kRows, kC, T, d.data()) == 0.0);
        CHECK(std::all_of(d.begin(), d.end(), [](float v) { return v == 0.0f; }));
    }
}

TEST_CASE("loss: mean squared error and its gradient equal the double formula and central differences") {
    const std::vector<float> x = {0.5f, -1.5f, 3.25f, 0.0f, 1e-3f, -7.0f}, y = {0.25f, -1.0f, 3.0f, 2.0f, 0.0f, -6.5f};
    std::vector<float> d(x.size(), std::numeric_limits<float>::quiet_NaN());
    const double loss = mse(x.data(), y.data(), x.size(), d.data(), 3.0f);
    check_close(loss, ref_mse(to_double(x), to_double(y)), 1e-15);
    const auto f = [&](const std::vector<double>& v) { return 3.0 * ref_mse(v, to_double(y)); };
    check_grad(d, central_diff(f, to_double(x), kFdStep), kGradTol);
    for (size_t i = 0; i < x.size(); ++i) CHECK(d[i] == float(2.0 * (double(x[i]) - y[i]) / 6.0 * 3.0));
}

// ---------------------------------------------------------------------------------------------------
// AdamW, schedule, clipping, bl_cosd

TEST_CASE("adamw: one step equals the hand-computed PyTorch AdamW step (3 parameters, with and without decay, steps 1 and 2)") {
    AdamW h;
    h.lr = 0.5f;  // overridden by the lr argument
    h.beta1 = 0.8f, h.beta2 = 0.9f, h.eps = 1e-3f, h.weight_decay = 0.1f;  // none the default: each one matters
    const float lr = 0.05f;
    const std::vector<float> p0 = {0.5f, -1.0f, 2.0f}, g1 = {0.1f, -0.002f, 0.004f}, g2 = {-0.05f, 0.003f, 0.004f};
    // The arithmetic written out in double, from the same float hyper-parameters.
    const double b1 = h.beta1, b2 = h.beta2, eps = h.eps, wd = h.weight_decay, a = lr;
    for (bool decay : {true, false}) {
        CAPTURE(decay);
        std::vector<float> p = p0;
        AdamWState s;
        adamw_step(h, lr, p.data(), g1.data(), 3, s, decay);
        CHECK(s.t == 1);
        std::vector<double> m(3), v(3), want(3);
        for (size_t i = 0; i < 3; ++i) {
            m[i] = (1 - b1) * g1[i];                                  // m1 = (1−β1)·g
            v[i] = (1 - b2) * double(g1[i]) * g1[i];                  // v1 = (1−β2)·g²
            const double mhat = m[i] / (1 - b1), vhat = v[i] / (1 - b2);
            const double decayed = decay ? p0[i] - a * wd * p0[i] : p0[i];
            want[i] = decayed - a * mhat / (std::sqrt(vhat) + eps);
        }
        for (size_t i = 0; i < 3; ++i) {
            CAPTURE(i);
            CHECK(p[i] == doctest::Approx(want[i]).epsilon(2e-7));
            CHECK(s.m[i] == doctest::Approx(m[i]).epsilon(1e-7));
            CHECK(s.v[i] == doctest::Approx(v[i]).epsilon(1e-7));
        }
        const std::vector<double> p1 = want;
        adamw_step(h, lr, p.data(), g2.data(), 3, s, decay);
        CHECK(s.t == 2);
        for (size_t i = 0; i < 3; ++i) {
            m[i] = b1 * m[i] + (1 - b1) * g2[i];
            v[i] = b2 * v[i] + (1 - b2) * double(g2[i]) * g2[i];
            const double mhat = m[i] / (1 - b1 * b1), vhat = v[i] / (1 - b2 * b2);  // bias corrections at t = 2
            const double decayed = decay ? p1[i] - a * wd * p1[i] : p1[i];
            want[i] = decayed - a * mhat / (std::sqrt(vhat) + eps);
        }
        for (size_t i = 0; i < 3; ++i) {
            CAPTURE(i);
            CHECK(p[i] == doctest::Approx(want[i]).epsilon(2e-7));
        }
    }
}

TEST_CASE("adamw: the first step moves each parameter by about lr against its gradient's sign; a wrong-size state throws") {
    AdamW h;
    h.weight_decay = 0;
    std::vector<float> p = {1.0f, 1.0f, 1.0f}, g = {3.0f, -1e-2f, 0.0f};
    AdamWState s;
    adamw_step(h, 1e-3f, p.data(), g.data(), 3, s, true);
    CHECK(p[0] == doctest::Approx(1.0 - 1e-3).epsilon(1e-6));
    CHECK(p[1] == doctest::Approx(1.0 + 1e-3).epsilon(1e-6));
    CHECK(p[2] == 1.0f);
    CHECK_THROWS_WITH_AS(adamw_step(h, 1e-3f, p.data(), g.data(), 2, s, true),
                         doctest::Contains("state holds 3/3 moments for 2 parameters"), std::runtime_error);
    h.beta2 = 1.0f;
    CHECK_THROWS_AS(adamw_step(h, 1e-3f, p.data(), g.data(), 3, s, true), std::runtime_error);
}

const double kPiD = 3.14159265358979323846;

TEST_CASE("lr_at: linear warm-up from base/warmup to base, cosine to min_lr, at start, end and middle") {
    const float base = 1e-3f, lo = 1e-5f;
    const long total = 110, warmup = 10;
    CHECK(lr_at(0, total, warmup, base, lo) == float(double(base) / 10));
    CHECK(lr_at(4, total, warmup, base, lo) == float(double(base) * 5 / 10));
    CHECK(lr_at(9, total, warmup, base, lo) == base);   // end of warm-up
    CHECK(lr_at(10, total, warmup, base, lo) == base);  // cosine starts at cos 0 = 1
    CHECK(lr_at(60, total, warmup, base, lo) == doctest::Approx(lo + 0.5 * (double(base) - lo)).epsilon(1e-7));
    const double end = lo + 0.5 * (1 + std::cos(kPiD * 99 / 100)) * (double(base) - lo);
    CHECK(lr_at(109, total, warmup, base, lo) == doctest::Approx(end).epsilon(1e-7));
    CHECK(lr_at(109, total, warmup, base, lo) > lo);
    for (long t = 10; t < total; ++t) {  // every step against the libm formula, and monotone
        CAPTURE(t);
        const double want = lo + 0.5 * (1 + std::cos(kPiD * double(t - warmup) / double(total - warmup))) * (double(base) - lo);
        CHECK(lr_at(t, total, warmup, base, lo) == doctest::Approx(want).epsilon(1e-7));
        if (t > 10) CHECK(lr_at(t, total, warmup, base, lo) <= lr_at(t - 1, total, warmup, base, lo));
    }
    CHECK(lr_at(0, 100, 0, base) == base);  // no warm-up
    CHECK_THROWS_AS(lr_at(total, total, warmup, base, lo), std::runtime_error);
    CHECK_THROWS_AS(lr_at(-1, total, warmup, base, lo), std::runtime_error);
}

TEST_CASE("clip_grad_norm: returns the global norm, scales every array by max_norm/(norm + 1e-6), leaves small ones untouched") {
    const std::vector<float> a0 = {3.0f, 0.0f}, b0 = {4.0f, -12.0f};
    std::vector<float> a = a0, b = b0;
    std::vector<std::pair<float*, size_t>> grads = {{a.data(), a.size()}, {b.data(), b.size()}};
    CHECK(clip_grad_norm(grads, 6.5) == 13.0);  // √(9 + 16 + 144)
    const double c = 6.5 / (13.0 + 1e-6);
    for (size_t i = 0; i < 2; ++i) CHECK(a[i] == float(double(a0[i]) * c));
    for (size_t i = 0; i < 2; ++i) CHECK(b[i] == float(double(b0[i]) * c));
    const double after = std::sqrt(double(a[0]) * a[0] + double(b[0]) * b[0] + double(b[1]) * b[1]);
    CHECK(after == doctest::Approx(6.5).epsilon(1e-6));
    CHECK(after < 6.5);
    for (double max_norm : {13.0, 100.0, 0.0, -1.0}) {  // not above max_norm, or clipping off
        a = a0, b = b0;
        CHECK(clip_grad_norm(grads, max_norm) == 13.0);
        CHECK(a == a0);
        CHECK(b == b0);
    }
    b[1] = std::numeric_limits<float>::quiet_NaN();
    CHECK(std::isnan(clip_grad_norm(grads, 1.0)));
    CHECK(a == a0);  // left for the caller to skip the step
}

TEST_CASE("bl_cosd: within 1e-15 relative of std::cos on [-100, 100], next to the zeros too, and even") {
    double worst = 0;
    auto check = [&](double x) {
        const double got = bl_cosd(x), want = std::cos(x);
        const double rel = std::fabs(got - want) / std::fabs(want);
        worst = std::max(worst, rel);
        if (!(rel <= 1e-15)) {
            CAPTURE(x);
            CAPTURE(got);
            CAPTURE(want);
            CHECK(rel <= 1e-15);
        }
        if (bl_cosd(-x) != got) CHECK(bl_cosd(-x) == got);
    };
    const int kGrid = 2000000;
    for (int i = 0; i <= kGrid; ++i) check(-100.0 + 200.0 * i / kGrid);
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> u(-100.0, 100.0);
    for (int i = 0; i < 1000000; ++i) check(u(rng));
    // The doubles nearest the multiples of π/2 (where cos is ~1e-17 and the reduction must keep ~100
    // bits), their neighbours, and the edge of the no-reduction range π/4.
    for (int k = -63; k <= 63; ++k) {
        double x = k * 1.5707963267948966;
        for (int j = 0; j < 4; ++j) x = std::nextafter(x, -1e300);
        for (int j = 0; j < 8; ++j, x = std::nextafter(x, 1e300)) check(x);
    }
    double x = 0.7853981633974483;
    for (int j = 0; j < 4; ++j) x = std::nextafter(x, 0.0);
    for (int j = 0; j < 8; ++j, x = std::nextafter(x, 1.0)) check(x);
    for (double t : {0.0, 1e-300, 1e-9, 1.0, 3.0, 99.99}) check(t);
    MESSAGE("bl_cosd worst relative error vs std::cos: " << worst);
    CHECK(std::isnan(bl_cosd(std::numeric_limits<double>::infinity())));
    CHECK(std::isnan(bl_cosd(std::numeric_limits<double>::quiet_NaN())));
    CHECK(bl_cosd(800000.0) == doctest::Approx(std::cos(800000.0)).epsilon(1e-15));
    CHECK_THROWS_AS(bl_cosd(1e6), std::runtime_error);
}

// ---------------------------------------------------------------------------------------------------
// Quantizers in training

namespace {

std::vector<float> gaussian_values(size_t n, uint32_t seed, float mean = 0.0f, float sd = 1.0f) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(mean, sd);
    std::vector<float> v(n);
    for (float& x : v) x = d(g);
    return v;
}
// Post-softmax-like values in [0, 1] (for log2 and SULQ).
std::vector<float> probabilities(size_t rows, size_t n, uint32_t seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.0f, 2.5f);
    std::vector<float> out;
    for (size_t r = 0; r < rows; ++r) {
        std::vector<double> z(n);
        double s = 0;
        for (double& x : z) x = std::exp(double(d(g))), s += x;
        for (double x : z) out.push_back(float(x / s));
    }
    return out;
}
uint32_t bits_of(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}
Quantizer uniform_q(float scale, int32_t zero, int32_t qmin, int32_t qmax, bool symmetric) {
    Quantizer q;
    q.type = QType::Uniform, q.bits = 4, q.symmetric = symmetric;
    q.scale = scale, q.zero = zero, q.qmin = qmin, q.qmax = qmax;
    return q;
}
// Inputs that probe every edge: random values over and beyond the range, every level and its float
// neighbours, every decision point (level midpoints, thresholds) and its neighbours, ±0, NaN, ±inf,
// huge and subnormal values; an odd count so the SIMD kernels' tails run too.
std::vector<float> probe_values(const Quantizer& q, const std::vector<float>& data) {
    std::vector<float> x;
    std::mt19937 g(11);
    const float lo = q.levels().front(), hi = q.levels().back(), span = hi - lo;
    std::uniform_real_distribution<float> u(lo - 0.5f * span, hi + 0.5f * span);
    for (int i = 0; i < 2001; ++i) x.push_back(u(g));
    x.insert(x.end(), data.begin(), data.begin() + std::min<size_t>(data.size(), 1001));
    std::vector<float> edges = q.levels();
    const std::vector<float> lv = q.levels();
    for (size_t i = 0; i + 1 < lv.size(); ++i) edges.push_back(0.5f * (lv[i] + lv[i + 1]));
    edges.insert(edges.end(), q.thresholds.begin(), q.thresholds.end());
    for (float e : edges) {
        x.push_back(e);
        x.push_back(std::nextafter(e, -INFINITY));
        x.push_back(std::nextafter(e, INFINITY));
    }
    const float inf = std::numeric_limits<float>::infinity();
    for (float v : {0.0f, -0.0f, std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(), inf,
                    -inf, 1e30f, -1e30f, 3e38f, -3e38f, 1e-40f, -1e-40f})
        x.push_back(v);
    if (x.size() % 4 == 0) x.push_back(0.123f);
    return x;
}
// One expected backward element: input, upstream gradient, and the formula's dx / ds / dz terms.
struct BackCase {
    float x, dy, dx, ds, dz;
};
void check_backward(const TrainQuantizer& tq, const std::vector<BackCase>& cases) {
    std::vector<float> x, dy, dx(cases.size(), 99.0f);
    double want_ds = 0, want_dz = 0;
    for (const BackCase& c : cases) x.push_back(c.x), dy.push_back(c.dy), want_ds += c.ds, want_dz += c.dz;
    double ds = 0.5, dz = -0.25;  // added to
    tq.backward(x.data(), dy.data(), dx.data(), x.size(), ds, dz);
    for (size_t i = 0; i < cases.size(); ++i) {
        CAPTURE(cases[i].x);
        CHECK(dx[i] == cases[i].dx);
        // One element at a time: its own ds and dz terms.
        double ds1 = 0, dz1 = 0;
        float dx1;
        tq.backward(&cases[i].x, &cases[i].dy, &dx1, 1, ds1, dz1);
        CHECK(ds1 == double(cases[i].ds));
        CHECK(dz1 == double(cases[i].dz));
    }
    CHECK(ds == 0.5 + want_ds);
    CHECK(dz == -0.25 + want_dz);
    std::vector<float> inplace = dy;  // dx may alias dy
    double a = 0, b = 0;
    tq.backward(x.data(), inplace.data(), inplace.data(), x.size(), a, b);
    CHECK(inplace == dx);
}

}  // namespace

TEST_CASE("qtrain: forward is bit-identical to Quantizer::fake for every quantizer type, at the edges, NaN and ±inf") {
    const std::vector<float> g = gaussian_values(5000, 1), shifted = gaussian_values(5000, 2, 1.5f, 0.7f);
    const std::vector<float> p = probabilities(100, 40, 3);
    std::vector<Quantizer> qs = {fit_uniform(g, 4, true, RangeMethod::MinMax),        fit_uniform(g, 8, true, RangeMethod::Mse),
                                 fit_uniform(shifted, 3, false, RangeMethod::MinMax), fit_uniform(g, 5, false, RangeMethod::Mse),
                                 fit_log2(p, 4),                                       fit_log2(p, 8),
                                 fit_sulq(p, 4),                                       fit_pow2(g, 4),
                                 fit_pow2(g, 6)};
    REQUIRE(qs[2].zero != 0);
    for (const Quantizer& q : qs) {
        CAPTURE(qtype_name(q.type));
        CAPTURE(q.bits);
        const TrainQuantizer tq(q);
        const std::vector<float> x = probe_values(q, q.type == QType::Log2 || q.type == QType::Sulq ? p : g);
        std::vector<float> y(x.size()), inplace = x;
        tq.forward(x.data(), y.data(), x.size());
        tq.forward(inplace.data(), inplace.data(), inplace.size());
        size_t mismatches = 0;
        for (size_t i = 0; i < x.size(); ++i) mismatches += bits_of(y[i]) != bits_of(q.fake(x[i]));
        CHECK(mismatches == 0);
        CHECK(std::memcmp(y.data(), inplace.data(), y.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("qtrain: forward follows changes to q (set_scale, set_zero, and a non-uniform table edited directly)") {
    const std::vector<float> g = gaussian_values(3000, 4, 0.5f);
    TrainQuantizer u(fit_uniform(g, 4, false, RangeMethod::MinMax));
    u.set_scale(u.q.scale * 0.7f);
    u.set_zero(float(u.q.zero) + 2.4f);
    TrainQuantizer p2(fit_pow2(g, 4));
    p2.q.table.back() *= 2;  // not what the cached index was built from
    for (TrainQuantizer* tq : {&u, &p2}) {
        const std::vector<float> x = probe_values(tq->q, g);
        std::vector<float> y(x.size());
        tq->forward(x.data(), y.data(), x.size());
        size_t mismatches = 0;
        for (size_t i = 0; i < x.size(); ++i) mismatches += bits_of(y[i]) != bits_of(tq->q.fake(x[i]));
        CHECK(mismatches == 0);
    }
}

TEST_CASE("qtrain: symmetric uniform backward equals the STE/LSQ formulas inside, below, above and on exact levels") {
    // s = 0.5, codes −7…7: levels −3.5…3.5. Inputs are dyadic so every term below is exact.
    const TrainQuantizer tq(uniform_q(0.5f, 0, -7, 7, true));
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    check_backward(tq, {
        // x      dy     dx     ds = dy·(round(v) − v) inside, dy·(qmin|qmax − z) outside; dz stays 0 (symmetric)
        {1.25f,   1.0f,  1.0f,  -0.5f,  0},   // v = 2.5 → 2 (half to even)
        {1.75f,   2.0f,  2.0f,   1.0f,  0},   // v = 3.5 → 4
        {0.0f,    3.0f,  3.0f,   0.0f,  0},
        {3.5f,   -1.0f, -1.0f,   0.0f,  0},   // exactly the top level: inside
        {3.625f,  4.0f,  4.0f,  -1.0f,  0},   // v = 7.25 → 7: beyond the top level but rounds into it
        {3.75f,   0.5f,  0.0f,   3.5f,  0},   // v = 7.5 → 8 > 7: above, ds = 0.5·7
        {10.0f,   3.0f,  0.0f,  21.0f,  0},
        {-3.5f,   1.0f,  1.0f,   0.0f,  0},   // exactly the bottom level
        {-3.75f,  1.5f,  0.0f, -10.5f,  0},   // v = −7.5 → −8: below, ds = 1.5·(−7)
        {inf,     1.0f,  0.0f,   7.0f,  0},
        {-inf,    1.0f,  0.0f,  -7.0f,  0},
        {nan,     1.0f,  0.0f,  -7.0f,  0},   // NaN takes the lowest code in the forward
    });
}

TEST_CASE("qtrain: asymmetric uniform backward adds the zero point's gradient −s·dy outside the range only") {
    // s = 0.25, z = 3, codes 0…15: levels −0.75…3.
    const TrainQuantizer tq(uniform_q(0.25f, 3, 0, 15, false));
    check_backward(tq, {
        // x        dy    dx    ds                     dz
        {-0.75f,   1.0f, 1.0f,  0.0f,                  0.0f},   // bottom level exactly: u = 0
        {-0.8125f, 2.0f, 2.0f,  0.5f,                  0.0f},   // v = −3.25 → −3: inside
        {-0.875f,  1.0f, 0.0f, -3.0f,                 -0.25f},  // v = −3.5 → −4, u = −1: below, ds = qmin − z
        {-5.0f,    2.0f, 0.0f, -6.0f,                 -0.5f},
        {0.375f,   1.0f, 1.0f,  0.5f,                  0.0f},   // v = 1.5 → 2
        {0.625f,   1.0f, 1.0f, -0.5f,                  0.0f},   // v = 2.5 → 2
        {3.0f,     1.0f, 1.0f,  0.0f,                  0.0f},   // top level exactly: u = 15
        {3.125f,   1.0f, 1.0f, -0.5f,                  0.0f},   // v = 12.5 → 12, u = 15: inside
        {3.375f,   2.0f, 0.0f, 24.0f,                 -0.5f},   // v = 13.5 → 14, u = 17: above, ds = 2·(qmax − z)
    });
}

TEST_CASE("qtrain: the backward's regions agree with Quantizer::code on random values (clipped iff fake is an end level)") {
    const std::vector<float> g = gaussian_values(20000, 5, 0.3f, 1.0f);
    for (bool sym : {true, false}) {
        Quantizer q = fit_uniform(g, 3, sym, RangeMethod::Mse);
        const TrainQuantizer tq(q);
        const std::vector<float> x = probe_values(q, g);
        const std::vector<float> ones(x.size(), 1.0f);
        std::vector<float> dx(x.size());
        double ds = 0, dz = 0;
        tq.backward(x.data(), ones.data(), dx.data(), x.size(), ds, dz);
        const float lo = q.dequant(q.qmin), hi = q.dequant(q.qmax);
        size_t bad = 0;
        for (size_t i = 0; i < x.size(); ++i) {
            const float y = q.fake(x[i]);
            if (dx[i] == 1.0f)  // inside: the rounding error is at most half a step
                bad += !(std::fabs(double(y) - x[i]) <= 0.5 * q.scale * (1 + 1e-6));
            else  // clipped (or NaN): the forward gave an end level, and x lies beyond half a step past it
                bad += !((y == lo && !(x[i] >= lo - 0.5f * q.scale)) || (y == hi && x[i] >= hi + 0.5f * q.scale));
        }
        CHECK(bad == 0);
    }
}

TEST_CASE("qtrain: learn = false and non-uniform quantizers write dx only; symmetric ones leave dzero alone") {
    TrainQuantizer tq(uniform_q(0.25f, 3, 0, 15, false));
    tq.learn = false;
    const float x[3] = {-5.0f, 0.375f, 9.0f}, dy[3] = {1.0f, 2.0f, 3.0f};
    float dx[3];
    double ds = 1.5, dz = 2.5;
    tq.backward(x, dy, dx, 3, ds, dz);
    CHECK(ds == 1.5);
    CHECK(dz == 2.5);
    CHECK(dx[0] == 0.0f);
    CHECK(dx[1] == 2.0f);
    CHECK(dx[2] == 0.0f);
    const TrainQuantizer sym(uniform_q(0.5f, 0, -7, 7, true));
    sym.backward(x, dy, dx, 3, ds, dz);
    CHECK(ds != 1.5);
    CHECK(dz == 2.5);
}

TEST_CASE("qtrain: non-uniform STE masks pass the gradient exactly on [first level, last level] for log2, SULQ and pow2") {
    const std::vector<float> p = probabilities(100, 40, 6), g = gaussian_values(4000, 7);
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    for (const Quantizer& q : {fit_log2(p, 4), fit_sulq(p, 3), make_sulq(0.05, 0.01, 0.9, 4, false), fit_pow2(g, 4)}) {
        CAPTURE(qtype_name(q.type));
        const TrainQuantizer tq(q);
        const float lo = q.table.front(), hi = q.table.back();
        REQUIRE(lo < hi);
        std::vector<float> x = {lo, hi, 0.5f * (lo + hi), std::nextafter(lo, -inf), std::nextafter(hi, inf), lo - 1.0f,
                                hi + 1.0f, nan, inf, -inf};
        std::vector<float> want = {1, 1, 1, 0, 0, 0, 0, 0, 0, 0};
        for (float t : q.thresholds) x.push_back(t), want.push_back(1);
        std::vector<float> dy(x.size());
        for (size_t i = 0; i < dy.size(); ++i) dy[i] = float(i + 1);
        std::vector<float> dx(x.size(), 99.0f);
        double ds = 3.0, dz = 4.0;
        tq.backward(x.data(), dy.data(), dx.data(), x.size(), ds, dz);
        for (size_t i = 0; i < x.size(); ++i) {
            CAPTURE(x[i]);
            CHECK(dx[i] == want[i] * dy[i]);
        }
        CHECK(ds == 3.0);
        CHECK(dz == 4.0);
        CHECK(tq.grad_scale(100) == 0.0f);
    }
    CHECK(TrainQuantizer(fit_pow2(g, 4)).q.table.front() < 0);  // pow2 is signed: the mask is two-sided
}

TEST_CASE("qtrain: LSQ gradient scale is 1/sqrt(n·Qp), Qp = qmax (symmetric) or qmax − qmin (asymmetric)") {
    const TrainQuantizer sym(uniform_q(0.5f, 0, -7, 7, true)), asym(uniform_q(0.25f, 3, 0, 15, false));
    CHECK(sym.grad_scale(1000) == float(1 / std::sqrt(7000.0)));
    CHECK(asym.grad_scale(1000) == float(1 / std::sqrt(15000.0)));
    const std::vector<float> g = gaussian_values(1000, 8);
    CHECK(TrainQuantizer(fit_uniform(g, 8, true, RangeMethod::MinMax)).grad_scale(64) == float(1 / std::sqrt(64.0 * 127)));
    CHECK(TrainQuantizer(fit_uniform(g, 8, false, RangeMethod::MinMax)).grad_scale(64) == float(1 / std::sqrt(64.0 * 255)));
    double ds = 2.0, dz = -3.0;
    asym.finish_grad(1000, ds, dz);
    CHECK(ds == 2.0 * double(asym.grad_scale(1000)));
    CHECK(dz == -3.0 * double(asym.grad_scale(1000)));
    CHECK_THROWS_AS(sym.grad_scale(0), std::runtime_error);
}

TEST_CASE("qtrain: set_scale keeps the step positive, set_zero rounds half to even and clamps; invalid calls throw") {
    TrainQuantizer tq(uniform_q(0.25f, 3, 0, 15, false));
    CHECK(tq.zero_f == 3.0f);
    tq.set_scale(0.125f);
    CHECK(tq.q.scale == 0.125f);
    tq.set_scale(-1.0f);
    CHECK(tq.q.scale == kMinScale);
    tq.set_scale(0.0f);
    CHECK(tq.q.scale == kMinScale);
    CHECK_THROWS_AS(tq.set_scale(std::numeric_limits<float>::quiet_NaN()), std::runtime_error);
    const std::vector<std::pair<float, int>> zeros = {{2.5f, 2}, {3.5f, 4}, {3.49f, 3}, {-3.0f, 0}, {99.0f, 15}, {14.5f, 14}, {1e30f, 15}};
    for (const auto& [z, want] : zeros) {
        tq.set_zero(z);
        CHECK(tq.zero_f == z);
        CHECK(tq.q.zero == want);
    }
    CHECK_THROWS_AS(tq.set_zero(std::numeric_limits<float>::infinity()), std::runtime_error);
    TrainQuantizer sym(uniform_q(0.5f, 0, -7, 7, true));
    CHECK_THROWS_WITH_AS(sym.set_zero(1.0f), doctest::Contains("no learnable zero point"), std::runtime_error);
    TrainQuantizer pw(fit_pow2(gaussian_values(100, 9), 4));
    CHECK_THROWS_AS(pw.set_scale(1.0f), std::runtime_error);
    CHECK_THROWS_AS(TrainQuantizer(uniform_q(0.0f, 0, -7, 7, true)), std::runtime_error);
}

TEST_CASE("qtrain: one LSQ gradient step on the step size lowers the MSE of a quantizer mis-scaled ×3 and ×0.3") {
    // Loss: mean (fake(x) − x)² over Gaussian data, dy = 2(y − x)/n; the step s ← s − lr·g·ds, with LSQ's g.
    for (bool sym : {true, false}) {
        const std::vector<float> x = gaussian_values(20000, 10, sym ? 0.0f : 1.0f);
        const Quantizer fitted = fit_uniform(x, 4, sym, RangeMethod::Mse);
        for (float mis : {3.0f, 0.3f}) {
            CAPTURE(sym);
            CAPTURE(mis);
            TrainQuantizer tq(fitted);
            tq.set_scale(fitted.scale * mis);
            const double before = reconstruction_mse(tq.q, x);
            std::vector<float> y(x.size()), dy(x.size()), dx(x.size());
            tq.forward(x.data(), y.data(), x.size());
            mse(y.data(), x.data(), x.size(), dy.data());
            double ds = 0, dz = 0;
            tq.backward(x.data(), dy.data(), dx.data(), x.size(), ds, dz);
            tq.finish_grad(x.size(), ds, dz);
            CHECK((mis > 1 ? ds > 0 : ds < 0));  // too coarse: shrink; clipping too much: grow
            const float lr = 0.5f, s0 = tq.q.scale;
            tq.set_scale(float(s0 - lr * ds));
            CHECK(std::fabs(tq.q.scale - s0) <= 0.1f * s0);  // a small step
            const double after = reconstruction_mse(tq.q, x);
            MESSAGE("sym " << sym << " ×" << mis << ": s " << fitted.scale * mis << " → " << tq.q.scale << ", MSE " << before
                           << " → " << after << " (fitted " << reconstruction_mse(fitted, x) << ")");
            CHECK(after < before);
        }
    }
}

TEST_CASE("qtrain: 300 AdamW steps on LSQ's gradients bring a ×3 / ×0.3 mis-scaled quantizer within 2% of the fitted MSE") {
    // Loss, quantizer and optimizer together: s (and, asymmetric, the zero point) as the parameters.
    for (bool sym : {true, false}) {
        const std::vector<float> x = gaussian_values(20000, 10, sym ? 0.0f : 1.0f);
        const Quantizer fitted = fit_uniform(x, 4, sym, RangeMethod::Mse);
        const double target = reconstruction_mse(fitted, x);
        for (float mis : {3.0f, 0.3f}) {
            CAPTURE(sym);
            CAPTURE(mis);
            TrainQuantizer tq(fitted);
            tq.set_scale(fitted.scale * mis);
            AdamW h;
            AdamWState state;
            std::vector<float> y(x.size()), dy(x.size()), dx(x.size());
            for (int step = 0; step < 300; ++step) {
                tq.forward(x.data(), y.data(), x.size());
                mse(y.data(), x.data(), x.size(), dy.data());
                double ds = 0, dz = 0;
                tq.backward(x.data(), dy.data(), dx.data(), x.size(), ds, dz);
                tq.finish_grad(x.size(), ds, dz);
                float params[2] = {tq.q.scale, tq.zero_f}, grads[2] = {float(ds), float(dz)};
                adamw_step(h, 0.01f, params, grads, sym ? 1 : 2, state, false);
                tq.set_scale(params[0]);
                if (!sym) tq.set_zero(params[1]);
            }
            const double reached = reconstruction_mse(tq.q, x);
            MESSAGE("sym " << sym << " ×" << mis << ": MSE " << reached << " (fitted " << target << "), s " << tq.q.scale
                           << " (fitted " << fitted.scale << ")");
            CHECK(reached <= 1.02 * target);
        }
    }
}

TEST_CASE("qtrain: per-channel weight quantization equals row-by-row TrainQuantizer calls; per-tensor equals one call") {
    const size_t out = 3, in = 37;
    const std::vector<float> W = gaussian_values(out * in, 12, 0.0f, 0.05f);
    std::vector<TrainQuantizer> rows;
    for (size_t o = 0; o < out; ++o) {
        const std::vector<float> row(W.begin() + long(o * in), W.begin() + long((o + 1) * in));
        rows.emplace_back(fit_uniform(row, 4, o != 1, RangeMethod::Mse));  // row 1 asymmetric
    }
    const std::vector<float> dWq = gaussian_values(out * in, 13);
    std::vector<float> Wq(W.size()), dW(W.size());
    std::vector<double> ds(out, 0.0), dz(out, 0.0);
    weight_quant_forward(rows, W.data(), Wq.data(), out, in);
    weight_quant_backward(rows, W.data(), dWq.data(), dW.data(), out, in, ds, dz);
    for (size_t o = 0; o < out; ++o) {
        CAPTURE(o);
        std::vector<float> y(in), dx(in);
        double s1 = 0, z1 = 0;
        rows[o].forward(W.data() + o * in, y.data(), in);
        rows[o].backward(W.data() + o * in, dWq.data() + o * in, dx.data(), in, s1, z1);
        CHECK(std::memcmp(y.data(), Wq.data() + o * in, in * sizeof(float)) == 0);
        for (size_t i = 0; i < in; ++i) CHECK(bits_of(y[i]) == bits_of(rows[o].q.fake(W[o * in + i])));
        CHECK(std::memcmp(dx.data(), dW.data() + o * in, in * sizeof(float)) == 0);
        CHECK(ds[o] == s1);
        CHECK(dz[o] == z1);
        CHECK(s1 != 0.0);
    }
    CHECK(dz[0] == 0.0);  // symmetric rows have no zero-point gradient
    std::vector<double> fs = ds, fz = dz;
    weight_quant_finish_grad(rows, out, in, fs, fz);
    for (size_t o = 0; o < out; ++o) CHECK(fs[o] == ds[o] * double(rows[o].grad_scale(in)));

    const std::vector<TrainQuantizer> one = {TrainQuantizer(fit_uniform(W, 4, true, RangeMethod::MinMax))};
    std::vector<double> s1(1, 0.0), z1(1, 0.0);
    weight_quant_forward(one, W.data(), Wq.data(), out, in);
    weight_quant_backward(one, W.data(), dWq.data(), dW.data(), out, in, s1, z1);
    std::vector<float> y(W.size()), dx(W.size());
    double a = 0, b = 0;
    one[0].forward(W.data(), y.data(), W.size());
    one[0].backward(W.data(), dWq.data(), dx.data(), W.size(), a, b);
    CHECK(y == Wq);
    CHECK(dx == dW);
    CHECK(s1[0] == a);
    weight_quant_finish_grad(one, out, in, s1, z1);
    CHECK(s1[0] == a * double(one[0].grad_scale(out * in)));

    const std::vector<TrainQuantizer> two(2, one[0]);
    CHECK_THROWS_WITH_AS(weight_quant_forward(two, W.data(), Wq.data(), out, in),
                         doctest::Contains("2 quantizers for 3 output channels"), std::runtime_error);
    std::vector<double> short_sums(2, 0.0);
    CHECK_THROWS_AS(weight_quant_backward(rows, W.data(), dWq.data(), dW.data(), out, in, short_sums, dz), std::runtime_error);
}
