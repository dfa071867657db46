// Numbers in error messages as a user typed them: 50 and 87.5, not std::to_string's "50.000000".
#pragma once
#include <cstdio>
#include <string>

namespace bitlens {

inline std::string fmt_g(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

}  // namespace bitlens
