#include "nnkit/dtype.hpp"

#include <cpuid.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>

namespace nnkit {

namespace {
struct Info {
  DType t;
  std::size_t size;
  const char* code;
  const char* name;
};
constexpr Info infos[] = {
    {DType::b1, 1, "b1", "bool"},    {DType::i1, 1, "i1", "int8"},     {DType::u1, 1, "u1", "uint8"},
    {DType::i2, 2, "i2", "int16"},   {DType::u2, 2, "u2", "uint16"},   {DType::i4, 4, "i4", "int32"},
    {DType::u4, 4, "u4", "uint32"},  {DType::i8, 8, "i8", "int64"},    {DType::u8, 8, "u8", "uint64"},
    {DType::f2, 2, "f2", "float16"}, {DType::f4, 4, "f4", "float32"},  {DType::f8, 8, "f8", "float64"},
};
const Info& info(DType t) { return infos[static_cast<int>(t)]; }
}  // namespace

std::size_t dtype_size(DType t) { return info(t).size; }
bool is_float(DType t) { return t == DType::f2 || t == DType::f4 || t == DType::f8; }
bool is_signed_int(DType t) {
  return t == DType::i1 || t == DType::i2 || t == DType::i4 || t == DType::i8;
}
bool is_unsigned_int(DType t) { return !is_float(t) && !is_signed_int(t); }
std::string_view dtype_code(DType t) { return info(t).code; }
std::string_view dtype_name(DType t) { return info(t).name; }

std::optional<DType> parse_dtype(std::string_view s) {
  if (!s.empty() && (s[0] == '<' || s[0] == '>' || s[0] == '=' || s[0] == '|')) s.remove_prefix(1);
  for (const Info& i : infos)
    if (s == i.code || s == i.name) return i.t;
  if (s == "half" || s == "f16") return DType::f2;
  if (s == "float" || s == "single" || s == "f32") return DType::f4;
  if (s == "double" || s == "f64") return DType::f8;
  if (s == "int" || s == "long") return DType::i8;
  if (s == "?") return DType::b1;
  return std::nullopt;
}

// binary16 <-> binary32 by bit manipulation (F16C is not assumed on every node).
float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | (static_cast<std::uint32_t>(112 - e) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::uint16_t float_to_half(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t absx = x & 0x7fffffffu;
  if (absx > 0x7f800000u)  // nan: quiet, with the top of the payload, as F16C does
    return sign | 0x7e00u | static_cast<std::uint16_t>((absx & 0x7fffffu) >> 13);
  if (absx == 0x7f800000u) return sign | 0x7c00u;
  if (absx >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: overflow to inf
  if (absx < 0x38800000u) {                          // below the smallest normal half
    if (absx < 0x33000000u) return sign;             // < 2^-25 rounds to zero
    const std::uint32_t e = absx >> 23;
    const std::uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126 - e;  // 14..24 bits dropped
    std::uint32_t q = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1);
    const std::uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
    return sign | static_cast<std::uint16_t>(q);
  }
  std::uint32_t q = ((absx >> 13) - (112u << 10));
  const std::uint32_t rem = absx & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ++q;  // may carry into the exponent: correct
  return sign | static_cast<std::uint16_t>(q);
}

namespace {

__attribute__((target("f16c,avx"))) void halves_to_floats_f16c(const std::uint16_t* in, float* out,
                                                                std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  for (; i < n; ++i) out[i] = half_to_float(in[i]);
}

__attribute__((target("f16c,avx"))) void floats_to_halves_f16c(const float* in, std::uint16_t* out,
                                                                std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) out[i] = float_to_half(in[i]);
}

// CPUID leaf 1 directly: clang before 16 does not know "f16c" as a
// __builtin_cpu_supports feature name.
bool have_f16c() {
  static const bool yes = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) && __builtin_cpu_supports("avx");
  }();
  return yes;
}

}  // namespace

void halves_to_floats(const std::uint16_t* in, float* out, std::int64_t n) {
  if (have_f16c()) return halves_to_floats_f16c(in, out, n);
  for (std::int64_t i = 0; i < n; ++i) out[i] = half_to_float(in[i]);
}

void floats_to_halves(const float* in, std::uint16_t* out, std::int64_t n) {
  if (have_f16c()) return floats_to_halves_f16c(in, out, n);
  for (std::int64_t i = 0; i < n; ++i) out[i] = float_to_half(in[i]);
}

}  // namespace nnkit
