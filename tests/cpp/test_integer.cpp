// The integer path: the int8 GEMM kernel against its reference on edge shapes, each integer Linear
// against the float Linear on dequantized values, and whole models (W8A8, W4A4) against the
// simulated (fake-quant) path on the 1k default set.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "kernels.h"
#include "ptq.h"
#include "test_util.h"

using namespace bitlens;
using namespace bitlens::test;

namespace {

struct ModelFx {
    LoadedModel lm;
    PreparedData data;  // the 1k default set
    explicit ModelFx(const std::string& dir)
        : lm(load_model(source(dir))), data(prepare(load_dataset(src_path("models/data")), lm.vit.cfg)) {}
};
ModelFx& model_fx(const std::string& dir) {
    static ModelFx hf(kHfModel), tm(kTimmModel);
    return dir == kHfModel ? hf : tm;
}

QuantConfig wa(int w, int a) {
    QuantConfig c;
    c.wbits = w, c.abits = a;
    return c;
}

}  // namespace

// The integer Linear computes s_x·s_w·(Σ x_q·w_q − z_x·Σ w_q) + b exactly up to the final float
// multiply; the float Linear accumulates x̂·ŵ in float. Their difference is the float GEMM's rounding,
// bounded relative to Σ|x̂·ŵ| + |b| (the size of what is summed; y itself may cancel to ~0).
TEST_CASE("integer Linear vs float Linear on dequantized inputs and weights: relative error < 1e-5, every layer of both models at W8A8 and W4A4") {
    std::mt19937 g(3);
    for (const std::string& dir : {kHfModel, kTimmModel}) {
        ModelFx& f = model_fx(dir);
        for (int bits : {8, 4}) {
            CAPTURE(dir);
            CAPTURE(bits);
            const QuantizedViT q = quantize(f.lm.vit, f.data, wa(bits, bits), 2);
            QuantizedViT qi = q;
            REQUIRE(enable_integer(qi) == int(qi.model.linears().size()));
            const std::vector<const Linear*> lf = q.model.linears(), li = static_cast<const ViT&>(qi.model).linears();
            double worst = 0;
            for (size_t i = 0; i < lf.size(); ++i) {
                CAPTURE(lf[i]->name);
                const Linear &fl = *lf[i], &il = *li[i];
                REQUIRE(bool(il.int8));
                REQUIRE(!bool(fl.int8));
                const Quantizer& in = il.int8->in;
                // Inputs over the quantizer's range and a little beyond (clamped codes).
                const float lo = in.dequant(in.qmin), hi = in.dequant(in.qmax), pad = 0.1f * (hi - lo);
                std::uniform_real_distribution<float> ud(lo - pad, hi + pad);
                const size_t rows = 7, K = size_t(fl.in), N = size_t(fl.out);
                std::vector<float> x(rows * K), xh(rows * K), yf(rows * N), yi(rows * N);
                for (size_t j = 0; j < x.size(); ++j) x[j] = ud(g), xh[j] = in.fake(x[j]);
                fl.forward(xh.data(), rows, K, yf.data(), N);
                il.forward(x.data(), rows, K, yi.data(), N);
                for (size_t r = 0; r < rows; ++r)
                    for (size_t n = 0; n < N; ++n) {
                        double mag = fl.bias.empty() ? 0 : std::fabs(double(fl.bias[n]));
                        for (size_t k = 0; k < K; ++k) mag += std::fabs(double(xh[r * K + k]) * double(fl.weight[n * K + k]));
                        const double err = std::fabs(double(yi[r * N + n]) - double(yf[r * N + n]));
                        if (mag > 0) worst = std::max(worst, err / mag);
                        REQUIRE(err <= 1e-5 * mag);
                    }
            }
            MESSAGE(dir << " W" << bits << "A" << bits << ": worst |y_int - y_float| / (sum |x*w| + |b|) = " << worst);
        }
    }
}

TEST_CASE("enable_integer: W8A8 and W4A4 switch every Linear (patch embedding, 4 per block, heads; 4-bit weights packed two per byte) and predict as the simulated path on the 1k set") {
    for (const std::string& dir : {kHfModel, kTimmModel}) {
        ModelFx& f = model_fx(dir);
        const ViTConfig& c = f.lm.vit.cfg;
        const int expected = 1 + 4 * c.depth + 1 + (c.dist_head ? 1 : 0);
        for (int bits : {8, 4}) {
            CAPTURE(dir);
            CAPTURE(bits);
            const QuantizedViT q = quantize(f.lm.vit, f.data, wa(bits, bits), 2);
            QuantizedViT qi = q;
            CHECK(enable_integer(qi) == expected);
            const std::vector<const Linear*> ls = static_cast<const ViT&>(qi.model).linears();
            for (size_t i = 0; i < ls.size(); ++i) {
                REQUIRE(bool(ls[i]->int8));
                // ≤ 4-bit weights are held two per byte; the 8-bit edges as int8.
                CAPTURE(ls[i]->name);
                CHECK(ls[i]->int8->packed4.empty() == (qi.wbits[i] > 4));
                CHECK(ls[i]->int8->packed.empty() == (qi.wbits[i] <= 4));
            }
            const EvalResult sim = evaluate_quantized(q, f.data, 2), integer = evaluate_quantized(qi, f.data, 2);
            size_t differ = 0;
            for (size_t i = 0; i < sim.predictions.size(); ++i) differ += sim.predictions[i] != integer.predictions[i];
            MESSAGE(dir << " W" << bits << "A" << bits << ": simulated top-1 " << sim.top1 << ", integer " << integer.top1 << ", "
                        << differ << " of " << sim.predictions.size() << " predictions differ");
            // The integer path sums exact int32 products and scales once; the simulated path sums rounded
            // float products. Their logits differ by ~1e-6 relative, so only an image whose two best
            // classes are that close can flip. Every flip must be such a near-tie.
            CHECK(differ <= 1);
            FakeQuantHook hook(q);
            for (size_t i = 0; i < sim.predictions.size(); ++i) {
                if (sim.predictions[i] == integer.predictions[i]) continue;
                std::vector<float> x(f.data.inputs.begin() + long(i * f.data.input_size),
                                     f.data.inputs.begin() + long((i + 1) * f.data.input_size));
                const std::vector<float> z = q.model.forward(x, &hook);
                const double gap = std::fabs(double(z[size_t(sim.predictions[i])]) - double(z[size_t(integer.predictions[i])]));
                CAPTURE(i);
                CHECK(gap < 1e-4 * (1.0 + std::fabs(double(z[size_t(sim.predictions[i])]))));
            }
        }
    }
}

TEST_CASE("enable_integer: 4-bit power-of-two weights run as integer multiples of their smallest level (exact); 8-bit ones, whose multiples do not fit int8, stay float") {
    ModelFx& f = model_fx(kHfModel);
    QuantConfig c = wa(4, 4);
    c.weights = QType::Pow2;
    const QuantizedViT q = quantize(f.lm.vit, f.data, c, 2);
    QuantizedViT qi = q;
    CHECK(enable_integer(qi) == 4 * f.lm.vit.cfg.depth);  // every block's Linears; the 8-bit edges stay float
    const std::vector<const Linear*> ls = static_cast<const ViT&>(qi.model).linears();
    for (size_t i = 0; i < ls.size(); ++i) {
        CAPTURE(ls[i]->name);
        CHECK(bool(ls[i]->int8) == (qi.wbits[i] == 4));
        if (!ls[i]->int8) continue;
        // Multiples of the smallest level: 0, ±1, ±2, ±4, ... — all powers of two (or 0).
        const Quantizer& wz = qi.wq[i][0];
        float smallest = 0;
        for (float v : wz.table) if (v != 0 && (smallest == 0 || std::fabs(v) < smallest)) smallest = std::fabs(v);
        CHECK(ls[i]->int8->wscale[0] == smallest);
    }
    const EvalResult sim = evaluate_quantized(q, f.data, 2), integer = evaluate_quantized(qi, f.data, 2);
    size_t differ = 0;
    for (size_t i = 0; i < sim.predictions.size(); ++i) differ += sim.predictions[i] != integer.predictions[i];
    CHECK(differ <= 2);  // only near-ties can flip (see above)
    CHECK(std::fabs(sim.top1 - integer.top1) <= 0.002);
}

// Activation codes of ≤ 7 bits are held in [0, 127] (IntLinear::shift), where relaxed SIMD's dot is exact; natively
// the relaxed kernels run through SIMDe with the instruction emulated, so the model's own calls are checked here
// (the real instruction: tests/e2e/relaxed.test.mjs in Chromium).
TEST_CASE("integer path with the relaxed-SIMD GEMMs: logits bit-identical to the SIMD128 kernels at W4A4, W8A6 and W6A7 (codes in [0, 127]); W8A8 keeps −128..127") {
    struct Restore {
        ~Restore() { kernels::set_relaxed_simd(false); }
    } restore;
    ModelFx& f = model_fx(kHfModel);
    for (const std::pair<int, int>& bits : {std::pair{4, 4}, {8, 6}, {6, 7}, {8, 8}}) {
        const int w = bits.first, a = bits.second;  // not a structured binding: clang 14 cannot CAPTURE one
        CAPTURE(w);
        CAPTURE(a);
        QuantizedViT qi = quantize(f.lm.vit, f.data, wa(w, a), 2);
        REQUIRE(enable_integer(qi) > 0);
        for (const Linear* l : static_cast<const ViT&>(qi.model).linears()) {
            if (!l->int8) continue;
            const IntLinear& il = *l->int8;
            CAPTURE(l->name);
            if (il.in.qmax - il.in.qmin <= 127) CHECK((il.in.qmin - il.shift == 0 && il.in.qmax - il.shift <= 127));
            else CHECK((il.in.qmin - il.shift >= -128 && il.in.qmax - il.shift <= 127));
        }
        FakeQuantHook hook(qi);
        for (size_t i = 0; i < 40; ++i) {
            const std::vector<float> x(f.data.inputs.begin() + long(i * f.data.input_size), f.data.inputs.begin() + long((i + 1) * f.data.input_size));
            kernels::set_relaxed_simd(false);
            const std::vector<float> simd = qi.model.forward(x, &hook);
            kernels::set_relaxed_simd(true);
            const std::vector<float> relaxed = qi.model.forward(x, &hook);
            CAPTURE(i);
            REQUIRE(std::memcmp(simd.data(), relaxed.data(), simd.size() * sizeof(float)) == 0);
        }
    }
}
