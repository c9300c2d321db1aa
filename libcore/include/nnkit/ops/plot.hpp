// Pictures of tensors: scatter plots, histograms, line plots, heatmaps with a
// colour bar, image grids and trajectories, rendered into an RGB(A) uint8
// [H, W, C] tensor (write it with nnkit::png::write). Everything is drawn here:
// an anti-aliased canvas, a built-in bitmap font, nice ticks and colour maps.
// No files and no options: tools/tensor-plot turns a command line into calls.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nnkit/tensor.hpp"

namespace nnkit::plot {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
  bool operator!=(const Rgb& o) const { return !(*this == o); }
};

// ---------------------------------------------------------------- colours
enum class ColorMap { viridis, magma, gray, coolwarm };
// "viridis", "magma", "gray", "coolwarm"; usage error otherwise.
ColorMap parse_colormap(const std::string& name);
// The colour of t in [0, 1] (clamped; NaN gives the "bad value" grey).
// viridis and magma interpolate every fifth entry of matplotlib's 256-entry
// tables (52 control points; within 1/255 of the full table), coolwarm
// matplotlib's 33 control points of Moreland's diverging map, gray is linear.
Rgb colormap(ColorMap m, double t);
// The colour of series k: matplotlib's ten-colour default cycle ("tab10").
Rgb series_color(std::size_t k);

// "LO,HI" of --range: a usage error when malformed or not LO < HI, a data
// error when not finite (the same as data whose range is not finite).
std::pair<double, double> parse_range(const std::string& s);

// ---------------------------------------------------------------- ticks
// Ticks at multiples of 1, 2 or 5 times a power of ten inside [lo, hi],
// about `target` of them (at least two when lo < hi, at most 1000; just lo
// and hi when the range is too narrow for double to step through).
std::vector<double> nice_ticks(double lo, double hi, int target);
// The step of nice_ticks for the same arguments.
double nice_step(double lo, double hi, int target);
// A tick label with just enough decimals for `step` ("0.25", "-3", "1e+06").
std::string tick_label(double value, double step);

// ---------------------------------------------------------------- canvas
// An RGB raster with coverage-based anti-aliasing: a shape covering a
// fraction f of a pixel blends its colour in with weight f * alpha.
class Canvas {
 public:
  Canvas(int width, int height, Rgb background);
  int width() const { return w_; }
  int height() const { return h_; }
  Rgb at(int x, int y) const;
  void set(int x, int y, Rgb c);
  // Blends c over pixel (x, y) with weight a in [0, 1]; outside is ignored.
  void blend(int x, int y, Rgb c, double a);
  // Pixel (x, y) covers [x, x+1) x [y, y+1); coordinates below are continuous.
  void fill_rect(double x0, double y0, double x1, double y1, Rgb c, double alpha = 1);
  // A segment of the given width with round caps.
  void line(double x0, double y0, double x1, double y1, Rgb c, double width = 1, double alpha = 1);
  void disc(double cx, double cy, double radius, Rgb c, double alpha = 1);
  // Text in the built-in 5x7 font (descenders below), scaled by an integer;
  // (x, y) is the top-left corner. vertical: rotated to read bottom-up.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 1, bool vertical = false);
  static int text_width(const std::string& s, int scale = 1);
  static int text_height(int scale = 1);  // cap height plus descender
  // uint8 [H, W, 3].
  Tensor to_tensor() const;

 private:
  int w_, h_;
  std::vector<std::uint8_t> px_;
};

// ---------------------------------------------------------------- figures
enum class Density { automatic, on, off };

struct Options {
  int width = 640, height = 480;  // pixels (not used by grid: tiles keep their size)
  bool dark = false;              // dark background, light ink
  std::string title, xlabel, ylabel;
  std::optional<double> alpha;    // default: 1, or 0.5 for overlaid histograms
  double point_size = 4;          // scatter disc diameter, pixels
  Density density = Density::automatic;
  int bins = 50;
  // hist: the binned range; heatmap: the colour range; grid: the value range
  // that maps to 0..255 (needed for anything but uint8).
  std::optional<std::pair<double, double>> range;
  bool log_y = false;
  ColorMap cmap = ColorMap::viridis;
  int cols = 0;  // grid columns; 0: about square
  int gap = 2;   // grid pixels between tiles
  double line_width = 1.5;
};

// Where data coordinates land in the picture: the plot area in pixels and
// the data limits it shows (y grows upwards in data, downwards in pixels).
struct Frame {
  double left = 0, top = 0, right = 0, bottom = 0;  // pixels
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;            // data (log10 of y when log_y)
  bool log_y = false;
  double px(double x) const { return left + (x - x0) / (x1 - x0) * (right - left); }
  double py(double y) const;
};

struct Figure {
  Tensor image;                             // uint8 [H, W, 3] (grid: 3 or 4 channels)
  Frame frame;                              // the data area (none for grid)
  std::vector<std::array<int, 2>> tiles;    // grid: top-left x, y of each tile
};

// Each series a NamedTensor: name is its legend label. Shapes are checked and
// wrong ones are data errors naming the series.
// scatter: [N, 2] each; labels (optional, one series only): N integers that
// pick each point's colour.
Figure scatter(const std::vector<NamedTensor>& series, const Options& opt,
               const Tensor* labels = nullptr);
// hist: all values of each input, overlaid; NaN and infinities are skipped.
Figure histogram(const std::vector<NamedTensor>& inputs, const Options& opt);
// line: [N] (y against index) or [N, 2] (x, y) each.
Figure line(const std::vector<NamedTensor>& series, const Options& opt);
// heatmap: a 2-D tensor, row 0 at the top, with a colour bar. coolwarm is
// centred at 0 unless opt.range is given. NaN cells are grey.
Figure heatmap(const NamedTensor& matrix, const Options& opt);
// grid: [H, W], [H, W, C] or [N, H, W, C] images (C 1 to 4), tiled row-major
// with opt.cols columns; uint8 pixels are copied exactly (grey repeated
// into RGB when mixed with colour), other dtypes need opt.range.
Figure grid(const std::vector<NamedTensor>& images, const Options& opt);
// trajectory: [S, N, 2], N paths of S steps; starts and ends marked.
Figure trajectory(const NamedTensor& paths, const Options& opt);

}  // namespace nnkit::plot
