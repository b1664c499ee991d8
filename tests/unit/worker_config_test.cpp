// [worker] and [kinds.NAME]: values read into the structs, and every mistake named with the file,
// the line and the key — reported by validate_worker_config, so taskctl is not stopped by them.
#include <catch2/catch.hpp>
#include <string>

#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"

using taskq::config::Config;
using taskq::config::parse_config;
using taskq::config::validate_config;
using taskq::config::validate_worker_config;

using namespace taskq;
using namespace std::chrono_literals;

namespace {

// The message validate_worker_config gives for this file.
std::string worker_error(const std::string& toml) {
  const Config c = parse_config(toml, "w.toml");  // parsing never throws for worker sections
  try {
    validate_worker_config(c);
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_input);
    return e.what();
  }
  FAIL("no error for:\n" << toml);
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("worker and kind settings are read into the structs", "[config][worker]") {
  const Config c = parse_config(R"(
[worker]
queues = { default = 16, mail = 4 }
shutdown_timeout = "1m"
heartbeat_interval = "500ms"
poll_interval = "250ms"
delete_completed = true

[kinds.thumbnail]
exec = ["/usr/local/bin/thumbnail", "--quality", "80"]
timeout = "5m"
max_attempts = 10
backoff = "exponential"
kill_grace = "3s"
env = { LANG = "C.UTF-8" }
working_dir = "/var/lib/taskq"
limits = { memory = "1GiB", cpu = "10m", open_files = 1024 }

[kinds."email.send"]
http = { url = "http://127.0.0.1:9000/hooks/notify", timeout = "10s", headers = { X-Token = "secret" } }
backoff = "30s"
)",
                                "w.toml");
  REQUIRE_NOTHROW(validate_worker_config(c));
  CHECK(c.worker.queues == std::map<std::string, int>{{"default", 16}, {"mail", 4}});
  CHECK(c.worker.shutdown_timeout == 1min);
  CHECK(c.worker.heartbeat_interval == 500ms);
  CHECK(c.worker.poll_interval == 250ms);
  CHECK(c.worker.delete_completed);
  REQUIRE(c.kinds.size() == 2);
  const auto& t = c.kinds.at("thumbnail");
  CHECK(t.exec == std::vector<std::string>{"/usr/local/bin/thumbnail", "--quality", "80"});
  CHECK(t.timeout == std::optional<Duration>(5min));
  CHECK(t.max_attempts == 10);
  CHECK(t.backoff.exponential);
  CHECK(t.kill_grace == 3s);
  CHECK(t.env == std::vector<std::pair<std::string, std::string>>{{"LANG", "C.UTF-8"}});
  CHECK(t.working_dir == std::optional<std::string>("/var/lib/taskq"));
  CHECK(t.limits.memory_bytes == 1ULL << 30);
  CHECK(t.limits.cpu_seconds == 600U);
  CHECK(t.limits.open_files == 1024U);
  CHECK(t.line == 9);
  const auto& e = c.kinds.at("email.send");
  REQUIRE(e.http.has_value());
  CHECK(e.http->url == "http://127.0.0.1:9000/hooks/notify");
  CHECK(e.http->timeout == 10s);
  CHECK(e.http->headers == std::vector<std::pair<std::string, std::string>>{{"X-Token", "secret"}});
  CHECK_FALSE(e.backoff.exponential);
  CHECK(e.backoff.fixed == 30s);
}

TEST_CASE("defaults without a [worker] section", "[config][worker]") {
  const Config c = parse_config("", "w.toml");
  CHECK(c.worker.queues == std::map<std::string, int>{{"default", 16}});
  CHECK(c.worker.shutdown_timeout == 30s);
  CHECK(c.worker.heartbeat_interval == 2s);
  CHECK(c.worker.poll_interval == 1s);
  CHECK_FALSE(c.worker.delete_completed);
  CHECK(c.kinds.empty());
  CHECK_NOTHROW(validate_worker_config(c));
}

TEST_CASE("worker mistakes name the file, line and key", "[config][worker]") {
  auto msg = worker_error("[worker]\nqueues = { default = 0 }\n");
  CHECK(contains(msg, "w.toml:2"));
  CHECK(contains(msg, "worker.queues.default"));
  CHECK(contains(msg, "between 1 and 10000"));
  CHECK(contains(worker_error("[worker]\nqueues = {}\n"), "needs at least one queue"));
  CHECK(contains(worker_error("[worker]\nqueues = 5\n"), "must be a table"));
  CHECK(contains(worker_error("[worker]\nheartbeat_interval = \"10ms\"\n"), "at least 100ms"));
  CHECK(contains(worker_error("[worker]\ndelete_completed = \"yes\"\n"), "true or false"));
  msg = worker_error("[worker]\n\nconcurency = 4\n");
  CHECK(contains(msg, "w.toml:3"));
  CHECK(contains(msg, "worker.concurency"));
  CHECK(contains(msg, "unknown key"));
}

TEST_CASE("kind mistakes name the file, line and key", "[config][worker]") {
  CHECK(contains(worker_error("[kinds.x]\ntimeout = \"5m\"\n"), "kinds.x: needs exec = [...] or http"));
  CHECK(contains(worker_error("[kinds.x]\nexec = [\"/bin/true\"]\nhttp = { url = \"http://a\" }\n"),
                 "has both exec and http"));
  auto msg = worker_error("[kinds.x]\nexec = []\n");
  CHECK(contains(msg, "w.toml:2"));
  CHECK(contains(msg, "kinds.x.exec"));
  CHECK(contains(worker_error("[kinds.x]\nexec = [\"\"]\n"), "must not be empty"));
  CHECK(contains(worker_error("[kinds.x]\nexec = [1]\n"), "array of strings"));
  CHECK(contains(worker_error("[kinds.noop]\nexec = [\"/bin/true\"]\n"), "built-in kind"));
  CHECK(contains(worker_error("[kinds.x]\nhttp = { url = \"https://a.example\" }\n"), "only http://"));
  CHECK(contains(worker_error("[kinds.x]\nhttp = { timeout = \"1s\" }\n"), "needs a url"));
  CHECK(contains(worker_error("[kinds.x]\nhttp = { url = \"http://a\", retries = 3 }\n"), "kinds.x.http.retries"));
  CHECK(contains(worker_error("[kinds.x]\nexec = [\"/bin/true\"]\nmax_attempts = 0\n"), "between 1 and 1000"));
  CHECK(contains(worker_error("[kinds.x]\nexec = [\"/bin/true\"]\nbackoff = \"linear\"\n"), "kinds.x.backoff"));
  CHECK(contains(worker_error("[kinds.x]\nexec = [\"/bin/true\"]\nenv = { A = 1 }\n"), "kinds.x.env.A"));
  CHECK(contains(worker_error("[kinds.x]\nexec = [\"/bin/true\"]\nlimits = { memory = \"1 parsec\" }\n"),
                 "unknown unit"));
  CHECK(contains(worker_error("[kinds.x]\nexec = [\"/bin/true\"]\nlimits = { cpu = \"100ms\" }\n"), "at least 1s"));
  CHECK(contains(worker_error("[kinds.x]\nexec = [\"/bin/true\"]\nlimits = { disk = 5 }\n"), "kinds.x.limits.disk"));
  msg = worker_error("[kinds.x]\nexec = [\"/bin/true\"]\n\nretry = 3\n");
  CHECK(contains(msg, "w.toml:4"));
  CHECK(contains(msg, "kinds.x.retry: unknown key"));
}

TEST_CASE("sizes of memory limits", "[config][worker]") {
  auto mem = [](const std::string& v) {
    return *parse_config("[kinds.x]\nexec = [\"/bin/true\"]\nlimits = { memory = " + v + " }\n", "w.toml")
                .kinds.at("x")
                .limits.memory_bytes;
  };
  CHECK(mem("\"512MiB\"") == 512ULL << 20);
  CHECK(mem("\"100MB\"") == 100000000ULL);
  CHECK(mem("\"2 GiB\"") == 2ULL << 30);
  CHECK(mem("4096") == 4096ULL);
  CHECK(mem("\"4096\"") == 4096ULL);
}

TEST_CASE("taskctl's checks ignore worker sections, the worker's do not", "[config][worker]") {
  const Config c = parse_config("[worker]\nbogus = 1\n[kinds.x]\nexec = 5\n", "w.toml");
  CHECK_NOTHROW(validate_config(c));
  const std::string msg = worker_error("[worker]\nbogus = 1\n[kinds.x]\nexec = 5\n");
  CHECK(contains(msg, "worker.bogus"));
  CHECK(contains(msg, "kinds.x.exec"));  // every problem, not only the first
}
