#include "model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <stdexcept>

#include "kernels.h"

namespace bitlens {
namespace k = kernels;

const char* point_kind_name(PointKind kind) {
    switch (kind) {
        case PointKind::PatchInput: return "patch_input";
        case PointKind::PostLN: return "post_layernorm";
        case PointKind::Query: return "query";
        case PointKind::Key: return "key";
        case PointKind::Value: return "value";
        case PointKind::AttnScores: return "attn_scores";
        case PointKind::AttnProbs: return "attn_probs";
        case PointKind::AttnOut: return "attn_out";
        case PointKind::PostGELU: return "post_gelu";
        case PointKind::HeadInput: return "head_input";
    }
    return "?";
}

void Linear::pack() {
    packed.assign(k::f32_gemm_packed_floats(size_t(out), size_t(in)), 0.0f);
    k::f32_gemm_pack(size_t(out), size_t(in), weight.data(), size_t(in), 1, packed.data());
}

void IntLinear::finish() {
    const int32_t zero = in.zero - shift;
    out_scale.resize(wscale.size());
    offset.resize(wscale.size());
    for (size_t n = 0; n < wscale.size(); ++n) out_scale[n] = in.scale * wscale[n], offset[n] = zero * row_sum[n];
}

int32_t IntGelu::quantize(float y) const {
    int8_t o;
    k::f32_qs8_vcvt_ref(1, &y, in.scale, in.zero, in.qmin, in.qmax, shift, &o);
    return o;
}

int32_t IntGelu::code(float x) const {
    (tanh_form ? k::f32_gelu_tanh_ref : k::f32_gelu_ref)(1, &x);
    return quantize(x);
}

kernels::SumThresholdCodes IntGelu::sum_codes() const {
    k::SumThresholdCodes tc;
    tc.n_up = uint32_t(up.size()), tc.n_down = uint32_t(down.size());
    tc.up = sum_up.data(), tc.down = sum_down.data(), tc.base = base;
    return tc;
}

kernels::ThresholdCodes IntGelu::codes() const {
    k::ThresholdCodes tc;
    tc.up = up.data(), tc.n_up = uint32_t(up.size()), tc.down = down.data(), tc.n_down = uint32_t(down.size());
    tc.base = base, tc.special = special;
    tc.zone_lo = zone_lo.data(), tc.zone_hi = zone_hi.data(), tc.n_zones = uint32_t(zone_lo.size());
    tc.exact = [](float v, const void* self) { return static_cast<const IntGelu*>(self)->code(v); };
    tc.ctx = this;
    return tc;
}

int32_t activation_shift(const Quantizer& q) { return q.qmax - q.qmin <= 127 ? q.qmin : q.qmin >= 0 ? 128 : 0; }

bool weight_shift(const Quantizer& q, int32_t& shift) {
    if (q.qmin - q.zero >= -128 && q.qmax - q.zero <= 127) return shift = q.zero, true;  // no row correction
    if (q.qmax - q.qmin > 255) return false;
    return shift = q.qmin + 128, true;
}

void attention_matmul_int(size_t M, size_t N, size_t K, const int8_t* A, size_t lda, bool relaxed, int32_t alpha, int32_t beta,
                          float scale, Workspace& ws, float* C, size_t ldc, bool softmax) {
    ws.acc.resize(M * N), ws.row_sum.resize(M);
    (relaxed ? k::qs8_gemm_2x4c16_wasmrelaxed : k::qs8_gemm_2x4c8_wasmsimd)(M, N, K, A, lda, ws.packed_i.data(), ws.acc.data(), N);
    const int32_t* row_offset = nullptr;
    if (beta != 0) {  // −β·Σa per row
        for (size_t m = 0; m < M; ++m) {
            int32_t sum = 0;
            for (size_t j = 0; j < K; ++j) sum += A[m * lda + j];
            ws.row_sum[m] = -beta * sum;
        }
        row_offset = ws.row_sum.data();
    }
    const int32_t kab = int32_t(K) * alpha * beta;
    for (size_t n = 0; n < N; ++n) ws.col_sum[n] = -(alpha * ws.col_sum[n] + kab);  // −(α·Σw + K·α·β) per column
    (softmax ? k::i32_softmax_rc_f32_wasmsimd : k::i32_dequant_rc_f32_wasmsimd)(M, N, ws.acc.data(), N, row_offset, ws.col_sum.data(),
                                                                                 scale, C, ldc);
}

void Linear::quantize_input(const float* x, size_t rows, size_t ldx, int8_t* xq) const {
    const IntLinear& q = *int8;
    const size_t K = size_t(in), Kp = k::qs4_gemm_kp(K);  // a row stride both kernels accept
    for (size_t r = 0; r < rows; ++r) {
        k::f32_qs8_vcvt_wasmsimd(K, x + r * ldx, q.in.scale, q.in.zero, q.in.qmin, q.in.qmax, q.shift, &xq[r * Kp]);
        std::fill(xq + r * Kp + K, xq + (r + 1) * Kp, int8_t(0));
    }
}

void Linear::sums(const int8_t* xq, size_t rows, int32_t* acc) const {
    const IntLinear& q = *int8;
    const size_t K = size_t(in), Kp = k::qs4_gemm_kp(K), N = size_t(out);
    // Codes of at most 7 bits are stored in [0, 127] (IntLinear::shift): relaxed SIMD's dot is exact on them.
    const bool relaxed = q.in.qmin - q.shift >= 0 && q.in.qmax - q.shift <= 127 && k::relaxed_simd_enabled();
    if (q.packed4.empty())
        (relaxed ? k::qs8_gemm_2x4c16_wasmrelaxed : k::qs8_gemm_2x4c8_wasmsimd)(rows, N, K, xq, Kp, q.packed.data(), acc, N);
    else
        (relaxed ? k::qs8_qc4w_gemm_2x4c16_wasmrelaxed : k::qs8_qc4w_gemm_2x4c8_wasmsimd)(rows, N, K, xq, Kp, q.packed4.data(), acc, N);
}

void Linear::forward_codes(const int8_t* xq, size_t rows, float* y, size_t ldy) const {
    const IntLinear& q = *int8;
    const size_t N = size_t(out);
    thread_local std::vector<int32_t> acc;
    acc.resize(rows * N);
    sums(xq, rows, acc.data());
    k::i32_dequant_f32_wasmsimd(rows, N, acc.data(), N, q.offset.data(), q.out_scale.data(), bias.empty() ? nullptr : bias.data(), y, ldy);
}

void Linear::forward(const float* x, size_t rows, size_t ldx, float* y, size_t ldy) const {
    if (int8) {
        // Integer path: quantize the input rows to int8 codes, int8 GEMM, then back to float.
        thread_local std::vector<int8_t> xq;
        xq.resize(rows * k::qs4_gemm_kp(size_t(in)));
        quantize_input(x, rows, ldx, xq.data());
        forward_codes(xq.data(), rows, y, ldy);
        return;
    }
    k::f32_gemm_4x8_wasmsimd(rows, size_t(out), size_t(in), x, ldx, packed.data(), bias.empty() ? nullptr : bias.data(), y, ldy);
}

std::vector<Linear*> ViT::linears() {
    std::vector<Linear*> r{&patch_embed};
    for (Block& b : blocks)
        for (Linear Block::*l : kBlockLinears) r.push_back(&(b.*l));
    r.push_back(&head);
    if (cfg.dist_head) r.push_back(&head_dist);
    return r;
}
std::vector<const Linear*> ViT::linears() const {
    std::vector<const Linear*> r;
    for (Linear* l : const_cast<ViT*>(this)->linears()) r.push_back(l);
    return r;
}

namespace {
// The block point whose values block Linear j (ViT::kBlockLinears) takes in; -1 when none.
constexpr int block_input(size_t j) {
    for (int p = 0; p < ViT::kPointsPerBlock; ++p)
        if (ViT::kBlockPoints[p].feeds == ViT::kBlockLinears[j]) return p;
    return -1;
}
constexpr bool every_block_linear_has_an_input() {
    for (size_t j = 0; j < size_t(ViT::kLinearsPerBlock); ++j)
        if (block_input(j) < 0) return false;
    return true;
}
static_assert(every_block_linear_has_an_input(), "kBlockPoints must name an input point for every Linear of kBlockLinears");
}  // namespace

int ViT::input_point(size_t linear) const {
    const size_t in_blocks = blocks.size() * size_t(kLinearsPerBlock), count = in_blocks + (cfg.dist_head ? 3 : 2);
    if (linear >= count)
        throw std::runtime_error("input_point: Linear " + std::to_string(linear) + " is outside 0.." + std::to_string(count - 1));
    if (linear == 0) return 0;  // patch embedding
    if (linear > in_blocks) return head_point();  // head, head_dist
    const size_t b = (linear - 1) / size_t(kLinearsPerBlock), j = (linear - 1) % size_t(kLinearsPerBlock);
    return point_index(int(b), BlockPoint(block_input(j)));
}

size_t ViT::parameter_count() const {
    size_t n = cls_token.size() + dist_token.size() + pos_embed.size();
    for (const Linear* l : linears()) n += l->weight.size() + l->bias.size();
    for (const Block& b : blocks) n += 2 * (b.norm1.gamma.size() + b.norm2.gamma.size());
    return n + 2 * (norm.gamma.size() + fc_norm.gamma.size());
}

// Letters: T tokens (prefix + patches), D hidden, H heads, d = D/H head size (H: the unpruned count), A = H_b·d a
// block's attention width and F its MLP width (smaller than D and mlp_dim in a pruned model),
// C channels, P patch size, G = grid width.
void ViT::forward(const float* image, float* logits, Workspace& ws, ActivationHook* hook) const {
    embed(image, ws, hook);
    run_blocks(0, blocks.size(), ws, hook);
    head_logits(logits, ws, hook);
}

namespace {
inline void notify(ActivationHook* hook, int point, float* x, size_t rows, size_t cols, size_t ld) {
    if (hook) hook->on_activation(point, x, rows, cols, ld);
}

// Rows of n values (stride ldx) as the integer GEMM's activation operand: codes − shift in rows of stride ldo, zero
// from n to np (≤ ldo).
void quantize_rows(const Quantizer& q, int32_t shift, size_t rows, size_t n, const float* x, size_t ldx, int8_t* out, size_t ldo,
                   size_t np) {
    for (size_t r = 0; r < rows; ++r) {
        k::f32_qs8_vcvt_wasmsimd(n, x + r * ldx, q.scale, q.zero, q.qmin, q.qmax, shift, out + r * ldo);
        std::fill(out + r * ldo + n, out + r * ldo + np, int8_t(0));
    }
}

// scores[h] = s_q·s_k·scale · (q_h codes)·(k_h codes)ᵀ for every head, from qkv[T, 3A] (IntAttention); with `softmax`,
// their softmax (kernels::i32_softmax_rc_f32: the same bits, the scores never stored).
void attention_scores_int(const IntAttention& ia, const float* qkv, size_t T, size_t H, size_t d, float scale, Workspace& ws,
                          bool softmax) {
    const size_t A = H * d, dp = k::qs4_gemm_kp(d), lda = H * dp;  // q codes: row t, head h at h·dp, zero to (h+1)·dp
    ws.acodes.resize(T * lda), ws.wcodes.resize(T * A), ws.packed_i.resize(T * k::qs8_gemm_kp(d)), ws.col_sum.resize(T);
    if (dp == d)  // the heads' codes side by side: whole rows at once
        quantize_rows(ia.q, ia.q_shift, T, A, qkv, 3 * A, ws.acodes.data(), lda, lda);
    else
        for (size_t h = 0; h < H; ++h) quantize_rows(ia.q, ia.q_shift, T, d, qkv + h * d, 3 * A, &ws.acodes[h * dp], lda, dp);
    for (size_t t = 0; t < T; ++t)
        k::f32_qs8_vcvt_wasmsimd(A, qkv + t * 3 * A + A, ia.k.scale, ia.k.zero, ia.k.qmin, ia.k.qmax, ia.k_shift, &ws.wcodes[t * A]);
    const bool relaxed = ia.q.qmin - ia.q_shift >= 0 && ia.q.qmax - ia.q_shift <= 127 && k::relaxed_simd_enabled();
    const float s = ia.q.scale * ia.k.scale * scale;
    for (size_t h = 0; h < H; ++h) {
        k::qs8_gemm_pack_strided(T, d, &ws.wcodes[h * d], A, 1, ws.packed_i.data(), ws.col_sum.data());
        attention_matmul_int(T, T, d, &ws.acodes[h * dp], lda, relaxed, ia.q_shift - ia.q.zero, ia.k_shift - ia.k.zero, s, ws,
                             &ws.scores[h * T * T], T, softmax);
    }
}

// ctx[:, h] = s_p·s_v · (probs_h codes)·(v_h codes) for every head (IntAttention with pv), probs in ws.scores.
void attention_context_int(const IntAttention& ia, const float* qkv, size_t T, size_t H, size_t d, Workspace& ws, float* ctx) {
    const size_t A = H * d, Tp = k::qs4_gemm_kp(T);
    ws.acodes.resize(H * T * Tp), ws.wcodes.resize(T * A), ws.packed_i.resize(d * k::qs8_gemm_kp(T)), ws.col_sum.resize(d);
    quantize_rows(ia.probs, ia.p_shift, H * T, T, ws.scores.data(), T, ws.acodes.data(), Tp, Tp);
    for (size_t t = 0; t < T; ++t)
        k::f32_qs8_vcvt_wasmsimd(A, qkv + t * 3 * A + 2 * A, ia.v.scale, ia.v.zero, ia.v.qmin, ia.v.qmax, ia.v_shift, &ws.wcodes[t * A]);
    const bool relaxed = ia.probs.qmin - ia.p_shift >= 0 && ia.probs.qmax - ia.p_shift <= 127 && k::relaxed_simd_enabled();
    const float s = ia.probs.scale * ia.v.scale;
    for (size_t h = 0; h < H; ++h) {
        k::qs8_gemm_pack_strided(d, T, &ws.wcodes[h * d], 1, A, ws.packed_i.data(), ws.col_sum.data());  // v_hᵀ
        attention_matmul_int(T, d, T, &ws.acodes[h * T * Tp], Tp, relaxed, ia.p_shift - ia.probs.zero, ia.v_shift - ia.v.zero, s, ws,
                             ctx + h * d, A, false);
    }
}
}  // namespace

void ViT::embed(const float* image, Workspace& ws, ActivationHook* hook) const {
    const ViTConfig& c = cfg;
    const size_t T = size_t(c.tokens()), D = size_t(c.hidden), Np = size_t(c.num_patches()), P = size_t(c.patch),
                 C = size_t(c.channels), G = size_t(c.grid_w()), pre = size_t(c.prefix_tokens()), PP = C * P * P;
    const size_t Wimg = size_t(c.image_w), HWimg = size_t(c.image_h) * Wimg;
    ws.x.resize(T * D), ws.patches.resize(Np * PP);

    // Patch embedding. patches[Np, C·P·P], column (ch, i, j) as the Conv2d weight [D, C, P, P] is laid out.
    for (size_t p = 0; p < Np; ++p) {
        const size_t gy = p / G, gx = p % G;
        float* row = &ws.patches[p * PP];
        for (size_t ch = 0; ch < C; ++ch)
            for (size_t i = 0; i < P; ++i)
                std::memcpy(row + (ch * P + i) * P, image + ch * HWimg + (gy * P + i) * Wimg + gx * P, P * sizeof(float));
    }
    notify(hook, 0, ws.patches.data(), Np, PP, PP);
    float* x = ws.x.data();                                     // x[T, D]
    patch_embed.forward(ws.patches.data(), Np, PP, x + pre * D, D);
    std::memcpy(x, cls_token.data(), D * sizeof(float));
    if (c.dist_token) std::memcpy(x + D, dist_token.data(), D * sizeof(float));
    for (size_t i = 0; i < T * D; ++i) x[i] = x[i] + pos_embed[i];
}

void ViT::run_blocks(size_t first, size_t last, Workspace& ws, ActivationHook* hook) const {
    const ViTConfig& c = cfg;
    const size_t T = size_t(c.tokens()), D = size_t(c.hidden), d = size_t(c.head_dim());
    // Sized for the unpruned block; a pruned one uses less (H heads of d, A = H·d attention width, F MLP width).
    ws.x.resize(T * D), ws.ln.resize(T * D), ws.qkv.resize(T * 3 * D), ws.scores.resize(size_t(c.heads) * T * T);
    ws.ctx.resize(T * D), ws.tmp.resize(T * D), ws.mlp.resize(T * size_t(c.max_block_mlp()));
    ws.packed_k.resize(k::f32_gemm_packed_floats(T, d)), ws.packed_v.resize(k::f32_gemm_packed_floats(d, T));
    float* x = ws.x.data();
    const float scale = 1.0f / std::sqrt(float(d));
    for (size_t bi = first; bi < last; ++bi) {
        const Block& b = blocks[bi];
        const int bidx = int(bi);
        const size_t H = size_t(c.block_heads(bi)), A = H * d, F = size_t(c.block_mlp(bi));
        // --- attention: x = x + proj(MHSA(LN1(x)))
        k::f32_layernorm_wasmsimd(T, D, x, D, b.norm1.gamma.data(), b.norm1.beta.data(), c.ln_eps, ws.ln.data(), D);
        notify(hook, point_index(bidx, kQkvIn), ws.ln.data(), T, D, D);
        float* qkv = ws.qkv.data();                             // qkv[T, 3A] = [q | k | v]
        b.qkv.forward(ws.ln.data(), T, D, qkv, 3 * A);
        notify(hook, point_index(bidx, kQ), qkv, T, A, 3 * A);
        notify(hook, point_index(bidx, kK), qkv + A, T, A, 3 * A);
        notify(hook, point_index(bidx, kV), qkv + 2 * A, T, A, 3 * A);
        const IntAttention* ia = b.int_attn.get();
        // Integer q·kᵀ whose scores nobody reads: its int32 sums go straight into softmax.
        const bool fused_softmax = ia && !(hook && hook->reads(point_index(bidx, kScores)));
        if (ia) {
            attention_scores_int(*ia, qkv, T, H, d, scale, ws, fused_softmax);
        } else {
            for (size_t h = 0; h < H; ++h) {                   // scores[h] = q_h · k_hᵀ · scale   [T, T]
                k::f32_gemm_pack(T, d, qkv + A + h * d, 3 * A, 1, ws.packed_k.data());
                float* s = &ws.scores[h * T * T];
                k::f32_gemm_4x8_wasmsimd(T, T, d, qkv + h * d, 3 * A, ws.packed_k.data(), nullptr, s, T);
                for (size_t i = 0; i < T * T; ++i) s[i] = s[i] * scale;
            }
        }
        if (!fused_softmax) {
            notify(hook, point_index(bidx, kScores), ws.scores.data(), H * T, T, T);
            k::f32_softmax_wasmsimd(H * T, T, ws.scores.data(), T);
        }
        notify(hook, point_index(bidx, kProbs), ws.scores.data(), H * T, T, T);
        if (ia && ia->pv) {
            attention_context_int(*ia, qkv, T, H, d, ws, ws.ctx.data());
        } else {
            for (size_t h = 0; h < H; ++h) {                   // ctx[:, h] = probs[h] · v_h   [T, d]
                k::f32_gemm_pack(d, T, qkv + 2 * A + h * d, 1, 3 * A, ws.packed_v.data());
                k::f32_gemm_4x8_wasmsimd(T, d, T, &ws.scores[h * T * T], T, ws.packed_v.data(), nullptr, ws.ctx.data() + h * d, A);
            }
        }
        notify(hook, point_index(bidx, kProjIn), ws.ctx.data(), T, A, A);
        b.proj.forward(ws.ctx.data(), T, A, ws.tmp.data(), D);
        for (size_t i = 0; i < T * D; ++i) x[i] = x[i] + ws.tmp[i];
        // --- MLP: x = x + fc2(GELU(fc1(LN2(x))))
        k::f32_layernorm_wasmsimd(T, D, x, D, b.norm2.gamma.data(), b.norm2.beta.data(), c.ln_eps, ws.ln.data(), D);
        notify(hook, point_index(bidx, kFc1In), ws.ln.data(), T, D, D);
        const int fc2_in = point_index(bidx, kFc2In);
        if (b.int_gelu && !(hook && hook->reads(fc2_in))) {  // fc1's sums → fc2's codes (IntGelu): no floats between
            const IntLinear& q1 = *b.fc1.int8;
            const size_t Fp = k::qs4_gemm_kp(F);
            ws.mlp_codes.resize(std::max(T * k::qs4_gemm_kp(D), T * Fp)), ws.acc.resize(T * F);
            b.fc1.quantize_input(ws.ln.data(), T, D, ws.mlp_codes.data());
            b.fc1.sums(ws.mlp_codes.data(), T, ws.acc.data());
            if (b.int_gelu->on_sums)  // the thresholds on the int16 sums themselves
                k::i32_tcodes_qs8_wasmsimd(T, F, ws.acc.data(), F, b.int_gelu->sum_codes(), ws.mlp_codes.data(), Fp);
            else
                k::i32_dequant_tcodes_qs8_wasmsimd(T, F, ws.acc.data(), F, q1.offset.data(), q1.out_scale.data(),
                                                   b.fc1.bias.empty() ? nullptr : b.fc1.bias.data(), b.int_gelu->codes(),
                                                   ws.mlp_codes.data(), Fp);
            for (size_t t = 0; t < T; ++t) std::fill(ws.mlp_codes.data() + t * Fp + F, ws.mlp_codes.data() + (t + 1) * Fp, int8_t(0));
            b.fc2.forward_codes(ws.mlp_codes.data(), T, ws.tmp.data(), D);
        } else {
            b.fc1.forward(ws.ln.data(), T, D, ws.mlp.data(), F);
            if (c.gelu_tanh) k::f32_gelu_tanh_wasmsimd(T * F, ws.mlp.data());
            else k::f32_gelu_wasmsimd(T * F, ws.mlp.data());
            notify(hook, fc2_in, ws.mlp.data(), T, F, F);
            b.fc2.forward(ws.mlp.data(), T, F, ws.tmp.data(), D);
        }
        for (size_t i = 0; i < T * D; ++i) x[i] = x[i] + ws.tmp[i];
    }
}

void ViT::head_logits(float* logits, Workspace& ws, ActivationHook* hook) const {
    const ViTConfig& c = cfg;
    const size_t D = size_t(c.hidden), Np = size_t(c.num_patches()), pre = size_t(c.prefix_tokens());
    const size_t T = size_t(c.tokens());
    ws.tmp.resize(T * D);
    float* x = ws.x.data();
    // Head: pooled[rows, D] → logits. Token pooling uses the class (and distillation) token after the
    // final norm; average pooling takes the mean of the patch tokens, then fc_norm.
    const size_t rows = c.dist_head ? 2 : 1;
    ws.pooled.resize(rows * D);
    if (c.avg_pool) {
        std::vector<float>& sum = ws.tmp;
        for (size_t j = 0; j < D; ++j) sum[j] = 0.0f;
        for (size_t t = pre; t < T; ++t)
            for (size_t j = 0; j < D; ++j) sum[j] = sum[j] + x[t * D + j];
        for (size_t j = 0; j < D; ++j) sum[j] = sum[j] / float(Np);
        k::f32_layernorm_wasmsimd(1, D, sum.data(), D, fc_norm.gamma.data(), fc_norm.beta.data(), c.ln_eps, ws.pooled.data(), D);
    } else {
        k::f32_layernorm_wasmsimd(rows, D, x, D, norm.gamma.data(), norm.beta.data(), c.ln_eps, ws.pooled.data(), D);
    }
    notify(hook, head_point(), ws.pooled.data(), rows, D, D);
    head.forward(ws.pooled.data(), 1, D, logits, size_t(c.num_classes));
    if (c.dist_head) {
        ws.logits2.resize(size_t(c.num_classes));
        head_dist.forward(ws.pooled.data() + D, 1, D, ws.logits2.data(), size_t(c.num_classes));
        for (int i = 0; i < c.num_classes; ++i) logits[i] = (logits[i] + ws.logits2[size_t(i)]) * 0.5f;
    }
}

std::vector<float> ViT::forward(const std::vector<float>& image, ActivationHook* hook) const {
    const size_t want = size_t(cfg.channels) * size_t(cfg.image_h) * size_t(cfg.image_w);
    if (image.size() != want)
        throw std::runtime_error("model input has " + std::to_string(image.size()) + " values, expected " + std::to_string(want) +
                                 " (" + std::to_string(cfg.channels) + "x" + std::to_string(cfg.image_h) + "x" +
                                 std::to_string(cfg.image_w) + ")");
    Workspace ws;
    std::vector<float> logits(size_t(cfg.num_classes));
    forward(image.data(), logits.data(), ws, hook);
    return logits;
}

// ---------------------------------------------------------------------------------------------------
// Loading

namespace {

struct Loader {
    const SafeTensors& st;
    std::string what;
    std::set<std::string> used;
    std::string dtype;

    const StTensor* get(const std::string& name) const {
        auto it = st.tensors.find(name);
        return it == st.tensors.end() ? nullptr : &it->second;
    }
    std::vector<float> take(const std::string& name, std::vector<int64_t> shape) {
        const StTensor* t = get(name);
        if (!t) throw std::runtime_error(what + ": missing tensor '" + name + "'");
        if (t->shape != shape)
            throw std::runtime_error(what + ": tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected " + shape_str(shape));
        if (t->dtype != "F32" && t->dtype != "F16" && t->dtype != "BF16")
            throw std::runtime_error(what + ": tensor '" + name + "' has dtype " + t->dtype + ", expected F32, F16 or BF16");
        dtype = dtype.empty() || dtype == t->dtype ? t->dtype : "mixed";
        used.insert(name);
        return t->to_f32(what + ": tensor '" + name + "'");
    }
    bool has(const std::string& name) const { return get(name) != nullptr; }
    LayerNorm layernorm(const std::string& canon, const std::string& n, int64_t D) {
        return {canon, take(n + ".weight", {D}), take(n + ".bias", {D}), n};
    }
    Linear linear(const std::string& canon, const std::string& n, int64_t out, int64_t in, bool bias = true) {
        Linear l;
        l.name = canon, l.source = n, l.out = int(out), l.in = int(in);
        l.weight = take(n + ".weight", {out, in});
        if (bias || has(n + ".bias")) l.bias = take(n + ".bias", {out});
        l.pack();
        return l;
    }
};

}  // namespace

LoadedModel load_model(const ModelSource& src) {
    return load_model(src, parse_safetensors(src.safetensors.data(), src.safetensors.size(), src.safetensors_name));
}

LoadedModel load_model(const ModelSource& src, const SafeTensors& st) {
    LoadedModel out;
    ViT& m = out.vit;
    m.cfg = resolve_config(st, src);
    const ViTConfig& c = m.cfg;
    Loader L{st, src.safetensors_name, {}, {}};
    const int64_t D = c.hidden, T = c.tokens(), Cls = c.num_classes, PP = int64_t(c.channels) * c.patch * c.patch;
    const bool hf = c.naming != Naming::Timm;
    const std::string p = c.naming == Naming::HfVit ? "vit." : "deit.";

    auto patch = [&](const std::string& n) {
        Linear l;
        l.name = "patch_embed.proj", l.source = n, l.out = int(D), l.in = int(PP);
        l.weight = L.take(n + ".weight", {D, c.channels, c.patch, c.patch});  // same memory as [D, C·P·P]
        l.bias = L.take(n + ".bias", {D});
        l.pack();
        return l;
    };
    if (hf) {
        m.patch_embed = patch(p + "embeddings.patch_embeddings.projection");
        m.cls_source = p + "embeddings.cls_token", m.pos_source = p + "embeddings.position_embeddings";
        if (c.dist_token) m.dist_source = p + "embeddings.distillation_token";
        for (int i = 0; i < c.depth; ++i) {
            const std::string n = p + "encoder.layer." + std::to_string(i) + ".", canon = "blocks." + std::to_string(i) + ".";
            Block b;
            const int64_t A = c.block_attn_dim(size_t(i)), Fb = c.block_mlp(size_t(i));
            b.norm1 = L.layernorm(canon + "norm1", n + "layernorm_before", D);
            // Fuse q, k, v into one [3A, D] Linear, as timm stores it (A = D unless heads were pruned).
            Linear q = L.linear("q", n + "attention.attention.query", A, D, c.qkv_bias);
            Linear kk = L.linear("k", n + "attention.attention.key", A, D, c.qkv_bias);
            Linear v = L.linear("v", n + "attention.attention.value", A, D, c.qkv_bias);
            b.qkv.name = canon + "attn.qkv", b.qkv.source = n + "attention.attention.{query,key,value}";
            b.qkv.out = int(3 * A), b.qkv.in = int(D);
            for (Linear* s : {&q, &kk, &v}) b.qkv.weight.insert(b.qkv.weight.end(), s->weight.begin(), s->weight.end());
            if (!q.bias.empty() || !kk.bias.empty() || !v.bias.empty())
                for (Linear* s : {&q, &kk, &v}) {
                    if (s->bias.empty()) s->bias.assign(size_t(A), 0.0f);
                    b.qkv.bias.insert(b.qkv.bias.end(), s->bias.begin(), s->bias.end());
                }
            b.qkv.pack();
            b.proj = L.linear(canon + "attn.proj", n + "attention.output.dense", D, A);
            b.norm2 = L.layernorm(canon + "norm2", n + "layernorm_after", D);
            b.fc1 = L.linear(canon + "mlp.fc1", n + "intermediate.dense", Fb, D);
            b.fc2 = L.linear(canon + "mlp.fc2", n + "output.dense", D, Fb);
            m.blocks.push_back(std::move(b));
        }
        m.norm = L.layernorm("norm", p + "layernorm", D);
        if (c.naming == Naming::HfDeit && L.has("cls_classifier.weight")) {
            m.head = L.linear("head", "cls_classifier", Cls, D);
            if (c.dist_head) m.head_dist = L.linear("head_dist", "distillation_classifier", Cls, D);
        } else {
            m.head = L.linear("head", "classifier", Cls, D);
        }
        for (const auto& kv : st.tensors)
            if (kv.first.rfind(p + "pooler.", 0) == 0) m.ignored_tensors.push_back(kv.first), L.used.insert(kv.first);
    } else {
        m.patch_embed = patch("patch_embed.proj");
        m.cls_source = "cls_token", m.pos_source = "pos_embed";
        if (c.dist_token) m.dist_source = "dist_token";
        for (int i = 0; i < c.depth; ++i) {
            const std::string n = "blocks." + std::to_string(i) + ".";
            Block b;
            const int64_t A = c.block_attn_dim(size_t(i)), Fb = c.block_mlp(size_t(i));
            b.norm1 = L.layernorm(n + "norm1", n + "norm1", D);
            b.qkv = L.linear(n + "attn.qkv", n + "attn.qkv", 3 * A, D, c.qkv_bias);
            b.proj = L.linear(n + "attn.proj", n + "attn.proj", D, A);
            b.norm2 = L.layernorm(n + "norm2", n + "norm2", D);
            b.fc1 = L.linear(n + "mlp.fc1", n + "mlp.fc1", Fb, D);
            b.fc2 = L.linear(n + "mlp.fc2", n + "mlp.fc2", D, Fb);
            m.blocks.push_back(std::move(b));
        }
        if (c.avg_pool) m.fc_norm = L.layernorm("fc_norm", "fc_norm", D);
        else m.norm = L.layernorm("norm", "norm", D);
        m.head = L.linear("head", "head", Cls, D);
        if (c.dist_head) m.head_dist = L.linear("head_dist", "head_dist", Cls, D);
    }
    m.cls_token = L.take(m.cls_source, {1, 1, D});
    if (c.dist_token) m.dist_token = L.take(m.dist_source, {1, 1, D});
    m.pos_embed = L.take(m.pos_source, {1, T, D});
    for (const std::string& name : st.order)
        if (!L.used.count(name))
            throw std::runtime_error(src.safetensors_name + ": unexpected tensor '" + name + "' (not part of a " +
                                     naming_name(c.naming) + " with this config)");
    out.source_dtype = L.dtype;

    // Quantization points, in forward order; `feeds` indexes linears().
    m.points.push_back({"patch_embed.in", PointKind::PatchInput, -1, 0});
    for (int i = 0; i < c.depth; ++i) {
        const std::string n = "blocks." + std::to_string(i) + ".";
        for (const BlockPointSpec& s : ViT::kBlockPoints) {
            int feeds = -1;
            for (int j = 0; j < ViT::kLinearsPerBlock; ++j)
                if (s.feeds && s.feeds == ViT::kBlockLinears[j]) feeds = 1 + i * ViT::kLinearsPerBlock + j;
            m.points.push_back({n + s.suffix, s.kind, i, feeds});
        }
    }
    m.points.push_back({"head.in", PointKind::HeadInput, -1, 1 + c.depth * ViT::kLinearsPerBlock});
    return out;
}

LoadedModel load_model_path(const std::string& path, int heads_override) {
    ModelSource src = read_model_source(path);
    src.heads_override = heads_override;
    return load_model(src);
}

}  // namespace bitlens
