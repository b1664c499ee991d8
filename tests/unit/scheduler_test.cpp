// The scheduler's pure parts: the lease timer on a fake clock, which ticks to fire after a gap,
// and the checks of [scheduler] and [[scheduler.periodic]] that make taskq-schedulerd refuse to
// start (exit 78).
#include <catch2/catch.hpp>
#include <string>

#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"
#include "taskq/scheduler/scheduler.hpp"

using taskq::config::Config;
using taskq::config::parse_config;
using taskq::config::validate_config;

using namespace taskq;
using namespace std::chrono_literals;
using scheduler::LeaseTimer;
using scheduler::plan_ticks;

namespace {

Timestamp at(const char* rfc3339) {
  return parse_rfc3339(rfc3339);
}

std::string message_of(const std::string& toml) {
  try {
    scheduler::validate_config(parse_config(toml, "s.toml"));
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_input);
    return e.what();
  }
  FAIL("the config was accepted:\n" << toml);
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("lease timer: acting until a tenth of the ttl before expiry, renewing every third", "[scheduler][lease]") {
  const LeaseTimer::time_point t0{std::chrono::seconds{1000}};  // a fake steady clock
  LeaseTimer timer(15s);
  CHECK_FALSE(timer.acting(t0));
  timer.renewed(t0);
  CHECK(timer.acting(t0));
  CHECK(timer.next_renewal() == t0 + 5s);
  CHECK(timer.acting(t0 + 13s));
  CHECK_FALSE(timer.acting(t0 + 13500ms));  // 15s - 1.5s: stops before a standby could take over
  CHECK_FALSE(timer.acting(t0 + 20s));

  // A renewal that failed to reach the database leaves the deadline where it was; a later one
  // extends it from when it was sent.
  timer.renewed(t0 + 5s);
  CHECK(timer.acting(t0 + 18s));
  CHECK(timer.next_renewal() == t0 + 10s);

  timer.lost();
  CHECK_FALSE(timer.acting(t0 + 6s));
  CHECK_FALSE(timer.valid_until().has_value());
}

TEST_CASE("database clock: the offset from the midpoint of the local readings, replaced by each new one",
          "[scheduler][clock]") {
  scheduler::DbClock c;
  CHECK_FALSE(c.sampled());
  CHECK(c.now(at("2026-01-01T00:00:00Z")) == at("2026-01-01T00:00:00Z"));
  // Read between 10:00:00 and 10:00:00.2 local: the database said 10:00:05.1, so it is 5 s ahead.
  c.sample(at("2026-01-01T10:00:00Z"), at("2026-01-01T10:00:05.1Z"), at("2026-01-01T10:00:00.2Z"));
  CHECK(c.sampled());
  CHECK(c.offset() == 5s);
  CHECK(c.now(at("2026-01-01T11:00:00Z")) == at("2026-01-01T11:00:05Z"));
  // The local clock was stepped back an hour during the term: the next reading follows it.
  c.sample(at("2026-01-01T10:00:00Z"), at("2026-01-01T11:00:05Z"), at("2026-01-01T10:00:00Z"));
  CHECK(c.offset() == 1h + 5s);
  CHECK(c.now(at("2026-01-01T10:30:00Z")) == at("2026-01-01T11:30:05Z"));
}

TEST_CASE("tick plan: every due tick in order, then the next", "[scheduler][ticks]") {
  const auto every_second = cron::Expression::parse("* * * * * *");
  const auto plan =
      plan_ticks(every_second, "UTC", at("2026-11-28T10:00:00Z"), at("2026-11-28T10:00:03.5Z"), 30s, false);
  REQUIRE(plan.fire.size() == 3);
  CHECK(plan.fire[0] == at("2026-11-28T10:00:01Z"));
  CHECK(plan.fire[2] == at("2026-11-28T10:00:03Z"));
  CHECK(plan.next == at("2026-11-28T10:00:04Z"));
  CHECK(plan.skipped_old == 0);
}

TEST_CASE("tick plan: nothing due before the next tick", "[scheduler][ticks]") {
  const auto daily = cron::Expression::parse("0 3 * * *");
  const auto plan = plan_ticks(daily, "UTC", at("2026-11-28T03:00:00Z"), at("2026-11-28T10:00:00Z"), 30s, false);
  CHECK(plan.fire.empty());
  CHECK(plan.next == at("2026-11-29T03:00:00Z"));
}

TEST_CASE("tick plan: a new schedule fires from now on, never for the past", "[scheduler][ticks]") {
  const auto daily = cron::Expression::parse("0 3 * * *");
  const auto plan = plan_ticks(daily, "UTC", std::nullopt, at("2026-11-28T10:00:00Z"), 30s, true);
  CHECK(plan.fire.empty());
  CHECK(plan.next == at("2026-11-29T03:00:00Z"));
}

TEST_CASE("tick plan: after downtime, skip drops old ticks and keeps those within the window", "[scheduler][ticks]") {
  const auto every_second = cron::Expression::parse("* * * * * *");
  const auto plan = plan_ticks(every_second, "UTC", at("2026-11-28T09:00:00Z"), at("2026-11-28T10:00:00Z"), 4s, false);
  CHECK(plan.skipped_old == 1);
  REQUIRE(plan.fire.size() == 4);  // 09:59:57 .. 10:00:00: missed only by a failover-sized gap
  CHECK(plan.fire.front() == at("2026-11-28T09:59:57Z"));
  CHECK(plan.fire.back() == at("2026-11-28T10:00:00Z"));

  const auto daily = cron::Expression::parse("0 3 * * *");
  const auto none = plan_ticks(daily, "UTC", at("2026-11-25T03:00:00Z"), at("2026-11-28T10:00:00Z"), 30s, false);
  CHECK(none.fire.empty());
  CHECK(none.skipped_old == 1);
  CHECK(none.next == at("2026-11-29T03:00:00Z"));
}

TEST_CASE("tick plan: after downtime, run_once enqueues the latest missed tick once", "[scheduler][ticks]") {
  const auto daily = cron::Expression::parse("0 3 * * *");
  const auto plan = plan_ticks(daily, "UTC", at("2026-11-25T03:00:00Z"), at("2026-11-28T10:00:00Z"), 30s, true);
  REQUIRE(plan.fire.size() == 1);
  CHECK(plan.fire[0] == at("2026-11-28T03:00:00Z"));
  CHECK(plan.next == at("2026-11-29T03:00:00Z"));

  // In Europe/Berlin: 03:00 local is 02:00 UTC in winter.
  const auto berlin =
      plan_ticks(daily, "Europe/Berlin", at("2026-11-20T02:00:00Z"), at("2026-11-28T10:00:00Z"), 30s, true);
  REQUIRE(berlin.fire.size() == 1);
  CHECK(berlin.fire[0] == at("2026-11-28T02:00:00Z"));
}

TEST_CASE("tick plan: a burst is bounded and resumes where it stopped", "[scheduler][ticks]") {
  const auto every_second = cron::Expression::parse("* * * * * *");
  const auto first =
      plan_ticks(every_second, "UTC", at("2026-11-28T10:00:00Z"), at("2026-11-28T10:00:20Z"), 60s, false, 5);
  REQUIRE(first.fire.size() == 5);
  CHECK(first.next == at("2026-11-28T10:00:06Z"));
  const auto second = plan_ticks(every_second, "UTC", first.fire.back(), at("2026-11-28T10:00:20Z"), 60s, false, 100);
  CHECK(second.fire.size() == 15);
  CHECK(second.fire.front() == at("2026-11-28T10:00:06Z"));
}

TEST_CASE("latest tick: found backwards for rare and frequent schedules", "[scheduler][ticks]") {
  const auto yearly = cron::Expression::parse("@yearly");
  CHECK(scheduler::latest_tick(yearly, "UTC", at("2020-06-01T00:00:00Z"), at("2026-06-01T00:00:00Z")) ==
        at("2026-01-01T00:00:00Z"));
  const auto every_second = cron::Expression::parse("* * * * * *");
  CHECK(scheduler::latest_tick(every_second, "UTC", at("2020-01-01T00:00:00Z"), at("2026-06-01T12:34:56.7Z")) ==
        at("2026-06-01T12:34:56Z"));
  CHECK_FALSE(scheduler::latest_tick(yearly, "UTC", at("2026-01-01T00:00:00Z"), at("2026-06-01T00:00:00Z")));
  const auto leap = cron::Expression::parse("0 12 29 2 *");
  CHECK(scheduler::latest_tick(leap, "UTC", at("2010-01-01T00:00:00Z"), at("2026-11-28T00:00:00Z")) ==
        at("2024-02-29T12:00:00Z"));
}

TEST_CASE("scheduler config: values and defaults are read", "[scheduler][config]") {
  const Config c = parse_config(
      "[scheduler]\nlease_ttl = \"3s\"\nretention = { completed = \"1h\" }\nmissed_ticks = \"run_once\"\n"
      "[[scheduler.periodic]]\nname = \"nightly-report\"\ncron = \"0 3 * * *\"\ntimezone = \"Europe/Berlin\"\n"
      "kind = \"report\"\nargs = { scope = \"all\", n = 3, deep = { list = [1, 2] } }\nqueue = \"reports\"\n"
      "priority = 2\nmax_attempts = 3\ntimeout = \"10m\"\ntags = [\"nightly\"]\n",
      "s.toml");
  CHECK(c.scheduler_errors.empty());
  CHECK(c.scheduler.lease_ttl == 3s);
  CHECK(c.scheduler.retention.completed == 1h);
  CHECK(c.scheduler.retention.failed == std::chrono::hours{24 * 30});
  CHECK(c.scheduler.missed_run_once);
  REQUIRE(c.scheduler.periodic.size() == 1);
  const auto& p = c.scheduler.periodic[0];
  CHECK(p.name == "nightly-report");
  CHECK(p.timezone == "Europe/Berlin");
  CHECK(p.job.kind == "report");
  CHECK(p.job.args == R"({"deep":{"list":[1,2]},"n":3,"scope":"all"})");
  CHECK(p.job.queue == "reports");
  CHECK(p.job.priority == 2);
  CHECK(p.job.max_attempts == 3);
  CHECK(p.job.timeout == std::chrono::minutes{10});
  CHECK(p.job.tags == std::vector<std::string>{"nightly"});
  CHECK(p.line == 5);
  CHECK_NOTHROW(scheduler::validate_config(c));
}

TEST_CASE("scheduler config: an invalid cron names the schedule, the line and the field", "[scheduler][config]") {
  const auto msg = message_of("[[scheduler.periodic]]\nname = \"hourly\"\ncron = \"0 25 * * *\"\nkind = \"k\"\n");
  CHECK(contains(msg, "s.toml:1"));
  CHECK(contains(msg, "scheduler.periodic 'hourly'"));
  CHECK(contains(msg, "hour"));
  CHECK(contains(msg, "25"));
}

TEST_CASE("scheduler config: an unknown time zone is refused", "[scheduler][config]") {
  const auto msg = message_of(
      "[[scheduler.periodic]]\nname = \"mars\"\ncron = \"@daily\"\ntimezone = \"Mars/Olympus\"\nkind = \"k\"\n");
  CHECK(contains(msg, "scheduler.periodic 'mars'"));
  CHECK(contains(msg, "Mars/Olympus"));
}

TEST_CASE("scheduler config: duplicate names are refused", "[scheduler][config]") {
  const auto msg = message_of(
      "[[scheduler.periodic]]\nname = \"twice\"\ncron = \"@daily\"\nkind = \"k\"\n"
      "[[scheduler.periodic]]\nname = \"twice\"\ncron = \"@hourly\"\nkind = \"k\"\n");
  CHECK(contains(msg, "s.toml:5"));
  CHECK(contains(msg, "'twice'"));
  CHECK(contains(msg, "duplicate"));
}

TEST_CASE("scheduler config: bad durations and values name the key", "[scheduler][config]") {
  CHECK(contains(message_of("[scheduler]\nlease_ttl = \"15 parsecs\"\n"), "scheduler.lease_ttl"));
  CHECK(contains(message_of("[scheduler]\nlease_ttl = \"100ms\"\n"), "at least 1s"));
  CHECK(contains(message_of("[scheduler]\nretention = { completed = \"1x\" }\n"), "scheduler.retention.completed"));
  CHECK(contains(message_of("[scheduler]\nretention = { done = \"1h\" }\n"), "unknown state"));
  CHECK(contains(message_of("[scheduler]\nmissed_ticks = \"all\"\n"), "skip or run_once"));
  CHECK(contains(message_of("[scheduler]\nprune_batch = 50000\n"), "scheduler.prune_batch"));
  CHECK(contains(message_of("[scheduler]\nleese_ttl = \"1s\"\n"), "scheduler.leese_ttl: unknown key"));
  CHECK(contains(
      message_of("[[scheduler.periodic]]\nname = \"x\"\ncron = \"@daily\"\nkind = \"k\"\ntimeout = \"soon\"\n"),
      "scheduler.periodic 'x': timeout"));
  CHECK(contains(message_of("[[scheduler.periodic]]\nname = \"x\"\ncron = \"@daily\"\n"), "needs a kind"));
  CHECK(contains(message_of("[[scheduler.periodic]]\ncron = \"@daily\"\nkind = \"k\"\n"), "needs a name"));
  CHECK(contains(message_of("[[scheduler.periodic]]\nname = \"x\"\ncron = \"@daily\"\nkind = \"k\"\ncolour = 1\n"),
                 "unknown key"));
  CHECK(contains(message_of("[[scheduler.periodic]]\nname = \"x\"\ncron = \"0 0 30 2 *\"\nkind = \"k\"\n"),
                 "never fires"));
  CHECK(contains(message_of("[[scheduler.periodic]]\nname = \"x\"\ncron = \"@daily\"\nkind = \"k\"\npriority = 12\n"),
                 "priority"));
}

TEST_CASE("scheduler config errors do not stop other programs", "[scheduler][config]") {
  const Config c = parse_config("[scheduler]\nlease_ttl = \"soon\"\n[database]\nschema = \"x\"\n", "s.toml");
  CHECK(c.database.schema == "x");
  CHECK_NOTHROW(validate_config(c));
  CHECK(c.scheduler_errors.size() == 1);
}
