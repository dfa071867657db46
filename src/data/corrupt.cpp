#include "corrupt.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <vector>

#include "rng.h"

namespace bitlens {

namespace {

// Per severity 1–5 (index 0 unused). See the table in corrupt.h.
constexpr int64_t kNoiseSigmaMilli[6] = {0, 40, 60, 80, 90, 100};    // σ·1000
constexpr int kBrightnessAdd[6] = {0, 13, 26, 38, 51, 77};           // round(255·c)
constexpr int64_t kContrastPercent[6] = {0, 75, 50, 40, 30, 15};     // c·100

// Gaussian blur kernels: weights w[0] (centre), w[1], … (symmetric), round(4096·g(k)/Σg) for
// g(k) = exp(−k²/2σ²), k = −⌈3σ⌉…⌈3σ⌉, trailing zero weights dropped, the centre adjusted so that
// the full kernel sums to exactly 4096.
struct Kernel {
    int radius;
    int w[4];
};
constexpr Kernel kBlur[6] = {
    {0, {4096, 0, 0, 0}},       // unused
    {1, {3766, 165, 0, 0}},     // σ = 0.4
    {2, {2718, 678, 11, 0}},    // σ = 0.6
    {2, {2336, 841, 39, 0}},    // σ = 0.7
    {3, {2042, 935, 90, 2}},    // σ = 0.8
    {3, {1636, 991, 221, 18}},  // σ = 1.0
};

uint8_t clamp8(int64_t v) { return uint8_t(std::min<int64_t>(255, std::max<int64_t>(0, v))); }

Image8 noise(const Image8& img, int sev, uint64_t seed) {
    Image8 out = img;
    SplitMix64 rng(derive_seed(seed, 0x6E6F697365ull));  // "noise"
    const int64_t den = int64_t(1000) * 65535;
    for (uint8_t& p : out.pixels) {
        // Irwin–Hall: 12 uniform 16-bit integers (3 draws × 4 halves of 16 bits), centred.
        int64_t s = 0;
        for (int k = 0; k < 3; ++k) {
            const uint64_t r = rng.next();
            s += int64_t(r & 0xFFFF) + int64_t((r >> 16) & 0xFFFF) + int64_t((r >> 32) & 0xFFFF) + int64_t(r >> 48);
        }
        const int64_t d = s - 6 * 65535;  // z·65535, z ≈ N(0, 1)
        const int64_t num = kNoiseSigmaMilli[sev] * 255 * d;
        const int64_t mag = ((num < 0 ? -num : num) + den / 2) / den;  // round half away from zero
        p = clamp8(int64_t(p) + (num < 0 ? -mag : mag));
    }
    return out;
}

Image8 blur(const Image8& img, int sev) {
    const Kernel& k = kBlur[sev];
    const int W = img.width, H = img.height, C = img.channels;
    Image8 out = img;
    if (W <= 0 || H <= 0 || C <= 0) return out;
    auto weight = [&](int d) { return int64_t(k.w[d < 0 ? -d : d]); };
    std::vector<int64_t> tmp(size_t(W) * size_t(H) * size_t(C));  // horizontal pass, ×4096, not rounded
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
            for (int c = 0; c < C; ++c) {
                int64_t acc = 0;
                for (int d = -k.radius; d <= k.radius; ++d) {
                    const int xx = std::min(W - 1, std::max(0, x + d));
                    acc += weight(d) * img.pixels[(size_t(y) * size_t(W) + size_t(xx)) * size_t(C) + size_t(c)];
                }
                tmp[(size_t(y) * size_t(W) + size_t(x)) * size_t(C) + size_t(c)] = acc;
            }
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
            for (int c = 0; c < C; ++c) {
                int64_t acc = 0;
                for (int d = -k.radius; d <= k.radius; ++d) {
                    const int yy = std::min(H - 1, std::max(0, y + d));
                    acc += weight(d) * tmp[(size_t(yy) * size_t(W) + size_t(x)) * size_t(C) + size_t(c)];
                }
                out.pixels[(size_t(y) * size_t(W) + size_t(x)) * size_t(C) + size_t(c)] = clamp8((acc + (1 << 23)) >> 24);
            }
    return out;
}

Image8 brightness(const Image8& img, int sev) {
    Image8 out = img;
    for (uint8_t& p : out.pixels) p = clamp8(int64_t(p) + kBrightnessAdd[sev]);
    return out;
}

Image8 contrast(const Image8& img, int sev) {
    Image8 out = img;
    const int64_t n = int64_t(img.pixels.size());
    if (!n) return out;
    int64_t sum = 0;
    for (uint8_t p : img.pixels) sum += p;
    // mean + c·(x − mean) = (sum·(100 − c) + c·x·n) / (100·n), rounded half up (numerator ≥ 0).
    const int64_t c = kContrastPercent[sev], den = 100 * n;
    for (uint8_t& p : out.pixels) {
        const int64_t num = sum * (100 - c) + c * int64_t(p) * n;
        p = clamp8((2 * num + den) / (2 * den));
    }
    return out;
}

}  // namespace

const char* corruption_type_name(CorruptionType t) {
    switch (t) {
        case CorruptionType::None: return "none";
        case CorruptionType::Noise: return "noise";
        case CorruptionType::Blur: return "blur";
        case CorruptionType::Brightness: return "brightness";
        case CorruptionType::Contrast: return "contrast";
    }
    return "?";
}

std::string Corruption::name() const {
    if (!active()) return "none";
    return std::string(corruption_type_name(type)) + ":" + std::to_string(severity);
}

Corruption parse_corruption(const std::string& s) {
    std::string l = s;
    for (char& ch : l) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (l.empty() || l == "none") return {};
    const size_t colon = l.find(':');
    const std::string type = l.substr(0, colon), sev = colon == std::string::npos ? "" : l.substr(colon + 1);
    Corruption c;
    if (type == "noise" || type == "gaussian_noise") c.type = CorruptionType::Noise;
    else if (type == "blur" || type == "gaussian_blur") c.type = CorruptionType::Blur;
    else if (type == "brightness") c.type = CorruptionType::Brightness;
    else if (type == "contrast") c.type = CorruptionType::Contrast;
    else
        throw std::runtime_error("unknown corruption '" + type + "' in '" + s +
                                 "' (expected noise, blur, brightness or contrast, as TYPE:SEVERITY, e.g. noise:3)");
    if (sev.size() != 1 || sev[0] < '1' || sev[0] > '5')
        throw std::runtime_error("corruption severity must be 1 to 5 (as TYPE:SEVERITY, e.g. " + type + ":3), found '" + s + "'");
    c.severity = sev[0] - '0';
    return c;
}

Image8 corrupt(const Image8& img, const Corruption& c, uint64_t seed) {
    if (!c.active()) return img;
    if (c.severity < 1 || c.severity > 5)
        throw std::runtime_error("corruption severity must be 1 to 5, found " + std::to_string(c.severity));
    if (img.pixels.size() != size_t(img.width) * size_t(img.height) * size_t(img.channels))
        throw std::runtime_error("corrupt: image has " + std::to_string(img.pixels.size()) + " bytes, expected " +
                                 std::to_string(img.width) + "x" + std::to_string(img.height) + "x" + std::to_string(img.channels));
    switch (c.type) {
        case CorruptionType::Noise: return noise(img, c.severity, seed);
        case CorruptionType::Blur: return blur(img, c.severity);
        case CorruptionType::Brightness: return brightness(img, c.severity);
        case CorruptionType::Contrast: return contrast(img, c.severity);
        case CorruptionType::None: break;
    }
    return img;
}

}  // namespace bitlens
