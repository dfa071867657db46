// Evaluation: top-1, per-class accuracy, confusion matrix and the worst class.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "dataset.h"
#include "model.h"

namespace bitlens {

// A dataset's images preprocessed for one model, with labels mapped to the model's classes.
struct PreparedData {
    size_t n = 0, input_size = 0;
    std::vector<float> inputs;   // n × input_size, CHW per image
    std::vector<int> labels;     // model class index per image
};

// Dataset class → model class. Names must match the model's labels (case-insensitive), or else by their
// letters and digits alone when exactly one label does ("T-shirt_top" is "T-shirt/top": a folder name cannot
// hold "/"), when the model has real label names; a numeric name "k" means class k; otherwise (generic
// labels) classes map in sorted order. A class with no match is an error naming it and the model's labels.
// The page, the package (bl.classIndices) and the CLI all match by this rule.
std::vector<int> map_classes(const std::vector<std::string>& dataset_classes, const ViTConfig& cfg);
PreparedData prepare(const Dataset& ds, const ViTConfig& cfg, size_t limit = 0);
// The images idx of d (with their labels), in that order.
PreparedData subset(const PreparedData& d, const std::vector<size_t>& idx);

struct EvalResult {
    size_t n = 0;
    double top1 = 0;
    std::vector<std::string> labels;            // model's labels
    std::vector<size_t> class_count;            // images per class
    std::vector<double> per_class;              // accuracy per class (NaN for classes with no images)
    std::vector<std::vector<uint32_t>> confusion;  // [true][predicted]
    int worst_class = -1;                       // lowest accuracy among classes with images
    std::vector<int> predictions;
};

// Threads natively (jobs <= 0: all cores); results do not depend on the number of jobs.
EvalResult evaluate(const ViT& model, const PreparedData& data, int jobs = 0, ActivationHook* hook = nullptr);
// (the hook is shared by all threads: it must only read its own state, as fake-quantizers do)
EvalResult score(const std::vector<int>& predictions, const std::vector<int>& labels, const std::vector<std::string>& names);
nlohmann::json eval_json(const EvalResult& r);
std::string eval_table(const EvalResult& r);

}  // namespace bitlens
