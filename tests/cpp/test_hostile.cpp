// Hostile inputs found by fuzzing (issue 17's "Found" list), each kept as a regression test: deeply nested
// JSON in a config, a safetensors header and a quantized recipe; a timm architecture name with 50,000 digits;
// a checkpoint whose inferred patch size is 0. Each is a clear error, never a crash.
#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "export.h"
#include "test_util.h"

using namespace bitlens;
using namespace bitlens::test;

namespace {

std::string nested(size_t depth, const std::string& inner = "1") { return std::string(depth, '[') + inner + std::string(depth, ']'); }

}  // namespace

TEST_CASE("JSON nested tens of thousands deep is refused before it is built: config.json, safetensors header, quantized recipe") {
    ModelSource src = source(kHfModel);
    src.config_json = "{\"hidden_size\": " + nested(80000) + "}";
    CHECK_THROWS_WITH(load_model(src), doctest::Contains("JSON nested deeper than 64 levels"));

    const std::string header = "{\"a\": " + nested(100000) + "}";
    std::vector<uint8_t> file(8);
    for (int i = 0; i < 8; ++i) file[size_t(i)] = uint8_t(uint64_t(header.size()) >> (8 * i));
    file.insert(file.end(), header.begin(), header.end());
    CHECK_THROWS_WITH(parse_safetensors(file.data(), file.size(), "deep.safetensors"),
                      doctest::Contains("deep.safetensors: header: JSON nested deeper than 64 levels"));

    // A real quantized export whose recipe's `version` is nested 100,000 deep.
    const ModelSource hf = source(kHfModel);
    const LoadedModel lm = load_model(hf);
    QuantConfig qc;
    qc.calib_size = 4;
    const PreparedData calib = prepare(load_dataset(src_path("models/data")), lm.vit.cfg, 8);
    SafeTensors st = parse_safetensors(hf.safetensors.data(), hf.safetensors.size(), "x");
    const std::vector<uint8_t> bytes = export_quantized(quantize(lm.vit, calib, qc), st);
    SafeTensors q = parse_safetensors(bytes.data(), bytes.size(), "q.safetensors");
    nlohmann::json recipe = nlohmann::json::parse(q.metadata.at(kQuantizationMetadataKey));
    std::string text = recipe.dump();
    const std::string key = "\"version\":" + recipe["version"].dump();
    REQUIRE(text.find(key) != std::string::npos);
    text.replace(text.find(key), key.size(), "\"version\":" + nested(100000));
    q.metadata[kQuantizationMetadataKey] = text;
    ModelSource qs = hf;
    qs.safetensors = serialize_safetensors(q);
    CHECK_THROWS_WITH(load_quantized(qs), doctest::Contains("JSON nested deeper than 64 levels"));
}

TEST_CASE("a timm architecture with 50,000 digits is an error naming it, not a stack overflow in std::regex") {
    ModelSource src = source(kTimmModel);
    nlohmann::json cfg = nlohmann::json::parse(src.config_json);
    cfg["architecture"] = "deit_patch" + std::string(50000, '7');
    src.config_json = cfg.dump();
    CHECK_THROWS_WITH(load_model(src), doctest::Contains("its patch size has 50000 digits (at most 6)"));
    cfg["architecture"] = "deit_tiny_" + std::string(20000, '1');
    src.config_json = cfg.dump();
    CHECK_THROWS_WITH(load_model(src), doctest::Contains("its image size has 20000 digits (at most 6)"));
    // The ordinary names still give their sizes.
    cfg["architecture"] = "deit_fmnist_distilled_patch7_28";
    src.config_json = cfg.dump();
    CHECK(load_model(src).vit.cfg.patch == 7);
}

TEST_CASE("a checkpoint without config whose patch embedding has a 0-sized kernel: an error, not a division by zero") {
    ModelSource src = source(kTimmModel);
    src.config_json.clear(), src.preprocessor_json.clear();
    src.heads_override = 4;
    SafeTensors st = tensors_of(src);
    StTensor& proj = st.tensors.at("patch_embed.proj.weight");
    proj.shape = {proj.shape[0], 1, 0, 0};
    proj.bytes.clear();
    CHECK_THROWS_WITH(load_model(with_tensors(src, st)), doctest::Contains("patch size is 0, it must be at least 1"));
}
