#include "nnkit/formats/npy.hpp"
#include "nnkit/memory_limit.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <new>

namespace nnkit::npy {

namespace {

// A small parser for the Python dict literal of a .npy header:
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  explicit HeaderParser(const std::string& s) : s_(s) {}

  Header parse() {
    Header h;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    for (;;) {
      skip_ws();
      if (peek() == '}') break;
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        skip_ws();
        if (peek() != '\'' && peek() != '"')
          fail("unsupported dtype (structured arrays are not supported)");
        descr(string_literal(), h);
        have_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = boolean();
        have_order = true;
      } else if (key == "shape") {
        h.shape = tuple();
        have_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip_ws();
      if (peek() != '}') fail("expected ',' or '}'");
    }
    ++pos_;
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the dict");
    if (!have_descr || !have_order || !have_shape)
      fail("missing key " + std::string(!have_descr ? "'descr'" : !have_order ? "'fortran_order'" : "'shape'"));
    return h;
  }

 private:
  const std::string& s_;
  std::size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& why) const {
    std::string excerpt = s_.substr(0, 80);
    for (char& c : excerpt)
      if (!std::isprint(static_cast<unsigned char>(c))) c = '?';
    throw_data("bad .npy header: " + why + " in \"" + excerpt + (s_.size() > 80 ? "...\"" : "\""));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void expect(char c) {
    skip_ws();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string string_literal() {
    skip_ws();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    const std::size_t end = s_.find(q, pos_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_ws();
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  Shape tuple() {
    expect('(');
    Shape shape;
    for (;;) {
      skip_ws();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("bad dimension in shape");
      std::int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, peek() - '0', &v))
          fail("dimension too large");
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 longs
      shape.push_back(v);
      if (shape.size() > max_rank) fail("more than " + std::to_string(max_rank) + " dimensions");
      skip_ws();
      if (peek() == ',') ++pos_;
      else if (peek() != ')') fail("expected ',' or ')' in shape");
    }
    ++pos_;
    return shape;
  }
  void descr(const std::string& d, Header& h) {
    if (d.size() < 2) fail("bad dtype '" + d + "'");
    const char order = d[0];
    if (order != '<' && order != '>' && order != '|' && order != '=')
      fail("bad byte order in dtype '" + d + "'");
    const auto t = parse_dtype(d.substr(1));
    if (!t || d.substr(1) != dtype_code(*t))
      fail("unsupported dtype '" + d + "' (nnkit reads b1 i1 u1 i2 u2 i4 u4 i8 u8 f2 f4 f8)");
    h.dtype = *t;
    h.big_endian = order == '>' && dtype_size(*t) > 1;
  }
};

void byteswap(std::byte* p, std::int64_t n, std::size_t size) {
  for (std::int64_t i = 0; i < n; ++i, p += size) std::reverse(p, p + size);
}

// Fortran order holds the C-order data of the reversed shape; copy it into C order.
void fortran_to_c(const std::byte* src, std::byte* dst, const Shape& shape, std::size_t size) {
  const std::size_t rank = shape.size();
  std::vector<std::int64_t> fstride(rank), idx(rank, 0);
  std::int64_t s = 1;
  for (std::size_t a = 0; a < rank; ++a) {
    fstride[a] = s;
    s *= shape[a];
  }
  const std::int64_t n = checked_numel(shape);
  std::int64_t off = 0;  // source element offset of idx
  for (std::int64_t i = 0; i < n; ++i) {
    std::memcpy(dst + i * size, src + off * size, size);
    for (std::size_t a = rank; a-- > 0;) {  // odometer over C order
      if (++idx[a] < shape[a]) {
        off += fstride[a];
        break;
      }
      off -= fstride[a] * (shape[a] - 1);
      idx[a] = 0;
    }
  }
}

std::uint32_t le(const unsigned char* p, int n) {
  std::uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

Header parse_header_text(const std::string& text) { return HeaderParser(text).parse(); }

std::string format_header_text(const Header& h) {
  std::string shape = "(";
  for (std::size_t i = 0; i < h.shape.size(); ++i) {
    if (i) shape += ", ";
    shape += std::to_string(h.shape[i]);
  }
  if (h.shape.size() == 1) shape += ",";
  shape += ")";
  const char order = dtype_size(h.dtype) == 1 ? '|' : (h.big_endian ? '>' : '<');
  return "{'descr': '" + std::string(1, order) + std::string(dtype_code(h.dtype)) +
         "', 'fortran_order': " + (h.fortran_order ? "True" : "False") + ", 'shape': " + shape +
         ", }";
}

namespace {

// The header of the next array, checked; `at` names the array in messages.
struct ArrayHeader {
  Header h;
  std::int64_t nbytes = 0;
  std::string at;
};

ArrayHeader read_array_header(Input& in) {
  ArrayHeader a;
  const std::uint64_t start = in.offset();
  // Messages name the array by where it starts, which matters in long streams.
  a.at = " of the array at byte " + std::to_string(start);
  const std::string& at = a.at;
  unsigned char pre[8];
  in.read_exact(pre, 8, ".npy magic and version" + at);
  if (std::memcmp(pre, magic, magic_size) != 0)
    throw_data("not a .npy array: bad magic at byte " + std::to_string(start) + " (" + in.name() + ")");
  const int major = pre[6];
  if (major < 1 || major > 3)
    throw_data("unsupported .npy version " + std::to_string(major) + "." + std::to_string(pre[7]) +
               at + " (" + in.name() + ")");
  const int len_bytes = major == 1 ? 2 : 4;
  unsigned char lenbuf[4];
  in.read_exact(lenbuf, len_bytes, ".npy header length" + at);
  const std::uint32_t header_len = le(lenbuf, len_bytes);
  if (header_len > max_header_bytes)
    throw_data(".npy header" + at + " claims " + std::to_string(header_len) +
               " bytes, more than the " + std::to_string(max_header_bytes) + "-byte limit (" +
               in.name() + ")");
  std::string text(header_len, '\0');
  in.read_exact(text.data(), header_len, ".npy header" + at);
  try {
    a.h = parse_header_text(text);
  } catch (const Error& e) {
    throw_data(std::string(e.what()) + " at byte " + std::to_string(start) + " (" + in.name() + ")");
  }
  try {
    a.nbytes = checked_nbytes(a.h.shape, a.h.dtype);
  } catch (const Error& e) {
    throw_data(std::string(e.what()) + at + " (" + in.name() + ")");
  }
  const std::int64_t left = in.remaining_hint();
  if (left >= 0 && a.nbytes > left)
    throw_data("truncated input: .npy header" + at + " claims " + std::to_string(a.nbytes) +
               " bytes of data for " + std::string(dtype_name(a.h.dtype)) + " " +
               shape_str(a.h.shape) + " but only " + std::to_string(left) + " remain (" +
               in.name() + ")");
  return a;
}

// Brings raw data to nnkit's in-memory form: native byte order, bools 0/1
// (anything else in a C++ bool is undefined behaviour).
void normalise(std::byte* p, std::int64_t n, const Header& h) {
  if (h.big_endian) byteswap(p, n, dtype_size(h.dtype));
  if (h.dtype == DType::b1) {
    auto* b = reinterpret_cast<unsigned char*>(p);
    for (std::int64_t i = 0; i < n; ++i) b[i] = b[i] != 0;
  }
}


}  // namespace

namespace {

// Reads the data of an array whose size the input cannot vouch for (a pipe):
// a large claim is only believed as its bytes arrive, chunk by chunk, so a
// lying header costs one chunk of memory, never the claimed amount.
void read_unvouched(Input& in, const ArrayHeader& a, Tensor& t) {
  // Over NNKIT_MAX_MEMORY the claim fails now, before any chunk is read.
  check_allocation(a.nbytes, "a tensor " + shape_str(a.h.shape) + " " + std::string(dtype_name(a.h.dtype)));
  constexpr std::int64_t chunk = std::int64_t{64} << 20;
  std::vector<std::unique_ptr<std::byte[]>> chunks;
  std::int64_t left = a.nbytes;
  while (left > 0) {
    const std::int64_t n = std::min(left, chunk);
    chunks.emplace_back(new std::byte[static_cast<std::size_t>(n)]);
    in.read_exact(chunks.back().get(), static_cast<std::size_t>(n), ".npy data" + a.at);
    left -= n;
  }
  t = Tensor::uninitialized(a.h.dtype, a.h.shape);
  std::int64_t at = 0;
  for (auto& c : chunks) {
    const std::int64_t n = std::min(chunk, a.nbytes - at);
    std::memcpy(t.bytes() + at, c.get(), static_cast<std::size_t>(n));
    c.reset();
    at += n;
  }
}

constexpr std::int64_t unvouched_limit = std::int64_t{256} << 20;

// The data of an array whose header was just read, in nnkit's in-memory form.
Tensor read_body(Input& in, const ArrayHeader& a) {
  const Header& h = a.h;
  Tensor t;
  if (in.remaining_hint() < 0 && a.nbytes > unvouched_limit) {
    read_unvouched(in, a, t);
  } else {
    t = Tensor::uninitialized(h.dtype, h.shape);
    in.read_exact(t.bytes(), static_cast<std::size_t>(a.nbytes), ".npy data" + a.at);
  }
  normalise(t.bytes(), t.numel(), h);
  if (h.fortran_order && h.shape.size() > 1) {
    Tensor c = Tensor::uninitialized(h.dtype, h.shape);
    fortran_to_c(t.bytes(), c.bytes(), h.shape, t.itemsize());
    return c;
  }
  return t;
}

}  // namespace

Tensor read(Input& in) { return read_body(in, read_array_header(in)); }

bool copy_next(Input& in, Output& out) {
  if (in.at_eof()) return false;
  ArrayHeader a = read_array_header(in);
  if (a.h.fortran_order && a.h.shape.size() > 1) {  // reordering needs the whole array
    write(out, read_body(in, a));
    return true;
  }
  Header written = a.h;
  written.big_endian = false;
  written.fortran_order = false;
  out.write(header_bytes(written));
  // Chunks of whole elements through one reused buffer: no allocation per
  // array, memory independent of the array's size.
  const std::size_t item = dtype_size(a.h.dtype);
  const std::size_t chunk = (std::size_t{4} << 20) / item * item;
  static thread_local std::vector<std::byte> buf;
  buf.resize(chunk);
  std::int64_t left = a.nbytes;
  while (left > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::int64_t>(left, static_cast<std::int64_t>(chunk)));
    in.read_exact(buf.data(), n, ".npy data" + a.at);
    normalise(buf.data(), static_cast<std::int64_t>(n / item), a.h);
    out.write(buf.data(), n);
    left -= static_cast<std::int64_t>(n);
  }
  return true;
}

std::optional<Tensor> read_next(Input& in) {
  if (in.at_eof()) return std::nullopt;
  return read(in);
}

std::string header_bytes(const Header& h) {
  const std::string dict = format_header_text(h);
  // Pad with spaces and a newline so the data starts 64-byte aligned, as numpy
  // does; version 2.0 (4-byte length) only when the header outgrows 65535 bytes.
  auto padded = [&](std::size_t len_bytes) {
    std::string t = dict;
    const std::size_t unpadded = magic_size + 2 + len_bytes + t.size() + 1;
    t.append((64 - unpadded % 64) % 64, ' ');
    return t + '\n';
  };
  std::size_t len_bytes = 2;
  std::string text = padded(2);
  if (text.size() > 65535) {
    len_bytes = 4;
    text = padded(4);
  }
  std::string out(magic, magic_size);
  out += static_cast<char>(len_bytes == 2 ? 1 : 2);
  out += '\0';
  const std::uint32_t n = static_cast<std::uint32_t>(text.size());
  for (std::size_t i = 0; i < len_bytes; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  return out + text;
}

namespace {
Header header_of(const Tensor& t) {
  Header h;
  h.dtype = t.dtype();
  h.shape = t.shape();
  return h;
}
}  // namespace

void write(Output& out, const Tensor& t) {
  out.write(header_bytes(header_of(t)));
  out.write(t.bytes(), t.nbytes());
}

std::string to_bytes(const Tensor& t) {
  std::string s = header_bytes(header_of(t));
  s.append(reinterpret_cast<const char*>(t.bytes()), t.nbytes());
  return s;
}

}  // namespace nnkit::npy
