// tensor-plot's core: a scatter of a million points (density shading), a
// 2000x2000 heatmap, and a grid of 64 images, each into a PNG-ready tensor.
#include <benchmark/benchmark.h>

#include <random>

#include "nnkit/ops/plot.hpp"

using namespace nnkit;

static void BM_PlotScatter1M(benchmark::State& state) {
  std::mt19937 rng(1);
  std::normal_distribution<float> n(0, 1);
  Tensor pts(DType::f4, {1000000, 2});
  for (std::int64_t i = 0; i < pts.numel(); ++i) pts.data<float>()[i] = n(rng);
  plot::Options opt;
  for (auto _ : state) benchmark::DoNotOptimize(plot::scatter({{"p", pts}}, opt));
  state.SetItemsProcessed(state.iterations() * 1000000);
}
BENCHMARK(BM_PlotScatter1M)->Unit(benchmark::kMillisecond);

static void BM_PlotHeatmap2000(benchmark::State& state) {
  Tensor m(DType::f4, {2000, 2000});
  for (std::int64_t i = 0; i < m.numel(); ++i) m.data<float>()[i] = static_cast<float>((i * 7919) % 1000);
  plot::Options opt;
  for (auto _ : state) benchmark::DoNotOptimize(plot::heatmap({"m", m}, opt));
}
BENCHMARK(BM_PlotHeatmap2000)->Unit(benchmark::kMillisecond);

static void BM_PlotGrid64(benchmark::State& state) {
  Tensor imgs(DType::u1, {64, 64, 64, 3});
  for (std::int64_t i = 0; i < imgs.numel(); ++i) imgs.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i * 31);
  plot::Options opt;
  opt.cols = 8;
  for (auto _ : state) benchmark::DoNotOptimize(plot::grid({{"imgs", imgs}}, opt));
}
BENCHMARK(BM_PlotGrid64)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
