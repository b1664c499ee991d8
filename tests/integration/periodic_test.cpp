// Periodic ticks enqueued exactly once: fenced by the lease, once per tick, across holders.
#include <catch2/catch.hpp>
#include <chrono>

#include "taskq/core/error.hpp"
#include "test_db.hpp"

using taskq::store::FireResult;
using taskq::store::LeaseFence;
using taskq::store::PeriodicFire;

using namespace taskq;
using namespace std::chrono_literals;
using taskq::test::TestSchema;

namespace {

PeriodicFire nightly(const std::string& tick) {
  PeriodicFire f;
  f.name = "nightly-report";
  f.schedule = "0 3 * * *";
  f.timezone = "Europe/Berlin";
  f.tick = parse_rfc3339(tick);
  f.next_fire = f.tick + std::chrono::hours{24};
  f.job.kind = "report";
  f.job.queue = "reports";
  f.job.args = R"({"scope": "all"})";
  return f;
}

}  // namespace

TEST_CASE("periodic: a tick is enqueued once, with its metadata, only by the lease holder", "[periodic]") {
  TestSchema s;
  auto a = s.open();
  auto b = s.open();
  const auto lease = a->acquire_lease("scheduler", "a", 30s);
  REQUIRE(lease.has_value());
  const LeaseFence fence{"scheduler", "a", lease->term};

  const auto first = a->fire_periodic(nightly("2026-11-24T02:00:00Z"), fence);
  CHECK(first.outcome == FireResult::Outcome::enqueued);
  REQUIRE(first.job.has_value());
  const auto job = *a->get(*first.job);
  CHECK(job.kind == "report");
  CHECK(job.queue == "reports");
  CHECK(job.unique_key == std::optional<std::string>("periodic:nightly-report:2026-11-24T02:00:00Z"));
  CHECK(job.metadata == R"({"tick": "2026-11-24T02:00:00Z", "periodic": "nightly-report"})");

  // The same tick again (a retry, a second scheduler that believed it led): nothing new.
  CHECK(a->fire_periodic(nightly("2026-11-24T02:00:00Z"), fence).outcome == FireResult::Outcome::already_fired);
  // Not the holder, or a stale term: fenced, nothing written.
  CHECK(b->fire_periodic(nightly("2026-11-25T02:00:00Z"), {"scheduler", "b", lease->term}).outcome ==
        FireResult::Outcome::fenced);
  CHECK(a->fire_periodic(nightly("2026-11-25T02:00:00Z"), {"scheduler", "a", lease->term + 1}).outcome ==
        FireResult::Outcome::fenced);
  CHECK(s.scalar("SELECT count(*) FROM jobs") == "1");

  const auto state = a->periodic_state("nightly-report");
  REQUIRE(state.has_value());
  CHECK(state->last_fire_at == std::optional(parse_rfc3339("2026-11-24T02:00:00Z")));
  CHECK(state->next_fire_at == std::optional(parse_rfc3339("2026-11-25T02:00:00Z")));
  CHECK_FALSE(a->periodic_state("unknown").has_value());
}

TEST_CASE("periodic: after a failover the new holder continues without doubling a tick", "[periodic]") {
  TestSchema s;
  auto a = s.open();
  auto b = s.open();
  const auto la = a->acquire_lease("scheduler", "a", 30s);
  REQUIRE(la.has_value());
  CHECK(a->fire_periodic(nightly("2026-11-24T02:00:00Z"), {"scheduler", "a", la->term}).outcome ==
        FireResult::Outcome::enqueued);
  REQUIRE(a->resign_lease("scheduler", "a", la->term));
  const auto lb = b->acquire_lease("scheduler", "b", 30s);
  REQUIRE(lb.has_value());
  const LeaseFence fb{"scheduler", "b", lb->term};
  CHECK(b->fire_periodic(nightly("2026-11-24T02:00:00Z"), fb).outcome == FireResult::Outcome::already_fired);
  CHECK(b->fire_periodic(nightly("2026-11-25T02:00:00Z"), fb).outcome == FireResult::Outcome::enqueued);
  // The old leader, paused through the failover, cannot enqueue anything.
  CHECK(a->fire_periodic(nightly("2026-11-26T02:00:00Z"), {"scheduler", "a", la->term}).outcome ==
        FireResult::Outcome::fenced);
  CHECK(s.scalar("SELECT count(*) FROM jobs") == "2");
  CHECK(s.scalar("SELECT string_agg(metadata->>'tick', ',' ORDER BY id) FROM jobs") ==
        "2026-11-24T02:00:00Z,2026-11-25T02:00:00Z");
}
