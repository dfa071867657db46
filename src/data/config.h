// ViT architecture and preprocessing, from Hugging Face's config.json (+ preprocessor_config.json),
// timm's hub config.json, or inferred from the tensors where that is unambiguous.
#pragma once
#include <map>

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "image.h"
#include "safetensors.h"

namespace bitlens {

enum class Naming { HfVit, HfDeit, Timm };
const char* naming_name(Naming n);

struct ViTConfig {
    Naming naming = Naming::Timm;
    std::string config_source;   // "Hugging Face config.json", "timm config.json", "inferred from tensors"
    std::string architecture;    // e.g. "ViTForImageClassification", "deit_tiny_patch16_224"
    int image_h = 224, image_w = 224, patch = 16, channels = 3;
    int hidden = 192, depth = 12, heads = 3, mlp_dim = 768, num_classes = 1000;
    float ln_eps = 1e-6f;
    bool gelu_tanh = false;
    bool qkv_bias = true;
    bool dist_token = false;   // a distillation token follows the class token
    bool dist_head = false;    // a second classifier on the distillation token, averaged at inference
    bool avg_pool = false;     // timm global_pool="avg": mean of patch tokens, then fc_norm
    std::vector<std::string> labels;  // num_classes names ("LABEL_i" / "i" when unknown)
    bool labels_known = false;        // labels came from the config rather than defaults
    Preprocess pp;
    // Structured pruning (bitlens prune), from config.json: `pruned_heads`, the Hugging Face transformers key
    // ({"layer": [original indices of the removed heads]}, also read from timm configs), and `bitlens_mlp_dims`
    // (each block's MLP width, a BitLens field: neither transformers nor timm configs express it). `heads` and
    // `mlp_dim` stay the unpruned model's, so head_dim() is unchanged.
    std::vector<std::vector<int>> pruned_heads;  // per block, ascending (empty: nothing pruned)
    std::vector<int> mlp_dims;                   // per block (empty: mlp_dim in every block)

    int grid_h() const { return image_h / patch; }
    int grid_w() const { return image_w / patch; }
    int num_patches() const { return grid_h() * grid_w(); }
    int prefix_tokens() const { return 1 + (dist_token ? 1 : 0); }
    int tokens() const { return num_patches() + prefix_tokens(); }
    int head_dim() const { return hidden / heads; }
    int block_heads(size_t b) const { return heads - (pruned_heads.empty() ? 0 : int(pruned_heads[b].size())); }
    int block_attn_dim(size_t b) const { return block_heads(b) * head_dim(); }  // q, k, v and context width
    int block_mlp(size_t b) const { return mlp_dims.empty() ? mlp_dim : mlp_dims[b]; }
    bool pruned() const;          // some block has fewer heads or a narrower MLP than heads / mlp_dim
    int max_block_mlp() const;    // the widest MLP (workspace sizes)
};

// The config fields of a pruned model (pruned_heads, bitlens_mlp_dims) written into `config` (a config.json
// object in the checkpoint's own format; the fields are removed when nothing is pruned).
void write_pruning(nlohmann::json& config, const ViTConfig& c);

struct ModelSource {
    std::vector<uint8_t> safetensors;
    std::string safetensors_name = "model.safetensors";
    std::string config_json;          // may be empty
    std::string config_name = "config.json";
    std::string preprocessor_json;    // may be empty
    std::string preprocessor_name = "preprocessor_config.json";
    int heads_override = 0;           // used when no config gives the number of heads
};

// Reads model.safetensors, config.json and preprocessor_config.json from a directory, or the
// files given (a .safetensors path: config.json and preprocessor_config.json beside it are used when present).
ModelSource read_model_source(const std::string& path);

// Detects the naming from the tensor names, reads the config (or infers it), and checks every
// config field against the tensors: errors name the field, the tensor, expected vs found.
ViTConfig resolve_config(const SafeTensors& st, const ModelSource& src);

}  // namespace bitlens
