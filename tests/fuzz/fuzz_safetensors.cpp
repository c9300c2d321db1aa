// safetensors files: safetensors::read (header JSON, offsets, dtypes,
// metadata). What reads must write and read back the same.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "nnkit/formats/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nnkit;
  const std::string bytes = fuzz::bytes(data, size);
  (void)safetensors::sniff(bytes.substr(0, 16));
  Input in = fuzz::memory_input(bytes);
  safetensors::File f;
  if (!fuzz::expected([&] { f = safetensors::read(in); })) return 0;

  fuzz::StdoutCapture& cap = fuzz::StdoutCapture::get();
  cap.begin();
  bool wrote;
  {
    Output out = Output::open("-");
    wrote = fuzz::expected([&] {
      safetensors::write(out, f);
      out.commit();
    });
  }
  const std::string written = cap.take();
  fuzz::check(wrote, "safetensors::write refused what safetensors::read returned");
  Input again = fuzz::memory_input(written);
  safetensors::File g;
  fuzz::check(fuzz::expected([&] { g = safetensors::read(again); }), "safetensors::read refused its own output");
  fuzz::check(g.metadata == f.metadata, "metadata changed in a round trip");
  fuzz::check(g.tensors.size() == f.tensors.size(), "tensor count changed in a round trip");
  for (std::size_t i = 0; i < f.tensors.size(); ++i) {
    fuzz::check(g.tensors[i].name == f.tensors[i].name, "tensor name changed in a round trip");
    fuzz::check(fuzz::same_tensor(g.tensors[i].tensor, f.tensors[i].tensor), "tensor changed in a round trip");
  }
  return 0;
}
