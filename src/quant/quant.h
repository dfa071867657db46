// Quantizers. Each is a small value type: code(x) → integer code, dequant(code) → value, fake(x) =
// dequant(code(x)), levels() → every value it can produce. Non-uniform quantizers (log2, SULQ,
// power-of-two) are a sorted table of levels with decision thresholds between neighbours, so
// quantizing is a comparison search (no libm at inference: native and WASM give the same bits).
// Parameters are fitted on calibration samples by fit_*(); the table `kQuantizerTraits` lists them
// for the tests and the CLI.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels.h"

namespace bitlens {

enum class QType { Uniform, Log2, Sulq, Pow2 };
enum class RangeMethod { MinMax, Percentile, Mse };

struct QuantizerTraits {
    QType type;
    const char* name;        // as on the CLI: "uniform", "log2", "sulq", "pow2"
    bool non_negative_only;  // log2 and SULQ are for values ≥ 0 (post-softmax probabilities)
    const char* what;
};
extern const QuantizerTraits kQuantizerTraits[4];
QType parse_qtype(const std::string& name);             // throws naming the valid ones
const char* qtype_name(QType t);
RangeMethod parse_range(const std::string& name);
const char* range_name(RangeMethod r);
void check_bits(int bits, const std::string& what);     // 2..8, else throws

struct Quantizer {
    QType type = QType::Uniform;
    int bits = 8;
    // Uniform: code = clamp(round_half_even(x / scale) + zero, qmin, qmax); value = (code - zero)·scale.
    bool symmetric = false;
    float scale = 1.0f;
    int32_t zero = 0, qmin = 0, qmax = 255;
    // Non-uniform: value of code i is table[i] (ascending); x gets the code of the first threshold above it.
    std::vector<float> table, thresholds;
    // What was fitted, for display and export: SULQ (eta, m = log2 min, delta), log2 (scale = top level),
    // pow2 (n1, n2 exponents).
    double eta = 0, log_min = 0, log_delta = 0;
    int n1 = 0, n2 = 0;
    bool round_exponent = false;

    int32_t code(float x) const;
    float dequant(int32_t code) const;
    float fake(float x) const { return dequant(code(x)); }
    std::vector<float> levels() const;  // distinct representable values, ascending
};
// Every field equal bit for bit (floats and doubles by their bits, so −0 ≠ +0 and NaN = NaN).
bool identical(const Quantizer& a, const Quantizer& b);

// Fake quantization of many values at once, for the hot paths, with exactly Quantizer::fake's results:
// the SIMD kernel for uniform quantizers; for the others a bucketed threshold index built here (the
// thresholds keyed by an order-preserving map of their float bits, bucketed by the key's top bits over
// the thresholds' own span, fine enough that a bucket rarely holds more than one threshold), so a code
// costs one bucket lookup and a short fixed scan instead of a binary search
// (kernels::f32_vtablequant_wasmsimd). Keeps a pointer to `q`.
class FastFake {
public:
    explicit FastFake(const Quantizer& q);
    int32_t code(float x) const;     // == q.code(x)
    void apply(float* x, size_t n) const;  // x[i] = q.fake(x[i])
    // The index as the kernels take it (non-uniform q only): views of this object's tables, valid while
    // it lives unchanged.
    kernels::ThresholdIndex index() const;
private:
    const Quantizer* q_;
    std::vector<uint32_t> key_;      // per threshold, then a sentinel above every key
    std::vector<uint16_t> first_;    // per bucket in [lo_, hi_]: thresholds whose key lies below it
    uint32_t lo_ = 0, hi_ = 0;       // buckets (key >> shift_) of the first and the last threshold
    int shift_ = 0;                  // bucket width 2^shift_
    int steps_ = 0;                  // most thresholds in one bucket: the branch-free scan's length
    bool small_ = false;             // ≤ 15 ascending thresholds, no NaN: counted directly (ThresholdIndex)
};

// Fitting. `x` are calibration samples (any order). All fits are deterministic.
Quantizer fit_uniform(const std::vector<float>& x, int bits, bool symmetric, RangeMethod method, double percentile = 0.9999);
Quantizer fit_log2(const std::vector<float>& x, int bits);
// η searched over `eta_grid` (I&S-ViT's grid when empty) by the L2 reconstruction error on x.
Quantizer fit_sulq(const std::vector<float>& x, int bits, bool round_exponent = false, std::vector<double> eta_grid = {});
Quantizer make_sulq(double eta, double xmin, double xmax, int bits, bool round_exponent);
Quantizer fit_pow2(const std::vector<float>& x, int bits);
Quantizer fit(QType type, const std::vector<float>& x, int bits, bool symmetric, RangeMethod method, bool round_exponent = false);

double reconstruction_mse(const Quantizer& q, const std::vector<float>& x);

// Deterministic double-precision 2^y and log2(x) (basic IEEE operations only).
double bl_exp2d(double y);
double bl_log2d(double x);

}  // namespace bitlens
