// The raster of nnkit::plot: coverage-based anti-aliased rectangles, lines and
// discs, and a built-in bitmap font.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "nnkit/memory_limit.hpp"
#include "nnkit/ops/plot.hpp"

namespace nnkit::plot {

namespace {

// A 5-pixel-wide font drawn for this project: 7 rows above the baseline and 2
// below for the descenders of g j p q y , ;. '#' is ink. Printable ASCII from
// the space to '~'; anything else is drawn as '?'.
constexpr int glyph_w = 5, glyph_rows = 9, advance = glyph_w + 1;
const char* const glyph_rows_text[95][glyph_rows] = {
    {".....", ".....", ".....", ".....", ".....", ".....", ".....", ".....", "....."},  // space
    {"..#..", "..#..", "..#..", "..#..", "..#..", ".....", "..#..", ".....", "....."},  // !
    {".#.#.", ".#.#.", ".....", ".....", ".....", ".....", ".....", ".....", "....."},  // "
    {".#.#.", ".#.#.", "#####", ".#.#.", "#####", ".#.#.", ".#.#.", ".....", "....."},  // #
    {"..#..", ".####", "#.#..", ".###.", "..#.#", "####.", "..#..", ".....", "....."},  // $
    {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##", ".....", "....."},  // %
    {".##..", "#..#.", "#.#..", ".#...", "#.#.#", "#..#.", ".##.#", ".....", "....."},  // &
    {"..#..", "..#..", ".....", ".....", ".....", ".....", ".....", ".....", "....."},  // '
    {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#.", ".....", "....."},  // (
    {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#...", ".....", "....."},  // )
    {".....", "..#..", "#.#.#", ".###.", "#.#.#", "..#..", ".....", ".....", "....."},  // *
    {".....", "..#..", "..#..", "#####", "..#..", "..#..", ".....", ".....", "....."},  // +
    {".....", ".....", ".....", ".....", ".....", ".##..", "..#..", ".#...", "....."},  // ,
    {".....", ".....", ".....", ".###.", ".....", ".....", ".....", ".....", "....."},  // -
    {".....", ".....", ".....", ".....", ".....", ".##..", ".##..", ".....", "....."},  // .
    {".....", "....#", "...#.", "..#..", ".#...", "#....", ".....", ".....", "....."},  // /
    {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###.", ".....", "....."},  // 0
    {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###.", ".....", "....."},  // 1
    {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####", ".....", "....."},  // 2
    {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###.", ".....", "....."},  // 3
    {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#.", ".....", "....."},  // 4
    {"#####", "#....", "####.", "....#", "....#", "#...#", ".###.", ".....", "....."},  // 5
    {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###.", ".....", "....."},  // 6
    {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#...", ".....", "....."},  // 7
    {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###.", ".....", "....."},  // 8
    {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##..", ".....", "....."},  // 9
    {".....", ".##..", ".##..", ".....", ".##..", ".##..", ".....", ".....", "....."},  // :
    {".....", ".##..", ".##..", ".....", ".##..", ".##..", "..#..", ".#...", "....."},  // ;
    {"...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#.", ".....", "....."},  // <
    {".....", ".....", "#####", ".....", "#####", ".....", ".....", ".....", "....."},  // =
    {".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#...", ".....", "....."},  // >
    {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#..", ".....", "....."},  // ?
    {".###.", "#...#", "....#", ".##.#", "#.#.#", "#.#.#", ".###.", ".....", "....."},  // @
    {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#", ".....", "....."},  // A
    {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####.", ".....", "....."},  // B
    {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###.", ".....", "....."},  // C
    {"###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###..", ".....", "....."},  // D
    {"#####", "#....", "#....", "####.", "#....", "#....", "#####", ".....", "....."},  // E
    {"#####", "#....", "#....", "####.", "#....", "#....", "#....", ".....", "....."},  // F
    {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####", ".....", "....."},  // G
    {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#", ".....", "....."},  // H
    {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###.", ".....", "....."},  // I
    {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##..", ".....", "....."},  // J
    {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#", ".....", "....."},  // K
    {"#....", "#....", "#....", "#....", "#....", "#....", "#####", ".....", "....."},  // L
    {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#", ".....", "....."},  // M
    {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#", ".....", "....."},  // N
    {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###.", ".....", "....."},  // O
    {"####.", "#...#", "#...#", "####.", "#....", "#....", "#....", ".....", "....."},  // P
    {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#", ".....", "....."},  // Q
    {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#", ".....", "....."},  // R
    {".####", "#....", "#....", ".###.", "....#", "....#", "####.", ".....", "....."},  // S
    {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#..", ".....", "....."},  // T
    {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###.", ".....", "....."},  // U
    {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#..", ".....", "....."},  // V
    {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#.", ".....", "....."},  // W
    {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#", ".....", "....."},  // X
    {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#..", ".....", "....."},  // Y
    {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####", ".....", "....."},  // Z
    {".###.", ".#...", ".#...", ".#...", ".#...", ".#...", ".###.", ".....", "....."},  // [
    {".....", "#....", ".#...", "..#..", "...#.", "....#", ".....", ".....", "....."},  // backslash
    {".###.", "...#.", "...#.", "...#.", "...#.", "...#.", ".###.", ".....", "....."},  // ]
    {"..#..", ".#.#.", "#...#", ".....", ".....", ".....", ".....", ".....", "....."},  // ^
    {".....", ".....", ".....", ".....", ".....", ".....", "#####", ".....", "....."},  // _
    {".#...", "..#..", ".....", ".....", ".....", ".....", ".....", ".....", "....."},  // `
    {".....", ".....", ".###.", "....#", ".####", "#...#", ".####", ".....", "....."},  // a
    {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####.", ".....", "....."},  // b
    {".....", ".....", ".###.", "#....", "#....", "#...#", ".###.", ".....", "....."},  // c
    {"....#", "....#", ".##.#", "#..##", "#...#", "#...#", ".####", ".....", "....."},  // d
    {".....", ".....", ".###.", "#...#", "#####", "#....", ".###.", ".....", "....."},  // e
    {"..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#...", ".....", "....."},  // f
    {".....", ".....", ".####", "#...#", "#...#", "#..##", ".##.#", "....#", ".###."},  // g
    {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#", ".....", "....."},  // h
    {"..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###.", ".....", "....."},  // i
    {"...#.", ".....", "..##.", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."},  // j
    {"#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#.", ".....", "....."},  // k
    {".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###.", ".....", "....."},  // l
    {".....", ".....", "##.#.", "#.#.#", "#.#.#", "#.#.#", "#.#.#", ".....", "....."},  // m
    {".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#", ".....", "....."},  // n
    {".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###.", ".....", "....."},  // o
    {".....", ".....", "####.", "#...#", "#...#", "#...#", "####.", "#....", "#...."},  // p
    {".....", ".....", ".####", "#...#", "#...#", "#...#", ".####", "....#", "....#"},  // q
    {".....", ".....", "#.##.", "##..#", "#....", "#....", "#....", ".....", "....."},  // r
    {".....", ".....", ".####", "#....", ".###.", "....#", "####.", ".....", "....."},  // s
    {".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##.", ".....", "....."},  // t
    {".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#", ".....", "....."},  // u
    {".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#..", ".....", "....."},  // v
    {".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#.", ".....", "....."},  // w
    {".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", ".....", "....."},  // x
    {".....", ".....", "#...#", "#...#", "#...#", "#...#", ".####", "....#", ".###."},  // y
    {".....", ".....", "#####", "...#.", "..#..", ".#...", "#####", ".....", "....."},  // z
    {"...#.", "..#..", "..#..", ".#...", "..#..", "..#..", "...#.", ".....", "....."},  // {
    {"..#..", "..#..", "..#..", "..#..", "..#..", "..#..", "..#..", ".....", "....."},  // |
    {".#...", "..#..", "..#..", "...#.", "..#..", "..#..", ".#...", ".....", "....."},  // }
    {".....", ".....", ".#...", "#.#.#", "...#.", ".....", ".....", ".....", "....."},  // ~
};

// The ink of every glyph as a bit per pixel, built once.
struct Font {
  std::uint8_t bits[95][glyph_rows] = {};
  Font() {
    for (int g = 0; g < 95; ++g)
      for (int r = 0; r < glyph_rows; ++r)
        for (int c = 0; c < glyph_w; ++c)
          if (glyph_rows_text[g][r][c] == '#') bits[g][r] |= static_cast<std::uint8_t>(1u << (glyph_w - 1 - c));
  }
  const std::uint8_t* glyph(char c) const {
    const int i = static_cast<unsigned char>(c) - 32;
    return bits[i >= 0 && i < 95 ? i : '?' - 32];
  }
};

const Font& font() {
  static const Font f;
  return f;
}

std::uint8_t mix(std::uint8_t under, std::uint8_t over, double a) {
  return static_cast<std::uint8_t>(std::lround(under + (over - under) * a));
}

double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

// Distance from p to the segment a-b.
double segment_distance(double px, double py, double ax, double ay, double bx, double by) {
  const double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
  double t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
  t = clamp01(t);
  return std::hypot(px - (ax + t * dx), py - (ay + t * dy));
}

// An int pixel index from a coordinate, clamped as a double to just beyond
// [0, limit] before the cast: far-away or infinite data would overflow int.
int to_pixel(double v, int limit) {
  if (std::isnan(v)) return -1;
  return static_cast<int>(std::clamp(v, -1.0, static_cast<double>(limit) + 1));
}

}  // namespace

Canvas::Canvas(int width, int height, Rgb background) : w_(width), h_(height) {
  if (width < 1 || height < 1) throw_usage("a picture needs a positive width and height");
  px_ = make_buffer<std::uint8_t>(std::int64_t{width} * height * 3,
                                  "a picture of " + std::to_string(width) + "x" + std::to_string(height) + " pixels");
  for (std::size_t i = 0; i < px_.size(); i += 3) {
    px_[i] = background.r;
    px_[i + 1] = background.g;
    px_[i + 2] = background.b;
  }
}

Rgb Canvas::at(int x, int y) const {
  const std::uint8_t* p = &px_[(static_cast<std::size_t>(y) * w_ + x) * 3];
  return {p[0], p[1], p[2]};
}

void Canvas::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
  std::uint8_t* p = &px_[(static_cast<std::size_t>(y) * w_ + x) * 3];
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

void Canvas::blend(int x, int y, Rgb c, double a) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_ || !(a > 0)) return;
  if (a >= 1) return set(x, y, c);
  std::uint8_t* p = &px_[(static_cast<std::size_t>(y) * w_ + x) * 3];
  p[0] = mix(p[0], c.r, a);
  p[1] = mix(p[1], c.g, a);
  p[2] = mix(p[2], c.b, a);
}

void Canvas::fill_rect(double x0, double y0, double x1, double y1, Rgb c, double alpha) {
  if (x1 < x0) std::swap(x0, x1);
  if (y1 < y0) std::swap(y0, y1);
  const int ix0 = std::max(0, to_pixel(std::floor(x0), w_));
  const int ix1 = std::min(w_, to_pixel(std::ceil(x1), w_));
  const int iy0 = std::max(0, to_pixel(std::floor(y0), h_));
  const int iy1 = std::min(h_, to_pixel(std::ceil(y1), h_));
  for (int y = iy0; y < iy1; ++y) {
    // The fraction of the pixel the rectangle covers, axis by axis.
    const double cy = std::min<double>(y + 1, y1) - std::max<double>(y, y0);
    for (int x = ix0; x < ix1; ++x) {
      const double cx = std::min<double>(x + 1, x1) - std::max<double>(x, x0);
      blend(x, y, c, clamp01(cx) * clamp01(cy) * alpha);
    }
  }
}

void Canvas::line(double x0, double y0, double x1, double y1, Rgb c, double width, double alpha) {
  if (!std::isfinite(x0 + y0 + x1 + y1)) return;
  const double r = width / 2;
  // A thin line keeps its full width of coverage but fades with its width.
  const double fade = std::min(1.0, width) * alpha;
  const double reach = std::max(r, 0.5) + 1;
  const bool steep = std::fabs(y1 - y0) > std::fabs(x1 - x0);
  // Walk the major axis; in each column (row) visit the band around the line.
  const double a0 = steep ? y0 : x0, a1 = steep ? y1 : x1, b0 = steep ? x0 : y0, b1 = steep ? x1 : y1;
  const double slope = a1 != a0 ? (b1 - b0) / (a1 - a0) : 0;
  const double band = reach * std::sqrt(1 + slope * slope) + 1;
  const int limit_a = steep ? h_ : w_, limit_b = steep ? w_ : h_;
  const int from = std::max(0, to_pixel(std::floor(std::min(a0, a1) - reach), limit_a));
  const int to = std::min(limit_a - 1, to_pixel(std::ceil(std::max(a0, a1) + reach), limit_a));
  const double bmin = std::min(b0, b1) - reach, bmax = std::max(b0, b1) + reach;
  for (int a = from; a <= to; ++a) {
    const double ac = std::clamp(a + 0.5, std::min(a0, a1), std::max(a0, a1));
    const double bc = b0 + (ac - a0) * slope;
    const int lo = std::max(0, to_pixel(std::floor(std::max(bc - band, bmin)), limit_b));
    const int hi = std::min(limit_b - 1, to_pixel(std::ceil(std::min(bc + band, bmax)), limit_b));
    for (int b = lo; b <= hi; ++b) {
      const double d = segment_distance(a + 0.5, b + 0.5, a0, b0, a1, b1);
      const double cov = clamp01(std::max(r, 0.5) + 0.5 - d);
      if (cov > 0) steep ? blend(b, a, c, cov * fade) : blend(a, b, c, cov * fade);
    }
  }
}

void Canvas::disc(double cx, double cy, double radius, Rgb c, double alpha) {
  if (!std::isfinite(cx + cy)) return;
  const double r = std::max(radius, 0.5);
  // A disc smaller than a pixel lightens in proportion to its area.
  const double fade = alpha * std::min(1.0, radius * radius * 4);
  const int x0 = std::max(0, to_pixel(std::floor(cx - r - 1), w_));
  const int x1 = std::min(w_ - 1, to_pixel(std::ceil(cx + r + 1), w_));
  const int y0 = std::max(0, to_pixel(std::floor(cy - r - 1), h_));
  const int y1 = std::min(h_ - 1, to_pixel(std::ceil(cy + r + 1), h_));
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      const double d = std::hypot(x + 0.5 - cx, y + 0.5 - cy);
      const double cov = clamp01(r + 0.5 - d);
      if (cov > 0) blend(x, y, c, cov * fade);
    }
}

int Canvas::text_width(const std::string& s, int scale) {
  return s.empty() ? 0 : (static_cast<int>(s.size()) * advance - 1) * scale;
}

int Canvas::text_height(int scale) { return glyph_rows * scale; }

void Canvas::text(int x, int y, const std::string& s, Rgb c, int scale, bool vertical) {
  const int total = text_width(s, scale);
  for (std::size_t k = 0; k < s.size(); ++k) {
    const std::uint8_t* g = font().glyph(s[k]);
    for (int row = 0; row < glyph_rows; ++row)
      for (int col = 0; col < glyph_w; ++col) {
        if (!(g[row] >> (glyph_w - 1 - col) & 1)) continue;
        const int u = static_cast<int>(k) * advance * scale + col * scale;  // along the text
        const int v = row * scale;                                          // across it
        for (int i = 0; i < scale; ++i)
          for (int j = 0; j < scale; ++j) {
            if (vertical)
              set(x + v + j, y + total - 1 - (u + i), c);  // rotated a quarter turn to the left
            else
              set(x + u + i, y + v + j, c);
          }
      }
  }
}

Tensor Canvas::to_tensor() const {
  Tensor t(DType::u1, {h_, w_, 3});
  std::memcpy(t.data<std::uint8_t>(), px_.data(), px_.size());
  return t;
}

}  // namespace nnkit::plot
