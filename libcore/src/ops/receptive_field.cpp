#include "nnkit/ops/receptive_field.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace nnkit::rf {

// ---------------------------------------------------------------- Rational

namespace {

using i128 = __int128;

i128 gcd128(i128 a, i128 b) {
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b != 0) {
    const i128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// Lowest terms of n/d (d != 0) as a Rational, or Overflow.
Rational reduce(i128 n, i128 d) {
  if (d < 0) n = -n, d = -d;
  const i128 g = gcd128(n, d);
  if (g > 1) n /= g, d /= g;
  constexpr i128 lo = std::numeric_limits<std::int64_t>::min();
  constexpr i128 hi = std::numeric_limits<std::int64_t>::max();
  // -2^63 is refused too, so that negating a value never overflows.
  if (n <= lo || n > hi || d > hi) throw Overflow();
  return Rational(static_cast<std::int64_t>(n), static_cast<std::int64_t>(d));
}

std::int64_t checked_mul(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw Overflow();
  return r;
}
std::int64_t checked_add(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_add_overflow(a, b, &r)) throw Overflow();
  return r;
}

// Floor and ceiling of a / b for b > 0 (C++ division truncates toward zero).
std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - (a % b != 0 && a < 0); }
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return a / b + (a % b != 0 && a > 0); }

}  // namespace

Rational::Rational(std::int64_t n, std::int64_t d) : num_(n), den_(d) {
  if (d == 0) throw std::domain_error("Rational with a zero denominator");
  if (d < 0 || gcd128(n, d) != 1) *this = reduce(n, d);
}

Rational operator+(const Rational& a, const Rational& b) {
  return reduce(static_cast<i128>(a.num_) * b.den_ + static_cast<i128>(b.num_) * a.den_,
                static_cast<i128>(a.den_) * b.den_);
}
Rational operator-(const Rational& a, const Rational& b) {
  return reduce(static_cast<i128>(a.num_) * b.den_ - static_cast<i128>(b.num_) * a.den_,
                static_cast<i128>(a.den_) * b.den_);
}
Rational operator*(const Rational& a, const Rational& b) {
  return reduce(static_cast<i128>(a.num_) * b.num_, static_cast<i128>(a.den_) * b.den_);
}
Rational operator/(const Rational& a, const Rational& b) {
  if (b.num_ == 0) throw std::domain_error("Rational division by zero");
  return reduce(static_cast<i128>(a.num_) * b.den_, static_cast<i128>(a.den_) * b.num_);
}
bool operator<(const Rational& a, const Rational& b) {
  return static_cast<i128>(a.num_) * b.den_ < static_cast<i128>(b.num_) * a.den_;
}

namespace {

// The exact decimal of r when it has at most 18 digits after the point.
std::optional<std::string> exact_decimal(const Rational& r) {
  if (r.is_integer()) return std::to_string(r.num());
  std::int64_t pow10 = 1;
  for (int k = 1; k <= 18; ++k) {
    pow10 *= 10;
    if (pow10 % r.den() != 0) continue;
    const i128 v = static_cast<i128>(r.num()) * (pow10 / r.den());
    const i128 a = v < 0 ? -v : v;
    char frac[32];
    std::snprintf(frac, sizeof frac, "%0*llu", k, static_cast<unsigned long long>(a % pow10));
    return std::string(v < 0 ? "-" : "") + std::to_string(static_cast<unsigned long long>(a / pow10)) + "." +
           frac;
  }
  return std::nullopt;
}

}  // namespace

std::string Rational::str() const {
  if (auto d = exact_decimal(*this)) return *d;
  return std::to_string(num_) + "/" + std::to_string(den_);
}

std::string Rational::decimal() const {
  if (auto d = exact_decimal(*this)) return *d;
  const double v = to_double();
  char buf[40];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

// ---------------------------------------------------------------- parsing

namespace {

constexpr const char* pointwise_ops[] = {
    "identity", "bn",    "relu",      "relu6", "leaky_relu", "prelu",       "elu",  "selu",    "gelu",
    "silu",     "swish", "hardswish", "mish",  "sigmoid",    "hardsigmoid", "tanh", "dropout", "lrn"};

struct OpSpec {
  const char* word;
  Op op;
  std::vector<std::string_view> keys;  // besides from
};

const std::vector<OpSpec>& op_specs() {
  static const std::vector<OpSpec> specs = {
      {"conv", Op::conv, {"k", "s", "p", "d"}},
      {"maxpool", Op::maxpool, {"k", "s", "p", "d", "ceil"}},
      {"avgpool", Op::avgpool, {"k", "s", "p", "d", "ceil"}},
      {"deconv", Op::deconv, {"k", "s", "p", "d", "output_padding"}},
      {"upsample", Op::upsample, {"factor", "mode"}},
      {"global_pool", Op::global_pool, {}},
      {"adaptive_pool", Op::adaptive_pool, {"out"}},
      {"add", Op::add, {}},
      {"concat", Op::concat, {}},
  };
  return specs;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// A token quoted for a message: control bytes escaped, and bounded, since a
// "description" may be any file.
std::string quote(std::string_view s) {
  constexpr std::size_t max_shown = 40;
  return in_quotes(s.substr(0, max_shown)) + (s.size() > max_shown ? "..." : "");
}

bool valid_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-' || c == '/';
    if (!ok) return false;
  }
  return true;
}

enum class IntStatus { ok, malformed, too_large };

IntStatus parse_int(std::string_view s, std::int64_t& out) {
  if (s.empty()) return IntStatus::malformed;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return IntStatus::malformed;
    v = v * 10 + (c - '0');
    if (v > max_parameter) return IntStatus::too_large;
  }
  out = v;
  return IntStatus::ok;
}

// The description's lines, each without its comment.
struct Line {
  std::int64_t number;
  std::string_view text;
};

std::vector<Line> split_lines(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte order mark
  std::vector<Line> lines;
  std::int64_t number = 0;
  while (!text.empty()) {
    ++number;
    const std::size_t eol = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(std::min(eol + 1, text.size()));
    line = trim(line.substr(0, line.find('#')));
    if (!line.empty()) lines.push_back({number, line});
  }
  return lines;
}

class Parser {
 public:
  Parser(std::string_view text, const std::string& source) : lines_(split_lines(text)) {
    net_.source = source;
    Layer input;
    input.name = "input";
    input.op_word = "input";
    input.op = Op::input;
    net_.layers.push_back(std::move(input));
    net_.index.emplace("input", 0);
    // Where every name is defined, so that a reference to a later line can be
    // told apart from a misspelt one.
    for (const Line& l : lines_) {
      const std::size_t colon = l.text.find(':');
      if (colon != std::string_view::npos)
        defined_at_.emplace(std::string(trim(l.text.substr(0, colon))), l.number);
    }
  }

  Network run() {
    for (const Line& l : lines_) parse_line(l);
    if (net_.layers.size() == 1)
      throw AnalysisError(Problem::bad_network, "the description has no layers" + where());
    return std::move(net_);
  }

 private:
  std::vector<Line> lines_;
  Network net_;
  std::unordered_map<std::string, std::int64_t> defined_at_;
  std::int64_t line_ = 0;

  std::string where() const { return net_.source.empty() ? "" : " (" + net_.source + ")"; }
  [[noreturn]] void fail(const std::string& msg) const {
    throw AnalysisError(Problem::bad_network, "line " + std::to_string(line_) + ": " + msg + where());
  }

  // A key's value: one integer for both axes or HxW, at least lo.
  Size2 pair(std::string_view key, std::string_view value, std::int64_t lo) const {
    const std::size_t x = value.find('x');
    const std::string_view parts[2] = {value.substr(0, x),
                                       x == std::string_view::npos ? value : value.substr(x + 1)};
    auto bad = [&](const std::string& why) {
      fail(quote(std::string(key) + "=" + std::string(value)) + why);
    };
    Size2 out{};
    for (int a = 0; a < 2; ++a) {
      if (!parts[a].empty() && parts[a].front() == '-') bad(" must be at least " + std::to_string(lo));
      switch (parse_int(parts[a], out[a])) {
        case IntStatus::malformed:
          bad(" is not an integer or HxW (e.g. 3 or 3x5)");
          break;
        case IntStatus::too_large:
          bad(" is absurdly large (at most " + std::to_string(max_parameter) + ")");
          break;
        case IntStatus::ok:
          break;
      }
      if (out[a] < lo) bad(" must be at least " + std::to_string(lo));
    }
    return out;
  }

  std::size_t resolve(std::string_view name, const std::string& self) const {
    if (name.empty()) fail("from= has an empty name");
    const std::string n(name);
    if (n == self) fail("'" + self + "' takes its own output (a cycle)");
    if (auto i = net_.find(n)) return *i;
    auto later = defined_at_.find(n);
    if (later != defined_at_.end() && later->second > line_)
      fail(quote(n) + " is defined below, at line " + std::to_string(later->second) +
           ": inputs must come from lines above (a cycle or a forward reference)");
    fail("from= names " + quote(n) + ", which is not a layer above (nor 'input')");
  }

  void parse_line(const Line& l) {
    line_ = l.number;
    const std::size_t colon = l.text.find(':');
    if (colon == std::string_view::npos) fail("expected 'NAME: OP key=value ...', got " + quote(l.text));
    const std::string_view name = trim(l.text.substr(0, colon));
    if (!valid_name(name)) fail(quote(name) + " is not a layer name (letters, digits and _ . - / only)");
    Layer layer;
    layer.name = std::string(name);
    layer.line = l.number;
    if (layer.name == "input") fail("'input' is the name of the network input; choose another");
    if (auto i = net_.find(layer.name))
      fail("layer '" + layer.name + "' is already defined at line " + std::to_string(net_.layers[*i].line));

    // Tokens after the colon: the op, then key=value pairs.
    std::vector<std::string_view> tokens;
    std::string_view rest = l.text.substr(colon + 1);
    while (true) {
      rest = trim(rest);
      if (rest.empty()) break;
      std::size_t e = 0;
      while (e < rest.size() && !is_space(rest[e])) ++e;
      tokens.push_back(rest.substr(0, e));
      rest.remove_prefix(e);
    }
    if (tokens.empty()) fail("layer '" + layer.name + "' has no op (expected 'NAME: OP key=value ...')");
    layer.op_word = std::string(tokens.front());
    const OpSpec* spec = nullptr;
    for (const OpSpec& s : op_specs())
      if (layer.op_word == s.word) spec = &s;
    static const OpSpec pointwise{"", Op::pointwise, {}};
    for (const char* w : pointwise_ops)
      if (layer.op_word == w) spec = &pointwise;
    if (!spec)
      fail("unknown op " + quote(layer.op_word) +
           " (conv, maxpool, avgpool, deconv, upsample, global_pool, adaptive_pool, add, concat, "
           "identity or a point-wise op such as bn or relu)");
    layer.op = spec->op;

    // A handful of keys per line: a flat list beats a map.
    std::vector<std::pair<std::string_view, std::string_view>> given;
    for (std::size_t t = 1; t < tokens.size(); ++t) {
      const std::size_t eq = tokens[t].find('=');
      if (eq == std::string_view::npos || eq == 0) fail("expected key=value, got " + quote(tokens[t]));
      const std::string_view key = tokens[t].substr(0, eq), value = tokens[t].substr(eq + 1);
      const bool known =
          key == "from" || std::find(spec->keys.begin(), spec->keys.end(), key) != spec->keys.end();
      if (!known) {
        std::string list;
        for (const auto& k : spec->keys) list += std::string(k) + ", ";
        fail("unknown key " + quote(key) + " for " + layer.op_word + " (it takes " + list + "from)");
      }
      if (value.empty()) fail(std::string(key) + "= has no value");
      for (const auto& kv : given)
        if (kv.first == key) fail(std::string(key) + "= is given twice");
      given.emplace_back(key, value);
    }
    auto value_of = [&](std::string_view k) {
      for (const auto& kv : given)
        if (kv.first == k) return kv.second;
      return std::string_view();
    };
    auto has = [&](std::string_view k) { return !value_of(k).empty(); };

    const bool windowed =
        layer.op == Op::conv || layer.op == Op::maxpool || layer.op == Op::avgpool || layer.op == Op::deconv;
    const bool pool = layer.op == Op::maxpool || layer.op == Op::avgpool;
    if (windowed) {
      if (!has("k")) fail(layer.op_word + " needs a kernel size k=");
      layer.kernel = pair("k", value_of("k"), 1);
      // Pooling strides default to the kernel size, as in PyTorch and Keras.
      layer.stride = has("s") ? pair("s", value_of("s"), 1) : pool ? layer.kernel : Size2{1, 1};
      if (has("d")) layer.dilation = pair("d", value_of("d"), 1);
      if (has("p")) {
        const std::string_view p = value_of("p");
        if (p == "same") {
          layer.pad_mode = PadMode::same;
        } else if (p == "valid") {
          layer.pad_mode = PadMode::valid;
        } else {
          if (p.find_first_not_of("0123456789x-") != std::string_view::npos)
            fail(quote("p=" + std::string(p)) + " is not an integer, HxW, same or valid");
          layer.padding = pair("p", p, 0);
        }
      }
      if (layer.op == Op::deconv && layer.pad_mode == PadMode::same)
        fail("deconv takes an explicit p= (no 'same')");
    }
    if (has("ceil")) {
      const std::string_view c = value_of("ceil");
      if (c != "0" && c != "1") fail(quote("ceil=" + std::string(c)) + " must be 0 or 1");
      layer.ceil_mode = c == "1";
      if (layer.ceil_mode && layer.pad_mode == PadMode::same)
        fail("ceil=1 goes with explicit padding, not p=same");
    }
    if (layer.op == Op::deconv && has("output_padding")) {
      layer.output_padding = pair("output_padding", value_of("output_padding"), 0);
      for (int a = 0; a < 2; ++a)
        if (layer.output_padding[a] >= std::max(layer.stride[a], layer.dilation[a]))
          fail("output_padding must be smaller than the stride or the dilation (PyTorch's rule)");
    }
    if (layer.op == Op::upsample) {
      if (!has("factor")) fail("upsample needs an integer factor=");
      layer.factor = pair("factor", value_of("factor"), 1);
      if (has("mode")) {
        const std::string_view m = value_of("mode");
        if (m == "bilinear")
          layer.interp = Interp::bilinear;
        else if (m != "nearest")
          fail(quote("mode=" + std::string(m)) + " must be nearest or bilinear");
      }
    }
    if (layer.op == Op::adaptive_pool) {
      if (!has("out")) fail("adaptive_pool needs its output size out=");
      layer.out_size = pair("out", value_of("out"), 1);
    }

    // Inputs: from=, else the layer above.
    const bool merge = layer.op == Op::add || layer.op == Op::concat;
    if (has("from")) {
      std::string_view list = value_of("from");
      while (true) {
        const std::size_t comma = list.find(',');
        layer.inputs.push_back(resolve(list.substr(0, comma), layer.name));
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    } else if (!merge) {
      layer.inputs.push_back(net_.layers.size() - 1);
    }
    if (merge && layer.inputs.size() < 2) fail(layer.op_word + " needs at least two inputs: from=a,b");
    if (!merge && layer.inputs.size() != 1)
      fail(layer.op_word + " takes one input; from= names " + std::to_string(layer.inputs.size()));

    net_.index.emplace(layer.name, net_.layers.size());
    net_.layers.push_back(std::move(layer));
  }
};

}  // namespace

std::optional<std::size_t> Network::find(const std::string& name) const {
  auto it = index.find(name);
  if (it == index.end()) return std::nullopt;
  return it->second;
}

Network parse_network(std::string_view text, const std::string& source) { return Parser(text, source).run(); }

std::optional<Size2> parse_size(std::string_view s) {
  const std::size_t x = s.find('x');
  Size2 out{};
  if (parse_int(s.substr(0, x), out[0]) != IntStatus::ok) return std::nullopt;
  if (x == std::string_view::npos) return Size2{out[0], out[0]};
  if (parse_int(s.substr(x + 1), out[1]) != IntStatus::ok) return std::nullopt;
  return out;
}

std::string size_str(const Size2& s) {
  return s[0] == s[1] ? std::to_string(s[0]) : std::to_string(s[0]) + "x" + std::to_string(s[1]);
}

// ---------------------------------------------------------------- analysis

Rational AxisField::center(std::int64_t u) const { return first(u) + (r - 1) / 2; }
Rational AxisField::first(std::int64_t u) const { return Rational(u) * S - P; }
Rational AxisField::last(std::int64_t u) const { return first(u) + r - 1; }

namespace {

const char* axis_name(int a) { return a == 0 ? "H" : "W"; }

// "1.5" when both axes agree, else "1.5x2".
std::string pair_str(const Rational& h, const Rational& w) {
  return h == w ? h.str() : h.str() + "x" + w.str();
}

class Analyzer {
 public:
  Analyzer(const Network& net, const Options& opt) : net_(net), opt_(opt) {}

  Analysis run() {
    if (opt_.input_size)
      for (std::int64_t n : *opt_.input_size)
        if (n < 1 || n > max_parameter)
          throw AnalysisError(Problem::needs_input_size,
                              "the input size must be between 1 and " + std::to_string(max_parameter));
    const std::size_t end = std::min(opt_.last, net_.layers.size() - 1) + 1;
    out_.fields.reserve(end);
    Field input;
    input.size = opt_.input_size;
    out_.fields.push_back(input);
    for (std::size_t i = 1; i < end; ++i) {
      layer_ = &net_.layers[i];
      try {
        out_.fields.push_back(step(*layer_));
      } catch (const Overflow&) {
        fail("the arithmetic of '" + layer_->name +
             "' overflows 64-bit integers (absurd sizes, or too many strides or upsamplings)");
      }
    }
    return std::move(out_);
  }

 private:
  const Network& net_;
  const Options& opt_;
  Analysis out_;
  const Layer* layer_ = nullptr;

  std::string where() const { return net_.source.empty() ? "" : " (" + net_.source + ")"; }
  std::string at() const { return "line " + std::to_string(layer_->line) + ": "; }
  [[noreturn]] void fail(const std::string& msg, Problem p = Problem::bad_network) const {
    throw AnalysisError(p, at() + msg + where());
  }
  const Field& in(std::size_t k = 0) const { return out_.fields[layer_->inputs[k]]; }
  const std::string& in_name(std::size_t k) const { return net_.layers[layer_->inputs[k]].name; }

  // The size of the layer's input along axis a, for layers that cannot do without it.
  std::int64_t need_size(int a, const std::string& why) const {
    if (!in().size) fail(why + " needs the input size", Problem::needs_input_size);
    return (*in().size)[a];
  }

  Field step(const Layer& l) {
    switch (l.op) {
      case Op::conv:
      case Op::maxpool:
      case Op::avgpool:
        return window(l);
      case Op::deconv:
        return deconv(l);
      case Op::upsample:
        return upsample(in(), l.factor, l.interp);
      case Op::global_pool:
        return global(Size2{1, 1});
      case Op::adaptive_pool:
        return global(l.out_size);
      case Op::add:
      case Op::concat:
        return merge(l);
      case Op::pointwise:
      case Op::input:
        break;
    }
    return in();
  }

  // Padding before and after along axis a, resolved for 'same' and 'valid'.
  std::pair<std::int64_t, std::int64_t> pads(const Layer& l, int a, std::int64_t span) const {
    if (l.pad_mode == PadMode::valid) return {0, 0};
    if (l.pad_mode == PadMode::explicit_) return {l.padding[a], l.padding[a]};
    const std::int64_t s = l.stride[a];
    std::int64_t total = span - 1;  // stride 1: the output keeps the input size
    if (s != 1) {
      if (opt_.convention == PaddingConvention::torch)
        fail(
            "p=same with stride " + std::to_string(s) + ": PyTorch refuses 'same' padding for strided layers",
            Problem::strided_same);
      // TensorFlow: out = ceil(n/s), the padding that needs, more of it after.
      const std::int64_t n = need_size(a, "p=same with stride " + std::to_string(s) + " (TensorFlow's rule)");
      const std::int64_t out = ceil_div(n, s);
      total = std::max<std::int64_t>(checked_add(checked_mul(out - 1, s), span) - n, 0);
    }
    return {total / 2, total - total / 2};
  }

  // Convolution and pooling: a window of span d(k-1)+1 every s inputs.
  Field window(const Layer& l) {
    Field f;
    const Field& src = in();
    if (src.size) f.size = Size2{};
    for (int a = 0; a < 2; ++a) {
      const AxisField& x = src.axis[a];
      const std::int64_t s = l.stride[a];
      const std::int64_t span = checked_add(checked_mul(l.dilation[a], l.kernel[a] - 1), 1);
      const auto [lo, hi] = pads(l, a, span);
      f.axis[a] = {x.r + x.S * (span - 1), x.S * s, x.P + x.S * lo};
      if (!src.size) continue;
      const std::int64_t n = (*src.size)[a];
      const std::int64_t padded = checked_add(checked_add(n, lo), hi);
      const std::int64_t room = padded - span;
      if (room < 0)
        fail("the window of '" + l.name + "' (" + std::to_string(span) + " along " + axis_name(a) +
             ") is larger than its padded input (" + std::to_string(padded) + ")");
      // PyTorch: floor((n + 2p - d(k-1) - 1)/s) + 1; in ceil mode the ceiling,
      // less a last window that would start in the right padding.
      std::int64_t out = (l.ceil_mode ? ceil_div(room, s) : floor_div(room, s)) + 1;
      if (l.ceil_mode && (out - 1) * s >= n + lo) --out;
      (*f.size)[a] = out;
    }
    return f;
  }

  // Transposed convolution: input i feeds outputs i*s - p + j*d (j < k), so
  // output o reads the inputs in [(o + p - d(k-1))/s, (o + p)/s]: a window of
  // span d(k-1)/s at stride 1/s, which starts (d(k-1) - p)/s before o/s.
  Field deconv(const Layer& l) {
    Field f;
    const Field& src = in();
    if (src.size) f.size = Size2{};
    for (int a = 0; a < 2; ++a) {
      const AxisField& x = src.axis[a];
      const std::int64_t s = l.stride[a];
      const std::int64_t reach = checked_mul(l.dilation[a], l.kernel[a] - 1);
      f.axis[a] = {x.r + x.S * Rational(reach, s), x.S / s, x.P + x.S * Rational(reach - l.padding[a], s)};
      if (!src.size) continue;
      // PyTorch: (n - 1)s - 2p + d(k-1) + output_padding + 1.
      const std::int64_t n = (*src.size)[a];
      const std::int64_t out =
          checked_add(checked_mul(n - 1, s), reach + l.output_padding[a] + 1 - 2 * l.padding[a]);
      if (out < 1)
        fail("'" + l.name + "' would have an empty output along " + axis_name(a) + " (" +
             std::to_string(out) + ")");
      (*f.size)[a] = out;
    }
    return f;
  }

  // Upsampling by f: output j samples the input at c = (j + 1/2)/f - 1/2
  // (PyTorch, align_corners=False). Nearest reads pixel floor(j/f), the one
  // integer in [c - (f-1)/(2f), c + (f-1)/(2f)]; bilinear reads the pixels
  // strictly inside (c - 1, c + 1), reported as that closed interval.
  Field upsample(const Field& src, const Size2& factor, Interp interp) {
    Field f;
    if (src.size) f.size = Size2{};
    for (int a = 0; a < 2; ++a) {
      const AxisField& x = src.axis[a];
      const std::int64_t k = factor[a];
      const Rational half_width = interp == Interp::nearest ? Rational(k - 1, 2 * k) : Rational(1);
      const Rational offset = Rational(k - 1, 2 * k);  // c = j/f - offset
      f.axis[a] = {x.r + x.S * (half_width * 2), x.S / k, x.P + x.S * (offset + half_width)};
      if (src.size) (*f.size)[a] = checked_mul((*src.size)[a], k);
    }
    return f;
  }

  // PyTorch's adaptive pooling from n to m: window i is [floor(i n/m),
  // ceil((i+1) n/m)). When m divides n that is a pool with k = s = n/m; when n
  // divides m, every window is one pixel, as nearest upsampling by m/n. Other
  // sizes give windows of unequal length and spacing, which no (r, S, P) holds.
  Field global(const Size2& m) {
    Field f;
    const Field& src = in();
    const std::string what = layer_->op_word;
    const Size2 n{need_size(0, what), need_size(1, what)};
    Size2 up{1, 1};
    for (int a = 0; a < 2; ++a) {
      if (n[a] % m[a] == 0) {
        const std::int64_t k = n[a] / m[a];
        const AxisField& x = src.axis[a];
        f.axis[a] = {x.r + x.S * (k - 1), x.S * k, x.P};
      } else if (m[a] % n[a] == 0) {
        up[a] = m[a] / n[a];
      } else {
        fail(what + " from " + std::to_string(n[a]) + " to " + std::to_string(m[a]) + " along " +
             axis_name(a) +
             " has windows of unequal size and spacing; only output sizes that divide the input "
             "size, or that it divides, have one receptive field");
      }
    }
    const Field u = upsample(src, up, Interp::nearest);
    for (int a = 0; a < 2; ++a)
      if (up[a] != 1) f.axis[a] = u.axis[a];
    f.size = m;
    return f;
  }

  // Merges: equal sizes, and paths that agree on stride and centre (else the
  // network is misaligned). The result covers every path.
  Field merge(const Layer& l) {
    const Field& first = in(0);
    for (std::size_t k = 1; k < l.inputs.size(); ++k) {
      const Field& other = in(k);
      if (first.size && other.size && *first.size != *other.size)
        fail("'" + l.name + "' " + (l.op == Op::add ? "adds" : "concatenates") +
             " inputs of different sizes: '" + in_name(0) + "' is " + size_str(*first.size) + " and '" +
             in_name(k) + "' is " + size_str(*other.size));
      bool aligned = true;
      for (int a = 0; a < 2; ++a)
        aligned =
            aligned && first.axis[a].S == other.axis[a].S && first.axis[a].center() == other.axis[a].center();
      if (aligned) continue;
      auto describe = [&](const Field& f, std::size_t i) {
        return "'" + in_name(i) + "' has stride " + pair_str(f.axis[0].S, f.axis[1].S) + " and centre " +
               pair_str(f.axis[0].center(), f.axis[1].center());
      };
      const std::string msg = "'" + l.name + "' merges paths that are not aligned: " + describe(first, 0) +
                              ", " + describe(other, k);
      if (!opt_.allow_misaligned) fail(msg, Problem::misaligned);
      out_.warnings.push_back(at() + msg + where());
    }
    Field f;
    f.size = first.size;
    for (int a = 0; a < 2; ++a) {
      bool same_stride = true;
      std::size_t widest = 0;
      for (std::size_t k = 0; k < l.inputs.size(); ++k) {
        same_stride = same_stride && in(k).axis[a].S == first.axis[a].S;
        if (in(k).axis[a].r > in(widest).axis[a].r) widest = k;
      }
      if (!same_stride) {  // only with allow_misaligned: keep the widest path
        f.axis[a] = in(widest).axis[a];
        continue;
      }
      // The hull of all paths' regions: the earliest start, the latest end.
      Rational P = first.axis[a].P, end = first.axis[a].r - 1 - first.axis[a].P;
      for (std::size_t k = 1; k < l.inputs.size(); ++k) {
        const AxisField& x = in(k).axis[a];
        P = std::max(P, x.P);
        end = std::max(end, x.r - 1 - x.P);
      }
      f.axis[a] = {end + P + 1, first.axis[a].S, P};
    }
    return f;
  }
};

}  // namespace

Analysis analyze(const Network& net, const Options& opt) { return Analyzer(net, opt).run(); }

// ---------------------------------------------------------------- boxes

Box unit_box(const Field& f, std::int64_t i, std::int64_t j) {
  const AxisField& h = f.axis[0];
  const AxisField& w = f.axis[1];
  return {w.first(j), h.first(i), w.last(j), h.last(i)};
}

Box clip_box(const Box& b, const Size2& image) {
  const Rational zero = 0, right = image[1] - 1, bottom = image[0] - 1;
  return {std::max(b.x1, zero), std::max(b.y1, zero), std::min(b.x2, right), std::min(b.y2, bottom)};
}

Tensor unit_boxes(const Field& f, const std::optional<Size2>& image) {
  if (!f.size) throw_internal("unit_boxes: the output size is not known");
  const auto [H, W] = *f.size;
  // The boxes are separable: rows give y1, y2 and columns x1, x2.
  std::vector<float> y1(static_cast<std::size_t>(H)), y2(y1.size());
  std::vector<float> x1(static_cast<std::size_t>(W)), x2(x1.size());
  auto to_float = [](const Rational& v) { return static_cast<float>(v.to_double()); };
  for (std::int64_t i = 0; i < H; ++i) {
    const Box b = image ? clip_box(unit_box(f, i, 0), *image) : unit_box(f, i, 0);
    y1[i] = to_float(b.y1), y2[i] = to_float(b.y2);
  }
  for (std::int64_t j = 0; j < W; ++j) {
    const Box b = image ? clip_box(unit_box(f, 0, j), *image) : unit_box(f, 0, j);
    x1[j] = to_float(b.x1), x2[j] = to_float(b.x2);
  }
  Tensor t = Tensor::uninitialized(DType::f4, {checked_numel({H, W}), 4});
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < H; ++i)
    for (std::int64_t j = 0; j < W; ++j, p += 4) {
      p[0] = x1[j];
      p[1] = y1[i];
      p[2] = x2[j];
      p[3] = y2[i];
    }
  return t;
}

}  // namespace nnkit::rf
