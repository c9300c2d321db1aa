#include <gtest/gtest.h>

#include "nnkit/shard.hpp"

using namespace nnkit;

TEST(Shard, PartRangeMatchesNumpyArraySplit) {
  // np.array_split(np.arange(10), 4) -> sizes 3, 3, 2, 2
  const std::pair<std::int64_t, std::int64_t> want[] = {{0, 3}, {3, 6}, {6, 8}, {8, 10}};
  for (int k = 0; k < 4; ++k) EXPECT_EQ(part_range(10, {k, 4}), want[k]);
  // More parts than items: trailing parts are empty.
  EXPECT_EQ(part_range(2, {3, 5}), (std::pair<std::int64_t, std::int64_t>{2, 2}));
}

TEST(Shard, PartsAreContiguousBalancedAndCover) {
  for (std::int64_t len : {0, 1, 7, 100, 1001})
    for (std::int64_t n : {1, 2, 3, 8, 13}) {
      std::int64_t at = 0, lo = len, hi = 0;
      for (std::int64_t k = 0; k < n; ++k) {
        auto [b, e] = part_range(len, {k, n});
        ASSERT_EQ(b, at);
        at = e;
        lo = std::min(lo, e - b);
        hi = std::max(hi, e - b);
      }
      EXPECT_EQ(at, len);
      EXPECT_LE(hi - lo, 1);
    }
}

TEST(Shard, ParsePart) {
  EXPECT_EQ(parse_part("0/4").index, 0);
  EXPECT_EQ(parse_part("3/4").count, 4);
  EXPECT_THROW(parse_part("4/4"), Error);
  EXPECT_THROW(parse_part("-1/4"), Error);
  EXPECT_THROW(parse_part("1/0"), Error);
  EXPECT_THROW(parse_part("1"), Error);
  EXPECT_THROW(parse_part("a/b"), Error);
}

TEST(Shard, SliceAndConcatAreInverse) {
  std::vector<std::int32_t> v(24);
  for (int i = 0; i < 24; ++i) v[i] = i;
  Tensor t = Tensor::from_vector<std::int32_t>({2, 3, 4}, v);
  for (std::size_t axis = 0; axis < 3; ++axis) {
    std::vector<Tensor> parts;
    for (std::int64_t k = 0; k < 2; ++k) {
      auto [b, e] = part_range(t.shape()[axis], {k, 2});
      parts.push_back(slice_axis(t, axis, b, e));
    }
    Tensor back = concat({&parts[0], &parts[1]}, axis);
    ASSERT_EQ(back.shape(), t.shape());
    for (int i = 0; i < 24; ++i) EXPECT_EQ(back.data<std::int32_t>()[i], i);
  }
  // Axis 2, first half: t[:, :, 0:2] -> first row [0, 1], then [4, 5] ...
  Tensor s = slice_axis(t, 2, 0, 2);
  EXPECT_EQ(s.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(s.data<std::int32_t>()[2], 4);
  EXPECT_EQ(normalize_axis(-1, 3), 2u);
  EXPECT_THROW(normalize_axis(3, 3), Error);
}

TEST(Shard, ConcatRefusesMismatches) {
  Tensor a(DType::f4, {2, 3}), b(DType::f4, {2, 4}), c(DType::f8, {2, 3});
  EXPECT_THROW(concat({&a, &b}, 0), Error);
  EXPECT_NO_THROW(concat({&a, &b}, 1));
  EXPECT_THROW(concat({&a, &c}, 0), Error);
}
