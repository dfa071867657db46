// Export and reload of quantized models.
//
// A quantized model is written as safetensors in the ORIGINAL checkpoint's naming, so the original
// config.json (and preprocessor_config.json) still describe it:
//
//  * every tensor that is not a Linear weight (tokens, position embedding, LayerNorms, biases) is
//    written as F32 from the quantized model (equal to the original's values, converted from F16/BF16
//    if need be, except where RepQ-ViT reparameterisation changed LayerNorm affines and biases);
//    tensors the model ignores (a Hugging Face pooler) are copied as they are;
//  * each Linear weight `X.weight` is replaced by
//      - uniform weights: `X.weight_q` the integer codes and `X.weight_scale` F32 [rows] (one scale per
//        output channel) or [1] (per tensor); value = code · scale (symmetric: zero point 0).
//        Codes of b < 8 bits: packing "int<b>" (int2 … int7), U8 [out, ceil(in·b/8)], each row a
//        little-endian bit string of b-bit two's-complement codes, unused tail bits 0 (int4: two nibbles
//        per byte, the low nibble is the even column). Codes of 8 bits: packing "int8", I8 [out, in].
//        (Format version 1 knew int4 and int8 only; version 2 reads both.)
//      - power-of-two weights: `X.weight_levels` F32 [rows, L] (each row ascending, rows as for the
//        scales) and `X.weight_q` the level indices: packing "index4" (U8 [out, ceil(in/2)], unsigned
//        nibbles, low = even column) when L ≤ 16, else "index8" (U8 [out, in]); value = levels[index].
//    `in` is the flattened input size (C·P·P for the patch embedding, whose original weight is 4-D);
//    the original shape is kept in the metadata. Hugging Face checkpoints store q, k, v separately:
//    the fused qkv Linear is split back into `...query`, `...key`, `...value` (rows q, k, v); its
//    per-channel scales/levels are split with the rows, a per-tensor quantizer is written to all three.
//  * `__metadata__` keeps the original's entries ("format": "pt") and adds "bitlens.quantization",
//    a JSON string:
//      {"version": 1,
//       "config": config_json(cfg),
//       "linears": [ per Linear in ViT::linears() order:
//          {"name", "tensors": [source tensor prefixes], "shapes": [original weight shapes],
//           "out", "in", "bits", "type": "uniform"|"pow2", "granularity": "channel"|"tensor",
//           "packing": "int2"…"int8"|"index4"|"index8", "symmetric", "qmin", "qmax", "levels" (pow2)} ],
//       "activations": [ per activation point in ViT::points order:
//          {"point", "kind", "on", "quantizer": {"type", "bits", and the fields of its type — uniform:
//           symmetric, scale, zero, qmin, qmax; log2: scale, table, thresholds; sulq: table, thresholds,
//           eta, log_min, log_delta, round_exponent; pow2: table, thresholds, n1, n2 — plus any other
//           Quantizer field that differs from its default}} ]}
//    Floats are written with the fewest significant digits (≤ 9) that read back as the same float,
//    doubles with the shortest round-trip form: the Quantizer objects are rebuilt bit for bit.
//
// Reloading dequantizes every `X.weight_q` back to an F32 `X.weight` (bit-identical to the fake-
// quantized weights of the exported QuantizedViT), loads the model with load_model() and rebuilds
// cfg, wq, wbits, act_on and aq from the metadata. Errors name the tensor or metadata field.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "config.h"
#include "ptq.h"
#include "safetensors.h"

namespace bitlens {

inline constexpr const char* kQuantizationMetadataKey = "bitlens.quantization";

// `original`: the checkpoint `q` was quantized from (its naming, shapes and ignored tensors).
std::vector<uint8_t> export_quantized(const QuantizedViT& q, const SafeTensors& original);

// Every tensor the model was loaded from, as F32 under the checkpoint's own names (Hugging Face's separate
// query/key/value), in `original`'s order; tensors the model ignores (a pooler) are left out. A tensor keeps
// `original`'s shape when it holds as many values (the Conv2d patch weight [D, C, P, P], tokens [1, 1, D]);
// a Linear pruned since (prune_structure: q/k/v, proj, fc1, fc2 and their biases) takes its own shape,
// weight [out / sources, in] and bias [out / sources] (a Hugging Face fused qkv has 3 sources). Any other
// difference in size is an error naming the tensor. For FP32 exports of a trained or pruned model, and for
// gradients held in a ViT-shaped struct (train::zeros_like).
SafeTensors f32_checkpoint(const ViT& m, const SafeTensors& original);

// A model directory's files for an FP32 model, pruned or not (bitlens prune --out):
//  * safetensors: f32_checkpoint(m, original) plus the tensors the model ignores (a pooler) as they were, with
//    `original`'s __metadata__ ("format": "pt");
//  * config_json: src.config_json (Hugging Face or timm, keys in their order) with the pruning fields of
//    m.cfg, indented by 2, empty when src has none:
//      "pruned_heads": {"<layer>": [removed heads, ascending]} — transformers' own key and convention
//        (ViTConfig/DeiTConfig, PreTrainedModel.prune_heads): the heads' indices in the UNPRUNED model, so
//        pruning a pruned model again adds to the lists; layers with no head removed are left out;
//      "bitlens_mlp_dims": [one MLP width per layer, in layer order] — BitLens's own field: neither
//        transformers' nor timm's configs can give layers different MLP widths (intermediate_size and
//        mlp_ratio stay the unpruned model's);
//    both are absent for an unpruned model (and removed if the source had them). A source without
//    config.json (the config inferred from the tensors) cannot record pruning: a pruned model throws
//    "<file>: has no config.json to record the pruned heads and MLP widths in; ...";
//  * preprocessor_json: src.preprocessor_json as it was.
// `original`: the FP32/FP16 checkpoint m was loaded from (a quantized export is refused).
struct Fp32Export {
    std::vector<uint8_t> safetensors;
    std::string config_json, preprocessor_json;  // empty: no such file
};
Fp32Export export_fp32(const ViT& m, const ModelSource& src, const SafeTensors& original);
bool is_quantized_checkpoint(const SafeTensors& st);
QuantizedViT load_quantized(const ModelSource& src);
// The same from tensors already parsed (src.safetensors is then ignored; its name is used in errors).
QuantizedViT load_quantized(const ModelSource& src, const SafeTensors& st);

// A checkpoint of either kind, chosen by its metadata: FP32 (F16, BF16) weights, or a BitLens quantized export.
struct AnyModel {
    LoadedModel fp;                 // an FP32 checkpoint's model; left empty for a quantized export
    std::optional<QuantizedViT> q;  // a quantized export: its model (dequantized weights) and recipe
    bool quantized() const { return q.has_value(); }
    const ViT& vit() const { return q ? q->model : fp.vit; }  // the model, either kind
    std::string dtype() const { return q ? "quantized" : fp.source_dtype; }
    // The FP32 model for `what` ("quantize", "sweep", ...). A quantized export throws
    // "<what>: this model is already quantized (<config>); start from its FP32/FP16 original".
    const LoadedModel& fp32(const std::string& what) const;
};
AnyModel load_any(const ModelSource& src);
AnyModel load_any(const ModelSource& src, const SafeTensors& st);  // st: src's tensors, already parsed
// An FP32 checkpoint for `what` ("bitlens quantize", ...). A quantized export is refused before it is loaded:
// "<what>: <file> is already quantized; start from its FP32/FP16 original".
LoadedModel load_fp32(const ModelSource& src, const std::string& what);
LoadedModel load_fp32(const ModelSource& src, const SafeTensors& st, const std::string& what);

// Sizes of what export_quantized writes, without the safetensors header and the recipe:
// one Linear's tensors (codes, scales or levels) for the given quantizers, and every F32 tensor of the
// model (tokens, position embedding, LayerNorms, biases). QuantizedViT::model_bytes() is their sum.
size_t linear_payload_bytes(const Linear& l, const std::vector<Quantizer>& wq);
size_t fp32_payload_bytes(const ViT& m);

// Building blocks, exposed for the tests.
// codes: rows × cols, each fitting `bits` bits (two's complement, or unsigned) → rows × ceil(cols·bits/8)
// bytes: each row a little-endian bit string, code c in bits [c·bits, (c+1)·bits), the tail bits 0.
// With bits = 4 this is the int4 nibble layout (low nibble = even column).
std::vector<uint8_t> pack_bits(const std::vector<int32_t>& codes, size_t rows, size_t cols, int bits);
// The inverse, sign-extended when `is_signed`. Throws naming the row when a row's tail bits are not 0.
std::vector<int32_t> unpack_bits(const uint8_t* bytes, size_t rows, size_t cols, int bits, bool is_signed);
inline size_t packed_row_bytes(size_t cols, int bits) { return (cols * size_t(bits) + 7) / 8; }
nlohmann::json quantizer_json(const Quantizer& q);
Quantizer quantizer_from_json(const nlohmann::json& j, const std::string& what);

}  // namespace bitlens
