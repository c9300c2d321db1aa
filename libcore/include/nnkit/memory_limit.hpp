// NNKIT_MAX_MEMORY: a bound on every single large allocation of nnkit, so a
// job on a shared machine fails with a clear one-line error (exit 65) instead
// of being killed by the kernel or its batch system. Tensors are checked in
// Tensor's allocation path; other large buffers through make_buffer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "nnkit/error.hpp"

namespace nnkit {

inline constexpr const char* kMaxMemoryVariable = "NNKIT_MAX_MEMORY";

// "4096", "512K", "64M", "2G", "1T" (also "2GiB", lower-case letters): bytes
// in binary units of 1024. nullopt for anything else, 0, or more than int64.
std::optional<std::int64_t> parse_byte_size(std::string_view text);

// The limit NNKIT_MAX_MEMORY sets now: nullopt when unset or empty; a usage
// error (64) naming the variable when it is not a size.
std::optional<std::int64_t> max_memory();

// A data error (65) when one allocation of `bytes` would exceed the limit:
// "needs N bytes for WHAT, more than NNKIT_MAX_MEMORY=VALUE"; without a
// limit, when it exceeds the machine's physical memory plus swap.
void check_allocation(std::int64_t bytes, const std::string& what);
// The test of check_allocation without building a message (for hot paths).
bool allocation_allowed(std::int64_t bytes);

// The bytes of `count` items of `item_size`: a data error when the count is
// negative or the product overflows, then check_allocation.
std::int64_t checked_buffer_bytes(std::int64_t count, std::size_t item_size, const std::string& what);

// A vector of `count` values `fill`, allocated only after the checks above; an
// allocation the system refuses is a data error too, never std::bad_alloc.
template <class T>
std::vector<T> make_buffer(std::int64_t count, const std::string& what, const T& fill = T{}) {
  const std::int64_t bytes = checked_buffer_bytes(count, sizeof(T), what);
  try {
    return std::vector<T>(static_cast<std::size_t>(count), fill);
  } catch (const std::bad_alloc&) {
  } catch (const std::length_error&) {
  }
  throw_data("cannot allocate " + std::to_string(bytes) + " bytes for " + what);
}

}  // namespace nnkit
