#include "qat.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <set>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "loss.h"
#include "optim.h"
#include "format.h"
#include "parallel.h"
#include "rng.h"
#include "trainer.h"

namespace bitlens::train {

GradientResult gradients(const ViT& m, const PreparedData& data, size_t n, int jobs, size_t micro) {
    check_data(m, data, "gradient data");
    if (n == 0 || n > data.n)
        throw std::runtime_error("gradients: --limit " + std::to_string(n) + " is outside 1.." + std::to_string(data.n) +
                                 " (the data set's images)");
    ViT model = m;
    Engine e(model);
    Stepper st(e, micro, jobs);
    Grads g(model);
    const size_t C = size_t(m.cfg.num_classes);
    const double loss = st.step(data.inputs.data(), n, [&](const float* logits, size_t first, size_t count, float* dl) {
        return cross_entropy(logits, &data.labels[first], count, C, 0.0f, dl, float(count) / float(n)) * double(count);
    }, g);
    return {loss / double(n), n, std::move(g.p)};
}

void QatOptions::validate() const {
    if (epochs < 1) throw std::runtime_error("qat: --epochs must be at least 1, found " + std::to_string(epochs));
    if (batch < 1) throw std::runtime_error("qat: --batch must be at least 1");
    if (micro < 1) throw std::runtime_error("qat: the micro-batch must be at least 1");
    if (!(lr > 0) || !std::isfinite(lr)) throw std::runtime_error("qat: --lr must be a positive number, found " + std::to_string(lr));
    if (!(min_lr >= 0) || min_lr > lr) throw std::runtime_error("qat: the final learning rate must be in [0, lr]");
    if (!(weight_decay >= 0)) throw std::runtime_error("qat: weight decay must be ≥ 0");
    if (!(warmup >= 0 && warmup <= 1)) throw std::runtime_error("qat: warm-up must be a fraction in [0, 1]");
    if (!(clip >= 0)) throw std::runtime_error("qat: the gradient clip must be ≥ 0");
    if (!(val_split >= 0 && val_split < 1))
        throw std::runtime_error("qat: --val-split must be in [0, 1), found " + std::to_string(val_split));
    if (!(temperature > 0)) throw std::runtime_error("qat: the distillation temperature must be positive");
    if (!(distill_weight >= 0 && distill_weight <= 1)) throw std::runtime_error("qat: the distillation weight must be in [0, 1]");
    if (!(label_smoothing >= 0 && label_smoothing < 1)) throw std::runtime_error("qat: label smoothing must be in [0, 1)");
    if (!(budget >= 0) || !std::isfinite(budget)) throw std::runtime_error("qat: --budget must be an average bit-width, found " + std::to_string(budget));
    if (!(abudget >= 0) || !std::isfinite(abudget))
        throw std::runtime_error("qat: --abudget must be an average bit-width, found " + std::to_string(abudget));
    if (abudget > 0 && budget == 0)
        throw std::runtime_error("qat: --abudget needs --budget (the activations' bits are allocated with the weights')");
    if (budget == 0) return;
    if (candidates.empty()) throw std::runtime_error("qat: --candidates is empty");
    for (size_t i = 0; i < candidates.size(); ++i) {
        check_bits(candidates[i], "qat: --candidates");
        if (std::count(candidates.begin(), candidates.end(), candidates[i]) > 1)
            throw std::runtime_error("qat: --candidates lists " + std::to_string(candidates[i]) + " bits twice");
    }
    const int fewest = *std::min_element(candidates.begin(), candidates.end());
    // ⌊B·n⌋ ≥ fewest·n exactly when B ≥ fewest: anything less cannot give every layer (point) a candidate.
    auto feasible = [&](const char* opt, double b) {
        if (b > 0 && b < fewest)
            throw std::runtime_error(std::string("qat: ") + opt + " " + fmt_g(b) + " is infeasible: the smallest candidate is " +
                                     std::to_string(fewest) + " bits, so the budget must be at least " + std::to_string(fewest));
    };
    feasible("--budget", budget), feasible("--abudget", abudget);
    if (fisher_batches < 1) throw std::runtime_error("qat: the sensitivity passes need at least 1 batch (--fisher-batches)");
    if (!(sensitivity_decay >= 0 && sensitivity_decay < 1))
        throw std::runtime_error("qat: --sensitivity-decay must be in [0, 1), found " + fmt_g(sensitivity_decay));
}

QuantizedViT snapshot(const QuantConfig& cfg, const std::vector<int>& wbits, const Engine& e, const QatState& st) {
    QuantizedViT q;
    q.cfg = cfg, q.wbits = wbits;
    q.model = e.model();
    std::vector<Linear*> ls = q.model.linears();
    q.wq.resize(ls.size());
    for (size_t i = 0; i < ls.size(); ++i) {
        ls[i]->weight = e.effective_weight(i);
        ls[i]->pack();
        for (const TrainQuantizer& t : st.weight[i]) q.wq[i].push_back(t.q);
    }
    q.act_on.assign(st.act.size(), false);
    q.aq.resize(st.act.size());
    for (size_t p = 0; p < st.act.size(); ++p) {
        if (!st.act_channel.empty() && !st.act_channel[p].empty())
            throw std::logic_error("snapshot: point " + q.model.points[p].name + " is quantized channel-wise");
        if (st.act[p]) q.act_on[p] = true, q.aq[p] = st.act[p]->q;
    }
    return q;
}

namespace {

// The training state a quantized model starts from: its weight quantizers per Linear and its activation
// quantizers, all learnable.
QatState state_of(const QuantizedViT& q) {
    QatState st;
    for (const std::vector<Quantizer>& wq : q.wq) {
        st.weight.emplace_back();
        for (const Quantizer& z : wq) st.weight.back().emplace_back(z);
    }
    for (size_t p = 0; p < q.aq.size(); ++p) st.act.push_back(q.act_on[p] ? std::make_unique<TrainQuantizer>(q.aq[p]) : nullptr);
    return st;
}

// QBitOpt's sensitivity statistics over some batches: per Linear the mean squared gradient of its
// effective weights, and per activation point the NoiseProbe's sums per candidate (empty where not probed).
struct Fisher {
    std::vector<std::vector<double>> weight, act;
};

}  // namespace

struct QatRun::State {
    QatOptions o;
    PreparedData tr, val;
    size_t C = 0;
    QuantizedViT start;
    QuantConfig cfg;               // in force: the start's, with the current allocation's layer_bits / point_bits
    std::vector<int> wbits;        // in force, per Linear
    ViT latent;
    QatState st;
    std::unique_ptr<Engine> e;
    std::vector<float> teacher;
    std::vector<Param> params;
    std::vector<AdamWState> pstate;
    std::vector<QParam> qparams;
    std::vector<size_t> per_image;  // values per image at each activation point
    AdamW opt;
    size_t steps_per_epoch = 0, total = 0, step = 0;
    long warm = 0;
    std::unique_ptr<Stepper> stepper;
    std::unique_ptr<Grads> g;
    Batch batch;
    std::vector<size_t> order;     // this epoch's image order
    int epoch = 0;                 // the epoch in progress (0 before the first step)
    double loss_sum = 0;
    size_t seen = 0;
    float lr = 0;
    // QBitOpt (o.budget > 0)
    std::unique_ptr<BitAllocator> bits;
    std::vector<double> class_weight;  // per class, each image's weight in the sensitivity passes' loss
    PointSamples observed;             // PTQ's observation (with an activation budget): non-uniform points refit on it
    size_t realloc_every = 0, realloc_until = 0;
    int allocation = -1;               // in force: index into res.allocations
    std::vector<std::vector<double>> wsens, asens;  // the sensitivities solved with last (moving averages)
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    QatResult res;

    double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
    std::vector<size_t> epoch_order(int ep) const { return draw_calibration(tr.n, tr.n, derive_seed(o.seed, uint64_t(ep))); }
    // PTQ's calibration images (drawn from the training part), and the FP32 weights it quantizes.
    std::vector<size_t> calibration(const QuantConfig& qc) const { return draw_calibration(tr.n, size_t(qc.calib_size), qc.seed); }
    ViT latent_of(const ViT& fp, const QuantConfig& qc) const { return qc.reparam ? reparameterised(fp, tr, calibration(qc), qc.abits) : fp; }
    void evaluate_epoch(EpochStats es);
    void train_step();
    // QBitOpt
    void setup_allocation(const ViT& fp);
    QuantConfig initial_allocation(const ViT& fp, const QuantConfig& qc);
    Fisher fisher(Stepper& sp, Grads& gr, const std::vector<size_t>& ord, size_t first);
    std::vector<std::vector<double>> weight_sensitivities(const ViT& m, const Fisher& f, const QuantConfig& qc) const;
    void reallocate();
};

void QatRun::State::evaluate_epoch(EpochStats es) {
    QuantizedViT q = snapshot(cfg, wbits, *e, st);
    if (val.n) {
        const EvalResult r = evaluate_quantized(q, val, o.jobs);
        es.val_top1 = r.top1, es.val_worst_class = r.worst_class, es.val_worst = r.per_class[size_t(r.worst_class)];
    } else {
        es.val_top1 = es.val_worst = std::numeric_limits<double>::quiet_NaN();
    }
    es.seconds = seconds();
    const bool better = res.history.empty() || !val.n || es.val_top1 > res.history[size_t(res.best_epoch)].val_top1;
    res.history.push_back(es);
    if (!better) return;
    double wb = 0, wn = 0, ab = 0, an = 0;
    const std::vector<const Linear*> ls = std::as_const(q.model).linears();
    for (size_t i = 0; i < ls.size(); ++i) wb += double(ls[i]->weight.size()) * q.wbits[i], wn += double(ls[i]->weight.size());
    for (size_t p = 0; p < q.aq.size(); ++p)
        if (q.act_on[p]) ab += double(per_image[p]) * q.aq[p].bits, an += double(per_image[p]);
    res.avg_wbits = wb / wn, res.avg_abits = an > 0 ? ab / an : 0.0;
    res.q = std::move(q), res.best_epoch = es.epoch, res.kept_allocation = allocation;
}

void QatRun::State::train_step() {
    const size_t nb = batch.gather(tr, order, step % steps_per_epoch, o, teacher, C);
    const double loss = batch.step(*stepper, o, C, *g);
    loss_sum += loss, seen += nb;

    // Weights: the gradient reached the effective (fake-quantized) weights; pass it straight through to the
    // latent ones and collect each channel's LSQ step gradient.
    const std::vector<Linear*> ls = latent.linears(), gls = g->p.linears();
    size_t qi = 0;
    for (size_t i = 0; i < st.weight.size(); ++i) {
        if (st.weight[i].empty()) continue;
        const size_t per = ls[i]->weight.size() / st.weight[i].size();
        for (size_t r = 0; r < st.weight[i].size(); ++r) {
            TrainQuantizer& t = st.weight[i][r];
            double ds = 0, dz = 0;
            float* gw = &gls[i]->weight[r * per];
            t.backward(&ls[i]->weight[r * per], gw, gw, per, ds, dz);
            if (t.learn && t.q.type == QType::Uniform) qparams[qi].grad = float(ds * double(t.grad_scale(qparams[qi].per_step))), ++qi;
        }
    }
    act_qparam_grads(st, *g, qparams, qi);

    std::vector<Param> grads = parameters(g->p);
    std::vector<std::pair<float*, size_t>> all;
    for (Param& p : grads) all.emplace_back(p.data, p.n);
    for (QParam& q : qparams) all.emplace_back(&q.grad, 1);
    if (o.clip > 0) clip_grad_norm(all, o.clip);
    lr = lr_at(long(step), long(total), warm, o.lr, o.min_lr);
    for (size_t i = 0; i < params.size(); ++i) adamw_step(opt, lr, params[i].data, grads[i].data, params[i].n, pstate[i], params[i].decay);
    step_qparams(opt, lr, qparams);
    e->refresh();
    ++step;
}

// The allocator, the schedule and, for the worst objective, the per-class weights.
void QatRun::State::setup_allocation(const ViT& fp) {
    bits = std::make_unique<BitAllocator>(fp, per_image, o.candidates, o.budget, o.abudget);
    realloc_every = o.realloc_every ? o.realloc_every : (steps_per_epoch + 3) / 4;
    realloc_until = steps_per_epoch * size_t(o.epochs - 1);
    class_weight.assign(C, 1.0);
    if (o.objective == Objective::Worst) {
        // Each class's images together weigh its share of the FP32 model's mean per-class loss (× the images, so
        // that the weights average 1), as mixed.h's worst objective weights its sensitivity images.
        const std::vector<float> z = o.distill ? teacher : teacher_logits(fp, tr, o.jobs);
        std::vector<double> loss(C, 0.0), n(C, 0.0);
        std::vector<float> dl(C);
        for (size_t i = 0; i < tr.n; ++i) {
            const size_t y = size_t(tr.labels[i]);
            loss[y] += cross_entropy(&z[i * C], &tr.labels[i], 1, C, 0.0f, dl.data()), n[y] += 1;
        }
        double sum = 0;
        for (size_t c = 0; c < C; ++c)
            if (n[c] > 0) sum += loss[c] / n[c];
        for (size_t c = 0; c < C; ++c) class_weight[c] = n[c] > 0 && sum > 0 ? double(tr.n) * (loss[c] / n[c]) / sum / n[c] : 1.0;
    }
}

Fisher QatRun::State::fisher(Stepper& sp, Grads& gr, const std::vector<size_t>& ord, size_t first) {
    const ViT& m = gr.p;  // the engine's model's shape
    const std::vector<const Linear*> ls = m.linears();
    Fisher f;
    for (const Linear* l : ls) f.weight.emplace_back(l->weight.size(), 0.0);
    f.act.resize(m.points.size());
    const size_t batches = std::min(o.fisher_batches, steps_per_epoch);
    for (size_t k = 0; k < batches; ++k) {
        const size_t nb = batch.gather(tr, ord, (first + k) % steps_per_epoch, o, teacher, C);
        const std::vector<int>& labels = batch.labels;
        sp.step(batch.images.data(), nb, [&](const float* logits, size_t b, size_t count, float* dl) {
            double l = 0;
            for (size_t i = 0; i < count; ++i)
                l += distill_loss(o, logits + i * C, &labels[b + i], &batch.tlog[(b + i) * C], 1, C,
                                  float(class_weight[size_t(labels[b + i])] / double(nb)), dl + i * C);
            return l;
        }, gr);
        const std::vector<Linear*> gls = gr.p.linears();
        for (size_t i = 0; i < ls.size(); ++i)
            for (size_t j = 0; j < f.weight[i].size(); ++j) f.weight[i][j] += double(gls[i]->weight[j]) * double(gls[i]->weight[j]);
        for (size_t p = 0; p < f.act.size(); ++p) {
            if (f.act[p].size() < gr.probe[p].size()) f.act[p].resize(gr.probe[p].size(), 0.0);
            for (size_t c = 0; c < gr.probe[p].size(); ++c) f.act[p][c] += gr.probe[p][c];
        }
    }
    for (auto* v : {&f.weight, &f.act})
        for (std::vector<double>& x : *v)
            for (double& s : x) s /= double(batches);
    return f;
}

std::vector<std::vector<double>> QatRun::State::weight_sensitivities(const ViT& m, const Fisher& f, const QuantConfig& qc) const {
    const std::vector<const Linear*> ls = m.linears();
    std::vector<std::vector<double>> s(ls.size());
    parallel_for(ls.size(), o.jobs, [&](size_t b, size_t en, int) {
        for (size_t i = b; i < en; ++i) s[i] = weight_sensitivity(*ls[i], f.weight[i], o.candidates, qc);
    });
    return s;
}

// Step 0: PTQ at the starting widths, the sensitivities there, the allocation; returns qc with it.
QuantConfig QatRun::State::initial_allocation(const ViT& fp, const QuantConfig& qc) {
    auto nearest = [&](double b) {  // the candidate nearest the budget, ties upwards
        int best = o.candidates[0];
        for (int c : o.candidates)
            if (std::fabs(c - b) < std::fabs(best - b) || (std::fabs(c - b) == std::fabs(best - b) && c > best)) best = c;
        return best;
    };
    QuantConfig c0 = qc;
    for (const Linear* l : fp.linears()) c0.layer_bits[l->name] = nearest(o.budget);
    if (bits->allocates_activations())
        for (const ActPoint& p : fp.points)
            if (point_quantized(p)) c0.point_bits[p.name] = nearest(o.abudget);
    const QuantizedViT q0 = quantize(fp, tr, c0, o.jobs);
    ViT lat = latent_of(fp, qc);
    QatState st0 = state_of(q0);
    Engine e0(lat, &st0);
    Stepper sp(e0, o.micro, o.jobs);
    Grads gr(lat);
    // The activations' candidates: what PTQ would fit at each width, on the values it observed.
    std::unique_ptr<NoiseProbe> probe;
    if (bits->allocates_activations()) {
        const PointSamples seen = observe_points(q0.model, tr, calibration(qc));
        std::vector<std::vector<Quantizer>> cand(fp.points.size());
        for (size_t p = 0; p < fp.points.size(); ++p)
            if (q0.act_on[p])
                for (int b : o.candidates) cand[p].push_back(fit_point(fp.points[p], seen.samples[p], b, qc));
        probe = std::make_unique<NoiseProbe>(std::move(cand));
        e0.set_probe(probe.get());
    }
    const Fisher f = fisher(sp, gr, epoch_order(1), 0);
    wsens = weight_sensitivities(lat, f, qc), asens = f.act;
    res.allocations.push_back(bits->solve(0, wsens, asens, bits->from_config(fp, c0)));
    allocation = 0;
    const Allocation& a = res.allocations.back();
    QuantConfig run = qc;
    const std::vector<const Linear*> ls = fp.linears();
    for (size_t i = 0; i < ls.size(); ++i) run.layer_bits[ls[i]->name] = a.layer_bits[i];
    if (bits->allocates_activations())
        for (size_t p = 0; p < fp.points.size(); ++p)
            if (a.point_bits[p]) run.point_bits[fp.points[p].name] = a.point_bits[p];
    return run;
}

// A later allocation, before step `step`: sensitivities on the next batches of the training order, the
// knapsacks, and the quantizers whose width changed moved to it (their optimiser state restarted).
void QatRun::State::reallocate() {
    std::unique_ptr<NoiseProbe> probe;
    if (bits->allocates_activations()) {
        std::vector<std::vector<Quantizer>> cand(st.act.size());
        for (size_t p = 0; p < st.act.size(); ++p) {
            if (!st.act[p]) continue;
            for (int b : o.candidates)
                cand[p].push_back(st.act[p]->q.type == QType::Uniform ? with_bits(*st.act[p], b).q
                                                                      : fit_point(latent.points[p], observed.samples[p], b, cfg));
        }
        probe = std::make_unique<NoiseProbe>(std::move(cand));
        e->set_probe(probe.get());
    }
    const Fisher f = fisher(*stepper, *g, order, step % steps_per_epoch);
    e->set_probe(nullptr);
    const Allocation prev = res.allocations[size_t(allocation)];
    // S ← decay·S + (1 − decay)·S_measured, per layer (point) and candidate.
    auto average = [&](std::vector<std::vector<double>>& avg, const std::vector<std::vector<double>>& now) {
        const double d = o.sensitivity_decay;
        for (size_t i = 0; i < avg.size(); ++i) {
            if (avg[i].size() != now[i].size()) throw std::logic_error("qat: sensitivities changed shape between allocations");
            for (size_t k = 0; k < avg[i].size(); ++k) avg[i][k] = d * avg[i][k] + (1 - d) * now[i][k];
        }
    };
    average(wsens, weight_sensitivities(latent, f, cfg)), average(asens, f.act);
    Allocation a = bits->solve(step, wsens, asens, prev);

    std::set<const TrainQuantizer*> moved;
    const std::vector<Linear*> ls = latent.linears();
    for (size_t i = 0; i < ls.size(); ++i) {
        if (a.layer_bits[i] == prev.layer_bits[i]) continue;
        Linear w = *ls[i];
        const std::vector<Quantizer> qs = quantize_weights(w, a.layer_bits[i], cfg);
        for (size_t r = 0; r < qs.size(); ++r) st.weight[i][r] = TrainQuantizer(qs[r]), moved.insert(&st.weight[i][r]);
        e->refresh(i);
        wbits[i] = a.layer_bits[i], cfg.layer_bits[ls[i]->name] = a.layer_bits[i];
    }
    for (size_t p = 0; p < st.act.size(); ++p) {
        if (a.point_bits[p] == prev.point_bits[p]) continue;
        TrainQuantizer& t = *st.act[p];
        const ActPoint& pt = latent.points[p];
        t = t.q.type == QType::Uniform ? with_bits(t, a.point_bits[p]) : TrainQuantizer(fit_point(pt, observed.samples[p], a.point_bits[p], cfg));
        moved.insert(&t);
        cfg.point_bits[pt.name] = a.point_bits[p];
    }
    for (QParam& q : qparams)
        if (moved.count(q.tq)) q.value = q.zero ? q.tq->zero_f : q.tq->q.scale, q.st = AdamWState{};
    res.allocations.push_back(std::move(a));
    allocation = int(res.allocations.size()) - 1;
}

QatRun::QatRun(const ViT& fp, const PreparedData& data, const QuantConfig& qc, const QatOptions& o) : s_(std::make_unique<State>()) {
    State& S = *s_;
    o.validate();
    qc.validate();
    check_data(fp, data, "training set");
    S.o = o;

    Split split = split_training(data, o, "qat");
    S.tr = std::move(split.train), S.val = std::move(split.val);
    S.C = size_t(fp.cfg.num_classes);
    S.res.train_images = S.tr.n, S.res.val_images = S.val.n;
    if (S.val.n) S.res.fp32_val = evaluate(fp, S.val, o.jobs);
    // The teacher: the FP32 model's logits for every training image, once.
    if (o.distill) S.teacher = teacher_logits(fp, S.tr, o.jobs);
    S.per_image = observe_points(fp, S.tr, {0}).per_image;
    S.steps_per_epoch = (S.tr.n + o.batch - 1) / o.batch, S.total = S.steps_per_epoch * size_t(o.epochs);

    // Start from PTQ (calibration drawn from the training part) — with a budget, at the first allocation's
    // widths — and train the FP32 weights it quantized.
    QuantConfig run = qc;
    if (o.budget > 0) {
        S.setup_allocation(fp);
        run = S.initial_allocation(fp, qc);
    }
    S.start = quantize(fp, S.tr, run, o.jobs);
    S.cfg = S.start.cfg, S.wbits = S.start.wbits;
    S.latent = S.latent_of(fp, qc);
    S.st = state_of(S.start);
    S.e = std::make_unique<Engine>(S.latent, &S.st);
    if (S.bits && S.bits->allocates_activations())
        S.observed = observe_points(S.start.model, S.tr, S.calibration(qc));

    // Optimiser state: the model's parameters, then the quantizers' steps and zero points.
    S.params = parameters(S.latent);
    S.pstate.resize(S.params.size());
    const std::vector<Linear*> ls = S.latent.linears();
    for (size_t i = 0; i < S.st.weight.size(); ++i)
        for (TrainQuantizer& t : S.st.weight[i])
            if (t.learn && t.q.type == QType::Uniform) S.qparams.push_back({&t, false, t.q.scale, 0, {}, ls[i]->weight.size() / S.st.weight[i].size()});
    add_act_qparams(S.st, S.per_image, S.qparams);
    S.opt.weight_decay = o.weight_decay;
    S.warm = long(std::floor(o.warmup * double(S.total) + 0.5));
    S.stepper = std::make_unique<Stepper>(*S.e, o.micro, o.jobs);
    S.g = std::make_unique<Grads>(S.latent);

    EpochStats e0;
    e0.train_loss = std::numeric_limits<double>::quiet_NaN();
    S.evaluate_epoch(e0);
}

QatRun::~QatRun() = default;
bool QatRun::done() const { return s_->step >= s_->total; }
const std::vector<EpochStats>& QatRun::history() const { return s_->res.history; }
const EvalResult& QatRun::fp32_validation() const { return s_->res.fp32_val; }
const std::vector<Allocation>& QatRun::allocations() const { return s_->res.allocations; }
QatResult QatRun::result() const { return s_->res; }

QatProgress QatRun::advance(size_t max_steps) {
    State& S = *s_;
    QatProgress pr;
    pr.epochs = S.o.epochs, pr.steps = S.total;
    for (size_t k = 0; k < max_steps && S.step < S.total; ++k) {
        if (S.step % S.steps_per_epoch == 0) {  // an epoch begins: its seeded order
            S.epoch = int(S.step / S.steps_per_epoch) + 1;
            S.order = S.epoch_order(S.epoch);
            S.loss_sum = 0, S.seen = 0;
        }
        if (S.bits && S.step > 0 && S.step % S.realloc_every == 0 && S.step < S.realloc_until)
            S.reallocate(), pr.allocated = &S.res.allocations.back();
        S.train_step();
        if (S.step % S.steps_per_epoch == 0) {  // and ends: evaluate it
            EpochStats es;
            es.epoch = S.epoch, es.steps = S.steps_per_epoch, es.train_loss = S.loss_sum / double(S.seen), es.lr = S.lr;
            S.evaluate_epoch(es);
            pr.finished = &S.res.history.back();
            break;
        }
    }
    pr.epoch = S.epoch, pr.step = S.step, pr.loss = S.seen ? S.loss_sum / double(S.seen) : 0.0, pr.seconds = S.seconds();
    return pr;
}

QatResult qat(const ViT& fp, const PreparedData& data, const QuantConfig& qc, const QatOptions& o,
              const std::function<bool(const QatProgress&)>& progress) {
    QatRun run(fp, data, qc, o);
    if (progress) {
        QatProgress p0;
        p0.epochs = o.epochs, p0.finished = &run.history().front(), p0.seconds = run.history().front().seconds;
        if (!run.allocations().empty()) p0.allocated = &run.allocations().front();
        if (!progress(p0)) throw std::runtime_error("cancelled");
    }
    while (!run.done()) {
        const QatProgress p = run.advance(1);
        if (progress && !progress(p)) throw std::runtime_error("cancelled");
    }
    return run.result();
}

nlohmann::json history_json(const std::vector<EpochStats>& h) {
    nlohmann::json a = nlohmann::json::array();
    auto num = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
    for (const EpochStats& e : h)
        a.push_back({{"epoch", e.epoch},
                     {"steps", e.steps},
                     {"train_loss", num(e.train_loss)},
                     {"val_top1", num(e.val_top1)},
                     {"val_worst", num(e.val_worst)},
                     {"val_worst_class", e.val_worst_class},
                     {"lr", e.lr},
                     {"seconds", e.seconds}});
    return a;
}

}  // namespace bitlens::train
