#pragma once
// The series of taskq-workerd (docs/metrics.md lists them): what a worker claimed, started and
// finished, how long jobs waited and ran, its slots, its database statements and connections.
// Recording is a few relaxed atomics per job: a (queue, kind) pair's series are looked up once
// and cached.
//
// Label values are bounded: queues are the worker's own; a kind is named only when the worker
// has a handler for it (a [kinds.NAME] section, an in-process handler, or a built-in: noop,
// sleep, fail), every other kind counts as "other".
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "taskq/metrics/links.hpp"
#include "taskq/metrics/registry.hpp"
#include "taskq/store/store.hpp"

namespace taskq::worker {

class WorkerMetrics {
 public:
  /// Gauges read at each scrape, from the worker's own counts.
  struct Readers {
    std::function<int(const std::string& queue)> running;                     // jobs of the queue running here
    std::function<std::size_t()> pending_outcomes;                            // outcomes waiting to be written
    std::function<std::map<std::string, taskq::metrics::LinkState>()> links;  // by connection role
  };
  WorkerMetrics(taskq::metrics::Registry& registry, const std::map<std::string, int>& queues,
                std::set<std::string> kinds);
  /// Reads the gauges through `readers` at each scrape from now on (once everything they read exists).
  void read_at_scrape(Readers readers);

  /// The kinds named in labels change with a reload (others count as "other").
  void set_kinds(std::set<std::string> kinds);

  /// A claim statement of `queue` returned `jobs` after `seconds`.
  void claimed(const std::string& queue, const std::vector<Job>& jobs, double seconds);
  void ran(const Job& job, double seconds);
  void finished(const Job& job, store::Outcome::Kind outcome);
  void start_failed(const Job& job);
  void outcomes_written(double seconds);

  /// The label of a kind: itself when known, else "other".
  [[nodiscard]] std::string kind_label(const std::string& kind) const;

 private:
  static constexpr std::size_t outcomes = 6;  // completed, retried, failed, snoozed, cancelled, returned
  struct Series {
    taskq::metrics::Counter* started = nullptr;
    std::array<taskq::metrics::Counter*, outcomes> finished{};
    taskq::metrics::Counter* start_failures = nullptr;
    taskq::metrics::Histogram* duration = nullptr;
    taskq::metrics::Histogram* wait = nullptr;
  };
  Series series(const std::string& queue, const std::string& kind);  // cached per thread
  Series lookup(const std::string& queue, const std::string& kind);

  const std::uint64_t id_;
  std::atomic<std::uint64_t> generation_{0};  // bumped when the kinds named in labels change
  taskq::metrics::Registry& registry_;
  std::vector<std::string> queues_;
  taskq::metrics::Family<taskq::metrics::Counter>&started_, &finished_, &start_failures_;
  taskq::metrics::Family<taskq::metrics::Histogram>&duration_, &wait_, &claim_seconds_, &outcome_seconds_;
  taskq::metrics::Family<taskq::metrics::Histogram>& claim_size_;
  mutable std::mutex mu_;
  std::set<std::string> kinds_;                     // guarded by mu_
  std::unordered_map<std::string, Series> by_key_;  // "queue\nkind", guarded by mu_
};

}  // namespace taskq::worker
