// The exact intersection area of two rotated rectangles.
//
// b is expressed in a's own frame, where a is the axis-aligned rectangle
// [-w/2, w/2] x [-h/2, h/2], and clipped by a's four sides (Sutherland-Hodgman
// against axis-aligned lines). Working in a's frame keeps the numbers small
// (relative to a's centre, so far-away boxes lose nothing) and makes every
// clipping test a plain coordinate comparison; the clipped coordinate of a new
// vertex is set exactly on the side. The relative rotation is reduced by whole
// quarter turns first (exact, by remquo; a quarter turn swaps w and h), so
// boxes that differ by multiples of 90 degrees, identical boxes included, are
// clipped as exactly axis-aligned rectangles.
#include <algorithm>
#include <array>
#include <cmath>

#include "nnkit/ops/boxes.hpp"

namespace nnkit::boxes {

namespace {

constexpr double pi = 3.14159265358979323846;

struct Pt {
  double x, y;
};

// The part of the convex polygon in[0..n) where sign * coordinate <= limit
// (coordinate x when along_x, else y). Returns the new vertex count.
int clip(const Pt* in, int n, Pt* out, bool along_x, double sign, double limit) {
  int k = 0;
  for (int i = 0; i < n; ++i) {
    const Pt& p = in[i];
    const Pt& q = in[i + 1 == n ? 0 : i + 1];
    const double dp = sign * (along_x ? p.x : p.y) - limit;
    const double dq = sign * (along_x ? q.x : q.y) - limit;
    if (dp <= 0) out[k++] = p;
    if ((dp < 0 && dq > 0) || (dp > 0 && dq < 0)) {
      const double t = dp / (dp - dq);
      Pt r{p.x + t * (q.x - p.x), p.y + t * (q.y - p.y)};
      (along_x ? r.x : r.y) = sign * limit;  // exactly on the side
      out[k++] = r;
    }
  }
  return k;
}

}  // namespace

double rotated_intersection(const RotatedBox& a, const RotatedBox& b, double quarter_turn) {
  if (!(a.w > 0 && a.h > 0 && b.w > 0 && b.h > 0)) return 0;
  const double to_rad = (pi / 2) / quarter_turn;
  // b's rotation relative to a, within half a quarter turn of 0.
  int quarters = 0;
  const double rel = std::remquo(b.angle - a.angle, quarter_turn, &quarters) * to_rad;
  double bw = b.w, bh = b.h;
  if (quarters & 1) std::swap(bw, bh);
  const double c = std::cos(rel), s = std::sin(rel);
  // b's centre in a's frame: the offset rotated by -(a's angle).
  const double ta = std::remainder(a.angle, 4 * quarter_turn) * to_rad;
  const double ca = std::cos(ta), sa = std::sin(ta);
  const double dx = b.cx - a.cx, dy = b.cy - a.cy;
  const double px = dx * ca + dy * sa, py = dy * ca - dx * sa;
  // Half-axes of b: u along its width, v along its height (u turned by +90).
  const double ux = bw / 2 * c, uy = bw / 2 * s, vx = -bh / 2 * s, vy = bh / 2 * c;

  // A convex quadrilateral gains at most one vertex per clip in exact
  // arithmetic; rounding can add a few, never more than doubling.
  std::array<Pt, 64> p{}, q{};
  p[0] = {px - ux - vx, py - uy - vy};
  p[1] = {px + ux - vx, py + uy - vy};
  p[2] = {px + ux + vx, py + uy + vy};
  p[3] = {px - ux + vx, py - uy + vy};
  int n = 4;
  const double hw = a.w / 2, hh = a.h / 2;
  n = clip(p.data(), n, q.data(), true, 1, hw);
  n = clip(q.data(), n, p.data(), true, -1, hw);
  n = clip(p.data(), n, q.data(), false, 1, hh);
  n = clip(q.data(), n, p.data(), false, -1, hh);
  if (n < 3) return 0;
  double twice = 0;  // shoelace
  for (int i = 0; i < n; ++i) {
    const Pt& u = p[i];
    const Pt& v = p[i + 1 == n ? 0 : i + 1];
    twice += u.x * v.y - v.x * u.y;
  }
  // Rounding must not let the overlap exceed either box.
  return std::min({std::abs(twice) / 2, a.w * a.h, b.w * b.h});
}

}  // namespace nnkit::boxes
