// Vector quantization: nearest-code search, residual and product codebooks,
// finite scalar quantization (FSQ), code usage statistics, image patches and
// k-means training. The tools vq-encode, vq-decode and vq-train are thin
// wrappers over this module.
//
// Search. Distances come from one blocked SGEMM per block of vectors and codes,
// d(x, e) = |x|^2 - 2 x.e + |e|^2, with the argmin fused into the pass over each
// block (memory: one block of scores per thread). That decomposition loses
// digits when norms are large or very different, so every code whose
// approximate distance is within a rigorous float32 error bound of the best is
// re-ranked with the direct distance sum((x_i - e_i)^2) in double precision.
// The result is the exact nearest code of the float32 inputs; ties go to the
// lowest index. It does not depend on block sizes or thread counts.
//
// Cosine: the largest cosine similarity x.e / (|x| |e|) (computed in double),
// where a zero vector has cosine 0 with everything. Its "distance" is
// 2 - 2 cos, the squared distance of the unit vectors.
//
// FSQ (Mentzer et al., "Finite Scalar Quantization: VQ-VAE Made Simple", 2023,
// and its reference code): with levels L_1..L_d, channel i of z is bounded by
// b = tanh(z + s) h - o, h = (L - 1)(1 - 1e-3)/2, o = 0.5 for even L else 0,
// s = tan(o / h), rounded to q = round(b) (half to even) and normalised to the
// code q / floor(L/2) in [-1, 1]. The digit of channel i is
// q + floor(L_i/2) in [0, L_i), and the index is mixed-radix with channel 0 the
// least significant: index = sum_i digit_i * prod_{j<i} L_j.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nnkit/exact_sum.hpp"
#include "nnkit/rng.hpp"
#include "nnkit/tensor.hpp"

namespace nnkit::vq {

enum class Metric { l2, cosine };

// "l2" or "cosine".
const char* metric_name(Metric m);

// Exact nearest-code search in one codebook [K, D] of float32 codes.
class FlatIndex {
 public:
  FlatIndex() = default;
  // Copies the codes; K >= 1, D >= 1, all finite (checked by the callers).
  FlatIndex(const float* codes, std::int64_t k, std::int64_t d, Metric metric);

  std::int64_t size() const { return k_; }
  std::int64_t dim() const { return d_; }
  Metric metric() const { return metric_; }
  const float* code(std::int64_t j) const { return codes_.data() + j * d_; }

  // The k nearest codes (k <= size()) of n vectors; vector i is x[i*ldx ...
  // i*ldx + D). Writes indices to idx[i*ldi + 0..k), nearest first, and, when
  // dist is not null, distances (squared L2, or 2 - 2 cos) to dist[i*ldd + 0..k).
  // Uses up to thread_count() threads.
  void search(const float* x, std::int64_t n, std::int64_t ldx, std::int64_t k, std::int64_t* idx,
              std::int64_t ldi, float* dist, std::int64_t ldd) const;

 private:
  std::int64_t k_ = 0, d_ = 0;
  Metric metric_ = Metric::l2;
  std::vector<float> codes_;        // as given
  std::vector<float> gemm_codes_;   // what the SGEMM sees: the codes, unit-normalised for cosine
  std::vector<float> sq_norms_;     // |e|^2 of gemm_codes_ (0 for cosine: only -2 x.e matters)
  std::vector<double> norms_;       // |e| of the given codes, in double (the exact cosine)
  double max_norm_ = 0;             // max |e| of gemm_codes_, for the error bound
  friend class SearchBlock;
};

enum class Kind { flat, residual, product, fsq };

// sum((a_i - b_i)^2) in double precision, in a fixed order (the exact ranking).
double squared_distance(const float* a, const float* b, std::int64_t d);

// A quantizer: one flat codebook, residual stages, product subspaces, or FSQ.
class Quantizer {
 public:
  // codebook [K, D]. `where` names the codebook in messages.
  static Quantizer flat(const Tensor& codebook, Metric metric, const std::string& where);
  // codebook [L, K, D]: stage l quantizes what stages 0..l-1 left (l2 only).
  static Quantizer residual(const Tensor& codebook, const std::string& where);
  // codebook [M, K, D/M]: subspace m quantizes channels [m D/M, (m+1) D/M) (l2 only).
  static Quantizer product(const Tensor& codebook, const std::string& where);
  // levels L_1..L_d, each 2..65536, with a product below 2^62.
  static Quantizer fsq(const std::vector<std::int64_t>& levels);

  Kind kind() const { return kind_; }
  Metric metric() const { return metric_; }
  std::int64_t dim() const { return dim_; }         // D of the input vectors
  std::int64_t stages() const { return stages_; }   // indices per vector: 1, L or M
  std::int64_t codes() const { return codes_; }     // codes per stage: K, or prod(levels)
  const std::vector<std::int64_t>& levels() const { return levels_; }
  const FlatIndex& index(std::int64_t stage) const { return indexes_.at(static_cast<std::size_t>(stage)); }

  // n vectors x [n, D] -> idx [n, stages()]; err [n] (when not null): squared
  // distance to the reconstruction (cosine: 2 - 2 cos; FSQ: from the bounded
  // and normalised input to its code); quantized [n, D] (when not null): the
  // reconstruction (cosine: the code as stored; FSQ: the code in [-1, 1]).
  void encode(const float* x, std::int64_t n, std::int64_t* idx, float* err, float* quantized) const;
  // idx [n, stages()] -> out [n, D]. Indices must be in range (checked by decode()).
  void decode(const std::int64_t* idx, std::int64_t n, float* out) const;

 private:
  Kind kind_ = Kind::flat;
  Metric metric_ = Metric::l2;
  std::int64_t dim_ = 0, stages_ = 1, codes_ = 0, sub_dim_ = 0;
  std::vector<FlatIndex> indexes_;
  std::vector<std::int64_t> levels_;
};

// The quantizer a codebook file describes: [K, D] flat; [L, K, D] with
// residual; [M, K, D/M] with pq = M (checked against the codebook). Data errors
// for shapes that do not fit, naming where.
Quantizer make_quantizer(const Tensor& codebook, bool residual, std::int64_t pq, Metric metric,
                         const std::string& where);
// "8,5,5,5" -> {8, 5, 5, 5}; a usage error otherwise.
std::vector<std::int64_t> parse_levels(const std::string& text);

// ---- tensors of any leading shape ----

struct EncodeOptions {
  std::int64_t topk = 0;    // > 0 (flat only): the topk nearest codes, indices [..., topk]
  bool distances = false;   // fill Encoded::distances
  bool quantized = false;   // fill Encoded::quantized
  // Called between chunks of vectors from the calling thread (progress).
  std::function<void(std::int64_t done, std::int64_t total)> progress;
};

struct Encoded {
  Tensor indices;    // int64 [...] (flat, fsq), [..., L] (residual), [..., M] (product), [..., topk]
  Tensor distances;  // float32 [...] or [..., topk]
  Tensor quantized;  // float32 [..., D]
  std::int64_t topk = 0;
};

// Checks that x [..., D] (any numeric dtype) fits q and is finite: data errors
// name the vector, e.g. "vector [2, 7] has a NaN value at element 5 (where)".
// Returns x as float32.
Tensor prepare_input(const Quantizer& q, const Tensor& x, const std::string& where);
// x must come from prepare_input.
Encoded encode(const Quantizer& q, const Tensor& x, const EncodeOptions& opt = {});
// indices [...] (flat, fsq) or [..., stages] of any integer dtype (or floats
// holding integers) -> float32 [..., D]. An index out of range is a data error
// naming its position.
Tensor decode(const Quantizer& q, const Tensor& indices, const std::string& where);

// Image [H, W, C] (or [H, W]: C = 1, or [..., H, W, C]) -> non-overlapping
// P x P patches [..., H/P, W/P, P*P*C], each patch row-major over (row, column,
// channel). H and W must be multiples of P (a data error otherwise).
Tensor patchify(const Tensor& image, std::int64_t p, const std::string& where);
// The inverse: [..., h, w, P*P*C] -> [..., h*P, w*P, C].
Tensor unpatchify(const Tensor& patches, std::int64_t p, const std::string& where);
// Values rounded to nearest and clamped to [0, 255], as uint8 (images).
Tensor to_uint8_image(const Tensor& x);

// ---- usage statistics ----

struct StageUsage {
  std::int64_t codes = 0;        // codes in this stage
  std::int64_t used = 0;         // codes chosen at least once
  std::int64_t dead = 0;         // codes never chosen
  double perplexity = 0;         // exp(-sum p log p), p = count / vectors
  std::int64_t min_count = 0, max_count = 0;
  double median_count = 0;       // over all codes, dead ones included
  std::vector<std::pair<std::int64_t, std::int64_t>> most_used;  // (code, count), up to 5
  std::vector<std::int64_t> counts;      // per code, when codes <= max_histogram
  std::vector<std::int64_t> dead_codes;  // when codes <= max_histogram
};

struct Stats {
  std::int64_t vectors = 0, dim = 0;
  double mse = 0;                    // mean squared error per element
  double mean_squared_distance = 0;  // per vector (mse * dim)
  std::vector<StageUsage> stages;
};

// Accumulates code usage and squared errors over any number of encodes.
class UsageCounter {
 public:
  static constexpr std::int64_t max_histogram = 1 << 16;
  explicit UsageCounter(const Quantizer& q);
  // e must hold distances; with topk only the nearest code counts.
  void add(const Encoded& e);
  Stats summary() const;

 private:
  std::int64_t stages_, codes_, dim_, vectors_ = 0;
  double sum_sq_ = 0;
  bool dense_;
  std::vector<std::vector<std::int64_t>> dense_counts_;
  std::vector<std::vector<std::int64_t>> sparse_indices_;  // FSQ with a huge code space
};

// ---- training ----

enum class Init { kmeanspp, random, given };

struct KmeansOptions {
  std::int64_t k = 0;
  std::int64_t iters = 25;       // Lloyd updates
  double tol = 0;                // stop when an iteration improves the inertia by less than tol (relative); 0: off
  std::uint64_t seed = default_seed;
  Metric metric = Metric::l2;    // cosine: spherical k-means on the unit vectors
  Init init = Init::kmeanspp;
  const float* init_codes = nullptr;  // [k, d] with Init::given
  // Called after every assignment with the stage (residual/product), the
  // number of Lloyd updates done so far and the inertia of the current codes.
  std::function<void(std::int64_t stage, std::int64_t iteration, double inertia)> on_iteration;
  // Called during k-means++ with the centres chosen so far.
  std::function<void(std::int64_t stage, std::int64_t done, std::int64_t total)> on_init;
};

struct KmeansResult {
  std::vector<float> codes;          // [k, d]
  std::vector<std::int64_t> assign;  // [n]: the nearest code of each training vector
  std::vector<double> inertia;       // after 0, 1, ... updates; the last is that of `codes`
  std::int64_t updates = 0;          // Lloyd updates done (<= iters)
  std::int64_t reseeded = 0;         // empty clusters re-seeded
};

// k-means of n vectors of dimension d (row i at x + i*ldx); stage numbers the
// random streams (residual stages, product subspaces). Deterministic for a seed
// and independent of the thread count. Inertia: sum of squared distances (cosine:
// of 2 - 2 cos) of the vectors to their nearest code.
//
// Initialisation: k-means++ (D^2 sampling, exact), k distinct random vectors,
// or the given codes (as given: for cosine their length does not matter).
// Then, for it = 0, 1, ...: stats = cluster_stats(vectors, codes); stop when
// it == iters (or on --tol); codes' = update_codes(stats, codes, it); stop
// when codes' is bit for bit codes (converged). The map-reduce of vq-train
// --map/--reduce runs the same two functions, so it gives the same codes.
KmeansResult kmeans(const float* x, std::int64_t n, std::int64_t d, std::int64_t ldx, std::int64_t stage,
                    const KmeansOptions& opt);

// ---- one Lloyd iteration as a map over the vectors and a reduce ----
//
// The statistics of a set of vectors that one Lloyd update needs. The sums
// are exact (ExactSum), so the statistics of shards merged in any order are
// those of all the vectors, bit for bit.
struct ClusterStats {
  std::int64_t k = 0, d = 0;
  Metric metric = Metric::l2;
  std::int64_t vectors = 0;
  std::vector<std::int64_t> count;  // [k]: the vectors whose nearest code is j
  std::vector<ExactSum> sum;        // [k * d]: the sum of those vectors (cosine: of them at unit length)
  std::vector<ExactSum> sq;         // [k]: the sum of their squared distances to code j (cosine: 2 - 2 cos)
  ExactSum inertia;                 // the sum of all squared distances

  ClusterStats() = default;
  ClusterStats(std::int64_t k, std::int64_t d, Metric metric);
  // Adds the statistics of other vectors (the same k, d and metric; a data error otherwise).
  void merge(const ClusterStats& other);
};

// The map step: assigns n vectors (row i at x + i*ldx, finite) to their
// nearest code of codes [k, d] (the exact search of FlatIndex) and sums them
// per code. assign [n], when not null, receives the nearest codes. A squared
// distance beyond the float32 range counts as the largest float32.
ClusterStats cluster_stats(const float* x, std::int64_t n, std::int64_t ldx, const float* codes, std::int64_t k,
                           std::int64_t d, Metric metric, std::int64_t* assign = nullptr);

struct CodeUpdate {
  std::vector<float> codes;   // [k, d]
  std::int64_t reseeded = 0;  // empty clusters re-seeded
};

// The reduce step: the codes after Lloyd update number `iteration` (0 for the
// first) of codes [k, d], from the statistics of all the training vectors
// under those codes. A code with vectors moves to their mean, sum / count
// from the exact sum rounded to double then to float (cosine: the sum's
// direction, sum_c / |sum|, the code kept when the sum is zero). An empty code
// is re-seeded by splitting the largest cluster b (most vectors, lowest index
// on ties): b's new code moves by -v and the empty one is put at b's code + v,
// with v a random direction (the normal vector of counter iteration * k + j
// of the split stream) of length r_b / 16, r_b the root mean squared distance
// of b's vectors to b's code before the update; b's count is then halved
// between the two, and the new code shares b's r_b. With fewer than two
// vectors in the largest cluster a code stays empty and unchanged.
CodeUpdate update_codes(const ClusterStats& stats, const float* codes, std::int64_t iteration, std::uint64_t seed,
                        std::int64_t stage);

// The statistics as tensors, the npy stream of vq-train --map (vq-train(1)):
//   header  int64 [8]: version, K, D, W, metric (0 l2, 1 cosine), vectors,
//                      the exponent of the lowest digit bit (-149), digit bits (32)
//   counts  int64 [K]
//   sums    int64 [K, D, W]   exact sums as ExactSum's stored digits (exact_sum.hpp)
//   sq      int64 [K, W]
//   inertia int64 [W]
constexpr std::int64_t stats_version = 1;
constexpr int stats_tensors = 5;
std::vector<Tensor> stats_to_tensors(const ClusterStats& s);
// The inverse, checking everything (dtypes, shapes, version, digits, counts
// that add up to the vectors, nothing summed for an empty code, squared
// distances that add up to the inertia): data errors name `where`.
ClusterStats stats_from_tensors(const std::vector<Tensor>& t, const std::string& where);

// Rows of x [n, d] chosen at random without replacement (m of them, in their
// original order): row i is kept when its random key, a function of (seed, i)
// only, is among the m smallest.
std::vector<std::int64_t> sample_rows(std::int64_t n, std::int64_t m, std::uint64_t seed);

struct TrainResult {
  Tensor codebook;                          // [K, D], [L, K, D] or [M, K, D/M]
  std::vector<KmeansResult> stages;         // codes moved into codebook
};

// x: float32 [N, D], finite (prepare_training_input). init: the codebook in the
// output shape with Init::given.
TrainResult train_flat(const Tensor& x, KmeansOptions opt, const Tensor* init = nullptr);
TrainResult train_residual(const Tensor& x, std::int64_t levels, KmeansOptions opt, const Tensor* init = nullptr);
TrainResult train_product(const Tensor& x, std::int64_t m, KmeansOptions opt, const Tensor* init = nullptr);

// Flattens x [..., D] to float32 [N, D] and checks it is finite (data errors
// name the vector and where).
Tensor prepare_training_input(const Tensor& x, const std::string& where);

}  // namespace nnkit::vq
