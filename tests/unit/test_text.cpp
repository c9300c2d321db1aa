// Text codec: files written by numpy.savetxt (and by hand) read to the values
// numpy means, float32 correctly rounded; malformed text is a data error that
// names the line; writing round-trips every float bit for bit.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <unistd.h>

#include "nnkit/formats/npy.hpp"
#include "nnkit/formats/text.hpp"

using namespace nnkit;

namespace {

std::string fixture(const std::string& name) { return std::string(NNKIT_FIXTURES) + "/text/" + name; }

Tensor read_file(const std::string& path, DType ft = DType::f4) {
  Input in = Input::open(path);
  return text::read(in, ft);
}

Tensor read_npy_file(const std::string& path) {
  Input in = Input::open(path);
  return npy::read(in);
}

Tensor parse(std::string s, DType ft = DType::f4) {
  Input in = Input::from_bytes(std::move(s), "<memory>");
  return text::read(in, ft);
}

std::string format(const Tensor& t, bool csv = false, int precision = -1) {
  const std::string path = testing::TempDir() + "nnkit_text_" + std::to_string(::getpid()) + ".txt";
  {
    Output out = Output::open(path);
    text::write(out, t, csv, precision);
    out.commit();
  }
  Input in = Input::open(path);
  std::string s = in.read_all();
  std::remove(path.c_str());
  return s;
}

// Same dtype, shape and bits (any NaN matches any NaN).
void expect_bits(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.dtype(), want.dtype());
  ASSERT_EQ(got.shape(), want.shape());
  const std::size_t w = got.itemsize();
  for (std::int64_t i = 0; i < want.numel(); ++i) {
    if (is_float(want.dtype()) && std::isnan(want.get(i))) {
      ASSERT_TRUE(std::isnan(got.get(i))) << "element " << i;
      continue;
    }
    ASSERT_EQ(std::memcmp(got.bytes() + i * w, want.bytes() + i * w, w), 0)
        << "element " << i << ": got " << got.get(i) << ", want " << want.get(i);
  }
}

// Reading s fails with a data error whose message contains `part`.
void expect_data_error(const std::string& s, const std::string& part) {
  try {
    parse(s);
    ADD_FAILURE() << "accepted: " << s;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::data) << e.what();
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

}  // namespace

struct TextCase {
  const char* file;
  const char* expected;  // base name of the .npy files
};

class TextFixture : public testing::TestWithParam<TextCase> {};

TEST_P(TextFixture, Float32MatchesCorrectlyRoundedReference) {
  const TextCase c = GetParam();
  expect_bits(read_file(fixture(c.file)), read_npy_file(fixture(std::string(c.expected) + ".f4.npy")));
}

TEST_P(TextFixture, Float64MatchesPython) {
  const TextCase c = GetParam();
  expect_bits(read_file(fixture(c.file), DType::f8),
              read_npy_file(fixture(std::string(c.expected) + ".f8.npy")));
}

INSTANTIATE_TEST_SUITE_P(Text, TextFixture,
                         testing::Values(TextCase{"savetxt_e18.txt", "savetxt_e18"},
                                         TextCase{"savetxt_g9.csv", "savetxt_g9"},
                                         TextCase{"savetxt_mixed.csv", "savetxt_mixed"},
                                         TextCase{"column.txt", "column"},
                                         TextCase{"comments_crlf.csv", "comments_crlf"},
                                         TextCase{"special.txt", "special"}));

TEST(TextRead, HardFloat32CasesAreRoundedOnce) {
  // Decimals a hair above a float32 midpoint: going through float64 first
  // (as numpy does) lands on the midpoint and rounds down; correct is up.
  expect_bits(read_file(fixture("hard_f32.txt")), read_npy_file(fixture("hard_f32.f4.npy")));
}

TEST(TextRead, IntegersAreInt64) {
  expect_bits(read_file(fixture("savetxt_int.txt")), read_npy_file(fixture("savetxt_int.i8.npy")));
}

TEST(TextRead, ShapeCommentRestoresRank) {
  expect_bits(read_file(fixture("shape3d.txt")), read_npy_file(fixture("shape3d.f4.npy")));
  // A shape that does not match the values is just a comment.
  EXPECT_EQ(parse("# shape: 4,4\n1 2\n3 4\n").shape(), (Shape{2, 2}));
  EXPECT_EQ(parse("# shape: bogus\n1 2\n3 4\n").shape(), (Shape{2, 2}));
  EXPECT_EQ(parse("#shape:4\n1 2\n3 4\n").shape(), (Shape{4}));
  EXPECT_EQ(parse("# shape: 99999999999,99999999999,99999999999\n1\n").shape(), Shape{});
}

TEST(TextRead, Shapes) {
  Tensor t = parse("3.5\n");
  EXPECT_EQ(t.dtype(), DType::f4);
  EXPECT_EQ(t.shape(), Shape{});
  EXPECT_EQ(t.get(0), 3.5);
  t = parse("1 2 3");  // no final newline
  EXPECT_EQ(t.dtype(), DType::i8);
  EXPECT_EQ(t.shape(), (Shape{3}));
  EXPECT_EQ(parse("1\n2\n").shape(), (Shape{2, 1}));
  EXPECT_EQ(parse("1,2\n3,4\n5,6\n").shape(), (Shape{3, 2}));
  EXPECT_EQ(parse("  7  # seven\n").shape(), Shape{});
}

TEST(TextRead, Separators) {
  const Tensor want = Tensor::from_vector<std::int64_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  for (const char* s : {"1 2 3\n4 5 6\n", "1,2,3\n4,5,6\n", "1, 2, 3\n4 ,5 , 6\n", "1\t2\t3\r\n4\t5\t6\r\n",
                        "1 2,3\n\n# c\n4,5 6 # end\n", "\xEF\xBB\xBF" "1,2,3\n4,5,6"})
    expect_bits(parse(s), want);
}

TEST(TextRead, Tokens) {
  const Tensor t = parse("+1.5 -2 .25 5. 1e3 1E-2 +7 NaN -INF Infinity -0\n");
  EXPECT_EQ(t.dtype(), DType::f4);
  const float* v = t.data<float>();
  EXPECT_EQ(v[0], 1.5f);
  EXPECT_EQ(v[1], -2.0f);
  EXPECT_EQ(v[2], 0.25f);
  EXPECT_EQ(v[3], 5.0f);
  EXPECT_EQ(v[4], 1000.0f);
  EXPECT_EQ(v[5], 0.01f);
  EXPECT_EQ(v[6], 7.0f);
  EXPECT_TRUE(std::isnan(v[7]));
  EXPECT_EQ(v[8], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[9], std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::signbit(v[10]));  // parsed as float once the file is float
  EXPECT_EQ(parse("-0 1").get(0), 0.0);  // an all-integer file: int64 zero
}

TEST(TextRead, FloatTypes) {
  const Tensor d = parse("0.1 1e300\n", DType::f8);
  EXPECT_EQ(d.dtype(), DType::f8);
  EXPECT_EQ(d.data<double>()[0], 0.1);
  EXPECT_EQ(d.data<double>()[1], 1e300);
  const Tensor f = parse("0.1 1e300\n");
  EXPECT_EQ(f.data<float>()[0], 0.1f);
  EXPECT_TRUE(std::isinf(f.data<float>()[1]));  // overflow is inf, as numpy's float32
  const Tensor h = parse("0.1 65504 65520 1e-8\n", DType::f2);
  EXPECT_EQ(h.dtype(), DType::f2);
  const auto* hb = reinterpret_cast<const std::uint16_t*>(h.bytes());
  EXPECT_EQ(hb[0], 0x2e66);  // numpy: np.float16(0.1).view(np.uint16)
  EXPECT_EQ(hb[1], 0x7bff);
  EXPECT_EQ(hb[2], 0x7c00);
  EXPECT_EQ(hb[3], 0x0000);
  try {
    parse("1\n", DType::i4);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
  }
}

TEST(TextRead, HalfIsRoundedOnceFromTheDecimal) {
  // 1 + 2^-11 + 2^-40 is just above the midpoint between the halves 1 and
  // 1 + 2^-10: correct rounding is up, a float32 detour rounds to even (down).
  const Tensor h = parse("1.000488281250000909494701772928237915039062\n", DType::f2);
  EXPECT_EQ(reinterpret_cast<const std::uint16_t*>(h.bytes())[0], 0x3c01);
}

TEST(TextRead, IntegerRange) {
  expect_bits(parse("9223372036854775807 -9223372036854775808\n"),
              Tensor::from_vector<std::int64_t>({2}, {INT64_MAX, INT64_MIN}));
  // Beyond int64 but non-negative: uint64 keeps them exact.
  expect_bits(parse("18446744073709551615 1\n"),
              Tensor::from_vector<std::uint64_t>({2}, {UINT64_MAX, 1}));
  expect_data_error("18446744073709551616 1\n", "out of range for int64");
  expect_data_error("1\n-9223372036854775809\n", "line 2: integer '-9223372036854775809' is out of range");
  expect_data_error("18446744073709551615 -1\n", "line 1: integer '-1'");
  // With a float anywhere the file is float and big integers are fine.
  const Tensor f = parse("100000000000000000000000000000 0.5\n");
  EXPECT_EQ(f.dtype(), DType::f4);
  EXPECT_EQ(f.data<float>()[0], 1e29f);
}

TEST(TextRead, FixtureErrors) {
  auto check = [](const std::string& file, const std::string& part) {
    try {
      read_file(fixture(file));
      ADD_FAILURE() << file << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::data);
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  };
  check("ragged.txt", "text: line 3 has 2 values, expected 3");
  check("bad_token.txt", "text: line 3: bad number 'x5'");
  check("no_numbers.txt", "no numbers");
}

TEST(TextRead, MalformedText) {
  expect_data_error("", "no numbers");
  expect_data_error("\n\n  \r\n", "no numbers");
  expect_data_error("1,,2\n", "line 1 has an empty value");
  expect_data_error(",1\n", "empty value");
  expect_data_error("1,2,\n", "ends with ','");
  expect_data_error("1 2\n3 4 5\n", "line 2 has 3 values, expected 2");
  expect_data_error("1.5 2\n3\n", "line 2 has 1 values, expected 2");
  expect_data_error("0x10\n", "bad number '0x10'");
  expect_data_error("1.5.2\n", "bad number");
  expect_data_error("1e\n", "bad number");
  expect_data_error("e5\n", "bad number");
  expect_data_error("-\n", "bad number");
  expect_data_error(".\n", "bad number");
  expect_data_error("nan(1)\n", "bad number");
  expect_data_error("1;2\n", "bad number '1;2'");
  expect_data_error("1.5 abc\n", "line 1: bad number 'abc'");
  expect_data_error(std::string("1 \x01\xff") + "\n", "'\\x01\\xff'");
  // A long token is cut short in the message.
  try {
    parse(std::string(5000, 'z'));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_LT(std::string(e.what()).size(), 200u) << e.what();
    EXPECT_NE(std::string(e.what()).find("zzz...'"), std::string::npos) << e.what();
  }
}

TEST(TextWrite, Layouts) {
  EXPECT_EQ(format(Tensor::from_vector<float>({}, {1.5f})), "1.5\n");
  EXPECT_EQ(format(Tensor::from_vector<std::int64_t>({3}, {1, -2, 3})), "1 -2 3\n");
  EXPECT_EQ(format(Tensor::from_vector<std::int64_t>({3}, {1, -2, 3}), true), "1,-2,3\n");
  EXPECT_EQ(format(Tensor::from_vector<std::int32_t>({2, 2}, {1, 2, 3, 4}), true), "1,2\n3,4\n");
  EXPECT_EQ(format(Tensor::from_vector<std::uint8_t>({3, 1}, {7, 8, 9})), "7\n8\n9\n");
  EXPECT_EQ(format(Tensor::from_vector<std::int8_t>({2, 1, 2}, {1, 2, 3, 4})),
            "# shape: 2,1,2\n1 2\n3 4\n");
  // Shapes that the plain layout would lose get the comment too.
  EXPECT_EQ(format(Tensor::from_vector<std::int64_t>({1, 3}, {1, 2, 3})), "# shape: 1,3\n1 2 3\n");
  EXPECT_EQ(format(Tensor::from_vector<std::int64_t>({1}, {5})), "# shape: 1\n5\n");
  // Empty tensors are just the shape.
  EXPECT_EQ(format(Tensor(DType::f4, {0})), "# shape: 0\n");
  EXPECT_EQ(format(Tensor(DType::f4, {2, 0, 3}), true), "# shape: 2,0,3\n");
}

TEST(TextWrite, Values) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(format(Tensor::from_vector<float>({6}, {0.1f, 100.0f, -0.0f, 1e20f, 3.4028235e38f, 1e-45f})),
            "0.1 100.0 -0.0 1e+20 3.4028235e+38 1e-45\n");
  EXPECT_EQ(format(Tensor::from_vector<float>({3}, {std::nanf(""), inf, -inf})), "nan inf -inf\n");
  EXPECT_EQ(format(Tensor::from_vector<float>({3}, {-std::nanf(""), inf, -inf}), true),
            "nan,inf,-inf\n");
  EXPECT_EQ(format(Tensor::from_vector<double>({2}, {0.1, 1.0 / 3})), "0.1 0.3333333333333333\n");
  EXPECT_EQ(format(Tensor::from_vector<float>({2}, {3.14159265f, 100.0f}), false, 3), "3.14 100.0\n");
  EXPECT_EQ(format(Tensor::from_vector<double>({2}, {123456.0, 1e-7}), false, 2), "1.2e+05 1e-07\n");
  EXPECT_EQ(format(Tensor::from_vector<bool>({3}, {true, false, true})), "1 0 1\n");
  EXPECT_EQ(format(Tensor::from_vector<std::uint64_t>({2}, {UINT64_MAX, 0})),
            "18446744073709551615 0\n");
  EXPECT_EQ(format(Tensor::from_vector<std::int64_t>({2}, {INT64_MIN, 3}), false, 2),
            "-9223372036854775808 3\n");  // precision does not touch integers
  Tensor h(DType::f2, {4});
  auto* hb = reinterpret_cast<std::uint16_t*>(h.bytes());
  hb[0] = float_to_half(0.1f);
  hb[1] = 0x7bff;  // 65504
  hb[2] = 0x0001;  // smallest subnormal, 5.96e-8
  hb[3] = 0x3c00;  // 1
  EXPECT_EQ(format(h), "0.1 65500.0 6e-08 1.0\n");
}

TEST(TextWrite, IntegerDtypesRoundTrip) {
  const Tensor t = Tensor::from_vector<std::int16_t>({2, 3}, {-32768, 0, 32767, 1, -1, 2});
  expect_bits(parse(format(t)), t.astype(DType::i8));
  const Tensor u = Tensor::from_vector<std::uint64_t>({2}, {UINT64_MAX, 12});
  expect_bits(parse(format(u, true)), u);
}

namespace {

// Random bit patterns: every exponent, subnormals, and (unless finite_only)
// infinities and NaNs.
template <class Bits, class F>
Tensor random_floats(DType dtype, Shape shape, unsigned seed, bool finite_only) {
  Tensor t(dtype, std::move(shape));
  std::mt19937_64 gen(seed);
  auto* p = reinterpret_cast<Bits*>(t.bytes());
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    F f;
    do {
      const auto b = static_cast<Bits>(gen());
      std::memcpy(&f, &b, sizeof b);
      p[i] = b;
    } while (finite_only && !std::isfinite(f));
  }
  return t;
}

}  // namespace

TEST(TextRoundTrip, Float32Bits) {
  Tensor t = random_floats<std::uint32_t, float>(DType::f4, {20000, 5}, 1, false);
  float* v = t.data<float>();
  const float specials[] = {0.0f, -0.0f, 1e-45f, -1e-45f, 1.17549435e-38f, 3.4028235e38f,
                            -3.4028235e38f, 1.0f, 0.1f, 16777217.0f, 100.0f, 1e10f};
  for (std::size_t i = 0; i < sizeof specials / sizeof specials[0]; ++i) v[i] = specials[i];
  expect_bits(parse(format(t)), t);
  expect_bits(parse(format(t, true)), t);
}

TEST(TextRoundTrip, Float64Bits) {
  Tensor t = random_floats<std::uint64_t, double>(DType::f8, {10000, 4}, 2, false);
  double* v = t.data<double>();
  v[0] = 5e-324;
  v[1] = 1.7976931348623157e308;
  v[2] = 0.1;
  v[3] = 1e23;
  expect_bits(parse(format(t), DType::f8), t);
  expect_bits(parse(format(t.reshaped({2, 5, 4000}), true), DType::f8), t.reshaped({2, 5, 4000}));
}

TEST(TextRoundTrip, EveryFloat16) {
  Tensor t(DType::f2, {256, 256});
  auto* p = reinterpret_cast<std::uint16_t*>(t.bytes());
  for (std::uint32_t i = 0; i < 65536; ++i) p[i] = static_cast<std::uint16_t>(i);
  expect_bits(parse(format(t), DType::f2), t);
  expect_bits(parse(format(t, true), DType::f2), t);
}

TEST(TextRoundTrip, ExplicitPrecisionIsPrintf) {
  const Tensor t = Tensor::from_vector<double>({3}, {2.0 / 3, -1e-10 / 3, 12345.678});
  for (int p : {1, 4, 9, 17}) {
    const Tensor back = parse(format(t, false, p), DType::f8);
    for (int i = 0; i < 3; ++i) {
      char want[64];
      std::snprintf(want, sizeof want, "%.*g", p, t.get(i));
      EXPECT_EQ(back.get(i), std::strtod(want, nullptr)) << p;
    }
  }
  // Absurd precisions are clamped, not overflowed; they still round-trip.
  expect_bits(parse(format(t, false, 100000), DType::f8), t);
  const Tensor big = Tensor::from_vector<double>({2}, {1e119, -2.5e-300});
  expect_bits(parse(format(big, true, 100000), DType::f8), big);
}

TEST(TextRoundTrip, MillionsOfValuesAreFast) {
  // Two million float32 through text and back: a smoke test for throughput.
  const Tensor t = random_floats<std::uint32_t, float>(DType::f4, {1000000, 2}, 3, true);
  const auto start = std::chrono::steady_clock::now();
  const std::string s = format(t, true);
  const Tensor back = parse(s);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  expect_bits(back, t);
  EXPECT_LT(secs, 30.0);  // generous: shared machines; typically well under a second
  RecordProperty("seconds", std::to_string(secs));
}

TEST(TextRead, RandomJunkNeverCrashes) {
  // Strings built from the characters the scanner cares about: each is either
  // a tensor or a data error, never anything else.
  const char alphabet[] = "0123456789+-.eEnaif, \t\r\n#xs:";
  std::mt19937 gen(5);
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string s(gen() % 24, ' ');
    for (char& c : s) c = alphabet[gen() % (sizeof alphabet - 1)];
    try {
      const Tensor t = parse(s);
      EXPECT_GT(t.numel(), 0) << s;
      ++accepted;
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ExitCode::data) << s;
    }
  }
  EXPECT_GT(accepted, 100);
}
