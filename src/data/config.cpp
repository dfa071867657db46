#include "config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "dataset.h"  // read_file_bytes
#include "json_limits.h"
#include "size_limits.h"

namespace bitlens {
using json = nlohmann::json;

const char* naming_name(Naming n) {
    switch (n) {
        case Naming::HfVit: return "Hugging Face ViTForImageClassification";
        case Naming::HfDeit: return "Hugging Face DeiTForImageClassification";
        case Naming::Timm: return "timm vision_transformer";
    }
    return "?";
}

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }

const StTensor* find(const SafeTensors& st, const std::string& name) {
    auto it = st.tensors.find(name);
    return it == st.tensors.end() ? nullptr : &it->second;
}
const StTensor& need(const SafeTensors& st, const std::string& name, const std::string& what) {
    const StTensor* t = find(st, name);
    if (!t) fail(what + ": missing tensor '" + name + "'");
    return *t;
}

json parse_json(const std::string& text, const std::string& what) {
    try {
        json j = parse_json_bounded(text, what);
        if (!j.is_object()) fail(what + ": expected a JSON object");
        return j;
    } catch (const json::exception& e) {
        fail(what + ": not valid JSON: " + e.what());
    }
}

int get_int(const json& j, const char* field, const std::string& what) {
    if (!j.contains(field)) fail(what + ": missing field '" + field + "'");
    const json& v = j[field];
    if (!v.is_number_integer() || v.get<long long>() <= 0 || v.get<long long>() > (1 << 24))
        fail(what + ": field '" + std::string(field) + "' must be a positive integer, found " + v.dump());
    return v.get<int>();
}
int opt_int(const json& j, const char* field, int def, const std::string& what) {
    return j.contains(field) && !j[field].is_null() ? get_int(j, field, what) : def;
}
double opt_num(const json& j, const char* field, double def, const std::string& what) {
    if (!j.contains(field) || j[field].is_null()) return def;
    if (!j[field].is_number()) fail(what + ": field '" + std::string(field) + "' must be a number, found " + j[field].dump());
    return j[field].get<double>();
}
// A JSON number that must be a whole number in [lo, hi], checked as a double before any conversion to int
// (Found 5: input_size [1, 28, 1e60] and img_size [1e10, 28] were converted with get<int>(), undefined).
int int_in(const json& v, long long lo, long long hi, const std::string& field, const std::string& what) {
    const std::string allowed = ", allowed " + std::to_string(lo) + " to " + std::to_string(hi);
    if (!v.is_number()) fail(what + ": " + field + " must be a whole number" + allowed + ", found " + (v.is_primitive() ? v.dump() : v.type_name()));
    const double d = v.is_number_unsigned() ? double(v.get<uint64_t>()) : v.is_number_integer() ? double(v.get<int64_t>()) : v.get<double>();
    if (!(d >= double(lo) && d <= double(hi)) || d != std::floor(d)) fail(what + ": " + field + " is " + v.dump() + allowed);
    return int(d);
}
// A tensor dimension used as a config value, checked against its limit before it becomes an int (Found 5: a
// zero-byte pos_embed of shape [1, 2^31, 0] overflowed 'tokens - prefix').
int tensor_dim(const StTensor& t, size_t axis, const std::string& tensor, const std::string& field, long long hi, const std::string& what) {
    const int64_t d = t.shape[axis];
    if (d < 1 || d > hi)
        fail(what + ": tensor '" + tensor + "' of shape " + shape_str(t.shape) + " gives " + field + " " + std::to_string(d) + ", allowed 1 to " +
             std::to_string(hi) + " (src/base/size_limits.h)");
    return int(d);
}
std::vector<float> float_list(const json& v, const std::string& what, const std::string& field) {
    std::vector<float> out;
    auto num = [&](const json& x) {  // finite and within float's range before the conversion
        if (!x.is_number() || !(std::fabs(x.get<double>()) <= 1e30))
            fail(what + ": field '" + field + "' must be a list of numbers of magnitude at most 1e30, found " + (x.is_primitive() ? x.dump() : x.type_name()));
        return x.get<float>();
    };
    if (v.is_number()) return {num(v)};
    if (!v.is_array()) fail(what + ": field '" + field + "' must be a list of numbers");
    for (const json& x : v) out.push_back(num(x));
    return out;
}

// timm's named sizes, for hub configs without model_args.
bool timm_size(const std::string& arch, ViTConfig& c) {
    struct S { const char* name; int dim, depth, heads; };
    static const S sizes[] = {{"_tiny_", 192, 12, 3}, {"_small_", 384, 12, 6}, {"_base_", 768, 12, 12},
                              {"_large_", 1024, 24, 16}, {"_huge_", 1280, 32, 16}};
    for (const S& s : sizes)
        if (arch.find(s.name) != std::string::npos) {
            c.hidden = s.dim, c.depth = s.depth, c.heads = s.heads, c.mlp_dim = 4 * s.dim;
            return true;
        }
    return false;
}

std::string resample_name(const json& v, const std::string& what) {
    if (v.is_number_integer()) {
        // Compared as a 64-bit value: 4294967298 used to wrap to 2 (bilinear) through get<int>().
        const bool small = v.is_number_unsigned() ? v.get<uint64_t>() <= 3 : v.get<int64_t>() >= 0 && v.get<int64_t>() <= 3;
        switch (small ? v.get<int>() : -1) {
            case 0: return "nearest";
            case 2: return "bilinear";
            case 3: return "bicubic";
            default: fail(what + ": resample " + v.dump() + " is not supported (0 nearest, 2 bilinear, 3 bicubic)");
        }
    }
    if (v.is_string()) {
        std::string s = v.get<std::string>();
        if (s == "nearest" || s == "bilinear" || s == "bicubic") return s;
    }
    fail(what + ": resample/interpolation " + v.dump() + " is not supported (nearest, bilinear, bicubic)");
}

// Every dimension within [1, its limit] (src/base/size_limits.h) before anything is divided or allocated by it:
// once as the config files say (before read_pruning allocates per layer), once more as resolved with the tensors.
void check_dims(const ViTConfig& c, const std::string& what) {
    struct Dim { const char* name; int v; int64_t hi; };
    for (const Dim& d : {Dim{"hidden size", c.hidden, limits::kHidden}, {"depth", c.depth, limits::kDepth}, {"number of heads", c.heads, limits::kHeads},
                         {"patch size", c.patch, limits::kPatch}, {"image height", c.image_h, limits::kModelImageSide},
                         {"image width", c.image_w, limits::kModelImageSide}, {"channels", c.channels, limits::kChannels},
                         {"MLP size", c.mlp_dim, limits::kMlp}, {"number of classes", c.num_classes, limits::kClasses}})
        if (d.v < 1 || d.v > d.hi)
            fail(what + ": " + d.name + " is " + std::to_string(d.v) + ", it must be at least 1 and at most " + std::to_string(d.hi) +
                 " (src/base/size_limits.h)");
}

void read_hf_config(const json& j, const std::string& what, ViTConfig& c) {
    if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
        j["architectures"][0].is_string())
        c.architecture = j["architectures"][0].get<std::string>();
    c.hidden = get_int(j, "hidden_size", what);
    c.depth = get_int(j, "num_hidden_layers", what);
    c.heads = get_int(j, "num_attention_heads", what);
    c.mlp_dim = opt_int(j, "intermediate_size", 4 * c.hidden, what);
    const int image = opt_int(j, "image_size", 224, what);
    c.image_h = c.image_w = image;
    c.patch = opt_int(j, "patch_size", 16, what);
    c.channels = opt_int(j, "num_channels", 3, what);
    const double eps = opt_num(j, "layer_norm_eps", 1e-12, what);
    if (!(eps > 0 && eps <= 1)) fail(what + ": layer_norm_eps is " + j["layer_norm_eps"].dump() + ", allowed (0, 1]");
    c.ln_eps = float(eps);
    const std::string act = j.contains("hidden_act") && j["hidden_act"].is_string() ? j["hidden_act"].get<std::string>() : "gelu";
    if (act == "gelu") c.gelu_tanh = false;
    else if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") c.gelu_tanh = true;
    else fail(what + ": hidden_act '" + act + "' is not supported (gelu, gelu_new, gelu_pytorch_tanh)");
    if (j.contains("qkv_bias") && j["qkv_bias"].is_boolean()) c.qkv_bias = j["qkv_bias"].get<bool>();
    if (j.contains("id2label") && j["id2label"].is_object()) {
        std::map<int, std::string> m;
        for (auto it = j["id2label"].begin(); it != j["id2label"].end(); ++it) {
            int k;
            try { k = std::stoi(it.key()); } catch (...) { fail(what + ": id2label key '" + it.key() + "' is not an integer"); }
            if (!it.value().is_string()) fail(what + ": id2label['" + it.key() + "'] is not a string");
            m[k] = it.value().get<std::string>();
        }
        c.labels.clear();
        for (int i = 0; i < int(m.size()); ++i) {
            if (!m.count(i)) fail(what + ": id2label has no entry for class " + std::to_string(i));
            c.labels.push_back(m[i]);
        }
        c.labels_known = true;
        for (size_t i = 0; i < c.labels.size(); ++i)
            if (c.labels[i] == "LABEL_" + std::to_string(i)) c.labels_known = false;
    }
    check_dims(c, what);  // before allocating per channel
    // HF ViT defaults for preprocessing when preprocessor_config.json is absent.
    c.pp.mean.assign(size_t(c.channels), 0.5f);
    c.pp.std.assign(size_t(c.channels), 0.5f);
}

void read_timm_config(const json& j, const std::string& what, ViTConfig& c) {
    c.architecture = j.contains("architecture") && j["architecture"].is_string() ? j["architecture"].get<std::string>() : "";
    // "..._patch16_224": the digits after the first "patch" and after the last "_" (no std::regex: it recursed
    // per character and overflowed the stack on a name with 50,000 digits).
    auto digits = [&](size_t at, const char* part) {
        size_t e = at;
        while (e < c.architecture.size() && std::isdigit(static_cast<unsigned char>(c.architecture[e]))) ++e;
        if (e == at) return -1;
        if (e - at > 6)
            fail(what + ": architecture '" + c.architecture.substr(0, 40) + (c.architecture.size() > 40 ? "…" : "") + "': its " + part +
                 " has " + std::to_string(e - at) + " digits (at most 6)");
        return std::stoi(c.architecture.substr(at, e - at));
    };
    if (const size_t at = c.architecture.find("patch"); at != std::string::npos)
        if (const int v = digits(at + 5, "patch size"); v >= 0) c.patch = v;
    if (const size_t at = c.architecture.rfind('_');
        at != std::string::npos && at + 1 < c.architecture.size() && c.architecture.find_first_not_of("0123456789", at + 1) == std::string::npos)
        c.image_h = c.image_w = digits(at + 1, "image size");
    const bool named = timm_size(c.architecture, c);
    const json args = j.contains("model_args") && j["model_args"].is_object() ? j["model_args"] : json::object();
    if (!named && !args.contains("embed_dim"))
        fail(what + ": timm config has neither model_args.embed_dim nor a known architecture size (tiny/small/base/large) in '" +
             c.architecture + "'");
    const std::string aw = what + " model_args";
    if (args.contains("img_size")) {
        const json& s = args["img_size"];
        if (s.is_array() && s.size() == 2)
            c.image_h = int_in(s[0], 1, limits::kModelImageSide, "img_size[0]", aw), c.image_w = int_in(s[1], 1, limits::kModelImageSide, "img_size[1]", aw);
        else c.image_h = c.image_w = get_int(args, "img_size", aw);
    }
    c.patch = opt_int(args, "patch_size", c.patch, aw);
    c.channels = opt_int(args, "in_chans", 3, aw);
    c.hidden = opt_int(args, "embed_dim", c.hidden, aw);
    c.depth = opt_int(args, "depth", c.depth, aw);
    c.heads = opt_int(args, "num_heads", c.heads, aw);
    const double ratio = opt_num(args, "mlp_ratio", double(c.mlp_dim) / c.hidden, aw);
    if (!(ratio > 0 && ratio * c.hidden < double(limits::kMlp) + 0.5))
        fail(aw + ": mlp_ratio " + (args.contains("mlp_ratio") ? args["mlp_ratio"].dump() : std::to_string(ratio)) + " × embed_dim " +
             std::to_string(c.hidden) + " is outside the MLP width's allowed 1 to " + std::to_string(limits::kMlp));
    c.mlp_dim = int(std::lround(ratio * c.hidden));
    if (args.contains("qkv_bias") && args["qkv_bias"].is_boolean()) c.qkv_bias = args["qkv_bias"].get<bool>();
    c.ln_eps = 1e-6f;
    std::string pool = j.contains("global_pool") && j["global_pool"].is_string() ? j["global_pool"].get<std::string>() : "token";
    if (args.contains("global_pool") && args["global_pool"].is_string()) pool = args["global_pool"].get<std::string>();
    if (pool != "token" && pool != "avg") fail(what + ": global_pool '" + pool + "' is not supported (token, avg)");
    c.avg_pool = pool == "avg";
    c.num_classes = opt_int(j, "num_classes", 1000, what);
    c.pp.mean = {0.485f, 0.456f, 0.406f};  // timm's ImageNet defaults
    c.pp.std = {0.229f, 0.224f, 0.225f};
    const json pc = j.contains("pretrained_cfg") && j["pretrained_cfg"].is_object() ? j["pretrained_cfg"] : json::object();
    const std::string pw = what + " pretrained_cfg";
    if (pc.contains("input_size")) {
        const json& s = pc["input_size"];
        if (!s.is_array() || s.size() != 3) fail(pw + ": input_size must be [C, H, W], found " + s.dump());
        const int ch = int_in(s[0], 1, limits::kChannels, "input_size[0]", pw), h = int_in(s[1], 1, limits::kModelImageSide, "input_size[1]", pw),
                  w = int_in(s[2], 1, limits::kModelImageSide, "input_size[2]", pw);
        if (ch != c.channels || h != c.image_h || w != c.image_w)
            fail(pw + ": input_size " + s.dump() + " does not match model_args (channels " + std::to_string(c.channels) +
                 ", image " + std::to_string(c.image_h) + "x" + std::to_string(c.image_w) + ")");
    }
    if (pc.contains("mean")) c.pp.mean = float_list(pc["mean"], pw, "mean");
    if (pc.contains("std")) c.pp.std = float_list(pc["std"], pw, "std");
    if (pc.contains("interpolation")) c.pp.resample = resample_name(pc["interpolation"], pw);
    // timm's eval transform: resize to floor(size / crop_pct) (the shorter side, or both sides with
    // crop_mode "squash"), then crop the centre at the model's size (torchvision's rounding).
    if (pc.contains("crop_pct") && !pc["crop_pct"].is_null()) {
        const double pct = opt_num(pc, "crop_pct", 1.0, pw);
        if (!(pct > 0 && pct <= 1)) fail(pw + ": crop_pct must be in (0, 1], found " + pc["crop_pct"].dump());
        const std::string mode = pc.contains("crop_mode") && pc["crop_mode"].is_string() ? pc["crop_mode"].get<std::string>() : "center";
        // The resize target, checked before it becomes an int (Found 5: crop_pct 1e-300 was accepted; Found 6: crop_pct 0.002
        // resized every image to 14000²).
        const double rh = std::floor(double(c.image_h) / pct), rw = std::floor(double(c.image_w) / pct);
        if (std::max(rh, rw) > double(limits::kResizeSide))
            fail(pw + ": crop_pct " + pc["crop_pct"].dump() + " resizes the " + std::to_string(c.image_h) + "x" + std::to_string(c.image_w) +
                 " input to " + (rh < 1e15 ? std::to_string(int64_t(std::max(rh, rw))) : std::string("more than 10^15")) +
                 " per side, more than the limit " + std::to_string(limits::kResizeSide) + " (src/base/size_limits.h)");
        const int sh = int(rh), sw = int(rw);
        if (mode == "center" && sh == sw) c.pp.shortest_edge = sh;
        else if (mode == "center" || mode == "squash") c.pp.resize_h = sh, c.pp.resize_w = sw;
        else fail(pw + ": crop_mode '" + mode + "' is not supported (center, squash)");
        c.pp.center_crop = true, c.pp.crop_round = true;
    }
    if (pc.contains("num_classes")) c.num_classes = opt_int(pc, "num_classes", c.num_classes, pw);
    if (j.contains("label_names") && j["label_names"].is_array()) {
        c.labels.clear();
        for (const json& l : j["label_names"]) {
            if (!l.is_string()) fail(what + ": label_names must be strings, found " + l.dump());
            c.labels.push_back(l.get<std::string>());
        }
        c.labels_known = true;
    }
}

void read_preprocessor(const json& j, const std::string& what, ViTConfig& c) {
    const bool normalize = !j.contains("do_normalize") || j["do_normalize"] == true;
    if (normalize) {
        if (j.contains("image_mean")) c.pp.mean = float_list(j["image_mean"], what, "image_mean");
        if (j.contains("image_std")) c.pp.std = float_list(j["image_std"], what, "image_std");
    } else {
        c.pp.mean.assign(size_t(c.channels), 0.0f);
        c.pp.std.assign(size_t(c.channels), 1.0f);
    }
    if (j.contains("do_rescale") && j["do_rescale"] == false)
        fail(what + ": do_rescale=false is not supported (images are 8-bit and rescaled by 1/255)");
    if (j.contains("rescale_factor") && std::fabs(opt_num(j, "rescale_factor", 0, what) - 1.0 / 255) > 1e-9)
        fail(what + ": rescale_factor " + j["rescale_factor"].dump() + " is not supported (expected 1/255)");
    // Resize to `size` ({height, width}, an integer, or {shortest_edge}), then, with do_center_crop, crop
    // the centre `crop_size`. What comes out must be the model's image size.
    const bool do_resize = !j.contains("do_resize") || j["do_resize"] == true;
    const bool do_crop = j.contains("do_center_crop") && j["do_center_crop"] == true;
    auto hw = [&](const json& s, const std::string& field, int& h, int& w) {
        if (s.is_number()) h = w = int_in(s, 1, limits::kResizeSide, field, what);
        else if (s.is_object() && s.contains("height") && s.contains("width")) h = get_int(s, "height", what + " " + field), w = get_int(s, "width", what + " " + field);
        else return false;
        if (h <= 0 || w <= 0) fail(what + ": " + field + " must be positive, found " + s.dump());
        return true;
    };
    int out_h = c.image_h, out_w = c.image_w;
    if (do_crop) {
        if (!j.contains("crop_size") || !hw(j["crop_size"], "crop_size", out_h, out_w))
            fail(what + ": do_center_crop needs crop_size as an integer or {height, width}" +
                 (j.contains("crop_size") ? ", found " + j["crop_size"].dump() : std::string(", found none")));
        c.pp.center_crop = true;
    }
    if (do_resize && j.contains("size")) {
        const json& s = j["size"];
        int h = 0, w = 0;
        if (s.is_object() && s.contains("shortest_edge") && !s.contains("height")) {
            c.pp.shortest_edge = get_int(s, "shortest_edge", what + " size");
            if (c.pp.shortest_edge <= 0) fail(what + ": size.shortest_edge must be positive, found " + s.dump());
        } else if (hw(s, "size", h, w)) {
            if (!do_crop) out_h = h, out_w = w;
            else c.pp.resize_h = h, c.pp.resize_w = w;
        } else {
            fail(what + ": size must be an integer, {height, width} or {shortest_edge}, found " + s.dump());
        }
    }
    if (out_h != c.image_h || out_w != c.image_w)
        fail(what + ": " + (do_crop ? "crop_size " : "size ") + std::to_string(out_h) + "x" + std::to_string(out_w) +
             " does not match the model's image size " + std::to_string(c.image_h) + "x" + std::to_string(c.image_w));
    if (c.pp.shortest_edge > 0 && !do_crop && c.image_h != c.image_w)
        fail(what + ": size.shortest_edge without a centre crop cannot give the model's " + std::to_string(c.image_h) + "x" +
             std::to_string(c.image_w) + " input");
    if (c.pp.shortest_edge > 0 && !do_crop) c.pp.center_crop = true;  // square images only come out square; others are cropped
    // Resize targets within their limit (Found 6: size 100000² ended in std::bad_alloc naming no field).
    for (const auto& [name, v] : {std::pair<const char*, int>{"size.shortest_edge", c.pp.shortest_edge}, {"size.height", c.pp.resize_h},
                                   {"size.width", c.pp.resize_w}})
        if (v > limits::kResizeSide)
            fail(what + ": " + name + " is " + std::to_string(v) + ", more than the limit " + std::to_string(limits::kResizeSide) +
                 " (src/base/size_limits.h)");
    if (j.contains("resample")) c.pp.resample = resample_name(j["resample"], what);
}

// pruned_heads / bitlens_mlp_dims (see ViTConfig), read once depth, heads and mlp_dim are known.
void read_pruning(const json& j, const std::string& what, ViTConfig& c) {
    if (j.contains("pruned_heads") && !j["pruned_heads"].is_null()) {
        const json& ph = j["pruned_heads"];
        if (!ph.is_object()) fail(what + ": pruned_heads must be an object {\"layer\": [head indices]}, found a " + ph.type_name());
        c.pruned_heads.assign(size_t(c.depth), {});
        for (auto it = ph.begin(); it != ph.end(); ++it) {
            const std::string& k = it.key();
            const bool digits = !k.empty() && k.size() <= 6 && k.find_first_not_of("0123456789") == std::string::npos;
            if (!digits || std::stoi(k) >= c.depth)
                fail(what + ": pruned_heads has layer '" + k.substr(0, 40) + "', expected a layer index from 0 to " + std::to_string(c.depth - 1));
            std::vector<int>& v = c.pruned_heads[size_t(std::stoi(k))];
            if (!it.value().is_array()) fail(what + ": pruned_heads['" + k + "'] must be a list of head indices");
            for (const json& h : it.value()) {
                if (!h.is_number_integer() || h.get<long long>() < 0 || h.get<long long>() >= c.heads)
                    fail(what + ": pruned_heads['" + k + "'] has " + (h.is_primitive() ? h.dump() : std::string(h.type_name())) +
                         ", expected a head index from 0 to " + std::to_string(c.heads - 1));
                v.push_back(h.get<int>());
            }
            std::sort(v.begin(), v.end());
            if (std::adjacent_find(v.begin(), v.end()) != v.end())
                fail(what + ": pruned_heads['" + k + "'] lists head " + std::to_string(*std::adjacent_find(v.begin(), v.end())) + " twice");
            if (int(v.size()) >= c.heads)
                fail(what + ": pruned_heads['" + k + "'] removes all " + std::to_string(c.heads) + " heads of layer " + k +
                     " (at least one must stay)");
        }
    }
    if (j.contains("bitlens_mlp_dims") && !j["bitlens_mlp_dims"].is_null()) {
        const json& md = j["bitlens_mlp_dims"];
        if (!md.is_array() || md.size() != size_t(c.depth))
            fail(what + ": bitlens_mlp_dims must list one MLP width per layer (" + std::to_string(c.depth) + "), found " +
                 (md.is_array() ? std::to_string(md.size()) + " values" : std::string("a ") + md.type_name()));
        for (size_t i = 0; i < md.size(); ++i) {
            const json& v = md[i];
            if (!v.is_number_integer() || v.get<long long>() < 1 || v.get<long long>() > c.mlp_dim)
                fail(what + ": bitlens_mlp_dims[" + std::to_string(i) + "] is " + (v.is_primitive() ? v.dump() : std::string(v.type_name())) +
                     ", expected a width from 1 to the unpruned " + std::to_string(c.mlp_dim));
            c.mlp_dims.push_back(v.get<int>());
        }
    }
}

void check_shape(const StTensor& t, const std::string& name, std::vector<int64_t> expect, const std::string& why,
                 const std::string& what) {
    if (t.shape != expect)
        fail(what + ": tensor '" + name + "' has shape " + shape_str(t.shape) + ", expected " + shape_str(expect) + " (" + why + ")");
}

}  // namespace

bool ViTConfig::pruned() const {
    for (int b = 0; b < depth; ++b)
        if (block_heads(size_t(b)) != heads || block_mlp(size_t(b)) != mlp_dim) return true;
    return false;
}

int ViTConfig::max_block_mlp() const {
    int m = 0;
    for (int b = 0; b < depth; ++b) m = std::max(m, block_mlp(size_t(b)));
    return m;
}

void write_pruning(json& config, const ViTConfig& c) {
    config.erase("pruned_heads"), config.erase("bitlens_mlp_dims");
    json ph = json::object();
    for (size_t b = 0; b < c.pruned_heads.size(); ++b)
        if (!c.pruned_heads[b].empty()) ph[std::to_string(b)] = c.pruned_heads[b];
    if (!ph.empty()) config["pruned_heads"] = ph;
    bool narrower = false;
    for (int b = 0; b < c.depth; ++b) narrower = narrower || c.block_mlp(size_t(b)) != c.mlp_dim;
    if (narrower) {
        json md = json::array();
        for (int b = 0; b < c.depth; ++b) md.push_back(c.block_mlp(size_t(b)));
        config["bitlens_mlp_dims"] = md;
    }
}

ModelSource read_model_source(const std::string& path) {
    namespace fs = std::filesystem;
    ModelSource src;
    fs::path st_path, dir;
    if (fs::is_directory(path)) {
        dir = path;
        st_path = dir / "model.safetensors";
        if (!fs::exists(st_path)) {
            for (const auto& e : fs::directory_iterator(dir))
                if (e.path().extension() == ".safetensors") { st_path = e.path(); break; }
        }
        if (!fs::exists(st_path)) fail(path + ": no .safetensors file in this directory");
    } else {
        if (!fs::exists(path)) fail(path + ": no such file or directory");
        st_path = path;
        dir = st_path.parent_path();
    }
    src.safetensors = read_file_bytes(st_path.string());
    src.safetensors_name = st_path.string();
    auto slurp = [](const fs::path& p) {
        std::vector<uint8_t> b = read_file_bytes(p.string());
        return std::string(b.begin(), b.end());
    };
    if (fs::exists(dir / "config.json")) src.config_json = slurp(dir / "config.json"), src.config_name = (dir / "config.json").string();
    if (fs::exists(dir / "preprocessor_config.json"))
        src.preprocessor_json = slurp(dir / "preprocessor_config.json"), src.preprocessor_name = (dir / "preprocessor_config.json").string();
    return src;
}

ViTConfig resolve_config(const SafeTensors& st, const ModelSource& src) {
    const std::string what = src.safetensors_name;
    ViTConfig c;
    std::string p;  // prefix of the backbone
    if (find(st, "vit.embeddings.cls_token")) c.naming = Naming::HfVit, p = "vit.";
    else if (find(st, "deit.embeddings.cls_token")) c.naming = Naming::HfDeit, p = "deit.";
    else if (find(st, "cls_token")) c.naming = Naming::Timm;
    else
        fail(what + ": not a ViT checkpoint: none of 'vit.embeddings.cls_token', 'deit.embeddings.cls_token', 'cls_token' is present");
    const bool hf = c.naming != Naming::Timm;

    // Config files.
    if (!src.config_json.empty()) {
        json j = parse_json(src.config_json, src.config_name);
        const bool timm_cfg = j.contains("architecture") || j.contains("pretrained_cfg") || j.contains("model_args");
        if (timm_cfg) {
            if (hf) fail(src.config_name + ": a timm config.json, but the tensors use Hugging Face naming ('" + p + "embeddings...')");
            read_timm_config(j, src.config_name, c);
            check_dims(c, src.config_name);
            read_pruning(j, src.config_name, c);
            c.config_source = "timm config.json";
        } else {
            if (!hf) fail(src.config_name + ": a Hugging Face config.json, but the tensors use timm naming ('cls_token', 'blocks.N...')");
            read_hf_config(j, src.config_name, c);  // checks the dimensions itself
            read_pruning(j, src.config_name, c);
            c.config_source = "Hugging Face config.json";
        }
    }
    if (!src.preprocessor_json.empty()) {
        if (src.config_json.empty()) fail(src.preprocessor_name + ": given without a config.json");
        read_preprocessor(parse_json(src.preprocessor_json, src.preprocessor_name), src.preprocessor_name, c);
    }

    // What the tensors say.
    const std::string cls = hf ? p + "embeddings.cls_token" : "cls_token";
    const std::string dist = hf ? p + "embeddings.distillation_token" : "dist_token";
    const std::string pos = hf ? p + "embeddings.position_embeddings" : "pos_embed";
    const std::string proj = hf ? p + "embeddings.patch_embeddings.projection.weight" : "patch_embed.proj.weight";
    const std::string fc1 = hf ? p + "encoder.layer.0.intermediate.dense.weight" : "blocks.0.mlp.fc1.weight";
    const StTensor& tcls = need(st, cls, what);
    if (tcls.shape.size() != 3 || tcls.shape[0] != 1 || tcls.shape[1] != 1)
        fail(what + ": tensor '" + cls + "' should have shape [1, 1, hidden]");
    const int hidden = tensor_dim(tcls, 2, cls, "hidden size", limits::kHidden, what);
    const StTensor& tproj = need(st, proj, what);
    if (tproj.shape.size() != 4 || tproj.shape[2] != tproj.shape[3])
        fail(what + ": tensor '" + proj + "' should have shape [hidden, channels, patch, patch]");
    int depth = 0;
    while (find(st, hf ? p + "encoder.layer." + std::to_string(depth) + ".layernorm_before.weight"
                       : "blocks." + std::to_string(depth) + ".norm1.weight"))
        ++depth;
    if (depth == 0) fail(what + ": no transformer blocks found");
    const StTensor& tfc1 = need(st, fc1, what);
    if (tfc1.shape.size() != 2) fail(what + ": tensor '" + fc1 + "' should be 2-D");
    const bool has_dist = find(st, dist) != nullptr;
    const std::string head_w = c.naming == Naming::HfVit ? "classifier.weight"
                               : c.naming == Naming::HfDeit ? (find(st, "cls_classifier.weight") ? "cls_classifier.weight" : "classifier.weight")
                                                            : "head.weight";
    const StTensor& thead = need(st, head_w, what);
    if (thead.shape.size() != 2) fail(what + ": tensor '" + head_w + "' should be 2-D");
    const StTensor& tpos = need(st, pos, what);
    if (tpos.shape.size() != 3) fail(what + ": tensor '" + pos + "' should have shape [1, tokens, hidden]");
    const int prefix = 1 + (has_dist ? 1 : 0);
    const int patches = tensor_dim(tpos, 1, pos, "tokens", limits::kPatches + prefix, what) - prefix;

    if (src.config_json.empty()) {
        c.config_source = "inferred from tensors";
        c.hidden = hidden;
        c.depth = depth;
        c.channels = tensor_dim(tproj, 1, proj, "channels", limits::kChannels, what);
        c.patch = tensor_dim(tproj, 2, proj, "patch size", limits::kPatch, what);
        c.mlp_dim = tensor_dim(tfc1, 0, fc1, "MLP size", limits::kMlp, what);
        c.num_classes = tensor_dim(thead, 0, head_w, "number of classes", limits::kClasses, what);
        const int g = int(std::lround(std::sqrt(double(std::max(patches, 0)))));
        if (g * g != patches)
            fail(what + ": cannot infer the image size: " + std::to_string(patches) + " patch positions is not a square grid; give a config.json");
        c.image_h = c.image_w = g * c.patch;
        c.ln_eps = hf ? 1e-12f : 1e-6f;
        c.avg_pool = !hf && find(st, "fc_norm.weight");
        if (src.heads_override <= 0)
            fail(what + ": no config.json, and the number of attention heads cannot be seen in the tensors: give a config.json (or --heads N)");
        c.heads = src.heads_override;
        c.pp.mean.assign(size_t(c.channels), hf ? 0.5f : 0.0f);
        c.pp.std.assign(size_t(c.channels), hf ? 0.5f : 1.0f);
        if (!hf && c.channels == 3) c.pp.mean = {0.485f, 0.456f, 0.406f}, c.pp.std = {0.229f, 0.224f, 0.225f};
    } else {
        if (c.naming != Naming::Timm)
            c.num_classes = c.labels.empty() ? tensor_dim(thead, 0, head_w, "number of classes", limits::kClasses, what) : int(c.labels.size());
        if (c.naming == Naming::Timm && find(st, "fc_norm.weight") && !c.avg_pool)
            fail(src.config_name + ": global_pool is 'token' but the checkpoint has 'fc_norm' (average pooling); set global_pool to 'avg'");
    }
    if (src.heads_override > 0) c.heads = src.heads_override;
    c.dist_token = has_dist;
    c.dist_head = find(st, hf ? "distillation_classifier.weight" : "head_dist.weight") != nullptr;
    if (c.naming == Naming::HfDeit && !has_dist) fail(what + ": DeiT checkpoint without '" + dist + "'");

    // Consistency of the config with the tensors.
    const std::string cw = src.config_json.empty() ? what : src.config_name;
    auto mismatch = [&](const std::string& field, long long cfg, const std::string& tensor, long long found) {
        if (cfg != found)
            fail(cw + ": " + field + " is " + std::to_string(cfg) + " but tensor '" + tensor + "' implies " + std::to_string(found));
    };
    mismatch(hf ? "hidden_size" : "embed_dim", c.hidden, cls, hidden);
    mismatch(hf ? "num_hidden_layers" : "depth", c.depth, hf ? p + "encoder.layer.N" : "blocks.N", depth);
    mismatch(hf ? "num_channels" : "in_chans", c.channels, proj, tproj.shape[1]);
    mismatch("patch_size", c.patch, proj, tproj.shape[2]);
    if (c.mlp_dims.empty()) mismatch(hf ? "intermediate_size" : "mlp_ratio * embed_dim", c.mlp_dim, fc1, tfc1.shape[0]);
    else mismatch("bitlens_mlp_dims[0]", c.mlp_dims[0], fc1, tfc1.shape[0]);
    mismatch(hf ? "number of labels (id2label)" : "num_classes", c.num_classes, head_w, thead.shape[0]);
    check_dims(c, cw);
    if (c.image_h % c.patch || c.image_w % c.patch)
        fail(cw + ": image size " + std::to_string(c.image_h) + " is not a multiple of patch_size " + std::to_string(c.patch));
    mismatch("image_size/patch_size (number of patches)", c.num_patches(), pos, patches);
    if (c.hidden % c.heads)
        fail(cw + ": " + (hf ? std::string("num_attention_heads") : std::string("num_heads")) + " " + std::to_string(c.heads) +
             " does not divide hidden size " + std::to_string(c.hidden));
    if (c.labels.empty())
        for (int i = 0; i < c.num_classes; ++i) c.labels.push_back(hf ? "LABEL_" + std::to_string(i) : std::to_string(i));
    if (int(c.labels.size()) != c.num_classes)
        fail(cw + ": " + std::to_string(c.labels.size()) + " label names for " + std::to_string(c.num_classes) + " classes");
    if (int(c.pp.mean.size()) == 1 && c.channels > 1) c.pp.mean.assign(size_t(c.channels), c.pp.mean[0]);
    if (int(c.pp.std.size()) == 1 && c.channels > 1) c.pp.std.assign(size_t(c.channels), c.pp.std[0]);
    if (int(c.pp.mean.size()) != c.channels || int(c.pp.std.size()) != c.channels)
        fail(cw + ": image mean/std have " + std::to_string(c.pp.mean.size()) + "/" + std::to_string(c.pp.std.size()) +
             " values for " + std::to_string(c.channels) + " channels");
    for (float s : c.pp.std)
        if (!(s > 0)) fail(cw + ": image std must be positive");
    c.pp.size_h = c.image_h;
    c.pp.size_w = c.image_w;
    c.pp.channels = c.channels;
    return c;
}

}  // namespace bitlens
