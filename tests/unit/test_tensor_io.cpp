#include <gtest/gtest.h>

#include "nnkit/formats/npy.hpp"
#include "nnkit/formats/tensor_io.hpp"

using namespace nnkit;

TEST(TensorIo, DetectsFormatsByFirstBytes) {
  Tensor t = Tensor::from_vector<float>({2}, {1, 2});
  Input npy = Input::from_bytes(npy::to_bytes(t), "a");
  EXPECT_EQ(detect_format(npy), Format::npy);
  Input png = Input::from_bytes(std::string("\x89PNG\r\n\x1a\n", 8) + std::string(8, '\0'), "p");
  EXPECT_EQ(detect_format(png), Format::png);
  Input zip = Input::from_bytes(std::string("PK\x03\x04", 4) + std::string(20, '\0'), "z");
  EXPECT_EQ(detect_format(zip), Format::npz);
  Input st = Input::from_bytes(std::string("\x02\0\0\0\0\0\0\0{}", 10), "s");
  EXPECT_EQ(detect_format(st), Format::safetensors);
  Input txt = Input::from_bytes("1 2 3\n", "t");
  EXPECT_EQ(detect_format(txt), Format::txt);
}

TEST(TensorIo, OutputFormatPrecedence) {
  EXPECT_EQ(output_format("csv", "x.npy", false), Format::csv);  // --to wins
  EXPECT_EQ(output_format("", "x.safetensors", true), Format::safetensors);
  EXPECT_EQ(output_format("", "dir.v2/x.png", false), Format::png);
  EXPECT_EQ(output_format("", "noext", false), Format::npy);
  EXPECT_EQ(output_format("", "-", false), Format::npy);  // a pipe
  EXPECT_EQ(output_format("", "-", true), Format::txt);   // a terminal
  EXPECT_THROW(output_format("xml", "-", false), Error);
}

TEST(TensorIo, ReadsEveryTensorOfAStream) {
  Tensor a = Tensor::from_vector<float>({2}, {1, 2});
  Tensor b = Tensor::from_vector<std::int64_t>({1, 3}, {7, 8, 9});
  Input in = Input::from_bytes(npy::to_bytes(a) + npy::to_bytes(b), "stream");
  auto all = read_tensors(in);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].tensor.shape(), (Shape{1, 3}));
  EXPECT_EQ(all[1].tensor.data<std::int64_t>()[2], 9);
  Input in2 = Input::from_bytes(npy::to_bytes(a) + npy::to_bytes(b), "stream");
  EXPECT_THROW(read_one_tensor(in2), Error);
  Input empty = Input::from_bytes("", "empty");
  EXPECT_THROW(read_tensors(empty), Error);
}
