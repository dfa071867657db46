// Worst-case reliability sweep (issue 4, after Yuan et al. 2023, "Benchmarking the Reliability of
// Post-training Quantization"): every configuration is quantized with K calibration sets drawn with
// seeds first_seed … first_seed+K−1 and evaluated; per configuration we report top-1 mean ± std over
// seeds, per-class mean/min/max, the worst class, the worst case (class × seed) and the largest drop
// from FP32, and the same for user-defined groups of classes.
//
// Everything works on in-memory data (no files) so the WASM build can run it; the CLI loads files.
//
// Determinism. The calibration draw of a seed is portable (SplitMix64, see draw_sweep_calibration);
// corruptions are integer-only (corrupt.h); each (configuration, seed) run writes its own slot and
// statistics are computed afterwards in a fixed order, so results are identical for any `jobs`, and
// between native and WASM.
//
// Reproducing one run. Without class options and calibration corruption, seed s of a configuration
// is exactly `bitlens quantize --calib POOL --calib-size N --seed s` with the same options: the same
// images are observed in the same order.
#pragma once
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "corrupt.h"
#include "dataset.h"
#include "eval.h"
#include "model.h"
#include "ptq.h"
#include "safetensors.h"

namespace bitlens {

// A named set of model classes, reported like a class (accuracy over all its images).
struct ClassGroup {
    std::string name;
    std::vector<int> classes;  // model class indices
};

struct SweepSpec {
    std::vector<QuantConfig> configs;  // their calib_size and seed are replaced by the sweep's
    int seeds = 20;                    // K ≥ 1
    uint64_t first_seed = 0;           // seeds first_seed, first_seed+1, …
    int calib_size = 32;               // images per calibration draw
    // Class-restricted / imbalanced calibration (see draw_sweep_calibration).
    std::vector<int> calib_classes;    // model classes to draw from; empty: all
    double calib_skew = 0;             // 0: off (uniform draw); in (0, 1]: geometric class weights 1, ρ, ρ², …
    Corruption calib_corrupt;          // applied to the drawn calibration images (noise seeded per seed and image)
    Corruption eval_corrupt;           // applied once to the evaluation images (noise seeded per image)
    std::vector<ClassGroup> groups;
    size_t eval_limit = 0;             // evaluate on the first N images (0: all)

    // Throws std::runtime_error with a clear message: no configurations, seeds < 1, calib_size < 1,
    // skew outside [0, 1], a class outside the model (num_classes), an empty / duplicate group.
    void validate(int num_classes) const;
};

// The calibration images (indices into the pool, in the order they are observed) for one seed.
// pool_labels: the model class of every pool image.
//  * No classes, no skew: draw_calibration(pool, n, seed) — the draw `quantize` makes.
//  * Classes, no skew: the same draw over the pool images of those classes (kept in pool order).
//  * Skew ρ ∈ (0, 1]: a stratified draw. The allowed classes (the given ones, or every class with images
//    in the pool) are put in a seeded order (Fisher–Yates with SplitMix64(derive_seed(seed, 1))); the class
//    at rank r gets weight ρ^r; class counts are n·w_r/Σw rounded down, the remainder going one each to the
//    largest fractional parts (ties: lower rank); each class's images are then drawn with
//    draw_calibration(class pool, count, derive_seed(seed, 2 + class)). ρ = 1 is a class-balanced draw; a
//    small ρ puts most of the set in one class. Output: by rank, then draw order.
// Throws when the pool (or an allowed class) has fewer images than needed, or an allowed class has none.
std::vector<size_t> draw_sweep_calibration(const std::vector<int>& pool_labels, int num_classes, size_t n,
                                           const std::vector<int>& classes, double skew, uint64_t seed);

// Statistics of one configuration over seeds. NaN accuracies (classes with no evaluation images) are
// skipped. Ties go to the lower class index, then the earlier seed.
struct GroupStats {
    std::string name;
    std::vector<int> classes;
    double fp32 = 0;                  // FP32 accuracy of the group
    double mean = 0, std = 0, min = 0, max = 0;
    size_t min_seed = 0;              // seed index (into the seed list) of the minimum
    double drop = 0;                  // fp32 − mean
    std::vector<double> per_seed;     // accuracy per seed
};
struct SweepStats {
    size_t seeds = 0;
    double top1_mean = 0, top1_std = 0, top1_min = 0, top1_max = 0;  // std: sample (K−1), 0 for K = 1
    double top1_drop = 0;                                            // fp32 top-1 − mean
    std::vector<double> class_mean, class_std, class_min, class_max; // per class (NaN: no images)
    int worst_class = -1;             // lowest mean per-class accuracy
    double worst_class_mean = 0, worst_class_drop = 0;   // its mean, and fp32 − mean
    int worst_case_class = -1;        // lowest per-class accuracy over all seeds and classes
    size_t worst_case_seed = 0;       // seed index
    double worst_case = 0, worst_case_drop = 0;          // the accuracy, and fp32[class] − it
    int largest_drop_class = -1;      // largest fp32[c] − mean[c]
    double largest_drop = 0;
    int largest_seed_drop_class = -1; // largest fp32[c] − acc[s][c] over seeds and classes
    size_t largest_seed_drop_seed = 0;
    double largest_seed_drop = 0;
    std::vector<GroupStats> groups;
};
// per_class[s][c]: accuracy of class c with seed s; top1[s]; fp32_per_class[c]; class_count[c] (weights of
// the groups: a group's accuracy is Σ count·acc / Σ count over its classes with images).
SweepStats sweep_stats(const std::vector<std::vector<double>>& per_class, const std::vector<double>& top1,
                       const std::vector<double>& fp32_per_class, double fp32_top1, const std::vector<size_t>& class_count,
                       const std::vector<ClassGroup>& groups = {});

struct SeedRun {
    uint64_t seed = 0;
    double top1 = 0;
    std::vector<double> per_class;
    std::vector<std::vector<uint32_t>> confusion;
};
struct ConfigResult {
    QuantConfig config;               // with the sweep's calib_size (seed: first_seed)
    size_t model_bytes = 0;           // quantized model size (the same for every seed)
    std::vector<SeedRun> runs;        // one per seed, in seed order
    SweepStats stats;
};
struct SweepResult {
    SweepSpec spec;
    std::vector<std::string> labels;
    std::vector<size_t> class_count;  // evaluation images per class
    size_t eval_n = 0, pool_n = 0;
    std::vector<uint64_t> seeds;
    std::vector<std::vector<size_t>> calib_draws;  // per seed: pool indices
    std::vector<std::vector<size_t>> calib_class_counts;  // per seed: drawn images per model class
    EvalResult fp32;                  // on the evaluation set as used (corrupted when eval_corrupt)
    double fp32_clean_top1 = -1;      // on the clean evaluation set, when eval_corrupt (else −1)
    std::vector<double> fp32_groups;
    std::vector<ConfigResult> configs;
};

struct Cancelled : std::runtime_error {
    Cancelled() : std::runtime_error("sweep cancelled") {}
};

// progress(done, total) over the (configuration, seed) runs: called with (0, total) from the calling thread
// before the runs, then after each run. Natively the later calls come from worker threads, serialised by a
// mutex (never concurrent, `done` strictly increasing); in WASM all calls are on the calling thread.
// Returning false cancels: runs not yet started are skipped and run_sweep throws Cancelled.
using SweepProgress = std::function<bool(size_t done, size_t total)>;

// The sweep in steps, for callers that must regain control between runs (the JS API yields to the
// event loop between steps so an AbortSignal can cancel): construct (draws, FP32 reference, prepared
// calibration sets — the seed-independent work, once), run(i) for i in [0, total()) in any order, then
// finish(). run(i) of different i may run concurrently natively.
class SweepRunner {
public:
    SweepRunner(const ViT& model, const Dataset& eval, const Dataset& calib_pool, const SweepSpec& spec, int jobs = 0);
    size_t total() const { return slots_.size(); }
    void run(size_t i, int jobs = 1);   // configuration i / K, seed index i % K
    bool done(size_t i) const { return done_[i] != 0; }
    SweepResult finish();               // throws if a run is missing
    // For a part of a sweep (run_sweep_part): the seed-independent result (spec, draws, FP32 reference; no
    // configurations), and run i once done (its seed's result and the quantized model's bytes).
    const SweepResult& shared() const { return R_; }
    SeedRun result(size_t i) const;
    size_t model_bytes(size_t i) const;
private:
    const ViT& model_;
    SweepResult R_;
    PreparedData eval_;
    std::vector<PreparedData> calib_;
    std::vector<EvalResult> slots_;
    std::vector<size_t> bytes_;
    std::vector<char> done_;
};

// jobs <= 0: all cores. Runs are spread over jobs; a run uses several threads only when there are fewer
// runs than jobs. Results do not depend on jobs.
SweepResult run_sweep(const ViT& model, const Dataset& eval, const Dataset& calib_pool, const SweepSpec& spec, int jobs = 0,
                      const SweepProgress& progress = {});

// ---------------------------------------------------------------------------------------------
// Sharding (issue 19): a sweep split into n independent parts that a scheduler runs (a Slurm job array, a
// Kubernetes Indexed Job), and the parts merged into exactly the numbers of the unsharded sweep.
//
// The split. Runs are numbered i = configuration index · K + seed index (K seeds, T runs in all); part s of n
// (1 ≤ s ≤ n) holds every run with i mod n = s − 1 — round robin, so each part gets about as many runs of every
// configuration (an SOS configuration costs far more than a PTQ one). Parts past T hold no run and are still
// parts. Each part does the seed-independent work itself (calibration draws, FP32 reference) and records it
// with its runs' per-seed results (top-1, per-class accuracies, confusion, model bytes); merging recomputes
// every statistic from those, after checking that the parts are of one sweep: the same model (a hash of its
// tensors and of its configuration), the same data (hashes of the evaluation set and the calibration pool),
// the same configurations and spec, the same split, and the same seed-independent results.

struct Shard {
    int index = 1, count = 1;  // part `index` of `count`, 1 ≤ index ≤ count
};
// "2/3" → {2, 3}. Throws std::runtime_error naming the value when it is not I/N with 1 ≤ I ≤ N.
Shard parse_shard(const std::string& s);
// The runs of part `sh` among `total` runs, ascending.
std::vector<size_t> shard_runs(size_t total, const Shard& sh);

// Hashes that say what a part is a part of: "fnv1a64:" and 16 hex digits (FNV-1a, 64 bits; it detects
// mix-ups, it is no defence against forgery).
// The tensors in name order (name, dtype, shape, bytes as stored) and the header's __metadata__.
std::string tensors_fingerprint(const SafeTensors& st);
// config.json and preprocessor_config.json as parsed (key order and spacing do not count), and --heads.
std::string model_config_fingerprint(const ModelSource& src);
// Class names, then every image's label, size, channels and pixels, in order.
std::string dataset_fingerprint(const Dataset& ds);

struct SweepIdentity {
    std::string model_tensors, model_config;  // tensors_fingerprint, model_config_fingerprint
    std::string eval_data, calib_data;        // dataset_fingerprint of the evaluation set and the calibration pool
    // Where they were read from: informative only, not compared (nodes may mount the same files elsewhere).
    std::string model_path, eval_path, calib_path;
};

struct PartRun {
    size_t index = 0;                 // run index i (configuration i / K, seed index i % K)
    size_t model_bytes = 0;
    SeedRun run;
};
struct SweepPart {
    Shard shard;
    SweepIdentity identity;
    SweepResult shared;               // spec, draws, FP32 reference; configs empty
    std::vector<PartRun> runs;        // the runs of shard_runs(total, shard), ascending
};

// Runs part `shard` of the sweep (the identity is left for the caller to fill). progress as for run_sweep,
// over this part's runs.
SweepPart run_sweep_part(const ViT& model, const Dataset& eval, const Dataset& calib_pool, const SweepSpec& spec,
                         const Shard& shard, int jobs = 0, const SweepProgress& progress = {});
// A part as JSON: sweep_json's fields without "configs" (spec, labels, calibration, fp32, …), plus "part"
// {index, count, total_runs, runs}, "model" {tensors, config, path}, "data" {eval, calib: {fnv1a64, images, path}}
// and "runs" [{index, config, name, seed, model_bytes, top1, per_class, confusion}].
nlohmann::json sweep_part_json(const SweepPart& p);
// The inverse; `what` (the file) names the part in errors. Checks that the part reads back to exactly the JSON
// it came from, so a merge reproduces the unsharded sweep's bytes.
SweepPart sweep_part_from_json(const nlohmann::json& j, const std::string& what);
// Parts in any order → the unsharded sweep's result (statistics recomputed from the runs). names[i] names
// parts[i] in errors. Throws std::runtime_error naming the difference when the parts are of different sweeps
// (model, configuration of the model, evaluation data, calibration pool, configurations, a spec field, the
// number of parts, the seed-independent results), and naming the parts that are missing or given twice.
SweepResult merge_sweep_parts(const std::vector<SweepPart>& parts, const std::vector<std::string>& names);

// "0,2,Shirt" → model class indices (an index, or a label, case-insensitive). Throws naming the model's classes.
std::vector<int> parse_class_list(const std::string& s, const ViTConfig& cfg);
// "tops=0,2,4,6;shoes=5,7,9" → groups.
std::vector<ClassGroup> parse_groups(const std::string& s, const ViTConfig& cfg);

nlohmann::json sweep_spec_json(const SweepSpec& s);
nlohmann::json sweep_json(const SweepResult& r);
// A spec from JSON (the JS API's form): {configs: [QuantConfig objects], seeds, firstSeed, calibSize,
// calibClasses: [index or label], calibSkew, calibCorrupt: "noise:3", evalCorrupt, groups: "a=0,2;b=5" or
// [{name, classes}], limit}. Unknown fields are errors naming them.
SweepSpec sweep_spec_from_json(const nlohmann::json& j, const ViTConfig& cfg);  // everything, incl. every seed's per-class accuracies
std::string sweep_csv(const SweepResult& r);      // config,seed,kind,index,name,images,accuracy,fp32,drop
std::string sweep_table(const SweepResult& r);    // readable summary

}  // namespace bitlens
