// Where a bitlens forward pass spends its time, one thread: built natively (the kernels through SIMDe)
// and with em++ for Node (the real WASM SIMD code, -sNODERAWFS), by `node tests/bench/bench.mjs --profile`
// (or by hand, see below). The WASM build is run as `node --no-experimental-fetch bitlens-profile-wasm.cjs ...`.
//
//   bitlens-profile MODEL_DIR [--iters 10] [--calib 8] [--no-w8a8] [--bits 8] [--softmax sulq] [--loop fp32|w8a8]
//
// --loop runs only forward passes (`iters` of them; w8a8: the integer path at --bits, --softmax), for a sampling
// profiler (the WASM build, which keeps its function names: node --cpu-prof, then tests/bench/cpuprof-top.mjs):
//   perf record -F 999 -o build/bench/perf.data build/bench/bitlens-profile build/bench/deit-tiny --loop fp32 --iters 30
//   perf report -i build/bench/perf.data --no-children --sort symbol
//
// Three views:
//  1. end-to-end: ViT::forward on one preprocessed image (fp32), and the W8A8 integer path
//     (quantize() + enable_integer(), FakeQuantHook as QuantizedModel.evaluate runs it);
//  2. stages, from timestamps taken in an ActivationHook at every quantization point (the hook's own
//     time is kept apart, so on the W8A8 path it is the fake-quantization cost);
//  3. components, each kernel timed alone at the model's shapes (GEMMs, attention matmuls with their
//     packing, softmax, LayerNorm, GELU, residual adds), summed over the blocks.
// For function-level detail: perf record -g build/bench/bitlens-profile build/bench/deit-tiny; perf report.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "eval.h"
#include "kernels.h"
#include "model.h"
#include "ptq.h"

using namespace bitlens;
namespace k = bitlens::kernels;
using Clock = std::chrono::steady_clock;

namespace {

double now_ms() { return std::chrono::duration<double, std::milli>(Clock::now().time_since_epoch()).count(); }

double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// Median over `iters` calls of fn (after one warm-up), in ms.
double time_ms(int iters, const std::function<void()>& fn) {
    fn();
    std::vector<double> t;
    for (int i = 0; i < iters; ++i) {
        const double t0 = now_ms();
        fn();
        t.push_back(now_ms() - t0);
    }
    return median_of(t);
}

// Stage names for the interval that ends at a given point.
std::string stage_ending_at(const ViT& m, int point) {
    if (point == 0) return "patch extraction";
    if (point == m.head_point()) return "last fc2 + residual + final LayerNorm";
    const int local = (point - 1) % ViT::kPointsPerBlock;
    const bool first = point == 1;
    switch (local) {
        case ViT::kQkvIn: return first ? "patch-embed GEMM + pos + LN1" : "fc2 GEMM + residual + LN1";
        case ViT::kQ: return "qkv GEMM";
        case ViT::kK:
        case ViT::kV: return "(hook bookkeeping)";
        case ViT::kScores: return "attention q.kT (pack + GEMM + scale; integer: + codes)";
        case ViT::kProbs: return "softmax";
        case ViT::kProjIn: return "attention p.v (pack + GEMM; integer: + codes)";
        case ViT::kFc1In: return "proj GEMM + residual + LN2";
        case ViT::kFc2In: return "fc1 GEMM + GELU";
    }
    return "?";
}

struct TimingHook : ActivationHook {
    const ViT& m;
    ActivationHook* inner;
    double last = 0, hook_ms = 0;
    std::map<std::string, double> stage, hook_kind;  // hook_kind: the inner hook's time per point kind
    TimingHook(const ViT& model, ActivationHook* in) : m(model), inner(in) {}
    void on_activation(int point, float* x, size_t rows, size_t cols, size_t ld) override {
        const double t = now_ms();
        stage[stage_ending_at(m, point)] += t - last;
        if (inner) inner->on_activation(point, x, rows, cols, ld);
        last = now_ms();
        hook_ms += last - t;
        if (inner) hook_kind[point_kind_name(m.points[size_t(point)].kind)] += last - t;
    }
};

void print_stages(const ViT& m, const float* img, ActivationHook* inner, int iters, const char* title) {
    Workspace ws;
    std::vector<float> logits(size_t(m.cfg.num_classes));
    std::map<std::string, std::vector<double>> per, per_kind;
    std::vector<double> hooks, tails, totals;
    for (int it = 0; it <= iters; ++it) {
        TimingHook h(m, inner);
        const double t0 = now_ms();
        h.last = t0;
        m.forward(img, logits.data(), ws, &h);
        const double t1 = now_ms();
        if (it == 0) continue;  // warm-up
        for (auto& [k2, v] : h.stage) per[k2].push_back(v);
        for (auto& [k2, v] : h.hook_kind) per_kind[k2].push_back(v);
        hooks.push_back(h.hook_ms);
        tails.push_back(t1 - h.last);
        totals.push_back(t1 - t0);
    }
    const double total = median_of(totals);
    std::printf("\n%s — stages (median of %d, ms per image; total %.2f ms incl. timing hooks)\n", title, iters, total);
    std::vector<std::pair<double, std::string>> rows;
    for (auto& [name, v] : per) rows.push_back({median_of(v), name});
    rows.push_back({median_of(tails), "head GEMM (+ dist head)"});
    rows.push_back({median_of(hooks), inner ? "fake-quant hooks (FakeQuantHook)" : "timing hooks"});
    std::sort(rows.rbegin(), rows.rend());
    for (auto& [v, name] : rows) std::printf("  %-44s %9.2f  %5.1f%%\n", name.c_str(), v, 100 * v / total);
    if (per_kind.empty()) return;
    std::vector<std::pair<double, std::string>> kinds;
    for (auto& [name, v] : per_kind) kinds.push_back({median_of(v), name});
    std::sort(kinds.rbegin(), kinds.rend());
    std::printf("  fake-quant hooks by point:");
    for (auto& [v, name] : kinds) std::printf(" %s %.2f", name.c_str(), v);
    std::printf(" ms\n");
}

void components(const ViT& m, int iters) {
    const ViTConfig& c = m.cfg;
    const size_t T = size_t(c.tokens()), D = size_t(c.hidden), H = size_t(c.heads), d = size_t(c.head_dim()),
                 F = size_t(c.mlp_dim), Np = size_t(c.num_patches()), PP = size_t(c.channels * c.patch * c.patch),
                 L = size_t(c.depth), NC = size_t(c.num_classes);
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.f, 1.f);
    auto rnd = [&](size_t n) { std::vector<float> v(n); for (float& x : v) x = nd(rng); return v; };
    std::vector<float> x = rnd(T * std::max(F, 3 * D)), y(T * std::max(F, 3 * D) + 16), g = rnd(D), b = rnd(D);
    std::vector<float> s = rnd(H * T * T), pk(k::f32_gemm_packed_floats(T, d)), pv(k::f32_gemm_packed_floats(d, T));
    auto lin = [&](size_t rows, size_t N, size_t K) {
        std::vector<float> w = rnd(N * K), p(k::f32_gemm_packed_floats(N, K)), bias = rnd(N);
        k::f32_gemm_pack(N, K, w.data(), K, 1, p.data());
        std::vector<float> a = rnd(rows * K), o(rows * N);
        return time_ms(iters, [&] { k::f32_gemm_4x8_wasmsimd(rows, N, K, a.data(), K, p.data(), bias.data(), o.data(), N); });
    };
    struct Row { std::string name; double ms; double flops; };
    std::vector<Row> r;
    r.push_back({"GEMM qkv " + std::to_string(T) + "x" + std::to_string(D) + "x" + std::to_string(3 * D), L * lin(T, 3 * D, D), 2.0 * L * T * D * 3 * D});
    r.push_back({"GEMM proj", L * lin(T, D, D), 2.0 * L * T * D * D});
    r.push_back({"GEMM fc1", L * lin(T, F, D), 2.0 * L * T * D * F});
    r.push_back({"GEMM fc2", L * lin(T, D, F), 2.0 * L * T * F * D});
    r.push_back({"GEMM patch-embed", lin(Np, D, PP), 2.0 * Np * PP * D});
    r.push_back({"GEMM head", lin(1, NC, D), 2.0 * NC * D});
    const double qk = time_ms(iters, [&] {
        for (size_t h = 0; h < H; ++h) {
            k::f32_gemm_pack(T, d, x.data() + D + h * d, 3 * D, 1, pk.data());
            float* sp = &s[h * T * T];
            k::f32_gemm_4x8_wasmsimd(T, T, d, x.data() + h * d, 3 * D, pk.data(), nullptr, sp, T);
            for (size_t i = 0; i < T * T; ++i) sp[i] = sp[i] * 0.125f;
        }
    });
    r.push_back({"attention q.kT (pack + GEMM + scale)", L * qk, 2.0 * L * H * T * T * d});
    const double pvt = time_ms(iters, [&] {
        for (size_t h = 0; h < H; ++h) {
            k::f32_gemm_pack(d, T, x.data() + 2 * D + h * d, 1, 3 * D, pv.data());
            k::f32_gemm_4x8_wasmsimd(T, d, T, &s[h * T * T], T, pv.data(), nullptr, y.data() + h * d, D);
        }
    });
    r.push_back({"attention p.v (pack + GEMM)", L * pvt, 2.0 * L * H * T * T * d});
    // softmax works in place: refill from a copy each call so its inputs stay realistic
    std::vector<float> s0 = s;
    const double sm = time_ms(iters, [&] { std::memcpy(s.data(), s0.data(), s.size() * 4); k::f32_softmax_wasmsimd(H * T, T, s.data(), T); });
    const double cp = time_ms(iters, [&] { std::memcpy(s.data(), s0.data(), s.size() * 4); });
    r.push_back({"softmax", L * std::max(0.0, sm - cp), 0});
    r.push_back({"LayerNorm (2 per block + final)", (2 * L + 1) * time_ms(iters, [&] { k::f32_layernorm_wasmsimd(T, D, x.data(), D, g.data(), b.data(), 1e-6f, y.data(), D); }), 0});
    std::vector<float> gx = rnd(T * F), gx0 = gx;
    const double ge = time_ms(iters, [&] { std::memcpy(gx.data(), gx0.data(), gx.size() * 4); k::f32_gelu_wasmsimd(T * F, gx.data()); });
    const double gc = time_ms(iters, [&] { std::memcpy(gx.data(), gx0.data(), gx.size() * 4); });
    r.push_back({std::string(c.gelu_tanh ? "GELU (tanh)" : "GELU (erf)"), L * std::max(0.0, ge - gc), 0});
    r.push_back({"residual adds (scalar loops)", 2 * L * time_ms(iters, [&] { for (size_t i = 0; i < T * D; ++i) x[i] = x[i] + y[i]; }), 0});
    double total = 0;
    for (auto& e : r) total += e.ms;
    std::printf("\nfp32 components, each kernel alone at the model's shapes (median of %d, ms per image, x%zu blocks)\n", iters, L);
    for (auto& e : r) {
        std::printf("  %-44s %9.2f  %5.1f%%", e.name.c_str(), e.ms, 100 * e.ms / total);
        if (e.flops > 0) std::printf("  %6.1f GFLOP/s", e.flops / (e.ms * 1e6));
        std::printf("\n");
    }
    std::printf("  %-44s %9.2f\n", "sum", total);
}

// Reads MODEL_DIR/{model.safetensors, config.json, preprocessor_config.json} with plain file I/O (the
// library's own file reading is native-only; the WASM build of this tool runs with NODERAWFS).
ModelSource read_dir(const std::string& dir) {
    auto slurp = [](const std::string& path, bool required) {
        std::ifstream f(path, std::ios::binary);
        if (!f) {
            if (required) throw std::runtime_error("cannot open " + path);
            return std::string();
        }
        return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    };
    ModelSource src;
    const std::string st = slurp(dir + "/model.safetensors", true);
    src.safetensors.assign(st.begin(), st.end());
    src.safetensors_name = dir + "/model.safetensors";
    src.config_json = slurp(dir + "/config.json", false);
    src.config_name = dir + "/config.json";
    src.preprocessor_json = slurp(dir + "/preprocessor_config.json", false);
    src.preprocessor_name = dir + "/preprocessor_config.json";
    return src;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: bitlens-profile MODEL_DIR [--iters N] [--calib N] [--no-w8a8] [--bits B] [--softmax uniform|log2|sulq]\n");
        return 2;
    }
    int iters = 10, ncal = 8;
    bool w8a8 = true;
    int bits = 8;  // --bits 4: the integer section at W4A4 (SULQ probs: q·kᵀ on codes, probs·v float)
    std::string softmax = "sulq";  // --softmax uniform: probs·v on codes too
    std::string loop;
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--iters" && i + 1 < argc) iters = std::atoi(argv[++i]);
        else if (a == "--calib" && i + 1 < argc) ncal = std::atoi(argv[++i]);
        else if (a == "--no-w8a8") w8a8 = false;
        else if (a == "--bits" && i + 1 < argc) bits = std::atoi(argv[++i]);
        else if (a == "--softmax" && i + 1 < argc) softmax = argv[++i];
        else if (a == "--loop" && i + 1 < argc) loop = argv[++i];
    }
    try {
        LoadedModel lm = load_model(read_dir(argv[1]));
        const ViT& m = lm.vit;
        const size_t in = size_t(m.cfg.channels) * size_t(m.cfg.image_h) * size_t(m.cfg.image_w);
        std::printf("model %s: %d blocks, D=%d, heads=%d, MLP=%d, %d tokens, %zu parameters\n", argv[1], m.cfg.depth,
                    m.cfg.hidden, m.cfg.heads, m.cfg.mlp_dim, m.cfg.tokens(), m.parameter_count());
        // Calibration/timing images in the preprocessed domain: smooth fields + noise, roughly N(0, 1).
        std::mt19937 rng(11);
        std::normal_distribution<float> nd(0.f, 0.5f);
        PreparedData data;
        data.n = size_t(std::max(ncal, 1));
        data.input_size = in;
        data.inputs.resize(data.n * in);
        for (size_t i = 0; i < data.n; ++i)
            for (size_t j = 0; j < in; ++j) data.inputs[i * in + j] = std::sin(float(j % 997) * 0.01f * float(i + 1)) + nd(rng);
        data.labels.assign(data.n, 0);
        const float* img = data.inputs.data();

        Workspace ws;
        std::vector<float> logits(size_t(m.cfg.num_classes));
        if (loop == "fp32") {
            for (int i = 0; i < iters; ++i) m.forward(img, logits.data(), ws, nullptr);
            return 0;
        }
        if (loop == "w8a8") {
            QuantConfig qc;  // cheap calibration (1 image, min/max ranges): the loop is what perf should see
            qc.calib_size = 1;
            qc.w_range = qc.a_range = RangeMethod::MinMax;
            qc.wbits = qc.abits = bits, qc.softmax = parse_qtype(softmax);  // --bits, --softmax as below
            QuantizedViT q = quantize(m, data, qc, 1);
            enable_integer(q);
            FakeQuantHook fq(q);
            const double t0 = now_ms();
            for (int i = 0; i < iters; ++i) q.model.forward(img, logits.data(), ws, &fq);
            std::printf("%d W%dA%d forwards: %.1f ms each\n", iters, bits, bits, (now_ms() - t0) / iters);
            return 0;
        }
        const double fp = time_ms(iters, [&] { m.forward(img, logits.data(), ws, nullptr); });
        std::printf("\nend-to-end fp32 forward: %.2f ms (median of %d)\n", fp, iters);
        print_stages(m, img, nullptr, iters, "fp32");
        components(m, iters);

        if (w8a8) {
            QuantConfig qc;  // defaults, as model.quantize({wbits: B, abits: B}) in the bench
            qc.calib_size = int(data.n);
            qc.wbits = qc.abits = bits;
            qc.softmax = parse_qtype(softmax);
            const std::string name = "W" + std::to_string(bits) + "A" + std::to_string(bits) + (softmax == "sulq" ? "" : " " + softmax + " probs");
            const double t0 = now_ms();
            QuantizedViT q = quantize(m, data, qc, 1);
            const int ints = enable_integer(q);
            int attn = 0;
            for (const Block& b : q.model.blocks) attn += b.int_attn ? 1 + int(b.int_attn->pv) : 0;
            std::printf("\n%s: quantize %.0f ms, %d Linears and %d attention matmuls on the integer path\n", name.c_str(), now_ms() - t0, ints, attn);
            FakeQuantHook fq(q);
            const double qt = time_ms(iters, [&] { q.model.forward(img, logits.data(), ws, &fq); });
            std::printf("end-to-end %s integer forward (with FakeQuantHook, as QuantizedModel.evaluate): %.2f ms\n", name.c_str(), qt);
            print_stages(q.model, img, &fq, iters, (name + " integer").c_str());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bitlens-profile: %s\n", e.what());
        return 1;
    }
    return 0;
}
