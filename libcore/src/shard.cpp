#include "nnkit/shard.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace nnkit {

Part parse_part(const std::string& text) {
  const auto slash = text.find('/');
  auto number = [&](const std::string& s, long long& v) {
    char* end = nullptr;
    errno = 0;
    v = std::strtoll(s.c_str(), &end, 10);
    return !s.empty() && *end == '\0' && errno == 0;
  };
  long long k = 0, n = 0;
  if (slash == std::string::npos || !number(text.substr(0, slash), k) ||
      !number(text.substr(slash + 1), n))
    throw_usage("bad part '" + text + "': expected K/N, e.g. 0/4");
  if (n < 1 || k < 0 || k >= n)
    throw_usage("bad part '" + text + "': need 0 <= K < N (parts are numbered from 0)");
  return {k, n};
}

std::pair<std::int64_t, std::int64_t> part_range(std::int64_t length, Part p) {
  const std::int64_t base = length / p.count, extra = length % p.count;
  const std::int64_t begin = p.index * base + std::min(p.index, extra);
  return {begin, begin + base + (p.index < extra ? 1 : 0)};
}

std::size_t normalize_axis(std::int64_t axis, std::size_t rank) {
  const std::int64_t r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= r)
    throw_usage("axis " + std::to_string(axis) + " is out of range for a tensor of rank " +
                std::to_string(rank));
  return static_cast<std::size_t>(axis < 0 ? axis + r : axis);
}

namespace {
// A C-order tensor seen as [outer, extent along axis, inner] bytes.
struct Blocks {
  std::int64_t outer = 1, inner_bytes = 1;
};
Blocks blocks(const Shape& s, std::size_t axis, std::size_t itemsize) {
  Blocks b;
  for (std::size_t i = 0; i < axis; ++i) b.outer *= s[i];
  b.inner_bytes = static_cast<std::int64_t>(itemsize);
  for (std::size_t i = axis + 1; i < s.size(); ++i) b.inner_bytes *= s[i];
  return b;
}
}  // namespace

Tensor slice_axis(const Tensor& t, std::size_t axis, std::int64_t begin, std::int64_t end) {
  Shape shape = t.shape();
  shape[axis] = end - begin;
  Tensor out = Tensor::uninitialized(t.dtype(), shape);
  const Blocks b = blocks(t.shape(), axis, t.itemsize());
  const std::int64_t src_row = t.shape()[axis] * b.inner_bytes;
  const std::int64_t dst_row = (end - begin) * b.inner_bytes;
  for (std::int64_t o = 0; o < b.outer; ++o)
    std::memcpy(out.bytes() + o * dst_row, t.bytes() + o * src_row + begin * b.inner_bytes,
                static_cast<std::size_t>(dst_row));
  return out;
}

Tensor concat(const std::vector<const Tensor*>& parts, std::size_t axis) {
  if (parts.empty()) throw_usage("nothing to concatenate");
  const Tensor& first = *parts.front();
  Shape shape = first.shape();
  shape[axis] = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const Tensor& p = *parts[i];
    if (p.dtype() != first.dtype())
      throw_data("tensor " + std::to_string(i) + " is " + std::string(dtype_name(p.dtype())) +
                 " but tensor 0 is " + std::string(dtype_name(first.dtype())) +
                 " (convert first with tensor-convert --dtype)");
    bool same = p.ndim() == first.ndim();
    for (std::size_t a = 0; same && a < p.ndim(); ++a)
      same = a == axis || p.shape()[a] == first.shape()[a];
    if (!same)
      throw_data("tensor " + std::to_string(i) + " has shape " + shape_str(p.shape()) +
                 ", which does not match tensor 0's " + shape_str(first.shape()) +
                 " outside axis " + std::to_string(axis));
    if (__builtin_add_overflow(shape[axis], p.shape()[axis], &shape[axis]))
      throw_data("concatenated shape is too large");
  }
  Tensor out = Tensor::uninitialized(first.dtype(), shape);
  const Blocks b = blocks(shape, axis, first.itemsize());
  const std::int64_t dst_row = shape[axis] * b.inner_bytes;
  std::int64_t at = 0;  // byte offset of this part within an output row
  for (const Tensor* p : parts) {
    const std::int64_t row = p->shape()[axis] * b.inner_bytes;
    for (std::int64_t o = 0; o < b.outer; ++o)
      std::memcpy(out.bytes() + o * dst_row + at, p->bytes() + o * row, static_cast<std::size_t>(row));
    at += row;
  }
  return out;
}

}  // namespace nnkit
