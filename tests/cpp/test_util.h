// Shared helpers for the doctest suite: paths to the shipped models and data, and checkpoint surgery
// (rename, drop, convert dtype) used to make the loader's inputs.
#pragma once
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config.h"
#include "dataset.h"
#include "eval.h"
#include "model.h"
#include "safetensors.h"

namespace bitlens::test {

// Equal sizes and equal bits in every element (−0 ≠ +0, NaN payloads compared too).
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

inline std::string src_path(const std::string& rel) { return std::string(BITLENS_SOURCE_DIR) + "/" + rel; }
inline const std::string kHfModel = "models/vit-fmnist-hf";
inline const std::string kTimmModel = "models/deit-fmnist-timm";
inline const std::string kFmnistDir = "/usr/share/datasets/fashion-mnist";

inline ModelSource source(const std::string& rel_dir) { return read_model_source(src_path(rel_dir)); }
inline SafeTensors tensors_of(const ModelSource& s) {
    return parse_safetensors(s.safetensors.data(), s.safetensors.size(), s.safetensors_name);
}
inline ModelSource with_tensors(ModelSource s, const SafeTensors& st) {
    s.safetensors = serialize_safetensors(st);
    return s;
}
// Converts every floating tensor to dtype ("F16" or "BF16").
SafeTensors convert_dtype(const SafeTensors& st, const std::string& dtype);
// Renames tensors with fn(name) → new name ("" drops the tensor).
SafeTensors rename(const SafeTensors& st, const std::function<std::string(const std::string&)>& fn);
// Both shipped models with their sources and the shipped 1,000 test images prepared for each, loaded once.
struct ShippedModels {
    ModelSource hf_src = source(kHfModel), tm_src = source(kTimmModel);
    LoadedModel hf = load_model(hf_src), tm = load_model(tm_src);
    PreparedData hf_data = prepare(load_dataset(src_path("models/data")), hf.vit.cfg);
    PreparedData tm_data = prepare(load_dataset(src_path("models/data")), tm.vit.cfg);
};
inline ShippedModels& shipped() {
    static ShippedModels m;
    return m;
}
// The first n images of ds (with its class names).
inline Dataset first(const Dataset& ds, size_t n) {
    Dataset d;
    d.class_names = ds.class_names;
    d.images.assign(ds.images.begin(), ds.images.begin() + long(n));
    d.labels.assign(ds.labels.begin(), ds.labels.begin() + long(n));
    return d;
}

// The message fn throws ("" when it does not throw).
inline std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

// First n images of the Fashion-MNIST test set, preprocessed for the model.
std::vector<std::vector<float>> fmnist_test_inputs(const ViTConfig& cfg, size_t n);

}  // namespace bitlens::test
