// Worst-case reliability sweep: statistics on hand-made per-class tables, calibration draws (plain,
// class-restricted, skewed), corruptions, and small real sweeps of the shipped ViT (seed
// reproducibility, jobs invariance, progress and cancellation, shifted calibration / evaluation).
// Every test case name contains "sweep" (run them with -tc="*sweep*").
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include <nlohmann/json.hpp>

#include "corrupt.h"
#include "dataset.h"
#include "eval.h"
#include "ptq.h"
#include "sweep.h"
#include "test_util.h"

using namespace bitlens;
using namespace bitlens::test;

namespace {

const double kNaN = std::nan("");


Image8 grey(int w, int h, std::vector<uint8_t> px) {
    Image8 im;
    im.width = w, im.height = h, im.channels = 1;
    im.pixels = std::move(px);
    return im;
}

double mean_abs_change(const Image8& a, const Image8& b) {
    double s = 0;
    for (size_t i = 0; i < a.pixels.size(); ++i) s += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    return s / double(a.pixels.size());
}

const Dataset& fmnist_1k() {
    static const Dataset ds = load_dataset(src_path("models/data"));
    return ds;
}
const ViT& hf_model() {
    static const LoadedModel lm = load_model_path(src_path(kHfModel));
    return lm.vit;
}
SweepSpec small_spec() {
    SweepSpec s;
    s.configs = {parse_wa("w8a8", QuantConfig()), parse_wa("w4a4", QuantConfig())};
    s.seeds = 3;
    s.first_seed = 5;
    s.calib_size = 8;
    s.groups = {{"tops", {0, 2, 4, 6}}, {"shoes", {5, 7, 9}}};
    return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Statistics

TEST_CASE("sweep_stats: hand-made 3 seeds x 3 classes") {
    const std::vector<std::vector<double>> t = {{0.9, 0.5, 0.8}, {0.7, 0.6, 0.8}, {0.8, 0.4, 1.0}};
    const std::vector<double> top1 = {0.70, 0.72, 0.74}, fp32 = {1.0, 0.55, 0.85};
    const std::vector<size_t> count = {10, 10, 20};
    const SweepStats s = sweep_stats(t, top1, fp32, 0.8, count, {{"a", {0, 2}}, {"b", {1}}});
    CHECK(s.seeds == 3);
    CHECK(s.top1_mean == doctest::Approx(0.72));
    CHECK(s.top1_std == doctest::Approx(0.02));  // sample std: sqrt((0.02² + 0 + 0.02²) / 2)
    CHECK(s.top1_min == 0.70);
    CHECK(s.top1_max == 0.74);
    CHECK(s.top1_drop == doctest::Approx(0.08));
    CHECK(s.class_mean[0] == doctest::Approx(0.8));
    CHECK(s.class_mean[1] == doctest::Approx(0.5));
    CHECK(s.class_mean[2] == doctest::Approx(2.6 / 3));
    CHECK(s.class_std[0] == doctest::Approx(0.1));
    CHECK(s.class_min == std::vector<double>{0.7, 0.4, 0.8});
    CHECK(s.class_max == std::vector<double>{0.9, 0.6, 1.0});
    // Worst class: lowest mean (class 1, 0.5), drop 0.55 − 0.5.
    CHECK(s.worst_class == 1);
    CHECK(s.worst_class_mean == doctest::Approx(0.5));
    CHECK(s.worst_class_drop == doctest::Approx(0.05));
    // Worst case: class 1 with seed index 2 (0.4).
    CHECK(s.worst_case_class == 1);
    CHECK(s.worst_case_seed == 2);
    CHECK(s.worst_case == 0.4);
    CHECK(s.worst_case_drop == doctest::Approx(0.15));
    // Largest drop of the mean: class 0 (1.0 − 0.8), not the worst class.
    CHECK(s.largest_drop_class == 0);
    CHECK(s.largest_drop == doctest::Approx(0.2));
    // Largest drop of one seed: class 0, seed index 1 (1.0 − 0.7).
    CHECK(s.largest_seed_drop_class == 0);
    CHECK(s.largest_seed_drop_seed == 1);
    CHECK(s.largest_seed_drop == doctest::Approx(0.3));
    // Groups: count-weighted accuracy over their classes.
    REQUIRE(s.groups.size() == 2);
    const GroupStats& a = s.groups[0];
    CHECK(a.name == "a");
    CHECK(a.fp32 == doctest::Approx(27.0 / 30));
    REQUIRE(a.per_seed.size() == 3);
    CHECK(a.per_seed[0] == doctest::Approx(25.0 / 30));
    CHECK(a.per_seed[1] == doctest::Approx(23.0 / 30));
    CHECK(a.per_seed[2] == doctest::Approx(28.0 / 30));
    CHECK(a.mean == doctest::Approx(76.0 / 90));
    CHECK(a.min == doctest::Approx(23.0 / 30));
    CHECK(a.min_seed == 1);
    CHECK(a.max == doctest::Approx(28.0 / 30));
    CHECK(a.drop == doctest::Approx(27.0 / 30 - 76.0 / 90));
    const GroupStats& b = s.groups[1];  // one class: the class itself
    CHECK(b.mean == doctest::Approx(s.class_mean[1]));
    CHECK(b.min == doctest::Approx(0.4));
    CHECK(b.min_seed == 2);
    CHECK(b.std == doctest::Approx(0.1));
}

TEST_CASE("sweep_stats: ties, a class without images, one seed") {
    // Ties: equal means → lower class; equal minima → lower class, then the earlier seed.
    const SweepStats t = sweep_stats({{0.5, 0.5, 0.9}, {0.5, 0.5, 0.9}}, {0.6, 0.6}, {0.6, 0.6, 1.0}, 0.7, {1, 1, 1});
    CHECK(t.worst_class == 0);
    CHECK(t.worst_case_class == 0);
    CHECK(t.worst_case_seed == 0);
    CHECK(t.top1_std == 0);
    CHECK(t.largest_seed_drop_class == 0);
    CHECK(t.largest_seed_drop_seed == 0);
    // Class 1 has no images (NaN everywhere): skipped; its mean stays NaN.
    const SweepStats s = sweep_stats({{0.8, kNaN, 0.6}, {0.9, kNaN, 0.7}}, {0.7, 0.8}, {0.9, kNaN, 0.7}, 0.8, {10, 0, 10},
                                     {{"g", {1}}, {"h", {0, 1}}});
    CHECK(std::isnan(s.class_mean[1]));
    CHECK(s.worst_class == 2);
    CHECK(s.worst_case_class == 2);
    CHECK(s.worst_case == 0.6);
    CHECK(s.largest_seed_drop == doctest::Approx(0.1));
    CHECK(std::isnan(s.groups[0].mean));  // a group with no images
    CHECK(s.groups[1].mean == doctest::Approx(0.85));
    // One seed: std 0, min = max = mean.
    const SweepStats one = sweep_stats({{0.3, 0.7}}, {0.5}, {0.4, 0.8}, 0.6, {5, 5});
    CHECK(one.top1_std == 0);
    CHECK(one.class_std[0] == 0);
    CHECK(one.class_min[1] == one.class_max[1]);
    CHECK(one.worst_case_seed == 0);
    // Malformed tables.
    CHECK_THROWS(sweep_stats({}, {}, {0.5}, 0.5, {1}));
    CHECK_THROWS(sweep_stats({{0.5}}, {0.5, 0.6}, {0.5}, 0.5, {1}));
    CHECK_THROWS(sweep_stats({{0.5, 0.1}}, {0.5}, {0.5}, 0.5, {1}));
}

// ---------------------------------------------------------------------------------------------
// Calibration draws

TEST_CASE("sweep calibration draw: plain, class-restricted and skewed") {
    std::vector<int> labels;  // 200 images, 20 per class, classes interleaved
    for (int i = 0; i < 200; ++i) labels.push_back(i % 10);
    // Plain: exactly quantize's draw.
    CHECK(draw_sweep_calibration(labels, 10, 32, {}, 0, 7) == draw_calibration(200, 32, 7));
    CHECK(draw_sweep_calibration(labels, 10, 32, {}, 0, 7) != draw_sweep_calibration(labels, 10, 32, {}, 0, 8));
    // Only some classes: every image from them, distinct, reproducible.
    for (uint64_t seed = 0; seed < 20; ++seed) {
        const std::vector<size_t> d = draw_sweep_calibration(labels, 10, 40, {1, 3, 8}, 0, seed);
        CHECK(d.size() == 40);
        CHECK(std::set<size_t>(d.begin(), d.end()).size() == 40);
        for (size_t i : d) CHECK((labels[i] == 1 || labels[i] == 3 || labels[i] == 8));
        CHECK(d == draw_sweep_calibration(labels, 10, 40, {1, 3, 8}, 0, seed));
    }
    CHECK(draw_sweep_calibration(labels, 10, 60, {1, 3, 8}, 0, 1).size() == 60);  // all of them
    // Skew 0.5 over 4 classes, 15 images: weights 1, 1/2, 1/4, 1/8 → exactly 8, 4, 2, 1 in a seeded class order.
    std::set<std::vector<size_t>> orders;
    for (uint64_t seed = 0; seed < 20; ++seed) {
        const std::vector<size_t> d = draw_sweep_calibration(labels, 10, 15, {0, 2, 4, 6}, 0.5, seed);
        REQUIRE(d.size() == 15);
        CHECK(std::set<size_t>(d.begin(), d.end()).size() == 15);
        std::vector<size_t> per(10, 0);
        for (size_t i : d) per[size_t(labels[i])]++;
        for (int c : {1, 3, 5, 7, 8, 9}) CHECK(per[size_t(c)] == 0);
        std::vector<size_t> got = {per[0], per[2], per[4], per[6]};
        std::vector<size_t> sorted = got;
        std::sort(sorted.begin(), sorted.end());
        CHECK(sorted == std::vector<size_t>{1, 2, 4, 8});
        orders.insert(got);
    }
    CHECK(orders.size() > 3);  // the dominant class changes with the seed
    // Skew 1: class-balanced (remainder to the first ranks); all classes when none are given.
    {
        const std::vector<size_t> d = draw_sweep_calibration(labels, 10, 23, {}, 1.0, 3);
        std::vector<size_t> per(10, 0);
        for (size_t i : d) per[size_t(labels[i])]++;
        CHECK(*std::min_element(per.begin(), per.end()) == 2);
        CHECK(*std::max_element(per.begin(), per.end()) == 3);
    }
    // Strong skew over all classes: most images in one class.
    {
        const std::vector<size_t> d = draw_sweep_calibration(labels, 10, 20, {}, 0.05, 3);
        std::vector<size_t> per(10, 0);
        for (size_t i : d) per[size_t(labels[i])]++;
        CHECK(*std::max_element(per.begin(), per.end()) == 19);
    }
    // Errors.
    CHECK(error_of([&] { draw_sweep_calibration(labels, 10, 201, {}, 0, 0); }) ==
          "calibration size 201 is larger than the calibration pool (200 images)");
    CHECK(error_of([&] { draw_sweep_calibration(labels, 10, 41, {1, 2}, 0, 0); }) ==
          "calibration size 41 is larger than the 40 images of the calibration classes in the pool");
    CHECK(error_of([&] { draw_sweep_calibration(labels, 10, 30, {1, 2}, 0.1, 0); }).find("needs") != std::string::npos);
    CHECK(error_of([&] { draw_sweep_calibration(labels, 12, 5, {11}, 0, 0); }) ==
          "calibration class 11 has no images in the calibration pool");
    CHECK(error_of([&] { draw_sweep_calibration(labels, 10, 5, {10}, 0, 0); }).find("not a class of the model") != std::string::npos);
    CHECK(error_of([&] { draw_sweep_calibration({}, 10, 5, {}, 0, 0); }) == "calibration pool is empty");
}

// ---------------------------------------------------------------------------------------------
// Corruptions

TEST_CASE("sweep corruptions: parsing and bad input") {
    CHECK(parse_corruption("noise:3").type == CorruptionType::Noise);
    CHECK(parse_corruption("noise:3").severity == 3);
    CHECK(parse_corruption("Gaussian_Blur:1").type == CorruptionType::Blur);
    CHECK(parse_corruption("brightness:5").name() == "brightness:5");
    CHECK(parse_corruption("contrast:2").name() == "contrast:2");
    CHECK(!parse_corruption("").active());
    CHECK(!parse_corruption("none").active());
    CHECK(error_of([] { parse_corruption("fog:2"); }).find("unknown corruption 'fog'") != std::string::npos);
    CHECK(error_of([] { parse_corruption("noise:0"); }).find("severity must be 1 to 5") != std::string::npos);
    CHECK(error_of([] { parse_corruption("noise:6"); }).find("severity must be 1 to 5") != std::string::npos);
    CHECK(error_of([] { parse_corruption("noise"); }).find("severity must be 1 to 5") != std::string::npos);
    CHECK(error_of([] { corrupt(grey(1, 1, {0}), Corruption{CorruptionType::Blur, 7}); }).find("1 to 5") != std::string::npos);
}

TEST_CASE("sweep corruptions: hand-checked brightness, contrast and blur values") {
    // Brightness: + 13, 26, 38, 51, 77, clamped.
    const Image8 b = grey(3, 1, {0, 100, 250});
    CHECK(corrupt(b, parse_corruption("brightness:1")).pixels == std::vector<uint8_t>{13, 113, 255});
    CHECK(corrupt(b, parse_corruption("brightness:5")).pixels == std::vector<uint8_t>{77, 177, 255});
    // Contrast around the mean (50): c = 0.5 → 25, 75; c = 0.15 → 42.5, 57.5 rounded half up.
    const Image8 c = grey(2, 1, {0, 100});
    CHECK(corrupt(c, parse_corruption("contrast:2")).pixels == std::vector<uint8_t>{25, 75});
    CHECK(corrupt(c, parse_corruption("contrast:5")).pixels == std::vector<uint8_t>{43, 58});
    CHECK(corrupt(grey(2, 1, {0, 255}), parse_corruption("contrast:1")).pixels == std::vector<uint8_t>{32, 223});  // 31.875, 223.125
    // Blur: a constant image is unchanged (borders replicated); an impulse spreads with the kernel.
    const Image8 flat = grey(5, 4, std::vector<uint8_t>(20, 77));
    for (int s = 1; s <= 5; ++s) CHECK(corrupt(flat, Corruption{CorruptionType::Blur, s}).pixels == flat.pixels);
    std::vector<uint8_t> px(49, 0);
    px[24] = 255;
    const Image8 imp = corrupt(grey(7, 7, px), parse_corruption("blur:5"));
    CHECK(imp.pixels[24] == 41);  // 255·1636²/4096² = 40.68
    CHECK(imp.pixels[25] == 25);  // 255·1636·991/4096² = 24.64
    CHECK(imp.pixels[0] == 0);    // 255·18²/4096² = 0.005
    // Multi-channel images keep their shape; channels are blurred independently.
    Image8 rgb;
    rgb.width = 2, rgb.height = 2, rgb.channels = 3;
    rgb.pixels = {10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30};
    CHECK(corrupt(rgb, parse_corruption("blur:3")).pixels == rgb.pixels);
    CHECK(corrupt(rgb, parse_corruption("noise:2"), 1).pixels.size() == 12);
}

TEST_CASE("sweep corruptions: deterministic, uint8, more severe changes more, noise statistics") {
    const Dataset& ds = fmnist_1k();
    for (CorruptionType t : {CorruptionType::Noise, CorruptionType::Blur, CorruptionType::Brightness, CorruptionType::Contrast}) {
        CAPTURE(corruption_type_name(t));
        double prev = 0;
        for (int s = 1; s <= 5; ++s) {
            double change = 0;
            for (size_t i = 0; i < 20; ++i) {
                const Image8& img = ds.images[i];
                const Image8 a = corrupt(img, Corruption{t, s}, 1000 + i), b = corrupt(img, Corruption{t, s}, 1000 + i);
                CHECK(a.pixels == b.pixels);
                CHECK(a.width == img.width);
                CHECK(a.height == img.height);
                CHECK(a.channels == img.channels);
                change += mean_abs_change(img, a);
            }
            CAPTURE(s);
            CHECK(change > prev);
            prev = change;
        }
    }
    // Noise depends on the seed; its distribution is N(0, σ) around a mid-grey image (σ·255 = 20.4 at 3).
    const Image8 mid = grey(200, 200, std::vector<uint8_t>(40000, 128));
    CHECK(corrupt(mid, parse_corruption("noise:3"), 1).pixels != corrupt(mid, parse_corruption("noise:3"), 2).pixels);
    const Image8 n = corrupt(mid, parse_corruption("noise:3"), 1);
    double s = 0, q = 0;
    for (uint8_t p : n.pixels) s += p - 128.0, q += (p - 128.0) * (p - 128.0);
    const double mean = s / 40000, sd = std::sqrt(q / 40000 - mean * mean);
    CHECK(std::abs(mean) < 0.3);
    CHECK(sd == doctest::Approx(20.4).epsilon(0.03));
    // A fixed value pins the bit-exact generator (same natively and in WASM).
    uint64_t h = 1469598103934665603ull;
    for (uint8_t p : corrupt(ds.images[0], parse_corruption("noise:5"), 42).pixels) h = (h ^ p) * 1099511628211ull;
    CHECK(h == 15144299892062225304ull);
}

// ---------------------------------------------------------------------------------------------
// Specs and parsing

TEST_CASE("sweep bad input: clear errors") {
    const ViT& m = hf_model();
    SweepSpec s = small_spec();
    CHECK_NOTHROW(s.validate(10));
    s.seeds = 0;
    CHECK(error_of([&] { s.validate(10); }) == "sweep: the number of seeds must be at least 1, found 0");
    s = small_spec(), s.configs.clear();
    CHECK(error_of([&] { s.validate(10); }).find("no configurations") != std::string::npos);
    s = small_spec(), s.calib_skew = 1.5;
    CHECK(error_of([&] { s.validate(10); }).find("skew") != std::string::npos);
    s = small_spec(), s.calib_classes = {3, 12};
    CHECK(error_of([&] { s.validate(10); }).find("class 12 is not a class of the model") != std::string::npos);
    s = small_spec(), s.groups = {{"x", {}}};
    CHECK(error_of([&] { s.validate(10); }) == "class group 'x' has no classes");
    // Unknown configuration strings.
    CHECK(error_of([] { parse_wa("w4", QuantConfig()); }).find("not of the form W<bits>A<bits>") != std::string::npos);
    CHECK(error_of([] { parse_wa("fp16", QuantConfig()); }).find("'fp16'") != std::string::npos);
    CHECK_THROWS(parse_wa("w9a8", QuantConfig()));
    // Class lists and groups by index or label.
    CHECK(parse_class_list("0, 2,9", m.cfg) == std::vector<int>{0, 2, 9});
    if (m.cfg.labels_known) CHECK(parse_class_list(m.cfg.labels[6], m.cfg) == std::vector<int>{6});
    CHECK(error_of([&] { parse_class_list("0,10", m.cfg); }).find("'10' is not a class of the model (10 classes") != std::string::npos);
    CHECK(error_of([&] { parse_class_list("Spaceship", m.cfg); }).find("'Spaceship' is not a class") != std::string::npos);
    CHECK(error_of([&] { parse_class_list("1,1", m.cfg); }).find("listed twice") != std::string::npos);
    const std::vector<ClassGroup> g = parse_groups("tops=0,2,4,6; shoes=5,7,9", m.cfg);
    REQUIRE(g.size() == 2);
    CHECK(g[1].name == "shoes");
    CHECK(g[1].classes == std::vector<int>{5, 7, 9});
    CHECK(error_of([&] { parse_groups("tops:0,2", m.cfg); }).find("NAME=CLASS") != std::string::npos);
    CHECK(error_of([&] { parse_groups("a=1;a=2", m.cfg); }).find("defined twice") != std::string::npos);
    CHECK(error_of([&] { parse_groups("=1", m.cfg); }).find("has no name") != std::string::npos);
    // Calibration size larger than the pool, before any work.
    s = small_spec(), s.calib_size = 60;
    CHECK(error_of([&] { run_sweep(m, first(fmnist_1k(), 20), first(fmnist_1k(), 50), s, 1); }) ==
          "calibration size 60 is larger than the calibration pool (50 images)");
}

// ---------------------------------------------------------------------------------------------
// Real sweeps of the shipped model

TEST_CASE("sweep of the shipped ViT: jobs invariance, seed reproducibility, progress") {
    const ViT& m = hf_model();
    const Dataset eval = first(fmnist_1k(), 200);
    const Dataset& pool = fmnist_1k();
    const SweepSpec spec = small_spec();
    std::vector<size_t> calls;
    const SweepResult a = run_sweep(m, eval, pool, spec, 1, [&](size_t done, size_t total) {
        CHECK(total == 6);
        calls.push_back(done);
        return true;
    });
    CHECK(calls == std::vector<size_t>{0, 1, 2, 3, 4, 5, 6});
    const SweepResult b = run_sweep(m, eval, pool, spec, 2);
    const std::string ja = sweep_json(a).dump(), jb = sweep_json(b).dump();
    CHECK(ja == jb);
    CHECK(sweep_csv(a) == sweep_csv(b));

    // Shape of the result.
    REQUIRE(a.configs.size() == 2);
    CHECK(a.eval_n == 200);
    CHECK(a.seeds == std::vector<uint64_t>{5, 6, 7});
    REQUIRE(a.configs[1].runs.size() == 3);
    CHECK(a.configs[1].runs[2].seed == 7);
    CHECK(a.configs[0].config.name() == "W8A8");
    CHECK(a.configs[0].stats.groups.size() == 2);
    // FP32 reference = evaluate() on the same images.
    const PreparedData pe = prepare(eval, m.cfg);
    const EvalResult fp = evaluate(m, pe, 2);
    CHECK(a.fp32.top1 == fp.top1);
    CHECK(a.fp32.confusion == fp.confusion);
    // Different seeds draw different calibration sets (and give different accuracies at 4 bits).
    CHECK(a.calib_draws[0] != a.calib_draws[1]);
    CHECK(a.calib_draws[0] == draw_calibration(pool.size(), 8, 5));
    std::set<std::vector<double>> w4;
    for (const SeedRun& r : a.configs[1].runs) w4.insert(r.per_class);
    CHECK(w4.size() > 1);
    // Same seed → identical result, and the same as `bitlens quantize --seed 6` on the whole pool.
    QuantConfig qc = spec.configs[1];
    qc.calib_size = 8, qc.seed = 6;
    const EvalResult q = evaluate_quantized(quantize(m, prepare(pool, m.cfg), qc, 2), pe, 2);
    CHECK(q.top1 == a.configs[1].runs[1].top1);
    CHECK(q.confusion == a.configs[1].runs[1].confusion);
    // The statistics in the result are those of the stored per-seed tables.
    std::vector<std::vector<double>> table;
    std::vector<double> top1;
    for (const SeedRun& r : a.configs[1].runs) table.push_back(r.per_class), top1.push_back(r.top1);
    const SweepStats st = sweep_stats(table, top1, a.fp32.per_class, a.fp32.top1, a.class_count, spec.groups);
    CHECK(st.top1_mean == a.configs[1].stats.top1_mean);
    CHECK(st.worst_case_seed == a.configs[1].stats.worst_case_seed);
    // JSON holds every seed's per-class accuracies and confusion matrix.
    const nlohmann::json j = nlohmann::json::parse(ja);
    CHECK(j["configs"][1]["runs"].size() == 3);
    CHECK(j["configs"][1]["runs"][0]["per_class"].size() == 10);
    CHECK(j["configs"][1]["runs"][0]["confusion"].size() == 10);
    CHECK(j["fp32"]["per_class"].size() == 10);
    CHECK(j["spec"]["seeds"] == 3);
    CHECK(j["configs"][0]["worst_case"]["seed"].get<uint64_t>() >= 5);
    // CSV: header + config × seed × (class + group) rows.
    const std::string csv = sweep_csv(a);
    CHECK(size_t(std::count(csv.begin(), csv.end(), '\n')) == 1 + 2 * 3 * (10 + 2));
    // The printed table: the header says what ran, the FP32 line and every configuration's row carry the
    // numbers of the result (formatted as the table formats them).
    const std::string tab = sweep_table(a);
    CHECK(tab.rfind("sweep: 2 configurations x 3 seeds (5..7), 8 calibration images per seed from a pool of 1000; 200 evaluation images\n", 0) == 0);
    char line[128];
    std::snprintf(line, sizeof line, "FP32: top-1 %.2f%%, worst class %s %.2f%%\n", 100 * a.fp32.top1, a.labels[size_t(a.fp32.worst_class)].c_str(),
                  100 * a.fp32.per_class[size_t(a.fp32.worst_class)]);
    CHECK(tab.find(line) != std::string::npos);
    for (const ConfigResult& cr : a.configs) {
        std::snprintf(line, sizeof line, "%.2f%% +- %.2f", 100 * cr.stats.top1_mean, 100 * cr.stats.top1_std);
        const size_t row = tab.find("\n" + cr.config.name() + " ");
        REQUIRE(row != std::string::npos);
        CHECK(tab.substr(row, tab.find('\n', row + 1) - row).find(line) != std::string::npos);
        CHECK(tab.find(", seed " + std::to_string(a.seeds[cr.stats.worst_case_seed]), row) != std::string::npos);
    }
    for (const std::string& label : a.labels) CHECK(tab.find("\n" + label + " ") != std::string::npos);  // the per-class rows
}

TEST_CASE("sweep with as many calibration images as the pool: every seed draws the same set, so every run is the same") {
    // Issue 17: the seeds only reorder the images; the fitted quantizers, and so every run, must not change.
    const ViT& m = hf_model();
    const Dataset eval = first(fmnist_1k(), 200);
    const Dataset pool = first(fmnist_1k(), 12);
    SweepSpec spec;
    spec.configs = {parse_wa("w3a3", QuantConfig()), parse_wa("w4a4", QuantConfig())};
    spec.configs[1].softmax = QType::Log2;
    spec.seeds = 4;
    spec.calib_size = 12;
    const SweepResult r = run_sweep(m, eval, pool, spec, 2);
    REQUIRE(r.calib_draws.size() == 4);
    std::set<std::vector<size_t>> orders;
    for (const std::vector<size_t>& d : r.calib_draws) {
        orders.insert(d);
        std::vector<size_t> s = d;
        std::sort(s.begin(), s.end());
        CHECK(s == std::vector<size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
    }
    CHECK(orders.size() == 4);  // four different orders of the same twelve images
    for (const ConfigResult& cr : r.configs) {
        CAPTURE(cr.config.name());
        REQUIRE(cr.runs.size() == 4);
        for (const SeedRun& run : cr.runs) {
            CHECK(run.top1 == cr.runs[0].top1);
            CHECK(run.confusion == cr.runs[0].confusion);
        }
        CHECK(cr.stats.top1_std == 0);
        CHECK(cr.stats.top1_min == cr.stats.top1_max);
    }
}

TEST_CASE("sweep of the shipped ViT: cancellation, shifted and class-restricted calibration, corrupted evaluation") {
    const ViT& m = hf_model();
    const Dataset eval = first(fmnist_1k(), 100);
    const Dataset& pool = fmnist_1k();
    SweepSpec spec = small_spec();
    spec.configs.resize(1);
    spec.seeds = 2;
    CHECK_THROWS_AS(run_sweep(m, eval, pool, spec, 2, [](size_t, size_t) { return false; }), Cancelled);
    CHECK_THROWS_AS(run_sweep(m, eval, pool, spec, 1, [](size_t done, size_t) { return done < 1; }), Cancelled);

    spec.calib_classes = {0, 3, 5};
    spec.calib_skew = 0.5;
    spec.calib_corrupt = parse_corruption("noise:3");
    spec.eval_corrupt = parse_corruption("blur:2");
    const SweepResult r = run_sweep(m, eval, pool, spec, 2);
    for (const std::vector<size_t>& h : r.calib_class_counts) {
        size_t total = 0;
        for (size_t c = 0; c < h.size(); ++c) {
            if (c != 0 && c != 3 && c != 5) CHECK(h[c] == 0);
            total += h[c];
        }
        CHECK(total == 8);
        std::vector<size_t> got = {h[0], h[3], h[5]};
        std::sort(got.begin(), got.end());
        CHECK(got == std::vector<size_t>{1, 2, 5});  // 8 · (4, 2, 1)/7 = 4.57, 2.29, 1.14 → 5, 2, 1
    }
    CHECK(r.fp32_clean_top1 == evaluate(m, prepare(eval, m.cfg), 2).top1);  // the FP32 model on the clean images
    CHECK(r.fp32.top1 != r.fp32_clean_top1);  // blurred evaluation images change the FP32 result
    CHECK(sweep_json(r)["spec"]["eval_corrupt"] == "blur:2");
}
