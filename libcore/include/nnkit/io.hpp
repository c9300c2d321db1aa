// Byte streams for every tool: inputs from files or stdin with checked reads
// and byte offsets for errors; outputs that are atomic for files (temporary
// beside the target, renamed on success, removed on failure or SIGINT/SIGTERM)
// and that end quietly when the reader of stdout goes away.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nnkit {

// Thrown when stdout's reader has gone away; cli::run ends the tool quietly.
struct BrokenPipe {};

class Input {
 public:
  // "-" is stdin. A missing, unreadable or directory path is exit 66.
  static Input open(const std::string& path);
  // An in-memory input (tests, decoded containers).
  static Input from_bytes(std::string bytes, std::string name);
  Input(Input&&) noexcept;
  Input& operator=(Input&&) noexcept;
  ~Input();

  // "<stdin>" or the path, for messages.
  const std::string& name() const { return name_; }
  // Bytes consumed so far.
  std::uint64_t offset() const { return offset_; }
  // Reads exactly n bytes into buf; a short read is a data error that names
  // `what`, the byte offset and the input.
  void read_exact(void* buf, std::size_t n, std::string_view what);
  // Reads up to n bytes; returns how many (0 only at end of input).
  std::size_t read_some(void* buf, std::size_t n);
  // Up to n bytes ahead without consuming them (fewer at end of input).
  std::string_view peek(std::size_t n);
  bool at_eof();
  // Everything that is left.
  std::string read_all();
  // Bytes left when the input is a regular file (or in memory), else -1; used
  // to refuse headers that claim more data than can exist.
  std::int64_t remaining_hint() const;

 private:
  Input() = default;
  bool fill(std::size_t want);
  int fd_ = -1;
  bool owns_fd_ = false;
  std::string name_;
  std::uint64_t offset_ = 0;
  std::int64_t file_size_ = -1;  // regular files and memory inputs
  std::vector<char> buf_;
  std::size_t buf_pos_ = 0, buf_end_ = 0;
  bool eof_ = false;
};

class Output {
 public:
  // "-" is stdout. A file is written to a temporary beside it and renamed into
  // place by commit(); exit 73 when it cannot be created.
  static Output open(const std::string& path);
  Output(Output&&) noexcept;
  Output& operator=(Output&&) noexcept;
  ~Output();  // removes the temporary unless committed

  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }
  bool is_stdout() const { return fd_ == 1 && tmp_.empty(); }
  bool is_terminal() const;
  void write(const void* data, std::size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  // Flushes and, for files, renames the temporary onto the target.
  void commit();

 private:
  Output() = default;
  void flush_buffer();
  void raw_write(const char* p, std::size_t n);
  int fd_ = -1;
  std::string path_, tmp_, name_;
  std::vector<char> buf_;
  bool committed_ = false;
};

// Installs the handlers that remove registered temporaries on SIGINT/SIGTERM
// and makes a closed pipe an EPIPE error rather than a signal. cli::run calls it.
void install_signal_handlers();

// True when fd refers to a terminal.
bool is_terminal_fd(int fd);

}  // namespace nnkit
