#include "sos.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "optim.h"
#include "parallel.h"
#include "qat.h"
#include "rng.h"
#include "vit_train.h"

namespace bitlens::train {

namespace {

constexpr size_t kChannelRows = 2048;  // tokens sampled per post-LN point for its channel-wise fits

// Every value of a strided subset of rows of the wanted points, per channel, as a function of the set of
// images, not their order: each image (one on_activation call per point) keeps its own rows 0, s, 2s, …,
// s = ⌈rows / ⌊kChannelRows / images⌋⌉ — the same count from every image, about kChannelRows together — and
// finish() sorts each channel's values (sort_values), so the fits see one sequence for any order.
struct ChannelSampler : ActivationHook {
    std::vector<char> want;
    std::vector<std::vector<std::vector<float>>> vals;  // [point][channel]
    size_t quota;                                       // rows kept per image and point
    ChannelSampler(size_t points, size_t images)
        : want(points, 0), vals(points), quota(std::max<size_t>(1, kChannelRows / std::max<size_t>(1, images))) {}
    void on_activation(int p, float* x, size_t rows, size_t cols, size_t ld) override {
        const size_t i = size_t(p);
        if (!want[i]) return;
        if (vals[i].empty()) vals[i].resize(cols);
        const size_t stride = std::max<size_t>(1, (rows + quota - 1) / quota);
        for (size_t r = 0; r < rows; r += stride)
            for (size_t c = 0; c < cols; ++c) vals[i][c].push_back(x[r * ld + c]);
    }
    void finish() {
        for (auto& point : vals)
            for (std::vector<float>& channel : point) sort_values(channel);
    }
};

bool post_ln(const ActPoint& p) { return p.kind == PointKind::PostLN; }

// Top-1 of the engine's forward (quantization as its state says, channel-wise included) on `d`, and its
// logits when asked. Chunks of 16 images; the same bits for any jobs.
EvalResult evaluate_engine(const Engine& e, const PreparedData& d, int jobs, std::vector<float>* logits = nullptr) {
    const ViT& m = e.model();
    // Engine::forward keeps every block's activations for a backward: chunks of up to 16 images, fewer
    // when those would pass ~64 MB per thread (DeiT-tiny keeps ~55 MB per image).
    const ViTConfig& c = m.cfg;
    const double T = c.tokens(), D = c.hidden, F = c.mlp_dim, H = c.heads;
    const double per_image = double(m.blocks.size()) * (12 * T * D + 2 * H * T * T + 3 * T * F) * sizeof(float);
    const size_t chunk = size_t(std::clamp(64e6 / per_image, 1.0, 16.0)), C = size_t(c.num_classes), chunks = (d.n + chunk - 1) / chunk;
    std::vector<int> pred(d.n);
    if (logits) logits->assign(d.n * C, 0.0f);
    const int workers = int(std::max<size_t>(1, std::min<size_t>(size_t(jobs <= 0 ? default_jobs() : jobs), chunks)));
    std::vector<Acts> acts(static_cast<size_t>(workers));
    parallel_for(chunks, workers, [&](size_t b, size_t en, int w) {
        for (size_t ch = b; ch < en; ++ch) {
            const size_t first = ch * chunk, count = std::min(chunk, d.n - first);
            Acts& a = acts[size_t(w)];
            e.forward(a, &d.inputs[first * d.input_size], count);
            for (size_t i = 0; i < count; ++i) {
                const float* l = &a.logits[i * C];
                pred[first + i] = int(std::max_element(l, l + C) - l);
                if (logits) std::copy_n(l, C, &(*logits)[(first + i) * C]);
            }
        }
    });
    return score(pred, d.labels, m.cfg.labels);
}

// Block l's gradients only (the rest of a Grads stays zero in block reconstruction).
void zero_block(Grads& g, size_t l, const std::vector<int>& points) {
    Block& b = g.p.blocks[l];
    for (LayerNorm* n : {&b.norm1, &b.norm2}) std::fill(n->gamma.begin(), n->gamma.end(), 0.0f), std::fill(n->beta.begin(), n->beta.end(), 0.0f);
    for (Linear* n : {&b.qkv, &b.proj, &b.fc1, &b.fc2}) std::fill(n->weight.begin(), n->weight.end(), 0.0f), std::fill(n->bias.begin(), n->bias.end(), 0.0f);
    for (int p : points) g.zero_point(size_t(p));
}

void add_block(Grads& g, const Grads& o, size_t l, const std::vector<int>& points) {
    Block& b = g.p.blocks[l];
    const Block& ob = o.p.blocks[l];
    auto add = [](std::vector<float>& a, const std::vector<float>& c) {
        for (size_t i = 0; i < a.size(); ++i) a[i] = a[i] + c[i];
    };
    add(b.norm1.gamma, ob.norm1.gamma), add(b.norm1.beta, ob.norm1.beta), add(b.norm2.gamma, ob.norm2.gamma), add(b.norm2.beta, ob.norm2.beta);
    for (auto [x, y] : {std::pair{&b.qkv, &ob.qkv}, {&b.proj, &ob.proj}, {&b.fc1, &ob.fc1}, {&b.fc2, &ob.fc2}})
        add(x->weight, y->weight), add(x->bias, y->bias);
    for (int p : points) g.add_point(o, size_t(p));
}

// One Adam-trained quantizer parameter: a step (lr in units of its initial value) or a zero point (in codes).
struct QParam {
    TrainQuantizer* tq;
    bool zero;
    const double* raw;  // its gradient sum in the step's Grads
    float value, ref, grad = 0;
    AdamWState st;
};

}  // namespace

struct SosRun::State {
    QuantConfig cfg;
    SosOptions o;
    const PreparedData* eval = nullptr;
    PreparedData cal;
    size_t N = 0, T = 0, D = 0, L = 0, rowlen = 0;  // rowlen: floats per image in the residual stream
    ViT fpm, m;
    std::unique_ptr<Engine> efp, e;
    QatState st;
    std::vector<int> wbits;
    std::vector<float> xq, xfp, yfp;  // [N, T, D]: quantized chain's input to the block, FP32 chain's, FP32 target
    int stage = 1;                    // 1, 3; 4 when done
    size_t l = 0, iter = 0, iters = 0, done_iters = 0, total = 0;
    bool open = false;                // block l's reconstruction has begun
    std::vector<int> points;          // block l's activation points
    // block-local optimisation
    std::vector<QParam> qparams;
    struct WParam {                   // a Linear's latent weight row or its bias, and the row's weight-quantizer step
        float* p;
        float* g;
        size_t n;
        float ref;
        AdamWState st;
    };
    std::vector<WParam> wparams;
    struct WQ {                       // the block's weight quantizers with their steps' gradients
        size_t linear;
        std::vector<double> ds, dz;
    };
    std::vector<WQ> wq;
    struct WStep {
        TrainQuantizer* tq;
        size_t linear, row;
        float value, ref, grad = 0;
        AdamWState st;
    };
    std::vector<WStep> wsteps;
    AdamW opt;
    std::vector<Grads> grads;         // per micro-batch
    std::unique_ptr<Grads> gsum;
    std::vector<Acts> acts;           // per worker
    std::vector<float> xb, tb;        // the iteration's inputs and targets
    double mse_start = 0, block_t0 = 0, last_loss = 0;
    std::vector<SosStage> stages;
    std::vector<BlockRecon> blocks;
    QuantizedViT result;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();

    double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
    int workers(size_t chunks) const {
        return int(std::max<size_t>(1, std::min<size_t>(size_t(o.jobs <= 0 ? default_jobs() : o.jobs), chunks)));
    }
    void embed_all(const Engine& en, std::vector<float>& x);
    double run_block(const Engine& en, const std::vector<float>& in, std::vector<float>* out, const std::vector<float>* target);
    // Block l of `en` on `count` images from `in` into y, in worker wk's activations (kept for a backward).
    Acts& forward_chunk(const Engine& en, int wk, const float* in, std::vector<float>& y, size_t count) {
        Acts& a = acts[size_t(wk)];
        if (a.blocks.empty()) a.blocks.resize(1);
        y.resize(count * rowlen);
        en.block_forward(l, a.blocks[0], in, y.data(), count);
        return a;
    }
    void begin_block();
    void iterate();
    void end_block();
    void end_stage();
};

void SosRun::State::embed_all(const Engine& en, std::vector<float>& x) {
    x.resize(N * rowlen);
    const size_t chunks = (N + o.micro - 1) / o.micro;
    const int w = workers(chunks);
    if (acts.size() < size_t(w)) acts.resize(size_t(w));
    parallel_for(chunks, w, [&](size_t b, size_t en_, int wk) {
        for (size_t ch = b; ch < en_; ++ch) {
            const size_t first = ch * o.micro, count = std::min(o.micro, N - first);
            Acts& a = acts[size_t(wk)];
            a.B = count;
            en.embed_forward(a, &cal.inputs[first * cal.input_size], &x[first * rowlen]);
        }
    });
}

// Block l of `en` on every calibration image: out (may be null) gets its outputs; returns the mean squared
// error against `target` (0 without one), summed per micro-batch then in order.
double SosRun::State::run_block(const Engine& en, const std::vector<float>& in, std::vector<float>* out,
                                const std::vector<float>* target) {
    const size_t chunks = (N + o.micro - 1) / o.micro;
    const int w = workers(chunks);
    if (acts.size() < size_t(w)) acts.resize(size_t(w));
    if (out) out->resize(N * rowlen);
    std::vector<double> sse(chunks, 0.0);
    parallel_for(chunks, w, [&](size_t b, size_t en_, int wk) {
        std::vector<float> y;
        for (size_t ch = b; ch < en_; ++ch) {
            const size_t first = ch * o.micro, count = std::min(o.micro, N - first);
            forward_chunk(en, wk, &in[first * rowlen], y, count);
            if (target)
                for (size_t i = 0; i < count * rowlen; ++i) {
                    const double d = double(y[i]) - double((*target)[first * rowlen + i]);
                    sse[ch] += d * d;
                }
            if (out) std::copy(y.begin(), y.end(), out->begin() + long(first * rowlen));
        }
    });
    double s = 0;
    for (double v : sse) s += v;
    return s / double(N * rowlen);
}

void SosRun::State::begin_block() {
    const double t = seconds();
    // The FP32 target of this block on the FP32 chain.
    run_block(*efp, xfp, &yfp, nullptr);
    mse_start = run_block(*e, xq, nullptr, &yfp);
    block_t0 = t;
    points.clear();
    for (int bp = 0; bp < ViT::kPointsPerBlock; ++bp) points.push_back(m.point_index(int(l), ViT::BlockPoint(bp)));

    // What this block learns: its activation quantizers' steps and zero points (uniform ones) ...
    qparams.clear(), wparams.clear(), wq.clear(), wsteps.clear();
    for (int p : points) {
        const size_t i = size_t(p);
        if (!st.act_channel.empty() && !st.act_channel[i].empty()) {
            gsum->channel_scale[i].assign(st.act_channel[i].size(), 0.0), gsum->channel_zero[i].assign(st.act_channel[i].size(), 0.0);
            for (size_t c = 0; c < st.act_channel[i].size(); ++c) {
                TrainQuantizer& t = st.act_channel[i][c];
                qparams.push_back({&t, false, &gsum->channel_scale[i][c], t.q.scale, t.q.scale, 0, {}});
                qparams.push_back({&t, true, &gsum->channel_zero[i][c], t.zero_f, 1.0f, 0, {}});
            }
        } else if (st.act[i] && st.act[i]->q.type == QType::Uniform) {
            TrainQuantizer& t = *st.act[i];
            qparams.push_back({&t, false, &gsum->act_scale[i], t.q.scale, t.q.scale, 0, {}});
            if (!t.q.symmetric) qparams.push_back({&t, true, &gsum->act_zero[i], t.zero_f, 1.0f, 0, {}});
        }
    }
    // ... and in stage 3 its Linears' latent weights, biases and weight steps.
    if (stage == 3) {
        Block& b = m.blocks[l];
        Block& gb = gsum->p.blocks[l];
        const std::vector<Linear*> ls = m.linears();
        for (auto [lin, gl] : {std::pair{&b.qkv, &gb.qkv}, {&b.proj, &gb.proj}, {&b.fc1, &gb.fc1}, {&b.fc2, &gb.fc2}}) {
            const size_t li = size_t(std::find(ls.begin(), ls.end(), lin) - ls.begin());
            std::vector<TrainQuantizer>& qs = st.weight[li];
            const size_t K = size_t(lin->in), rows = size_t(lin->out);
            wq.push_back({li, std::vector<double>(qs.size(), 0.0), std::vector<double>(qs.size(), 0.0)});
            for (size_t r = 0; r < rows; ++r) {
                TrainQuantizer& t = qs[qs.size() == 1 ? 0 : r];
                // a non-uniform (pow2) weight quantizer: the unit is its smallest level's spacing near 0
                float ref = t.q.scale;
                if (t.q.type != QType::Uniform) {
                    ref = 0;
                    for (float v : t.q.table)
                        if (v != 0 && (ref == 0 || std::fabs(v) < ref)) ref = std::fabs(v);
                    if (ref == 0) ref = 1e-3f;
                }
                wparams.push_back({&lin->weight[r * K], &gl->weight[r * K], K, ref, {}});
                if (!lin->bias.empty()) wparams.push_back({&lin->bias[r], &gl->bias[r], 1, ref, {}});
            }
            for (size_t r = 0; r < qs.size(); ++r)
                if (qs[r].learn && qs[r].q.type == QType::Uniform) wsteps.push_back({&qs[r], li, r, qs[r].q.scale, qs[r].q.scale, 0, {}});
        }
    }
    e->set_linear_grads(stage == 3);  // stage 1 trains no weights: no dW GEMMs
    iter = 0;
    open = true;
}

void SosRun::State::iterate() {
    const size_t batch = size_t(cfg.recon_batch), chunks = (batch + o.micro - 1) / o.micro;
    // This iteration's images: a seeded draw of `batch` of the N (stage, block and iteration in the seed).
    const uint64_t stream = derive_seed(derive_seed(cfg.seed, 0x736f73ull /* "sos" */), uint64_t(stage) * 1000003ull + l);
    const std::vector<size_t> pick = draw_calibration(N, batch, derive_seed(stream, iter));
    xb.resize(batch * rowlen), tb.resize(batch * rowlen);
    for (size_t i = 0; i < batch; ++i) {
        std::copy_n(&xq[pick[i] * rowlen], rowlen, &xb[i * rowlen]);
        std::copy_n(&yfp[pick[i] * rowlen], rowlen, &tb[i * rowlen]);
    }
    while (grads.size() < chunks) grads.emplace_back(m);
    const int w = workers(chunks);
    if (acts.size() < size_t(w)) acts.resize(size_t(w));
    std::vector<double> sse(chunks, 0.0);
    const double norm = 2.0 / double(batch * rowlen);  // d mean((y − t)²) / d y
    parallel_for(chunks, w, [&](size_t b, size_t en, int wk) {
        std::vector<float> y;
        for (size_t ch = b; ch < en; ++ch) {
            const size_t first = ch * o.micro, count = std::min(o.micro, batch - first);
            Grads& g = grads[ch];
            zero_block(g, l, points);
            Acts& a = forward_chunk(*e, wk, &xb[first * rowlen], y, count);
            for (size_t i = 0; i < count * rowlen; ++i) {
                const double d = double(y[i]) - double(tb[first * rowlen + i]);
                sse[ch] += d * d;
                y[i] = float(norm * d);
            }
            e->block_backward(l, a.blocks[0], y.data(), a, g, count);
        }
    });
    zero_block(*gsum, l, points);
    double s = 0;
    for (size_t ch = 0; ch < chunks; ++ch) add_block(*gsum, grads[ch], l, points), s += sse[ch];
    last_loss = s / double(batch * rowlen);

    // One rate per stage (stage 3's smaller: 32 images, and every quantizer and weight moving at once), a cosine to 0.
    const float lr = iters ? lr_at(long(iter), long(iters), 0, stage == 1 ? o.lr1 : o.lr3) : 0.0f;
    // Weights: straight through the quantizer to the latent ones, and each row's step gradient.
    for (WQ& q : wq) {
        Linear& lin = *m.linears()[q.linear];
        Linear& gl = *gsum->p.linears()[q.linear];
        std::fill(q.ds.begin(), q.ds.end(), 0.0), std::fill(q.dz.begin(), q.dz.end(), 0.0);
        weight_quant_backward(st.weight[q.linear], lin.weight.data(), gl.weight.data(), gl.weight.data(), size_t(lin.out),
                              size_t(lin.in), q.ds, q.dz);
        for (WStep& ws : wsteps)
            if (ws.linear == q.linear) ws.grad = float(q.ds[ws.row]);
    }
    for (WParam& p : wparams) adamw_step(opt, lr * p.ref, p.p, p.g, p.n, p.st, false);
    for (WStep& ws : wsteps) {
        adamw_step(opt, lr * ws.ref, &ws.value, &ws.grad, 1, ws.st, false);
        ws.tq->set_scale(ws.value), ws.value = ws.tq->q.scale;
    }
    for (QParam& q : qparams) {
        q.grad = float(*q.raw);
        adamw_step(opt, lr * q.ref, &q.value, &q.grad, 1, q.st, false);
        if (q.zero) q.tq->set_zero(q.value);
        else q.tq->set_scale(q.value), q.value = q.tq->q.scale;
    }
    for (const WQ& q : wq) e->refresh(q.linear);  // the block's Linears: weights re-quantized and re-packed
    ++iter, ++done_iters;
}

void SosRun::State::end_block() {
    // The reconstructed block's outputs are the next block's inputs; the FP32 chain moves on too.
    std::vector<float> next;
    const double after = run_block(*e, xq, &next, &yfp);
    xq.swap(next);
    xfp.swap(yfp);
    blocks.push_back({stage, int(l), mse_start, after, seconds() - block_t0});
    open = false;
    if (++l == L) end_stage();
}

void SosRun::State::end_stage() {
    if (stage == 1) {
        SosStage s1;
        s1.stage = 1;
        std::vector<float> before;
        if (eval) s1.eval = evaluate_engine(*e, *eval, o.jobs);
        evaluate_engine(*e, cal, o.jobs, &before);
        s1.seconds = seconds();
        stages.push_back(s1);

        // Stage 2: every channel-wise post-LN quantizer folded into its LayerNorm and Linear.
        for (size_t b = 0; b < L; ++b) {
            Block& blk = m.blocks[b];
            for (auto [bp, ln, lin] : {std::tuple{ViT::kQkvIn, &blk.norm1, &blk.qkv}, {ViT::kFc1In, &blk.norm2, &blk.fc1}}) {
                const size_t p = size_t(m.point_index(int(b), bp));
                std::vector<TrainQuantizer>& ch = st.act_channel[p];
                if (ch.empty()) continue;
                const size_t Dc = ch.size();
                std::vector<double> s(Dc), z(Dc);
                double smean = 0, zmean = 0;
                for (size_t c = 0; c < Dc; ++c) s[c] = double(ch[c].q.scale), z[c] = double(ch[c].q.zero), smean += s[c], zmean += z[c];
                Quantizer q = ch[0].q;  // asymmetric uniform, the same bits and code range
                q.scale = float(smean / double(Dc));
                q.zero = int32_t(std::nearbyint(zmean / double(Dc)));
                fold_channel_scales(*ln, *lin, s, z, double(q.scale), double(q.zero));
                st.act[p] = std::make_unique<TrainQuantizer>(q);
                ch.clear();
            }
        }
        e->refresh();
        SosStage s2;
        s2.stage = 2;
        const QuantizedViT q2 = snapshot(cfg, std::vector<int>(wbits.size(), 32), *e, st);
        {
            FakeQuantHook hook(q2);
            Workspace ws;
            const size_t C = size_t(m.cfg.num_classes);
            std::vector<float> lg(C);
            for (size_t i = 0; i < N; ++i) {
                q2.model.forward(&cal.inputs[i * cal.input_size], lg.data(), ws, &hook);
                for (size_t c = 0; c < C; ++c) s2.max_logit_change = std::max(s2.max_logit_change, double(std::fabs(lg[c] - before[i * C + c])));
            }
        }
        if (eval) s2.eval = evaluate_quantized(q2, *eval, o.jobs);
        s2.seconds = seconds();
        stages.push_back(s2);

        // Stage 3: weights quantized as PTQ fits them (on the reparameterised weights), then reconstructed.
        const std::vector<Linear*> ls = m.linears();
        for (size_t i = 0; i < ls.size(); ++i) {
            wbits[i] = layer_bits(*ls[i], cfg);
            Linear tmp = *ls[i];
            st.weight[i].clear();
            for (const Quantizer& q : quantize_weights(tmp, wbits[i], cfg)) st.weight[i].emplace_back(q);
        }
        e->refresh();
        // The fold may have given a Linear a bias it lacked: gradient buffers of the new shape.
        grads.clear();
        gsum = std::make_unique<Grads>(m);
        stage = 3, l = 0;
        embed_all(*e, xq);
        embed_all(*efp, xfp);
        return;
    }
    result = snapshot(cfg, wbits, *e, st);
    SosStage s3;
    s3.stage = 3;
    if (eval) s3.eval = evaluate_quantized(result, *eval, o.jobs);
    s3.seconds = seconds();
    stages.push_back(s3);
    stage = 4;
}

SosRun::SosRun(const ViT& fp, const PreparedData& calib, const QuantConfig& cfg, const SosOptions& o, const PreparedData* eval)
    : s_(std::make_unique<State>()) {
    State& S = *s_;
    cfg.validate();
    if (cfg.method != Method::Sos) throw std::logic_error("SosRun: the configuration's method is not sos");
    if (o.micro < 1) throw std::runtime_error("sos: the micro-batch must be at least 1");
    if (!(o.lr1 >= 0) || !(o.lr3 >= 0) || !std::isfinite(o.lr1) || !std::isfinite(o.lr3))
        throw std::runtime_error("sos: learning rates must be finite and ≥ 0");
    if (calib.n == 0) throw std::runtime_error("calibration set is empty");
    const size_t in = size_t(fp.cfg.channels) * size_t(fp.cfg.image_h) * size_t(fp.cfg.image_w);
    if (calib.input_size != in)
        throw std::runtime_error("calibration images have " + std::to_string(calib.input_size) + " values each, the model expects " +
                                 std::to_string(fp.cfg.channels) + "x" + std::to_string(fp.cfg.image_h) + "x" +
                                 std::to_string(fp.cfg.image_w));
    if (size_t(cfg.calib_size) > calib.n)
        throw std::runtime_error("calibration size " + std::to_string(cfg.calib_size) + " is larger than the calibration pool (" +
                                 std::to_string(calib.n) + " images)");
    if (eval && eval->n && eval->input_size != in) throw std::runtime_error("evaluation images do not match the model's input size");
    S.cfg = cfg, S.o = o, S.eval = eval && eval->n ? eval : nullptr;
    S.opt.eps = 1e-12f;
    S.cal = subset(calib, draw_calibration(calib.n, size_t(cfg.calib_size), cfg.seed));
    S.N = S.cal.n, S.T = size_t(fp.cfg.tokens()), S.D = size_t(fp.cfg.hidden), S.L = fp.blocks.size(), S.rowlen = S.T * S.D;
    S.iters = size_t(cfg.recon_iters), S.total = 2 * S.L * S.iters;

    // Stage 0, for reference: what PTQ gives with the same draw.
    if (S.eval) {
        QuantConfig pc = cfg;
        pc.method = Method::Ptq;
        SosStage s0;
        s0.eval = evaluate_quantized(quantize(fp, calib, pc, o.jobs), *S.eval, o.jobs);
        s0.seconds = S.seconds();
        S.stages.push_back(s0);
    }

    // Stage 1's quantizers, fitted on the FP32 model over the calibration images: per tensor as PTQ does,
    // the post-LN points per channel (asymmetric, the activation range method).
    S.fpm = fp, S.m = fp;
    std::vector<size_t> all(S.N);
    for (size_t i = 0; i < S.N; ++i) all[i] = i;
    const PointSamples ps = observe_points(S.fpm, S.cal, all);
    ChannelSampler cs(S.m.points.size(), S.N);
    for (size_t p = 0; p < S.m.points.size(); ++p) cs.want[p] = post_ln(S.m.points[p]);
    {
        Workspace ws;
        std::vector<float> lg(size_t(fp.cfg.num_classes));
        for (size_t i = 0; i < S.N; ++i) S.fpm.forward(&S.cal.inputs[i * S.cal.input_size], lg.data(), ws, &cs);
        cs.finish();
    }
    const size_t P = S.m.points.size(), nl = S.m.linears().size();
    S.st.weight.resize(nl);
    S.wbits.assign(nl, 32);
    S.st.act.resize(P);
    S.st.act_channel.resize(P);
    std::vector<Quantizer> fitted(P);
    std::vector<std::vector<Quantizer>> fitted_ch(P);
    parallel_for(P, o.jobs, [&](size_t b, size_t en, int) {
        for (size_t p = b; p < en; ++p) {
            const ActPoint& pt = S.m.points[p];
            if (!point_quantized(pt)) continue;
            const int bits = point_bits(pt, cfg);
            if (post_ln(pt))
                for (const std::vector<float>& v : cs.vals[p]) fitted_ch[p].push_back(fit_uniform(v, bits, false, cfg.a_range));
            else
                fitted[p] = fit_point(pt, ps.samples[p], bits, cfg);
        }
    });
    for (size_t p = 0; p < P; ++p) {
        if (!point_quantized(S.m.points[p])) continue;
        if (post_ln(S.m.points[p]))
            for (const Quantizer& q : fitted_ch[p]) S.st.act_channel[p].emplace_back(q);
        else
            S.st.act[p] = std::make_unique<TrainQuantizer>(fitted[p]);
    }
    S.efp = std::make_unique<Engine>(S.fpm);
    S.e = std::make_unique<Engine>(S.m, &S.st);
    S.gsum = std::make_unique<Grads>(S.m);
    S.embed_all(*S.e, S.xq);
    S.embed_all(*S.efp, S.xfp);
}

SosRun::~SosRun() = default;
bool SosRun::done() const { return s_->stage == 4; }
size_t SosRun::total() const { return s_->total; }
const std::vector<SosStage>& SosRun::stages() const { return s_->stages; }
const std::vector<BlockRecon>& SosRun::blocks() const { return s_->blocks; }
QuantizedViT SosRun::result() const {
    if (!done()) throw std::logic_error("SosRun::result before the run is done");
    return s_->result;
}

SosProgress SosRun::advance(size_t max_iters) {
    State& S = *s_;
    SosProgress pr;
    const size_t nstages = S.stages.size(), nblocks = S.blocks.size();
    for (size_t k = 0; S.stage != 4;) {
        if (!S.open) S.begin_block();
        if (S.iter < S.iters && k < max_iters) S.iterate(), ++k;
        if (S.iter == S.iters) {
            S.end_block();
            break;
        }
        if (k == max_iters) break;
    }
    pr.stage = S.stage == 4 ? 3 : S.stage;
    pr.block = S.stage == 4 ? S.L : S.l, pr.blocks = S.L;
    pr.iter = S.iter, pr.iters = S.iters, pr.done = S.done_iters, pr.total = S.total;
    pr.loss = S.last_loss, pr.seconds = S.seconds();
    if (S.blocks.size() > nblocks) {  // report the block just finished, not the next one (not begun)
        pr.block_done = &S.blocks.back();
        pr.stage = pr.block_done->stage, pr.block = size_t(pr.block_done->block), pr.iter = S.iters;
    }
    if (S.stages.size() > nstages) pr.finished = &S.stages.back();
    return pr;
}

SosResult sos(const ViT& fp, const PreparedData& calib, const QuantConfig& cfg, const SosOptions& o, const PreparedData* eval,
              const std::function<bool(const SosProgress&)>& progress) {
    SosRun run(fp, calib, cfg, o, eval);
    while (!run.done()) {
        const SosProgress p = run.advance(1);
        if (progress && !progress(p)) throw std::runtime_error("cancelled");
    }
    return {run.result(), run.stages(), run.blocks()};
}

QuantizedViT quantize_method(const ViT& fp, const PreparedData& calib, const QuantConfig& cfg, int jobs) {
    if (cfg.method == Method::Ptq) return quantize(fp, calib, cfg, jobs);
    SosOptions o;
    o.jobs = jobs;
    return sos(fp, calib, cfg, o).q;
}

nlohmann::json sos_json(const std::vector<SosStage>& stages, const std::vector<BlockRecon>& blocks) {
    nlohmann::json j;
    j["stages"] = nlohmann::json::array();
    for (const SosStage& s : stages) {
        nlohmann::json e = {{"stage", s.stage}, {"seconds", s.seconds}};
        if (s.stage == 2) e["max_logit_change"] = s.max_logit_change;
        if (s.eval.n) e["eval"] = eval_json(s.eval);
        j["stages"].push_back(e);
    }
    j["blocks"] = nlohmann::json::array();
    for (const BlockRecon& b : blocks)
        j["blocks"].push_back({{"stage", b.stage}, {"block", b.block}, {"mse_before", b.mse_before}, {"mse_after", b.mse_after},
                               {"seconds", b.seconds}});
    return j;
}

}  // namespace bitlens::train
