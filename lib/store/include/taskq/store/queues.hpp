#pragma once
// Queues as the store reports and changes them: counts by state, and pause/resume.
#include <cstdint>
#include <optional>
#include <string>

#include "taskq/core/time.hpp"

namespace taskq::store {

struct QueueStats {
  std::string queue;
  std::optional<Timestamp> paused_at;
  std::int64_t scheduled = 0, available = 0, running = 0, completed = 0, failed = 0, cancelled = 0;
  std::optional<Duration> oldest_available_age;
  std::int64_t finished_last_minute = 0;
};

struct QueueChange {
  std::string queue;
  bool changed;  // false: it was already paused (or not paused, for resume)
};

}  // namespace taskq::store
