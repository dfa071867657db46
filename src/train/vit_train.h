// The ViT's training pass, in llm.c's layout: a batched forward that keeps what the backward needs
// (one Acts per micro-batch), flat layer backward functions in model order, gradients accumulated
// (+=) into a ViT-shaped struct of the same tensors (`zeros_like`), and a data-parallel step whose
// micro-batches each get their own gradient buffer, summed in micro-batch order — so a step gives the
// same bits for any number of threads, natively and in WASM.
//
// The forward is the inference forward (src/model/model.cpp) on B images at once (rows = B·T, so the
// Linear GEMMs see real sizes), with the same kernels in the same order: in FP32 its logits equal
// ViT::forward's bit for bit. With a QatState, weights are fake-quantized per step and activations at
// every quantization point, exactly as FakeQuantHook does at inference; the backward passes gradients
// straight through the quantizers (qtrain.h) and sums their LSQ parameter gradients.
//
// Letters: B images (micro-batch), T tokens, D hidden, H heads, d = D/H, F mlp size, R = B·T rows,
// C classes, Np patches, PP = channels·patch².
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model.h"
#include "qtrain.h"

namespace bitlens::train {

// Every trainable tensor of a ViT in model order, as views into its vectors (decay: weight matrices
// only — biases, norms, tokens and position embeddings get no weight decay, as in timm and DeiT).
struct Param {
    std::string name;  // canonical, e.g. "blocks.0.attn.qkv.weight"
    float* data;
    size_t n;
    bool decay;
};
std::vector<Param> parameters(ViT& m);
// A ViT of the same shape whose parameters are zeros (a gradient accumulator); packed weights are dropped.
ViT zeros_like(const ViT& m);
void zero_grads(ViT& g);

// Quantization during training (QAT): per Linear (ViT::linears() order) its weight quantizers, per output
// channel or one (empty: FP32 weights), and per activation point its quantizer (absent: not quantized).
// act_channel (empty, or one entry per point): a point's channel-wise quantizers, one per column of its
// rows (SOS's first stage quantizes post-LayerNorm activations so); where non-empty it replaces act[p].
struct QatState {
    std::vector<std::vector<TrainQuantizer>> weight;
    std::vector<std::unique_ptr<TrainQuantizer>> act;
    std::vector<std::vector<TrainQuantizer>> act_channel;
    bool quantized(size_t point) const { return act[point] || (!act_channel.empty() && !act_channel[point].empty()); }
};

// Saved activations of one block for a micro-batch. A "q" array holds the quantized values the next op
// consumed; it is empty when its point is not quantized (the op read the array before it).
struct BlockActs {
    std::vector<float> x_in;                          // [R, D] block input
    std::vector<float> ln1, ln1_mean, ln1_rstd, ln1q; // [R, D], [R], [R], [R, D]
    std::vector<float> qkv, qkvq;                     // [R, 3D] = [q | k | v] before / after q, k, v quantizers
    std::vector<float> probs, probsq;                 // [B, H, T, T] softmax output before / after quantization
    std::vector<float> ctx, ctxq;                     // [R, D] attention context (proj input)
    std::vector<float> x_mid;                         // [R, D] residual after attention
    std::vector<float> ln2, ln2_mean, ln2_rstd, ln2q; // [R, D], [R], [R], [R, D]
    std::vector<float> h, g, gq;                      // [R, F] fc1 output (GELU input), GELU output, quantized
};

struct Acts;
// Block l's output after a forward (the next block's saved input, or the final residual stream) [R, D].
const float* block_output(const Acts& a, size_t l);

struct Acts {
    size_t B = 0;
    std::vector<float> patches, patchesq;     // [B·Np, PP]
    std::vector<BlockActs> blocks;
    std::vector<float> x_out;                 // [R, D] the residual stream: after forward, the last block's output
    std::vector<float> avg;                   // [B, D] mean of patch tokens (avg pool)
    std::vector<float> pooled, pool_mean, pool_rstd, pooledq;  // [B, rows, D], [B·rows]: rows = 2 with a distillation head
    std::vector<float> logits;                // [B, C] as at inference (distilled: mean of both heads)
    // d loss / d (block l's output) from a loss on the block outputs (feature distillation), added where the
    // backward passes block l; empty (or a shorter list) for none. Set by Stepper's feature loss.
    std::vector<std::vector<float>> dfeat;
    // backward scratch
    std::vector<float> dres, dtmp, dbig, dqkv, dprobs, dpooled, dlin, packed;
};

// Gradients: the parameters' (w.r.t. the weights the forward used: the fake-quantized ones under QAT)
// and the activation quantizers' LSQ sums (raw, before LSQ's gradient scale), per point (channel-wise
// points: per point per channel, sized by the first backward through them); with a BackwardProbe, its sums
// per point (sized by the probe).
struct Grads {
    ViT p;
    std::vector<double> act_scale, act_zero;
    std::vector<std::vector<double>> channel_scale, channel_zero;
    std::vector<std::vector<double>> probe;
    explicit Grads(const ViT& m);
    void zero();
    void add(const Grads& o);  // this += o, parameters in model order, elements in order
    void zero_point(size_t p);                   // point p's quantizer sums only
    void add_point(const Grads& o, size_t p);    // this += o for point p's quantizer sums only
};

// Statistics of the backward at the activation points (QBitOpt's Fisher-weighted quantization noise, pruning's
// Taylor importance): called at every point the backward passes (quantized or not; the patch input only when
// quantized) with its pre-quantization values x and the gradient dy arriving at the values the next op
// consumed, before the straight-through pass; adds into `sums` (Grads::probe[point] of the micro-batch, so the
// sums are added in micro-batch order and do not depend on the number of threads). Called from several
// threads at once: must only read its own state.
struct BackwardProbe {
    virtual ~BackwardProbe() = default;
    virtual void on_point(int point, const float* x, const float* dy, size_t rows, size_t cols, size_t ld,
                          std::vector<double>& sums) const = 0;
};

class Engine {
public:
    // m: the parameters, trained in place (latent FP32 weights under QAT). q: optional.
    explicit Engine(ViT& m, QatState* q = nullptr);
    ViT& model() { return m_; }
    const ViT& model() const { return m_; }
    QatState* qat() { return q_; }
    // After every change to the weights or weight quantizers: refreshes the effective (fake-quantized)
    // weights and their packed copies.
    void refresh();
    void refresh(size_t linear);  // the same for one Linear (ViT::linears() index), when only it changed
    const std::vector<float>& effective_weight(size_t linear) const { return w_[linear]; }
    bool quantized(int point) const;  // the point has a quantizer (per tensor or channel-wise)
    // Off: the backward skips the Linears' weight and bias gradients (dW = dYᵀ·X, db), for callers that train
    // only quantizer parameters (SOS's first stage); every other gradient is unchanged, bit for bit.
    void set_linear_grads(bool on) { linear_grads_ = on; }
    // Off (null) by default; the probe must outlive its use. Changes no gradient.
    void set_probe(const BackwardProbe* p) { probe_ = p; }

    // Forward of B images (each channels × H × W, preprocessed); logits in a.logits.
    void forward(Acts& a, const float* images, size_t B) const;
    // Backward from dlogits [B, C] (d loss / d logits); accumulates into g.
    void backward(Acts& a, const float* dlogits, Grads& g) const;

    // The pieces, for callers that train part of the model (block reconstruction).
    void embed_forward(Acts& a, const float* images, float* x) const;              // x [R, D]
    void block_forward(size_t l, BlockActs& s, const float* x_in, float* x_out, size_t B) const;  // x_out may be x_in
    // dres [R, D]: d loss / d block output on entry, d loss / d block input on return.
    void block_backward(size_t l, BlockActs& s, float* dres, Acts& scratch, Grads& g, size_t B) const;
    void head_forward(Acts& a, const float* x) const;
    void head_backward(Acts& a, const float* x, const float* dlogits, float* dres, Grads& g) const;
    void embed_backward(Acts& a, const float* dres, Grads& g) const;

private:
    ViT& m_;
    QatState* q_;
    bool linear_grads_ = true;
    const BackwardProbe* probe_ = nullptr;
    std::vector<std::vector<float>> w_, packed_;  // per Linear: effective weight [out, in] and its packed form
    size_t lin_index(const Linear& l) const;
    void linear_forward(const Linear& l, const float* x, size_t rows, size_t ldx, float* y, size_t ldy) const;
    // dx (= or += per accumulate, may be null) and the parameter gradients of one Linear.
    void linear_backward(const Linear& l, const float* dy, size_t rows, size_t lddy, const float* x, size_t ldx, float* dx,
                         size_t lddx, bool accumulate, Linear& gl) const;
    // Fake-quantizes point p's rows (cols values each, row stride ld) of `x` into `out` (same layout), or
    // returns false when p is not quantized.
    bool quant_forward(int p, const float* x, float* out, size_t rows, size_t cols, size_t ld) const;
    // In place on dy: the straight-through gradient of point p, adding its LSQ sums to g.
    void quant_backward(int p, const float* x, float* dy, size_t rows, size_t cols, size_t ld, Grads& g) const;
};

// The data-parallel step: the batch's images [n, input_size] split into micro-batches of `micro` images,
// each run forward and backward into its own gradient buffer (`loss` receives a micro-batch's logits and
// its first image's index in the batch, writes d loss / d logits and returns the micro-batch's loss sum);
// the buffers are then summed in micro-batch order into g. So the result depends on `micro`, never on
// `jobs`. Buffers and activations are kept between steps.
using LossFn = std::function<double(const float* logits, size_t first, size_t count, float* dlogits)>;
// A loss on the block outputs (feature distillation), called after LossFn for each micro-batch with its forward
// activations and images: writes dfeat[l] (d loss / d block l's output, [count·T, D]) for the blocks it uses,
// leaves the others empty, and returns the micro-batch's loss sum (as LossFn).
using FeatureLossFn = std::function<double(const Acts& a, const float* images, size_t first, size_t count,
                                           std::vector<std::vector<float>>& dfeat)>;
class Stepper {
public:
    Stepper(const Engine& e, size_t micro, int jobs);
    // Returns the batch's loss sum; g is overwritten with the batch's gradient sum.
    double step(const float* images, size_t n, const LossFn& loss, Grads& g);
    void set_feature_loss(FeatureLossFn f) { features_ = std::move(f); }  // empty: none (the default)
    size_t micro() const { return micro_; }
    size_t peak_activation_floats() const;  // what the kept activations hold, for memory reports

private:
    const Engine& e_;
    size_t micro_;
    int jobs_;
    std::vector<Grads> grads_;   // per micro-batch
    std::vector<Acts> acts_;     // per worker
    std::vector<std::vector<float>> dlogits_;  // per worker
    FeatureLossFn features_;
};

}  // namespace bitlens::train
