#pragma once
// What a worker reports about the jobs it claimed: their outcomes and their progress.
#include <optional>
#include <string>

#include "taskq/core/job.hpp"
#include "taskq/core/time.hpp"

namespace taskq::store {

/// What a worker reports for a job it ran.
struct Outcome {
  // snoozed: run again at run_at without using up an attempt. returned: back to available now,
  // no attempt used, no error recorded (shutdown). retry becomes failed when attempts are out.
  enum class Kind { completed, retry, failed, snoozed, cancelled, returned };
  JobId id = 0;
  int attempt = 0;  // the attempt that ran; the outcome applies only if the job is still on it (0: any)
  Kind kind = Kind::completed;
  std::optional<int> max_attempts{};    // replaces the job's max_attempts (a kind's setting)
  std::optional<std::string> result{};  // JSON text, kept on the job
  std::optional<std::string> error{};   // JSON object text, appended to the job's errors
  std::optional<Timestamp> run_at{};    // retry/snooze: when to run next
};

/// The outcome's name as the outcome statements and log lines spell it ("completed", "retry", ...).
const char* outcome_name(Outcome::Kind k);

struct ProgressUpdate {
  JobId id = 0;
  int attempt = 0;
  std::string progress;  // JSON object text
};

}  // namespace taskq::store
