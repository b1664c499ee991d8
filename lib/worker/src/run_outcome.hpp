#pragma once
// The outcome of a finished run, decided from why it ended (the handler finished, or the run was
// stopped: timeout, cancel, shutdown, lost) and what its handler reported: completed, snoozed,
// failed for good, or a failed attempt retried after the kind's backoff (failed when no attempt
// is left). Logged with the job's id, queue, kind and trace id. Pure but for the log line and
// the jitter drawn from `rng`.
#include <random>
#include <string_view>

#include "run_output.hpp"
#include "taskq/config/config.hpp"
#include "taskq/store/store.hpp"

namespace taskq::worker {

/// Why a job was stopped before its handler finished on its own.
/// lost: the job is no longer this worker's (rescued while it ran here, or claimed again), so
/// whatever this run reports would be refused.
enum class StopReason { none, timeout, cancel, shutdown, lost };

/// What the decision needs to know of the run.
struct RunFacts {
  const Job& job;
  StopReason stop = StopReason::none;
  int max_attempts = 0;                 // effective
  bool max_attempts_from_kind = false;  // then the outcome carries it to the job
  Duration timeout{};                   // for the message of a timeout
  taskq::config::BackoffConfig backoff;
  std::string_view span_id;  // this attempt's, recorded in its error entry
};

/// The outcome to write. `retry_at` is set to when to run the job again should PostgreSQL refuse
/// the outcome's data (the attempt then counts as failed).
store::Outcome run_outcome(const RunFacts& run, HandlerResult r, Timestamp now, std::mt19937_64& rng,
                           Timestamp& retry_at);

}  // namespace taskq::worker
