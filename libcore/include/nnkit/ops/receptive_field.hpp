// Receptive-field arithmetic of convolutional networks (rf-calc).
//
// A network is a DAG of layers described in a small line-based language (see
// parse_network and rf-calc(1)). For every layer and each axis (H and W
// separately) analyze() gives the receptive field r, the effective stride S and
// the effective padding P, relative to the network input: unit u of the layer
// sees input pixels [u*S - P, u*S - P + r - 1]. The numbers are exact rationals
// in 64-bit integers: strides become fractions after transposed convolutions
// and upsampling, and centres are often half-integers. With an input size the
// output sizes follow PyTorch's formulas (ceil mode included), and 'same'
// padding and adaptive pooling are resolved as PyTorch or TensorFlow do.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "nnkit/error.hpp"
#include "nnkit/tensor.hpp"

namespace nnkit::rf {

// A value per axis, in the order [H, W] (rows, then columns).
using Size2 = std::array<std::int64_t, 2>;

// The largest kernel, stride, padding, dilation, factor or input size accepted;
// anything larger is refused as absurd rather than risking overflow later.
inline constexpr std::int64_t max_parameter = 1'000'000'000;

// Thrown by Rational when a result does not fit in 64-bit integers.
struct Overflow : std::overflow_error {
  Overflow() : std::overflow_error("64-bit overflow") {}
};

// An exact fraction num/den in lowest terms with den > 0.
class Rational {
 public:
  Rational(std::int64_t n = 0) : num_(n), den_(1) {}  // NOLINT: integers convert
  Rational(std::int64_t n, std::int64_t d);
  std::int64_t num() const { return num_; }
  std::int64_t den() const { return den_; }
  bool is_integer() const { return den_ == 1; }
  double to_double() const { return static_cast<double>(num_) / static_cast<double>(den_); }
  // "3", "-0.25", "1.5" when the decimal expansion ends, else "1/3".
  std::string str() const;
  // The exact decimal when it is short, else the nearest double in shortest
  // round-trip form (for CSV and other machine-read text).
  std::string decimal() const;

  friend Rational operator+(const Rational& a, const Rational& b);
  friend Rational operator-(const Rational& a, const Rational& b);
  friend Rational operator*(const Rational& a, const Rational& b);
  friend Rational operator/(const Rational& a, const Rational& b);
  friend bool operator==(const Rational& a, const Rational& b) {
    return a.num_ == b.num_ && a.den_ == b.den_;
  }
  friend bool operator!=(const Rational& a, const Rational& b) { return !(a == b); }
  friend bool operator<(const Rational& a, const Rational& b);
  friend bool operator>(const Rational& a, const Rational& b) { return b < a; }

 private:
  std::int64_t num_, den_;
};

enum class Op {
  input,    // the network input (layer 0, never written)
  conv,     // convolution (also depthwise, grouped: channels do not matter)
  maxpool,  // pooling windows: same arithmetic as conv
  avgpool,
  deconv,         // transposed convolution
  upsample,       // nearest or bilinear (align_corners=False), integer factor
  global_pool,    // one output unit that sees the whole input
  adaptive_pool,  // PyTorch's adaptive pooling to a given output size
  pointwise,      // identity, bn, relu, ...: change nothing
  add,            // merges of equally sized inputs
  concat,
};

enum class PadMode { explicit_, same, valid };
enum class Interp { nearest, bilinear };

struct Layer {
  std::string name;
  std::string op_word;  // as written: "relu", "conv", ...
  Op op = Op::pointwise;
  std::int64_t line = 0;            // 1-based line of the description; 0 for the input
  std::vector<std::size_t> inputs;  // indices of earlier layers
  Size2 kernel{1, 1}, stride{1, 1}, dilation{1, 1}, padding{0, 0};
  PadMode pad_mode = PadMode::explicit_;
  bool ceil_mode = false;
  Size2 output_padding{0, 0};  // deconv
  Size2 factor{1, 1};          // upsample
  Interp interp = Interp::nearest;
  Size2 out_size{1, 1};  // adaptive_pool
};

struct Network {
  std::string source;                                  // where the description came from, for messages
  std::vector<Layer> layers;                           // layers[0] is the input; the others in file order
  std::unordered_map<std::string, std::size_t> index;  // name -> position in layers
  // Position of the layer called name, or nullopt.
  std::optional<std::size_t> find(const std::string& name) const;
};

// What kind of failure an AnalysisError is, so that a tool can say which of its
// options would help.
enum class Problem {
  bad_network,       // malformed or impossible description (exit 65)
  misaligned,        // a merge of paths that disagree on stride or centre (65)
  strided_same,      // PyTorch refuses 'same' padding with a stride (65)
  needs_input_size,  // the answer depends on the input size (64)
};

class AnalysisError : public Error {
 public:
  AnalysisError(Problem p, const std::string& what)
      : Error(p == Problem::needs_input_size ? ExitCode::usage : ExitCode::data, what), problem_(p) {}
  Problem problem() const noexcept { return problem_; }

 private:
  Problem problem_;
};

// Parses a description: one layer per line, "NAME: OP key=value ...", '#'
// comments, blank lines ignored. Every mistake is an AnalysisError
// (bad_network) whose message starts with "line N:" and ends with the source.
Network parse_network(std::string_view text, const std::string& source);

// "7" -> {7, 7}, "7x3" -> {7, 3}; nullopt unless both are integers in
// [0, max_parameter] (callers check the lower bound they need).
std::optional<Size2> parse_size(std::string_view s);
// "7" when both are equal, else "7x3".
std::string size_str(const Size2& s);

enum class PaddingConvention { torch, tf };

struct Options {
  std::optional<Size2> input_size;  // [H, W]
  PaddingConvention convention = PaddingConvention::torch;
  bool allow_misaligned = false;  // warn instead of failing at misaligned merges
  // Analyse layers 1..last only, as if the description ended there (default: all).
  std::size_t last = std::numeric_limits<std::size_t>::max();
};

// The receptive field of a layer's units along one axis.
struct AxisField {
  Rational r = 1;  // receptive field, in input pixels
  Rational S = 1;  // effective stride: input pixels between neighbouring units
  Rational P = 0;  // effective padding: unit 0 starts at input pixel -P
  // Centre of unit u in input pixels: u*S - P + (r-1)/2.
  Rational center(std::int64_t u = 0) const;
  // First and last input pixel seen by unit u.
  Rational first(std::int64_t u) const;
  Rational last(std::int64_t u) const;
};

struct Field {
  std::array<AxisField, 2> axis;  // [H, W]
  std::optional<Size2> size;      // output size, when the input size is known
};

struct Analysis {
  std::vector<Field> fields;          // parallel to Network::layers, up to Options::last
  std::vector<std::string> warnings;  // misaligned merges let through
};

// Walks the layers in order. Errors name the layer's line (AnalysisError).
Analysis analyze(const Network& net, const Options& opt);

// The input region of unit (i, j) as a box of inclusive pixel coordinates.
struct Box {
  Rational x1, y1, x2, y2;
};
Box unit_box(const Field& f, std::int64_t i, std::int64_t j);
// The part of the box inside an image of size [H, W] (pixels 0..W-1, 0..H-1);
// a box that misses the image entirely comes out with x1 > x2 or y1 > y2.
Box clip_box(const Box& b, const Size2& image);

// The boxes of all units of a layer whose output size is known, as a float32
// tensor [H*W, 4] of x1, y1, x2, y2, row-major over units; clipped to image
// when given.
Tensor unit_boxes(const Field& f, const std::optional<Size2>& image);

}  // namespace nnkit::rf
