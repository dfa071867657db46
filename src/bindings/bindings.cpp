// Embind bindings: thin. Every entry point catches C++ exceptions and rethrows them as a JS Error
// with the same message, so the module never aborts on bad input. Byte arrays move into the heap
// with one TypedArray.set (no per-element copies). Structured results cross as JSON strings; the JS
// wrapper (web/bitlens.js) parses them and gives the idiomatic API.
#include <emscripten/bind.h>
#include <emscripten/emscripten.h>
#include <emscripten/val.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <malloc.h>
#include <map>
#include <sanitizer/allocator_interface.h>
#include <tuple>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "dataset.h"
#include "eval.h"
#include "export.h"
#include "inq.h"
#include "json_limits.h"
#include "size_limits.h"
#include "kernels.h"
#include "mixed.h"
#include "model.h"
#include "pruning.h"
#include "ptq.h"
#include "qat.h"
#include "quant.h"
#include "rng.h"
#include "sos.h"
#include "sweep.h"

using namespace emscripten;
using namespace bitlens;

namespace {

// Errors cross to JS without unwinding through C++ frames: guard() catches, keeps the message and returns an empty
// value; web/bitlens.js takes the message after every call (_takeError) and throws it as a JS Error. (A JS exception
// thrown from inside the catch would leave the C++ exception and every argument Embind converted — strings, the
// val handles of the caller's byte arrays — allocated for good: one leak per rejected input.)
std::string g_error;
bool g_failed = false;

template <class R>
R empty_result() {
    if constexpr (std::is_same_v<R, val>)
        return val::undefined();
    else
        return R{};
}

template <class F>
auto guard(F&& f) -> decltype(f()) {
    using R = decltype(f());
    try {
        return f();
    } catch (const std::bad_alloc&) {
        g_error = "out of memory";
    } catch (const std::exception& e) {
        g_error = e.what();
    }
    g_failed = true;
    return empty_result<R>();
}

// The error of the last call (null if it succeeded), cleared.
val take_error() {
    if (!g_failed) return val::null();
    g_failed = false;
    val msg(g_error);
    g_error.clear();
    g_error.shrink_to_fit();
    return msg;
}

// Bytes malloc has handed out and not had back (for the tests: memory stays flat under bad input); ASan's allocator
// counts its own.
double heap_in_use() {
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
    return double(__sanitizer_get_current_allocated_bytes());
#endif
#endif
    return double(mallinfo().uordblks);
}

// A TypedArray's elements copied into the heap with one TypedArray.set.
template <class T>
std::vector<T> copy_of(const val& arr) {
    const size_t n = arr["length"].as<size_t>();
    std::vector<T> v(n);
    if (n) val(typed_memory_view(n, v.data())).call<void>("set", arr);
    return v;
}
std::vector<uint8_t> bytes_of(const val& arr) { return copy_of<uint8_t>(arr); }
std::vector<float> floats_of(const val& arr) { return copy_of<float>(arr); }

class DatasetHandle {
public:
    Dataset ds;
    size_t size() const { return ds.size(); }
    std::string classes() const { return nlohmann::json(ds.class_names).dump(); }
};

DatasetHandle* load_idx_js(val images, val labels, std::string images_name, std::string labels_name) {
    return guard([&] {
        Dataset ds = load_idx(maybe_gunzip(bytes_of(images), images_name), maybe_gunzip(bytes_of(labels), labels_name),
                              images_name, labels_name);
        auto* h = new DatasetHandle;
        h->ds = std::move(ds);
        return h;
    });
}

// files: array of Uint8Array; names, classes: arrays of strings (same length).
DatasetHandle* load_encoded_js(val files, val names, val classes) {
    return guard([&] {
        const size_t n = files["length"].as<size_t>();
        if (names["length"].as<size_t>() != n || classes["length"].as<size_t>() != n)
            throw std::runtime_error("loadDataset: files, names and classes must have the same length");
        std::vector<std::vector<uint8_t>> bytes;
        std::vector<std::string> nm, cl;
        for (size_t i = 0; i < n; ++i) {
            bytes.push_back(bytes_of(files[i]));
            nm.push_back(names[i].as<std::string>());
            cl.push_back(classes[i].as<std::string>());
        }
        Dataset ds = load_encoded(bytes, nm, cl);
        auto* h = new DatasetHandle;
        h->ds = std::move(ds);
        return h;
    });
}

// A fresh Float32Array holding a copy of v (the heap view is copied before any allocation can move it).
val float_array(const std::vector<float>& v) {
    return val::global("Float32Array").new_(val(typed_memory_view(v.size(), v.data())));
}

// Captures the class token's attention to the patches at one block (mean over heads) — or, with `full`, every
// head's whole attention matrix [heads, tokens, tokens] — after any quantization the inner hook applies to the
// probabilities, or, when the block's probs·v runs integer (the hook then leaves the probabilities alone), the values
// of the codes it multiplies.
struct AttentionCapture : ActivationHook {
    const ViT& m;
    int block;
    ActivationHook* inner;
    bool full;
    std::vector<float> map;
    size_t heads = 0, tokens = 0;
    AttentionCapture(const ViT& model, int b, ActivationHook* in, bool all = false) : m(model), block(b), inner(in), full(all) {}
    void on_activation(int p, float* x, size_t rows, size_t cols, size_t ld) override {
        if (inner) inner->on_activation(p, x, rows, cols, ld);
        if (p != m.point_index(block, ViT::kProbs)) return;
        const IntAttention* ia = m.blocks[size_t(block)].int_attn.get();
        const Quantizer* pq = ia && ia->pv ? &ia->probs : nullptr;
        const size_t T = cols, H = rows / T, pre = size_t(m.cfg.prefix_tokens());
        heads = H, tokens = T;
        if (full) {
            map.resize(rows * cols);
            for (size_t r = 0; r < rows; ++r)
                for (size_t j = 0; j < cols; ++j) map[r * cols + j] = pq ? pq->fake(x[r * ld + j]) : x[r * ld + j];
            return;
        }
        map.assign(T - pre, 0.0f);
        for (size_t h = 0; h < H; ++h)
            for (size_t j = pre; j < T; ++j) {  // row 0 of head h: the class token
                const float v = x[h * T * ld + j];
                map[j - pre] += (pq ? pq->fake(v) : v) / float(H);
            }
    }
};

std::vector<float> logits_of(const ViT& m, const val& image_bytes, const std::string& name, ActivationHook* hook) {
    std::vector<uint8_t> b = bytes_of(image_bytes);
    Image8 img = decode_image(b.data(), b.size(), name);
    return m.forward(preprocess(img, m.cfg.pp), hook);
}

val attention_of(const ViT& m, const val& image_bytes, const std::string& name, int block, ActivationHook* inner, bool full = false) {
    if (block < 0) block += int(m.blocks.size());
    if (block < 0 || block >= int(m.blocks.size()))
        throw std::runtime_error("attention: block " + std::to_string(block) + " is outside 0.." + std::to_string(m.blocks.size() - 1));
    AttentionCapture cap(m, block, inner, full);
    logits_of(m, image_bytes, name, &cap);
    if (!full) return float_array(cap.map);
    val out = val::object();
    out.set("values", float_array(cap.map));
    out.set("heads", double(cap.heads));
    out.set("tokens", double(cap.tokens));
    return out;
}

// Per transformer block: its heads, the heads removed (the unpruned model's numbering), MLP width and parameters —
// train::layers_json in the JS API's names. A pruned model's blocks differ; an unpruned one's are all alike.
nlohmann::json blocks_json(const ViT& m) {
    nlohmann::json out = nlohmann::json::array();
    for (const nlohmann::json& l : train::layers_json(m))
        out.push_back({{"heads", l["heads"]}, {"prunedHeads", l["pruned_heads"]}, {"mlpDim", l["mlp_dim"]}, {"parameters", l["parameters"]}});
    return out;
}

class QuantizedHandle {
public:
    QuantizedViT q;
    int integer_layers = 0;
    std::shared_ptr<const std::vector<uint8_t>> source;  // the original checkpoint's bytes, for export
    std::string source_name;
    // The quantized model as safetensors (packed codes + scales, recipe in __metadata__), in the
    // original checkpoint's naming so its config.json still applies.
    val export_safetensors() const {
        return guard([&] {
            const SafeTensors st = parse_safetensors(source->data(), source->size(), source_name);
            const std::vector<uint8_t> bytes = export_quantized(q, st);
            return val::global("Uint8Array").new_(val(typed_memory_view(bytes.size(), bytes.data())));
        });
    }
    std::string info() const {
        // The bit-width every layer and quantized activation point got.
        nlohmann::json layer_bits = nlohmann::json::object(), point_bits = nlohmann::json::object();
        const std::vector<const Linear*> ls = q.model.linears();
        for (size_t i = 0; i < ls.size(); ++i) layer_bits[ls[i]->name] = q.wbits[i];
        for (size_t p = 0; p < q.model.points.size(); ++p)
            if (q.act_on[p]) point_bits[q.model.points[p].name] = q.aq[p].bits;
        const IntegerBlocks ib = integer_blocks(q);
        return nlohmann::json{{"config", config_json(q.cfg)},
                              {"layerBits", layer_bits},
                              {"pointBits", point_bits},
                              {"modelBytes", q.model_bytes()},
                              {"bitsPerWeight", q.bits_per_weight()},
                              {"fp32Bytes", 4 * q.model.parameter_count()},
                              {"integerLayers", integer_layers},
                              {"integerAttention", ib.attention},
                              {"integerGelu", ib.gelu},
                              {"blocks", blocks_json(q.model)}}
            .dump();
    }
    std::string evaluate(const DatasetHandle& d, size_t limit) const {
        return guard([&] { return eval_json(evaluate_quantized(q, prepare(d.ds, q.model.cfg, limit), 1)).dump(); });
    }
    std::string classify(val image_bytes, std::string name) const {
        return guard([&] {
            FakeQuantHook hook(q);
            return nlohmann::json(logits_of(q.model, image_bytes, name, &hook)).dump();
        });
    }
    // Logits for one already-preprocessed CHW input (benchmarks; no decode, no JSON).
    val forward_raw(val input) const {
        return guard([&] {
            FakeQuantHook hook(q);
            return float_array(q.model.forward(floats_of(input), &hook));
        });
    }
    val attention(val image_bytes, std::string name, int block, bool full) const {
        return guard([&] {
            FakeQuantHook hook(q);
            return attention_of(q.model, image_bytes, name, block, &hook, full);
        });
    }
};

// values → {values: dequantized Float32Array, levels: Float32Array, params: JSON string}.
val quantize_tensor_js(val values, std::string options) {
    return guard([&] {
        nlohmann::json o = parse_json_bounded(options, "JSON from JavaScript");
        const std::string type = o.value("quantizer", std::string("uniform"));
        const int bits = o.value("bits", 8);
        const bool symmetric = o.value("symmetric", false);
        const RangeMethod range = parse_range(o.value("range", std::string("minmax")));
        const bool round_exp = o.value("roundExponent", false);
        std::vector<float> x = floats_of(values);
        if (x.empty()) throw std::runtime_error("quantizeTensor: no values");
        Quantizer qz = fit(parse_qtype(type), x, bits, symmetric, range, round_exp);
        const double mse = reconstruction_mse(qz, x);
        for (float& v : x) v = qz.fake(v);
        nlohmann::json params = {{"quantizer", qtype_name(qz.type)}, {"bits", qz.bits}, {"scale", qz.scale},
                                 {"zero", qz.zero}, {"eta", qz.eta}, {"n1", qz.n1}, {"n2", qz.n2},
                                 {"mse", mse}};
        val out = val::object();
        out.set("values", float_array(x));
        out.set("levels", float_array(qz.levels()));
        out.set("params", params.dump());
        return out;
    });
}

// A sweep in steps: JS calls run(j) for each of its total() runs, yielding to its event loop in between (so
// an AbortSignal can stop it), then finish(). Shares the model with its Model handle (deleting that Model mid-sweep
// frees nothing the sweep reads) and owns its prepared images (the Datasets may go too).
// A part of a sweep (issue 19: one of the page's workers, or anywhere) goes over the part's runs only, and
// finish() gives the part as `bitlens sweep --shard I/N --json` writes it, for merge_sweeps_js or `bitlens merge`.
class SweepHandle {
public:
    std::shared_ptr<const AnyModel> model;  // what `runner` reads (declared first: destroyed after it)
    std::unique_ptr<SweepRunner> runner;
    std::vector<size_t> runs;     // the runner's runs this handle does: all of them, or the part's
    bool is_part = false;
    Shard shard;
    SweepIdentity identity;
    size_t total() const { return runs.size(); }
    void run(size_t j) {
        guard([&] {
            if (j >= runs.size()) throw std::runtime_error("sweep: step " + std::to_string(j) + " of " + std::to_string(runs.size()));
            runner->run(runs[j], 1);
            return 0;
        });
    }
    std::string finish() {
        return guard([&] {
            if (!is_part) return sweep_json(runner->finish()).dump();
            SweepPart p;  // as run_sweep_part assembles it
            p.shard = shard;
            p.identity = identity;
            p.shared = runner->shared();
            p.shared.fp32.predictions.clear();
            for (size_t i : runs) p.runs.push_back({i, runner->model_bytes(i), runner->result(i)});
            return sweep_part_json(p).dump();
        });
    }
};

// parts: a JSON array of sweep parts (SweepHandle::finish of parts, or `bitlens sweep --shard` files), in any
// order → the unsharded sweep's JSON. Parts are named "parts[k]" in errors.
std::string merge_sweeps_js(std::string parts_json) {
    return guard([&] {
        const nlohmann::json j = parse_json_bounded(parts_json, "JSON from JavaScript");
        if (!j.is_array()) throw std::runtime_error("mergeSweeps: expected an array of sweep parts");
        std::vector<SweepPart> parts;
        std::vector<std::string> names;
        for (size_t k = 0; k < j.size(); ++k) {
            names.push_back("parts[" + std::to_string(k) + "]");
            parts.push_back(sweep_part_from_json(j[k], names.back()));
        }
        return sweep_json(merge_sweep_parts(parts, names)).dump();
    });
}

// Mixed-precision sensitivities in steps, like SweepHandle. Owns its calibration data and a scratch
// copy of the model; shares the FP32 model with its Model handle, which may be deleted before it.
class SensitivityHandle {
public:
    std::shared_ptr<const AnyModel> model;  // what `runner` reads (declared first: destroyed after it)
    PreparedData data;
    ViT scratch;
    std::unique_ptr<SensitivityRunner> runner;
    size_t total() const { return runner->total(); }
    void run(size_t i) {
        guard([&] {
            runner->run(i, scratch);
            return 0;
        });
    }
    std::string finish() {
        return guard([&] { return sensitivities_json(runner->finish()).dump(); });
    }
};

// sensitivities JSON (as SensitivityHandle::finish gives) + budgets {budget | maxBytes, abudget} → the plan JSON.
std::string plan_mixed_js(std::string sensitivities, std::string budgets) {
    return guard([&] {
        const Sensitivities s = sensitivities_from_json(parse_json_bounded(sensitivities, "JSON from JavaScript"));
        const nlohmann::json b = parse_json_bounded(budgets, "JSON from JavaScript");
        if (b.contains("maxBytes")) return plan_json(plan_mixed_bytes(s, json_int<long long>(b.at("maxBytes"), "planMixed: maxBytes"), b.at("abudget").get<double>()), s).dump();
        return plan_json(plan_mixed(s, b.at("budget").get<double>(), b.at("abudget").get<double>()), s).dump();
    });
}

// A JSON number field of `o`, named in errors ("qat: 'epochs' must be a number, found \"x\"").
double number_field(const nlohmann::json& o, const char* key, double def, const std::string& what) {
    if (!o.contains(key)) return def;
    const nlohmann::json& v = o.at(key);
    if (!v.is_number()) throw std::runtime_error(what + ": '" + key + "' must be a number, found " + v.dump());
    return v.get<double>();
}
size_t count_field(const nlohmann::json& o, const char* key, size_t def, const std::string& what) {
    const double v = number_field(o, key, double(def), what);
    if (!(v >= 0 && v == std::floor(v) && v < 1e15))
        throw std::runtime_error(what + ": '" + key + "' must be a whole number ≥ 0, found " + o.at(key).dump());
    return size_t(v);
}

// QAT options in the C++ names (epochs, batch, lr, min_lr, weight_decay, warmup, clip, distill, temperature,
// distill_weight, label_smoothing, val_split, limit), as `bitlens qat` sets them; the rest keep `o`'s values. INQ
// reads the same fields into its retraining options: `what` names the command in errors, the epochs field is
// `epochs_key` ("epochs_per_step"), and the fields in `also` are the caller's.
train::QatOptions qat_options_from_json(const nlohmann::json& j, train::QatOptions o = {}, const std::string& what = "qat",
                                        const char* epochs_key = "epochs", std::initializer_list<const char*> also = {}) {
    if (!j.is_object()) throw std::runtime_error(what + ": the options must be an object");
    std::vector<std::string> known = {epochs_key, "batch", "lr", "min_lr", "weight_decay", "warmup", "clip", "distill",
                                      "temperature", "distill_weight", "label_smoothing", "val_split", "limit"};
    known.insert(known.end(), also.begin(), also.end());
    for (const auto& kv : j.items())
        if (std::find(known.begin(), known.end(), kv.key()) == known.end())
            throw std::runtime_error(what + ": unknown option '" + kv.key() + "'");
    const double epochs = number_field(j, epochs_key, o.epochs, what);
    if (!(epochs == std::floor(epochs) && std::fabs(epochs) < 1e9))
        throw std::runtime_error(what + ": '" + epochs_key + "' must be a whole number below 1000000000, found " + j.at(epochs_key).dump());
    o.epochs = int(epochs);
    o.batch = count_field(j, "batch", o.batch, what);
    o.lr = float(number_field(j, "lr", o.lr, what));
    o.min_lr = float(number_field(j, "min_lr", o.min_lr, what));
    o.weight_decay = float(number_field(j, "weight_decay", o.weight_decay, what));
    o.warmup = number_field(j, "warmup", o.warmup, what);
    o.clip = number_field(j, "clip", o.clip, what);
    if (j.contains("distill")) {
        if (!j.at("distill").is_boolean()) throw std::runtime_error(what + ": 'distill' must be true or false, found " + j.at("distill").dump());
        o.distill = j.at("distill").get<bool>();
    }
    o.temperature = float(number_field(j, "temperature", o.temperature, what));
    o.distill_weight = float(number_field(j, "distill_weight", o.distill_weight, what));
    o.label_smoothing = float(number_field(j, "label_smoothing", o.label_smoothing, what));
    o.val_split = number_field(j, "val_split", o.val_split, what);
    o.limit = count_field(j, "limit", o.limit, what);
    return o;
}

// INQ options: QAT's training fields (qat_options_from_json; `epochs_per_step` for the epochs) and `partitions`,
// the cumulative percentages (InqOptions::validate checks them).
train::InqOptions inq_options_from_json(const nlohmann::json& j) {
    train::InqOptions o;
    o.train = qat_options_from_json(j, o.train, "inq", "epochs_per_step", {"partitions"});
    if (j.contains("partitions")) {
        const nlohmann::json& p = j.at("partitions");
        if (!p.is_array() || !std::all_of(p.begin(), p.end(), [](const nlohmann::json& v) { return v.is_number(); }))
            throw std::runtime_error("inq: 'partitions' must be an array of percentages (e.g. [50, 75, 87.5, 100]), found " + p.dump());
        o.partitions = p.get<std::vector<double>>();
    }
    return o;
}

// QBitOpt's fields of `bitlens qat` (budget, abudget, objective, candidates, realloc_every, fisher_batches,
// sensitivity_decay) into o; qat() reads them, INQ does not know them. QatOptions::validate checks the values.
const std::initializer_list<const char*> kQbitoptFields = {"budget", "abudget", "objective", "candidates", "realloc_every",
                                                           "fisher_batches", "sensitivity_decay"};
void qbitopt_options_from_json(const nlohmann::json& j, train::QatOptions& o) {
    o.budget = number_field(j, "budget", o.budget, "qat");
    o.abudget = number_field(j, "abudget", o.abudget, "qat");
    if (j.contains("objective")) {
        const nlohmann::json& v = j.at("objective");
        if (!v.is_string() || (v != "mean" && v != "worst"))
            throw std::runtime_error("qat: 'objective' must be \"mean\" or \"worst\", found " + v.dump());
        o.objective = parse_objective(v.get<std::string>());
    }
    if (j.contains("candidates")) {
        const nlohmann::json& v = j.at("candidates");
        if (!v.is_array() || !std::all_of(v.begin(), v.end(), [](const nlohmann::json& b) { return b.is_number_integer(); }))
            throw std::runtime_error("qat: 'candidates' must be an array of whole bit-widths (e.g. [2, 3, 4, 5, 6, 7, 8]), found " + v.dump());
        o.candidates = v.get<std::vector<int>>();
    }
    o.realloc_every = count_field(j, "realloc_every", o.realloc_every, "qat");
    o.fisher_batches = count_field(j, "fisher_batches", o.fisher_batches, "qat");
    o.sensitivity_decay = number_field(j, "sensitivity_decay", o.sensitivity_decay, "qat");
}

QuantizedHandle* quantized_handle(QuantizedViT q, std::shared_ptr<const std::vector<uint8_t>> source, const std::string& name, bool integer) {
    auto* h = new QuantizedHandle;
    h->q = std::move(q);
    h->source = std::move(source), h->source_name = name;
    if (integer) h->integer_layers = enable_integer(h->q);
    return h;
}

// `m` names the layers and points of an allocation (QBitOpt: p.allocated is set when the bits were just allocated).
nlohmann::json progress_json(const train::QatProgress& p, const ViT& m) {
    return {{"epoch", p.epoch},
            {"epochs", p.epochs},
            {"step", p.step},
            {"steps", p.steps},
            {"loss", p.step && !std::isnan(p.loss) ? nlohmann::json(p.loss) : nlohmann::json(nullptr)},
            {"seconds", p.seconds},
            {"finished", p.finished ? train::history_json({*p.finished})[0] : nlohmann::json(nullptr)},
            {"allocated", p.allocated ? train::allocation_json(*p.allocated, m) : nlohmann::json(nullptr)}};
}

// Quantization-aware training in steps (train::QatRun), like SweepHandle: JS calls start(), then run(1) per
// event-loop turn until done(), then best() (the kept epoch as a QuantizedModel) and summary(). The PTQ start
// (epoch 0) is evaluated when the handle is made. Owns everything it needs (the run copies its training
// images and the FP32 weights), so the model and the dataset may go before it.
class QatHandle {
public:
    std::unique_ptr<train::QatRun> qrun;
    std::shared_ptr<const std::vector<uint8_t>> source;
    std::string source_name;
    std::string validation_fp32 = "null";  // the FP32 model on the held-out split (eval JSON), when known
    size_t total_steps = 0;
    train::QatOptions options;
    size_t total() const { return total_steps; }
    // The state before the first step: epoch 0 (PTQ) just evaluated (with a budget, after the first allocation).
    std::string start() {
        return guard([&] {
            train::QatProgress p = qrun->advance(0);
            p.finished = &qrun->history().front();
            if (!qrun->allocations().empty()) p.allocated = &qrun->allocations().front();
            return progress(p);
        });
    }
    bool done() const { return qrun->done(); }
    // Up to k steps, never past an epoch's end (then that epoch is evaluated and reported in "finished"); with a
    // budget, "allocated" when the bits were allocated again before a step.
    std::string run(size_t k) {
        return guard([&] { return progress(qrun->advance(k)); });
    }
    // progress_json, naming an allocation's layers and points after the model (a copy, made only then: rare).
    std::string progress(const train::QatProgress& p) const {
        if (!p.allocated) return progress_json(p, ViT{}).dump();
        return progress_json(p, qrun->result().q.model).dump();
    }
    // The best epoch so far as a QuantizedModel (before any step: the PTQ start).
    QuantizedHandle* best(bool integer) const {
        return guard([&] { return quantized_handle(qrun->result().q, source, source_name, integer); });
    }
    std::string summary() const {
        return guard([&] {
            const train::QatResult r = qrun->result();
            nlohmann::json j{{"best_epoch", r.best_epoch},
                             {"train_images", r.train_images},
                             {"val_images", r.val_images},
                             {"history", train::history_json(r.history)},
                             {"validation_fp32", nlohmann::json::parse(validation_fp32)},
                             {"avg_wbits", r.avg_wbits},
                             {"avg_abits", r.avg_abits}};
            // QBitOpt: as `bitlens qat --budget --json` reports it.
            if (options.budget > 0) {
                nlohmann::json hist = nlohmann::json::array();
                for (const train::Allocation& al : r.allocations) hist.push_back(train::allocation_json(al, r.q.model));
                j["budget"] = {{"weights", options.budget},
                               {"activations", options.abudget > 0 ? nlohmann::json(options.abudget) : nlohmann::json(nullptr)},
                               {"objective", options.objective == Objective::Worst ? "worst" : "mean"},
                               {"candidates", options.candidates},
                               {"fisher_batches", options.fisher_batches},
                               {"sensitivity_decay", options.sensitivity_decay}};
                j["kept_allocation"] = r.kept_allocation, j["allocations"] = hist;
            }
            return j.dump();
        });
    }
};

nlohmann::json progress_json(const train::InqProgress& p) {
    return {{"step", p.step},
            {"steps", p.steps},
            {"iteration", p.iteration},
            {"iterations", p.iterations},
            // null before any training and at a step that froze without retraining (the last, 100%)
            {"loss", p.iteration && !std::isnan(p.loss) && !(p.finished && !p.finished->steps) ? nlohmann::json(p.loss) : nlohmann::json(nullptr)},
            {"seconds", p.seconds},
            {"finished", p.finished ? train::inq_history_json({*p.finished})[0] : nlohmann::json(nullptr)}};
}

// INQ in steps (train::InqRun), like QatHandle: JS calls start() (step 0, the PTQ start, evaluated when the handle
// was made), then run(k) per event-loop turn until done(), then result() and summary(). ptq() is the PTQ start as
// a QuantizedModel. Owns everything it needs (the run copies its training images and the FP32 weights).
class InqHandle {
public:
    std::unique_ptr<train::InqRun> irun;
    std::shared_ptr<const std::vector<uint8_t>> source;
    std::string source_name;
    size_t partitions = 0;
    size_t total() const { return irun->iterations(); }
    std::string start() const {
        return guard([&] {
            const train::InqStep& s0 = irun->history().front();
            train::InqProgress p;
            p.steps = partitions, p.iterations = irun->iterations(), p.seconds = s0.seconds, p.finished = &s0;
            return progress_json(p).dump();
        });
    }
    bool done() const { return irun->done(); }
    // Freezes the next partition when one is due, then up to k training steps, never past a partition step's end
    // (then that step is evaluated and reported in "finished").
    std::string run(size_t k) {
        return guard([&] { return progress_json(irun->advance(k)).dump(); });
    }
    QuantizedHandle* ptq(bool integer) const {
        return guard([&] { return quantized_handle(irun->ptq(), source, source_name, integer); });
    }
    // Every weight a power of two (after the last partition); an error before done().
    QuantizedHandle* result(bool integer) const {
        return guard([&] { return quantized_handle(irun->result().q, source, source_name, integer); });
    }
    // {train_images, val_images, history (inq_history_json), validation_fp32}: after done().
    std::string summary() const {
        return guard([&] {
            const train::InqResult r = irun->result();
            return nlohmann::json{{"train_images", r.train_images},
                                  {"val_images", r.val_images},
                                  {"history", train::inq_history_json(r.history)},
                                  {"validation_fp32", r.fp32_val.n ? eval_json(r.fp32_val) : nlohmann::json(nullptr)}}
                .dump();
        });
    }
};

nlohmann::json progress_json(const train::SosProgress& p) {
    return {{"stage", p.stage}, {"block", p.block}, {"blocks", p.blocks}, {"iter", p.iter}, {"iters", p.iters},
            {"done", p.done},   {"total", p.total}, {"loss", p.done ? nlohmann::json(p.loss) : nlohmann::json(nullptr)},
            {"seconds", p.seconds}};
}

// SOS block reconstruction in steps (train::SosRun), like QatHandle: JS calls run(k) per event-loop turn until
// done(), then result() and summary(). Owns the prepared calibration and evaluation images (the run keeps a
// pointer to the evaluation set); the FP32 weights are copied by the run, so the model may go before it.
// Declared before `srun`, `eval` is destroyed after it.
class SosHandle {
public:
    PreparedData eval;
    std::unique_ptr<train::SosRun> srun;
    std::shared_ptr<const std::vector<uint8_t>> source;
    std::string source_name;
    size_t stages_seen = 0, blocks_seen = 0;
    size_t total() const { return srun->total(); }
    bool done() const { return srun->done(); }
    // Up to k iterations, never past a block's end; the progress JSON carries every stage ("stages_done") and block
    // ("blocks_done") finished since the previous call, in sos_json's form. The first call also reports stage 0.
    std::string run(size_t k) {
        return guard([&] {
            nlohmann::json j = progress_json(srun->advance(k));
            const auto& st = srun->stages();
            const auto& bl = srun->blocks();
            const nlohmann::json fresh = train::sos_json({st.begin() + long(stages_seen), st.end()},
                                                         {bl.begin() + long(blocks_seen), bl.end()});
            stages_seen = st.size(), blocks_seen = bl.size();
            j["stages_done"] = fresh["stages"], j["blocks_done"] = fresh["blocks"];
            return j.dump();
        });
    }
    QuantizedHandle* result(bool integer) const {
        return guard([&] { return quantized_handle(srun->result(), source, source_name, integer); });
    }
    // sos_json of the whole run so far: {stages: [{stage, seconds, eval?, max_logit_change?}], blocks: [...]}.
    std::string summary() const {
        return guard([&] { return train::sos_json(srun->stages(), srun->blocks()).dump(); });
    }
};

// Pruning options in the C++ names: keep_heads, keep_mlp (fractions of each block's heads / MLP units; at least one
// of them), importance ("taylor" | "mask"), importance_images, feature_weight, feature_blocks, seed, and the training
// fields of qat_options_from_json — with `bitlens prune`'s defaults (2 epochs, lr 5e-4, no distillation unless
// `distill`). PruneOptions::validate checks the values.
train::PruneOptions prune_options_from_json(const nlohmann::json& j) {
    train::PruneOptions o;
    o.train.distill = false;  // as `bitlens prune`, whose --distill turns it on
    o.train = qat_options_from_json(j, o.train, "prune", "epochs",
                                    {"keep_heads", "keep_mlp", "importance", "importance_images", "feature_weight", "feature_blocks", "seed"});
    if (!j.contains("keep_heads") && !j.contains("keep_mlp"))
        throw std::runtime_error("prune: give 'keep_heads' and/or 'keep_mlp' (fractions in (0, 1] of each layer's heads / MLP units)");
    o.keep_heads = number_field(j, "keep_heads", o.keep_heads, "prune");
    o.keep_mlp = number_field(j, "keep_mlp", o.keep_mlp, "prune");
    if (j.contains("importance")) {
        const nlohmann::json& v = j.at("importance");
        if (!v.is_string()) throw std::runtime_error("prune: 'importance' must be \"taylor\" or \"mask\", found " + v.dump());
        o.method = train::parse_importance(v.get<std::string>());
    }
    o.importance_images = count_field(j, "importance_images", o.importance_images, "prune");
    o.feature_weight = number_field(j, "feature_weight", o.feature_weight, "prune");
    const double fb = number_field(j, "feature_blocks", o.feature_blocks, "prune");
    if (!(fb == std::floor(fb) && fb >= -1 && fb < 1e9))
        throw std::runtime_error("prune: 'feature_blocks' must be a whole number ≥ 0, or -1 (the first half of the blocks), found " +
                                 j.at("feature_blocks").dump());
    o.feature_blocks = int(fb);
    o.train.seed = count_field(j, "seed", 0, "prune");
    return o;
}

// The options each training run starts with, checked as the run checks them before any work: the JSON parsed
// (the functions above), the values validated, and for pruning the fractions against `vit`'s blocks (one that leaves
// a block no head or unit), before the importance is measured. The runs and check_training_js share them.
train::QatOptions qat_run_options(const std::string& options, const QuantConfig& qc) {
    const nlohmann::json j = parse_json_bounded(options, "JSON from JavaScript");
    train::QatOptions o = qat_options_from_json(j, {}, "qat", "epochs", kQbitoptFields);
    qbitopt_options_from_json(j, o);
    o.seed = qc.seed, o.jobs = 1;
    o.validate();
    return o;
}
train::InqOptions inq_run_options(const std::string& options, const QuantConfig& qc) {
    train::InqOptions o = inq_options_from_json(parse_json_bounded(options, "JSON from JavaScript"));
    o.train.seed = qc.seed, o.train.jobs = 1;
    o.validate();
    return o;
}
train::PruneOptions prune_run_options(const std::string& options, const ViT& vit) {
    train::PruneOptions o = prune_options_from_json(parse_json_bounded(options, "JSON from JavaScript"));
    o.train.jobs = 1;
    o.validate();
    std::vector<std::vector<double>> heads, units;
    for (size_t b = 0; b < vit.blocks.size(); ++b) {
        heads.emplace_back(size_t(vit.cfg.block_heads(b)), 0.0);
        units.emplace_back(size_t(vit.cfg.block_mlp(b)), 0.0);
    }
    train::keep_most_important(heads, o.keep_heads, "heads");
    train::keep_most_important(units, o.keep_mlp, "MLP units");
    return o;
}

nlohmann::json progress_json(const train::PruneProgress& p) {
    return {{"epoch", p.epoch},
            {"epochs", p.epochs},
            {"step", p.step},
            {"steps", p.steps},
            {"loss", p.step && !std::isnan(p.loss) ? nlohmann::json(p.loss) : nlohmann::json(nullptr)},
            {"seconds", p.seconds},
            {"finished", p.finished ? train::prune_history_json({*p.finished})[0] : nlohmann::json(nullptr)}};
}

class PruneHandle;

class ModelHandle {
public:
    // FP32, or a BitLens quantized export; quantizing, sweeping, ... ask model->fp32(what). Shared with the stepped
    // runs that read it after this call returns (SweepHandle, SensitivityHandle), so that deleting the Model from JS
    // while one of them runs frees nothing they use (it went on to read freed memory: issue 17, Found 7).
    std::shared_ptr<AnyModel> model = std::make_shared<AnyModel>();
    // The files the model was loaded from (a pruned model's: its own, as export_fp32 writes them), for exports.
    std::shared_ptr<const std::vector<uint8_t>> source;
    std::string source_name, config_json, preprocessor_json;
    int heads_override = 0;
    std::unique_ptr<FakeQuantHook> quant_hook;  // a quantized export's activation quantizers, for inference
    const ViT& vit() const { return model->vit(); }
    ActivationHook* hook() const { return quant_hook.get(); }

    ModelSource files() const {
        ModelSource src;
        src.safetensors = *source;
        src.safetensors_name = source_name, src.config_json = config_json, src.preprocessor_json = preprocessor_json;
        src.heads_override = heads_override;
        return src;
    }

    // The FP32 model as a model directory's files (export_fp32): {safetensors: Uint8Array, config: string,
    // preprocessor: string} ("" for a file it has none of) — a pruned model's config records its pruning.
    val export_fp32_js() const {
        return guard([&] {
            const LoadedModel& lm = model->fp32("export");
            const SafeTensors st = parse_safetensors(source->data(), source->size(), source_name);
            const Fp32Export e = export_fp32(lm.vit, files(), st);
            val out = val::object();
            out.set("safetensors", val::global("Uint8Array").new_(val(typed_memory_view(e.safetensors.size(), e.safetensors.data()))));
            out.set("config", e.config_json);
            out.set("preprocessor", e.preprocessor_json);
            return out;
        });
    }

    // Structured pruning on `train` (options: prune_options_from_json), in steps: see PruneHandle.
    PruneHandle* prune(std::string options, const DatasetHandle& train) const;

    SweepHandle* sweep(std::string spec, const DatasetHandle& eval, const DatasetHandle& calib) const {
        return guard([&] {
            const LoadedModel& lm = model->fp32("sweep");
            SweepSpec sp = sweep_spec_from_json(parse_json_bounded(spec, "JSON from JavaScript"), lm.vit.cfg);
            auto r = std::make_unique<SweepRunner>(lm.vit, eval.ds, calib.ds, sp, 1);
            auto* h = new SweepHandle;
            h->model = model;
            h->runner = std::move(r);
            for (size_t i = 0; i < h->runner->total(); ++i) h->runs.push_back(i);
            return h;
        });
    }

    // Part `shard` ("I/N", parse_shard's form) of that sweep: its runs are shard_runs(total, I/N), and its
    // identity (what merging checks) is hashed as the CLI hashes it, so parts from here and from the CLI merge.
    SweepHandle* sweep_part(std::string spec, const DatasetHandle& eval, const DatasetHandle& calib, std::string shard) const {
        return guard([&] {
            Shard sh;
            try {
                sh = parse_shard(shard);
            } catch (const std::runtime_error& e) {
                throw std::runtime_error(std::string("sweep: shard ") + e.what());
            }
            const LoadedModel& lm = model->fp32("sweep");
            SweepSpec sp = sweep_spec_from_json(parse_json_bounded(spec, "JSON from JavaScript"), lm.vit.cfg);
            auto h = std::make_unique<SweepHandle>();
            h->model = model;
            h->runner = std::make_unique<SweepRunner>(lm.vit, eval.ds, calib.ds, sp, 1);
            h->runs = shard_runs(h->runner->total(), sh);
            h->is_part = true;
            h->shard = sh;
            const SafeTensors st = parse_safetensors(source->data(), source->size(), source_name);
            h->identity = {tensors_fingerprint(st), model_config_fingerprint(files()), dataset_fingerprint(eval.ds),
                           dataset_fingerprint(calib.ds), source_name, "", ""};
            return h.release();
        });
    }

    // spec: {config: QuantConfig JSON (quantizer choices and the seed of the draw), objective: "mean" |
    // "worst", candidates: [bits], sensSize: images drawn from calib}.
    SensitivityHandle* sensitivities(std::string spec, const DatasetHandle& calib) const {
        return guard([&] {
            const LoadedModel& lm = model->fp32("sensitivities");
            const nlohmann::json j = parse_json_bounded(spec, "JSON from JavaScript");
            for (const auto& kv : j.items())
                if (kv.key() != "config" && kv.key() != "objective" && kv.key() != "candidates" && kv.key() != "sensSize")
                    throw std::runtime_error("sensitivities: unknown field '" + kv.key() + "'");
            const QuantConfig base = config_from_json(j.value("config", nlohmann::json::object()));
            const Objective obj = parse_objective(j.value("objective", std::string("mean")));
            const std::vector<int> cand = j.value("candidates", std::vector<int>{2, 3, 4, 5, 6, 7, 8});
            const long long n = j.value("sensSize", 64LL);
            if (n < 1) throw std::runtime_error("sensitivities: sensSize must be at least 1, found " + std::to_string(n));
            auto h = std::make_unique<SensitivityHandle>();
            h->model = model;
            h->data = prepare(calib.ds, lm.vit.cfg);
            if (size_t(n) > h->data.n)
                throw std::runtime_error("sensitivities: sensSize " + std::to_string(n) + " is larger than the calibration pool (" +
                                         std::to_string(h->data.n) + " images)");
            h->scratch = lm.vit;
            h->runner = std::make_unique<SensitivityRunner>(lm.vit, h->data, draw_calibration(h->data.n, size_t(n), base.seed), base, obj, cand);
            return h.release();
        });
    }

    QuantizedHandle* quantize(std::string config, const DatasetHandle& calib, bool integer) const {
        return guard([&] {
            const LoadedModel& lm = model->fp32("quantize");
            QuantConfig qc = config_from_json(parse_json_bounded(config, "JSON from JavaScript"));
            if (qc.method != Method::Ptq)
                throw std::runtime_error(std::string("quantize: method '") + method_name(qc.method) + "' runs in steps through sos()");
            return quantized_handle(bitlens::quantize(lm.vit, prepare(calib.ds, lm.vit.cfg), qc, 1), source, source_name, integer);
        });
    }

    // Gradients of the mean cross-entropy over the first `limit` images (0: all) w.r.t. every parameter,
    // as F32 safetensors in the checkpoint's own names and shapes — the file `bitlens grad --out` writes.
    val gradients(const DatasetHandle& d, size_t limit) const {
        return guard([&] {
            const LoadedModel& lm = model->fp32("gradients");
            const PreparedData data = prepare(d.ds, lm.vit.cfg, limit);
            const train::GradientResult g = train::gradients(lm.vit, data, data.n, 1);
            SafeTensors gs = f32_checkpoint(g.grads, parse_safetensors(source->data(), source->size(), source_name));
            char loss[40];
            std::snprintf(loss, sizeof loss, "%.17g", g.loss);
            gs.metadata = {{"loss", loss}, {"images", std::to_string(g.images)}, {"what", "d mean cross-entropy / d tensor"},
                           {"model", source_name}};
            const std::vector<uint8_t> bytes = serialize_safetensors(gs);
            val out = val::object();
            out.set("loss", g.loss);
            out.set("images", double(g.images));
            out.set("safetensors", val::global("Uint8Array").new_(val(typed_memory_view(bytes.size(), bytes.data()))));
            return out;
        });
    }

    // Quantization-aware training from the PTQ result on `train` (config: QuantConfig JSON, whose seed also
    // seeds the split and the epochs' order, as in `bitlens qat`; options: qat_options_from_json).
    QatHandle* qat(std::string config, std::string options, const DatasetHandle& train) const {
        return guard([&] {
            const LoadedModel& lm = model->fp32("qat");
            const QuantConfig qc = config_from_json(parse_json_bounded(config, "JSON from JavaScript"));
            const train::QatOptions o = qat_run_options(options, qc);
            // The first `limit` images are all the run uses: prepare only those.
            const PreparedData data = prepare(train.ds, lm.vit.cfg, o.limit);
            auto h = std::make_unique<QatHandle>();
            h->qrun = std::make_unique<train::QatRun>(lm.vit, data, qc, o);
            h->source = source, h->source_name = source_name;
            h->options = o;
            h->total_steps = h->qrun->advance(0).steps;
            // The FP32 model on the held-out split, for the learning curve's reference lines.
            if (h->qrun->fp32_validation().n) h->validation_fp32 = eval_json(h->qrun->fp32_validation()).dump();
            return h.release();
        });
    }

    // INQ from the FP32 weights on `train` (config: QuantConfig JSON with weights "pow2", whose seed also seeds the
    // split and the epochs' order, as in `bitlens inq`; options: inq_options_from_json).
    InqHandle* inq(std::string config, std::string options, const DatasetHandle& train) const {
        return guard([&] {
            const LoadedModel& lm = model->fp32("inq");
            const QuantConfig qc = config_from_json(parse_json_bounded(config, "JSON from JavaScript"));
            const train::InqOptions o = inq_run_options(options, qc);
            const PreparedData data = prepare(train.ds, lm.vit.cfg, o.train.limit);
            auto h = std::make_unique<InqHandle>();
            h->irun = std::make_unique<train::InqRun>(lm.vit, data, qc, o);
            h->source = source, h->source_name = source_name;
            h->partitions = o.partitions.size();
            return h.release();
        });
    }

    // SOS block reconstruction (config: QuantConfig JSON with method "sos"), calibrated on `calib`; with
    // `eval` (a DatasetHandle, or null/undefined) every stage is evaluated on its images.
    SosHandle* sos(std::string config, const DatasetHandle& calib, val eval) const {
        return guard([&] {
            const LoadedModel& lm = model->fp32("sos");
            const QuantConfig qc = config_from_json(parse_json_bounded(config, "JSON from JavaScript"));
            if (qc.method != Method::Sos) throw std::runtime_error(std::string("sos: the configuration's method is '") + method_name(qc.method) + "', not 'sos'");
            auto h = std::make_unique<SosHandle>();
            if (!eval.isNull() && !eval.isUndefined()) h->eval = prepare(eval.as<DatasetHandle*>(allow_raw_pointers())->ds, lm.vit.cfg);
            h->srun = std::make_unique<train::SosRun>(lm.vit, prepare(calib.ds, lm.vit.cfg), qc, train::SosOptions{},
                                                      h->eval.n ? &h->eval : nullptr);
            h->source = source, h->source_name = source_name;
            return h.release();
        });
    }

    // A Linear's FP32 weight by canonical name (e.g. "blocks.0.mlp.fc1").
    val weight(std::string name) const {
        return guard([&] {
            for (const Linear* l : vit().linears())
                if (l->name == name) return float_array(l->weight);
            throw std::runtime_error("no layer named '" + name + "'");
        });
    }

    std::string info() const {
        const ViTConfig& c = vit().cfg;
        return nlohmann::json{{"naming", naming_name(c.naming)},     {"config", c.config_source},
                              {"architecture", c.architecture},     {"dtype", model->dtype()},
                              {"parameters", vit().parameter_count()}, {"imageSize", {c.image_h, c.image_w}},
                              {"channels", c.channels},             {"patchSize", c.patch},
                              {"hiddenSize", c.hidden},             {"depth", c.depth},
                              {"heads", c.heads},                   {"mlpDim", c.mlp_dim},
                              {"numClasses", c.num_classes},        {"labels", c.labels},
                              {"distillationToken", c.dist_token},
                              {"layers", [&] {
                                   std::vector<std::string> v;
                                   for (const Linear* l : vit().linears()) v.push_back(l->name);
                                   return v;
                               }()},
                              {"points", [&] {
                                   std::vector<std::string> v;
                                   for (const ActPoint& p : vit().points) v.push_back(p.name);
                                   return v;
                               }()},
                              {"quantized", model->q ? bitlens::config_json(model->q->cfg) : nlohmann::json(nullptr)},
                              {"pruned", c.pruned()},
                              {"blocks", blocks_json(vit())}}
            .dump();
    }

    std::string evaluate(const DatasetHandle& d, size_t limit) const {
        return guard([&] {
            PreparedData data = prepare(d.ds, vit().cfg, limit);
            return eval_json(bitlens::evaluate(vit(), data, 1, hook())).dump();
        });
    }

    // Logits for one encoded image.
    std::string classify(val image_bytes, std::string name) const {
        return guard([&] { return nlohmann::json(logits_of(vit(), image_bytes, name, hook())).dump(); });
    }
    val attention(val image_bytes, std::string name, int block, bool full) const {
        return guard([&] { return attention_of(vit(), image_bytes, name, block, hook(), full); });
    }
    val forward_raw(val input) const {
        return guard([&] { return float_array(vit().forward(floats_of(input), hook())); });
    }
    // One encoded image as the model sees it: decoded, resized/cropped and normalised, CHW.
    val preprocess_image(val image_bytes, std::string name) const {
        return guard([&] {
            const std::vector<uint8_t> b = bytes_of(image_bytes);
            return float_array(preprocess(decode_image(b.data(), b.size(), name), vit().cfg.pp));
        });
    }
};

// A Model over an FP32 ViT made here from `from`'s model (a pruned one), as if loaded from the files export_fp32
// writes for it: those files become its source, so that its FP32 export, its gradients and its quantized exports
// name and shape the tensors as that model directory does. Without a config.json (nowhere to record the pruning)
// `from`'s files stay the source, and an export says why it cannot be written.
ModelHandle* derived_model_handle(ViT m, const ModelHandle& from) {
    auto h = std::make_unique<ModelHandle>();
    h->source_name = from.source_name, h->heads_override = from.heads_override;
    if (from.config_json.empty()) {
        h->source = from.source, h->preprocessor_json = from.preprocessor_json;
    } else {
        const SafeTensors st = parse_safetensors(from.source->data(), from.source->size(), from.source_name);
        Fp32Export e = export_fp32(m, from.files(), st);
        h->source = std::make_shared<const std::vector<uint8_t>>(std::move(e.safetensors));
        h->config_json = std::move(e.config_json), h->preprocessor_json = std::move(e.preprocessor_json);
    }
    h->model->fp.vit = std::move(m);
    h->model->fp.source_dtype = "F32";
    return h.release();
}

// Structured pruning in steps (train::PruneRun), like QatHandle: the importance is measured, the model pruned and
// evaluated when the handle is made; JS calls start() (epoch 0, the pruned model before recovery), then run(k)
// per event-loop turn until done(), then result() (the best epoch as a Model), summary(). Owns everything it needs
// (the run copies its training images and the FP32 weights; `from` is a copy of the files' handle fields).
class PruneHandle {
public:
    std::unique_ptr<train::PruneRun> prun;
    ModelHandle from;  // the unpruned model's source files (no model): what the pruned models' files derive from
    int epochs = 0;
    size_t total() const { return prun->steps(); }
    std::string start() const {
        return guard([&] {
            train::PruneProgress p;
            p.epochs = epochs, p.steps = prun->steps(), p.finished = &prun->history().front(), p.seconds = p.finished->seconds;
            return progress_json(p).dump();
        });
    }
    bool done() const { return prun->done(); }
    // Up to k recovery steps, never past an epoch's end (then that epoch is evaluated and reported in "finished").
    std::string run(size_t k) {
        return guard([&] { return progress_json(prun->advance(k)).dump(); });
    }
    // The best epoch so far (before any step: the pruned model) as a Model.
    ModelHandle* result() const {
        return guard([&] { return derived_model_handle(prun->result().model, from); });
    }
    // The pruned model before recovery, as a Model.
    ModelHandle* pruned() const {
        return guard([&] { return derived_model_handle(prun->result().pruned, from); });
    }
    // {best_epoch, train_images, val_images, history, validation_fp32, importance, kept_heads, kept_units, layers,
    // parameters_before, parameters}, as `bitlens prune --json` names them.
    std::string summary() const {
        return guard([&] {
            const train::PruneResult r = prun->result();
            return nlohmann::json{{"best_epoch", r.best_epoch},
                                  {"train_images", r.train_images},
                                  {"val_images", r.val_images},
                                  {"history", train::prune_history_json(r.history)},
                                  {"validation_fp32", r.fp32_val.n ? eval_json(r.fp32_val) : nlohmann::json(nullptr)},
                                  {"importance", train::importance_json(r.scores)},
                                  {"kept_heads", r.keep_heads},
                                  {"kept_units", r.keep_units},
                                  {"layers", train::layers_json(r.model)},
                                  {"parameters_before", r.parameters_before},
                                  {"parameters", r.parameters_after}}
                .dump();
        });
    }
};

PruneHandle* ModelHandle::prune(std::string options, const DatasetHandle& train) const {
    return guard([&] {
        const LoadedModel& lm = model->fp32("prune");
        const train::PruneOptions o = prune_run_options(options, lm.vit);
        const PreparedData data = prepare(train.ds, lm.vit.cfg, o.train.limit);
        auto h = std::make_unique<PruneHandle>();
        h->prun = std::make_unique<train::PruneRun>(lm.vit, data, o);
        h->from.source = source, h->from.source_name = source_name;
        h->from.config_json = config_json, h->from.preprocessor_json = preprocessor_json, h->from.heads_override = heads_override;
        h->epochs = o.train.epochs;
        return h.release();
    });
}

ModelHandle* load_model_js(val safetensors, std::string config, std::string preprocessor, std::string st_name, int heads) {
    return guard([&] {
        ModelSource src;
        src.safetensors = bytes_of(safetensors);
        src.safetensors_name = st_name;
        src.config_json = config;
        src.preprocessor_json = preprocessor;
        src.heads_override = heads;
        auto h = std::make_unique<ModelHandle>();
        *h->model = load_any(src);
        if (h->model->q) h->quant_hook = std::make_unique<FakeQuantHook>(*h->model->q);  // refers to *h->model, which stays put
        h->source = std::make_shared<const std::vector<uint8_t>>(std::move(src.safetensors));
        h->source_name = st_name;
        h->config_json = std::move(src.config_json), h->preprocessor_json = std::move(src.preprocessor_json);
        h->heads_override = heads;
        return h.release();
    });
}

}  // namespace

// The integer GEMM alone, for benchmarks (tests/bench/gemm-browser.mjs): M×N×K with codes in [0, 127] and int8
// (or, with int4, −8..7) weights, `iters` times with the SIMD128 or (when bound) the relaxed-SIMD kernel.
// Returns { seconds, checksum } as JSON; the checksum (Σ C) is the same for both kernels.
std::string bench_int_gemm(int M, int N, int K, bool int4, bool relaxed, int iters) {
    if (M < 1 || N < 1 || K < 1 || iters < 1 || M > 4096 || N > 4096 || K > 4096) return "{}";
    if (relaxed && !kernels::relaxed_simd_enabled()) return "{}";
    const size_t Kp = kernels::qs4_gemm_kp(size_t(K));
    std::vector<int8_t> A(size_t(M) * Kp, 0), W(size_t(N) * size_t(K));
    SplitMix64 rng(1);
    for (int m = 0; m < M; ++m)
        for (int k = 0; k < K; ++k) A[size_t(m) * Kp + size_t(k)] = int8_t(rng.next() % 128);
    for (int8_t& w : W) w = int4 ? int8_t(int(rng.next() % 16) - 8) : int8_t(int(rng.next() % 256) - 128);
    std::vector<int16_t> p8;
    std::vector<uint8_t> p4;
    if (int4) p4.resize(size_t(N) * Kp / 2), kernels::qs4_gemm_pack(size_t(N), size_t(K), W.data(), p4.data());
    else p8.resize(size_t(N) * kernels::qs8_gemm_kp(size_t(K))), kernels::qs8_gemm_pack(size_t(N), size_t(K), W.data(), p8.data());
    std::vector<int32_t> C(size_t(M) * size_t(N));
    const double t0 = emscripten_get_now();
    for (int it = 0; it < iters; ++it) {
        if (int4) (relaxed ? kernels::qs8_qc4w_gemm_2x4c16_wasmrelaxed : kernels::qs8_qc4w_gemm_2x4c8_wasmsimd)(size_t(M), size_t(N), size_t(K), A.data(), Kp, p4.data(), C.data(), size_t(N));
        else (relaxed ? kernels::qs8_gemm_2x4c16_wasmrelaxed : kernels::qs8_gemm_2x4c8_wasmsimd)(size_t(M), size_t(N), size_t(K), A.data(), Kp, p8.data(), C.data(), size_t(N));
    }
    const double seconds = (emscripten_get_now() - t0) / 1000;
    int64_t sum = 0;
    for (int32_t c : C) sum += c;
    return nlohmann::json{{"seconds", seconds}, {"checksum", sum}}.dump();
}

EMSCRIPTEN_BINDINGS(bitlens) {
    class_<DatasetHandle>("Dataset").function("size", &DatasetHandle::size).function("classes", &DatasetHandle::classes);
    class_<ModelHandle>("Model")
        .function("info", &ModelHandle::info)
        .function("evaluate", &ModelHandle::evaluate)
        .function("classify", &ModelHandle::classify)
        .function("quantize", &ModelHandle::quantize, allow_raw_pointers())
        .function("weight", &ModelHandle::weight)
        .function("attention", &ModelHandle::attention)
        .function("sweep", &ModelHandle::sweep, allow_raw_pointers())
        .function("sweepPart", &ModelHandle::sweep_part, allow_raw_pointers())
        .function("sensitivities", &ModelHandle::sensitivities, allow_raw_pointers())
        .function("gradients", &ModelHandle::gradients)
        .function("qat", &ModelHandle::qat, allow_raw_pointers())
        .function("inq", &ModelHandle::inq, allow_raw_pointers())
        .function("sos", &ModelHandle::sos, allow_raw_pointers())
        .function("prune", &ModelHandle::prune, allow_raw_pointers())
        .function("exportFp32", &ModelHandle::export_fp32_js)
        .function("forwardRaw", &ModelHandle::forward_raw)
        .function("preprocess", &ModelHandle::preprocess_image);
    class_<SweepHandle>("SweepRun")
        .function("total", &SweepHandle::total)
        .function("run", &SweepHandle::run)
        .function("finish", &SweepHandle::finish);
    class_<SensitivityHandle>("SensitivityRun")
        .function("total", &SensitivityHandle::total)
        .function("run", &SensitivityHandle::run)
        .function("finish", &SensitivityHandle::finish);
    class_<QatHandle>("QatRun")
        .function("total", &QatHandle::total)
        .function("start", &QatHandle::start)
        .function("done", &QatHandle::done)
        .function("run", &QatHandle::run)
        .function("best", &QatHandle::best, allow_raw_pointers())
        .function("summary", &QatHandle::summary);
    class_<InqHandle>("InqRun")
        .function("total", &InqHandle::total)
        .function("start", &InqHandle::start)
        .function("done", &InqHandle::done)
        .function("run", &InqHandle::run)
        .function("ptq", &InqHandle::ptq, allow_raw_pointers())
        .function("result", &InqHandle::result, allow_raw_pointers())
        .function("summary", &InqHandle::summary);
    class_<PruneHandle>("PruneRun")
        .function("total", &PruneHandle::total)
        .function("start", &PruneHandle::start)
        .function("done", &PruneHandle::done)
        .function("run", &PruneHandle::run)
        .function("result", &PruneHandle::result, allow_raw_pointers())
        .function("pruned", &PruneHandle::pruned, allow_raw_pointers())
        .function("summary", &PruneHandle::summary);
    class_<SosHandle>("SosRun")
        .function("total", &SosHandle::total)
        .function("done", &SosHandle::done)
        .function("run", &SosHandle::run)
        .function("result", &SosHandle::result, allow_raw_pointers())
        .function("summary", &SosHandle::summary);
    class_<QuantizedHandle>("QuantizedModel")
        .function("info", &QuantizedHandle::info)
        .function("evaluate", &QuantizedHandle::evaluate)
        .function("classify", &QuantizedHandle::classify)
        .function("exportSafetensors", &QuantizedHandle::export_safetensors)
        .function("forwardRaw", &QuantizedHandle::forward_raw)
        .function("attention", &QuantizedHandle::attention);
    function("_quantizeTensor", &quantize_tensor_js);
    function("_planMixed", &plan_mixed_js);
    function("_mergeSweeps", &merge_sweeps_js);
    function("_loadModel", &load_model_js, allow_raw_pointers());
    function("_loadIdx", &load_idx_js, allow_raw_pointers());
    function("_loadEncoded", &load_encoded_js, allow_raw_pointers());
    function("_takeError", &take_error);
    function("_heapInUse", &heap_in_use);
    function("_setRelaxedSimd", &kernels::set_relaxed_simd);
    function("_benchIntGemm", &bench_int_gemm);
}

// ---------------------------------------------------------------------------------------------------------------------
// What the page asks the library (issue 18 item 6): which files are images, which model class a folder is, whether a
// sweep's settings are valid, the images of an IDX pair, the results as CSV. One implementation each — the one the CLI
// uses — so that the page, the CLI and the package give the same answer and the same error. Registered in a block of
// their own (bitlens_page) below; web/bitlens.js wraps them.
namespace {

// image_extensions(): [".png", ".jpg", ".jpeg", ".bmp", ".gif"], what load_image_folder reads.
std::string image_extensions_js() {
    return guard([&] { return nlohmann::json(image_extensions()).dump(); });
}

// The size limits of src/base/size_limits.h that callers outside C++ apply too (the page's unzip): JSON.
std::string size_limits_js() {
    return guard([&] {
        return nlohmann::json{{"imageSide", limits::kImageSide},         {"imagePixels", limits::kImagePixels},
                              {"datasetImages", limits::kDatasetImages}, {"datasetBytes", limits::kDatasetBytes},
                              {"decompressedBytes", limits::kDecompressedBytes}}
            .dump();
    });
}

// Dataset class names (a JSON array of strings) → the model's class index of each, by map_classes: the rule every
// evaluation applies (a label's name, case-insensitive; a number k means class k; a model with generic labels takes
// the classes in their order). A name that is no class of the model is map_classes's error.
std::string class_indices_js(const ModelHandle& m, std::string names_json) {
    return guard([&] {
        const nlohmann::json j = parse_json_bounded(names_json, "JSON from JavaScript");
        if (!j.is_array()) throw std::runtime_error("classIndices: expected an array of class names");
        std::vector<std::string> names;
        for (const nlohmann::json& x : j) {
            if (!x.is_string()) throw std::runtime_error("classIndices: class names must be strings, found " + x.dump());
            names.push_back(x.get<std::string>());
        }
        return nlohmann::json(map_classes(names, m.vit().cfg)).dump();
    });
}

// A sweep's spec (the JSON ModelHandle::sweep takes) checked as the sweep checks it, and its calibration drawn from
// `calib` for the first seed (the pool's classes mapped onto the model's, the calibration size against the pool, the
// calibration classes and skew): the sweep's own errors, before any work. Returns the spec as the sweep records it.
std::string check_sweep_js(const ModelHandle& m, std::string spec, const DatasetHandle& calib) {
    return guard([&] {
        const ViTConfig& cfg = m.model->fp32("sweep").vit.cfg;
        const SweepSpec sp = sweep_spec_from_json(parse_json_bounded(spec, "JSON from JavaScript"), cfg);
        const std::vector<int> map = map_classes(calib.ds.class_names, cfg);
        std::vector<int> pool(calib.ds.labels.size());
        for (size_t i = 0; i < pool.size(); ++i) pool[i] = map[size_t(calib.ds.labels[i])];
        draw_sweep_calibration(pool, cfg.num_classes, size_t(sp.calib_size), sp.calib_classes, sp.calib_skew, sp.first_seed);
        return sweep_spec_json(sp).dump();
    });
}

// A training run's settings (kind "qat", "inq", "prune" or "sos"; `config`: the QuantConfig JSON, unused for pruning;
// `options`: the run's options JSON) checked as ModelHandle::qat / inq / prune check them before any work, without
// training images: throws the run's own error. What the page asks before it starts a run.
void check_training_js(const ModelHandle& m, std::string kind, std::string config, std::string options) {
    guard([&] {
        if (kind != "qat" && kind != "inq" && kind != "prune" && kind != "sos")
            throw std::runtime_error("checkTraining: unknown run '" + kind + "' (qat, inq, prune or sos)");
        const LoadedModel& lm = m.model->fp32(kind);
        if (kind == "prune") {
            prune_run_options(options, lm.vit);
            return 0;
        }
        const QuantConfig qc = config_from_json(parse_json_bounded(config, "JSON from JavaScript"));
        if (kind == "sos") {  // as ModelHandle::sos
            if (qc.method != Method::Sos) throw std::runtime_error(std::string("sos: the configuration's method is '") + method_name(qc.method) + "', not 'sos'");
            return 0;
        }
        if (kind == "qat") qat_run_options(options, qc);
        else inq_run_options(options, qc);
        return 0;
    });
}

// What an encoded image's header says, read by the decoder the library uses (stb_image's info, no pixels decoded):
// {format: "PNG" | "JPEG" | "BMP" | "GIF", width, height, channels}, or null when the bytes are none of the formats
// decode_image reads.
std::string image_info_js(val bytes) {
    return guard([&] {
        const std::vector<uint8_t> b = bytes_of(bytes);
        const ImageInfo info = probe_image(b.data(), b.size());
        if (info.format.empty()) return std::string("null");
        return nlohmann::json{{"format", info.format}, {"width", info.width}, {"height", info.height}, {"channels", info.channels}}.dump();
    });
}

// What sweep_csv reads of a sweep's JSON (sweep_json's form: bl.sweep()'s `raw`, bl.mergeSweeps()'s, or a `bitlens
// sweep --json` file): labels, images per class, FP32 per class, and per configuration its runs and groups.
SweepResult sweep_for_csv(const nlohmann::json& j) {
    auto number = [](const nlohmann::json& v) { return v.is_null() ? std::nan("") : v.get<double>(); };
    auto numbers = [&](const nlohmann::json& v, size_t n, const std::string& what) {
        if (!v.is_array() || v.size() != n)
            throw std::runtime_error(what + " must hold " + std::to_string(n) + " numbers, found " + (v.is_array() ? std::to_string(v.size()) : v.type_name()));
        std::vector<double> out;
        for (const nlohmann::json& x : v) out.push_back(number(x));
        return out;
    };
    SweepResult r;
    r.labels = j.at("labels").get<std::vector<std::string>>();
    const size_t C = r.labels.size();
    r.class_count = j.at("class_count").get<std::vector<size_t>>();
    if (r.class_count.size() != C) throw std::runtime_error("'class_count' must hold one count per label");
    r.fp32.per_class = numbers(j.at("fp32").at("per_class"), C, "'fp32.per_class'");
    for (const nlohmann::json& c : j.at("configs")) {
        ConfigResult cr;
        cr.config = config_from_json(c.at("config"));
        for (const nlohmann::json& run : c.at("runs")) {
            SeedRun s;
            s.seed = run.at("seed").get<uint64_t>();
            s.per_class = numbers(run.at("per_class"), C, "a run's 'per_class'");
            cr.runs.push_back(std::move(s));
        }
        for (const nlohmann::json& g : c.at("groups")) {
            GroupStats gs;
            gs.name = g.at("name").get<std::string>();
            gs.classes = g.at("classes").get<std::vector<int>>();
            for (int k : gs.classes)
                if (k < 0 || size_t(k) >= C) throw std::runtime_error("group '" + gs.name + "' names class " + std::to_string(k) + " of " + std::to_string(C));
            gs.fp32 = number(g.at("fp32"));
            gs.per_seed = numbers(g.at("per_seed"), cr.runs.size(), "group '" + gs.name + "' 'per_seed'");
            cr.stats.groups.push_back(std::move(gs));
        }
        r.configs.push_back(std::move(cr));
    }
    return r;
}

// A sweep's JSON → the CSV `bitlens sweep --csv` writes (sweep_csv: config,seed,kind,index,name,images,accuracy,fp32,drop).
std::string sweep_csv_js(std::string result_json) {
    return guard([&] {
        const nlohmann::json j = parse_json_bounded(result_json, "JSON from JavaScript");
        try {
            return sweep_csv(sweep_for_csv(j));
        } catch (const std::exception& e) {
            throw std::runtime_error(std::string("sweepCsv: expected a sweep's result (sweep(), mergeSweeps() or `bitlens sweep --json`): ") + e.what());
        }
    });
}

// The first `n` images of a dataset (all of them when n ≥ its size), with its classes: a new Dataset.
DatasetHandle* dataset_head_js(const DatasetHandle& d, double n) {
    return guard([&] {
        const size_t k = size_t(std::min(n, double(d.ds.size())));
        auto* h = new DatasetHandle;
        h->ds.class_names = d.ds.class_names;
        h->ds.images.assign(d.ds.images.begin(), d.ds.images.begin() + long(k));
        h->ds.labels.assign(d.ds.labels.begin(), d.ds.labels.begin() + long(k));
        return h;
    });
}

// Image i of a dataset as decoded: {width, height, channels, pixels: Uint8Array (row-major, channels interleaved),
// label: its class name}.
val dataset_image_js(const DatasetHandle& d, double i) {
    return guard([&] {
        if (!(i >= 0 && i < double(d.ds.size())))
            throw std::runtime_error("image: index " + std::to_string((long long)i) + " is outside the dataset's " + std::to_string(d.ds.size()) + " images");
        const Image8& im = d.ds.images[size_t(i)];
        val out = val::object();
        out.set("width", im.width);
        out.set("height", im.height);
        out.set("channels", im.channels);
        out.set("pixels", val::global("Uint8Array").new_(val(typed_memory_view(im.pixels.size(), im.pixels.data()))));
        out.set("label", d.ds.class_names[size_t(d.ds.labels[size_t(i)])]);
        return out;
    });
}

// The images' size and colour: the most common {width, height, channels} among them, `mixed` when they differ.
std::string dataset_shape_js(const DatasetHandle& d) {
    return guard([&] {
        std::map<std::tuple<int, int, int>, size_t> count;
        for (const Image8& im : d.ds.images) ++count[{im.width, im.height, im.channels}];
        if (count.empty()) return std::string("null");
        auto best = count.begin();
        for (auto it = count.begin(); it != count.end(); ++it)
            if (it->second > best->second) best = it;
        const auto [w, h, c] = best->first;
        return nlohmann::json{{"width", w}, {"height", h}, {"channels", c}, {"mixed", count.size() > 1}}.dump();
    });
}

}  // namespace

EMSCRIPTEN_BINDINGS(bitlens_page) {
    function("_imageExtensions", &image_extensions_js);
    function("_sizeLimits", &size_limits_js);
    function("_classIndices", &class_indices_js);
    function("_checkSweep", &check_sweep_js);
    function("_checkTraining", &check_training_js);
    function("_imageInfo", &image_info_js);
    function("_sweepCsv", &sweep_csv_js);
    function("_datasetHead", &dataset_head_js, allow_raw_pointers());
    function("_datasetImage", &dataset_image_js);
    function("_datasetShape", &dataset_shape_js);
}
