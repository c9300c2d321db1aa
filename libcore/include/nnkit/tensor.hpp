// The tensor: a dtype, a shape and an owning, C-order, 64-byte aligned buffer.
// Algorithms take typed views of it (see nnkit/xview.hpp for xtensor adaptors).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nnkit/dtype.hpp"
#include "nnkit/error.hpp"

namespace nnkit {

using Shape = std::vector<std::int64_t>;

// Number of elements of a shape; throws a data error on negative extents or
// when the product overflows int64.
std::int64_t checked_numel(const Shape& shape);
// Bytes needed for numel elements of t, checked for overflow.
std::int64_t checked_nbytes(const Shape& shape, DType t);
// "[2, 3, 4]"
std::string shape_str(const Shape& shape);
// Parses "2,3,-1" or "2x3x-1"; at most one -1 is allowed, resolved against numel.
Shape parse_shape(const std::string& s, std::int64_t numel);

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled tensor.
  Tensor(DType dtype, Shape shape);
  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  // A tensor whose contents are left unset (readers fill it; pages are only
  // touched as data arrives). Allocation failure is a data error naming the
  // size, and so is a tensor larger than NNKIT_MAX_MEMORY (memory_limit.hpp);
  // both constructors and copies check the same way.
  static Tensor uninitialized(DType dtype, Shape shape);

  template <class T>
  static Tensor from_vector(Shape shape, const std::vector<T>& values);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  std::size_t ndim() const { return shape_.size(); }
  std::int64_t dim(std::size_t axis) const { return shape_.at(axis); }
  std::int64_t numel() const { return numel_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }
  std::size_t itemsize() const { return dtype_size(dtype_); }

  std::byte* bytes() { return data_.get(); }
  const std::byte* bytes() const { return data_.get(); }

  // Typed access; throws an internal error when T does not match the dtype.
  template <class T> T* data();
  template <class T> const T* data() const;

  // Element i (flat, C order) as double; f2 is decoded.
  double get(std::int64_t i) const;

  // Same data, new shape with the same number of elements.
  Tensor reshaped(Shape shape) const&;
  Tensor reshaped(Shape shape) &&;

  // Converts to another dtype. With checked=true an integer target refuses
  // NaN, infinite and out-of-range values (a data error naming the first bad
  // element) and float values truncate toward zero as numpy's astype does;
  // float targets round to nearest. bool targets are value != 0.
  Tensor astype(DType target, bool checked = true) const;

 private:
  struct Free { void operator()(std::byte* p) const; };
  DType dtype_ = DType::f4;
  Shape shape_;
  std::int64_t numel_ = 0;
  std::unique_ptr<std::byte[], Free> data_;
  void check_type(DType want) const;
  void allocate(bool zero);
};

template <class T>
T* Tensor::data() {
  check_type(dtype_of_v<T>);
  return reinterpret_cast<T*>(data_.get());
}
template <class T>
const T* Tensor::data() const {
  check_type(dtype_of_v<T>);
  return reinterpret_cast<const T*>(data_.get());
}
template <class T>
Tensor Tensor::from_vector(Shape shape, const std::vector<T>& values) {
  Tensor t(dtype_of_v<T>, std::move(shape));
  if (static_cast<std::int64_t>(values.size()) != t.numel())
    throw_internal("from_vector: " + std::to_string(values.size()) + " values for shape " +
                   shape_str(t.shape()));
  T* out = t.data<T>();
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = values[i];
  return t;
}

// A tensor with the name it had in its container ("" for npy streams).
struct NamedTensor {
  std::string name;
  Tensor tensor;
};

}  // namespace nnkit
