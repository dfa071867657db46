#include "parallel.h"

#include <algorithm>
#include <exception>
#include <vector>
#ifndef __EMSCRIPTEN__
#include <thread>
#endif

namespace bitlens {

int default_jobs() {
#ifdef __EMSCRIPTEN__
    return 1;
#else
    return int(std::max(1u, std::thread::hardware_concurrency()));
#endif
}

void parallel_for(size_t n, int jobs, const std::function<void(size_t, size_t, int)>& fn) {
    if (jobs <= 0) jobs = default_jobs();
    jobs = int(std::min<size_t>(size_t(jobs), std::max<size_t>(n, 1)));
#ifdef __EMSCRIPTEN__
    jobs = 1;
#endif
    if (jobs <= 1) {
        fn(0, n, 0);
        return;
    }
#ifndef __EMSCRIPTEN__
    std::vector<std::thread> threads;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(jobs));
    for (int w = 0; w < jobs; ++w) {
        const size_t b = n * size_t(w) / size_t(jobs), e = n * size_t(w + 1) / size_t(jobs);
        threads.emplace_back([&, b, e, w] {
            try {
                fn(b, e, w);
            } catch (...) {
                errors[size_t(w)] = std::current_exception();
            }
        });
    }
    for (auto& t : threads) t.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
#endif
}

}  // namespace bitlens
