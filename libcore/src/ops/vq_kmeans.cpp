// k-means for vq-train: k-means++ (exact D^2 sampling with batched distance
// updates), random or given initial codes, Lloyd iterations on the exact
// search of vq.cpp, empty clusters re-seeded by splitting the largest,
// spherical k-means for cosine, and residual and product codebooks.
//
// Determinism: every random number comes from SampleRng(seed, counter), with
// the counter naming what it is for (a stream), the stage and the item; the
// search is exact and the sums are exact (ExactSum), so the codes depend on the
// seed only, never on --threads, nor on how the vectors are sharded: one
// Lloyd iteration is cluster_stats (the map) and update_codes (the reduce),
// and the statistics of shards add up exactly.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "nnkit/error.hpp"
#include "nnkit/memory_limit.hpp"
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
  // Spherical k-means starts from unit vectors (cluster_stats sums them at
  // unit length too); the search ranks by the exact cosine.
  std::vector<float> unit;
  const float* y = x;
  std::int64_t ldy = ldx;
  if (opt.metric == Metric::cosine && opt.init != Init::given) {
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
      // As given: normalising here would make the single run differ from a
      // map-reduce, whose steps see the codes as given too.
      std::memcpy(codes, opt.init_codes, static_cast<std::size_t>(k * d) * sizeof(float));
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
  double last = 0;
  for (std::int64_t it = 0;; ++it) {
    const ClusterStats stats = cluster_stats(x, n, ldx, codes, k, d, opt.metric, res.assign.data());
    const double inertia = stats.inertia.to_double();
    res.inertia.push_back(inertia);
    if (opt.on_iteration) opt.on_iteration(stage, it, inertia);
    if (it == opt.iters) break;
    if (it > 0 && opt.tol > 0 && last - inertia < opt.tol * last) break;
    last = inertia;
    CodeUpdate next = update_codes(stats, codes, it, opt.seed, stage);
    // Converged: the update would leave every code as it is (compared by bits,
    // as a map-reduce driver compares codebook files).
    if (std::memcmp(next.codes.data(), codes, static_cast<std::size_t>(k * d) * sizeof(float)) == 0) break;
    res.codes = std::move(next.codes);
    codes = res.codes.data();
    res.reseeded += next.reseeded;
    res.updates = it + 1;
  }
  return res;
}

namespace {

// The exact sums are 96 bytes per code and channel, 24 times the codebook:
// NNKIT_MAX_MEMORY bounds them like a tensor.
std::int64_t checked_sum_count(std::int64_t k, std::int64_t d) {
  const std::int64_t count = checked_numel({k, d});
  checked_buffer_bytes(count, sizeof(ExactSum),
                       "the exact cluster sums [" + std::to_string(k) + ", " + std::to_string(d) + "]");
  return count;
}

}  // namespace

ClusterStats::ClusterStats(std::int64_t k_, std::int64_t d_, Metric metric_)
    : k(k_), d(d_), metric(metric_), count(static_cast<std::size_t>(k_)),
      sum(static_cast<std::size_t>(checked_sum_count(k_, d_))), sq(static_cast<std::size_t>(k_)) {}

void ClusterStats::merge(const ClusterStats& o) {
  if (o.k != k || o.d != d || o.metric != metric)
    throw_data("cannot add the statistics of " + std::to_string(o.k) + " codes of dimension " + std::to_string(o.d) +
               " (" + metric_name(o.metric) + ") to those of " + std::to_string(k) + " codes of dimension " +
               std::to_string(d) + " (" + metric_name(metric) + ")");
  if (o.vectors > std::numeric_limits<std::int64_t>::max() - vectors)
    throw_data("the statistics count more than 2^63 vectors in all");
  vectors += o.vectors;
  for (std::size_t j = 0; j < count.size(); ++j) {
    count[j] += o.count[j];
    sq[j].merge(o.sq[j]);
  }
  for (std::size_t i = 0; i < sum.size(); ++i) sum[i].merge(o.sum[i]);
  inertia.merge(o.inertia);
}

ClusterStats cluster_stats(const float* x, std::int64_t n, std::int64_t ldx, const float* codes, std::int64_t k,
                           std::int64_t d, Metric metric, std::int64_t* assign_out) {
  ClusterStats s(k, d, metric);
  s.vectors = n;
  std::vector<std::int64_t> own_assign;
  std::int64_t* assign = assign_out;
  if (!assign) {
    own_assign.resize(static_cast<std::size_t>(n));
    assign = own_assign.data();
  }
  std::vector<float> dist(static_cast<std::size_t>(n));
  if (n > 0) FlatIndex(codes, k, d, metric).search(x, n, ldx, 1, assign, 1, dist.data(), 1);

  // The members of each cluster (a counting sort), so that every cluster's
  // sums are one thread's work.
  for (std::int64_t i = 0; i < n; ++i) ++s.count[static_cast<std::size_t>(assign[i])];
  std::vector<std::int64_t> start(static_cast<std::size_t>(k + 1)), members(static_cast<std::size_t>(n));
  for (std::int64_t j = 0; j < k; ++j) start[j + 1] = start[j] + s.count[j];
  {
    std::vector<std::int64_t> fill(start.begin(), start.end() - 1);
    for (std::int64_t i = 0; i < n; ++i) members[static_cast<std::size_t>(fill[assign[i]]++)] = i;
  }
  const bool cosine = metric == Metric::cosine;
  parallel_for(k, 16, [&](std::int64_t b, std::int64_t e) {
    std::vector<float> unit(cosine ? static_cast<std::size_t>(d) : 0);
    for (std::int64_t j = b; j < e; ++j) {
      ExactSum* acc = s.sum.data() + j * d;
      for (std::int64_t m = start[j]; m < start[j + 1]; ++m) {
        const std::int64_t i = members[static_cast<std::size_t>(m)];
        const float* v = x + i * ldx;
        if (cosine) {  // spherical k-means sums the vectors at unit length
          std::memcpy(unit.data(), v, static_cast<std::size_t>(d) * sizeof(float));
          normalize(unit.data(), d);
          v = unit.data();
        }
        for (std::int64_t c = 0; c < d; ++c) acc[c].add(v[c]);
        // A distance that overflowed float32 would not be a finite addend.
        s.sq[static_cast<std::size_t>(j)].add(std::min(dist[static_cast<std::size_t>(i)], std::numeric_limits<float>::max()));
      }
    }
  });
  for (const ExactSum& q : s.sq) s.inertia.merge(q);
  return s;
}

namespace {

// Moves code j to the mean (cosine: the direction) of its cluster's exact sum.
void move_to_mean(const ClusterStats& s, std::int64_t j, float* code, std::vector<double>& sum) {
  const std::int64_t d = s.d;
  for (std::int64_t c = 0; c < d; ++c) sum[static_cast<std::size_t>(c)] = s.sum[static_cast<std::size_t>(j * d + c)].to_double();
  if (s.metric == Metric::cosine) {
    double sq = 0;
    for (double v : sum) sq += v * v;
    if (sq > 0)  // else the vectors cancel out: keep the old direction
      for (std::int64_t c = 0; c < d; ++c) code[c] = static_cast<float>(sum[static_cast<std::size_t>(c)] / std::sqrt(sq));
  } else {
    const double count = static_cast<double>(s.count[static_cast<std::size_t>(j)]);
    for (std::int64_t c = 0; c < d; ++c) code[c] = static_cast<float>(sum[static_cast<std::size_t>(c)] / count);
  }
}

}  // namespace

CodeUpdate update_codes(const ClusterStats& s, const float* codes, std::int64_t iteration, std::uint64_t seed,
                        std::int64_t stage) {
  const std::int64_t k = s.k, d = s.d;
  // The split's random streams are numbered iteration * K + j in 40 bits.
  if (iteration < 0 || iteration >= ((std::int64_t{1} << 40) - 1) / k)
    throw_usage("iteration " + std::to_string(iteration) + " is out of range for " + std::to_string(k) +
                " codes: iteration x K must stay below 2^40");
  CodeUpdate u;
  u.codes.assign(codes, codes + k * d);
  float* out = u.codes.data();
  parallel_for(k, 16, [&](std::int64_t b, std::int64_t e) {
    std::vector<double> sum(static_cast<std::size_t>(d));
    for (std::int64_t j = b; j < e; ++j)
      if (s.count[static_cast<std::size_t>(j)] > 0) move_to_mean(s, j, out + j * d, sum);
  });

  // Empty clusters: split the largest cluster b in two along a random
  // direction, |v| = (root mean squared distance of b's vectors) / 16. A code
  // made by a split inherits that spread, should it be split again.
  std::vector<std::int64_t> count = s.count;
  std::vector<double> spread(static_cast<std::size_t>(k));
  for (std::int64_t j = 0; j < k; ++j)
    if (count[j] > 0) spread[j] = std::sqrt(s.sq[j].to_double() / static_cast<double>(count[j]));
  std::vector<float> g(static_cast<std::size_t>(d));
  for (std::int64_t j = 0; j < k; ++j) {
    if (count[j] != 0) continue;
    const std::int64_t b = std::max_element(count.begin(), count.end()) - count.begin();
    if (count[b] < 2) continue;  // nothing to split: fewer distinct vectors than codes
    fill_normal(seed, counter(Stream::split, stage, iteration * k + j), g.data(), d);
    double gn = 0;
    for (float v : g) gn += static_cast<double>(v) * v;
    const double scale = gn > 0 ? spread[b] / 16 / std::sqrt(gn) : 0;
    float* cb = out + b * d;
    float* cj = out + j * d;
    for (std::int64_t c = 0; c < d; ++c) {
      const double v = g[c] * scale;
      cj[c] = static_cast<float>(cb[c] + v);
      cb[c] = static_cast<float>(cb[c] - v);
    }
    if (s.metric == Metric::cosine) {
      normalize(cj, d);
      normalize(cb, d);
    }
    count[j] = count[b] / 2;
    count[b] -= count[j];
    spread[j] = spread[b];
    ++u.reseeded;
  }
  return u;
}

namespace {

constexpr std::int64_t kHeaderSize = 8;
const char* const kStatsNames[stats_tensors] = {"header", "counts", "sums", "squared distances", "inertia"};

void put_digits(const ExactSum& e, std::int64_t* out) {
  const ExactSum::Digits d = e.to_digits();
  std::copy(d.begin(), d.end(), out);
}

ExactSum get_digits(const std::int64_t* in, const char* what, const std::string& where) {
  const auto e = ExactSum::from_digits(in);
  if (!e) throw_data(std::string("corrupt statistics: the ") + what + " hold digits out of range (" + where + ")");
  return *e;
}

void check_tensor(const std::vector<Tensor>& t, int i, const Shape& want, const std::string& where) {
  const Tensor& x = t[static_cast<std::size_t>(i)];
  if (x.dtype() != DType::i8 || x.shape() != want)
    throw_data(std::string("corrupt statistics: the ") + kStatsNames[i] + " array is " +
               std::string(dtype_name(x.dtype())) + " " + shape_str(x.shape()) + ", not int64 " + shape_str(want) +
               " (" + where + ")");
}

// What a map writes: nothing summed for an empty cluster, and squared
// distances that add up to the inertia.
void check_consistent(const ClusterStats& s, const std::string& where) {
  ExactSum total;
  for (std::int64_t j = 0; j < s.k; ++j) {
    total.merge(s.sq[static_cast<std::size_t>(j)]);
    if (s.count[static_cast<std::size_t>(j)] != 0) continue;
    bool zero = s.sq[static_cast<std::size_t>(j)].is_zero();
    for (std::int64_t c = 0; c < s.d && zero; ++c) zero = s.sum[static_cast<std::size_t>(j * s.d + c)].is_zero();
    if (!zero)
      throw_data("corrupt statistics: code " + std::to_string(j) + " has no vectors but nonzero sums (" + where + ")");
  }
  if (total.to_digits() != s.inertia.to_digits())
    throw_data("corrupt statistics: the squared distances do not add up to the inertia (" + where + ")");
}

}  // namespace

std::vector<Tensor> stats_to_tensors(const ClusterStats& s) {
  constexpr std::int64_t w = ExactSum::width;
  std::vector<Tensor> t;
  t.push_back(Tensor::from_vector<std::int64_t>(
      {kHeaderSize}, {stats_version, s.k, s.d, w, s.metric == Metric::cosine ? 1 : 0, s.vectors,
                      ExactSum::lsb_exponent, ExactSum::digit_bits}));
  t.push_back(Tensor::from_vector<std::int64_t>({s.k}, s.count));
  t.emplace_back(DType::i8, Shape{s.k, s.d, w});
  for (std::size_t i = 0; i < s.sum.size(); ++i) put_digits(s.sum[i], t.back().data<std::int64_t>() + i * w);
  t.emplace_back(DType::i8, Shape{s.k, w});
  for (std::size_t j = 0; j < s.sq.size(); ++j) put_digits(s.sq[j], t.back().data<std::int64_t>() + j * w);
  t.emplace_back(DType::i8, Shape{w});
  put_digits(s.inertia, t.back().data<std::int64_t>());
  return t;
}

ClusterStats stats_from_tensors(const std::vector<Tensor>& t, const std::string& where) {
  if (t.size() != stats_tensors)
    throw_data("corrupt statistics: " + std::to_string(t.size()) + " tensors, not " + std::to_string(stats_tensors) +
               " (" + where + ")");
  constexpr std::int64_t w = ExactSum::width;
  check_tensor(t, 0, {kHeaderSize}, where);
  const std::int64_t* h = t[0].data<std::int64_t>();
  if (h[0] != stats_version)
    throw_data("statistics of format version " + std::to_string(h[0]) + ", this vq-train reads version " +
               std::to_string(stats_version) + " (" + where + ")");
  if (h[1] < 1 || h[2] < 1 || h[3] != w || h[4] < 0 || h[4] > 1 || h[5] < 0 || h[6] != ExactSum::lsb_exponent ||
      h[7] != ExactSum::digit_bits)
    throw_data("corrupt statistics: a bad header (" + where + ")");
  const std::int64_t k = h[1], d = h[2];
  if (k > (std::int64_t{1} << 40) / d) throw_data("corrupt statistics: a bad header (" + where + ")");
  check_tensor(t, 1, {k}, where);
  check_tensor(t, 2, {k, d, w}, where);
  check_tensor(t, 3, {k, w}, where);
  check_tensor(t, 4, {w}, where);

  ClusterStats s(k, d, h[4] == 1 ? Metric::cosine : Metric::l2);
  s.vectors = h[5];
  const std::int64_t* count = t[1].data<std::int64_t>();
  std::int64_t total = 0;
  for (std::int64_t j = 0; j < k; ++j) {
    if (count[j] < 0 || count[j] > s.vectors - total)
      throw_data("corrupt statistics: the counts do not add up to the " + std::to_string(s.vectors) + " vectors (" +
                 where + ")");
    total += count[j];
    s.count[static_cast<std::size_t>(j)] = count[j];
  }
  if (total != s.vectors)
    throw_data("corrupt statistics: the counts add up to " + std::to_string(total) + ", not the " +
               std::to_string(s.vectors) + " vectors (" + where + ")");
  for (std::size_t i = 0; i < s.sum.size(); ++i) s.sum[i] = get_digits(t[2].data<std::int64_t>() + i * w, "sums", where);
  for (std::size_t j = 0; j < s.sq.size(); ++j)
    s.sq[j] = get_digits(t[3].data<std::int64_t>() + j * w, "squared distances", where);
  s.inertia = get_digits(t[4].data<std::int64_t>(), "inertia", where);
  check_consistent(s, where);
  return s;
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
