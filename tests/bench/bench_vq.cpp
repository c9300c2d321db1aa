// vq's core (vq-encode, vq-decode, vq-train) on the case: N = 200,000 vectors of D = 64 against K = 1,024
// codes (encode), and k-means with 25 Lloyd iterations, beside the plain 2-D
// SGEMM rate of this machine (the bound of the encode: 2 N K D flops).
// tests/bench/vq_peer.py times faiss on the same case; tests/bench/compare.sh
// prints both. Threads: $NNKIT_THREADS if set, else all cores (as --threads 0).
// Rates are reported as the counter "GFLOPS" (2 N K D per second).
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstdlib>
#include <vector>

#include "nnkit/ops/vq.hpp"
#include "nnkit/parallel.hpp"
#include "nnkit/rng.hpp"

using namespace nnkit;

namespace {

constexpr std::int64_t kN = 200000, kD = 64, kK = 1024;

int threads() {
  const char* env = std::getenv("NNKIT_THREADS");
  return set_threads(env ? std::atoi(env) : 0);
}

std::vector<float> normal(std::int64_t n, std::uint64_t seed) {
  std::vector<float> v(static_cast<std::size_t>(n));
  fill_normal(seed, 0, v.data(), n);
  return v;
}

void rate(benchmark::State& state, double flops_per_iteration, int n) {
  state.counters["GFLOPS"] =
      benchmark::Counter(flops_per_iteration * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["threads"] = n;
}

}  // namespace

// The machine's SGEMM rate: one square 2-D SGEMM on all threads.
static void BM_Sgemm2D(benchmark::State& state) {
  const int n = threads();
  const int s = static_cast<int>(state.range(0));
  const auto a = normal(std::int64_t{s} * s, 1), b = normal(std::int64_t{s} * s, 2);
  std::vector<float> c(static_cast<std::size_t>(s) * s);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s, s, s, 1.f, a.data(), s, b.data(), s, 0.f, c.data(), s);
    benchmark::ClobberMemory();
  }
  rate(state, 2.0 * s * s * s, n);
}
BENCHMARK(BM_Sgemm2D)->Arg(2048)->UseRealTime()->Unit(benchmark::kMillisecond);

// The encode's own shape, X [N, D] times codes [K, D]^T, as plain SGEMMs of
// 4,096 rows into one reused buffer (no argmin): what BLAS does with D = 64.
static void BM_SgemmEncodeShape(benchmark::State& state) {
  const int n = threads();
  const auto x = normal(kN * kD, 1), e = normal(kK * kD, 2);
  const std::int64_t rows = 4096;
  std::vector<float> c(static_cast<std::size_t>(rows * kK));
  for (auto _ : state) {
    for (std::int64_t r = 0; r < kN; r += rows)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(std::min(rows, kN - r)), kK, kD, 1.f,
                  x.data() + r * kD, kD, e.data(), kD, 0.f, c.data(), kK);
    benchmark::ClobberMemory();
  }
  rate(state, 2.0 * kN * kK * kD, n);
}
BENCHMARK(BM_SgemmEncodeShape)->UseRealTime()->Unit(benchmark::kMillisecond);

// Nearest code of every vector (vq-encode's core), l2 or cosine, or the top 8.
static void BM_Encode(benchmark::State& state) {
  const int n = threads();
  const auto x = normal(kN * kD, 1), e = normal(kK * kD, 2);
  const auto metric = state.range(0) ? vq::Metric::cosine : vq::Metric::l2;
  const std::int64_t k = state.range(1);
  const vq::FlatIndex index(e.data(), kK, kD, metric);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(kN * k));
  std::vector<float> dist(static_cast<std::size_t>(kN * k));
  for (auto _ : state) {
    index.search(x.data(), kN, kD, k, idx.data(), k, dist.data(), k);
    benchmark::DoNotOptimize(idx.data());
  }
  rate(state, 2.0 * kN * kK * kD, n);
  state.SetLabel(std::string(vq::metric_name(metric)) + (k > 1 ? " top-" + std::to_string(k) : ""));
}
BENCHMARK(BM_Encode)->Args({0, 1})->Args({1, 1})->Args({0, 8})->UseRealTime()->Unit(benchmark::kMillisecond);

// vq-decode's core: the codes of N indices, [N] -> [N, D] (a gather; bytes written per second).
static void BM_Decode(benchmark::State& state) {
  const int n = threads();
  const Tensor cb = Tensor::from_vector<float>({kK, kD}, normal(kK * kD, 2));
  const vq::Quantizer q = vq::make_quantizer(cb, false, 0, vq::Metric::l2, "codes");
  std::vector<std::int64_t> idx(static_cast<std::size_t>(kN));
  for (std::int64_t i = 0; i < kN; ++i) idx[static_cast<std::size_t>(i)] = (i * 7919) % kK;
  const Tensor indices = Tensor::from_vector<std::int64_t>({kN}, idx);
  for (auto _ : state) benchmark::DoNotOptimize(vq::decode(q, indices, "indices").bytes());
  state.SetBytesProcessed(state.iterations() * kN * kD * static_cast<std::int64_t>(sizeof(float)));
  state.counters["threads"] = n;
}
BENCHMARK(BM_Decode)->UseRealTime()->Unit(benchmark::kMillisecond);

// k-means, K = 1,024 codes of the N vectors, 25 Lloyd iterations; arg: init
// (0 k-means++, 1 random: faiss's own initialisation).
static void BM_Kmeans(benchmark::State& state) {
  const int n = threads();
  const auto x = normal(kN * kD, 1);
  vq::KmeansOptions opt;
  opt.k = kK;
  opt.iters = 25;
  opt.init = state.range(0) ? vq::Init::random : vq::Init::kmeanspp;
  double inertia = 0;
  for (auto _ : state) {
    const vq::KmeansResult r = vq::kmeans(x.data(), kN, kD, kD, 0, opt);
    inertia = r.inertia.back();
  }
  state.counters["inertia"] = inertia;
  state.counters["threads"] = n;
  state.SetLabel(state.range(0) ? "random init" : "k-means++");
}
BENCHMARK(BM_Kmeans)->Arg(0)->Arg(1)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// k-means++ alone (no Lloyd iteration; one final assignment).
static void BM_KmeansPlusPlus(benchmark::State& state) {
  const int n = threads();
  const auto x = normal(kN * kD, 1);
  vq::KmeansOptions opt;
  opt.k = kK;
  opt.iters = 0;
  for (auto _ : state) benchmark::DoNotOptimize(vq::kmeans(x.data(), kN, kD, kD, 0, opt).inertia.back());
  state.counters["threads"] = n;
}
BENCHMARK(BM_KmeansPlusPlus)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
