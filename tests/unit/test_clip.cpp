// clip-score's conventions against the PyTorch references of
// tests/fixtures/make_clip.py (1e-5, relative to max(1, |value|)), streamed
// reductions against the dense matrix, thread-count independence, and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nnkit/formats/npy.hpp"
#include "nnkit/ops/clip.hpp"
#include "nnkit/parallel.hpp"
#include "nnkit/rng.hpp"

using namespace nnkit;
using namespace nnkit::clip;

namespace {

const std::string dir = std::string(NNKIT_FIXTURES) + "/clip/";
constexpr double tol = 1e-5;

Tensor fixture(const std::string& name) {
  Input in = Input::open(dir + name + ".npy");
  return npy::read(in);
}

nlohmann::json fixture_json(const std::string& name) {
  std::ifstream f(dir + name + ".json");
  return nlohmann::json::parse(f);
}

Embeddings load(const std::string& name, bool normalize = true, int rank = 2) {
  Embeddings e = make_embeddings(fixture(name), name, rank);
  if (normalize) normalize_rows(e, false);
  return e;
}

std::vector<std::int64_t> indices(const std::string& name, std::int64_t limit) {
  const Tensor t = fixture(name);
  return make_indices(t, t.numel(), limit, name, "limit");
}

void expect_near(double got, double want, const std::string& what) {
  EXPECT_LE(std::abs(got - want), tol * std::max(1.0, std::abs(want))) << what << ": " << got << " vs " << want;
}

void expect_tensor_near(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  ASSERT_EQ(got.dtype(), DType::f4) << what;
  for (std::int64_t k = 0; k < want.numel(); ++k) {
    const double g = got.get(k), w = want.get(k);
    if (std::abs(g - w) > tol * std::max(1.0, std::abs(w))) {
      ADD_FAILURE() << what << ": element " << k << " is " << g << ", want " << w;
      return;
    }
  }
}

StreamOptions blocks(std::int64_t b) {
  StreamOptions o;
  o.block = b;
  return o;
}

// Random unit rows (a fixed seed): no near-ties at these sizes.
Embeddings random_rows(std::int64_t n, std::int64_t d, std::uint64_t seed, const std::string& name) {
  Tensor t(DType::f4, {n, d});
  fill_normal(seed, 0, t.data<float>(), n * d);
  Embeddings e = make_embeddings(std::move(t), name);
  normalize_rows(e, false);
  return e;
}

// Runs f and expects a data error whose message has every one of words.
template <class F>
void expect_data_error(F f, std::vector<std::string> words) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::data) << e.what();
    for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
  }
}

// Sets the thread count for one scope.
struct Threads {
  explicit Threads(int n) { set_threads(n); }
  ~Threads() { set_threads(0); }
};

}  // namespace

// ------------------------------------------------------------------ conventions vs PyTorch

TEST(ClipPairs, HesselMatchesThePaperCode) {
  const Tensor cos = pair_cosines(load("img"), load("txt"));
  expect_tensor_near(clip_scores(cos, 2.5), fixture("pairs_hessel"), "CLIPScore");
  // Three captions point away from their image: clamped to exactly 0.
  const Tensor s = clip_scores(cos, 2.5);
  EXPECT_EQ(std::count(s.data<float>(), s.data<float>() + s.numel(), 0.f), 3);
}

TEST(ClipPairs, Float16Input) {
  Embeddings img = load("img_f16");
  EXPECT_EQ(img.data.dtype(), DType::f4);
  expect_tensor_near(clip_scores(pair_cosines(img, load("txt")), 2.5), fixture("pairs_hessel_f16"), "float16");
}

TEST(ClipPairs, TorchmetricsPerPairAndClampedMean) {
  const Tensor tm = torchmetrics_scores(pair_cosines(load("img"), load("txt")));
  expect_tensor_near(tm, fixture("pairs_torchmetrics"), "100 cos");
  const auto want = fixture_json("summary")["torchmetrics"];
  const Summary s = summarize(tm, 200, 7, true);
  expect_near(s.mean, want["mean"], "mean");
  expect_near(s.std, want["std"], "std");
  // Every caption negated: the mean is negative and torchmetrics clamps it to 0.
  Embeddings neg = load("txt");
  for (float* x = neg.data.data<float>(); x != neg.data.data<float>() + neg.data.numel(); ++x) *x = -*x;
  EXPECT_EQ(summarize(torchmetrics_scores(pair_cosines(load("img"), neg)), 0, 0, true).mean, 0.0);
  EXPECT_LT(summarize(torchmetrics_scores(pair_cosines(load("img"), neg)), 0, 0, false).mean, 0.0);
}

TEST(ClipPairs, RefClipScore) {
  const Embeddings txt = load("txt");
  const Tensor clip = clip_scores(pair_cosines(load("img"), txt), 2.5);
  const Tensor best = best_reference_similarity(txt, load("refs", true, 3));
  expect_tensor_near(ref_clip_scores(clip, best), fixture("refclip"), "RefCLIPScore");
}

TEST(ClipPairs, HarmonicMeanEdges) {
  const Tensor c = Tensor::from_vector<float>({4}, {0, 0, 1, 2});
  const Tensor r = Tensor::from_vector<float>({4}, {0, 0.5f, -0.3f, 0.5f});
  const Tensor h = ref_clip_scores(c, r);
  EXPECT_EQ(h.get(0), 0);  // both 0: defined as 0, not 0/0
  EXPECT_EQ(h.get(1), 0);
  EXPECT_EQ(h.get(2), 0);  // a negative reference similarity is clamped at 0
  EXPECT_NEAR(h.get(3), 2 * 2 * 0.5 / 2.5, 1e-7);
}

TEST(ClipPairs, SummaryAndBootstrapMatchReference) {
  const auto want = fixture_json("summary");
  const Embeddings txt = load("txt");
  const Tensor clip = clip_scores(pair_cosines(load("img"), txt), 2.5);
  const Tensor ref = ref_clip_scores(clip, best_reference_similarity(txt, load("refs", true, 3)));
  for (const auto& [name, values, clamp] : {std::tuple{"hessel", clip, false},
                                            std::tuple{"refclip", ref, false},
                                            std::tuple{"torchmetrics", torchmetrics_scores(pair_cosines(load("img"), txt)), true}}) {
    const Summary s = summarize(values, 200, 7, clamp);
    const auto& w = want[name];
    EXPECT_EQ(s.n, w["n"].get<std::int64_t>());
    EXPECT_EQ(s.bootstrap, 200);
    expect_near(s.mean, w["mean"], std::string(name) + " mean");
    expect_near(s.std, w["std"], std::string(name) + " std");
    expect_near(s.ci_low, w["ci95"][0], std::string(name) + " ci95 low");
    expect_near(s.ci_high, w["ci95"][1], std::string(name) + " ci95 high");
  }
}

TEST(ClipPairs, BootstrapDependsOnSeedNotThreads) {
  const Tensor v = clip_scores(pair_cosines(load("img"), load("txt")), 2.5);
  Summary one, many;
  {
    Threads t(1);
    one = summarize(v, 301, 11, false);
  }
  {
    Threads t(3);
    many = summarize(v, 301, 11, false);
  }
  EXPECT_EQ(one.ci_low, many.ci_low);
  EXPECT_EQ(one.ci_high, many.ci_high);
  const Summary other = summarize(v, 301, 12, false);
  EXPECT_NE(one.ci_low, other.ci_low);
  EXPECT_LT(one.ci_low, one.mean);
  EXPECT_GT(one.ci_high, one.mean);
  EXPECT_EQ(summarize(v, 0, 11, false).bootstrap, 0);
}

TEST(ClipMatrix, CosinesAndRawDots) {
  expect_tensor_near(similarity_matrix(load("img"), load("txt_m"), 1.f, {}), fixture("matrix"), "cosines");
  expect_tensor_near(similarity_matrix(load("img", false), load("txt_m", false), 1.f, {}), fixture("matrix_raw"),
                     "--no-normalize");
}

TEST(ClipMatrix, ZeroShotProbabilitiesWithTemplates) {
  const Embeddings img = load("img"), txt = load("zs_txt");
  const Embeddings classes = class_embeddings(txt, 3, false);
  EXPECT_EQ(classes.rows(), 8);
  expect_tensor_near(zero_shot_probabilities(img, classes, 100.f, {}), fixture("zs_probs"), "T = 3");
  expect_tensor_near(zero_shot_probabilities(img, txt, 100.f, {}), fixture("zs_probs_t1"), "T = 1");
  // Rows sum to 1.
  const Tensor p = zero_shot_probabilities(img, classes, 100.f, {});
  double sum = 0;
  for (std::int64_t j = 0; j < 8; ++j) sum += p.get(j);
  EXPECT_NEAR(sum, 1.0, 1e-6);
}

TEST(ClipMatrix, SiglipProbabilities) {
  expect_tensor_near(siglip_probabilities(load("img"), load("txt_m"), 10.f, -5.f, {}), fixture("siglip"), "[N, M]");
  expect_tensor_near(siglip_pair_probabilities(load("img"), load("txt"), 10.f, -5.f), fixture("siglip_diag"),
                     "pairs");
}

TEST(ClipRanks, ZeroShotAccuracy) {
  const auto want = fixture_json("metrics")["zero_shot"];
  const Embeddings classes = class_embeddings(load("zs_txt"), 3, false);
  const Accuracy a = zero_shot_accuracy(load("img"), classes, indices("labels", 8), {});
  expect_near(a.top1, want["top1"], "top1");
  expect_near(a.top5, want["top5"], "top5");
  EXPECT_EQ(a.n, 40);
  EXPECT_EQ(a.classes, 8);
}

void expect_ranks_match(const RankSummary& got, const nlohmann::json& want, const std::string& what) {
  EXPECT_EQ(got.queries, want["queries"].get<std::int64_t>()) << what;
  for (const auto& [k, r] : got.recall) expect_near(r, want["recall@" + std::to_string(k)], what + " recall");
  expect_near(got.median_rank, want["median_rank"], what + " median rank");
  expect_near(got.mrr, want["mrr"], what + " mrr");
}

TEST(ClipRanks, RetrievalWithSeveralCaptionsPerImage) {
  const auto want = fixture_json("metrics")["retrieval_caps"];
  const Embeddings img = load("img"), caps = load("caps");
  for (std::int64_t b : {512, 16, 7}) {
    const RetrievalRanks r = retrieval_ranks(img, caps, indices("text_image", 40), blocks(b));
    // Images 38 and 39 have no caption: not queries.
    EXPECT_EQ(r.image_to_text[38], 0);
    EXPECT_EQ(r.image_to_text[39], 0);
    expect_ranks_match(summarize_ranks(r.image_to_text, {1, 5, 10}), want["image_to_text"], "image_to_text");
    expect_ranks_match(summarize_ranks(r.text_to_image, {1, 5, 10}), want["text_to_image"], "text_to_image");
  }
}

TEST(ClipRanks, RetrievalPairByPair) {
  const auto want = fixture_json("metrics")["retrieval_pairs"];
  std::vector<std::int64_t> same(40);
  for (std::int64_t i = 0; i < 40; ++i) same[i] = i;
  const RetrievalRanks r = retrieval_ranks(load("img"), load("txt"), same, {});
  expect_ranks_match(summarize_ranks(r.image_to_text, {1, 5, 10}), want["image_to_text"], "image_to_text");
  expect_ranks_match(summarize_ranks(r.text_to_image, {1, 5, 10}), want["text_to_image"], "text_to_image");
}

TEST(ClipRanks, SummaryOfRanks) {
  const RankSummary s = summarize_ranks({0, 1, 3, 2, 10}, {1, 2, 5});
  EXPECT_EQ(s.queries, 4);  // rank 0: no positive, not a query
  EXPECT_DOUBLE_EQ(s.recall[0].second, 0.25);
  EXPECT_DOUBLE_EQ(s.recall[1].second, 0.5);
  EXPECT_DOUBLE_EQ(s.recall[2].second, 0.75);
  EXPECT_DOUBLE_EQ(s.median_rank, 2.5);
  EXPECT_DOUBLE_EQ(s.mrr, (1 + 1.0 / 3 + 0.5 + 0.1) / 4);
  EXPECT_DOUBLE_EQ(summarize_ranks({4, 1, 9}, {1}).median_rank, 4);
}

TEST(ClipRanks, TiesCountAgainstTheQuery) {
  // Two identical texts: for image 0 the duplicate of its caption ties it.
  Tensor img = Tensor::from_vector<float>({2, 2}, {1, 0, 0, 1});
  Tensor txt = Tensor::from_vector<float>({3, 2}, {1, 0, 1, 0, 0, 1});
  const RetrievalRanks r = retrieval_ranks(make_embeddings(img, "img"), make_embeddings(txt, "txt"), {0, 1, 1}, {});
  EXPECT_EQ(r.image_to_text[0], 2);  // text 1 (not its caption) ties text 0
  EXPECT_EQ(r.image_to_text[1], 1);  // text 2 is best; text 1 is its own caption too
  EXPECT_EQ(r.text_to_image[0], 1);
  EXPECT_EQ(r.text_to_image[1], 2);  // text 1 belongs to image 1 but is image 0's exact match
}

TEST(ClipLoss, ClipAndSiglipMatchOpenClip) {
  const auto want = fixture_json("metrics");
  const ContrastiveLoss l = clip_loss(load("img"), load("txt"), 100.f, {});
  expect_near(l.loss, want["clip_loss"]["loss"], "clip loss");
  expect_near(l.image_to_text, want["clip_loss"]["image_to_text"], "clip loss i2t");
  expect_near(l.text_to_image, want["clip_loss"]["text_to_image"], "clip loss t2i");
  EXPECT_EQ(l.n, 40);
  expect_near(siglip_loss(load("img"), load("txt"), 10.f, -10.f, {}), want["siglip_loss"]["loss"], "siglip loss");
}

// ------------------------------------------------------------------ streaming == dense

namespace {

// Ranks by brute force over the dense matrix of the same tiling, with the
// thresholds the streamed pass uses.
std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> dense_ranks(const Embeddings& a, const Embeddings& b,
                                                                            const std::vector<std::int64_t>& owner,
                                                                            std::int64_t block) {
  const std::int64_t n = a.rows(), m = b.rows();
  const Tensor s = similarity_matrix(a, b, 1.f, blocks(block));
  const std::vector<float> pos = positive_similarities(a, b, owner);
  const float* x = s.data<float>();
  std::vector<std::int64_t> rows(n, 0), cols(m, 0);
  for (std::int64_t i = 0; i < n; ++i) {
    float best = -INFINITY;
    bool any = false;
    for (std::int64_t j = 0; j < m; ++j)
      if (owner[j] == i) best = std::max(best, pos[j]), any = true;
    if (!any) continue;
    rows[i] = 1;
    for (std::int64_t j = 0; j < m; ++j) rows[i] += owner[j] != i && x[i * m + j] >= best;
  }
  for (std::int64_t j = 0; j < m; ++j) {
    cols[j] = 1;
    for (std::int64_t i = 0; i < n; ++i) cols[j] += i != owner[j] && x[i * m + j] >= pos[j];
  }
  return {rows, cols};
}

}  // namespace

TEST(ClipStreaming, RanksEqualTheDenseComputation) {
  const Embeddings a = random_rows(300, 24, 1, "a"), b = random_rows(517, 24, 2, "b");
  std::vector<std::int64_t> owner(517);
  for (std::int64_t j = 0; j < 517; ++j) owner[j] = (j * 7919) % 290;  // rows 290.. have no caption
  const RetrievalRanks ref = retrieval_ranks(a, b, owner, blocks(512));
  for (std::int64_t block : {3, 7, 64, 100, 512, 4096}) {
    const RetrievalRanks r = retrieval_ranks(a, b, owner, blocks(block));
    const auto [rows, cols] = dense_ranks(a, b, owner, block);
    EXPECT_EQ(r.image_to_text, rows) << "block " << block;
    EXPECT_EQ(r.text_to_image, cols) << "block " << block;
    // Without near-ties the tiling does not matter either.
    EXPECT_EQ(r.image_to_text, ref.image_to_text) << "block " << block;
    EXPECT_EQ(r.text_to_image, ref.text_to_image) << "block " << block;
  }
}

TEST(ClipStreaming, AccuracyEqualsTheDenseComputation) {
  const Embeddings img = random_rows(333, 16, 3, "img"), classes = random_rows(37, 16, 4, "classes");
  std::vector<std::int64_t> labels(333);
  for (std::int64_t i = 0; i < 333; ++i) labels[i] = (i * 13) % 37;
  const Tensor p = zero_shot_probabilities(img, classes, 100.f, {});
  double top1 = 0, top5 = 0;
  for (std::int64_t i = 0; i < 333; ++i) {
    const float* row = p.data<float>() + i * 37;
    const auto better = std::count_if(row, row + 37, [&](float v) { return v > row[labels[i]]; });
    top1 += better < 1;
    top5 += better < 5;
  }
  for (std::int64_t block : {5, 37, 512}) {
    const Accuracy a = zero_shot_accuracy(img, classes, labels, blocks(block));
    EXPECT_DOUBLE_EQ(a.top1, top1 / 333) << block;
    EXPECT_DOUBLE_EQ(a.top5, top5 / 333) << block;
  }
}

TEST(ClipStreaming, LossesEqualTheDenseComputation) {
  const Embeddings a = random_rows(210, 20, 5, "a"), b = random_rows(210, 20, 6, "b");
  const std::int64_t n = 210;
  for (std::int64_t block : {9, 64, 512}) {
    const Tensor s = similarity_matrix(a, b, 50.f, blocks(block));
    const float* x = s.data<float>();
    double i2t = 0, t2i = 0, sig = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      double rs = 0, cs = 0;
      for (std::int64_t j = 0; j < n; ++j) {
        rs += std::exp(static_cast<double>(x[i * n + j]));
        cs += std::exp(static_cast<double>(x[j * n + i]));
      }
      i2t += std::log(rs) - x[i * n + i];
      t2i += std::log(cs) - x[i * n + i];
    }
    const Tensor s2 = similarity_matrix(a, b, 3.f, blocks(block));
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        const double z = i == j ? 1 : -1, logit = s2.data<float>()[i * n + j] - 2.0;
        sig += std::log1p(std::exp(-z * logit));
      }
    const ContrastiveLoss l = clip_loss(a, b, 50.f, blocks(block));
    EXPECT_NEAR(l.image_to_text, i2t / n, 1e-12 * i2t);
    EXPECT_NEAR(l.text_to_image, t2i / n, 1e-12 * t2i);
    EXPECT_NEAR(siglip_loss(a, b, 3.f, -2.f, blocks(block)), sig / n, 1e-12 * sig);
  }
}

TEST(ClipStreaming, LossesSurviveAWideLogitRange) {
  // Unnormalised rows: logits spread over more than 600 nats take the careful path.
  Tensor ta = Tensor::from_vector<float>({3, 2}, {40, 0, 0, 1, -30, 0});
  Tensor tb = Tensor::from_vector<float>({3, 2}, {30, 0, 0, 2, 1, 1});
  const Embeddings a = make_embeddings(ta, "a"), b = make_embeddings(tb, "b");
  const ContrastiveLoss l = clip_loss(a, b, 1.f, blocks(2));
  // Rows: [1200, 0, 40], [0, 2, 1], [-900, 0, -30]; columns of the same.
  const double i2t = ((1200 + std::log1p(std::exp(-1160.0))) - 1200 + (2 + std::log(1 + std::exp(-2.0) + std::exp(-1.0))) - 2 +
                      std::log(std::exp(-900.0) + 1 + std::exp(-30.0)) + 30) / 3;
  EXPECT_NEAR(l.image_to_text, i2t, 1e-9);
  EXPECT_TRUE(std::isfinite(l.text_to_image));
}

TEST(ClipStreaming, ValuesDoNotDependOnThreads) {
  const Embeddings a = random_rows(700, 32, 7, "a"), b = random_rows(650, 32, 8, "b");
  std::vector<std::int64_t> owner(650);
  for (std::int64_t j = 0; j < 650; ++j) owner[j] = j % 700;
  Tensor m1, m4;
  RetrievalRanks r1, r4;
  {
    Threads t(1);
    m1 = similarity_matrix(a, b, 1.f, blocks(128));
    r1 = retrieval_ranks(a, b, owner, blocks(128));
  }
  {
    Threads t(4);
    m4 = similarity_matrix(a, b, 1.f, blocks(128));
    r4 = retrieval_ranks(a, b, owner, blocks(128));
  }
  EXPECT_EQ(0, std::memcmp(m1.bytes(), m4.bytes(), m1.nbytes()));
  EXPECT_EQ(r1.image_to_text, r4.image_to_text);
  EXPECT_EQ(r1.text_to_image, r4.text_to_image);
}

TEST(ClipStreaming, ProgressCountsEveryTile) {
  const Embeddings a = random_rows(100, 8, 9, "a"), b = random_rows(70, 8, 10, "b");
  StreamOptions o = blocks(32);
  std::int64_t last = 0, total = 0, calls = 0;
  o.progress = [&](std::int64_t done, std::int64_t all) {
    ++calls;
    last = std::max(last, done);
    total = all;
  };
  similarity_matrix(a, b, 1.f, o);
  EXPECT_EQ(total, 4 * 3);
  EXPECT_EQ(last, total);
  EXPECT_EQ(calls, total);
}

// ------------------------------------------------------------------ sharded retrieval

namespace {

// Rows of small whole numbers (many exact ties), some repeated outright.
Embeddings tied_rows(std::int64_t n, std::int64_t d, std::uint64_t seed, const std::string& name) {
  Tensor t(DType::f4, {n, d});
  fill_uniform(seed, 0, t.data<float>(), n * d);
  float* x = t.data<float>();
  for (std::int64_t k = 0; k < n * d; ++k) x[k] = std::round(4 * x[k] - 2);
  for (std::int64_t i = 0; i < n; ++i) x[i * d] = x[i * d] == 0 ? 1 : x[i * d];  // no zero row
  for (std::int64_t i = 10; i < n; i += 9) std::copy(x + (i - 10) * d, x + (i - 9) * d, x + i * d);
  Embeddings e = make_embeddings(std::move(t), name);
  normalize_rows(e, false);
  return e;
}

// Shards 0..n-1 of the run, in the scrambled order 1, 0, n-1, n-2, ..., 2.
std::vector<RetrievalShard> shards_of(const Embeddings& img, const Embeddings& txt,
                                      const std::vector<std::int64_t>& owner, std::int64_t n, std::int64_t block) {
  std::vector<RetrievalShard> out;
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t index = (n + 1 - k) % n;
    out.push_back(retrieval_shard(img, txt, owner, {index, n}, blocks(block)));
    out.back().name = "STATE (s" + std::to_string(index) + ")";
  }
  return out;
}

struct ShardedRun {
  Embeddings img = tied_rows(230, 6, 21, "img"), txt = tied_rows(410, 6, 22, "txt");
  std::vector<std::int64_t> owner;
  ShardedRun() {
    for (std::int64_t j = 0; j < 410; ++j) owner.push_back((j * 37) % 200);  // images 200.. have no caption
  }
};

}  // namespace

TEST(ClipSharding, MergedShardsEqualTheWholeRunExactly) {
  const ShardedRun run;
  for (std::int64_t block : {7, 64}) {
    const RetrievalRanks whole = retrieval_ranks(run.img, run.txt, run.owner, blocks(block));
    for (std::int64_t n = 1; n <= 5; ++n) {
      const RetrievalRanks merged = merge_retrieval(shards_of(run.img, run.txt, run.owner, n, block));
      EXPECT_EQ(merged.image_to_text, whole.image_to_text) << "block " << block << ", " << n << " shards";
      EXPECT_EQ(merged.text_to_image, whole.text_to_image) << "block " << block << ", " << n << " shards";
    }
  }
}

TEST(ClipSharding, ShardsCoverWholeRowBlocks) {
  const ShardedRun run;
  // 230 rows in blocks of 64: 4 row blocks, so of 5 shards one is empty.
  const std::vector<RetrievalShard> s = shards_of(run.img, run.txt, run.owner, 5, 64);
  std::int64_t empty = 0;
  for (const RetrievalShard& x : s) {
    EXPECT_EQ(static_cast<std::int64_t>(x.text_competitors.size()), 410);
    if (x.image_to_text.empty()) {
      ++empty;
      continue;
    }
    EXPECT_EQ(x.row_begin % 64, 0);
    EXPECT_TRUE(x.row_begin + static_cast<std::int64_t>(x.image_to_text.size()) == 230 ||
                x.image_to_text.size() % 64 == 0);
  }
  EXPECT_EQ(empty, 1);
  EXPECT_EQ(row_block_count(230, 64), 4);
}

TEST(ClipSharding, StateRoundTrips) {
  const ShardedRun run;
  const RetrievalShard s = retrieval_shard(run.img, run.txt, run.owner, {1, 3}, blocks(7));
  const RetrievalShard back = shard_from_state(shard_state(s), "STATE (x)");
  EXPECT_EQ(back.images, 230);
  EXPECT_EQ(back.texts, 410);
  EXPECT_EQ(back.block, 7);
  EXPECT_EQ(back.part.index, 1);
  EXPECT_EQ(back.part.count, 3);
  EXPECT_EQ(back.fingerprint, s.fingerprint);
  EXPECT_EQ(back.row_begin, s.row_begin);
  EXPECT_EQ(back.image_to_text, s.image_to_text);
  EXPECT_EQ(back.text_competitors, s.text_competitors);
  EXPECT_EQ(back.name, "STATE (x)");
}

TEST(ClipSharding, FingerprintSeesEveryInput) {
  const ShardedRun run;
  const std::uint64_t f = retrieval_fingerprint(run.img, run.txt, run.owner);
  EXPECT_EQ(f, retrieval_fingerprint(run.img, run.txt, run.owner));
  {
    Threads t(3);
    EXPECT_EQ(f, retrieval_fingerprint(run.img, run.txt, run.owner));
  }
  std::vector<std::int64_t> other = run.owner;
  other[5] = 0;
  EXPECT_NE(f, retrieval_fingerprint(run.img, run.txt, other));
  Embeddings txt = run.txt;  // a deep copy, changed in one value
  txt.row(409)[5] = std::nextafter(txt.row(409)[5], 2.f);
  EXPECT_NE(f, retrieval_fingerprint(run.img, txt, run.owner));
}

TEST(ClipSharding, MergeRefusesShardsThatDoNotMakeOneRun) {
  const ShardedRun run;
  std::vector<RetrievalShard> s = shards_of(run.img, run.txt, run.owner, 3, 7);
  // s holds shards 1, 0, 2.
  expect_data_error([&] { merge_retrieval({s[0], s[1]}); }, {"shard 2/3 is missing"});
  expect_data_error([&] { merge_retrieval({s[0], s[1], s[2], s[2]}); }, {"STATE (s2)", "both shard 2/3"});
  expect_data_error([&] { merge_retrieval({s[0], s[2]}); }, {"shard 0/3 is missing"});
  std::vector<std::int64_t> other = run.owner;
  other[0] = 199;
  RetrievalShard foreign = retrieval_shard(run.img, run.txt, other, {2, 3}, blocks(7));
  foreign.name = "STATE (foreign)";
  expect_data_error([&] { merge_retrieval({s[0], s[1], foreign}); }, {"STATE (foreign)", "different runs", "inputs"});
  RetrievalShard other_block = retrieval_shard(run.img, run.txt, run.owner, {2, 3}, blocks(8));
  other_block.name = "STATE (b8)";
  expect_data_error([&] { merge_retrieval({s[0], s[1], other_block}); }, {"STATE (b8)", "--block 8 vs 7"});
  expect_data_error([&] { merge_retrieval({s[0], s[1], shards_of(run.img, run.txt, run.owner, 4, 7)[0]}); },
                    {"shard counts 4 vs 3"});
  RetrievalShard damaged = s[2];
  damaged.text_competitors[3] = 1000;
  expect_data_error([&] { merge_retrieval({s[0], s[1], damaged}); }, {"STATE (s2)", "text count of 1000"});
  damaged = s[2];
  damaged.image_to_text.pop_back();
  expect_data_error([&] { merge_retrieval({s[0], s[1], damaged}); }, {"STATE (s2)", "rows"});
  // Counts that each fit their shard but not the run together.
  damaged = s[2];
  for (auto* x : {&s[0], &s[1], &damaged}) x->text_competitors[3] = static_cast<std::int64_t>(x->image_to_text.size());
  expect_data_error([&] { merge_retrieval({s[0], s[1], damaged}); }, {"text 3", "damaged"});
}

TEST(ClipSharding, StateReadingChecksTheLayout) {
  const ShardedRun run;
  const ShardState good = shard_state(retrieval_shard(run.img, run.txt, run.owner, {0, 2}, blocks(64)));
  ShardState st = good;
  st.metadata.erase("format");
  expect_data_error([&] { shard_from_state(st, "STATE (a)"); }, {"STATE (a)", "not a clip-score retrieval shard"});
  st = good;
  st.metadata["shard"] = "2";
  expect_data_error([&] { shard_from_state(st, "STATE (a)"); }, {"inconsistent", "shard 2/2"});
  st = good;
  st.metadata["texts"] = "-4";
  expect_data_error([&] { shard_from_state(st, "STATE (a)"); }, {"'texts'", "whole number"});
  st = good;
  st.tensors[1].tensor = Tensor(DType::f4, {410});
  expect_data_error([&] { shard_from_state(st, "STATE (a)"); }, {"text_to_image_count", "int64 [410]"});
  st = good;
  st.tensors.pop_back();
  expect_data_error([&] { shard_from_state(st, "STATE (a)"); }, {"no tensor 'text_to_image_count'"});
  st = good;
  st.metadata["fingerprint"] = "xyz";
  expect_data_error([&] { shard_from_state(st, "STATE (a)"); }, {"fingerprint"});
}

// ------------------------------------------------------------------ bad input

TEST(ClipBadInput, DimensionMismatch) {
  const Embeddings img = load("img");
  Tensor other(DType::f4, {5, 31});
  fill_normal(1, 0, other.data<float>(), 5 * 31);
  expect_data_error([&] { check_same_dim(img, make_embeddings(other, "TEXT_EMB (t.npy)")); },
                    {"TEXT_EMB (t.npy)", "D = 31", "D = 32"});
  expect_data_error([&] { similarity_matrix(img, make_embeddings(other, "t"), 1.f, {}); }, {"D = 31"});
  expect_data_error([&] { retrieval_ranks(img, make_embeddings(other, "t"), {0, 1, 2, 3, 4}, {}); }, {"D = 31"});
}

TEST(ClipBadInput, PairsNeedAsManyTextsAsImages) {
  expect_data_error([] { pair_cosines(load("img"), load("txt_m")); }, {"40", "56"});
  expect_data_error([] { clip_loss(load("img"), load("txt_m"), 100.f, {}); }, {"40", "56"});
  expect_data_error([] { siglip_loss(load("img"), load("txt_m"), 10.f, -10.f, {}); }, {"40", "56"});
  expect_data_error([] { best_reference_similarity(load("txt_m"), load("refs", true, 3)); }, {"56"});
}

TEST(ClipBadInput, ZeroVectors) {
  Tensor t = fixture("img");
  std::fill(t.data<float>() + 5 * 32, t.data<float>() + 6 * 32, 0.f);
  Embeddings e = make_embeddings(t, "IMAGE_EMB (img.npy)");
  expect_data_error([&] { normalize_rows(e, false); }, {"IMAGE_EMB (img.npy)", "row 5", "zero", "--allow-zero"});
  Embeddings ok = make_embeddings(t, "IMAGE_EMB (img.npy)");
  normalize_rows(ok, true);
  const Tensor cos = pair_cosines(ok, load("txt"));
  EXPECT_EQ(cos.get(5), 0.f);
  expect_tensor_near(clip_scores(cos, 2.5).reshaped({40}), [&] {
    Tensor want = fixture("pairs_hessel");
    want.data<float>()[5] = 0;
    return want;
  }(), "the other rows");
  // A reference row of zeros is named by its [n, r] position.
  Tensor r = fixture("refs");
  std::fill(r.data<float>() + (2 * 3 + 1) * 32, r.data<float>() + (2 * 3 + 2) * 32, 0.f);
  Embeddings re = make_embeddings(r, "REF_EMB", 3);
  expect_data_error([&] { normalize_rows(re, false); }, {"row [2, 1]"});
  // Templates that cancel out.
  Tensor z = Tensor::from_vector<float>({4, 2}, {1, 0, -1, 0, 0, 1, 0, 1});
  expect_data_error([&] { class_embeddings(make_embeddings(z, "zs"), 2, false); }, {"class 0", "zero"});
  EXPECT_EQ(class_embeddings(make_embeddings(z, "zs"), 2, true).row(0)[0], 0.f);
}

TEST(ClipBadInput, NanInfAndShapes) {
  Tensor t = fixture("txt");
  t.data<float>()[3 * 32 + 7] = NAN;
  expect_data_error([&] { make_embeddings(t, "TEXT_EMB (x)"); }, {"TEXT_EMB (x)", "[3, 7]", "NaN"});
  t.data<float>()[3 * 32 + 7] = -INFINITY;
  expect_data_error([&] { make_embeddings(t, "TEXT_EMB (x)"); }, {"[3, 7]", "infinite"});
  Tensor big = Tensor::from_vector<double>({1, 2}, {1e300, 1});
  expect_data_error([&] { make_embeddings(big, "x"); }, {"infinite"});
  Tensor half = Tensor::from_vector<float>({1, 2}, {NAN, 1}).astype(DType::f2);
  expect_data_error([&] { make_embeddings(half, "x"); }, {"NaN"});
  expect_data_error([] { make_embeddings(Tensor(DType::f4, {4}), "v"); }, {"2-D", "[4]"});
  expect_data_error([] { make_embeddings(Tensor(DType::f4, {4, 0}), "v"); }, {"D = 0"});
  expect_data_error([] { make_embeddings(Tensor(DType::b1, {4, 2}), "v"); }, {"booleans"});
  expect_data_error([] { make_embeddings(Tensor(DType::f4, {4, 2}), "r", 3); }, {"3-D"});
  // Whole numbers from a text file are fine.
  EXPECT_EQ(make_embeddings(Tensor::from_vector<std::int64_t>({1, 2}, {3, 4}), "i").row(0)[1], 4.f);
}

TEST(ClipBadInput, Indices) {
  const Tensor labels = Tensor::from_vector<std::int64_t>({3}, {0, 7, 2});
  EXPECT_EQ(make_indices(labels, 3, 8, "L", "classes"), (std::vector<std::int64_t>{0, 7, 2}));
  expect_data_error([&] { make_indices(labels, 3, 7, "LABELS (y)", "classes"); }, {"LABELS (y)", "entry 1", "7"});
  expect_data_error([&] { make_indices(labels, 4, 8, "L", "c"); }, {"4 indices", "[3]"});
  expect_data_error([] { make_indices(Tensor::from_vector<float>({2}, {1.5f, 0}), 2, 8, "L", "c"); }, {"1.5"});
  expect_data_error([] { make_indices(Tensor::from_vector<std::int64_t>({2}, {-1, 0}), 2, 8, "L", "c"); }, {"-1"});
  EXPECT_EQ(make_indices(Tensor::from_vector<float>({2}, {3, 0}), 2, 8, "L", "c")[0], 3);
  // One per line of a text file: a column.
  EXPECT_EQ(make_indices(Tensor::from_vector<std::int64_t>({2, 1}, {5, 0}), 2, 8, "L", "c")[0], 5);
  expect_data_error([] { make_indices(Tensor::from_vector<std::int64_t>({1, 2}, {5, 0}), 2, 8, "L", "c"); }, {"[1, 2]"});
  expect_data_error([] { class_embeddings(load("zs_txt"), 5, false); }, {"24 rows", "5 templates"});
  expect_data_error([] { summarize(Tensor(DType::f4, {0}), 0, 0, false); }, {"no values"});
  expect_data_error([] { summarize_ranks({0, 0}, {1}); }, {"no query"});
}
