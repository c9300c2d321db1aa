// The conventions of clip-score that need no similarity matrix: embeddings
// in, normalisation, per-pair scores, RefCLIPScore, summaries with the
// bootstrap, and open_clip's class embeddings. The tile engine and what runs
// on it are in similarity.cpp.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>

#include "nnkit/ops/clip.hpp"
#include "nnkit/parallel.hpp"
#include "nnkit/rng.hpp"

namespace nnkit::clip {

namespace {

constexpr std::int64_t row_grain = 2048;
constexpr std::int64_t none = std::numeric_limits<std::int64_t>::max();

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// "[3, 7]": the position of flat index k in shape.
std::string position(std::int64_t k, const Shape& shape) {
  Shape at(shape.size());
  for (std::size_t a = shape.size(); a-- > 0;) {
    at[a] = k % shape[a];
    k /= shape[a];
  }
  return shape_str(at);
}

// "row 4" of a 2-D tensor, "row [1, 2]" of a [N, R, D] one.
std::string row_name(const Embeddings& e, std::int64_t i) {
  if (e.data.ndim() == 3) return "row " + position(i, {e.data.dim(0), e.data.dim(1)});
  return "row " + std::to_string(i);
}

double dot(const float* x, const float* y, std::int64_t d) {
  double s = 0;
  for (std::int64_t k = 0; k < d; ++k) s += static_cast<double>(x[k]) * y[k];
  return s;
}

// Lowers `first` to i when i is smaller: the first bad row over all threads.
void keep_first(std::atomic<std::int64_t>& first, std::int64_t i) {
  std::int64_t cur = first.load();
  while (i < cur && !first.compare_exchange_weak(cur, i)) {
  }
}

Tensor map_values(const Tensor& x, const std::function<double(double)>& f) {
  Tensor out = Tensor::uninitialized(DType::f4, x.shape());
  const float* in = x.data<float>();
  float* o = out.data<float>();
  parallel_for(x.numel(), 1 << 16, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) o[i] = static_cast<float>(f(in[i]));
  });
  return out;
}

// numpy's default percentile: linear between the two nearest order statistics.
double percentile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace

Embeddings make_embeddings(Tensor t, std::string name, int rank) {
  if (t.dtype() == DType::b1) throw_data(name + " holds booleans, not embedding values");
  if (static_cast<int>(t.ndim()) != rank)
    throw_data(name + (rank == 2 ? " must be a 2-D tensor [rows, D]" : " must be a 3-D tensor [N, R, D]") +
               ", not of shape " + shape_str(t.shape()));
  const std::int64_t d = t.shape().back();
  if (d == 0) throw_data(name + " has embedding dimension D = 0");
  if (d > std::numeric_limits<int>::max())  // BLAS indexes with int
    throw_data(name + " has D = " + std::to_string(d) + ", more than BLAS can index");
  if (t.dtype() != DType::f4) t = t.astype(DType::f4);
  const float* x = t.data<float>();
  for (std::int64_t k = 0, n = t.numel(); k < n; ++k)
    if (!std::isfinite(x[k]))
      throw_data(name + ": element " + position(k, t.shape()) + " is " +
                 (std::isnan(x[k]) ? "NaN" : "infinite (or beyond float32)"));
  return Embeddings{std::move(t), std::move(name)};
}

void normalize_rows(Embeddings& e, bool allow_zero) {
  const std::int64_t d = e.dim();
  std::atomic<std::int64_t> first_zero{none};
  parallel_for(e.rows(), row_grain, [&](std::int64_t b, std::int64_t end) {
    for (std::int64_t i = b; i < end; ++i) {
      float* x = e.row(i);
      const double norm = std::sqrt(dot(x, x, d));
      if (norm == 0) {
        keep_first(first_zero, i);  // all zeros: stays zero, so cos = 0
        continue;
      }
      const double inv = 1.0 / norm;
      for (std::int64_t k = 0; k < d; ++k) x[k] = static_cast<float>(x[k] * inv);
    }
  });
  if (first_zero.load() != none && !allow_zero)
    throw_data(e.name + ": " + row_name(e, first_zero.load()) +
               " is a zero vector, which has no direction to compare (--allow-zero scores it as 0)");
}

void check_same_dim(const Embeddings& a, const Embeddings& b) {
  if (a.dim() != b.dim())
    throw_data(b.name + " has D = " + std::to_string(b.dim()) + " but " + a.name + " has D = " +
               std::to_string(a.dim()) + ": embeddings from different models?");
}

std::vector<std::int64_t> make_indices(const Tensor& t, std::int64_t count, std::int64_t limit,
                                       const std::string& name, const std::string& what_limit) {
  // [count], or [count, 1]: one index per line of a text file.
  const bool column = t.ndim() == 2 && t.dim(1) == 1;
  if (!(t.ndim() == 1 || column) || t.dim(0) != count)
    throw_data(name + " must be a 1-D tensor of " + std::to_string(count) + " indices, not of shape " +
               shape_str(t.shape()));
  if (t.dtype() == DType::b1) throw_data(name + " holds booleans, not indices");
  std::vector<std::int64_t> out(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    const double v = t.get(i);
    if (!(v >= 0 && v < static_cast<double>(limit)) || v != std::floor(v))
      throw_data(name + ": entry " + std::to_string(i) + " is " + num(v) + ", not an index in [0, " +
                 std::to_string(limit) + ") (" + what_limit + ")");
    out[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(v);
  }
  return out;
}

Tensor pair_cosines(const Embeddings& a, const Embeddings& b) {
  check_same_dim(a, b);
  if (a.rows() != b.rows())
    throw_data("pairs need as many texts as images: " + a.name + " has " + std::to_string(a.rows()) +
               " rows, " + b.name + " has " + std::to_string(b.rows()));
  Tensor out = Tensor::uninitialized(DType::f4, {a.rows()});
  float* o = out.data<float>();
  parallel_for(a.rows(), row_grain, [&](std::int64_t s, std::int64_t e) {
    for (std::int64_t i = s; i < e; ++i) o[i] = static_cast<float>(dot(a.row(i), b.row(i), a.dim()));
  });
  return out;
}

Tensor clip_scores(const Tensor& cos, double w) {
  return map_values(cos, [w](double c) { return w * std::max(c, 0.0); });
}

Tensor torchmetrics_scores(const Tensor& cos) {
  return map_values(cos, [](double c) { return 100.0 * c; });
}

Tensor best_reference_similarity(const Embeddings& candidates, const Embeddings& refs) {
  check_same_dim(candidates, refs);
  const std::int64_t n = candidates.rows();
  if (refs.data.ndim() != 3 || refs.data.dim(0) != n)
    throw_data(refs.name + " must be [N, R, D] with N = " + std::to_string(n) + " (one set per caption), not " +
               shape_str(refs.data.shape()));
  const std::int64_t r = refs.data.dim(1), d = refs.dim();
  if (r == 0) throw_data(refs.name + " has no references (R = 0)");
  Tensor out = Tensor::uninitialized(DType::f4, {n});
  float* o = out.data<float>();
  parallel_for(n, row_grain, [&](std::int64_t s, std::int64_t e) {
    for (std::int64_t i = s; i < e; ++i) {
      double best = -std::numeric_limits<double>::infinity();
      for (std::int64_t k = 0; k < r; ++k) best = std::max(best, dot(candidates.row(i), refs.row(i * r + k), d));
      o[i] = static_cast<float>(best);
    }
  });
  return out;
}

Tensor ref_clip_scores(const Tensor& clip_score, const Tensor& best_ref) {
  if (clip_score.numel() != best_ref.numel()) throw_internal("ref_clip_scores: lengths differ");
  Tensor out = Tensor::uninitialized(DType::f4, clip_score.shape());
  const float* c = clip_score.data<float>();
  const float* r = best_ref.data<float>();
  float* o = out.data<float>();
  for (std::int64_t i = 0; i < out.numel(); ++i) {
    // The paper clamps the reference side at 0 as CLIPScore's; both 0 is a score of 0.
    const double a = c[i], b = std::max(static_cast<double>(r[i]), 0.0);
    o[i] = a + b > 0 ? static_cast<float>(2 * a * b / (a + b)) : 0.f;
  }
  return out;
}

Summary summarize(const Tensor& values, std::int64_t bootstrap, std::uint64_t seed, bool clamp_at_zero) {
  const std::int64_t n = values.numel();
  if (n == 0) throw_data("no values to summarise (no pairs)");
  if (bootstrap < 0) throw_usage("the number of bootstrap resamples must be 0 or more");
  const float* x = values.data<float>();
  auto statistic = [clamp_at_zero](double mean) { return clamp_at_zero ? std::max(mean, 0.0) : mean; };
  double sum = 0;
  for (std::int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double ss = 0;  // two passes: no cancellation
  for (std::int64_t i = 0; i < n; ++i) ss += (x[i] - mean) * (x[i] - mean);
  Summary s;
  s.n = n;
  s.mean = statistic(mean);
  s.std = std::sqrt(ss / static_cast<double>(n));
  if (bootstrap > 0) {
    std::vector<double> stats(static_cast<std::size_t>(bootstrap));
    parallel_for(bootstrap, 1, [&](std::int64_t b0, std::int64_t b1) {
      for (std::int64_t b = b0; b < b1; ++b) {
        SampleRng rng(seed, static_cast<std::uint64_t>(b));
        double t = 0;
        for (std::int64_t j = 0; j < n; ++j) {
          const auto k = static_cast<std::int64_t>(rng.uniform_f64() * static_cast<double>(n));
          t += x[std::min(k, n - 1)];
        }
        stats[static_cast<std::size_t>(b)] = statistic(t / static_cast<double>(n));
      }
    });
    std::sort(stats.begin(), stats.end());
    s.bootstrap = bootstrap;
    s.ci_low = percentile(stats, 0.025);
    s.ci_high = percentile(stats, 0.975);
  }
  return s;
}

Embeddings class_embeddings(const Embeddings& texts, std::int64_t templates, bool allow_zero) {
  if (templates < 1) throw_usage("--templates must be 1 or more");
  const std::int64_t m = texts.rows(), d = texts.dim();
  if (m % templates != 0)
    throw_data(texts.name + " has " + std::to_string(m) + " rows, not a whole number of classes of " +
               std::to_string(templates) + " templates");
  const std::int64_t classes = m / templates;
  Embeddings out{Tensor::uninitialized(DType::f4, {classes, d}), "the class embeddings of " + texts.name};
  std::atomic<std::int64_t> first_zero{none};
  parallel_for(classes, 64, [&](std::int64_t s, std::int64_t e) {
    std::vector<double> mean(static_cast<std::size_t>(d));
    for (std::int64_t c = s; c < e; ++c) {
      std::fill(mean.begin(), mean.end(), 0.0);
      for (std::int64_t t = 0; t < templates; ++t) {
        const float* x = texts.row(c * templates + t);
        for (std::int64_t k = 0; k < d; ++k) mean[k] += x[k];
      }
      double norm = 0;
      for (double v : mean) norm += v * v;
      norm = std::sqrt(norm);  // the 1/T of the mean cancels in the renormalisation
      if (norm == 0) keep_first(first_zero, c);
      const double inv = norm > 0 ? 1.0 / norm : 0.0;
      float* o = out.row(c);
      for (std::int64_t k = 0; k < d; ++k) o[k] = static_cast<float>(mean[k] * inv);
    }
  });
  if (first_zero.load() != none && !allow_zero)
    throw_data(texts.name + ": the templates of class " + std::to_string(first_zero.load()) +
               " average to a zero vector (--allow-zero scores it as 0)");
  return out;
}

Tensor siglip_pair_probabilities(const Embeddings& images, const Embeddings& texts, float t, float b) {
  const Tensor cos = pair_cosines(images, texts);
  const double tt = t, bb = b;
  return map_values(cos, [tt, bb](double c) { return 1.0 / (1.0 + std::exp(-(tt * c + bb))); });
}

}  // namespace nnkit::clip
