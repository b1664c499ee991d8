#pragma once
// What a route answers: a status, a JSON (or text) body and extra headers; and the one shape
// of every error, {"error": {"code": .., "message": .., "field": ..}}.
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "taskq/core/error.hpp"

namespace taskq::api {

struct Response {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // close the connection after it (the request could not be read whole)
  std::vector<std::pair<std::string, std::int64_t>> enqueued;  // jobs created, by queue (for metrics)
  std::string detail;  // for the log only, never sent: what went wrong inside (a database error's text)
};

Response json_response(unsigned status, const boost::json::value& body);
/// `code` is a stable word ("not_found", "invalid_field", ...); `field` names the request field
/// at fault, when one is.
Response error_response(unsigned status, const std::string& code, const std::string& message,
                        const std::optional<std::string>& field = std::nullopt);
/// Adds "Retry-After: seconds".
Response retry_after(Response r, int seconds);
/// An Error of the library as HTTP: invalid_input 422 (the field named when the message starts
/// with it) or 400 for malformed JSON, not_found 404, conflict 409, locked 409 (code "locked",
/// Retry-After: 1), unavailable (Retry-After: 1) and not_migrated 503, timeout 504, internal 500.
/// A 5xx body says only what the client may do (a fixed message per code); the error's own text,
/// which may quote PostgreSQL, goes to `detail` for the log.
Response from_error(const Error& e);
/// The body a 500 carries, whatever went wrong: no SQL, SQLSTATE or internal message, only the
/// request id under which the log holds the details.
Response internal_error_response(const std::string& request_id);

}  // namespace taskq::api
