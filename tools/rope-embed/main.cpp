// rope-embed: rotary position embeddings in every layout and long-context
// scaling of Hugging Face transformers; the frequency and cos/sin tables; the
// layout permutation of checkpoints. The algorithm is nnkit/ops/rope.hpp.
#include <cmath>
#include <optional>

#include "nnkit/cli.hpp"
#include "nnkit/formats/npy.hpp"
#include "nnkit/formats/tensor_io.hpp"
#include "nnkit/ops/rope.hpp"

using namespace nnkit;

namespace {

// A 1-D list of numbers from a tensor file (LongRoPE's factors).
std::vector<double> read_factors(const std::string& path, const char* option) {
  Input in = Input::open(path);
  const Tensor t = read_one_tensor(in);
  // One vector: [n], or a text file's one row or one column.
  const bool vector = t.ndim() == 1 || (t.ndim() == 2 && (t.dim(0) == 1 || t.dim(1) == 1));
  if (!vector)
    throw_data(std::string(option) + " " + in.name() + " must be one list of numbers, not shape " + shape_str(t.shape()));
  std::vector<double> v(static_cast<std::size_t>(t.numel()));
  for (std::int64_t i = 0; i < t.numel(); ++i) v[i] = t.get(i);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  double base = 10000, partial = 1, factor = 1, beta_fast = 32, beta_slow = 1, mscale = 0, mscale_all_dim = 0,
         low_freq = 1, high_freq = 4, attention = 0;
  long long rotary_dim = 0, offset = 0, seq_axis = -2, original_max_pos = 0, axes = 1, heads = 1, seq_len = 0;
  std::string layout = "half", scaling = "none", positions, grid, mrope, short_factor, long_factor, emit, convert;
  bool inverse = false, no_truncate = false, weights = false;

  cli::Tool tool("rope-embed", "Apply rotary position embeddings (RoPE), in any layout and long-context scaling.");
  tool.synopsis("[OPTIONS] [INPUT]")
      .inputs(0, 1)
      .description(
          "Rotates every tensor of INPUT, [..., seq, dim] float16/32/64 (computed in float32, written in the "
          "input's dtype): the token at position p has its channel pairs (u, v) turned by the angle p*w_j, "
          "u' = a(u cos - v sin), v' = a(v cos + u sin), with w_j = base^(-2j/R) for the pairs j < R/2 of the "
          "first R channels (the rest pass through) and a the attention factor of the scaling. Frequencies and "
          "scalings are those of Hugging Face transformers' modeling_rope_utils, the angles and their cos/sin "
          "evaluated in double precision.\n\n"
          "Layouts: half pairs channel j with j + R/2 (rotate_half: GPT-NeoX, Hugging Face); interleaved pairs "
          "2j with 2j + 1 (RoFormer, GPT-J, Meta's llama). --convert-layout reorders a tensor, or the rows of "
          "a Q/K weight with --weights --heads H, from one layout to the other.\n\n"
          "Positions are offset, offset+1, ... along the sequence axis, or --positions FILE (integers, [seq] "
          "or any shape that broadcasts to the input without its last axis). --axes 2 or 3 with --grid HxW or "
          "TxHxW turns images and video: the R channels split into one part per axis (EVA-02), or with "
          "--mrope-section the frequencies split into sections, one per axis (Qwen2-VL).")
      .output_formats({"npy", "safetensors", "txt", "csv", "json"},
                      "from the -o extension, else npy on a pipe and txt on a terminal")
      .option("base", &base, "THETA", "rope_theta: w_j = THETA^(-2j/R)")
      .choice("layout", &layout, {"half", "interleaved"},
              "which channels pair up: (j, j+R/2) rotate_half as GPT-NeoX and transformers, or (2j, 2j+1) as "
              "RoFormer, GPT-J and Meta's llama")
      .option("rotary-dim", &rotary_dim, "R", "rotate the first R channels (even), pass the rest (default: all)")
      .option("partial", &partial, "F", "rotate the first int(dim*F) channels, as partial_rotary_factor")
      .option("seq-axis", &seq_axis, "AXIS", "the axis of the tokens (not the last; negative counts from the end)")
      .option("offset", &offset, "P", "positions start at P (a KV cache holding P tokens)")
      .option("positions", &positions, "FILE",
              "integer positions: [seq], or broadcasting to the input without its last axis; [axes, ...] with "
              "--axes (default: offset, offset+1, ...)",
              cli::Complete::file)
      .flag("inverse", &inverse, "apply the opposite rotation (divided by the attention factor): undoes a forward pass")
      .choice("scaling", &scaling, {"none", "linear", "dynamic", "yarn", "llama3", "longrope"},
              "long-context scaling of the frequencies, as transformers' rope_type")
      .option("factor", &factor, "S",
              "scaling factor s (linear, dynamic, yarn, llama3, longrope; required by them) (default: 1)")
      .option("original-max-pos", &original_max_pos, "N",
              "original_max_position_embeddings: the context the model was trained for (dynamic, yarn, llama3, "
              "longrope; required by them) (default: none)")
      .option("beta-fast", &beta_fast, "B", "yarn: rotations above which frequencies are kept")
      .option("beta-slow", &beta_slow, "B", "yarn: rotations below which frequencies are divided by s")
      .option("mscale", &mscale, "M", "yarn: attention factor (0.1 M ln s + 1)/(0.1 M' ln s + 1) with --mscale-all-dim M' (0: unset)")
      .option("mscale-all-dim", &mscale_all_dim, "M'", "yarn: see --mscale (0: unset)")
      .flag("no-truncate", &no_truncate, "yarn: keep the correction range's fractional ends (truncate: false, gpt-oss)")
      .option("low-freq-factor", &low_freq, "L", "llama3: wavelengths above N/L are divided by s")
      .option("high-freq-factor", &high_freq, "H", "llama3: wavelengths below N/H are kept; between, a smooth blend")
      .option("short-factor", &short_factor, "FILE", "longrope: R/2 divisors of the frequencies up to N tokens",
              cli::Complete::file)
      .option("long-factor", &long_factor, "FILE", "longrope: R/2 divisors of the frequencies past N tokens",
              cli::Complete::file)
      .option("attention-factor", &attention, "A",
              "yarn, longrope: multiply cos and sin by A (default: the scaling's own)")
      .option("axes", &axes, "A", "position axes per token: 1 (text), 2 (images), 3 (video)")
      .option("grid", &grid, "HxW", "the tokens are a row-major grid HxW or TxHxW (sets --axes)")
      .option("mrope-section", &mrope, "T,H,W",
              "Qwen2-VL multimodal RoPE: the first T frequencies turn with axis 0, the next H with axis 1, the "
              "last W with axis 2 (T+H+W = R/2)")
      .choice("emit", &emit, {"inv-freq", "cos-sin"},
              "write the frequencies [R/2] (float64), or the cos and sin tables [seq, R] (float32) as two tensors, "
              "instead of rotating; the shape comes from INPUT, else from --rotary-dim and --seq-len",
              "WHAT")
      .option("seq-len", &seq_len, "N", "with --emit and no INPUT: N positions (default: from INPUT)")
      .choice("convert-layout", &convert, {"half-to-interleaved", "interleaved-to-half"},
              "reorder the rotary channels of each head from one layout to the other instead of rotating",
              "WHICH")
      .flag("weights", &weights, "with --convert-layout: reorder the rows (axis 0) of a Q/K weight or bias, not the last axis")
      .option("heads", &heads, "H", "with --convert-layout: the axis holds H heads, each reordered on its own")
      .example("rope-embed q.npy -o q_rot.npy", "Llama-style RoPE of [heads, seq, dim] queries")
      .example("rope-embed --layout interleaved --offset 512 k_new.npy", "keys of new tokens after a 512-token KV cache")
      .example("rope-embed --scaling llama3 --factor 8 --original-max-pos 8192 --base 500000 q.npy",
               "Llama 3.1's long-context frequencies")
      .example("rope-embed --scaling yarn --factor 4 --original-max-pos 32768 --base 1000000 q.npy",
               "Qwen2.5 with YaRN")
      .example("rope-embed --convert-layout interleaved-to-half --weights --heads 32 wq.npy -o wq_hf.npy",
               "a Meta checkpoint's Q weight in transformers' layout")
      .example("rope-embed --grid 16x16 --layout interleaved patches.npy", "2-D RoPE of a 16x16 patch grid (EVA-02)")
      .example("rope-embed --emit cos-sin --rotary-dim 128 --seq-len 4096 -o tables.npy", "the cos and sin tables")
      .example("rope-embed --inverse q_rot.npy", "undo a rotation");

  return tool.run(argc, argv, [&](cli::Tool& t) {
    // ---- what was asked, checked before any input is read ----
    const bool converting = !convert.empty(), emitting = !emit.empty();
    if (converting && emitting) throw_usage("--convert-layout and --emit are two different jobs: give one");
    auto refuse = [&](const char* opt, bool bad, const std::string& why) {
      if (bad && t.given(opt)) throw_usage(std::string("--") + opt + " " + why);
    };
    if (t.given("rotary-dim") && t.given("partial")) throw_usage("give --rotary-dim or --partial, not both");
    if (t.given("rotary-dim") && (rotary_dim <= 0 || rotary_dim % 2 != 0))
      throw_usage("--rotary-dim must be even and positive, not " + std::to_string(rotary_dim));
    if (!(partial > 0 && partial <= 1)) throw_usage("--partial must be in (0, 1], not " + std::to_string(partial));
    refuse("weights", !converting, "goes with --convert-layout");
    refuse("heads", !converting, "goes with --convert-layout");
    refuse("seq-len", !emitting, "goes with --emit (a rotation takes its length from INPUT)");
    if (converting) {
      for (const char* opt : {"layout", "base", "seq-axis", "offset", "positions", "inverse", "scaling", "axes", "grid",
                              "mrope-section"})
        refuse(opt, true, "does not apply to --convert-layout");
      if (heads < 1) throw_usage("--heads must be positive, not " + std::to_string(heads));
    }
    refuse("inverse", emitting, "does not apply to --emit");

    rope::Params p;
    p.base = base;
    p.layout = rope::parse_layout(layout);
    p.scaling = rope::parse_scaling(scaling);
    using S = rope::Scaling;
    const S sc = p.scaling;
    const std::string not_for = "does not apply to --scaling " + scaling;
    refuse("factor", sc == S::none, not_for);
    refuse("original-max-pos", sc == S::none || sc == S::linear, not_for);
    for (const char* opt : {"beta-fast", "beta-slow", "mscale", "mscale-all-dim", "no-truncate"})
      refuse(opt, sc != S::yarn, "applies to --scaling yarn only");
    for (const char* opt : {"low-freq-factor", "high-freq-factor"}) refuse(opt, sc != S::llama3, "applies to --scaling llama3 only");
    for (const char* opt : {"short-factor", "long-factor"}) refuse(opt, sc != S::longrope, "applies to --scaling longrope only");
    refuse("attention-factor", sc != S::yarn && sc != S::longrope, "applies to --scaling yarn and longrope only");
    if (sc != S::none && !t.given("factor")) throw_usage("--scaling " + scaling + " needs --factor");
    if (sc == S::longrope && (short_factor.empty() || long_factor.empty()))
      throw_usage("--scaling longrope needs --short-factor FILE and --long-factor FILE");
    p.factor = factor;
    p.original_max_pos = original_max_pos;
    p.beta_fast = beta_fast;
    p.beta_slow = beta_slow;
    p.mscale = mscale;
    p.mscale_all_dim = mscale_all_dim;
    p.truncate = !no_truncate;
    p.low_freq_factor = low_freq;
    p.high_freq_factor = high_freq;
    if (t.given("attention-factor")) p.attention_factor = attention;

    std::vector<std::int64_t> grid_dims;
    if (!grid.empty()) {
      grid_dims = rope::parse_int_list(grid, "--grid", 'x', true);
      if (grid_dims.size() < 2 || grid_dims.size() > 3) throw_usage("--grid takes HxW or TxHxW, not " + in_quotes(grid));
    }
    if (!mrope.empty()) p.mrope_section = rope::parse_int_list(mrope, "--mrope-section", ',', false);
    // The number of position axes: --axes, or what --grid or --mrope-section imply.
    long long n_axes = t.given("axes") ? axes : !grid_dims.empty() ? static_cast<long long>(grid_dims.size())
                                               : !p.mrope_section.empty() ? static_cast<long long>(p.mrope_section.size())
                                                                          : 1;
    if (n_axes < 1 || n_axes > 3) throw_usage("--axes must be 1, 2 or 3, not " + std::to_string(n_axes));
    if (!grid_dims.empty() && static_cast<long long>(grid_dims.size()) != n_axes)
      throw_usage("--grid " + grid + " has " + std::to_string(grid_dims.size()) + " axes, --axes says " + std::to_string(n_axes));
    if (!p.mrope_section.empty() && static_cast<long long>(p.mrope_section.size()) != n_axes)
      throw_usage("--mrope-section has " + std::to_string(p.mrope_section.size()) + " sections for " + std::to_string(n_axes) + " axes");
    if (n_axes > 1 && grid_dims.empty() && positions.empty())
      throw_usage("--axes " + std::to_string(n_axes) + " needs the tokens' positions: --grid or --positions FILE");
    if (!grid_dims.empty() && !positions.empty()) throw_usage("give --grid or --positions, not both");
    p.axes = static_cast<int>(n_axes);
    if (emitting && seq_len < 0) throw_usage("--seq-len must not be negative");

    // ---- inputs that options name ----
    std::optional<rope::Positions> fixed;  // positions that do not depend on the input's length
    if (!positions.empty()) {
      Input pin = Input::open(positions);
      fixed = rope::tensor_positions(read_one_tensor(pin), p.axes, offset);
    } else if (!grid_dims.empty()) {
      fixed = rope::grid_positions(grid_dims, offset);
    }
    if (sc == S::longrope) {
      p.short_factor = read_factors(short_factor, "--short-factor");
      p.long_factor = read_factors(long_factor, "--long-factor");
    }

    // The rotary dimension for a head of `dim` channels; odd or too large is the input's fault here.
    auto rotary_for = [&](std::int64_t dim) {
      const std::int64_t r = t.given("rotary-dim") ? rotary_dim : static_cast<std::int64_t>(static_cast<double>(dim) * partial);
      if (r > dim)
        throw_data("the input has " + std::to_string(dim) + " channels per token, fewer than --rotary-dim " + std::to_string(r));
      if (r <= 0 || r % 2 != 0)
        throw_data("the rotary dimension " + std::to_string(r) + " (from " + std::to_string(dim) +
                   " channels per token" + (t.given("partial") ? " and --partial" : "") + ") must be even and positive");
      return r;
    };
    auto positions_for = [&](std::int64_t seq) { return fixed ? *fixed : rope::sequence_positions(seq, offset); };

    // --emit reads INPUT for its shape, unless --rotary-dim (and no INPUT) says it all.
    const bool reads_input = !emitting || t.input_paths().front() != "-" || !t.given("rotary-dim");
    if (emitting && !reads_input && emit == "cos-sin" && !fixed && !t.given("seq-len"))
      throw_usage("--emit cos-sin without INPUT needs --seq-len, --positions or --grid");
    // The input is read from before the output is opened: with stdin closed,
    // the output's temporary file would otherwise take descriptor 0 and be
    // read as the input.
    std::optional<Input> in;
    if (reads_input) {
      in = Input::open(t.input_paths().front());
      in->peek(1);
    }
    Output out = Output::open(t.output_path());
    const Format format = output_format(t.to_format(), t.output_path(), out.is_terminal());

    if (emitting) {
      std::int64_t dim = rotary_dim, seq = seq_len;
      if (reads_input) {
        const Tensor x = read_one_tensor(*in);
        if (x.ndim() < 2) throw_data("the input must be [..., seq, dim], not shape " + shape_str(x.shape()));
        const long long nd = static_cast<long long>(x.ndim());
        const long long sa = seq_axis < 0 ? seq_axis + nd : seq_axis;
        if (sa < 0 || sa >= nd - 1) throw_usage("--seq-axis " + std::to_string(seq_axis) + " is not an axis before the last of " + shape_str(x.shape()));
        dim = x.shape().back();
        if (!t.given("seq-len")) seq = x.dim(static_cast<std::size_t>(sa));
      }
      p.rotary_dim = rotary_for(dim);
      const rope::Rope r(p, positions_for(seq));
      std::vector<NamedTensor> tables;
      if (emit == "inv-freq") {
        const auto& w = r.freqs().inv_freq;
        tables.push_back({"inv_freq", Tensor::from_vector<double>({static_cast<std::int64_t>(w.size())}, w)});
      } else {
        tables.push_back({"cos", r.cos_table()});
        tables.push_back({"sin", r.sin_table()});
      }
      write_tensors(out, format, tables);
      out.commit();
      return;
    }

    // ---- rotate (or reorder) every tensor of the input, one at a time for npy ----
    std::optional<rope::Rope> rope;  // kept while the length and width stay the same
    std::int64_t rope_seq = -1, rope_dim = -1;
    std::vector<NamedTensor> held;
    std::int64_t index = 0;
    for_each_tensor(*in, [&](NamedTensor&& nt) {
      Tensor& x = nt.tensor;
      const std::string where = " (" + (nt.name.empty() ? index ? "tensor " + std::to_string(index) + " of " : ""
                                                        : "tensor " + in_quotes(nt.name) + " of ") +
                                in->name() + ")";
      ++index;
      try {
        if (converting) {
          if (x.ndim() == 0) throw_data("a 0-d tensor has no channels to reorder");
          const std::int64_t n = weights ? x.dim(0) : x.shape().back();
          if (n % heads != 0)
            throw_data("the " + std::to_string(n) + (weights ? " rows" : " channels") + " of " + shape_str(x.shape()) +
                       " do not split into " + std::to_string(heads) + " heads");
          const std::int64_t r = rotary_for(n / heads);
          const bool to_half = convert == "interleaved-to-half";
          x = rope::convert_layout(x, to_half ? rope::Layout::interleaved : rope::Layout::half,
                                   to_half ? rope::Layout::half : rope::Layout::interleaved, r, heads, weights);
        } else {
          if (x.dtype() != DType::f2 && x.dtype() != DType::f4 && x.dtype() != DType::f8)
            throw_data(std::string("rope-embed turns float16, float32 or float64 tensors, not ") +
                       std::string(dtype_name(x.dtype())));
          if (x.ndim() < 2) throw_data("the input must be [..., seq, dim], not shape " + shape_str(x.shape()));
          const long long nd = static_cast<long long>(x.ndim());
          const long long sa = seq_axis < 0 ? seq_axis + nd : seq_axis;
          if (sa < 0 || sa >= nd - 1)
            throw_usage("--seq-axis " + std::to_string(seq_axis) + " is not an axis before the last of " + shape_str(x.shape()));
          const std::int64_t seq = x.dim(static_cast<std::size_t>(sa)), dim = x.shape().back();
          if (!rope || (!fixed && seq != rope_seq) || dim != rope_dim) {
            p.rotary_dim = rotary_for(dim);
            rope.emplace(p, positions_for(seq), inverse);
            rope_seq = seq;
            rope_dim = dim;
          }
          rope->apply(x, x, static_cast<int>(sa));
        }
      } catch (const Error& e) {
        throw Error(e.code(), e.what() + where);
      }
      if (format == Format::npy) {
        npy::write(out, x);
      } else {
        held.push_back(std::move(nt));
      }
    });
    if (format != Format::npy) write_tensors(out, format, held);
    out.commit();
  });
}
