// QBitOpt (bit-widths reallocated during QAT under a budget, src/train/qbitopt.h): its pieces (a quantizer
// moved to another width keeps its range, the probe's sums, the allocator on the shipped models' shapes), a
// real run on the shipped HF model (the budget holds after every allocation, the bits do move, 1 and 2
// threads give the same bits), the start equal to plain QAT with the allocation given as layer_bits /
// point_bits, and bad options as clear errors. The knapsack itself (exact, never over budget, brute force)
// is tested in test_mixed.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "export.h"
#include "mixed.h"
#include "qat.h"
#include "qbitopt.h"
#include "test_util.h"

using namespace bitlens;
using namespace bitlens::test;
using namespace bitlens::train;

namespace {

// 200 shipped training images, prepared for the HF model once.
const PreparedData& train_images() {
    static const PreparedData d = prepare(load_dataset(src_path("models/data/fmnist-train-5k-images-idx3-ubyte.gz")), shipped().hf.vit.cfg, 200);
    return d;
}

// Small and quick: 180 training images in batches of 16 (12 steps an epoch) of 2 micro-batches (so that 2
// threads share every step), 2 batches per sensitivity pass.
QatOptions small_run() {
    QatOptions o;
    o.epochs = 2, o.batch = 16, o.micro = 8, o.lr = 2e-4f;
    o.budget = 3, o.abudget = 3;
    o.fisher_batches = 2;
    return o;
}

QuantConfig all_edges() {
    QuantConfig qc;
    qc.edges_8bit = false;
    return qc;
}

}  // namespace

TEST_CASE("qbitopt: a uniform quantizer moved to another width keeps its range, and moved back is the same") {
    Quantizer a;
    a.type = QType::Uniform, a.bits = 8, a.symmetric = false, a.scale = 0.01f, a.qmin = 0, a.qmax = 255, a.zero = 100;
    Quantizer s = a;
    s.symmetric = true, s.qmin = -127, s.qmax = 127, s.zero = 0;
    for (const Quantizer& q : {a, s}) {
        CAPTURE(q.symmetric);
        const TrainQuantizer t(q);
        const TrainQuantizer t4 = with_bits(t, 4), back = with_bits(t4, 8);
        CHECK(t4.q.bits == 4);
        CHECK(t4.q.qmax - t4.q.qmin == (q.symmetric ? 14 : 15));
        const double lo = (q.qmin - t.zero_f) * double(q.scale), hi = (q.qmax - t.zero_f) * double(q.scale);
        CHECK((t4.q.qmin - t4.zero_f) * double(t4.q.scale) == doctest::Approx(lo).epsilon(1e-6));
        CHECK((t4.q.qmax - t4.zero_f) * double(t4.q.scale) == doctest::Approx(hi).epsilon(1e-6));
        CHECK(back.q.scale == doctest::Approx(q.scale).epsilon(1e-6));
        CHECK(back.q.zero == q.zero);
        CHECK(back.q.qmin == q.qmin);
        CHECK(back.q.qmax == q.qmax);
    }
    CHECK(with_bits(TrainQuantizer(a), 4).q.zero == 6);  // 100·15/255 = 5.88: the code nearest the real zero
    CHECK_THROWS_WITH(with_bits(TrainQuantizer(fit_log2({0.1f, 0.5f, 1.0f}, 4)), 3), doctest::Contains("only a uniform quantizer"));
}

TEST_CASE("qbitopt: the probe's sums are ½ Σ dy²·(Q_b(x) − x)² per candidate, over strided rows (full lanes and a tail)") {
    const std::vector<float> samples = {-1.0f, -0.3f, 0.0f, 0.2f, 0.7f, 1.5f};
    std::vector<std::vector<Quantizer>> cand(3);
    cand[1] = {fit_uniform(samples, 2, false, RangeMethod::MinMax), fit_uniform(samples, 5, false, RangeMethod::MinMax)};
    NoiseProbe probe(cand);
    // 3 rows of 11 values (8 in the lanes, 3 in the tail), row stride 13 (the last 2 columns belong to another point).
    const size_t rows = 3, cols = 11, ld = 13;
    std::vector<float> x(rows * ld, 99.0f), dy(rows * ld, 99.0f);
    for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < cols; ++c)
            x[r * ld + c] = -1.1f + 0.23f * float(r * cols + c) / 3.0f, dy[r * ld + c] = (c % 3 == 0 ? -0.5f : 1.5f) * float(r + 1);
    std::vector<double> sums, none;
    probe.on_point(1, x.data(), dy.data(), rows, cols, ld, sums);
    probe.on_point(0, x.data(), dy.data(), rows, cols, ld, none);
    REQUIRE(sums.size() == 2);
    CHECK(none.empty());
    for (size_t k = 0; k < 2; ++k) {
        double want = 0;
        for (size_t r = 0; r < rows; ++r)
            for (size_t c = 0; c < cols; ++c) {
                const double e = double(cand[1][k].fake(x[r * ld + c])) - x[r * ld + c], d = dy[r * ld + c];
                want += 0.5 * d * d * e * e;
            }
        CHECK(sums[k] == doctest::Approx(want).epsilon(1e-6));  // float within a row
    }
    CHECK(sums[0] > sums[1]);  // 2 bits are noisier than 5
}

TEST_CASE("qbitopt: the allocator on both shipped models' shapes never exceeds either budget, and a budget at the widest candidate gives it to everything") {
    for (const ViT* m : {&shipped().hf.vit, &shipped().tm.vit}) {
        const PreparedData& d = m == &shipped().hf.vit ? shipped().hf_data : shipped().tm_data;
        const std::vector<size_t> per_image = observe_points(*m, d, {0}).per_image;
        const std::vector<int> cand = {2, 3, 4, 6, 8};
        uint64_t seed = 7;
        auto uniform01 = [&] {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            return double(seed >> 11) / double(1ull << 53);
        };
        for (double budget : {2.0, 2.7, 3.0, 4.5, 8.0}) {
            CAPTURE(budget);
            const BitAllocator alloc(*m, per_image, cand, budget, budget);
            const Allocation start = alloc.from_config(*m, all_edges());
            std::vector<std::vector<double>> ws(m->linears().size()), as(m->points.size());
            for (auto* v : {&ws, &as})
                for (std::vector<double>& s : *v) {
                    double level = 10 * uniform01();
                    for (size_t k = 0; k < cand.size(); ++k) s.push_back(level), level *= uniform01();  // falling with bits
                }
            const Allocation a = alloc.solve(5, ws, as, start);
            CHECK(a.step == 5);
            CHECK(a.weight_cost <= a.weight_budget);
            CHECK(a.act_cost <= a.act_budget);
            CHECK(a.avg_wbits <= budget);
            long long cost = 0, n = 0;
            for (size_t i = 0; i < a.layer_bits.size(); ++i) cost += (long long)m->linears()[i]->weight.size() * a.layer_bits[i], n += (long long)m->linears()[i]->weight.size();
            CHECK(cost == a.weight_cost);
            CHECK(cost <= (long long)std::floor(budget * double(n)));
            if (budget == 8.0) {
                for (int b : a.layer_bits) CHECK(b == 8);
                for (size_t p = 0; p < a.point_bits.size(); ++p) CHECK(a.point_bits[p] == (point_quantized(m->points[p]) ? 8 : 0));
            }
        }
    }
}

TEST_CASE("qbitopt on the shipped HF model: the budgets hold after every allocation, the bits move during training, 1 and 2 threads give the same bits") {
    const ViT& fp = shipped().hf.vit;
    QatOptions o = small_run();
    o.jobs = 1;
    const QatResult r1 = qat(fp, train_images(), all_edges(), o);
    o.jobs = 2;
    const QatResult r2 = qat(fp, train_images(), all_edges(), o);

    // 12 steps an epoch, a reallocation every quarter (3 steps) except in the last epoch: steps 0, 3, 6, 9.
    REQUIRE(r1.allocations.size() == 4);
    size_t moved = 0;
    long long wn = 0, an = 0;
    for (const Linear* l : fp.linears()) wn += (long long)l->weight.size();
    const std::vector<size_t> per_image = observe_points(fp, train_images(), {0}).per_image;
    for (size_t p = 0; p < fp.points.size(); ++p)
        if (point_quantized(fp.points[p])) an += (long long)per_image[p];
    for (size_t k = 0; k < r1.allocations.size(); ++k) {
        const Allocation& a = r1.allocations[k];
        CAPTURE(a.step);
        CHECK(a.step == 3 * k);
        CHECK(a.weight_budget == 3 * wn);
        CHECK(a.act_budget == 3 * an);
        CHECK(a.weight_cost <= a.weight_budget);
        CHECK(a.act_cost <= a.act_budget);
        CHECK(a.avg_wbits > 2.9);  // the budget is used, not left idle
        if (k > 0) moved += a.changed;
        CHECK(a.layer_bits == r2.allocations[k].layer_bits);
        CHECK(a.point_bits == r2.allocations[k].point_bits);
    }
    CHECK(moved > 0);
    // The kept model carries its allocation.
    REQUIRE(r1.kept_allocation >= 0);
    const Allocation& kept = r1.allocations[size_t(r1.kept_allocation)];
    CHECK(r1.q.wbits == kept.layer_bits);
    for (size_t p = 0; p < fp.points.size(); ++p) CHECK((r1.q.act_on[p] ? r1.q.aq[p].bits : 0) == kept.point_bits[p]);
    CHECK(r1.avg_wbits == kept.avg_wbits);
    CHECK(r1.avg_abits == kept.avg_abits);
    CHECK(r1.q.bits_per_weight() > r1.avg_wbits);  // the per-channel scales on top
    // Threads change nothing.
    CHECK(r1.best_epoch == r2.best_epoch);
    for (size_t e = 0; e < r1.history.size(); ++e) {
        CHECK(r1.history[e].val_top1 == r2.history[e].val_top1);
        if (e) CHECK(r1.history[e].train_loss == r2.history[e].train_loss);
    }
    CHECK(export_quantized(r1.q, tensors_of(shipped().hf_src)) == export_quantized(r2.q, tensors_of(shipped().hf_src)));
}

TEST_CASE("qbitopt with no reallocation inside the run (worst objective, weights only) equals plain QAT with its allocation as layer_bits, bit for bit") {
    const ViT& fp = shipped().hf.vit;
    QatOptions o = small_run();
    o.epochs = 1, o.jobs = 2;
    o.abudget = 0, o.budget = 3.5, o.objective = Objective::Worst;
    o.realloc_every = 1000;
    const QatResult qb = qat(fp, train_images(), all_edges(), o);
    REQUIRE(qb.allocations.size() == 1);

    QuantConfig fixed = all_edges();
    const std::vector<const Linear*> ls = fp.linears();
    for (size_t i = 0; i < ls.size(); ++i) fixed.layer_bits[ls[i]->name] = qb.allocations[0].layer_bits[i];
    QatOptions plain = o;
    plain.budget = 0;
    const QatResult ref = qat(fp, train_images(), fixed, plain);
    CHECK(ref.allocations.empty());
    CHECK(qb.q.cfg.layer_bits == fixed.layer_bits);
    REQUIRE(qb.history.size() == ref.history.size());
    for (size_t e = 0; e < ref.history.size(); ++e) {
        CHECK(qb.history[e].val_top1 == ref.history[e].val_top1);
        if (e) CHECK(qb.history[e].train_loss == ref.history[e].train_loss);
    }
    CHECK(export_quantized(qb.q, tensors_of(shipped().hf_src)) == export_quantized(ref.q, tensors_of(shipped().hf_src)));
    const EvalResult a = evaluate_quantized(qb.q, shipped().hf_data, 2), b = evaluate_quantized(ref.q, shipped().hf_data, 2);
    CHECK(a.predictions == b.predictions);
    CHECK(qb.avg_wbits <= 3.5);
    CHECK(qb.avg_wbits == ref.avg_wbits);
}

TEST_CASE("qbitopt: a reallocation solves with the moving average of the sensitivities (--sensitivity-decay), the start with its own") {
    const ViT& fp = shipped().hf.vit;
    QatOptions o = small_run();
    o.epochs = 2, o.realloc_every = 6, o.jobs = 2;  // allocations at steps 0 and 6
    o.sensitivity_decay = 0;
    const QatResult raw = qat(fp, train_images(), all_edges(), o);
    o.sensitivity_decay = 0.75;
    const QatResult avg = qat(fp, train_images(), all_edges(), o);
    REQUIRE(raw.allocations.size() == 2);
    REQUIRE(avg.allocations.size() == 2);
    // Up to the first reallocation the runs are the same: the start's sensitivities, allocation and training.
    CHECK(avg.allocations[0].wsens == raw.allocations[0].wsens);
    CHECK(avg.allocations[0].asens == raw.allocations[0].asens);
    CHECK(avg.allocations[0].layer_bits == raw.allocations[0].layer_bits);
    // At step 6 the decay-0 run solved with what it measured there; the other with ¾ of the start's and ¼ of that.
    auto check_average = [](const std::vector<std::vector<double>>& got, const std::vector<std::vector<double>>& before,
                            const std::vector<std::vector<double>>& now) {
        REQUIRE(got.size() == now.size());
        size_t differ = 0;
        for (size_t i = 0; i < got.size(); ++i) {
            REQUIRE(got[i].size() == now[i].size());
            for (size_t k = 0; k < got[i].size(); ++k) {
                CHECK(got[i][k] == 0.75 * before[i][k] + (1 - 0.75) * now[i][k]);
                differ += now[i][k] != before[i][k];
            }
        }
        CHECK(differ > 0);  // the measurements moved, so the average is not trivially either
    };
    check_average(avg.allocations[1].wsens, raw.allocations[0].wsens, raw.allocations[1].wsens);
    check_average(avg.allocations[1].asens, raw.allocations[0].asens, raw.allocations[1].asens);
    for (const Allocation& a : avg.allocations) CHECK(a.weight_cost <= a.weight_budget);
}

TEST_CASE("qbitopt: bad options are clear errors naming the option, expected and found") {
    const ViT& fp = shipped().hf.vit;
    QatOptions o = small_run();
    auto fails = [&](QatOptions bad, const char* msg) {
        CAPTURE(msg);
        CHECK_THROWS_WITH(bad.validate(), doctest::Contains(msg));
        CHECK_THROWS_WITH(qat(fp, train_images(), all_edges(), bad), doctest::Contains(msg));
    };
    QatOptions low = o;
    low.budget = 1.5;
    fails(low, "--budget 1.5 is infeasible: the smallest candidate is 2 bits, so the budget must be at least 2");
    low = o, low.candidates = {3, 4, 8}, low.abudget = 2.5;
    fails(low, "--abudget 2.5 is infeasible: the smallest candidate is 3 bits");
    QatOptions c = o;
    c.candidates = {2, 9};
    fails(c, "--candidates: bit-width 9 is outside 2-8");
    c.candidates = {4, 2, 4};
    fails(c, "--candidates lists 4 bits twice");
    c.candidates = {};
    fails(c, "--candidates is empty");
    QatOptions a = o;
    a.budget = 0;
    fails(a, "--abudget needs --budget");
    QatOptions f = o;
    f.fisher_batches = 0;
    fails(f, "--fisher-batches");
    QatOptions d = o;
    d.sensitivity_decay = 1;
    fails(d, "--sensitivity-decay must be in [0, 1), found 1");
    d.sensitivity_decay = -0.5;
    fails(d, "--sensitivity-decay must be in [0, 1), found -0.5");
    CHECK_THROWS_WITH(parse_bits_list("2,x", "--candidates"), doctest::Contains("--candidates must be a comma-separated list of bit-widths, found '2,x'"));
    CHECK_THROWS_WITH(parse_bits_list("2,,4", "--candidates"), doctest::Contains("found '2,,4'"));
    CHECK_THROWS_WITH(parse_bits_list("3,99999999999", "--candidates"), doctest::Contains("bit-width 99999999999 is outside 2-8"));
    CHECK(parse_bits_list("8,3,2", "--candidates") == std::vector<int>{8, 3, 2});
}
