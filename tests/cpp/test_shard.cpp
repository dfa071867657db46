// Sharded sweeps (issue 19): the round-robin split covers every (configuration × seed) run exactly once; parts of a
// real sweep of the shipped ViT, written to JSON and read back, merge in any order into the unsharded sweep's bytes
// (n = 1, 2, 3 and more parts than runs); the merge names what differs between parts of different sweeps and which
// parts are missing or given twice. Every test case name contains "shard" (run them with -tc="*shard*").
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataset.h"
#include "model.h"
#include "ptq.h"
#include "sweep.h"
#include "test_util.h"

using namespace bitlens;
using namespace bitlens::test;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const Dataset& fmnist_1k() {
    static const Dataset ds = load_dataset(src_path("models/data"));
    return ds;
}

// The shipped HF ViT, 100 evaluation images, the 1,000 shipped images as the pool: 2 configurations × 3 seeds.
struct Setup {
    ModelSource src = source(kHfModel);
    SafeTensors st = tensors_of(src);
    LoadedModel lm = load_model(src, st);
    Dataset eval = first(fmnist_1k(), 100);
    SweepSpec spec;
    SweepResult whole;
    Setup() {
        spec.configs = {parse_wa("w8a8", QuantConfig()), parse_wa("w4a4", QuantConfig())};
        spec.seeds = 3;
        spec.first_seed = 5;
        spec.calib_size = 8;
        spec.groups = {{"tops", {0, 2, 4, 6}}, {"shoes", {5, 7, 9}}};
        whole = run_sweep(lm.vit, eval, fmnist_1k(), spec, 2);
    }
    // Part s of n as a scheduler's task would write it (identity filled as the CLI does), read back from its JSON.
    SweepPart part(int s, int n) const {
        SweepPart p = run_sweep_part(lm.vit, eval, fmnist_1k(), spec, {s, n}, 2);
        p.identity = {tensors_fingerprint(st), model_config_fingerprint(src), dataset_fingerprint(eval), dataset_fingerprint(fmnist_1k()),
                      "models/vit-fmnist-hf", "eval", "pool"};
        const std::string text = sweep_part_json(p).dump();
        return sweep_part_from_json(nlohmann::json::parse(text), "part" + std::to_string(s) + ".json");
    }
};
Setup& setup() {
    static Setup s;
    return s;
}

}  // namespace

TEST_CASE("shard split: I/N parsing, and every run in exactly one part, round robin") {
    CHECK(parse_shard("2/3").index == 2);
    CHECK(parse_shard("2/3").count == 3);
    CHECK(parse_shard("1/1").count == 1);
    CHECK(error_of([] { parse_shard("0/3"); }) == "'0/3': part 0 does not exist, the parts of 3 are numbered 1 to 3");
    CHECK(error_of([] { parse_shard("4/3"); }) == "'4/3': part 4 does not exist, the parts of 3 are numbered 1 to 3");
    CHECK(error_of([] { parse_shard("a/b"); }) == "'a/b' is not of the form I/N (part I of N, e.g. 2/3)");
    CHECK(error_of([] { parse_shard("0/0"); }) == "'0/0': the number of parts N must be at least 1");
    for (const char* bad : {"3", "/3", "2/", "-1/3", "1/3/4", " 1/3", "1/ 3", "+1/3", "1.0/3", "9999999999/1", ""})
        CHECK_MESSAGE(has(error_of([&] { parse_shard(bad); }), "is not of the form I/N"), bad);

    CHECK(shard_runs(7, {1, 3}) == std::vector<size_t>{0, 3, 6});
    CHECK(shard_runs(7, {3, 3}) == std::vector<size_t>{2, 5});
    CHECK(shard_runs(2, {3, 3}).empty());  // more parts than runs: a part with none
    for (size_t total : {0, 1, 5, 6, 7, 40})
        for (int n = 1; n <= 12; ++n) {
            std::vector<int> seen(total, 0);
            for (int s = 1; s <= n; ++s) {
                const std::vector<size_t> r = shard_runs(total, {s, n});
                CHECK(std::is_sorted(r.begin(), r.end()));
                // balanced: part sizes differ by at most one
                CHECK(r.size() >= total / size_t(n));
                CHECK(r.size() <= (total + size_t(n) - 1) / size_t(n));
                for (size_t i : r) seen[i]++;
            }
            CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
        }
}

TEST_CASE("shard fingerprints: the same content gives the same hash, any change another") {
    Setup& S = setup();
    CHECK(has(tensors_fingerprint(S.st), "fnv1a64:"));
    CHECK(tensors_fingerprint(S.st).size() == 8 + 16);
    CHECK(tensors_fingerprint(S.st) == tensors_fingerprint(tensors_of(source(kHfModel))));
    SafeTensors other = S.st;
    other.tensors.begin()->second.bytes[0] ^= 1;
    CHECK(tensors_fingerprint(other) != tensors_fingerprint(S.st));
    CHECK(tensors_fingerprint(tensors_of(source(kTimmModel))) != tensors_fingerprint(S.st));
    // config.json: re-spacing does not count, a changed value does.
    ModelSource spaced = S.src;
    spaced.config_json = nlohmann::json::parse(S.src.config_json).dump(4);
    CHECK(model_config_fingerprint(spaced) == model_config_fingerprint(S.src));
    ModelSource changed = S.src;
    nlohmann::json cfg = nlohmann::json::parse(S.src.config_json);
    cfg["hidden_dropout_prob"] = 0.5;
    changed.config_json = cfg.dump();
    CHECK(model_config_fingerprint(changed) != model_config_fingerprint(S.src));
    // Data: one pixel, one label, one image fewer.
    Dataset d = S.eval;
    CHECK(dataset_fingerprint(d) == dataset_fingerprint(first(fmnist_1k(), 100)));
    d.images[7].pixels[100] ^= 1;
    CHECK(dataset_fingerprint(d) != dataset_fingerprint(S.eval));
    d = S.eval, d.labels[3] = (d.labels[3] + 1) % 10;
    CHECK(dataset_fingerprint(d) != dataset_fingerprint(S.eval));
    CHECK(dataset_fingerprint(first(fmnist_1k(), 99)) != dataset_fingerprint(S.eval));
}

TEST_CASE("shard merge of the shipped ViT's sweep: the unsharded bytes for n = 1, 2, 3 and more parts than runs, in any order") {
    Setup& S = setup();
    const std::string whole_json = sweep_json(S.whole).dump();
    for (int n : {1, 2, 3, 8}) {  // 6 runs: with 8 parts, parts 7 and 8 hold none
        CAPTURE(n);
        std::vector<SweepPart> parts;
        std::vector<std::string> names;
        for (int s = n; s >= 1; --s) parts.push_back(S.part(s, n)), names.push_back("part" + std::to_string(s));  // reversed
        size_t runs = 0;
        for (const SweepPart& p : parts) runs += p.runs.size();
        CHECK(runs == 6);
        const SweepResult merged = merge_sweep_parts(parts, names);
        CHECK(sweep_json(merged).dump() == whole_json);
        CHECK(sweep_csv(merged) == sweep_csv(S.whole));
        CHECK(sweep_table(merged) == sweep_table(S.whole));
        // Statistics really recomputed: the per-configuration numbers are those of the whole sweep.
        REQUIRE(merged.configs.size() == 2);
        CHECK(merged.configs[1].stats.top1_std == S.whole.configs[1].stats.top1_std);
        CHECK(merged.configs[1].stats.worst_case_seed == S.whole.configs[1].stats.worst_case_seed);
        CHECK(merged.configs[0].model_bytes == S.whole.configs[0].model_bytes);
        // Another order gives the same.
        std::rotate(parts.begin(), parts.begin() + long(parts.size() / 2), parts.end());
        std::rotate(names.begin(), names.begin() + long(names.size() / 2), names.end());
        CHECK(sweep_json(merge_sweep_parts(parts, names)).dump() == whole_json);
    }
    // A part holds its runs and what it is a part of.
    const nlohmann::json j = sweep_part_json(S.part(2, 3));
    CHECK(j["part"]["index"] == 2);
    CHECK(j["part"]["count"] == 3);
    CHECK(j["part"]["total_runs"] == 6);
    CHECK(j["part"]["runs"] == nlohmann::json::array({1, 4}));
    CHECK(j["runs"][1]["name"] == "W4A4");
    CHECK(j["runs"][1]["seed"] == 6);
    CHECK(j["runs"][1]["per_class"].size() == 10);
    CHECK(j["runs"][1]["confusion"].size() == 10);
    CHECK(has(j["model"]["tensors"].get<std::string>(), "fnv1a64:"));
    CHECK(j["data"]["eval"]["fnv1a64"] != j["data"]["calib"]["fnv1a64"]);
    CHECK(j["spec"]["seeds"] == 3);
    CHECK(!j.contains("configs"));
}

TEST_CASE("shard merge rejections: mixed sweeps name the difference, missing and repeated parts are named") {
    Setup& S = setup();
    const SweepPart p1 = S.part(1, 3), p2 = S.part(2, 3), p3 = S.part(3, 3);
    const std::vector<std::string> names = {"a.json", "b.json", "c.json", "d.json"};
    auto merge_error = [&](const std::vector<SweepPart>& ps) { return error_of([&] { merge_sweep_parts(ps, names); }); };

    CHECK(error_of([] { merge_sweep_parts({}, {}); }) == "merge: no parts");
    CHECK(has(merge_error({p1, p3}), "merge: part 2/3 is missing (2 of 3 parts given; run them with bitlens sweep ... --shard 2/3"));
    CHECK(has(merge_error({p2}), "merge: parts 1/3 and 3/3 are missing"));
    CHECK(merge_error({p1, p2, p2, p3}) == "merge: part 2/3 is given more than once: b.json and c.json");
    CHECK(has(error_of([&] { merge_sweep_parts({S.part(1, 20)}, {"x.json"}); }),
              "merge: parts 2/20, 3/20, 4/20, 5/20, 6/20, 7/20, 8/20, 9/20 and 11 more are missing (1 of 20 parts given"));
    CHECK(has(error_of([&] { merge_sweep_parts({S.part(1, 999999999)}, {"x.json"}); }), "9/999999999 and 999999990 more are missing"));
    CHECK(has(merge_error({p1, S.part(2, 2)}), "a.json is part 1 of 3 but b.json is part 2 of 2: parts of different splits"));

    auto mixed = [&](const std::function<void(SweepPart&)>& edit) {
        SweepPart q = p2;
        edit(q);
        return merge_error({p1, q, p3});
    };
    std::string e = mixed([](SweepPart& q) { q.identity.model_tensors = "fnv1a64:0000000000000000"; });
    CHECK(has(e, "merge: b.json and a.json are parts of different sweeps: another model: its tensors differ"));
    CHECK(has(e, "fnv1a64:0000000000000000"));
    CHECK(has(mixed([](SweepPart& q) { q.identity.model_config = "x"; }), "another model configuration: config.json or preprocessor_config.json differ"));
    CHECK(has(mixed([](SweepPart& q) { q.identity.eval_data = "x"; }), "another evaluation set (x, eval in b.json; fnv1a64:"));
    CHECK(has(mixed([](SweepPart& q) { q.identity.calib_data = "x"; }), "another calibration pool"));
    CHECK(has(mixed([](SweepPart& q) { q.shared.spec.configs[1].wbits = 3; }), "another list of configurations (W8A8,W3A4 in b.json; W8A8,W4A4 in a.json)"));
    CHECK(has(mixed([](SweepPart& q) { q.shared.spec.configs[1].softmax = QType::Log2; }),
              "another configuration W4A4: 'softmax' differs (\"log2\" in b.json; \"sulq\" in a.json)"));
    CHECK(has(mixed([](SweepPart& q) { q.shared.spec.calib_size = 16; }), "another sweep spec: 'calib_size' differs (16 in b.json; 8 in a.json)"));
    CHECK(has(mixed([](SweepPart& q) { q.shared.spec.groups.pop_back(); }), "another sweep spec: 'groups' differs"));
    CHECK(has(mixed([](SweepPart& q) { q.shared.fp32.top1 += 1e-9; }),
              "b.json and a.json have the same model, data and spec but different 'fp32'"));
    // Paths do not count: the same files mounted elsewhere.
    CHECK(mixed([](SweepPart& q) { q.identity.model_path = "/elsewhere/model"; }).empty());
}

TEST_CASE("shard part files: a whole sweep, edited or inconsistent parts are refused naming the file") {
    Setup& S = setup();
    const nlohmann::json good = sweep_part_json(S.part(2, 3));
    auto read_error = [](const nlohmann::json& j) { return error_of([&] { sweep_part_from_json(j, "p.json"); }); };
    CHECK(read_error(good).empty());
    CHECK(has(read_error(sweep_json(S.whole)), "p.json is a whole sweep, not a part of one"));
    CHECK(has(read_error(nlohmann::json::object()), "p.json is not a part of a sweep"));
    nlohmann::json j = good;
    j["bitlens_sweep_part"] = 2;
    CHECK(has(read_error(j), "p.json: part format 2, this bitlens reads format 1"));
    j = good, j["part"]["index"] = 4;
    CHECK(has(read_error(j), "p.json: part 4 of 3 does not exist"));
    j = good, j["part"]["index"] = 1;  // its runs are those of part 2
    CHECK(has(read_error(j), "p.json: part 1/3 of 6 runs must hold runs [0,3], it holds [1,4]"));
    j = good, j["runs"][0]["per_class"].erase(0);
    CHECK(has(read_error(j), "p.json: run 1 has 9 per-class accuracies, the model has 10 classes"));
    j = good, j["runs"][0]["seed"] = 99;
    CHECK(has(read_error(j), "p.json: run 1 has seed 99, expected 6"));
    j = good, j["runs"][0]["name"] = "W2A2";
    CHECK(has(read_error(j), "p.json: field 'runs' does not read back as written"));
    j = good, j.erase("fp32");
    CHECK(has(read_error(j), "p.json: not a sweep part as bitlens sweep --shard writes it"));
    j = good, j["spec"]["configs"][0]["wbits"] = 9;
    CHECK(has(read_error(j), "p.json: "));
}
