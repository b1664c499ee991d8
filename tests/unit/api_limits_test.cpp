// taskq-apid's bounds as pure decisions: the accept loop's backoff, and the counts of open
// connections and event streams.
#include <catch2/catch.hpp>

#include "listener.hpp"
#include "stream_limits.hpp"

using namespace taskq::api;
using std::chrono::milliseconds;

TEST_CASE("accept errors back off from 10 ms doubling to 1 s, logged once per episode", "[unit][api]") {
  AcceptBackoff b;
  std::vector<long> delays;
  int logged = 0;
  for (int i = 0; i < 10; ++i) {
    const auto step = b.failed();
    delays.push_back(static_cast<long>(step.delay.count()));
    logged += step.first ? 1 : 0;
  }
  CHECK(delays == std::vector<long>{10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000});
  CHECK(logged == 1);
  CHECK(b.succeeded() == 10);
  CHECK(b.succeeded() == 0);  // no episode: nothing to log
  const auto again = b.failed();
  CHECK(again.first);
  CHECK(again.delay == milliseconds{10});
}

TEST_CASE("connections beyond the maximum get no slot, and a closed one frees its place", "[unit][api]") {
  ConnectionLimit limit(2);
  auto a = limit.take();
  auto b = limit.take();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(!limit.take());
  CHECK(!limit.take());
  CHECK(limit.refused() == 2);
  CHECK(limit.open() == 2);
  a.reset();
  CHECK(limit.open() == 1);
  auto c = limit.take();
  CHECK(c);
  ConnectionLimit::Slot moved = std::move(*c);
  c.reset();  // the moved-from slot releases nothing
  CHECK(limit.open() == 2);
}

TEST_CASE("event streams are bounded in all (503) and per token (429)", "[unit][api]") {
  StreamLimits limits(3, 2);
  auto a1 = limits.take("a");
  auto a2 = limits.take("a");
  REQUIRE(a1.slot);
  REQUIRE(a2.slot);
  const auto a3 = limits.take("a");
  CHECK(!a3.slot);
  CHECK(a3.refusal.status == 429);
  CHECK(a3.reason.find("token 'a'") != std::string::npos);
  auto b1 = limits.take("b");
  REQUIRE(b1.slot);
  const auto b2 = limits.take("b");
  CHECK(!b2.slot);
  CHECK(b2.refusal.status == 503);
  bool retry_after = false;
  for (const auto& [k, v] : b2.refusal.headers) retry_after = retry_after || (k == "Retry-After" && v == "10");
  CHECK(retry_after);
  CHECK(limits.open() == 3);
  a1.slot.reset();
  CHECK(limits.open() == 2);
  CHECK(limits.take("a").slot);  // taken and released at once
  CHECK(limits.open() == 2);
}
