// bitlens quantize: post-training quantization, evaluation and export.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli.h"
#include "eval.h"
#include "export.h"
#include "model.h"
#include "ptq.h"
#include "sos.h"

namespace bitlens::cli {

QuantConfig quant_config(const Args& a) {
    QuantConfig c;
    c.wbits = int(a.num("wbits", 8, 0, 64));
    c.abits = int(a.num("abits", 8, 0, 64));
    c.softmax_bits = int(a.num("softmax-bits", 0, 0, 64));
    // Library parse errors, with the option that carried the value.
    auto opt = [&](const char* name, const std::string& fallback, auto parse) {
        try {
            return parse(a.get(name, fallback));
        } catch (const std::runtime_error& e) {
            throw UsageError(std::string("--") + name + ": " + e.what());
        }
    };
    c.softmax = opt("softmax", "sulq", parse_qtype);
    c.weights = opt("weights", "uniform", parse_qtype);
    const std::string g = a.get("granularity", "channel");
    if (g != "channel" && g != "tensor") throw UsageError("--granularity must be channel or tensor, found '" + g + "'");
    c.per_channel = g == "channel";
    c.w_range = opt("weight-range", "mse", parse_range);
    c.a_range = opt("act-range", "mse", parse_range);
    c.sulq_round_exponent = a.flags.count("sulq-round-exponent") > 0;
    c.edges_8bit = !a.flags.count("no-edges-8bit");
    c.reparam = a.flags.count("reparam") > 0;
    c.calib_size = int(a.num("calib-size", 32, 0, 1 << 20));
    c.seed = uint64_t(a.num("seed", 0, 0, 1L << 40));
    c.method = opt("method", "ptq", parse_method);
    c.recon_iters = int(a.num("recon-iters", c.recon_iters, 0, 1 << 20));
    c.recon_batch = int(a.num("recon-batch", c.recon_batch, 1, 1 << 20));
    if (c.method == Method::Ptq && (a.opts.count("recon-iters") || a.opts.count("recon-batch")))
        throw UsageError("--recon-iters and --recon-batch apply to --method sos");
    usage_check([&] { c.validate(); });
    return c;
}

void write_file(const std::string& path, const void* data, size_t n) {
    const std::filesystem::path p(path);
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    if (!f || !f.write(static_cast<const char*>(data), std::streamsize(n)) || !f.flush())
        throw std::runtime_error(p.string() + ": cannot write");
}

namespace {
// Creates DIR; refuses a DIR whose model.safetensors is the source's own (`what`: "quantized", "exported").
std::filesystem::path output_dir(const std::string& dir, const ModelSource& src, const std::string& what) {
    namespace fs = std::filesystem;
    const fs::path d(dir), st = d / "model.safetensors";
    std::error_code ec;
    fs::create_directories(d, ec);
    if (!fs::is_directory(d)) throw std::runtime_error(dir + ": cannot create the output directory" + (ec ? ": " + ec.message() : ""));
    if (fs::exists(st) && fs::equivalent(st, src.safetensors_name, ec))
        throw std::runtime_error("--out " + dir + " would overwrite the model being " + what + " (" + src.safetensors_name + ")");
    return d;
}
}  // namespace

size_t write_quantized(const std::string& dir, const QuantizedViT& q, const ModelSource& src, const SafeTensors& original) {
    const std::vector<uint8_t> bytes = export_quantized(q, original);
    const std::filesystem::path d = output_dir(dir, src, "quantized");
    write_file((d / "model.safetensors").string(), bytes.data(), bytes.size());
    if (!src.config_json.empty()) write_file((d / "config.json").string(), src.config_json.data(), src.config_json.size());
    if (!src.preprocessor_json.empty())
        write_file((d / "preprocessor_config.json").string(), src.preprocessor_json.data(), src.preprocessor_json.size());
    return bytes.size();
}

size_t write_fp32(const std::string& dir, const ViT& m, const ModelSource& src, const SafeTensors& original) {
    const Fp32Export e = export_fp32(m, src, original);  // before anything is written: a pruned model without config.json throws
    const std::filesystem::path d = output_dir(dir, src, "exported");
    // A .safetensors file given beside its config.json, and --out that folder: the pruned config would replace the one
    // the original checkpoint still needs.
    std::error_code ec;
    if (e.config_json != src.config_json && std::filesystem::exists(d / "config.json") &&
        std::filesystem::equivalent(d / "config.json", src.config_name, ec))
        throw std::runtime_error("--out " + dir + " would overwrite " + src.config_name + ", which " + src.safetensors_name +
                                 " still needs; write to another directory");
    write_file((d / "model.safetensors").string(), e.safetensors.data(), e.safetensors.size());
    if (!e.config_json.empty()) write_file((d / "config.json").string(), e.config_json.data(), e.config_json.size());
    if (!e.preprocessor_json.empty())
        write_file((d / "preprocessor_config.json").string(), e.preprocessor_json.data(), e.preprocessor_json.size());
    return e.safetensors.size();
}

int cmd_quantize(const Args& a) {
    const QuantConfig qc = quant_config(a);
    const ModelSource src = model_source(a);
    const SafeTensors st = parse_safetensors(src.safetensors.data(), src.safetensors.size(), src.safetensors_name);
    const LoadedModel lm = load_fp32(src, st, "bitlens quantize");
    const int jobs = int(a.num("jobs", 0, 1, 256));
    PreparedData calib = prepare(load_dataset(a.need("calib")), lm.vit.cfg);
    const bool has_eval = !a.get("eval").empty();
    PreparedData data;
    if (has_eval)
        data = a.get("eval") == a.get("calib") && !a.opts.count("limit")
                   ? calib
                   : prepare(load_dataset(a.get("eval")), lm.vit.cfg, size_t(a.num("limit", 0, 1, 1L << 30)));
    QuantizedViT q;
    json sos_out;
    if (qc.method == Method::Sos) {  // reconstruction: per-stage evaluation when --eval is given, progress on stderr
        train::SosOptions so;
        so.jobs = jobs;
        const bool quiet = a.flags.count("json") > 0;
        const train::SosResult r = train::sos(lm.vit, calib, qc, so, has_eval ? &data : nullptr, [&](const train::SosProgress& p) {
            if (!quiet && p.block_done)
                std::fprintf(stderr, "stage %d block %d: reconstruction MSE %.4g -> %.4g (%.1f s)\n", p.block_done->stage,
                             p.block_done->block, p.block_done->mse_before, p.block_done->mse_after, p.seconds);
            return true;
        });
        q = r.q;
        sos_out = train::sos_json(r.stages, r.blocks);
    } else {
        q = quantize(lm.vit, calib, qc, jobs);
    }
    const int integer_layers = a.flags.count("integer") ? enable_integer(q) : 0;
    const IntegerBlocks ib = integer_blocks(q);
    json out = {{"config", config_json(qc)}, {"model_bytes", q.model_bytes()}, {"bits_per_weight", q.bits_per_weight()},
                {"fp32_bytes", 4 * lm.vit.parameter_count()}, {"integer_layers", integer_layers},
                {"integer_attention", ib.attention}, {"integer_gelu", ib.gelu}};
    const std::string out_dir = a.get("out");
    size_t file_bytes = 0;
    if (!out_dir.empty()) {
        file_bytes = write_quantized(out_dir, q, src, st);
        out["out"] = (std::filesystem::path(out_dir) / "model.safetensors").string();
        out["file_bytes"] = file_bytes;
        out["source_file_bytes"] = src.safetensors.size();
    }
    if (!sos_out.is_null()) out["sos"] = sos_out;
    EvalResult r;
    if (has_eval) {
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
    if (qc.method == Method::Sos) {
        std::printf("method: SOS (I&S-ViT three-stage block reconstruction), %d iterations per block and stage, batch %d\n",
                    qc.recon_iters, qc.recon_batch);
        for (const json& st : sos_out["stages"])
            if (st.contains("eval"))
                std::printf("  after stage %d: top-1 %.2f%%, worst class %s %.2f%%\n", st["stage"].get<int>(),
                            100 * st["eval"]["top1"].get<double>(), st["eval"]["worst_class"]["label"].get<std::string>().c_str(),
                            100 * st["eval"]["worst_class"]["accuracy"].get<double>());
    }
    if (a.flags.count("integer"))
        std::printf("integer path: %d of %zu Linears, %d attention matmuls on codes, GELU on thresholds in %d of %zu blocks\n",
                    integer_layers, q.model.linears().size(), ib.attention, ib.gelu, q.model.blocks.size());
    std::printf("model size: %zu bytes (FP32 %zu), %.2f bits per weight\n\n", q.model_bytes(), 4 * lm.vit.parameter_count(),
                q.bits_per_weight());
    if (!out_dir.empty())
        std::printf("wrote %s: %zu bytes (FP32 weights %zu bytes, source file %zu bytes), with %s%s\n\n",
                    (std::filesystem::path(out_dir) / "model.safetensors").string().c_str(), file_bytes,
                    4 * lm.vit.parameter_count(), src.safetensors.size(), src.config_json.empty() ? "no config.json" : "config.json",
                    src.preprocessor_json.empty() ? "" : " and preprocessor_config.json");
    if (has_eval) std::cout << eval_table(r);
    return 0;
}

}  // namespace bitlens::cli
