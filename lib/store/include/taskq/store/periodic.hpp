#pragma once
// Periodic schedules as the store records them: ticks to fire, definitions the leader syncs, and
// the rows `taskctl cron` shows.
#include <optional>
#include <string>

#include "taskq/core/job.hpp"
#include "taskq/core/time.hpp"

namespace taskq::store {

/// One tick of a periodic schedule to enqueue.
struct PeriodicFire {
  std::string name;      // the schedule's name (row of `periodic`)
  std::string schedule;  // its expression, recorded on the row
  std::string timezone = "UTC";
  Timestamp tick{};                      // the scheduled fire time
  std::optional<Timestamp> next_fire{};  // recorded for `taskctl cron list`
  EnqueueParams job;                     // validated; its unique key and metadata are set here
};

struct FireResult {
  // paused: the schedule is paused (`taskctl cron pause`); nothing was enqueued or recorded.
  enum class Outcome { enqueued, duplicate, already_fired, fenced, paused };
  Outcome outcome = Outcome::fenced;
  std::optional<JobId> job{};
  std::string trace_id{};  // the job's trace id, for log lines
};

/// A schedule's recorded state.
struct PeriodicState {
  std::string name;
  std::optional<Timestamp> last_fire_at;
  std::optional<Timestamp> next_fire_at;
};

/// A configured schedule, as the leader records it (its whole job template).
struct PeriodicDef {
  std::string name;
  std::string schedule;
  std::string timezone = "UTC";
  EnqueueParams job;                     // validated; no unique key, run_at or delay
  std::optional<Timestamp> next_fire{};  // recorded for `taskctl cron list`
};

/// A schedule's row: definition, pause and fire times.
struct PeriodicInfo {
  std::string name;
  std::string schedule;
  std::string timezone;
  std::string kind;
  std::string queue;
  std::optional<Timestamp> last_fire_at;
  std::optional<Timestamp> next_fire_at;
  std::optional<Timestamp> paused_at;
};

}  // namespace taskq::store
