// Box overlaps and non-maximum suppression.
//
// Axis-aligned boxes: IoU, GIoU, DIoU, CIoU and IoA, pairwise ([N, M]) or
// aligned ([N]), in float32 or float64, with torchvision.ops' formulas, except
// that a zero denominator makes its term 0 instead of NaN (a pair with zero
// union has IoU 0). Rotated boxes: IoU and IoA from the exact area of the
// intersection polygon. NMS: torchvision's nms and batched_nms (a box is
// suppressed by a kept box when their IoU > T; equal scores keep index order),
// with a score threshold, a maximum output and soft-NMS.
//
// Boxes are first prepared (BoxSet): validated, converted to continuous xyxy
// corners and laid out one array per quantity, so that the loops over boxes
// vectorise and every metric's per-box terms are computed once.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "nnkit/tensor.hpp"

namespace nnkit::boxes {

enum class Format { xyxy, xywh, cxcywh };
enum class Metric { iou, giou, diou, ciou, ioa };

// "xyxy", "xywh", "cxcywh"; usage error otherwise.
Format parse_format(const std::string& s);
// "iou", "giou", "diou", "ciou", "ioa"; usage error otherwise.
Metric parse_metric(const std::string& s);
const char* metric_name(Metric m);

// torchvision's eps in DIoU's squared diagonal and CIoU's alpha denominator.
inline constexpr double eps = 1e-7;

// How the numbers of a box tensor are read.
struct Convention {
  Format format = Format::xyxy;
  // Inclusive pixel coordinates (Pascal VOC, old Detectron): a box from x1 to
  // x2 is x2 - x1 + 1 wide; w and h of xywh/cxcywh count pixels likewise.
  bool legacy_pixels = false;
  // Rows of 5: cx, cy, w, h, angle (counter-clockwise; degrees unless radians).
  bool rotated = false;
  bool radians = false;
  // Invalid boxes give NaN for their pairs instead of a data error.
  bool allow_invalid = false;
};

// One rotated box, in double whatever the compute type.
struct RotatedBox {
  double cx = 0, cy = 0, w = 0, h = 0;
  double angle = 0;  // in the unit of the input (degrees or radians)
};

// Boxes prepared for the kernels.
template <class T>
struct BoxSet {
  std::int64_t size = 0;
  bool rotated = false;
  double quarter_turn = 90;  // rotated: 90 (degrees) or pi/2 (radians)
  // Axis-aligned: the box's continuous corners (legacy boxes already widened
  // by one pixel). Rotated: its axis-aligned bounding box, slightly enlarged.
  std::vector<T> x1, y1, x2, y2;
  std::vector<T> area;
  std::vector<T> cx, cy;    // centres (DIoU, CIoU)
  std::vector<T> aspect;    // atan2(w, h): CIoU's aspect-ratio angle
  std::vector<RotatedBox> rot;         // rotated only
  std::vector<std::int64_t> invalid;   // indices of invalid boxes (allow_invalid)
};

// Reads boxes from a tensor of any numeric dtype whose last axis is 4 (5 when
// rotated): one box per row of the leading axes, flattened in C order. A 1-D
// tensor of 4 (5) numbers is one box. Coordinates are rounded to T first, as a
// tensor cast would. NaN or infinite numbers, x2 < x1 or y2 < y1 (xyxy),
// negative w or h, and coordinates beyond +-2^60 in float32 (+-2^500 in
// float64, so no metric can overflow) are data errors that name `name` and
// the first bad row, unless conv.allow_invalid, which lists them instead.
template <class T>
BoxSet<T> load(const Tensor& t, const Convention& conv, const std::string& name);

// Builds a BoxSet from xyxy corners (rotated: cx, cy, w, h, angle rows), for
// tests and benchmarks; the same checks as load with name "boxes".
template <class T>
BoxSet<T> from_rows(const std::vector<double>& rows, const Convention& conv);

// `batches` independent problems: batch k compares rows [k*n, (k+1)*n) of A
// with rows [k*m, (k+1)*m) of B. Row r of the dense result is box r of A.
struct Layout {
  std::int64_t batches = 1, n = 0, m = 0;
};

// The metric of one pair, as every path below computes it, bit for bit.
// Rotated sets support iou and ioa (usage error otherwise).
template <class T>
T pair_value(const BoxSet<T>& a, std::int64_t i, const BoxSet<T>& b, std::int64_t j, Metric metric);

// Rows [row_begin, row_end) of the dense result into out (row-major, l.m
// columns), on up to thread_count() threads.
template <class T>
void pairwise_rows(const BoxSet<T>& a, const BoxSet<T>& b, const Layout& l, Metric metric,
                   std::int64_t row_begin, std::int64_t row_end, T* out);

// The whole dense result (l.batches * l.n rows of l.m values), handed to sink
// in order, in blocks of whole rows of about block_bytes: memory stays bounded
// whatever N x M is.
template <class T>
void pairwise_stream(const BoxSet<T>& a, const BoxSet<T>& b, const Layout& l, Metric metric,
                     const std::function<void(const T* rows, std::int64_t count)>& sink,
                     std::size_t block_bytes = std::size_t{8} << 20);

// out[k] = metric(a[k], b[k]) for the a.size boxes; b.size must be equal.
template <class T>
void aligned(const BoxSet<T>& a, const BoxSet<T>& b, Metric metric, T* out);

// The pairs whose value is >= threshold, ordered by batch, then i, then j
// (indices within their batch).
template <class T>
struct SparsePairs {
  std::vector<std::int64_t> batch, i, j;
  std::vector<T> values;
};
// Never materialises the dense result. For threshold > 0 every metric needs
// the boxes to overlap, so only pairs found overlapping by a spatial grid are
// evaluated; otherwise all pairs are, in bounded memory. Values equal the
// dense result's bit for bit.
template <class T>
SparsePairs<T> pairwise_sparse(const BoxSet<T>& a, const BoxSet<T>& b, const Layout& l,
                               Metric metric, double threshold);

// The area of the intersection of two rotated boxes (quarter_turn 90 for
// degrees, pi/2 for radians), by clipping b against a's four sides in a's own
// frame: exact up to rounding, and exactly the box's area for identical boxes.
double rotated_intersection(const RotatedBox& a, const RotatedBox& b, double quarter_turn);

enum class Soft { none, linear, gaussian };

struct NmsOptions {
  double iou_threshold = 0.5;             // suppress (hard, linear) when IoU > this
  std::optional<double> score_threshold;  // keep only scores > this (also after decay)
  std::int64_t max_output = -1;           // < 0: all
  Soft soft = Soft::none;
  double sigma = 0.5;                     // gaussian: score *= exp(-IoU^2 / sigma)
};

struct NmsResult {
  std::vector<std::int64_t> keep;  // by decreasing score; equal scores by index
  std::vector<double> scores;      // the kept boxes' scores (decayed by soft-NMS)
};

// Greedy NMS exactly as torchvision's nms computes it in T (IoU as
// inter / (area_i + area_j - inter) compared with the threshold in double);
// with classes, independently per class as batched_nms. Kept boxes are
// inserted in a spatial grid, so each candidate is only compared with the kept
// boxes that overlap it: the same result as the all-pairs loop, far faster for
// many boxes. Soft-NMS (Bodla et al. 2017) decays the scores of the boxes that
// overlap each pick instead: linear by (1 - IoU) when IoU > iou_threshold,
// gaussian by exp(-IoU^2 / sigma); picks are by current score, ties by index.
// NaN scores are a data error; scores.size() (and classes) must be boxes.size.
template <class T>
NmsResult nms(const BoxSet<T>& boxes, const std::vector<double>& scores,
              const std::vector<std::int64_t>* classes, const NmsOptions& opt);

}  // namespace nnkit::boxes
