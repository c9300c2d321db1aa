#include <gtest/gtest.h>
#include <pty.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "nnkit/progress.hpp"

using namespace nnkit;

namespace {
// Runs f with stderr pointing at a pseudo-terminal; returns what was drawn.
std::string on_terminal(const std::function<void()>& f) {
  int master = -1, slave = -1;
  if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) return "<no pty>";
  std::fflush(stderr);
  const int saved = ::dup(2);
  ::dup2(slave, 2);
  f();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  ::close(slave);
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t r = ::read(master, buf, sizeof buf);
    if (r <= 0) break;
    out.append(buf, static_cast<std::size_t>(r));
  }
  ::close(master);
  return out;
}
}  // namespace

TEST(Progress, DrawsOnATerminal) {
  const std::string drawn = on_terminal([] {
    Progress p("sampling", 50, false);
    EXPECT_TRUE(p.enabled());
    for (int i = 0; i <= 50; ++i) p.update(i);
    p.finish();
  });
  EXPECT_NE(drawn.find("sampling ["), std::string::npos) << drawn;
  EXPECT_NE(drawn.find("50/50"), std::string::npos) << drawn;
}

TEST(Progress, QuietSilencesItEvenOnATerminal) {
  const std::string drawn = on_terminal([] {
    Progress p("sampling", 50, true);
    EXPECT_FALSE(p.enabled());
    p.update(10);
    p.finish();
  });
  EXPECT_EQ(drawn, "");
}

TEST(Progress, SilentWhenStderrIsAPipe) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::fflush(stderr);
  const int saved = ::dup(2);
  ::dup2(fds[1], 2);
  {
    Progress p("work", 100, false);
    EXPECT_FALSE(p.enabled());
    p.update(50);
    p.finish();
  }
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  ::close(fds[1]);
  char c;
  EXPECT_EQ(::read(fds[0], &c, 1), 0);  // nothing was written
  ::close(fds[0]);
}
