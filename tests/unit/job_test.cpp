#include <catch2/catch.hpp>

#include "sql_text.hpp"
#include "taskq/core/error.hpp"
#include "taskq/core/job.hpp"
#include "taskq/core/json.hpp"

using namespace taskq;

namespace {

Errc error_code(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Errc::internal;
}

std::string error_text(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("job states parse and list", "[job]") {
  CHECK(parse_job_state("failed") == JobState::failed);
  CHECK(parse_job_states("failed,cancelled,failed") == std::vector<JobState>{JobState::failed, JobState::cancelled});
  CHECK(error_text([] { parse_job_state("done"); }).find("unknown state 'done'") != std::string::npos);
  CHECK(error_code([] { parse_job_states("failed,,running"); }) == Errc::invalid_input);
  CHECK(is_final(JobState::cancelled));
  CHECK_FALSE(is_final(JobState::running));
}

TEST_CASE("names are stored verbatim but must be sane", "[job]") {
  CHECK_NOTHROW(validate_name("queue", "mail'; DROP TABLE jobs; --"));
  CHECK_NOTHROW(validate_name("queue", "émails"));
  CHECK(error_text([] { validate_name("queue", ""); }) == "queue: must not be empty");
  CHECK(error_code([] { validate_name("kind", std::string(129, 'k')); }) == Errc::invalid_input);
  CHECK(error_code([] { validate_name("tag", "a\tb"); }) == Errc::invalid_input);
  CHECK(error_code([] { validate_name("tag", "\xff\xfe"); }) == Errc::invalid_input);
  CHECK(error_code([] { validate_name("tag", "abc\xc3"); }) == Errc::invalid_input);
}

TEST_CASE("enqueue validation names the field", "[job]") {
  EnqueueParams p;
  p.kind = "k";
  CHECK_NOTHROW(validate_enqueue(p, {}));
  p.priority = 10;
  CHECK(error_text([&] { validate_enqueue(p, {}); }).rfind("priority: 10 is out of range", 0) == 0);
  p.priority = 0;
  p.args = "[1,2";
  CHECK(error_text([&] { validate_enqueue(p, {}); }).rfind("args: invalid JSON", 0) == 0);
  p.args = R"({"big":"xxxxxxxxxx"})";
  CHECK(error_text([&] { validate_enqueue(p, EnqueueLimits{10}); }).find("over the limit of 10 bytes") !=
        std::string::npos);
  p.args = "{}";
  p.metadata = "\"text\"";
  CHECK(error_text([&] { validate_enqueue(p, {}); }) == "metadata: must be a JSON object");
}

TEST_CASE("job descriptions parse from JSON", "[json]") {
  auto p = enqueue_params_from_json_text(
      R"({"kind":"mail","args":{"to":"x"},"queue":"q","priority":1,"in":"5m","max_attempts":3,)"
      R"("timeout":"30s","unique_key":"u","tags":["a","b"],"metadata":{"k":"v"}})");
  CHECK(p.kind == "mail");
  CHECK(p.args == R"({"to":"x"})");
  CHECK(p.queue == "q");
  CHECK(p.priority == 1);
  CHECK(p.delay == std::chrono::minutes{5});
  CHECK(p.max_attempts == 3);
  CHECK(p.timeout == std::chrono::seconds{30});
  CHECK(p.unique_key == "u");
  CHECK(p.tags == std::vector<std::string>{"a", "b"});
  CHECK(p.metadata == R"({"k":"v"})");
  CHECK(enqueue_params_from_json_text(R"({"kind":"x","timeout":2.5})").timeout == std::chrono::milliseconds{2500});
  CHECK(error_text([] {
          enqueue_params_from_json_text(R"({"kind":"x","colour":1})");
        }).rfind("unknown field \"colour\"", 0) == 0);
  CHECK(error_text([] { enqueue_params_from_json_text(R"({"args":{}})"); }) == "kind: missing");
  CHECK(error_text([] { enqueue_params_from_json_text(R"({"kind":"x","priority":"high"})"); }) ==
        "priority: must be an integer");
  CHECK(error_code([] {
          enqueue_params_from_json_text(R"({"kind":"x","run_at":"2026-11-23T10:00:00Z","in":"5m"})");
        }) == Errc::invalid_input);
  CHECK(error_code([] { enqueue_params_from_json_text(R"([1])"); }) == Errc::invalid_input);
  CHECK(error_code([] { enqueue_params_from_json_text(R"({"kind":)"); }) == Errc::invalid_input);
}

TEST_CASE("jobs map to JSON with every field", "[json]") {
  Job j;
  j.id = 7;
  j.queue = "q";
  j.kind = "k";
  j.args = R"({"a": 1})";
  j.timeout = std::chrono::seconds{90};
  j.tags = {"t"};
  j.result = R"({"ok": true})";
  const auto o = job_to_json(j);
  CHECK(o.at("id").as_int64() == 7);
  CHECK(o.at("state").as_string() == "available");
  CHECK(o.at("args").as_object().at("a").as_int64() == 1);
  CHECK(o.at("timeout").as_string() == "1m30s");
  CHECK(o.at("result").as_object().at("ok").as_bool());
  CHECK(o.at("progress").is_null());
  CHECK(o.at("errors").as_array().empty());
  CHECK(o.at("tags").as_array().size() == 1);
}

TEST_CASE("SQL text forms escape what PostgreSQL needs", "[sql]") {
  CHECK(store::sql::text_array(std::vector<std::string>{}) == "{}");
  CHECK(store::sql::text_array(std::vector<std::string>{"a", "b\"c", "d\\e", "NULL"}) ==
        R"({"a","b\"c","d\\e","NULL"})");
  CHECK(store::sql::int_array({1, -2, 3}) == "{1,-2,3}");
  CHECK(store::sql::text_array(std::vector<std::optional<std::string>>{"a\"", std::nullopt, ""}) ==
        R"({"a\"",NULL,""})");
  std::string line;
  store::sql::append_copy_field(line, "a\tb\nc\\d\re");
  CHECK(line == "a\\tb\\nc\\\\d\\re");
}
