// Post-training quantization of the shipped models: the accuracy bars, SULQ vs log2 on the softmax,
// the portable calibration draw, calibration as a function of the set of images (not their order),
// RepQ-ViT reparameterisation, and bad calibration input.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "ptq.h"
#include "rng.h"
#include "test_util.h"

using namespace bitlens;
using namespace bitlens::test;

namespace {
struct Fixture {
    LoadedModel hf = load_model(source(kHfModel)), tm = load_model(source(kTimmModel));
    PreparedData hf_data = prepare(load_dataset(src_path("models/data")), hf.vit.cfg);
    PreparedData tm_data = prepare(load_dataset(src_path("models/data")), tm.vit.cfg);
};
Fixture& fx() {
    static Fixture f;
    return f;
}
double top1(const ViT& m, const PreparedData& d, const QuantConfig& c) {
    return evaluate_quantized(quantize(m, d, c, 2), d, 2).top1;
}
}  // namespace

TEST_CASE("calibration draw: portable SplitMix64 Fisher-Yates, distinct indices, fixed for a seed") {
    std::vector<size_t> a = draw_calibration(1000, 32, 7), b = draw_calibration(1000, 32, 7), c = draw_calibration(1000, 32, 8);
    CHECK(a == b);
    CHECK(a != c);
    CHECK(std::set<size_t>(a.begin(), a.end()).size() == 32);
    for (size_t i : a) CHECK(i < 1000);
    // Pinned values, against numbers not computed by draw_calibration: SplitMix64 from seed 0 gives
    // 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F (the reference implementation's first
    // outputs), so over [0, 10): j = 0 swaps 0 with 0 + (…CDAF mod 10 = 5), j = 1 keeps 1 (…65F4 mod 9 = 0),
    // j = 2 swaps 2 with 2 + (…454F mod 8 = 7) → {5, 1, 9}.
    SplitMix64 r0(0);
    CHECK(r0.next() == 0xE220A8397B1DCDAFull);
    CHECK(r0.next() == 0x6E789E6AA1B965F4ull);
    CHECK(r0.next() == 0x06C45D188009454Full);
    CHECK(draw_calibration(10, 3, 0) == std::vector<size_t>{5, 1, 9});
    CHECK(draw_calibration(100, 4, 42) == std::vector<size_t>{13, 83, 86, 9});  // from a Python transcription of the rule
    CHECK_THROWS_WITH(draw_calibration(10, 11, 0), doctest::Contains("calibration size 11 is larger than the calibration pool (10 images)"));
    CHECK_THROWS_WITH(draw_calibration(0, 1, 0), doctest::Contains("calibration set is empty"));
}

TEST_CASE("PTQ bars on the shipped models (1k default set): W8A8 within 0.5 points of FP32, W6A6 within 2") {
    Fixture& f = fx();
    for (auto* pair : {&f.hf, &f.tm}) {
        const ViT& m = pair->vit;
        const PreparedData& d = pair == &f.hf ? f.hf_data : f.tm_data;
        const double fp = evaluate(m, d, 2).top1;
        QuantConfig c;
        c.wbits = c.abits = 8;
        const double w8 = top1(m, d, c);
        c.wbits = c.abits = 6;
        const double w6 = top1(m, d, c);
        CAPTURE(fp);
        CAPTURE(w8);
        CAPTURE(w6);
        CHECK(w8 >= fp - 0.005);
        CHECK(w6 >= fp - 0.02);
    }
}

TEST_CASE("post-softmax at 4 and 3 bits (weights and other activations at 8 bits): SULQ within 0.5 points of log2, and at 3 bits on the HF model above both") {
    // On the 1,000 shipped images. The HF model is the one whose softmax matters at 3 bits (uniform 88.2%,
    // log2 89.2%, SULQ 90.2%; FP32 90.2%); on the DeiT the three are within 0.4 points of each other
    // (measured 2026-12-05 with order-invariant calibration).
    Fixture& f = fx();
    for (auto* pair : {&f.hf, &f.tm}) {
        const ViT& m = pair->vit;
        const PreparedData& d = pair == &f.hf ? f.hf_data : f.tm_data;
        for (int bits : {4, 3}) {
            QuantConfig c;
            c.softmax_bits = bits;
            c.softmax = QType::Uniform;
            const double uniform = top1(m, d, c);
            c.softmax = QType::Log2;
            const double log2 = top1(m, d, c);
            c.softmax = QType::Sulq;
            const double sulq = top1(m, d, c);
            CAPTURE(m.cfg.architecture);
            CAPTURE(bits);
            CAPTURE(uniform);
            CAPTURE(log2);
            CAPTURE(sulq);
            CHECK(sulq >= log2 - 0.005);
            if (pair == &f.hf && bits == 3) {
                CHECK(sulq > log2);
                CHECK(sulq >= uniform + 0.01);
            }
        }
    }
}

TEST_CASE("RepQ-ViT reparameterisation keeps the FP32 function and equalises post-LayerNorm channel ranges") {
    Fixture& f = fx();
    const std::vector<size_t> idx = draw_calibration(f.hf_data.n, 32, 0);
    const ViT rep = reparameterised(f.hf.vit, f.hf_data, idx, 4);
    for (size_t i = 0; i < 8; ++i) {
        std::vector<float> x(f.hf_data.inputs.begin() + long(i * f.hf_data.input_size),
                             f.hf_data.inputs.begin() + long((i + 1) * f.hf_data.input_size));
        std::vector<float> a = rep.forward(x), b = f.hf.vit.forward(x);
        for (size_t c = 0; c < a.size(); ++c) CHECK(a[c] == doctest::Approx(b[c]).epsilon(1e-3).scale(1.0));
    }
    // Per-channel ranges of a post-LN point: after the fold every channel spans the same range
    // (s̃·(2^b − 1)), so the spread (largest range / smallest) becomes 1 up to float rounding.
    const int p = f.hf.vit.point_index(0, ViT::kFc1In);
    std::vector<float> lo0, hi0, lo1, hi1;
    channel_ranges(f.hf.vit, f.hf_data, idx, p, lo0, hi0);
    channel_ranges(rep, f.hf_data, idx, p, lo1, hi1);
    auto spread = [](const std::vector<float>& lo, const std::vector<float>& hi) {
        double mn = 1e30, mx = 0;
        for (size_t c = 0; c < lo.size(); ++c) mn = std::min(mn, double(hi[c] - lo[c])), mx = std::max(mx, double(hi[c] - lo[c]));
        return mx / mn;
    };
    CAPTURE(spread(lo0, hi0));
    CAPTURE(spread(lo1, hi1));
    CHECK(spread(lo0, hi0) > 1.1);
    CHECK(spread(lo1, hi1) < 1.001);
}

TEST_CASE("bad calibration input: empty set, images of the wrong size, bad bit-widths — clear errors") {
    Fixture& f = fx();
    PreparedData empty;
    empty.input_size = f.hf_data.input_size;
    QuantConfig c;
    CHECK_THROWS_WITH(quantize(f.hf.vit, empty, c), doctest::Contains("calibration set is empty"));
    PreparedData wrong = f.hf_data;
    wrong.input_size = 3 * 32 * 32;
    CHECK_THROWS_WITH(quantize(f.hf.vit, wrong, c), doctest::Contains("calibration images have 3072 values each, the model expects 1x28x28"));
    c.wbits = 9;
    CHECK_THROWS_WITH(quantize(f.hf.vit, f.hf_data, c), doctest::Contains("bit-width 9 is outside 2-8"));
    c.wbits = 4;
    c.softmax = QType::Pow2;
    CHECK_THROWS_WITH(quantize(f.hf.vit, f.hf_data, c), doctest::Contains("post-softmax quantizer 'pow2' is not supported"));
    c.softmax = QType::Sulq;
    c.calib_size = 2000;
    CHECK_THROWS_WITH(quantize(f.hf.vit, f.hf_data, c), doctest::Contains("larger than the calibration pool (1000 images)"));
    c.calib_size = 32;
    c.layer_bits["blocks.99.mlp.fc1"] = 4;
    CHECK_THROWS_WITH(quantize(f.hf.vit, f.hf_data, c), doctest::Contains("no layer 'blocks.99.mlp.fc1'"));
    CHECK_THROWS_WITH(parse_wa("w4x4", c), doctest::Contains("not of the form W<bits>A<bits>"));
}

namespace {
bool same_quantizers(const QuantizedViT& a, const QuantizedViT& b) {
    if (a.aq.size() != b.aq.size() || a.act_on != b.act_on || a.wq.size() != b.wq.size() || a.wbits != b.wbits) return false;
    for (size_t p = 0; p < a.aq.size(); ++p)
        if (a.act_on[p] && !identical(a.aq[p], b.aq[p])) return false;
    for (size_t i = 0; i < a.wq.size(); ++i) {
        if (a.wq[i].size() != b.wq[i].size()) return false;
        for (size_t c = 0; c < a.wq[i].size(); ++c)
            if (!identical(a.wq[i][c], b.wq[i][c])) return false;
    }
    return true;
}
}  // namespace

// QuantizedViT::act_on was a std::vector<bool>, whose bits share words, and quantize() set each point's bit from the
// thread fitting it: two threads could erase each other's (seen once: a point left unquantized in a CI run under load;
// rare, so this check is a stress, not a proof — act_on is now a vector of char, set before the threads). The same
// quantizers with 1 and with 16 threads (on 2 cores: preempted often), every time.
TEST_CASE("quantize with 16 threads gives the 1-thread quantizers bit for bit, every time (act_on is not a bit vector written from threads)") {
    Fixture& f = fx();
    QuantConfig c;
    c.wbits = c.abits = 4;
    c.calib_size = 1;
    const QuantizedViT one = quantize(f.hf.vit, f.hf_data, c, 1);
    size_t on = 0;
    for (bool b : one.act_on) on += b;
    CHECK(on > one.act_on.size() / 2);
    for (int run = 0; run < 40; ++run) {
        CAPTURE(run);
        const QuantizedViT two = quantize(f.hf.vit, f.hf_data, c, 16);
        CHECK(two.act_on == one.act_on);
        CHECK(same_quantizers(one, two));
    }
}

TEST_CASE("calibration depends on the set of images, not their order: samples, quantizers and logits bit for bit") {
    Fixture& f = fx();
    const PreparedData& d = f.hf_data;
    const ViT& m = f.hf.vit;
    // The sample: the same vectors for the same images in another order, sorted, within the cap, and
    // every image contributing (values per image = rows × cols of the point).
    std::vector<size_t> idx = draw_calibration(d.n, 32, 3), rev(idx.rbegin(), idx.rend()), sorted = idx;
    std::sort(sorted.begin(), sorted.end());
    const PointSamples a = observe_points(m, d, idx), b = observe_points(m, d, rev), c = observe_points(m, d, sorted);
    REQUIRE(a.samples.size() == m.points.size());
    CHECK(a.per_image == b.per_image);
    for (size_t p = 0; p < a.samples.size(); ++p) {
        CAPTURE(m.points[p].name);
        CHECK(same_bits(a.samples[p], b.samples[p]));
        CHECK(same_bits(a.samples[p], c.samples[p]));
        CHECK(std::is_sorted(a.samples[p].begin(), a.samples[p].end()));
        CHECK(a.samples[p].size() <= 32768);
        CHECK(a.samples[p].size() >= std::min<size_t>(a.per_image[p] * 32, 32768) / 2);  // the stride does not starve a point
    }
    // The head input of the HF model: one row of 64 values per image, so all 32 × 64 are kept.
    size_t head = 0;
    for (size_t p = 0; p < m.points.size(); ++p)
        if (m.points[p].kind == PointKind::HeadInput) head = p;
    CHECK(a.per_image[head] == 64);
    CHECK(a.samples[head].size() == 32 * 64);

    // quantize() over a pool it draws whole: every seed gives another order of the same 40 images.
    const PreparedData pool = subset(d, draw_calibration(d.n, 40, 11));
    std::vector<QuantConfig> configs(4);
    configs[0].wbits = configs[0].abits = 3;                                   // SULQ softmax, MSE ranges
    configs[1].wbits = configs[1].abits = 4, configs[1].softmax = QType::Log2, configs[1].a_range = RangeMethod::Percentile;
    configs[2].wbits = configs[2].abits = 4, configs[2].softmax = QType::Uniform, configs[2].reparam = true;
    configs[3].wbits = 4, configs[3].abits = 6, configs[3].a_range = RangeMethod::MinMax, configs[3].weights = QType::Pow2;
    for (QuantConfig qc : configs) {
        CAPTURE(qc.name());
        qc.calib_size = 40;
        qc.seed = 0;
        const QuantizedViT q0 = quantize(m, pool, qc, 2);
        qc.seed = 1;
        REQUIRE(draw_calibration(40, 40, 0) != draw_calibration(40, 40, 1));
        const QuantizedViT q1 = quantize(m, pool, qc, 1);
        CHECK(same_quantizers(q0, q1));
        FakeQuantHook h0(q0), h1(q1);
        for (size_t i = 0; i < 4; ++i) {
            const std::vector<float> x(d.inputs.begin() + long(i * d.input_size), d.inputs.begin() + long((i + 1) * d.input_size));
            CHECK(same_bits(q0.model.forward(x, &h0), q1.model.forward(x, &h1)));
        }
    }
    // A different set does give different quantizers (the check above can fail).
    QuantConfig qc = configs[0];
    qc.calib_size = 39;
    const QuantizedViT other = quantize(m, pool, qc, 2);
    qc.calib_size = 40;
    CHECK(!same_quantizers(other, quantize(m, pool, qc, 2)));
}
