// safetensors reader and writer, following the published format: an 8-byte
// little-endian header length N, N bytes of JSON, then the raw tensor data.
// Every claim of the header is checked before anything large is allocated.
#include "nnkit/formats/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

namespace nnkit::safetensors {

// Tensor data is little-endian on the wire and copied with memcpy.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors.cpp copies little-endian data verbatim; add byte swaps for this host");

namespace {

// A safetensors dtype as stored: BF16 has no DType, so it is read as raw u2
// bits and widened to f4 afterwards.
struct StoredType {
  DType storage;
  bool bf16 = false;
};

std::optional<StoredType> parse_st_dtype(std::string_view s) {
  if (s == "F32") return StoredType{DType::f4};
  if (s == "F16") return StoredType{DType::f2};
  if (s == "BF16") return StoredType{DType::u2, true};
  if (s == "F64") return StoredType{DType::f8};
  if (s == "I8") return StoredType{DType::i1};
  if (s == "I16") return StoredType{DType::i2};
  if (s == "I32") return StoredType{DType::i4};
  if (s == "I64") return StoredType{DType::i8};
  if (s == "U8") return StoredType{DType::u1};
  if (s == "U16") return StoredType{DType::u2};
  if (s == "U32") return StoredType{DType::u4};
  if (s == "U64") return StoredType{DType::u8};
  if (s == "BOOL") return StoredType{DType::b1};
  return std::nullopt;
}

const char* st_dtype_name(DType t) {
  switch (t) {
    case DType::b1: return "BOOL";
    case DType::i1: return "I8";
    case DType::u1: return "U8";
    case DType::i2: return "I16";
    case DType::u2: return "U16";
    case DType::i4: return "I32";
    case DType::u4: return "U32";
    case DType::i8: return "I64";
    case DType::u8: return "U64";
    case DType::f2: return "F16";
    case DType::f4: return "F32";
    case DType::f8: return "F64";
  }
  throw_internal("safetensors: unknown dtype");
}

// One tensor entry of the header, validated field by field.
struct Entry {
  std::string name;
  std::string dtype_text;
  StoredType type;
  Shape shape;
  std::uint64_t begin = 0, end = 0;
  std::uint64_t nbytes = 0;
};

class Reader {
 public:
  explicit Reader(Input& in) : in_(in) {}

  File read() {
    std::uint64_t header_len = read_header_length();
    std::string text = read_string(header_len, "the header");
    nlohmann::json header = parse_json(text);

    File file;
    std::vector<Entry> entries;
    for (auto& [key, value] : header.items()) {
      if (key == "__metadata__")
        file.metadata = parse_metadata(value);
      else
        entries.push_back(parse_entry(key, value));
    }
    std::uint64_t data_len = check_layout(entries);
    check_data_length(data_len);

    file.tensors.reserve(entries.size());
    for (const Entry& e : entries) file.tensors.push_back({e.name, read_tensor(e)});
    if (!size_known_ && !in_.at_eof())
      fail("unexpected bytes after the " + std::to_string(data_len) + "-byte data section");
    return file;
  }

 private:
  Input& in_;
  bool size_known_ = false;
  std::set<std::string> seen_keys_;

  [[noreturn]] void fail(const std::string& what) const {
    throw_data("safetensors: " + what + " (" + in_.name() + ")");
  }

  std::uint64_t read_header_length() {
    unsigned char b[8];
    in_.read_exact(b, sizeof b, "safetensors header length");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | b[i];
    if (n > max_header_bytes)
      fail("header length " + std::to_string(n) + " exceeds the limit of " +
           std::to_string(max_header_bytes) + " bytes");
    std::int64_t left = in_.remaining_hint();
    if (left >= 0 && n > static_cast<std::uint64_t>(left))
      fail("header length " + std::to_string(n) + " exceeds the " + std::to_string(left) +
           " bytes left in the input");
    if (n < 2) fail("header length " + std::to_string(n) + " is too short for a JSON object");
    return n;
  }

  nlohmann::json parse_json(const std::string& text) {
    // The spec leaves duplicate names undefined; nlohmann would silently keep
    // one of them, so the callback records top-level keys and refuses repeats.
    std::optional<std::string> duplicate;
    auto cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
      if (ev == nlohmann::json::parse_event_t::key && depth == 1 && parsed.is_string()) {
        const auto& k = parsed.get_ref<const std::string&>();
        if (!seen_keys_.insert(k).second && !duplicate) duplicate = k;
      }
      return true;
    };
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text, cb);
    } catch (const nlohmann::json::exception& e) {
      fail(std::string("header is not valid JSON: ") + e.what());
    }
    if (duplicate) fail("tensor name " + in_quotes(*duplicate) + " appears twice in the header");
    if (!j.is_object()) fail("header is JSON but not an object");
    return j;
  }

  std::map<std::string, std::string> parse_metadata(const nlohmann::json& v) {
    std::map<std::string, std::string> out;
    if (v.is_null()) return out;  // the reference reads a null as "no metadata"
    if (!v.is_object()) fail("__metadata__ is not an object of strings");
    for (auto& [k, s] : v.items()) {
      if (!s.is_string())
        fail("__metadata__ value for " + in_quotes(k) + " is " + s.type_name() + ", not a string");
      out.emplace(k, s.get<std::string>());
    }
    return out;
  }

  // A non-negative JSON integer; `what` names it in messages.
  std::uint64_t get_uint(const nlohmann::json& v, const std::string& what) {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (v.is_number_integer()) fail(what + " is negative (" + v.dump() + ")");
    fail(what + " is not a non-negative integer (" + v.dump() + ")");
  }

  Entry parse_entry(const std::string& name, const nlohmann::json& v) {
    const std::string t = "tensor " + in_quotes(name);
    if (!v.is_object()) fail(t + " is not an object");
    Entry e;
    e.name = name;

    auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string()) fail(t + " has no string \"dtype\"");
    e.dtype_text = dt->get<std::string>();
    auto st = parse_st_dtype(e.dtype_text);
    if (!st) fail(t + " has unsupported dtype " + in_quotes(e.dtype_text));
    e.type = *st;

    auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array()) fail(t + " has no \"shape\" array");
    for (const auto& d : *sh) {
      std::uint64_t n = get_uint(d, t + " shape entry");
      if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail(t + " shape entry " + std::to_string(n) + " is too large");
      e.shape.push_back(static_cast<std::int64_t>(n));
    }
    try {
      e.nbytes = static_cast<std::uint64_t>(checked_nbytes(e.shape, e.type.storage));
    } catch (const Error& err) {
      fail(t + " shape " + shape_str(e.shape) + ": " + err.what());
    }

    auto off = v.find("data_offsets");
    if (off == v.end() || !off->is_array() || off->size() != 2)
      fail(t + " has no \"data_offsets\" pair");
    e.begin = get_uint((*off)[0], t + " data_offsets begin");
    e.end = get_uint((*off)[1], t + " data_offsets end");
    return e;
  }

  std::string offsets_str(const Entry& e) const {
    return "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
  }

  // Sorts entries into data order and checks that they tile [0, total)
  // exactly; returns total.
  std::uint64_t check_layout(std::vector<Entry>& entries) {
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t expected = 0;
    const Entry* prev = nullptr;
    for (const Entry& e : entries) {
      const std::string t = "tensor " + in_quotes(e.name) + " " + offsets_str(e);
      if (e.end < e.begin) fail(t + " end before begin");
      if (e.end - e.begin != e.nbytes)
        fail(t + " do not match dtype " + e.dtype_text + " shape " + shape_str(e.shape) + " (" +
             std::to_string(e.nbytes) + " bytes)");
      if (e.begin < expected)
        fail(t + " overlap tensor " + in_quotes(prev->name) + " " + offsets_str(*prev));
      if (e.begin > expected)
        fail(t + " leave a gap after byte " + std::to_string(expected));
      expected = e.end;
      prev = &e;
    }
    return expected;
  }

  void check_data_length(std::uint64_t data_len) {
    std::int64_t left = in_.remaining_hint();
    if (left < 0) return;  // a pipe: each read is checked instead
    size_known_ = true;
    auto have = static_cast<std::uint64_t>(left);
    if (have < data_len)
      fail("truncated: the header describes " + std::to_string(data_len) +
           " bytes of data but only " + std::to_string(have) + " remain");
    if (have > data_len)
      fail("the header describes " + std::to_string(data_len) + " bytes of data but " +
           std::to_string(have) + " follow it");
  }

  // Reads n bytes into a string that grows with what actually arrives, so a
  // lying length on a pipe cannot make us allocate more than the stream holds.
  std::string read_string(std::uint64_t n, const std::string& what) {
    std::string s;
    s.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(n, 1u << 20)));
    char chunk[1 << 16];
    while (s.size() < n) {
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(sizeof chunk, n - s.size()));
      std::size_t got = in_.read_some(chunk, want);
      if (got == 0)
        fail("truncated: " + what + " ends after " + std::to_string(s.size()) + " of " +
             std::to_string(n) + " bytes");
      s.append(chunk, got);
    }
    return s;
  }

  // Only called once the bytes are known to exist (see read_tensor).
  void read_bytes(const Entry& e, std::byte* dst) {
    in_.read_exact(dst, e.nbytes, "safetensors tensor " + in_quotes(e.name));
  }

  Tensor read_tensor(const Entry& e) {
    if (!size_known_ && e.nbytes > 0) {
      // Read before allocating the tensor: on a pipe the header is unchecked.
      std::string s = read_string(e.nbytes, "tensor " + in_quotes(e.name));
      Input mem = Input::from_bytes(std::move(s), in_.name());
      Reader sub(mem);
      sub.size_known_ = true;
      return sub.read_tensor(e);
    }

    if (e.type.bf16) {
      Tensor raw(DType::u2, e.shape);
      if (e.nbytes > 0) read_bytes(e, raw.bytes());
      Tensor out(DType::f4, e.shape);
      const auto* src = raw.data<std::uint16_t>();
      float* dst = out.data<float>();
      for (std::int64_t i = 0; i < out.numel(); ++i) dst[i] = bf16_to_float(src[i]);
      return out;
    }
    Tensor t(e.type.storage, e.shape);
    if (e.nbytes > 0) read_bytes(e, t.bytes());
    if (t.dtype() == DType::b1) {
      // Any byte other than 0/1 would be an invalid C++ bool; keep numpy's
      // meaning (non-zero is true).
      auto* p = reinterpret_cast<unsigned char*>(t.bytes());
      for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = p[i] != 0;
    }
    return t;
  }
};

}  // namespace

bool sniff(std::string_view b) {
  if (b.size() < 9) return false;
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(b[i]);
  return n >= 2 && n <= max_header_bytes && b[8] == '{';
}

File read(Input& in) { return Reader(in).read(); }

void write(Output& out, const File& f) {
  // ordered_json keeps __metadata__ first and the tensors in data order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!f.metadata.empty()) {
    auto& m = header["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : f.metadata) m[k] = v;
  }
  std::set<std::string> names;
  std::uint64_t offset = 0;
  for (const NamedTensor& nt : f.tensors) {
    if (nt.name == "__metadata__")
      throw_data("safetensors: a tensor cannot be named '__metadata__'");
    if (!names.insert(nt.name).second)
      throw_data("safetensors: tensor name " + in_quotes(nt.name) + " is used twice");
    const Tensor& t = nt.tensor;
    std::uint64_t end = offset + t.nbytes();
    header[nt.name] = {{"dtype", st_dtype_name(t.dtype())},
                       {"shape", t.shape()},
                       {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    // Names and metadata must be valid UTF-8 to be JSON.
    throw_data(std::string("safetensors: cannot write header: ") + e.what());
  }
  // The reference pads with spaces so that the data starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  unsigned char len[8];
  std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  out.write(len, sizeof len);
  out.write(text);
  for (const NamedTensor& nt : f.tensors)
    if (nt.tensor.nbytes() > 0) out.write(nt.tensor.bytes(), nt.tensor.nbytes());
}

}  // namespace nnkit::safetensors
