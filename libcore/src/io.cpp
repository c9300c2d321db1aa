#include "nnkit/io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "nnkit/error.hpp"

namespace nnkit {

namespace {

constexpr std::size_t input_buffer_size = 1 << 18;
constexpr std::size_t output_buffer_size = 1 << 20;

std::string errno_text(int e) { return std::strerror(e); }

// Temporaries to remove if a signal ends the process. Fixed storage so that the
// handler only touches memory that is always valid (async-signal-safe).
constexpr int max_temps = 64;
constexpr std::size_t max_temp_path = 4096;
char temp_paths[max_temps][max_temp_path];
// A slot is free, reserved (its path being written) or armed (the handler
// removes its file); the handler never reads a half-written path.
enum SlotState : int { slot_free, slot_reserved, slot_armed };
std::atomic<int> temp_state[max_temps];

void register_temp(const std::string& path) {
  if (path.size() >= max_temp_path) return;
  for (int i = 0; i < max_temps; ++i) {
    int expected = slot_free;
    if (temp_state[i].compare_exchange_strong(expected, slot_reserved)) {
      std::memcpy(temp_paths[i], path.c_str(), path.size() + 1);
      temp_state[i].store(slot_armed);
      return;
    }
  }
}

void unregister_temp(const std::string& path) {
  for (int i = 0; i < max_temps; ++i)
    if (temp_state[i].load() == slot_armed && path == temp_paths[i]) temp_state[i].store(slot_free);
}

// Blocks the signals that remove temporaries while one is created and
// registered, so that none can arrive in between and leave it behind.
class TerminationSignalsBlocked {
 public:
  TerminationSignalsBlocked() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~TerminationSignalsBlocked() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t old_;
};

extern "C" void remove_temps_and_die(int sig) {
  for (int i = 0; i < max_temps; ++i)
    if (temp_state[i].load() == slot_armed) ::unlink(temp_paths[i]);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

void install_signal_handlers() {
  std::signal(SIGPIPE, SIG_IGN);  // a closed reader becomes EPIPE, handled quietly
  struct sigaction sa {};
  sa.sa_handler = remove_temps_and_die;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
}

bool is_terminal_fd(int fd) { return ::isatty(fd) == 1; }

namespace {
// A 1 MiB pipe instead of the default 64 KiB: fewer context switches in
// pipelines of tools. Best effort; the kernel may refuse.
void widen_pipe(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) ::fcntl(fd, F_SETPIPE_SZ, 1 << 20);
}
}  // namespace

// ---------------------------------------------------------------- Input

Input Input::open(const std::string& path) {
  Input in;
  if (path == "-") {
    in.fd_ = 0;
    in.name_ = "<stdin>";
    widen_pipe(0);
  } else {
    in.name_ = path;
    in.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in.fd_ < 0) throw_no_input("cannot open " + path + ": " + errno_text(errno));
    in.owns_fd_ = true;
  }
  struct stat st {};
  if (::fstat(in.fd_, &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw_no_input("cannot read " + in.name_ + ": it is a directory");
    if (S_ISREG(st.st_mode)) {
      // For stdin redirected from a file, the position may not be 0.
      const off_t pos = ::lseek(in.fd_, 0, SEEK_CUR);
      in.file_size_ = st.st_size - (pos > 0 ? pos : 0);
    }
  }
  in.buf_.resize(input_buffer_size);
  return in;
}

Input Input::from_bytes(std::string bytes, std::string name) {
  Input in;
  in.name_ = std::move(name);
  in.buf_.assign(bytes.begin(), bytes.end());
  in.buf_end_ = in.buf_.size();
  in.file_size_ = static_cast<std::int64_t>(in.buf_.size());
  in.eof_ = true;
  return in;
}

Input::Input(Input&& o) noexcept { *this = std::move(o); }

Input& Input::operator=(Input&& o) noexcept {
  if (this != &o) {
    if (owns_fd_) ::close(fd_);
    fd_ = o.fd_;
    owns_fd_ = o.owns_fd_;
    o.owns_fd_ = false;
    o.fd_ = -1;
    name_ = std::move(o.name_);
    offset_ = o.offset_;
    file_size_ = o.file_size_;
    buf_ = std::move(o.buf_);
    buf_pos_ = o.buf_pos_;
    buf_end_ = o.buf_end_;
    eof_ = o.eof_;
  }
  return *this;
}

Input::~Input() {
  if (owns_fd_) ::close(fd_);
}

namespace {
// read(2) with EINTR retried; an error is exit 74.
std::size_t read_fd(int fd, char* p, std::size_t n, const std::string& name) {
  for (;;) {
    const ssize_t r = ::read(fd, p, n);
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno == EINTR) continue;
    if (errno == EISDIR) throw_no_input("cannot read " + name + ": it is a directory");
    throw_io("read error on " + name + ": " + errno_text(errno));
  }
}
}  // namespace

bool Input::fill(std::size_t want) {
  if (buf_end_ - buf_pos_ >= want) return true;
  if (eof_ || fd_ < 0) return false;
  if (buf_pos_ > 0) {  // slide what is left to the front
    std::memmove(buf_.data(), buf_.data() + buf_pos_, buf_end_ - buf_pos_);
    buf_end_ -= buf_pos_;
    buf_pos_ = 0;
  }
  if (buf_.size() < want) buf_.resize(want);
  while (buf_end_ < want) {
    const std::size_t r = read_fd(fd_, buf_.data() + buf_end_, buf_.size() - buf_end_, name_);
    if (r == 0) {
      eof_ = true;
      return false;
    }
    buf_end_ += r;
  }
  return true;
}

std::size_t Input::read_some(void* buf, std::size_t n) {
  if (n == 0) return 0;
  if (buf_pos_ == buf_end_) {
    if (eof_ || fd_ < 0) return 0;
    if (n >= buf_.size()) {  // large reads go straight to the caller's memory
      const std::size_t r = read_fd(fd_, static_cast<char*>(buf), n, name_);
      if (r == 0) eof_ = true;
      offset_ += r;
      return r;
    }
    buf_pos_ = buf_end_ = 0;
    const std::size_t r = read_fd(fd_, buf_.data(), buf_.size(), name_);
    if (r == 0) {
      eof_ = true;
      return 0;
    }
    buf_end_ = r;
  }
  const std::size_t k = std::min(n, buf_end_ - buf_pos_);
  std::memcpy(buf, buf_.data() + buf_pos_, k);
  buf_pos_ += k;
  offset_ += k;
  return k;
}

void Input::read_exact(void* buf, std::size_t n, std::string_view what) {
  auto* p = static_cast<char*>(buf);
  const std::uint64_t start = offset_;
  std::size_t got = 0;
  while (got < n) {
    const std::size_t r = read_some(p + got, n - got);
    if (r == 0)
      throw_data("truncated input: " + std::string(what) + " ends at byte " +
                 std::to_string(offset_) + " (" + std::to_string(got) + " of " +
                 std::to_string(n) + " bytes from byte " + std::to_string(start) + ") (" +
                 name_ + ")");
    got += r;
  }
}

std::string_view Input::peek(std::size_t n) {
  fill(n);
  return std::string_view(buf_.data() + buf_pos_, std::min(n, buf_end_ - buf_pos_));
}

bool Input::at_eof() { return !fill(1); }

std::string Input::read_all() {
  std::string out(buf_.data() + buf_pos_, buf_end_ - buf_pos_);
  offset_ += buf_end_ - buf_pos_;
  buf_pos_ = buf_end_ = 0;
  if (file_size_ >= 0 && fd_ >= 0) out.reserve(static_cast<std::size_t>(file_size_));
  char chunk[1 << 16];
  while (!eof_ && fd_ >= 0) {
    const std::size_t r = read_fd(fd_, chunk, sizeof chunk, name_);
    if (r == 0) break;
    out.append(chunk, r);
    offset_ += r;
  }
  eof_ = true;
  return out;
}

std::int64_t Input::remaining_hint() const {
  if (file_size_ < 0) return -1;
  return file_size_ - static_cast<std::int64_t>(offset_);
}

// ---------------------------------------------------------------- Output

Output Output::open(const std::string& path) {
  Output out;
  if (path == "-") {
    out.fd_ = 1;
    out.name_ = "<stdout>";
    widen_pipe(1);
    out.path_ = "-";
    out.buf_.reserve(output_buffer_size);
    return out;
  }
  out.path_ = out.name_ = path;
  // A symbolic link is written through (its target is replaced), not replaced.
  if (char* real = ::realpath(path.c_str(), nullptr)) {
    struct stat lst {};
    if (::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) out.path_ = real;
    std::free(real);
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw_cant_create("cannot write " + path + ": it is a directory");
    if (!S_ISREG(st.st_mode)) {
      // Devices and FIFOs (/dev/null, /dev/full, named pipes) are written in place.
      out.fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
      if (out.fd_ < 0) throw_cant_create("cannot create " + path + ": " + errno_text(errno));
      out.buf_.reserve(output_buffer_size);
      return out;
    }
  }
  const std::string& target = out.path_;
  const std::size_t slash = target.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : target.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? target : target.substr(slash + 1);
  if (base.empty()) throw_cant_create("cannot create " + path + ": no file name");
  std::string tmpl = dir + "." + base + ".nnkit-XXXXXX";
  {
    TerminationSignalsBlocked blocked;
    out.fd_ = ::mkstemp(tmpl.data());
    if (out.fd_ < 0) throw_cant_create("cannot create " + path + ": " + errno_text(errno));
    out.tmp_ = tmpl;
    register_temp(out.tmp_);
  }
  out.buf_.reserve(output_buffer_size);
  return out;
}

Output::Output(Output&& o) noexcept { *this = std::move(o); }

Output& Output::operator=(Output&& o) noexcept {
  if (this != &o) {
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    tmp_ = std::move(o.tmp_);
    name_ = std::move(o.name_);
    buf_ = std::move(o.buf_);
    committed_ = o.committed_;
    o.fd_ = -1;
    o.tmp_.clear();
    o.committed_ = true;
  }
  return *this;
}

Output::~Output() {
  if (!tmp_.empty() && !committed_) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
    unregister_temp(tmp_);
  } else if (fd_ > 2 && !committed_) {
    ::close(fd_);
  }
}

bool Output::is_terminal() const { return tmp_.empty() && fd_ >= 0 && is_terminal_fd(fd_); }

void Output::raw_write(const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE) throw BrokenPipe{};
      throw_io("write to " + name_ + " failed: " + errno_text(errno));
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void Output::flush_buffer() {
  if (!buf_.empty()) {
    raw_write(buf_.data(), buf_.size());
    buf_.clear();
  }
}

void Output::write(const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  if (buf_.size() + n <= output_buffer_size) {
    buf_.insert(buf_.end(), p, p + n);
    return;
  }
  flush_buffer();
  if (n >= output_buffer_size / 2)
    raw_write(p, n);  // large blocks skip the copy
  else
    buf_.insert(buf_.end(), p, p + n);
}

void Output::commit() {
  if (committed_) return;
  flush_buffer();
  if (!tmp_.empty()) {
    // mkstemp creates 0600; give the file the permissions a plain create would.
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fd_, 0666 & ~mask);
    if (::close(fd_) != 0) throw_io("write to " + name_ + " failed: " + errno_text(errno));
    fd_ = -1;
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      const int e = errno;
      ::unlink(tmp_.c_str());
      unregister_temp(tmp_);
      tmp_.clear();
      throw_cant_create("cannot create " + path_ + ": " + errno_text(e));
    }
    unregister_temp(tmp_);
  } else if (fd_ > 2) {
    if (::close(fd_) != 0) throw_io("write to " + name_ + " failed: " + errno_text(errno));
    fd_ = -1;
  }
  committed_ = true;
}

}  // namespace nnkit
