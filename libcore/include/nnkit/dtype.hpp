// The element types a tensor can hold: exactly the numeric dtypes numpy writes
// to .npy that nnkit supports (b1 i1 u1 i2 u2 i4 u4 i8 u8 f2 f4 f8).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nnkit {

enum class DType : std::uint8_t { b1, i1, u1, i2, u2, i4, u4, i8, u8, f2, f4, f8 };

inline constexpr DType all_dtypes[] = {DType::b1, DType::i1, DType::u1, DType::i2,
                                       DType::u2, DType::i4, DType::u4, DType::i8,
                                       DType::u8, DType::f2, DType::f4, DType::f8};

std::size_t dtype_size(DType t);
bool is_float(DType t);
bool is_signed_int(DType t);
bool is_unsigned_int(DType t);  // b1 counts as unsigned here
// numpy's short code without byte order, e.g. "f4".
std::string_view dtype_code(DType t);
// numpy's name, e.g. "float32", "bool".
std::string_view dtype_name(DType t);
// Accepts numpy names ("float32", "uint8", "bool", "half", "float", "double",
// "int") and short codes ("f4", "<f4", "u1"). Empty when unknown.
std::optional<DType> parse_dtype(std::string_view s);

// Maps C++ element types to DType at compile time.
template <class T> struct dtype_of;
template <> struct dtype_of<bool> { static constexpr DType value = DType::b1; };
template <> struct dtype_of<std::int8_t> { static constexpr DType value = DType::i1; };
template <> struct dtype_of<std::uint8_t> { static constexpr DType value = DType::u1; };
template <> struct dtype_of<std::int16_t> { static constexpr DType value = DType::i2; };
template <> struct dtype_of<std::uint16_t> { static constexpr DType value = DType::u2; };
template <> struct dtype_of<std::int32_t> { static constexpr DType value = DType::i4; };
template <> struct dtype_of<std::uint32_t> { static constexpr DType value = DType::u4; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::i8; };
template <> struct dtype_of<std::uint64_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<float> { static constexpr DType value = DType::f4; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f8; };
template <class T> inline constexpr DType dtype_of_v = dtype_of<T>::value;

// IEEE 754 binary16 stored as its bits; conversions round to nearest even.
struct half_bits { std::uint16_t bits; };
float half_to_float(std::uint16_t h);
std::uint16_t float_to_half(float f);
// Whole arrays, with the F16C instructions when the CPU has them: the same
// results bit for bit (both round to nearest even), except that F16C makes a
// signalling NaN quiet.
void halves_to_floats(const std::uint16_t* in, float* out, std::int64_t n);
void floats_to_halves(const float* in, std::uint16_t* out, std::int64_t n);
// bfloat16 (safetensors "BF16") widened to float32.
inline float bf16_to_float(std::uint16_t b) {
  std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

// Calls f(T{}) with T the C++ type that stores dtype t (std::uint16_t for f2,
// whose values must be converted with half_to_float).
template <class F>
decltype(auto) visit_dtype(DType t, F&& f) {
  switch (t) {
    case DType::b1: return f(bool{});
    case DType::i1: return f(std::int8_t{});
    case DType::u1: return f(std::uint8_t{});
    case DType::i2: return f(std::int16_t{});
    case DType::u2: return f(std::uint16_t{});
    case DType::i4: return f(std::int32_t{});
    case DType::u4: return f(std::uint32_t{});
    case DType::i8: return f(std::int64_t{});
    case DType::u8: return f(std::uint64_t{});
    case DType::f2: return f(half_bits{});
    case DType::f4: return f(float{});
    case DType::f8: return f(double{});
  }
  return f(float{});
}

}  // namespace nnkit
