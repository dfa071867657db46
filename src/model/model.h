// The Vision Transformer: weights in one canonical (timm-style) layout whatever the checkpoint's
// naming, and a forward pass that reads top to bottom. Every quantization point is named, listed in
// `points`, and handed to an optional hook that may observe or rewrite the values in place.
#pragma once
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "quant.h"

namespace bitlens {

// The integer path of a quantized Linear: int8 weight codes w_q with per-output-channel scales s_w,
// and the input's uniform quantizer (scale s_x, zero z_x). With input codes x_q:
//   y[n] = s_x·s_w[n]·(Σ_k x_q[k]·w_q[n][k] − z_x·Σ_k w_q[n][k]) + b[n]
// computed as an int8×int8→int32 GEMM (input codes x_q − shift: in [0, 127] for codes of at most 7 bits, which
// the relaxed-SIMD kernels need; shifted by −128 into int8 when wider and unsigned; z_x − shift with them) with the
// scales applied after accumulation.
struct IntLinear {
    std::vector<int16_t> packed;   // out × Kp weight codes widened to int16 (kernels::qs8_gemm_pack), or empty when
    std::vector<uint8_t> packed4;  // the codes fit 4 bits: two per byte (kernels::qs4_gemm_pack)
    std::vector<float> wscale;     // [out]
    std::vector<int32_t> row_sum;  // Σ_k w_q[n][k]
    std::vector<int32_t> pos_sum, neg_sum;  // Σ_k max(w_q[n][k], 0), Σ_k min(w_q[n][k], 0): the range of the sums
    Quantizer in;                  // uniform input quantizer
    int32_t shift = 0;             // qmin when qmax − qmin ≤ 127; else 128 when input codes are unsigned, 0 when signed
    std::vector<float> out_scale;  // [out] s_x · s_w[n]
    std::vector<int32_t> offset;   // [out] (zero − shift) · row_sum[n]
    void finish();                 // fills out_scale and offset from the fields above
};

// The integer path of a block's attention matmuls, per head (d = head size, T tokens):
//   scores[i][j] = s_q·s_k/√d · Σ_c (q_q[i][c] − z_q)·(k_q[j][c] − z_k)             (q·kᵀ)
//   ctx[i][c]    = s_p·s_v · Σ_j (p_q[i][j] − z_p)·(v_q[j][c] − z_v)                 (probs·v, when `pv`)
// from the uniform per-tensor quantizers of the q, k (probs, v) points. q's codes (probs' codes) are the GEMM's
// activation operand, stored as code − shift exactly as IntLinear stores its input (≤ 7 bits: in [0, 127], which
// the relaxed-SIMD dot needs); k's (v's) are its weight operand, code − shift in int8 (shift = z when every
// code − z fits int8, else qmin + 128). With a = code_a − shift_a, w = code_w − shift_w, α = shift_a − z_a,
// β = shift_w − z_w, each sum is Σ(a + α)(w + β) = Σa·w + β·Σa + α·Σw + K·α·β: the int32 GEMM, a correction per row
// (β·Σa, 0 when β = 0), one per column (α·Σw + K·α·β), then one float scale (kernels::i32_dequant_rc_f32).
struct IntAttention {
    Quantizer q, k;               // uniform quantizers of the block's q and k points
    int32_t q_shift = 0, k_shift = 0;
    bool pv = false;              // probs·v is integer too (probs and v quantized uniformly)
    Quantizer probs, v;           // valid when pv
    int32_t p_shift = 0, v_shift = 0;
};
// A block's fc1 → GELU → fc2 on the integer path without the floats in between: fc1's int32 sums go straight to
// fc2's input codes (kernels::i32_dequant_tcodes_qs8), GELU and fc2's input quantizer folded into thresholds on
// fc1's dequantized output (built by integer_gelu, src/quant/ptq.cpp, which checks them against the two
// computed in turn). Codes are stored as fc2's IntLinear stores them (code − shift).
struct IntGelu {
    Quantizer in;                 // fc2's input quantizer, its codes stored − shift
    int32_t shift = 0;
    bool tanh_form = false;       // GELU's form (ViTConfig::gelu_tanh)
    std::vector<float> up, down, zone_lo, zone_hi;  // kernels::ThresholdCodes
    int32_t base = 0, special = 0;
    // The same thresholds on fc1's int32 sums, per channel (kernels::SumThresholdCodes, sum_threshold_index), when every
    // sum fc1 can give fits int16 and no zone is reached (integer_gelu_sums, src/quant/ptq.cpp); else empty.
    std::vector<int16_t> sum_up, sum_down;
    bool on_sums = false;
    int32_t quantize(float y) const;  // y's code under `in` (kernels::f32_qs8_vcvt_ref), − shift
    int32_t code(float x) const;      // computed: kernels::f32_gelu(_tanh)_ref, then quantize
    kernels::ThresholdCodes codes() const;
    kernels::SumThresholdCodes sum_codes() const;
};
// The shifts above: the activation operand's (IntLinear::shift's rule) and the weight operand's; the weight one
// is false when the codes span more than 256 values.
int32_t activation_shift(const Quantizer& q);
bool weight_shift(const Quantizer& q, int32_t& shift);
struct Workspace;
// One head's integer matmul: C[m][n] = scale · float(Σ_k (A[m][k] + α)·(w[n][k] + β)) (row stride ldc), A the
// activation operand (M × K, row stride lda ≥ kernels::qs4_gemm_kp(K), zero from K), w the weight operand packed
// into ws.packed_i by kernels::qs8_gemm_pack_strided with its row sums in ws.col_sum (N; overwritten); ws.acc
// (M × N) and ws.row_sum (M) are scratch. `relaxed`: the relaxed-SIMD GEMM (A in [0, 127]), else SIMD128's.
// `softmax`: C is the softmax of each row instead (kernels::i32_softmax_rc_f32, bit for bit the two in turn).
void attention_matmul_int(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, bool relaxed, int32_t alpha, int32_t beta,
                          float scale, Workspace& ws, float* C, size_t ldc, bool softmax = false);

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
    // The integer path in its steps (int8 set): x's codes in rows of kernels::qs4_gemm_kp(in) (zero after `in`),
    // the int32 sums of codes (rows × out), and forward() from codes.
    void quantize_input(const float* x, size_t rows, size_t ldx, int8_t* xq) const;
    void sums(const int8_t* xq, size_t rows, int32_t* acc) const;
    void forward_codes(const int8_t* xq, size_t rows, float* y, size_t ldy) const;
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
    std::shared_ptr<const IntAttention> int_attn;  // when set, q·kᵀ (and probs·v when int_attn->pv) run integer
    std::shared_ptr<const IntGelu> int_gelu;       // when set (fc1 and fc2 integer), GELU runs on thresholds
};

// Activation quantization points: the patch input, each block's points (BITLENS_BLOCK_POINTS), the head input.
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
    int feeds;            // index in ViT::linears() of the Linear whose input it is (for the head input: the head,
                          // which head_dist reads too); -1 for q/k/v/scores/probs
};

// One block's activation points in forward order: ViT::BlockPoint enumerator, name after "blocks.<i>.",
// PointKind, and the block's Linear whose input it is (nullptr for none). ViT::kBlockPoints is this table.
#define BITLENS_BLOCK_POINTS(X)                              \
    X(kQkvIn,  "attn.qkv.in",  PostLN,     &Block::qkv)     \
    X(kQ,      "attn.q",       Query,      nullptr)         \
    X(kK,      "attn.k",       Key,        nullptr)         \
    X(kV,      "attn.v",       Value,      nullptr)         \
    X(kScores, "attn.scores",  AttnScores, nullptr)         \
    X(kProbs,  "attn.probs",   AttnProbs,  nullptr)         \
    X(kProjIn, "attn.proj.in", AttnOut,    &Block::proj)    \
    X(kFc1In,  "mlp.fc1.in",   PostLN,     &Block::fc1)     \
    X(kFc2In,  "mlp.fc2.in",   PostGELU,   &Block::fc2)

struct BlockPointSpec {
    const char* suffix;      // the point's name after "blocks.<i>."
    PointKind kind;
    Linear Block::*feeds;    // the block Linear whose input it is, or nullptr
};

struct ActivationHook {
    virtual ~ActivationHook() = default;
    // x is rows × cols with row stride ld (elements); the hook may rewrite it in place.
    virtual void on_activation(int point, float* x, size_t rows, size_t cols, size_t ld) = 0;
    // false when on_activation would neither read nor change this point's values: the forward pass may then
    // skip making them (Block::int_gelu).
    virtual bool reads(int /*point*/) const { return true; }
};

// Scratch memory for one forward pass (one per thread).
struct Workspace {
    std::vector<float> x, ln, qkv, scores, ctx, tmp, mlp, patches, packed_k, packed_v, pooled, logits2;
    // the integer attention's (IntAttention): codes of q (or probs), of k (or v), the packed head, sums, accumulators
    std::vector<int8_t> acodes, wcodes;
    std::vector<int16_t> packed_i;
    std::vector<int32_t> acc, row_sum, col_sum;
    std::vector<int8_t> mlp_codes;  // Block::int_gelu: fc2's input codes
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

    // `points`: the patch input (0), then per block the points of kBlockPoints, then the head input.
    enum BlockPoint {
#define BITLENS_ENUMERATOR(e, suffix, kind, feeds) e,
        BITLENS_BLOCK_POINTS(BITLENS_ENUMERATOR)
#undef BITLENS_ENUMERATOR
    };
    static constexpr BlockPointSpec kBlockPoints[] = {
#define BITLENS_SPEC(e, suffix, kind, feeds) {suffix, PointKind::kind, feeds},
        BITLENS_BLOCK_POINTS(BITLENS_SPEC)
#undef BITLENS_SPEC
    };
    static constexpr int kPointsPerBlock = int(std::size(kBlockPoints));
    int point_index(int block, BlockPoint p) const { return 1 + block * kPointsPerBlock + int(p); }
    int head_point() const { return 1 + int(blocks.size()) * kPointsPerBlock; }

    // `linears()`: the patch embedding, per block these (in this order), the head, head_dist when cfg.dist_head.
    static constexpr Linear Block::*kBlockLinears[] = {&Block::qkv, &Block::proj, &Block::fc1, &Block::fc2};
    static constexpr int kLinearsPerBlock = int(std::size(kBlockLinears));
    std::vector<Linear*> linears();
    std::vector<const Linear*> linears() const;
    // The point whose values linears()[linear] takes in (head_dist: the head's input, as the head).
    int input_point(size_t linear) const;
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
