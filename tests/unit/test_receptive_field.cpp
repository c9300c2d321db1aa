// Receptive-field arithmetic (rf-calc's core): exact rationals, the network
// language and its errors (with line numbers), the published values of the
// reference networks from the very files rf-calc ships, small DAGs for every
// layer type, PyTorch's output sizes, and brute-force checks of the region
// formula against index sets propagated layer by layer.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "nnkit/ops/receptive_field.hpp"

using namespace nnkit;
using rf::Rational;

namespace {

std::string model_text(const std::string& name) {
  const std::string path = std::string(NNKIT_FIXTURES) + "/../../models/rf-calc/" + name + ".net";
  std::ifstream f(path);
  if (!f) ADD_FAILURE() << "cannot read " << path;
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

rf::Analysis analyze(const std::string& text, rf::Options opt = {}) {
  return rf::analyze(rf::parse_network(text, "test"), opt);
}

// The last layer's field.
rf::Field last(const std::string& text, rf::Options opt = {}) { return analyze(text, opt).fields.back(); }

rf::Options sized(std::int64_t h, std::int64_t w = -1,
                  rf::PaddingConvention c = rf::PaddingConvention::torch) {
  rf::Options o;
  o.input_size = rf::Size2{h, w < 0 ? h : w};
  o.convention = c;
  return o;
}

struct RSP {
  Rational r, S, P;
};
void expect_axis(const rf::AxisField& a, const RSP& want, const std::string& what) {
  EXPECT_EQ(a.r, want.r) << what << ": r " << a.r.str();
  EXPECT_EQ(a.S, want.S) << what << ": S " << a.S.str();
  EXPECT_EQ(a.P, want.P) << what << ": P " << a.P.str();
}
void expect_both(const rf::Field& f, const RSP& want, const std::string& what) {
  expect_axis(f.axis[0], want, what + " (H)");
  expect_axis(f.axis[1], want, what + " (W)");
}

// Runs fn and checks it throws an AnalysisError of the problem, whose message
// holds every word (and "line N" when line > 0).
template <class Fn>
void expect_problem(Fn&& fn, rf::Problem problem, std::int64_t line, const std::vector<std::string>& words) {
  try {
    fn();
    ADD_FAILURE() << "no error; wanted one at line " << line;
  } catch (const rf::AnalysisError& e) {
    EXPECT_EQ(e.problem(), problem) << e.what();
    EXPECT_EQ(e.code(), problem == rf::Problem::needs_input_size ? ExitCode::usage : ExitCode::data);
    const std::string msg = e.what();
    if (line > 0) {
      EXPECT_EQ(msg.rfind("line " + std::to_string(line) + ": ", 0), 0u) << msg;
    }
    for (const auto& w : words) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

void expect_bad(const std::string& text, std::int64_t line, const std::vector<std::string>& words,
                rf::Options opt = {}) {
  expect_problem([&] { analyze(text, opt); }, rf::Problem::bad_network, line, words);
}

// r, S, P of a chain of (k, s, p) windows along one axis, by the textbook
// recurrence: an independent check of the built-in networks.
struct Win {
  std::int64_t k, s, p;
};
RSP chain(const std::vector<Win>& layers) {
  std::int64_t r = 1, S = 1, P = 0;
  for (const Win& w : layers) {
    r += (w.k - 1) * S;
    P += w.p * S;
    S *= w.s;
  }
  return {r, S, P};
}

// torchvision's ResNet main path: conv1, maxpool, then per block the 3x3
// convolutions (the stride in the first 3x3 of a stage's first block).
std::vector<Win> torchvision_resnet(bool bottleneck, const std::vector<int>& blocks) {
  std::vector<Win> w = {{7, 2, 3}, {3, 2, 1}};
  for (std::size_t stage = 0; stage < blocks.size(); ++stage)
    for (int b = 0; b < blocks[stage]; ++b) {
      const std::int64_t s = stage > 0 && b == 0 ? 2 : 1;
      w.push_back({3, s, 1});
      if (!bottleneck) w.push_back({3, 1, 1});
    }
  return w;
}

std::vector<Win> torchvision_vgg(const std::vector<int>& convs_per_block) {
  std::vector<Win> w;
  for (int n : convs_per_block) {
    for (int i = 0; i < n; ++i) w.push_back({3, 1, 1});
    w.push_back({2, 2, 0});
  }
  return w;
}

}  // namespace

// ---------------------------------------------------------------- Rational

TEST(ReceptiveFieldRational, LowestTermsAndArithmetic) {
  EXPECT_EQ(Rational(6, -4), Rational(-3, 2));
  EXPECT_EQ(Rational(6, -4).num(), -3);
  EXPECT_EQ(Rational(6, -4).den(), 2);
  EXPECT_EQ(Rational(1, 2) + Rational(1, 3), Rational(5, 6));
  EXPECT_EQ(Rational(1, 2) - Rational(3, 4), Rational(-1, 4));
  EXPECT_EQ(Rational(2, 3) * Rational(9, 4), Rational(3, 2));
  EXPECT_EQ(Rational(2, 3) / Rational(4, 9), Rational(3, 2));
  EXPECT_TRUE(Rational(1, 3) < Rational(1, 2));
  EXPECT_TRUE(Rational(-1, 2) < Rational(-1, 3));
  EXPECT_TRUE((Rational(4, 2)).is_integer());
  EXPECT_DOUBLE_EQ(Rational(-3, 8).to_double(), -0.375);
}

TEST(ReceptiveFieldRational, ExactText) {
  EXPECT_EQ(Rational(212).str(), "212");
  EXPECT_EQ(Rational(31, 2).str(), "15.5");
  EXPECT_EQ(Rational(-1, 4).str(), "-0.25");
  EXPECT_EQ(Rational(-1, 2).str(), "-0.5");
  EXPECT_EQ(Rational(1, 3).str(), "1/3");
  EXPECT_EQ(Rational(-7, 6).str(), "-7/6");
  EXPECT_EQ(Rational(1, 1024).str(), "0.0009765625");
  EXPECT_EQ(Rational(1, 3).decimal(), "0.3333333333333333");
  EXPECT_EQ(Rational(-5, 2).decimal(), "-2.5");
}

TEST(ReceptiveFieldRational, OverflowIsReportedNotWrapped) {
  const Rational big(std::int64_t{1} << 62);
  EXPECT_THROW(big * 2, rf::Overflow);
  EXPECT_THROW(big + big, rf::Overflow);
  EXPECT_THROW(Rational(1, std::int64_t{1} << 62) * Rational(1, 4), rf::Overflow);
  EXPECT_EQ(big * Rational(1, 2), Rational(std::int64_t{1} << 61));
}

// ---------------------------------------------------------------- language

TEST(ReceptiveFieldParse, TheIssueExample) {
  const rf::Network net = rf::parse_network(
      "# comment\n"
      "conv1: conv k=7 s=2 p=3\n"
      "pool1: maxpool k=3 s=2 p=1\n"
      "a:     conv k=1\n"
      "b:     conv k=3 p=1 from=a\n"
      "sum:   add from=pool1,b\n",
      "example");
  ASSERT_EQ(net.layers.size(), 6u);
  EXPECT_EQ(net.layers[0].name, "input");
  EXPECT_EQ(net.layers[1].inputs, std::vector<std::size_t>{0});
  EXPECT_EQ(net.layers[3].inputs, std::vector<std::size_t>{2});  // the line above
  EXPECT_EQ(net.layers[4].inputs, std::vector<std::size_t>{3});
  EXPECT_EQ(net.layers[5].inputs, (std::vector<std::size_t>{2, 4}));
  EXPECT_EQ(net.layers[5].line, 6);
  EXPECT_EQ(net.layers[2].kernel, (rf::Size2{3, 3}));
  EXPECT_EQ(net.layers[2].padding, (rf::Size2{1, 1}));
  EXPECT_EQ(*net.find("b"), 4u);
  EXPECT_FALSE(net.find("nope"));
  // conv1 7/2/3, pool1 11/4/5; a keeps it; b adds 2*4; the sum keeps the wider.
  const rf::Analysis an = rf::analyze(net, {});
  expect_both(an.fields[2], {11, 4, 5}, "pool1");
  expect_both(an.fields[5], {19, 4, 9}, "sum");
}

TEST(ReceptiveFieldParse, LayoutCommentsAndValues) {
  const rf::Network net = rf::parse_network(
      "\xEF\xBB\xBF\r\n"
      "  # indented comment\r\n"
      "c1:conv k=3x5 s=1x2 d=2x1 p=1x0   # trailing comment\r\n"
      "\t\n"
      "p1 : maxpool\tk=2\r\n"
      "layer1.0/x-y_z: relu\n"
      "u: upsample factor=2x3 mode=bilinear\n"
      "d: deconv k=4 s=2 p=1 output_padding=1\n"
      "a: adaptive_pool out=7x5\n"
      "m: maxpool k=3 s=1 p=same ceil=0",
      "t");
  ASSERT_EQ(net.layers.size(), 8u);
  const rf::Layer& c1 = net.layers[1];
  EXPECT_EQ(c1.line, 3);
  EXPECT_EQ(c1.kernel, (rf::Size2{3, 5}));
  EXPECT_EQ(c1.stride, (rf::Size2{1, 2}));
  EXPECT_EQ(c1.dilation, (rf::Size2{2, 1}));
  EXPECT_EQ(c1.padding, (rf::Size2{1, 0}));
  EXPECT_EQ(net.layers[2].stride, (rf::Size2{2, 2})) << "a pool's stride defaults to its kernel";
  EXPECT_EQ(net.layers[2].line, 5);
  EXPECT_EQ(net.layers[3].op, rf::Op::pointwise);
  EXPECT_EQ(net.layers[3].op_word, "relu");
  EXPECT_EQ(net.layers[4].factor, (rf::Size2{2, 3}));
  EXPECT_EQ(net.layers[4].interp, rf::Interp::bilinear);
  EXPECT_EQ(net.layers[5].output_padding, (rf::Size2{1, 1}));
  EXPECT_EQ(net.layers[6].out_size, (rf::Size2{7, 5}));
  EXPECT_EQ(net.layers[7].pad_mode, rf::PadMode::same);
}

TEST(ReceptiveFieldParse, EveryPointwiseOpChangesNothing) {
  for (const char* op :
       {"identity", "bn", "relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "gelu", "silu", "swish",
        "hardswish", "mish", "sigmoid", "hardsigmoid", "tanh", "dropout", "lrn"}) {
    const rf::Field f = last("c: conv k=5 s=3 p=2\nx: " + std::string(op) + "\n", sized(30));
    expect_both(f, {5, 3, 2}, op);
    EXPECT_EQ(*f.size, (rf::Size2{10, 10})) << op;
  }
}

TEST(ReceptiveFieldParse, BadInputNamesTheLine) {
  expect_bad("a: conv k=3\n\n# x\nb: convv k=3\n", 4, {"unknown op", "'convv'", "(test)"});
  expect_bad("a: conv k=3 q=1\n", 1, {"unknown key", "'q'", "k, s, p, d, from"});
  expect_bad("a: relu k=3\n", 1, {"unknown key", "'k'"});
  expect_bad("a: conv k=3\nb: conv k=3 ceil=1\n", 2, {"'ceil'"});
  expect_bad("a: conv k=3\nb: conv k=1 from=zz\n", 2, {"'zz'", "not a layer above"});
  expect_bad("a: conv k=3 from=b\nb: conv k=3 from=a\n", 1, {"'b'", "below", "line 2", "cycle"});
  expect_bad("a: conv k=3\nb: conv k=3 from=b\n", 2, {"own output", "cycle"});
  expect_bad("a: add from=a,input\n", 1, {"own output"});
  expect_bad("a: conv k=3 s=0\n", 1, {"'s=0'", "at least 1"});
  expect_bad("a: conv k=0\n", 1, {"'k=0'", "at least 1"});
  expect_bad("a: conv k=-3\n", 1, {"'k=-3'", "at least 1"});
  expect_bad("a: conv k=3 s=-1\n", 1, {"'s=-1'"});
  expect_bad("a: conv k=3 p=-1\n", 1, {"'p=-1'", "at least 0"});
  expect_bad("a: conv k=3 d=0\n", 1, {"'d=0'"});
  expect_bad("x: conv k=3\na: conv k=3x0\n", 2, {"'k=3x0'"});
  expect_bad("a: conv k=3000000000\n", 1, {"absurd"});
  expect_bad("a: conv k=99999999999999999999999\n", 1, {"absurd"});
  expect_bad("a: conv k=3x\n", 1, {"not an integer or HxW"});
  expect_bad("a: conv k=three\n", 1, {"not an integer"});
  expect_bad("a: conv k=3 p=half\n", 1, {"same or valid"});
  expect_bad("a: conv s=2\n", 1, {"needs a kernel"});
  expect_bad("a: conv k=3\na: conv k=3\n", 2, {"already defined at line 1"});
  expect_bad("input: conv k=3\n", 1, {"'input'"});
  expect_bad("just some words\n", 1, {"expected 'NAME: OP"});
  expect_bad("my conv: conv k=3\n", 1, {"not a layer name"});
  expect_bad("a:\n", 1, {"no op"});
  expect_bad("a: conv k=3 s\n", 1, {"key=value", "'s'"});
  expect_bad("a: conv k=3 =2\n", 1, {"key=value"});
  expect_bad("a: conv k=\n", 1, {"no value"});
  expect_bad("a: conv k=3 k=5\n", 1, {"twice"});
  expect_bad("a: conv k=3\ns: add from=a\n", 2, {"at least two"});
  expect_bad("a: conv k=3\ns: add\n", 2, {"at least two"});
  expect_bad("a: conv k=3\ns: add from=a,\n", 2, {"empty name"});
  expect_bad("a: conv k=3\nb: conv k=3 from=a,input\n", 2, {"one input"});
  expect_bad("a: maxpool k=3 ceil=2\n", 1, {"0 or 1"});
  expect_bad("a: maxpool k=3 p=same ceil=1\n", 1, {"ceil=1"});
  expect_bad("a: deconv k=3 p=same\n", 1, {"explicit"});
  expect_bad("a: deconv k=3 s=2 output_padding=2\n", 1, {"output_padding"});
  expect_bad("a: upsample\n", 1, {"factor"});
  expect_bad("a: upsample factor=0\n", 1, {"'factor=0'"});
  expect_bad("a: upsample factor=2 mode=bicubic\n", 1, {"nearest or bilinear"});
  expect_bad("a: adaptive_pool\n", 1, {"out="});
  expect_bad("a: conv k=3 \x01\x02=1\n", 1, {"'\\x01\\x02'"});
  expect_bad("", 0, {"no layers", "(test)"});
  expect_bad("# only comments\n\n", 0, {"no layers"});
}

TEST(ReceptiveFieldParse, GarbageIsADataErrorOfOneLine) {
  std::mt19937 gen(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::string text(300, '\0');
    for (char& c : text) c = static_cast<char>(gen() & 0xff);
    try {
      rf::analyze(rf::parse_network(text, "garbage"), {});
    } catch (const rf::AnalysisError& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
      EXPECT_LT(std::string(e.what()).size(), 400u);
      continue;
    }
    ADD_FAILURE() << "random bytes were accepted";
  }
}

TEST(ReceptiveFieldParse, SizesAndTheirText) {
  EXPECT_EQ(rf::parse_size("224"), (rf::Size2{224, 224}));
  EXPECT_EQ(rf::parse_size("480x640"), (rf::Size2{480, 640}));
  EXPECT_FALSE(rf::parse_size(""));
  EXPECT_FALSE(rf::parse_size("x3"));
  EXPECT_FALSE(rf::parse_size("3x"));
  EXPECT_FALSE(rf::parse_size("-3"));
  EXPECT_FALSE(rf::parse_size("1x2x3"));
  EXPECT_FALSE(rf::parse_size("2000000000"));
  EXPECT_EQ(rf::size_str({7, 7}), "7");
  EXPECT_EQ(rf::size_str({7, 5}), "7x5");
}

// ---------------------------------------------------------------- published values

TEST(ReceptiveFieldPublished, Vgg16) {
  // Araujo, Norris & Sim (Distill 2019) and google-research/receptive_field: 212/32/90.
  const rf::Field f = last(model_text("vgg16"), sized(224));
  expect_both(f, {212, 32, 90}, "vgg16 pool5");
  EXPECT_EQ(f.axis[0].center(), Rational(31, 2));
  EXPECT_EQ(*f.size, (rf::Size2{7, 7}));
}

TEST(ReceptiveFieldPublished, AlexnetV2) {
  // TF-Slim alexnet_v2: 195/32/64, under either convention (no strided SAME).
  expect_both(last(model_text("alexnet_v2")), {195, 32, 64}, "alexnet_v2 pool5");
  const rf::Field f = last(model_text("alexnet_v2"), sized(224, 224, rf::PaddingConvention::tf));
  expect_both(f, {195, 32, 64}, "alexnet_v2 pool5 (tf)");
  EXPECT_EQ(*f.size, (rf::Size2{5, 5}));
}

TEST(ReceptiveFieldPublished, ResnetV1StrideAtTheEndOfEachBlock) {
  // google-research/receptive_field: resnet_v1_50 483/32/239, _101 1027/32/511,
  // _152 1507/32/751 (TensorFlow's SAME padding, 224x224 input).
  const rf::Options tf = sized(224, 224, rf::PaddingConvention::tf);
  const rf::Field f50 = last(model_text("resnet_v1_50"), tf);
  expect_both(f50, {483, 32, 239}, "resnet_v1_50 block4");
  EXPECT_EQ(*f50.size, (rf::Size2{7, 7}));
  expect_both(last(model_text("resnet_v1_101"), tf), {1027, 32, 511}, "resnet_v1_101 block4");
  expect_both(last(model_text("resnet_v1_152"), tf), {1507, 32, 751}, "resnet_v1_152 block4");
  // pool1's SAME padding depends on the input size: with an odd size at pool1
  // TensorFlow pads one pixel before it, and P grows by S = 2 there.
  expect_both(last(model_text("resnet_v1_50"), sized(226, 226, rf::PaddingConvention::tf)), {483, 32, 241},
              "resnet_v1_50 at 226");
  // PyTorch has no strided 'same'; without a size TensorFlow's needs one.
  expect_problem([&] { analyze(model_text("resnet_v1_50")); }, rf::Problem::strided_same, 11, {"PyTorch"});
  rf::Options tf_unsized;
  tf_unsized.convention = rf::PaddingConvention::tf;
  expect_problem([&] { analyze(model_text("resnet_v1_50"), tf_unsized); }, rf::Problem::needs_input_size, 11,
                 {"input size"});
}

TEST(ReceptiveFieldPublished, MobilenetV1) {
  // google-research/receptive_field: 315/32/126.
  const rf::Field f = last(model_text("mobilenet_v1"), sized(224, 224, rf::PaddingConvention::tf));
  expect_both(f, {315, 32, 126}, "mobilenet_v1 Conv2d_13_pointwise");
  EXPECT_EQ(*f.size, (rf::Size2{7, 7}));
}

TEST(ReceptiveFieldPublished, TorchvisionResnet50) {
  const rf::Analysis an = analyze(model_text("resnet50"), sized(224));
  expect_both(an.fields.back(), {427, 32, 213}, "resnet50 layer4");
  const rf::Network net = rf::parse_network(model_text("resnet50"), "resnet50");
  const std::pair<const char*, std::int64_t> stages[] = {
      {"layer1", 56}, {"layer2", 28}, {"layer3", 14}, {"layer4", 7}};
  for (const auto& [name, size] : stages)
    EXPECT_EQ(*an.fields[*net.find(name)].size, (rf::Size2{size, size})) << name;
  // Without an input size the fields are the same and sizes unknown.
  const rf::Field unsized = last(model_text("resnet50"));
  expect_both(unsized, {427, 32, 213}, "resnet50 layer4 (no size)");
  EXPECT_FALSE(unsized.size);
}

TEST(ReceptiveFieldPublished, TorchvisionModelsAgreeWithTheTextbookRecurrence) {
  const std::vector<std::pair<std::string, std::vector<Win>>> models = {
      {"alexnet", {{11, 4, 2}, {3, 2, 0}, {5, 1, 2}, {3, 2, 0}, {3, 1, 1}, {3, 1, 1}, {3, 1, 1}, {3, 2, 0}}},
      {"vgg11", torchvision_vgg({1, 1, 2, 2, 2})},
      {"vgg13", torchvision_vgg({2, 2, 2, 2, 2})},
      {"vgg16", torchvision_vgg({2, 2, 3, 3, 3})},
      {"vgg19", torchvision_vgg({2, 2, 4, 4, 4})},
      {"resnet18", torchvision_resnet(false, {2, 2, 2, 2})},
      {"resnet34", torchvision_resnet(false, {3, 4, 6, 3})},
      {"resnet50", torchvision_resnet(true, {3, 4, 6, 3})},
      {"resnet101", torchvision_resnet(true, {3, 4, 23, 3})},
      {"resnet152", torchvision_resnet(true, {3, 8, 36, 3})},
  };
  for (const auto& [name, path] : models) {
    const RSP want = chain(path);
    const rf::Field f = last(model_text(name), sized(224));
    expect_both(f, want, name);
    EXPECT_EQ(f.axis[0].center(), (want.r - 1) / 2 - want.P) << name;
  }
  // By hand: AlexNet 195/32/66 and 6x6 at 224 (its adaptive pool keeps 6x6);
  // ResNet-18 435/32/217, ResNet-152 1451/32/725.
  const rf::Field alex = last(model_text("alexnet"), sized(224));
  expect_both(alex, {195, 32, 66}, "alexnet");
  EXPECT_EQ(*alex.size, (rf::Size2{6, 6}));
  expect_both(last(model_text("resnet18")), {435, 32, 217}, "resnet18");
  expect_both(last(model_text("resnet152")), {1451, 32, 725}, "resnet152");
}

// ---------------------------------------------------------------- DAGs

TEST(ReceptiveFieldDag, AlignedMergeKeepsTheWiderPath) {
  // A downsampling residual block: 3x3/2 then 3x3 against a 1x1/2 shortcut.
  const rf::Analysis an = analyze(
      "a: conv k=3 s=2 p=1\n"
      "b: conv k=3 p=1\n"
      "short: conv k=1 s=2 from=input\n"
      "sum: add from=b,short\n"
      "cat: concat from=short,sum,b\n",
      sized(32));
  expect_both(an.fields[2], {7, 2, 3}, "b");
  expect_both(an.fields[3], {1, 2, 0}, "short");
  expect_both(an.fields[4], {7, 2, 3}, "sum");
  expect_both(an.fields[5], {7, 2, 3}, "cat");
  EXPECT_EQ(*an.fields[5].size, (rf::Size2{16, 16}));
  EXPECT_TRUE(an.warnings.empty());
}

TEST(ReceptiveFieldDag, MisalignedMergeFailsOrWarns) {
  // A 3x3 without padding is centred one pixel further than a 2x2.
  const std::string net = "a: conv k=3\nb: conv k=2 from=input\n\nsum: add from=a,b\n";
  expect_problem([&] { analyze(net); }, rf::Problem::misaligned, 4,
                 {"'sum'", "'a'", "'b'", "not aligned", "centre 1", "centre 0.5"});
  rf::Options allow;
  allow.allow_misaligned = true;
  const rf::Analysis an = analyze(net, allow);
  ASSERT_EQ(an.warnings.size(), 1u);
  EXPECT_NE(an.warnings[0].find("line 4"), std::string::npos);
  // Same stride: the region that covers both paths, [u, u+2] and [u, u+1].
  expect_both(an.fields.back(), {3, 1, 0}, "sum");

  // Different strides: keep the path with the largest r.
  const std::string strides = "a: conv k=5 s=2\nb: conv k=3 s=1x2 from=input\nsum: add from=b,a\n";
  expect_problem([&] { analyze(strides); }, rf::Problem::misaligned, 3, {"stride 1x2", "stride 2"});
  const rf::Field f = last(strides, allow);
  expect_both(f, {5, 2, 0}, "sum");
  // Different sizes cannot be added at all, allowed or not.
  expect_bad("a: conv k=3 s=2 p=1\nsum: add from=a,input\n", 2,
             {"different sizes", "'a' is 8", "'input' is 16"}, [] {
               rf::Options o = sized(16);
               o.allow_misaligned = true;
               return o;
             }());
  expect_bad("a: conv k=3 s=2 p=1\nc: concat from=input,a\n", 2, {"concatenates", "different sizes"},
             sized(16));
}

TEST(ReceptiveFieldDag, NonSquareKernelsPerAxis) {
  const rf::Field f =
      last("a: conv k=3x7 s=1x2 p=1x3\nb: maxpool k=2x1 s=2x1\nc: conv k=1x3 d=1x2 p=0x2\n", sized(20, 30));
  expect_axis(f.axis[0], {4, 2, 1}, "H");   // 3, then +1 (pool 2 at S 1), then nothing
  expect_axis(f.axis[1], {15, 2, 7}, "W");  // 7, nothing, then +4 at S 2
  EXPECT_EQ(*f.size, (rf::Size2{10, 15}));
  EXPECT_EQ(f.axis[0].center(), Rational(1, 2));
  EXPECT_EQ(f.axis[1].center(), 0);
}

TEST(ReceptiveFieldDag, Dilation) {
  // The span of a dilated kernel is d(k-1)+1; padding never changes r.
  expect_both(last("a: conv k=3 d=2\n"), {5, 1, 0}, "d=2");
  expect_both(last("a: conv k=3 d=4 p=4\n"), {9, 1, 4}, "d=4");
  const rf::Field f = last("a: conv k=3 s=2 p=1\nb: conv k=3 d=3 p=3\nc: maxpool k=2 s=2 d=2\n", sized(64));
  expect_both(f, {3 + 2 * 6 + 2 * 2, 4, 1 + 3 * 2}, "chain");
  // PyTorch: floor((n + 2p - d(k-1) - 1)/s) + 1: 32 -> 32 -> floor((32-2-1)/2)+1 = 15.
  EXPECT_EQ(*f.size, (rf::Size2{15, 15}));
}

TEST(ReceptiveFieldDag, SamePaddingPyTorchStyle) {
  // Stride 1: total d(k-1), the odd pixel after; the size is kept.
  const rf::Field even = last("a: conv k=4 p=same\n", sized(10));
  expect_both(even, {4, 1, 1}, "k=4 same");
  EXPECT_EQ(*even.size, (rf::Size2{10, 10}));
  expect_both(last("a: conv k=5 d=2 p=same\n"), {9, 1, 4}, "k=5 d=2 same");
  expect_both(last("a: conv k=3 p=valid\n"), {3, 1, 0}, "valid");
  // Strided 'same' is refused, as PyTorch does.
  expect_problem([] { analyze("x: conv k=1\na: conv k=3 s=2 p=same\n", sized(10)); },
                 rf::Problem::strided_same, 2, {"stride 2", "PyTorch"});
}

TEST(ReceptiveFieldDag, SamePaddingTensorFlowStyle) {
  const auto tf = [](std::int64_t n) { return sized(n, n, rf::PaddingConvention::tf); };
  // Stride 1 is the same under both conventions and needs no size.
  rf::Options unsized;
  unsized.convention = rf::PaddingConvention::tf;
  expect_both(last("a: conv k=4 p=same\n", unsized), {4, 1, 1}, "tf k=4 s=1");
  // Stride 2, k=3: out = ceil(n/2); total = (out-1)*2 + 3 - n, the odd pixel after.
  const rf::Field even = last("a: conv k=3 s=2 p=same\n", tf(224));
  expect_both(even, {3, 2, 0}, "tf 224");
  EXPECT_EQ(*even.size, (rf::Size2{112, 112}));
  const rf::Field odd = last("a: conv k=3 s=2 p=same\n", tf(225));
  expect_both(odd, {3, 2, 1}, "tf 225");
  EXPECT_EQ(*odd.size, (rf::Size2{113, 113}));
  // A window narrower than the stride needs no padding: max(total, 0).
  const rf::Field narrow = last("a: maxpool k=1 s=3 p=same\n", tf(10));
  expect_both(narrow, {1, 3, 0}, "tf k=1 s=3");
  EXPECT_EQ(*narrow.size, (rf::Size2{4, 4}));
  // Per axis, from the size of each.
  const rf::Field hw = last("a: conv k=3 s=2 p=same\n", sized(224, 225, rf::PaddingConvention::tf));
  EXPECT_EQ(hw.axis[0].P, 0);
  EXPECT_EQ(hw.axis[1].P, 1);
  expect_problem([&] { analyze("a: conv k=3 s=2 p=same\n", unsized); }, rf::Problem::needs_input_size, 1,
                 {"input size", "stride 2"});
}

TEST(ReceptiveFieldDag, CeilModeChangesOnlyTheSize) {
  struct Case {
    std::string layer;
    std::int64_t n, floor_size, ceil_size;
  };
  // Known PyTorch answers; the last drops a window that would start in the
  // right padding (5 -> 4 by the ceiling, kept at 3).
  const Case cases[] = {
      {"maxpool k=2 s=2", 5, 2, 3},     {"maxpool k=3 s=2", 6, 2, 3},     {"maxpool k=3 s=2 p=1", 6, 3, 4},
      {"avgpool k=3 s=2", 7, 3, 3},     {"maxpool k=2 s=2 p=1", 5, 3, 3}, {"maxpool k=3 s=3 p=1", 6, 2, 3},
      {"maxpool k=2 s=2 p=1", 4, 3, 3},
  };
  for (const Case& c : cases) {
    const rf::Field f = last("a: " + c.layer + "\n", sized(c.n));
    const rf::Field g = last("a: " + c.layer + " ceil=1\n", sized(c.n));
    EXPECT_EQ((*f.size)[0], c.floor_size) << c.layer << " n=" << c.n;
    EXPECT_EQ((*g.size)[0], c.ceil_size) << c.layer << " ceil n=" << c.n;
    for (int a = 0; a < 2; ++a) {
      EXPECT_EQ(f.axis[a].r, g.axis[a].r);
      EXPECT_EQ(f.axis[a].S, g.axis[a].S);
      EXPECT_EQ(f.axis[a].P, g.axis[a].P);
    }
  }
}

TEST(ReceptiveFieldDag, OutputSizesFollowPyTorchAndCountTheWindows) {
  // floor((n + 2p - d(k-1) - 1)/s) + 1 is the number of windows i >= 0 whose
  // last tap i*s - p + d(k-1) lies in the padded input; ceil mode adds the
  // windows that start inside the input or its left padding and reach less
  // than a stride past the right padding.
  for (std::int64_t n = 1; n <= 12; ++n)
    for (std::int64_t k = 1; k <= 4; ++k)
      for (std::int64_t s = 1; s <= 3; ++s)
        for (std::int64_t d = 1; d <= 2; ++d)
          for (std::int64_t p = 0; p <= 2; ++p) {
            const std::int64_t span = d * (k - 1) + 1;
            std::int64_t full = 0, ceil_count = 0;
            for (std::int64_t i = 0; i < 100; ++i) {
              const std::int64_t first = i * s - p, last_tap = first + span - 1;
              if (last_tap <= n - 1 + p) ++full;
              if (first < n && last_tap <= n - 1 + p + s - 1) ++ceil_count;
            }
            const std::string layer = "a: maxpool k=" + std::to_string(k) + " s=" + std::to_string(s) +
                                      " d=" + std::to_string(d) + " p=" + std::to_string(p);
            if (full == 0) {
              expect_bad(layer + "\n", 1, {"larger than its padded input"}, sized(n));
              continue;
            }
            EXPECT_EQ((*last(layer + "\n", sized(n)).size)[0], full) << layer << " n=" << n;
            // PyTorch drops at most one window, so the two agree where it
            // accepts the pool: padding at most half the window.
            if (2 * p <= span) {
              EXPECT_EQ((*last(layer + " ceil=1\n", sized(n)).size)[0], ceil_count)
                  << layer << " ceil n=" << n;
            }
          }
}

TEST(ReceptiveFieldDag, TransposedConvolution) {
  // k=4 s=2 p=1 (a common 2x upsampler) after a 3x3/2: S halves, and the
  // window d(k-1)/s = 3/2 of the previous stride 2 adds 3; P gains 2*(3-1)/2.
  const rf::Field f = last("c: conv k=3 s=2 p=1\nd: deconv k=4 s=2 p=1\n", sized(9));
  expect_both(f, {6, 1, 3}, "deconv");
  EXPECT_EQ(f.axis[0].center(), Rational(-1, 2));
  // PyTorch: (n-1)s - 2p + d(k-1) + output_padding + 1 = 4*2 - 2 + 3 + 0 + 1.
  EXPECT_EQ(*f.size, (rf::Size2{10, 10}));
  EXPECT_EQ(*last("d: deconv k=3 s=2 p=1 output_padding=1\n", sized(7)).size, (rf::Size2{14, 14}));
  EXPECT_EQ(*last("d: deconv k=3 s=1 d=2 output_padding=1\n", sized(7)).size, (rf::Size2{12, 12}));
  EXPECT_EQ(*last("d: deconv k=2 s=3x2\n", sized(5, 6)).size, (rf::Size2{14, 12}));
  // Fractional strides are exact and come back to integers.
  const rf::Field alone = last("d: deconv k=3 s=2\n");
  expect_both(alone, {2, Rational(1, 2), 1}, "deconv from the input");
  expect_both(last("d: deconv k=3 s=2\nc: conv k=2 s=2\n"), {Rational(5, 2), 1, 1}, "then conv /2");
  expect_both(last("d: deconv k=1 s=3\n"), {1, Rational(1, 3), 0}, "deconv k=1 s=3");
  EXPECT_EQ(last("d: deconv k=1 s=3\n").axis[0].S.str(), "1/3");
  expect_bad("d: deconv k=2 s=1 p=3\n", 1, {"empty output"}, sized(2));
}

TEST(ReceptiveFieldDag, UpsamplingMatchesPyTorchSamplingPoints) {
  // Output j of an f-fold upsampling samples input c = (j + 1/2)/f - 1/2
  // (align_corners=False): that is the centre of its region, for both modes.
  for (std::int64_t f : {2, 3, 4}) {
    const std::string fs = std::to_string(f);
    const rf::Field nearest = last("u: upsample factor=" + fs + "\n", sized(5));
    const rf::Field bilinear = last("u: upsample factor=" + fs + " mode=bilinear\n", sized(5));
    EXPECT_EQ(*nearest.size, (rf::Size2{5 * f, 5 * f}));
    for (std::int64_t j = 0; j < 5 * f; ++j) {
      const Rational c = Rational(2 * j + 1, 2 * f) - Rational(1, 2);
      EXPECT_EQ(nearest.axis[0].center(j), c) << f << " " << j;
      EXPECT_EQ(bilinear.axis[0].center(j), c) << f << " " << j;
      // Nearest reads exactly one pixel, floor(j/f): the only integer inside.
      const Rational lo = nearest.axis[0].first(j), hi = nearest.axis[0].last(j);
      for (std::int64_t x = -2; x < 10; ++x) {
        const bool inside = !(Rational(x) < lo) && !(hi < Rational(x));
        EXPECT_EQ(inside, x == j / f) << "f=" << f << " j=" << j << " x=" << x;
      }
      // Bilinear reads the pixels strictly inside (c - 1, c + 1).
      EXPECT_EQ(bilinear.axis[0].first(j), c - 1);
      EXPECT_EQ(bilinear.axis[0].last(j), c + 1);
    }
    expect_both(nearest, {Rational(2 * f - 1, f), Rational(1, f), Rational(f - 1, f)}, "nearest " + fs);
  }
  // Nearest upsampling is a deconvolution with k = s = f: the same field.
  const rf::Field a = last("c: conv k=3 s=2\nu: upsample factor=2x3\n");
  const rf::Field b = last("c: conv k=3 s=2\nu: deconv k=2x3 s=2x3\n");
  for (int ax = 0; ax < 2; ++ax) expect_axis(a.axis[ax], {b.axis[ax].r, b.axis[ax].S, b.axis[ax].P}, "up");
}

TEST(ReceptiveFieldDag, GlobalAndAdaptivePooling) {
  // The global pool's single unit sees the whole input (and all padding).
  const rf::Field g = last("c: conv k=7 s=2 p=3\ng: global_pool\n", sized(64, 32));
  expect_axis(g.axis[0], {7 + 31 * 2, 64, 3}, "H");
  expect_axis(g.axis[1], {7 + 15 * 2, 32, 3}, "W");
  EXPECT_EQ(*g.size, (rf::Size2{1, 1}));
  const rf::Box box = rf::unit_box(g, 0, 0);
  EXPECT_TRUE(!(Rational(0) < box.x1) && !(box.x2 < Rational(31)));
  EXPECT_TRUE(!(Rational(0) < box.y1) && !(box.y2 < Rational(63)));
  // Adaptive pooling: windows k = s = n/m when m divides n.
  const rf::Field a = last("c: conv k=3 s=2\na: adaptive_pool out=3x1\n", sized(13));
  expect_axis(a.axis[0], {3 + 1 * 2, 4, 0}, "H 6 -> 3");
  expect_axis(a.axis[1], {3 + 5 * 2, 12, 0}, "W 6 -> 1");
  EXPECT_EQ(*a.size, (rf::Size2{3, 1}));
  EXPECT_EQ(last("a: adaptive_pool out=1\n", sized(9)).axis[0].r,
            last("g: global_pool\n", sized(9)).axis[0].r);
  // ... and one pixel per window, nearest upsampling, when n divides m.
  const rf::Field up = last("a: adaptive_pool out=12\n", sized(6));
  const rf::Field near = last("a: upsample factor=2\n", sized(6));
  expect_both(up, {near.axis[0].r, near.axis[0].S, near.axis[0].P}, "6 -> 12");
  EXPECT_EQ(*up.size, (rf::Size2{12, 12}));
  // Other sizes have unequal windows: refused, naming the sizes.
  expect_bad("c: conv k=3 s=2\na: adaptive_pool out=4\n", 2, {"from 6 to 4", "unequal"}, sized(13));
  expect_problem([] { analyze("g: global_pool\n"); }, rf::Problem::needs_input_size, 1, {"global_pool"});
  expect_problem([] { analyze("x: relu\na: adaptive_pool out=2\n"); }, rf::Problem::needs_input_size, 2,
                 {"adaptive_pool"});
}

TEST(ReceptiveFieldDag, AbsurdSizesAndOverflow) {
  // 64 stride-2 layers overflow the effective stride: an error at that line.
  std::string text;
  for (int i = 0; i < 70; ++i) text += "c" + std::to_string(i) + ": conv k=2 s=2\n";
  expect_bad(text, 63, {"overflows", "'c62'"});
  std::string up;
  for (int i = 0; i < 70; ++i) up += "u" + std::to_string(i) + ": upsample factor=2\n";
  expect_bad(up, 63, {"overflows"});
  // Output sizes too: 1e9 * 1e9 fits, 1e27 does not.
  expect_bad("a: deconv k=2 s=1000000000\nb: deconv k=2 s=1000000000\nc: deconv k=2 s=1000000000\n", 2,
             {"overflows", "'b'"}, sized(1000000000));
  expect_bad("a: conv k=9\n", 1, {"larger than its padded input"}, sized(4));
  rf::Options zero;
  zero.input_size = rf::Size2{0, 5};
  expect_problem([&] { analyze("a: conv k=1\n", zero); }, rf::Problem::needs_input_size, 0, {"input size"});
}

TEST(ReceptiveFieldDag, LastLayerTruncatesTheAnalysis) {
  // Analysing up to 'a' ignores the misaligned merge below it.
  const rf::Network net = rf::parse_network("a: conv k=3\nb: conv k=2 from=input\nsum: add from=a,b\n", "t");
  rf::Options opt;
  opt.last = 1;
  const rf::Analysis an = rf::analyze(net, opt);
  ASSERT_EQ(an.fields.size(), 2u);
  expect_both(an.fields[1], {3, 1, 0}, "a");
}

// ---------------------------------------------------------------- boxes and brute force

TEST(ReceptiveFieldBoxes, EveryUnitRowMajorAndClipped) {
  const rf::Field f = last("c: conv k=3 s=2 p=1\n", sized(4, 6));
  ASSERT_EQ(*f.size, (rf::Size2{2, 3}));
  const Tensor t = rf::unit_boxes(f, std::nullopt);
  ASSERT_EQ(t.shape(), (Shape{6, 4}));
  const float want[6][4] = {{-1, -1, 1, 1}, {1, -1, 3, 1}, {3, -1, 5, 1},
                            {-1, 1, 1, 3},  {1, 1, 3, 3},  {3, 1, 5, 3}};
  for (int u = 0; u < 6; ++u)
    for (int c = 0; c < 4; ++c) EXPECT_EQ(t.data<float>()[u * 4 + c], want[u][c]) << u << "," << c;
  const Tensor clipped = rf::unit_boxes(f, rf::Size2{4, 6});
  const float want_clipped[4] = {0, 0, 1, 1};
  for (int c = 0; c < 4; ++c) EXPECT_EQ(clipped.data<float>()[c], want_clipped[c]);
  EXPECT_EQ(clipped.data<float>()[5 * 4 + 2], 5);  // already inside
  // A unit that sees only padding misses the image: x1 > x2 after clipping.
  const rf::Field pad = last("c: conv k=1 p=3\n", sized(2));
  const rf::Box b = rf::clip_box(rf::unit_box(pad, 0, 0), rf::Size2{2, 2});
  EXPECT_TRUE(b.x2 < b.x1);
  EXPECT_THROW(rf::unit_boxes(last("c: conv k=1\n"), std::nullopt), Error);
}

TEST(ReceptiveFieldBoxes, HalfIntegerAndFractionalBoxes) {
  // conv k=2 s=2 (r 2, S 2, P 0) then nearest x2: S 1, r 2 + 2/2, P 2/2.
  const rf::Field f = last("c: conv k=2 s=2\nu: upsample factor=2\n", sized(4));
  expect_both(f, {3, 1, 1}, "conv, upsample");
  const rf::Box b = rf::unit_box(f, 1, 2);
  EXPECT_EQ(b.x1, 1);
  EXPECT_EQ(b.x2, 3);
  EXPECT_EQ(b.y1, 0);
  EXPECT_EQ(b.y2, 2);
  // Unit 1 samples conv unit 1/4 on PyTorch's grid, input pixel 2/4 + 1/2 = 1.
  EXPECT_EQ(f.axis[0].center(1), 1);
  // Half-integer centres and fractional corners come out exactly in float32.
  const rf::Field g = last("c: conv k=2\nu: upsample factor=4\n", sized(2));
  const Tensor t = rf::unit_boxes(g, std::nullopt);
  const rf::Box b0 = rf::unit_box(g, 0, 1);
  EXPECT_EQ(b0.x1, Rational(-1, 2));
  EXPECT_EQ(t.data<float>()[4], -0.5f);  // unit (0, 1): x1
  EXPECT_EQ(t.data<float>()[6], static_cast<float>(b0.x2.to_double()));
  EXPECT_EQ(g.axis[1].center(0), Rational(1, 8));
}

namespace {

// The input positions a unit of the last layer depends on, by propagating the
// set of positions backwards through a 1-D chain of windowed layers; padding
// positions are followed like any other, as the region formula does.
std::set<std::int64_t> brute_force(const std::vector<Win>& wins, const std::vector<std::int64_t>& dil,
                                   std::int64_t unit) {
  std::set<std::int64_t> cur = {unit};
  for (std::size_t l = wins.size(); l-- > 0;) {
    std::set<std::int64_t> prev;
    for (std::int64_t o : cur)
      for (std::int64_t j = 0; j < wins[l].k; ++j) prev.insert(o * wins[l].s - wins[l].p + j * dil[l]);
    cur = std::move(prev);
  }
  return cur;
}

}  // namespace

TEST(ReceptiveFieldBoxes, RegionFormulaEqualsBruteForceOnRandomChains) {
  std::mt19937 gen(2024);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); };
  for (int trial = 0; trial < 300; ++trial) {
    const int n = pick(1, 6);
    std::vector<Win> wins;
    std::vector<std::int64_t> dil;
    std::string text;
    for (int i = 0; i < n; ++i) {
      const Win w{pick(1, 5), pick(1, 3), pick(0, 3)};
      const std::int64_t d = pick(1, 3);
      wins.push_back(w);
      dil.push_back(d);
      text += "l" + std::to_string(i) + ": " + (pick(0, 1) ? "conv" : "maxpool") +
              " k=" + std::to_string(w.k) + " s=" + std::to_string(w.s) + " p=" + std::to_string(w.p) +
              " d=" + std::to_string(d) + "\n";
    }
    const rf::Field f = last(text);
    for (std::int64_t u : {0, 1, 5}) {
      const std::set<std::int64_t> seen = brute_force(wins, dil, u);
      EXPECT_EQ(f.axis[0].first(u), *seen.begin()) << text << "unit " << u;
      EXPECT_EQ(f.axis[0].last(u), *seen.rbegin()) << text << "unit " << u;
    }
  }
}

TEST(ReceptiveFieldBoxes, TransposedRegionBoundsTheExactSet) {
  // For a deconv, output o reads input i when o + p - j*d = i*s. The exact
  // hull of those inputs lies inside the reported real interval, and the two
  // differ by less than one input pixel at each end.
  for (std::int64_t k = 1; k <= 5; ++k)
    for (std::int64_t s = 1; s <= 3; ++s)
      for (std::int64_t p = 0; p < k; ++p)
        for (std::int64_t d = 1; d <= 2; ++d) {
          const rf::Field f = last("d: deconv k=" + std::to_string(k) + " s=" + std::to_string(s) +
                                   " p=" + std::to_string(p) + " d=" + std::to_string(d) + "\n");
          for (std::int64_t o = 0; o < 8; ++o) {
            std::int64_t lo = 1 << 20, hi = -(1 << 20);
            for (std::int64_t j = 0; j < k; ++j) {
              const std::int64_t t = o + p - j * d;
              if (t % s != 0) continue;
              lo = std::min(lo, t / s);
              hi = std::max(hi, t / s);
            }
            const std::string what = "k=" + std::to_string(k) + " s=" + std::to_string(s) +
                                     " p=" + std::to_string(p) + " d=" + std::to_string(d) +
                                     " o=" + std::to_string(o);
            const Rational first = f.axis[0].first(o), end = f.axis[0].last(o);
            if (lo > hi) {  // no tap lands on an input pixel: without gaps, no integer inside either
              const std::int64_t below_end = end.num() / end.den() - (end.num() < 0 && !end.is_integer());
              if (d == 1) {
                EXPECT_TRUE(Rational(below_end) < first) << what;
              }
              continue;
            }
            EXPECT_FALSE(Rational(lo) < first) << what;
            EXPECT_FALSE(end < Rational(hi)) << what;
            if (d == 1) {  // consecutive taps: one of every s lands on a pixel
              EXPECT_TRUE(Rational(lo) - first < Rational(1)) << what;
              EXPECT_TRUE(end - Rational(hi) < Rational(1)) << what;
            }
          }
        }
}
