// Exact sums of float32 values, independent of the order of the additions.
//
// A float32 is an integer multiple of 2^-149 (the smallest subnormal), so a
// sum of them is too: ExactSum holds it as a fixed-point integer in units of
// 2^-149, written in base 2^32 as `width` int64 digits, least significant
// first. Adding x puts its (at most 56-bit, shifted) integer into two
// neighbouring digits: the low 32 bits into digit i and the arithmetic high
// part into digit i + 1, so a digit moves by less than 2^32 per addition; the
// carries are propagated (normalised) before any digit could overflow, after
// 2^30 additions, and before reading. Integer addition is associative, so sums
// of the same values merged in any order, per thread or per shard, hold the
// same integer and give the same bits.
//
// 11 digits of 32 bits hold |sum| < 2^191: 2^63 float32 values of any finite
// magnitude (the largest is below 2^128).
//
// Stored form (to_digits, from_digits): sign and magnitude, every digit of
// the sign of the sum (or 0), |digit| < 2^32, and < 2^31 for the top one; the
// value is sum_i digit_i * 2^(32 i - 149). With one sign throughout, that sum
// in floating point (numpy) has no cancellation.
#pragma once
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>

namespace nnkit {

class ExactSum {
 public:
  static constexpr int width = 11;            // digits
  static constexpr int digit_bits = 32;
  static constexpr int lsb_exponent = -149;   // a unit is 2^-149
  using Digits = std::array<std::int64_t, width>;

  // x must be finite (an infinity or NaN would count as a huge finite value).
  void add(float x) {
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    const std::uint32_t biased = (bits >> 23) & 0xffu;
    const std::uint32_t normal = biased != 0;
    // x = mantissa * 2^(position - 149), with the implicit bit for normal numbers.
    const std::int64_t mantissa = static_cast<std::int64_t>((bits & 0x7fffffu) | (normal << 23));
    const std::uint32_t position = biased - normal;
    const std::int64_t negative = -static_cast<std::int64_t>(bits >> 31);  // 0 or -1
    const std::int64_t shifted = ((mantissa << (position & 31)) ^ negative) - negative;
    const std::uint32_t i = position >> 5;
    digits_[i] += shifted & 0xffffffff;
    digits_[i + 1] += shifted >> 32;  // arithmetic: shifted = high * 2^32 + low
    if (++pending_ == kMaxPending) normalize();
  }

  // Adds the value of another sum.
  void merge(const ExactSum& other);

  // The sum rounded to the nearest double, ties to even.
  double to_double() const;
  bool is_zero() const;

  // The digits in the stored form, least significant first.
  Digits to_digits() const;
  // A sum from digits in the stored form; nullopt when they are not in it.
  static std::optional<ExactSum> from_digits(const std::int64_t* digits);

 private:
  // Additions between normalisations: from a normalised state, 2^30 changes
  // below 2^32 each keep every digit below 2^63.
  static constexpr std::uint32_t kMaxPending = std::uint32_t{1} << 30;
  void normalize();
  Digits digits_{};
  std::uint32_t pending_ = 0;
};

}  // namespace nnkit
