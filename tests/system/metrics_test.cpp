// GET /metrics of taskq-workerd and taskq-schedulerd, the real binaries: the series count what
// happened (jobs by queue, kind and outcome; the scheduler's leadership and periodic fires), label
// values stay bounded, promtool accepts the text, and a port already in use stops the daemon.
#include <regex>

#include "daemon_process.hpp"
#include "http_client.hpp"
#include "system_helpers.hpp"
#include "workerd_helpers.hpp"

namespace taskq::systest {
namespace {

using namespace std::chrono_literals;
using taskq::test::DaemonProcess;
using taskq::test::wait_until;

// The port of "metrics on http://127.0.0.1:PORT/metrics" in the daemon's log.
int metrics_port(DaemonProcess& p) {
  REQUIRE(p.wait_log("/metrics", 10s));
  std::smatch m;
  const std::string log = p.log();
  REQUIRE(std::regex_search(log, m, std::regex(R"(metrics on http://127\.0\.0\.1:(\d+)/metrics)")));
  return std::stoi(m[1].str());
}

std::string scrape(int port) {
  const auto r = taskq::test::http_request(port, "GET", "/metrics");
  REQUIRE(r.status == 200);
  return r.body;
}

// The value of one sample ("name{labels}"), or -1 when absent.
double sample(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

void promtool_clean(const std::string& text) {
  const auto lint = taskq::test::run_program("/usr/bin/promtool", {"check", "metrics"}, text);
  INFO(lint.out << lint.err);
  CHECK(lint.exit_code == 0);
}

std::string database_section(const TestSchema& db) {
  return "[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() + "\"\n[log]\nlevel = \"debug\"\n";
}

}  // namespace

TEST_CASE("metrics: taskq-workerd counts jobs by queue, kind and outcome, and passes promtool", "[metrics]") {
  TestSchema db;
  Workerd w(db, "[kinds.missing]\nexec = [\"/nonexistent/handler\"]\nmax_attempts = 1\n",
            "queues = { default = 4, mail = 2 }\nmetrics_listen = \"127.0.0.1:0\"");
  const int port = metrics_port(w.proc());
  for (int i = 0; i < 5; ++i) enqueue(db, {"noop"});
  enqueue(db, {"noop", "--queue", "mail"});
  enqueue(db, {"fail", "--max-attempts", "1"});
  enqueue(db, {"missing"});
  enqueue(db, {"kind.nobody.handles", "--max-attempts", "1"});  // an unknown kind: labelled "other"
  INFO(w.proc().log());
  REQUIRE(wait_until([&] { return count_jobs(db, "state IN ('completed', 'failed')") == 9; }, 20s));
  std::string text;
  // Outcomes are counted when the worker hands them to its writer, before or after they commit.
  REQUIRE(wait_until(
      [&] {
        text = scrape(port);
        return sample(text, R"(taskq_worker_jobs_finished_total{queue="default",kind="noop",outcome="completed"})") ==
               5;
      },
      10s));
  INFO(text);
  CHECK(sample(text, R"(taskq_worker_jobs_started_total{queue="default",kind="noop"})") == 5);
  CHECK(sample(text, R"(taskq_worker_jobs_finished_total{queue="mail",kind="noop",outcome="completed"})") == 1);
  CHECK(sample(text, R"(taskq_worker_jobs_finished_total{queue="default",kind="fail",outcome="failed"})") == 1);
  CHECK(sample(text, R"(taskq_worker_jobs_finished_total{queue="default",kind="other",outcome="failed"})") == 1);
  CHECK(text.find("kind.nobody.handles") == std::string::npos);
  CHECK(sample(text, R"(taskq_worker_handler_start_failures_total{queue="default",kind="missing"})") == 1);
  CHECK(sample(text, R"(taskq_worker_handler_start_failures_total{queue="default",kind="other"})") == 1);
  CHECK(sample(text, R"(taskq_worker_job_duration_seconds_count{queue="default",kind="noop"})") == 5);
  CHECK(sample(text, R"(taskq_worker_job_wait_seconds_count{queue="default",kind="noop"})") == 5);
  CHECK(sample(text, R"(taskq_worker_slots{queue="default"})") == 4);
  CHECK(sample(text, R"(taskq_worker_slots{queue="mail"})") == 2);
  CHECK(sample(text, R"(taskq_worker_running{queue="default"})") == 0);
  CHECK(sample(text, R"(taskq_worker_claim_duration_seconds_count{queue="default"})") >= 1);
  CHECK(sample(text, R"(taskq_worker_claim_batch_size_sum{queue="default"})") == 8);
  CHECK(sample(text, "taskq_worker_outcome_write_duration_seconds_count") >= 1);
  CHECK(sample(text, "taskq_worker_outcomes_pending") == 0);
  CHECK(sample(text, R"(taskq_worker_db_reconnects_total{connection="fetcher"})") == 0);
  CHECK(sample(text, R"(taskq_build_info{program="taskq-workerd",version=")" TASKQ_VERSION_TEXT R"("})") == 1);
  CHECK(sample(text, "process_resident_memory_bytes") > 0);
  CHECK(sample(text, "process_open_fds") > 0);
  promtool_clean(text);
}

TEST_CASE("metrics: taskq-workerd counts its reconnects after its connections are cut", "[metrics]") {
  TestSchema db;
  Workerd w(db, "", "queues = { default = 2 }\nmetrics_listen = \"127.0.0.1:0\"");
  const int port = metrics_port(w.proc());
  const std::string mine = "FROM pg_stat_activity WHERE application_name LIKE 'taskq-workerd " + db.name() +
                           "/%' AND pid <> pg_backend_pid()";
  REQUIRE(wait_until([&] { return db.scalar("SELECT count(*) " + mine) == "3"; }, 10s));  // all three connected
  REQUIRE(db.scalar("SELECT count(pg_terminate_backend(pid)) " + mine) == "3");
  const auto id = enqueue(db, {"noop"});  // the fetcher notices the cut at its next claim or wait
  REQUIRE_STATE(db, id, "completed", w);
  std::string text;
  const bool counted = wait_until(
      [&] {
        text = scrape(port);
        return sample(text, R"(taskq_worker_db_reconnects_total{connection="fetcher"})") >= 1 &&
               sample(text, R"(taskq_worker_db_reconnects_total{connection="listener"})") >= 1 &&
               sample(text, R"(taskq_worker_db_reconnects_total{connection="completer"})") >= 1;
      },
      15s);
  INFO(text.substr(text.find("# HELP taskq_worker_db_reconnects_total")) << "\n--- workerd log ---\n"
                                                                         << w.proc().log());
  CHECK(counted);
  CHECK(sample(text, R"(taskq_worker_db_up{connection="fetcher"})") == 1);
}

TEST_CASE("metrics: taskq-workerd with its metrics port in use does not start (69)", "[metrics]") {
  TestSchema db;
  Workerd first(db, "", "queues = { default = 1 }\nmetrics_listen = \"127.0.0.1:0\"");
  const int port = metrics_port(first.proc());
  TempFile config(config_text(db.url(), db.name(), "",
                              "queues = { default = 1 }\nmetrics_listen = \"127.0.0.1:" + std::to_string(port) + "\""),
                  ".toml");
  DaemonProcess second(WORKERD_PATH, {"--config", config.path()}, clean_env());
  CHECK(second.wait_exit(10s) == 69);
  CHECK(contains(second.log(), "worker.metrics_listen '127.0.0.1:" + std::to_string(port) + "': cannot listen on"));
}

TEST_CASE("metrics: a bad TASKQ_WORKER_METRICS_LISTEN is a config error of the worker only", "[metrics]") {
  TestSchema db;
  TempFile config(config_text(db.url(), db.name(), ""), ".toml");
  const auto r = taskq::test::run_program(WORKERD_PATH, {"--config", config.path(), "--check-config"}, "",
                                          clean_env({{"TASKQ_WORKER_METRICS_LISTEN", "localhost"}}));
  CHECK(r.exit_code == 78);
  CHECK(contains(r.err, "TASKQ_WORKER_METRICS_LISTEN: 'localhost' is not HOST:PORT"));
  const auto ctl = taskq::test::run_program(TASKCTL_PATH, {"--config", config.path(), "stats"}, "",
                                            clean_env({{"TASKQ_WORKER_METRICS_LISTEN", "localhost"}}));
  CHECK(ctl.exit_code == 0);
}

TEST_CASE("metrics: taskq-schedulerd shows its leadership, renewals and periodic fires, and passes promtool",
          "[metrics]") {
  TestSchema db;
  TempFile config(database_section(db) +
                      "[scheduler]\nlease_ttl = \"3s\"\nmetrics_listen = \"127.0.0.1:0\"\n"
                      "[[scheduler.periodic]]\nname = \"every-second\"\ncron = \"* * * * * *\"\n"
                      "kind = \"noop\"\n",
                  ".toml");
  DaemonProcess s(SCHEDULERD_PATH, {"--config", config.path()}, clean_env());
  const int port = metrics_port(s);
  std::string text;
  INFO(s.log());
  REQUIRE(wait_until(
      [&] {
        text = scrape(port);
        return sample(text, "taskq_scheduler_leader") == 1 &&
               sample(text, "taskq_scheduler_lease_renewals_total") >= 1 &&
               sample(text, R"(taskq_scheduler_periodic_fires_total{schedule="every-second"})") >= 2;
      },
      15s));
  INFO(text);
  CHECK(sample(text, "taskq_scheduler_term") >= 1);
  CHECK(sample(text, "taskq_scheduler_lease_acquired_total") == 1);
  const double next = sample(text, R"(taskq_scheduler_periodic_next_fire_timestamp_seconds{schedule="every-second"})");
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(next > now - 5);
  CHECK(next < now + 5);
  CHECK(sample(text, R"(taskq_scheduler_maintenance_duration_seconds_count{step="periodic"})") >= 1);
  CHECK(sample(text, R"(taskq_scheduler_maintenance_duration_seconds_count{step="rescue"})") >= 1);
  CHECK(sample(text, R"(taskq_build_info{program="taskq-schedulerd",version=")" TASKQ_VERSION_TEXT R"("})") == 1);
  promtool_clean(text);
  // A standby says so.
  TempFile standby_config(database_section(db) + "[scheduler]\nlease_ttl = \"3s\"\nmetrics_listen = \"127.0.0.1:0\"\n",
                          ".toml");
  DaemonProcess standby(SCHEDULERD_PATH, {"--config", standby_config.path()}, clean_env());
  const int standby_port = metrics_port(standby);
  REQUIRE(standby.wait_log("standby", 10s));
  const auto st = scrape(standby_port);
  CHECK(sample(st, "taskq_scheduler_leader") == 0);
  CHECK(sample(st, "taskq_scheduler_term") == 0);
}

}  // namespace taskq::systest
