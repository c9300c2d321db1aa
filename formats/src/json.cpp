// Tensors as nested JSON arrays, and JSON output through nnkit's Output.
#include "nnkit/formats/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <type_traits>

namespace nnkit::json {

namespace {

// A float32 widened to double prints as 0.10000000149011612; going through
// the shortest decimal that round-trips the float gives 0.1 instead, which
// reads back to the same float32.
double shortest_double(float f) {
  if (!std::isfinite(f)) return f;
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf - 1, f);
  *res.ptr = '\0';
  return std::strtod(buf, nullptr);
}

nlohmann::json number(double v) {
  if (!std::isfinite(v)) return nullptr;  // JSON has no NaN or infinity
  return v;
}

template <class T>
nlohmann::json element(const T* p, std::int64_t i) {
  if constexpr (std::is_same_v<T, bool>) {
    return static_cast<bool>(p[i]);
  } else if constexpr (std::is_same_v<T, half_bits>) {
    return number(shortest_double(half_to_float(p[i].bits)));
  } else if constexpr (std::is_same_v<T, float>) {
    return number(shortest_double(p[i]));
  } else if constexpr (std::is_same_v<T, double>) {
    return number(p[i]);
  } else if constexpr (std::is_signed_v<T>) {
    return static_cast<std::int64_t>(p[i]);
  } else {
    return static_cast<std::uint64_t>(p[i]);
  }
}

// Builds the nested array for axis `axis` starting at flat element *pos.
template <class T>
nlohmann::json nest(const T* p, const Shape& shape, std::size_t axis, std::int64_t& pos) {
  if (axis == shape.size()) return element(p, pos++);
  nlohmann::json arr = nlohmann::json::array();
  for (std::int64_t k = 0; k < shape[axis]; ++k) arr.push_back(nest(p, shape, axis + 1, pos));
  return arr;
}

}  // namespace

nlohmann::json from_tensor(const Tensor& t) {
  return visit_dtype(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    // Raw pointer: data<T>() has no half_bits overload, and f2 is decoded per element.
    const T* p = reinterpret_cast<const T*>(t.bytes());
    std::int64_t pos = 0;
    return nest(p, t.shape(), 0, pos);
  });
}

void write(Output& out, const nlohmann::json& j) {
  // Invalid UTF-8 in strings is replaced rather than thrown about mid-write.
  std::string s = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  s += '\n';
  out.write(s);
}

}  // namespace nnkit::json
