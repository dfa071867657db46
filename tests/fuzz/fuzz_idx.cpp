// IDX data sets, raw or gzipped (BitLens's own gunzip): the input is the images file, then (after kSep) the
// labels file. Seeds: tests/fuzz/corpus/idx/ (Fashion-MNIST's first images and labels, raw and gzipped).
#include <exception>

#include "dataset.h"
#include "fuzz_util.h"

using namespace bitlens;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto parts = fuzz::split_parts(data, size, 2);
    try {
        const Dataset ds = load_idx(fuzz::bytes_of(parts[0]), fuzz::bytes_of(parts[1]), "images.idx", "labels.idx");
        if (ds.labels.size() != ds.images.size()) __builtin_trap();
        for (size_t i = 0; i < ds.size(); ++i) {
            const Image8& im = ds.images[i];
            if (im.channels != 1 || im.pixels.size() != size_t(im.width) * im.height) __builtin_trap();
            if (ds.labels[i] < 0 || size_t(ds.labels[i]) >= ds.class_names.size()) __builtin_trap();
        }
    } catch (const std::exception&) {
    }
    return 0;
}
