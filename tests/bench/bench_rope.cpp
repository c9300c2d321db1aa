// rope-embed's core on the case, [32 heads, 4096 tokens, 128 dims]
// float32, beside a memory copy of the same bytes on the same threads: the
// bandwidth bound of a one-pass rotation (bytes read + written per second).
// tests/bench/rope_peer.py times PyTorch's (transformers') computation of the
// same case; tests/bench/compare.sh prints both.
// Threads: $NNKIT_THREADS if set, else all cores (as the tool's --threads 0).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>

#include "nnkit/ops/rope.hpp"
#include "nnkit/parallel.hpp"
#include "nnkit/rng.hpp"

using namespace nnkit;

namespace {

constexpr std::int64_t kHeads = 32, kTokens = 4096, kDim = 128;

int threads() {
  const char* env = std::getenv("NNKIT_THREADS");
  return set_threads(env ? std::atoi(env) : 0);
}

Tensor input() {
  Tensor t(DType::f4, {kHeads, kTokens, kDim});
  fill_normal(0, 0, t.data<float>(), t.numel());
  return t;
}

rope::Params params(rope::Layout layout) {
  rope::Params p;
  p.rotary_dim = kDim;
  p.layout = layout;
  p.base = 500000;
  return p;
}

void report(benchmark::State& state, const Tensor& t, int n) {
  // Bytes read plus bytes written, as for the copy.
  state.SetBytesProcessed(state.iterations() * 2 * static_cast<std::int64_t>(t.nbytes()));
  state.counters["threads"] = n;
}

}  // namespace

// The rotation alone, tables made once, into a separate output.
static void BM_RopeApply(benchmark::State& state) {
  const int n = threads();
  const auto layout = state.range(0) ? rope::Layout::interleaved : rope::Layout::half;
  const Tensor x = input();
  Tensor y = x;  // pages touched once, before the clock
  const rope::Rope r(params(layout), rope::sequence_positions(kTokens, 0));
  for (auto _ : state) {
    r.apply(x, y);
    benchmark::DoNotOptimize(y.bytes());
    benchmark::ClobberMemory();
  }
  report(state, x, n);
  state.SetLabel(rope::layout_name(layout));
}
BENCHMARK(BM_RopeApply)->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// The rotation in place (what rope-embed does to each tensor it reads).
static void BM_RopeApplyInPlace(benchmark::State& state) {
  const int n = threads();
  Tensor x = input();
  const rope::Rope r(params(rope::Layout::half), rope::sequence_positions(kTokens, 0));
  for (auto _ : state) {
    r.apply(x, x);
    benchmark::DoNotOptimize(x.bytes());
    benchmark::ClobberMemory();
  }
  report(state, x, n);
}
BENCHMARK(BM_RopeApplyInPlace)->UseRealTime()->Unit(benchmark::kMillisecond);

// The whole computation, as PyTorch's peer does it: frequencies, cos/sin
// tables for 4096 positions, and the rotation.
static void BM_RopeTablesAndApply(benchmark::State& state) {
  const int n = threads();
  const Tensor x = input();
  Tensor y = x;
  for (auto _ : state) {
    const rope::Rope r(params(rope::Layout::half), rope::sequence_positions(kTokens, 0));
    r.apply(x, y);
    benchmark::DoNotOptimize(y.bytes());
    benchmark::ClobberMemory();
  }
  report(state, x, n);
}
BENCHMARK(BM_RopeTablesAndApply)->UseRealTime()->Unit(benchmark::kMillisecond);

// The tables alone: 4096 x 64 cos/sin pairs in double.
static void BM_RopeTables(benchmark::State& state) {
  threads();
  for (auto _ : state) {
    const rope::Rope r(params(rope::Layout::half), rope::sequence_positions(kTokens, 0));
    benchmark::DoNotOptimize(&r);
  }
  state.SetItemsProcessed(state.iterations() * kTokens * kDim / 2);
}
BENCHMARK(BM_RopeTables)->UseRealTime()->Unit(benchmark::kMillisecond);

// The bound: a copy of the same bytes, split over the same threads as the rotation.
static void BM_MemcpySameBytes(benchmark::State& state) {
  const int n = threads();
  const Tensor x = input();
  Tensor y = x;
  const std::int64_t rows = kHeads * kTokens, row_bytes = kDim * 4;
  for (auto _ : state) {
    parallel_for(rows, (64 << 10) / row_bytes, [&](std::int64_t b, std::int64_t e) {
      std::memcpy(y.bytes() + b * row_bytes, x.bytes() + b * row_bytes, static_cast<std::size_t>((e - b) * row_bytes));
    });
    benchmark::DoNotOptimize(y.bytes());
    benchmark::ClobberMemory();
  }
  report(state, x, n);
}
BENCHMARK(BM_MemcpySameBytes)->UseRealTime()->Unit(benchmark::kMillisecond);

// The same copy as a plain loop over rows, which the compiler vectorises like
// the rotation (glibc's memcpy may take non-temporal stores for large blocks,
// faster or slower depending on the machine): the faster of the two copies is
// the bound to compare with.
static void BM_CopyLoopSameBytes(benchmark::State& state) {
  const int n = threads();
  const Tensor x = input();
  Tensor y = x;
  const float* src = x.data<float>();
  float* dst = y.data<float>();
  for (auto _ : state) {
    parallel_for(kHeads * kTokens, (64 << 10) / (kDim * 4), [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b * kDim; i < e * kDim; ++i) dst[i] = src[i];
    });
    benchmark::DoNotOptimize(y.bytes());
    benchmark::ClobberMemory();
  }
  report(state, x, n);
}
BENCHMARK(BM_CopyLoopSameBytes)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
