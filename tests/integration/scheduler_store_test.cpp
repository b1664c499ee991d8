// What the scheduler leader does to the database, against a real PostgreSQL: every maintenance
// step is fenced by the lease term in its own transaction (an old leader changes nothing), the
// configured schedules are recorded with their job template, paused and triggered, and stuck
// jobs are failed. Also the Scheduler service in-process: a second one takes over on stop().
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>

#include "daemon_process.hpp"
#include "taskq/core/error.hpp"
#include "taskq/scheduler/scheduler.hpp"
#include "test_db.hpp"

using taskq::config::PeriodicConfig;

using taskq::store::FireResult;
using taskq::store::LeaseFence;
using taskq::store::PeriodicDef;
using taskq::store::PeriodicFire;
using taskq::store::Store;

using namespace taskq;
using namespace std::chrono_literals;
using taskq::test::TestSchema;
using taskq::test::wait_until;

namespace {

// "a" held the lease with term 1, then "b" took over with term 2.
struct TwoTerms {
  LeaseFence old_fence{"scheduler", "a", 1};
  LeaseFence fence{"scheduler", "b", 2};
};

TwoTerms take_over(Store& a, Store& b) {
  REQUIRE(a.acquire_lease("scheduler", "a", 50ms).has_value());
  REQUIRE(wait_until([&] { return !b.lease("scheduler")->valid; }, 5s));
  const auto taken = b.acquire_lease("scheduler", "b", 60s, "host-b", 42);
  REQUIRE(taken.has_value());
  REQUIRE(taken->term == 2);
  CHECK(taken->host == "host-b");
  CHECK(taken->pid == 42);
  return {};
}

PeriodicDef def(const std::string& name, const std::string& kind) {
  PeriodicDef d;
  d.name = name;
  d.schedule = "@hourly";
  d.job.kind = kind;
  d.job.queue = "q";
  d.job.priority = 2;
  d.job.max_attempts = 3;
  d.job.timeout = 90s;
  d.job.tags = {"t1", "t2"};
  d.job.args = R"({"x":1})";
  return d;
}

}  // namespace

TEST_CASE("maintenance steps of an old leader change nothing, those of the current leader do", "[scheduler][fence]") {
  TestSchema s;
  auto a = s.open();
  auto b = s.open();
  const auto t = take_over(*a, *b);
  s.exec("INSERT INTO jobs (kind, state, run_at) VALUES ('due', 'scheduled', now() - interval '1 minute')");
  s.exec(
      "INSERT INTO jobs (kind, state, attempt, attempted_at, finished_at) "
      "VALUES ('old', 'completed', 1, now() - interval '2 days', now() - interval '2 days')");
  s.exec("INSERT INTO jobs (kind, state, attempt, attempted_at, worker_id) VALUES ('lost', 'running', 1, now(), 999)");
  s.exec(
      "INSERT INTO jobs (kind, state, attempt, attempted_at, worker_id, timeout_ms) "
      "VALUES ('stuck', 'running', 1, now() - interval '1 hour', 998, 1000)");
  const auto before = s.scalar("SELECT string_agg(id || state, ',' ORDER BY id) FROM jobs");

  CHECK(a->promote_due({}, 100, &t.old_fence) == 0);
  CHECK(a->prune_batch(1h, {JobState::completed}, 100, false, &t.old_fence) == 0);
  CHECK(a->rescue(1s, 100, false, &t.old_fence).jobs.empty());
  CHECK(a->fail_stuck(1s, 100, &t.old_fence).empty());
  CHECK_FALSE(a->sync_periodic({def("p", "k")}, t.old_fence).has_value());
  CHECK(s.scalar("SELECT string_agg(id || state, ',' ORDER BY id) FROM jobs") == before);
  CHECK(s.scalar("SELECT count(*) FROM periodic") == "0");

  CHECK(b->promote_due({}, 100, &t.fence) == 1);
  CHECK(b->prune_batch(1h, {JobState::completed}, 100, false, &t.fence) == 1);
  // Neither job's worker is registered: rescue gives each a placeholder row first, then, once
  // those are older than the grace, takes both running jobs.
  const auto first = b->rescue(1s, 100, false, &t.fence);
  CHECK(first.jobs.empty());
  CHECK(first.vanished_workers == std::vector<std::int64_t>{998, 999});
  s.exec("UPDATE workers SET heartbeat_at = now() - interval '1 minute'");
  const auto rescued = b->rescue(1s, 100, false, &t.fence);
  CHECK(rescued.jobs.size() == 2);
  CHECK(s.scalar("SELECT count(*) FROM jobs WHERE state = 'running'") == "0");
}

TEST_CASE("stuck jobs: only those far past their timeout get a failed attempt", "[scheduler][stuck]") {
  TestSchema s;
  auto st = s.open();
  s.exec(
      "INSERT INTO jobs (kind, state, attempt, max_attempts, attempted_at, worker_id, timeout_ms) VALUES "
      "('late', 'running', 1, 5, now() - interval '10 minutes', 1, 60000), "
      "('last', 'running', 3, 3, now() - interval '10 minutes', 1, 60000), "
      "('ontime', 'running', 1, 5, now() - interval '30 seconds', 1, 60000), "
      "('notimeout', 'running', 1, 5, now() - interval '10 days', 1, NULL)");
  const auto changed = st->fail_stuck(5min, 100);
  REQUIRE(changed.size() == 2);
  CHECK(changed[0].kind == "late");
  CHECK(changed[0].to == JobState::scheduled);
  CHECK(changed[1].kind == "last");
  CHECK(changed[1].to == JobState::failed);
  CHECK(s.scalar("SELECT errors->0->>'message' FROM jobs WHERE kind = 'late'").find("stuck") != std::string::npos);
  CHECK(s.scalar("SELECT run_at > now() FROM jobs WHERE kind = 'late'") == "t");
  CHECK(s.scalar("SELECT count(*) FROM jobs WHERE state = 'running'") == "2");
}

TEST_CASE("schedules are recorded with their template, pruned when unconfigured, paused and triggered",
          "[scheduler][periodic]") {
  TestSchema s;
  auto a = s.open();
  auto b = s.open();
  const auto t = take_over(*a, *b);
  s.exec("INSERT INTO periodic (name, schedule, kind) VALUES ('gone', '@daily', 'k')");
  const auto rows = b->sync_periodic({def("p", "report")}, t.fence);
  REQUIRE(rows.has_value());
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0].name == "p");
  CHECK((*rows)[0].queue == "q");
  CHECK(s.scalar("SELECT priority || ' ' || max_attempts || ' ' || timeout_ms || ' ' || tags::text FROM periodic") ==
        "2 3 90000 {t1,t2}");

  // Trigger: one job from the template, fire times untouched.
  const auto job = b->trigger_periodic("p").job;
  CHECK(job.kind == "report");
  CHECK(job.priority == 2);
  CHECK(job.max_attempts == 3);
  CHECK(job.timeout == 90s);
  CHECK(job.tags == std::vector<std::string>{"t1", "t2"});
  CHECK(s.scalar("SELECT metadata->>'trigger' FROM jobs WHERE id = " + std::to_string(job.id)) == "manual");
  CHECK(s.scalar("SELECT last_fire_at IS NULL FROM periodic") == "t");

  // Paused: the fire is refused in its own transaction and records nothing.
  CHECK(b->set_periodic_paused("p", true));
  CHECK_FALSE(b->set_periodic_paused("p", true));
  PeriodicFire f{"p", "@hourly", "UTC", parse_rfc3339("2026-11-28T10:00:00Z"), std::nullopt, def("p", "report").job};
  CHECK(b->fire_periodic(f, t.fence).outcome == FireResult::Outcome::paused);
  CHECK(s.scalar("SELECT count(*) FROM jobs") == "1");
  CHECK(b->set_periodic_paused("p", false));
  CHECK(b->fire_periodic(f, t.fence).outcome == FireResult::Outcome::enqueued);
  CHECK(b->list_periodic().at(0).last_fire_at == f.tick);

  try {
    b->set_periodic_paused("nope", true);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::not_found);
  }
  CHECK_THROWS_AS(b->trigger_periodic("nope"), Error);
}

TEST_CASE("scheduler service: one leads, and on stop it resigns and the other takes over", "[scheduler][service]") {
  TestSchema s;
  auto options = [&](int pid) {
    scheduler::SchedulerOptions o;
    o.store = s.options();
    o.store.application_name = "taskq-schedulerd";
    o.config.lease_ttl = 30s;  // a take-over within the test's deadline can only come from resigning
    PeriodicConfig p;
    p.name = "tick";
    p.cron = "* * * * * *";
    p.job.kind = "noop";
    o.config.periodic.push_back(p);
    o.host = "test";
    o.pid = pid;
    return o;
  };
  auto first = std::make_unique<scheduler::Scheduler>(options(1));
  scheduler::Scheduler second(options(2));
  first->start();
  REQUIRE(wait_until([&] { return first->leading_term() == 1; }, 5s));
  second.start();
  REQUIRE(wait_until([&] { return s.scalar("SELECT count(*) FROM jobs") != "0"; }, 5s));
  CHECK(second.leading_term() == 0);
  CHECK(first->healthy(5s));
  first->stop();
  CHECK(first->leading_term() == 0);
  REQUIRE(wait_until([&] { return second.leading_term() == 2; }, 5s));
  const auto count = s.scalar("SELECT count(*) FROM jobs");
  REQUIRE(wait_until([&] { return s.scalar("SELECT count(*) FROM jobs") != count; }, 5s));
  CHECK(s.scalar("SELECT count(*) = count(DISTINCT unique_key) FROM jobs") == "t");
  CHECK(s.scalar("SELECT pid FROM leases") == "2");
}

namespace {

// The real wall clock shifted by an amount a test can change: a local clock stepped by NTP.
class ShiftedClock final : public Clock {
 public:
  [[nodiscard]] Timestamp now() const override { return SystemClock::instance().now() + Duration{shift.load()}; }
  [[nodiscard]] std::chrono::steady_clock::time_point steady_now() const override {
    return std::chrono::steady_clock::now();
  }
  std::atomic<std::int64_t> shift{0};  // microseconds
};

}  // namespace

TEST_CASE("scheduler service: a step of the local clock during a term is followed (ticks keep firing)",
          "[scheduler][service][clock]") {
  TestSchema s;
  ShiftedClock clock;
  scheduler::SchedulerOptions o;
  o.store = s.options();
  o.store.application_name = "taskq-schedulerd";
  o.config.lease_ttl = 900ms;  // renewed, and the database clock read again, every 300 ms
  PeriodicConfig p;
  p.name = "tick";
  p.cron = "* * * * * *";
  p.job.kind = "noop";
  o.config.periodic.push_back(p);
  o.host = "test";
  o.pid = 1;
  o.clock = &clock;
  scheduler::Scheduler sched(o);
  sched.start();
  REQUIRE(wait_until([&] { return s.scalar("SELECT count(*) FROM jobs") != "0"; }, 5s));
  // The local clock jumps an hour back. By the offset measured at the term's start, the
  // database's time would now seem an hour earlier and no tick would fire for an hour.
  clock.shift = std::chrono::duration_cast<Duration>(-1h).count();
  const auto seen = s.scalar("SELECT count(*) FROM jobs");
  REQUIRE(wait_until([&] { return std::stoi(s.scalar("SELECT count(*) FROM jobs")) >= std::stoi(seen) + 2; }, 5s));
  CHECK(sched.leading_term() == 1);
  // Each tick is enqueued for its own second, never ahead of the database's clock.
  CHECK(s.scalar("SELECT count(*) = count(DISTINCT unique_key) FROM jobs") == "t");
  CHECK(s.scalar("SELECT bool_and(created_at >= (metadata->>'tick')::timestamptz) FROM jobs") == "t");
  sched.stop();
}
