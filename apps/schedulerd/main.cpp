// taskq-schedulerd: one of any number leads (a lease in PostgreSQL) and fires periodic jobs and
// keeps the queue healthy; the others stand by. Reads top to bottom: parse flags, load and check
// the config, start, wait for signals, stop. See man taskq-schedulerd(8).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"
#include "taskq/daemon/app.hpp"
#include "taskq/daemon/daemon.hpp"
#include "taskq/log/log.hpp"
#include "taskq/scheduler/scheduler.hpp"

namespace {

using namespace taskq::daemon;  // exit codes, Flags

std::string describe(const taskq::Config& c) {
  const auto& s = c.scheduler;
  std::string names;
  for (const auto& p : s.periodic) names += (names.empty() ? "" : ", ") + p.name;
  return "lease_ttl " + taskq::format_duration(s.lease_ttl) + "; " + std::to_string(s.periodic.size()) +
         " periodic schedule(s)" + (names.empty() ? "" : " (" + names + ")");
}

// SIGHUP: [log] and the periodic schedules apply at once; the other keys at restart. An invalid
// file changes nothing.
void reload(const Flags& flags, taskq::scheduler::Scheduler& scheduler) {
  try {
    const taskq::Config c = load_config(flags, taskq::scheduler::validate_config);
    taskq::setup_logging(c.log, "taskq-schedulerd");
    scheduler.reload_schedules(c.scheduler.periodic);
    spdlog::info("reloaded {}: {} ([database] and the other [scheduler] keys apply at restart)", c.source, describe(c));
  } catch (const std::exception& e) {
    spdlog::error("reload refused, keeping the running configuration: {}", e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (const auto rc = parse_flags(
          argc, argv, "taskq-schedulerd", TASKQ_VERSION,
          "taskq-schedulerd: periodic jobs and queue maintenance, one leader at a time (see man taskq-schedulerd)",
          flags))
    return *rc;

  taskq::Config config;
  try {
    config = load_config(flags, taskq::scheduler::validate_config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "taskq-schedulerd: %s\n", e.what());
    return exit_config;
  }
  if (flags.check_config) {
    if (const auto warning = config_file_warning(config))
      std::fprintf(stderr, "taskq-schedulerd: warning: %s\n", warning->c_str());
    std::printf("%s: OK: %s\n", config.source.c_str(), describe(config).c_str());
    return exit_ok;
  }
  taskq::setup_logging(config.log, "taskq-schedulerd");
  if (const auto warning = config_file_warning(config)) spdlog::warn("{}", *warning);
  taskq::daemon::block_signals();

  taskq::scheduler::SchedulerOptions options;
  options.store = {config.database.url, config.database.schema, config.database.connect_timeout, "taskq-schedulerd"};
  options.store.session = config.database.session(taskq::Program::schedulerd);
  options.config = config.scheduler;
  options.limits.max_args_bytes = config.jobs.max_args_bytes;
  options.host = host_name();
  options.pid = static_cast<int>(::getpid());
  taskq::scheduler::Scheduler scheduler(options);
  try {
    scheduler.start();
  } catch (const taskq::Error& e) {
    spdlog::error("cannot start: {}", e.what());
    return exit_code_for_start(e);
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
      reload(flags, scheduler);
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
