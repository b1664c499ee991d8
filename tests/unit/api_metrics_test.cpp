// taskq-apid's /metrics text: the Prometheus exposition format (HELP and TYPE before each family,
// escaped label values, cumulative histogram buckets), and the gauges read from the database.
#include <catch2/catch.hpp>

#include "metrics.hpp"

using taskq::store::QueueStats;

using namespace taskq;
using namespace taskq::api;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

}  // namespace

TEST_CASE("metrics: every family has its HELP and TYPE once, before its samples", "[unit][api]") {
  Metrics m;
  m.record("GET /v1/jobs", 200, 0.25);
  const auto text = m.render({}, 3, "1.2.3", 2, 40);
  for (const auto& [name, type] :
       std::vector<std::pair<std::string, std::string>>{{"taskq_build_info", "gauge"},
                                                        {"taskq_api_requests_in_flight", "gauge"},
                                                        {"taskq_api_event_streams", "gauge"},
                                                        {"taskq_api_events_sent_total", "counter"},
                                                        {"taskq_api_requests_total", "counter"},
                                                        {"taskq_api_request_duration_seconds", "histogram"},
                                                        {"taskq_api_jobs_enqueued_total", "counter"},
                                                        {"taskq_jobs", "gauge"},
                                                        {"taskq_queue_paused", "gauge"},
                                                        {"taskq_queue_oldest_available_age_seconds", "gauge"}}) {
    INFO(name);
    CHECK(count(text, "# HELP " + name + " ") == 1);
    CHECK(count(text, "# TYPE " + name + " " + type + "\n") == 1);
    const auto type_at = text.find("# TYPE " + name + " ");
    const auto sample_at = text.find("\n" + name + (type == "histogram" ? "_bucket" : ""));
    if (sample_at != std::string::npos) CHECK(type_at < sample_at);
  }
  CHECK(contains(text, "taskq_build_info{program=\"taskq-apid\",version=\"1.2.3\"} 1\n"));
  CHECK(contains(text, "\nprocess_resident_memory_bytes "));
  CHECK(contains(text, "\ntaskq_api_requests_in_flight 3\n"));
  CHECK(contains(text, "\ntaskq_api_event_streams 2\n"));
  CHECK(contains(text, "\ntaskq_api_events_sent_total 40\n"));
  CHECK(text.back() == '\n');
}

TEST_CASE("metrics: requests count by route and status, latency in cumulative buckets", "[unit][api]") {
  Metrics m;
  m.record("GET /v1/jobs", 200, 0.25);
  m.record("GET /v1/jobs", 200, 2.0);
  m.record("GET /v1/jobs", 404, 0.0001);
  m.record("POST /v1/jobs", 201, 30.0);
  const auto text = m.render({}, 0, "v", 0, 0);
  CHECK(contains(text, "taskq_api_requests_total{route=\"GET /v1/jobs\",status=\"200\"} 2\n"));
  CHECK(contains(text, "taskq_api_requests_total{route=\"GET /v1/jobs\",status=\"404\"} 1\n"));
  CHECK(contains(text, "taskq_api_requests_total{route=\"POST /v1/jobs\",status=\"201\"} 1\n"));
  const std::string b = "taskq_api_request_duration_seconds_bucket{route=\"GET /v1/jobs\",le=";
  CHECK(contains(text, b + "\"0.10000000000000001\"} 1\n"));  // the 0.0001 s one
  CHECK(contains(text, b + "\"0.25\"} 2\n"));                 // a bucket holds its bound
  CHECK(contains(text, b + "\"1\"} 2\n"));
  CHECK(contains(text, b + "\"2.5\"} 3\n"));
  CHECK(contains(text, b + "\"10\"} 3\n"));
  CHECK(contains(text, b + "\"+Inf\"} 3\n"));
  CHECK(count(text, b) == Metrics::buckets.size() + 1);
  CHECK(contains(text, "taskq_api_request_duration_seconds_count{route=\"GET /v1/jobs\"} 3\n"));
  CHECK(contains(text, "taskq_api_request_duration_seconds_sum{route=\"POST /v1/jobs\"} 30\n"));
  // Over the largest bound: only in +Inf.
  CHECK(contains(text, "taskq_api_request_duration_seconds_bucket{route=\"POST /v1/jobs\",le=\"10\"} 0\n"));
  CHECK(contains(text, "taskq_api_request_duration_seconds_bucket{route=\"POST /v1/jobs\",le=\"+Inf\"} 1\n"));
}

TEST_CASE("metrics: label values escape backslash, double quote and newline", "[unit][api]") {
  Metrics m;
  m.record("a\"b\\c\nd", 200, 0.5);
  m.add_enqueued({{"q\"1", 2}});
  const auto text = m.render({}, 0, "x\"y", 0, 0);
  CHECK(contains(text, "taskq_build_info{program=\"taskq-apid\",version=\"x\\\"y\"} 1\n"));
  CHECK(contains(text, "taskq_api_requests_total{route=\"a\\\"b\\\\c\\nd\",status=\"200\"} 1\n"));
  CHECK(contains(text, "taskq_api_jobs_enqueued_total{queue=\"q\\\"1\"} 2\n"));
  // No raw newline inside a sample: every line is a comment or a sample.
  std::size_t start = 0;
  for (auto end = text.find('\n'); end != std::string::npos; start = end + 1, end = text.find('\n', start)) {
    const auto line = text.substr(start, end - start);
    INFO(line);
    CHECK((line.rfind("# ", 0) == 0 || line.rfind("taskq_", 0) == 0 || line.rfind("process_", 0) == 0));
  }
}

TEST_CASE("metrics: jobs enqueued add up by queue", "[unit][api]") {
  Metrics m;
  m.add_enqueued({{"emails", 2}, {"reports", 1}});
  m.add_enqueued({});
  m.add_enqueued({{"emails", 5}});
  const auto text = m.render({}, 0, "v", 0, 0);
  CHECK(contains(text, "taskq_api_jobs_enqueued_total{queue=\"emails\"} 7\n"));
  CHECK(contains(text, "taskq_api_jobs_enqueued_total{queue=\"reports\"} 1\n"));
  CHECK(count(text, "taskq_api_jobs_enqueued_total{") == 2);
}

TEST_CASE("metrics: queue gauges from the database", "[unit][api]") {
  QueueStats a;
  a.queue = "emails";
  a.scheduled = 1, a.available = 2, a.running = 3, a.completed = 4, a.failed = 5, a.cancelled = 6;
  a.oldest_available_age = std::chrono::milliseconds{1500};
  a.paused_at = Timestamp{};
  QueueStats b;
  b.queue = "idle";
  const auto text = Metrics{}.render({a, b}, 0, "v", 0, 0);
  CHECK(contains(text, "taskq_jobs{queue=\"emails\",state=\"scheduled\"} 1\n"));
  CHECK(contains(text, "taskq_jobs{queue=\"emails\",state=\"available\"} 2\n"));
  CHECK(contains(text, "taskq_jobs{queue=\"emails\",state=\"running\"} 3\n"));
  CHECK(contains(text, "taskq_jobs{queue=\"emails\",state=\"completed\"} 4\n"));
  CHECK(contains(text, "taskq_jobs{queue=\"emails\",state=\"failed\"} 5\n"));
  CHECK(contains(text, "taskq_jobs{queue=\"emails\",state=\"cancelled\"} 6\n"));
  CHECK(contains(text, "taskq_jobs{queue=\"idle\",state=\"cancelled\"} 0\n"));
  CHECK(contains(text, "taskq_queue_paused{queue=\"emails\"} 1\n"));
  CHECK(contains(text, "taskq_queue_paused{queue=\"idle\"} 0\n"));
  CHECK(contains(text, "taskq_queue_oldest_available_age_seconds{queue=\"emails\"} 1.5\n"));
  CHECK(contains(text, "taskq_queue_oldest_available_age_seconds{queue=\"idle\"} 0\n"));
}
