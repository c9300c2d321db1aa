#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "nnkit/parallel.hpp"

using namespace nnkit;

TEST(Parallel, CoversRangeOnceWithBoundedThreads) {
  for (int threads : {1, 2, 4}) {
    set_threads(threads);
    EXPECT_EQ(thread_count(), threads);
    std::vector<std::atomic<int>> hits(1000);
    std::mutex m;
    std::set<std::thread::id> ids;
    parallel_for(1000, 10, [&](std::int64_t b, std::int64_t e) {
      {
        std::lock_guard<std::mutex> lock(m);
        ids.insert(std::this_thread::get_id());
      }
      for (std::int64_t i = b; i < e; ++i) hits[i]++;
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    EXPECT_LE(static_cast<int>(ids.size()), threads);
  }
  set_threads(0);
  EXPECT_EQ(thread_count(), hardware_threads());
}

TEST(Parallel, GrainLimitsSplitting) {
  set_threads(8);
  std::atomic<int> calls{0};
  parallel_for(10, 100, [&](std::int64_t b, std::int64_t e) {
    ++calls;
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 10);
  });
  EXPECT_EQ(calls.load(), 1);
  set_threads(0);
}

TEST(Parallel, ExceptionsPropagate) {
  set_threads(3);
  EXPECT_THROW(parallel_for(100, 1,
                            [](std::int64_t b, std::int64_t) {
                              if (b == 0) throw std::runtime_error("boom");
                            }),
               std::runtime_error);
  set_threads(0);
}
