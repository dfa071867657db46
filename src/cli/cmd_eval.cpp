// bitlens eval: top-1, per-class accuracy and the worst class of a model: an FP32 (or FP16/BF16)
// checkpoint, or a quantized one written by `bitlens quantize --out` (run with its fake-quant hook).
#include <cstdio>
#include <iostream>

#include "cli.h"
#include "eval.h"
#include "export.h"
#include "model.h"

namespace bitlens::cli {

int cmd_eval(const Args& a) {
    const ModelSource src = model_source(a);
    const SafeTensors st = parse_safetensors(src.safetensors.data(), src.safetensors.size(), src.safetensors_name);
    const int jobs = int(a.num("jobs", 0, 1, 256));
    const size_t limit = size_t(a.num("limit", 0, 1, 1L << 30));
    Dataset ds = load_dataset(a.need("data"), a.get("labels"));
    const AnyModel m = load_any(src, st);
    PreparedData data = prepare(ds, m.vit().cfg, limit);
    if (m.quantized()) {
        const QuantizedViT& q = *m.q;
        EvalResult r = evaluate_quantized(q, data, jobs);
        json out = {{"quantized", true}, {"config", config_json(q.cfg)}, {"model_bytes", src.safetensors.size()},
                    {"fp32_bytes", 4 * q.model.parameter_count()}, {"bits_per_weight", q.bits_per_weight()}};
        out.update(eval_json(r));
        if (a.flags.count("json")) {
            std::cout << out.dump() << "\n";
            return 0;
        }
        std::printf("quantized %s (%s weights, %s), %zu bytes (FP32 %zu)\nconfig: %s\n\n", q.cfg.name().c_str(),
                    qtype_name(q.cfg.weights), q.cfg.per_channel ? "per channel" : "per tensor", src.safetensors.size(),
                    4 * q.model.parameter_count(), config_json(q.cfg).dump().c_str());
        std::cout << eval_table(r);
        return 0;
    }
    EvalResult r = evaluate(m.fp.vit, data, jobs);
    if (a.flags.count("json")) std::cout << eval_json(r).dump() << "\n";
    else std::cout << eval_table(r);
    return 0;
}

}  // namespace bitlens::cli
