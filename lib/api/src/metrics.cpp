#include "metrics.hpp"

#include <cstdio>

#include "taskq/metrics/process.hpp"

using taskq::store::QueueStats;

namespace taskq::api {

namespace {

using taskq::metrics::escape_label;
using taskq::metrics::format_value;

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace

void Metrics::record(const std::string& route, unsigned status, double seconds) {
  std::lock_guard lk(mu_);
  ++requests_[{route, status}];
  auto& h = latency_[route];
  for (std::size_t i = 0; i < buckets.size(); ++i)
    if (seconds <= buckets[i]) ++h.counts[i];
  ++h.count;
  h.sum += seconds;
}

void Metrics::add_enqueued(const std::vector<std::pair<std::string, std::int64_t>>& by_queue) {
  if (by_queue.empty()) return;
  std::lock_guard lk(mu_);
  for (const auto& [queue, n] : by_queue) enqueued_[queue] += n;
}

std::string Metrics::render(const std::vector<QueueStats>& queues, int in_flight, const std::string& version,
                            int streams, std::int64_t events) const {
  std::string out;
  {
    std::lock_guard lk(mu_);
    if (!process_) {
      process_ = std::make_unique<taskq::metrics::Registry>();
      taskq::metrics::add_process_metrics(*process_, "taskq-apid", version);
    }
    out = process_->render();
  }
  header(out, "taskq_api_requests_in_flight", "gauge", "Requests being served now.");
  out += "taskq_api_requests_in_flight " + std::to_string(in_flight) + "\n";
  header(out, "taskq_api_event_streams", "gauge", "Event streams (Server-Sent Events) open now.");
  out += "taskq_api_event_streams " + std::to_string(streams) + "\n";
  header(out, "taskq_api_events_sent_total", "counter", "Events sent on event streams (one per stream reached).");
  out += "taskq_api_events_sent_total " + std::to_string(events) + "\n";
  {
    std::lock_guard lk(mu_);
    header(out, "taskq_api_requests_total", "counter", "HTTP requests answered, by route and status code.");
    for (const auto& [key, n] : requests_)
      out += "taskq_api_requests_total{route=\"" + escape_label(key.first) + "\",status=\"" +
             std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
    header(out, "taskq_api_request_duration_seconds", "histogram",
           "Time from a request's arrival to its response, by route.");
    for (const auto& [route, h] : latency_) {
      const std::string r = escape_label(route);
      for (std::size_t i = 0; i < buckets.size(); ++i)
        out += "taskq_api_request_duration_seconds_bucket{route=\"" + r + "\",le=\"" + format_value(buckets[i]) +
               "\"} " + std::to_string(h.counts[i]) + "\n";
      out += "taskq_api_request_duration_seconds_bucket{route=\"" + r + "\",le=\"+Inf\"} " + std::to_string(h.count) +
             "\n";
      out += "taskq_api_request_duration_seconds_sum{route=\"" + r + "\"} " + format_value(h.sum) + "\n";
      out += "taskq_api_request_duration_seconds_count{route=\"" + r + "\"} " + std::to_string(h.count) + "\n";
    }
    header(out, "taskq_api_jobs_enqueued_total", "counter",
           "Jobs enqueued through this taskq-apid (duplicates of an idempotency key not counted), by queue.");
    for (const auto& [queue, n] : enqueued_)
      out += "taskq_api_jobs_enqueued_total{queue=\"" + escape_label(queue) + "\"} " + std::to_string(n) + "\n";
  }
  header(out, "taskq_jobs", "gauge", "Jobs in the database, by queue and state (read at each scrape).");
  for (const auto& q : queues) {
    const std::string l = escape_label(q.queue);
    const std::pair<const char*, std::int64_t> states[] = {{"scheduled", q.scheduled}, {"available", q.available},
                                                           {"running", q.running},     {"completed", q.completed},
                                                           {"failed", q.failed},       {"cancelled", q.cancelled}};
    for (const auto& [state, n] : states)
      out += "taskq_jobs{queue=\"" + l + "\",state=\"" + state + "\"} " + std::to_string(n) + "\n";
  }
  header(out, "taskq_queue_paused", "gauge", "1 when the queue is paused.");
  for (const auto& q : queues)
    out += "taskq_queue_paused{queue=\"" + escape_label(q.queue) + "\"} " + (q.paused_at ? "1" : "0") + "\n";
  header(out, "taskq_queue_oldest_available_age_seconds", "gauge",
         "Age of the queue's oldest available job (0 when none waits).");
  for (const auto& q : queues) {
    const double age = q.oldest_available_age ? static_cast<double>(q.oldest_available_age->count()) / 1e6 : 0.0;
    out +=
        "taskq_queue_oldest_available_age_seconds{queue=\"" + escape_label(q.queue) + "\"} " + format_value(age) + "\n";
  }
  return out;
}

}  // namespace taskq::api
