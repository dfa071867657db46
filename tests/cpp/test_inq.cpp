// INQ on the shipped models: frozen weights never move and are INQ's levels, each partition freezes the
// largest magnitudes, the result is its exported pow2 codes, the same for any number of threads, and bad
// options are clear errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "export.h"
#include "inq.h"
#include "test_util.h"

using namespace bitlens;
using namespace bitlens::test;
using namespace bitlens::train;

namespace {

const PreparedData& train_hf() {
    static const PreparedData d = prepare(load_dataset(kFmnistDir + "/train-images-idx3-ubyte.gz"), shipped().hf.vit.cfg, 600);
    return d;
}

InqOptions small_options(int jobs) {
    InqOptions o;
    o.partitions = {50, 80, 100};
    o.train.batch = 64, o.train.lr = 2e-4f, o.train.val_split = 0.2, o.train.jobs = jobs;
    return o;
}

QuantConfig pow2_config(int wbits) {
    QuantConfig qc;
    qc.weights = QType::Pow2, qc.wbits = wbits, qc.abits = 8;
    return qc;
}

// 0 or ±2^n with n2 ≤ n ≤ n1 of the quantizer.
bool is_level(float w, const Quantizer& q) {
    if (w == 0) return true;
    int e = 0;
    const double m = std::frexp(double(std::fabs(w)), &e);  // |w| = m·2^e, m in [0.5, 1)
    return m == 0.5 && e - 1 >= q.n2 && e - 1 <= q.n1;
}

}  // namespace

TEST_CASE("INQ: frozen weights never change, are 0 or ±2^n within [n2, n1], and each partition freezes the largest magnitudes") {
    const ViT& fp = shipped().hf.vit;
    const QuantConfig qc = pow2_config(3);
    InqRun run(fp, train_hf(), qc, small_options(2));
    REQUIRE(run.history().size() == 1);  // the PTQ start
    const std::vector<const Linear*> fls = fp.linears();
    std::vector<std::vector<float>> seen;  // per Linear: the weights at the last check
    std::vector<std::vector<uint8_t>> was_frozen;
    size_t checks = 0;
    while (!run.done()) {
        run.advance(4);
        const std::vector<const Linear*> ls = run.weights().linears();
        const std::vector<std::vector<uint8_t>>& fr = run.frozen();
        REQUIRE(fr.size() == ls.size());
        if (was_frozen.empty()) {  // the first partition: round(50%) of each layer, the largest FP32 magnitudes
            for (size_t i = 0; i < ls.size(); ++i) {
                const size_t n = fr[i].size();
                CHECK(size_t(std::count(fr[i].begin(), fr[i].end(), uint8_t(1))) == (n + 1) / 2);
                float min_frozen = INFINITY, max_free = 0;
                for (size_t j = 0; j < n; ++j) {
                    const float a = std::fabs(fls[i]->weight[j]);
                    if (fr[i][j]) min_frozen = std::min(min_frozen, a);
                    else max_free = std::max(max_free, a);
                }
                CHECK(min_frozen >= max_free);
            }
        } else {
            for (size_t i = 0; i < ls.size(); ++i)
                for (size_t j = 0; j < fr[i].size(); ++j)
                    if (was_frozen[i][j]) {
                        REQUIRE(fr[i][j] == 1);
                        REQUIRE(std::memcmp(&ls[i]->weight[j], &seen[i][j], sizeof(float)) == 0);
                    }
        }
        seen.clear();
        for (const Linear* l : ls) seen.push_back(l->weight);
        was_frozen = fr;
        ++checks;
    }
    CHECK(checks > 3);
    const InqResult r = run.result();
    REQUIRE(r.history.size() == 4);  // PTQ, 50%, 80%, 100%
    const std::vector<const Linear*> ls = r.q.model.linears();
    size_t total = 0;
    for (size_t i = 0; i < ls.size(); ++i) {
        const std::vector<Quantizer>& qs = r.q.wq[i];
        REQUIRE(qs.size() == size_t(ls[i]->out));  // per output channel
        const size_t per = size_t(ls[i]->in);
        for (size_t j = 0; j < ls[i]->weight.size(); ++j) REQUIRE(is_level(ls[i]->weight[j], qs[j / per]));
        // 3 bits: one for zero, two exponents; the 8-bit edges 64.
        CHECK(qs[0].n1 - qs[0].n2 == (layer_bits(*ls[i], qc) == 8 ? 63 : 1));
        total += ls[i]->weight.size();
    }
    CHECK(r.history[0].step == 0);
    CHECK(r.history[2].partition == 80);
    CHECK(r.history[3].frozen == total);
    CHECK(r.history[1].steps == r.history[2].steps);
    CHECK(r.history[1].steps > 0);
    CHECK(r.history[3].steps == 0);
    CHECK(std::isnan(r.history[3].train_loss));
    CHECK(run.iterations() == 2 * r.history[1].steps);
}

TEST_CASE("INQ: the result is its exported pow2 codes, retraining beats freezing alone, the same bits for 1 and 2 threads") {
    const ViT& fp = shipped().hf.vit;
    const QuantConfig qc = pow2_config(4);
    const InqResult r1 = inq(fp, train_hf(), qc, small_options(1));
    const InqResult r2 = inq(fp, train_hf(), qc, small_options(2));
    const std::vector<const Linear*> l1 = r1.q.model.linears(), l2 = r2.q.model.linears();
    for (size_t i = 0; i < l1.size(); ++i) CHECK(same_bits(l1[i]->weight, l2[i]->weight));
    REQUIRE(r1.history.size() == r2.history.size());
    for (size_t k = 0; k < r1.history.size(); ++k)
        CHECK(std::memcmp(&r1.history[k].train_loss, &r2.history[k].train_loss, sizeof(double)) == 0);
    CHECK(evaluate_quantized(r1.q, shipped().hf_data, 2).predictions == evaluate_quantized(r2.q, shipped().hf_data, 2).predictions);

    // Exported and loaded back: the same weights bit for bit (the codes are the levels), the same predictions.
    ModelSource exported = shipped().hf_src;
    exported.safetensors = export_quantized(r1.q, tensors_of(shipped().hf_src));
    const QuantizedViT back = load_quantized(exported);
    const std::vector<const Linear*> lb = back.model.linears();
    for (size_t i = 0; i < l1.size(); ++i) CHECK(same_bits(lb[i]->weight, l1[i]->weight));
    CHECK(back.cfg.weights == QType::Pow2);
    CHECK(evaluate_quantized(back, shipped().hf_data, 2).predictions == evaluate_quantized(r1.q, shipped().hf_data, 2).predictions);
    // At ≤ 4 bits the levels are int8 multiples of the smallest: every Linear but the 8-bit edges runs on
    // the integer path.
    QuantizedViT integer = r1.q;
    CHECK(enable_integer(integer) == int(std::count_if(l1.begin(), l1.end(), [&](const Linear* l) { return layer_bits(*l, qc) == 4; })));

    // Retraining makes up for what freezing loses: on the held-out split each retrained step is at least
    // as good as right after its freeze, and the final model beats freezing everything at once.
    const std::vector<InqStep>& h = r1.history;
    CHECK(h.back().val_top1 >= h[0].val_top1);
    double gain = 0;
    for (size_t k = 1; k + 1 < h.size(); ++k) gain += h[k].val_top1 - h[k].frozen_top1;
    CHECK(gain > 0);
}

TEST_CASE("INQ: bad options are clear errors") {
    const ViT& fp = shipped().hf.vit;
    InqOptions o = small_options(1);
    o.partitions = {50, 40, 100};
    CHECK_THROWS_WITH(InqRun(fp, train_hf(), pow2_config(4), o), doctest::Contains("partitions must increase: 50% is followed by 40%"));
    o.partitions = {50, 75};
    CHECK_THROWS_WITH(InqRun(fp, train_hf(), pow2_config(4), o), doctest::Contains("the last partition must be 100%"));
    o.partitions = {};
    CHECK_THROWS_WITH(InqRun(fp, train_hf(), pow2_config(4), o), doctest::Contains("--partitions is empty"));
    o.partitions = {0, 100};
    CHECK_THROWS_WITH(InqRun(fp, train_hf(), pow2_config(4), o), doctest::Contains("partition 1 is 0%, expected a percentage in (0, 100]"));
    o.partitions = {50, 150};
    CHECK_THROWS_WITH(InqRun(fp, train_hf(), pow2_config(4), o), doctest::Contains("partition 2 is 150%"));
    o = small_options(1);
    CHECK_THROWS_WITH(InqRun(fp, train_hf(), pow2_config(9), o), doctest::Contains("outside 2-8"));
    CHECK_THROWS_WITH(InqRun(fp, train_hf(), pow2_config(1), o), doctest::Contains("outside 2-8"));
    QuantConfig uniform = pow2_config(4);
    uniform.weights = QType::Uniform;
    CHECK_THROWS_WITH(InqRun(fp, train_hf(), uniform, o), doctest::Contains("weights must be pow2"));
    o.train.epochs = 0;
    CHECK_THROWS_WITH(InqRun(fp, train_hf(), pow2_config(4), o), doctest::Contains("inq: --epochs-per-step must be at least 1, found 0"));
    InqRun run(fp, train_hf(), pow2_config(4), small_options(1));
    CHECK_THROWS_WITH(run.result(), doctest::Contains("before the last partition step"));
}
