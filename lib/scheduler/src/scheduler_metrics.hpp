#pragma once
// The series of taskq-schedulerd (docs/metrics.md lists them): whether this instance leads and
// in which term, its lease renewals, what each periodic schedule fired or skipped and when it
// fires next, and what maintenance did and how long each step took. Label values are bounded:
// schedule names come from the config, steps and reasons are fixed words.
#include <functional>
#include <string>

#include "taskq/metrics/registry.hpp"

namespace taskq::scheduler {

class SchedulerMetrics {
 public:
  /// `term` reads the term this instance leads (0: standby) at each scrape.
  SchedulerMetrics(taskq::metrics::Registry& registry, std::function<std::int64_t()> term);

  void renewal(bool ok);
  void acquired();
  void fired(const std::string& schedule);
  void skipped(const std::string& schedule, const char* reason);  // "missed" or "paused"
  void next_fire(const std::string& schedule, double epoch_seconds);
  void rescued(std::size_t jobs);
  void stuck_failed(std::size_t jobs);
  void pruned(std::int64_t jobs);
  void promoted(std::int64_t jobs);
  void step(const char* name, double seconds);  // "promote", "rescue", "prune", "periodic"

 private:
  taskq::metrics::Counter &renewals_, &renewal_failures_, &acquired_, &rescued_, &stuck_, &pruned_, &promoted_;
  taskq::metrics::Family<taskq::metrics::Counter>&fires_, &skipped_;
  taskq::metrics::Family<taskq::metrics::Gauge>& next_fire_;
  taskq::metrics::Family<taskq::metrics::Histogram>& steps_;
};

}  // namespace taskq::scheduler
