// safetensors: 8-byte little-endian header length N, N bytes of JSON header
// {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...},
// then the data (offsets relative to its start). We read F32, F16 and BF16 (converted to f32) and the
// integer dtypes (kept as bytes, for quantized exports); every inconsistency is an error naming the
// source, the tensor and what was expected vs found.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bitlens {

struct StTensor {
    std::string dtype;             // "F32", "F16", "BF16", "I8", "U8", "I32", ...
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;    // raw little-endian data as stored
    int64_t numel() const;
    std::vector<float> to_f32(const std::string& what) const;  // F32/F16/BF16 only
};

struct SafeTensors {
    std::map<std::string, std::string> metadata;
    std::map<std::string, StTensor> tensors;   // sorted by name
    std::vector<std::string> order;            // order of appearance in the header
};

// `what` names the source (a path or a file name) in errors.
SafeTensors parse_safetensors(const uint8_t* data, size_t n, const std::string& what);
SafeTensors read_safetensors_file(const std::string& path);

// Writes tensors in `order` (or sorted by name when empty) with 8-byte aligned header.
std::vector<uint8_t> serialize_safetensors(const SafeTensors& st);

size_t dtype_size(const std::string& dtype);  // 0 when unknown
std::string shape_str(const std::vector<int64_t>& shape);  // "[3, 224, 224]", for errors
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);   // round to nearest even
uint16_t f32_to_bf16(float f);  // round to nearest even

}  // namespace bitlens
