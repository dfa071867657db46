#include "quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "kernels.h"
#include "simd.h"

namespace bitlens {

const QuantizerTraits kQuantizerTraits[4] = {
    {QType::Uniform, "uniform", false, "evenly spaced levels: symmetric (zero at code 0) or asymmetric (zero point)"},
    {QType::Log2, "log2", true, "levels 0 and s·2^-k: fine near 0, coarse near the top"},
    {QType::Sulq, "sulq", true, "shift-uniform-log2 (I&S-ViT): uniform in log2(x + eta), covers all of [0, max]"},
    {QType::Pow2, "pow2", false, "INQ power-of-two levels {0, ±2^n, n2 ≤ n ≤ n1}: a multiply becomes a shift"},
};

QType parse_qtype(const std::string& name) {
    for (const QuantizerTraits& t : kQuantizerTraits)
        if (name == t.name) return t.type;
    throw std::runtime_error("unknown quantizer '" + name + "' (expected uniform, log2, sulq or pow2)");
}
const char* qtype_name(QType t) { return kQuantizerTraits[int(t)].name; }
RangeMethod parse_range(const std::string& name) {
    if (name == "minmax") return RangeMethod::MinMax;
    if (name == "percentile") return RangeMethod::Percentile;
    if (name == "mse") return RangeMethod::Mse;
    throw std::runtime_error("unknown range method '" + name + "' (expected minmax, percentile or mse)");
}
const char* range_name(RangeMethod r) {
    return r == RangeMethod::MinMax ? "minmax" : r == RangeMethod::Percentile ? "percentile" : "mse";
}
void check_bits(int bits, const std::string& what) {
    if (bits < 2 || bits > 8) throw std::runtime_error(what + ": bit-width " + std::to_string(bits) + " is outside 2-8");
}

// ---------------------------------------------------------------------------------------------------
double bl_exp2d(double y) {
    if (y > 1000) return std::numeric_limits<double>::infinity();
    if (y < -1000) return 0.0;
    const double n = std::floor(y), f = y - n;           // 2^y = 2^n · e^(f·ln2), f in [0, 1)
    const double t = f * 0.69314718055994530942;
    double term = 1.0, sum = 1.0;
    for (int k = 1; k < 24; ++k) term = term * t / k, sum = sum + term;  // Taylor, |t| < 0.7: 23 terms ≪ 1 ulp
    return std::ldexp(sum, int(n));
}

double bl_log2d(double x) {
    if (!(x > 0)) return -std::numeric_limits<double>::infinity();
    int e;
    double m = std::frexp(x, &e);                         // x = m·2^e, m in [0.5, 1)
    if (m < 0.70710678118654752440) m = m * 2, e -= 1;   // m in [√½, √2): |z| ≤ 0.172
    const double z = (m - 1) / (m + 1), z2 = z * z;      // ln m = 2·atanh(z) = 2(z + z³/3 + z⁵/5 + …)
    double term = z, sum = 0;
    for (int k = 1; k < 40; k += 2) sum = sum + term / k, term = term * z2;
    return e + 2 * sum / 0.69314718055994530942;
}

namespace {

// Round half to even without libm: exact for |v| < 2^22, which the clamp guarantees.
inline float round_even(float v) {
    const float magic = 12582912.0f;  // 1.5·2^23
    volatile float t = v + magic;     // volatile: keep the two roundings as written
    return t - magic;
}

void finish_table(Quantizer& q) {
    q.thresholds.clear();
    for (size_t i = 0; i + 1 < q.table.size(); ++i) q.thresholds.push_back(0.5f * (q.table[i] + q.table[i + 1]));
}

double percentile_of(std::vector<float> x, double p) {
    if (x.empty()) return 0;
    std::sort(x.begin(), x.end());
    const double pos = p * double(x.size() - 1);
    const size_t i = size_t(pos);
    const double f = pos - double(i);
    return i + 1 < x.size() ? double(x[i]) * (1 - f) + double(x[i + 1]) * f : double(x[i]);
}

Quantizer uniform_from_range(double lo, double hi, int bits, bool symmetric) {
    Quantizer q;
    q.type = QType::Uniform, q.bits = bits, q.symmetric = symmetric;
    if (symmetric) {
        const double a = std::max(std::fabs(lo), std::fabs(hi));
        q.qmax = (1 << (bits - 1)) - 1, q.qmin = -q.qmax, q.zero = 0;  // restricted range: ±(2^(b-1)-1)
        q.scale = float(a > 0 ? a / q.qmax : 1.0);
    } else {
        lo = std::min(lo, 0.0), hi = std::max(hi, 0.0);                 // zero is always representable
        q.qmin = 0, q.qmax = (1 << bits) - 1;
        q.scale = float(hi > lo ? (hi - lo) / q.qmax : 1.0);
        q.zero = int32_t(std::clamp(double(round_even(float(-lo / q.scale))), 0.0, double(q.qmax)));
    }
    if (!(q.scale > 0) || !std::isfinite(q.scale)) q.scale = 1.0f;
    return q;
}

}  // namespace

int32_t Quantizer::code(float x) const {
    if (type == QType::Uniform) {
        float v = x / scale;
        if (!(v > -4194304.0f)) v = -4194304.0f;  // also maps NaN to the lowest code
        if (v > 4194304.0f) v = 4194304.0f;
        const int32_t c = int32_t(round_even(v)) + zero;
        return std::clamp(c, qmin, qmax);
    }
    // First threshold above x; thresholds are ascending.
    return int32_t(std::upper_bound(thresholds.begin(), thresholds.end(), x) - thresholds.begin());
}

float Quantizer::dequant(int32_t c) const {
    if (type == QType::Uniform) return float(c - zero) * scale;
    return table[size_t(c)];
}

FastFake::FastFake(const Quantizer& q) : q_(&q) {
    if (q.type == QType::Uniform) return;
    if (q.thresholds.size() >= 65535) throw std::runtime_error("quantizer: too many levels for the threshold index");
    for (float t : q.thresholds) key_.push_back(kernels::order_key(bl_f2u(t + 0.0f)));
    // Buckets of the key's top bits over [first threshold, last threshold] only (keys outside fall into
    // the end buckets): the coarsest width at which no bucket holds more than one threshold, within
    // 16384 buckets (32 kB); when thresholds crowd closer than that (or repeat), the finest width within it.
    for (int shift = 31; shift >= 0; --shift) {
        const uint32_t lo = key_.empty() ? 0 : key_.front() >> shift, hi = key_.empty() ? 0 : key_.back() >> shift;
        if (hi - lo >= 16384) break;
        std::vector<uint16_t> first(size_t(hi - lo) + 1);
        size_t i = 0;
        int most = 0;
        for (uint32_t b = lo;; ++b) {
            while (i < key_.size() && (key_[i] >> shift) < b) ++i;
            first[b - lo] = uint16_t(i);
            size_t j = i;
            while (j < key_.size() && (key_[j] >> shift) == b) ++j;
            most = std::max(most, int(j - i));
            if (b == hi) break;
        }
        first_ = std::move(first), shift_ = shift, lo_ = lo, hi_ = hi, steps_ = most;
        if (most <= 1) break;
    }
    key_.push_back(0xFFFFFFFFu);  // above the key of every value (NaN's is 0; +inf's 0xFF800000)
    // Few thresholds (≤ 4 bits), ascending, none NaN: the kernel may count them directly (ThresholdIndex).
    small_ = q.thresholds.size() <= kernels::kSmallThresholds;
    for (size_t i = 0; i < q.thresholds.size() && small_; ++i)
        small_ = q.thresholds[i] == q.thresholds[i] && (i == 0 || q.thresholds[i - 1] <= q.thresholds[i]);
}

kernels::ThresholdIndex FastFake::index() const {
    kernels::ThresholdIndex ix;
    ix.key = key_.data(), ix.first = first_.data(), ix.table = q_->table.data();
    ix.lo = lo_, ix.hi = hi_, ix.shift = shift_, ix.steps = steps_;
    ix.nan_code = uint32_t(key_.size() - 1);  // NaN is below no threshold
    if (small_) ix.thresholds = q_->thresholds.data();
    return ix;
}

int32_t FastFake::code(float x) const {
    if (q_->type == QType::Uniform) return q_->code(x);
    return int32_t(kernels::f32_table_code(x, index()));
}

void FastFake::apply(float* x, size_t n) const {
    const Quantizer& q = *q_;
    if (q.type == QType::Uniform) {
        kernels::f32_vfakequant_wasmsimd(n, x, q.scale, q.zero, q.qmin, q.qmax);
        return;
    }
    kernels::f32_vtablequant_wasmsimd(n, x, index());
}

namespace {
uint64_t bits_of(double d) {
    uint64_t u;
    std::memcpy(&u, &d, sizeof u);
    return u;
}
bool identical(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (bl_f2u(a[i]) != bl_f2u(b[i])) return false;
    return true;
}
}  // namespace

bool identical(const Quantizer& a, const Quantizer& b) {
    return a.type == b.type && a.bits == b.bits && a.symmetric == b.symmetric && bl_f2u(a.scale) == bl_f2u(b.scale) &&
           a.zero == b.zero && a.qmin == b.qmin && a.qmax == b.qmax && identical(a.table, b.table) &&
           identical(a.thresholds, b.thresholds) && bits_of(a.eta) == bits_of(b.eta) && bits_of(a.log_min) == bits_of(b.log_min) &&
           bits_of(a.log_delta) == bits_of(b.log_delta) && a.n1 == b.n1 && a.n2 == b.n2 && a.round_exponent == b.round_exponent;
}

std::vector<float> Quantizer::levels() const {
    std::vector<float> v;
    if (type == QType::Uniform)
        for (int32_t c = qmin; c <= qmax; ++c) v.push_back(dequant(c));
    else
        v = table;
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
}

double reconstruction_mse(const Quantizer& q, const std::vector<float>& x) {
    if (x.empty()) return 0;
    thread_local std::vector<float> f;  // the range searches call this often: keep the buffer
    f.assign(x.begin(), x.end());
    FastFake(q).apply(f.data(), f.size());  // exactly q.fake, in bulk
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        const double d = double(f[i]) - double(x[i]);
        s += d * d;
    }
    return s / double(x.size());
}

Quantizer fit_uniform(const std::vector<float>& x, int bits, bool symmetric, RangeMethod method, double percentile) {
    check_bits(bits, "uniform quantizer");
    if (x.empty()) throw std::runtime_error("uniform quantizer: no calibration values");
    double lo = x[0], hi = x[0];
    for (float v : x) lo = std::min(lo, double(v)), hi = std::max(hi, double(v));
    if (method == RangeMethod::Percentile) {
        lo = std::min(0.0, percentile_of(x, 1 - percentile));
        hi = std::max(0.0, percentile_of(x, percentile));
        return uniform_from_range(lo, hi, bits, symmetric);
    }
    Quantizer best = uniform_from_range(lo, hi, bits, symmetric);
    if (method == RangeMethod::MinMax) return best;
    // MSE: shrink the range by alpha in 1.00, 0.99, …, 0.20; keep the first best (deterministic).
    double best_err = reconstruction_mse(best, x);
    for (int a = 99; a >= 20; --a) {
        Quantizer q = uniform_from_range(lo * a / 100.0, hi * a / 100.0, bits, symmetric);
        const double e = reconstruction_mse(q, x);
        if (e < best_err) best_err = e, best = q;
    }
    return best;
}

Quantizer fit_log2(const std::vector<float>& x, int bits) {
    check_bits(bits, "log2 quantizer");
    if (x.empty()) throw std::runtime_error("log2 quantizer: no calibration values");
    double top = 0;
    for (float v : x) top = std::max(top, double(v));
    if (!(top > 0)) top = 1;
    Quantizer q;
    q.type = QType::Log2, q.bits = bits;
    q.scale = float(top);
    // Codes: 0 → 0, then top·2^-(2^b-2), …, top·2^-1, top. Thresholds are midpoints in the log
    // domain (top·2^-(k+½)), and between 0 and the smallest level as if 0 were the next power down.
    const int n = (1 << bits) - 1;  // non-zero levels
    q.table.push_back(0.0f);
    for (int k = n - 1; k >= 0; --k) q.table.push_back(float(top * bl_exp2d(-k)));
    q.thresholds.push_back(float(top * bl_exp2d(-(n - 1) - 0.5)));
    for (int k = n - 2; k >= 0; --k) q.thresholds.push_back(float(top * bl_exp2d(-k - 0.5)));
    return q;
}

Quantizer make_sulq(double eta, double xmin, double xmax, int bits, bool round_exponent) {
    Quantizer q;
    q.type = QType::Sulq, q.bits = bits, q.eta = eta, q.round_exponent = round_exponent;
    xmin = std::max(xmin, 0.0);
    if (!(xmax > xmin)) xmax = xmin + 1e-6;
    const int n = (1 << bits) - 1;
    const double m = bl_log2d(xmin + eta), M = bl_log2d(xmax + eta), d = (M - m) / n;
    q.log_min = m, q.log_delta = d;
    // Level of code c: 2^(c·Δ + m) − η (the exponent rounded to an integer in the authors' code variant).
    for (int c = 0; c <= n; ++c) {
        double e = c * d + m;
        if (round_exponent) e = std::nearbyint(e);
        double v = bl_exp2d(e) - eta;
        if (!round_exponent && c == 0) v = xmin;   // exact ends: 2^(log2(a+η)) − η = a
        if (!round_exponent && c == n) v = xmax;
        q.table.push_back(float(std::max(v, 0.0)));
    }
    // Decisions are uniform in the log domain: between codes c and c+1 at 2^((c+½)Δ + m) − η.
    for (int c = 0; c < n; ++c) q.thresholds.push_back(float(bl_exp2d((c + 0.5) * d + m) - eta));
    return q;
}

Quantizer fit_sulq(const std::vector<float>& x, int bits, bool round_exponent, std::vector<double> eta_grid) {
    check_bits(bits, "sulq quantizer");
    if (x.empty()) throw std::runtime_error("sulq quantizer: no calibration values");
    if (eta_grid.empty()) eta_grid = {0.001, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2, 0.5, 1.0};
    double lo = x[0], hi = x[0];
    for (float v : x) lo = std::min(lo, double(v)), hi = std::max(hi, double(v));
    Quantizer best;
    double best_err = std::numeric_limits<double>::infinity();
    for (double eta : eta_grid) {
        Quantizer q = make_sulq(eta, lo, hi, bits, round_exponent);
        const double e = reconstruction_mse(q, x);
        if (e < best_err) best_err = e, best = q;
    }
    return best;
}

Quantizer fit_pow2(const std::vector<float>& x, int bits) {
    check_bits(bits, "pow2 quantizer");
    if (x.empty()) throw std::runtime_error("pow2 quantizer: no calibration values");
    double s = 0;
    for (float v : x) s = std::max(s, std::fabs(double(v)));
    if (!(s > 0)) s = 1;
    Quantizer q;
    q.type = QType::Pow2, q.bits = bits;
    // INQ: n1 = floor(log2(4s/3)); one bit for zero, 2^(b-1) signed codes → 2^(b-2) magnitudes.
    q.n1 = int(std::floor(bl_log2d(4 * s / 3)));
    q.n2 = q.n1 + 1 - (1 << (bits - 1)) / 2;
    for (int n = q.n1; n >= q.n2; --n) q.table.push_back(-float(std::ldexp(1.0, n)));
    q.table.push_back(0.0f);
    for (int n = q.n2; n <= q.n1; ++n) q.table.push_back(float(std::ldexp(1.0, n)));
    finish_table(q);  // INQ's rule: the midpoints (α+β)/2 between neighbouring levels
    return q;
}

Quantizer fit(QType type, const std::vector<float>& x, int bits, bool symmetric, RangeMethod method, bool round_exponent) {
    switch (type) {
        case QType::Uniform: return fit_uniform(x, bits, symmetric, method);
        case QType::Log2: return fit_log2(x, bits);
        case QType::Sulq: return fit_sulq(x, bits, round_exponent);
        case QType::Pow2: return fit_pow2(x, bits);
    }
    throw std::runtime_error("unknown quantizer type");
}

}  // namespace bitlens
