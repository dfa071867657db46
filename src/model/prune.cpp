#include "prune.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace bitlens {

namespace {

void check_keep(const std::vector<int>& keep, int n, size_t block, const char* what) {
    const std::string b = "prune: block " + std::to_string(block) + ": ";
    if (keep.empty()) throw std::runtime_error(b + "no " + what + " would stay (at least one must)");
    for (size_t i = 0; i < keep.size(); ++i) {
        if (keep[i] < 0 || keep[i] >= n)
            throw std::runtime_error(b + what + " " + std::to_string(keep[i]) + " is out of range (it has " + std::to_string(n) + ")");
        if (i && keep[i] <= keep[i - 1]) throw std::runtime_error(b + "the " + what + " to keep must be ascending and distinct");
    }
}

// Rows `rows` of l (and their biases); then, with cols, its input columns `cols`.
void keep_rows(Linear& l, const std::vector<int>& rows) {
    std::vector<float> w, bias;
    for (int r : rows) {
        w.insert(w.end(), l.weight.begin() + long(r) * l.in, l.weight.begin() + long(r + 1) * l.in);
        if (!l.bias.empty()) bias.push_back(l.bias[size_t(r)]);
    }
    l.weight = std::move(w), l.bias = std::move(bias), l.out = int(rows.size());
}
void keep_cols(Linear& l, const std::vector<int>& cols) {
    std::vector<float> w;
    for (int r = 0; r < l.out; ++r)
        for (int c : cols) w.push_back(l.weight[size_t(r) * size_t(l.in) + size_t(c)]);
    l.weight = std::move(w), l.in = int(cols.size());
}

}  // namespace

ViT prune_structure(const ViT& m, const std::vector<std::vector<int>>& keep_heads, const std::vector<std::vector<int>>& keep_units) {
    const size_t L = m.blocks.size();
    if ((!keep_heads.empty() && keep_heads.size() != L) || (!keep_units.empty() && keep_units.size() != L))
        throw std::runtime_error("prune: expected one list per block (" + std::to_string(L) + ")");
    ViT out = m;
    ViTConfig& c = out.cfg;
    const int d = c.head_dim();
    if (c.pruned_heads.empty()) c.pruned_heads.assign(L, {});
    if (c.mlp_dims.empty()) c.mlp_dims.assign(L, c.mlp_dim);
    for (size_t b = 0; b < L; ++b) {
        Block& blk = out.blocks[b];
        if (!keep_heads.empty()) {
            const int H = m.cfg.block_heads(b), A = H * d;
            check_keep(keep_heads[b], H, b, "heads");
            // The original indices of the current heads: those not pruned before, in order.
            std::vector<int> orig;
            for (int h = 0; h < c.heads; ++h)
                if (!std::binary_search(c.pruned_heads[b].begin(), c.pruned_heads[b].end(), h)) orig.push_back(h);
            std::vector<int> rows, cols;  // qkv rows (q, k, v parts) and proj input columns of the kept heads
            for (int part = 0; part < 3; ++part)
                for (int h : keep_heads[b])
                    for (int j = 0; j < d; ++j) rows.push_back(part * A + h * d + j);
            for (int h : keep_heads[b])
                for (int j = 0; j < d; ++j) cols.push_back(h * d + j);
            keep_rows(blk.qkv, rows), keep_cols(blk.proj, cols);
            std::vector<int> removed = c.pruned_heads[b];
            for (int h = 0; h < H; ++h)
                if (!std::binary_search(keep_heads[b].begin(), keep_heads[b].end(), h)) removed.push_back(orig[size_t(h)]);
            std::sort(removed.begin(), removed.end());
            c.pruned_heads[b] = removed;
        }
        if (!keep_units.empty()) {
            check_keep(keep_units[b], blk.fc1.out, b, "MLP units");
            keep_rows(blk.fc1, keep_units[b]), keep_cols(blk.fc2, keep_units[b]);
            c.mlp_dims[b] = int(keep_units[b].size());
        }
        for (Linear* l : {&blk.qkv, &blk.proj, &blk.fc1, &blk.fc2}) l->int8.reset(), l->pack();
    }
    bool any_heads = false;
    for (const auto& v : c.pruned_heads) any_heads = any_heads || !v.empty();
    if (!any_heads) c.pruned_heads.clear();
    if (std::all_of(c.mlp_dims.begin(), c.mlp_dims.end(), [&](int f) { return f == c.mlp_dim; })) c.mlp_dims.clear();
    return out;
}

}  // namespace bitlens
