// JSON from files and callers we do not control: parsed with its nesting limited, so that a document nested
// tens of thousands deep is refused before it is built (nlohmann's parser is iterative, but dump() — used in
// error messages — and other recursive walks would overflow the stack on it).
#pragma once
#include <stdexcept>
#include <string>

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

}  // namespace bitlens
