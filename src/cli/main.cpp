// bitlens — the native command line. One file per command (cmd_*.cpp); this one dispatches.
#include <cstdio>
#include <string>

#include "cli.h"

using namespace bitlens::cli;

namespace {

const Command kCommands[] = {
    {"info", "--model PATH [--heads N] [--json]", {"model", "heads"}, {"json"}, cmd_info},
    {"eval", "--model PATH --data PATH [--labels PATH] [--limit N] [--jobs N] [--heads N] [--json]",
     {"model", "data", "labels", "limit", "jobs", "heads"}, {"json"}, cmd_eval},
    {"quantize",
     "--model PATH --calib PATH [--wbits 8] [--abits 8] [--softmax sulq|log2|uniform] [--softmax-bits N]\n"
     "      [--weights uniform|pow2] [--granularity channel|tensor] [--weight-range mse|minmax|percentile]\n"
     "      [--act-range mse|minmax|percentile] [--sulq-round-exponent] [--no-edges-8bit] [--reparam] [--integer]\n"
     "      [--calib-size 32] [--seed 0] [--method ptq|sos] [--recon-iters 100] [--recon-batch 16]\n"
     "      [--eval PATH] [--limit N] [--out DIR] [--jobs N] [--json]",
     {"model", "calib", "eval", "method", "recon-iters", "recon-batch", "wbits", "abits", "softmax", "softmax-bits", "weights", "granularity", "weight-range",
      "act-range", "calib-size", "seed", "out", "limit", "jobs", "heads"},
     {"json", "sulq-round-exponent", "no-edges-8bit", "reparam", "integer"}, cmd_quantize},
    {"mixed",
     "--model PATH --calib PATH --eval PATH (--budget BITS | --max-bytes N) [--abudget BITS] [--objective mean|worst] [--seeds 5]\n"
     "      [--sens-size 64] [--candidates 2,3,4,5,6,7,8] [PTQ options as for quantize]\n"
     "      [--method ptq|sos] [--recon-iters 100] [--recon-batch 16] [--limit N] [--jobs N] [--json]",
     {"model", "calib", "eval", "method", "recon-iters", "recon-batch", "budget", "max-bytes", "abudget", "objective", "seeds", "sens-size", "candidates", "softmax", "softmax-bits",
      "weights", "granularity", "weight-range", "act-range", "calib-size", "seed", "limit", "jobs", "heads"},
     {"json", "sulq-round-exponent", "no-edges-8bit", "reparam"}, cmd_mixed},
    {"sweep",
     "--model PATH --data PATH --calib PATH [--configs w8a8,w6a6,w4a4,w3a3] [PTQ options of quantize, for every config]\n"
     "      [--method ptq|sos] [--recon-iters 100] [--recon-batch 16]\n"
     "      [--seeds 20] [--seed FIRST] [--calib-size 32] [--calib-classes 0,1,2] [--calib-skew 0.5]\n"
     "      [--calib-corrupt noise|blur|brightness|contrast:1-5] [--eval-corrupt TYPE:SEVERITY]\n"
     "      [--groups \"tops=0,2,4,6;shoes=5,7,9\"] [--limit N] [--jobs N] [--json out.json|-] [--csv out.csv]\n"
     "      [--shard I/N --json PART.json]  (part I of N of the (configuration x seed) runs, for bitlens merge)",
     {"model", "data", "labels", "calib", "configs", "method", "recon-iters", "recon-batch", "wbits", "abits", "softmax", "softmax-bits", "weights", "granularity",
      "weight-range", "act-range", "calib-size", "seed", "seeds", "calib-classes", "calib-skew", "calib-corrupt", "eval-corrupt",
      "groups", "limit", "jobs", "json", "csv", "heads", "shard"},
     {"sulq-round-exponent", "no-edges-8bit", "reparam"}, cmd_sweep},
    {"merge",
     "PART.json... [--json out.json|-] [--csv out.csv]  (the parts of one sweep, from sweep --shard I/N --json PART.json,\n"
     "      in any order: the unsharded sweep's numbers, statistics recomputed from every run)",
     {"json", "csv"}, {}, cmd_merge, true},
    {"grad", "--model PATH --data PATH [--labels PATH] --limit N --out FILE.safetensors [--jobs N] [--json]",
     {"model", "data", "labels", "limit", "out", "jobs", "heads"}, {"json"}, cmd_grad},
    {"qat",
     "--model PATH --train PATH [--train-labels PATH] --eval PATH --wbits B --abits B [--epochs 3] [--batch 64] [--lr 1e-4]\n"
     "      [--no-distill] [--distill-weight 0.5] [--temperature 1] [--label-smoothing 0] [--val-split 0.1] [--train-limit N]\n"
     "      [--seed S] [PTQ options as for quantize]\n"
     "      [--budget BITS [--abudget BITS] [--objective mean|worst] [--candidates 2,3,4,5,6,7,8] [--realloc-every K]\n"
     "       [--fisher-batches 8] [--sensitivity-decay 0.5]]  (QBitOpt: bits allocated at the start and every K steps\n"
     "       before the last epoch, K a quarter epoch by default, from sensitivities averaged over the allocations so far)\n"
     "      [--limit N] [--out DIR] [--jobs N] [--json]",
     {"model", "train", "train-labels", "eval", "wbits", "abits", "softmax", "softmax-bits", "weights", "granularity",
      "weight-range", "act-range", "calib-size", "seed", "epochs", "batch", "lr", "label-smoothing", "distill-weight", "temperature",
      "val-split", "train-limit", "budget", "abudget", "objective", "candidates", "realloc-every", "fisher-batches",
      "sensitivity-decay", "limit", "out", "jobs", "heads"},
     {"json", "sulq-round-exponent", "no-edges-8bit", "reparam", "no-distill"}, cmd_qat},
    {"inq",
     "--model PATH --train PATH [--train-labels PATH] --eval PATH --wbits B [--abits 8] [--partitions 50,75,87.5,100]\n"
     "      [--epochs-per-step 1] [--batch 64] [--lr 1e-4] [--no-distill] [--distill-weight 0.5] [--temperature 1]\n"
     "      [--val-split 0.1] [--train-limit N] [--seed S] [--granularity channel|tensor] [PTQ options for activations]\n"
     "      [--integer] [--limit N] [--out DIR] [--jobs N] [--json]",
     {"model", "train", "train-labels", "eval", "wbits", "abits", "softmax", "softmax-bits", "weights", "granularity",
      "act-range", "calib-size", "seed", "partitions", "epochs-per-step", "batch", "lr", "label-smoothing", "distill-weight",
      "temperature", "val-split", "train-limit", "limit", "out", "jobs", "heads"},
     {"json", "sulq-round-exponent", "no-edges-8bit", "no-distill", "integer"}, cmd_inq},
    {"prune",
     "--model PATH --train PATH [--train-labels PATH] --eval PATH --keep-heads F --keep-mlp F [--distill] [--epochs 2]\n"
     "      [--importance taylor|mask] [--importance-images 2048] [--feature-weight 0.1] [--feature-blocks N (-1: first half)]\n"
     "      [--batch 64] [--lr 5e-4] [--distill-weight 0.5] [--temperature 1] [--val-split 0.1] [--train-limit N] [--seed S]\n"
     "      [--limit N] [--out DIR] [--jobs N] [--json]  (F: the fraction of each layer's heads / MLP units kept; epochs 0: no recovery)",
     {"model", "train", "train-labels", "eval", "keep-heads", "keep-mlp", "epochs", "importance", "importance-images",
      "feature-weight", "feature-blocks", "batch", "lr", "label-smoothing", "distill-weight", "temperature", "val-split",
      "train-limit", "seed", "limit", "out", "jobs", "heads"},
     {"json", "distill"}, cmd_prune},
};

std::string usage() {
    std::string s = "usage:\n";
    for (const Command& c : kCommands) s += std::string("  bitlens ") + c.name + " " + c.usage + "\n";
    s += "\n--model: a directory with model.safetensors + config.json (+ preprocessor_config.json), or a .safetensors\n"
         "file (config files beside it are used). --data/--calib/--eval: an image folder (one subfolder per\n"
         "class), a folder with IDX files, or an IDX images file (labels beside it or --labels).\n";
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::fputs(usage().c_str(), argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const std::string cmd = argv[1];
    try {
        for (const Command& c : kCommands)
            if (cmd == c.name) return c.run(parse(argc, argv, c.valued, c.flags, c.files));
        throw UsageError("unknown command '" + cmd + "'");
    } catch (const UsageError& e) {
        std::fprintf(stderr, "bitlens: %s\n\n%s", e.what(), usage().c_str());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bitlens: error: %s\n", e.what());
        return 1;
    }
}
