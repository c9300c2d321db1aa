// The figures of nnkit::plot: layout, axes, legends and the six kinds of
// picture, drawn on a Canvas (plot_canvas.cpp) with the colours and ticks of
// plot_color.cpp.
#include "nnkit/ops/plot.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <tuple>

#include "nnkit/memory_limit.hpp"

namespace nnkit::plot {

namespace {

double parse_number(const std::string& s, const std::string& what) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size()) throw_usage(what + " takes numbers, not '" + s + "'");
  return v;
}

}  // namespace

std::pair<double, double> parse_range(const std::string& s) {
  const std::size_t comma = s.find(',');
  if (comma == std::string::npos) throw_usage("--range takes LO,HI (e.g. 0,1), not '" + s + "'");
  const double lo = parse_number(s.substr(0, comma), "--range");
  const double hi = parse_number(s.substr(comma + 1), "--range");
  if (!std::isfinite(lo) || !std::isfinite(hi) || !std::isfinite(hi - lo))
    throw_data("--range " + s + " is not finite");
  if (!(lo < hi)) throw_usage("--range needs LO < HI, not '" + s + "'");
  return {lo, hi};
}

double Frame::py(double y) const {
  const double v = log_y ? std::log10(y) : y;
  return bottom - (v - y0) / (y1 - y0) * (bottom - top);
}

namespace {

constexpr int text_h = 9;  // Canvas::text_height(1)
constexpr int tick_len = 4;

struct Theme {
  Rgb bg, ink, grid;
};

Theme theme(const Options& opt) {
  if (opt.dark) return {{20, 20, 24}, {225, 225, 225}, {58, 58, 64}};
  return {{255, 255, 255}, {30, 30, 30}, {228, 228, 228}};
}

std::vector<double> as_doubles(const Tensor& t) {
  const Tensor d = t.dtype() == DType::f8 ? t : t.astype(DType::f8, false);
  const double* p = d.data<double>();
  return std::vector<double>(p, p + d.numel());
}

std::string quoted(const std::string& name) { return "'" + printable(name) + "'"; }

void require_nonempty(const NamedTensor& nt) {
  if (nt.tensor.numel() == 0)
    throw_data(quoted(nt.name) + " is empty (shape " + shape_str(nt.tensor.shape()) + "): nothing to plot");
}

void check_options(const Options& opt) {
  if (opt.width < 1 || opt.height < 1) throw_usage("the picture needs a positive width and height");
  if (opt.alpha && !(*opt.alpha > 0 && *opt.alpha <= 1)) throw_usage("alpha must be in (0, 1]");
  if (!(opt.point_size > 0)) throw_usage("the point size must be positive");
  if (opt.range) {
    const auto [lo, hi] = *opt.range;
    if (!std::isfinite(lo) || !std::isfinite(hi) || !std::isfinite(hi - lo))
      throw_data("the range " + tick_label(lo, 1) + ", " + tick_label(hi, 1) + " is not finite");
    if (!(lo < hi)) throw_usage("the range needs LO < HI");
  }
}

// Data limits [lo, hi] of finite values, widened by `pad` of the span; a
// single value gets a unit-wide window. Data error when the span overflows.
std::pair<double, double> padded(double lo, double hi, double pad) {
  if (lo == hi) {
    const double w = std::max(0.5, std::fabs(lo) * 0.05);
    lo -= w;
    hi += w;
  } else {
    const double s = (hi - lo) * pad;
    lo -= s;
    hi += s;
  }
  if (!std::isfinite(lo) || !std::isfinite(hi) || !std::isfinite(hi - lo))
    throw_data("the data range is not finite (values too large to plot)");
  return {lo, hi};
}

struct Limits {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

struct LegendEntry {
  std::string label;
  Rgb color;
};

// The margins around the plot area and its axes.
struct Layout {
  Frame frame;
  std::vector<double> xticks, yticks;
  double xstep = 1, ystep = 1;
  bool y_is_log = false;
  double xtick_offset = 0, ytick_offset = 0;  // heatmap: ticks at cell centres
};

std::string y_tick_text(const Layout& L, double v) {
  return L.y_is_log ? tick_label(std::pow(10.0, v), std::pow(10.0, v)) : tick_label(v, L.ystep);
}

// Places the plot area in a width x height picture for data limits x0..x1
// and y0..y1 (log10 when log_y), leaving `extra_right` pixels for a colour bar.
Layout layout(const Options& opt, double x0, double x1, double y0, double y1, bool log_y,
              int extra_right = 0) {
  Layout L;
  Frame& f = L.frame;
  f.x0 = x0, f.x1 = x1, f.y0 = y0, f.y1 = y1, f.log_y = log_y;
  L.y_is_log = log_y;
  const double top = opt.title.empty() ? 12 : 10 + Canvas::text_height(2) + 10;
  const double bottom = opt.height - (tick_len + 4 + text_h + (opt.xlabel.empty() ? 0 : 8 + text_h) + 10);
  f.top = top;
  f.bottom = std::max(top + 8, bottom);
  const int ytarget = std::max(2, static_cast<int>((f.bottom - f.top) / 50));
  if (log_y) {
    for (double k = std::ceil(y0); k <= std::floor(y1); ++k) L.yticks.push_back(k);
    L.ystep = 1;
  } else {
    L.ystep = nice_step(std::min(y0, y1), std::max(y0, y1), ytarget);
    L.yticks = nice_ticks(std::min(y0, y1), std::max(y0, y1), ytarget);
  }
  int widest = 0;
  for (double v : L.yticks) widest = std::max(widest, Canvas::text_width(y_tick_text(L, v)));
  f.left = 8 + (opt.ylabel.empty() ? 0 : text_h + 8) + widest + tick_len + 4;
  f.right = std::max(f.left + 8, static_cast<double>(opt.width - 24 - extra_right));
  const int xtarget = std::max(2, static_cast<int>((f.right - f.left) / 90));
  L.xstep = nice_step(x0, x1, xtarget);
  L.xticks = nice_ticks(x0, x1, xtarget);
  return L;
}

void draw_grid_lines(Canvas& c, const Layout& L, const Theme& th) {
  const Frame& f = L.frame;
  for (double v : L.xticks) {
    const double x = std::floor(f.px(v + L.xtick_offset));
    if (x > f.left && x < f.right - 1) c.fill_rect(x, f.top, x + 1, f.bottom, th.grid);
  }
  for (double v : L.yticks) {
    const double y = std::floor(L.y_is_log ? f.bottom - (v - f.y0) / (f.y1 - f.y0) * (f.bottom - f.top)
                                           : f.py(v + L.ytick_offset));
    if (y > f.top && y < f.bottom - 1) c.fill_rect(f.left, y, f.right, y + 1, th.grid);
  }
}

void draw_axes(Canvas& c, const Layout& L, const Options& opt, const Theme& th) {
  const Frame& f = L.frame;
  const double l = std::floor(f.left), r = std::ceil(f.right), t = std::floor(f.top), b = std::ceil(f.bottom);
  c.fill_rect(l - 1, t - 1, r + 1, t, th.ink);
  c.fill_rect(l - 1, b, r + 1, b + 1, th.ink);
  c.fill_rect(l - 1, t - 1, l, b + 1, th.ink);
  c.fill_rect(r, t - 1, r + 1, b + 1, th.ink);
  for (double v : L.xticks) {
    const double x = std::floor(f.px(v + L.xtick_offset));
    if (x < l - 0.5 || x > r + 0.5) continue;
    c.fill_rect(x, b + 1, x + 1, b + 1 + tick_len, th.ink);
    const std::string s = tick_label(v, L.xstep);
    c.text(static_cast<int>(x) - Canvas::text_width(s) / 2, static_cast<int>(b) + 1 + tick_len + 3, s, th.ink);
  }
  for (double v : L.yticks) {
    const double y = std::floor(L.y_is_log ? f.bottom - (v - f.y0) / (f.y1 - f.y0) * (f.bottom - f.top)
                                           : f.py(v + L.ytick_offset));
    if (y < t - 0.5 || y > b + 0.5) continue;
    c.fill_rect(l - 1 - tick_len, y, l - 1, y + 1, th.ink);
    const std::string s = y_tick_text(L, v);
    c.text(static_cast<int>(l) - 1 - tick_len - 3 - Canvas::text_width(s), static_cast<int>(y) - 3, s, th.ink);
  }
  if (!opt.title.empty()) {
    const int w = Canvas::text_width(opt.title, 2);
    const int x = std::max(4, static_cast<int>((f.left + f.right) / 2) - w / 2);
    c.text(std::min(x, std::max(4, c.width() - w - 4)), 10, opt.title, th.ink, 2);
  }
  if (!opt.xlabel.empty()) {
    const int w = Canvas::text_width(opt.xlabel);
    c.text(static_cast<int>((f.left + f.right) / 2) - w / 2, static_cast<int>(b) + 1 + tick_len + 3 + text_h + 8,
           opt.xlabel, th.ink);
  }
  if (!opt.ylabel.empty()) {
    const int h = Canvas::text_width(opt.ylabel);
    c.text(8, static_cast<int>((f.top + f.bottom) / 2) - h / 2, opt.ylabel, th.ink, 1, true);
  }
}

// A box of coloured swatches and labels in the top-right corner of the plot.
void draw_legend(Canvas& c, const Frame& f, const std::vector<LegendEntry>& entries, const Theme& th,
                 bool lines) {
  if (entries.empty()) return;
  int widest = 0;
  for (const auto& e : entries) widest = std::max(widest, Canvas::text_width(e.label));
  const int row = text_h + 5, w = widest + 30, h = static_cast<int>(entries.size()) * row + 8;
  const int x = static_cast<int>(f.right) - w - 8, y = static_cast<int>(f.top) + 8;
  c.fill_rect(x, y, x + w, y + h, th.bg, 0.9);
  c.fill_rect(x, y, x + w, y + 1, th.grid);
  c.fill_rect(x, y + h - 1, x + w, y + h, th.grid);
  c.fill_rect(x, y, x + 1, y + h, th.grid);
  c.fill_rect(x + w - 1, y, x + w, y + h, th.grid);
  for (std::size_t k = 0; k < entries.size(); ++k) {
    const int ty = y + 5 + static_cast<int>(k) * row;
    if (lines)
      c.line(x + 6, ty + 3.5, x + 20, ty + 3.5, entries[k].color, 2);
    else
      c.disc(x + 13, ty + 3.5, 3.5, entries[k].color);
    c.text(x + 24, ty, entries[k].label, th.ink);
  }
}

std::vector<LegendEntry> series_legend(const std::vector<NamedTensor>& series) {
  std::vector<LegendEntry> out;
  if (series.size() < 2) return out;
  for (std::size_t k = 0; k < series.size(); ++k) out.push_back({series[k].name, series_color(k)});
  return out;
}

// Frame for points: their finite limits, padded 5 %.
Layout point_layout(const Limits& x, const Limits& y, const Options& opt) {
  const auto [x0, x1] = padded(x.lo, x.hi, 0.05);
  const auto [y0, y1] = padded(y.lo, y.hi, 0.05);
  return layout(opt, x0, x1, y0, y1, false);
}

Figure finish(Canvas& c, const Layout& L) {
  Figure fig;
  fig.image = c.to_tensor();
  fig.frame = L.frame;
  return fig;
}

// Points outside the plot area (the padding keeps every finite one in) are skipped.
bool inside(const Frame& f, double x, double y, double margin) {
  return x >= f.left - margin && x <= f.right + margin && y >= f.top - margin && y <= f.bottom + margin;
}

}  // namespace

// ---------------------------------------------------------------- scatter
Figure scatter(const std::vector<NamedTensor>& series, const Options& opt, const Tensor* labels) {
  check_options(opt);
  if (series.empty()) throw_usage("scatter needs at least one series");
  std::vector<std::vector<double>> pts;
  Limits lx, ly;
  std::int64_t total = 0;
  for (const auto& s : series) {
    const Tensor& t = s.tensor;
    if (t.ndim() != 2 || t.dim(1) != 2)
      throw_data("scatter wants [N, 2] points; " + quoted(s.name) + " has shape " + shape_str(t.shape()));
    require_nonempty(s);
    pts.push_back(as_doubles(t));
    const auto& p = pts.back();
    for (std::size_t i = 0; i + 1 < p.size(); i += 2)
      if (std::isfinite(p[i]) && std::isfinite(p[i + 1])) lx.add(p[i]), ly.add(p[i + 1]);
    total += t.dim(0);
  }
  if (lx.empty()) throw_data("no finite points to plot (all NaN or infinite)");
  std::vector<std::int64_t> label;
  if (labels) {
    if (series.size() != 1) throw_usage("labels colour one series; give one input with them");
    if (labels->numel() != series[0].tensor.dim(0))
      throw_data("the labels have " + std::to_string(labels->numel()) + " values for " +
                 std::to_string(series[0].tensor.dim(0)) + " points");
    for (double v : as_doubles(*labels)) {
      if (!std::isfinite(v) || v != std::round(v) || std::fabs(v) > 1e15)
        throw_data("labels must be integers, not " + tick_label(v, 1e-6));
      label.push_back(static_cast<std::int64_t>(v));
    }
  }
  auto color_of = [&](std::size_t s, std::size_t i) {
    if (label.empty()) return series_color(s);
    return series_color(static_cast<std::size_t>(((label[i] % 10) + 10) % 10));
  };

  const Theme th = theme(opt);
  Canvas c(opt.width, opt.height, th.bg);
  Layout L = point_layout(lx, ly, opt);
  draw_grid_lines(c, L, th);
  const Frame& f = L.frame;
  const double r = opt.point_size / 2;
  const double area = (f.right - f.left) * (f.bottom - f.top);
  const bool dense = opt.density == Density::on ||
                     (opt.density == Density::automatic && total * 3.14159 * r * r > 2 * area);
  const double alpha = opt.alpha.value_or(1.0);
  if (dense) {
    // Density shading: a 2-D histogram at pixel resolution, each pixel in the
    // mean colour of its points and more opaque the more points it holds (log).
    const int w = c.width(), h = c.height();
    const std::int64_t pixels = std::int64_t{w} * h;
    const std::string what = "the density shading of " + std::to_string(w) + "x" + std::to_string(h) + " pixels";
    std::vector<float> count = make_buffer<float>(pixels, what), sr = make_buffer<float>(pixels, what),
                       sg = make_buffer<float>(pixels, what), sb = make_buffer<float>(pixels, what);
    for (std::size_t s = 0; s < pts.size(); ++s)
      for (std::size_t i = 0; i + 1 < pts[s].size(); i += 2) {
        const double x = f.px(pts[s][i]), y = f.py(pts[s][i + 1]);
        if (!(x >= f.left && x < f.right && y >= f.top && y < f.bottom)) continue;
        if (!(x >= 0 && x < w && y >= 0 && y < h)) continue;  // a tiny picture's frame may pass its edges
        const std::size_t k = static_cast<std::size_t>(y) * w + static_cast<std::size_t>(x);
        const Rgb col = color_of(s, i / 2);
        count[k] += 1;
        sr[k] += col.r, sg[k] += col.g, sb[k] += col.b;
      }
    const float most = *std::max_element(count.begin(), count.end());
    const double norm = std::log1p(std::max(1.0f, most));
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const std::size_t k = static_cast<std::size_t>(y) * w + x;
        if (count[k] == 0) continue;
        const float n = count[k];
        const Rgb mean{static_cast<std::uint8_t>(sr[k] / n + 0.5f), static_cast<std::uint8_t>(sg[k] / n + 0.5f),
                       static_cast<std::uint8_t>(sb[k] / n + 0.5f)};
        c.blend(x, y, mean, alpha * (0.2 + 0.8 * std::log1p(n) / norm));
      }
  } else {
    for (std::size_t s = 0; s < pts.size(); ++s)
      for (std::size_t i = 0; i + 1 < pts[s].size(); i += 2) {
        const double x = f.px(pts[s][i]), y = f.py(pts[s][i + 1]);
        if (inside(f, x, y, 0)) c.disc(x, y, r, color_of(s, i / 2), alpha);
      }
  }
  draw_axes(c, L, opt, th);
  std::vector<LegendEntry> legend = series_legend(series);
  if (!label.empty()) {
    std::vector<std::int64_t> distinct(label);
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    // Ten colours: more labels than that would repeat them in the legend.
    for (std::size_t k = 0; k < distinct.size() && k < 10; ++k)
      legend.push_back({"label " + std::to_string(distinct[k]),
                        series_color(static_cast<std::size_t>(((distinct[k] % 10) + 10) % 10))});
    if (distinct.size() > 10) legend.push_back({"(" + std::to_string(distinct.size() - 10) + " more)", th.grid});
  }
  draw_legend(c, f, legend, th, false);
  return finish(c, L);
}

// ---------------------------------------------------------------- histogram
Figure histogram(const std::vector<NamedTensor>& inputs, const Options& opt) {
  check_options(opt);
  if (inputs.empty()) throw_usage("hist needs at least one input");
  if (opt.bins < 1) throw_usage("hist needs at least one bin");
  std::vector<std::vector<double>> values;
  Limits all;
  for (const auto& in : inputs) {
    require_nonempty(in);
    std::vector<double> v = as_doubles(in.tensor);
    v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
    if (v.empty()) throw_data(quoted(in.name) + " has no finite values (all NaN or infinite)");
    for (double x : v) all.add(x);
    values.push_back(std::move(v));
  }
  double lo, hi;
  if (opt.range) {
    std::tie(lo, hi) = *opt.range;
  } else {
    std::tie(lo, hi) = all.lo == all.hi ? padded(all.lo, all.hi, 0) : std::pair{all.lo, all.hi};
    if (!std::isfinite(hi - lo)) throw_data("the data range is not finite (values too large to plot)");
  }
  // numpy's rule: bins are half-open except the last, which includes hi.
  const int bins = opt.bins;
  std::vector<std::vector<std::int64_t>> counts(values.size(), std::vector<std::int64_t>(bins, 0));
  std::int64_t most = 0;
  for (std::size_t s = 0; s < values.size(); ++s) {
    for (double x : values[s]) {
      if (x < lo || x > hi) continue;
      const auto b = std::min<std::int64_t>(bins - 1, static_cast<std::int64_t>((x - lo) / (hi - lo) * bins));
      ++counts[s][static_cast<std::size_t>(std::max<std::int64_t>(0, b))];
    }
    most = std::max(most, *std::max_element(counts[s].begin(), counts[s].end()));
  }
  Options o = opt;
  if (o.ylabel.empty()) o.ylabel = "count";
  double y0 = 0, y1 = std::max<double>(1, static_cast<double>(most)) * 1.05;
  if (opt.log_y) {
    // Counts of one sit a little above the bottom of the log axis.
    y0 = std::log10(0.5);
    y1 = std::log10(std::max<double>(1, static_cast<double>(most))) + 0.15;
  }
  const Theme th = theme(o);
  Canvas c(o.width, o.height, th.bg);
  Layout L = layout(o, lo, hi, y0, y1, opt.log_y);
  draw_grid_lines(c, L, th);
  const Frame& f = L.frame;
  const double alpha = opt.alpha.value_or(values.size() > 1 ? 0.5 : 1.0);
  for (std::size_t s = 0; s < counts.size(); ++s)
    for (int b = 0; b < bins; ++b) {
      if (counts[s][b] == 0) continue;
      const double xa = f.px(lo + (hi - lo) * b / bins), xb = f.px(lo + (hi - lo) * (b + 1) / bins);
      c.fill_rect(xa, f.py(static_cast<double>(counts[s][b])), xb, f.bottom, series_color(s), alpha);
    }
  draw_axes(c, L, o, th);
  draw_legend(c, f, series_legend(inputs), th, false);
  return finish(c, L);
}

// ---------------------------------------------------------------- line
Figure line(const std::vector<NamedTensor>& series, const Options& opt) {
  check_options(opt);
  if (series.empty()) throw_usage("line needs at least one series");
  std::vector<std::vector<double>> xs, ys;
  Limits lx, ly;
  for (const auto& s : series) {
    const Tensor& t = s.tensor;
    const bool pairs = t.ndim() == 2 && t.dim(1) == 2;
    if (t.ndim() != 1 && !pairs)
      throw_data("line wants [N] values or [N, 2] points; " + quoted(s.name) + " has shape " + shape_str(t.shape()));
    require_nonempty(s);
    const std::vector<double> v = as_doubles(t);
    std::vector<double> x, y;
    for (std::size_t i = 0; i < (pairs ? v.size() / 2 : v.size()); ++i) {
      x.push_back(pairs ? v[2 * i] : static_cast<double>(i));
      y.push_back(pairs ? v[2 * i + 1] : v[i]);
      if (std::isfinite(x.back()) && std::isfinite(y.back())) lx.add(x.back()), ly.add(y.back());
    }
    xs.push_back(std::move(x));
    ys.push_back(std::move(y));
  }
  if (lx.empty()) throw_data("no finite points to plot (all NaN or infinite)");
  const Theme th = theme(opt);
  Canvas c(opt.width, opt.height, th.bg);
  Layout L = point_layout(lx, ly, opt);
  draw_grid_lines(c, L, th);
  const Frame& f = L.frame;
  const double alpha = opt.alpha.value_or(1.0);
  for (std::size_t s = 0; s < xs.size(); ++s) {
    const Rgb col = series_color(s);
    // A NaN or infinity breaks the line; a point with no finite neighbour is a dot.
    for (std::size_t i = 0; i < xs[s].size(); ++i) {
      const bool ok = std::isfinite(xs[s][i]) && std::isfinite(ys[s][i]);
      const bool next = i + 1 < xs[s].size() && std::isfinite(xs[s][i + 1]) && std::isfinite(ys[s][i + 1]);
      const bool prev = i > 0 && std::isfinite(xs[s][i - 1]) && std::isfinite(ys[s][i - 1]);
      if (ok && next)
        c.line(f.px(xs[s][i]), f.py(ys[s][i]), f.px(xs[s][i + 1]), f.py(ys[s][i + 1]), col, opt.line_width, alpha);
      else if (ok && !prev)
        c.disc(f.px(xs[s][i]), f.py(ys[s][i]), std::max(1.5, opt.line_width), col, alpha);
    }
  }
  draw_axes(c, L, opt, th);
  draw_legend(c, f, series_legend(series), th, true);
  return finish(c, L);
}

// ---------------------------------------------------------------- heatmap
Figure heatmap(const NamedTensor& matrix, const Options& opt) {
  check_options(opt);
  const Tensor& t = matrix.tensor;
  if (t.ndim() != 2)
    throw_data("heatmap wants a 2-D tensor [H, W]; " + quoted(matrix.name) + " has shape " + shape_str(t.shape()));
  require_nonempty(matrix);
  const std::int64_t rows = t.dim(0), cols = t.dim(1);
  const std::vector<double> v = as_doubles(t);
  Limits lim;
  for (double x : v) lim.add(x);
  if (lim.empty()) throw_data(quoted(matrix.name) + " has no finite values (all NaN or infinite)");
  double lo = lim.lo, hi = lim.hi;
  if (opt.range) {
    std::tie(lo, hi) = *opt.range;
  } else if (opt.cmap == ColorMap::coolwarm) {
    // Diverging: white is zero, the same distance either way.
    const double m = std::max(std::fabs(lo), std::fabs(hi));
    lo = m > 0 ? -m : -1;
    hi = m > 0 ? m : 1;
  } else if (lo == hi) {
    std::tie(lo, hi) = padded(lo, hi, 0);
  }
  if (!std::isfinite(hi - lo)) throw_data("the value range is not finite (values too large to plot)");

  const Theme th = theme(opt);
  // Room on the right for the colour bar: gap, bar, ticks and their labels.
  const int bar_w = 14, bar_gap = 14;
  const std::vector<double> bar_ticks = nice_ticks(lo, hi, 6);
  const double bar_step = nice_step(lo, hi, 6);
  int label_w = 0;
  for (double b : bar_ticks) label_w = std::max(label_w, Canvas::text_width(tick_label(b, bar_step)));
  const int extra = bar_gap + bar_w + tick_len + 3 + label_w;
  // y runs down the rows: data y0 = rows at the bottom, y1 = 0 at the top.
  Layout L = layout(opt, 0, static_cast<double>(cols), static_cast<double>(rows), 0, false, extra);
  Frame& f = L.frame;
  // Square cells where the space allows, the area centred in what is left.
  const double cell = std::min((f.right - f.left) / cols, (f.bottom - f.top) / rows);
  const double aw = cell * cols, ah = cell * rows;
  const double cx = (f.left + f.right) / 2, cy = (f.top + f.bottom) / 2;
  if (cell * cols >= 8 && cell * rows >= 8) {
    f.left = std::round(cx - aw / 2), f.right = f.left + std::round(aw);
    f.top = std::round(cy - ah / 2), f.bottom = f.top + std::round(ah);
  }
  // Index ticks at cell centres.
  auto index_ticks = [](std::int64_t n, double px, double& step) {
    step = std::max(1.0, nice_step(0, static_cast<double>(n), std::max(2, static_cast<int>(px / 70))));
    std::vector<double> out;
    for (double k = 0; k < n; k += step) out.push_back(k);
    return out;
  };
  L.xticks = index_ticks(cols, f.right - f.left, L.xstep);
  L.yticks = index_ticks(rows, f.bottom - f.top, L.ystep);
  L.xtick_offset = L.ytick_offset = 0.5;

  Canvas c(opt.width, opt.height, th.bg);
  const int x0 = static_cast<int>(f.left), x1 = static_cast<int>(f.right);
  const int y0 = static_cast<int>(f.top), y1 = static_cast<int>(f.bottom);
  for (int y = y0; y < y1; ++y) {
    // Each pixel shows the cell under its centre.
    const auto i = std::min<std::int64_t>(rows - 1, static_cast<std::int64_t>((y + 0.5 - f.top) / (f.bottom - f.top) * rows));
    for (int x = x0; x < x1; ++x) {
      const auto j =
          std::min<std::int64_t>(cols - 1, static_cast<std::int64_t>((x + 0.5 - f.left) / (f.right - f.left) * cols));
      c.set(x, y, colormap(opt.cmap, (v[static_cast<std::size_t>(i * cols + j)] - lo) / (hi - lo)));
    }
  }
  draw_axes(c, L, opt, th);
  // The colour bar: hi at the top, lo at the bottom.
  const int bx = x1 + bar_gap;
  for (int y = y0; y < y1; ++y) {
    const Rgb col = colormap(opt.cmap, 1 - (y + 0.5 - y0) / (y1 - y0));
    c.fill_rect(bx, y, bx + bar_w, y + 1, col);
  }
  c.fill_rect(bx - 1, y0 - 1, bx + bar_w + 1, y0, th.ink);
  c.fill_rect(bx - 1, y1, bx + bar_w + 1, y1 + 1, th.ink);
  c.fill_rect(bx - 1, y0 - 1, bx, y1 + 1, th.ink);
  c.fill_rect(bx + bar_w, y0 - 1, bx + bar_w + 1, y1 + 1, th.ink);
  for (double b : bar_ticks) {
    const double y = std::floor(y1 - (b - lo) / (hi - lo) * (y1 - y0));
    if (!(y >= y0 - 1 && y <= y1)) continue;  // a subnormal range can put a tick at infinity
    c.fill_rect(bx + bar_w + 1, y, bx + bar_w + 1 + tick_len, y + 1, th.ink);
    c.text(bx + bar_w + 1 + tick_len + 3, static_cast<int>(y) - 3, tick_label(b, bar_step), th.ink);
  }
  return finish(c, L);
}

// ---------------------------------------------------------------- grid
Figure grid(const std::vector<NamedTensor>& images, const Options& opt) {
  check_options(opt);
  if (images.empty()) throw_usage("grid needs at least one image");
  if (opt.gap < 0) throw_usage("the gap between tiles cannot be negative");
  struct Image {
    std::int64_t h, w, c;
    std::vector<std::uint8_t> px;
  };
  std::vector<Image> tiles;
  bool alpha = false;
  for (const auto& in : images) {
    const Tensor& t = in.tensor;
    Shape s = t.shape();
    if (s.size() == 2) s.push_back(1);
    if (s.size() == 3) s.insert(s.begin(), 1);
    if (s.size() != 4 || s[3] < 1 || s[3] > 4)
      throw_data("image wants [H, W], [H, W, C] or [N, H, W, C] with C from 1 to 4; " + quoted(in.name) +
                 " has shape " + shape_str(t.shape()));
    require_nonempty(in);
    std::vector<std::uint8_t> px(static_cast<std::size_t>(t.numel()));
    if (t.dtype() == DType::u1 && !opt.range) {
      std::memcpy(px.data(), t.data<std::uint8_t>(), px.size());
    } else if (!opt.range) {
      throw_usage(quoted(in.name) + " is " + std::string(dtype_name(t.dtype())) +
                  ": give --range LO,HI, the values shown as 0 and 255");
    } else {
      const auto [lo, hi] = *opt.range;
      const std::vector<double> v = as_doubles(t);
      for (std::size_t i = 0; i < v.size(); ++i) {
        const double u = std::isnan(v[i]) ? 0 : std::clamp((v[i] - lo) / (hi - lo), 0.0, 1.0);
        px[i] = static_cast<std::uint8_t>(std::lround(u * 255));
      }
    }
    const std::size_t one = static_cast<std::size_t>(s[1] * s[2] * s[3]);
    for (std::int64_t n = 0; n < s[0]; ++n)
      tiles.push_back({s[1], s[2], s[3], std::vector<std::uint8_t>(px.begin() + n * one, px.begin() + (n + 1) * one)});
    alpha |= s[3] == 2 || s[3] == 4;
  }
  const auto n = static_cast<std::int64_t>(tiles.size());
  std::int64_t cw = 0, ch = 0;
  for (const auto& t : tiles) cw = std::max(cw, t.w), ch = std::max(ch, t.h);
  std::int64_t cols = opt.cols > 0 ? std::min<std::int64_t>(opt.cols, n)
                                   : static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  const std::int64_t rows = (n + cols - 1) / cols;
  const std::int64_t gap = opt.gap;
  const std::int64_t top = opt.title.empty() ? gap : 8 + Canvas::text_height(2) + 8;
  const std::int64_t title_w = opt.title.empty() ? 0 : Canvas::text_width(opt.title, 2) + 16;
  const std::int64_t W = std::max(title_w, 2 * gap + cols * cw + (cols - 1) * gap);
  const std::int64_t H = top + gap + rows * ch + (rows - 1) * gap;
  if (W > (1 << 20) || H > (1 << 20) || W * H > (std::int64_t{1} << 28))  // sides first: W * H may overflow
    throw_usage("the grid would be " + std::to_string(W) + "x" + std::to_string(H) + " pixels; use fewer images");

  const Theme th = theme(opt);
  Canvas c(static_cast<int>(W), static_cast<int>(H), th.bg);
  if (!opt.title.empty()) c.text(static_cast<int>(W - title_w) / 2 + 8, 8, opt.title, th.ink, 2);
  const Tensor rgb = c.to_tensor();
  // Out: RGB, plus alpha when an input has it; grey is repeated into RGB.
  const std::int64_t oc = alpha ? 4 : 3;
  Figure fig;
  fig.image = Tensor(DType::u1, {H, W, oc});
  std::uint8_t* out = fig.image.data<std::uint8_t>();
  const std::uint8_t* bg = rgb.data<std::uint8_t>();
  for (std::int64_t p = 0; p < H * W; ++p) {
    for (int k = 0; k < 3; ++k) out[p * oc + k] = bg[p * 3 + k];
    if (alpha) out[p * oc + 3] = 255;
  }
  const std::int64_t left = (W - (2 * gap + cols * cw + (cols - 1) * gap)) / 2 + gap;
  for (std::int64_t k = 0; k < n; ++k) {
    const Image& t = tiles[static_cast<std::size_t>(k)];
    const std::int64_t x0 = left + (k % cols) * (cw + gap) + (cw - t.w) / 2;
    const std::int64_t y0 = top + (k / cols) * (ch + gap) + (ch - t.h) / 2;
    fig.tiles.push_back({static_cast<int>(x0), static_cast<int>(y0)});
    for (std::int64_t y = 0; y < t.h; ++y)
      for (std::int64_t x = 0; x < t.w; ++x) {
        const std::uint8_t* s = &t.px[static_cast<std::size_t>((y * t.w + x) * t.c)];
        std::uint8_t* d = &out[((y0 + y) * W + x0 + x) * oc];
        const bool grey = t.c <= 2;
        d[0] = s[0];
        d[1] = grey ? s[0] : s[1];
        d[2] = grey ? s[0] : s[2];
        if (alpha) d[3] = t.c == 2 ? s[1] : t.c == 4 ? s[3] : 255;
      }
  }
  return fig;
}

// ---------------------------------------------------------------- trajectory
Figure trajectory(const NamedTensor& paths, const Options& opt) {
  check_options(opt);
  const Tensor& t = paths.tensor;
  if (t.ndim() != 3 || t.dim(2) != 2)
    throw_data("a trajectory is [S, N, 2] (S steps of N points); " + quoted(paths.name) + " has shape " +
               shape_str(t.shape()));
  require_nonempty(paths);
  const std::int64_t S = t.dim(0), N = t.dim(1);
  const std::vector<double> v = as_doubles(t);
  Limits lx, ly;
  for (std::size_t i = 0; i + 1 < v.size(); i += 2)
    if (std::isfinite(v[i]) && std::isfinite(v[i + 1])) lx.add(v[i]), ly.add(v[i + 1]);
  if (lx.empty()) throw_data("no finite points to plot (all NaN or infinite)");
  const Theme th = theme(opt);
  Canvas c(opt.width, opt.height, th.bg);
  Layout L = point_layout(lx, ly, opt);
  draw_grid_lines(c, L, th);
  const Frame& f = L.frame;
  auto at = [&](std::int64_t s, std::int64_t i, int k) { return v[static_cast<std::size_t>((s * N + i) * 2 + k)]; };
  // Many paths: fainter, so that where they bunch up shows.
  const double alpha = opt.alpha.value_or(std::clamp(40.0 / static_cast<double>(N), 0.08, 0.8));
  const Rgb path = series_color(0), start = series_color(7), end = series_color(1);
  for (std::int64_t i = 0; i < N; ++i)
    for (std::int64_t s = 0; s + 1 < S; ++s)
      c.line(f.px(at(s, i, 0)), f.py(at(s, i, 1)), f.px(at(s + 1, i, 0)), f.py(at(s + 1, i, 1)), path, 1.0, alpha);
  const double r = opt.point_size / 2;
  for (std::int64_t i = 0; i < N; ++i) {
    c.disc(f.px(at(0, i, 0)), f.py(at(0, i, 1)), r, start, std::min(1.0, alpha * 2));
    c.disc(f.px(at(S - 1, i, 0)), f.py(at(S - 1, i, 1)), r, end, std::min(1.0, alpha * 2));
  }
  draw_axes(c, L, opt, th);
  draw_legend(c, f, {{"start", start}, {"end", end}}, th, false);
  return finish(c, L);
}

}  // namespace nnkit::plot
