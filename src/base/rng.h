// Portable random numbers: the same seed gives the same stream natively and in WASM (integer only).
#pragma once
#include <cstdint>

namespace bitlens {

// SplitMix64 (Steele, Lea & Flood 2014): a 64-bit counter through a fixed mix.
struct SplitMix64 {
    uint64_t state;
    explicit SplitMix64(uint64_t seed) : state(seed) {}
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
};

// A well-mixed seed for item `index` of stream `stream` (e.g. the noise of image i under sweep seed s).
inline uint64_t derive_seed(uint64_t stream, uint64_t index) {
    SplitMix64 a(stream);
    SplitMix64 b(a.next() ^ index);
    return b.next();
}

}  // namespace bitlens
