// Text tensors (txt, csv): a hand-written scanner, because the format is tiny
// and must be fast for millions of values and strict about what it accepts.
//
// Reading takes up to two passes: the first assumes integers and stops at the
// first token that is not one; then the text is parsed again directly in the
// float type, so every value is rounded once, straight from its decimal
// (numpy goes through float64 first and can round twice).
#include "nnkit/formats/text.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace nnkit::text {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equals_nocase(const char* b, const char* e, std::string_view word) {
  if (static_cast<std::size_t>(e - b) != word.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i)
    if (lower(b[i]) != word[i]) return false;
  return true;
}

enum class Literal { bad, integer, real };

// The accepted grammar: [+-]digits, [+-]digits.digits[e[+-]digits] (either
// side of the point may be empty, not both), and [+-]nan / inf / infinity in
// any case. Anything else (hex floats, "1,5", "nan(0x1)") is refused.
Literal classify(const char* b, const char* e) {
  const char* p = b;
  if (p < e && (*p == '+' || *p == '-')) ++p;
  if (p == e) return Literal::bad;
  if (!is_digit(*p) && *p != '.')
    return equals_nocase(p, e, "nan") || equals_nocase(p, e, "inf") ||
                   equals_nocase(p, e, "infinity")
               ? Literal::real
               : Literal::bad;
  const char* int_start = p;
  while (p < e && is_digit(*p)) ++p;
  bool digits = p > int_start;
  if (p == e) return Literal::integer;
  if (*p == '.') {
    const char* frac_start = ++p;
    while (p < e && is_digit(*p)) ++p;
    digits = digits || p > frac_start;
  }
  if (!digits) return Literal::bad;
  if (p < e && (*p == 'e' || *p == 'E')) {
    ++p;
    if (p < e && (*p == '+' || *p == '-')) ++p;
    const char* exp_start = p;
    while (p < e && is_digit(*p)) ++p;
    if (p == exp_start) return Literal::bad;
  }
  return p == e ? Literal::real : Literal::bad;
}

// A token quoted for an error message: bounded length, control bytes escaped.
std::string quote(const char* b, const char* e) {
  constexpr std::size_t max_shown = 40;
  std::string s = "'";
  for (const char* p = b; p < e && p < b + max_shown; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c >= 0x20 && c < 0x7f) {
      s += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      s += hex;
    }
  }
  if (e - b > static_cast<std::ptrdiff_t>(max_shown)) s += "...";
  return s + "'";
}

// double -> binary16 rounded once: round to odd into float (24 bits keep more
// than the 11 + 2 that round-to-odd needs), then float -> half to nearest even.
std::uint16_t double_to_half(double d) {
  float f = static_cast<float>(d);
  if (!std::isnan(d) && static_cast<double>(f) != d) {
    if (std::fabs(static_cast<double>(f)) > std::fabs(d)) f = std::nextafter(f, 0.0f);
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    u |= 1;
    std::memcpy(&f, &u, 4);
  }
  return float_to_half(f);
}

// Parses a token already known to be a valid literal. from_chars is correctly
// rounded and locale-independent; strtof/strtod take over only for overflow
// and underflow, where they give numpy's answers (inf, 0 or a subnormal).
template <class F>
F parse_float(const char* b, const char* e) {
  const char* p = (*b == '+') ? b + 1 : b;
  F v{};
  const auto r = std::from_chars(p, e, v);
  if (r.ec == std::errc() && r.ptr == e) return v;
  const std::string copy(b, e);
  if constexpr (std::is_same_v<F, float>)
    return std::strtof(copy.c_str(), nullptr);
  else
    return std::strtod(copy.c_str(), nullptr);
}

// How the values of the file lie: rows x cols, plus a "# shape:" comment.
struct Layout {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::optional<Shape> shape_comment;
};

// "# shape: 2,3,4" (spaces allowed); anything else is an ordinary comment.
std::optional<Shape> parse_shape_comment(const char* p, const char* e) {
  while (p < e && is_space(*p)) ++p;
  constexpr std::string_view key = "shape:";
  if (static_cast<std::size_t>(e - p) < key.size() || std::string_view(p, key.size()) != key)
    return std::nullopt;
  p += key.size();
  Shape shape;
  std::int64_t numel = 1;
  while (true) {
    while (p < e && is_space(*p)) ++p;
    if (p == e) break;
    std::int64_t d = 0;
    const auto r = std::from_chars(p, e, d);
    if (r.ec != std::errc() || d < 0 || __builtin_mul_overflow(numel, d, &numel))
      return std::nullopt;
    shape.push_back(d);
    p = r.ptr;
    while (p < e && is_space(*p)) ++p;
    if (p == e) break;
    if (*p != ',') return std::nullopt;
    ++p;
  }
  return shape;
}

// Walks the text line by line, checks the rectangular layout and calls
// on_token(begin, end, line) for every value; on_token returns false to stop
// early. Returns false when stopped.
template <class OnToken>
bool scan(std::string_view text, const std::string& where, Layout& lay, OnToken&& on_token) {
  lay = Layout{};
  const char* p = text.data();
  const char* const end = p + text.size();
  if (text.substr(0, 3) == "\xEF\xBB\xBF") p += 3;  // UTF-8 byte order mark
  std::int64_t line = 0;
  while (p < end) {
    ++line;
    const char* eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (!eol) eol = end;
    const char* q = p;
    p = eol + 1;
    while (q < eol && is_space(*q)) ++q;
    if (q == eol) continue;
    if (*q == '#') {
      if (!lay.shape_comment) lay.shape_comment = parse_shape_comment(q + 1, eol);
      continue;
    }
    std::int64_t count = 0;
    bool after_comma = false;
    while (true) {
      while (q < eol && is_space(*q)) ++q;
      if (q == eol || *q == '#') {
        if (after_comma)
          throw_data("text: line " + std::to_string(line) + " ends with ',' (a missing value)" +
                     where);
        break;
      }
      if (*q == ',')
        throw_data("text: line " + std::to_string(line) + " has an empty value before ','" + where);
      const char* tok = q;
      while (q < eol && !is_space(*q) && *q != ',' && *q != '#') ++q;
      if (!on_token(tok, q, line)) return false;
      ++count;
      while (q < eol && is_space(*q)) ++q;
      after_comma = q < eol && *q == ',';
      if (after_comma) ++q;
    }
    if (count == 0) continue;  // only a trailing comment
    if (lay.rows == 0) {
      lay.cols = count;
    } else if (count != lay.cols) {
      throw_data("text: line " + std::to_string(line) + " has " + std::to_string(count) +
                 " values, expected " + std::to_string(lay.cols) + where);
    }
    ++lay.rows;
  }
  return true;
}

[[noreturn]] void bad_number(const char* b, const char* e, std::int64_t line,
                             const std::string& where) {
  throw_data("text: line " + std::to_string(line) + ": bad number " + quote(b, e) + where);
}

template <class T>
Tensor to_tensor(DType dtype, const std::vector<T>& values, const Layout& lay) {
  const auto n = static_cast<std::int64_t>(values.size());
  Shape shape;
  if (lay.rows > 1) shape = {lay.rows, lay.cols};
  else if (lay.cols > 1) shape = {lay.cols};
  if (lay.shape_comment) {
    std::int64_t numel = 1;
    for (std::int64_t d : *lay.shape_comment) numel *= d;  // overflow checked when parsed
    if (numel == n) shape = *lay.shape_comment;
  }
  Tensor t(dtype, shape);
  if (n) std::memcpy(t.bytes(), values.data(), values.size() * sizeof(T));
  return t;
}

template <class F, class Convert>
Tensor read_floats(std::string_view text, const std::string& where, DType dtype, Convert convert) {
  Layout lay;
  std::vector<F> values;
  scan(text, where, lay, [&](const char* b, const char* e, std::int64_t line) {
    if (classify(b, e) == Literal::bad) bad_number(b, e, line, where);
    values.push_back(convert(b, e));
    return true;
  });
  return to_tensor(dtype, values, lay);
}

Tensor read_floats(std::string_view text, const std::string& where, DType float_type) {
  switch (float_type) {
    case DType::f4:
      return read_floats<float>(text, where, DType::f4, parse_float<float>);
    case DType::f8:
      return read_floats<double>(text, where, DType::f8, parse_float<double>);
    case DType::f2:
      return read_floats<std::uint16_t>(text, where, DType::f2, [](const char* b, const char* e) {
        return double_to_half(parse_float<double>(b, e));
      });
    default:
      throw_usage("text: values can be read as float16, float32 or float64, not " +
                  std::string(dtype_name(float_type)));
  }
}

// Only reached when some integer exceeds int64 and none is a float: uint64
// then holds them all unless one is negative.
Tensor read_uint64(std::string_view text, const std::string& where) {
  Layout lay;
  std::vector<std::uint64_t> values;
  scan(text, where, lay, [&](const char* b, const char* e, std::int64_t line) {
    if (classify(b, e) != Literal::integer) bad_number(b, e, line, where);
    const char* p = (*b == '+') ? b + 1 : b;
    std::uint64_t v = 0;
    const auto r = std::from_chars(p, e, v);
    if (r.ec != std::errc() || r.ptr != e)
      throw_data("text: line " + std::to_string(line) + ": integer " + quote(b, e) +
                 " does not fit int64 together with the values beyond int64 elsewhere" + where);
    values.push_back(v);
    return true;
  });
  return to_tensor(DType::u8, values, lay);
}

}  // namespace

Tensor read(Input& in, DType float_type) {
  if (!is_float(float_type))
    throw_usage("text: values can be read as float16, float32 or float64, not " +
                std::string(dtype_name(float_type)));
  const std::string text = in.read_all();
  const std::string where = " (" + in.name() + ")";

  // Pass 1: integers, until a token says otherwise.
  Layout lay;
  std::vector<std::int64_t> ints;
  bool beyond_int64 = false;
  std::int64_t overflow_line = 0;
  std::string overflow_token;
  const bool all_ints = scan(text, where, lay, [&](const char* b, const char* e, std::int64_t line) {
    const Literal kind = classify(b, e);
    if (kind == Literal::bad) bad_number(b, e, line, where);
    if (kind == Literal::real) return false;
    const char* p = (*b == '+') ? b + 1 : b;
    std::int64_t v = 0;
    if (std::from_chars(p, e, v).ec != std::errc()) {
      std::uint64_t u = 0;
      if (*p != '-' && std::from_chars(p, e, u).ec == std::errc()) {
        beyond_int64 = true;
      } else if (overflow_line == 0) {
        overflow_line = line;
        overflow_token = quote(b, e);
      }
    }
    ints.push_back(v);
    return true;
  });

  if (!all_ints) {
    ints = {};
    return read_floats(text, where, float_type);
  }
  if (overflow_line)
    throw_data("text: line " + std::to_string(overflow_line) + ": integer " + overflow_token +
               " is out of range for int64 (write it as a float, e.g. with '.0')" + where);
  if (ints.empty()) {
    if (lay.shape_comment) {
      std::int64_t numel = 1;
      for (std::int64_t d : *lay.shape_comment) numel *= d;
      if (numel == 0) return Tensor(float_type, *lay.shape_comment);
    }
    throw_data("text: no numbers found" + where);
  }
  if (beyond_int64) return read_uint64(text, where);
  return to_tensor(DType::i8, ints, lay);
}

namespace {

constexpr int max_precision = 120;

// Float text always reads back as float: "100" becomes "100.0" (as Python's
// repr does), since an all-integer file reads as int64.
char* ensure_float_look(char* b, char* e) {
  for (const char* p = b; p < e; ++p)
    if (*p == '.' || *p == 'e' || *p == 'n') return e;  // 'n': nan, inf
  *e++ = '.';
  *e++ = '0';
  return e;
}

template <class F>
char* format_float(char* b, char* e, F v, int precision) {
  if (std::isnan(v)) {
    std::memcpy(b, "nan", 3);
    return b + 3;
  }
  if (std::isinf(v)) {
    const char* s = v < 0 ? "-inf" : "inf";
    const std::size_t n = std::strlen(s);
    std::memcpy(b, s, n);
    return b + n;
  }
  // Leave room for ensure_float_look's two characters.
  const auto r = precision < 0 ? std::to_chars(b, e - 2, v)
                               : std::to_chars(b, e - 2, v, std::chars_format::general, precision);
  return ensure_float_look(b, r.ptr);
}

// The shortest %g form that reads back (through double_to_half, as read does)
// as the same half; at most 5 digits are ever needed.
char* format_half(char* b, char* e, std::uint16_t h, int precision) {
  const float f = half_to_float(h);
  if (precision >= 0 || std::isnan(f) || std::isinf(f)) return format_float(b, e, f, precision);
  double back = f;
  for (int p = 1; p <= 5; ++p) {
    const char* end = std::to_chars(b, e - 2, f, std::chars_format::general, p).ptr;
    std::from_chars(b, end, back);
    if (double_to_half(back) == h) break;
  }
  // Those few digits, in the shorter of positional and exponent form
  // ("65500" rather than "6.55e+04").
  return ensure_float_look(b, std::to_chars(b, e - 2, back).ptr);
}

template <class T>
char* format_value(char* b, char* e, T v, int precision) {
  if constexpr (std::is_same_v<T, bool>) {
    *b = v ? '1' : '0';
    return b + 1;
  } else if constexpr (std::is_floating_point_v<T>) {
    return format_float(b, e, v, precision);
  } else {
    return std::to_chars(b, e, v).ptr;
  }
}

}  // namespace

void write(Output& out, const Tensor& t, bool csv, int precision) {
  precision = std::min(precision, max_precision);
  const char sep = csv ? ',' : ' ';
  const std::int64_t numel = t.numel();
  const std::int64_t cols = t.ndim() == 0 ? 1 : t.shape().back();
  const std::int64_t rows = cols == 0 ? 0 : numel / cols;

  // What read() would make of rows x cols; when that is not t's shape, a
  // comment records the shape (always for rank > 2 and for empty tensors).
  Shape natural;
  if (rows > 1) natural = {rows, cols};
  else if (cols > 1) natural = {cols};
  const bool need_shape = numel == 0 || natural != t.shape();

  constexpr std::size_t flush_at = 1 << 20;
  std::string buf;
  buf.reserve(flush_at + 4096);
  if (need_shape) {
    buf += "# shape: ";
    for (std::size_t i = 0; i < t.ndim(); ++i) {
      if (i) buf += ',';
      buf += std::to_string(t.dim(i));
    }
    buf += '\n';
  }

  visit_dtype(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    char tmp[max_precision + 40];
    char* const tmp_end = tmp + sizeof tmp;
    if constexpr (std::is_same_v<T, half_bits>) {
      const auto* p = reinterpret_cast<const std::uint16_t*>(t.bytes());
      for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t c = 0; c < cols; ++c) {
          if (c) buf += sep;
          const char* end = format_half(tmp, tmp_end, p[r * cols + c], precision);
          buf.append(tmp, static_cast<std::size_t>(end - tmp));
        }
        buf += '\n';
        if (buf.size() >= flush_at) {
          out.write(buf);
          buf.clear();
        }
      }
    } else {
      // bool is read as bytes: any non-zero byte is true.
      using Stored = std::conditional_t<std::is_same_v<T, bool>, std::uint8_t, T>;
      const auto* p = reinterpret_cast<const Stored*>(t.bytes());
      for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t c = 0; c < cols; ++c) {
          if (c) buf += sep;
          const char* end = format_value<T>(tmp, tmp_end, static_cast<T>(p[r * cols + c]), precision);
          buf.append(tmp, static_cast<std::size_t>(end - tmp));
        }
        buf += '\n';
        if (buf.size() >= flush_at) {
          out.write(buf);
          buf.clear();
        }
      }
    }
  });
  if (!buf.empty()) out.write(buf);
}

}  // namespace nnkit::text
