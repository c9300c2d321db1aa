// npy files and streams: npy::read and npy::read_next, from memory (size
// known) and through a pipe (size unknown). Both must agree.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "nnkit/formats/npy.hpp"

namespace {

// Every array of the stream; false when the stream is refused somewhere.
bool read_stream(nnkit::Input& in, std::vector<nnkit::Tensor>* out) {
  return fuzz::expected([&] {
    while (std::optional<nnkit::Tensor> t = nnkit::npy::read_next(in)) out->push_back(std::move(*t));
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nnkit;
  const std::string bytes = fuzz::bytes(data, size);

  // One array.
  {
    Input in = fuzz::memory_input(bytes);
    Tensor t;
    if (fuzz::expected([&] { t = npy::read(in); })) {
      // What was read writes and reads back identically.
      Input again = fuzz::memory_input(npy::to_bytes(t));
      Tensor u;
      fuzz::check(fuzz::expected([&] { u = npy::read(again); }), "npy::read refused npy::to_bytes output");
      fuzz::check(fuzz::same_tensor(t, u), "npy round trip changed the tensor");
    }
  }

  // A stream, from memory and from a pipe.
  std::vector<Tensor> mem, piped;
  Input in = fuzz::memory_input(bytes);
  const bool mem_ok = read_stream(in, &mem);
  Input pin = fuzz::memory_input("");
  if (fuzz::pipe_input(bytes, &pin)) {
    const bool pipe_ok = read_stream(pin, &piped);
    fuzz::check(mem_ok == pipe_ok, "a stream is accepted from memory but not from a pipe, or back");
    if (mem_ok) {
      fuzz::check(mem.size() == piped.size(), "memory and pipe read different numbers of arrays");
      for (std::size_t i = 0; i < mem.size(); ++i)
        fuzz::check(fuzz::same_tensor(mem[i], piped[i]), "memory and pipe read different arrays");
    }
  }
  return 0;
}
