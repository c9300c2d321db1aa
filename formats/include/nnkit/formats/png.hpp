// PNG via libpng: 8/16-bit gray, gray+alpha, RGB, RGBA as [H, W, C] uint8 or
// uint16. libpng errors become data errors; no longjmp crosses C++ frames.
#pragma once
#include "nnkit/io.hpp"
#include "nnkit/tensor.hpp"

namespace nnkit::png {

bool sniff(std::string_view first_bytes);
Tensor read(Input& in);
// t must be [H, W] or [H, W, C] with C in 1..4, uint8 or uint16.
void write(Output& out, const Tensor& t);

}  // namespace nnkit::png
