// safetensors parsing and model loading: the input is model.safetensors, then (after kSep) config.json and
// preprocessor_config.json, either empty (the config is then inferred from the tensors, 2 heads). A model
// that loads runs one forward pass when it is small (a loader that accepts tensors the model does not fit
// would read or write out of bounds there). Seeds: tests/fuzz/corpus/safetensors/.
#include <exception>

#include "export.h"
#include "fuzz_util.h"
#include "model.h"

using namespace bitlens;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto parts = fuzz::split_parts(data, size, 3);
    ModelSource src;
    src.safetensors = fuzz::bytes_of(parts[0]);
    src.config_json = parts[1];
    src.preprocessor_json = parts[2];
    src.heads_override = 2;
    try {
        const SafeTensors st = parse_safetensors(src.safetensors.data(), src.safetensors.size(), src.safetensors_name);
        serialize_safetensors(st);
        const AnyModel m = load_any(src, st);
        const ViT& vit = m.vit();
        const ViTConfig& c = vit.cfg;
        size_t values = 0;
        for (const auto& [name, t] : st.tensors) values += size_t(t.numel());
        if (c.tokens() <= 256 && double(values) * c.tokens() <= 2e7) {
            const std::vector<float> logits = vit.forward(std::vector<float>(size_t(c.channels) * c.image_h * c.image_w, 0.25f));
            if (logits.size() != size_t(c.num_classes)) __builtin_trap();
        }
    } catch (const std::exception&) {
    }
    return 0;
}
