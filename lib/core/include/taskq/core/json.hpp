#pragma once
// JSON mapping of taskq's types, shared by the CLI and the HTTP API so both speak the same shape.
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "taskq/core/job.hpp"

namespace taskq {

/// Every field of the job; JSON columns are embedded as JSON, times as RFC 3339 strings.
boost::json::object job_to_json(const Job& job);

/// Parses one job description ({"kind": ..., "args": ..., "queue": ..., "priority": ...,
/// "run_at": ..., "in": ..., "max_attempts": ..., "timeout": ..., "unique_key": ...,
/// "tags": [...], "metadata": {...}}). Unknown fields are rejected. Throws
/// Error(invalid_input) naming the field. Does not apply limits: call validate_enqueue().
EnqueueParams enqueue_params_from_json(const boost::json::value& v);
EnqueueParams enqueue_params_from_json_text(std::string_view text);

/// Parses text as JSON or throws Error(invalid_input) "<what>: invalid JSON at offset N: ...".
boost::json::value parse_json(std::string_view what, std::string_view text);

}  // namespace taskq
