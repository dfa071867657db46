#include "ptq.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "export.h"
#include "kernels.h"
#include "parallel.h"
#include "rng.h"
#include "simd.h"

namespace bitlens {

Method parse_method(const std::string& name) {
    if (name == "ptq") return Method::Ptq;
    if (name == "sos") return Method::Sos;
    throw std::runtime_error("unknown quantization method '" + name + "' (ptq or sos)");
}
const char* method_name(Method m) { return m == Method::Sos ? "sos" : "ptq"; }

std::string QuantConfig::name() const {
    const std::string tail = method == Method::Sos ? "+sos" : "";
    // A plan with per-layer or per-point bit-widths is no longer "WnAm".
    if (!layer_bits.empty() || !point_bits.empty()) return "mixed" + tail;
    std::string s = "W" + std::to_string(wbits) + "A" + std::to_string(abits);
    if (probs_bits() != abits) s += "/P" + std::to_string(probs_bits());
    return s + tail;
}

void QuantConfig::validate() const {
    check_bits(wbits, "weights (--wbits)");
    check_bits(abits, "activations (--abits)");
    check_bits(probs_bits(), "post-softmax (--softmax-bits)");
    if (weights != QType::Uniform && weights != QType::Pow2)
        throw std::runtime_error(std::string("weight quantizer '") + qtype_name(weights) + "' is not supported (uniform or pow2)");
    if (softmax == QType::Pow2) throw std::runtime_error("post-softmax quantizer 'pow2' is not supported (uniform, log2 or sulq)");
    for (const auto& kv : layer_bits) check_bits(kv.second, "layer " + kv.first);
    for (const auto& kv : point_bits) check_bits(kv.second, "activation point " + kv.first);
    if (calib_size < 1) throw std::runtime_error("calibration size must be at least 1, found " + std::to_string(calib_size));
    if (method == Method::Sos) {
        if (recon_iters < 0) throw std::runtime_error("--recon-iters must be 0 or more, found " + std::to_string(recon_iters));
        if (recon_batch < 1) throw std::runtime_error("--recon-batch must be at least 1, found " + std::to_string(recon_batch));
        if (recon_batch > calib_size)
            throw std::runtime_error("--recon-batch " + std::to_string(recon_batch) + " is larger than the calibration set (" +
                                     std::to_string(calib_size) + " images, --calib-size)");
        if (reparam)
            throw std::runtime_error("--reparam is stage 2 of --method sos (the reconstructed channel-wise scales are folded); drop --reparam");
    }
}

nlohmann::json config_json(const QuantConfig& c) {
    return {{"name", c.name()},           {"wbits", c.wbits},
            {"abits", c.abits},           {"softmax_bits", c.probs_bits()},
            {"weights", qtype_name(c.weights)}, {"granularity", c.per_channel ? "channel" : "tensor"},
            {"weight_range", range_name(c.w_range)}, {"act_range", range_name(c.a_range)},
            {"softmax", qtype_name(c.softmax)}, {"sulq_round_exponent", c.sulq_round_exponent},
            {"edges_8bit", c.edges_8bit}, {"reparam", c.reparam},
            {"calib_size", c.calib_size}, {"seed", c.seed}, {"layer_bits", c.layer_bits}, {"point_bits", c.point_bits},
            {"method", method_name(c.method)}, {"recon_iters", c.recon_iters}, {"recon_batch", c.recon_batch}};
}

QuantConfig config_from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw std::runtime_error("quantization config must be an object");
    QuantConfig c;
    auto num = [&](const std::string& k, int lo, int hi) {
        const nlohmann::json& v = j.at(k);
        if (!v.is_number_integer() || v.get<long long>() < lo || v.get<long long>() > hi)
            throw std::runtime_error("quantization config: '" + k + "' must be an integer from " + std::to_string(lo) + " to " +
                                     std::to_string(hi) + ", found " + v.dump());
        return v.get<int>();
    };
    auto str = [&](const std::string& k) {
        if (!j.at(k).is_string()) throw std::runtime_error("quantization config: '" + k + "' must be a string, found " + j.at(k).dump());
        return j.at(k).get<std::string>();
    };
    auto flag = [&](const std::string& k) {
        if (!j.at(k).is_boolean()) throw std::runtime_error("quantization config: '" + k + "' must be true or false, found " + j.at(k).dump());
        return j.at(k).get<bool>();
    };
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& k = it.key();
        if (k == "name") continue;
        else if (k == "wbits") c.wbits = num(k, 0, 64);
        else if (k == "abits") c.abits = num(k, 0, 64);
        else if (k == "softmax_bits" || k == "softmaxBits") c.softmax_bits = num(k, 0, 64);
        else if (k == "weights") c.weights = parse_qtype(str(k));
        else if (k == "granularity") {
            const std::string g = str(k);
            if (g != "channel" && g != "tensor") throw std::runtime_error("quantization config: granularity must be 'channel' or 'tensor', found '" + g + "'");
            c.per_channel = g == "channel";
        } else if (k == "weight_range" || k == "weightRange") c.w_range = parse_range(str(k));
        else if (k == "act_range" || k == "actRange") c.a_range = parse_range(str(k));
        else if (k == "softmax") c.softmax = parse_qtype(str(k));
        else if (k == "sulq_round_exponent" || k == "sulqRoundExponent") c.sulq_round_exponent = flag(k);
        else if (k == "edges_8bit" || k == "edges8bit") c.edges_8bit = flag(k);
        else if (k == "reparam") c.reparam = flag(k);
        else if (k == "method") c.method = parse_method(str(k));
        else if (k == "recon_iters" || k == "reconIters") c.recon_iters = num(k, -(1 << 30), 1 << 30);
        else if (k == "recon_batch" || k == "reconBatch") c.recon_batch = num(k, -(1 << 30), 1 << 30);
        else if (k == "calib_size" || k == "calibSize") c.calib_size = num(k, 0, 1 << 24);
        else if (k == "layer_bits" || k == "layerBits" || k == "point_bits" || k == "pointBits") {
            if (!it.value().is_object()) throw std::runtime_error("quantization config: '" + k + "' must be an object of name: bits");
            auto& m = (k[0] == 'l') ? c.layer_bits : c.point_bits;
            for (auto b = it.value().begin(); b != it.value().end(); ++b) {
                if (!b.value().is_number_integer()) throw std::runtime_error("quantization config: " + k + "['" + b.key() + "'] must be an integer");
                m[b.key()] = b.value().get<int>();
            }
        }
        else if (k == "seed") {
            if (!it.value().is_number_unsigned()) throw std::runtime_error("quantization config: 'seed' must be a non-negative integer, found " + it.value().dump());
            c.seed = it.value().get<uint64_t>();
        } else throw std::runtime_error("quantization config: unknown field '" + k + "'");
    }
    c.validate();
    return c;
}

QuantConfig parse_wa(const std::string& s, QuantConfig base) {
    int w = 0, a = 0;
    char tail = 0;
    std::string l = s;
    for (char& ch : l) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (std::sscanf(l.c_str(), "w%da%d%c", &w, &a, &tail) != 2)
        throw std::runtime_error("configuration '" + s + "' is not of the form W<bits>A<bits> (e.g. w4a4)");
    base.wbits = w, base.abits = a;
    base.validate();
    return base;
}

std::vector<size_t> draw_calibration(size_t pool, size_t n, uint64_t seed) {
    if (pool == 0) throw std::runtime_error("calibration set is empty");
    if (n > pool)
        throw std::runtime_error("calibration size " + std::to_string(n) + " is larger than the calibration pool (" +
                                 std::to_string(pool) + " images)");
    std::vector<size_t> idx(pool);
    for (size_t i = 0; i < pool; ++i) idx[i] = i;
    SplitMix64 rng(seed);
    for (size_t j = 0; j < n; ++j) std::swap(idx[j], idx[j + size_t(rng.next() % uint64_t(pool - j))]);
    idx.resize(n);
    return idx;
}

size_t QuantizedViT::weight_count() const {
    size_t n = 0;
    for (const Linear* l : model.linears()) n += l->weight.size();
    return n;
}

size_t QuantizedViT::model_bytes() const {
    // What export_quantized writes besides its header: packed codes, scales (or levels), FP32 remainder.
    const std::vector<const Linear*> ls = model.linears();
    size_t bytes = fp32_payload_bytes(model);
    for (size_t i = 0; i < ls.size(); ++i) bytes += linear_payload_bytes(*ls[i], wq[i]);
    return bytes;
}

double QuantizedViT::bits_per_weight() const {
    const std::vector<const Linear*> ls = model.linears();
    double bits = 0;
    for (size_t i = 0; i < ls.size(); ++i) bits += double(ls[i]->weight.size()) * wbits[i] + 32.0 * double(wq[i].size());
    return bits / double(weight_count());
}

FakeQuantHook::FakeQuantHook(const QuantizedViT& qv) : q(qv), active(qv.model.points.size(), 0) {
    const std::vector<const Linear*> ls = q.model.linears();
    for (size_t p = 0; p < active.size(); ++p) fast.emplace_back(q.aq[p]);
    // A point is skipped when the Linears reading it all quantize their input with its quantizer (integer path).
    std::vector<char> consumed(active.size(), 0), all_integer(active.size(), 1);
    for (size_t i = 0; i < ls.size(); ++i) {
        const Linear* l = ls[i];
        const size_t p = size_t(q.model.input_point(i));
        consumed[p] = 1;
        all_integer[p] = all_integer[p] && l->int8 && l->int8->in.type == QType::Uniform && l->int8->in.scale == q.aq[p].scale &&
                         l->int8->in.zero == q.aq[p].zero && l->int8->in.qmin == q.aq[p].qmin && l->int8->in.qmax == q.aq[p].qmax;
    }
    // Likewise the q and k points (v and probs) of a block whose attention runs integer with their quantizers.
    for (size_t bi = 0; bi < q.model.blocks.size(); ++bi) {
        const IntAttention* ia = q.model.blocks[bi].int_attn.get();
        if (!ia) continue;
        auto skip_if = [&](ViT::BlockPoint bp, const Quantizer& used) {
            const size_t p = size_t(q.model.point_index(int(bi), bp));
            consumed[p] = 1;
            all_integer[p] = all_integer[p] && identical(used, q.aq[p]);
        };
        skip_if(ViT::kQ, ia->q);
        skip_if(ViT::kK, ia->k);
        if (ia->pv) skip_if(ViT::kV, ia->v), skip_if(ViT::kProbs, ia->probs);
    }
    for (size_t p = 0; p < active.size(); ++p) active[p] = q.act_on[p] && !(consumed[p] && all_integer[p]);
}

void FakeQuantHook::on_activation(int point, float* x, size_t rows, size_t cols, size_t ld) {
    if (!active[size_t(point)]) return;
    for (size_t r = 0; r < rows; ++r) fast[size_t(point)].apply(x + r * ld, cols);
}

void sort_values(std::vector<float>& s) {
    // Sortable keys: the float's bits with negatives reversed; a total order, so the result is unique.
    std::vector<uint32_t> key(s.size());
    for (size_t j = 0; j < s.size(); ++j) {
        const uint32_t u = bl_f2u(s[j]);
        key[j] = u & 0x80000000u ? ~u : u | 0x80000000u;
    }
    std::sort(key.begin(), key.end());
    for (size_t j = 0; j < s.size(); ++j) s[j] = bl_u2f(key[j] & 0x80000000u ? key[j] & 0x7FFFFFFFu : ~key[j]);
}

namespace {

constexpr size_t kSampleCap = 1 << 15;  // values kept per point for the range searches (a few more when images > kSampleCap)

// The sampling stride of a point producing n values per image (cols per row) when each image may keep
// `quota`: ⌈n / quota⌉, raised to the next integer coprime with cols. Coprime, so the kept positions
// r·cols + c ≡ 0 (mod s) walk through every channel c instead of the same few (a stride of 4 over 64
// channels would keep channels 0, 4, 8, … only; 10 over 50 attention keys, keys 0, 10, …, 40 only).
size_t sample_stride(size_t n, size_t cols, size_t quota) {
    size_t s = std::max<size_t>(1, (n + quota - 1) / quota);
    while (s > 1 && std::gcd(s, cols) != 1) ++s;
    return s;
}

// Collects, per point, a sample of its values and per-channel min/max over a set of images, as a function
// of the set, not of the order the images come in: each image (one on_activation call per point) keeps
// its own values at positions 0, s, 2s, … of its rows × cols, s = sample_stride(rows·cols, cols,
// ⌊kSampleCap / images⌋) — so every image contributes the same count, at most kSampleCap together — and
// finish() sorts each point's kept values (by a total order on their bits: −0 before +0, NaNs at the ends),
// so the range searches, whose floating-point sums follow the order of the values, see the same sequence
// for any order of the images. Min and max are order-invariant already.
struct Observer : ActivationHook {
    size_t quota;  // values kept per image and point
    std::vector<std::vector<float>> samples;
    std::vector<std::vector<float>> cmin, cmax;
    std::vector<size_t> seen, stride;  // values seen per point over all images; per point's stride
    Observer(size_t points, size_t n_images)
        : quota(std::max<size_t>(1, kSampleCap / std::max<size_t>(1, n_images))), samples(points), cmin(points), cmax(points),
          seen(points, 0), stride(points, 0) {}
    void on_activation(int p, float* x, size_t rows, size_t cols, size_t ld) override {
        const size_t i = size_t(p), n = rows * cols;
        if (n == 0) return;
        if (!stride[i]) {
            stride[i] = sample_stride(n, cols, quota);
            cmin[i].assign(cols, x[0]), cmax[i].assign(cols, x[0]);
        }
        for (size_t pos = 0; pos < n; pos += stride[i]) samples[i].push_back(x[(pos / cols) * ld + pos % cols]);
        for (size_t r = 0; r < rows; ++r)
            for (size_t c = 0; c < cols; ++c) {
                const float v = x[r * ld + c];
                cmin[i][c] = std::min(cmin[i][c], v), cmax[i][c] = std::max(cmax[i][c], v);
            }
        seen[i] += n;
    }
    void finish() {
        for (std::vector<float>& s : samples) sort_values(s);
    }
};

bool is_edge(const std::string& linear) { return linear == "patch_embed.proj" || linear == "head" || linear == "head_dist"; }

Observer observe(const ViT& m, const PreparedData& calib, const std::vector<size_t>& idx) {
    Observer obs(m.points.size(), idx.size());
    Workspace ws;
    std::vector<float> logits(size_t(m.cfg.num_classes));
    for (size_t i : idx) m.forward(&calib.inputs[i * calib.input_size], logits.data(), ws, &obs);
    obs.finish();
    return obs;
}

// RepQ-ViT: per-channel asymmetric scales s_c and zero points z_c of a post-LN activation are made
// layer-wise (s̃ = mean s_c, z̃ = round(mean z_c)) by folding r1 = s_c/s̃ and r2 = z_c − z̃ into the
// LayerNorm affine (γ' = γ/r1, β' = (β + s⊙r2)/r1) and the next Linear (W' = W·diag(r1),
// b' = b − W·(s⊙r2)). The FP32 function is unchanged.
void reparameterise(LayerNorm& ln, Linear& next, const std::vector<float>& cmin, const std::vector<float>& cmax, int bits) {
    const size_t D = ln.gamma.size();
    const double levels = double((1 << bits) - 1);
    std::vector<double> s(D), z(D);
    double smean = 0, zmean = 0;
    for (size_t c = 0; c < D; ++c) {
        const double lo = std::min(0.0, double(cmin[c])), hi = std::max(0.0, double(cmax[c]));
        s[c] = std::max(hi - lo, 1e-8) / levels;
        z[c] = std::nearbyint(-lo / s[c]);
        smean += s[c], zmean += z[c];
    }
    smean /= double(D), zmean = std::nearbyint(zmean / double(D));
    fold_channel_scales(ln, next, s, z, smean, zmean);
}

}  // namespace

void fold_channel_scales(LayerNorm& ln, Linear& next, const std::vector<double>& s, const std::vector<double>& z, double s_layer,
                         double z_layer) {
    const size_t D = ln.gamma.size();
    if (s.size() != D || z.size() != D || size_t(next.in) != D)
        throw std::logic_error("fold_channel_scales: " + ln.name + " has " + std::to_string(D) + " channels, " + next.name + " " +
                               std::to_string(next.in) + " inputs, " + std::to_string(s.size()) + " scales given");
    std::vector<double> r1(D), shift(D);
    for (size_t c = 0; c < D; ++c) r1[c] = s[c] / s_layer, shift[c] = s[c] * (z[c] - z_layer);
    for (size_t o = 0; o < size_t(next.out); ++o) {
        double acc = 0;
        for (size_t c = 0; c < D; ++c) acc += double(next.weight[o * D + c]) * shift[c];
        if (next.bias.empty()) next.bias.assign(size_t(next.out), 0.0f);
        next.bias[o] = float(double(next.bias[o]) - acc);
        for (size_t c = 0; c < D; ++c) next.weight[o * D + c] = float(double(next.weight[o * D + c]) * r1[c]);
    }
    for (size_t c = 0; c < D; ++c) {
        ln.gamma[c] = float(double(ln.gamma[c]) / r1[c]);
        ln.beta[c] = float((double(ln.beta[c]) + shift[c]) / r1[c]);
    }
    next.pack();
}

PointSamples observe_points(const ViT& m, const PreparedData& data, const std::vector<size_t>& idx) {
    Observer obs = observe(m, data, idx);
    PointSamples ps;
    ps.samples = std::move(obs.samples);
    for (size_t i = 0; i < obs.seen.size(); ++i) ps.per_image.push_back(idx.empty() ? 0 : obs.seen[i] / idx.size());
    return ps;
}

bool point_quantized(const ActPoint& p) { return p.kind != PointKind::AttnScores; }  // scores stay in the int32 accumulator domain

int point_bits(const ActPoint& p, const QuantConfig& cfg) {
    auto ov = cfg.point_bits.find(p.name);
    if (ov != cfg.point_bits.end()) return ov->second;
    if (cfg.edges_8bit && (p.kind == PointKind::PatchInput || p.kind == PointKind::HeadInput)) return 8;
    return p.kind == PointKind::AttnProbs ? cfg.probs_bits() : cfg.abits;
}

Quantizer fit_point(const ActPoint& p, const std::vector<float>& samples, int bits, const QuantConfig& cfg) {
    const QType type = p.kind == PointKind::AttnProbs ? cfg.softmax : QType::Uniform;
    return fit(type, samples, bits, false, cfg.a_range, cfg.sulq_round_exponent);
}

ViT reparameterised(const ViT& fp, const PreparedData& calib, const std::vector<size_t>& idx, int bits) {
    ViT m = fp;
    Observer obs = observe(m, calib, idx);
    for (size_t b = 0; b < m.blocks.size(); ++b) {
        Block& blk = m.blocks[b];
        const size_t p1 = size_t(m.point_index(int(b), ViT::kQkvIn)), p2 = size_t(m.point_index(int(b), ViT::kFc1In));
        reparameterise(blk.norm1, blk.qkv, obs.cmin[p1], obs.cmax[p1], bits);
        reparameterise(blk.norm2, blk.fc1, obs.cmin[p2], obs.cmax[p2], bits);
    }
    return m;
}

void channel_ranges(const ViT& m, const PreparedData& data, const std::vector<size_t>& idx, int point, std::vector<float>& cmin,
                    std::vector<float>& cmax) {
    Observer obs = observe(m, data, idx);
    cmin = obs.cmin[size_t(point)], cmax = obs.cmax[size_t(point)];
}

int layer_bits(const Linear& l, const QuantConfig& cfg) {
    auto ov = cfg.layer_bits.find(l.name);
    return ov != cfg.layer_bits.end() ? ov->second : cfg.edges_8bit && is_edge(l.name) ? 8 : cfg.wbits;
}

std::vector<Quantizer> quantize_weights(Linear& l, int bits, const QuantConfig& cfg) {
    std::vector<Quantizer> qs;
    const size_t rows = cfg.per_channel ? size_t(l.out) : 1, len = l.weight.size() / rows;
    for (size_t r = 0; r < rows; ++r) {
        std::vector<float> w(l.weight.begin() + long(r * len), l.weight.begin() + long((r + 1) * len));
        Quantizer qz = fit(cfg.weights, w, bits, true, cfg.w_range);
        for (size_t j = 0; j < len; ++j) l.weight[r * len + j] = qz.fake(w[j]);
        qs.push_back(std::move(qz));
    }
    l.pack();
    return qs;
}

QuantizedViT quantize(const ViT& fp, const PreparedData& calib, const QuantConfig& cfg, int jobs) {
    cfg.validate();
    if (cfg.method != Method::Ptq)
        throw std::logic_error(std::string("quantize() is PTQ; method '") + method_name(cfg.method) + "' runs through train::quantize_method");
    if (calib.n == 0) throw std::runtime_error("calibration set is empty");
    if (calib.input_size != size_t(fp.cfg.channels) * size_t(fp.cfg.image_h) * size_t(fp.cfg.image_w))
        throw std::runtime_error("calibration images have " + std::to_string(calib.input_size) + " values each, the model expects " +
                                 std::to_string(fp.cfg.channels) + "x" + std::to_string(fp.cfg.image_h) + "x" +
                                 std::to_string(fp.cfg.image_w));
    const std::vector<size_t> idx = draw_calibration(calib.n, size_t(cfg.calib_size), cfg.seed);
    QuantizedViT q;
    q.cfg = cfg;
    q.model = fp;
    for (const auto& kv : cfg.layer_bits) {
        bool found = false;
        for (const Linear* l : q.model.linears()) found = found || l->name == kv.first;
        if (!found) throw std::runtime_error("layer_bits: the model has no layer '" + kv.first + "'");
    }
    for (const auto& kv : cfg.point_bits) {
        bool found = false;
        for (const ActPoint& p : q.model.points) found = found || p.name == kv.first;
        if (!found) throw std::runtime_error("point_bits: the model has no activation point '" + kv.first + "'");
    }

    // 1. RepQ-ViT reparameterisation of post-LN activations (on the FP32 model).
    if (cfg.reparam) q.model = reparameterised(fp, calib, idx, cfg.abits);

    // 2. Weights: fit per output channel (or per tensor), replace by their quantized values.
    std::vector<Linear*> ls = q.model.linears();
    q.wq.resize(ls.size());
    q.wbits.resize(ls.size());
    parallel_for(ls.size(), jobs, [&](size_t b, size_t e, int) {
        for (size_t i = b; i < e; ++i) {
            q.wbits[i] = layer_bits(*ls[i], cfg);
            q.wq[i] = quantize_weights(*ls[i], q.wbits[i], cfg);
        }
    });

    // 3. Activations: observe on the calibration images (weights quantized), fit each point.
    Observer obs = observe(q.model, calib, idx);
    const size_t P = q.model.points.size();
    // act_on is set here, before the threads. It was a std::vector<bool> set by them: its bits share words, and a
    // thread setting its point's bit could erase another's (a point left unquantized now and then with jobs = 2).
    q.act_on.assign(P, false);
    for (size_t i = 0; i < P; ++i) q.act_on[i] = point_quantized(q.model.points[i]);
    q.aq.resize(P);
    parallel_for(P, jobs, [&](size_t b, size_t e, int) {
        for (size_t i = b; i < e; ++i)
            if (q.act_on[i]) q.aq[i] = fit_point(q.model.points[i], obs.samples[i], point_bits(q.model.points[i], cfg), cfg);
    });
    return q;
}

namespace {

// A weight quantizer's levels as integers times one scale: uniform codes with their scale (zero point 0),
// or power-of-two levels (0, ±2^n) as multiples of the smallest magnitude — exact, since each level is a
// power of two times that one. Fails (returns false) when a level is not such a multiple or a multiple
// does not fit int8.
bool integer_levels(const Quantizer& wz, float& scale, std::vector<int32_t>& multiple) {
    multiple.clear();
    if (wz.type == QType::Uniform) {
        if (wz.zero != 0 || wz.qmin < -128 || wz.qmax > 127) return false;
        scale = wz.scale;
        return true;
    }
    if (wz.type != QType::Pow2) return false;
    float smallest = 0;
    for (float v : wz.table)
        if (v != 0 && (smallest == 0 || std::fabs(v) < smallest)) smallest = std::fabs(v);
    if (smallest == 0) return false;
    for (float v : wz.table) {
        const float m = v / smallest;  // exact for powers of two within range
        if (!(std::fabs(m) <= 127) || m != std::nearbyint(m) || float(int32_t(m)) * smallest != v) return false;
        multiple.push_back(int32_t(m));
    }
    scale = smallest;
    return true;
}

// Whether the integer attention's sums over K terms (IntAttention) stay within int32 at every step: the GEMM
// (|a|, |w| ≤ 128), the corrections and their total.
bool fits_int32(size_t K, int32_t alpha, int32_t beta) {
    const int64_t a = std::abs(int64_t(alpha)), b = std::abs(int64_t(beta));
    return int64_t(K) * (128 * 128 + 128 * a + 128 * b + a * b) < (int64_t(1) << 31);
}

// The uniform quantizer of block point bp when it is on, else null.
const Quantizer* uniform_point(const QuantizedViT& q, size_t block, ViT::BlockPoint bp) {
    const size_t p = size_t(q.model.point_index(int(block), bp));
    return q.act_on[p] && q.aq[p].type == QType::Uniform ? &q.aq[p] : nullptr;
}

// Codes − shift of q fit int8.
bool fits_int8(const Quantizer& q, int32_t shift) { return q.qmin - shift >= -128 && q.qmax - shift <= 127; }

// The integer attention of block `bi` (IntAttention), or null when q or k is not quantized uniformly (then it stays
// float; probs·v is integer when probs and v are quantized uniformly too).
std::shared_ptr<const IntAttention> integer_attention(const QuantizedViT& q, size_t bi) {
    const Quantizer *qq = uniform_point(q, bi, ViT::kQ), *kq = uniform_point(q, bi, ViT::kK);
    if (!qq || !kq) return nullptr;
    auto ia = std::make_shared<IntAttention>();
    ia->q = *qq, ia->k = *kq, ia->q_shift = activation_shift(*qq);
    const size_t d = size_t(q.model.cfg.head_dim()), T = size_t(q.model.cfg.tokens());
    if (!fits_int8(*qq, ia->q_shift) || !weight_shift(*kq, ia->k_shift) ||
        !fits_int32(d, ia->q_shift - qq->zero, ia->k_shift - kq->zero))
        return nullptr;
    const Quantizer *pq = uniform_point(q, bi, ViT::kProbs), *vq = uniform_point(q, bi, ViT::kV);
    if (pq && vq) {
        const int32_t p_shift = activation_shift(*pq);
        int32_t v_shift = 0;
        if (fits_int8(*pq, p_shift) && weight_shift(*vq, v_shift) && fits_int32(T, p_shift - pq->zero, v_shift - vq->zero))
            ia->pv = true, ia->probs = *pq, ia->v = *vq, ia->p_shift = p_shift, ia->v_shift = v_shift;
    }
    return ia;
}

// fc1 → GELU → fc2's input codes as thresholds on fc1's output x (IntGelu), when there are few enough. With
// c(x) = IntGelu::code (GELU, then fc2's input quantizer: the references, bit for bit the SIMD kernels), GELU falls
// from −0 to its minimum at x* ≈ −0.7518 and rises after it, so c falls (weakly) to c* = c(x*), then rises:
//   x ≥ x*: c(x) = c* + #{up ≤ x},  up[i] where the code first reaches c* + i + 1;
//   x < x*: c(x) = c* + #{x ≤ down},  down[i] where it last is c* + i + 1 or more;
//   NaN and −inf (GELU: NaN): c(NaN).
// Each threshold is found by bisection and then every float within kScan ulps of it is computed: GELU in float
// is within ~1e-6 of the real one but not monotone to the last bit, so its code can step back and forth over a
// few ulps (3 measured on the shipped DeiT). Such a stretch becomes a zone, computed exactly by the kernel; the
// threshold is its first (up) or last (down) float. So every code equals the float GELU's, as long as each
// stretch lies within kScan ulps of its bisection point: the error bound gives ≤ ~400 ulps wherever the slope is
// not flat, i.e. unless a quantizer boundary lies within 1% of GELU's minimum — then no thresholds (GELU stays
// float), as when they would be more than kThresholdCodesMax. The result is checked at the extremes, at x*, on a
// grid and around every threshold; any mismatch also leaves GELU in float.
std::shared_ptr<IntGelu> integer_gelu(const IntLinear& fc2, bool tanh_form) {
    constexpr int64_t kScan = 2048;
    const float xs = -0.75179154f, big = std::numeric_limits<float>::max(), inf = std::numeric_limits<float>::infinity();
    auto g = std::make_shared<IntGelu>();
    g->in = fc2.in, g->shift = fc2.shift, g->tanh_form = tanh_form;
    auto code = [&](float x) { return g->code(x); };
    auto key = [](float x) { return int64_t(kernels::order_key(bl_f2u(x + 0.0f))); };
    auto from_key = [](int64_t k) { const uint32_t u = uint32_t(k); return bl_u2f(u & 0x80000000u ? u & 0x7FFFFFFFu : ~u); };
    g->base = code(xs), g->special = code(std::numeric_limits<float>::quiet_NaN());
    if (int64_t(code(big)) + code(-big) - 2 * int64_t(g->base) > int64_t(kernels::kThresholdCodesMax)) return nullptr;
    {  // a quantizer boundary near GELU's minimum (flat there): its stretch could be wider than the scan
        float m = xs;
        (tanh_form ? kernels::f32_gelu_tanh_ref : kernels::f32_gelu_ref)(1, &m);
        if (g->quantize(m * 1.01f) != g->base || g->quantize(m * 0.99f) != g->base) return nullptr;
    }
    // One step of the code at `level` between keys a (code below it on that side) and b (at or above it);
    // a < b for a rise (right of x*), a > b for a fall (left). Returns false when the stretch is not inside the scan.
    auto step = [&](int64_t a, int64_t b, int32_t level, std::vector<float>& cuts) {
        while (std::abs(b - a) > 1) {
            const int64_t mid = a + (b - a) / 2;
            (code(from_key(mid)) >= level ? b : a) = mid;
        }
        const int64_t dir = b > a ? 1 : -1, lo_end = a - dir * kScan, hi_end = b + dir * kScan;
        if (code(from_key(lo_end)) >= level || code(from_key(hi_end)) < level) return false;
        int64_t first_at = b, last_below = a;  // in the direction of the rise
        for (int64_t k = lo_end; k != hi_end + dir; k += dir) {
            const bool at = code(from_key(k)) >= level;
            if (at && dir * (k - first_at) < 0) first_at = k;
            if (!at && dir * (k - last_below) > 0) last_below = k;
        }
        cuts.push_back(from_key(first_at));
        if (dir * (last_below - first_at) > 0) {  // not monotone here: a zone from first_at to last_below
            g->zone_lo.push_back(from_key(std::min(first_at, last_below)));
            g->zone_hi.push_back(from_key(std::max(first_at, last_below)));
        }
        return true;
    };
    for (int32_t level = g->base + 1, top = code(big); level <= top; ++level)
        if (!step(key(xs), key(big), level, g->up)) return nullptr;
    for (int32_t level = code(-big); level > g->base; --level)  // highest first: down ascends
        if (!step(key(xs), key(-big), level, g->down)) return nullptr;
    std::vector<float> probe{-inf, -big, -0.0f, 0.0f, big, inf, std::numeric_limits<float>::quiet_NaN(),
                             std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min()};
    for (int i = -4000; i <= 4000; ++i) probe.push_back(float(i) * 0.004f);  // [−16, 16]
    std::vector<float> centres = g->up;
    centres.insert(centres.end(), g->down.begin(), g->down.end());
    centres.push_back(xs);
    for (float t : centres)
        for (int64_t d = -64; d <= 64; ++d) probe.push_back(from_key(key(t) + d));
    const kernels::ThresholdCodes tc = g->codes();
    for (float x : probe)
        if (kernels::f32_threshold_code(x, tc) != code(x)) return nullptr;
    return g;
}

// The same codes from fc1's int32 sums (IntGelu::sum_up/sum_down, kernels::SumThresholdCodes), skipping the floats.
// The float kernel's value v(s) = out_scale[n]·float(s − offset[n]) (+ bias[n]) never falls as the sum s grows
// (out_scale > 0; each float operation is monotone), so v ≥ up[j] holds from the first sum where it does, and v ≤
// down[j] up to the last: one integer threshold each, per channel. Over the sums fc1 can give — [lo, hi] from the
// weights' positive and negative sums and the input codes' range — which must lie in [−32767, 32766], so that int16
// holds every sum and both sentinels (32767 never exceeded, −32768 never undercut). Leaves the float kernel in place
// when a range does not fit, a value is not finite, or a sum's value lies in a zone where the count is not the code.
void integer_gelu_sums(IntGelu& g, const Linear& fc1) {
    const IntLinear& q = *fc1.int8;
    const size_t N = size_t(fc1.out), nu = g.up.size(), nd = g.down.size();
    const int64_t amin = q.in.qmin - q.shift, amax = q.in.qmax - q.shift;
    const kernels::ThresholdCodes tc = g.codes();
    kernels::ThresholdCodes counted = tc;  // the count alone, as the kernel gives it outside the zones
    counted.n_zones = 0;
    std::vector<int64_t> lo(N), hi(N);  // the sums channel n can give
    for (size_t n = 0; n < N; ++n)
        lo[n] = amin * q.pos_sum[n] + amax * q.neg_sum[n], hi[n] = amax * q.pos_sum[n] + amin * q.neg_sum[n];
    std::vector<int16_t> up(kernels::sum_threshold_size(N, nu), 32767), down(kernels::sum_threshold_size(N, nd), -32768);
    for (size_t n = 0; n < N; ++n) {
        if (lo[n] < -32767 || hi[n] > 32766 || !(q.out_scale[n] > 0)) return;
        const float* bias = fc1.bias.empty() ? nullptr : &fc1.bias[n];
        auto v = [&](int64_t s) {  // i32_dequant_tcodes_qs8_ref's value, operation for operation
            const float x = q.out_scale[n] * float(int32_t(s) - q.offset[n]);
            return bias ? x + *bias : x;
        };
        if (!std::isfinite(v(lo[n])) || !std::isfinite(v(hi[n]))) return;
        auto first = [&](auto holds) {  // the first sum in [lo, hi] where holds(v) (monotone), else hi + 1
            int64_t a = lo[n], b = hi[n] + 1;
            while (a < b) {
                const int64_t m = a + (b - a) / 2;
                if (holds(v(m))) b = m; else a = m + 1;
            }
            return a;
        };
        for (size_t j = 0; j < nu; ++j)
            up[kernels::sum_threshold_index(n, j, nu)] = int16_t(first([&](float x) { return x >= g.up[j]; }) - 1);
        for (size_t j = 0; j < nd; ++j)
            down[kernels::sum_threshold_index(n, j, nd)] = int16_t(first([&](float x) { return x > g.down[j]; }));
        for (size_t z = 0; z < g.zone_lo.size(); ++z)  // the sums whose value lies in a zone: the count must be the code
            for (int64_t s = first([&](float x) { return x >= g.zone_lo[z]; }); s <= hi[n] && v(s) <= g.zone_hi[z]; ++s)
                if (kernels::f32_threshold_code(v(s), counted) != kernels::f32_threshold_code(v(s), tc)) return;
    }
    g.sum_up = std::move(up), g.sum_down = std::move(down), g.on_sums = true;
    // Probes: the range's ends and each threshold's two sides, both kernels' references, a row of channels at a time.
    const kernels::SumThresholdCodes sc = g.sum_codes();
    const size_t probes = 2 + 2 * (nu + nd);
    std::vector<int32_t> acc(probes * N);
    for (size_t n = 0; n < N; ++n) {
        std::vector<int64_t> probe{lo[n], hi[n]};
        for (size_t j = 0; j < nu; ++j) {
            const int64_t t = g.sum_up[kernels::sum_threshold_index(n, j, nu)];
            probe.push_back(t), probe.push_back(t + 1);
        }
        for (size_t j = 0; j < nd; ++j) {
            const int64_t t = g.sum_down[kernels::sum_threshold_index(n, j, nd)];
            probe.push_back(t), probe.push_back(t - 1);
        }
        for (size_t k = 0; k < probes; ++k) acc[k * N + n] = int32_t(std::clamp(probe[k], lo[n], hi[n]));
    }
    std::vector<int8_t> want(probes * N), got(probes * N);
    kernels::i32_dequant_tcodes_qs8_ref(probes, N, acc.data(), N, q.offset.data(), q.out_scale.data(),
                                        fc1.bias.empty() ? nullptr : fc1.bias.data(), tc, want.data(), N);
    kernels::i32_tcodes_qs8_ref(probes, N, acc.data(), N, sc, got.data(), N);
    g.on_sums = want == got;
    if (!g.on_sums) g.sum_up.clear(), g.sum_down.clear();
}

}  // namespace

int enable_integer(QuantizedViT& q) {
    std::vector<Linear*> ls = q.model.linears();
    int count = 0;
    for (size_t i = 0; i < ls.size(); ++i) {
        Linear& l = *ls[i];
        if (q.wq[i].empty()) continue;
        const int point = q.model.input_point(i);
        if (!q.act_on[size_t(point)] || q.aq[size_t(point)].type != QType::Uniform) continue;
        const size_t N = size_t(l.out), K = size_t(l.in), per = q.wq[i].size() == 1 ? 0 : 1;
        auto il = std::make_shared<IntLinear>();
        il->in = q.aq[size_t(point)];
        // Codes spanning at most 128 values (≤ 7 bits) become 0..127, which relaxed SIMD's dot multiplies exactly;
        // wider unsigned ones are moved into int8 by −128. The offset carries the shift: the same integers either way.
        il->shift = activation_shift(il->in);
        std::vector<int8_t> codes(N * K);
        il->wscale.resize(N);
        il->row_sum.assign(N, 0), il->pos_sum.assign(N, 0), il->neg_sum.assign(N, 0);
        bool ok = true, fits4 = true;
        std::vector<int32_t> multiple;
        for (size_t n = 0; n < N && ok; ++n) {
            const Quantizer& wz = q.wq[i][n * per];
            ok = integer_levels(wz, il->wscale[n], multiple);
            for (size_t k = 0; k < K && ok; ++k) {
                const int32_t c = wz.code(l.weight[n * K + k]);
                const int32_t v = multiple.empty() ? c : multiple[size_t(c)];
                codes[n * K + k] = int8_t(v);
                il->row_sum[n] += v, (v > 0 ? il->pos_sum : il->neg_sum)[n] += v;
                fits4 = fits4 && v >= -8 && v <= 7;
            }
        }
        if (!ok) continue;  // stays on the float path
        if (fits4) {  // weights whose integers fit 4 bits stay 4-bit in memory
            il->packed4.resize(N * kernels::qs4_gemm_kp(K) / 2);
            kernels::qs4_gemm_pack(N, K, codes.data(), il->packed4.data());
        } else {
            il->packed.resize(N * kernels::qs8_gemm_kp(K));
            kernels::qs8_gemm_pack(N, K, codes.data(), il->packed.data());
        }
        il->finish();
        l.int8 = std::move(il);
        ++count;
    }
    for (size_t bi = 0; bi < q.model.blocks.size(); ++bi) {
        Block& b = q.model.blocks[bi];
        b.int_attn = integer_attention(q, bi);
        std::shared_ptr<IntGelu> g = b.fc1.int8 && b.fc2.int8 ? integer_gelu(*b.fc2.int8, q.model.cfg.gelu_tanh) : nullptr;
        if (g) integer_gelu_sums(*g, b.fc1);
        b.int_gelu = std::move(g);
    }
    return count;
}

IntegerBlocks integer_blocks(const QuantizedViT& q) {
    IntegerBlocks r;
    for (const Block& b : q.model.blocks) r.attention += b.int_attn ? 1 + int(b.int_attn->pv) : 0, r.gelu += bool(b.int_gelu);
    return r;
}

EvalResult evaluate_quantized(const QuantizedViT& q, const PreparedData& data, int jobs) {
    FakeQuantHook hook(q);
    return evaluate(q.model, data, jobs, &hook);
}

}  // namespace bitlens
