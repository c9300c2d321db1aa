// What a piece of code throws, for the unit tests that check refusals: the
// exit code and message of the nnkit::Error (ExitCode::ok when it returns).
#pragma once
#include <string>
#include <utility>

#include "nnkit/error.hpp"

namespace nnkit::testing {

template <class F>
std::pair<ExitCode, std::string> error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  return {ExitCode::ok, ""};
}

template <class F>
ExitCode code_of(F&& f) {
  return error_of(std::forward<F>(f)).first;
}

}  // namespace nnkit::testing
