// Rotary position embeddings (rope-embed's core): every case of the PyTorch
// reference in tests/fixtures/rope (transformers' formulas in float64: every
// scaling type, both layouts, partial rotation, offsets, explicit and
// broadcast positions, float16/64, several position axes), the accuracy at
// large positions next to transformers' float32, the properties that make
// RoPE what it is (scores depend on m - n only, the inverse undoes, layout
// conversion keeps q.k), threads and in-place calls, and every refusal.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "nnkit/formats/npy.hpp"
#include "nnkit/ops/rope.hpp"
#include "nnkit/parallel.hpp"
#include "error_of.hpp"

using namespace nnkit;
using nnkit::testing::code_of;
using nlohmann::json;

namespace {

const std::string kDir = std::string(NNKIT_FIXTURES) + "/rope/";

Tensor load(const std::string& name) {
  Input in = Input::open(kDir + name);
  return npy::read(in);
}

json cases() {
  std::ifstream f(kDir + "cases.json");
  return json::parse(f)["cases"];
}

// The parameters of a fixture case, as the tool would set them.
struct Case {
  rope::Params p;
  rope::Positions pos;
  int seq_axis = -2;
};

Case make_case(const json& c, const Tensor& x) {
  const json& j = c["params"];
  Case k;
  rope::Params& p = k.p;
  p.base = j.value("base", 10000.0);
  p.layout = rope::parse_layout(j.value("layout", "half"));
  p.scaling = rope::parse_scaling(j.value("scaling", "none"));
  const std::int64_t dim = x.shape().back();
  p.rotary_dim = j.value("rotary_dim", static_cast<std::int64_t>(static_cast<double>(dim) * j.value("partial", 1.0)));
  p.factor = j.value("factor", 1.0);
  p.original_max_pos = j.value("original_max_pos", 0);
  p.beta_fast = j.value("beta_fast", 32.0);
  p.beta_slow = j.value("beta_slow", 1.0);
  p.mscale = j.value("mscale", 0.0);
  p.mscale_all_dim = j.value("mscale_all_dim", 0.0);
  p.truncate = j.value("truncate", true);
  p.low_freq_factor = j.value("low_freq_factor", 1.0);
  p.high_freq_factor = j.value("high_freq_factor", 4.0);
  if (j.contains("attention_factor")) p.attention_factor = j["attention_factor"].get<double>();
  for (const char* key : {"short_factor", "long_factor"}) {
    if (!j.contains(key)) continue;
    const Tensor t = load(j[key]);
    auto& v = std::string(key) == "short_factor" ? p.short_factor : p.long_factor;
    for (std::int64_t i = 0; i < t.numel(); ++i) v.push_back(t.get(i));
  }
  if (j.contains("mrope_section")) p.mrope_section = j["mrope_section"].get<std::vector<std::int64_t>>();
  const std::int64_t offset = j.value("offset", 0);
  k.seq_axis = j.value("seq_axis", -2);
  if (j.contains("grid")) {
    const auto grid = j["grid"].get<std::vector<std::int64_t>>();
    p.axes = static_cast<int>(grid.size());
    k.pos = rope::grid_positions(grid, offset);
  } else {
    p.axes = j.value("axes", 1);
    if (j.contains("positions"))
      k.pos = rope::tensor_positions(load(j["positions"]), p.axes, offset);
    else
      k.pos = rope::sequence_positions(x.dim(k.seq_axis < 0 ? x.ndim() + k.seq_axis : k.seq_axis), offset);
  }
  return k;
}

std::vector<double> as_doubles(const Tensor& t) {
  std::vector<double> v(static_cast<std::size_t>(t.numel()));
  for (std::int64_t i = 0; i < t.numel(); ++i) v[i] = t.get(i);
  return v;
}

// The partner channel of channel i in a rotated pair, or -1 for pass-through.
std::int64_t partner(const rope::Params& p, std::int64_t i) {
  const std::int64_t R = p.rotary_dim;
  if (i >= R) return -1;
  if (p.layout == rope::Layout::interleaved) return i ^ 1;
  const std::int64_t block = p.mrope_section.empty() ? R / p.axes : R;  // half pairs within each part
  const std::int64_t b = i / block * block, h = block / 2, w = i - b;
  return b + (w < h ? w + h : w - h);
}

// |got - want| <= rtol * |want pair| at every channel: "relative" for a
// rotation means relative to the norm of the pair it turned (a lone channel
// of a pair can be near zero). Pass-through channels compare to |want|.
void expect_close(const Tensor& got, const Tensor& want, const rope::Params& p, double rtol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<double> g = as_doubles(got), w = as_doubles(want);
  const std::int64_t dim = got.shape().back();
  int reported = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    const std::int64_t c = static_cast<std::int64_t>(i) % dim, q = partner(p, c);
    const double norm = q < 0 ? std::abs(w[i]) : std::hypot(w[i], w[i - c + q]);
    const double tol = rtol * std::max(norm, 1e-30);
    if (!(std::abs(g[i] - w[i]) <= tol) && reported++ < 5)
      ADD_FAILURE() << what << ": element " << i << " is " << g[i] << ", want " << w[i] << " (tolerance " << tol << ")";
  }
}

Tensor random_tensor(Shape shape, unsigned seed, DType dt = DType::f4) {
  Tensor t(DType::f8, std::move(shape));
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = normal(rng);
  return dt == DType::f8 ? t : t.astype(dt);
}

rope::Params plain(std::int64_t R, rope::Layout layout = rope::Layout::half) {
  rope::Params p;
  p.rotary_dim = R;
  p.layout = layout;
  return p;
}

rope::Positions at(std::vector<std::int64_t> positions) {
  const auto n = static_cast<std::int64_t>(positions.size());
  return rope::tensor_positions(Tensor::from_vector<std::int64_t>({n}, positions), 1, 0);
}

double dot(const Tensor& a, const Tensor& b) {
  double s = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) s += a.get(i) * b.get(i);
  return s;
}

}  // namespace

// ---------------------------------------------------------------- the PyTorch reference

TEST(RopeFixtures, EveryCaseMatchesTransformersInFloat64) {
  const json all = cases();
  ASSERT_GE(all.size(), 25u);
  for (const json& c : all) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    const Tensor x = load(c["input"]);
    const Case k = make_case(c, x);
    const rope::Rope r(k.p, k.pos);
    // Frequencies and attention factor: the float64 formulas.
    const std::vector<double> want_f = as_doubles(load(c["inv_freq"]));
    ASSERT_EQ(r.freqs().inv_freq.size(), want_f.size());
    for (std::size_t j = 0; j < want_f.size(); ++j)
      EXPECT_NEAR(r.freqs().inv_freq[j], want_f[j], 1e-13 * want_f[j]) << "inv_freq " << j;
    EXPECT_NEAR(r.freqs().attention_factor, c["attention_factor"].get<double>(), 1e-14);
    // The rotation, in the input's dtype: 1e-6 in float32 and float64 (computed
    // in float32), one float16 rounding for float16.
    const Tensor y = r.apply(x, k.seq_axis);
    EXPECT_EQ(y.dtype(), x.dtype());
    const double rtol = x.dtype() == DType::f2 ? 1.0 / 1024 : 1e-6;
    expect_close(y, load(c["expected"]), k.p, rtol, name);
  }
}

TEST(RopeFixtures, CoversEveryScalingLayoutAndPositionKind) {
  std::set<std::string> scalings, layouts, kinds;
  for (const json& c : cases()) {
    const json& p = c["params"];
    scalings.insert(p.value("scaling", "none"));
    layouts.insert(p.value("layout", "half"));
    for (const char* key : {"rotary_dim", "partial", "offset", "positions", "grid", "mrope_section", "seq_axis"})
      if (p.contains(key)) kinds.insert(key);
  }
  EXPECT_EQ(scalings, (std::set<std::string>{"none", "linear", "dynamic", "yarn", "llama3", "longrope"}));
  EXPECT_EQ(layouts, (std::set<std::string>{"half", "interleaved"}));
  EXPECT_EQ(kinds.size(), 7u);
}

TEST(RopeFixtures, CosSinTablesAreTransformers) {
  const rope::Rope r(plain(16), rope::sequence_positions(8, 0));
  const Tensor c = r.cos_table(), s = r.sin_table(), wc = load("default_half.cos.npy"), ws = load("default_half.sin.npy");
  ASSERT_EQ(c.shape(), (Shape{8, 16}));
  ASSERT_EQ(wc.shape(), c.shape());
  for (std::int64_t i = 0; i < c.numel(); ++i) {
    EXPECT_NEAR(c.get(i), wc.get(i), 1e-7) << i;  // one float32 rounding of a value in [-1, 1]
    EXPECT_NEAR(s.get(i), ws.get(i), 1e-7) << i;
  }
}

TEST(RopeFixtures, InterleavedTablesRepeatEachFrequency) {
  const rope::Rope r(plain(8, rope::Layout::interleaved), rope::sequence_positions(3, 5));
  const Tensor c = r.cos_table(), s = r.sin_table();
  for (std::int64_t k = 0; k < 3; ++k)
    for (std::int64_t i = 0; i < 8; ++i) {
      const double angle = static_cast<double>(k + 5) * std::pow(10000.0, -2.0 * (i / 2) / 8);
      EXPECT_NEAR(c.get(k * 8 + i), std::cos(angle), 1e-7);
      EXPECT_NEAR(s.get(k * 8 + i), std::sin(angle), 1e-7);
    }
}

// transformers' float32 path loses the angle at large positions (p * w is
// rounded to float32); the double evaluation here keeps float32's full
// accuracy at every position, up to 2^31 in this fixture.
TEST(RopeAccuracy, LargePositionsStayAccurateWhereFloat32DoesNot) {
  const Tensor x = load("x_large.npy");
  rope::Params p = plain(128);
  p.base = 500000;
  const rope::Rope r(p, rope::tensor_positions(load("positions_large.npy"), 1, 0));
  const Tensor want = load("large_positions.expected.npy");
  expect_close(r.apply(x), want, p, 1e-6, "large positions");
  // The same check fails for transformers' own float32 computation.
  const Tensor hf = load("large_positions.hf_float32.npy");
  double worst = 0;
  for (std::int64_t i = 0; i < hf.numel(); ++i) worst = std::max(worst, std::abs(hf.get(i) - want.get(i)));
  EXPECT_GT(worst, 1e-2);
}

// ---------------------------------------------------------------- properties

// <rope(q, m), rope(k, n)> depends on m - n only, for both layouts, partial
// rotation and every scaling (the attention factor scales all alike).
TEST(RopeProperties, ScoresDependOnRelativePositionOnly) {
  const Tensor q = random_tensor({1, 32}, 1), k = random_tensor({1, 32}, 2);
  std::vector<rope::Params> variants;
  for (auto layout : {rope::Layout::half, rope::Layout::interleaved}) {
    variants.push_back(plain(32, layout));
    variants.push_back(plain(20, layout));
    rope::Params y = plain(32, layout);
    y.scaling = rope::Scaling::yarn;
    y.factor = 16;
    y.original_max_pos = 2048;
    variants.push_back(y);
    rope::Params l = plain(32, layout);
    l.scaling = rope::Scaling::llama3;
    l.factor = 8;
    l.original_max_pos = 8192;
    l.base = 500000;
    variants.push_back(l);
  }
  for (const auto& p : variants) {
    for (std::int64_t delta : {0, 1, 7, 300, -45}) {
      double first = 0;
      bool have = false;
      for (std::int64_t m : {std::int64_t{0}, std::int64_t{1000}, std::int64_t{123457}, std::int64_t{3000000}}) {
        const Tensor qm = rope::Rope(p, at({m + delta})).apply(q);
        const Tensor kn = rope::Rope(p, at({m})).apply(k);
        const double s = dot(qm, kn);
        if (!have) first = s, have = true;
        EXPECT_NEAR(s, first, 2e-5 * (1 + std::abs(first))) << "R=" << p.rotary_dim << " delta=" << delta << " m=" << m;
      }
    }
  }
}

TEST(RopeProperties, InverseUndoesForward) {
  const Tensor x = random_tensor({2, 3, 10, 24}, 3);
  std::vector<rope::Params> variants = {plain(24), plain(24, rope::Layout::interleaved), plain(16)};
  rope::Params y = plain(24);
  y.scaling = rope::Scaling::yarn;
  y.factor = 4;
  y.original_max_pos = 64;
  y.attention_factor = 1.7;
  variants.push_back(y);
  rope::Params m = plain(24);
  m.axes = 3;
  m.mrope_section = {4, 4, 4};
  variants.push_back(m);
  for (const auto& p : variants) {
    const rope::Positions pos = p.axes == 3 ? rope::grid_positions({2, 5, 1}, 9) : rope::sequence_positions(10, 4000);
    const Tensor there = rope::Rope(p, pos).apply(x);
    const Tensor back = rope::Rope(p, pos, /*inverse=*/true).apply(there);
    expect_close(back, x, p, 2e-6, "inverse of forward");
  }
}

TEST(RopeProperties, PositionZeroIsTheIdentity) {
  const Tensor x = random_tensor({1, 16}, 4);
  const Tensor y = rope::Rope(plain(16), at({0})).apply(x);
  for (std::int64_t i = 0; i < 16; ++i) EXPECT_EQ(y.get(i), x.get(i));
}

TEST(RopeProperties, NormsArePreservedTimesTheAttentionFactor) {
  rope::Params p = plain(16);
  p.scaling = rope::Scaling::yarn;
  p.factor = 8;
  p.original_max_pos = 128;
  const rope::Rope r(p, rope::sequence_positions(5, 0));
  const double a = r.freqs().attention_factor;
  EXPECT_NEAR(a, 0.1 * std::log(8.0) + 1, 1e-15);
  const Tensor x = random_tensor({5, 16}, 5);
  const Tensor y = r.apply(x);
  EXPECT_NEAR(std::sqrt(dot(y, y)), a * std::sqrt(dot(x, x)), 1e-5);
}

// ---------------------------------------------------------------- layout conversion

TEST(RopeLayout, WeightConversionIsTransformersPermute) {
  const Tensor w = load("wq_meta.npy");
  const Tensor hf = rope::convert_layout(w, rope::Layout::interleaved, rope::Layout::half, 0, 4, true);
  const Tensor want = load("wq_hf.npy");
  ASSERT_EQ(hf.shape(), want.shape());
  EXPECT_EQ(std::memcmp(hf.bytes(), want.bytes(), hf.nbytes()), 0);
  const Tensor back = rope::convert_layout(hf, rope::Layout::half, rope::Layout::interleaved, 0, 4, true);
  EXPECT_EQ(std::memcmp(back.bytes(), w.bytes(), w.nbytes()), 0);
}

// Converting Q and K the same way keeps every score q.k, and RoPE in the new
// layout of the converted tensor is the conversion of RoPE in the old one.
TEST(RopeLayout, ConversionKeepsScoresAndCommutesWithRope) {
  const Tensor q = random_tensor({3, 6, 40}, 6), k = random_tensor({3, 6, 40}, 7);
  for (std::int64_t R : {40, 24}) {
    SCOPED_TRACE(R);
    auto to_half = [&](const Tensor& t) {
      return rope::convert_layout(t, rope::Layout::interleaved, rope::Layout::half, R, 1, false);
    };
    EXPECT_NEAR(dot(to_half(q), to_half(k)), dot(q, k), 1e-9);
    const rope::Positions pos = rope::sequence_positions(6, 11);
    const Tensor a = to_half(rope::Rope(plain(R, rope::Layout::interleaved), pos).apply(q));
    const Tensor b = rope::Rope(plain(R, rope::Layout::half), pos).apply(to_half(q));
    expect_close(a, b, plain(R), 1e-6, "convert(rope_interleaved(q)) vs rope_half(convert(q))");
    EXPECT_NEAR(dot(a, to_half(rope::Rope(plain(R, rope::Layout::interleaved), pos).apply(k))),
                dot(rope::Rope(plain(R, rope::Layout::interleaved), pos).apply(q),
                    rope::Rope(plain(R, rope::Layout::interleaved), pos).apply(k)),
                1e-4);
  }
}

TEST(RopeLayout, HeadsAndPartialChannelsAndAnyDtype) {
  // Two heads of 6 channels, the first 4 of each reordered, as int16.
  std::vector<std::int16_t> v(12);
  for (int i = 0; i < 12; ++i) v[i] = static_cast<std::int16_t>(i);
  const Tensor t = Tensor::from_vector<std::int16_t>({1, 12}, v);
  const Tensor h = rope::convert_layout(t, rope::Layout::interleaved, rope::Layout::half, 4, 2, false);
  const std::vector<int> want = {0, 2, 1, 3, 4, 5, 6, 8, 7, 9, 10, 11};
  for (int i = 0; i < 12; ++i) EXPECT_EQ(h.get(i), want[i]) << i;
  const Tensor i2 = rope::convert_layout(h, rope::Layout::half, rope::Layout::interleaved, 4, 2, false);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(i2.get(i), i);
}

// ---------------------------------------------------------------- the engine

TEST(RopeEngine, ThreadsAndInPlaceGiveTheSameBits) {
  const Tensor x = random_tensor({4, 300, 64}, 8);
  for (auto layout : {rope::Layout::half, rope::Layout::interleaved}) {
    const rope::Rope r(plain(48, layout), rope::sequence_positions(300, 17));
    set_threads(1);
    const Tensor one = r.apply(x);
    set_threads(4);
    const Tensor four = r.apply(x);
    Tensor inplace = x;
    r.apply(inplace, inplace);
    set_threads(0);
    EXPECT_EQ(std::memcmp(one.bytes(), four.bytes(), one.nbytes()), 0);
    EXPECT_EQ(std::memcmp(one.bytes(), inplace.bytes(), one.nbytes()), 0);
  }
}

// The table advances consecutive positions by rotation and restarts from sin
// and cos every 32 slots; both paths round to the same float32 values.
TEST(RopeEngine, ChainedTableEqualsDirectEvaluation) {
  rope::Params p = plain(128);
  p.base = 500000;
  std::vector<std::int64_t> far(200);
  for (int i = 0; i < 200; ++i) far[i] = 1000000 + i;
  const rope::Rope chained(p, at(far));
  // Every other position alone: no chain.
  int off = 0;
  for (int i = 0; i < 200; i += 7) {
    const rope::Rope direct(p, at({far[i]}));
    const Tensor a = chained.cos_table(), b = direct.cos_table();
    for (int c = 0; c < 128; ++c) off += a.get(i * 128 + c) != b.get(c);
  }
  EXPECT_LE(off, 2);  // a tie within 1e-14 of a float32 rounding boundary, at most
}

TEST(RopeEngine, PositionsBroadcastAndRepeat) {
  // [2, 1, 3] positions over a [2, 4, 3, 8] input; equal positions give equal rows.
  const Tensor x = random_tensor({2, 4, 3, 8}, 9);
  const Tensor pos = Tensor::from_vector<std::int64_t>({2, 1, 3}, {5, 5, 9, 0, 1, 2});
  const rope::Rope r(plain(8), rope::tensor_positions(pos, 1, 0));
  const Tensor y = r.apply(x);
  const rope::Rope single(plain(8), at({5, 5, 9}));
  const Tensor want = single.apply(x.reshaped({8, 3, 8}));
  for (std::int64_t h = 0; h < 4; ++h)
    for (std::int64_t i = 0; i < 24; ++i) EXPECT_EQ(y.get(h * 24 + i), want.get(h * 24 + i));
}

TEST(RopeEngine, SequenceAxisElsewhere) {
  const Tensor x = random_tensor({3, 5, 2, 8}, 10);  // [batch, seq, heads, dim]
  const rope::Rope r(plain(8), rope::sequence_positions(5, 0));
  const Tensor y = r.apply(x, 1);
  for (std::int64_t b = 0; b < 3; ++b)
    for (std::int64_t s = 0; s < 5; ++s)
      for (std::int64_t h = 0; h < 2; ++h) {
        const std::int64_t row = ((b * 5 + s) * 2 + h) * 8;
        Tensor one(DType::f4, {1, 8});
        for (int c = 0; c < 8; ++c) one.data<float>()[c] = x.data<float>()[row + c];
        const Tensor want = rope::Rope(plain(8), at({s})).apply(one);
        for (int c = 0; c < 8; ++c) EXPECT_EQ(y.data<float>()[row + c], want.data<float>()[c]);
      }
}

// ---------------------------------------------------------------- refusals

TEST(RopeErrors, BadParametersAreUsageErrors) {
  auto refuses = [](rope::Params p) { return code_of([&] { rope::validate(p); }); };
  rope::Params p = plain(16);
  EXPECT_EQ(refuses(p), ExitCode::ok);
  p.rotary_dim = 15;  // odd
  EXPECT_EQ(refuses(p), ExitCode::usage);
  p.rotary_dim = 0;
  EXPECT_EQ(refuses(p), ExitCode::usage);
  p = plain(16);
  p.base = 1;
  EXPECT_EQ(refuses(p), ExitCode::usage);
  p.base = std::nan("");
  EXPECT_EQ(refuses(p), ExitCode::usage);
  p = plain(16);
  p.scaling = rope::Scaling::linear;
  p.factor = 0.5;
  EXPECT_EQ(refuses(p), ExitCode::usage);
  p.factor = 2;
  EXPECT_EQ(refuses(p), ExitCode::ok);
  p.scaling = rope::Scaling::yarn;  // needs the original context
  EXPECT_EQ(refuses(p), ExitCode::usage);
  p.original_max_pos = 4096;
  EXPECT_EQ(refuses(p), ExitCode::ok);
  p.beta_fast = 0;
  EXPECT_EQ(refuses(p), ExitCode::usage);
  p.beta_fast = 32;
  p.attention_factor = -1;
  EXPECT_EQ(refuses(p), ExitCode::usage);
  p.attention_factor.reset();
  p.scaling = rope::Scaling::llama3;
  p.high_freq_factor = p.low_freq_factor;
  EXPECT_EQ(refuses(p), ExitCode::usage);
  p.high_freq_factor = 4;
  p.scaling = rope::Scaling::dynamic;
  p.rotary_dim = 2;  // exponent R/(R-2)
  EXPECT_EQ(refuses(p), ExitCode::usage);
  p = plain(16);
  p.scaling = rope::Scaling::longrope;
  p.factor = 4;
  p.original_max_pos = 64;
  p.short_factor.assign(8, 1.0);
  p.long_factor.assign(7, 2.0);  // one short: from a file, so bad data
  EXPECT_EQ(refuses(p), ExitCode::data);
  p.long_factor.assign(8, 0.0);
  EXPECT_EQ(refuses(p), ExitCode::data);
  p = plain(16);
  p.axes = 3;  // 16 channels do not split into 3 even parts
  EXPECT_EQ(refuses(p), ExitCode::usage);
  p.mrope_section = {2, 3, 2};  // 7 != 8 frequencies
  EXPECT_EQ(refuses(p), ExitCode::usage);
  p.mrope_section = {2, 3, 3};
  EXPECT_EQ(refuses(p), ExitCode::ok);
  p.mrope_section = {5, 3};
  EXPECT_EQ(refuses(p), ExitCode::usage);
  EXPECT_EQ(code_of([] { rope::parse_scaling("ntk-by-parts"); }), ExitCode::usage);
  EXPECT_EQ(code_of([] { rope::parse_layout("neox"); }), ExitCode::usage);
}

TEST(RopeErrors, InputsThatDoNotFitAreDataErrors) {
  const rope::Rope r(plain(16), rope::sequence_positions(4, 0));
  EXPECT_EQ(code_of([&] { r.apply(random_tensor({4, 16}, 1)); }), ExitCode::ok);
  // fewer channels than the rotary dimension
  EXPECT_EQ(code_of([&] { r.apply(random_tensor({4, 12}, 1)); }), ExitCode::data);
  // positions of the wrong length
  EXPECT_EQ(code_of([&] { r.apply(random_tensor({5, 16}, 1)); }), ExitCode::data);
  const rope::Rope b(plain(16), rope::tensor_positions(Tensor::from_vector<std::int64_t>({2, 4}, {0, 1, 2, 3, 4, 5, 6, 7}), 1, 0));
  EXPECT_EQ(code_of([&] { b.apply(random_tensor({3, 4, 16}, 1)); }), ExitCode::data);  // [2, 4] vs [3, 4]
  EXPECT_EQ(code_of([&] { b.apply(random_tensor({2, 4, 16}, 1)); }), ExitCode::ok);
  // not a float tensor, no sequence axis, the sequence axis last
  EXPECT_EQ(code_of([&] { r.apply(Tensor(DType::i4, {4, 16})); }), ExitCode::data);
  EXPECT_EQ(code_of([&] { r.apply(random_tensor({16}, 1)); }), ExitCode::data);
  EXPECT_EQ(code_of([&] { r.apply(random_tensor({4, 16}, 1), -1); }), ExitCode::usage);
  // float positions; [axes, ...] missing its axes dimension
  EXPECT_EQ(code_of([] { rope::tensor_positions(Tensor(DType::f4, {4}), 1, 0); }), ExitCode::data);
  EXPECT_EQ(code_of([] { rope::tensor_positions(Tensor(DType::i8, {2, 4}), 3, 0); }), ExitCode::data);
  // conversion: heads that do not divide, a rotary dim larger than a head
  EXPECT_EQ(code_of([] { rope::convert_layout(Tensor(DType::f4, {10, 3}), rope::Layout::half, rope::Layout::interleaved, 0, 4, true); }),
            ExitCode::data);
  EXPECT_EQ(code_of([] { rope::convert_layout(Tensor(DType::f4, {2, 8}), rope::Layout::half, rope::Layout::interleaved, 10, 1, false); }),
            ExitCode::data);
}
