// What a finished run records: the outcome decided from why the run ended and what its handler
// reported (see run_outcome.hpp).
#include "run_outcome.hpp"

#include <spdlog/spdlog.h>

#include "backoff.hpp"
#include "exec_protocol.hpp"
#include "job_trace.hpp"

using taskq::store::Outcome;

namespace taskq::worker {

Outcome run_outcome(const RunFacts& run, HandlerResult r, Timestamp now, std::mt19937_64& rng, Timestamp& retry_at) {
  const auto& j = run.job;
  Outcome o;
  o.id = j.id;
  o.attempt = j.attempt;
  if (run.max_attempts_from_kind) o.max_attempts = run.max_attempts;
  retry_at = now;
  tidy_result(r);  // handler text made safe to store and to log, the result checked
  switch (run.stop) {
    case StopReason::shutdown:
      o.kind = Outcome::Kind::returned;
      spdlog::info("{} stopped by shutdown; returned to the queue (attempt not counted)", job_label(j));
      return o;
    case StopReason::cancel:
      o.kind = Outcome::Kind::cancelled;
      spdlog::info("{} cancelled while running", job_label(j));
      return o;
    case StopReason::lost:
      // The store refuses it (the job is not running here on this attempt); sent all the same.
      o.kind = Outcome::Kind::returned;
      spdlog::info("{} attempt {} stopped: it is no longer this worker's", job_label(j), j.attempt);
      return o;
    case StopReason::timeout:
      r.kind = HandlerResult::Kind::retry;
      r.message = "timed out after " + format_duration(run.timeout);
      r.result.reset();
      break;
    case StopReason::none:
      break;
  }
  switch (r.kind) {
    case HandlerResult::Kind::completed:
      o.kind = Outcome::Kind::completed;
      o.result = std::move(r.result);
      if (o.result) retry_at = now + retry_delay(run.backoff, j.attempt, rng);
      spdlog::debug("{} completed", job_label(j));
      return o;
    case HandlerResult::Kind::snoozed: {
      o.kind = Outcome::Kind::snoozed;
      const Duration d = r.snooze.value_or(default_snooze);
      o.run_at = now + d;
      spdlog::info("{} snoozed for {}", job_label(j), format_duration(d));
      return o;
    }
    case HandlerResult::Kind::failed:
      o.kind = Outcome::Kind::failed;
      o.error = error_entry(j.attempt, r, now, run.span_id);
      spdlog::warn("{} failed permanently on attempt {}: {}", job_label(j), j.attempt, r.message);
      return o;
    case HandlerResult::Kind::retry:
      o.error = error_entry(j.attempt, r, now, run.span_id);
      if (j.attempt >= run.max_attempts) {
        o.kind = Outcome::Kind::failed;
        spdlog::warn("{} failed attempt {}/{}, no attempts left: {}", job_label(j), j.attempt, run.max_attempts,
                     r.message);
      } else {
        o.kind = Outcome::Kind::retry;
        const Duration d = retry_delay(run.backoff, j.attempt, rng);
        o.run_at = now + d;
        retry_at = *o.run_at;
        spdlog::warn("{} failed attempt {}/{}: {}; retry in {}", job_label(j), j.attempt, run.max_attempts, r.message,
                     format_duration(d));
      }
      return o;
  }
  return o;
}

}  // namespace taskq::worker
