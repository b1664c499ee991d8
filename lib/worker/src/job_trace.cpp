#include "job_trace.hpp"

#include "taskq/core/trace.hpp"

namespace taskq::worker {

AttemptTrace begin_attempt(Job& job) {
  std::optional<TraceContext> parent;
  if (job.traceparent) parent = parse_traceparent(*job.traceparent);
  if (!parent) {
    parent = new_trace();
    job.traceparent = format_traceparent(*parent);
    job.tracestate.reset();
  }
  AttemptTrace t;
  t.trace_id = parent->trace_id;
  t.span_id = new_span_id();
  t.traceparent = child_traceparent(*parent, t.span_id);
  if (job.tracestate && !job.tracestate->empty()) t.tracestate = *job.tracestate;
  return t;
}

std::string trace_id_of(const Job& job) {
  if (!job.traceparent || job.traceparent->size() < 3 + trace_id_hex) return {};
  return job.traceparent->substr(3, trace_id_hex);
}

std::string job_label(JobId id, const std::string& queue, const std::string& kind, const std::string& trace_id) {
  return job_log_label(id, queue, kind, trace_id);
}

std::string job_label(const Job& job) {
  return job_label(job.id, job.queue, job.kind, trace_id_of(job));
}

}  // namespace taskq::worker
