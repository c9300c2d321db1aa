// Zero-copy xtensor views of a Tensor's buffer for the algorithms.
#pragma once
#include <xtensor/xadapt.hpp>

#include "nnkit/tensor.hpp"

namespace nnkit {

// A writable xtensor adaptor over t's buffer with t's shape (C order).
template <class T>
auto xview(Tensor& t) {
  std::vector<std::size_t> shape(t.shape().begin(), t.shape().end());
  return xt::adapt(t.data<T>(), static_cast<std::size_t>(t.numel()), xt::no_ownership(), shape);
}
template <class T>
auto xview(const Tensor& t) {
  std::vector<std::size_t> shape(t.shape().begin(), t.shape().end());
  return xt::adapt(t.data<T>(), static_cast<std::size_t>(t.numel()), xt::no_ownership(), shape);
}
// A 2-D view [rows, cols] of any tensor whose last axis is cols (BLAS wants 2-D).
template <class T>
auto xview_2d(const Tensor& t) {
  const std::size_t cols = t.ndim() ? static_cast<std::size_t>(t.shape().back()) : 1;
  const std::size_t rows = cols ? static_cast<std::size_t>(t.numel()) / cols : 0;
  std::array<std::size_t, 2> shape{rows, cols};
  return xt::adapt(t.data<T>(), static_cast<std::size_t>(t.numel()), xt::no_ownership(), shape);
}

}  // namespace nnkit
