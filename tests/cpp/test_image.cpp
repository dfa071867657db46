// Tests for src/image.{h,cpp}: decoding, channel conversion, Pillow-exact resizing, preprocessing.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "image.h"

#include "stb_write.h"

using namespace bitlens;

namespace {

void append_bytes(void* ctx, void* data, int size) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    const auto* p = static_cast<const uint8_t*>(data);
    v->insert(v->end(), p, p + size);
}

Image8 make_image(int w, int h, int c, uint32_t seed) {
    Image8 im;
    im.width = w;
    im.height = h;
    im.channels = c;
    im.pixels.resize(size_t(w) * h * c);
    uint32_t s = seed;
    for (auto& p : im.pixels) {
        s = s * 1664525u + 1013904223u;
        p = uint8_t(s >> 24);
    }
    return im;
}

Image8 from_pixels(int w, int h, int c, std::vector<uint8_t> px) {
    Image8 im;
    im.width = w;
    im.height = h;
    im.channels = c;
    im.pixels = std::move(px);
    REQUIRE(im.pixels.size() == size_t(w) * h * c);
    return im;
}

std::vector<uint8_t> encode_png(const Image8& im) {
    std::vector<uint8_t> out;
    REQUIRE(stbi_write_png_to_func(append_bytes, &out, im.width, im.height, im.channels, im.pixels.data(),
                                   im.width * im.channels) != 0);
    return out;
}
std::vector<uint8_t> encode_bmp(const Image8& im) {
    std::vector<uint8_t> out;
    REQUIRE(stbi_write_bmp_to_func(append_bytes, &out, im.width, im.height, im.channels, im.pixels.data()) != 0);
    return out;
}
std::vector<uint8_t> encode_jpg(const Image8& im, int quality) {
    std::vector<uint8_t> out;
    REQUIRE(stbi_write_jpg_to_func(append_bytes, &out, im.width, im.height, im.channels, im.pixels.data(), quality) !=
            0);
    return out;
}

uint32_t fnv1a(const std::vector<uint8_t>& b) {
    uint32_t h = 0x811c9dc5u;
    for (uint8_t x : b) h = (h ^ x) * 0x01000193u;
    return h;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Decoding
// ------------------------------------------------------------------------------------------------

TEST_CASE("decode_image: PNG round trips exactly for 1..4 channels") {
    for (int c = 1; c <= 4; ++c) {
        CAPTURE(c);
        const Image8 src = make_image(13, 7, c, 100u + c);
        const std::vector<uint8_t> png = encode_png(src);
        const Image8 got = decode_image(png.data(), png.size(), "t.png");
        CHECK(got.width == 13);
        CHECK(got.height == 7);
        CHECK(got.channels == c);
        CHECK(got.pixels == src.pixels);
    }
}

TEST_CASE("decode_image: BMP round trips exactly (RGB; grey is written as RGB)") {
    const Image8 rgb = make_image(9, 5, 3, 7);
    std::vector<uint8_t> bmp = encode_bmp(rgb);
    Image8 got = decode_image(bmp.data(), bmp.size(), "t.bmp");
    CHECK(got.width == 9);
    CHECK(got.height == 5);
    CHECK(got.channels == 3);
    CHECK(got.pixels == rgb.pixels);

    const Image8 grey = make_image(6, 4, 1, 8);
    bmp = encode_bmp(grey);
    got = decode_image(bmp.data(), bmp.size(), "g.bmp");
    REQUIRE(got.channels == 3);
    CHECK(convert_channels(got, 1).pixels == grey.pixels);  // replicated grey → luma is the grey value again
}

TEST_CASE("decode_image: JPEG decodes close to the source") {
    // A smooth image (JPEG is lossy; smooth content keeps the error small).
    Image8 src;
    src.width = 32;
    src.height = 24;
    src.channels = 3;
    for (int y = 0; y < 24; ++y)
        for (int x = 0; x < 32; ++x) {
            src.pixels.push_back(uint8_t(x * 8));
            src.pixels.push_back(uint8_t(y * 10));
            src.pixels.push_back(uint8_t(128 + (x - y)));
        }
    const std::vector<uint8_t> jpg = encode_jpg(src, 95);
    const Image8 got = decode_image(jpg.data(), jpg.size(), "t.jpg");
    REQUIRE(got.width == 32);
    REQUIRE(got.height == 24);
    REQUIRE(got.channels == 3);
    int max_diff = 0;
    double sum = 0;
    for (size_t i = 0; i < got.pixels.size(); ++i) {
        const int d = std::abs(int(got.pixels[i]) - int(src.pixels[i]));
        max_diff = std::max(max_diff, d);
        sum += d;
    }
    CHECK(max_diff <= 16);
    CHECK(sum / double(got.pixels.size()) < 2.0);
}

TEST_CASE("decode_image: GIF (first frame, RGBA)") {
    // 3x2 GIF written by Pillow: red, green, blue / white, black, (128,64,32).
    const std::vector<uint8_t> gif = {
        0x47, 0x49, 0x46, 0x38, 0x37, 0x61, 0x03, 0x00, 0x02, 0x00, 0x82, 0x00, 0x00, 0xff, 0xff,
        0xff, 0x00, 0xff, 0x00, 0x80, 0x40, 0x20, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x02,
        0x00, 0x00, 0x08, 0x09, 0x00, 0x07, 0x04, 0x20, 0x00, 0xa0, 0x80, 0x80, 0x80, 0x00, 0x3b};
    const Image8 got = decode_image(gif.data(), gif.size(), "t.gif");
    CHECK(got.width == 3);
    CHECK(got.height == 2);
    REQUIRE(got.channels == 4);
    const Image8 rgb = convert_channels(got, 3);
    CHECK(rgb.pixels == std::vector<uint8_t>{255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 128, 64, 32});
}

TEST_CASE("decode_image: errors name the source and stb's reason") {
    const std::vector<uint8_t> junk = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!'};
    CHECK_THROWS_WITH_AS(decode_image(junk.data(), junk.size(), "photo.png"),
                         "photo.png: cannot decode image: unknown image type", std::runtime_error);
    CHECK_THROWS_WITH_AS(decode_image(nullptr, 0, "empty.png"), "empty.png: cannot decode image: empty file",
                         std::runtime_error);
    // A truncated PNG: header is fine, data is missing.
    std::vector<uint8_t> png = encode_png(make_image(16, 16, 3, 1));
    png.resize(png.size() / 2);
    CHECK_THROWS_WITH_AS(decode_image(png.data(), png.size(), "half.png"),
                         doctest::Contains("half.png: cannot decode image: "), std::runtime_error);
}

TEST_CASE("probe_image: format, size and channels from the header; none for what decode_image refuses") {
    struct Case {
        std::vector<uint8_t> bytes;
        const char* format;
        int w, h, channels;
    };
    const std::vector<Case> cases = {
        {encode_png(make_image(7, 5, 1, 1)), "PNG", 7, 5, 1},
        {encode_png(make_image(7, 5, 2, 2)), "PNG", 7, 5, 1},  // grey + alpha: grey to the model
        {encode_png(make_image(9, 4, 3, 3)), "PNG", 9, 4, 3},
        {encode_png(make_image(9, 4, 4, 4)), "PNG", 9, 4, 3},
        {encode_bmp(make_image(6, 3, 3, 5)), "BMP", 6, 3, 3},
        {encode_jpg(make_image(16, 8, 1, 6), 90), "JPEG", 16, 8, 3},  // stb's JPEG writer stores three components
        {encode_jpg(make_image(16, 8, 3, 7), 90), "JPEG", 16, 8, 3},
    };
    for (const Case& c : cases) {
        const ImageInfo info = probe_image(c.bytes.data(), c.bytes.size());
        const std::string format = c.format;
        CAPTURE(format);
        CHECK(info.format == c.format);
        CHECK(info.width == c.w);
        CHECK(info.height == c.h);
        CHECK(info.channels == c.channels);
        const Image8 img = decode_image(c.bytes.data(), c.bytes.size(), "x");  // the decoder agrees on the size
        CHECK(img.width == info.width);
        CHECK(img.height == info.height);
        CHECK(info.channels == (img.channels <= 2 ? 1 : 3));
    }
    // A JPEG after FF fill bytes is still a JPEG to stb_image, and so here.
    std::vector<uint8_t> filled = encode_jpg(make_image(8, 8, 3, 8), 90);
    filled.insert(filled.begin(), {0xFF, 0xFF});
    CHECK(probe_image(filled.data(), filled.size()).format == "JPEG");
    // Not images, whatever they are called: text, nothing, a PNG signature with no header after it, a JPEG whose DHT
    // table declares more than 256 symbols (refused by the decoder's segment check before stb reads it).
    const std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!'};
    CHECK(probe_image(text.data(), text.size()).format.empty());
    CHECK(probe_image(nullptr, 0).format.empty());
    const std::vector<uint8_t> sig = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    CHECK(probe_image(sig.data(), sig.size()).format.empty());
    std::vector<uint8_t> bad_dht = {0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x13, 0x00};
    for (int i = 0; i < 16; ++i) bad_dht.push_back(i == 0 ? 255 : i == 1 ? 2 : 0);  // 257 symbols declared
    CHECK(probe_image(bad_dht.data(), bad_dht.size()).format.empty());
    CHECK_THROWS(decode_image(bad_dht.data(), bad_dht.size(), "bad.jpg"));
}

#ifndef __EMSCRIPTEN__
TEST_CASE("load_image_file: missing file names the path") {
    CHECK_THROWS_WITH_AS(load_image_file("/nonexistent/dir/photo.png"),
                         doctest::Contains("/nonexistent/dir/photo.png: cannot open"), std::runtime_error);
}
#endif

// ------------------------------------------------------------------------------------------------
// Channels
// ------------------------------------------------------------------------------------------------

TEST_CASE("convert_channels: grey <-> RGB, alpha dropped, Pillow's L") {
    const Image8 g = from_pixels(3, 1, 1, {0, 77, 255});
    const Image8 rgb = convert_channels(g, 3);
    CHECK(rgb.channels == 3);
    CHECK(rgb.pixels == std::vector<uint8_t>{0, 0, 0, 77, 77, 77, 255, 255, 255});
    CHECK(convert_channels(rgb, 1).pixels == g.pixels);
    CHECK(convert_channels(g, 1).pixels == g.pixels);

    // Pillow 9.4 Image.convert("L") of these pixels gives [76, 150, 29, 129]:
    // L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16  (0.299/0.587/0.114 in 16-bit fixed point, rounded)
    // e.g. (10,200,77): 195950 + 7694000 + 575267 + 32768 = 8497985 >> 16 = 129.
    const Image8 c = from_pixels(4, 1, 3, {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 77});
    CHECK(convert_channels(c, 1).pixels == std::vector<uint8_t>{76, 150, 29, 129});

    const Image8 rgba = from_pixels(2, 1, 4, {1, 2, 3, 0, 250, 251, 252, 128});
    CHECK(convert_channels(rgba, 3).pixels == std::vector<uint8_t>{1, 2, 3, 250, 251, 252});
    const Image8 la = from_pixels(2, 1, 2, {9, 0, 200, 255});
    CHECK(convert_channels(la, 1).pixels == std::vector<uint8_t>{9, 200});
    CHECK(convert_channels(la, 3).pixels == std::vector<uint8_t>{9, 9, 9, 200, 200, 200});

    CHECK_THROWS_AS(convert_channels(g, 2), std::runtime_error);
}

// ------------------------------------------------------------------------------------------------
// Resize
// ------------------------------------------------------------------------------------------------

TEST_CASE("resize_image: same size returns the image unchanged") {
    const Image8 im = make_image(17, 11, 3, 5);
    for (const char* rs : {"bilinear", "bicubic", "nearest"}) {
        const Image8 out = resize_image(im, 17, 11, rs);
        CHECK(out.width == 17);
        CHECK(out.height == 11);
        CHECK(out.pixels == im.pixels);
    }
}

TEST_CASE("resize_image: a constant image stays constant") {
    for (int c : {1, 3}) {
        Image8 im;
        im.width = 37;
        im.height = 23;
        im.channels = c;
        im.pixels.assign(size_t(37) * 23 * c, 173);
        for (const char* rs : {"bilinear", "bicubic", "nearest"}) {
            for (auto wh : {std::pair<int, int>{5, 4}, {100, 64}, {37, 99}, {1, 1}}) {
                const Image8 out = resize_image(im, wh.first, wh.second, rs);
                REQUIRE(out.pixels.size() == size_t(wh.first) * wh.second * c);
                for (uint8_t p : out.pixels) REQUIRE(p == 173);
            }
        }
    }
}

TEST_CASE("resize_image: hand-computed bilinear 4 -> 2 (antialiased) and 2 -> 4") {
    // 4 -> 2, pixels [10, 20, 30, 40]: scale = 2, filterscale = 2, support = 1 * 2 = 2.
    //  out 0: center = 0.5*2 = 1.0; xmin = (int)(1-2+0.5) = 0; xmax = (int)(1+2+0.5) = 3 → taps 0..2
    //         w = tri((j + 0 - 1 + 0.5)/2) = tri(-0.25), tri(0.25), tri(0.75) = .75, .75, .25 → /1.75 = 3/7, 3/7, 1/7
    //         fixed point (×2^22, rounded): 1797559, 1797559, 599186
    //         (10*1797559 + 20*1797559 + 30*599186 + 2^21) >> 22 = 73999502 >> 22 = 17   (exact: 120/7 = 17.14)
    //  out 1: center = 3.0; xmin = (int)1.5 = 1; xmax = min(4, (int)5.5) = 4 → taps 1..3, weights 1/7, 3/7, 3/7
    //         (20*599186 + 30*1797559 + 40*1797559 + 2^21) >> 22 = 33                        (exact: 230/7 = 32.86)
    // Pillow 9.4: Image.frombytes("L", (4, 1), ...).resize((2, 1), BILINEAR) → [17, 33].
    const Image8 a = from_pixels(4, 1, 1, {10, 20, 30, 40});
    CHECK(resize_image(a, 2, 1, "bilinear").pixels == std::vector<uint8_t>{17, 33});

    // 2 -> 4, pixels [0, 101]: scale = 0.5, filterscale = 1 (no antialiasing when enlarging), support = 1.
    //  out 0: center 0.25; xmin = (int)(-0.25) = 0, xmax = (int)1.75 = 1 → one tap → 0
    //  out 1: center 0.75; taps 0..1: tri(-0.25) = .75, tri(0.75) = .25 → 101*.25 = 25.25 → 25
    //  out 2: center 1.25; taps 0..1: tri(-0.75) = .25, tri(0.25) = .75 → 101*.75 = 75.75 → 76
    //  out 3: center 1.75; xmin = (int)1.25 = 1, one tap → 101
    // Pillow 9.4: [0, 25, 76, 101].
    const Image8 b = from_pixels(2, 1, 1, {0, 101});
    CHECK(resize_image(b, 4, 1, "bilinear").pixels == std::vector<uint8_t>{0, 25, 76, 101});
    // Same along the vertical axis.
    const Image8 bv = from_pixels(1, 2, 1, {0, 101});
    CHECK(resize_image(bv, 1, 4, "bilinear").pixels == std::vector<uint8_t>{0, 25, 76, 101});
}

TEST_CASE("resize_image: exact Pillow 9.4 output for a 5x3 RGB image") {
    // Values from: Image.frombytes("RGB", (5, 3), bytes(px)).resize(size, resample).tobytes()
    const Image8 im = from_pixels(5, 3, 3, {57,  12,  140, 125, 114, 71,  52,  44,  216, 16,  15,  47,  111, 119, 13,
                                            101, 214, 112, 229, 142, 3,   81,  216, 174, 142, 79,  110, 172, 52,  47,
                                            194, 49,  183, 176, 135, 22,  235, 63,  193, 40,  150, 185, 98,  35,  23});
    CHECK(resize_image(im, 3, 2, "nearest").pixels ==
          std::vector<uint8_t>{57, 12, 140, 52, 44, 216, 111, 119, 13, 194, 49, 183, 235, 63, 193, 98, 35, 23});
    CHECK(resize_image(im, 3, 2, "bilinear").pixels ==
          std::vector<uint8_t>{112, 104, 93, 85, 97, 137, 103, 70, 45, 175, 122, 96, 160, 125, 141, 105, 77, 85});
    CHECK(resize_image(im, 3, 2, "bicubic").pixels ==
          std::vector<uint8_t>{111, 106, 93, 81, 97, 139, 103, 68, 43, 182, 125, 92, 164, 132, 143, 104, 75, 90});
    CHECK(resize_image(im, 7, 4, "nearest").pixels ==
          std::vector<uint8_t>{57,  12,  140, 125, 114, 71,  125, 114, 71,  52,  44,  216, 16,  15,  47,  16,  15,
                               47,  111, 119, 13,  101, 214, 112, 229, 142, 3,   229, 142, 3,   81,  216, 174, 142,
                               79,  110, 142, 79,  110, 172, 52,  47,  101, 214, 112, 229, 142, 3,   229, 142, 3,
                               81,  216, 174, 142, 79,  110, 142, 79,  110, 172, 52,  47,  194, 49,  183, 176, 135,
                               22,  176, 135, 22,  235, 63,  193, 40,  150, 185, 40,  150, 185, 98,  35,  23});
    CHECK(resize_image(im, 7, 4, "bilinear").pixels ==
          std::vector<uint8_t>{57,  12,  140, 96,  70,  101, 104, 94,  112, 52,  44,  216, 26,  23,  95,  57,  60,
                               32,  111, 119, 13,  85,  138, 123, 145, 134, 69,  156, 137, 75,  70,  152, 190, 88,
                               82,  116, 118, 64,  64,  149, 77,  34,  136, 152, 139, 178, 145, 65,  189, 145, 59,
                               139, 159, 181, 114, 121, 150, 121, 80,  95,  144, 46,  38,  194, 49,  183, 184, 98,
                               91,  193, 114, 71,  235, 63,  193, 96,  125, 187, 65,  101, 116, 98,  35,  23});
    CHECK(resize_image(im, 7, 4, "bicubic").pixels ==
          std::vector<uint8_t>{51,  0,   145, 96,  69,  95,  108, 102, 110, 50,  35,  218, 11,  7,   93,  50,  59,
                               18,  114, 129, 9,   72,  151, 123, 152, 138, 56,  169, 142, 62,  59,  163, 188, 84,
                               76,  115, 128, 55,  54,  158, 80,  33,  135, 168, 144, 187, 151, 52,  205, 149, 38,
                               141, 171, 178, 115, 130, 164, 127, 75,  95,  151, 37,  34,  200, 35,  196, 180, 99,
                               84,  195, 119, 53,  243, 55,  194, 83,  136, 208, 47,  107, 115, 97,  27,  12});
    // Bicubic overshoots and is clamped to 0..255 after each pass.
    const Image8 zig = from_pixels(4, 1, 1, {0, 255, 0, 255});
    CHECK(resize_image(zig, 7, 1, "bicubic").pixels == std::vector<uint8_t>{0, 87, 251, 128, 4, 168, 255});
}

TEST_CASE("resize_image: realistic sizes match Pillow 9.4 (FNV-1a of the output)") {
    // 28x28 grey pattern → 224x224 (the Fashion-MNIST → ViT case) and 300x200 RGB → 224x224.
    Image8 g;
    g.width = g.height = 28;
    g.channels = 1;
    for (int y = 0; y < 28; ++y)
        for (int x = 0; x < 28; ++x) g.pixels.push_back(uint8_t((x * 7 + y * 13 + (x * y) % 11) & 255));
    CHECK(fnv1a(resize_image(g, 224, 224, "nearest").pixels) == 0xc393d6c5u);
    CHECK(fnv1a(resize_image(g, 224, 224, "bilinear").pixels) == 0xf3265cedu);
    CHECK(fnv1a(resize_image(g, 224, 224, "bicubic").pixels) == 0x779477d8u);

    Image8 c;
    c.width = 300;
    c.height = 200;
    c.channels = 3;
    for (int y = 0; y < 200; ++y)
        for (int x = 0; x < 300; ++x)
            for (int ch = 0; ch < 3; ++ch) c.pixels.push_back(uint8_t((x * 3 + y * 5 + ch * 50 + (x * y) % 17) & 255));
    CHECK(fnv1a(resize_image(c, 224, 224, "nearest").pixels) == 0x547292f0u);
    CHECK(fnv1a(resize_image(c, 224, 224, "bilinear").pixels) == 0x24e1027eu);
    CHECK(fnv1a(resize_image(c, 224, 224, "bicubic").pixels) == 0x5e2affbbu);
}

TEST_CASE("resize_image: bad arguments") {
    const Image8 im = make_image(4, 4, 1, 1);
    CHECK_THROWS_WITH_AS(resize_image(im, 2, 2, "lanczos"), doctest::Contains("unknown resample 'lanczos'"),
                         std::runtime_error);
    CHECK_THROWS_AS(resize_image(im, 0, 2, "bilinear"), std::runtime_error);
    Image8 bad = im;
    bad.pixels.pop_back();
    CHECK_THROWS_AS(resize_image(bad, 2, 2, "bilinear"), std::runtime_error);
}

// ------------------------------------------------------------------------------------------------
// Preprocess
// ------------------------------------------------------------------------------------------------

TEST_CASE("preprocess: x/255 then (x - mean)/std in float32, CHW layout") {
    // HF ViTImageProcessor rescales in float64 then casts to float32; that equals the float32 division for every
    // 8-bit value, so the two definitions agree exactly.
    for (int p = 0; p < 256; ++p) CHECK(float(double(p) * (1.0 / 255.0)) == float(p) / 255.0f);

    Preprocess pp;
    pp.size_w = 2;
    pp.size_h = 1;
    pp.channels = 3;
    pp.mean = {0.5f, 0.25f, 0.0f};
    pp.std = {0.5f, 0.25f, 1.0f};
    const Image8 im = from_pixels(2, 1, 3, {255, 0, 51, 0, 255, 102});
    const std::vector<float> x = preprocess(im, pp);
    REQUIRE(x.size() == 6);
    // channel 0 (R): 255 → (1 - .5)/.5 = 1, 0 → -1
    CHECK(x[0] == 1.0f);
    CHECK(x[1] == -1.0f);
    // channel 1 (G): 0 → (0 - .25)/.25 = -1, 255 → 3
    CHECK(x[2] == -1.0f);
    CHECK(x[3] == 3.0f);
    // channel 2 (B): x/255 exactly
    CHECK(x[4] == 51.0f / 255.0f);
    CHECK(x[5] == 102.0f / 255.0f);

    // Fashion-MNIST style: 1 channel, single mean/std; bit-exact against the formula.
    Preprocess g;
    g.size_w = g.size_h = 2;
    g.channels = 1;
    g.mean = {0.286f};
    g.std = {0.353f};
    const Image8 gi = from_pixels(2, 2, 1, {0, 1, 128, 255});
    const std::vector<float> y = preprocess(gi, g);
    REQUIRE(y.size() == 4);
    for (int i = 0; i < 4; ++i) {
        const float v = float(gi.pixels[i]) / 255.0f;
        CHECK(y[i] == (v - 0.286f) / 0.353f);
    }
}

TEST_CASE("preprocess: converts channels and resizes") {
    Preprocess pp;  // 224x224x3, mean/std 0.5, bilinear
    const Image8 grey = make_image(28, 28, 1, 3);
    const std::vector<float> x = preprocess(grey, pp);
    REQUIRE(x.size() == size_t(3) * 224 * 224);
    const Image8 r = resize_image(convert_channels(grey, 3), 224, 224, "bilinear");
    const size_t plane = size_t(224) * 224;
    for (size_t i = 0; i < plane; i += 997)
        for (int c = 0; c < 3; ++c) CHECK(x[c * plane + i] == (float(r.pixels[i * 3 + c]) / 255.0f - 0.5f) / 0.5f);
    // 3-value mean with a 1-channel model uses the first value; too few values for 3 channels is an error.
    Preprocess one;
    one.size_w = one.size_h = 28;
    one.channels = 1;
    CHECK(preprocess(grey, one).size() == size_t(28) * 28);
    Preprocess two = pp;
    two.mean = {0.5f, 0.5f};
    CHECK_THROWS_WITH_AS(preprocess(grey, two), doctest::Contains("mean has 2 values for 3 channels"),
                         std::runtime_error);
}

TEST_CASE("preprocess: resize then centre crop, as Hugging Face (size then crop_size, offsets floored) and timm (shorter side to floor(size/crop_pct), torchvision's rounding)") {
    // Sizes: the shorter side to shortest_edge, the longer to int(edge * long / short).
    Preprocess se;
    se.shortest_edge = 256;
    CHECK(resized_size(640, 480, se) == std::pair<int, int>{341, 256});
    CHECK(resized_size(480, 640, se) == std::pair<int, int>{256, 341});
    CHECK(resized_size(300, 300, se) == std::pair<int, int>{256, 256});
    Preprocess fixed;
    fixed.resize_w = 256, fixed.resize_h = 250;
    CHECK(resized_size(640, 480, fixed) == std::pair<int, int>{256, 250});
    // Crop offsets: an odd margin floors (HF) or rounds half to even (torchvision: 16.5 -> 16, 17.5 -> 18).
    Image8 ramp;
    ramp.width = 40, ramp.height = 39, ramp.channels = 1;
    for (int y = 0; y < ramp.height; ++y)
        for (int x = 0; x < ramp.width; ++x) ramp.pixels.push_back(uint8_t(x + 100 * (y % 2)));
    // Pixel value: x, plus 100 on odd rows. Margins: 33 columns and 35 rows (crop 7x4), 35 columns (crop 5).
    const Image8 hf = center_crop(ramp, 7, 4, false), tv = center_crop(ramp, 7, 4, true);
    CHECK(hf.width == 7);
    CHECK(hf.height == 4);
    CHECK(hf.pixels[0] == 116);  // x0 = 33 // 2 = 16, y0 = 35 // 2 = 17 (odd)
    CHECK(hf.pixels[7] == 16);   // next row, even
    CHECK(tv.pixels[0] == 16);   // x0 = round(16.5) = 16, y0 = round(17.5) = 18 (even)
    CHECK(tv.pixels[7] == 116);
    CHECK(center_crop(ramp, 5, 4, false).pixels[0] == 117);  // x0 = 35 // 2 = 17
    CHECK(center_crop(ramp, 5, 4, true).pixels[0] == 18);    // x0 = round(17.5) = 18
    CHECK_THROWS_WITH(center_crop(ramp, 41, 4, false), doctest::Contains("smaller than the crop 41x4"));
    // The pipeline: resize then crop equals doing the two steps by hand.
    Preprocess pp;
    pp.size_w = pp.size_h = 24, pp.channels = 1, pp.mean = {0.0f}, pp.std = {1.0f};
    pp.shortest_edge = 28, pp.center_crop = true, pp.crop_round = true;
    const Image8 img = make_image(50, 35, 1, 9);
    const std::vector<float> x = preprocess(img, pp);
    const Image8 by_hand = center_crop(resize_image(img, 40, 28, "bilinear"), 24, 24, true);
    REQUIRE(x.size() == by_hand.pixels.size());
    for (size_t i = 0; i < x.size(); ++i) CHECK(x[i] == float(by_hand.pixels[i]) / 255.0f);
    // Without a crop, a resize that does not give the model's size is an error that says so.
    Preprocess nocrop = pp;
    nocrop.center_crop = false;
    CHECK_THROWS_WITH(preprocess(img, nocrop), doctest::Contains("resized to 40x28 does not give the model's 24x24"));
}

