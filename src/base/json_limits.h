// JSON from files and callers we do not control: parsed with its nesting limited, so that a document nested
// tens of thousands deep is refused before it is built (nlohmann's parser is iterative, but dump() — used in
// error messages — and other recursive walks would overflow the stack on it).
#pragma once
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

namespace bitlens {

constexpr int kMaxJsonDepth = 64;  // far beyond any config, header or recipe BitLens reads (≤ 5 levels)

// nlohmann::json::parse over [first, last) with nesting ≤ kMaxJsonDepth; deeper → std::runtime_error naming
// `what`. Syntax errors stay nlohmann::json::parse_error, as from json::parse.
template <class It>
nlohmann::json parse_json_bounded(It first, It last, const std::string& what) {
    return nlohmann::json::parse(first, last, [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
        if (depth > kMaxJsonDepth)
            throw std::runtime_error(what + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
        return true;
    });
}
inline nlohmann::json parse_json_bounded(const std::string& text, const std::string& what) {
    return parse_json_bounded(text.begin(), text.end(), what);
}

// An integer field of type T read from untrusted JSON. nlohmann's get<T>() static_casts whatever number it
// holds, and a float outside T's range (1e300 → size_t) is undefined behaviour; here a non-integer or an
// out-of-range value is a std::runtime_error naming `what`, the value's kind and T's range.
template <class T>
T json_int(const nlohmann::json& v, const std::string& what) {
    static_assert(std::is_integral_v<T>);
    using L = std::numeric_limits<T>;
    auto range = [&] {
        return what + ": expected an integer in [" + std::to_string(L::min()) + ", " + std::to_string(L::max()) + "], found ";
    };
    if (v.is_number_unsigned()) {
        const uint64_t u = v.get<uint64_t>();
        if (u > uint64_t(L::max())) throw std::runtime_error(range() + std::to_string(u));
        return T(u);
    }
    if (v.is_number_integer()) {
        const int64_t i = v.get<int64_t>();
        if constexpr (std::is_unsigned_v<T>) {
            if (i < 0) throw std::runtime_error(range() + std::to_string(i));
            if (uint64_t(i) > uint64_t(L::max())) throw std::runtime_error(range() + std::to_string(i));
        } else if (i < int64_t(L::min()) || i > int64_t(L::max())) {
            throw std::runtime_error(range() + std::to_string(i));
        }
        return T(i);
    }
    throw std::runtime_error(range() + (v.is_number_float() ? "a non-integer number" : std::string("a ") + v.type_name()));
}

// An array of such integers (`what`[i] named in errors).
template <class T>
std::vector<T> json_ints(const nlohmann::json& v, const std::string& what) {
    if (!v.is_array()) throw std::runtime_error(what + ": expected an array, found a " + std::string(v.type_name()));
    std::vector<T> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); i++) out.push_back(json_int<T>(v[i], what + "[" + std::to_string(i) + "]"));
    return out;
}

// An array of arrays of such integers.
template <class T>
std::vector<std::vector<T>> json_int_rows(const nlohmann::json& v, const std::string& what) {
    if (!v.is_array()) throw std::runtime_error(what + ": expected an array, found a " + std::string(v.type_name()));
    std::vector<std::vector<T>> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); i++) out.push_back(json_ints<T>(v[i], what + "[" + std::to_string(i) + "]"));
    return out;
}

}  // namespace bitlens
