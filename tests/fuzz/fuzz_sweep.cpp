// Sweep JSON read back: `bitlens merge` parts and the JS API's mergeSweeps (an array of parts), and the JS API's
// sweep spec. The input is parsed with BitLens's depth limit; an array is merged as mergeSweeps does (each
// element a part, then merge_sweep_parts and the merged JSON, CSV and table), an object is read as one part
// (and merged alone) and as a sweep spec for the shipped Hugging Face model. Seeds: tests/fuzz/corpus/sweep/
// (parts of a real 2-part sweep of a tiny model, both parts as an array, and specs).
#include <exception>

#include "fuzz_util.h"
#include "json_limits.h"
#include "sweep.h"

using namespace bitlens;

namespace {
void merge_and_write(const std::vector<SweepPart>& parts, const std::vector<std::string>& names) {
    const SweepResult r = merge_sweep_parts(parts, names);
    sweep_json(r).dump();
    sweep_csv(r);
    sweep_table(r);
}
const ViTConfig& hf_config() {
    static const ViTConfig c = resolve_config(fuzz::shipped().hf_st, fuzz::shipped().hf);
    return c;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    nlohmann::json j;
    try {
        j = parse_json_bounded(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size, "fuzz input");
    } catch (const std::exception&) {
        return 0;
    }
    try {
        if (j.is_array()) {
            std::vector<SweepPart> parts;
            std::vector<std::string> names;
            for (size_t k = 0; k < j.size(); ++k) {
                names.push_back("parts[" + std::to_string(k) + "]");
                parts.push_back(sweep_part_from_json(j[k], names.back()));
            }
            merge_and_write(parts, names);
        } else {
            const SweepPart p = sweep_part_from_json(j, "part.json");
            sweep_part_json(p).dump();
            merge_and_write({p}, {"part.json"});
        }
    } catch (const std::exception&) {
    }
    try {
        const SweepSpec s = sweep_spec_from_json(j, hf_config());
        s.validate(hf_config().num_classes);
        sweep_spec_json(s).dump();
    } catch (const std::exception&) {
    }
    return 0;
}
