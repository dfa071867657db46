// Image probing (probe_image) and decoding (PNG, JPEG, BMP, GIF through stb_image, with BitLens's header and JPEG segment checks) and
// preprocessing: the input is the encoded image; an image that decodes is prepared for one of three model
// pipelines (chosen by the input's size mod 3): Hugging Face ViT 28×28 grey bilinear, DeiT resize 32×32 +
// centre crop 28 RGB bicubic, timm shortest edge 24 + rounded crop 20 nearest. Seeds: tests/fuzz/corpus/image/.
#include <exception>

#include "fuzz_util.h"
#include "image.h"

using namespace bitlens;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // probe_image (the page's "is this an image?") never throws, and agrees with the decoder on what it decodes.
    const ImageInfo info = probe_image(data, size);
    try {
        const Image8 img = decode_image(data, size, "fuzz input");
        if (img.pixels.size() != size_t(img.width) * img.height * img.channels) __builtin_trap();
        if (info.format.empty() || info.width != img.width || info.height != img.height) __builtin_trap();
        Preprocess pp;
        switch (size % 3) {
            case 0:
                pp.size_h = pp.size_w = 28, pp.channels = 1, pp.mean = {0.286f}, pp.std = {0.353f};
                break;
            case 1:
                pp.size_h = pp.size_w = 28, pp.resize_h = pp.resize_w = 32, pp.center_crop = true, pp.resample = "bicubic";
                break;
            default:
                pp.size_h = pp.size_w = 20, pp.shortest_edge = 24, pp.center_crop = true, pp.crop_round = true,
                pp.resample = "nearest", pp.channels = 1;
        }
        const std::vector<float> x = preprocess(img, pp);
        if (x.size() != size_t(pp.channels) * pp.size_h * pp.size_w) __builtin_trap();
    } catch (const std::exception&) {
    }
    return 0;
}
