#include "taskq/queue/json_shapes.hpp"

#include <boost/json/array.hpp>
#include <chrono>

using taskq::store::JobChange;
using taskq::store::Lease;
using taskq::store::PeriodicInfo;
using taskq::store::QueueChange;
using taskq::store::QueueStats;
using taskq::store::Throughput;
using taskq::store::WorkerInfo;

namespace taskq::queue {
namespace {

namespace json = boost::json;

json::value opt_time(const std::optional<Timestamp>& t) {
  return t ? json::value(format_rfc3339(*t)) : json::value(nullptr);
}

std::int64_t ms(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

json::object change_json(const JobChange& c) {
  return {{"id", c.id},
          {"queue", c.queue},
          {"kind", c.kind},
          {"from", to_string(c.from)},
          {"to", to_string(c.to)},
          {"cancel_requested", c.cancel_requested}};
}

json::object queue_stats_json(const QueueStats& q) {
  return {{"queue", q.queue},
          {"paused", q.paused_at.has_value()},
          {"paused_at", opt_time(q.paused_at)},
          {"scheduled", q.scheduled},
          {"available", q.available},
          {"running", q.running},
          {"completed", q.completed},
          {"failed", q.failed},
          {"cancelled", q.cancelled},
          {"finished_last_minute", q.finished_last_minute},
          {"oldest_available_age_ms",
           q.oldest_available_age ? json::value(ms(*q.oldest_available_age)) : json::value(nullptr)}};
}

json::object queue_change_json(const QueueChange& c, bool paused) {
  return {{"queue", c.queue}, {"paused", paused}, {"changed", c.changed}};
}

json::object worker_json(const WorkerInfo& w, Duration grace) {
  json::array queues;
  for (const auto& q : w.queues) queues.emplace_back(q);
  json::object kinds;
  for (const auto& [kind, n] : w.running_by_kind) kinds[kind] = n;
  return {{"id", w.id},
          {"host", w.host},
          {"pid", w.pid},
          {"status", w.heartbeat_age > grace ? "dead" : "live"},
          {"queues", std::move(queues)},
          {"concurrency", w.concurrency},
          {"running", w.running},
          {"running_by_kind", std::move(kinds)},
          {"heartbeat_at", format_rfc3339(w.heartbeat_at)},
          {"heartbeat_age_ms", ms(w.heartbeat_age)},
          {"started_at", format_rfc3339(w.started_at)},
          {"version", w.version}};
}

json::object lease_json(const std::optional<Lease>& lease) {
  if (!lease)
    return {{"holder", nullptr},     {"host", nullptr},        {"pid", nullptr},        {"term", nullptr},
            {"expires_at", nullptr}, {"acquired_at", nullptr}, {"renewed_at", nullptr}, {"leading", false}};
  return {{"holder", lease->holder.empty() ? json::value(nullptr) : json::value(lease->holder)},
          {"host", lease->host},
          {"pid", lease->pid},
          {"term", lease->term},
          {"expires_at", format_rfc3339(lease->expires_at)},
          {"acquired_at", format_rfc3339(lease->acquired_at)},
          {"renewed_at", format_rfc3339(lease->renewed_at)},
          {"leading", lease->valid}};
}

json::object periodic_json(const PeriodicInfo& p) {
  return {{"name", p.name},
          {"cron", p.schedule},
          {"timezone", p.timezone},
          {"kind", p.kind},
          {"queue", p.queue},
          {"last_fire_at", opt_time(p.last_fire_at)},
          {"next_fire_at", opt_time(p.next_fire_at)},
          {"paused_at", opt_time(p.paused_at)}};
}

json::object periodic_change_json(const std::string& name, bool paused, bool changed) {
  return {{"name", name}, {"state", paused ? "paused" : "active"}, {"changed", changed}};
}

json::object throughput_json(const Throughput& t) {
  json::array buckets;
  for (const auto& b : t.buckets)
    buckets.push_back(json::object{{"queue", b.queue},
                                   {"minute", format_rfc3339(b.minute)},
                                   {"completed", b.completed},
                                   {"failed", b.failed},
                                   {"cancelled", b.cancelled}});
  return {{"as_of", format_rfc3339(t.as_of)}, {"minutes", t.minutes}, {"buckets", std::move(buckets)}};
}

}  // namespace taskq::queue
