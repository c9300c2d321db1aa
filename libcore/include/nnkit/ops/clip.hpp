// Scores from CLIP-style embeddings (clip-score): image rows [N, D] against
// text rows [M, D], each convention named after the paper or library whose
// numbers it reproduces.
//
//   cos(x, y)      x·y of rows made unit length by normalize_rows (or the
//                  plain dot product of rows left as they are)
//   CLIPScore      w·max(cos, 0) per pair, w = 2.5 (Hessel et al. 2021, EMNLP)
//   torchmetrics   100·cos per pair; the metric is max(mean, 0), the clamp
//                  applied once to the mean (torchmetrics CLIPScore.compute)
//   RefCLIPScore   harmonic mean of CLIPScore and max(max_r cos(c, r), 0), the
//                  best similarity of the candidate caption c to its
//                  references r (Hessel et al., clipscore.py)
//   zero-shot      softmax over classes of scale·cos; with T templates per
//                  class the class embedding is the mean of its T (normalised)
//                  text rows, renormalised (open_clip build_zero_shot_classifier)
//   SigLIP         sigmoid(t·cos + b) per image-text pair (Zhai et al. 2023)
//   CLIP loss      (CE(scale·S) + CE(scale·Sᵀ)) / 2, labels on the diagonal
//                  (Radford et al. 2021; open_clip ClipLoss)
//   SigLIP loss    -Σ_ij log σ(z_ij (t·S_ij + b)) / N, z = +1 on the diagonal
//                  and -1 elsewhere (open_clip SigLipLoss)
//
// Everything with a similarity matrix S = A·Bᵀ runs on one tile engine: S is
// cut into square tiles of `block` rows and columns, each tile is one 2-D
// single-threaded SGEMM, and the tiles are spread over nnkit's threads. The
// tiling does not depend on the thread count, so neither do the values (but
// for the last bits of the losses, whose double sums merge tiles in the order
// threads finish them). Modes that reduce (ranks, accuracy, losses) keep
// O(N + M) running state (counts, log-sum-exp) and one tile per thread: S is
// never held whole. Retrieval also runs on a part of the row blocks (a
// cluster shard), whose integer counts merge into the whole run's exactly.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nnkit/shard.hpp"
#include "nnkit/tensor.hpp"

namespace nnkit::clip {

// Rows of embeddings: float32, C order, every value finite. A [N, R, D]
// reference tensor is held as N·R rows of D.
struct Embeddings {
  Tensor data;       // float32, shape [rows, D] or [N, R, D]
  std::string name;  // for messages, e.g. "IMAGE_EMB (img.npy)"
  std::int64_t rows() const { return data.ndim() ? data.numel() / dim() : 0; }
  std::int64_t dim() const { return data.ndim() ? data.shape().back() : 0; }
  const float* row(std::int64_t i) const { return data.data<float>() + i * dim(); }
  float* row(std::int64_t i) { return data.data<float>() + i * dim(); }
};

// Takes a tensor of `rank` dimensions (2: [rows, D], 3: [N, R, D]) of any
// numeric dtype but bool (float16 as clip-retrieval writes it) as float32.
// Data errors, naming `name`: wrong rank, D = 0, NaN or infinite values
// (with the row and column of the first).
Embeddings make_embeddings(Tensor t, std::string name, int rank = 2);

// Divides every row by its L2 norm (computed in double). A zero row is a
// data error unless allow_zero, when it stays zero and so scores cos = 0.
void normalize_rows(Embeddings& e, bool allow_zero);

// Data error unless a and b have the same D.
void check_same_dim(const Embeddings& a, const Embeddings& b);

// A 1-D tensor of indices (any integer dtype, or floats holding whole
// numbers; [count, 1] too, as a text file with one per line gives) of
// length `count`, each in
// [0, limit); data errors name `name` and `what_limit` ("IMAGE_EMB rows").
std::vector<std::int64_t> make_indices(const Tensor& t, std::int64_t count, std::int64_t limit,
                                       const std::string& name, const std::string& what_limit);

// ---------------------------------------------------------------- pairs

// cos of row i of a with row i of b, [N] float32 (dot products in double).
// Data error unless a and b have the same number of rows.
Tensor pair_cosines(const Embeddings& a, const Embeddings& b);
// Hessel et al.: w·max(cos, 0).
Tensor clip_scores(const Tensor& cos, double w);
// torchmetrics: 100·cos, unclamped (what its update() accumulates).
Tensor torchmetrics_scores(const Tensor& cos);
// max over the R references of candidate i of cos(candidate i, reference),
// [N]; refs holds N·R rows (make_embeddings(..., 3)).
Tensor best_reference_similarity(const Embeddings& candidates, const Embeddings& refs);
// Hessel et al.: 2·c·r / (c + r) with r = max(best reference similarity, 0);
// 0 where c + r = 0.
Tensor ref_clip_scores(const Tensor& clip_score, const Tensor& best_ref);

// Mean, population std (ddof = 0) and optionally a 95% percentile bootstrap
// interval of the mean: resample b draws n indices uniformly with
// replacement from SampleRng(seed, b), so the interval depends only on the
// values, B and the seed. With clamp_at_zero the statistic (mean and each
// resampled mean) is max(mean, 0), torchmetrics' final step.
struct Summary {
  double mean = 0, std = 0;
  std::int64_t n = 0;
  std::int64_t bootstrap = 0;  // resamples; 0: no interval
  double ci_low = 0, ci_high = 0;
};
Summary summarize(const Tensor& values, std::int64_t bootstrap, std::uint64_t seed, bool clamp_at_zero);

// ---------------------------------------------------------------- matrices

struct StreamOptions {
  // Rows and columns of a tile: each thread holds one float32 tile of
  // block² values (1 MiB at 512).
  std::int64_t block = 512;
  // Called after each tile with (tiles done, tiles in all), from one thread at a time.
  std::function<void(std::int64_t, std::int64_t)> progress;
};

// scale·cos for every pair, [N, M] float32.
Tensor similarity_matrix(const Embeddings& a, const Embeddings& b, float scale, const StreamOptions& opt);
// open_clip's classifier: class c is the mean of text rows [c·T, c·T + T),
// renormalised (a zero mean is a data error unless allow_zero). Data error
// unless T divides the number of rows.
Embeddings class_embeddings(const Embeddings& texts, std::int64_t templates, bool allow_zero);
// Row-wise softmax of scale·cos(image, class), [N, C] float32.
Tensor zero_shot_probabilities(const Embeddings& images, const Embeddings& classes, float scale,
                               const StreamOptions& opt);
// sigmoid(t·cos + b) for every image-text pair, [N, M]; and for the N pairs
// of row i with row i, [N].
Tensor siglip_probabilities(const Embeddings& images, const Embeddings& texts, float t, float b,
                            const StreamOptions& opt);
Tensor siglip_pair_probabilities(const Embeddings& images, const Embeddings& texts, float t, float b);

// ---------------------------------------------------------------- ranks

// The similarity of every column j to its positive row col_pos[j] (-1:
// none), computed as a dot product in double and rounded to float32.
std::vector<float> positive_similarities(const Embeddings& a, const Embeddings& b,
                                         const std::vector<std::int64_t>& col_pos);

// Ranks of positives in S = A·Bᵀ, streamed. Column j has the one positive
// row col_pos[j]; row i's positives are the columns j with col_pos[j] == i.
// A query's rank is 1 + the number of non-positive candidates whose
// similarity is at least that of its best positive (ties count against the
// query), so recall@K is rank <= K. Rows with no positive get rank 0.
struct AxisRanks {
  std::vector<std::int64_t> rows, cols;  // empty unless asked for
};
AxisRanks positive_ranks(const Embeddings& a, const Embeddings& b, const std::vector<std::int64_t>& col_pos,
                         bool want_rows, bool want_cols, const StreamOptions& opt);

// Row blocks [begin, end) of the tile grid (blocks of opt.block rows of A);
// the default is every block. Clamped to the grid.
struct RowBlocks {
  std::int64_t begin = 0, end = std::numeric_limits<std::int64_t>::max();
};
// The number of row blocks of `rows` rows: ceil(rows / block).
std::int64_t row_block_count(std::int64_t rows, std::int64_t block);

// positive_ranks over the tiles of some row blocks only: the same tiles, so
// the same bits, as the whole grid. A row sees every column, so the ranks of
// the part's rows are complete; a column sees only the part's rows, so it
// gets a count: the non-positive rows of the part that tie or beat its
// positive. The counts of disjoint parts add up to the whole grid's rank - 1.
struct PartialRanks {
  std::int64_t row_begin = 0;                  // rows[r] is the rank of row row_begin + r
  std::vector<std::int64_t> rows;              // empty unless asked for
  std::vector<std::int64_t> col_competitors;   // [M], empty unless asked for
};
PartialRanks partial_positive_ranks(const Embeddings& a, const Embeddings& b,
                                    const std::vector<std::int64_t>& col_pos, bool want_rows, bool want_cols,
                                    const StreamOptions& opt, RowBlocks part);

// recall@K for each K, the median rank (the mean of the two middle ranks
// when their count is even, as numpy's median) and the mean reciprocal rank,
// over the queries with a positive (rank > 0).
struct RankSummary {
  std::vector<std::pair<std::int64_t, double>> recall;  // (K, fraction)
  double median_rank = 0, mrr = 0;
  std::int64_t queries = 0;
};
RankSummary summarize_ranks(const std::vector<std::int64_t>& ranks, const std::vector<std::int64_t>& ks);

// Retrieval with several captions per image: text t describes image
// text_image[t]. image_to_text ranks the best caption of each image among all
// texts; text_to_image ranks each text's image among all images.
struct RetrievalRanks {
  std::vector<std::int64_t> image_to_text, text_to_image;
};
RetrievalRanks retrieval_ranks(const Embeddings& images, const Embeddings& texts,
                               const std::vector<std::int64_t>& text_image, const StreamOptions& opt);

// ---------------------------------------------------------------- sharded retrieval

// Retrieval split over a cluster by image rows. Shard K of N computes the
// tiles of row blocks part_range(row blocks, K/N) of the grid the whole run
// uses: the complete ranks of its images and, for every text, the count of
// its images that tie or beat the text's own. The counts are integers from
// the very tiles of the whole run, so merging the N shards gives its ranks
// exactly.
struct RetrievalShard {
  std::string name;  // for messages, e.g. "STATE (part0.safetensors)"
  std::int64_t images = 0, texts = 0, block = 0;
  Part part{0, 1};
  std::uint64_t fingerprint = 0;               // retrieval_fingerprint of the run's inputs
  std::int64_t row_begin = 0;                  // image_to_text[r] is the rank of image row_begin + r
  std::vector<std::int64_t> image_to_text;     // complete ranks (0: an image without a caption)
  std::vector<std::int64_t> text_competitors;  // [texts]: partial counts, as PartialRanks
};
RetrievalShard retrieval_shard(const Embeddings& images, const Embeddings& texts,
                               const std::vector<std::int64_t>& text_image, Part part, const StreamOptions& opt);

// A 64-bit fingerprint of everything the ranks depend on: the shapes, the
// float32 values of both embeddings (after normalisation) and text_image.
// Computed in fixed chunks, so it does not depend on the thread count.
std::uint64_t retrieval_fingerprint(const Embeddings& images, const Embeddings& texts,
                                    const std::vector<std::int64_t>& text_image);

// The whole run's ranks from its N shards, given in any order. Data errors,
// naming the shards: shards of different runs, a shard missing or given
// twice, counts that no run can produce.
RetrievalRanks merge_retrieval(const std::vector<RetrievalShard>& shards);

// A shard as tensors and safetensors __metadata__ (the layout is in
// clip-score(1)), and back; the reading side checks every field and names
// shard.name in its data errors.
struct ShardState {
  std::vector<NamedTensor> tensors;
  std::map<std::string, std::string> metadata;
};
ShardState shard_state(const RetrievalShard& shard);
RetrievalShard shard_from_state(ShardState state, std::string name);

// Top-1 / top-5 accuracy of zero-shot classification: the fraction of
// images whose label is among the first 1 (5) classes by similarity, ties
// counted against (top-5 is min(5, C)). Streamed: no [N, C] matrix.
struct Accuracy {
  double top1 = 0, top5 = 0;
  std::int64_t n = 0, classes = 0;
};
Accuracy zero_shot_accuracy(const Embeddings& images, const Embeddings& classes,
                            const std::vector<std::int64_t>& labels, const StreamOptions& opt);

// ---------------------------------------------------------------- losses

// Symmetric InfoNCE over the batch of N pairs (row i with row i), logits
// scale·cos; the mean cross-entropy of each direction and their average.
struct ContrastiveLoss {
  double loss = 0, image_to_text = 0, text_to_image = 0;
  std::int64_t n = 0;
};
ContrastiveLoss clip_loss(const Embeddings& images, const Embeddings& texts, float scale,
                          const StreamOptions& opt);
// SigLIP's pairwise sigmoid loss of the batch, logits t·cos + b.
double siglip_loss(const Embeddings& images, const Embeddings& texts, float t, float b,
                   const StreamOptions& opt);

}  // namespace nnkit::clip
