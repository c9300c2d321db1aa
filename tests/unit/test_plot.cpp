// nnkit::plot: rendered pixels checked against the data that made them
// (points, bar heights, colour-map cells, exact grid tiles), nice ticks, the
// colour maps' published end points, and bad input refused as data errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "nnkit/formats/png.hpp"
#include "nnkit/ops/plot.hpp"
#include "error_of.hpp"

using namespace nnkit;
using nnkit::testing::code_of;
using plot::Rgb;

namespace {

Rgb pixel(const Tensor& img, int x, int y) {
  const auto c = img.dim(2);
  const std::uint8_t* p = img.data<std::uint8_t>() + (static_cast<std::int64_t>(y) * img.dim(1) + x) * c;
  return {p[0], p[1], p[2]};
}

NamedTensor points(const std::vector<float>& xy, const std::string& name = "p") {
  return {name, Tensor::from_vector<float>({static_cast<std::int64_t>(xy.size() / 2), 2}, xy)};
}


}  // namespace

TEST(PlotTicks, NiceNumbers) {
  EXPECT_EQ(plot::nice_ticks(0, 1, 5), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
  const auto t = plot::nice_ticks(-3.7, 12.2, 5);
  ASSERT_GE(t.size(), 2u);
  const double step = t[1] - t[0];
  EXPECT_DOUBLE_EQ(step, 5);
  EXPECT_DOUBLE_EQ(t.front(), 0);
  for (double v : t) EXPECT_NEAR(std::remainder(v, step), 0, 1e-9);
  for (double lo : {-1e6, -2.5, 0.001, 17.0})
    for (double span : {0.003, 1.0, 7.0, 450.0, 3e7}) {
      const double s = plot::nice_step(lo, lo + span, 6);
      const double m = s / std::pow(10, std::floor(std::log10(s)));
      EXPECT_TRUE(std::fabs(m - 1) < 1e-9 || std::fabs(m - 2) < 1e-9 || std::fabs(m - 5) < 1e-9) << s;
      EXPECT_GE(plot::nice_ticks(lo, lo + span, 6).size(), 2u) << lo << " " << span;
    }
  EXPECT_EQ(plot::tick_label(0.25, 0.05), "0.25");
  EXPECT_EQ(plot::tick_label(-3, 1), "-3");
  EXPECT_EQ(plot::tick_label(1e-17, 0.1), "0.0");
  EXPECT_EQ(plot::tick_label(2e6, 1e6), "2e+06");
}

TEST(PlotColor, PublishedEndPoints) {
  // matplotlib's first and last entries (x 255, rounded).
  EXPECT_EQ(plot::colormap(plot::ColorMap::viridis, 0), (Rgb{68, 1, 84}));
  EXPECT_EQ(plot::colormap(plot::ColorMap::viridis, 1), (Rgb{253, 231, 37}));
  EXPECT_EQ(plot::colormap(plot::ColorMap::magma, 0), (Rgb{0, 0, 4}));
  EXPECT_EQ(plot::colormap(plot::ColorMap::magma, 1), (Rgb{252, 253, 191}));
  EXPECT_EQ(plot::colormap(plot::ColorMap::coolwarm, 0), (Rgb{59, 76, 192}));
  EXPECT_EQ(plot::colormap(plot::ColorMap::coolwarm, 1), (Rgb{180, 4, 38}));
  EXPECT_EQ(plot::colormap(plot::ColorMap::gray, 0.5), (Rgb{128, 128, 128}));
  // viridis at entry 128 of 255 is (0.127568, 0.566949, 0.550556).
  const Rgb mid = plot::colormap(plot::ColorMap::viridis, 128.0 / 255);
  EXPECT_NEAR(mid.r, 0.127568 * 255, 1.5);
  EXPECT_NEAR(mid.g, 0.566949 * 255, 1.5);
  EXPECT_NEAR(mid.b, 0.550556 * 255, 1.5);
  EXPECT_EQ(plot::colormap(plot::ColorMap::viridis, -4), plot::colormap(plot::ColorMap::viridis, 0));
  EXPECT_EQ(plot::series_color(0), (Rgb{31, 119, 180}));
  EXPECT_THROW(plot::parse_colormap("jet"), Error);
}

TEST(PlotCanvas, DiscCoversItsCentreAndNothingFar) {
  plot::Canvas c(40, 30, {255, 255, 255});
  c.disc(10.5, 12.5, 3, {255, 0, 0});
  EXPECT_EQ(c.at(10, 12), (Rgb{255, 0, 0}));
  for (int y = 0; y < 30; ++y)
    for (int x = 0; x < 40; ++x)
      if (std::hypot(x + 0.5 - 10.5, y + 0.5 - 12.5) > 4.5) { EXPECT_EQ(c.at(x, y), (Rgb{255, 255, 255})) << x << "," << y; }
}

TEST(PlotCanvas, LinesAreAntiAliased) {
  plot::Canvas c(50, 50, {255, 255, 255});
  c.line(5, 5, 45, 25, {0, 0, 0}, 1);
  // On the line: dark; half a pixel off it: partly covered; far: untouched.
  EXPECT_LT(c.at(25, 15).r, 60);
  int partial = 0;
  for (int y = 0; y < 50; ++y)
    for (int x = 0; x < 50; ++x) partial += c.at(x, y).r > 0 && c.at(x, y).r < 255;
  EXPECT_GT(partial, 20);
  EXPECT_EQ(c.at(25, 30), (Rgb{255, 255, 255}));
}

TEST(PlotCanvas, TextInks) {
  plot::Canvas c(60, 20, {255, 255, 255});
  c.text(2, 2, "0.5", {0, 0, 0});
  int ink = 0;
  for (int y = 0; y < 20; ++y)
    for (int x = 0; x < 60; ++x) ink += c.at(x, y) == Rgb{0, 0, 0};
  EXPECT_GT(ink, 10);
  EXPECT_EQ(plot::Canvas::text_width("abc"), 17);
}

TEST(PlotScatter, PointLandsWhereItShould) {
  plot::Options opt;
  opt.density = plot::Density::off;
  const plot::Figure fig = plot::scatter({points({0, 0, 10, 5, 3, 4})}, opt);
  ASSERT_EQ(fig.image.shape(), (Shape{480, 640, 3}));
  const Rgb blue = plot::series_color(0);
  const int x = static_cast<int>(fig.frame.px(3)), y = static_cast<int>(fig.frame.py(4));
  EXPECT_EQ(pixel(fig.image, x, y), blue);
  // Nothing blue more than a few pixels from the three points.
  const double pts[3][2] = {{0, 0}, {10, 5}, {3, 4}};
  for (int yy = 0; yy < 480; ++yy)
    for (int xx = 0; xx < 640; ++xx) {
      if (pixel(fig.image, xx, yy) != blue) continue;
      double best = 1e9;
      for (const auto& p : pts) best = std::min(best, std::hypot(xx + 0.5 - fig.frame.px(p[0]), yy + 0.5 - fig.frame.py(p[1])));
      EXPECT_LT(best, 3.5) << xx << "," << yy;
    }
}

TEST(PlotScatter, LabelsPickColours) {
  plot::Options opt;
  // (The legend sits in the top-right corner: the labelled point is elsewhere.)
  const Tensor labels = Tensor::from_vector<std::int64_t>({3}, {0, 3, 0});
  const plot::Figure fig = plot::scatter({points({0, 0, 0.5f, 0.2f, 1, 1})}, opt, &labels);
  EXPECT_EQ(pixel(fig.image, static_cast<int>(fig.frame.px(0.5)), static_cast<int>(fig.frame.py(0.2))),
            plot::series_color(3));
  EXPECT_EQ(pixel(fig.image, static_cast<int>(fig.frame.px(0)), static_cast<int>(fig.frame.py(0))), plot::series_color(0));
  const Tensor wrong = Tensor::from_vector<std::int64_t>({2}, {0, 1});
  EXPECT_EQ(code_of([&] { plot::scatter({points({0, 0, 0.5f, 0.2f, 1, 1})}, opt, &wrong); }), ExitCode::data);
}

TEST(PlotScatter, DensityShadesCrowdedPixels) {
  std::vector<float> xy;
  for (int i = 0; i < 2000; ++i) xy.insert(xy.end(), {0.f, 0.f});
  xy.insert(xy.end(), {1.f, 1.f});
  plot::Options opt;
  opt.density = plot::Density::on;
  const plot::Figure fig = plot::scatter({points(xy)}, opt);
  const Rgb crowded = pixel(fig.image, static_cast<int>(fig.frame.px(0)), static_cast<int>(fig.frame.py(0)));
  const Rgb lone = pixel(fig.image, static_cast<int>(fig.frame.px(1)), static_cast<int>(fig.frame.py(1)));
  EXPECT_EQ(crowded, plot::series_color(0));  // full opacity at the maximum
  EXPECT_GT(lone.r, crowded.r);               // a single point is fainter
}

TEST(PlotHistogram, BarHeightsAreProportionalToCounts) {
  // Bins [0,1) [1,2) [2,3] with 1, 2 and 4 values.
  const Tensor v = Tensor::from_vector<float>({7}, {0.5f, 1.5f, 1.2f, 2.1f, 2.5f, 2.9f, 3.0f});
  plot::Options opt;
  opt.bins = 3;
  opt.range = std::pair{0.0, 3.0};
  const plot::Figure fig = plot::histogram({{"v", v}}, opt);
  const plot::Frame& f = fig.frame;
  const Rgb blue = plot::series_color(0);
  double height[3];
  for (int b = 0; b < 3; ++b) {
    const int x = static_cast<int>(f.px(b + 0.5));
    int n = 0;
    for (int y = 0; y < fig.image.dim(0); ++y) n += pixel(fig.image, x, y) == blue;
    height[b] = n;
    EXPECT_NEAR(n, f.bottom - f.py(b == 0 ? 1 : b == 1 ? 2 : 4), 1.0);
  }
  EXPECT_NEAR(height[1] / height[0], 2, 0.05);
  EXPECT_NEAR(height[2] / height[0], 4, 0.1);
}

TEST(PlotHistogram, LogAxisAndBadInput) {
  const Tensor v = Tensor::from_vector<float>({3}, {1, 2, 2});
  plot::Options opt;
  opt.log_y = true;
  EXPECT_EQ(plot::histogram({{"v", v}}, opt).frame.log_y, true);
  const Tensor nan = Tensor::from_vector<float>({2}, {NAN, INFINITY});
  EXPECT_EQ(code_of([&] { plot::histogram({{"n", nan}}, opt); }), ExitCode::data);
  EXPECT_EQ(code_of([&] { plot::histogram({{"e", Tensor(DType::f4, {0})}}, opt); }), ExitCode::data);
  opt.range = std::pair{0.0, INFINITY};
  EXPECT_EQ(code_of([&] { plot::histogram({{"v", v}}, opt); }), ExitCode::data);
}

TEST(PlotHeatmap, CellsHaveTheirColours) {
  const Tensor m = Tensor::from_vector<float>({2, 3}, {0, 1, 2, 3, 4, 5});
  plot::Options opt;
  const plot::Figure fig = plot::heatmap({"m", m}, opt);
  const plot::Frame& f = fig.frame;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      const int x = static_cast<int>(f.px(j + 0.5)), y = static_cast<int>(f.py(i + 0.5));
      EXPECT_EQ(pixel(fig.image, x, y), plot::colormap(plot::ColorMap::viridis, (i * 3 + j) / 5.0)) << i << j;
    }
  // coolwarm is centred at zero: a zero cell is the map's middle.
  const Tensor d = Tensor::from_vector<float>({1, 3}, {-1, 0, 4});
  opt.cmap = plot::ColorMap::coolwarm;
  const plot::Figure g = plot::heatmap({"d", d}, opt);
  EXPECT_EQ(pixel(g.image, static_cast<int>(g.frame.px(1.5)), static_cast<int>(g.frame.py(0.5))),
            plot::colormap(plot::ColorMap::coolwarm, 0.5));
  EXPECT_EQ(pixel(g.image, static_cast<int>(g.frame.px(0.5)), static_cast<int>(g.frame.py(0.5))),
            plot::colormap(plot::ColorMap::coolwarm, 3.0 / 8));
  EXPECT_EQ(code_of([&] { plot::heatmap({"v", Tensor(DType::f4, {3})}, opt); }), ExitCode::data);
}

TEST(PlotGrid, TilesEqualTheirSourcesExactly) {
  Tensor imgs(DType::u1, {5, 6, 7, 3});
  for (std::int64_t i = 0; i < imgs.numel(); ++i) imgs.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i * 37 + 11);
  plot::Options opt;
  opt.cols = 2;
  opt.title = "tiles";
  const plot::Figure fig = plot::grid({{"imgs", imgs}}, opt);
  ASSERT_EQ(fig.tiles.size(), 5u);
  // Round trip through PNG, as the tool writes it.
  const std::string path = ::testing::TempDir() + "/plot_grid.png";
  {
    Output out = Output::open(path);
    png::write(out, fig.image);
    out.commit();
  }
  Input in = Input::open(path);
  const Tensor back = png::read(in);
  ASSERT_EQ(back.shape(), fig.image.shape());
  for (int k = 0; k < 5; ++k) {
    if (k > 0) { EXPECT_GT(fig.tiles[k][0] + fig.tiles[k][1], 0); }
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 7; ++x)
        for (int c = 0; c < 3; ++c)
          ASSERT_EQ(back.data<std::uint8_t>()[((fig.tiles[k][1] + y) * back.dim(1) + fig.tiles[k][0] + x) * 3 + c],
                    imgs.data<std::uint8_t>()[((k * 6 + y) * 7 + x) * 3 + c]);
  }
  EXPECT_EQ(fig.tiles[1][1], fig.tiles[0][1]);  // two per row
  EXPECT_GT(fig.tiles[2][1], fig.tiles[0][1]);
  std::remove(path.c_str());
}

TEST(PlotGrid, FloatNeedsARangeAndGreyIsRepeated) {
  const Tensor f = Tensor::from_vector<float>({1, 2}, {0, 1});
  plot::Options opt;
  EXPECT_EQ(code_of([&] { plot::grid({{"f", f}}, opt); }), ExitCode::usage);
  opt.range = std::pair{0.0, 1.0};
  opt.gap = 0;
  const plot::Figure fig = plot::grid({{"f", f}}, opt);
  EXPECT_EQ(pixel(fig.image, 1, 0), (Rgb{255, 255, 255}));
  EXPECT_EQ(pixel(fig.image, 0, 0), (Rgb{0, 0, 0}));
  EXPECT_EQ(code_of([&] { plot::grid({{"r5", Tensor(DType::u1, {1, 1, 1, 1, 1})}}, opt); }), ExitCode::data);
}

TEST(PlotLineAndTrajectory, ShapesAndEnds) {
  plot::Options opt;
  const plot::Figure fig = plot::line({{"y", Tensor::from_vector<float>({3}, {0, 1, 0})}}, opt);
  EXPECT_EQ(pixel(fig.image, static_cast<int>(fig.frame.px(1)), static_cast<int>(fig.frame.py(1))), plot::series_color(0));
  EXPECT_EQ(code_of([&] { plot::line({{"y", Tensor(DType::f4, {2, 3})}}, opt); }), ExitCode::data);
  const Tensor path = Tensor::from_vector<float>({2, 1, 2}, {4, 2, 0, 0});
  const plot::Figure t = plot::trajectory({"path", path}, opt);
  EXPECT_EQ(pixel(t.image, static_cast<int>(t.frame.px(0)), static_cast<int>(t.frame.py(0))), plot::series_color(1));
  EXPECT_EQ(code_of([&] { plot::trajectory({"p", Tensor(DType::f4, {4, 2})}, opt); }), ExitCode::data);
  const Tensor allnan = Tensor::from_vector<float>({1, 2}, {NAN, NAN});
  EXPECT_EQ(code_of([&] { plot::scatter({{"n", allnan}}, opt); }), ExitCode::data);
}
