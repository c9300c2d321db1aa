// Micro-benchmarks of ops/boxes, and the cases timed against torchvision by
// boxes_peer.py (same boxes, bit for bit: both draw them from the counter-
// based generator below): N = M = 4000 pairwise IoU and GIoU, NMS of 100,000
// boxes. The dense-output rate is reported as bytes written per second next
// to a plain memcpy of the same size, on one thread and on all of them.
//
// Threads: all cores, or --threads=N. (Labels, not counters: the CSV output
// wants the same columns in every row.)
#include <benchmark/benchmark.h>

#include "bench_main.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "nnkit/ops/boxes.hpp"
#include "nnkit/parallel.hpp"

using namespace nnkit;
using namespace nnkit::boxes;

namespace {

// splitmix64 of a counter: the i-th uniform number of a stream, in [0, 1).
std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
double uniform(std::uint64_t stream, std::uint64_t i) {
  return static_cast<double>(splitmix((stream << 32) + i) >> 11) * 0x1p-53;
}

// n boxes with corners uniform in [0, extent) and sides in [lo, hi), as
// float32 values (what boxes_peer.py makes: the same numbers).
std::vector<double> make_boxes(std::int64_t n, std::uint64_t stream, double extent, double lo, double hi) {
  std::vector<double> v;
  v.reserve(static_cast<std::size_t>(4 * n));
  for (std::int64_t i = 0; i < n; ++i) {
    const float x = float(uniform(stream, 4 * i) * extent), y = float(uniform(stream, 4 * i + 1) * extent);
    const float w = float(lo + uniform(stream, 4 * i + 2) * (hi - lo));
    const float h = float(lo + uniform(stream, 4 * i + 3) * (hi - lo));
    v.insert(v.end(), {x, y, float(x + w), float(y + h)});
  }
  return v;
}
std::vector<double> make_scores(std::int64_t n, std::uint64_t stream) {
  std::vector<double> s(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) s[i] = float(uniform(stream, i));
  return s;
}

// The dense case of the peer comparison: A (stream 1) x B (stream 2).
template <Metric M>
void dense_case(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const auto a = from_rows<float>(make_boxes(n, 1, 1000, 10, 110), {});
  const auto b = from_rows<float>(make_boxes(n, 2, 1000, 10, 110), {});
  std::vector<float> out(static_cast<std::size_t>(n * n), 1.0f);  // touched: no page faults timed
  for (auto _ : state) {
    pairwise_rows(a, b, {1, n, n}, M, 0, n, out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * n * n * 4);
  state.SetItemsProcessed(state.iterations() * n * n);  // pairs
}

}  // namespace

static void BM_PeerIoU(benchmark::State& state) { dense_case<Metric::iou>(state); }
BENCHMARK(BM_PeerIoU)->Arg(4000)->UseRealTime()->Unit(benchmark::kMillisecond);
static void BM_PeerGIoU(benchmark::State& state) { dense_case<Metric::giou>(state); }
BENCHMARK(BM_PeerGIoU)->Arg(4000)->UseRealTime()->Unit(benchmark::kMillisecond);

static void BM_PeerNms(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const auto s = from_rows<float>(make_boxes(n, 3, 2000, 16, 128), {});
  const auto scores = make_scores(n, 4);
  NmsOptions o;
  o.iou_threshold = 0.5;
  std::size_t kept = 0;
  for (auto _ : state) kept = nms(s, scores, nullptr, o).keep.size();
  state.SetLabel("kept " + std::to_string(kept));
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_PeerNms)->Arg(100000)->UseRealTime()->Unit(benchmark::kMillisecond);

// The other metrics, float64, aligned, sparse, streamed, rotated, batched NMS.
static void BM_Dense(benchmark::State& state) {
  const Metric m = static_cast<Metric>(state.range(0));
  const bool f64 = state.range(1);
  const std::int64_t n = 2000;
  const auto rows_a = make_boxes(n, 1, 1000, 10, 110), rows_b = make_boxes(n, 2, 1000, 10, 110);
  const auto a = from_rows<float>(rows_a, {}), b = from_rows<float>(rows_b, {});
  const auto a8 = from_rows<double>(rows_a, {}), b8 = from_rows<double>(rows_b, {});
  std::vector<float> o4(static_cast<std::size_t>(n * n), 1);
  std::vector<double> o8(f64 ? o4.size() : 0, 1);
  for (auto _ : state) {
    if (f64)
      pairwise_rows(a8, b8, {1, n, n}, m, 0, n, o8.data());
    else
      pairwise_rows(a, b, {1, n, n}, m, 0, n, o4.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::string(metric_name(m)) + (f64 ? " f64" : " f32"));
  state.SetItemsProcessed(state.iterations() * n * n);
}
BENCHMARK(BM_Dense)->ArgsProduct({{0, 1, 2, 3, 4}, {0, 1}})->UseRealTime()->Unit(benchmark::kMillisecond);

static void BM_DenseStreamed(benchmark::State& state) {
  const std::int64_t n = 4000;
  const auto a = from_rows<float>(make_boxes(n, 1, 1000, 10, 110), {});
  const auto b = from_rows<float>(make_boxes(n, 2, 1000, 10, 110), {});
  for (auto _ : state)
    pairwise_stream<float>(a, b, {1, n, n}, Metric::iou, [](const float* p, std::int64_t) { benchmark::DoNotOptimize(p); });
  state.SetBytesProcessed(state.iterations() * n * n * 4);
}
BENCHMARK(BM_DenseStreamed)->UseRealTime()->Unit(benchmark::kMillisecond);

// Memory-copy bandwidth for the same 64 MB, on one thread and on all.
static void BM_Memcpy(benchmark::State& state) {
  const std::size_t bytes = std::size_t{4000} * 4000 * 4;
  const bool threaded = state.range(0);
  std::vector<char> src(bytes, 1), dst(bytes, 2);
  for (auto _ : state) {
    if (threaded) {
      parallel_for(static_cast<std::int64_t>(bytes >> 16), 1, [&](std::int64_t lo, std::int64_t hi) {
        std::memcpy(dst.data() + (lo << 16), src.data() + (lo << 16), static_cast<std::size_t>(hi - lo) << 16);
      });
    } else {
      std::memcpy(dst.data(), src.data(), bytes);
    }
    benchmark::ClobberMemory();
  }
  state.SetLabel(threaded ? "all threads" : "one thread");
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_Memcpy)->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);

static void BM_Aligned(benchmark::State& state) {
  const std::int64_t n = 1 << 20;
  const auto a = from_rows<float>(make_boxes(n, 1, 1000, 10, 110), {});
  const auto b = from_rows<float>(make_boxes(n, 2, 1000, 10, 110), {});
  std::vector<float> out(static_cast<std::size_t>(n));
  for (auto _ : state) aligned(a, b, Metric::ciou, out.data());
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Aligned)->UseRealTime()->Unit(benchmark::kMillisecond);

// Sparse self-overlaps of many boxes: the grid visits only neighbours.
static void BM_Sparse(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const double extent = 40 * std::sqrt(double(n));  // constant density
  const auto s = from_rows<float>(make_boxes(n, 5, extent, 10, 60), {});
  std::size_t k = 0;
  for (auto _ : state) k = pairwise_sparse(s, s, {1, n, n}, Metric::iou, 0.5).values.size();
  state.SetLabel(std::to_string(k) + " pairs");
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Sparse)->Arg(100000)->Arg(1000000)->UseRealTime()->Unit(benchmark::kMillisecond);

static void BM_RotatedDense(benchmark::State& state) {
  const std::int64_t n = 1000;
  std::vector<double> rows;
  for (std::int64_t i = 0; i < n; ++i)
    rows.insert(rows.end(), {uniform(6, 5 * i) * 300, uniform(6, 5 * i + 1) * 300, 10 + uniform(6, 5 * i + 2) * 60,
                             10 + uniform(6, 5 * i + 3) * 60, uniform(6, 5 * i + 4) * 360});
  Convention c;
  c.rotated = true;
  const auto s = from_rows<float>(rows, c);
  std::vector<float> out(static_cast<std::size_t>(n * n));
  for (auto _ : state) pairwise_rows(s, s, {1, n, n}, Metric::iou, 0, n, out.data());
  state.SetItemsProcessed(state.iterations() * n * n);
}
BENCHMARK(BM_RotatedDense)->UseRealTime()->Unit(benchmark::kMillisecond);

static void BM_NmsBatchedAndSoft(benchmark::State& state) {
  const std::int64_t n = 100000;
  const auto s = from_rows<float>(make_boxes(n, 3, 2000, 16, 128), {});
  const auto scores = make_scores(n, 4);
  std::vector<std::int64_t> classes(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) classes[i] = static_cast<std::int64_t>(uniform(7, i) * 80);
  NmsOptions o;
  o.iou_threshold = 0.5;
  const int mode = static_cast<int>(state.range(0));
  if (mode == 1) o.soft = Soft::gaussian, o.score_threshold = 0.001;
  for (auto _ : state) benchmark::DoNotOptimize(nms(s, scores, mode == 0 ? &classes : nullptr, o));
  state.SetLabel(mode == 0 ? "batched, 80 classes" : "soft gaussian");
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_NmsBatchedAndSoft)->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);

NNKIT_BENCHMARK_MAIN_WITH_THREADS()
