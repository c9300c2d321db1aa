// Thread control: --threads bounds nnkit's own threads and OpenBLAS's.
#pragma once
#include <cstdint>
#include <functional>

namespace nnkit {

// Number of usable cores.
int hardware_threads();
// Sets the thread budget (n <= 0: $OPENBLAS_NUM_THREADS when set, else all
// cores) for parallel_for and, when
// OpenBLAS is linked, for BLAS. Returns the resolved count.
int set_threads(int n);
int thread_count();
// Runs body(begin, end) over [0, n) split into contiguous chunks of at least
// `grain` items, on up to thread_count() threads. Exceptions propagate.
void parallel_for(std::int64_t n, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& body);

}  // namespace nnkit
