#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nnkit/cli.hpp"
#include "nnkit/error.hpp"
#include "nnkit/io.hpp"

using namespace nnkit;

namespace {
// Runs a tool with args; returns the exit code, capturing stdout and stderr.
struct Result {
  int code;
  std::string out, err;
};
Result run(cli::Tool& tool, std::vector<std::string> args, const std::function<void(cli::Tool&)>& body) {
  args.insert(args.begin(), "demo");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  const int code = tool.run(static_cast<int>(argv.size()), argv.data(), body);
  Result r{code, testing::internal::GetCapturedStdout(), testing::internal::GetCapturedStderr()};
  return r;
}
}  // namespace

TEST(Cli, OptionsDefaultsAndPositionals) {
  std::string metric = "iou";
  long long k = 5;
  double scale = 2.5;
  bool fast = false;
  cli::Tool tool("demo", "A demo tool.");
  tool.choice("metric", &metric, {"iou", "giou"}, "overlap metric")
      .option("k,k", &k, "K", "neighbours")
      .option("scale", &scale, "S", "scale factor")
      .flag("fast", &fast, "go fast");
  std::vector<std::string> seen;
  Result r = run(tool, {"--metric", "giou", "-k", "7", "a.npy", "-", "--fast", "-o", "x.npy"},
                 [&](cli::Tool& t) {
                   seen = t.input_paths();
                   EXPECT_EQ(t.output_path(), "x.npy");
                   EXPECT_TRUE(t.given("metric"));
                   EXPECT_FALSE(t.given("scale"));
                 });
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(metric, "giou");
  EXPECT_EQ(k, 7);
  EXPECT_EQ(scale, 2.5);
  EXPECT_TRUE(fast);
  EXPECT_EQ(seen, (std::vector<std::string>{"a.npy", "-"}));
}

TEST(Cli, NoInputMeansStdin) {
  cli::Tool tool("demo", "A demo tool.");
  std::vector<std::string> seen;
  Result r = run(tool, {}, [&](cli::Tool& t) { seen = t.input_paths(); });
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(seen, (std::vector<std::string>{"-"}));
}

TEST(Cli, HelpHasSynopsisOptionsDefaultsExamples) {
  long long k = 5;
  cli::Tool tool("demo", "A demo tool.");
  tool.option("neighbours,k", &k, "K", "how many").example("demo -k 3 x.npy", "three neighbours");
  bool ran = false;
  Result r = run(tool, {"--help"}, [&](cli::Tool&) { ran = true; });
  EXPECT_EQ(r.code, 0);
  EXPECT_FALSE(ran);
  EXPECT_EQ(r.out.rfind("Usage: demo [OPTIONS] [INPUT...]", 0), 0u) << r.out;
  for (const char* want : {"-k, --neighbours K", "(default: 5)", "-o, --output FILE", "--threads N",
                           "-q, --quiet", "--version", "Examples:", "demo -k 3 x.npy"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  EXPECT_EQ(r.err, "");
}

TEST(Cli, Version) {
  cli::Tool tool("demo", "A demo tool.");
  Result r = run(tool, {"--version"}, [](cli::Tool&) {});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, std::string("demo (nnkit) ") + cli::version() + "\n");
}

TEST(Cli, UsageErrorsAreOneLineAndExit64) {
  std::string metric = "iou";
  cli::Tool tool("demo", "A demo tool.");
  tool.choice("metric", &metric, {"iou", "giou"}, "overlap metric").inputs(0, 1);
  for (auto args : std::vector<std::vector<std::string>>{
           {"--metric", "bogus"}, {"--nope"}, {"a", "b"}, {"--threads", "x"}, {"--threads", "-2"}}) {
    Result r = run(tool, args, [](cli::Tool&) {});
    EXPECT_EQ(r.code, 64) << args[0];
    EXPECT_EQ(r.err.rfind("demo: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST(Cli, ExceptionsBecomeExitCodes) {
  cli::Tool tool("demo", "A demo tool.");
  const std::pair<ExitCode, int> cases[] = {{ExitCode::data, 65}, {ExitCode::no_input, 66},
                                            {ExitCode::cant_create, 73}, {ExitCode::io, 74},
                                            {ExitCode::software, 70}};
  for (auto [code, want] : cases) {
    Result r = run(tool, {}, [code = code](cli::Tool&) { throw Error(code, "bad thing\nsecond line"); });
    EXPECT_EQ(r.code, want);
    EXPECT_EQ(r.err, "demo: error: bad thing second line\n");
  }
  Result r = run(tool, {}, [](cli::Tool&) { throw BrokenPipe{}; });
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.err, "");
  r = run(tool, {}, [](cli::Tool&) { throw std::runtime_error("oops"); });
  EXPECT_EQ(r.code, 70);
}

TEST(Cli, CompletionScriptsListEveryOption) {
  std::string metric = "iou", codebook;
  cli::Tool tool("demo-tool", "A demo tool.");
  tool.choice("metric", &metric, {"iou", "giou"}, "overlap metric")
      .option("codebook", &codebook, "FILE", "codes", cli::Complete::file);
  const std::string bash = tool.completion_script("bash");
  for (const char* want : {"complete -o filenames -F _nnkit_demo_tool demo-tool", "--metric)",
                           "compgen -W 'iou giou'", "--codebook) COMPREPLY=($(compgen -f",
                           "--threads", "--output", "-q"})
    EXPECT_NE(bash.find(want), std::string::npos) << want << "\n" << bash;
  const std::string zsh = tool.completion_script("zsh");
  for (const char* want : {"#compdef demo-tool", "--metric[overlap metric]:iou|giou:(iou giou)",
                           "--codebook[codes]:FILE:_files", "{-o,--output}"})
    EXPECT_NE(zsh.find(want), std::string::npos) << want << "\n" << zsh;
  EXPECT_THROW(tool.completion_script("fish"), Error);
}
