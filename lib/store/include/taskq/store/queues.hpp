#pragma once
// Queues as the store reports and changes them: counts by state, and pause/resume.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "taskq/core/time.hpp"

namespace taskq::store {

struct QueueStats {
  std::string queue;
  std::optional<Timestamp> paused_at;
  std::int64_t scheduled = 0, available = 0, running = 0, completed = 0, failed = 0, cancelled = 0;
  std::optional<Duration> oldest_available_age;
  std::int64_t finished_last_minute = 0;
};

/// Jobs of one queue that finished in one minute, by outcome (Store::throughput).
struct ThroughputBucket {
  std::string queue;
  Timestamp minute{};  // the start of the minute
  std::int64_t completed = 0, failed = 0, cancelled = 0;
};

/// Finished jobs per queue and minute over the last minutes; `as_of` is the database's current
/// minute (the last bucket), so a client draws the window without trusting its own clock.
struct Throughput {
  Timestamp as_of{};
  int minutes = 0;
  std::vector<ThroughputBucket> buckets;  // by queue, then minute; minutes without jobs are absent
};

struct QueueChange {
  std::string queue;
  bool changed;  // false: it was already paused (or not paused, for resume)
};

}  // namespace taskq::store
