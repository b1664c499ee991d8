// The metrics registry (text format, bounded labels) and the /metrics endpoint of the daemons.
#include <catch2/catch.hpp>
#include <thread>

#include "http_client.hpp"
#include "taskq/core/error.hpp"
#include "taskq/metrics/exporter.hpp"
#include "taskq/metrics/process.hpp"
#include "taskq/metrics/registry.hpp"

using taskq::metrics::Exporter;
using taskq::metrics::ExporterOptions;
using taskq::metrics::Registry;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

int port_of(const Exporter& e) {
  const auto& ep = e.endpoint();
  return std::stoi(ep.substr(ep.rfind(':') + 1));
}

}  // namespace

TEST_CASE("metrics: counters, gauges and histograms render in the text format", "[metrics]") {
  Registry r;
  auto& jobs = r.counter("taskq_test_jobs_total", "Jobs.", {"queue", "kind"});
  jobs.with({"default", "email"}).inc();
  jobs.with({"default", "email"}).inc(2);
  jobs.with({"q\"2", "a\\b\nc"}).inc();
  r.gauge("taskq_test_running", "Running.").with({}).set(2.5);
  auto& h = r.histogram("taskq_test_seconds", "Durations.", {"queue"}, {0.1, 1});
  h.with({"default"}).observe(0.05);
  h.with({"default"}).observe(0.1);  // on a bound: counted in it (le is "less or equal")
  h.with({"default"}).observe(5);
  const auto text = r.render();
  CHECK(has_line(text, "# HELP taskq_test_jobs_total Jobs."));
  CHECK(has_line(text, "# TYPE taskq_test_jobs_total counter"));
  CHECK(has_line(text, "taskq_test_jobs_total{queue=\"default\",kind=\"email\"} 3"));
  CHECK(has_line(text, R"(taskq_test_jobs_total{queue="q\"2",kind="a\\b\nc"} 1)"));
  CHECK(has_line(text, "# TYPE taskq_test_running gauge"));
  CHECK(has_line(text, "taskq_test_running 2.5"));
  CHECK(has_line(text, "# TYPE taskq_test_seconds histogram"));
  CHECK(has_line(text, "taskq_test_seconds_bucket{queue=\"default\",le=\"0.10000000000000001\"} 2"));
  CHECK(has_line(text, "taskq_test_seconds_bucket{queue=\"default\",le=\"1\"} 2"));
  CHECK(has_line(text, "taskq_test_seconds_bucket{queue=\"default\",le=\"+Inf\"} 3"));
  CHECK(has_line(text, "taskq_test_seconds_count{queue=\"default\"} 3"));
  CHECK(has_line(text, "taskq_test_seconds_sum{queue=\"default\"} 5.1500000000000004"));
  // Families in the order registered.
  CHECK(text.find("taskq_test_jobs_total") < text.find("taskq_test_running"));
}

TEST_CASE("metrics: a family holds at most max_children label sets and counts the rest as other", "[metrics]") {
  Registry r;
  r.set_max_children(3);
  auto& f = r.counter("taskq_test_total", "T.", {"kind"});
  for (int i = 0; i < 100; ++i) f.with({"k" + std::to_string(i)}).inc();
  f.with({"k1"}).inc();  // a known set still counts as itself
  const auto text = r.render();
  CHECK(has_line(text, "taskq_test_total{kind=\"k0\"} 1"));
  CHECK(has_line(text, "taskq_test_total{kind=\"k1\"} 2"));
  CHECK(has_line(text, "taskq_test_total{kind=\"k2\"} 1"));
  CHECK(has_line(text, "taskq_test_total{kind=\"other\"} 97"));
  CHECK(text.find("k3") == std::string::npos);
}

TEST_CASE("metrics: bad names, label names and label counts are programmer errors", "[metrics]") {
  Registry r;
  CHECK_THROWS_AS(r.counter("taskq-bad", "x"), taskq::Error);
  CHECK_THROWS_AS(r.counter("taskq_ok_total", "x", {"le"}), taskq::Error);
  CHECK_THROWS_AS(r.counter("taskq_ok2_total", "x", {"__reserved"}), taskq::Error);
  auto& f = r.counter("taskq_ok3_total", "x", {"queue"});
  CHECK_THROWS_AS(f.with({}), taskq::Error);
  CHECK_THROWS_AS(r.counter("taskq_ok3_total", "again"), taskq::Error);
  CHECK_THROWS_AS(r.histogram("taskq_h", "x", {}, {1, 1}), taskq::Error);
}

TEST_CASE("metrics: collect functions run before each render", "[metrics]") {
  Registry r;
  auto& g = r.gauge("taskq_test_value", "V.").with({});
  int calls = 0;
  r.on_collect([&] { g.set(++calls); });
  CHECK(has_line(r.render(), "taskq_test_value 1"));
  CHECK(has_line(r.render(), "taskq_test_value 2"));
}

TEST_CASE("metrics: process metrics read this process", "[metrics]") {
  const auto s = taskq::metrics::sample_process();
  REQUIRE(s.resident_bytes);
  CHECK(*s.resident_bytes > 1e5);
  REQUIRE(s.cpu_seconds);
  CHECK(*s.cpu_seconds >= 0);
  REQUIRE(s.start_time);
  CHECK(*s.start_time > 1.6e9);
  REQUIRE(s.open_fds);
  CHECK(*s.open_fds >= 3);
  Registry r;
  taskq::metrics::add_process_metrics(r, "taskq-test", "1.2.3");
  const auto text = r.render();
  CHECK(has_line(text, "taskq_build_info{program=\"taskq-test\",version=\"1.2.3\"} 1"));
  CHECK(has_line(text, "# TYPE process_cpu_seconds_total counter"));
  CHECK(text.find("\nprocess_resident_memory_bytes ") != std::string::npos);
  CHECK(text.find("\nprocess_open_fds ") != std::string::npos);
}

TEST_CASE("metrics: the exporter answers GET and HEAD /metrics, 404 and 405 elsewhere", "[metrics]") {
  Registry r;
  r.counter("taskq_test_total", "T.").with({}).inc(7);
  Exporter e(ExporterOptions{.listen = "127.0.0.1:0"}, [&r] { return r.render(); });
  e.start();
  const int port = port_of(e);
  const auto ok = taskq::test::http_request(port, "GET", "/metrics");
  CHECK(ok.status == 200);
  CHECK(ok.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(has_line(ok.body, "taskq_test_total 7"));
  const auto head = taskq::test::http_request(port, "HEAD", "/metrics");
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(taskq::test::http_request(port, "GET", "/metrics?x=1").status == 200);
  CHECK(taskq::test::http_request(port, "GET", "/").status == 404);
  const auto post = taskq::test::http_request(port, "POST", "/metrics", "x");
  CHECK(post.status == 405);
  CHECK(post.header("allow") == "GET, HEAD");
  e.stop();
  e.stop();  // idempotent
  CHECK_THROWS(taskq::test::http_request(port, "GET", "/metrics"));
}

TEST_CASE("metrics: the exporter cuts off hostile clients and keeps serving", "[metrics]") {
  Registry r;
  r.counter("taskq_test_total", "T.").with({}).inc();
  Exporter e(
      ExporterOptions{.listen = "127.0.0.1:0", .max_connections = 4, .request_timeout = std::chrono::milliseconds{300}},
      [&r] { return r.render(); });
  e.start();
  const int port = port_of(e);
  // A huge header: 431, connection closed.
  const auto [big, big_closed] = taskq::test::raw_exchange(
      port, "GET /metrics HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n", std::chrono::seconds{5});
  CHECK(big.rfind("HTTP/1.1 431", 0) == 0);
  CHECK(big_closed);
  // A body beyond 1 KiB: 413.
  const auto [body, body_closed] = taskq::test::raw_exchange(
      port, "POST /metrics HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'b'), std::chrono::seconds{5});
  CHECK(body.rfind("HTTP/1.1 413", 0) == 0);
  CHECK(body_closed);
  // Garbage: 400 or closed, never an answer of metrics.
  const auto [junk, junk_closed] =
      taskq::test::raw_exchange(port, "\x01\x02 nonsense\r\n\r\n", std::chrono::seconds{5});
  CHECK(junk.find("taskq_test_total") == std::string::npos);
  CHECK(junk_closed);
  // A silent client is cut off after the request timeout.
  const auto [silent, silent_closed] = taskq::test::raw_exchange(port, "GET /metr", std::chrono::seconds{5});
  CHECK(silent.empty());
  CHECK(silent_closed);
  // More silent clients than max_connections hold the slots until their deadline; then it serves again.
  std::vector<std::thread> holders;
  for (int i = 0; i < 6; ++i)
    holders.emplace_back([port] { taskq::test::raw_exchange(port, "", std::chrono::seconds{2}); });
  for (auto& t : holders) t.join();
  CHECK(taskq::test::http_request(port, "GET", "/metrics").status == 200);
}

TEST_CASE("metrics: the exporter names its key when it cannot listen", "[metrics]") {
  Exporter first(ExporterOptions{.listen = "127.0.0.1:0"}, [] { return std::string(); });
  first.start();
  Exporter second(ExporterOptions{.listen = first.endpoint(), .config_key = "worker.metrics_listen"},
                  [] { return std::string(); });
  try {
    second.start();
    FAIL("a second exporter bound the same port");
  } catch (const taskq::Error& err) {
    CHECK(err.code() == taskq::Errc::unavailable);
    CHECK_THAT(err.what(), Catch::Contains("worker.metrics_listen '" + first.endpoint() + "': cannot listen on"));
  }
  Exporter bad(ExporterOptions{.listen = "no.such.host.invalid:9"}, [] { return std::string(); });
  CHECK_THROWS_AS(bad.start(), taskq::Error);
}
