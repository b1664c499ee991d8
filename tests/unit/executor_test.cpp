// The executor's bookkeeping of live runs, without a database: runs are known by (job id,
// attempt), so a job claimed again while an earlier run of it still lives here (it was rescued
// away and came back) neither loses the new run nor keeps the old one going.
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "executor.hpp"

using taskq::store::Outcome;
using taskq::store::ProgressUpdate;

using namespace taskq;
using namespace taskq::worker;
using namespace std::chrono_literals;

namespace {

struct Finished {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Outcome> outcomes;

  bool wait_for(std::size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 5s, [&] { return outcomes.size() >= n; });
  }
};

Job sleeping(JobId id, int attempt) {
  Job j;
  j.id = id;
  j.attempt = attempt;
  j.queue = "q";
  j.kind = "sleep";
  j.args = R"({"ms": 60000})";
  return j;
}

bool wait_live(const Executor& ex, const std::vector<std::pair<JobId, int>>& want) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    if (ex.live_runs() == want) return true;
    std::this_thread::yield();
  }
  return false;
}

}  // namespace

TEST_CASE("executor: a job claimed again while its earlier run lives stops that run and keeps the new one",
          "[executor]") {
  Finished f;
  Executor ex({}, {[&](const Job&, Outcome o, Timestamp) {
                     std::lock_guard lock(f.mu);
                     f.outcomes.push_back(std::move(o));
                     f.cv.notify_all();
                   },
                   [](const Job&, ProgressUpdate) {}});
  ex.start();
  ex.submit({sleeping(7, 1)});
  REQUIRE(wait_live(ex, {{7, 1}}));

  ex.submit({sleeping(7, 2)});
  REQUIRE(f.wait_for(1));
  CHECK(f.outcomes[0].id == 7);
  CHECK(f.outcomes[0].attempt == 1);
  CHECK(f.outcomes[0].kind == Outcome::Kind::returned);
  REQUIRE(wait_live(ex, {{7, 2}}));
  CHECK(ex.running() == 1);

  // Stopping a run that is gone changes nothing; the live one is found by its attempt.
  ex.stop_lost(7, 1);
  ex.stop_lost(7, 2);
  REQUIRE(f.wait_for(2));
  CHECK(f.outcomes[1].attempt == 2);
  CHECK(f.outcomes[1].kind == Outcome::Kind::returned);
  CHECK(ex.running() == 0);
  CHECK(ex.live_runs().empty());
  ex.shutdown();
}

TEST_CASE("executor: a cancel stops every run of the job", "[executor]") {
  Finished f;
  Executor ex({}, {[&](const Job&, Outcome o, Timestamp) {
                     std::lock_guard lock(f.mu);
                     f.outcomes.push_back(std::move(o));
                     f.cv.notify_all();
                   },
                   [](const Job&, ProgressUpdate) {}});
  ex.start();
  ex.submit({sleeping(9, 3), sleeping(10, 1)});
  REQUIRE(wait_live(ex, {{9, 3}, {10, 1}}));
  ex.cancel(9);
  REQUIRE(f.wait_for(1));
  CHECK(f.outcomes[0].id == 9);
  CHECK(f.outcomes[0].kind == Outcome::Kind::cancelled);
  REQUIRE(wait_live(ex, {{10, 1}}));
  ex.stop_all();
  REQUIRE(f.wait_for(2));
  CHECK(f.outcomes[1].id == 10);
  ex.shutdown();
}
