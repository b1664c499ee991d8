#pragma once
// The exec handler protocol, as pure code: bounded capture of stdout/stderr (the last N bytes),
// parsing of side-channel lines (fd 3), and the classification of an exit into a HandlerResult.
// Documented in man/taskq-workerd.8.
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

/// Keeps the last `capacity` bytes appended, and how many were dropped before them.
class OutputTail {
 public:
  explicit OutputTail(std::size_t capacity = output_tail_bytes);
  void append(std::string_view data);
  [[nodiscard]] std::string str() const;  // the kept bytes in order
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
  int percent = 0;   // progress: 0..100
  std::string text;  // progress: message (may be empty); result: JSON text
  Duration delay{};  // snooze
};

/// Splits fd 3's bytes into lines and parses them. Lines longer than max_line bytes (default
/// 1 MiB, enough for a result) and malformed lines are reported as errors (kept, not fatal: the
/// job's log shows them) and otherwise ignored.
class SideChannelParser {
 public:
  explicit SideChannelParser(std::size_t max_line = 1024 * 1024);
  /// Feeds bytes; complete lines are parsed and appended to `out`.
  void feed(std::string_view data, std::vector<SideMessage>& out);
  /// End of input: a last line without newline is parsed too.
  void finish(std::vector<SideMessage>& out);
  [[nodiscard]] const std::vector<std::string>& errors() const noexcept { return errors_; }

 private:
  void parse_line(std::string_view line, std::vector<SideMessage>& out);
  std::size_t max_line_;
  std::string partial_;
  bool overlong_ = false;
  std::size_t line_no_ = 0;
  std::vector<std::string> errors_;
};

/// Everything known when an exec handler's process has gone.
struct ExecFacts {
  ExitStatus status;
  std::optional<std::string> result_line;  // last `result` line, JSON text
  std::optional<Duration> snooze_line;     // last `snooze` line
  std::string stdout_all;                  // kept stdout (used as result when it is one JSON value)
  bool stdout_truncated = false;
  std::string stderr_tail;
};

/// Exit 0 -> completed (result: the result line, else stdout if it is exactly one JSON value);
/// 75 -> snoozed (delay from the snooze line, else 60 s); 65 -> failed; other codes and signals
/// -> retry. Messages: "exit status 3", "killed by signal 11 (Segmentation fault)".
HandlerResult classify_exit(const ExecFacts& facts);

}  // namespace taskq::worker
