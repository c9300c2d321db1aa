#include "nnkit/ops/boxes.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <sstream>
#include <utility>

#include "nnkit/error.hpp"
#include "nnkit/parallel.hpp"

namespace nnkit::boxes {

Format parse_format(const std::string& s) {
  if (s == "xyxy") return Format::xyxy;
  if (s == "xywh") return Format::xywh;
  if (s == "cxcywh") return Format::cxcywh;
  throw_usage("unknown box format '" + s + "' (xyxy, xywh, cxcywh)");
}

Metric parse_metric(const std::string& s) {
  if (s == "iou") return Metric::iou;
  if (s == "giou") return Metric::giou;
  if (s == "diou") return Metric::diou;
  if (s == "ciou") return Metric::ciou;
  if (s == "ioa") return Metric::ioa;
  throw_usage("unknown metric '" + s + "' (iou, giou, diou, ciou, ioa)");
}

const char* metric_name(Metric m) {
  switch (m) {
    case Metric::iou: return "iou";
    case Metric::giou: return "giou";
    case Metric::diou: return "diou";
    case Metric::ciou: return "ciou";
    case Metric::ioa: return "ioa";
  }
  return "?";
}

namespace {

constexpr double pi = 3.14159265358979323846;

// ------------------------------------------------------------------ loading

std::string num(double v) {
  std::ostringstream s;
  s.precision(9);
  s << v;
  return s.str();
}

// "box 3", or "box [1, 3]" when the boxes have leading batch axes.
std::string row_name(const Shape& shape, std::int64_t row) {
  const std::size_t lead = shape.size() - 1;
  if (lead <= 1) return "box " + std::to_string(row);
  std::vector<std::int64_t> idx(lead);
  for (std::size_t k = lead; k-- > 0;) {
    idx[k] = row % shape[k];
    row /= shape[k];
  }
  std::string s = "box [";
  for (std::size_t k = 0; k < lead; ++k) s += (k ? ", " : "") + std::to_string(idx[k]);
  return s + "]";
}

template <class T>
const char* type_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// One axis-aligned box's terms, as the kernels read them.
template <class T>
struct One {
  T x1, y1, x2, y2, area, cx, cy, aspect;
};

// The terms from the corners. Loading and the sparse path (which works from
// copies of the corners) both use it, so their values agree bit for bit.
template <class T>
inline One<T> from_corners(T x1, T y1, T x2, T y2, bool with_aspect = true) {
  return {x1, y1, x2, y2, (x2 - x1) * (y2 - y1), (x1 + x2) / 2, (y1 + y2) / 2,
          with_aspect ? T(std::atan2(double(x2 - x1), double(y2 - y1))) : T(0)};
}

}  // namespace

template <class T>
BoxSet<T> load(const Tensor& t, const Convention& conv, const std::string& name) {
  const std::int64_t k = conv.rotated ? 5 : 4;
  if (t.ndim() == 0 || t.shape().back() != k)
    throw_data(name + ": boxes must have shape [..., N, " + std::to_string(k) + "]" +
               (conv.rotated ? " (cx, cy, w, h, angle)" : "") + ", not " + shape_str(t.shape()));
  if (conv.rotated && (conv.format != Format::xyxy || conv.legacy_pixels))
    throw_usage("rotated boxes are always cx, cy, w, h, angle; --format and --legacy-pixels do not apply");
  const Tensor f8 = t.dtype() == DType::f8 ? Tensor() : t.astype(DType::f8, false);
  const double* v = t.dtype() == DType::f8 ? t.data<double>() : f8.data<double>();

  BoxSet<T> s;
  const std::int64_t n = t.numel() / k;
  s.size = n;
  s.rotated = conv.rotated;
  s.quarter_turn = conv.radians ? pi / 2 : 90;
  for (auto* a : {&s.x1, &s.y1, &s.x2, &s.y2, &s.area, &s.cx, &s.cy, &s.aspect}) a->assign(n, T(0));
  if (conv.rotated) s.rot.resize(n);

  auto bad = [&](std::int64_t r, const std::string& why) {
    if (!conv.allow_invalid)
      throw_data(name + ": " + row_name(t.shape(), r) + " is invalid: " + why);
    s.invalid.push_back(r);
  };
  const char* names_xyxy[] = {"x1", "y1", "x2", "y2"};
  const char* names_wh[] = {conv.format == Format::cxcywh ? "cx" : "x", conv.format == Format::cxcywh ? "cy" : "y",
                            "w", "h"};
  const char* names_rot[] = {"cx", "cy", "w", "h", "angle"};
  const char* const* names = conv.rotated ? names_rot : conv.format == Format::xyxy ? names_xyxy : names_wh;

  for (std::int64_t r = 0; r < n; ++r) {
    const double* c = v + r * k;
    int nonfinite = -1;
    for (int q = 0; q < k; ++q)
      if (!std::isfinite(c[q])) {
        nonfinite = q;
        break;
      }
    if (nonfinite >= 0) {
      bad(r, std::string(names[nonfinite]) + " is " + num(c[nonfinite]));
      continue;
    }
    if (conv.rotated || conv.format != Format::xyxy) {
      if (c[2] < 0 || c[3] < 0) {
        bad(r, c[2] < 0 ? "negative width (w = " + num(c[2]) + ")" : "negative height (h = " + num(c[3]) + ")");
        continue;
      }
    } else if (c[2] < c[0] || c[3] < c[1]) {
      bad(r, c[2] < c[0] ? "x2 < x1 (x1 = " + num(c[0]) + ", x2 = " + num(c[2]) + ")"
                         : "y2 < y1 (y1 = " + num(c[1]) + ", y2 = " + num(c[3]) + ")");
      continue;
    }

    T x1, y1, x2, y2;
    if (conv.rotated) {
      const RotatedBox b{c[0], c[1], c[2], c[3], c[4]};
      // The bounding box, enlarged by more than any rounding so that boxes
      // whose intersection has positive area always have overlapping ones.
      const double th = std::remainder(b.angle, 4 * s.quarter_turn) * ((pi / 2) / s.quarter_turn);
      const double co = std::abs(std::cos(th)), si = std::abs(std::sin(th));
      const double ex = (b.w * co + b.h * si) / 2, ey = (b.w * si + b.h * co) / 2;
      const double slack = 1e-6 * (std::abs(b.cx) + std::abs(b.cy) + ex + ey) + 1e-300;
      x1 = T(b.cx - ex - slack), x2 = T(b.cx + ex + slack);
      y1 = T(b.cy - ey - slack), y2 = T(b.cy + ey + slack);
      s.rot[r] = b;
      s.area[r] = T(b.w * b.h);
      s.cx[r] = T(b.cx), s.cy[r] = T(b.cy);
    } else {
      // Round to T first, then convert in T, as box_convert on a cast tensor.
      const T a0 = T(c[0]), a1 = T(c[1]), a2 = T(c[2]), a3 = T(c[3]);
      const T one = conv.legacy_pixels ? T(1) : T(0);
      switch (conv.format) {
        case Format::xyxy:
          x1 = a0, y1 = a1, x2 = a2 + one, y2 = a3 + one;
          break;
        case Format::xywh:  // legacy w counts pixels: the last is x1 + w - 1
          x1 = a0, y1 = a1, x2 = a0 + a2, y2 = a1 + a3;
          break;
        case Format::cxcywh:  // legacy: pixels cx - (w-1)/2 to cx + (w-1)/2
        default:
          x1 = a0 - T(0.5) * (a2 - one), y1 = a1 - T(0.5) * (a3 - one);
          x2 = a0 + T(0.5) * (a2 + one), y2 = a1 + T(0.5) * (a3 + one);
          break;
      }
      const One<T> o = from_corners(x1, y1, x2, y2);
      s.area[r] = o.area, s.cx[r] = o.cx, s.cy[r] = o.cy, s.aspect[r] = o.aspect;
    }
    // Beyond +-2^60 (float32) or 2^500 (float64) the squares and sums of the
    // metrics could overflow; no box of any real image is near that.
    const T limit = std::ldexp(T(1), sizeof(T) == 4 ? 60 : 500);
    if (!(std::abs(x1) <= limit && std::abs(y1) <= limit && std::abs(x2) <= limit && std::abs(y2) <= limit)) {
      bad(r, std::string("too large for ") + type_name<T>() + (sizeof(T) == 4 ? " (try --f64)" : ""));
      s.area[r] = s.cx[r] = s.cy[r] = s.aspect[r] = T(0);
      if (conv.rotated) s.rot[r] = RotatedBox{};
      continue;
    }
    s.x1[r] = x1, s.y1[r] = y1, s.x2[r] = x2, s.y2[r] = y2;
  }
  return s;
}

template <class T>
BoxSet<T> from_rows(const std::vector<double>& rows, const Convention& conv) {
  const std::int64_t k = conv.rotated ? 5 : 4;
  const Tensor t = Tensor::from_vector<double>({static_cast<std::int64_t>(rows.size()) / k, k}, rows);
  return load<T>(t, conv, "boxes");
}

// ------------------------------------------------------------------ metrics

namespace {

template <class T>
inline One<T> one(const BoxSet<T>& s, std::int64_t i) {
  return {s.x1[i], s.y1[i], s.x2[i], s.y2[i], s.area[i], s.cx[i], s.cy[i], s.aspect[i]};
}

// Written as comparisons so that they vectorise to min/max instructions.
template <class T>
inline T vmax(T a, T b) {
  return a > b ? a : b;
}
template <class T>
inline T vmin(T a, T b) {
  return a < b ? a : b;
}
// A zero denominator only ever comes with a zero numerator (the intersection
// never exceeds either area, in floating point too), so dividing by at least
// the smallest positive number turns 0/0 into 0 and changes nothing else.
template <class T>
inline T nonzero(T d) {
  return vmax(d, std::numeric_limits<T>::denorm_min());
}

// torchvision.ops' formulas, term by term in T.
template <Metric M, class T>
inline T value(const One<T>& a, const One<T>& b) {
  const T iw = vmax(vmin(a.x2, b.x2) - vmax(a.x1, b.x1), T(0));
  const T ih = vmax(vmin(a.y2, b.y2) - vmax(a.y1, b.y1), T(0));
  const T inter = iw * ih;
  if constexpr (M == Metric::ioa) {
    return inter / nonzero(a.area);
  } else {
    const T uni = (a.area + b.area) - inter;
    const T iou = inter / nonzero(uni);
    if constexpr (M == Metric::iou) return iou;
    // The smallest enclosing box.
    const T cw = vmax(a.x2, b.x2) - vmin(a.x1, b.x1);
    const T ch = vmax(a.y2, b.y2) - vmin(a.y1, b.y1);
    if constexpr (M == Metric::giou) {
      const T c = cw * ch;
      return iou - (c - uni) / nonzero(c);
    } else {
      const T dx = a.cx - b.cx, dy = a.cy - b.cy;
      const T diou = iou - (dx * dx + dy * dy) / (cw * cw + ch * ch + T(eps));
      if constexpr (M == Metric::diou) return diou;
      const T d = a.aspect - b.aspect;
      const T v = T(4 / (pi * pi)) * (d * d);
      const T alpha = v / ((T(1) - iou) + v + T(eps));
      return diou - alpha * v;
    }
  }
}

template <class T>
bool is_invalid(const BoxSet<T>& s, std::int64_t i) {
  return !s.invalid.empty() && std::binary_search(s.invalid.begin(), s.invalid.end(), i);
}

// Whether two boxes overlap with positive area.
template <class T>
inline bool overlap(T ax1, T ay1, T ax2, T ay2, T bx1, T by1, T bx2, T by2) {
  return vmax(ax1, bx1) < vmin(ax2, bx2) && vmax(ay1, by1) < vmin(ay2, by2);
}

template <class T>
T rotated_value(const BoxSet<T>& a, std::int64_t i, const BoxSet<T>& b, std::int64_t j, Metric metric) {
  // Bounding boxes apart: no intersection (their slack covers rounding).
  if (!overlap(a.x1[i], a.y1[i], a.x2[i], a.y2[i], b.x1[j], b.y1[j], b.x2[j], b.y2[j])) return T(0);
  const RotatedBox& p = a.rot[i];
  const RotatedBox& q = b.rot[j];
  const double inter = rotated_intersection(p, q, a.quarter_turn);
  const double area_a = p.w * p.h;
  if (metric == Metric::ioa) return T(area_a > 0 ? inter / area_a : 0);
  const double uni = area_a + q.w * q.h - inter;
  return T(uni > 0 ? inter / uni : 0);
}

template <class T>
void check_same_kind(const BoxSet<T>& a, const BoxSet<T>& b, Metric m) {
  if (a.rotated != b.rotated) throw_internal("boxes: rotated and axis-aligned sets mixed");
  if (a.rotated && m != Metric::iou && m != Metric::ioa)
    throw_usage(std::string("rotated boxes support the metrics iou and ioa, not ") + metric_name(m));
}

// Calls f(std::integral_constant<Metric, m>{}): the metric as a compile-time
// constant, so each metric gets its own vectorised loop.
template <class F>
decltype(auto) with_metric(Metric m, F&& f) {
  switch (m) {
    case Metric::iou: return f(std::integral_constant<Metric, Metric::iou>{});
    case Metric::giou: return f(std::integral_constant<Metric, Metric::giou>{});
    case Metric::diou: return f(std::integral_constant<Metric, Metric::diou>{});
    case Metric::ciou: return f(std::integral_constant<Metric, Metric::ciou>{});
    case Metric::ioa: return f(std::integral_constant<Metric, Metric::ioa>{});
  }
  return f(std::integral_constant<Metric, Metric::iou>{});
}

// out[j - j0] = value(a, b[j]) for j in [j0, j1): the inner loop of every
// dense result, over B's arrays only, which the compiler vectorises.
template <Metric M, class T>
void row_kernel(const One<T> a, const BoxSet<T>& b, std::int64_t j0, std::int64_t j1, T* __restrict out) {
  const T* __restrict x1 = b.x1.data();
  const T* __restrict y1 = b.y1.data();
  const T* __restrict x2 = b.x2.data();
  const T* __restrict y2 = b.y2.data();
  const T* __restrict ar = b.area.data();
  const T* __restrict cx = b.cx.data();
  const T* __restrict cy = b.cy.data();
  const T* __restrict as = b.aspect.data();
  for (std::int64_t j = j0; j < j1; ++j)
    out[j - j0] = value<M>(a, One<T>{x1[j], y1[j], x2[j], y2[j], ar[j], cx[j], cy[j], as[j]});
}

}  // namespace

template <class T>
T pair_value(const BoxSet<T>& a, std::int64_t i, const BoxSet<T>& b, std::int64_t j, Metric metric) {
  check_same_kind(a, b, metric);
  if (is_invalid(a, i) || is_invalid(b, j)) return std::numeric_limits<T>::quiet_NaN();
  if (a.rotated) return rotated_value(a, i, b, j, metric);
  return with_metric(metric, [&](auto m) { return value<decltype(m)::value>(one(a, i), one(b, j)); });
}

// ------------------------------------------------------------------ dense

template <class T>
void pairwise_rows(const BoxSet<T>& a, const BoxSet<T>& b, const Layout& l, Metric metric,
                   std::int64_t row_begin, std::int64_t row_end, T* out) {
  check_same_kind(a, b, metric);
  if (a.size != l.batches * l.n || b.size != l.batches * l.m)
    throw_internal("boxes: layout does not match the box counts");
  const std::int64_t m = l.m;
  if (row_end <= row_begin || m == 0) return;
  constexpr std::int64_t col_tile = 2048;  // B's arrays of a tile stay in L1/L2
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const std::int64_t grain = std::max<std::int64_t>(1, (std::int64_t{1} << 14) / m);
  parallel_for(row_end - row_begin, grain, [&](std::int64_t lo, std::int64_t hi) {
    lo += row_begin, hi += row_begin;
    // Rows of one chunk may straddle batches: split at batch boundaries.
    for (std::int64_t r0 = lo; r0 < hi;) {
      const std::int64_t batch = r0 / l.n;
      const std::int64_t r1 = std::min(hi, (batch + 1) * l.n);
      const std::int64_t bj = batch * m;  // B's first box in this batch
      for (std::int64_t j0 = 0; j0 < m; j0 += col_tile) {
        const std::int64_t j1 = std::min(m, j0 + col_tile);
        for (std::int64_t r = r0; r < r1; ++r) {
          T* o = out + (r - row_begin) * m + j0;
          if (a.rotated) {
            for (std::int64_t j = j0; j < j1; ++j) o[j - j0] = rotated_value(a, r, b, bj + j, metric);
          } else {
            const One<T> ar = one(a, r);
            with_metric(metric, [&](auto mm) { row_kernel<decltype(mm)::value>(ar, b, bj + j0, bj + j1, o); });
          }
        }
      }
      // Invalid boxes: NaN for all their pairs.
      if (!a.invalid.empty() || !b.invalid.empty()) {
        for (std::int64_t r = r0; r < r1; ++r) {
          T* o = out + (r - row_begin) * m;
          if (is_invalid(a, r)) {
            std::fill(o, o + m, nan);
            continue;
          }
          auto it = std::lower_bound(b.invalid.begin(), b.invalid.end(), bj);
          for (; it != b.invalid.end() && *it < bj + m; ++it) o[*it - bj] = nan;
        }
      }
      r0 = r1;
    }
  });
}

template <class T>
void pairwise_stream(const BoxSet<T>& a, const BoxSet<T>& b, const Layout& l, Metric metric,
                     const std::function<void(const T*, std::int64_t)>& sink, std::size_t block_bytes) {
  const std::int64_t rows = l.batches * l.n;
  if (rows == 0 || l.m == 0) return;
  const std::int64_t per_block =
      std::max<std::int64_t>(1, static_cast<std::int64_t>(block_bytes / (sizeof(T) * static_cast<std::size_t>(l.m))));
  std::vector<T> buf(static_cast<std::size_t>(std::min(per_block, rows) * l.m));
  for (std::int64_t r = 0; r < rows; r += per_block) {
    const std::int64_t e = std::min(rows, r + per_block);
    pairwise_rows(a, b, l, metric, r, e, buf.data());
    sink(buf.data(), e - r);
  }
}

template <class T>
void aligned(const BoxSet<T>& a, const BoxSet<T>& b, Metric metric, T* out) {
  check_same_kind(a, b, metric);
  if (a.size != b.size) throw_internal("boxes: aligned sets differ in size");
  parallel_for(a.size, std::int64_t{1} << 14, [&](std::int64_t lo, std::int64_t hi) {
    if (a.rotated) {
      for (std::int64_t k = lo; k < hi; ++k) out[k] = rotated_value(a, k, b, k, metric);
    } else {
      with_metric(metric, [&](auto mm) {
        constexpr Metric M = decltype(mm)::value;
        for (std::int64_t k = lo; k < hi; ++k) out[k] = value<M>(one(a, k), one(b, k));
      });
    }
  });
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (std::int64_t k : a.invalid) out[k] = nan;
  for (std::int64_t k : b.invalid) out[k] = nan;
}

// ------------------------------------------------------------------ spatial grids

namespace {

// A uniform grid of square cells over the boxes' (bounding) boxes. A box is
// filed in every cell it covers, unless it covers more than max_cells: then it
// goes to a list that every query scans. A query covering more than
// max_cells scans everything. Two boxes that overlap with positive area share
// the cell of the lower-left corner of their overlap, so a pair can be
// reported exactly once: from the cell that is the first column of one of the
// two boxes and the first row of one of them (the cell index is monotone in
// the coordinate, so the corner max(x1) falls in column max(first columns)).
struct CellGeometry {
  static constexpr std::int64_t max_cells = 64;
  double ox = 0, oy = 0, inv = 1;
  std::int64_t nx = 1, ny = 1;

  // Cells about the size of a typical box (the median of the longer sides),
  // at most about cells_per_box per box and 4096 a side.
  template <class T>
  CellGeometry(const BoxSet<T>& s, const std::int64_t* ids, std::int64_t count, double cells_per_box) {
    if (count == 0) return;
    double lx = HUGE_VAL, ly = HUGE_VAL, hx = -HUGE_VAL, hy = -HUGE_VAL;
    std::vector<double> sizes;
    const std::int64_t stride = std::max<std::int64_t>(1, count / 4096);
    for (std::int64_t k = 0; k < count; ++k) {
      const std::int64_t i = ids[k];
      lx = std::min(lx, double(s.x1[i])), ly = std::min(ly, double(s.y1[i]));
      hx = std::max(hx, double(s.x2[i])), hy = std::max(hy, double(s.y2[i]));
      if (k % stride == 0) sizes.push_back(std::max(double(s.x2[i]) - s.x1[i], double(s.y2[i]) - s.y1[i]));
    }
    std::nth_element(sizes.begin(), sizes.begin() + sizes.size() / 2, sizes.end());
    const double w = hx - lx, h = hy - ly;
    double cell = std::max({sizes[sizes.size() / 2], std::sqrt(w * h / (cells_per_box * double(count) + 16)),
                            w / 4096, h / 4096});
    if (!(cell > 0 && std::isfinite(cell))) {  // all points, or a span beyond double
      const double span = std::max(w, h);
      cell = span > 0 && std::isfinite(span) ? span : 1;
    }
    ox = lx, oy = ly, inv = 1 / cell;
    nx = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::min(4096.0, std::floor(w * inv) + 1)));
    ny = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::min(4096.0, std::floor(h * inv) + 1)));
  }
  std::int64_t col(double x) const { return clamp((x - ox) * inv, nx); }
  std::int64_t row(double y) const { return clamp((y - oy) * inv, ny); }
  static std::int64_t clamp(double c, std::int64_t n) {
    c = c >= 0 ? c : 0;  // NaN too
    c = c <= double(n - 1) ? c : double(n - 1);
    return static_cast<std::int64_t>(c);
  }
};

// A grid built once over a fixed list of boxes, in compressed rows: each
// cell's entries lie together, with copies of their coordinates, so a query
// reads contiguous memory. Reports the position k of a box in the list.
template <class T>
class StaticGrid {
 public:
  StaticGrid(const BoxSet<T>& s, const std::int64_t* ids, std::int64_t count) : g_(s, ids, count, 2) {
    std::vector<std::int64_t> fill(static_cast<std::size_t>(g_.nx * g_.ny + 1), 0);
    auto each_cell = [&](std::int64_t i, auto&& f) {
      const std::int64_t c0 = g_.col(s.x1[i]), c1 = g_.col(s.x2[i]), r0 = g_.row(s.y1[i]), r1 = g_.row(s.y2[i]);
      if ((c1 - c0 + 1) * (r1 - r0 + 1) > CellGeometry::max_cells) return false;
      for (std::int64_t r = r0; r <= r1; ++r)
        for (std::int64_t c = c0; c <= c1; ++c) f(r * g_.nx + c, c0, r0);
      return true;
    };
    for (std::int64_t k = 0; k < count; ++k)
      if (!each_cell(ids[k], [&](std::int64_t cell, std::int64_t, std::int64_t) { ++fill[cell + 1]; }))
        big_.push_back(k);
    for (std::size_t c = 1; c < fill.size(); ++c) fill[c] += fill[c - 1];
    start_ = fill;
    const std::size_t total = static_cast<std::size_t>(fill.back());
    for (auto* v : {&x1_, &y1_, &x2_, &y2_}) v->resize(total);
    k_.resize(total), id_.resize(total), col0_.resize(total), row0_.resize(total);
    for (std::int64_t k = 0; k < count; ++k) {
      const std::int64_t i = ids[k];
      each_cell(i, [&](std::int64_t cell, std::int64_t c0, std::int64_t r0) {
        const std::size_t e = static_cast<std::size_t>(fill[cell]++);
        x1_[e] = s.x1[i], y1_[e] = s.y1[i], x2_[e] = s.x2[i], y2_[e] = s.y2[i];
        k_[e] = k, id_[e] = i, col0_[e] = static_cast<std::int32_t>(c0), row0_[e] = static_cast<std::int32_t>(r0);
      });
    }
    for (std::int64_t k : big_) {
      const std::int64_t i = ids[k];
      bx1_.push_back(s.x1[i]), by1_.push_back(s.y1[i]), bx2_.push_back(s.x2[i]), by2_.push_back(s.y2[i]);
    }
    count_ = count;
    xs_ = {s.x1.data(), s.y1.data(), s.x2.data(), s.y2.data()};
    ids_ = ids;
  }

  const CellGeometry& geometry() const { return g_; }

  // Calls f(k, id, x1, y1, x2, y2) once for every box of the list that
  // overlaps the query box with positive area: its position k in the list,
  // ids[k], and its corners.
  template <class F>
  void query(T qx1, T qy1, T qx2, T qy2, F&& f) const {
    if (count_ == 0) return;
    const std::int64_t c0 = g_.col(qx1), c1 = g_.col(qx2), r0 = g_.row(qy1), r1 = g_.row(qy2);
    if ((c1 - c0 + 1) * (r1 - r0 + 1) > CellGeometry::max_cells) {
      for (std::int64_t k = 0; k < count_; ++k) {
        const std::int64_t i = ids_[k];
        if (overlap(xs_[0][i], xs_[1][i], xs_[2][i], xs_[3][i], qx1, qy1, qx2, qy2))
          f(k, i, xs_[0][i], xs_[1][i], xs_[2][i], xs_[3][i]);
      }
      return;
    }
    for (std::int64_t r = r0; r <= r1; ++r)
      for (std::int64_t c = c0; c <= c1; ++c) {
        const std::int64_t cell = r * g_.nx + c;
        for (std::int64_t e = start_[cell]; e < start_[cell + 1]; ++e) {
          // Report from the overlap's corner cell only.
          if ((col0_[e] != c && c != c0) || (row0_[e] != r && r != r0)) continue;
          if (overlap(x1_[e], y1_[e], x2_[e], y2_[e], qx1, qy1, qx2, qy2)) f(k_[e], id_[e], x1_[e], y1_[e], x2_[e], y2_[e]);
        }
      }
    for (std::size_t b = 0; b < big_.size(); ++b)
      if (overlap(bx1_[b], by1_[b], bx2_[b], by2_[b], qx1, qy1, qx2, qy2)) f(big_[b], ids_[big_[b]], bx1_[b], by1_[b], bx2_[b], by2_[b]);
  }

 private:
  CellGeometry g_;
  std::int64_t count_ = 0;
  std::vector<std::int64_t> start_, k_, id_, big_;
  std::vector<T> x1_, y1_, x2_, y2_, bx1_, by1_, bx2_, by2_;
  std::vector<std::int32_t> col0_, row0_;
  std::array<const T*, 4> xs_{};
  const std::int64_t* ids_ = nullptr;
};

}  // namespace

// ------------------------------------------------------------------ sparse

template <class T>
SparsePairs<T> pairwise_sparse(const BoxSet<T>& a, const BoxSet<T>& b, const Layout& l, Metric metric,
                               double threshold) {
  check_same_kind(a, b, metric);
  if (a.size != l.batches * l.n || b.size != l.batches * l.m)
    throw_internal("boxes: layout does not match the box counts");
  SparsePairs<T> out;
  auto push = [&out](std::int64_t batch, std::int64_t i, std::int64_t j, T v) {
    out.batch.push_back(batch), out.i.push_back(i), out.j.push_back(j), out.values.push_back(v);
  };
  if (!(threshold > 0)) {
    // Non-overlapping pairs can pass: scan the dense result block by block.
    std::int64_t row = 0;
    pairwise_stream<T>(a, b, l, metric, [&](const T* p, std::int64_t rows) {
      for (std::int64_t r = 0; r < rows; ++r, ++row)
        for (std::int64_t j = 0; j < l.m; ++j) {
          const T v = p[r * l.m + j];
          if (v >= threshold) push(row / l.n, row % l.n, j, v);
        }
    });
    return out;
  }
  // Every metric is <= IoU, so a value > 0 needs an overlap of positive area:
  // only B's boxes found by the grid around each box of A are evaluated.
  // A's boxes are visited in the grid's cell order, so that consecutive
  // queries read the same cells; the pairs are then written in row order.
  struct Found {
    std::vector<std::int64_t> j;
    std::vector<T> v;
  };
  struct Span {
    std::int64_t block = 0, begin = 0, end = 0;
  };
  constexpr std::int64_t block = 256;
  for (std::int64_t batch = 0; batch < l.batches; ++batch) {
    const std::int64_t a0 = batch * l.n, b0 = batch * l.m;
    std::vector<std::int64_t> ids;
    for (std::int64_t j = b0; j < b0 + l.m; ++j)
      if (!is_invalid(b, j)) ids.push_back(j);
    const StaticGrid<T> grid(b, ids.data(), static_cast<std::int64_t>(ids.size()));
    const CellGeometry& g = grid.geometry();
    std::vector<std::pair<std::int64_t, std::int64_t>> order;  // (cell, i)
    for (std::int64_t i = a0; i < a0 + l.n; ++i)
      if (!is_invalid(a, i)) order.emplace_back(g.row(a.y1[i]) * g.nx + g.col(a.x1[i]), i);
    std::sort(order.begin(), order.end());
    const std::int64_t nblocks = (static_cast<std::int64_t>(order.size()) + block - 1) / block;
    std::vector<Found> found(static_cast<std::size_t>(nblocks));
    std::vector<Span> span(static_cast<std::size_t>(l.n));
    parallel_for(nblocks, 1, [&](std::int64_t lo, std::int64_t hi) {
      std::vector<std::pair<std::int64_t, T>> cand;  // (j, value)
      for (std::int64_t k = lo; k < hi; ++k) {
        Found& f = found[static_cast<std::size_t>(k)];
        const std::int64_t end = std::min(static_cast<std::int64_t>(order.size()), (k + 1) * block);
        for (std::int64_t o = k * block; o < end; ++o) {
          const std::int64_t i = order[static_cast<std::size_t>(o)].second;
          cand.clear();
          if (a.rotated) {
            grid.query(a.x1[i], a.y1[i], a.x2[i], a.y2[i], [&](std::int64_t, std::int64_t j, T, T, T, T) {
              cand.emplace_back(j, rotated_value(a, i, b, j, metric));
            });
          } else {
            // From the grid's copies of B's corners: B's arrays are not read.
            const One<T> ai = one(a, i);
            with_metric(metric, [&](auto mm) {
              constexpr Metric M = decltype(mm)::value;
              grid.query(ai.x1, ai.y1, ai.x2, ai.y2, [&](std::int64_t, std::int64_t j, T x1, T y1, T x2, T y2) {
                cand.emplace_back(j, value<M>(ai, from_corners(x1, y1, x2, y2, M == Metric::ciou)));
              });
            });
          }
          std::sort(cand.begin(), cand.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
          Span& sp = span[static_cast<std::size_t>(i - a0)];
          sp.block = k, sp.begin = static_cast<std::int64_t>(f.v.size());
          for (const auto& [j, v] : cand)
            if (v >= threshold) f.j.push_back(j - b0), f.v.push_back(v);
          sp.end = static_cast<std::int64_t>(f.v.size());
        }
      }
    });
    for (std::int64_t i = 0; i < l.n; ++i) {
      const Span& sp = span[static_cast<std::size_t>(i)];
      for (std::int64_t e = sp.begin; e < sp.end; ++e) {
        const Found& f = found[static_cast<std::size_t>(sp.block)];
        push(batch, i, f.j[e], f.v[e]);
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------ NMS

namespace {

// IoU for suppression, computed as torchvision's kernel does: in T, with
// inter / (area_kept + area_other - inter); zero union gives 0 (torchvision:
// NaN), which suppresses nothing either way.
template <class T>
double nms_iou(const BoxSet<T>& s, std::int64_t kept, std::int64_t other) {
  if (s.rotated) return double(rotated_value(s, kept, s, other, Metric::iou));
  return double(value<Metric::iou>(one(s, kept), one(s, other)));
}

// The largest T not above t: for v in T, v > t (in double) iff v > below(t).
template <class T>
T below(double t) {
  T f = static_cast<T>(t);
  if (double(f) > t) f = std::nextafter(f, -std::numeric_limits<T>::infinity());
  return f;
}

// The kept boxes of greedy NMS, filed by cell in contiguous arrays, so the
// test "does any kept box suppress this one" is a vectorised loop per cell.
// Pairs are not deduplicated: a box met twice changes nothing.
template <class T>
class KeptGrid {
 public:
  KeptGrid(const BoxSet<T>& s, const std::int64_t* ids, std::int64_t n, double threshold)
      : s_(s), g_(s, ids, n, 0.5), cells_(static_cast<std::size_t>(g_.nx * g_.ny)), thr_(below<T>(threshold)),
        threshold_(threshold) {}

  bool suppressed(std::int64_t j) const {
    const std::int64_t c0 = g_.col(s_.x1[j]), c1 = g_.col(s_.x2[j]), r0 = g_.row(s_.y1[j]), r1 = g_.row(s_.y2[j]);
    if ((c1 - c0 + 1) * (r1 - r0 + 1) > CellGeometry::max_cells) return any(all_, j);
    for (std::int64_t r = r0; r <= r1; ++r)
      for (std::int64_t c = c0; c <= c1; ++c)
        if (any(cells_[static_cast<std::size_t>(r * g_.nx + c)], j)) return true;
    return any(big_, j);
  }

  void insert(std::int64_t i) {
    add(all_, i);
    const std::int64_t c0 = g_.col(s_.x1[i]), c1 = g_.col(s_.x2[i]), r0 = g_.row(s_.y1[i]), r1 = g_.row(s_.y2[i]);
    if ((c1 - c0 + 1) * (r1 - r0 + 1) > CellGeometry::max_cells) {
      add(big_, i);
      return;
    }
    for (std::int64_t r = r0; r <= r1; ++r)
      for (std::int64_t c = c0; c <= c1; ++c) add(cells_[static_cast<std::size_t>(r * g_.nx + c)], i);
  }

 private:
  struct Bucket {
    std::vector<T> x1, y1, x2, y2, area;
    std::vector<std::int64_t> id;
  };
  void add(Bucket& b, std::int64_t i) {
    b.x1.push_back(s_.x1[i]), b.y1.push_back(s_.y1[i]), b.x2.push_back(s_.x2[i]), b.y2.push_back(s_.y2[i]);
    b.area.push_back(s_.area[i]), b.id.push_back(i);
  }

  bool any(const Bucket& b, std::int64_t j) const {
    const std::size_t n = b.id.size();
    if (s_.rotated) {
      for (std::size_t k = 0; k < n; ++k)
        if (nms_iou(s_, b.id[k], j) > threshold_) return true;
      return false;
    }
    const One<T> q = one(s_, j);
    const T* __restrict x1 = b.x1.data();
    const T* __restrict y1 = b.y1.data();
    const T* __restrict x2 = b.x2.data();
    const T* __restrict y2 = b.y2.data();
    const T* __restrict ar = b.area.data();
    int hit = 0;
    for (std::size_t k = 0; k < n; ++k)
      hit |= value<Metric::iou>(One<T>{x1[k], y1[k], x2[k], y2[k], ar[k], 0, 0, 0}, q) > thr_;
    return hit != 0;
  }

  const BoxSet<T>& s_;
  CellGeometry g_;
  std::vector<Bucket> cells_;
  Bucket big_, all_;
  T thr_;
  double threshold_;
};

// Greedy hard NMS over ids (sorted by decreasing score): a box is kept unless
// a kept box has IoU > threshold with it. Marks kept[i]; stops after max_keep.
template <class T>
void greedy(const BoxSet<T>& s, const std::int64_t* ids, std::int64_t n, const NmsOptions& opt,
            std::vector<std::uint8_t>& kept) {
  const std::int64_t max_keep = opt.max_output < 0 ? n : opt.max_output;
  KeptGrid<T> grid(s, ids, n, opt.iou_threshold);
  std::int64_t count = 0;
  for (std::int64_t k = 0; k < n && count < max_keep; ++k) {
    const std::int64_t j = ids[k];
    if (!grid.suppressed(j)) {
      kept[j] = 1, ++count;
      grid.insert(j);
    }
  }
}

// A binary max-heap of positions 0..n-1 keyed by (score desc, index asc),
// whose scores can decrease in place: memory stays n whatever the decays.
class ScoreHeap {
 public:
  ScoreHeap(const std::vector<double>& score, const std::int64_t* ids, std::int64_t n)
      : score_(score), ids_(ids), pos_(static_cast<std::size_t>(n), -1) {
    heap_.reserve(static_cast<std::size_t>(n));
  }
  bool empty() const { return heap_.empty(); }
  std::int64_t top() const { return heap_.front(); }
  void push(std::int64_t k) {
    pos_[k] = static_cast<std::int64_t>(heap_.size());
    heap_.push_back(k);
    up(pos_[k]);
  }
  void remove(std::int64_t k) {
    const std::int64_t at = pos_[k], last = static_cast<std::int64_t>(heap_.size()) - 1;
    swap_at(at, last);
    heap_.pop_back();
    pos_[k] = -1;
    if (at < last) {
      up(at);
      down(at);
    }
  }
  void decreased(std::int64_t k) { down(pos_[k]); }

 private:
  bool before(std::int64_t a, std::int64_t b) const {  // a ranks above b
    const double sa = score_[ids_[a]], sb = score_[ids_[b]];
    return sa > sb || (sa == sb && ids_[a] < ids_[b]);
  }
  void swap_at(std::int64_t x, std::int64_t y) {
    std::swap(heap_[x], heap_[y]);
    pos_[heap_[x]] = x, pos_[heap_[y]] = y;
  }
  void up(std::int64_t at) {
    while (at > 0 && before(heap_[at], heap_[(at - 1) / 2])) swap_at(at, (at - 1) / 2), at = (at - 1) / 2;
  }
  void down(std::int64_t at) {
    const std::int64_t n = static_cast<std::int64_t>(heap_.size());
    while (true) {
      std::int64_t best = at;
      for (std::int64_t c = 2 * at + 1; c <= 2 * at + 2 && c < n; ++c)
        if (before(heap_[c], heap_[best])) best = c;
      if (best == at) return;
      swap_at(at, best), at = best;
    }
  }
  const std::vector<double>& score_;
  const std::int64_t* ids_;
  std::vector<std::int64_t> heap_, pos_;
};

// Soft-NMS over ids: repeatedly picks the box of highest current score (lowest
// index among equals) and decays the scores of the remaining boxes that
// overlap it. cur holds the current scores, and the final ones of kept boxes.
template <class T>
void soft(const BoxSet<T>& s, const std::int64_t* ids, std::int64_t n, const NmsOptions& opt,
          std::vector<std::uint8_t>& kept, std::vector<double>& cur) {
  const std::int64_t max_keep = opt.max_output < 0 ? n : opt.max_output;
  const StaticGrid<T> grid(s, ids, n);
  ScoreHeap heap(cur, ids, n);
  std::vector<std::uint8_t> waiting(static_cast<std::size_t>(n), 1);
  for (std::int64_t k = 0; k < n; ++k) heap.push(k);
  std::int64_t count = 0;
  while (!heap.empty() && count < max_keep) {
    const std::int64_t p = heap.top();
    const std::int64_t i = ids[p];
    heap.remove(p);
    waiting[p] = 0;
    kept[i] = 1, ++count;
    grid.query(s.x1[i], s.y1[i], s.x2[i], s.y2[i], [&](std::int64_t q, std::int64_t j, T, T, T, T) {
      if (!waiting[q]) return;
      const double iou = nms_iou(s, i, j);
      const double w = opt.soft == Soft::linear ? (iou > opt.iou_threshold ? 1 - iou : 1)
                                                : std::exp(-(iou * iou) / opt.sigma);
      if (!(w < 1)) return;
      cur[j] *= w;
      if (opt.score_threshold && !(cur[j] > *opt.score_threshold)) {
        heap.remove(q);
        waiting[q] = 0;
      } else {
        heap.decreased(q);
      }
    });
  }
}

}  // namespace

template <class T>
NmsResult nms(const BoxSet<T>& boxes, const std::vector<double>& scores, const std::vector<std::int64_t>* classes,
              const NmsOptions& opt) {
  const std::int64_t n = boxes.size;
  if (static_cast<std::int64_t>(scores.size()) != n || (classes && static_cast<std::int64_t>(classes->size()) != n))
    throw_internal("nms: boxes, scores and classes differ in length");
  if (!boxes.invalid.empty()) throw_internal("nms: invalid boxes");
  for (std::int64_t i = 0; i < n; ++i) {
    if (std::isnan(scores[i])) throw_data("score " + std::to_string(i) + " is NaN");
    if (opt.soft != Soft::none && !std::isfinite(scores[i]))
      throw_data("score " + std::to_string(i) + " is " + num(scores[i]) + "; soft-NMS needs finite scores");
  }
  // Candidates by decreasing score, equal scores by index (a stable order).
  std::vector<std::int64_t> order;
  order.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    if (!opt.score_threshold || scores[i] > *opt.score_threshold) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](std::int64_t x, std::int64_t y) {
    return scores[x] > scores[y] || (scores[x] == scores[y] && x < y);
  });
  // Groups: one per class, each in score order.
  std::vector<std::pair<std::int64_t, std::int64_t>> groups;  // [begin, end) of order
  if (classes) {
    std::stable_sort(order.begin(), order.end(),
                     [&](std::int64_t x, std::int64_t y) { return (*classes)[x] < (*classes)[y]; });
    for (std::size_t b = 0; b < order.size();) {
      std::size_t e = b + 1;
      while (e < order.size() && (*classes)[order[e]] == (*classes)[order[b]]) ++e;
      groups.emplace_back(b, e);
      b = e;
    }
  } else if (!order.empty()) {
    groups.emplace_back(0, static_cast<std::int64_t>(order.size()));
  }
  std::vector<std::uint8_t> kept(static_cast<std::size_t>(n), 0);
  std::vector<double> final_score(scores);
  parallel_for(static_cast<std::int64_t>(groups.size()), 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t g = lo; g < hi; ++g) {
      const auto [b, e] = groups[static_cast<std::size_t>(g)];
      if (opt.soft == Soft::none)
        greedy(boxes, order.data() + b, e - b, opt, kept);
      else
        soft(boxes, order.data() + b, e - b, opt, kept, final_score);
    }
  });
  NmsResult r;
  for (std::int64_t i = 0; i < n; ++i)
    if (kept[i]) r.keep.push_back(i);
  std::sort(r.keep.begin(), r.keep.end(), [&](std::int64_t x, std::int64_t y) {
    return final_score[x] > final_score[y] || (final_score[x] == final_score[y] && x < y);
  });
  if (opt.max_output >= 0 && static_cast<std::int64_t>(r.keep.size()) > opt.max_output)
    r.keep.resize(static_cast<std::size_t>(opt.max_output));
  for (std::int64_t i : r.keep) r.scores.push_back(final_score[i]);
  return r;
}

// ------------------------------------------------------------------ instantiations

#define NNKIT_BOXES_INSTANTIATE(T)                                                                       \
  template BoxSet<T> load<T>(const Tensor&, const Convention&, const std::string&);                    \
  template BoxSet<T> from_rows<T>(const std::vector<double>&, const Convention&);                      \
  template T pair_value<T>(const BoxSet<T>&, std::int64_t, const BoxSet<T>&, std::int64_t, Metric);   \
  template void pairwise_rows<T>(const BoxSet<T>&, const BoxSet<T>&, const Layout&, Metric,           \
                                 std::int64_t, std::int64_t, T*);                                      \
  template void pairwise_stream<T>(const BoxSet<T>&, const BoxSet<T>&, const Layout&, Metric,         \
                                   const std::function<void(const T*, std::int64_t)>&, std::size_t);   \
  template void aligned<T>(const BoxSet<T>&, const BoxSet<T>&, Metric, T*);                            \
  template SparsePairs<T> pairwise_sparse<T>(const BoxSet<T>&, const BoxSet<T>&, const Layout&, Metric, \
                                             double);                                                  \
  template NmsResult nms<T>(const BoxSet<T>&, const std::vector<double>&,                              \
                            const std::vector<std::int64_t>*, const NmsOptions&);
NNKIT_BOXES_INSTANTIATE(float)
NNKIT_BOXES_INSTANTIATE(double)
#undef NNKIT_BOXES_INSTANTIATE

}  // namespace nnkit::boxes
