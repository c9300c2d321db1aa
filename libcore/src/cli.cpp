#include "nnkit/cli.hpp"

#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdio>
#include <iostream>
#include <new>
#include <sstream>

#include "nnkit/error.hpp"
#include "nnkit/io.hpp"
#include "nnkit/memory_limit.hpp"
#include "nnkit/parallel.hpp"

namespace po = boost::program_options;

namespace nnkit::cli {

const char* version() { return NNKIT_VERSION; }

namespace {

// More threads than any machine has is a typo, not a request (and would wrap in int).
constexpr long long kMaxThreads = 1 << 16;

struct OptionDecl {
  std::string long_name;
  char short_name = 0;
  std::string metavar;  // empty for flags
  std::string help;
  std::string default_text;  // shown as "(default: ...)"; empty: not shown
  Complete complete = Complete::none;
  std::vector<std::string> choices;
  bool common = false;
};

std::pair<std::string, char> split_names(const std::string& names) {
  const auto comma = names.find(',');
  if (comma == std::string::npos) return {names, 0};
  return {names.substr(0, comma), names[comma + 1]};
}

std::string format_number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Wraps text to width columns, every line indented by indent spaces.
std::string wrap(const std::string& text, std::size_t indent, std::size_t first_used,
                 std::size_t width = 79) {
  std::string out, word;
  std::size_t col = first_used;
  std::istringstream in(text);
  bool first = true;
  while (in >> word) {
    if (!first && col + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      col = indent;
    } else if (!first) {
      out += ' ';
      ++col;
    }
    out += word;
    col += word.size();
    first = false;
  }
  return out;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

struct Tool::Impl {
  std::string name, summary, synopsis = "[OPTIONS] [INPUT...]", description;
  std::vector<std::pair<std::string, std::string>> examples;
  int min_inputs = 0, max_inputs = -1;
  std::string input_metavar = "INPUT";
  bool has_output = true;
  std::vector<std::string> to_formats = {"npy", "safetensors", "txt", "csv", "png", "json"};
  std::string to_default = "from the -o extension, else npy on a pipe and txt on a terminal";
  std::vector<OptionDecl> decls;
  po::options_description options{"options"};
  po::variables_map vm;

  std::vector<std::string> inputs;
  std::string output = "-", to;
  bool quiet = false, help = false, show_version = false;
  long long threads = 0;
  std::string completion;

  void declare(OptionDecl d) { decls.push_back(std::move(d)); }
  po::options_description common_options;
  bool common_added = false;
  // The common options join the tool's own the first time either is needed
  // (parsing, help, completions), after the tool declared no_output() or not.
  void ensure_common() {
    if (!common_added) add_common(common_options);
    common_added = true;
  }
  void add_common(po::options_description& common);
};

Tool::Tool(std::string name, std::string summary) : impl_(std::make_unique<Impl>()) {
  impl_->name = std::move(name);
  impl_->summary = std::move(summary);
}
Tool::~Tool() = default;

Tool& Tool::synopsis(std::string s) {
  impl_->synopsis = std::move(s);
  return *this;
}
Tool& Tool::description(std::string s) {
  impl_->description = std::move(s);
  return *this;
}
Tool& Tool::example(std::string command, std::string explanation) {
  impl_->examples.emplace_back(std::move(command), std::move(explanation));
  return *this;
}
Tool& Tool::inputs(int min, int max, std::string metavar) {
  impl_->min_inputs = min;
  impl_->max_inputs = max;
  impl_->input_metavar = std::move(metavar);
  return *this;
}
Tool& Tool::no_output() {
  impl_->has_output = false;
  return *this;
}
Tool& Tool::output_formats(std::vector<std::string> formats, std::string default_rule) {
  impl_->to_formats = std::move(formats);
  impl_->to_default = std::move(default_rule);
  return *this;
}

Tool& Tool::flag(const std::string& names, bool* target, const std::string& help) {
  auto [l, s] = split_names(names);
  impl_->options.add_options()(names.c_str(), po::bool_switch(target), help.c_str());
  impl_->declare({l, s, "", help, "", Complete::none, {}, false});
  return *this;
}

Tool& Tool::option(const std::string& names, std::string* target, const std::string& metavar,
                   const std::string& help, Complete c) {
  auto [l, s] = split_names(names);
  impl_->options.add_options()(names.c_str(), po::value<std::string>(target)->default_value(*target),
                               help.c_str());
  impl_->declare({l, s, metavar, help, *target, c, {}, false});
  return *this;
}

Tool& Tool::option(const std::string& names, long long* target, const std::string& metavar,
                   const std::string& help) {
  auto [l, s] = split_names(names);
  impl_->options.add_options()(names.c_str(), po::value<long long>(target)->default_value(*target),
                               help.c_str());
  impl_->declare({l, s, metavar, help, std::to_string(*target), Complete::none, {}, false});
  return *this;
}

Tool& Tool::option(const std::string& names, double* target, const std::string& metavar,
                   const std::string& help) {
  auto [l, s] = split_names(names);
  impl_->options.add_options()(names.c_str(), po::value<double>(target)->default_value(*target),
                               help.c_str());
  impl_->declare({l, s, metavar, help, format_number(*target), Complete::none, {}, false});
  return *this;
}

Tool& Tool::choice(const std::string& names, std::string* target, std::vector<std::string> choices,
                   const std::string& help, const std::string& metavar) {
  auto [l, s] = split_names(names);
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : "|") + c;
  const std::string long_name = l, fallback = *target;
  impl_->options.add_options()(
      names.c_str(),
      po::value<std::string>(target)->default_value(*target)->notifier(
          [choices, long_name, list, fallback](const std::string& v) {
            if (v == fallback) return;  // the default, e.g. "" for an option not given
            for (const auto& c : choices)
              if (v == c) return;
            throw_usage("--" + long_name + " must be one of " + list + ", not '" + v + "'");
          }),
      help.c_str());
  impl_->declare({l, s, metavar.empty() ? list : metavar, help, *target, Complete::word,
                  std::move(choices), false});
  return *this;
}

bool Tool::given(const std::string& long_name) const {
  auto it = impl_->vm.find(long_name);
  return it != impl_->vm.end() && !it->second.defaulted();
}

const std::string& Tool::name() const { return impl_->name; }
const std::vector<std::string>& Tool::input_paths() const { return impl_->inputs; }
const std::string& Tool::output_path() const { return impl_->output; }
const std::string& Tool::to_format() const { return impl_->to; }
bool Tool::quiet() const { return impl_->quiet; }
int Tool::threads() const { return thread_count(); }

namespace {

}  // namespace

void Tool::Impl::add_common(po::options_description& common) {
  Impl& m = *this;
  auto add = [&](OptionDecl d) {
    d.common = true;
    m.decls.push_back(std::move(d));
  };
  common.add_options()("help,h", po::bool_switch(&m.help), "")("version", po::bool_switch(&m.show_version), "");
  add({"help", 'h', "", "print this help and exit", "", Complete::none, {}, true});
  add({"version", 0, "", "print the version and exit", "", Complete::none, {}, true});
  if (m.has_output) {
    std::string list;
    for (std::size_t i = 0; i < m.to_formats.size(); ++i)
      list += (i == 0 ? "" : i + 1 == m.to_formats.size() ? " or " : ", ") + m.to_formats[i];
    const std::vector<std::string> formats = m.to_formats;
    common.add_options()("output,o", po::value<std::string>(&m.output)->default_value("-"), "")(
        "to", po::value<std::string>(&m.to)->notifier([formats, list](const std::string& v) {
          const std::string name = v == "text" ? "txt" : v == "st" ? "safetensors" : v;  // aliases
          for (const auto& f : formats)
            if (name == f) return;
          throw_usage("--to must be " + list + ", not '" + v + "'");
        }),
        "");
    add({"output", 'o', "FILE",
         "write to FILE, created atomically (- is stdout)", "-", Complete::file, {}, true});
    add({"to", 0, "FORMAT", "output format: " + list + " (default: " + m.to_default + ")", "",
         Complete::word, m.to_formats, true});
  }
  common.add_options()("quiet,q", po::bool_switch(&m.quiet), "")(
      "threads", po::value<long long>(&m.threads)->default_value(0), "");
  add({"quiet", 'q', "", "print nothing but errors", "", Complete::none, {}, true});
  add({"threads", 0, "N", "use at most N threads, BLAS included (0: $OPENBLAS_NUM_THREADS if set, else all cores)", "0",
       Complete::none, {}, true});
}

namespace {

std::string option_label(const OptionDecl& d) {
  std::string s = d.short_name ? std::string("-") + d.short_name + ", " : std::string("    ");
  s += "--" + d.long_name;
  if (!d.metavar.empty()) s += " " + d.metavar;
  return s;
}

std::string option_help(const OptionDecl& d) {
  std::string h = d.help;
  if (!d.metavar.empty() && !d.default_text.empty() && h.find("(default") == std::string::npos)
    h += " (default: " + d.default_text + ")";
  return h;
}

std::string shell_quote_single(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out;
}

// zsh's _arguments descriptions: brackets and colons have meaning there.
std::string zsh_text(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '[') out += '(';
    else if (c == ']') out += ')';
    else if (c == ':') out += ' ';
    else if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out;
}

std::string first_sentence(const std::string& s) {
  const auto p = s.find("; ");
  const auto q = s.find(" (");
  return s.substr(0, std::min(p, q));
}

}  // namespace

std::string Tool::help_text() const {
  impl_->ensure_common();
  const Impl& m = *impl_;
  std::ostringstream o;
  o << "Usage: " << m.name << " " << m.synopsis << "\n" << wrap(m.summary, 0, 0) << "\n";
  if (!m.description.empty()) {
    std::istringstream paras(m.description);
    std::string para;
    while (std::getline(paras, para)) o << "\n" << (para.empty() ? "" : wrap(para, 0, 0));
    o << "\n";
  }
  auto print = [&](bool common) {
    for (const auto& d : m.decls) {
      if (d.common != common) continue;
      std::string label = "  " + option_label(d);
      const std::size_t col = 30;
      if (label.size() + 2 > col) {
        o << label << "\n" << std::string(col, ' ');
      } else {
        o << label << std::string(col - label.size(), ' ');
      }
      o << wrap(option_help(d), col, col) << "\n";
    }
  };
  o << "\nOptions:\n";
  print(false);
  print(true);
  if (!m.examples.empty()) {
    o << "\nExamples:\n";
    for (const auto& [cmd, what] : m.examples) o << "  " << cmd << "\n      " << wrap(what, 6, 6) << "\n";
  }

  return o.str();
}

std::string Tool::completion_script(const std::string& shell) const {
  impl_->ensure_common();
  const Impl& m = *impl_;
  std::string fn = "_nnkit_" + m.name;
  for (char& c : fn)
    if (c == '-') c = '_';
  std::ostringstream o;
  if (shell == "bash") {
    o << "# bash completion for " << m.name << " (nnkit); generated by '" << m.name
      << " --completion bash' from its option declarations\n";
    o << fn << "() {\n  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n";
    o << "  case \"$prev\" in\n";
    for (const auto& d : m.decls) {
      if (d.metavar.empty()) continue;
      o << "    " << (d.short_name ? std::string("-") + d.short_name + "|" : "") << "--" << d.long_name << ")";
      if (!d.choices.empty()) {
        std::string words;
        for (const auto& c : d.choices) words += (words.empty() ? "" : " ") + c;
        o << " COMPREPLY=($(compgen -W '" << shell_quote_single(words) << "' -- \"$cur\")); return;;\n";
      } else if (d.complete == Complete::file) {
        o << " COMPREPLY=($(compgen -f -- \"$cur\")); return;;\n";
      } else if (d.complete == Complete::directory) {
        o << " COMPREPLY=($(compgen -d -- \"$cur\")); return;;\n";
      } else {
        o << " return;;\n";
      }
    }
    o << "  esac\n";
    std::string all;
    for (const auto& d : m.decls) {
      if (d.short_name) all += std::string(all.empty() ? "" : " ") + "-" + d.short_name;
      all += std::string(all.empty() ? "" : " ") + "--" + d.long_name;
    }
    o << "  if [[ \"$cur\" == -* ]]; then\n    COMPREPLY=($(compgen -W '" << all
      << "' -- \"$cur\"))\n    return\n  fi\n";
    o << "  COMPREPLY=($(compgen -f -- \"$cur\"))\n}\n";
    o << "complete -o filenames -F " << fn << " " << m.name << "\n";
  } else if (shell == "zsh") {
    o << "#compdef " << m.name << "\n";
    o << "# zsh completion for " << m.name << " (nnkit); generated by '" << m.name
      << " --completion zsh' from its option declarations\n";
    o << "_arguments -s \\\n";
    for (const auto& d : m.decls) {
      const std::string desc = "[" + zsh_text(first_sentence(d.help)) + "]";
      std::string spec;
      if (d.short_name)
        spec = "'(-" + std::string(1, d.short_name) + " --" + d.long_name + ")'{-" +
               std::string(1, d.short_name) + ",--" + d.long_name + "}'" + desc;
      else
        spec = "'--" + d.long_name + desc;
      if (!d.metavar.empty()) {
        std::string action;
        if (!d.choices.empty()) {
          action = "(";
          for (const auto& c : d.choices) action += (action.size() > 1 ? " " : "") + c;
          action += ")";
        } else if (d.complete == Complete::file) {
          action = "_files";
        } else if (d.complete == Complete::directory) {
          action = "_files -/";
        } else {
          action = " ";
        }
        spec += ":" + zsh_text(d.metavar) + ":" + action;
      }
      o << "  " << spec << "' \\\n";
    }
    o << "  '*:" << m.input_metavar << ":_files'\n";
  } else {
    throw_usage("--completion takes bash or zsh, not '" + shell + "'");
  }
  return o.str();
}

int Tool::run(int argc, char** argv, const std::function<void(Tool&)>& body) {
  Impl& m = *impl_;
  auto fail = [&](const std::string& msg) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s: error: %s\n", m.name.c_str(), one_line(msg).c_str());
  };
  try {
    install_signal_handlers();
    m.ensure_common();
    po::options_description hidden;
    hidden.add_options()("input", po::value<std::vector<std::string>>(&m.inputs), "")(
        "completion", po::value<std::string>(&m.completion), "");
    po::options_description all;
    all.add(m.options).add(m.common_options).add(hidden);
    po::positional_options_description pos;
    pos.add("input", -1);
    po::store(po::command_line_parser(argc, argv)
                  .options(all)
                  .positional(pos)
                  .style(po::command_line_style::unix_style ^ po::command_line_style::allow_guessing)
                  .run(),
              m.vm);
    po::notify(m.vm);
    // Help, version and completions go through Output like any result, so a
    // full disk is an error (74) and a closed pipe ends quietly.
    auto print = [](const std::string& text) {
      Output out = Output::open("-");
      out.write(text);
      out.commit();
    };
    if (m.help) {
      print(help_text());
      return 0;
    }
    if (m.show_version) {
      print(m.name + " (nnkit) " + version() + "\n");
      return 0;
    }
    if (!m.completion.empty()) {
      print(completion_script(m.completion));
      return 0;
    }
    const int n = static_cast<int>(m.inputs.size());
    if (n < m.min_inputs)
      throw_usage("expected " + (m.min_inputs == 1 ? std::string("an input") : "at least " + std::to_string(m.min_inputs) + " inputs") +
                  " (" + m.input_metavar + "); try '" + m.name + " --help'");
    if (m.max_inputs >= 0 && n > m.max_inputs)
      throw_usage(m.max_inputs == 0 ? "no input files are taken, got '" + m.inputs.front() + "'"
                                    : "too many inputs: at most " + std::to_string(m.max_inputs) +
                                          " " + m.input_metavar + ", got " + std::to_string(n));
    if (n == 0 && m.max_inputs != 0) m.inputs.push_back("-");
    if (m.threads < 0 || m.threads > kMaxThreads)
      throw_usage("--threads must be 0 (all cores) to " + std::to_string(kMaxThreads) + ", not " +
                  std::to_string(m.threads));
    set_threads(static_cast<int>(m.threads));
    max_memory();  // a malformed NNKIT_MAX_MEMORY is a usage error in every tool, before any work
    body(*this);
    return 0;
  } catch (const BrokenPipe&) {
    return 0;  // the reader went away: nothing more to say
  } catch (const Error& e) {
    fail(e.what());
    return static_cast<int>(e.code());
  } catch (const po::error& e) {
    fail(std::string(e.what()) + "; try '" + m.name + " --help'");
    return static_cast<int>(ExitCode::usage);
  } catch (const std::bad_alloc&) {
    fail("out of memory");
    return static_cast<int>(ExitCode::software);
  } catch (const std::exception& e) {
    fail(std::string("internal error: ") + e.what());
    return static_cast<int>(ExitCode::software);
  }
}

void note(const Tool& tool, const std::string& message) {
  if (!tool.quiet()) std::fprintf(stderr, "%s: %s\n", tool.name().c_str(), message.c_str());
}

}  // namespace nnkit::cli
