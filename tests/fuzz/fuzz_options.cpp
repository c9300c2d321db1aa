// Parsers of option values: parse_shape (--reshape), parse_part (--shard,
// tensor-split), parse_dtype (--dtype), rf::parse_size (--input-size) and the
// word options of iou/nms and rope-embed. The first byte picks the parser,
// the rest is the value.
#include <cstdint>
#include <limits>
#include <string>

#include "fuzz_common.hpp"
#include "nnkit/dtype.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/ops/boxes.hpp"
#include "nnkit/ops/receptive_field.hpp"
#include "nnkit/ops/rope.hpp"
#include "nnkit/shard.hpp"
#include "nnkit/tensor.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nnkit;
  if (size == 0) return 0;
  const std::uint8_t pick = data[0];
  const std::string s = fuzz::bytes(data + 1, size - 1);
  switch (pick % 8) {
    case 0:
    case 1: {
      const std::int64_t numels[] = {0, 1, 24, 720, std::int64_t{1} << 40, std::numeric_limits<std::int64_t>::max(),
                                     6, 1000000007};
      const std::int64_t numel = numels[(pick >> 3) % 8];
      Shape sh;
      if (!fuzz::expected([&] { sh = parse_shape(s, numel); })) break;
      for (std::int64_t d : sh) fuzz::check(d >= 0, "parse_shape returned a negative extent");
      std::int64_t n = 0;
      if (fuzz::expected([&] { n = checked_numel(sh); }) && s.find("-1") != std::string::npos)
        fuzz::check(n == numel, "parse_shape resolved -1 to a shape of another size");
      break;
    }
    case 2: {
      Part p{};
      if (!fuzz::expected([&] { p = parse_part(s); })) break;
      fuzz::check(p.index >= 0 && p.index < p.count, "parse_part accepted K outside [0, N)");
      for (std::int64_t len : {std::int64_t{0}, std::int64_t{1}, std::int64_t{7}, std::int64_t{1} << 62}) {
        const auto [b, e] = part_range(len, p);
        fuzz::check(0 <= b && b <= e && e <= len, "part_range out of [0, length]");
      }
      break;
    }
    case 3: {
      const auto t = parse_dtype(s);
      if (t) fuzz::check(parse_dtype(dtype_code(*t)) == t && parse_dtype(dtype_name(*t)) == t, "dtype names do not round-trip");
      break;
    }
    case 4: {
      const auto sz = rf::parse_size(s);
      if (sz)
        for (std::int64_t v : *sz) fuzz::check(v >= 0 && v <= rf::max_parameter, "parse_size out of range");
      break;
    }
    case 5:
      (void)fuzz::expected([&] { (void)boxes::parse_format(s); });
      (void)fuzz::expected([&] { (void)boxes::parse_metric(s); });
      break;
    case 6:
      (void)fuzz::expected([&] { (void)rope::parse_layout(s); });
      (void)fuzz::expected([&] { (void)rope::parse_scaling(s); });
      break;
    case 7:
      (void)fuzz::expected([&] { (void)parse_format(s); });
      break;
  }
  return 0;
}
