// QuantConfig JSON (the JS API's config objects, a sweep's configurations, an export's recipe config) and
// quantizer JSON (an export's quantizers): the input is parsed as JSON with BitLens's depth limit, then read as
// a QuantConfig (and validated) and as a Quantizer (which then quantizes a few values, its tables indexed by
// what the JSON says); text that is not JSON is read as "w4a4" shorthand. Seeds: tests/fuzz/corpus/quantconfig/.
#include <cmath>
#include <exception>

#include "export.h"
#include "fuzz_util.h"
#include "json_limits.h"
#include "ptq.h"

using namespace bitlens;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    nlohmann::json j;
    try {
        j = parse_json_bounded(text, "fuzz input");
    } catch (const std::exception&) {
        try {
            parse_wa(text, QuantConfig{}).validate();
        } catch (const std::exception&) {
        }
        return 0;
    }
    try {
        const QuantConfig c = config_from_json(j);
        c.validate();
        config_json(c).dump();
        c.name();
    } catch (const std::exception&) {
    }
    try {
        const Quantizer q = quantizer_from_json(j, "quantizer");
        const FastFake f(q);
        for (float x : {-1e30f, -3.5f, -1.0f, -0.0f, 0.0f, 1e-7f, 0.3f, 1.0f, 7.25f, 1e30f, INFINITY, -INFINITY, NAN}) {
            const int32_t code = q.code(x);
            q.dequant(code);
            if (f.code(x) != code) __builtin_trap();
        }
        q.levels();
        quantizer_json(q).dump();
    } catch (const std::exception&) {
    }
    return 0;
}
