#pragma once
// What a handler reports for one attempt of a job, and the in-process handler API for programs
// that embed the worker. Exec and http handlers produce the same HandlerResult.
#include <functional>
#include <optional>
#include <stop_token>
#include <string>

#include "taskq/core/job.hpp"
#include "taskq/core/time.hpp"

namespace taskq::worker {

struct HandlerResult {
  enum class Kind {
    completed,  // done; `result` (JSON text) is kept on the job
    retry,      // failed attempt: retry after backoff until max_attempts, then failed
    failed,     // permanent failure: failed at once
    snoozed,    // run again after `snooze` without using up an attempt
  };
  Kind kind = Kind::completed;
  std::optional<std::string> result{};  // JSON text
  std::string message{};                // why it failed (retry/failed)
  std::optional<Duration> snooze{};     // snoozed: delay (default 60 s)
  std::optional<int> exit_status{};     // exec: exit code
  std::optional<int> signal{};          // exec: killed by this signal
  std::string stderr_tail{};            // exec: last bytes of stderr
};

/// The W3C trace context of one attempt: a child span of the job's traceparent with a span id of
/// its own. `traceparent` is what handlers pass on (exec: TRACEPARENT and TRACESTATE in the
/// environment; http: the traceparent and tracestate headers).
struct AttemptTrace {
  std::string trace_id;                   // 32 hex: the job's trace
  std::string span_id;                    // 16 hex: this attempt's span
  std::string traceparent;                // "00-<trace_id>-<span_id>-<flags>"
  std::optional<std::string> tracestate;  // the job's tracestate, verbatim
};

/// What an in-process handler sees. `stop` is requested on timeout, cancellation and shutdown;
/// a handler that ignores it keeps its thread busy but its outcome is discarded.
struct JobContext {
  const Job& job;
  std::stop_token stop;
  std::function<void(int percent, const std::string& message)> progress;
  AttemptTrace trace;
};

/// Runs on a worker-owned thread, one job at a time. Throwing an exception is a failed attempt
/// (retry) whose message is the exception's what().
using InProcessHandler = std::function<HandlerResult(JobContext&)>;

}  // namespace taskq::worker
