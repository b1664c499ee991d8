// Handler output reaching PostgreSQL: the completer isolates rows PostgreSQL refuses (and writes
// the rest), the errors history of a job is capped, progress writes are coalesced, and what an
// in-process handler reports is cleaned.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "completer.hpp"
#include "daemon_process.hpp"
#include "taskq/queue/client.hpp"
#include "taskq/worker/worker.hpp"
#include "test_db.hpp"

using taskq::worker::HandlerResult;
using taskq::worker::JobContext;
using taskq::worker::Worker;
using taskq::worker::WorkerOptions;

using taskq::store::Outcome;

using taskq::queue::Client;

using namespace taskq;
using namespace std::chrono_literals;
using taskq::test::TestSchema;
using taskq::test::wait_until;
using taskq::worker::Completer;
using taskq::worker::OutcomeNote;

namespace {

JobId enqueue(Client& c, const std::string& kind, int max_attempts = 25) {
  EnqueueParams p;
  p.kind = kind;
  p.max_attempts = max_attempts;
  return c.enqueue(p).job.id;
}

std::string field(const TestSchema& s, JobId id, const std::string& expr) {
  return s.scalar("SELECT (" + expr + ")::text FROM jobs WHERE id = " + std::to_string(id));
}

Outcome outcome(JobId id, Outcome::Kind kind, std::optional<std::string> result = {},
                std::optional<std::string> error = {}) {
  Outcome o;
  o.id = id;
  o.attempt = 1;
  o.kind = kind;
  o.result = std::move(result);
  o.error = std::move(error);
  return o;
}

}  // namespace

TEST_CASE("the completer writes a batch around the rows PostgreSQL refuses, recording them as failed attempts",
          "[worker][completer]") {
  TestSchema s;
  Client client(s.open());
  auto store = s.open();
  std::vector<JobId> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(enqueue(client, "k", i == 5 ? 1 : 25));
  const auto w = store->register_worker({"host", 1, {"default"}, 8, "test"});
  REQUIRE(store->claim(w, "default", 10).size() == 6);

  std::atomic<std::size_t> written{0};
  Completer completer("completer", s.options(), w, false,
                      [&](const std::vector<Outcome>& done, std::size_t) { written += done.size(); });
  completer.connect_or_throw();
  completer.start();
  const auto retry_at = SystemClock{}.now() + std::chrono::hours{1};
  auto push = [&](Outcome o) { completer.push(std::move(o), OutcomeNote{"default", "k", retry_at}); };
  // Progress first: a value PostgreSQL refuses is dropped, the other written.
  completer.push_progress({ids[0], 1, R"({"percent": 10, "message": "ok"})"}, "default", "k");
  completer.push_progress({ids[1], 1, R"({"percent": 10, "message": "\u0000"})"}, "default", "k");
  push(outcome(ids[0], Outcome::Kind::completed, R"({"fine": true})"));
  // An error entry built by hand with \u0000, which jsonb refuses.
  push(outcome(ids[1], Outcome::Kind::retry, std::nullopt, R"({"attempt": 1, "message": "nul \u0000 here"})"));
  push(outcome(ids[2], Outcome::Kind::completed));
  // A result that is JSON but beyond PostgreSQL's numeric range.
  push(outcome(ids[3], Outcome::Kind::completed, "[1e1000000]"));
  push(outcome(ids[4], Outcome::Kind::failed, std::nullopt, R"({"attempt": 1, "message": "gave up"})"));
  push(outcome(ids[5], Outcome::Kind::completed, R"({"a": "\ud800"})"));  // a lone surrogate, out of attempts

  REQUIRE(wait_until([&] { return completer.pending() == 0 && written == 6; }, 10s));
  CHECK(field(s, ids[0], "state") == "completed");
  CHECK(field(s, ids[0], "result->>'fine'") == "true");
  CHECK(field(s, ids[0], "progress->>'message'") == "ok");
  CHECK(field(s, ids[1], "progress").empty());  // dropped
  CHECK(field(s, ids[2], "state") == "completed");
  CHECK(field(s, ids[4], "state") == "failed");
  CHECK(field(s, ids[4], "errors->0->>'message'") == "gave up");

  // The refused outcomes became failed attempts saying why: retried at the given time, or
  // failed when out of attempts.
  CHECK(field(s, ids[1], "state") == "scheduled");
  CHECK(field(s, ids[1], "run_at > now() + interval '50 minutes'") == "true");
  CHECK(field(s, ids[1], "errors->0->>'message'") ==
        "outcome refused by PostgreSQL: unsupported Unicode escape sequence; the attempt's error was: nul  here");
  CHECK(field(s, ids[3], "state") == "scheduled");
  CHECK(field(s, ids[3], "result").empty());
  CHECK(field(s, ids[3], "errors->0->>'message'") == "result: refused by PostgreSQL: value overflows numeric format");
  CHECK(field(s, ids[5], "state") == "failed");
  CHECK(field(s, ids[5], "errors->0->>'message'") ==
        "result: refused by PostgreSQL: invalid input syntax for type json");
  CHECK(completer.stop(1s) == 0);
}

TEST_CASE("a replacement refused again is sent bare, then the outcome is given up", "[worker][completer]") {
  OutcomeNote note{"q", "k", Timestamp{}};
  const Outcome refused = outcome(7, Outcome::Kind::completed, "[1e1000000]");
  auto first = Completer::replacement(refused, note, "complete jobs: value overflows numeric format");
  REQUIRE(first.has_value());
  CHECK(first->kind == Outcome::Kind::retry);
  CHECK(first->error.has_value());
  CHECK_FALSE(first->result.has_value());
  auto second = Completer::replacement(*first, note, "complete jobs: still refused");
  REQUIRE(second.has_value());
  CHECK(second->kind == Outcome::Kind::retry);
  CHECK_FALSE(second->error.has_value());
  CHECK_FALSE(Completer::replacement(*second, note, "complete jobs: refused").has_value());
}

TEST_CASE("a job keeps its first error entry and the last 10, and counts the ones dropped", "[worker][store]") {
  TestSchema s;
  Client client(s.open());
  auto store = s.open();
  const auto id = enqueue(client, "k", 100);
  const auto w = store->register_worker({"host", 1, {"default"}, 1, "test"});
  for (int attempt = 1; attempt <= 15; ++attempt) {
    REQUIRE(store->claim(w, "default", 1).size() == 1);
    Outcome o = outcome(
        id, Outcome::Kind::retry, std::nullopt,
        R"({"attempt": )" + std::to_string(attempt) + R"(, "message": "try )" + std::to_string(attempt) + "\"}");
    o.attempt = attempt;
    o.run_at = SystemClock{}.now() - std::chrono::seconds{1};
    REQUIRE(store->complete(w, {o}) == 1);
    INFO("after attempt " << attempt << ": " << field(s, id, "errors"));
    const auto length = std::stoi(field(s, id, "jsonb_array_length(errors)"));
    CHECK(length == std::min(attempt, 11) + (attempt > 11 ? 1 : 0));
  }
  CHECK(field(s, id, "errors->0->>'message'") == "try 1");
  CHECK(field(s, id, "errors->1->>'dropped'") == "4");  // attempts 2 to 5
  CHECK(field(s, id, "errors->1->>'message'") == "4 error entries dropped: the first and the last 10 are kept");
  CHECK(field(s, id, "errors->2->>'message'") == "try 6");
  CHECK(field(s, id, "errors->11->>'message'") == "try 15");
}

TEST_CASE("progress is written at most once a second per job, and the last value before the outcome",
          "[worker][progress]") {
  TestSchema s;
  Client client(s.open());
  // Every write of a job's progress, counted by a trigger.
  s.exec("CREATE TABLE progress_writes (id bigint, progress jsonb)");
  s.exec("CREATE FUNCTION count_progress() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO \"" + s.name() +
         "\".progress_writes VALUES (NEW.id, NEW.progress); RETURN NEW; END $$");
  s.exec(
      "CREATE TRIGGER count_progress AFTER UPDATE OF progress ON jobs FOR EACH ROW "
      "WHEN (NEW.progress IS DISTINCT FROM OLD.progress) EXECUTE FUNCTION count_progress()");
  WorkerOptions o;
  o.store = s.options();
  o.worker.queues = {{"default", 2}};
  o.worker.poll_interval = 50ms;
  o.worker.heartbeat_interval = 100ms;
  Worker w(o);
  std::atomic<long> reports{0};
  w.register_handler("chatty", [&](JobContext& ctx) {
    const auto until = std::chrono::steady_clock::now() + 1500ms;
    for (int i = 0; std::chrono::steady_clock::now() < until; ++i) {
      ctx.progress(i % 100, "step " + std::to_string(i));
      ++reports;
    }
    ctx.progress(100, "done");
    return HandlerResult{};
  });
  w.start();
  const auto id = enqueue(client, "chatty");
  REQUIRE(wait_until([&] { return client.get(id)->state == JobState::completed; }, 10s));
  const auto writes = std::stol(s.scalar("SELECT count(*) FROM progress_writes"));
  INFO(reports.load() << " reports, " << writes << " writes");
  CHECK(reports > 1000);
  CHECK(writes >= 2);
  CHECK(writes <= 4);  // at once, at 1 s, the last one: 1.5 s of reports
  CHECK(field(s, id, "progress->>'message'") == "done");
  w.stop(1s);
}

TEST_CASE("an in-process handler's messages and results are cleaned, a result that is not JSON fails it", "[worker]") {
  TestSchema s;
  Client client(s.open());
  WorkerOptions o;
  o.store = s.options();
  o.worker.queues = {{"default", 4}};
  o.worker.poll_interval = 50ms;
  o.worker.heartbeat_interval = 100ms;
  Worker w(o);
  w.register_handler("messy", [](JobContext&) {
    HandlerResult r;
    r.kind = HandlerResult::Kind::failed;
    r.message = std::string("bad \xff bytes and a \0 NUL", 23);
    return r;
  });
  w.register_handler("nul_result", [](JobContext& ctx) {
    ctx.progress(5, std::string("p\0\xc3", 3));
    HandlerResult r;
    r.result = R"({"a": "\u0000", "b": "\udfff"})";
    return r;
  });
  w.register_handler("not_json", [](JobContext&) {
    HandlerResult r;
    r.result = "done!";
    return r;
  });
  w.start();
  const auto messy = enqueue(client, "messy", 1);
  const auto nul = enqueue(client, "nul_result");
  const auto bad = enqueue(client, "not_json", 1);
  REQUIRE(wait_until([&] { return client.get(messy)->state == JobState::failed; }, 10s));
  CHECK(field(s, messy, "errors->0->>'message'") == "bad \xef\xbf\xbd bytes and a  NUL");
  REQUIRE(wait_until([&] { return client.get(nul)->state == JobState::completed; }, 10s));
  CHECK(field(s, nul, "result::text") == "{\"a\": \"\", \"b\": \"\xef\xbf\xbd\"}");
  CHECK(field(s, nul, "progress->>'message'") == "p\xef\xbf\xbd");
  REQUIRE(wait_until([&] { return client.get(bad)->state == JobState::failed; }, 10s));
  CHECK(field(s, bad, "errors->0->>'message'").rfind("result: not valid JSON: ", 0) == 0);
  w.stop(1s);
}
