#pragma once
// Prometheus metrics of taskq-apid: build info and process metrics (as every taskq daemon has),
// requests by route and status, request latency histograms by route, jobs enqueued by queue
// (counted here), and, at each scrape, jobs by queue and state from the database. Thread-safe:
// every I/O thread records into it.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "taskq/metrics/registry.hpp"
#include "taskq/queue/client.hpp"

namespace taskq::api {

class Metrics {
 public:
  static constexpr std::array<double, 14> buckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};

  void record(const std::string& route, unsigned status, double seconds);
  void add_enqueued(const std::vector<std::pair<std::string, std::int64_t>>& by_queue);

  /// The text exposition format (version 0.0.4); `queues` from the database.
  /// `streams` open now and `events` sent so far, from the event hub.
  [[nodiscard]] std::string render(const std::vector<store::QueueStats>& queues, int in_flight,
                                   const std::string& version, int streams, std::int64_t events) const;

 private:
  struct Histogram {
    std::array<std::uint64_t, buckets.size()> counts{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  mutable std::unique_ptr<taskq::metrics::Registry> process_;  // build info and process_*: at the first render
  std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
  std::map<std::string, std::int64_t> enqueued_;
};

}  // namespace taskq::api
