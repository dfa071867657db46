#include "safetensors.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "dataset.h"  // read_file_bytes
#include "json_limits.h"

namespace bitlens {
using json = nlohmann::json;

namespace {
[[noreturn]] void fail(const std::string& what, const std::string& msg) {
    throw std::runtime_error(what + ": " + msg);
}
}  // namespace

std::string shape_str(const std::vector<int64_t>& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
}

size_t dtype_size(const std::string& d) {
    if (d == "F64" || d == "I64" || d == "U64") return 8;
    if (d == "F32" || d == "I32" || d == "U32") return 4;
    if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
    if (d == "I8" || d == "U8" || d == "BOOL") return 1;
    return 0;
}

int64_t StTensor::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do { man <<= 1; ++e; } while (!(man & 0x400));
            bits = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

float bf16_to_f32(uint16_t h) {
    uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_bf16(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u) return uint16_t((b >> 16) | 0x40);  // NaN stays NaN
    b += 0x7fff + ((b >> 16) & 1);
    return uint16_t(b >> 16);
}

uint16_t f32_to_f16(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    uint32_t sign = (b >> 16) & 0x8000, ab = b & 0x7fffffffu;
    if (ab > 0x7f800000u) return uint16_t(sign | 0x7e00);
    if (ab >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // rounds to >= 65520: inf
    if (ab < 0x38800000u) {                                  // below f16 normal range: subnormal
        if (ab < 0x33000000u) return uint16_t(sign);
        // value = man·2^(e-150) and an f16 subnormal step is 2^-24, so the count is man >> (126 - e).
        uint32_t e = ab >> 23, man = (ab & 0x7fffff) | 0x800000, s = 126 - e;
        uint32_t r = man >> s, rem = man & ((1u << s) - 1), half = 1u << (s - 1);
        if (rem > half || (rem == half && (r & 1))) ++r;
        return uint16_t(sign | r);
    }
    uint32_t r = ((ab - 0x38000000u) >> 13);
    uint32_t rem = ab & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;
    return uint16_t(sign | r);
}

std::vector<float> StTensor::to_f32(const std::string& what) const {
    const int64_t n = numel();
    if (size_t(n) * dtype_size(dtype) != bytes.size() && dtype_size(dtype) != 0)
        fail(what, "tensor of shape " + shape_str(shape) + " and dtype " + dtype + " holds " + std::to_string(bytes.size()) + " bytes, expected " +
                       std::to_string(size_t(n) * dtype_size(dtype)));
    std::vector<float> out(static_cast<size_t>(n));
    if (n == 0) {  // Found 5: memcpy from a null pointer (an empty vector's data()) is undefined even for 0 bytes
        if (dtype != "F32" && dtype != "F16" && dtype != "BF16")
            fail(what, "dtype " + dtype + " cannot be read as floating point (expected F32, F16 or BF16)");
    } else if (dtype == "F32") {
        std::memcpy(out.data(), bytes.data(), size_t(n) * 4);
    } else if (dtype == "F16" || dtype == "BF16") {
        const bool half = dtype == "F16";
        for (int64_t i = 0; i < n; ++i) {
            uint16_t h = uint16_t(bytes[size_t(2 * i)] | bytes[size_t(2 * i + 1)] << 8);
            out[size_t(i)] = half ? f16_to_f32(h) : bf16_to_f32(h);
        }
    } else {
        fail(what, "dtype " + dtype + " cannot be read as floating point (expected F32, F16 or BF16)");
    }
    return out;
}

SafeTensors parse_safetensors(const uint8_t* data, size_t n, const std::string& what) {
    if (n < 8) fail(what, "truncated: " + std::to_string(n) + " bytes, a safetensors file starts with an 8-byte header length");
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; --i) hlen = hlen << 8 | data[i];
    if (hlen > n - 8)
        fail(what, "header length " + std::to_string(hlen) + " is beyond the end of the file (" + std::to_string(n - 8) +
                       " bytes after the length field)");
    if (hlen < 2) fail(what, "header length " + std::to_string(hlen) + " is too small for a JSON header");
    json header;
    try {
        header = parse_json_bounded(data + 8, data + 8 + hlen, what + ": header");
    } catch (const json::exception& e) {
        fail(what, std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) fail(what, "header is not a JSON object");
    const uint8_t* base = data + 8 + hlen;
    const uint64_t data_len = n - 8 - hlen;

    SafeTensors st;
    struct Span { uint64_t b, e; std::string name; };
    std::vector<Span> spans;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        const json& v = it.value();
        if (name == "__metadata__") {
            if (!v.is_object()) fail(what, "__metadata__ is not an object");
            for (auto m = v.begin(); m != v.end(); ++m) {
                if (!m.value().is_string()) fail(what, "__metadata__ field '" + m.key() + "' is not a string");
                st.metadata[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        const std::string tw = what + ": tensor '" + name + "'";
        if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
            throw std::runtime_error(tw + ": expected an object with dtype, shape and data_offsets");
        if (!v["dtype"].is_string()) throw std::runtime_error(tw + ": dtype is not a string");
        StTensor t;
        t.dtype = v["dtype"].get<std::string>();
        const size_t es = dtype_size(t.dtype);
        if (es == 0) throw std::runtime_error(tw + ": unknown dtype '" + t.dtype + "'");
        if (!v["shape"].is_array()) throw std::runtime_error(tw + ": shape is not an array");
        uint64_t numel = 1;
        for (const json& d : v["shape"]) {
            if (!d.is_number_unsigned()) throw std::runtime_error(tw + ": shape has a non-integer or negative dimension");
            uint64_t dim = d.get<uint64_t>();
            if (dim > (uint64_t(1) << 40) || (dim && numel > (uint64_t(1) << 40) / dim))
                throw std::runtime_error(tw + ": shape " + v["shape"].dump() + " is too large");
            numel *= dim;
            t.shape.push_back(int64_t(dim));
        }
        const json& off = v["data_offsets"];
        if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            throw std::runtime_error(tw + ": data_offsets must be two non-negative integers");
        const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
        if (e < b) throw std::runtime_error(tw + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "] end before they begin");
        if (e > data_len)
            throw std::runtime_error(tw + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                                     "] are out of range: the data section has " + std::to_string(data_len) + " bytes");
        if (e - b != numel * es)
            throw std::runtime_error(tw + ": shape " + shape_str(t.shape) + " of " + t.dtype + " needs " +
                                     std::to_string(numel * es) + " bytes, data_offsets give " + std::to_string(e - b));
        t.bytes.assign(base + b, base + e);
        spans.push_back({b, e, name});
        st.order.push_back(name);
        st.tensors.emplace(name, std::move(t));
    }
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.b < b.b || (a.b == b.b && a.e < b.e); });
    for (size_t i = 1; i < spans.size(); ++i)
        if (spans[i].b < spans[i - 1].e)
            fail(what, "tensors '" + spans[i - 1].name + "' and '" + spans[i].name + "' overlap in the data section");
    // Keep the order of the header as written (nlohmann sorts keys; recover by data offset).
    st.order.clear();
    for (const Span& s : spans) st.order.push_back(s.name);
    return st;
}

SafeTensors read_safetensors_file(const std::string& path) {
    std::vector<uint8_t> bytes = read_file_bytes(path);
    return parse_safetensors(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> serialize_safetensors(const SafeTensors& st) {
    std::vector<std::string> names = st.order;
    if (names.empty())
        for (const auto& kv : st.tensors) names.push_back(kv.first);
    json header = json::object();
    if (!st.metadata.empty()) header["__metadata__"] = st.metadata;
    uint64_t off = 0;
    for (const std::string& name : names) {
        const StTensor& t = st.tensors.at(name);
        header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
        off += t.bytes.size();
    }
    std::string h = header.dump();
    while ((h.size() + 8) % 8) h.push_back(' ');
    std::vector<uint8_t> out(8 + h.size());
    uint64_t hl = h.size();
    for (int i = 0; i < 8; ++i) out[size_t(i)] = uint8_t(hl >> (8 * i));
    std::memcpy(out.data() + 8, h.data(), h.size());
    out.reserve(out.size() + off);
    for (const std::string& name : names) {
        const StTensor& t = st.tensors.at(name);
        out.insert(out.end(), t.bytes.begin(), t.bytes.end());
    }
    return out;
}

}  // namespace bitlens
