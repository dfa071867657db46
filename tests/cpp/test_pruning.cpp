// Pruning's measurements and recovery (src/train/pruning.h): Taylor importance is the derivative of the loss by a
// head's (unit's) mask, checked by central differences; importance and a distilled recovery give the same bits on
// 1 and 2 threads; the feature-distillation gradient injected into the backward matches finite differences on a
// pruned model; recovery raises the pruned model's held-out accuracy; bad options are clear errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "loss.h"
#include "prune.h"
#include "pruning.h"
#include "test_util.h"

using namespace bitlens;
using namespace bitlens::test;
using namespace bitlens::train;

namespace {

// Multiplies one group of columns (a head's context, a unit) at one point by `s`.
struct ScaleHook : ActivationHook {
    int point = -1;
    size_t first = 0, count = 0;
    float s = 1;
    void on_activation(int p, float* x, size_t rows, size_t, size_t ld) override {
        if (p != point) return;
        for (size_t r = 0; r < rows; ++r)
            for (size_t c = first; c < first + count; ++c) x[r * ld + c] = x[r * ld + c] * s;
    }
};

double ce_of(const ViT& m, const PreparedData& d, size_t i, ActivationHook* hook) {
    Workspace ws;
    const size_t C = size_t(m.cfg.num_classes);
    std::vector<float> logits(C), dl(C);
    m.forward(&d.inputs[i * d.input_size], logits.data(), ws, hook);
    return cross_entropy(logits.data(), &d.labels[i], 1, C, 0.0f, dl.data());
}

bool same_params(ViT a, ViT b) {
    std::vector<Param> pa = parameters(a), pb = parameters(b);
    if (pa.size() != pb.size()) return false;
    for (size_t i = 0; i < pa.size(); ++i)
        if (pa[i].n != pb[i].n || std::memcmp(pa[i].data, pb[i].data, pa[i].n * sizeof(float)) != 0) return false;
    return true;
}

}  // namespace

TEST_CASE("pruning: Taylor importance of a head / unit on one image = |d loss / d its mask| by central differences") {
    for (const bool hf : {true, false}) {
        CAPTURE(hf);
        const ViT& m = hf ? shipped().hf.vit : shipped().tm.vit;
        const PreparedData& d = hf ? shipped().hf_data : shipped().tm_data;
        for (size_t img : {size_t(0), size_t(7)}) {
            const PreparedData one = subset(d, {img});
            const ImportanceScores s = importance(m, one, Importance::Taylor, 0, 16, 1);
            REQUIRE(s.heads.size() == m.blocks.size());
            // |d loss / d s| at s = 1, s scaling `count` columns from `first` at `point`, by central differences
            auto fd_of = [&](int point, size_t first, size_t count) {
                const float eps = 1e-2f;
                ScaleHook z;
                z.point = point, z.first = first, z.count = count;
                z.s = 1 + eps;
                const double up = ce_of(m, d, img, &z);
                z.s = 1 - eps;
                return std::fabs((up - ce_of(m, d, img, &z)) / (2.0 * eps));
            };
            const size_t dh = size_t(m.cfg.head_dim());
            for (size_t b : {size_t(0), m.blocks.size() - 1}) {
                CAPTURE(b);
                for (size_t h = 0; h < s.heads[b].size(); ++h) {
                    CAPTURE(h);
                    const double fd = fd_of(m.point_index(int(b), ViT::kProjIn), h * dh, dh);
                    CHECK(std::fabs(fd - s.heads[b][h]) <= 2e-2 * fd + 2e-5);
                }
                for (size_t u : {size_t(0), size_t(5), s.units[b].size() - 1}) {
                    CAPTURE(u);
                    const double fd = fd_of(m.point_index(int(b), ViT::kFc2In), u, 1);
                    CHECK(std::fabs(fd - s.units[b][u]) <= 2e-2 * fd + 2e-5);
                }
            }
        }
    }
}

TEST_CASE("pruning: importance (taylor and mask) gives the same numbers on 1 and 2 threads; mask = the loss increase when zeroed") {
    const ViT& m = shipped().hf.vit;
    const PreparedData& d = shipped().hf_data;
    for (Importance method : {Importance::Taylor, Importance::Mask}) {
        CAPTURE(importance_name(method));
        const size_t n = method == Importance::Mask ? 6 : 40;
        const ImportanceScores a = importance(m, d, method, n, 8, 1), b = importance(m, d, method, n, 8, 2);
        CHECK(a.images == n);
        CHECK(a.heads == b.heads);
        CHECK(a.units == b.units);
        CHECK(a.heads[1].size() == size_t(m.cfg.heads));
        CHECK(a.units[1].size() == size_t(m.cfg.mlp_dim));
        if (method == Importance::Mask) {  // head 2 of block 1, by hand
            ScaleHook z;
            z.point = m.point_index(1, ViT::kProjIn), z.first = 2 * size_t(m.cfg.head_dim()), z.count = size_t(m.cfg.head_dim()), z.s = 0;
            double inc = 0;
            for (size_t i = 0; i < n; ++i) inc += ce_of(m, d, i, &z) - ce_of(m, d, i, nullptr);
            CHECK(a.heads[1][2] == doctest::Approx(inc / double(n)).epsilon(1e-9));
        }
    }
}

TEST_CASE("pruning: keep_most_important keeps round(ratio·n) of the highest scores per layer, ties to the lower index") {
    const std::vector<std::vector<double>> s = {{0.1, 0.4, 0.4, 0.2}, {3, 1, 2, NAN}};
    CHECK(keep_most_important(s, 0.5, "heads") == std::vector<std::vector<int>>{{1, 2}, {0, 2}});
    CHECK(keep_most_important(s, 0.25, "heads") == std::vector<std::vector<int>>{{1}, {0}});
    CHECK(keep_most_important(s, 1.0, "heads") == std::vector<std::vector<int>>{{0, 1, 2, 3}, {0, 1, 2, 3}});
    CHECK(keep_most_important(s, 0.7, "heads") == std::vector<std::vector<int>>{{1, 2, 3}, {0, 1, 2}});
    CHECK_THROWS_WITH(keep_most_important(s, 0.1, "heads"),
                      doctest::Contains("keeping 0.1 of the 4 heads of layer 0 leaves none (at least one must stay"));
    for (double bad : {0.0, -0.5, 1.5, double(NAN)})
        CHECK_THROWS_WITH(keep_most_important(s, bad, "MLP units"), doctest::Contains("fraction of MLP units to keep must be in (0, 1]"));
}

TEST_CASE("pruning: the feature-distillation gradient (block outputs' MSE, injected into the backward) matches central differences on a pruned model") {
    const ViT& m0 = shipped().hf.vit;
    const PreparedData& d = shipped().hf_data;
    const ViT teacher = m0;
    ViT m = prune_structure(m0, {{0, 3}, {1}, {0, 1, 2}, {2}}, {});
    const size_t n = 6, T = size_t(m.cfg.tokens()), D = size_t(m.cfg.hidden), C = size_t(m.cfg.num_classes);
    // The teacher's outputs of blocks 0 and 2 for the n images (the targets).
    ViT tcopy = teacher;
    Engine te(tcopy);
    Acts ta;
    te.forward(ta, d.inputs.data(), n);
    const std::vector<size_t> feat = {0, 2};
    const float fw = 0.7f;
    auto run = [&](Engine& e, Grads& g) {
        Stepper sp(e, n, 1);
        sp.set_feature_loss([&](const Acts& a, const float*, size_t, size_t count, std::vector<std::vector<float>>& dfeat) {
            dfeat.assign(m.blocks.size(), {});
            double l = 0;
            for (size_t b : feat) {
                dfeat[b].resize(count * T * D);
                l += fw * mse(block_output(a, b), block_output(ta, b), count * T * D, dfeat[b].data(), fw) * double(count);
            }
            return l;
        });
        return sp.step(d.inputs.data(), n, [&](const float* logits, size_t, size_t count, float* dl) {
            return cross_entropy(logits, d.labels.data(), count, C, 0.0f, dl) * double(count);
        }, g) / double(n);
    };
    Engine e(m);
    Grads g(m);
    run(e, g);
    std::vector<Param> ps = parameters(m), gs = parameters(g.p);
    uint64_t seed = 7;
    for (size_t i = 0; i < ps.size(); ++i) {
        if (ps[i].name.find("blocks.3") != std::string::npos || ps[i].name.rfind("head", 0) == 0) continue;  // no CE-only tensors needed
        CAPTURE(ps[i].name);
        std::vector<float> v(ps[i].n);
        double norm = 0, an = 0;
        for (float& x : v) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            x = float(int64_t(seed >> 40) - (1 << 23)) / float(1 << 23);
            norm += double(x) * x;
        }
        for (size_t j = 0; j < v.size(); ++j) v[j] = float(v[j] / std::sqrt(norm)), an += double(gs[i].data[j]) * v[j];
        std::vector<float> saved(ps[i].data, ps[i].data + ps[i].n);
        const float eps = 1e-2f;
        auto at = [&](float s) {
            for (size_t j = 0; j < v.size(); ++j) ps[i].data[j] = saved[j] + s * v[j];
            Engine e2(m);
            Grads g2(m);
            return run(e2, g2);
        };
        // Richardson: the MSE's curvature makes the plain central difference's O(eps²) error visible here
        const double fd1 = (at(eps) - at(-eps)) / (2.0 * eps), fd2 = (at(eps / 2) - at(-eps / 2)) / double(eps);
        const double fd = (4 * fd2 - fd1) / 3;
        std::copy(saved.begin(), saved.end(), ps[i].data);
        CHECK(std::fabs(fd - an) <= 1e-2 * std::fabs(an) + 1e-4);  // 1e-4: float forward noise, amplified by Richardson
    }
}

TEST_CASE("pruning: keep 1.0 without recovery is the identity; a distilled recovery is the same for 1 and 2 threads and repairs the pruned model") {
    const ViT& m = shipped().hf.vit;
    const PreparedData& d = shipped().hf_data;
    PruneOptions o;
    o.train.epochs = 0;
    const PruneResult same = prune(m, d, o);
    CHECK(same.parameters_after == same.parameters_before);
    CHECK_FALSE(same.model.cfg.pruned());
    for (size_t i = 0; i < 4; ++i) {
        const std::vector<float> x(d.inputs.begin() + long(i * d.input_size), d.inputs.begin() + long((i + 1) * d.input_size));
        CHECK(same_bits(same.model.forward(x), m.forward(x)));
    }

    o.keep_heads = 0.5, o.keep_mlp = 0.5;
    o.importance_images = 256;
    o.train.epochs = 1, o.train.batch = 32, o.train.micro = 8, o.train.val_split = 0.25, o.train.distill = true;
    o.feature_blocks = 2;
    o.train.jobs = 1;
    const PruneResult a = prune(m, d, o);
    o.train.jobs = 2;
    int seen = 0;
    const PruneResult b = prune(m, d, o, [&](const PruneProgress& p) { return ++seen, p.step <= p.steps; });
    CHECK(seen == 1 + 24);  // the pruned start, then one call per step (ceil(750 / 32) = 24 steps)
    CHECK(a.keep_heads == b.keep_heads);
    CHECK(a.history[1].train_loss == b.history[1].train_loss);
    CHECK(same_params(a.model, b.model));
    CHECK(a.parameters_after <= a.parameters_before * 6 / 10);
    for (size_t l = 0; l < m.blocks.size(); ++l) CHECK(a.model.cfg.block_heads(l) == m.cfg.heads / 2);
    REQUIRE(a.history.size() == 2);
    CHECK(a.history[1].val_top1 > a.history[0].val_top1 + 0.05);  // the pruned start loses a lot; one epoch brings much back
    CHECK(a.best_epoch == 1);
    CHECK_THROWS_WITH(prune(m, d, o, [](const PruneProgress&) { return false; }), "cancelled");
}

TEST_CASE("pruning: bad options and a model without blocks are clear errors") {
    const ViT& m = shipped().hf.vit;
    const PreparedData& d = shipped().hf_data;
    auto with = [](auto f) {
        PruneOptions o;
        o.train.epochs = 0;
        f(o);
        return o;
    };
    CHECK_THROWS_WITH(prune(m, d, with([](PruneOptions& o) { o.keep_heads = 0; })), doctest::Contains("--keep-heads must be a fraction in (0, 1], found 0"));
    CHECK_THROWS_WITH(prune(m, d, with([](PruneOptions& o) { o.keep_mlp = 1.5; })), doctest::Contains("--keep-mlp must be a fraction in (0, 1], found 1.5"));
    CHECK_THROWS_WITH(prune(m, d, with([](PruneOptions& o) { o.keep_heads = 0.1; })), doctest::Contains("of layer 0 leaves none"));
    CHECK_THROWS_WITH(prune(m, d, with([](PruneOptions& o) { o.train.epochs = -1; })), doctest::Contains("--epochs must be at least 0"));
    CHECK_THROWS_WITH(prune(m, d, with([](PruneOptions& o) { o.feature_weight = -1; })), doctest::Contains("--feature-weight must be"));
    CHECK_THROWS_WITH(parse_importance("fisher"), doctest::Contains("importance 'fisher' is not known (expected taylor or mask)"));
    ViT none = m;
    none.blocks.clear();
    CHECK_THROWS_WITH(prune(none, d, with([](PruneOptions&) {})), doctest::Contains("no transformer blocks"));
}
