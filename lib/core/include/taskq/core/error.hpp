#pragma once
// Errors that abort an operation. Each carries a category that maps to one documented exit code
// (taskctl) or HTTP status (apid), and a message meant for a person: what was wrong, and where.
#include <stdexcept>
#include <string>

namespace taskq {

enum class Errc {
  invalid_input,  // bad flags, JSON, durations, names, out-of-range values
  not_found,      // a job id that does not exist
  conflict,       // the job is in a state that does not allow the operation
  timeout,        // a wait ran out of time
  unavailable,    // the database cannot be reached
  not_migrated,   // the schema is missing or older than this build
  internal,       // anything else: a bug or an unexpected database error
};

const char* to_string(Errc code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

}  // namespace taskq
