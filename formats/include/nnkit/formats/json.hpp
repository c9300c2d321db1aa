// JSON for small structured results (tensor-info --json, statistics).
#pragma once
#include <nlohmann/json.hpp>

#include "nnkit/io.hpp"
#include "nnkit/tensor.hpp"

namespace nnkit::json {

// Nested lists of numbers in the tensor's shape (NaN/Inf become null).
nlohmann::json from_tensor(const Tensor& t);
// Writes j with two-space indentation and a final newline.
void write(Output& out, const nlohmann::json& j);

}  // namespace nnkit::json
