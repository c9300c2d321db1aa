// tensor-plot: pictures of tensors as PNG: scatter plots, histograms, line
// plots, heatmaps, image grids and trajectories (nnkit/ops/plot.hpp draws them).
#include "nnkit/cli.hpp"
#include "nnkit/formats/png.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/ops/plot.hpp"

using namespace nnkit;

namespace {

// "dir/run.npy" -> "run": the legend label of a file's tensor.
std::string stem(const std::string& path) {
  if (path == "-") return "stdin";
  std::string s = path.substr(path.find_last_of('/') + 1);
  const std::size_t dot = s.find_last_of('.');
  if (dot != std::string::npos && dot > 0) s.resize(dot);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string kind, labels_path, density = "auto", range, cmap = "viridis", title, xlabel, ylabel;
  bool trajectory = false, log_y = false, dark = false;
  double alpha = 1, point_size = 4, line_width = 1.5;
  long long bins = 50, cols = 0, gap = 2, width = 640, height = 480;
  cli::Tool tool("tensor-plot", "Draw tensors as a PNG picture: scatter, histogram, line, heatmap, image grid.");
  tool.synopsis("--kind KIND [OPTIONS] [INPUT...] -o out.png")
      .inputs(0, -1)
      .output_formats({"png"}, "png")
      .description(
          "Every tensor of every INPUT (npy streams, safetensors, npz, PNG or text; - is stdin) is "
          "drawn. scatter: [N, 2] points, a series per tensor with a legend; too many to see one by "
          "one are shaded by density. hist: a histogram of all the values of each tensor, overlaid. "
          "line: [N] values against their index or [N, 2] points, joined. heatmap: one 2-D tensor, "
          "row 0 at the top, with a colour bar. image, grid: [H, W], [H, W, C] or [N, H, W, C] "
          "images (C from 1 to 4) tiled in rows, every pixel copied exactly (uint8; other dtypes need "
          "--range). --trajectory: one [S, N, 2] tensor drawn as N paths of S steps. NaN and infinite "
          "values are left out; tensors with none left are refused (exit 65).")
      .choice("kind,k", &kind, {"scatter", "hist", "line", "heatmap", "image", "grid"},
              "what to draw (required unless --trajectory)")
      .flag("trajectory", &trajectory, "draw an [S, N, 2] tensor as N paths over S steps, starts and ends marked")
      .option("labels", &labels_path, "FILE", "scatter: colour each point by an integer label from FILE ([N])",
              cli::Complete::file)
      .option("alpha", &alpha, "A", "opacity of points, bars and lines, in (0, 1] (overlaid histograms: 0.5)")
      .option("point-size", &point_size, "PX", "scatter and trajectory: point diameter in pixels")
      .choice("density", &density, {"auto", "on", "off"},
              "scatter: shade a pixel by how many points fall in it (auto: when they overlap heavily)")
      .option("bins", &bins, "N", "hist: number of bins")
      .option("range", &range, "LO,HI",
              "hist: the binned range (default: the data's); heatmap: the colour range; image: the "
              "values shown as 0 and 255")
      .flag("log-y", &log_y, "hist: logarithmic count axis")
      .choice("cmap", &cmap, {"viridis", "magma", "gray", "coolwarm"},
              "heatmap colour map (coolwarm is centred at 0)")
      .option("cols", &cols, "N", "image/grid: tiles per row (0: about square)")
      .option("gap", &gap, "PX", "image/grid: pixels between tiles")
      .option("line-width", &line_width, "PX", "line: width of the lines")
      .option("title", &title, "TEXT", "title above the picture")
      .option("xlabel", &xlabel, "TEXT", "label of the x axis")
      .option("ylabel", &ylabel, "TEXT", "label of the y axis")
      .option("width", &width, "PX", "picture width (not image/grid: tiles keep their size)")
      .option("height", &height, "PX", "picture height (not image/grid)")
      .flag("dark", &dark, "light ink on a dark background")
      .example("tensor-plot -k scatter a.npy b.npy -o points.png", "two point clouds with a legend")
      .example("iou a.npy b.npy | tensor-plot -k hist --bins 20 --range 0,1 -o iou.png", "a histogram from a pipe")
      .example("tensor-plot -k heatmap --cmap coolwarm sim.npy --title similarity -o sim.png",
               "a matrix, blue below zero and red above")
      .example("tensor-plot -k grid --cols 8 images.npy -o grid.png", "a batch of uint8 images tiled 8 per row")
      .example("tensor-plot --trajectory path.npy -o flow.png", "how N samples moved over S steps");
  return tool.run(argc, argv, [&](cli::Tool& t) {
    // Options first: a bad one is reported before any input is read.
    if (kind.empty() && !trajectory) throw_usage("give --kind scatter|hist|line|heatmap|image|grid, or --trajectory");
    if (trajectory && !kind.empty() && kind != "line" && kind != "scatter")
      throw_usage("--trajectory draws paths; it does not go with --kind " + kind);
    plot::Options opt;
    if (width < 16 || width > 16384 || height < 16 || height > 16384)
      throw_usage("--width and --height must be from 16 to 16384 pixels");
    opt.width = static_cast<int>(width);
    opt.height = static_cast<int>(height);
    if (t.given("alpha")) {
      if (!(alpha > 0 && alpha <= 1)) throw_usage("--alpha must be in (0, 1]");
      opt.alpha = alpha;
    }
    if (!(point_size > 0 && point_size <= 200)) throw_usage("--point-size must be in (0, 200] pixels");
    if (!(line_width > 0 && line_width <= 50)) throw_usage("--line-width must be in (0, 50] pixels");
    if (bins < 1 || bins > 100000) throw_usage("--bins must be from 1 to 100000");
    if (cols < 0 || cols > 100000) throw_usage("--cols must be from 0 (about square) to 100000");
    if (gap < 0 || gap > 1000) throw_usage("--gap must be from 0 to 1000 pixels");
    if (!labels_path.empty() && kind != "scatter") throw_usage("--labels goes with --kind scatter");
    opt.point_size = point_size;
    opt.line_width = line_width;
    opt.bins = static_cast<int>(bins);
    opt.cols = static_cast<int>(cols);
    opt.gap = static_cast<int>(gap);
    opt.log_y = log_y;
    opt.dark = dark;
    opt.title = title;
    opt.xlabel = xlabel;
    opt.ylabel = ylabel;
    opt.cmap = plot::parse_colormap(cmap);
    opt.density = density == "on" ? plot::Density::on : density == "off" ? plot::Density::off : plot::Density::automatic;
    if (t.given("range")) opt.range = plot::parse_range(range);

    std::vector<NamedTensor> tensors;
    for (const std::string& path : t.input_paths()) {
      Input in = Input::open(path);
      std::vector<NamedTensor> got = read_tensors(in);
      const std::string base = stem(path);
      for (std::size_t k = 0; k < got.size(); ++k) {
        // One tensor: the file's name; several: also their names or positions.
        std::string name = base;
        if (got.size() > 1) name += ":" + (got[k].name.empty() ? std::to_string(k) : got[k].name);
        tensors.push_back({name, std::move(got[k].tensor)});
      }
    }
    std::optional<Tensor> labels;
    if (!labels_path.empty()) {
      Input in = Input::open(labels_path);
      labels = read_one_tensor(in);
    }
    auto only_one = [&](const char* what) -> const NamedTensor& {
      if (tensors.size() != 1)
        throw_usage(std::string(what) + " draws one tensor; the inputs hold " + std::to_string(tensors.size()));
      return tensors.front();
    };

    Output out = Output::open(t.output_path());
    if (out.is_terminal()) throw_usage("not writing a PNG to a terminal; give -o FILE.png or a pipe");
    plot::Figure fig;
    if (trajectory)
      fig = plot::trajectory(only_one("--trajectory"), opt);
    else if (kind == "scatter")
      fig = plot::scatter(tensors, opt, labels ? &*labels : nullptr);
    else if (kind == "hist")
      fig = plot::histogram(tensors, opt);
    else if (kind == "line")
      fig = plot::line(tensors, opt);
    else if (kind == "heatmap")
      fig = plot::heatmap(only_one("heatmap"), opt);
    else
      fig = plot::grid(tensors, opt);
    png::write(out, fig.image);
    out.commit();
  });
}
