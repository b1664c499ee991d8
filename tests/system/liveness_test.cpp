// Liveness edges with the real binaries (taskq-workerd and taskq-schedulerd against a real
// PostgreSQL): a worker whose row vanished registers again and keeps its job; a job rescued away
// from a worker that was frozen past the grace is stopped there (its process group killed) as
// soon as the worker runs again, and its next attempt proceeds.
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <fstream>

#include "daemon_process.hpp"
#include "system_helpers.hpp"

namespace taskq::systest {
namespace {

using namespace std::chrono_literals;
using taskq::test::DaemonProcess;
using taskq::test::wait_until;

std::string database_section(const TestSchema& db) {
  return "[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() + "\"\n[log]\nlevel = \"debug\"\n";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool pid_gone(pid_t pid) {
  return ::kill(pid, 0) == -1 && errno == ESRCH;
}

// A scheduler that rescues fast: a worker silent for a second is dead.
const std::string fast_rescue = "[scheduler]\nworker_grace = \"1s\"\nrescue_interval = \"200ms\"\n";

std::string worker_section() {
  return "[worker]\nqueues = { default = 4 }\npoll_interval = \"100ms\"\nheartbeat_interval = \"200ms\"\n"
         "shutdown_timeout = \"5s\"\n";
}

}  // namespace

// Waits for `cond`; on failure shows both daemons' logs.
#define REQUIRE_WITHIN(cond, timeout)                                                       \
  do {                                                                                      \
    const bool held_ = wait_until([&] { return (cond); }, timeout);                         \
    INFO("--- workerd ---\n" << worker.log() << "--- schedulerd ---\n" << scheduler.log()); \
    REQUIRE(held_);                                                                         \
  } while (false)

TEST_CASE("workerd: its row deleted while a job runs, it registers again and the job is not rescued",
          "[workerd][liveness]") {
  TestSchema db;
  TempFile runs("");
  // Each run appends a line, then works for 2 s.
  TempFile config(database_section(db) + worker_section() + fast_rescue +
                      "[kinds.work]\nexec = [\"/bin/sh\", \"-c\", \"echo run >> " + runs.path() + "; exec sleep 2\"]\n",
                  ".toml");
  DaemonProcess scheduler(SCHEDULERD_PATH, {"--config", config.path()}, clean_env());
  DaemonProcess worker(WORKERD_PATH, {"--config", config.path()}, clean_env());
  const auto pid = std::to_string(worker.pid());
  REQUIRE_WITHIN(db.scalar("SELECT count(*) FROM workers WHERE pid = " + pid) == "1", 10s);
  const auto worker_id = db.scalar("SELECT id FROM workers WHERE pid = " + pid);
  const long long id = enqueue(db, {"work"});
  REQUIRE_WITHIN(read_file(runs.path()) == "run\n", 10s);
  REQUIRE(job_field(db, id, "state") == "running");

  db.exec("DELETE FROM workers");
  REQUIRE_WITHIN(contains(worker.log(), "its row in workers had vanished; registered again under the same id"), 5s);
  CHECK(db.scalar("SELECT id || ' ' || pid FROM workers") == worker_id + " " + pid);
  const auto listed = taskctl(db, {"workers"});
  CHECK_EXIT(listed, 0);
  CHECK(contains(listed.out, pid));

  REQUIRE_WITHIN(job_field(db, id, "state") == "completed", 10s);
  CHECK(job_field(db, id, "attempt") == "1");
  CHECK(job_field(db, id, "COALESCE(errors::text, '-')") == "-");
  CHECK(read_file(runs.path()) == "run\n");  // one run only
}

TEST_CASE("workerd: a job rescued while its worker was frozen is stopped there when the worker wakes",
          "[workerd][liveness]") {
  TestSchema db;
  TempFile pidfile("");
  // Attempt 1 records its pid and runs for a minute; later attempts succeed at once.
  TempFile config(database_section(db) + worker_section() + fast_rescue +
                      "[kinds.long]\nexec = [\"/bin/sh\", \"-c\", \"if [ \\\"$TASKQ_JOB_ATTEMPT\\\" = 1 ]; then "
                      "echo $$ > " +
                      pidfile.path() + "; exec sleep 60; fi\"]\n",
                  ".toml");
  DaemonProcess worker(WORKERD_PATH, {"--config", config.path()}, clean_env());
  DaemonProcess scheduler(SCHEDULERD_PATH, {"--config", config.path()}, clean_env());
  const long long id = enqueue(db, {"long", "--max-attempts", "3"});
  REQUIRE_WITHIN(!trim(read_file(pidfile.path())).empty(), 10s);
  const auto handler = static_cast<pid_t>(std::stol(trim(read_file(pidfile.path()))));

  // Frozen past the grace: the leader rescues the job (a failed attempt, "worker lost").
  worker.signal(SIGSTOP);
  const bool rescued = wait_until([&] { return job_field(db, id, "state") != "running"; }, 10s);
  worker.signal(SIGCONT);
  REQUIRE_WITHIN(rescued, 0ms);
  CHECK(contains(job_field(db, id, "errors"), "worker lost"));
  // Awake again, the worker learns the job is no longer its own and kills that run.
  REQUIRE_WITHIN(pid_gone(handler), 3s);
  const std::string trace_id = job_field(db, id, "substr(traceparent, 4, 32)");
  REQUIRE_WITHIN(contains(worker.log(), "job " + std::to_string(id) +
                                            " (queue default, kind long, trace_id=" + trace_id + ") attempt 1"),
                 5s);
  // The next attempt runs and completes.
  REQUIRE_WITHIN(job_field(db, id, "state") == "completed", 10s);
  CHECK(job_field(db, id, "attempt") == "2");
  CHECK(job_field(db, id, "jsonb_array_length(errors)") == "1");
}

TEST_CASE("workerd: a job rescued for good while its worker was frozen is stopped there at the next heartbeat",
          "[workerd][liveness]") {
  TestSchema db;
  TempFile pidfile("");
  // One attempt only: the rescue fails the job for good, so no new attempt is claimed here and
  // the handler outputs nothing for a minute. Only the worker's heartbeat check can stop it.
  TempFile config(database_section(db) + worker_section() + fast_rescue +
                      "[kinds.long]\nexec = [\"/bin/sh\", \"-c\", \"echo $$ > " + pidfile.path() +
                      "; exec sleep 60\"]\n",
                  ".toml");
  DaemonProcess worker(WORKERD_PATH, {"--config", config.path()}, clean_env());
  DaemonProcess scheduler(SCHEDULERD_PATH, {"--config", config.path()}, clean_env());
  const long long id = enqueue(db, {"long", "--max-attempts", "1"});
  REQUIRE_WITHIN(!trim(read_file(pidfile.path())).empty(), 10s);
  const auto handler = static_cast<pid_t>(std::stol(trim(read_file(pidfile.path()))));

  worker.signal(SIGSTOP);
  const bool rescued = wait_until([&] { return job_field(db, id, "state") == "failed"; }, 10s);
  worker.signal(SIGCONT);
  REQUIRE_WITHIN(rescued, 0ms);
  CHECK(contains(job_field(db, id, "errors"), "worker lost"));
  REQUIRE_WITHIN(pid_gone(handler), 3s);
  CHECK(job_field(db, id, "state") == "failed");
  CHECK(job_field(db, id, "attempt") == "1");
}

}  // namespace taskq::systest
