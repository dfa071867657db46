#include "trainer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "loss.h"
#include "parallel.h"
#include "rng.h"

namespace bitlens::train {

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

Split split_training(const PreparedData& data, const QatOptions& o, const std::string& what) {
    const size_t N = o.limit ? std::min(o.limit, data.n) : data.n;
    const std::vector<size_t> perm = draw_calibration(N, N, derive_seed(o.seed, 0x73706C6974ull));  // "split"
    size_t nval = size_t(std::floor(o.val_split * double(N)));
    if (o.val_split > 0 && nval == 0) nval = 1;
    if (nval >= N)
        throw std::runtime_error(what + ": a validation split of " + std::to_string(o.val_split) + " of " + std::to_string(N) +
                                 " images leaves no training images");
    Split s;
    s.val = subset(data, std::vector<size_t>(perm.begin(), perm.begin() + long(nval)));
    s.train = subset(data, std::vector<size_t>(perm.begin() + long(nval), perm.end()));
    return s;
}

std::vector<float> teacher_logits(const ViT& fp, const PreparedData& d, int jobs) {
    const size_t C = size_t(fp.cfg.num_classes);
    std::vector<float> out(d.n * C);
    parallel_for(d.n, jobs, [&](size_t b, size_t e, int) {
        Workspace ws;
        for (size_t i = b; i < e; ++i) fp.forward(&d.inputs[i * d.input_size], &out[i * C], ws);
    });
    return out;
}

double distill_loss(const QatOptions& o, const float* logits, const int* labels, const float* teacher, size_t count, size_t C,
                    float share, float* dl) {
    const float w = o.distill ? o.distill_weight : 0.0f;
    double l = 0;
    if (w < 1) l += double(1 - w) * cross_entropy(logits, labels, count, C, o.label_smoothing, dl, share * (1 - w));
    if (w > 0) {
        std::vector<float> dk(count * C);
        l += double(w) * kl_distill(logits, teacher, count, C, o.temperature, dk.data(), share * w);
        for (size_t i = 0; i < count * C; ++i) dl[i] = w < 1 ? dl[i] + dk[i] : dk[i];
    }
    return l * double(count);
}

size_t Batch::gather(const PreparedData& tr, const std::vector<size_t>& order, size_t index, const QatOptions& o,
                     const std::vector<float>& teacher, size_t C) {
    const size_t first = index * o.batch;
    n = std::min(o.batch, tr.n - first);
    images.resize(o.batch * tr.input_size), labels.resize(o.batch), tlog.resize(o.batch * C);
    for (size_t i = 0; i < n; ++i) {
        const size_t src = order[first + i];
        std::copy_n(&tr.inputs[src * tr.input_size], tr.input_size, &images[i * tr.input_size]);
        labels[i] = tr.labels[src];
        if (o.distill) std::copy_n(&teacher[src * C], C, &tlog[i * C]);
    }
    return n;
}

double Batch::step(Stepper& sp, const QatOptions& o, size_t C, Grads& g) const {
    return sp.step(images.data(), n, [&](const float* logits, size_t f, size_t count, float* dl) {
        return distill_loss(o, logits, &labels[f], &tlog[f * C], count, C, float(count) / float(n), dl);
    }, g);
}

void add_act_qparams(QatState& st, const std::vector<size_t>& per_image, std::vector<QParam>& out) {
    for (size_t p = 0; p < st.act.size(); ++p) {
        TrainQuantizer* t = st.act[p].get();
        if (!t || !t->learn || t->q.type != QType::Uniform) continue;
        out.push_back({t, false, t->q.scale, 0, {}, per_image[p]});
        if (!t->q.symmetric) out.push_back({t, true, t->zero_f, 0, {}, per_image[p]});
    }
}

void act_qparam_grads(const QatState& st, const Grads& g, std::vector<QParam>& qp, size_t qi) {
    for (size_t p = 0; p < st.act.size(); ++p) {
        const TrainQuantizer* t = st.act[p].get();
        if (!t || !t->learn || t->q.type != QType::Uniform) continue;
        qp[qi].grad = float(g.act_scale[p] * double(t->grad_scale(qp[qi].per_step))), ++qi;
        if (!t->q.symmetric) qp[qi].grad = float(g.act_zero[p] * double(t->grad_scale(qp[qi].per_step))), ++qi;
    }
}

void step_qparams(const AdamW& opt, float lr, std::vector<QParam>& qp) {
    for (QParam& q : qp) {
        adamw_step(opt, lr, &q.value, &q.grad, 1, q.st, false);
        if (q.zero) q.tq->set_zero(q.value);
        else q.tq->set_scale(q.value), q.value = q.tq->q.scale;
    }
}

}  // namespace bitlens::train
