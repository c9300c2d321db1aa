// nms: non-maximum suppression of scored boxes, as torchvision's nms and
// batched_nms, with a score threshold, a maximum output and soft-NMS.
#include <cmath>

#include "nnkit/cli.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/ops/boxes.hpp"

using namespace nnkit;

namespace {

struct Named {
  Tensor t;
  std::string name;
};

// The values of a [N] or [N, 1] tensor, checked to be N of them.
std::vector<double> column(const Named& x, std::int64_t n, const char* what) {
  const Shape& s = x.t.shape();
  if (!(s.size() == 1 || (s.size() == 2 && s[1] == 1)))
    throw_data(x.name + ": " + what + " must have shape [N] or [N, 1], not " + shape_str(s));
  if (s[0] != n)
    throw_data(x.name + " has " + std::to_string(s[0]) + " " + what + " for " + std::to_string(n) + " boxes");
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[i] = x.t.get(i);
  return v;
}

// Columns [c0, c1) of a [N, C] matrix as a tensor of its own.
Tensor columns(const Tensor& m, std::int64_t c0, std::int64_t c1) {
  const std::int64_t n = m.dim(0), c = m.dim(1);
  std::vector<double> v;
  v.reserve(static_cast<std::size_t>(n * (c1 - c0)));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = c0; j < c1; ++j) v.push_back(m.get(i * c + j));
  return Tensor::from_vector<double>({n, c1 - c0}, v).astype(m.dtype());  // exact: the values came from m
}

}  // namespace

int main(int argc, char** argv) {
  double iou_threshold = 0, score_threshold = 0, sigma = 0.5;
  long long max_output = -1;
  std::string soft = "none", format = "xyxy", classes_path;
  bool legacy = false, rotated = false, radians = false, f64 = false;
  cli::Tool tool("nms", "Non-maximum suppression of scored boxes, as torchvision's nms and batched_nms.");
  tool.synopsis("[OPTIONS] BOXES SCORES [--classes LABELS] --iou-threshold T")
      .inputs(0, 2, "INPUT")
      .output_formats({"npy", "safetensors", "txt", "csv", "json"},
                      "from the -o extension, else npy on a pipe and txt on a terminal")
      .description(
          "BOXES is [N, 4] (any numeric dtype), SCORES [N]. Writes the indices of the kept boxes "
          "(int64 [K]) by decreasing score, equal scores in index order. Going down that order, "
          "a box is suppressed when its IoU with a kept box is greater than T, exactly as "
          "torchvision.ops.nms computes it in float32 (float64 with --f64); with --classes, "
          "only boxes of the same class suppress each other (batched_nms). One INPUT may hold "
          "the boxes, scores and classes as a stream of tensors, or as one [N, 5] or [N, 6] "
          "matrix of detections (x1, y1, x2, y2, score[, class]).\n"
          "--soft decays the scores of overlapping boxes instead of dropping them and writes a "
          "second tensor, the kept boxes' decayed scores.")
      .option("iou-threshold,t", &iou_threshold, "T",
              "suppress boxes whose IoU with a kept box is > T, 0 <= T <= 1 (default: none, "
              "required except with --soft gaussian)")
      .option("score-threshold,s", &score_threshold, "S",
              "drop boxes whose score is <= S (S rounded to the scores' dtype, as torch compares), "
              "before NMS and after each soft-NMS decay (default: none)")
      .option("max-output,k", &max_output, "K", "keep at most the K highest-scoring boxes (-1: all)")
      .option("classes,c", &classes_path, "LABELS",
              "per-class NMS: integer class labels [N]; boxes of different classes never suppress "
              "each other",
              cli::Complete::file)
      .choice("soft", &soft, {"none", "linear", "gaussian"},
              "soft-NMS: linear multiplies the scores of boxes with IoU > T by 1 - IoU, gaussian "
              "all overlapping ones by exp(-IoU^2 / sigma)")
      .option("sigma", &sigma, "S", "the width of --soft gaussian")
      .choice("format,f", &format, {"xyxy", "xywh", "cxcywh"}, "how the 4 numbers of a box are read")
      .flag("legacy-pixels", &legacy,
            "inclusive pixel coordinates: a box from x1 to x2 is x2 - x1 + 1 wide")
      .flag("rotated", &rotated,
            "boxes are [N, 5]: cx, cy, w, h, angle in degrees, counter-clockwise; exact polygon "
            "IoU")
      .flag("radians", &radians, "rotated angles are in radians")
      .flag("f64", &f64, "compute IoU and soft-NMS scores in float64")
      .example("nms boxes.npy scores.npy --iou-threshold 0.5 -o keep.npy", "torchvision.ops.nms")
      .example("nms boxes.npy scores.npy --classes labels.npy -t 0.5 -s 0.05 -k 100",
               "batched_nms of the boxes scoring above 0.05, the best 100")
      .example("nms dets.npy -t 0.6 --to txt", "one [N, 5] matrix of detections")
      .example("nms boxes.npy scores.npy --soft gaussian --sigma 0.5 -s 0.001",
               "soft-NMS: kept indices, then their decayed scores")
      .example("nms --rotated rboxes.npy scores.npy -t 0.3", "rotated boxes");
  return tool.run(argc, argv, [&](cli::Tool& t) {
    boxes::NmsOptions opt;
    opt.soft = soft == "linear" ? boxes::Soft::linear : soft == "gaussian" ? boxes::Soft::gaussian : boxes::Soft::none;
    if (t.given("iou-threshold")) {
      if (!(iou_threshold >= 0 && iou_threshold <= 1)) throw_usage("--iou-threshold must be in [0, 1]");
      opt.iou_threshold = iou_threshold;
    } else if (opt.soft != boxes::Soft::gaussian) {
      throw_usage("give --iou-threshold T (boxes with IoU > T are suppressed)");
    }
    if (t.given("score-threshold")) {
      if (std::isnan(score_threshold)) throw_usage("--score-threshold must be a number");
      opt.score_threshold = score_threshold;
    }
    if (max_output < -1) throw_usage("--max-output must be >= 0 (or -1 for all)");
    opt.max_output = max_output;
    if (!(sigma > 0 && std::isfinite(sigma))) throw_usage("--sigma must be positive");
    opt.sigma = sigma;
    if (t.given("sigma") && opt.soft != boxes::Soft::gaussian) throw_usage("--sigma goes with --soft gaussian");
    if (rotated && (t.given("format") || legacy))
      throw_usage("--rotated boxes are cx, cy, w, h, angle: --format and --legacy-pixels do not apply");
    if (radians && !rotated) throw_usage("--radians goes with --rotated");
    boxes::Convention conv;
    conv.format = boxes::parse_format(format);
    conv.legacy_pixels = legacy, conv.rotated = rotated, conv.radians = radians;
    const std::int64_t k = rotated ? 5 : 4;

    // Boxes and scores (and classes): two inputs, or one holding them all.
    const auto& paths = t.input_paths();
    Named bx, sc, cl;
    bool have_classes = false;
    if (paths.size() == 2) {
      Input ib = Input::open(paths[0]);
      bx = {read_one_tensor(ib), ib.name()};
      Input is = Input::open(paths[1]);
      sc = {read_one_tensor(is), is.name()};
    } else {
      Input in = Input::open(paths[0]);
      std::vector<NamedTensor> ts = read_tensors(in);
      if (ts.size() == 1) {
        const Tensor& m = ts[0].tensor;
        if (m.ndim() != 2 || (m.dim(1) != k + 1 && m.dim(1) != k + 2))
          throw_data(in.name() + ": one tensor of detections must be [N, " + std::to_string(k + 1) + "] or [N, " +
                     std::to_string(k + 2) + "] (box, score[, class]), not " + shape_str(m.shape()) +
                     "; or give BOXES and SCORES");
        bx = {columns(m, 0, k), in.name() + " (boxes)"};
        sc = {columns(m, k, k + 1), in.name() + " (scores)"};
        if (m.dim(1) == k + 2) cl = {columns(m, k + 1, k + 2), in.name() + " (classes)"}, have_classes = true;
      } else if (ts.size() == 2 || ts.size() == 3) {
        bx = {std::move(ts[0].tensor), in.name() + " (tensor 0)"};
        sc = {std::move(ts[1].tensor), in.name() + " (tensor 1)"};
        if (ts.size() == 3) cl = {std::move(ts[2].tensor), in.name() + " (tensor 2)"}, have_classes = true;
      } else {
        throw_data(in.name() + " holds " + std::to_string(ts.size()) +
                   " tensors; nms reads boxes, scores and optionally classes");
      }
    }
    if (!classes_path.empty()) {
      if (have_classes) throw_usage("the input already holds class labels; --classes is one too many");
      Input ic = Input::open(classes_path);
      cl = {read_one_tensor(ic), ic.name()};
      have_classes = true;
    }
    const Shape& bs = bx.t.shape();
    if (bs.size() != 2 || bs[1] != k)
      throw_data(bx.name + ": boxes must have shape [N, " + std::to_string(k) + "], not " + shape_str(bs));
    const std::int64_t n = bs[0];
    const std::vector<double> scores = column(sc, n, "scores");
    // The threshold is compared in the scores' precision, as torch compares a
    // float32 tensor with a Python number: 0.2 means float32(0.2) there.
    if (opt.score_threshold && sc.t.dtype() == DType::f4)
      opt.score_threshold = double(static_cast<float>(*opt.score_threshold));
    if (opt.score_threshold && sc.t.dtype() == DType::f2)
      opt.score_threshold = double(half_to_float(float_to_half(static_cast<float>(*opt.score_threshold))));
    std::vector<std::int64_t> classes;
    if (have_classes) {
      const std::vector<double> v = column(cl, n, "class labels");
      classes.resize(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (!(std::isfinite(v[i]) && v[i] == std::floor(v[i]) && std::abs(v[i]) < 9.2e18))
          throw_data(cl.name + ": class label " + std::to_string(i) + " is not an integer");
        classes[i] = static_cast<std::int64_t>(v[i]);
      }
    }

    auto compute = [&](auto zero) {
      using T = decltype(zero);
      const boxes::BoxSet<T> set = boxes::load<T>(bx.t, conv, bx.name);
      boxes::NmsResult r;
      try {
        r = boxes::nms(set, scores, have_classes ? &classes : nullptr, opt);
      } catch (const Error& e) {  // name the input of a bad score
        if (e.code() != ExitCode::data) throw;
        throw_data(sc.name + ": " + e.what());
      }
      const std::int64_t kept = static_cast<std::int64_t>(r.keep.size());
      std::vector<NamedTensor> outs;
      outs.push_back({"keep", Tensor::from_vector<std::int64_t>({kept}, r.keep)});
      if (opt.soft != boxes::Soft::none) {
        Tensor s(f64 ? DType::f8 : DType::f4, {kept});
        for (std::int64_t i = 0; i < kept; ++i) s.data<T>()[i] = T(r.scores[i]);
        outs.push_back({"scores", std::move(s)});
      }
      Output out = Output::open(t.output_path());
      write_tensors(out, output_format(t.to_format(), t.output_path(), out.is_terminal()), outs);
      out.commit();
    };
    if (f64)
      compute(double{});
    else
      compute(float{});
  });
}
