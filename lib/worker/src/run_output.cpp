#include "run_output.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "taskq/core/utf8.hpp"

namespace taskq::worker {

void tidy_result(HandlerResult& r) {
  r.message = clean_text_head(r.message, max_message_bytes);
  r.stderr_tail = clean_text(r.stderr_tail);
  if (!r.result) return;
  std::string error;
  r.result = clean_json(*r.result, error);
  if (!r.result && r.kind == HandlerResult::Kind::completed) {
    r.kind = HandlerResult::Kind::retry;
    r.message = "result: " + error;
  }
}

std::string error_entry(int attempt, const HandlerResult& r, Timestamp at, std::string_view span_id) {
  boost::json::object e;
  e["at"] = format_rfc3339(at);
  e["attempt"] = attempt;
  if (!span_id.empty()) e["span_id"] = span_id;
  e["message"] = r.message;
  if (r.exit_status) e["exit_status"] = *r.exit_status;
  if (r.signal) e["signal"] = *r.signal;
  if (!r.stderr_tail.empty()) e["stderr_tail"] = r.stderr_tail;
  return boost::json::serialize(e);
}

std::string progress_json(int percent, std::string_view message, Timestamp at) {
  boost::json::object o;
  o["percent"] = percent;
  if (!message.empty()) o["message"] = clean_text_head(message, max_progress_message_bytes);
  o["at"] = format_rfc3339(at);
  return boost::json::serialize(o);
}

}  // namespace taskq::worker
