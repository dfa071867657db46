// QBitOpt (Peters et al. 2023, "QBitOpt: Fast and Accurate Bitwidth Reallocation during Training"): during
// QAT the bit-width of every Linear's weights (and, optionally, of every quantized activation point) is
// chosen again every K steps under an average-bit budget, by the exact multiple-choice knapsack of mixed
// precision (mixed.h's allocate: the budget is never exceeded), from Fisher-weighted estimates of the loss
// increase that each candidate width's quantization noise would cause:
//   weights      S_l(b) = ½ Σ_i F_i (Q_b(w_i) − w_i)²   F_i: the mean over a few batches of (∂L/∂w_i)², the
//                                                       gradient of the batch loss w.r.t. the weight the
//                                                       forward used (squared batch gradients, as Adam's
//                                                       second moment: per-image weight gradients are never
//                                                       formed); Q_b: the layer refitted at b bits on its
//                                                       current latent weights, as PTQ fits it
//   activations  S_p(b) = ½ Σ (∂L/∂x)² (Q_b(x) − x)²    over the point's values in those batches, ∂L/∂x the
//                                                       gradient arriving at its quantized value (per value,
//                                                       so per image: an empirical Fisher proper)
// These are the pieces; train::QatRun (qat.h) runs the schedule.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <vector>

#include "mixed.h"
#include "vit_train.h"

namespace bitlens::train {

// One allocation of bit-widths and what it uses of the budgets.
struct Allocation {
    size_t step = 0;                       // the training step before which it took effect (0: the start)
    std::vector<int> layer_bits;           // per Linear (ViT::linears() order)
    std::vector<int> point_bits;           // per activation point; 0 where the point is not quantized
    double avg_wbits = 0, avg_abits = 0;   // Σ values·bits / Σ values over every Linear / every quantized point
    long long weight_cost = 0, weight_budget = 0;  // bits over all weights
    long long act_cost = 0, act_budget = 0;        // bits per image over all quantized points (budget 0: not allocated)
    size_t changed = 0;                    // layers and points whose bits differ from the allocation before
    // The sensitivities it was solved with, per Linear / per point and candidate (QatOptions::sensitivity_decay's
    // moving averages; asens empty without an activation budget); empty for from_config's.
    std::vector<std::vector<double>> wsens, asens;
};
// {step, layer_bits: {name: bits}, point_bits: {name: bits} (quantized points), avg_wbits, avg_abits, weight_cost,
// weight_budget, act_cost, act_budget (null when not allocated), changed}.
nlohmann::json allocation_json(const Allocation& a, const ViT& m);

// The two knapsacks: one item per Linear (cost = weights × bits, budget ⌊wbudget × all weights⌋) and, with an
// activation budget, one per quantized point (cost = values per image × bits, budget ⌊abudget × their sum⌋).
class BitAllocator {
public:
    // per_image: the values each point produces per image (observe_points); abudget 0: activations keep their
    // bits. The options are checked by QatOptions::validate.
    BitAllocator(const ViT& m, const std::vector<size_t>& per_image, std::vector<int> candidates, double wbudget, double abudget);
    bool allocates_activations() const { return abudget_ > 0; }
    // The bits a configuration gives m (the model given to the constructor, or one of its shape) as quantize()
    // reads them, costed.
    Allocation from_config(const ViT& m, const QuantConfig& cfg) const;
    // The optimum for these sensitivities (wsens per Linear, asens per activation point, each per candidate;
    // asens is read at quantized points and only with an activation budget — otherwise the points keep prev's
    // bits). Throws std::logic_error should a result exceed a budget.
    Allocation solve(size_t step, const std::vector<std::vector<double>>& wsens, const std::vector<std::vector<double>>& asens,
                     const Allocation& prev) const;

private:
    Allocation costed(Allocation a, const Allocation* prev) const;
    std::vector<long long> lvalues_, pvalues_;  // per Linear; per point (0: not quantized)
    std::vector<int> cand_;
    double abudget_;
    long long wb_ = 0, ab_ = 0;                 // the budgets in bits
};

// Per activation point, quantizers at the candidate widths; on_point adds, for each candidate k,
// ½ Σ dy²·(Q_k(x) − x)² over the point's values to sums[k] (each row in float over fixed lanes, rows in
// double: the same bits for any thread count, natively and in WASM).
class NoiseProbe : public BackwardProbe {
public:
    explicit NoiseProbe(std::vector<std::vector<Quantizer>> candidates);  // per point; empty: the point is not probed
    NoiseProbe(const NoiseProbe&) = delete;  // fast_ points into q_
    NoiseProbe& operator=(const NoiseProbe&) = delete;
    void on_point(int point, const float* x, const float* dy, size_t rows, size_t cols, size_t ld,
                  std::vector<double>& sums) const override;

private:
    std::vector<std::vector<Quantizer>> q_;
    std::vector<std::vector<FastFake>> fast_;
};

// For each candidate b, ½ Σ_i fisher_i (Q_b(w_i) − w_i)² over l's weights, Q_b fitted at b bits as PTQ fits
// them (quantize_weights under cfg).
std::vector<double> weight_sensitivity(const Linear& l, const std::vector<double>& fisher, const std::vector<int>& candidates,
                                       const QuantConfig& cfg);

// A uniform quantizer at `bits` over the range it had: the step times (levels before)/(levels after), the
// continuous zero point divided by the same ratio, so that (qmin − z)·s and (qmax − z)·s stay where they were
// (up to the zero point's rounding to a code). Throws for a non-uniform quantizer.
TrainQuantizer with_bits(const TrainQuantizer& t, int bits);

}  // namespace bitlens::train
