// Exact sums of float32 values: carries, merging and correct rounding to double.
#include "nnkit/exact_sum.hpp"

#include <cmath>
#include <cstdlib>

namespace nnkit {

namespace {

constexpr std::int64_t kDigitBase = std::int64_t{1} << ExactSum::digit_bits;
constexpr std::int64_t kTopLimit = std::int64_t{1} << 31;  // |top digit| of a stored sum

// A non-negative integer as 32-bit words, least significant first; one word
// more than the digits, as the top digit may pass 32 bits in merges of
// (corrupt) sums outside the range.
struct Magnitude {
  std::array<std::uint32_t, ExactSum::width + 1> words{};

  std::uint32_t word(int i) const { return i < static_cast<int>(words.size()) ? words[static_cast<std::size_t>(i)] : 0; }

  // Index of the highest set bit, -1 for zero.
  int top_bit() const {
    for (int i = static_cast<int>(words.size()) - 1; i >= 0; --i)
      if (words[static_cast<std::size_t>(i)] != 0) return 32 * i + 31 - __builtin_clz(words[static_cast<std::size_t>(i)]);
    return -1;
  }

  // The 64 bits from bit `from` (>= 0) upwards.
  std::uint64_t bits_from(int from) const {
    const int w = from / 32, off = from % 32;
    const std::uint64_t low = (std::uint64_t{word(w + 1)} << 32 | word(w)) >> off;
    return off == 0 ? low : low | std::uint64_t{word(w + 2)} << (64 - off);
  }

  // Whether any bit below `bit` is set.
  bool any_below(int bit) const {
    const int w = bit / 32, off = bit % 32;
    for (int i = 0; i < w; ++i)
      if (words[static_cast<std::size_t>(i)] != 0) return true;
    return off != 0 && (word(w) & ((std::uint32_t{1} << off) - 1)) != 0;
  }
};

}  // namespace

void ExactSum::normalize() {
  // Floor division by 2^32 (>> is arithmetic on every compiler nnkit supports,
  // and by definition from C++20), so digits 0 .. width-2 land in [0, 2^32).
  for (int i = 0; i + 1 < width; ++i) {
    const std::int64_t carry = digits_[static_cast<std::size_t>(i)] >> digit_bits;
    digits_[static_cast<std::size_t>(i)] -= carry * kDigitBase;
    digits_[static_cast<std::size_t>(i + 1)] += carry;
  }
  pending_ = 0;
}

void ExactSum::merge(const ExactSum& other) {
  ExactSum o = other;
  o.normalize();
  normalize();
  for (int i = 0; i < width; ++i) digits_[static_cast<std::size_t>(i)] += o.digits_[static_cast<std::size_t>(i)];
  normalize();
}

ExactSum::Digits ExactSum::to_digits() const {
  // Carried, digits 0 .. width-2 are in [0, 2^32) and the top one holds the
  // sign; a negative sum is negated, carried again and given its sign back.
  ExactSum s = *this;
  s.normalize();
  if (s.digits_[width - 1] >= 0) return s.digits_;
  for (std::int64_t& d : s.digits_) d = -d;
  s.normalize();
  for (std::int64_t& d : s.digits_) d = -d;
  return s.digits_;
}

std::optional<ExactSum> ExactSum::from_digits(const std::int64_t* digits) {
  bool positive = false, negative = false;
  ExactSum s;
  for (int i = 0; i < width; ++i) {
    const std::int64_t d = digits[i];
    const std::int64_t limit = i + 1 < width ? kDigitBase : kTopLimit;
    if (d <= -limit || d >= limit) return std::nullopt;
    positive |= d > 0;
    negative |= d < 0;
    s.digits_[static_cast<std::size_t>(i)] = d;
  }
  if (positive && negative) return std::nullopt;
  return s;
}

bool ExactSum::is_zero() const {
  for (std::int64_t d : to_digits())
    if (d != 0) return false;
  return true;
}

double ExactSum::to_double() const {
  const Digits d = to_digits();
  bool negative = false;
  Magnitude mag;
  for (int i = 0; i < width; ++i) {
    const auto digit = static_cast<std::uint64_t>(std::abs(d[static_cast<std::size_t>(i)]));
    negative |= d[static_cast<std::size_t>(i)] < 0;
    mag.words[static_cast<std::size_t>(i)] |= static_cast<std::uint32_t>(digit);
    mag.words[static_cast<std::size_t>(i + 1)] = static_cast<std::uint32_t>(digit >> 32);  // 0 below the top
  }
  const int high = mag.top_bit();
  if (high < 0) return 0.0;
  constexpr int kMantissaBits = 53;
  double result;
  if (high < kMantissaBits) {  // fits a double's mantissa: exact
    result = std::ldexp(static_cast<double>(mag.bits_from(0)), lsb_exponent);
  } else {
    // The top 53 bits, rounded to nearest by the next bit, ties (nothing set
    // below it) to even. A carry out to 2^53 is still exact in a double.
    const int shift = high - (kMantissaBits - 1);
    std::uint64_t mantissa = mag.bits_from(shift) & ((std::uint64_t{1} << kMantissaBits) - 1);
    const bool half = (mag.bits_from(shift - 1) & 1) != 0;
    if (half && ((mantissa & 1) != 0 || mag.any_below(shift - 1))) ++mantissa;
    result = std::ldexp(static_cast<double>(mantissa), shift + lsb_exponent);
  }
  return negative ? -result : result;
}

}  // namespace nnkit
