// The command-line layer every tool uses, on Boost.Program_options: the common
// options, positional inputs, help text with synopsis, defaults and examples,
// the version string, completion scripts generated from the same declarations,
// and the one place where exceptions become a one-line message and an exit code.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace nnkit::cli {

// The project version, from CMake (e.g. "0.1.0").
const char* version();

// How a shell should complete an option's value.
enum class Complete { none, file, directory, word };

class Tool {
 public:
  Tool(std::string name, std::string summary);
  ~Tool();

  // Text after the tool name in the usage line; default "[OPTIONS] [INPUT...]".
  Tool& synopsis(std::string s);
  // A paragraph printed after the usage line.
  Tool& description(std::string s);
  Tool& example(std::string command, std::string explanation);
  // Positional inputs: at least min, at most max (-1: any number). With
  // min == 0 and none given, inputs() is {"-"} (stdin).
  Tool& inputs(int min, int max, std::string metavar = "INPUT");
  // Drops the common -o/--output and --to (tools that write no tensors).
  Tool& no_output();
  // The formats --to accepts (default: npy safetensors txt csv png json) and
  // how the format is chosen when --to is not given, for the help.
  Tool& output_formats(std::vector<std::string> formats, std::string default_rule);

  // An option whose value lands in *target; its current value is the
  // documented default. names: "long" or "long,s". metavar names the value.
  Tool& flag(const std::string& names, bool* target, const std::string& help);
  Tool& option(const std::string& names, std::string* target, const std::string& metavar,
               const std::string& help, Complete c = Complete::none);
  Tool& option(const std::string& names, long long* target, const std::string& metavar,
               const std::string& help);
  Tool& option(const std::string& names, double* target, const std::string& metavar,
               const std::string& help);
  // An option restricted to a fixed set of words (completed by the shells).
  // The help shows them as its metavar unless one is given (long lists).
  Tool& choice(const std::string& names, std::string* target, std::vector<std::string> choices,
               const std::string& help, const std::string& metavar = "");
  // True when the user gave the option on the command line.
  bool given(const std::string& long_name) const;

  // Parses argv, handles --help/--version/--completion, applies --threads,
  // runs body and maps every exception to its message and exit code.
  int run(int argc, char** argv, const std::function<void(Tool&)>& body);

  const std::string& name() const;
  const std::vector<std::string>& input_paths() const;
  const std::string& output_path() const;  // "-" by default
  const std::string& to_format() const;    // "" when not given
  bool quiet() const;
  int threads() const;  // resolved: >= 1

  // For tests and docs.
  std::string help_text() const;
  std::string completion_script(const std::string& shell) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Warnings and notes on stderr, suppressed by -q.
void note(const Tool& tool, const std::string& message);

}  // namespace nnkit::cli
