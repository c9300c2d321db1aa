// npy::copy_next, the bounded-memory copy of a stream: its output must be
// exactly npy::to_bytes of what npy::read_next reads, and it must accept and
// refuse the same streams.
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz_common.hpp"
#include "nnkit/formats/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nnkit;
  const std::string bytes = fuzz::bytes(data, size);
  fuzz::StdoutCapture& cap = fuzz::StdoutCapture::get();

  std::string want;
  Input a = fuzz::memory_input(bytes);
  const bool read_ok = fuzz::expected([&] {
    while (std::optional<Tensor> t = npy::read_next(a)) want += npy::to_bytes(*t);
  });

  cap.begin();
  Input b = fuzz::memory_input(bytes);
  bool copy_ok;
  {
    Output out = Output::open("-");
    copy_ok = fuzz::expected([&] {
      while (npy::copy_next(b, out)) {
      }
      out.commit();
    });
  }
  const std::string got = cap.take();
  fuzz::check(read_ok == copy_ok, "copy_next and read_next disagree about a stream");
  if (read_ok) fuzz::check(got == want, "copy_next wrote other bytes than read_next + to_bytes");

  // The same through a pipe.
  Input p = fuzz::memory_input("");
  if (fuzz::pipe_input(bytes, &p)) {
    bool pipe_ok;
    {
      Output out = Output::open("-");
      pipe_ok = fuzz::expected([&] {
        while (npy::copy_next(p, out)) {
        }
        out.commit();
      });
    }
    const std::string piped = cap.take();
    fuzz::check(pipe_ok == copy_ok, "copy_next accepts a stream from memory but not from a pipe, or back");
    if (pipe_ok) fuzz::check(piped == got, "copy_next wrote other bytes from a pipe");
  }
  return 0;
}
