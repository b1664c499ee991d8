#pragma once
// The trace context of one attempt, and how log lines name a job.
//
// Each attempt is a child span of the job's traceparent (the enqueuer's span): same trace id and
// flags, a new span id from getrandom. A job without a usable traceparent (enqueued before schema
// version 5) gets a new trace for the attempt. Log lines name a job as
// "job ID (queue Q, kind K, trace_id=HEX)": the JSON log format lifts `trace_id=` into a field.
#include <string>

#include "taskq/core/job.hpp"
#include "taskq/worker/handler.hpp"

namespace taskq::worker {

/// Starts an attempt of `job`: gives it a traceparent when it has none, and a new span id.
AttemptTrace begin_attempt(Job& job);

/// The 32 hex digit trace id of the job's traceparent, or "" when it has none.
std::string trace_id_of(const Job& job);

/// "job ID (queue Q, kind K, trace_id=HEX)"; without ", trace_id=..." when the trace id is "".
std::string job_label(JobId id, const std::string& queue, const std::string& kind, const std::string& trace_id);
std::string job_label(const Job& job);

}  // namespace taskq::worker
