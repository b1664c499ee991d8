// taskctl -o json and taskq-apid print the same JSON objects (taskq/queue/json_shapes.hpp and
// core's job_to_json): for one database, every object taskctl prints equals, as parsed JSON, the
// one the API answers. Jobs (show and list pages), queue stats, workers (live and dead, with
// running jobs), the scheduler's lease (none, leading, resigned), periodic schedules, and the
// answers of cancel, retry, pause and resume. The only fields allowed to differ are the ages
// measured against the database's clock at each read (heartbeat_age_ms, oldest_available_age_ms):
// the API reads later, so its age is taskctl's grown by no more than the time between the reads.
#include <signal.h>

#include <boost/json/serialize.hpp>
#include <chrono>
#include <optional>

#include "apid_fixture.hpp"

namespace taskq::systest {
namespace {

namespace bj = boost::json;
using Clock = std::chrono::steady_clock;

// The same object (or array of objects) read through taskctl and then through the API, and how
// long both reads took, in whole milliseconds rounded up.
struct Both {
  bj::value ctl;
  bj::value api;
  std::int64_t window_ms = 0;
};

// `taskctl -o json ARGS` (expected to exit `exit_code`), then GET `target`; `member`: the API
// answer's member to compare (its envelope), or the whole answer when empty.
Both read_both(const TestSchema& db, const Apid& api, std::vector<std::string> args, const std::string& target,
               const std::string& member = "", int exit_code = 0) {
  args.insert(args.begin(), {"-o", "json"});
  const auto start = Clock::now();
  const auto r = taskctl(db, args);
  const auto http = api.get(target);
  const auto took = Clock::now() - start;
  REQUIRE_EXIT(r, exit_code);
  REQUIRE_STATUS(http, 200);
  auto answer = json(http.body);
  Both b{json(r.out), member.empty() ? answer : answer.as_object().at(member),
         std::chrono::ceil<std::chrono::milliseconds>(took).count()};
  return b;
}

// Takes `key` out of both objects after checking that the API's value, read later, is taskctl's
// or grew by at most `window_ms` (both null also passes).
void take_age(bj::object& ctl, bj::object& api, const std::string& key, std::int64_t window_ms) {
  INFO(key << ": taskctl " << bj::serialize(ctl) << "\napi " << bj::serialize(api));
  REQUIRE(ctl.contains(key));
  REQUIRE(api.contains(key));
  if (ctl.at(key).is_null() || api.at(key).is_null()) {
    CHECK(ctl.at(key).is_null());
    CHECK(api.at(key).is_null());
  } else {
    const auto grew = api.at(key).to_number<std::int64_t>() - ctl.at(key).to_number<std::int64_t>();
    CHECK(grew >= 0);
    CHECK(grew <= window_ms + 1);  // + 1: each side truncates to whole milliseconds
  }
  ctl.erase(key);
  api.erase(key);
}

// The two arrays hold `n` objects that are equal once `age_key` (if any) is taken out.
void check_same_list(Both b, std::size_t n, const std::string& age_key = "") {
  INFO("taskctl: " << bj::serialize(b.ctl) << "\napi:     " << bj::serialize(b.api));
  REQUIRE(b.ctl.is_array());
  REQUIRE(b.api.is_array());
  REQUIRE(b.ctl.as_array().size() == n);
  REQUIRE(b.api.as_array().size() == n);
  if (!age_key.empty())
    for (std::size_t i = 0; i < n; ++i)
      take_age(b.ctl.as_array()[i].as_object(), b.api.as_array()[i].as_object(), age_key, b.window_ms);
  CHECK(b.ctl == b.api);
}

void check_same(const Both& b) {
  INFO("taskctl: " << bj::serialize(b.ctl) << "\napi:     " << bj::serialize(b.api));
  REQUIRE(b.ctl.is_object());
  CHECK(b.ctl == b.api);
}

// A change of one of two twin objects (jobs or queues in the same state) through taskctl and of
// the other through the API: the same object but for `key`, which names each twin.
void check_twin_change(const TestSchema& db, const Apid& api, const std::vector<std::string>& args,
                       const std::string& target, const std::string& key, const bj::value& ctl_twin,
                       const bj::value& api_twin) {
  std::vector<std::string> all{"-o", "json"};
  all.insert(all.end(), args.begin(), args.end());
  const auto r = taskctl(db, all);
  REQUIRE_EXIT(r, 0);
  const auto http = api.post(target, "", admin);
  REQUIRE_STATUS(http, 200);
  const auto printed = json(r.out);
  REQUIRE(printed.as_array().size() == 1);
  auto ctl = printed.as_array()[0].as_object();
  auto answer = json(http.body).as_object();
  INFO("taskctl: " << bj::serialize(ctl) << "\napi:     " << bj::serialize(answer));
  CHECK(ctl.at(key) == ctl_twin);
  CHECK(answer.at(key) == api_twin);
  ctl.erase(key);
  answer.erase(key);
  CHECK(ctl == answer);
}

std::string id_text(long long id) {
  return std::to_string(id);
}

// Jobs in every state, with every optional field of a job set on some of them.
struct Jobs {
  long long scheduled, available, running, failed, completed, cancelled;
};

Jobs make_jobs(const TestSchema& db) {
  Jobs j{};
  // Text that taskctl escapes for terminals (DEL, a C1 control) and the API does not: the same
  // value once parsed.
  const std::string args = "{\"scope\": \"all\", \"note\": \"caf\u00e9 \x7f \u0085 \u2713\"}";
  j.scheduled =
      enqueue(db, {"report.build", args, "--queue=mail", "--priority=1", "--in=1h", "--max-attempts=3", "--timeout=90s",
                   "--unique-key=report:all", "--tag=nightly", "--tag=b", "--meta=team=ops", "--meta=ticket=42"});
  j.available = enqueue(db, {"email.send", R"({"to": "ada@example.com"})", "--queue", "mail"});
  j.running = enqueue(db, {"email.send", "{}", "--queue", "mail"});
  make_running(db, j.running);
  db.exec(R"(UPDATE jobs SET progress = '{"percent": 50, "message": "halfway"}', )"
          "cancel_requested_at = now() WHERE id = " +
          id_text(j.running));
  j.failed = enqueue(db, {"thumb", R"({"sizes": [1, 2.5, null, true]})"});
  make_finished(db, j.failed, "failed", "now() - interval '10 minutes'");
  db.exec(R"(UPDATE jobs SET errors = '[{"at": "2025-03-01T12:00:00Z", "attempt": 1, "error": "boom"}]' )"
          "WHERE id = " +
          id_text(j.failed));
  j.completed = enqueue(db, {"thumb", "{}"});
  make_finished(db, j.completed, "completed");
  db.exec(R"(UPDATE jobs SET result = '{"width": 640, "ok": true}' WHERE id = )" + id_text(j.completed));
  j.cancelled = enqueue(db, {"thumb", "{}", "--queue", "images"});
  make_finished(db, j.cancelled, "cancelled");
  return j;
}

}  // namespace

TEST_CASE("parity: a job, pages of jobs and queue stats are the same in taskctl -o json and the API",
          "[parity][apid][cli]") {
  TestSchema db;
  const Jobs j = make_jobs(db);
  REQUIRE_EXIT(taskctl(db, {"pause", "images"}), 0);
  Apid api(db);

  for (const long long id : {j.scheduled, j.available, j.running, j.failed, j.completed, j.cancelled}) {
    INFO("job " << id);
    check_same(read_both(db, api, {"show", id_text(id)}, "/v1/jobs/" + id_text(id)));
  }

  // Every job; then a filtered page and the page after it.
  check_same_list(read_both(db, api, {"list", "--limit", "1000"}, "/v1/jobs?limit=1000", "jobs"), 6);
  const auto first =
      read_both(db, api, {"list", "--queue", "mail", "--state", "scheduled,available,running", "--limit", "2"},
                "/v1/jobs?queue=mail&state=scheduled,available,running&limit=2", "jobs");
  check_same_list(first, 2);
  const auto after = id_text(first.ctl.as_array().back().at("id").to_number<long long>());
  check_same_list(
      read_both(db, api, {"list", "--queue", "mail", "--after", after}, "/v1/jobs?queue=mail&after=" + after, "jobs"),
      1);
  check_same_list(read_both(db, api, {"list", "--tag", "nightly", "--kind", "report.build"},
                            "/v1/jobs?tag=nightly&kind=report.build", "jobs"),
                  1);

  // Queue stats, by name: "default" has only finished jobs (null age), "images" is paused, "mail"
  // has an available job (its age grows between the reads).
  check_same_list(read_both(db, api, {"stats"}, "/v1/queues", "queues"), 3, "oldest_available_age_ms");
  check_same_list(read_both(db, api, {"stats"}, "/v1/stats", "queues"), 3, "oldest_available_age_ms");
  const auto stats = read_both(db, api, {"stats"}, "/v1/queues", "queues");
  CHECK(stats.api.as_array()[0].at("oldest_available_age_ms").is_null());
  CHECK(stats.api.as_array()[1].at("paused").as_bool());
  CHECK(stats.api.as_array()[2].at("oldest_available_age_ms").is_number());
}

TEST_CASE("parity: workers, live and dead with their running jobs, are the same in taskctl -o json and the API",
          "[parity][apid][cli]") {
  TestSchema db;
  const auto store = db.open();
  const auto live = store->register_worker({"web-1", 4242, {"default", "mail"}, 10, "1.2.3"});
  const auto dead = store->register_worker({"web-2", 4343, {"mail"}, 2, ""});
  // Older than the grace of both sides: 30s, taskctl's default and scheduler.worker_grace's.
  db.exec("UPDATE workers SET heartbeat_at = now() - interval '5 minutes' WHERE id = " + id_text(dead));
  for (const auto& kind : {"email.send", "email.send", "thumb"}) {
    const auto id = enqueue(db, {kind});
    make_running(db, id);
    db.exec("UPDATE jobs SET worker_id = " + id_text(live) + " WHERE id = " + id_text(id));
  }
  Apid api(db);

  const auto both = read_both(db, api, {"workers"}, "/v1/workers", "workers");
  // The fields the API once lacked, with the values the fixture makes (taskctl's are compared below).
  const auto& w = both.api.as_array();
  REQUIRE(w.size() == 2);
  CHECK(w[0].at("id").to_number<long long>() == live);
  CHECK(w[0].at("status").as_string() == "live");
  CHECK(w[0].at("running_by_kind") == bj::value(bj::object{{"email.send", 2}, {"thumb", 1}}));
  CHECK(w[1].at("status").as_string() == "dead");
  CHECK(w[1].at("running_by_kind").as_object().empty());
  check_same_list(both, 2, "heartbeat_age_ms");
}

TEST_CASE("parity: GET /v1/workers calls a worker dead after apid's scheduler.worker_grace", "[parity][apid][cli]") {
  TestSchema db;
  const auto id = db.open()->register_worker({"web-1", 4242, {"default"}, 1, ""});
  db.exec("UPDATE workers SET heartbeat_at = now() - interval '5 minutes' WHERE id = " + id_text(id));
  Apid api(db, "[scheduler]\nworker_grace = \"1h\"\n");
  const auto both = read_both(db, api, {"workers", "--grace", "1h"}, "/v1/workers", "workers");
  CHECK(both.api.as_array().at(0).at("status").as_string() == "live");  // dead under the default 30s
  check_same_list(both, 1, "heartbeat_age_ms");
}

TEST_CASE("parity: the scheduler's lease and the periodic schedules are the same in taskctl -o json and the API",
          "[parity][apid][cli][schedulerd]") {
  TestSchema db;
  Apid api(db);
  // No scheduler ever ran: every field null, not leading (taskctl exits 3).
  const auto none = read_both(db, api, {"leader"}, "/v1/scheduler", "", 3);
  check_same(none);
  CHECK(none.api.at("holder").is_null());
  CHECK_FALSE(none.api.at("leading").as_bool());
  check_same_list(read_both(db, api, {"cron", "list"}, "/v1/periodic", "periodic"), 0);

  // A lease of 10 minutes is renewed every 200 s: it stays as it is while the test reads it.
  TempFile config("[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() +
                      "\"\n[scheduler]\nlease_ttl = \"10m\"\n"
                      "[[scheduler.periodic]]\nname = \"tick\"\ncron = \"* * * * * *\"\nkind = \"noop\"\n"
                      "queue = \"ticks\"\n"
                      "[[scheduler.periodic]]\nname = \"nightly\"\ncron = \"30 2 * * *\"\n"
                      "timezone = \"Europe/Berlin\"\nkind = \"report\"\n",
                  ".toml");
  DaemonProcess scheduler(SCHEDULERD_PATH, {"--config", config.path()}, clean_env());
  const bool ticked =
      taskq::test::wait_until([&] { return count_jobs(db, "metadata->>'periodic' = 'tick'") >= 1; }, 10s);
  INFO(scheduler.log());
  REQUIRE(ticked);
  REQUIRE_EXIT(taskctl(db, {"cron", "pause", "nightly"}), 0);

  const auto leading = read_both(db, api, {"leader"}, "/v1/scheduler");
  check_same(leading);
  CHECK(leading.api.at("leading").as_bool());
  CHECK(leading.api.at("pid").to_number<int>() == scheduler.pid());

  // Stopped: it resigns (holder null) and the schedules' fire times stop moving.
  scheduler.signal(SIGTERM);
  REQUIRE(scheduler.wait_exit(10s) == 0);
  const auto resigned = read_both(db, api, {"leader"}, "/v1/scheduler", "", 3);
  check_same(resigned);
  CHECK(resigned.api.at("holder").is_null());
  CHECK(resigned.api.at("term") == leading.api.at("term"));

  const auto schedules = read_both(db, api, {"cron", "list"}, "/v1/periodic", "periodic");
  const auto& p = schedules.api.as_array();
  REQUIRE(p.size() == 2);
  CHECK(p[0].at("name").as_string() == "nightly");
  CHECK(p[0].at("paused_at").is_string());
  CHECK(p[0].at("timezone").as_string() == "Europe/Berlin");
  CHECK(p[1].at("last_fire_at").is_string());
  check_same_list(schedules, 2);
}

TEST_CASE("parity: the answers of cancel, retry, pause and resume are the same in taskctl -o json and the API",
          "[parity][apid][cli]") {
  TestSchema db;
  // Twins: one changed through taskctl, the other through the API.
  const auto available = std::make_pair(enqueue(db, {"k", "--queue", "q"}), enqueue(db, {"k", "--queue", "q"}));
  const auto running = std::make_pair(enqueue(db, {"k", "--queue", "q"}), enqueue(db, {"k", "--queue", "q"}));
  make_running(db, running.first);
  make_running(db, running.second);
  const auto failed = std::make_pair(enqueue(db, {"k", "--queue", "q"}), enqueue(db, {"k", "--queue", "q"}));
  make_finished(db, failed.first, "failed");
  make_finished(db, failed.second, "failed");
  Apid api(db);

  auto twin_jobs = [&](const char* verb, std::pair<long long, long long> ids) {
    INFO(verb << " " << ids.first << " and " << ids.second);
    check_twin_change(db, api, {verb, id_text(ids.first)}, "/v1/jobs/" + id_text(ids.second) + "/" + verb, "id",
                      bj::value(ids.first), bj::value(ids.second));
  };
  twin_jobs("cancel", available);  // available -> cancelled
  twin_jobs("cancel", running);    // running, cancel requested
  twin_jobs("retry", failed);      // failed -> available
  twin_jobs("retry", available);   // cancelled -> available

  for (const char* verb : {"pause", "pause", "resume", "resume"}) {  // changed, then already so
    INFO(verb);
    check_twin_change(db, api, {verb, "twin-a"}, std::string("/v1/queues/twin-b/") + verb, "queue", bj::value("twin-a"),
                      bj::value("twin-b"));
  }
}

}  // namespace taskq::systest
