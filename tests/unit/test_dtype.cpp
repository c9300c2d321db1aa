#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "nnkit/dtype.hpp"

using namespace nnkit;

TEST(DType, SizesCodesAndNames) {
  EXPECT_EQ(dtype_size(DType::b1), 1u);
  EXPECT_EQ(dtype_size(DType::f2), 2u);
  EXPECT_EQ(dtype_size(DType::u8), 8u);
  EXPECT_EQ(dtype_code(DType::i4), "i4");
  EXPECT_EQ(dtype_name(DType::f4), "float32");
  EXPECT_EQ(dtype_name(DType::b1), "bool");
  for (DType t : all_dtypes) {
    EXPECT_EQ(parse_dtype(dtype_code(t)), t);
    EXPECT_EQ(parse_dtype(dtype_name(t)), t);
  }
}

TEST(DType, ParseAcceptsByteOrderAndAliases) {
  EXPECT_EQ(parse_dtype("<f4"), DType::f4);
  EXPECT_EQ(parse_dtype("|u1"), DType::u1);
  EXPECT_EQ(parse_dtype("half"), DType::f2);
  EXPECT_EQ(parse_dtype("double"), DType::f8);
  EXPECT_FALSE(parse_dtype("c8").has_value());
  EXPECT_FALSE(parse_dtype("float128").has_value());
  EXPECT_FALSE(parse_dtype("").has_value());
}

TEST(DType, Kinds) {
  EXPECT_TRUE(is_float(DType::f2));
  EXPECT_TRUE(is_signed_int(DType::i8));
  EXPECT_TRUE(is_unsigned_int(DType::u2));
  EXPECT_TRUE(is_unsigned_int(DType::b1));
  EXPECT_FALSE(is_float(DType::i4));
}

// Reference values of IEEE binary16 (as numpy.float16 gives them).
TEST(DType, HalfToFloatKnownValues) {
  EXPECT_EQ(half_to_float(0x3c00), 1.0f);
  EXPECT_EQ(half_to_float(0xc000), -2.0f);
  EXPECT_EQ(half_to_float(0x7bff), 65504.0f);
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(half_to_float(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(half_to_float(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::isinf(half_to_float(0x7c00)));
  EXPECT_TRUE(std::isnan(half_to_float(0x7e00)));
  EXPECT_TRUE(std::signbit(half_to_float(0x8000)));
}

TEST(DType, FloatToHalfRoundsToNearestEven) {
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // halfway to the next: rounds to inf (even)
  EXPECT_EQ(float_to_half(65519.0f), 0x7bff);
  EXPECT_EQ(float_to_half(1e-8f), 0x0000);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);  // halfway to 0x0001: even is 0
  EXPECT_EQ(float_to_half(std::ldexp(3.0f, -25)), 0x0002);  // halfway 1..2: even is 2
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1.0).
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half(INFINITY), 0x7c00);
  EXPECT_EQ(float_to_half(NAN) & 0x7c00, 0x7c00);
  EXPECT_NE(float_to_half(NAN) & 0x03ff, 0);
}

TEST(DType, EveryHalfRoundTripsThroughFloat) {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = half_to_float(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_half(f), h) << "half bits " << h;
  }
}

TEST(DType, Bf16Widening) {
  EXPECT_EQ(bf16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_float(0xc040), -3.0f);
}

// The array conversions (F16C where the CPU has it) agree bit for bit with
// the scalar ones, over every half value and a sweep of floats incl. ties.
TEST(DType, ArrayConversionsMatchScalar) {
  std::vector<std::uint16_t> h(0x10000);
  for (std::uint32_t i = 0; i < 0x10000; ++i) h[i] = static_cast<std::uint16_t>(i);
  std::vector<float> f(h.size());
  halves_to_floats(h.data(), f.data(), static_cast<std::int64_t>(h.size()));
  for (std::size_t i = 0; i < h.size(); ++i) {
    const float s = half_to_float(h[i]);
    if (std::isnan(s)) {  // F16C quiets signalling NaNs; a NaN stays a NaN
      ASSERT_TRUE(std::isnan(f[i])) << i;
      continue;
    }
    ASSERT_EQ(std::memcmp(&s, &f[i], 4), 0) << i;
  }
  std::vector<float> x;
  for (std::uint32_t bits = 0; bits < 0xffffffffu - 0x10000; bits += 0x1003) {  // ~1M floats
    float v;
    std::memcpy(&v, &bits, 4);
    x.push_back(v);
  }
  for (float tie : {1.0f + std::ldexp(1.0f, -11), 65520.0f, std::ldexp(1.0f, -25), std::ldexp(3.0f, -25)})
    x.push_back(tie);
  std::vector<std::uint16_t> out(x.size());
  floats_to_halves(x.data(), out.data(), static_cast<std::int64_t>(x.size()));
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(out[i], float_to_half(x[i])) << x[i];
}
