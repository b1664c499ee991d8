// The job counts of migration 4 (queue_counts and its deltas, kept by triggers on jobs) stay
// equal to count(*) through every kind of write: enqueue one, a group and a COPY stream, claim,
// each outcome, deletion at completion, cancel, retry, promotion, prune, TRUNCATE, and workers
// writing at once.
#include <catch2/catch.hpp>
#include <map>
#include <thread>

#include "taskq/queue/client.hpp"
#include "test_db.hpp"

using taskq::store::JobFilter;
using taskq::store::Outcome;
using taskq::store::Store;

using taskq::queue::Client;

using namespace taskq;
using taskq::test::TestSchema;

namespace {

EnqueueParams job(const std::string& queue, std::optional<Timestamp> run_at = std::nullopt) {
  EnqueueParams p;
  p.kind = "k";
  p.queue = queue;
  p.run_at = run_at;
  return p;
}

using Counts = std::map<std::pair<std::string, std::string>, std::int64_t>;

Counts from_stats(Store& store) {
  Counts out;
  for (const auto& q : store.stats(std::nullopt)) {
    const std::pair<const char*, std::int64_t> states[] = {{"scheduled", q.scheduled}, {"available", q.available},
                                                           {"running", q.running},     {"completed", q.completed},
                                                           {"failed", q.failed},       {"cancelled", q.cancelled}};
    for (const auto& [state, n] : states)
      if (n != 0) out[{q.queue, state}] = n;
  }
  return out;
}

Counts counted(const TestSchema& db) {
  Counts out;
  const auto text = db.scalar(
      "SELECT COALESCE(string_agg(queue || ' ' || state || ' ' || n, ',' ORDER BY queue, state), '') "
      "FROM (SELECT queue, state, count(*) AS n FROM jobs GROUP BY queue, state) c");
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const auto row = text.substr(start, end - start);
    const auto a = row.find(' '), b = row.rfind(' ');
    out[{row.substr(0, a), row.substr(a + 1, b - a - 1)}] = std::stoll(row.substr(b + 1));
    start = end + 1;
  }
  return out;
}

void require_counts_match(const TestSchema& db, Store& store) {
  const auto expected = counted(db);
  REQUIRE(!expected.empty());
  CHECK(from_stats(store) == expected);
  db.exec("SELECT fold_queue_counts()");  // folded or not, the same answer
  CHECK(db.scalar("SELECT count(*) FROM queue_count_deltas") == "0");
  CHECK(from_stats(store) == expected);
}

}  // namespace

TEST_CASE("queue counts equal count(*) through a mixed workload", "[integration][stats]") {
  TestSchema db;
  const auto store_conn = db.open();
  Store& store = *store_conn;
  auto client = std::make_unique<Client>(store, EnqueueLimits{});  // the same session
  const auto later = store.now() + std::chrono::hours{1};
  const auto past = store.now() - std::chrono::seconds{1};

  for (int i = 0; i < 5; ++i) store.insert(job("a"));
  std::vector<EnqueueParams> group;
  for (int i = 0; i < 30; ++i) group.push_back(job(i % 2 ? "a" : "b"));
  for (int i = 0; i < 6; ++i) group.push_back(job("b", later));
  for (int i = 0; i < 4; ++i) group.push_back(job("c", past));
  store.insert_batch(group);
  int streamed = 0;
  store.insert_stream([&](EnqueueParams& p) {
    if (streamed == 60) return false;
    p = job(streamed++ % 3 ? "a" : "c");
    return true;
  });
  require_counts_match(db, store);

  const auto w = store.register_worker({"host", 1, {"a", "b"}, 100, "test"});
  auto claimed = store.claim(w, "a", 40);
  REQUIRE(claimed.size() == 40);
  std::vector<Outcome> outcomes;
  const Outcome::Kind kinds[] = {Outcome::Kind::completed, Outcome::Kind::retry,     Outcome::Kind::failed,
                                 Outcome::Kind::snoozed,   Outcome::Kind::cancelled, Outcome::Kind::returned};
  for (std::size_t i = 0; i < 30; ++i) {
    Outcome o{claimed[i].id, claimed[i].attempt, kinds[i % 6]};
    if (o.kind == Outcome::Kind::retry || o.kind == Outcome::Kind::snoozed) o.run_at = later;
    if (o.kind == Outcome::Kind::failed || o.kind == Outcome::Kind::retry) o.error = R"({"message": "no"})";
    outcomes.push_back(o);
  }
  store.complete(w, outcomes);
  std::vector<Outcome> deleted;
  for (std::size_t i = 30; i < 35; ++i) deleted.push_back({claimed[i].id, claimed[i].attempt});
  store.complete(w, deleted, true);  // completed rows deleted at once
  store.set_progress(w, {{claimed[35].id, claimed[35].attempt, R"({"percent": 5})"}});
  require_counts_match(db, store);

  const auto b_running = store.claim(w, "b", 1);
  REQUIRE(b_running.size() == 1);
  store.cancel({claimed[36].id, b_running[0].id}, false);  // running: a cancel request, same state
  JobFilter a_waiting;
  a_waiting.queues = {"a"};
  a_waiting.states = {JobState::available};
  a_waiting.limit = 3;
  std::vector<JobId> waiting;
  for (const auto& j : store.list(a_waiting)) waiting.push_back(j.id);
  store.cancel(waiting, false);
  JobFilter b;
  b.queues = {"b"};
  b.states = {JobState::available, JobState::scheduled};
  store.cancel_matching(b, false);
  JobFilter failed_or_cancelled;
  failed_or_cancelled.states = {JobState::failed, JobState::cancelled};
  failed_or_cancelled.limit = 5;
  const auto some = store.list(failed_or_cancelled);
  std::vector<JobId> again;
  for (const auto& j : some) again.push_back(j.id);
  store.retry(again, false);
  store.promote_due({}, 100);
  require_counts_match(db, store);

  store.prune_batch(Duration{}, {JobState::completed, JobState::cancelled}, 1000, false);
  db.exec("DELETE FROM jobs WHERE queue = 'c' AND id % 2 = 0");
  require_counts_match(db, store);

  // Workers claiming and completing at once, each statement adding deltas, some folding.
  for (int i = 0; i < 400; ++i) store.insert(job(i % 2 ? "x" : "y"));
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t)
    workers.emplace_back([&db, t] {
      auto s = db.open();
      const auto me = s->register_worker({"host", 100 + t, {"x", "y"}, 10, "test"});
      for (;;) {
        auto got = s->claim(me, t % 2 ? "x" : "y", 7);
        if (got.empty()) break;
        std::vector<Outcome> done;
        for (const auto& j : got) done.push_back({j.id, j.attempt});
        s->complete(me, done, t == 3);
      }
    });
  for (auto& t : workers) t.join();
  require_counts_match(db, store);

  db.exec("TRUNCATE jobs");
  CHECK(from_stats(store).empty());
  store.insert(job("z"));
  CHECK(from_stats(store) == Counts{{{"z", "available"}, 1}});
}
