#include "worker_metrics.hpp"

using taskq::metrics::duration_buckets;
using taskq::metrics::Registry;
using taskq::metrics::statement_buckets;
using taskq::store::Outcome;

namespace taskq::worker {

namespace {

constexpr std::array<const char*, 6> outcome_names = {"completed", "retried",   "failed",
                                                      "snoozed",   "cancelled", "returned"};

std::size_t outcome_index(Outcome::Kind k) {
  switch (k) {
    case Outcome::Kind::completed:
      return 0;
    case Outcome::Kind::retry:
      return 1;
    case Outcome::Kind::failed:
      return 2;
    case Outcome::Kind::snoozed:
      return 3;
    case Outcome::Kind::cancelled:
      return 4;
    case Outcome::Kind::returned:
      break;
  }
  return 5;
}

std::atomic<std::uint64_t> next_id{0};  // tells the instances apart in the threads' caches

const std::vector<double>& batch_buckets() {
  static const std::vector<double> b = {0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
  return b;
}

}  // namespace

WorkerMetrics::WorkerMetrics(Registry& r, const std::map<std::string, int>& queues, std::set<std::string> kinds)
    : id_(next_id.fetch_add(1) + 1),
      registry_(r),
      started_(r.counter("taskq_worker_jobs_started_total", "Jobs this worker claimed and started, by queue and kind.",
                         {"queue", "kind"})),
      finished_(r.counter("taskq_worker_jobs_finished_total",
                          "Jobs this worker finished, by queue, kind and outcome (completed, retried, failed, "
                          "snoozed, cancelled, returned).",
                          {"queue", "kind", "outcome"})),
      start_failures_(r.counter("taskq_worker_handler_start_failures_total",
                                "Jobs whose handler could not be started (spawn failed, or no handler for the kind).",
                                {"queue", "kind"})),
      duration_(r.histogram("taskq_worker_job_duration_seconds",
                            "How long a job's handler ran on this worker, by queue and kind.", {"queue", "kind"},
                            duration_buckets())),
      wait_(r.histogram("taskq_worker_job_wait_seconds",
                        "How long a job waited from its run_at to its claim (the database's clock), by queue and kind.",
                        {"queue", "kind"}, duration_buckets())),
      claim_seconds_(r.histogram("taskq_worker_claim_duration_seconds", "Claim statements' latency, by queue.",
                                 {"queue"}, statement_buckets())),
      outcome_seconds_(r.histogram("taskq_worker_outcome_write_duration_seconds",
                                   "Outcome statements' latency (one statement writes a batch).", {},
                                   statement_buckets())),
      claim_size_(r.histogram("taskq_worker_claim_batch_size", "Jobs returned per claim statement, by queue.",
                              {"queue"}, batch_buckets())),
      kinds_(std::move(kinds)) {
  kinds_.insert({"noop", "sleep", "fail"});
  auto& slots = r.gauge("taskq_worker_slots", "Jobs of the queue this worker runs at most at once.", {"queue"});
  for (const auto& [queue, limit] : queues) {
    slots.with({queue}).set(limit);
    queues_.push_back(queue);
  }
}

void WorkerMetrics::read_at_scrape(Readers readers) {
  auto& r = registry_;
  auto& running = r.gauge("taskq_worker_running", "Jobs of the queue running on this worker now.", {"queue"});
  std::vector<std::pair<std::string, taskq::metrics::Gauge*>> running_gauges;
  for (const auto& queue : queues_) running_gauges.emplace_back(queue, &running.with({queue}));
  auto& pending = r.gauge("taskq_worker_outcomes_pending", "Outcomes waiting to be written to the database.").with({});
  taskq::metrics::add_link_metrics(r, "taskq_worker", std::move(readers.links));
  r.on_collect([readers = std::move(readers), running_gauges, &pending] {
    for (const auto& [queue, g] : running_gauges) g->set(readers.running(queue));
    pending.set(static_cast<double>(readers.pending_outcomes()));
  });
}

void WorkerMetrics::set_kinds(std::set<std::string> kinds) {
  kinds.insert({"noop", "sleep", "fail"});
  std::lock_guard lk(mu_);
  kinds_ = std::move(kinds);
  by_key_.clear();  // the series stay in the registry; only the cache of labels is redone
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

std::string WorkerMetrics::kind_label(const std::string& kind) const {
  std::lock_guard lk(mu_);
  return kinds_.count(kind) ? kind : "other";
}

WorkerMetrics::Series WorkerMetrics::series(const std::string& queue, const std::string& kind) {
  // The jobs of a batch are mostly of one queue and kind: each thread remembers the last pair it
  // looked up (by value: a Series points only at registry children, which live as long as the
  // registry), so most calls take no lock and allocate nothing.
  struct Last {
    std::uint64_t owner = 0, generation = 0;
    std::string queue, kind;
    Series series;
  };
  thread_local Last last;
  const auto generation = generation_.load(std::memory_order_acquire);
  if (last.owner == id_ && last.generation == generation && last.queue == queue && last.kind == kind)
    return last.series;
  const Series found = lookup(queue, kind);
  last = {id_, generation, queue, kind, found};
  return found;
}

WorkerMetrics::Series WorkerMetrics::lookup(const std::string& queue, const std::string& kind) {
  std::lock_guard lk(mu_);
  const std::string key = queue + '\n' + kind;
  if (auto it = by_key_.find(key); it != by_key_.end()) return it->second;
  const std::string k = kinds_.count(kind) ? kind : "other";
  Series s;
  s.started = &started_.with({queue, k});
  for (std::size_t i = 0; i < outcomes; ++i) s.finished[i] = &finished_.with({queue, k, outcome_names[i]});
  s.start_failures = &start_failures_.with({queue, k});
  s.duration = &duration_.with({queue, k});
  s.wait = &wait_.with({queue, k});
  // Bounded: at most (queues x known kinds + other) entries plus one per unknown kind seen,
  // so an endless stream of new unknown kinds would grow it: cap the cache, not the series.
  if (by_key_.size() > 10000) by_key_.clear();
  return by_key_.emplace(key, s).first->second;
}

void WorkerMetrics::claimed(const std::string& queue, const std::vector<Job>& jobs, double seconds) {
  claim_seconds_.with({queue}).observe(seconds);
  claim_size_.with({queue}).observe(static_cast<double>(jobs.size()));
  for (const auto& j : jobs) {
    const auto s = series(j.queue, j.kind);
    s.started->inc();
    if (j.attempted_at)
      s.wait->observe(std::max(0.0, std::chrono::duration<double>(*j.attempted_at - j.run_at).count()));
  }
}

void WorkerMetrics::ran(const Job& job, double seconds) {
  series(job.queue, job.kind).duration->observe(seconds);
}

void WorkerMetrics::finished(const Job& job, Outcome::Kind outcome) {
  series(job.queue, job.kind).finished[outcome_index(outcome)]->inc();
}

void WorkerMetrics::start_failed(const Job& job) {
  series(job.queue, job.kind).start_failures->inc();
}

void WorkerMetrics::outcomes_written(double seconds) {
  outcome_seconds_.with({}).observe(seconds);
}

}  // namespace taskq::worker
