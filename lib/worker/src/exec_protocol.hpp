#pragma once
// The exec handler protocol, as pure code: bounded capture of stdout/stderr (the last N bytes),
// parsing of side-channel lines (fd 3), and the classification of an exit into a HandlerResult.
// Every buffer here is bounded whatever the handler writes: the tails keep 64 KiB (a tail never
// starts inside a UTF-8 character), a side-channel line at most max_line bytes, the list of
// side-channel errors the first few (the rest are counted). Documented in man/taskq-workerd.8.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "subprocess.hpp"
#include "taskq/worker/handler.hpp"

namespace taskq::worker {

inline constexpr std::size_t output_tail_bytes = 64 * 1024;
inline constexpr int exit_snooze = 75;     // EX_TEMPFAIL
inline constexpr int exit_permanent = 65;  // EX_DATAERR
inline constexpr Duration default_snooze = std::chrono::seconds{60};

/// Keeps the last `capacity` bytes appended, and how many were dropped before them. Memory: at
/// most twice the capacity.
class OutputTail {
 public:
  explicit OutputTail(std::size_t capacity = output_tail_bytes);
  void append(std::string_view data);
  /// The kept bytes in order; when bytes were dropped before them, without the continuation
  /// bytes of a character whose first byte was dropped (so at most `capacity` bytes).
  [[nodiscard]] std::string str() const;
  [[nodiscard]] std::size_t dropped() const noexcept { return dropped_; }
  [[nodiscard]] std::size_t total() const noexcept;

 private:
  std::size_t capacity_;
  std::string buf_;
  std::size_t dropped_ = 0;
};

/// One parsed side-channel line.
struct SideMessage {
  enum class Kind { progress, result, snooze };
  Kind kind;
  int percent = 0;       // progress: 0..100
  std::string text;      // progress: message (may be empty); result: the text after "result " (unchecked)
  Duration delay{};      // snooze
  std::size_t line = 0;  // its line number on fd 3
};

/// Side-channel errors kept per job (the first ones); later ones are only counted.
inline constexpr std::size_t side_errors_kept = 5;

/// Splits fd 3's bytes into lines and parses them. Lines longer than max_line bytes (default
/// 1 MiB, enough for a result) and malformed lines are errors (not fatal: the job's log shows
/// them) and otherwise ignored. The first `kept` error messages are kept, the others counted.
/// A `result` line's text is passed on unchecked: whether it is JSON decides the attempt.
class SideChannelParser {
 public:
  explicit SideChannelParser(std::size_t max_line = 1024 * 1024, std::size_t kept = side_errors_kept);
  /// Feeds bytes; complete lines are parsed and appended to `out`.
  void feed(std::string_view data, std::vector<SideMessage>& out);
  /// End of input: a last line without newline is parsed too.
  void finish(std::vector<SideMessage>& out);
  /// The first errors (messages safe to log: valid UTF-8, quotes of the line shortened).
  [[nodiscard]] const std::vector<std::string>& errors() const noexcept { return errors_; }
  /// Every error so far, kept or not.
  [[nodiscard]] std::size_t error_count() const noexcept { return error_count_; }

 private:
  void parse_line(std::string_view line, std::vector<SideMessage>& out);
  template <class Message>
  void reject(std::size_t line_no, Message&& what);
  [[nodiscard]] bool keeping() const noexcept { return errors_.size() < kept_; }
  std::size_t max_line_;
  std::size_t kept_;
  std::size_t error_count_ = 0;
  std::string partial_;
  bool overlong_ = false;
  std::size_t line_no_ = 0;
  std::vector<std::string> errors_;
};

/// Everything known when an exec handler's process has gone.
struct ExecFacts {
  ExitStatus status;
  std::optional<std::string> result_line;  // last `result` line's text
  std::size_t result_line_no = 0;          // its line number
  std::optional<Duration> snooze_line;     // last `snooze` line
  std::string stdout_all;                  // kept stdout (used as result when it is one JSON value)
  bool stdout_truncated = false;
  std::string stderr_tail;
};

/// Exit 0 -> completed (result: the result line, else stdout if it is exactly one JSON value),
/// or, when the result line is not JSON, retry with "result: not valid JSON: ... (side channel
/// line N)"; 75 -> snoozed (delay from the snooze line, else 60 s); 65 -> failed; other codes
/// and signals -> retry. Messages: "exit status 3", "killed by signal 11 (Segmentation fault)".
/// Results are cleaned (clean_json: NUL, lone surrogates, bad UTF-8).
HandlerResult classify_exit(const ExecFacts& facts);

}  // namespace taskq::worker
