// taskq-schedulerd: one of any number leads (a lease in PostgreSQL) and fires periodic jobs and
// keeps the queue healthy; the others stand by. Reads top to bottom: parse flags, load and check
// the config, start, wait for signals, stop. See man taskq-schedulerd(8).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <cstdio>
#include <optional>
#include <string>

#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"
#include "taskq/daemon/daemon.hpp"
#include "taskq/log/log.hpp"
#include "taskq/scheduler/scheduler.hpp"

namespace {

constexpr int exit_ok = 0;
constexpr int exit_usage = 2;
constexpr int exit_unavailable = 69;  // EX_UNAVAILABLE: database unreachable or not migrated
constexpr int exit_internal = 70;     // EX_SOFTWARE
constexpr int exit_config = 78;       // EX_CONFIG

struct Flags {
  std::optional<std::string> config_path;
  bool check_config = false;
};

taskq::Config load(const Flags& flags) {
  taskq::Config c;
  if (flags.config_path)
    c = taskq::load_config_file(*flags.config_path);
  else if (auto path = taskq::default_config_path())
    c = taskq::load_config_file(*path);
  taskq::apply_env_overrides(c);
  taskq::validate_config(c);
  taskq::scheduler::validate_config(c);
  return c;
}

std::string describe(const taskq::Config& c) {
  const auto& s = c.scheduler;
  std::string names;
  for (const auto& p : s.periodic) names += (names.empty() ? "" : ", ") + p.name;
  return "lease_ttl " + taskq::format_duration(s.lease_ttl) + "; " + std::to_string(s.periodic.size()) +
         " periodic schedule(s)" + (names.empty() ? "" : " (" + names + ")");
}

std::string host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{
      "taskq-schedulerd: periodic jobs and queue maintenance, one leader at a time (see man taskq-schedulerd)"};
  app.set_version_flag("--version", std::string("taskq-schedulerd ") + TASKQ_VERSION);
  app.add_option("-c,--config", flags.config_path, "Configuration file (default /etc/taskq/taskq.toml if present)");
  app.add_flag("--check-config", flags.check_config, "Check the configuration and exit (0 valid, 78 invalid)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? exit_ok : exit_usage;
  }

  taskq::Config config;
  try {
    config = load(flags);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "taskq-schedulerd: %s\n", e.what());
    return exit_config;
  }
  if (flags.check_config) {
    std::printf("%s: OK: %s\n", config.source.c_str(), describe(config).c_str());
    return exit_ok;
  }
  taskq::setup_logging(config.log, "taskq-schedulerd");
  taskq::daemon::block_signals();

  taskq::scheduler::SchedulerOptions options;
  options.store = {config.database.url, config.database.schema, config.database.connect_timeout, "taskq-schedulerd"};
  options.config = config.scheduler;
  options.limits.max_args_bytes = config.jobs.max_args_bytes;
  options.host = host_name();
  options.pid = static_cast<int>(::getpid());
  taskq::scheduler::Scheduler scheduler(options);
  try {
    scheduler.start();
  } catch (const taskq::Error& e) {
    spdlog::error("cannot start: {}", e.what());
    return e.code() == taskq::Errc::unavailable || e.code() == taskq::Errc::not_migrated ? exit_unavailable
                                                                                         : exit_internal;
  }
  spdlog::info("started as {}: {}", scheduler.holder(), describe(config));
  taskq::daemon::notify_ready();  // connected; leading or standing by

  const auto watchdog = taskq::daemon::watchdog_interval();
  const taskq::Duration tick = watchdog ? std::min<taskq::Duration>(*watchdog, std::chrono::seconds{1})
                                        : taskq::Duration{std::chrono::seconds{1}};
  std::int64_t shown_term = -1;
  for (;;) {
    const auto sig = taskq::daemon::wait_signal(tick);
    // Both loops go round at least every second (a database call is bounded by connect_timeout
    // on reconnects); a minute without a round means something is stuck.
    if (watchdog && scheduler.healthy(std::chrono::minutes{1})) taskq::daemon::notify_watchdog();
    if (const auto t = scheduler.leading_term(); t != shown_term) {
      taskq::daemon::notify_status(t ? "leading (term " + std::to_string(t) + ")" : "standby");
      shown_term = t;
    }
    if (!sig) continue;
    if (*sig == taskq::daemon::Signal::reload) {
      spdlog::info("SIGHUP: the configuration is read at start; restart taskq-schedulerd to apply changes");
      continue;
    }
    spdlog::info("{}: stopping (finishing the current step, then resigning the lease)",
                 *sig == taskq::daemon::Signal::terminate ? "SIGTERM" : "SIGINT");
    taskq::daemon::notify_stopping();
    scheduler.stop();
    break;
  }
  return exit_ok;
}
