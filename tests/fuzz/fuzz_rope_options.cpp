// rope-embed's option values as the core receives them: rope::parse_int_list
// (--grid, --mrope-section), the scaling parameters through rope::validate
// and frequencies (every scaling type, any factor, context length, beta,
// mscale, llama3 band and LongRoPE factors), positions from sequences and
// grids (sizes that overflow or exceed NNKIT_MAX_MEMORY must be refused with
// an nnkit::Error), the tables of a small Rope applied to a small tensor, and
// convert_layout with fuzzed heads and rotary dimension.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "nnkit/ops/rope.hpp"
#include "nnkit/parallel.hpp"

using namespace nnkit;

namespace {

std::int64_t count(FuzzedDataProvider& fdp, std::int64_t small_max) {
  if (fdp.ConsumeIntegralInRange(0, 7) == 0) return fdp.ConsumeIntegral<std::int64_t>();
  return fdp.ConsumeIntegralInRange<std::int64_t>(-2, small_max);
}

double real(FuzzedDataProvider& fdp, double lo, double hi) {
  if (fdp.ConsumeIntegralInRange(0, 7) == 0) {
    const double special[] = {std::nan(""), std::numeric_limits<double>::infinity(), -1.0, 0.0, 1e308, 1e-308};
    return fdp.ConsumeBool() ? fdp.PickValueInArray(special) : fdp.ConsumeFloatingPoint<double>();
  }
  return fdp.ConsumeFloatingPointInRange(lo, hi);
}

void fuzz_int_list(FuzzedDataProvider& fdp) {
  const char sep = fdp.ConsumeBool() ? 'x' : ',';
  const bool positive = fdp.ConsumeBool();
  const std::string text = fdp.ConsumeRemainingBytesAsString();
  std::vector<std::int64_t> v;
  if (!fuzz::expected([&] { v = rope::parse_int_list(text, "--grid", sep, positive); })) return;
  fuzz::check(!v.empty(), "parse_int_list: an empty list");
  for (std::int64_t x : v) fuzz::check(x >= (positive ? 1 : 0) && x <= (std::int64_t{1} << 40), "parse_int_list: out of range");
}

rope::Params params(FuzzedDataProvider& fdp) {
  rope::Params p;
  p.base = real(fdp, 1, 1e6);
  p.rotary_dim = count(fdp, 64);
  p.layout = fdp.ConsumeBool() ? rope::Layout::half : rope::Layout::interleaved;
  p.scaling = fdp.PickValueInArray({rope::Scaling::none, rope::Scaling::linear, rope::Scaling::dynamic, rope::Scaling::yarn,
                                    rope::Scaling::llama3, rope::Scaling::longrope});
  p.factor = real(fdp, 1, 64);
  p.original_max_pos = count(fdp, 4096);
  p.beta_fast = real(fdp, 0, 64);
  p.beta_slow = real(fdp, 0, 8);
  p.mscale = real(fdp, 0, 4);
  p.mscale_all_dim = real(fdp, 0, 4);
  p.truncate = fdp.ConsumeBool();
  p.low_freq_factor = real(fdp, 0, 8);
  p.high_freq_factor = real(fdp, 0, 8);
  const std::int64_t factors = fdp.ConsumeIntegralInRange<std::int64_t>(0, 40);
  for (std::int64_t i = 0; i < factors; ++i) p.short_factor.push_back(real(fdp, 0.5, 8));
  for (std::int64_t i = 0; i < factors; ++i) p.long_factor.push_back(real(fdp, 0.5, 8));
  if (fdp.ConsumeBool()) p.attention_factor = real(fdp, 0, 4);
  p.axes = fdp.ConsumeIntegralInRange(0, 9);
  if (fdp.ConsumeBool())
    for (int a = 0; a < p.axes; ++a) p.mrope_section.push_back(count(fdp, 32));
  return p;
}

void fuzz_frequencies(FuzzedDataProvider& fdp) {
  const rope::Params p = params(fdp);
  const std::int64_t seq_len = count(fdp, 1 << 20);
  rope::Frequencies f;
  if (!fuzz::expected([&] { f = rope::frequencies(p, seq_len); })) return;
  fuzz::check(static_cast<std::int64_t>(f.inv_freq.size()) == p.rotary_dim / 2, "frequencies: not R/2 of them");
}

// Positions of a sequence or a grid; the sizes are anything, and what does
// not fit must be an nnkit::Error.
void fuzz_positions(FuzzedDataProvider& fdp) {
  const std::int64_t offset = count(fdp, 100);
  rope::Positions pos;
  if (fdp.ConsumeBool()) {
    const std::int64_t seq = count(fdp, 64);
    if (!fuzz::expected([&] { pos = rope::sequence_positions(seq, offset); })) return;
    fuzz::check(pos.slots() == seq, "sequence_positions: not seq slots");
  } else {
    std::vector<std::int64_t> grid;
    const int axes = fdp.ConsumeIntegralInRange(1, 3);
    for (int a = 0; a < axes; ++a) grid.push_back(fdp.ConsumeBool() ? fdp.ConsumeIntegralInRange<std::int64_t>(1, 8)
                                                                     : fdp.ConsumeIntegralInRange<std::int64_t>(1, std::int64_t{1} << 40));
    if (!fuzz::expected([&] { pos = rope::grid_positions(grid, offset); })) return;
  }
  // A small rotation over them.
  rope::Params p;
  p.rotary_dim = 2 * pos.axes * fdp.ConsumeIntegralInRange(1, 4);
  p.axes = pos.axes;
  p.layout = fdp.ConsumeBool() ? rope::Layout::half : rope::Layout::interleaved;
  if (pos.slots() > 4096) return;  // cost, not correctness
  (void)fuzz::expected([&] {
    const rope::Rope r(p, pos, fdp.ConsumeBool());
    const Tensor c = r.cos_table(), s = r.sin_table();
    Tensor x(DType::f4, {pos.slots(), p.rotary_dim + fdp.ConsumeIntegralInRange<std::int64_t>(0, 3)});
    for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(real(fdp, -4, 4));
    (void)r.apply(x, -2);
  });
}

void fuzz_convert_layout(FuzzedDataProvider& fdp) {
  Shape shape;
  const int rank = fdp.ConsumeIntegralInRange(0, 3);
  for (int i = 0; i < rank; ++i) shape.push_back(fdp.ConsumeIntegralInRange<std::int64_t>(0, 16));
  Tensor t(DType::f4, shape);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  const std::int64_t rotary = count(fdp, 16), heads = count(fdp, 8);
  const bool weights = fdp.ConsumeBool();
  const auto from = fdp.ConsumeBool() ? rope::Layout::half : rope::Layout::interleaved;
  const auto to = fdp.ConsumeBool() ? rope::Layout::half : rope::Layout::interleaved;
  Tensor out;
  if (!fuzz::expected([&] { out = rope::convert_layout(t, from, to, rotary, heads, weights); })) return;
  fuzz::check(out.shape() == t.shape(), "convert_layout changed the shape");
  Tensor back = rope::convert_layout(out, to, from, rotary, heads, weights);
  fuzz::check(fuzz::same_tensor(back, t), "convert_layout there and back is not the identity");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return fuzz::bound_memory_and_threads(); }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  FuzzedDataProvider fdp(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0: fuzz_int_list(fdp); break;
    case 1: fuzz_frequencies(fdp); break;
    case 2: fuzz_positions(fdp); break;
    case 3: fuzz_convert_layout(fdp); break;
  }
  return 0;
}
