// Writes the seed corpora of tests/fuzz/corpus/ from real files: the shipped models cut down to tiny ones
// (hidden 8, 2 heads, MLP 16, 1 block: each tensor the leading part of the shipped one), their configs, the
// shipped Fashion-MNIST images, and what BitLens itself writes from those (a quantized export, sweep parts,
// mixed-precision sensitivities, QuantConfig and quantizer JSON). Run by tests/fuzz/make_seeds.sh (which also
// gzips the IDX seeds); the corpora are committed, so this only needs running when a format changes.
//   fuzz_make_seeds <source dir> <corpus dir>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "../cpp/stb_write.h"
#include "export.h"
#include "fuzz_util.h"
#include "mixed.h"
#include "model.h"
#include "ptq.h"
#include "sweep.h"

using namespace bitlens;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

fs::path corpus;

void write(const std::string& harness, const std::string& name, const std::string& bytes) {
    fs::create_directories(corpus / harness);
    std::ofstream(corpus / harness / name, std::ios::binary) << bytes;
}
std::string str(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }
std::string join(const std::vector<std::string>& parts) {
    std::string s;
    for (size_t i = 0; i < parts.size(); ++i) s += (i ? fuzz::kSep : "") + parts[i];
    return s;
}

// The leading part of `t` along every dimension (dims of 64 → 8, 128/256 → 16, 192 → 24; others kept).
StTensor cut(const StTensor& t) {
    std::vector<int64_t> shape = t.shape;
    for (int64_t& d : shape) d = d == 64 ? 8 : (d == 128 || d == 256) ? 16 : d == 192 ? 24 : d;
    StTensor o;
    o.dtype = t.dtype;
    o.shape = shape;
    const size_t es = dtype_size(t.dtype);
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    o.bytes.resize(size_t(n) * es);
    std::vector<int64_t> idx(shape.size(), 0);
    for (int64_t k = 0; k < n; ++k) {
        int64_t src = 0;
        for (size_t d = 0; d < shape.size(); ++d) src = src * t.shape[d] + idx[d];
        std::copy_n(t.bytes.begin() + src * int64_t(es), es, o.bytes.begin() + k * int64_t(es));
        for (size_t d = shape.size(); d-- > 0;) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
    return o;
}

// A shipped model cut to one block and hidden size 8, with its config.json changed to say so.
ModelSource tiny(const ModelSource& src, bool timm) {
    const SafeTensors st = parse_safetensors(src.safetensors.data(), src.safetensors.size(), "shipped");
    SafeTensors out;
    out.metadata = st.metadata;
    for (const std::string& name : st.order) {
        const bool later_block = timm ? name.rfind("blocks.", 0) == 0 && name.rfind("blocks.0.", 0) != 0
                                      : name.find("encoder.layer.") != std::string::npos &&
                                            name.find("encoder.layer.0.") == std::string::npos;
        if (later_block) continue;
        out.tensors[name] = cut(st.tensors.at(name));
        out.order.push_back(name);
    }
    ModelSource t = src;
    t.safetensors = serialize_safetensors(out);
    json c = json::parse(src.config_json);
    if (timm) {
        c["num_features"] = 8;
        c["model_args"]["embed_dim"] = 8, c["model_args"]["depth"] = 1, c["model_args"]["num_heads"] = 2;
        c["model_args"]["mlp_ratio"] = 2.0;
    } else {
        c["hidden_size"] = 8, c["num_hidden_layers"] = 1, c["num_attention_heads"] = 2, c["intermediate_size"] = 16;
    }
    t.config_json = c.dump(2);
    return t;
}

SafeTensors as_dtype(SafeTensors st, const std::string& dtype) {
    for (auto& [name, t] : st.tensors) {
        const std::vector<float> f = t.to_f32(name);
        t.dtype = dtype;
        t.bytes.resize(f.size() * 2);
        for (size_t i = 0; i < f.size(); ++i) {
            const uint16_t h = dtype == "F16" ? f32_to_f16(f[i]) : f32_to_bf16(f[i]);
            t.bytes[2 * i] = uint8_t(h), t.bytes[2 * i + 1] = uint8_t(h >> 8);
        }
    }
    return st;
}

void png_sink(void* ctx, void* data, int size) {
    auto* s = static_cast<std::string*>(ctx);
    s->append(static_cast<const char*>(data), size_t(size));
}
std::string encode(const Image8& im, char kind) {
    std::string s;
    const int w = im.width, h = im.height, c = im.channels;
    if (kind == 'p') stbi_write_png_to_func(png_sink, &s, w, h, c, im.pixels.data(), w * c);
    if (kind == 'b') stbi_write_bmp_to_func(png_sink, &s, w, h, c, im.pixels.data());
    if (kind == 'j') stbi_write_jpg_to_func(png_sink, &s, w, h, c, im.pixels.data(), 80);
    return s;
}
Image8 shrink(const Image8& im, int w, int h) { return resize_image(im, w, h, "bilinear"); }

// A GIF87a of the image's grey levels quantised to 4 (LZW of 3-bit... kept simple: a 2-colour-bit palette and
// uncompressed LZW codes, a clear code every 2 pixels so the code size stays 3 bits).
std::string gif(const Image8& grey) {
    const int w = grey.width, h = grey.height;
    std::string s = "GIF87a";
    auto u16 = [&](int v) { s += char(v & 255), s += char(v >> 8); };
    u16(w), u16(h);
    s += char(0x81), s += char(0), s += char(0);  // global table of 4 colours
    for (int i = 0; i < 4; ++i) s += std::string(3, char(i * 85));
    s += ',', u16(0), u16(0), u16(w), u16(h), s += char(0);
    s += char(2);  // min code size 2: clear 4, end 5, codes of 3 bits
    std::string bits;
    uint32_t acc = 0;
    int nacc = 0;
    auto put = [&](int code) {
        acc |= uint32_t(code) << nacc, nacc += 3;
        while (nacc >= 8) bits += char(acc & 255), acc >>= 8, nacc -= 8;
    };
    for (int i = 0; i < w * h; ++i) {
        if (i % 2 == 0) put(4);
        put(grey.pixels[size_t(i)] / 64);
    }
    put(5);
    if (nacc) bits += char(acc & 255);
    for (size_t at = 0; at < bits.size(); at += 255) {
        const std::string blk = bits.substr(at, 255);
        s += char(blk.size()), s += blk;
    }
    s += char(0), s += ';';
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: fuzz_make_seeds <source dir> <corpus dir>\n";
        return 2;
    }
    const fs::path root = argv[1];
    corpus = argv[2];
    const ModelSource hf = read_model_source((root / "models/vit-fmnist-hf").string());
    const ModelSource tm = read_model_source((root / "models/deit-fmnist-timm").string());
    const ModelSource thf = tiny(hf, false), ttm = tiny(tm, true);
    const SafeTensors thf_st = parse_safetensors(thf.safetensors.data(), thf.safetensors.size(), "tiny hf");
    const SafeTensors ttm_st = parse_safetensors(ttm.safetensors.data(), ttm.safetensors.size(), "tiny timm");
    const LoadedModel mhf = load_model(thf), mtm = load_model(ttm);

    // safetensors (+ config): tiny models with their configs, and F16 / BF16 ones without (config inferred).
    write("safetensors", "tiny-hf", join({str(thf.safetensors), thf.config_json, thf.preprocessor_json}));
    write("safetensors", "tiny-timm", join({str(ttm.safetensors), ttm.config_json, ""}));
    write("safetensors", "tiny-hf-f16-noconfig", str(serialize_safetensors(as_dtype(thf_st, "F16"))));
    write("safetensors", "tiny-timm-bf16-noconfig", str(serialize_safetensors(as_dtype(ttm_st, "BF16"))));

    // config: the shipped models' own files, and variants of the preprocessing they can say.
    write("config", "hf", join({"hf", hf.config_json, hf.preprocessor_json}));
    write("config", "timm", join({"timm", tm.config_json, ""}));
    write("config", "hf-heads-from-config", join({"none", hf.config_json, ""}));
    {
        json p = json::parse(hf.preprocessor_json);
        p["size"] = {{"shortest_edge", 32}}, p["crop_size"] = {{"height", 28}, {"width", 28}}, p["do_center_crop"] = true;
        p["resample"] = 3;
        write("config", "hf-shortest-edge-crop", join({"hf", hf.config_json, p.dump(2)}));
        json t = json::parse(tm.config_json);
        t["pretrained_cfg"]["crop_pct"] = 0.875, t["pretrained_cfg"]["interpolation"] = "bicubic";
        t["pretrained_cfg"]["crop_mode"] = "center";
        write("config", "timm-crop-pct", join({"timm", t.dump(2), ""}));
    }

    // images: the first Fashion-MNIST test images as PNG, JPEG, BMP, GIF; grey, RGB and RGBA.
    const Dataset test = load_dataset((root / "models/data").string());
    const Image8 g = test.images[0], g2 = test.images[1];
    const Image8 rgb = convert_channels(g2, 3);
    Image8 rgba = shrink(rgb, 12, 10);
    {
        Image8 a;
        a.width = rgba.width, a.height = rgba.height, a.channels = 4;
        for (size_t i = 0; i < rgba.pixels.size() / 3; ++i) {
            a.pixels.insert(a.pixels.end(), rgba.pixels.begin() + long(3 * i), rgba.pixels.begin() + long(3 * i + 3));
            a.pixels.push_back(uint8_t(i * 7));
        }
        rgba = a;
    }
    write("image", "grey28.png", encode(g, 'p'));
    write("image", "rgb-20x16.png", encode(shrink(rgb, 20, 16), 'p'));
    write("image", "rgba-12x10.png", encode(rgba, 'p'));
    write("image", "grey28.jpg", encode(g, 'j'));
    write("image", "rgb-20x16.jpg", encode(shrink(rgb, 20, 16), 'j'));
    write("image", "rgb-9x7.bmp", encode(shrink(rgb, 9, 7), 'b'));
    write("image", "grey-10x6.gif", gif(shrink(g, 10, 6)));

    // idx: the first 4 test images and labels, raw (make_seeds.sh adds gzipped copies).
    std::string images, labels;
    {
        auto be32 = [](std::string& s, uint32_t v) {
            for (int k = 3; k >= 0; --k) s += char((v >> (8 * k)) & 255);
        };
        be32(images, 0x803), be32(images, 4), be32(images, 28), be32(images, 28);
        be32(labels, 0x801), be32(labels, 4);
        for (int i = 0; i < 4; ++i) {
            images += str(test.images[size_t(i)].pixels);
            labels += char(test.labels[size_t(i)]);
        }
        write("idx", "raw", join({images, labels}));
    }

    // folder: class subfolders of PNG/JPEG/BMP/GIF (and a hidden file, a non-image), and an IDX pair by name.
    write("folder", "classes", join({"Trouser/a.png\n" + encode(g, 'p'), "Trouser/b.JPG\n" + encode(g2, 'j'),
                                     "Bag/c.bmp\n" + encode(shrink(rgb, 9, 7), 'b'), "Bag/.d.png\n" + encode(g, 'p'),
                                     "Bag/notes.txt\nnot an image", "Dress/e.gif\n" + gif(shrink(g, 10, 6))}));
    write("folder", "idx-pair", join({"t10k-images-idx3-ubyte\n" + images, "t10k-labels-idx1-ubyte\n" + labels}));

    // quantized: tiny exports (the first is the base the recipe-only inputs go into) and the recipe alone.
    const PreparedData thf_data = prepare(test, mhf.vit.cfg, 64), ttm_data = prepare(test, mtm.vit.cfg, 64);
    QuantConfig w4;
    w4.wbits = 4, w4.abits = 4, w4.calib_size = 8;
    const QuantizedViT q4 = quantize(mhf.vit, thf_data, w4);
    const std::vector<uint8_t> base = export_quantized(q4, thf_st);
    write("quantized", "tiny-hf-w4a4.safetensors", str(base));
    const SafeTensors base_st = parse_safetensors(base.data(), base.size(), "base");
    write("quantized", "recipe-w4a4.json", base_st.metadata.at(kQuantizationMetadataKey));
    QuantConfig p3;
    p3.wbits = 3, p3.abits = 3, p3.weights = QType::Pow2, p3.softmax = QType::Log2, p3.calib_size = 8;
    const QuantizedViT qp = quantize(mtm.vit, ttm_data, p3);
    write("quantized", "tiny-timm-w3a3-pow2.safetensors", str(export_quantized(qp, ttm_st)));
    QuantConfig u8;
    u8.per_channel = false, u8.reparam = true, u8.calib_size = 8, u8.softmax = QType::Uniform, u8.abits = 6;
    u8.layer_bits["blocks.0.mlp.fc1"] = 2, u8.point_bits["blocks.0.attn.probs"] = 5;
    const QuantizedViT qu = quantize(mhf.vit, thf_data, u8);
    const std::vector<uint8_t> eu = export_quantized(qu, thf_st);
    const SafeTensors eu_st = parse_safetensors(eu.data(), eu.size(), "u8");
    write("quantized", "recipe-mixed-reparam.json", eu_st.metadata.at(kQuantizationMetadataKey));

    // quantconfig: QuantConfig objects, the quantizers of the exports' recipes, shorthand.
    write("quantconfig", "w4a4.json", config_json(w4).dump());
    write("quantconfig", "pow2-log2.json", config_json(p3).dump());
    write("quantconfig", "mixed.json", config_json(u8).dump());
    write("quantconfig", "camel.json", R"({"wbits":6,"abits":6,"calibSize":16,"softmaxBits":4,"method":"sos","recon_iters":2})");
    write("quantconfig", "wa.txt", "w3a3");
    for (const auto& [tag, st] : {std::pair<std::string, const SafeTensors*>{"w4a4", &base_st}, {"mixed", &eu_st}}) {
        const json r = json::parse(st->metadata.at(kQuantizationMetadataKey));
        std::set<std::string> kinds;
        for (const json& a : r.at("activations"))
            if (a.contains("quantizer") && kinds.insert(a["quantizer"]["type"].get<std::string>()).second)
                write("quantconfig", "quantizer-" + tag + "-" + a["quantizer"]["type"].get<std::string>() + ".json",
                      a["quantizer"].dump());
    }
    write("quantconfig", "quantizer-pow2-weights.json", quantizer_json(qp.wq[1][0]).dump());
    write("quantconfig", "quantizer-uniform-weights.json", quantizer_json(q4.wq[1][0]).dump());

    // sweep: a 2-part sweep of the tiny model (2 configurations × 2 seeds), each part, both as an array, specs.
    {
        const Dataset eval = [&] {
            Dataset d;
            d.class_names = test.class_names;
            d.images.assign(test.images.begin(), test.images.begin() + 12);
            d.labels.assign(test.labels.begin(), test.labels.begin() + 12);
            return d;
        }();
        SweepSpec spec;
        spec.configs = {parse_wa("w8a8", QuantConfig{}), parse_wa("w4a4", QuantConfig{})};
        spec.seeds = 2, spec.calib_size = 4;
        json both = json::array();
        for (int i = 1; i <= 2; ++i) {
            SweepPart part = run_sweep_part(mhf.vit, eval, eval, spec, Shard{i, 2}, 1);
            part.identity = {tensors_fingerprint(thf_st), model_config_fingerprint(thf), dataset_fingerprint(eval),
                             dataset_fingerprint(eval), "tiny-hf", "eval", "eval"};
            const json j = sweep_part_json(part);
            write("sweep", "part-" + std::to_string(i) + "-of-2.json", j.dump());
            both.push_back(j);
        }
        write("sweep", "parts-array.json", both.dump());
        write("sweep", "spec.json", R"({"configs":[{"wbits":4,"abits":4}],"seeds":3,"firstSeed":7,"calibSize":8,)"
                                    R"("calibClasses":[0,"Bag"],"calibSkew":0.5,"calibCorrupt":"noise:3","evalCorrupt":"blur:1",)"
                                    R"("groups":[{"name":"tops","classes":[0,2,"Shirt"]}],"limit":100})");
        write("sweep", "spec-short.json", R"({"configs":["w8a8","w3a3"],"seeds":2,"groups":"tops=0,2;shoes=5,7,9"})");
    }

    // mixed: sensitivities measured on the tiny model (2, 4, 8 bits), with average-bit and byte budgets.
    {
        SensitivityRunner r(mhf.vit, thf_data, {0, 1, 2, 3}, QuantConfig{}, Objective::Worst, {2, 4, 8});
        ViT scratch = mhf.vit;
        for (size_t i = 0; i < r.total(); ++i) r.run(i, scratch);
        const Sensitivities s = r.finish();
        const std::string sj = sensitivities_json(s).dump();
        write("mixed", "budget-4", join({sj, R"({"budget":4,"abudget":4})"}));
        write("mixed", "budget-2.5", join({sj, R"({"budget":2.5,"abudget":8})"}));
        write("mixed", "max-bytes", join({sj, R"({"maxBytes":9000,"abudget":4})"}));
    }
    std::cout << "seeds written to " << corpus.string() << "\n";
    return 0;
}
