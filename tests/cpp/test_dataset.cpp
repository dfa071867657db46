// Tests for src/dataset.{h,cpp}: gzip, IDX, image folders, encoded images, load_dataset.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataset.h"
#include "eval.h"

#include "stb_write.h"

using namespace bitlens;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<uint8_t>;

// Bitwise CRC-32 (independent of the table-driven one in dataset.cpp).
uint32_t crc32_bitwise(const uint8_t* p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) {
        c ^= p[i];
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

void put_be32(Bytes& b, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
}
void put_le32(Bytes& b, uint32_t v) {
    for (int s = 0; s < 32; s += 8) b.push_back(uint8_t(v >> s));
}

Bytes idx_images(uint32_t n, uint32_t h, uint32_t w, const Bytes& pixels, uint32_t magic = 0x803) {
    Bytes b;
    put_be32(b, magic);
    put_be32(b, n);
    put_be32(b, h);
    put_be32(b, w);
    b.insert(b.end(), pixels.begin(), pixels.end());
    return b;
}
Bytes idx_labels(const Bytes& labels, uint32_t magic = 0x801, int64_t count = -1) {
    Bytes b;
    put_be32(b, magic);
    put_be32(b, count < 0 ? uint32_t(labels.size()) : uint32_t(count));
    b.insert(b.end(), labels.begin(), labels.end());
    return b;
}

// Raw deflate of `data` (stb_image_write's zlib stream minus its 2-byte header and 4-byte adler32).
Bytes deflate_raw(const Bytes& data) {
    int len = 0;
    unsigned char* z = stbi_zlib_compress(const_cast<unsigned char*>(data.data()), int(data.size()), &len, 8);
    REQUIRE(z != nullptr);
    REQUIRE(len >= 6);
    Bytes raw(z + 2, z + len - 4);
    STBIW_FREE(z);
    return raw;
}

struct GzOptions {
    std::string name, comment;
    Bytes extra;
    bool header_crc = false;
};

Bytes gzip(const Bytes& data, const GzOptions& o = {}) {
    Bytes g = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};  // ID1 ID2 CM FLG MTIME XFL OS
    uint8_t flg = 0;
    if (!o.extra.empty()) {
        flg |= 0x04;
        g.push_back(uint8_t(o.extra.size()));
        g.push_back(uint8_t(o.extra.size() >> 8));
        g.insert(g.end(), o.extra.begin(), o.extra.end());
    }
    if (!o.name.empty()) {
        flg |= 0x08;
        g.insert(g.end(), o.name.begin(), o.name.end());
        g.push_back(0);
    }
    if (!o.comment.empty()) {
        flg |= 0x10;
        g.insert(g.end(), o.comment.begin(), o.comment.end());
        g.push_back(0);
    }
    if (o.header_crc) flg |= 0x02;
    g[3] = flg;
    if (o.header_crc) {
        const uint32_t c = crc32_bitwise(g.data(), g.size());
        g.push_back(uint8_t(c));
        g.push_back(uint8_t(c >> 8));
    }
    const Bytes d = deflate_raw(data);
    g.insert(g.end(), d.begin(), d.end());
    put_le32(g, crc32_bitwise(data.data(), data.size()));
    put_le32(g, uint32_t(data.size()));
    return g;
}

void append_bytes(void* ctx, void* data, int size) {
    auto* v = static_cast<Bytes*>(ctx);
    const auto* p = static_cast<const uint8_t*>(data);
    v->insert(v->end(), p, p + size);
}

Bytes png_of(int w, int h, int c, uint8_t value) {
    Bytes px(size_t(w) * h * c, value);
    Bytes out;
    REQUIRE(stbi_write_png_to_func(append_bytes, &out, w, h, c, px.data(), w * c) != 0);
    return out;
}

// A pseudo-random payload (compresses a little, not trivially).
Bytes payload(size_t n, uint32_t seed) {
    Bytes b(n);
    uint32_t s = seed;
    for (size_t i = 0; i < n; ++i) {
        s = s * 1664525u + 1013904223u;
        b[i] = uint8_t((s >> 28) * 17);  // 16 distinct values
    }
    return b;
}

#ifndef __EMSCRIPTEN__
struct TempDir {
    fs::path path;
    TempDir() {
        const auto t = std::chrono::steady_clock::now().time_since_epoch().count();
        static int counter = 0;
        path = fs::temp_directory_path() / ("bitlens_dataset_test_" + std::to_string(t) + "_" + std::to_string(++counter));
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& s) const { return path / s; }
};

void write_file(const fs::path& p, const Bytes& b) {
    fs::create_directories(p.parent_path());
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
    REQUIRE(f.good());
}

const char* kFmnistImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
const char* kFmnistLabels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";

void check_fmnist_t10k(const Dataset& ds) {
    REQUIRE(ds.size() == 10000);
    REQUIRE(ds.labels.size() == 10000);
    REQUIRE(ds.class_names.size() == 10);
    CHECK(ds.class_names[0] == "0");
    CHECK(ds.class_names[9] == "9");
    CHECK(ds.labels[0] == 9);  // the first t10k item is an ankle boot
    std::vector<int> per_class(10, 0);
    for (size_t i = 0; i < ds.size(); ++i) {
        const Image8& im = ds.images[i];
        REQUIRE(im.width == 28);
        REQUIRE(im.height == 28);
        REQUIRE(im.channels == 1);
        REQUIRE(im.pixels.size() == 784);
        REQUIRE(ds.labels[i] >= 0);
        REQUIRE(ds.labels[i] < 10);
        ++per_class[ds.labels[i]];
    }
    for (int c = 0; c < 10; ++c) CHECK(per_class[c] == 1000);
}
#endif

}  // namespace

// ------------------------------------------------------------------------------------------------
// gzip
// ------------------------------------------------------------------------------------------------

TEST_CASE("maybe_gunzip: passes non-gzip bytes through") {
    const Bytes raw = {0x00, 0x00, 0x08, 0x03, 1, 2, 3};
    CHECK(maybe_gunzip(raw, "x") == raw);
    CHECK(maybe_gunzip(Bytes{}, "x").empty());
    CHECK(maybe_gunzip(Bytes{0x1f}, "x") == Bytes{0x1f});
}

TEST_CASE("maybe_gunzip: round trips, with every optional header field") {
    const Bytes data = payload(50000, 1);
    CHECK(maybe_gunzip(gzip(data), "a.gz") == data);
    GzOptions o;
    o.name = "file.idx";
    o.comment = "a comment";
    o.extra = {'A', 'B', 2, 0, 'x', 'y'};
    o.header_crc = true;
    CHECK(maybe_gunzip(gzip(data, o), "b.gz") == data);
    // Empty payload, as written by `printf '' | gzip -n` (stb_image_write emits no deflate block for empty input).
    const Bytes empty_gz = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK(maybe_gunzip(empty_gz, "empty.gz").empty());
    const Bytes one = {42};
    CHECK(maybe_gunzip(gzip(one), "one.gz") == one);
}

TEST_CASE("maybe_gunzip: corrupt and truncated input is reported, naming the file") {
    const Bytes data = payload(20000, 2);
    const Bytes gz = gzip(data);

    Bytes truncated(gz.begin(), gz.end() - 100);
    CHECK_THROWS_WITH_AS(maybe_gunzip(truncated, "t.gz"), doctest::Contains("t.gz: gzip: corrupt or truncated"),
                         std::runtime_error);
    Bytes tiny(gz.begin(), gz.begin() + 12);
    CHECK_THROWS_WITH_AS(maybe_gunzip(tiny, "tiny.gz"), doctest::Contains("tiny.gz: gzip: truncated"),
                         std::runtime_error);

    Bytes bad_crc = gz;
    bad_crc[bad_crc.size() - 8] ^= 0x55;
    CHECK_THROWS_WITH_AS(maybe_gunzip(bad_crc, "crc.gz"), doctest::Contains("crc.gz: gzip: CRC32 mismatch"),
                         std::runtime_error);

    Bytes bad_size = gz;
    bad_size[bad_size.size() - 4] ^= 0x01;  // ISIZE off by one
    CHECK_THROWS_WITH_AS(maybe_gunzip(bad_size, "size.gz"), doctest::Contains("size.gz: gzip: corrupt or truncated"),
                         std::runtime_error);

    Bytes method = gz;
    method[2] = 7;
    CHECK_THROWS_WITH_AS(maybe_gunzip(method, "m.gz"), doctest::Contains("m.gz: gzip: unsupported compression method 7"),
                         std::runtime_error);

    GzOptions o;
    o.header_crc = true;
    o.name = "n";
    Bytes hcrc = gzip(data, o);
    hcrc[10] = 'm';  // change the name after the header CRC was computed
    CHECK_THROWS_WITH_AS(maybe_gunzip(hcrc, "h.gz"), doctest::Contains("h.gz: gzip: header CRC16 mismatch"),
                         std::runtime_error);

    // Damage inside the deflate stream: whatever the decoder makes of it, it must not pass the checks.
    for (size_t at : {size_t(40), gz.size() / 2, gz.size() - 20}) {
        Bytes d = gz;
        d[at] ^= 0xA5;
        CAPTURE(at);
        CHECK_THROWS_WITH_AS(maybe_gunzip(d, "d.gz"), doctest::Contains("d.gz: gzip: "), std::runtime_error);
    }
}

// ------------------------------------------------------------------------------------------------
// IDX
// ------------------------------------------------------------------------------------------------

TEST_CASE("load_idx: hand-made IDX, raw and gzipped") {
    // 3 images of 2x3 (h x w), labels 2, 0, 1.
    Bytes px;
    for (int i = 0; i < 18; ++i) px.push_back(uint8_t(i * 10));
    const Bytes images = idx_images(3, 2, 3, px);
    const Bytes labels = idx_labels({2, 0, 1});
    for (bool gz : {false, true}) {
        CAPTURE(gz);
        const Dataset ds = gz ? load_idx(gzip(images), gzip(labels), "i.gz", "l.gz")
                              : load_idx(images, labels, "i", "l");
        REQUIRE(ds.size() == 3);
        CHECK(ds.labels == std::vector<int>{2, 0, 1});
        REQUIRE(ds.class_names.size() == 10);  // "0".."9" for IDX
        CHECK(ds.class_names[2] == "2");
        CHECK(ds.images[1].width == 3);
        CHECK(ds.images[1].height == 2);
        CHECK(ds.images[1].channels == 1);
        CHECK(ds.images[1].pixels == Bytes{60, 70, 80, 90, 100, 110});
    }
    // Labels above 9 extend the class list.
    const Dataset big = load_idx(idx_images(1, 1, 1, {7}), idx_labels({12}), "i", "l");
    CHECK(big.class_names.size() == 13);
    CHECK(big.class_names[12] == "12");
}

TEST_CASE("load_idx: errors name the file and the field") {
    const Bytes px(1000 * 28 * 28, 0);
    const Bytes images = idx_images(1000, 28, 28, px);
    const Bytes labels = idx_labels(Bytes(1000, 1));

    CHECK_THROWS_WITH_AS(load_idx(images, idx_labels(Bytes(1000, 1), 0x803), "images.idx", "labels.idx"),
                         "labels.idx: magic 0x00000803, expected 0x00000801 (labels)", std::runtime_error);
    CHECK_THROWS_WITH_AS(load_idx(labels, images, "labels.idx", "images.idx"),  // swapped files
                         "labels.idx: magic 0x00000801, expected 0x00000803 (images)", std::runtime_error);
    CHECK_THROWS_WITH_AS(load_idx(images, idx_labels(Bytes(999, 1)), "images.idx", "labels.idx"),
                         doctest::Contains("images count 1000 != labels count 999"), std::runtime_error);

    Bytes short_images(images.begin(), images.begin() + 16 + 500000);
    CHECK_THROWS_WITH_AS(load_idx(short_images, labels, "images.idx", "labels.idx"),
                         "images.idx: truncated: header says 1000x28x28 = 784000 bytes of pixels, file has 500000",
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(load_idx(Bytes(images.begin(), images.begin() + 10), labels, "images.idx", "labels.idx"),
                         doctest::Contains("images.idx: truncated: IDX images header needs 16 bytes"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(load_idx(images, idx_labels(Bytes(900, 1), 0x801, 1000), "images.idx", "labels.idx"),
                         "labels.idx: truncated: header says 1000 labels, file has 900 bytes of labels",
                         std::runtime_error);
    // gzip problems surface with the file name too.
    Bytes gz = gzip(images);
    gz.resize(gz.size() - 30);
    CHECK_THROWS_WITH_AS(load_idx(gz, labels, "images.idx.gz", "labels.idx"),
                         doctest::Contains("images.idx.gz: gzip: corrupt or truncated"), std::runtime_error);
}

#ifndef __EMSCRIPTEN__
TEST_CASE("load_idx_files: the real Fashion-MNIST t10k set") {
    REQUIRE_MESSAGE(fs::exists(kFmnistImages), "missing ", kFmnistImages);
    check_fmnist_t10k(load_idx_files(kFmnistImages, kFmnistLabels));
}

TEST_CASE("load_dataset: IDX directory (picks the t10k pair) and IDX images path (finds its labels)") {
    REQUIRE(fs::exists(kFmnistImages));
    check_fmnist_t10k(load_dataset("/usr/share/datasets/fashion-mnist"));
    check_fmnist_t10k(load_dataset(kFmnistImages));
    check_fmnist_t10k(load_dataset(kFmnistImages, kFmnistLabels));

    TempDir tmp;
    // Raw (not gzipped) files found by the directory scan.
    Bytes px;
    for (int i = 0; i < 8; ++i) px.push_back(uint8_t(i));
    write_file(tmp / "mine-images-idx3-ubyte", idx_images(2, 2, 2, px));
    write_file(tmp / "mine-labels-idx1-ubyte", idx_labels({1, 0}));
    const Dataset ds = load_dataset(tmp.path.string());
    CHECK(ds.size() == 2);
    CHECK(ds.labels == std::vector<int>{1, 0});
    // An images file without its labels.
    write_file(tmp / "other" / "x-images-idx3-ubyte.gz", gzip(idx_images(2, 2, 2, px)));
    CHECK_THROWS_WITH_AS(load_dataset((tmp / "other").string()), doctest::Contains("has no labels file"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(load_dataset((tmp / "other" / "x-images-idx3-ubyte.gz").string()),
                         doctest::Contains("no labels file next to it (x-labels-idx1-ubyte.gz)"), std::runtime_error);
    CHECK_THROWS_WITH_AS(load_dataset((tmp / "nope").string()), doctest::Contains("no such file or directory"),
                         std::runtime_error);
}

// ------------------------------------------------------------------------------------------------
// Image folders
// ------------------------------------------------------------------------------------------------

TEST_CASE("load_image_folder: classes and files sorted, non-images and hidden files ignored") {
    TempDir tmp;
    write_file(tmp / "dog" / "b.png", png_of(4, 3, 3, 20));
    write_file(tmp / "dog" / "a.png", png_of(4, 3, 3, 10));
    write_file(tmp / "dog" / "C.PNG", png_of(2, 2, 1, 5));  // extension match is case-insensitive; "C" < "a"
    write_file(tmp / "dog" / "notes.txt", {'h', 'i'});
    write_file(tmp / "dog" / ".hidden.png", {'x'});  // hidden: ignored (would not decode)
    write_file(tmp / "cat" / "z.png", png_of(5, 5, 4, 200));
    write_file(tmp / ".git" / "HEAD.png", {'x'});  // hidden folder: not a class
    write_file(tmp / "README.md", {'#'});          // files at the top level are ignored

    for (const Dataset& ds : {load_image_folder(tmp.path.string()), load_dataset(tmp.path.string())}) {
        REQUIRE(ds.class_names == std::vector<std::string>{"cat", "dog"});
        REQUIRE(ds.size() == 4);
        CHECK(ds.labels == std::vector<int>{0, 1, 1, 1});
        CHECK(ds.images[0].channels == 4);
        CHECK(ds.images[0].pixels[0] == 200);
        CHECK(ds.images[1].pixels[0] == 5);   // dog/C.PNG
        CHECK(ds.images[2].pixels[0] == 10);  // dog/a.png
        CHECK(ds.images[3].pixels[0] == 20);  // dog/b.png
        CHECK(ds.images[3].width == 4);
        CHECK(ds.images[3].height == 3);
    }
}

TEST_CASE("load_image_folder: errors") {
    TempDir tmp;
    const std::string root = tmp.path.string();

    write_file(tmp / "a.png", png_of(2, 2, 1, 1));
    CHECK_THROWS_WITH_AS(load_image_folder(root), doctest::Contains(("dataset " + root + ": no class subfolders").c_str()),
                         std::runtime_error);

    fs::create_directories(tmp / "empty");
    write_file(tmp / "full" / "x.png", png_of(2, 2, 1, 1));
    write_file(tmp / "empty" / "readme.txt", {'x'});
    CHECK_THROWS_WITH_AS(load_image_folder(root),
                         doctest::Contains(("dataset " + root + ": no images in class folder 'empty'").c_str()),
                         std::runtime_error);
    fs::remove_all(tmp / "empty");

    write_file(tmp / "full" / "y.jpg", {'n', 'o', 't', ' ', 'a', ' ', 'j', 'p', 'e', 'g'});
    const std::string bad = (tmp / "full" / "y.jpg").string();
    CHECK_THROWS_WITH_AS(load_image_folder(root), (bad + ": cannot decode image: unknown image type").c_str(),
                         std::runtime_error);

    CHECK_THROWS_WITH_AS(load_image_folder((tmp / "a.png").string()), doctest::Contains("not a directory"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(load_image_folder((tmp / "missing").string()), doctest::Contains("no such file or directory"),
                         std::runtime_error);
}
#endif

// ------------------------------------------------------------------------------------------------
// Encoded images
// ------------------------------------------------------------------------------------------------

TEST_CASE("load_encoded: classes sorted by name, labels follow") {
    const std::vector<Bytes> files = {png_of(2, 2, 1, 1), png_of(3, 1, 3, 2), png_of(1, 1, 1, 3)};
    const Dataset ds = load_encoded(files, {"zebra/1.png", "ant/2.png", "zebra/3.png"}, {"zebra", "ant", "zebra"});
    REQUIRE(ds.class_names == std::vector<std::string>{"ant", "zebra"});
    CHECK(ds.labels == std::vector<int>{1, 0, 1});
    CHECK(ds.images[1].width == 3);
    CHECK(ds.images[1].channels == 3);
    CHECK(ds.images[2].pixels == Bytes{3});

    CHECK_THROWS_WITH_AS(load_encoded({png_of(1, 1, 1, 0), Bytes{1, 2, 3}}, {"ok.png", "broken.png"}, {"a", "b"}),
                         "broken.png: cannot decode image: unknown image type", std::runtime_error);
    CHECK_THROWS_WITH_AS(load_encoded(files, {"a"}, {"a", "b", "c"}), doctest::Contains("3 files but 1 names"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(load_encoded({}, {}, {}), doctest::Contains("no images"), std::runtime_error);
}

TEST_CASE("map_classes: by name in any case, then by letters and digits when one label alone matches, then by number") {
    ViTConfig cfg;
    cfg.num_classes = 5;
    cfg.labels = {"T-shirt/top", "Trouser", "a-b", "a_b", "Ankle boot"};
    cfg.labels_known = true;
    CHECK(map_classes({"t-shirt/top", "TROUSER", "T-shirt_top", "T shirt top", "ankle_boot", "4", "A_B"}, cfg) ==
          std::vector<int>{0, 1, 0, 0, 4, 4, 3});
    // "a b" folds to "ab" like both "a-b" and "a_b": ambiguous, so no match — an error naming it and the labels.
    CHECK_THROWS_WITH_AS(map_classes({"a b"}, cfg),
                         doctest::Contains("dataset class 'a b' is not a class of the model (5 classes: T-shirt/top, Trouser, a-b, a_b, Ankle boot)"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(map_classes({"Jacket"}, cfg), doctest::Contains("dataset class 'Jacket' is not a class"), std::runtime_error);
    CHECK_THROWS_WITH_AS(map_classes({"--"}, cfg), doctest::Contains("dataset class '--' is not a class"), std::runtime_error);
}
