// What the training engine is for, first: gradients of a model on labelled images (checked against
// PyTorch), and quantization-aware training (QAT) that starts from the PTQ result and repairs it.
#pragma once
#include <memory>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "eval.h"
#include "mixed.h"
#include "ptq.h"
#include "qbitopt.h"
#include "vit_train.h"

namespace bitlens::train {

// Gradients of the mean cross-entropy (no label smoothing) of the model's logits over images [0, n) of
// `data` in dataset order, w.r.t. every parameter, in a ViT-shaped struct (f32_checkpoint writes it in
// the checkpoint's naming). The same bits for any `jobs`.
struct GradientResult {
    double loss = 0;
    size_t images = 0;
    ViT grads;
};
GradientResult gradients(const ViT& m, const PreparedData& data, size_t n, int jobs = 1, size_t micro = 16);

// The quantized model a training state stands for: the engine's effective (fake-quantized) weights and
// the state's weight and activation quantizers (a point without one is not quantized). Throws for a
// channel-wise point (inference quantizes per tensor). wbits: per Linear, as QuantizedViT::wbits.
QuantizedViT snapshot(const QuantConfig& cfg, const std::vector<int>& wbits, const Engine& e, const QatState& st);

struct QatOptions {
    int epochs = 3;
    size_t batch = 64;
    float lr = 1e-4f;             // peak learning rate (AdamW), for weights and quantizer parameters
    float min_lr = 0.0f;          // cosine floor
    float weight_decay = 0.0f;    // on weight matrices only
    double warmup = 0.1;          // fraction of all steps spent warming up linearly
    double clip = 1.0;            // global gradient-norm clip (0: off)
    bool distill = true;          // KL to the FP32 model's logits (temperature `temperature`) ...
    float temperature = 1.0f;
    float distill_weight = 0.5f;  // ... weighted so: loss = w·KL + (1 − w)·CE(labels) (0.5: measured better on test
                                  // data than KL alone at W3A3 and W4A4, README)
    float label_smoothing = 0.0f; // for the CE term
    double val_split = 0.1;       // held out of the training images (seeded), picks the best epoch
    uint64_t seed = 0;            // the split and each epoch's order
    size_t micro = 16;            // micro-batch: the unit of the data-parallel step (results depend on it, not on jobs)
    int jobs = 1;
    size_t limit = 0;             // use only the first `limit` training images (0: all)

    // QBitOpt (qbitopt.h), on when budget > 0: the bits of every Linear (patch embedding and head too: the
    // configuration's wbits and edges_8bit no longer apply) are allocated under an average of `budget` bits per
    // weight, and with abudget > 0 those of every quantized activation point under `abudget` bits per value.
    // Step 0: PTQ at the starting widths (the candidate nearest each budget, ties upwards), sensitivities on the
    // first `fisher_batches` batches of the first epoch's order (an activation point's candidates: PTQ's fit at
    // each width), the allocation, then PTQ again with it as layer_bits / point_bits — so that QAT from there is
    // plain QAT with that mixed configuration, bit for bit. Then every `realloc_every` steps (0: a quarter epoch,
    // rounded up), except in the last epoch (frozen): sensitivities on the next `fisher_batches` batches of the
    // training order (wrapping within the epoch) and a new allocation. A layer whose bits change is refitted at
    // the new width on its current latent weights; a uniform activation quantizer keeps its range (with_bits),
    // a non-uniform one is fitted as PTQ fits it, on the values PTQ observed; their optimiser state restarts.
    // The sensitivity passes are forward and backward passes without an optimiser step: they change neither
    // the data order nor any RNG draw.
    double budget = 0;            // average bits per weight over every Linear (0: off)
    double abudget = 0;           // average bits per activation value over every quantized point (0: as configured)
    Objective objective = Objective::Mean;  // worst: each image's loss in the sensitivity passes weighted by its
                                            // class's share of the FP32 model's loss (as mixed.h's objective);
                                            // training is unchanged, the only cost is the FP32 logits of the
                                            // training images (the teacher's, unless --no-distill)
    std::vector<int> candidates = {2, 3, 4, 5, 6, 7, 8};
    size_t realloc_every = 0;
    size_t fisher_batches = 8;
    // The sensitivities a reallocation solves with: an exponential moving average over the allocations so far,
    // S ← decay·S_before + (1 − decay)·S_measured (0: each allocation from its own batches only). The measured
    // ones come from a few batches and are noisy; averaging them keeps layers from flipping back and forth.
    double sensitivity_decay = 0.5;
    void validate() const;        // clear errors for epochs < 1, batch 0, lr ≤ 0, a split with nothing left, a budget
                                  // below the smallest candidate, …
};

struct EpochStats {
    int epoch = 0;                // 0: the PTQ starting point
    size_t steps = 0;
    double train_loss = 0;        // mean over the epoch's images (NaN for epoch 0)
    double val_top1 = 0;          // on the held-out split (NaN when val_split is 0)
    double val_worst = 0;         // its worst class's accuracy
    int val_worst_class = -1;
    double lr = 0;                // at the epoch's last step
    double seconds = 0;
};

struct QatProgress {
    int epoch = 0, epochs = 0;
    size_t step = 0, steps = 0;   // within the whole run
    double loss = 0;              // running mean over the epoch so far
    double seconds = 0;           // since the start
    const EpochStats* finished = nullptr;  // set when an epoch (or the PTQ start) was just evaluated
    const Allocation* allocated = nullptr; // QBitOpt: set when the bits were just allocated again
};

struct QatResult {
    QuantizedViT q;               // the best epoch's quantized model (by validation top-1; the last without a split)
    int best_epoch = 0;
    size_t train_images = 0, val_images = 0;
    std::vector<EpochStats> history;  // epoch 0 (PTQ) first
    EvalResult fp32_val;          // the FP32 model on the held-out split (n = 0 without one), for reference lines
    // The kept model's bits: Σ values·bits / Σ values over every Linear's weights (q.bits_per_weight() also
    // counts the per-channel scales) and over every quantized activation point's values per image.
    double avg_wbits = 0, avg_abits = 0;
    // QBitOpt: every allocation, the start's first; the kept model's is allocations[kept_allocation] (the one
    // in force at the end of the best epoch), also in q.cfg.layer_bits / point_bits. Empty (and -1) without a budget.
    std::vector<Allocation> allocations;
    int kept_allocation = -1;
};

// Quantizes `fp` with `qc` (PTQ, calibration drawn from the training part), then trains: the latent FP32
// weights (starting from fp's), every weight quantizer's per-channel step (LSQ) and every uniform
// activation quantizer's step and zero point, with AdamW under warm-up + cosine. In steps, so that a
// caller (the page's worker, the JS API) can report progress and stop between them:
//   QatRun run(fp, train, qc, o);           // split, PTQ, teacher logits, epoch 0 evaluated
//   while (!run.done()) run.advance(16);     // up to 16 steps, never past an epoch's end (then evaluated)
//   QatResult r = run.result();
class QatRun {
public:
    QatRun(const ViT& fp, const PreparedData& train, const QuantConfig& qc, const QatOptions& o);
    ~QatRun();
    bool done() const;
    QatProgress advance(size_t max_steps);
    const std::vector<EpochStats>& history() const;
    const EvalResult& fp32_validation() const;  // as QatResult::fp32_val
    const std::vector<Allocation>& allocations() const;  // as QatResult::allocations, so far
    QatResult result() const;  // the best epoch so far
private:
    struct State;
    std::unique_ptr<State> s_;
};
// The whole run; `progress` is called after every step and every evaluated epoch (returning false stops
// the run with the error "cancelled").
QatResult qat(const ViT& fp, const PreparedData& train, const QuantConfig& qc, const QatOptions& o,
              const std::function<bool(const QatProgress&)>& progress = {});

nlohmann::json history_json(const std::vector<EpochStats>& h);

}  // namespace bitlens::train
