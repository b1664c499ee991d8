// Liveness edges of the store against a real PostgreSQL: an outcome of an earlier attempt never
// lands on a later attempt of the same job; rescue and stuck jobs retry on the worker's capped
// curve; a worker whose row vanished is not taken for dead while it heartbeats; multi-row writes
// lock rows in one order, so cancels by queue racing outcome batches never deadlock.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "daemon_process.hpp"
#include "taskq/core/error.hpp"
#include "taskq/worker/worker.hpp"
#include "test_db.hpp"

using taskq::worker::HandlerResult;
using taskq::worker::JobContext;
using taskq::worker::Worker;
using taskq::worker::WorkerOptions;

using taskq::store::JobFilter;
using taskq::store::Outcome;
using taskq::store::ProgressUpdate;
using taskq::store::Store;
using taskq::store::WorkerRegistration;

using namespace taskq;
using namespace std::chrono_literals;
using taskq::test::TestSchema;
using taskq::test::wait_until;

namespace {

const WorkerRegistration reg{"h", 7, {"default"}, 4, "test"};

JobId enqueue(Store& s, const std::string& queue = "default") {
  EnqueueParams p;
  p.kind = "k";
  p.queue = queue;
  return s.insert(p).job.id;
}

// The job ran attempt 1 on worker `w`, failed, was claimed again by the same worker: attempt 2.
JobId on_second_attempt(Store& s, std::int64_t w) {
  const auto id = enqueue(s);
  REQUIRE(s.claim(w, "default", 1).size() == 1);
  REQUIRE(s.complete(w, {{id, 1, Outcome::Kind::retry, std::nullopt, std::nullopt, R"({"message":"x"})"}}) == 1);
  const auto again = s.claim(w, "default", 1);
  REQUIRE(again.size() == 1);
  REQUIRE(again[0].attempt == 2);
  return id;
}

// Seconds from the retry's decision (the "at" of its last error entry) to its run_at.
std::string delays_sql(const std::string& kind) {
  return "SELECT string_agg(round(extract(epoch FROM run_at - (errors->-1->>'at')::timestamptz), 3)::text, ',' "
         "ORDER BY id) FROM jobs WHERE kind = '" +
         kind + "'";
}

std::vector<double> delays(const TestSchema& s, const std::string& kind) {
  std::vector<double> out;
  std::string text = s.scalar(delays_sql(kind));
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(std::stod(text.substr(pos, comma - pos)));
    pos = comma + 1;
  }
  return out;
}

void check_curve(const std::vector<double>& at2, const std::vector<double>& at20) {
  REQUIRE(at2.size() == 20);
  REQUIRE(at20.size() == 3);
  // attempt 2: 2^4 = 16 s, ±10 %.
  for (double d : at2) {
    CHECK(d >= 14.4 - 0.001);
    CHECK(d <= 17.6 + 0.001);
  }
  // jittered: not all the same
  CHECK(std::set<double>(at2.begin(), at2.end()).size() > 1);
  // attempt 20: 20^4 s is over a day: capped at 24 h, the jitter only below the cap.
  for (double d : at20) {
    CHECK(d >= 86400 * 0.9 - 0.001);
    CHECK(d <= 86400 + 0.001);
  }
}

}  // namespace

TEST_CASE("an outcome of an earlier attempt never applies to a later attempt on the same worker", "[store][outcome]") {
  TestSchema s;
  auto store = s.open();
  const auto w = store->register_worker(reg);
  const auto id = on_second_attempt(*store, w);
  const auto sid = std::to_string(id);

  SECTION("plain completion") {
    CHECK(store->complete(w, {{id, 1, Outcome::Kind::completed}}) == 0);
    CHECK(s.scalar("SELECT state FROM jobs WHERE id = " + sid) == "running");
    CHECK(store->complete(w, {{id, 2, Outcome::Kind::completed}}) == 1);
    CHECK(s.scalar("SELECT state FROM jobs WHERE id = " + sid) == "completed");
  }
  SECTION("completion that deletes the job") {
    CHECK(store->complete(w, {{id, 1, Outcome::Kind::completed}}, true) == 0);
    CHECK(s.scalar("SELECT state FROM jobs WHERE id = " + sid) == "running");
    CHECK(store->complete(w, {{id, 2, Outcome::Kind::completed}}, true) == 1);
    CHECK(s.scalar("SELECT count(*) FROM jobs WHERE id = " + sid) == "0");
  }
  SECTION("any other outcome") {
    CHECK(store->complete(w, {{id, 1, Outcome::Kind::failed, std::nullopt, std::nullopt, R"({"message":"old"})"}}) ==
          0);
    CHECK(store->complete(w, {{id, 1, Outcome::Kind::completed, std::nullopt, R"({"r":1})"}}) == 0);
    CHECK(s.scalar("SELECT state || ' ' || jsonb_array_length(errors) || ' ' || COALESCE(result::text, '-') FROM "
                   "jobs WHERE id = " +
                   sid) == "running 1 -");
    CHECK(store->complete(w, {{id, 2, Outcome::Kind::completed, std::nullopt, R"({"r":2})"}}) == 1);
    CHECK(s.scalar("SELECT result->>'r' FROM jobs WHERE id = " + sid) == "2");
  }
  SECTION("progress") {
    store->set_progress(w, {{id, 1, R"({"percent":10})"}});
    CHECK(s.scalar("SELECT COALESCE(progress::text, '-') FROM jobs WHERE id = " + sid) == "-");
    store->set_progress(w, {{id, 2, R"({"percent":20})"}});
    CHECK(s.scalar("SELECT progress->>'percent' FROM jobs WHERE id = " + sid) == "20");
  }
}

TEST_CASE("rescued jobs retry on the worker's curve: attempt^4 s with jitter, capped at 24 hours", "[store][rescue]") {
  TestSchema s;
  auto store = s.open();
  const auto w = store->register_worker(reg);
  const auto ws = std::to_string(w);
  s.exec(
      "INSERT INTO jobs (kind, state, attempt, attempted_at, worker_id) "
      "SELECT 'a2', 'running', 2, now(), " +
      ws + " FROM generate_series(1, 20)");
  s.exec(
      "INSERT INTO jobs (kind, state, attempt, attempted_at, worker_id) "
      "SELECT 'a20', 'running', 20, now(), " +
      ws + " FROM generate_series(1, 3)");
  s.exec("UPDATE workers SET heartbeat_at = now() - interval '1 minute'");
  REQUIRE(store->rescue(30s, 100, false).jobs.size() == 23);
  CHECK(s.scalar("SELECT count(*) FROM jobs WHERE state = 'scheduled'") == "23");
  check_curve(delays(s, "a2"), delays(s, "a20"));
}

TEST_CASE("stuck jobs retry on the worker's curve: attempt^4 s with jitter, capped at 24 hours", "[store][stuck]") {
  TestSchema s;
  auto store = s.open();
  const auto w = store->register_worker(reg);
  const auto ws = std::to_string(w);
  s.exec(
      "INSERT INTO jobs (kind, state, attempt, attempted_at, worker_id, timeout_ms) "
      "SELECT 'a2', 'running', 2, now() - interval '1 hour', " +
      ws + ", 1000 FROM generate_series(1, 20)");
  s.exec(
      "INSERT INTO jobs (kind, state, attempt, attempted_at, worker_id, timeout_ms) "
      "SELECT 'a20', 'running', 20, now() - interval '1 hour', " +
      ws + ", 1000 FROM generate_series(1, 3)");
  REQUIRE(store->fail_stuck(1s, 100).size() == 23);
  check_curve(delays(s, "a2"), delays(s, "a20"));
}

TEST_CASE("rescue and stuck jobs keep the first error entry and the last 10, like outcomes do", "[store][rescue]") {
  TestSchema s;
  auto store = s.open();
  const auto w = store->register_worker(reg);
  const auto ws = std::to_string(w);
  // 11 entries already (attempts 1 to 11), running attempt 12: one more is one too many.
  const std::string eleven =
      "(SELECT jsonb_agg(jsonb_build_object('attempt', n, 'message', 'try ' || n)) FROM generate_series(1, 11) n)";
  s.exec(
      "INSERT INTO jobs (kind, state, attempt, max_attempts, attempted_at, worker_id, errors) VALUES "
      "('lost', 'running', 12, 25, now(), " +
      ws + ", " + eleven +
      "), "
      "('stuck', 'running', 12, 25, now() - interval '1 hour', " +
      ws + ", " + eleven + ")");
  s.exec("UPDATE jobs SET timeout_ms = 1000 WHERE kind = 'stuck'");
  REQUIRE(store->fail_stuck(1s, 100).size() == 1);
  s.exec("UPDATE workers SET heartbeat_at = now() - interval '1 minute'");
  REQUIRE(store->rescue(30s, 100, false).jobs.size() == 1);
  for (const auto& [kind, last] : {std::pair{"lost", "worker lost"}, std::pair{"stuck", "stuck"}}) {
    const std::string where = " FROM jobs WHERE kind = '" + std::string(kind) + "'";
    INFO(kind << ": " << s.scalar("SELECT errors" + where));
    CHECK(s.scalar("SELECT jsonb_array_length(errors)" + where) == "12");
    CHECK(s.scalar("SELECT errors->0->>'message'" + where) == "try 1");
    CHECK(s.scalar("SELECT errors->1->>'dropped'" + where) == "1");  // try 2
    CHECK(s.scalar("SELECT errors->2->>'message'" + where) == "try 3");
    CHECK(s.scalar("SELECT starts_with(errors->-1->>'message', '" + std::string(last) + "')" + where) == "t");
  }
}

TEST_CASE("a worker whose row vanished keeps its jobs while it heartbeats, and comes back under its id",
          "[store][rescue]") {
  TestSchema s;
  auto store = s.open();
  const auto w = store->register_worker(reg);
  const auto ws = std::to_string(w);
  const auto id = enqueue(*store);
  REQUIRE(store->claim(w, "default", 1).size() == 1);
  CHECK_FALSE(store->heartbeat(w, reg));  // its row is there: a plain renewal

  s.exec("DELETE FROM workers");
  // The rescue does not take the jobs of a worker it cannot see: it gives the worker a
  // placeholder row heartbeating now, and waits a grace for it.
  const auto first = store->rescue(30s, 100, false);
  CHECK(first.jobs.empty());
  CHECK(first.vanished_workers == std::vector<std::int64_t>{w});
  CHECK(s.scalar("SELECT state FROM jobs WHERE id = " + std::to_string(id)) == "running");
  CHECK(store->not_owned(w, {{id, 1}}).empty());

  // Its next heartbeat takes the row back, same id, its own details.
  CHECK(store->heartbeat(w, reg));
  CHECK(s.scalar("SELECT id || ' ' || host || ' ' || pid || ' ' || queues::text FROM workers") ==
        ws + " h 7 {default}");
  const auto ws_list = store->workers();
  REQUIRE(ws_list.size() == 1);
  CHECK(ws_list[0].running == 1);
  CHECK(store->rescue(30s, 100, false).jobs.empty());
  CHECK_FALSE(store->heartbeat(w, reg));
  CHECK(store->complete(w, {{id, 1, Outcome::Kind::completed}}) == 1);

  // Vanished and truly gone: the placeholder ages like any row, then the jobs are rescued and
  // the placeholder forgotten.
  const auto id2 = enqueue(*store);
  REQUIRE(store->claim(w, "default", 1).size() == 1);
  s.exec("DELETE FROM workers");
  CHECK(store->rescue(30s, 100, false).jobs.empty());
  s.exec("UPDATE workers SET heartbeat_at = now() - interval '1 minute'");
  const auto later = store->rescue(30s, 100, false);
  REQUIRE(later.jobs.size() == 1);
  CHECK(later.jobs[0].id == id2);
  CHECK(later.forgotten_workers == 1);
  CHECK(s.scalar("SELECT errors->0->>'message' FROM jobs WHERE id = " + std::to_string(id2)) ==
        "worker lost: worker " + ws +
            " is no longer registered (its row vanished and it did not heartbeat again within the grace)");
  CHECK(s.scalar("SELECT count(*) FROM workers") == "0");
  // The worker learns the job is no longer its own; its heartbeat registers it again.
  CHECK(store->not_owned(w, {{id2, 1}}) == std::vector<std::pair<JobId, int>>{{id2, 1}});
  CHECK(store->heartbeat(w, reg));
  CHECK(s.scalar("SELECT count(*) FROM workers") == "1");
}

TEST_CASE("cancels by queue racing outcome batches in reverse id order never deadlock", "[store][locking]") {
  TestSchema s;
  auto setup = s.open();
  auto canceller = s.open();
  auto worker = s.open();
  const auto w = setup->register_worker(reg);
  constexpr int n = 300;
  std::vector<std::string> errors;
  int rounds = 0;
  const auto until = std::chrono::steady_clock::now() + 3s;
  // Each round: n running jobs of one worker; one session cancels the queue (locking in id
  // order) while the other writes one batch for all of them in reverse id order.
  while (std::chrono::steady_clock::now() < until && errors.empty()) {
    std::vector<EnqueueParams> batch(n);
    for (auto& p : batch) {
      p.kind = "k";
      p.queue = "race";
    }
    setup->insert_batch(batch);
    auto jobs = worker->claim(w, "race", n);
    REQUIRE(jobs.size() == n);
    std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) { return a.id > b.id; });
    std::vector<Outcome> outcomes;
    std::vector<ProgressUpdate> progress;
    const int kind = rounds % 4;
    for (const auto& j : jobs) {
      if (kind == 2)
        outcomes.push_back({j.id, j.attempt, Outcome::Kind::retry, std::nullopt, std::nullopt, R"({"message":"x"})"});
      else
        outcomes.push_back({j.id, j.attempt, Outcome::Kind::completed});
      progress.push_back({j.id, j.attempt, R"({"percent":50})"});
    }
    std::atomic<int> ready{0};
    std::string cancel_error;
    std::thread other([&] {
      ++ready;
      while (ready.load() < 2) {
      }
      try {
        JobFilter f;
        f.queues = {"race"};
        canceller->cancel_matching(f, false);
      } catch (const Error& e) {
        cancel_error = e.what();
      }
    });
    ++ready;
    while (ready.load() < 2) {
    }
    try {
      if (kind == 3)
        worker->set_progress(w, progress);
      else
        worker->complete(w, outcomes, kind == 1);
    } catch (const Error& e) {
      errors.emplace_back(std::string("outcome batch: ") + e.what());
    }
    other.join();
    if (!cancel_error.empty()) errors.push_back("cancel: " + cancel_error);
    s.exec("DELETE FROM jobs");
    ++rounds;
  }
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  INFO("rounds: " << rounds << "\n" << all);
  CHECK(errors.empty());
  CHECK(rounds >= 4);
}

TEST_CASE("batch enqueues sharing unique keys in opposite orders never deadlock", "[store][locking]") {
  TestSchema s;
  auto one = s.open();
  auto two = s.open();
  constexpr int n = 100;
  std::vector<std::string> errors;
  int rounds = 0;
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < until && errors.empty()) {
    std::vector<EnqueueParams> up(n), down(n);
    for (int i = 0; i < n; ++i) {
      up[i].kind = down[n - 1 - i].kind = "k";
      up[i].unique_key = down[n - 1 - i].unique_key = "r" + std::to_string(rounds) + "-" + std::to_string(1000 + i);
    }
    std::atomic<int> ready{0};
    std::string other_error;
    std::thread other([&] {
      ++ready;
      while (ready.load() < 2) {
      }
      try {
        two->insert_batch(down);
      } catch (const Error& e) {
        other_error = e.what();
      }
    });
    ++ready;
    while (ready.load() < 2) {
    }
    try {
      one->insert_batch(up);
    } catch (const Error& e) {
      errors.emplace_back(e.what());
    }
    other.join();
    if (!other_error.empty()) errors.push_back(other_error);
    ++rounds;
  }
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  INFO("rounds: " << rounds << "\n" << all);
  CHECK(errors.empty());
  CHECK(s.scalar("SELECT count(*) FROM jobs") == std::to_string(rounds * n));
}

TEST_CASE("a worker stops a run whose job was taken from it at its next heartbeat", "[worker][liveness]") {
  TestSchema s;
  auto store = s.open();
  WorkerOptions o;
  o.store = s.options();
  o.worker.queues = {{"default", 2}};
  o.worker.poll_interval = 50ms;
  o.worker.heartbeat_interval = 100ms;
  o.version = "test";
  Worker w(o);
  std::atomic<int> stopped{0};
  w.register_handler("block", [&](JobContext& ctx) {
    // Runs until the worker asks it to stop.
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    cv.wait(lock, ctx.stop, [] { return false; });
    ++stopped;
    return HandlerResult{};
  });
  w.start();
  EnqueueParams p;
  p.kind = "block";
  const auto id = store->insert(p).job.id;
  const auto sid = std::to_string(id);
  REQUIRE(wait_until([&] { return w.stats().running == 1; }, 10s));
  REQUIRE(s.scalar("SELECT state FROM jobs WHERE id = " + sid) == "running");
  // As a rescue would: the job leaves this worker while it runs here.
  s.exec("UPDATE jobs SET state = 'scheduled', run_at = now() + interval '1 hour' WHERE id = " + sid);
  REQUIRE(wait_until([&] { return stopped.load() == 1 && w.stats().running == 0; }, 5s));
  // Its outcome is refused: the job stays as the rescue left it.
  CHECK(s.scalar("SELECT state || ' ' || attempt FROM jobs WHERE id = " + sid) == "scheduled 1");
  w.stop(1s);
}
