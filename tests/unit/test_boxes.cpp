// ops/boxes: every metric, pairwise and aligned, every format, float32 and
// float64, against torchvision's values (tests/fixtures/boxes, written by
// make_boxes.py); the degenerate-case rules; validation; sparse == dense
// thresholded; NMS and batched NMS against torchvision and against the plain
// all-pairs loop; soft-NMS against its plain O(N^2) definition; rotated
// overlaps against shapely's polygon areas and the known hard cases.
#include "nnkit/ops/boxes.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "nnkit/formats/npy.hpp"
#include "nnkit/parallel.hpp"

namespace nnkit::boxes {
namespace {

Tensor fixture(const std::string& name) {
  Input in = Input::open(std::string(NNKIT_FIXTURES) + "/boxes/" + name + ".npy");
  return npy::read(in);
}

template <class T>
std::vector<T> values(const Tensor& t) {
  const T* p = t.data<T>();
  return std::vector<T>(p, p + t.numel());
}

template <class T>
std::vector<T> dense(const BoxSet<T>& a, const BoxSet<T>& b, Metric m, Layout l = {}) {
  if (l.n == 0 && l.m == 0) l = {1, a.size, b.size};
  std::vector<T> out(static_cast<std::size_t>(l.batches * l.n * l.m));
  pairwise_rows(a, b, l, m, 0, l.batches * l.n, out.data());
  return out;
}

constexpr double kPi = 3.14159265358979323846;
const Metric all_metrics[] = {Metric::iou, Metric::giou, Metric::diou, Metric::ciou, Metric::ioa};
const char* const all_formats[] = {"xyxy", "xywh", "cxcywh"};

Convention conv_of(const std::string& fmt) {
  Convention c;
  c.format = parse_format(fmt);
  return c;
}

// Random xyxy boxes: clustered, with some exact duplicates, points and lines.
std::vector<double> random_boxes(std::int64_t n, unsigned seed, double extent = 200, double size = 30) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> pos(0, extent), len(0, size), unit(0, 1);
  std::vector<double> v;
  for (std::int64_t i = 0; i < n; ++i) {
    double x = pos(g), y = pos(g), w = len(g), h = len(g);
    const double r = unit(g);
    if (r < 0.05) w = 0;
    if (r > 0.95) w = h = 0;
    if (r > 0.5 && r < 0.6 && i > 0) {  // a copy of an earlier box
      v.insert(v.end(), v.end() - 4, v.end());
      continue;
    }
    v.insert(v.end(), {x, y, x + w, y + h});
  }
  return v;
}

// ------------------------------------------------------------------ Boxes

TEST(BoxesTorchvision, PairwiseEveryMetricAndFormat) {
  for (const char* fmt : all_formats) {
    const Convention c = conv_of(fmt);
    const auto a = load<float>(fixture(std::string("a_") + fmt), c, "a");
    const auto b = load<float>(fixture(std::string("b_") + fmt), c, "b");
    for (Metric m : all_metrics) {
      const auto want = values<float>(fixture(std::string(metric_name(m)) + "_" + fmt));
      const auto got = dense(a, b, m);
      ASSERT_EQ(got.size(), want.size());
      for (std::size_t k = 0; k < got.size(); ++k)
        ASSERT_NEAR(got[k], want[k], 2e-7) << metric_name(m) << " " << fmt << " pair " << k / b.size << ","
                                           << k % b.size;
    }
  }
}

TEST(BoxesTorchvision, AlignedEveryMetricAndFormat) {
  for (const char* fmt : all_formats) {
    const Convention c = conv_of(fmt);
    const Tensor ta = fixture(std::string("a_") + fmt);
    const auto b = load<float>(fixture(std::string("b_") + fmt), c, "b");
    const std::vector<float> all = values<float>(ta);
    const auto a24 = from_rows<float>(std::vector<double>(all.begin(), all.begin() + b.size * 4), c);
    for (Metric m : all_metrics) {
      const auto want = values<float>(fixture(std::string(metric_name(m)) + "_" + fmt + "_aligned"));
      std::vector<float> got(static_cast<std::size_t>(b.size));
      aligned(a24, b, m, got.data());
      for (std::size_t k = 0; k < got.size(); ++k) ASSERT_NEAR(got[k], want[k], 2e-7) << metric_name(m) << " " << k;
    }
    // Leading axes are rows too: [8, 4, 4] is 32 boxes.
    EXPECT_EQ(load<float>(Tensor(ta).reshaped({8, 4, 4}), c, "a").size, 32);
  }
}

TEST(BoxesTorchvision, Float64) {
  const auto a = load<double>(fixture("a_xyxy"), {}, "a");
  const auto b = load<double>(fixture("b_xyxy"), {}, "b");
  for (Metric m : all_metrics) {
    const auto want = values<double>(fixture(std::string(metric_name(m)) + "_xyxy_f64"));
    const auto got = dense(a, b, m);
    for (std::size_t k = 0; k < got.size(); ++k) ASSERT_NEAR(got[k], want[k], 1e-14) << metric_name(m) << " " << k;
  }
}

TEST(BoxesTorchvision, MixedFormatsAndLegacyPixels) {
  const auto a = load<float>(fixture("a_xywh"), conv_of("xywh"), "a");
  const auto b = load<float>(fixture("b_cxcywh"), conv_of("cxcywh"), "b");
  const auto want = values<float>(fixture("iou_mixed"));
  const auto got = dense(a, b, Metric::iou);
  for (std::size_t k = 0; k < got.size(); ++k) ASSERT_NEAR(got[k], want[k], 2e-7) << k;

  Convention legacy;
  legacy.legacy_pixels = true;
  const auto la = load<float>(fixture("a_xyxy"), legacy, "a");
  const auto lb = load<float>(fixture("b_xyxy"), legacy, "b");
  const auto lwant = values<float>(fixture("iou_legacy"));
  const auto lgot = dense(la, lb, Metric::iou);
  for (std::size_t k = 0; k < lgot.size(); ++k) ASSERT_NEAR(lgot[k], lwant[k], 2e-7) << k;
}

TEST(BoxesLegacyPixels, FormatsAgree) {
  // A box of pixels 10..19 (10 wide) in every legacy form.
  Convention xyxy, xywh, cxcywh;
  xyxy.legacy_pixels = xywh.legacy_pixels = cxcywh.legacy_pixels = true;
  xywh.format = Format::xywh;
  cxcywh.format = Format::cxcywh;
  const auto p = from_rows<double>({10, 20, 19, 24}, xyxy);
  const auto q = from_rows<double>({10, 20, 10, 5}, xywh);
  const auto r = from_rows<double>({14.5, 22, 10, 5}, cxcywh);
  for (const auto* s : {&p, &q, &r}) {
    EXPECT_EQ(s->x1[0], 10);
    EXPECT_EQ(s->x2[0], 20);
    EXPECT_EQ(s->y1[0], 20);
    EXPECT_EQ(s->y2[0], 25);
    EXPECT_EQ(s->area[0], 50);
  }
  // A one-pixel box has area 1, and overlaps a neighbour sharing its pixel.
  const auto one = from_rows<double>({3, 3, 3, 3, 3, 3, 4, 4}, xyxy);
  EXPECT_EQ(pair_value(one, 0, one, 1, Metric::iou), 0.25);
}

TEST(BoxesDegenerate, DefinedInsteadOfNaN) {
  // Two identical points, a point on a line, two touching boxes, a line pair.
  const auto s = from_rows<float>({5, 5, 5, 5,  5, 5, 5, 5,  0, 0, 10, 0,  0, 0, 2, 2,  2, 0, 4, 2}, {});
  for (Metric m : all_metrics) {
    EXPECT_EQ(pair_value(s, 0, s, 1, m), 0.0f) << metric_name(m) << ": identical points";
    EXPECT_FALSE(std::isnan(pair_value(s, 0, s, 2, m))) << metric_name(m);
    EXPECT_FALSE(std::isnan(pair_value(s, 2, s, 2, m))) << metric_name(m);
  }
  EXPECT_EQ(pair_value(s, 3, s, 4, Metric::iou), 0.0f);   // share an edge
  EXPECT_EQ(pair_value(s, 3, s, 4, Metric::giou), 0.0f);  // enclosing box = union
  EXPECT_EQ(pair_value(s, 3, s, 3, Metric::iou), 1.0f);
  EXPECT_EQ(pair_value(s, 3, s, 3, Metric::giou), 1.0f);
  EXPECT_EQ(pair_value(s, 3, s, 3, Metric::ciou), 1.0f);
  EXPECT_EQ(pair_value(s, 2, s, 3, Metric::ioa), 0.0f);  // A has zero area
  // CIoU's aspect term uses atan2(w, h): a flat box is pi/2, a point 0.
  EXPECT_FLOAT_EQ(s.aspect[2], float(kPi / 2));
  EXPECT_EQ(s.aspect[0], 0.0f);
}

TEST(BoxesValues, RangesAndSymmetry) {
  const auto s = from_rows<double>(random_boxes(300, 1), {});
  for (Metric m : all_metrics) {
    const auto v = dense(s, s, m);
    for (std::int64_t i = 0; i < s.size; ++i)
      for (std::int64_t j = 0; j < s.size; ++j) {
        const double x = v[i * s.size + j];
        ASSERT_FALSE(std::isnan(x));
        if (m == Metric::iou || m == Metric::ioa) {
          ASSERT_GE(x, 0);
          ASSERT_LE(x, 1);
        } else {
          ASSERT_GE(x, m == Metric::ciou ? -1.5 : -1);
          ASSERT_LE(x, 1);
        }
        if (m != Metric::ioa) {
          ASSERT_EQ(x, v[j * s.size + i]) << metric_name(m);
        }
      }
  }
}

TEST(BoxesValidation, DataErrorsNameTheRow) {
  auto message = [](const std::vector<double>& rows, const Convention& c, Shape shape = {}) {
    try {
      Tensor t = Tensor::from_vector<double>({static_cast<std::int64_t>(rows.size()) / 4, 4}, rows);
      if (!shape.empty()) t = std::move(t).reshaped(shape);
      load<float>(t, c, "in.npy");
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::data);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = HUGE_VAL;
  EXPECT_EQ(message({0, 0, 1, 1, 0, 0, 1, 1, 0, 5, 1, 4}, {}), "in.npy: box 2 is invalid: y2 < y1 (y1 = 5, y2 = 4)");
  EXPECT_EQ(message({3, 0, 1, 1}, {}), "in.npy: box 0 is invalid: x2 < x1 (x1 = 3, x2 = 1)");
  EXPECT_EQ(message({0, 0, 1, 1, 0, nan, 1, 1}, {}), "in.npy: box 1 is invalid: y1 is nan");
  EXPECT_EQ(message({0, 0, inf, 1}, {}), "in.npy: box 0 is invalid: x2 is inf");
  EXPECT_EQ(message({0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, -1}, conv_of("xywh"), {2, 2, 4}),
            "in.npy: box [1, 1] is invalid: negative height (h = -1)");
  EXPECT_EQ(message({0, 0, -2, 1}, conv_of("cxcywh")), "in.npy: box 0 is invalid: negative width (w = -2)");
  EXPECT_EQ(message({0, 0, 1e39, 1}, {}), "in.npy: box 0 is invalid: too large for float32 (try --f64)");
  EXPECT_EQ(message({0, 0, 1e30, 1e30}, {}), "in.npy: box 0 is invalid: too large for float32 (try --f64)");
  // Shape errors.
  EXPECT_THROW(load<float>(Tensor(DType::f4, {3, 5}), {}, "x"), Error);
  EXPECT_THROW(load<float>(Tensor(DType::f4, {}), {}, "x"), Error);
  // Every dtype reads; integer boxes are exact.
  for (DType d : {DType::u1, DType::i2, DType::i4, DType::i8, DType::u8, DType::f2, DType::f8}) {
    const Tensor t = Tensor::from_vector<double>({2, 4}, {0, 0, 4, 4, 2, 2, 6, 6}).astype(d);
    const auto s = load<float>(t, {}, "x");
    EXPECT_FLOAT_EQ(pair_value(s, 0, s, 1, Metric::iou), 4.0f / 28) << dtype_name(d);
  }
}

TEST(BoxesValidation, AllowInvalidGivesNaNPairs) {
  Convention c;
  c.allow_invalid = true;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto a = from_rows<float>({0, 0, 2, 2, 5, 5, 1, 1, 0, 0, 1, 1}, c);   // row 1: x2 < x1
  const auto b = from_rows<float>({0, 0, 2, 2, nan, 0, 1, 1, 0, 0, 2, 2}, c);  // row 1: NaN
  EXPECT_EQ(a.invalid, std::vector<std::int64_t>{1});
  EXPECT_EQ(b.invalid, std::vector<std::int64_t>{1});
  for (Metric m : all_metrics) {
    const auto v = dense(a, b, m);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        EXPECT_EQ(std::isnan(v[i * 3 + j]), i == 1 || j == 1) << metric_name(m) << " " << i << "," << j;
    std::vector<float> al(3);
    aligned(a, b, m, al.data());
    EXPECT_FALSE(std::isnan(al[0]));
    EXPECT_TRUE(std::isnan(al[1]));
    EXPECT_FALSE(std::isnan(al[2]));
    const auto sp = pairwise_sparse(a, b, {1, 3, 3}, m, -2);
    EXPECT_EQ(sp.values.size(), 4u) << metric_name(m);  // only valid pairs, even at a threshold below all
    for (float x : sp.values) EXPECT_FALSE(std::isnan(x));
  }
}

template <class T>
void expect_sparse_is_dense(const BoxSet<T>& a, const BoxSet<T>& b, Layout l, Metric m, double t) {
  const auto d = dense(a, b, m, l);
  const auto s = pairwise_sparse(a, b, l, m, t);
  std::size_t k = 0;
  for (std::int64_t batch = 0; batch < l.batches; ++batch)
    for (std::int64_t i = 0; i < l.n; ++i)
      for (std::int64_t j = 0; j < l.m; ++j) {
        const T v = d[static_cast<std::size_t>((batch * l.n + i) * l.m + j)];
        if (!(v >= t)) continue;
        ASSERT_LT(k, s.values.size()) << metric_name(m) << " t=" << t;
        ASSERT_EQ(s.batch[k], batch);
        ASSERT_EQ(s.i[k], i);
        ASSERT_EQ(s.j[k], j);
        ASSERT_EQ(s.values[k], v) << "bit for bit";
        ++k;
      }
  EXPECT_EQ(k, s.values.size()) << metric_name(m) << " t=" << t;
}

TEST(BoxesSparse, EqualsDenseThresholded) {
  const auto a = from_rows<float>(random_boxes(700, 2), {});
  const auto b = from_rows<float>(random_boxes(500, 3), {});
  for (Metric m : all_metrics)
    for (double t : {0.9, 0.5, 0.1, 1e-30, 0.0, -0.3})
      expect_sparse_is_dense(a, b, {1, 700, 500}, m, t);
  // Batched: 4 problems of 175 x 125.
  for (double t : {0.5, 0.0}) expect_sparse_is_dense(a, b, {4, 175, 125}, Metric::giou, t);
  const auto a64 = from_rows<double>(random_boxes(300, 4), {});
  expect_sparse_is_dense(a64, a64, {1, 300, 300}, Metric::ciou, 0.2);
}

TEST(BoxesSparse, GridCopesWithExtremeSizes) {
  // Many tiny boxes, a few covering everything, thin slivers, far outliers.
  auto v = random_boxes(2000, 5, 1000, 3);
  v.insert(v.end(), {-10, -10, 1010, 1010, 0, 0, 1000, 0.01, 500, 0, 500.001, 1000, 1e7, 1e7, 1e7 + 5, 1e7 + 5});
  v.insert(v.end(), {1e7, 1e7, 1e7 + 5, 1e7 + 5});
  const auto s = from_rows<float>(v, {});
  for (double t : {1e-6, 0.3}) expect_sparse_is_dense(s, s, {1, s.size, s.size}, Metric::iou, t);
  expect_sparse_is_dense(s, s, {1, s.size, s.size}, Metric::ioa, 1e-6);
}

TEST(BoxesDense, StreamBlocksAndThreadsDoNotChangeValues) {
  const auto a = from_rows<float>(random_boxes(257, 6), {});
  const auto b = from_rows<float>(random_boxes(3001, 7), {});  // more than one column tile
  for (Metric m : all_metrics) {
    set_threads(1);
    const auto one = dense(a, b, m);
    set_threads(3);
    const auto three = dense(a, b, m);
    EXPECT_EQ(one, three) << metric_name(m);
    std::vector<float> streamed;
    std::int64_t calls = 0;
    pairwise_stream<float>(a, b, {1, 257, 3001}, m, [&](const float* p, std::int64_t rows) {
      streamed.insert(streamed.end(), p, p + rows * 3001);
      ++calls;
    }, 50 * 3001 * 4);
    EXPECT_EQ(calls, 6);
    EXPECT_EQ(streamed, one) << metric_name(m);
    // Each value is pair_value's, bit for bit.
    for (std::int64_t i = 0; i < a.size; i += 17)
      for (std::int64_t j = 0; j < b.size; j += 13) ASSERT_EQ(one[i * b.size + j], pair_value(a, i, b, j, m));
  }
  set_threads(0);
}

TEST(BoxesDense, EmptySets) {
  const auto a = from_rows<float>({}, {});
  const auto b = from_rows<float>({0, 0, 1, 1}, {});
  EXPECT_TRUE(dense(a, b, Metric::iou, {1, 0, 1}).empty());
  EXPECT_TRUE(pairwise_sparse(a, b, {1, 0, 1}, Metric::iou, 0.5).values.empty());
  EXPECT_TRUE(pairwise_sparse(b, a, {1, 1, 0}, Metric::iou, 0.0).values.empty());
}

// ------------------------------------------------------------------ NMS

std::vector<std::int64_t> as_int(const Tensor& t) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 0; i < t.numel(); ++i) v.push_back(static_cast<std::int64_t>(t.get(i)));
  return v;
}

std::vector<double> as_double(const Tensor& t) {
  std::vector<double> v;
  for (std::int64_t i = 0; i < t.numel(); ++i) v.push_back(t.get(i));
  return v;
}

TEST(NmsTorchvision, NmsAndBatchedNms) {
  const auto boxes = load<float>(fixture("nms_boxes"), {}, "boxes");
  const auto scores = as_double(fixture("nms_scores"));
  const auto classes = as_int(fixture("nms_classes"));
  for (const char* t : {"0.3", "0.5", "0.7"}) {
    NmsOptions o;
    o.iou_threshold = std::stod(t);
    EXPECT_EQ(nms(boxes, scores, nullptr, o).keep, as_int(fixture(std::string("nms_keep_") + t))) << t;
  }
  for (const char* t : {"0.5", "0.7"}) {
    NmsOptions o;
    o.iou_threshold = std::stod(t);
    EXPECT_EQ(nms(boxes, scores, &classes, o).keep, as_int(fixture(std::string("batched_keep_") + t)))
        << t;
  }
}

// The all-pairs greedy loop, as torchvision writes it.
template <class T>
std::vector<std::int64_t> plain_nms(const BoxSet<T>& s, const std::vector<double>& scores,
                                    const std::vector<std::int64_t>* classes, double thr) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(s.size));
  for (std::int64_t i = 0; i < s.size; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](auto x, auto y) { return scores[x] > scores[y]; });
  std::vector<char> gone(order.size(), 0);
  std::vector<std::int64_t> keep;
  for (std::size_t a = 0; a < order.size(); ++a) {
    const auto i = order[a];
    if (gone[i]) continue;
    keep.push_back(i);
    for (std::size_t b = a + 1; b < order.size(); ++b) {
      const auto j = order[b];
      if (gone[j] || (classes && (*classes)[i] != (*classes)[j])) continue;
      if (double(pair_value(s, i, s, j, Metric::iou)) > thr) gone[j] = 1;
    }
  }
  return keep;
}

TEST(NmsGreedy, EqualsThePlainLoop) {
  std::mt19937_64 g(11);
  std::uniform_int_distribution<int> cls(0, 3), tenths(0, 10);
  for (unsigned seed : {1u, 2u, 3u}) {
    auto v = random_boxes(1500, seed, seed == 3 ? 100 : 400, 40);
    v.insert(v.end(), {-5, -5, 500, 500, 0, 200, 400, 200.5});  // one huge box, one sliver
    const auto s = from_rows<float>(v, {});
    std::vector<double> scores;
    std::vector<std::int64_t> classes;
    for (std::int64_t i = 0; i < s.size; ++i) scores.push_back(tenths(g) / 10.0), classes.push_back(cls(g));
    for (double t : {0.0, 0.2, 0.5, 0.9, 1.0}) {
      NmsOptions o;
      o.iou_threshold = t;
      EXPECT_EQ(nms(s, scores, nullptr, o).keep, plain_nms(s, scores, nullptr, t)) << seed << " " << t;
      EXPECT_EQ(nms(s, scores, &classes, o).keep, plain_nms(s, scores, &classes, t)) << seed << " " << t;
    }
  }
}

TEST(NmsGreedy, TiesKeepTheLowerIndex) {
  // Five identical boxes of equal score: only the first survives; disjoint
  // boxes of equal score come out in index order.
  const auto s = from_rows<float>({0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1,
                                   5, 5, 6, 6, 3, 3, 4, 4, 8, 8, 9, 9}, {});
  NmsOptions o;
  o.iou_threshold = 0.5;
  EXPECT_EQ(nms(s, {1, 1, 1, 1, 1, 1, 1, 1}, nullptr, o).keep, (std::vector<std::int64_t>{0, 5, 6, 7}));
  EXPECT_EQ(nms(s, {1, 2, 2, 1, 1, 1, 3, 1}, nullptr, o).keep, (std::vector<std::int64_t>{6, 1, 5, 7}));
  o.iou_threshold = 1;  // IoU > 1 never: everything, by score then index
  EXPECT_EQ(nms(s, {1, 2, 2, 1, 1, 1, 3, 1}, nullptr, o).keep, (std::vector<std::int64_t>{6, 1, 2, 0, 3, 4, 5, 7}));
}

TEST(NmsGreedy, ScoreThresholdMaxOutputAndErrors) {
  const auto s = from_rows<float>({0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7}, {});
  NmsOptions o;
  o.score_threshold = 0.5;
  auto r = nms(s, {0.9, 0.5, 0.7, 0.2}, nullptr, o);
  EXPECT_EQ(r.keep, (std::vector<std::int64_t>{0, 2}));  // strictly above 0.5
  EXPECT_EQ(r.scores, (std::vector<double>{0.9, 0.7}));
  o.score_threshold.reset();
  o.max_output = 3;
  EXPECT_EQ(nms(s, {0.9, 0.5, 0.7, 0.2}, nullptr, o).keep, (std::vector<std::int64_t>{0, 2, 1}));
  std::vector<std::int64_t> cls{0, 1, 0, 1};
  o.max_output = 1;
  EXPECT_EQ(nms(s, {0.9, 0.5, 0.7, 0.2}, &cls, o).keep, (std::vector<std::int64_t>{0}));
  o.max_output = 0;
  EXPECT_TRUE(nms(s, {0.9, 0.5, 0.7, 0.2}, nullptr, o).keep.empty());
  o.max_output = -1;
  EXPECT_EQ(nms(s, {HUGE_VAL, -HUGE_VAL, 0, 1}, nullptr, o).keep, (std::vector<std::int64_t>{0, 3, 2, 1}));
  EXPECT_THROW(nms(s, {0.1, NAN, 0.1, 0.1}, nullptr, o), Error);
  EXPECT_TRUE(nms(from_rows<float>({}, {}), {}, nullptr, o).keep.empty());
}

// Soft-NMS by its definition: repeatedly take the best remaining box and
// decay every other remaining one.
std::pair<std::vector<std::int64_t>, std::vector<double>> plain_soft(const BoxSet<double>& s, std::vector<double> sc,
                                                                     const NmsOptions& o) {
  std::vector<char> alive(sc.size());
  for (std::size_t i = 0; i < sc.size(); ++i) alive[i] = !o.score_threshold || sc[i] > *o.score_threshold;
  std::vector<std::pair<double, std::int64_t>> picked;
  while (true) {
    std::int64_t best = -1;
    for (std::size_t i = 0; i < sc.size(); ++i)
      if (alive[i] && (best < 0 || sc[i] > sc[best])) best = static_cast<std::int64_t>(i);
    if (best < 0) break;
    alive[best] = 0;
    picked.emplace_back(sc[best], best);
    for (std::size_t j = 0; j < sc.size(); ++j) {
      if (!alive[j]) continue;
      const double iou = pair_value(s, best, s, static_cast<std::int64_t>(j), Metric::iou);
      const double w = o.soft == Soft::linear ? (iou > o.iou_threshold ? 1 - iou : 1) : std::exp(-(iou * iou) / o.sigma);
      sc[j] *= w;
      if (o.score_threshold && !(sc[j] > *o.score_threshold)) alive[j] = 0;
    }
  }
  std::stable_sort(picked.begin(), picked.end(), [](auto& x, auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); });
  std::pair<std::vector<std::int64_t>, std::vector<double>> r;
  for (auto& [score, i] : picked) r.first.push_back(i), r.second.push_back(score);
  return r;
}

TEST(NmsSoft, LinearAndGaussianEqualTheirDefinition) {
  const auto s = from_rows<double>(random_boxes(400, 21, 150, 40), {});
  std::mt19937_64 g(5);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> scores;
  for (std::int64_t i = 0; i < s.size; ++i) scores.push_back(std::round(u(g) * 20) / 20);
  for (Soft soft : {Soft::linear, Soft::gaussian})
    for (std::optional<double> thr : {std::optional<double>{}, std::optional<double>{0.001}, std::optional<double>{0.3}}) {
      NmsOptions o;
      o.soft = soft;
      o.iou_threshold = 0.3;
      o.sigma = 0.5;
      o.score_threshold = thr;
      const auto want = plain_soft(s, scores, o);
      const auto got = nms(s, scores, nullptr, o);
      EXPECT_EQ(got.keep, want.first);
      EXPECT_EQ(got.scores, want.second);
    }
  // Two identical boxes: linear decays the second to 0, gaussian by exp(-1/sigma).
  const auto two = from_rows<double>({0, 0, 1, 1, 0, 0, 1, 1}, {});
  NmsOptions o;
  o.soft = Soft::gaussian;
  o.sigma = 0.5;
  EXPECT_EQ(nms(two, {0.8, 0.6}, nullptr, o).scores, (std::vector<double>{0.8, 0.6 * std::exp(-2.0)}));
  o.soft = Soft::linear;
  o.iou_threshold = 0.5;
  EXPECT_EQ(nms(two, {0.8, 0.6}, nullptr, o).scores, (std::vector<double>{0.8, 0.0}));
  o.score_threshold = 0.0;
  EXPECT_EQ(nms(two, {0.8, 0.6}, nullptr, o).keep, (std::vector<std::int64_t>{0}));
  EXPECT_THROW(nms(two, {HUGE_VAL, 0.6}, nullptr, o), Error);  // soft-NMS needs finite scores
}

// ------------------------------------------------------------------ rotated

Convention rotated_conv(bool radians = false) {
  Convention c;
  c.rotated = true;
  c.radians = radians;
  return c;
}

TEST(RotatedBoxesShapely, IouAndIoa) {
  const auto a = load<double>(fixture("rot_a"), rotated_conv(), "a");
  const auto b = load<double>(fixture("rot_b"), rotated_conv(), "b");
  for (Metric m : {Metric::iou, Metric::ioa}) {
    const auto want = values<double>(fixture(std::string("rot_") + metric_name(m)));
    const auto got = dense(a, b, m);
    for (std::size_t k = 0; k < got.size(); ++k)
      ASSERT_NEAR(got[k], want[k], 1e-12) << metric_name(m) << " pair " << k / b.size << "," << k % b.size;
    // float32 output: the same values, rounded.
    const auto a32 = load<float>(fixture("rot_a"), rotated_conv(), "a");
    const auto b32 = load<float>(fixture("rot_b"), rotated_conv(), "b");
    const auto got32 = dense(a32, b32, m);
    for (std::size_t k = 0; k < got.size(); ++k) ASSERT_EQ(got32[k], float(got[k]));
  }
}

TEST(RotatedBoxesHardCases, IdenticalAndQuarterTurnsAreExact) {
  std::mt19937_64 g(3);
  std::uniform_real_distribution<double> u(-1e3, 1e3), len(1e-3, 50), ang(-720, 720);
  std::vector<double> v, turned;
  for (int i = 0; i < 500; ++i) {
    const double cx = u(g), cy = u(g), w = len(g), h = len(g), t = ang(g);
    v.insert(v.end(), {cx, cy, w, h, t});
    turned.insert(turned.end(), {cx, cy, h, w, t + 90 * (1 + i % 3)});  // +90 swaps, +180 does not
    if (i % 3 == 1) std::swap(turned[turned.size() - 3], turned[turned.size() - 2]);
  }
  const auto s = from_rows<double>(v, rotated_conv());
  const auto q = from_rows<double>(turned, rotated_conv());
  for (std::int64_t i = 0; i < s.size; ++i) {
    ASSERT_EQ(pair_value(s, i, s, i, Metric::iou), 1.0) << i;
    ASSERT_EQ(pair_value(s, i, q, i, Metric::iou), 1.0) << i;
    ASSERT_EQ(pair_value(s, i, s, i, Metric::ioa), 1.0) << i;
  }
}

TEST(RotatedBoxesHardCases, KnownAreas) {
  const double r2 = std::sqrt(2.0);
  const auto s = from_rows<double>({
      0, 0, 2, 2, 0,         // 0 square
      0, 0, 2, 2, 45,        // 1 the same turned 45: a regular octagon in common
      2, 0, 2, 2, 0,         // 2 shares an edge with 0
      2, 2, 2, 2, 0,         // 3 shares a corner with 0
      0, 0, 10, 1e-6, 0,     // 4 thin
      0, 0, 1e-6, 10, 0,     // 5 thin, across 4
      0, 0, 10, 1e-6, 1e-7,  // 6 nearly 4
      0.5 + r2, 0, 2, 2, 45, // 7 a diamond whose left corner reaches 0.5 into 0
      0, 0, 0, 3, 30,        // 8 zero width
      1, 0, 2, 2, 0,         // 9 half over 0
  }, rotated_conv());
  const double oct = 8 * (r2 - 1);  // octagon area
  EXPECT_NEAR(pair_value(s, 0, s, 1, Metric::iou), oct / (8 - oct), 1e-15);
  EXPECT_NEAR(pair_value(s, 0, s, 1, Metric::ioa), oct / 4, 1e-15);
  EXPECT_EQ(pair_value(s, 0, s, 2, Metric::iou), 0.0);
  EXPECT_EQ(pair_value(s, 0, s, 3, Metric::iou), 0.0);
  EXPECT_NEAR(pair_value(s, 4, s, 5, Metric::iou), 1e-12 / (2e-5 - 1e-12), 1e-18);
  const double nearly = pair_value(s, 4, s, 6, Metric::iou);
  EXPECT_GT(nearly, 0.99);
  EXPECT_LT(nearly, 1.0);
  EXPECT_NEAR(pair_value(s, 0, s, 7, Metric::ioa), 0.25 / 4, 1e-15);  // a triangle of area 1/4
  EXPECT_EQ(pair_value(s, 0, s, 8, Metric::iou), 0.0);
  EXPECT_EQ(pair_value(s, 8, s, 8, Metric::iou), 0.0);  // zero union: 0
  EXPECT_DOUBLE_EQ(pair_value(s, 0, s, 9, Metric::iou), 2.0 / 6.0);
  // A diamond with a corner exactly on the square's edge, touching only.
  const auto t = from_rows<double>({0, 0, 2, 2, 0, 1 + r2, 0, 2, 2, 45}, rotated_conv());
  EXPECT_NEAR(pair_value(t, 0, t, 1, Metric::iou), 0.0, 1e-15);
}

TEST(RotatedBoxesHardCases, SymmetricRadiansAndFarAway) {
  std::mt19937_64 g(8);
  std::uniform_real_distribution<double> pos(0, 20), len(0.5, 10), ang(-180, 180);
  std::vector<double> deg, rad, far;
  for (int i = 0; i < 200; ++i) {
    const double cx = pos(g), cy = pos(g), w = len(g), h = len(g), t = ang(g);
    deg.insert(deg.end(), {cx, cy, w, h, t});
    rad.insert(rad.end(), {cx, cy, w, h, t * kPi / 180});
    far.insert(far.end(), {cx + 1e6, cy - 1e6, w, h, t});
  }
  const auto d = from_rows<double>(deg, rotated_conv());
  const auto r = from_rows<double>(rad, rotated_conv(true));
  const auto f = from_rows<double>(far, rotated_conv());
  const auto vd = dense(d, d, Metric::iou), vr = dense(r, r, Metric::iou), vf = dense(f, f, Metric::iou);
  for (std::size_t k = 0; k < vd.size(); ++k) {
    const std::size_t i = k / 200, j = k % 200;
    ASSERT_NEAR(vd[k], vd[j * 200 + i], 1e-13);
    ASSERT_NEAR(vd[k], vr[k], 1e-12);
    ASSERT_NEAR(vd[k], vf[k], 1e-9);
  }
  // Sparse equals dense for rotated boxes too.
  expect_sparse_is_dense(d, d, {1, 200, 200}, Metric::iou, 0.05);
  expect_sparse_is_dense(d, d, {1, 200, 200}, Metric::ioa, 1e-9);
}

TEST(RotatedBoxesNms, EqualsThePlainLoop) {
  std::mt19937_64 g(12);
  std::uniform_real_distribution<double> pos(0, 100), len(2, 20), ang(-90, 90), u(0, 1);
  std::vector<double> v, scores;
  for (int i = 0; i < 800; ++i) {
    v.insert(v.end(), {pos(g), pos(g), len(g), len(g), ang(g)});
    scores.push_back(std::round(u(g) * 10) / 10);
  }
  const auto s = from_rows<double>(v, rotated_conv());
  for (double t : {0.1, 0.5}) {
    NmsOptions o;
    o.iou_threshold = t;
    EXPECT_EQ(nms(s, scores, nullptr, o).keep, plain_nms(s, scores, nullptr, t));
  }
  EXPECT_THROW(pair_value(s, 0, s, 1, Metric::giou), Error);
}

}  // namespace
}  // namespace nnkit::boxes
