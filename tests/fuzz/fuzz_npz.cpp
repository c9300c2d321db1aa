// .npz archives (zip of .npy members, stored or deflated): npz::read.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "nnkit/formats/npz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nnkit;
  const std::string bytes = fuzz::bytes(data, size);
  (void)npz::sniff(bytes.substr(0, 16));
  Input in = fuzz::memory_input(bytes);
  std::vector<NamedTensor> ts;
  if (!fuzz::expected([&] { ts = npz::read(in); })) return 0;
  for (const NamedTensor& t : ts) {
    fuzz::check(t.tensor.numel() >= 0, "negative numel");
    // Touch every byte so that a short buffer shows under ASan.
    volatile std::uint8_t sum = 0;
    for (std::size_t i = 0; i < t.tensor.nbytes(); ++i) sum = sum + static_cast<std::uint8_t>(t.tensor.bytes()[i]);
  }
  return 0;
}
