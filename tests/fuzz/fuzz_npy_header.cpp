// npy header dicts: npy::parse_header_text. What parses must survive
// format_header_text / header_bytes and npy::read unchanged.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "nnkit/formats/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nnkit;
  const std::string text = fuzz::bytes(data, size);
  npy::Header h;
  if (!fuzz::expected([&] { h = npy::parse_header_text(text); })) return 0;
  fuzz::check(h.shape.size() <= npy::max_rank, "rank above max_rank accepted");
  for (std::int64_t d : h.shape) fuzz::check(d >= 0, "negative extent accepted");

  // What nnkit writes, nnkit reads back the same.
  npy::Header back;
  fuzz::check(fuzz::expected([&] { back = npy::parse_header_text(npy::format_header_text(h)); }),
              "format_header_text wrote a dict that parse_header_text refuses");
  fuzz::check(back.dtype == h.dtype && back.fortran_order == h.fortran_order && back.shape == h.shape &&
                  (dtype_size(h.dtype) == 1 || back.big_endian == h.big_endian),
              "header changed in a format/parse round trip");

  // A whole file with that header and small enough data reads back.
  std::int64_t nbytes = -1;
  if (!fuzz::expected([&] { nbytes = checked_nbytes(h.shape, h.dtype); })) return 0;
  if (nbytes > (1 << 16)) return 0;
  std::string file = npy::header_bytes(h) + std::string(static_cast<std::size_t>(nbytes), '\0');
  Input in = fuzz::memory_input(file);
  Tensor t;
  fuzz::check(fuzz::expected([&] { t = npy::read(in); }), "npy::read refused header_bytes + data");
  fuzz::check(t.dtype() == h.dtype && t.shape() == h.shape, "npy::read changed dtype or shape");
  return 0;
}
