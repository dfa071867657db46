// The pieces every training run on labelled images shares (QAT, INQ): checking the data against the
// model, the seeded held-out split, the FP32 teacher's logits, the distillation + cross-entropy loss of a
// micro-batch, and the activation quantizers' learnable steps and zero points with their optimiser state.
#pragma once
#include <string>
#include <vector>

#include "eval.h"
#include "optim.h"
#include "qat.h"

namespace bitlens::train {

// Throws unless `d` has images of the model's input size and labels within its classes (naming `what`).
void check_data(const ViT& m, const PreparedData& d, const std::string& what);

// The first o.limit images (all when 0) in a permutation seeded by o.seed; the first o.val_split of it
// is held out (at least one image when the split is > 0). Throws when nothing is left to train on.
struct Split {
    PreparedData train, val;
};
Split split_training(const PreparedData& data, const QatOptions& o, const std::string& what);

// The model's logits for every image of `d` ([d.n, classes]), on `jobs` threads.
std::vector<float> teacher_logits(const ViT& fp, const PreparedData& d, int jobs);

// loss = w·KL(teacher ‖ student) + (1 − w)·CE(labels), w = o.distill_weight with o.distill (else 0), each
// a mean over the batch of which these `count` rows are `share`; writes d loss / d logits and returns the
// rows' loss summed (mean · count), as a Stepper's LossFn does.
double distill_loss(const QatOptions& o, const float* logits, const int* labels, const float* teacher, size_t count, size_t C,
                    float share, float* dlogits);

// One training batch in an epoch's order: its images, labels and (with distillation) the teacher's logits, in
// buffers kept between steps.
struct Batch {
    std::vector<float> images, tlog;
    std::vector<int> labels;
    size_t n = 0;
    // Batch number `index` of `order` over `tr` (o.batch images, fewer at the end): copies their images, labels
    // and, with o.distill, their rows of `teacher` ([tr.n, C]). Returns n.
    size_t gather(const PreparedData& tr, const std::vector<size_t>& order, size_t index, const QatOptions& o,
                  const std::vector<float>& teacher, size_t C);
    // The data-parallel step on it with distill_loss (each micro-batch's share of the mean); the loss sum.
    double step(Stepper& sp, const QatOptions& o, size_t C, Grads& g) const;
};

// One learnable scalar of a quantizer (a step, or an asymmetric quantizer's zero point) with its
// gradient and AdamW state.
struct QParam {
    TrainQuantizer* tq;
    bool zero;          // the zero point (else the step)
    float value, grad = 0;
    AdamWState st;
    size_t per_step;    // LSQ: the values the quantizer sees per image (activations) or in its channel (weights)
};
// Every learnable uniform activation quantizer of `st` (step, then zero point when asymmetric), in
// point order; `per_image` from observe_points.
void add_act_qparams(QatState& st, const std::vector<size_t>& per_image, std::vector<QParam>& out);
// Their gradients from g's raw LSQ sums (the entries add_act_qparams appended, from index `first`).
void act_qparam_grads(const QatState& st, const Grads& g, std::vector<QParam>& qp, size_t first);
// AdamW on each parameter, written back into its quantizer (steps floored at kMinScale).
void step_qparams(const AdamW& opt, float lr, std::vector<QParam>& qp);

}  // namespace bitlens::train
