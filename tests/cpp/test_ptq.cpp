// Post-training quantization of the shipped models: the accuracy bars, SULQ vs log2 on the softmax,
// the portable calibration draw, RepQ-ViT reparameterisation, and bad calibration input.
#include <doctest/doctest.h>

#include <set>

#include "ptq.h"
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
    // Pinned values: the same seed must pick the same images on every platform (WASM included).
    CHECK(draw_calibration(10, 3, 0) == draw_calibration(10, 3, 0));
    const std::vector<size_t> pinned = draw_calibration(100, 4, 42);
    CHECK(pinned.size() == 4);
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

TEST_CASE("post-softmax at 4 and 3 bits: SULQ is never worse than log2 (weights and other activations at 8 bits)") {
    Fixture& f = fx();
    for (auto* pair : {&f.hf, &f.tm}) {
        const ViT& m = pair->vit;
        const PreparedData& d = pair == &f.hf ? f.hf_data : f.tm_data;
        for (int bits : {4, 3}) {
            QuantConfig c;
            c.softmax_bits = bits;
            c.softmax = QType::Log2;
            const double log2 = top1(m, d, c);
            c.softmax = QType::Sulq;
            const double sulq = top1(m, d, c);
            CAPTURE(bits);
            CAPTURE(log2);
            CAPTURE(sulq);
            CHECK(sulq >= log2);
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
