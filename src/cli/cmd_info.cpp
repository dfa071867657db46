// bitlens info: what a checkpoint is.
#include <cstdio>
#include <iostream>

#include "cli.h"
#include "export.h"
#include "model.h"
#include "pruning.h"

namespace bitlens::cli {

int cmd_info(const Args& a) {
    const ModelSource src = model_source(a);
    const AnyModel m = load_any(src);
    const ViT& vit = m.vit();
    json quant = nullptr;
    if (m.quantized())  // a BitLens export: dequantized weights, and the recipe
        quant = {{"config", config_json(m.q->cfg)}, {"model_bytes", src.safetensors.size()}, {"bits_per_weight", m.q->bits_per_weight()}};
    const ViTConfig& c = vit.cfg;
    // Per block: its heads and MLP width (fewer in a pruned model), and every Linear's shape.
    const json layers = train::layers_json(vit);
    json linears = json::array();
    for (const Linear* l : vit.linears()) linears.push_back({{"name", l->name}, {"shape", {l->out, l->in}}, {"bias", !l->bias.empty()}});
    json j = {{"naming", naming_name(c.naming)},
              {"config", c.config_source},
              {"architecture", c.architecture},
              {"dtype", m.dtype()},
              {"parameters", vit.parameter_count()},
              {"image_size", {c.image_h, c.image_w}},
              {"channels", c.channels},
              {"patch_size", c.patch},
              {"hidden_size", c.hidden},
              {"depth", c.depth},
              {"heads", c.heads},
              {"mlp_dim", c.mlp_dim},
              {"pruned", c.pruned()},
              {"layers", layers},
              {"linears", linears},
              {"tokens", c.tokens()},
              {"distillation_token", c.dist_token},
              {"distillation_head", c.dist_head},
              {"pooling", c.avg_pool ? "avg" : "token"},
              {"layer_norm_eps", c.ln_eps},
              {"gelu", c.gelu_tanh ? "tanh" : "erf"},
              {"num_classes", c.num_classes},
              {"labels", c.labels},
              {"preprocess", {{"mean", c.pp.mean}, {"std", c.pp.std}, {"resample", c.pp.resample}}},
              {"quantization_points", vit.points.size()},
              {"ignored_tensors", vit.ignored_tensors},
              {"quantization", quant}};
    if (a.flags.count("json")) {
        std::cout << j.dump() << "\n";
        return 0;
    }
    std::printf("naming:        %s (config: %s)\n", naming_name(c.naming), c.config_source.c_str());
    if (!quant.is_null())
        std::printf("quantized:     %s, %.2f bits per weight, %zu bytes\n", quant["config"]["name"].get<std::string>().c_str(),
                    quant["bits_per_weight"].get<double>(), src.safetensors.size());
    if (!c.architecture.empty()) std::printf("architecture:  %s\n", c.architecture.c_str());
    std::printf("dtype:         %s\nparameters:    %zu\n", m.dtype().c_str(), vit.parameter_count());
    std::printf("input:         %d x %d x %d, patch %d -> %d tokens (%s%s)\n", c.channels, c.image_h, c.image_w, c.patch,
                c.tokens(), c.dist_token ? "class + distillation token" : "class token", c.avg_pool ? ", average pooling" : "");
    std::printf("encoder:       %d blocks, hidden %d, %d heads, mlp %d, LayerNorm eps %g, GELU %s\n", c.depth, c.hidden,
                c.heads, c.mlp_dim, double(c.ln_eps), c.gelu_tanh ? "tanh" : "erf");
    if (c.pruned()) {
        std::string per;
        for (size_t b = 0; b < vit.blocks.size(); ++b)
            per += (b ? ", " : "") + std::to_string(c.block_heads(b)) + "h/" + std::to_string(c.block_mlp(b));
        std::printf("pruned:        heads/mlp per block: %s\n", per.c_str());
    }
    std::printf("classes:       %d%s\n", c.num_classes, c.dist_head ? " (class and distillation heads averaged)" : "");
    std::string labels;
    for (size_t i = 0; i < c.labels.size() && i < 20; ++i) labels += (i ? ", " : "") + c.labels[i];
    std::printf("labels:        %s%s\n", labels.c_str(), c.labels.size() > 20 ? ", ..." : "");
    std::printf("quant points:  %zu activations, %zu weights\n", vit.points.size(), vit.linears().size());
    return 0;
}

}  // namespace bitlens::cli
