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
