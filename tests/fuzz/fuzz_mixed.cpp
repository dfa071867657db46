// Mixed-precision sensitivities read back and allocated, as the JS API's planMixed does: the input is the
// sensitivities JSON (as SensitivityHandle::finish writes it), then (after kSep) the budgets
// {budget, abudget} or {maxBytes, abudget}; the plan is made by the knapsack and written as JSON. Seeds:
// tests/fuzz/corpus/mixed/ (sensitivities measured on a tiny model, with average-bit and byte budgets).
#include <exception>

#include "fuzz_util.h"
#include "json_limits.h"
#include "mixed.h"

using namespace bitlens;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto parts = fuzz::split_parts(data, size, 2);
    try {
        const Sensitivities s = sensitivities_from_json(parse_json_bounded(parts[0], "sensitivities"));
        sensitivities_json(s).dump();
        const nlohmann::json b = parse_json_bounded(parts[1], "budgets");
        // As bindings.cpp's plan_mixed_js reads them (maxBytes through json_int: a float such as 1e300 is an error).
        const MixedPlan p = b.contains("maxBytes")
                                ? plan_mixed_bytes(s, json_int<long long>(b.at("maxBytes"), "maxBytes"), b.at("abudget").get<double>())
                                : plan_mixed(s, b.at("budget").get<double>(), b.at("abudget").get<double>());
        plan_json(p, s).dump();
    } catch (const std::exception&) {
    }
    return 0;
}
