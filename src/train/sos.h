// I&S-ViT's three-stage smooth optimisation (SOS, Zhong et al. 2023) by block reconstruction, on the
// training engine:
//   stage 1  weights FP32; every activation point quantized as PTQ fits it, except the two post-LayerNorm
//            points of each block (qkv and fc1 inputs), quantized channel-wise (one asymmetric uniform
//            quantizer per channel); post-softmax by cfg.softmax (SULQ by default). Each block in turn is
//            reconstructed: Adam on its activation quantizers' steps and zero points minimises the MSE
//            between its output and the FP32 block's output.
//   stage 2  each post-LN point's channel-wise steps s_c and zero points z_c are folded into its LayerNorm
//            and the next Linear (RepQ-ViT's form: s̃ = mean s_c, z̃ = round(mean z_c), r1 = s_c/s̃,
//            r2 = z_c − z̃; γ' = γ/r1, β' = (β + s⊙r2)/r1, W' = W·diag(r1), b' = b − W·(s⊙r2)), leaving one
//            layer-wise quantizer (s̃, z̃) that gives the same codes: the function is unchanged up to float
//            rounding.
//   stage 3  weights quantized (per channel, fitted as PTQ fits them, on the reparameterised weights) and
//            every block reconstructed again: Adam on the latent FP32 weights and biases of its Linears
//            (fake-quantized in the forward, straight-through in the backward), their weight steps (LSQ)
//            and its activation quantizers' steps and zero points.
// The block's input is what the already-reconstructed quantized blocks before it produce on the
// calibration images (BRECQ's and I&S-ViT's choice); its target is the FP32 model's block output on the
// FP32 chain. The patch embedding and the head are not reconstructed (their quantizers are PTQ's).
//
// Adam's steps are relative: every parameter moves in units of its own scale (an activation step by
// lr·s0, a zero point by lr codes, a weight row and its bias by lr·its initial weight step), so one
// dimensionless learning rate per stage fits tensors whose magnitudes differ by orders, and the schedule is
// a cosine from lr to 0 over the block's iterations. Iteration i of block l in stage k takes recon_batch images
// from a seeded permutation of the calibration set (SplitMix64, derived from cfg.seed), split into
// micro-batches whose gradients are summed in order: the same bits for any jobs, natively and in WASM.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "eval.h"
#include "ptq.h"

namespace bitlens::train {

struct SosOptions {
    // Relative learning rates (see above): stage 1 (activation quantizers) and stage 3 (activation and weight
    // quantizers, weights and biases). Measured on W3A3, 10 calibration draws each (README): stage 3 at 0.01
    // let the quantizers drift on 32 images (single draws fell 15 points on the worst class); at 0.002 mean
    // top-1 was best on both shipped models.
    float lr1 = 0.01f;
    float lr3 = 0.002f;
    size_t micro = 8;           // images per micro-batch (results depend on it, not on jobs)
    int jobs = 1;
};

// One block's reconstruction in one stage: the MSE on the calibration images (every image, the same
// measure before and after) and the mean training loss of the first and last iterations.
struct BlockRecon {
    int stage = 0;              // 1 or 3
    int block = 0;
    double mse_before = 0, mse_after = 0;
    double seconds = 0;
};

// What a finished stage leaves: for stage 0 the PTQ starting point (cfg with method ptq), 1 the activation-
// reconstructed model (FP32 weights, channel-wise post-LN), 2 the same reparameterised (layer-wise), 3 the
// result. Evaluated when an evaluation set was given.
struct SosStage {
    int stage = 0;
    double seconds = 0;         // since the run began
    EvalResult eval;            // n = 0 without an evaluation set
    double max_logit_change = 0;  // stage 2: largest |logit change| against stage 1 on the evaluation images
};

struct SosProgress {
    int stage = 1;              // 1 or 3 while reconstructing; 0 before the first step
    size_t block = 0, blocks = 0;
    size_t iter = 0, iters = 0; // within the block (after a block's last iteration: that block, iter = iters)
    size_t done = 0, total = 0; // iterations over the whole run
    double loss = 0;            // the last iteration's MSE
    double seconds = 0;
    const SosStage* finished = nullptr;  // set when a stage was just completed
    const BlockRecon* block_done = nullptr;  // set when a block was just completed
};

// In steps, so that a caller (the JS API, the page's worker) can report progress and stop between them:
//   SosRun run(fp, calib, cfg, opts, eval);  // calibration draw, stage-0 fit, FP32 targets
//   while (!run.done()) run.advance(8);       // up to 8 iterations (never past a block's end)
//   QuantizedViT q = run.result();
// cfg.method must be sos (cfg.recon_iters, cfg.recon_batch, cfg.calib_size, cfg.seed are used). eval may be
// null; it must outlive the run.
class SosRun {
public:
    SosRun(const ViT& fp, const PreparedData& calib, const QuantConfig& cfg, const SosOptions& o = {},
           const PreparedData* eval = nullptr);
    ~SosRun();
    bool done() const;
    size_t total() const;  // iterations of the whole run: 2 stages × blocks × recon_iters
    SosProgress advance(size_t max_iters);
    const std::vector<SosStage>& stages() const;
    const std::vector<BlockRecon>& blocks() const;
    QuantizedViT result() const;  // after done()
private:
    struct State;
    std::unique_ptr<State> s_;
};

struct SosResult {
    QuantizedViT q;
    std::vector<SosStage> stages;
    std::vector<BlockRecon> blocks;
};
// The whole run; `progress` is called after every iteration (returning false stops with the error "cancelled").
SosResult sos(const ViT& fp, const PreparedData& calib, const QuantConfig& cfg, const SosOptions& o = {},
              const PreparedData* eval = nullptr, const std::function<bool(const SosProgress&)>& progress = {});

// PTQ or SOS by cfg.method: what the CLI, the sweep and the bindings call.
QuantizedViT quantize_method(const ViT& fp, const PreparedData& calib, const QuantConfig& cfg, int jobs = 1);

nlohmann::json sos_json(const std::vector<SosStage>& stages, const std::vector<BlockRecon>& blocks);

}  // namespace bitlens::train
