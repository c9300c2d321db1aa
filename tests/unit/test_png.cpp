// PNG codec: fixtures written by tests/fixtures/make_png_text.py (a hand-made
// encoder, independent of libpng) decode to the pixels saved beside them;
// broken files are data errors; writes read back unchanged.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <unistd.h>

#include "nnkit/formats/npy.hpp"
#include "nnkit/formats/png.hpp"

using namespace nnkit;

namespace {

std::string fixture(const std::string& name) { return std::string(NNKIT_FIXTURES) + "/png/" + name; }

Tensor read_png_file(const std::string& path) {
  Input in = Input::open(path);
  return png::read(in);
}

Tensor read_npy_file(const std::string& path) {
  Input in = Input::open(path);
  return npy::read(in);
}

Tensor read_png_bytes(std::string bytes) {
  Input in = Input::from_bytes(std::move(bytes), "<memory>");
  return png::read(in);
}

std::string slurp(const std::string& path) {
  Input in = Input::open(path);
  return in.read_all();
}

// Encodes t through a real Output (file, committed) and returns the bytes.
std::string encode(const Tensor& t) {
  const std::string path =
      testing::TempDir() + "nnkit_png_" + std::to_string(::getpid()) + ".png";
  {
    Output out = Output::open(path);
    png::write(out, t);
    out.commit();
  }
  std::string bytes = slurp(path);
  std::remove(path.c_str());
  return bytes;
}

void expect_same(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.dtype(), want.dtype());
  ASSERT_EQ(got.shape(), want.shape());
  ASSERT_EQ(got.nbytes(), want.nbytes());
  for (std::int64_t i = 0; i < want.numel(); ++i)
    ASSERT_EQ(got.get(i), want.get(i)) << "element " << i;
}

// A data error whose message contains `part`.
void expect_data_error(const std::string& file, const std::string& part) {
  try {
    read_png_file(fixture(file));
    FAIL() << file << " was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::data) << e.what();
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("png: "), std::string::npos) << e.what();
  }
}

Tensor random_image(DType dtype, Shape shape, unsigned seed) {
  Tensor t(dtype, std::move(shape));
  std::mt19937 gen(seed);
  if (dtype == DType::u1) {
    auto* p = t.data<std::uint8_t>();
    for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<std::uint8_t>(gen());
  } else {
    auto* p = t.data<std::uint16_t>();
    for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<std::uint16_t>(gen());
  }
  return t;
}

}  // namespace

class PngFixture : public testing::TestWithParam<const char*> {};

TEST_P(PngFixture, DecodesToExpectedPixels) {
  const std::string name = GetParam();
  const Tensor got = read_png_file(fixture(name + ".png"));
  const Tensor want = read_npy_file(fixture(name + ".npy"));
  expect_same(got, want);
}

INSTANTIATE_TEST_SUITE_P(Png, PngFixture,
                         testing::Values("gray8", "gray16", "ga8", "ga16", "rgb8", "rgb16",
                                         "rgba8", "rgba16", "rgb8_gamma", "gray1", "gray2",
                                         "gray4", "palette8", "palette4_trns", "interlaced_rgb8",
                                         "interlaced_gray16", "interlaced_gray1", "one_pixel",
                                         "bad_text_crc"));

TEST(PngRead, ShapesAndTypes) {
  const Tensor g16 = read_png_file(fixture("gray16.png"));
  EXPECT_EQ(g16.dtype(), DType::u2);
  EXPECT_EQ(g16.shape(), (Shape{4, 6, 1}));
  EXPECT_EQ(g16.data<std::uint16_t>()[0], 0x0102);  // big-endian in the file
  const Tensor pal = read_png_file(fixture("palette4_trns.png"));
  EXPECT_EQ(pal.dtype(), DType::u1);
  EXPECT_EQ(pal.shape(), (Shape{7, 5, 4}));
  const Tensor one = read_png_file(fixture("one_pixel.png"));
  EXPECT_EQ(one.shape(), (Shape{1, 1, 4}));
  EXPECT_EQ(one.get(3), 40);
}

TEST(PngRead, Sniff) {
  EXPECT_TRUE(png::sniff(slurp(fixture("gray8.png"))));
  EXPECT_TRUE(png::sniff(std::string("\x89PNG\r\n\x1a\n", 8)));
  EXPECT_FALSE(png::sniff(std::string("\x89PNG\r\n\x1a", 7)));
  EXPECT_FALSE(png::sniff(slurp(fixture("bad_signature.png"))));
  EXPECT_FALSE(png::sniff("\x93NUMPY"));
  EXPECT_FALSE(png::sniff(""));
}

TEST(PngRead, BrokenFilesAreDataErrors) {
  expect_data_error("bad_crc.png", "CRC");
  expect_data_error("truncated_idat.png", "truncated");
  expect_data_error("truncated_header.png", "truncated");
  expect_data_error("missing_iend.png", "truncated");
  expect_data_error("bad_signature.png", "not a PNG");
  expect_data_error("bad_deflate.png", "png: ");
  expect_data_error("absurd_width.png", "width exceeds user limit");
  expect_data_error("absurd_size.png", "4 GiB");
  expect_data_error("bomb_claim.png", "cannot hold");
}

TEST(PngRead, MaximallyCompressedImageIsAccepted) {
  // 4 MB of pixels in a 4 KB file: near deflate's limit, yet genuine.
  const Tensor t = read_png_file(fixture("zeros_2000.png"));
  ASSERT_EQ(t.shape(), (Shape{2000, 2000, 1}));
  const auto* p = t.data<std::uint8_t>();
  for (std::int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(p[i], 0) << i;
}

TEST(PngRead, ErrorNamesTheInput) {
  try {
    read_png_file(fixture("bad_crc.png"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad_crc.png"), std::string::npos) << e.what();
  }
}

TEST(PngRead, EveryTruncationIsADataError) {
  // Every prefix of a valid file fails cleanly (no crash, no partial image).
  const std::string whole = slurp(fixture("interlaced_rgb8.png"));
  for (std::size_t n = 0; n < whole.size(); ++n) {
    try {
      read_png_bytes(whole.substr(0, n));
      FAIL() << "prefix of " << n << " bytes accepted";
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ExitCode::data) << e.what();
    }
  }
  EXPECT_EQ(read_png_bytes(whole).shape(), (Shape{13, 11, 3}));
}

TEST(PngRead, FlippedBytesNeverCrash) {
  // Flip every byte of a small file in turn: either a data error or an image.
  const std::string whole = slurp(fixture("palette4_trns.png"));
  int errors = 0;
  for (std::size_t i = 8; i < whole.size(); ++i) {
    std::string bad = whole;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    try {
      const Tensor t = read_png_bytes(bad);
      EXPECT_EQ(t.ndim(), 3u);
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ExitCode::data) << e.what();
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
}

class PngRoundTrip : public testing::TestWithParam<std::tuple<DType, int>> {};

TEST_P(PngRoundTrip, WriteThenReadIsIdentity) {
  const auto [dtype, channels] = GetParam();
  const Tensor t = random_image(dtype, {17, 23, channels}, 7u + static_cast<unsigned>(channels));
  const std::string bytes = encode(t);
  ASSERT_TRUE(png::sniff(bytes));
  expect_same(read_png_bytes(bytes), t);
}

INSTANTIATE_TEST_SUITE_P(Png, PngRoundTrip,
                         testing::Combine(testing::Values(DType::u1, DType::u2),
                                          testing::Values(1, 2, 3, 4)));

TEST(PngWrite, TwoDimensionalIsGray) {
  const Tensor t = random_image(DType::u2, {5, 9}, 3);
  const Tensor back = read_png_bytes(encode(t));
  EXPECT_EQ(back.shape(), (Shape{5, 9, 1}));
  expect_same(back.reshaped({5, 9}), t);
}

TEST(PngWrite, FileIsBigEndianPng) {
  // Check the bytes libpng wrote: IHDR fields and a 16-bit sample's order.
  Tensor t(DType::u2, {1, 1, 1});
  t.data<std::uint16_t>()[0] = 0xABCD;
  const std::string bytes = encode(t);
  ASSERT_GT(bytes.size(), 33u);
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  EXPECT_EQ(static_cast<unsigned char>(bytes[24]), 16);  // bit depth
  EXPECT_EQ(static_cast<unsigned char>(bytes[25]), 0);   // gray
  EXPECT_EQ(read_png_bytes(bytes).data<std::uint16_t>()[0], 0xABCD);
}

TEST(PngWrite, LargeImageRoundTrips) {
  const Tensor t = random_image(DType::u1, {300, 257, 3}, 11);
  expect_same(read_png_bytes(encode(t)), t);
}

TEST(PngWrite, RefusesWhatPngCannotHold) {
  const std::string path = testing::TempDir() + "nnkit_png_refused.png";
  Output out = Output::open(path);
  auto refused = [&](const Tensor& t, const std::string& part) {
    try {
      png::write(out, t);
      ADD_FAILURE() << "accepted " << shape_str(t.shape());
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::usage) << e.what();
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  refused(Tensor(DType::f4, {3}),
          "png: can only write uint8 or uint16 [H,W] or [H,W,C<=4] tensors, got float32 [3]");
  refused(Tensor(DType::u1, {2, 2, 5}), "got uint8 [2, 2, 5]");
  refused(Tensor(DType::u1, {4}), "got uint8 [4]");
  refused(Tensor(DType::i2, {2, 2}), "got int16");
  refused(Tensor(DType::u1, {1, 2, 2, 1}), "[1, 2, 2, 1]");
  refused(Tensor(DType::u1, {0, 4, 3}), "empty");
  refused(Tensor(DType::u1, {4, 0}), "empty");
  refused(Tensor(DType::u1, {2, 2, 0}), "can only write");
}
