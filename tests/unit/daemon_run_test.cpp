// The daemon skeleton (lib/daemon run.hpp) without a database: its flags and exit codes, the
// --check-config output, and one whole run of a fake service driven by signals the service
// raises itself, with the sd_notify datagrams it sends read from a socket of the test.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "taskq/daemon/daemon.hpp"
#include "taskq/daemon/run.hpp"

using taskq::config::Config;
using taskq::config::Program;

using taskq::store::StoreOptions;

using namespace taskq;
using namespace taskq::daemon;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("taskq-unit-" + std::to_string(::getpid()) + "-" + name)).string();
}

class ConfigFile {
 public:
  explicit ConfigFile(const std::string& content) : path_(temp_path("daemon.toml")) {
    std::ofstream(path_) << content;
    ::chmod(path_.c_str(), 0600);
  }
  ~ConfigFile() { std::remove(path_.c_str()); }
  ConfigFile(const ConfigFile&) = delete;
  ConfigFile& operator=(const ConfigFile&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Output {
  int rc = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs `fn` with stdout and stderr going to files, and returns its result and what it wrote.
Output captured(const std::function<int()>& fn) {
  const std::string out_path = temp_path("stdout"), err_path = temp_path("stderr");
  std::fflush(stdout);
  std::fflush(stderr);
  const int saved_out = ::dup(1), saved_err = ::dup(2);
  const int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ::dup2(out_fd, 1);
  ::dup2(err_fd, 2);
  Output o;
  o.rc = fn();
  std::fflush(stdout);
  std::fflush(stderr);
  ::dup2(saved_out, 1);
  ::dup2(saved_err, 2);
  for (const int fd : {saved_out, saved_err, out_fd, err_fd}) ::close(fd);
  o.out = slurp(out_path);
  o.err = slurp(err_path);
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return o;
}

int run_with(const Daemon& d, std::vector<std::string> args) {
  args.insert(args.begin(), d.name);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return run(static_cast<int>(args.size()), argv.data(), d);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// A daemon whose service records what the skeleton asks of it.
struct Fake {
  std::vector<std::string> calls;
  int checks = 0;
  std::function<void(int)> on_check;  // the nth check (1: at start, 2: at SIGHUP)
  std::function<void()> on_start;

  Daemon daemon() {
    return {"taskq-faked",
            "1.2.3",
            "does nothing for tests",
            [this](const Config&) {
              ++checks;
              if (on_check) on_check(checks);
            },
            [](const Config&) { return std::string("nothing to describe"); },
            [this](const Config&, Service& s) {
              calls.push_back("build");
              s.start = [this] {
                calls.push_back("start");
                if (on_start) on_start();
              };
              s.status = [this] { return "status " + std::to_string(calls.size() > 3 ? 2 : 1); };
              s.healthy = [this](Duration) {
                calls.push_back("healthy");
                return true;
              };
              s.reload = [this](const Config& c) {
                calls.push_back("reload");
                ::raise(SIGTERM);
                return "reloaded " + c.source;
              };
              s.stopping_graceful = " gracefully";
              s.stopping_now = " at once";
              s.stop = [this](bool graceful) { calls.push_back(graceful ? "stop graceful" : "stop now"); };
            }};
  }
};

// The skeleton blocks the stop and reload signals in this thread and ignores SIGPIPE: both as
// they were again for the tests that follow.
class SignalsRestored {
 public:
  SignalsRestored() {
    pthread_sigmask(SIG_SETMASK, nullptr, &mask_);
    sigaction(SIGPIPE, nullptr, &pipe_);
  }
  ~SignalsRestored() {
    pthread_sigmask(SIG_SETMASK, &mask_, nullptr);
    sigaction(SIGPIPE, &pipe_, nullptr);
  }
  SignalsRestored(const SignalsRestored&) = delete;
  SignalsRestored& operator=(const SignalsRestored&) = delete;

 private:
  sigset_t mask_{};
  struct sigaction pipe_ {};
};

// A datagram socket standing in for systemd's NOTIFY_SOCKET.
class NotifySocket {
 public:
  NotifySocket() : path_(temp_path("notify.sock")) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    ::unlink(path_.c_str());
    REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  std::vector<std::string> messages() const {
    std::vector<std::string> out;
    char buf[512];
    for (ssize_t n; (n = ::recv(fd_, buf, sizeof buf, 0)) > 0;) out.emplace_back(buf, static_cast<std::size_t>(n));
    return out;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace

TEST_CASE("daemon flags: help and version exit 0, a usage error 2, -c and --check-config are read", "[daemon]") {
  Flags flags;
  std::string arg0 = "taskq-faked", a1 = "--version";
  char* version[] = {arg0.data(), a1.data(), nullptr};
  Output o = captured([&] { return parse_flags(2, version, "taskq-faked", "1.2.3", "desc", flags).value_or(-1); });
  CHECK(o.rc == exit_ok);
  CHECK(contains(o.out, "taskq-faked 1.2.3"));

  std::string help = "--help";
  char* with_help[] = {arg0.data(), help.data(), nullptr};
  o = captured([&] { return parse_flags(2, with_help, "taskq-faked", "1.2.3", "desc", flags).value_or(-1); });
  CHECK(o.rc == exit_ok);
  CHECK(contains(o.out, "--check-config"));
  CHECK(contains(o.out, "Check the configuration and exit (0 valid, 78 invalid)"));

  std::string bogus = "--bogus";
  char* with_bogus[] = {arg0.data(), bogus.data(), nullptr};
  o = captured([&] { return parse_flags(2, with_bogus, "taskq-faked", "1.2.3", "desc", flags).value_or(-1); });
  CHECK(o.rc == exit_usage);
  CHECK(contains(o.err, "--bogus"));

  std::string c = "-c", file = "/etc/x.toml", check = "--check-config";
  char* full[] = {arg0.data(), c.data(), file.data(), check.data(), nullptr};
  CHECK_FALSE(parse_flags(4, full, "taskq-faked", "1.2.3", "desc", flags).has_value());
  CHECK(flags.config_path == "/etc/x.toml");
  CHECK(flags.check_config);
}

TEST_CASE("daemon --help is NAME: SUMMARY (see man NAME)", "[daemon]") {
  Fake fake;
  const Output o = captured([&] { return run_with(fake.daemon(), {"--help"}); });
  CHECK(o.rc == exit_ok);
  CHECK(contains(o.out, "taskq-faked: does nothing for tests (see man taskq-faked)"));
  CHECK(fake.calls.empty());
}

TEST_CASE("daemon --check-config: 0 and the summary, or 78 and the reason, and nothing started", "[daemon]") {
  const ConfigFile file("[log]\nlevel = \"warn\"\n");
  Fake fake;
  Output o = captured([&] { return run_with(fake.daemon(), {"--config", file.path(), "--check-config"}); });
  CHECK(o.rc == exit_ok);
  CHECK(o.out == file.path() + ": OK: nothing to describe\n");
  CHECK(fake.checks == 1);
  CHECK(fake.calls.empty());

  fake.on_check = [](int) { throw Error(Errc::invalid_input, "x.toml: worker.queues: bad"); };
  o = captured([&] { return run_with(fake.daemon(), {"--config", file.path(), "--check-config"}); });
  CHECK(o.rc == exit_config);
  CHECK(o.err == "taskq-faked: x.toml: worker.queues: bad\n");
  CHECK(o.out.empty());

  o = captured([&] { return run_with(fake.daemon(), {"--config", temp_path("missing.toml"), "--check-config"}); });
  CHECK(o.rc == exit_config);
  CHECK(contains(o.err, "taskq-faked: "));
  CHECK(fake.calls.empty());

  // Without --check-config an invalid file stops the daemon before anything is built, too.
  o = captured([&] { return run_with(fake.daemon(), {"--config", file.path()}); });
  CHECK(o.rc == exit_config);
  CHECK(fake.calls.empty());
}

TEST_CASE("daemon: an error from start exits 69, 70 or 78 after cannot start", "[daemon]") {
  const SignalsRestored restore;
  const ConfigFile file("");
  const auto exit_for = [&](Errc code, bool invalid_is_config) {
    Fake fake;
    fake.on_start = [code] { throw Error(code, "no luck"); };
    Daemon d = fake.daemon();
    d.build = [build = d.build, invalid_is_config](const Config& c, Service& s) {
      build(c, s);
      s.invalid_input_at_start_is_config = invalid_is_config;
    };
    const Output o = captured([&] { return run_with(d, {"--config", file.path()}); });
    CHECK(contains(o.err, "cannot start: no luck"));
    CHECK(fake.calls == std::vector<std::string>{"build", "start"});
    return o.rc;
  };
  CHECK(exit_for(Errc::unavailable, false) == exit_unavailable);
  CHECK(exit_for(Errc::not_migrated, false) == exit_unavailable);
  CHECK(exit_for(Errc::internal, false) == exit_internal);
  CHECK(exit_for(Errc::invalid_input, false) == exit_internal);
  CHECK(exit_for(Errc::invalid_input, true) == exit_config);
  CHECK(exit_for(Errc::unavailable, true) == exit_unavailable);
}

TEST_CASE("daemon: READY and STATUS, the watchdog, SIGHUP reloads, SIGTERM stops gracefully", "[daemon]") {
  const SignalsRestored restore;
  const ConfigFile file("");
  const NotifySocket notify;
  ::setenv("WATCHDOG_USEC", "2000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  Fake fake;
  fake.on_start = [] { ::raise(SIGHUP); };  // signals are blocked by now: it waits for the loop
  const Output o = captured([&] { return run_with(fake.daemon(), {"--config", file.path()}); });
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");

  CHECK(o.rc == exit_ok);
  CHECK(fake.checks == 2);  // at start and at SIGHUP
  CHECK(fake.calls == std::vector<std::string>{"build", "start", "healthy", "reload", "healthy", "stop graceful"});
  CHECK(contains(o.err, "reloaded " + file.path()));
  CHECK(contains(o.err, "SIGTERM: stopping gracefully"));
  // STATUS is sent after READY and again only when it changes.
  CHECK(notify.messages() == std::vector<std::string>{"READY=1", "STATUS=status 1", "WATCHDOG=1", "WATCHDOG=1",
                                                      "STATUS=status 2", "STOPPING=1"});
}

TEST_CASE("daemon: a reload that fails its checks changes nothing, SIGINT stops at once", "[daemon]") {
  const SignalsRestored restore;
  const ConfigFile file("");
  Fake fake;
  fake.on_start = [] { ::raise(SIGHUP); };
  fake.on_check = [](int n) {
    if (n < 2) return;
    ::raise(SIGINT);
    throw Error(Errc::invalid_input, "x.toml: no good");
  };
  const Output o = captured([&] { return run_with(fake.daemon(), {"--config", file.path()}); });
  CHECK(o.rc == exit_ok);
  CHECK(fake.calls == std::vector<std::string>{"build", "start", "stop now"});  // no watchdog expected
  CHECK(contains(o.err, "reload refused, keeping the running configuration: x.toml: no good"));
  CHECK(contains(o.err, "SIGINT: stopping at once"));
}

TEST_CASE("daemon summaries: the scheduler's lease term", "[daemon]") {
  CHECK(describe_term(0) == "standby");
  CHECK(describe_term(7) == "leading (term 7)");
}

TEST_CASE("daemon store options: [database], the program's session settings and its name", "[daemon]") {
  Config c;
  c.database.url = "postgresql://db/taskq";
  c.database.schema = "other";
  const StoreOptions o = store_options(c, Program::schedulerd);
  CHECK(o.url == "postgresql://db/taskq");
  CHECK(o.schema == "other");
  CHECK(o.connect_timeout == c.database.connect_timeout);
  CHECK(o.application_name == "taskq-schedulerd");
  CHECK(store_options(c, Program::workerd).application_name == "taskq-workerd");
  CHECK(store_options(c, Program::apid).application_name == "taskq-apid");
  CHECK(o.session.statement_timeout == c.database.session(Program::schedulerd).statement_timeout);
}
