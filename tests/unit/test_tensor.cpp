#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "nnkit/tensor.hpp"
#include "nnkit/xview.hpp"

using namespace nnkit;

TEST(Tensor, ShapeArithmeticIsChecked) {
  EXPECT_EQ(checked_numel({2, 3, 4}), 24);
  EXPECT_EQ(checked_numel({}), 1);
  EXPECT_EQ(checked_numel({5, 0}), 0);
  EXPECT_THROW(checked_numel({-1, 2}), Error);
  EXPECT_THROW(checked_numel({1LL << 40, 1LL << 40}), Error);
  EXPECT_THROW(checked_nbytes({1LL << 61, 1}, DType::f8), Error);
  EXPECT_EQ(checked_nbytes({3, 5}, DType::f4), 60);
  EXPECT_EQ(shape_str({2, 3}), "[2, 3]");
  EXPECT_EQ(shape_str({}), "[]");
}

TEST(Tensor, ParseShapeResolvesOneUnknown) {
  EXPECT_EQ(parse_shape("2,-1", 6), (Shape{2, 3}));
  EXPECT_EQ(parse_shape("2x3", 6), (Shape{2, 3}));
  EXPECT_EQ(parse_shape("-1", 7), (Shape{7}));
  EXPECT_EQ(parse_shape("(1, 6)", 6), (Shape{1, 6}));
  EXPECT_THROW(parse_shape("-1,-1", 6), Error);
  EXPECT_THROW(parse_shape("4,-1", 6), Error);
  EXPECT_THROW(parse_shape("2,2", 6), Error);
  EXPECT_THROW(parse_shape("a,2", 6), Error);
  EXPECT_THROW(parse_shape("2,,3", 6), Error);
}

TEST(Tensor, ZeroFilledAlignedOwningBuffer) {
  Tensor t(DType::f4, {3, 4});
  EXPECT_EQ(t.numel(), 12);
  EXPECT_EQ(t.nbytes(), 48u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.bytes()) % 64, 0u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(t.data<float>()[i], 0.0f);
  Tensor c = t;
  c.data<float>()[0] = 5;
  EXPECT_EQ(t.data<float>()[0], 0.0f);  // deep copy
  EXPECT_THROW(t.data<double>(), Error);
}

TEST(Tensor, ZeroDimAndEmpty) {
  Tensor s(DType::i8, {});
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.ndim(), 0u);
  Tensor e(DType::f8, {2, 0, 3});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_EQ(e.nbytes(), 0u);
  EXPECT_NE(e.bytes(), nullptr);
}

TEST(Tensor, HugeAllocationIsADataError) {
  try {
    Tensor t = Tensor::uninitialized(DType::f8, {1LL << 50});
    FAIL() << "allocated 8 PiB";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::data);
  }
}

TEST(Tensor, ReshapeKeepsData) {
  Tensor t = Tensor::from_vector<float>({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor r = t.reshaped({3, 2});
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_EQ(r.data<float>()[5], 5.0f);
  EXPECT_THROW(t.reshaped({4}), Error);
}

TEST(Tensor, AstypeFollowsNumpy) {
  Tensor f = Tensor::from_vector<float>({5}, {-1.7f, -0.5f, 0.0f, 2.9f, 127.0f});
  Tensor i = f.astype(DType::i1);
  const std::int8_t want[] = {-1, 0, 0, 2, 127};  // numpy truncates toward zero
  for (int k = 0; k < 5; ++k) EXPECT_EQ(i.data<std::int8_t>()[k], want[k]);
  Tensor b = f.astype(DType::b1);
  EXPECT_TRUE(b.data<bool>()[0]);
  EXPECT_FALSE(b.data<bool>()[2]);
  Tensor h = f.astype(DType::f2);
  EXPECT_EQ(h.get(3), static_cast<double>(half_to_float(float_to_half(2.9f))));
  Tensor back = h.astype(DType::f8);
  EXPECT_EQ(back.data<double>()[4], 127.0);
  Tensor u = Tensor::from_vector<std::int64_t>({3}, {0, 255, 7}).astype(DType::u1);
  EXPECT_EQ(u.data<std::uint8_t>()[1], 255);
}

TEST(Tensor, CheckedIntegerCastsRefuseWhatDoesNotFit) {
  auto code = [](const Tensor& t, DType d) {
    try {
      t.astype(d);
    } catch (const Error& e) {
      return e.code();
    }
    return ExitCode::ok;
  };
  EXPECT_EQ(code(Tensor::from_vector<float>({1}, {128.0f}), DType::i1), ExitCode::data);
  EXPECT_EQ(code(Tensor::from_vector<float>({1}, {-1.0f}), DType::u1), ExitCode::data);
  EXPECT_EQ(code(Tensor::from_vector<float>({1}, {NAN}), DType::i4), ExitCode::data);
  EXPECT_EQ(code(Tensor::from_vector<double>({1}, {9.3e18}), DType::i8), ExitCode::data);
  EXPECT_EQ(code(Tensor::from_vector<std::int64_t>({1}, {-1}), DType::u8), ExitCode::data);
  EXPECT_EQ(code(Tensor::from_vector<std::uint64_t>({1}, {1ULL << 63}), DType::i8), ExitCode::data);
  EXPECT_EQ(code(Tensor::from_vector<std::int32_t>({1}, {70000}), DType::u2), ExitCode::data);
  EXPECT_EQ(code(Tensor::from_vector<float>({1}, {-128.9f}), DType::i1), ExitCode::ok);
  // Unchecked casts saturate instead of invoking undefined behaviour.
  Tensor s = Tensor::from_vector<float>({3}, {1e10f, -1e10f, NAN}).astype(DType::i4, false);
  EXPECT_EQ(s.data<std::int32_t>()[0], std::numeric_limits<std::int32_t>::max());
  EXPECT_EQ(s.data<std::int32_t>()[1], std::numeric_limits<std::int32_t>::min());
  EXPECT_EQ(s.data<std::int32_t>()[2], 0);
}

TEST(Tensor, XtensorViewsShareTheBuffer) {
  Tensor t = Tensor::from_vector<float>({2, 3}, {0, 1, 2, 3, 4, 5});
  auto v = xview<float>(t);
  EXPECT_EQ(v.shape()[0], 2u);
  EXPECT_EQ(v(1, 2), 5.0f);
  v(0, 1) = 42.0f;
  EXPECT_EQ(t.data<float>()[1], 42.0f);
  Tensor t3(DType::f4, {2, 2, 3});
  auto m = xview_2d<float>(t3);
  EXPECT_EQ(m.shape()[0], 4u);
  EXPECT_EQ(m.shape()[1], 3u);
}

TEST(Tensor, DoubleToHalfRoundsOnce) {
  // numpy: np.float16(1 + 2**-11 + 2**-40) == 1.0009765625 (bits 0x3c01); going
  // through float32 first would round to 1 + 2**-11 and then tie to even, 1.0.
  Tensor d = Tensor::from_vector<double>({3}, {1 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40),
                                               1 + std::ldexp(1.0, -11), 65519.99});
  Tensor h = d.astype(DType::f2);
  const auto* bits = reinterpret_cast<const std::uint16_t*>(h.bytes());
  EXPECT_EQ(bits[0], 0x3c01);
  EXPECT_EQ(bits[1], 0x3c00);  // an exact tie still goes to even
  EXPECT_EQ(bits[2], 0x7bff);  // below the overflow threshold 65520
}
