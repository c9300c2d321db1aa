// The similarity tile engine of clip-score and everything that runs on it:
// the dense matrix, zero-shot and SigLIP probabilities, streamed ranks
// (retrieval, zero-shot accuracy) and the two contrastive losses.
//
// S = scale·A·Bᵀ is cut into tiles of `block` rows and columns. Each tile is
// one 2-D single-threaded cblas_sgemm and the tiles are shared out over
// nnkit's threads, row-major so that a thread reuses its rows of A while it
// walks along B. The result of an SGEMM depends on its shape and on how many
// threads OpenBLAS uses, so the tiling and the one BLAS thread per tile are
// fixed: every value is the same at any --threads, and a streamed reduction
// sees exactly the values the dense matrix holds. A shard computes some row
// blocks of the same grid, so its tiles too are bit for bit the whole run's.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

#include "nnkit/ops/clip.hpp"
#include "nnkit/parallel.hpp"

// OpenBLAS's thread control (weak, as in parallel.cpp).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace nnkit::clip {

namespace {

// While alive, OpenBLAS runs each call on the calling thread only.
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

struct Grid {
  std::int64_t n, m, block, row_blocks, col_blocks;
};

Grid make_grid(std::int64_t n, std::int64_t m, std::int64_t block) {
  if (block < 1) throw_usage("the tile size must be 1 or more, not " + std::to_string(block));
  return {n, m, block, (n + block - 1) / block, (m + block - 1) / block};
}

struct Tile {
  std::int64_t i0, i1, j0, j1;  // rows [i0, i1) of A, columns [j0, j1) of S
  const float* s;               // s[(i - i0) * ld + (j - j0)]
  std::int64_t ld;
  std::int64_t index;  // row-major position in the grid
  float at(std::int64_t i, std::int64_t j) const { return s[(i - i0) * ld + (j - j0)]; }
};

// The row blocks of part, clamped to the grid.
RowBlocks clamp(RowBlocks part, const Grid& g) {
  part.begin = std::clamp<std::int64_t>(part.begin, 0, g.row_blocks);
  part.end = std::clamp<std::int64_t>(part.end, part.begin, g.row_blocks);
  return part;
}

// Computes the tiles of scale·A·Bᵀ in the row blocks of part (all by
// default) and hands each to visit. With dest, the tiles are written into
// the [n, m] matrix dest; else each thread uses one scratch tile.
void for_each_tile(const Embeddings& a, const Embeddings& b, float scale, const StreamOptions& opt, float* dest,
                   const std::function<void(const Tile&)>& visit, RowBlocks part = {}) {
  check_same_dim(a, b);
  const Grid g = make_grid(a.rows(), b.rows(), opt.block);
  const int d = static_cast<int>(a.dim());
  part = clamp(part, g);
  const std::int64_t first = part.begin * g.col_blocks, tiles = (part.end - part.begin) * g.col_blocks;
  if (tiles == 0) return;
  if (dest && g.m > std::numeric_limits<int>::max()) throw_data("the similarity matrix is too wide for BLAS");
  std::mutex progress_mutex;
  std::int64_t done = 0;
  OneBlasThread one;
  parallel_for(tiles, 1, [&](std::int64_t t0, std::int64_t t1) {
    std::vector<float> scratch(dest ? 0 : static_cast<std::size_t>(std::min(g.block, g.n) * std::min(g.block, g.m)));
    for (std::int64_t t = first + t0; t < first + t1; ++t) {
      Tile tile;
      tile.index = t;
      tile.i0 = t / g.col_blocks * g.block;
      tile.j0 = t % g.col_blocks * g.block;
      tile.i1 = std::min(g.n, tile.i0 + g.block);
      tile.j1 = std::min(g.m, tile.j0 + g.block);
      float* out = dest ? dest + tile.i0 * g.m + tile.j0 : scratch.data();
      tile.ld = dest ? g.m : tile.j1 - tile.j0;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(tile.i1 - tile.i0),
                  static_cast<int>(tile.j1 - tile.j0), d, scale, a.row(tile.i0), d, b.row(tile.j0), d, 0.f, out,
                  static_cast<int>(tile.ld));
      tile.s = out;
      visit(tile);
      if (opt.progress) {
        std::lock_guard<std::mutex> lock(progress_mutex);
        opt.progress(++done, tiles);
      }
    }
  });
}

// A running log-sum-exp: sum of exp(x - max).
struct Lse {
  double max = -std::numeric_limits<double>::infinity(), sum = 0;
  void add(double m, double s) {
    if (s == 0) return;
    if (m > max) {
      sum = sum * std::exp(max - m) + s;
      max = m;
    } else {
      sum += s * std::exp(m - max);
    }
  }
  double value() const { return max + std::log(sum); }
};

// log(1 + exp(y)) without overflow.
double softplus(double y) { return std::max(y, 0.0) + std::log1p(std::exp(-std::abs(y))); }

}  // namespace

Tensor similarity_matrix(const Embeddings& a, const Embeddings& b, float scale, const StreamOptions& opt) {
  check_same_dim(a, b);
  Tensor out = Tensor::uninitialized(DType::f4, {a.rows(), b.rows()});
  for_each_tile(a, b, scale, opt, out.data<float>(), [](const Tile&) {});
  return out;
}

Tensor zero_shot_probabilities(const Embeddings& images, const Embeddings& classes, float scale,
                               const StreamOptions& opt) {
  Tensor p = similarity_matrix(images, classes, scale, opt);
  const std::int64_t c = classes.rows();
  float* x = p.data<float>();
  parallel_for(images.rows(), 256, [&](std::int64_t s, std::int64_t e) {
    for (std::int64_t i = s; i < e; ++i) {
      float* row = x + i * c;
      const double mx = *std::max_element(row, row + c);
      double sum = 0;
      for (std::int64_t j = 0; j < c; ++j) sum += std::exp(row[j] - mx);
      for (std::int64_t j = 0; j < c; ++j) row[j] = static_cast<float>(std::exp(row[j] - mx) / sum);
    }
  });
  return p;
}

Tensor siglip_probabilities(const Embeddings& images, const Embeddings& texts, float t, float b,
                            const StreamOptions& opt) {
  Tensor p = similarity_matrix(images, texts, t, opt);
  float* x = p.data<float>();
  const double bias = b;
  parallel_for(p.numel(), 1 << 16, [&](std::int64_t s, std::int64_t e) {
    for (std::int64_t k = s; k < e; ++k) x[k] = static_cast<float>(1.0 / (1.0 + std::exp(-(x[k] + bias))));
  });
  return p;
}

std::vector<float> positive_similarities(const Embeddings& a, const Embeddings& b,
                                         const std::vector<std::int64_t>& col_pos) {
  check_same_dim(a, b);
  const std::int64_t m = b.rows(), d = a.dim();
  std::vector<float> out(static_cast<std::size_t>(m), std::numeric_limits<float>::quiet_NaN());
  parallel_for(m, 2048, [&](std::int64_t s, std::int64_t e) {
    for (std::int64_t j = s; j < e; ++j) {
      const std::int64_t i = col_pos[j];
      if (i < 0) continue;
      const float *x = a.row(i), *y = b.row(j);
      double sum = 0;
      for (std::int64_t k = 0; k < d; ++k) sum += static_cast<double>(x[k]) * y[k];
      out[j] = static_cast<float>(sum);
    }
  });
  return out;
}

std::int64_t row_block_count(std::int64_t rows, std::int64_t block) { return make_grid(rows, 0, block).row_blocks; }

PartialRanks partial_positive_ranks(const Embeddings& a, const Embeddings& b,
                                    const std::vector<std::int64_t>& col_pos, bool want_rows, bool want_cols,
                                    const StreamOptions& opt, RowBlocks part) {
  const std::int64_t n = a.rows(), m = b.rows();
  if (static_cast<std::int64_t>(col_pos.size()) != m) throw_internal("positive_ranks: one positive per column");
  for (std::int64_t p : col_pos)
    if (p < -1 || p >= n) throw_internal("positive_ranks: positive row out of range");
  const Grid g = make_grid(n, m, opt.block);
  part = clamp(part, g);
  const std::int64_t row_begin = std::min(n, part.begin * g.block), row_end = std::min(n, part.end * g.block);
  constexpr float never = std::numeric_limits<float>::infinity();

  // A query's threshold is the similarity of its (best) positive; a row
  // without positives has none and counts nothing. Every part computes all
  // of them from the whole inputs, so the parts agree on each.
  const std::vector<float> pos = positive_similarities(a, b, col_pos);
  std::vector<float> col_thr(static_cast<std::size_t>(m), never), row_thr(static_cast<std::size_t>(n), never);
  // Each row's positive columns, ascending (CSR), to take them back out of its count.
  std::vector<std::int64_t> first(static_cast<std::size_t>(n + 1), 0), pos_cols;
  for (std::int64_t j = 0; j < m; ++j) {
    const std::int64_t i = col_pos[j];
    if (i < 0) continue;
    col_thr[j] = pos[j];
    row_thr[i] = row_thr[i] == never ? pos[j] : std::max(row_thr[i], pos[j]);
    ++first[i + 1];
  }
  for (std::int64_t i = 0; i < n; ++i) first[i + 1] += first[i];
  pos_cols.resize(static_cast<std::size_t>(first[n]));
  {
    std::vector<std::int64_t> fill(first.begin(), first.end() - 1);
    for (std::int64_t j = 0; j < m; ++j)
      if (col_pos[j] >= 0) pos_cols[fill[col_pos[j]]++] = j;
  }

  std::vector<std::int64_t> row_count(want_rows ? row_end - row_begin : 0), col_count(want_cols ? m : 0);
  std::vector<std::mutex> row_lock(static_cast<std::size_t>(g.row_blocks)),
      col_lock(static_cast<std::size_t>(g.col_blocks));
  for_each_tile(a, b, 1.f, opt, nullptr, [&](const Tile& t) {
    const std::int64_t w = t.j1 - t.j0;
    std::vector<std::int32_t> cc(static_cast<std::size_t>(want_cols ? w : 0), 0);
    std::vector<std::int32_t> rc(static_cast<std::size_t>(t.i1 - t.i0), 0);
    const float* ct = col_thr.data() + t.j0;
    for (std::int64_t i = t.i0; i < t.i1; ++i) {
      const float* s = t.s + (i - t.i0) * t.ld;
      const float tr = row_thr[i];
      std::int32_t c = 0;
      // Branch-free counts, so that the compiler vectorises them.
      if (want_cols) {
        std::int32_t* cv = cc.data();
        for (std::int64_t j = 0; j < w; ++j) {
          c += s[j] >= tr;
          cv[j] += s[j] >= ct[j];
        }
      } else {
        for (std::int64_t j = 0; j < w; ++j) c += s[j] >= tr;
      }
      if (want_rows) {
        // A query's own positives are not competitors: take back those counted.
        const auto b0 = pos_cols.begin() + first[i], b1 = pos_cols.begin() + first[i + 1];
        for (auto p = std::lower_bound(b0, b1, t.j0); p != b1 && *p < t.j1; ++p) c -= s[*p - t.j0] >= tr;
        rc[i - t.i0] = c;
      }
    }
    // Likewise for the columns, in the one tile (of one part) that holds the positive.
    if (want_cols)
      for (std::int64_t j = t.j0; j < t.j1; ++j) {
        const std::int64_t i = col_pos[j];
        if (i >= t.i0 && i < t.i1) cc[j - t.j0] -= t.at(i, j) >= col_thr[j];
      }
    if (want_rows) {
      std::lock_guard<std::mutex> lock(row_lock[t.i0 / g.block]);
      for (std::int64_t i = t.i0; i < t.i1; ++i) row_count[i - row_begin] += rc[i - t.i0];
    }
    if (want_cols) {
      std::lock_guard<std::mutex> lock(col_lock[t.j0 / g.block]);
      for (std::int64_t j = t.j0; j < t.j1; ++j) col_count[j] += cc[j - t.j0];
    }
  }, part);

  PartialRanks r;
  r.row_begin = row_begin;
  if (want_rows) {
    r.rows.resize(row_count.size());
    for (std::int64_t i = row_begin; i < row_end; ++i)
      r.rows[i - row_begin] = first[i + 1] > first[i] ? 1 + row_count[i - row_begin] : 0;
  }
  r.col_competitors = std::move(col_count);
  return r;
}

AxisRanks positive_ranks(const Embeddings& a, const Embeddings& b, const std::vector<std::int64_t>& col_pos,
                         bool want_rows, bool want_cols, const StreamOptions& opt) {
  PartialRanks p = partial_positive_ranks(a, b, col_pos, want_rows, want_cols, opt, {});
  AxisRanks r;
  r.rows = std::move(p.rows);
  r.cols = std::move(p.col_competitors);
  for (std::size_t j = 0; j < r.cols.size(); ++j) r.cols[j] = col_pos[j] >= 0 ? 1 + r.cols[j] : 0;
  return r;
}

RankSummary summarize_ranks(const std::vector<std::int64_t>& ranks, const std::vector<std::int64_t>& ks) {
  std::vector<std::int64_t> r;
  for (std::int64_t x : ranks)
    if (x > 0) r.push_back(x);
  RankSummary s;
  s.queries = static_cast<std::int64_t>(r.size());
  if (r.empty()) throw_data("no query has a positive to rank");
  for (std::int64_t k : ks) {
    const auto hits = std::count_if(r.begin(), r.end(), [k](std::int64_t x) { return x <= k; });
    s.recall.emplace_back(k, static_cast<double>(hits) / static_cast<double>(r.size()));
  }
  double inv = 0;
  for (std::int64_t x : r) inv += 1.0 / static_cast<double>(x);
  s.mrr = inv / static_cast<double>(r.size());
  const std::size_t mid = r.size() / 2;
  std::nth_element(r.begin(), r.begin() + mid, r.end());
  const double upper = static_cast<double>(r[mid]);
  if (r.size() % 2 == 1) {
    s.median_rank = upper;
  } else {
    const double lower = static_cast<double>(*std::max_element(r.begin(), r.begin() + mid));
    s.median_rank = (lower + upper) / 2;
  }
  return s;
}

RetrievalRanks retrieval_ranks(const Embeddings& images, const Embeddings& texts,
                               const std::vector<std::int64_t>& text_image, const StreamOptions& opt) {
  AxisRanks r = positive_ranks(images, texts, text_image, true, true, opt);
  return {std::move(r.rows), std::move(r.cols)};
}

RetrievalShard retrieval_shard(const Embeddings& images, const Embeddings& texts,
                               const std::vector<std::int64_t>& text_image, Part part, const StreamOptions& opt) {
  RetrievalShard s;
  s.images = images.rows();
  s.texts = texts.rows();
  s.block = opt.block;
  s.part = part;
  s.fingerprint = retrieval_fingerprint(images, texts, text_image);
  const auto [b0, b1] = part_range(row_block_count(s.images, s.block), part);
  PartialRanks r = partial_positive_ranks(images, texts, text_image, true, true, opt, {b0, b1});
  s.row_begin = r.row_begin;
  s.image_to_text = std::move(r.rows);
  s.text_competitors = std::move(r.col_competitors);
  return s;
}

Accuracy zero_shot_accuracy(const Embeddings& images, const Embeddings& classes,
                            const std::vector<std::int64_t>& labels, const StreamOptions& opt) {
  // Classes on the rows, images on the columns: each image column has its
  // one positive, its label.
  const AxisRanks r = positive_ranks(classes, images, labels, false, true, opt);
  Accuracy acc;
  acc.n = images.rows();
  acc.classes = classes.rows();
  if (acc.n == 0) throw_data("no images to classify");
  const std::int64_t k5 = std::min<std::int64_t>(5, acc.classes);
  for (std::int64_t x : r.cols) {
    acc.top1 += x <= 1;
    acc.top5 += x <= k5;
  }
  acc.top1 /= static_cast<double>(acc.n);
  acc.top5 /= static_cast<double>(acc.n);
  return acc;
}

ContrastiveLoss clip_loss(const Embeddings& images, const Embeddings& texts, float scale,
                          const StreamOptions& opt) {
  check_same_dim(images, texts);
  const std::int64_t n = images.rows();
  if (texts.rows() != n)
    throw_data("the loss pairs image i with text i: " + images.name + " has " + std::to_string(n) + " rows, " +
               texts.name + " has " + std::to_string(texts.rows()));
  if (n == 0) throw_data("the loss of an empty batch is undefined");
  const Grid g = make_grid(n, n, opt.block);
  std::vector<Lse> row(static_cast<std::size_t>(n)), col(static_cast<std::size_t>(n));
  std::vector<double> diag(static_cast<std::size_t>(n));
  std::vector<std::mutex> row_lock(static_cast<std::size_t>(g.row_blocks)),
      col_lock(static_cast<std::size_t>(g.col_blocks));
  for_each_tile(images, texts, scale, opt, nullptr, [&](const Tile& t) {
    const std::int64_t h = t.i1 - t.i0, w = t.j1 - t.j0;
    std::vector<double> rmax(h), rsum(h, 0.0), cmax(w), csum(w, 0.0);
    double hi = -std::numeric_limits<double>::infinity(), lo = -hi;
    for (std::int64_t r = 0; r < h; ++r) {
      const float* s = t.s + r * t.ld;
      rmax[r] = *std::max_element(s, s + w);
      hi = std::max(hi, rmax[r]);
      lo = std::min(lo, static_cast<double>(*std::min_element(s, s + w)));
    }
    // One exp per logit serves both directions: exp(x - T) = exp(x - max_row)·exp(max_row - T)
    // with T the tile's maximum, exact while no term underflows (a spread of logits under 600).
    const bool shared = hi - lo < 600;
    std::fill(cmax.begin(), cmax.end(), hi);
    for (std::int64_t r = 0; r < h; ++r) {
      const float* s = t.s + r * t.ld;
      const double to_tile = std::exp(rmax[r] - hi);
      double sum = 0;
      for (std::int64_t j = 0; j < w; ++j) {
        const double e = std::exp(s[j] - rmax[r]);
        sum += e;
        if (shared) csum[j] += e * to_tile;
      }
      rsum[r] = sum;
    }
    if (!shared) {
      for (std::int64_t j = 0; j < w; ++j) {
        double mx = -std::numeric_limits<double>::infinity(), sum = 0;
        for (std::int64_t r = 0; r < h; ++r) mx = std::max(mx, static_cast<double>(t.s[r * t.ld + j]));
        for (std::int64_t r = 0; r < h; ++r) sum += std::exp(t.s[r * t.ld + j] - mx);
        cmax[j] = mx;
        csum[j] = sum;
      }
    }
    for (std::int64_t i = std::max(t.i0, t.j0); i < std::min(t.i1, t.j1); ++i) diag[i] = t.at(i, i);
    {
      std::lock_guard<std::mutex> lock(row_lock[t.i0 / g.block]);
      for (std::int64_t r = 0; r < h; ++r) row[t.i0 + r].add(rmax[r], rsum[r]);
    }
    std::lock_guard<std::mutex> lock(col_lock[t.j0 / g.block]);
    for (std::int64_t j = 0; j < w; ++j) col[t.j0 + j].add(cmax[j], csum[j]);
  });
  ContrastiveLoss loss;
  loss.n = n;
  for (std::int64_t i = 0; i < n; ++i) {
    loss.image_to_text += row[i].value() - diag[i];
    loss.text_to_image += col[i].value() - diag[i];
  }
  loss.image_to_text /= static_cast<double>(n);
  loss.text_to_image /= static_cast<double>(n);
  loss.loss = (loss.image_to_text + loss.text_to_image) / 2;
  return loss;
}

double siglip_loss(const Embeddings& images, const Embeddings& texts, float t, float b,
                   const StreamOptions& opt) {
  check_same_dim(images, texts);
  const std::int64_t n = images.rows();
  if (texts.rows() != n)
    throw_data("the loss pairs image i with text i: " + images.name + " has " + std::to_string(n) + " rows, " +
               texts.name + " has " + std::to_string(texts.rows()));
  if (n == 0) throw_data("the loss of an empty batch is undefined");
  double total = 0;
  std::mutex total_mutex;
  const double bias = b;
  for_each_tile(images, texts, t, opt, nullptr, [&](const Tile& tile) {
    double sum = 0;
    for (std::int64_t i = tile.i0; i < tile.i1; ++i) {
      const float* s = tile.s + (i - tile.i0) * tile.ld;
      for (std::int64_t j = 0; j < tile.j1 - tile.j0; ++j) {
        const double logit = s[j] + bias;
        // -log sigmoid(z·logit) = softplus(-z·logit); z = +1 only for the pair itself.
        sum += softplus(tile.j0 + j == i ? -logit : logit);
      }
    }
    std::lock_guard<std::mutex> lock(total_mutex);
    total += sum;
  });
  return total / static_cast<double>(n);
}

}  // namespace nnkit::clip
