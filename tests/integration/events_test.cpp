// Job events of migration 3 against a real PostgreSQL: nothing is announced without a live
// event listener; with one, every insert, claim, outcome, progress, cancel and delete is, in
// notifications that stay under PostgreSQL's 8,000-byte payload limit however large the batch.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>

#include "taskq/core/error.hpp"
#include "test_db.hpp"

using taskq::store::EventWatch;
using taskq::store::Outcome;
using taskq::store::Store;

using namespace taskq;
using namespace std::chrono_literals;
using taskq::test::TestSchema;

namespace {

EnqueueParams job(const std::string& kind, const std::string& queue = "default") {
  EnqueueParams p;
  p.kind = kind;
  p.queue = queue;
  return p;
}

struct Entry {
  std::string op;
  JobId id;
  std::string queue, state;
  std::int64_t attempt;
  boost::json::value progress;
};

// Everything announced within `timeout` (until a quiet 200 ms after the first notification).
std::vector<Entry> collect(Store& listener, std::size_t* largest = nullptr, Duration timeout = 2s) {
  std::vector<Entry> out;
  auto wait = timeout;
  for (;;) {
    const auto got = listener.wait_notifications(wait);
    if (got.empty()) break;
    for (const auto& n : got) {
      REQUIRE(n.event == "events");
      if (largest) *largest = std::max(*largest, n.payload.size());
      const auto payload = boost::json::parse(n.payload);
      for (const auto& e : payload.as_array()) {
        const auto& a = e.as_array();
        out.push_back({std::string(a[0].as_string()), a[1].as_int64(), std::string(a[2].as_string()),
                       std::string(a[4].as_string()), a[5].as_int64(), a[6]});
      }
    }
    wait = 200ms;
  }
  return out;
}

const EventWatch everything{{}, {}, true, 1};

}  // namespace

TEST_CASE("events: nothing is announced without a live listener", "[events]") {
  TestSchema s;
  auto listener = s.open();
  listener->listen({"events"});
  auto store = s.open();
  CHECK_FALSE(store->events_wanted());
  store->insert(job("k"));
  const auto worker = store->register_worker({"h", 1, {"default"}, 1, "t"});
  CHECK(store->claim(worker, "default", 10).size() == 1);
  CHECK(collect(*listener, nullptr, 300ms).empty());
  // An expired row announces nothing either.
  s.exec("INSERT INTO event_listeners (name, host, pid, expires_at) VALUES ('old', 'h', 1, now() - interval '1s')");
  store->insert(job("k"));
  CHECK_FALSE(store->events_wanted());
  CHECK(collect(*listener, nullptr, 300ms).empty());
}

TEST_CASE("events: inserts, claims, progress, outcomes, cancels and deletes are announced while a listener lives",
          "[events]") {
  TestSchema s;
  auto listener = s.open();
  listener->listen({"events"});
  auto store = s.open();
  store->register_event_listener("apid-1", "h", 1, everything, 30s);
  CHECK(store->events_wanted());

  const auto a = store->insert(job("k", "q1")).job.id;
  const auto b = store->insert(job("k", "q1")).job.id;
  auto got = collect(*listener);
  REQUIRE(got.size() == 2);
  CHECK((got[0].op == "s" && got[0].id == a && got[0].state == "available" && got[0].queue == "q1"));

  const auto worker = store->register_worker({"h", 1, {"q1"}, 2, "t"});
  REQUIRE(store->claim(worker, "q1", 2).size() == 2);
  got = collect(*listener);
  REQUIRE(got.size() == 2);
  CHECK((got[0].id == a && got[0].state == "running" && got[0].attempt == 1));

  store->set_progress(worker, {{a, 1, R"({"percent": 40, "message": "m"})"}});
  got = collect(*listener);
  REQUIRE(got.size() == 1);
  CHECK((got[0].op == "p" && got[0].id == a && got[0].progress.at("percent").as_int64() == 40));

  Outcome done{a, 1, Outcome::Kind::completed};
  done.result = R"({"ok": true})";
  Outcome retry{b, 1, Outcome::Kind::retry};
  retry.error = R"({"message": "boom"})";
  CHECK(store->complete(worker, {done, retry}) == 2);
  got = collect(*listener);
  REQUIRE(got.size() == 2);
  std::map<JobId, std::string> states;
  for (const auto& e : got) states[e.id] = e.state;
  CHECK(states[a] == "completed");
  CHECK((states[b] == "scheduled" || states[b] == "available"));

  const auto c = store->insert(job("k", "q2")).job.id;
  (void)collect(*listener);
  store->cancel({c}, false);
  got = collect(*listener);
  REQUIRE(got.size() == 1);
  CHECK((got[0].id == c && got[0].state == "cancelled"));

  // A running job deleted at completion (worker.delete_completed) is announced as "d".
  const auto d = store->insert(job("k", "q3")).job.id;
  REQUIRE(store->claim(worker, "q3", 1).size() == 1);
  (void)collect(*listener);
  CHECK(store->complete(worker, {Outcome{d, 1, Outcome::Kind::completed}}, true) == 1);
  got = collect(*listener);
  REQUIRE(got.size() == 1);
  CHECK((got[0].op == "d" && got[0].id == d && got[0].state == "completed"));

  // Unregistered: silence again.
  store->unregister_event_listener("apid-1");
  CHECK_FALSE(store->events_wanted());
  store->insert(job("k"));
  CHECK(collect(*listener, nullptr, 300ms).empty());
}

TEST_CASE("events: a large batch is announced whole, in order, in payloads under 8000 bytes", "[events]") {
  TestSchema s;
  auto listener = s.open();
  listener->listen({"events"});
  auto store = s.open();
  store->register_event_listener("apid-1", "h", 1, everything, 30s);
  // Long queue names with characters JSON escapes make the entries as large as they get.
  const std::string queue = std::string(60, '"') + std::string(60, 'x');
  std::vector<EnqueueParams> jobs(3000, job("k", queue));
  const auto results = store->insert_batch(jobs);
  std::size_t largest = 0;
  const auto got = collect(*listener, &largest, 5s);
  REQUIRE(got.size() == jobs.size());
  CHECK(largest < 8000);
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].id == results[i].job.id);
    CHECK(got[i].queue == queue);
  }
  // A progress value too large for a payload arrives without its message.
  const auto worker = store->register_worker({"h", 1, {queue}, 1, "t"});
  const auto claimed = store->claim(worker, queue, 1);
  REQUIRE(claimed.size() == 1);
  (void)collect(*listener);
  store->set_progress(worker, {{claimed[0].id, 1, R"({"percent": 9, "message": ")" + std::string(5000, 'm') + "\"}"}});
  const auto p = collect(*listener);
  REQUIRE(p.size() == 1);
  CHECK(p[0].progress.at("percent").as_int64() == 9);
  CHECK(p[0].progress.at("message_truncated").as_bool());
  CHECK_FALSE(p[0].progress.as_object().contains("message"));
}

TEST_CASE("events: only the jobs and queues some listener watches are announced", "[events]") {
  TestSchema s;
  auto listener = s.open();
  listener->listen({"events"});
  auto store = s.open();
  const auto watched = store->insert(job("k", "q1")).job.id;
  const auto other = store->insert(job("k", "q1")).job.id;
  store->register_event_listener("apid-1", "h", 1, EventWatch{{watched}, {}, false, 1}, 30s);
  store->register_event_listener("apid-2", "h", 2, EventWatch{{}, {"q2"}, false, 1}, 30s);
  const auto worker = store->register_worker({"h", 1, {"q1", "q2"}, 4, "t"});
  REQUIRE(store->claim(worker, "q1", 2).size() == 2);
  auto got = collect(*listener);
  REQUIRE(got.size() == 1);  // the watched job only, not its neighbour
  CHECK((got[0].id == watched && got[0].state == "running"));
  const auto in_q2 = store->insert(job("k", "q2")).job.id;
  store->insert(job("k", "q3"));
  got = collect(*listener);
  REQUIRE(got.size() == 1);  // queue q2 is watched, q3 is not
  CHECK(got[0].id == in_q2);
  CHECK(store->complete(
            worker, {Outcome{watched, 1, Outcome::Kind::completed}, Outcome{other, 1, Outcome::Kind::completed}}) == 2);
  got = collect(*listener);
  REQUIRE(got.size() == 1);
  CHECK((got[0].id == watched && got[0].state == "completed"));
  // The watch is rewritten as streams come and go: now every queue.
  store->register_event_listener("apid-1", "h", 1, everything, 30s);
  store->insert(job("k", "q3"));
  CHECK(collect(*listener).size() == 1);
}
