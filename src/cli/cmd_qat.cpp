// bitlens qat: quantization-aware training from the PTQ result, distilled from the FP32 model by default;
// keeps the best epoch on a held-out split of the training images, reports top-1 and the worst class. With
// --budget, QBitOpt: the bit-widths are allocated again during training under the budget (src/train/qbitopt.h).
#include <cmath>
#include <cstdio>
#include <iostream>

#include "cli.h"
#include "eval.h"
#include "export.h"
#include "mixed.h"
#include "qat.h"

namespace bitlens::cli {

int cmd_qat(const Args& a) {
    const QuantConfig qc = quant_config(a);
    train::QatOptions o = train_options(a, qc.seed, "epochs", 3, 0);
    auto budget = [&](const std::string& k) {
        const double b = a.real(k, 0, 0, 8);
        if (a.opts.count(k) && !(b > 0)) throw UsageError("--" + k + " must be an average bit-width above 0, found '" + a.get(k) + "'");
        return b;
    };
    o.budget = budget("budget"), o.abudget = budget("abudget");
    usage_check([&] { o.objective = parse_objective(a.get("objective", "mean")); });
    if (a.opts.count("candidates")) o.candidates = a.bits_list("candidates", "");
    o.realloc_every = size_t(a.num("realloc-every", 0, 1, 1L << 30));
    o.fisher_batches = size_t(a.num("fisher-batches", long(o.fisher_batches), 1, 1L << 20));
    o.sensitivity_decay = a.real("sensitivity-decay", o.sensitivity_decay, 0, 1);
    usage_check([&] { o.validate(); });

    const ModelSource src = model_source(a);
    const SafeTensors st = parse_safetensors(src.safetensors.data(), src.safetensors.size(), src.safetensors_name);
    const LoadedModel lm = load_fp32(src, st, "bitlens qat");
    const PreparedData train_data = prepare(load_dataset(a.need("train"), a.get("train-labels")), lm.vit.cfg, o.limit);
    const bool has_eval = !a.get("eval").empty();
    PreparedData eval_data;
    if (has_eval) eval_data = prepare(load_dataset(a.get("eval")), lm.vit.cfg, size_t(a.num("limit", 0, 1, 1L << 30)));
    const bool as_json = a.flags.count("json") > 0;

    const train::QatResult r = train::qat(lm.vit, train_data, qc, o, [&](const train::QatProgress& p) {
        if (as_json) return true;
        if (p.allocated) {
            const train::Allocation& al = *p.allocated;
            std::fprintf(stderr, "step %zu: bits allocated (%zu changed): %.3f per weight, %.3f per activation value  (%.0f s)\n", al.step,
                         al.changed, al.avg_wbits, al.avg_abits, p.seconds);
        }
        if (p.finished) {
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
                {"bits_per_weight", r.q.bits_per_weight()}, {"avg_wbits", r.avg_wbits}, {"avg_abits", r.avg_abits}};
    if (o.budget > 0) {
        json hist = json::array();
        for (const train::Allocation& al : r.allocations) hist.push_back(train::allocation_json(al, r.q.model));
        const json& kept = hist[size_t(r.kept_allocation)];
        out["budget"] = {{"weights", o.budget}, {"activations", o.abudget > 0 ? json(o.abudget) : json(nullptr)},
                         {"objective", a.get("objective", "mean")}, {"candidates", o.candidates}, {"fisher_batches", o.fisher_batches},
                         {"sensitivity_decay", o.sensitivity_decay}};
        out["layer_bits"] = kept["layer_bits"], out["point_bits"] = kept["point_bits"];
        out["kept_allocation"] = r.kept_allocation, out["allocations"] = hist;
    }
    const EvalResult ev = export_and_evaluate(a, out, r.q, src, st, has_eval ? &eval_data : nullptr, o.jobs);
    if (as_json) {
        std::cout << out.dump() << "\n";
        return 0;
    }
    std::printf("%s after QAT (best epoch %d of %d on %zu held-out images): %.3f bits per weight (%.3f with scales), %.3f per activation value\n",
                r.q.cfg.name().c_str(), r.best_epoch, o.epochs, r.val_images, r.avg_wbits, r.q.bits_per_weight(), r.avg_abits);
    if (o.budget > 0) {
        const train::Allocation& al = r.allocations[size_t(r.kept_allocation)];
        const std::vector<const Linear*> ls = r.q.model.linears();
        std::printf("allocation from step %zu (%zu allocations):\n", al.step, r.allocations.size());
        for (size_t i = 0; i < ls.size(); ++i) std::printf("  %-26s %2d bits\n", ls[i]->name.c_str(), al.layer_bits[i]);
        if (o.abudget > 0)
            for (size_t p = 0; p < r.q.model.points.size(); ++p)
                if (al.point_bits[p]) std::printf("  %-26s %2d bits\n", r.q.model.points[p].name.c_str(), al.point_bits[p]);
    }
    if (has_eval) std::cout << eval_table(ev);
    return 0;
}

}  // namespace bitlens::cli
