// taskq-schedulerd, the real binary, against a real PostgreSQL: config checks, failover between
// three schedulers with a per-second schedule (kill -9 and SIGTERM), rescue of a killed worker's
// jobs, stuck jobs, pruning by retention, and taskctl leader / cron.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <set>

#include "daemon_process.hpp"
#include "system_helpers.hpp"

namespace taskq::systest {
namespace {

using namespace std::chrono_literals;
using taskq::test::DaemonProcess;
using taskq::test::wait_until;

std::string database_section(const TestSchema& db) {
  return "[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() + "\"\n[log]\nlevel = \"debug\"\n";
}

// A running schedulerd on the test's schema; `scheduler` is the body of [scheduler] plus any
// [[scheduler.periodic]] tables.
class Schedulerd {
 public:
  Schedulerd(const TestSchema& db, const std::string& scheduler)
      : config_(database_section(db) + "[scheduler]\n" + scheduler, ".toml"),
        proc_(SCHEDULERD_PATH, {"--config", config_.path()}, clean_env()) {
    INFO(proc_.log());
    REQUIRE(proc_.wait_log("started as", 10s));
  }
  DaemonProcess& proc() { return proc_; }

 private:
  TempFile config_;
  DaemonProcess proc_;
};

RunResult check_config(const std::string& text) {
  TempFile file(text, ".toml");
  return taskq::test::run_program(SCHEDULERD_PATH, {"--config", file.path(), "--check-config"}, "", clean_env());
}

std::string leader_pid(const TestSchema& db) {
  return db.scalar(
      "SELECT CASE WHEN holder <> '' AND expires_at > now() THEN pid::text ELSE '' END "
      "FROM leases WHERE name = 'scheduler'");
}

long long term_of(const TestSchema& db) {
  const auto t = db.scalar("SELECT term FROM leases WHERE name = 'scheduler'");
  return t.empty() ? 0 : std::stoll(t);
}

// Seconds between the last periodic job created before `instant` and the first one after it.
double gap_around(const TestSchema& db, const std::string& instant) {
  return std::stod(db.scalar("SELECT extract(epoch FROM (SELECT min(created_at) FROM jobs WHERE created_at > '" +
                             instant + "') - (SELECT max(created_at) FROM jobs WHERE created_at <= '" + instant +
                             "'))"));
}

const std::string every_second =
    "[[scheduler.periodic]]\nname = \"tick\"\ncron = \"* * * * * *\"\nkind = \"noop\"\nqueue = \"ticks\"\n";

}  // namespace

TEST_CASE("schedulerd --check-config accepts a valid file and names what is wrong in a bad one", "[schedulerd]") {
  const std::string base = "[scheduler]\nlease_ttl = \"10s\"\n";
  const auto ok = check_config(base + every_second);
  REQUIRE_EXIT(ok, 0);
  CHECK(contains(ok.out, "1 periodic schedule(s) (tick)"));

  const struct {
    std::string text, expect;
  } bad[] = {
      {"[[scheduler.periodic]]\nname = \"r\"\ncron = \"0 3 * * MON-XYZ\"\nkind = \"k\"\n", "scheduler.periodic 'r'"},
      {"[[scheduler.periodic]]\nname = \"z\"\ncron = \"@daily\"\ntimezone = \"Europe/Atlantis\"\nkind = \"k\"\n",
       "Europe/Atlantis"},
      {every_second + every_second, "duplicate schedule name"},
      {"[scheduler]\nrescue_interval = \"often\"\n", "scheduler.rescue_interval"},
      {"[scheduler]\nretention = { failed = \"-1d\" }\n", "scheduler.retention.failed"},
  };
  for (const auto& b : bad) {
    const auto r = check_config(b.text);
    INFO(b.text);
    CHECK_EXIT(r, 78);
    CHECK(contains(r.err, b.expect));
    CHECK(r.out.empty());
  }
}

TEST_CASE("schedulerd refuses an unmigrated schema and an unreachable database with exit 69", "[schedulerd]") {
  TestSchema db(false);
  TempFile file(database_section(db), ".toml");
  const auto r = taskq::test::run_program(SCHEDULERD_PATH, {"--config", file.path()}, "", clean_env());
  CHECK_EXIT(r, 69);
  CHECK(contains(r.err, "taskctl migrate"));

  TempFile down("[database]\nurl = \"postgresql://127.0.0.1:1/none\"\nconnect_timeout = \"1s\"\n", ".toml");
  const auto u = taskq::test::run_program(SCHEDULERD_PATH, {"--config", down.path()}, "", clean_env());
  CHECK_EXIT(u, 69);
}

TEST_CASE("three schedulers: each tick enqueued once through kill -9 and SIGTERM of the leader", "[schedulerd]") {
  TestSchema db;
  const std::string scheduler = "lease_ttl = \"2s\"\n" + every_second;
  std::vector<std::unique_ptr<Schedulerd>> s;
  for (int i = 0; i < 3; ++i) s.push_back(std::make_unique<Schedulerd>(db, scheduler));
  auto by_pid = [&](const std::string& pid) -> Schedulerd* {
    for (auto& d : s)
      if (std::to_string(d->proc().pid()) == pid) return d.get();
    return nullptr;
  };
  auto logs = [&] {
    std::string all;
    for (auto& d : s) all += "--- schedulerd " + std::to_string(d->proc().pid()) + " ---\n" + d->proc().log();
    return all;
  };
  INFO(logs());
  REQUIRE(wait_until([&] { return count_jobs(db) >= 3; }, 10s));
  const std::string first_pid = leader_pid(db);
  Schedulerd* first = by_pid(first_pid);
  REQUIRE(first != nullptr);
  const long long first_term = term_of(db);

  // kill -9: a standby takes over once the lease expires (2s), and fires the ticks missed
  // meanwhile, late but once.
  const std::string killed_at = db.scalar("SELECT clock_timestamp()");
  first->proc().signal(SIGKILL);
  REQUIRE(first->proc().wait_exit(5s) == 128 + SIGKILL);
  REQUIRE(wait_until([&] { return term_of(db) > first_term && !leader_pid(db).empty(); }, 10s));
  Schedulerd* second = by_pid(leader_pid(db));
  REQUIRE(second != nullptr);
  REQUIRE(second != first);
  REQUIRE(wait_until([&] { return count_jobs(db, "created_at > '" + killed_at + "'") >= 3; }, 10s));

  // SIGTERM: the leader resigns and notifies; the last standby takes over at once.
  const long long second_term = term_of(db);
  const std::string stopped_at = db.scalar("SELECT clock_timestamp()");
  second->proc().signal(SIGTERM);
  REQUIRE(second->proc().wait_exit(10s) == 0);
  CHECK(contains(second->proc().log(), "resigned the lease"));
  REQUIRE(wait_until([&] { return term_of(db) > second_term && !leader_pid(db).empty(); }, 10s));
  Schedulerd* third = by_pid(leader_pid(db));
  REQUIRE(third != nullptr);
  REQUIRE(wait_until([&] { return count_jobs(db, "created_at > '" + stopped_at + "'") >= 3; }, 10s));
  third->proc().signal(SIGTERM);
  REQUIRE(third->proc().wait_exit(10s) == 0);

  INFO(
      db.scalar("SELECT string_agg(id || ' ' || (metadata->>'tick') || ' ' || created_at, E'\\n' ORDER BY id) "
                "FROM jobs"));
  // No tick twice, none lost: one job per second from the first tick to the last.
  CHECK(db.scalar("SELECT count(*) = count(DISTINCT metadata->>'tick') FROM jobs") == "t");
  CHECK(db.scalar("SELECT count(*) = 1 + extract(epoch FROM max((metadata->>'tick')::timestamptz) - "
                  "min((metadata->>'tick')::timestamptz)) FROM jobs") == "t");
  CHECK(db.scalar("SELECT count(*) FROM jobs WHERE unique_key <> 'periodic:tick:' || (metadata->>'tick') "
                  "OR metadata->>'periodic' <> 'tick' OR queue <> 'ticks'") == "0");
  // The gaps: at most TTL + 1s after kill -9, at most 2s after SIGTERM.
  const double kill_gap = gap_around(db, killed_at);
  const double term_gap = gap_around(db, stopped_at);
  INFO("gap after kill -9: " << kill_gap << " s, after SIGTERM: " << term_gap << " s");
  CHECK(kill_gap <= 3.0);
  CHECK(term_gap <= 2.0);
}

TEST_CASE("the leader rescues the jobs of a worker killed with -9", "[schedulerd]") {
  TestSchema db;
  TempFile worker_config(database_section(db) +
                             "[worker]\nqueues = { default = 4 }\nheartbeat_interval = \"200ms\"\n"
                             "poll_interval = \"100ms\"\n",
                         ".toml");
  const long long id = enqueue(db, {"sleep", R"({"ms": 60000})", "--max-attempts", "3"});
  {
    DaemonProcess worker(WORKERD_PATH, {"--config", worker_config.path()}, clean_env());
    INFO(worker.log());
    REQUIRE(wait_until([&] { return job_field(db, id, "state") == "running"; }, 10s));
    worker.signal(SIGKILL);
    REQUIRE(worker.wait_exit(5s) == 128 + SIGKILL);
  }
  Schedulerd s(db, "worker_grace = \"1s\"\nrescue_interval = \"200ms\"\n");
  INFO(s.proc().log());
  // Rescued (a failed attempt, "worker lost"), then promoted after its 1s backoff by the leader.
  REQUIRE(wait_until([&] { return job_field(db, id, "state") == "available"; }, 15s));
  CHECK(job_field(db, id, "attempt") == "1");
  CHECK(contains(job_field(db, id, "errors"), "worker lost"));
  // The line names the job's trace.
  CHECK(s.proc().wait_log("rescued job " + std::to_string(id) + " (queue default, kind sleep, trace_id=" +
                              job_field(db, id, "substr(traceparent, 4, 32)") + ")",
                          5s));
}

TEST_CASE("the leader fails a job stuck far past its timeout on a live worker", "[schedulerd]") {
  TestSchema db;
  const long long id = enqueue(db, {"sleep", R"({"ms": 1})", "--timeout", "1s", "--max-attempts", "1"});
  // A live worker (fresh heartbeat) whose job started an hour ago with a 1s timeout.
  const auto worker = db.scalar("INSERT INTO workers (host, pid) VALUES ('h', 1) RETURNING id");
  db.exec("UPDATE jobs SET state = 'running', attempt = 1, attempted_at = now() - interval '1 hour', worker_id = " +
          worker + " WHERE id = " + std::to_string(id));
  Schedulerd s(db, "worker_grace = \"1h\"\nrescue_interval = \"200ms\"\nstuck_grace = \"1s\"\n");
  INFO(s.proc().log());
  REQUIRE(wait_until([&] { return job_field(db, id, "state") == "failed"; }, 10s));
  CHECK(contains(job_field(db, id, "errors"), "stuck"));
  CHECK(s.proc().wait_log("job " + std::to_string(id) + " (queue default, kind sleep, trace_id=" +
                              job_field(db, id, "substr(traceparent, 4, 32)") + ") is stuck",
                          5s));
}

TEST_CASE("the leader prunes finished jobs by retention in bounded batches", "[schedulerd]") {
  TestSchema db;
  // 25,000 completed two days ago (three batches of 10,000), and one of each state on each side
  // of its retention.
  db.exec(
      "INSERT INTO jobs (kind, state, attempt, attempted_at, finished_at) SELECT 'old', 'completed', 1, "
      "now() - interval '2 days', now() - interval '2 days' FROM generate_series(1, 25000)");
  db.exec(
      "INSERT INTO jobs (kind, state, attempt, attempted_at, finished_at) VALUES "
      "('keep', 'completed', 1, now(), now() - interval '10 minutes'), "
      "('drop', 'cancelled', 1, now(), now() - interval '2 days'), "
      "('keep', 'cancelled', 1, now(), now() - interval '10 hours'), "
      "('drop', 'failed', 1, now(), now() - interval '4 days'), "
      "('keep', 'failed', 1, now(), now() - interval '2 days'), "
      "('keep', 'available', 0, NULL, NULL)");
  Schedulerd s(db,
               "prune_interval = \"1s\"\nretention = { completed = \"1h\", cancelled = \"1d\", failed = \"3d\" }\n");
  INFO(s.proc().log());
  REQUIRE(wait_until([&] { return count_jobs(db, "kind <> 'keep'") == 0; }, 20s));
  CHECK(count_jobs(db, "kind = 'keep'") == 4);
  CHECK(s.proc().wait_log("pruned 25002 finished job(s)", 5s));
}

TEST_CASE("taskctl leader and cron list, pause, resume and trigger", "[schedulerd]") {
  TestSchema db;
  {
    const auto none = taskctl(db, {"leader"});
    CHECK_EXIT(none, 3);
    CHECK(contains(none.out, "no leader"));
  }
  Schedulerd s(db, "lease_ttl = \"5s\"\n" + every_second +
                       "[[scheduler.periodic]]\nname = \"nightly\"\ncron = \"30 2 * * *\"\n"
                       "timezone = \"Europe/Berlin\"\nkind = \"report\"\nargs = { scope = \"all\" }\n"
                       "priority = 1\ntags = [\"nightly\"]\n");
  INFO(s.proc().log());
  REQUIRE(wait_until([&] { return !leader_pid(db).empty(); }, 10s));

  const auto leader = taskctl(db, {"-o", "json", "leader"});
  REQUIRE_EXIT(leader, 0);
  const auto l = json(leader.out).as_object();
  CHECK(l.at("pid").to_number<long long>() == s.proc().pid());
  CHECK(l.at("term").to_number<long long>() >= 1);
  CHECK(contains(std::string(l.at("holder").as_string()), ":" + std::to_string(s.proc().pid()) + ":"));
  CHECK_FALSE(l.at("host").as_string().empty());
  CHECK(l.at("expires_at").is_string());

  REQUIRE(wait_until([&] { return count_jobs(db, "metadata->>'periodic' = 'tick'") >= 1; }, 10s));
  const auto list = taskctl(db, {"-o", "json", "cron", "list"});
  REQUIRE_EXIT(list, 0);
  const auto rows = json(list.out).as_array();
  REQUIRE(rows.size() == 2);
  const auto& nightly = rows[0].as_object();
  CHECK(nightly.at("name").as_string() == "nightly");
  CHECK(nightly.at("timezone").as_string() == "Europe/Berlin");
  CHECK(nightly.at("last_fire_at").is_null());
  // 02:30 in Berlin is 01:30 UTC in winter.
  CHECK(contains(std::string(nightly.at("next_fire_at").as_string()), "T01:30:00Z"));
  CHECK(rows[1].as_object().at("last_fire_at").is_string());

  // Pause: ticks are passed over until resumed.
  REQUIRE_EXIT(taskctl(db, {"cron", "pause", "tick"}), 0);
  CHECK(taskctl(db, {"cron", "pause", "tick"}).out == "schedule tick: already paused\n");
  REQUIRE(s.proc().wait_log("periodic tick: paused; tick", 5s));
  const auto during = count_jobs(db, "metadata->>'periodic' = 'tick'");
  const auto log_size = s.proc().log().size();
  REQUIRE(wait_until([&] { return s.proc().log().find("paused; tick", log_size) != std::string::npos; }, 5s));
  CHECK(count_jobs(db, "metadata->>'periodic' = 'tick'") == during);
  CHECK(contains(taskctl(db, {"cron", "list"}).out, "paused"));
  REQUIRE_EXIT(taskctl(db, {"cron", "resume", "tick"}), 0);
  REQUIRE(wait_until([&] { return count_jobs(db, "metadata->>'periodic' = 'tick'") > during; }, 5s));

  // Trigger: one job now, from the recorded template.
  const auto trig = taskctl(db, {"cron", "trigger", "nightly"});
  REQUIRE_EXIT(trig, 0);
  const long long id = parse_id(trig);
  CHECK(job_field(db, id, "kind") == "report");
  CHECK(job_field(db, id, "args") == R"({"scope": "all"})");
  CHECK(job_field(db, id, "priority") == "1");
  CHECK(job_field(db, id, "tags") == "{nightly}");
  CHECK(job_field(db, id, "metadata->>'trigger'") == "manual");
  CHECK(db.scalar("SELECT last_fire_at IS NULL FROM periodic WHERE name = 'nightly'") == "t");

  const auto unknown = taskctl(db, {"cron", "trigger", "weekly"});
  CHECK_EXIT(unknown, 3);
  CHECK(contains(unknown.err, "'weekly'"));
}

TEST_CASE("schedulerd: PostgreSQL stopped and started again: it stops acting, then leads again",
          "[schedulerd][outage]") {
  OwnCluster cluster;
  const std::string& url = cluster.url();
  TempFile config(
      "[database]\nurl = \"" + url + "\"\nconnect_timeout = \"1s\"\n[scheduler]\nlease_ttl = \"2s\"\n" + every_second,
      ".toml");
  DaemonProcess s(SCHEDULERD_PATH, {"--config", config.path()}, clean_env());
  auto ticks = [&]() -> long long {
    const auto r = taskctl_raw({"--database-url", url, "-o", "json", "stats", "--queue", "ticks"});
    if (r.exit_code != 0) return -1;
    long long total = 0;
    const auto stats = json(r.out);
    for (const auto& q : stats.as_array())
      for (const char* state : {"available", "completed", "scheduled"})
        total += q.as_object().at(state).to_number<long long>();
    return total;
  };
  INFO(s.log());
  REQUIRE(wait_until([&] { return ticks() >= 2; }, 10s));
  REQUIRE_EXIT(cluster.stop(), 0);
  // Renewals fail: it stops acting before its lease can expire.
  REQUIRE(s.wait_log("stopped leading (term 1)", 10s));
  REQUIRE_EXIT(cluster.start(), 0);
  REQUIRE(s.wait_log("leading (term 2)", 20s));
  const long long after = ticks();
  REQUIRE(wait_until([&] { return ticks() >= after + 2; }, 10s));
  CHECK(s.running());
  CHECK(contains(s.log(), "unreachable"));
  CHECK(contains(s.log(), "connected to PostgreSQL again"));
  // Each tick once.
  const auto dup = taskctl_raw({"--database-url", url, "-o", "jsonl", "list", "--queue", "ticks", "--limit", "10000"});
  REQUIRE_EXIT(dup, 0);
  std::set<std::string> seen;
  long long rows = 0;
  for (const auto& line : lines_of(dup.out)) {
    if (trim(line).empty()) continue;
    ++rows;
    seen.insert(std::string(json(line).as_object().at("metadata").as_object().at("tick").as_string()));
  }
  CHECK(rows == static_cast<long long>(seen.size()));
  s.signal(SIGTERM);
  CHECK(s.wait_exit(10s) == 0);
}

TEST_CASE("schedulerd: SIGHUP reloads the schedules, and a bad file changes nothing", "[schedulerd]") {
  TestSchema db;
  TempFile config(database_section(db) + "[scheduler]\n" + every_second, ".toml");
  DaemonProcess s(SCHEDULERD_PATH, {"--config", config.path()}, clean_env());
  INFO(s.log());
  REQUIRE(wait_until([&] { return count_jobs(db, "metadata->>'periodic' = 'tick'") >= 1; }, 10s));

  std::ofstream(config.path(), std::ios::trunc)
      << database_section(db)
      << "[scheduler]\n[[scheduler.periodic]]\nname = \"tock\"\ncron = \"*/2 * * * * *\"\nkind = \"noop\"\n";
  s.signal(SIGHUP);
  REQUIRE(s.wait_log("reloaded", 5s));
  REQUIRE(wait_until([&] { return count_jobs(db, "metadata->>'periodic' = 'tock'") >= 1; }, 10s));
  CHECK(db.scalar("SELECT string_agg(name, ',') FROM periodic") == "tock");
  const auto ticks_after = count_jobs(db, "metadata->>'periodic' = 'tick'");

  std::ofstream(config.path(), std::ios::trunc) << database_section(db)
                                                << "[scheduler]\n[[scheduler.periodic]]\nname = \"bad\"\ncron "
                                                   "= \"61 * * * *\"\nkind = \"noop\"\n";
  s.signal(SIGHUP);
  REQUIRE(s.wait_log("reload refused", 5s));
  const auto tocks = count_jobs(db, "metadata->>'periodic' = 'tock'");
  REQUIRE(wait_until([&] { return count_jobs(db, "metadata->>'periodic' = 'tock'") > tocks; }, 10s));
  CHECK(count_jobs(db, "metadata->>'periodic' = 'tick'") == ticks_after);
  CHECK(db.scalar("SELECT count(*) = count(DISTINCT unique_key) FROM jobs") == "t");
  s.signal(SIGTERM);
  CHECK(s.wait_exit(10s) == 0);
}

}  // namespace taskq::systest
