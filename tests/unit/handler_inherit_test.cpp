// What an exec handler inherits from the worker: its environment (handler_env.hpp) and its file
// descriptors (only 0-3, whatever the worker holds open).
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <set>
#include <string>

#include "handler_env.hpp"
#include "subprocess.hpp"
#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"

using taskq::config::Config;
using taskq::config::parse_config;

using namespace taskq;
using namespace taskq::worker;

namespace {

std::string value_of(const EnvList& env, const std::string& name) {
  for (const auto& [n, v] : env)
    if (n == name) return v;
  return "(unset)";
}

std::size_t count_of(const EnvList& env, const std::string& name) {
  std::size_t n = 0;
  for (const auto& [k, v] : env) n += k == name ? 1 : 0;
  return n;
}

// Runs `script` under /bin/sh with an empty stdin and returns its stdout (the child writes little).
std::string run_sh(const std::string& script) {
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", script};
  o.env = {{"PATH", "/usr/bin:/bin"}};
  auto p = spawn_process(o);
  p.stdin_w.reset();
  const int flags = ::fcntl(p.stdout_r.get(), F_GETFL);
  ::fcntl(p.stdout_r.get(), F_SETFL, flags & ~O_NONBLOCK);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p.stdout_r.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  int status = 0;
  ::waitpid(p.pid, &status, 0);
  return out;
}

}  // namespace

TEST_CASE("handler env: a small base from the worker, nothing else unless listed", "[exec][env]") {
  const EnvList worker = {{"PATH", "/opt/bin:/usr/bin"},
                          {"HOME", "/var/lib/taskq"},
                          {"LANG", "C.UTF-8"},
                          {"LC_TIME", "de_DE.UTF-8"},
                          {"LC_", "odd"},
                          {"TZ", "Europe/Paris"},
                          {"TMPDIR", "/var/tmp"},
                          {"USER", "taskq"},
                          {"PGPASSWORD", "secret"},
                          {"PGHOST", "db"},
                          {"PGTZ", "UTC"},
                          {"PGDATESTYLE", "ISO"},
                          {"TASKQ_DATABASE_URL", "postgresql://taskq:secret@db/taskq"},
                          {"TASKQ_SCHEMA", "taskq"},
                          {"AWS_SECRET_ACCESS_KEY", "worker-only"},
                          {"HTTP_PROXY", "http://proxy:3128"},
                          {"NOTIFY_SOCKET", "/run/systemd/notify"}};
  const auto env = inherited_handler_env(worker, {"HTTP_PROXY", "NOT_SET_IN_WORKER"});
  const EnvList expected = {{"PATH", "/opt/bin:/usr/bin"},
                            {"HOME", "/var/lib/taskq"},
                            {"LANG", "C.UTF-8"},
                            {"LC_TIME", "de_DE.UTF-8"},
                            {"TZ", "Europe/Paris"},
                            {"TMPDIR", "/var/tmp"},
                            {"USER", "taskq"},
                            {"HTTP_PROXY", "http://proxy:3128"}};
  CHECK(env == expected);
}

TEST_CASE("handler env: the worker's database settings never pass, even when listed", "[exec][env]") {
  const EnvList worker = {{"PGPASSWORD", "secret"}, {"TASKQ_DATABASE_URL", "postgresql://x:secret@db/x"}};
  const auto env = inherited_handler_env(worker, {"PGPASSWORD", "TASKQ_DATABASE_URL"});
  CHECK(value_of(env, "PGPASSWORD") == "(unset)");
  CHECK(value_of(env, "TASKQ_DATABASE_URL") == "(unset)");
  // The config refuses such a listing with a message saying what to do instead.
  for (const char* name : {"PGPASSWORD", "PGSERVICEFILE", "TASKQ_DATABASE_URL"}) {
    const Config c = parse_config(std::string("[worker]\npass_env = [\"HOME\", \"") + name + "\"]\n", "w.toml");
    REQUIRE(c.worker_errors.size() == 1);
    CHECK(c.worker_errors[0].find("w.toml:2: worker.pass_env: '" + std::string(name) + "'") != std::string::npos);
    CHECK(c.worker_errors[0].find("kinds.NAME.env") != std::string::npos);
  }
  const Config ok = parse_config("[worker]\npass_env = [\"HTTP_PROXY\", \"NO_PROXY\"]\n", "w.toml");
  CHECK(ok.worker_errors.empty());
  CHECK(ok.worker.pass_env == std::vector<std::string>{"HTTP_PROXY", "NO_PROXY"});
  for (const char* bad : {"pass_env = \"HOME\"", "pass_env = [1]", "pass_env = [\"\"]", "pass_env = [\"A=B\"]"}) {
    const Config c = parse_config(std::string("[worker]\n") + bad + "\n", "w.toml");
    INFO(bad);
    REQUIRE(c.worker_errors.size() == 1);
    CHECK(c.worker_errors[0].find("worker.pass_env: must be an array of variable names") != std::string::npos);
  }
}

TEST_CASE("handler env: PATH has a default, the kind's env and TASKQ_JOB_* come last", "[exec][env]") {
  const auto inherited = inherited_handler_env({{"HOME", "/home/w"}, {"PATH", ""}}, {});
  CHECK(value_of(inherited, "PATH") == "");  // the worker's own (empty) PATH is kept as it is
  const auto bare = inherited_handler_env({{"HOME", "/home/w"}}, {});
  CHECK(value_of(bare, "PATH") == std::string(default_handler_path));

  Job job;
  job.id = 42;
  job.kind = "resize";
  job.queue = "media";
  job.attempt = 3;
  const EnvList kind_env = {{"HOME", "/srv/resize"},
                            {"PGHOST", "media-db"},
                            {"TASKQ_JOB_ID", "forged"},
                            {"TRACEPARENT", "forged"},
                            {"TRACESTATE", "forged=1"}};
  AttemptTrace trace;
  trace.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01";
  const auto env = handler_env(bare, kind_env, job, 7, trace);
  CHECK(value_of(env, "HOME") == "/srv/resize");  // the kind wins over the base
  CHECK(count_of(env, "HOME") == 1);
  CHECK(value_of(env, "PGHOST") == "media-db");  // a kind may give its handler its own database
  CHECK(value_of(env, "TASKQ_JOB_ID") == "42");  // nothing replaces the job's variables
  CHECK(count_of(env, "TASKQ_JOB_ID") == 1);
  CHECK(value_of(env, "TASKQ_JOB_KIND") == "resize");
  CHECK(value_of(env, "TASKQ_JOB_QUEUE") == "media");
  CHECK(value_of(env, "TASKQ_JOB_ATTEMPT") == "3");
  CHECK(value_of(env, "TASKQ_JOB_MAX_ATTEMPTS") == "7");
  CHECK(value_of(env, "TRACEPARENT") == trace.traceparent);  // the attempt's span, not the kind's
  CHECK(count_of(env, "TRACEPARENT") == 1);
  CHECK(count_of(env, "TRACESTATE") == 0);  // the job has none: the kind's is not passed off as its
  trace.tracestate = "rojo=1";
  const auto with_state = handler_env(bare, kind_env, job, 7, trace);
  CHECK(value_of(with_state, "TRACESTATE") == "rojo=1");
  CHECK(count_of(with_state, "TRACESTATE") == 1);
}

TEST_CASE("handler env: env_from_strings reads NAME=value entries", "[exec][env]") {
  std::string a = "A=1", b = "B==2", c = "no-equals", d = "=x";
  char* strings[] = {a.data(), b.data(), c.data(), d.data(), nullptr};
  const EnvList expected = {{"A", "1"}, {"B", "=2"}};
  CHECK(env_from_strings(strings) == expected);
  CHECK(env_from_strings(nullptr).empty());
}

TEST_CASE("spawn: only fds 0-3 reach the handler, whatever the worker has open", "[exec][spawn][fds]") {
  // Open fds of every sort the worker may hold, some of them without close-on-exec.
  const int plain = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC
  const int efd = ::eventfd(0, 0);
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
  const int high = ::fcntl(plain, F_DUPFD, 200);
  REQUIRE(plain >= 0);
  REQUIRE(efd >= 0);
  REQUIRE(high >= 200);
  // The shell lists its own fds from a child (ls, forked: another command follows, and no pipe
  // of the shell's own is open meanwhile), so only what the handler itself holds shows.
  const std::string out = run_sh("ls -1 /proc/$$/fd; true");
  std::set<int> fds;
  for (std::size_t pos = 0; pos < out.size();) {
    const auto nl = out.find('\n', pos);
    fds.insert(std::stoi(out.substr(pos, nl - pos)));
    pos = nl == std::string::npos ? out.size() : nl + 1;
  }
  CHECK(fds == std::set<int>{0, 1, 2, 3});
  for (int fd : {plain, efd, pair[0], pair[1], high}) ::close(fd);
}
