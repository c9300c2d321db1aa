// Receptive-field arithmetic at scale (rf-calc): parsing and analysing
// generated networks of 10,000 layers, a plain chain and a residual DAG, with
// and without an input size. The target is well under a second for 10,000
// layers; the work is linear, so it takes milliseconds.
#include <benchmark/benchmark.h>

#include <string>

#include "nnkit/ops/receptive_field.hpp"

using namespace nnkit;

namespace {

// A chain of n layers: dilated and non-square convolutions, point-wise layers
// and pools, with a stride of 2 every n/5 layers (exact integers throughout).
std::string chain(int n) {
  std::string text = "# generated chain of " + std::to_string(n) + " layers\n";
  for (int i = 0; i < n; ++i) {
    const std::string name = "l" + std::to_string(i);
    if (i % (n / 5) == n / 5 - 1)
      text += name + ": maxpool k=3 s=2 p=1\n";
    else if (i % 4 == 0)
      text += name + ": conv k=3x5 d=" + std::to_string(1 + i % 3) + " p=" + std::to_string(1 + i % 3) + "x" +
              std::to_string(2 * (1 + i % 3)) + "\n";
    else if (i % 4 == 1)
      text += name + ": relu\n";
    else
      text += name + ": conv k=3 p=same\n";
  }
  return text;
}

// Residual blocks of three layers each (two convolutions and an add).
std::string residual(int n) {
  std::string text, prev = "input";
  for (int i = 0; i + 3 <= n; i += 3) {
    const std::string b = "b" + std::to_string(i);
    text += b + "a: conv k=3 p=1 from=" + prev + "\n" + b + "b: conv k=3 p=1\n" + b + ": add from=" + b +
            "b," + prev + "\n";
    prev = b;
  }
  return text;
}

void run(benchmark::State& state, const std::string& text, bool sized) {
  rf::Options opt;
  if (sized) opt.input_size = rf::Size2{4096, 4096};
  for (auto _ : state) {
    const rf::Network net = rf::parse_network(text, "bench");
    const rf::Analysis an = rf::analyze(net, opt);
    benchmark::DoNotOptimize(an.fields.back().axis[0].r);
  }
  state.SetItemsProcessed(state.iterations() * 10000);
}

}  // namespace

static void BM_Chain10000(benchmark::State& state) { run(state, chain(10000), false); }
BENCHMARK(BM_Chain10000)->Unit(benchmark::kMillisecond);

static void BM_Chain10000InputSize(benchmark::State& state) { run(state, chain(10000), true); }
BENCHMARK(BM_Chain10000InputSize)->Unit(benchmark::kMillisecond);

static void BM_Residual10000(benchmark::State& state) { run(state, residual(10000), true); }
BENCHMARK(BM_Residual10000)->Unit(benchmark::kMillisecond);

static void BM_ParseOnly10000(benchmark::State& state) {
  const std::string text = chain(10000);
  for (auto _ : state) benchmark::DoNotOptimize(rf::parse_network(text, "bench").layers.size());
}
BENCHMARK(BM_ParseOnly10000)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
