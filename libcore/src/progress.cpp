#include "nnkit/progress.hpp"

#include <unistd.h>

#include <cstdio>

#include "nnkit/io.hpp"

namespace nnkit {

Progress::Progress(std::string label, std::int64_t total, bool quiet)
    : label_(std::move(label)), total_(total), enabled_(!quiet && is_terminal_fd(2)) {}

Progress::~Progress() {
  if (enabled_ && !finished_) std::fputs("\r\033[K", stderr);  // leave no stale bar on errors
}

void Progress::update(std::int64_t done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(100) && done < total_) return;
  last_ = now;
  draw(done);
}

void Progress::finish() {
  if (!enabled_ || finished_) return;
  draw(total_);
  std::fputc('\n', stderr);
  finished_ = true;
}

void Progress::draw(std::int64_t done) {
  const double frac = total_ > 0 ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  const int width = 30;
  const int fill = static_cast<int>(frac * width + 0.5);
  std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld", label_.c_str(), fill,
               "##############################", width - fill, "", static_cast<long long>(done),
               static_cast<long long>(total_));
  std::fflush(stderr);
}

}  // namespace nnkit
