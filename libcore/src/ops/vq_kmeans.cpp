// k-means for vq-train: k-means++ (exact D^2 sampling with batched distance
// updates), random or given initial codes, Lloyd iterations on the exact
// search of vq.cpp, empty clusters re-seeded by splitting the largest,
// spherical k-means for cosine, and residual and product codebooks.
//
// Determinism: every random number comes from SampleRng(seed, counter), with
// the counter naming what it is for (a stream), the stage and the item; the
// search is exact and the sums run in a fixed order, so the codes depend on the
// seed only, never on --threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "nnkit/error.hpp"
#include "nnkit/ops/vq.hpp"
#include "nnkit/parallel.hpp"

namespace nnkit::vq {

namespace {

enum class Stream : std::uint64_t { sample = 1, random_init = 2, plus_plus = 3, split = 4 };

// The counter of item i of a stream in a stage: 8 bits of stream, 16 of stage, 40 of item.
std::uint64_t counter(Stream s, std::int64_t stage, std::int64_t i) {
  return (static_cast<std::uint64_t>(s) << 56) | (static_cast<std::uint64_t>(stage & 0xffff) << 40) |
         (static_cast<std::uint64_t>(i) & ((std::uint64_t{1} << 40) - 1));
}

// The m items of [0, n) with the smallest random keys, in increasing order.
std::vector<std::int64_t> smallest_keys(std::int64_t n, std::int64_t m, std::uint64_t seed, Stream s,
                                        std::int64_t stage) {
  std::vector<std::pair<std::uint64_t, std::int64_t>> keys(static_cast<std::size_t>(n));
  parallel_for(n, 1 << 14, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      SampleRng r(seed, counter(s, stage, i));
      const std::uint64_t hi = r.bits();
      keys[static_cast<std::size_t>(i)] = {(hi << 32) | r.bits(), i};
    }
  });
  std::nth_element(keys.begin(), keys.begin() + m, keys.end());
  std::vector<std::int64_t> out(static_cast<std::size_t>(m));
  for (std::int64_t i = 0; i < m; ++i) out[static_cast<std::size_t>(i)] = keys[static_cast<std::size_t>(i)].second;
  std::sort(out.begin(), out.end());
  return out;
}

void normalize(float* v, std::int64_t d) {
  double s = 0;
  for (std::int64_t c = 0; c < d; ++c) s += static_cast<double>(v[c]) * v[c];
  if (s <= 0) return;
  const double inv = 1 / std::sqrt(s);
  for (std::int64_t c = 0; c < d; ++c) v[c] = static_cast<float>(v[c] * inv);
}

// k-means++ (Arthur and Vassilvitskii, 2007): the first centre uniformly, each
// next one with probability proportional to D(x)^2, the squared distance to
// the nearest centre so far. D^2 is refreshed for a batch of centres at a time
// by one exact search; in between, a vector is proposed from the stale D^2 and
// accepted with probability D_now^2 / D_stale^2 (rejection sampling), which
// draws exactly from D_now^2. After too many rejections the batch is folded
// in early. The proposals, acceptances and folds depend only on the seed.
void kmeans_plus_plus(const float* y, std::int64_t n, std::int64_t d, std::int64_t ldy, std::int64_t k,
                      std::uint64_t seed, std::int64_t stage, float* codes, const KmeansOptions& opt) {
  constexpr std::size_t kBatch = 64;
  constexpr int kMaxTrials = 32;
  auto row = [&](std::int64_t i) { return y + i * ldy; };
  std::vector<double> d2(static_cast<std::size_t>(n)), prefix(static_cast<std::size_t>(n));
  auto rebuild_prefix = [&] {
    double s = 0;
    for (std::int64_t i = 0; i < n; ++i) prefix[static_cast<std::size_t>(i)] = s += d2[static_cast<std::size_t>(i)];
  };
  auto uniform_row = [&](SampleRng& r) { return std::min(n - 1, static_cast<std::int64_t>(r.uniform_f64() * static_cast<double>(n))); };

  SampleRng first(seed, counter(Stream::plus_plus, stage, 0));
  std::memcpy(codes, row(uniform_row(first)), d * sizeof(float));
  parallel_for(n, 4096, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) d2[static_cast<std::size_t>(i)] = squared_distance(row(i), codes, d);
  });
  rebuild_prefix();

  std::vector<std::int64_t> pending;  // centres not yet in d2
  std::vector<std::int64_t> near(static_cast<std::size_t>(n));
  std::vector<float> dist(static_cast<std::size_t>(n));
  auto fold = [&] {
    if (pending.empty()) return;
    std::vector<float> batch;
    for (std::int64_t t : pending) batch.insert(batch.end(), codes + t * d, codes + (t + 1) * d);
    FlatIndex(batch.data(), static_cast<std::int64_t>(pending.size()), d, Metric::l2)
        .search(y, n, ldy, 1, near.data(), 1, dist.data(), 1);
    for (std::int64_t i = 0; i < n; ++i)
      d2[static_cast<std::size_t>(i)] = std::min(d2[static_cast<std::size_t>(i)], static_cast<double>(dist[static_cast<std::size_t>(i)]));
    rebuild_prefix();
    pending.clear();
  };

  for (std::int64_t t = 1; t < k; ++t) {
    SampleRng r(seed, counter(Stream::plus_plus, stage, t));
    std::int64_t chosen = -1;
    while (chosen < 0) {
      const double total = prefix.back();
      if (!(total > 0)) {  // every vector coincides with a centre
        chosen = uniform_row(r);
        break;
      }
      for (int trial = 0; trial < kMaxTrials && chosen < 0; ++trial) {
        const double target = r.uniform_f64() * total;
        const std::int64_t i = std::min<std::int64_t>(
            n - 1, std::upper_bound(prefix.begin(), prefix.end(), target) - prefix.begin());
        const double stale = d2[static_cast<std::size_t>(i)];
        const double u = r.uniform_f64();
        if (!(stale > 0)) continue;
        double now = stale;
        for (std::int64_t c : pending) now = std::min(now, squared_distance(row(i), codes + c * d, d));
        if (u * stale < now) chosen = i;
      }
      if (chosen < 0) fold();
    }
    std::memcpy(codes + t * d, row(chosen), d * sizeof(float));
    pending.push_back(t);
    if (pending.size() == kBatch) fold();
    if (opt.on_init) opt.on_init(stage, t + 1, k);
  }
}

}  // namespace

std::vector<std::int64_t> sample_rows(std::int64_t n, std::int64_t m, std::uint64_t seed) {
  if (m >= n) {
    std::vector<std::int64_t> all(static_cast<std::size_t>(n));
    std::iota(all.begin(), all.end(), 0);
    return all;
  }
  return smallest_keys(n, m, seed, Stream::sample, 0);
}

KmeansResult kmeans(const float* x, std::int64_t n, std::int64_t d, std::int64_t ldx, std::int64_t stage,
                    const KmeansOptions& opt) {
  const std::int64_t k = opt.k;
  if (k < 1) throw_usage("--k must be 1 or more, not " + std::to_string(k));
  if (k > n)
    throw_data("cannot train " + std::to_string(k) + " codes from " + std::to_string(n) + " vector" +
               (n == 1 ? "" : "s") + ": --k must be at most the number of training vectors");
  if (opt.iters < 0) throw_usage("--iters must be 0 or more, not " + std::to_string(opt.iters));
  const bool cosine = opt.metric == Metric::cosine;

  // Spherical k-means works on the unit vectors; the search ranks by the exact cosine.
  std::vector<float> unit;
  const float* y = x;
  std::int64_t ldy = ldx;
  if (cosine) {
    unit.resize(static_cast<std::size_t>(n * d));
    parallel_for(n, 4096, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        std::memcpy(unit.data() + i * d, x + i * ldx, d * sizeof(float));
        normalize(unit.data() + i * d, d);
      }
    });
    y = unit.data();
    ldy = d;
  }

  KmeansResult res;
  res.codes.resize(static_cast<std::size_t>(k * d));
  float* codes = res.codes.data();
  switch (opt.init) {
    case Init::given:
      std::memcpy(codes, opt.init_codes, static_cast<std::size_t>(k * d) * sizeof(float));
      if (cosine)
        for (std::int64_t j = 0; j < k; ++j) normalize(codes + j * d, d);
      break;
    case Init::random: {
      const auto rows = smallest_keys(n, k, opt.seed, Stream::random_init, stage);
      for (std::int64_t j = 0; j < k; ++j) std::memcpy(codes + j * d, y + rows[static_cast<std::size_t>(j)] * ldy, d * sizeof(float));
      break;
    }
    case Init::kmeanspp:
      kmeans_plus_plus(y, n, d, ldy, k, opt.seed, stage, codes, opt);
      break;
  }

  res.assign.resize(static_cast<std::size_t>(n));
  std::vector<float> dist(static_cast<std::size_t>(n));
  std::vector<std::int64_t> previous;
  std::vector<std::int64_t> count(static_cast<std::size_t>(k)), start(static_cast<std::size_t>(k + 1)),
      members(static_cast<std::size_t>(n));
  std::vector<float> g(static_cast<std::size_t>(d));
  double last = 0;
  for (std::int64_t it = 0;; ++it) {
    FlatIndex(codes, k, d, opt.metric).search(x, n, ldx, 1, res.assign.data(), 1, dist.data(), 1);
    double inertia = 0;
    for (float v : dist) inertia += v;
    res.inertia.push_back(inertia);
    if (opt.on_iteration) opt.on_iteration(stage, it, inertia);
    if (it == opt.iters) break;
    if (it > 0 && res.assign == previous) break;  // converged: the update would change nothing
    if (it > 0 && opt.tol > 0 && last - inertia < opt.tol * last) break;
    last = inertia;
    previous = res.assign;

    // Members of each cluster in index order (a counting sort), then the means
    // in double precision, summed in that order.
    std::fill(count.begin(), count.end(), 0);
    for (std::int64_t c : res.assign) ++count[static_cast<std::size_t>(c)];
    start[0] = 0;
    for (std::int64_t j = 0; j < k; ++j) start[j + 1] = start[j] + count[j];
    {
      std::vector<std::int64_t> fill(start.begin(), start.end() - 1);
      for (std::int64_t i = 0; i < n; ++i) members[static_cast<std::size_t>(fill[res.assign[i]]++)] = i;
    }
    parallel_for(k, 16, [&](std::int64_t b, std::int64_t e) {
      std::vector<double> sum(static_cast<std::size_t>(d));
      for (std::int64_t j = b; j < e; ++j) {
        if (count[j] == 0) continue;
        std::fill(sum.begin(), sum.end(), 0.0);
        for (std::int64_t m = start[j]; m < start[j + 1]; ++m) {
          const float* v = y + members[m] * ldy;
          for (std::int64_t c = 0; c < d; ++c) sum[c] += v[c];
        }
        float* code = codes + j * d;
        if (cosine) {
          double s = 0;
          for (double v : sum) s += v * v;
          if (s > 0)  // else the vectors cancel out: keep the old direction
            for (std::int64_t c = 0; c < d; ++c) code[c] = static_cast<float>(sum[c] / std::sqrt(s));
        } else {
          for (std::int64_t c = 0; c < d; ++c) code[c] = static_cast<float>(sum[c] / static_cast<double>(count[j]));
        }
      }
    });

    // Empty clusters: split the largest cluster b in two along a random
    // direction, |v| = (root mean squared distance of b's vectors) / 16.
    for (std::int64_t j = 0; j < k; ++j) {
      if (count[j] != 0) continue;
      const std::int64_t b = std::max_element(count.begin(), count.end()) - count.begin();
      if (count[b] < 2) continue;  // nothing to split: fewer distinct vectors than codes
      double sq = 0;
      for (std::int64_t m = start[b]; m < start[b + 1]; ++m) sq += dist[static_cast<std::size_t>(members[m])];
      const double rms = std::sqrt(sq / static_cast<double>(start[b + 1] - start[b]));
      fill_normal(opt.seed, counter(Stream::split, stage, it * k + j), g.data(), d);
      double gn = 0;
      for (float v : g) gn += static_cast<double>(v) * v;
      const double scale = gn > 0 ? rms / 16 / std::sqrt(gn) : 0;
      float* cb = codes + b * d;
      float* cj = codes + j * d;
      for (std::int64_t c = 0; c < d; ++c) {
        const double v = g[c] * scale;
        cj[c] = static_cast<float>(cb[c] + v);
        cb[c] = static_cast<float>(cb[c] - v);
      }
      if (cosine) {
        normalize(cj, d);
        normalize(cb, d);
      }
      count[j] = count[b] / 2;
      count[b] -= count[j];
      ++res.reseeded;
    }
    res.updates = it + 1;
  }
  return res;
}

Tensor prepare_training_input(const Tensor& x, const std::string& where) {
  if (x.ndim() == 0) throw_data("the input is a scalar, not vectors (" + where + ")");
  const std::int64_t d = x.shape().back();
  if (d == 0) throw_data("the input has vectors of dimension 0 (shape " + shape_str(x.shape()) + ") (" + where + ")");
  Tensor f = x.dtype() == DType::f4 ? x : x.astype(DType::f4);
  const float* p = f.data<float>();
  for (std::int64_t i = 0; i < f.numel(); ++i)
    if (!std::isfinite(p[i])) {
      Shape lead(x.shape().begin(), x.shape().end() - 1), at(lead.size());
      std::int64_t flat = i / d;
      for (std::size_t a = lead.size(); a-- > 0;) {
        at[a] = flat % lead[a];
        flat /= lead[a];
      }
      throw_data("vector " + shape_str(at) + " has " + (std::isnan(p[i]) ? "a NaN" : "an infinite") + " value at element " +
                 std::to_string(i % d) + " (" + where + ")");
    }
  return std::move(f).reshaped({f.numel() / d, d});
}

namespace {

void check_init(const Tensor* init, const Shape& want, const char* layout) {
  if (init && init->shape() != want)
    throw_data("the initial codebook is " + shape_str(init->shape()) + ", training needs " + shape_str(want) + " " + layout);
}

}  // namespace

TrainResult train_flat(const Tensor& x, KmeansOptions opt, const Tensor* init) {
  const std::int64_t n = x.dim(0), d = x.dim(1);
  check_init(init, {opt.k, d}, "[K, D]");
  if (init) opt.init_codes = init->data<float>();
  TrainResult out;
  out.stages.push_back(kmeans(x.data<float>(), n, d, d, 0, opt));
  out.codebook = Tensor::from_vector<float>({opt.k, d}, out.stages[0].codes);
  return out;
}

TrainResult train_residual(const Tensor& x, std::int64_t levels, KmeansOptions opt, const Tensor* init) {
  if (levels < 1) throw_usage("--residual must be 1 or more, not " + std::to_string(levels));
  if (opt.metric != Metric::l2) throw_usage("--residual trains with --metric l2 only");
  const std::int64_t n = x.dim(0), d = x.dim(1), k = opt.k;
  check_init(init, {levels, k, d}, "[L, K, D]");
  // What the stages so far leave, in float32 as vq-encode --residual computes it.
  std::vector<float> r(x.data<float>(), x.data<float>() + n * d);
  TrainResult out;
  out.codebook = Tensor(DType::f4, {levels, k, d});
  for (std::int64_t l = 0; l < levels; ++l) {
    if (init) opt.init_codes = init->data<float>() + l * k * d;
    KmeansResult s = kmeans(r.data(), n, d, d, l, opt);
    for (std::int64_t i = 0; i < n; ++i) {
      const float* c = s.codes.data() + s.assign[static_cast<std::size_t>(i)] * d;
      for (std::int64_t j = 0; j < d; ++j) r[static_cast<std::size_t>(i * d + j)] -= c[j];
    }
    std::memcpy(out.codebook.data<float>() + l * k * d, s.codes.data(), static_cast<std::size_t>(k * d) * sizeof(float));
    out.stages.push_back(std::move(s));
  }
  return out;
}

TrainResult train_product(const Tensor& x, std::int64_t m, KmeansOptions opt, const Tensor* init) {
  const std::int64_t n = x.dim(0), d = x.dim(1), k = opt.k;
  if (m < 1) throw_usage("--pq must be 1 or more, not " + std::to_string(m));
  if (opt.metric != Metric::l2) throw_usage("--pq trains with --metric l2 only");
  if (d % m != 0)
    throw_data("--pq " + std::to_string(m) + " does not divide the input dimension " + std::to_string(d));
  const std::int64_t ds = d / m;
  check_init(init, {m, k, ds}, "[M, K, D/M]");
  TrainResult out;
  out.codebook = Tensor(DType::f4, {m, k, ds});
  for (std::int64_t s = 0; s < m; ++s) {
    if (init) opt.init_codes = init->data<float>() + s * k * ds;
    KmeansResult r = kmeans(x.data<float>() + s * ds, n, ds, d, s, opt);
    std::memcpy(out.codebook.data<float>() + s * k * ds, r.codes.data(), static_cast<std::size_t>(k * ds) * sizeof(float));
    out.stages.push_back(std::move(r));
  }
  return out;
}

}  // namespace nnkit::vq
