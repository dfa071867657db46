// The integer path: the int8 GEMM kernel against its reference on edge shapes, each integer Linear
// against the float Linear on dequantized values, and whole models (W8A8, W4A4) against the
// simulated (fake-quant) path on the 1k default set.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
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

TEST_CASE("qs8 GEMM: qs8_gemm_1x4c8 and 2x4c8 (wasmsimd) equal qs8_gemm_ref exactly (and an int64 dot product) over edge shapes with -128 and 127") {
    std::mt19937 g(11);
    std::uniform_int_distribution<int> d(-128, 127);
    for (auto kernel : {kernels::qs8_gemm_1x4c8_wasmsimd, kernels::qs8_gemm_2x4c8_wasmsimd})
    for (size_t M : {1, 2, 3, 5})
        for (size_t N : {1, 3, 4, 5, 8, 13})
            for (size_t K : {1, 7, 8, 9, 16, 33})
                for (int fill = 0; fill < 3; ++fill) {  // random, all -128 (the largest products), random with extremes
                    CAPTURE(M);
                    CAPTURE(N);
                    CAPTURE(K);
                    CAPTURE(fill);
                    const size_t Kp = kernels::qs8_gemm_kp(K), lda = Kp + (M % 2 ? 8 : 0), ldc = N + 3;
                    auto value = [&](size_t i) -> int8_t {
                        if (fill == 1) return -128;
                        if (fill == 2 && i % 5 == 0) return i % 10 == 0 ? -128 : 127;
                        return int8_t(d(g));
                    };
                    std::vector<int8_t> A(M * lda, 0), W(N * K);
                    for (size_t m = 0; m < M; ++m)
                        for (size_t k = 0; k < K; ++k) A[m * lda + k] = value(m * K + k);  // A[m][K..Kp) stays 0
                    for (size_t i = 0; i < W.size(); ++i) W[i] = value(i + 3);
                    std::vector<int8_t> packed(N * Kp);
                    kernels::qs8_gemm_pack(N, K, W.data(), packed.data());
                    const int32_t sentinel = 0x5A5A5A5A;
                    std::vector<int32_t> ref(M * ldc, sentinel), simd(M * ldc, sentinel);
                    kernels::qs8_gemm_ref(M, N, K, A.data(), lda, packed.data(), ref.data(), ldc);
                    kernel(M, N, K, A.data(), lda, packed.data(), simd.data(), ldc);
                    REQUIRE(simd == ref);  // including the untouched padding columns
                    for (size_t m = 0; m < M; ++m)
                        for (size_t n = 0; n < N; ++n) {
                            int64_t s = 0;
                            for (size_t k = 0; k < K; ++k) s += int64_t(A[m * lda + k]) * int64_t(W[n * K + k]);
                            REQUIRE(int64_t(ref[m * ldc + n]) == s);
                        }
                    for (size_t m = 0; m < M; ++m)
                        for (size_t n = N; n < ldc; ++n) REQUIRE(ref[m * ldc + n] == sentinel);
                }
}

TEST_CASE("uniform quantize kernels: f32_vfakequant and f32_qs8_vcvt (ref and wasmsimd) equal Quantizer::fake/code on ties, NaN, inf and every tail length; i32_dequant_f32 wasmsimd equals its ref") {
    std::mt19937 g(5);
    std::normal_distribution<float> nd(0.0f, 1.5f);
    std::vector<float> sample(4000);
    for (float& v : sample) v = nd(g);
    for (int bits : {8, 4, 3})
        for (bool symmetric : {true, false}) {
            CAPTURE(bits);
            CAPTURE(symmetric);
            const Quantizer q = fit_uniform(sample, bits, symmetric, RangeMethod::MinMax);
            const int32_t shift = q.qmin >= 0 ? 128 : 0;
            // Random values, exact ties between levels, and the awkward ones.
            std::vector<float> x;
            for (int i = 0; i < 300; ++i) x.push_back(nd(g) * 1.3f);
            for (int32_t c = q.qmin - 2; c <= q.qmax + 2; ++c) x.push_back((float(c - q.zero) + 0.5f) * q.scale);
            for (float v : {0.0f, -0.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), 1e30f, -1e30f, 4194304.5f * q.scale, -4194304.5f * q.scale})
                x.push_back(v);
            for (size_t n : {size_t(0), size_t(1), size_t(3), size_t(4), size_t(7), size_t(8), size_t(9), size_t(17), x.size()}) {
                CAPTURE(n);
                std::vector<float> ref(x.begin(), x.begin() + std::ptrdiff_t(n)), simd = ref, expect = ref;
                for (float& v : expect) v = q.fake(v);
                kernels::f32_vfakequant_ref(n, ref.data(), q.scale, q.zero, q.qmin, q.qmax);
                kernels::f32_vfakequant_wasmsimd(n, simd.data(), q.scale, q.zero, q.qmin, q.qmax);
                REQUIRE(std::memcmp(ref.data(), expect.data(), n * sizeof(float)) == 0);
                REQUIRE(std::memcmp(simd.data(), expect.data(), n * sizeof(float)) == 0);
                if (bits == 8 || shift == 0) {
                    std::vector<int8_t> cr(n + 1, 99), cs(n + 1, 99), ce(n + 1, 99);
                    for (size_t i = 0; i < n; ++i) ce[i] = int8_t(q.code(x[i]) - shift);
                    kernels::f32_qs8_vcvt_ref(n, x.data(), q.scale, q.zero, q.qmin, q.qmax, shift, cr.data());
                    kernels::f32_qs8_vcvt_wasmsimd(n, x.data(), q.scale, q.zero, q.qmin, q.qmax, shift, cs.data());
                    REQUIRE(cr == ce);  // including the untouched byte after the row
                    REQUIRE(cs == ce);
                }
            }
        }
    std::uniform_int_distribution<int32_t> di(-100000, 100000);
    for (size_t N : {1, 3, 4, 5, 8, 13})
        for (bool with_bias : {true, false}) {
            const size_t rows = 3, ld = N + 2;
            std::vector<int32_t> acc(rows * ld), offset(N);
            std::vector<float> scale(N), bias(N), yr(rows * ld, -7.0f), ys(rows * ld, -7.0f);
            for (int32_t& v : acc) v = di(g);
            for (size_t n = 0; n < N; ++n) offset[n] = di(g), scale[n] = std::abs(nd(g)) * 1e-3f, bias[n] = nd(g);
            kernels::i32_dequant_f32_ref(rows, N, acc.data(), ld, offset.data(), scale.data(), with_bias ? bias.data() : nullptr, yr.data(), ld);
            kernels::i32_dequant_f32_wasmsimd(rows, N, acc.data(), ld, offset.data(), scale.data(), with_bias ? bias.data() : nullptr, ys.data(), ld);
            REQUIRE(std::memcmp(yr.data(), ys.data(), yr.size() * sizeof(float)) == 0);
            CHECK(yr[N] == -7.0f);  // the padding is untouched
            CHECK(yr[0] == scale[0] * float(acc[0] - offset[0]) + (with_bias ? bias[0] : 0.0f));
        }
}

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

TEST_CASE("enable_integer: W8A8 and W4A4 switch every Linear (patch embedding, 4 per block, heads) and predict as the simulated path on the 1k set") {
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
            for (const Linear* l : static_cast<const ViT&>(qi.model).linears()) CHECK(bool(l->int8));
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
    // Power-of-two weights have no integer path: nothing is switched.
    ModelFx& f = model_fx(kHfModel);
    QuantConfig c = wa(4, 4);
    c.weights = QType::Pow2;
    QuantizedViT q = quantize(f.lm.vit, f.data, c, 2);
    CHECK(enable_integer(q) == 0);
}
