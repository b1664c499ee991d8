#pragma once
// Events: LISTEN/NOTIFY notifications, and what an event listener's streams follow.
#include <string>
#include <vector>

#include "taskq/core/job.hpp"

namespace taskq::store {

/// A LISTEN/NOTIFY event: "insert" (payload: queue) or "cancel" (payload: job id).
struct Notification {
  std::string event;
  std::string payload;
};

/// What an event listener's streams follow (see Store::register_event_listener).
struct EventWatch {
  std::vector<JobId> jobs;
  std::vector<std::string> queues;
  bool all_queues = false;
  int streams = 0;
};

}  // namespace taskq::store
