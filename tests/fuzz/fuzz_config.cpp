// config.json + preprocessor_config.json against real tensors: the input is a selector line ("hf": the shipped
// Hugging Face ViT's tensors, "timm": the shipped timm DeiT's, anything else: the HF tensors with the heads
// given only by the config), then (after kSep) config.json and preprocessor_config.json. resolve_config reads
// and checks them; what it accepts must describe a model the tensors load into. Seeds:
// tests/fuzz/corpus/config/ (the shipped models' own files, Hugging Face DeiT and timm variants).
#include <exception>

#include "fuzz_util.h"
#include "model.h"

using namespace bitlens;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto parts = fuzz::split_parts(data, size, 3);
    const fuzz::Shipped& s = fuzz::shipped();
    const bool timm = parts[0].rfind("timm", 0) == 0;
    ModelSource src;
    src.config_json = parts[1];
    src.preprocessor_json = parts[2];
    if (!timm && parts[0].rfind("hf", 0) != 0) src.heads_override = 0;  // heads from the config only
    const SafeTensors& st = timm ? s.timm_st : s.hf_st;
    try {
        const ViTConfig c = resolve_config(st, src);
        // A config that resolves is one the tensors load into; load it (the tensors are real) and size the input.
        const LoadedModel m = load_model(src, st);
        if (m.vit.cfg.tokens() != c.tokens()) __builtin_trap();
        // The preprocessing it describes, on a small grey image (resize sizes come from the config).
        Image8 img;
        img.width = 30, img.height = 20, img.channels = 1;
        img.pixels.assign(600, 128);
        if (preprocess(img, c.pp).size() != size_t(c.pp.channels) * c.pp.size_h * c.pp.size_w) __builtin_trap();
    } catch (const std::exception&) {
    }
    return 0;
}
