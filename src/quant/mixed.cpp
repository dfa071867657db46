#include "mixed.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <map>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "export.h"
#include "json_limits.h"
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
    // The cost unit: their greatest common divisor, which keeps the DP exact; when the table would then
    // exceed max_cells, a coarser unit u with every cost rounded UP to a multiple of u and the budget
    // rounded down, so that Σ cost ≤ Σ u·⌈cost/u⌉ ≤ u·⌊budget/u⌋ ≤ budget still holds.
    long long unit = g;
    const long long cells_per_item = (long long)(max_cells / items.size());
    if (cells_per_item < 2) throw std::runtime_error("allocation: too many items for the table");
    if (budget / unit + 1 > cells_per_item) unit = std::max(g, (budget + cells_per_item - 2) / (cells_per_item - 1));
    auto scaled = [&](long long cost) { return (cost + unit - 1) / unit; };
    const long long B = budget / unit;
    {
        long long scaled_min = 0;
        for (const KnapsackItem& it : items) {
            long long mn = std::numeric_limits<long long>::max();
            for (long long c : it.cost) mn = std::min(mn, scaled(c));
            scaled_min += mn;
        }
        if (scaled_min > B)
            throw std::runtime_error("allocation: budget " + std::to_string(budget) + " is too tight for a table of " +
                                     std::to_string(cells_per_item) + " cells per item (the cheapest choices cost " +
                                     std::to_string(min_total) + ")");
    }
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
                const long long nc = c + scaled(it.cost[k]);
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
    r.unit = unit;
    r.choice.resize(items.size());
    r.sensitivity = dp[size_t(best)];
    long long c = best;
    for (size_t i = items.size(); i-- > 0;) {
        const size_t k = choice[i][size_t(c)];
        r.choice[i] = k;
        r.cost += items[i].cost[k];
        c -= scaled(items[i].cost[k]);
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
    FastFake q;
    OnePoint(int p, const Quantizer& qz) : point(p), q(qz) {}
    void on_activation(int p, float* x, size_t rows, size_t cols, size_t ld) override {
        if (p != point) return;
        for (size_t r = 0; r < rows; ++r) q.apply(x + r * ld, cols);
    }
};

nlohmann::json items_json(const std::vector<KnapsackItem>& items) {
    nlohmann::json a = nlohmann::json::array();
    for (const KnapsackItem& it : items)
        a.push_back({{"name", it.name}, {"values", it.cost[0] / it.bits[0]}, {"candidates", it.bits}, {"sensitivity", it.sensitivity}});
    return a;
}

std::vector<KnapsackItem> items_from_json(const nlohmann::json& j, const char* what) {
    if (!j.is_array()) throw std::runtime_error(std::string("sensitivities: '") + what + "' must be an array");
    std::vector<KnapsackItem> out;
    for (const nlohmann::json& e : j) {
        KnapsackItem it;
        try {
            it.name = e.at("name").get<std::string>();
            const long long values = json_int<long long>(e.at("values"), "sensitivities: 'values'");
            it.bits = json_ints<int>(e.at("candidates"), "sensitivities: 'candidates'");
            it.sensitivity = e.at("sensitivity").get<std::vector<double>>();
            // values × bits must not overflow: 2^48 values is far beyond any layer.
            if (values <= 0 || values > (1LL << 48))
                throw std::runtime_error("sensitivities: 'values' of '" + it.name + "' must be in [1, 2^48], found " + std::to_string(values));
            for (int b : it.bits) check_bits(b, "candidate"), it.cost.push_back(values * b);
        } catch (const nlohmann::json::exception& ex) {
            throw std::runtime_error(std::string("sensitivities: an entry of '") + what + "' is malformed (" + ex.what() + ")");
        }
        if (it.bits.empty() || it.bits.size() != it.sensitivity.size())
            throw std::runtime_error(std::string("sensitivities: '") + it.name + "' has " + std::to_string(it.bits.size()) +
                                     " candidates but " + std::to_string(it.sensitivity.size()) + " sensitivities");
        out.push_back(std::move(it));
    }
    return out;
}

}  // namespace

Objective parse_objective(const std::string& s) {
    if (s == "mean") return Objective::Mean;
    if (s == "worst") return Objective::Worst;
    throw std::runtime_error("objective must be 'mean' or 'worst', found '" + s + "'");
}

std::vector<int> parse_bits_list(const std::string& s, const std::string& what) {
    std::vector<int> v;
    size_t at = 0;
    do {
        const size_t comma = std::min(s.find(',', at), s.size());
        const std::string tok = s.substr(at, comma - at);
        char* end = nullptr;
        const long b = std::strtol(tok.c_str(), &end, 10);
        if (tok.empty() || *end) throw std::runtime_error(what + " must be a comma-separated list of bit-widths, found '" + s + "'");
        if (b < 2 || b > 8) throw std::runtime_error(what + ": bit-width " + tok + " is outside 2-8");  // as check_bits, before int()
        v.push_back(int(b));
        at = comma + 1;
    } while (at <= s.size());
    return v;
}

nlohmann::json sensitivities_json(const Sensitivities& s) {
    return {{"weights", items_json(s.weights)}, {"activations", items_json(s.activations)}, {"fixed_bytes", s.fixed_bytes},
            {"weight_bytes", s.weight_bytes}};
}

Sensitivities sensitivities_from_json(const nlohmann::json& j) {
    if (!j.is_object() || !j.contains("weights") || !j.contains("activations"))
        throw std::runtime_error("sensitivities: expected an object with 'weights' and 'activations'");
    Sensitivities s;
    s.weights = items_from_json(j["weights"], "weights"), s.activations = items_from_json(j["activations"], "activations");
    // Byte counts ≤ 2^50 each, so that sums over any number of layers this side of memory cannot overflow.
    constexpr long long kMaxBytes = 1LL << 50;
    if (j.contains("fixed_bytes")) {
        s.fixed_bytes = json_int<long long>(j["fixed_bytes"], "sensitivities: 'fixed_bytes'");
        if (s.fixed_bytes < 0 || s.fixed_bytes > kMaxBytes)
            throw std::runtime_error("sensitivities: 'fixed_bytes' must be in [0, 2^50], found " + std::to_string(s.fixed_bytes));
    }
    if (j.contains("weight_bytes")) {
        s.weight_bytes = json_int_rows<long long>(j["weight_bytes"], "sensitivities: 'weight_bytes'");
        for (const auto& row : s.weight_bytes)
            for (long long b : row)
                if (b < 0 || b > kMaxBytes)
                    throw std::runtime_error("sensitivities: 'weight_bytes' must hold byte counts in [0, 2^50], found " + std::to_string(b));
        bool ok = s.weight_bytes.size() == s.weights.size();
        for (size_t i = 0; ok && i < s.weights.size(); ++i) ok = s.weight_bytes[i].size() == s.weights[i].bits.size();
        if (!ok) throw std::runtime_error("sensitivities: 'weight_bytes' must have one count per layer and candidate");
    }
    return s;
}

SensitivityRunner::SensitivityRunner(const ViT& fp, const PreparedData& data, std::vector<size_t> images, const QuantConfig& base,
                                     Objective objective, std::vector<int> candidates)
    : fp_(fp), data_(data), images_(std::move(images)), base_(base), cand_(std::move(candidates)) {
    if (images_.empty()) throw std::runtime_error("sensitivity: no images");
    if (cand_.empty()) throw std::runtime_error("sensitivity: no candidate bit-widths");
    for (int b : cand_) check_bits(b, "sensitivity candidate");
    for (size_t i : images_)
        if (i >= data_.n) throw std::runtime_error("sensitivity: image " + std::to_string(i) + " is outside the data");
    const size_t C = size_t(fp.cfg.num_classes), N = images_.size();
    // FP32 reference distributions and the per-image weight of the objective.
    ref_.resize(N);
    weight_.assign(N, 1.0 / double(N));
    Workspace ws;
    std::vector<float> z(C);
    std::vector<double> class_loss(C, 0), class_n(C, 0);
    // The FP32 residual stream at every block's input (and after the last), per image, so that a step
    // whose change starts in block b reruns blocks b.. only: identical values, less work. Skipped when it
    // would take more than 512 MB.
    const size_t depth = fp.blocks.size(), state = size_t(fp.cfg.tokens()) * size_t(fp.cfg.hidden);
    if (N * (depth + 1) * state * sizeof(float) <= (size_t(512) << 20)) cache_.assign(N * (depth + 1) * state, 0.0f);
    for (size_t i = 0; i < N; ++i) {
        const float* image = &data_.inputs[images_[i] * data_.input_size];
        if (cache_.empty()) {
            fp.forward(image, z.data(), ws);
        } else {
            fp.embed(image, ws);
            for (size_t b = 0; b <= depth; ++b) {
                std::copy(ws.x.begin(), ws.x.end(), cache_.begin() + std::ptrdiff_t((i * (depth + 1) + b) * state));
                if (b < depth) fp.run_blocks(b, b + 1, ws);
            }
            fp.head_logits(z.data(), ws);
        }
        ref_[i] = log_softmax(z.data(), C);
        const size_t y = size_t(data_.labels[images_[i]]);
        class_loss[y] += -ref_[i][y], class_n[y] += 1;
    }
    if (objective == Objective::Worst) {
        // Each class's images share the class's fraction of the total mean per-class loss.
        double total = 0;
        for (size_t c = 0; c < C; ++c)
            if (class_n[c] > 0) total += class_loss[c] / class_n[c];
        for (size_t i = 0; i < N; ++i) {
            const size_t y = size_t(data_.labels[images_[i]]);
            weight_[i] = total > 0 ? (class_loss[y] / class_n[y]) / total / class_n[y] : 1.0 / double(N);
        }
    }
    // The items: every Linear, every quantized activation point (values observed on the FP32 model).
    for (const Linear* l : fp.linears()) {
        KnapsackItem it;
        it.name = l->name, it.bits = cand_, it.sensitivity.assign(cand_.size(), 0);
        for (int b : cand_) it.cost.push_back((long long)(l->weight.size()) * b);
        weights_.push_back(std::move(it));
        weight_bytes_.emplace_back(cand_.size(), 0);
    }
    samples_ = observe_points(fp, data_, images_);
    for (size_t p = 0; p < fp.points.size(); ++p) {
        if (!point_quantized(fp.points[p])) continue;
        pts_.push_back(p);
        KnapsackItem it;
        it.name = fp.points[p].name, it.bits = cand_, it.sensitivity.assign(cand_.size(), 0);
        for (int b : cand_) it.cost.push_back((long long)(samples_.per_image[p]) * b);
        acts_.push_back(std::move(it));
    }
    done_.assign(total(), 0);
}

double SensitivityRunner::divergence(const ViT& m, ActivationHook* hook, int first_block) const {
    const size_t C = size_t(fp_.cfg.num_classes), depth = fp_.blocks.size();
    const size_t state = size_t(fp_.cfg.tokens()) * size_t(fp_.cfg.hidden);
    Workspace ws;
    std::vector<float> z(C);
    double s = 0;
    for (size_t i = 0; i < images_.size(); ++i) {
        if (first_block < 0 || cache_.empty()) {
            m.forward(&data_.inputs[images_[i] * data_.input_size], z.data(), ws, hook);
        } else {  // from the cached FP32 stream at block first_block's input
            const auto from = cache_.begin() + std::ptrdiff_t((i * (depth + 1) + size_t(first_block)) * state);
            ws.x.assign(from, from + std::ptrdiff_t(state));
            m.run_blocks(size_t(first_block), depth, ws, hook);
            m.head_logits(z.data(), ws, hook);
        }
        const std::vector<double> lp = log_softmax(z.data(), C);
        double kl = 0;
        for (size_t c = 0; c < C; ++c) kl += det_exp(ref_[i][c]) * (ref_[i][c] - lp[c]);
        s += weight_[i] * kl;
    }
    return s;
}

// The first block a point's values (or the output of the Linear it feeds) reach: its own block, after the
// last block for the head input, -1 (the whole pass) for the patch input.
int SensitivityRunner::first_block_of(const ActPoint& p) const {
    return p.kind == PointKind::PatchInput ? -1 : p.kind == PointKind::HeadInput ? int(fp_.blocks.size()) : p.block;
}

void SensitivityRunner::run(size_t i, ViT& scratch) {
    if (i >= total()) throw std::runtime_error("sensitivity: step " + std::to_string(i) + " is outside 0.." + std::to_string(total() - 1));
    const size_t item = i / cand_.size(), ci = i % cand_.size();
    if (item < weights_.size()) {
        // Weights: one layer quantized, the others FP32.
        Linear* l = scratch.linears()[item];
        const std::vector<float> saved = l->weight;
        weight_bytes_[item][ci] = (long long)linear_payload_bytes(*l, quantize_weights(*l, cand_[ci], base_));
        weights_[item].sensitivity[ci] = divergence(scratch, nullptr, first_block_of(fp_.points[size_t(fp_.input_point(item))]));
        l->weight = saved;
        l->pack();
    } else {
        // Activations: one point quantized (its quantizer fitted on the FP32 model's values there).
        const size_t pi = item - weights_.size();
        const ActPoint& pt = fp_.points[pts_[pi]];
        const Quantizer q = fit_point(pt, samples_.samples[pts_[pi]], cand_[ci], base_);
        OnePoint hook{int(pts_[pi]), q};
        acts_[pi].sensitivity[ci] = divergence(fp_, &hook, first_block_of(pt));
    }
    done_[i] = 1;
}

Sensitivities SensitivityRunner::finish() const {
    for (size_t i = 0; i < done_.size(); ++i)
        if (!done_[i]) throw std::runtime_error("sensitivity: step " + std::to_string(i) + " has not run");
    Sensitivities s;
    s.weights = weights_, s.activations = acts_;
    s.fixed_bytes = (long long)fp32_payload_bytes(fp_);
    s.weight_bytes = weight_bytes_;
    return s;
}

Sensitivities measure_sensitivities(const ViT& fp, const PreparedData& data, const std::vector<size_t>& images,
                                    const QuantConfig& base, Objective objective, const std::vector<int>& candidates, int jobs) {
    SensitivityRunner r(fp, data, images, base, objective, candidates);
    parallel_for(r.total(), jobs, [&](size_t b, size_t e, int) {
        ViT scratch = fp;  // one copy per thread
        for (size_t i = b; i < e; ++i) r.run(i, scratch);
    });
    return r.finish();
}

namespace {

long long value_count(const std::vector<KnapsackItem>& items) {
    long long n = 0;
    for (const KnapsackItem& it : items) n += it.cost[0] / it.bits[0];
    return n;
}

void check_budget(double b) {
    if (!(b > 0 && b <= 64)) throw std::runtime_error("mixed: a budget must be an average bit-width above 0, found " + std::to_string(b));
}

// Both knapsacks: the weights' items as given (costs in bits, or in bytes for a size budget), the
// activations' in bits per image.
MixedPlan plan_with(const Sensitivities& s, const std::vector<KnapsackItem>& weights, long long weight_budget, long long act_budget) {
    MixedPlan p;
    const long long wn = value_count(s.weights), an = value_count(s.activations);
    p.weight_budget = weight_budget, p.act_budget = act_budget;
    KnapsackResult rw = allocate(weights, p.weight_budget), ra = allocate(s.activations, p.act_budget);
    long long wbits = 0;
    p.model_bytes = s.fixed_bytes;
    for (size_t i = 0; i < s.weights.size(); ++i) {
        const size_t k = rw.choice[i];
        p.layer_bits[s.weights[i].name] = s.weights[i].bits[k];
        wbits += s.weights[i].cost[k];
        if (i < s.weight_bytes.size()) p.model_bytes += s.weight_bytes[i][k];
    }
    for (size_t i = 0; i < s.activations.size(); ++i) p.point_bits[s.activations[i].name] = s.activations[i].bits[ra.choice[i]];
    p.weight_cost = rw.cost, p.act_cost = ra.cost;
    p.weight_bits_avg = double(wbits) / double(wn);
    p.act_bits_avg = double(ra.cost) / double(an);
    return p;
}

}  // namespace

MixedPlan plan_mixed(const Sensitivities& s, double wb, double ab) {
    check_budget(wb), check_budget(ab);
    return plan_with(s, s.weights, (long long)std::floor(wb * double(value_count(s.weights))),
                     (long long)std::floor(ab * double(value_count(s.activations))));
}

MixedPlan plan_mixed_bytes(const Sensitivities& s, long long max_bytes, double ab) {
    check_budget(ab);
    if (s.weight_bytes.size() != s.weights.size())
        throw std::runtime_error("mixed: these sensitivities carry no per-layer sizes, so a size budget cannot be planned");
    if (max_bytes <= s.fixed_bytes)
        throw std::runtime_error("mixed: " + std::to_string(max_bytes) + " bytes cannot hold the model: its FP32 tensors alone take " +
                                 std::to_string(s.fixed_bytes) + " bytes");
    std::vector<KnapsackItem> items = s.weights;  // the same choices, costed in bytes
    long long smallest = s.fixed_bytes;
    int fewest = 64;
    for (size_t i = 0; i < items.size(); ++i) {
        items[i].cost = s.weight_bytes[i];
        smallest += *std::min_element(items[i].cost.begin(), items[i].cost.end());
        fewest = std::min(fewest, *std::min_element(items[i].bits.begin(), items[i].bits.end()));
    }
    if (smallest > max_bytes)
        throw std::runtime_error("mixed: " + std::to_string(max_bytes) + " bytes is too small: the smallest model (every layer at " +
                                 std::to_string(fewest) + " bits) takes " + std::to_string(smallest) + " bytes");
    return plan_with(s, items, max_bytes - s.fixed_bytes, (long long)std::floor(ab * double(value_count(s.activations))));
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
            {"act_budget", p.act_budget},
            {"model_bytes", p.model_bytes}};
}

}  // namespace bitlens
