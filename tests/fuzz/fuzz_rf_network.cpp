// rf-calc's network language: rf::parse_network, then rf::analyze with and
// without an input size, both padding conventions, and the numbers rf-calc
// prints for the last layer.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "nnkit/ops/receptive_field.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nnkit;
  const std::string text = fuzz::bytes(data, size);
  rf::Network net;
  if (!fuzz::expected([&] { net = rf::parse_network(text, "fuzz-input"); })) return 0;
  fuzz::check(!net.layers.empty() && net.layers[0].op == rf::Op::input, "layers[0] is not the input");
  for (std::size_t i = 1; i < net.layers.size(); ++i)
    for (std::size_t k : net.layers[i].inputs) fuzz::check(k < i, "a layer reads a later layer");

  // Small and large input sizes, as --input-size gives them.
  const std::int64_t sizes[] = {0, 1, 224, rf::max_parameter};
  const std::int64_t hw = sizes[size % 4];
  for (int variant = 0; variant < 4; ++variant) {
    rf::Options opt;
    if (variant & 1) opt.input_size = rf::Size2{hw, hw == 0 ? 0 : 7};
    if (variant & 2) {
      opt.convention = rf::PaddingConvention::tf;
      opt.allow_misaligned = true;
    }
    rf::Analysis an;
    if (!fuzz::expected([&] { an = rf::analyze(net, opt); })) continue;
    fuzz::check(an.fields.size() == net.layers.size(), "analysis of every layer expected");
    const rf::Field& f = an.fields.back();
    for (const rf::AxisField& a : f.axis) {
      fuzz::check(a.S.num() > 0 && a.r.num() > 0, "non-positive stride or field");
      (void)a.r.str();
      (void)a.S.decimal();
      (void)a.P.str();
    }
  }
  return 0;
}
