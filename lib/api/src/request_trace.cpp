#include "request_trace.hpp"

#include <boost/json.hpp>

#include "taskq/core/json.hpp"
#include "taskq/core/trace.hpp"

namespace taskq::api {

RequestTrace request_trace(const boost::beast::http::fields& headers, const std::string& request_id) {
  RequestTrace t;
  t.request_id = request_id;
  if (headers.count("traceparent") == 1) t.traceparent = std::string(headers["traceparent"]);
  const auto [first, last] = headers.equal_range("tracestate");
  for (auto it = first; it != last; ++it) {
    if (!t.tracestate.empty()) t.tracestate += ',';
    t.tracestate += std::string(it->value());
  }
  return t;
}

void apply_request_trace(EnqueueParams& p, const RequestTrace& r) {
  if (!p.traceparent && !p.tracestate && !r.traceparent.empty()) {
    if (const auto t = parse_traceparent(r.traceparent)) {
      p.traceparent = format_traceparent(*t);
      if (!r.tracestate.empty() && tracestate_error(r.tracestate).empty()) p.tracestate = r.tracestate;
    }
  }
  if (r.request_id.empty()) return;
  auto meta = parse_json("metadata", p.metadata);
  if (!meta.is_object()) return;  // validate_enqueue says what is wrong
  auto& o = meta.get_object();
  if (o.contains(request_id_key)) return;
  o[request_id_key] = r.request_id;
  p.metadata = boost::json::serialize(o);
}

}  // namespace taskq::api
