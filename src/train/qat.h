// What the training engine is for, first: gradients of a model on labelled images (checked against
// PyTorch), and quantization-aware training (QAT) that starts from the PTQ result and repairs it.
#pragma once
#include <memory>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "eval.h"
#include "ptq.h"
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
    void validate() const;        // clear errors for epochs < 1, batch 0, lr ≤ 0, a split with nothing left, …
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
};

struct QatResult {
    QuantizedViT q;               // the best epoch's quantized model (by validation top-1; the last without a split)
    int best_epoch = 0;
    size_t train_images = 0, val_images = 0;
    std::vector<EpochStats> history;  // epoch 0 (PTQ) first
    EvalResult fp32_val;          // the FP32 model on the held-out split (n = 0 without one), for reference lines
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
