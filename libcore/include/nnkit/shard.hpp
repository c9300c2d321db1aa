// Concatenation and contiguous, balanced splitting along an axis: the two
// halves of sharding a row-wise job and merging its results.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nnkit/tensor.hpp"

namespace nnkit {

struct Part {
  std::int64_t index;  // K, 0-based
  std::int64_t count;  // N
};
// Parses "K/N" with 0 <= K < N (usage error otherwise).
Part parse_part(const std::string& text);

// [begin, end) of part k of n over length items: contiguous, in order, sizes
// differing by at most one (the first length % n parts are one longer).
std::pair<std::int64_t, std::int64_t> part_range(std::int64_t length, Part part);

// Resolves a possibly negative axis against rank (usage error when out of range).
std::size_t normalize_axis(std::int64_t axis, std::size_t rank);

// Items [begin, end) of t along axis.
Tensor slice_axis(const Tensor& t, std::size_t axis, std::int64_t begin, std::int64_t end);

// Joins tensors along axis; dtypes and all other extents must agree (data
// errors naming the offending tensor otherwise).
Tensor concat(const std::vector<const Tensor*>& parts, std::size_t axis);

}  // namespace nnkit
