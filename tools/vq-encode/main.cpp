// vq-encode: the index of the nearest code of every vector (flat, residual,
// product or FSQ quantization), with distances, reconstructions, top-k and
// usage statistics on request. The algorithm is nnkit/ops/vq.hpp.
#include <cstdio>
#include <optional>

#include "nnkit/cli.hpp"
#include "nnkit/formats/json.hpp"
#include "nnkit/formats/npy.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/io.hpp"
#include "nnkit/ops/vq.hpp"
#include "nnkit/progress.hpp"

using namespace nnkit;

namespace {

// The format of an output, checked before anything is read.
Format format_of(const std::string& path, const std::string& to) {
  const Format f = output_format(to, path, path == "-" && is_terminal_fd(1));
  if (f == Format::png || f == Format::npz)
    throw_usage("vq-encode writes npy, safetensors, txt, csv or json, not " + std::string(format_name(f)) + " (" +
                (path == "-" ? "stdout" : path) + ")");
  return f;
}

// An output file: npy streams tensor by tensor, other formats all at the end.
class Sink {
 public:
  Sink(const std::string& path, Format f) : out_(Output::open(path)), format_(f) {}
  void put(std::string name, Tensor t) {
    if (format_ == Format::npy)
      npy::write(out_, t);
    else
      held_.push_back({std::move(name), std::move(t)});
  }
  void commit() {
    if (format_ != Format::npy) {
      // One tensor as text or JSON needs no label.
      if (held_.size() == 1 && format_ != Format::safetensors) held_[0].name.clear();
      write_tensors(out_, format_, held_);
    }
    out_.commit();
  }

 private:
  Output out_;
  Format format_;
  std::vector<NamedTensor> held_;
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string stats_text(const vq::Stats& st, const vq::Quantizer& q) {
  std::string s = "vq-encode: " + std::to_string(st.vectors) + " vectors of dimension " + std::to_string(st.dim) +
                  ": mean squared error " + fmt("%.6g", st.mse) + " per element (" +
                  fmt("%.6g", st.mean_squared_distance) + " per vector)\n";
  for (std::size_t i = 0; i < st.stages.size(); ++i) {
    const vq::StageUsage& u = st.stages[i];
    std::string label = "vq-encode: ";
    if (st.stages.size() > 1)
      label += (q.kind() == vq::Kind::residual ? "stage " : "subspace ") + std::to_string(i) + ": ";
    s += label + "perplexity " + fmt("%.6g", u.perplexity) + " of " + std::to_string(u.codes) + " codes, " +
         std::to_string(u.used) + " used, " + std::to_string(u.dead) + " dead; vectors per code: min " +
         std::to_string(u.min_count) + ", median " + fmt("%g", u.median_count) + ", max " + std::to_string(u.max_count);
    if (!u.most_used.empty()) {
      s += "; most used";
      for (const auto& [code, count] : u.most_used) s += " " + std::to_string(code) + " (" + std::to_string(count) + ")";
    }
    s += "\n";
  }
  return s;
}

nlohmann::json stats_json(const vq::Stats& st, const vq::Quantizer& q, const std::string& metric) {
  nlohmann::json stages = nlohmann::json::array();
  for (const vq::StageUsage& u : st.stages) {
    nlohmann::json most = nlohmann::json::array();
    for (const auto& [code, count] : u.most_used) most.push_back({{"code", code}, {"count", count}});
    nlohmann::json e = {{"codes", u.codes},           {"used", u.used},
                        {"dead", u.dead},             {"perplexity", u.perplexity},
                        {"min_count", u.min_count},   {"median_count", u.median_count},
                        {"max_count", u.max_count},   {"most_used", most}};
    if (u.codes <= vq::UsageCounter::max_histogram) {
      e["counts"] = u.counts;
      e["dead_codes"] = u.dead_codes;
    }
    stages.push_back(std::move(e));
  }
  const char* kinds[] = {"flat", "residual", "product", "fsq"};
  return {{"vectors", st.vectors},
          {"dim", st.dim},
          {"quantizer", kinds[static_cast<int>(q.kind())]},
          {"metric", metric},
          {"mse", st.mse},
          {"mean_squared_distance", st.mean_squared_distance},
          {"stages", stages}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string codebook, metric = "l2", fsq, distances, quantized, stats_json_path;
  bool residual = false, stats = false;
  long long pq = 0, topk = 0, patch = 0;
  cli::Tool tool("vq-encode", "Vector quantization: the index of the nearest code of every vector.");
  tool.synopsis("--codebook CB [OPTIONS] [INPUT]  |  --fsq L1,L2,... [OPTIONS] [INPUT]")
      .inputs(0, 1)
      .description(
          "INPUT holds vectors [..., D] (npy or npy stream, safetensors, text or PNG; any numeric dtype, computed "
          "in float32); CB is a codebook [K, D]. The output is the int64 index of the nearest code of every vector, "
          "shape [...]. Distances come from blocked SGEMM; the closest candidates are re-ranked with the direct "
          "distance in double precision, so the index is exact, and ties go to the lowest index.\n\n"
          "--metric cosine picks the largest cosine similarity (both sides normalised; a zero vector has cosine 0 "
          "with every code). --residual takes a codebook [L, K, D]: stage l quantizes what stages 0..l-1 left; "
          "indices [..., L]. --pq M takes [M, K, D/M]: each of M slices of the channels has its own codebook; "
          "indices [..., M]. --fsq L1,...,Ld is finite scalar quantization with no codebook: input [..., d], "
          "index = sum of digit_i * (L_1 ... L_(i-1)), channel 0 least significant (vq-encode(1) has the formula).\n\n"
          "A PNG is [H, W, C], so a palette [K, C] makes colour quantization; --patch P cuts an image into P x P "
          "patches [H/P, W/P, P*P*C] first.")
      .output_formats({"npy", "safetensors", "txt", "csv", "json"},
                      "from the -o extension, else npy on a pipe and txt on a terminal")
      .option("codebook,c", &codebook, "FILE", "the codebook: [K, D], or [L, K, D] with --residual, [M, K, D/M] with --pq",
              cli::Complete::file)
      .choice("metric", &metric, {"l2", "cosine"},
              "nearest by squared Euclidean distance, or by cosine similarity")
      .flag("residual", &residual, "residual quantization with a codebook [L, K, D]: indices [..., L]")
      .option("pq", &pq, "M", "product quantization with a codebook [M, K, D/M]: indices [..., M] (default: 0, off)")
      .option("fsq", &fsq, "L1,L2,...",
              "finite scalar quantization with these levels per channel (input [..., d], no codebook)")
      .option("topk,k", &topk, "K", "the K nearest codes, nearest first: indices [..., K] (default: 0, the nearest only)")
      .option("distances", &distances, "FILE",
              "also write the squared distance of each vector to its reconstruction, float32 (cosine: 2 - 2 cos); "
              "- appends it to the output stream",
              cli::Complete::file)
      .option("quantized", &quantized, "FILE",
              "also write the reconstructed vectors [..., D] (FSQ: the codes in [-1, 1]); - appends them to the "
              "output stream",
              cli::Complete::file)
      .flag("stats", &stats,
            "print the mean squared error, perplexity exp(-sum p log p), code usage and dead codes on stderr")
      .option("stats-json", &stats_json_path, "FILE", "write the statistics as JSON, with the count of every code",
              cli::Complete::file)
      .option("patch", &patch, "P", "quantize non-overlapping P x P patches of an image [H, W, C] (default: 0, off)")
      .example("vq-encode --codebook codes.npy emb.npy -o idx.npy", "nearest code of every embedding")
      .example("vq-encode -c palette.npy photo.png | vq-decode -c palette.npy --to png -o out.png",
               "colour quantization of a PNG with a palette [K, 3]")
      .example("vq-encode -c codes.npy --metric cosine --topk 5 q.npy", "the 5 most similar codes of each query")
      .example("vq-encode -c rq.npy --residual x.npy --stats", "residual quantization, with usage statistics")
      .example("vq-encode -c pq.npy --pq 8 x.npy -o codes.npy", "product quantization: 8 indices per vector")
      .example("vq-encode --fsq 8,5,5,5 z.npy", "FSQ indices of latents [..., 4] (codebook of 1000)")
      .example("vq-encode -c patches.npy --patch 8 img.png -o tokens.npy", "an image as a grid of 8x8 patch tokens");
  return tool.run(argc, argv, [&](cli::Tool& t) {
    // Options first: a bad one is reported before any input is read.
    const vq::Metric m = metric == "cosine" ? vq::Metric::cosine : vq::Metric::l2;
    const bool use_fsq = t.given("fsq");
    if (use_fsq && !codebook.empty()) throw_usage("give --codebook or --fsq, not both");
    if (!use_fsq && codebook.empty()) throw_usage("--codebook FILE is required (or --fsq LEVELS)");
    if (use_fsq && (residual || pq)) throw_usage("--fsq takes no --residual or --pq");
    if (use_fsq && m != vq::Metric::l2) throw_usage("--fsq takes no --metric");
    if (pq < 0) throw_usage("--pq must be 1 or more (0: off), not " + std::to_string(pq));
    if (topk < 0) throw_usage("--topk must be 1 or more (0: only the nearest), not " + std::to_string(topk));
    if (topk > 0 && (residual || pq || use_fsq)) throw_usage("--topk works with a flat codebook only");
    if (patch < 0) throw_usage("--patch must be 1 or more (0: off), not " + std::to_string(patch));
    if (t.given("distances") && distances.empty()) throw_usage("--distances needs a FILE (or - for the output stream)");
    if (t.given("quantized") && quantized.empty()) throw_usage("--quantized needs a FILE (or - for the output stream)");
    if (t.given("stats-json") && (stats_json_path.empty() || stats_json_path == "-"))
      throw_usage("--stats-json needs a FILE");
    {
      std::vector<std::string> files = {t.output_path(), distances, quantized, stats_json_path};
      for (std::size_t i = 0; i < files.size(); ++i)
        for (std::size_t j = i + 1; j < files.size(); ++j)
          if (!files[i].empty() && files[i] != "-" && files[i] == files[j])
            throw_usage("two outputs go to " + in_quotes(files[i]) + "; give each its own file");
    }
    std::optional<vq::Quantizer> q;
    if (use_fsq) {
      q = vq::Quantizer::fsq(vq::parse_levels(fsq));
    } else {
      Input cb = Input::open(codebook);
      q = vq::make_quantizer(read_one_tensor(cb), residual, pq, m, cb.name());
    }
    if (topk > q->codes())
      throw_usage("--topk " + std::to_string(topk) + " is more than the " + std::to_string(q->codes()) +
                  " codes of the codebook");

    const Format main_format = format_of(t.output_path(), t.to_format());
    const bool dist_file = !distances.empty() && distances != "-", quant_file = !quantized.empty() && quantized != "-";
    const Format dist_format = dist_file ? format_of(distances, "") : Format::npy;
    const Format quant_format = quant_file ? format_of(quantized, "") : Format::npy;
    Input in = Input::open(t.input_paths().front());
    // The outputs are opened once the first tensor is read: a bad input
    // creates nothing (and a closed stdin cannot alias an output).
    std::optional<Sink> main_out, dist_out, quant_out;
    vq::UsageCounter usage(*q);
    const bool want_stats = stats || !stats_json_path.empty();

    vq::EncodeOptions opt;
    opt.topk = topk;
    opt.distances = !distances.empty() || want_stats;
    opt.quantized = !quantized.empty();
    std::int64_t count = 0;
    for_each_tensor(in, [&](NamedTensor&& nt) {
      const std::string where = count == 0 ? in.name() : in.name() + ", tensor " + std::to_string(count);
      const std::string suffix = count == 0 ? "" : "." + std::to_string(count);
      if (count == 0) {
        main_out.emplace(t.output_path(), main_format);
        if (dist_file) dist_out.emplace(distances, dist_format);
        if (quant_file) quant_out.emplace(quantized, quant_format);
      }
      Tensor x = patch > 0 ? vq::patchify(nt.tensor, patch, where) : std::move(nt.tensor);
      x = vq::prepare_input(*q, x, where);
      Progress progress("vq-encode", x.numel() / q->dim(), t.quiet());
      opt.progress = [&](std::int64_t done, std::int64_t) { progress.update(done); };
      vq::Encoded e = vq::encode(*q, x, opt);
      progress.finish();
      if (want_stats) usage.add(e);
      main_out->put("indices" + suffix, std::move(e.indices));
      if (distances == "-") main_out->put("distances" + suffix, e.distances);
      if (dist_out) dist_out->put("distances" + suffix, e.distances);
      if (quantized == "-") main_out->put("quantized" + suffix, e.quantized);
      if (quant_out) quant_out->put("quantized" + suffix, std::move(e.quantized));
      ++count;
    });
    const vq::Stats st = usage.summary();
    if (!stats_json_path.empty()) {
      Output js = Output::open(stats_json_path);
      json::write(js, stats_json(st, *q, use_fsq ? "fsq" : metric));
      js.commit();
    }
    if (dist_out) dist_out->commit();
    if (quant_out) quant_out->commit();
    main_out->commit();
    if (stats && !t.quiet()) std::fputs(stats_text(st, *q).c_str(), stderr);
  });
}
