// Mixed-precision bit allocation under an exact budget (after QBitOpt, applied post-training).
// 1. Sensitivity: for every quantization point (each Linear's weights, each activation point) and
//    candidate bit-width, the mean KL divergence of the output distribution from FP32 when only that
//    point is quantized, on a sensitivity set drawn from the calibration data. The worst-case-aware
//    objective weights each class's mean KL by its share of the FP32 cross-entropy loss, so classes the
//    model already finds hard count more.
// 2. Allocation: a multiple-choice knapsack solved by dynamic programming over integer costs (bits ×
//    values, or bytes for a size budget; divided by their common divisor, which is exact — for large
//    models a coarser unit with costs rounded up), minimising total sensitivity with the budget never
//    exceeded; among equal sensitivities the larger use of the budget wins.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ptq.h"

namespace bitlens {

struct KnapsackItem {
    std::string name;
    std::vector<int> bits;              // candidate bit-widths
    std::vector<long long> cost;        // per candidate, integer (e.g. values × bits)
    std::vector<double> sensitivity;    // per candidate
};
struct KnapsackResult {
    std::vector<size_t> choice;         // per item, index into its candidates
    long long cost = 0;
    double sensitivity = 0;
    long long unit = 1;                 // the DP's cost unit (the costs' gcd when exact)
};
// Minimises Σ sensitivity subject to Σ cost ≤ budget, by dynamic programming over the budget in units
// of the costs' greatest common divisor: exact. When that table would exceed `max_cells`, the unit grows
// and costs are rounded up to it, so the budget is still never exceeded (the optimum is then over a
// discretised budget). Throws when even the cheapest choices exceed the budget, naming the minimum.
KnapsackResult allocate(const std::vector<KnapsackItem>& items, long long budget, size_t max_cells = size_t(1) << 27);

enum class Objective { Mean, Worst };
Objective parse_objective(const std::string& s);  // "mean" | "worst"; throws naming the value
// "2,3,4" → {2, 3, 4}: candidate bit-widths, each 2–8; throws naming `what` (e.g. "--candidates") and the text.
std::vector<int> parse_bits_list(const std::string& s, const std::string& what);

struct Sensitivities {
    std::vector<KnapsackItem> weights;      // one item per Linear (cost = weight count × bits)
    std::vector<KnapsackItem> activations;  // one per quantized activation point (cost = values per image × bits)
    // Model size as QuantizedViT::model_bytes (the exported data) counts it: fixed_bytes for the FP32
    // tensors (tokens, norms, biases) plus, per Linear, weight_bytes[layer][candidate] for its codes and
    // scales (or levels) at that bit-width, measured on the quantizers the measurement fitted.
    long long fixed_bytes = 0;
    std::vector<std::vector<long long>> weight_bytes;
};
// {weights: [{name, values, candidates, sensitivity}], activations: [...]} and back (doubles round-trip
// exactly, so a plan made from the JSON equals one made from the measurement).
nlohmann::json sensitivities_json(const Sensitivities& s);
Sensitivities sensitivities_from_json(const nlohmann::json& j);

// The measurement in independent steps, one per (item, candidate bit-width): native code runs them on
// several threads, the JS API one at a time so that it can report progress and be cancelled.
// `base` gives the quantizer choices (types, ranges, granularity); its bit-widths are ignored. The
// data and the model must outlive the runner.
class SensitivityRunner {
public:
    SensitivityRunner(const ViT& fp, const PreparedData& data, std::vector<size_t> images, const QuantConfig& base,
                      Objective objective, std::vector<int> candidates);
    size_t total() const { return (weights_.size() + acts_.size()) * cand_.size(); }
    // Step i. `scratch` is the caller's copy of the FP32 model (one per thread): a weight step quantizes
    // one layer of it and restores it; activation steps leave it alone.
    void run(size_t i, ViT& scratch);
    Sensitivities finish() const;  // throws if a step has not run
private:
    double divergence(const ViT& m, ActivationHook* hook, int first_block) const;
    int first_block_of(const ActPoint& p) const;
    const ViT& fp_;
    const PreparedData& data_;
    std::vector<size_t> images_;
    QuantConfig base_;
    std::vector<int> cand_;
    std::vector<std::vector<double>> ref_;  // FP32 log-probabilities per image
    std::vector<double> weight_;            // per image, the objective's weight
    PointSamples samples_;
    std::vector<float> cache_;              // per image, the FP32 residual stream at each block input (+ after the last)
    std::vector<size_t> pts_;               // quantized activation points
    std::vector<KnapsackItem> weights_, acts_;
    std::vector<std::vector<long long>> weight_bytes_;
    std::vector<char> done_;
};

// All steps on `jobs` threads; the result does not depend on jobs.
Sensitivities measure_sensitivities(const ViT& fp, const PreparedData& data, const std::vector<size_t>& images,
                                    const QuantConfig& base, Objective objective, const std::vector<int>& candidates, int jobs);

struct MixedPlan {
    std::map<std::string, int> layer_bits, point_bits;
    long long model_bytes = 0;  // as QuantizedViT::model_bytes will count it
    double weight_bits_avg = 0, act_bits_avg = 0;  // budget used: average bits per weight / per activation value
    long long weight_cost = 0, weight_budget = 0, act_cost = 0, act_budget = 0;
};
// Average-bit budgets (e.g. 4.0 and 4.0). Edges (patch embedding, head) are allocated like any layer.
MixedPlan plan_mixed(const Sensitivities& s, double weight_budget_bits, double act_budget_bits);
// The same with the model held to a size: at most `max_bytes` bytes of exported data (s.fixed_bytes plus
// each layer's weight_bytes). Throws when even the fixed part or the smallest layers do not fit, naming
// the sizes. weight_cost and weight_budget are then in bytes.
MixedPlan plan_mixed_bytes(const Sensitivities& s, long long max_bytes, double act_budget_bits);
nlohmann::json plan_json(const MixedPlan& p, const Sensitivities& s);

}  // namespace bitlens
