// The checkpoint loader: safetensors parsing, both namings, three dtypes, configs, and every bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "test_util.h"

using namespace bitlens;
using namespace bitlens::test;
using json = nlohmann::json;

namespace {

std::vector<uint8_t> raw_file(const std::string& header, size_t data_bytes) {
    std::vector<uint8_t> f(8 + header.size() + data_bytes, 0);
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) f[size_t(i)] = uint8_t(n >> (8 * i));
    std::memcpy(f.data() + 8, header.data(), header.size());
    return f;
}
void check_parse_error(const std::vector<uint8_t>& f, const std::string& expect) {
    try {
        parse_safetensors(f.data(), f.size(), "bad.safetensors");
        FAIL("expected an error containing: " << expect);
    } catch (const std::runtime_error& e) {
        const std::string msg = e.what();
        CHECK_MESSAGE(msg.find(expect) != std::string::npos, msg);
        CHECK(msg.find("bad.safetensors") != std::string::npos);
    }
}
std::string load_error(const ModelSource& src) {
    try {
        load_model(src);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "(no error)";
}
double max_rel_err(const std::vector<float>& a, const std::vector<float>& b) {
    double scale = 0, err = 0;
    for (size_t i = 0; i < a.size(); ++i) scale = std::max(scale, std::fabs(double(b[i])));
    for (size_t i = 0; i < a.size(); ++i) err = std::max(err, std::fabs(double(a[i]) - double(b[i])));
    return err / std::max(scale, 1e-12);
}
std::vector<float> logits_of(const ModelSource& src, const std::vector<float>& input) {
    return load_model(src).vit.forward(input);
}

}  // namespace

TEST_CASE("safetensors: serialize then parse round-trips names, dtypes, shapes, bytes and metadata") {
    SafeTensors st;
    st.metadata["format"] = "pt";
    StTensor a{"F32", {2, 3}, std::vector<uint8_t>(24, 7)}, b{"I8", {5}, {1, 2, 3, 4, 5}};
    st.tensors["z.weight"] = a, st.tensors["a.bias"] = b;
    st.order = {"z.weight", "a.bias"};
    std::vector<uint8_t> f = serialize_safetensors(st);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; --i) hl = hl << 8 | f[size_t(i)];
    CHECK((8 + hl) % 8 == 0);
    SafeTensors r = parse_safetensors(f.data(), f.size(), "x");
    CHECK(r.metadata.at("format") == "pt");
    CHECK(r.order == std::vector<std::string>{"z.weight", "a.bias"});
    CHECK(r.tensors.at("z.weight").shape == std::vector<int64_t>{2, 3});
    CHECK(r.tensors.at("a.bias").bytes == b.bytes);
}

TEST_CASE("safetensors: F16 and BF16 convert exactly for representable values, round to nearest even otherwise") {
    CHECK(f16_to_f32(0x3c00) == 1.0f);
    CHECK(f16_to_f32(0xc000) == -2.0f);
    CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
    CHECK(f16_to_f32(0x7bff) == 65504.0f);
    CHECK(std::isinf(f16_to_f32(0x7c00)));
    CHECK(bf16_to_f32(0x3f80) == 1.0f);
    CHECK(bf16_to_f32(0xc040) == -3.0f);
    for (uint32_t h = 0; h < 0x7c00; ++h) {  // every finite positive f16 round-trips
        REQUIRE(f32_to_f16(f16_to_f32(uint16_t(h))) == h);
        REQUIRE(f32_to_bf16(bf16_to_f32(uint16_t(h))) == h);
    }
    CHECK(f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie → even
    CHECK(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);
    CHECK(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);
}

TEST_CASE("safetensors: each malformed file gets an error that names the problem") {
    check_parse_error({1, 2, 3}, "truncated");
    check_parse_error({200, 0, 0, 0, 0, 0, 0, 0, '{', '}'}, "beyond the end of the file");
    check_parse_error(raw_file("{not json", 0), "not valid JSON");
    check_parse_error(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4), "out of range");
    check_parse_error(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
                      "overlap");
    check_parse_error(raw_file(R"({"w":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", 8), "unknown dtype 'Q9'");
    check_parse_error(raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "needs 12 bytes, data_offsets give 8");
    check_parse_error(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "end before they begin");
    check_parse_error(raw_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "negative");
    check_parse_error(raw_file(R"({"w":{"dtype":"F32"}})", 8), "expected an object with dtype, shape and data_offsets");
}

TEST_CASE("loader: the shipped Hugging Face ViT and timm DeiT load with the architecture of their config") {
    LoadedModel hf = load_model(source(kHfModel));
    CHECK(hf.vit.cfg.naming == Naming::HfVit);
    CHECK(hf.source_dtype == "F32");
    CHECK(hf.vit.cfg.config_source == "Hugging Face config.json");
    CHECK(hf.vit.cfg.labels_known);
    CHECK(hf.vit.cfg.labels[6] == "Shirt");
    CHECK(hf.vit.cfg.ln_eps == doctest::Approx(1e-12));
    LoadedModel tm = load_model(source(kTimmModel));
    CHECK(tm.vit.cfg.naming == Naming::Timm);
    CHECK(tm.vit.cfg.dist_token);
    CHECK(tm.vit.cfg.dist_head);
    CHECK(tm.vit.cfg.config_source == "timm config.json");
    CHECK(tm.vit.cfg.labels[9] == "Ankle boot");
    CHECK(tm.vit.cfg.ln_eps == doctest::Approx(1e-6));
    // Every Linear's input, q/k/v, scores, probs, post-GELU are points; the weights are listed.
    CHECK(hf.vit.points.size() == size_t(2 + 9 * hf.vit.cfg.depth));
    CHECK(hf.vit.linears().size() == size_t(2 + 4 * hf.vit.cfg.depth));
    CHECK(tm.vit.linears().size() == size_t(3 + 4 * tm.vit.cfg.depth));
}

TEST_CASE("model: logits match the PyTorch reference dump for both shipped models (relative error < 1e-4)") {
    for (const std::string& dir : {kHfModel, kTimmModel}) {
        CAPTURE(dir);
        LoadedModel m = load_model(source(dir));
        std::vector<uint8_t> b = read_file_bytes(src_path(dir + "/reference_logits.json"));
        json ref = json::parse(b.begin(), b.end());
        const size_t n = ref["indices"].size();
        REQUIRE(n >= 8);
        std::vector<std::vector<float>> inputs = fmnist_test_inputs(m.vit.cfg, size_t(ref["indices"].back().get<int>()) + 1);
        for (size_t i = 0; i < n; ++i) {
            std::vector<float> got = m.vit.forward(inputs[ref["indices"][i].get<size_t>()]);
            std::vector<float> want = ref["logits"][i].get<std::vector<float>>();
            CHECK(max_rel_err(got, want) < 1e-4);
        }
    }
}

TEST_CASE("loader: F16 and BF16 checkpoints load (converted to f32) and stay close to the F32 logits") {
    ModelSource src = source(kHfModel);
    SafeTensors st = tensors_of(src);
    std::vector<float> x = fmnist_test_inputs(load_model(src).vit.cfg, 1)[0];
    std::vector<float> ref = logits_of(src, x);
    for (const std::string dt : {"F16", "BF16"}) {
        CAPTURE(dt);
        ModelSource s2 = with_tensors(src, convert_dtype(st, dt));
        LoadedModel m = load_model(s2);
        CHECK(m.source_dtype == dt);
        CHECK(max_rel_err(m.vit.forward(x), ref) < (dt == "F16" ? 5e-3 : 5e-2));
    }
}

TEST_CASE("loader: timm naming and Hugging Face naming of the same weights give the same logits") {
    // timm DeiT (fused qkv, dist token) → Hugging Face DeiTForImageClassificationWithTeacher naming.
    ModelSource src = source(kTimmModel);
    LoadedModel tm = load_model(src);
    const ViTConfig& c = tm.vit.cfg;
    SafeTensors st = tensors_of(src);
    SafeTensors hf;
    auto put = [&](const std::string& n, const StTensor& t) { hf.tensors[n] = t, hf.order.push_back(n); };
    auto slice_rows = [](const StTensor& t, int64_t r0, int64_t r1) {
        StTensor o = t;
        const int64_t cols = t.shape.size() == 2 ? t.shape[1] : 1;
        o.shape[0] = r1 - r0;
        o.bytes.assign(t.bytes.begin() + r0 * cols * 4, t.bytes.begin() + r1 * cols * 4);
        return o;
    };
    const int64_t D = c.hidden;
    for (const std::string& name : st.order) {
        const StTensor& t = st.tensors.at(name);
        std::string n = name;
        auto rep = [&](const std::string& a, const std::string& b) {
            size_t p = n.find(a);
            if (p != std::string::npos) n.replace(p, a.size(), b);
        };
        if (name.find("attn.qkv") != std::string::npos) {
            std::string layer = name.substr(7, name.find('.', 7) - 7), suffix = name.substr(name.rfind('.'));
            std::string base = "deit.encoder.layer." + layer + ".attention.attention.";
            put(base + "query" + suffix, slice_rows(t, 0, D));
            put(base + "key" + suffix, slice_rows(t, D, 2 * D));
            put(base + "value" + suffix, slice_rows(t, 2 * D, 3 * D));
            continue;
        }
        if (n == "cls_token") n = "deit.embeddings.cls_token";
        else if (n == "dist_token") n = "deit.embeddings.distillation_token";
        else if (n == "pos_embed") n = "deit.embeddings.position_embeddings";
        else if (n.rfind("patch_embed.proj", 0) == 0) rep("patch_embed.proj", "deit.embeddings.patch_embeddings.projection");
        else if (n.rfind("norm.", 0) == 0) n = "deit.layernorm" + n.substr(4);
        else if (n.rfind("head_dist.", 0) == 0) n = "distillation_classifier" + n.substr(9);
        else if (n.rfind("head.", 0) == 0) n = "cls_classifier" + n.substr(4);
        else {
            rep("blocks.", "deit.encoder.layer.");
            rep("norm1", "layernorm_before"), rep("norm2", "layernorm_after"), rep("attn.proj", "attention.output.dense");
            rep("mlp.fc1", "intermediate.dense"), rep("mlp.fc2", "output.dense");
        }
        put(n, t);
    }
    json cfg = {{"architectures", {"DeiTForImageClassificationWithTeacher"}},
                {"hidden_size", c.hidden}, {"num_hidden_layers", c.depth}, {"num_attention_heads", c.heads},
                {"intermediate_size", c.mlp_dim}, {"image_size", c.image_h}, {"patch_size", c.patch},
                {"num_channels", c.channels}, {"layer_norm_eps", 1e-6}, {"hidden_act", "gelu"}};
    for (int i = 0; i < c.num_classes; ++i) cfg["id2label"][std::to_string(i)] = c.labels[size_t(i)];
    json pre = {{"image_mean", c.pp.mean}, {"image_std", c.pp.std}, {"size", {{"height", c.image_h}, {"width", c.image_w}}}, {"resample", 2}};
    ModelSource hsrc;
    hsrc.safetensors = serialize_safetensors(hf);
    hsrc.config_json = cfg.dump();
    hsrc.preprocessor_json = pre.dump();
    LoadedModel hm = load_model(hsrc);
    CHECK(hm.vit.cfg.naming == Naming::HfDeit);
    CHECK(hm.vit.cfg.dist_head);
    for (const std::vector<float>& x : fmnist_test_inputs(c, 4)) CHECK(hm.vit.forward(x) == tm.vit.forward(x));  // bit-identical
}

TEST_CASE("loader: resize-and-crop preprocessing from Hugging Face (DeiT: size 256, crop_size 224) and timm (crop_pct, crop_mode) configs, with errors naming the field") {
    ModelSource src = source(kHfModel);
    const int S = load_model(src).vit.cfg.image_h;  // 28
    auto pp_of = [&](json pre) {
        ModelSource s = src;
        s.preprocessor_json = pre.dump();
        return load_model(s).vit.cfg.pp;
    };
    auto pre_error = [&](json pre) {
        ModelSource s = src;
        s.preprocessor_json = pre.dump();
        return load_error(s);
    };
    Preprocess p = pp_of({{"size", {{"height", S + 4}, {"width", S + 4}}}, {"do_center_crop", true}, {"crop_size", {{"height", S}, {"width", S}}}, {"resample", 3}});
    CHECK(p.resize_h == S + 4);
    CHECK(p.center_crop);
    CHECK(!p.crop_round);
    CHECK(p.resample == "bicubic");
    p = pp_of({{"size", {{"shortest_edge", S + 4}}}, {"do_center_crop", true}, {"crop_size", S}});
    CHECK(p.shortest_edge == S + 4);
    p = pp_of({{"size", {{"height", S}, {"width", S}}}});
    CHECK(!p.center_crop);
    CHECK(p.shortest_edge == 0);
    std::string e = pre_error({{"size", {{"height", S + 4}, {"width", S + 4}}}, {"do_center_crop", true}, {"crop_size", S + 1}});
    CHECK_MESSAGE(e.find("crop_size 29x29 does not match the model's image size 28x28") != std::string::npos, e);
    e = pre_error({{"size", S + 4}});
    CHECK_MESSAGE(e.find("size 32x32 does not match the model's image size 28x28") != std::string::npos, e);
    e = pre_error({{"do_center_crop", true}});
    CHECK_MESSAGE(e.find("do_center_crop needs crop_size") != std::string::npos, e);

    ModelSource t = source(kTimmModel);
    auto timm = [&](json pc_extra) {
        json cfg = json::parse(t.config_json);
        for (auto& kv : pc_extra.items()) cfg["pretrained_cfg"][kv.key()] = kv.value();
        ModelSource s = t;
        s.config_json = cfg.dump();
        return s;
    };
    p = load_model(timm({{"crop_pct", 0.875}})).vit.cfg.pp;
    CHECK(p.shortest_edge == 32);  // floor(28 / 0.875)
    CHECK(p.center_crop);
    CHECK(p.crop_round);
    p = load_model(timm({{"crop_pct", 0.9}, {"crop_mode", "squash"}})).vit.cfg.pp;
    CHECK(p.resize_h == 31);  // floor(28 / 0.9)
    CHECK(p.shortest_edge == 0);
    e = load_error(timm({{"crop_pct", 0.875}, {"crop_mode", "border"}}));
    CHECK_MESSAGE(e.find("crop_mode 'border' is not supported") != std::string::npos, e);
    e = load_error(timm({{"crop_pct", 1.5}}));
    CHECK_MESSAGE(e.find("crop_pct must be in (0, 1], found 1.5") != std::string::npos, e);
}

TEST_CASE("loader: without config.json the architecture is inferred, except the head count, which must be given") {
    ModelSource src = source(kTimmModel);
    LoadedModel ref = load_model(src);
    ModelSource bare = src;
    bare.config_json.clear(), bare.preprocessor_json.clear();
    CHECK(load_error(bare).find("number of attention heads cannot be seen in the tensors") != std::string::npos);
    bare.heads_override = ref.vit.cfg.heads;
    LoadedModel inf = load_model(bare);
    CHECK(inf.vit.cfg.config_source == "inferred from tensors");
    CHECK(inf.vit.cfg.hidden == ref.vit.cfg.hidden);
    CHECK(inf.vit.cfg.depth == ref.vit.cfg.depth);
    CHECK(inf.vit.cfg.mlp_dim == ref.vit.cfg.mlp_dim);
    CHECK(inf.vit.cfg.image_h == ref.vit.cfg.image_h);
    CHECK(inf.vit.cfg.num_classes == ref.vit.cfg.num_classes);
}

TEST_CASE("loader: missing, extra or misshapen tensors and bad configs are errors naming the tensor or field") {
    ModelSource src = source(kHfModel);
    SafeTensors st = tensors_of(src);
    json cfg = json::parse(src.config_json);

    std::string e = load_error(with_tensors(src, rename(st, [](const std::string& n) {
        return n == "vit.encoder.layer.1.intermediate.dense.bias" ? "" : n;
    })));
    CHECK_MESSAGE(e.find("missing tensor 'vit.encoder.layer.1.intermediate.dense.bias'") != std::string::npos, e);

    SafeTensors extra = st;
    extra.tensors["vit.encoder.layer.0.extra.weight"] = st.tensors.at("classifier.bias");
    extra.order.push_back("vit.encoder.layer.0.extra.weight");
    e = load_error(with_tensors(src, extra));
    CHECK_MESSAGE(e.find("unexpected tensor 'vit.encoder.layer.0.extra.weight'") != std::string::npos, e);

    SafeTensors bad = st;
    bad.tensors["classifier.bias"].shape = {int64_t(bad.tensors["classifier.bias"].bytes.size() / 8), 2};
    e = load_error(with_tensors(src, bad));
    CHECK_MESSAGE(e.find("'classifier.bias' has shape") != std::string::npos, e);

    SafeTensors wrong_dtype = st;
    wrong_dtype.tensors["classifier.bias"].dtype = "I32";
    e = load_error(with_tensors(src, wrong_dtype));
    CHECK_MESSAGE(e.find("dtype I32, expected F32, F16 or BF16") != std::string::npos, e);

    auto cfg_error = [&](json c) {
        ModelSource s = src;
        s.config_json = c.dump();
        s.preprocessor_json.clear();  // test the config against the tensors alone
        return load_error(s);
    };
    json c1 = cfg;
    c1.erase("hidden_size");
    e = cfg_error(c1);
    CHECK_MESSAGE(e.find("missing field 'hidden_size'") != std::string::npos, e);
    json c2 = cfg;
    c2["num_hidden_layers"] = cfg["num_hidden_layers"].get<int>() + 1;
    e = cfg_error(c2);
    CHECK_MESSAGE(e.find("num_hidden_layers is") != std::string::npos, e);
    json c3 = cfg;
    c3["num_attention_heads"] = 7;
    e = cfg_error(c3);
    CHECK_MESSAGE(e.find("does not divide hidden size") != std::string::npos, e);
    json c4 = cfg;
    c4["image_size"] = cfg["image_size"].get<int>() * 2;
    e = cfg_error(c4);
    CHECK_MESSAGE(e.find("number of patches") != std::string::npos, e);
    json c5 = cfg;
    c5["hidden_act"] = "swish";
    e = cfg_error(c5);
    CHECK_MESSAGE(e.find("hidden_act 'swish' is not supported") != std::string::npos, e);
    ModelSource s6 = src;
    s6.config_json = "{\"hidden_size\": ";
    e = load_error(s6);
    CHECK_MESSAGE(e.find("not valid JSON") != std::string::npos, e);
    ModelSource s7 = source(kTimmModel);
    s7.config_json = src.config_json;  // HF config with timm tensors
    e = load_error(s7);
    CHECK_MESSAGE(e.find("tensors use timm naming") != std::string::npos, e);
}
