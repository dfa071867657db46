// Embind bindings: thin. Every entry point catches C++ exceptions and rethrows them as a JS Error
// with the same message, so the module never aborts on bad input. Byte arrays move into the heap
// with one TypedArray.set (no per-element copies). Structured results cross as JSON strings; the JS
// wrapper (web/bitlens.js) parses them and gives the idiomatic API.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <nlohmann/json.hpp>

#include "dataset.h"
#include "eval.h"
#include "model.h"

using namespace emscripten;
using namespace bitlens;

namespace {

[[noreturn]] void throw_js(const std::string& msg) { val::global("Error").new_(msg).throw_(); }

template <class F>
auto guard(F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const std::bad_alloc&) {
        throw_js("out of memory");
    } catch (const std::exception& e) {
        throw_js(e.what());
    }
}

std::vector<uint8_t> bytes_of(const val& arr) {
    const size_t n = arr["length"].as<size_t>();
    std::vector<uint8_t> v(n);
    if (n) val(typed_memory_view(n, v.data())).call<void>("set", arr);
    return v;
}

class DatasetHandle {
public:
    Dataset ds;
    size_t size() const { return ds.size(); }
    std::string classes() const { return nlohmann::json(ds.class_names).dump(); }
};

DatasetHandle* load_idx_js(val images, val labels, std::string images_name, std::string labels_name) {
    return guard([&] {
        Dataset ds = load_idx(maybe_gunzip(bytes_of(images), images_name), maybe_gunzip(bytes_of(labels), labels_name),
                              images_name, labels_name);
        auto* h = new DatasetHandle;
        h->ds = std::move(ds);
        return h;
    });
}

// files: array of Uint8Array; names, classes: arrays of strings (same length).
DatasetHandle* load_encoded_js(val files, val names, val classes) {
    return guard([&] {
        const size_t n = files["length"].as<size_t>();
        if (names["length"].as<size_t>() != n || classes["length"].as<size_t>() != n)
            throw std::runtime_error("loadDataset: files, names and classes must have the same length");
        std::vector<std::vector<uint8_t>> bytes;
        std::vector<std::string> nm, cl;
        for (size_t i = 0; i < n; ++i) {
            bytes.push_back(bytes_of(files[i]));
            nm.push_back(names[i].as<std::string>());
            cl.push_back(classes[i].as<std::string>());
        }
        Dataset ds = load_encoded(bytes, nm, cl);
        auto* h = new DatasetHandle;
        h->ds = std::move(ds);
        return h;
    });
}

class ModelHandle {
public:
    LoadedModel lm;

    std::string info() const {
        const ViTConfig& c = lm.vit.cfg;
        return nlohmann::json{{"naming", naming_name(c.naming)},     {"config", c.config_source},
                              {"architecture", c.architecture},     {"dtype", lm.source_dtype},
                              {"parameters", lm.vit.parameter_count()}, {"imageSize", {c.image_h, c.image_w}},
                              {"channels", c.channels},             {"patchSize", c.patch},
                              {"hiddenSize", c.hidden},             {"depth", c.depth},
                              {"heads", c.heads},                   {"mlpDim", c.mlp_dim},
                              {"numClasses", c.num_classes},        {"labels", c.labels},
                              {"distillationToken", c.dist_token}}
            .dump();
    }

    std::string evaluate(const DatasetHandle& d, size_t limit) const {
        return guard([&] {
            PreparedData data = prepare(d.ds, lm.vit.cfg, limit);
            return eval_json(bitlens::evaluate(lm.vit, data, 1)).dump();
        });
    }

    // Logits for one encoded image.
    std::string classify(val image_bytes, std::string name) const {
        return guard([&] {
            std::vector<uint8_t> b = bytes_of(image_bytes);
            Image8 img = decode_image(b.data(), b.size(), name);
            std::vector<float> logits = lm.vit.forward(preprocess(img, lm.vit.cfg.pp));
            return nlohmann::json(logits).dump();
        });
    }
};

ModelHandle* load_model_js(val safetensors, std::string config, std::string preprocessor, std::string st_name, int heads) {
    return guard([&] {
        ModelSource src;
        src.safetensors = bytes_of(safetensors);
        src.safetensors_name = st_name;
        src.config_json = config;
        src.preprocessor_json = preprocessor;
        src.heads_override = heads;
        LoadedModel lm = load_model(src);
        auto* h = new ModelHandle;
        h->lm = std::move(lm);
        return h;
    });
}

}  // namespace

EMSCRIPTEN_BINDINGS(bitlens) {
    class_<DatasetHandle>("Dataset").function("size", &DatasetHandle::size).function("classes", &DatasetHandle::classes);
    class_<ModelHandle>("Model")
        .function("info", &ModelHandle::info)
        .function("evaluate", &ModelHandle::evaluate)
        .function("classify", &ModelHandle::classify);
    function("_loadModel", &load_model_js, allow_raw_pointers());
    function("_loadIdx", &load_idx_js, allow_raw_pointers());
    function("_loadEncoded", &load_encoded_js, allow_raw_pointers());
}
