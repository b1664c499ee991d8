// W3C trace context end to end with the real binaries: taskq-apid stores the traceparent and
// tracestate headers (or a job's own fields) and the request id; taskctl takes --traceparent,
// the TRACEPARENT of its environment and JSON Lines fields; taskq-workerd gives each attempt of
// an exec job a span of its own in TRACEPARENT and writes the trace id into every JSON log line
// about the job. Malformed explicit values are bad input (422, exit 2); a malformed header is
// ignored and the job starts a new trace.
#include <chrono>
#include <regex>
#include <set>

#include "apid_fixture.hpp"
#include "daemon_process.hpp"
#include "system_helpers.hpp"
#include "workerd_helpers.hpp"

namespace taskq::systest {
namespace {

using namespace std::chrono_literals;
using taskq::test::DaemonProcess;
using taskq::test::http_request;

const std::string tid = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string v00 = "00-" + tid + "-00f067aa0ba902b7-01";
const std::regex traceparent_re("00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]");

std::string trace_id_of(const TestSchema& db, long long id) {
  return job_field(db, id, "substr(traceparent, 4, 32)");
}

bool is_traceparent(const std::string& s) {
  return std::regex_match(s, traceparent_re);
}

}  // namespace

TEST_CASE("apid: traceparent and tracestate headers are stored, with the request id in metadata", "[apid][trace]") {
  TestSchema db;
  Apid api(db);
  const auto traced = api.post("/v1/jobs", R"({"kind": "k", "metadata": {"owner": "ada"}})", ci,
                               {{"traceparent", v00}, {"tracestate", "rojo=1"}, {"X-Request-Id", "req-42"}});
  REQUIRE_STATUS(traced, 201);
  const auto job = json(traced.body).as_object();
  CHECK(job.at("traceparent").as_string() == v00);
  CHECK(job.at("tracestate").as_string() == "rojo=1");
  const auto id = job.at("id").to_number<long long>();
  CHECK(job_field(db, id, "traceparent") == v00);
  CHECK(job_field(db, id, "tracestate") == "rojo=1");
  CHECK(job_field(db, id, "metadata->>'taskq_request_id'") == "req-42");
  CHECK(job_field(db, id, "metadata->>'owner'") == "ada");  // the client's metadata is kept

  // No header: a new trace; the request id the API made up is stored (and answered).
  const auto plain = api.post("/v1/jobs", R"({"kind": "k"})");
  REQUIRE_STATUS(plain, 201);
  const auto plain_id = json(plain.body).at("id").to_number<long long>();
  CHECK(is_traceparent(job_field(db, plain_id, "traceparent")));
  CHECK(trace_id_of(db, plain_id) != tid);
  CHECK(job_field(db, plain_id, "tracestate") == "");
  CHECK(job_field(db, plain_id, "metadata->>'taskq_request_id'") == plain.header("x-request-id"));

  // A client's own metadata key wins.
  const auto own = api.post("/v1/jobs", R"({"kind": "k", "metadata": {"taskq_request_id": "mine"}})", ci,
                            {{"X-Request-Id", "req-43"}});
  REQUIRE_STATUS(own, 201);
  CHECK(json(own.body).at("metadata").at("taskq_request_id").as_string() == "mine");

  // An invalid header is ignored (W3C): 201 and a new trace.
  const auto bad_header = api.post("/v1/jobs", R"({"kind": "k"})", ci,
                                   {{"traceparent", "00-" + tid + "-0000000000000000-01"}, {"tracestate", "rojo=1"}});
  REQUIRE_STATUS(bad_header, 201);
  const auto bad_id = json(bad_header.body).at("id").to_number<long long>();
  CHECK(is_traceparent(job_field(db, bad_id, "traceparent")));
  CHECK(trace_id_of(db, bad_id) != tid);
  CHECK(job_field(db, bad_id, "tracestate") == "");

  // The job's own field wins over the header; a malformed field is a 422 naming it.
  const std::string other = "00-" + tid + "-b7ad6b7169203331-00";
  const auto field = api.post("/v1/jobs", R"({"kind": "k", "traceparent": ")" + other + R"("})", ci,
                              {{"traceparent", "00-" + std::string(32, 'a') + "-00f067aa0ba902b7-01"}});
  REQUIRE_STATUS(field, 201);
  CHECK(json(field.body).at("traceparent").as_string() == other);
  const auto before = snapshot(db);
  const auto invalid = api.post("/v1/jobs", R"({"kind": "k", "traceparent": "00-abc"})");
  CHECK_STATUS(invalid, 422);
  const auto e = error_of(invalid);
  CHECK(e.at("field").as_string() == "traceparent");
  CHECK(contains(std::string(e.at("message").as_string()), "traceparent: too short"));
  const auto invalid_state =
      api.post("/v1/jobs", R"({"kind": "k", "traceparent": ")" + v00 + R"(", "tracestate": "Rojo=1"})");
  CHECK_STATUS(invalid_state, 422);
  CHECK(error_of(invalid_state).at("field").as_string() == "tracestate");
  CHECK(snapshot(db) == before);
}

TEST_CASE("apid: a batch takes the header for every job, a job's own field wins", "[apid][trace]") {
  TestSchema db;
  Apid api(db);
  const std::string other = "00-" + std::string(32, 'b') + "-b7ad6b7169203331-01";
  const auto r = api.post("/v1/jobs/batch", R"([{"kind": "a"}, {"kind": "b", "traceparent": ")" + other + R"("}])", ci,
                          {{"traceparent", v00}, {"tracestate", "rojo=1"}, {"X-Request-Id", "batch-1"}});
  REQUIRE_STATUS(r, 201);
  const auto ids = json(r.body).at("ids").as_array();
  REQUIRE(ids.size() == 2);
  const auto a = ids[0].to_number<long long>(), b = ids[1].to_number<long long>();
  CHECK(job_field(db, a, "traceparent") == v00);
  CHECK(job_field(db, a, "tracestate") == "rojo=1");
  CHECK(job_field(db, b, "traceparent") == other);
  CHECK(job_field(db, b, "tracestate") == "");  // the header's tracestate goes with its traceparent only
  CHECK(count_jobs(db, "metadata->>'taskq_request_id' = 'batch-1'") == 2);

  const auto bad = api.post("/v1/jobs/batch", R"([{"kind": "x"}, {"kind": "y", "traceparent": "nope"}])");
  CHECK_STATUS(bad, 422);
  CHECK(contains(std::string(error_of(bad).at("message").as_string()), "jobs[1].traceparent: "));
  CHECK(count_jobs(db) == 2);
}

TEST_CASE("taskctl: --traceparent, TRACEPARENT, JSON Lines fields, and malformed values are exit 2", "[cli][trace]") {
  TestSchema db;
  const auto id = enqueue(db, {"k", "--traceparent", v00, "--tracestate", "rojo=1"});
  CHECK(job_field(db, id, "traceparent") == v00);
  CHECK(job_field(db, id, "tracestate") == "rojo=1");
  const auto show = taskctl(db, {"show", std::to_string(id)});
  REQUIRE_EXIT(show, 0);
  CHECK(contains(show.out, "traceparent:         " + v00 + "\n"));
  CHECK(contains(show.out, "tracestate:          rojo=1\n"));
  const auto shown = taskctl(db, {"-o", "json", "show", std::to_string(id)});
  REQUIRE_EXIT(shown, 0);
  CHECK(json(shown.out).at("traceparent").as_string() == v00);

  const auto fresh = enqueue(db, {"k"});
  CHECK(is_traceparent(job_field(db, fresh, "traceparent")));
  CHECK(trace_id_of(db, fresh) != tid);

  // A handler's TRACEPARENT: a job it enqueues joins its trace; an invalid one is ignored.
  const std::vector<std::string> base{"--database-url", db.url(), "--schema", db.name(), "enqueue", "k"};
  const auto child = taskctl_raw(base, "", {{"TRACEPARENT", v00}, {"TRACESTATE", "rojo=2"}});
  REQUIRE_EXIT(child, 0);
  CHECK(job_field(db, parse_id(child), "traceparent") == v00);
  CHECK(job_field(db, parse_id(child), "tracestate") == "rojo=2");
  const auto junk = taskctl_raw(base, "", {{"TRACEPARENT", "junk"}});
  REQUIRE_EXIT(junk, 0);
  CHECK(is_traceparent(job_field(db, parse_id(junk), "traceparent")));

  const auto before = snapshot(db);
  const auto bad = taskctl(db, {"enqueue", "k", "--traceparent", "00-" + tid + "-00f067aa0ba902b7-1"});
  CHECK_EXIT(bad, 2);
  CHECK(contains(bad.err, "traceparent: too short"));
  const auto upper = taskctl(db, {"enqueue", "k", "--traceparent", "00-" + tid + "-00F067AA0BA902B7-01"});
  CHECK_EXIT(upper, 2);
  CHECK(contains(upper.err, "traceparent: parent id must be lowercase hex digits"));
  const auto state_alone = taskctl(db, {"enqueue", "k", "--tracestate", "rojo=1"});
  CHECK_EXIT(state_alone, 2);
  CHECK(contains(state_alone.err, "tracestate: given without a traceparent"));
  CHECK(snapshot(db) == before);

  const std::string lines = "{\"kind\":\"a\",\"traceparent\":\"" + v00 + "\"}\n{\"kind\":\"b\"}\n";
  const auto file = taskctl(db, {"enqueue", "--file", "-"}, lines);
  REQUIRE_EXIT(file, 0);
  CHECK(count_jobs(db, "kind = 'a' AND traceparent = '" + v00 + "'") == 1);
  CHECK(count_jobs(db, "kind = 'b' AND traceparent ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-01$'") == 1);
  const auto snap = snapshot(db);
  const auto bad_line =
      taskctl(db, {"enqueue", "--file", "-"}, "{\"kind\":\"a\"}\n{\"kind\":\"b\",\"traceparent\":\"ff-x\"}\n");
  CHECK_EXIT(bad_line, 2);
  CHECK(contains(bad_line.err, "stdin:2: traceparent: "));
  CHECK(snapshot(db) == snap);
}

TEST_CASE("workerd: each attempt of an exec job gets its own span in TRACEPARENT and JSON logs carry trace_id",
          "[workerd][trace]") {
  TestSchema db;
  // Attempt 1 fails (exit 3), attempt 2 completes; each reports the TRACEPARENT it saw.
  const TempFile config(
      "[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() +
          "\"\n[log]\nlevel = \"debug\"\nformat = \"json\"\n[worker]\nqueues = { default = 2 }\n"
          "poll_interval = \"100ms\"\nheartbeat_interval = \"200ms\"\nshutdown_timeout = \"5s\"\n"
          "[kinds.traced]\nexec = [\"/bin/sh\", \"-c\", '''if [ \"$TASKQ_JOB_ATTEMPT\" = 1 ]; then "
          "echo \"first $TRACEPARENT\" >&2; exit 3; fi; "
          "echo \"result {\\\"tp\\\": \\\"$TRACEPARENT\\\", \\\"ts\\\": \\\"${TRACESTATE:-none}\\\"}\" >&3''']\n"
          "backoff = \"10ms\"\n",
      ".toml");
  DaemonProcess w(WORKERD_PATH, {"--config", config.path()}, clean_env());
  REQUIRE(taskq::test::wait_until(
      [&] { return db.scalar("SELECT count(*) FROM workers WHERE pid = " + std::to_string(w.pid())) == "1"; }, 10s));
  const auto id = enqueue(db, {"traced", "--traceparent", v00, "--tracestate", "rojo=1"});
  {
    const bool done = wait_state(db, id, "completed");
    INFO("job " << id << " is " << state_of(db, id) << "\n--- workerd log ---\n" << w.log());
    REQUIRE(done);
  }

  const std::string second = job_field(db, id, "result->>'tp'");
  std::string first = job_field(db, id, "errors->0->>'stderr_tail'");
  REQUIRE(first.rfind("first ", 0) == 0);
  first = trim(first.substr(6));
  INFO("attempt 1: " << first << ", attempt 2: " << second);
  REQUIRE(is_traceparent(first));
  REQUIRE(is_traceparent(second));
  CHECK(first.substr(3, 32) == tid);
  CHECK(second.substr(3, 32) == tid);
  CHECK(first.substr(36, 16) != second.substr(36, 16));  // a span per attempt
  CHECK(first.substr(36, 16) != "00f067aa0ba902b7");     // children of the enqueuer's span
  CHECK(job_field(db, id, "result->>'ts'") == "rojo=1");
  CHECK(job_field(db, id, "errors->0->>'span_id'") == first.substr(36, 16));

  // Every JSON line that names the job carries its trace id as a field.
  const std::string log = w.log();
  INFO(log);
  int about_job = 0;
  for (const auto& line : lines_of(log)) {
    if (!contains(line, "job " + std::to_string(id) + " ")) continue;
    ++about_job;
    const auto v = json(line);
    CHECK(v.at("trace_id").as_string() == tid);
  }
  CHECK(about_job >= 3);  // started, failed attempt 1, started again (debug)
}

}  // namespace taskq::systest
