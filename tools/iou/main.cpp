// iou: overlaps of two sets of boxes (IoU, GIoU, DIoU, CIoU, IoA), pairwise
// or aligned, dense or as the sparse list of the pairs above a threshold.
#include <cmath>

#include "nnkit/cli.hpp"
#include "nnkit/formats/npy.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/ops/boxes.hpp"
#include "nnkit/progress.hpp"

using namespace nnkit;

namespace {

struct Named {
  Tensor t;
  std::string name;
};

// A [k] tensor is one box; otherwise the shape without the last axis.
Shape rows_shape(const Tensor& t) {
  if (t.ndim() <= 1) return {1};
  return Shape(t.shape().begin(), t.shape().end() - 1);
}

}  // namespace

int main(int argc, char** argv) {
  std::string metric_s = "iou", format = "xyxy", format_a, format_b;
  bool aligned = false, legacy = false, rotated = false, radians = false, sparse = false,
       allow_invalid = false, f64 = false;
  double min_iou = 0;
  const std::vector<std::string> formats = {"xyxy", "xywh", "cxcywh"};
  cli::Tool tool("iou", "Overlaps of boxes: IoU, GIoU, DIoU, CIoU or IoA, pairwise or aligned.");
  tool.synopsis("[OPTIONS] BOXES_A [BOXES_B]")
      .inputs(0, 2, "BOXES")
      .output_formats({"npy", "safetensors", "txt", "csv", "json"},
                      "from the -o extension, else npy on a pipe and txt on a terminal")
      .description(
          "BOXES_A and BOXES_B are [..., N, 4] and [..., M, 4] tensors of any numeric dtype "
          "(one box per row; equal leading axes are a batch); the result is the [..., N, M] "
          "matrix of the metric of every pair, in float32 (float64 with --f64). With one input "
          "that holds one tensor, A is compared with itself; one input holding two tensors (a "
          "stream) gives A and B. The formulas are torchvision.ops' (eps 1e-7 in DIoU and CIoU), "
          "except that a term with a zero denominator is 0: a pair with zero union has IoU 0. "
          "ioa is the intersection over the area of the box from A.\n"
          "Large matrices are computed in tiles on all threads and streamed, so memory does not "
          "grow with N x M; --sparse writes only the pairs whose value is at least --min-iou, "
          "as a stream of pairs (int64 [K, 2]: i, j; batch indices first when batched) and "
          "values ([K]), ordered by i then j.")
      .choice("metric,m", &metric_s, {"iou", "giou", "diou", "ciou", "ioa"},
              "the overlap measure (ioa: intersection over the area of the box from A)")
      .choice("format,f", &format, formats, "how the 4 numbers of a box are read, for A and B")
      .choice("format-a", &format_a, formats, "the format of A only (default: --format)")
      .choice("format-b", &format_b, formats, "the format of B only (default: --format)")
      .flag("aligned", &aligned, "compare A[k] with B[k] only: [..., N] for equal shapes")
      .flag("legacy-pixels", &legacy,
            "inclusive pixel coordinates: a box from x1 to x2 is x2 - x1 + 1 wide (Pascal VOC, "
            "old Detectron)")
      .flag("rotated", &rotated,
            "boxes are [..., N, 5]: cx, cy, w, h, angle in degrees, counter-clockwise; exact "
            "polygon intersection; metrics iou and ioa")
      .flag("radians", &radians, "rotated angles are in radians")
      .option("min-iou", &min_iou, "T",
              "with --sparse: keep the pairs whose value is >= T (default: none, required by "
              "--sparse)")
      .flag("sparse", &sparse, "write only the pairs >= --min-iou, as pairs and values")
      .flag("allow-invalid", &allow_invalid,
            "give NaN for the pairs of invalid boxes (NaN or infinite numbers, x2 < x1, negative "
            "w or h) instead of failing")
      .flag("f64", &f64, "compute and write in float64")
      .example("iou gt.npy pred.npy -o iou.npy", "the [N, M] IoU matrix")
      .example("iou --metric giou --format cxcywh a.npy b.npy", "GIoU of boxes given as centre and size")
      .example("iou --aligned --metric ciou pred.npy target.npy", "CIoU of matched pairs, [N]")
      .example("iou --sparse --min-iou 0.5 big.npy | tensor-info", "the overlapping pairs of many boxes")
      .example("iou --rotated --radians r.npy", "IoU of every pair of rotated boxes of one set")
      .example("rf-calc net.txt --input-size 224 --boxes | iou --legacy-pixels --metric ioa - gt.npy",
               "how much of each receptive field falls in each box");
  return tool.run(argc, argv, [&](cli::Tool& t) {
    const boxes::Metric metric = boxes::parse_metric(metric_s);
    if (rotated && (t.given("format") || t.given("format-a") || t.given("format-b") || legacy))
      throw_usage("--rotated boxes are cx, cy, w, h, angle: --format and --legacy-pixels do not apply");
    if (rotated && metric != boxes::Metric::iou && metric != boxes::Metric::ioa)
      throw_usage("--rotated supports --metric iou and ioa, not " + metric_s);
    if (radians && !rotated) throw_usage("--radians goes with --rotated");
    if (sparse != t.given("min-iou")) throw_usage("--sparse and --min-iou T go together");
    if (sparse && aligned) throw_usage("--sparse is for pairwise results, not --aligned");
    if (sparse && !std::isfinite(min_iou)) throw_usage("--min-iou must be a finite number");
    boxes::Convention ca, cb;
    ca.format = boxes::parse_format(format_a.empty() ? format : format_a);
    cb.format = boxes::parse_format(format_b.empty() ? format : format_b);
    for (auto* c : {&ca, &cb}) {
      c->legacy_pixels = legacy, c->rotated = rotated, c->radians = radians;
      c->allow_invalid = allow_invalid;
      if (rotated) c->format = boxes::Format::xyxy;
    }

    // Inputs: A and B, or A alone, or one input holding both.
    const auto& paths = t.input_paths();
    Named a, b;
    if (paths.size() == 2) {
      Input ia = Input::open(paths[0]);
      a = {read_one_tensor(ia), ia.name()};
      Input ib = Input::open(paths[1]);
      b = {read_one_tensor(ib), ib.name()};
    } else {
      Input in = Input::open(paths[0]);
      std::vector<NamedTensor> ts = read_tensors(in);
      if (ts.empty() || ts.size() > 2)
        throw_data(in.name() + " holds " + std::to_string(ts.size()) +
                   " tensors; iou reads boxes A, or A and B");
      if (ts.size() == 1) {
        a = {ts[0].tensor, in.name()};
        b = {std::move(ts[0].tensor), in.name()};
      } else {
        a = {std::move(ts[0].tensor), in.name() + " (tensor 0)"};
        b = {std::move(ts[1].tensor), in.name() + " (tensor 1)"};
      }
    }
    const std::int64_t k = rotated ? 5 : 4;
    for (const Named* x : {&a, &b})
      if (x->t.ndim() == 0 || x->t.shape().back() != k)
        throw_data(x->name + ": boxes must have shape [..., N, " + std::to_string(k) + "], not " +
                   shape_str(x->t.shape()));
    const Shape ra = rows_shape(a.t), rb = rows_shape(b.t);
    const Shape batch(ra.begin(), ra.end() - 1);
    if (aligned && ra != rb)
      throw_data("--aligned needs boxes of the same shape: " + a.name + " has " + shape_str(ra) +
                 " boxes, " + b.name + " " + shape_str(rb));
    if (!aligned && Shape(rb.begin(), rb.end() - 1) != batch)
      throw_data("the leading (batch) axes of " + a.name + " " + shape_str(a.t.shape()) + " and " +
                 b.name + " " + shape_str(b.t.shape()) + " differ");
    boxes::Layout layout;
    layout.n = ra.back();
    layout.m = rb.back();
    layout.batches = 1;
    for (std::int64_t d : batch) layout.batches *= d;

    auto compute = [&](auto zero) {
      using T = decltype(zero);
      const DType dt = f64 ? DType::f8 : DType::f4;
      const boxes::BoxSet<T> sa = boxes::load<T>(a.t, ca, a.name);
      const boxes::BoxSet<T> sb = boxes::load<T>(b.t, cb, b.name);
      Output out = Output::open(t.output_path());
      const Format f = output_format(t.to_format(), t.output_path(), out.is_terminal());
      if (aligned) {
        Tensor r(dt, ra);
        boxes::aligned(sa, sb, metric, r.data<T>());
        write_tensors(out, f, {{metric_s, std::move(r)}});
      } else if (sparse) {
        const boxes::SparsePairs<T> p = boxes::pairwise_sparse(sa, sb, layout, metric, min_iou);
        const std::int64_t k = static_cast<std::int64_t>(p.values.size());
        const std::int64_t cols = static_cast<std::int64_t>(batch.size()) + 2;
        Tensor pairs(DType::i8, {k, cols}), values(dt, {k});
        std::int64_t* q = pairs.data<std::int64_t>();
        for (std::int64_t e = 0; e < k; ++e) {
          std::int64_t rest = p.batch[e];  // the batch's multi-index, C order
          for (std::int64_t d = cols - 3; d >= 0; --d) {
            q[e * cols + d] = rest % batch[d];
            rest /= batch[d];
          }
          q[e * cols + cols - 2] = p.i[e];
          q[e * cols + cols - 1] = p.j[e];
        }
        std::copy(p.values.begin(), p.values.end(), values.data<T>());
        write_tensors(out, f, {{"pairs", std::move(pairs)}, {"values", std::move(values)}});
      } else {
        Shape shape = batch;
        shape.push_back(layout.n);
        shape.push_back(layout.m);
        if (f == Format::npy) {
          // Header first, then the rows block by block.
          out.write(npy::header_bytes({dt, false, false, shape}));
          Progress progress("iou", layout.batches * layout.n, t.quiet());
          std::int64_t done = 0;
          boxes::pairwise_stream<T>(sa, sb, layout, metric, [&](const T* rows, std::int64_t count) {
            out.write(rows, static_cast<std::size_t>(count * layout.m) * sizeof(T));
            progress.update(done += count);
          });
          progress.finish();
        } else {
          Tensor r = Tensor::uninitialized(dt, shape);
          boxes::pairwise_rows(sa, sb, layout, metric, 0, layout.batches * layout.n, r.data<T>());
          write_tensors(out, f, {{metric_s, std::move(r)}});
        }
      }
      out.commit();
    };
    if (f64)
      compute(double{});
    else
      compute(float{});
  });
}
