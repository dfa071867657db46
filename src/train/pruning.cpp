#include "pruning.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "format.h"
#include "loss.h"
#include "parallel.h"
#include "prune.h"
#include "rng.h"
#include "trainer.h"

namespace bitlens::train {

const char* importance_name(Importance i) { return i == Importance::Mask ? "mask" : "taylor"; }

Importance parse_importance(const std::string& s) {
    if (s == "taylor") return Importance::Taylor;
    if (s == "mask") return Importance::Mask;
    throw std::runtime_error("prune: importance '" + s.substr(0, 40) + "' is not known (expected taylor or mask)");
}

// ---------------------------------------------------------------------------------------------------
// Importance

namespace {

// The groups of columns a point's importance is measured over: a head's d context columns at proj's input, one
// column per unit at fc2's input. Returns 0 for the other points.
size_t group_of(const ViT& m, int point) {
    const ActPoint& p = m.points[size_t(point)];
    if (p.block < 0) return 0;
    if (point == m.point_index(p.block, ViT::kProjIn)) return size_t(m.cfg.head_dim());
    if (point == m.point_index(p.block, ViT::kFc2In)) return 1;
    return 0;
}

// Per image, per group: |Σ_{tokens, the group's columns} x·dy|, added to sums[group] (doubles, tokens and columns
// in order). dy is the gradient of the image's own loss (cross-entropy per image, not the batch mean).
struct TaylorProbe : BackwardProbe {
    const ViT& m;
    size_t T;
    explicit TaylorProbe(const ViT& vit) : m(vit), T(size_t(vit.cfg.tokens())) {}
    void on_point(int point, const float* x, const float* dy, size_t rows, size_t cols, size_t ld,
                  std::vector<double>& sums) const override {
        const size_t g = group_of(m, point);
        if (!g) return;
        const size_t groups = cols / g;
        if (sums.size() != groups) sums.assign(groups, 0.0);
        std::vector<double> s(groups);
        for (size_t b = 0; b < rows / T; ++b) {
            std::fill(s.begin(), s.end(), 0.0);
            for (size_t t = 0; t < T; ++t) {
                const float *xr = x + (b * T + t) * ld, *dr = dy + (b * T + t) * ld;
                for (size_t c = 0; c < cols; ++c) s[c / g] += double(xr[c]) * double(dr[c]);
            }
            for (size_t k = 0; k < groups; ++k) sums[k] += std::fabs(s[k]);
        }
    }
};

// Zeroes one head's context columns (at proj's input) or one unit (at fc2's input) of one block.
struct ZeroHook : ActivationHook {
    int point = -1;
    size_t first = 0, count = 0;
    void on_activation(int p, float* x, size_t rows, size_t, size_t ld) override {
        if (p != point) return;
        for (size_t r = 0; r < rows; ++r)
            for (size_t c = first; c < first + count; ++c) x[r * ld + c] = 0.0f;
    }
};

// The summed cross-entropy of images [0, n) of d, in image order (each image's loss a double).
double ce_sum(const ViT& m, const PreparedData& d, size_t n, ActivationHook* hook) {
    const size_t C = size_t(m.cfg.num_classes);
    Workspace ws;
    std::vector<float> logits(C), dl(C);
    double s = 0;
    for (size_t i = 0; i < n; ++i) {
        m.forward(&d.inputs[i * d.input_size], logits.data(), ws, hook);
        s += cross_entropy(logits.data(), &d.labels[i], 1, C, 0.0f, dl.data());
    }
    return s;
}

}  // namespace

ImportanceScores importance(const ViT& m, const PreparedData& d, Importance method, size_t n, size_t micro, int jobs) {
    if (d.n == 0) throw std::runtime_error("prune: no images to measure importance on");
    n = n ? std::min(n, d.n) : d.n;
    const size_t L = m.blocks.size();
    ImportanceScores r;
    r.method = method, r.images = n;
    r.heads.resize(L), r.units.resize(L);
    if (method == Importance::Taylor) {
        ViT work = m;
        Engine e(work);
        e.set_linear_grads(false);  // only the activations' gradients are needed
        TaylorProbe probe(work);
        e.set_probe(&probe);
        Stepper sp(e, micro, jobs);
        Grads g(work);
        std::vector<std::vector<double>> sums(m.points.size());
        const size_t C = size_t(m.cfg.num_classes), batch = 256;
        for (size_t first = 0; first < n; first += batch) {
            const size_t nb = std::min(batch, n - first);
            sp.step(&d.inputs[first * d.input_size], nb, [&](const float* logits, size_t f, size_t count, float* dl) {
                // scale = count: each image's gradient is that of its own loss, not of the batch mean
                return cross_entropy(logits, &d.labels[first + f], count, C, 0.0f, dl, float(count)) * double(count);
            }, g);
            for (size_t p = 0; p < sums.size(); ++p) {
                if (sums[p].size() < g.probe[p].size()) sums[p].resize(g.probe[p].size(), 0.0);
                for (size_t k = 0; k < g.probe[p].size(); ++k) sums[p][k] += g.probe[p][k];
            }
        }
        for (size_t b = 0; b < L; ++b) {
            r.heads[b] = sums[size_t(m.point_index(int(b), ViT::kProjIn))];
            r.units[b] = sums[size_t(m.point_index(int(b), ViT::kFc2In))];
            for (double& v : r.heads[b]) v /= double(n);
            for (double& v : r.units[b]) v /= double(n);
        }
        return r;
    }
    // Mask: one evaluation per head and unit, spread over the threads (each sums its images in order).
    struct Item { size_t block; bool head; size_t index; };
    std::vector<Item> items;
    for (size_t b = 0; b < L; ++b) {
        r.heads[b].resize(size_t(m.cfg.block_heads(b))), r.units[b].resize(size_t(m.cfg.block_mlp(b)));
        for (size_t h = 0; h < r.heads[b].size(); ++h) items.push_back({b, true, h});
        for (size_t u = 0; u < r.units[b].size(); ++u) items.push_back({b, false, u});
    }
    const double base = ce_sum(m, d, n, nullptr);
    parallel_for(items.size(), jobs, [&](size_t lo, size_t hi, int) {
        for (size_t i = lo; i < hi; ++i) {
            const Item& it = items[i];
            ZeroHook z;
            const size_t dh = size_t(m.cfg.head_dim());
            z.point = m.point_index(int(it.block), it.head ? ViT::kProjIn : ViT::kFc2In);
            z.first = it.head ? it.index * dh : it.index, z.count = it.head ? dh : 1;
            const double v = (ce_sum(m, d, n, &z) - base) / double(n);
            (it.head ? r.heads : r.units)[it.block][it.index] = v;
        }
    });
    return r;
}

std::vector<std::vector<int>> keep_most_important(const std::vector<std::vector<double>>& scores, double ratio, const std::string& what) {
    if (!(ratio > 0 && ratio <= 1))
        throw std::runtime_error("prune: the fraction of " + what + " to keep must be in (0, 1], found " + fmt_g(ratio));
    std::vector<std::vector<int>> keep(scores.size());
    for (size_t b = 0; b < scores.size(); ++b) {
        const std::vector<double>& s = scores[b];
        const size_t k = size_t(std::floor(ratio * double(s.size()) + 0.5));
        if (k == 0)
            throw std::runtime_error("prune: keeping " + fmt_g(ratio) + " of the " + std::to_string(s.size()) + " " + what +
                                     " of layer " + std::to_string(b) + " leaves none (at least one must stay; keep at least " +
                                     fmt_g(0.5 / double(s.size())) + ")");
        std::vector<int> idx(s.size());
        std::iota(idx.begin(), idx.end(), 0);
        auto key = [&](int i) { return std::isnan(s[size_t(i)]) ? -std::numeric_limits<double>::infinity() : s[size_t(i)]; };
        std::stable_sort(idx.begin(), idx.end(), [&](int a, int c) { return key(a) > key(c); });
        idx.resize(k);
        std::sort(idx.begin(), idx.end());
        keep[b] = idx;
    }
    return keep;
}

void PruneOptions::validate() const {
    for (auto [v, name] : {std::pair{keep_heads, "--keep-heads"}, std::pair{keep_mlp, "--keep-mlp"}})
        if (!(v > 0 && v <= 1)) throw std::runtime_error(std::string("prune: ") + name + " must be a fraction in (0, 1], found " + fmt_g(v));
    if (train.epochs < 0) throw std::runtime_error("prune: --epochs must be at least 0, found " + std::to_string(train.epochs));
    QatOptions t = train;
    t.epochs = std::max(1, t.epochs);
    t.budget = t.abudget = 0;
    t.validate();
    if (!(feature_weight >= 0) || !std::isfinite(feature_weight))
        throw std::runtime_error("prune: --feature-weight must be ≥ 0, found " + fmt_g(feature_weight));
    if (feature_blocks < -1) throw std::runtime_error("prune: --feature-blocks must be ≥ 0 (or -1: the first half)");
}

// ---------------------------------------------------------------------------------------------------
// The run

struct PruneRun::State {
    PruneOptions o;
    Split data;
    size_t C = 0, Lfeat = 0;
    ViT teacher;                    // the unpruned model (features: its own engine)
    std::unique_ptr<Engine> te;
    ViT student, pruned, best;
    ImportanceScores scores;
    std::vector<std::vector<int>> keep_h, keep_u;
    std::unique_ptr<Engine> e;
    std::vector<float> tlogits;
    std::vector<Param> params;
    std::vector<AdamWState> pstate;
    AdamW opt;
    std::unique_ptr<Stepper> stepper;
    std::unique_ptr<Grads> g;
    Batch batch;
    std::vector<size_t> order;
    size_t steps_per_epoch = 0, total = 0, it = 0, seen = 0, nb = 0, params_before = 0;
    long warm = 0;
    double loss_sum = 0, last_lr = 0;
    int best_epoch = 0;
    std::vector<PruneEpoch> history;
    EvalResult fp32_val;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();

    double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
    static ViT packed(const ViT& m) {
        ViT c = m;
        for (Linear* l : c.linears()) l->pack();
        return c;
    }
    void evaluate(PruneEpoch& ep) const {
        if (!data.val.n) {
            ep.val_top1 = ep.val_worst = std::numeric_limits<double>::quiet_NaN(), ep.val_worst_class = -1;
            return;
        }
        const EvalResult r = bitlens::evaluate(packed(student), data.val, o.train.jobs);
        ep.val_top1 = r.top1, ep.val_worst_class = r.worst_class, ep.val_worst = r.per_class[size_t(r.worst_class)];
    }
    double features(const Acts& a, const float* imgs, size_t count, std::vector<std::vector<float>>& dfeat) const;
    void train_step();
};

// MSE between the student's and the teacher's outputs of the first Lfeat blocks, each a mean over the batch's
// values (this micro-batch being `count` of its nb images), weighted by feature_weight.
double PruneRun::State::features(const Acts& a, const float* imgs, size_t count, std::vector<std::vector<float>>& dfeat) const {
    const size_t R = count * size_t(teacher.cfg.tokens()), D = size_t(teacher.cfg.hidden);
    Acts ta;
    ta.B = count;
    ta.blocks.resize(Lfeat);
    std::vector<float> x(R * D);
    te->embed_forward(ta, imgs, x.data());
    dfeat.assign(student.blocks.size(), {});
    double loss = 0;
    const float w = float(o.feature_weight) * float(count) / float(nb);
    for (size_t l = 0; l < Lfeat; ++l) {
        te->block_forward(l, ta.blocks[l], x.data(), x.data(), count);
        dfeat[l].resize(R * D);
        loss += o.feature_weight * mse(block_output(a, l), x.data(), R * D, dfeat[l].data(), w) * double(count);
    }
    return loss;
}

void PruneRun::State::train_step() {
    const PreparedData& tr = data.train;
    const QatOptions& to = o.train;
    nb = batch.gather(tr, order, it % steps_per_epoch, to, tlogits, C);
    const double loss = batch.step(*stepper, to, C, *g);
    loss_sum += loss, seen += nb;
    std::vector<Param> grads = parameters(g->p);
    std::vector<std::pair<float*, size_t>> all;
    for (Param& p : grads) all.emplace_back(p.data, p.n);
    const double norm = to.clip > 0 ? clip_grad_norm(all, to.clip) : 0.0;
    const float lr = lr_at(long(it), long(total), warm, to.lr, to.min_lr);
    last_lr = lr;
    if (std::isfinite(norm))
        for (size_t i = 0; i < params.size(); ++i) adamw_step(opt, lr, params[i].data, grads[i].data, params[i].n, pstate[i], params[i].decay);
    e->refresh();
    ++it;
}

PruneRun::PruneRun(const ViT& fp, const PreparedData& train, const PruneOptions& o) : s_(std::make_unique<State>()) {
    State& S = *s_;
    o.validate();
    if (fp.blocks.empty()) throw std::runtime_error("prune: the model has no transformer blocks, so no heads or MLP units to prune");
    check_data(fp, train, "training set");
    {  // a fraction that leaves a layer empty is refused before the importance is measured
        std::vector<std::vector<double>> h(fp.blocks.size()), u(fp.blocks.size());
        for (size_t b = 0; b < fp.blocks.size(); ++b) h[b].resize(size_t(fp.cfg.block_heads(b))), u[b].resize(size_t(fp.cfg.block_mlp(b)));
        keep_most_important(h, o.keep_heads, "heads");
        keep_most_important(u, o.keep_mlp, "MLP units");
    }
    S.o = o;
    const QatOptions& to = o.train;
    S.data = split_training(train, to, "prune");
    const PreparedData& tr = S.data.train;
    S.C = size_t(fp.cfg.num_classes);
    S.params_before = fp.parameter_count();
    if (S.data.val.n) S.fp32_val = bitlens::evaluate(fp, S.data.val, to.jobs);

    S.scores = importance(fp, tr, o.method, o.importance_images, to.micro, to.jobs);
    S.keep_h = keep_most_important(S.scores.heads, o.keep_heads, "heads");
    S.keep_u = keep_most_important(S.scores.units, o.keep_mlp, "MLP units");
    S.pruned = prune_structure(fp, S.keep_h, S.keep_u);
    S.student = S.pruned;
    S.best = S.pruned;

    PruneEpoch e0;
    S.evaluate(e0);
    e0.train_loss = std::numeric_limits<double>::quiet_NaN(), e0.seconds = S.seconds();
    S.history.push_back(e0);
    if (to.epochs == 0) return;

    const int L = int(fp.blocks.size());
    S.Lfeat = !to.distill || o.feature_weight == 0 ? 0 : size_t(o.feature_blocks < 0 ? (L + 1) / 2 : std::min(o.feature_blocks, L));
    if (S.Lfeat) S.teacher = fp, S.te = std::make_unique<Engine>(S.teacher);  // its block outputs, per micro-batch
    S.e = std::make_unique<Engine>(S.student);
    if (to.distill) S.tlogits = teacher_logits(fp, tr, to.jobs);
    S.params = parameters(S.student);
    S.pstate.assign(S.params.size(), AdamWState());
    S.opt.weight_decay = to.weight_decay;
    S.steps_per_epoch = (tr.n + to.batch - 1) / to.batch;
    S.total = S.steps_per_epoch * size_t(to.epochs);
    S.warm = long(std::floor(to.warmup * double(S.total) + 0.5));
    S.stepper = std::make_unique<Stepper>(*S.e, to.micro, to.jobs);
    if (S.Lfeat)
        S.stepper->set_feature_loss([&S](const Acts& a, const float* imgs, size_t, size_t count, std::vector<std::vector<float>>& dfeat) {
            return S.features(a, imgs, count, dfeat);
        });
    S.g = std::make_unique<Grads>(S.student);
}

PruneRun::~PruneRun() = default;
bool PruneRun::done() const { return s_->it >= s_->total; }
const std::vector<PruneEpoch>& PruneRun::history() const { return s_->history; }
const ImportanceScores& PruneRun::scores() const { return s_->scores; }
size_t PruneRun::steps() const { return s_->total; }

PruneProgress PruneRun::advance(size_t max_steps) {
    State& S = *s_;
    PruneProgress pr;
    pr.epochs = S.o.train.epochs, pr.steps = S.total;
    for (size_t k = 0; k < max_steps && !done(); ++k) {
        if (S.it % S.steps_per_epoch == 0) {  // an epoch begins: its seeded order
            S.order = draw_calibration(S.data.train.n, S.data.train.n, derive_seed(S.o.train.seed, uint64_t(S.it / S.steps_per_epoch) + 1));
            S.loss_sum = 0, S.seen = 0;
        }
        S.train_step();
        if (S.it % S.steps_per_epoch == 0) {
            PruneEpoch ep;
            ep.epoch = int(S.it / S.steps_per_epoch), ep.steps = S.steps_per_epoch;
            ep.train_loss = S.loss_sum / double(S.seen), ep.lr = S.last_lr;
            S.evaluate(ep);
            ep.seconds = S.seconds();
            S.history.push_back(ep);
            const PruneEpoch& b = S.history[size_t(S.best_epoch)];
            if (!S.data.val.n || ep.val_top1 > b.val_top1 || std::isnan(b.val_top1)) S.best_epoch = ep.epoch, S.best = S.student;
            pr.finished = &S.history.back();
            break;
        }
    }
    pr.epoch = S.it ? int((S.it - 1) / S.steps_per_epoch) + 1 : 0, pr.step = S.it;  // the epoch of the last step, as QAT counts
    pr.loss = S.seen ? S.loss_sum / double(S.seen) : 0.0, pr.seconds = S.seconds();
    return pr;
}

PruneResult PruneRun::result() const {
    const State& S = *s_;
    PruneResult r;
    r.model = State::packed(S.best);
    r.pruned = State::packed(S.pruned);
    r.scores = S.scores;
    r.keep_heads = S.keep_h, r.keep_units = S.keep_u;
    r.best_epoch = S.best_epoch;
    r.train_images = S.data.train.n, r.val_images = S.data.val.n;
    r.parameters_before = S.params_before;
    r.parameters_after = S.pruned.parameter_count();
    r.history = S.history;
    r.fp32_val = S.fp32_val;
    return r;
}

PruneResult prune(const ViT& fp, const PreparedData& train, const PruneOptions& o, const std::function<bool(const PruneProgress&)>& progress) {
    PruneRun run(fp, train, o);
    if (progress) {
        PruneProgress p0;
        p0.epochs = o.train.epochs, p0.steps = run.steps(), p0.finished = &run.history().front();
        p0.seconds = run.history().front().seconds;
        if (!progress(p0)) throw std::runtime_error("cancelled");
    }
    while (!run.done()) {
        const PruneProgress p = run.advance(1);
        if (progress && !progress(p)) throw std::runtime_error("cancelled");
    }
    return run.result();
}

// ---------------------------------------------------------------------------------------------------
// Reports

nlohmann::json importance_json(const ImportanceScores& s) {
    return {{"method", importance_name(s.method)}, {"images", s.images}, {"heads", s.heads}, {"units", s.units}};
}

nlohmann::json prune_history_json(const std::vector<PruneEpoch>& h) {
    nlohmann::json a = nlohmann::json::array();
    auto num = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
    for (const PruneEpoch& e : h)
        a.push_back({{"epoch", e.epoch}, {"steps", e.steps}, {"train_loss", num(e.train_loss)}, {"val_top1", num(e.val_top1)},
                     {"val_worst", num(e.val_worst)}, {"val_worst_class", e.val_worst_class}, {"lr", e.lr}, {"seconds", e.seconds}});
    return a;
}

nlohmann::json layers_json(const ViT& m) {
    const ViTConfig& c = m.cfg;
    nlohmann::json layers = nlohmann::json::array();
    for (size_t b = 0; b < m.blocks.size(); ++b) {
        const Block& blk = m.blocks[b];
        size_t n = blk.norm1.gamma.size() * 4;  // both LayerNorms' gamma and beta
        for (const Linear* l : {&blk.qkv, &blk.proj, &blk.fc1, &blk.fc2}) n += l->weight.size() + l->bias.size();
        layers.push_back({{"heads", c.block_heads(b)},
                          {"pruned_heads", c.pruned_heads.empty() ? nlohmann::json::array() : nlohmann::json(c.pruned_heads[b])},
                          {"mlp_dim", c.block_mlp(b)},
                          {"parameters", n}});
    }
    return layers;
}

}  // namespace bitlens::train
