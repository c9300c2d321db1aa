// Progress for long work, on stderr, only when stderr is a terminal and the
// user did not ask for -q. Cheap to call in loops: it redraws at most ~10x/s.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace nnkit {

class Progress {
 public:
  Progress(std::string label, std::int64_t total, bool quiet);
  ~Progress();
  void update(std::int64_t done);
  void finish();
  bool enabled() const { return enabled_; }

 private:
  std::string label_;
  std::int64_t total_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point last_;
  void draw(std::int64_t done);
};

}  // namespace nnkit
