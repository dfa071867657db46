#include "eval.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "parallel.h"

namespace bitlens {

namespace {
std::string lower(std::string s) {
    for (char& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}
bool is_number(const std::string& s) {
    return !s.empty() && s.size() < 9 && std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}
// Letters and digits only, lower case: "T-shirt/top", "t-shirt_top" and "T shirt top" all fold to "tshirttop"
// (a folder name cannot hold "/", so a label with one is matched by its folded form).
std::string fold(const std::string& s) {
    std::string r;
    for (char ch : s)
        if (std::isalnum(static_cast<unsigned char>(ch))) r += char(std::tolower(static_cast<unsigned char>(ch)));
    return r;
}
std::string list(const std::vector<std::string>& v) {
    std::string r;
    for (size_t i = 0; i < v.size(); ++i) r += (i ? ", " : "") + v[i];
    return r;
}
}  // namespace

std::vector<int> map_classes(const std::vector<std::string>& classes, const ViTConfig& cfg) {
    std::vector<int> out;
    for (size_t i = 0; i < classes.size(); ++i) {
        const std::string& name = classes[i];
        int found = -1;
        for (int j = 0; j < cfg.num_classes && found < 0; ++j)
            if (lower(cfg.labels[size_t(j)]) == lower(name)) found = j;
        if (found < 0 && !fold(name).empty()) {  // then by letters and digits alone, when exactly one label matches
            int matches = 0;
            for (int j = 0; j < cfg.num_classes; ++j)
                if (fold(cfg.labels[size_t(j)]) == fold(name)) found = j, ++matches;
            if (matches > 1) found = -1;
        }
        if (found < 0 && is_number(name)) found = std::stoi(name);
        if (found < 0 && !cfg.labels_known) found = int(i);  // generic labels: sorted order
        if (found < 0 || found >= cfg.num_classes)
            throw std::runtime_error("dataset class '" + name + "' is not a class of the model (" + std::to_string(cfg.num_classes) +
                                     " classes: " + list(cfg.labels) + ")");
        out.push_back(found);
    }
    return out;
}

PreparedData prepare(const Dataset& ds, const ViTConfig& cfg, size_t limit) {
    if (ds.size() == 0) throw std::runtime_error("dataset has no images");
    const std::vector<int> map = map_classes(ds.class_names, cfg);
    PreparedData p;
    p.n = limit ? std::min(limit, ds.size()) : ds.size();
    p.input_size = size_t(cfg.channels) * size_t(cfg.image_h) * size_t(cfg.image_w);
    p.inputs.resize(p.n * p.input_size);
    p.labels.resize(p.n);
    parallel_for(p.n, 0, [&](size_t b, size_t e, int) {
        for (size_t i = b; i < e; ++i) {
            std::vector<float> x = preprocess(ds.images[i], cfg.pp);
            std::copy(x.begin(), x.end(), p.inputs.begin() + long(i * p.input_size));
            p.labels[i] = map[size_t(ds.labels[i])];
        }
    });
    return p;
}

PreparedData subset(const PreparedData& d, const std::vector<size_t>& idx) {
    PreparedData s;
    s.n = idx.size(), s.input_size = d.input_size;
    s.inputs.resize(s.n * s.input_size), s.labels.resize(s.n);
    for (size_t i = 0; i < idx.size(); ++i) {
        std::copy_n(&d.inputs[idx[i] * d.input_size], d.input_size, &s.inputs[i * s.input_size]);
        s.labels[i] = d.labels[idx[i]];
    }
    return s;
}

EvalResult score(const std::vector<int>& pred, const std::vector<int>& labels, const std::vector<std::string>& names) {
    EvalResult r;
    const size_t C = names.size();
    r.n = pred.size();
    r.labels = names;
    r.predictions = pred;
    r.class_count.assign(C, 0);
    r.confusion.assign(C, std::vector<uint32_t>(C, 0));
    size_t correct = 0;
    for (size_t i = 0; i < pred.size(); ++i) {
        r.class_count[size_t(labels[i])]++;
        r.confusion[size_t(labels[i])][size_t(pred[i])]++;
        correct += pred[i] == labels[i];
    }
    r.top1 = r.n ? double(correct) / double(r.n) : 0.0;
    r.per_class.assign(C, std::numeric_limits<double>::quiet_NaN());
    double worst = 2.0;
    for (size_t c = 0; c < C; ++c) {
        if (!r.class_count[c]) continue;
        r.per_class[c] = double(r.confusion[c][c]) / double(r.class_count[c]);
        if (r.per_class[c] < worst) worst = r.per_class[c], r.worst_class = int(c);
    }
    return r;
}

EvalResult evaluate(const ViT& model, const PreparedData& data, int jobs, ActivationHook* hook) {
    std::vector<int> pred(data.n);
    const size_t C = size_t(model.cfg.num_classes);
    parallel_for(data.n, jobs, [&](size_t b, size_t e, int) {
        Workspace ws;
        std::vector<float> logits(C);
        for (size_t i = b; i < e; ++i) {
            model.forward(&data.inputs[i * data.input_size], logits.data(), ws, hook);
            pred[i] = int(std::max_element(logits.begin(), logits.end()) - logits.begin());
        }
    });
    return score(pred, data.labels, model.cfg.labels);
}

nlohmann::json eval_json(const EvalResult& r) {
    nlohmann::json j;
    j["top1"] = r.top1;
    j["n"] = r.n;
    j["labels"] = r.labels;
    nlohmann::json pc = nlohmann::json::array();
    for (double a : r.per_class) pc.push_back(std::isnan(a) ? nlohmann::json(nullptr) : nlohmann::json(a));
    j["per_class"] = pc;
    j["class_count"] = r.class_count;
    j["worst_class"] = r.worst_class < 0 ? nlohmann::json(nullptr)
                                          : nlohmann::json{{"label", r.labels[size_t(r.worst_class)]},
                                                           {"index", r.worst_class},
                                                           {"accuracy", r.per_class[size_t(r.worst_class)]}};
    j["confusion"] = r.confusion;
    return j;
}

std::string eval_table(const EvalResult& r) {
    char buf[256];
    std::string s;
    std::snprintf(buf, sizeof buf, "top-1: %.2f%% (%zu images)\n\n%-24s %8s %9s\n", 100 * r.top1, r.n, "class", "images", "accuracy");
    s += buf;
    for (size_t c = 0; c < r.labels.size(); ++c) {
        if (!r.class_count[c]) continue;
        std::snprintf(buf, sizeof buf, "%-24s %8zu %8.2f%%%s\n", r.labels[c].c_str(), r.class_count[c], 100 * r.per_class[c],
                      int(c) == r.worst_class ? "  <- worst" : "");
        s += buf;
    }
    if (r.worst_class >= 0) {
        std::snprintf(buf, sizeof buf, "\nworst class: %s (%.2f%%)\n", r.labels[size_t(r.worst_class)].c_str(),
                      100 * r.per_class[size_t(r.worst_class)]);
        s += buf;
    }
    return s;
}

}  // namespace bitlens
