// W3C trace context stored with jobs: every enqueue path (one job, a batch, the COPY stream of
// JSON Lines, unique keys) keeps the caller's traceparent and tracestate or starts a new trace,
// and the job reads them back (get, list, claim).
#include <catch2/catch.hpp>
#include <set>
#include <sstream>

#include "taskq/core/error.hpp"
#include "taskq/core/trace.hpp"
#include "taskq/queue/client.hpp"
#include "test_db.hpp"

using taskq::queue::Client;
using taskq::store::JobFilter;

using namespace taskq;
using taskq::test::TestSchema;

namespace {

const std::string tid = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string v00 = "00-" + tid + "-00f067aa0ba902b7-01";

EnqueueParams job(std::string kind, std::optional<std::string> traceparent = std::nullopt,
                  std::optional<std::string> tracestate = std::nullopt) {
  EnqueueParams p;
  p.kind = std::move(kind);
  p.traceparent = std::move(traceparent);
  p.tracestate = std::move(tracestate);
  return p;
}

// A traceparent the store made up: valid, version 00, sampled.
void check_new_trace(const Job& j) {
  INFO("job " << j.id << " traceparent " << j.traceparent.value_or("NULL"));
  REQUIRE(j.traceparent);
  CHECK(parse_traceparent(*j.traceparent));
  CHECK(j.traceparent->substr(0, 3) == "00-");
  CHECK(j.traceparent->substr(53) == "01");
  CHECK_FALSE(j.tracestate);
}

}  // namespace

TEST_CASE("one job keeps its traceparent (normalized) and tracestate, or gets a new trace", "[trace][enqueue]") {
  TestSchema s;
  Client c(s.open());
  const auto given = c.enqueue(job("k", "01-" + tid + "-00f067aa0ba902b7-01-later", "rojo=1,congo=2"));
  CHECK(given.job.traceparent == v00);  // stored as version 00
  CHECK(given.job.tracestate == "rojo=1,congo=2");
  const auto read = c.get_existing(given.job.id);
  CHECK(read.traceparent == v00);
  CHECK(read.tracestate == "rojo=1,congo=2");

  const auto a = c.enqueue(job("k")).job;
  const auto b = c.enqueue(job("k")).job;
  check_new_trace(a);
  check_new_trace(b);
  CHECK(a.traceparent->substr(3, 32) != b.traceparent->substr(3, 32));

  EnqueueParams unique = job("k", v00);
  unique.unique_key = "u1";
  CHECK(c.enqueue(unique).job.traceparent == v00);
  unique.traceparent = "00-" + tid + "-b7ad6b7169203331-01";
  const auto again = c.enqueue(unique);
  CHECK(again.duplicate);
  CHECK(again.job.traceparent == v00);  // the existing job, as it was

  CHECK_THROWS_WITH(c.enqueue(job("k", "00-" + tid + "-0000000000000000-01")),
                    "traceparent: parent id must not be all zeros");
  CHECK_THROWS_WITH(c.enqueue(job("k", std::nullopt, "rojo=1")), "tracestate: given without a traceparent");
  CHECK(s.scalar("SELECT count(*) FROM jobs") == "4");
}

TEST_CASE("a batch stores each job's own trace context", "[trace][enqueue][batch]") {
  TestSchema s;
  Client c(s.open());
  EnqueueParams unique = job("k", "00-" + tid + "-1111111111111111-00", "u=1");
  unique.unique_key = "b1";
  const auto results = c.enqueue_batch({job("k", v00, "rojo=1"), job("k"), unique});
  REQUIRE(results.size() == 3);
  CHECK(results[0].job.traceparent == v00);
  CHECK(results[0].job.tracestate == "rojo=1");
  check_new_trace(results[1].job);
  CHECK(results[2].job.traceparent == "00-" + tid + "-1111111111111111-00");
  CHECK(results[2].job.tracestate == "u=1");
  CHECK(s.scalar("SELECT count(*) FROM jobs WHERE traceparent = '" + v00 + "' AND tracestate = 'rojo=1'") == "1");

  CHECK_THROWS_WITH(c.enqueue_batch({job("k"), job("k", "00-" + tid + "-00f067aa0ba902b7-0x")}),
                    Catch::StartsWith("jobs[1].traceparent: flags must be 2 lowercase hex digits"));
  CHECK(s.scalar("SELECT count(*) FROM jobs") == "3");
}

TEST_CASE("the JSON Lines stream keeps traceparent fields and plain lines get new traces", "[trace][enqueue][batch]") {
  TestSchema s;
  Client c(s.open());
  // Plain lines go through the short COPY form (the column's default makes their trace), lines
  // with a trace context through the full one, a unique key through an INSERT.
  std::istringstream in(R"({"kind":"plain"}
{"kind":"traced","traceparent":")" +
                        v00 + R"(","tracestate":"rojo=1"}
{"kind":"plain"}
{"kind":"custom","priority":1}
{"kind":"unique","unique_key":"j1","traceparent":")" +
                        v00 + R"("}
)");
  CHECK(c.enqueue_jsonl(in, "jobs.jsonl").inserted == 5);
  JobFilter all;
  const auto jobs = c.list(all);
  REQUIRE(jobs.size() == 5);
  std::set<std::string> trace_ids;
  for (const auto& j : jobs) {
    if (j.kind == "traced" || j.kind == "unique") {
      CHECK(j.traceparent == v00);
      CHECK(j.tracestate == (j.kind == "traced" ? std::optional<std::string>("rojo=1") : std::nullopt));
    } else {
      check_new_trace(j);
      trace_ids.insert(j.traceparent->substr(3, 32));
    }
  }
  CHECK(trace_ids.size() == 3);  // every plain job a trace of its own

  std::istringstream bad(R"({"kind":"a"}
{"kind":"b","traceparent":"00-abc"}
)");
  CHECK_THROWS_WITH(c.enqueue_jsonl(bad, "bad.jsonl"), Catch::StartsWith("bad.jsonl:2: traceparent: too short") &&
                                                           Catch::EndsWith("nothing was enqueued"));
  std::istringstream bad_state(R"({"kind":"a","traceparent":")" + v00 + R"(","tracestate":"Rojo=1"}
)");
  CHECK_THROWS_WITH(c.enqueue_jsonl(bad_state, "state.jsonl"), Catch::StartsWith("state.jsonl:1: tracestate: "));
  CHECK(s.scalar("SELECT count(*) FROM jobs") == "5");
}

TEST_CASE("a claimed job carries its trace context and jobs from before schema 5 have none", "[trace][claim]") {
  TestSchema s;
  Client c(s.open());
  const auto id = c.enqueue(job("k", v00, "rojo=1")).job.id;
  const auto legacy = c.enqueue(job("k")).job.id;
  s.exec("UPDATE jobs SET traceparent = NULL WHERE id = " + std::to_string(legacy));
  CHECK_FALSE(c.get_existing(legacy).traceparent);
  const auto store = s.open();
  const auto w = store->register_worker({"h", 1, {"default"}, 1, "t"});
  const auto claimed = store->claim(w, "default", 10);
  REQUIRE(claimed.size() == 2);
  CHECK(claimed[0].id == id);
  CHECK(claimed[0].traceparent == v00);
  CHECK(claimed[0].tracestate == "rojo=1");
  CHECK_FALSE(claimed[1].traceparent);
}
