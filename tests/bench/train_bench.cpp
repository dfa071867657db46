// The training engine's benchmark (src/train/): one training step timed, its memory, and where a step's
// time goes. Built twice by `node tests/bench/bench.mjs` (training section), natively with g++ and with
// em++ for Node (the shipped module's code generation: -O2 -msimd128 -fexceptions -ffp-contract=off,
// its memory settings, plus -sNODERAWFS to read the model); the WASM build runs as
// `node --no-experimental-fetch build/bench/bitlens-train-bench-wasm.cjs ...`. Prints one JSON object on
// stdout (progress on stderr).
//
//   bitlens-train-bench MODEL_DIR MODE [--batch N] [--micro 16] [--jobs 1] [--warmup N] [--steps N]
//                       [--data models/data] [--bits w4a4] [--fp32] [--seed 0]
//
// Modes:
//   step    FP32 training step, what tests/bench/torch_train_step.py times for PyTorch: Stepper::step
//           (forward, cross-entropy on the labels, backward over micro-batches of --micro images on
//           --jobs threads, gradients summed), AdamW (lr 1e-3, weight decay 0.05 on weight matrices, as
//           the peer) over every parameter, and Engine::refresh (the new weights re-packed for the GEMM).
//           The same batch every step, as the peer. Loss: cross-entropy of the model's output; for a
//           distilled DeiT that is the inference output, the mean of both heads (the peer averages the
//           two heads' cross-entropies instead: the same work, a different function).
//   qat     QAT at --bits (w4a4): QatRun (QatOptions defaults: distillation from the FP32 model's logits,
//           AdamW lr 1e-4, clip 1.0, batch --batch, micro --micro, 10% held out) on the first images of
//           the Fashion-MNIST training set; times QatRun::advance(1) = one step: the batch gathered, the
//           forward with fake-quantized weights and activations, the loss (KL to the teacher's logits,
//           precomputed in the constructor), the backward with STE/LSQ, the weight quantizers' LSQ
//           gradients, global-norm clipping, AdamW on weights and quantizer steps/zero points, refresh
//           (weights fake-quantized and re-packed). No epoch ends within the timed steps (so no
//           evaluation). The constructor (split, PTQ, teacher logits, epoch-0 evaluation) is timed apart.
//   block   one block's training step, as block reconstruction runs it: Engine::embed_forward of --batch
//           images (default 32), block_forward(0) and block_backward(0) (with --bits quantizers from a
//           quick min/max PTQ; --fp32: none). For the memory it takes.
//   sos     a whole SOS block reconstruction (see run_sos): --bits (bench.mjs: w3a3), --steps = iterations
//           per block and stage (100), --batch = calibration images (32), --jobs threads.
//   pieces  one micro-batch (--batch, default 16) through the Engine's pieces, each timed: embed, every
//           block, head, forward and backward; the GEMMs of block 0's Linears at the micro-batch's rows
//           (forward, dX = dY·W, dW = dYᵀ·X) and the bias-gradient loop; the optimizer and refresh.
//           --bits adds quantizers (PTQ min/max), as QAT sees them.
//
// Inputs: the model's preprocessing of Fashion-MNIST training images (--data: a folder with
// fmnist-train-5k-images-idx3-ubyte.gz and its labels) when the model takes 1×28×28 images, else seeded
// N(0, 1) images and random labels (as the PyTorch peer).
//
// Memory (in the JSON's "memory"): in WASM the linear memory's size at the end
// (__builtin_wasm_memory_size(0)·64 KiB: it only grows, so this is the peak; it grows in steps of up to
// 20%) and dlmalloc's peak footprint (malloc_max_footprint: bytes ever obtained from sbrk); natively
// the peak resident set (VmHWM).
//
// For perf (native):  perf record -g build/bench/bitlens-train-bench models/vit-fmnist-hf step --steps 200
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataset.h"
#include "eval.h"
#include "kernels.h"
#include "loss.h"
#include "model.h"
#include "optim.h"
#include "ptq.h"
#include "qat.h"
#include "sos.h"
#include "vit_train.h"

#ifdef __EMSCRIPTEN__
extern "C" size_t malloc_max_footprint(void);
#endif

using namespace bitlens;
using namespace bitlens::train;
namespace k = bitlens::kernels;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double now_ms() { return std::chrono::duration<double, std::milli>(Clock::now().time_since_epoch()).count(); }

json summary(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    if (v.empty()) return nullptr;
    const size_t n = v.size();
    const double med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    double mean = 0;
    for (double x : v) mean += x;
    auto r = [](double x) { return std::round(x * 1000) / 1000; };
    return {{"median_ms", r(med)}, {"min_ms", r(v.front())}, {"mean_ms", r(mean / double(n))}, {"max_ms", r(v.back())}, {"n", n}};
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : (v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]));
}

// Peak memory so far: WASM linear memory (growth only) and dlmalloc's peak footprint; natively VmHWM/VmRSS.
json memory() {
    json m;
#ifdef __EMSCRIPTEN__
    m["wasm_memory_bytes"] = size_t(__builtin_wasm_memory_size(0)) * size_t(65536);
    m["malloc_max_footprint"] = malloc_max_footprint();
#else
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("VmHWM:", 0) == 0) m["peak_rss_bytes"] = std::stoull(line.substr(6)) * 1024;
        if (line.rfind("VmRSS:", 0) == 0) m["rss_bytes"] = std::stoull(line.substr(6)) * 1024;
    }
#endif
    return m;
}

std::string slurp(const std::string& path, bool required) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        if (required) throw std::runtime_error("cannot open " + path);
        return {};
    }
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Plain file I/O (the library's path-based loaders are native-only; the WASM build runs with NODERAWFS).
ModelSource read_dir(const std::string& dir) {
    ModelSource src;
    const std::string st = slurp(dir + "/model.safetensors", true);
    src.safetensors.assign(st.begin(), st.end());
    src.safetensors_name = dir + "/model.safetensors";
    src.config_json = slurp(dir + "/config.json", false);
    src.config_name = dir + "/config.json";
    src.preprocessor_json = slurp(dir + "/preprocessor_config.json", false);
    src.preprocessor_name = dir + "/preprocessor_config.json";
    return src;
}

struct Options {
    std::string dir, mode;
    size_t batch = 0, micro = 16;
    int jobs = 1, warmup = -1, steps = -1;
    std::string data = "models/data", bits = "w4a4";
    bool fp32 = false;
    uint64_t seed = 0;
};

// `n` training images for the model: Fashion-MNIST's when it takes 1×28×28 and the files are there,
// else seeded N(0, 1) images and uniform labels.
PreparedData training_images(const ViT& m, const Options& o, size_t n, std::string& source) {
    const ViTConfig& c = m.cfg;
    const std::string imgs = o.data + "/fmnist-train-5k-images-idx3-ubyte.gz", labs = o.data + "/fmnist-train-5k-labels-idx1-ubyte.gz";
    if (c.channels == 1 && c.image_h == 28 && c.image_w == 28) {
        const std::string a = slurp(imgs, false), b = slurp(labs, false);
        if (!a.empty() && !b.empty()) {
            const Dataset ds = load_idx(std::vector<uint8_t>(a.begin(), a.end()), std::vector<uint8_t>(b.begin(), b.end()), imgs, labs);
            if (ds.size() < n)
                throw std::runtime_error(imgs + " has " + std::to_string(ds.size()) + " images, " + std::to_string(n) + " needed");
            source = "Fashion-MNIST training images (" + imgs + ")";
            return prepare(ds, c, n);
        }
    }
    source = "seeded N(0,1) images, uniform random labels";
    PreparedData d;
    d.n = n, d.input_size = size_t(c.channels) * size_t(c.image_h) * size_t(c.image_w);
    d.inputs.resize(d.n * d.input_size), d.labels.resize(n);
    std::mt19937 rng(uint32_t(o.seed * 2654435761u + 17));
    std::normal_distribution<float> nd(0.f, 1.f);
    for (float& v : d.inputs) v = nd(rng);
    for (int& l : d.labels) l = int(rng() % uint32_t(c.num_classes));
    return d;
}

// Quantizers as QatRun starts from (its PTQ), but from a quick min/max calibration on `calib` images:
// for timing and memory the values do not matter.
struct QuickQat {
    QuantizedViT q;
    QatState st;
};
std::unique_ptr<QuickQat> quick_qat(const ViT& m, const PreparedData& data, const std::string& bits) {
    auto r = std::make_unique<QuickQat>();
    QuantConfig qc = parse_wa(bits, QuantConfig{});
    qc.calib_size = int(std::min<size_t>(data.n, 4));
    qc.w_range = qc.a_range = RangeMethod::MinMax;
    r->q = quantize(m, data, qc, 1);
    for (const std::vector<Quantizer>& wq : r->q.wq) {
        r->st.weight.emplace_back();
        for (const Quantizer& q : wq) r->st.weight.back().emplace_back(q);
    }
    for (size_t p = 0; p < r->q.aq.size(); ++p)
        r->st.act.push_back(r->q.act_on[p] ? std::make_unique<TrainQuantizer>(r->q.aq[p]) : nullptr);
    return r;
}

json model_json(const ViT& m, const std::string& dir) {
    const ViTConfig& c = m.cfg;
    return {{"dir", dir},
            {"image", {c.channels, c.image_h, c.image_w}},
            {"patch", c.patch},
            {"tokens", c.tokens()},
            {"hidden", c.hidden},
            {"depth", c.depth},
            {"heads", c.heads},
            {"mlp", c.mlp_dim},
            {"classes", c.num_classes},
            {"dist_head", c.dist_head},
            {"parameters", m.parameter_count()}};
}

// ------------------------------------------------------------------------------------------------
// step: the FP32 step (the PyTorch peer's)

json run_step(ViT& m, const Options& o) {
    const size_t B = o.batch ? o.batch : 64, C = size_t(m.cfg.num_classes);
    const int warmup = o.warmup >= 0 ? o.warmup : 3, steps = o.steps >= 0 ? o.steps : 20;
    std::string source;
    const PreparedData d = training_images(m, o, B, source);
    Engine e(m);
    Stepper st(e, o.micro, o.jobs);
    Grads g(m);
    std::vector<Param> ps = parameters(m), gs = parameters(g.p);
    std::vector<AdamWState> states(ps.size());
    AdamW h;
    h.lr = 1e-3f, h.weight_decay = 0.05f;
    const json mem0 = memory();
    std::vector<double> total, fb, opt, refresh;
    double loss = 0, first_loss = 0;
    for (int it = 0; it < warmup + steps; ++it) {
        const double t0 = now_ms();
        loss = st.step(d.inputs.data(), B, [&](const float* logits, size_t first, size_t count, float* dl) {
            return cross_entropy(logits, &d.labels[first], count, C, 0.0f, dl, float(count) / float(B)) * double(count);
        }, g) / double(B);
        const double t1 = now_ms();
        for (size_t i = 0; i < ps.size(); ++i) adamw_step(h, h.lr, ps[i].data, gs[i].data, ps[i].n, states[i], ps[i].decay);
        const double t2 = now_ms();
        e.refresh();
        const double t3 = now_ms();
        if (it == 0) first_loss = loss;
        if (it < warmup) continue;
        total.push_back(t3 - t0), fb.push_back(t1 - t0), opt.push_back(t2 - t1), refresh.push_back(t3 - t2);
    }
    return {{"batch", B},
            {"micro", o.micro},
            {"jobs", o.jobs},
            {"warmup", warmup},
            {"steps", steps},
            {"inputs", source},
            {"loss", m.cfg.dist_head ? "cross-entropy of the mean of both heads (the inference output)" : "cross-entropy"},
            {"optimizer", "AdamW lr 1e-3, weight decay 0.05 on weight matrices, no clipping"},
            {"ms_per_step", total.empty() ? json(nullptr) : json(std::round(median(total) * 1000) / 1000)},
            {"step", summary(total)},
            {"forward_backward", summary(fb)},
            {"adamw", summary(opt)},
            {"refresh", summary(refresh)},
            {"loss_first", first_loss},
            {"loss_last", loss},
            {"activation_bytes", st.peak_activation_floats() * sizeof(float)},
            {"memory_before_steps", mem0}};
}

// ------------------------------------------------------------------------------------------------
// qat: QatRun::advance(1)

json run_qat(ViT& m, const Options& o) {
    const size_t B = o.batch ? o.batch : 64;
    const int warmup = o.warmup >= 0 ? o.warmup : 2, steps = o.steps >= 0 ? o.steps : 8;
    QatOptions qo;
    qo.epochs = 1, qo.batch = B, qo.micro = o.micro, qo.jobs = o.jobs, qo.seed = o.seed;
    // enough training images that the timed steps stay inside the first epoch (no evaluation)
    const size_t train_needed = size_t(warmup + steps + 1) * B;
    const size_t n = size_t(std::ceil(double(train_needed) / (1.0 - qo.val_split))) + 2;
    qo.limit = n;
    std::string source;
    const PreparedData d = training_images(m, o, n, source);
    const QuantConfig qc = parse_wa(o.bits, QuantConfig{});
    const json mem0 = memory();
    const double t0 = now_ms();
    QatRun run(m, d, qc, qo);
    const double setup = now_ms() - t0;
    const json mem1 = memory();
    std::vector<double> t;
    QatProgress p;
    for (int it = 0; it < warmup + steps; ++it) {
        const double a = now_ms();
        p = run.advance(1);
        const double b = now_ms();
        if (p.finished) throw std::runtime_error("qat: an epoch ended within the timed steps");
        if (it >= warmup) t.push_back(b - a);
    }
    return {{"batch", B},
            {"micro", o.micro},
            {"jobs", o.jobs},
            {"warmup", warmup},
            {"steps", steps},
            {"bits", qc.name()},
            {"inputs", source},
            {"images", n},
            {"options", "QatOptions defaults (distill from FP32 logits T=1 weight 1, AdamW lr 1e-4 warm-up+cosine, clip 1.0, val split 0.1), epochs 1"},
            {"ms_per_step", t.empty() ? json(nullptr) : json(std::round(median(t) * 1000) / 1000)},
            {"step", summary(t)},
            {"setup_ms", std::round(setup)},
            {"loss_last", p.loss},
            {"ptq_val_top1", run.history().front().val_top1},
            {"memory_before_setup", mem0},
            {"memory_after_setup", mem1}};
}

// ------------------------------------------------------------------------------------------------
// sos: a whole SOS reconstruction (SosRun, src/train/sos.h) at --bits (w3a3 by default in bench.mjs):
// calibration of 32 images (--batch sets it), cfg.recon_iters = --steps (default 100), recon_batch 16,
// --jobs threads; no evaluation set. Timed: the constructor (draw, stage-1 fits, FP32 chain), then every
// advance() to the end (stages 1-3: reconstruction, the fold, the weights' fit).

json run_sos(ViT& m, const Options& o) {
    const size_t calib = o.batch ? o.batch : 32;
    std::string source;
    const PreparedData d = training_images(m, o, calib, source);
    QuantConfig qc = parse_wa(o.bits, QuantConfig{});
    qc.method = Method::Sos;
    qc.calib_size = int(calib);
    qc.recon_iters = o.steps >= 0 ? o.steps : 100;
    qc.recon_batch = int(std::min<size_t>(16, calib));
    SosOptions so;
    so.jobs = o.jobs;
    const json mem0 = memory();
    const double t0 = now_ms();
    SosRun run(m, d, qc, so);
    const double setup = now_ms() - t0;
    while (!run.done()) run.advance(16);
    const double total = now_ms() - t0;
    json stages = json::array();
    for (const SosStage& st : run.stages()) stages.push_back({{"stage", st.stage}, {"seconds", st.seconds}});
    double mse1 = 0, mse3 = 0;
    for (const BlockRecon& b : run.blocks()) (b.stage == 1 ? mse1 : mse3) += b.mse_after / b.mse_before;
    return {{"bits", qc.name()},
            {"calib", calib},
            {"recon_iters", qc.recon_iters},
            {"recon_batch", qc.recon_batch},
            {"micro", so.micro},
            {"jobs", o.jobs},
            {"inputs", source},
            {"setup_ms", std::round(setup)},
            {"total_ms", std::round(total)},
            {"stages", stages},
            {"mean_mse_ratio_stage1", mse1 / double(m.blocks.size())},
            {"mean_mse_ratio_stage3", mse3 / double(m.blocks.size())},
            {"memory_before", mem0}};
}

// ------------------------------------------------------------------------------------------------
// block: embed forward, block 0 forward and backward

json run_block(ViT& m, const Options& o) {
    const ViTConfig& c = m.cfg;
    const size_t B = o.batch ? o.batch : 32, T = size_t(c.tokens()), D = size_t(c.hidden), R = B * T;
    const int warmup = o.warmup >= 0 ? o.warmup : 1, steps = o.steps >= 0 ? o.steps : 3;
    std::string source;
    const PreparedData d = training_images(m, o, B, source);
    std::unique_ptr<QuickQat> qq;
    if (!o.fp32) qq = quick_qat(m, d, o.bits);
    const json mem0 = memory();
    Engine e(m, qq ? &qq->st : nullptr);
    Grads g(m);
    Acts a;
    a.B = B;
    a.blocks.resize(1);
    std::vector<float> x(R * D), y(R * D), dres(R * D);
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.f, 1e-3f);
    std::vector<float> dy(R * D);
    for (float& v : dy) v = nd(rng);
    std::vector<double> te, tf, tb;
    for (int it = 0; it < warmup + steps; ++it) {
        const double t0 = now_ms();
        e.embed_forward(a, d.inputs.data(), x.data());
        const double t1 = now_ms();
        e.block_forward(0, a.blocks[0], x.data(), y.data(), B);
        const double t2 = now_ms();
        dres = dy;
        e.block_backward(0, a.blocks[0], dres.data(), a, g, B);
        const double t3 = now_ms();
        if (it >= warmup) te.push_back(t1 - t0), tf.push_back(t2 - t1), tb.push_back(t3 - t2);
    }
    size_t kept = 0;
    const BlockActs& s = a.blocks[0];
    for (const auto* v : {&s.x_in, &s.ln1, &s.ln1_mean, &s.ln1_rstd, &s.ln1q, &s.qkv, &s.qkvq, &s.probs, &s.probsq, &s.ctx, &s.ctxq,
                          &s.x_mid, &s.ln2, &s.ln2_mean, &s.ln2_rstd, &s.ln2q, &s.h, &s.g, &s.gq})
        kept += v->capacity();
    size_t scratch = 0;
    for (const auto* v : {&a.patches, &a.patchesq, &a.dtmp, &a.dbig, &a.dqkv, &a.dprobs, &a.packed}) scratch += v->capacity();
    return {{"batch", B},
            {"block", 0},
            {"quantizers", o.fp32 ? std::string("none (FP32)") : parse_wa(o.bits, QuantConfig{}).name() + " (quick min/max PTQ)"},
            {"inputs", source},
            {"warmup", warmup},
            {"steps", steps},
            {"embed_forward", summary(te)},
            {"block_forward", summary(tf)},
            {"block_backward", summary(tb)},
            {"block_step_ms", std::round((median(tf) + median(tb)) * 1000) / 1000},
            {"kept_activation_bytes", kept * sizeof(float)},
            {"scratch_bytes", scratch * sizeof(float)},
            {"stream_bytes", 4 * R * D * sizeof(float)},
            {"images_bytes", d.inputs.size() * sizeof(float)},
            {"grads_bytes", g.p.parameter_count() * sizeof(float)},
            {"memory_before_engine", mem0}};
}

// ------------------------------------------------------------------------------------------------
// pieces: where one micro-batch's forward and backward spend their time

json run_pieces(ViT& m, const Options& o) {
    const ViTConfig& c = m.cfg;
    const size_t B = o.batch ? o.batch : 16, T = size_t(c.tokens()), D = size_t(c.hidden), R = B * T, L = size_t(c.depth),
                 Cn = size_t(c.num_classes);
    const int iters = o.steps >= 0 ? o.steps : 10;
    std::string source;
    const PreparedData d = training_images(m, o, B, source);
    std::unique_ptr<QuickQat> qq;
    if (!o.fp32) qq = quick_qat(m, d, o.bits);
    Engine e(m, qq ? &qq->st : nullptr);
    Grads g(m);
    Acts a;
    a.B = B;
    a.blocks.resize(L);
    std::vector<std::vector<float>> xs(L + 1, std::vector<float>(R * D));
    std::vector<float> dres(R * D), dl(B * Cn);
    std::vector<std::vector<double>> t(8 + 2 * L);
    enum { kEmbF, kHeadF, kLoss, kHeadB, kEmbB, kZero, kAll, kRefresh, kBlk };
    for (int it = 0; it <= iters; ++it) {
        std::vector<double> s(t.size(), 0.0);
        double t0 = now_ms(), t1;
        g.zero();
        t1 = now_ms(), s[kZero] = t1 - t0, t0 = t1;
        e.embed_forward(a, d.inputs.data(), xs[0].data());
        t1 = now_ms(), s[kEmbF] = t1 - t0, t0 = t1;
        for (size_t l = 0; l < L; ++l) {
            e.block_forward(l, a.blocks[l], xs[l].data(), xs[l + 1].data(), B);
            t1 = now_ms(), s[kBlk + l] = t1 - t0, t0 = t1;
        }
        e.head_forward(a, xs[L].data());
        t1 = now_ms(), s[kHeadF] = t1 - t0, t0 = t1;
        cross_entropy(a.logits.data(), d.labels.data(), B, Cn, 0.0f, dl.data());
        t1 = now_ms(), s[kLoss] = t1 - t0, t0 = t1;
        e.head_backward(a, xs[L].data(), dl.data(), dres.data(), g);
        t1 = now_ms(), s[kHeadB] = t1 - t0, t0 = t1;
        for (size_t l = L; l-- > 0;) {
            e.block_backward(l, a.blocks[l], dres.data(), a, g, B);
            t1 = now_ms(), s[kBlk + L + l] = t1 - t0, t0 = t1;
        }
        e.embed_backward(a, dres.data(), g);
        t1 = now_ms(), s[kEmbB] = t1 - t0, t0 = t1;
        e.refresh();
        t1 = now_ms(), s[kRefresh] = t1 - t0;
        if (it == 0) continue;
        for (size_t i = 0; i < t.size(); ++i) t[i].push_back(s[i]);
    }
    // The same micro-batch through Engine::forward + backward (what Stepper runs), for comparison.
    std::vector<double> whole;
    Acts a2;
    for (int it = 0; it <= iters; ++it) {
        const double t0 = now_ms();
        e.forward(a2, d.inputs.data(), B);
        cross_entropy(a2.logits.data(), d.labels.data(), B, Cn, 0.0f, dl.data());
        e.backward(a2, dl.data(), g);
        if (it) whole.push_back(now_ms() - t0);
    }
    auto r3 = [](double x) { return std::round(x * 1000) / 1000; };
    double bf = 0, bb = 0;
    json blocks = json::array();
    for (size_t l = 0; l < L; ++l) {
        const double f = median(t[kBlk + l]), b = median(t[kBlk + L + l]);
        bf += f, bb += b;
        blocks.push_back({{"forward_ms", r3(f)}, {"backward_ms", r3(b)}});
    }
    json pieces = {{"grads_zero", r3(median(t[kZero]))},
                   {"embed_forward", r3(median(t[kEmbF]))},
                   {"blocks_forward", r3(bf)},
                   {"head_forward", r3(median(t[kHeadF]))},
                   {"loss", r3(median(t[kLoss]))},
                   {"head_backward", r3(median(t[kHeadB]))},
                   {"blocks_backward", r3(bb)},
                   {"embed_backward", r3(median(t[kEmbB]))},
                   {"refresh", r3(median(t[kRefresh]))}};

    // Block 0's Linear GEMMs at R rows, each kernel alone: forward y = x·Wᵀ (packed W), dX = dY·W (NN),
    // dW += dYᵀ·X (TN); and the bias gradient's scalar loop.
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.f, 1.f);
    auto rnd = [&](size_t n) { std::vector<float> v(n); for (float& x : v) x = nd(rng); return v; };
    auto time_it = [&](int n, const std::function<void()>& fn) {
        fn();
        std::vector<double> v;
        for (int i = 0; i < n; ++i) {
            const double t0 = now_ms();
            fn();
            v.push_back(now_ms() - t0);
        }
        return median(v);
    };
    const Block& blk = m.blocks[0];
    json gemms = json::array();
    double gsum = 0;
    for (const Linear* l : {&blk.qkv, &blk.proj, &blk.fc1, &blk.fc2}) {
        const size_t N = size_t(l->out), K = size_t(l->in);
        std::vector<float> x = rnd(R * K), dy = rnd(R * N), y(R * N), dx(R * K), w = rnd(N * K), dw(N * K, 0.f), bias = rnd(N), db(N, 0.f);
        std::vector<float> p(k::f32_gemm_packed_floats(N, K));
        k::f32_gemm_pack(N, K, w.data(), K, 1, p.data());
        const int n = std::max(3, iters);
        const double f = time_it(n, [&] { k::f32_gemm_4x8_wasmsimd(R, N, K, x.data(), K, p.data(), bias.data(), y.data(), N); });
        const double nn = time_it(n, [&] { k::f32_gemm_nn_4x8_wasmsimd(R, K, N, dy.data(), N, w.data(), K, dx.data(), K, false); });
        const double tn = time_it(n, [&] { k::f32_gemm_tn_4x8_wasmsimd(N, K, R, dy.data(), N, x.data(), K, dw.data(), K, true); });
        const double bl = time_it(n, [&] {
            for (size_t r = 0; r < R; ++r)
                for (size_t j = 0; j < N; ++j) db[j] = db[j] + dy[r * N + j];
        });
        const double pk = time_it(n, [&] { k::f32_gemm_pack(N, K, w.data(), K, 1, p.data()); });
        const double fl = 2.0 * double(R) * double(N) * double(K);
        gsum += f + nn + tn + bl;
        gemms.push_back({{"linear", l->name},
                         {"shape", std::to_string(R) + "x" + std::to_string(K) + "x" + std::to_string(N)},
                         {"forward_ms", r3(f)},
                         {"forward_gflops", std::round(fl / (f * 1e5)) / 10},
                         {"dx_nn_ms", r3(nn)},
                         {"dx_nn_gflops", std::round(fl / (nn * 1e5)) / 10},
                         {"dw_tn_ms", r3(tn)},
                         {"dw_tn_gflops", std::round(fl / (tn * 1e5)) / 10},
                         {"bias_grad_ms", r3(bl)},
                         {"pack_ms", r3(pk)}});
    }
    // The rest of block 0's step, each kernel sequence alone at its shapes (as Engine::block_forward /
    // block_backward call them): attention per (image, head), softmax, LayerNorm, GELU, the scalar loops.
    const size_t H = size_t(c.heads), dh = size_t(c.head_dim()), F = size_t(c.mlp_dim);
    const float sc = 1.0f / std::sqrt(float(dh));
    std::vector<float> qkv = rnd(R * 3 * D), probs(B * H * T * T), dprobs(B * H * T * T), ctx(R * D), dctx = rnd(R * D), dqkv(R * 3 * D);
    std::vector<float> xin = rnd(R * D), ln(R * D), mean(R), rstd(R), dln = rnd(R * D), dxin(R * D), gam = rnd(D), bet = rnd(D), dgam(D), dbet(D);
    std::vector<float> hbuf = rnd(R * F), gbuf(R * F), dg = rnd(R * F);
    std::vector<float> packed(std::max(k::f32_gemm_packed_floats(T, dh), k::f32_gemm_packed_floats(dh, T)));
    const int n = std::max(3, iters);
    json kern = json::array();
    double ksum = 0;
    auto row = [&](const std::string& name, double ms, double flops) {
        ksum += ms;
        json j = {{"name", name}, {"ms", r3(ms)}};
        if (flops > 0) j["gflops"] = std::round(flops / (ms * 1e5)) / 10;
        kern.push_back(j);
    };
    const double attn_fl = 2.0 * double(B * H) * double(T) * double(T) * double(dh);
    row("attention fwd q·kT (pack + GEMM + scale loop)", time_it(n, [&] {
        for (size_t b = 0; b < B; ++b)
            for (size_t h = 0; h < H; ++h) {
                const float* qb = &qkv[b * T * 3 * D];
                float* sp = &probs[(b * H + h) * T * T];
                k::f32_gemm_pack(T, dh, qb + D + h * dh, 3 * D, 1, packed.data());
                k::f32_gemm_4x8_wasmsimd(T, T, dh, qb + h * dh, 3 * D, packed.data(), nullptr, sp, T);
                for (size_t i = 0; i < T * T; ++i) sp[i] = sp[i] * sc;
            }
    }), attn_fl);
    std::vector<float> probs0 = probs;
    const double cp = time_it(n, [&] { std::memcpy(probs.data(), probs0.data(), probs.size() * 4); });
    row("softmax fwd", std::max(0.0, time_it(n, [&] {
        std::memcpy(probs.data(), probs0.data(), probs.size() * 4);
        k::f32_softmax_wasmsimd(B * H * T, T, probs.data(), T);
    }) - cp), 0);
    row("attention fwd p·v (pack + GEMM)", time_it(n, [&] {
        for (size_t b = 0; b < B; ++b)
            for (size_t h = 0; h < H; ++h) {
                const float* qb = &qkv[b * T * 3 * D];
                k::f32_gemm_pack(dh, T, qb + 2 * D + h * dh, 1, 3 * D, packed.data());
                k::f32_gemm_4x8_wasmsimd(T, dh, T, &probs[(b * H + h) * T * T], T, packed.data(), nullptr, &ctx[b * T * D + h * dh], D);
            }
    }), attn_fl);
    row("LayerNorm fwd x2", 2 * time_it(n, [&] {
        k::f32_layernorm_fwd_wasmsimd(R, D, xin.data(), D, gam.data(), bet.data(), c.ln_eps, ln.data(), D, mean.data(), rstd.data());
    }), 0);
    row("GELU fwd (copy h to g + GELU)", time_it(n, [&] {
        gbuf = hbuf;
        if (c.gelu_tanh) k::f32_gelu_tanh_wasmsimd(R * F, gbuf.data());
        else k::f32_gelu_wasmsimd(R * F, gbuf.data());
    }), 0);
    row("residual adds x2 + x_in copy (scalar loops)", time_it(n, [&] {
        for (size_t i = 0; i < R * D; ++i) ln[i] = xin[i] + ln[i];
        for (size_t i = 0; i < R * D; ++i) dxin[i] = xin[i] + dxin[i];
        std::memcpy(dln.data(), xin.data(), R * D * 4);
    }), 0);
    row("GELU bwd", time_it(n, [&] {
        if (c.gelu_tanh) k::f32_gelu_tanh_bwd_wasmsimd(R * F, hbuf.data(), dg.data(), gbuf.data());
        else k::f32_gelu_bwd_wasmsimd(R * F, hbuf.data(), dg.data(), gbuf.data());
    }), 0);
    row("LayerNorm bwd x2", 2 * time_it(n, [&] {
        k::f32_layernorm_bwd_wasmsimd(R, D, dln.data(), D, xin.data(), D, gam.data(), mean.data(), rstd.data(), dxin.data(), D,
                                      dgam.data(), dbet.data());
    }), 0);
    row("attention bwd dP = dctx·vT, dV = PT·dctx (pack + GEMM + TN)", time_it(n, [&] {
        for (size_t b = 0; b < B; ++b)
            for (size_t h = 0; h < H; ++h) {
                const float* qb = &qkv[b * T * 3 * D];
                const float* dc = &dctx[b * T * D + h * dh];
                k::f32_gemm_pack(T, dh, qb + 2 * D + h * dh, 3 * D, 1, packed.data());
                k::f32_gemm_4x8_wasmsimd(T, T, dh, dc, D, packed.data(), nullptr, &dprobs[(b * H + h) * T * T], T);
                k::f32_gemm_tn_4x8_wasmsimd(T, dh, T, &probs[(b * H + h) * T * T], T, dc, D, &dqkv[b * T * 3 * D + 2 * D + h * dh], 3 * D, false);
            }
    }), 2 * attn_fl);
    row("softmax bwd + scale loop", time_it(n, [&] {
        k::f32_softmax_bwd_wasmsimd(B * H * T, T, probs.data(), T, dprobs.data(), T, dprobs.data(), T);
        for (float& v : dprobs) v = v * sc;
    }), 0);
    row("attention bwd dQ = dS·k (NN), dK = dST·q (TN)", time_it(n, [&] {
        for (size_t b = 0; b < B; ++b)
            for (size_t h = 0; h < H; ++h) {
                const float* qb = &qkv[b * T * 3 * D];
                const float* ds = &dprobs[(b * H + h) * T * T];
                k::f32_gemm_nn_4x8_wasmsimd(T, dh, T, ds, T, qb + D + h * dh, 3 * D, &dqkv[b * T * 3 * D + h * dh], 3 * D, false);
                k::f32_gemm_tn_4x8_wasmsimd(T, dh, T, ds, T, qb + h * dh, 3 * D, &dqkv[b * T * 3 * D + D + h * dh], 3 * D, false);
            }
    }), 2 * attn_fl);
    if (qq) {  // the quantizers' forward and backward on the points block 0 uses, as the Engine calls them
        const QatState& st = qq->st;
        auto qpt = [&](ViT::BlockPoint bp) { return st.act[size_t(m.point_index(0, bp))].get(); };
        struct P { ViT::BlockPoint bp; size_t rows, cols; const char* what; };
        const std::vector<P> pts = {{ViT::kQkvIn, R, D, "qkv in"}, {ViT::kQ, R, D, "q"}, {ViT::kK, R, D, "k"}, {ViT::kV, R, D, "v"},
                                    {ViT::kProbs, B * H * T, T, "probs"}, {ViT::kProjIn, R, D, "proj in"}, {ViT::kFc1In, R, D, "fc1 in"},
                                    {ViT::kFc2In, R, F, "fc2 in"}};
        double fq = 0, bq = 0;
        std::string names;
        for (const P& p : pts) {
            const TrainQuantizer* tq = qpt(p.bp);
            if (!tq) continue;
            std::vector<float> xv = rnd(p.rows * p.cols), yv(p.rows * p.cols), dv = rnd(p.rows * p.cols);
            fq += time_it(n, [&] { for (size_t r = 0; r < p.rows; ++r) tq->forward(&xv[r * p.cols], &yv[r * p.cols], p.cols); });
            double ds = 0, dz = 0;
            bq += time_it(n, [&] { for (size_t r = 0; r < p.rows; ++r) tq->backward(&xv[r * p.cols], &dv[r * p.cols], &yv[r * p.cols], p.cols, ds, dz); });
            names += (names.empty() ? "" : ", ") + std::string(p.what);
        }
        row("activation quantizers fwd (" + names + ")", fq, 0);
        row("activation quantizers bwd (STE + LSQ sums)", bq, 0);
    }
    return {{"batch", B},
            {"iters", iters},
            {"block0_kernels", kern},
            {"block0_kernels_ms_sum", r3(ksum)},
            {"quantizers", qq ? parse_wa(o.bits, QuantConfig{}).name() + " (quick min/max PTQ)" : std::string("none (FP32)")},
            {"inputs", source},
            {"forward_backward_ms", r3(median(whole))},
            {"pieces_ms", pieces},
            {"blocks", blocks},
            {"block0_linear_gemms", gemms},
            {"block0_linear_gemms_ms_sum", r3(gsum)}};
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr,
                     "usage: bitlens-train-bench MODEL_DIR step|qat|block|pieces|sos [--batch N] [--micro 16] [--jobs 1] [--warmup N]\n"
                     "                           [--steps N] [--data models/data] [--bits w4a4] [--fp32] [--seed 0]\n");
        return 2;
    }
    Options o;
    o.dir = argv[1], o.mode = argv[2];
    try {
        for (int i = 3; i < argc; ++i) {
            const std::string a = argv[i];
            auto val = [&]() -> std::string {
                if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
                return argv[++i];
            };
            if (a == "--batch") o.batch = size_t(std::stoul(val()));
            else if (a == "--micro") o.micro = size_t(std::stoul(val()));
            else if (a == "--jobs") o.jobs = std::stoi(val());
            else if (a == "--warmup") o.warmup = std::stoi(val());
            else if (a == "--steps") o.steps = std::stoi(val());
            else if (a == "--data") o.data = val();
            else if (a == "--bits") o.bits = val();
            else if (a == "--fp32") o.fp32 = true;
            else if (a == "--seed") o.seed = std::stoull(val());
            else throw std::runtime_error("unknown option " + a);
        }
        const double t0 = now_ms();
        LoadedModel lm = load_model(read_dir(o.dir));
        ViT& m = lm.vit;
        json r = {{"mode", o.mode},
#ifdef __EMSCRIPTEN__
                  {"build", "wasm"},
#else
                  {"build", "native"},
#endif
                  {"model", model_json(m, o.dir)},
                  {"load_ms", std::round(now_ms() - t0)}};
        json res;
        if (o.mode == "step") res = run_step(m, o);
        else if (o.mode == "qat") res = run_qat(m, o);
        else if (o.mode == "block") res = run_block(m, o);
        else if (o.mode == "pieces") res = run_pieces(m, o);
        else if (o.mode == "sos") res = run_sos(m, o);
        else throw std::runtime_error("unknown mode " + o.mode + " (step, qat, block, pieces, sos)");
        r.update(res);
        r["memory"] = memory();
        std::printf("%s\n", r.dump().c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bitlens-train-bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
