// taskq-workerd: claims jobs of its queues and runs them. Reads top to bottom: parse flags, load
// and check the config, start the worker, wait for signals, stop. See man taskq-workerd(8).
#include <spdlog/spdlog.h>
#include <cstdio>
#include <optional>
#include <string>

#include "taskq/config/config.hpp"
#include "taskq/core/error.hpp"
#include "taskq/daemon/app.hpp"
#include "taskq/daemon/daemon.hpp"
#include "taskq/log/log.hpp"
#include "taskq/worker/worker.hpp"

namespace {

using namespace taskq::daemon;  // exit codes, Flags

// The config as workerd sees it: file (or defaults), environment overrides, every check it needs.
taskq::Config load(const Flags& flags) {
  return load_config(flags, taskq::validate_worker_config);
}

std::string describe(const taskq::Config& c) {
  std::string queues, kinds;
  for (const auto& [name, limit] : c.worker.queues)
    queues += (queues.empty() ? "" : ", ") + name + "=" + std::to_string(limit);
  for (const auto& [name, k] : c.kinds) kinds += (kinds.empty() ? "" : ", ") + name;
  return "queues " + queues + "; kinds " + (kinds.empty() ? "(built-ins only)" : kinds) + " + noop, sleep, fail";
}

void reload(const Flags& flags, taskq::Worker& worker) {
  try {
    const taskq::Config c = load(flags);
    taskq::setup_logging(c.log, "taskq-workerd");
    worker.reload_kinds(c.kinds);
    spdlog::info("reloaded {}: {} (queues and database settings apply at restart)", c.source, describe(c));
  } catch (const std::exception& e) {
    spdlog::error("reload refused, keeping the running configuration: {}", e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (const auto rc =
          parse_flags(argc, argv, "taskq-workerd", TASKQ_VERSION,
                      "taskq-workerd: claims jobs from PostgreSQL and runs them (see man taskq-workerd)", flags))
    return *rc;

  taskq::Config config;
  try {
    config = load(flags);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "taskq-workerd: %s\n", e.what());
    return exit_config;
  }
  if (flags.check_config) {
    if (const auto warning = config_file_warning(config))
      std::fprintf(stderr, "taskq-workerd: warning: %s\n", warning->c_str());
    std::printf("%s: OK: %s\n", config.source.c_str(), describe(config).c_str());
    return exit_ok;
  }
  taskq::setup_logging(config.log, "taskq-workerd");
  if (const auto warning = config_file_warning(config)) spdlog::warn("{}", *warning);
  taskq::daemon::block_signals();

  taskq::WorkerOptions options;
  options.store = {config.database.url, config.database.schema, config.database.connect_timeout, "taskq-workerd"};
  options.store.session = config.database.session(taskq::Program::workerd);
  options.worker = config.worker;
  options.kinds = config.kinds;
  options.version = TASKQ_VERSION;
  options.config_source =
      config.source == "(defaults)" ? "a configuration file (none was read: pass --config FILE)" : config.source;
  taskq::Worker worker(options);
  try {
    worker.start();
  } catch (const taskq::Error& e) {
    spdlog::error("cannot start: {}", e.what());
    return exit_code_for_start(e);
  }
  taskq::daemon::notify_ready();
  taskq::daemon::notify_status("worker " + std::to_string(worker.worker_id()) + ": " + describe(config));

  const auto watchdog = taskq::daemon::watchdog_interval();
  const taskq::Duration tick = watchdog ? std::min<taskq::Duration>(*watchdog, std::chrono::seconds{1})
                                        : taskq::Duration{std::chrono::seconds{1}};
  for (;;) {
    const auto sig = taskq::daemon::wait_signal(tick);
    // The loops wait at most a poll or heartbeat interval, and a database call is bounded by
    // connect_timeout on reconnects; a minute without a round means something is stuck.
    if (watchdog && worker.healthy(std::max<taskq::Duration>(std::chrono::minutes{1}, 3 * config.worker.poll_interval)))
      taskq::daemon::notify_watchdog();
    if (!sig) continue;
    if (*sig == taskq::daemon::Signal::reload) {
      reload(flags, worker);
      continue;
    }
    const bool graceful = *sig == taskq::daemon::Signal::terminate;
    spdlog::info(
        "{}: stopping{}", graceful ? "SIGTERM" : "SIGINT",
        graceful ? " (running jobs may finish within " + taskq::format_duration(config.worker.shutdown_timeout) + ")"
                 : " now (running jobs return to the queue)");
    taskq::daemon::notify_stopping();
    worker.stop(graceful ? config.worker.shutdown_timeout : taskq::Duration{});
    break;
  }
  return exit_ok;
}
