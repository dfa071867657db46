// The Vision Transformer: weights in one canonical (timm-style) layout whatever the checkpoint's
// naming, and a forward pass that reads top to bottom. Every quantization point is named, listed in
// `points`, and handed to an optional hook that may observe or rewrite the values in place.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "quant.h"

namespace bitlens {

// The integer path of a quantized Linear: int8 weight codes w_q with per-output-channel scales s_w,
// and the input's uniform quantizer (scale s_x, zero z_x). With input codes x_q:
//   y[n] = s_x·s_w[n]·(Σ_k x_q[k]·w_q[n][k] − z_x·Σ_k w_q[n][k]) + b[n]
// computed as an int8×int8→int32 GEMM (input codes shifted by −128 into int8 when unsigned, z_x with
// them) with the scales applied after accumulation.
struct IntLinear {
    std::vector<int16_t> packed;   // out × Kp weight codes widened to int16 (kernels::qs8_gemm_pack), or empty when
    std::vector<uint8_t> packed4;  // the codes fit 4 bits: two per byte (kernels::qs4_gemm_pack)
    std::vector<float> wscale;     // [out]
    std::vector<int32_t> row_sum;  // Σ_k w_q[n][k]
    Quantizer in;                  // uniform input quantizer
    int32_t shift = 0;             // 128 when input codes are unsigned, else 0
    std::vector<float> out_scale;  // [out] s_x · s_w[n]
    std::vector<int32_t> offset;   // [out] (zero − shift) · row_sum[n]
    void finish();                 // fills out_scale and offset from the fields above
};

// y[rows, out] = x[rows, in] · weightᵀ + bias. `packed` is the kernel's layout of `weight`.
struct Linear {
    std::string name;            // canonical name, e.g. "blocks.3.mlp.fc1"
    std::string source;          // tensor name(s) in the checkpoint
    int out = 0, in = 0;
    std::vector<float> weight;   // [out, in]
    std::vector<float> bias;     // [out], empty when the layer has none
    std::vector<float> packed;
    std::shared_ptr<const IntLinear> int8;  // when set, forward() runs the integer path
    void pack();                 // call after changing `weight`
    void forward(const float* x, size_t rows, size_t ldx, float* y, size_t ldy) const;
};

struct LayerNorm {
    std::string name;
    std::vector<float> gamma, beta;  // [D]
    std::string source;              // tensor prefix in the checkpoint ("" when not loaded)
};

struct Block {
    LayerNorm norm1;
    Linear qkv;    // [3D, D]: rows q, then k, then v
    Linear proj;   // [D, D]
    LayerNorm norm2;
    Linear fc1;    // [F, D]
    Linear fc2;    // [D, F]
};

// Activation quantization points. Per block, in forward order.
enum class PointKind {
    PatchInput,   // normalised image patches, input of the patch embedding
    PostLN,       // LayerNorm output feeding qkv or fc1
    Query, Key, Value,
    AttnScores,   // q·kᵀ/√d, all heads
    AttnProbs,    // softmax output, all heads
    AttnOut,      // attention context feeding proj
    PostGELU,     // fc1 output after GELU, feeding fc2
    HeadInput,    // final normalised token(s) feeding the classifier(s)
};
const char* point_kind_name(PointKind k);

struct ActPoint {
    std::string name;     // e.g. "blocks.2.attn.probs"
    PointKind kind;
    int block;            // -1 outside blocks
    std::string feeds;    // canonical name of the Linear it feeds ("" for q/k/v/scores/probs)
};

struct ActivationHook {
    virtual ~ActivationHook() = default;
    // x is rows × cols with row stride ld (elements); the hook may rewrite it in place.
    virtual void on_activation(int point, float* x, size_t rows, size_t cols, size_t ld) = 0;
};

// Scratch memory for one forward pass (one per thread).
struct Workspace {
    std::vector<float> x, ln, qkv, scores, ctx, tmp, mlp, patches, packed_k, packed_v, pooled, logits2;
};

class ViT {
public:
    ViTConfig cfg;
    Linear patch_embed;   // [D, C·P·P]: the Conv2d(kernel = stride = P) as a Linear over flattened patches
    std::vector<float> cls_token, dist_token, pos_embed;  // [D], [D], [T, D]
    std::string cls_source, dist_source, pos_source;      // their tensor names in the checkpoint
    std::vector<Block> blocks;
    LayerNorm norm;       // final norm (token pooling)
    LayerNorm fc_norm;    // after average pooling (timm global_pool="avg")
    Linear head, head_dist;
    std::vector<ActPoint> points;
    std::vector<std::string> ignored_tensors;  // present in the file, not used at inference (e.g. a pooler)

    // Point indices in `points`.
    static constexpr int kPointsPerBlock = 9;
    enum BlockPoint { kQkvIn, kQ, kK, kV, kScores, kProbs, kProjIn, kFc1In, kFc2In };
    int point_index(int block, BlockPoint p) const { return 1 + block * kPointsPerBlock + int(p); }
    int head_point() const { return 1 + int(blocks.size()) * kPointsPerBlock; }

    std::vector<Linear*> linears();
    std::vector<const Linear*> linears() const;
    size_t parameter_count() const;

    // image: CHW float, already preprocessed (see preprocess()). logits: num_classes.
    void forward(const float* image, float* logits, Workspace& ws, ActivationHook* hook = nullptr) const;
    // The same pass in stages, for callers that restart it from a saved residual stream (ws.x, T × D):
    // forward = embed, then blocks [0, depth), then head. Each stage sizes what it uses in ws.
    void embed(const float* image, Workspace& ws, ActivationHook* hook = nullptr) const;
    void run_blocks(size_t first, size_t last, Workspace& ws, ActivationHook* hook = nullptr) const;
    void head_logits(float* logits, Workspace& ws, ActivationHook* hook = nullptr) const;
    std::vector<float> forward(const std::vector<float>& image, ActivationHook* hook = nullptr) const;
};

struct LoadedModel {
    ViT vit;
    std::string source_dtype;   // "F32", "F16", "BF16" or "mixed"
};

// Loads a checkpoint: every tensor the architecture needs must be present with the right shape, and
// every tensor present must be used (a pooler of a Hugging Face checkpoint is listed as ignored).
LoadedModel load_model(const ModelSource& src);
// The same from tensors already parsed (src.safetensors is then ignored; its name is used in errors).
LoadedModel load_model(const ModelSource& src, const SafeTensors& st);
LoadedModel load_model_path(const std::string& path, int heads_override = 0);

}  // namespace bitlens
