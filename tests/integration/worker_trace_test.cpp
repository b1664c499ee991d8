// The trace context of each attempt in the embedded worker: in-process handlers see it in their
// context, http handlers get traceparent and tracestate headers, and a failed attempt's error
// entry names its span.
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <vector>

#include "daemon_process.hpp"
#include "one_shot_server.hpp"
#include "taskq/core/trace.hpp"
#include "taskq/queue/client.hpp"
#include "taskq/worker/worker.hpp"
#include "test_db.hpp"

using taskq::worker::AttemptTrace;
using taskq::worker::HandlerResult;
using taskq::worker::JobContext;
using taskq::worker::Worker;
using taskq::worker::WorkerOptions;

using taskq::config::HttpHandlerConfig;
using taskq::config::KindConfig;

using taskq::queue::Client;

using namespace taskq;
using namespace std::chrono_literals;
using taskq::test::TestSchema;
using taskq::test::wait_until;

namespace {

const std::string tid = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string parent_span = "00f067aa0ba902b7";
const std::string v00 = "00-" + tid + "-" + parent_span + "-01";

WorkerOptions options_for(const TestSchema& s) {
  WorkerOptions o;
  o.store = s.options();
  o.worker.queues = {{"default", 2}};
  o.worker.poll_interval = 50ms;
  o.worker.heartbeat_interval = 100ms;
  o.version = "test";
  return o;
}

JobId enqueue_traced(Client& c, const std::string& kind, int max_attempts = 25) {
  EnqueueParams p;
  p.kind = kind;
  p.max_attempts = max_attempts;
  p.traceparent = v00;
  p.tracestate = "rojo=1";
  return c.enqueue(p).job.id;
}

bool wait_state(Client& c, JobId id, JobState state, std::chrono::milliseconds timeout = 15s) {
  return wait_until([&] { return c.get(id)->state == state; }, timeout);
}

}  // namespace

TEST_CASE("in-process handlers see each attempt's span and a failed attempt's error names it", "[worker][trace]") {
  TestSchema s;
  Client client(s.open());
  Worker w(options_for(s));
  std::mutex mu;
  std::vector<AttemptTrace> seen;
  w.register_handler("twice", [&](JobContext& ctx) {
    std::lock_guard lock(mu);
    seen.push_back(ctx.trace);
    HandlerResult r;
    if (seen.size() == 1) {
      r.kind = HandlerResult::Kind::retry;
      r.message = "first attempt fails";
    }
    return r;
  });
  w.start();
  const auto id = enqueue_traced(client, "twice");
  REQUIRE(wait_state(client, id, JobState::completed));
  w.stop(1s);
  std::lock_guard lock(mu);
  REQUIRE(seen.size() == 2);
  for (const auto& t : seen) {
    CHECK(t.trace_id == tid);
    CHECK(t.traceparent == "00-" + tid + "-" + t.span_id + "-01");
    CHECK(t.span_id != parent_span);
    CHECK(t.tracestate == "rojo=1");
  }
  CHECK(seen[0].span_id != seen[1].span_id);
  const auto job = *client.get(id);
  CHECK(job.traceparent == v00);  // the job's own context is not changed by its attempts
  CHECK(job.errors.find("\"span_id\": \"" + seen[0].span_id + "\"") != std::string::npos);  // jsonb text
}

TEST_CASE("an http kind sends the attempt's traceparent and tracestate headers", "[worker][http][trace]") {
  TestSchema s;
  Client client(s.open());
  taskq::test::OneShotServer server([](const auto&) {
    taskq::test::http::response<taskq::test::http::string_body> res{taskq::test::http::status::ok, 11};
    return std::optional(res);
  });
  auto opts = options_for(s);
  KindConfig k;
  k.name = "notify";
  // A configured traceparent header is replaced by the attempt's.
  k.http = HttpHandlerConfig{server.url("/hook"), std::chrono::seconds{5}, {{"traceparent", "forged"}}};
  opts.kinds["notify"] = k;
  Worker w(opts);
  w.start();
  const auto id = enqueue_traced(client, "notify");
  REQUIRE(wait_state(client, id, JobState::completed));
  w.stop(1s);
  const auto& req = server.request();
  const std::string header(req["traceparent"]);
  INFO("traceparent header: " << header);
  const auto t = parse_traceparent(header);
  REQUIRE(t);
  CHECK(t->trace_id == tid);
  CHECK(t->parent_id != parent_span);
  CHECK(header.substr(53) == "01");
  CHECK(std::string(req["tracestate"]) == "rojo=1");
  CHECK(req.count("traceparent") == 1);
}
