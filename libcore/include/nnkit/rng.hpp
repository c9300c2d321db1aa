// Counter-based random numbers (Philox4x32-10 from Random123): the numbers of
// sample i depend only on the seed and i, never on batch size, thread count or
// sharding. Draw j of sample i is a pure function of (seed, i, j).
#pragma once
#include <cstdint>

namespace nnkit {

inline constexpr std::uint64_t default_seed = 0;

class SampleRng {
 public:
  SampleRng(std::uint64_t seed, std::uint64_t sample) : seed_(seed), sample_(sample) {}
  // Uniform in (0, 1): never exactly 0 or 1, so log() is safe.
  float uniform();
  double uniform_f64();
  // Standard normal (Box-Muller on pairs of uniforms).
  float normal();
  // Next raw 32 random bits.
  std::uint32_t bits();
  // Start again from draw j of this sample.
  void seek(std::uint64_t draw) { block_ = draw / 4; lane_ = static_cast<int>(draw % 4); have_ = false; spare_ok_ = false; }

 private:
  std::uint64_t seed_, sample_;
  std::uint64_t block_ = 0;
  int lane_ = 0;
  bool have_ = false;
  std::uint32_t out_[4] = {0, 0, 0, 0};
  bool spare_ok_ = false;
  float spare_ = 0.f;
};

// Fills out[0..n) with standard normals for sample `sample`.
void fill_normal(std::uint64_t seed, std::uint64_t sample, float* out, std::int64_t n);
void fill_uniform(std::uint64_t seed, std::uint64_t sample, float* out, std::int64_t n);

}  // namespace nnkit
