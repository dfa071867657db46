// Post-training quantization of a ViT: a configuration, a portable calibration draw, observers that
// collect every point's values in one pass, optional RepQ-ViT reparameterisation of post-LayerNorm
// activations, and the fake-quant hook used at inference.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "eval.h"
#include "model.h"
#include "quant.h"

namespace bitlens {

enum class Method { Ptq, Sos };
Method parse_method(const std::string& name);  // "ptq" | "sos", else throws naming them
const char* method_name(Method m);

struct QuantConfig {
    // ptq: fit every quantizer on the calibration images (quantize() below). sos: I&S-ViT's three-stage
    // smooth optimisation by block reconstruction on them (src/train/sos.h; train::quantize_method runs either).
    Method method = Method::Ptq;
    int recon_iters = 100;                 // sos: Adam iterations per block and stage (0: no reconstruction)
    int recon_batch = 16;                  // sos: calibration images per iteration (≤ calib_size)
    int wbits = 8, abits = 8;
    QType weights = QType::Uniform;        // uniform | pow2
    bool per_channel = true;               // weights: one quantizer per output channel
    RangeMethod w_range = RangeMethod::Mse;
    RangeMethod a_range = RangeMethod::Mse;
    QType softmax = QType::Sulq;           // post-softmax quantizer: uniform | log2 | sulq
    int softmax_bits = 0;                  // 0: same as abits
    bool sulq_round_exponent = false;      // the I&S-ViT code's variant (exponent rounded before 2^·)
    bool edges_8bit = true;                // patch embedding and head (weights and inputs) at 8 bits
    bool reparam = false;                  // RepQ-ViT: channel-wise post-LN scales folded into LN and Linear
    int calib_size = 32;
    uint64_t seed = 0;
    // Mixed precision: bit-widths for single layers (canonical Linear names, e.g. "blocks.0.mlp.fc1")
    // and activation points (e.g. "blocks.0.attn.probs"); they win over wbits/abits/edges_8bit.
    std::map<std::string, int> layer_bits, point_bits;

    int probs_bits() const { return softmax_bits ? softmax_bits : abits; }
    std::string name() const;              // "W4A4", "W4A4/P3" when softmax bits differ, "mixed" with per-layer or per-point
                                           // bits; "+sos" appended for method sos
    void validate() const;                 // bit-widths 2–8, pow2 only for weights, sos options, …
};
nlohmann::json config_json(const QuantConfig& c);
// The inverse: fields as config_json writes them (camelCase aliases accepted: calibSize, softmaxBits),
// missing fields keep their defaults; unknown fields and wrong types are errors naming the field.
QuantConfig config_from_json(const nlohmann::json& j);
// "w4a4" or "W8A8" → bit-widths set on a copy of `base`.
QuantConfig parse_wa(const std::string& s, QuantConfig base);

// Portable: SplitMix64 seeded with `seed`, partial Fisher–Yates over [0, pool); index j swaps with
// j + (next() mod (pool − j)). The same seed picks the same images natively and in WASM.
std::vector<size_t> draw_calibration(size_t pool, size_t n, uint64_t seed);

struct QuantizedViT {
    QuantConfig cfg;
    ViT model;                                   // fake-quantized (and reparameterised) weights
    std::vector<std::vector<Quantizer>> wq;      // per Linear (model.linears() order): per channel, or one
    std::vector<int> wbits;                      // per Linear
    std::vector<char> act_on;                    // per activation point: quantized (char, not bool: set from threads)
    std::vector<Quantizer> aq;                   // per activation point (valid where act_on)

    size_t weight_count() const;
    size_t model_bytes() const;                  // as exported, without the header: packed codes, scales, FP32 remainder
    double bits_per_weight() const;              // weight bits (with per-channel scales) per weight
};

// Hook that replaces each enabled activation by its quantized value (thread-safe: reads only).
// Points whose only consumers are Linears on the integer path, or attention matmuls on the integer path
// (Block::int_attn: q, k; v and probs when probs·v is integer), are left alone: those quantize their input
// with the same quantizer, and quantizing twice gives the same codes.
struct FakeQuantHook : ActivationHook {
    const QuantizedViT& q;
    std::vector<char> active;  // per point: quantize here
    std::vector<FastFake> fast;  // per point
    explicit FakeQuantHook(const QuantizedViT& qv);
    void on_activation(int point, float* x, size_t rows, size_t cols, size_t ld) override;
    bool reads(int point) const override { return active[size_t(point)] != 0; }
};

// Building blocks shared with mixed precision:
// a sample (≤ 32768 values) of every activation point over the images `idx` of `data`, sorted, and the
// number of values each point produces per image. Each image keeps its own values at a fixed stride
// (⌈values per image / ⌊32768 / images⌋⌉, made coprime with the row length), so the sample is a function
// of the set of images: any order of `idx` gives the same vectors, bit for bit.
struct PointSamples {
    std::vector<std::vector<float>> samples;
    std::vector<size_t> per_image;
};
PointSamples observe_points(const ViT& m, const PreparedData& data, const std::vector<size_t>& idx);
// Sorts values by a total order on their bits (−0 before +0, NaNs at the ends): a unique sequence for any
// order they were collected in, so fits whose floating-point sums follow the order give the same result.
void sort_values(std::vector<float>& v);
// Whether a point is quantized at all, its bit-width and its fitted quantizer under `cfg`.
bool point_quantized(const ActPoint& p);
int point_bits(const ActPoint& p, const QuantConfig& cfg);
Quantizer fit_point(const ActPoint& p, const std::vector<float>& samples, int bits, const QuantConfig& cfg);
// RepQ-ViT: the FP32 model with every post-LayerNorm point's channel-wise `bits`-bit asymmetric
// scales folded into its LayerNorm and following Linear (same function, layer-wise friendly ranges).
ViT reparameterised(const ViT& fp, const PreparedData& calib, const std::vector<size_t>& idx, int bits);
// The fold itself: a post-LN point's channel-wise asymmetric steps s[c] and zero points z[c] become the
// layer-wise s_layer, z_layer (r1 = s/s_layer, r2 = z − z_layer) by γ' = γ/r1, β' = (β + s⊙r2)/r1,
// W' = W·diag(r1), b' = b − W·(s⊙r2) on `ln` and `next` (repacked). The same codes, the same function.
void fold_channel_scales(LayerNorm& ln, Linear& next, const std::vector<double>& s, const std::vector<double>& z, double s_layer,
                         double z_layer);
// Per-channel [min, max] of one activation point over the images `idx`.
void channel_ranges(const ViT& m, const PreparedData& data, const std::vector<size_t>& idx, int point,
                    std::vector<float>& cmin, std::vector<float>& cmax);
// A layer's weight bit-width under cfg, and its weights fake-quantized in place (returns the quantizers).
int layer_bits(const Linear& l, const QuantConfig& cfg);
std::vector<Quantizer> quantize_weights(Linear& l, int bits, const QuantConfig& cfg);

// Quantizes `fp`: draws cfg.calib_size images from `calib` with cfg.seed, fits weight quantizers,
// observes activations on the calibration images and fits their quantizers.
QuantizedViT quantize(const ViT& fp, const PreparedData& calib, const QuantConfig& cfg, int jobs = 1);
// Switches to real integer inference (int8 or packed int4 codes, int32 accumulation) every Linear
// with a uniform-quantized input whose weights are uniform codes or power-of-two levels that are int8
// multiples of their smallest level (INQ at ≤ 4 bits), and every block's attention matmuls whose operands are
// quantized uniformly per tensor (IntAttention: q·kᵀ when q and k are, probs·v when probs and v are too).
// Returns how many Linears run in integer.
int enable_integer(QuantizedViT& q);
// What runs on the integer path after enable_integer: attention matmuls on codes (q·kᵀ per block with
// Block::int_attn, + probs·v where it is integer too) and blocks whose GELU runs on thresholds (Block::int_gelu).
struct IntegerBlocks { int attention = 0, gelu = 0; };
IntegerBlocks integer_blocks(const QuantizedViT& q);
EvalResult evaluate_quantized(const QuantizedViT& q, const PreparedData& data, int jobs = 0);

}  // namespace bitlens
