// Data sets from folders, and from encoded files with class names (the WASM module's path for a folder or a
// zip picked in the browser): the input is up to 8 files, separated by kSep, each "<relative path>\n<bytes>"
// (path: letters, digits, '.', '_', '-', at most 3 components, no "." or ".."). They are written into a fresh
// temporary folder which load_dataset reads as the CLI does (IDX pairs found by name, or one subfolder of images
// per class: extensions, hidden files, sorting, decoding); the same files go to load_encoded with their first
// path component as the class. Seeds: tests/fuzz/corpus/folder/.
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>

#include "dataset.h"
#include "fuzz_util.h"

using namespace bitlens;
namespace fs = std::filesystem;

namespace {

bool safe_path(const std::string& p) {
    if (p.empty() || p.size() > 64 || p.front() == '/' || p.back() == '/') return false;
    int components = 1;
    for (char c : p) {
        if (c == '/') ++components;
        else if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
    }
    for (size_t at = 0; at <= p.size();) {
        const size_t e = std::min(p.find('/', at), p.size());
        const std::string comp = p.substr(at, e - at);
        if (comp.empty() || comp == "." || comp == "..") return false;
        at = e + 1;
    }
    return components <= 3;
}

// A temporary folder of this process, removed at exit.
struct TempRoot {
    fs::path path;
    TempRoot() {
        std::string t = (fs::temp_directory_path() / "bitlens-fuzz-folder-XXXXXX").string();
        if (!mkdtemp(t.data())) std::abort();
        path = t;
    }
    ~TempRoot() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};
const fs::path& root() {
    static const TempRoot r;
    return r.path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const fs::path dir = root() / "set";
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir);
    std::vector<std::vector<uint8_t>> files;
    std::vector<std::string> names, classes;
    for (const std::string& part : fuzz::split_parts(data, size, 8)) {
        const size_t nl = part.find('\n');
        if (nl == std::string::npos) continue;
        const std::string rel = part.substr(0, nl);
        if (!safe_path(rel)) continue;
        const fs::path p = dir / rel;
        fs::create_directories(p.parent_path(), ec);
        std::ofstream(p, std::ios::binary) << part.substr(nl + 1);
        files.push_back(fuzz::bytes_of(part.substr(nl + 1)));
        names.push_back(rel);
        classes.push_back(rel.substr(0, rel.find('/')));
    }
    try {
        const Dataset ds = load_dataset(dir.string());
        if (ds.labels.size() != ds.images.size()) __builtin_trap();
    } catch (const std::exception&) {
    }
    try {
        const Dataset ds = load_encoded(files, names, classes);
        if (ds.labels.size() != ds.images.size()) __builtin_trap();
    } catch (const std::exception&) {
    }
    fs::remove_all(dir, ec);
    return 0;
}
