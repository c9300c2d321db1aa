#include "nnkit/formats/tensor_io.hpp"

#include <cmath>
#include <cstring>

#include "nnkit/formats/json.hpp"
#include "nnkit/formats/npy.hpp"
#include "nnkit/formats/npz.hpp"
#include "nnkit/formats/png.hpp"
#include "nnkit/formats/safetensors.hpp"
#include "nnkit/formats/text.hpp"

namespace nnkit {

namespace {
constexpr struct {
  Format f;
  const char* name;
} format_names[] = {{Format::npy, "npy"}, {Format::safetensors, "safetensors"}, {Format::npz, "npz"},
                    {Format::png, "png"}, {Format::txt, "txt"},                 {Format::csv, "csv"},
                    {Format::json, "json"}};
}  // namespace

const char* format_name(Format f) {
  for (const auto& n : format_names)
    if (n.f == f) return n.name;
  return "?";
}

Format parse_format(const std::string& s) {
  for (const auto& n : format_names)
    if (s == n.name) return n.f;
  if (s == "text") return Format::txt;
  if (s == "st") return Format::safetensors;
  throw_usage("unknown format '" + s + "' (npy, safetensors, npz, png, txt, csv, json)");
}

Format detect_format(Input& in) {
  const std::string_view head = in.peek(16);
  // 0x93 cannot start text: even a cut-off magic is npy, so that the error
  // says "truncated .npy" rather than "bad number".
  if (!head.empty() && head[0] == npy::magic[0]) return Format::npy;
  if (png::sniff(head)) return Format::png;
  if (npz::sniff(head)) return Format::npz;
  if (safetensors::sniff(head)) return Format::safetensors;
  return Format::txt;
}

Format output_format(const std::string& to, const std::string& path, bool terminal) {
  if (!to.empty()) return parse_format(to);
  if (path != "-") {
    const auto slash = path.rfind('/');
    const auto dot = path.rfind('.');
    if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) {
      const std::string ext = path.substr(dot + 1);
      if (ext == "npy") return Format::npy;
      if (ext == "safetensors") return Format::safetensors;
      if (ext == "png") return Format::png;
      if (ext == "txt" || ext == "dat") return Format::txt;
      if (ext == "csv") return Format::csv;
      if (ext == "json") return Format::json;
      if (ext == "npz") throw_usage("npz is read only; write npy streams or safetensors");
    }
    return Format::npy;
  }
  return terminal ? Format::txt : Format::npy;
}

void for_each_tensor(Input& in, const std::function<void(NamedTensor&&)>& fn,
                     const ReadOptions& opt) {
  if (in.at_eof()) throw_data("empty input (" + in.name() + ")");
  switch (detect_format(in)) {
    case Format::npy:
      while (auto t = npy::read_next(in)) fn(NamedTensor{"", std::move(*t)});
      return;
    case Format::safetensors: {
      safetensors::File file = safetensors::read(in);
      if (opt.metadata) *opt.metadata = file.metadata;
      for (auto& nt : file.tensors) fn(std::move(nt));
      return;
    }
    case Format::npz:
      for (auto& nt : npz::read(in)) fn(std::move(nt));
      return;
    case Format::png:
      fn(NamedTensor{"", png::read(in)});
      return;
    default:
      fn(NamedTensor{"", text::read(in, opt.text_float)});
      return;
  }
}

std::vector<NamedTensor> read_tensors(Input& in, const ReadOptions& opt) {
  std::vector<NamedTensor> out;
  for_each_tensor(in, [&](NamedTensor&& t) { out.push_back(std::move(t)); }, opt);
  return out;
}

Tensor read_one_tensor(Input& in) {
  auto all = read_tensors(in);
  if (all.size() != 1)
    throw_data("expected one tensor in " + in.name() + ", found " + std::to_string(all.size()));
  return std::move(all.front().tensor);
}

Tensor read_finite_rows(const std::string& path, const std::string& what) {
  Input in = Input::open(path);
  Tensor t = read_one_tensor(in);
  if (t.ndim() < 1) throw_data(what + " " + in.name() + " is a scalar, want [N, ...]");
  t = t.astype(DType::f4);
  const float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(p[i]))
      throw_data(what + " " + in.name() + " has a non-finite value at element " + std::to_string(i));
  return t;
}

void write_tensors(Output& out, Format f, const std::vector<NamedTensor>& tensors,
                   const WriteOptions& opt) {
  auto single = [&](const char* what) -> const Tensor& {
    if (tensors.size() != 1)
      throw_usage(std::string(what) + " holds one tensor, but there are " +
                  std::to_string(tensors.size()) + "; write npy or safetensors, or pick one");
    return tensors.front().tensor;
  };
  switch (f) {
    case Format::npy:
      for (const auto& t : tensors) npy::write(out, t.tensor);
      return;
    case Format::safetensors: {
      safetensors::File file;
      file.metadata = opt.metadata;
      for (std::size_t i = 0; i < tensors.size(); ++i) {
        NamedTensor nt = tensors[i];
        if (nt.name.empty()) nt.name = std::to_string(i);
        for (const auto& prev : file.tensors)
          if (prev.name == nt.name) throw_usage("two tensors are named '" + nt.name + "'");
        file.tensors.push_back(std::move(nt));
      }
      safetensors::write(out, file);
      return;
    }
    case Format::npz:
      throw_usage("npz is read only; write npy streams or safetensors");
    case Format::png:
      png::write(out, single("png"));
      return;
    case Format::txt:
    case Format::csv:
      if (tensors.size() == 1) {
        text::write(out, tensors.front().tensor, f == Format::csv, opt.precision);
      } else {
        // Several tensors as text: each after a "# name" line, for reading by people.
        for (std::size_t i = 0; i < tensors.size(); ++i) {
          out.write("# tensor " + (tensors[i].name.empty() ? std::to_string(i) : tensors[i].name) + "\n");
          text::write(out, tensors[i].tensor, f == Format::csv, opt.precision);
        }
      }
      return;
    case Format::json: {
      if (tensors.size() == 1 && tensors.front().name.empty()) {
        json::write(out, json::from_tensor(tensors.front().tensor));
      } else {
        nlohmann::json obj = nlohmann::json::object();
        for (std::size_t i = 0; i < tensors.size(); ++i)
          obj[tensors[i].name.empty() ? std::to_string(i) : tensors[i].name] =
              json::from_tensor(tensors[i].tensor);
        json::write(out, obj);
      }
      return;
    }
  }
}

}  // namespace nnkit
