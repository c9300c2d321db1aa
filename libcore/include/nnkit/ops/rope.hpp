// Rotary position embeddings (rope-embed).
//
// A token at position p has the pairs (u, v) of its first R channels (the
// rotary dimension) rotated by the angle p * w_j of the pair's frequency j:
//
//   u' = a (u cos - v sin),   v' = a (v cos + u sin),   0 <= j < R/2,
//
// where a is the attention factor of the scaling (1 unless YaRN or LongRoPE
// says otherwise) and w_j = base^(-2j/R) before scaling. Which channels form
// a pair is the layout:
//
//   half         pairs (j, j + R/2): rotate_half of GPT-NeoX and Hugging Face
//   interleaved  pairs (2j, 2j + 1): RoFormer, GPT-J, Meta's reference llama
//
// The inverse frequencies of every scaling type follow Hugging Face
// transformers' modeling_rope_utils (4.57; see rope-embed(1) for the YaRN
// history) but are evaluated in double precision, and so are the angles and
// their cosines and sines, which are rounded to float32 once at the end.
// transformers computes them in float32, where p * w_j alone carries an error
// of up to 2^-24 * p * w_j radians (0.006 rad at p = 10^5): these tables are
// as accurate as float32 can hold at every position below 2^53.
//
// Several position axes (images, video): with axes = A the R rotary channels
// are split into A equal parts, part a turning with the token's position
// along axis a and having its own frequencies base^(-2j/(R/A)) (EVA-02); or,
// with an mrope section [s_0, s_1, ...] summing to R/2, frequency j keeps its
// one-axis value and turns with the position along the axis whose section
// holds j (Qwen2-VL's multimodal RoPE).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nnkit/tensor.hpp"

namespace nnkit::rope {

enum class Layout { half, interleaved };
enum class Scaling { none, linear, dynamic, yarn, llama3, longrope };

// "half" / "interleaved" and back; usage error for other words.
Layout parse_layout(const std::string& s);
const char* layout_name(Layout l);
Scaling parse_scaling(const std::string& s);
const char* scaling_name(Scaling s);
// "16x24x24" (sep 'x', --grid) or "16,24,24" (--mrope-section): integers from
// 0 (1 when positive) to 2^40, separated by sep or commas; a usage error
// naming the option otherwise.
std::vector<std::int64_t> parse_int_list(const std::string& s, const char* option, char sep, bool positive);

// What transformers keeps in rope_theta, partial_rotary_factor and
// rope_scaling. Fields that a scaling type does not read are ignored here;
// the tool refuses them on its command line.
struct Params {
  double base = 10000;            // rope_theta
  std::int64_t rotary_dim = 0;    // R: even and positive
  Layout layout = Layout::half;
  Scaling scaling = Scaling::none;
  double factor = 1;                   // linear, dynamic, yarn, llama3, longrope
  std::int64_t original_max_pos = 0;   // dynamic, yarn, llama3, longrope
  double beta_fast = 32, beta_slow = 1;  // yarn
  double mscale = 0, mscale_all_dim = 0;  // yarn; 0 is "not set"
  bool truncate = true;                   // yarn: integer correction range
  double low_freq_factor = 1, high_freq_factor = 4;  // llama3
  std::vector<double> short_factor, long_factor;     // longrope, R/2 each
  std::optional<double> attention_factor;            // yarn, longrope
  int axes = 1;                          // position axes (1: text)
  std::vector<std::int64_t> mrope_section;  // Qwen2-VL; empty: channel split
};

// Usage error (64) naming the first parameter that is out of range.
void validate(const Params& p);

struct Frequencies {
  // R/2 angular frequencies (radians per position step); with axes > 1 and
  // no mrope section, the parts' frequencies one after the other.
  std::vector<double> inv_freq;
  double attention_factor = 1;
};
// seq_len is the largest position + 1, which dynamic NTK and LongRoPE read
// (transformers' seq_len at the forward pass); the others ignore it.
Frequencies frequencies(const Params& p, std::int64_t seq_len);

// The positions of the tokens: for each of `axes` axes, one value per slot,
// the slots laid out in `shape` (broadcast against the tensor, see Rope::apply).
struct Positions {
  int axes = 1;
  Shape shape;                         // e.g. [seq]
  std::vector<std::int64_t> values;    // [axes][numel(shape)]
  std::int64_t slots() const;
  std::int64_t max_value() const;      // over every axis; -1 when empty
};
// offset, offset + 1, ..., offset + seq - 1.
Positions sequence_positions(std::int64_t seq, std::int64_t offset);
// Row-major tokens of a grid (HxW or TxHxW): the token's index along each axis, plus offset.
Positions grid_positions(const std::vector<std::int64_t>& grid, std::int64_t offset);
// From an integer tensor: [..., seq] for one axis, [axes, ..., seq] for more; plus offset.
// Data error for other dtypes or a missing axes dimension.
Positions tensor_positions(const Tensor& t, int axes, std::int64_t offset);

class Rope {
 public:
  // Computes the frequencies and the cos/sin table of every slot once.
  // inverse: the opposite rotation, divided by the attention factor.
  Rope(const Params& p, Positions positions, bool inverse = false);

  const Params& params() const { return p_; }
  const Frequencies& freqs() const { return f_; }
  const Positions& positions() const { return pos_; }

  // Rotates x ([..., dim], float16/32/64, computed in float32) into out (the
  // same shape and dtype; may be x itself). The sequence axis (not the last)
  // holds the tokens: one-axis positions of shape [seq] line up with it, and
  // positions of higher rank broadcast (numpy rules) against x's shape
  // without its last axis. The first R channels turn, the rest pass through.
  void apply(const Tensor& x, Tensor& out, int seq_axis = -2) const;
  Tensor apply(const Tensor& x, int seq_axis = -2) const;

  // The tables as transformers feeds them to apply_rotary_pos_emb: float32,
  // [positions.shape..., R], attention factor included, in the layout's
  // channel order (half: cat(c, c) per part; interleaved: c0 c0 c1 c1 ...).
  Tensor cos_table() const;
  Tensor sin_table() const;

 private:
  Params p_;
  Frequencies f_;
  Positions pos_;
  std::int64_t half_ = 0;
  std::vector<float> cos_, sin_;  // [slots][R/2]
  Tensor table(const std::vector<float>& t) const;
};

// The layout permutation of checkpoints: within each of `heads` blocks of the
// axis (the last axis, or the first, i.e. the rows of a Q/K weight or bias,
// with weights = true), the first R channels (R = rotary_dim, 0: the whole
// block) are reordered from one layout to the other; the rest stay. Any
// dtype. interleaved-to-half is the permute() of transformers' llama
// conversion script. Usage/data errors when the axis does not divide.
Tensor convert_layout(const Tensor& t, Layout from, Layout to, std::int64_t rotary_dim,
                      std::int64_t heads, bool weights);

}  // namespace nnkit::rope
