// NumPy .npy and .npy streams (arrays back to back). Reads versions 1.0, 2.0
// and 3.0, both byte orders, C and Fortran order, dtypes b1 i1 u1 i2 u2 i4 u4
// i8 u8 f2 f4 f8, 0-d and empty arrays. Writes version 1.0 (2.0 when the
// header needs it), little-endian, C order. Every read is checked.
#pragma once
#include <optional>
#include <string>

#include "nnkit/io.hpp"
#include "nnkit/tensor.hpp"

namespace nnkit::npy {

inline constexpr char magic[] = "\x93NUMPY";
inline constexpr std::size_t magic_size = 6;
// Sanity limits applied to every header before anything is allocated.
inline constexpr std::size_t max_header_bytes = 1 << 20;
inline constexpr std::size_t max_rank = 32;

struct Header {
  DType dtype = DType::f4;
  bool big_endian = false;
  bool fortran_order = false;
  Shape shape;
};

// Parses the dict text of a header ("{'descr': '<f4', ...}"); data error if bad.
Header parse_header_text(const std::string& text);
std::string format_header_text(const Header& h);
// The complete header (magic, version, length, padded dict) as nnkit writes
// it: version 1.0 unless the dict needs 2.0, data 64-byte aligned. Tools that
// stream an array's data in blocks write this first.
std::string header_bytes(const Header& h);

// Reads one array. The input must start at a magic string.
Tensor read(Input& in);
// Reads the next array of a stream; nullopt at a clean end of input.
std::optional<Tensor> read_next(Input& in);
void write(Output& out, const Tensor& t);
// Copies the next array of a stream to out as nnkit writes it (little-endian,
// C order, version 1.0), in bounded memory; false at a clean end of input.
// The fast path of tensor-convert when nothing else changes.
bool copy_next(Input& in, Output& out);
// The complete .npy bytes of t (header + data), for tests and containers.
std::string to_bytes(const Tensor& t);

}  // namespace nnkit::npy
