// npy: the numpy-written fixtures of tests/fixtures/npy (every dtype, both
// byte orders, Fortran order, versions 1-3, 0-d, empty, streams, corrupt
// files; see make_npy_fixtures.py and manifest.json), truncation at every byte,
// pipes, and write -> read round trips checked against numpy's exact bytes.
#include "nnkit/formats/npy.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace nnkit {
namespace {

using nlohmann::json;

std::string fixture(const std::string& name) {
  return std::string(NNKIT_FIXTURES) + "/npy/" + name;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) ADD_FAILURE() << "cannot open " << path;
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const json& manifest() {
  static const json m = json::parse(slurp(fixture("manifest.json")));
  return m;
}

std::string unhex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string raw(const Tensor& t) {
  return std::string(reinterpret_cast<const char*>(t.bytes()), t.nbytes());
}

// Checks t against a manifest array: dtype, shape and every byte.
void expect_array(const Tensor& t, const json& want, const std::string& where) {
  EXPECT_EQ(std::string(dtype_code(t.dtype())), want["dtype"].get<std::string>()) << where;
  EXPECT_EQ(t.shape(), want["shape"].get<Shape>()) << where;
  const std::string expect = unhex(want["data"].get<std::string>());
  const std::string got = raw(t);
  if (got != expect) {
    std::size_t i = 0;
    while (i < std::min(got.size(), expect.size()) && got[i] == expect[i]) ++i;
    ADD_FAILURE() << where << ": data differs from byte " << i << " (" << got.size() << " bytes, "
                  << expect.size() << " expected)\n  got      " << hex(got) << "\n  expected "
                  << hex(expect);
  }
}

// Reads the stream to its end with read_next and checks it against `arrays`.
void expect_stream(Input& in, const json& arrays, const std::string& where) {
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    std::optional<Tensor> t = npy::read_next(in);
    ASSERT_TRUE(t.has_value()) << where << ": stream ended after " << i << " arrays";
    expect_array(*t, arrays[i], where + " array " + std::to_string(i));
  }
  EXPECT_FALSE(npy::read_next(in).has_value()) << where << ": more arrays than expected";
  EXPECT_FALSE(npy::read_next(in).has_value()) << where << ": read_next after the end";
}

// Reads arrays with read_next until the error the manifest entry describes.
void expect_error(Input& in, const json& entry, const std::string& where) {
  const json& arrays = entry["arrays"];
  std::size_t n = 0;
  try {
    while (std::optional<Tensor> t = npy::read_next(in)) {
      if (n < arrays.size()) expect_array(*t, arrays[n], where + " array " + std::to_string(n));
      ++n;
    }
    ADD_FAILURE() << where << ": read " << n << " arrays without an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::data) << where << ": " << e.what();
    EXPECT_EQ(n, arrays.size()) << where << ": error after " << n << " arrays: " << e.what();
    for (const auto& word : entry["error"])
      EXPECT_NE(lower(e.what()).find(lower(word.get<std::string>())), std::string::npos)
          << where << ": message does not name '" << word.get<std::string>() << "': " << e.what();
    // The message says where: the input's name.
    EXPECT_NE(std::string(e.what()).find(in.name()), std::string::npos)
        << where << ": message does not name the input: " << e.what();
  }
}

// The byte offsets where the arrays of a valid stream end, read from the
// headers (independently of the reader under test).
std::vector<std::size_t> array_ends(const std::string& bytes, const json& arrays) {
  std::vector<std::size_t> ends;
  std::size_t pos = 0;
  for (const auto& a : arrays) {
    const int major = static_cast<unsigned char>(bytes[pos + 6]);
    std::size_t hlen = static_cast<unsigned char>(bytes[pos + 8]) |
                       static_cast<std::size_t>(static_cast<unsigned char>(bytes[pos + 9])) << 8;
    std::size_t pre = 10;
    if (major > 1) {
      hlen |= static_cast<std::size_t>(static_cast<unsigned char>(bytes[pos + 10])) << 16 |
              static_cast<std::size_t>(static_cast<unsigned char>(bytes[pos + 11])) << 24;
      pre = 12;
    }
    pos += pre + hlen + a["data"].get<std::string>().size() / 2;
    ends.push_back(pos);
  }
  EXPECT_EQ(pos, bytes.size());
  return ends;
}

// Feeds bytes to fd 0 through a pipe (in small writes) while fn reads it as
// Input::open("-"): the non-seekable path, where the input's size is unknown.
template <class F>
void with_stdin_pipe(const std::string& bytes, F&& fn) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const int saved = ::dup(0);
  ASSERT_GE(saved, 0);
  ASSERT_EQ(::dup2(fds[0], 0), 0);
  ::close(fds[0]);
  std::thread writer([&bytes, wfd = fds[1]] {
    for (std::size_t i = 0; i < bytes.size();) {
      const std::size_t n = std::min<std::size_t>(7, bytes.size() - i);
      const ssize_t w = ::write(wfd, bytes.data() + i, n);
      if (w <= 0) break;  // the reader gave up early (an error case)
      i += static_cast<std::size_t>(w);
    }
    ::close(wfd);
  });
  {
    Input in = Input::open("-");
    fn(in);
    in.read_all();  // drain, so the writer can finish
  }
  writer.join();
  ::dup2(saved, 0);
  ::close(saved);
}

// ------------------------------------------------------------------ fixtures

TEST(NpyFixtures, ManifestIsComplete) {
  const json& m = manifest();
  ASSERT_GE(m["valid"].size(), 40u);
  ASSERT_GE(m["invalid"].size(), 20u);
  // Every dtype appears in both byte orders (or '|' for one-byte types).
  for (DType t : all_dtypes) {
    const std::string code(dtype_code(t));
    std::vector<std::string> want;
    if (dtype_size(t) == 1) want = {code + ".npy"};
    else want = {code + "_le.npy", code + "_be.npy"};
    for (const std::string& name : want) {
      bool found = false;
      for (const auto& e : m["valid"]) found |= e["file"] == name;
      EXPECT_TRUE(found) << name << " missing from the manifest";
    }
  }
  // Every .npy file in the folder is described by the manifest.
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(fixture("")))
    files += entry.path().extension() == ".npy";
  EXPECT_EQ(files, m["valid"].size() + m["invalid"].size());
}

TEST(NpyFixtures, EveryValidFileReadsBitExact) {
  for (const auto& e : manifest()["valid"]) {
    const std::string name = e["file"];
    Input in = Input::open(fixture(name));
    expect_stream(in, e["arrays"], name);
  }
}

TEST(NpyFixtures, ReadTakesExactlyOneArray) {
  for (const auto& e : manifest()["valid"]) {
    const std::string name = e["file"];
    const std::string bytes = slurp(fixture(name));
    Input in = Input::open(fixture(name));
    Tensor t = npy::read(in);
    expect_array(t, e["arrays"][0], name);
    EXPECT_EQ(in.offset(), array_ends(bytes, e["arrays"])[0]) << name;
    EXPECT_EQ(in.at_eof(), e["arrays"].size() == 1) << name;
  }
}

TEST(NpyFixtures, EveryValidFileReadsFromMemory) {
  for (const auto& e : manifest()["valid"]) {
    const std::string name = e["file"];
    Input in = Input::from_bytes(slurp(fixture(name)), name);
    expect_stream(in, e["arrays"], name + " (memory)");
  }
}

TEST(NpyFixtures, EveryValidFileReadsFromAPipe) {
  for (const auto& e : manifest()["valid"]) {
    const std::string name = e["file"];
    with_stdin_pipe(slurp(fixture(name)), [&](Input& in) { expect_stream(in, e["arrays"], name + " (pipe)"); });
  }
}

TEST(NpyFixtures, EveryInvalidFileIsADataError) {
  for (const auto& e : manifest()["invalid"]) {
    const std::string name = e["file"];
    Input in = Input::open(fixture(name));
    expect_error(in, e, name);
  }
}

TEST(NpyFixtures, EveryInvalidFileIsADataErrorFromMemory) {
  for (const auto& e : manifest()["invalid"]) {
    const std::string name = e["file"];
    Input in = Input::from_bytes(slurp(fixture(name)), name);
    expect_error(in, e, name + " (memory)");
  }
}

TEST(NpyFixtures, EveryInvalidFileIsADataErrorFromAPipe) {
  // On a pipe the reader cannot know how much data is left, so a header that
  // claims terabytes may fail on allocation rather than on the short read.
  for (const auto& e : manifest()["invalid"]) {
    const std::string name = e["file"];
    with_stdin_pipe(slurp(fixture(name)), [&](Input& in) {
      std::size_t n = 0;
      try {
        while (npy::read_next(in)) ++n;
        ADD_FAILURE() << name << " (pipe): no error";
      } catch (const Error& e2) {
        EXPECT_EQ(e2.code(), ExitCode::data) << name << " (pipe): " << e2.what();
        EXPECT_EQ(n, e["arrays"].size()) << name << " (pipe): " << e2.what();
      }
    });
  }
}

TEST(NpyFixtures, WriterReproducesNumpyBytes) {
  std::size_t checked = 0;
  for (const auto& e : manifest()["valid"]) {
    if (!e["numpy_canonical"].get<bool>()) continue;
    const std::string name = e["file"];
    const std::string bytes = slurp(fixture(name));
    Input in = Input::from_bytes(bytes, name);
    std::string written;
    while (std::optional<Tensor> t = npy::read_next(in)) written += npy::to_bytes(*t);
    EXPECT_EQ(written, bytes) << name << ": nnkit's bytes differ from numpy's";
    ++checked;
  }
  EXPECT_GE(checked, 15u);
}

TEST(NpyFixtures, NonCanonicalFilesAreRewrittenLittleEndianCOrder) {
  // Big-endian, Fortran, version 2/3 inputs come out as numpy would write the
  // same values: compare with the canonical file of the same values.
  const std::pair<const char*, const char*> same[] = {
      {"f4_be.npy", "f4_le.npy"}, {"i8_be.npy", "i8_le.npy"}, {"u2_be.npy", "u2_le.npy"},
      {"f2_be.npy", "f2_le.npy"}, {"v2_f4.npy", "f4_le.npy"}, {"v3_i2_be.npy", "i2_le.npy"},
      {"v2_i8_be.npy", "i8_le.npy"}, {"special_f8_be.npy", "special_f8_le.npy"},
      {"special_f2_be.npy", "special_f2_le.npy"}};
  for (const auto& [from, to] : same) {
    Input in = Input::open(fixture(from));
    EXPECT_EQ(npy::to_bytes(npy::read(in)), slurp(fixture(to))) << from << " vs " << to;
  }
}

// ---------------------------------------------------------------- truncation

TEST(NpyTruncation, EveryPrefixOfAValidStreamIsCleanOrADataError) {
  const char* names[] = {"f4_le.npy",     "stream_two.npy",       "stream_mixed.npy",
                         "v3_i2_be.npy",  "i2_be_fortran_3d.npy", "f8_0d.npy",
                         "b1.npy",        "i8_empty_2x0x3.npy",   "v2_f4.npy",
                         "long_header.npy"};
  for (const char* name : names) {
    const json* entry = nullptr;
    for (const auto& e : manifest()["valid"])
      if (e["file"] == name) entry = &e;
    ASSERT_NE(entry, nullptr) << name;
    const json& arrays = (*entry)["arrays"];
    const std::string bytes = slurp(fixture(name));
    const std::vector<std::size_t> ends = array_ends(bytes, arrays);
    for (std::size_t len = 0; len < bytes.size(); ++len) {
      const std::string where = std::string(name) + " cut to " + std::to_string(len) + " bytes";
      // Whole arrays before the cut read back; a cut between arrays is a clean end.
      const std::size_t whole = std::count_if(ends.begin(), ends.end(), [&](std::size_t e) { return e <= len; });
      const bool clean = len == 0 || std::find(ends.begin(), ends.end(), len) != ends.end();
      Input in = Input::from_bytes(bytes.substr(0, len), "<prefix>");
      std::size_t n = 0;
      try {
        while (std::optional<Tensor> t = npy::read_next(in)) {
          if (n < arrays.size()) expect_array(*t, arrays[n], where);
          ++n;
        }
        EXPECT_TRUE(clean) << where << ": no error";
      } catch (const Error& e) {
        EXPECT_FALSE(clean) << where << ": " << e.what();
        EXPECT_EQ(e.code(), ExitCode::data) << where << ": " << e.what();
        EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << where << ": " << e.what();
      }
      EXPECT_EQ(n, whole) << where;
    }
  }
}

TEST(NpyTruncation, ReadOfAnEmptyInputIsADataError) {
  Input in = Input::from_bytes("", "<empty>");
  EXPECT_FALSE(npy::read_next(in).has_value());
  try {
    npy::read(in);
    ADD_FAILURE() << "read of nothing succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::data);
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

TEST(NpyTruncation, EveryPrefixFromAPipe) {
  // The same through a pipe for one file: the reader cannot see the size.
  const std::string bytes = slurp(fixture("stream_two.npy"));
  for (std::size_t len = 1; len < bytes.size(); len += 3) {
    if (len == 152) continue;  // the end of the first array: a clean end
    with_stdin_pipe(bytes.substr(0, len), [&](Input& in) {
      try {
        while (npy::read_next(in)) {
        }
        ADD_FAILURE() << "cut to " << len << ": no error";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::data) << e.what();
        EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
      }
    });
  }
}

TEST(NpyCorruption, EveryHeaderByteChangedIsReadOrADataError) {
  // No crash, no other exception, whatever one byte of the header becomes.
  const std::string good = slurp(fixture("f4_le.npy"));
  const unsigned char values[] = {0, 1, 0xff, 0x7f, '9', '(', ')', ' ', ',', '\'', '-', '}', '>', 'L'};
  std::size_t errors = 0, reads = 0;
  for (std::size_t i = 0; i < 128; ++i) {
    for (unsigned char v : values) {
      std::string bytes = good;
      bytes[i] = static_cast<char>(v);
      Input in = Input::from_bytes(bytes, "<corrupt>");
      try {
        while (std::optional<Tensor> t = npy::read_next(in)) ++reads;
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::data) << "byte " << i << " = " << int(v) << ": " << e.what();
        ++errors;
      }
    }
  }
  EXPECT_GT(errors, 100u);
  EXPECT_GT(reads, 100u);  // padding spaces and some values are harmless
}

// ------------------------------------------------------------ header text

TEST(NpyHeader, ParsesWhatNumpyAndPython2Write) {
  struct Case {
    const char* text;
    DType dtype;
    bool big, fortran;
    Shape shape;
  };
  const Case cases[] = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", DType::f4, false, false, {2, 3}},
      {"{'descr': '>i8', 'fortran_order': True, 'shape': (4,), }", DType::i8, true, true, {4}},
      {"{'descr': '|b1', 'fortran_order': False, 'shape': (), }", DType::b1, false, false, {}},
      {"{'descr': '|u1', 'fortran_order': False, 'shape': (0, 5), }", DType::u1, false, false, {0, 5}},
      {"{'descr': '<f2', 'fortran_order': False, 'shape': (2L, 3L), }", DType::f2, false, false, {2, 3}},
      {"{\"descr\": \"<u4\", \"fortran_order\": False, \"shape\": (7,)}", DType::u4, false, false, {7}},
      {"{'shape': (1, 2), 'fortran_order': True, 'descr': '>f8'}", DType::f8, true, true, {1, 2}},
      {"  {'descr':'<i2','fortran_order':False,'shape':(3,)}  \n", DType::i2, false, false, {3}},
      {"{'descr': '>u1', 'fortran_order': False, 'shape': (1,), }", DType::u1, false, false, {1}},
      {"{'descr': '<u8', 'fortran_order': False, 'shape': (9223372036854775807, 0), }", DType::u8,
       false, false, {INT64_MAX, 0}},
  };
  for (const Case& c : cases) {
    npy::Header h = npy::parse_header_text(c.text);
    EXPECT_EQ(h.dtype, c.dtype) << c.text;
    EXPECT_EQ(h.big_endian, c.big) << c.text;
    EXPECT_EQ(h.fortran_order, c.fortran) << c.text;
    EXPECT_EQ(h.shape, c.shape) << c.text;
  }
}

TEST(NpyHeader, RefusesWhatIsNotAHeader) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "expected '{'"},
      {"{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", "c8"},
      {"{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (2,), }", "structured"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "shape"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", "shape"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,,3), }", "shape"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", "large"},
      {"{'descr': '<f4', 'fortran_order': false, 'shape': (2,), }", "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, }", "shape"},
      {"{'descr': '<f4', 'shape': (2,), }", "fortran_order"},
      {"{'fortran_order': False, 'shape': (2,), }", "descr"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", "extra"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", "after"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", "expected"},
      {"{'descr': 'f4', 'fortran_order': False, 'shape': (2,), }", "f4"},
      {"{'descr': '<float32', 'fortran_order': False, 'shape': (2,), }", "float32"},
      {"{'descr': '<f4 ', 'fortran_order': False, 'shape': (2,), }", "dtype"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
       "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1), }",
       "dimensions"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }", ""},
  };
  for (const auto& [text, word] : cases) {
    try {
      npy::parse_header_text(text);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::data) << text;
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos)
          << text << "\n  message: " << e.what() << "\n  should name: " << word;
    }
  }
}

TEST(NpyHeader, FormatParsesBack) {
  for (DType t : all_dtypes)
    for (bool big : {false, true})
      for (bool fortran : {false, true})
        for (const Shape& s : {Shape{}, Shape{0}, Shape{5}, Shape{2, 3}, Shape{2, 0, 3},
                               Shape(32, 1), Shape{INT64_MAX}}) {
          npy::Header h;
          h.dtype = t;
          h.big_endian = big && dtype_size(t) > 1;
          h.fortran_order = fortran;
          h.shape = s;
          const std::string text = npy::format_header_text(h);
          npy::Header back = npy::parse_header_text(text);
          EXPECT_EQ(back.dtype, h.dtype) << text;
          EXPECT_EQ(back.big_endian, h.big_endian) << text;
          EXPECT_EQ(back.fortran_order, h.fortran_order) << text;
          EXPECT_EQ(back.shape, h.shape) << text;
        }
}

TEST(NpyHeader, FormatMatchesNumpysText) {
  npy::Header h;
  h.dtype = DType::f4;
  h.shape = {2, 3};
  EXPECT_EQ(npy::format_header_text(h), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
  h.shape = {7};
  h.dtype = DType::u1;
  EXPECT_EQ(npy::format_header_text(h), "{'descr': '|u1', 'fortran_order': False, 'shape': (7,), }");
  h.shape = {};
  h.dtype = DType::b1;
  EXPECT_EQ(npy::format_header_text(h), "{'descr': '|b1', 'fortran_order': False, 'shape': (), }");
  h.dtype = DType::i8;
  h.big_endian = true;
  h.fortran_order = true;
  h.shape = {1, 2};
  EXPECT_EQ(npy::format_header_text(h), "{'descr': '>i8', 'fortran_order': True, 'shape': (1, 2), }");
}

// Builds a .npy with a hand-made header: version major, header padded to hlen.
std::string handmade(int major, const std::string& dict, std::size_t hlen, const std::string& data) {
  std::string text = dict;
  text.resize(hlen - 1, ' ');
  text += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  const int len_bytes = major == 1 ? 2 : 4;
  for (int i = 0; i < len_bytes; ++i) out += static_cast<char>((hlen >> (8 * i)) & 0xff);
  return out + text + data;
}

TEST(NpyHeader, ReadsVersion2HeaderLongerThan65535Bytes) {
  // The case that needs version 2.0: a 4-byte header length above 65535.
  const float v[] = {1.5f, -2.0f};
  const std::string data(reinterpret_cast<const char*>(v), sizeof v);
  for (int major : {2, 3}) {
    Input in = Input::from_bytes(
        handmade(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 70000, data) +
            handmade(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 118, data.substr(4)),
        "<v2>");
    Tensor t = *npy::read_next(in);
    EXPECT_EQ(t.shape(), Shape{2});
    EXPECT_EQ(raw(t), data);
    Tensor u = *npy::read_next(in);
    EXPECT_EQ(u.shape(), Shape{1});
    EXPECT_EQ(u.data<float>()[0], -2.0f);
    EXPECT_FALSE(npy::read_next(in).has_value());
  }
}

TEST(NpyHeader, RefusesHeaderLongerThanTheLimitBeforeReadingIt) {
  // Claims max_header_bytes + 1 bytes but holds only a few: refused by the
  // limit (not by truncation), so nothing that large is allocated.
  std::string bytes("\x93NUMPY\x02\x00", 8);
  const std::uint32_t n = npy::max_header_bytes + 1;
  for (int i = 0; i < 4; ++i) bytes += static_cast<char>((n >> (8 * i)) & 0xff);
  bytes += "{'descr': '<f4'";
  Input in = Input::from_bytes(bytes, "<huge>");
  try {
    npy::read(in);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::data);
    EXPECT_NE(std::string(e.what()).find("header"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("limit"), std::string::npos) << e.what();
  }
}

// Version 2.0 output is chosen only when the padded header exceeds 65535
// bytes. The header holds at most max_rank (32) dimensions of at most 19
// digits each, under 1 KB, so no tensor can reach that branch: it is not
// tested here. The written header's size is tested below for the longest
// possible shapes instead.

// ---------------------------------------------------------------- writing

// Bytes of a tensor filled with a pattern that uses every bit (floats get
// arbitrary bit patterns, NaNs included; bools 0/1).
Tensor patterned(DType t, const Shape& shape) {
  Tensor x(t, shape);
  auto* p = reinterpret_cast<unsigned char*>(x.bytes());
  for (std::size_t i = 0; i < x.nbytes(); ++i)
    p[i] = t == DType::b1 ? (i * 7 + 1) % 3 == 0 : static_cast<unsigned char>(i * 37 + 11);
  return x;
}

struct Parsed {
  int major = 0, minor = 0;
  std::size_t header_len = 0, data_offset = 0;
  std::string text;
};

Parsed parse_prefix(const std::string& b) {
  Parsed p;
  EXPECT_GE(b.size(), 10u);
  EXPECT_EQ(b.substr(0, 6), std::string("\x93NUMPY", 6));
  p.major = static_cast<unsigned char>(b[6]);
  p.minor = static_cast<unsigned char>(b[7]);
  p.header_len = static_cast<unsigned char>(b[8]) | static_cast<std::size_t>(static_cast<unsigned char>(b[9])) << 8;
  p.data_offset = 10 + p.header_len;
  p.text = b.substr(10, p.header_len);
  return p;
}

const Shape round_trip_shapes[] = {Shape{}, Shape{0}, Shape{1}, Shape{5}, Shape{2, 3}, Shape{2, 0, 3},
                                   Shape{3, 1, 2, 1}, Shape{0, 0}, Shape(32, 1)};

TEST(NpyWrite, RoundTripsEveryDtypeAndShape) {
  for (DType t : all_dtypes) {
    for (const Shape& s : round_trip_shapes) {
      const Tensor x = patterned(t, s);
      const std::string where = std::string(dtype_name(t)) + " " + shape_str(s);
      const std::string bytes = npy::to_bytes(x);
      Input in = Input::from_bytes(bytes, "<round trip>");
      std::optional<Tensor> y = npy::read_next(in);
      ASSERT_TRUE(y.has_value()) << where;
      EXPECT_EQ(y->dtype(), t) << where;
      EXPECT_EQ(y->shape(), s) << where;
      EXPECT_EQ(raw(*y), raw(x)) << where;
      EXPECT_FALSE(npy::read_next(in).has_value()) << where;
    }
  }
}

TEST(NpyWrite, HeaderIsVersion1LittleEndianCOrderPaddedTo64) {
  for (DType t : all_dtypes) {
    for (const Shape& s : round_trip_shapes) {
      const Tensor x = patterned(t, s);
      const std::string where = std::string(dtype_name(t)) + " " + shape_str(s);
      const std::string bytes = npy::to_bytes(x);
      const Parsed p = parse_prefix(bytes);
      EXPECT_EQ(p.major, 1) << where;
      EXPECT_EQ(p.minor, 0) << where;
      EXPECT_EQ(p.data_offset % 64, 0u) << where;
      EXPECT_EQ(bytes.size(), p.data_offset + x.nbytes()) << where;
      ASSERT_FALSE(p.text.empty());
      EXPECT_EQ(p.text.back(), '\n') << where;
      // numpy's layout: the dict, then spaces, then the newline.
      const std::size_t close = p.text.rfind('}');
      ASSERT_NE(close, std::string::npos) << where;
      EXPECT_EQ(p.text.find_first_not_of(' ', close + 1), p.text.size() - 1) << where;
      const std::string order = dtype_size(t) == 1 ? "|" : "<";
      EXPECT_EQ(p.text.substr(0, close + 1),
                "{'descr': '" + order + std::string(dtype_code(t)) + "', 'fortran_order': False, 'shape': " +
                    [&] {
                      std::string r = "(";
                      for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
                      return r + (s.size() == 1 ? ",)" : ")");
                    }() + ", }")
          << where;
    }
  }
}

TEST(NpyWrite, LongestShapeStaysVersion1) {
  // 32 dimensions of 19 digits (numel 0 keeps it possible): still < 65536.
  Shape s(32, 1000000000000000000);
  s[0] = 0;
  const std::string bytes = npy::to_bytes(Tensor(DType::f8, s));
  const Parsed p = parse_prefix(bytes);
  EXPECT_EQ(p.major, 1);
  EXPECT_EQ(p.data_offset % 64, 0u);
  EXPECT_GT(p.header_len, 255u);  // both bytes of the length are used
  Input in = Input::from_bytes(bytes, "<long>");
  EXPECT_EQ(npy::read(in).shape(), s);
}

TEST(NpyWrite, ThroughAFileAndAStream) {
  const auto path = (std::filesystem::temp_directory_path() /
                     ("nnkit_npy_" + std::to_string(::getpid()) + ".npy")).string();
  std::vector<Tensor> xs;
  for (DType t : all_dtypes) xs.push_back(patterned(t, {2, 3}));
  xs.push_back(patterned(DType::f4, {}));
  xs.push_back(patterned(DType::i8, {0, 4}));
  {
    Output out = Output::open(path);
    for (const Tensor& x : xs) npy::write(out, x);
    out.commit();
  }
  std::string expect;
  for (const Tensor& x : xs) expect += npy::to_bytes(x);
  EXPECT_EQ(slurp(path), expect);
  Input in = Input::open(path);
  for (const Tensor& x : xs) {
    std::optional<Tensor> y = npy::read_next(in);
    ASSERT_TRUE(y.has_value());
    EXPECT_EQ(y->dtype(), x.dtype());
    EXPECT_EQ(y->shape(), x.shape());
    EXPECT_EQ(raw(*y), raw(x));
  }
  EXPECT_FALSE(npy::read_next(in).has_value());
  std::remove(path.c_str());
}

TEST(NpyWrite, NonCanonicalBoolBytesBecome0And1) {
  Input in = Input::open(fixture("b1_nonzero_bytes.npy"));
  Tensor t = npy::read(in);
  EXPECT_EQ(hex(raw(t)), "000101010100");
  const std::string out = npy::to_bytes(t);
  EXPECT_EQ(hex(out.substr(out.size() - 6)), "000101010100");
}

// ---------------------------------------------------------------- streams

TEST(NpyStream, ReadNextReturnsEachArrayThenNullopt) {
  Input in = Input::open(fixture("stream_two.npy"));
  std::optional<Tensor> a = npy::read_next(in);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->dtype(), DType::f4);
  EXPECT_EQ(a->shape(), (Shape{2, 3}));
  EXPECT_EQ(a->data<float>()[1], -2.5f);
  std::optional<Tensor> b = npy::read_next(in);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->dtype(), DType::i8);
  EXPECT_EQ(b->shape(), Shape{4});
  EXPECT_EQ(b->data<std::int64_t>()[3], std::int64_t{1} << 40);
  EXPECT_FALSE(npy::read_next(in).has_value());
  EXPECT_TRUE(in.at_eof());
}

TEST(NpyStream, TrailingGarbageIsADataError) {
  const std::string good = slurp(fixture("f4_le.npy"));
  const std::pair<std::string, const char*> tails[] = {
      {"x", "truncated"},
      {"\n", "truncated"},
      {std::string(7, '\0'), "truncated"},
      {std::string(8, '\0'), "magic"},
      {"GARBAGE!GARBAGE!", "magic"},
      {good.substr(0, 100), "truncated"},
      {std::string("\x93NUMPY\x01\x00", 8), "truncated"},
  };
  for (const auto& [tail, word] : tails) {
    Input in = Input::from_bytes(good + tail, "<garbage>");
    ASSERT_TRUE(npy::read_next(in).has_value());
    try {
      npy::read_next(in);
      ADD_FAILURE() << "trailing " << hex(tail) << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::data) << e.what();
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
      // The message says where: a byte offset in the named input.
      EXPECT_NE(std::string(e.what()).find("at byte"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("<garbage>"), std::string::npos) << e.what();
    }
  }
}

TEST(NpyStream, ManyArraysThroughAPipe) {
  // A long stream through a pipe: buffer boundaries fall everywhere.
  std::string bytes;
  std::vector<Tensor> xs;
  for (int i = 0; i < 300; ++i) {
    xs.push_back(patterned(all_dtypes[i % 12], {i % 5, i % 7 + 1}));
    bytes += npy::to_bytes(xs.back());
  }
  with_stdin_pipe(bytes, [&](Input& in) {
    for (const Tensor& x : xs) {
      std::optional<Tensor> y = npy::read_next(in);
      ASSERT_TRUE(y.has_value());
      EXPECT_EQ(y->shape(), x.shape());
      EXPECT_EQ(raw(*y), raw(x));
    }
    EXPECT_FALSE(npy::read_next(in).has_value());
  });
}

}  // namespace
}  // namespace nnkit
