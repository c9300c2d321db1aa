// safetensors: u64 little-endian header length, a JSON header mapping names to
// {dtype, shape, data_offsets} plus optional "__metadata__" (string to string),
// then the data. Offsets must be contiguous, in bounds and not overlap.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "nnkit/io.hpp"
#include "nnkit/tensor.hpp"

namespace nnkit::safetensors {

inline constexpr std::uint64_t max_header_bytes = 100u << 20;  // as the reference implementation

struct File {
  std::vector<NamedTensor> tensors;  // in data order
  std::map<std::string, std::string> metadata;
};

// True when the first bytes look like a safetensors file.
bool sniff(std::string_view first_bytes);
File read(Input& in);
void write(Output& out, const File& f);

}  // namespace nnkit::safetensors
