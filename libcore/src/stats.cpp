#include "nnkit/stats.hpp"

#include <cmath>
#include <limits>
#include <type_traits>

namespace nnkit {

namespace {

// Half floats are stored as their bits (uint16_t) but read as numbers.
template <class T, bool IsHalf>
double value(const T* p, std::int64_t i) {
  if constexpr (IsHalf)
    return half_to_float(p[i]);
  else
    return static_cast<double>(p[i]);
}

template <class T, bool IsHalf = false>
TensorStats stats_of(const T* p, std::int64_t n) {
  TensorStats s;
  s.count = n;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = value<T, IsHalf>(p, i);
    if (std::isnan(v)) {
      ++s.nan;
    } else if (std::isinf(v)) {
      ++s.inf;
    } else {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      sum += v;
    }
  }
  s.finite = n - s.nan - s.inf;
  if (s.finite == 0) {
    s.min = s.max = s.mean = s.std = std::numeric_limits<double>::quiet_NaN();
    return s;
  }
  s.min = lo;
  s.max = hi;
  s.mean = sum / static_cast<double>(s.finite);
  // Second pass about the mean: no catastrophic cancellation of E[x^2] - E[x]^2.
  double ss = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = value<T, IsHalf>(p, i);
    if (std::isfinite(v)) ss += (v - s.mean) * (v - s.mean);
  }
  s.std = std::sqrt(ss / static_cast<double>(s.finite));
  return s;
}

}  // namespace

TensorStats compute_stats(const Tensor& t) {
  return visit_dtype(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, half_bits>)
      return stats_of<std::uint16_t, true>(reinterpret_cast<const std::uint16_t*>(t.bytes()), t.numel());
    else
      return stats_of(reinterpret_cast<const T*>(t.bytes()), t.numel());
  });
}

}  // namespace nnkit
