// nnkit/ops/vq.hpp against the references of tests/fixtures/make_vq.py (faiss
// IndexFlatL2/IndexFlatIP and Kmeans, numpy residual/PQ, the FSQ formula) and
// against brute force in double precision: exact indices (faiss may differ
// only on ties within float32 rounding), the case that breaks the naive
// |x|^2 - 2 x.e + |e|^2 decomposition, ties to the lowest index, round trips,
// k-means inertia within 1% of faiss, determinism across thread counts, bad input;
// k-means as map and reduce: shards merged in any order give the single run
// bit for bit, the statistics' tensors round-trip and refuse corruption, and a
// code made by a split can be split again.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "nnkit/formats/npy.hpp"
#include "nnkit/ops/vq.hpp"
#include "nnkit/parallel.hpp"
#include "nnkit/rng.hpp"

using namespace nnkit;
using namespace nnkit::vq;

namespace {

const std::string dir = std::string(NNKIT_FIXTURES) + "/vq/";
constexpr double kU = 0x1p-24;  // float32 unit roundoff

Tensor fixture(const std::string& name) {
  Input in = Input::open(dir + name + ".npy");
  return npy::read(in);
}

nlohmann::json kmeans_report() {
  std::ifstream f(dir + "kmeans.json");
  return nlohmann::json::parse(f);
}

// Restores the thread count a test changed.
struct Threads {
  int saved = thread_count();
  explicit Threads(int n) { set_threads(n); }
  ~Threads() { set_threads(saved); }
};

std::vector<float> normals(std::int64_t n, std::uint64_t seed, float scale = 1, float shift = 0) {
  std::vector<float> v(static_cast<std::size_t>(n));
  fill_normal(seed, 0, v.data(), n);
  for (float& x : v) x = x * scale + shift;
  return v;
}

// Brute force in double: distances of row i to every code.
std::vector<double> exact_l2(const float* x, const float* cb, std::int64_t k, std::int64_t d) {
  std::vector<double> out(static_cast<std::size_t>(k));
  for (std::int64_t j = 0; j < k; ++j) {
    double s = 0;
    for (std::int64_t c = 0; c < d; ++c) {
      const double t = static_cast<double>(x[c]) - cb[j * d + c];
      s += t * t;
    }
    out[static_cast<std::size_t>(j)] = s;
  }
  return out;
}

std::vector<double> exact_cos(const float* x, const float* cb, std::int64_t k, std::int64_t d) {
  std::vector<double> out(static_cast<std::size_t>(k));
  double nx = 0;
  for (std::int64_t c = 0; c < d; ++c) nx += static_cast<double>(x[c]) * x[c];
  for (std::int64_t j = 0; j < k; ++j) {
    double dot = 0, ne = 0;
    for (std::int64_t c = 0; c < d; ++c) {
      dot += static_cast<double>(x[c]) * cb[j * d + c];
      ne += static_cast<double>(cb[j * d + c]) * cb[j * d + c];
    }
    out[static_cast<std::size_t>(j)] = nx > 0 && ne > 0 ? dot / std::sqrt(nx * ne) : 0;
  }
  return out;
}

// The k smallest distances' indices, lowest index first on ties.
std::vector<std::int64_t> exact_topk(const std::vector<double>& dist, std::int64_t k) {
  std::vector<std::int64_t> order(dist.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return dist[a] < dist[b]; });
  order.resize(static_cast<std::size_t>(k));
  return order;
}

double sq_norm(const float* v, std::int64_t d) {
  double s = 0;
  for (std::int64_t c = 0; c < d; ++c) s += static_cast<double>(v[c]) * v[c];
  return s;
}

std::vector<std::int64_t> search(const FlatIndex& ix, const float* x, std::int64_t n, std::int64_t k = 1,
                                 std::vector<float>* dist = nullptr) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n * k));
  std::vector<float> own;
  if (!dist) dist = &own;
  dist->resize(static_cast<std::size_t>(n * k));
  ix.search(x, n, ix.dim(), k, idx.data(), k, dist->data(), k);
  return idx;
}

template <class F>
std::string data_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::data) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

template <class F>
std::string usage_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

// Our nearest codes vs brute force (must be equal) and vs faiss (may differ
// only where the two codes' exact distances tie within the float32 error of
// the decomposition, (D + 2) u (|x| + |e|)^2).
void check_search_case(const std::string& name) {
  const Tensor x = fixture(name + "_x"), cb = fixture(name + "_cb");
  const Tensor fi = fixture(name + "_l2_I"), fd = fixture(name + "_l2_D"), f4 = fixture(name + "_l2_top4_I");
  const std::int64_t n = x.dim(0), d = x.dim(1), k = cb.dim(0);
  const FlatIndex ix(cb.data<float>(), k, d, Metric::l2);
  std::vector<float> dist;
  const auto got = search(ix, x.data<float>(), n, 1, &dist);
  std::vector<float> dist4;
  const auto got4 = search(ix, x.data<float>(), n, 4, &dist4);
  int faiss_ties = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float* xi = x.data<float>() + i * d;
    const auto ex = exact_l2(xi, cb.data<float>(), k, d);
    const auto top = exact_topk(ex, 4);
    ASSERT_EQ(got[i], top[0]) << name << " row " << i;
    EXPECT_NEAR(dist[i], ex[top[0]], 1e-6 * std::max(1.0, ex[top[0]])) << name << " row " << i;
    for (int r = 0; r < 4; ++r) {
      ASSERT_EQ(got4[i * 4 + r], top[r]) << name << " row " << i << " rank " << r;
      EXPECT_NEAR(dist4[i * 4 + r], ex[top[r]], 1e-6 * std::max(1.0, ex[top[r]]));
    }
    const std::int64_t f = fi.data<std::int64_t>()[i];
    if (f != got[i]) {
      ++faiss_ties;
      const double reach = std::sqrt(sq_norm(xi, d)) + std::sqrt(sq_norm(cb.data<float>() + f * d, d));
      EXPECT_LE(ex[f] - ex[got[i]], (d + 2) * kU * reach * reach) << name << " row " << i << ": faiss's code "
                                                                   << f << " is not a float32 tie of " << got[i];
    } else {  // faiss's own float32 distance, to its rounding
      const double reach = std::sqrt(sq_norm(xi, d)) + std::sqrt(sq_norm(cb.data<float>() + f * d, d));
      EXPECT_NEAR(fd.data<float>()[i], ex[f], 1e-6 * ex[f] + (d + 2) * kU * reach * reach);
    }
    for (int r = 0; r < 4; ++r) {
      const std::int64_t g = f4.data<std::int64_t>()[i * 4 + r];
      if (g == top[r]) continue;
      const double reach = std::sqrt(sq_norm(xi, d)) + std::sqrt(sq_norm(cb.data<float>() + g * d, d));
      EXPECT_LE(std::abs(ex[g] - ex[top[r]]), (d + 2) * kU * reach * reach) << name << " row " << i << " rank " << r;
    }
  }
  std::cout << "[ info ] " << name << ": faiss IndexFlatL2 differs on " << faiss_ties << " of " << n
            << " vectors, all float32 ties" << std::endl;
}

void check_cosine_case(const std::string& name) {
  const Tensor x = fixture(name + "_x"), cb = fixture(name + "_cb"), fi = fixture(name + "_ip_I");
  const std::int64_t n = x.dim(0), d = x.dim(1), k = cb.dim(0);
  const FlatIndex ix(cb.data<float>(), k, d, Metric::cosine);
  std::vector<float> dist;
  const auto got = search(ix, x.data<float>(), n, 1, &dist);
  int ties = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto cs = exact_cos(x.data<float>() + i * d, cb.data<float>(), k, d);
    std::vector<double> neg(cs.size());
    for (std::size_t j = 0; j < cs.size(); ++j) neg[j] = 2 - 2 * cs[j];
    const std::int64_t best = exact_topk(neg, 1)[0];
    ASSERT_EQ(got[i], best) << name << " row " << i;
    EXPECT_NEAR(dist[i], 2 - 2 * cs[best], 1e-6);
    const std::int64_t f = fi.data<std::int64_t>()[i];
    if (f != best) {
      ++ties;
      EXPECT_LE(cs[best] - cs[f], 4 * (d + 2) * kU) << name << " row " << i;
    }
  }
  std::cout << "[ info ] " << name << ": faiss IndexFlatIP (unit vectors) differs on " << ties << " of " << n
            << " vectors, all float32 ties" << std::endl;
}

}  // namespace

// ------------------------------------------------------------------ search

TEST(VqSearch, RandomMatchesFaissAndBruteForce) { check_search_case("search_random"); }
TEST(VqSearch, ClusteredMatchesFaissAndBruteForce) { check_search_case("search_clustered"); }
TEST(VqSearch, FarFromOriginIsExactWhereFaissIsNot) { check_search_case("search_offset"); }
TEST(VqSearch, CosineMatchesFaissInnerProduct) {
  check_cosine_case("search_random");
  check_cosine_case("search_clustered");
  check_cosine_case("search_offset");
}

// The decomposition in float32 picks wrong codes when |x| is large and the
// codes are close; the re-ranked search does not.
TEST(VqSearch, NaiveDecompositionFailsRerankIsExact) {
  const std::int64_t n = 500, k = 200, d = 32;
  const auto x = normals(n * d, 11, 0.05f, 1000), cb = normals(k * d, 12, 0.02f, 1000);
  const FlatIndex ix(cb.data(), k, d, Metric::l2);
  const auto got = search(ix, x.data(), n);
  int naive_wrong = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float* xi = x.data() + i * d;
    const auto ex = exact_l2(xi, cb.data(), k, d);
    ASSERT_EQ(got[i], exact_topk(ex, 1)[0]) << "row " << i;
    // The naive float32 computation.
    float xx = 0;
    for (std::int64_t c = 0; c < d; ++c) xx += xi[c] * xi[c];
    std::int64_t naive = 0;
    float naive_best = std::numeric_limits<float>::infinity();
    for (std::int64_t j = 0; j < k; ++j) {
      float ee = 0, xe = 0;
      for (std::int64_t c = 0; c < d; ++c) {
        ee += cb[j * d + c] * cb[j * d + c];
        xe += xi[c] * cb[j * d + c];
      }
      const float v = xx - 2 * xe + ee;
      if (v < naive_best) naive_best = v, naive = j;
    }
    naive_wrong += naive != got[i];
  }
  std::cout << "[ info ] the naive float32 decomposition is wrong on " << naive_wrong << " of " << n << " vectors"
            << std::endl;
  EXPECT_GT(naive_wrong, n / 10);
}

TEST(VqSearch, TiesGoToTheLowestIndex) {
  // Codes 1, 4 and 6 are the same vector; code 2 is its mirror image, at the
  // same distance from x = 0; x = 0 is equally far from all four.
  const std::int64_t d = 3;
  std::vector<float> cb = {5, 5, 5, 1, 2, 3, 3, 2, 1, 9, 9, 9, 1, 2, 3, 7, 7, 7, 1, 2, 3};
  cb[2 * d + 0] = -1, cb[2 * d + 1] = -2, cb[2 * d + 2] = -3;
  const FlatIndex ix(cb.data(), 7, d, Metric::l2);
  const std::vector<float> x = {0, 0, 0, 1, 2, 3, 1, 2, 3};
  const auto got = search(ix, x.data(), 3, 4);
  EXPECT_EQ(got, (std::vector<std::int64_t>{1, 2, 4, 6, 1, 4, 6, 0, 1, 4, 6, 0}));
  // Cosine: codes 1, 4, 6 and the scaled copy at 0 point the same way.
  std::vector<float> cc = cb;
  for (int c = 0; c < 3; ++c) cc[c] = 2 * cb[d + c];
  const FlatIndex cix(cc.data(), 7, d, Metric::cosine);
  EXPECT_EQ(search(cix, x.data() + 3, 1, 5), (std::vector<std::int64_t>{0, 1, 4, 6, 3}));
}

TEST(VqSearch, BlocksThreadsAndTopkAgreeWithBruteForce) {
  // Sizes off the block boundaries (128 vectors, 1024 codes) and one code block more.
  const std::int64_t n = 1000, k = 2500, d = 10;
  const auto x = normals(n * d, 21), cb = normals(k * d, 22);
  const FlatIndex ix(cb.data(), k, d, Metric::l2);
  std::vector<std::int64_t> first;
  for (int t : {1, 2, 3}) {
    Threads threads(t);
    const auto got = search(ix, x.data(), n, 5);
    if (first.empty()) first = got;
    EXPECT_EQ(got, first) << t << " threads";
  }
  for (std::int64_t i = 0; i < n; ++i)
    ASSERT_EQ(std::vector<std::int64_t>(first.begin() + i * 5, first.begin() + i * 5 + 5),
              exact_topk(exact_l2(x.data() + i * d, cb.data(), k, d), 5))
        << "row " << i;
}

TEST(VqSearch, HugeAndTinyValuesStayExact) {
  // Beyond float32's range for |x|^2: every code is compared directly.
  const std::int64_t n = 50, k = 40, d = 8;
  for (float scale : {1e18f, 1e-30f}) {
    const auto x = normals(n * d, 31, scale), cb = normals(k * d, 32, scale);
    const FlatIndex ix(cb.data(), k, d, Metric::l2);
    const auto got = search(ix, x.data(), n, 3);
    for (std::int64_t i = 0; i < n; ++i)
      ASSERT_EQ(std::vector<std::int64_t>(got.begin() + i * 3, got.begin() + i * 3 + 3),
                exact_topk(exact_l2(x.data() + i * d, cb.data(), k, d), 3))
          << "scale " << scale << " row " << i;
  }
}

TEST(VqSearch, CosineZeroVectorHasCosineZero) {
  const std::vector<float> cb = {0, 0, 1, 0, -1, 0, 0, 0};  // code 3 is zero
  const FlatIndex ix(cb.data(), 4, 2, Metric::cosine);
  const std::vector<float> x = {0, 0, -3, 0};
  std::vector<float> dist;
  const auto got = search(ix, x.data(), 2, 2, &dist);
  EXPECT_EQ(got, (std::vector<std::int64_t>{0, 1, 2, 0}));  // a zero x: all at cosine 0; then the zero code beats cosine -1
  EXPECT_EQ(dist[0], 2.f);
  EXPECT_EQ(dist[2], 0.f);
  EXPECT_EQ(dist[3], 2.f);
}

// ------------------------------------------------------------------ quantizers

TEST(VqQuantizer, ResidualMatchesNumpy) {
  const Quantizer q = make_quantizer(fixture("residual_cb"), true, 0, Metric::l2, "cb");
  const Tensor x = prepare_input(q, fixture("residual_x"), "x");
  EncodeOptions opt;
  opt.distances = opt.quantized = true;
  const Encoded e = encode(q, x, opt);
  const Tensor want = fixture("residual_I"), wq = fixture("residual_q");
  ASSERT_EQ(e.indices.shape(), want.shape());
  EXPECT_EQ(std::memcmp(e.indices.bytes(), want.bytes(), want.nbytes()), 0);
  ASSERT_EQ(e.quantized.shape(), wq.shape());
  EXPECT_EQ(std::memcmp(e.quantized.bytes(), wq.bytes(), wq.nbytes()), 0) << "float32 sums in stage order";
  for (std::int64_t i = 0; i < x.dim(0); ++i)
    EXPECT_NEAR(e.distances.data<float>()[i], squared_distance(x.data<float>() + i * 8, wq.data<float>() + i * 8, 8), 1e-5);
  // decode(encode(x)) is the reconstruction.
  const Tensor back = decode(q, e.indices, "i");
  EXPECT_EQ(std::memcmp(back.bytes(), wq.bytes(), wq.nbytes()), 0);
}

TEST(VqQuantizer, ProductMatchesNumpy) {
  const Tensor cb = fixture("pq_cb");
  const Quantizer q = make_quantizer(cb, false, 4, Metric::l2, "cb");
  EXPECT_EQ(q.dim(), 16);
  const Tensor x = prepare_input(q, fixture("pq_x"), "x");
  EncodeOptions opt;
  opt.distances = opt.quantized = true;
  const Encoded e = encode(q, x, opt);
  const Tensor want = fixture("pq_I");
  EXPECT_EQ(std::memcmp(e.indices.bytes(), want.bytes(), want.nbytes()), 0);
  const Tensor back = decode(q, e.indices, "i");
  EXPECT_EQ(std::memcmp(back.bytes(), e.quantized.bytes(), back.nbytes()), 0);
  for (std::int64_t i = 0; i < x.dim(0); ++i) {
    for (std::int64_t m = 0; m < 4; ++m)
      for (std::int64_t c = 0; c < 4; ++c)
        ASSERT_EQ(back.data<float>()[i * 16 + m * 4 + c],
                  cb.data<float>()[(m * 16 + want.data<std::int64_t>()[i * 4 + m]) * 4 + c]);
    EXPECT_NEAR(e.distances.data<float>()[i], squared_distance(x.data<float>() + i * 16, back.data<float>() + i * 16, 16), 1e-5);
  }
  // --pq must name the subspaces the codebook has.
  EXPECT_NE(data_error([&] { make_quantizer(cb, false, 3, Metric::l2, "cb.npy"); }).find("4 subspaces"), std::string::npos);
}

TEST(VqQuantizer, FlatRoundTripShapesAndTopk) {
  const Tensor cb = fixture("search_random_cb");
  const Quantizer q = make_quantizer(cb, false, 0, Metric::l2, "cb");
  const Tensor x = prepare_input(q, fixture("search_random_x").reshaped({20, 20, 16}), "x");
  EncodeOptions opt;
  opt.distances = opt.quantized = true;
  const Encoded e = encode(q, x, opt);
  EXPECT_EQ(e.indices.shape(), (Shape{20, 20}));
  EXPECT_EQ(e.distances.shape(), (Shape{20, 20}));
  EXPECT_EQ(e.quantized.shape(), (Shape{20, 20, 16}));
  const Tensor back = decode(q, e.indices, "i");
  EXPECT_EQ(back.shape(), (Shape{20, 20, 16}));
  EXPECT_EQ(std::memcmp(back.bytes(), e.quantized.bytes(), back.nbytes()), 0);
  // Decoding any integer dtype, and whole floats.
  EXPECT_EQ(std::memcmp(decode(q, e.indices.astype(DType::i2), "i").bytes(), back.bytes(), back.nbytes()), 0);
  EXPECT_EQ(std::memcmp(decode(q, e.indices.astype(DType::f8), "i").bytes(), back.bytes(), back.nbytes()), 0);
  opt.topk = 3;
  const Encoded t = encode(q, x, opt);
  EXPECT_EQ(t.indices.shape(), (Shape{20, 20, 3}));
  EXPECT_EQ(t.distances.shape(), (Shape{20, 20, 3}));
  for (std::int64_t i = 0; i < 400; ++i) EXPECT_EQ(t.indices.data<std::int64_t>()[i * 3], e.indices.data<std::int64_t>()[i]);
  // One vector [D] gives a 0-d index.
  const Tensor one = prepare_input(q, Tensor::from_vector<float>({16}, std::vector<float>(16, 0.5f)), "x");
  EXPECT_EQ(encode(q, one).indices.shape(), Shape{});
  opt.topk = 65;
  usage_error([&] { encode(q, x, opt); });
}

TEST(VqQuantizer, DecodeRefusesOutOfRangeNamingThePosition) {
  const Quantizer q = make_quantizer(fixture("search_random_cb"), false, 0, Metric::l2, "cb");
  Tensor idx = Tensor::from_vector<std::int64_t>({2, 3}, {0, 1, 2, 3, 64, 5});
  std::string m = data_error([&] { decode(q, idx, "idx.npy"); });
  EXPECT_NE(m.find("64 at [1, 1]"), std::string::npos) << m;
  EXPECT_NE(m.find("64 codes"), std::string::npos) << m;
  EXPECT_NE(m.find("idx.npy"), std::string::npos) << m;
  m = data_error([&] { decode(q, Tensor::from_vector<std::int64_t>({2}, {3, -1}), "idx.npy"); });
  EXPECT_NE(m.find("-1 at [1]"), std::string::npos) << m;
  m = data_error([&] { decode(q, Tensor::from_vector<float>({2}, {3, 1.5f}), "idx.npy"); });
  EXPECT_NE(m.find("not an integer"), std::string::npos) << m;
  const Quantizer r = make_quantizer(fixture("residual_cb"), true, 0, Metric::l2, "cb");
  m = data_error([&] { decode(r, Tensor::from_vector<std::int64_t>({1, 2}, {0, 1}), "idx.npy"); });
  EXPECT_NE(m.find("last axis must be 3"), std::string::npos) << m;
}

TEST(VqQuantizer, BadInput) {
  const Tensor cb = fixture("search_random_cb");
  const Quantizer q = make_quantizer(cb, false, 0, Metric::l2, "cb.npy");
  // D mismatch.
  std::string m = data_error([&] { prepare_input(q, Tensor(DType::f4, {5, 15}), "x.npy"); });
  EXPECT_NE(m.find("dimension 15"), std::string::npos) << m;
  EXPECT_NE(m.find("x.npy"), std::string::npos) << m;
  // NaN and Inf name the vector and the element.
  Tensor x(DType::f4, {4, 3, 16});
  x.data<float>()[(2 * 3 + 1) * 16 + 5] = std::nanf("");
  m = data_error([&] { prepare_input(q, x, "x.npy"); });
  EXPECT_NE(m.find("vector [2, 1] has a NaN value at element 5"), std::string::npos) << m;
  x.data<float>()[(2 * 3 + 1) * 16 + 5] = -INFINITY;
  m = data_error([&] { prepare_input(q, x, "x.npy"); });
  EXPECT_NE(m.find("infinite"), std::string::npos) << m;
  data_error([&] { prepare_input(q, Tensor(DType::f4, {}), "x.npy"); });
  // Empty, NaN, wrongly shaped codebooks.
  m = data_error([&] { make_quantizer(Tensor(DType::f4, {0, 16}), false, 0, Metric::l2, "cb.npy"); });
  EXPECT_NE(m.find("empty"), std::string::npos) << m;
  data_error([&] { make_quantizer(Tensor(DType::f4, {4, 0}), false, 0, Metric::l2, "cb.npy"); });
  data_error([&] { make_quantizer(Tensor(DType::f4, {4}), false, 0, Metric::l2, "cb.npy"); });
  Tensor bad = cb;
  bad.data<float>()[17] = std::nanf("");
  m = data_error([&] { make_quantizer(bad, false, 0, Metric::l2, "cb.npy"); });
  EXPECT_NE(m.find("code [1]"), std::string::npos) << m;
  m = data_error([&] { make_quantizer(fixture("residual_cb"), false, 0, Metric::l2, "cb.npy"); });
  EXPECT_NE(m.find("--residual"), std::string::npos) << m;
  data_error([&] { make_quantizer(cb, true, 0, Metric::l2, "cb.npy"); });
  usage_error([&] { make_quantizer(fixture("residual_cb"), true, 0, Metric::cosine, "cb.npy"); });
  // Integer inputs are converted.
  const Tensor xi = prepare_input(q, Tensor(DType::i4, {2, 16}), "x");
  EXPECT_EQ(xi.dtype(), DType::f4);
}

TEST(VqQuantizer, PatchesRoundTrip) {
  Tensor img(DType::u1, {4, 6, 3});
  for (std::int64_t i = 0; i < img.numel(); ++i) img.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i);
  const Tensor p = patchify(img, 2, "img");
  EXPECT_EQ(p.shape(), (Shape{2, 3, 12}));
  // Patch (1, 2) starts at pixel (2, 4); its second row at pixel (3, 4).
  const std::uint8_t* v = p.data<std::uint8_t>() + (1 * 3 + 2) * 12;
  EXPECT_EQ(v[0], (2 * 6 + 4) * 3);
  EXPECT_EQ(v[3], (2 * 6 + 5) * 3);
  EXPECT_EQ(v[6], (3 * 6 + 4) * 3);
  const Tensor back = unpatchify(p, 2, "p");
  EXPECT_EQ(back.shape(), img.shape());
  EXPECT_EQ(std::memcmp(back.bytes(), img.bytes(), img.nbytes()), 0);
  EXPECT_EQ(patchify(Tensor(DType::f4, {4, 4}), 2, "g").shape(), (Shape{2, 2, 4}));
  EXPECT_EQ(patchify(Tensor(DType::f4, {5, 4, 6, 1}), 2, "b").shape(), (Shape{5, 2, 3, 4}));
  std::string m = data_error([&] { patchify(Tensor(DType::u1, {5, 6, 3}), 2, "img.png"); });
  EXPECT_NE(m.find("5x6"), std::string::npos) << m;
  data_error([&] { patchify(Tensor(DType::u1, {6}), 2, "img.png"); });
  data_error([&] { unpatchify(Tensor(DType::f4, {2, 3, 10}), 2, "p"); });
  const Tensor u8 = to_uint8_image(Tensor::from_vector<float>({4}, {-3.f, 0.4f, 254.6f, 900.f}));
  EXPECT_EQ(std::vector<std::uint8_t>(u8.data<std::uint8_t>(), u8.data<std::uint8_t>() + 4),
            (std::vector<std::uint8_t>{0, 0, 255, 255}));
}

TEST(VqStats, PerplexityUsageAndDeadCodes) {
  // 8 codes; vectors use codes 0 (4 times), 1 (2), 2 (1), 5 (1).
  std::vector<float> cb(8 * 2);
  for (int j = 0; j < 8; ++j) cb[j * 2] = static_cast<float>(10 * j);
  const Quantizer q = make_quantizer(Tensor::from_vector<float>({8, 2}, cb), false, 0, Metric::l2, "cb");
  const Tensor x = Tensor::from_vector<float>({8, 2}, {0, 1, 0, 1, 0, 1, 1, 0, 10, 0, 11, 0, 20, 0, 50, 2});
  EncodeOptions opt;
  opt.distances = true;
  UsageCounter u(q);
  u.add(encode(q, x, opt));
  const Stats st = u.summary();
  ASSERT_EQ(st.stages.size(), 1u);
  const StageUsage& s = st.stages[0];
  EXPECT_EQ(st.vectors, 8);
  EXPECT_NEAR(st.mean_squared_distance, (1 + 1 + 1 + 1 + 0 + 1 + 0 + 4) / 8.0, 1e-12);
  EXPECT_NEAR(st.mse, st.mean_squared_distance / 2, 1e-12);
  EXPECT_EQ(s.used, 4);
  EXPECT_EQ(s.dead, 4);
  EXPECT_EQ(s.dead_codes, (std::vector<std::int64_t>{3, 4, 6, 7}));
  EXPECT_EQ(s.counts, (std::vector<std::int64_t>{4, 2, 1, 0, 0, 1, 0, 0}));
  const double h = -(0.5 * std::log(0.5) + 0.25 * std::log(0.25) + 2 * 0.125 * std::log(0.125));
  EXPECT_NEAR(s.perplexity, std::exp(h), 1e-12);
  EXPECT_EQ(s.min_count, 0);
  EXPECT_EQ(s.max_count, 4);
  EXPECT_EQ(s.median_count, 0.5);
  ASSERT_GE(s.most_used.size(), 2u);
  EXPECT_EQ(s.most_used[0], (std::pair<std::int64_t, std::int64_t>{0, 4}));
  EXPECT_EQ(s.most_used[1], (std::pair<std::int64_t, std::int64_t>{1, 2}));
}

// ------------------------------------------------------------------ FSQ

TEST(Fsq, MatchesTheFormulaOfThePaper) {
  const Quantizer q = Quantizer::fsq({8, 5, 5, 5});
  EXPECT_EQ(q.codes(), 1000);
  const Tensor z = prepare_input(q, fixture("fsq_z"), "z");
  EncodeOptions opt;
  opt.quantized = opt.distances = true;
  const Encoded e = encode(q, z, opt);
  const Tensor want = fixture("fsq_I"), codes = fixture("fsq_codes");
  EXPECT_EQ(e.indices.shape(), (Shape{256}));
  EXPECT_EQ(std::memcmp(e.indices.bytes(), want.bytes(), want.nbytes()), 0);
  const Tensor back = decode(q, e.indices, "i");
  for (std::int64_t i = 0; i < codes.numel(); ++i) {  // == : numpy's codes have -0 where ours have 0
    ASSERT_EQ(e.quantized.data<float>()[i], codes.data<float>()[i]) << i;
    ASSERT_EQ(back.data<float>()[i], codes.data<float>()[i]) << i;
  }
  EXPECT_EQ(std::memcmp(back.bytes(), e.quantized.bytes(), back.nbytes()), 0);
}

TEST(Fsq, MixedRadixConventionAndEvenLevels) {
  const Quantizer q = Quantizer::fsq({4, 3});
  std::vector<std::int64_t> all(12);
  std::iota(all.begin(), all.end(), 0);
  const Tensor codes = decode(q, Tensor::from_vector<std::int64_t>({12}, all), "i");
  // Channel 0 (4 levels: -1, -0.5, 0, 0.5) is the least significant digit.
  const std::vector<float> want = {-1, -1, -0.5f, -1, 0, -1, 0.5f, -1, -1, 0, -0.5f, 0,
                                   0,  0,  0.5f,  0,  -1, 1, -0.5f, 1,  0, 1, 0.5f,  1};
  EXPECT_EQ(std::vector<float>(codes.data<float>(), codes.data<float>() + 24), want);
  // Encoding the inverse of the bound at each code's value gives the index back.
  std::vector<float> z(24);
  for (int i = 0; i < 12; ++i)
    for (int c = 0; c < 2; ++c) {
      const double levels = c == 0 ? 4 : 3, h = (levels - 1) * (1 - 1e-3) / 2, o = c == 0 ? 0.5 : 0.0;
      // The code's rounded value, just inside the open range of the bound.
      const double bounded = std::clamp(want[i * 2 + c] * std::floor(levels / 2), -h - o + 1e-3, h - o - 1e-3);
      z[i * 2 + c] = static_cast<float>(std::atanh((bounded + o) / h) - std::tan(o / h));
    }
  const Encoded e = encode(q, prepare_input(q, Tensor::from_vector<float>({12, 2}, z), "z"));
  EXPECT_EQ(std::vector<std::int64_t>(e.indices.data<std::int64_t>(), e.indices.data<std::int64_t>() + 12), all);
  // Large inputs saturate at the ends.
  const Encoded big = encode(q, prepare_input(q, Tensor::from_vector<float>({2, 2}, {-1e30f, -50, 1e30f, 50}), "z"));
  EXPECT_EQ(big.indices.data<std::int64_t>()[0], 0);
  EXPECT_EQ(big.indices.data<std::int64_t>()[1], 11);
  usage_error([] { parse_levels("8,1"); });
  usage_error([] { parse_levels("8,,5"); });
  usage_error([] { parse_levels("8,5x"); });
  EXPECT_EQ(parse_levels("8,5,5,5"), (std::vector<std::int64_t>{8, 5, 5, 5}));
  usage_error([] { Quantizer::fsq(std::vector<std::int64_t>(20, 65536)); });
  const std::string m = data_error([&] { decode(q, Tensor::from_vector<std::int64_t>({1}, {12}), "i.npy"); });
  EXPECT_NE(m.find("12 codes"), std::string::npos) << m;
}

// ------------------------------------------------------------------ k-means

namespace {

double inertia_of(const Tensor& x, const std::vector<float>& codes, std::int64_t k) {
  const std::int64_t n = x.dim(0), d = x.dim(1);
  double s = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto ex = exact_l2(x.data<float>() + i * d, codes.data(), k, d);
    s += *std::min_element(ex.begin(), ex.end());
  }
  return s;
}

}  // namespace

TEST(Kmeans, InertiaWithinOnePercentOfFaiss) {
  const auto report = kmeans_report();
  for (const std::string name : {"blobs", "normal"}) {
    const Tensor x = fixture("kmeans_" + name + "_x");
    KmeansOptions opt;
    opt.k = report["k"];
    opt.iters = report["iters"];
    const KmeansResult r = kmeans(x.data<float>(), x.dim(0), x.dim(1), x.dim(1), 0, opt);
    const double ours = inertia_of(x, r.codes, opt.k), faiss = report[name]["faiss_inertia"];
    EXPECT_NEAR(r.inertia.back(), ours, 1e-6 * ours) << "the reported inertia is that of the codes";
    std::cout << "[ info ] k-means " << name << ": inertia " << ours << " vs faiss " << faiss << " (ratio "
              << ours / faiss << ")" << std::endl;
    EXPECT_LE(ours, 1.01 * faiss) << name;
    // From the same initial codes, Lloyd iteration for Lloyd iteration.
    const Tensor init = fixture("kmeans_" + name + "_init");
    opt.init = Init::given;
    opt.init_codes = init.data<float>();
    const KmeansResult g = kmeans(x.data<float>(), x.dim(0), x.dim(1), x.dim(1), 0, opt);
    const double same = report[name]["faiss_from_init_inertia"];
    std::cout << "[ info ] k-means " << name << " from the same initial codes: " << g.inertia.back() << " vs faiss "
              << same << std::endl;
    EXPECT_NEAR(g.inertia.back(), same, 1e-5 * same) << name;
  }
}

TEST(Kmeans, DeterministicForASeedAndIndependentOfThreads) {
  const Tensor x = fixture("kmeans_normal_x");
  for (const Init init : {Init::kmeanspp, Init::random}) {
    KmeansOptions opt;
    opt.k = 40;
    opt.iters = 10;
    opt.seed = 7;
    opt.init = init;
    std::vector<float> first;
    for (int t : {1, 2, 3, 1}) {
      Threads threads(t);
      const KmeansResult r = kmeans(x.data<float>(), x.dim(0), x.dim(1), x.dim(1), 0, opt);
      if (first.empty()) first = r.codes;
      EXPECT_EQ(r.codes, first) << t << " threads";
    }
    opt.seed = 8;
    EXPECT_NE(kmeans(x.data<float>(), x.dim(0), x.dim(1), x.dim(1), 0, opt).codes, first);
  }
}

TEST(Kmeans, LloydLowersTheInertiaAndStopsWhenConverged) {
  const Tensor x = fixture("kmeans_normal_x");
  KmeansOptions opt;
  opt.k = 30;
  opt.iters = 200;
  const KmeansResult r = kmeans(x.data<float>(), x.dim(0), x.dim(1), x.dim(1), 0, opt);
  for (std::size_t i = 1; i < r.inertia.size(); ++i) EXPECT_LE(r.inertia[i], r.inertia[i - 1] * (1 + 1e-6)) << i;
  EXPECT_LT(r.updates, 200) << "no assignment changed before 200 iterations";
  // --tol stops earlier.
  EXPECT_GT(r.updates, 5);
  opt.tol = 0.01;
  EXPECT_LT(kmeans(x.data<float>(), x.dim(0), x.dim(1), x.dim(1), 0, opt).updates, r.updates);
  // The assignment returned is the nearest code.
  FlatIndex ix(r.codes.data(), 30, x.dim(1), Metric::l2);
  EXPECT_EQ(search(ix, x.data<float>(), x.dim(0)), r.assign);
}

TEST(Kmeans, PlusPlusPicksDistinctVectors) {
  // With K = N every vector becomes a code: one chosen already is at D^2 = 0.
  const std::int64_t n = 300, d = 4;
  const auto x = normals(n * d, 41);
  KmeansOptions opt;
  opt.k = n;
  opt.iters = 0;
  const KmeansResult r = kmeans(x.data(), n, d, d, 0, opt);
  std::vector<std::vector<float>> rows, codes;
  for (std::int64_t i = 0; i < n; ++i) {
    rows.emplace_back(x.begin() + i * d, x.begin() + (i + 1) * d);
    codes.emplace_back(r.codes.begin() + i * d, r.codes.begin() + (i + 1) * d);
  }
  std::sort(rows.begin(), rows.end());
  std::sort(codes.begin(), codes.end());
  EXPECT_EQ(rows, codes);
  EXPECT_EQ(r.inertia.back(), 0);
}

TEST(Kmeans, EmptyClustersAreSplitFromTheLargest) {
  // Two blobs; one initial code far away gets no vector at the first assignment.
  const std::int64_t n = 400, d = 2;
  auto x = normals(n * d, 51, 0.3f);
  for (std::int64_t i = n / 2; i < n; ++i) x[i * d] += 10;
  const std::vector<float> init = {0, 0, 10, 0, 1000, 1000};
  KmeansOptions opt;
  opt.k = 3;
  opt.iters = 20;
  opt.init = Init::given;
  opt.init_codes = init.data();
  const KmeansResult r = kmeans(x.data(), n, d, d, 0, opt);
  EXPECT_GE(r.reseeded, 1);
  std::vector<std::int64_t> count(3);
  for (std::int64_t a : r.assign) ++count[a];
  for (int j = 0; j < 3; ++j) EXPECT_GT(count[j], 0) << "code " << j;
  EXPECT_LT(std::abs(r.codes[4]), 20) << "the far code moved into the data";
}

TEST(Kmeans, SphericalCodesAreUnitVectors) {
  const Tensor x = fixture("search_random_x");
  KmeansOptions opt;
  opt.k = 8;
  opt.metric = Metric::cosine;
  const KmeansResult r = kmeans(x.data<float>(), x.dim(0), x.dim(1), x.dim(1), 0, opt);
  for (std::int64_t j = 0; j < 8; ++j) EXPECT_NEAR(sq_norm(r.codes.data() + j * 16, 16), 1, 1e-5);
  EXPECT_LT(r.inertia.back(), r.inertia.front());
  EXPECT_LT(r.inertia.back(), 2.0 * x.dim(0));  // 2 - 2 cos summed: below the cosine-0 level
}

TEST(Kmeans, ResidualAndProductTraining) {
  const Tensor x = prepare_training_input(fixture("pq_x"), "x");
  KmeansOptions opt;
  opt.k = 8;
  const TrainResult rq = train_residual(x, 3, opt);
  EXPECT_EQ(rq.codebook.shape(), (Shape{3, 8, 16}));
  for (int l = 1; l < 3; ++l) EXPECT_LT(rq.stages[l].inertia.back(), rq.stages[l - 1].inertia.back());
  // Encoding with the trained codebook gives the residual error of the last stage.
  const Quantizer q = make_quantizer(rq.codebook, true, 0, Metric::l2, "rq");
  EncodeOptions eo;
  eo.distances = true;
  const Encoded e = encode(q, x, eo);
  double total = 0;
  for (std::int64_t i = 0; i < x.dim(0); ++i) total += e.distances.data<float>()[i];
  EXPECT_NEAR(total, rq.stages[2].inertia.back(), 1e-4 * total);
  const TrainResult pq = train_product(x, 4, opt);
  EXPECT_EQ(pq.codebook.shape(), (Shape{4, 8, 4}));
  data_error([&] { train_product(x, 3, opt); });
  usage_error([&] {
    KmeansOptions c = opt;
    c.metric = Metric::cosine;
    train_residual(x, 2, c);
  });
}

TEST(Kmeans, BadInput) {
  const Tensor x = prepare_training_input(fixture("pq_x"), "x");
  KmeansOptions opt;
  opt.k = 301;
  const std::string m = data_error([&] { train_flat(x, opt); });
  EXPECT_NE(m.find("301 codes from 300 vectors"), std::string::npos) << m;
  Tensor bad = fixture("pq_x");
  bad.data<float>()[3 * 16 + 2] = std::nanf("");
  const std::string n = data_error([&] { prepare_training_input(bad, "x.npy"); });
  EXPECT_NE(n.find("vector [3] has a NaN value at element 2 (x.npy)"), std::string::npos) << n;
  opt.k = 4;
  const Tensor init(DType::f4, {5, 16});
  data_error([&] { train_flat(x, opt, &init); });
}

TEST(Kmeans, SampleRowsIsASeededSubset) {
  const auto a = sample_rows(10000, 500, 3);
  EXPECT_EQ(a.size(), 500u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::adjacent_find(a.begin(), a.end()), a.end());
  {
    Threads t(1);
    EXPECT_EQ(sample_rows(10000, 500, 3), a);
  }
  EXPECT_NE(sample_rows(10000, 500, 4), a);
  EXPECT_EQ(sample_rows(10, 20, 3).size(), 10u);
  // Roughly uniform: about half from each half.
  const auto low = std::count_if(a.begin(), a.end(), [](std::int64_t i) { return i < 5000; });
  EXPECT_NEAR(static_cast<double>(low), 250, 60);
}

// ---- k-means as a map over shards and a reduce ----

namespace {

// Lloyd's iterations as a map-reduce driver runs them: the statistics of
// `shards` contiguous shards (as tensor-split cuts them), merged last shard
// first, then update_codes; stops when an update changes no bit.
std::vector<float> map_reduce(const std::vector<float>& x, std::int64_t n, std::int64_t d, std::vector<float> codes,
                              std::int64_t k, Metric metric, std::int64_t iters, int shards) {
  for (std::int64_t it = 0; it < iters; ++it) {
    std::vector<ClusterStats> parts;
    for (int s = 0; s < shards; ++s) {
      const std::int64_t b = n * s / shards, e = n * (s + 1) / shards;
      parts.push_back(cluster_stats(x.data() + b * d, e - b, d, codes.data(), k, d, metric));
    }
    ClusterStats all(k, d, metric);
    for (auto p = parts.rbegin(); p != parts.rend(); ++p) all.merge(*p);
    std::vector<float> next = update_codes(all, codes.data(), it, default_seed, 0).codes;
    if (next == codes) break;
    codes = std::move(next);
  }
  return codes;
}

}  // namespace

TEST(KmeansMapReduce, ShardsGiveTheSingleRunBitForBit) {
  // Three blobs and a code far from every vector (in direction too, for
  // cosine): an empty cluster is split.
  const std::int64_t n = 3001, d = 5, k = 6, iters = 8;
  auto x = normals(n * d, 91);
  for (std::int64_t i = 0; i < n; ++i) x[i * d] += 6 + static_cast<float>(i % 3) * 4;
  std::vector<float> init(x.begin(), x.begin() + k * d);
  for (std::int64_t c = 0; c < d; ++c) init[static_cast<std::size_t>(2 * d + c)] = c == 0 ? -500 : 0;
  for (const Metric metric : {Metric::l2, Metric::cosine}) {
    KmeansOptions opt;
    opt.k = k;
    opt.iters = iters;
    opt.metric = metric;
    opt.init = Init::given;
    opt.init_codes = init.data();
    const KmeansResult single = kmeans(x.data(), n, d, d, 0, opt);
    EXPECT_GE(single.reseeded, 1) << metric_name(metric);
    for (int shards : {1, 3, 4, 7}) {
      Threads t(shards % 2 + 1);
      EXPECT_EQ(map_reduce(x, n, d, init, k, metric, iters, shards), single.codes)
          << metric_name(metric) << ", " << shards << " shards";
    }
  }
}

TEST(KmeansMapReduce, StatsAreExactAndMergeInAnyOrder) {
  const std::int64_t n = 1000, d = 3, k = 4;
  const auto x = normals(n * d, 92, 1e3f);
  const std::vector<float> codes(x.begin(), x.begin() + k * d);
  const ClusterStats whole = cluster_stats(x.data(), n, d, codes.data(), k, d, Metric::l2);
  ClusterStats ab(k, d, Metric::l2), ba(k, d, Metric::l2);
  const ClusterStats a = cluster_stats(x.data(), 400, d, codes.data(), k, d, Metric::l2);
  const ClusterStats b = cluster_stats(x.data() + 400 * d, 600, d, codes.data(), k, d, Metric::l2);
  ab.merge(a);
  ab.merge(b);
  ba.merge(b);
  ba.merge(a);
  for (const ClusterStats* s : {&ab, &ba}) {
    EXPECT_EQ(s->vectors, n);
    EXPECT_EQ(s->count, whole.count);
    for (std::size_t i = 0; i < whole.sum.size(); ++i) EXPECT_EQ(s->sum[i].to_digits(), whole.sum[i].to_digits());
    EXPECT_EQ(s->inertia.to_digits(), whole.inertia.to_digits());
  }
  // The sums are those of the members, and the inertia that of the search.
  std::vector<std::int64_t> assign(n);
  std::vector<float> dist(n);
  FlatIndex(codes.data(), k, d, Metric::l2).search(x.data(), n, d, 1, assign.data(), 1, dist.data(), 1);
  double total = 0;
  std::vector<double> sum0(d);
  for (std::int64_t i = 0; i < n; ++i) {
    total += dist[i];
    if (assign[i] == 0)
      for (std::int64_t c = 0; c < d; ++c) sum0[c] += x[i * d + c];
  }
  EXPECT_NEAR(whole.inertia.to_double(), total, 1e-9 * total);
  for (std::int64_t c = 0; c < d; ++c) EXPECT_NEAR(whole.sum[c].to_double(), sum0[c], 1e-6 * std::abs(sum0[c]) + 1e-3);
}

TEST(KmeansMapReduce, StatsRoundTripThroughTensorsAndRefuseCorruption) {
  const std::int64_t n = 200, d = 4, k = 3;
  const auto x = normals(n * d, 93);
  const std::vector<float> codes(x.begin(), x.begin() + k * d);
  const ClusterStats s = cluster_stats(x.data(), n, d, codes.data(), k, d, Metric::cosine);
  const std::vector<Tensor> t = stats_to_tensors(s);
  ASSERT_EQ(t.size(), static_cast<std::size_t>(stats_tensors));
  EXPECT_EQ(t[0].shape(), (Shape{8}));
  EXPECT_EQ(t[2].shape(), (Shape{k, d, ExactSum::width}));
  const ClusterStats back = stats_from_tensors(t, "s.npy");
  EXPECT_EQ(back.metric, Metric::cosine);
  EXPECT_EQ(back.count, s.count);
  EXPECT_EQ(back.vectors, n);
  for (std::size_t i = 0; i < s.sum.size(); ++i) EXPECT_EQ(back.sum[i].to_digits(), s.sum[i].to_digits());
  EXPECT_EQ(update_codes(back, codes.data(), 0, 1, 0).codes, update_codes(s, codes.data(), 0, 1, 0).codes);

  auto corrupt = [&](int tensor, std::int64_t index, std::int64_t value) {
    std::vector<Tensor> c = t;
    c[static_cast<std::size_t>(tensor)].data<std::int64_t>()[index] = value;
    return data_error([&] { stats_from_tensors(c, "s.npy"); });
  };
  EXPECT_NE(corrupt(0, 0, 2).find("version 2"), std::string::npos);
  EXPECT_NE(corrupt(0, 3, 12).find("header"), std::string::npos);
  EXPECT_NE(corrupt(1, 0, s.count[0] + 1).find("counts"), std::string::npos);
  EXPECT_NE(corrupt(1, 1, -1).find("counts"), std::string::npos);
  EXPECT_NE(corrupt(2, 5, std::int64_t{1} << 32).find("sums"), std::string::npos);
  EXPECT_NE(corrupt(4, 0, std::int64_t{1} << 33).find("inertia"), std::string::npos);
  EXPECT_NE(corrupt(4, 1, t[4].data<std::int64_t>()[1] ^ 1).find("add up to the inertia"), std::string::npos);
  {
    std::vector<Tensor> moved = t;  // code 0's count moved to code 1: its sums are not zero
    std::int64_t* c = moved[1].data<std::int64_t>();
    c[1] += c[0];
    c[0] = 0;
    EXPECT_NE(data_error([&] { stats_from_tensors(moved, "s.npy"); }).find("code 0 has no vectors"), std::string::npos);
  }
  std::vector<Tensor> short_stream(t.begin(), t.end() - 1);
  EXPECT_NE(data_error([&] { stats_from_tensors(short_stream, "s.npy"); }).find("4 tensors"), std::string::npos);
  std::vector<Tensor> wrong = t;
  wrong[2] = Tensor(DType::f4, {k, d, ExactSum::width});
  EXPECT_NE(data_error([&] { stats_from_tensors(wrong, "s.npy"); }).find("float32"), std::string::npos);
  ClusterStats other(k + 1, d, Metric::cosine);
  data_error([&] { other.merge(s); });
}

TEST(KmeansMapReduce, ACodeMadeBySplittingCanBeSplitAgain) {
  // Codes 0 and 1 are empty, code 2 holds every vector: code 0 splits 2 and
  // gets half its count, the lowest index among the largest, so code 1 splits
  // code 0 in turn, with the spread code 0 took over from code 2.
  const std::int64_t n = 40, d = 2, k = 3;
  const auto x = normals(n * d, 94);
  const std::vector<float> codes = {100, 100, -100, 100, 0, 0};
  const ClusterStats s = cluster_stats(x.data(), n, d, codes.data(), k, d, Metric::l2);
  ASSERT_EQ(s.count, (std::vector<std::int64_t>{0, 0, n}));
  const CodeUpdate u = update_codes(s, codes.data(), 0, 5, 0);
  EXPECT_EQ(u.reseeded, 2);
  for (float v : u.codes) EXPECT_TRUE(std::isfinite(v));
  for (std::int64_t j = 0; j < k; ++j) EXPECT_LT(std::hypot(u.codes[j * d], u.codes[j * d + 1]), 2) << j;
  EXPECT_NE(u.codes[0], u.codes[2]);
  EXPECT_NE(u.codes[0], u.codes[4]);
}
