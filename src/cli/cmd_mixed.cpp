// bitlens mixed: sensitivity-driven mixed precision under an exact average-bit budget, compared with
// the uniform configuration of the same nominal bit-width over several calibration seeds.
#include <cmath>
#include <cstdio>
#include <iostream>

#include "cli.h"
#include "eval.h"
#include "export.h"
#include "mixed.h"
#include "model.h"
#include "sweep.h"
#include "sos.h"

namespace bitlens::cli {

namespace {

double parse_budget(const std::string& s, const std::string& opt) {
    char* end = nullptr;
    const double b = std::strtod(s.c_str(), &end);
    if (s.empty() || *end || !(b >= 2.0 && b <= 8.0)) throw UsageError("--" + opt + " must be an average bit-width from 2 to 8, found '" + s + "'");
    return b;
}

// One configuration over the seeds: the sweep's statistics (sweep_stats), plus its size.
struct Summary {
    SweepStats stats;
    std::vector<uint64_t> seeds;
    double bits_per_weight = 0;
    size_t model_bytes = 0;
};

Summary summarise(const std::vector<EvalResult>& rs, const std::vector<uint64_t>& seeds, const EvalResult& fp, double bpw,
                  size_t bytes) {
    std::vector<std::vector<double>> table;
    std::vector<double> top1;
    for (const EvalResult& r : rs) table.push_back(r.per_class), top1.push_back(r.top1);
    return {sweep_stats(table, top1, fp.per_class, fp.top1, fp.class_count), seeds, bpw, bytes};
}

json summary_json(const Summary& s, const std::vector<std::string>& labels) {
    const SweepStats& t = s.stats;
    return {{"top1_mean", t.top1_mean},
            {"top1_std", t.top1_std},
            {"per_class_mean", t.class_mean},
            {"worst_class", {{"index", t.worst_class}, {"label", labels[size_t(t.worst_class)]}, {"accuracy", t.worst_class_mean}}},
            {"worst_case", {{"accuracy", t.worst_case}, {"seed", s.seeds[t.worst_case_seed]}}},
            {"bits_per_weight", s.bits_per_weight},
            {"model_bytes", s.model_bytes}};
}

}  // namespace

int cmd_mixed(const Args& a) {
    QuantConfig base = quant_config(a);
    // The weights' budget: an average bit-width, or the whole model's size in bytes.
    const bool by_bytes = a.opts.count("max-bytes") > 0;
    if (by_bytes == (a.opts.count("budget") > 0)) throw UsageError("give one of --budget BITS or --max-bytes N");
    const long long max_bytes = by_bytes ? a.num("max-bytes", 0, 1, 1LL << 40) : 0;
    const double wb = by_bytes ? 0.0 : parse_budget(a.get("budget"), "budget");
    const double ab = a.opts.count("abudget") ? parse_budget(a.get("abudget"), "abudget") : by_bytes ? 8.0 : wb;
    const std::string obj = a.get("objective", "mean");
    if (obj != "mean" && obj != "worst") throw UsageError("--objective must be mean or worst, found '" + obj + "'");
    const Objective objective = parse_objective(obj);
    const std::vector<int> candidates = a.bits_list("candidates", "2,3,4,5,6,7,8");
    const int seeds = int(a.num("seeds", 5, 1, 1000));
    const int jobs = int(a.num("jobs", 0, 1, 256));
    const size_t sens_size = size_t(a.num("sens-size", 64, 1, 1 << 20));

    const LoadedModel lm = load_fp32(model_source(a), "bitlens mixed");
    PreparedData calib = prepare(load_dataset(a.need("calib")), lm.vit.cfg);
    PreparedData data = prepare(load_dataset(a.need("eval")), lm.vit.cfg, size_t(a.num("limit", 0, 1, 1L << 30)));

    // Sensitivities on a fixed draw from the calibration pool, then the allocation.
    if (sens_size > calib.n)
        throw UsageError("--sens-size " + std::to_string(sens_size) + " is larger than the calibration pool (" + std::to_string(calib.n) +
                         " images)");
    const std::vector<size_t> sens_images = draw_calibration(calib.n, sens_size, base.seed);
    QuantConfig sens_base = base;  // sensitivities are PTQ's (--method applies to the quantized models below)
    sens_base.method = Method::Ptq;
    Sensitivities sens = measure_sensitivities(lm.vit, calib, sens_images, sens_base, objective, candidates, jobs);
    MixedPlan plan = by_bytes ? plan_mixed_bytes(sens, max_bytes, ab) : plan_mixed(sens, wb, ab);

    // Uniform at the same nominal bit-width: the plan's average rounded down (for a size budget, the
    // widest uniform weights that fit are what a user would compare with).
    QuantConfig uni = base;
    uni.wbits = std::max(2, int(std::floor(by_bytes ? plan.weight_bits_avg : wb))), uni.abits = int(std::floor(ab));
    QuantConfig mix = base;
    mix.layer_bits = plan.layer_bits, mix.point_bits = plan.point_bits;
    std::vector<EvalResult> ru(static_cast<size_t>(seeds)), rm(static_cast<size_t>(seeds));
    std::vector<uint64_t> seed_list;
    double bpw_u = 0, bpw_m = 0;
    size_t bytes_u = 0, bytes_m = 0;
    for (int s = 0; s < seeds; ++s) {
        seed_list.push_back(base.seed + uint64_t(s));
        uni.seed = mix.seed = base.seed + uint64_t(s);
        QuantizedViT qu = train::quantize_method(lm.vit, calib, uni, jobs), qm = train::quantize_method(lm.vit, calib, mix, jobs);
        ru[size_t(s)] = evaluate_quantized(qu, data, jobs);
        rm[size_t(s)] = evaluate_quantized(qm, data, jobs);
        bpw_u = qu.bits_per_weight(), bytes_u = qu.model_bytes();  // the same for every seed
        bpw_m = qm.bits_per_weight(), bytes_m = qm.model_bytes();
    }
    const EvalResult fp = evaluate(lm.vit, data, jobs);
    const Summary su = summarise(ru, seed_list, fp, bpw_u, bytes_u), sm = summarise(rm, seed_list, fp, bpw_m, bytes_m);

    const std::vector<std::string>& labels = lm.vit.cfg.labels;
    if (a.flags.count("json")) {
        json j = {{"objective", obj},
                  {"budget", by_bytes ? json{{"max_bytes", max_bytes}, {"activations", ab}} : json{{"weights", wb}, {"activations", ab}}},
                  {"allocation", plan_json(plan, sens)},
                  {"seeds", seed_list},
                  {"fp32", eval_json(fp)},
                  {"uniform", summary_json(su, labels)},
                  {"mixed", summary_json(sm, labels)},
                  {"uniform_config", config_json(uni)}};
        std::cout << j.dump() << "\n";
        return 0;
    }
    if (by_bytes)
        std::printf("mixed precision, objective %s: budget %lld bytes for the model, %.2f bits per activation value\n", obj.c_str(), max_bytes, ab);
    else
        std::printf("mixed precision, objective %s: budget %.2f bits per weight, %.2f per activation value\n", obj.c_str(), wb, ab);
    std::printf("used: %.3f bits per weight (%s %lld of %lld), %.3f per activation value (%lld of %lld); model %lld bytes\n\n",
                plan.weight_bits_avg, by_bytes ? "weight bytes" : "bits", plan.weight_cost, plan.weight_budget, plan.act_bits_avg,
                plan.act_cost, plan.act_budget, plan.model_bytes);
    std::printf("%-26s %10s %5s\n", "layer", "weights", "bits");
    for (const KnapsackItem& it : sens.weights)
        std::printf("%-26s %10lld %5d\n", it.name.c_str(), it.cost[0] / it.bits[0], plan.layer_bits.at(it.name));
    std::printf("\n%-26s %10s %5s\n", "activation point", "values", "bits");
    for (const KnapsackItem& it : sens.activations)
        std::printf("%-26s %10lld %5d\n", it.name.c_str(), it.cost[0] / it.bits[0], plan.point_bits.at(it.name));
    std::printf("\nover %d calibration seeds, %zu evaluation images (FP32 top-1 %.2f%%):\n", seeds, data.n, 100 * fp.top1);
    std::printf("%-10s %9s %14s %22s %12s %10s\n", "config", "bits/w", "top-1", "worst class", "worst case", "bytes");
    auto row = [&](const char* name, const Summary& s) {
        char wc[64];
        const SweepStats& t = s.stats;
        std::snprintf(wc, sizeof wc, "%s %.2f%%", labels[size_t(t.worst_class)].c_str(), 100 * t.worst_class_mean);
        std::printf("%-10s %9.3f %7.2f ± %.2f%% %22s %11.2f%% %10zu\n", name, s.bits_per_weight, 100 * t.top1_mean, 100 * t.top1_std, wc,
                    100 * t.worst_case, s.model_bytes);
    };
    row(uni.name().c_str(), su);
    row("mixed", sm);
    return 0;
}

}  // namespace bitlens::cli
