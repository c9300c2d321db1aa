#include <gtest/gtest.h>

#include <cmath>

#include "nnkit/stats.hpp"

using namespace nnkit;

TEST(Stats, MatchNumpyOverFiniteValues) {
  // numpy: x = [1, 2, 3, 4, nan, inf]; finite = x[np.isfinite(x)]
  // finite.min() 1, max 4, mean 2.5, std (ddof=0) 1.118033988749895
  Tensor t = Tensor::from_vector<float>({6}, {1, 2, 3, 4, NAN, INFINITY});
  TensorStats s = compute_stats(t);
  EXPECT_EQ(s.count, 6);
  EXPECT_EQ(s.nan, 1);
  EXPECT_EQ(s.inf, 1);
  EXPECT_EQ(s.finite, 4);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 4);
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_DOUBLE_EQ(s.std, 1.118033988749895);
}

TEST(Stats, LargeOffsetDoesNotCancel) {
  // Values 1e8 + {0, 1, 2}: E[x^2] - E[x]^2 in double would lose the answer.
  Tensor t = Tensor::from_vector<double>({3}, {1e8, 1e8 + 1, 1e8 + 2});
  EXPECT_NEAR(compute_stats(t).std, std::sqrt(2.0 / 3.0), 1e-9);
}

TEST(Stats, IntegersHalfAndEmpty) {
  Tensor i = Tensor::from_vector<std::int64_t>({3}, {-5, 0, 5});
  EXPECT_EQ(compute_stats(i).min, -5);
  Tensor h = Tensor::from_vector<float>({2}, {0.5f, 1.5f}).astype(DType::f2);
  EXPECT_EQ(compute_stats(h).mean, 1.0);
  Tensor e(DType::f4, {0});
  TensorStats s = compute_stats(e);
  EXPECT_EQ(s.count, 0);
  EXPECT_TRUE(std::isnan(s.mean));
}
