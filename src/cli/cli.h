// The native CLI's shared pieces: argument parsing and the command table. Each command lives in
// its own cmd_*.cpp and is listed in kCommands (main.cpp).
#pragma once
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "format.h"
#include "mixed.h"
#include "ptq.h"
#include "qat.h"

namespace bitlens::cli {

using json = nlohmann::json;

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Args {
    std::string command;
    std::map<std::string, std::string> opts;
    std::set<std::string> flags;
    std::vector<std::string> files;  // arguments that are not options, for commands that take them (merge)

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
    // "2,3,4" → {2, 3, 4} (parse_bits_list: each 2–8), a usage error naming the option otherwise.
    std::vector<int> bits_list(const std::string& k, const std::string& def) const {
        try {
            return parse_bits_list(get(k, def), "--" + k);
        } catch (const std::runtime_error& e) {
            throw UsageError(e.what());
        }
    }
    double real(const std::string& k, double def, double lo, double hi) const {
        auto it = opts.find(k);
        if (it == opts.end()) return def;
        char* end = nullptr;
        const double v = std::strtod(it->second.c_str(), &end);
        if (it->second.empty() || *end || !(v >= lo && v <= hi))
            throw UsageError("--" + k + " must be a number from " + fmt_g(lo) + " to " + fmt_g(hi) + ", found '" +
                             it->second + "'");
        return v;
    }
};

inline Args parse(int argc, char** argv, const std::set<std::string>& valued, const std::set<std::string>& boolean,
                  bool takes_files = false) {
    Args a;
    a.command = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("--", 0) != 0 && takes_files) {
            a.files.push_back(s);
            continue;
        }
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

struct Command {
    const char* name;
    const char* usage;                    // option synopsis, shown by `bitlens --help`
    std::set<std::string> valued, flags;  // accepted options
    int (*run)(const Args&);
    bool files = false;                   // takes arguments that are not options (Args::files)
};

int cmd_info(const Args& a);
int cmd_eval(const Args& a);
int cmd_quantize(const Args& a);
int cmd_mixed(const Args& a);
int cmd_sweep(const Args& a);
int cmd_grad(const Args& a);
int cmd_qat(const Args& a);
int cmd_inq(const Args& a);
int cmd_prune(const Args& a);
int cmd_merge(const Args& a);

// --model (a model directory or a .safetensors file), with --heads for a checkpoint without config.json.
inline ModelSource model_source(const Args& a) {
    ModelSource src = read_model_source(a.need("model"));
    src.heads_override = int(a.num("heads", 0, 1, 4096));
    return src;
}

// Writes a file whole, or throws naming it.
void write_file(const std::string& path, const void* data, size_t n);
// DIR/model.safetensors (the quantized checkpoint in the original's naming) and the original's config.json and
// preprocessor_config.json, so that DIR is a model directory of its own. Returns the checkpoint's size.
size_t write_quantized(const std::string& dir, const QuantizedViT& q, const ModelSource& src, const SafeTensors& original);
// DIR/model.safetensors, config.json and preprocessor_config.json of an FP32 model, pruned or not (export_fp32:
// the config records the pruning), so that DIR is a model directory of its own. Returns the checkpoint's size.
size_t write_fp32(const std::string& dir, const ViT& m, const ModelSource& src, const SafeTensors& original);

// Runs a library check of option values (QuantConfig::validate, QatOptions::validate, a name parser) before
// anything is loaded: what it refuses is a bad command line, so a usage error (exit 2) like the parser's own;
// errors that depend on the files (a model's layers, a dataset's size) stay errors (exit 1).
template <class F>
void usage_check(F&& check) {
    try {
        check();
    } catch (const UsageError&) {
        throw;
    } catch (const std::runtime_error& e) {
        throw UsageError(e.what());
    }
}

// The PTQ options shared by quantize, sweep and mixed (--wbits, --abits, --softmax, ...).
QuantConfig quant_config(const Args& a);
// The training options shared by qat and inq (--epochs, --batch, --lr, --no-distill, --val-split, ...);
// `epochs` names the option that sets QatOptions::epochs (default `default_epochs`, at least `min_epochs`:
// 0 leaves "at least 1" to QatOptions::validate's message). Not validated: the caller sets its own fields first.
train::QatOptions train_options(const Args& a, uint64_t seed, const std::string& epochs = "epochs", int default_epochs = 3,
                                int min_epochs = 1);
// --out DIR: writes q there (as write_quantized) and records file_bytes and out in `out`; with `eval` data,
// evaluates q on it and adds eval_json. Returns that evaluation (n = 0 without data).
EvalResult export_and_evaluate(const Args& a, json& out, const QuantizedViT& q, const ModelSource& src, const SafeTensors& st,
                               const PreparedData* eval, int jobs);

}  // namespace bitlens::cli
