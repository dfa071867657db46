// Datasets: gzip (hand-parsed RFC 1952 around stb_image's raw-deflate decoder), IDX files, image
// folders, and encoded images given as bytes.
//
// The byte-buffer functions (maybe_gunzip, load_idx, load_encoded) work everywhere, including the
// WASM module. The path-based ones (read_file_bytes, load_idx_files, load_image_folder,
// load_dataset) need a filesystem; the WASM build has none (-sFILESYSTEM=0), so there they throw.
#include "dataset.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>

#include "size_limits.h"

#include <stb/stb_image.h>  // stbi_zlib_decode_noheader_buffer, stbi_failure_reason (stb_impl.cpp)

#ifndef __EMSCRIPTEN__
#include <cerrno>
#include <filesystem>
#include <fstream>
#endif

namespace bitlens {

namespace {

std::string hex32(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

uint32_t crc32(const uint8_t* p, size_t n) {
    static uint32_t table[256];
    static const bool init = [] {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return true;
    }();
    (void)init;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t le32(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint32_t be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// gzip
// ------------------------------------------------------------------------------------------------
//
// A single gzip member is expected (what gzip, Python's gzip module and the dataset files produce):
//   header: 1f 8b, CM = 8 (deflate), FLG, MTIME(4), XFL, OS, [FEXTRA: XLEN(2 LE) + data],
//           [FNAME: zero-terminated], [FCOMMENT: zero-terminated], [FHCRC: CRC16 of the header]
//   raw deflate data, then the trailer: CRC32 (LE) and ISIZE (LE, uncompressed size mod 2^32)
//   as the LAST 8 bytes of the input.
// The output buffer is allocated from ISIZE (after a plausibility check: deflate cannot expand more
// than 1032:1, and within limits::kDecompressedBytes) and the decoder may not write past it, so corrupt
// input cannot make it balloon.
// Concatenated members or trailing garbage are reported as corrupt (CRC/size mismatch).
std::vector<uint8_t> maybe_gunzip(const std::vector<uint8_t>& bytes, const std::string& what) {
    if (bytes.size() < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b) return bytes;
    const std::string pre = what + ": gzip: ";
    const size_t n = bytes.size();
    const uint8_t* p = bytes.data();
    if (n < 18)
        throw std::runtime_error(pre + "truncated (" + std::to_string(n) +
                                 " bytes; a gzip file has at least 18)");
    if (p[2] != 8)
        throw std::runtime_error(pre + "unsupported compression method " + std::to_string(p[2]) + " (only 8, deflate)");
    const uint8_t flg = p[3];
    if (flg & 0xE0) throw std::runtime_error(pre + "reserved header flag bits set (" + hex32(flg) + "): corrupt header");
    size_t pos = 10;
    const size_t body_end = n - 8;  // trailer start
    auto need = [&](size_t k, const char* field) {
        if (pos + k > body_end)
            throw std::runtime_error(pre + "truncated in header field " + field + " (file has " + std::to_string(n) +
                                     " bytes)");
    };
    if (flg & 0x04) {  // FEXTRA
        need(2, "FEXTRA length");
        const size_t xlen = size_t(p[pos]) | size_t(p[pos + 1]) << 8;
        pos += 2;
        need(xlen, "FEXTRA");
        pos += xlen;
    }
    for (uint8_t bit : {uint8_t(0x08), uint8_t(0x10)}) {  // FNAME, FCOMMENT: zero-terminated strings
        if (!(flg & bit)) continue;
        const char* field = bit == 0x08 ? "FNAME" : "FCOMMENT";
        while (true) {
            need(1, field);
            if (p[pos++] == 0) break;
        }
    }
    if (flg & 0x02) {  // FHCRC: low 16 bits of the CRC32 of the header bytes before it
        need(2, "FHCRC");
        const uint32_t want = uint32_t(p[pos]) | uint32_t(p[pos + 1]) << 8;
        const uint32_t got = crc32(p, pos) & 0xFFFFu;
        if (want != got)
            throw std::runtime_error(pre + "header CRC16 mismatch (computed " + hex32(got) + ", stored " + hex32(want) +
                                     "): corrupt header");
        pos += 2;
    }
    const uint32_t want_crc = le32(p + n - 8);
    const uint32_t isize = le32(p + n - 4);
    const size_t deflate_len = body_end - pos;
    // Deflate's best case is ~1032:1 (258-byte matches in 2 bits, plus block overhead).
    if (uint64_t(isize) > uint64_t(deflate_len) * 1032u + 64u || isize >= uint32_t(INT_MAX))
        throw std::runtime_error(pre + "corrupt or truncated: trailer says " + std::to_string(isize) +
                                 " uncompressed bytes, impossible from " + std::to_string(deflate_len) +
                                 " bytes of deflate data");
    // A decompression bomb (a trailer deflate could honour, beyond the limit): refused before anything is allocated
    // or inflated. The decoder is never given more room than ISIZE, so a trailer that lies cannot make it balloon.
    if (uint64_t(isize) > uint64_t(limits::kDecompressedBytes))
        throw std::runtime_error(pre + "decompresses to " + std::to_string(isize) + " bytes (trailer), more than the limit " +
                                 std::to_string(limits::kDecompressedBytes) + " (src/base/size_limits.h)");
    std::vector<uint8_t> out(size_t(isize) + 1);  // +1: detect output longer than ISIZE
    if (deflate_len + 8 > size_t(INT_MAX)) throw std::runtime_error(pre + "file too large");
    // The decoder is given the trailer too (like the adler32 after a PNG's zlib stream): stb's bit reader
    // reads ahead and treats a short read as end-of-data; it stops at the final block anyway.
    const int got_len = stbi_zlib_decode_noheader_buffer(reinterpret_cast<char*>(out.data()), int(out.size()),
                                                         reinterpret_cast<const char*>(p + pos),
                                                         int(deflate_len + 8));
    if (got_len < 0) {
        const char* reason = stbi_failure_reason();
        std::string r = reason ? reason : "unknown error";
        if (r == "output buffer limit") r = "more data than the trailer's size " + std::to_string(isize);
        throw std::runtime_error(pre + "corrupt or truncated deflate data (" + r + ")");
    }
    if (uint32_t(got_len) != isize)
        throw std::runtime_error(pre + "corrupt or truncated: decoded " + std::to_string(got_len) +
                                 " bytes, trailer says " + std::to_string(isize));
    out.resize(size_t(isize));
    const uint32_t got_crc = crc32(out.data(), out.size());
    if (got_crc != want_crc)
        throw std::runtime_error(pre + "CRC32 mismatch (computed " + hex32(got_crc) + ", stored " + hex32(want_crc) +
                                 "): file is corrupt or truncated");
    return out;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
#ifdef __EMSCRIPTEN__
    throw std::runtime_error(path + ": reading files is not available in the WASM build (no filesystem)");
#else
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw std::runtime_error(path + ": cannot read: is a directory");
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        const int e = errno;
        throw std::runtime_error(path + ": cannot open: " + std::strerror(e));
    }
    std::vector<uint8_t> bytes;
    uint8_t buf[1 << 16];
    size_t k;
    while ((k = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + k);
    const bool err = std::ferror(f) != 0;
    std::fclose(f);
    if (err) throw std::runtime_error(path + ": read error");
    return bytes;
#endif
}

// ------------------------------------------------------------------------------------------------
// IDX
// ------------------------------------------------------------------------------------------------

Dataset load_idx(const std::vector<uint8_t>& images_bytes, const std::vector<uint8_t>& labels_bytes,
                 const std::string& images_name, const std::string& labels_name) {
    const std::vector<uint8_t> img = maybe_gunzip(images_bytes, images_name);
    const std::vector<uint8_t> lab = maybe_gunzip(labels_bytes, labels_name);

    if (img.size() < 16)
        throw std::runtime_error(images_name + ": truncated: IDX images header needs 16 bytes, file has " +
                                 std::to_string(img.size()));
    const uint32_t img_magic = be32(img.data());
    if (img_magic != 0x00000803u)
        throw std::runtime_error(images_name + ": magic " + hex32(img_magic) + ", expected 0x00000803 (images)");
    const uint32_t n = be32(img.data() + 4), h = be32(img.data() + 8), w = be32(img.data() + 12);
    if (h == 0 || w == 0 || h > limits::kImageSide || w > limits::kImageSide || int64_t(h) * w > limits::kImagePixels)
        throw std::runtime_error(images_name + ": image size " + std::to_string(h) + "x" + std::to_string(w) + " is outside 1 to " +
                                 std::to_string(limits::kImageSide) + " per side and " + std::to_string(limits::kImagePixels) +
                                 " pixels (src/base/size_limits.h)");
    // Found 6: an IDX pair of 2 × 9.8 kB gz held 10M 1×1 images (767 MB of Image8s).
    if (n > limits::kDatasetImages)
        throw std::runtime_error(images_name + ": header says " + std::to_string(n) + " images, more than the limit " +
                                 std::to_string(limits::kDatasetImages) + " (src/base/size_limits.h)");
    const uint64_t npix = uint64_t(h) * w;
    const uint64_t want = uint64_t(n) * npix;
    const uint64_t have = img.size() - 16;
    if (have != want)
        throw std::runtime_error(images_name + ": " + (have < want ? "truncated" : "trailing data") + ": header says " +
                                 std::to_string(n) + "x" + std::to_string(h) + "x" + std::to_string(w) + " = " +
                                 std::to_string(want) + " bytes of pixels, file has " + std::to_string(have));

    if (lab.size() < 8)
        throw std::runtime_error(labels_name + ": truncated: IDX labels header needs 8 bytes, file has " +
                                 std::to_string(lab.size()));
    const uint32_t lab_magic = be32(lab.data());
    if (lab_magic != 0x00000801u)
        throw std::runtime_error(labels_name + ": magic " + hex32(lab_magic) + ", expected 0x00000801 (labels)");
    const uint32_t nl = be32(lab.data() + 4);
    const uint64_t lhave = lab.size() - 8;
    if (lhave != nl)
        throw std::runtime_error(labels_name + ": " + (lhave < nl ? "truncated" : "trailing data") + ": header says " +
                                 std::to_string(nl) + " labels, file has " + std::to_string(lhave) + " bytes of labels");
    if (nl != n)
        throw std::runtime_error(images_name + " / " + labels_name + ": images count " + std::to_string(n) +
                                 " != labels count " + std::to_string(nl));
    if (n == 0) throw std::runtime_error(images_name + ": no images (count 0)");

    Dataset ds;
    ds.images.resize(n);
    ds.labels.resize(n);
    int max_label = 0;
    const uint8_t* pix = img.data() + 16;
    for (uint32_t i = 0; i < n; ++i) {
        Image8& im = ds.images[i];
        im.width = int(w);
        im.height = int(h);
        im.channels = 1;
        im.pixels.assign(pix + i * npix, pix + (i + 1) * npix);
        ds.labels[i] = lab[8 + i];
        max_label = std::max(max_label, ds.labels[i]);
    }
    // "0".."9" (MNIST / Fashion-MNIST), extended if a label is larger.
    const int n_classes = std::max(10, max_label + 1);
    for (int c = 0; c < n_classes; ++c) ds.class_names.push_back(std::to_string(c));
    return ds;
}

Dataset load_idx_files(const std::string& images_path, const std::string& labels_path) {
#ifdef __EMSCRIPTEN__
    throw std::runtime_error(images_path + ": load_idx_files is not available in the WASM build (no filesystem); "
                             "use load_idx with the file bytes");
#else
    return load_idx(read_file_bytes(images_path), read_file_bytes(labels_path), images_path, labels_path);
#endif
}

// ------------------------------------------------------------------------------------------------
// Encoded images / image folders
// ------------------------------------------------------------------------------------------------

namespace {

// The decoded bytes of a dataset's images so far, plus `im`'s (decoded from `file`): beyond kDatasetBytes
// an error naming the file, the total and the limit. Each image is within kImagePixels already, so at most
// one image's worth (≤ 1 GB) is allocated past the limit before it is refused.
void count_decoded(uint64_t& total, const Image8& im, const std::string& file, const std::string& ctx,
                   int64_t limit = limits::kDatasetBytes) {
    total += uint64_t(im.pixels.size());
    if (total > uint64_t(limit))
        throw std::runtime_error(ctx + ": the images decode to more than " + std::to_string(limit) +
                                 " bytes together (the limit, src/base/size_limits.h), reached at " + file +
                                 "; use fewer or smaller images");
}

}  // namespace

Dataset load_encoded(const std::vector<std::vector<uint8_t>>& files, const std::vector<std::string>& file_names,
                     const std::vector<std::string>& class_of_file, int64_t max_decoded_bytes) {
    if (files.size() != file_names.size() || files.size() != class_of_file.size())
        throw std::runtime_error("load_encoded: " + std::to_string(files.size()) + " files but " +
                                 std::to_string(file_names.size()) + " names and " +
                                 std::to_string(class_of_file.size()) + " class names");
    if (files.empty()) throw std::runtime_error("load_encoded: no images");
    if (int64_t(files.size()) > limits::kDatasetImages)
        throw std::runtime_error("load_encoded: " + std::to_string(files.size()) + " images, more than the limit " +
                                 std::to_string(limits::kDatasetImages) + " (src/base/size_limits.h)");
    Dataset ds;
    // Classes sorted by name, as for image folders.
    const std::set<std::string> classes(class_of_file.begin(), class_of_file.end());
    ds.class_names.assign(classes.begin(), classes.end());
    ds.images.reserve(files.size());
    ds.labels.reserve(files.size());
    uint64_t decoded = 0;
    for (size_t i = 0; i < files.size(); ++i) {
        ds.images.push_back(decode_image(files[i].data(), files[i].size(), file_names[i]));
        count_decoded(decoded, ds.images.back(), file_names[i], "load_encoded", max_decoded_bytes);
        const auto it = std::lower_bound(ds.class_names.begin(), ds.class_names.end(), class_of_file[i]);
        ds.labels.push_back(int(it - ds.class_names.begin()));
    }
    return ds;
}

const std::vector<std::string>& image_extensions() {
    static const std::vector<std::string> ext = {".png", ".jpg", ".jpeg", ".bmp", ".gif"};
    return ext;
}

bool has_image_extension_name(const std::string& name) {
    const size_t slash = name.find_last_of('/');
    const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
    const size_t dot = base.find_last_of('.');
    if (dot == std::string::npos || dot == 0) return false;  // as std::filesystem: ".png" alone has no extension
    std::string ext = base.substr(dot);
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return std::find(image_extensions().begin(), image_extensions().end(), ext) != image_extensions().end();
}

#ifndef __EMSCRIPTEN__
namespace {

namespace fs = std::filesystem;

bool has_image_extension(const fs::path& p) { return has_image_extension_name(p.filename().string()); }

bool hidden(const fs::path& p) {
    const std::string name = p.filename().string();
    return !name.empty() && name[0] == '.';
}

// Sorted entries of `dir` (by file name, byte order) that satisfy `keep`.
template <class Keep>
std::vector<fs::path> list_sorted(const fs::path& dir, const std::string& ctx, Keep keep) {
    std::vector<fs::path> out;
    std::error_code ec;
    fs::directory_iterator it(dir, ec), end;
    if (ec) throw std::runtime_error(ctx + ": cannot list " + dir.string() + ": " + ec.message());
    for (; it != end; it.increment(ec)) {
        if (ec) throw std::runtime_error(ctx + ": cannot list " + dir.string() + ": " + ec.message());
        if (!hidden(it->path()) && keep(*it)) out.push_back(it->path());
    }
    if (ec) throw std::runtime_error(ctx + ": cannot list " + dir.string() + ": " + ec.message());
    std::sort(out.begin(), out.end(),
              [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });
    return out;
}

// The labels file that goes with an IDX images file name, or "" if the name is not one.
std::string labels_name_for(const std::string& images_name) {
    for (const char* pat : {"images-idx3", "images.idx3"}) {
        const size_t at = images_name.rfind(pat);
        if (at != std::string::npos) {
            std::string l = images_name;
            l.replace(at, std::strlen(pat), pat[6] == '-' ? "labels-idx1" : "labels.idx1");
            return l;
        }
    }
    return "";
}

bool is_idx_images_name(const std::string& name) {
    for (const char* suf : {"images-idx3-ubyte", "images-idx3-ubyte.gz", "images.idx3-ubyte", "images.idx3-ubyte.gz"}) {
        const size_t k = std::strlen(suf);
        if (name.size() >= k && name.compare(name.size() - k, k, suf) == 0) return true;
    }
    return false;
}

// The existing labels file for an images file: the sibling name, also with ".gz" added or removed.
std::string find_labels_file(const fs::path& images) {
    const std::string lname = labels_name_for(images.filename().string());
    if (lname.empty()) return "";
    std::vector<std::string> cands{lname};
    if (lname.size() > 3 && lname.compare(lname.size() - 3, 3, ".gz") == 0) cands.push_back(lname.substr(0, lname.size() - 3));
    else cands.push_back(lname + ".gz");
    std::error_code ec;
    for (const auto& c : cands) {
        const fs::path p = images.parent_path() / c;
        if (fs::is_regular_file(p, ec)) return p.string();
    }
    return "";
}

}  // namespace
#endif

Dataset load_image_folder(const std::string& dir) {
#ifdef __EMSCRIPTEN__
    throw std::runtime_error("dataset " + dir + ": image folders are not available in the WASM build (no filesystem); "
                             "use load_encoded");
#else
    const std::string ctx = "dataset " + dir;
    std::error_code ec;
    if (!fs::exists(dir, ec)) throw std::runtime_error(ctx + ": no such file or directory");
    if (!fs::is_directory(dir, ec)) throw std::runtime_error(ctx + ": not a directory");
    const auto class_dirs = list_sorted(dir, ctx, [](const fs::directory_entry& e) {
        std::error_code ec2;
        return e.is_directory(ec2);
    });
    if (class_dirs.empty())
        throw std::runtime_error(ctx + ": no class subfolders (expected one subfolder of images per class)");
    Dataset ds;
    uint64_t decoded = 0;
    for (size_t c = 0; c < class_dirs.size(); ++c) {
        const std::string cname = class_dirs[c].filename().string();
        const auto files = list_sorted(class_dirs[c], ctx, [](const fs::directory_entry& e) {
            std::error_code ec2;
            return e.is_regular_file(ec2) && has_image_extension(e.path());
        });
        if (files.empty())
            throw std::runtime_error(ctx + ": no images in class folder '" + cname +
                                     "' (expected .png, .jpg, .jpeg, .bmp or .gif files)");
        ds.class_names.push_back(cname);
        if (int64_t(ds.images.size() + files.size()) > limits::kDatasetImages)
            throw std::runtime_error(ctx + ": more than " + std::to_string(limits::kDatasetImages) + " images (the limit, src/base/size_limits.h)");
        for (const auto& f : files) {
            const std::vector<uint8_t> bytes = read_file_bytes(f.string());
            ds.images.push_back(decode_image(bytes.data(), bytes.size(), f.string()));
            count_decoded(decoded, ds.images.back(), f.string(), ctx);
            ds.labels.push_back(int(c));
        }
    }
    return ds;
#endif
}

Dataset load_dataset(const std::string& path, const std::string& labels_path) {
#ifdef __EMSCRIPTEN__
    (void)labels_path;
    throw std::runtime_error("dataset " + path + ": loading from a path is not available in the WASM build "
                             "(no filesystem); use load_idx or load_encoded");
#else
    const std::string ctx = "dataset " + path;
    std::error_code ec;
    if (!labels_path.empty()) return load_idx_files(path, labels_path);
    if (fs::is_directory(path, ec)) {
        // IDX pairs in the directory?
        const auto images = list_sorted(path, ctx, [](const fs::directory_entry& e) {
            std::error_code ec2;
            return e.is_regular_file(ec2) && is_idx_images_name(e.path().filename().string());
        });
        if (images.empty()) return load_image_folder(path);
        std::vector<std::pair<std::string, std::string>> pairs;
        for (const auto& im : images) {
            const std::string l = find_labels_file(im);
            if (l.empty())
                throw std::runtime_error(ctx + ": " + im.filename().string() + " has no labels file (" +
                                         labels_name_for(im.filename().string()) + ")");
            pairs.emplace_back(im.string(), l);
        }
        // The same set may be present both raw and gzipped: keep one of each stem.
        std::vector<std::pair<std::string, std::string>> uniq;
        std::set<std::string> stems;
        for (const auto& pr : pairs) {
            std::string stem = fs::path(pr.first).filename().string();
            if (stem.size() > 3 && stem.compare(stem.size() - 3, 3, ".gz") == 0) stem.resize(stem.size() - 3);
            if (stems.insert(stem).second) uniq.push_back(pr);
        }
        if (uniq.size() > 1) {
            // Several sets (e.g. train-* and t10k-*): take the test set if exactly one is named so.
            std::vector<std::pair<std::string, std::string>> test;
            for (const auto& pr : uniq) {
                const std::string name = fs::path(pr.first).filename().string();
                if (name.rfind("t10k", 0) == 0 || name.find("test") != std::string::npos) test.push_back(pr);
            }
            if (test.size() != 1) {
                std::string list;
                for (const auto& pr : uniq) list += (list.empty() ? "" : ", ") + fs::path(pr.first).filename().string();
                throw std::runtime_error(ctx + ": several IDX image files (" + list +
                                         "); pass the images file path instead of the directory");
            }
            uniq = test;
        }
        return load_idx_files(uniq[0].first, uniq[0].second);
    }
    if (fs::is_regular_file(path, ec)) {
        const std::string name = fs::path(path).filename().string();
        if (labels_name_for(name).empty())
            throw std::runtime_error(ctx + ": not a directory or an IDX images file (*-images-idx3-ubyte[.gz])");
        const std::string l = find_labels_file(fs::path(path));
        if (l.empty())
            throw std::runtime_error(ctx + ": no labels file next to it (" + labels_name_for(name) +
                                     "); pass the labels path");
        return load_idx_files(path, l);
    }
    throw std::runtime_error(ctx + ": no such file or directory");
#endif
}

}  // namespace bitlens
