// AdamW, the learning-rate schedule (linear warm-up, cosine decay), global gradient-norm clipping, and
// the deterministic cosine the schedule needs. Everything is basic IEEE arithmetic in double (sqrt is
// correctly rounded): native and WASM give the same bits.
#pragma once
#include <cstddef>
#include <utility>
#include <vector>

namespace bitlens::train {

struct AdamW {
    float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.01f;
};
// Moments of n parameters; t = steps taken (the next step is t + 1). Empty m, v with t = 0 are sized by
// the first step.
struct AdamWState {
    std::vector<float> m, v;
    long t = 0;
};

// One step of torch.optim.AdamW (decoupled weight decay), in PyTorch's order of operations:
//   p ← p·(1 − lr·wd)                       (only when `decay`; false for biases, norms, tokens, quantizer params)
//   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//   p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + eps)
// `lr` overrides h.lr (the schedule's value). Per element the arithmetic is double, from the float
// inputs and hyper-parameters (so β1 = 0.9f is 0.89999997615…, where PyTorch uses the double 0.9: a
// 2e-7 relative difference in the bias correction); m and v are rounded to float when stored and the
// update uses the stored values (a resumed run takes the same steps), p is rounded once. β^t is
// computed by squaring (no pow). Not bit-identical to PyTorch, whose float kernels round differently
// (and use FMA): equal to float precision. Throws when the state's size is not n.
void adamw_step(const AdamW& h, float lr, float* p, const float* g, size_t n, AdamWState& s, bool decay);

// Linear warm-up over `warmup` steps, then cosine to min_lr at `total` (llm.c's schedule):
//   step < warmup: base·(step + 1)/warmup   (the first step already moves; step warmup − 1 gives base)
//   otherwise:     min_lr + ½(1 + cos(π·(step − warmup)/(total − warmup)))·(base − min_lr)
// for step in [0, total); computed in double with bl_cosd. Throws for step outside [0, total).
float lr_at(long step, long total, long warmup, float base, float min_lr = 0.0f);

// Global L2 norm over several gradient arrays (double accumulation, arrays in the order given, elements
// in order). When it exceeds max_norm > 0, multiplies every element by c = max_norm/(norm + 1e-6)
// (g ← float(double(g)·c), one rounding, as torch.nn.utils.clip_grad_norm_). Returns the norm before
// clipping. A non-finite norm (NaN or ±inf gradients) is returned with the gradients left unchanged:
// the caller should skip that step.
double clip_grad_norm(const std::vector<std::pair<float*, size_t>>& grads, double max_norm);

// cos(x) from basic IEEE operations: fdlibm's reduction by π/2 in three parts (r = x − n·π/2 to ~150
// bits, as a double-double) and fdlibm's sin/cos kernel polynomials on [−π/4, π/4]. Error < 1 ulp
// (tested ≤ 1e-15 relative to std::cos on [−100, 100], including next to the zeros). Valid for
// |x| ≤ 2^19·π/2 ≈ 823550 (where n·(π/2)'s 33-bit parts multiply exactly); throws beyond. NaN and ±inf
// give NaN.
double bl_cosd(double x);

}  // namespace bitlens::train
