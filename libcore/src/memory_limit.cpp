#include "nnkit/memory_limit.hpp"

#include <sys/sysinfo.h>

#include <cstdlib>
#include <limits>

namespace nnkit {

namespace {

// 0 for no suffix, else the power of 1024 of K, M, G or T.
int suffix_power(char c) {
  switch (c) {
    case 'K': case 'k': return 1;
    case 'M': case 'm': return 2;
    case 'G': case 'g': return 3;
    case 'T': case 't': return 4;
    default: return -1;
  }
}

}  // namespace

std::optional<std::int64_t> parse_byte_size(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  std::int64_t value = 0;
  for (std::size_t i = 0; i < digits; ++i)
    if (__builtin_mul_overflow(value, 10, &value) || __builtin_add_overflow(value, text[i] - '0', &value))
      return std::nullopt;
  std::string_view rest = text.substr(digits);
  int power = 0;
  if (!rest.empty()) {
    power = suffix_power(rest[0]);
    rest.remove_prefix(1);
    if (power < 0 || !(rest.empty() || rest == "iB")) return std::nullopt;
  }
  for (int i = 0; i < power; ++i)
    if (__builtin_mul_overflow(value, std::int64_t{1024}, &value)) return std::nullopt;
  if (value == 0) return std::nullopt;
  return value;
}

std::optional<std::int64_t> max_memory() {
  // Read each time (getenv is cheap next to an allocation), so tests and
  // embedding programs can change it.
  const char* env = std::getenv(kMaxMemoryVariable);
  if (!env || !*env) return std::nullopt;
  const auto limit = parse_byte_size(env);
  if (!limit)
    throw_usage(std::string(kMaxMemoryVariable) + "=" + in_quotes(env) +
                " is not a size: want a positive number of bytes with an optional K, M, G or T suffix "
                "(units of 1024), e.g. 512M");
  return limit;
}

namespace {

// Physical memory plus swap: no single buffer larger than that can ever be
// filled, so asking the allocator for it (which may succeed lazily, or abort
// under a sanitizer) only delays the failure. 0 when unknown.
std::int64_t machine_memory() {
  struct sysinfo info {};
  if (sysinfo(&info) != 0) return 0;
  const auto unit = static_cast<std::int64_t>(info.mem_unit ? info.mem_unit : 1);
  std::int64_t total = 0;
  const auto pages = static_cast<std::int64_t>(info.totalram) + static_cast<std::int64_t>(info.totalswap);
  return __builtin_mul_overflow(pages, unit, &total) ? 0 : total;
}

}  // namespace

bool allocation_allowed(std::int64_t bytes) {
  const auto limit = max_memory();
  if (limit) return bytes <= *limit;
  static const std::int64_t machine = machine_memory();
  return machine <= 0 || bytes <= machine;
}

void check_allocation(std::int64_t bytes, const std::string& what) {
  if (allocation_allowed(bytes)) return;
  const auto limit = max_memory();
  if (!limit) {
    static const std::int64_t machine = machine_memory();
    if (machine > 0 && bytes > machine)
      throw_data("needs " + std::to_string(bytes) + " bytes for " + what + ", more than this machine's memory and swap (" +
                 std::to_string(machine) + " bytes)");
    return;
  }
  if (bytes <= *limit) return;
  const std::string value = std::getenv(kMaxMemoryVariable);
  std::string said = std::string(kMaxMemoryVariable) + "=" + value;
  if (value != std::to_string(*limit)) said += " (" + std::to_string(*limit) + " bytes)";
  throw_data("needs " + std::to_string(bytes) + " bytes for " + what + ", more than " + said);
}

std::int64_t checked_buffer_bytes(std::int64_t count, std::size_t item_size, const std::string& what) {
  if (count < 0) throw_data(what + " has a negative size (" + std::to_string(count) + ")");
  std::int64_t bytes = 0;
  if (item_size > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max()) ||
      __builtin_mul_overflow(count, static_cast<std::int64_t>(item_size), &bytes))
    throw_data("needs more than 2^63 bytes for " + what + " (" + std::to_string(count) + " items of " +
               std::to_string(item_size) + " bytes)");
  check_allocation(bytes, what);
  return bytes;
}

}  // namespace nnkit
