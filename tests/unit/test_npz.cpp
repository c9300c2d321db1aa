// npz: archives written by numpy (tests/fixtures/make_containers.py) and
// damaged ones.
#include "nnkit/formats/npz.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

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

std::vector<NamedTensor> read_file(const std::string& name) {
  Input in = Input::open(fixture(name));
  return npz::read(in);
}

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

std::vector<double> values(const Tensor& t) {
  std::vector<double> v;
  for (std::int64_t i = 0; i < t.numel(); ++i) v.push_back(t.get(i));
  return v;
}

// The arrays of make_containers.py's npz_arrays(), checked one by one.
void check_numpy_arrays(const std::vector<NamedTensor>& arrays) {
  std::vector<std::string> names;
  std::map<std::string, const Tensor*> by_name;
  for (const auto& a : arrays) {
    names.push_back(a.name);
    by_name[a.name] = &a.tensor;
  }
  // Archive order is the order savez was given the keywords.
  EXPECT_EQ(names, (std::vector<std::string>{"weights", "counts", "scalar", "empty", "half", "big",
                                             "flags", "fortran", "bytes"}));
  const Tensor& w = *by_name.at("weights");
  EXPECT_EQ(w.dtype(), DType::f4);
  EXPECT_EQ(w.shape(), (Shape{2, 3}));
  EXPECT_EQ(values(w), (std::vector<double>{0, 0.25, 0.5, 0.75, 1.0, 1.25}));

  const Tensor& c = *by_name.at("counts");
  EXPECT_EQ(c.dtype(), DType::i8);
  EXPECT_EQ(c.data<std::int64_t>()[0], -3);
  EXPECT_EQ(c.data<std::int64_t>()[3], std::int64_t{1} << 40);

  const Tensor& s = *by_name.at("scalar");
  EXPECT_EQ(s.dtype(), DType::f8);
  EXPECT_EQ(s.ndim(), 0u);
  EXPECT_EQ(values(s), (std::vector<double>{2.5}));

  const Tensor& e = *by_name.at("empty");
  EXPECT_EQ(e.dtype(), DType::f4);
  EXPECT_EQ(e.shape(), (Shape{0, 3}));

  const Tensor& h = *by_name.at("half");
  EXPECT_EQ(h.dtype(), DType::f2);
  EXPECT_EQ(values(h), (std::vector<double>{0.5, -1.0, 65504.0}));

  // Stored big-endian; read as native values.
  const Tensor& b = *by_name.at("big");
  EXPECT_EQ(b.dtype(), DType::i4);
  EXPECT_EQ(values(b), (std::vector<double>{-1500, -500, 500, 1500}));

  const Tensor& f = *by_name.at("flags");
  EXPECT_EQ(f.dtype(), DType::b1);
  EXPECT_EQ(values(f), (std::vector<double>{1, 0, 1}));

  // Stored in Fortran order; tensors are C order.
  const Tensor& fo = *by_name.at("fortran");
  EXPECT_EQ(fo.dtype(), DType::u2);
  EXPECT_EQ(fo.shape(), (Shape{2, 3}));
  EXPECT_EQ(values(fo), (std::vector<double>{0, 1, 2, 3, 4, 5}));

  const Tensor& u = *by_name.at("bytes");
  EXPECT_EQ(u.dtype(), DType::u1);
  EXPECT_EQ(values(u), (std::vector<double>{0, 127, 255}));
}

TEST(NpzSniff, ZipSignatures) {
  EXPECT_TRUE(npz::sniff(slurp(fixture("savez.npz"))));
  EXPECT_TRUE(npz::sniff(slurp(fixture("empty.npz"))));
  EXPECT_FALSE(npz::sniff("PK"));
  EXPECT_FALSE(npz::sniff("\x93NUMPY\x01\x00"));
  EXPECT_FALSE(npz::sniff(slurp(fixture("simple.safetensors"))));
}

TEST(NpzRead, Savez) { check_numpy_arrays(read_file("savez.npz")); }

TEST(NpzRead, SavezCompressed) { check_numpy_arrays(read_file("savez_compressed.npz")); }

TEST(NpzRead, FromMemory) {
  Input in = Input::from_bytes(slurp(fixture("savez_compressed.npz")), "<memory>");
  check_numpy_arrays(npz::read(in));
}

TEST(NpzRead, EmptyArchive) { EXPECT_TRUE(read_file("empty.npz").empty()); }

TEST(NpzRead, SkipsMembersThatAreNotArrays) {
  auto arrays = read_file("with_text.npz");
  ASSERT_EQ(arrays.size(), 1u);
  EXPECT_EQ(arrays[0].name, "x");
  EXPECT_EQ(arrays[0].tensor.dtype(), DType::i2);
  EXPECT_EQ(values(arrays[0].tensor), (std::vector<double>{1, 2, 3}));
}

TEST(NpzRead, DamagedArchivesAreDataErrors) {
  EXPECT_NE(read_error("truncated.npz").find("npz:"), std::string::npos);
  read_error("bad_member.npz");
  std::string bomb = read_error("bomb.npz");
  EXPECT_NE(bomb.find("zeros.npy"), std::string::npos) << bomb;
}

TEST(NpzRead, NotAnArchive) {
  for (std::string bytes : {std::string(), std::string("hello world"),
                            std::string("PK\x03\x04garbage garbage garbage", 27)}) {
    Input in = Input::from_bytes(bytes, "<memory>");
    try {
      npz::read(in);
      ADD_FAILURE() << "accepted " << bytes.size() << " bytes";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::data) << e.what();
    }
  }
}

TEST(NpzRead, EveryTruncationIsAnError) {
  // Cutting the archive anywhere must give a data error, never a crash or a
  // silently shorter result.
  std::string whole = slurp(fixture("savez_compressed.npz"));
  for (std::size_t n = 0; n < whole.size(); n += 7) {
    Input in = Input::from_bytes(whole.substr(0, n), "<memory>");
    EXPECT_THROW(npz::read(in), Error) << "cut at " << n;
  }
}

}  // namespace
}  // namespace nnkit
