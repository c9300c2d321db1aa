// NNKIT_MAX_MEMORY: the size syntax, the variable, and the bound on tensors
// and on the other large buffers (make_buffer).
#include <gtest/gtest.h>

#include <cstdlib>
#include <limits>
#include <optional>
#include <string>

#include "nnkit/memory_limit.hpp"
#include "nnkit/tensor.hpp"
#include "error_of.hpp"

using namespace nnkit;
using nnkit::testing::error_of;

namespace {

// Sets NNKIT_MAX_MEMORY for one test and restores what was there.
class LimitEnv {
 public:
  explicit LimitEnv(const char* value) {
    if (const char* old = std::getenv(kMaxMemoryVariable)) old_ = old;
    if (value)
      setenv(kMaxMemoryVariable, value, 1);
    else
      unsetenv(kMaxMemoryVariable);
  }
  ~LimitEnv() {
    if (old_)
      setenv(kMaxMemoryVariable, old_->c_str(), 1);
    else
      unsetenv(kMaxMemoryVariable);
  }

 private:
  std::optional<std::string> old_;
};

// The exit code and message of what f throws.

}  // namespace

TEST(MemoryLimit, ParsesBytesWithBinarySuffixes) {
  EXPECT_EQ(parse_byte_size("4096"), 4096);
  EXPECT_EQ(parse_byte_size("1K"), 1024);
  EXPECT_EQ(parse_byte_size("1k"), 1024);
  EXPECT_EQ(parse_byte_size("512M"), std::int64_t{512} << 20);
  EXPECT_EQ(parse_byte_size("2G"), std::int64_t{2} << 30);
  EXPECT_EQ(parse_byte_size("2GiB"), std::int64_t{2} << 30);
  EXPECT_EQ(parse_byte_size("3T"), std::int64_t{3} << 40);
  EXPECT_EQ(parse_byte_size("9223372036854775807"), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(parse_byte_size("8388607T"), std::int64_t{8388607} << 40);
}

TEST(MemoryLimit, RefusesWhatIsNotASize) {
  for (const char* bad : {"", "0", "0K", "-1", "+5", " 5", "5 ", "1.5G", "G", "1KB", "1Ki", "1X", "1P", "1GiBs",
                          "9223372036854775808", "8388608T", "99999999999999999999", "0x10"})
    EXPECT_EQ(parse_byte_size(bad), std::nullopt) << bad;
}

TEST(MemoryLimit, VariableUnsetOrEmptyMeansTheMachinesMemory) {
  for (const char* value : {static_cast<const char*>(nullptr), ""}) {
    LimitEnv env(value);
    EXPECT_EQ(max_memory(), std::nullopt);
    EXPECT_NO_THROW(check_allocation(std::int64_t{1} << 20, "a megabyte"));
    // More than any machine's memory and swap: refused before the allocator sees it.
    const auto [code, what] = error_of([] { check_allocation(std::numeric_limits<std::int64_t>::max(), "anything"); });
    EXPECT_EQ(code, ExitCode::data);
    EXPECT_NE(what.find("more than this machine's memory and swap"), std::string::npos) << what;
  }
}

TEST(MemoryLimit, BadValueIsAUsageErrorNamingTheVariable) {
  LimitEnv env("lots");
  const auto [code, what] = error_of([] { (void)max_memory(); });
  EXPECT_EQ(code, ExitCode::usage);
  EXPECT_NE(what.find("NNKIT_MAX_MEMORY"), std::string::npos) << what;
  EXPECT_NE(what.find("'lots'"), std::string::npos) << what;
  // The same from any allocation that consults it.
  EXPECT_EQ(error_of([] { Tensor t(DType::f4, {2}); }).first, ExitCode::usage);
}

TEST(MemoryLimit, TensorOverTheLimitIsADataErrorNamingIt) {
  LimitEnv env("1M");
  EXPECT_NO_THROW(Tensor(DType::f4, {512, 512}));  // exactly 1 MiB
  const auto [code, what] = error_of([] { Tensor t(DType::f4, {1024, 1024}); });
  EXPECT_EQ(code, ExitCode::data);
  EXPECT_EQ(what, "needs 4194304 bytes for a tensor [1024, 1024] float32, more than NNKIT_MAX_MEMORY=1M (1048576 bytes)");
  // Uninitialized tensors (what the readers allocate), copies and conversions too.
  EXPECT_EQ(error_of([] { (void)Tensor::uninitialized(DType::u1, {2, 1 << 20}); }).first, ExitCode::data);
  Tensor small(DType::f4, {256, 1024});  // 1 MiB, 2 MiB as float64
  EXPECT_EQ(error_of([&] { (void)small.astype(DType::f8); }).first, ExitCode::data);
}

TEST(MemoryLimit, PlainByteValuesAreNotRepeated) {
  LimitEnv env("100");
  const auto [code, what] = error_of([] { Tensor t(DType::u1, {101}); });
  EXPECT_EQ(what, "needs 101 bytes for a tensor [101] uint8, more than NNKIT_MAX_MEMORY=100");
}

TEST(MemoryLimit, BuffersAreCheckedForOverflowAndLimit) {
  LimitEnv env("1K");
  EXPECT_EQ(make_buffer<double>(128, "a table").size(), 128u);
  const auto [code, what] = error_of([] { (void)make_buffer<double>(129, "a table"); });
  EXPECT_EQ(code, ExitCode::data);
  EXPECT_EQ(what, "needs 1032 bytes for a table, more than NNKIT_MAX_MEMORY=1K (1024 bytes)");
  EXPECT_EQ(error_of([] { (void)make_buffer<double>(-1, "a table"); }).first, ExitCode::data);
  const auto overflow = error_of([] { (void)make_buffer<double>(std::int64_t{1} << 61, "a table"); });
  EXPECT_EQ(overflow.first, ExitCode::data);
  EXPECT_NE(overflow.second.find("2^63"), std::string::npos) << overflow.second;
}

TEST(MemoryLimit, WhatTheLibraryRefusesIsADataErrorToo) {
  LimitEnv env(nullptr);
  // 2^61 - 1 doubles fit in int64 bytes but not in a std::vector: never std::length_error.
  EXPECT_EQ(error_of([] { (void)make_buffer<double>((std::int64_t{1} << 61) - 1, "a huge buffer"); }).first,
            ExitCode::data);
}
