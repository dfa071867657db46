#include "mixed.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <map>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "parallel.h"

namespace bitlens {

KnapsackResult allocate(const std::vector<KnapsackItem>& items, long long budget, size_t max_cells) {
    if (items.empty()) throw std::runtime_error("allocation: nothing to allocate");
    long long g = 0, min_total = 0;
    for (const KnapsackItem& it : items) {
        if (it.bits.empty() || it.bits.size() != it.cost.size() || it.cost.size() != it.sensitivity.size())
            throw std::runtime_error("allocation: item '" + it.name + "' has inconsistent candidates");
        long long mn = std::numeric_limits<long long>::max();
        for (long long c : it.cost) {
            if (c < 0) throw std::runtime_error("allocation: item '" + it.name + "' has a negative cost");
            g = std::gcd(g, c), mn = std::min(mn, c);
        }
        min_total += mn;
    }
    if (min_total > budget)
        throw std::runtime_error("allocation: budget " + std::to_string(budget) + " is infeasible: the cheapest choices cost " +
                                 std::to_string(min_total));
    if (g == 0) g = 1;
    const long long B = budget / g;  // costs are exact multiples of g, so floor keeps Σ cost ≤ budget
    if (size_t(B + 1) * items.size() > max_cells)
        throw std::runtime_error("allocation: budget table too large (" + std::to_string(B + 1) + " cells per item)");
    const double INF = std::numeric_limits<double>::infinity();
    // dp[c]: least sensitivity with total (scaled) cost exactly c; choice[i][c] for backtracking.
    std::vector<double> dp(size_t(B + 1), INF), next(size_t(B + 1));
    std::vector<std::vector<uint8_t>> choice(items.size(), std::vector<uint8_t>(size_t(B + 1), 255));
    dp[0] = 0;
    for (size_t i = 0; i < items.size(); ++i) {
        std::fill(next.begin(), next.end(), INF);
        const KnapsackItem& it = items[i];
        for (long long c = 0; c <= B; ++c) {
            if (dp[size_t(c)] == INF) continue;
            for (size_t k = 0; k < it.cost.size(); ++k) {
                const long long nc = c + it.cost[k] / g;
                if (nc > B) continue;
                const double v = dp[size_t(c)] + it.sensitivity[k];
                if (v < next[size_t(nc)]) next[size_t(nc)] = v, choice[i][size_t(nc)] = uint8_t(k);
            }
        }
        dp.swap(next);
    }
    // Best total; ties (within floating noise) go to the larger cost: the budget used as fully as possible.
    long long best = -1;
    for (long long c = 0; c <= B; ++c)
        if (dp[size_t(c)] < INF && (best < 0 || dp[size_t(c)] <= dp[size_t(best)] * (1 + 1e-12) + 1e-300)) best = c;
    KnapsackResult r;
    r.choice.resize(items.size());
    r.sensitivity = dp[size_t(best)];
    long long c = best;
    for (size_t i = items.size(); i-- > 0;) {
        const size_t k = choice[i][size_t(c)];
        r.choice[i] = k;
        r.cost += items[i].cost[k];
        c -= items[i].cost[k] / g;
    }
    return r;
}

namespace {

// Deterministic e^x and ln x (quant.h's double exp2/log2: the same bits natively and in WASM, so
// the CLI and the JS API choose the same allocation).
constexpr double kLog2e = 1.4426950408889634074, kLn2 = 0.69314718055994530942;
double det_exp(double x) { return bl_exp2d(x * kLog2e); }
double det_log(double x) { return bl_log2d(x) * kLn2; }

// Log-softmax of logits, in double.
std::vector<double> log_softmax(const float* z, size_t n) {
    double m = z[0];
    for (size_t i = 1; i < n; ++i) m = std::max(m, double(z[i]));
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += det_exp(double(z[i]) - m);
    const double ls = det_log(s);
    std::vector<double> out(n);
    for (size_t i = 0; i < n; ++i) out[i] = double(z[i]) - m - ls;
    return out;
}

struct OnePoint : ActivationHook {
    int point;
    const Quantizer* q;
    void on_activation(int p, float* x, size_t rows, size_t cols, size_t ld) override {
        if (p != point) return;
        for (size_t r = 0; r < rows; ++r)
            for (size_t c = 0; c < cols; ++c) x[r * ld + c] = q->fake(x[r * ld + c]);
    }
};

}  // namespace

Sensitivities measure_sensitivities(const ViT& fp, const PreparedData& data, const std::vector<size_t>& images,
                                    const QuantConfig& base, Objective objective, const std::vector<int>& candidates, int jobs) {
    if (images.empty()) throw std::runtime_error("sensitivity: no images");
    for (int b : candidates) check_bits(b, "sensitivity candidate");
    const size_t C = size_t(fp.cfg.num_classes), N = images.size();
    // FP32 reference distributions and the per-image weight of the objective.
    std::vector<std::vector<double>> ref(N);
    std::vector<double> img_weight(N, 1.0 / double(N));
    {
        Workspace ws;
        std::vector<float> z(C);
        std::vector<double> class_loss(C, 0), class_n(C, 0);
        for (size_t i = 0; i < N; ++i) {
            fp.forward(&data.inputs[images[i] * data.input_size], z.data(), ws);
            ref[i] = log_softmax(z.data(), C);
            const size_t y = size_t(data.labels[images[i]]);
            class_loss[y] += -ref[i][y], class_n[y] += 1;
        }
        if (objective == Objective::Worst) {
            // Each class's images share the class's fraction of the total mean per-class loss.
            double total = 0;
            for (size_t c = 0; c < C; ++c)
                if (class_n[c] > 0) total += class_loss[c] / class_n[c];
            for (size_t i = 0; i < N; ++i) {
                const size_t y = size_t(data.labels[images[i]]);
                img_weight[i] = total > 0 ? (class_loss[y] / class_n[y]) / total / class_n[y] : 1.0 / double(N);
            }
        }
    }
    auto divergence = [&](const ViT& m, ActivationHook* hook) {
        Workspace ws;
        std::vector<float> z(C);
        double s = 0;
        for (size_t i = 0; i < N; ++i) {
            m.forward(&data.inputs[images[i] * data.input_size], z.data(), ws, hook);
            std::vector<double> lp = log_softmax(z.data(), C);
            double kl = 0;
            for (size_t c = 0; c < C; ++c) kl += det_exp(ref[i][c]) * (ref[i][c] - lp[c]);
            s += img_weight[i] * kl;
        }
        return s;
    };

    Sensitivities out;
    // Weights: one layer at a time, others FP32.
    const std::vector<const Linear*> ls = fp.linears();
    out.weights.resize(ls.size());
    for (KnapsackItem& it : out.weights) it.sensitivity.resize(candidates.size());
    parallel_for(ls.size() * candidates.size(), jobs, [&](size_t b, size_t e, int) {
        ViT m = fp;  // one copy per worker; each job quantizes one layer and restores it
        for (size_t job = b; job < e; ++job) {
            const size_t li = job / candidates.size(), ci = job % candidates.size();
            Linear* l = m.linears()[li];
            const std::vector<float> saved = l->weight;
            quantize_weights(*l, candidates[ci], base);
            out.weights[li].sensitivity[ci] = divergence(m, nullptr);
            l->weight = saved;
            l->pack();
        }
    });
    for (size_t li = 0; li < ls.size(); ++li) {
        KnapsackItem& it = out.weights[li];
        it.name = ls[li]->name;
        it.bits = candidates;
        for (int bb : candidates) it.cost.push_back((long long)(ls[li]->weight.size()) * bb);
    }
    // Activations: one point at a time (quantizer fitted on the FP32 model's values at that point).
    PointSamples ps = observe_points(fp, data, images);
    std::vector<size_t> pts;
    for (size_t p = 0; p < fp.points.size(); ++p)
        if (point_quantized(fp.points[p])) pts.push_back(p);
    out.activations.resize(pts.size());
    for (KnapsackItem& it : out.activations) it.sensitivity.resize(candidates.size());
    parallel_for(pts.size() * candidates.size(), jobs, [&](size_t b, size_t e, int) {
        for (size_t job = b; job < e; ++job) {
            const size_t pi = job / candidates.size(), ci = job % candidates.size();
            const ActPoint& pt = fp.points[pts[pi]];
            Quantizer q = fit_point(pt, ps.samples[pts[pi]], candidates[ci], base);
            OnePoint hook;
            hook.point = int(pts[pi]), hook.q = &q;
            out.activations[pi].sensitivity[ci] = divergence(fp, &hook);
        }
    });
    for (size_t pi = 0; pi < pts.size(); ++pi) {
        KnapsackItem& it = out.activations[pi];
        it.name = fp.points[pts[pi]].name;
        it.bits = candidates;
        for (int bb : candidates) it.cost.push_back((long long)(ps.per_image[pts[pi]]) * bb);
    }
    return out;
}

MixedPlan plan_mixed(const Sensitivities& s, double wb, double ab) {
    MixedPlan p;
    long long wn = 0, an = 0;
    for (const KnapsackItem& it : s.weights) wn += it.cost[0] / it.bits[0];
    for (const KnapsackItem& it : s.activations) an += it.cost[0] / it.bits[0];
    p.weight_budget = (long long)std::floor(wb * double(wn));
    p.act_budget = (long long)std::floor(ab * double(an));
    KnapsackResult rw = allocate(s.weights, p.weight_budget), ra = allocate(s.activations, p.act_budget);
    for (size_t i = 0; i < s.weights.size(); ++i) p.layer_bits[s.weights[i].name] = s.weights[i].bits[rw.choice[i]];
    for (size_t i = 0; i < s.activations.size(); ++i) p.point_bits[s.activations[i].name] = s.activations[i].bits[ra.choice[i]];
    p.weight_cost = rw.cost, p.act_cost = ra.cost;
    p.weight_bits_avg = double(rw.cost) / double(wn);
    p.act_bits_avg = double(ra.cost) / double(an);
    return p;
}

nlohmann::json plan_json(const MixedPlan& p, const Sensitivities& s) {
    nlohmann::json layers = nlohmann::json::array(), points = nlohmann::json::array();
    for (const KnapsackItem& it : s.weights)
        layers.push_back({{"name", it.name}, {"bits", p.layer_bits.at(it.name)}, {"values", it.cost[0] / it.bits[0]},
                          {"candidates", it.bits}, {"sensitivity", it.sensitivity}});
    for (const KnapsackItem& it : s.activations)
        points.push_back({{"name", it.name}, {"bits", p.point_bits.at(it.name)}, {"values", it.cost[0] / it.bits[0]},
                          {"candidates", it.bits}, {"sensitivity", it.sensitivity}});
    return {{"layers", layers},
            {"points", points},
            {"weight_bits_avg", p.weight_bits_avg},
            {"act_bits_avg", p.act_bits_avg},
            {"weight_cost", p.weight_cost},
            {"weight_budget", p.weight_budget},
            {"act_cost", p.act_cost},
            {"act_budget", p.act_budget}};
}

}  // namespace bitlens
