#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

#include "nnkit/parallel.hpp"
#include "nnkit/rng.hpp"

using namespace nnkit;

TEST(Rng, PhiloxKnownAnswer) {
  // Random123's published known-answer test for philox4x32_10 (kat_vectors):
  // ctr = 0, key = 0 -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8. Sample 0, seed 0,
  // draws 0..3 use exactly that counter and key.
  SampleRng r(0, 0);
  EXPECT_EQ(r.bits(), 0x6627e8d5u);
  EXPECT_EQ(r.bits(), 0xe169c58du);
  EXPECT_EQ(r.bits(), 0xbc57ac4cu);
  EXPECT_EQ(r.bits(), 0x9b00dbd8u);
}

TEST(Rng, SampleStreamsDependOnlyOnSeedAndIndex) {
  const int n = 64, dim = 37;
  std::vector<float> ref(n * dim);
  for (int i = 0; i < n; ++i) fill_normal(42, i, &ref[i * dim], dim);
  // Any batch size, any order, any thread count: the same numbers per sample.
  for (int threads : {1, 2, 5}) {
    set_threads(threads);
    std::vector<float> got(n * dim);
    parallel_for(n, 3, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = e - 1; i >= b; --i) fill_normal(42, i, &got[i * dim], dim);
    });
    EXPECT_EQ(got, ref) << threads << " threads";
  }
  set_threads(0);
  // A shard that starts at sample 40 sees sample 40's numbers.
  std::vector<float> shard(dim);
  fill_normal(42, 40, shard.data(), dim);
  EXPECT_TRUE(std::equal(shard.begin(), shard.end(), ref.begin() + 40 * dim));
  // Different seeds and different samples differ.
  std::vector<float> other(dim);
  fill_normal(43, 0, other.data(), dim);
  EXPECT_NE(other[0], ref[0]);
  EXPECT_NE(ref[0], ref[dim]);
}

TEST(Rng, UniformIsOpenIntervalAndUnbiased) {
  SampleRng r(7, 3);
  double sum = 0, sq = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const float u = r.uniform();
    ASSERT_GT(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
    sq += u * u;
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 4 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(var, 1.0 / 12, 0.002);
}

TEST(Rng, NormalMomentsAndTails) {
  std::vector<float> x(400000);
  fill_normal(1, 9, x.data(), static_cast<std::int64_t>(x.size()));
  double m1 = 0, m2 = 0, m4 = 0;
  int beyond3 = 0;
  for (float v : x) {
    m1 += v;
    m2 += v * v;
    m4 += double(v) * v * v * v;
    beyond3 += std::fabs(v) > 3;
  }
  const double n = static_cast<double>(x.size());
  EXPECT_NEAR(m1 / n, 0.0, 0.01);
  EXPECT_NEAR(m2 / n, 1.0, 0.01);
  EXPECT_NEAR(m4 / n, 3.0, 0.06);  // kurtosis of a Gaussian
  // P(|z| > 3) = 0.0026998
  EXPECT_NEAR(beyond3 / n, 0.0027, 0.0005);
}

TEST(Rng, SeekReplaysDraws) {
  SampleRng a(5, 11);
  std::vector<std::uint32_t> v;
  for (int i = 0; i < 10; ++i) v.push_back(a.bits());
  SampleRng b(5, 11);
  b.seek(6);
  EXPECT_EQ(b.bits(), v[6]);
  EXPECT_EQ(b.bits(), v[7]);
}
