// Sizes and option values at their extremes, through the core parsers the
// tools call: each must be refused with an nnkit::Error (usage or data),
// never overflow, loop without end or read out of bounds. Several are the
// inputs the libFuzzer targets found (tests/fuzz/regressions).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "nnkit/ops/diffusion.hpp"
#include "nnkit/ops/flow.hpp"
#include "nnkit/ops/models.hpp"
#include "nnkit/ops/plot.hpp"
#include "nnkit/ops/rope.hpp"
#include "nnkit/ops/vq.hpp"
#include "nnkit/tensor.hpp"
#include "error_of.hpp"

using namespace nnkit;
using nnkit::testing::code_of;

namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();


std::vector<NamedTensor> gmm_tensors() {
  return {{"means", Tensor::from_vector<float>({2, 2}, {0, 0, 1, 1})},
          {"stds", Tensor::from_vector<float>({2}, {1, 1})},
          {"weights", Tensor::from_vector<float>({2}, {1, 1})}};
}

}  // namespace

TEST(SizeLimits, ModelSampleShapeWhoseProductOverflows) {
  const std::map<std::string, std::string> meta{{"kind", "gmm"}, {"sample_shape", "999999999,999999999,999999999"}};
  EXPECT_EQ(code_of([&] { (void)models::from_tensors(gmm_tensors(), meta, "m"); }), ExitCode::data);
  const std::map<std::string, std::string> fine{{"kind", "gmm"}, {"sample_shape", "2,1"}};
  EXPECT_EQ(models::from_tensors(gmm_tensors(), fine, "m")->sample_shape(), (Shape{2, 1}));
}

TEST(SizeLimits, ModelScheduleIsReadStrictly) {
  using M = std::map<std::string, std::string>;
  const diffusion::Schedule base;
  EXPECT_EQ(diffusion::model_schedule(M{{"train_steps", "500.0"}}, base, "m").train_steps, 500);
  EXPECT_EQ(diffusion::model_schedule(M{{"beta_schedule", "scaled_linear"}}, base, "m").betas,
            diffusion::BetaSchedule::scaled_linear);
  EXPECT_TRUE(diffusion::model_schedule(M{{"rescale_zero_snr", "true"}}, base, "m").rescale_zero_snr);
  for (const M& bad : {M{{"train_steps", "1e30"}}, M{{"train_steps", "1000000000000"}}, M{{"train_steps", "0"}},
                       M{{"train_steps", "10.5"}}, M{{"train_steps", "nan"}}, M{{"beta_start", "2"}},
                       M{{"beta_end", "0"}}, M{{"beta_schedule", "cosine"}}, M{{"rescale_zero_snr", "yes"}}})
    EXPECT_EQ(code_of([&] { (void)diffusion::model_schedule(bad, base, "m"); }), ExitCode::data) << bad.begin()->first;
  // A key the options override is neither read nor checked.
  EXPECT_EQ(diffusion::model_schedule(M{{"train_steps", "1e30"}}, base, "m", {"train_steps"}).train_steps, 1000);
}

TEST(SizeLimits, TimestepListsRefuseOverflowingOffsetsAndSteps) {
  using diffusion::Spacing;
  EXPECT_EQ(code_of([] { (void)diffusion::timesteps(1000, 10, Spacing::leading, kMax); }), ExitCode::usage);
  EXPECT_EQ(code_of([] { (void)diffusion::timesteps(kMax, 2, Spacing::leading, 0); }), ExitCode::usage);
  EXPECT_EQ(code_of([] { (void)diffusion::timesteps(kMax, kMax, Spacing::trailing, 0); }), ExitCode::usage);
  diffusion::Schedule s;
  s.train_steps = kMax;
  EXPECT_EQ(code_of([&] { (void)diffusion::betas(s); }), ExitCode::usage);
  EXPECT_EQ(diffusion::timesteps(1000, 4, Spacing::leading, 1), (std::vector<std::int64_t>{751, 501, 251, 1}));
}

TEST(SizeLimits, RescaledScheduleThatReachesZeroEarlyIsRefused) {
  // Found by fuzz_sampler_options: abar reaches 0 in float32 long before the
  // last step, and the rescaled betas were 0/0.
  diffusion::Schedule s;
  s.train_steps = 1263;
  s.beta_start = 0.085;
  s.beta_end = 0.30;
  s.rescale_zero_snr = true;
  EXPECT_EQ(code_of([&] { (void)diffusion::alphas_cumprod(s); }), ExitCode::usage);
  s.rescale_zero_snr = false;
  for (double a : diffusion::alphas_cumprod(s)) EXPECT_TRUE(a >= 0 && a <= 1);
}

TEST(SizeLimits, DiffusionOptionsAreValidatedByTheCore) {
  diffusion::Options o;
  o.threshold = 2;  // would index past the sorted row
  EXPECT_EQ(code_of([&] { (void)diffusion::plan(o); }), ExitCode::usage);
  o = {};
  o.eta = std::nan("");
  EXPECT_EQ(code_of([&] { (void)diffusion::plan(o); }), ExitCode::usage);
}

TEST(SizeLimits, FlowGridRefusesStepCountsItCannotHold) {
  EXPECT_EQ(code_of([] { (void)flow::time_grid(kMax, 1); }), ExitCode::usage);
  EXPECT_EQ(code_of([] { (void)flow::time_grid(flow::kMaxSteps + 1, 1); }), ExitCode::usage);
  flow::Options o;
  o.steps = kMax;
  EXPECT_EQ(code_of([&] { flow::validate(o); }), ExitCode::usage);
  EXPECT_EQ(flow::time_grid(4, 1).size(), 5u);
}

TEST(SizeLimits, RopeIntegerLists) {
  EXPECT_EQ(rope::parse_int_list("16x24x24", "--grid", 'x', true), (std::vector<std::int64_t>{16, 24, 24}));
  EXPECT_EQ(rope::parse_int_list("0,4,4", "--mrope-section", ',', false), (std::vector<std::int64_t>{0, 4, 4}));
  for (const char* bad : {"", "x", "16x", "0x4", "-1x4", "4x99999999999999999999", "1099511627777x1", "4y4"})
    EXPECT_EQ(code_of([&] { (void)rope::parse_int_list(bad, "--grid", 'x', true); }), ExitCode::usage) << bad;
}

TEST(SizeLimits, RopeSizesThatOverflowAreErrors) {
  rope::Params p;
  p.rotary_dim = std::int64_t{1} << 62;
  p.axes = 2;
  p.mrope_section = {std::int64_t{1} << 60, std::int64_t{1} << 60};  // sums to R/2 ...
  EXPECT_NO_THROW(rope::validate(p));
  p.axes = 8;
  p.mrope_section.assign(8, std::int64_t{1} << 61);  // ... and past 2^63 when added up naively
  EXPECT_EQ(code_of([&] { rope::validate(p); }), ExitCode::usage);
  EXPECT_EQ(code_of([] { (void)rope::sequence_positions(kMax, 0); }), ExitCode::data);
  EXPECT_EQ(code_of([] { (void)rope::grid_positions({std::int64_t{1} << 40, std::int64_t{1} << 40}, 0); }), ExitCode::data);
  {
    const char* old = std::getenv("NNKIT_MAX_MEMORY");
    const std::string keep = old ? old : "";
    setenv("NNKIT_MAX_MEMORY", "1G", 1);
    // 2^40 positions: fits int64, not the limit.
    EXPECT_EQ(code_of([] { (void)rope::grid_positions({std::int64_t{1} << 20, std::int64_t{1} << 20}, 0); }),
              ExitCode::data);
    if (old)
      setenv("NNKIT_MAX_MEMORY", keep.c_str(), 1);
    else
      unsetenv("NNKIT_MAX_MEMORY");
  }
  rope::Params huge;
  huge.rotary_dim = kMax - 1;
  EXPECT_EQ(code_of([&] { (void)rope::frequencies(huge, 1); }), ExitCode::data);
}

TEST(SizeLimits, PlotRangeParser) {
  EXPECT_EQ(plot::parse_range("0,1"), (std::pair<double, double>{0, 1}));
  EXPECT_EQ(plot::parse_range("-2.5,1e3"), (std::pair<double, double>{-2.5, 1000}));
  for (const char* bad : {"", "1", "1,", ",1", "1,1", "2,1", "a,b", "1,2,3"})
    EXPECT_EQ(code_of([&] { (void)plot::parse_range(bad); }), ExitCode::usage) << bad;
  for (const char* bad : {"-inf,0", "0,inf", "nan,1", "-1e308,1e308"})
    EXPECT_EQ(code_of([&] { (void)plot::parse_range(bad); }), ExitCode::data) << bad;
}

TEST(SizeLimits, TicksOfRangesFarFromZeroEnd) {
  // Found by fuzz_plot_options: past 2^53 steps from 0, k + 1 == k and the
  // loop never ended (a hang of tensor-plot on such float64 data).
  const auto t = plot::nice_ticks(1e300, 1e300 * (1 + 4e-16), 5);
  EXPECT_GE(t.size(), 1u);
  EXPECT_LE(t.size(), 1000u);
  const auto near = plot::nice_ticks(1e17, 1e17 + 1000, 5);
  EXPECT_LE(near.size(), 1000u);
  EXPECT_EQ(plot::nice_ticks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  // A subnormal span: the step's power of ten underflowed to 0.
  EXPECT_GT(plot::nice_step(0, 5e-324, 5), 0);
}

TEST(SizeLimits, TickLabelsOfDegenerateSteps) {
  // Found by fuzz_plot_options: a step of 0 made an infinite exponent cast to int.
  EXPECT_FALSE(plot::tick_label(1.5, 0).empty());
  EXPECT_FALSE(plot::tick_label(1e-300, 5e-324).empty());
  EXPECT_EQ(plot::tick_label(std::numeric_limits<double>::infinity(), 1), "inf");
  EXPECT_EQ(plot::tick_label(0.25, 0.05), "0.25");
}

TEST(SizeLimits, CanvasClipsFarAwayShapes) {
  // Found by fuzz_plot_options: coordinates beyond int were cast before clipping.
  plot::Canvas c(16, 16, {255, 255, 255});
  const double inf = std::numeric_limits<double>::infinity();
  c.fill_rect(-1e300, 2, 1e300, 4, {0, 0, 0});
  c.fill_rect(0, 0, inf, 1, {0, 0, 0});
  c.line(-1e300, 0, 1e300, 8, {0, 0, 0}, 2);
  c.disc(1e300, -1e300, 3, {0, 0, 0});
  EXPECT_EQ(c.at(5, 3), (plot::Rgb{0, 0, 0}));
}

TEST(SizeLimits, DenseScatterInTheSmallestPicture) {
  // Found by fuzz_plot_options: in a 16x16 picture the plot frame passes the
  // picture's edge and the density shading wrote past its buffer.
  plot::Options o;
  o.width = o.height = 16;
  o.density = plot::Density::on;
  o.title = "a title wider than the picture";
  std::vector<float> v;
  for (int i = 0; i < 200; ++i) v.push_back(static_cast<float>(i % 17) - 8);
  const std::vector<NamedTensor> series{{"s", Tensor::from_vector<float>({100, 2}, v)}};
  const plot::Figure f = plot::scatter(series, o);
  EXPECT_EQ(f.image.shape(), (Shape{16, 16, 3}));
}

TEST(SizeLimits, PatchSizesWhoseSquareOverflows) {
  const Tensor empty(DType::f4, {0, 0, 3});
  EXPECT_EQ(code_of([&] { (void)vq::patchify(empty, std::int64_t{1} << 40, "x"); }), ExitCode::data);
  const Tensor idx(DType::f4, {2, 2, 4});
  EXPECT_EQ(code_of([&] { (void)vq::unpatchify(idx, kMax, "x"); }), ExitCode::data);
  EXPECT_EQ(code_of([&] { (void)vq::unpatchify(idx, 3037000500, "x"); }), ExitCode::data);
  EXPECT_EQ(vq::unpatchify(idx, 2, "x").shape(), (Shape{4, 4, 1}));
}

TEST(SizeLimits, HeatmapOfDegenerateRanges) {
  // Found by fuzz_plot_options: a colour-bar tick at an infinite position was
  // cast to int. Subnormal and far-from-zero ranges in the smallest picture.
  plot::Options o;
  o.width = o.height = 16;
  for (const std::vector<double>& v : {std::vector<double>{0, 5e-324, 0, 5e-324}, std::vector<double>{1e300, 1e300, 1e300, 1.0000000000000002e300},
                                       std::vector<double>{-1e307, 1e307, 0, 1}}) {
    const NamedTensor m{"m", Tensor::from_vector<double>({2, 2}, v)};
    const plot::Figure f = plot::heatmap(m, o);
    EXPECT_EQ(f.image.shape(), (Shape{16, 16, 3}));
  }
}
