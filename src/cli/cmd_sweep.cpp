// bitlens sweep: worst-case reliability over many calibration draws × configurations (see sweep.h).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "cli.h"
#include "dataset.h"
#include "export.h"
#include "model.h"
#include "safetensors.h"
#include "sweep.h"

namespace bitlens::cli {

namespace {

// Runs fn, turning a std::runtime_error into a usage error naming the option.
template <class F>
auto option(const std::string& name, F fn) -> decltype(fn()) {
    try {
        return fn();
    } catch (const UsageError&) {
        throw;
    } catch (const std::runtime_error& e) {
        throw UsageError("--" + name + ": " + e.what());
    }
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot write " + path);
    f << text;
    if (!f.flush()) throw std::runtime_error("cannot write " + path);
}

}  // namespace

int cmd_sweep(const Args& a) {
    // Options that need no model first, so mistakes are reported before anything is loaded.
    const QuantConfig base = quant_config(a);
    SweepSpec spec;
    if (a.opts.count("configs")) {
        if (a.opts.count("wbits") || a.opts.count("abits"))
            throw UsageError("--wbits/--abits cannot be combined with --configs (give the bit-widths in --configs, e.g. w4a4)");
        const std::string list = a.get("configs");
        size_t b = 0;
        for (;;) {
            const size_t e = list.find(',', b);
            const std::string item = list.substr(b, e == std::string::npos ? std::string::npos : e - b);
            if (item.empty()) throw UsageError("--configs: empty configuration in '" + list + "' (e.g. w8a8,w4a4)");
            spec.configs.push_back(option("configs", [&] { return parse_wa(item, base); }));
            if (e == std::string::npos) break;
            b = e + 1;
        }
    } else {
        spec.configs.push_back(base);
    }
    spec.seeds = int(a.num("seeds", 20, 1, 100000));
    spec.first_seed = base.seed;
    spec.calib_size = base.calib_size;
    if (a.opts.count("calib-skew")) {
        const std::string s = a.get("calib-skew");
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end || !(v > 0 && v <= 1))
            throw UsageError("--calib-skew must be a number in (0, 1] (the ratio between successive classes' shares), found '" + s + "'");
        spec.calib_skew = v;
    }
    spec.calib_corrupt = option("calib-corrupt", [&] { return parse_corruption(a.get("calib-corrupt")); });
    spec.eval_corrupt = option("eval-corrupt", [&] { return parse_corruption(a.get("eval-corrupt")); });
    spec.eval_limit = size_t(a.num("limit", 0, 1, 1L << 30));
    const int jobs = int(a.num("jobs", 0, 1, 256));
    const std::string json_path = a.get("json"), csv_path = a.get("csv");
    const bool sharded = a.opts.count("shard") != 0;
    const Shard shard = sharded ? option("shard", [&] { return parse_shard(a.get("shard")); }) : Shard();
    if (sharded && json_path.empty())
        throw UsageError("--shard " + a.get("shard") + " needs --json PART.json (the part that bitlens merge reads)");
    if (sharded && !csv_path.empty())
        throw UsageError("--csv is written by bitlens merge from all the parts, not by one part (--shard)");

    const ModelSource src = model_source(a);
    const SafeTensors st = parse_safetensors(src.safetensors.data(), src.safetensors.size(), src.safetensors_name);
    const LoadedModel lm = load_fp32(src, st, "bitlens sweep");
    if (a.opts.count("calib-classes"))
        spec.calib_classes = option("calib-classes", [&] { return parse_class_list(a.get("calib-classes"), lm.vit.cfg); });
    if (a.opts.count("groups")) spec.groups = option("groups", [&] { return parse_groups(a.get("groups"), lm.vit.cfg); });
    spec.validate(lm.vit.cfg.num_classes);

    const std::string data_path = a.need("data"), calib_path = a.need("calib");
    const Dataset eval = load_dataset(data_path, a.get("labels"));
    const Dataset pool_loaded = calib_path == data_path && a.get("labels").empty() ? Dataset() : load_dataset(calib_path);
    const Dataset& pool = calib_path == data_path && a.get("labels").empty() ? eval : pool_loaded;

    const bool tty = isatty(fileno(stderr));
    const auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    size_t runs = 0;
    auto progress = [&](size_t done, size_t total) {
        runs = total;
        if (tty) {
            const int width = 30, fill = total ? int(double(width) * double(done) / double(total)) : width;
            std::fprintf(stderr, "\rsweep [%s%s] %zu/%zu runs, %.1f s", std::string(size_t(fill), '#').c_str(),
                         std::string(size_t(width - fill), '.').c_str(), done, total, seconds());
            std::fflush(stderr);
        }
        return true;
    };
    if (sharded) {
        SweepPart part = run_sweep_part(lm.vit, eval, pool, spec, shard, jobs, progress);
        if (tty) std::fprintf(stderr, "\n");
        part.identity = {tensors_fingerprint(st), model_config_fingerprint(src), dataset_fingerprint(eval), dataset_fingerprint(pool),
                         a.get("model"), data_path, calib_path};
        const size_t total = spec.configs.size() * size_t(spec.seeds);
        std::fprintf(stderr, "sweep: part %d/%d, %zu of %zu runs (%zu configuration%s x %d seed%s) in %.1f s\n", shard.index,
                     shard.count, part.runs.size(), total, spec.configs.size(), spec.configs.size() == 1 ? "" : "s", spec.seeds,
                     spec.seeds == 1 ? "" : "s", seconds());
        const std::string text = sweep_part_json(part).dump();
        if (json_path == "-") {
            std::cout << text << "\n";
        } else {
            write_file(json_path, text + "\n");
            std::string list;
            for (const PartRun& pr : part.runs)
                list += (list.empty() ? "" : ", ") + spec.configs[pr.index / size_t(spec.seeds)].name() + " seed " + std::to_string(pr.run.seed);
            std::cout << "sweep part " << shard.index << "/" << shard.count << ": " << part.runs.size() << " of " << total << " runs"
                      << (list.empty() ? "" : " (" + list + ")") << " written to " << json_path << "\n"
                      << "merge the " << shard.count << " parts with: bitlens merge PART.json... --json OUT.json [--csv OUT.csv]\n";
        }
        return 0;
    }
    SweepResult r = run_sweep(lm.vit, eval, pool, spec, jobs, progress);
    if (tty) std::fprintf(stderr, "\n");
    std::fprintf(stderr, "sweep: %zu runs (%zu configuration%s x %d seed%s) in %.1f s\n", runs, r.configs.size(),
                 r.configs.size() == 1 ? "" : "s", spec.seeds, spec.seeds == 1 ? "" : "s", seconds());

    if (!json_path.empty() && json_path != "-") write_file(json_path, sweep_json(r).dump() + "\n");
    if (!csv_path.empty()) write_file(csv_path, sweep_csv(r));
    if (json_path == "-") std::cout << sweep_json(r).dump() << "\n";
    else std::cout << sweep_table(r);
    return 0;
}

}  // namespace bitlens::cli
