// json: tensors as nested arrays, and written output.
#include "nnkit/formats/json.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <unistd.h>

namespace nnkit {
namespace {

using Json = nlohmann::json;

TEST(JsonTensor, NestedArraysFollowTheShape) {
  auto t = Tensor::from_vector<std::int32_t>({2, 3}, {1, 2, 3, 4, 5, -6});
  EXPECT_EQ(json::from_tensor(t), Json::parse("[[1, 2, 3], [4, 5, -6]]"));
  auto u = Tensor::from_vector<std::uint8_t>({2, 1, 2}, {1, 2, 3, 4});
  EXPECT_EQ(json::from_tensor(u), Json::parse("[[[1, 2]], [[3, 4]]]"));
}

TEST(JsonTensor, ZeroDimIsAScalar) {
  auto t = Tensor::from_vector<double>({}, {2.5});
  Json j = json::from_tensor(t);
  EXPECT_TRUE(j.is_number_float());
  EXPECT_EQ(j.get<double>(), 2.5);
}

TEST(JsonTensor, EmptyShapes) {
  EXPECT_EQ(json::from_tensor(Tensor(DType::f4, {0})), Json::array());
  EXPECT_EQ(json::from_tensor(Tensor(DType::f4, {2, 0})), Json::parse("[[], []]"));
  EXPECT_EQ(json::from_tensor(Tensor(DType::f4, {0, 3})), Json::array());
}

TEST(JsonTensor, IntegersStayIntegers) {
  auto t = Tensor::from_vector<std::int64_t>({2}, {std::numeric_limits<std::int64_t>::min(), 7});
  Json j = json::from_tensor(t);
  EXPECT_TRUE(j[0].is_number_integer());
  EXPECT_EQ(j[0].get<std::int64_t>(), std::numeric_limits<std::int64_t>::min());
  auto u = Tensor::from_vector<std::uint64_t>({1}, {std::numeric_limits<std::uint64_t>::max()});
  EXPECT_EQ(json::from_tensor(u).dump(), "[18446744073709551615]");
  auto i8 = Tensor::from_vector<std::int8_t>({1}, {-128});
  EXPECT_EQ(json::from_tensor(i8).dump(), "[-128]");
}

TEST(JsonTensor, BoolsAreBools) {
  auto t = Tensor::from_vector<bool>({2}, {true, false});
  EXPECT_EQ(json::from_tensor(t).dump(), "[true,false]");
}

TEST(JsonTensor, FloatsPrintShortAndNonFiniteIsNull) {
  const float inf = std::numeric_limits<float>::infinity();
  auto t = Tensor::from_vector<float>({5}, {0.1f, -2.0f, std::nanf(""), inf, -inf});
  EXPECT_EQ(json::from_tensor(t).dump(), "[0.1,-2.0,null,null,null]");
  // The short form still reads back to the same float32.
  auto v = Tensor::from_vector<float>({1}, {1.0f / 3.0f});
  EXPECT_EQ(json::from_tensor(v)[0].get<float>(), 1.0f / 3.0f);
  auto d = Tensor::from_vector<double>({2}, {0.1, std::nan("")});
  EXPECT_EQ(json::from_tensor(d).dump(), "[0.1,null]");
}

TEST(JsonTensor, HalfIsDecoded) {
  Tensor h(DType::f2, {3});
  auto* bits = reinterpret_cast<std::uint16_t*>(h.bytes());
  bits[0] = 0x3C00;  // 1.0
  bits[1] = 0xC100;  // -2.5
  bits[2] = 0x7E00;  // NaN
  EXPECT_EQ(json::from_tensor(h).dump(), "[1.0,-2.5,null]");
}

TEST(JsonWrite, TwoSpaceIndentAndNewline) {
  auto dir = std::filesystem::temp_directory_path();
  std::string path = (dir / ("nnkit_json_" + std::to_string(::getpid()) + ".json")).string();
  {
    Output out = Output::open(path);
    json::write(out, Json{{"a", 1}, {"b", {1, 2}}});
    out.commit();
  }
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::remove(path.c_str());
  EXPECT_EQ(ss.str(), "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ]\n}\n");
}

}  // namespace
}  // namespace nnkit
