// tensor-info: dtype, shape, size and statistics of every tensor of every input.
#include <cmath>
#include <cstdio>

#include "nnkit/cli.hpp"
#include "nnkit/formats/json.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/stats.hpp"

using namespace nnkit;

namespace {

std::string number(double v) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

nlohmann::json json_number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

}  // namespace

int main(int argc, char** argv) {
  bool as_json = false;
  cli::Tool tool("tensor-info", "Print the dtype, shape, size and statistics of every tensor of every input.");
  tool.description(
          "Each input may hold several tensors (an npy stream, safetensors, npz). For each tensor "
          "the table gives the input, the tensor's name (or its index in a stream), dtype, shape, "
          "size of its data in bytes, and min, max, mean and std (population, ddof=0) over the "
          "finite values, with the counts of NaN and Inf beside them.")
      .output_formats({"txt", "json"}, "json when -o ends in .json, else txt")
      .flag("json", &as_json, "print a JSON array of objects instead of the table (as --to json)")
      .example("tensor-info weights.safetensors", "one line per tensor of the file")
      .example("tensor-convert --dtype float16 x.npy | tensor-info", "inspect a pipe")
      .example("tensor-info --json a.npy b.npy -o info.json", "machine-readable summary");
  return tool.run(argc, argv, [&](cli::Tool& t) {
    const std::string& to = t.to_format();
    const std::string& path = t.output_path();
    if (to == "json" || (to.empty() && path.size() > 5 && path.substr(path.size() - 5) == ".json"))
      as_json = true;

    std::vector<std::vector<std::string>> rows = {
        {"input", "tensor", "dtype", "shape", "bytes", "min", "max", "mean", "std", "nan", "inf"}};
    nlohmann::json all = nlohmann::json::array();
    for (const std::string& name : t.input_paths()) {
      Input in = Input::open(name);
      std::int64_t index = 0;
      for_each_tensor(in, [&](NamedTensor&& nt) {
        const Tensor& x = nt.tensor;
        const TensorStats s = compute_stats(x);
        const std::string label = nt.name.empty() ? std::to_string(index) : nt.name;
        if (as_json) {
          all.push_back({{"input", in.name()}, {"index", index}, {"name", nt.name},
                         {"dtype", std::string(dtype_name(x.dtype()))}, {"shape", x.shape()},
                         {"bytes", x.nbytes()}, {"min", json_number(s.min)},
                         {"max", json_number(s.max)}, {"mean", json_number(s.mean)},
                         {"std", json_number(s.std)}, {"nan", s.nan}, {"inf", s.inf}});
        } else {
          rows.push_back({in.name(), label, std::string(dtype_name(x.dtype())), shape_str(x.shape()),
                          std::to_string(x.nbytes()), number(s.min), number(s.max), number(s.mean),
                          number(s.std), std::to_string(s.nan), std::to_string(s.inf)});
        }
        ++index;
      });
    }
    Output out = Output::open(path);
    if (as_json) {
      json::write(out, all);
    } else {
      std::vector<std::size_t> width(rows.front().size(), 0);
      for (const auto& r : rows)
        for (std::size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
      for (const auto& r : rows) {
        std::string line;
        for (std::size_t c = 0; c < r.size(); ++c) {
          line += r[c];
          if (c + 1 < r.size()) line += std::string(width[c] - r[c].size() + 2, ' ');
        }
        out.write(line + "\n");
      }
    }
    out.commit();
  });
}
