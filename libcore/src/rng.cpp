#include "nnkit/rng.hpp"

#include <Random123/philox.h>

#include <cmath>

namespace nnkit {

std::uint32_t SampleRng::bits() {
  if (!have_) {
    // Counter = (draw block, sample), key = seed: every (seed, sample, draw)
    // maps to its own Philox block, so sample i never sees sample j's numbers.
    r123::Philox4x32 philox;
    r123::Philox4x32::ctr_type ctr = {{static_cast<std::uint32_t>(block_),
                                       static_cast<std::uint32_t>(block_ >> 32),
                                       static_cast<std::uint32_t>(sample_),
                                       static_cast<std::uint32_t>(sample_ >> 32)}};
    r123::Philox4x32::key_type key = {{static_cast<std::uint32_t>(seed_),
                                       static_cast<std::uint32_t>(seed_ >> 32)}};
    const auto r = philox(ctr, key);
    for (int i = 0; i < 4; ++i) out_[i] = r.v[i];
    have_ = true;
  }
  const std::uint32_t v = out_[lane_];
  if (++lane_ == 4) {
    lane_ = 0;
    ++block_;
    have_ = false;
  }
  return v;
}

float SampleRng::uniform() {
  // 24 random bits centred in their interval: (k + 0.5) / 2^24 lies in (0, 1).
  return (static_cast<float>(bits() >> 8) + 0.5f) * 0x1p-24f;
}

double SampleRng::uniform_f64() {
  const std::uint64_t hi = bits() >> 5, lo = bits() >> 6;  // 27 + 26 = 53 bits
  return (static_cast<double>((hi << 26) | lo) + 0.5) * 0x1p-53;
}

float SampleRng::normal() {
  if (spare_ok_) {
    spare_ok_ = false;
    return spare_;
  }
  // Box-Muller in double so the tails are accurate, two normals per pair.
  const double u1 = uniform_f64(), u2 = uniform_f64();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double a = 2.0 * M_PI * u2;
  spare_ = static_cast<float>(r * std::sin(a));
  spare_ok_ = true;
  return static_cast<float>(r * std::cos(a));
}

void fill_normal(std::uint64_t seed, std::uint64_t sample, float* out, std::int64_t n) {
  SampleRng rng(seed, sample);
  for (std::int64_t i = 0; i < n; ++i) out[i] = rng.normal();
}

void fill_uniform(std::uint64_t seed, std::uint64_t sample, float* out, std::int64_t n) {
  SampleRng rng(seed, sample);
  for (std::int64_t i = 0; i < n; ++i) out[i] = rng.uniform();
}

}  // namespace nnkit
