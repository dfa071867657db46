// bitlens prune: structured pruning of attention heads and MLP units (src/train/pruning.h), recovery by
// fine-tuning (--distill: from the unpruned model's logits and block outputs), and the pruned model written as a
// model directory of its own (--out).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "cli.h"
#include "eval.h"
#include "export.h"
#include "pruning.h"

namespace bitlens::cli {

namespace {
json summary(const EvalResult& r, size_t parameters) {
    return {{"top1", r.top1}, {"worst_class", r.worst_class}, {"worst_label", r.labels.at(size_t(r.worst_class))},
            {"worst", r.per_class[size_t(r.worst_class)]}, {"per_class", r.per_class}, {"parameters", parameters}};
}
}  // namespace

int cmd_prune(const Args& a) {
    train::PruneOptions o;
    const train::PruneOptions defaults;
    o.train = train_options(a, uint64_t(a.num("seed", 0, 0, 1L << 62)), "epochs", defaults.train.epochs, 0);
    if (!a.opts.count("lr")) o.train.lr = defaults.train.lr;
    o.train.distill = a.flags.count("distill") > 0;
    auto fraction = [&](const std::string& k) {  // any number here; PruneOptions::validate names the range (0, 1]
        const std::string v = a.get(k, "1");
        char* end = nullptr;
        const double f = std::strtod(v.c_str(), &end);
        if (v.empty() || *end) throw UsageError("--" + k + " must be a fraction in (0, 1], found '" + v + "'");
        return f;
    };
    o.keep_heads = fraction("keep-heads");
    o.keep_mlp = fraction("keep-mlp");
    if (!a.opts.count("keep-heads") && !a.opts.count("keep-mlp"))
        throw UsageError("bitlens prune: give --keep-heads F and/or --keep-mlp F (fractions in (0, 1] of each layer's heads / MLP units)");
    usage_check([&] { o.method = train::parse_importance(a.get("importance", "taylor")); });
    o.importance_images = size_t(a.num("importance-images", long(o.importance_images), 0, 1L << 30));
    o.feature_weight = a.real("feature-weight", o.feature_weight, 0, 1e6);
    o.feature_blocks = int(a.num("feature-blocks", o.feature_blocks, -1, 4096));
    usage_check([&] { o.validate(); });

    const ModelSource src = model_source(a);
    const SafeTensors st = parse_safetensors(src.safetensors.data(), src.safetensors.size(), src.safetensors_name);
    const LoadedModel lm = load_fp32(src, st, "bitlens prune");
    const ViT& fp = lm.vit;
    const PreparedData train_data = prepare(load_dataset(a.need("train"), a.get("train-labels")), fp.cfg, o.train.limit);
    const PreparedData eval_data = prepare(load_dataset(a.need("eval")), fp.cfg, size_t(a.num("limit", 0, 1, 1L << 30)));
    const bool as_json = a.flags.count("json") > 0;

    const train::PruneResult r = train::prune(fp, train_data, o, [&](const train::PruneProgress& p) {
        if (as_json || !p.finished) return true;
        const train::PruneEpoch& e = *p.finished;
        if (e.epoch == 0)
            std::fprintf(stderr, "pruned (%s importance): validation top-1 %.2f%%, worst class %.2f%%  (%.0f s)\n",
                         train::importance_name(o.method), 100 * e.val_top1, 100 * e.val_worst, e.seconds);
        else
            std::fprintf(stderr, "epoch %d/%d: loss %.4f, validation top-1 %.2f%%, worst class %.2f%%  (%.0f s)\n", e.epoch,
                         o.train.epochs, e.train_loss, 100 * e.val_top1, 100 * e.val_worst, e.seconds);
        return true;
    });

    const int jobs = o.train.jobs;
    const EvalResult ev_fp = evaluate(fp, eval_data, jobs), ev_pruned = evaluate(r.pruned, eval_data, jobs);
    const EvalResult ev = o.train.epochs ? evaluate(r.model, eval_data, jobs) : ev_pruned;
    json out = {{"keep_heads", o.keep_heads},
                {"keep_mlp", o.keep_mlp},
                {"distill", o.train.distill},
                {"epochs", o.train.epochs},
                {"importance", train::importance_json(r.scores)},
                {"kept_heads", r.keep_heads},
                {"kept_units", r.keep_units},
                {"layers", train::layers_json(r.model)},
                {"parameters_before", r.parameters_before},
                {"parameters", r.parameters_after},
                {"parameter_ratio", double(r.parameters_after) / double(r.parameters_before)},
                {"fp32", summary(ev_fp, r.parameters_before)},
                {"pruned", summary(ev_pruned, r.parameters_after)},
                {"recovered", o.train.epochs ? summary(ev, r.parameters_after) : json(nullptr)},
                {"best_epoch", r.best_epoch},
                {"history", train::prune_history_json(r.history)},
                {"train_images", r.train_images},
                {"val_images", r.val_images}};
    const std::string out_dir = a.get("out");
    if (!out_dir.empty()) {
        out["file_bytes"] = write_fp32(out_dir, r.model, src, st);
        out["out"] = (std::filesystem::path(out_dir) / "model.safetensors").string();
    }
    out.update(eval_json(ev));
    if (as_json) {
        std::cout << out.dump() << "\n";
        return 0;
    }
    const ViTConfig& c = r.model.cfg;
    std::printf("importance (%s, %zu images) and what stays, per layer:\n", train::importance_name(o.method), r.scores.images);
    for (size_t b = 0; b < r.keep_heads.size(); ++b) {
        std::string hs;
        for (size_t h = 0; h < r.scores.heads[b].size(); ++h) {
            const bool kept = std::binary_search(r.keep_heads[b].begin(), r.keep_heads[b].end(), int(h));
            char buf[48];
            std::snprintf(buf, sizeof buf, " %s%.3g%s", kept ? "" : "(", r.scores.heads[b][h], kept ? "" : ")");
            hs += buf;
        }
        std::printf("  layer %zu: heads%s -> %d kept; MLP %d of %zu units kept\n", b, hs.c_str(), c.block_heads(b), c.block_mlp(b),
                    r.scores.units[b].size());
    }
    auto row = [](const char* name, const EvalResult& e, size_t params) {
        std::printf("  %-22s %9zu %8.2f%% %8.2f%%  (%s)\n", name, params, 100 * e.top1, 100 * e.per_class[size_t(e.worst_class)],
                    e.labels[size_t(e.worst_class)].c_str());
    };
    std::printf("\n  %-22s %9s %9s %9s\n", "model", "params", "top-1", "worst");
    row("FP32", ev_fp, r.parameters_before);
    row("pruned", ev_pruned, r.parameters_after);
    if (o.train.epochs) {
        const std::string rec = std::string(o.train.distill ? "distilled" : "fine-tuned") + " (epoch " + std::to_string(r.best_epoch) + ")";
        row(rec.c_str(), ev, r.parameters_after);
    }
    if (!out_dir.empty()) std::printf("\nwrote %s (%zu bytes)\n", out["out"].get<std::string>().c_str(), out["file_bytes"].get<size_t>());
    return 0;
}

}  // namespace bitlens::cli
