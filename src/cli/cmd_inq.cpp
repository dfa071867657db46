// bitlens inq: incremental power-of-two quantization of the weights (INQ) with retraining between the
// partition steps; reports the held-out accuracy per step and the final model on --eval.
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli.h"
#include "eval.h"
#include "export.h"
#include "inq.h"

namespace bitlens::cli {

namespace {
std::vector<double> parse_partitions(const std::string& s) {
    std::vector<double> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        char* end = nullptr;
        const double v = std::strtod(item.c_str(), &end);
        if (item.empty() || *end) throw UsageError("--partitions: '" + item + "' is not a number (expected e.g. 50,75,87.5,100)");
        out.push_back(v);
    }
    return out;
}
}  // namespace

int cmd_inq(const Args& a) {
    if (a.opts.count("weights") && a.get("weights") != "pow2")
        throw UsageError("bitlens inq quantizes weights to powers of two; --weights " + a.get("weights") + " does not apply");
    a.need("wbits");
    QuantConfig qc = quant_config(a);
    qc.weights = QType::Pow2;
    usage_check([&] { qc.validate(); });
    train::InqOptions o;
    o.train = train_options(a, qc.seed, "epochs-per-step", 1);
    if (a.opts.count("partitions")) o.partitions = parse_partitions(a.get("partitions"));
    usage_check([&] { o.validate(); });

    const ModelSource src = model_source(a);
    const SafeTensors st = parse_safetensors(src.safetensors.data(), src.safetensors.size(), src.safetensors_name);
    const LoadedModel lm = load_fp32(src, st, "bitlens inq");
    const PreparedData train_data = prepare(load_dataset(a.need("train"), a.get("train-labels")), lm.vit.cfg, o.train.limit);
    const bool has_eval = !a.get("eval").empty();
    PreparedData eval_data;
    if (has_eval) eval_data = prepare(load_dataset(a.get("eval")), lm.vit.cfg, size_t(a.num("limit", 0, 1, 1L << 30)));
    const bool as_json = a.flags.count("json") > 0;

    train::InqResult r = train::inq(lm.vit, train_data, qc, o, [&](const train::InqProgress& p) {
        if (!as_json && p.finished) {
            const train::InqStep& s = *p.finished;
            if (s.step == 0)
                std::fprintf(stderr, "PTQ (all weights at once): validation top-1 %.2f%%, worst class %.2f%%  (%.0f s)\n",
                             100 * s.val_top1, 100 * s.val_worst, s.seconds);
            else
                std::fprintf(stderr, "step %d: %g%% frozen: top-1 %.2f%% (worst %.2f%%), retrained %.2f%% (worst %.2f%%)  (%.0f s)\n",
                             s.step, s.partition, 100 * s.frozen_top1, 100 * s.frozen_worst, 100 * s.val_top1, 100 * s.val_worst,
                             s.seconds);
        }
        return true;
    });
    const int integer_layers = a.flags.count("integer") ? enable_integer(r.q) : 0;
    json out = {{"config", config_json(qc)},
                {"partitions", o.partitions},
                {"history", train::inq_history_json(r.history)},
                {"train_images", r.train_images},
                {"val_images", r.val_images},
                {"model_bytes", r.q.model_bytes()},
                {"bits_per_weight", r.q.bits_per_weight()},
                {"integer_layers", integer_layers}};
    const EvalResult ev = export_and_evaluate(a, out, r.q, src, st, has_eval ? &eval_data : nullptr, o.train.jobs);
    if (as_json) {
        std::cout << out.dump() << "\n";
        return 0;
    }
    std::printf("%s INQ (power-of-two weights) after %zu partition steps\n", qc.name().c_str(), o.partitions.size());
    if (has_eval) std::cout << eval_table(ev);
    return 0;
}

}  // namespace bitlens::cli
