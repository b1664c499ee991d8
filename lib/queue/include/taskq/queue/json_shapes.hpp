#pragma once
// The one JSON shape of each object taskctl (-o json) and taskq-apid print, so the two never
// drift: a job (taskq/core/json.hpp, job_to_json), a job change (cancel, retry, rescue), a
// queue's stats, a pause or resume, a worker, the scheduler's lease and a periodic schedule.
// Times are RFC 3339 strings, ages and durations whole milliseconds, absent values null.
#include <boost/json/object.hpp>
#include <optional>
#include <string>

#include "taskq/core/time.hpp"
#include "taskq/store/store.hpp"

namespace taskq::queue {

/// {"id", "queue", "kind", "from", "to", "cancel_requested"}
boost::json::object change_json(const store::JobChange& c);

/// {"queue", "paused", "paused_at", "scheduled", "available", "running", "completed", "failed",
/// "cancelled", "finished_last_minute", "oldest_available_age_ms"}
boost::json::object queue_stats_json(const store::QueueStats& q);

/// {"queue", "paused", "changed"}: `paused` is the state asked for.
boost::json::object queue_change_json(const store::QueueChange& c, bool paused);

/// {"id", "host", "pid", "status" ("live", or "dead" once its heartbeat is older than `grace`),
/// "queues", "concurrency", "running", "running_by_kind" {kind: n}, "heartbeat_at",
/// "heartbeat_age_ms", "started_at", "version"}
boost::json::object worker_json(const store::WorkerInfo& w, Duration grace);

/// {"holder" (null once resigned), "host", "pid", "term", "expires_at", "acquired_at",
/// "renewed_at", "leading"}; with no lease row, every field null and "leading" false.
boost::json::object lease_json(const std::optional<store::Lease>& lease);

/// {"name", "cron", "timezone", "kind", "queue", "last_fire_at", "next_fire_at", "paused_at"}
boost::json::object periodic_json(const store::PeriodicInfo& p);

/// {"name", "state" ("paused" or "active": the state asked for), "changed"}
boost::json::object periodic_change_json(const std::string& name, bool paused, bool changed);

/// {"as_of" (the database's current minute), "minutes", "buckets": [{"queue", "minute",
/// "completed", "failed", "cancelled"}]}: minutes without finished jobs are absent.
boost::json::object throughput_json(const store::Throughput& t);

}  // namespace taskq::queue
