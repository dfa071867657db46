// Structured pruning's surgery (src/model/prune.h) on both shipped models: keeping everything is the identity,
// a pruned model computes what the unpruned one computes with those heads' context and those units' GELU
// outputs masked to zero, and bad keep lists are clear errors.
#include <doctest/doctest.h>

#include <cmath>

#include "prune.h"
#include "test_util.h"

using namespace bitlens;
using namespace bitlens::test;

namespace {

// Zeroes, per block, the context columns of the removed heads (proj's input) and the removed MLP units (fc2's input).
struct MaskHook : ActivationHook {
    const ViT& m;
    std::vector<std::vector<int>> heads, units;  // kept, per block
    MaskHook(const ViT& vit, std::vector<std::vector<int>> h, std::vector<std::vector<int>> u) : m(vit), heads(std::move(h)), units(std::move(u)) {}
    void on_activation(int point, float* x, size_t rows, size_t cols, size_t ld) override {
        const ActPoint& p = m.points[size_t(point)];
        if (p.block < 0) return;
        const std::vector<int>* keep = nullptr;
        size_t group = 1;
        if (point == m.point_index(p.block, ViT::kProjIn)) keep = &heads[size_t(p.block)], group = size_t(m.cfg.head_dim());
        if (point == m.point_index(p.block, ViT::kFc2In)) keep = &units[size_t(p.block)];
        if (!keep) return;
        for (size_t c = 0; c < cols; ++c)
            if (!std::binary_search(keep->begin(), keep->end(), int(c / group)))
                for (size_t r = 0; r < rows; ++r) x[r * ld + c] = 0.0f;
    }
};

}  // namespace

TEST_CASE("prune: keeping everything is the identity; removed heads and units = the same ones masked to zero") {
    for (const LoadedModel* lm : {&shipped().hf, &shipped().tm}) {
        const ViT& m = lm->vit;
        const size_t L = m.blocks.size();
        std::vector<std::vector<int>> all_h(L), all_u(L), some_h(L), some_u(L);
        for (size_t b = 0; b < L; ++b) {
            for (int h = 0; h < m.cfg.heads; ++h) all_h[b].push_back(h);
            for (int u = 0; u < m.cfg.mlp_dim; ++u) all_u[b].push_back(u);
            some_h[b] = b % 2 ? std::vector<int>{1, 3} : std::vector<int>{0};       // 2 or 1 of 4 heads
            for (int u = int(b) % 3; u < m.cfg.mlp_dim; u += 2) some_u[b].push_back(u);  // about half the units
        }
        const ViT same = prune_structure(m, all_h, all_u);
        CHECK_FALSE(same.cfg.pruned());
        const ViT p = prune_structure(m, some_h, some_u);
        CHECK(p.cfg.pruned());
        CHECK(p.cfg.block_heads(0) == 1);
        CHECK(p.cfg.pruned_heads[1] == std::vector<int>{0, 2});
        CHECK(p.cfg.block_mlp(0) == int(some_u[0].size()));
        CHECK(p.blocks[1].qkv.out == 3 * 2 * m.cfg.head_dim());
        CHECK(p.parameter_count() < m.parameter_count() * 6 / 10);
        MaskHook mask(m, some_h, some_u);
        const std::vector<std::vector<float>> inputs = fmnist_test_inputs(m.cfg, 16);
        size_t agree = 0;
        for (const std::vector<float>& x : inputs) {
            const std::vector<float> ref = m.forward(x), id = same.forward(x);
            CHECK(id == ref);  // bit for bit
            const std::vector<float> masked = m.forward(x, &mask), pruned = p.forward(x);
            float worst = 0, scale = 0;
            for (size_t i = 0; i < ref.size(); ++i)
                worst = std::max(worst, std::fabs(pruned[i] - masked[i])), scale = std::max(scale, std::fabs(masked[i]));
            CHECK(worst <= 1e-5f * std::max(1.0f, scale));  // shorter sums in proj / fc2: rounding only
            agree += std::max_element(pruned.begin(), pruned.end()) - pruned.begin() ==
                     std::max_element(masked.begin(), masked.end()) - masked.begin();
        }
        CHECK(agree == inputs.size());
        // Pruning again composes: block 1 keeps the original heads 1 and 3; keeping its first of them removes 3 too.
        std::vector<std::vector<int>> again(L, std::vector<int>{0});
        CHECK(prune_structure(p, again, {}).cfg.pruned_heads[1] == std::vector<int>{0, 2, 3});
    }
}

TEST_CASE("prune: bad keep lists are clear errors naming the block") {
    const ViT& m = shipped().hf.vit;
    const size_t L = m.blocks.size();
    std::vector<std::vector<int>> h(L, std::vector<int>{0, 1});
    h[2] = {};
    CHECK_THROWS_WITH(prune_structure(m, h, {}), doctest::Contains("prune: block 2: no heads would stay (at least one must)"));
    h[2] = {1, 7};
    CHECK_THROWS_WITH(prune_structure(m, h, {}), doctest::Contains("prune: block 2: heads 7 is out of range (it has 4)"));
    h[2] = {1, 0};
    CHECK_THROWS_WITH(prune_structure(m, h, {}), doctest::Contains("ascending and distinct"));
    CHECK_THROWS_WITH(prune_structure(m, {{0}}, {}), doctest::Contains("expected one list per block (4)"));
}
