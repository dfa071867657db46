// bitlens merge: the parts of a sharded sweep (sweep --shard I/N --json PART.json), given in any order, into the
// unsharded sweep's result: the same JSON bytes, CSV and table (see sweep.h, "Sharding").
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli.h"
#include "json_limits.h"
#include "sweep.h"

namespace bitlens::cli {

namespace {

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error(path + ": cannot read the file (no such file, or not readable)");
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot write " + path);
    f << text;
    if (!f.flush()) throw std::runtime_error("cannot write " + path);
}

}  // namespace

int cmd_merge(const Args& a) {
    if (a.files.empty())
        throw UsageError("bitlens merge: no parts given (bitlens merge PART.json... --json OUT.json; parts come from "
                         "bitlens sweep ... --shard I/N --json PART.json)");
    const std::string json_path = a.get("json"), csv_path = a.get("csv");
    std::vector<SweepPart> parts;
    for (const std::string& path : a.files) {
        nlohmann::json j;
        try {
            j = parse_json_bounded(read_text(path), path);
        } catch (const nlohmann::json::parse_error& e) {
            throw std::runtime_error(path + ": not JSON (" + e.what() + ")");
        }
        parts.push_back(sweep_part_from_json(j, path));
    }
    const SweepResult r = merge_sweep_parts(parts, a.files);
    std::fprintf(stderr, "merge: %zu part%s, %zu runs (%zu configuration%s x %d seed%s)\n", parts.size(), parts.size() == 1 ? "" : "s",
                 r.configs.size() * size_t(r.spec.seeds), r.configs.size(), r.configs.size() == 1 ? "" : "s", r.spec.seeds,
                 r.spec.seeds == 1 ? "" : "s");
    // As `bitlens sweep` writes them.
    if (!json_path.empty() && json_path != "-") write_text(json_path, sweep_json(r).dump() + "\n");
    if (!csv_path.empty()) write_text(csv_path, sweep_csv(r));
    if (json_path == "-") std::cout << sweep_json(r).dump() << "\n";
    else std::cout << sweep_table(r);
    return 0;
}

}  // namespace bitlens::cli
