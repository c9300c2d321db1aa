// safetensors: files written by tests/fixtures/make_containers.py from the
// published format, corrupt variants, and in-memory round trips.
#include "nnkit/formats/safetensors.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "nnkit/formats/npy.hpp"

namespace nnkit {
namespace {

std::string fixture(const std::string& name) {
  return std::string(NNKIT_FIXTURES) + "/containers/" + name;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

safetensors::File read_file(const std::string& name) {
  Input in = Input::open(fixture(name));
  return safetensors::read(in);
}

safetensors::File read_bytes(std::string bytes) {
  Input in = Input::from_bytes(std::move(bytes), "<memory>");
  return safetensors::read(in);
}

// The message of the data error that reading `name` raises ("" if none).
std::string read_error(const std::string& name) {
  try {
    read_file(name);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::data) << e.what();
    return e.what();
  }
  ADD_FAILURE() << name << " was read without error";
  return "";
}

std::string u64le(std::uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s;
}

std::string header_file(const std::string& json, std::size_t data_bytes) {
  return u64le(json.size()) + json + std::string(data_bytes, '\0');
}

// Writes f through a real file (atomic Output) and returns its bytes.
std::string write_to_bytes(const safetensors::File& f) {
  auto dir = std::filesystem::temp_directory_path();
  std::string path = (dir / ("nnkit_st_" + std::to_string(::getpid()) + ".safetensors")).string();
  {
    Output out = Output::open(path);
    safetensors::write(out, f);
    out.commit();
  }
  std::string bytes = slurp(path);
  std::remove(path.c_str());
  return bytes;
}

std::vector<std::string> names(const safetensors::File& f) {
  std::vector<std::string> out;
  for (const auto& t : f.tensors) out.push_back(t.name);
  return out;
}

TEST(SafetensorsSniff, RecognisesHeaderStart) {
  std::string good = slurp(fixture("simple.safetensors"));
  EXPECT_TRUE(safetensors::sniff(good));
  EXPECT_TRUE(safetensors::sniff(std::string_view(good).substr(0, 9)));
  EXPECT_FALSE(safetensors::sniff(std::string_view(good).substr(0, 8)));
  EXPECT_FALSE(safetensors::sniff(""));
  EXPECT_FALSE(safetensors::sniff(npy::to_bytes(Tensor(DType::f4, {2}))));
  EXPECT_FALSE(safetensors::sniff(slurp(fixture("savez.npz"))));
  EXPECT_FALSE(safetensors::sniff(u64le(8) + "[1,2,3] "));
  EXPECT_FALSE(safetensors::sniff(u64le(std::uint64_t{1} << 40) + "{}"));
}

TEST(SafetensorsRead, AllDtypesInDataOrder) {
  auto f = read_file("simple.safetensors");
  EXPECT_TRUE(f.metadata.empty());
  // The JSON keys are shuffled; tensors come back in the order of their data.
  EXPECT_EQ(names(f), (std::vector<std::string>{"w", "idx", "bytes", "mask", "h", "d", "empty",
                                                "i16", "u32"}));
  const Tensor& w = f.tensors[0].tensor;
  ASSERT_EQ(w.dtype(), DType::f4);
  EXPECT_EQ(w.shape(), (Shape{2, 2}));
  EXPECT_EQ(std::vector<float>(w.data<float>(), w.data<float>() + 4),
            (std::vector<float>{1.0f, -2.0f, 0.5f, 3.25f}));

  const Tensor& idx = f.tensors[1].tensor;
  ASSERT_EQ(idx.dtype(), DType::i8);
  EXPECT_EQ(idx.data<std::int64_t>()[1], -1);
  EXPECT_EQ(idx.data<std::int64_t>()[2], std::int64_t{1} << 62);

  const Tensor& bytes = f.tensors[2].tensor;
  ASSERT_EQ(bytes.dtype(), DType::u1);
  EXPECT_EQ(bytes.data<std::uint8_t>()[3], 255);

  const Tensor& mask = f.tensors[3].tensor;
  ASSERT_EQ(mask.dtype(), DType::b1);
  EXPECT_TRUE(mask.data<bool>()[0]);
  EXPECT_FALSE(mask.data<bool>()[1]);
  EXPECT_TRUE(mask.data<bool>()[2]);

  const Tensor& h = f.tensors[4].tensor;
  ASSERT_EQ(h.dtype(), DType::f2);
  EXPECT_EQ(h.get(0), 1.5);
  EXPECT_EQ(h.get(1), -0.25);

  const Tensor& d = f.tensors[5].tensor;
  ASSERT_EQ(d.dtype(), DType::f8);
  EXPECT_EQ(d.ndim(), 0u);
  EXPECT_EQ(d.numel(), 1);
  EXPECT_EQ(d.data<double>()[0], M_PI);

  const Tensor& empty = f.tensors[6].tensor;
  EXPECT_EQ(empty.dtype(), DType::i4);
  EXPECT_EQ(empty.shape(), (Shape{0, 2}));
  EXPECT_EQ(empty.numel(), 0);

  EXPECT_EQ(f.tensors[7].tensor.data<std::int16_t>()[0], -32768);
  EXPECT_EQ(f.tensors[8].tensor.data<std::uint32_t>()[0], 4000000000u);
}

TEST(SafetensorsRead, Metadata) {
  auto f = read_file("metadata.safetensors");
  EXPECT_EQ(f.metadata, (std::map<std::string, std::string>{
                            {"arch", "mlp"}, {"format", "pt"}, {"layers", "2"}}));
  ASSERT_EQ(f.tensors.size(), 1u);
  EXPECT_EQ(f.tensors[0].name, "w");
}

TEST(SafetensorsRead, Bf16WidensToFloat32) {
  auto f = read_file("bf16.safetensors");
  Input ein = Input::open(fixture("bf16_expected.npy"));
  Tensor expected = npy::read(ein);
  ASSERT_EQ(f.tensors.size(), 1u);
  const Tensor& x = f.tensors[0].tensor;
  ASSERT_EQ(x.dtype(), DType::f4);
  ASSERT_EQ(x.shape(), expected.shape());
  ASSERT_EQ(expected.dtype(), DType::f4);
  // Bit-exact: widening bfloat16 is a shift, not a rounding.
  EXPECT_EQ(std::memcmp(x.bytes(), expected.bytes(), x.nbytes()), 0);
  EXPECT_EQ(x.data<float>()[0], 1.0f);
  EXPECT_EQ(x.data<float>()[2], 3.140625f);
  EXPECT_TRUE(std::signbit(x.data<float>()[5]));
}

TEST(SafetensorsRead, FromPipeLikeInputWithoutSizeHint) {
  // /dev/stdin cannot be used here; a FIFO gives an input with no size hint.
  auto dir = std::filesystem::temp_directory_path();
  std::string fifo = (dir / ("nnkit_st_fifo_" + std::to_string(::getpid()))).string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string bytes = slurp(fixture("simple.safetensors"));
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::ofstream w(fifo, std::ios::binary);
    w.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    w.close();
    ::_exit(0);
  }
  Input in = Input::open(fifo);
  EXPECT_LT(in.remaining_hint(), 0);
  auto f = safetensors::read(in);
  ::unlink(fifo.c_str());
  EXPECT_EQ(f.tensors.size(), 9u);
  EXPECT_EQ(f.tensors[0].tensor.data<float>()[3], 3.25f);
}

TEST(SafetensorsRead, CorruptFilesAreDataErrors) {
  EXPECT_NE(read_error("bad_overlap.safetensors").find("overlap"), std::string::npos);
  EXPECT_NE(read_error("bad_gap.safetensors").find("gap"), std::string::npos);
  EXPECT_NE(read_error("bad_out_of_bounds.safetensors").find("truncated"), std::string::npos);
  EXPECT_NE(read_error("bad_truncated.safetensors").find("truncated"), std::string::npos);
  EXPECT_NE(read_error("bad_trailing.safetensors").find("follow"), std::string::npos);
  EXPECT_NE(read_error("bad_header_huge.safetensors").find("exceeds the limit"), std::string::npos);
  EXPECT_NE(read_error("bad_header_beyond.safetensors").find("bytes left"), std::string::npos);
  EXPECT_NE(read_error("bad_dtype.safetensors").find("'Q4'"), std::string::npos);
  EXPECT_NE(read_error("bad_metadata.safetensors").find("'layers'"), std::string::npos);
  EXPECT_NE(read_error("bad_negative_shape.safetensors").find("negative"), std::string::npos);
  EXPECT_NE(read_error("bad_json.safetensors").find("not valid JSON"), std::string::npos);
  EXPECT_NE(read_error("bad_not_object.safetensors").find("not an object"), std::string::npos);
  EXPECT_NE(read_error("bad_duplicate.safetensors").find("'w' appears twice"), std::string::npos);
}

TEST(SafetensorsRead, SizeMismatchMessage) {
  std::string m = read_error("bad_size_mismatch.safetensors");
  EXPECT_NE(m.find("safetensors: tensor 'w' data_offsets [0, 12] do not match dtype F32 shape "
                   "[2, 2] (16 bytes)"),
            std::string::npos)
      << m;
  EXPECT_EQ(m.find('\n'), std::string::npos);
}

TEST(SafetensorsRead, ErrorsNameTheInput) {
  std::string m = read_error("bad_gap.safetensors");
  EXPECT_NE(m.find("bad_gap.safetensors"), std::string::npos) << m;
}

TEST(SafetensorsRead, TruncatedHeaderAndEmptyInput) {
  EXPECT_THROW(read_bytes(""), Error);
  EXPECT_THROW(read_bytes(u64le(2)), Error);  // header length but no header
  try {
    read_bytes(u64le(20) + "{}");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::data);
  }
}

TEST(SafetensorsRead, MalformedEntries) {
  auto expect_data_error = [](const std::string& json, std::size_t data, const char* needle) {
    try {
      read_bytes(header_file(json, data));
      ADD_FAILURE() << "accepted " << json;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::data);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_data_error(R"({"a": 1})", 0, "not an object");
  expect_data_error(R"({"a": {"shape": [1], "data_offsets": [0, 4]}})", 4, "dtype");
  expect_data_error(R"({"a": {"dtype": "F32", "data_offsets": [0, 4]}})", 4, "shape");
  expect_data_error(R"({"a": {"dtype": "F32", "shape": [1]}})", 4, "data_offsets");
  expect_data_error(R"({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4,
                    "not a non-negative integer");
  expect_data_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})", 4,
                    "data_offsets");
  expect_data_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 4,
                    "end before begin");
  expect_data_error(R"({"a": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}})", 1,
                    "unsupported dtype 'F8_E4M3'");
  expect_data_error(R"({"__metadata__": [1], "a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}})",
                    1, "__metadata__");
  // Shape whose element count overflows int64 is refused before allocating.
  expect_data_error(
      R"({"a": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})", 8,
      "'a'");
  // A gap at the start: offsets must begin at 0.
  expect_data_error(R"({"a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})", 2, "gap");
}

TEST(SafetensorsRead, MessagesStayOnOneLine) {
  // The name holds a real newline (JSON "\n"); the message escapes it.
  try {
    read_bytes(header_file(R"({"a\nb": {"dtype": "Q", "shape": [1], "data_offsets": [0, 1]}})", 1));
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_NE(m.find("'a\\x0ab'"), std::string::npos) << m;
  }
}

TEST(SafetensorsRead, EmptyHeaderAndZeroSizeTensors) {
  auto f = read_bytes(header_file("{}", 0));
  EXPECT_TRUE(f.tensors.empty());
  // Zero-size tensors may share an offset with a following tensor.
  f = read_bytes(header_file(
      R"({"b": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},)"
      R"( "a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}})",
      2));
  EXPECT_EQ(names(f), (std::vector<std::string>{"a", "b"}));
  // Bool bytes other than 0/1 read as true, as numpy does.
  std::string json = R"({"m": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}})";
  f = read_bytes(u64le(json.size()) + json + std::string("\x00\x05\x01", 3));
  const auto* m = reinterpret_cast<const unsigned char*>(f.tensors.at(0).tensor.bytes());
  EXPECT_EQ(m[0], 0);
  EXPECT_EQ(m[1], 1);
  EXPECT_EQ(m[2], 1);
}

TEST(SafetensorsRead, NullMetadataIsEmpty) {
  auto f = read_bytes(header_file(R"({"__metadata__": null})", 0));
  EXPECT_TRUE(f.metadata.empty());
  EXPECT_TRUE(f.tensors.empty());
}

TEST(SafetensorsWrite, LayoutFollowsTheSpec) {
  safetensors::File f;
  f.tensors.push_back({"b", Tensor::from_vector<float>({3}, {1, 2, 3})});
  f.tensors.push_back({"a", Tensor::from_vector<std::int64_t>({1}, {-7})});
  f.metadata["arch"] = "mlp";
  std::string bytes = write_to_bytes(f);
  ASSERT_GE(bytes.size(), 8u);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);  // padded so the data starts aligned
  ASSERT_EQ(bytes.size(), 8 + n + 12 + 8);
  std::string header = bytes.substr(8, n);
  auto j = nlohmann::json::parse(header);  // trailing spaces are valid JSON whitespace
  EXPECT_EQ(header.find_last_not_of(' ') + 1, header.find_last_of('}') + 1);
  EXPECT_EQ(j["__metadata__"]["arch"], "mlp");
  EXPECT_EQ(j["b"]["dtype"], "F32");
  EXPECT_EQ(j["b"]["shape"], nlohmann::json::array({3}));
  EXPECT_EQ(j["b"]["data_offsets"], nlohmann::json::array({0, 12}));
  EXPECT_EQ(j["a"]["dtype"], "I64");
  EXPECT_EQ(j["a"]["data_offsets"], nlohmann::json::array({12, 20}));
  float first;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  EXPECT_EQ(first, 1.0f);
}

TEST(SafetensorsWrite, NoMetadataKeyWhenEmpty) {
  safetensors::File f;
  f.tensors.push_back({"x", Tensor::from_vector<std::uint8_t>({2}, {1, 2})});
  std::string bytes = write_to_bytes(f);
  EXPECT_EQ(bytes.find("__metadata__"), std::string::npos);
}

TEST(SafetensorsWrite, RoundTripEveryDtype) {
  safetensors::File f;
  f.metadata = {{"k", "v"}, {"empty", ""}};
  for (DType t : all_dtypes) {
    Tensor x(t, {2, 3});
    // Distinct bytes per dtype; bool bytes must stay 0/1.
    auto* p = reinterpret_cast<unsigned char*>(x.bytes());
    for (std::size_t i = 0; i < x.nbytes(); ++i)
      p[i] = t == DType::b1 ? static_cast<unsigned char>(i % 2)
                            : static_cast<unsigned char>(i * 7 + 1);
    f.tensors.push_back({std::string(dtype_code(t)), std::move(x)});
  }
  f.tensors.push_back({"scalar", Tensor::from_vector<double>({}, {2.5})});
  f.tensors.push_back({"empty", Tensor(DType::f4, {0, 4})});
  f.tensors.push_back({"unicode \xc3\xa9", Tensor::from_vector<float>({1}, {1})});

  std::string bytes = write_to_bytes(f);
  auto g = read_bytes(bytes);
  EXPECT_EQ(g.metadata, f.metadata);
  ASSERT_EQ(g.tensors.size(), f.tensors.size());
  for (std::size_t i = 0; i < f.tensors.size(); ++i) {
    const Tensor& a = f.tensors[i].tensor;
    const Tensor& b = g.tensors[i].tensor;
    EXPECT_EQ(g.tensors[i].name, f.tensors[i].name);
    EXPECT_EQ(b.dtype(), a.dtype()) << f.tensors[i].name;
    EXPECT_EQ(b.shape(), a.shape()) << f.tensors[i].name;
    ASSERT_EQ(b.nbytes(), a.nbytes());
    if (a.nbytes() > 0) {
      EXPECT_EQ(std::memcmp(a.bytes(), b.bytes(), a.nbytes()), 0) << f.tensors[i].name;
    }
  }
}

TEST(SafetensorsWrite, EmptyFile) {
  std::string bytes = write_to_bytes({});
  EXPECT_EQ(bytes.size(), 16u);
  EXPECT_TRUE(safetensors::sniff(bytes));
  EXPECT_TRUE(read_bytes(bytes).tensors.empty());
}

TEST(SafetensorsWrite, RefusesAmbiguousNames) {
  safetensors::File f;
  f.tensors.push_back({"x", Tensor(DType::f4, {1})});
  f.tensors.push_back({"x", Tensor(DType::f4, {1})});
  EXPECT_THROW(write_to_bytes(f), Error);
  safetensors::File g;
  g.tensors.push_back({"__metadata__", Tensor(DType::f4, {1})});
  EXPECT_THROW(write_to_bytes(g), Error);
}

}  // namespace
}  // namespace nnkit
