// Shared helpers of the libFuzzer targets in tests/fuzz/.
//
// Every target feeds the fuzzer's bytes to one nnkit entry point. An
// nnkit::Error is the expected answer to bad input and ends the run normally;
// anything else (another exception, a sanitizer report, a broken invariant
// checked with fuzz::check) is a crash that libFuzzer records.
#pragma once
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "nnkit/error.hpp"
#include "nnkit/io.hpp"
#include "nnkit/parallel.hpp"
#include "nnkit/tensor.hpp"

namespace fuzz {

// For the targets that build things of sizes taken from the input: a size too
// large must come back as an nnkit::Error (NNKIT_MAX_MEMORY), below libFuzzer's
// malloc limit, and one thread keeps runs reproducible. Call it from
// LLVMFuzzerInitialize.
inline int bound_memory_and_threads() {
  ::setenv("NNKIT_MAX_MEMORY", "256M", 1);
  nnkit::set_threads(1);
  return 0;
}

inline std::string bytes(const std::uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// Runs f; false when it threw nnkit::Error (bad input, as expected), true when
// it returned. Every other exception escapes and libFuzzer reports it.
template <class F>
bool expected(F&& f) {
  try {
    f();
    return true;
  } catch (const nnkit::Error&) {
    return false;
  }
}

// An invariant of the code under test; aborting makes libFuzzer save the input.
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

// An input over the bytes in memory (its size is known, like a regular file).
inline nnkit::Input memory_input(const std::string& data) {
  return nnkit::Input::from_bytes(data, "fuzz-input");
}

// An input that reads the bytes through a pipe, as stdin in a pipeline: no
// size hint, so large claims are believed only as data arrives. Returns false
// (and leaves `in` alone) when the bytes do not fit in the pipe's buffer.
inline bool pipe_input(const std::string& data, nnkit::Input* in) {
  int p[2];
  if (::pipe(p) != 0) return false;
  const int want = 1 << 20;
  if (::fcntl(p[1], F_SETPIPE_SZ, want) < static_cast<int>(data.size()) &&
      ::fcntl(p[1], F_GETPIPE_SZ) < static_cast<int>(data.size())) {
    ::close(p[0]);
    ::close(p[1]);
    return false;
  }
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t w = ::write(p[1], data.data() + done, data.size() - done);
    if (w <= 0) break;
    done += static_cast<std::size_t>(w);
  }
  ::close(p[1]);
  check(done == data.size(), "pipe write");
  const std::string path = "/dev/fd/" + std::to_string(p[0]);
  *in = nnkit::Input::open(path);  // a new descriptor of the same pipe
  ::close(p[0]);
  return true;
}

// Makes fd 1 a memory file so that nnkit::Output::open("-") can be read back:
// begin() empties it, take() returns what was written since. libFuzzer itself
// writes only to stderr.
class StdoutCapture {
 public:
  static StdoutCapture& get() {
    static StdoutCapture c;
    return c;
  }
  void begin() {
    check(::ftruncate(1, 0) == 0, "ftruncate stdout");
    check(::lseek(1, 0, SEEK_SET) == 0, "lseek stdout");
  }
  std::string take() {
    const off_t end = ::lseek(1, 0, SEEK_CUR);
    std::string s(static_cast<std::size_t>(end), '\0');
    std::size_t got = 0;
    while (got < s.size()) {
      const ssize_t r = ::pread(1, &s[got], s.size() - got, static_cast<off_t>(got));
      check(r > 0, "pread stdout");
      got += static_cast<std::size_t>(r);
    }
    begin();
    return s;
  }

 private:
  StdoutCapture() {
    const int fd = ::memfd_create("nnkit-fuzz-stdout", 0);
    check(fd >= 0, "memfd_create");
    check(::dup2(fd, 1) == 1, "dup2 stdout");
    ::close(fd);
  }
};

// Same dtype, shape and bytes.
inline bool same_tensor(const nnkit::Tensor& a, const nnkit::Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.nbytes() == 0 || std::memcmp(a.bytes(), b.bytes(), a.nbytes()) == 0);
}

// Same shape and values read as doubles (NaNs equal to NaNs), any dtype.
inline bool same_values(const nnkit::Tensor& a, const nnkit::Tensor& b) {
  if (a.shape() != b.shape()) return false;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.get(i), y = b.get(i);
    if (!(x == y || (std::isnan(x) && std::isnan(y)))) return false;
  }
  return true;
}

}  // namespace fuzz
