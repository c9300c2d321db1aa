// tensor-plot's option values and what they drive: plot::parse_range
// (--range), parse_colormap (--cmap) and colormap, nice_ticks and tick_label
// (the axes of any data range), and the figures themselves with fuzzed sizes,
// bins, columns, gaps, ranges, titles and labels over small fuzzed tensors.
// The first byte picks the entry point; the rest feeds FuzzedDataProvider.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "nnkit/ops/plot.hpp"
#include "nnkit/parallel.hpp"

using namespace nnkit;

namespace {

void fuzz_range(FuzzedDataProvider& fdp) {
  const std::string text = fdp.ConsumeRemainingBytesAsString();
  std::pair<double, double> r;
  if (!fuzz::expected([&] { r = plot::parse_range(text); })) return;
  fuzz::check(std::isfinite(r.first) && std::isfinite(r.second) && r.first < r.second, "parse_range: not LO < HI, finite");
}

void fuzz_colors(FuzzedDataProvider& fdp) {
  const std::string name = fdp.ConsumeRandomLengthString(16);
  plot::ColorMap m = plot::ColorMap::viridis;
  (void)fuzz::expected([&] { m = plot::parse_colormap(name); });
  (void)plot::colormap(m, fdp.ConsumeFloatingPoint<double>());
  (void)plot::series_color(fdp.ConsumeIntegral<std::size_t>());
}

void fuzz_ticks(FuzzedDataProvider& fdp) {
  double lo = fdp.ConsumeFloatingPoint<double>(), hi = fdp.ConsumeFloatingPoint<double>();
  if (fdp.ConsumeBool()) hi = lo + fdp.ConsumeFloatingPointInRange(0.0, 10.0) * std::fabs(lo) * 1e-15;  // narrow ranges
  const int target = fdp.ConsumeIntegralInRange(0, 20);
  if (!std::isfinite(lo) || !std::isfinite(hi) || !std::isfinite(hi - lo)) return;  // the figures refuse these first
  const std::vector<double> ticks = plot::nice_ticks(lo, hi, target);
  fuzz::check(!ticks.empty() && ticks.size() <= 1000, "nice_ticks: no ticks, or absurdly many");
  const double step = plot::nice_step(lo, hi, target);
  for (double t : ticks) fuzz::check(plot::tick_label(t, step).size() < 64, "tick_label: a label too long");
}

// A small tensor of fuzzed values: rank and extents from the fuzzer.
Tensor small_tensor(FuzzedDataProvider& fdp, int max_rank, DType dtype) {
  Shape shape;
  const int rank = fdp.ConsumeIntegralInRange(0, max_rank);
  for (int i = 0; i < rank; ++i) shape.push_back(fdp.ConsumeIntegralInRange<std::int64_t>(0, 9));
  Tensor t(DType::f8, shape);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data<double>()[i] = fdp.ConsumeBool() ? fdp.ConsumeFloatingPointInRange(-100.0, 100.0) : fdp.ConsumeFloatingPoint<double>();
  return t.astype(dtype, false);
}

plot::Options options(FuzzedDataProvider& fdp) {
  plot::Options o;
  o.width = fdp.ConsumeIntegralInRange(16, 200);  // tensor-plot allows up to 16384: kept small for speed
  o.height = fdp.ConsumeIntegralInRange(16, 200);
  o.dark = fdp.ConsumeBool();
  o.title = fdp.ConsumeRandomLengthString(40);
  o.xlabel = fdp.ConsumeRandomLengthString(20);
  o.ylabel = fdp.ConsumeRandomLengthString(20);
  if (fdp.ConsumeBool()) o.alpha = fdp.ConsumeFloatingPointInRange(0.0, 1.0);
  o.point_size = fdp.ConsumeFloatingPointInRange(0.001, 200.0);
  o.density = fdp.PickValueInArray({plot::Density::automatic, plot::Density::on, plot::Density::off});
  o.bins = fdp.ConsumeIntegralInRange(1, 100000);
  if (fdp.ConsumeBool()) (void)fuzz::expected([&] { o.range = plot::parse_range(fdp.ConsumeRandomLengthString(30)); });
  o.log_y = fdp.ConsumeBool();
  o.cmap = fdp.PickValueInArray({plot::ColorMap::viridis, plot::ColorMap::magma, plot::ColorMap::gray, plot::ColorMap::coolwarm});
  o.cols = fdp.ConsumeIntegralInRange(0, 100000);
  o.gap = fdp.ConsumeIntegralInRange(0, 1000);
  o.line_width = fdp.ConsumeFloatingPointInRange(0.001, 50.0);
  return o;
}

void fuzz_figure(FuzzedDataProvider& fdp) {
  const plot::Options o = options(fdp);
  const int kind = fdp.ConsumeIntegralInRange(0, 5);
  const DType dtype = fdp.PickValueInArray({DType::f4, DType::f8, DType::u1, DType::i8, DType::f2});
  std::vector<NamedTensor> series;
  const int count = fdp.ConsumeIntegralInRange(1, 3);
  for (int i = 0; i < count; ++i) series.push_back({fdp.ConsumeRandomLengthString(12), small_tensor(fdp, kind == 4 ? 4 : 3, dtype)});
  plot::Figure fig;
  const bool drawn = fuzz::expected([&] {
    switch (kind) {
      case 0: {
        const Tensor labels = small_tensor(fdp, 1, DType::i8);
        fig = plot::scatter(series, o, fdp.ConsumeBool() ? &labels : nullptr);
        break;
      }
      case 1: fig = plot::histogram(series, o); break;
      case 2: fig = plot::line(series, o); break;
      case 3: fig = plot::heatmap(series.front(), o); break;
      case 4: fig = plot::grid(series, o); break;
      case 5: fig = plot::trajectory(series.front(), o); break;
    }
  });
  if (!drawn) return;
  fuzz::check(fig.image.dtype() == DType::u1 && fig.image.ndim() == 3, "a figure that is not a uint8 [H, W, C] image");
  if (kind != 4) fuzz::check(fig.image.dim(0) == o.height && fig.image.dim(1) == o.width, "a figure of another size");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return fuzz::bound_memory_and_threads(); }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  FuzzedDataProvider fdp(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0: fuzz_range(fdp); break;
    case 1: fuzz_colors(fdp); break;
    case 2: fuzz_ticks(fdp); break;
    case 3: fuzz_figure(fdp); break;
  }
  return 0;
}
