// What qat and inq share: their training options and the end of a run (export, evaluation).
#include <filesystem>

#include "cli.h"
#include "parallel.h"

namespace bitlens::cli {

train::QatOptions train_options(const Args& a, uint64_t seed, const std::string& epochs, int default_epochs, int min_epochs) {
    train::QatOptions o;
    o.epochs = int(a.num(epochs, default_epochs, min_epochs, 1000));
    o.batch = size_t(a.num("batch", 64, 1, 1 << 16));
    o.lr = float(a.real("lr", o.lr, 0, 10));
    o.val_split = a.real("val-split", o.val_split, 0, 1);
    o.distill = !a.flags.count("no-distill");
    o.label_smoothing = float(a.real("label-smoothing", 0, 0, 0.99));
    o.distill_weight = float(a.real("distill-weight", o.distill_weight, 0, 1));
    o.temperature = float(a.real("temperature", o.temperature, 0.01, 100));
    o.seed = seed;
    o.jobs = int(a.num("jobs", 0, 1, 256));
    if (o.jobs == 0) o.jobs = default_jobs();
    o.limit = size_t(a.num("train-limit", 0, 1, 1L << 30));
    return o;
}

EvalResult export_and_evaluate(const Args& a, json& out, const QuantizedViT& q, const ModelSource& src, const SafeTensors& st,
                               const PreparedData* eval, int jobs) {
    const std::string out_dir = a.get("out");
    if (!out_dir.empty()) {
        out["file_bytes"] = write_quantized(out_dir, q, src, st);
        out["out"] = (std::filesystem::path(out_dir) / "model.safetensors").string();
    }
    EvalResult ev;
    if (eval) {
        ev = evaluate_quantized(q, *eval, jobs);
        out.update(eval_json(ev));
    }
    return ev;
}

}  // namespace bitlens::cli
