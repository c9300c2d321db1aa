#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "nnkit/error.hpp"
#include "nnkit/io.hpp"
#include "error_of.hpp"

using namespace nnkit;
using nnkit::testing::code_of;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("nnkit-io-" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}
int files_in(const fs::path& d) {
  int n = 0;
  for (auto& e : fs::directory_iterator(d)) (void)e, ++n;
  return n;
}
}  // namespace

TEST(Io, MissingAndDirectoryInputsAreExit66) {
  EXPECT_EQ(code_of([] { Input::open("/nonexistent/x.npy"); }), ExitCode::no_input);
  EXPECT_EQ(code_of([] { Input::open("/tmp"); }), ExitCode::no_input);
}

TEST(Io, ReadExactPeekAndOffsets) {
  Input in = Input::from_bytes("abcdefgh", "mem");
  EXPECT_EQ(in.peek(3), "abc");
  char buf[4];
  in.read_exact(buf, 4, "head");
  EXPECT_EQ(std::string(buf, 4), "abcd");
  EXPECT_EQ(in.offset(), 4u);
  EXPECT_EQ(in.remaining_hint(), 4);
  EXPECT_FALSE(in.at_eof());
  try {
    char big[10];
    in.read_exact(big, 10, "payload");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::data);
    const std::string m = e.what();
    EXPECT_NE(m.find("truncated"), std::string::npos) << m;
    EXPECT_NE(m.find("payload"), std::string::npos) << m;
    EXPECT_NE(m.find("byte 8"), std::string::npos) << m;
    EXPECT_NE(m.find("mem"), std::string::npos) << m;
  }
  EXPECT_TRUE(in.at_eof());
}

TEST(Io, FileInputLargeAndSmallReads) {
  const fs::path d = temp_dir();
  const fs::path p = d / "data.bin";
  std::string data(3 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  std::ofstream(p, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
  Input in = Input::open(p.string());
  EXPECT_EQ(in.remaining_hint(), static_cast<std::int64_t>(data.size()));
  EXPECT_EQ(in.peek(5), data.substr(0, 5));
  std::string a(10, '\0'), b(data.size() - 10, '\0');
  in.read_exact(a.data(), a.size(), "a");
  in.read_exact(b.data(), b.size(), "b");  // larger than the buffer: read directly
  EXPECT_EQ(a + b, data);
  EXPECT_TRUE(in.at_eof());
  fs::remove_all(d);
}

TEST(Io, OutputIsAtomic) {
  const fs::path d = temp_dir();
  const fs::path target = d / "out.npy";
  {
    Output out = Output::open(target.string());
    out.write("hello");
    EXPECT_FALSE(fs::exists(target));  // only the temporary exists so far
    EXPECT_EQ(files_in(d), 1);
    out.commit();
  }
  EXPECT_TRUE(fs::exists(target));
  EXPECT_EQ(files_in(d), 1);
  std::ifstream f(target);
  std::string s;
  f >> s;
  EXPECT_EQ(s, "hello");
  {  // not committed (an error): the temporary goes, the old file stays
    Output out = Output::open(target.string());
    out.write("partial");
  }
  EXPECT_EQ(files_in(d), 1);
  std::ifstream g(target);
  g >> s;
  EXPECT_EQ(s, "hello");
  // Permissions follow the umask like a plain create, not mkstemp's 0600.
  struct stat st {};
  ::stat(target.c_str(), &st);
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0666u & ~mask);
  fs::remove_all(d);
}

TEST(Io, OutputErrors) {
  EXPECT_EQ(code_of([] { Output::open("/nonexistent/dir/out.npy"); }), ExitCode::cant_create);
  EXPECT_EQ(code_of([] { Output::open("/tmp"); }), ExitCode::cant_create);
  // /dev/full is written in place (not replaced by a temporary) and fails with ENOSPC.
  EXPECT_EQ(code_of([] {
              Output out = Output::open("/dev/full");
              std::string big(2 << 20, 'x');
              out.write(big.data(), big.size());
              out.commit();
            }),
            ExitCode::io);
}

TEST(Io, BrokenPipeIsReportedQuietly) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  install_signal_handlers();  // SIGPIPE ignored: EPIPE instead
  ::close(fds[0]);
  const int saved = ::dup(1);
  ::dup2(fds[1], 1);
  bool broken = false;
  try {
    Output out = Output::open("-");
    std::string big(2 << 20, 'x');
    out.write(big.data(), big.size());
    out.commit();
  } catch (const BrokenPipe&) {
    broken = true;
  }
  ::dup2(saved, 1);
  ::close(saved);
  ::close(fds[1]);
  EXPECT_TRUE(broken);
}
