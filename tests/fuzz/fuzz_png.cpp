// PNG via libpng: png::read. What reads must write and read back the same.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "nnkit/formats/png.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nnkit;
  const std::string bytes = fuzz::bytes(data, size);
  (void)png::sniff(bytes.substr(0, 16));
  Input in = fuzz::memory_input(bytes);
  Tensor t;
  if (!fuzz::expected([&] { t = png::read(in); })) return 0;
  fuzz::check(t.ndim() == 3 && t.dim(2) >= 1 && t.dim(2) <= 4, "png::read shape is not [H, W, 1..4]");
  fuzz::check(t.dtype() == DType::u1 || t.dtype() == DType::u2, "png::read dtype is not uint8/uint16");

  fuzz::StdoutCapture& cap = fuzz::StdoutCapture::get();
  cap.begin();
  bool wrote;
  {
    Output out = Output::open("-");
    wrote = fuzz::expected([&] {
      png::write(out, t);
      out.commit();
    });
  }
  const std::string written = cap.take();
  fuzz::check(wrote, "png::write refused what png::read returned");
  Input again = fuzz::memory_input(written);
  Tensor u;
  fuzz::check(fuzz::expected([&] { u = png::read(again); }), "png::read refused png::write output");
  fuzz::check(fuzz::same_tensor(t, u), "image changed in a png round trip");
  return 0;
}
