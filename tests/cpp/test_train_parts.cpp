// Training-engine parts: losses and their gradients (against double-precision formulas and central
// finite differences), AdamW / learning-rate schedule / gradient clipping (against hand-computed
// arithmetic), bl_cosd (against std::cos), and quantizers in training (forward bit-identical to
// Quantizer::fake, STE/LSQ backward against the formulas, LSQ descent on mis-scaled quantizers).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "loss.h"
#include "optim.h"

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
