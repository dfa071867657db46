// The training options qat and inq share.
#include "cli.h"
#include "parallel.h"

namespace bitlens::cli {

train::QatOptions train_options(const Args& a, uint64_t seed, const std::string& epochs, int default_epochs) {
    train::QatOptions o;
    o.epochs = int(a.num(epochs, default_epochs, 1, 1000));
    o.batch = size_t(a.num("batch", 64, 1, 1 << 16));
    o.lr = float(a.real("lr", o.lr, 0, 10));
    o.val_split = a.real("val-split", o.val_split, 0, 1);
    o.distill = !a.flags.count("no-distill");
    o.label_smoothing = float(a.real("label-smoothing", 0, 0, 0.99));
    o.distill_weight = float(a.real("distill-weight", o.distill_weight, 0, 1));
    o.temperature = float(a.real("temperature", o.temperature, 0.01, 100));
    o.seed = seed;
    o.jobs = int(a.num("jobs", 0, 1, 256));
    if (o.jobs == 0) o.jobs = default_jobs();
    o.limit = size_t(a.num("train-limit", 0, 1, 1L << 30));
    o.validate();
    return o;
}

}  // namespace bitlens::cli
