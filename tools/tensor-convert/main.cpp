// tensor-convert: between npy streams, safetensors, npz (read), txt, csv, png
// and json, with an optional dtype cast and reshape.
#include <algorithm>
#include <map>
#include <optional>

#include "nnkit/cli.hpp"
#include "nnkit/formats/npy.hpp"
#include "nnkit/formats/tensor_io.hpp"

using namespace nnkit;

namespace {
std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!s.empty()) out.push_back(cur);
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  std::string keys, dtype, reshape, names;
  long long precision = -1;
  cli::Tool tool("tensor-convert", "Convert tensors between formats and dtypes.");
  tool.synopsis("[OPTIONS] [INPUT] [-o OUTPUT]")
      .inputs(0, 1)
      .description(
          "Reads every tensor of INPUT (npy or npy stream, safetensors, npz, PNG or text; "
          "recognised by its first bytes) and writes them in the output format: --to, else the "
          "extension of -o (.npy .safetensors .txt .csv .png .json), else npy on a pipe and text "
          "on a terminal. Integer casts refuse values that do not fit (NaN, Inf, out of range) "
          "instead of wrapping; float to integer truncates toward zero as numpy does.")
      .option("key,k", &keys, "NAMES",
              "keep only the tensors with these names (comma-separated; a stream's tensors are "
              "named 0, 1, ...), in the order given")
      .option("dtype,d", &dtype, "DTYPE",
              "cast to DTYPE: bool int8 uint8 int16 uint16 int32 uint32 int64 uint64 float16 "
              "float32 float64 (or b1 i1 u1 ... f8)")
      .option("reshape,r", &reshape, "SHAPE", "reshape every tensor, e.g. 2,-1 (one -1 allowed)")
      .option("names", &names, "NAMES",
              "name the tensors for safetensors output (comma-separated; default: their names, "
              "else 0, 1, ...)")
      .option("precision", &precision, "DIGITS",
              "significant digits for txt/csv (-1: the fewest that round-trip the dtype)")
      .example("tensor-convert weights.safetensors --key encoder.weight -o w.npy",
               "pull one tensor out of a checkpoint")
      .example("tensor-convert --dtype uint8 img.npy -o img.png", "write an image")
      .example("tensor-convert data.csv --dtype float32 | tensor-info", "text into a pipe")
      .example("tensor-convert a.npy", "print a tensor as text on the terminal");
  return tool.run(argc, argv, [&](cli::Tool& t) {
    std::optional<DType> target;
    if (t.given("dtype") && !(target = parse_dtype(dtype)))
      throw_usage("unknown dtype '" + dtype + "'");
    if (precision < -1 || precision > 120)
      throw_usage("--precision must be -1 (round-trip) or 0 to 120, not " + std::to_string(precision));
    if (t.given("reshape") && reshape.empty()) throw_usage("--reshape needs a shape, e.g. 2,-1");
    Input in = Input::open(t.input_paths().front());
    const bool unchanged = !target && reshape.empty() && keys.empty() && names.empty();
    if (unchanged && detect_format(in) == Format::npy) {
      Output out = Output::open(t.output_path());
      if (output_format(t.to_format(), t.output_path(), out.is_terminal()) == Format::npy) {
        // npy to npy: stream array by array in bounded memory.
        while (npy::copy_next(in, out)) {
        }
        out.commit();
        return;
      }
    }
    ReadOptions read_opt;
    read_opt.text_float = target == DType::f8 ? DType::f8 : DType::f4;  // parse text at full precision
    std::map<std::string, std::string> metadata;
    read_opt.metadata = &metadata;
    std::vector<NamedTensor> tensors = read_tensors(in, read_opt);
    for (std::size_t i = 0; i < tensors.size(); ++i)
      if (tensors[i].name.empty()) tensors[i].name = std::to_string(i);
    if (!keys.empty()) {
      std::vector<NamedTensor> picked;
      for (const std::string& k : split_list(keys)) {
        auto it = std::find_if(tensors.begin(), tensors.end(), [&](const NamedTensor& nt) { return nt.name == k; });
        if (it == tensors.end()) {
          std::string have;
          for (const auto& nt : tensors) have += (have.empty() ? "" : ", ") + nt.name;
          throw_usage("no tensor named '" + k + "' in " + in.name() + " (it has: " + have + ")");
        }
        picked.push_back(*it);
      }
      tensors = std::move(picked);
    }
    if (!names.empty()) {
      const auto list = split_list(names);
      if (list.size() != tensors.size())
        throw_usage("--names gives " + std::to_string(list.size()) + " names for " +
                    std::to_string(tensors.size()) + " tensors");
      for (std::size_t i = 0; i < list.size(); ++i) tensors[i].name = list[i];
    }
    for (auto& nt : tensors) {
      if (target) nt.tensor = nt.tensor.astype(*target);
      if (!reshape.empty()) nt.tensor = std::move(nt.tensor).reshaped(parse_shape(reshape, nt.tensor.numel()));
    }
    Output out = Output::open(t.output_path());
    const Format f = output_format(t.to_format(), t.output_path(), out.is_terminal());
    // Text and JSON of one tensor, or of an unnamed stream, need no labels.
    WriteOptions opt;
    opt.precision = static_cast<int>(precision);
    opt.metadata = metadata;  // safetensors to safetensors keeps __metadata__ (a model's "kind")
    if (f == Format::txt || f == Format::csv || f == Format::json) {
      bool numbered = true;
      for (std::size_t i = 0; i < tensors.size(); ++i) numbered &= tensors[i].name == std::to_string(i);
      if (numbered || tensors.size() == 1)
        for (auto& nt : tensors) nt.name.clear();
    }
    write_tensors(out, f, tensors, opt);
    out.commit();
  });
}
