// The conventions of clip-score that need no similarity matrix: embeddings
// in, normalisation, per-pair scores, RefCLIPScore, summaries with the
// bootstrap, and open_clip's class embeddings. The tile engine and what runs
// on it are in similarity.cpp.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
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

// ---------------------------------------------------------------- sharded retrieval

namespace nnkit::clip {

namespace {

constexpr std::uint64_t fnv_basis = 14695981039346656037ull, fnv_prime = 1099511628211ull;
constexpr std::size_t fingerprint_chunk = 1 << 20;  // bytes hashed on their own, fixed for every thread count
constexpr const char* state_format = "nnkit clip-score retrieval shard";
constexpr const char* state_version = "1";

// FNV-1a over 64-bit words (a zero-padded tail): quick, and plenty to tell runs apart.
std::uint64_t fnv(const void* data, std::size_t bytes, std::uint64_t h = fnv_basis) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t k = 0; k < bytes; k += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, p + k, std::min<std::size_t>(8, bytes - k));
    h = (h ^ word) * fnv_prime;
  }
  return h;
}

// Hashes bytes in fixed chunks in parallel, then the chunk hashes in order into h.
std::uint64_t fnv_chunked(std::uint64_t h, const void* data, std::size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  const auto chunks = static_cast<std::int64_t>((bytes + fingerprint_chunk - 1) / fingerprint_chunk);
  std::vector<std::uint64_t> hashes(static_cast<std::size_t>(chunks));
  parallel_for(chunks, 1, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t c = b; c < e; ++c) {
      const std::size_t at = static_cast<std::size_t>(c) * fingerprint_chunk;
      hashes[c] = fnv(p + at, std::min(fingerprint_chunk, bytes - at));
    }
  });
  const std::uint64_t size = bytes;
  h = fnv(&size, sizeof size, h);
  return fnv(hashes.data(), hashes.size() * sizeof(std::uint64_t), h);
}

std::string shard_label(Part p) { return std::to_string(p.index) + "/" + std::to_string(p.count); }

// Rows [begin, end) of the images that shard `part` ranks.
std::pair<std::int64_t, std::int64_t> shard_rows(std::int64_t images, std::int64_t block, Part part) {
  const auto [b0, b1] = part_range(row_block_count(images, block), part);
  return {std::min(images, b0 * block), std::min(images, b1 * block)};
}

// Data error unless b is a shard of the same run as a.
void check_same_run(const RetrievalShard& a, const RetrievalShard& b) {
  auto differ = [&](const std::string& what, const std::string& x, const std::string& y) {
    throw_data(b.name + " and " + a.name + " are shards of different runs: " + what + " " + y + " vs " + x);
  };
  if (b.images != a.images) differ("images", std::to_string(a.images), std::to_string(b.images));
  if (b.texts != a.texts) differ("texts", std::to_string(a.texts), std::to_string(b.texts));
  if (b.block != a.block) differ("--block", std::to_string(a.block), std::to_string(b.block));
  if (b.part.count != a.part.count)
    differ("shard counts", std::to_string(a.part.count), std::to_string(b.part.count));
  if (b.fingerprint != a.fingerprint)
    throw_data(b.name + " and " + a.name + " are shards of different runs: their inputs differ (fingerprints)");
}

// Data error unless the shard holds the rows its part names and counts a run can produce.
void check_shard_counts(const RetrievalShard& s) {
  const auto [r0, r1] = shard_rows(s.images, s.block, s.part);
  if (s.row_begin != r0 || static_cast<std::int64_t>(s.image_to_text.size()) != r1 - r0)
    throw_data(s.name + " holds image rows from " + std::to_string(s.row_begin) + ", " +
               std::to_string(s.image_to_text.size()) + " of them, but shard " + shard_label(s.part) +
               " is rows [" + std::to_string(r0) + ", " + std::to_string(r1) + ")");
  if (static_cast<std::int64_t>(s.text_competitors.size()) != s.texts)
    throw_data(s.name + " holds " + std::to_string(s.text_competitors.size()) + " text counts for " +
               std::to_string(s.texts) + " texts");
  for (std::int64_t r : s.image_to_text)
    if (r < 0 || r > s.texts) throw_data(s.name + " holds an image rank of " + std::to_string(r) + ", beyond 0.." +
                                         std::to_string(s.texts));
  for (std::int64_t c : s.text_competitors)
    if (c < 0 || c > r1 - r0)
      throw_data(s.name + " holds a text count of " + std::to_string(c) + ", beyond the shard's " +
                 std::to_string(r1 - r0) + " images");
}

std::int64_t meta_int(const ShardState& st, const std::string& key, const std::string& name) {
  const auto it = st.metadata.find(key);
  if (it == st.metadata.end()) throw_data(name + ": the state has no '" + key + "' in its metadata");
  const std::string& v = it->second;
  std::size_t used = 0;
  long long x = -1;
  try {
    x = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (v.empty() || used != v.size() || x < 0 || !std::isdigit(static_cast<unsigned char>(v[0])))
    throw_data(name + ": metadata '" + key + "' is " + in_quotes(v) + ", want a whole number");
  return x;
}

const Tensor& state_tensor(const ShardState& st, const std::string& key, std::int64_t length,
                           const std::string& name) {
  for (const auto& nt : st.tensors) {
    if (nt.name != key) continue;
    if (nt.tensor.dtype() != DType::i8 || nt.tensor.ndim() != 1 || nt.tensor.dim(0) != length)
      throw_data(name + ": tensor '" + key + "' must be int64 [" + std::to_string(length) + "], not " +
                 std::string(dtype_name(nt.tensor.dtype())) + " " + shape_str(nt.tensor.shape()));
    return nt.tensor;
  }
  throw_data(name + ": the state has no tensor '" + key + "'");
}

std::vector<std::int64_t> to_vector(const Tensor& t) {
  const std::int64_t* p = t.data<std::int64_t>();
  return {p, p + t.numel()};
}

}  // namespace

std::uint64_t retrieval_fingerprint(const Embeddings& images, const Embeddings& texts,
                                    const std::vector<std::int64_t>& text_image) {
  const std::int64_t shape[3] = {images.rows(), texts.rows(), images.dim()};
  std::uint64_t h = fnv(shape, sizeof shape);
  h = fnv_chunked(h, images.data.data<float>(), static_cast<std::size_t>(images.data.numel()) * sizeof(float));
  h = fnv_chunked(h, texts.data.data<float>(), static_cast<std::size_t>(texts.data.numel()) * sizeof(float));
  return fnv_chunked(h, text_image.data(), text_image.size() * sizeof(std::int64_t));
}

RetrievalRanks merge_retrieval(const std::vector<RetrievalShard>& shards) {
  if (shards.empty()) throw_internal("merge_retrieval: no shards");
  const RetrievalShard& a = shards.front();
  std::vector<const RetrievalShard*> by_part;
  for (const RetrievalShard& s : shards) {
    check_same_run(a, s);
    check_shard_counts(s);
    by_part.push_back(&s);
  }
  std::sort(by_part.begin(), by_part.end(),
            [](const RetrievalShard* x, const RetrievalShard* y) { return x->part.index < y->part.index; });
  for (std::size_t k = 1; k < by_part.size(); ++k)
    if (by_part[k]->part.index == by_part[k - 1]->part.index)
      throw_data(by_part[k]->name + " and " + by_part[k - 1]->name + " are both shard " +
                 shard_label(by_part[k]->part));
  std::int64_t next = 0;  // the first shard not given
  while (next < static_cast<std::int64_t>(by_part.size()) && by_part[next]->part.index == next) ++next;
  if (next < a.part.count)
    throw_data("shard " + shard_label({next, a.part.count}) + " is missing: " + std::to_string(shards.size()) +
               " state(s) given, one per shard needed");

  RetrievalRanks r;
  r.image_to_text.resize(static_cast<std::size_t>(a.images));
  std::vector<std::int64_t> competitors(static_cast<std::size_t>(a.texts), 0);
  for (const RetrievalShard& s : shards) {
    std::copy(s.image_to_text.begin(), s.image_to_text.end(), r.image_to_text.begin() + s.row_begin);
    for (std::int64_t j = 0; j < a.texts; ++j) competitors[j] += s.text_competitors[j];
  }
  r.text_to_image.resize(competitors.size());
  for (std::int64_t j = 0; j < a.texts; ++j) {
    if (competitors[j] >= a.images)
      throw_data("the shards count " + std::to_string(competitors[j]) + " competitors of text " + std::to_string(j) +
                 " among " + std::to_string(a.images) + " images: the states are damaged");
    r.text_to_image[j] = 1 + competitors[j];
  }
  return r;
}

ShardState shard_state(const RetrievalShard& s) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(s.fingerprint));
  ShardState st;
  st.metadata = {{"format", state_format},
                 {"version", state_version},
                 {"images", std::to_string(s.images)},
                 {"texts", std::to_string(s.texts)},
                 {"block", std::to_string(s.block)},
                 {"shard", std::to_string(s.part.index)},
                 {"shards", std::to_string(s.part.count)},
                 {"row_begin", std::to_string(s.row_begin)},
                 {"row_end", std::to_string(s.row_begin + static_cast<std::int64_t>(s.image_to_text.size()))},
                 {"fingerprint", hex}};
  const auto rows = static_cast<std::int64_t>(s.image_to_text.size());
  st.tensors.push_back({"image_to_text_rank", Tensor::from_vector<std::int64_t>({rows}, s.image_to_text)});
  st.tensors.push_back({"text_to_image_count", Tensor::from_vector<std::int64_t>({s.texts}, s.text_competitors)});
  return st;
}

RetrievalShard shard_from_state(ShardState st, std::string name) {
  const auto format = st.metadata.find("format");
  if (format == st.metadata.end() || format->second != state_format)
    throw_data(name + " is not a clip-score retrieval shard state (a safetensors file whose metadata format is '" +
               state_format + "', written by --shard)");
  if (st.metadata["version"] != state_version)
    throw_data(name + ": state version " + in_quotes(st.metadata["version"]) + ", this clip-score reads " +
               state_version);
  RetrievalShard s;
  s.images = meta_int(st, "images", name);
  s.texts = meta_int(st, "texts", name);
  s.block = meta_int(st, "block", name);
  s.part = {meta_int(st, "shard", name), meta_int(st, "shards", name)};
  s.row_begin = meta_int(st, "row_begin", name);
  const std::int64_t row_end = meta_int(st, "row_end", name);
  // --block is 1..8192; a damaged value must not reach the grid's arithmetic.
  if (s.images < 0 || s.texts < 0 || s.block < 1 || s.block > 8192 || s.part.count < 1 || s.part.index < 0 ||
      s.part.index >= s.part.count || s.row_begin < 0 || row_end < s.row_begin || row_end > s.images)
    throw_data(name + ": inconsistent metadata (block " + std::to_string(s.block) + ", shard " +
               shard_label(s.part) + ", rows " + std::to_string(s.row_begin) + ".." + std::to_string(row_end) +
               " of " + std::to_string(s.images) + ")");
  const std::string& hex = st.metadata["fingerprint"];
  if (hex.size() != 16 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw_data(name + ": metadata 'fingerprint' is " + in_quotes(hex) + ", want 16 hex digits");
  s.fingerprint = std::stoull(hex, nullptr, 16);
  s.image_to_text = to_vector(state_tensor(st, "image_to_text_rank", row_end - s.row_begin, name));
  s.text_competitors = to_vector(state_tensor(st, "text_to_image_count", s.texts, name));
  s.name = std::move(name);
  return s;
}

}  // namespace nnkit::clip
