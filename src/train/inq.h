// INQ (Zhou et al. 2017): incremental network quantization to power-of-two weights. Per Linear, the
// weights are frozen to {0, ±2^n : n2 ≤ n ≤ n1} in growing partitions, the largest magnitudes first, and
// the weights not yet frozen retrain in FP32 (distilled from the FP32 model by default) to make up for
// them; at the last partition (100%) every weight is a power of two and nothing is left to train.
//
// The levels are the pow2 quantizers PTQ fits under the configuration (src/quant/quant.h fit_pow2: n1 =
// floor(log2(4·max|W|/3)), n2 = n1 + 1 − 2^(B−1)/2, per output channel by default), fitted once on the
// FP32 weights: the largest magnitude of a channel is in the first partition, so its n1 never moves.
// Activations are quantized throughout as PTQ fits them and learn their steps and zero points (LSQ) with
// the weights. A frozen weight is restored to its level after every optimiser step, so it never changes.
// Each partition step retrains with a fresh AdamW state under warm-up + cosine.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "qat.h"

namespace bitlens::train {

struct InqOptions {
    // Cumulative percentages of each layer's weights frozen after each step: increasing, in (0, 100],
    // ending at 100.
    std::vector<double> partitions = {50, 75, 87.5, 100};
    // The retraining between steps: batch, lr, distillation, split, seed, micro-batch, jobs, limit as in
    // QAT; `epochs` is the number of epochs per partition step.
    QatOptions train = [] {
        QatOptions o;
        o.epochs = 1;
        return o;
    }();
    void validate() const;  // clear errors for partitions that are empty, not increasing, outside (0, 100] or not ending at 100
};

struct InqStep {
    int step = 0;                 // 0: PTQ (every weight at once, no retraining); then 1 … partitions
    double partition = 0;         // % of each layer's weights frozen
    size_t frozen = 0;            // weights frozen in all
    double frozen_top1 = 0, frozen_worst = 0;  // held-out accuracy right after freezing, before retraining
    double val_top1 = 0, val_worst = 0;        // after retraining (= the frozen numbers at 100%; NaN without a split)
    int val_worst_class = -1;
    size_t steps = 0;             // training steps of this partition step
    double train_loss = 0;        // mean over its images (NaN when it did not train)
    double seconds = 0;           // since the start
};

struct InqProgress {
    size_t step = 0, steps = 0;        // partition steps: finished / all
    size_t iteration = 0, iterations = 0;  // training steps over the whole run
    double loss = 0;                   // running mean over the current partition step
    double seconds = 0;
    const InqStep* finished = nullptr; // set when a partition step (or the PTQ start) was just evaluated
};

struct InqResult {
    QuantizedViT q;                    // every weight a power of two (the last partition)
    std::vector<InqStep> history;      // step 0 (PTQ) first
    size_t train_images = 0, val_images = 0;
    EvalResult fp32_val;
};

// In steps, as QatRun: the constructor splits, fits PTQ (weights pow2 under qc, whose `weights` must be
// pow2), computes the teacher's logits and evaluates the PTQ start; advance(k) freezes the next
// partition when one is due, then runs up to k training steps, never past a partition step's end.
class InqRun {
public:
    InqRun(const ViT& fp, const PreparedData& train, const QuantConfig& qc, const InqOptions& o);
    ~InqRun();
    bool done() const;
    InqProgress advance(size_t max_steps);
    const std::vector<InqStep>& history() const;
    size_t iterations() const;               // training steps in all
    // Per Linear (ViT::linears() order), per weight: 1 once frozen.
    const std::vector<std::vector<uint8_t>>& frozen() const;
    const ViT& weights() const;              // the current weights (frozen ones at their levels)
    const QuantizedViT& ptq() const;         // step 0: PTQ, every weight at its level at once
    InqResult result() const;                // throws until done()
private:
    struct State;
    std::unique_ptr<State> s_;
};

// The whole run; `progress` after every training step and every evaluated partition step (false: stop
// with the error "cancelled").
InqResult inq(const ViT& fp, const PreparedData& train, const QuantConfig& qc, const InqOptions& o,
              const std::function<bool(const InqProgress&)>& progress = {});

nlohmann::json inq_history_json(const std::vector<InqStep>& h);

}  // namespace bitlens::train
