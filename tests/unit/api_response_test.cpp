// taskq-apid's answers: the one error shape, Retry-After, and how the library's errors map to
// HTTP (the field named from the message, 5xx bodies that never quote the database).
#include <catch2/catch.hpp>

#include "response.hpp"

using namespace taskq;
using namespace taskq::api;

namespace {

std::string header(const Response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "(none)";
}

}  // namespace

TEST_CASE("responses: JSON bodies end with a newline, errors have one shape", "[unit][api]") {
  const auto ok = json_response(201, boost::json::object{{"id", 7}});
  CHECK(ok.status == 201);
  CHECK(ok.body == "{\"id\":7}\n");
  CHECK(ok.content_type == "application/json");
  CHECK(ok.headers.empty());

  const auto e = error_response(404, "not_found", "job 7 does not exist");
  CHECK(e.status == 404);
  CHECK(e.body == R"({"error":{"code":"not_found","message":"job 7 does not exist","field":null}})"
                  "\n");
  const auto f = error_response(422, "invalid_field", "queue: bad \"name\"", "queue");
  CHECK(f.body == R"({"error":{"code":"invalid_field","message":"queue: bad \"name\"","field":"queue"}})"
                  "\n");
}

TEST_CASE("responses: retry_after adds Retry-After in seconds", "[unit][api]") {
  const auto r = retry_after(error_response(503, "busy", "later"), 3);
  CHECK(r.status == 503);
  CHECK(header(r, "Retry-After") == "3");
  CHECK(r.headers.size() == 1);
}

TEST_CASE("responses: the library's errors as HTTP", "[unit][api]") {
  struct Case {
    Errc code;
    std::string message;
    unsigned status;
    std::string body_code;
    std::string field;  // "null" when none
    std::string retry_after;
  } cases[] = {
      {Errc::invalid_input, "priority: must be from 0 to 100", 422, "invalid_field", "\"priority\"", "(none)"},
      {Errc::invalid_input, "jobs[3].args: not JSON", 422, "invalid_field", "\"jobs[3].args\"", "(none)"},
      {Errc::invalid_input, "the batch is empty", 422, "invalid_field", "null", "(none)"},
      {Errc::invalid_input, "Queue: upper case is no field", 422, "invalid_field", "null", "(none)"},
      {Errc::invalid_input, ": starts with a colon", 422, "invalid_field", "null", "(none)"},
      {Errc::invalid_input, std::string(41, 'a') + ": too long for a field", 422, "invalid_field", "null", "(none)"},
      {Errc::invalid_input, "body: invalid JSON at line 1", 400, "malformed_json", "null", "(none)"},
      {Errc::not_found, "job 9 does not exist", 404, "not_found", "null", "(none)"},
      {Errc::conflict, "job 9 is running", 409, "conflict", "null", "(none)"},
      {Errc::locked, "job 9 is locked", 409, "locked", "null", "1"},
      {Errc::unavailable, "could not connect to server", 503, "unavailable", "null", "1"},
      {Errc::not_migrated, "relation taskq.jobs does not exist", 503, "not_migrated", "null", "(none)"},
      {Errc::timeout, "canceling statement due to statement timeout", 504, "timeout", "null", "(none)"},
      {Errc::internal, "SQLSTATE XX000 in SELECT ...", 500, "internal", "null", "(none)"},
  };
  for (const auto& c : cases) {
    INFO(c.message);
    const auto r = from_error(Error(c.code, c.message));
    CHECK(r.status == c.status);
    CHECK(r.body.find("\"code\":\"" + c.body_code + "\"") != std::string::npos);
    CHECK(r.body.find("\"field\":" + c.field + "}") != std::string::npos);
    CHECK(header(r, "Retry-After") == c.retry_after);
    if (c.status >= 500) {
      // The client gets what it may do; the error's own text stays in the log.
      CHECK(r.body.find(c.message) == std::string::npos);
      CHECK(r.detail == c.message);
    } else {
      CHECK(r.body.find(c.message) != std::string::npos);
      CHECK(r.detail.empty());
    }
  }
  CHECK(from_error(Error(Errc::not_migrated, "x")).body.find("run: taskctl migrate") != std::string::npos);
}

TEST_CASE("responses: a 500 says only the request id", "[unit][api]") {
  const auto r = internal_error_response("abc123");
  CHECK(r.status == 500);
  CHECK(
      r.body ==
      R"({"error":{"code":"internal","message":"internal error; the server's log has the details under request id abc123","field":null}})"
      "\n");
}
