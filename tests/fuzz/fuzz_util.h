// Shared by the libFuzzer harnesses (tests/fuzz/README.md): inputs of several files, and the shipped models.
//
// A harness that takes several files takes them as one input, the files separated by the line kSep
// ("\n--bitlens-fuzz-part--\n", also in bitlens.dict so that the fuzzer keeps or makes the split).
// Every harness catches what BitLens throws for bad input (std::exception: that is the clean rejection);
// a crash, a sanitizer report, a leak, a timeout or running out of memory is a finding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "config.h"
#include "safetensors.h"

namespace bitlens::fuzz {

inline const std::string kSep = "\n--bitlens-fuzz-part--\n";

// The input split at kSep into exactly n parts (missing ones empty; a surplus stays in the last part).
inline std::vector<std::string> split_parts(const uint8_t* data, size_t size, size_t n) {
    std::string s(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> parts;
    size_t at = 0;
    while (parts.size() + 1 < n) {
        const size_t k = s.find(kSep, at);
        if (k == std::string::npos) break;
        parts.push_back(s.substr(at, k - at));
        at = k + kSep.size();
    }
    parts.push_back(s.substr(at));
    parts.resize(n);
    return parts;
}

inline std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

inline std::string source_path(const std::string& rel) { return std::string(BITLENS_SOURCE_DIR) + "/" + rel; }

// The shipped models' tensors (read once): harnesses that fuzz a config check it against real tensors.
struct Shipped {
    ModelSource hf = read_model_source(source_path("models/vit-fmnist-hf"));
    ModelSource timm = read_model_source(source_path("models/deit-fmnist-timm"));
    SafeTensors hf_st = parse_safetensors(hf.safetensors.data(), hf.safetensors.size(), "hf");
    SafeTensors timm_st = parse_safetensors(timm.safetensors.data(), timm.safetensors.size(), "timm");
};
inline const Shipped& shipped() {
    static const Shipped s;
    return s;
}

}  // namespace bitlens::fuzz
