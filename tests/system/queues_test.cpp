// System tests of the queue commands of taskctl: pause, resume, drain, stats.
#include <chrono>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "system_helpers.hpp"

using namespace taskq::systest;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

std::string paused_at(const TestSchema& db, const std::string& queue) {
  return db.scalar("SELECT CASE WHEN paused_at IS NULL THEN 'no' ELSE 'yes' END FROM queues WHERE name = '" + queue +
                   "'");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// pause / resume

TEST_CASE("pause and resume named queues, reporting what changed", "[pause]") {
  TestSchema db;
  enqueue(db, {"k", "--queue", "mail"});

  const auto p = taskctl(db, {"pause", "mail", "reports"});
  REQUIRE_EXIT(p, 0);
  CHECK(p.out == "mail: paused\nreports: paused\n");
  CHECK(paused_at(db, "mail") == "yes");
  CHECK(paused_at(db, "reports") == "yes");

  const auto again = taskctl(db, {"pause", "mail"});
  REQUIRE_EXIT(again, 0);
  CHECK(again.out == "mail: was already paused\n");

  const auto r = taskctl(db, {"resume", "mail"});
  REQUIRE_EXIT(r, 0);
  CHECK(r.out == "mail: resumed\n");
  CHECK(paused_at(db, "mail") == "no");
  CHECK(paused_at(db, "reports") == "yes");

  const auto r2 = taskctl(db, {"resume", "mail", "never-paused"});
  REQUIRE_EXIT(r2, 0);
  CHECK(r2.out == "mail: was not paused\nnever-paused: was not paused\n");
  CHECK(job_field(db, std::stoll(db.scalar("SELECT max(id) FROM jobs")), "state") == "available");
}

TEST_CASE("pause --all and resume --all cover queues with jobs and queues paused before", "[pause]") {
  TestSchema db;
  const auto none = taskctl(db, {"pause", "--all"});
  REQUIRE_EXIT(none, 0);
  CHECK(none.out.empty());
  CHECK_THAT(none.err, Contains("no queues yet"));
  CHECK(db.scalar("SELECT count(*) FROM queues") == "0");

  enqueue(db, {"k", "--queue", "a"});
  enqueue(db, {"k", "--queue", "b"});
  REQUIRE_EXIT(taskctl(db, {"pause", "c"}), 0);

  const auto all = taskctl(db, {"-o", "json", "pause", "--all"});
  REQUIRE_EXIT(all, 0);
  const auto v = json(all.out).as_array();
  REQUIRE(v.size() == 3);
  CHECK(v[0].at("queue").as_string() == "a");
  CHECK(v[0].at("paused").as_bool() == true);
  CHECK(v[0].at("changed").as_bool() == true);
  CHECK(v[2].at("queue").as_string() == "c");
  CHECK(v[2].at("changed").as_bool() == false);
  CHECK(db.scalar("SELECT count(*) FROM queues WHERE paused_at IS NOT NULL") == "3");

  const auto resumed = taskctl(db, {"-o", "jsonl", "resume", "--all"});
  REQUIRE_EXIT(resumed, 0);
  const auto lines = lines_of(trim(resumed.out));
  REQUIRE(lines.size() == 3);
  CHECK(json(lines[1]).at("queue").as_string() == "b");
  CHECK(json(lines[1]).at("paused").as_bool() == false);
  CHECK(db.scalar("SELECT count(*) FROM queues WHERE paused_at IS NOT NULL") == "0");
}

TEST_CASE("pause and resume reject bad usage with exit 2 and change nothing", "[pause][errors]") {
  TestSchema db;
  enqueue(db, {"k", "--queue", "a"});
  const std::string before = snapshot(db);
  for (const std::string cmd : {"pause", "resume"}) {
    INFO(cmd);
    const auto neither = taskctl(db, {cmd});
    CHECK_EXIT(neither, 2);
    CHECK_THAT(neither.err, Contains("give queue names or --all"));
    const auto both = taskctl(db, {cmd, "a", "--all"});
    CHECK_EXIT(both, 2);
    CHECK_THAT(both.err, Contains("not both"));
    const auto empty = taskctl(db, {cmd, "a", ""});
    CHECK_EXIT(empty, 2);
    CHECK_THAT(empty.err, Contains("queue") && Contains("empty"));
    const auto long_name = taskctl(db, {cmd, std::string(200, 'q')});
    CHECK_EXIT(long_name, 2);
    CHECK_THAT(long_name.err, Contains("128 bytes"));
  }
  CHECK(snapshot(db) == before);
}

// ---------------------------------------------------------------------------------------------
// drain

TEST_CASE("drain with nothing running pauses the queues and says how to resume", "[drain]") {
  TestSchema db;
  enqueue(db, {"k", "--queue", "mail"});
  const auto r = taskctl(db, {"drain", "mail", "reports", "--timeout", "5s"});
  REQUIRE_EXIT(r, 0);
  CHECK_THAT(r.out, StartsWith("drained mail reports: paused") && Contains("for 0 running job(s)"));
  CHECK_THAT(r.err, Contains("taskctl resume mail reports"));
  CHECK(paused_at(db, "mail") == "yes");
  CHECK(paused_at(db, "reports") == "yes");

  const auto quiet = taskctl(db, {"-q", "-o", "json", "drain", "mail"});
  REQUIRE_EXIT(quiet, 0);
  CHECK(quiet.err.empty());
  const auto v = json(quiet.out);
  CHECK(v.at("paused").as_bool() == true);
  CHECK(v.at("waited_for").as_array().empty());
}

TEST_CASE("drain times out with exit 5, leaves the queues paused and says how to resume", "[drain]") {
  TestSchema db;
  const long long running = enqueue(db, {"video.encode", "--queue", "media"});
  const long long waiting = enqueue(db, {"video.encode", "--queue", "media"});
  make_running(db, running);

  const auto start = std::chrono::steady_clock::now();
  const auto r = taskctl(db, {"drain", "media", "--timeout", "300ms"});
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK_EXIT(r, 5);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Contains("timed out after 300ms") && Contains("1 job(s) still running") &&
                        Contains(std::to_string(running) + " (media/video.encode)") &&
                        Contains("taskctl resume media"));
  CHECK(took >= std::chrono::milliseconds(300));
  CHECK(took < std::chrono::seconds(10));
  CHECK(paused_at(db, "media") == "yes");
  CHECK(job_field(db, running, "state") == "running");
  CHECK(job_field(db, waiting, "state") == "available");

  // -q hides the progress note, not the error.
  const auto quiet = taskctl(db, {"-q", "drain", "media", "--timeout", "0s"});
  CHECK_EXIT(quiet, 5);
  CHECK(lines_of(trim(quiet.err)).size() == 1);
  CHECK_THAT(quiet.err, Contains("timed out") && Contains("taskctl resume media"));
}

TEST_CASE("drain waits until the running job finishes and reports it", "[drain]") {
  TestSchema db;
  const long long running = enqueue(db, {"k", "--queue", "work"});
  make_running(db, running);

  // A distinct application_name lets us watch drain's connection in pg_stat_activity.
  const std::string app = "drain_" + db.name();
  const std::string url = db.url() + (db.url().find('?') == std::string::npos ? "?" : "&") + "application_name=" + app;
  auto drain = std::async(std::launch::async, [&] {
    return taskctl_raw(
        {"--database-url", url, "--schema", db.name(), "-o", "json", "drain", "work", "--timeout", "30s"});
  });

  // The pause and each poll of drain are transactions (ending in COMMIT or, read-only, ROLLBACK),
  // each poll followed by ~100 ms idle. Two distinct idle moments after a transaction mean at least
  // one poll has seen the running job (the first may be the pause itself). Only then finish it.
  std::set<std::string> idle_commits;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (idle_commits.size() < 2 && std::chrono::steady_clock::now() < deadline &&
         drain.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
    const std::string row = db.scalar("SELECT state_change::text FROM pg_stat_activity WHERE application_name = '" +
                                      app + "' AND state = 'idle' AND query IN ('COMMIT', 'ROLLBACK')");
    if (!row.empty()) idle_commits.insert(row);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE(idle_commits.size() >= 2);
  CHECK(paused_at(db, "work") == "yes");
  db.exec("UPDATE jobs SET state = 'completed', finished_at = now() WHERE id = " + std::to_string(running));

  const auto r = drain.get();
  REQUIRE_EXIT(r, 0);
  const auto v = json(r.out);
  REQUIRE(v.at("waited_for").as_array().size() == 1);
  CHECK(v.at("waited_for").as_array()[0].as_int64() == running);
  CHECK(v.at("waited_ms").as_int64() >= 1);
  CHECK(v.at("queues").as_array()[0].as_string() == "work");
  CHECK_THAT(r.err, Contains("waiting for 1 running job(s)") && Contains("taskctl resume work"));
  CHECK(paused_at(db, "work") == "yes");
}

TEST_CASE("drain rejects bad usage with exit 2 and pauses nothing", "[drain][errors]") {
  TestSchema db;
  enqueue(db, {"k", "--queue", "mail"});
  const std::string before = snapshot(db);
  const auto no_queue = taskctl(db, {"drain"});
  CHECK_EXIT(no_queue, 2);
  CHECK_THAT(no_queue.err, Contains("queues"));
  const auto bad_timeout = taskctl(db, {"drain", "mail", "--timeout", "forever"});
  CHECK_EXIT(bad_timeout, 2);
  CHECK_THAT(bad_timeout.err, Contains("invalid duration 'forever'"));
  const auto empty_name = taskctl(db, {"drain", ""});
  CHECK_EXIT(empty_name, 2);
  CHECK_THAT(empty_name.err, Contains("queue"));
  CHECK(snapshot(db) == before);
}

// ---------------------------------------------------------------------------------------------
// stats

TEST_CASE("stats shows per-queue counts by state, paused, backlog age and recent throughput", "[stats]") {
  TestSchema db;
  const long long old_available = enqueue(db, {"k", "--queue", "alpha"});
  enqueue(db, {"k", "--queue", "alpha"});
  enqueue(db, {"k", "--queue", "alpha", "--in", "1h"});
  const long long running = enqueue(db, {"k", "--queue", "alpha"});
  const long long completed = enqueue(db, {"k", "--queue", "alpha"});
  const long long failed = enqueue(db, {"k", "--queue", "alpha"});
  const long long cancelled = enqueue(db, {"k", "--queue", "alpha"});
  make_running(db, running);
  make_finished(db, completed, "completed");
  make_finished(db, failed, "failed", "now() - interval '2 minutes'");
  make_finished(db, cancelled, "cancelled");
  db.exec("UPDATE jobs SET run_at = now() - interval '1 hour' WHERE id = " + std::to_string(old_available));
  enqueue(db, {"k", "--queue", "gamma"});
  REQUIRE_EXIT(taskctl(db, {"-q", "pause", "beta"}), 0);

  const auto j = taskctl(db, {"-o", "json", "stats"});
  REQUIRE_EXIT(j, 0);
  const auto arr = json(j.out).as_array();
  REQUIRE(arr.size() == 3);
  const auto& alpha = arr[0].as_object();
  CHECK(alpha.at("queue").as_string() == "alpha");
  CHECK(alpha.at("paused").as_bool() == false);
  CHECK(alpha.at("paused_at").is_null());
  CHECK(alpha.at("scheduled").as_int64() == 1);
  CHECK(alpha.at("available").as_int64() == 2);
  CHECK(alpha.at("running").as_int64() == 1);
  CHECK(alpha.at("completed").as_int64() == 1);
  CHECK(alpha.at("failed").as_int64() == 1);
  CHECK(alpha.at("cancelled").as_int64() == 1);
  CHECK(alpha.at("finished_last_minute").as_int64() == 2);
  const auto age_ms = alpha.at("oldest_available_age_ms").as_int64();
  CHECK(age_ms >= 3600 * 1000);
  CHECK(age_ms < 3700 * 1000);
  const auto& beta = arr[1].as_object();
  CHECK(beta.at("queue").as_string() == "beta");
  CHECK(beta.at("paused").as_bool() == true);
  CHECK(beta.at("paused_at").is_string());
  CHECK(beta.at("available").as_int64() == 0);
  CHECK(beta.at("oldest_available_age_ms").is_null());
  CHECK(arr[2].at("queue").as_string() == "gamma");
  CHECK(arr[2].at("available").as_int64() == 1);

  const auto t = taskctl(db, {"stats"});
  REQUIRE_EXIT(t, 0);
  CHECK(t.err.empty());
  const auto lines = lines_of(trim(t.out));
  REQUIRE(lines.size() == 4);
  CHECK_THAT(lines[0], StartsWith("QUEUE") && Contains("PAUSED") && Contains("SCHEDULED") && Contains("AVAILABLE") &&
                           Contains("RUNNING") && Contains("COMPLETED") && Contains("FAILED") &&
                           Contains("CANCELLED") && Contains("OLDEST_AVAILABLE") && Contains("FINISHED_1M"));
  CHECK_THAT(lines[1], StartsWith("alpha ") && Contains(" no ") && Contains(" 1h"));
  CHECK_THAT(lines[2], StartsWith("beta ") && Contains(" yes "));

  const auto one = taskctl(db, {"-o", "json", "stats", "--queue", "gamma"});
  REQUIRE_EXIT(one, 0);
  const auto only = json(one.out).as_array();
  REQUIRE(only.size() == 1);
  CHECK(only[0].at("queue").as_string() == "gamma");
}

TEST_CASE("stats of an empty schema says so on stderr, and a bad --watch is exit 2", "[stats]") {
  TestSchema db;
  const auto t = taskctl(db, {"stats"});
  REQUIRE_EXIT(t, 0);
  CHECK(t.out.empty());
  CHECK_THAT(t.err, Contains("no queues yet"));
  const auto j = taskctl(db, {"-o", "json", "stats"});
  REQUIRE_EXIT(j, 0);
  CHECK(json(j.out).as_array().empty());

  const auto negative = taskctl(db, {"stats", "--watch=-1"});
  CHECK_EXIT(negative, 2);
  CHECK_THAT(negative.err, Contains("--watch"));
  const auto word = taskctl(db, {"stats", "--watch", "often"});
  CHECK_EXIT(word, 2);
  CHECK_THAT(word.err, Contains("often"));
}
