// Export and reload of pruned FP32 models (export_fp32, src/quant/export.h) on both shipped models: a pruned
// model written as a model directory loads back as the same model (config, shapes, logits bit for bit), the
// unpruned one comes back unchanged, pruning a reloaded model again composes, a reloaded pruned model
// quantizes and exports like any other, and a source without config.json cannot record pruning.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "export.h"
#include "prune.h"
#include "ptq.h"
#include "test_util.h"

using namespace bitlens;
using namespace bitlens::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

#ifndef __EMSCRIPTEN__
struct TempDir {
    fs::path path;
    TempDir() {
        static int counter = 0;
        const auto t = std::chrono::steady_clock::now().time_since_epoch().count();
        path = fs::temp_directory_path() / ("bitlens_prune_export_test_" + std::to_string(t) + "_" + std::to_string(++counter));
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

void write_text(const fs::path& p, const void* data, size_t n) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    REQUIRE(f.write(static_cast<const char*>(data), std::streamsize(n)));
}

// A model directory as the CLI's write_fp32 writes it, read back as read_model_source reads any.
struct Reloaded {
    ModelSource src;
    SafeTensors st;
    LoadedModel lm;
};
Reloaded write_and_reload(const Fp32Export& e) {
    TempDir dir;
    write_text(dir.path / "model.safetensors", e.safetensors.data(), e.safetensors.size());
    if (!e.config_json.empty()) write_text(dir.path / "config.json", e.config_json.data(), e.config_json.size());
    if (!e.preprocessor_json.empty()) write_text(dir.path / "preprocessor_config.json", e.preprocessor_json.data(), e.preprocessor_json.size());
    Reloaded r;
    r.src = read_model_source(dir.path.string());
    r.st = tensors_of(r.src);
    r.lm = load_model(r.src, r.st);
    return r;
}

// Uneven keeps: block 0 keeps head 0 only, block 1 heads {1, 3}, the others all; 35-65 % of the MLP units.
void uneven_keeps(const ViT& m, std::vector<std::vector<int>>& heads, std::vector<std::vector<int>>& units) {
    const size_t L = m.blocks.size();
    const int pct[4] = {50, 35, 65, 45};
    heads.assign(L, {}), units.assign(L, {});
    for (size_t b = 0; b < L; ++b) {
        if (b == 0) heads[b] = {0};
        else if (b == 1) heads[b] = {1, 3};
        else
            for (int h = 0; h < m.cfg.heads; ++h) heads[b].push_back(h);
        for (int u = 0; u < m.cfg.mlp_dim; ++u)
            if ((u * 37 + int(b) * 11) % 100 < pct[b % 4]) units[b].push_back(u);
    }
}

void check_same_logits(const ViT& a, const ViT& b, const std::vector<std::vector<float>>& inputs) {
    for (const std::vector<float>& x : inputs) CHECK(same_bits(a.forward(x), b.forward(x)));
}

const StTensor& tensor(const SafeTensors& st, const std::string& name) {
    auto it = st.tensors.find(name);
    if (it == st.tensors.end()) throw std::runtime_error("test: no tensor '" + name + "'");
    return it->second;
}
#endif

}  // namespace

#ifndef __EMSCRIPTEN__
TEST_CASE("prune export: an unevenly pruned model reloads as the same model (config, shapes, parameters, logits bit for bit)") {
    for (bool hf : {true, false}) {
        CAPTURE(hf);
        const ModelSource& src = hf ? shipped().hf_src : shipped().tm_src;
        const ViT& m = (hf ? shipped().hf : shipped().tm).vit;
        const SafeTensors original = tensors_of(src);
        std::vector<std::vector<int>> kh, ku;
        uneven_keeps(m, kh, ku);
        REQUIRE(m.blocks.size() == 4);
        const ViT p = prune_structure(m, kh, ku);
        REQUIRE(p.cfg.pruned());

        const Fp32Export e = export_fp32(p, src, original);
        const Reloaded r = write_and_reload(e);
        const ViT& v = r.lm.vit;
        CHECK(v.cfg.pruned_heads == p.cfg.pruned_heads);
        CHECK(v.cfg.pruned_heads[0] == std::vector<int>{1, 2, 3});
        CHECK(v.cfg.pruned_heads[1] == std::vector<int>{0, 2});
        for (size_t b = 0; b < m.blocks.size(); ++b) {
            CHECK(v.cfg.block_heads(b) == int(kh[b].size()));
            CHECK(v.cfg.block_mlp(b) == int(ku[b].size()));
        }
        CHECK(v.cfg.dist_token == !hf);  // the DeiT keeps its distillation token and head
        CHECK(v.parameter_count() == p.parameter_count());
        CHECK(v.parameter_count() < m.parameter_count());
        check_same_logits(p, v, fmnist_test_inputs(m.cfg, 16));

        // config.json: transformers' pruned_heads in the original head numbering, each layer's MLP width.
        const json cj = json::parse(e.config_json);
        CHECK(cj.at("pruned_heads") == json{{"0", {1, 2, 3}}, {"1", {0, 2}}});
        CHECK(cj.at("bitlens_mlp_dims") == json{ku[0].size(), ku[1].size(), ku[2].size(), ku[3].size()});
        CHECK(e.preprocessor_json == src.preprocessor_json);
        // The rest of the config as it was, in its own key order.
        json rest = cj, orig = json::parse(src.config_json);
        rest.erase("pruned_heads"), rest.erase("bitlens_mlp_dims");
        CHECK(rest == orig);
        if (!hf) CHECK(e.config_json.find("\"num_classes\"") < e.config_json.find("\"label_names\""));  // not sorted

        // The pruned Linears at their own shapes, the rest at the original's.
        const int d = m.cfg.head_dim(), D = m.cfg.hidden;
        if (hf) {
            const std::string l1 = "vit.encoder.layer.1.";
            CHECK(tensor(r.st, l1 + "attention.attention.query.weight").shape == std::vector<int64_t>{2 * d, D});
            CHECK(tensor(r.st, "vit.encoder.layer.0.attention.attention.key.weight").shape == std::vector<int64_t>{d, D});
            CHECK(tensor(r.st, l1 + "attention.attention.value.bias").shape == std::vector<int64_t>{2 * d});
            CHECK(tensor(r.st, l1 + "attention.output.dense.weight").shape == std::vector<int64_t>{D, 2 * d});
            CHECK(tensor(r.st, l1 + "intermediate.dense.weight").shape == std::vector<int64_t>{int64_t(ku[1].size()), D});
            CHECK(tensor(r.st, l1 + "output.dense.weight").shape == std::vector<int64_t>{D, int64_t(ku[1].size())});
            CHECK(tensor(r.st, "vit.encoder.layer.2.attention.attention.query.weight").shape == std::vector<int64_t>{D, D});
            CHECK(tensor(r.st, "vit.embeddings.patch_embeddings.projection.weight").shape ==
                  tensor(original, "vit.embeddings.patch_embeddings.projection.weight").shape);
        } else {
            CHECK(tensor(r.st, "blocks.0.attn.qkv.weight").shape == std::vector<int64_t>{3 * d, D});
            CHECK(tensor(r.st, "blocks.1.attn.qkv.bias").shape == std::vector<int64_t>{3 * 2 * d});
            CHECK(tensor(r.st, "blocks.1.attn.proj.weight").shape == std::vector<int64_t>{D, 2 * d});
            CHECK(tensor(r.st, "blocks.2.mlp.fc1.weight").shape == std::vector<int64_t>{int64_t(ku[2].size()), D});
            CHECK(tensor(r.st, "blocks.2.mlp.fc2.weight").shape == std::vector<int64_t>{D, int64_t(ku[2].size())});
            CHECK(tensor(r.st, "patch_embed.proj.weight").shape == tensor(original, "patch_embed.proj.weight").shape);
            CHECK(tensor(r.st, "dist_token").shape == tensor(original, "dist_token").shape);
        }
        CHECK(r.st.order == original.order);  // every tensor, in the original's order
        CHECK(r.st.metadata == original.metadata);
    }
}

TEST_CASE("prune export: the unpruned model goes through export_fp32 unchanged (same logits, no pruning keys)") {
    for (bool hf : {true, false}) {
        CAPTURE(hf);
        const ModelSource& src = hf ? shipped().hf_src : shipped().tm_src;
        const ViT& m = (hf ? shipped().hf : shipped().tm).vit;
        const SafeTensors original = tensors_of(src);
        const Fp32Export e = export_fp32(m, src, original);
        const json cj = json::parse(e.config_json);
        CHECK_FALSE(cj.contains("pruned_heads"));
        CHECK_FALSE(cj.contains("bitlens_mlp_dims"));
        CHECK(cj == json::parse(src.config_json));
        CHECK(e.config_json == src.config_json);  // the shipped configs are written as export_fp32 writes (indent 2, key order kept)
        const Reloaded r = write_and_reload(e);
        CHECK_FALSE(r.lm.vit.cfg.pruned());
        for (const std::string& name : original.order) CHECK(tensor(r.st, name).shape == tensor(original, name).shape);
        check_same_logits(m, r.lm.vit, fmnist_test_inputs(m.cfg, 16));
    }
}

TEST_CASE("prune export: pruning a reloaded pruned model again records the heads in the original numbering and reloads as it is in memory") {
    for (bool hf : {true, false}) {
        CAPTURE(hf);
        const ModelSource& src = hf ? shipped().hf_src : shipped().tm_src;
        const ViT& m = (hf ? shipped().hf : shipped().tm).vit;
        const SafeTensors original = tensors_of(src);
        std::vector<std::vector<int>> kh, ku;
        uneven_keeps(m, kh, ku);
        const Reloaded once = write_and_reload(export_fp32(prune_structure(m, kh, ku), src, original));

        // Indices into each block's current heads: block 1's {1, 3} keeps its second (original 3).
        const std::vector<std::vector<int>> kh2 = {{0}, {1}, {0, 2}, {3}};
        std::vector<std::vector<int>> ku2(m.blocks.size());
        for (size_t b = 0; b < ku2.size(); ++b)
            for (int u = 0; u < once.lm.vit.cfg.block_mlp(b); u += 2) ku2[b].push_back(u);
        const ViT twice = prune_structure(once.lm.vit, kh2, ku2);
        const Fp32Export e = export_fp32(twice, once.src, once.st);
        const Reloaded r = write_and_reload(e);
        const std::vector<std::vector<int>> removed = {{1, 2, 3}, {0, 1, 2}, {1, 3}, {0, 1, 2}};
        CHECK(r.lm.vit.cfg.pruned_heads == removed);
        CHECK(json::parse(e.config_json).at("pruned_heads") == json{{"0", {1, 2, 3}}, {"1", {0, 1, 2}}, {"2", {1, 3}}, {"3", {0, 1, 2}}});
        for (size_t b = 0; b < ku2.size(); ++b) CHECK(r.lm.vit.cfg.block_mlp(b) == int(ku2[b].size()));
        check_same_logits(twice, r.lm.vit, fmnist_test_inputs(m.cfg, 16));
        // The same file whether the unpruned or the once-pruned checkpoint is the original.
        CHECK(export_fp32(twice, src, original).safetensors == e.safetensors);
    }
}

TEST_CASE("prune export: a reloaded pruned model quantizes (W4A4 PTQ), exports and reloads with identical logits") {
    for (bool hf : {true, false}) {
        CAPTURE(hf);
        const ModelSource& src = hf ? shipped().hf_src : shipped().tm_src;
        const ViT& m = (hf ? shipped().hf : shipped().tm).vit;
        const PreparedData& data = hf ? shipped().hf_data : shipped().tm_data;
        std::vector<std::vector<int>> kh, ku;
        uneven_keeps(m, kh, ku);
        const Reloaded r = write_and_reload(export_fp32(prune_structure(m, kh, ku), src, tensors_of(src)));

        PreparedData calib;
        calib.n = 16, calib.input_size = data.input_size;
        calib.inputs.assign(data.inputs.begin(), data.inputs.begin() + long(calib.n * data.input_size));
        calib.labels.assign(data.labels.begin(), data.labels.begin() + long(calib.n));
        QuantConfig qc;
        qc.wbits = 4, qc.abits = 4, qc.calib_size = 16;
        const QuantizedViT q = quantize(r.lm.vit, calib, qc, 2);
        const std::vector<uint8_t> bytes = export_quantized(q, r.st);
        ModelSource qs = r.src;
        qs.safetensors = bytes, qs.safetensors_name = "quantized.safetensors";
        const QuantizedViT back = load_quantized(qs);
        CHECK(back.model.cfg.pruned_heads == r.lm.vit.cfg.pruned_heads);
        CHECK(back.model.cfg.mlp_dims == r.lm.vit.cfg.mlp_dims);
        CHECK(back.wbits == q.wbits);
        FakeQuantHook hq(q), hb(back);
        for (const std::vector<float>& x : fmnist_test_inputs(m.cfg, 16)) CHECK(same_bits(q.model.forward(x, &hq), back.model.forward(x, &hb)));
    }
}

TEST_CASE("prune export: a source without config.json cannot record pruning (a clear error); unpruned it exports without one") {
    ModelSource src = shipped().hf_src;
    const SafeTensors original = tensors_of(src);
    src.config_json.clear(), src.preprocessor_json.clear();
    src.safetensors_name = "bare.safetensors";
    const ViT& m = shipped().hf.vit;
    std::vector<std::vector<int>> kh, ku;
    uneven_keeps(m, kh, ku);
    CHECK_THROWS_WITH_AS(export_fp32(prune_structure(m, kh, {}), src, original),
                         doctest::Contains("bare.safetensors: has no config.json to record the pruned heads and MLP widths in; "),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(export_fp32(prune_structure(m, {}, ku), src, original), doctest::Contains("has no config.json"), std::runtime_error);
    const Fp32Export e = export_fp32(m, src, original);
    CHECK(e.config_json.empty());
    CHECK(e.preprocessor_json.empty());
    CHECK(e.safetensors == export_fp32(m, shipped().hf_src, original).safetensors);
}
#endif
