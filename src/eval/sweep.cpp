#include "sweep.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "json_limits.h"
#include "parallel.h"
#include "rng.h"
#include "sos.h"  // method sos: the sweep quantizes through the training layer

namespace bitlens {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr uint64_t kEvalNoiseStream = 0xE7A1C0DE5EEDull;  // noise of evaluation image i: derive_seed(this, i)

std::string lower(std::string s) {
    for (char& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}
std::string trim(const std::string& s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return s.substr(b, e - b);
}
std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    size_t b = 0;
    for (;;) {
        const size_t e = s.find(sep, b);
        out.push_back(s.substr(b, e == std::string::npos ? std::string::npos : e - b));
        if (e == std::string::npos) return out;
        b = e + 1;
    }
}
std::string class_list(int num_classes, const std::vector<std::string>& labels) {
    std::string r;
    for (int i = 0; i < num_classes; ++i)
        r += (i ? ", " : "") + std::to_string(i) + (size_t(i) < labels.size() ? "=" + labels[size_t(i)] : "");
    return r;
}
void check_class(int c, int num_classes, const std::string& what) {
    if (c < 0 || c >= num_classes)
        throw std::runtime_error(what + ": class " + std::to_string(c) + " is not a class of the model (classes 0 to " +
                                 std::to_string(num_classes - 1) + ")");
}
nlohmann::json num(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }
nlohmann::json nums(const std::vector<double>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (double x : v) a.push_back(num(x));
    return a;
}

// Σ count·acc / Σ count over the group's classes with images (NaN when none).
double group_accuracy(const std::vector<double>& acc, const std::vector<size_t>& count, const std::vector<int>& classes) {
    double s = 0, n = 0;
    for (int c : classes) {
        const size_t i = size_t(c);
        if (i >= acc.size() || !count[i] || std::isnan(acc[i])) continue;
        s += double(count[i]) * acc[i], n += double(count[i]);
    }
    return n > 0 ? s / n : kNaN;
}

void mean_std(const std::vector<double>& x, double& mean, double& sd) {
    double s = 0;
    for (double v : x) s += v;
    mean = s / double(x.size());
    double q = 0;
    for (double v : x) q += (v - mean) * (v - mean);
    sd = x.size() > 1 ? std::sqrt(q / double(x.size() - 1)) : 0.0;
}

}  // namespace

void SweepSpec::validate(int num_classes) const {
    if (configs.empty()) throw std::runtime_error("sweep: no configurations (e.g. w8a8,w4a4)");
    for (const QuantConfig& c : configs) c.validate();
    if (seeds < 1) throw std::runtime_error("sweep: the number of seeds must be at least 1, found " + std::to_string(seeds));
    if (calib_size < 1)
        throw std::runtime_error("sweep: the calibration size must be at least 1, found " + std::to_string(calib_size));
    if (!(calib_skew >= 0 && calib_skew <= 1))
        throw std::runtime_error("sweep: the calibration skew must be in (0, 1] (0: off), found " + std::to_string(calib_skew));
    for (size_t i = 0; i < calib_classes.size(); ++i) {
        check_class(calib_classes[i], num_classes, "calibration classes");
        for (size_t j = 0; j < i; ++j)
            if (calib_classes[j] == calib_classes[i])
                throw std::runtime_error("calibration classes: class " + std::to_string(calib_classes[i]) + " is listed twice");
    }
    for (const Corruption* c : {&calib_corrupt, &eval_corrupt})
        if (c->active() && (c->severity < 1 || c->severity > 5))
            throw std::runtime_error("corruption severity must be 1 to 5, found " + std::to_string(c->severity));
    for (size_t g = 0; g < groups.size(); ++g) {
        const ClassGroup& gr = groups[g];
        if (gr.name.empty()) throw std::runtime_error("class group " + std::to_string(g + 1) + " has no name");
        if (gr.classes.empty()) throw std::runtime_error("class group '" + gr.name + "' has no classes");
        for (int c : gr.classes) check_class(c, num_classes, "class group '" + gr.name + "'");
        for (size_t h = 0; h < g; ++h)
            if (groups[h].name == gr.name) throw std::runtime_error("class group '" + gr.name + "' is defined twice");
    }
}

std::vector<size_t> draw_sweep_calibration(const std::vector<int>& pool_labels, int num_classes, size_t n,
                                           const std::vector<int>& classes, double skew, uint64_t seed) {
    if (pool_labels.empty()) throw std::runtime_error("calibration pool is empty");
    if (n > pool_labels.size())
        throw std::runtime_error("calibration size " + std::to_string(n) + " is larger than the calibration pool (" +
                                 std::to_string(pool_labels.size()) + " images)");
    if (classes.empty() && skew == 0) return draw_calibration(pool_labels.size(), n, seed);

    std::vector<std::vector<size_t>> by_class(size_t(std::max(num_classes, 0)));
    for (size_t i = 0; i < pool_labels.size(); ++i) {
        if (pool_labels[i] < 0 || pool_labels[i] >= num_classes)
            check_class(pool_labels[i], num_classes, "calibration pool image " + std::to_string(i));
        by_class[size_t(pool_labels[i])].push_back(i);
    }
    std::vector<int> allowed = classes;
    if (allowed.empty())
        for (int c = 0; c < num_classes; ++c)
            if (!by_class[size_t(c)].empty()) allowed.push_back(c);
    std::sort(allowed.begin(), allowed.end());
    for (int c : allowed) {
        check_class(c, num_classes, "calibration classes");
        if (by_class[size_t(c)].empty())
            throw std::runtime_error("calibration class " + std::to_string(c) + " has no images in the calibration pool");
    }

    if (skew == 0) {  // uniform over the allowed classes' images, in pool order
        std::vector<size_t> sub;
        for (size_t i = 0; i < pool_labels.size(); ++i)
            if (std::binary_search(allowed.begin(), allowed.end(), pool_labels[i])) sub.push_back(i);
        if (n > sub.size())
            throw std::runtime_error("calibration size " + std::to_string(n) + " is larger than the " + std::to_string(sub.size()) +
                                     " images of the calibration classes in the pool");
        std::vector<size_t> idx = draw_calibration(sub.size(), n, seed);
        for (size_t& i : idx) i = sub[i];
        return idx;
    }

    // Seeded class order, geometric weights, largest-remainder allocation.
    SplitMix64 rng(derive_seed(seed, 1));
    for (size_t j = 0; j + 1 < allowed.size(); ++j)
        std::swap(allowed[j], allowed[j + size_t(rng.next() % uint64_t(allowed.size() - j))]);
    const size_t K = allowed.size();
    std::vector<double> w(K);
    double wsum = 0;
    for (size_t r = 0; r < K; ++r) w[r] = r ? w[r - 1] * skew : 1.0, wsum += w[r];
    std::vector<size_t> count(K);
    std::vector<double> frac(K);
    size_t given = 0;
    for (size_t r = 0; r < K; ++r) {
        const double share = double(n) * w[r] / wsum;
        count[r] = size_t(std::floor(share));
        frac[r] = share - double(count[r]);
        given += count[r];
    }
    std::vector<size_t> order(K);
    for (size_t r = 0; r < K; ++r) order[r] = r;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return frac[a] > frac[b]; });
    for (size_t k = 0; given < n; ++k, ++given) count[order[k % K]]++;
    std::vector<size_t> idx;
    for (size_t r = 0; r < K; ++r) {
        const std::vector<size_t>& pool_c = by_class[size_t(allowed[r])];
        if (count[r] > pool_c.size())
            throw std::runtime_error("the skewed calibration draw needs " + std::to_string(count[r]) + " images of class " +
                                     std::to_string(allowed[r]) + ", the pool has " + std::to_string(pool_c.size()));
        if (!count[r]) continue;
        for (size_t i : draw_calibration(pool_c.size(), count[r], derive_seed(seed, 2 + uint64_t(allowed[r]))))
            idx.push_back(pool_c[i]);
    }
    return idx;
}

SweepStats sweep_stats(const std::vector<std::vector<double>>& per_class, const std::vector<double>& top1,
                       const std::vector<double>& fp32, double fp32_top1, const std::vector<size_t>& class_count,
                       const std::vector<ClassGroup>& groups) {
    const size_t K = per_class.size(), C = fp32.size();
    if (K == 0) throw std::invalid_argument("sweep_stats: no seeds");
    if (top1.size() != K) throw std::invalid_argument("sweep_stats: top1 has " + std::to_string(top1.size()) + " seeds, expected " + std::to_string(K));
    if (class_count.size() != C) throw std::invalid_argument("sweep_stats: class_count and fp32 sizes differ");
    for (const auto& row : per_class)
        if (row.size() != C) throw std::invalid_argument("sweep_stats: a seed's per-class row has the wrong size");
    SweepStats s;
    s.seeds = K;
    mean_std(top1, s.top1_mean, s.top1_std);
    s.top1_min = *std::min_element(top1.begin(), top1.end());
    s.top1_max = *std::max_element(top1.begin(), top1.end());
    s.top1_drop = fp32_top1 - s.top1_mean;
    s.class_mean.assign(C, kNaN), s.class_std.assign(C, kNaN), s.class_min.assign(C, kNaN), s.class_max.assign(C, kNaN);
    std::vector<bool> valid(C, false);
    for (size_t c = 0; c < C; ++c) {
        std::vector<double> col(K);
        bool ok = true;
        for (size_t k = 0; k < K; ++k) col[k] = per_class[k][c], ok = ok && !std::isnan(col[k]);
        if (!ok) continue;
        valid[c] = true;
        mean_std(col, s.class_mean[c], s.class_std[c]);
        s.class_min[c] = *std::min_element(col.begin(), col.end());
        s.class_max[c] = *std::max_element(col.begin(), col.end());
    }
    for (size_t c = 0; c < C; ++c) {
        if (!valid[c]) continue;
        if (s.worst_class < 0 || s.class_mean[c] < s.worst_class_mean) s.worst_class = int(c), s.worst_class_mean = s.class_mean[c];
        const bool has_fp = !std::isnan(fp32[c]);
        if (has_fp && (s.largest_drop_class < 0 || fp32[c] - s.class_mean[c] > s.largest_drop))
            s.largest_drop_class = int(c), s.largest_drop = fp32[c] - s.class_mean[c];
        for (size_t k = 0; k < K; ++k) {
            const double a = per_class[k][c];
            if (s.worst_case_class < 0 || a < s.worst_case) s.worst_case_class = int(c), s.worst_case_seed = k, s.worst_case = a;
            if (has_fp && (s.largest_seed_drop_class < 0 || fp32[c] - a > s.largest_seed_drop))
                s.largest_seed_drop_class = int(c), s.largest_seed_drop_seed = k, s.largest_seed_drop = fp32[c] - a;
        }
    }
    if (s.worst_class >= 0) s.worst_class_drop = fp32[size_t(s.worst_class)] - s.worst_class_mean;
    if (s.worst_case_class >= 0) s.worst_case_drop = fp32[size_t(s.worst_case_class)] - s.worst_case;
    for (const ClassGroup& g : groups) {
        GroupStats gs;
        gs.name = g.name;
        gs.classes = g.classes;
        gs.fp32 = group_accuracy(fp32, class_count, g.classes);
        for (size_t k = 0; k < K; ++k) gs.per_seed.push_back(group_accuracy(per_class[k], class_count, g.classes));
        if (std::isnan(gs.per_seed[0])) {
            gs.mean = gs.std = gs.min = gs.max = gs.drop = kNaN;
        } else {
            mean_std(gs.per_seed, gs.mean, gs.std);
            gs.min = gs.max = gs.per_seed[0];
            for (size_t k = 1; k < K; ++k) {
                if (gs.per_seed[k] < gs.min) gs.min = gs.per_seed[k], gs.min_seed = k;
                gs.max = std::max(gs.max, gs.per_seed[k]);
            }
            gs.drop = gs.fp32 - gs.mean;
        }
        s.groups.push_back(std::move(gs));
    }
    return s;
}

SweepRunner::SweepRunner(const ViT& model, const Dataset& eval_ds, const Dataset& pool, const SweepSpec& spec_in, int jobs)
    : model_(model) {
    const ViTConfig& cfg = model.cfg;
    const int C = cfg.num_classes;
    spec_in.validate(C);
    SweepResult& R = R_;
    R.spec = spec_in;
    const SweepSpec& spec = R.spec;
    const size_t K = size_t(spec.seeds), n = size_t(spec.calib_size);
    if (jobs <= 0) jobs = default_jobs();
    if (eval_ds.size() == 0) throw std::runtime_error("evaluation set has no images");
    if (pool.size() == 0) throw std::runtime_error("calibration pool has no images");
    if (n > pool.size())
        throw std::runtime_error("calibration size " + std::to_string(n) + " is larger than the calibration pool (" +
                                 std::to_string(pool.size()) + " images)");
    // 1. Calibration draws (cheap, and errors come before any heavy work).
    const std::vector<int> pool_map = map_classes(pool.class_names, cfg);
    std::vector<int> pool_labels(pool.size());
    for (size_t i = 0; i < pool.size(); ++i) pool_labels[i] = pool_map[size_t(pool.labels[i])];
    R.pool_n = pool.size();
    for (size_t k = 0; k < K; ++k) {
        const uint64_t seed = spec.first_seed + k;
        R.seeds.push_back(seed);
        R.calib_draws.push_back(draw_sweep_calibration(pool_labels, C, n, spec.calib_classes, spec.calib_skew, seed));
        std::vector<size_t> hist(size_t(C), 0);
        for (size_t i : R.calib_draws.back()) hist[size_t(pool_labels[i])]++;
        R.calib_class_counts.push_back(std::move(hist));
    }

    // 2. Seed-independent work, once: the evaluation set (corrupted if asked) and the FP32 reference.
    PreparedData& eval = eval_;
    if (spec.eval_corrupt.active()) {
        Dataset cd;
        cd.class_names = eval_ds.class_names;
        const size_t m = spec.eval_limit ? std::min(spec.eval_limit, eval_ds.size()) : eval_ds.size();
        cd.images.resize(m);
        cd.labels.assign(eval_ds.labels.begin(), eval_ds.labels.begin() + long(m));
        parallel_for(m, jobs, [&](size_t b, size_t e, int) {
            for (size_t i = b; i < e; ++i) cd.images[i] = corrupt(eval_ds.images[i], spec.eval_corrupt, derive_seed(kEvalNoiseStream, i));
        });
        eval = prepare(cd, cfg);
        R.fp32_clean_top1 = evaluate(model, prepare(eval_ds, cfg, spec.eval_limit), jobs).top1;
    } else {
        eval = prepare(eval_ds, cfg, spec.eval_limit);
    }
    R.eval_n = eval.n;
    R.fp32 = evaluate(model, eval, jobs);
    R.labels = R.fp32.labels;
    R.class_count = R.fp32.class_count;
    for (const ClassGroup& g : spec.groups) R.fp32_groups.push_back(group_accuracy(R.fp32.per_class, R.class_count, g.classes));

    // 3. Per seed: the calibration images, corrupted if asked, preprocessed. PTQ's fit depends only on the
    // set of images, but SOS's reconstruction batches follow their order, so they are stored so that
    // quantize_method(), which takes draw_calibration(n, n, seed) of them in that order, sees the drawn
    // images in draw order — exactly what `bitlens quantize --seed s` sees on the whole pool.
    std::vector<PreparedData>& calib = calib_;
    calib.resize(K);
    parallel_for(K, jobs, [&](size_t b, size_t e, int) {
        for (size_t k = b; k < e; ++k) {
            const std::vector<size_t>& idx = R.calib_draws[k];
            const std::vector<size_t> pos = draw_calibration(idx.size(), idx.size(), R.seeds[k]);
            PreparedData& p = calib[k];
            p.n = idx.size();
            p.input_size = size_t(cfg.channels) * size_t(cfg.image_h) * size_t(cfg.image_w);
            p.inputs.resize(p.n * p.input_size);
            p.labels.resize(p.n);
            for (size_t j = 0; j < idx.size(); ++j) {
                const Image8& src = pool.images[idx[j]];
                const std::vector<float> x =
                    spec.calib_corrupt.active()
                        ? preprocess(corrupt(src, spec.calib_corrupt, derive_seed(R.seeds[k], idx[j])), cfg.pp)
                        : preprocess(src, cfg.pp);
                if (x.size() != p.input_size) throw std::runtime_error("calibration image: preprocessing gave the wrong size");
                std::copy(x.begin(), x.end(), p.inputs.begin() + long(pos[j] * p.input_size));
                p.labels[pos[j]] = pool_labels[idx[j]];
            }
        }
    });

    slots_.resize(spec.configs.size() * K);
    bytes_.assign(slots_.size(), 0);
    done_.assign(slots_.size(), 0);
}

void SweepRunner::run(size_t i, int jobs) {
    if (i >= slots_.size()) throw std::runtime_error("sweep run " + std::to_string(i) + " is outside 0.." + std::to_string(slots_.size() - 1));
    const SweepSpec& spec = R_.spec;
    const size_t K = size_t(spec.seeds), ci = i / K, k = i % K;
    QuantConfig qc = spec.configs[ci];
    qc.calib_size = spec.calib_size;
    qc.seed = R_.seeds[k];
    const QuantizedViT q = train::quantize_method(model_, calib_[k], qc, jobs);  // PTQ, or SOS's reconstruction
    slots_[i] = evaluate_quantized(q, eval_, jobs);
    slots_[i].predictions.clear();
    bytes_[i] = q.model_bytes();
    done_[i] = 1;
}

SeedRun SweepRunner::result(size_t i) const {
    if (i >= slots_.size() || !done_[i]) throw std::runtime_error("sweep: run " + std::to_string(i) + " has not been done");
    SeedRun run;
    run.seed = R_.seeds[i % size_t(R_.spec.seeds)];
    run.top1 = slots_[i].top1;
    run.per_class = slots_[i].per_class;
    run.confusion = slots_[i].confusion;
    return run;
}

size_t SweepRunner::model_bytes(size_t i) const {
    if (i >= slots_.size() || !done_[i]) throw std::runtime_error("sweep: run " + std::to_string(i) + " has not been done");
    return bytes_[i];
}

namespace {

// 5. Aggregate in a fixed order: runs[i] and bytes[i] of run i (configuration i / K, seed index i % K) into R.configs.
// The unsharded sweep and the merge of its parts both end here.
void assemble(SweepResult& R, std::vector<SeedRun>& runs, const std::vector<size_t>& bytes) {
    const SweepSpec& spec = R.spec;
    const size_t K = size_t(spec.seeds);
    for (size_t ci = 0; ci < spec.configs.size(); ++ci) {
        ConfigResult cr;
        cr.config = spec.configs[ci];
        cr.config.calib_size = spec.calib_size;
        cr.model_bytes = bytes[ci * K];
        cr.config.seed = spec.first_seed;
        std::vector<std::vector<double>> table;
        std::vector<double> top1;
        for (size_t k = 0; k < K; ++k) {
            SeedRun run = std::move(runs[ci * K + k]);
            table.push_back(run.per_class);
            top1.push_back(run.top1);
            cr.runs.push_back(std::move(run));
        }
        cr.stats = sweep_stats(table, top1, R.fp32.per_class, R.fp32.top1, R.class_count, spec.groups);
        R.configs.push_back(std::move(cr));
    }
}

// Runs `indices` of the runner, spread over jobs as run_sweep describes; progress over them.
void run_runs(SweepRunner& runner, const std::vector<size_t>& indices, int jobs, const SweepProgress& progress) {
    const size_t total = indices.size();
    const int outer = int(std::max<size_t>(1, std::min<size_t>(size_t(jobs), total)));
    const int inner = std::max(1, jobs / outer);
    std::atomic<bool> cancelled{false};
    std::mutex mu;
    size_t done = 0;
    if (progress && !progress(0, total)) throw Cancelled();
    parallel_for(total, outer, [&](size_t b, size_t e, int) {
        for (size_t j = b; j < e; ++j) {
            if (cancelled.load()) return;
            runner.run(indices[j], inner);
            if (progress) {
                std::lock_guard<std::mutex> lock(mu);
                if (!cancelled.load() && !progress(++done, total)) cancelled.store(true);
            }
        }
    });
    if (cancelled.load()) throw Cancelled();
}

}  // namespace

SweepResult SweepRunner::finish() {
    for (size_t i = 0; i < done_.size(); ++i)
        if (!done_[i]) throw std::runtime_error("sweep: run " + std::to_string(i) + " has not been done");
    const size_t K = size_t(R_.spec.seeds);
    std::vector<SeedRun> runs(slots_.size());
    for (size_t i = 0; i < slots_.size(); ++i) {
        EvalResult& r = slots_[i];
        runs[i].seed = R_.seeds[i % K];
        runs[i].top1 = r.top1;
        runs[i].per_class = std::move(r.per_class);
        runs[i].confusion = std::move(r.confusion);
    }
    assemble(R_, runs, bytes_);
    return std::move(R_);
}

SweepResult run_sweep(const ViT& model, const Dataset& eval_ds, const Dataset& pool, const SweepSpec& spec, int jobs,
                      const SweepProgress& progress) {
    if (jobs <= 0) jobs = default_jobs();
    SweepRunner runner(model, eval_ds, pool, spec, jobs);
    std::vector<size_t> all(runner.total());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    run_runs(runner, all, jobs, progress);
    return runner.finish();
}

std::vector<int> parse_class_list(const std::string& s, const ViTConfig& cfg) {
    std::vector<int> out;
    for (const std::string& raw : split(s, ',')) {
        const std::string t = trim(raw);
        if (t.empty()) throw std::runtime_error("empty class in the list '" + s + "'");
        int found = -1;
        for (int j = 0; j < cfg.num_classes && found < 0; ++j)
            if (size_t(j) < cfg.labels.size() && lower(cfg.labels[size_t(j)]) == lower(t)) found = j;
        if (found < 0 && t.size() < 9 && std::all_of(t.begin(), t.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
            found = std::stoi(t);
            if (found >= cfg.num_classes) found = -1;
        }
        if (found < 0)
            throw std::runtime_error("'" + t + "' is not a class of the model (" + std::to_string(cfg.num_classes) +
                                     " classes: " + class_list(cfg.num_classes, cfg.labels) + ")");
        if (std::find(out.begin(), out.end(), found) != out.end())
            throw std::runtime_error("class '" + t + "' is listed twice in '" + s + "'");
        out.push_back(found);
    }
    return out;
}

std::vector<ClassGroup> parse_groups(const std::string& s, const ViTConfig& cfg) {
    std::vector<ClassGroup> out;
    for (const std::string& raw : split(s, ';')) {
        const std::string part = trim(raw);
        if (part.empty()) continue;
        const size_t eq = part.find('=');
        if (eq == std::string::npos)
            throw std::runtime_error("class group '" + part + "' is not of the form NAME=CLASS,CLASS,... (e.g. shoes=5,7,9)");
        ClassGroup g;
        g.name = trim(part.substr(0, eq));
        if (g.name.empty()) throw std::runtime_error("class group '" + part + "' has no name");
        for (const ClassGroup& h : out)
            if (h.name == g.name) throw std::runtime_error("class group '" + g.name + "' is defined twice");
        g.classes = parse_class_list(part.substr(eq + 1), cfg);
        out.push_back(std::move(g));
    }
    if (out.empty()) throw std::runtime_error("no class groups in '" + s + "'");
    return out;
}

nlohmann::json sweep_spec_json(const SweepSpec& s) {
    nlohmann::json configs = nlohmann::json::array(), groups = nlohmann::json::array();
    for (const QuantConfig& c : s.configs) {
        QuantConfig q = c;
        q.calib_size = s.calib_size, q.seed = s.first_seed;
        configs.push_back(config_json(q));
    }
    for (const ClassGroup& g : s.groups) groups.push_back({{"name", g.name}, {"classes", g.classes}});
    return {{"configs", configs},
            {"seeds", s.seeds},
            {"first_seed", s.first_seed},
            {"calib_size", s.calib_size},
            {"calib_classes", s.calib_classes},
            {"calib_skew", s.calib_skew},
            {"calib_corrupt", s.calib_corrupt.name()},
            {"eval_corrupt", s.eval_corrupt.name()},
            {"groups", groups},
            {"eval_limit", s.eval_limit}};
}

nlohmann::json sweep_json(const SweepResult& r) {
    using json = nlohmann::json;
    auto label = [&](int c) { return c >= 0 && size_t(c) < r.labels.size() ? json(r.labels[size_t(c)]) : json(nullptr); };
    json j;
    j["spec"] = sweep_spec_json(r.spec);
    j["labels"] = r.labels;
    j["class_count"] = r.class_count;
    j["eval_n"] = r.eval_n;
    j["pool_n"] = r.pool_n;
    j["seeds"] = r.seeds;
    json calib = json::array();
    for (size_t k = 0; k < r.seeds.size(); ++k)
        calib.push_back({{"seed", r.seeds[k]}, {"indices", r.calib_draws[k]}, {"class_counts", r.calib_class_counts[k]}});
    j["calibration"] = calib;
    json fg = json::array();
    for (size_t g = 0; g < r.spec.groups.size(); ++g) fg.push_back({{"name", r.spec.groups[g].name}, {"accuracy", num(r.fp32_groups[g])}});
    j["fp32"] = {{"top1", r.fp32.top1},
                 {"per_class", nums(r.fp32.per_class)},
                 {"worst_class", label(r.fp32.worst_class)},
                 {"confusion", r.fp32.confusion},
                 {"groups", fg}};
    if (r.spec.eval_corrupt.active()) j["fp32_clean_top1"] = r.fp32_clean_top1;
    json configs = json::array();
    for (const ConfigResult& cr : r.configs) {
        const SweepStats& s = cr.stats;
        json c;
        c["name"] = cr.config.name();
        c["config"] = config_json(cr.config);
        c["model_bytes"] = cr.model_bytes;
        c["top1"] = {{"mean", s.top1_mean}, {"std", s.top1_std}, {"min", s.top1_min}, {"max", s.top1_max}, {"drop", s.top1_drop}};
        json pc = json::array();
        for (size_t k = 0; k < r.labels.size(); ++k)
            pc.push_back({{"index", k},
                          {"label", r.labels[k]},
                          {"fp32", num(r.fp32.per_class[k])},
                          {"mean", num(s.class_mean[k])},
                          {"std", num(s.class_std[k])},
                          {"min", num(s.class_min[k])},
                          {"max", num(s.class_max[k])}});
        c["per_class"] = pc;
        c["worst_class"] = {{"index", s.worst_class}, {"label", label(s.worst_class)}, {"mean", s.worst_class_mean},
                            {"drop", s.worst_class_drop}};
        c["worst_case"] = {{"index", s.worst_case_class}, {"label", label(s.worst_case_class)}, {"accuracy", s.worst_case},
                           {"drop", s.worst_case_drop}, {"seed", r.seeds.empty() ? 0 : r.seeds[s.worst_case_seed]}};
        c["largest_drop"] = {{"index", s.largest_drop_class}, {"label", label(s.largest_drop_class)}, {"drop", s.largest_drop}};
        c["largest_seed_drop"] = {{"index", s.largest_seed_drop_class}, {"label", label(s.largest_seed_drop_class)},
                                  {"drop", s.largest_seed_drop}, {"seed", r.seeds.empty() ? 0 : r.seeds[s.largest_seed_drop_seed]}};
        json gs = json::array();
        for (const GroupStats& g : s.groups)
            gs.push_back({{"name", g.name}, {"classes", g.classes}, {"fp32", num(g.fp32)}, {"mean", num(g.mean)},
                          {"std", num(g.std)}, {"min", num(g.min)}, {"max", num(g.max)},
                          {"min_seed", r.seeds.empty() ? 0 : r.seeds[g.min_seed]}, {"drop", num(g.drop)},
                          {"per_seed", nums(g.per_seed)}});
        c["groups"] = gs;
        json runs = json::array();
        for (const SeedRun& run : cr.runs)
            runs.push_back({{"seed", run.seed}, {"top1", run.top1}, {"per_class", nums(run.per_class)}, {"confusion", run.confusion}});
        c["runs"] = runs;
        configs.push_back(std::move(c));
    }
    j["configs"] = configs;
    return j;
}

SweepSpec sweep_spec_from_json(const nlohmann::json& j, const ViTConfig& cfg) {
    using json = nlohmann::json;
    if (!j.is_object()) throw std::runtime_error("sweep spec must be an object");
    SweepSpec s;
    auto integer = [&](const std::string& k, long long lo, long long hi) {
        const json& v = j.at(k);
        if (!v.is_number_integer() || v.get<long long>() < lo || v.get<long long>() > hi)
            throw std::runtime_error("sweep: '" + k + "' must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
                                     ", found " + v.dump());
        return v.get<long long>();
    };
    auto text = [&](const std::string& k) {
        if (!j.at(k).is_string()) throw std::runtime_error("sweep: '" + k + "' must be a string, found " + j.at(k).dump());
        return j.at(k).get<std::string>();
    };
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& k = it.key();
        const json& v = it.value();
        if (k == "configs") {
            if (!v.is_array()) throw std::runtime_error("sweep: 'configs' must be an array of quantization configs");
            for (const json& c : v) s.configs.push_back(c.is_string() ? parse_wa(c.get<std::string>(), QuantConfig{}) : config_from_json(c));
        } else if (k == "seeds") s.seeds = int(integer(k, 1, 100000));
        else if (k == "firstSeed" || k == "first_seed") s.first_seed = uint64_t(integer(k, 0, 1LL << 53));
        else if (k == "calibSize" || k == "calib_size") s.calib_size = int(integer(k, 1, 1 << 24));
        else if (k == "limit" || k == "eval_limit") s.eval_limit = size_t(integer(k, 0, 1LL << 40));
        else if (k == "calibSkew" || k == "calib_skew") {
            if (!v.is_number()) throw std::runtime_error("sweep: 'calibSkew' must be a number in [0, 1], found " + v.dump());
            s.calib_skew = v.get<double>();
        } else if (k == "calibClasses" || k == "calib_classes") {
            if (!v.is_array()) throw std::runtime_error("sweep: 'calibClasses' must be an array of class indices or labels");
            std::string list;
            for (const json& c : v) list += (list.empty() ? "" : ",") + (c.is_string() ? c.get<std::string>() : c.dump());
            if (!list.empty()) s.calib_classes = parse_class_list(list, cfg);
        } else if (k == "calibCorrupt" || k == "calib_corrupt") s.calib_corrupt = parse_corruption(text(k));
        else if (k == "evalCorrupt" || k == "eval_corrupt") s.eval_corrupt = parse_corruption(text(k));
        else if (k == "groups") {
            if (v.is_string()) {
                if (!v.get<std::string>().empty()) s.groups = parse_groups(v.get<std::string>(), cfg);
            } else if (v.is_array()) {
                for (const json& g : v) {
                    if (!g.is_object() || !g.contains("name") || !g.contains("classes") || !g["classes"].is_array())
                        throw std::runtime_error("sweep: each group must be {name, classes: [...]}");
                    std::string list;
                    for (const json& c : g["classes"]) list += (list.empty() ? "" : ",") + (c.is_string() ? c.get<std::string>() : c.dump());
                    s.groups.push_back({g["name"].get<std::string>(), parse_class_list(list, cfg)});
                }
            } else {
                throw std::runtime_error("sweep: 'groups' must be a string like \"tops=0,2;shoes=5,7\" or an array");
            }
        } else {
            throw std::runtime_error("sweep: unknown field '" + k + "'");
        }
    }
    s.validate(cfg.num_classes);
    return s;
}

std::string sweep_csv(const SweepResult& r) {
    auto quote = [](const std::string& s) {
        if (s.find_first_of(",\"\n") == std::string::npos) return s;
        std::string q = "\"";
        for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        return q + "\"";
    };
    auto f = [](double v) {
        if (std::isnan(v)) return std::string();
        char b[32];
        std::snprintf(b, sizeof b, "%.6f", v);
        return std::string(b);
    };
    std::string s = "config,seed,kind,index,name,images,accuracy,fp32,drop\n";
    for (const ConfigResult& cr : r.configs) {
        const std::string name = quote(cr.config.name());
        for (size_t k = 0; k < cr.runs.size(); ++k) {
            const SeedRun& run = cr.runs[k];
            const std::string head = name + "," + std::to_string(run.seed) + ",";
            for (size_t c = 0; c < r.labels.size(); ++c) {
                const double fp = r.fp32.per_class[c], a = run.per_class[c];
                s += head + "class," + std::to_string(c) + "," + quote(r.labels[c]) + "," + std::to_string(r.class_count[c]) + "," +
                     f(a) + "," + f(fp) + "," + f(fp - a) + "\n";
            }
            for (size_t g = 0; g < cr.stats.groups.size(); ++g) {
                const GroupStats& gs = cr.stats.groups[g];
                size_t images = 0;
                for (int c : gs.classes) images += r.class_count[size_t(c)];
                s += head + "group," + std::to_string(g) + "," + quote(gs.name) + "," + std::to_string(images) + "," +
                     f(gs.per_seed[k]) + "," + f(gs.fp32) + "," + f(gs.fp32 - gs.per_seed[k]) + "\n";
            }
        }
    }
    return s;
}

std::string sweep_table(const SweepResult& r) {
    auto pct = [](double v) {
        if (std::isnan(v)) return std::string("-");
        char b[32];
        std::snprintf(b, sizeof b, "%.2f%%", 100 * v);
        return std::string(b);
    };
    auto pts = [](double v) {  // a drop in percentage points, signed
        char b[32];
        std::snprintf(b, sizeof b, "%+.2f", -100 * v + 0.0);  // + 0.0: no "-0.00"
        return std::string(b);
    };
    auto pad = [](std::string s, size_t w) {
        if (s.size() < w) s += std::string(w - s.size(), ' ');
        return s;
    };
    auto lab = [&](int c) { return c >= 0 ? r.labels[size_t(c)] : std::string("-"); };
    const SweepSpec& sp = r.spec;
    std::string out;
    char buf[512];
    std::snprintf(buf, sizeof buf, "sweep: %zu configuration%s x %d seed%s (%llu..%llu), %d calibration images per seed from a pool of %zu",
                  r.configs.size(), r.configs.size() == 1 ? "" : "s", sp.seeds, sp.seeds == 1 ? "" : "s",
                  (unsigned long long)sp.first_seed, (unsigned long long)(sp.first_seed + uint64_t(sp.seeds) - 1), sp.calib_size,
                  r.pool_n);
    out += buf;
    if (!sp.calib_classes.empty()) {
        out += ", classes";
        for (size_t i = 0; i < sp.calib_classes.size(); ++i) out += (i ? "," : " ") + std::to_string(sp.calib_classes[i]);
    }
    if (sp.calib_skew > 0) std::snprintf(buf, sizeof buf, ", skew %g", sp.calib_skew), out += buf;
    if (sp.calib_corrupt.active()) out += ", corrupted " + sp.calib_corrupt.name();
    std::snprintf(buf, sizeof buf, "; %zu evaluation images%s\n", r.eval_n,
                  sp.eval_corrupt.active() ? (", corrupted " + sp.eval_corrupt.name()).c_str() : "");
    out += buf;
    out += "FP32: top-1 " + pct(r.fp32.top1) + ", worst class " + lab(r.fp32.worst_class) + " " +
           (r.fp32.worst_class >= 0 ? pct(r.fp32.per_class[size_t(r.fp32.worst_class)]) : "-");
    if (sp.eval_corrupt.active()) out += " (clean evaluation set: top-1 " + pct(r.fp32_clean_top1) + ")";
    out += "\n\n";

    // Summary: one row per configuration.
    std::vector<std::vector<std::string>> rows = {
        {"config", "top-1 mean +- std", "worst class: mean (pts vs FP32)", "worst case: class, seed", "largest drop in pts: mean | one seed"}};
    for (const ConfigResult& cr : r.configs) {
        const SweepStats& s = cr.stats;
        char t[64];
        std::snprintf(t, sizeof t, "%.2f%% +- %.2f", 100 * s.top1_mean, 100 * s.top1_std);
        const std::string worst = lab(s.worst_class) + " " + pct(s.worst_class_mean) + " (" + pts(s.worst_class_drop) + ")";
        const std::string wcase = lab(s.worst_case_class) + " " + pct(s.worst_case) + ", seed " +
                                  std::to_string(r.seeds[s.worst_case_seed]);
        const std::string drop = lab(s.largest_drop_class) + " " + pts(s.largest_drop) + " | " + lab(s.largest_seed_drop_class) + " " +
                                 pts(s.largest_seed_drop) + " (seed " + std::to_string(r.seeds[s.largest_seed_drop_seed]) + ")";
        rows.push_back({cr.config.name(), t, worst, wcase, drop});
    }
    auto print_rows = [&](const std::vector<std::vector<std::string>>& rs) {
        std::vector<size_t> w(rs[0].size(), 0);
        for (const auto& row : rs)
            for (size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], row[i].size());
        for (const auto& row : rs) {
            std::string line;
            for (size_t i = 0; i < row.size(); ++i) line += i + 1 < row.size() ? pad(row[i], w[i] + 3) : row[i];
            out += line + "\n";
        }
    };
    print_rows(rows);

    // Per class (and group): FP32, then each configuration's mean (min) over seeds.
    std::vector<std::vector<std::string>> pc = {{"class", "FP32"}};
    for (const ConfigResult& cr : r.configs) pc[0].push_back(cr.config.name() + " mean (min)");
    for (size_t c = 0; c < r.labels.size(); ++c) {
        if (!r.class_count[c]) continue;
        std::vector<std::string> row = {r.labels[c], pct(r.fp32.per_class[c])};
        for (const ConfigResult& cr : r.configs) row.push_back(pct(cr.stats.class_mean[c]) + " (" + pct(cr.stats.class_min[c]) + ")");
        pc.push_back(row);
    }
    for (size_t g = 0; g < sp.groups.size(); ++g) {
        std::vector<std::string> row = {"group " + sp.groups[g].name, pct(r.fp32_groups[g])};
        for (const ConfigResult& cr : r.configs)
            row.push_back(pct(cr.stats.groups[g].mean) + " (" + pct(cr.stats.groups[g].min) + ")");
        pc.push_back(row);
    }
    out += "\n";
    print_rows(pc);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Sharding and merging (issue 19)

Shard parse_shard(const std::string& s) {
    const size_t slash = s.find('/');
    auto digits = [](const std::string& t) {
        return !t.empty() && t.size() <= 9 && std::all_of(t.begin(), t.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    };
    const std::string a = slash == std::string::npos ? "" : s.substr(0, slash), b = slash == std::string::npos ? "" : s.substr(slash + 1);
    if (!digits(a) || !digits(b))
        throw std::runtime_error("'" + s + "' is not of the form I/N (part I of N, e.g. 2/3)");
    Shard sh;
    sh.index = std::stoi(a), sh.count = std::stoi(b);
    if (sh.count < 1) throw std::runtime_error("'" + s + "': the number of parts N must be at least 1");
    if (sh.index < 1 || sh.index > sh.count)
        throw std::runtime_error("'" + s + "': part " + std::to_string(sh.index) + " does not exist, the parts of " +
                                 std::to_string(sh.count) + " are numbered 1 to " + std::to_string(sh.count));
    return sh;
}

std::vector<size_t> shard_runs(size_t total, const Shard& sh) {
    if (sh.count < 1 || sh.index < 1 || sh.index > sh.count)
        throw std::invalid_argument("shard_runs: part " + std::to_string(sh.index) + " of " + std::to_string(sh.count));
    std::vector<size_t> out;
    for (size_t i = size_t(sh.index - 1); i < total; i += size_t(sh.count)) out.push_back(i);
    return out;
}

namespace {

struct Fnv1a64 {
    uint64_t h = 14695981039346656037ull;
    void bytes(const void* p, size_t n) {
        const uint8_t* b = static_cast<const uint8_t*>(p);
        for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    }
    void u64(uint64_t v) {
        uint8_t b[8];
        for (int i = 0; i < 8; ++i) b[i] = uint8_t(v >> (8 * i));  // little-endian, the same on every host
        bytes(b, 8);
    }
    void str(const std::string& s) { u64(s.size()), bytes(s.data(), s.size()); }
    std::string hex() const {
        char b[32];
        std::snprintf(b, sizeof b, "fnv1a64:%016llx", (unsigned long long)h);
        return b;
    }
};

// The JSON text as parsed and dumped again (sorted keys, no spacing); the text itself when it does not parse.
std::string canonical_json(const std::string& text) {
    if (text.empty()) return "";
    try {
        return nlohmann::json::parse(text).dump();
    } catch (const nlohmann::json::exception&) {
        return text;
    }
}

}  // namespace

std::string tensors_fingerprint(const SafeTensors& st) {
    Fnv1a64 f;
    f.u64(st.metadata.size());
    for (const auto& kv : st.metadata) f.str(kv.first), f.str(kv.second);
    f.u64(st.tensors.size());
    for (const auto& kv : st.tensors) {
        f.str(kv.first), f.str(kv.second.dtype);
        f.u64(kv.second.shape.size());
        for (int64_t d : kv.second.shape) f.u64(uint64_t(d));
        f.u64(kv.second.bytes.size());
        f.bytes(kv.second.bytes.data(), kv.second.bytes.size());
    }
    return f.hex();
}

std::string model_config_fingerprint(const ModelSource& src) {
    Fnv1a64 f;
    f.str(canonical_json(src.config_json));
    f.str(canonical_json(src.preprocessor_json));
    f.u64(uint64_t(src.heads_override));
    return f.hex();
}

std::string dataset_fingerprint(const Dataset& ds) {
    Fnv1a64 f;
    f.u64(ds.class_names.size());
    for (const std::string& n : ds.class_names) f.str(n);
    f.u64(ds.images.size());
    for (size_t i = 0; i < ds.images.size(); ++i) {
        const Image8& im = ds.images[i];
        f.u64(uint64_t(i < ds.labels.size() ? ds.labels[i] : -1));
        f.u64(uint64_t(im.width)), f.u64(uint64_t(im.height)), f.u64(uint64_t(im.channels));
        f.u64(im.pixels.size());
        f.bytes(im.pixels.data(), im.pixels.size());
    }
    return f.hex();
}

SweepPart run_sweep_part(const ViT& model, const Dataset& eval_ds, const Dataset& pool, const SweepSpec& spec, const Shard& shard,
                         int jobs, const SweepProgress& progress) {
    if (shard.count < 1 || shard.index < 1 || shard.index > shard.count)
        throw std::runtime_error("sweep: part " + std::to_string(shard.index) + " of " + std::to_string(shard.count) +
                                 " does not exist (parts are numbered 1 to N)");
    if (jobs <= 0) jobs = default_jobs();
    SweepRunner runner(model, eval_ds, pool, spec, jobs);
    const std::vector<size_t> mine = shard_runs(runner.total(), shard);
    run_runs(runner, mine, jobs, progress);
    SweepPart p;
    p.shard = shard;
    p.shared = runner.shared();
    p.shared.fp32.predictions.clear();
    for (size_t i : mine) p.runs.push_back({i, runner.model_bytes(i), runner.result(i)});
    return p;
}

namespace {

constexpr int kPartFormat = 1;  // "bitlens_sweep_part": bumped when the layout changes

size_t total_runs(const SweepSpec& s) { return s.configs.size() * size_t(s.seeds); }

double num_or_nan(const nlohmann::json& v) { return v.is_null() ? kNaN : v.get<double>(); }
std::vector<double> nums_or_nan(const nlohmann::json& a) {
    std::vector<double> out;
    for (const nlohmann::json& v : a) out.push_back(num_or_nan(v));
    return out;
}

// A spec exactly as sweep_spec_json wrote it (class lists as indices: no model needed).
SweepSpec spec_from_written_json(const nlohmann::json& j, int num_classes) {
    SweepSpec s;
    for (const nlohmann::json& c : j.at("configs")) s.configs.push_back(config_from_json(c));
    s.seeds = json_int<int>(j.at("seeds"), "spec.seeds");
    s.first_seed = json_int<uint64_t>(j.at("first_seed"), "spec.first_seed");
    s.calib_size = json_int<int>(j.at("calib_size"), "spec.calib_size");
    s.calib_classes = json_ints<int>(j.at("calib_classes"), "spec.calib_classes");
    s.calib_skew = j.at("calib_skew").get<double>();
    s.calib_corrupt = parse_corruption(j.at("calib_corrupt").get<std::string>());
    s.eval_corrupt = parse_corruption(j.at("eval_corrupt").get<std::string>());
    for (const nlohmann::json& g : j.at("groups")) s.groups.push_back({g.at("name").get<std::string>(), json_ints<int>(g.at("classes"), "spec.groups.classes")});
    s.eval_limit = json_int<size_t>(j.at("eval_limit"), "spec.eval_limit");
    s.validate(num_classes);
    return s;
}

// The first top-level key whose value differs between a and b ("" when none).
std::string first_difference(const nlohmann::json& a, const nlohmann::json& b) {
    for (auto it = a.begin(); it != a.end(); ++it)
        if (!b.contains(it.key()) || b.at(it.key()) != it.value()) return it.key();
    for (auto it = b.begin(); it != b.end(); ++it)
        if (!a.contains(it.key())) return it.key();
    return "";
}

std::string short_dump(const nlohmann::json& v) {
    std::string d = v.dump();
    return d.size() > 80 ? d.substr(0, 77) + "..." : d;
}

std::string config_names(const std::vector<QuantConfig>& cs) {
    std::string r;
    for (const QuantConfig& c : cs) r += (r.empty() ? "" : ",") + c.name();
    return r;
}

}  // namespace

nlohmann::json sweep_part_json(const SweepPart& p) {
    using json = nlohmann::json;
    json j = sweep_json(p.shared);
    j.erase("configs");
    j["bitlens_sweep_part"] = kPartFormat;
    j["fp32"]["worst_class_index"] = p.shared.fp32.worst_class;
    const SweepSpec& spec = p.shared.spec;
    json idx = json::array();
    for (const PartRun& r : p.runs) idx.push_back(r.index);
    j["part"] = {{"index", p.shard.index}, {"count", p.shard.count}, {"total_runs", total_runs(spec)}, {"runs", idx}};
    const SweepIdentity& id = p.identity;
    j["model"] = {{"tensors", id.model_tensors}, {"config", id.model_config}, {"path", id.model_path}};
    j["data"] = {{"eval", {{"fnv1a64", id.eval_data}, {"path", id.eval_path}}}, {"calib", {{"fnv1a64", id.calib_data}, {"path", id.calib_path}}}};
    json runs = json::array();
    const size_t K = size_t(spec.seeds);
    for (const PartRun& r : p.runs) {
        const size_t ci = r.index / K;
        runs.push_back({{"index", r.index},
                        {"config", ci},
                        {"name", ci < spec.configs.size() ? spec.configs[ci].name() : std::string()},
                        {"seed", r.run.seed},
                        {"model_bytes", r.model_bytes},
                        {"top1", r.run.top1},
                        {"per_class", nums(r.run.per_class)},
                        {"confusion", r.run.confusion}});
    }
    j["runs"] = runs;
    return j;
}

SweepPart sweep_part_from_json(const nlohmann::json& j, const std::string& what) {
    using json = nlohmann::json;
    if (!j.is_object() || !j.contains("bitlens_sweep_part")) {
        if (j.is_object() && j.contains("configs") && j.contains("spec"))
            throw std::runtime_error(what + " is a whole sweep, not a part of one (parts come from bitlens sweep --shard I/N --json FILE)");
        throw std::runtime_error(what + " is not a part of a sweep (parts come from bitlens sweep --shard I/N --json FILE)");
    }
    if (j.at("bitlens_sweep_part") != kPartFormat)
        throw std::runtime_error(what + ": part format " + short_dump(j.at("bitlens_sweep_part")) + ", this bitlens reads format " +
                                 std::to_string(kPartFormat));
    SweepPart p;
    try {
        SweepResult& R = p.shared;
        R.labels = j.at("labels").get<std::vector<std::string>>();
        R.spec = spec_from_written_json(j.at("spec"), int(R.labels.size()));
        R.class_count = json_ints<size_t>(j.at("class_count"), "class_count");
        R.eval_n = json_int<size_t>(j.at("eval_n"), "eval_n");
        R.pool_n = json_int<size_t>(j.at("pool_n"), "pool_n");
        R.seeds = json_ints<uint64_t>(j.at("seeds"), "seeds");
        for (const json& c : j.at("calibration")) {
            R.calib_draws.push_back(json_ints<size_t>(c.at("indices"), "calibration.indices"));
            R.calib_class_counts.push_back(json_ints<size_t>(c.at("class_counts"), "calibration.class_counts"));
        }
        const json& fp = j.at("fp32");
        R.fp32.n = R.eval_n;
        R.fp32.top1 = fp.at("top1").get<double>();
        R.fp32.labels = R.labels;
        R.fp32.class_count = R.class_count;
        R.fp32.per_class = nums_or_nan(fp.at("per_class"));
        R.fp32.confusion = json_int_rows<uint32_t>(fp.at("confusion"), "fp32.confusion");
        R.fp32.worst_class = json_int<int>(fp.at("worst_class_index"), "fp32.worst_class_index");
        for (const json& g : fp.at("groups")) R.fp32_groups.push_back(num_or_nan(g.at("accuracy")));
        if (j.contains("fp32_clean_top1")) R.fp32_clean_top1 = j.at("fp32_clean_top1").get<double>();

        const json& part = j.at("part");
        p.shard.index = json_int<int>(part.at("index"), "part.index");
        p.shard.count = json_int<int>(part.at("count"), "part.count");
        const json& model = j.at("model");
        const json& data = j.at("data");
        p.identity.model_tensors = model.at("tensors").get<std::string>();
        p.identity.model_config = model.at("config").get<std::string>();
        p.identity.model_path = model.at("path").get<std::string>();
        p.identity.eval_data = data.at("eval").at("fnv1a64").get<std::string>();
        p.identity.eval_path = data.at("eval").at("path").get<std::string>();
        p.identity.calib_data = data.at("calib").at("fnv1a64").get<std::string>();
        p.identity.calib_path = data.at("calib").at("path").get<std::string>();
        for (const json& r : j.at("runs")) {
            PartRun pr;
            pr.index = json_int<size_t>(r.at("index"), "runs.index");
            pr.model_bytes = json_int<size_t>(r.at("model_bytes"), "runs.model_bytes");
            pr.run.seed = json_int<uint64_t>(r.at("seed"), "runs.seed");
            pr.run.top1 = r.at("top1").get<double>();
            pr.run.per_class = nums_or_nan(r.at("per_class"));
            pr.run.confusion = json_int_rows<uint32_t>(r.at("confusion"), "runs.confusion");
            p.runs.push_back(std::move(pr));
        }
    } catch (const json::exception& e) {
        throw std::runtime_error(what + ": not a sweep part as bitlens sweep --shard writes it (" + e.what() + ")");
    } catch (const std::runtime_error& e) {
        throw std::runtime_error(what + ": " + e.what());
    }

    // Consistency, then the exact round trip: what is read writes back to the same JSON, so the merge's
    // output has the bytes of the unsharded sweep's.
    const SweepResult& R = p.shared;
    const size_t C = R.labels.size(), K = size_t(R.spec.seeds), T = total_runs(R.spec);
    if (p.shard.count < 1 || p.shard.index < 1 || p.shard.index > p.shard.count)
        throw std::runtime_error(what + ": part " + std::to_string(p.shard.index) + " of " + std::to_string(p.shard.count) +
                                 " does not exist");
    if (R.seeds.size() != K || R.calib_draws.size() != K || R.class_count.size() != C || R.fp32.per_class.size() != C ||
        R.fp32_groups.size() != R.spec.groups.size())
        throw std::runtime_error(what + ": the seeds, calibration draws or per-class fields do not match the spec and the labels");
    const std::vector<size_t> expect = shard_runs(T, p.shard);
    std::vector<size_t> got;
    for (const PartRun& r : p.runs) got.push_back(r.index);
    if (got != expect) {
        std::string list;
        for (size_t i : expect) list += (list.empty() ? "" : ",") + std::to_string(i);
        throw std::runtime_error(what + ": part " + std::to_string(p.shard.index) + "/" + std::to_string(p.shard.count) + " of " +
                                 std::to_string(T) + " runs must hold runs [" + list + "], it holds " + json(got).dump());
    }
    for (const PartRun& r : p.runs) {
        if (r.run.seed != R.seeds[r.index % K])
            throw std::runtime_error(what + ": run " + std::to_string(r.index) + " has seed " + std::to_string(r.run.seed) + ", expected " +
                                     std::to_string(R.seeds[r.index % K]));
        if (r.run.per_class.size() != C || r.run.confusion.size() != C)
            throw std::runtime_error(what + ": run " + std::to_string(r.index) + " has " + std::to_string(r.run.per_class.size()) +
                                     " per-class accuracies, the model has " + std::to_string(C) + " classes");
    }
    const json again = sweep_part_json(p);
    if (again != j) {
        const std::string k = first_difference(j, again);
        throw std::runtime_error(what + ": field '" + k + "' does not read back as written (was the file edited, or written by another version?)");
    }
    return p;
}

SweepResult merge_sweep_parts(const std::vector<SweepPart>& parts, const std::vector<std::string>& names_in) {
    using json = nlohmann::json;
    if (parts.empty()) throw std::runtime_error("merge: no parts");
    std::vector<std::string> names = names_in;
    for (size_t i = names.size(); i < parts.size(); ++i) names.push_back("part " + std::to_string(i + 1));
    const SweepPart& a = parts[0];
    const std::string& na = names[0];
    const json spec_a = sweep_spec_json(a.shared.spec);
    json shared_a = sweep_json(a.shared);
    for (size_t i = 1; i < parts.size(); ++i) {
        const SweepPart& b = parts[i];
        const std::string& nb = names[i];
        const SweepIdentity &x = a.identity, &y = b.identity;
        auto differ = [&](const std::string& what, const std::string& u, const std::string& v, const std::string& pu,
                          const std::string& pv) {
            throw std::runtime_error("merge: " + nb + " and " + na + " are parts of different sweeps: another " + what + " (" + v +
                                     (pv.empty() ? "" : ", " + pv) + " in " + nb + "; " + u + (pu.empty() ? "" : ", " + pu) + " in " +
                                     na + ")");
        };
        if (x.model_tensors != y.model_tensors) differ("model: its tensors differ", x.model_tensors, y.model_tensors, x.model_path, y.model_path);
        if (x.model_config != y.model_config)
            differ("model configuration: config.json or preprocessor_config.json differ", x.model_config, y.model_config, x.model_path,
                   y.model_path);
        if (x.eval_data != y.eval_data)
            differ("evaluation set", x.eval_data, y.eval_data, x.eval_path, y.eval_path);
        if (x.calib_data != y.calib_data)
            differ("calibration pool", x.calib_data, y.calib_data, x.calib_path, y.calib_path);
        json spec_b = sweep_spec_json(b.shared.spec), rest_a = spec_a, rest_b = spec_b;
        rest_a.erase("configs"), rest_b.erase("configs");  // the spec's own fields first (each config repeats calib_size and seed)
        const std::string k = first_difference(rest_a, rest_b);
        if (!k.empty()) differ("sweep spec: '" + k + "' differs", short_dump(spec_a[k]), short_dump(spec_b[k]), "", "");
        const std::string ca = config_names(a.shared.spec.configs), cb = config_names(b.shared.spec.configs);
        if (ca != cb) differ("list of configurations", ca, cb, "", "");
        for (size_t c = 0; c < spec_a["configs"].size(); ++c) {
            const std::string f = first_difference(spec_a["configs"][c], spec_b["configs"][c]);
            if (!f.empty())
                differ("configuration " + a.shared.spec.configs[c].name() + ": '" + f + "' differs",
                       short_dump(spec_a["configs"][c][f]), short_dump(spec_b["configs"][c][f]), "", "");
        }
        if (a.shard.count != b.shard.count)
            throw std::runtime_error("merge: " + na + " is part " + std::to_string(a.shard.index) + " of " + std::to_string(a.shard.count) +
                                     " but " + nb + " is part " + std::to_string(b.shard.index) + " of " + std::to_string(b.shard.count) +
                                     ": parts of different splits (every part must come from the same --shard I/N count)");
        const json shared_b = sweep_json(b.shared);
        const std::string d = first_difference(shared_a, shared_b);
        if (!d.empty())
            throw std::runtime_error("merge: " + nb + " and " + na + " have the same model, data and spec but different '" + d +
                                     "' (the seed-independent results differ: another build of bitlens?)");
    }
    // Every part exactly once.
    const int n = a.shard.count;
    std::map<int, std::vector<size_t>> holders;  // part index → positions in `parts` (N may be large: no vector of N)
    for (size_t i = 0; i < parts.size(); ++i) holders[parts[i].shard.index].push_back(i);
    for (const auto& h : holders)
        if (h.second.size() > 1) {
            std::string who;
            for (size_t k = 0; k < h.second.size(); ++k) who += (k ? (k + 1 == h.second.size() ? " and " : ", ") : "") + names[h.second[k]];
            throw std::runtime_error("merge: part " + std::to_string(h.first) + "/" + std::to_string(n) + " is given more than once: " + who);
        }
    if (holders.size() < size_t(n)) {
        const size_t missing = size_t(n) - holders.size(), shown = std::min<size_t>(missing, 8);
        std::vector<int> list;
        for (int s = 1; s <= n && list.size() < shown; ++s)
            if (!holders.count(s)) list.push_back(s);
        std::string text;
        for (size_t m = 0; m < list.size(); ++m)
            text += (m ? (m + 1 == list.size() && missing == shown ? " and " : ", ") : "") + std::to_string(list[m]) + "/" + std::to_string(n);
        if (missing > shown) text += " and " + std::to_string(missing - shown) + " more";
        throw std::runtime_error("merge: " + std::string(missing == 1 ? "part " : "parts ") + text + (missing == 1 ? " is" : " are") +
                                 " missing (" + std::to_string(parts.size()) + " of " + std::to_string(n) + " parts given; run them with " +
                                 "bitlens sweep ... --shard " + std::to_string(list[0]) + "/" + std::to_string(n) + " --json FILE)");
    }
    // The runs in run order, then the statistics exactly as the unsharded sweep computes them.
    SweepResult R = a.shared;
    const size_t T = total_runs(R.spec);
    std::vector<SeedRun> runs(T);
    std::vector<size_t> bytes(T, 0);
    std::vector<char> have(T, 0);
    for (const SweepPart& p : parts)
        for (const PartRun& r : p.runs) {
            if (r.index >= T || have[r.index]) throw std::runtime_error("merge: run " + std::to_string(r.index) + " is held twice or is out of range");
            runs[r.index] = r.run, bytes[r.index] = r.model_bytes, have[r.index] = 1;
        }
    for (size_t i = 0; i < T; ++i)
        if (!have[i]) throw std::runtime_error("merge: run " + std::to_string(i) + " is in no part");
    R.configs.clear();
    assemble(R, runs, bytes);
    return R;
}

}  // namespace bitlens
