// What an exec handler run by the real taskq-workerd inherits: fds 0-3 only, even while the
// worker holds a webhook call in flight and its database connections; a minimal environment
// without the worker's database settings. And the daemons' warning about a config file that
// other users may read.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "daemon_process.hpp"
#include "system_helpers.hpp"

namespace taskq::systest {
namespace {

using namespace std::chrono_literals;
using taskq::test::DaemonProcess;
using taskq::test::wait_until;

// A listening socket on 127.0.0.1 that never answers: a webhook call to it stays in flight.
class SilentServer {
 public:
  SilentServer() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 4) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
  }
  ~SilentServer() {
    if (conn_ >= 0) ::close(conn_);
    ::close(fd_);
  }
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/slow"; }
  // True once a client connected (within the timeout); the connection is kept open, unanswered.
  bool accept_one(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
    conn_ = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    return conn_ >= 0;
  }

 private:
  int fd_;
  int conn_ = -1;
  int port_ = 0;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string temp_name(const std::string& what) {
  return (std::filesystem::temp_directory_path() /
          ("taskq-systest-" + std::to_string(::getpid()) + "-" + what + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count())))
      .string();
}

}  // namespace

TEST_CASE("workerd: an exec handler gets fds 0-3 and a minimal environment, never the database settings",
          "[workerd][exec][inherit]") {
  TestSchema db;
  SilentServer slow;
  const std::string out = temp_name("inherit");
  TempFile config("[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() +
                      "\"\n[log]\nlevel = \"debug\"\n[worker]\nqueues = { default = 4 }\npoll_interval = \"100ms\"\n"
                      "pass_env = [\"HANDLER_PASSED\"]\n"
                      "[kinds.hook]\nhttp = { url = \"" +
                      slow.url() +
                      "\", timeout = \"60s\" }\n"
                      "[kinds.inspect]\nexec = [\"/bin/sh\", \"-c\", "
                      "\"(ls -1 /proc/$$/fd) > " +
                      out + ".fds; env | sort > " + out + ".env\"]\nenv = { KIND_SETTING = \"from-the-kind\" }\n",
                  ".toml");
  DaemonProcess w(WORKERD_PATH, {"--config", config.path()},
                  clean_env({{"PGPASSWORD", "worker-secret"},
                             {"PGAPPNAME", "worker-app"},
                             {"TASKQ_DATABASE_URL", db.url()},
                             {"HANDLER_PASSED", "listed"},
                             {"NOT_LISTED", "worker-only"},
                             {"LANG", "C.UTF-8"}}));
  INFO(w.log());
  // A webhook call in flight: the worker holds its socket (and its database connections, pidfds,
  // eventfds) while the exec handler starts.
  const auto hook = enqueue(db, {"hook"});
  REQUIRE(slow.accept_one(10s));
  const auto id = enqueue(db, {"inspect"});
  REQUIRE(wait_until([&] { return job_field(db, id, "state") == "completed"; }, 10s));
  CHECK(job_field(db, hook, "state") == "running");

  // ls ran in a subshell (so the handler's shell holds no saved fd for the redirection) and listed
  // the handler's fds.
  CHECK(slurp(out + ".fds") == "0\n1\n2\n3\n");
  const std::string handler_env = slurp(out + ".env");
  INFO(handler_env);
  CHECK(contains(handler_env, "TASKQ_JOB_ID=" + std::to_string(id) + "\n"));
  CHECK(contains(handler_env, "TASKQ_JOB_KIND=inspect\n"));
  CHECK(contains(handler_env, "TASKQ_JOB_QUEUE=default\n"));
  CHECK(contains(handler_env, "TASKQ_JOB_ATTEMPT=1\n"));
  CHECK(contains(handler_env, "KIND_SETTING=from-the-kind\n"));
  CHECK(contains(handler_env, "HANDLER_PASSED=listed\n"));
  CHECK(contains(handler_env, "LANG=C.UTF-8\n"));
  CHECK(contains(handler_env, "PATH="));
  CHECK_FALSE(contains(handler_env, "NOT_LISTED"));
  CHECK_FALSE(contains(handler_env, "worker-secret"));
  CHECK_FALSE(contains(handler_env, db.url()));
  // Nothing of the worker's database settings: no PG* variable at all (its sessions' time zone and
  // date style are set on each connection, never in the process environment).
  for (const auto& line : lines_of(handler_env)) {
    CHECK(line.rfind("PG", 0) != 0);
    CHECK((line.rfind("TASKQ_", 0) != 0 || line.rfind("TASKQ_JOB_", 0) == 0));
  }
  std::remove((out + ".fds").c_str());
  std::remove((out + ".env").c_str());
}

TEST_CASE("daemons warn at start when the config file is open to other users", "[config][inherit]") {
  TestSchema db;
  TempFile config("[database]\nurl = \"" + db.url() + "\"\nschema = \"" + db.name() +
                      "\"\n[api]\nlisten = [\"127.0.0.1:0\"]\ninsecure_no_auth = true\n",
                  ".toml");
  const std::string fix = "chmod 600 " + config.path();
  for (const char* program : {WORKERD_PATH, SCHEDULERD_PATH, APID_PATH}) {
    INFO(program);
    // Readable by everyone: one warning naming the file, its mode and the fix, at start...
    REQUIRE(::chmod(config.path().c_str(), 0644) == 0);
    {
      DaemonProcess d(program, {"--config", config.path()}, clean_env());
      INFO(d.log());
      CHECK(d.wait_log("(mode 0644) is open to every user of this host", 10s));
      CHECK(contains(d.log(), fix));
    }
    // ... and under --check-config.
    auto r = taskq::test::run_program(program, {"--config", config.path(), "--check-config"}, "", clean_env());
    CHECK_EXIT(r, 0);
    CHECK(contains(r.err, "warning: config file " + config.path() + " (mode 0644)"));
    // Group-writable, or readable by a group that is not the daemon's: warned too.
    REQUIRE(::chmod(config.path().c_str(), 0620) == 0);
    r = taskq::test::run_program(program, {"--config", config.path(), "--check-config"}, "", clean_env());
    CHECK(contains(r.err, "(mode 0620) is open to group"));
    if (::getegid() != 1 && ::chown(config.path().c_str(), static_cast<uid_t>(-1), 1) == 0) {
      REQUIRE(::chmod(config.path().c_str(), 0640) == 0);
      r = taskq::test::run_program(program, {"--config", config.path(), "--check-config"}, "", clean_env());
      CHECK(contains(r.err, "(mode 0640) is open to group 1, which is not this daemon's group"));
      REQUIRE(::chown(config.path().c_str(), static_cast<uid_t>(-1), ::getegid()) == 0);
    }
    // 600, and 640 with the daemon's own group: no warning.
    for (const mode_t mode : {0600, 0640}) {
      REQUIRE(::chmod(config.path().c_str(), mode) == 0);
      r = taskq::test::run_program(program, {"--config", config.path(), "--check-config"}, "", clean_env());
      CHECK_EXIT(r, 0);
      CHECK_FALSE(contains(r.err, "warning"));
    }
  }
}

}  // namespace taskq::systest
