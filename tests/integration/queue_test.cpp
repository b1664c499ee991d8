// The queue API and the store against a real PostgreSQL, one throwaway schema per test.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "taskq/core/error.hpp"
#include "taskq/queue/client.hpp"
#include "test_db.hpp"

using taskq::store::Outcome;
using taskq::store::Store;
using taskq::store::StoreOptions;

using taskq::queue::Client;

using namespace taskq;
using taskq::test::TestSchema;

namespace {

std::unique_ptr<Client> client_for(const TestSchema& s) {
  return std::make_unique<Client>(s.open());
}

EnqueueParams job(std::string kind, std::string queue = "default") {
  EnqueueParams p;
  p.kind = std::move(kind);
  p.queue = std::move(queue);
  return p;
}

template <typename F>
Errc error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  FAIL("no error thrown");
  return Errc::internal;
}

}  // namespace

TEST_CASE("migrate is idempotent and reports status", "[migrate]") {
  TestSchema s(false);
  auto store = s.open();
  auto before = store->migration_status();
  REQUIRE(!before.empty());
  CHECK_FALSE(before[0].applied_at.has_value());
  CHECK(before[0].name == "initial");
  CHECK(store->migrate() == std::vector<int>{1, 2, 3, 4, 5});
  CHECK(store->migrate().empty());
  auto after = store->migration_status();
  CHECK(after[0].applied_at.has_value());
}

TEST_CASE("two concurrent migrators apply each migration once", "[migrate]") {
  TestSchema s(false);
  std::vector<std::vector<int>> applied(2);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([&, i] { applied[i] = s.open()->migrate(); });
  for (auto& t : threads) t.join();
  CHECK(applied[0].size() + applied[1].size() == 5);
  CHECK(s.scalar("SELECT count(*) FROM schema_migrations") == "5");
}

TEST_CASE("a store without migrations says to run migrate", "[migrate]") {
  TestSchema s(false);
  auto c = client_for(s);
  CHECK(error_of([&] { c->enqueue(job("x")); }) == Errc::not_migrated);
}

TEST_CASE("schemas isolate deployments", "[schema]") {
  TestSchema a, b;
  auto ca = client_for(a);
  auto cb = client_for(b);
  ca->enqueue(job("only-in-a"));
  CHECK(ca->list({}).size() == 1);
  CHECK(cb->list({}).empty());
  cb->pause({"default"});
  CHECK(ca->stats(std::nullopt).at(0).paused_at == std::nullopt);
}

TEST_CASE("enqueue stores every option", "[enqueue]") {
  TestSchema s;
  auto c = client_for(s);
  EnqueueParams p = job("email.send", "mail");
  p.args = R"({"to": "ada@example.com", "n": [1, 2]})";
  p.priority = 1;
  p.max_attempts = 3;
  p.timeout = std::chrono::seconds{30};
  p.tags = {"a", "b'; DROP TABLE jobs; --"};
  p.metadata = R"({"team": "growth"})";
  const auto r = c->enqueue(p);
  CHECK_FALSE(r.duplicate);
  const Job j = c->get_existing(r.job.id);
  CHECK(j.queue == "mail");
  CHECK(j.kind == "email.send");
  CHECK(j.state == JobState::available);
  CHECK(j.args == R"({"n": [1, 2], "to": "ada@example.com"})");
  CHECK(j.priority == 1);
  CHECK(j.max_attempts == 3);
  CHECK(j.timeout == std::chrono::seconds{30});
  CHECK(j.tags == std::vector<std::string>{"a", "b'; DROP TABLE jobs; --"});
  CHECK(j.metadata == R"({"team": "growth"})");
  CHECK(j.errors == "[]");
  CHECK(s.scalar("SELECT count(*) FROM jobs") == "1");
}

TEST_CASE("future jobs are scheduled, and promoted when due", "[enqueue]") {
  TestSchema s;
  auto c = client_for(s);
  EnqueueParams later = job("later");
  later.delay = std::chrono::hours{1};
  EnqueueParams past = job("past");
  past.run_at = SystemClock::instance().now() - std::chrono::hours{1};
  CHECK(c->enqueue(later).job.state == JobState::scheduled);
  CHECK(c->enqueue(past).job.state == JobState::available);
  s.exec("UPDATE jobs SET run_at = now() - interval '1 second' WHERE kind = 'later'");
  CHECK(s.open()->promote_due({}, 100) == 1);
  CHECK(c->list({.states = {JobState::available}}).size() == 2);
}

TEST_CASE("a unique key returns the live job instead of a duplicate", "[enqueue]") {
  TestSchema s;
  auto c = client_for(s);
  EnqueueParams p = job("report");
  p.unique_key = "report-2026-11-23";
  const auto first = c->enqueue(p);
  const auto second = c->enqueue(p);
  CHECK_FALSE(first.duplicate);
  CHECK(second.duplicate);
  CHECK(second.job.id == first.job.id);
  c->cancel({first.job.id}, false);
  const auto third = c->enqueue(p);  // a cancelled job releases its key
  CHECK_FALSE(third.duplicate);
  CHECK(third.job.id != first.job.id);
}

TEST_CASE("invalid jobs are refused before touching the database", "[enqueue]") {
  TestSchema s;
  auto c = client_for(s);
  auto bad = [&](auto mutate) {
    EnqueueParams p = job("k");
    mutate(p);
    return error_of([&] { c->enqueue(p); });
  };
  CHECK(bad([](EnqueueParams& p) { p.args = "{not json"; }) == Errc::invalid_input);
  CHECK(bad([](EnqueueParams& p) { p.args = R"({"a":"\u0000"})"; }) == Errc::invalid_input);
  CHECK(bad([](EnqueueParams& p) { p.priority = 10; }) == Errc::invalid_input);
  CHECK(bad([](EnqueueParams& p) { p.priority = -1; }) == Errc::invalid_input);
  CHECK(bad([](EnqueueParams& p) { p.max_attempts = 0; }) == Errc::invalid_input);
  CHECK(bad([](EnqueueParams& p) { p.queue = ""; }) == Errc::invalid_input);
  CHECK(bad([](EnqueueParams& p) { p.kind = std::string(200, 'k'); }) == Errc::invalid_input);
  CHECK(bad([](EnqueueParams& p) { p.queue = "a\nb"; }) == Errc::invalid_input);
  CHECK(bad([](EnqueueParams& p) { p.metadata = "[1]"; }) == Errc::invalid_input);
  CHECK(bad([](EnqueueParams& p) { p.args = "\"" + std::string(2 * 1024 * 1024, 'x') + "\""; }) == Errc::invalid_input);
  CHECK(s.scalar("SELECT count(*) FROM jobs") == "0");
}

TEST_CASE("JSON Lines batches are all or nothing", "[enqueue][batch]") {
  TestSchema s;
  auto c = client_for(s);
  std::string lines;
  for (int i = 0; i < 1000; ++i) lines += R"({"kind":"resize","args":{"i":)" + std::to_string(i) + "}}\n";
  SECTION("one bad line in the middle inserts nothing and names the line") {
    std::string bad = lines + R"({"kind":"resize","priority":42})" + "\n" + lines;
    std::istringstream in(bad);
    try {
      c->enqueue_jsonl(in, "jobs.jsonl");
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_input);
      CHECK(std::string(e.what()).find("jobs.jsonl:1001: priority") != std::string::npos);
    }
    CHECK(s.scalar("SELECT count(*) FROM jobs") == "0");
  }
  SECTION("a good stream inserts every line, with options and unique keys") {
    std::string good =
        lines + "\n" +
        R"({"kind":"mail","queue":"m","priority":0,"in":"1h","tags":["x"],"metadata":{"k":"v"},"timeout":"30s"})" +
        "\n" + R"({"kind":"u","unique_key":"u1"})" + "\n" + R"({"kind":"u","unique_key":"u1"})" + "\n";
    std::istringstream in(good);
    const auto r = c->enqueue_jsonl(in, "stdin");
    CHECK(r.inserted == 1002);
    CHECK(r.duplicates == 1);
    CHECK(s.scalar("SELECT count(*) FROM jobs") == "1002");
    CHECK(s.scalar("SELECT state FROM jobs WHERE kind = 'mail'") == "scheduled");
    CHECK(s.scalar("SELECT timeout_ms FROM jobs WHERE kind = 'mail'") == "30000");
    CHECK(s.scalar("SELECT tags[1] || (metadata->>'k') FROM jobs WHERE kind = 'mail'") == "xv");
    CHECK(s.scalar("SELECT args->>'i' FROM jobs WHERE kind = 'resize' ORDER BY id DESC LIMIT 1") == "999");
  }
  SECTION("unknown fields and missing kinds are errors") {
    std::istringstream in1(R"({"kind":"a","colour":"red"})");
    CHECK(error_of([&] { c->enqueue_jsonl(in1, "x"); }) == Errc::invalid_input);
    std::istringstream in2(R"({"args":{}})");
    CHECK(error_of([&] { c->enqueue_jsonl(in2, "x"); }) == Errc::invalid_input);
    CHECK(s.scalar("SELECT count(*) FROM jobs") == "0");
  }
}

TEST_CASE("list filters and pages by id", "[list]") {
  TestSchema s;
  auto c = client_for(s);
  for (int i = 0; i < 10; ++i) {
    EnqueueParams p = job(i % 2 ? "odd" : "even", i < 5 ? "a" : "b");
    if (i == 3) p.tags = {"special"};
    c->enqueue(p);
  }
  CHECK(c->list({.queues = {"a"}}).size() == 5);
  CHECK(c->list({.kind = "odd"}).size() == 5);
  CHECK(c->list({.tag = "special"}).size() == 1);
  auto page1 = c->list({.limit = 4});
  REQUIRE(page1.size() == 4);
  auto page2 = c->list({.after_id = page1.back().id, .limit = 4});
  REQUIRE(page2.size() == 4);
  CHECK(page2.front().id > page1.back().id);
  CHECK(c->list({.states = {JobState::failed}}).empty());
}

TEST_CASE("claim hands each job to exactly one of four concurrent workers", "[claim]") {
  TestSchema s;
  auto c = client_for(s);
  constexpr int total = 20000;
  std::int64_t i = 0;
  c->enqueue_many([&](EnqueueParams& p) {
    if (i == total) return false;
    p.kind = "noop";
    p.args = "{\"i\":" + std::to_string(i++) + "}";
    return true;
  });
  std::vector<std::vector<JobId>> claimed(4);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w)
    threads.emplace_back([&, w] {
      auto store = s.open();
      const auto worker = store->register_worker({"test", w, {"default"}, 10, "test"});
      for (;;) {
        auto jobs = store->claim(worker, "default", 37);
        if (jobs.empty()) break;
        std::vector<Outcome> done;
        for (const auto& j : jobs) {
          claimed[w].push_back(j.id);
          done.push_back({j.id});
        }
        store->complete(worker, done);
      }
    });
  for (auto& t : threads) t.join();
  std::vector<JobId> all;
  for (const auto& v : claimed) all.insert(all.end(), v.begin(), v.end());
  CHECK(all.size() == total);
  std::set<JobId> unique(all.begin(), all.end());
  CHECK(unique.size() == total);
  CHECK(s.scalar("SELECT count(*) FROM jobs WHERE state = 'completed' AND attempt = 1") == std::to_string(total));
}

TEST_CASE("claim follows priority, skips paused queues", "[claim]") {
  TestSchema s;
  auto c = client_for(s);
  EnqueueParams low = job("low");
  low.priority = 9;
  EnqueueParams high = job("high");
  high.priority = 0;
  c->enqueue(low);
  c->enqueue(high);
  const auto store_conn = s.open();  // the worker's side, on its own connection
  auto& store = *store_conn;
  const auto w = store.register_worker({"h", 1, {"default"}, 1, "t"});
  c->pause({"default"});
  CHECK(store.claim(w, "default", 10).empty());
  c->resume({"default"});
  auto jobs = store.claim(w, "default", 1);
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].kind == "high");
  CHECK(jobs[0].attempt == 1);
}

TEST_CASE("outcomes: retry backs off, exhausts into failed, records errors and results", "[complete]") {
  TestSchema s;
  auto c = client_for(s);
  EnqueueParams p = job("flaky");
  p.max_attempts = 2;
  const JobId id = c->enqueue(p).job.id;
  const auto store_conn = s.open();  // the worker's side, on its own connection
  auto& store = *store_conn;
  const auto w = store.register_worker({"h", 1, {"default"}, 1, "t"});
  REQUIRE(store.claim(w, "default", 1).size() == 1);
  const auto later = SystemClock::instance().now() + std::chrono::hours{1};
  CHECK(store.complete(w, {{id, 0, Outcome::Kind::retry, std::nullopt, std::nullopt,
                            R"({"message":"boom","attempt":1})", later}}) == 1);
  Job j = c->get_existing(id);
  CHECK(j.state == JobState::scheduled);
  CHECK(j.errors == R"([{"attempt": 1, "message": "boom"}])");
  s.exec("UPDATE jobs SET run_at = now() WHERE id = " + std::to_string(id));
  store.promote_due({"default"}, 10);
  REQUIRE(store.claim(w, "default", 1).size() == 1);
  // A report from another worker does not apply.
  CHECK(store.complete(w + 1000, {{id, 0, Outcome::Kind::completed}}) == 0);
  store.complete(
      w, {{id, 0, Outcome::Kind::retry, std::nullopt, std::nullopt, R"({"message":"boom again"})", std::nullopt}});
  j = c->get_existing(id);
  CHECK(j.state == JobState::failed);
  CHECK(j.finished_at.has_value());
  CHECK(s.scalar("SELECT jsonb_array_length(errors) FROM jobs") == "2");
  // retry gives a job out of attempts one more
  c->retry({id}, false);
  j = c->get_existing(id);
  CHECK(j.state == JobState::available);
  CHECK(j.max_attempts == 3);
  REQUIRE(store.claim(w, "default", 1).size() == 1);
  store.complete(w, {{id, 0, Outcome::Kind::completed, std::nullopt, R"({"ok":true})"}});
  j = c->get_existing(id);
  CHECK(j.state == JobState::completed);
  CHECK(j.result == R"({"ok": true})");
}

TEST_CASE("cancel: waiting jobs end, running jobs get a request, bad ids change nothing", "[cancel]") {
  TestSchema s;
  auto c = client_for(s);
  const JobId a = c->enqueue(job("a")).job.id;
  const JobId b = c->enqueue(job("b")).job.id;
  const auto store_conn = s.open();  // the worker's side, on its own connection
  auto& store = *store_conn;
  const auto w = store.register_worker({"h", 1, {"default"}, 1, "t"});
  REQUIRE(store.claim(w, "default", 1).at(0).id == a);
  CHECK(error_of([&] { c->cancel({a, b, 999999}, false); }) == Errc::not_found);
  CHECK(c->get_existing(b).state == JobState::available);
  auto dry = c->cancel({a, b}, true);
  CHECK(c->get_existing(b).state == JobState::available);
  CHECK(dry.size() == 2);
  auto changes = c->cancel({a, b}, false);
  REQUIRE(changes.size() == 2);
  CHECK(changes[0].cancel_requested);
  CHECK(c->get_existing(a).state == JobState::running);
  CHECK(c->get_existing(a).cancel_requested_at.has_value());
  CHECK(c->get_existing(b).state == JobState::cancelled);
  CHECK(error_of([&] { c->cancel({b}, false); }) == Errc::conflict);
  // The worker's retry of a job with a cancel request ends it as cancelled.
  store.complete(w,
                 {{a, 0, Outcome::Kind::retry, std::nullopt, std::nullopt, R"({"message":"killed"})", std::nullopt}});
  CHECK(c->get_existing(a).state == JobState::cancelled);
  CHECK(error_of([&] { c->retry({999999}, false); }) == Errc::not_found);
}

TEST_CASE("cancel and retry by filter", "[cancel]") {
  TestSchema s;
  auto c = client_for(s);
  for (int i = 0; i < 5; ++i) c->enqueue(job("k", "q1"));
  c->enqueue(job("k", "q2"));
  CHECK(c->cancel_matching({.queues = {"q1"}}, false).size() == 5);
  CHECK(c->list({.states = {JobState::cancelled}}).size() == 5);
  CHECK(c->retry_matching({.queues = {"q1"}, .states = {JobState::cancelled}}, true).size() == 5);
  CHECK(c->list({.states = {JobState::cancelled}}).size() == 5);
  CHECK(c->retry_matching({.queues = {"q1"}, .states = {JobState::cancelled}}, false).size() == 5);
  CHECK(c->list({.states = {JobState::available}}).size() == 6);
}

TEST_CASE("pause, resume and stats", "[queues]") {
  TestSchema s;
  auto c = client_for(s);
  c->enqueue(job("a", "mail"));
  auto changes = c->pause({"mail", "mail"});
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].changed);
  CHECK_FALSE(c->pause({"mail"})[0].changed);
  auto stats = c->stats("mail");
  REQUIRE(stats.size() == 1);
  CHECK(stats[0].paused_at.has_value());
  CHECK(stats[0].available == 1);
  CHECK(stats[0].oldest_available_age.has_value());
  CHECK(c->resume({"mail"})[0].changed);
  CHECK_FALSE(c->resume({"mail"})[0].changed);
  CHECK(c->queues() == std::vector<std::string>{"mail"});
}

TEST_CASE("drain waits for running jobs and times out with the queue left paused", "[queues]") {
  TestSchema s;
  auto c = client_for(s);
  const JobId id = c->enqueue(job("long", "q")).job.id;
  auto worker_store = s.open();
  const auto w = worker_store->register_worker({"h", 1, {"q"}, 1, "t"});
  REQUIRE(worker_store->claim(w, "q", 1).size() == 1);
  CHECK(error_of([&] { c->drain({"q"}, std::chrono::milliseconds{200}, SystemClock::instance()); }) == Errc::timeout);
  CHECK(c->stats("q").at(0).paused_at.has_value());
  std::atomic<bool> finished{false};
  auto report = c->drain({"q"}, std::chrono::seconds{30}, SystemClock::instance(), [&](const std::vector<Job>& r) {
    if (!finished.exchange(true)) {
      CHECK(r.size() == 1);
      worker_store->complete(w, {{id}});
    }
  });
  CHECK(report.waited_for.size() == 1);
  CHECK(c->get_existing(id).state == JobState::completed);
}

namespace {
// A clock that only moves when someone sleeps on it.
class SteppingClock final : public Clock {
 public:
  Timestamp now() const override { return Timestamp{} + std::chrono::duration_cast<Duration>(slept_); }
  std::chrono::steady_clock::time_point steady_now() const override {
    return std::chrono::steady_clock::time_point{} + slept_;
  }
  void sleep_for(std::chrono::steady_clock::duration d) const override { slept_ += d; }
  mutable std::chrono::steady_clock::duration slept_{};
};
}  // namespace

TEST_CASE("drain waits on the clock it is given, so a fake clock runs out an hour without waiting", "[queues]") {
  TestSchema s;
  auto c = client_for(s);
  c->enqueue(job("long", "q"));
  auto worker_store = s.open();
  const auto w = worker_store->register_worker({"h", 1, {"q"}, 1, "t"});
  REQUIRE(worker_store->claim(w, "q", 1).size() == 1);
  SteppingClock clock;
  CHECK(error_of([&] { c->drain({"q"}, std::chrono::hours{1}, clock); }) == Errc::timeout);
  CHECK(clock.slept_ >= std::chrono::hours{1});
}

TEST_CASE("prune deletes old finished jobs in batches", "[prune]") {
  TestSchema s;
  auto c = client_for(s);
  for (int i = 0; i < 25; ++i) c->enqueue(job("p"));
  c->cancel_matching({.kind = "p"}, false);
  c->enqueue(job("keep"));
  s.exec("UPDATE jobs SET finished_at = now() - interval '2 days' WHERE state = 'cancelled'");
  const std::vector<JobState> finals = {JobState::completed, JobState::cancelled, JobState::failed};
  CHECK(c->prune(std::chrono::hours{24}, finals, 10, true).deleted == 25);
  CHECK(c->prune(std::chrono::hours{72}, finals, 10, false).deleted == 0);
  const auto r = c->prune(std::chrono::hours{24}, finals, 10, false);
  CHECK(r.deleted == 25);
  CHECK(r.batches == 3);
  CHECK(s.scalar("SELECT count(*) FROM jobs") == "1");
  CHECK(error_of([&] { c->prune(std::chrono::hours{1}, {JobState::running}, 10, false); }) == Errc::invalid_input);
}

TEST_CASE("an unreachable database is reported as unavailable", "[db]") {
  StoreOptions o;
  o.url = "postgresql://postgres@127.0.0.1:1/postgres";
  o.connect_timeout = std::chrono::seconds{1};
  try {
    Store::open(o);
    FAIL("connected");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::unavailable);
    CHECK(std::string(e.what()).find("127.0.0.1:1") != std::string::npos);
  }
}

TEST_CASE("a batch mixing default and custom jobs keeps line order and every field", "[enqueue][batch]") {
  TestSchema s;
  auto c = client_for(s);
  std::string lines;
  for (int i = 0; i < 300; ++i) {
    // Runs of plain and custom lines, so the stream switches COPY column lists several times.
    if ((i / 7) % 2 == 0)
      lines += R"({"kind":"plain","args":{"i":)" + std::to_string(i) + "}}\n";
    else
      lines += R"({"kind":"custom","priority":2,"tags":["t"],"args":{"i":)" + std::to_string(i) + "}}\n";
  }
  std::istringstream in(lines);
  CHECK(c->enqueue_jsonl(in, "mixed").inserted == 300);
  // Ids follow line order: args.i rises with id.
  CHECK(s.scalar("SELECT count(*) FROM (SELECT (args->>'i')::int AS i, row_number() OVER (ORDER BY id) - 1 AS n "
                 "FROM jobs) x WHERE i <> n") == "0");
  CHECK(s.scalar("SELECT count(*) FROM jobs WHERE kind = 'custom' AND priority = 2 AND tags = '{t}'") == "147");
  CHECK(s.scalar("SELECT count(*) FROM jobs WHERE kind = 'plain' AND priority = 5 AND tags IS NULL AND "
                 "state = 'available'") == "153");
}
