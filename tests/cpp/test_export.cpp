// Export and reload of quantized models: nibble packing, quantizer JSON, bit-identical round trips of
// both shipped models (W8A8, W4A4, W3A3, pow2 weights, per-tensor + RepQ-ViT), exported sizes, and
// errors for corrupted exports.
#include <doctest/doctest.h>

#include <cstring>
#include <random>

#include <nlohmann/json.hpp>

#include "export.h"
#include "ptq.h"
#include "simd.h"
#include "test_util.h"

using namespace bitlens;
using namespace bitlens::test;
using json = nlohmann::json;

namespace {

struct ModelFx {
    ModelSource src;
    SafeTensors st;
    LoadedModel lm;
    PreparedData data;  // the 1k default set
    explicit ModelFx(const std::string& dir)
        : src(source(dir)), st(tensors_of(src)), lm(load_model(src, st)),
          data(prepare(load_dataset(src_path("models/data")), lm.vit.cfg)) {}
};
ModelFx& model_fx(const std::string& dir) {
    static ModelFx hf(kHfModel), tm(kTimmModel);
    return dir == kHfModel ? hf : tm;
}

doctest::Contains has(const std::string& s) { return doctest::Contains(s.c_str()); }

QuantConfig make_cfg(int w, int a, QType weights = QType::Uniform) {
    QuantConfig c;
    c.wbits = w, c.abits = a, c.weights = weights;
    return c;
}

ModelSource with_bytes(ModelSource s, std::vector<uint8_t> bytes) {
    s.safetensors = std::move(bytes);
    s.safetensors_name = "quantized.safetensors";
    return s;
}

// Every weight, bias, norm, token and quantizer of b equals a's, bit for bit.
void check_same_model(const QuantizedViT& a, const QuantizedViT& b) {
    CHECK(config_json(a.cfg) == config_json(b.cfg));
    REQUIRE(a.wq.size() == b.wq.size());
    CHECK(a.wbits == b.wbits);
    const std::vector<const Linear*> la = a.model.linears(), lb = b.model.linears();
    REQUIRE(la.size() == lb.size());
    for (size_t i = 0; i < la.size(); ++i) {
        CAPTURE(la[i]->name);
        CHECK(la[i]->name == lb[i]->name);
        CHECK(same_bits(la[i]->weight, lb[i]->weight));
        CHECK(same_bits(la[i]->bias, lb[i]->bias));
        REQUIRE(a.wq[i].size() == b.wq[i].size());
        for (size_t r = 0; r < a.wq[i].size(); ++r) REQUIRE(identical(a.wq[i][r], b.wq[i][r]));
    }
    for (size_t k = 0; k < a.model.blocks.size(); ++k) {
        CHECK(same_bits(a.model.blocks[k].norm1.gamma, b.model.blocks[k].norm1.gamma));
        CHECK(same_bits(a.model.blocks[k].norm1.beta, b.model.blocks[k].norm1.beta));
        CHECK(same_bits(a.model.blocks[k].norm2.gamma, b.model.blocks[k].norm2.gamma));
        CHECK(same_bits(a.model.blocks[k].norm2.beta, b.model.blocks[k].norm2.beta));
    }
    CHECK(same_bits(a.model.pos_embed, b.model.pos_embed));
    CHECK(same_bits(a.model.cls_token, b.model.cls_token));
    CHECK(same_bits(a.model.dist_token, b.model.dist_token));
    CHECK(a.act_on == b.act_on);
    REQUIRE(a.aq.size() == b.aq.size());
    for (size_t p = 0; p < a.aq.size(); ++p) {
        CAPTURE(a.model.points[p].name);
        CHECK(identical(a.aq[p], b.aq[p]));
    }
}

const StTensor& tensor(const SafeTensors& st, const std::string& name) {
    auto it = st.tensors.find(name);
    if (it == st.tensors.end()) throw std::runtime_error("test: no tensor '" + name + "'");
    return it->second;
}

}  // namespace

TEST_CASE("export: b-bit codes (b = 1..8) pack as little-endian bit strings per row and unpack exactly, signed and unsigned, with non-zero tail bits an error") {
    std::mt19937 g(4);
    for (int bits = 1; bits <= 8; ++bits)
        for (size_t cols : {1, 2, 3, 5, 7, 8, 9, 13, 16}) {
            CAPTURE(bits);
            CAPTURE(cols);
            const size_t rows = 3;
            for (bool is_signed : {true, false}) {
                const int32_t lo = is_signed ? -(1 << (bits - 1)) : 0, hi = is_signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
                std::uniform_int_distribution<int32_t> d(lo, hi);
                std::vector<int32_t> codes(rows * cols);
                for (size_t i = 0; i < codes.size(); ++i) codes[i] = i % 7 == 0 ? lo : i % 7 == 1 ? hi : d(g);
                const std::vector<uint8_t> packed = pack_bits(codes, rows, cols, bits);
                REQUIRE(packed.size() == rows * ((cols * size_t(bits) + 7) / 8));
                CHECK(unpack_bits(packed.data(), rows, cols, bits, is_signed) == codes);
                if ((cols * size_t(bits)) % 8) {
                    std::vector<uint8_t> bad = packed;
                    bad[2 * packed_row_bytes(cols, bits) - 1] |= 0x80;  // a tail bit of row 1
                    CHECK_THROWS_WITH(unpack_bits(bad.data(), rows, cols, bits, is_signed), doctest::Contains("row 1: the padding bits"));
                }
            }
            if (bits < 8) CHECK_THROWS_WITH(pack_bits({1 << bits}, 1, 1, bits), doctest::Contains("does not fit in"));
        }
    // 3-bit codes: 0b101 = -3 then 0b011 = 3 → bits 101 011 → byte 0b00011101.
    CHECK(pack_bits({-3, 3}, 1, 2, 3) == std::vector<uint8_t>{0x1D});
}

TEST_CASE("export: int4 nibbles pack two per byte (low nibble = even column), odd column counts pad with 0, all codes -8..7 round-trip") {
    for (size_t cols : {1, 2, 3, 7, 16, 49}) {
        CAPTURE(cols);
        const size_t rows = 3;
        std::vector<int32_t> codes(rows * cols);
        for (size_t i = 0; i < codes.size(); ++i) codes[i] = int32_t(i * 7 % 16) - 8;
        const std::vector<uint8_t> packed = pack_bits(codes, rows, cols, 4);
        REQUIRE(packed.size() == rows * ((cols + 1) / 2));
        CHECK(unpack_bits(packed.data(), rows, cols, 4, true) == codes);
        // Layout: byte j of row r holds column 2j in bits 0-3 and column 2j+1 in bits 4-7.
        CHECK((packed[0] & 0xF) == (uint32_t(codes[0]) & 0xF));
        if (cols > 1) CHECK((packed[0] >> 4) == (uint32_t(codes[1]) & 0xF));
        if (cols % 2)
            for (size_t r = 0; r < rows; ++r) CHECK((packed[r * ((cols + 1) / 2) + cols / 2] >> 4) == 0);
    }
    const std::vector<uint8_t> one = pack_bits({-1, 7, -8}, 1, 3, 4);
    CHECK(one == std::vector<uint8_t>{0x7F, 0x08});
    CHECK(unpack_bits(one.data(), 1, 3, 4, false) == std::vector<int32_t>{15, 7, 8});
    CHECK_THROWS_WITH(pack_bits({16}, 1, 1, 4), doctest::Contains("does not fit in 4 bits"));
}

TEST_CASE("export: every quantizer type at bits 2-8 goes through its metadata JSON and back bit for bit") {
    std::mt19937 g(5);
    std::normal_distribution<float> nd(0.0f, 1.3f);
    std::vector<float> x(3000), pos;
    for (float& v : x) v = nd(g);
    for (float v : x) pos.push_back(std::fabs(v) * std::fabs(v) * 0.01f);
    pos.push_back(0.0f);
    for (const QuantizerTraits& tr : kQuantizerTraits)
        for (int bits = 2; bits <= 8; ++bits)
            for (bool sym : {false, true}) {
                CAPTURE(tr.name);
                CAPTURE(bits);
                const Quantizer q = fit(tr.type, tr.non_negative_only ? pos : x, bits, sym, RangeMethod::Mse, sym);
                const Quantizer r = quantizer_from_json(json::parse(quantizer_json(q).dump()), "test");
                CHECK(identical(q, r));
            }
    Quantizer u = fit_uniform(x, 8, false, RangeMethod::MinMax);
    json j = quantizer_json(u);
    j.erase("qmax");
    CHECK_THROWS_WITH(quantizer_from_json(j, "where"), doctest::Contains("where: qmax: missing"));
    j = quantizer_json(fit_log2(pos, 4));
    j["thresholds"].erase(0);
    CHECK_THROWS_WITH(quantizer_from_json(j, "where"), doctest::Contains("thresholds"));
}

TEST_CASE("export: both shipped models round-trip at W8A8, W4A4, W3A3, pow2 weights and per-tensor+RepQ: same tensors, quantizers, logits and per-class accuracy") {
    struct Case {
        const char* what;
        QuantConfig cfg;
    };
    std::vector<Case> cases = {{"W8A8", make_cfg(8, 8)},
                               {"W6A6 (int6)", make_cfg(6, 6)},
                               {"W5A8 (int5)", make_cfg(5, 8)},
                               {"W4A4", make_cfg(4, 4)},
                               {"W3A3 (int3)", make_cfg(3, 3)},
                               {"W2A8 (int2)", make_cfg(2, 8)},
                               {"W4A4 pow2", make_cfg(4, 4, QType::Pow2)},
                               {"W6A6 pow2 (index8)", make_cfg(6, 6, QType::Pow2)}};
    {
        QuantConfig c = make_cfg(4, 4);
        c.per_channel = false, c.reparam = true, c.edges_8bit = false, c.softmax = QType::Log2;
        cases.push_back({"W4A4 per-tensor, RepQ, no 8-bit edges, log2 softmax", c});
    }
    for (const std::string& dir : {kHfModel, kTimmModel}) {
        ModelFx& f = model_fx(dir);
        for (const Case& cs : cases) {
            CAPTURE(dir);
            CAPTURE(cs.what);
            const QuantizedViT q = quantize(f.lm.vit, f.data, cs.cfg, 2);
            const std::vector<uint8_t> bytes = export_quantized(q, f.st);
            const SafeTensors st = parse_safetensors(bytes.data(), bytes.size(), "exported");
            REQUIRE(is_quantized_checkpoint(st));
            size_t data = 0;  // the file's data section is exactly what model_bytes() counts
            for (const auto& kv : st.tensors) data += kv.second.bytes.size();
            CHECK(data == q.model_bytes());
            CHECK(!is_quantized_checkpoint(f.st));
            CHECK(st.metadata.at("format") == "pt");
            const QuantizedViT r = load_quantized(with_bytes(f.src, bytes));
            check_same_model(q, r);

            // Logits with the fake-quant hook, bit for bit, on a handful of images.
            FakeQuantHook hq(q), hr(r);
            for (size_t i = 0; i < 6; ++i) {
                const std::vector<float> img(f.data.inputs.begin() + long(i * f.data.input_size),
                                             f.data.inputs.begin() + long((i + 1) * f.data.input_size));
                CHECK(same_bits(q.model.forward(img, &hq), r.model.forward(img, &hr)));
            }
            // Same predictions and per-class accuracy on the 1k default set.
            const EvalResult eq = evaluate_quantized(q, f.data, 2), er = evaluate_quantized(r, f.data, 2);
            CHECK(eq.predictions == er.predictions);
            CHECK(eq.top1 == er.top1);
            for (size_t c = 0; c < eq.per_class.size(); ++c)
                if (!std::isnan(eq.per_class[c])) CHECK(eq.per_class[c] == er.per_class[c]);

            // Names are the original checkpoint's: Hugging Face q/k/v stay separate tensors.
            const bool hf = f.lm.vit.cfg.naming != Naming::Timm;
            const std::string qkv = hf ? "vit.encoder.layer.0.attention.attention.query" : "blocks.0.attn.qkv";
            const StTensor& w = tensor(st, qkv + ".weight_q");
            const int64_t rows = hf ? f.lm.vit.cfg.hidden : 3 * f.lm.vit.cfg.hidden, in = f.lm.vit.cfg.hidden;
            const bool pow2 = cs.cfg.weights == QType::Pow2;
            // Uniform b-bit codes take b bits each (int8 stays I8); pow2 indices take 4 bits up to 16 levels, else 8.
            const int code_bits = pow2 ? ((1 << (cs.cfg.wbits - 1)) + 1 <= 16 ? 4 : 8) : cs.cfg.wbits;
            CHECK(w.dtype == (code_bits < 8 || pow2 ? "U8" : "I8"));
            CHECK(w.shape == std::vector<int64_t>{rows, (in * code_bits + 7) / 8});
            CHECK(st.tensors.count(qkv + ".weight") == 0);
            const std::string aux = qkv + (pow2 ? ".weight_levels" : ".weight_scale");
            CHECK(tensor(st, aux).shape[0] == (cs.cfg.per_channel ? rows : 1));
            CHECK(tensor(st, qkv + ".bias").dtype == "F32");
        }
    }
}

TEST_CASE("export: int4 packing of an odd input size (timm patch embedding 1x7x7 = 49 columns at 4 bits)") {
    ModelFx& f = model_fx(kTimmModel);
    REQUIRE(f.lm.vit.patch_embed.in % 2 == 1);
    QuantConfig c = make_cfg(4, 4);
    c.edges_8bit = false;  // the patch embedding at 4 bits too
    const QuantizedViT q = quantize(f.lm.vit, f.data, c, 2);
    const std::vector<uint8_t> bytes = export_quantized(q, f.st);
    const SafeTensors st = parse_safetensors(bytes.data(), bytes.size(), "exported");
    const int64_t D = f.lm.vit.cfg.hidden, in = f.lm.vit.patch_embed.in;
    const StTensor& w = tensor(st, "patch_embed.proj.weight_q");
    CHECK(w.dtype == "U8");
    CHECK(w.shape == std::vector<int64_t>{D, (in + 1) / 2});
    // Decoding the nibbles by hand gives the weights: code · scale.
    const std::vector<int32_t> codes = unpack_bits(w.bytes.data(), size_t(D), size_t(in), 4, true);
    const std::vector<float> sc = tensor(st, "patch_embed.proj.weight_scale").to_f32("scale");
    for (size_t n = 0; n < size_t(D); ++n)
        for (size_t k = 0; k < size_t(in); ++k)
            REQUIRE(bl_f2u(float(codes[n * size_t(in) + k]) * sc[n]) == bl_f2u(q.model.patch_embed.weight[n * size_t(in) + k]));
    const QuantizedViT r = load_quantized(with_bytes(f.src, bytes));
    check_same_model(q, r);
    // The original 4-D shape is kept in the metadata and restored.
    CHECK(r.model.patch_embed.in == q.model.patch_embed.in);
}

// The shipped models are tiny (~140k / ~205k parameters), so fixed costs weigh: the FP32 remainder
// (position embeddings, norms, biases), one F32 scale per output channel, the 8-bit patch embedding
// and head, and the header (tensor entries and the recipe, mostly the 255/256-entry tables of the
// 8-bit post-softmax quantizers: ~20-45 KB). The data section is exactly the packed codes + scales +
// the FP32 remainder; the file as a whole is 2.5-3x smaller than FP32 at W8A8, 4.4-5.4x at W4A4.
TEST_CASE("export: the file is smaller than FP32 by about the expected factor (data section exact and equal to model_bytes; W8A8 > 2.4x, W4A4 > 4x overall)") {
    for (const std::string& dir : {kHfModel, kTimmModel}) {
        ModelFx& f = model_fx(dir);
        const size_t fp32 = 4 * f.lm.vit.parameter_count();
        size_t sizes[2] = {0, 0};
        for (int bits : {8, 4}) {
            CAPTURE(dir);
            CAPTURE(bits);
            const QuantizedViT q = quantize(f.lm.vit, f.data, make_cfg(bits, bits), 2);
            const std::vector<uint8_t> bytes = export_quantized(q, f.st);
            uint64_t hlen = 0;
            for (int i = 7; i >= 0; --i) hlen = hlen << 8 | bytes[size_t(i)];
            const size_t data = bytes.size() - 8 - size_t(hlen);
            // The data section is exactly: packed codes, one F32 scale per row, the FP32 remainder.
            size_t expect = 4 * (f.lm.vit.parameter_count() - q.weight_count());
            const std::vector<const Linear*> ls = q.model.linears();
            for (size_t i = 0; i < ls.size(); ++i) {
                const size_t per_row = (size_t(ls[i]->in) * size_t(q.wbits[i]) + 7) / 8;
                expect += size_t(ls[i]->out) * per_row + 4 * q.wq[i].size();
            }
            CHECK(data == expect);
            CHECK(data == q.model_bytes());  // the size the sweeps, the page and the size budget report
            CHECK(double(fp32) / double(data) > (bits == 8 ? 3.3 : 5.3));
            CHECK(hlen < 64 * 1024);
            sizes[bits == 8 ? 0 : 1] = bytes.size();
            MESSAGE(dir << " W" << bits << "A" << bits << ": " << bytes.size() << " bytes (header " << hlen << ", data " << data
                        << "), FP32 " << fp32 << " bytes: " << double(fp32) / double(bytes.size()) << "x smaller");
        }
        CHECK(double(fp32) / double(sizes[0]) > 2.4);
        CHECK(double(fp32) / double(sizes[1]) > 4.0);
    }
}

TEST_CASE("export: corrupted quantized checkpoints give errors naming the tensor or field") {
    ModelFx& f = model_fx(kHfModel);
    const QuantizedViT q = quantize(f.lm.vit, f.data, make_cfg(4, 4), 2);
    const std::vector<uint8_t> bytes = export_quantized(q, f.st);
    const SafeTensors good = parse_safetensors(bytes.data(), bytes.size(), "exported");
    auto load = [&](const SafeTensors& st) { return load_quantized(with_bytes(f.src, serialize_safetensors(st))); };
    const std::string base = "vit.encoder.layer.1.intermediate.dense";
    REQUIRE(good.tensors.count(base + ".weight_q"));

    SUBCASE("a missing scale") {
        SafeTensors st = rename(good, [&](const std::string& n) { return n == base + ".weight_scale" ? "" : n; });
        CHECK_THROWS_WITH(load(st), has("missing tensor '" + base + ".weight_scale'"));
    }
    SUBCASE("a wrong packed shape") {
        SafeTensors st = good;
        StTensor& t = st.tensors.at(base + ".weight_q");
        const int64_t r = t.shape[0], c = t.shape[1];
        REQUIRE(c % 2 == 0);
        t.shape = {r * 2, c / 2};
        CHECK_THROWS_WITH(load(st), has("tensor '" + base + ".weight_q' has shape [" + std::to_string(2 * r) + ", " + std::to_string(c / 2) +
                                        "], expected [" + std::to_string(r) + ", " + std::to_string(c) + "]"));
    }
    SUBCASE("int8 codes where int4 is declared") {
        SafeTensors st = good;
        StTensor& t = st.tensors.at(base + ".weight_q");
        t.dtype = "I8";
        CHECK_THROWS_WITH(load(st), doctest::Contains("has dtype I8, expected U8"));
    }
    SUBCASE("a code outside the quantizer's range") {
        SafeTensors st = good;
        st.tensors.at(base + ".weight_q").bytes[0] = 0x88;  // -8: outside the symmetric [-7, 7]
        CHECK_THROWS_WITH(load(st), doctest::Contains("code -8 at [0, 0] is outside [-7, 7]"));
    }
    SUBCASE("garbage metadata") {
        SafeTensors st = good;
        st.metadata[kQuantizationMetadataKey] = "{\"version\": 1, \"config\": ";
        CHECK_THROWS_WITH(load(st), doctest::Contains("__metadata__ 'bitlens.quantization' is not valid JSON"));
    }
    SUBCASE("a metadata field of the wrong type or missing") {
        json m = json::parse(good.metadata.at(kQuantizationMetadataKey));
        m["linears"][3]["bits"] = "four";
        SafeTensors st = good;
        st.metadata[kQuantizationMetadataKey] = m.dump();
        CHECK_THROWS_WITH(load(st), doctest::Contains("linears[3].bits: expected an integer from 2 to 8, found \"four\""));
        m = json::parse(good.metadata.at(kQuantizationMetadataKey));
        m["activations"][2]["quantizer"].erase("scale");
        st.metadata[kQuantizationMetadataKey] = m.dump();
        CHECK_THROWS_WITH(load(st), doctest::Contains("activations[2].quantizer: scale: missing"));
        m = json::parse(good.metadata.at(kQuantizationMetadataKey));
        m["config"]["wbits"] = 99;
        st.metadata[kQuantizationMetadataKey] = m.dump();
        CHECK_THROWS_WITH(load(st), doctest::Contains("config"));
    }
    SUBCASE("a quantized tensor the metadata does not describe") {
        json m = json::parse(good.metadata.at(kQuantizationMetadataKey));
        m["linears"].erase(m["linears"].size() - 1);  // the classifier
        SafeTensors st = good;
        st.metadata[kQuantizationMetadataKey] = m.dump();
        CHECK_THROWS_WITH(load(st), doctest::Contains("tensor 'classifier.weight_q' is not described by __metadata__"));
    }
    SUBCASE("not a quantized checkpoint") {
        CHECK_THROWS_WITH(load_quantized(f.src), doctest::Contains("not a quantized checkpoint"));
    }
    SUBCASE("exporting against a different checkpoint") {
        SafeTensors other = rename(f.st, [&](const std::string& n) { return n == base + ".weight" ? "" : n; });
        CHECK_THROWS_WITH(export_quantized(q, other), has("has no tensor '" + base + ".weight'"));
    }
}
