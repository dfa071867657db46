// Mixed precision: the exact knapsack allocator on constructed cases (brute force, ties, infeasible).
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "mixed.h"

using namespace bitlens;

namespace {
KnapsackItem item(const std::string& name, long long values, std::vector<int> bits, std::vector<double> sens) {
    KnapsackItem it{name, bits, {}, sens};
    for (int b : bits) it.cost.push_back(values * b);
    return it;
}
// Brute force over every combination: the least sensitivity within budget, ties → larger cost.
std::pair<double, long long> brute(const std::vector<KnapsackItem>& items, long long budget) {
    double best = INFINITY;
    long long best_cost = -1;
    std::vector<size_t> idx(items.size(), 0);
    while (true) {
        long long c = 0;
        double s = 0;
        for (size_t i = 0; i < items.size(); ++i) c += items[i].cost[idx[i]], s += items[i].sensitivity[idx[i]];
        if (c <= budget && (s < best - 1e-12 || (std::fabs(s - best) <= 1e-12 && c > best_cost))) best = s, best_cost = c;
        size_t i = 0;
        while (i < items.size() && ++idx[i] == items[i].cost.size()) idx[i++] = 0;
        if (i == items.size()) break;
    }
    return {best, best_cost};
}
}  // namespace

TEST_CASE("allocator: a hand-made case — bits go to the sensitive layer, the budget is met exactly") {
    // Two layers of 100 weights, average budget 5 bits (1000 bit·weights). The sensitive layer gets 8.
    std::vector<KnapsackItem> items = {item("sensitive", 100, {2, 4, 8}, {10, 3, 0}),
                                       item("robust", 100, {2, 4, 8}, {0.5, 0.1, 0})};
    KnapsackResult r = allocate(items, 1000);
    CHECK(items[0].bits[r.choice[0]] == 8);
    CHECK(items[1].bits[r.choice[1]] == 2);
    CHECK(r.cost == 1000);
    CHECK(r.sensitivity == doctest::Approx(0.5));
}

TEST_CASE("allocator: equals brute force on 300 random instances and never exceeds the budget") {
    std::mt19937 g(5);
    for (int t = 0; t < 300; ++t) {
        std::vector<KnapsackItem> items;
        const int n = 1 + int(g() % 5);
        for (int i = 0; i < n; ++i) {
            std::vector<int> bits = {2, 3, 4, 6, 8};
            std::vector<double> sens;
            double s = double(g() % 1000) / 100.0;
            for (size_t k = 0; k < bits.size(); ++k) sens.push_back(s), s *= double(g() % 100) / 100.0;  // decreasing with bits
            items.push_back(item("l" + std::to_string(i), 16 * (1 + long(g() % 20)), bits, sens));
        }
        long long min_c = 0, max_c = 0;
        for (const auto& it : items) min_c += it.cost.front(), max_c += it.cost.back();
        const long long budget = min_c + long(g() % uint32_t(max_c - min_c + 1));
        KnapsackResult r = allocate(items, budget);
        auto [best, best_cost] = brute(items, budget);
        CAPTURE(t);
        REQUIRE(r.cost <= budget);
        CHECK(r.sensitivity == doctest::Approx(best).epsilon(1e-9));
        CHECK(r.cost == best_cost);
    }
}

TEST_CASE("allocator: ties go to the larger use of the budget, and results are deterministic") {
    // Sensitivity 0 at every choice: the most bits that fit.
    std::vector<KnapsackItem> items = {item("a", 10, {2, 4, 8}, {0, 0, 0}), item("b", 30, {2, 4, 8}, {0, 0, 0})};
    KnapsackResult r = allocate(items, 10 * 8 + 30 * 4 + 5);
    CHECK(r.cost == 10 * 8 + 30 * 4);
    KnapsackResult r2 = allocate(items, 10 * 8 + 30 * 4 + 5);
    CHECK(r.choice == r2.choice);
}

TEST_CASE("allocator: an infeasible budget is a clear error naming the minimum") {
    std::vector<KnapsackItem> items = {item("a", 100, {2, 4}, {1, 0}), item("b", 100, {3, 4}, {1, 0})};
    CHECK_THROWS_WITH(allocate(items, 499), doctest::Contains("budget 499 is infeasible: the cheapest choices cost 500"));
    CHECK_NOTHROW(allocate(items, 500));
    CHECK_THROWS_WITH(allocate({}, 10), doctest::Contains("nothing to allocate"));
}

#include <nlohmann/json.hpp>

TEST_CASE("allocator: when the exact table would be too large, costs round up to a coarser unit: the budget still holds and the result is at least as good as the exact optimum with n units less budget") {
    std::mt19937 g(8);
    for (int t = 0; t < 100; ++t) {
        std::vector<KnapsackItem> items;
        const int n = 2 + int(g() % 4);
        for (int i = 0; i < n; ++i) {
            std::vector<double> sens;
            double s = double(g() % 1000) / 100.0;
            for (int k = 0; k < 4; ++k) sens.push_back(s), s *= double(g() % 100) / 100.0;
            items.push_back(item("l" + std::to_string(i), 1 + long(g() % 997), {2, 3, 5, 8}, sens));  // costs with gcd ~1
        }
        long long min_c = 0, max_c = 0;
        for (const auto& it : items) min_c += it.cost.front(), max_c += it.cost.back();
        const long long budget = min_c + (max_c - min_c) / 2 + long(g() % 50);
        const size_t cells = size_t(n) * 64;  // far fewer than budget + 1 per item
        const KnapsackResult r = allocate(items, budget, cells);
        CAPTURE(t);
        CHECK(r.unit > 1);
        CHECK(r.cost <= budget);
        long long cost = 0;
        for (size_t i = 0; i < items.size(); ++i) cost += items[i].cost[r.choice[i]];
        CHECK(cost == r.cost);
        const auto relaxed = brute(items, budget - (long long)n * r.unit);
        if (relaxed.second >= 0) CHECK(r.sensitivity <= relaxed.first + 1e-9);
    }
}

#include "test_util.h"

TEST_CASE("mixed precision on the shipped DeiT: sensitivities fall with bits, budgets are never exceeded, the plan is deterministic") {
    using namespace bitlens::test;
    LoadedModel m = load_model(source(kTimmModel));
    PreparedData d = prepare(load_dataset(src_path("models/data")), m.vit.cfg, 200);
    const std::vector<size_t> imgs = draw_calibration(d.n, 12, 0);
    QuantConfig base;
    for (Objective obj : {Objective::Mean, Objective::Worst}) {
        Sensitivities s = measure_sensitivities(m.vit, d, imgs, base, obj, {3, 4, 8}, 2);
        CHECK(s.weights.size() == m.vit.linears().size());
        for (const KnapsackItem& it : s.weights) {
            CAPTURE(it.name);
            CHECK(it.sensitivity[0] >= it.sensitivity[2]);  // 3 bits hurt at least as much as 8
            CHECK(it.sensitivity[2] >= 0);
        }
        if (obj == Objective::Mean) {
            // The mean objective is the mean KL(FP32 || one layer at 3 bits) over the images: recomputed here from
            // two full forward passes with std::exp / std::log, it is positive and equals the measurement (which
            // reruns only the blocks from the layer's on, from cached FP32 states, with BitLens's own exp).
            const size_t li = 3;
            ViT one = m.vit;
            quantize_weights(*one.linears()[li], 3, base);
            const size_t C = size_t(m.vit.cfg.num_classes);
            auto log_softmax_d = [&](const std::vector<float>& z) {
                double mx = z[0], sum = 0;
                for (float v : z) mx = std::max(mx, double(v));
                for (float v : z) sum += std::exp(double(v) - mx);
                std::vector<double> lp(C);
                for (size_t c = 0; c < C; ++c) lp[c] = double(z[c]) - mx - std::log(sum);
                return lp;
            };
            Workspace ws;
            std::vector<float> zf(C), zq(C);
            double kl = 0;
            for (size_t i : imgs) {
                m.vit.forward(&d.inputs[i * d.input_size], zf.data(), ws);
                one.forward(&d.inputs[i * d.input_size], zq.data(), ws);
                const std::vector<double> pf = log_softmax_d(zf), pq = log_softmax_d(zq);
                for (size_t c = 0; c < C; ++c) kl += std::exp(pf[c]) * (pf[c] - pq[c]) / double(imgs.size());
            }
            CAPTURE(s.weights[li].name);
            CHECK(kl > 1e-7);
            CHECK(s.weights[li].sensitivity[0] == doctest::Approx(kl).epsilon(1e-6));
        }
        MixedPlan p = plan_mixed(s, 4.0, 4.0), p2 = plan_mixed(s, 4.0, 4.0);
        CHECK(p.weight_cost <= p.weight_budget);
        CHECK(p.act_cost <= p.act_budget);
        CHECK(p.weight_bits_avg <= 4.0);
        CHECK(p.weight_bits_avg > 3.5);  // the budget is used, not left idle
        CHECK(p.layer_bits == p2.layer_bits);
        CHECK(p.point_bits == p2.point_bits);
        // The plan is a valid quantization config.
        QuantConfig c = base;
        c.layer_bits = p.layer_bits, c.point_bits = p.point_bits;
        QuantizedViT q = quantize(m.vit, d, c, 2);
        for (size_t i = 0; i < q.wbits.size(); ++i) CHECK(q.wbits[i] == p.layer_bits.at(m.vit.linears()[i]->name));
        CHECK_THROWS_WITH(plan_mixed(s, 2.5, 4.0), doctest::Contains("infeasible"));
        // A size budget: the plan's model is exactly as large as the quantized model says, and fits.
        const long long max_bytes = q.model_bytes() - 2000;
        const MixedPlan pb = plan_mixed_bytes(s, max_bytes, 8.0);
        QuantConfig cb = base;
        cb.layer_bits = pb.layer_bits, cb.point_bits = pb.point_bits;
        const QuantizedViT qb = quantize(m.vit, d, cb, 2);
        CHECK(pb.model_bytes == (long long)qb.model_bytes());
        CHECK(pb.model_bytes <= max_bytes);
        CHECK(pb.model_bytes > max_bytes - 200);  // the budget is used
        CHECK_THROWS_WITH(plan_mixed_bytes(s, s.fixed_bytes, 8.0), doctest::Contains("its FP32 tensors alone take"));
        CHECK_THROWS_WITH(plan_mixed_bytes(s, s.fixed_bytes + 100, 8.0), doctest::Contains("is too small: the smallest model (every layer at 3 bits) takes"));
        // Through JSON (the JS API's form) the plan is the same.
        const Sensitivities back = sensitivities_from_json(nlohmann::json::parse(sensitivities_json(s).dump()));
        MixedPlan p3 = plan_mixed(back, 4.0, 4.0);
        CHECK(p3.layer_bits == p.layer_bits);
        CHECK(p3.point_bits == p.point_bits);
        CHECK(p3.weight_cost == p.weight_cost);
        CHECK(back.fixed_bytes == s.fixed_bytes);
        if (obj == Objective::Worst) {
            // Steps run one at a time in reverse order on one scratch model give the same measurement.
            SensitivityRunner r(m.vit, d, imgs, base, obj, {3, 4, 8});
            ViT scratch = m.vit;
            for (size_t i = r.total(); i-- > 0;) {
                if (i == 0) CHECK_THROWS_WITH(r.finish(), doctest::Contains("step 0 has not run"));
                r.run(i, scratch);
            }
            const Sensitivities one = r.finish();
            for (size_t i = 0; i < s.weights.size(); ++i) CHECK(one.weights[i].sensitivity == s.weights[i].sensitivity);
            for (size_t i = 0; i < s.activations.size(); ++i) CHECK(one.activations[i].sensitivity == s.activations[i].sensitivity);
            CHECK_THROWS_WITH(r.run(r.total(), scratch), doctest::Contains("outside"));
        }
    }
    CHECK_THROWS_WITH(plan_mixed(Sensitivities{}, 4.0, 0.0), doctest::Contains("budget must be an average bit-width above 0"));
    CHECK_THROWS_WITH(sensitivities_from_json(nlohmann::json::parse(R"({"weights": []})")), doctest::Contains("'weights' and 'activations'"));
    CHECK_THROWS_WITH(sensitivities_from_json(nlohmann::json::parse(R"({"weights": [{"name": "a", "values": 4, "candidates": [2, 4], "sensitivity": [1]}], "activations": []})")),
                      doctest::Contains("'a' has 2 candidates but 1 sensitivities"));
    CHECK_THROWS_WITH(parse_objective("median"), doctest::Contains("found 'median'"));
}
