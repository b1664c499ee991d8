#pragma once
// What a handler reports, made into data PostgreSQL accepts and kept within bounds, whatever the
// handler (exec, http, in-process) wrote: the one place that turns a HandlerResult into the text
// of an error entry, a result and a progress value (see taskq/core/utf8.hpp for the text rules),
// and the budget of log lines a job may cost. Pure code; documented in taskq-workerd(8), LIMITS.
#include <cstddef>
#include <string>
#include <string_view>

#include "taskq/core/time.hpp"
#include "taskq/worker/handler.hpp"

namespace taskq::worker {

/// An attempt's error message is cut to this many bytes (on a character boundary).
inline constexpr std::size_t max_message_bytes = 8 * 1024;
/// A progress message is cut to this many bytes (on a character boundary).
inline constexpr std::size_t max_progress_message_bytes = 1024;
/// Log lines about one run of a job (warnings about its side channel, its stop); the rest are
/// counted and reported in one line when the run ends.
inline constexpr int job_log_lines = 20;
/// At most one progress write per job per interval: the first report goes at once, later ones
/// wait for the interval, the latest value winning; the last one is written before the outcome.
inline constexpr Duration progress_interval = std::chrono::seconds{1};

/// Makes a handler's report safe to store: the message and the stderr tail become clean text
/// (the message cut to max_message_bytes), and a result must be one JSON value (cleaned by
/// clean_json): when it is not, a completed attempt becomes a failed one (retry) whose message
/// says "result: ..." and what is wrong.
void tidy_result(HandlerResult& r);

/// The error entry of a failed attempt, as JSON object text: {"at", "attempt", "span_id"?,
/// "message", "exit_status"?, "signal"?, "stderr_tail"?}; span_id is the attempt's W3C span, so
/// the failed attempt can be found in traces. `r` must have been tidied.
[[nodiscard]] std::string error_entry(int attempt, const HandlerResult& r, Timestamp at, std::string_view span_id = {});

/// A progress value as JSON object text: {"percent", "message"?, "at"}; the message is cleaned
/// and cut to max_progress_message_bytes.
[[nodiscard]] std::string progress_json(int percent, std::string_view message, Timestamp at);

/// How many more log lines one run of a job may write.
class LogBudget {
 public:
  explicit LogBudget(int lines = job_log_lines) : left_(lines) {}
  /// True while lines are left (and uses one); false counts the line as suppressed.
  bool take() noexcept {
    if (left_ > 0) {
      --left_;
      return true;
    }
    ++suppressed_;
    return false;
  }
  /// Lines not written (by take(), or counted elsewhere and added here).
  void add_suppressed(std::size_t n) noexcept { suppressed_ += n; }
  [[nodiscard]] std::size_t suppressed() const noexcept { return suppressed_; }

 private:
  int left_;
  std::size_t suppressed_ = 0;
};

}  // namespace taskq::worker
