// Deterministic parallel-for: item i always runs the same code whatever the number of jobs, so
// results never depend on it. Natively std::thread; in WASM (no threads) a plain loop.
#pragma once
#include <cstddef>
#include <functional>

namespace bitlens {
int default_jobs();
// fn(begin, end, worker) over [0, n) split into contiguous chunks, one worker per chunk.
void parallel_for(size_t n, int jobs, const std::function<void(size_t, size_t, int)>& fn);
}  // namespace bitlens
