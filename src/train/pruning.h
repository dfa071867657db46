// Structured pruning with recovery (issue 15; Youn et al. 2023, after Michel et al. 2019 for heads): rank every
// attention head and MLP hidden unit by importance on training images, remove the least important ones for real
// (src/model/prune.h: smaller qkv/proj/fc1/fc2), then recover by distillation from the unpruned FP32 model with the
// training engine — KL on the logits with temperature (+ cross-entropy on the labels) and MSE between the student's
// and the teacher's block outputs (feature mimicking, the shallow blocks by default).
//
// Importance, per block, of each head h and unit u of the block's current heads / units:
//   taylor (default): the mean over images of |Σ_{tokens, h's columns} ctx · ∂L/∂ctx| — the first-order change of
//     the loss when the head's context (proj's input) is masked, which is the gradient of a mask on it (Michel et
//     al.); for a unit the same over its GELU output (fc2's input). L: cross-entropy on the labels, per image. One
//     forward and backward per image.
//   mask: the mean increase of the cross-entropy when the head's context / the unit's output is really set to zero
//     (one forward per image per head and unit: heads + units times the cost of taylor's forwards; slow on wide MLPs).
// Each block keeps round(ratio · count) of its heads (and units), the most important (ties: the lower index); a
// ratio that leaves a block with none is an error, so at least one head and one unit stay in every layer.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "qat.h"

namespace bitlens::train {

enum class Importance { Taylor, Mask };
const char* importance_name(Importance i);
Importance parse_importance(const std::string& s);  // "taylor" | "mask", else an error naming the value

struct ImportanceScores {
    Importance method = Importance::Taylor;
    size_t images = 0;
    std::vector<std::vector<double>> heads, units;  // [block][head], [block][unit] (the block's current ones)
};
// On the first `n` images of `d` (all when 0) in dataset order; the same numbers for any `jobs`.
ImportanceScores importance(const ViT& m, const PreparedData& d, Importance method, size_t n, size_t micro, int jobs);

// Per block, the indices (ascending) of the round(ratio · count) largest scores; `what` ("heads", "MLP units")
// names the kind in errors (ratio outside (0, 1], or a block left with none).
std::vector<std::vector<int>> keep_most_important(const std::vector<std::vector<double>>& scores, double ratio, const std::string& what);

struct PruneOptions {
    double keep_heads = 1.0, keep_mlp = 1.0;  // fractions of each block's heads / MLP units kept, in (0, 1]
    Importance method = Importance::Taylor;
    size_t importance_images = 2048;          // from the training part of the split (0: all of it)
    // Recovery: train.epochs (0: none), batch, lr, min_lr, weight decay, warm-up, clip, val_split, seed, micro,
    // jobs, limit as in QAT. train.distill: the loss is w·KL(teacher ‖ student, T) + (1 − w)·CE(labels) +
    // feature_weight · Σ_{l < feature_blocks} MSE(student block l output, teacher's); without it, CE alone.
    QatOptions train = [] {
        QatOptions o;
        o.epochs = 2;
        o.lr = 5e-4f;
        o.distill = false;  // as `bitlens prune` without --distill
        return o;
    }();
    double feature_weight = 0.1;
    int feature_blocks = -1;                  // the first N blocks' outputs (−1: the first half, rounded up; 0: none)
    void validate() const;
};

struct PruneEpoch {
    int epoch = 0;              // 0: pruned, before recovery
    size_t steps = 0;
    double train_loss = 0;      // NaN for epoch 0
    double val_top1 = 0, val_worst = 0;  // on the held-out split (NaN without one)
    int val_worst_class = -1;
    double lr = 0, seconds = 0;
};

struct PruneProgress {
    int epoch = 0, epochs = 0;            // epoch: the one the last step belonged to (0 before the first), as QatProgress
    size_t step = 0, steps = 0;
    double loss = 0, seconds = 0;
    const PruneEpoch* finished = nullptr;  // set when an epoch (or the pruned start) was just evaluated
};

struct PruneResult {
    ViT model;                              // the best epoch's (by validation top-1; the last without a split)
    ViT pruned;                             // right after the surgery, before recovery
    ImportanceScores scores;
    std::vector<std::vector<int>> keep_heads, keep_units;  // per block, in the input model's current numbering
    int best_epoch = 0;
    size_t train_images = 0, val_images = 0;
    size_t parameters_before = 0, parameters_after = 0;
    std::vector<PruneEpoch> history;
    EvalResult fp32_val;                    // the unpruned model on the held-out split
};

// In steps, as QatRun: the constructor splits, measures importance, prunes and evaluates the pruned start;
// advance(k) runs up to k recovery steps, never past an epoch's end (then evaluated).
class PruneRun {
public:
    PruneRun(const ViT& fp, const PreparedData& train, const PruneOptions& o);
    ~PruneRun();
    bool done() const;
    PruneProgress advance(size_t max_steps);
    const std::vector<PruneEpoch>& history() const;
    const ImportanceScores& scores() const;
    size_t steps() const;  // recovery steps in all
    PruneResult result() const;  // the best epoch so far
private:
    struct State;
    std::unique_ptr<State> s_;
};

// The whole run; `progress` after every step and every evaluated epoch (false: stop with the error "cancelled").
PruneResult prune(const ViT& fp, const PreparedData& train, const PruneOptions& o,
                  const std::function<bool(const PruneProgress&)>& progress = {});

nlohmann::json importance_json(const ImportanceScores& s);
nlohmann::json prune_history_json(const std::vector<PruneEpoch>& h);
// Per block: heads kept / of, the removed heads in the original numbering, MLP width / of, parameters.
nlohmann::json layers_json(const ViT& m);

}  // namespace bitlens::train
