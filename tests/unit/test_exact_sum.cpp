// ExactSum: the exact sums of Python's rational arithmetic
// (tests/fixtures/exact_sum, made by make_exact_sum.py: cancellation,
// subnormals, the largest float, ties and near-ties, random values over the
// whole exponent range), digit for digit and correctly rounded to double;
// sums merged in any order and any split give the same bits; many additions
// (carries before any digit overflows); the stored digits' round trip and
// refusals.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "nnkit/exact_sum.hpp"

using namespace nnkit;

namespace {

float from_bits(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

std::uint64_t bits_of(double d) {
  std::uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

struct Case {
  std::string name;
  std::vector<float> values;
  std::uint64_t sum_bits = 0;
  ExactSum::Digits digits{};
};

std::vector<Case> fixture_cases() {
  std::ifstream f(std::string(NNKIT_FIXTURES) + "/exact_sum/cases.json");
  const auto j = nlohmann::json::parse(f);
  std::vector<Case> out;
  for (const auto& c : j["cases"]) {
    Case k;
    k.name = c["name"];
    for (std::uint32_t b : c["values"]) k.values.push_back(from_bits(b));
    k.sum_bits = c["sum"];
    for (int i = 0; i < ExactSum::width; ++i) k.digits[static_cast<std::size_t>(i)] = c["digits"][static_cast<std::size_t>(i)];
    out.push_back(std::move(k));
  }
  return out;
}

ExactSum sum_of(const std::vector<float>& v) {
  ExactSum s;
  for (float x : v) s.add(x);
  return s;
}

// The values in random order, added into `parts` sums merged in another random order.
ExactSum shuffled_merge(std::vector<float> v, int parts, std::mt19937_64& rng) {
  std::shuffle(v.begin(), v.end(), rng);
  std::vector<ExactSum> shards(static_cast<std::size_t>(parts));
  for (float x : v) shards[rng() % shards.size()].add(x);
  std::shuffle(shards.begin(), shards.end(), rng);
  ExactSum total;
  for (const ExactSum& s : shards) total.merge(s);
  return total;
}

std::vector<float> random_floats(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> v;
  while (v.size() < n) {
    const float x = from_bits(static_cast<std::uint32_t>(rng()));
    if (std::isfinite(x)) v.push_back(x);
  }
  return v;
}

}  // namespace

TEST(ExactSum, MatchesExactRationalArithmetic) {
  const auto cases = fixture_cases();
  ASSERT_GT(cases.size(), 50u);
  for (const Case& c : cases) {
    const ExactSum s = sum_of(c.values);
    EXPECT_EQ(s.to_digits(), c.digits) << c.name;
    EXPECT_EQ(bits_of(s.to_double()), c.sum_bits) << c.name << ": " << s.to_double();
  }
}

TEST(ExactSum, AnyOrderAndAnySplitGiveTheSameBits) {
  std::mt19937_64 rng(7);
  for (const Case& c : fixture_cases()) {
    for (int parts : {1, 2, 5, 17}) {
      const ExactSum s = shuffled_merge(c.values, parts, rng);
      EXPECT_EQ(s.to_digits(), c.digits) << c.name << ", " << parts << " parts";
      EXPECT_EQ(bits_of(s.to_double()), c.sum_bits) << c.name << ", " << parts << " parts";
    }
  }
  // Random bit patterns: every exponent, both signs, subnormals.
  const auto v = random_floats(20000, 11);
  const auto want = sum_of(v).to_digits();
  for (int parts : {3, 64, 1000}) EXPECT_EQ(shuffled_merge(v, parts, rng).to_digits(), want) << parts;
}

TEST(ExactSum, CancellationLeavesTheSmallTerms) {
  ExactSum s;
  s.add(1e30f);
  s.add(1.0f);
  s.add(-1e30f);
  EXPECT_EQ(s.to_double(), 1.0);
  s.add(FLT_MAX);
  s.add(FLT_TRUE_MIN);
  s.add(-FLT_MAX);
  EXPECT_EQ(s.to_double(), 1.0 + std::ldexp(1.0, -149));
  ExactSum zero;
  zero.add(-2.5f);
  zero.add(2.5f);
  EXPECT_TRUE(zero.is_zero());
  EXPECT_EQ(bits_of(zero.to_double()), bits_of(0.0)) << "an exact zero is +0";
  EXPECT_TRUE(ExactSum().is_zero());
}

TEST(ExactSum, RoundsToNearestTiesToEven) {
  auto sum = [](std::initializer_list<double> v) {
    ExactSum s;
    for (double x : v) s.add(static_cast<float>(x));
    return s.to_double();
  };
  const double two53 = std::ldexp(1.0, 53), tiny = std::ldexp(1.0, -149);
  EXPECT_EQ(sum({two53, 1}), two53) << "2^53 + 1: a tie, down to even";
  EXPECT_EQ(sum({two53, 2, 1}), two53 + 4) << "2^53 + 3: a tie, up to even";
  EXPECT_EQ(sum({two53, 1, tiny}), two53 + 2) << "just above the tie";
  EXPECT_EQ(sum({two53, 1, -tiny}), two53) << "just below the tie";
  EXPECT_EQ(sum({two53, 2, 1, -tiny}), two53 + 2);
  EXPECT_EQ(sum({-two53, -1}), -two53);
  EXPECT_EQ(sum({-two53, -2, -1}), -two53 - 4);
  EXPECT_EQ(sum({-two53, -1, -tiny}), -two53 - 2);
  // Below 2^53 units of 2^-149 the sum is exact.
  EXPECT_EQ(sum({tiny, tiny, tiny}), 3 * tiny);
  EXPECT_EQ(sum({0.1, 0.2}), static_cast<double>(0.1f) + static_cast<double>(0.2f));
}

TEST(ExactSum, ManyLargeValuesCarryWithoutOverflow) {
  // FLT_MAX = (2^24 - 1) 2^104: n of them are exact in a double for n < 2^29.
  const std::int64_t n = 3'000'000;
  ExactSum up, down;
  for (std::int64_t i = 0; i < n; ++i) {
    up.add(FLT_MAX);
    down.add(-FLT_MAX);
  }
  EXPECT_EQ(up.to_double(), static_cast<double>(n) * FLT_MAX);
  EXPECT_EQ(down.to_double(), -static_cast<double>(n) * FLT_MAX);
  up.merge(down);
  EXPECT_TRUE(up.is_zero());
}

TEST(ExactSum, StaysExactThroughTheCarriesOfAdd) {
  // 2^30 + 8 additions: the carries run once inside add() (that 2^30 keeps
  // every digit below 2^63 is the bound of exact_sum.hpp). Four values that
  // fall on disjoint digits (7-9, 5-6, 3-4, 1-2 in the end) keep four
  // independent dependency chains, so this takes a second, not four.
  const float values[4] = {FLT_MAX, 0x1p20f, 0x1p-40f, 0x1p-100f};
  const std::int64_t q = (std::int64_t{1} << 28) + 2;  // additions of each value
  ExactSum s;
  for (std::int64_t i = 0; i < q; ++i)
    for (float v : values) s.add(v);
  // Expected: q * value at its place, in units of 2^-149; the places do not overlap.
  ExactSum::Digits want{};
  auto place = [&](std::uint64_t c, int bit) {
    const unsigned __int128 v = static_cast<unsigned __int128>(c) << (bit % 32);
    for (int w = 0; w < 3; ++w)
      want[static_cast<std::size_t>(bit / 32 + w)] += static_cast<std::int64_t>((v >> (32 * w)) & 0xffffffffu);
  };
  place(static_cast<std::uint64_t>(q) * ((1u << 24) - 1), 104 + 149);  // FLT_MAX = (2^24 - 1) 2^104
  place(static_cast<std::uint64_t>(q), 20 + 149);
  place(static_cast<std::uint64_t>(q), -40 + 149);
  place(static_cast<std::uint64_t>(q), -100 + 149);
  EXPECT_EQ(s.to_digits(), want);
  EXPECT_EQ(s.to_double(), static_cast<double>(q) * FLT_MAX) << "the small terms are far below half an ulp";
}

TEST(ExactSum, DigitsRoundTripAndRefuseOthers) {
  for (const float sign : {1.0f, -1.0f}) {
    auto v = random_floats(500, 3);
    v.push_back(sign * FLT_MAX);  // the sum takes the sign
    v.push_back(sign * FLT_MAX);
    const ExactSum s = sum_of(v);
    ASSERT_EQ(s.to_double() > 0, sign > 0);
    const auto d = s.to_digits();
    const auto back = ExactSum::from_digits(d.data());
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->to_digits(), d);
    EXPECT_EQ(bits_of(back->to_double()), bits_of(s.to_double()));
    // Sign and magnitude: no digit of the other sign, each below 2^32.
    for (std::int64_t x : d) {
      EXPECT_GE(x * static_cast<std::int64_t>(sign), 0);
      EXPECT_LT(std::abs(x), std::int64_t{1} << 32);
    }
    // The digits' sum in double is the sum, as closely as 11 terms allow.
    double approx = 0;
    for (int i = 0; i < ExactSum::width; ++i)
      approx += std::ldexp(static_cast<double>(d[static_cast<std::size_t>(i)]), 32 * i + ExactSum::lsb_exponent);
    EXPECT_NEAR(approx, s.to_double(), 1e-14 * std::abs(s.to_double()));
  }
  const ExactSum::Digits good = {5, 0, 0xffffffff, 0, 0, 0, 0, 0, 0, 0, (std::int64_t{1} << 31) - 1};
  EXPECT_TRUE(ExactSum::from_digits(good.data()).has_value());
  auto refused = [&](int digit, std::int64_t value) {
    auto bad = good;
    bad[static_cast<std::size_t>(digit)] = value;
    return !ExactSum::from_digits(bad.data()).has_value();
  };
  EXPECT_TRUE(refused(0, -1)) << "mixed signs";
  EXPECT_TRUE(refused(3, std::int64_t{1} << 32));
  EXPECT_TRUE(refused(ExactSum::width - 1, std::int64_t{1} << 31));
  EXPECT_FALSE(refused(4, 1));
  ExactSum::Digits negative{};
  negative[1] = -(std::int64_t{1} << 32) + 1;
  negative[ExactSum::width - 1] = -(std::int64_t{1} << 31) + 1;
  ASSERT_TRUE(ExactSum::from_digits(negative.data()).has_value());
  negative[2] = 1;
  EXPECT_FALSE(ExactSum::from_digits(negative.data()).has_value()) << "mixed signs";
  ExactSum::Digits minus_one{};
  minus_one[0] = -1;
  EXPECT_EQ(ExactSum::from_digits(minus_one.data())->to_double(), -std::ldexp(1.0, -149));
}
