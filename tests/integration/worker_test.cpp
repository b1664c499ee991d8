// The embedded worker (taskq::worker::Worker) against a real PostgreSQL: in-process handlers, progress,
// exceptions, timeouts through the stop token, connections used, graceful stop.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "daemon_process.hpp"
#include "one_shot_server.hpp"
#include "taskq/core/error.hpp"
#include "taskq/queue/client.hpp"
#include "taskq/worker/worker.hpp"
#include "test_db.hpp"

using taskq::worker::HandlerResult;
using taskq::worker::JobContext;
using taskq::worker::Worker;
using taskq::worker::WorkerOptions;

using taskq::config::HttpHandlerConfig;
using taskq::config::KindConfig;

using taskq::store::Outcome;

using taskq::queue::Client;

using namespace taskq;
using namespace std::chrono_literals;
using taskq::test::TestSchema;
using taskq::test::wait_until;

namespace {

WorkerOptions options_for(const TestSchema& s, std::map<std::string, int> queues = {{"default", 4}}) {
  WorkerOptions o;
  o.store = s.options();
  o.worker.queues = std::move(queues);
  o.worker.poll_interval = 50ms;
  o.worker.heartbeat_interval = 100ms;
  o.version = "test";
  return o;
}

JobId enqueue(Client& c, const std::string& kind, const std::string& args = "{}", int max_attempts = 25,
              std::optional<Duration> timeout = std::nullopt) {
  EnqueueParams p;
  p.kind = kind;
  p.args = args;
  p.max_attempts = max_attempts;
  p.timeout = timeout;
  return c.enqueue(p).job.id;
}

bool wait_state(Client& c, JobId id, JobState state, std::chrono::milliseconds timeout = 10s) {
  return wait_until([&] { return c.get(id)->state == state; }, timeout);
}

}  // namespace

TEST_CASE("in-process handlers: result, progress, exceptions, permanent failure", "[worker]") {
  TestSchema s;
  Client client(s.open());
  Worker w(options_for(s));
  w.register_handler("double", [](JobContext& ctx) {
    ctx.progress(50, "halfway");
    HandlerResult r;
    r.result = "{\"job\": " + std::to_string(ctx.job.id) + ", \"args\": " + ctx.job.args + "}";
    return r;
  });
  w.register_handler("throws", [](JobContext&) -> HandlerResult { throw std::runtime_error("disk on fire"); });
  w.register_handler("refuses", [](JobContext&) {
    HandlerResult r;
    r.kind = HandlerResult::Kind::failed;
    r.message = "bad input";
    return r;
  });
  w.start();
  const auto ok = enqueue(client, "double", R"({"n": 21})");
  const auto bad = enqueue(client, "throws", "{}", 2);
  const auto refused = enqueue(client, "refuses");
  REQUIRE(wait_state(client, ok, JobState::completed));
  const auto job = *client.get(ok);
  CHECK(job.result.value_or("") == "{\"job\": " + std::to_string(ok) + ", \"args\": {\"n\": 21}}");
  REQUIRE(job.progress.has_value());
  CHECK(job.progress->find("\"percent\": 50") != std::string::npos);
  CHECK(job.progress->find("halfway") != std::string::npos);

  REQUIRE(wait_state(client, refused, JobState::failed));
  CHECK(client.get(refused)->attempt == 1);
  CHECK(client.get(refused)->errors.find("bad input") != std::string::npos);
  // Retried after the default backoff (about 1 s after the first attempt), then failed.
  REQUIRE(wait_state(client, bad, JobState::failed, 15s));
  const auto failed = *client.get(bad);
  CHECK(failed.attempt == 2);
  CHECK(failed.errors.find("disk on fire") != std::string::npos);
  const auto stats = w.stats();
  CHECK(stats.completed == 1);
  CHECK(stats.failed == 2);
  CHECK(stats.retried == 1);
  w.stop(1s);
  CHECK(s.scalar("SELECT count(*) FROM workers") == "0");
}

TEST_CASE("a timeout sets the stop token and records the attempt as timed out", "[worker]") {
  TestSchema s;
  Client client(s.open());
  Worker w(options_for(s));
  std::atomic<bool> saw_stop{false};
  w.register_handler("spin", [&](JobContext& ctx) {
    while (!ctx.stop.stop_requested()) std::this_thread::sleep_for(1ms);
    saw_stop = true;
    return HandlerResult{};
  });
  w.start();
  const auto id = enqueue(client, "spin", "{}", 1, Duration{std::chrono::milliseconds{100}});
  REQUIRE(wait_state(client, id, JobState::failed));
  CHECK(client.get(id)->errors.find("timed out after 100ms") != std::string::npos);
  REQUIRE(wait_until([&] { return saw_stop.load(); }, 5s));
  w.stop(1s);
}

TEST_CASE("the worker uses at most three connections whatever its concurrency", "[worker]") {
  TestSchema s;
  Client client(s.open());
  Worker w(options_for(s, {{"default", 200}, {"other", 100}}));
  w.start();
  std::vector<JobId> ids;
  for (int i = 0; i < 300; ++i) {
    EnqueueParams p;
    p.kind = "sleep";
    p.args = R"({"ms": 3000})";
    p.queue = i % 3 == 0 ? "other" : "default";
    ids.push_back(client.enqueue(p).job.id);
  }
  REQUIRE(wait_until([&] { return w.stats().running == 300; }, 10s));
  const auto connections =
      s.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'taskq-workerd " + s.name() + "/w" +
               std::to_string(w.worker_id()) + " %'");
  CHECK(connections == "3");
  w.stop(Duration{});
  // Returned without using up an attempt.
  CHECK(s.scalar("SELECT count(*) FROM jobs WHERE state = 'available' AND attempt = 0") == "300");
}

TEST_CASE("an http kind posts the job and records the answer", "[worker][http]") {
  TestSchema s;
  Client client(s.open());
  taskq::test::OneShotServer server([](const auto& req) {
    taskq::test::http::response<taskq::test::http::string_body> res{taskq::test::http::status::ok, 11};
    res.body() = "{\"echo\": " + req.body() + "}";
    return std::optional(res);
  });
  auto opts = options_for(s);
  KindConfig k;
  k.name = "notify";
  k.http = HttpHandlerConfig{server.url("/hooks/notify"), std::chrono::seconds{5}, {}};
  opts.kinds["notify"] = k;
  Worker w(opts);
  w.start();
  const auto id = enqueue(client, "notify", R"({"to": "ada"})");
  REQUIRE(wait_state(client, id, JobState::completed));
  const auto result = client.get(id)->result.value_or("");
  CHECK(result.find("\"id\": " + std::to_string(id)) != std::string::npos);
  CHECK(result.find("\"kind\": \"notify\"") != std::string::npos);
  CHECK(result.find("\"args\": {\"to\": \"ada\"}") != std::string::npos);
  CHECK(server.request().target() == "/hooks/notify");
  w.stop(1s);
}

TEST_CASE("outcomes apply once, to the attempt that ran, for the worker that ran it", "[worker][store]") {
  TestSchema s;
  auto store = s.open();
  Client client(s.open());
  const auto a = enqueue(client, "k");
  const auto b = enqueue(client, "k", "{}", 1);
  const auto c = enqueue(client, "k");
  const auto w = store->register_worker({"host", 1, {"default"}, 4, "test"});
  REQUIRE(store->claim(w, "default", 10).size() == 3);
  // A stale attempt number, another worker: nothing applies.
  CHECK(store->complete(w, {{a, 2, Outcome::Kind::completed}}) == 0);
  CHECK(store->complete(w + 1, {{a, 1, Outcome::Kind::completed}}) == 0);
  CHECK(client.get(a)->state == JobState::running);
  // The right one applies once; a repeat is a no-op.
  CHECK(store->complete(w, {{a, 1, Outcome::Kind::completed}}) == 1);
  CHECK(store->complete(w, {{a, 1, Outcome::Kind::completed}}) == 0);
  // A retry out of attempts fails; a kind's max_attempts replaces the job's.
  CHECK(store->complete(w, {{b, 1, Outcome::Kind::retry, std::nullopt, std::nullopt, R"({"message":"x"})"}}) == 1);
  CHECK(client.get(b)->state == JobState::failed);
  // Returned: available again, the attempt given back, no error recorded.
  CHECK(store->complete(w, {{c, 1, Outcome::Kind::returned}}) == 1);
  const auto back = *client.get(c);
  CHECK(back.state == JobState::available);
  CHECK(back.attempt == 0);
  CHECK(back.errors == "[]");
  // delete_completed removes the row.
  REQUIRE(store->claim(w, "default", 10).size() == 1);
  CHECK(store->complete(w, {{c, 1, Outcome::Kind::completed}}, true) == 1);
  CHECK_FALSE(client.get(c).has_value());
}

TEST_CASE("rescue: jobs of dead and unregistered workers go back, live workers are left alone", "[worker][store]") {
  TestSchema s;
  auto store = s.open();
  Client client(s.open());
  const auto dead = store->register_worker({"h1", 1, {"default"}, 4, "test"});
  const auto live = store->register_worker({"h2", 2, {"other"}, 4, "test"});
  const auto retry = enqueue(client, "k");
  const auto last = enqueue(client, "k", "{}", 1);
  const auto cancel = enqueue(client, "k");
  REQUIRE(store->claim(dead, "default", 10).size() == 3);
  EnqueueParams p;
  p.kind = "k";
  p.queue = "other";
  const auto kept = client.enqueue(p).job.id;
  REQUIRE(store->claim(live, "other", 10).size() == 1);
  REQUIRE(client.cancel({cancel}, false).size() == 1);
  s.exec("UPDATE workers SET heartbeat_at = now() - interval '1 minute' WHERE id = " + std::to_string(dead));

  const auto dry = client.rescue(std::chrono::seconds{30}, true);
  CHECK(dry.jobs.size() == 3);
  CHECK(client.get(retry)->state == JobState::running);  // a dry run changes nothing

  const auto r = client.rescue(std::chrono::seconds{30}, false);
  CHECK(r.dead_workers == std::vector<std::int64_t>{dead});
  REQUIRE(r.jobs.size() == 3);
  CHECK(client.get(retry)->state == JobState::scheduled);
  CHECK(client.get(retry)->errors.find("worker lost: worker " + std::to_string(dead) + " (h1 pid 1)") !=
        std::string::npos);
  CHECK(client.get(last)->state == JobState::failed);
  CHECK(client.get(cancel)->state == JobState::cancelled);
  CHECK(client.get(kept)->state == JobState::running);

  // A worker row that is gone: its running jobs are rescued too, once the worker has had a grace
  // to heartbeat again (it gets a placeholder row meanwhile).
  s.exec("DELETE FROM workers WHERE id = " + std::to_string(live));
  const auto vanished = client.rescue(std::chrono::seconds{30}, false);
  CHECK(vanished.jobs.empty());
  CHECK(vanished.vanished_workers == std::vector<std::int64_t>{live});
  s.exec("UPDATE workers SET heartbeat_at = now() - interval '1 minute' WHERE id = " + std::to_string(live));
  const auto gone = client.rescue(std::chrono::seconds{30}, false);
  REQUIRE(gone.jobs.size() == 1);
  CHECK(client.get(kept)->errors.find("is no longer registered") != std::string::npos);
}
