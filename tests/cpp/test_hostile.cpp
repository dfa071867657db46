// Hostile inputs found by fuzzing (issue 17's "Found" list), each kept as a regression test: a JPEG whose DHT
// overflows stb_image (1); deeply nested JSON in a config, a safetensors header and a quantized recipe (2); a timm
// architecture name with 50,000 digits (3); a checkpoint whose inferred patch size is 0 (4); sizes beyond int,
// a [1, 2^31, 0] pos_embed, a 0-element tensor, a hidden size of 0 (5); tiny files claiming huge images, resizes,
// datasets or decompressed sizes, checked against src/base/size_limits.h before anything is allocated (6).
// Each is a clear error naming the file, the field, its value and the limit, never a crash.
#include <doctest/doctest.h>

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "dataset.h"
#include "export.h"
#include "image.h"
#include "mixed.h"
#include "sweep.h"
#include "test_util.h"

using namespace bitlens;
using namespace bitlens::test;

namespace {

std::string text_of(const std::string& rel) {
    const std::vector<uint8_t> b = read_file_bytes(src_path(rel));
    return std::string(b.begin(), b.end());
}

std::string nested(size_t depth, const std::string& inner = "1") { return std::string(depth, '[') + inner + std::string(depth, ']'); }

}  // namespace

TEST_CASE("JSON nested tens of thousands deep is refused before it is built: config.json, safetensors header, quantized recipe") {
    ModelSource src = source(kHfModel);
    src.config_json = "{\"hidden_size\": " + nested(80000) + "}";
    CHECK_THROWS_WITH(load_model(src), doctest::Contains("JSON nested deeper than 64 levels"));

    const std::string header = "{\"a\": " + nested(100000) + "}";
    std::vector<uint8_t> file(8);
    for (int i = 0; i < 8; ++i) file[size_t(i)] = uint8_t(uint64_t(header.size()) >> (8 * i));
    file.insert(file.end(), header.begin(), header.end());
    CHECK_THROWS_WITH(parse_safetensors(file.data(), file.size(), "deep.safetensors"),
                      doctest::Contains("deep.safetensors: header: JSON nested deeper than 64 levels"));

    // A real quantized export whose recipe's `version` is nested 100,000 deep.
    const ModelSource hf = source(kHfModel);
    const LoadedModel lm = load_model(hf);
    QuantConfig qc;
    qc.calib_size = 4;
    const PreparedData calib = prepare(load_dataset(src_path("models/data")), lm.vit.cfg, 8);
    SafeTensors st = parse_safetensors(hf.safetensors.data(), hf.safetensors.size(), "x");
    const std::vector<uint8_t> bytes = export_quantized(quantize(lm.vit, calib, qc), st);
    SafeTensors q = parse_safetensors(bytes.data(), bytes.size(), "q.safetensors");
    nlohmann::json recipe = nlohmann::json::parse(q.metadata.at(kQuantizationMetadataKey));
    std::string text = recipe.dump();
    const std::string key = "\"version\":" + recipe["version"].dump();
    REQUIRE(text.find(key) != std::string::npos);
    text.replace(text.find(key), key.size(), "\"version\":" + nested(100000));
    q.metadata[kQuantizationMetadataKey] = text;
    ModelSource qs = hf;
    qs.safetensors = serialize_safetensors(q);
    CHECK_THROWS_WITH(load_quantized(qs), doctest::Contains("JSON nested deeper than 64 levels"));
}

TEST_CASE("a timm architecture with 50,000 digits is an error naming it, not a stack overflow in std::regex") {
    ModelSource src = source(kTimmModel);
    nlohmann::json cfg = nlohmann::json::parse(src.config_json);
    cfg["architecture"] = "deit_patch" + std::string(50000, '7');
    src.config_json = cfg.dump();
    CHECK_THROWS_WITH(load_model(src), doctest::Contains("its patch size has 50000 digits (at most 6)"));
    cfg["architecture"] = "deit_tiny_" + std::string(20000, '1');
    src.config_json = cfg.dump();
    CHECK_THROWS_WITH(load_model(src), doctest::Contains("its image size has 20000 digits (at most 6)"));
    // The ordinary names still give their sizes.
    cfg["architecture"] = "deit_fmnist_distilled_patch7_28";
    src.config_json = cfg.dump();
    CHECK(load_model(src).vit.cfg.patch == 7);
}

TEST_CASE("a checkpoint without config whose patch embedding has a 0-sized kernel: an error, not a division by zero") {
    ModelSource src = source(kTimmModel);
    src.config_json.clear(), src.preprocessor_json.clear();
    src.heads_override = 4;
    SafeTensors st = tensors_of(src);
    StTensor& proj = st.tensors.at("patch_embed.proj.weight");
    proj.shape = {proj.shape[0], 1, 0, 0};
    proj.bytes.clear();
    CHECK_THROWS_WITH(load_model(with_tensors(src, st)), doctest::Contains("tensor 'patch_embed.proj.weight' of shape [64, 1, 0, 0] gives patch size 0, allowed 1 to 1024"));
}

// ---------------------------------------------------------------------------------------------------------------
// Found 1: stb_image's JPEG DHT overflow
// ---------------------------------------------------------------------------------------------------------------

namespace {

// A baseline 8×8 grey JPEG written by hand: all-ones DQT, one DC and one AC Huffman table of a single 1-bit code
// (DC category 0, AC end-of-block), one block whose data is "0" "0" padded with ones: every pixel 128.
std::vector<uint8_t> tiny_jpeg() {
    std::vector<uint8_t> j = {0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x43, 0x00};
    j.insert(j.end(), 64, 1);
    for (uint8_t b : {0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00}) j.push_back(b);
    for (uint8_t cls : {0x00, 0x10}) {  // DHT: class/id, 16 counts (one code of length 1), its symbol 0
        for (uint8_t b : {0xFF, 0xC4, 0x00, 0x14}) j.push_back(b);
        j.push_back(cls), j.push_back(1), j.insert(j.end(), 15, 0), j.push_back(0);
    }
    for (uint8_t b : {0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, 0x3F, 0xFF, 0xD9}) j.push_back(b);
    return j;
}

size_t find_marker(const std::vector<uint8_t>& j, uint8_t m) {
    for (size_t i = 0; i + 1 < j.size(); ++i)
        if (j[i] == 0xFF && j[i + 1] == m) return i;
    return std::string::npos;
}

}  // namespace

TEST_CASE("Found 1: a JPEG whose DHT table declares more than 256 symbols is refused before stb_image overflows values[256]") {
    const std::vector<uint8_t> good = tiny_jpeg();
    const Image8 img = decode_image(good.data(), good.size(), "tiny.jpg");
    CHECK(img.width == 8);
    CHECK(img.height == 8);
    REQUIRE(img.pixels.size() == 64);
    CHECK(img.pixels[0] == 128);

    // The first DHT's 16th count raised to 256 (so 257 symbols), with 256 more symbol bytes and the length to match:
    // consistent lengths, a table stb would overrun.
    std::vector<uint8_t> bad = good;
    const size_t dht = find_marker(bad, 0xC4);
    REQUIRE(dht != std::string::npos);
    bad[dht + 20] = 255, bad[dht + 19] = 1;  // counts: 1 (length 1), 1 (length 15), 255 (length 16) = 257
    bad.insert(bad.begin() + long(dht + 4 + 18), 256, uint8_t(0));
    const size_t len = 0x14 + 256;
    bad[dht + 2] = uint8_t(len >> 8), bad[dht + 3] = uint8_t(len);
    const std::string expected = "evil.jpg: cannot decode image: JPEG DHT segment at byte " + std::to_string(dht) +
                                 ": its 16 code-length counts sum to 257 symbols (at most 256)";
    CHECK_THROWS_WITH(decode_image(bad.data(), bad.size(), "evil.jpg"), doctest::Contains(expected.c_str()));
    // Found by fuzzing (tests/fuzz, fuzz_image): FF fill bytes before SOI, which stb_image skips, took the same file
    // past the check. The good file still decodes with them; the bad one is refused at its DHT, 4 bytes further.
    std::vector<uint8_t> filled = good;
    filled.insert(filled.begin(), 4, uint8_t(0xFF));
    CHECK(decode_image(filled.data(), filled.size(), "filled.jpg").pixels == img.pixels);
    bad.insert(bad.begin(), 4, uint8_t(0xFF));
    const std::string expected_filled = "evil.jpg: cannot decode image: JPEG DHT segment at byte " + std::to_string(dht + 4) +
                                        ": its 16 code-length counts sum to 257 symbols (at most 256)";
    CHECK_THROWS_WITH(decode_image(bad.data(), bad.size(), "evil.jpg"), doctest::Contains(expected_filled.c_str()));

    // Lengths that disagree with the contents or the file.
    std::vector<uint8_t> shortdht = good;
    shortdht[find_marker(shortdht, 0xC4) + 3] = 0x13;  // one byte short of its symbol
    CHECK_THROWS_WITH(decode_image(shortdht.data(), shortdht.size(), "a.jpg"), doctest::Contains("1 symbols declared, 0 bytes left in the segment"));
    std::vector<uint8_t> beyond = good;
    beyond[find_marker(beyond, 0xDB) + 2] = 0x7F;
    CHECK_THROWS_WITH(decode_image(beyond.data(), beyond.size(), "b.jpg"),
                      doctest::Contains("b.jpg: cannot decode image: JPEG segment 219 at byte 2 has length 32579, beyond the end of the file"));
    std::vector<uint8_t> sof = good;
    sof[find_marker(sof, 0xC0) + 3] = 0x0C;
    CHECK_THROWS_WITH(decode_image(sof.data(), sof.size(), "c.jpg"), doctest::Contains("SOF segment at byte"));
    std::vector<uint8_t> dqt = good;
    dqt[find_marker(dqt, 0xDB) + 4] = 0x20;
    CHECK_THROWS_WITH(decode_image(dqt.data(), dqt.size(), "d.jpg"), doctest::Contains("DQT segment at byte 2: precision 2 id 0"));
}

// ---------------------------------------------------------------------------------------------------------------
// Found 5: undefined conversions, overflow, memcpy from null, a hidden size of 0
// ---------------------------------------------------------------------------------------------------------------

namespace {

ModelSource timm_with(const std::function<void(nlohmann::json&)>& edit) {
    ModelSource src = source(kTimmModel);
    nlohmann::json cfg = nlohmann::json::parse(src.config_json);
    edit(cfg);
    src.config_json = cfg.dump();
    return src;
}

}  // namespace

TEST_CASE("Found 5: sizes beyond int in a timm config are errors naming the field, its value and the allowed range") {
    CHECK_THROWS_WITH(load_model(timm_with([](nlohmann::json& c) { c["pretrained_cfg"]["input_size"] = {1, 28, 1e60}; })),
                      doctest::Contains("pretrained_cfg: input_size[2] is 1e+60, allowed 1 to 4096"));
    CHECK_THROWS_WITH(load_model(timm_with([](nlohmann::json& c) { c["model_args"]["img_size"] = {1e10, 28}; })),
                      doctest::Contains("model_args: img_size[0] is 10000000000.0, allowed 1 to 4096"));
    CHECK_THROWS_WITH(load_model(timm_with([](nlohmann::json& c) { c["model_args"]["img_size"] = {28.5, 28}; })),
                      doctest::Contains("img_size[0] is 28.5, allowed 1 to 4096"));
    CHECK_THROWS_WITH(load_model(timm_with([](nlohmann::json& c) { c["pretrained_cfg"]["crop_pct"] = 1e-300; })),
                      doctest::Contains("pretrained_cfg: crop_pct 1e-300 resizes the 28x28 input to more than 10^15 per side, more than the limit 4096"));
    CHECK_THROWS_WITH(load_model(timm_with([](nlohmann::json& c) { c["model_args"]["mlp_ratio"] = 1e300; })),
                      doctest::Contains("mlp_ratio 1e+300 × embed_dim 64 is outside the MLP width's allowed 1 to 65536"));
    CHECK_THROWS_WITH(load_model(timm_with([](nlohmann::json& c) { c["pretrained_cfg"]["mean"] = {1e300}; })),
                      doctest::Contains("field 'mean' must be a list of numbers of magnitude at most 1e30, found 1e+300"));
    // Whole numbers given as 28.0 still load.
    CHECK(load_model(timm_with([](nlohmann::json& c) { c["pretrained_cfg"]["input_size"] = {1.0, 28.0, 28.0}; })).vit.cfg.image_h == 28);
}

TEST_CASE("Found 5: a zero-byte pos_embed of [1, 2^31, 0] and a hidden size of 0 are errors, not an overflow or a model that loads") {
    ModelSource src = source(kTimmModel);
    src.config_json.clear(), src.preprocessor_json.clear();
    src.heads_override = 4;
    SafeTensors st = tensors_of(src);
    st.tensors.at("pos_embed").shape = {1, int64_t(1) << 31, 0};
    st.tensors.at("pos_embed").bytes.clear();
    CHECK_THROWS_WITH(load_model(with_tensors(src, st)),
                      doctest::Contains("tensor 'pos_embed' of shape [1, 2147483648, 0] gives tokens 2147483648, allowed 1 to 65538"));

    st = tensors_of(src);
    st.tensors.at("cls_token").shape = {1, 1, 0};
    st.tensors.at("cls_token").bytes.clear();
    CHECK_THROWS_WITH(load_model(with_tensors(src, st)),
                      doctest::Contains("tensor 'cls_token' of shape [1, 1, 0] gives hidden size 0, allowed 1 to 16384"));
}

TEST_CASE("Found 5: a 0-element tensor converts to an empty vector (no memcpy from null); bytes that disagree with the shape are an error") {
    StTensor t;
    t.dtype = "F32", t.shape = {0, 4};
    CHECK(t.to_f32("empty").empty());
    t.dtype = "BF16";
    CHECK(t.to_f32("empty").empty());
    t.dtype = "I8";
    CHECK_THROWS_WITH(t.to_f32("empty"), doctest::Contains("dtype I8 cannot be read as floating point"));
    t.dtype = "F32", t.shape = {2, 4};
    t.bytes.assign(16, 0);
    CHECK_THROWS_WITH(t.to_f32("w"), doctest::Contains("w: tensor of shape [2, 4] and dtype F32 holds 16 bytes, expected 32"));
}

// ---------------------------------------------------------------------------------------------------------------
// Found 6 and "limits before allocation" (src/base/size_limits.h)
// ---------------------------------------------------------------------------------------------------------------

namespace {

void put_le(std::vector<uint8_t>& v, uint64_t x, int bytes) {
    for (int i = 0; i < bytes; ++i) v.push_back(uint8_t(x >> (8 * i)));
}
void put_be(std::vector<uint8_t>& v, uint64_t x, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) v.push_back(uint8_t(x >> (8 * i)));
}

// A valid 1×1 8-bit grey PNG (pixel 0): signature, IHDR, one IDAT of 10 bytes (zlib of {filter 0, 0}), IEND.
// CRCs are zero: stb_image does not check them.
std::vector<uint8_t> png_1x1() {
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    put_be(png, 13, 4), png.insert(png.end(), {'I', 'H', 'D', 'R'});
    put_be(png, 1, 4), put_be(png, 1, 4), png.insert(png.end(), {8, 0, 0, 0, 0});
    put_be(png, 0, 4);
    const std::vector<uint8_t> idat = {0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01};
    put_be(png, uint32_t(idat.size()), 4), png.insert(png.end(), {'I', 'D', 'A', 'T'}), png.insert(png.end(), idat.begin(), idat.end());
    put_be(png, 0, 4), put_be(png, 0, 4), png.insert(png.end(), {'I', 'E', 'N', 'D'}), put_be(png, 0, 4);
    return png;
}

}  // namespace

TEST_CASE("Found 6: image headers claiming huge sizes are refused before decoding (BMP, PNG, GIF)") {
    // The 1-bit BMP of 6,291,465×2: file header, BITMAPINFOHEADER, a 2-colour palette, a little data.
    std::vector<uint8_t> bmp = {'B', 'M'};
    put_le(bmp, 71, 4), put_le(bmp, 0, 4), put_le(bmp, 62, 4);
    put_le(bmp, 40, 4), put_le(bmp, 6291465, 4), put_le(bmp, 2, 4), put_le(bmp, 1, 2), put_le(bmp, 1, 2);
    put_le(bmp, 0, 4), put_le(bmp, 0, 4), put_le(bmp, 0, 4), put_le(bmp, 0, 4), put_le(bmp, 2, 4), put_le(bmp, 0, 4);
    put_le(bmp, 0, 4), put_le(bmp, 0xFFFFFF, 4);
    bmp.resize(71, 0);
    CHECK_THROWS_WITH(decode_image(bmp.data(), bmp.size(), "wide.bmp"),
                      doctest::Contains("wide.bmp: image is 6291465x2, more than the limit of 16384 per side and 67108864 pixels"));

    // A PNG whose IHDR says 1×16,000,000 (stb reads only the header for its size).
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    put_be(png, 13, 4), png.insert(png.end(), {'I', 'H', 'D', 'R'});
    put_be(png, 1, 4), put_be(png, 16000000, 4), png.insert(png.end(), {8, 0, 0, 0, 0});
    put_be(png, 0, 4);
    CHECK_THROWS_WITH(decode_image(png.data(), png.size(), "tall.png"), doctest::Contains("tall.png: image is 1x16000000, more than the limit"));

    // A GIF whose screen is 20413×16248 (329 MB allocated before it failed).
    std::vector<uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a'};
    put_le(gif, 20413, 2), put_le(gif, 16248, 2), gif.insert(gif.end(), {0, 0, 0, ';'});
    gif.resize(117, 0);
    CHECK_THROWS_WITH(decode_image(gif.data(), gif.size(), "big.gif"), doctest::Contains("big.gif: image is 20413x16248, more than the limit"));
}

TEST_CASE("Found 6: a shortest-edge resize of an extreme aspect ratio is refused before it allocates") {
    Preprocess pp;
    pp.shortest_edge = 28;
    CHECK_THROWS_WITH(resized_size(6291465, 2, pp),
                      doctest::Contains("a 6291465x2 image resized to shortest edge 28 would be 88080510 long, more than the limit 4096"));
    CHECK(resized_size(16384 / 4, 28, pp) == std::pair<int, int>{4096, 28});
    Image8 img;
    img.width = 16384, img.height = 2, img.channels = 1;
    img.pixels.assign(size_t(16384) * 2, 7);
    pp.size_h = pp.size_w = 28, pp.channels = 1, pp.center_crop = true;
    CHECK_THROWS_WITH(preprocess(img, pp), doctest::Contains("would be 229376 long, more than the limit 4096"));
}

TEST_CASE("Found 6: resize targets and config dimensions beyond their limits are errors naming the field, value and limit") {
    CHECK_THROWS_WITH(load_model(timm_with([](nlohmann::json& c) { c["pretrained_cfg"]["crop_pct"] = 0.002; })),
                      doctest::Contains("crop_pct 0.002 resizes the 28x28 input to 14000 per side, more than the limit 4096"));
    ModelSource hf = source(kHfModel);
    nlohmann::json pre = nlohmann::json::parse(hf.preprocessor_json);
    pre["do_center_crop"] = true, pre["crop_size"] = 28, pre["size"] = {{"height", 100000}, {"width", 100000}};
    hf.preprocessor_json = pre.dump();
    CHECK_THROWS_WITH(load_model(hf), doctest::Contains("preprocessor_config.json: size.height is 100000, more than the limit 4096"));
    pre["size"] = {{"shortest_edge", 5000}};
    hf.preprocessor_json = pre.dump();
    CHECK_THROWS_WITH(load_model(hf), doctest::Contains("size.shortest_edge is 5000, more than the limit 4096"));

    hf = source(kHfModel);
    pre = nlohmann::json::parse(hf.preprocessor_json);
    pre["resample"] = 4294967298ULL;  // wrapped to 2 (bilinear) through get<int>()
    hf.preprocessor_json = pre.dump();
    CHECK_THROWS_WITH(load_model(hf), doctest::Contains("resample 4294967298 is not supported (0 nearest, 2 bilinear, 3 bicubic)"));
    pre["resample"] = -4294967294LL;
    hf.preprocessor_json = pre.dump();
    CHECK_THROWS_WITH(load_model(hf), doctest::Contains("resample -4294967294 is not supported"));

    const std::vector<std::pair<std::string, std::string>> fields = {
        {"hidden_size", "hidden size is 100000, it must be at least 1 and at most 16384"},
        {"num_hidden_layers", "depth is 100000, it must be at least 1 and at most 256"},
        {"num_attention_heads", "number of heads is 100000, it must be at least 1 and at most 256"},
        {"patch_size", "patch size is 100000, it must be at least 1 and at most 1024"},
        {"image_size", "image height is 100000, it must be at least 1 and at most 4096"},
        {"intermediate_size", "MLP size is 100000, it must be at least 1 and at most 65536"},
        {"num_channels", "channels is 100000, it must be at least 1 and at most 16"}};
    for (const auto& fm : fields) {
        const std::string& field = fm.first;  // not a structured binding: clang (the sanitizer build) cannot capture those
        const std::string& message = fm.second;
        CAPTURE(field);
        ModelSource s = source(kHfModel);
        nlohmann::json cfg = nlohmann::json::parse(s.config_json);
        cfg[field] = 100000;
        s.config_json = cfg.dump();
        const std::string expected = "config.json: " + message;
        CHECK_THROWS_WITH(load_model(s), doctest::Contains(expected.c_str()));
    }
}

TEST_CASE("Found 6: IDX image counts and dimensions, and gzip's decompressed size, are checked before allocating") {
    std::vector<uint8_t> labels;
    put_be(labels, 0x801, 4), put_be(labels, 10000000, 4);
    std::vector<uint8_t> images;  // the header alone: the count is refused before the sizes are compared
    put_be(images, 0x803, 4), put_be(images, 10000000, 4), put_be(images, 1, 4), put_be(images, 1, 4);
    CHECK_THROWS_WITH(load_idx(images, labels, "many-images-idx3-ubyte", "many-labels-idx1-ubyte"),
                      doctest::Contains("many-images-idx3-ubyte: header says 10000000 images, more than the limit 2000000"));
    images.clear();
    put_be(images, 0x803, 4), put_be(images, 1, 4), put_be(images, 16000, 4), put_be(images, 16000, 4);
    CHECK_THROWS_WITH(load_idx(images, labels, "big-images-idx3-ubyte", "l"),
                      doctest::Contains("big-images-idx3-ubyte: image size 16000x16000 is outside 1 to 16384 per side and 67108864 pixels"));

    // A gzip member of 1.2 MB whose trailer promises 1,207,959,552 bytes (within deflate's 1032:1): refused from the
    // trailer, nothing allocated or inflated. A promise deflate cannot keep stays "corrupt or truncated".
    std::vector<uint8_t> gz = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    gz.resize(gz.size() + 1200000, 0);
    put_le(gz, 0, 4), put_le(gz, 0x48000000u, 4);
    CHECK_THROWS_WITH(maybe_gunzip(gz, "bomb.gz"),
                      doctest::Contains("bomb.gz: gzip: decompresses to 1207959552 bytes (trailer), more than the limit 1073741824"));
    gz.erase(gz.begin() + 10, gz.begin() + 10 + 1000000);
    CHECK_THROWS_WITH(maybe_gunzip(gz, "lie.gz"), doctest::Contains("lie.gz: gzip: corrupt or truncated: trailer says 1207959552 uncompressed bytes"));
}

// Found by the fuzzers of tests/fuzz (sweep, mixed): nlohmann's get<size_t>() / get<long long>() static_cast a
// float such as 1e300, an undefined conversion. Integer fields of sweep parts, sensitivities and budgets are read
// through json_int (src/base/json_limits.h): a non-integer or out-of-range value is an error naming the field.
TEST_CASE("Fuzzing found: integer fields of a sweep part and of mixed-precision sensitivities holding 1e300 or -1 are errors") {
    const nlohmann::json part = nlohmann::json::parse(text_of("tests/fuzz/corpus/sweep/part-1-of-2.json"));
    CHECK_NOTHROW(sweep_part_from_json(part, "part.json"));
    auto refused = [&](const std::function<void(nlohmann::json&)>& edit, const char* message) {
        nlohmann::json j = part;
        edit(j);
        CAPTURE(message);
        CHECK_THROWS_WITH_AS(sweep_part_from_json(j, "part.json"), doctest::Contains(message), std::runtime_error);
    };
    refused([](nlohmann::json& j) { j["eval_n"] = 1e300; }, "part.json: eval_n: expected an integer in [0, 18446744073709551615], found a non-integer number");
    refused([](nlohmann::json& j) { j["pool_n"] = -1; }, "part.json: pool_n: expected an integer in [0, 18446744073709551615], found -1");
    refused([](nlohmann::json& j) { j["part"]["index"] = 4294967297.0; }, "part.json: part.index: expected an integer in [-2147483648, 2147483647], found a non-integer number");
    refused([](nlohmann::json& j) { j["part"]["count"] = 4294967297ULL; }, "part.json: part.count: expected an integer in [-2147483648, 2147483647], found 4294967297");
    refused([](nlohmann::json& j) { j["runs"][0]["confusion"][1][0] = 1e10; }, "part.json: runs.confusion[1][0]: expected an integer in [0, 4294967295]");
    refused([](nlohmann::json& j) { j["spec"]["seeds"] = "2"; }, "part.json: spec.seeds: expected an integer in [-2147483648, 2147483647], found a string");
    refused([](nlohmann::json& j) { j["calibration"][0]["indices"][0] = 1.5; }, "part.json: calibration.indices[0]: expected an integer");

    const std::string seed = text_of("tests/fuzz/corpus/mixed/budget-4");  // sensitivities, then budgets
    const nlohmann::json sens = nlohmann::json::parse(seed.substr(0, seed.find('\n')));
    CHECK_NOTHROW(sensitivities_from_json(sens));
    auto sens_refused = [&](const std::function<void(nlohmann::json&)>& edit, const char* message) {
        nlohmann::json j = sens;
        edit(j);
        CAPTURE(message);
        CHECK_THROWS_WITH_AS(sensitivities_from_json(j), doctest::Contains(message), std::runtime_error);
    };
    sens_refused([](nlohmann::json& j) { j["weights"][0]["values"] = 1e300; }, "sensitivities: 'values': expected an integer in [-9223372036854775808, 9223372036854775807], found a non-integer number");
    sens_refused([](nlohmann::json& j) { j["weights"][0]["values"] = 1LL << 62; }, "sensitivities: 'values' of '");
    sens_refused([](nlohmann::json& j) { j["activations"][0]["candidates"][0] = 2.5; }, "sensitivities: 'candidates'[0]: expected an integer");
    sens_refused([](nlohmann::json& j) { j["fixed_bytes"] = 1e300; }, "sensitivities: 'fixed_bytes': expected an integer");
    sens_refused([](nlohmann::json& j) { j["fixed_bytes"] = 1LL << 62; }, "sensitivities: 'fixed_bytes' must be in [0, 2^50], found 4611686018427387904");
}

// Found by the image fuzzer: a PNG whose IDAT chunk declares 1.7 GB made stb_image reserve that much before
// reading it. Chunk lengths are checked against the bytes left in the file first (check_png_chunks).
TEST_CASE("Fuzzing found: a PNG chunk declaring more bytes than the file holds is refused before stb_image allocates") {
    std::vector<uint8_t> png = png_1x1();
    png[33] = 0x66;               // IDAT's length (bytes 33-36, after the signature and IHDR): 10 → 0x6600000A, 1.7 GB
    png.resize(png.size() - 12);  // and no IEND: IDAT's 10 bytes of data and its CRC follow the chunk header
    CHECK_THROWS_WITH_AS(decode_image(png.data(), png.size(), "liar.png"),
                         doctest::Contains("liar.png: cannot decode image: PNG chunk at byte 33 has length 1711276042, beyond the end of "
                                           "the file (14 bytes left)"),
                         std::runtime_error);
    // The same chunk with its true length decodes: the check refuses only what the file cannot hold.
    const std::vector<uint8_t> ok = png_1x1();
    const Image8 img = decode_image(ok.data(), ok.size(), "ok.png");
    CHECK(img.width == 1);
    CHECK(img.height == 1);
    CHECK(img.pixels == std::vector<uint8_t>{0});
}

// Many images, each within the per-image limit, can still ask for more memory than there is: a folder's or a
// list's decoded bytes together are limited (kDatasetBytes, 4 GiB; a smaller limit here, the same rule).
TEST_CASE("the decoded bytes of a dataset's images together are limited: the error names the file that passes the limit") {
    const std::vector<std::vector<uint8_t>> files(3, png_1x1());  // 1 byte each decoded
    CHECK(load_encoded(files, {"a/1.png", "a/2.png", "b/3.png"}, {"a", "a", "b"}, 3).size() == 3);
    CHECK_THROWS_WITH_AS(load_encoded(files, {"a/1.png", "a/2.png", "b/3.png"}, {"a", "a", "b"}, 2),
                         doctest::Contains("load_encoded: the images decode to more than 2 bytes together (the limit, "
                                           "src/base/size_limits.h), reached at b/3.png"),
                         std::runtime_error);
}

// Found by the image fuzzer: an 830-byte JPEG claiming 7417×7168 (53 MP, within the pixel limit) took 160 MB and
// more than 10 s to "decode" under the sanitizers — stb_image fills what a truncated file lacks. A file shorter
// than half the least its format needs for its pixels is refused before decoding (check_bytes_for_pixels).
TEST_CASE("Fuzzing found: JPEG, PNG and BMP files too short for the pixels they claim are refused as truncated before decoding") {
    const std::vector<uint8_t> jpeg = read_file_bytes(src_path("tests/fuzz/corpus/image/found-jpeg-830-bytes-7417x7168"));
    REQUIRE(jpeg.size() == 830);
    CHECK_THROWS_WITH_AS(decode_image(jpeg.data(), jpeg.size(), "tiny.jpg"),
                         doctest::Contains("tiny.jpg: cannot decode image: a JPEG of 7168x7417 needs at least 51919 bytes, the file has 830 (truncated)"),
                         std::runtime_error);
    // A PNG whose IHDR says 8192×8192 (8-bit grey) and whose IDAT holds 10 bytes.
    std::vector<uint8_t> png = png_1x1();
    png[16] = png[20] = 0, png[17] = png[21] = 0, png[18] = png[22] = 0x20, png[19] = png[23] = 0;  // width, height: 8192
    CHECK_THROWS_WITH_AS(decode_image(png.data(), png.size(), "tall.png"),
                         doctest::Contains("tall.png: cannot decode image: a PNG of 8192x8192 needs at least 4068 bytes, the file has 67 (truncated)"),
                         std::runtime_error);
    // A 24-bit BMP header of 4096×4096 and no pixels.
    std::vector<uint8_t> bmp = {'B', 'M'};
    put_le(bmp, 54, 4), put_le(bmp, 0, 4), put_le(bmp, 54, 4);
    put_le(bmp, 40, 4), put_le(bmp, 4096, 4), put_le(bmp, 4096, 4), put_le(bmp, 1, 2), put_le(bmp, 24, 2);
    for (int i = 0; i < 6; ++i) put_le(bmp, 0, 4);
    CHECK_THROWS_WITH_AS(decode_image(bmp.data(), bmp.size(), "empty.bmp"),
                         doctest::Contains("empty.bmp: cannot decode image: a BMP of 4096x4096 needs at least 1048576 bytes, the file has 54 (truncated)"),
                         std::runtime_error);
    // Real images are far above the floor: the shipped test images still decode (test_image), and so does this 1×1.
    const std::vector<uint8_t> ok = png_1x1();
    CHECK(decode_image(ok.data(), ok.size(), "ok.png").width == 1);
}
