// bitlens qat: quantization-aware training from the PTQ result, distilled from the FP32 model by default;
// keeps the best epoch on a held-out split of the training images, reports top-1 and the worst class.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli.h"
#include "eval.h"
#include "export.h"
#include "parallel.h"
#include "qat.h"

namespace bitlens::cli {

namespace {
double real(const Args& a, const std::string& k, double def, double lo, double hi) {
    auto it = a.opts.find(k);
    if (it == a.opts.end()) return def;
    char* end = nullptr;
    const double v = std::strtod(it->second.c_str(), &end);
    if (it->second.empty() || *end || !(v >= lo && v <= hi))
        throw UsageError("--" + k + " must be a number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", found '" +
                         it->second + "'");
    return v;
}
}  // namespace

int cmd_qat(const Args& a) {
    const QuantConfig qc = quant_config(a);
    train::QatOptions o;
    o.epochs = int(a.num("epochs", 3, 0, 1000));
    o.batch = size_t(a.num("batch", 64, 1, 1 << 16));
    o.lr = float(real(a, "lr", o.lr, 0, 10));
    o.val_split = real(a, "val-split", o.val_split, 0, 1);
    o.distill = !a.flags.count("no-distill");
    o.label_smoothing = float(real(a, "label-smoothing", 0, 0, 0.99));
    o.distill_weight = float(real(a, "distill-weight", o.distill_weight, 0, 1));
    o.temperature = float(real(a, "temperature", o.temperature, 0.01, 100));
    o.seed = qc.seed;
    o.jobs = int(a.num("jobs", 0, 1, 256));
    if (o.jobs == 0) o.jobs = default_jobs();
    o.limit = size_t(a.num("train-limit", 0, 1, 1L << 30));
    o.validate();

    const ModelSource src = model_source(a);
    const SafeTensors st = parse_safetensors(src.safetensors.data(), src.safetensors.size(), src.safetensors_name);
    const LoadedModel lm = load_fp32(src, st, "bitlens qat");
    const PreparedData train_data = prepare(load_dataset(a.need("train"), a.get("train-labels")), lm.vit.cfg, o.limit);
    const bool has_eval = !a.get("eval").empty();
    PreparedData eval_data;
    if (has_eval) eval_data = prepare(load_dataset(a.get("eval")), lm.vit.cfg, size_t(a.num("limit", 0, 1, 1L << 30)));
    const bool as_json = a.flags.count("json") > 0;

    const train::QatResult r = train::qat(lm.vit, train_data, qc, o, [&](const train::QatProgress& p) {
        if (!as_json && p.finished) {
            const train::EpochStats& e = *p.finished;
            if (e.epoch == 0)
                std::fprintf(stderr, "PTQ start: validation top-1 %.2f%%, worst class %.2f%%  (%.0f s)\n", 100 * e.val_top1,
                             100 * e.val_worst, e.seconds);
            else
                std::fprintf(stderr, "epoch %d/%d: loss %.4f, validation top-1 %.2f%%, worst class %.2f%%  (%.0f s)\n", e.epoch,
                             o.epochs, e.train_loss, 100 * e.val_top1, 100 * e.val_worst, e.seconds);
        }
        return true;
    });
    json out = {{"config", config_json(qc)}, {"best_epoch", r.best_epoch}, {"history", train::history_json(r.history)},
                {"train_images", r.train_images}, {"val_images", r.val_images}, {"model_bytes", r.q.model_bytes()},
                {"bits_per_weight", r.q.bits_per_weight()}};
    const std::string out_dir = a.get("out");
    if (!out_dir.empty()) {
        out["file_bytes"] = write_quantized(out_dir, r.q, src, st);
        out["out"] = (std::filesystem::path(out_dir) / "model.safetensors").string();
    }
    EvalResult ev;
    if (has_eval) {
        ev = evaluate_quantized(r.q, eval_data, o.jobs);
        out.update(eval_json(ev));
    }
    if (as_json) {
        std::cout << out.dump() << "\n";
        return 0;
    }
    std::printf("%s after QAT (best epoch %d of %d on %zu held-out images)\n", qc.name().c_str(), r.best_epoch, o.epochs, r.val_images);
    if (has_eval) std::cout << eval_table(ev);
    return 0;
}

}  // namespace bitlens::cli
