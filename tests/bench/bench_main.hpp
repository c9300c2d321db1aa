// The main() of the benchmarks that race a peer: `--threads=N` (like the
// peer's torch.set_num_threads) is taken before Google Benchmark's own flags
// and bounds nnkit's threads and OpenBLAS's.
#pragma once
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "nnkit/parallel.hpp"

#define NNKIT_BENCHMARK_MAIN_WITH_THREADS()                                              \
  int main(int argc, char** argv) {                                                     \
    int threads = 0;                                                                    \
    std::vector<char*> rest;                                                            \
    for (int i = 0; i < argc; ++i) {                                                    \
      if (std::strncmp(argv[i], "--threads=", 10) == 0)                                 \
        threads = std::atoi(argv[i] + 10);                                              \
      else                                                                              \
        rest.push_back(argv[i]);                                                        \
    }                                                                                   \
    nnkit::set_threads(threads);                                                        \
    int n = static_cast<int>(rest.size());                                              \
    benchmark::Initialize(&n, rest.data());                                             \
    benchmark::AddCustomContext("nnkit_threads", std::to_string(nnkit::thread_count())); \
    benchmark::RunSpecifiedBenchmarks();                                                \
    benchmark::Shutdown();                                                              \
    return 0;                                                                           \
  }
