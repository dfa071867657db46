// Quantized models (BitLens exports): the input is either a whole exported .safetensors, or (when it starts
// with '{') the recipe alone — the "bitlens.quantization" __metadata__ JSON — put into the export in
// tests/fuzz/corpus/quantized/tiny-hf-w4a4.safetensors in place of its own. A model that loads runs one
// forward pass with its activation quantizers, then again on the integer path (the codes and quantizers the
// recipe describes are what those kernels index with). Seeds: tests/fuzz/corpus/quantized/.
#include <exception>

#include "export.h"
#include "fuzz_util.h"
#include "ptq.h"

using namespace bitlens;

namespace {
const SafeTensors& base() {
    static const SafeTensors st = [] {
        const std::vector<uint8_t> b = read_file_bytes(fuzz::source_path("tests/fuzz/corpus/quantized/tiny-hf-w4a4.safetensors"));
        return parse_safetensors(b.data(), b.size(), "base");
    }();
    return st;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    ModelSource src;
    src.safetensors_name = "quantized.safetensors";
    src.heads_override = 2;
    try {
        if (size > 0 && data[0] == '{') {
            SafeTensors st = base();
            st.metadata[kQuantizationMetadataKey] = std::string(reinterpret_cast<const char*>(data), size);
            src.safetensors = serialize_safetensors(st);
        } else {
            src.safetensors.assign(data, data + size);
        }
        const SafeTensors st = parse_safetensors(src.safetensors.data(), src.safetensors.size(), src.safetensors_name);
        QuantizedViT q = load_quantized(src, st);
        const ViTConfig& c = q.model.cfg;
        if (c.tokens() > 256 || q.weight_count() * size_t(c.tokens()) > size_t(2e7)) return 0;
        const std::vector<float> x(size_t(c.channels) * c.image_h * c.image_w, 0.25f);
        {
            FakeQuantHook hook(q);
            if (q.model.forward(x, &hook).size() != size_t(c.num_classes)) __builtin_trap();
        }
        enable_integer(q);
        FakeQuantHook hook(q);
        if (q.model.forward(x, &hook).size() != size_t(c.num_classes)) __builtin_trap();
    } catch (const std::exception&) {
    }
    return 0;
}
