#pragma once
// Errors that abort an operation. Each carries a category that maps to one documented exit code
// (taskctl) or HTTP status (apid), and a message meant for a person: what was wrong, and where.
#include <stdexcept>
#include <string>
#include <vector>

namespace taskq {

enum class Errc {
  invalid_input,  // bad flags, JSON, durations, names, out-of-range values
  not_found,      // a job id that does not exist
  conflict,       // the job is in a state that does not allow the operation
  locked,         // another session holds a lock the operation needs (lock_timeout, deadlock): try again
  timeout,        // a wait ran out of time (statement_timeout included)
  unavailable,    // the database cannot be reached
  not_migrated,   // the schema is missing or older than this build
  internal,       // anything else: a bug or an unexpected database error
};

const char* to_string(Errc code) noexcept;

class Error;
/// True for failures that say nothing about the data and go away by themselves: the database is
/// unreachable (unavailable), a lock it needed was held by another session (locked), or a
/// statement ran out of time (timeout). A caller that must not lose work holds it and tries
/// again; anything else (invalid_input, conflict, ...) is final for the data it was given.
/// (lib/db decides the category of each database error: see db::rethrow_as_error.)
bool is_transient(const Error& e) noexcept;

class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

/// Throws one Error(code) whose message is every entry of `errors`, one per line, in order; does
/// nothing when there are none. Used where input is checked as a whole so that a person sees every
/// mistake at once (a config file, a schedule list), not only the first.
void throw_if_any(const std::vector<std::string>& errors, Errc code = Errc::invalid_input);

}  // namespace taskq
