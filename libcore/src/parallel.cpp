#include "nnkit/parallel.hpp"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

// OpenBLAS's thread control, when a tool links it (weak: absent otherwise, so
// the utilities need not load BLAS at all).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace nnkit {

namespace {
int g_threads = 0;
}

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

int set_threads(int n) {
  if (n <= 0) {
    // A cluster job sets OPENBLAS_NUM_THREADS to its allocation; honour it.
    const char* env = std::getenv("OPENBLAS_NUM_THREADS");
    n = env ? std::atoi(env) : 0;
  }
  g_threads = n > 0 ? n : hardware_threads();
  if (openblas_set_num_threads) openblas_set_num_threads(g_threads);
  return g_threads;
}

int thread_count() { return g_threads > 0 ? g_threads : hardware_threads(); }

void parallel_for(std::int64_t n, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& body) {
  if (n <= 0) return;
  grain = std::max<std::int64_t>(grain, 1);
  const std::int64_t chunks =
      std::min<std::int64_t>(thread_count(), (n + grain - 1) / grain);
  if (chunks <= 1) {
    body(0, n);
    return;
  }
  std::vector<std::thread> pool;
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&](std::int64_t b, std::int64_t e) {
    try {
      body(b, e);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  // Balanced contiguous chunks: sizes differ by at most one.
  const std::int64_t base = n / chunks, extra = n % chunks;
  std::int64_t begin = 0;
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t end = begin + base + (c < extra ? 1 : 0);
    if (c + 1 == chunks)
      run(begin, end);  // the calling thread takes the last chunk
    else
      pool.emplace_back(run, begin, end);
    begin = end;
  }
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace nnkit
