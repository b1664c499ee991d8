// What taskq-apid added for its dashboard, through the real binary and a real PostgreSQL: the
// /ui files with their headers (and 304, and api.ui = false), cancel and retry by filter with a
// dry run, finished jobs per queue and minute, and pause, resume and trigger of a periodic
// schedule.
#include <string>

#include "apid_fixture.hpp"
#include "http_client.hpp"
#include "system_helpers.hpp"

namespace taskq::systest {
namespace {

using taskq::test::http_request;

long long enqueue_api(const Apid& api, const std::string& body) {
  const auto r = api.post("/v1/jobs", body);
  REQUIRE_STATUS(r, 201);
  return json(r.body).at("id").to_number<long long>();
}

}  // namespace

TEST_CASE("dashboard: /ui is served without a token, with its CSP and ETag, and api.ui = false is 404", "[apid][ui]") {
  TestSchema db;
  {
    Apid api(db);
    const auto page = http_request(api.port(), "GET", "/ui", "", {});
    REQUIRE_STATUS(page, 200);
    CHECK(page.header("content-type") == "text/html; charset=utf-8");
    CHECK(contains(page.header("content-security-policy"), "default-src 'none'; script-src 'self'"));
    CHECK(page.header("x-content-type-options") == "nosniff");
    CHECK(contains(page.body, "/ui/app.js"));
    const auto etag = page.header("etag");
    REQUIRE(etag.size() == 42);
    const auto again = http_request(api.port(), "GET", "/ui", "", {{"If-None-Match", etag}});
    CHECK_STATUS(again, 304);
    CHECK(again.body.empty());
    const auto script = http_request(api.port(), "GET", "/ui/app.js", "", {});
    REQUIRE_STATUS(script, 200);
    CHECK(script.header("content-type") == "text/javascript; charset=utf-8");
    CHECK_STATUS(http_request(api.port(), "GET", "/ui/nothing.js", "", {}), 404);
  }
  Apid off(db, "ui = false\n");
  const auto r = http_request(off.port(), "GET", "/ui", "", {});
  CHECK_STATUS(r, 404);
  CHECK(contains(error_of(r).at("message").as_string().c_str(), "api.ui = false"));
}

TEST_CASE("dashboard: cancel and retry by filter, a dry run first, all or nothing", "[apid][ui]") {
  TestSchema db;
  Apid api(db);
  for (int i = 0; i < 3; ++i) enqueue_api(api, R"({"kind": "a", "queue": "bulk"})");
  const auto other = enqueue_api(api, R"({"kind": "a", "queue": "other"})");

  const auto dry = api.post("/v1/jobs/cancel", R"({"queue": "bulk", "dry_run": true})", admin);
  REQUIRE_STATUS(dry, 200);
  CHECK(json(dry.body).at("count").to_number<long long>() == 3);
  CHECK(json(dry.body).at("dry_run").as_bool());
  CHECK(json(dry.body).at("jobs").as_array().size() == 3);
  CHECK(count_jobs(db, "state = 'available'") == 4);  // a dry run changes nothing

  CHECK_STATUS(api.post("/v1/jobs/cancel", R"({"queue": "bulk"})", ci), 403);
  CHECK_STATUS(api.post("/v1/jobs/cancel", R"({})", admin), 422);
  CHECK(count_jobs(db, "state = 'available'") == 4);

  const auto cancelled = api.post("/v1/jobs/cancel", R"({"queue": ["bulk"], "state": "available"})", admin);
  REQUIRE_STATUS(cancelled, 200);
  CHECK(json(cancelled.body).at("count").to_number<long long>() == 3);
  CHECK(json(cancelled.body).at("jobs").as_array()[0].at("to").as_string() == "cancelled");
  CHECK(count_jobs(db, "queue = 'bulk' AND state = 'cancelled'") == 3);
  CHECK(job_field(db, other, "state") == "available");

  const auto retry_dry = api.post("/v1/jobs/retry", R"({"state": "cancelled", "kind": "a", "dry_run": true})", admin);
  REQUIRE_STATUS(retry_dry, 200);
  CHECK(json(retry_dry.body).at("count").to_number<long long>() == 3);
  CHECK(count_jobs(db, "state = 'cancelled'") == 3);
  const auto retried = api.post("/v1/jobs/retry", R"({"state": "cancelled", "kind": "a"})", admin);
  REQUIRE_STATUS(retried, 200);
  CHECK(json(retried.body).at("count").to_number<long long>() == 3);
  CHECK(count_jobs(db, "state = 'available'") == 4);

  const auto none = api.post("/v1/jobs/retry", R"({"queue": "nowhere"})", admin);
  REQUIRE_STATUS(none, 200);
  CHECK(json(none.body).at("count").to_number<long long>() == 0);
}

TEST_CASE("dashboard: throughput counts finished jobs per queue and minute, in the window only", "[apid][ui]") {
  TestSchema db;
  Apid api(db);
  const long long a = enqueue_api(api, R"({"kind": "k", "queue": "q1"})");
  const long long b = enqueue_api(api, R"({"kind": "k", "queue": "q1"})");
  const long long c = enqueue_api(api, R"({"kind": "k", "queue": "q2"})");
  const long long old = enqueue_api(api, R"({"kind": "k", "queue": "q1"})");
  enqueue_api(api, R"({"kind": "k", "queue": "q1"})");  // still available: not counted
  make_finished(db, a, "completed");
  make_finished(db, b, "failed");
  make_finished(db, c, "cancelled");
  make_finished(db, old, "completed", "now() - interval '2 hours'");

  const auto r = api.get("/v1/throughput?minutes=60", ro);
  REQUIRE_STATUS(r, 200);
  const auto t = json(r.body).as_object();
  CHECK(t.at("minutes").to_number<long long>() == 60);
  const std::string as_of(t.at("as_of").as_string());
  CHECK(contains(as_of, ":00Z"));
  long long completed = 0, failed = 0, cancelled = 0;
  for (const auto& bucket : t.at("buckets").as_array()) {
    const auto& o = bucket.as_object();
    const std::string queue(o.at("queue").as_string());
    CHECK((queue == "q1" || queue == "q2"));
    completed += o.at("completed").to_number<long long>();
    failed += o.at("failed").to_number<long long>();
    cancelled += o.at("cancelled").to_number<long long>();
  }
  CHECK(completed == 1);  // the one finished two hours ago is outside
  CHECK(failed == 1);
  CHECK(cancelled == 1);

  const auto wide = json(api.get("/v1/throughput?minutes=180", ro).body).as_object();
  long long wide_completed = 0;
  for (const auto& bucket : wide.at("buckets").as_array())
    wide_completed += bucket.as_object().at("completed").to_number<long long>();
  CHECK(wide_completed == 2);
  CHECK_STATUS(api.get("/v1/throughput?minutes=0", ro), 422);
}

TEST_CASE("dashboard: pause, resume and trigger a periodic schedule", "[apid][ui]") {
  TestSchema db;
  Apid api(db);
  db.exec(
      "INSERT INTO periodic (name, schedule, kind, queue, args) "
      "VALUES ('nightly', '30 2 * * *', 'report', 'reports', '{\"scope\": \"all\"}')");
  const auto paused = api.post("/v1/periodic/nightly/pause", "", admin);
  REQUIRE_STATUS(paused, 200);
  CHECK(json(paused.body).at("state").as_string() == "paused");
  CHECK(json(paused.body).at("changed").as_bool());
  CHECK(db.scalar("SELECT paused_at IS NOT NULL FROM periodic WHERE name = 'nightly'") == "t");
  CHECK_FALSE(json(api.post("/v1/periodic/nightly/pause", "", admin).body).at("changed").as_bool());
  // The same shape as taskctl's.
  const auto ctl = taskctl(db, {"-o", "json", "cron", "resume", "nightly"});
  REQUIRE_EXIT(ctl, 0);
  CHECK(json(ctl.out) == json(R"({"name": "nightly", "state": "active", "changed": true})"));
  CHECK_FALSE(json(api.post("/v1/periodic/nightly/resume", "", admin).body).at("changed").as_bool());

  const auto triggered = api.post("/v1/periodic/nightly/trigger", "", admin);
  REQUIRE_STATUS(triggered, 201);
  const auto id = json(triggered.body).at("id").to_number<long long>();
  CHECK(job_field(db, id, "kind") == "report");
  CHECK(job_field(db, id, "queue") == "reports");
  CHECK(job_field(db, id, "metadata->>'trigger'") == "manual");
  CHECK(db.scalar("SELECT last_fire_at IS NULL FROM periodic WHERE name = 'nightly'") == "t");

  for (const char* verb : {"pause", "resume", "trigger"}) {
    const auto unknown = api.post(std::string("/v1/periodic/weekly/") + verb, "", admin);
    CHECK_STATUS(unknown, 404);
    CHECK(contains(std::string(error_of(unknown).at("message").as_string()), "weekly"));
  }
  CHECK_STATUS(api.post("/v1/periodic/nightly/pause", "", ci), 403);
}

}  // namespace taskq::systest
