// ddim-sample's sampler: the MLP forward pass and a whole DDIM run of the
// shipped moons model (BM_PeerDdim: N = 100,000 2-D samples, 50 steps, the
// case tests/bench/ddim_peer.py runs in PyTorch), and the exact mixture.
#include <benchmark/benchmark.h>

#include "bench_main.hpp"

#include <string>

#include "nnkit/formats/safetensors.hpp"
#include "nnkit/io.hpp"
#include "nnkit/ops/diffusion.hpp"
#include "nnkit/ops/models.hpp"
#include "nnkit/parallel.hpp"

using namespace nnkit;

namespace {

std::unique_ptr<models::Model> moons() {
  const std::string file = __FILE__;
  const std::string path = file.substr(0, file.rfind('/')) + "/../../examples/models/moons.safetensors";
  Input in = Input::open(path);
  auto f = safetensors::read(in);
  return models::from_tensors(f.tensors, f.metadata, path);
}

Tensor noise(std::int64_t n) {
  Tensor x(DType::f4, {n, 2});
  auto z = diffusion::counter_noise(0, 2);
  for (std::int64_t i = 0; i < n; ++i) z(0, i, x.data<float>() + 2 * i);
  return x;
}

void BM_MlpForward(benchmark::State& state) {
  auto m = moons();
  const std::int64_t n = state.range(0);
  Tensor x = noise(n);
  std::vector<float> out(static_cast<std::size_t>(2 * n));
  for (auto _ : state) {
    models::predict_parallel(*m, x.data<float>(), n, {500, 0, 0}, nullptr, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_MlpForward)->Arg(4096)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_PeerDdim(benchmark::State& state) {
  auto m = moons();
  diffusion::Options o;
  o.steps = 50;
  for (auto _ : state) {
    state.PauseTiming();
    Tensor x = noise(state.range(0));
    state.ResumeTiming();
    diffusion::sample(*m, o, x);
    benchmark::DoNotOptimize(x.data<float>());
  }
}
BENCHMARK(BM_PeerDdim)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_GmmDdim(benchmark::State& state) {
  auto m = models::default_model();
  diffusion::Options o;
  o.steps = 50;
  for (auto _ : state) {
    state.PauseTiming();
    Tensor x = noise(state.range(0));
    state.ResumeTiming();
    diffusion::sample(*m, o, x);
    benchmark::DoNotOptimize(x.data<float>());
  }
}
BENCHMARK(BM_GmmDdim)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace

NNKIT_BENCHMARK_MAIN_WITH_THREADS()
