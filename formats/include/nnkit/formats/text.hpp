// Text tensors: numbers separated by whitespace or commas, one row per line,
// '#' starts a comment. One value is 0-D, one row is 1-D, several rows 2-D.
#pragma once
#include "nnkit/io.hpp"
#include "nnkit/tensor.hpp"

namespace nnkit::text {

// Digits that round-trip float32 (9) / float64 (17).
inline constexpr int default_precision = -1;  // -1: enough to round-trip the dtype

// Reads the whole input as one tensor: int64 when every value is an integer
// literal, else float_type (float32 by default, as everywhere in nnkit; parsed
// directly in that type, so float64 loses nothing). Ragged rows, bad numbers
// and input without numbers are data errors naming the line.
Tensor read(Input& in, DType float_type = DType::f4);
// csv=true separates with commas, else single spaces. Tensors of rank > 2 are
// written as 2-D [prod(leading), last] after a "# shape: ..." comment line.
void write(Output& out, const Tensor& t, bool csv, int precision = default_precision);

}  // namespace nnkit::text
