// The integer path: the int8 GEMM kernel against its reference on edge shapes, each integer Linear
// against the float Linear on dequantized values, and whole models (W8A8, W4A4) against the
// simulated (fake-quant) path on the 1k default set.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>

#include "kernels.h"
#include "ptq.h"
#include "test_util.h"

using namespace bitlens;
using namespace bitlens::test;

namespace {

ModelSource with_heads(ModelSource s, int heads) {
    s.heads_override = heads;
    return s;
}

struct ModelFx {
    LoadedModel lm;
    PreparedData data;  // the 1k default set
    explicit ModelFx(const std::string& dir, int heads = 0)
        : lm(load_model(with_heads(source(dir), heads))), data(prepare(load_dataset(src_path("models/data")), lm.vit.cfg)) {}
};
ModelFx& model_fx(const std::string& dir) {
    static ModelFx hf(kHfModel), tm(kTimmModel);
    return dir == kHfModel ? hf : tm;
}
// The HF model read as 8 heads of 8 (head size not a multiple of 16: q codes padded per head).
ModelFx& hf_8_heads() {
    static ModelFx f(kHfModel, 8);
    return f;
}

// The quantized model's logits on the first `n` images with the SIMD128 GEMMs and with the relaxed-SIMD ones: bit for bit.
void check_relaxed_is_simd128(const QuantizedViT& qi, const PreparedData& data, size_t n) {
    FakeQuantHook hook(qi);
    for (size_t i = 0; i < n; ++i) {
        const std::vector<float> x(data.inputs.begin() + long(i * data.input_size), data.inputs.begin() + long((i + 1) * data.input_size));
        kernels::set_relaxed_simd(false);
        const std::vector<float> simd = qi.model.forward(x, &hook);
        kernels::set_relaxed_simd(true);
        const std::vector<float> relaxed = qi.model.forward(x, &hook);
        CAPTURE(i);
        REQUIRE(same_bits(simd, relaxed));
    }
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

namespace {
// FakeQuantHook that claims to read every point, so that the forward pass computes GELU in float before fc2 (no
// Block::int_gelu): the codes fc2 then makes from the floats are what the thresholds must give.
struct ReadsEveryPoint : FakeQuantHook {
    using FakeQuantHook::FakeQuantHook;
    bool reads(int) const override { return true; }
};
}  // namespace

TEST_CASE("enable_integer: at ≤ 4-bit activations GELU runs on thresholds (on fc1's int16 sums, straight to fc2's codes), bit for bit the float GELU then fc2's quantization, and softmax straight from q·kᵀ's sums bit for bit the stored scores'; none at 8 bits") {
    for (const std::string& dir : {kHfModel, kTimmModel}) {
        ModelFx& f = model_fx(dir);
        for (int bits : {8, 4, 3}) {
            CAPTURE(dir);
            CAPTURE(bits);
            QuantizedViT qi = quantize(f.lm.vit, f.data, wa(bits, bits), 2);
            enable_integer(qi);
            for (const Block& b : qi.model.blocks) {
                CHECK(bool(b.int_gelu) == (bits <= 4));
                if (!b.int_gelu) continue;
                CHECK(b.int_gelu->up.size() + b.int_gelu->down.size() <= kernels::kThresholdCodesMax);
                CHECK(std::is_sorted(b.int_gelu->up.begin(), b.int_gelu->up.end()));
                CHECK(std::is_sorted(b.int_gelu->down.begin(), b.int_gelu->down.end()));
                CHECK(b.int_gelu->on_sums);  // the shipped models' fc1 sums fit int16: the kernel below counts on them
            }
            FakeQuantHook hook(qi);
            ReadsEveryPoint floats(qi);
            // Nor does this hook read the attention scores: with it, q·kᵀ's sums go straight into softmax
            // (kernels::i32_softmax_rc_f32); `floats` has them stored, then softmax.
            CHECK_FALSE(hook.reads(qi.model.point_index(0, ViT::kScores)));
            for (size_t i = 0; i < 64; ++i) {
                const std::vector<float> x(f.data.inputs.begin() + long(i * f.data.input_size),
                                           f.data.inputs.begin() + long((i + 1) * f.data.input_size));
                CAPTURE(i);
                REQUIRE(same_bits(qi.model.forward(x, &hook), qi.model.forward(x, &floats)));
            }
        }
    }
}

TEST_CASE("integer GELU on sums: for every sum fc1 can give (each channel's range from its weights and the input codes), the int16 thresholds give the float thresholds' code") {
    for (const std::string& dir : {kHfModel, kTimmModel})
        for (int bits : {4, 3}) {
            CAPTURE(dir);
            CAPTURE(bits);
            ModelFx& f = model_fx(dir);
            QuantizedViT qi = quantize(f.lm.vit, f.data, wa(bits, bits), 2);
            enable_integer(qi);
            const Block& b = qi.model.blocks[0];
            REQUIRE(bool(b.int_gelu));
            REQUIRE(b.int_gelu->on_sums);
            const IntLinear& q = *b.fc1.int8;
            const size_t N = size_t(b.fc1.out);
            const int64_t amin = q.in.qmin - q.shift, amax = q.in.qmax - q.shift;
            std::vector<int64_t> lo(N), hi(N);
            for (size_t n = 0; n < N; ++n)
                lo[n] = amin * q.pos_sum[n] + amax * q.neg_sum[n], hi[n] = amax * q.pos_sum[n] + amin * q.neg_sum[n];
            const int64_t first = *std::min_element(lo.begin(), lo.end()), last = *std::max_element(hi.begin(), hi.end());
            CHECK(first >= -32767);
            CHECK(last <= 32766);
            const kernels::ThresholdCodes tc = b.int_gelu->codes();
            const kernels::SumThresholdCodes sc = b.int_gelu->sum_codes();
            std::vector<int32_t> acc(N);
            std::vector<int8_t> want(N), got(N);
            size_t differ = 0, sums = 0;
            for (int64_t s = first; s <= last; ++s) {
                for (size_t n = 0; n < N; ++n) acc[n] = int32_t(std::clamp(s, lo[n], hi[n]));
                kernels::i32_dequant_tcodes_qs8_ref(1, N, acc.data(), N, q.offset.data(), q.out_scale.data(),
                                                    b.fc1.bias.empty() ? nullptr : b.fc1.bias.data(), tc, want.data(), N);
                kernels::i32_tcodes_qs8_ref(1, N, acc.data(), N, sc, got.data(), N);
                for (size_t n = 0; n < N; ++n) differ += want[n] != got[n];
                sums += N;
            }
            CAPTURE(sums);
            CHECK(differ == 0);
            CHECK(last - first > 500);  // hundreds of sums per channel, not a degenerate range
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
        check_relaxed_is_simd128(qi, f.data, 40);
    }
}

// ---------------------------------------------------------------------------------------------------
// Integer attention (IntAttention): q·kᵀ, and probs·v when the post-softmax quantizer is uniform, on codes.

TEST_CASE("i32_softmax_rc_f32: the SIMD kernel (max on the integers) equals dequantizing then softmax bit for bit, at every scale (other than finite and > 0: the two in turn), row offsets or none, N tails, strides, ties at the max") {
    std::mt19937 g(13);
    std::uniform_int_distribution<int32_t> small(-3000, 3000), huge(-2000000000, 2000000000);
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    for (size_t rows : {1u, 2u, 5u})
        for (size_t N : {1u, 2u, 3u, 4u, 5u, 9u, 197u})
            for (float scale : {0.0173f, 1e-3f, 3.0f, 1e-40f, 3e38f, 0.0f, -0.5f, inf, nan})
                for (bool wide : {false, true}) {
                    CAPTURE(rows);
                    CAPTURE(N);
                    CAPTURE(scale);
                    CAPTURE(wide);
                    const size_t ldacc = N + 3, ldy = N + 5;
                    std::vector<int32_t> acc(rows * ldacc), ro(rows), co(N);
                    for (int32_t& v : acc) v = wide ? huge(g) / 2 : small(g);
                    for (int32_t& v : ro) v = small(g) / 8;
                    for (int32_t& v : co) v = small(g) / 8;
                    if (N > 2) acc[1] = acc[2] = 100000 + co[1], co[2] = co[1];  // row 0: a tie at the max
                    for (bool with_rows : {false, true}) {
                        std::vector<float> want(rows * ldy, -1.0f), ref(rows * ldy, -1.0f), simd(rows * ldy, -1.0f);
                        kernels::i32_dequant_rc_f32_ref(rows, N, acc.data(), ldacc, with_rows ? ro.data() : nullptr, co.data(), scale, want.data(), ldy);
                        kernels::f32_softmax_ref(rows, N, want.data(), ldy);
                        kernels::i32_softmax_rc_f32_ref(rows, N, acc.data(), ldacc, with_rows ? ro.data() : nullptr, co.data(), scale, ref.data(), ldy);
                        kernels::i32_softmax_rc_f32_wasmsimd(rows, N, acc.data(), ldacc, with_rows ? ro.data() : nullptr, co.data(), scale, simd.data(), ldy);
                        CHECK(same_bits(want, ref));
                        CHECK(same_bits(want, simd));
                    }
                }
}

TEST_CASE("i32_dequant_rc_f32: the SIMD kernel equals its reference bit for bit (row offsets or none, N tails, strides); qs8_gemm_pack_strided packs as qs8_gemm_pack, transposed too, with row sums") {
    std::mt19937 g(11);
    std::uniform_int_distribution<int32_t> big(-3000000, 3000000), small(-128, 127);
    for (size_t rows : {1u, 3u, 7u})
        for (size_t N : {1u, 3u, 4u, 9u, 197u}) {
            CAPTURE(rows);
            CAPTURE(N);
            const size_t ldacc = N + 3, ldy = N + 5;
            std::vector<int32_t> acc(rows * ldacc), ro(rows), co(N);
            for (int32_t& v : acc) v = big(g);
            for (int32_t& v : ro) v = big(g) / 8;
            for (int32_t& v : co) v = big(g) / 8;
            for (bool with_rows : {false, true}) {
                std::vector<float> a(rows * ldy, -1.0f), b(rows * ldy, -1.0f);
                kernels::i32_dequant_rc_f32_ref(rows, N, acc.data(), ldacc, with_rows ? ro.data() : nullptr, co.data(), 0.0173f, a.data(), ldy);
                kernels::i32_dequant_rc_f32_wasmsimd(rows, N, acc.data(), ldacc, with_rows ? ro.data() : nullptr, co.data(), 0.0173f, b.data(), ldy);
                CHECK(same_bits(a, b));
                CHECK(a[0] == 0.0173f * float(acc[0] - (with_rows ? ro[0] : 0) - co[0]));
            }
        }
    for (size_t N : {1u, 5u, 13u})
        for (size_t K : {1u, 8u, 9u, 64u, 197u}) {
            CAPTURE(N);
            CAPTURE(K);
            std::vector<int8_t> w(N * K), wt(K * N);
            for (size_t n = 0; n < N; ++n)
                for (size_t k = 0; k < K; ++k) w[n * K + k] = wt[k * N + n] = int8_t(small(g));
            const size_t Kp = kernels::qs8_gemm_kp(K);
            std::vector<int16_t> ref(N * Kp), direct(N * Kp, 7), transposed(N * Kp, 7);
            std::vector<int32_t> sums(N), sums_t(N);
            kernels::qs8_gemm_pack(N, K, w.data(), ref.data());
            kernels::qs8_gemm_pack_strided(N, K, w.data(), K, 1, direct.data(), sums.data());
            kernels::qs8_gemm_pack_strided(N, K, wt.data(), 1, N, transposed.data(), sums_t.data());
            CHECK(direct == ref);
            CHECK(transposed == ref);
            for (size_t n = 0; n < N; ++n) {
                int32_t s = 0;
                for (size_t k = 0; k < K; ++k) s += w[n * K + k];
                CHECK(sums[n] == s);
                CHECK(sums_t[n] == s);
            }
        }
}

// Codes q (zero 3) and k (zero 8), K = 3: Σ (q − 3)(k − 8) by hand
//   q − 3 = [[-2, 1, -3], [4, -1, 2]],  k − 8 = [[-6, 1, -2], [-8, -5, 7]]
//   → [[12 + 1 + 6, 16 − 5 − 21], [−24 − 1 − 4, −32 + 5 + 14]] = [[19, −10], [−29, −13]], times the scale 0.5.
TEST_CASE("attention_matmul_int: the zero-point corrections are exact on a hand-checked 2×2×3 case, with the weight operand at its zero (β = 0) or shifted (β ≠ 0: the per-row correction), SIMD128 and relaxed") {
    struct Restore {
        ~Restore() { kernels::set_relaxed_simd(false); }
    } restore;
    const int32_t q[2][3] = {{1, 4, 0}, {7, 2, 5}}, kc[2][3] = {{2, 9, 6}, {0, 3, 15}}, zq = 3, zk = 8;
    const float want[4] = {9.5f, -5.0f, -14.5f, -6.5f};
    for (int32_t k_shift : {8, 4, 0, -20})
        for (bool relaxed : {false, true}) {
            CAPTURE(k_shift);
            CAPTURE(relaxed);
            const size_t lda = kernels::qs4_gemm_kp(3);
            std::vector<int8_t> A(2 * lda, 0), W(6);
            for (int m = 0; m < 2; ++m)
                for (int j = 0; j < 3; ++j) A[size_t(m) * lda + size_t(j)] = int8_t(q[m][j]), W[size_t(m * 3 + j)] = int8_t(kc[m][j] - k_shift);
            Workspace ws;
            ws.packed_i.resize(2 * kernels::qs8_gemm_kp(3)), ws.col_sum.resize(2);
            kernels::qs8_gemm_pack_strided(2, 3, W.data(), 3, 1, ws.packed_i.data(), ws.col_sum.data());
            float C[4] = {0, 0, 0, 0};
            kernels::set_relaxed_simd(relaxed);
            attention_matmul_int(2, 2, 3, A.data(), lda, relaxed, 0 - zq, k_shift - zk, 0.5f, ws, C, 2);
            for (int i = 0; i < 4; ++i) CHECK(C[i] == want[i]);
        }
}

namespace {

// Records a block's attention values in a forward pass: q, k, v, probs and the attention's input after the inner hook,
// scores and the context before it. With `replay`, it overwrites each block's attention input and scores with
// replay's, so that every block's two matmuls see the same operands as in the replayed pass.
struct AttnProbe : ActivationHook {
    const ViT& m;
    ActivationHook* inner;
    const AttnProbe* replay = nullptr;
    std::map<int, std::vector<float>> seen;
    AttnProbe(const ViT& model, ActivationHook* in) : m(model), inner(in) {}
    void on_activation(int p, float* x, size_t rows, size_t cols, size_t ld) override {
        const bool in_block = p >= 1 && p < m.head_point();
        const int local = in_block ? (p - 1) % ViT::kPointsPerBlock : -1;
        auto copy = [&] {
            std::vector<float>& v = seen[p];
            v.resize(rows * cols);
            for (size_t r = 0; r < rows; ++r) std::memcpy(&v[r * cols], x + r * ld, cols * sizeof(float));
        };
        auto paste = [&] {
            const std::vector<float>& v = replay->seen.at(p);
            for (size_t r = 0; r < rows; ++r) std::memcpy(x + r * ld, &v[r * cols], cols * sizeof(float));
        };
        if (local == ViT::kScores || local == ViT::kProjIn) copy();
        if (local == ViT::kScores && replay) paste();
        if (inner) inner->on_activation(p, x, rows, cols, ld);
        if (local == ViT::kQkvIn && replay) paste();
        if (local == ViT::kQkvIn || local == ViT::kQ || local == ViT::kK || local == ViT::kV || local == ViT::kProbs) copy();
    }
};

}  // namespace

// Only the attention runs integer here (the Linears stay float), and every block's matmuls get the float pass's
// operands (AttnProbe's replay), so the two differ by the float GEMM's rounding alone: |int − float| ≤ 2e-6 of
// Σ|terms| (the integer sum is exact; one rounding to float and one multiply; measured: at most 4.3e-7).
TEST_CASE("integer attention vs the fake-quant float attention: every block of both shipped models (and the HF one read as 8 heads of 8) at W4A4 (SULQ probs: q·kᵀ integer), W4A4 and W8A8 with uniform probs (probs·v too): scores and context within 2e-6 of the sum of |terms|; the hook skips the points the integer attention quantizes") {
    for (const std::string& dir : {kHfModel, kTimmModel, kHfModel + " (8 heads)"}) {
        ModelFx& f = dir == kTimmModel ? model_fx(kTimmModel) : dir == kHfModel ? model_fx(kHfModel) : hf_8_heads();
        const ViTConfig& c = f.lm.vit.cfg;
        for (int variant = 0; variant < 3; ++variant) {
            QuantConfig cfg = wa(variant == 2 ? 8 : 4, variant == 2 ? 8 : 4);
            if (variant > 0) cfg.softmax = QType::Uniform;
            CAPTURE(dir);
            CAPTURE(cfg.name());
            CAPTURE(variant);
            const QuantizedViT q = quantize(f.lm.vit, f.data, cfg, 2);
            QuantizedViT qa = q;
            enable_integer(qa);
            for (Linear* l : qa.model.linears()) l->int8.reset();  // the attention alone
            bool row_correction = false;
            for (size_t bi = 0; bi < qa.model.blocks.size(); ++bi) {
                const IntAttention* ia = qa.model.blocks[bi].int_attn.get();
                REQUIRE(ia != nullptr);
                CHECK(ia->pv == (variant > 0));
                row_correction = row_correction || ia->k_shift != ia->k.zero || (ia->pv && ia->v_shift != ia->v.zero);
                // ≤ 7-bit q codes in [0, 127] (the relaxed dot's operand), wider ones in int8, as IntLinear's input
                if (ia->q.qmax - ia->q.qmin <= 127) CHECK((ia->q.qmin - ia->q_shift == 0 && ia->q.qmax - ia->q_shift <= 127));
                else CHECK((ia->q.qmin - ia->q_shift >= -128 && ia->q.qmax - ia->q_shift <= 127));
            }
            if (variant == 2) CHECK(row_correction);  // 8-bit k or v codes whose zero is not 128 need the per-row term
            FakeQuantHook hf(q), hi(qa);
            for (size_t bi = 0; bi < qa.model.blocks.size(); ++bi) {
                const bool pv = qa.model.blocks[bi].int_attn->pv;
                for (ViT::BlockPoint bp : {ViT::kQ, ViT::kK, ViT::kV, ViT::kProbs}) {
                    const size_t p = size_t(qa.model.point_index(int(bi), bp));
                    CHECK(hf.active[p]);
                    CHECK(bool(hi.active[p]) == ((bp == ViT::kV || bp == ViT::kProbs) && !pv));
                }
            }
            const size_t T = size_t(c.tokens()), d = size_t(c.head_dim());
            const double scale = 1.0 / std::sqrt(double(d));
            double worst_s = 0, worst_c = 0;
            for (size_t img = 0; img < 3; ++img) {
                const std::vector<float> x(f.data.inputs.begin() + long(img * f.data.input_size), f.data.inputs.begin() + long((img + 1) * f.data.input_size));
                AttnProbe pf(q.model, &hf), pi(qa.model, &hi);
                pi.replay = &pf;
                q.model.forward(x, &pf);
                qa.model.forward(x, &pi);
                for (size_t bi = 0; bi < qa.model.blocks.size(); ++bi) {
                    const size_t H = size_t(c.block_heads(bi)), A = H * d;
                    auto at = [&](const AttnProbe& pr, ViT::BlockPoint bp) -> const std::vector<float>& {
                        return pr.seen.at(q.model.point_index(int(bi), bp));
                    };
                    const std::vector<float>&qh = at(pf, ViT::kQ), &kh = at(pf, ViT::kK), &vh = at(pf, ViT::kV), &ph = at(pf, ViT::kProbs);
                    const std::vector<float>&sf = at(pf, ViT::kScores), &si = at(pi, ViT::kScores), &cf = at(pf, ViT::kProjIn),
                                             &ci = at(pi, ViT::kProjIn);
                    for (size_t h = 0; h < H; ++h)
                        for (size_t i = 0; i < T; ++i)
                            for (size_t j = 0; j < T; ++j) {
                                double mag = 0;
                                for (size_t e = 0; e < d; ++e) mag += std::fabs(double(qh[i * A + h * d + e]) * double(kh[j * A + h * d + e]));
                                mag *= scale;
                                const size_t o = (h * T + i) * T + j;
                                const double err = std::fabs(double(si[o]) - double(sf[o]));
                                if (mag > 0) worst_s = std::max(worst_s, err / mag);
                                REQUIRE(err <= 2e-6 * mag);
                            }
                    for (size_t i = 0; i < T; ++i)
                        for (size_t e = 0; e < A; ++e) {
                            const size_t h = e / d;
                            double mag = 0;
                            for (size_t j = 0; j < T; ++j) mag += std::fabs(double(ph[(h * T + i) * T + j]) * double(vh[j * A + e]));
                            const double err = std::fabs(double(ci[i * A + e]) - double(cf[i * A + e]));
                            if (mag > 0) worst_c = std::max(worst_c, err / mag);
                            REQUIRE(err <= 2e-6 * mag);
                        }
                }
            }
            MESSAGE(dir << " " << cfg.name() << std::string(variant > 0 ? " uniform probs" : " SULQ probs") << ": worst |int - float| / sum|terms|: scores "
                        << worst_s << ", context " << worst_c);
        }
    }
}

TEST_CASE("integer attention with the relaxed-SIMD GEMMs: logits bit-identical to the SIMD128 kernels at W4A4 with uniform probs (q·kᵀ and probs·v on codes in [0, 127]), head size 16 and 8 (padded)") {
    struct Restore {
        ~Restore() { kernels::set_relaxed_simd(false); }
    } restore;
    for (int heads : {4, 8}) {
        CAPTURE(heads);
        ModelFx& f = heads == 4 ? model_fx(kHfModel) : hf_8_heads();
        QuantConfig cfg = wa(4, 4);
        cfg.softmax = QType::Uniform;
        QuantizedViT qi = quantize(f.lm.vit, f.data, cfg, 2);
        REQUIRE(enable_integer(qi) > 0);
        for (const Block& b : qi.model.blocks) {
            REQUIRE(bool(b.int_attn));
            CHECK(b.int_attn->pv);
            CHECK((b.int_attn->probs.qmin - b.int_attn->p_shift == 0 && b.int_attn->probs.qmax - b.int_attn->p_shift <= 127));
        }
        check_relaxed_is_simd128(qi, f.data, 40);
    }
}
