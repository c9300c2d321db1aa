// Summary statistics of a tensor, as tensor-info prints them.
#pragma once
#include <cstdint>

#include "nnkit/tensor.hpp"

namespace nnkit {

struct TensorStats {
  std::int64_t count = 0;   // elements
  std::int64_t finite = 0;  // elements that are neither NaN nor infinite
  std::int64_t nan = 0;
  std::int64_t inf = 0;     // +inf and -inf
  // Over the finite elements only (so one NaN does not hide the rest); NaN
  // when there are none. std is the population standard deviation (numpy's
  // default ddof=0), computed in two passes in double precision.
  double min = 0, max = 0, mean = 0, std = 0;
};

TensorStats compute_stats(const Tensor& t);

}  // namespace nnkit
