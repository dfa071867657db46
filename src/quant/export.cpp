#include "export.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "json_limits.h"
#include "simd.h"

namespace bitlens {
using json = nlohmann::json;

namespace {

constexpr int kFormatVersion = 2;  // 2: int2 … int7 bit packings
const std::string kFused = "{query,key,value}";

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

uint64_t double_bits(double d) {
    uint64_t u;
    std::memcpy(&u, &d, 8);
    return u;
}

// Tensor prefixes in the checkpoint of a Linear: one, or three for a Hugging Face fused q/k/v.
std::vector<std::string> linear_sources(const Linear& l) {
    if (ends_with(l.source, kFused)) {
        const std::string base = l.source.substr(0, l.source.size() - kFused.size());
        return {base + "query", base + "key", base + "value"};
    }
    return {l.source};
}

// Every F32 tensor of the model other than the Linear weights, under the name the loader read it from.
std::map<std::string, std::vector<float>> float_tensors(const ViT& m) {
    std::map<std::string, std::vector<float>> out;
    auto put = [&](const std::string& name, const std::vector<float>& v) {
        if (!name.empty()) out[name] = v;
    };
    put(m.cls_source, m.cls_token);
    put(m.dist_source, m.dist_token);
    put(m.pos_source, m.pos_embed);
    std::vector<const LayerNorm*> norms{&m.norm, &m.fc_norm};
    for (const Block& b : m.blocks) norms.insert(norms.end(), {&b.norm1, &b.norm2});
    for (const LayerNorm* l : norms)
        if (!l->source.empty()) put(l->source + ".weight", l->gamma), put(l->source + ".bias", l->beta);
    for (const Linear* l : m.linears()) {
        if (l->bias.empty()) continue;
        const std::vector<std::string> srcs = linear_sources(*l);
        const size_t rp = size_t(l->out) / srcs.size();
        for (size_t s = 0; s < srcs.size(); ++s)
            out[srcs[s] + ".bias"] = std::vector<float>(l->bias.begin() + long(s * rp), l->bias.begin() + long((s + 1) * rp));
    }
    return out;
}

StTensor f32_tensor(const std::vector<float>& v, std::vector<int64_t> shape) {
    StTensor t;
    t.dtype = "F32";
    t.shape = std::move(shape);
    t.bytes.resize(v.size() * 4);
    if (!v.empty()) std::memcpy(t.bytes.data(), v.data(), v.size() * 4);
    return t;
}

// The fewest significant digits (≤ 9) that read back (as a double, then cast) as the same float.
json float_json(float f, const std::string& what) {
    if (!std::isfinite(f)) throw std::runtime_error(what + ": cannot export the non-finite value " + std::to_string(f));
    char buf[40];
    for (int prec = 6; prec <= 9; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*g", prec, double(f));
        const double d = std::strtod(buf, nullptr);
        if (bl_f2u(float(d)) == bl_f2u(f)) return d;
    }
    return double(f);  // exact
}
json floats_json(const std::vector<float>& v, const std::string& what) {
    json a = json::array();
    for (float f : v) a.push_back(float_json(f, what));
    return a;
}
json double_json(double d, const std::string& what) {
    if (!std::isfinite(d)) throw std::runtime_error(what + ": cannot export the non-finite value " + std::to_string(d));
    return d;  // nlohmann writes the shortest form that reads back as the same double
}

// Weight quantizers are rebuilt from what the tensors and metadata keep.
Quantizer uniform_weight(int bits, bool symmetric, int32_t qmin, int32_t qmax, float scale) {
    Quantizer q;
    q.type = QType::Uniform, q.bits = bits, q.symmetric = symmetric;
    q.scale = scale, q.zero = 0, q.qmin = qmin, q.qmax = qmax;
    return q;
}
Quantizer pow2_weight(int bits, std::vector<float> table) {
    Quantizer q;
    q.type = QType::Pow2, q.bits = bits;
    q.table = std::move(table);
    for (size_t i = 0; i + 1 < q.table.size(); ++i) q.thresholds.push_back(0.5f * (q.table[i] + q.table[i + 1]));  // as fit_pow2
    const size_t L = q.table.size();
    if (L >= 3 && q.table.back() > 0 && q.table[L / 2 + 1] > 0) {  // {−2^n1 … −2^n2, 0, 2^n2 … 2^n1}
        q.n1 = std::ilogb(q.table.back());
        q.n2 = std::ilogb(q.table[L / 2 + 1]);
    }
    return q;
}

// Uniform codes: the fewest bits (2 … 8) whose two's complement holds qmin..qmax; 0 when none does.
int code_bits(int32_t qmin, int32_t qmax) {
    for (int b = 2; b <= 8; ++b)
        if (qmin >= -(1 << (b - 1)) && qmax <= (1 << (b - 1)) - 1) return b;
    return 0;
}
std::string packing_of(QType type, int32_t qmin, int32_t qmax, size_t levels) {
    if (type == QType::Uniform) {
        const int b = code_bits(qmin, qmax);
        return b ? "int" + std::to_string(b) : std::string();
    }
    return levels <= 16 ? "index4" : levels <= 256 ? "index8" : "";
}
// Bits per code of a packing ("int3" → 3, "index4" → 4); 0 for an unknown name.
int packing_bits(const std::string& p) {
    if (p == "index4") return 4;
    if (p == "index8") return 8;
    if (p.size() == 4 && p.compare(0, 3, "int") == 0 && p[3] >= '2' && p[3] <= '8') return p[3] - '0';
    return 0;
}

}  // namespace

size_t linear_payload_bytes(const Linear& l, const std::vector<Quantizer>& wq) {
    if (wq.empty()) return 4 * l.weight.size();  // not quantized: the F32 weight
    const Quantizer& q0 = wq[0];
    const int bits = packing_bits(packing_of(q0.type, q0.qmin, q0.qmax, q0.table.size()));
    const size_t out = size_t(l.out), in = size_t(l.in), ns = linear_sources(l).size();
    const bool per_channel = wq.size() == out && out > 1;
    const size_t codes = out * packed_row_bytes(in, bits ? bits : 8);
    const size_t rows = per_channel ? out : ns;  // a per-tensor quantizer is written once per source tensor
    return codes + 4 * rows * (q0.type == QType::Uniform ? 1 : q0.table.size());
}

size_t fp32_payload_bytes(const ViT& m) {
    size_t n = 0;
    for (const auto& kv : float_tensors(m)) n += 4 * kv.second.size();
    return n;
}

namespace {

// ---- JSON access with errors naming the field ------------------------------------------------------
struct Fields {
    std::string what;  // prefix of errors, e.g. "model.safetensors: __metadata__ 'bitlens.quantization'"
    [[noreturn]] void fail(const std::string& path, const std::string& msg) const {
        throw std::runtime_error(what + ": " + (path.empty() ? "" : path + ": ") + msg);
    }
    const json& at(const json& j, const std::string& path, const char* key) const {
        if (!j.is_object()) fail(path, "expected an object, found " + std::string(j.type_name()));
        auto it = j.find(key);
        if (it == j.end()) fail(path.empty() ? key : path + "." + key, "missing");
        return *it;
    }
    static std::string sub(const std::string& path, const char* key) { return path.empty() ? key : path + "." + key; }
    long long integer(const json& j, const std::string& path, const char* key, long long lo, long long hi) const {
        const json& v = at(j, path, key);
        if (!v.is_number_integer() || v.get<long long>() < lo || v.get<long long>() > hi)
            fail(sub(path, key), "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", found " + v.dump());
        return v.get<long long>();
    }
    bool boolean(const json& j, const std::string& path, const char* key) const {
        const json& v = at(j, path, key);
        if (!v.is_boolean()) fail(sub(path, key), "expected true or false, found " + v.dump());
        return v.get<bool>();
    }
    std::string string(const json& j, const std::string& path, const char* key) const {
        const json& v = at(j, path, key);
        if (!v.is_string()) fail(sub(path, key), "expected a string, found " + v.dump());
        return v.get<std::string>();
    }
    double number(const json& v, const std::string& path) const {
        if (!v.is_number()) fail(path, "expected a number, found " + v.dump());
        return v.get<double>();
    }
    double number(const json& j, const std::string& path, const char* key) const { return number(at(j, path, key), sub(path, key)); }
    const json& array(const json& j, const std::string& path, const char* key) const {
        const json& v = at(j, path, key);
        if (!v.is_array()) fail(sub(path, key), "expected an array, found " + std::string(v.type_name()));
        return v;
    }
    std::vector<float> floats(const json& j, const std::string& path, const char* key) const {
        const json& a = array(j, path, key);
        std::vector<float> out;
        for (size_t i = 0; i < a.size(); ++i) out.push_back(float(number(a[i], sub(path, key) + "[" + std::to_string(i) + "]")));
        return out;
    }
};

QuantConfig quant_config_from_json(const json& j, const std::string& what) {
    try {
        return config_from_json(j);
    } catch (const std::exception& e) {
        throw std::runtime_error(what + ": " + e.what());
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
std::vector<uint8_t> pack_bits(const std::vector<int32_t>& codes, size_t rows, size_t cols, int bits) {
    if (bits < 1 || bits > 8) throw std::runtime_error("pack_bits: " + std::to_string(bits) + " bits per code is outside 1-8");
    const size_t bpr = packed_row_bytes(cols, bits);
    const int32_t lo = -(1 << (bits - 1)), hi = (1 << bits) - 1, mask = (1 << bits) - 1;
    std::vector<uint8_t> out(rows * bpr, 0);
    for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < cols; ++c) {
            const int32_t v = codes[r * cols + c];
            if (v < lo || v > hi) throw std::runtime_error("pack_bits: code " + std::to_string(v) + " does not fit in " + std::to_string(bits) + " bits");
            const uint32_t u = uint32_t(v) & uint32_t(mask);
            const size_t bit = c * size_t(bits);
            uint8_t* p = &out[r * bpr + bit / 8];
            const uint32_t w = u << (bit % 8);  // spans at most two bytes
            p[0] = uint8_t(p[0] | (w & 0xFF));
            if ((bit % 8) + size_t(bits) > 8) p[1] = uint8_t(p[1] | (w >> 8));
        }
    return out;
}

std::vector<int32_t> unpack_bits(const uint8_t* bytes, size_t rows, size_t cols, int bits, bool is_signed) {
    if (bits < 1 || bits > 8) throw std::runtime_error("unpack_bits: " + std::to_string(bits) + " bits per code is outside 1-8");
    const size_t bpr = packed_row_bytes(cols, bits);
    const uint32_t mask = (1u << bits) - 1;
    std::vector<int32_t> out(rows * cols);
    for (size_t r = 0; r < rows; ++r) {
        const uint8_t* row = bytes + r * bpr;
        for (size_t c = 0; c < cols; ++c) {
            const size_t bit = c * size_t(bits);
            uint32_t w = row[bit / 8];
            if ((bit % 8) + size_t(bits) > 8) w |= uint32_t(row[bit / 8 + 1]) << 8;
            const uint32_t u = (w >> (bit % 8)) & mask;
            out[r * cols + c] = is_signed && (u >> (bits - 1)) ? int32_t(u) - int32_t(1u << bits) : int32_t(u);
        }
        const size_t used = cols * size_t(bits);
        if (used % 8 && (row[bpr - 1] >> (used % 8)))
            throw std::runtime_error("row " + std::to_string(r) + ": the padding bits after the last column are not 0");
    }
    return out;
}


static bool essential(QType t, const std::string& field) {
    switch (t) {
        case QType::Uniform: return field == "symmetric" || field == "scale" || field == "zero" || field == "qmin" || field == "qmax";
        case QType::Log2: return field == "scale" || field == "table" || field == "thresholds";
        case QType::Sulq:
            return field == "table" || field == "thresholds" || field == "eta" || field == "log_min" || field == "log_delta" ||
                   field == "round_exponent";
        case QType::Pow2: return field == "table" || field == "thresholds" || field == "n1" || field == "n2";
    }
    return false;
}

json quantizer_json(const Quantizer& q) {
    const std::string w = std::string("quantizer (") + qtype_name(q.type) + ")";
    const Quantizer d;
    json j = {{"type", qtype_name(q.type)}, {"bits", q.bits}};
    auto put = [&](const char* k, bool differs, auto&& value) {
        if (differs || essential(q.type, k)) j[k] = value();
    };
    put("symmetric", q.symmetric != d.symmetric, [&] { return json(q.symmetric); });
    put("scale", bl_f2u(q.scale) != bl_f2u(d.scale), [&] { return float_json(q.scale, w + " scale"); });
    put("zero", q.zero != d.zero, [&] { return json(q.zero); });
    put("qmin", q.qmin != d.qmin, [&] { return json(q.qmin); });
    put("qmax", q.qmax != d.qmax, [&] { return json(q.qmax); });
    put("table", !q.table.empty(), [&] { return floats_json(q.table, w + " table"); });
    put("thresholds", !q.thresholds.empty(), [&] { return floats_json(q.thresholds, w + " thresholds"); });
    put("eta", double_bits(q.eta) != double_bits(d.eta), [&] { return double_json(q.eta, w + " eta"); });
    put("log_min", double_bits(q.log_min) != double_bits(d.log_min), [&] { return double_json(q.log_min, w + " log_min"); });
    put("log_delta", double_bits(q.log_delta) != double_bits(d.log_delta), [&] { return double_json(q.log_delta, w + " log_delta"); });
    put("round_exponent", q.round_exponent != d.round_exponent, [&] { return json(q.round_exponent); });
    put("n1", q.n1 != d.n1, [&] { return json(q.n1); });
    put("n2", q.n2 != d.n2, [&] { return json(q.n2); });
    return j;
}

Quantizer quantizer_from_json(const json& j, const std::string& what) {
    Fields F{what};
    Quantizer q;
    const std::string type = F.string(j, "", "type");
    try {
        q.type = parse_qtype(type);
    } catch (const std::exception& e) {
        F.fail("type", e.what());
    }
    q.bits = int(F.integer(j, "", "bits", 2, 8));
    static const std::set<std::string> known = {"type", "bits", "symmetric", "scale", "zero", "qmin", "qmax", "table",
                                                "thresholds", "eta", "log_min", "log_delta", "round_exponent", "n1", "n2"};
    for (auto it = j.begin(); it != j.end(); ++it)
        if (!known.count(it.key())) F.fail(it.key(), "unknown field");
    auto has = [&](const char* k) { return essential(q.type, k) || j.contains(k); };  // essential ones must be there
    if (has("symmetric")) q.symmetric = F.boolean(j, "", "symmetric");
    if (has("scale")) q.scale = float(F.number(j, "", "scale"));
    if (has("zero")) q.zero = int32_t(F.integer(j, "", "zero", -(1 << 20), 1 << 20));
    if (has("qmin")) q.qmin = int32_t(F.integer(j, "", "qmin", -(1 << 20), 1 << 20));
    if (has("qmax")) q.qmax = int32_t(F.integer(j, "", "qmax", -(1 << 20), 1 << 20));
    if (has("table")) q.table = F.floats(j, "", "table");
    if (has("thresholds")) q.thresholds = F.floats(j, "", "thresholds");
    if (has("eta")) q.eta = F.number(j, "", "eta");
    if (has("log_min")) q.log_min = F.number(j, "", "log_min");
    if (has("log_delta")) q.log_delta = F.number(j, "", "log_delta");
    if (has("round_exponent")) q.round_exponent = F.boolean(j, "", "round_exponent");
    if (has("n1")) q.n1 = int(F.integer(j, "", "n1", -100000, 100000));
    if (has("n2")) q.n2 = int(F.integer(j, "", "n2", -100000, 100000));
    if (q.type == QType::Uniform) {
        if (q.qmin > q.qmax) F.fail("qmin", "qmin " + std::to_string(q.qmin) + " is above qmax " + std::to_string(q.qmax));
        if (!(q.scale > 0) || !std::isfinite(q.scale)) F.fail("scale", "expected a positive finite number, found " + std::to_string(q.scale));
    } else {
        if (q.table.empty()) F.fail("table", "a " + type + " quantizer needs its table of levels");
        if (q.thresholds.size() + 1 != q.table.size())
            F.fail("thresholds", std::to_string(q.thresholds.size()) + " thresholds for " + std::to_string(q.table.size()) +
                                     " levels (expected one fewer than the levels)");
        for (size_t i = 1; i < q.table.size(); ++i)
            if (!(q.table[i - 1] <= q.table[i])) F.fail("table", "levels are not ascending at index " + std::to_string(i));
        for (size_t i = 1; i < q.thresholds.size(); ++i)
            if (!(q.thresholds[i - 1] <= q.thresholds[i])) F.fail("thresholds", "not ascending at index " + std::to_string(i));
    }
    return q;
}

// ---------------------------------------------------------------------------------------------------
SafeTensors f32_checkpoint(const ViT& m, const SafeTensors& original) {
    std::map<std::string, std::vector<float>> values = float_tensors(m);
    std::map<std::string, std::vector<int64_t>> linear_shape;  // a Linear's own shape, per source tensor
    for (const Linear* l : m.linears()) {
        const std::vector<std::string> srcs = linear_sources(*l);
        const size_t n = l->weight.size() / srcs.size();
        const int64_t rows = int64_t(l->out) / int64_t(srcs.size());
        for (size_t s = 0; s < srcs.size(); ++s) {
            values[srcs[s] + ".weight"] = std::vector<float>(l->weight.begin() + long(s * n), l->weight.begin() + long((s + 1) * n));
            linear_shape[srcs[s] + ".weight"] = {rows, int64_t(l->in)};
            if (!l->bias.empty()) linear_shape[srcs[s] + ".bias"] = {rows};
        }
    }
    SafeTensors out;
    for (const std::string& name : original.order) {
        auto v = values.find(name);
        if (v == values.end()) continue;
        const StTensor& t = original.tensors.at(name);
        std::vector<int64_t> shape = t.shape;
        if (size_t(t.numel()) != v->second.size()) {  // a pruned Linear: its own, smaller shape
            auto ls = linear_shape.find(name);
            if (ls == linear_shape.end())
                throw std::runtime_error("export: the original tensor '" + name + "' has " + std::to_string(t.numel()) +
                                         " values, the model " + std::to_string(v->second.size()));
            shape = ls->second;
        }
        out.tensors[name] = f32_tensor(v->second, shape);
        out.order.push_back(name);
    }
    return out;
}

Fp32Export export_fp32(const ViT& m, const ModelSource& src, const SafeTensors& original) {
    if (is_quantized_checkpoint(original))
        throw std::runtime_error(src.safetensors_name + ": is a quantized export; an FP32 export starts from the FP32/FP16 checkpoint " +
                                 "the model was loaded from");
    Fp32Export e;
    if (src.config_json.empty()) {
        if (m.cfg.pruned())
            throw std::runtime_error(src.safetensors_name +
                                     ": has no config.json to record the pruned heads and MLP widths in; load the model from a "
                                     "directory with its config.json (Hugging Face or timm) to export it pruned");
    } else {
        // Kept in the original's key order, so that the pruning fields are the only difference.
        nlohmann::ordered_json j;
        try {
            j = nlohmann::ordered_json::parse(src.config_json, [&](int depth, nlohmann::ordered_json::parse_event_t, nlohmann::ordered_json&) {
                if (depth > kMaxJsonDepth)
                    throw std::runtime_error(src.config_name + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
                return true;
            });
        } catch (const nlohmann::json::exception& ex) {
            throw std::runtime_error(src.config_name + ": not valid JSON: " + ex.what());
        }
        if (!j.is_object()) throw std::runtime_error(src.config_name + ": expected a JSON object");
        json fields = json::object();
        write_pruning(fields, m.cfg);
        j.erase("pruned_heads"), j.erase("bitlens_mlp_dims");
        for (auto it = fields.begin(); it != fields.end(); ++it) j[it.key()] = nlohmann::ordered_json::parse(it.value().dump());
        e.config_json = j.dump(2) + "\n";
    }
    e.preprocessor_json = src.preprocessor_json;

    // The model's tensors at their (possibly pruned) shapes, and the tensors it ignores as they were, in the original's order.
    SafeTensors ck = f32_checkpoint(m, original), out;
    out.metadata = original.metadata;
    out.metadata["format"] = "pt";
    const std::set<std::string> ignored(m.ignored_tensors.begin(), m.ignored_tensors.end());
    for (const std::string& name : original.order) {
        if (auto t = ck.tensors.find(name); t != ck.tensors.end()) out.tensors[name] = std::move(t->second);
        else if (ignored.count(name)) out.tensors[name] = original.tensors.at(name);
        else continue;
        out.order.push_back(name);
    }
    e.safetensors = serialize_safetensors(out);
    return e;
}

std::vector<uint8_t> export_quantized(const QuantizedViT& q, const SafeTensors& original) {
    const ViT& m = q.model;
    const std::vector<const Linear*> ls = m.linears();
    if (q.wq.size() != ls.size() || q.wbits.size() != ls.size())
        throw std::runtime_error("export: the quantized model has " + std::to_string(ls.size()) + " Linears but " +
                                 std::to_string(q.wq.size()) + " weight quantizer sets and " + std::to_string(q.wbits.size()) +
                                 " bit-widths");
    if (q.act_on.size() != m.points.size() || q.aq.size() != m.points.size())
        throw std::runtime_error("export: the quantized model has " + std::to_string(m.points.size()) +
                                 " activation points but " + std::to_string(q.aq.size()) + " activation quantizers");

    // Linear weights → their encoded tensors, keyed by the original weight's name.
    std::map<std::string, std::vector<std::pair<std::string, StTensor>>> encoded;
    json jlinears = json::array();
    for (size_t i = 0; i < ls.size(); ++i) {
        const Linear& l = *ls[i];
        const std::vector<Quantizer>& qs = q.wq[i];
        const std::string lw = "export: Linear '" + l.name + "'";
        const size_t out = size_t(l.out), in = size_t(l.in);
        if (qs.size() != 1 && qs.size() != out)
            throw std::runtime_error(lw + ": " + std::to_string(qs.size()) + " weight quantizers for " + std::to_string(out) +
                                     " output channels (expected one per channel, or one)");
        const bool per_channel = qs.size() == out && !(out == 1 && !q.cfg.per_channel);
        const Quantizer& q0 = qs[0];
        if (q0.type != QType::Uniform && q0.type != QType::Pow2)
            throw std::runtime_error(lw + ": weight quantizer '" + qtype_name(q0.type) + "' cannot be exported (uniform or pow2)");
        if (q0.bits != q.wbits[i])
            throw std::runtime_error(lw + ": wbits says " + std::to_string(q.wbits[i]) + " bits, the quantizer has " + std::to_string(q0.bits));
        const std::string packing = packing_of(q0.type, q0.qmin, q0.qmax, q0.table.size());
        const int pbits = packing_bits(packing);
        if (packing.empty())
            throw std::runtime_error(lw + ": codes " + std::to_string(q0.qmin) + ".." + std::to_string(q0.qmax) + " (" +
                                     std::to_string(q0.table.size()) + " levels) do not fit a signed 8-bit packing");
        // Every channel's quantizer must be exactly what the file keeps (else the reload would differ).
        for (size_t r = 0; r < qs.size(); ++r) {
            const Quantizer& qz = qs[r];
            const Quantizer rebuilt = q0.type == QType::Uniform ? uniform_weight(q0.bits, q0.symmetric, q0.qmin, q0.qmax, qz.scale)
                                                                : pow2_weight(q0.bits, qz.table);
            if (!identical(qz, rebuilt) || (q0.type == QType::Pow2 && qz.table.size() != q0.table.size()))
                throw std::runtime_error(lw + ": the quantizer of channel " + std::to_string(r) +
                                         " is not a symmetric uniform (zero point 0) or power-of-two quantizer like channel 0's");
        }
        // Codes, checking that the weights are the quantizers' levels.
        std::vector<int32_t> codes(out * in);
        for (size_t n = 0; n < out; ++n) {
            const Quantizer& qz = qs[per_channel ? n : 0];
            for (size_t k = 0; k < in; ++k) {
                const float w = l.weight[n * in + k];
                const int32_t c = qz.code(w);
                if (bl_f2u(qz.dequant(c)) != bl_f2u(w))
                    throw std::runtime_error(lw + ": weight [" + std::to_string(n) + ", " + std::to_string(k) + "] = " +
                                             std::to_string(w) + " is not a level of its quantizer (was the model changed after quantize()?)");
                codes[n * in + k] = c;
            }
        }
        const std::vector<std::string> srcs = linear_sources(l);
        const size_t ns = srcs.size(), rp = out / ns;
        json shapes = json::array();
        for (size_t s = 0; s < ns; ++s) {
            const std::string wname = srcs[s] + ".weight";
            auto it = original.tensors.find(wname);
            if (it == original.tensors.end())
                throw std::runtime_error("export: the original checkpoint has no tensor '" + wname + "' (Linear '" + l.name +
                                         "'): is it the checkpoint the model was quantized from?");
            if (size_t(it->second.numel()) != rp * in)
                throw std::runtime_error("export: the original tensor '" + wname + "' has shape " + shape_str(it->second.shape) +
                                         ", the model's Linear '" + l.name + "' has " + std::to_string(rp) + "x" + std::to_string(in));
            shapes.push_back(it->second.shape);
            std::vector<std::pair<std::string, StTensor>> ts;
            // Codes.
            const std::vector<int32_t> part(codes.begin() + long(s * rp * in), codes.begin() + long((s + 1) * rp * in));
            StTensor tq;
            if (pbits < 8) {
                tq.dtype = "U8", tq.shape = {int64_t(rp), int64_t(packed_row_bytes(in, pbits))}, tq.bytes = pack_bits(part, rp, in, pbits);
            } else {
                tq.dtype = q0.type == QType::Uniform ? "I8" : "U8", tq.shape = {int64_t(rp), int64_t(in)};
                tq.bytes.resize(part.size());
                for (size_t j = 0; j < part.size(); ++j) tq.bytes[j] = uint8_t(part[j]);
            }
            ts.emplace_back(srcs[s] + ".weight_q", std::move(tq));
            // Scales or levels.
            const size_t r0 = per_channel ? s * rp : 0, nr = per_channel ? rp : 1;
            if (q0.type == QType::Uniform) {
                std::vector<float> sc;
                for (size_t r = 0; r < nr; ++r) sc.push_back(qs[r0 + r].scale);
                ts.emplace_back(srcs[s] + ".weight_scale", f32_tensor(sc, {int64_t(nr)}));
            } else {
                std::vector<float> lv;
                for (size_t r = 0; r < nr; ++r) lv.insert(lv.end(), qs[r0 + r].table.begin(), qs[r0 + r].table.end());
                ts.emplace_back(srcs[s] + ".weight_levels", f32_tensor(lv, {int64_t(nr), int64_t(q0.table.size())}));
            }
            encoded[wname] = std::move(ts);
        }
        json jl = {{"name", l.name},
                   {"tensors", srcs},
                   {"shapes", shapes},
                   {"out", l.out},
                   {"in", l.in},
                   {"bits", q0.bits},
                   {"type", qtype_name(q0.type)},
                   {"granularity", per_channel ? "channel" : "tensor"},
                   {"packing", packing}};
        if (q0.type == QType::Uniform) jl["symmetric"] = q0.symmetric, jl["qmin"] = q0.qmin, jl["qmax"] = q0.qmax;
        else jl["levels"] = q0.table.size();
        jlinears.push_back(std::move(jl));
    }

    json jacts = json::array();
    for (size_t p = 0; p < m.points.size(); ++p) {
        json qj;
        try {
            qj = quantizer_json(q.aq[p]);
        } catch (const std::exception& e) {
            throw std::runtime_error("export: activation point '" + m.points[p].name + "': " + e.what());
        }
        jacts.push_back({{"point", m.points[p].name}, {"kind", point_kind_name(m.points[p].kind)}, {"on", bool(q.act_on[p])}, {"quantizer", qj}});
    }
    const json meta = {{"version", kFormatVersion}, {"config", config_json(q.cfg)}, {"linears", jlinears}, {"activations", jacts}};

    // Tensors in the original's order.
    SafeTensors out;
    out.metadata = original.metadata;
    out.metadata["format"] = "pt";
    out.metadata[kQuantizationMetadataKey] = meta.dump();
    std::map<std::string, std::vector<float>> floats = float_tensors(m);
    std::set<std::string> ignored(m.ignored_tensors.begin(), m.ignored_tensors.end()), done;
    auto add = [&out](const std::string& name, StTensor t) {
        out.tensors[name] = std::move(t);
        out.order.push_back(name);
    };
    for (const std::string& name : original.order) {
        const StTensor& t = original.tensors.at(name);
        if (auto e = encoded.find(name); e != encoded.end()) {
            for (auto& kv : e->second) add(kv.first, std::move(kv.second));
            encoded.erase(e);
        } else if (auto f = floats.find(name); f != floats.end()) {
            if (size_t(t.numel()) != f->second.size())
                throw std::runtime_error("export: the original tensor '" + name + "' has shape " + shape_str(t.shape) + ", the model has " +
                                         std::to_string(f->second.size()) + " values for it");
            add(name, f32_tensor(f->second, t.shape));
            floats.erase(f);
        } else if (ignored.count(name)) {
            add(name, t);
        } else {
            throw std::runtime_error("export: the original checkpoint's tensor '" + name +
                                     "' is not part of the model: is it the checkpoint the model was quantized from?");
        }
    }
    if (!encoded.empty())
        throw std::runtime_error("export: the original checkpoint has no tensor '" + encoded.begin()->first + "'");
    for (auto& kv : floats) {  // e.g. a bias that RepQ-ViT added to a Linear that had none
        const int64_t n = int64_t(kv.second.size());
        add(kv.first, f32_tensor(kv.second, {n}));
    }
    return serialize_safetensors(out);
}

bool is_quantized_checkpoint(const SafeTensors& st) { return st.metadata.count(kQuantizationMetadataKey) > 0; }

QuantizedViT load_quantized(const ModelSource& src) {
    return load_quantized(src, parse_safetensors(src.safetensors.data(), src.safetensors.size(), src.safetensors_name));
}

QuantizedViT load_quantized(const ModelSource& src, const SafeTensors& st) {
    const std::string file = src.safetensors_name;
    auto mit = st.metadata.find(kQuantizationMetadataKey);
    if (mit == st.metadata.end())
        throw std::runtime_error(file + ": not a quantized checkpoint (no __metadata__ '" + kQuantizationMetadataKey + "')");
    const Fields F{file + ": __metadata__ '" + kQuantizationMetadataKey + "'"};
    json meta;
    try {
        meta = parse_json_bounded(mit->second, F.what);
    } catch (const json::exception& e) {
        throw std::runtime_error(F.what + " is not valid JSON: " + e.what());
    }
    if (!meta.is_object()) throw std::runtime_error(F.what + " is not a JSON object");
    const long long version = F.integer(meta, "", "version", 1, 1 << 30);
    if (version > kFormatVersion)
        F.fail("version", "format version " + std::to_string(version) + " is not supported (this build reads 1 to " +
                              std::to_string(kFormatVersion) + ")");

    QuantizedViT q;
    q.cfg = quant_config_from_json(F.at(meta, "", "config"), F.what + ": config");

    // Dequantize every Linear's codes into an F32 weight under the original name.
    auto tensor_err = [&](const std::string& name, const std::string& msg) {
        return std::runtime_error(file + ": tensor '" + name + "' " + msg);
    };
    auto need = [&](const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape, const std::string& role) {
        auto it = st.tensors.find(name);
        if (it == st.tensors.end()) throw std::runtime_error(file + ": missing tensor '" + name + "' (" + role + ")");
        if (it->second.dtype != dtype) throw tensor_err(name, "has dtype " + it->second.dtype + ", expected " + dtype + " (" + role + ")");
        if (it->second.shape != shape)
            throw tensor_err(name, "has shape " + shape_str(it->second.shape) + ", expected " + shape_str(shape) + " (" + role + ")");
        return &it->second;
    };
    std::map<std::string, StTensor> decoded;  // "X.weight_q" → the F32 "X.weight" that replaces it
    std::set<std::string> consumed;
    const json& jl = F.array(meta, "", "linears");
    std::vector<std::string> linear_names;
    std::vector<std::pair<int, int>> linear_dims;
    for (size_t i = 0; i < jl.size(); ++i) {
        const json& e = jl[i];
        const std::string path = "linears[" + std::to_string(i) + "]";
        const std::string name = F.string(e, path, "name");
        const size_t out = size_t(F.integer(e, path, "out", 1, 1 << 24)), in = size_t(F.integer(e, path, "in", 1, 1 << 24));
        const int bits = int(F.integer(e, path, "bits", 2, 8));
        const std::string type = F.string(e, path, "type"), gran = F.string(e, path, "granularity"), packing = F.string(e, path, "packing");
        if (type != "uniform" && type != "pow2") F.fail(path + ".type", "expected uniform or pow2, found '" + type + "'");
        if (gran != "channel" && gran != "tensor") F.fail(path + ".granularity", "expected channel or tensor, found '" + gran + "'");
        const bool uniform = type == "uniform", per_channel = gran == "channel";
        const int pbits = packing_bits(packing);
        if (uniform ? pbits == 0 || packing.compare(0, 3, "int") != 0 : packing != "index4" && packing != "index8")
            F.fail(path + ".packing", "'" + packing + "' is not a packing of " + type + " weights (" +
                                          (uniform ? "int2 … int8" : "index4 or index8") + ")");
        if (version < 2 && uniform && pbits != 4 && pbits != 8)
            F.fail(path + ".packing", "'" + packing + "' needs format version 2, the file says " + std::to_string(version));
        bool symmetric = false;
        int32_t qmin = 0, qmax = 0;
        size_t L = 0;
        if (uniform) {
            symmetric = F.boolean(e, path, "symmetric");
            qmin = int32_t(F.integer(e, path, "qmin", -128, 127));
            qmax = int32_t(F.integer(e, path, "qmax", -128, 127));
            if (qmin > qmax) F.fail(path + ".qmin", "qmin " + std::to_string(qmin) + " is above qmax " + std::to_string(qmax));
            if (qmin < -(1 << (pbits - 1)) || qmax > (1 << (pbits - 1)) - 1)
                F.fail(path + ".packing", packing + " cannot hold codes " + std::to_string(qmin) + ".." + std::to_string(qmax));
        } else {
            L = size_t(F.integer(e, path, "levels", 2, packing == "index4" ? 16 : 256));
        }
        const json& jt = F.array(e, path, "tensors");
        const json& jsh = F.array(e, path, "shapes");
        if (jt.empty() || out % jt.size()) F.fail(path + ".tensors", std::to_string(jt.size()) + " tensors do not split " + std::to_string(out) + " rows");
        if (jsh.size() != jt.size()) F.fail(path + ".shapes", std::to_string(jsh.size()) + " shapes for " + std::to_string(jt.size()) + " tensors");
        const size_t ns = jt.size(), rp = out / ns, nr = per_channel ? rp : 1;
        std::vector<Quantizer> qs;
        for (size_t s = 0; s < ns; ++s) {
            const std::string sp = path + ".tensors[" + std::to_string(s) + "]";
            if (!jt[s].is_string()) F.fail(sp, "expected a string, found " + jt[s].dump());
            const std::string base = jt[s].get<std::string>();
            std::vector<int64_t> shape;
            size_t numel = 1;
            if (!jsh[s].is_array()) F.fail(path + ".shapes[" + std::to_string(s) + "]", "expected an array of dimensions");
            for (const json& d : jsh[s]) {
                if (!d.is_number_unsigned()) F.fail(path + ".shapes[" + std::to_string(s) + "]", "expected non-negative integers, found " + d.dump());
                shape.push_back(d.get<int64_t>());
                numel *= size_t(d.get<uint64_t>());
            }
            if (numel != rp * in)
                F.fail(path + ".shapes[" + std::to_string(s) + "]", shape_str(shape) + " does not hold " + std::to_string(rp) + "x" + std::to_string(in) + " weights");
            if (st.tensors.count(base + ".weight")) throw tensor_err(base + ".weight", "is present beside its quantized form '" + base + ".weight_q'");

            const std::string qname = base + ".weight_q";
            const bool packed = pbits < 8;
            const std::string role = std::to_string(rp) + "x" + std::to_string(in) + " codes" +
                                     (packed ? " packed " + std::to_string(pbits) + " bits each (" + packing + ")" : " (" + packing + ")");
            const StTensor* tq = need(qname, uniform && !packed ? "I8" : "U8", {int64_t(rp), int64_t(packed ? packed_row_bytes(in, pbits) : in)}, role);
            std::vector<int32_t> codes;
            if (packed) {
                try {
                    codes = unpack_bits(tq->bytes.data(), rp, in, pbits, uniform);
                } catch (const std::runtime_error& e) {
                    throw tensor_err(qname, e.what());
                }
            } else {
                codes.resize(rp * in);
                for (size_t j = 0; j < codes.size(); ++j) codes[j] = uniform ? int32_t(int8_t(tq->bytes[j])) : int32_t(tq->bytes[j]);
            }
            consumed.insert(qname);

            std::vector<Quantizer> part;  // this tensor's quantizers (nr of them)
            if (uniform) {
                if (st.tensors.count(base + ".weight_levels")) throw tensor_err(base + ".weight_levels", "is unexpected for uniform weights");
                const std::string sname = base + ".weight_scale";
                const StTensor* ts = need(sname, "F32", {int64_t(nr)}, per_channel ? "one scale per output channel" : "the per-tensor scale");
                const std::vector<float> sc = ts->to_f32(sname);
                for (size_t r = 0; r < nr; ++r) {
                    if (!(sc[r] > 0) || !std::isfinite(sc[r]))
                        throw tensor_err(sname, "value " + std::to_string(r) + " (" + std::to_string(sc[r]) + ") is not a positive finite scale");
                    part.push_back(uniform_weight(bits, symmetric, qmin, qmax, sc[r]));
                }
                consumed.insert(sname);
            } else {
                if (st.tensors.count(base + ".weight_scale")) throw tensor_err(base + ".weight_scale", "is unexpected for pow2 weights");
                const std::string lname = base + ".weight_levels";
                const StTensor* tl = need(lname, "F32", {int64_t(nr), int64_t(L)}, "the levels of each row");
                const std::vector<float> lv = tl->to_f32(lname);
                for (size_t r = 0; r < nr; ++r) {
                    std::vector<float> row(lv.begin() + long(r * L), lv.begin() + long((r + 1) * L));
                    for (size_t k = 0; k < L; ++k)
                        if (!std::isfinite(row[k]) || (k && !(row[k - 1] < row[k])))
                            throw tensor_err(lname, "row " + std::to_string(r) + " is not ascending finite levels (at index " + std::to_string(k) + ")");
                    part.push_back(pow2_weight(bits, std::move(row)));
                }
                consumed.insert(lname);
            }
            // Values.
            std::vector<float> w(rp * in);
            for (size_t r = 0; r < rp; ++r) {
                const Quantizer& qz = part[per_channel ? r : 0];
                for (size_t k = 0; k < in; ++k) {
                    const int32_t c = codes[r * in + k];
                    if (uniform ? c < qmin || c > qmax : c < 0 || size_t(c) >= L)
                        throw tensor_err(qname, "code " + std::to_string(c) + " at [" + std::to_string(r) + ", " + std::to_string(k) +
                                                    "] is outside " +
                                                    (uniform ? "[" + std::to_string(qmin) + ", " + std::to_string(qmax) + "]"
                                                             : "the " + std::to_string(L) + " levels"));
                    w[r * in + k] = qz.dequant(c);
                }
            }
            decoded[qname] = f32_tensor(w, shape);
            if (per_channel) {
                qs.insert(qs.end(), part.begin(), part.end());
            } else if (qs.empty()) {
                qs = part;
            } else if (!identical(qs[0], part[0])) {
                throw tensor_err(base + (uniform ? ".weight_scale" : ".weight_levels"),
                                 "differs from '" + jt[0].get<std::string>() + "': a per-tensor quantizer is shared by all parts of " + name);
            }
        }
        q.wq.push_back(std::move(qs));
        q.wbits.push_back(bits);
        linear_names.push_back(name);
        linear_dims.emplace_back(int(out), int(in));
    }

    // The F32 checkpoint the loader expects: X.weight_q in place, X.weight_scale/levels dropped.
    SafeTensors fl;
    fl.metadata = st.metadata;
    for (const std::string& name : st.order) {
        if (auto d = decoded.find(name); d != decoded.end()) {
            const std::string w = name.substr(0, name.size() - 2);  // "X.weight_q" → "X.weight"
            fl.tensors[w] = std::move(d->second);
            fl.order.push_back(w);
        } else if (!consumed.count(name)) {
            if (ends_with(name, ".weight_q") || ends_with(name, ".weight_scale") || ends_with(name, ".weight_levels"))
                throw tensor_err(name, "is not described by __metadata__ '" + std::string(kQuantizationMetadataKey) + "' (linears)");
            fl.tensors[name] = st.tensors.at(name);
            fl.order.push_back(name);
        }
    }
    LoadedModel lm = load_model(src, fl);
    q.model = std::move(lm.vit);

    const std::vector<const Linear*> ls = static_cast<const ViT&>(q.model).linears();
    if (ls.size() != linear_names.size())
        F.fail("linears", std::to_string(linear_names.size()) + " entries, the model has " + std::to_string(ls.size()) + " Linears");
    for (size_t i = 0; i < ls.size(); ++i)
        if (ls[i]->name != linear_names[i] || ls[i]->out != linear_dims[i].first || ls[i]->in != linear_dims[i].second)
            F.fail("linears[" + std::to_string(i) + "]", "'" + linear_names[i] + "' " + std::to_string(linear_dims[i].first) + "x" +
                                                              std::to_string(linear_dims[i].second) + ", the model's Linear " +
                                                              std::to_string(i) + " is '" + ls[i]->name + "' " +
                                                              std::to_string(ls[i]->out) + "x" + std::to_string(ls[i]->in));

    const json& ja = F.array(meta, "", "activations");
    const size_t P = q.model.points.size();
    if (ja.size() != P) F.fail("activations", std::to_string(ja.size()) + " entries, the model has " + std::to_string(P) + " activation points");
    q.act_on.assign(P, false);
    q.aq.resize(P);
    for (size_t p = 0; p < P; ++p) {
        const std::string path = "activations[" + std::to_string(p) + "]";
        const std::string point = F.string(ja[p], path, "point");
        if (point != q.model.points[p].name)
            F.fail(path + ".point", "'" + point + "', the model's point " + std::to_string(p) + " is '" + q.model.points[p].name + "'");
        q.act_on[p] = F.boolean(ja[p], path, "on");
        q.aq[p] = quantizer_from_json(F.at(ja[p], path, "quantizer"), F.what + ": " + path + ".quantizer");
    }
    return q;
}

// ---------------------------------------------------------------------------------------------------
namespace {
// The one error of callers that need FP32 weights; `config` is the export's recipe name when it is loaded.
std::runtime_error already_quantized(const std::string& what, const std::string& subject, const std::string& config) {
    return std::runtime_error(what + ": " + subject + " is already quantized" + (config.empty() ? "" : " (" + config + ")") +
                              "; start from its FP32/FP16 original");
}
}  // namespace

const LoadedModel& AnyModel::fp32(const std::string& what) const {
    if (q) throw already_quantized(what, "this model", q->cfg.name());
    return fp;
}

AnyModel load_any(const ModelSource& src) {
    return load_any(src, parse_safetensors(src.safetensors.data(), src.safetensors.size(), src.safetensors_name));
}

AnyModel load_any(const ModelSource& src, const SafeTensors& st) {
    AnyModel m;
    if (is_quantized_checkpoint(st)) m.q = load_quantized(src, st);
    else m.fp = load_model(src, st);
    return m;
}

LoadedModel load_fp32(const ModelSource& src, const std::string& what) {
    return load_fp32(src, parse_safetensors(src.safetensors.data(), src.safetensors.size(), src.safetensors_name), what);
}

LoadedModel load_fp32(const ModelSource& src, const SafeTensors& st, const std::string& what) {
    if (is_quantized_checkpoint(st)) throw already_quantized(what, src.safetensors_name, "");
    return load_model(src, st);
}

}  // namespace bitlens
