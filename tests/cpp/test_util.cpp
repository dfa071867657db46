#include "test_util.h"

#include <cstring>

namespace bitlens::test {

SafeTensors convert_dtype(const SafeTensors& st, const std::string& dtype) {
    SafeTensors out = st;
    for (auto& kv : out.tensors) {
        StTensor& t = kv.second;
        if (t.dtype != "F32") continue;
        std::vector<float> f = t.to_f32(kv.first);
        t.dtype = dtype;
        t.bytes.resize(f.size() * 2);
        for (size_t i = 0; i < f.size(); ++i) {
            uint16_t h = dtype == "F16" ? f32_to_f16(f[i]) : f32_to_bf16(f[i]);
            t.bytes[2 * i] = uint8_t(h), t.bytes[2 * i + 1] = uint8_t(h >> 8);
        }
    }
    return out;
}

SafeTensors rename(const SafeTensors& st, const std::function<std::string(const std::string&)>& fn) {
    SafeTensors out;
    out.metadata = st.metadata;
    for (const std::string& name : st.order) {
        std::string n = fn(name);
        if (n.empty()) continue;
        out.tensors[n] = st.tensors.at(name);
        out.order.push_back(n);
    }
    return out;
}

std::vector<std::vector<float>> fmnist_test_inputs(const ViTConfig& cfg, size_t n) {
    Dataset ds = load_idx_files(kFmnistDir + "/t10k-images-idx3-ubyte.gz", kFmnistDir + "/t10k-labels-idx1-ubyte.gz");
    std::vector<std::vector<float>> out;
    for (size_t i = 0; i < n; ++i) out.push_back(preprocess(ds.images[i], cfg.pp));
    return out;
}

}  // namespace bitlens::test
