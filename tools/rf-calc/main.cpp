// rf-calc: receptive field, effective stride and effective padding of every
// layer of a convolutional network, described in a small text language or
// built in; the input region of any unit, or of all of them as boxes.
#include <cstdio>

#include "nnkit/cli.hpp"
#include "nnkit/formats/json.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/ops/receptive_field.hpp"

using namespace nnkit;

// The networks of models/rf-calc/*.net, embedded by the build.
namespace nnkit::rfcalc {
struct BuiltinModel {
  const char* name;
  const char* text;
};
extern const BuiltinModel builtin_models[];
extern const std::size_t builtin_model_count;
}  // namespace nnkit::rfcalc

namespace {

using rfcalc::builtin_model_count;
using rfcalc::builtin_models;

// A description is a few kilobytes; refuse to swallow a stream without end.
constexpr std::size_t max_description_bytes = 64 << 20;

std::string read_description(Input& in) {
  std::string text;
  char buf[1 << 16];
  while (const std::size_t n = in.read_some(buf, sizeof buf)) {
    if (text.size() + n > max_description_bytes)
      throw_data("more than 64 MiB: not a network description (" + in.name() + ")");
    text.append(buf, n);
  }
  return text;
}

// The first comment line of a built-in network: its one-line summary.
std::string summary_of(const std::string& text) {
  if (text.rfind("# ", 0) != 0) return "";
  return text.substr(2, text.find('\n') - 2);
}

// "i,j" -> {i, j}: unit indices along H and W.
rf::Size2 parse_unit(const std::string& s) {
  const std::size_t comma = s.find(',');
  std::optional<rf::Size2> i, j;
  if (comma != std::string::npos) {
    i = rf::parse_size(s.substr(0, comma));
    j = rf::parse_size(s.substr(comma + 1));
  }
  if (!i || !j || s.find('x') != std::string::npos)
    throw_usage("--unit takes two indices ROW,COLUMN (e.g. 3,5), not '" + s + "'");
  return {(*i)[0], (*j)[0]};
}

nlohmann::json number(const rf::Rational& v) {
  return v.is_integer() ? nlohmann::json(v.num()) : nlohmann::json(v.to_double());
}

std::string cell(const rf::Rational& h, const rf::Rational& w) {
  return h == w ? h.str() : h.str() + "x" + w.str();
}

// One row of the report, in every format.
struct Row {
  const rf::Layer* layer;
  const rf::Field* field;
  rf::Rational value(int column) const {  // the npy column order
    const rf::AxisField& x = field->axis[column % 2];
    switch (column / 2) {
      case 0:
        return x.r;
      case 1:
        return x.S;
      case 2:
        return x.P;
      default:
        return x.center();
    }
  }
};

void write_table(Output& out, const std::vector<Row>& rows) {
  std::vector<std::vector<std::string>> cells = {{"layer", "op", "size", "r", "S", "P", "center"}};
  for (const Row& row : rows) {
    std::vector<std::string> c = {row.layer->name, row.layer->op_word,
                                  row.field->size ? rf::size_str(*row.field->size) : "-"};
    for (int q = 0; q < 4; ++q) c.push_back(cell(row.value(2 * q), row.value(2 * q + 1)));
    cells.push_back(std::move(c));
  }
  std::vector<std::size_t> width(cells.front().size(), 0);
  for (const auto& r : cells)
    for (std::size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  std::string text;
  for (const auto& r : cells) {
    for (std::size_t c = 0; c < r.size(); ++c) {
      text += r[c];
      if (c + 1 < r.size()) text.append(width[c] - r[c].size() + 2, ' ');
    }
    text += '\n';
  }
  out.write(text);
}

nlohmann::json json_entry(const Row& row) {
  nlohmann::json e = {{"name", row.layer->name}, {"op", row.layer->op_word}};
  const char* keys[] = {"receptive_field", "effective_stride", "effective_padding", "center"};
  for (int q = 0; q < 4; ++q) e[keys[q]] = {number(row.value(2 * q)), number(row.value(2 * q + 1))};
  e["output_size"] = row.field->size ? nlohmann::json(*row.field->size) : nlohmann::json();
  return e;
}

void write_csv(Output& out, const std::vector<Row>& rows) {
  std::string text =
      "name,op,receptive_field_h,receptive_field_w,effective_stride_h,effective_stride_w,"
      "effective_padding_h,effective_padding_w,center_h,center_w,output_size_h,output_size_w\n";
  for (const Row& row : rows) {
    text += row.layer->name + "," + row.layer->op_word;
    for (int c = 0; c < 8; ++c) text += "," + row.value(c).decimal();
    if (row.field->size)
      text += "," + std::to_string((*row.field->size)[0]) + "," + std::to_string((*row.field->size)[1]);
    else
      text += ",,";
    text += '\n';
  }
  out.write(text);
}

Tensor table_matrix(const std::vector<Row>& rows) {
  Tensor t(DType::f8, {static_cast<std::int64_t>(rows.size()), 8});
  double* p = t.data<double>();
  for (const Row& row : rows)
    for (int c = 0; c < 8; ++c) *p++ = row.value(c).to_double();
  return t;
}

void refuse_png(Format f) {
  if (f == Format::png) throw_usage("rf-calc writes txt, csv, json, npy or safetensors, not png");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> model_names;
  for (std::size_t i = 0; i < builtin_model_count; ++i) model_names.push_back(builtin_models[i].name);

  std::string model, input_size, convention = "torch", layer_name, unit;
  bool list_models = false, allow_misaligned = false, boxes = false, clip = false;
  cli::Tool tool("rf-calc",
                 "Receptive field, effective stride and effective padding of every layer of a "
                 "convolutional network.");
  tool.synopsis("[OPTIONS] [NETWORK]  |  --model NAME [OPTIONS]")
      .inputs(0, 1, "NETWORK")
      .output_formats({"txt", "csv", "json", "npy", "safetensors"},
                      "from the -o extension, else npy on a pipe and txt on a terminal")
      .description(
          "NETWORK is a text file (or stdin) with one layer per line, 'NAME: OP key=value ...', "
          "e.g. 'conv1: conv k=7 s=2 p=3'. Ops: conv, maxpool, avgpool, deconv, upsample, "
          "global_pool, adaptive_pool, add, concat, identity and point-wise ops (bn, relu, ...). "
          "Keys: k kernel, s stride, p padding (or same, valid), d dilation, each N or HxW; "
          "ceil=1, factor=, mode=nearest|bilinear, out=, output_padding=; from=a,b names the "
          "inputs (default: the line above; the network input is 'input'). rf-calc(1) has the "
          "whole language and the formulas.\n\n"
          "Unit u of a layer sees input pixels [u*S - P, u*S - P + r - 1] along each axis, where r "
          "is the receptive field, S the effective stride and P the effective padding; all are "
          "exact (fractions after deconv and upsample). The report has a row per layer up to the "
          "reported one: on a terminal a table, else --to json, csv, or npy (a float64 matrix "
          "[layers, 8]: r, S, P and center, each as H then W).")
      .choice("model,m", &model, model_names, "use a built-in network instead of NETWORK (see --list-models)",
              "NAME")
      .flag("list-models", &list_models, "list the built-in networks and exit")
      .option("input-size", &input_size, "N|HxW",
              "input image size: adds output sizes, and resolves p=same and adaptive pooling")
      .choice("padding-convention", &convention, {"torch", "tf"},
              "what p=same means for strided layers: torch refuses them as PyTorch does; tf is "
              "TensorFlow's SAME (output ceil(n/s), the extra pixel after), which needs "
              "--input-size")
      .flag("allow-misaligned", &allow_misaligned,
            "warn, rather than fail, when a merge joins paths of different stride or centre")
      .option("layer,l", &layer_name, "NAME", "report this layer instead of the last")
      .flag("boxes", &boxes,
            "write the input region of every unit of the layer as an [H*W, 4] float32 tensor of "
            "x1, y1, x2, y2 (inclusive pixels, units row-major); needs --input-size")
      .option("unit", &unit, "ROW,COL", "write the input region of one unit of the layer")
      .flag("clip", &clip, "clip --boxes or --unit regions to the image (needs --input-size)")
      .example("rf-calc --model vgg16", "r=212, S=32, P=90 at pool5, with every layer before it")
      .example("rf-calc --model resnet50 --input-size 224 --layer layer3 --to json",
               "receptive field and output size of torchvision's layer3, as JSON")
      .example("printf 'c1: conv k=3 s=2\\nc2: conv k=3 d=2\\n' | rf-calc --to txt", "a network from a pipe")
      .example("rf-calc net.txt --input-size 480x640 --boxes --clip -o boxes.npy",
               "the image box of every output unit, for iou or numpy")
      .example("rf-calc --model resnet50 --input-size 224 --unit 3,5",
               "which pixels unit (3, 5) of layer4 sees");
  return tool.run(argc, argv, [&](cli::Tool& t) {
    if (list_models) {
      std::string text;
      for (std::size_t i = 0; i < builtin_model_count; ++i) {
        std::string name = builtin_models[i].name;
        name.resize(std::max<std::size_t>(name.size() + 2, 16), ' ');
        text += name + summary_of(builtin_models[i].text) + "\n";
      }
      Output out = Output::open(t.output_path());
      out.write(text);
      out.commit();
      return;
    }
    // Options first: a bad one is reported before any input is read.
    rf::Options opt;
    opt.allow_misaligned = allow_misaligned;
    opt.convention = convention == "tf" ? rf::PaddingConvention::tf : rf::PaddingConvention::torch;
    if (t.given("input-size")) {
      opt.input_size = rf::parse_size(input_size);
      if (!opt.input_size || (*opt.input_size)[0] < 1 || (*opt.input_size)[1] < 1)
        throw_usage("--input-size takes N or HxW with sizes from 1 to " + std::to_string(rf::max_parameter) +
                    ", not '" + input_size + "'");
    }
    std::optional<rf::Size2> unit_index;
    if (t.given("unit")) unit_index = parse_unit(unit);
    if (boxes && unit_index) throw_usage("give --boxes or --unit, not both");
    if (boxes && !opt.input_size) throw_usage("--boxes needs --input-size (the number of units)");
    if (clip && !boxes && !unit_index) throw_usage("--clip goes with --boxes or --unit");
    if (clip && !opt.input_size) throw_usage("--clip needs --input-size (the image to clip to)");
    const std::string& path = t.input_paths().front();
    if (!model.empty() && path != "-") throw_usage("give a NETWORK file or --model, not both");

    std::string text, source;
    if (!model.empty()) {
      for (std::size_t i = 0; i < builtin_model_count; ++i)
        if (model == builtin_models[i].name) text = builtin_models[i].text;
      source = "model " + model;
    } else {
      Input in = Input::open(path);
      text = read_description(in);
      source = in.name();
    }
    const rf::Network net = rf::parse_network(text, source);
    std::size_t reported = net.layers.size() - 1;
    if (t.given("layer")) {
      const auto i = net.find(layer_name);
      if (!i || *i == 0) throw_usage("no layer named " + in_quotes(layer_name) + " in " + source);
      reported = *i;
    }
    opt.last = reported;
    rf::Analysis an;
    try {
      an = rf::analyze(net, opt);
    } catch (const rf::AnalysisError& e) {
      std::string hint;
      switch (e.problem()) {
        case rf::Problem::misaligned:
          hint = "; --allow-misaligned goes on with a warning";
          break;
        case rf::Problem::strided_same:
          hint = "; --padding-convention tf applies TensorFlow's rule";
          break;
        case rf::Problem::needs_input_size:
          hint = "; give --input-size N or HxW";
          break;
        case rf::Problem::bad_network:
          break;
      }
      throw Error(e.code(), e.what() + hint);
    }
    for (const std::string& w : an.warnings) cli::note(t, "warning: " + w);

    std::vector<Row> rows;
    for (std::size_t i = 1; i < an.fields.size(); ++i) rows.push_back({&net.layers[i], &an.fields[i]});
    const Row& last = rows.back();
    const std::optional<rf::Size2> image = clip ? opt.input_size : std::nullopt;
    const std::optional<rf::Size2>& units = last.field->size;
    if (boxes && (*units)[0] * (*units)[1] > (std::int64_t{1} << 28))
      throw_usage("--boxes would write " + std::to_string((*units)[0] * (*units)[1]) +
                  " boxes; pick a smaller layer or input");
    if (unit_index && units && ((*unit_index)[0] >= (*units)[0] || (*unit_index)[1] >= (*units)[1]))
      throw_usage("--unit " + unit + " is outside '" + last.layer->name + "', which has " +
                  std::to_string((*units)[0]) + "x" + std::to_string((*units)[1]) +
                  " units (rows and columns count from 0)");

    Output out = Output::open(t.output_path());
    const Format f = output_format(t.to_format(), t.output_path(), out.is_terminal());
    refuse_png(f);
    if (boxes) {
      write_tensors(out, f, {{"boxes", rf::unit_boxes(*last.field, image)}});
    } else if (unit_index) {
      const auto [i, j] = *unit_index;
      rf::Box b = rf::unit_box(*last.field, i, j);
      if (image) b = rf::clip_box(b, *image);
      const rf::Rational cy = last.field->axis[0].center(i), cx = last.field->axis[1].center(j);
      if (f == Format::txt) {
        out.write("unit (" + std::to_string(i) + ", " + std::to_string(j) + ") of " + last.layer->name +
                  " sees x " + b.x1.str() + ".." + b.x2.str() + " and y " + b.y1.str() + ".." + b.y2.str() +
                  " of the input (center x " + cx.str() + ", y " + cy.str() + ")\n");
      } else if (f == Format::json) {
        json::write(out, {{"layer", last.layer->name},
                          {"unit", {i, j}},
                          {"box", {number(b.x1), number(b.y1), number(b.x2), number(b.y2)}},
                          {"center", {number(cy), number(cx)}}});
      } else {
        const std::vector<float> v = {
            static_cast<float>(b.x1.to_double()), static_cast<float>(b.y1.to_double()),
            static_cast<float>(b.x2.to_double()), static_cast<float>(b.y2.to_double())};
        write_tensors(out, f, {{"box", Tensor::from_vector<float>({1, 4}, v)}});
      }
    } else if (f == Format::txt) {
      write_table(out, rows);
    } else if (f == Format::csv) {
      write_csv(out, rows);
    } else if (f == Format::json) {
      nlohmann::json layers = nlohmann::json::array();
      for (const Row& row : rows) layers.push_back(json_entry(row));
      json::write(out, {{"layers", layers}, {"output", json_entry(last)}});
    } else {
      write_tensors(out, f, {{"layers", table_matrix(rows)}});
    }
    out.commit();
  });
}
