#pragma once
// What an enqueue request carries besides its body: the W3C trace context headers and the
// request id. Applied to each job before validation.
//
// Rules (docs/tracing.md): a job's own `traceparent` field wins over the header; an invalid
// `traceparent` header (or more than one) is ignored, as the W3C spec says, and the job gets a
// new trace; the `tracestate` header goes with the header's traceparent only, and is dropped
// when invalid. The request id goes into the job's metadata under `request_id_key`, unless the
// client's metadata already has that key.
#include <boost/beast/http/fields.hpp>
#include <string>
#include <string_view>

#include "taskq/core/job.hpp"

namespace taskq::api {

inline constexpr std::string_view request_id_key = "taskq_request_id";

struct RequestTrace {
  std::string traceparent;  // the header as received ("" when absent or sent more than once)
  std::string tracestate;   // the header(s) as received, joined with ','
  std::string request_id;   // X-Request-Id as the API answers it ("" in tests: not stored)
};

/// The trace context headers of a request and its id: a traceparent sent more than once is no
/// traceparent; several tracestate headers are one list, joined with ','.
RequestTrace request_trace(const boost::beast::http::fields& headers, const std::string& request_id);

/// Applies the headers to one job: throws Error(invalid_input) only for its metadata not being a
/// JSON object (validation of the job's own fields stays validate_enqueue's).
void apply_request_trace(EnqueueParams& p, const RequestTrace& r);

}  // namespace taskq::api
