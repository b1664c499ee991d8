// taskq-workerd, the real binary, against a real PostgreSQL: handlers and the exec protocol,
// retries, timeouts, cancellation, shutdown, crashes and rescue, database restarts.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "daemon_process.hpp"
#include "system_helpers.hpp"
#include "workerd_helpers.hpp"

namespace taskq::systest {
namespace {

using namespace std::chrono_literals;
using taskq::test::DaemonProcess;
using taskq::test::wait_until;

bool pid_gone(const std::string& pid_text) {
  const pid_t pid = static_cast<pid_t>(std::stol(trim(pid_text)));
  return ::kill(pid, 0) == -1 && errno == ESRCH;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("taskq-wtest-" + std::to_string(::getpid()) + "-" + name + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count())))
      .string();
}

// A kind "long" whose handler writes its pid to `pidfile`, then sleeps 30 s.
std::string long_kind(const std::string& pidfile) {
  return "[kinds.long]\nexec = [\"/bin/sh\", \"-c\", \"echo $$ > " + pidfile + "; exec sleep 30\"]\n";
}

// Enqueues a "long" job and waits until its handler runs; returns the job id.
long long start_long_job(const TestSchema& db, Workerd& w, const std::string& pidfile) {
  const auto id = enqueue(db, {"long"});
  REQUIRE_STATE(db, id, "running", w);
  REQUIRE(wait_until([&] { return !trim(read_file(pidfile)).empty(); }, 5s));
  return id;
}

}  // namespace

TEST_CASE("workerd: built-in noop, sleep and fail, and an unknown kind fails at once", "[workerd]") {
  TestSchema db;
  Workerd w(db, "");
  const auto noop = enqueue(db, {"noop"});
  const auto sleep = enqueue(db, {"sleep", R"({"ms": 50})"});
  const auto fail = enqueue(db, {"fail", R"({"message": "boom"})", "--max-attempts", "1"});
  const auto unknown = enqueue(db, {"mystery"});
  REQUIRE_STATE(db, noop, "completed", w);
  REQUIRE_STATE(db, sleep, "completed", w);
  REQUIRE_STATE(db, fail, "failed", w);
  CHECK(job_field(db, fail, "errors->0->>'message'") == "boom");
  REQUIRE_STATE(db, unknown, "failed", w);
  CHECK(job_field(db, unknown, "attempt") == "1");
  const auto msg = job_field(db, unknown, "errors->0->>'message'");
  CHECK(contains(msg, "no handler for kind 'mystery'"));
  CHECK(contains(msg, "[kinds.mystery]"));
  CHECK(job_field(db, noop, "worker_id") == db.scalar("SELECT id::text FROM workers"));
}

TEST_CASE("workerd: an exec job gets args, environment, reports progress and a result", "[workerd][exec]") {
  TestSchema db;
  Workerd w(db, R"(
[kinds.echo]
exec = ["/bin/sh", "-c", '''args=$(cat); echo "progress 40 reading" >&3; echo "result {\"args\": $args, \"env\": \"$TASKQ_JOB_ID $TASKQ_JOB_KIND $TASKQ_JOB_QUEUE $TASKQ_JOB_ATTEMPT $TASKQ_JOB_MAX_ATTEMPTS $GREETING\", \"db\": \"${TASKQ_DATABASE_URL:-unset}\", \"pwd\": \"$(pwd)\"}" >&3''']
env = { GREETING = "hi" }
working_dir = "/tmp"
[kinds.cat]
exec = ["/bin/cat"]
)",
            "queues = { default = 8 }", {{"TASKQ_DATABASE_URL", db.url()}});
  const auto id = enqueue(db, {"echo", R"({"x": 1})", "--max-attempts", "7"});
  REQUIRE_STATE(db, id, "completed", w);
  CHECK(job_field(db, id, "result->'args'") == R"({"x": 1})");
  CHECK(job_field(db, id, "result->>'env'") == std::to_string(id) + " echo default 1 7 hi");
  CHECK(job_field(db, id, "result->>'db'") == "unset");  // the worker's TASKQ_* settings are not passed on
  CHECK(job_field(db, id, "result->>'pwd'") == "/tmp");
  CHECK(job_field(db, id, "progress->>'percent'") == "40");
  CHECK(job_field(db, id, "progress->>'message'") == "reading");

  // Without a result line, stdout that is one JSON value is the result.
  const auto cat = enqueue(db, {"cat", R"({"list": [1, 2]})"});
  REQUIRE_STATE(db, cat, "completed", w);
  CHECK(job_field(db, cat, "result") == R"({"list": [1, 2]})");
}

TEST_CASE("workerd: failures retry with backoff, one error entry per attempt, then fail", "[workerd][exec]") {
  TestSchema db;
  Workerd w(db, R"(
[kinds.flaky]
exec = ["/bin/sh", "-c", "echo oops $TASKQ_JOB_ATTEMPT >&2; exit 3"]
max_attempts = 3
backoff = "10ms"
[kinds.bad_input]
exec = ["/bin/sh", "-c", "echo cannot parse >&2; exit 65"]
[kinds.crash]
exec = ["/bin/sh", "-c", "kill -SEGV $$"]
max_attempts = 1
)");
  const auto flaky = enqueue(db, {"flaky"});
  const auto bad = enqueue(db, {"bad_input"});
  const auto crash = enqueue(db, {"crash"});
  REQUIRE_STATE(db, flaky, "failed", w);
  CHECK(job_field(db, flaky, "attempt") == "3");
  CHECK(job_field(db, flaky, "max_attempts") == "3");  // the kind's setting, recorded on the job
  CHECK(job_field(db, flaky, "jsonb_array_length(errors)") == "3");
  for (int i = 0; i < 3; ++i) {
    const std::string e = "errors->" + std::to_string(i);
    CHECK(job_field(db, flaky, e + "->>'message'") == "exit status 3");
    CHECK(job_field(db, flaky, e + "->>'attempt'") == std::to_string(i + 1));
    CHECK(job_field(db, flaky, e + "->>'exit_status'") == "3");
    CHECK(job_field(db, flaky, e + "->>'stderr_tail'") == "oops " + std::to_string(i + 1) + "\n");
  }
  // Exit 65: failed at once, no retries.
  REQUIRE_STATE(db, bad, "failed", w);
  CHECK(job_field(db, bad, "attempt") == "1");
  CHECK(job_field(db, bad, "jsonb_array_length(errors)") == "1");
  CHECK(contains(job_field(db, bad, "errors->0->>'message'"), "65"));
  // A handler that dies of a signal harms only its own job.
  REQUIRE_STATE(db, crash, "failed", w);
  CHECK(contains(job_field(db, crash, "errors->0->>'message'"), "signal 11"));
  CHECK(w.proc().running());
}

TEST_CASE("workerd: exit 75 snoozes without using up an attempt", "[workerd][exec]") {
  TestSchema db;
  const auto marker = temp_path("snooze");
  Workerd w(db, R"(
[kinds.later]
exec = ["/bin/sh", "-c", "if [ -e )" +
                    marker + R"( ]; then echo done; exit 0; fi; touch )" + marker +
                    R"(; echo 'snooze 0.05' >&3; exit 75"]
max_attempts = 1
)");
  const auto id = enqueue(db, {"later"});
  REQUIRE_STATE(db, id, "completed", w);
  CHECK(job_field(db, id, "attempt") == "1");  // the snoozed run did not count
  CHECK(job_field(db, id, "errors IS NULL") == "true");
  std::remove(marker.c_str());
}

TEST_CASE("workerd: a timeout kills the whole process group", "[workerd][exec]") {
  TestSchema db;
  const auto pidfile = temp_path("pid");
  const auto stubborn_pidfile = temp_path("stubborn");
  Workerd w(db, R"(
[kinds.slow]
exec = ["/bin/sh", "-c", "echo $$ > )" +
                    pidfile + R"(; sleep 30"]
timeout = "300ms"
max_attempts = 1
[kinds.stubborn]
exec = ["/bin/sh", "-c", "trap '' TERM; echo $$ > )" +
                    stubborn_pidfile + R"(; while :; do sleep 0.05; done"]
timeout = "200ms"
kill_grace = "200ms"
max_attempts = 1
)");
  const auto slow = enqueue(db, {"slow"});
  const auto stubborn = enqueue(db, {"stubborn"});
  REQUIRE_STATE(db, slow, "failed", w);
  CHECK(job_field(db, slow, "errors->0->>'message'") == "timed out after 300ms");
  CHECK(pid_gone(read_file(pidfile)));
  REQUIRE_STATE(db, stubborn, "failed", w);
  CHECK(job_field(db, stubborn, "errors->0->>'message'") == "timed out after 200ms");
  CHECK(pid_gone(read_file(stubborn_pidfile)));
  CHECK(contains(w.proc().log(), "SIGKILL"));
  std::remove(pidfile.c_str());
  std::remove(stubborn_pidfile.c_str());
}

TEST_CASE("workerd: cancelling a running job stops it within a second", "[workerd][exec]") {
  TestSchema db;
  const auto pidfile = temp_path("cancel");
  Workerd w(db, long_kind(pidfile));
  const auto id = start_long_job(db, w, pidfile);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE_EXIT(taskctl(db, {"cancel", std::to_string(id)}), 0);
  REQUIRE_STATE(db, id, "cancelled", w);
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  CHECK(elapsed < 1s);
  CHECK(pid_gone(read_file(pidfile)));
  // A built-in sleep is cancelled too.
  const auto s = enqueue(db, {"sleep", R"({"ms": 30000})"});
  REQUIRE_STATE(db, s, "running", w);
  REQUIRE_EXIT(taskctl(db, {"cancel", std::to_string(s)}), 0);
  REQUIRE_STATE(db, s, "cancelled", w);
  std::remove(pidfile.c_str());
}

TEST_CASE("workerd: SIGTERM lets short jobs finish and returns the rest without using an attempt",
          "[workerd][signals]") {
  TestSchema db;
  Workerd w(db, "", "queues = { default = 8 }\nshutdown_timeout = \"300ms\"");
  const auto quick = enqueue(db, {"sleep", R"({"ms": 100})"});
  const auto a = enqueue(db, {"sleep", R"({"ms": 60000})"});
  const auto b = enqueue(db, {"sleep", R"({"ms": 60000})"});
  REQUIRE(
      wait_until([&] { return count_jobs(db, "state = 'running'") + count_jobs(db, "state = 'completed'") == 3; }, 5s));
  w.proc().signal(SIGTERM);
  const auto rc = w.proc().wait_exit(10s);
  INFO(w.proc().log());
  REQUIRE(rc == 0);
  CHECK(state_of(db, quick) == "completed");
  for (auto id : {a, b}) {
    CHECK(state_of(db, id) == "available");
    CHECK(job_field(db, id, "attempt") == "0");
    CHECK(job_field(db, id, "errors IS NULL") == "true");
  }
  CHECK(db.scalar("SELECT count(*) FROM workers") == "0");
}

TEST_CASE("workerd: SIGINT stops at once and returns running jobs", "[workerd][signals]") {
  TestSchema db;
  Workerd w(db, "");
  const auto a = enqueue(db, {"sleep", R"({"ms": 60000})"});
  REQUIRE_STATE(db, a, "running", w);
  w.proc().signal(SIGINT);
  REQUIRE(w.proc().wait_exit(5s) == 0);
  CHECK(state_of(db, a) == "available");
  CHECK(job_field(db, a, "attempt") == "0");
}

TEST_CASE("workerd: kill -9 under load, then rescue: every job completes, none is lost", "[workerd][rescue]") {
  TestSchema db;
  std::string lines;
  const int n = 600;
  for (int i = 0; i < n; ++i)
    lines += R"({"kind": "sleep", "args": {"ms": 50}})"
             "\n";
  REQUIRE_EXIT(taskctl(db, {"enqueue", "--file", "-"}, lines), 0);
  {
    Workerd w(db, "", "queues = { default = 20 }");
    REQUIRE(wait_until([&] { return count_jobs(db, "state = 'completed'") >= 100; }, 20s));
    w.proc().signal(SIGKILL);
    REQUIRE(w.proc().wait_exit(5s) == 128 + SIGKILL);
  }
  const auto stuck = count_jobs(db, "state = 'running'");
  CHECK(stuck > 0);  // it died holding jobs
  // Its heartbeat ages past the grace; rescue puts its jobs back.
  REQUIRE(wait_until(
      [&] {
        const auto r = taskctl(db, {"rescue", "--grace", "500ms"});
        return r.exit_code == 0 && count_jobs(db, "state = 'running'") == 0;
      },
      10s));
  CHECK(count_jobs(db, "errors->0->>'message' LIKE 'worker lost%'") == stuck);
  Workerd w2(db, "", "queues = { default = 20 }");
  REQUIRE(wait_until([&] { return count_jobs(db, "state = 'completed'") == n; }, 30s));
  CHECK(count_jobs(db, "state <> 'completed'") == 0);
}

TEST_CASE("workerd: a paused queue is not claimed and resume wakes the worker", "[workerd]") {
  TestSchema db;
  Workerd w(db, "", "queues = { default = 4, other = 4 }");
  REQUIRE_EXIT(taskctl(db, {"pause", "default"}), 0);
  const auto held = enqueue(db, {"noop"});
  const auto other = enqueue(db, {"noop", "--queue", "other"});
  REQUIRE_STATE(db, other, "completed", w);
  // Several safety polls later it is still waiting.
  const auto polls_before = w.proc().log().size();
  REQUIRE(wait_until([&] { return w.proc().log().size() > polls_before || count_jobs(db) > 0; }, 1s));
  CHECK(state_of(db, held) == "available");
  REQUIRE_EXIT(taskctl(db, {"resume", "default"}), 0);
  REQUIRE_STATE(db, held, "completed", w);
}

TEST_CASE("workerd: delete_completed removes completed jobs and keeps failed ones", "[workerd]") {
  TestSchema db;
  Workerd w(db, "", "queues = { default = 8 }\ndelete_completed = true");
  const auto ok = enqueue(db, {"noop"});
  const auto bad = enqueue(db, {"fail", "{}", "--max-attempts", "1"});
  REQUIRE_STATE(db, bad, "failed", w);
  REQUIRE(wait_until([&] { return count_jobs(db, "id = " + std::to_string(ok)) == 0; }, 5s));
}

TEST_CASE("workerd: --check-config, bad config, unreachable database", "[workerd][config]") {
  TestSchema db;
  TempFile good(config_text(db.url(), db.name(), "[kinds.x]\nexec = [\"/bin/true\"]\n"), ".toml");
  auto r = taskq::test::run_program(WORKERD_PATH, {"--config", good.path(), "--check-config"}, "", clean_env());
  REQUIRE_EXIT(r, 0);
  CHECK(contains(r.out, "OK"));
  TempFile bad(config_text(db.url(), db.name(), "[kinds.x]\nexec = [\"/bin/true\"]\nbogus = 1\n"), ".toml");
  r = taskq::test::run_program(WORKERD_PATH, {"--config", bad.path(), "--check-config"}, "", clean_env());
  REQUIRE_EXIT(r, 78);
  CHECK(contains(r.err, bad.path()));
  CHECK(contains(r.err, "bogus"));
  r = taskq::test::run_program(WORKERD_PATH, {"--config", bad.path()}, "", clean_env());
  CHECK_EXIT(r, 78);
  TempFile nodb(config_text(unreachable_url, db.name(), ""), ".toml");
  r = taskq::test::run_program(WORKERD_PATH, {"--config", nodb.path()}, "", clean_env());
  CHECK_EXIT(r, 69);
  r = taskq::test::run_program(WORKERD_PATH, {"--version"}, "", clean_env());
  CHECK_EXIT(r, 0);
  CHECK(contains(r.out, "taskq-workerd"));
}

TEST_CASE("workerd: tells systemd READY=1 and STOPPING=1", "[workerd][systemd]") {
  TestSchema db;
  const auto sock_path = temp_path("notify");
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto next_message = [&] {
    char buf[512];
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("(nothing)");
  };
  Workerd w(db, "", "queues = { default = 8 }", {{"NOTIFY_SOCKET", sock_path}});
  CHECK(next_message() == "READY=1");
  CHECK(contains(next_message(), "STATUS=worker"));
  w.proc().signal(SIGTERM);
  CHECK(next_message() == "STOPPING=1");
  CHECK(w.proc().wait_exit(10s) == 0);
  ::close(fd);
  std::remove(sock_path.c_str());
}

TEST_CASE("workerd: SIGHUP reloads kinds when the file is valid, keeps them when not", "[workerd][signals]") {
  TestSchema db;
  Workerd w(db, "[kinds.a]\nexec = [\"/bin/true\"]\n");
  const auto a = enqueue(db, {"a"});
  REQUIRE_STATE(db, a, "completed", w);
  // Valid: kind b appears.
  std::ofstream(w.config_path()) << config_text(
      db.url(), db.name(), "[kinds.a]\nexec = [\"/bin/true\"]\n[kinds.b]\nexec = [\"/bin/true\"]\n");
  w.proc().signal(SIGHUP);
  REQUIRE(w.proc().wait_log("reloaded", 5s));
  const auto b = enqueue(db, {"b"});
  REQUIRE_STATE(db, b, "completed", w);
  // Invalid: refused, the old kinds still work.
  std::ofstream(w.config_path()) << config_text(db.url(), db.name(), "[kinds.a]\nexec = 42\n");
  w.proc().signal(SIGHUP);
  REQUIRE(w.proc().wait_log("reload refused", 5s));
  const auto b2 = enqueue(db, {"b"});
  REQUIRE_STATE(db, b2, "completed", w);
}

TEST_CASE("workerd: PostgreSQL restarted mid-run: every job completed exactly once", "[workerd][outage]") {
  OwnCluster cluster;
  const std::string& url = cluster.url();
  const int n = 3000;
  std::string lines;
  for (int i = 0; i < n; ++i)
    lines += R"({"kind": "sleep", "args": {"ms": 10}})"
             "\n";
  REQUIRE_EXIT(taskctl_raw({"--database-url", url, "enqueue", "--file", "-"}, lines), 0);
  TempFile config("[database]\nurl = \"" + url +
                      "\"\n[worker]\nqueues = { default = 50 }\npoll_interval = \"100ms\"\nheartbeat_interval = "
                      "\"200ms\"\n",
                  ".toml");
  DaemonProcess w(WORKERD_PATH, {"--config", config.path()}, clean_env());
  auto count = [&](const std::string& where) -> long long {
    const auto s = taskctl_raw({"--database-url", url, "stats", "-o", "json"});
    if (s.exit_code != 0) return -1;
    const auto v = json(s.out);
    long long total = 0;
    for (const auto& q : v.as_array()) total += q.as_object().at(where).to_number<long long>();
    return total;
  };
  REQUIRE(wait_until([&] { return count("completed") >= 300; }, 20s));
  REQUIRE_EXIT(cluster.restart(), 0);
  INFO(w.log());
  REQUIRE(wait_until([&] { return count("completed") == n; }, 60s));
  REQUIRE(w.running());
  // Exactly once: no job ran a second attempt and none recorded an error.
  const auto again =
      taskctl_raw({"--database-url", url, "list", "--state", "completed", "--limit", "100000", "-o", "jsonl"});
  REQUIRE_EXIT(again, 0);
  long long lines_seen = 0, first_attempts = 0, clean = 0;
  for (const auto& line : lines_of(again.out)) {
    if (trim(line).empty()) continue;
    const auto job = json(line).as_object();
    ++lines_seen;
    if (job.at("attempt").to_number<int>() == 1) ++first_attempts;
    if (job.at("errors").as_array().empty()) ++clean;
  }
  CHECK(lines_seen == n);
  CHECK(first_attempts == n);
  CHECK(clean == n);
  CHECK(contains(w.log(), "unreachable"));
  CHECK(contains(w.log(), "connected to PostgreSQL again"));
  w.signal(SIGTERM);
  const auto rc = w.wait_exit(10s);
  INFO("--- workerd log ---\n" << w.log());
  CHECK(rc == 0);
}

}  // namespace taskq::systest

namespace taskq::systest {

TEST_CASE("workerd: large args reach the handler whole, a flood of output harms nothing", "[workerd][exec]") {
  TestSchema db;
  Workerd w(db, R"(
[kinds.count]
exec = ["/usr/bin/wc", "-c"]
[kinds.flood]
exec = ["/bin/sh", "-c", "head -c 20000000 /dev/zero; head -c 5000000 /dev/zero >&2; echo 'result {\"survived\": true}' >&3"]
)");
  std::string big = R"({"blob": ")" + std::string(300000, 'x') + R"("})";
  TempFile args_file("{\"kind\": \"count\", \"args\": " + big + "}\n", ".jsonl");
  REQUIRE_EXIT(taskctl(db, {"enqueue", "--file", args_file.path()}), 0);
  const auto flood = enqueue(db, {"flood"});
  const auto count = std::stoll(db.scalar("SELECT id FROM jobs WHERE kind = 'count'"));
  REQUIRE_STATE(db, count, "completed", w);
  // stdin carried every byte of the args (stdout "300012\n" is one JSON value: the result).
  CHECK(job_field(db, count, "result") == "300012");
  REQUIRE_STATE(db, flood, "completed", w);
  CHECK(job_field(db, flood, "result->>'survived'") == "true");
}

TEST_CASE("workerd: taskctl workers shows the worker and what it runs", "[workerd][cli]") {
  TestSchema db;
  Workerd w(db, "", "queues = { default = 8, mail = 2 }");
  const auto id = enqueue(db, {"sleep", R"({"ms": 30000})"});
  REQUIRE_STATE(db, id, "running", w);
  const auto table = taskctl(db, {"workers"});
  REQUIRE_EXIT(table, 0);
  CHECK(contains(table.out, std::to_string(w.proc().pid())));
  CHECK(contains(table.out, "live"));
  CHECK(contains(table.out, "default,mail"));
  CHECK(contains(table.out, "1 (sleep 1)"));
  const auto js = taskctl(db, {"-o", "json", "workers"});
  REQUIRE_EXIT(js, 0);
  const auto v = json(js.out).as_array().at(0).as_object();
  CHECK(v.at("pid").to_number<int>() == w.proc().pid());
  CHECK(v.at("status").as_string() == "live");
  CHECK(v.at("concurrency").to_number<int>() == 10);
  CHECK(v.at("running_by_kind").as_object().at("sleep").to_number<int>() == 1);
  // A live worker's jobs are not rescued.
  const auto dry = taskctl(db, {"-o", "json", "rescue", "--grace", "1m", "--dry-run"});
  REQUIRE_EXIT(dry, 0);
  CHECK(json(dry.out).as_object().at("jobs").as_array().empty());
  CHECK_EXIT(taskctl(db, {"rescue", "--grace", "0s"}), 2);
}

TEST_CASE("workerd: handlers do not outlive a worker killed with -9", "[workerd][rescue]") {
  TestSchema db;
  const auto pidfile = temp_path("orphan");
  Workerd w(db, long_kind(pidfile));
  const auto id = start_long_job(db, w, pidfile);
  w.proc().signal(SIGKILL);
  REQUIRE(w.proc().wait_exit(5s) == 128 + SIGKILL);
  CHECK(wait_until([&] { return pid_gone(read_file(pidfile)); }, 5s));
  CHECK(state_of(db, id) == "running");  // until rescued
  std::remove(pidfile.c_str());
}

}  // namespace taskq::systest
