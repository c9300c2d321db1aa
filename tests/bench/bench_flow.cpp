// flow-sample's sampler: a whole Euler and RK4 run of the shipped 1-rectified
// moons model (BM_PeerFlow*: N = 100,000 2-D samples, 50 steps, the case
// tests/bench/flow_peer.py runs in PyTorch), the exact mixture, and the
// exact-divergence log-likelihood.
#include <benchmark/benchmark.h>

#include "bench_main.hpp"

#include <string>

#include "nnkit/formats/safetensors.hpp"
#include "nnkit/io.hpp"
#include "nnkit/ops/diffusion.hpp"
#include "nnkit/ops/flow.hpp"
#include "nnkit/ops/models.hpp"
#include "nnkit/parallel.hpp"

using namespace nnkit;

namespace {

struct Rf {
  safetensors::File file;
  std::unique_ptr<models::Model> model;
};

Rf rf_moons() {
  const std::string file = __FILE__;
  const std::string path = file.substr(0, file.rfind('/')) + "/../../examples/models/rf_moons.safetensors";
  Input in = Input::open(path);
  Rf r{safetensors::read(in), nullptr};
  r.model = models::from_tensors(r.file.tensors, r.file.metadata, path);
  return r;
}

Tensor noise(std::int64_t n) {
  Tensor x(DType::f4, {n, 2});
  auto z = diffusion::counter_noise(0, 2);
  for (std::int64_t i = 0; i < n; ++i) z(0, i, x.data<float>() + 2 * i);
  return x;
}

void run_flow(benchmark::State& state, models::Model& m, flow::Solver s) {
  flow::Field field(m, "bench");
  flow::Options o;
  o.solver = s;
  o.steps = 50;
  for (auto _ : state) {
    state.PauseTiming();
    Tensor x = noise(state.range(0));
    state.ResumeTiming();
    flow::sample(field, o, x);
    benchmark::DoNotOptimize(x.data<float>());
  }
}

void BM_PeerFlowEuler(benchmark::State& state) {
  auto r = rf_moons();
  run_flow(state, *r.model, flow::Solver::euler);
}
BENCHMARK(BM_PeerFlowEuler)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_PeerFlowRk4(benchmark::State& state) {
  auto r = rf_moons();
  run_flow(state, *r.model, flow::Solver::rk4);
}
BENCHMARK(BM_PeerFlowRk4)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_GmmFlowEuler(benchmark::State& state) {
  auto m = models::default_model();
  run_flow(state, *m, flow::Solver::euler);
}
BENCHMARK(BM_GmmFlowEuler)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_LogProbExact(benchmark::State& state) {
  auto r = rf_moons();
  flow::Field field(*r.model, "bench");
  auto div = flow::divergence(field, r.file.tensors);
  flow::Options o;
  o.solver = flow::Solver::rk4;
  o.steps = 20;
  const Tensor x = noise(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(flow::log_prob(field, *div, o, x));
}
BENCHMARK(BM_LogProbExact)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace

NNKIT_BENCHMARK_MAIN_WITH_THREADS()
