// Leader leases against a real PostgreSQL: one holder at a time, take-over after expiry, renewal
// fenced by the term, resignation with a notification, terms never reused.
#include <catch2/catch.hpp>
#include <chrono>

#include "daemon_process.hpp"
#include "taskq/core/error.hpp"
#include "test_db.hpp"

using namespace taskq;
using namespace std::chrono_literals;
using taskq::test::TestSchema;
using taskq::test::wait_until;

TEST_CASE("lease: one holder at a time, renewal keeps the term", "[lease]") {
  TestSchema s;
  auto a = s.open();
  auto b = s.open();
  const auto first = a->acquire_lease("scheduler", "a", 30s);
  REQUIRE(first.has_value());
  CHECK(first->term == 1);
  CHECK(first->valid);
  CHECK_FALSE(b->acquire_lease("scheduler", "b", 30s).has_value());
  const auto again = a->acquire_lease("scheduler", "a", 30s);  // extends, same term
  REQUIRE(again.has_value());
  CHECK(again->term == 1);
  const auto renewed = a->renew_lease("scheduler", "a", 1, 60s);
  REQUIRE(renewed.has_value());
  CHECK(*renewed > first->expires_at);
  CHECK_FALSE(b->renew_lease("scheduler", "b", 1, 60s).has_value());  // not the holder
  CHECK_FALSE(a->renew_lease("scheduler", "a", 2, 60s).has_value());  // not this term
  const auto seen = b->lease("scheduler");
  REQUIRE(seen.has_value());
  CHECK(seen->holder == "a");
  CHECK_FALSE(b->lease("other").has_value());
}

TEST_CASE("lease: an expired lease is taken over with a new term, the old holder is fenced", "[lease]") {
  TestSchema s;
  auto a = s.open();
  auto b = s.open();
  REQUIRE(a->acquire_lease("scheduler", "a", 50ms).has_value());
  REQUIRE(wait_until([&] { return !b->lease("scheduler")->valid; }, 5s));
  const auto taken = b->acquire_lease("scheduler", "b", 30s);
  REQUIRE(taken.has_value());
  CHECK(taken->term == 2);
  CHECK_FALSE(a->renew_lease("scheduler", "a", 1, 30s).has_value());  // lost: stop acting
  CHECK_FALSE(a->acquire_lease("scheduler", "a", 30s).has_value());
}

TEST_CASE("lease: resigning notifies standbys and the next term is new", "[lease]") {
  TestSchema s;
  auto a = s.open();
  auto b = s.open();
  auto listener = s.open();
  listener->listen({"leader"});
  const auto held = a->acquire_lease("scheduler", "a", 30s);
  REQUIRE(held.has_value());
  CHECK_FALSE(a->resign_lease("scheduler", "a", held->term + 1));  // a stale term resigns nothing
  CHECK(a->resign_lease("scheduler", "a", held->term));
  const auto got = listener->wait_notifications(5s);
  REQUIRE(got.size() == 1);
  CHECK(got[0].event == "leader");
  CHECK(got[0].payload == "scheduler");
  const auto after = b->lease("scheduler");
  REQUIRE(after.has_value());
  CHECK_FALSE(after->valid);
  CHECK(after->holder.empty());
  const auto next = b->acquire_lease("scheduler", "b", 30s);
  REQUIRE(next.has_value());
  CHECK(next->term == held->term + 1);
  // Even the old holder coming back gets a term of its own.
  CHECK(b->resign_lease("scheduler", "b", next->term));
  CHECK(a->acquire_lease("scheduler", "a", 30s)->term == next->term + 1);
  CHECK_THROWS_AS(a->acquire_lease("scheduler", "", 30s), Error);
}
