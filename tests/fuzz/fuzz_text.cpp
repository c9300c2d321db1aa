// Text tensors (txt/csv): text::read as float32 and float64. What reads must
// write (txt and csv) and read back with the same shape and values.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "nnkit/formats/text.hpp"

namespace {

void round_trip(const nnkit::Tensor& t, bool csv, nnkit::DType float_type) {
  using namespace nnkit;
  fuzz::StdoutCapture& cap = fuzz::StdoutCapture::get();
  cap.begin();
  bool wrote;
  {
    Output out = Output::open("-");
    wrote = fuzz::expected([&] {
      text::write(out, t, csv);
      out.commit();
    });
  }
  const std::string written = cap.take();
  fuzz::check(wrote, "text::write refused what text::read returned");
  Input in = fuzz::memory_input(written);
  Tensor u;
  fuzz::check(fuzz::expected([&] { u = text::read(in, float_type); }), "text::read refused text::write output");
  fuzz::check(u.dtype() == t.dtype(), "dtype changed in a text round trip");
  fuzz::check(fuzz::same_values(t, u), "values or shape changed in a text round trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nnkit;
  const std::string bytes = fuzz::bytes(data, size);
  for (DType ft : {DType::f4, DType::f8}) {
    Input in = fuzz::memory_input(bytes);
    Tensor t;
    if (!fuzz::expected([&] { t = text::read(in, ft); })) continue;
    round_trip(t, false, ft);
    round_trip(t, true, ft);
  }
  return 0;
}
