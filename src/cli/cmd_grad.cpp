// bitlens grad: gradients of the mean cross-entropy over the first N images (dataset order) w.r.t. every
// parameter, written as F32 safetensors in the checkpoint's own naming and shapes, so anyone can compare
// them with PyTorch (models/grad_dump.py makes the reference this repository's tests hold them to).
#include <cstdio>
#include <fstream>
#include <iostream>

#include "cli.h"
#include "eval.h"
#include "export.h"
#include "qat.h"

namespace bitlens::cli {

int cmd_grad(const Args& a) {
    const ModelSource src = model_source(a);
    const SafeTensors st = parse_safetensors(src.safetensors.data(), src.safetensors.size(), src.safetensors_name);
    const LoadedModel lm = load_fp32(src, st, "bitlens grad");
    const size_t limit = size_t(a.num("limit", 0, 1, 1L << 30));
    if (!limit) throw UsageError("bitlens grad: missing --limit (the number of images, taken in dataset order)");
    const std::string out = a.need("out");
    const PreparedData data = prepare(load_dataset(a.need("data"), a.get("labels")), lm.vit.cfg, limit);
    if (data.n < limit)
        throw std::runtime_error("bitlens grad: --limit " + std::to_string(limit) + " is more than the " + std::to_string(data.n) +
                                 " images of " + a.need("data"));
    const train::GradientResult g = train::gradients(lm.vit, data, data.n, int(a.num("jobs", 1, 1, 256)));
    SafeTensors gs = f32_checkpoint(g.grads, st);
    char loss[40];
    std::snprintf(loss, sizeof loss, "%.17g", g.loss);
    gs.metadata = {{"loss", loss}, {"images", std::to_string(g.images)}, {"what", "d mean cross-entropy / d tensor"},
                   {"model", src.safetensors_name}};
    const std::vector<uint8_t> bytes = serialize_safetensors(gs);
    write_file(out, bytes.data(), bytes.size());
    if (a.flags.count("json")) {
        std::cout << json{{"loss", g.loss}, {"images", g.images}, {"tensors", gs.order.size()}, {"out", out}}.dump() << "\n";
        return 0;
    }
    std::printf("loss %.9g (mean cross-entropy over %zu images)\nwrote %s: %zu gradient tensors, %zu bytes\n", g.loss, g.images,
                out.c_str(), gs.order.size(), bytes.size());
    return 0;
}

}  // namespace bitlens::cli
