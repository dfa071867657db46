// Quantizers: levels, idempotence, error bounds, zero, SULQ → log2 as η → 0, power-of-two levels,
// parameter searches on constructed cases, and where each post-softmax quantizer wins.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "quant.h"

using namespace bitlens;

namespace {
std::vector<float> gaussian(size_t n, uint32_t seed, float sd = 1.0f) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.0f, sd);
    std::vector<float> v(n);
    for (float& x : v) x = d(g);
    return v;
}
// Long-tailed values in [0, 1] like post-softmax probabilities: softmax rows of random logits.
std::vector<float> softmax_like(size_t rows, size_t n, uint32_t seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.0f, 2.5f);
    std::vector<float> out;
    for (size_t r = 0; r < rows; ++r) {
        std::vector<double> z(n);
        double m = -1e9, s = 0;
        for (double& x : z) x = d(g), m = std::max(m, x);
        for (double& x : z) x = std::exp(x - m), s += x;
        for (double x : z) out.push_back(float(x / s));
    }
    return out;
}
Quantizer fit_for_test(QType t, const std::vector<float>& x, int bits) {
    return fit(t, x, bits, t == QType::Uniform, RangeMethod::MinMax);
}
}  // namespace

TEST_CASE("every quantizer at every bit-width 2-8: level count, idempotence, zero, error bound inside the range") {
    for (const QuantizerTraits& tr : kQuantizerTraits) {
        for (int bits = 2; bits <= 8; ++bits) {
            CAPTURE(tr.name);
            CAPTURE(bits);
            std::vector<float> x = tr.non_negative_only ? softmax_like(64, 50, uint32_t(bits)) : gaussian(4000, uint32_t(bits));
            if (tr.non_negative_only) x.push_back(0.0f);  // an underflowed probability
            Quantizer q = fit_for_test(tr.type, x, bits);
            const std::vector<float> lv = q.levels();
            // Level count.
            switch (tr.type) {
                case QType::Uniform: CHECK(lv.size() == size_t((1 << bits) - 1)); break;  // symmetric, restricted
                case QType::Log2:  // at 8 bits, levels below 2^-149 (float's smallest) collapse onto 0
                    CHECK(lv.size() == (bits <= 7 ? size_t(1 << bits) : size_t(151)));
                    break;
                case QType::Sulq: CHECK(lv.size() == size_t(1 << bits)); break;
                case QType::Pow2: CHECK(lv.size() == size_t(2 * (1 << (bits - 2)) + 1)); break;
            }
            CHECK(lv.size() <= size_t(1 << bits));
            CHECK(std::is_sorted(lv.begin(), lv.end()));
            // Zero is representable (these are all calibrated on data that contains or surrounds 0).
            CHECK(q.fake(0.0f) == 0.0f);
            // Idempotence, and the value is one of the levels.
            double max_gap = 0;
            for (size_t i = 1; i < lv.size(); ++i) max_gap = std::max(max_gap, double(lv[i]) - double(lv[i - 1]));
            for (float v : x) {
                const float y = q.fake(v);
                REQUIRE(q.fake(y) == y);
                REQUIRE(std::binary_search(lv.begin(), lv.end(), y));
                // Midpoint decisions (uniform, pow2) err by at most half a gap; log-domain decisions
                // (log2, SULQ) put the threshold above the midpoint, so up to a whole gap.
                const bool log_domain = tr.type == QType::Log2 || tr.type == QType::Sulq;
                const double bound = (log_domain ? max_gap : max_gap / 2) * (1 + 1e-6) + 1e-12;
                if (v >= lv.front() && v <= lv.back()) REQUIRE(std::fabs(double(y) - v) <= bound);
            }
        }
    }
}

namespace {
// FastFake(q).apply and .code against Quantizer::fake and ::code, bit for bit, on `x` plus every
// threshold, its neighbours and its negative, every level, ±0, ±inf, huge and subnormal values, and NaNs
// with assorted payloads.
void require_fast_fake_exact(const Quantizer& q, std::vector<float> x) {
    const FastFake f(q);
    for (float th : q.thresholds) x.insert(x.end(), {th, std::nextafter(th, -INFINITY), std::nextafter(th, INFINITY), -th});
    for (float v : q.table) x.push_back(v);
    x.insert(x.end(), {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 3.4e38f, 1e-40f, -1e-40f});
    for (uint32_t nan_bits : {0x7FFFFFFFu, 0xFFFFFFFFu, 0x7F800001u, 0xFFC00000u}) {
        float v;
        std::memcpy(&v, &nan_bits, 4);
        x.push_back(v);
    }
    std::vector<float> fast = x;
    f.apply(fast.data(), fast.size());
    for (size_t i = 0; i < x.size(); ++i) {
        CAPTURE(x[i]);
        REQUIRE(f.code(x[i]) == q.code(x[i]));
        const float e = q.fake(x[i]);
        REQUIRE(std::memcmp(&fast[i], &e, sizeof e) == 0);
    }
}
}  // namespace

TEST_CASE("FastFake (bucketed thresholds, SIMD uniform) gives exactly Quantizer::code and fake: every type, 2-8 bits, at and next to every threshold, ±0, ±inf, NaN") {
    const std::vector<float> w = gaussian(3000, 21, 0.05f), p = softmax_like(40, 50, 22);
    for (const QuantizerTraits& t : kQuantizerTraits)
        for (int bits = 2; bits <= 8; ++bits)
            for (int data = 0; data < 2; ++data) {
                CAPTURE(t.name);
                CAPTURE(bits);
                CAPTURE(data);
                std::vector<float> x = data ? p : w;
                x.resize(1000);
                require_fast_fake_exact(fit_for_test(t.type, data ? p : w, bits), x);
            }
}

TEST_CASE("FastFake with repeated and crowded thresholds (SULQ's rounded-exponent variant, hand-made tables): the index scans more than one threshold a bucket and still gives exactly Quantizer::fake") {
    std::vector<Quantizer> qs;
    for (int bits = 2; bits <= 8; ++bits) qs.push_back(make_sulq(0.01, 0.0, 1.0, bits, true));  // repeated levels
    Quantizer crowded;  // 200 thresholds one ulp apart near 1e-30, more near 1, and a wide gap
    crowded.type = QType::Log2;
    float v = 1e-30f;
    crowded.table.push_back(0.0f);
    for (int i = 0; i < 200; ++i) crowded.table.push_back(v = std::nextafter(v, 1.0f));
    for (int i = 0; i < 50; ++i) crowded.table.push_back(1.0f + float(i) * 1e-7f);
    crowded.table.push_back(3e38f);
    for (size_t i = 0; i + 1 < crowded.table.size(); ++i) crowded.thresholds.push_back(crowded.table[i + 1]);  // ties on levels
    qs.push_back(crowded);
    std::vector<float> x;
    for (int i = 0; i < 2000; ++i) x.push_back(float(i) / 1999.0f * 1.1f - 0.05f);
    for (const Quantizer& q : qs) {
        CAPTURE(q.table.size());
        require_fast_fake_exact(q, x);
    }
}

TEST_CASE("uniform: asymmetric has 2^b levels and the zero point makes 0 exact; per-range error ≤ scale/2") {
    std::vector<float> x;
    for (int i = 0; i < 1000; ++i) x.push_back(-0.3f + 1.7f * float(i) / 999.0f);
    for (int bits = 2; bits <= 8; ++bits) {
        Quantizer q = fit_uniform(x, bits, false, RangeMethod::MinMax);
        CHECK(q.levels().size() == size_t(1 << bits));
        CHECK(q.fake(0.0f) == 0.0f);
        for (float v : x) CHECK(std::fabs(q.fake(v) - v) <= q.scale * 0.5f + q.scale * 1e-4f + 1e-6f);
    }
}

TEST_CASE("power-of-two (INQ): levels are exactly 0 and ±2^n for n2 ≤ n ≤ n1, n1 = floor(log2(4·max|W|/3))") {
    std::vector<float> w = gaussian(3000, 7, 0.05f);
    float s = 0;
    for (float v : w) s = std::max(s, std::fabs(v));
    for (int bits = 2; bits <= 8; ++bits) {
        Quantizer q = fit_pow2(w, bits);
        CHECK(q.n1 == int(std::floor(std::log2(4.0 * s / 3.0))));
        CHECK(q.n2 == q.n1 + 1 - (1 << (bits - 1)) / 2);
        for (float l : q.levels()) {
            if (l == 0.0f) continue;
            int e;
            CHECK(std::frexp(std::fabs(l), &e) == 0.5f);  // a power of two
            CHECK(e - 1 >= q.n2);
            CHECK(e - 1 <= q.n1);
        }
        // INQ's rounding: |w| in [1.5·2^(n-1), 1.5·2^n) → 2^n.
        if (q.n1 > q.n2) {
            CHECK(q.fake(float(std::ldexp(1.49, q.n1 - 1))) == float(std::ldexp(1.0, q.n1 - 1)));
            CHECK(q.fake(float(std::ldexp(1.51, q.n1 - 1))) == float(std::ldexp(1.0, q.n1)));
        }
        CHECK(q.fake(float(std::ldexp(0.49, q.n2))) == 0.0f);  // below half the smallest magnitude
        CHECK(q.fake(float(std::ldexp(0.51, q.n2))) == float(std::ldexp(1.0, q.n2)));
    }
}

TEST_CASE("SULQ tends to log2 as eta → 0: same levels when the log-domain step is 1") {
    for (int bits = 2; bits <= 6; ++bits) {
        const int n = (1 << bits) - 1;
        const double top = 1.0;
        Quantizer s = make_sulq(1e-40, top * std::ldexp(1.0, -n), top, bits, false);
        CHECK(s.log_delta == doctest::Approx(1.0).epsilon(1e-6));
        Quantizer l = fit_log2({0.0f, float(top)}, bits);
        // log2's non-zero levels top·2^-k (k = 0..n-1) are SULQ's codes 1..n.
        for (int k = 0; k < n; ++k) CHECK(s.table[size_t(n - k)] == doctest::Approx(l.table[size_t(n - k)]).epsilon(1e-6));
    }
}

TEST_CASE("SULQ: the eta search recovers the eta that generated data lying on its grid (zero error)") {
    for (double eta : {0.01, 0.05, 0.2}) {
        Quantizer gen = make_sulq(eta, 0.0, 1.0, 4, false);
        std::vector<float> x;
        for (int rep = 0; rep < 20; ++rep)
            for (float l : gen.table) x.push_back(l);
        Quantizer q = fit_sulq(x, 4);
        CHECK(q.eta == doctest::Approx(eta));
        CHECK(reconstruction_mse(q, x) < 1e-12);
    }
}

TEST_CASE("uniform MSE search finds the known optimal clipping: grid data plus one outlier") {
    // 4-bit asymmetric: 6400 values on the grid k·s (k = 0..15) and one outlier at 30·s. Clipping at
    // half the range gives step exactly s: only the outlier has an error (225·s²/6401, the optimum
    // over the search grid, checked by brute force). Min-max doubles the step.
    const float s = 0.1f;
    std::vector<float> x;
    for (int rep = 0; rep < 400; ++rep)
        for (int k = 0; k < 16; ++k) x.push_back(k * s);
    x.push_back(30 * s);
    Quantizer mm = fit_uniform(x, 4, false, RangeMethod::MinMax);
    Quantizer ms = fit_uniform(x, 4, false, RangeMethod::Mse);
    CHECK(mm.scale == doctest::Approx(2 * s));
    CHECK(ms.scale == doctest::Approx(s));
    CHECK(ms.zero == 0);
    CHECK(reconstruction_mse(ms, x) < reconstruction_mse(mm, x));
    Quantizer pc = fit_uniform(x, 4, false, RangeMethod::Percentile, 0.99);  // the outlier is above p99
    CHECK(pc.scale == doctest::Approx(s).epsilon(1e-3));
}

TEST_CASE("post-softmax values: where uniform, log2 and SULQ each win") {
    std::vector<float> p = softmax_like(400, 50, 11);
    for (int bits : {3, 4}) {
        CAPTURE(bits);
        Quantizer u = fit_uniform(p, bits, false, RangeMethod::MinMax), l = fit_log2(p, bits), s = fit_sulq(p, bits);
        // Small probabilities (the long tail): log2 keeps their relative size, uniform flushes them to 0.
        double rel_u = 0, rel_l = 0;
        for (float v = 1e-3f; v < 2e-2f; v *= 1.1f) rel_u += std::fabs(u.fake(v) - v) / v, rel_l += std::fabs(l.fake(v) - v) / v;
        CHECK(rel_l < rel_u);
        // Large probabilities (0.6–1): log2 has only 0.5 and 1 there, uniform is evenly fine.
        double abs_u = 0, abs_l = 0;
        for (float v = 0.6f; v <= 1.0f; v += 0.01f) abs_u += std::fabs(u.fake(v) - v), abs_l += std::fabs(l.fake(v) - v);
        CHECK(abs_u < abs_l);
        // SULQ covers both ends: lowest reconstruction error on the whole distribution.
        const double eu = reconstruction_mse(u, p), el = reconstruction_mse(l, p), es = reconstruction_mse(s, p);
        CHECK(es <= el);
        CHECK(es <= eu);
        double abs_s = 0;
        for (float v = 0.6f; v <= 1.0f; v += 0.01f) abs_s += std::fabs(s.fake(v) - v);
        CHECK(abs_s < abs_l);
    }
}

TEST_CASE("SULQ with the exponent rounded (the authors' code variant) is a valid quantizer with at most 2^b levels") {
    std::vector<float> p = softmax_like(100, 50, 3);
    Quantizer r = fit_sulq(p, 4, true);
    CHECK(r.round_exponent);
    CHECK(r.levels().size() <= 16u);
    for (float l : r.levels()) {
        if (l == 0.0f) continue;
        const double e = std::log2(double(l) + r.eta);  // l + eta is a power of two (up to float rounding of l)
        CHECK(std::fabs(e - std::nearbyint(e)) < 1e-5);
    }
}

TEST_CASE("bad quantizer input: bit-width outside 2-8, unknown name, empty calibration — each a clear error") {
    std::vector<float> x = gaussian(10, 1);
    CHECK_THROWS_WITH(fit_uniform(x, 1, true, RangeMethod::MinMax), doctest::Contains("bit-width 1 is outside 2-8"));
    CHECK_THROWS_WITH(fit_log2(x, 9), doctest::Contains("bit-width 9 is outside 2-8"));
    CHECK_THROWS_WITH(parse_qtype("log10"), doctest::Contains("unknown quantizer 'log10'"));
    CHECK_THROWS_WITH(parse_range("best"), doctest::Contains("unknown range method 'best'"));
    CHECK_THROWS_WITH(fit_sulq({}, 4), doctest::Contains("no calibration values"));
    CHECK_THROWS_WITH(fit_pow2({}, 4), doctest::Contains("no calibration values"));
}

TEST_CASE("deterministic double exp2/log2 agree with libm to ~1 ulp") {
    for (double y = -30; y < 30; y += 0.0137) CHECK(bl_exp2d(y) == doctest::Approx(std::exp2(y)).epsilon(1e-14));
    for (double x = 1e-9; x < 1e9; x *= 1.37) CHECK(bl_log2d(x) == doctest::Approx(std::log2(x)).epsilon(1e-13));
    CHECK(bl_log2d(1.0) == 0.0);
    CHECK(bl_exp2d(3.0) == 8.0);
}
