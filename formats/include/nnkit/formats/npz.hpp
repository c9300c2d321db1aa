// .npz archives as numpy's savez and savez_compressed write them (read only).
#pragma once
#include <vector>

#include "nnkit/io.hpp"
#include "nnkit/tensor.hpp"

namespace nnkit::npz {

bool sniff(std::string_view first_bytes);
// The arrays in archive order, named without the ".npy" suffix.
std::vector<NamedTensor> read(Input& in);

}  // namespace nnkit::npz
