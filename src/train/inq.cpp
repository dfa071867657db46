#include "inq.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "format.h"
#include "rng.h"
#include "trainer.h"

namespace bitlens::train {

void InqOptions::validate() const {
    if (train.epochs < 1) throw std::runtime_error("inq: --epochs-per-step must be at least 1, found " + std::to_string(train.epochs));
    train.validate();
    if (partitions.empty()) throw std::runtime_error("inq: --partitions is empty (expected e.g. 50,75,87.5,100)");
    for (size_t i = 0; i < partitions.size(); ++i) {
        const double p = partitions[i];
        if (!(p > 0 && p <= 100))
            throw std::runtime_error("inq: partition " + std::to_string(i + 1) + " is " + fmt_g(p) +
                                     "%, expected a percentage in (0, 100]");
        if (i && !(p > partitions[i - 1]))
            throw std::runtime_error("inq: partitions must increase: " + fmt_g(partitions[i - 1]) + "% is followed by " + fmt_g(p) + "%");
    }
    if (partitions.back() != 100)
        throw std::runtime_error("inq: the last partition must be 100% (every weight quantized), found " +
                                 fmt_g(partitions.back()) + "%");
}

struct InqRun::State {
    InqOptions o;
    Split data;
    size_t C = 0;
    QuantizedViT start;                          // PTQ: its pow2 quantizers are the levels
    ViT latent;
    QatState st;                                 // activation quantizers only: the engine reads latent weights as they are
    std::unique_ptr<Engine> e;
    std::vector<float> teacher;
    std::vector<std::vector<uint8_t>> frozen;    // per Linear, per weight
    std::vector<std::vector<float>> level;       // per Linear, per weight: its level once frozen
    std::vector<Param> params;
    std::vector<AdamWState> pstate;
    std::vector<QParam> qparams;
    AdamW opt;
    std::unique_ptr<Stepper> stepper;
    std::unique_ptr<Grads> g;
    Batch batch;
    std::vector<size_t> order;
    size_t steps_per_epoch = 0, per_part = 0, iterations = 0;
    long warm = 0;
    size_t next = 0;          // the next partition to freeze
    bool training = false;    // retraining after partition next − 1
    size_t it = 0;            // training steps into this partition step
    size_t done_iters = 0;    // over the run
    double loss_sum = 0;
    size_t seen = 0;
    InqStep pending;
    std::vector<InqStep> history;
    EvalResult fp32_val;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();

    double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
    QuantizedViT snapshot() const;
    void evaluate(const QuantizedViT& q, double& top1, double& worst, int& worst_class) const;
    void freeze(double partition);
    void train_step();
};

QuantizedViT InqRun::State::snapshot() const {
    QuantizedViT q;
    q.cfg = start.cfg, q.wbits = start.wbits, q.wq = start.wq;
    q.model = latent;
    for (Linear* l : q.model.linears()) l->pack();
    q.act_on.assign(st.act.size(), false);
    q.aq.resize(st.act.size());
    for (size_t p = 0; p < st.act.size(); ++p)
        if (st.act[p]) q.act_on[p] = true, q.aq[p] = st.act[p]->q;
    return q;
}

void InqRun::State::evaluate(const QuantizedViT& q, double& top1, double& worst, int& worst_class) const {
    if (!data.val.n) {
        top1 = worst = std::numeric_limits<double>::quiet_NaN(), worst_class = -1;
        return;
    }
    const EvalResult r = evaluate_quantized(q, data.val, o.train.jobs);
    top1 = r.top1, worst_class = r.worst_class, worst = r.per_class[size_t(r.worst_class)];
}

// Per Linear: the largest magnitudes among the weights not yet frozen (ties: the lower index first), up
// to round(partition% of its weights), each set to its channel quantizer's level.
void InqRun::State::freeze(double partition) {
    const std::vector<Linear*> ls = latent.linears();
    std::vector<size_t> idx;
    for (size_t i = 0; i < ls.size(); ++i) {
        std::vector<float>& w = ls[i]->weight;
        const size_t n = w.size();
        const size_t target = partition >= 100 ? n : std::min(n, size_t(std::floor(double(n) * partition / 100.0 + 0.5)));
        idx.clear();
        for (size_t j = 0; j < n; ++j)
            if (!frozen[i][j]) idx.push_back(j);
        const size_t have = n - idx.size();
        if (target <= have) continue;
        const size_t take = target - have;
        std::partial_sort(idx.begin(), idx.begin() + long(take), idx.end(), [&](size_t a, size_t b) {
            const float fa = std::fabs(w[a]), fb = std::fabs(w[b]);
            return fa > fb || (fa == fb && a < b);
        });
        const std::vector<Quantizer>& qs = start.wq[i];
        const size_t per = n / qs.size();
        for (size_t k = 0; k < take; ++k) {
            const size_t j = idx[k];
            level[i][j] = w[j] = qs[j / per].fake(w[j]);
            frozen[i][j] = 1;
        }
    }
    e->refresh();
}

void InqRun::State::train_step() {
    const PreparedData& tr = data.train;
    const QatOptions& to = o.train;
    const size_t nb = batch.gather(tr, order, it % steps_per_epoch, to, teacher, C);
    const double loss = batch.step(*stepper, to, C, *g);
    loss_sum += loss, seen += nb;

    // Frozen weights take no gradient (and so no part in the clip's norm); the rest train in FP32.
    const std::vector<Linear*> gls = g->p.linears();
    for (size_t i = 0; i < gls.size(); ++i)
        for (size_t j = 0; j < frozen[i].size(); ++j)
            if (frozen[i][j]) gls[i]->weight[j] = 0;
    act_qparam_grads(st, *g, qparams, 0);
    std::vector<Param> grads = parameters(g->p);
    std::vector<std::pair<float*, size_t>> all;
    for (Param& p : grads) all.emplace_back(p.data, p.n);
    for (QParam& q : qparams) all.emplace_back(&q.grad, 1);
    if (to.clip > 0) clip_grad_norm(all, to.clip);
    const float lr = lr_at(long(it), long(per_part), warm, to.lr, to.min_lr);
    for (size_t i = 0; i < params.size(); ++i) adamw_step(opt, lr, params[i].data, grads[i].data, params[i].n, pstate[i], params[i].decay);
    step_qparams(opt, lr, qparams);
    // Adam's momentum (and weight decay) would still move a weight with a zero gradient: put it back.
    const std::vector<Linear*> ls = latent.linears();
    for (size_t i = 0; i < ls.size(); ++i)
        for (size_t j = 0; j < frozen[i].size(); ++j)
            if (frozen[i][j]) ls[i]->weight[j] = level[i][j];
    e->refresh();
    ++it, ++done_iters;
}

InqRun::InqRun(const ViT& fp, const PreparedData& train, const QuantConfig& qc, const InqOptions& o) : s_(std::make_unique<State>()) {
    State& S = *s_;
    o.validate();
    qc.validate();
    if (qc.weights != QType::Pow2)
        throw std::runtime_error(std::string("inq: weights must be pow2 (INQ's levels), the configuration has '") +
                                 qtype_name(qc.weights) + "'");
    if (qc.method != Method::Ptq) throw std::runtime_error("inq: starts from PTQ; method 'sos' does not apply");
    check_data(fp, train, "training set");
    S.o = o;
    const QatOptions& to = o.train;
    S.data = split_training(train, to, "inq");
    const PreparedData& tr = S.data.train;
    S.C = size_t(fp.cfg.num_classes);
    if (S.data.val.n) S.fp32_val = bitlens::evaluate(fp, S.data.val, to.jobs);

    S.start = quantize(fp, tr, qc, to.jobs);
    S.latent = qc.reparam ? reparameterised(fp, tr, draw_calibration(tr.n, size_t(qc.calib_size), qc.seed), qc.abits) : fp;
    S.st.weight.resize(S.start.wq.size());
    for (size_t p = 0; p < S.start.aq.size(); ++p)
        S.st.act.push_back(S.start.act_on[p] ? std::make_unique<TrainQuantizer>(S.start.aq[p]) : nullptr);
    S.e = std::make_unique<Engine>(S.latent, &S.st);
    for (const Linear* l : S.latent.linears()) S.frozen.emplace_back(l->weight.size(), 0), S.level.emplace_back(l->weight.size(), 0.0f);
    if (to.distill) S.teacher = teacher_logits(fp, tr, to.jobs);

    S.params = parameters(S.latent);
    add_act_qparams(S.st, observe_points(fp, tr, {0}).per_image, S.qparams);
    S.opt.weight_decay = to.weight_decay;
    S.steps_per_epoch = (tr.n + to.batch - 1) / to.batch;
    S.per_part = S.steps_per_epoch * size_t(to.epochs);
    S.iterations = S.per_part * size_t(std::count_if(o.partitions.begin(), o.partitions.end(), [](double p) { return p < 100; }));
    S.warm = long(std::floor(to.warmup * double(S.per_part) + 0.5));
    S.stepper = std::make_unique<Stepper>(*S.e, to.micro, to.jobs);
    S.g = std::make_unique<Grads>(S.latent);

    // Step 0: what INQ improves on, every weight at its level at once (PTQ with pow2 weights).
    InqStep s0;
    s0.partition = 100;
    for (const Linear* l : S.start.model.linears()) s0.frozen += l->weight.size();
    S.evaluate(S.start, s0.val_top1, s0.val_worst, s0.val_worst_class);
    s0.frozen_top1 = s0.val_top1, s0.frozen_worst = s0.val_worst;
    s0.train_loss = std::numeric_limits<double>::quiet_NaN();
    s0.seconds = S.seconds();
    S.history.push_back(s0);
}

InqRun::~InqRun() = default;
bool InqRun::done() const { return s_->next >= s_->o.partitions.size() && !s_->training; }
const std::vector<InqStep>& InqRun::history() const { return s_->history; }
size_t InqRun::iterations() const { return s_->iterations; }
const std::vector<std::vector<uint8_t>>& InqRun::frozen() const { return s_->frozen; }
const ViT& InqRun::weights() const { return s_->latent; }
const QuantizedViT& InqRun::ptq() const { return s_->start; }

InqProgress InqRun::advance(size_t max_steps) {
    State& S = *s_;
    InqProgress pr;
    pr.steps = S.o.partitions.size(), pr.iterations = S.iterations;
    if (!S.training && S.next < S.o.partitions.size()) {
        const double part = S.o.partitions[S.next];
        S.freeze(part);
        InqStep& ps = S.pending;
        ps = InqStep();
        ps.step = int(S.next) + 1, ps.partition = part;
        for (const std::vector<uint8_t>& f : S.frozen) ps.frozen += size_t(std::count(f.begin(), f.end(), uint8_t(1)));
        int wc = -1;
        S.evaluate(S.snapshot(), ps.frozen_top1, ps.frozen_worst, wc);
        ++S.next;
        if (part >= 100) {  // all frozen: nothing left to retrain
            ps.val_top1 = ps.frozen_top1, ps.val_worst = ps.frozen_worst, ps.val_worst_class = wc;
            ps.train_loss = std::numeric_limits<double>::quiet_NaN(), ps.seconds = S.seconds();
            S.history.push_back(ps);
            pr.finished = &S.history.back();
        } else {
            S.training = true, S.it = 0, S.loss_sum = 0, S.seen = 0;
            S.pstate.assign(S.params.size(), AdamWState());
            for (QParam& q : S.qparams) q.st = AdamWState();
        }
    }
    for (size_t k = 0; S.training && k < max_steps; ++k) {
        if (S.it % S.steps_per_epoch == 0)  // an epoch begins: its seeded order (one stream over the whole run)
            S.order = draw_calibration(S.data.train.n, S.data.train.n,
                                       derive_seed(S.o.train.seed, uint64_t(S.done_iters / S.steps_per_epoch) + 1));
        S.train_step();
        if (S.it == S.per_part) {
            InqStep& ps = S.pending;
            S.evaluate(S.snapshot(), ps.val_top1, ps.val_worst, ps.val_worst_class);
            ps.steps = S.per_part, ps.train_loss = S.loss_sum / double(S.seen), ps.seconds = S.seconds();
            S.history.push_back(ps);
            S.training = false;
            pr.finished = &S.history.back();
        }
    }
    pr.step = S.history.size() - 1, pr.iteration = S.done_iters, pr.loss = S.seen ? S.loss_sum / double(S.seen) : 0.0;
    pr.seconds = S.seconds();
    return pr;
}

InqResult InqRun::result() const {
    if (!done()) throw std::logic_error("inq: result() before the last partition step");
    const State& S = *s_;
    InqResult r;
    r.q = S.snapshot();
    r.history = S.history;
    r.train_images = S.data.train.n, r.val_images = S.data.val.n;
    r.fp32_val = S.fp32_val;
    return r;
}

InqResult inq(const ViT& fp, const PreparedData& train, const QuantConfig& qc, const InqOptions& o,
              const std::function<bool(const InqProgress&)>& progress) {
    InqRun run(fp, train, qc, o);
    if (progress) {
        InqProgress p0;
        p0.steps = o.partitions.size(), p0.iterations = run.iterations(), p0.finished = &run.history().front();
        p0.seconds = run.history().front().seconds;
        if (!progress(p0)) throw std::runtime_error("cancelled");
    }
    while (!run.done()) {
        const InqProgress p = run.advance(1);
        if (progress && !progress(p)) throw std::runtime_error("cancelled");
    }
    return run.result();
}

nlohmann::json inq_history_json(const std::vector<InqStep>& h) {
    nlohmann::json a = nlohmann::json::array();
    auto num = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
    for (const InqStep& s : h)
        a.push_back({{"step", s.step},
                     {"partition", s.partition},
                     {"frozen", s.frozen},
                     {"frozen_top1", num(s.frozen_top1)},
                     {"frozen_worst", num(s.frozen_worst)},
                     {"val_top1", num(s.val_top1)},
                     {"val_worst", num(s.val_worst)},
                     {"val_worst_class", s.val_worst_class},
                     {"steps", s.steps},
                     {"train_loss", num(s.train_loss)},
                     {"seconds", s.seconds}});
    return a;
}

}  // namespace bitlens::train
