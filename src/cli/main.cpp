// bitlens — the native command line.
//   bitlens info --model PATH [--heads N] [--json]
//   bitlens eval --model PATH --data PATH [--labels PATH] [--limit N] [--jobs N] [--heads N] [--json]
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "eval.h"
#include "model.h"
#include "ptq.h"

using namespace bitlens;
using json = nlohmann::json;

namespace {

const char* kUsage =
    "usage:\n"
    "  bitlens info --model PATH [--heads N] [--json]\n"
    "  bitlens eval --model PATH --data PATH [--labels PATH] [--limit N] [--jobs N] [--heads N] [--json]\n"
    "  bitlens quantize --model PATH --calib PATH [--wbits 8] [--abits 8] [--softmax sulq|log2|uniform]\n"
    "                   [--softmax-bits N] [--weights uniform|pow2] [--granularity channel|tensor]\n"
    "                   [--weight-range mse|minmax|percentile] [--act-range mse|minmax|percentile]\n"
    "                   [--sulq-round-exponent] [--no-edges-8bit] [--reparam] [--calib-size 32] [--seed 0]\n"
    "                   [--eval PATH] [--limit N] [--out DIR] [--jobs N] [--json]\n"
    "\n"
    "PATH for --model: a directory with model.safetensors + config.json (+ preprocessor_config.json),\n"
    "or a .safetensors file (config files beside it are used). --data: an image folder (one subfolder\n"
    "per class), a folder with IDX files, or an IDX images file (labels beside it or --labels).\n";

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Args {
    std::string command;
    std::map<std::string, std::string> opts;
    std::set<std::string> flags;

    std::string get(const std::string& k, const std::string& def = "") const {
        auto it = opts.find(k);
        return it == opts.end() ? def : it->second;
    }
    std::string need(const std::string& k) const {
        auto it = opts.find(k);
        if (it == opts.end()) throw UsageError("bitlens " + command + ": missing --" + k);
        return it->second;
    }
    long num(const std::string& k, long def, long lo, long hi) const {
        auto it = opts.find(k);
        if (it == opts.end()) return def;
        char* end = nullptr;
        long v = std::strtol(it->second.c_str(), &end, 10);
        if (it->second.empty() || *end || v < lo || v > hi)
            throw UsageError("--" + k + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
                             ", found '" + it->second + "'");
        return v;
    }
};

Args parse(int argc, char** argv, const std::set<std::string>& valued, const std::set<std::string>& boolean) {
    Args a;
    a.command = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + s + "'");
        std::string k = s.substr(2), v;
        size_t eq = k.find('=');
        if (eq != std::string::npos) v = k.substr(eq + 1), k = k.substr(0, eq);
        if (boolean.count(k)) {
            a.flags.insert(k);
        } else if (valued.count(k)) {
            if (eq == std::string::npos) {
                if (i + 1 >= argc) throw UsageError("--" + k + " needs a value");
                v = argv[++i];
            }
            a.opts[k] = v;
        } else {
            throw UsageError("unknown option --" + k + " for 'bitlens " + a.command + "'");
        }
    }
    return a;
}

int cmd_info(const Args& a) {
    LoadedModel lm = load_model_path(a.need("model"), int(a.num("heads", 0, 1, 4096)));
    const ViTConfig& c = lm.vit.cfg;
    json j = {{"naming", naming_name(c.naming)},
              {"config", c.config_source},
              {"architecture", c.architecture},
              {"dtype", lm.source_dtype},
              {"parameters", lm.vit.parameter_count()},
              {"image_size", {c.image_h, c.image_w}},
              {"channels", c.channels},
              {"patch_size", c.patch},
              {"hidden_size", c.hidden},
              {"depth", c.depth},
              {"heads", c.heads},
              {"mlp_dim", c.mlp_dim},
              {"tokens", c.tokens()},
              {"distillation_token", c.dist_token},
              {"distillation_head", c.dist_head},
              {"pooling", c.avg_pool ? "avg" : "token"},
              {"layer_norm_eps", c.ln_eps},
              {"gelu", c.gelu_tanh ? "tanh" : "erf"},
              {"num_classes", c.num_classes},
              {"labels", c.labels},
              {"preprocess", {{"mean", c.pp.mean}, {"std", c.pp.std}, {"resample", c.pp.resample}}},
              {"quantization_points", lm.vit.points.size()},
              {"ignored_tensors", lm.vit.ignored_tensors}};
    if (a.flags.count("json")) {
        std::cout << j.dump() << "\n";
        return 0;
    }
    std::printf("naming:        %s (config: %s)\n", naming_name(c.naming), c.config_source.c_str());
    if (!c.architecture.empty()) std::printf("architecture:  %s\n", c.architecture.c_str());
    std::printf("dtype:         %s\nparameters:    %zu\n", lm.source_dtype.c_str(), lm.vit.parameter_count());
    std::printf("input:         %d x %d x %d, patch %d -> %d tokens (%s%s)\n", c.channels, c.image_h, c.image_w, c.patch,
                c.tokens(), c.dist_token ? "class + distillation token" : "class token", c.avg_pool ? ", average pooling" : "");
    std::printf("encoder:       %d blocks, hidden %d, %d heads, mlp %d, LayerNorm eps %g, GELU %s\n", c.depth, c.hidden,
                c.heads, c.mlp_dim, double(c.ln_eps), c.gelu_tanh ? "tanh" : "erf");
    std::printf("classes:       %d%s\n", c.num_classes, c.dist_head ? " (class and distillation heads averaged)" : "");
    std::string labels;
    for (size_t i = 0; i < c.labels.size() && i < 20; ++i) labels += (i ? ", " : "") + c.labels[i];
    std::printf("labels:        %s%s\n", labels.c_str(), c.labels.size() > 20 ? ", ..." : "");
    std::printf("quant points:  %zu activations, %zu weights\n", lm.vit.points.size(), lm.vit.linears().size());
    return 0;
}

int cmd_eval(const Args& a) {
    LoadedModel lm = load_model_path(a.need("model"), int(a.num("heads", 0, 1, 4096)));
    Dataset ds = load_dataset(a.need("data"), a.get("labels"));
    PreparedData data = prepare(ds, lm.vit.cfg, size_t(a.num("limit", 0, 1, 1L << 30)));
    EvalResult r = evaluate(lm.vit, data, int(a.num("jobs", 0, 1, 256)));
    if (a.flags.count("json")) std::cout << eval_json(r).dump() << "\n";
    else std::cout << eval_table(r);
    return 0;
}

QuantConfig quant_config(const Args& a) {
    QuantConfig c;
    c.wbits = int(a.num("wbits", 8, 0, 64));
    c.abits = int(a.num("abits", 8, 0, 64));
    c.softmax_bits = int(a.num("softmax-bits", 0, 0, 64));
    c.softmax = parse_qtype(a.get("softmax", "sulq"));
    c.weights = parse_qtype(a.get("weights", "uniform"));
    const std::string g = a.get("granularity", "channel");
    if (g != "channel" && g != "tensor") throw UsageError("--granularity must be channel or tensor, found '" + g + "'");
    c.per_channel = g == "channel";
    c.w_range = parse_range(a.get("weight-range", "mse"));
    c.a_range = parse_range(a.get("act-range", "mse"));
    c.sulq_round_exponent = a.flags.count("sulq-round-exponent") > 0;
    c.edges_8bit = !a.flags.count("no-edges-8bit");
    c.reparam = a.flags.count("reparam") > 0;
    c.calib_size = int(a.num("calib-size", 32, 0, 1 << 20));
    c.seed = uint64_t(a.num("seed", 0, 0, 1L << 40));
    c.validate();
    return c;
}

int cmd_quantize(const Args& a) {
    const QuantConfig qc = quant_config(a);
    LoadedModel lm = load_model_path(a.need("model"), int(a.num("heads", 0, 1, 4096)));
    const int jobs = int(a.num("jobs", 0, 1, 256));
    PreparedData calib = prepare(load_dataset(a.need("calib")), lm.vit.cfg);
    QuantizedViT q = quantize(lm.vit, calib, qc, jobs);
    json out = {{"config", config_json(qc)}, {"model_bytes", q.model_bytes()}, {"bits_per_weight", q.bits_per_weight()},
                {"fp32_bytes", 4 * lm.vit.parameter_count()}};
    EvalResult r;
    const bool has_eval = !a.get("eval").empty();
    if (has_eval) {
        PreparedData data = a.get("eval") == a.get("calib") && !a.opts.count("limit")
                                ? std::move(calib)
                                : prepare(load_dataset(a.get("eval")), lm.vit.cfg, size_t(a.num("limit", 0, 1, 1L << 30)));
        r = evaluate_quantized(q, data, jobs);
        out.update(eval_json(r));
    }
    if (a.flags.count("json")) {
        std::cout << out.dump() << "\n";
        return 0;
    }
    std::printf("%s: weights %s (%s, %s range), activations uniform (%s range), softmax %s %d-bit%s%s\n", qc.name().c_str(),
                qtype_name(qc.weights), qc.per_channel ? "per channel" : "per tensor", range_name(qc.w_range),
                range_name(qc.a_range), qtype_name(qc.softmax), qc.probs_bits(), qc.reparam ? ", RepQ reparameterisation" : "",
                qc.edges_8bit ? ", patch embedding and head at 8 bits" : "");
    std::printf("calibration: %d images, seed %llu\n", qc.calib_size, (unsigned long long)qc.seed);
    std::printf("model size: %zu bytes (FP32 %zu), %.2f bits per weight\n\n", q.model_bytes(), 4 * lm.vit.parameter_count(),
                q.bits_per_weight());
    if (has_eval) std::cout << eval_table(r);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::fputs(kUsage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const std::string cmd = argv[1];
    try {
        if (cmd == "info") return cmd_info(parse(argc, argv, {"model", "heads"}, {"json"}));
        if (cmd == "eval") return cmd_eval(parse(argc, argv, {"model", "data", "labels", "limit", "jobs", "heads"}, {"json"}));
        if (cmd == "quantize")
            return cmd_quantize(parse(argc, argv,
                                      {"model", "calib", "eval", "wbits", "abits", "softmax", "softmax-bits", "weights", "granularity",
                                       "weight-range", "act-range", "calib-size", "seed", "out", "limit", "jobs", "heads"},
                                      {"json", "sulq-round-exponent", "no-edges-8bit", "reparam"}));
        throw UsageError("unknown command '" + cmd + "'");
    } catch (const UsageError& e) {
        std::fprintf(stderr, "bitlens: %s\n\n%s", e.what(), kUsage);
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bitlens: error: %s\n", e.what());
        return 1;
    }
}
