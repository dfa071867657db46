#include "vit_train.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "kernels.h"
#include "parallel.h"

namespace bitlens::train {
namespace k = kernels;

// ---------------------------------------------------------------------------------------------------
// Parameters and gradients

std::vector<Param> parameters(ViT& m) {
    std::vector<Param> ps;
    auto add = [&](const std::string& name, std::vector<float>& v, bool decay) {
        if (!v.empty()) ps.push_back({name, v.data(), v.size(), decay});
    };
    auto linear = [&](Linear& l) {
        add(l.name + ".weight", l.weight, true);
        add(l.name + ".bias", l.bias, false);
    };
    auto norm = [&](LayerNorm& n) {
        add(n.name + ".weight", n.gamma, false);
        add(n.name + ".bias", n.beta, false);
    };
    linear(m.patch_embed);
    add("cls_token", m.cls_token, false);
    add("dist_token", m.dist_token, false);
    add("pos_embed", m.pos_embed, false);
    for (Block& b : m.blocks) {
        norm(b.norm1), linear(b.qkv), linear(b.proj), norm(b.norm2), linear(b.fc1), linear(b.fc2);
    }
    norm(m.norm), norm(m.fc_norm);
    linear(m.head);
    if (m.cfg.dist_head) linear(m.head_dist);
    return ps;
}

void zero_grads(ViT& g) {
    for (Param& p : parameters(g)) std::memset(p.data, 0, p.n * sizeof(float));
}

ViT zeros_like(const ViT& m) {
    ViT g = m;
    for (Linear* l : g.linears()) l->packed.clear(), l->int8.reset();
    zero_grads(g);
    return g;
}

Grads::Grads(const ViT& m)
    : p(zeros_like(m)), act_scale(m.points.size(), 0.0), act_zero(m.points.size(), 0.0), channel_scale(m.points.size()),
      channel_zero(m.points.size()), probe(m.points.size()) {}

void Grads::zero() {
    zero_grads(p);
    for (size_t p = 0; p < act_scale.size(); ++p) zero_point(p);
}

void Grads::zero_point(size_t p) {
    act_scale[p] = act_zero[p] = 0.0;
    std::fill(channel_scale[p].begin(), channel_scale[p].end(), 0.0);
    std::fill(channel_zero[p].begin(), channel_zero[p].end(), 0.0);
    std::fill(probe[p].begin(), probe[p].end(), 0.0);
}

void Grads::add_point(const Grads& o, size_t p) {
    act_scale[p] += o.act_scale[p], act_zero[p] += o.act_zero[p];
    if (channel_scale[p].size() < o.channel_scale[p].size())
        channel_scale[p].resize(o.channel_scale[p].size(), 0.0), channel_zero[p].resize(o.channel_zero[p].size(), 0.0);
    for (size_t c = 0; c < o.channel_scale[p].size(); ++c)
        channel_scale[p][c] += o.channel_scale[p][c], channel_zero[p][c] += o.channel_zero[p][c];
    if (probe[p].size() < o.probe[p].size()) probe[p].resize(o.probe[p].size(), 0.0);
    for (size_t k = 0; k < o.probe[p].size(); ++k) probe[p][k] += o.probe[p][k];
}

void Grads::add(const Grads& o) {
    std::vector<Param> a = parameters(p), b = parameters(const_cast<ViT&>(o.p));
    for (size_t i = 0; i < a.size(); ++i)
        for (size_t j = 0; j < a[i].n; ++j) a[i].data[j] = a[i].data[j] + b[i].data[j];
    for (size_t p = 0; p < act_scale.size(); ++p) add_point(o, p);
}

// ---------------------------------------------------------------------------------------------------
// Engine: effective weights, Linear and quantizer pairs

Engine::Engine(ViT& m, QatState* q) : m_(m), q_(q) {
    const size_t L = m.linears().size();
    if (q && (q->weight.size() != L || q->act.size() != m.points.size() ||
              (!q->act_channel.empty() && q->act_channel.size() != m.points.size())))
        throw std::runtime_error("training: quantizer state has " + std::to_string(q->weight.size()) + " layers and " +
                                 std::to_string(q->act.size()) + " points, the model " + std::to_string(L) + " and " +
                                 std::to_string(m.points.size()));
    w_.resize(L), packed_.resize(L);
    refresh();
}

void Engine::refresh() {
    for (size_t i = 0; i < w_.size(); ++i) refresh(i);
}

void Engine::refresh(size_t i) {
    const Linear& l = *m_.linears()[i];
    w_[i] = l.weight;
    if (q_ && !q_->weight[i].empty()) {
        const std::vector<TrainQuantizer>& wq = q_->weight[i];
        const size_t per = wq.size() == 1 ? l.weight.size() : size_t(l.in);
        for (size_t r = 0; r < wq.size(); ++r) wq[r].forward(&l.weight[r * per], &w_[i][r * per], per);
    }
    packed_[i].assign(k::f32_gemm_packed_floats(size_t(l.out), size_t(l.in)), 0.0f);
    k::f32_gemm_pack(size_t(l.out), size_t(l.in), w_[i].data(), size_t(l.in), 1, packed_[i].data());
}

size_t Engine::lin_index(const Linear& l) const {
    const std::vector<Linear*> ls = m_.linears();
    for (size_t i = 0; i < ls.size(); ++i)
        if (ls[i] == &l) return i;
    throw std::logic_error("training: Linear '" + l.name + "' is not the engine's model's");
}

// y[rows, out] = x[rows, in] · Wᵀ + b, W the effective weight (the inference kernel, so the same bits).
void Engine::linear_forward(const Linear& l, const float* x, size_t rows, size_t ldx, float* y, size_t ldy) const {
    k::f32_gemm_4x8_wasmsimd(rows, size_t(l.out), size_t(l.in), x, ldx, packed_[lin_index(l)].data(),
                             l.bias.empty() ? nullptr : l.bias.data(), y, ldy);
}

// dx = dy · W (NN), dW += dyᵀ · x (TN), db += Σ_rows dy (rows in order).
void Engine::linear_backward(const Linear& l, const float* dy, size_t rows, size_t lddy, const float* x, size_t ldx, float* dx,
                             size_t lddx, bool accumulate, Linear& gl) const {
    const size_t N = size_t(l.out), K = size_t(l.in);
    if (dx) k::f32_gemm_nn_4x8_wasmsimd(rows, K, N, dy, lddy, w_[lin_index(l)].data(), K, dx, lddx, accumulate);
    if (!linear_grads_) return;
    k::f32_gemm_tn_4x8_wasmsimd(N, K, rows, dy, lddy, x, ldx, gl.weight.data(), K, true);
    if (!gl.bias.empty())
        for (size_t r = 0; r < rows; ++r)
            for (size_t n = 0; n < N; ++n) gl.bias[n] = gl.bias[n] + dy[r * lddy + n];
}

bool Engine::quantized(int p) const { return q_ && q_->quantized(size_t(p)); }

bool Engine::quant_forward(int p, const float* x, float* out, size_t rows, size_t cols, size_t ld) const {
    if (!quantized(p)) return false;
    if (!q_->act_channel.empty() && !q_->act_channel[size_t(p)].empty()) {  // column c through quantizer c
        const std::vector<TrainQuantizer>& qs = q_->act_channel[size_t(p)];
        if (qs.size() != cols)
            throw std::logic_error("training: point " + m_.points[size_t(p)].name + " has " + std::to_string(qs.size()) +
                                   " channel quantizers for " + std::to_string(cols) + " channels");
        for (size_t r = 0; r < rows; ++r)
            for (size_t c = 0; c < cols; ++c) out[r * ld + c] = qs[c].q.fake(x[r * ld + c]);
        return true;
    }
    const TrainQuantizer& tq = *q_->act[size_t(p)];
    for (size_t r = 0; r < rows; ++r) tq.forward(x + r * ld, out + r * ld, cols);
    return true;
}

void Engine::quant_backward(int p, const float* x, float* dy, size_t rows, size_t cols, size_t ld, Grads& g) const {
    if (probe_) probe_->on_point(p, x, dy, rows, cols, ld, g.probe[size_t(p)]);
    if (!quantized(p)) return;
    if (!q_->act_channel.empty() && !q_->act_channel[size_t(p)].empty()) {
        const std::vector<TrainQuantizer>& qs = q_->act_channel[size_t(p)];
        std::vector<double>&ds = g.channel_scale[size_t(p)], &dz = g.channel_zero[size_t(p)];
        if (ds.size() != cols) ds.assign(cols, 0.0), dz.assign(cols, 0.0);
        for (size_t r = 0; r < rows; ++r)
            for (size_t c = 0; c < cols; ++c) qs[c].backward(x + r * ld + c, dy + r * ld + c, dy + r * ld + c, 1, ds[c], dz[c]);
        return;
    }
    const TrainQuantizer& tq = *q_->act[size_t(p)];
    double ds = 0, dz = 0;
    for (size_t r = 0; r < rows; ++r) tq.backward(x + r * ld, dy + r * ld, dy + r * ld, cols, ds, dz);
    g.act_scale[size_t(p)] += ds, g.act_zero[size_t(p)] += dz;
}

namespace {
inline const float* consumed(const std::vector<float>& pre, const std::vector<float>& q) { return q.empty() ? pre.data() : q.data(); }
inline void sized(std::vector<float>& v, size_t n) { v.resize(n); }  // every user writes all n values
}  // namespace

// ---------------------------------------------------------------------------------------------------
// Forward

void Engine::embed_forward(Acts& a, const float* images, float* x) const {
    const ViTConfig& c = m_.cfg;
    const size_t B = a.B, T = size_t(c.tokens()), D = size_t(c.hidden), Np = size_t(c.num_patches()), P = size_t(c.patch),
                 C = size_t(c.channels), G = size_t(c.grid_w()), pre = size_t(c.prefix_tokens()), PP = C * P * P;
    const size_t Wimg = size_t(c.image_w), HWimg = size_t(c.image_h) * Wimg, in = C * HWimg;
    sized(a.patches, B * Np * PP);
    for (size_t b = 0; b < B; ++b)  // patches[b·Np + p, (ch, i, j)] as ViT::embed lays them out
        for (size_t p = 0; p < Np; ++p) {
            const size_t gy = p / G, gx = p % G;
            float* row = &a.patches[(b * Np + p) * PP];
            for (size_t ch = 0; ch < C; ++ch)
                for (size_t i = 0; i < P; ++i)
                    std::memcpy(row + (ch * P + i) * P, images + b * in + ch * HWimg + (gy * P + i) * Wimg + gx * P, P * sizeof(float));
        }
    a.patchesq.clear();
    if (quantized(0)) {
        a.patchesq.resize(a.patches.size());
        quant_forward(0, a.patches.data(), a.patchesq.data(), B * Np, PP, PP);
    }
    const float* pin = consumed(a.patches, a.patchesq);
    for (size_t b = 0; b < B; ++b) {
        float* xb = x + b * T * D;
        linear_forward(m_.patch_embed, pin + b * Np * PP, Np, PP, xb + pre * D, D);
        std::memcpy(xb, m_.cls_token.data(), D * sizeof(float));
        if (c.dist_token) std::memcpy(xb + D, m_.dist_token.data(), D * sizeof(float));
        for (size_t i = 0; i < T * D; ++i) xb[i] = xb[i] + m_.pos_embed[i];
    }
}

void Engine::block_forward(size_t l, BlockActs& s, const float* x_in, float* x_out, size_t B) const {
    const ViTConfig& c = m_.cfg;
    const Block& blk = m_.blocks[l];
    const int bi = int(l);
    const size_t T = size_t(c.tokens()), D = size_t(c.hidden), H = size_t(c.block_heads(l)), d = size_t(c.head_dim()),
                 A = H * d, F = size_t(c.block_mlp(l)), R = B * T;
    const float scale = 1.0f / std::sqrt(float(d));
    s.x_in.assign(x_in, x_in + R * D);
    x_in = s.x_in.data();  // read the saved copy from here on, so x_out may be x_in
    sized(s.ln1, R * D), sized(s.ln1_mean, R), sized(s.ln1_rstd, R), sized(s.qkv, R * 3 * A), sized(s.probs, B * H * T * T);
    sized(s.ctx, R * A), sized(s.x_mid, R * D), sized(s.ln2, R * D), sized(s.ln2_mean, R), sized(s.ln2_rstd, R);
    sized(s.h, R * F), sized(s.g, R * F);
    auto quant = [&](ViT::BlockPoint bp, const std::vector<float>& pre, std::vector<float>& q, size_t cols) {
        q.clear();
        if (!quantized(m_.point_index(bi, bp))) return;
        q.resize(pre.size());
        quant_forward(m_.point_index(bi, bp), pre.data(), q.data(), pre.size() / cols, cols, cols);
    };

    // --- attention: x_mid = x_in + proj(MHSA(LN1(x_in)))
    k::f32_layernorm_fwd_wasmsimd(R, D, x_in, D, blk.norm1.gamma.data(), blk.norm1.beta.data(), c.ln_eps, s.ln1.data(), D,
                                  s.ln1_mean.data(), s.ln1_rstd.data());
    quant(ViT::kQkvIn, s.ln1, s.ln1q, D);
    linear_forward(blk.qkv, consumed(s.ln1, s.ln1q), R, D, s.qkv.data(), 3 * A);
    s.qkvq.clear();
    if (quantized(m_.point_index(bi, ViT::kQ)) || quantized(m_.point_index(bi, ViT::kK)) ||
        quantized(m_.point_index(bi, ViT::kV))) {
        s.qkvq = s.qkv;
        for (int part = 0; part < 3; ++part)
            quant_forward(m_.point_index(bi, ViT::BlockPoint(ViT::kQ + part)), s.qkv.data() + size_t(part) * A,
                          s.qkvq.data() + size_t(part) * A, R, A, 3 * A);
    }
    const float* qkv = consumed(s.qkv, s.qkvq);
    std::vector<float> packed(k::f32_gemm_packed_floats(T, d));
    for (size_t b = 0; b < B; ++b) {
        const float* qb = qkv + b * T * 3 * A;
        for (size_t h = 0; h < H; ++h) {  // scores = q_h · k_hᵀ · scale, then softmax   [T, T]
            float* sc = &s.probs[(b * H + h) * T * T];
            k::f32_gemm_pack(T, d, qb + A + h * d, 3 * A, 1, packed.data());
            k::f32_gemm_4x8_wasmsimd(T, T, d, qb + h * d, 3 * A, packed.data(), nullptr, sc, T);
            for (size_t i = 0; i < T * T; ++i) sc[i] = sc[i] * scale;
        }
    }
    k::f32_softmax_wasmsimd(B * H * T, T, s.probs.data(), T);
    quant(ViT::kProbs, s.probs, s.probsq, T);
    const float* probs = consumed(s.probs, s.probsq);
    packed.resize(k::f32_gemm_packed_floats(d, T));
    for (size_t b = 0; b < B; ++b) {
        const float* qb = qkv + b * T * 3 * A;
        for (size_t h = 0; h < H; ++h) {  // ctx[:, h] = probs_h · v_h   [T, d]
            k::f32_gemm_pack(d, T, qb + 2 * A + h * d, 1, 3 * A, packed.data());
            k::f32_gemm_4x8_wasmsimd(T, d, T, probs + (b * H + h) * T * T, T, packed.data(), nullptr, &s.ctx[b * T * A + h * d], A);
        }
    }
    quant(ViT::kProjIn, s.ctx, s.ctxq, A);
    linear_forward(blk.proj, consumed(s.ctx, s.ctxq), R, A, s.x_mid.data(), D);
    for (size_t i = 0; i < R * D; ++i) s.x_mid[i] = x_in[i] + s.x_mid[i];

    // --- MLP: x_out = x_mid + fc2(GELU(fc1(LN2(x_mid))))
    k::f32_layernorm_fwd_wasmsimd(R, D, s.x_mid.data(), D, blk.norm2.gamma.data(), blk.norm2.beta.data(), c.ln_eps, s.ln2.data(),
                                  D, s.ln2_mean.data(), s.ln2_rstd.data());
    quant(ViT::kFc1In, s.ln2, s.ln2q, D);
    linear_forward(blk.fc1, consumed(s.ln2, s.ln2q), R, D, s.h.data(), F);
    s.g = s.h;
    if (c.gelu_tanh) k::f32_gelu_tanh_wasmsimd(R * F, s.g.data());
    else k::f32_gelu_wasmsimd(R * F, s.g.data());
    quant(ViT::kFc2In, s.g, s.gq, F);
    linear_forward(blk.fc2, consumed(s.g, s.gq), R, F, x_out, D);
    for (size_t i = 0; i < R * D; ++i) x_out[i] = s.x_mid[i] + x_out[i];
}

void Engine::head_forward(Acts& a, const float* x) const {
    const ViTConfig& c = m_.cfg;
    const size_t B = a.B, T = size_t(c.tokens()), D = size_t(c.hidden), Np = size_t(c.num_patches()),
                 pre = size_t(c.prefix_tokens()), Cn = size_t(c.num_classes), rows = c.dist_head ? 2 : 1;
    sized(a.pooled, B * rows * D), sized(a.pool_mean, B * rows), sized(a.pool_rstd, B * rows);
    if (c.avg_pool) {  // mean of the patch tokens, then fc_norm (ViT::head_logits' order)
        sized(a.avg, B * D);
        for (size_t b = 0; b < B; ++b) {
            float* sum = &a.avg[b * D];
            for (size_t j = 0; j < D; ++j) sum[j] = 0.0f;
            for (size_t t = pre; t < T; ++t)
                for (size_t j = 0; j < D; ++j) sum[j] = sum[j] + x[(b * T + t) * D + j];
            for (size_t j = 0; j < D; ++j) sum[j] = sum[j] / float(Np);
        }
        k::f32_layernorm_fwd_wasmsimd(B, D, a.avg.data(), D, m_.fc_norm.gamma.data(), m_.fc_norm.beta.data(), c.ln_eps,
                                      a.pooled.data(), D, a.pool_mean.data(), a.pool_rstd.data());
    } else {
        for (size_t b = 0; b < B; ++b)  // the class (and distillation) token of each image
            k::f32_layernorm_fwd_wasmsimd(rows, D, x + b * T * D, D, m_.norm.gamma.data(), m_.norm.beta.data(), c.ln_eps,
                                          &a.pooled[b * rows * D], D, &a.pool_mean[b * rows], &a.pool_rstd[b * rows]);
    }
    a.pooledq.clear();
    if (quantized(m_.head_point())) {
        a.pooledq.resize(a.pooled.size());
        quant_forward(m_.head_point(), a.pooled.data(), a.pooledq.data(), B * rows, D, D);
    }
    const float* pin = consumed(a.pooled, a.pooledq);
    sized(a.logits, B * Cn);
    linear_forward(m_.head, pin, B, rows * D, a.logits.data(), Cn);
    if (c.dist_head) {
        std::vector<float> l2(B * Cn);
        linear_forward(m_.head_dist, pin + D, B, rows * D, l2.data(), Cn);
        for (size_t i = 0; i < B * Cn; ++i) a.logits[i] = (a.logits[i] + l2[i]) * 0.5f;
    }
}

void Engine::forward(Acts& a, const float* images, size_t B) const {
    const ViTConfig& c = m_.cfg;
    const size_t R = B * size_t(c.tokens()), D = size_t(c.hidden);
    a.B = B;
    a.blocks.resize(m_.blocks.size());
    sized(a.x_out, R * D);  // the residual stream, updated in place block by block
    embed_forward(a, images, a.x_out.data());
    for (size_t l = 0; l < m_.blocks.size(); ++l) block_forward(l, a.blocks[l], a.x_out.data(), a.x_out.data(), B);
    head_forward(a, a.x_out.data());
}

const float* block_output(const Acts& a, size_t l) {
    return l + 1 < a.blocks.size() ? a.blocks[l + 1].x_in.data() : a.x_out.data();
}

// ---------------------------------------------------------------------------------------------------
// Backward

void Engine::head_backward(Acts& a, const float* x, const float* dlogits, float* dres, Grads& g) const {
    const ViTConfig& c = m_.cfg;
    const size_t B = a.B, T = size_t(c.tokens()), D = size_t(c.hidden), Np = size_t(c.num_patches()),
                 pre = size_t(c.prefix_tokens()), Cn = size_t(c.num_classes), rows = c.dist_head ? 2 : 1;
    const float* pin = consumed(a.pooled, a.pooledq);
    sized(a.dpooled, B * rows * D);
    std::vector<float> dl(dlogits, dlogits + B * Cn);
    if (c.dist_head)
        for (float& v : dl) v = v * 0.5f;  // logits = (head + head_dist)·0.5
    linear_backward(m_.head, dl.data(), B, Cn, pin, rows * D, a.dpooled.data(), rows * D, false, g.p.head);
    if (c.dist_head) linear_backward(m_.head_dist, dl.data(), B, Cn, pin + D, rows * D, a.dpooled.data() + D, rows * D, false, g.p.head_dist);
    quant_backward(m_.head_point(), a.pooled.data(), a.dpooled.data(), B * rows, D, D, g);
    std::memset(dres, 0, B * T * D * sizeof(float));
    if (c.avg_pool) {
        std::vector<float> davg(B * D, 0.0f);
        k::f32_layernorm_bwd_wasmsimd(B, D, a.dpooled.data(), D, a.avg.data(), D, m_.fc_norm.gamma.data(), a.pool_mean.data(),
                                      a.pool_rstd.data(), davg.data(), D, g.p.fc_norm.gamma.data(), g.p.fc_norm.beta.data());
        for (size_t b = 0; b < B; ++b)
            for (size_t t = pre; t < T; ++t)
                for (size_t j = 0; j < D; ++j) dres[(b * T + t) * D + j] = davg[b * D + j] / float(Np);
    } else {
        for (size_t b = 0; b < B; ++b)
            k::f32_layernorm_bwd_wasmsimd(rows, D, &a.dpooled[b * rows * D], D, x + b * T * D, D, m_.norm.gamma.data(),
                                          &a.pool_mean[b * rows], &a.pool_rstd[b * rows], dres + b * T * D, D,
                                          g.p.norm.gamma.data(), g.p.norm.beta.data());
    }
}

void Engine::block_backward(size_t l, BlockActs& s, float* dres, Acts& a, Grads& g, size_t B) const {
    const ViTConfig& c = m_.cfg;
    const Block& blk = m_.blocks[l];
    Block& gb = g.p.blocks[l];
    const int bi = int(l);
    const size_t T = size_t(c.tokens()), D = size_t(c.hidden), H = size_t(c.block_heads(l)), d = size_t(c.head_dim()),
                 A = H * d, F = size_t(c.block_mlp(l)), R = B * T;
    const float scale = 1.0f / std::sqrt(float(d));
    sized(a.dtmp, R * D), sized(a.dbig, R * F), sized(a.dqkv, R * 3 * A), sized(a.dprobs, B * H * T * T);
    auto qb = [&](ViT::BlockPoint bp, const std::vector<float>& pre, float* dy, size_t cols) {
        quant_backward(m_.point_index(bi, bp), pre.data(), dy, pre.size() / cols, cols, cols, g);
    };

    // --- MLP: x_out = x_mid + fc2(gq), gq = Q(GELU(h)), h = fc1(Q(LN2(x_mid)))
    linear_backward(blk.fc2, dres, R, D, consumed(s.g, s.gq), F, a.dbig.data(), F, false, gb.fc2);     // d gq   [R, F]
    qb(ViT::kFc2In, s.g, a.dbig.data(), F);                                                              // d g
    if (c.gelu_tanh) k::f32_gelu_tanh_bwd_wasmsimd(R * F, s.h.data(), a.dbig.data(), a.dbig.data());  // d h
    else k::f32_gelu_bwd_wasmsimd(R * F, s.h.data(), a.dbig.data(), a.dbig.data());
    linear_backward(blk.fc1, a.dbig.data(), R, F, consumed(s.ln2, s.ln2q), D, a.dtmp.data(), D, false, gb.fc1);  // d ln2q
    qb(ViT::kFc1In, s.ln2, a.dtmp.data(), D);                                                            // d ln2
    k::f32_layernorm_bwd_wasmsimd(R, D, a.dtmp.data(), D, s.x_mid.data(), D, blk.norm2.gamma.data(), s.ln2_mean.data(),
                                  s.ln2_rstd.data(), dres, D, gb.norm2.gamma.data(), gb.norm2.beta.data());  // dres: d x_mid

    // --- attention: x_mid = x_in + proj(ctxq), ctx_h = probsq_h · v_h, probs = softmax(scale · q_h·k_hᵀ)
    linear_backward(blk.proj, dres, R, D, consumed(s.ctx, s.ctxq), A, a.dtmp.data(), A, false, gb.proj);  // d ctxq [R, A]
    qb(ViT::kProjIn, s.ctx, a.dtmp.data(), A);                                                             // d ctx
    const float* qkv = consumed(s.qkv, s.qkvq);
    const float* probs = consumed(s.probs, s.probsq);
    std::vector<float>& packed = a.packed;
    packed.resize(k::f32_gemm_packed_floats(T, d));
    for (size_t b = 0; b < B; ++b) {
        const float* qkvb = qkv + b * T * 3 * A;
        for (size_t h = 0; h < H; ++h) {
            const float* dctx = &a.dtmp[b * T * A + h * d];
            // d probsq_h = d ctx_h · v_hᵀ   [T, T]
            k::f32_gemm_pack(T, d, qkvb + 2 * A + h * d, 3 * A, 1, packed.data());
            k::f32_gemm_4x8_wasmsimd(T, T, d, dctx, A, packed.data(), nullptr, &a.dprobs[(b * H + h) * T * T], T);
            // d v_h = probsq_hᵀ · d ctx_h   [T, d]
            k::f32_gemm_tn_4x8_wasmsimd(T, d, T, probs + (b * H + h) * T * T, T, dctx, A, &a.dqkv[b * T * 3 * A + 2 * A + h * d],
                                        3 * A, false);
        }
    }
    qb(ViT::kProbs, s.probs, a.dprobs.data(), T);                                                // d probs
    k::f32_softmax_bwd_wasmsimd(B * H * T, T, s.probs.data(), T, a.dprobs.data(), T, a.dprobs.data(), T);  // d (scaled scores)
    for (float& v : a.dprobs) v = v * scale;                                                    // d (q·kᵀ)
    for (size_t b = 0; b < B; ++b) {
        const float* qkvb = qkv + b * T * 3 * A;
        float* dqkvb = &a.dqkv[b * T * 3 * A];
        for (size_t h = 0; h < H; ++h) {
            const float* ds = &a.dprobs[(b * H + h) * T * T];
            // d q_h = dS · k_h,  d k_h = dSᵀ · q_h   [T, d]
            k::f32_gemm_nn_4x8_wasmsimd(T, d, T, ds, T, qkvb + A + h * d, 3 * A, dqkvb + h * d, 3 * A, false);
            k::f32_gemm_tn_4x8_wasmsimd(T, d, T, ds, T, qkvb + h * d, 3 * A, dqkvb + A + h * d, 3 * A, false);
        }
    }
    for (int part = 0; part < 3; ++part)
        quant_backward(m_.point_index(bi, ViT::BlockPoint(ViT::kQ + part)), s.qkv.data() + size_t(part) * A,
                       a.dqkv.data() + size_t(part) * A, R, A, 3 * A, g);
    linear_backward(blk.qkv, a.dqkv.data(), R, 3 * A, consumed(s.ln1, s.ln1q), D, a.dtmp.data(), D, false, gb.qkv);  // d ln1q
    qb(ViT::kQkvIn, s.ln1, a.dtmp.data(), D);                                                                     // d ln1
    k::f32_layernorm_bwd_wasmsimd(R, D, a.dtmp.data(), D, s.x_in.data(), D, blk.norm1.gamma.data(), s.ln1_mean.data(),
                                  s.ln1_rstd.data(), dres, D, gb.norm1.gamma.data(), gb.norm1.beta.data());  // dres: d x_in
}

void Engine::embed_backward(Acts& a, const float* dres, Grads& g) const {
    const ViTConfig& c = m_.cfg;
    const size_t B = a.B, T = size_t(c.tokens()), D = size_t(c.hidden), Np = size_t(c.num_patches()),
                 pre = size_t(c.prefix_tokens()), PP = size_t(c.channels) * size_t(c.patch) * size_t(c.patch);
    for (size_t b = 0; b < B; ++b) {
        const float* db = dres + b * T * D;
        for (size_t i = 0; i < T * D; ++i) g.p.pos_embed[i] = g.p.pos_embed[i] + db[i];
        for (size_t j = 0; j < D; ++j) g.p.cls_token[j] = g.p.cls_token[j] + db[j];
        if (c.dist_token)
            for (size_t j = 0; j < D; ++j) g.p.dist_token[j] = g.p.dist_token[j] + db[D + j];
    }
    // The patch embedding's rows are the tokens after the prefix, image by image.
    const bool dpatch = quantized(0);  // only the input quantizer's LSQ step needs d patches
    std::vector<float> dp(dpatch ? B * Np * PP : 0);
    const float* pin = consumed(a.patches, a.patchesq);
    for (size_t b = 0; b < B; ++b)
        linear_backward(m_.patch_embed, dres + (b * T + pre) * D, Np, D, pin + b * Np * PP, PP, dpatch ? &dp[b * Np * PP] : nullptr,
                        PP, false, g.p.patch_embed);
    if (dpatch) quant_backward(0, a.patches.data(), dp.data(), B * Np, PP, PP, g);
}

void Engine::backward(Acts& a, const float* dlogits, Grads& g) const {
    const size_t R = a.B * size_t(m_.cfg.tokens()), D = size_t(m_.cfg.hidden);
    sized(a.dres, R * D);
    head_backward(a, a.x_out.data(), dlogits, a.dres.data(), g);
    for (size_t l = m_.blocks.size(); l-- > 0;) {
        if (l < a.dfeat.size() && !a.dfeat[l].empty()) {  // dres is d loss / d block l's output here
            if (a.dfeat[l].size() != R * D)
                throw std::logic_error("training: the feature gradient of block " + std::to_string(l) + " has " +
                                       std::to_string(a.dfeat[l].size()) + " values, expected " + std::to_string(R * D));
            for (size_t i = 0; i < R * D; ++i) a.dres[i] = a.dres[i] + a.dfeat[l][i];
        }
        block_backward(l, a.blocks[l], a.dres.data(), a, g, a.B);
    }
    embed_backward(a, a.dres.data(), g);
}

// ---------------------------------------------------------------------------------------------------
// The data-parallel step

Stepper::Stepper(const Engine& e, size_t micro, int jobs) : e_(e), micro_(micro), jobs_(jobs <= 0 ? default_jobs() : jobs) {
    if (micro == 0) throw std::runtime_error("training: the micro-batch size must be at least 1");
}

double Stepper::step(const float* images, size_t n, const LossFn& loss, Grads& g) {
    if (n == 0) throw std::runtime_error("training: empty batch");
    const ViT& m = e_.model();
    const size_t in = size_t(m.cfg.channels) * size_t(m.cfg.image_h) * size_t(m.cfg.image_w), Cn = size_t(m.cfg.num_classes);
    const size_t chunks = (n + micro_ - 1) / micro_;
    while (grads_.size() < chunks) grads_.emplace_back(m);
    const int workers = int(std::min<size_t>(size_t(jobs_), chunks));
    if (acts_.size() < size_t(workers)) acts_.resize(size_t(workers)), dlogits_.resize(size_t(workers));
    std::vector<double> losses(chunks, 0.0);
    parallel_for(chunks, workers, [&](size_t b, size_t e, int w) {
        Acts& a = acts_[size_t(w)];
        std::vector<float>& dl = dlogits_[size_t(w)];
        for (size_t ch = b; ch < e; ++ch) {
            const size_t first = ch * micro_, count = std::min(micro_, n - first);
            Grads& gc = grads_[ch];
            gc.zero();
            e_.forward(a, images + first * in, count);
            dl.assign(count * Cn, 0.0f);
            losses[ch] = loss(a.logits.data(), first, count, dl.data());
            if (features_) losses[ch] += features_(a, images + first * in, first, count, a.dfeat);
            else a.dfeat.clear();
            e_.backward(a, dl.data(), gc);
        }
    });
    g.zero();
    double total = 0;
    for (size_t ch = 0; ch < chunks; ++ch) g.add(grads_[ch]), total += losses[ch];
    return total;
}

size_t Stepper::peak_activation_floats() const {
    size_t n = 0;
    auto add = [&](const std::vector<float>& v) { n += v.capacity(); };
    for (const Acts& a : acts_) {
        for (const auto* v : {&a.patches, &a.patchesq, &a.x_out, &a.avg, &a.pooled, &a.pool_mean, &a.pool_rstd, &a.pooledq, &a.logits,
                              &a.dres, &a.dtmp, &a.dbig, &a.dqkv, &a.dprobs, &a.dpooled, &a.dlin, &a.packed})
            add(*v);
        for (const BlockActs& s : a.blocks)
            for (const auto* v : {&s.x_in, &s.ln1, &s.ln1_mean, &s.ln1_rstd, &s.ln1q, &s.qkv, &s.qkvq, &s.probs, &s.probsq, &s.ctx,
                                  &s.ctxq, &s.x_mid, &s.ln2, &s.ln2_mean, &s.ln2_rstd, &s.ln2q, &s.h, &s.g, &s.gq})
                add(*v);
    }
    return n;
}

}  // namespace bitlens::train
