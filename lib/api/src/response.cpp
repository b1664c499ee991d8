#include "response.hpp"

#include <boost/json/serialize.hpp>

namespace taskq::api {

Response json_response(unsigned status, const boost::json::value& body) {
  Response r;
  r.status = status;
  r.body = boost::json::serialize(body);
  r.body += '\n';
  return r;
}

Response error_response(unsigned status, const std::string& code, const std::string& message,
                        const std::optional<std::string>& field) {
  boost::json::object e{{"code", code}, {"message", message}};
  e["field"] = field ? boost::json::value(*field) : boost::json::value(nullptr);
  return json_response(status, boost::json::object{{"error", std::move(e)}});
}

namespace {

// "priority: must be ..." -> "priority"; messages of the library start with the field they are
// about when there is one.
std::optional<std::string> leading_field(const std::string& message) {
  const auto colon = message.find(": ");
  if (colon == std::string::npos || colon == 0 || colon > 40) return std::nullopt;
  const std::string head = message.substr(0, colon);
  for (const char c : head)
    if (!((c >= 'a' && c <= 'z') || c == '_' || c == '[' || c == ']' || c == '.' || (c >= '0' && c <= '9')))
      return std::nullopt;
  return head;
}

Response with_detail(Response r, const std::string& detail) {
  r.detail = detail;
  return r;
}

}  // namespace

Response retry_after(Response r, int seconds) {
  r.headers.emplace_back("Retry-After", std::to_string(seconds));
  return r;
}

Response from_error(const Error& e) {
  const std::string message = e.what();
  switch (e.code()) {
    case Errc::invalid_input:
      if (message.find("invalid JSON at ") != std::string::npos) return error_response(400, "malformed_json", message);
      return error_response(422, "invalid_field", message, leading_field(message));
    case Errc::not_found:
      return error_response(404, "not_found", message);
    case Errc::conflict:
      return error_response(409, "conflict", message);
    case Errc::locked:
      return retry_after(error_response(409, "locked", message), 1);
    case Errc::unavailable:
      return retry_after(
          with_detail(error_response(503, "unavailable", "PostgreSQL is unavailable; try again later"), message), 1);
    case Errc::not_migrated:
      return with_detail(
          error_response(503, "not_migrated", "the database schema is missing or not migrated (run: taskctl migrate)"),
          message);
    case Errc::timeout:
      return with_detail(error_response(504, "timeout", "the database did not answer in time; try again later"),
                         message);
    case Errc::internal:
      break;
  }
  return with_detail(error_response(500, "internal", "internal error"), message);
}

Response internal_error_response(const std::string& request_id) {
  return error_response(500, "internal",
                        "internal error; the server's log has the details under request id " + request_id);
}

}  // namespace taskq::api
