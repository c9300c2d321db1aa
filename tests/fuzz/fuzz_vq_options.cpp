// The list and size options of vq-encode, vq-decode, vq-train and
// clip-score, through the core functions the tools call with them:
// vq::parse_levels and Quantizer::fsq (--fsq), make_quantizer (--residual,
// --pq against a codebook's shape), patchify/unpatchify (--patch), encode
// with --topk and decode of fuzzed indices, sample_rows and kmeans (--sample,
// --k, --iters), and clip::summarize_ranks (the K of --k lists, any int64)
// and make_indices (--labels, --text-image). The first byte picks the entry
// point; the rest feeds FuzzedDataProvider.
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "nnkit/ops/clip.hpp"
#include "nnkit/ops/vq.hpp"
#include "nnkit/parallel.hpp"

using namespace nnkit;

namespace {

std::int64_t count(FuzzedDataProvider& fdp, std::int64_t small_max) {
  if (fdp.ConsumeIntegralInRange(0, 7) == 0) return fdp.ConsumeIntegral<std::int64_t>();
  return fdp.ConsumeIntegralInRange<std::int64_t>(-2, small_max);
}

Tensor small_tensor(FuzzedDataProvider& fdp, int min_rank, int max_rank, std::int64_t max_extent) {
  Shape shape;
  const int rank = fdp.ConsumeIntegralInRange(min_rank, max_rank);
  for (int i = 0; i < rank; ++i) shape.push_back(fdp.ConsumeIntegralInRange<std::int64_t>(0, max_extent));
  Tensor t(DType::f4, shape);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = fdp.ConsumeIntegralInRange(0, 15) == 0 ? fdp.ConsumeFloatingPoint<float>()
                                                                : fdp.ConsumeFloatingPointInRange(-4.0f, 4.0f);
  return t;
}

void fuzz_fsq(FuzzedDataProvider& fdp) {
  const std::string text = fdp.ConsumeRandomLengthString(64);
  vq::Quantizer q;
  if (!fuzz::expected([&] { q = vq::Quantizer::fsq(vq::parse_levels(text)); })) return;
  fuzz::check(q.codes() >= 2 && q.codes() < (std::int64_t{1} << 62), "fsq: a code space out of range");
  Tensor x(DType::f4, {2, q.dim()});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = fdp.ConsumeFloatingPointInRange(-5.0f, 5.0f);
  vq::Encoded e;
  if (!fuzz::expected([&] { e = vq::encode(q, vq::prepare_input(q, x, "fuzz"), {0, true, true, {}}); })) return;
  const Tensor back = vq::decode(q, e.indices, "fuzz");
  fuzz::check(fuzz::same_values(back, e.quantized), "fsq: decode(encode(x)) is not the quantized x");
  vq::UsageCounter usage(q);
  usage.add(e);
  (void)usage.summary();
}

// A codebook of fuzzed shape read as --residual, --pq M or flat; then vectors
// encoded (with --topk) and fuzzed indices decoded.
void fuzz_codebook(FuzzedDataProvider& fdp) {
  const Tensor cb = small_tensor(fdp, 1, 4, 6);
  const bool residual = fdp.ConsumeBool();
  const std::int64_t pq = count(fdp, 4);
  const vq::Metric metric = fdp.ConsumeBool() ? vq::Metric::l2 : vq::Metric::cosine;
  vq::Quantizer q;
  if (!fuzz::expected([&] { q = vq::make_quantizer(cb, residual, pq, metric, "fuzz"); })) return;
  const Tensor x = small_tensor(fdp, 1, 3, 5);
  vq::EncodeOptions opt;
  opt.topk = count(fdp, 6);
  opt.distances = true;
  opt.quantized = fdp.ConsumeBool();
  (void)fuzz::expected([&] {
    const vq::Encoded e = vq::encode(q, vq::prepare_input(q, x, "fuzz"), opt);
    if (opt.topk == 0) {
      vq::UsageCounter usage(q);
      usage.add(e);
      (void)usage.summary();
    }
  });
  Tensor idx = small_tensor(fdp, 0, 3, 4);
  for (std::int64_t i = 0; i < idx.numel(); ++i) idx.data<float>()[i] = std::round(idx.data<float>()[i]);
  (void)fuzz::expected([&] { (void)vq::decode(q, idx.astype(fdp.ConsumeBool() ? DType::i8 : DType::f4, false), "fuzz"); });
}

void fuzz_patches(FuzzedDataProvider& fdp) {
  const Tensor img = small_tensor(fdp, 0, 4, 8);
  const std::int64_t p = count(fdp, 4);
  Tensor patches;
  if (fuzz::expected([&] { patches = vq::patchify(img, p, "fuzz"); })) {
    const Tensor back = vq::unpatchify(patches, p, "fuzz");
    const Tensor want = img.ndim() == 2 ? img.reshaped({img.dim(0), img.dim(1), 1}) : img;
    fuzz::check(fuzz::same_tensor(back, want), "unpatchify(patchify(x)) is not x");
  }
  (void)fuzz::expected([&] { (void)vq::unpatchify(img, p, "fuzz"); });
}

void fuzz_kmeans(FuzzedDataProvider& fdp) {
  const std::int64_t n = fdp.ConsumeIntegralInRange<std::int64_t>(0, 24), d = fdp.ConsumeIntegralInRange<std::int64_t>(1, 4);
  const std::int64_t m = count(fdp, 30);
  const std::uint64_t seed = fdp.ConsumeIntegral<std::uint64_t>();
  std::vector<std::int64_t> rows;
  if (m >= 0 && fuzz::expected([&] { rows = vq::sample_rows(n, m, seed); })) {
    fuzz::check(static_cast<std::int64_t>(rows.size()) == std::min(n, m), "sample_rows: not min(n, m) rows");
    for (std::size_t i = 0; i < rows.size(); ++i)
      fuzz::check(rows[i] >= 0 && rows[i] < n && (i == 0 || rows[i] > rows[i - 1]), "sample_rows: rows not distinct, in order");
  }
  std::vector<float> x(static_cast<std::size_t>(n * d));
  for (float& v : x) v = fdp.ConsumeFloatingPointInRange(-4.0f, 4.0f);
  vq::KmeansOptions opt;
  opt.k = count(fdp, 8);
  opt.iters = fdp.ConsumeIntegralInRange<std::int64_t>(-1, 6);
  opt.tol = fdp.ConsumeFloatingPointInRange(0.0, 0.5);
  opt.seed = seed;
  opt.metric = fdp.ConsumeBool() ? vq::Metric::l2 : vq::Metric::cosine;
  opt.init = fdp.ConsumeBool() ? vq::Init::kmeanspp : vq::Init::random;
  vq::KmeansResult r;
  if (!fuzz::expected([&] { r = vq::kmeans(x.data(), n, d, d, 0, opt); })) return;
  fuzz::check(static_cast<std::int64_t>(r.codes.size()) == opt.k * d, "kmeans: not k codes");
  for (std::int64_t a : r.assign) fuzz::check(a >= 0 && a < opt.k, "kmeans: an assignment out of range");
}

// clip-score --k: its list parser lives in the tool; the core takes any K.
void fuzz_recall(FuzzedDataProvider& fdp) {
  std::vector<std::int64_t> ranks, ks;
  const int n = fdp.ConsumeIntegralInRange(0, 20), k = fdp.ConsumeIntegralInRange(0, 6);
  for (int i = 0; i < n; ++i) ranks.push_back(count(fdp, 25));
  for (int i = 0; i < k; ++i) ks.push_back(count(fdp, 25));
  clip::RankSummary s;
  if (!fuzz::expected([&] { s = clip::summarize_ranks(ranks, ks); })) return;
  for (const auto& [kk, r] : s.recall) fuzz::check(!(r < 0) && !(r > 1), "summarize_ranks: a recall outside [0, 1]");
  const Tensor t = small_tensor(fdp, 0, 2, 6);
  (void)fuzz::expected([&] {
    (void)clip::make_indices(t, count(fdp, 6), count(fdp, 6), "--labels", "classes");
  });
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return fuzz::bound_memory_and_threads(); }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  FuzzedDataProvider fdp(data + 1, size - 1);
  switch (data[0] % 5) {
    case 0: fuzz_fsq(fdp); break;
    case 1: fuzz_codebook(fdp); break;
    case 2: fuzz_patches(fdp); break;
    case 3: fuzz_kmeans(fdp); break;
    case 4: fuzz_recall(fdp); break;
  }
  return 0;
}
