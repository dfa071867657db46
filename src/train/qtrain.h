// Quantizers in training: a forward that is exactly Quantizer::fake (bit for bit, through FastFake) and
// a backward with straight-through estimators; uniform quantizers also learn their step size (LSQ,
// Esser et al. 2020) and, when asymmetric, their zero point (LSQ+ style).
//
// Uniform backward. With v = x/s and u = round_half_even(v) + z (the same float division, ±2^22 clamp,
// NaN → lowest code and rounding as Quantizer::code, so the regions agree with the forward exactly):
//   inside (qmin ≤ u ≤ qmax): dx = dy, ds += dy·(round(v) − v),  dz += 0
//   below  (u < qmin):        dx = 0,  ds += dy·(qmin − z),      dz += dy·(−s)
//   above  (u > qmax):        dx = 0,  ds += dy·(qmax − z),      dz += dy·(−s)
// i.e. the gradient of y = (clamp(round(x/s) + z) − z)·s with round() taken as the identity. ds and dz
// are raw double sums in element order; LSQ's gradient scale g = 1/√(n_per_step·Qp) is applied by
// finish_grad. Qp, LSQ's "number of positive levels": qmax for a symmetric quantizer (2^(b−1) − 1, the
// paper's signed case) and qmax − qmin = 2^b − 1 for an asymmetric one (the paper's unsigned case: the
// codes 0…2^b−1 of an unsigned tensor; independent of the moving zero point, so g stays fixed and
// finite while z learns). NaN inputs take the lowest code in the forward, so the backward counts them
// as below (dx = 0); −inf is below and +inf above.
//
// Non-uniform (log2, SULQ, pow2) backward: STE with clipping, dx = dy where
// table.front() ≤ x ≤ table.back(), else 0 (NaN too); nothing learnable (SULQ's η is a later issue).
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

#include "quant.h"

namespace bitlens::train {

// set_scale's floor: a step size stays ≥ this (far below any fitted one: a ViT's per-channel 8-bit weight
// step is ~1e-4), so x/s stays finite and the quantizer stays usable whatever a gradient step does.
constexpr float kMinScale = 1e-8f;

struct TrainQuantizer {
    Quantizer q;
    bool learn = true;   // LSQ parameters learnable (uniform only); when false, backward only writes dx
    float zero_f = 0;    // continuous zero point (asymmetric uniform); q.zero = clamp(round_even(zero_f))

    // Throws for a uniform quantizer whose scale is not positive and finite, or a non-uniform one
    // without levels. zero_f starts at q.zero.
    explicit TrainQuantizer(const Quantizer& q);

    // y = q.fake(x) for n values, bit for bit (y may alias x). Uses the current q (public: it may be
    // changed directly). A non-uniform quantizer's threshold index is built once, in the constructor;
    // should q differ from what it was built from, forward builds a FastFake per call (same bits, slower:
    // construct a new TrainQuantizer after editing a table). Never mutates: safe to call from threads.
    void forward(const float* x, float* y, size_t n) const;
    // dx (=, may alias dy) for n values; adds raw sums to dscale and, for an asymmetric uniform
    // quantizer, dzero (before LSQ's g: finish_grad applies it). Non-uniform, or learn = false: dx only.
    void backward(const float* x, const float* dy, float* dx, size_t n, double& dscale, double& dzero) const;
    // LSQ's g = 1/√(n_per_step·Qp) (Qp as above); 0 for a non-uniform quantizer (nothing to learn).
    // n_per_step: the values this quantizer sees per step (weights of the row or tensor; activations
    // of the batch, per LSQ). Throws for n_per_step = 0.
    float grad_scale(size_t n_per_step) const;
    // dscale *= g, dzero *= g: the gradients the optimizer takes, after all backward calls of a step.
    void finish_grad(size_t n_per_step, double& dscale, double& dzero) const;
    // q.scale = s, raised to kMinScale when smaller (≤ 0 included). Throws for NaN/inf, or a
    // non-uniform quantizer.
    void set_scale(float s);
    // zero_f = z, q.zero = clamp(round_half_even(z), qmin, qmax). Throws for NaN/inf, or a quantizer
    // that is not asymmetric uniform.
    void set_zero(float z);

private:
    struct Index;                         // FastFake over its own copy of q (non-uniform quantizers)
    std::shared_ptr<const Index> index_;  // immutable once built: copies of a TrainQuantizer share it
};

// Weight quantization of a Linear's W [out, in] (row-major), per output channel: row o uses qs[o]
// (qs.size() == out), or qs[0] for the whole matrix (qs.size() == 1). Throws for any other count.
// Wq = fake(W) (may alias W).
void weight_quant_forward(const std::vector<TrainQuantizer>& qs, const float* W, float* Wq, size_t out, size_t in);
// dW (=, may alias dWq) = the STE of dWq; dscale[k], dzero[k] += the raw sums of quantizer k (a per-tensor
// quantizer sums the matrix in one pass, row-major). dscale and dzero must hold qs.size() entries.
void weight_quant_backward(const std::vector<TrainQuantizer>& qs, const float* W, const float* dWq, float* dW,
                           size_t out, size_t in, std::vector<double>& dscale, std::vector<double>& dzero);
// LSQ's g for each quantizer with n_per_step = in (per channel) or out·in (per tensor).
void weight_quant_finish_grad(const std::vector<TrainQuantizer>& qs, size_t out, size_t in, std::vector<double>& dscale,
                              std::vector<double>& dzero);

}  // namespace bitlens::train
