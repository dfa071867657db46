#include "qbitopt.h"

#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace bitlens::train {

nlohmann::json allocation_json(const Allocation& a, const ViT& m) {
    nlohmann::json layers = nlohmann::json::object(), points = nlohmann::json::object();
    const std::vector<const Linear*> ls = m.linears();
    for (size_t i = 0; i < ls.size(); ++i) layers[ls[i]->name] = a.layer_bits[i];
    for (size_t p = 0; p < m.points.size(); ++p)
        if (a.point_bits[p]) points[m.points[p].name] = a.point_bits[p];
    return {{"step", a.step},
            {"layer_bits", layers},
            {"point_bits", points},
            {"avg_wbits", a.avg_wbits},
            {"avg_abits", a.avg_abits},
            {"weight_cost", a.weight_cost},
            {"weight_budget", a.weight_budget},
            {"act_cost", a.act_cost},
            {"act_budget", a.act_budget ? nlohmann::json(a.act_budget) : nlohmann::json(nullptr)},
            {"changed", a.changed}};
}

BitAllocator::BitAllocator(const ViT& m, const std::vector<size_t>& per_image, std::vector<int> candidates, double wbudget,
                           double abudget)
    : cand_(std::move(candidates)), abudget_(abudget) {
    long long wn = 0, an = 0;
    for (const Linear* l : m.linears()) lvalues_.push_back((long long)l->weight.size()), wn += lvalues_.back();
    for (size_t p = 0; p < m.points.size(); ++p)
        pvalues_.push_back(point_quantized(m.points[p]) ? (long long)per_image[p] : 0), an += pvalues_.back();
    // As plan_mixed: the budgets in bits, rounded down.
    wb_ = (long long)std::floor(wbudget * double(wn));
    ab_ = abudget > 0 ? (long long)std::floor(abudget * double(an)) : 0;
}

Allocation BitAllocator::costed(Allocation a, const Allocation* prev) const {
    long long wn = 0, an = 0;
    a.weight_cost = a.act_cost = 0;
    for (size_t i = 0; i < lvalues_.size(); ++i) a.weight_cost += lvalues_[i] * a.layer_bits[i], wn += lvalues_[i];
    for (size_t p = 0; p < pvalues_.size(); ++p) a.act_cost += pvalues_[p] * a.point_bits[p], an += pvalues_[p];
    a.weight_budget = wb_, a.act_budget = ab_;
    a.avg_wbits = double(a.weight_cost) / double(wn);
    a.avg_abits = an ? double(a.act_cost) / double(an) : 0.0;
    a.changed = 0;
    if (prev) {
        for (size_t i = 0; i < a.layer_bits.size(); ++i) a.changed += a.layer_bits[i] != prev->layer_bits[i];
        for (size_t p = 0; p < a.point_bits.size(); ++p) a.changed += a.point_bits[p] != prev->point_bits[p];
    }
    return a;
}

Allocation BitAllocator::from_config(const ViT& m, const QuantConfig& cfg) const {
    Allocation a;
    for (const Linear* l : m.linears()) a.layer_bits.push_back(layer_bits(*l, cfg));
    for (const ActPoint& p : m.points) a.point_bits.push_back(point_quantized(p) ? point_bits(p, cfg) : 0);
    return costed(std::move(a), nullptr);
}

Allocation BitAllocator::solve(size_t step, const std::vector<std::vector<double>>& wsens,
                               const std::vector<std::vector<double>>& asens, const Allocation& prev) const {
    auto items = [&](const std::vector<long long>& values, const std::vector<std::vector<double>>& sens) {
        std::vector<KnapsackItem> out;
        for (size_t i = 0; i < values.size(); ++i) {
            if (!values[i]) continue;
            KnapsackItem it;
            it.bits = cand_, it.sensitivity = sens[i];
            for (int b : cand_) it.cost.push_back(values[i] * b);
            out.push_back(std::move(it));
        }
        return out;
    };
    Allocation a;
    a.step = step;
    const KnapsackResult rw = allocate(items(lvalues_, wsens), wb_);
    for (size_t i = 0; i < lvalues_.size(); ++i) a.layer_bits.push_back(cand_[rw.choice[i]]);
    a.point_bits = prev.point_bits;
    if (allocates_activations()) {
        const KnapsackResult ra = allocate(items(pvalues_, asens), ab_);
        size_t k = 0;
        for (size_t p = 0; p < pvalues_.size(); ++p)
            if (pvalues_[p]) a.point_bits[p] = cand_[ra.choice[k++]];
    }
    a.wsens = wsens;
    if (allocates_activations()) a.asens = asens;
    a = costed(std::move(a), &prev);
    if (a.weight_cost > a.weight_budget || (allocates_activations() && a.act_cost > a.act_budget))
        throw std::logic_error("qbitopt: the allocation at step " + std::to_string(step) + " costs " + std::to_string(a.weight_cost) +
                               " weight bits (budget " + std::to_string(a.weight_budget) + ") and " + std::to_string(a.act_cost) +
                               " activation bits per image (budget " + std::to_string(a.act_budget) + ")");
    return a;
}

NoiseProbe::NoiseProbe(std::vector<std::vector<Quantizer>> candidates) : q_(std::move(candidates)), fast_(q_.size()) {
    for (size_t p = 0; p < q_.size(); ++p)
        for (const Quantizer& q : q_[p]) fast_[p].emplace_back(q);
}

void NoiseProbe::on_point(int point, const float* x, const float* dy, size_t rows, size_t cols, size_t ld,
                          std::vector<double>& sums) const {
    const std::vector<FastFake>& fs = fast_[size_t(point)];
    if (fs.empty()) return;
    if (sums.size() != fs.size()) sums.assign(fs.size(), 0.0);
    // Per row in float over 8 fixed lanes (vectorisable, the same order everywhere), rows summed in double.
    constexpr size_t L = 8;
    std::vector<float> qx(cols);
    for (size_t k = 0; k < fs.size(); ++k) {
        double s = 0;
        for (size_t r = 0; r < rows; ++r) {
            const float *xr = x + r * ld, *dr = dy + r * ld;
            std::copy(xr, xr + cols, qx.begin());
            fs[k].apply(qx.data(), cols);
            float lane[L] = {};
            size_t c = 0;
            for (; c + L <= cols; c += L)
                for (size_t l = 0; l < L; ++l) {
                    const float t = (qx[c + l] - xr[c + l]) * dr[c + l];
                    lane[l] += t * t;
                }
            for (; c < cols; ++c) {
                const float t = (qx[c] - xr[c]) * dr[c];
                lane[0] += t * t;
            }
            for (float v : lane) s += double(v);
        }
        sums[k] += 0.5 * s;
    }
}

std::vector<double> weight_sensitivity(const Linear& l, const std::vector<double>& fisher, const std::vector<int>& candidates,
                                       const QuantConfig& cfg) {
    std::vector<double> out;
    for (int b : candidates) {
        Linear q = l;
        quantize_weights(q, b, cfg);
        double s = 0;
        for (size_t i = 0; i < l.weight.size(); ++i) {
            const double e = double(q.weight[i]) - double(l.weight[i]);
            s += fisher[i] * e * e;
        }
        out.push_back(0.5 * s);
    }
    return out;
}

TrainQuantizer with_bits(const TrainQuantizer& t, int bits) {
    if (t.q.type != QType::Uniform) throw std::logic_error("with_bits: only a uniform quantizer keeps its range at another width");
    check_bits(bits, "with_bits");
    Quantizer q = t.q;
    q.bits = bits;
    if (q.symmetric) q.qmax = (1 << (bits - 1)) - 1, q.qmin = -q.qmax;  // as uniform_from_range lays codes out
    else q.qmin = 0, q.qmax = (1 << bits) - 1;
    const double ratio = double(t.q.qmax - t.q.qmin) / double(q.qmax - q.qmin);
    q.scale = float(double(t.q.scale) * ratio);
    q.zero = 0;
    TrainQuantizer out(q);
    out.learn = t.learn;
    if (!q.symmetric) out.set_zero(float(double(t.zero_f) / ratio));
    return out;
}

}  // namespace bitlens::train
