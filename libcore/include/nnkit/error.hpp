// Errors as exceptions that carry their sysexits(3) code; cli::run turns them
// into the one-line message "tool: error: ..." and the exit status.
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>

namespace nnkit {

enum class ExitCode : int {
  ok = 0,
  usage = 64,        // EX_USAGE: bad command line
  data = 65,         // EX_DATAERR: malformed input data
  no_input = 66,     // EX_NOINPUT: input missing or unreadable
  software = 70,     // EX_SOFTWARE: internal error (a bug)
  cant_create = 73,  // EX_CANTCREAT: output cannot be created
  io = 74,           // EX_IOERR: read or write failed midway
};

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& what) : std::runtime_error(what), code_(code) {}
  ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

// Text from a file made safe for a one-line message: control characters
// become \xNN escapes. in_quotes adds single quotes around it.
std::string printable(std::string_view text);
std::string in_quotes(std::string_view text);

[[noreturn]] inline void throw_usage(const std::string& m) { throw Error(ExitCode::usage, m); }
[[noreturn]] inline void throw_data(const std::string& m) { throw Error(ExitCode::data, m); }
[[noreturn]] inline void throw_no_input(const std::string& m) { throw Error(ExitCode::no_input, m); }
[[noreturn]] inline void throw_internal(const std::string& m) { throw Error(ExitCode::software, m); }
[[noreturn]] inline void throw_cant_create(const std::string& m) { throw Error(ExitCode::cant_create, m); }
[[noreturn]] inline void throw_io(const std::string& m) { throw Error(ExitCode::io, m); }

}  // namespace nnkit
