// Structured pruning's surgery (issue 15): whole attention heads and MLP hidden units removed from a ViT, so
// that its matrices — and GEMMs — really shrink. The result records what it removed in its config
// (ViTConfig::pruned_heads in the unpruned model's head indices, mlp_dims), so a checkpoint written from it
// (write_pruning, f32 tensors at the new shapes) loads back as the same model.
#pragma once
#include <vector>

#include "model.h"

namespace bitlens {

// keep_heads[b]: the heads of block b to keep, as indices into its current heads (ascending, at least one);
// keep_units[b]: its MLP hidden units to keep (ascending, at least one). Empty outer vectors keep everything
// of that kind. Throws naming the block and the problem otherwise.
ViT prune_structure(const ViT& m, const std::vector<std::vector<int>>& keep_heads, const std::vector<std::vector<int>>& keep_units);

}  // namespace bitlens
