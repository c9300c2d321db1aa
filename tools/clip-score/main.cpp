// clip-score: CLIPScore, RefCLIPScore, similarity matrices, zero-shot and
// SigLIP probabilities, retrieval recall and contrastive losses from image
// and text embeddings. The conventions live in nnkit/ops/clip.hpp.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "nnkit/cli.hpp"
#include "nnkit/formats/json.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/ops/clip.hpp"
#include "nnkit/progress.hpp"
#include "nnkit/rng.hpp"
#include "nnkit/shard.hpp"

using namespace nnkit;

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// "1,5,10": positive integers, duplicates dropped, in the order given.
std::vector<std::int64_t> parse_ks(const std::string& text) {
  std::vector<std::int64_t> ks;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    std::size_t used = 0;
    long long k = 0;
    try {
      k = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || k < 1)
      throw_usage("--k takes positive integers separated by commas, such as 1,5,10, not " + in_quotes(text));
    if (std::find(ks.begin(), ks.end(), k) == ks.end()) ks.push_back(k);
    pos = comma + 1;
  }
  return ks;
}

// The tensors named on the command line. Each path is read on its own,
// except stdin: named k times, it must hold k tensors (an npy stream), taken
// in command-line order.
class Sources {
 public:
  void add(const std::string& path) { paths_.push_back(path); }
  // The tensor of the input added at position i; *shown_name is its name for messages.
  Tensor read(std::size_t i, std::string* shown_name) {
    const std::string& path = paths_.at(i);
    const auto uses = static_cast<std::size_t>(std::count(paths_.begin(), paths_.end(), "-"));
    if (path != "-" || uses == 1) {
      Input in = Input::open(path);
      *shown_name = in.name();
      return read_one_tensor(in);
    }
    if (stdin_.empty()) {
      Input in = Input::open("-");
      stdin_name_ = in.name();
      for (auto& nt : read_tensors(in)) stdin_.push_back(std::move(nt.tensor));
      if (stdin_.size() != uses)
        throw_data(stdin_name_ + " holds " + std::to_string(stdin_.size()) + " tensor(s), but " +
                   std::to_string(uses) + " inputs are read from it, in command-line order");
    }
    *shown_name = stdin_name_;
    return std::move(stdin_.at(static_cast<std::size_t>(std::count(paths_.begin(), paths_.begin() + i, "-"))));
  }

 private:
  std::vector<std::string> paths_;
  std::vector<Tensor> stdin_;
  std::string stdin_name_;
};

// A small table: a header row, then rows; columns two spaces apart.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(rows.front().size(), 0);
  for (const auto& r : rows)
    for (std::size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t c = 0; c < r.size(); ++c)
      line += r[c] + (c + 1 < r.size() ? std::string(width[c] - r[c].size() + 2, ' ') : "");
    out += line + "\n";
  }
  return out;
}

nlohmann::json summary_json(const clip::Summary& s, std::uint64_t seed) {
  nlohmann::json j = {{"mean", s.mean}, {"std", s.std}, {"n", s.n}};
  if (s.bootstrap > 0) {
    j["ci95"] = {s.ci_low, s.ci_high};
    j["bootstrap"] = s.bootstrap;
    j["seed"] = seed;
  }
  return j;
}

std::vector<std::string> summary_row(const std::string& name, const clip::Summary& s) {
  std::vector<std::string> row = {name, std::to_string(s.n), number(s.mean), number(s.std)};
  if (s.bootstrap > 0) {
    row.push_back(number(s.ci_low));
    row.push_back(number(s.ci_high));
  }
  return row;
}

nlohmann::json ranks_json(const clip::RankSummary& s) {
  nlohmann::json j;
  for (const auto& [k, r] : s.recall) j["recall@" + std::to_string(k)] = r;
  j["median_rank"] = s.median_rank;
  j["mrr"] = s.mrr;
  j["queries"] = s.queries;
  return j;
}

// A summary both ways: JSON, and a text table (a header row, then rows).
struct Report {
  nlohmann::json json;
  std::vector<std::vector<std::string>> rows;
};

// recall@K, median rank and MRR in both directions: one summary for the whole
// run and for the merge of its shards, so that the two print the same bytes.
Report retrieval_report(const clip::RetrievalRanks& r, const std::vector<std::int64_t>& k_list) {
  const clip::RankSummary i2t = clip::summarize_ranks(r.image_to_text, k_list);
  const clip::RankSummary t2i = clip::summarize_ranks(r.text_to_image, k_list);
  Report rep;
  rep.json = {{"image_to_text", ranks_json(i2t)}, {"text_to_image", ranks_json(t2i)}};
  rep.rows = {{"direction", "queries"}};
  for (std::int64_t k : k_list) rep.rows[0].push_back("recall@" + std::to_string(k));
  rep.rows[0].push_back("median_rank");
  rep.rows[0].push_back("mrr");
  for (const auto& [name, s] : {std::pair{"image_to_text", &i2t}, std::pair{"text_to_image", &t2i}}) {
    std::vector<std::string> row = {name, std::to_string(s->queries)};
    for (const auto& kr : s->recall) row.push_back(number(kr.second));
    row.push_back(number(s->median_rank));
    row.push_back(number(s->mrr));
    rep.rows.push_back(row);
  }
  return rep;
}

// Summaries are JSON with --to json or an -o name ending in .json, else text.
bool summary_as_json(const cli::Tool& t, const std::string& where) {
  const std::string& to = t.to_format();
  if (!to.empty() && to != "json" && to != "txt" && to != "text")
    throw_usage(where + " writes a summary: --to txt or json, not " + to);
  return to == "json" || (to.empty() && ends_with(t.output_path(), ".json"));
}

void write_report(const cli::Tool& t, const Report& rep, bool as_json) {
  Output out = Output::open(t.output_path());
  if (as_json)
    json::write(out, rep.json);
  else
    out.write(table(rep.rows));
  out.commit();
}

// The options --merge takes besides --k, --to, -o, -q and --threads: none
// that computes (the shards did), and --mode only as retrieval.
void check_merge_options(const cli::Tool& t, const std::string& mode) {
  for (const char* o : {"convention", "w", "refs", "mean", "bootstrap", "seed", "logit-scale", "logit-bias",
                        "templates", "labels", "text-image", "loss", "diagonal", "no-normalize", "allow-zero",
                        "block", "shard"})
    if (t.given(o))
      throw_usage(std::string("--") + o + " does not apply to --merge, which only adds up the shards' states");
  if (mode != "retrieval" && t.given("mode"))
    throw_usage("--merge combines the states of --mode retrieval --shard K/N, not --mode " + mode);
  if (std::count(t.input_paths().begin(), t.input_paths().end(), "-") > 1)
    throw_usage("--merge reads one STATE from stdin at most ('-' given more than once)");
}

// The states of --shard, one per input.
std::vector<clip::RetrievalShard> read_states(const std::vector<std::string>& paths) {
  std::vector<clip::RetrievalShard> shards;
  for (const std::string& path : paths) {
    Input in = Input::open(path);
    clip::ShardState st;
    ReadOptions opt;
    opt.metadata = &st.metadata;
    st.tensors = read_tensors(in, opt);
    shards.push_back(clip::shard_from_state(std::move(st), "STATE (" + in.name() + ")"));
  }
  return shards;
}

// clip-score --merge STATE...: the summary of the whole run.
void merge_states(const cli::Tool& t, const std::string& mode, const std::string& ks) {
  check_merge_options(t, mode);
  const std::vector<std::int64_t> k_list = parse_ks(ks);
  const bool as_json = summary_as_json(t, "--merge");
  const clip::RetrievalRanks r = clip::merge_retrieval(read_states(t.input_paths()));
  write_report(t, retrieval_report(r, k_list), as_json);
}

// Two inputs, IMAGE_EMB and TEXT_EMB, unless --merge (which the Tool cannot tell).
void check_two_inputs(const cli::Tool& t) {
  const std::size_t n = t.input_paths().size();
  if (n < 2)  // (no input at all arrives here as one, stdin)
    throw_usage("expected 2 inputs (IMAGE_EMB TEXT_EMB); try 'clip-score --help'");
  if (n > 2) throw_usage("too many inputs: at most 2 IMAGE_EMB TEXT_EMB, got " + std::to_string(n) +
                         " (several STATE files go with --merge)");
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "pairs", convention = "hessel", refs, labels, text_image, ks = "1,5,10", loss, shard;
  double w = 2.5, logit_scale = 100, logit_bias = 0;
  long long bootstrap = 0, seed = static_cast<long long>(default_seed), templates = 1, block = 512;
  bool mean = false, no_normalize = false, allow_zero = false, diagonal = false, merge = false;

  cli::Tool tool("clip-score",
                 "Score image and text embeddings: CLIPScore, RefCLIPScore, similarity matrices, zero-shot and "
                 "SigLIP probabilities, retrieval recall and contrastive losses.");
  tool.synopsis("[OPTIONS] IMAGE_EMB TEXT_EMB\n  or:  clip-score --merge [OPTIONS] STATE...")
      .inputs(0, -1, "IMAGE_EMB TEXT_EMB")  // none: --merge reads a state from stdin
      .description(
          "IMAGE_EMB is [N, D] and TEXT_EMB [M, D] (npy, safetensors, npz or text; any float dtype, float16 as "
          "clip-retrieval writes it). Rows are L2-normalised first, so x*y is the cosine cos. A zero row, a NaN "
          "or an infinity is a data error (exit 65). Either input may be - (stdin); named twice, stdin holds "
          "both, image first.\n\n"
          "Modes: pairs (default, N = M): CLIPScore w*max(cos, 0) of row i with row i (Hessel et al. 2021), or "
          "with --convention torchmetrics 100*cos, whose mean torchmetrics clamps at 0. "
          "matrix: the [N, M] cosines (times --logit-scale if given). "
          "zero-shot: softmax over the M texts of scale*cos, [N, M]; with --labels the top-1/top-5 accuracy "
          "instead. siglip: sigmoid(t*cos + b) for every image-text pair, [N, M]. retrieval: recall@K, median "
          "rank and mean reciprocal rank in both directions. --loss: the CLIP or SigLIP loss of the N pairs.\n\n"
          "Reducing modes (pairs, retrieval, zero-shot --labels, --loss) stream tiles of the similarity matrix "
          "and never hold it whole. The formulas, the memory bound and the JSON layouts are in clip-score(1).\n\n"
          "Sharded retrieval: --mode retrieval --shard K/N computes only the tiles of part K of N of the image "
          "rows and writes a small exact state (safetensors); --merge STATE... adds up the N states, given in "
          "any order, and prints the summary of the whole run, byte for byte.")
      .output_formats({"npy", "safetensors", "txt", "csv", "json"},
                      "tensors: from the -o extension, else npy on a pipe and txt on a terminal; summaries: json "
                      "when -o ends in .json, else txt")
      .choice("mode,m", &mode, {"pairs", "matrix", "zero-shot", "siglip", "retrieval"}, "what to compute")
      .choice("convention", &convention, {"hessel", "torchmetrics"},
              "pairs: hessel is w*max(cos, 0) per pair (Hessel et al. 2021); torchmetrics is 100*cos per pair "
              "and max(mean, 0) with --mean")
      .option("w", &w, "W", "pairs, hessel: the weight w of w*max(cos, 0)")
      .option("refs", &refs, "REF_EMB",
              "pairs, hessel: reference caption embeddings [N, R, D]; adds RefCLIPScore, the harmonic mean of "
              "CLIPScore and max(max_r cos(text, ref_r), 0)",
              cli::Complete::file)
      .flag("mean", &mean, "pairs: print mean, std (ddof=0) and n instead of the per-pair scores")
      .option("bootstrap", &bootstrap, "B", "pairs: add a 95% percentile bootstrap interval of the mean from B "
              "resamples (implies --mean; 0: none)")
      .option("seed", &seed, "S", "with --bootstrap: the seed of the counter-based resampling")
      .option("logit-scale", &logit_scale, "S",
              "the multiplier of cos (a checkpoint's logit_scale.exp()): matrix, zero-shot, siglip, --loss "
              "(default: 100, open_clip's, for zero-shot and --loss clip; none for matrix; required for "
              "siglip)")
      .option("logit-bias", &logit_bias, "B",
              "SigLIP's learned bias b (default: none; required by --mode siglip and --loss siglip)")
      .option("templates", &templates, "T",
              "zero-shot: TEXT_EMB holds T consecutive template rows per class; each class is their mean, "
              "renormalised (open_clip)")
      .option("labels", &labels, "FILE",
              "zero-shot: the class index of each image ([N] integers); prints top-1 and top-5 accuracy "
              "instead of probabilities",
              cli::Complete::file)
      .option("text-image", &text_image, "FILE",
              "retrieval: the image index of each text ([M] integers), for several captions per image "
              "(default: text i is image i's, N = M)",
              cli::Complete::file)
      .option("k", &ks, "LIST", "retrieval: the K of recall@K, comma-separated")
      .choice("loss", &loss, {"clip", "siglip"},
              "print the batch loss of the N pairs: clip (symmetric InfoNCE) or siglip (pairwise sigmoid)")
      .flag("diagonal", &diagonal, "matrix, siglip: only the N values of row i with row i (N = M), not [N, M]")
      .flag("no-normalize", &no_normalize, "use the rows as given, without L2 normalisation")
      .flag("allow-zero", &allow_zero, "let zero rows through: they normalise to zero and score cos = 0")
      .option("block", &block, "N", "rows and columns of a similarity tile; a thread holds one, 4*N^2 bytes")
      .option("shard", &shard, "K/N",
              "retrieval: compute only part K of N of the image rows, numbered from 0, and write its state for "
              "--merge (safetensors, to -o)")
      .flag("merge", &merge, "add up the states of --shard K/N, one per shard in any order (the inputs), into "
            "the retrieval summary of the whole run; takes --k, --to, -o")
      .example("clip-score img.npy txt.npy --mean --bootstrap 1000", "CLIPScore of N image-caption pairs, with "
               "a 95% interval")
      .example("clip-score img.npy cand.npy --refs refs.npy -o scores.safetensors",
               "CLIPScore and RefCLIPScore per caption")
      .example("clip-score --convention torchmetrics --mean img.npy txt.npy", "the number torchmetrics prints")
      .example("clip-score --mode zero-shot --templates 80 --labels y.npy img.npy prompts.npy",
               "ImageNet-style zero-shot accuracy with 80 prompt templates per class")
      .example("clip-score --mode retrieval --text-image owner.npy --to json img.npy captions.npy",
               "COCO-style recall@1/5/10 with 5 captions per image")
      .example("clip-score --mode siglip --logit-scale 117.3 --logit-bias -12.9 img.npy labels.npy",
               "SigLIP probabilities, every image against every text")
      .example("clip-score -m retrieval --shard $SLURM_ARRAY_TASK_ID/16 img.npy txt.npy -o state$SLURM_ARRAY_TASK_ID.st",
               "one shard of a retrieval job array: its state")
      .example("clip-score --merge --to json state*.st", "the recall of the whole run from its 16 states");

  return tool.run(argc, argv, [&](cli::Tool& t) {
    if (merge) return merge_states(t, mode, ks);
    // ---- the command line makes sense before any input is read
    check_two_inputs(t);
    if (t.given("bootstrap")) mean = true;
    const bool is_loss = !loss.empty();
    if (is_loss && t.given("mode") && mode != "pairs")
      throw_usage("--loss is the loss of the N pairs; it does not combine with --mode " + mode);
    const std::string where = is_loss                                             ? "--loss"
                              : mode == "pairs" && convention == "torchmetrics" ? "--convention torchmetrics"
                                                                                : "--mode " + mode;
    auto only = [&](const char* option, bool ok, const std::string& applies) {
      if (t.given(option) && !ok)
        throw_usage(std::string("--") + option + " applies to " + applies + ", not to " + where);
    };
    const bool pairs = mode == "pairs" && !is_loss;
    const bool hessel = convention == "hessel";
    only("convention", pairs, "--mode pairs");
    only("w", pairs && hessel, "--mode pairs with the hessel convention");
    only("refs", pairs && hessel, "--mode pairs with the hessel convention (torchmetrics has no RefCLIPScore)");
    only("mean", pairs, "--mode pairs");
    only("bootstrap", pairs, "--mode pairs");
    only("seed", pairs && t.given("bootstrap"), "--bootstrap");
    only("logit-scale", is_loss || mode == "matrix" || mode == "zero-shot" || mode == "siglip",
         "matrix, zero-shot, siglip and --loss");
    only("logit-bias", mode == "siglip" || loss == "siglip", "--mode siglip and --loss siglip");
    only("templates", mode == "zero-shot", "--mode zero-shot");
    only("labels", mode == "zero-shot", "--mode zero-shot");
    only("text-image", mode == "retrieval", "--mode retrieval");
    only("k", mode == "retrieval", "--mode retrieval");
    only("diagonal", mode == "matrix" || mode == "siglip", "--mode matrix and --mode siglip");
    only("block", !pairs && !diagonal, "the modes that compute a similarity matrix (not --diagonal)");
    const bool sharded = t.given("shard");
    if (sharded && (mode != "retrieval" || is_loss))
      throw_usage("--shard splits --mode retrieval; to shard " + where +
                  ", split the inputs by rows with tensor-split --part K/N and run each part");
    if (sharded && t.given("k")) throw_usage("--k chooses what the summary shows: give it to --merge, not --shard");
    const Part part = sharded ? parse_part(shard) : Part{0, 1};
    const bool siglip_like = mode == "siglip" || loss == "siglip";
    if (siglip_like && (!t.given("logit-scale") || !t.given("logit-bias")))
      throw_usage(where + " needs the model's --logit-scale and --logit-bias (SigLIP learns both; e.g. "
                  "--logit-scale 117.3 --logit-bias -12.9)");
    if (!std::isfinite(w) || w <= 0) throw_usage("--w must be a positive number, not " + number(w));
    if (!std::isfinite(logit_scale) || logit_scale <= 0)
      throw_usage("--logit-scale must be a positive number, not " + number(logit_scale));
    if (!std::isfinite(logit_bias)) throw_usage("--logit-bias must be a finite number");
    if (bootstrap < 0 || bootstrap > 10000000) throw_usage("--bootstrap must be 0 to 10000000");
    if (seed < 0) throw_usage("--seed must be 0 or more");
    if (templates < 1) throw_usage("--templates must be 1 or more");
    if (block < 1 || block > 8192) throw_usage("--block must be 1 to 8192");
    const std::vector<std::int64_t> k_list = parse_ks(ks);

    // Summaries are text or JSON; a shard's state safetensors; tensors any of the tool's formats.
    const bool summary = !sharded && ((pairs && mean) || mode == "retrieval" ||
                                      (mode == "zero-shot" && t.given("labels")) || is_loss);
    const std::string& to = t.to_format();
    bool as_json = false;
    if (summary) {
      as_json = summary_as_json(t, where);
    } else if (sharded) {
      if (!to.empty() && to != "safetensors") throw_usage("--shard writes its state as safetensors, not " + to);
      if (t.output_path() == "-" && is_terminal_fd(1))
        throw_usage("--shard writes a binary state for --merge: give -o FILE");
    } else if (to.empty() && ends_with(t.output_path(), ".png")) {
      throw_usage("clip-score writes npy, safetensors, txt, csv or json, not png");
    }

    // ---- inputs
    Sources sources;
    sources.add(t.input_paths()[0]);
    sources.add(t.input_paths()[1]);
    std::size_t n_sources = 2;
    const std::size_t refs_at = refs.empty() ? 0 : n_sources++;
    if (!refs.empty()) sources.add(refs);
    const std::size_t labels_at = labels.empty() ? 0 : n_sources++;
    if (!labels.empty()) sources.add(labels);
    const std::size_t owner_at = text_image.empty() ? 0 : n_sources++;
    if (!text_image.empty()) sources.add(text_image);
    auto embeddings = [&](std::size_t i, const std::string& role, int rank) {
      std::string shown;
      Tensor x = sources.read(i, &shown);
      clip::Embeddings e = clip::make_embeddings(std::move(x), role + " (" + shown + ")", rank);
      if (!no_normalize) clip::normalize_rows(e, allow_zero);
      return e;
    };
    auto indices = [&](std::size_t i, const std::string& role, std::int64_t count, std::int64_t limit,
                       const std::string& what_limit) {
      std::string shown;
      const Tensor x = sources.read(i, &shown);
      return clip::make_indices(x, count, limit, role + " (" + shown + ")", what_limit);
    };
    clip::Embeddings images = embeddings(0, "IMAGE_EMB", 2);
    clip::Embeddings texts = embeddings(1, "TEXT_EMB", 2);
    clip::check_same_dim(images, texts);
    const std::int64_t n = images.rows(), m = texts.rows();

    std::unique_ptr<Progress> bar;
    clip::StreamOptions opt;
    opt.block = block;
    opt.progress = [&](std::int64_t done, std::int64_t total) {
      if (!bar) bar = std::make_unique<Progress>("clip-score: similarity tiles", total, t.quiet());
      bar->update(done);
    };
    const auto scale = static_cast<float>(logit_scale), bias = static_cast<float>(logit_bias);

    // ---- compute
    std::vector<NamedTensor> tensors;  // what is written when there is no summary
    nlohmann::json j;                  // the summary, as JSON
    std::vector<std::vector<std::string>> rows;  // and as a text table
    clip::ShardState state;            // what --shard writes
    if (is_loss) {
      if (n != m) throw_data("--loss pairs image i with text i, but there are " + std::to_string(n) +
                             " images and " + std::to_string(m) + " texts");
      if (loss == "clip") {
        const clip::ContrastiveLoss l = clip::clip_loss(images, texts, scale, opt);
        j = {{"loss", l.loss}, {"image_to_text", l.image_to_text}, {"text_to_image", l.text_to_image},
             {"n", l.n}, {"logit_scale", logit_scale}};
        rows = {{"loss", "value", "image_to_text", "text_to_image", "n"},
                {"clip", number(l.loss), number(l.image_to_text), number(l.text_to_image), std::to_string(l.n)}};
      } else {
        const double l = clip::siglip_loss(images, texts, scale, bias, opt);
        j = {{"loss", l}, {"n", n}, {"logit_scale", logit_scale}, {"logit_bias", logit_bias}};
        rows = {{"loss", "value", "n"}, {"siglip", number(l), std::to_string(n)}};
      }
    } else if (mode == "pairs") {
      const Tensor cos = clip::pair_cosines(images, texts);
      const bool tm = convention == "torchmetrics";
      const Tensor score = tm ? clip::torchmetrics_scores(cos) : clip::clip_scores(cos, w);
      Tensor ref_score;
      if (!refs.empty()) {
        clip::Embeddings r = embeddings(refs_at, "REF_EMB", 3);
        clip::check_same_dim(texts, r);
        ref_score = clip::ref_clip_scores(score, clip::best_reference_similarity(texts, r));
      }
      if (mean) {
        const auto u = static_cast<std::uint64_t>(seed);
        const clip::Summary s = clip::summarize(score, bootstrap, u, tm);
        j = summary_json(s, u);
        j["convention"] = convention;
        if (!tm) j["w"] = w;
        rows = {{"score", "n", "mean", "std"}};
        if (bootstrap > 0) {
          rows[0].push_back("ci95_low");
          rows[0].push_back("ci95_high");
        }
        rows.push_back(summary_row(tm ? "torchmetrics" : "clipscore", s));
        if (!refs.empty()) {
          const clip::Summary rs = clip::summarize(ref_score, bootstrap, u, false);
          j["refclipscore"] = summary_json(rs, u);
          rows.push_back(summary_row("refclipscore", rs));
        }
      } else {
        tensors.push_back({tm ? "torchmetrics" : "clipscore", score});
        if (!refs.empty()) tensors.push_back({"refclipscore", ref_score});
      }
    } else if (mode == "matrix") {
      const float s = t.given("logit-scale") ? scale : 1.f;
      if (diagonal) {
        Tensor c = clip::pair_cosines(images, texts);
        float* x = c.data<float>();
        for (std::int64_t i = 0; i < c.numel(); ++i) x[i] *= s;
        tensors.push_back({"similarity", std::move(c)});
      } else {
        tensors.push_back({"similarity", clip::similarity_matrix(images, texts, s, opt)});
      }
    } else if (mode == "zero-shot") {
      // One template per class: the rows are the classes as they are.
      const clip::Embeddings classes =
          templates > 1 ? clip::class_embeddings(texts, templates, allow_zero) : std::move(texts);
      if (!labels.empty()) {
        const auto y = indices(labels_at, "LABELS", n, classes.rows(), "the number of classes");
        const clip::Accuracy a = clip::zero_shot_accuracy(images, classes, y, opt);
        j = {{"top1", a.top1}, {"top5", a.top5}, {"n", a.n}, {"classes", a.classes}};
        rows = {{"images", "classes", "top1", "top5"},
                {std::to_string(a.n), std::to_string(a.classes), number(a.top1), number(a.top5)}};
      } else {
        tensors.push_back({"probabilities", clip::zero_shot_probabilities(images, classes, scale, opt)});
      }
    } else if (mode == "siglip") {
      tensors.push_back({"probabilities", diagonal ? clip::siglip_pair_probabilities(images, texts, scale, bias)
                                                   : clip::siglip_probabilities(images, texts, scale, bias, opt)});
    } else {  // retrieval
      std::vector<std::int64_t> owner;
      if (!text_image.empty()) {
        owner = indices(owner_at, "TEXT_IMAGE", m, n, "the rows of IMAGE_EMB");
      } else {
        if (n != m)
          throw_data("without --text-image, text i belongs to image i, but there are " + std::to_string(n) +
                     " images and " + std::to_string(m) + " texts");
        owner.resize(static_cast<std::size_t>(m));
        for (std::int64_t i = 0; i < m; ++i) owner[i] = i;
      }
      if (sharded) {
        state = clip::shard_state(clip::retrieval_shard(images, texts, owner, part, opt));
      } else {
        Report rep = retrieval_report(clip::retrieval_ranks(images, texts, owner, opt), k_list);
        j = std::move(rep.json);
        rows = std::move(rep.rows);
      }
    }
    if (bar) bar->finish();

    // ---- output
    if (summary) return write_report(t, {j, rows}, as_json);
    Output out = Output::open(t.output_path());
    if (sharded) {
      WriteOptions with_metadata;
      with_metadata.metadata = state.metadata;
      write_tensors(out, Format::safetensors, state.tensors, with_metadata);
    } else {
      const Format f = output_format(to, t.output_path(), out.is_terminal());
      if (f == Format::png) throw_usage("clip-score writes npy, safetensors, txt, csv or json, not png");
      // Text of a single tensor needs no name line.
      if (tensors.size() == 1 && f != Format::safetensors) tensors[0].name.clear();
      write_tensors(out, f, tensors);
    }
    out.commit();
  });
}
