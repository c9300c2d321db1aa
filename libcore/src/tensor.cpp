#include "nnkit/tensor.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <sstream>
#include <type_traits>

#include "nnkit/memory_limit.hpp"

namespace nnkit {

std::int64_t checked_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0) throw_data("negative dimension in shape " + shape_str(shape));
    if (__builtin_mul_overflow(n, d, &n))
      throw_data("shape " + shape_str(shape) + " has too many elements");
  }
  return n;
}

std::int64_t checked_nbytes(const Shape& shape, DType t) {
  std::int64_t bytes;
  if (__builtin_mul_overflow(checked_numel(shape), static_cast<std::int64_t>(dtype_size(t)), &bytes))
    throw_data("shape " + shape_str(shape) + " of " + std::string(dtype_name(t)) + " is too large");
  return bytes;
}

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Shape parse_shape(const std::string& text, std::int64_t numel) {
  Shape shape;
  int unknown = -1;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) throw_usage("bad shape '" + text + "': empty dimension");
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(cur.c_str(), &end, 10);
    if (*end != '\0' || errno == ERANGE || v < -1)
      throw_usage("bad shape '" + text + "': '" + cur + "' is not a dimension");
    if (v == -1) {
      if (unknown >= 0) throw_usage("bad shape '" + text + "': only one -1 is allowed");
      unknown = static_cast<int>(shape.size());
    }
    shape.push_back(v);
    cur.clear();
  };
  for (char c : text) {
    if (c == ',' || c == 'x' || c == 'X')
      flush();
    else if (c != ' ' && c != '(' && c != ')' && c != '[' && c != ']')
      cur += c;
  }
  if (!cur.empty() || !shape.empty() || text.find_first_of(",xX") != std::string::npos) flush();
  std::int64_t known = 1;
  for (std::size_t i = 0; i < shape.size(); ++i)
    if (static_cast<int>(i) != unknown && __builtin_mul_overflow(known, shape[i], &known))
      throw_usage("bad shape '" + text + "': too many elements");
  if (unknown >= 0) {
    if (known == 0 || numel % known != 0)
      throw_usage("cannot reshape " + std::to_string(numel) + " elements to '" + text + "'");
    shape[unknown] = numel / known;
  } else if (known != numel) {
    throw_usage("cannot reshape " + std::to_string(numel) + " elements to '" + text + "'");
  }
  return shape;
}

void Tensor::Free::operator()(std::byte* p) const { std::free(p); }

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  allocate(true);
}

Tensor Tensor::uninitialized(DType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.allocate(false);
  return t;
}

void Tensor::allocate(bool zero) {
  numel_ = checked_numel(shape_);
  const std::int64_t bytes = checked_nbytes(shape_, dtype_);
  if (!allocation_allowed(bytes))  // the message is built only when it is needed
    check_allocation(bytes, "a tensor " + shape_str(shape_) + " " + std::string(dtype_name(dtype_)));
  // 64-byte alignment suits SIMD loads and BLAS. Large buffers are aligned to
  // 2 MiB and asked to use transparent huge pages: touching 1 GiB then costs
  // 512 page faults instead of 262,144 (most of the time of a copy-bound tool).
  constexpr std::size_t huge_page = std::size_t{2} << 20;
  const bool large = static_cast<std::size_t>(bytes) >= 2 * huge_page;
  const std::size_t align = large ? huge_page : 64;
  const std::size_t alloc =
      std::max<std::size_t>(align, (static_cast<std::size_t>(bytes) + align - 1) / align * align);
  void* p = std::aligned_alloc(align, alloc);
  if (!p)
    throw_data("cannot allocate " + std::to_string(bytes) + " bytes for a " +
               std::string(dtype_name(dtype_)) + " tensor of shape " + shape_str(shape_));
  if (large) ::madvise(p, alloc, MADV_HUGEPAGE);  // advice only: failure is harmless
  if (zero) std::memset(p, 0, alloc);
  data_.reset(static_cast<std::byte*>(p));
}

Tensor::Tensor(const Tensor& o) : dtype_(o.dtype_), shape_(o.shape_) {
  allocate(false);
  if (o.nbytes()) std::memcpy(data_.get(), o.data_.get(), o.nbytes());
}

Tensor& Tensor::operator=(const Tensor& o) {
  if (this != &o) *this = Tensor(o);
  return *this;
}

void Tensor::check_type(DType want) const {
  if (want != dtype_)
    throw_internal("tensor of " + std::string(dtype_name(dtype_)) + " accessed as " +
                   std::string(dtype_name(want)));
}

double Tensor::get(std::int64_t i) const {
  return visit_dtype(dtype_, [&](auto tag) -> double {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, half_bits>)
      return half_to_float(reinterpret_cast<const std::uint16_t*>(data_.get())[i]);
    else
      return static_cast<double>(reinterpret_cast<const T*>(data_.get())[i]);
  });
}

Tensor Tensor::reshaped(Shape shape) const& { return Tensor(*this).reshaped(std::move(shape)); }

Tensor Tensor::reshaped(Shape shape) && {
  if (checked_numel(shape) != numel_)
    throw_usage("cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  shape_ = std::move(shape);
  return std::move(*this);
}

namespace {

template <class T>
using Storage = std::conditional_t<std::is_same_v<T, half_bits>, std::uint16_t, T>;

template <class T>
double load(const std::byte* p, std::int64_t i) {
  if constexpr (std::is_same_v<T, half_bits>)
    return half_to_float(reinterpret_cast<const std::uint16_t*>(p)[i]);
  else
    return static_cast<double>(reinterpret_cast<const T*>(p)[i]);
}

// Integer targets: refuse what cannot be represented instead of wrapping.
template <class Dst>
void check_int_range(double v, std::int64_t i, DType target) {
  constexpr double lo = static_cast<double>(std::numeric_limits<Dst>::min());
  // 2^bits as an exact double: values must be strictly below it.
  constexpr double hi_excl = static_cast<double>(std::numeric_limits<Dst>::max() / 2 + 1) * 2.0;
  if (std::isnan(v) || std::isinf(v) || std::trunc(v) < lo || std::trunc(v) >= hi_excl) {
    std::ostringstream m;
    m << "cannot convert element " << i << " (" << v << ") to " << dtype_name(target)
      << ": out of range";
    throw_data(m.str());
  }
}

// double -> half in one rounding, as numpy does: round to odd into float (24
// bits, more than 2 beyond half's 11), then to nearest even into half.
std::uint16_t double_to_half(double d) {
  float f = static_cast<float>(d);
  if (std::isfinite(f) && static_cast<double>(f) != d) {
    if (std::fabs(static_cast<double>(f)) > std::fabs(d)) f = std::nextafter(f, 0.0f);
    std::uint32_t bits;
    std::memcpy(&bits, &f, 4);
    bits |= 1u;  // sticky: remembers that the value was inexact
    std::memcpy(&f, &bits, 4);
  }
  return float_to_half(f);
}

// Unchecked float -> int: NaN is 0, out-of-range saturates (never UB).
template <class Dst>
Dst saturate(double v) {
  constexpr double lo = static_cast<double>(std::numeric_limits<Dst>::min());
  constexpr double hi_excl = static_cast<double>(std::numeric_limits<Dst>::max() / 2 + 1) * 2.0;
  if (std::isnan(v)) return 0;
  if (v <= lo) return std::numeric_limits<Dst>::min();
  if (v >= hi_excl) return std::numeric_limits<Dst>::max();
  return static_cast<Dst>(std::trunc(v));
}

template <class Src, class Dst>
void convert(const std::byte* in, std::byte* out, std::int64_t n, bool checked, DType target) {
  using S = Storage<Src>;
  const S* src = reinterpret_cast<const S*>(in);
  if constexpr (std::is_same_v<Dst, half_bits>) {
    auto* dst = reinterpret_cast<std::uint16_t*>(out);
    if constexpr (std::is_same_v<Src, float>)
      floats_to_halves(src, dst, n);  // one rounding already: no detour through double
    else
      for (std::int64_t i = 0; i < n; ++i) dst[i] = double_to_half(load<Src>(in, i));
  } else if constexpr (std::is_same_v<Dst, bool>) {
    auto* dst = reinterpret_cast<bool*>(out);
    for (std::int64_t i = 0; i < n; ++i) dst[i] = load<Src>(in, i) != 0.0;
  } else if constexpr (std::is_floating_point_v<Dst>) {
    auto* dst = reinterpret_cast<Dst*>(out);
    if constexpr (std::is_same_v<Src, half_bits> && std::is_same_v<Dst, float>) {
      halves_to_floats(src, dst, n);
    } else if constexpr (std::is_same_v<Src, half_bits>) {
      for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<Dst>(half_to_float(src[i]));
    } else {
      for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<Dst>(src[i]);
    }
  } else {  // integer target
    auto* dst = reinterpret_cast<Dst*>(out);
    constexpr bool src_is_int = std::is_integral_v<Src> && !std::is_same_v<Src, bool>;
    if constexpr (src_is_int) {
      // int -> int: exact range checks without going through double.
      for (std::int64_t i = 0; i < n; ++i) {
        const Src v = src[i];
        bool ok;
        if constexpr (std::is_signed_v<Src>)
          ok = static_cast<std::intmax_t>(v) >= static_cast<std::intmax_t>(std::numeric_limits<Dst>::min()) &&
               (v < 0 || static_cast<std::uintmax_t>(v) <= static_cast<std::uintmax_t>(std::numeric_limits<Dst>::max()));
        else
          ok = static_cast<std::uintmax_t>(v) <= static_cast<std::uintmax_t>(std::numeric_limits<Dst>::max());
        if (checked && !ok) {
          throw_data("cannot convert element " + std::to_string(i) + " (" + std::to_string(v) +
                     ") to " + std::string(dtype_name(target)) + ": out of range");
        }
        dst[i] = static_cast<Dst>(v);
      }
    } else {
      for (std::int64_t i = 0; i < n; ++i) {
        const double v = load<Src>(in, i);
        if (checked) {
          check_int_range<Dst>(v, i, target);
          dst[i] = static_cast<Dst>(std::trunc(v));
        } else {
          dst[i] = saturate<Dst>(v);
        }
      }
    }
  }
}

}  // namespace

Tensor Tensor::astype(DType target, bool checked) const {
  if (target == dtype_) return *this;
  Tensor out(target, shape_);
  visit_dtype(dtype_, [&](auto s) {
    visit_dtype(target, [&](auto d) {
      convert<decltype(s), decltype(d)>(bytes(), out.bytes(), numel_, checked, target);
    });
  });
  return out;
}

}  // namespace nnkit
