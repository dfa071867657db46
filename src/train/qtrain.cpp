#include "qtrain.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace bitlens::train {

namespace {

// Round half to even as Quantizer::code does it (quant.cpp): exact for |v| ≤ 2^22, which the clamp
// before it guarantees.
inline float round_even(float v) {
    const float magic = 12582912.0f;  // 1.5·2^23
    volatile float t = v + magic;     // volatile: keep the two roundings as written
    return t - magic;
}

bool finite(float v) { return v - v == 0.0f; }

std::string describe(const Quantizer& q) {
    return std::string(qtype_name(q.type)) + " " + std::to_string(q.bits) + "-bit quantizer";
}

}  // namespace

struct TrainQuantizer::Index {
    Quantizer q;
    FastFake fake;  // points at q above: an Index is never moved once made
    explicit Index(const Quantizer& from) : q(from), fake(q) {}
};

TrainQuantizer::TrainQuantizer(const Quantizer& quantizer) : q(quantizer), zero_f(float(quantizer.zero)) {
    if (q.type == QType::Uniform) {
        if (!(q.scale > 0.0f) || !finite(q.scale))
            throw std::runtime_error("TrainQuantizer: " + describe(q) + " has step size " + std::to_string(q.scale));
    } else {
        if (q.table.empty() || q.thresholds.size() + 1 != q.table.size())
            throw std::runtime_error("TrainQuantizer: " + describe(q) + " has " + std::to_string(q.table.size()) +
                                     " levels and " + std::to_string(q.thresholds.size()) + " thresholds");
        index_ = std::make_shared<const Index>(q);
    }
}

void TrainQuantizer::forward(const float* x, float* y, size_t n) const {
    if (y != x) std::memmove(y, x, n * sizeof(float));
    if (q.type == QType::Uniform) {
        FastFake(q).apply(y, n);  // the SIMD kernel; nothing to build
    } else if (index_ && identical(index_->q, q)) {
        index_->fake.apply(y, n);
    } else {
        FastFake(q).apply(y, n);  // q was changed directly since the index was built
    }
}

void TrainQuantizer::backward(const float* x, const float* dy, float* dx, size_t n, double& dscale,
                              double& dzero) const {
    if (q.type != QType::Uniform) {
        const float lo = q.table.front(), hi = q.table.back();
        for (size_t i = 0; i < n; ++i) {
            const float d = dy[i];
            dx[i] = (x[i] >= lo && x[i] <= hi) ? d : 0.0f;
        }
        return;
    }
    const float s = q.scale;
    const int32_t z = q.zero;
    const double below = double(q.qmin) - z, above = double(q.qmax) - z, ms = -double(s);
    double ds = 0, dz = 0;
    for (size_t i = 0; i < n; ++i) {
        const float d = dy[i];
        float v = x[i] / s;                       // as Quantizer::code
        if (!(v > -4194304.0f)) v = -4194304.0f;  // NaN → lowest code
        if (v > 4194304.0f) v = 4194304.0f;
        const float r = round_even(v);
        const int32_t u = int32_t(r) + z;
        if (u < q.qmin) {
            dx[i] = 0.0f, ds += double(d) * below, dz += double(d) * ms;
        } else if (u > q.qmax) {
            dx[i] = 0.0f, ds += double(d) * above, dz += double(d) * ms;
        } else {
            dx[i] = d, ds += double(d) * (double(r) - double(v));
        }
    }
    if (!learn) return;
    dscale += ds;
    if (!q.symmetric) dzero += dz;
}

float TrainQuantizer::grad_scale(size_t n_per_step) const {
    if (n_per_step == 0) throw std::runtime_error("TrainQuantizer::grad_scale: no values per step");
    if (q.type != QType::Uniform) return 0.0f;
    const double qp = q.symmetric ? double(q.qmax) : double(q.qmax) - double(q.qmin);
    if (!(qp > 0)) throw std::runtime_error("TrainQuantizer::grad_scale: " + describe(q) + " has no positive levels");
    return float(1.0 / std::sqrt(double(n_per_step) * qp));
}

void TrainQuantizer::finish_grad(size_t n_per_step, double& dscale, double& dzero) const {
    const double g = grad_scale(n_per_step);
    dscale *= g, dzero *= g;
}

void TrainQuantizer::set_scale(float s) {
    if (q.type != QType::Uniform)
        throw std::runtime_error("TrainQuantizer::set_scale: a " + describe(q) + " has no uniform step size");
    if (!finite(s)) throw std::runtime_error("TrainQuantizer::set_scale: step size " + std::to_string(s) + " is not finite");
    q.scale = s < kMinScale ? kMinScale : s;
}

void TrainQuantizer::set_zero(float z) {
    if (q.type != QType::Uniform || q.symmetric)
        throw std::runtime_error("TrainQuantizer::set_zero: a " + std::string(q.symmetric ? "symmetric " : "") + describe(q) +
                                 " has no learnable zero point");
    if (!finite(z)) throw std::runtime_error("TrainQuantizer::set_zero: zero point " + std::to_string(z) + " is not finite");
    zero_f = z;
    const float c = std::clamp(z, float(q.qmin), float(q.qmax));  // then |c| < 2^22: round_even is exact
    q.zero = int32_t(round_even(c));
}

namespace {
void check_weight_quantizers(const char* what, const std::vector<TrainQuantizer>& qs, size_t out) {
    if (qs.size() != 1 && qs.size() != out)
        throw std::runtime_error(std::string(what) + ": " + std::to_string(qs.size()) + " quantizers for " +
                                 std::to_string(out) + " output channels (expected 1 or " + std::to_string(out) + ")");
}
void check_sums(const char* what, const std::vector<TrainQuantizer>& qs, const std::vector<double>& dscale,
                const std::vector<double>& dzero) {
    if (dscale.size() != qs.size() || dzero.size() != qs.size())
        throw std::runtime_error(std::string(what) + ": dscale/dzero hold " + std::to_string(dscale.size()) + "/" +
                                 std::to_string(dzero.size()) + " entries for " + std::to_string(qs.size()) + " quantizers");
}
}  // namespace

void weight_quant_forward(const std::vector<TrainQuantizer>& qs, const float* W, float* Wq, size_t out, size_t in) {
    check_weight_quantizers("weight_quant_forward", qs, out);
    if (qs.size() == 1) return qs[0].forward(W, Wq, out * in);
    for (size_t o = 0; o < out; ++o) qs[o].forward(W + o * in, Wq + o * in, in);
}

void weight_quant_backward(const std::vector<TrainQuantizer>& qs, const float* W, const float* dWq, float* dW,
                           size_t out, size_t in, std::vector<double>& dscale, std::vector<double>& dzero) {
    check_weight_quantizers("weight_quant_backward", qs, out);
    check_sums("weight_quant_backward", qs, dscale, dzero);
    if (qs.size() == 1) return qs[0].backward(W, dWq, dW, out * in, dscale[0], dzero[0]);
    for (size_t o = 0; o < out; ++o) qs[o].backward(W + o * in, dWq + o * in, dW + o * in, in, dscale[o], dzero[o]);
}

void weight_quant_finish_grad(const std::vector<TrainQuantizer>& qs, size_t out, size_t in, std::vector<double>& dscale,
                              std::vector<double>& dzero) {
    check_weight_quantizers("weight_quant_finish_grad", qs, out);
    check_sums("weight_quant_finish_grad", qs, dscale, dzero);
    const size_t n = qs.size() == 1 ? out * in : in;
    for (size_t k = 0; k < qs.size(); ++k) qs[k].finish_grad(n, dscale[k], dzero[k]);
}

}  // namespace bitlens::train
