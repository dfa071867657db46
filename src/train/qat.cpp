#include "qat.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "rng.h"
#include "loss.h"
#include "optim.h"
#include "parallel.h"

namespace bitlens::train {

namespace {

void check_data(const ViT& m, const PreparedData& d, const std::string& what) {
    if (d.n == 0) throw std::runtime_error(what + " has no images");
    const size_t want = size_t(m.cfg.channels) * size_t(m.cfg.image_h) * size_t(m.cfg.image_w);
    if (d.input_size != want)
        throw std::runtime_error(what + ": images have " + std::to_string(d.input_size) + " values each, the model expects " +
                                 std::to_string(m.cfg.channels) + "x" + std::to_string(m.cfg.image_h) + "x" +
                                 std::to_string(m.cfg.image_w));
    for (size_t i = 0; i < d.n; ++i)
        if (d.labels[i] < 0 || d.labels[i] >= m.cfg.num_classes)
            throw std::runtime_error(what + ": image " + std::to_string(i) + " has label " + std::to_string(d.labels[i]) +
                                     ", outside the model's " + std::to_string(m.cfg.num_classes) + " classes");
}

}  // namespace

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
}

namespace {

// The trainable quantizer parameters beside the model's: per Linear per channel a step, per point a step
// and a zero point, each with its AdamW state and gradient.
struct QParam {
    TrainQuantizer* tq;
    bool zero;          // the zero point (else the step)
    float value, grad = 0;
    AdamWState st;
};

}  // namespace

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

struct QatRun::State {
    QatOptions o;
    PreparedData tr, val;
    size_t C = 0;
    QuantizedViT start;
    ViT latent;
    QatState st;
    std::unique_ptr<Engine> e;
    std::vector<float> teacher;
    std::vector<Param> params;
    std::vector<AdamWState> pstate;
    std::vector<QParam> qparams;
    std::vector<size_t> per_item;  // LSQ: values a quantizer sees per image (activations) or in its channel (weights)
    AdamW opt;
    size_t steps_per_epoch = 0, total = 0, step = 0;
    long warm = 0;
    std::unique_ptr<Stepper> stepper;
    std::unique_ptr<Grads> g;
    std::vector<float> images, tlog;
    std::vector<int> labels;
    std::vector<size_t> order;     // this epoch's image order
    int epoch = 0;                 // the epoch in progress (0 before the first step)
    double loss_sum = 0;
    size_t seen = 0;
    float lr = 0;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    QatResult res;

    double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
    void evaluate_epoch(EpochStats es);
    void train_step();
};

void QatRun::State::evaluate_epoch(EpochStats es) {
    QuantizedViT q = snapshot(start.cfg, start.wbits, *e, st);
    if (val.n) {
        const EvalResult r = evaluate_quantized(q, val, o.jobs);
        es.val_top1 = r.top1, es.val_worst_class = r.worst_class, es.val_worst = r.per_class[size_t(r.worst_class)];
    } else {
        es.val_top1 = es.val_worst = std::numeric_limits<double>::quiet_NaN();
    }
    es.seconds = seconds();
    const bool better = res.history.empty() || !val.n || es.val_top1 > res.history[size_t(res.best_epoch)].val_top1;
    res.history.push_back(es);
    if (better) res.q = std::move(q), res.best_epoch = es.epoch;
}

void QatRun::State::train_step() {
    const size_t s = step % steps_per_epoch, first = s * o.batch, nb = std::min(o.batch, tr.n - first);
    for (size_t i = 0; i < nb; ++i) {
        const size_t src = order[first + i];
        std::copy_n(&tr.inputs[src * tr.input_size], tr.input_size, &images[i * tr.input_size]);
        labels[i] = tr.labels[src];
        if (o.distill) std::copy_n(&teacher[src * C], C, &tlog[i * C]);
    }
    // loss = w·KL(teacher ‖ student) + (1 − w)·CE(labels), each a mean over the batch.
    const float w = o.distill ? o.distill_weight : 0.0f;
    const double loss = stepper->step(images.data(), nb, [&](const float* logits, size_t f, size_t count, float* dl) {
        const float share = float(count) / float(nb);
        double l = 0;
        if (w < 1) l += double(1 - w) * cross_entropy(logits, &labels[f], count, C, o.label_smoothing, dl, share * (1 - w));
        if (w > 0) {
            std::vector<float> dk(count * C);
            l += double(w) * kl_distill(logits, &tlog[f * C], count, C, o.temperature, dk.data(), share * w);
            for (size_t i = 0; i < count * C; ++i) dl[i] = w < 1 ? dl[i] + dk[i] : dk[i];
        }
        return l * double(count);
    }, *g);
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
            if (t.learn && t.q.type == QType::Uniform) qparams[qi].grad = float(ds * double(t.grad_scale(per_item[qi]))), ++qi;
        }
    }
    for (size_t p = 0; p < st.act.size(); ++p) {
        const TrainQuantizer* t = st.act[p].get();
        if (!t || !t->learn || t->q.type != QType::Uniform) continue;
        qparams[qi].grad = float(g->act_scale[p] * double(t->grad_scale(per_item[qi]))), ++qi;
        if (!t->q.symmetric) qparams[qi].grad = float(g->act_zero[p] * double(t->grad_scale(per_item[qi]))), ++qi;
    }

    std::vector<Param> grads = parameters(g->p);
    std::vector<std::pair<float*, size_t>> all;
    for (Param& p : grads) all.emplace_back(p.data, p.n);
    for (QParam& q : qparams) all.emplace_back(&q.grad, 1);
    if (o.clip > 0) clip_grad_norm(all, o.clip);
    lr = lr_at(long(step), long(total), warm, o.lr, o.min_lr);
    for (size_t i = 0; i < params.size(); ++i) adamw_step(opt, lr, params[i].data, grads[i].data, params[i].n, pstate[i], params[i].decay);
    for (QParam& q : qparams) {
        adamw_step(opt, lr, &q.value, &q.grad, 1, q.st, false);
        if (q.zero) q.tq->set_zero(q.value);
        else q.tq->set_scale(q.value), q.value = q.tq->q.scale;
    }
    e->refresh();
    ++step;
}

QatRun::QatRun(const ViT& fp, const PreparedData& data, const QuantConfig& qc, const QatOptions& o) : s_(std::make_unique<State>()) {
    State& S = *s_;
    o.validate();
    qc.validate();
    check_data(fp, data, "training set");
    S.o = o;

    // Split: a seeded permutation; the first val_split of it is held out.
    const size_t N = o.limit ? std::min(o.limit, data.n) : data.n;
    const std::vector<size_t> perm = draw_calibration(N, N, derive_seed(o.seed, 0x73706C6974ull));  // "split"
    size_t nval = size_t(std::floor(o.val_split * double(N)));
    if (o.val_split > 0 && nval == 0) nval = 1;
    if (nval >= N)
        throw std::runtime_error("qat: a validation split of " + std::to_string(o.val_split) + " of " + std::to_string(N) +
                                 " images leaves no training images");
    S.val = subset(data, std::vector<size_t>(perm.begin(), perm.begin() + long(nval)));
    S.tr = subset(data, std::vector<size_t>(perm.begin() + long(nval), perm.end()));
    S.C = size_t(fp.cfg.num_classes);
    S.res.train_images = S.tr.n, S.res.val_images = S.val.n;
    if (S.val.n) S.res.fp32_val = evaluate(fp, S.val, o.jobs);

    // Start from PTQ (calibration drawn from the training part); train the FP32 weights it quantized.
    S.start = quantize(fp, S.tr, qc, o.jobs);
    S.latent = qc.reparam ? reparameterised(fp, S.tr, draw_calibration(S.tr.n, size_t(qc.calib_size), qc.seed), qc.abits) : fp;
    for (const std::vector<Quantizer>& wq : S.start.wq) {
        S.st.weight.emplace_back();
        for (const Quantizer& q : wq) S.st.weight.back().emplace_back(q);
    }
    for (size_t p = 0; p < S.start.aq.size(); ++p)
        S.st.act.push_back(S.start.act_on[p] ? std::make_unique<TrainQuantizer>(S.start.aq[p]) : nullptr);
    S.e = std::make_unique<Engine>(S.latent, &S.st);

    // The teacher: the FP32 model's logits for every training image, once.
    if (o.distill) {
        S.teacher.resize(S.tr.n * S.C);
        parallel_for(S.tr.n, o.jobs, [&](size_t b, size_t en, int) {
            Workspace ws;
            for (size_t i = b; i < en; ++i) fp.forward(&S.tr.inputs[i * S.tr.input_size], &S.teacher[i * S.C], ws);
        });
    }

    // Optimiser state: the model's parameters, then the quantizers' steps and zero points.
    S.params = parameters(S.latent);
    S.pstate.resize(S.params.size());
    const std::vector<Linear*> ls = S.latent.linears();
    for (size_t i = 0; i < S.st.weight.size(); ++i)
        for (TrainQuantizer& t : S.st.weight[i])
            if (t.learn && t.q.type == QType::Uniform)
                S.qparams.push_back({&t, false, t.q.scale, 0, {}}), S.per_item.push_back(ls[i]->weight.size() / S.st.weight[i].size());
    const PointSamples shape = observe_points(fp, S.tr, {0});
    for (size_t p = 0; p < S.st.act.size(); ++p) {
        TrainQuantizer* t = S.st.act[p].get();
        if (!t || !t->learn || t->q.type != QType::Uniform) continue;
        S.qparams.push_back({t, false, t->q.scale, 0, {}}), S.per_item.push_back(shape.per_image[p]);
        if (!t->q.symmetric) S.qparams.push_back({t, true, t->zero_f, 0, {}}), S.per_item.push_back(shape.per_image[p]);
    }
    S.opt.weight_decay = o.weight_decay;
    S.steps_per_epoch = (S.tr.n + o.batch - 1) / o.batch, S.total = S.steps_per_epoch * size_t(o.epochs);
    S.warm = long(std::floor(o.warmup * double(S.total) + 0.5));
    S.stepper = std::make_unique<Stepper>(*S.e, o.micro, o.jobs);
    S.g = std::make_unique<Grads>(S.latent);
    S.images.resize(o.batch * S.tr.input_size), S.tlog.resize(o.batch * S.C), S.labels.resize(o.batch);

    EpochStats e0;
    e0.train_loss = std::numeric_limits<double>::quiet_NaN();
    S.evaluate_epoch(e0);
}

QatRun::~QatRun() = default;
bool QatRun::done() const { return s_->step >= s_->total; }
const std::vector<EpochStats>& QatRun::history() const { return s_->res.history; }
const EvalResult& QatRun::fp32_validation() const { return s_->res.fp32_val; }
QatResult QatRun::result() const { return s_->res; }

QatProgress QatRun::advance(size_t max_steps) {
    State& S = *s_;
    QatProgress pr;
    pr.epochs = S.o.epochs, pr.steps = S.total;
    for (size_t k = 0; k < max_steps && S.step < S.total; ++k) {
        if (S.step % S.steps_per_epoch == 0) {  // an epoch begins: its seeded order
            S.epoch = int(S.step / S.steps_per_epoch) + 1;
            S.order = draw_calibration(S.tr.n, S.tr.n, derive_seed(S.o.seed, uint64_t(S.epoch)));
            S.loss_sum = 0, S.seen = 0;
        }
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
