// vq-train: learns a codebook by k-means (k-means++, Lloyd, spherical for
// cosine), or residual and product codebooks; --map and --reduce run one
// Lloyd iteration over shards. The algorithm is nnkit/ops/vq.hpp.
#include <cstdio>
#include <cstring>
#include <optional>

#include "nnkit/cli.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/io.hpp"
#include "nnkit/ops/vq.hpp"
#include "nnkit/progress.hpp"

using namespace nnkit;

namespace {

// All vectors of every tensor of the input as one float32 [N, D].
Tensor read_training_set(Input& in, std::int64_t patch) {
  std::vector<Tensor> parts;
  std::int64_t rows = 0;
  for_each_tensor(in, [&](NamedTensor&& nt) {
    const std::string where = parts.empty() ? in.name() : in.name() + ", tensor " + std::to_string(parts.size());
    Tensor x = patch > 0 ? vq::patchify(nt.tensor, patch, where) : std::move(nt.tensor);
    x = vq::prepare_training_input(x, where);
    if (!parts.empty() && x.dim(1) != parts.front().dim(1))
      throw_data("the vectors have dimension " + std::to_string(x.dim(1)) + ", those of the first tensor " +
                 std::to_string(parts.front().dim(1)) + " (" + where + ")");
    rows += x.dim(0);
    parts.push_back(std::move(x));
  });
  if (parts.size() == 1) return std::move(parts.front());
  Tensor all = Tensor::uninitialized(DType::f4, {rows, parts.front().dim(1)});
  std::byte* p = all.bytes();
  for (const Tensor& x : parts) {
    std::memcpy(p, x.bytes(), x.nbytes());
    p += x.nbytes();
  }
  return all;
}

// The codebook [K, D] of --init FILE for --map and --reduce: float32, finite.
Tensor read_flat_codebook(const std::string& path) {
  Input f = Input::open(path);
  Tensor c = read_one_tensor(f);
  if (c.ndim() != 2 || c.numel() == 0)
    throw_data("the codebook of --init must be [K, D], not " + shape_str(c.shape()) + " (" + f.name() + ")");
  return vq::prepare_training_input(c, f.name());
}

// A usage error naming the first of `options` given with --map or --reduce.
void refuse_options(const cli::Tool& t, const char* mode, std::initializer_list<const char*> options) {
  for (const char* o : options)
    if (t.given(o)) throw_usage(std::string("--") + o + " does not go with --" + mode);
}

bool stdout_is_terminal(const cli::Tool& t) { return t.output_path() == "-" && is_terminal_fd(1); }

// The codebook's output format, checked before the work.
Format codebook_format(const cli::Tool& t) {
  const Format f = output_format(t.to_format(), t.output_path(), stdout_is_terminal(t));
  if (f == Format::png || f == Format::npz)
    throw_usage("vq-train writes npy, safetensors, txt, csv or json, not " + std::string(format_name(f)));
  return f;
}

// vq-train --map: one shard's sufficient statistics for one Lloyd update.
void run_map(cli::Tool& t, const Tensor& codes, vq::Metric metric, std::int64_t patch) {
  if (t.input_paths().size() > 1) throw_usage("--map reads one INPUT (a shard of the training vectors)");
  // npy, or text for a person on a terminal; refused before the work.
  const Format f = output_format(t.to_format(), t.output_path(), stdout_is_terminal(t));
  if (f != Format::npy && !(f == Format::txt && stdout_is_terminal(t) && t.to_format().empty()))
    throw_usage("--map writes an npy stream, not " + std::string(format_name(f)));
  Input in = Input::open(t.input_paths().front());
  const Tensor x = read_training_set(in, patch);
  const std::int64_t k = codes.dim(0), d = codes.dim(1);
  if (x.dim(1) != d)
    throw_data("the vectors have dimension " + std::to_string(x.dim(1)) + ", the codes of --init " + std::to_string(d) +
               " (" + in.name() + ")");
  const vq::ClusterStats stats = vq::cluster_stats(x.data<float>(), x.dim(0), d, codes.data<float>(), k, d, metric);

  Output out = Output::open(t.output_path());
  std::vector<NamedTensor> tensors;
  for (Tensor& s : vq::stats_to_tensors(stats)) tensors.push_back({"", std::move(s)});
  write_tensors(out, f, tensors);
  out.commit();
}

// Adds the statistics of every shard in the npy streams of `paths` (5 tensors
// a shard) after checking that they belong to these codes and metric.
vq::ClusterStats read_all_stats(const std::vector<std::string>& paths, const Tensor& codes, vq::Metric metric,
                                const std::string& codes_name) {
  const std::int64_t k = codes.dim(0), d = codes.dim(1);
  vq::ClusterStats total(k, d, metric);
  for (const std::string& path : paths) {
    Input in = Input::open(path);
    std::vector<Tensor> group;
    std::int64_t shard = 0;
    for_each_tensor(in, [&](NamedTensor&& nt) {
      const std::string where = in.name() + ", shard " + std::to_string(shard);
      if (group.empty() && (nt.tensor.dtype() != DType::i8 || nt.tensor.ndim() != 1))
        throw_data("not the statistics of vq-train --map: a " + std::string(dtype_name(nt.tensor.dtype())) + " " +
                   shape_str(nt.tensor.shape()) + " where a header int64 [8] should be (" + where + ")");
      group.push_back(std::move(nt.tensor));
      if (group.size() < static_cast<std::size_t>(vq::stats_tensors)) return;
      ++shard;
      const vq::ClusterStats s = vq::stats_from_tensors(group, where);
      group.clear();
      if (s.k != k || s.d != d)
        throw_data("statistics of " + std::to_string(s.k) + " codes of dimension " + std::to_string(s.d) + ", --init " +
                   codes_name + " has " + std::to_string(k) + " of dimension " + std::to_string(d) + " (" + where + ")");
      if (s.metric != metric)
        throw_data(std::string("statistics of --metric ") + vq::metric_name(s.metric) + ", not " +
                   vq::metric_name(metric) + " (" + where + ")");
      total.merge(s);
    });
    if (!group.empty())
      throw_data("truncated statistics: the stream ends " + std::to_string(group.size()) + " tensor" +
                 (group.size() == 1 ? "" : "s") + " into shard " + std::to_string(shard) + " of " +
                 std::to_string(vq::stats_tensors) + " (" + in.name() + ")");
  }
  return total;
}

// vq-train --reduce: the codes after Lloyd update `iteration` from the
// statistics of all the shards.
void run_reduce(cli::Tool& t, const Tensor& codes, const std::string& codes_name, vq::Metric metric,
                std::int64_t iteration, std::uint64_t seed) {
  const Format f = codebook_format(t);
  const vq::ClusterStats stats = read_all_stats(t.input_paths(), codes, metric, codes_name);
  const std::int64_t k = codes.dim(0);
  if (stats.vectors < k)
    throw_data("cannot train " + std::to_string(k) + " codes from " + std::to_string(stats.vectors) + " vector" +
               (stats.vectors == 1 ? "" : "s") + ": the shards hold fewer vectors than --init has codes");
  vq::CodeUpdate u = vq::update_codes(stats, codes.data<float>(), iteration, seed, 0);

  Output out = Output::open(t.output_path());
  Tensor next = Tensor::from_vector<float>(codes.shape(), u.codes);
  write_tensors(out, f, {{f == Format::safetensors ? "codebook" : "", std::move(next)}});
  out.commit();
  if (!t.quiet())
    std::fprintf(stderr, "vq-train: iteration %lld: inertia %.9g of %lld vectors\n",
                 static_cast<long long>(iteration), stats.inertia.to_double(), static_cast<long long>(stats.vectors));
}

}  // namespace

int main(int argc, char** argv) {
  long long k = 0, iters = 25, sample = 0, seed = static_cast<long long>(default_seed), residual = 0, pq = 0, patch = 0,
            iteration = 0;
  double tol = 0;
  bool map = false, reduce = false;
  std::string init = "kmeans++", metric = "l2";
  cli::Tool tool("vq-train", "Vector quantization: learn a codebook by k-means.");
  tool.synopsis("--k K [OPTIONS] [INPUT]\n  or:  vq-train --map --init CODES [OPTIONS] [INPUT] -o STATS\n"
                "  or:  vq-train --reduce --init CODES --iteration I [OPTIONS] [STATS...]")
      .inputs(0, -1)
      .description(
          "INPUT holds training vectors [..., D] (npy or npy stream, safetensors, text or PNG; every tensor of a "
          "stream joins the training set). The output is a float32 codebook [K, D] for vq-encode and vq-decode; "
          "with --residual L a codebook [L, K, D] (each stage trained on what the stages before it leave), with "
          "--pq M a codebook [M, K, D/M] (each slice of the channels trained on its own).\n\n"
          "k-means++ picks the first code uniformly and each next with probability proportional to the squared "
          "distance to the nearest code so far; then Lloyd iterations assign every vector to its nearest code "
          "(exactly, ties to the lowest index) and move each code to the mean of its vectors; they stop after "
          "--iters updates, when an update would leave every code bit for bit as it is (converged), or after an "
          "improvement below --tol. Each code's vectors are summed exactly, so the mean does not depend on their order. A cluster "
          "left empty is re-seeded by splitting the largest cluster in two. --metric cosine is spherical k-means: "
          "unit-length codes, the mean direction of their vectors. Results depend on --seed only, not on "
          "--threads. On a terminal the inertia (sum of squared distances to the nearest code) is shown after "
          "every iteration.\n\n"
          "Map-reduce, for data beyond one machine: each Lloyd iteration I = 0, 1, ... runs --map on every shard "
          "with the current codes, writing the shard's exact statistics (an npy stream), then --reduce adds the "
          "statistics of all shards, in any order, and writes the next codes. After N iterations the codes are "
          "byte for byte those of vq-train --init CODES --iters N on all the data, whatever the shards and "
          "threads; the run has converged when --reduce writes the codes it was given (cmp). --reduce prints the "
          "inertia of the codes of --init on stderr (unless -q).")
      .output_formats({"npy", "safetensors", "txt", "csv", "json"},
                      "from the -o extension, else npy on a pipe and txt on a terminal")
      .option("k,k", &k, "K", "the number of codes (default: none; required unless --init gives a codebook)")
      .option("init", &init, "kmeans++|random|FILE",
              "initial codes: k-means++, K distinct random training vectors, or a codebook file of the output's shape",
              cli::Complete::file)
      .option("iters", &iters, "N", "Lloyd iterations (updates of the codes)")
      .option("tol", &tol, "T", "stop early when an iteration lowers the inertia by less than T, relative (default: 0, off)")
      .option("sample", &sample, "N", "train on N training vectors drawn at random without replacement (default: 0, all)")
      .option("seed", &seed, "S", "random seed of the initialisation, --sample and re-seeding")
      .choice("metric", &metric, {"l2", "cosine"}, "k-means, or spherical k-means (cosine similarity)")
      .option("residual", &residual, "L", "train a residual codebook of L stages, [L, K, D] (default: 0, off)")
      .option("pq", &pq, "M", "train a product codebook of M subspaces, [M, K, D/M] (default: 0, off)")
      .option("patch", &patch, "P", "train on the P x P patches of images [H, W, C] (default: 0, off)")
      .flag("map", &map,
            "write the statistics of INPUT (a shard) for one Lloyd update of the codes of --init FILE, an npy "
            "stream (the map step)")
      .flag("reduce", &reduce,
            "add the statistics of every shard (STATS files or stdin, concatenated npy streams) and write the "
            "codes after Lloyd update --iteration of the codes of --init FILE (the reduce step)")
      .option("iteration", &iteration, "I",
              "the number of the update for --reduce, 0 for the first, which numbers the random re-seeding "
              "(default: none, required with --reduce)")
      .example("vq-train --k 1024 emb.npy -o codes.npy", "a codebook of 1024 codes for embeddings [N, D]")
      .example("vq-train --k 16 photo.png -o palette.npy", "a 16-colour palette of an image")
      .example("vq-train --k 256 --residual 4 x.npy -o rq.npy", "residual quantization: 4 stages of 256 codes")
      .example("vq-train --k 256 --pq 8 x.npy -o pq.npy", "product quantization: 8 subspaces of 256 codes")
      .example("vq-train --k 4096 --sample 200000 --metric cosine emb.npy -o codes.npy",
               "spherical k-means on a random 200,000 of the embeddings")
      .example("vq-train --map --init c3.npy shard_07.npy -o stats_07.npy",
               "the statistics of one shard under the codes of iteration 3")
      .example("cat stats_*.npy | vq-train --reduce --init c3.npy --iteration 3 -o c4.npy",
               "the codes of iteration 4 from the statistics of all shards");
  return tool.run(argc, argv, [&](cli::Tool& t) {
    if (map || reduce) {
      const char* mode = map ? "map" : "reduce";
      if (map && reduce) throw_usage("give --map or --reduce, not both");
      refuse_options(t, mode, {"k", "iters", "tol", "sample", "residual", "pq"});
      refuse_options(t, mode, map ? std::initializer_list<const char*>{"seed", "iteration"} : std::initializer_list<const char*>{"patch"});
      if (!t.given("init") || init == "kmeans++" || init == "random")
        throw_usage(std::string("--") + mode + " needs --init FILE, the codebook [K, D] of this iteration");
      if (reduce && !t.given("iteration")) throw_usage("--reduce needs --iteration I, the number of the update (0 first)");
      if (iteration < 0) throw_usage("--iteration must be 0 or more, not " + std::to_string(iteration));
      if (seed < 0) throw_usage("--seed must be 0 or more, not " + std::to_string(seed));
      if (patch < 0) throw_usage("--patch must be 1 or more (0: off)");
      const vq::Metric m = metric == "cosine" ? vq::Metric::cosine : vq::Metric::l2;
      const Tensor codes = read_flat_codebook(init);
      if (map)
        run_map(t, codes, m, patch);
      else
        run_reduce(t, codes, init, m, iteration, static_cast<std::uint64_t>(seed));
      return;
    }
    if (t.given("iteration")) throw_usage("--iteration goes with --reduce");
    if (t.input_paths().size() > 1)
      throw_usage("too many inputs: at most 1 INPUT, got " + std::to_string(t.input_paths().size()) +
                  " (join them with tensor-cat, or use --reduce for statistics)");
    if (t.given("k") && k < 1) throw_usage("--k must be 1 or more, not " + std::to_string(k));
    if (iters < 0) throw_usage("--iters must be 0 or more, not " + std::to_string(iters));
    if (!(tol >= 0 && tol < 1)) throw_usage("--tol must be at least 0 and below 1");
    if (sample < 0) throw_usage("--sample must be 1 or more (0: all), not " + std::to_string(sample));
    if (seed < 0) throw_usage("--seed must be 0 or more, not " + std::to_string(seed));
    if (residual < 0 || pq < 0 || patch < 0)
      throw_usage(std::string(residual < 0 ? "--residual" : pq < 0 ? "--pq" : "--patch") + " must be 1 or more (0: off)");
    if (residual && pq) throw_usage("give --residual or --pq, not both");
    if (metric == "cosine" && (residual || pq))
      throw_usage(std::string(residual ? "--residual" : "--pq") + " trains with --metric l2 only");
    if (init.empty()) throw_usage("--init takes kmeans++, random or a codebook FILE");

    vq::KmeansOptions opt;
    opt.iters = iters;
    opt.tol = tol;
    opt.seed = static_cast<std::uint64_t>(seed);
    opt.metric = metric == "cosine" ? vq::Metric::cosine : vq::Metric::l2;
    std::optional<Tensor> init_codes;
    if (init == "kmeans++") {
      opt.init = vq::Init::kmeanspp;
    } else if (init == "random") {
      opt.init = vq::Init::random;
    } else {
      opt.init = vq::Init::given;
      Input f = Input::open(init);
      Tensor c = read_one_tensor(f);
      const std::size_t rank = residual || pq ? 3 : 2;
      if (c.ndim() != rank || c.numel() == 0)
        throw_data("the initial codebook must be " + std::string(residual ? "[L, K, D]" : pq ? "[M, K, D/M]" : "[K, D]") +
                   ", not " + shape_str(c.shape()) + " (" + f.name() + ")");
      const std::int64_t file_k = c.dim(rank - 2);
      if (t.given("k") && k != file_k)
        throw_usage("--k " + std::to_string(k) + " differs from the " + std::to_string(file_k) + " codes of --init " + f.name());
      if (residual && c.dim(0) != residual)
        throw_data("the initial codebook has " + std::to_string(c.dim(0)) + " stages, --residual asks for " +
                   std::to_string(residual) + " (" + f.name() + ")");
      if (pq && c.dim(0) != pq)
        throw_data("the initial codebook has " + std::to_string(c.dim(0)) + " subspaces, --pq asks for " +
                   std::to_string(pq) + " (" + f.name() + ")");
      k = file_k;
      init_codes = vq::prepare_training_input(c, f.name()).reshaped(c.shape());
    }
    if (k < 1) throw_usage("--k K is required (the number of codes), unless --init gives a codebook");
    if (sample > 0 && sample < k)
      throw_usage("--sample " + std::to_string(sample) + " is fewer than the " + std::to_string(k) + " codes of --k");
    opt.k = k;

    Input in = Input::open(t.input_paths().front());
    Tensor x = read_training_set(in, patch);
    if (sample > 0 && sample < x.dim(0)) {
      const std::int64_t d = x.dim(1);
      const auto rows = vq::sample_rows(x.dim(0), sample, opt.seed);
      Tensor s = Tensor::uninitialized(DType::f4, {sample, d});
      for (std::int64_t i = 0; i < sample; ++i)
        std::memcpy(s.data<float>() + i * d, x.data<float>() + rows[static_cast<std::size_t>(i)] * d,
                    static_cast<std::size_t>(d) * sizeof(float));
      x = std::move(s);
    }
    if (init_codes && init_codes->shape().back() != (pq ? x.dim(1) / pq : x.dim(1)))
      throw_data("the initial codebook " + shape_str(init_codes->shape()) + " does not fit vectors of dimension " +
                 std::to_string(x.dim(1)) + " (" + init + ")");

    // On a terminal: a bar for k-means++, then the inertia of every iteration.
    const bool show = !t.quiet() && is_terminal_fd(2);
    const std::int64_t stages = residual ? residual : pq ? pq : 1;
    auto stage_label = [&](std::int64_t s) {
      return stages == 1 ? std::string() : (residual ? "stage " : "subspace ") + std::to_string(s + 1) + "/" + std::to_string(stages) + ", ";
    };
    std::optional<Progress> bar;
    opt.on_init = [&](std::int64_t s, std::int64_t done, std::int64_t total) {
      if (!show) return;
      if (!bar) bar.emplace("vq-train: " + stage_label(s) + "k-means++", total, t.quiet());
      bar->update(done);
      if (done == total) {
        bar->finish();
        bar.reset();
      }
    };
    opt.on_iteration = [&](std::int64_t s, std::int64_t it, double inertia) {
      if (show)
        std::fprintf(stderr, "vq-train: %siteration %lld/%lld: inertia %.7g\n", stage_label(s).c_str(),
                     static_cast<long long>(it), static_cast<long long>(opt.iters), inertia);
    };

    vq::TrainResult r = residual ? vq::train_residual(x, residual, opt, init_codes ? &*init_codes : nullptr)
                        : pq     ? vq::train_product(x, pq, opt, init_codes ? &*init_codes : nullptr)
                                 : vq::train_flat(x, opt, init_codes ? &*init_codes : nullptr);

    Output out = Output::open(t.output_path());
    const Format f = output_format(t.to_format(), t.output_path(), out.is_terminal());
    if (f == Format::png || f == Format::npz)
      throw_usage("vq-train writes npy, safetensors, txt, csv or json, not " + std::string(format_name(f)));
    write_tensors(out, f, {{f == Format::safetensors ? "codebook" : "", std::move(r.codebook)}});
    out.commit();
  });
}
