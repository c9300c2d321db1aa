// Vector quantization: the exact nearest-code search on blocked SGEMM, the
// quantizers (flat, residual, product, FSQ), tensors of any leading shape,
// image patches and usage statistics. k-means lives in vq_kmeans.cpp.
#include "nnkit/ops/vq.hpp"

#include <cblas.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "nnkit/error.hpp"
#include "nnkit/parallel.hpp"

// OpenBLAS's thread control (weak, as in parallel.cpp).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace nnkit::vq {

namespace {

// Vectors per SGEMM and codes per SGEMM: one block of scores is 512 KiB, which
// stays in a core's L2 cache between the SGEMM that writes it and the scan.
constexpr std::int64_t kRowBlock = 128;
constexpr std::int64_t kCodeBlock = 1024;
// Vectors per call of the quantizers from encode() (progress, bounded scratch).
constexpr std::int64_t kEncodeChunk = 1 << 16;
constexpr double kUnitRoundoff = 0x1p-24;  // float32

// While alive, OpenBLAS runs each call on the calling thread only: our
// threads share out the blocks, and each block is one single-threaded SGEMM.
class OneBlasThread {
 public:
  OneBlasThread() {
    if (openblas_set_num_threads) openblas_set_num_threads(1);
  }
  ~OneBlasThread() {
    if (openblas_set_num_threads) openblas_set_num_threads(thread_count());
  }
  OneBlasThread(const OneBlasThread&) = delete;
  OneBlasThread& operator=(const OneBlasThread&) = delete;
};

double dot(const float* a, const float* b, std::int64_t d) {
  // Four partial sums in a fixed order: faster than one chain, still deterministic.
  double s[4] = {0, 0, 0, 0};
  std::int64_t i = 0;
  for (; i + 4 <= d; i += 4)
    for (int l = 0; l < 4; ++l) s[l] += static_cast<double>(a[i + l]) * static_cast<double>(b[i + l]);
  for (; i < d; ++i) s[0] += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

std::string index_str(const Shape& lead, std::int64_t flat) {
  // The position of vector `flat` in the leading shape, e.g. "[2, 7]".
  Shape at(lead.size());
  for (std::size_t a = lead.size(); a-- > 0;) {
    at[a] = lead[a] ? flat % lead[a] : 0;
    flat = lead[a] ? flat / lead[a] : 0;
  }
  return shape_str(at);
}

std::string count_str(std::int64_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

}  // namespace

const char* metric_name(Metric m) { return m == Metric::l2 ? "l2" : "cosine"; }

double squared_distance(const float* a, const float* b, std::int64_t d) {
  double s[4] = {0, 0, 0, 0};
  std::int64_t i = 0;
  for (; i + 4 <= d; i += 4)
    for (int l = 0; l < 4; ++l) {
      const double t = static_cast<double>(a[i + l]) - static_cast<double>(b[i + l]);
      s[l] += t * t;
    }
  for (; i < d; ++i) {
    const double t = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    s[0] += t * t;
  }
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// ---------------------------------------------------------------- FlatIndex

FlatIndex::FlatIndex(const float* codes, std::int64_t k, std::int64_t d, Metric metric)
    : k_(k), d_(d), metric_(metric), codes_(codes, codes + k * d), sq_norms_(static_cast<std::size_t>(k)),
      norms_(static_cast<std::size_t>(k)) {
  if (k < 1 || d < 1) throw_internal("FlatIndex: empty codebook");
  if (k > std::numeric_limits<int>::max() || d > std::numeric_limits<int>::max())
    throw_data("a codebook of " + std::to_string(k) + " codes of dimension " + std::to_string(d) +
               " is too large for BLAS");
  gemm_codes_ = codes_;
  for (std::int64_t j = 0; j < k; ++j) {
    const float* e = codes_.data() + j * d;
    norms_[j] = std::sqrt(dot(e, e, d));
    float* g = gemm_codes_.data() + j * d;
    if (metric == Metric::cosine) {
      const double inv = norms_[j] > 0 ? 1 / norms_[j] : 0;
      for (std::int64_t i = 0; i < d; ++i) g[i] = static_cast<float>(e[i] * inv);
      sq_norms_[j] = 0;  // scores are -2 cos: the same order as 2 - 2 cos
      max_norm_ = 1;
    } else {
      sq_norms_[j] = static_cast<float>(norms_[j] * norms_[j]);
      max_norm_ = std::max(max_norm_, norms_[j]);
    }
  }
}

// The scratch and the work of one thread: a block of up to kRowBlock vectors
// against every block of codes.
//
// The SGEMM gives the approximate score a_j = |e_j|^2 - 2 x.e_j (cosine:
// -2 x^.e^_j of the unit vectors), which orders codes as the distance does.
// Its error is below delta = 2 (D + 8) u (|x| + max |e|)^2 (u = 2^-24: the
// dot product's gamma_D |x| |e_j| plus the roundings of |e_j|^2, of the
// subtraction and, for cosine, of the unit vectors; doubled for safety), so
// every code whose a_j is within 2 delta of the k-th best a can be the true
// k-th nearest: those are the candidates, ranked by the exact distance.
class SearchBlock {
 public:
  SearchBlock(const FlatIndex& ix, std::int64_t k)
      : ix_(ix), k_(k), d_(ix.d_), scores_(static_cast<std::size_t>(kRowBlock * std::min(ix.k_, kCodeBlock))),
        cands_(kRowBlock), heaps_(k > 1 ? kRowBlock : 0) {
    if (ix.metric_ == Metric::cosine) units_.resize(static_cast<std::size_t>(kRowBlock * d_));
  }

  void run(const float* x, std::int64_t n, std::int64_t ldx, std::int64_t* idx, std::int64_t ldi, float* dist,
           std::int64_t ldd) {
    prepare_rows(x, n, ldx);
    const bool cosine = ix_.metric_ == Metric::cosine;
    const float* a = cosine ? units_.data() : x;
    const std::int64_t lda = cosine ? d_ : ldx;
    for (std::int64_t c0 = 0; c0 < ix_.k_; c0 += kCodeBlock) {
      const std::int64_t kb = std::min(kCodeBlock, ix_.k_ - c0);
      // scores = |e|^2 - 2 x.e: the norms first, then the SGEMM adds -2 x.e
      // (beta = 1 also spares OpenBLAS its separate pass over C for beta = 0).
      for (std::int64_t i = 0; i < n; ++i)
        std::memcpy(scores_.data() + i * kb, ix_.sq_norms_.data() + c0, static_cast<std::size_t>(kb) * sizeof(float));
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(kb),
                  static_cast<int>(d_), -2.f, a, static_cast<int>(lda), ix_.gemm_codes_.data() + c0 * d_,
                  static_cast<int>(d_), 1.f, scores_.data(), static_cast<int>(kb));
      for (std::int64_t i = 0; i < n; ++i) {
        if (exact_all_[i]) continue;
        const float* s = scores_.data() + i * kb;
        if (k_ == 1)
          scan_nearest(i, s, kb, c0);
        else
          scan_topk(i, s, kb, c0);
      }
    }
    for (std::int64_t i = 0; i < n; ++i) finish_row(i, x + i * ldx, idx + i * ldi, dist ? dist + i * ldd : nullptr);
  }

 private:
  struct Candidate {
    float score;
    std::int64_t code;
  };

  const FlatIndex& ix_;
  const std::int64_t k_, d_;
  std::vector<float> scores_, units_;
  std::vector<double> row_norms_;
  std::vector<float> slack_, best_;
  std::vector<char> exact_all_;
  std::vector<std::vector<Candidate>> cands_;
  std::vector<std::vector<float>> heaps_;  // top-k: max-heaps of the k best scores so far
  std::vector<std::pair<double, std::int64_t>> ranked_;

  void prepare_rows(const float* x, std::int64_t n, std::int64_t ldx) {
    row_norms_.assign(static_cast<std::size_t>(n), 0);
    slack_.assign(static_cast<std::size_t>(n), 0);
    best_.assign(static_cast<std::size_t>(n), std::numeric_limits<float>::infinity());
    exact_all_.assign(static_cast<std::size_t>(n), 0);
    const bool cosine = ix_.metric_ == Metric::cosine;
    for (std::int64_t i = 0; i < n; ++i) {
      const float* xi = x + i * ldx;
      const double norm = std::sqrt(dot(xi, xi, d_));
      row_norms_[i] = norm;
      if (cosine) {
        const double inv = norm > 0 ? 1 / norm : 0;
        for (std::int64_t c = 0; c < d_; ++c) units_[i * d_ + c] = static_cast<float>(xi[c] * inv);
      }
      const double reach = (cosine ? 1.0 : norm) + ix_.max_norm_;
      // Underflow adds an absolute error of at most a few subnormal steps per term.
      const double delta = 2 * static_cast<double>(d_ + 8) * kUnitRoundoff * reach * reach +
                           static_cast<double>(d_ + 8) * 0x1p-126;
      // Beyond these, float32 scores may overflow or the bound is useless:
      // compare this vector with every code directly.
      exact_all_[i] = !(reach * reach < 1e30) || static_cast<double>(d_ + 8) * kUnitRoundoff > 0.01;
      // 2 delta, rounded up to a float.
      slack_[i] = std::nextafter(static_cast<float>(2 * delta), std::numeric_limits<float>::infinity());
      if (!std::isfinite(slack_[i])) exact_all_[i] = 1;
      cands_[i].clear();
      if (k_ > 1) heaps_[i].clear();
    }
  }

  // best + slack, rounded up (by at least one ulp): no candidate is lost to
  // the rounding of the sum.
  static float threshold(float best, float slack) {
    const float t = best + slack;
    return t + (std::abs(t) * 0x1p-22f + 0x1p-149f);
  }

  // The first j' >= j, in steps of 16, whose group s[j'..j'+16) holds a score
  // <= t; kb rounded down to 16 when there is none. Almost every group is
  // above the threshold, so this is the hot loop: packed compares only.
  static std::int64_t next_group(const float* s, std::int64_t j, std::int64_t kb, float t) {
#if defined(__SSE2__)
    const __m128 tt = _mm_set1_ps(t);
    for (; j + 16 <= kb; j += 16) {
      const __m128 m = _mm_or_ps(_mm_or_ps(_mm_cmple_ps(_mm_loadu_ps(s + j), tt), _mm_cmple_ps(_mm_loadu_ps(s + j + 4), tt)),
                                 _mm_or_ps(_mm_cmple_ps(_mm_loadu_ps(s + j + 8), tt), _mm_cmple_ps(_mm_loadu_ps(s + j + 12), tt)));
      if (_mm_movemask_ps(m)) return j;
    }
#else
    for (; j + 16 <= kb; j += 16) {
      bool any = false;
      for (int l = 0; l < 16; ++l) any |= s[j + l] <= t;
      if (any) return j;
    }
#endif
    return j;
  }

  static float block_min(const float* s, std::int64_t kb) {
    std::int64_t j = 0;
    float m = std::numeric_limits<float>::infinity();
#if defined(__SSE2__)
    __m128 m0 = _mm_set1_ps(m), m1 = m0, m2 = m0, m3 = m0;
    for (; j + 16 <= kb; j += 16) {
      m0 = _mm_min_ps(m0, _mm_loadu_ps(s + j));
      m1 = _mm_min_ps(m1, _mm_loadu_ps(s + j + 4));
      m2 = _mm_min_ps(m2, _mm_loadu_ps(s + j + 8));
      m3 = _mm_min_ps(m3, _mm_loadu_ps(s + j + 12));
    }
    float lanes[4];
    _mm_storeu_ps(lanes, _mm_min_ps(_mm_min_ps(m0, m1), _mm_min_ps(m2, m3)));
    m = std::min(std::min(lanes[0], lanes[1]), std::min(lanes[2], lanes[3]));
#endif
    for (; j < kb; ++j) m = std::min(m, s[j]);
    return m;
  }

  // The block's minimum first (packed), then one pass that collects every
  // code within the slack of the best: the candidates (finish_row drops
  // those that a later block's better best leaves behind).
  void scan_nearest(std::int64_t i, const float* s, std::int64_t kb, std::int64_t c0) {
    float best = std::min(best_[i], block_min(s, kb));
    const float slack = slack_[i];
    float t = threshold(best, slack);
    auto& cands = cands_[i];
    std::int64_t j = 0;
    while (true) {
      j = next_group(s, j, kb, t);
      const std::int64_t end = j + 16 <= kb ? j + 16 : kb;  // a group with a hit, or the tail
      for (; j < end; ++j) {
        const float v = s[j];
        if (!(v <= t)) continue;
        cands.push_back({v, c0 + j});
        if (v < best) {
          best = v;
          t = threshold(best, slack);
        }
      }
      if (j >= kb) break;
    }
    best_[i] = best;
  }

  // The same with a max-heap of the k best scores: the threshold is the k-th best + slack.
  void scan_topk(std::int64_t i, const float* s, std::int64_t kb, std::int64_t c0) {
    auto& heap = heaps_[i];
    auto& cands = cands_[i];
    const auto full = static_cast<std::size_t>(k_);
    const float slack = slack_[i];
    float t = heap.size() == full ? threshold(heap.front(), slack) : std::numeric_limits<float>::infinity();
    std::int64_t j = 0;
    while (true) {
      j = next_group(s, j, kb, t);
      const std::int64_t end = j + 16 <= kb ? j + 16 : kb;
      for (; j < end; ++j) {
        const float v = s[j];
        if (!(v <= t)) continue;
        cands.push_back({v, c0 + j});
        if (heap.size() < full) {
          heap.push_back(v);
          std::push_heap(heap.begin(), heap.end());
        } else if (v < heap.front()) {
          std::pop_heap(heap.begin(), heap.end());
          heap.back() = v;
          std::push_heap(heap.begin(), heap.end());
        }
        if (heap.size() == full) t = threshold(heap.front(), slack);
      }
      if (j >= kb) break;
    }
    // Keep the list short when many early candidates have since fallen behind.
    if (cands.size() > 4 * full + 1024)
      cands.erase(std::remove_if(cands.begin(), cands.end(), [t](const Candidate& c) { return !(c.score <= t); }),
                  cands.end());
  }

  // The distance that ranks: squared L2, or 2 - 2 cos.
  double exact(const float* x, double x_norm, std::int64_t j) const {
    if (ix_.metric_ == Metric::l2) return squared_distance(x, ix_.code(j), d_);
    const double den = x_norm * ix_.norms_[j];
    return den > 0 ? 2 - 2 * (dot(x, ix_.code(j), d_) / den) : 2;
  }

  void finish_row(std::int64_t i, const float* x, std::int64_t* idx, float* dist) {
    ranked_.clear();
    if (exact_all_[i]) {
      for (std::int64_t j = 0; j < ix_.k_; ++j) ranked_.emplace_back(exact(x, row_norms_[i], j), j);
    } else {
      const float t = threshold(k_ == 1 ? best_[i] : heaps_[i].front(), slack_[i]);
      for (const Candidate& c : cands_[i])
        if (c.score <= t) ranked_.emplace_back(exact(x, row_norms_[i], c.code), c.code);
    }
    // Nearest first; equal distances: lowest index first.
    const auto k = static_cast<std::ptrdiff_t>(k_);
    std::partial_sort(ranked_.begin(), ranked_.begin() + k, ranked_.end());
    for (std::ptrdiff_t r = 0; r < k; ++r) {
      idx[r] = ranked_[r].second;
      if (dist) dist[r] = static_cast<float>(ranked_[r].first);
    }
  }
};

void FlatIndex::search(const float* x, std::int64_t n, std::int64_t ldx, std::int64_t k, std::int64_t* idx,
                       std::int64_t ldi, float* dist, std::int64_t ldd) const {
  if (k < 1 || k > k_) throw_internal("FlatIndex::search: k out of range");
  if (n <= 0) return;
  const std::int64_t blocks = (n + kRowBlock - 1) / kRowBlock;
  auto run = [&](std::int64_t b0, std::int64_t b1) {
    SearchBlock sb(*this, k);
    for (std::int64_t b = b0; b < b1; ++b) {
      const std::int64_t r0 = b * kRowBlock, rows = std::min(kRowBlock, n - r0);
      sb.run(x + r0 * ldx, rows, ldx, idx + r0 * ldi, ldi, dist ? dist + r0 * ldd : nullptr, ldd);
    }
  };
  if (blocks > 1 && thread_count() > 1) {
    OneBlasThread one;
    parallel_for(blocks, 1, run);
  } else {
    run(0, blocks);  // one block: OpenBLAS may share the codes out over its threads
  }
}

// ---------------------------------------------------------------- Quantizer

namespace {

// The codebook as float32, checked: rank, not empty, finite.
Tensor checked_codebook(const Tensor& cb, std::size_t rank, const char* layout, const std::string& where) {
  if (cb.ndim() != rank)
    throw_data("the codebook must be " + std::string(layout) + ", not " + shape_str(cb.shape()) + " (" + where + ")");
  for (std::int64_t s : cb.shape())
    if (s == 0) throw_data("the codebook " + shape_str(cb.shape()) + " is empty (" + where + ")");
  Tensor f = cb.dtype() == DType::f4 ? cb : cb.astype(DType::f4);
  const float* p = f.data<float>();
  const std::int64_t d = f.shape().back();
  for (std::int64_t i = 0; i < f.numel(); ++i)
    if (!std::isfinite(p[i])) {
      Shape lead(f.shape().begin(), f.shape().end() - 1);
      throw_data("code " + index_str(lead, i / d) + " of the codebook has " + (std::isnan(p[i]) ? "a NaN" : "an infinite") +
                 " value at element " + std::to_string(i % d) + " (" + where + ")");
    }
  return f;
}

// FSQ constants of one channel.
struct FsqChannel {
  double half_l, offset, shift;
  std::int64_t half_width;
};

FsqChannel fsq_channel(std::int64_t levels) {
  FsqChannel c;
  c.half_l = static_cast<double>(levels - 1) * (1 - 1e-3) / 2;
  c.offset = levels % 2 == 0 ? 0.5 : 0.0;
  c.shift = std::tan(c.offset / c.half_l);
  c.half_width = levels / 2;
  return c;
}

}  // namespace

Quantizer Quantizer::flat(const Tensor& codebook, Metric metric, const std::string& where) {
  const Tensor cb = checked_codebook(codebook, 2, "[K, D]", where);
  Quantizer q;
  q.kind_ = Kind::flat;
  q.metric_ = metric;
  q.codes_ = cb.dim(0);
  q.dim_ = q.sub_dim_ = cb.dim(1);
  q.indexes_.emplace_back(cb.data<float>(), q.codes_, q.dim_, metric);
  return q;
}

Quantizer Quantizer::residual(const Tensor& codebook, const std::string& where) {
  const Tensor cb = checked_codebook(codebook, 3, "[L, K, D] for --residual", where);
  Quantizer q;
  q.kind_ = Kind::residual;
  q.stages_ = cb.dim(0);
  q.codes_ = cb.dim(1);
  q.dim_ = q.sub_dim_ = cb.dim(2);
  for (std::int64_t l = 0; l < q.stages_; ++l)
    q.indexes_.emplace_back(cb.data<float>() + l * q.codes_ * q.dim_, q.codes_, q.dim_, Metric::l2);
  return q;
}

Quantizer Quantizer::product(const Tensor& codebook, const std::string& where) {
  const Tensor cb = checked_codebook(codebook, 3, "[M, K, D/M] for --pq", where);
  Quantizer q;
  q.kind_ = Kind::product;
  q.stages_ = cb.dim(0);
  q.codes_ = cb.dim(1);
  q.sub_dim_ = cb.dim(2);
  q.dim_ = q.stages_ * q.sub_dim_;
  for (std::int64_t m = 0; m < q.stages_; ++m)
    q.indexes_.emplace_back(cb.data<float>() + m * q.codes_ * q.sub_dim_, q.codes_, q.sub_dim_, Metric::l2);
  return q;
}

Quantizer Quantizer::fsq(const std::vector<std::int64_t>& levels) {
  if (levels.empty()) throw_usage("--fsq needs at least one level, e.g. 8,5,5,5");
  Quantizer q;
  q.kind_ = Kind::fsq;
  q.levels_ = levels;
  q.dim_ = q.sub_dim_ = static_cast<std::int64_t>(levels.size());
  q.codes_ = 1;
  for (std::int64_t l : levels) {
    if (l < 2 || l > 65536) throw_usage("FSQ levels must be 2 to 65536, not " + std::to_string(l));
    if (q.codes_ > (std::int64_t{1} << 62) / l) throw_usage("the FSQ code space (the product of the levels) must stay below 2^62");
    q.codes_ *= l;
  }
  return q;
}

void Quantizer::encode(const float* x, std::int64_t n, std::int64_t* idx, float* err, float* quantized) const {
  const std::int64_t d = dim_;
  switch (kind_) {
    case Kind::flat: {
      indexes_[0].search(x, n, d, 1, idx, 1, err, 1);
      if (quantized)
        for (std::int64_t i = 0; i < n; ++i) std::memcpy(quantized + i * d, indexes_[0].code(idx[i]), d * sizeof(float));
      return;
    }
    case Kind::residual: {
      // Stage l searches what the stages before it left, in float32 as a
      // framework would: r <- r - e.
      std::vector<float> r(x, x + n * d);
      for (std::int64_t l = 0; l < stages_; ++l) {
        indexes_[l].search(r.data(), n, d, 1, idx + l, stages_, nullptr, 0);
        parallel_for(n, 1024, [&](std::int64_t b, std::int64_t e) {
          for (std::int64_t i = b; i < e; ++i) {
            const float* c = indexes_[l].code(idx[i * stages_ + l]);
            for (std::int64_t j = 0; j < d; ++j) r[i * d + j] -= c[j];
          }
        });
      }
      break;
    }
    case Kind::product:
      for (std::int64_t m = 0; m < stages_; ++m)
        indexes_[m].search(x + m * sub_dim_, n, d, 1, idx + m, stages_, nullptr, 0);
      break;
    case Kind::fsq: {
      std::vector<FsqChannel> ch;
      for (std::int64_t l : levels_) ch.push_back(fsq_channel(l));
      parallel_for(n, 4096, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) {
          std::int64_t index = 0, basis = 1;
          double sq = 0;
          for (std::int64_t c = 0; c < d; ++c) {
            const FsqChannel& f = ch[c];
            const double bounded = std::tanh(static_cast<double>(x[i * d + c]) + f.shift) * f.half_l - f.offset;
            const double q = std::nearbyint(bounded);  // half to even, as numpy and jax round
            const double hw = static_cast<double>(f.half_width);
            const double code = q / hw + 0.0;  // + 0.0: no -0 (round(-0.3) is -0)
            sq += (bounded / hw - code) * (bounded / hw - code);
            if (quantized) quantized[i * d + c] = static_cast<float>(code);
            index += (static_cast<std::int64_t>(q) + f.half_width) * basis;
            basis *= levels_[c];
          }
          idx[i] = index;
          if (err) err[i] = static_cast<float>(sq);
        }
      });
      return;
    }
  }
  // Residual and product: the reconstruction as decode() makes it, and the
  // exact squared distance to it.
  if (!err && !quantized) return;
  std::vector<float> own;
  float* out = quantized;
  if (!out) {
    own.resize(static_cast<std::size_t>(n * d));
    out = own.data();
  }
  decode(idx, n, out);
  if (err)
    parallel_for(n, 1024, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) err[i] = static_cast<float>(squared_distance(x + i * d, out + i * d, d));
    });
}

void Quantizer::decode(const std::int64_t* idx, std::int64_t n, float* out) const {
  const std::int64_t d = dim_;
  parallel_for(n, 1024, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      float* o = out + i * d;
      switch (kind_) {
        case Kind::flat:
          std::memcpy(o, indexes_[0].code(idx[i]), d * sizeof(float));
          break;
        case Kind::residual:
          // The sum in stage order, in float32.
          std::memcpy(o, indexes_[0].code(idx[i * stages_]), d * sizeof(float));
          for (std::int64_t l = 1; l < stages_; ++l) {
            const float* c = indexes_[l].code(idx[i * stages_ + l]);
            for (std::int64_t j = 0; j < d; ++j) o[j] += c[j];
          }
          break;
        case Kind::product:
          for (std::int64_t m = 0; m < stages_; ++m)
            std::memcpy(o + m * sub_dim_, indexes_[m].code(idx[i * stages_ + m]), sub_dim_ * sizeof(float));
          break;
        case Kind::fsq: {
          std::int64_t rest = idx[i];
          for (std::int64_t c = 0; c < d; ++c) {
            const std::int64_t hw = levels_[c] / 2;
            const std::int64_t digit = rest % levels_[c];
            rest /= levels_[c];
            o[c] = static_cast<float>(static_cast<double>(digit - hw) / static_cast<double>(hw));
          }
          break;
        }
      }
    }
  });
}

Quantizer make_quantizer(const Tensor& codebook, bool residual, std::int64_t pq, Metric metric,
                         const std::string& where) {
  if (residual && pq > 0) throw_usage("give --residual or --pq, not both");
  if (metric != Metric::l2 && (residual || pq > 0))
    throw_usage(std::string(residual ? "--residual" : "--pq") + " works with --metric l2 only");
  if (residual) return Quantizer::residual(codebook, where);
  if (pq > 0) {
    Quantizer q = Quantizer::product(codebook, where);
    if (q.stages() != pq)
      throw_data("the codebook " + shape_str(codebook.shape()) + " has " + count_str(q.stages(), "subspace") +
                 ", not the " + std::to_string(pq) + " of --pq (" + where + ")");
    return q;
  }
  if (codebook.ndim() == 3)
    throw_data("a codebook of shape " + shape_str(codebook.shape()) +
               " needs --residual ([L, K, D]) or --pq M ([M, K, D/M]) (" + where + ")");
  return Quantizer::flat(codebook, metric, where);
}

std::vector<std::int64_t> parse_levels(const std::string& text) {
  std::vector<std::int64_t> out;
  std::size_t at = 0;
  while (true) {
    const std::size_t end = text.find(',', at);
    const std::string item = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 2 || v > 65536)
      throw_usage("--fsq takes levels from 2 to 65536 separated by commas, e.g. 8,5,5,5, not " + in_quotes(text));
    out.push_back(v);
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return out;
}

// ---------------------------------------------------------------- tensors

Tensor prepare_input(const Quantizer& q, const Tensor& x, const std::string& where) {
  if (x.ndim() == 0) throw_data("the input is a scalar, not vectors of dimension " + std::to_string(q.dim()) + " (" + where + ")");
  const std::int64_t d = x.shape().back();
  if (d != q.dim()) {
    const char* what = q.kind() == Kind::fsq ? "--fsq has " : "the codebook takes ";
    throw_data("the input has vectors of dimension " + std::to_string(d) + " (shape " + shape_str(x.shape()) + "), " +
               what + count_str(q.dim(), q.kind() == Kind::fsq ? "level" : "dimension") + " (" + where + ")");
  }
  Tensor f = x.dtype() == DType::f4 ? x : x.astype(DType::f4);
  const float* p = f.data<float>();
  for (std::int64_t i = 0; i < f.numel(); ++i)
    if (!std::isfinite(p[i])) {
      const Shape lead(f.shape().begin(), f.shape().end() - 1);
      throw_data("vector " + index_str(lead, i / d) + " has " + (std::isnan(p[i]) ? "a NaN" : "an infinite") +
                 " value at element " + std::to_string(i % d) + " (" + where + ")");
    }
  return f;
}

Encoded encode(const Quantizer& q, const Tensor& x, const EncodeOptions& opt) {
  const std::int64_t d = q.dim();
  const std::int64_t n = x.numel() / d;
  Shape lead(x.shape().begin(), x.shape().end() - 1);
  if (opt.topk > 0 && q.kind() != Kind::flat) throw_usage("--topk works with a flat codebook only");
  if (opt.topk > q.codes())
    throw_usage("--topk " + std::to_string(opt.topk) + " is more than the codebook's " + count_str(q.codes(), "code"));
  const std::int64_t width = opt.topk > 0 ? opt.topk : q.stages();
  Shape idx_shape = lead, dist_shape = lead, quant_shape = lead;
  if (opt.topk > 0 || q.stages() > 1 || q.kind() == Kind::residual || q.kind() == Kind::product) idx_shape.push_back(width);
  if (opt.topk > 0) dist_shape.push_back(opt.topk);
  quant_shape.push_back(d);

  Encoded e;
  e.topk = opt.topk;
  e.indices = Tensor::uninitialized(DType::i8, idx_shape);
  if (opt.distances) e.distances = Tensor::uninitialized(DType::f4, dist_shape);
  if (opt.quantized) e.quantized = Tensor::uninitialized(DType::f4, quant_shape);
  const float* xp = x.data<float>();
  std::int64_t* ip = e.indices.data<std::int64_t>();
  float* dp = opt.distances ? e.distances.data<float>() : nullptr;
  float* qp = opt.quantized ? e.quantized.data<float>() : nullptr;
  for (std::int64_t i0 = 0; i0 < n; i0 += kEncodeChunk) {
    const std::int64_t m = std::min(kEncodeChunk, n - i0);
    if (opt.topk > 0) {
      q.index(0).search(xp + i0 * d, m, d, opt.topk, ip + i0 * width, width, dp ? dp + i0 * width : nullptr, width);
      if (qp)
        for (std::int64_t i = i0; i < i0 + m; ++i)
          std::memcpy(qp + i * d, q.index(0).code(ip[i * width]), d * sizeof(float));
    } else {
      q.encode(xp + i0 * d, m, ip + i0 * width, dp ? dp + i0 : nullptr, qp ? qp + i0 * d : nullptr);
    }
    if (opt.progress) opt.progress(i0 + m, n);
  }
  return e;
}

Tensor decode(const Quantizer& q, const Tensor& indices, const std::string& where) {
  const bool wide = q.kind() == Kind::residual || q.kind() == Kind::product;
  if (wide && (indices.ndim() == 0 || indices.shape().back() != q.stages()))
    throw_data("indices of shape " + shape_str(indices.shape()) + " do not fit a codebook of " +
               count_str(q.stages(), q.kind() == Kind::residual ? "stage" : "subspace") + ": the last axis must be " +
               std::to_string(q.stages()) + " (" + where + ")");
  if (indices.dtype() == DType::b1 || !(is_float(indices.dtype()) || is_signed_int(indices.dtype()) ||
                                        is_unsigned_int(indices.dtype())))
    throw_data("indices must be integers, not " + std::string(dtype_name(indices.dtype())) + " (" + where + ")");
  const Shape& s = indices.shape();
  const std::int64_t n = indices.numel() / (wide ? q.stages() : 1);
  const Shape lead = wide ? Shape(s.begin(), s.end() - 1) : s;
  // Every index as int64, checked: integral and in range; the first bad one is named.
  std::vector<std::int64_t> idx(static_cast<std::size_t>(indices.numel()));
  for (std::int64_t i = 0; i < indices.numel(); ++i) {
    const double v = indices.get(i);
    const bool in_range = v >= 0 && v < static_cast<double>(q.codes());
    if (!in_range || v != std::floor(v)) {
      char num[40];
      std::snprintf(num, sizeof num, "%.17g", v);
      const std::string at = index_str(s, i);
      if (v != std::floor(v) || std::isnan(v))
        throw_data("index " + std::string(num) + " at " + at + " is not an integer (" + where + ")");
      throw_data("index " + std::string(num) + " at " + at + " is out of range: " +
                 (q.kind() == Kind::fsq ? "the FSQ levels give " : "the codebook has ") + count_str(q.codes(), "code") + " (0 to " + std::to_string(q.codes() - 1) + ") (" + where + ")");
    }
    idx[static_cast<std::size_t>(i)] = static_cast<std::int64_t>(v);
  }
  Shape out_shape = lead;
  out_shape.push_back(q.dim());
  Tensor out = Tensor::uninitialized(DType::f4, out_shape);
  q.decode(idx.data(), n, out.data<float>());
  return out;
}

Tensor patchify(const Tensor& image, std::int64_t p, const std::string& where) {
  if (p < 1) throw_usage("--patch must be 1 or more, not " + std::to_string(p));
  Tensor img = image.ndim() == 2 ? image.reshaped({image.dim(0), image.dim(1), 1}) : image;
  if (img.ndim() < 3) throw_data("--patch needs an image [H, W, C] or [H, W], not " + shape_str(image.shape()) + " (" + where + ")");
  const std::size_t r = img.ndim();
  const std::int64_t h = img.dim(r - 3), w = img.dim(r - 2), c = img.dim(r - 1);
  if (h % p != 0 || w % p != 0)
    throw_data("the image is " + std::to_string(h) + "x" + std::to_string(w) + ", which does not split into " +
               std::to_string(p) + "x" + std::to_string(p) + " patches (" + where + ")");
  Shape out_shape(img.shape().begin(), img.shape().end() - 3);
  const std::int64_t images = checked_numel(out_shape);
  out_shape.insert(out_shape.end(), {h / p, w / p, checked_numel({p, p, c})});  // p * p * c may overflow
  Tensor out = Tensor::uninitialized(img.dtype(), out_shape);
  const std::size_t run = static_cast<std::size_t>(p * c) * img.itemsize();  // one patch row
  const std::byte* src = img.bytes();
  std::byte* dst = out.bytes();
  for (std::int64_t b = 0; b < images; ++b)
    for (std::int64_t py = 0; py < h / p; ++py)
      for (std::int64_t px = 0; px < w / p; ++px)
        for (std::int64_t y = 0; y < p; ++y) {
          const std::int64_t row = b * h + py * p + y;
          std::memcpy(dst, src + static_cast<std::size_t>((row * w + px * p) * c) * img.itemsize(), run);
          dst += run;
        }
  return out;
}

Tensor unpatchify(const Tensor& patches, std::int64_t p, const std::string& where) {
  if (p < 1) throw_usage("--patch must be 1 or more, not " + std::to_string(p));
  std::int64_t area = 0;
  if (__builtin_mul_overflow(p, p, &area))
    throw_data("--patch " + std::to_string(p) + " is too large: a patch of " + std::to_string(p) + "x" +
               std::to_string(p) + " has more pixels than 64 bits count (" + where + ")");
  if (patches.ndim() < 3 || patches.shape().back() % area != 0)
    throw_data("--patch " + std::to_string(p) + " needs vectors [h, w, " + std::to_string(p) + "*" + std::to_string(p) +
               "*C], not " + shape_str(patches.shape()) + " (" + where + ")");
  const std::size_t r = patches.ndim();
  const std::int64_t hp = patches.dim(r - 3), wp = patches.dim(r - 2), c = patches.dim(r - 1) / area;
  Shape out_shape(patches.shape().begin(), patches.shape().end() - 3);
  const std::int64_t images = checked_numel(out_shape);
  out_shape.insert(out_shape.end(), {checked_numel({hp, p}), checked_numel({wp, p}), c});  // may overflow
  Tensor out = Tensor::uninitialized(patches.dtype(), out_shape);
  const std::size_t run = static_cast<std::size_t>(p * c) * patches.itemsize();
  const std::byte* src = patches.bytes();
  std::byte* dst = out.bytes();
  const std::int64_t h = hp * p, w = wp * p;
  for (std::int64_t b = 0; b < images; ++b)
    for (std::int64_t py = 0; py < hp; ++py)
      for (std::int64_t px = 0; px < wp; ++px)
        for (std::int64_t y = 0; y < p; ++y) {
          const std::int64_t row = b * h + py * p + y;
          std::memcpy(dst + static_cast<std::size_t>((row * w + px * p) * c) * patches.itemsize(), src, run);
          src += run;
        }
  return out;
}

Tensor to_uint8_image(const Tensor& x) {
  Tensor out(DType::u1, x.shape());
  std::uint8_t* o = out.data<std::uint8_t>();
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double v = x.get(i);
    o[i] = static_cast<std::uint8_t>(std::isnan(v) ? 0 : std::nearbyint(std::clamp(v, 0.0, 255.0)));
  }
  return out;
}

// ---------------------------------------------------------------- statistics

UsageCounter::UsageCounter(const Quantizer& q)
    : stages_(q.stages()), codes_(q.codes()), dim_(q.dim()), dense_(q.codes() <= (std::int64_t{1} << 24)) {
  if (dense_)
    dense_counts_.assign(static_cast<std::size_t>(stages_), std::vector<std::int64_t>(static_cast<std::size_t>(codes_)));
  else
    sparse_indices_.resize(static_cast<std::size_t>(stages_));
}

void UsageCounter::add(const Encoded& e) {
  if (e.distances.numel() == 0 && e.indices.numel() != 0) throw_internal("UsageCounter::add needs the distances");
  // With top-k only the nearest code (column 0) counts.
  const std::int64_t n = e.topk > 0 ? e.distances.numel() / e.topk : e.distances.numel();
  const std::int64_t step = e.topk > 0 ? e.topk : stages_;
  const std::int64_t* idx = e.indices.data<std::int64_t>();
  const float* dist = e.distances.data<float>();
  for (std::int64_t i = 0; i < n; ++i) {
    sum_sq_ += dist[i * (e.topk > 0 ? e.topk : 1)];
    for (std::int64_t s = 0; s < (e.topk > 0 ? 1 : stages_); ++s) {
      const std::int64_t c = idx[i * step + s];
      if (dense_)
        ++dense_counts_[s][c];
      else
        sparse_indices_[s].push_back(c);
    }
  }
  vectors_ += n;
}

Stats UsageCounter::summary() const {
  Stats st;
  st.vectors = vectors_;
  st.dim = dim_;
  st.mean_squared_distance = vectors_ ? sum_sq_ / static_cast<double>(vectors_) : 0;
  st.mse = st.mean_squared_distance / static_cast<double>(dim_);
  for (std::int64_t s = 0; s < stages_; ++s) {
    // (code, count) of every used code, in code order.
    std::vector<std::pair<std::int64_t, std::int64_t>> used;
    if (dense_) {
      const auto& c = dense_counts_[s];
      for (std::int64_t j = 0; j < codes_; ++j)
        if (c[j]) used.emplace_back(j, c[j]);
    } else {
      std::vector<std::int64_t> v = sparse_indices_[s];
      std::sort(v.begin(), v.end());
      for (std::size_t a = 0; a < v.size();) {
        std::size_t b = a;
        while (b < v.size() && v[b] == v[a]) ++b;
        used.emplace_back(v[a], static_cast<std::int64_t>(b - a));
        a = b;
      }
    }
    StageUsage u;
    u.codes = codes_;
    u.used = static_cast<std::int64_t>(used.size());
    u.dead = codes_ - u.used;
    double entropy = 0;
    for (const auto& [code, count] : used) {
      const double p = static_cast<double>(count) / static_cast<double>(vectors_);
      entropy -= p * std::log(p);
    }
    u.perplexity = vectors_ ? std::exp(entropy) : 0;
    std::vector<std::int64_t> counts;
    for (const auto& cc : used) counts.push_back(cc.second);
    std::sort(counts.begin(), counts.end());
    // Counts over all codes: the dead ones are zeros below the used ones.
    auto count_at = [&](std::int64_t r) { return r < u.dead ? 0 : counts[static_cast<std::size_t>(r - u.dead)]; };
    u.min_count = count_at(0);
    u.max_count = count_at(codes_ - 1);
    u.median_count = codes_ % 2 ? static_cast<double>(count_at(codes_ / 2))
                                : (static_cast<double>(count_at(codes_ / 2 - 1)) + static_cast<double>(count_at(codes_ / 2))) / 2;
    auto most = used;
    const std::size_t top = std::min<std::size_t>(5, most.size());
    std::partial_sort(most.begin(), most.begin() + static_cast<std::ptrdiff_t>(top), most.end(),
                      [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
    u.most_used.assign(most.begin(), most.begin() + static_cast<std::ptrdiff_t>(top));
    if (codes_ <= max_histogram) {
      u.counts.assign(static_cast<std::size_t>(codes_), 0);
      for (const auto& [code, count] : used) u.counts[static_cast<std::size_t>(code)] = count;
      for (std::int64_t j = 0; j < codes_; ++j)
        if (!u.counts[static_cast<std::size_t>(j)]) u.dead_codes.push_back(j);
    }
    st.stages.push_back(std::move(u));
  }
  return st;
}

}  // namespace nnkit::vq
