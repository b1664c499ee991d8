#include "taskq/core/error.hpp"

namespace taskq {

const char* to_string(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_input:
      return "invalid_input";
    case Errc::not_found:
      return "not_found";
    case Errc::conflict:
      return "conflict";
    case Errc::locked:
      return "locked";
    case Errc::timeout:
      return "timeout";
    case Errc::unavailable:
      return "unavailable";
    case Errc::not_migrated:
      return "not_migrated";
    case Errc::internal:
      return "internal";
  }
  return "internal";
}

bool is_transient(const Error& e) noexcept {
  return e.code() == Errc::unavailable || e.code() == Errc::locked || e.code() == Errc::timeout;
}

void throw_if_any(const std::vector<std::string>& errors, Errc code) {
  if (errors.empty()) return;
  std::string all = errors.front();
  for (std::size_t i = 1; i < errors.size(); ++i) all += "\n" + errors[i];
  throw Error(code, all);
}

}  // namespace taskq
