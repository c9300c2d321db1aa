// Format detection by first bytes and the common read/write paths of tools.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nnkit/io.hpp"
#include "nnkit/tensor.hpp"

namespace nnkit {

enum class Format { npy, safetensors, npz, png, txt, csv, json };

const char* format_name(Format f);
// "npy", "safetensors", "npz", "png", "txt", "csv", "json"; usage error if unknown.
Format parse_format(const std::string& s);
// From the first bytes of an input: npy, safetensors, npz, png, else txt.
Format detect_format(Input& in);
// --to if given, else the extension of the path, else npy on a pipe or file
// and txt on a terminal.
Format output_format(const std::string& to, const std::string& path, bool terminal);

struct ReadOptions {
  // The dtype of non-integer text values (float64 keeps every digit).
  DType text_float = DType::f4;
  // When set, receives a safetensors file's __metadata__.
  std::map<std::string, std::string>* metadata = nullptr;
};

// Calls fn for each tensor of the input in order (npy streams one at a time,
// so memory stays at one tensor). Names are "" for npy streams.
void for_each_tensor(Input& in, const std::function<void(NamedTensor&&)>& fn,
                     const ReadOptions& opt = {});
std::vector<NamedTensor> read_tensors(Input& in, const ReadOptions& opt = {});
// Exactly one tensor (data error naming the input otherwise).
Tensor read_one_tensor(Input& in);
// The one tensor of path as float32 rows [N, ...]: rank >= 1 and every value
// finite, else a data error that names `what` and the input.
Tensor read_finite_rows(const std::string& path, const std::string& what);

struct WriteOptions {
  int precision = -1;  // text: -1 round-trips the dtype
  std::map<std::string, std::string> metadata;  // safetensors
};
// Writes all tensors in the format. png holds one tensor and refuses several
// (usage error); txt/csv print several one after another under "# tensor NAME"
// lines, for people to read. Does not commit.
void write_tensors(Output& out, Format f, const std::vector<NamedTensor>& tensors,
                   const WriteOptions& opt = {});

}  // namespace nnkit
