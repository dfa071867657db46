// SOS (I&S-ViT's three-stage block reconstruction, src/train/sos.h) on the shipped models: channel-wise
// activation quantizers in the training engine, the exact stage-2 fold, every block's reconstruction error
// going down, zero iterations changing nothing, the same bits for any number of threads, and bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "export.h"
#include "rng.h"
#include "sos.h"
#include "test_util.h"
#include "vit_train.h"

using namespace bitlens;
using namespace bitlens::test;
using namespace bitlens::train;

namespace {

ShippedModels& fx() { return shipped(); }

QuantConfig sos_config(int bits, int iters, int batch = 8, int calib = 16) {
    QuantConfig c;
    c.wbits = c.abits = bits;
    c.method = Method::Sos;
    c.recon_iters = iters, c.recon_batch = batch, c.calib_size = calib;
    return c;
}

bool same_quantized(const QuantizedViT& a, const QuantizedViT& b) {
    const std::vector<const Linear*> la = a.model.linears(), lb = b.model.linears();
    bool same = la.size() == lb.size() && a.aq.size() == b.aq.size() && a.act_on == b.act_on;
    for (size_t i = 0; same && i < la.size(); ++i) {
        same = same_bits(la[i]->weight, lb[i]->weight) && same_bits(la[i]->bias, lb[i]->bias) && a.wq[i].size() == b.wq[i].size();
        for (size_t r = 0; same && r < a.wq[i].size(); ++r) same = identical(a.wq[i][r], b.wq[i][r]);
    }
    for (size_t p = 0; same && p < a.aq.size(); ++p) same = identical(a.aq[p], b.aq[p]);
    for (size_t l = 0; same && l < a.model.blocks.size(); ++l)
        same = same_bits(a.model.blocks[l].norm1.gamma, b.model.blocks[l].norm1.gamma) &&
               same_bits(a.model.blocks[l].norm1.beta, b.model.blocks[l].norm1.beta) &&
               same_bits(a.model.blocks[l].norm2.gamma, b.model.blocks[l].norm2.gamma) &&
               same_bits(a.model.blocks[l].norm2.beta, b.model.blocks[l].norm2.beta);
    return same;
}

}  // namespace

TEST_CASE("channel-wise activation quantizers in the engine: all channels alike = the per-tensor quantizer") {
    ViT m = fx().hf.vit;
    const PreparedData& d = fx().hf_data;
    const size_t B = 4;
    // Every point quantized at 4 bits per tensor (fitted on a few images) ...
    const QuantizedViT q = quantize(m, d, [] {
        QuantConfig c;
        c.wbits = c.abits = 4, c.calib_size = 8;
        return c;
    }());
    QatState per_tensor, per_channel;
    per_tensor.weight.resize(m.linears().size()), per_channel.weight.resize(m.linears().size());
    per_channel.act_channel.resize(m.points.size());
    for (size_t p = 0; p < m.points.size(); ++p) {
        per_tensor.act.push_back(q.act_on[p] ? std::make_unique<TrainQuantizer>(q.aq[p]) : nullptr);
        const bool ln = m.points[p].kind == PointKind::PostLN;
        per_channel.act.push_back(q.act_on[p] && !ln ? std::make_unique<TrainQuantizer>(q.aq[p]) : nullptr);
        if (ln) per_channel.act_channel[p].assign(size_t(m.cfg.hidden), TrainQuantizer(q.aq[p]));  // ... or channel-wise, all alike
    }
    Engine et(m, &per_tensor), ec(m, &per_channel);
    Acts at, ac;
    et.forward(at, d.inputs.data(), B);
    ec.forward(ac, d.inputs.data(), B);
    CHECK(same_bits(at.logits, ac.logits));
    std::vector<float> dl(at.logits.size());
    for (size_t i = 0; i < dl.size(); ++i) dl[i] = float(int(i % 7) - 3) * 0.1f;
    Grads gt(m), gc(m);
    et.backward(at, dl.data(), gt);
    ec.backward(ac, dl.data(), gc);
    CHECK(same_bits(gt.p.blocks[0].norm1.gamma, gc.p.blocks[0].norm1.gamma));
    CHECK(same_bits(gt.p.patch_embed.weight, gc.p.patch_embed.weight));
    for (size_t p = 0; p < m.points.size(); ++p) {
        if (m.points[p].kind != PointKind::PostLN) continue;
        double ss = 0, sz = 0;
        REQUIRE(gc.channel_scale[p].size() == size_t(m.cfg.hidden));
        for (size_t c = 0; c < gc.channel_scale[p].size(); ++c) ss += gc.channel_scale[p][c], sz += gc.channel_zero[p][c];
        CHECK(ss == doctest::Approx(gt.act_scale[p]).epsilon(1e-9));
        CHECK(sz == doctest::Approx(gt.act_zero[p]).epsilon(1e-9));
        CHECK(gt.act_scale[p] != 0);
    }
}

TEST_CASE("fold_channel_scales: the layer-wise quantizer of the folded LayerNorm gives the channel-wise codes") {
    ViT m = fx().tm.vit;
    Block& b = m.blocks[1];
    const size_t D = size_t(m.cfg.hidden);
    SplitMix64 rng(7);
    auto uni = [&] { return double(rng.next() >> 11) * 0x1p-53; };
    std::vector<double> s(D), z(D);
    double smean = 0, zmean = 0;
    for (size_t c = 0; c < D; ++c) {
        s[c] = double(float(0.01 + 0.3 * uni())), z[c] = double(int(uni() * 8));
        smean += s[c], zmean += z[c];
    }
    const float s_layer = float(smean / double(D));
    const double z_layer = std::nearbyint(zmean / double(D));
    LayerNorm ln = b.norm1;
    Linear lin = b.qkv;
    fold_channel_scales(ln, lin, s, z, double(s_layer), z_layer);
    // Random rows through both: LN, quantize (channel-wise / layer-wise), dequantize, Linear.
    size_t codes = 0, differ = 0;
    double max_out = 0, max_diff = 0;
    std::vector<float> x(D), y0(D), y1(D), o0(size_t(lin.out)), o1(size_t(lin.out));
    for (int row = 0; row < 200; ++row) {
        for (float& v : x) v = float(4 * uni() - 2);
        auto norm = [&](const LayerNorm& n, std::vector<float>& y) {
            double mu = 0, var = 0;
            for (float v : x) mu += v;
            mu /= double(D);
            for (float v : x) var += (v - mu) * (v - mu);
            const double r = 1 / std::sqrt(var / double(D) + 1e-6);
            for (size_t c = 0; c < D; ++c) y[c] = float((x[c] - mu) * r) * n.gamma[c] + n.beta[c];
        };
        norm(b.norm1, y0), norm(ln, y1);
        for (size_t c = 0; c < D; ++c) {
            Quantizer qc, ql;
            qc.scale = float(s[c]), qc.zero = int32_t(z[c]), qc.qmin = 0, qc.qmax = 7, qc.bits = 3;
            ql.scale = s_layer, ql.zero = int32_t(z_layer), ql.qmin = 0, ql.qmax = 7, ql.bits = 3;
            // x'/s̃ = x/s_c + (z_c − z̃), so round(x'/s̃) + z̃ = round(x/s_c) + z_c: the same code, clamping
            // included (float rounding may differ only at a tie, which no random value here lands near).
            const float v = y0[c] / float(s[c]);
            const bool near_tie = std::fabs(std::fabs(v - std::trunc(v)) - 0.5f) < 1e-3f;
            ++codes, differ += qc.code(y0[c]) != ql.code(y1[c]) && !near_tie;
            y0[c] = qc.fake(y0[c]), y1[c] = ql.fake(y1[c]);
        }
        for (size_t o = 0; o < size_t(lin.out); ++o) {
            double a0 = b.qkv.bias.empty() ? 0 : b.qkv.bias[o], a1 = lin.bias[o];
            for (size_t c = 0; c < D; ++c) a0 += double(b.qkv.weight[o * D + c]) * y0[c], a1 += double(lin.weight[o * D + c]) * y1[c];
            max_out = std::max(max_out, std::fabs(a0)), max_diff = std::max(max_diff, std::fabs(a0 - a1));
        }
    }
    CHECK(differ == 0);
    CHECK(codes == 200 * D);
    CHECK(max_diff <= 1e-4 * max_out);
}

TEST_CASE("SOS: every block's reconstruction error goes down, stage 2 leaves the logits unchanged, and it beats PTQ at W3A3") {
    const ViT& m = fx().hf.vit;
    const PreparedData& d = fx().hf_data;
    const PreparedData eval = prepare(load_dataset(kFmnistDir + "/t10k-images-idx3-ubyte.gz"), m.cfg, 1000);
    SosOptions o;
    o.jobs = 2;
    const SosResult r = sos(m, d, sos_config(3, 60, 16, 32), o, &eval);
    REQUIRE(r.blocks.size() == 2 * m.blocks.size());
    for (const BlockRecon& b : r.blocks) {
        CAPTURE(b.stage);
        CAPTURE(b.block);
        CHECK(b.mse_after < b.mse_before);
    }
    REQUIRE(r.stages.size() == 4);  // PTQ, 1, 2, 3
    CHECK(r.stages[2].stage == 2);
    CHECK(r.stages[2].max_logit_change < 1e-3);
    CHECK(r.stages[2].eval.predictions == r.stages[1].eval.predictions);
    CHECK(r.stages[3].eval.top1 > r.stages[0].eval.top1);
    // The result is a quantized model like PTQ's: exported and loaded back, it predicts the same.
    ModelSource exported = fx().hf_src;
    exported.safetensors = export_quantized(r.q, tensors_of(fx().hf_src));
    const QuantizedViT back = load_quantized(exported);
    CHECK(evaluate_quantized(back, eval, 2).predictions == r.stages[3].eval.predictions);
    CHECK(back.cfg.method == Method::Sos);
}

TEST_CASE("SOS with 0 iterations leaves the fitted quantizers as they are; results do not depend on jobs") {
    const ViT& m = fx().tm.vit;
    const PreparedData& d = fx().tm_data;
    const QuantConfig c0 = sos_config(4, 0);
    const SosResult r0 = sos(m, d, c0, {});
    REQUIRE(r0.blocks.size() == 2 * m.blocks.size());
    for (const BlockRecon& b : r0.blocks) CHECK(b.mse_after == b.mse_before);
    // The per-tensor points hold PTQ's fit on the FP32 model over the same draw.
    const PreparedData cal = subset(d, draw_calibration(d.n, size_t(c0.calib_size), c0.seed));
    std::vector<size_t> all(cal.n);
    for (size_t i = 0; i < cal.n; ++i) all[i] = i;
    const PointSamples ps = observe_points(m, cal, all);
    for (size_t p = 0; p < m.points.size(); ++p) {
        const ActPoint& pt = m.points[p];
        if (!point_quantized(pt) || pt.kind == PointKind::PostLN) continue;
        CAPTURE(pt.name);
        CHECK(identical(r0.q.aq[p], fit_point(pt, ps.samples[p], point_bits(pt, c0), c0)));
    }
    // jobs 1 and 2 (micro-batches of 4 images, so both threads work) give the same bits.
    const QuantConfig c = sos_config(3, 6, 8, 16);
    SosOptions o;
    o.micro = 4;
    o.jobs = 1;
    const SosResult a = sos(m, d, c, o);
    o.jobs = 2;
    const SosResult b = sos(m, d, c, o);
    CHECK(same_quantized(a.q, b.q));
    for (size_t i = 0; i < a.blocks.size(); ++i) CHECK(a.blocks[i].mse_after == b.blocks[i].mse_after);
    CHECK_FALSE(same_quantized(a.q, r0.q));
}

TEST_CASE("SOS's stage-1 quantizers are a function of the set of calibration images, not of their order") {
    // 400 images, all drawn: each keeps tokens 0, 4, …, 16 of its 18 for the channel-wise fits (2048 rows / 400
    // images = 5 rows each, stride 4). Before, one counter with stride 4 ran across the images: as 18 is not a
    // multiple of 4, odd and even images kept different tokens, and the reversed pool other rows.
    const ViT& m = fx().tm.vit;
    const PreparedData& d = fx().tm_data;
    const size_t n = 400;
    REQUIRE(d.n >= n);
    REQUIRE(size_t(m.cfg.tokens()) > 2048 / n);
    std::vector<size_t> fwd(n), rev(n);
    for (size_t i = 0; i < n; ++i) fwd[i] = i, rev[i] = n - 1 - i;
    const QuantConfig c = sos_config(4, 0, 8, int(n));
    const SosResult a = sos(m, subset(d, fwd), c), b = sos(m, subset(d, rev), c);
    CHECK(same_quantized(a.q, b.q));
    // And the channel-wise fits are not trivially alike: the folded LayerNorm of the first block differs from the FP32 one.
    CHECK_FALSE(same_bits(a.q.model.blocks[0].norm1.gamma, m.blocks[0].norm1.gamma));
}

TEST_CASE("SOS in steps: cancelling between iterations leaves nothing behind; advance() covers every iteration") {
    const ViT& m = fx().hf.vit;
    const QuantConfig c = sos_config(4, 3, 4, 8);
    size_t calls = 0;
    CHECK_THROWS_WITH(sos(m, fx().hf_data, c, {}, nullptr, [&](const SosProgress&) { return ++calls < 5; }), "cancelled");
    SosRun run(m, fx().hf_data, c);
    size_t last = 0;
    while (!run.done()) {
        const SosProgress p = run.advance(2);
        CHECK(p.done >= last);
        last = p.done;
        if (p.block_done) CHECK((p.block == size_t(p.block_done->block) && p.stage == p.block_done->stage && p.iter == p.iters));
        CHECK(p.total == 2 * m.blocks.size() * 3);
    }
    CHECK(last == 2 * m.blocks.size() * 3);
    CHECK(run.stages().size() == 3);  // no evaluation set: no PTQ reference; stages 1, 2, 3
    CHECK(same_quantized(run.result(), sos(m, fx().hf_data, c).q));
}

TEST_CASE("SOS bad input: batch larger than the calibration set, negative iterations, unknown method, --reparam, pool too small") {
    const ViT& m = fx().hf.vit;
    QuantConfig c = sos_config(3, 10, 32, 16);
    CHECK_THROWS_WITH(sos(m, fx().hf_data, c), doctest::Contains("--recon-batch 32 is larger than the calibration set (16 images"));
    c = sos_config(3, -1);
    CHECK_THROWS_WITH(sos(m, fx().hf_data, c), doctest::Contains("--recon-iters must be 0 or more, found -1"));
    CHECK_THROWS_WITH(parse_method("adaround"), doctest::Contains("unknown quantization method 'adaround' (ptq or sos)"));
    CHECK_THROWS_WITH(config_from_json(nlohmann::json{{"method", "brecq"}}), doctest::Contains("unknown quantization method 'brecq'"));
    CHECK_THROWS_WITH(config_from_json(nlohmann::json{{"method", "sos"}, {"reconIters", -5}}),
                      doctest::Contains("--recon-iters must be 0 or more, found -5"));
    c = sos_config(3, 10);
    c.reparam = true;
    CHECK_THROWS_WITH(sos(m, fx().hf_data, c), doctest::Contains("--reparam is stage 2 of --method sos"));
    PreparedData few = subset(fx().hf_data, {0, 1, 2, 3, 4});
    CHECK_THROWS_WITH(sos(m, few, sos_config(3, 10, 4, 16)), doctest::Contains("calibration size 16 is larger than the calibration pool (5 images)"));
    // PTQ's entry refuses a sos configuration rather than quietly ignoring the method.
    CHECK_THROWS_WITH(quantize(m, fx().hf_data, sos_config(3, 10)), doctest::Contains("runs through train::quantize_method"));
}

TEST_CASE("SOS on Linears without a bias: the fold adds one, stage 3 trains it") {
    ViT m = fx().hf.vit;
    for (Block& b : m.blocks) b.qkv.bias.clear(), b.fc1.bias.clear(), b.qkv.pack(), b.fc1.pack();
    const SosResult r = sos(m, fx().hf_data, sos_config(4, 4, 4, 8));
    REQUIRE(r.stages.size() == 3);
    CHECK(r.stages[1].max_logit_change < 1e-3);
    CHECK(r.q.model.blocks[0].qkv.bias.size() == size_t(3 * m.cfg.hidden));
    CHECK(r.q.model.blocks[0].fc1.bias.size() == size_t(m.cfg.mlp_dim));
}
