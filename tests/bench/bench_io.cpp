// Micro-benchmarks of the format layer: npy read/write throughput (memory and
// a real file), text writing, and the statistics behind tensor-info.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "nnkit/formats/npy.hpp"
#include "nnkit/formats/text.hpp"
#include "nnkit/rng.hpp"
#include "nnkit/shard.hpp"
#include "nnkit/stats.hpp"

using namespace nnkit;

namespace {
Tensor random_tensor(std::int64_t n) {
  Tensor t(DType::f4, {n});
  fill_normal(0, 0, t.data<float>(), n);
  return t;
}
std::string temp_path(const char* name) {
  return "/tmp/nnkit-bench-" + std::to_string(::getpid()) + "-" + name;
}
}  // namespace

static void BM_NpyReadMemory(benchmark::State& state) {
  const std::string bytes = npy::to_bytes(random_tensor(state.range(0)));
  for (auto _ : state) {
    Input in = Input::from_bytes(bytes, "mem");
    Tensor t = npy::read(in);
    benchmark::DoNotOptimize(t.bytes());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes.size()));
}
BENCHMARK(BM_NpyReadMemory)->Arg(1 << 10)->Arg(1 << 20)->Arg(1 << 24);

static void BM_NpyFileRoundTrip(benchmark::State& state) {
  const Tensor t = random_tensor(state.range(0));
  const std::string path = temp_path("rt.npy");
  for (auto _ : state) {
    {
      Output out = Output::open(path);
      npy::write(out, t);
      out.commit();
    }
    Input in = Input::open(path);
    Tensor back = npy::read(in);
    benchmark::DoNotOptimize(back.bytes());
  }
  std::remove(path.c_str());
  state.SetBytesProcessed(state.iterations() * 2 * static_cast<std::int64_t>(t.nbytes()));
}
BENCHMARK(BM_NpyFileRoundTrip)->Arg(1 << 20)->Arg(1 << 24);

static void BM_TextWrite(benchmark::State& state) {
  const Tensor t = random_tensor(state.range(0)).reshaped({state.range(0) / 8, 8});
  for (auto _ : state) {
    Output out = Output::open("/dev/null");
    text::write(out, t, false);
    out.commit();
  }
  state.SetItemsProcessed(state.iterations() * t.numel());
}
BENCHMARK(BM_TextWrite)->Arg(1 << 16)->Arg(1 << 20);

static void BM_Stats(benchmark::State& state) {
  const Tensor t = random_tensor(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(compute_stats(t));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(t.nbytes()));
}
BENCHMARK(BM_Stats)->Arg(1 << 20)->Arg(1 << 24);

static void BM_SplitConcat(benchmark::State& state) {
  const Tensor t = random_tensor(state.range(0)).reshaped({state.range(0) / 64, 64});
  for (auto _ : state) {
    Tensor a = slice_axis(t, 1, 0, 32), b = slice_axis(t, 1, 32, 64);
    Tensor c = concat({&a, &b}, 1);
    benchmark::DoNotOptimize(c.bytes());
  }
  state.SetBytesProcessed(state.iterations() * 2 * static_cast<std::int64_t>(t.nbytes()));
}
BENCHMARK(BM_SplitConcat)->Arg(1 << 20)->Arg(1 << 24);

BENCHMARK_MAIN();
