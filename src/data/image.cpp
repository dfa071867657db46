// Image decoding (stb_image), channel conversion, PIL-exact resizing, and normalisation.
//
// resize_image reproduces Pillow's Image.resize(size, resample) for 8-bit images (checked
// bit-for-bit against Pillow 9.4 on random L and RGB images of many sizes):
//
//  * same size: the image is returned unchanged (Pillow returns a copy).
//  * "bilinear" / "bicubic": Pillow's ImagingResample (libImaging/Resample.c), 8-bit path:
//      - precompute_coeffs, per axis: scale = in/out (double); filterscale = max(scale, 1)
//        (the antialiasing: when shrinking, the filter is stretched by the shrink factor);
//        support = filter_support * filterscale (bilinear: triangle, support 1; bicubic: Keys
//        cubic with a = -0.5, support 2). For output index i: center = (i + 0.5) * scale;
//        xmin = max(0, (int)(center - support + 0.5)), xmax = min(in, (int)(center + support + 0.5));
//        w_j = filter((j + xmin - center + 0.5) / filterscale) for j in [0, xmax - xmin);
//        each w_j is divided by their sum (if the sum is non-zero).
//      - normalize_coeffs_8bpc: k_j = (int)(w_j * 2^22 ± 0.5) (round half away from zero),
//        PRECISION_BITS = 32 - 8 - 2 = 22.
//      - each output sample: acc = 2^21 + sum_j pixel_j * k_j (integer), value = acc >> 22 (floor),
//        clamped to [0, 255] — i.e. rounded and clamped to uint8 after EACH pass.
//      - horizontal pass first (only if the width changes; only over the source rows the
//        vertical pass will read), then the vertical pass (only if the height changes).
//  * "nearest": Pillow's ImagingScaleAffine (Geometry.c), used by Image.resize for NEAREST:
//        step = in/out (double); position starts at step * 0.5 and is ACCUMULATED (pos += step)
//        per output pixel; source index = (int)pos (pos < 0 → -1); out-of-range → 0.
//  All arithmetic is integer or basic IEEE double (+ - * /, no libm, no FMA when compiled with
//  -ffp-contract=off), so native and WASM builds give identical bytes.
//
// Pillow processes "L" and "RGB" per channel exactly as above. For 2- and 4-channel images
// (grey+alpha, RGBA) this code also filters every channel independently; Pillow would
// premultiply by alpha first ("La"/"RGBa") for non-nearest filters, so those differ where alpha < 255.
// preprocess() converts to 1 or 3 channels BEFORE resizing, so that path never hits this.
#include "image.h"

#include <cstring>
#include <limits>
#include <stdexcept>

#include <stb/stb_image.h>

#include "dataset.h"  // read_file_bytes
#include "size_limits.h"

namespace bitlens {

// ------------------------------------------------------------------------------------------------
// Decoding
// ------------------------------------------------------------------------------------------------

namespace {

// Walks a JPEG's marker segments before stb_image sees them (issue 17, Found 1: Debian's stb_image 2.27 writes
// past `values[256]` in stbi__build_huffman when a DHT table declares more than 256 symbols, and only then
// reports "bad code lengths"). Every segment's length must fit in the file and agree with its contents:
// DHT tables (class ≤ 1, id ≤ 3, the 16 code-length counts summing to ≤ 256, the symbols within the
// segment), DQT tables (65 or 129 bytes each), SOF (8 + 3 per component), SOS (6 + 2 per component), DRI (4).
// Entropy-coded data after SOS is skipped to the next marker. Throws naming the file, the byte offset and
// the problem; a file that is not a JPEG is left alone. A JPEG is what stb_image takes for one: FF, any number of
// FF fill bytes, then D8 (SOI) — found by fuzzing: with fill bytes before SOI the file skipped this check and
// reached the overflow.
void check_jpeg_segments(const uint8_t* p, size_t n, const std::string& what) {
    if (n < 2 || p[0] != 0xFF) return;
    size_t soi = 1;
    while (soi < n && p[soi] == 0xFF) ++soi;
    if (soi >= n || p[soi] != 0xD8) return;
    const std::string pre = what + ": cannot decode image: JPEG ";
    auto at = [](size_t pos) { return " at byte " + std::to_string(pos); };
    size_t pos = soi + 1;
    while (pos < n) {
        if (p[pos] != 0xFF) throw std::runtime_error(pre + "marker expected" + at(pos) + ", found byte " + std::to_string(p[pos]));
        while (pos < n && p[pos] == 0xFF) ++pos;  // fill bytes
        if (pos >= n) return;
        const uint8_t m = p[pos++];
        const size_t seg = pos - 2;
        if (m == 0xD9) return;                                         // EOI
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // SOI, TEM, RSTn: no length
        if (pos + 2 > n) throw std::runtime_error(pre + "segment " + std::to_string(m) + at(seg) + " is cut off before its length");
        const size_t len = size_t(p[pos]) << 8 | p[pos + 1];
        if (len < 2 || pos + len > n)
            throw std::runtime_error(pre + "segment " + std::to_string(m) + at(seg) + " has length " + std::to_string(len) +
                                     (len < 2 ? " (at least 2)" : ", beyond the end of the file (" + std::to_string(n - pos) + " bytes left)"));
        const uint8_t* q = p + pos + 2;
        const size_t L = len - 2;
        if (m == 0xC4) {  // DHT
            for (size_t k = 0; k < L;) {
                if (L - k < 17) throw std::runtime_error(pre + "DHT segment" + at(seg) + ": a table is cut off (" + std::to_string(L - k) + " bytes left, at least 17)");
                if ((q[k] >> 4) > 1 || (q[k] & 15) > 3)
                    throw std::runtime_error(pre + "DHT segment" + at(seg) + ": table class " + std::to_string(q[k] >> 4) + " id " +
                                             std::to_string(q[k] & 15) + " (class 0-1, id 0-3)");
                size_t symbols = 0;
                for (int i = 1; i <= 16; ++i) symbols += q[k + size_t(i)];
                if (symbols > 256)
                    throw std::runtime_error(pre + "DHT segment" + at(seg) + ": its 16 code-length counts sum to " + std::to_string(symbols) +
                                             " symbols (at most 256)");
                k += 17;
                if (L - k < symbols)
                    throw std::runtime_error(pre + "DHT segment" + at(seg) + ": " + std::to_string(symbols) + " symbols declared, " +
                                             std::to_string(L - k) + " bytes left in the segment");
                k += symbols;
            }
        } else if (m == 0xDB) {  // DQT
            for (size_t k = 0; k < L;) {
                const size_t table = (q[k] >> 4) == 0 ? 65 : (q[k] >> 4) == 1 ? 129 : 0;
                if (table == 0 || (q[k] & 15) > 3)
                    throw std::runtime_error(pre + "DQT segment" + at(seg) + ": precision " + std::to_string(q[k] >> 4) + " id " +
                                             std::to_string(q[k] & 15) + " (precision 0-1, id 0-3)");
                if (L - k < table)
                    throw std::runtime_error(pre + "DQT segment" + at(seg) + ": a table of " + std::to_string(table) + " bytes, " +
                                             std::to_string(L - k) + " left in the segment");
                k += table;
            }
        } else if ((m >= 0xC0 && m <= 0xCF) && m != 0xC4 && m != 0xC8 && m != 0xCC) {  // SOFn
            if (L < 6 || L != 6 + 3 * size_t(q[5]))
                throw std::runtime_error(pre + "SOF segment" + at(seg) + " has length " + std::to_string(len) + ", expected 8 + 3 × " +
                                         std::to_string(L < 6 ? 0 : q[5]) + " components");
        } else if (m == 0xDD) {  // DRI
            if (len != 4) throw std::runtime_error(pre + "DRI segment" + at(seg) + " has length " + std::to_string(len) + ", expected 4");
        } else if (m == 0xDA) {  // SOS, then entropy-coded data up to the next marker other than FF00 / RSTn
            if (L < 4 || L != 4 + 2 * size_t(q[0]))
                throw std::runtime_error(pre + "SOS segment" + at(seg) + " has length " + std::to_string(len) + ", expected 6 + 2 × " +
                                         std::to_string(L < 4 ? 0 : q[0]) + " components");
            pos += len;
            while (pos + 1 < n && !(p[pos] == 0xFF && p[pos + 1] != 0x00 && p[pos + 1] != 0xFF && !(p[pos + 1] >= 0xD0 && p[pos + 1] <= 0xD7)))
                ++pos;
            if (pos + 1 >= n) return;  // data runs to the end (stb decides whether that is enough)
            continue;
        }
        pos += len;
    }
}

// Walks a PNG's chunks before stb_image sees them: each chunk's length must fit in the file. Found by fuzzing
// (tests/fuzz, fuzz_folder): stb_image grows its IDAT buffer to a chunk's declared length before reading it, so an
// 800-byte PNG declaring a 1.7 GB IDAT made it allocate 2 GB (in WASM: the module's memory grown to 2 GB for
// good) before it reported "outofdata". Such a file cannot decode, so refusing it first loses nothing.
void check_png_chunks(const uint8_t* p, size_t n, const std::string& what) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (n < 8 || !std::equal(sig, sig + 8, p)) return;
    size_t pos = 8;
    while (n - pos >= 8) {
        const uint32_t len = uint32_t(p[pos]) << 24 | uint32_t(p[pos + 1]) << 16 | uint32_t(p[pos + 2]) << 8 | p[pos + 3];
        const std::string type(reinterpret_cast<const char*>(p + pos + 4), 4);
        if (len > n - pos - 8)
            throw std::runtime_error(what + ": cannot decode image: PNG chunk at byte " + std::to_string(pos) + " has length " +
                                     std::to_string(len) + ", beyond the end of the file (" + std::to_string(n - pos - 8) +
                                     " bytes left)");
        if (type == "IEND") return;
        pos += 8 + size_t(len) + std::min<size_t>(4, n - pos - 8 - len);  // data, then the CRC when present
    }
}

// A file too short to hold its pixels is truncated, and stb_image decodes it anyway, filling the rest: found by
// fuzzing (tests/fuzz, fuzz_image), an 830-byte JPEG claiming 7417×7168 took 160 MB and > 10 s under the sanitizers.
// The least each format needs: JPEG, a Huffman code (≥ 1 bit) for every 8×8 block's DC value, pixels / 512 bytes;
// PNG, its rows at 1 bit per pixel under deflate's maximum ratio (1032:1); BMP (stb reads it uncompressed), 1 bit
// per pixel. Refused below half of that (GIF's LZW has no such floor: its screen size is limited above).
// stb_image's test for a JPEG: FF, any number of FF fill bytes, then D8 (SOI).
bool is_jpeg_start(const uint8_t* p, size_t n) {
    size_t i = 0;
    while (i < n && p[i] == 0xFF) ++i;
    return i >= 1 && i < n && p[i] == 0xD8;
}

// The format the leading bytes name — "PNG", "JPEG", "BMP" or "GIF" — or null (what stb_image would try, built
// with those four only).
const char* image_format(const uint8_t* p, size_t n) {
    if (n >= 8 && p[0] == 0x89 && p[1] == 'P' && p[2] == 'N' && p[3] == 'G') return "PNG";
    if (is_jpeg_start(p, n)) return "JPEG";
    if (n >= 2 && p[0] == 'B' && p[1] == 'M') return "BMP";
    if (n >= 4 && p[0] == 'G' && p[1] == 'I' && p[2] == 'F' && p[3] == '8') return "GIF";
    return nullptr;
}

void check_bytes_for_pixels(const uint8_t* p, size_t n, int w, int h, const std::string& what) {
    const uint64_t px = uint64_t(w) * uint64_t(h);
    const char* format = image_format(p, n);
    const std::string f = format ? format : "";
    uint64_t need = 0;  // bytes, half the least a complete file holds (none for GIF)
    if (f == "JPEG") need = px / 1024;
    else if (f == "PNG") need = uint64_t(h) * (1 + (uint64_t(w) + 7) / 8) / 2064;
    else if (f == "BMP") need = px / 16;
    if (format && uint64_t(n) < need)
        throw std::runtime_error(what + ": cannot decode image: a " + format + " of " + std::to_string(w) + "x" + std::to_string(h) +
                                 " needs at least " + std::to_string(need) + " bytes, the file has " + std::to_string(n) +
                                 " (truncated)");
}

}  // namespace

ImageInfo probe_image(const uint8_t* p, size_t n) {
    ImageInfo info;
    if (p == nullptr || n == 0 || n > static_cast<size_t>(std::numeric_limits<int>::max())) return info;
    const char* format = image_format(p, n);
    if (format == nullptr) return info;
    try {  // stb's header scan reads a JPEG's Huffman tables: the same guards as decode_image first
        check_jpeg_segments(p, n, "image");
        check_png_chunks(p, n, "image");
    } catch (const std::runtime_error&) {
        return info;
    }
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_memory(p, static_cast<int>(n), &w, &h, &comp) || w <= 0 || h <= 0) return info;
    info.format = format, info.width = w, info.height = h, info.channels = comp <= 2 ? 1 : 3;
    return info;
}

Image8 decode_image(const uint8_t* bytes, size_t n, const std::string& what) {
    if (bytes == nullptr || n == 0) throw std::runtime_error(what + ": cannot decode image: empty file");
    if (n > static_cast<size_t>(std::numeric_limits<int>::max()))
        throw std::runtime_error(what + ": cannot decode image: file too large (" + std::to_string(n) + " bytes)");
    check_jpeg_segments(bytes, n, what);
    check_png_chunks(bytes, n, what);
    int w = 0, h = 0, comp = 0;
    // The header's size, checked before stb allocates anything for the pixels (Found 6: a 117-byte GIF claiming
    // 20413×16248 allocated 329 MB; a 31 kB PNG of 1×16,000,000, 3.5 GB).
    if (!stbi_info_from_memory(bytes, static_cast<int>(n), &w, &h, &comp)) {
        const char* reason = stbi_failure_reason();
        throw std::runtime_error(what + ": cannot decode image: " + (reason ? reason : "unknown error"));
    }
    if (w > limits::kImageSide || h > limits::kImageSide || int64_t(w) * h > limits::kImagePixels)
        throw std::runtime_error(what + ": image is " + std::to_string(w) + "x" + std::to_string(h) + ", more than the limit of " +
                                 std::to_string(limits::kImageSide) + " per side and " + std::to_string(limits::kImagePixels) +
                                 " pixels (src/base/limits.h)");
    check_bytes_for_pixels(bytes, n, w, h, what);
    stbi_uc* data = stbi_load_from_memory(bytes, static_cast<int>(n), &w, &h, &comp, 0);
    if (data == nullptr) {
        const char* reason = stbi_failure_reason();
        throw std::runtime_error(what + ": cannot decode image: " + (reason ? reason : "unknown error"));
    }
    Image8 img;
    img.width = w;
    img.height = h;
    img.channels = comp;
    if (w <= 0 || h <= 0 || comp < 1 || comp > 4) {
        stbi_image_free(data);
        throw std::runtime_error(what + ": cannot decode image: bad dimensions " + std::to_string(w) + "x" +
                                 std::to_string(h) + "x" + std::to_string(comp));
    }
    img.pixels.assign(data, data + static_cast<size_t>(w) * h * comp);
    stbi_image_free(data);
    return img;
}

Image8 load_image_file(const std::string& path) {
#ifdef __EMSCRIPTEN__
    throw std::runtime_error(path + ": load_image_file is not available in the WASM build (no filesystem); "
                             "pass the encoded bytes to decode_image");
#else
    std::vector<uint8_t> bytes = read_file_bytes(path);
    return decode_image(bytes.data(), bytes.size(), path);
#endif
}

// ------------------------------------------------------------------------------------------------
// Channels
// ------------------------------------------------------------------------------------------------

static void check_image(const Image8& img, const char* fn) {
    if (img.width <= 0 || img.height <= 0 || img.channels < 1 || img.channels > 4)
        throw std::runtime_error(std::string(fn) + ": invalid image " + std::to_string(img.width) + "x" +
                                 std::to_string(img.height) + "x" + std::to_string(img.channels));
    if (img.pixels.size() != static_cast<size_t>(img.width) * img.height * img.channels)
        throw std::runtime_error(std::string(fn) + ": image has " + std::to_string(img.pixels.size()) +
                                 " bytes, expected " +
                                 std::to_string(static_cast<size_t>(img.width) * img.height * img.channels));
}

// Pillow's RGB→L (Convert.c rgb2l): L24(rgb) = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, i.e. ITU-R 601-2
// luma 0.299/0.587/0.114 in 16-bit fixed point, rounded. (Plain (299R+587G+114B)/1000 truncates and
// differs from Pillow on about half of all colours.)
static inline uint8_t luma601(uint8_t r, uint8_t g, uint8_t b) {
    return static_cast<uint8_t>((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

Image8 convert_channels(const Image8& img, int channels) {
    check_image(img, "convert_channels");
    if (channels != 1 && channels != 3)
        throw std::runtime_error("convert_channels: unsupported target channel count " + std::to_string(channels) +
                                 " (1 or 3)");
    if (img.channels == channels) return img;
    Image8 out;
    out.width = img.width;
    out.height = img.height;
    out.channels = channels;
    const size_t npix = static_cast<size_t>(img.width) * img.height;
    out.pixels.resize(npix * channels);
    const int cin = img.channels;
    const uint8_t* in = img.pixels.data();
    uint8_t* o = out.pixels.data();
    for (size_t i = 0; i < npix; ++i, in += cin) {
        if (channels == 1) {
            // 1→1 handled above; 2 (grey+alpha) → grey; 3/4 → luma (alpha dropped).
            o[i] = cin <= 2 ? in[0] : luma601(in[0], in[1], in[2]);
        } else {
            if (cin <= 2) {  // grey (+alpha) → replicate
                o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = in[0];
            } else {  // RGBA → RGB
                o[3 * i] = in[0];
                o[3 * i + 1] = in[1];
                o[3 * i + 2] = in[2];
            }
        }
    }
    return out;
}

// ------------------------------------------------------------------------------------------------
// Resize (Pillow-exact, see the file comment)
// ------------------------------------------------------------------------------------------------

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS

double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    if (x < 1.0) return 1.0 - x;
    return 0.0;
}

double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

struct Filter {
    double (*fn)(double);
    double support;
};

// Per output sample: first source index and the fixed-point weights of the source run.
struct Coeffs {
    int ksize = 0;                 // stride of k
    std::vector<int> xmin, count;  // per output index
    std::vector<int32_t> k;        // out_size * ksize
};

int ceil_pos(double v) {  // ceil for v >= 0 without libm
    int i = static_cast<int>(v);
    return (static_cast<double>(i) < v) ? i + 1 : i;
}

// Pillow precompute_coeffs + normalize_coeffs_8bpc, with box (0, in_size).
Coeffs precompute_coeffs(int in_size, int out_size, const Filter& filter) {
    const float in0 = 0.0f, in1 = static_cast<float>(in_size);  // Pillow's box is float[4]
    double scale = static_cast<double>(in1 - in0) / out_size;
    double filterscale = scale;
    if (filterscale < 1.0) filterscale = 1.0;
    const double support = filter.support * filterscale;
    Coeffs c;
    c.ksize = ceil_pos(support) * 2 + 1;
    c.xmin.resize(out_size);
    c.count.resize(out_size);
    c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
    std::vector<double> w(c.ksize);
    for (int xx = 0; xx < out_size; ++xx) {
        const double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0;
        const double ss = 1.0 / filterscale;
        int xmin = static_cast<int>(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = static_cast<int>(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax > c.ksize) xmax = c.ksize;  // cannot happen (Pillow relies on it); keeps us in bounds
        for (int x = 0; x < xmax; ++x) {
            const double v = filter.fn((x + xmin - center + 0.5) * ss);
            w[x] = v;
            ww += v;
        }
        for (int x = 0; x < xmax; ++x) {
            if (ww != 0.0) w[x] /= ww;
        }
        int32_t* k = &c.k[static_cast<size_t>(xx) * c.ksize];
        for (int x = 0; x < xmax; ++x) {
            const double p = w[x];
            k[x] = p < 0 ? static_cast<int32_t>(-0.5 + p * (1 << kPrecisionBits))
                         : static_cast<int32_t>(0.5 + p * (1 << kPrecisionBits));
        }
        c.xmin[xx] = xmin;
        c.count[xx] = xmax < 0 ? 0 : xmax;
    }
    return c;
}

// Pillow clip8: (acc >> PRECISION_BITS) (arithmetic shift = floor division) clamped to 0..255.
// floor(acc / 2^22) < 0 exactly when acc < 0, so negatives go straight to 0.
inline uint8_t clip8(int64_t acc) {
    if (acc < 0) return 0;
    const int64_t v = acc >> kPrecisionBits;
    return v > 255 ? uint8_t{255} : static_cast<uint8_t>(v);
}

// Horizontal pass over source rows [row0, row0 + rows).
Image8 resample_horizontal(const Image8& in, int out_w, int row0, int rows, const Coeffs& c) {
    Image8 out;
    out.width = out_w;
    out.height = rows;
    out.channels = in.channels;
    const int ch = in.channels;
    out.pixels.resize(static_cast<size_t>(out_w) * rows * ch);
    for (int yy = 0; yy < rows; ++yy) {
        const uint8_t* src = &in.pixels[static_cast<size_t>(yy + row0) * in.width * ch];
        uint8_t* dst = &out.pixels[static_cast<size_t>(yy) * out_w * ch];
        for (int xx = 0; xx < out_w; ++xx) {
            const int xmin = c.xmin[xx], n = c.count[xx];
            const int32_t* k = &c.k[static_cast<size_t>(xx) * c.ksize];
            for (int b = 0; b < ch; ++b) {
                int64_t acc = int64_t{1} << (kPrecisionBits - 1);
                for (int x = 0; x < n; ++x) acc += static_cast<int64_t>(src[(x + xmin) * ch + b]) * k[x];
                dst[xx * ch + b] = clip8(acc);
            }
        }
    }
    return out;
}

// Vertical pass; c.xmin are rows of `in` shifted by -row0.
Image8 resample_vertical(const Image8& in, int out_h, int row0, const Coeffs& c) {
    Image8 out;
    out.width = in.width;
    out.height = out_h;
    out.channels = in.channels;
    const int ch = in.channels;
    const size_t stride = static_cast<size_t>(in.width) * ch;
    out.pixels.resize(stride * out_h);
    for (int yy = 0; yy < out_h; ++yy) {
        const int ymin = c.xmin[yy] - row0, n = c.count[yy];
        const int32_t* k = &c.k[static_cast<size_t>(yy) * c.ksize];
        uint8_t* dst = &out.pixels[static_cast<size_t>(yy) * stride];
        for (size_t i = 0; i < stride; ++i) {
            int64_t acc = int64_t{1} << (kPrecisionBits - 1);
            for (int y = 0; y < n; ++y) acc += static_cast<int64_t>(in.pixels[(y + ymin) * stride + i]) * k[y];
            dst[i] = clip8(acc);
        }
    }
    return out;
}

// Pillow _resize → ImagingTransform(AFFINE, NEAREST) → ImagingScaleAffine.
Image8 resize_nearest(const Image8& img, int out_w, int out_h) {
    const double ax = static_cast<double>(static_cast<float>(img.width) - 0.0f) / out_w;   // a[0]
    const double ay = static_cast<double>(static_cast<float>(img.height) - 0.0f) / out_h;  // a[4]
    auto coord = [](double v) { return v < 0.0 ? -1 : static_cast<int>(v); };
    std::vector<int> xintab(out_w, 0);
    int xmin = out_w, xmax = 0;
    double xo = 0.0 + ax * 0.5;
    for (int x = 0; x < out_w; ++x) {
        const int xin = coord(xo);
        if (xin >= 0 && xin < img.width) {
            xmax = x + 1;
            if (x < xmin) xmin = x;
            xintab[x] = xin;
        }
        xo += ax;
    }
    Image8 out;
    out.width = out_w;
    out.height = out_h;
    out.channels = img.channels;
    const int ch = img.channels;
    out.pixels.assign(static_cast<size_t>(out_w) * out_h * ch, 0);  // Pillow fills with 0
    double yo = 0.0 + ay * 0.5;
    for (int y = 0; y < out_h; ++y) {
        const int yi = coord(yo);
        if (yi >= 0 && yi < img.height) {
            const uint8_t* src = &img.pixels[static_cast<size_t>(yi) * img.width * ch];
            uint8_t* dst = &out.pixels[static_cast<size_t>(y) * out_w * ch];
            for (int x = xmin; x < xmax; ++x) std::memcpy(dst + x * ch, src + xintab[x] * ch, ch);
        }
        yo += ay;
    }
    return out;
}

}  // namespace

Image8 resize_image(const Image8& img, int out_w, int out_h, const std::string& resample) {
    check_image(img, "resize_image");
    if (out_w <= 0 || out_h <= 0)
        throw std::runtime_error("resize_image: invalid target size " + std::to_string(out_w) + "x" +
                                 std::to_string(out_h));
    Filter filter{};
    bool nearest = false;
    if (resample == "bilinear") filter = {bilinear_filter, 1.0};
    else if (resample == "bicubic") filter = {bicubic_filter, 2.0};
    else if (resample == "nearest") nearest = true;
    else
        throw std::runtime_error("resize_image: unknown resample '" + resample +
                                 "' (expected bilinear, bicubic or nearest)");
    if (out_w == img.width && out_h == img.height) return img;
    if (nearest) return resize_nearest(img, out_w, out_h);

    const bool need_h = out_w != img.width;
    const bool need_v = out_h != img.height;
    const Coeffs cv = precompute_coeffs(img.height, out_h, filter);
    // Source rows the vertical pass reads (Pillow's ybox_first / ybox_last).
    const int row_first = cv.xmin[0];
    const int row_last = cv.xmin[out_h - 1] + cv.count[out_h - 1];
    if (!need_v) {
        // Only the width changes; Pillow's horizontal pass runs over all rows in this case.
        return resample_horizontal(img, out_w, 0, img.height, precompute_coeffs(img.width, out_w, filter));
    }
    if (!need_h) return resample_vertical(img, out_h, 0, cv);
    const Image8 tmp =
        resample_horizontal(img, out_w, row_first, row_last - row_first, precompute_coeffs(img.width, out_w, filter));
    return resample_vertical(tmp, out_h, row_first, cv);
}

// ------------------------------------------------------------------------------------------------
// Preprocess
// ------------------------------------------------------------------------------------------------

// Per-channel mean/std: one value per model channel, or a single value for all channels; when more
// values than channels are given (e.g. the 3-value default with a 1-channel model) the first ones are used.
static float channel_param(const std::vector<float>& v, int c, int channels, const char* name) {
    if (v.empty()) throw std::runtime_error(std::string("preprocess: empty ") + name);
    if (v.size() == 1) return v[0];
    if (static_cast<int>(v.size()) < channels)
        throw std::runtime_error(std::string("preprocess: ") + name + " has " + std::to_string(v.size()) +
                                 " values for " + std::to_string(channels) + " channels");
    return v[c];
}

std::pair<int, int> resized_size(int in_w, int in_h, const Preprocess& pp) {
    if (pp.shortest_edge > 0) {
        // int(size · long / short) in double, as Hugging Face's get_resize_output_image_size and torchvision.
        const bool w_short = in_w <= in_h;
        const int s = w_short ? in_w : in_h, l = w_short ? in_h : in_w;
        const double nld = double(pp.shortest_edge) * double(l) / double(s);
        // Found 6: a 6,291,465×2 BMP made the DeiT resize build an 88M×28 image (2.6 GB).
        if (nld >= double(limits::kResizeSide + 1))
            throw std::runtime_error("preprocess: a " + std::to_string(in_w) + "x" + std::to_string(in_h) + " image resized to shortest edge " +
                                     std::to_string(pp.shortest_edge) + " would be " + std::to_string(int64_t(nld)) + " long, more than the limit " +
                                     std::to_string(limits::kResizeSide) + " (src/base/size_limits.h)");
        const int nl = int(nld);
        return w_short ? std::pair<int, int>{pp.shortest_edge, nl} : std::pair<int, int>{nl, pp.shortest_edge};
    }
    if (pp.resize_w > 0 && pp.resize_h > 0) return {pp.resize_w, pp.resize_h};
    return {pp.size_w, pp.size_h};
}

Image8 center_crop(const Image8& img, int out_w, int out_h, bool round_half_even) {
    if (img.width < out_w || img.height < out_h)
        throw std::runtime_error("center crop: the image is " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                                 ", smaller than the crop " + std::to_string(out_w) + "x" + std::to_string(out_h));
    auto offset = [&](int in, int out) {
        const int d = in - out;
        // Python: (in - out) // 2, or int(round((in - out) / 2.0)) with round half to even.
        if (!round_half_even || d % 2 == 0) return d / 2;
        const int lo = d / 2;  // d odd: halfway between lo and lo + 1; the even one wins
        return lo % 2 == 0 ? lo : lo + 1;
    };
    const int x0 = offset(img.width, out_w), y0 = offset(img.height, out_h), C = img.channels;
    Image8 out;
    out.width = out_w, out.height = out_h, out.channels = C;
    out.pixels.resize(size_t(out_w) * size_t(out_h) * size_t(C));
    for (int y = 0; y < out_h; ++y)
        std::memcpy(&out.pixels[size_t(y) * size_t(out_w) * size_t(C)],
                    &img.pixels[(size_t(y + y0) * size_t(img.width) + size_t(x0)) * size_t(C)], size_t(out_w) * size_t(C));
    return out;
}

std::vector<float> preprocess(const Image8& img, const Preprocess& pp) {
    if (pp.size_h <= 0 || pp.size_w <= 0)
        throw std::runtime_error("preprocess: invalid target size " + std::to_string(pp.size_w) + "x" +
                                 std::to_string(pp.size_h));
    Image8 conv = convert_channels(img, pp.channels);
    const auto [rw, rh] = resized_size(conv.width, conv.height, pp);
    if (conv.width != rw || conv.height != rh) conv = resize_image(conv, rw, rh, pp.resample);
    if (rw != pp.size_w || rh != pp.size_h) {
        if (!pp.center_crop || rw < pp.size_w || rh < pp.size_h)
            throw std::runtime_error("preprocess: a " + std::to_string(img.width) + "x" + std::to_string(img.height) + " image resized to " +
                                     std::to_string(rw) + "x" + std::to_string(rh) + " does not give the model's " +
                                     std::to_string(pp.size_w) + "x" + std::to_string(pp.size_h) +
                                     (pp.center_crop ? " (too small to crop)" : " and the preprocessing has no centre crop"));
        conv = center_crop(conv, pp.size_w, pp.size_h, pp.crop_round);
    }
    const int C = pp.channels;
    const size_t plane = static_cast<size_t>(pp.size_h) * pp.size_w;
    std::vector<float> out(plane * C);
    for (int c = 0; c < C; ++c) {
        const float mean = channel_param(pp.mean, c, C, "mean");
        const float sd = channel_param(pp.std, c, C, "std");
        float* o = &out[plane * c];
        const uint8_t* in = conv.pixels.data() + c;
        for (size_t i = 0; i < plane; ++i) {
            // float32 throughout, as HF (rescale: uint8*(1/255) in float64 then cast to float32 — equal to
            // the float32 division below for all 256 values — then (x - mean) / std in float32) and as
            // models/train.py (torch float32: x/255, (x - mean) / std).
            float v = static_cast<float>(in[i * C]) / 255.0f;
            v = (v - mean) / sd;
            o[i] = v;
        }
    }
    return out;
}

}  // namespace bitlens
